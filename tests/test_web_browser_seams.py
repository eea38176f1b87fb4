"""What only a browser shows on the merged pages: layout at the seams."""

from __future__ import annotations

from pathlib import Path

from browser_support import screenshot
from test_web_browser import Served, browser, env  # noqa: F401 (pytest fixtures)
from web_support import build_matches_db


def test_feed_rows_actions_cell_lines_up_with_its_row(browser, env, tmp_path) -> None:  # noqa: F811 (fixtures)
    """The actions are a table cell: its borders run with the row's, at phone and desktop widths."""
    from selenium.webdriver.common.by import By

    Path(env["MONITOR_DB"]).parent.mkdir()
    build_matches_db(Path(env["MONITOR_DB"]))
    with open(Path(env["MONITOR_CONFIG"]) / "feeds.toml", "a") as feeds:
        feeds.write('\n[[feed]]\nname = "kyiv-news"\nurl = "http://127.0.0.1:9/k.xml?apikey=KEY1"\n'
                    '\n[[feed]]\nname = "other-news"\nurl = "http://127.0.0.1:9/o.xml"\n')
    web = Served(env, "web")
    try:
        for width in (1280, 390):
            browser.set_window_size(width, 1000)
            browser.get(web.base + "/feeds")
            rows = browser.find_elements(By.CSS_SELECTOR, "table.feeds tbody tr")
            assert len(rows) == 2
            for row in rows:
                boxes = browser.execute_script(
                    "return Array.from(arguments[0].children).map(td => "
                    "[getComputedStyle(td).display, td.getBoundingClientRect().bottom])"
                    ".filter(box => box[0] != 'none')", row)
                assert {display for display, _ in boxes} == {"table-cell"}, boxes
                assert max(b for _, b in boxes) - min(b for _, b in boxes) < 1, boxes
            screenshot(browser, tmp_path, f"feeds-{width}", width=width)
    finally:
        web.stop()
