"""`liaison validate`, `schema`, `asyncapi` and `publish`: the event contract."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from schemas.inspectorates import Inspectorate
from schemas.json_schema import json_schemas, render
from services.asyncapi import asyncapi_document
from services.cli._common import (
    INVALID,
    _fail,
    _input,
    _now,
    _reading,
    _run,
    _say,
    _settings,
    app,
    err,
    out,
)
from services.inputs import (
    check_documents,
    read_documents,
)
from services.keystore import KeyStore, signing_key_for
from services.publish import publish_documents
from services.trust import load_trust

schema_app = typer.Typer(help="The event contract as JSON Schema.", no_args_is_help=True)

# -- the event contract -------------------------------------------------------------------


@app.command("validate")
def validate(
    file: Annotated[str, typer.Argument(help="A JSON object or JSON Lines file; - for stdin.")],
) -> None:
    """Check events against the contract without publishing; exit 2 listing every problem."""
    stream = _input(file, exit_code=INVALID)
    valid = invalid = 0
    with _reading(file, stream):
        for checked in check_documents(read_documents(stream), _now):
            for problem in checked.problems:
                out.print(problem, highlight=False, markup=False)
            if checked.event is None:
                invalid += 1
                continue
            valid += 1
            event = checked.event
            out.print(
                f"{checked.document.where}: ok ({event.type}, id {event.id})", highlight=False
            )
    if valid + invalid == 0:
        _fail(f"no events found in {file}", INVALID)
    summary = f"{valid + invalid} checked: {valid} valid, {invalid} invalid."
    if invalid:
        _fail(summary, INVALID)
    _say(summary)


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write one file per event type.")],
) -> None:
    """Write the JSON Schema of every event type into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / name).write_text(render(schema))
        _say(f"wrote {directory / name}")


@app.command("asyncapi")
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the AsyncAPI 3.0 document of Liaison's faststream application."""
    document = asyncapi_document(_settings())
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)
        _say(f"wrote {output}")


# -- publish ------------------------------------------------------------------------------


@app.command("publish")
def publish(
    as_: Annotated[
        Inspectorate,
        typer.Option("--as", help="The publishing inspectorate.", case_sensitive=False),
    ],
    file: Annotated[str, typer.Argument(help="A JSON object or JSON Lines file; - for stdin.")],
) -> None:
    """Validate, sign and publish events; print each id once Kafka has it.

    Invalid events are reported by line and never sent; the others are published. Exit 0
    when everything was published, 2 when some events were invalid, 1 on failure.
    """
    settings = _settings()
    stream = _input(file)

    async def run() -> int:
        trust = await load_trust(settings)
        key = signing_key_for(as_.value, settings, KeyStore(settings), trust)
        with stream:
            return await publish_documents(
                settings, as_, read_documents(stream), key=key, trust=trust, out=out, err=err,
                clock=_now,
            )  # fmt: skip

    raise typer.Exit(_run(run))
