"""`liaison feed`, the analysts' live terminal feed, against the real broker and the real
reader service: JSON Lines for scripts, the live table through a pseudo-terminal, filters
checked before any network, the scope refused and audited, every row sent audited."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from schemas.audit import FeedRead, FeedRefused
from schemas.events import ConcernRaised
from schemas.keys import READER, SigningKey
from services.settings import Settings
from tests.conftest import env_for, one_error_line, run_liaison
from tests.factories import concern, utc_now
from tests.integration.test_reader import (
    BRADFORD,
    KENT,
    LEEDS,
    audited,
    free_port,
    issue_credential,
    of_action,
    put_on_feed,
    reader_service,
)

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]
PURPOSE = "Following Leeds for the JTAI shortlist"
WAIT_S = 60
Done = subprocess.CompletedProcess[str]
Feed = Callable[..., Awaitable[Done]]


def occurred(days_ago: float, area: str, summary: str, **fields: object) -> ConcernRaised:
    return concern(
        area=area, summary=summary, occurred_at=utc_now() - dt.timedelta(days=days_ago), **fields
    )


@contextlib.asynccontextmanager
async def as_analyst(kafka: Settings, tmp_path: Path) -> AsyncIterator[tuple[dict[str, str], Feed]]:
    """The reader service running, and a.khan's environment (Yorkshire and The Humber)."""
    token_file = await issue_credential(kafka, tmp_path)
    port = free_port()
    env = {"LIAISON_ANALYST_TOKEN_FILE": str(token_file), "LIAISON_READER_PORT": str(port)}
    async with reader_service(kafka, port):
        yield env, lambda *args: run_liaison(kafka, "feed", *args, env=env)


async def next_line(stream: asyncio.StreamReader) -> dict[str, object]:
    line = await asyncio.wait_for(stream.readline(), WAIT_S)
    assert line, "the feed ended"
    row = json.loads(line)
    assert isinstance(row, dict)
    return row


def ids(done: Done) -> set[str]:
    """The ids a successful `liaison feed --json` or `feed read` printed."""
    assert done.returncode == 0, done.stderr
    return {json.loads(line)["id"] for line in done.stdout.splitlines()}


async def terminal_reads(kafka: Settings) -> list[FeedRead]:
    """Every ``feed.read`` of the terminal feed, each signed by the reader's key."""
    sealed = [
        j for j in of_action(await audited(kafka), "feed.read")
        if isinstance(j.record, FeedRead) and j.record.view == "terminal.feed"
    ]  # fmt: skip
    assert {j.key.owner for j in sealed} <= {READER}
    return [j.record for j in sealed if isinstance(j.record, FeedRead)]


async def terminal_refusals(kafka: Settings) -> list[tuple[str, str, dict[str, str]]]:
    """Who was refused what in the terminal feed, and why."""
    return [
        (j.record.analyst, j.record.reason, dict(j.record.filters))
        for j in of_action(await audited(kafka), "feed.refused")
        if isinstance(j.record, FeedRefused) and j.record.view == "terminal.feed"
    ]


async def follow_leeds(kafka: Settings, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`liaison feed --json --area Leeds` (following), its output piped."""
    return await asyncio.create_subprocess_exec(
        *LIAISON, "feed", "--json", "--area", "Leeds", "--purpose", PURPOSE,
        env={**env_for(kafka), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def ctrl_c(process: asyncio.subprocess.Process) -> str:
    """Stop a following feed as a person would; what it wrote on stderr."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(process.communicate(), WAIT_S)
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
        pytest.fail(f"the feed did not stop on Ctrl-C; it wrote: {err.decode()[-4000:]}")
    return err.decode()


async def bad_values_are_one_line_and_the_scope_is_refused(feed: Feed) -> None:
    typo = await feed("--json", "--area", "Leedz", "--purpose", PURPOSE)
    line = one_error_line(typo)
    assert typo.returncode == 2
    assert "--area: 'Leedz' is not an upper-tier local authority" in line
    assert "nearest: Leeds" in line
    assert typo.stdout == ""

    outside = await feed("--json", "--area", "Kent", "--purpose", PURPOSE)
    line = one_error_line(outside)
    assert "area E10000016 (Kent, South East) is outside your scope" in line
    assert outside.stdout == ""

    theme = await feed("read", "--theme", "neglct", "--purpose", PURPOSE)
    assert "--theme: 'neglct' is not a theme; nearest: neglect" in one_error_line(theme)
    assert theme.returncode == 2


async def test_the_feed_as_json_backfills_in_scope_follows_live_and_audits_every_row(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    leeds_old = occurred(3, LEEDS, "Strategy meetings start late.")
    leeds_recent = occurred(0.1, LEEDS, "Referrals wait too long.", theme="domestic_abuse")
    bradford = occurred(0.2, BRADFORD, "Return interviews are not offered.")
    kent = occurred(0.1, KENT, "Out of scope.")
    await put_on_feed(
        kafka, signing,
        [(leeds_recent, "ofsted"), (leeds_old, "ofsted"), (bradford, "ofsted"), (kent, "ofsted")],
    )  # fmt: skip

    async with as_analyst(kafka, tmp_path) as (env, feed):
        once = await feed("--json", "--no-follow", "--area", "Leeds", "--purpose", PURPOSE)
        assert once.returncode == 0, once.stderr
        rows = [json.loads(line) for line in once.stdout.splitlines()]
        assert [r["id"] for r in rows] == [str(leeds_old.id), str(leeds_recent.id)]
        assert (rows[0]["area_name"], rows[0]["summary"]) == ("Leeds", leeds_old.summary)
        assert "2 shown" in once.stderr

        two_days_ago = (utc_now() - dt.timedelta(days=2)).date().isoformat()
        recent = await feed(
            "--json", "--no-follow", "--area", LEEDS, "--since", two_days_ago,
            "--purpose", PURPOSE,
        )  # fmt: skip
        assert ids(recent) == {str(leeds_recent.id)}

        region = await feed(
            "--json", "--no-follow", "--region", "Yorkshire and The Humber", "--theme", "neglect",
            "--purpose", PURPOSE,
        )  # fmt: skip
        assert ids(region) == {str(leeds_old.id), str(bradford.id)}

        await bad_values_are_one_line_and_the_scope_is_refused(feed)
        # `feed read` takes a name now.
        read = await feed("read", "--area", "leeds", "--purpose", PURPOSE)
        assert ids(read) == {str(leeds_old.id), str(leeds_recent.id)}

        following = await follow_leeds(kafka, env)
        try:
            assert following.stdout is not None
            assert (await next_line(following.stdout))["id"] == str(leeds_old.id)
            assert (await next_line(following.stdout))["id"] == str(leeds_recent.id)
            live = occurred(0, LEEDS, "A concern published while following.")
            await put_on_feed(kafka, signing, [(occurred(0, KENT, "Not for a.khan."), "ofsted")])
            await put_on_feed(kafka, signing, [(live, "ofsted")])
            row = await next_line(following.stdout)
            assert (row["id"], row["summary"]) == (str(live.id), live.summary)
        finally:
            err = await ctrl_c(following)
        assert following.returncode == 0, err
        assert "Traceback" not in err

        # A feed still open when the service stops: the service stops (exit 0, below),
        # and the feed says so in one line.
        lingering = await follow_leeds(kafka, env)
        assert lingering.stderr is not None
        status = await asyncio.wait_for(lingering.stderr.readline(), WAIT_S)
        assert b"following live" in status
    out, last = await asyncio.wait_for(lingering.communicate(), WAIT_S)
    assert lingering.returncode == 1
    assert last.decode().startswith("error: the reader service stopped; run the command again")
    assert len(out.splitlines()) == 3

    reads = await terminal_reads(kafka)
    assert [list(r.event_ids) for r in reads] == [
        [leeds_old.id, leeds_recent.id],  # --no-follow --area Leeds
        [leeds_recent.id],  # --since two days ago
        [leeds_old.id, bradford.id],  # the region, neglect
        [leeds_old.id, leeds_recent.id],  # the following feed's backfill
        [live.id],  # and what it sent live
        [leeds_old.id, leeds_recent.id, live.id],  # the feed open when the service stopped
    ]
    assert {(r.analyst, r.actor, r.purpose) for r in reads} == {
        ("a.khan", "analyst:a.khan", PURPOSE)
    }
    assert reads[0].filters == {"area": LEEDS}
    assert reads[1].filters["since"].startswith(two_days_ago)
    assert await terminal_refusals(kafka) == [("a.khan", "out_of_scope", {"area": KENT})]


# -- the live table, through a pseudo-terminal ----------------------------------------------

_ESCAPES = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]"
)


class Terminal:
    """What a pseudo-terminal's screen received (escape sequences left out)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.raw = b""
        self.more = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the other side closed (EIO)
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw += chunk
        self.more.set()

    @property
    def text(self) -> str:
        return _ESCAPES.sub("", self.raw.decode("utf-8", "replace"))

    async def shows(self, *words: str) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while not all(word in self.text for word in words):
                    self.more.clear()
                    await self.more.wait()
        except TimeoutError:
            missing = [word for word in words if word not in self.text]
            pytest.fail(f"the terminal never showed {missing}; it shows:\n{self.text[-3000:]}")

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


async def test_the_live_table_on_a_terminal_shows_findings_then_new_ones_until_ctrl_c(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    first = occurred(1, LEEDS, f"Strategy meetings start late {uuid.uuid4().hex[:6]}.")
    await put_on_feed(kafka, signing, [(first, "ofsted")])
    async with as_analyst(kafka, tmp_path) as (env, _):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        screen = Terminal(master)
        process = await asyncio.create_subprocess_exec(
            *LIAISON, "feed", "--area", "Leeds", "--purpose", PURPOSE,
            env={**env_for(kafka), **env, "TERM": "xterm-256color", "COLUMNS": "200",
                 "LINES": "40"},
            stdin=slave, stdout=slave, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        try:
            await screen.shows("Leeds", first.summary, "following live (Ctrl-C to stop)")
            assert "area_for_improvement" in screen.text
            assert "1 shown (1 earlier, 0 live)" in screen.text
            later = occurred(0, LEEDS, f"Return interviews not offered {uuid.uuid4().hex[:6]}.")
            await put_on_feed(kafka, signing, [(later, "ofsted")])
            await screen.shows(later.summary, "2 shown (1 earlier, 1 live)")
        finally:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), WAIT_S)
            except TimeoutError:
                process.kill()
                pytest.fail(f"the feed did not stop on Ctrl-C; it shows:\n{screen.text[-3000:]}")
            finally:
                screen.close()
        assert process.returncode == 0, screen.text[-2000:]
        assert "Traceback" not in screen.text
        assert "error:" not in screen.text

    reads = await terminal_reads(kafka)
    assert [list(r.event_ids) for r in reads] == [[first.id], [later.id]]
    assert {r.analyst for r in reads} == {"a.khan"}


README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_feed_commands() -> list[list[str]]:
    """The `liaison feed` lines of the README's analysts' section, as argument lists."""
    block = re.search(
        r"<!-- analyst-feed -->\n```sh\n(.*?)```\n<!-- /analyst-feed -->", README, re.S
    )
    assert block is not None, "README.md lost its analysts' feed examples"
    lines = [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]
    assert lines
    assert all(line[:2] == ["liaison", "feed"] for line in lines)
    return [line[2:] for line in lines]


async def test_the_readmes_feed_examples_run_as_written(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    await put_on_feed(
        kafka,
        signing,
        [
            (occurred(3, LEEDS, "Neglect in Leeds.", theme="neglect"), "ofsted"),
            (occurred(2, BRADFORD, "Severe in Bradford.", severity=4), "ofsted"),
        ],
    )
    async with as_analyst(kafka, tmp_path) as (_, feed):
        for args in readme_feed_commands():
            # Each as written; the ones that follow live are stopped after the earlier
            # findings (the live part is tested above), and printed as JSON to read here.
            extra = [a for a in ("--no-follow", "--json") if a not in args]
            done = await feed(*args, *extra)
            assert done.returncode == 0, done.stderr
            rows = [json.loads(line) for line in done.stdout.splitlines()]
            assert rows, args
            assert all(row["region"] == "Yorkshire and The Humber" for row in rows)
