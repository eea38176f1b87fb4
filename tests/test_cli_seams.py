"""The CLI against the hardening's masking, where the branches met."""

from __future__ import annotations

from click.testing import CliRunner

from monitor.cli import main


def test_feeds_add_masks_a_secret_query_value_in_what_it_prints(tmp_path) -> None:
    config, db = tmp_path / "cfg", tmp_path / "monitor.db"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(config), "--no-feeds"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config), "--db", str(db), "feeds", "add",
                                  "http://127.0.0.1:9/f.xml?apikey=SEKRET123&x=1", "--name", "keyed",
                                  "--no-discover"])
    assert result.exit_code == 0, result.output
    assert "added feed keyed (http://127.0.0.1:9/f.xml?apikey=***&x=1)" in result.output
    assert "SEKRET123" not in result.output
    assert "SEKRET123" in (config / "feeds.toml").read_text(), "the config keeps the real URL"


def test_feeds_import_masks_secret_query_values_in_what_it_prints(tmp_path) -> None:
    config, db = tmp_path / "cfg", tmp_path / "monitor.db"
    opml = tmp_path / "subs.opml"
    opml.write_text('<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
                    '<outline text="keyed" xmlUrl="http://127.0.0.1:9/k.xml?token=TOKEN456"/>'
                    '<outline xmlUrl="http://127.0.0.1:9/bad.xml?token=TOKEN789" text=""/>'
                    '</body></opml>')
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(config), "--no-feeds"]).exit_code == 0
    for _ in range(2):  # added, then skipped as already present
        result = runner.invoke(main, ["--config", str(config), "--db", str(db), "feeds", "import", str(opml)])
        assert "token=***" in result.output, result.output
        assert "TOKEN456" not in result.output and "TOKEN789" not in result.output, result.output
