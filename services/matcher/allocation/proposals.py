"""What the cascade says about a search, built from its rows and the candidate index: the
query for the matching rules, the events' payloads, and what to suggest when nobody fits.
Pure functions (no database, no broker)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from schemas.events import (
    Address,
    Alternative,
    CandidateExplanation,
    Channel,
    OfferProposed,
    PatientDetails,
    Period,
    ProfessionalRef,
    SiteRef,
)
from services.common import geo
from services.common.motives import Motive, Step, catalogue
from services.matcher.adapters import models
from services.matcher.domain import matching
from services.matcher.domain.decision import Decision, Policy, decide
from services.matcher.domain.index import DirectoryIndex


def query_for(index: DirectoryIndex, search: models.SearchRecord, asked: frozenset[str]) -> matching.Search:
    """The matching rules' view of a search, under its territory's radius."""
    territory = index.territory_of(search.commune_insee)
    return matching.Search(
        request_id=search.request_id,
        patient=matching.Place(search.lat, search.lon),
        deadline=search.deadline,
        teleconsultation_ok=search.teleconsultation_ok,
        radius_km=territory.radius_km if territory else matching.DEFAULT_RADIUS_KM,
        patient_cpts=territory.cpts_id if territory else None,
        already_asked=asked,
        department=geo_department(search.commune_insee),
    )


def decision_for(
    index: DirectoryIndex,
    search: models.SearchRecord,
    query: matching.Search,
    now: datetime,
    lead_time: timedelta,
    pending: int = 0,
) -> Decision:
    """The decision core on this request, under its territory's policy."""
    territory = index.territory_of(search.commune_insee)
    policy = Policy(wait=True, parallel_offers=territory.parallel_offers if territory else 1)
    return decide(index, query, steps_of(search), now, lead_time, policy, pending, search.waited)


def alternatives(
    index: DirectoryIndex, query: matching.Search, steps: list[Step], now: datetime, lead_time: timedelta
) -> list[Alternative]:
    """What the regulator could still try: a teleconsultation, or someone beyond the radius."""
    query = dataclasses.replace(query, busy=frozenset(index.busy))  # nobody busy elsewhere
    professions = tuple(dict.fromkeys(p for s in steps for p in s.professions))
    found: list[Alternative] = []
    if not query.teleconsultation_ok:
        tele = dataclasses.replace(query, teleconsultation_ok=True, radius_km=0.0)
        for c in index.candidates(tele, professions, now, lead_time, 1):
            found.append(
                Alternative(
                    kind="teleconsultation",
                    rpps=c.professional.rpps,
                    name=c.professional.name,
                    profession=c.professional.profession,
                    start=c.start,
                    detail=f"a teleconsultation with {c.professional.name} is possible if the patient accepts it",
                )
            )
    wider = dataclasses.replace(query, radius_km=max(2 * query.radius_km, query.radius_km + 30))
    for c in index.candidates(wider, professions, now, lead_time, 3):
        if c.distance_km > query.radius_km and c.mode == "in_person":
            found.append(
                Alternative(
                    kind="outside_radius",
                    rpps=c.professional.rpps,
                    name=c.professional.name,
                    profession=c.professional.profession,
                    start=c.start,
                    distance_km=c.distance_km,
                    cpts_id=c.professional.cpts_id,
                    detail=f"{c.professional.name} could see the patient at {c.distance_km:.0f} km",
                )
            )
            break
    return found


def proposal(
    search: models.SearchRecord,
    c: matching.Candidate,
    offer_id: str,
    step: Step,
    explanation: list[CandidateExplanation],
    channels: list[dict[str, str]],
    answer_by: datetime,
) -> OfferProposed:
    """The offer as the notifier (and the intake, the read model) hear of it."""
    return OfferProposed(
        request_id=search.request_id,
        offer_id=offer_id,
        professional=ProfessionalRef(
            rpps=c.professional.rpps, name=c.professional.name, profession=c.professional.profession
        ),
        professional_cpts_id=c.professional.cpts_id,
        email=c.professional.email,
        phone=c.professional.phone,
        channels=[Channel.model_validate(ch) for ch in channels],
        answer_by=answer_by,
        choices=[Period(start=a, end=b) for a, b in matching.choices(c.site, c.start, c.window_end)]
        if c.window_end
        else [],
        site=SiteRef(
            site_id=c.site.site_id,
            name=c.site.name,
            commune_insee=c.site.commune_insee,
            lat=c.site.place.lat,
            lon=c.site.place.lon,
        ),
        kind=c.kind,
        mode=c.mode,
        start=c.start,
        window_end=c.window_end,
        slot_id=c.slot_id,
        deadline=search.deadline,
        motive=search.motive,
        protocol=step.protocol,
        patient_age_band=search.age_band,
        patient_commune_insee=search.commune_insee,
        distance_km=c.distance_km,
        explanation=explanation,
    )


def commune_centre(commune_insee: str | None) -> PatientDetails:
    """Where a patient whose details were erased is looked for: their commune's centre."""
    commune = geo.commune(commune_insee or "")
    if commune is None:
        raise ValueError(f"unknown commune {commune_insee!r}: no place to search from")
    return PatientDetails(lat=commune.lat, lon=commune.lon)


def geo_department(commune_insee: str | None) -> str | None:
    commune = geo.commune(commune_insee or "")
    return commune.department if commune else None


def steps_of(search: models.SearchRecord) -> list[Step]:
    """The motive's steps (cooperation protocols first) for this patient."""
    return _motive(search.motive).steps_for(search.age, search.sex, search.red_flags or [])


def _motive(code: str) -> Motive:
    motives = catalogue().motives
    return motives.get(code) or motives["general"]


def professional_ref(pro: models.ProfessionalRow) -> ProfessionalRef:
    return ProfessionalRef(rpps=pro.rpps, name=pro.name, profession=pro.profession)


def site_ref(site: models.SiteRow) -> SiteRef:
    return SiteRef(
        site_id=site.site_id,
        name=site.name,
        commune_insee=site.commune_insee,
        lat=site.lat,
        lon=site.lon,
        practice_address=Address.model_validate(site.address) if site.address else None,
    )


def explained(c: matching.Candidate) -> CandidateExplanation:
    return CandidateExplanation(
        rpps=c.professional.rpps,
        kind=c.kind,
        slot_id=c.slot_id,
        start=c.start,
        distance_km=c.distance_km,
        score=c.score,
        terms=c.terms,
    )
