"""The compiled matcher: one index over every alias of every enabled rule.

Compiling turns each alias, exclude phrase and query word into a sequence of
word patterns and files it under the keys of its first word (or under its
prefix, for a wildcard). Matching walks an entry's words once; for each word
it looks up, in a per-word cache, the patterns whose first word it matches,
checks the rest of each such pattern against the following words, and records
the occurrences by term set (entity, group or query word). Only rules one of
whose term sets occurred are evaluated, so the cost per entry follows the
number of hits, not the number of rules or aliases.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from monitor.errors import ConfigError
from monitor.languages import language_code
from monitor.match import explain
from monitor.match.explain import Occurrence
from monitor.match.query import (
    FIELDS,
    And,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Ref,
    Scope,
    Term,
    parse_query,
    true_without_hits,
)
from monitor.match.text import RU, UK, UK_RU, WORDS, Analyser, WordInfo, WordPattern, language_mode
from monitor.match.watch import Entity, Rule, Watch
from monitor.models import Entry, Match
from monitor.stories import repeats_summary

Hits = dict[int, list[Occurrence]]  # term set id -> its occurrences
Evaluate = Callable[[Hits], "list[Occurrence] | None"]  # None: false; a list: true, with its support
_ALL_FIELDS = frozenset(FIELDS)
# Distinct words whose analysis the matcher keeps, over all language modes: the one word
# cache of matching (about 600 bytes a word; news repeats a few tens of thousands of words).
WORD_CACHE_SIZE = 50_000
# Bounds that keep one story's cost linear and small whatever its text (a hostile feed
# repeating two aliases 16,000 times once cost 10 s and 200 MB of stored hits).
MAX_OCCURRENCES = 200  # per term set and story: further occurrences are not looked at
MAX_STORED_HITS = 100  # per match: the rest is counted in Match.hits_omitted
FIELD_LIMITS = {"title": 2_000, "summary": 50_000, "content": 200_000}  # characters matched
STORY_BUDGET = 2.0  # seconds of matching per story before it is given up
_CLOCK_EVERY = 1024  # words scanned between two looks at the clock


class MatchBudgetExceeded(Exception):
    """One story took longer to match than its budget: it is stored unmatched and marked."""


@dataclass(eq=False)
class _Pattern:
    """One alias or phrase as words, and every term set that lists it."""

    words: tuple[WordPattern, ...]
    owners: list[tuple[int, str, bool]] = field(default_factory=list)  # (set id, label, is exclude)


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    evaluate: Evaluate
    requires: tuple[frozenset[int], ...]  # each: term sets of which one must occur for a match
    feeds: frozenset[str]
    feed_tags: frozenset[str]
    languages: frozenset[str]

    def in_scope(self, feed: str | None, feed_tags: Sequence[str], language: str | None) -> bool:
        """A scoped rule only applies to entries known to be in its scope."""
        if self.feeds and feed not in self.feeds:
            return False
        if self.feed_tags and (feed is None or self.feed_tags.isdisjoint(feed_tags)):
            return False
        if self.languages and (language is None or language_code(language) not in self.languages):
            return False
        return True


class _Builder:
    """Collects the patterns of the term sets that enabled rules use."""

    def __init__(self, watch: Watch, analyser: Analyser) -> None:
        self.watch = watch
        self.analyser = analyser
        self.patterns: dict[tuple[WordPattern, ...], _Pattern] = {}
        self.set_ids: dict[tuple[str, str], int] = {}
        self.used: set[int] = set()  # term sets of the rule being compiled

    def set_id(self, kind: str, name: str) -> int:
        """The id of the term set of an entity, a group or a query word, compiled on first use."""
        existing = self.set_ids.get((kind, name))
        if existing is not None:
            return existing
        set_id = self.set_ids[(kind, name)] = len(self.set_ids)
        if kind == "term":
            self.add(name, set_id, exclude=False)
            return set_id
        term_set = self.watch.entities[name] if kind == "entity" else self.watch.groups[name]
        for alias in term_set.aliases if isinstance(term_set, Entity) else term_set.terms:
            self.add(alias, set_id, exclude=False)
        for phrase in term_set.exclude:
            self.add(phrase, set_id, exclude=True)
        return set_id

    def add(self, term: str, set_id: int, *, exclude: bool) -> None:
        words = self.analyser.pattern(term)
        pattern = self.patterns.get(words)
        if pattern is None:
            pattern = self.patterns[words] = _Pattern(words)
        label = term.strip().removeprefix("=").strip()
        pattern.owners.append((set_id, label, exclude))

    def compile_rule(self, rule: Rule) -> _CompiledRule:
        """The rule's query as closures, with the term sets it cannot match without."""
        tree = rule.tree
        if tree is None:
            try:
                tree = parse_query(rule.query)
            except QueryError as error:
                raise ConfigError(f"rule '{rule.name}': {error.message} (at character {error.offset + 1})",
                                  path=self.watch.path, line=rule.line) from None
        if true_without_hits(tree):
            raise ConfigError(f"rule '{rule.name}': the query holds for texts that contain none of its terms",
                              path=self.watch.path, line=rule.line)
        self.used = set()
        evaluate = self.node(tree, _ALL_FIELDS, rule)
        # The query is false when none of its sets occurs (checked above), so "one of all
        # its sets" is a requirement when the tree gives none (e.g. NOT (a OR NOT b)).
        requires = tuple(self.requirements(tree)) or (frozenset(self.used),)
        return _CompiledRule(rule, evaluate, requires, frozenset(rule.feeds), frozenset(rule.feed_tags),
                             frozenset(language_code(code) for code in rule.languages))

    def requirements(self, node: Node) -> list[frozenset[int]]:
        """Groups of term sets such that the query is false unless each group has one set
        that occurs (conjunctive: AND needs both sides' groups, OR one group from either)."""
        if isinstance(node, Term):
            return [frozenset({self.set_ids[("term", node.text)]})]
        if isinstance(node, Ref):
            return [frozenset({self.set_ids[(node.kind, node.name)]})]
        if isinstance(node, (And, Near)):
            return self.requirements(node.left) + self.requirements(node.right)
        if isinstance(node, Or):
            left, right = self.requirements(node.left), self.requirements(node.right)
            if not left or not right:
                return []
            return [min(left, key=len) | min(right, key=len)]
        if isinstance(node, Scope):
            return self.requirements(node.operand)
        return []  # NOT: a missing term requires nothing

    def leaf_set(self, node: Term | Ref, rule: Rule) -> int:
        if isinstance(node, Term):
            set_id = self.set_id("term", node.text)
        else:
            known = self.watch.entities if node.kind == "entity" else self.watch.groups
            if node.name not in known:
                raise ConfigError(f"rule '{rule.name}': unknown {node.kind} '{node.name}'",
                                  path=self.watch.path, line=rule.line)
            set_id = self.set_id(node.kind, node.name)
        self.used.add(set_id)
        return set_id

    def node(self, node: Node, fields: frozenset[str], rule: Rule) -> Evaluate:
        """Turn a query tree into nested closures (faster than walking the tree per entry)."""
        if isinstance(node, (Term, Ref)):
            return _leaf(self.leaf_set(node, rule), fields)
        if isinstance(node, Scope):
            return self.node(node.operand, fields & node.fields, rule)
        if isinstance(node, Not):
            return _not(self.node(node.operand, fields, rule))
        left, right = self.node(node.left, fields, rule), self.node(node.right, fields, rule)
        if isinstance(node, And):
            return _and(left, right)
        if isinstance(node, Or):
            return _or(left, right)
        assert isinstance(node, Near)
        return _near(left, right, node.distance, node.ordered)


def _leaf(set_id: int, fields: frozenset[str]) -> Evaluate:
    if fields == _ALL_FIELDS:
        return lambda hits: hits.get(set_id)

    def scoped(hits: Hits) -> list[Occurrence] | None:
        kept = [o for o in hits.get(set_id, ()) if o.field in fields]
        return kept or None
    return scoped


def _not(operand: Evaluate) -> Evaluate:
    return lambda hits: [] if operand(hits) is None else None


def _and(left: Evaluate, right: Evaluate) -> Evaluate:
    def both(hits: Hits) -> list[Occurrence] | None:
        found = left(hits)
        if found is None:
            return None
        more = right(hits)
        return None if more is None else found + more
    return both


def _or(left: Evaluate, right: Evaluate) -> Evaluate:
    def either(hits: Hits) -> list[Occurrence] | None:
        found, more = left(hits), right(hits)
        if found is None:
            return more
        return found if more is None else found + more
    return either


def _near(left: Evaluate, right: Evaluate, distance: int, ordered: bool) -> Evaluate:
    def near(hits: Hits) -> list[Occurrence] | None:
        found, more = left(hits), right(hits)
        if not found or not more:
            return None
        support = dict.fromkeys(_near_support(found, more, distance, ordered=ordered, left_first=True))
        support.update(dict.fromkeys(_near_support(more, found, distance, ordered=ordered,
                                                   left_first=False)))
        return list(support) or None
    return near


def _near_support(ours: list[Occurrence], theirs: list[Occurrence], distance: int, *,
                  ordered: bool, left_first: bool) -> list[Occurrence]:
    """Our occurrences with one of theirs at most DISTANCE words away in the same field.

    Theirs are sorted once by where they start and where they end; each of ours then
    needs two binary searches (n log n, where comparing every pair cost n x m). With
    ORDERED, the left operand's hit must come first: `left_first` says which side ours is.
    """
    by_field: dict[str, tuple[list[int], list[int]]] = {}
    for field_name in {o.field for o in theirs}:
        same = [o for o in theirs if o.field == field_name]
        by_field[field_name] = (sorted(o.first for o in same), sorted(o.last for o in same))
    kept = []
    for occurrence in ours:
        positions = by_field.get(occurrence.field)
        if positions is None:
            continue
        firsts, lasts = positions
        after = not ordered or left_first  # theirs may follow ours
        before = not ordered or not left_first  # theirs may precede ours
        if after and bisect_right(firsts, occurrence.last + distance) > bisect_left(firsts, occurrence.last):
            kept.append(occurrence)
        elif before and bisect_right(lasts, occurrence.first) > bisect_left(lasts, occurrence.first - distance):
            kept.append(occurrence)
    return kept


class Matcher:
    """Every enabled rule of a watch, compiled once; `match` is called per entry."""

    def __init__(self, rules: list[_CompiledRule], patterns: list[_Pattern], analyser: Analyser) -> None:
        self._rules = rules
        self._rules_by_set = _trigger_index(rules)
        self._analyser = analyser
        self._by_key: dict[str, list[_Pattern]] = {}
        self._by_prefix: dict[int, dict[str, list[_Pattern]]] = {}
        for pattern in patterns:
            first = pattern.words[0]
            if first.prefix is not None:
                self._by_prefix.setdefault(len(first.prefix), {}).setdefault(first.prefix, []).append(pattern)
            else:
                for key in first.keys:
                    self._by_key.setdefault(key, []).append(pattern)
        self._prefix_tables = sorted(self._by_prefix.items())
        # per language mode: raw word -> its analysis and the patterns it can begin
        self._words: dict[str, dict[str, tuple[WordInfo, tuple[_Pattern, ...]]]] = {
            mode: {} for mode in (UK, RU, UK_RU)}
        self._cached_words = 0  # over the three modes, bounded by WORD_CACHE_SIZE
        self.evaluations = 0  # rules evaluated so far: shows the index skips rules without hits

    @classmethod
    def compile(cls, watch: Watch, analyser: Analyser | None = None) -> Matcher:
        """ANALYSER reads the watch's terms (monitor.match.cache passes one holding the
        analyses of an earlier run); it must use the watch's fold_diacritics."""
        builder = _Builder(watch, analyser or Analyser(fold_diacritics=watch.fold_diacritics))
        rules = [builder.compile_rule(rule) for rule in watch.rules if rule.enabled]
        patterns = list(builder.patterns.values())
        analyser = Analyser(fold_diacritics=watch.fold_diacritics, lemma_prefixes=_lemma_prefixes(patterns))
        return cls(rules, patterns, analyser)

    @property
    def rules(self) -> list[str]:
        """Names of the compiled (enabled) rules, in watch.toml order."""
        return [compiled.rule.name for compiled in self._rules]

    def match(self, *, title: str, summary: str = "", content: str = "", language: str | None = None,
              feed: str | None = None, feed_tags: Sequence[str] = (),
              budget: float | None = None) -> list[Match]:
        """Every rule the entry matches, in watch.toml order, each with its explanation.

        Only the first FIELD_LIMITS characters of each field are matched. With a
        BUDGET (seconds), a story that takes longer raises MatchBudgetExceeded.
        """
        texts = {"title": (title or "")[:FIELD_LIMITS["title"]],
                 "summary": (summary or "")[:FIELD_LIMITS["summary"]],
                 "content": (content or "")[:FIELD_LIMITS["content"]]}
        if repeats_summary(texts["summary"], texts["content"]):
            texts["content"] = ""  # counted once, as the summary
        deadline = None if budget is None else time.monotonic() + budget
        mode = language_mode(language, *texts.values())
        hits: Hits = {}
        excluded: dict[int, list[tuple[str, int, int]]] = {}
        for name, text in texts.items():
            if text:
                self._scan(name, text, mode, hits, excluded, deadline)
        if not hits:
            return []
        _drop_excluded(hits, excluded)
        for set_id, occurrences in hits.items():
            if len(occurrences) > 1:
                hits[set_id] = _outermost(occurrences)
        occurred = hits.keys()
        candidates = sorted({index for set_id in hits for index in self._rules_by_set.get(set_id, ())})
        matches: list[Match] = []
        for index in candidates:
            compiled = self._rules[index]
            if any(group.isdisjoint(occurred) for group in compiled.requires):
                continue
            if not compiled.in_scope(feed, feed_tags, language):
                continue
            _check_clock(deadline)
            self.evaluations += 1
            support = compiled.evaluate(hits)
            if support is None:
                continue
            rule_score = explain.score(support)
            if rule_score < compiled.rule.min_score:
                continue
            found = explain.hits(support)
            kept = found[:MAX_STORED_HITS]
            matches.append(Match(rule=compiled.rule.name, score=rule_score, severity=compiled.rule.severity,
                                 tags=compiled.rule.tags, hits=kept, snippet=explain.snippet(texts, kept),
                                 hits_omitted=len(found) - len(kept)))
        return matches

    def _scan(self, field_name: str, text: str, mode: str, hits: Hits,
              excluded: dict[int, list[tuple[str, int, int]]], deadline: float | None = None) -> None:
        """Find the pattern occurrences in one field (the hot loop: kept flat on purpose),
        at most MAX_OCCURRENCES per term set and story."""
        cache = self._words[mode]
        infos: list[WordInfo] = []
        spans: list[tuple[int, int]] = []
        starts: list[tuple[int, tuple[_Pattern, ...]]] = []  # words that begin some pattern
        for found in WORDS.finditer(text):
            if deadline is not None and len(infos) % _CLOCK_EVERY == 0:
                _check_clock(deadline)
            raw = found.group()
            known = cache.get(raw)
            if known is None:
                if self._cached_words >= WORD_CACHE_SIZE:
                    for words in self._words.values():
                        words.clear()
                    self._cached_words = 0
                info = self._analyser.analyse(raw, mode)
                known = cache[raw] = (info, self._first_word_patterns(info))
                self._cached_words += 1
            if known[1]:
                starts.append((len(infos), known[1]))
            infos.append(known[0])
            spans.append(found.span())
        count = len(infos)
        for position, (index, patterns) in enumerate(starts):
            if deadline is not None and position % _CLOCK_EVERY == 0:
                _check_clock(deadline)
            for pattern in patterns:
                length = len(pattern.words)
                if length > 1 and (index + length > count or not all(
                        pattern.words[offset].matches(infos[index + offset]) for offset in range(1, length))):
                    continue
                start, end = spans[index][0], spans[index + length - 1][1]
                for set_id, label, is_exclude in pattern.owners:
                    if is_exclude:
                        excluded.setdefault(set_id, []).append((field_name, index, index + length))
                    else:
                        occurrences = hits.setdefault(set_id, [])
                        if len(occurrences) < MAX_OCCURRENCES:
                            occurrences.append(Occurrence(field_name, index, index + length, label,
                                                          start, end))

    def _first_word_patterns(self, info: WordInfo) -> tuple[_Pattern, ...]:
        found: dict[int, _Pattern] = {}
        for key in info.keys:
            for pattern in self._by_key.get(key, ()):
                found[id(pattern)] = pattern
        for length, table in self._prefix_tables:
            if len(info.form) < length:
                break
            for pattern in table.get(info.form[:length], ()):
                found[id(pattern)] = pattern
        return tuple(p for p in found.values() if p.words[0].matches(info))


def _check_clock(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise MatchBudgetExceeded("matching took longer than its budget")


def _trigger_index(rules: list[_CompiledRule]) -> dict[int, list[int]]:
    """Term set -> rules to evaluate when it occurs. Each rule is filed under one of its
    required groups only: the one whose sets the fewest rules use, since a set that many
    rules share (a country everyone mentions) is likely frequent in text too."""
    usage: dict[int, int] = {}
    for compiled in rules:
        for set_id in frozenset().union(*compiled.requires):
            usage[set_id] = usage.get(set_id, 0) + 1
    index: dict[int, list[int]] = {}
    for position, compiled in enumerate(rules):
        trigger = min(compiled.requires, key=lambda group: (sum(usage[s] for s in group), len(group)))
        for set_id in trigger:
            index.setdefault(set_id, []).append(position)
    return index


def _lemma_prefixes(patterns: list[_Pattern]) -> frozenset[str]:
    """First two letters of every Cyrillic key of the watch: a text word that starts
    otherwise cannot share a dictionary form with any alias (inflection keeps the start
    of a word), so it need not be lemmatised, which is the costly step for new words."""
    prefixes: set[str] = set()
    for pattern in patterns:
        for word in pattern.words:
            for key in word.keys:
                prefixes.add(key.partition(":")[2][:2] if ":" in key else key[:2])
    return frozenset(prefixes)


def _drop_excluded(hits: Hits, excluded: dict[int, list[tuple[str, int, int]]]) -> None:
    """Discard hits that lie inside an occurrence of their set's exclude phrases.

    Per field, the phrases are sorted by their first word with a running maximum of
    their ends, so each hit costs one binary search however many phrases occur.
    """
    for set_id, ranges in excluded.items():
        occurrences = hits.get(set_id)
        if not occurrences:
            continue
        reach: dict[str, tuple[list[int], list[int]]] = {}
        for field_name in {f for f, _, _ in ranges}:
            spans = sorted((first, last) for f, first, last in ranges if f == field_name)
            furthest, ends = -1, []
            for _, last in spans:
                furthest = max(furthest, last)
                ends.append(furthest)
            reach[field_name] = ([first for first, _ in spans], ends)

        kept = [o for o in occurrences if not _inside(o, reach)]
        if kept:
            hits[set_id] = kept
        else:
            del hits[set_id]


def _inside(o: Occurrence, reach: dict[str, tuple[Sequence[int], Sequence[int]]]) -> bool:
    """Whether `o` lies within one of the spans whose starts and running furthest ends `reach` holds."""
    firsts, ends = reach.get(o.field, ((), ()))
    before = bisect_right(firsts, o.first)
    return before > 0 and ends[before - 1] >= o.last


def _outermost(occurrences: list[Occurrence]) -> list[Occurrence]:
    """Drop occurrences inside a longer one of the same set ("Xi" within "Xi Jinping")."""
    kept: list[Occurrence] = []
    for occurrence in sorted(occurrences, key=lambda o: (o.field, o.first, -o.last)):
        if kept:
            last = kept[-1]
            if last.field == occurrence.field and last.first <= occurrence.first and occurrence.last <= last.last:
                continue
        kept.append(occurrence)
    return kept


def match_entry(matcher: Matcher, entry: Entry, feed_tags: Sequence[str] = (),
                budget: float | None = STORY_BUDGET) -> list[Match]:
    """Match a parsed entry; FEED_TAGS are the tags of its feed in feeds.toml.
    MatchBudgetExceeded when it takes longer than BUDGET seconds."""
    return matcher.match(title=entry.title, summary=entry.summary, content=entry.content,
                         language=entry.language, feed=entry.feed, feed_tags=feed_tags, budget=budget)
