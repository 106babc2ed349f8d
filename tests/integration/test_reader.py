"""Analysts read through the reader service, against the real broker: need-to-know, the
credential as the only identity, and every read or refusal audited by the service."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from schemas.audit import InvalidRecord, SealedRecord, judge_sealed
from schemas.envelope import parse_dsse, seal
from schemas.events import ConcernRaised
from schemas.keys import OPERATOR, READER, SigningKey
from schemas.records import event_record
from services.kafka import kafka_sink, read_from
from services.reader.analysts import RegistryFile
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import env_for, one_error_line, run_liaison
from tests.factories import concern, key_for, utc_now
from tests.integration.test_audit import stored_everything

pytestmark = pytest.mark.kafka

LEEDS, KENT, BRADFORD = "E08000035", "E10000016", "E08000032"
LIAISON = [sys.executable, "-m", "services"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def put_on_feed(
    settings: Settings, signing: dict[str, SigningKey], events: list[tuple[ConcernRaised, str]]
) -> None:
    """Each event sealed by its inspectorate (or by an untrusted key: ``"forged"``) and put
    on the area feed as the router forwards it."""
    async with kafka_sink(settings) as sink:
        for event, signer in events:
            key = key_for(event.source.value) if signer == "forged" else signing[signer]
            record = event_record(event, seal(event, key, utc_now()).envelope, settings.topics)
            await sink.send(dataclasses.replace(record, topic=settings.topics.feed))


@contextlib.asynccontextmanager
async def http_service(
    settings: Settings, verb: str, env: dict[str, str], port: int
) -> AsyncIterator[str]:
    """`liaison serve VERB` (an HTTP service on ``port``) until the block ends, once its
    /healthz answers; then SIGTERM, and it must exit 0."""
    service = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", verb,
        env={**env_for(settings), **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    failed = False
    try:
        async with httpx2.AsyncClient(base_url=url, timeout=2.0) as client:
            for _ in range(300):
                assert service.returncode is None, f"`liaison serve {verb}` stopped"
                with contextlib.suppress(httpx2.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"`liaison serve {verb}` never answered")
        yield url
    except BaseException:
        failed = True
        raise
    finally:
        if service.returncode is None:
            service.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(service.communicate(), 30)
        if failed:  # what the service logged, beside the test's failure
            sys.stderr.write(f"--- `liaison serve {verb}` logged:\n{err.decode()[-8000:]}\n")
        assert service.returncode == 0, err.decode()


def reader_service(settings: Settings, port: int) -> contextlib.AbstractAsyncContextManager[str]:
    """`liaison serve reader` on ``port`` until the block ends (then SIGTERM, exit 0)."""
    return http_service(settings, "reader", {"LIAISON_READER_PORT": str(port)}, port)


async def audited(settings: Settings) -> list[SealedRecord | InvalidRecord]:
    """Every value on the audit topic, judged as the audit service judges it."""
    trust = await load_trust(settings)
    records = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=2
    )
    return [
        judge_sealed(r.value, dt.datetime.fromtimestamp(r.timestamp_ms / 1000, dt.UTC), trust)
        for r in records
    ]


def of_action(judged: list[SealedRecord | InvalidRecord], *actions: str) -> list[SealedRecord]:
    return [j for j in judged if isinstance(j, SealedRecord) and j.record.action in actions]


async def issue_credential(kafka: Settings, tmp_path: Path) -> Path:
    """`liaison analysts add` for a.khan in Yorkshire and The Humber; the token's file."""
    # The operator issues the credential: shown once (here, written to a 0600 file).
    token_file = tmp_path / "a.khan.token"
    added = await run_liaison(
        kafka, "analysts", "add", "a.khan", "--regions", "Yorkshire and The Humber",
        "--out", str(token_file),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added analyst a.khan (areas: none; regions: Yorkshire and The Humber" in added.stderr
    token = token_file.read_text().strip()
    assert token.startswith("lsn_")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    registry_text = RegistryFile(kafka).path.read_text()
    assert token not in registry_text  # only its hash is kept
    assert stat.S_IMODE(RegistryFile(kafka).path.stat().st_mode) == 0o600
    return token_file


async def audit_log_names_the_analyst(
    kafka: Settings, leeds: ConcernRaised, bradford: ConcernRaised
) -> None:
    """Every read and refusal is on the log, signed by the reader's key, naming a.khan; the
    operator's changes are signed by the operator's key."""
    judged = await audited(kafka)
    reads = of_action(judged, "feed.read", "feed.refused")
    assert [(r.record.action, r.record.actor, r.key.owner) for r in reads] == [
        ("feed.read", "analyst:a.khan", READER),
        ("feed.read", "analyst:a.khan", READER),
        ("feed.refused", "analyst:a.khan", READER),
        ("feed.read", "analyst:a.khan", READER),
        ("feed.refused", "analyst:a.khan", READER),
    ]
    first, _, kent_refused, regional, mismatch = (r.record for r in reads)
    assert first.model_dump(include={"purpose", "filters", "event_ids"}) == {
        "purpose": "JTAI shortlist", "filters": {"area": LEEDS}, "event_ids": (leeds.id,),
    }  # fmt: skip
    assert kent_refused.model_dump(include={"reason", "filters", "event_ids"}) == {
        "reason": "out_of_scope", "filters": {"area": KENT}, "event_ids": (),
    }  # fmt: skip
    assert set(regional.event_ids) == {leeds.id, bradford.id}
    assert mismatch.model_dump(include={"reason"}) == {"reason": "not_the_credential"}
    operators = of_action(judged, "analyst.added", "analyst.revoked")
    assert [(r.record.action, r.key.owner) for r in operators] == [
        ("analyst.added", OPERATOR),
        ("analyst.revoked", OPERATOR),
    ]
    assert all(r.record.actor.startswith("operator:") for r in operators)


async def auditors_see_the_analyst(
    kafka: Settings, signing: dict[str, SigningKey], leeds: ConcernRaised
) -> None:
    """The audit service stores the reader's records under the authenticated name: who-saw
    shows the Leeds read, activity the reads and the refusals."""
    await stored_everything(kafka, signing)
    who = await run_liaison(kafka, "audit", "who-saw", str(leeds.id))
    assert who.returncode == 0, who.stderr
    assert "feed.read" in who.stdout
    assert "analyst:a.khan" in who.stdout
    did = await run_liaison(kafka, "audit", "activity", "--actor", "analyst:a.khan")
    assert did.returncode == 0, did.stderr
    assert did.stdout.count("feed.read") == 3
    assert did.stdout.count("feed.refused") == 2


async def test_an_analyst_scoped_to_yorkshire_reads_leeds_is_refused_kent_and_is_audited(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    leeds = concern(area=LEEDS, theme="neglect")
    kent = concern(area=KENT, theme="neglect")
    bradford = concern(area=BRADFORD, theme="domestic_abuse")
    forged = concern(area=LEEDS, theme="neglect")
    await put_on_feed(
        kafka, signing, [(leeds, "ofsted"), (kent, "ofsted"), (bradford, "ofsted"),
                         (forged, "forged")],
    )  # fmt: skip

    token_file = await issue_credential(kafka, tmp_path)

    port = free_port()
    as_khan = {"LIAISON_ANALYST_TOKEN_FILE": str(token_file), "LIAISON_READER_PORT": str(port)}
    async with reader_service(kafka, port):
        read = await run_liaison(
            kafka, "feed", "read", "--purpose", "JTAI shortlist", "--area", LEEDS, env=as_khan
        )
        assert read.returncode == 0, read.stderr
        assert [json.loads(line)["id"] for line in read.stdout.splitlines()] == [str(leeds.id)]
        exported = tmp_path / "leeds.jsonl"
        signed = await run_liaison(
            kafka, "feed", "read", "--purpose", "JTAI shortlist", "--area", LEEDS,
            "--envelopes", "--out", str(exported), env=as_khan,
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        assert f"wrote 1 signed envelope(s) to {exported}" in signed.stderr
        (envelope,) = exported.read_bytes().splitlines()
        _, payload, keyid, _ = parse_dsse(envelope)  # the envelope exactly as signed
        assert json.loads(payload)["id"] == str(leeds.id)
        assert keyid == signing["ofsted"].keyid

        refused = await run_liaison(
            kafka, "feed", "read", "--purpose", "JTAI shortlist", "--area", KENT, env=as_khan
        )
        line = one_error_line(refused)
        assert "area E10000016 (Kent, South East) is outside your scope" in line
        assert "regions: Yorkshire and The Humber" in line
        assert refused.stdout == ""

        everything = await run_liaison(
            kafka, "feed", "read", "--purpose", "Regional picture", env=as_khan
        )
        assert everything.returncode == 0, everything.stderr
        ids = [json.loads(line)["id"] for line in everything.stdout.splitlines()]
        assert sorted(ids) == sorted([str(leeds.id), str(bradford.id)])  # not Kent, not forged

        # An unknown credential: refused, nothing returned, nothing audited.
        stranger = tmp_path / "stranger.token"
        stranger.write_text("lsn_" + "A" * 43)
        unknown = await run_liaison(
            kafka, "feed", "read", "--purpose", "JTAI shortlist", "--token-file", str(stranger),
            env={"LIAISON_READER_PORT": str(port)},
        )  # fmt: skip
        assert "credential (missing, unknown or revoked)" in one_error_line(unknown)
        assert unknown.stdout == ""

        # A self-declared name is no identity: the credential's is.
        claimed = await run_liaison(
            kafka, "feed", "read", "--analyst", "test", "--purpose", "JTAI shortlist",
            env=as_khan,
        )  # fmt: skip
        assert "names another analyst than the credential's" in one_error_line(claimed)
        assert claimed.stdout == ""

        revoked = await run_liaison(
            kafka, "analysts", "revoke", "a.khan", "--reason", "moved to another team"
        )
        assert revoked.returncode == 0, revoked.stderr
        after = await run_liaison(
            kafka, "feed", "read", "--purpose", "JTAI shortlist", "--area", LEEDS, env=as_khan
        )
        assert "credential (missing, unknown or revoked)" in one_error_line(after)
        assert after.stdout == ""

    await audit_log_names_the_analyst(kafka, leeds, bradford)
    await auditors_see_the_analyst(kafka, signing, leeds)

    listed = await run_liaison(kafka, "analysts", "list")
    assert listed.returncode == 0, listed.stderr
    assert "a.khan" in listed.stdout
    assert "revoked" in listed.stdout
    assert "lsn_" not in listed.stdout


async def test_an_operator_gets_one_line_for_a_scope_that_names_nothing_real(
    kafka: Settings,
) -> None:
    unknown = await run_liaison(kafka, "analysts", "add", "a.khan", "--areas", "Leeds,Leedz")
    assert "'Leedz' is not an upper-tier local authority" in one_error_line(unknown)
    assert "nearest: Leeds" in one_error_line(unknown)
    region = await run_liaison(kafka, "analysts", "add", "a.khan", "--regions", "Yorkshire")
    assert "nearest: Yorkshire and The Humber" in one_error_line(region)
    theme = await run_liaison(
        kafka, "analysts", "add", "a.khan", "--areas", LEEDS, "--themes", "neglet"
    )
    assert "'neglet' is not a theme; nearest: neglect" in one_error_line(theme)
    nothing = await run_liaison(kafka, "analysts", "add", "a.khan", "--themes", "neglect")
    assert "at least one area or region" in one_error_line(nothing)
    assert not RegistryFile(kafka).path.exists()


async def test_feed_read_says_when_the_reader_service_is_not_there(
    kafka: Settings, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("lsn_" + "A" * 43)
    done = await run_liaison(
        kafka, "feed", "read", "--purpose", "JTAI shortlist",
        env={"LIAISON_ANALYST_TOKEN_FILE": str(token), "LIAISON_READER_PORT": str(free_port())},
    )  # fmt: skip
    assert "cannot be reached" in one_error_line(done)
    no_token = await run_liaison(kafka, "feed", "read", "--purpose", "JTAI shortlist")
    assert "no analyst credential" in one_error_line(no_token)


async def test_a_reader_service_whose_port_is_taken_is_one_error_line(kafka: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await run_liaison(kafka, "serve", "reader", env={"LIAISON_READER_PORT": str(port)})
    assert f"cannot listen on 127.0.0.1:{port}" in one_error_line(done)
