"""The terminal table: widths in the cells a terminal draws, flexible columns wrapping first."""

from __future__ import annotations

from monitor.cli.table import table_lines, text_width, wrap

FLEXIBLE = {"TITLE", "URL"}


def _rendered(headers, rows, width):
    head, body = table_lines(headers, rows, width, FLEXIBLE)
    return ["  ".join(line).rstrip() for line in head + body]


def test_a_table_that_fits_keeps_its_natural_widths():
    lines = _rendered(["ID", "TITLE"], [["1", "Short"], ["22", "Also short"]], 80)
    assert lines == ["ID  TITLE", "1   Short", "22  Also short"]


def test_wide_characters_count_two_cells_and_wrap_inside_their_column():
    title = "中国向俄罗斯出口无人机零部件的报道" * 3  # 51 wide characters, no spaces
    lines = _rendered(["ID", "STATUS", "TITLE"], [["7", "ok", title]], 40)
    assert all(text_width(line) <= 40 for line in lines), lines
    assert len(lines) > 3 and lines[1].startswith("7   ok      中国")
    assert "".join(line[12:].strip() for line in lines[1:]) == title  # nothing lost in the fold


def test_words_wrap_at_spaces_and_short_columns_stay_on_one_line():
    title = "Chinese drone parts keep flowing to Russia through Central Asia, investigators say"
    lines = _rendered(["WHEN", "TITLE"], [["2026-12-05 12:00", title]], 50)
    assert lines[1].startswith("2026-12-05 12:00  Chinese")
    assert all(len(line) <= 50 for line in lines)
    body = [line[18:] for line in lines[1:]]
    assert " ".join(part.strip() for part in body) == title  # broken only at spaces


def test_short_columns_are_cut_with_an_ellipsis_when_nothing_else_gives_way():
    head, body = table_lines(["ERRORCODE", "STATUS"], [["x" * 30, "y" * 30]], 20, FLEXIBLE)
    assert all(text_width("  ".join(line)) <= 20 for line in head + body)
    assert body[0][0].rstrip().endswith("…") or body[0][1].rstrip().endswith("…")
    assert len(body) == 1


def test_combining_marks_take_no_cell():
    assert text_width("й") == 1 and text_width("й") == 1 and text_width("漢字") == 4


def test_a_word_wider_than_the_column_is_folded():
    assert wrap("abcdefghij klm", 4) == ["abcd", "efgh", "ij", "klm"]
