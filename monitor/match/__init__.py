"""Watch rules: flag the stories a person cares about, and say why.

The watch lives in ``watch.toml`` in the config folder. It defines
**entities** (something to watch for, by its names in any language),
**term groups** (reusable keyword lists) and **rules** (a query over entities,
groups and words, with a severity and tags that route alerts). A missing
``watch.toml`` is an empty watch: nothing is flagged.

watch.toml
==========

::

    [options]
    fold_diacritics = false     # true: "café" matches "cafe" (Latin letters only)

    [entity.china]
    description = "China, its state and its leaders"
    aliases = ["China", "Chinese", "Beijing", "=PRC", "Xi Jinping", "Wang Yi",
               "Китай", "КНР", "Пекін", "Пекин", "Сі Цзіньпін", "Си Цзиньпин", "中国"]
    exclude = ["Chinese New Year", "fine china", "antique china", "china cabinet"]

    [group.drone_parts]
    terms = ["drone*", "UAV", "engine*", "fibre-optic", "fiber-optic", "battery",
             "дрон*", "безпілотник", "беспилотник"]

    [rule.china_drones]
    description = "Chinese drones and drone parts in the war"
    query = '@china NEAR/15 #drone_parts'
    min_score = 4          # optional, default 0
    severity = "warning"   # info (default) | warning | critical
    tags = ["drones"]      # optional: alerts route on these
    enabled = true         # optional, default true
    feeds = []             # optional scope: only these feed names
    feed_tags = []         # optional scope: only feeds with one of these tags
    languages = []         # optional scope: only entries in these languages ("uk", "ru", "en"...)

Entity, group and rule names may hold letters, digits, ``_`` and ``-``.
Unknown keys are errors (with a suggestion), as are wrong types, an unknown
severity, and a query that refers to an undefined ``@entity`` or ``#group``.
Errors name the file, line, column and key, and show the line with a caret.

Aliases and terms
-----------------
Each alias (of an entity) or term (of a group) is one or more words matched
as a phrase, in order:

* Case does not matter: ``China`` matches "china", "CHINA".
* ``=`` in front makes upper-case letters count: ``=PRC`` matches "PRC" but
  not "prc"; ``=China`` matches "China" and "CHINA" but not "china"
  (porcelain). Lower-case letters of such an alias still match either case.
* ``*`` at the end of a word matches any word starting with it: ``drone*``
  matches "drones", "droneport"; ``дрон*`` matches "дронів". At least two
  letters before the ``*``; a wildcard is not reduced to a dictionary form.
* Word forms: English possessives and plurals ("Russia's" matches
  ``Russia``, "batteries" matches ``battery``, "drones" matches ``drone``),
  and Ukrainian and Russian inflections: ``Китай`` matches Китаю, Китаєм, Китаї, Китая; ``Пекін``
  matches Пекіна, Пекіні; ``Росія`` matches Росії, Росією (dictionary forms
  from pymorphy3). Write aliases in their dictionary form.
* Whole words only: ``China`` does not match "Orlovshchina" or
  "Chinatown"; ``drone`` does match "drone-maker" (a hyphen separates words).
* Hyphens and other punctuation separate words, so ``fibre-optic`` matches
  "fibre-optic", "fibre–optic" and "fibre optic" (but not "fibreoptic");
  ``U.S.`` matches "U.S." and "U S" (but ``US`` does not match "U.S.").
* Apostrophes are unified (’ ʼ ` ‘ → '), text is NFKC-normalised (full-width
  letters, ligatures) and ё counts as е.
* Chinese: every Han character is a word, so ``中国`` matches inside 中国外交部.

``exclude`` lists phrases (same syntax) inside which a hit of this entity or
group does not count: with ``exclude = ["Chinese New Year"]``, "Chinese" in
"Chinese New Year celebrations" is ignored, while another alias in the same
text still counts.

Queries
-------
::

    @china                      any alias of the entity "china"
    #drone_parts                any term of the group "drone_parts"
    sanctions                   a word (same rules as an alias: forms, =, *)
    "peace plan"                a phrase
    a AND b                     both
    a b                         both: adjacent operands are ANDed
    a OR b                      either
    NOT a, a NOT b              a must not occur (a NOT b = a AND NOT b)
    a NEAR/5 b                  a hit of a and one of b at most 5 words apart
    a ONEAR/5 b                 the same, and a comes first
    title:a                     a in the title (also summary:, content:,
                                text: = any field), e.g. title:(@china OR PRC)
    ( ... )                     grouping

* Operators are case-sensitive upper case: ``and``, ``or``, ``not``, ``near``
  are ordinary words to look for.
* Binding, tightest first: ``NOT`` and ``field:``, then ``NEAR/n``/``ONEAR/n``,
  then ``AND`` (explicit or implicit), then ``OR``. So
  ``a OR b c`` means ``a OR (b AND c)``, and ``@china NEAR/10 drones OR
  missiles`` means ``(@china NEAR/10 drones) OR missiles``: use parentheses.
* Distance is the number of words between the two hits (0 = adjacent), within
  one field; a Han character counts as one word. Hits that share words are
  not near each other. A compound operand (``(a OR b) NEAR/5 c``) is near
  when any of its hits is.
* A query must look for something: one made only of ``NOT`` is an error.
* To search for an operator word or a ``word:`` literally, quote it:
  ``"NEAR"``, ``"Re:"``.

Scope and scoring
-----------------
A rule with ``feeds``, ``feed_tags`` or ``languages`` applies only to entries
known to be in its scope: entries of those feeds, of feeds with one of those
tags, or whose language (primary subtag: "uk-UA" is "uk") is listed. Text
matched outside any feed (``monitor match``, ``monitor rules test`` without a
feed) or of unknown language is outside such a rule's scope.

A rule matches when its query is true and its score reaches ``min_score``.
The score adds, for each distinct term (alias or keyword as written) that
supports the match, in each field: **3** for the title, **1.5** for the
summary and **1** for the content, for its first occurrence, and half of the
previous addition for each further one (2 occurrences in the title: 3 + 1.5).
Terms under ``NOT``, and hits that are not near enough for a ``NEAR``, do not
count. When the content repeats the summary it is counted once. So with
``min_score = 4``, "China" in the title and "drones" in the summary (3 + 1.5)
matches, but both in the summary only (1.5 + 1.5) does not.

Each match records its rule, score, severity, tags, hits (field, character
offsets into the field text as given, and the alias that matched) and a
snippet of about 200 characters with the hits marked ``[[like this]]``, the
title first when it has hits.

Language data
-------------
Ukrainian and Russian word forms come from pymorphy3 and its dictionaries,
loaded only when the first Cyrillic word is met, one language at a time. A
Cyrillic word is read as Ukrainian or Russian by the entry's language when
known, else by its letters (і ї є ґ: Ukrainian; ы э ъ ё: Russian), else by
the letters of the whole entry, else as both. To save time on new words, only
Cyrillic words whose first two letters begin a dictionary form in the watch
are looked up: inflection keeps the start of a word, but suppletive forms
(люди for человек) are not found; list such forms as aliases of their own.
"""

from monitor.match.engine import Matcher, match_entry
from monitor.match.explain import as_dict, describe
from monitor.match.watch import SEVERITIES, Entity, Group, Rule, Watch, load_watch, parse_watch_text

__all__ = ["SEVERITIES", "Entity", "Group", "Matcher", "Rule", "Watch", "as_dict", "describe", "load_watch",
           "match_entry", "parse_watch_text"]
