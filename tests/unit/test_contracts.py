"""The event contracts: envelopes, payloads, privacy, and the published schema files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import (
    EVENT_MODELS,
    CloudEvent,
    RequestReceived,
    UnknownEventType,
)
from schemas.generate import documents, render

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_an_event_travels_in_a_cloudevent_envelope_keyed_by_request() -> None:
    data = RequestReceived(
        request_id="R1",
        received_at=NOW,
        urgency="48h",
        motive="general",
        commune_insee="79174",
    )
    event = CloudEvent.wrap(data, source="/sas-orientation/intake", time=NOW)
    assert event.specversion == "1.0" and event.subject == "R1"
    assert event.type == "fr.sas.orientation.request.received.v2"
    decoded = CloudEvent.model_validate_json(event.model_dump_json())
    assert decoded.payload() == data


def test_unknown_types_and_bad_payloads_are_refused() -> None:
    event = CloudEvent(id="1", type="fr.sas.orientation.nope.v1", source="/x", time=NOW, subject="R", data={})
    with pytest.raises(UnknownEventType):
        event.payload()
    bad = CloudEvent(id="1", type=RequestReceived.type_name(), source="/x", time=NOW, subject="R", data={})
    with pytest.raises(ValidationError):
        bad.payload()


def test_consumers_tolerate_fields_added_later() -> None:
    data = {
        "request_id": "R",
        "received_at": NOW.isoformat(),
        "urgency": "24h",
        "motive": "general",
        "commune_insee": "79191",
        "added_in_a_later_version": True,
    }
    assert RequestReceived.model_validate(data).urgency == "24h"


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


@pytest.mark.parametrize("model", EVENT_MODELS, ids=lambda m: m.type_name())
def test_no_patient_identity_in_any_event(model: type) -> None:
    names = _property_names(model.model_json_schema())  # type: ignore[attr-defined]
    assert not names & {"contact", "patient_name", "patient_phone", "birth_date", "nir", "address"}
    if model is RequestReceived:
        assert not names & {"name", "phone"}


@pytest.mark.parametrize("path", sorted(documents()), ids=lambda p: p.name)
def test_published_schema_files_are_current(path: Any) -> None:
    assert path.exists(), f"{path.name} missing: run `python -m schemas.generate`"
    assert path.read_text(encoding="utf-8") == render(documents()[path]), "run `python -m schemas.generate`"


def test_the_asyncapi_readers_are_the_services_wiring() -> None:
    from services.consumers import not_carried, readers, subscriptions

    groups = subscriptions()
    assert not_carried(groups) == []  # every handled type travels on a topic its group reads
    document = json.loads((Path(__file__).parents[2] / "schemas" / "asyncapi.json").read_text(encoding="utf-8"))
    documented = {name: channel["description"] for name, channel in document["channels"].items() if " read by " in name}
    wired = {
        f"{r.topic} read by {r.group}": f"Handles {', '.join(t.__name__ for t in r.events)}." for r in readers(groups)
    }
    assert documented == wired  # run `python -m schemas.generate` after changing a handler table
    assert {g.name for g in groups} == {"intake", "matcher", "notifier", "ops"}
