"""`monitor mute|unmute`: mark a story's match as a false positive, and undo that."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from monitor.cli.context import App
from monitor.cli.output import emit
from monitor.cli.reading import _open_for_writing

# --------------------------------------------------------------------------
# monitor mute
# --------------------------------------------------------------------------


@click.command("mute")
@click.argument("story_id", metavar="ID", type=int)
@click.option("--rule", help="Only this rule's match (default: every match of the story).")
@click.option("--reason", help="Why it is a false positive (shown by `rules backtest`).")
@click.pass_obj
def mute_command(app: App, story_id: int, rule: str | None, reason: str | None) -> None:
    """Mark a story's match as a false positive: its unsent alerts are muted
    and it sends nothing more; `monitor rules backtest` lists it so the rule
    can be fixed.

    \b
    Examples:
      monitor mute 42
      monitor mute 42 --rule china_sanctions --reason "about Chinese New Year"
    """
    from monitor.read.search import mute

    store = _open_for_writing(app.db_path)
    try:
        done = mute(store, story_id, rule=rule, reason=reason, now=datetime.now(UTC))
    finally:
        store.close()
    if done["muted"]:
        emit(f"muted story {story_id}: {', '.join(done['muted'])}")
    if done["already_muted"]:
        emit(f"already muted: {', '.join(done['already_muted'])}")
    count = done["alerts_muted"]
    emit(f"{count} unsent alert{'s' if count != 1 else ''} muted")


@click.command("unmute")
@click.argument("story_id", metavar="ID", type=int)
@click.option("--rule", help="Only this rule's match (default: every match of the story).")
@click.pass_obj
def unmute_command(app: App, story_id: int, rule: str | None) -> None:
    """Undo `monitor mute`: the story's matches count again (in `matches`, `report`
    and backtests). Alerts muted then stay unsent.

    \b
    Examples:
      monitor unmute 42
      monitor unmute 42 --rule china_sanctions
    """
    from monitor.read.search import unmute

    store = _open_for_writing(app.db_path)
    try:
        done = unmute(store, story_id, rule=rule)
    finally:
        store.close()
    if done["unmuted"]:
        emit(f"unmuted story {story_id}: {', '.join(done['unmuted'])}")
    if done["not_muted"] or not done["unmuted"]:
        emit(f"not muted: {', '.join(done['not_muted']) or 'no match of this story'}")


COMMANDS = [mute_command, unmute_command]
