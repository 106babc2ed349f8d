"""`liaison serve dashboard`: the analysts' web dashboard."""

from __future__ import annotations

import typer

from services.cli._common import _run, _settings, _stop_on_signals
from services.cli.serve import serve_app
from services.dashboard.service import serve_dashboard


@serve_app.command("dashboard")
def serve_dashboard_command() -> None:
    """Serve the analysts' web dashboard (LIAISON_DASHBOARD_HOST:PORT) until stopped.

    Analysts sign in with the credential an operator issued (`liaison analysts add`) and
    a stated purpose; they see the overview of their areas, the live feed, area pages and
    event details, only inside their scope, and every view is audited with the reader's
    key. Sessions end after LIAISON_DASHBOARD_SESSION_MINUTES, when the credential is
    revoked, or when the dashboard restarts. Started while the broker is down, it waits
    for it.
    """
    settings = _settings(service=True)

    async def serve() -> int:
        return await serve_dashboard(settings, _stop_on_signals())

    raise typer.Exit(_run(serve))
