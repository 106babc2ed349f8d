"""`liaison feed`: analysts' feeds."""

from __future__ import annotations

from typing import Annotated

import typer

from schemas.audit import FeedRead
from schemas.errors import SchemaError
from schemas.keys import READER
from services.audit_log import append_audit
from services.cli._common import (
    INVALID,
    _fail,
    _now,
    _run,
    _settings,
)
from services.cli.audit import Area, OutOption, ThemeOpt, _filters, _tool_key, _write_events
from services.inputs import check_analyst, check_purpose
from services.replay import Replay, replay_topics
from services.trust import load_trust

feed_app = typer.Typer(help="Analysts' feeds.", no_args_is_help=True)


@feed_app.command("read")
def feed_read(
    analyst: Annotated[str, typer.Option("--analyst", help="Your analyst id (audited).")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why you are reading (audited).")],
    area: Area = None,
    theme: ThemeOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601.")] = None,
    output: OutOption = None,
) -> None:
    """Read verified events from the area feed; the read is audited with its purpose."""
    settings = _settings()
    try:
        analyst = check_analyst(analyst)
    except SchemaError as exc:
        _fail(f"--analyst: {exc}", INVALID)
    try:
        purpose = check_purpose(purpose)
    except SchemaError as exc:
        _fail(f"--purpose: {exc}", INVALID)
    filters = _filters(since, None, area, theme)

    async def run() -> Replay:
        trust = await load_trust(settings)
        found = await replay_topics(settings, [settings.topics.feed], filters, trust, _now())
        await append_audit(settings, [FeedRead(
            at=_now(), actor=f"analyst:{analyst}", analyst=analyst, purpose=purpose,
            filters=filters.as_strings(), returned=len(found.verified),
            event_ids=tuple(dict.fromkeys(opened.event.id for _, opened in found.verified)),
        )], _tool_key(settings, READER, trust))  # fmt: skip
        return found

    _write_events(_run(run), output)
