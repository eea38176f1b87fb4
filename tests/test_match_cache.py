"""The watch's word analyses cached on disk (monitor.match.cache), and a re-poll that stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.match import cache
from monitor.match.cache import CACHE_FILE, compile_watch
from monitor.match.watch import parse_watch_text

WATCH = """
[entity.china]
aliases = ["Китай", "China"]

[rule.china]
query = "@china"
"""


def compiled(folder: Path, text: str = WATCH):
    watch_path = folder / "watch.toml"
    watch_path.write_text(text, encoding="utf-8")
    watch = parse_watch_text(text, watch_path)
    return compile_watch(watch, text.encode(), folder)


def titles(matcher, title: str) -> list[str]:
    return [m.rule for m in matcher.match(title=title, language="uk")]


@pytest.fixture
def counted(monkeypatch):
    """Counts the words sent to pymorphy3 (the step the cache saves)."""
    calls: list[str] = []
    from monitor.match import morph

    original = morph.lemmas

    def lemmas(word: str, lang: str):
        calls.append(word)
        return original(word, lang)

    monkeypatch.setattr(morph, "lemmas", lemmas)
    return calls


def test_unchanged_watch_compiles_from_the_cache_without_lemmatising(tmp_path, counted):
    first = compiled(tmp_path)
    assert counted, "the first compile lemmatises the Cyrillic alias"
    stored = json.loads((tmp_path / CACHE_FILE).read_text(encoding="utf-8"))
    assert "Китай" in stored["words"]
    assert (tmp_path / CACHE_FILE).stat().st_mode & 0o077 == 0
    counted.clear()
    again = compiled(tmp_path)
    assert counted == []
    # the cached analyses match inflected forms exactly as a fresh compile does
    assert titles(again, "Делегація з Китаю") == titles(first, "Делегація з Китаю") == ["china"]


def test_a_changed_watch_recompiles_once(tmp_path, counted):
    compiled(tmp_path)
    changed = WATCH.replace('"China"]', '"China", "Пекін"]')
    counted.clear()
    matcher = compiled(tmp_path, changed)
    assert "пекін" in counted
    assert titles(matcher, "Новини з Пекіна") == ["china"]
    counted.clear()
    compiled(tmp_path, changed)
    assert counted == []


@pytest.mark.parametrize("change", ["code", "dictionaries"])
def test_a_new_code_or_dictionary_version_recompiles(tmp_path, counted, monkeypatch, change):
    compiled(tmp_path)
    counted.clear()
    if change == "code":
        monkeypatch.setattr(cache, "__version__", "999.0")
    else:
        monkeypatch.setattr(cache, "dictionary_versions", lambda: "pymorphy3_dicts_uk=9.9")
    compiled(tmp_path)
    assert counted, f"a changed {change} version must not reuse the old analyses"
    counted.clear()
    compiled(tmp_path)
    assert counted == []


def test_the_key_covers_the_installed_dictionaries():
    versions = cache.dictionary_versions()
    assert "pymorphy3_dicts_uk/version.py=" in versions and "pymorphy3_dicts_ru/data/meta.json=" in versions


@pytest.mark.parametrize("damage", [b"\x00\xffnot json", b'{"key": 1}', b"[]",
                                    b'{"key": "K", "words": {"x": 5}}'])
def test_a_damaged_cache_file_is_ignored_and_rebuilt(tmp_path, counted, damage):
    compiled(tmp_path)
    text = damage.replace(b'"K"', json.dumps(cache.cache_key(WATCH.encode())).encode())
    (tmp_path / CACHE_FILE).write_bytes(text)
    counted.clear()
    matcher = compiled(tmp_path)
    assert counted
    assert titles(matcher, "Делегація з Китаю") == ["china"]
    json.loads((tmp_path / CACHE_FILE).read_text(encoding="utf-8"))  # rewritten whole


def test_an_unwritable_folder_still_compiles(tmp_path):
    (tmp_path / "a-file").write_text("")
    watch = parse_watch_text(WATCH, tmp_path / "watch.toml")
    matcher = compile_watch(watch, WATCH.encode(), tmp_path / "a-file" / "state")
    assert titles(matcher, "Китай") == ["china"]


def test_repoll_with_nothing_new_imports_neither_apprise_nor_pymorphy3(tmp_path, feed_server):
    """A `run --once` whose feeds all answer 304 loads neither apprise (nothing is sent)
    nor the language data nor the matching engine (nothing to match), once the watch
    cache exists."""
    from support.feedserver import fixture_bytes, static

    feed_server.routes["/kyiv.xml"] = static(fixture_bytes("made_ghost_kyivindependent.xml"))
    root = Path(__file__).resolve().parents[1]
    config = tmp_path / "cfg"
    config.mkdir()
    for name in ("watch.toml", "alerts.toml"):
        (config / name).write_bytes((root / "config" / name).read_bytes())
    (config / "feeds.toml").write_text(
        f'[[feed]]\nname = "kyiv"\nurl = "{feed_server.url("/kyiv.xml")}"\nlanguage = "uk"\n')
    env = {**os.environ, "PYTHONPATH": str(root), "NO_PROXY": "127.0.0.1", "HOME": str(tmp_path)}
    code = ("import os, sys\nfrom monitor.cli import main\n"
            "os._exit = lambda code: None\n"
            "try:\n    main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('apprise', 'pymorphy3', 'monitor.match.engine') if m in sys.modules))")
    args = ["--config", str(config), "--db", str(tmp_path / "state" / "monitor.db"), "run", "--once"]

    def run() -> list[str]:
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()

    first = run()
    assert "new=0" not in first[-2] and first[-1] == "['monitor.match.engine', 'pymorphy3']"  # new: matched
    assert run()[-1] == "[]"  # the cache was written beside the database; all 304 now
    assert (tmp_path / "state" / CACHE_FILE).is_file()


def test_the_matchers_one_word_cache_is_bounded_and_matching_survives_its_clearing(tmp_path, monkeypatch):
    from monitor.match import engine

    monkeypatch.setattr(engine, "WORD_CACHE_SIZE", 10)
    matcher = compiled(tmp_path)
    for round_ in range(3):
        text = " ".join(f"слово{round_}x{i}" for i in range(25)) + " Китаю"
        assert titles(matcher, text) == ["china"]
        assert sum(len(words) for words in matcher._words.values()) <= 10
