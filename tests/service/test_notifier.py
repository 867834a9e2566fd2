"""The notifier's flows, on memory and on PostgreSQL alike (see conftest.py): offers recorded and
told, answered from the link, lapsing, withdrawn; the treating doctor and the national platform."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.events import (
    AppointmentConfirmed,
    Channel,
    OfferAccepted,
    OfferExpired,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    PatientErased,
    ProfessionalRef,
    SiteRef,
    TreatingDoctor,
)
from services.notifier.domain import OfferUnavailable, offer_token
from services.notifier.models import OfferStatus
from tests.service.conftest import SECRET, Notifying

SITE = SiteRef(site_id="main", name="Cabinet", commune_insee="79174", lat=46.21, lon=-0.14)


def proposed(
    world: Notifying, offer_id: str = "O1", rpps: str = "10000000001", request_id: str = "R1"
) -> OfferProposed:
    start = world.clock() + timedelta(hours=2)
    return OfferProposed(
        request_id=request_id,
        offer_id=offer_id,
        professional=ProfessionalRef(rpps=rpps, name="Dr Martin", profession="general_practitioner"),
        email=f"{rpps}@example.org",
        answer_by=world.clock() + timedelta(minutes=15),
        site=SITE,
        kind="slot",
        mode="in_person",
        start=start,
        slot_id="S1",
        deadline=world.clock() + timedelta(hours=48),
        motive="general",
        patient_age_band="60-69",
        patient_commune_insee="79174",
        distance_km=1.2,
    )


def link(offer: OfferProposed) -> str:
    return offer_token(SECRET, offer.offer_id, offer.professional.rpps)


async def test_an_offer_is_recorded_once_and_told(notifying: Notifying) -> None:
    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    await notifying.handle(notifying.news.on_offer_proposed, offer)  # again: nothing more
    assert await notifying.messages_queued() == ["offer"]
    [handed] = notifying.handed  # to the sender once committed, with no claim of its own
    assert (handed.purpose, handed.message.channel, handed.message.destination) == ("offer", "email", offer.email)
    assert handed.notification_id is not None and link(offer) in handed.message.text
    page = await notifying.service.open(link(offer))
    assert page.offer.status == OfferStatus.PENDING and page.contact is None
    assert page.offer.patient_age_band == "60-69" and await notifying.audited() == ["viewed"]
    with pytest.raises(OfferUnavailable):
        await notifying.service.open("not-a-link")


async def test_an_acceptance_is_announced_and_shows_the_contact_once_only(notifying: Notifying) -> None:
    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    page = await notifying.service.accept(link(offer), None)
    assert page.offer.status == OfferStatus.ACCEPTED and page.contact is not None
    assert notifying.contacts.shown == [("R1", "10000000001")]
    [accepted] = notifying.events(OfferAccepted)
    assert (accepted.offer_id, accepted.start) == ("O1", offer.start)
    with pytest.raises(OfferUnavailable) as again:
        await notifying.service.accept(link(offer), None)
    assert again.value.state == OfferStatus.ACCEPTED


async def test_a_refusal_keeps_a_known_reason_only(notifying: Notifying) -> None:
    first, second = proposed(notifying, "O1"), proposed(notifying, "O2", request_id="R2")
    for offer in (first, second):
        await notifying.handle(notifying.news.on_offer_proposed, offer)
    await notifying.service.refuse(link(first), "full")
    await notifying.service.refuse(link(second), "<script>")
    assert [r.reason for r in notifying.events(OfferRefused)] == ["full", None]


async def test_parallel_offers_the_first_acceptance_wins(notifying: Notifying) -> None:
    mine, other = proposed(notifying, "O1", "10000000001"), proposed(notifying, "O2", "10000000002")
    for offer in (mine, other):
        await notifying.handle(notifying.news.on_offer_proposed, offer)
    await notifying.service.accept(link(other), None)
    with pytest.raises(OfferUnavailable) as taken:
        await notifying.service.open(link(mine))
    assert taken.value.state == "taken"
    with pytest.raises(OfferUnavailable):
        await notifying.service.accept(link(mine), None)
    assert len(notifying.events(OfferAccepted)) == 1


async def test_an_unanswered_offer_is_reminded_then_lapses(notifying: Notifying) -> None:
    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    notifying.clock.advance(minutes=11)
    assert await notifying.service.remind_due() == 1
    assert await notifying.service.remind_due() == 0  # once
    notifying.clock.advance(minutes=5)
    assert await notifying.service.expire_due() == 1
    assert [e.offer_id for e in notifying.events(OfferExpired)] == ["O1"]
    assert await notifying.messages_queued() == ["offer", "reminder"]
    with pytest.raises(OfferUnavailable):
        await notifying.service.accept(link(offer), None)


async def test_a_withdrawn_offer_says_why_in_french(notifying: Notifying) -> None:
    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    withdrawn = OfferWithdrawn(request_id="R1", offer_id="O1", reason="the regulator cancelled", cause="cancelled")
    await notifying.handle(notifying.news.on_offer_withdrawn, withdrawn)
    await notifying.handle(notifying.news.on_offer_withdrawn, withdrawn)  # again: told once
    page = await notifying.service.open(link(offer))
    assert page.offer.status == OfferStatus.WITHDRAWN and page.offer.decision_reason == "annulée par le régulateur"
    assert await notifying.messages_queued() == ["offer", "withdrawn"]


async def test_the_treating_doctor_is_told_until_the_patient_s_data_is_erased(notifying: Notifying) -> None:
    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    await notifying.service.accept(link(offer), None)
    doctor = TreatingDoctor(
        professional=ProfessionalRef(rpps="10000000009", name="Dr Traitant", profession="general_practitioner"),
        channels=[Channel(type="email", destination="traitant@example.org")],
    )
    confirmed = AppointmentConfirmed(
        request_id="R1",
        offer_id="O1",
        professional=offer.professional,
        site=SITE,
        start=offer.start,
        kind="slot",
        mode="in_person",
        motive="general",
        sealed_treating_doctor=await notifying.sealed("R1", doctor),
    )
    await notifying.handle(notifying.news.on_appointment_confirmed, confirmed)
    assert await notifying.messages_queued() == ["offer", "treating_doctor"]
    await notifying.handle(
        notifying.news.on_patient_erased, PatientErased(request_id="R1", erased_at=notifying.clock())
    )
    assert await notifying.messages_queued() == ["offer"]


def test_the_memory_store_answers_every_question_the_notifier_asks() -> None:
    from services.notifier.ports import NotifierStore
    from tests.fakes.notifier import MemoryNotifierStore

    asked = {name for name in vars(NotifierStore) if not name.startswith("_")}
    assert asked <= set(dir(MemoryNotifierStore)), asked - set(dir(MemoryNotifierStore))


async def test_the_offer_page_writes_distances_and_ages_in_the_readers_language(notifying: Notifying) -> None:
    from services.notifier.pages import OfferPages, templates

    offer = proposed(notifying)
    await notifying.handle(notifying.news.on_offer_proposed, offer)
    page = await notifying.service.open(link(offer))
    drawn = OfferPages(notifying.service, templates())
    french, english = (bytes(drawn.render(page, lang).body).decode() for lang in ("fr", "en"))
    assert "1,2\u00a0km" in french and "60–69 ans" in french
    assert "1.2\u00a0km" in english and "aged 60–69" in english and "60–69 ans" not in english
