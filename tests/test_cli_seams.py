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
