"""The watch's word analyses, kept on disk so an unchanged watch compiles without pymorphy3.

Compiling a watch is cheap except for one step: lemmatising every Cyrillic
alias word, which loads pymorphy3 and its dictionaries (about half a second at
every start, and 40 MB that a poll with nothing new never needs). The result of
that step, each alias word's normal forms, is written beside the database as
JSON, keyed by the watch file's content, this code's version and the installed
dictionaries' versions. An unchanged watch then costs a file read; any change of
the three compiles once and rewrites the file.

JSON, not pickle: the file holds plain strings only, so even a file someone else
wrote could at worst change what matches (as editing the watch could), never run
code. It is written atomically, mode 0600; a file that cannot be read, parsed or
written is ignored (the watch is compiled as if there were none).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.match.text import WordInfo

log = logging.getLogger("monitor.match.cache")

CACHE_FILE = "watch-cache.json"
FORMAT = 1
# Modules whose code decides a word's analysis: a change in any of them invalidates the file.
_ANALYSIS_CODE = ("text.py", "morph.py", "cache.py")
_DICTIONARIES = ("pymorphy3", "pymorphy3_dicts_uk", "pymorphy3_dicts_ru")

if TYPE_CHECKING:
    from monitor.match.engine import Matcher
    from monitor.match.watch import Watch

Words = dict[str, WordInfo]


def cache_key(watch_text: bytes) -> str:
    """A digest of the watch file's bytes, the analysis code and the dictionaries' versions."""
    digest = hashlib.sha256()
    digest.update(f"format {FORMAT} monitor {__version__}\n".encode())
    digest.update(hashlib.sha256(watch_text).digest())
    here = Path(__file__).resolve().parent
    for name in _ANALYSIS_CODE:
        digest.update((here / name).read_bytes())
    digest.update(dictionary_versions().encode())
    return digest.hexdigest()


def dictionary_versions() -> str:
    """pymorphy3's and each dictionary's version, read from their files without importing them."""
    parts = []
    for package in _DICTIONARIES:
        spec = importlib.util.find_spec(package)
        folder = Path(spec.origin).parent if spec is not None and spec.origin else None
        if folder is None:
            parts.append(f"{package}=missing")
            continue
        for name in ("version.py", "data/meta.json"):
            path = folder / name
            if path.is_file():
                parts.append(f"{package}/{name}={hashlib.sha256(path.read_bytes()).hexdigest()}")
    return "\n".join(parts)


def load(path: Path, key: str) -> Words | None:
    """The word analyses stored under KEY, or None (absent, stale, unreadable or damaged)."""
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return {raw: WordInfo(form, cased, frozenset(keys))
                for raw, (form, cased, keys) in data["words"].items()
                if isinstance(form, str) and isinstance(cased, str)
                and all(isinstance(k, str) for k in keys)}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.info("watch cache %s ignored (%s): compiling the watch again", path, type(exc).__name__)
        return None


def save(path: Path, key: str, words: Words) -> None:
    """Write the analyses atomically (0600); a folder that cannot be written is not an error."""
    data = {"key": key, "words": {raw: [info.form, info.cased, sorted(info.keys)]
                                  for raw, info in sorted(words.items())}}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database's folder, made early
        handle, temporary = tempfile.mkstemp(prefix=".watch-cache-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        log.info("watch cache %s not written (%s)", path, exc)


def compile_watch(watch: Watch, watch_text: bytes, folder: Path | None) -> Matcher:
    """The watch compiled, with its word analyses read from (or written to) FOLDER/CACHE_FILE;
    FOLDER None compiles without the cache."""
    from monitor.match.engine import Matcher
    from monitor.match.text import Analyser

    if folder is None:
        return Matcher.compile(watch)
    path = folder / CACHE_FILE
    key = cache_key(watch_text)
    known = load(path, key)
    analyser = Analyser(fold_diacritics=watch.fold_diacritics, known=known)
    matcher = Matcher.compile(watch, analyser)
    if known is None or len(analyser.analysed()) != len(known):
        save(path, key, analyser.analysed())
    return matcher
