"""The committed JSON Schemas and AsyncAPI document match what the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.json_schema import json_schemas, render
from services.asyncapi import asyncapi_document
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HOW = "regenerate with `liaison schema export schemas/json` and commit"


def test_committed_json_schemas_are_current() -> None:
    committed = {p.name: p.read_text() for p in (ROOT / "schemas/json").glob("*.schema.json")}
    generated = {name: render(schema) for name, schema in json_schemas().items()}
    assert set(committed) == set(generated), HOW
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: {HOW}"


def test_json_schemas_require_type_and_forbid_other_fields() -> None:
    for name, schema in json_schemas().items():
        assert schema["required"][0] == "type"
        assert schema["properties"]["type"]["const"] == name.removesuffix(".schema.json")
        assert schema["additionalProperties"] is False


def test_committed_asyncapi_is_current() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:39092", topic_prefix="")
    committed = (ROOT / "schemas/asyncapi.json").read_text()
    assert committed == asyncapi_document(settings), (
        "schemas/asyncapi.json is stale: regenerate with"
        " `liaison asyncapi --out schemas/asyncapi.json` and commit"
    )


def test_asyncapi_names_every_contract_queue() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:39092", topic_prefix="")
    document = json.loads(asyncapi_document(settings))
    text = json.dumps(document["channels"])
    for spec in settings.topics.specs():
        if spec.name.startswith(("liaison.programme.", "liaison.events.")):
            assert spec.name in text
    assert "liaison.jtai" in text
