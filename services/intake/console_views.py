"""What the regulators' console shows and takes, as plain functions (no I/O): the motives with
their protocols' criteria, a request as a row, the patient's place found among the communes,
the form made into the API's request body, the summary read to the patient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.common import geo, i18n
from services.common.i18n import N_
from services.common.motives import Motive, catalogue
from services.intake.domain import WAITING
from services.intake.models import OrientationRequest, RequestHistory


def motive_choices(lang: i18n.Lang) -> list[dict[str, Any]]:
    """The configured motives, each with the cooperation protocols' criteria where they apply."""
    flags = catalogue().red_flags
    return [
        {"code": m.code, "label": m.label_en if lang == "en" else m.label, "criteria": _criteria(m, flags, lang)}
        for m in catalogue().motives.values()
    ]


def _criteria(motive: Motive, flags: dict[str, str], lang: i18n.Lang) -> list[str]:
    said = []
    for step in motive.steps:
        if not step.protocol:
            continue
        parts = [step.protocol]
        if step.age_min is not None or step.age_max is not None:
            low, high = step.age_min or 0, step.age_max
            parts.append(
                f"{low}–{high} ans"
                if lang == "fr" and high
                else f"{low}+ ans"
                if lang == "fr"
                else f"aged {low}–{high}"
                if high
                else f"aged {low}+"
            )
        if step.sexes:
            parts.append(
                ", ".join(
                    ("femmes" if s == "F" else "hommes") if lang == "fr" else ("women" if s == "F" else "men")
                    for s in step.sexes
                )
            )
        if step.exclude:
            words = ", ".join(flags.get(code, code) for code in sorted(step.exclude))
            parts.append(("sauf : " if lang == "fr" else "not with: ") + words)
        said.append(" · ".join(parts))
    return said


def _commune_name(insee: str | None) -> str:
    found = geo.commune(insee or "")
    return found.name if found else insee or ""


def row_view(request: OrientationRequest) -> dict[str, Any]:
    """A request as the list and its page show it (no patient data: none is kept here)."""
    asked = request.asked or {}
    answer_by = datetime.fromisoformat(asked["answer_by"]) if asked.get("answer_by") else None
    appointment = request.appointment or {}
    start = datetime.fromisoformat(appointment["start"]) if appointment.get("start") else None
    return {
        "id": request.external_id,
        "status": request.status,
        "received_at": request.received_at,
        "motive": request.motive,
        "urgency": request.urgency,
        "commune": _commune_name(request.commune_insee),
        "age_band": request.age_band,
        "waiting": (request.waiting or {}).get("reason") if request.status == "searching" else None,
        "look_again_at": datetime.fromisoformat(request.waiting["look_again_at"])
        if request.status == "searching" and request.waiting and request.waiting.get("look_again_at")
        else None,
        "asked": asked.get("name") if request.status == "offered" else None,
        "answer_by": answer_by if request.status == "offered" else None,
        "appointment": appointment or None,
        "start": start,
        "professional": (appointment.get("professional") or {}).get("name"),
        "site": appointment.get("site") or {},
        "site_commune": (geo.commune((appointment.get("site") or {}).get("commune_insee") or "") or None),
        "reason": request.reason,
        "alternatives": [
            {**a, "start": datetime.fromisoformat(a["start"]) if a.get("start") else None}
            for a in request.alternatives or []
        ],
        "erased": request.patient_erased_at,
        "deadline": request.deadline,
    }


def history_view(history: list[RequestHistory], lang: i18n.Lang) -> list[dict[str, Any]]:
    """Each step in words: a search that waits says why (it would otherwise read "searching"
    twice), a request without solution says its reason."""
    steps = []
    for step in history:
        said = i18n.label(step.status, "outcome", lang)
        if step.reason and step.reason.startswith(WAITING):
            said = i18n.label(step.reason.removeprefix(WAITING), "waiting", lang)
        elif step.status == "unresolved" and step.reason:
            said = f"{said}{i18n.colon(lang)}{i18n.label(step.reason, 'unresolved', lang)}"
        steps.append({"at": step.at, "said": said})
    return steps


def located(place: str, chosen: str) -> tuple[dict[str, Any] | None, str | None, list[geo.Commune]]:
    """The patient's place as the API takes it: a commune found by name, postcode or INSEE code
    (`chosen` when several matched), or `lat, lon`. Else an error and the candidates."""
    if chosen and geo.commune(chosen):
        return {"commune_insee": chosen}, None, []
    text = place.strip()
    if "," in text:
        try:
            lat, lon = (float(part) for part in text.split(",", 1))
            return {"lat": lat, "lon": lon}, None, []
        except ValueError:
            pass
    found = geo.find_communes(text, 8)
    if not text or not found:
        return (
            None,
            N_("Commune introuvable : tapez son nom, son code postal, ou des coordonnées « 46.32, -0.46 »."),
            [],
        )
    if len(found) == 1 or (
        geo._folded(found[0].name) == geo._folded(text)
        and sum(geo._folded(c.name) == geo._folded(text) for c in found) == 1
    ):
        return {"commune_insee": found[0].insee}, None, []
    return None, N_("Plusieurs communes répondent : choisissez-la."), found


def summary(view: dict[str, Any], lang: i18n.Lang) -> str:
    """What the regulator reads to the patient once the appointment is made."""
    if view["status"] != "confirmed" or view["start"] is None:
        return ""
    site, place = view["site"], view["site_commune"]
    where = f"{site.get('name', '')}{', ' + place.name if place else ''}"
    if lang == "en":
        how = "by teleconsultation" if (view["appointment"] or {}).get("mode") == "teleconsultation" else f"at {where}"
        return f"You have an appointment with {view['professional']} on {i18n.when(view['start'], 'en')}, {how}."
    how = "en téléconsultation" if (view["appointment"] or {}).get("mode") == "teleconsultation" else f"au {where}"
    return f"Vous avez rendez-vous avec {view['professional']} le {i18n.when(view['start'], 'fr')}, {how}."


def request_body(request_id: str, now: datetime, place: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The console's form as the API's request body (RequestIn): the same checks follow."""
    contact = {"name": fields["contact_name"].strip() or None, "phone": fields["contact_phone"].strip() or None}
    return {
        "request_id": request_id,
        "received_at": now.isoformat(),
        "urgency": fields["urgency"],
        "motive": fields["motive"],
        "patient": {
            **place,
            "age": int(fields["age"]) if fields["age"] else None,
            "sex": fields["sex"] or None,
            "teleconsultation_ok": fields["teleconsultation"] == "on",
            "red_flags": fields["red_flags"],
            "contact": contact if any(contact.values()) else None,
        },
    }


_PLACE_FIELDS = {"commune_insee": "place", "lat": "place", "lon": "place", "patient": "place"}


def refused_fields(invalid: ValidationError) -> dict[str, str]:
    """The API schema's refusals, by the console's field."""
    refused = {}
    for error in invalid.errors():
        field = str(error["loc"][-1]) if error["loc"] else "form"
        refused[_PLACE_FIELDS.get(field, field)] = N_("Valeur refusée.")
    return refused
