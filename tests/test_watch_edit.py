"""watch.toml edits (monitor.edit.watch) on a copy of the shipped, heavily commented watch.toml.

Every edit is checked line by line: exactly the expected lines change and
every other byte of the file stays as it was.
"""

from __future__ import annotations

import difflib
import fcntl
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from monitor.edit.watch import add_aliases, add_exclude, list_terms, remove_aliases, set_rule_enabled
from monitor.errors import ConfigError, UsageError
from monitor.match import Matcher, load_watch

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "watch.toml"
CHINA_LAST_ALIAS_LINE = '  "中国", "中华人民共和国", "北京", "习近平", "王毅", "李辉",\n'


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    path = tmp_path / "watch.toml"
    shutil.copyfile(SHIPPED, path)
    path.chmod(0o600)
    return path


def changes(before: str, after: str) -> list[tuple[int, list[str], list[str]]]:
    """(0-based line in BEFORE, lines removed, lines added) for each changed place."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(i1, old[i1:i2], new[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def line_index(text: str, line: str, start_after: str | None = None) -> int:
    """0-based index of the first line equal to LINE (after the line START_AFTER, if given)."""
    lines = text.splitlines(keepends=True)
    first = lines.index(start_after) + 1 if start_after is not None else 0
    return lines.index(line, first)


def assert_refused(path: Path, before: bytes, error: pytest.ExceptionInfo, *words: str) -> None:
    assert path.read_bytes() == before, "a refused edit leaves the file byte-identical"
    for word in words:
        assert word in str(error.value)


# --------------------------------------------------------------------------
# add
# --------------------------------------------------------------------------


def test_added_aliases_go_on_their_own_lines_at_the_end_of_the_list_and_nothing_else_changes(watch):
    before = watch.read_text(encoding="utf-8")

    added = add_aliases(watch, "china", ["Dong Jun", "Дун Цзюнь"])

    after = watch.read_text(encoding="utf-8")
    assert added == ["Dong Jun", "Дун Цзюнь"]
    assert changes(before, after) == [
        (line_index(before, CHINA_LAST_ALIAS_LINE) + 1, [], ['  "Dong Jun",\n', '  "Дун Цзюнь",\n'])]
    aliases = load_watch(watch).entities["china"].aliases
    assert aliases[-2:] == ("Dong Jun", "Дун Цзюнь")


def test_an_added_cyrillic_alias_is_matched_once_the_watch_is_reloaded(watch):
    title = "Дун Цзюнь обговорив з Шойгу постачання дронів для війни проти України"
    assert not Matcher.compile(load_watch(watch)).match(title=title, language="uk")

    add_aliases(watch, "china", ["Дун Цзюнь"])  # China's defence minister

    found = Matcher.compile(load_watch(watch)).match(title=title, language="uk")
    assert "china_military_supplies" in {match.rule for match in found}
    assert any(hit.term == "Дун Цзюнь" for match in found for hit in match.hits)


def test_aliases_already_present_are_skipped_and_nothing_is_written_when_all_are(watch):
    before = watch.read_bytes()
    inode = watch.stat().st_ino

    assert add_aliases(watch, "china", ["=China", "Китай", "Dong Jun", "Dong Jun"]) == ["Dong Jun"]
    assert load_watch(watch).entities["china"].aliases.count("Dong Jun") == 1

    edited = watch.read_bytes()
    assert add_aliases(watch, "china", ["Dong Jun", "=China"]) == []
    assert watch.read_bytes() == edited
    assert before != edited and watch.stat().st_ino != inode  # the first add did replace the file


def test_alias_case_is_kept_as_written(watch):
    """'=China' is present, 'china' (any case, the porcelain too) is a different alias."""
    assert add_aliases(watch, "china", ["china"]) == ["china"]
    assert "china" in load_watch(watch).entities["china"].aliases


def test_a_one_line_list_stays_on_one_line(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('# mine\n[entity.China]\naliases = ["China", "Beijing"]  # short\n', encoding="utf-8")

    add_aliases(path, "china", ["PRC"])

    expected = '# mine\n[entity.China]\naliases = ["China", "Beijing", "PRC"]  # short\n'
    assert path.read_text(encoding="utf-8") == expected


def test_a_list_without_trailing_comma_gets_none(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity.china]\naliases = ["China", "Chinese",\n           "Китай"]\n', encoding="utf-8")

    add_aliases(path, "china", ["Пекін", "КНР"])

    assert path.read_text(encoding="utf-8") == (
        '[entity.china]\naliases = ["China", "Chinese",\n           "Китай",\n'
        '           "Пекін",\n           "КНР"]\n')


@pytest.mark.parametrize(("alias", "reason"), [
    ("*", "no letters or digits"),
    ("!!!", "no letters or digits"),
    ("d*", "at least 2 letters"),
    ("dr*ne", "only at the end of a word"),
])
def test_an_alias_the_loader_rejects_is_refused_with_its_reason_and_the_file_is_untouched(watch, alias, reason):
    before = watch.read_bytes()
    with pytest.raises(UsageError) as error:
        add_aliases(watch, "china", ["Dong Jun", alias])
    assert_refused(watch, before, error, reason, "entity.china.aliases", "not changed")
    assert stat.S_IMODE(watch.stat().st_mode) == 0o600


# --------------------------------------------------------------------------
# remove
# --------------------------------------------------------------------------


def test_removing_aliases_cuts_exactly_their_text(watch):
    before = watch.read_text(encoding="utf-8")

    removed = remove_aliases(watch, "china", ["Peking", "Zhongnanhai", "Hong Kong", "Absent"])

    assert removed == ["Peking", "Zhongnanhai", "Hong Kong"]
    beijing = line_index(before, '  "Beijing", "Peking",\n')
    zhongnanhai = line_index(before, '  "Zhongnanhai",\n')
    hong_kong = line_index(before, '  "Hong Kong",               # shell companies, tanker owners, banks\n')
    assert changes(before, watch.read_text(encoding="utf-8")) == [
        (beijing, ['  "Beijing", "Peking",\n'], ['  "Beijing",\n']),
        (zhongnanhai, ['  "Zhongnanhai",\n'], []),
        (hong_kong, [before.splitlines(keepends=True)[hong_kong]], []),  # its own comment goes with it
    ]
    assert not {"Peking", "Zhongnanhai", "Hong Kong"} & set(load_watch(watch).entities["china"].aliases)


def test_removing_a_repeated_alias_removes_every_occurrence(watch):
    """The shipped file lists "Китай" twice (Ukrainian and Russian sections)."""
    before = watch.read_text(encoding="utf-8")
    assert load_watch(watch).entities["china"].aliases.count("Китай") == 2

    assert remove_aliases(watch, "china", ["Китай"]) == ["Китай"]

    removed = [lines for _, lines, added in changes(before, watch.read_text(encoding="utf-8")) if not added]
    assert [line.split("#")[0].strip() for lines in removed for line in lines] == ['"Китай",', '"Китай",']
    assert "Китай" not in load_watch(watch).entities["china"].aliases


def test_removing_an_alias_that_is_not_there_is_refused_with_a_hint(watch):
    before = watch.read_bytes()
    with pytest.raises(UsageError) as error:
        remove_aliases(watch, "china", ["china", "prc"])
    assert_refused(watch, before, error, "'=China'", "'=PRC'", "exactly as written")


def test_removing_the_last_alias_is_refused(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity.nato]\naliases = [\n  "NATO",\n  "НАТО",\n]\n', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(UsageError) as error:
        remove_aliases(path, "nato", ["NATO", "НАТО"])
    assert_refused(path, before, error, "at least one")


def test_a_broken_file_can_be_fixed_by_removing_the_bad_alias_but_not_edited_otherwise(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity.china]\naliases = [\n  "China",\n  "*",\n]\n', encoding="utf-8")
    before = path.read_bytes()

    with pytest.raises(UsageError) as error:
        add_aliases(path, "china", ["PRC"])
    assert_refused(path, before, error, "invalid already", "watch.toml:4")

    assert remove_aliases(path, "china", ["*"]) == ["*"]
    assert path.read_text(encoding="utf-8") == '[entity.china]\naliases = [\n  "China",\n]\n'


# --------------------------------------------------------------------------
# exclude
# --------------------------------------------------------------------------


def test_an_exclusion_joins_the_existing_multi_line_list(watch):
    before = watch.read_text(encoding="utf-8")

    assert add_exclude(watch, "China", "China Open") is True

    last = line_index(before, '  "Южно-Китайское море", "Восточно-Китайское море",\n')
    assert changes(before, watch.read_text(encoding="utf-8")) == [(last + 1, [], ['  "China Open",\n'])]
    assert add_exclude(watch, "china", "China Open") is False


@pytest.mark.parametrize(("entity", "closing"), [
    ("ukraine", '  "Николаев*", "Сумская область", "Чернигов*", "Покровск", "Крым",\n'),
    # the last entity: its list is followed by the TERM GROUPS banner comment
    ("west", '  "Британия", "Япония", "Байден",\n'),
])
def test_a_new_exclude_list_goes_right_after_the_aliases(watch, entity, closing):
    before = watch.read_text(encoding="utf-8")

    add_exclude(watch, entity, "Kyiv cake")

    bracket = line_index(before, "]\n", start_after=closing)
    assert changes(before, watch.read_text(encoding="utf-8")) == [(bracket + 1, [], ['exclude = ["Kyiv cake"]\n'])]
    assert load_watch(watch).entities[entity].exclude == ("Kyiv cake",)


def test_an_exclusion_the_loader_rejects_is_refused(watch):
    before = watch.read_bytes()
    with pytest.raises(UsageError) as error:
        add_exclude(watch, "china", "- -")
    assert_refused(watch, before, error, "entity.china.exclude", "no letters or digits")


# --------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------


def test_disabling_a_rule_adds_enabled_false_after_its_query_and_enabling_sets_it_back(watch):
    original = watch.read_text(encoding="utf-8")
    query = "query = '@china AND (#sanctions AND (@russia OR #war) OR #sanctions_package) NOT #culture'\n"

    assert set_rule_enabled(watch, "china_sanctions", False) is True
    disabled = watch.read_text(encoding="utf-8")
    assert changes(original, disabled) == [(line_index(original, query) + 1, [], ["enabled = false\n"])]
    assert not next(r for r in load_watch(watch).rules if r.name == "china_sanctions").enabled
    assert set_rule_enabled(watch, "china_sanctions", False) is False

    assert set_rule_enabled(watch, "China_Sanctions", True) is True
    assert changes(disabled, watch.read_text(encoding="utf-8")) == [
        (line_index(original, query) + 1, ["enabled = false\n"], ["enabled = true\n"])]
    assert next(r for r in load_watch(watch).rules if r.name == "china_sanctions").enabled


def test_a_multi_line_query_gets_enabled_after_its_closing_quotes(watch):
    before = watch.read_text(encoding="utf-8")

    set_rule_enabled(watch, "china_military_supplies", False)

    closing = line_index(before, "'''\n", start_after="[rule.china_military_supplies]\n")
    assert changes(before, watch.read_text(encoding="utf-8")) == [(closing + 1, [], ["enabled = false\n"])]


def test_enabling_a_rule_without_enabled_changes_nothing(watch):
    before = watch.read_bytes()
    assert set_rule_enabled(watch, "china_sanctions", True) is False
    assert watch.read_bytes() == before


def test_an_existing_enabled_keeps_its_comment_and_indentation(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text("[entity.c]\naliases = ['China']\n\n[rule.r]\n  query = '@c'\n"
                    "  enabled = false   # noisy in March\n  severity = 'info'\n", encoding="utf-8")
    set_rule_enabled(path, "R", True)
    assert path.read_text(encoding="utf-8") == ("[entity.c]\naliases = ['China']\n\n[rule.r]\n  query = '@c'\n"
                                                "  enabled = true   # noisy in March\n  severity = 'info'\n")
    path.write_text("[entity.c]\naliases = ['China']\n\n[rule.r]\n  query = '@c'\n  severity = 'info'\n")
    set_rule_enabled(path, "r", False)
    assert path.read_text(encoding="utf-8") == ("[entity.c]\naliases = ['China']\n\n[rule.r]\n  query = '@c'\n"
                                                "  enabled = false\n  severity = 'info'\n")


def test_an_unknown_rule_is_refused_with_the_known_names(watch):
    with pytest.raises(UsageError) as error:
        set_rule_enabled(watch, "china_sanction", False)
    assert "no rule 'china_sanction'" in str(error.value) and "china_sanctions" in str(error.value)


# --------------------------------------------------------------------------
# names, files, permissions, locking
# --------------------------------------------------------------------------


def test_entity_names_ignore_case_both_ways(watch, tmp_path):
    assert add_aliases(watch, "CHINA", ["Dong Jun"]) == ["Dong Jun"]
    assert "Dong Jun" in load_watch(watch).entities["china"].aliases

    user = tmp_path / "user.toml"
    user.write_text('[entity.China]\naliases = ["China"]\n', encoding="utf-8")
    assert add_aliases(user, "china", ["PRC"]) == ["PRC"]
    assert list_terms(user, "cHiNa")[0]["entity"] == "China"


def test_names_that_differ_only_in_case_need_the_exact_spelling(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity.china]\naliases = ["china"]\n\n[entity.China]\naliases = ["=China"]\n',
                    encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(UsageError) as error:
        add_aliases(path, "CHINA", ["PRC"])
    assert_refused(path, before, error, "ambiguous")
    add_aliases(path, "China", ["PRC"])
    assert load_watch(path).entities["China"].aliases == ("=China", "PRC")


def test_unknown_entity_lists_the_known_ones_and_a_group_name_says_it_is_a_group(watch):
    with pytest.raises(UsageError) as error:
        add_aliases(watch, "chna", ["x"])
    assert "no entity 'chna'" in str(error.value) and "china, russia, ukraine, west" in str(error.value)
    with pytest.raises(UsageError) as error:
        list_terms(watch, "Drones")
    assert "term group" in str(error.value) and "[group.drones]" in str(error.value)


def test_list_terms(watch):
    everything = list_terms(watch)
    assert [row["entity"] for row in everything] == ["china", "russia", "ukraine", "west"]
    (west,) = list_terms(watch, "West")
    assert west["aliases"][:2] == ["=EU", "European Union"] and west["exclude"] == []
    assert west["description"].startswith("Western governments")


def test_a_missing_watch_file_lists_nothing_and_cannot_be_edited(tmp_path):
    missing = tmp_path / "watch.toml"
    assert list_terms(missing) == []
    for edit in (lambda: add_aliases(missing, "china", ["PRC"]), lambda: set_rule_enabled(missing, "r", False),
                 lambda: list_terms(missing, "china")):
        with pytest.raises(UsageError) as error:
            edit()
        assert "does not exist" in str(error.value)
    assert not missing.exists()


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_permissions_are_kept(watch, mode):
    watch.chmod(mode)
    add_aliases(watch, "russia", ["Rosoboronexport"])
    remove_aliases(watch, "russia", ["Wagner"])
    set_rule_enabled(watch, "china_ukraine_energy", False)
    assert stat.S_IMODE(watch.stat().st_mode) == mode
    assert not [p.name for p in watch.parent.iterdir() if p.name != "watch.toml"], "no temp file left"


def test_an_edit_waits_for_another_edit_of_the_folder_and_keeps_its_change(watch):
    """Edits lock the config folder from read to write, so two at once never lose one."""
    other_editor = os.open(watch.parent, os.O_RDONLY)
    fcntl.flock(other_editor, fcntl.LOCK_EX)
    worker = threading.Thread(target=add_aliases, args=(watch, "china", ["Dong Jun"]))
    try:
        worker.start()
        worker.join(timeout=0.3)
        assert worker.is_alive(), "the edit waited for the folder lock"
        text = watch.read_text(encoding="utf-8")
        watch.write_text(text.replace('  "Zhongnanhai",\n', ""), encoding="utf-8")
    finally:
        os.close(other_editor)
    worker.join(timeout=10)
    aliases = load_watch(watch).entities["china"].aliases
    assert "Dong Jun" in aliases and "Zhongnanhai" not in aliases


def test_dotted_keys_and_inline_tables_are_edited_in_their_own_style(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity]\nchina = {aliases = ["China"]}\nrussia.aliases = ["Russia"]\n\n'
                    '[rule.r]\nquery = "@china"', encoding="utf-8")
    add_aliases(path, "china", ["PRC"])
    add_exclude(path, "china", "fine china")
    add_exclude(path, "russia", "Russian roulette")
    set_rule_enabled(path, "r", False)
    assert path.read_text(encoding="utf-8") == (
        '[entity]\nchina = {aliases = ["China", "PRC"], exclude = ["fine china"]}\n'
        'russia.aliases = ["Russia"]\nrussia.exclude = ["Russian roulette"]\n\n'
        '[rule.r]\nquery = "@china"\nenabled = false\n')


def test_new_lines_follow_the_files_crlf_line_endings(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_bytes(b'[entity.c]\r\naliases = [\r\n  "China",\r\n]\r\n\r\n'
                     b'[rule.r]\r\nquery = "@c"\r\nseverity = "info"\r\n')
    add_aliases(path, "c", ["PRC"])
    add_exclude(path, "c", "fine china")
    set_rule_enabled(path, "r", False)
    assert path.read_bytes() == (b'[entity.c]\r\naliases = [\r\n  "China",\r\n  "PRC",\r\n]\r\n'
                                 b'exclude = ["fine china"]\r\n\r\n'
                                 b'[rule.r]\r\nquery = "@c"\r\nenabled = false\r\nseverity = "info"\r\n')


def test_a_file_that_is_not_toml_gets_the_loaders_located_error(tmp_path):
    path = tmp_path / "watch.toml"
    path.write_text('[entity.china]\naliases = ["China"\n', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as error:
        add_aliases(path, "china", ["PRC"])
    assert_refused(path, before, error, "invalid TOML", f"{path}:")
