"""Importing this module loads the Ukrainian and Russian dictionaries (monitor.match.morph).

The parser processes' forkserver imports it first (multiprocessing's preload)
when the watch has Cyrillic terms: the dictionaries are then read once, there,
and every parser process forked from it shares their pages and skips the load,
instead of each loading its own copy on its first Cyrillic story.
"""

from monitor.match import morph

for _language in morph.LANGUAGES:
    morph.lemmas("тест", _language)
