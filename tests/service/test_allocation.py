"""The cascade's flows through its event handlers and the waiting list, on memory and on
PostgreSQL alike (see conftest.py): who is asked, what is held, booked and freed, what is said."""

from __future__ import annotations

from schemas.events import (
    AppointmentConfirmed,
    OfferAccepted,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    PatientDetails,
    PatientErased,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    RequestWaiting,
    TreatingDoctor,
)
from services.matcher.adapters import models
from tests.service.conftest import Allocating

MELLE = (46.222, -0.142)  # the patient, in Melle (79174)


async def received(world: Allocating, request_id: str, **patient: object) -> RequestReceived:
    details = PatientDetails(lat=MELLE[0], lon=MELLE[1], age=67, **patient)  # type: ignore[arg-type]
    event = RequestReceived(
        request_id=request_id,
        received_at=world.clock(),
        urgency="48h",
        motive="general",
        commune_insee="79174",
        age_band="60-69",
        sealed_patient=await world.sealed(request_id, details),
    )
    await world.handle(world.allocation.on_request_received, event)
    return event


def refusal(world: Allocating, offer: OfferProposed) -> OfferRefused:
    at = world.clock()
    return OfferRefused(
        request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.professional.rpps, refused_at=at
    )


async def test_a_request_is_offered_the_nearest_free_slot_which_is_held(allocating: Allocating) -> None:
    near = await allocating.professional("10000000001", 46.21, -0.14)
    await allocating.professional("10000000002", 46.40, -0.40)  # farther
    await received(allocating, "R1")
    [offer] = allocating.events(OfferProposed)
    assert offer.professional.rpps == "10000000001" and offer.slot_id == near[0]
    assert offer.patient_age_band == "60-69" and offer.patient_commune_insee == "79174"
    assert await allocating.slot(near[0]) == models.SlotState.HELD
    assert (await allocating.search("R1")).status == models.SearchStatus.OFFERED
    await received(allocating, "R1")  # the same request again: nothing more
    assert len(allocating.events(OfferProposed)) == 1


async def test_a_refusal_frees_the_slot_and_asks_the_next_professional(allocating: Allocating) -> None:
    near = await allocating.professional("10000000001", 46.21, -0.14)
    await allocating.professional("10000000002", 46.30, -0.20)
    await received(allocating, "R1")
    [first] = allocating.events(OfferProposed)
    refused = OfferRefused(
        request_id="R1", offer_id=first.offer_id, rpps=first.professional.rpps, refused_at=allocating.clock()
    )
    await allocating.handle(allocating.allocation.on_offer_refused, refused)
    second = allocating.events(OfferProposed)[-1]
    assert second.professional.rpps == "10000000002"
    assert await allocating.slot(near[0]) == models.SlotState.FREE


async def test_an_acceptance_books_the_slot_and_tells_the_treating_doctor_sealed(allocating: Allocating) -> None:
    near = await allocating.professional("10000000001", 46.21, -0.14)
    await allocating.professional("10000000009", 46.50, 0.30)  # the patient's own doctor, far away
    await received(allocating, "R1", treating_rpps="10000000009")
    [offer] = allocating.events(OfferProposed)
    accepted = OfferAccepted(
        request_id="R1",
        offer_id=offer.offer_id,
        rpps=offer.professional.rpps,
        start=offer.start,
        accepted_at=allocating.clock(),
    )
    await allocating.handle(allocating.allocation.on_offer_accepted, accepted)
    [confirmed] = allocating.events(AppointmentConfirmed)
    assert confirmed.professional.rpps == "10000000001" and confirmed.slot_id == near[0]
    assert await allocating.slot(near[0]) == models.SlotState.BOOKED
    assert (await allocating.search("R1")).status == models.SearchStatus.CONFIRMED
    async with allocating.storage.transaction() as tx:
        told = await allocating.storage.store(tx).open_sealed("R1", confirmed.sealed_treating_doctor, TreatingDoctor)
    assert told is not None and told.professional.rpps == "10000000009"
    await allocating.handle(allocating.allocation.on_offer_accepted, accepted)  # again: booked already
    assert len(allocating.events(AppointmentConfirmed)) == 1


async def test_nobody_within_reach_ends_the_request_unresolved(allocating: Allocating) -> None:
    await allocating.professional("10000000001", 48.85, 2.35)  # Paris: far beyond the radius
    await received(allocating, "R1")
    [unresolved] = allocating.events(RequestUnresolved)
    assert unresolved.reason == "no_candidate_in_radius"
    assert (await allocating.search("R1")).status == models.SearchStatus.UNRESOLVED


async def test_a_cancellation_withdraws_the_offer_and_frees_the_slot(allocating: Allocating) -> None:
    near = await allocating.professional("10000000001", 46.21, -0.14)
    await received(allocating, "R1")
    cancelled = RequestCancelled(request_id="R1", cancelled_at=allocating.clock())
    await allocating.handle(allocating.allocation.on_request_cancelled, cancelled)
    [withdrawn] = allocating.events(OfferWithdrawn)
    assert withdrawn.cause == "cancelled"
    assert await allocating.slot(near[0]) == models.SlotState.FREE
    assert (await allocating.search("R1")).status == models.SearchStatus.CANCELLED


async def test_an_erasure_leaves_the_commune_centre_and_nothing_of_the_patient(allocating: Allocating) -> None:
    await allocating.professional("10000000001", 46.21, -0.14)
    await received(allocating, "R1", sex="F", treating_rpps="10000000009")
    erased = PatientErased(request_id="R1", erased_at=allocating.clock())
    await allocating.handle(allocating.allocation.on_patient_erased, erased)
    search = await allocating.search("R1")
    assert (search.age, search.sex, search.treating_rpps) == (None, None, None)
    assert (search.lat, search.lon) != MELLE and search.patient_erased_at is not None
    assert search.age_band == "60-69" and search.commune_insee == "79174"


async def test_a_request_waits_for_a_busy_professional_and_is_served_when_they_are_free(
    allocating: Allocating,
) -> None:
    await allocating.professional("10000000001", 46.21, -0.14, slots=2)
    await received(allocating, "R1")
    await received(allocating, "R2")  # the only professional is answering R1
    [waiting] = allocating.events(RequestWaiting)
    assert waiting.request_id == "R2" and (await allocating.search("R2")).status == models.SearchStatus.WAITING
    [first] = allocating.events(OfferProposed)
    refused = OfferRefused(
        request_id="R1", offer_id=first.offer_id, rpps=first.professional.rpps, refused_at=allocating.clock()
    )
    await allocating.handle(allocating.allocation.on_offer_refused, refused)
    allocating.index.busy.discard("10000000001")  # the index hears the offer ended (index_sync in the service)
    allocating.clock.advance(seconds=10)
    await allocating.waiting.serve()
    assert [o.request_id for o in allocating.events(OfferProposed)] == ["R1", "R2"]
    assert (await allocating.search("R2")).status == models.SearchStatus.OFFERED


async def test_an_offer_long_past_its_time_is_ended_by_the_matcher(allocating: Allocating) -> None:
    await allocating.professional("10000000001", 46.21, -0.14)
    await allocating.professional("10000000002", 46.30, -0.20)
    await received(allocating, "R1")
    allocating.clock.advance(hours=1)
    assert await allocating.allocation.expire_overdue() == 1
    withdrawn = allocating.events(OfferWithdrawn)
    assert [w.cause for w in withdrawn] == ["handled"]
    assert allocating.events(OfferProposed)[-1].professional.rpps == "10000000002"
    assert await allocating.allocation.expire_overdue() == 0


def test_the_memory_store_answers_every_question_the_matcher_asks() -> None:
    """The fake keeps up with the ports: every method of each protocol is there."""
    from services.matcher.allocation.ports import AllocationStore
    from services.matcher.directory.ports import DirectoryStore
    from tests.fakes.matcher import MemoryMatcherStore

    for port in (AllocationStore, DirectoryStore):
        asked = {name for name in vars(port) if not name.startswith("_")}
        assert asked <= set(dir(MemoryMatcherStore)), asked - set(dir(MemoryMatcherStore))
