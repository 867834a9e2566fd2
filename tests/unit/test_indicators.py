"""Indicator arithmetic on hand-built histories; the expected figures are worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.common.clock import PARIS
from services.ops.indicators import (
    OfferFacts,
    ProfessionalVersion,
    RequestFacts,
    SlotFacts,
    figures,
    participants,
)


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def version(
    rpps: str,
    when: datetime,
    participation: str = "via_cpts",
    cpts: str = "T",
    active: bool = True,
    profession: str = "general_practitioner",
) -> ProfessionalVersion:
    return ProfessionalVersion(rpps, when, profession, cpts, participation, active)


VERSIONS = [
    version("A", at(10, 1)),
    version("B", at(10, 1), participation="none"),
    version("B", at(11, 15), participation="individual"),  # joins mid-November
    version("C", at(10, 1), participation="individual"),
    version("C", at(11, 20), active=False),  # leaves mid-November
    version("D", at(10, 1), cpts="U"),  # another CPTS
    version("N", at(10, 1), profession="nurse"),  # not a doctor
]


def test_indicator_1_counts_doctors_participating_at_the_end_of_the_period() -> None:
    assert participants(VERSIONS, "T", date(2026, 11, 10)) == ["A", "C"]  # B not yet, C not yet gone
    assert participants(VERSIONS, "T", date(2026, 11, 30)) == ["A", "B"]
    assert participants(VERSIONS, "T", date(2026, 11, 15)) == ["A", "B", "C"]  # B's change counts on its own day


def request(
    rid: str,
    received: datetime,
    status: str = "confirmed",
    *,
    rpps: str | None = "A",
    cpts: str | None = "T",
    patient_cpts: str | None = "T",
    minutes: int = 30,
    start_in_hours: float = 5,
    kind: str = "slot",
    reason: str | None = None,
) -> RequestFacts:
    confirmed = status == "confirmed"
    return RequestFacts(
        rid,
        received,
        patient_cpts,
        status,
        deadline=received + timedelta(hours=48),
        confirmed_at=received + timedelta(minutes=minutes) if confirmed else None,
        appointment_start=received + timedelta(hours=start_in_hours) if confirmed else None,
        appointment_rpps=rpps if confirmed else None,
        appointment_cpts=cpts if confirmed else None,
        kind=kind if confirmed else None,
        reason=reason,
    )


REQUESTS = [
    request("R1", at(10, 31, 22), minutes=10),  # received in October: outside a November period
    request("R2", at(11, 2), minutes=20),  # Monday
    request("R3", at(11, 6), minutes=40, start_in_hours=3),  # Friday: the act is on a Friday
    request("R4", at(11, 10), minutes=60, start_in_hours=50),  # after the deadline (48 h)
    request("R5", at(11, 12), "unresolved", reason="no_candidate_in_radius"),
    request("R6", at(11, 13), "cancelled"),
    request("R7", at(11, 20), minutes=90, patient_cpts="U", kind="overflow"),  # a patient from elsewhere
    request("R8", at(11, 21), rpps="D", cpts="U", minutes=5),  # confirmed with another CPTS's doctor
    request("R9", at(11, 30, 23, 30), minutes=15),  # 30 November, 23:30 Paris: still November
    request("R10", at(12, 1, 0, 5), minutes=15),  # 1 December: December
]
OFFERS = [
    OfferFacts("O1", "R2", "B", "T", at(11, 2), "refused", "full"),  # refused, then confirmed with A
    OfferFacts("O2", "R2", "A", "T", at(11, 2, 10, 5), "accepted"),
    OfferFacts("O3", "R3", "A", "T", at(11, 6), "expired"),
    OfferFacts("O4", "R3", "C", "T", at(11, 6, 10, 15), "accepted"),
    OfferFacts("O5", "R6", "A", "T", at(11, 13), "withdrawn"),
    OfferFacts("O6", "R5", "B", "T", at(11, 12), "refused", None),
    OfferFacts("O7", "R8", "D", "U", at(11, 21), "accepted"),
]
SLOTS = [
    SlotFacts("S1", "A", at(11, 2, 15), at(11, 2, 15, 20), withdrawn=False, booked=True),
    SlotFacts("S2", "A", at(11, 3, 15), at(11, 3, 15, 20), withdrawn=False, booked=False),
    SlotFacts("S3", "A", at(11, 4, 15), at(11, 4, 15, 20), withdrawn=True, booked=False),  # not counted
    SlotFacts("S4", "B", at(11, 16, 9), at(11, 16, 11), withdrawn=False, booked=True),  # 2 h in week 47
    SlotFacts("S5", "D", at(11, 16, 9), at(11, 16, 9, 20), withdrawn=False, booked=False),  # CPTS U
]


def november() -> dict[str, object]:
    return figures("T", date(2026, 11, 1), date(2026, 11, 30), REQUESTS, OFFERS, VERSIONS, SLOTS)


def test_indicator_2_and_the_request_counts() -> None:
    f = november()
    assert f["doctors_participating_in_sas"] == 2
    assert f["sas_requests_with_appointment"] == 5  # R2, R3, R4, R7, R9 (R8 went to CPTS U; R1, R10 other months)
    assert f["requests_received"] == 8  # R2–R9
    assert f["requests_confirmed"] == 6  # R2, R3, R4, R7, R8, R9
    assert f["requests_unresolved"] == {"no_candidate_in_radius": 1}
    assert f["requests_cancelled"] == 1
    assert f["from_outside_territory"] == 1  # R7


def test_times_deadlines_and_days() -> None:
    f = november()
    assert f["minutes_to_appointment"] == {"median": 40.0, "p90": 90.0}  # 20, 40, 60, 90, 15 → sorted 15 20 40 60 90
    assert f["share_within_deadline"] == 0.8  # R4 is past its deadline
    assert f["share_acts_friday_saturday_or_holiday_eve"] == 0.4  # R3 and R7: Fridays 6 and 20 November


def test_offers_by_outcome_and_reason() -> None:
    assert november()["offers"] == {
        "accepted": 2,
        "refused": {"full": 1, "unspecified": 1},
        "expired": 1,
        "withdrawn": 1,
    }


def test_slot_utilisation_and_remuneration_helpers() -> None:
    f = november()
    utilisation = f["slot_utilisation"]
    assert isinstance(utilisation, dict)
    assert (utilisation["booked"], utilisation["published"], utilisation["share"]) == (2, 3, 0.6667)
    assert utilisation["by_professional_and_week"]["A"] == {"2026-W45": {"booked": 1, "published": 2}}
    pay = f["remuneration"]
    assert isinstance(pay, dict)
    assert pay["B"]["visible_slot_hours_by_week"] == {"2026-W47": {"hours": 2.0, "threshold_met": True}}
    # acts of the period, by appointment date: R1 (received 31 Oct, seen Sun 1 Nov, W44), R2 and R3 (W45),
    # R4 (W46), R7 (W47); R9 is seen on 1 December, after the period
    assert pay["A"]["regulated_consultations_by_week"] == {"2026-W44": 1, "2026-W45": 2, "2026-W46": 1, "2026-W47": 1}
    assert pay["A"]["overflow_patients_by_quarter"] == {"2026-Q4": 1}  # R7
    assert pay["C"]["declared_participation"] is False  # left on 20 November


def test_a_period_across_months_and_the_weekly_cap() -> None:
    busy = [request(f"W{i}", at(11, 16, 8, i)) for i in range(25)]  # 25 appointments the same week
    f = figures("T", date(2026, 11, 16), date(2026, 12, 2), REQUESTS + busy, OFFERS, VERSIONS, SLOTS)
    assert f["sas_requests_with_appointment"] == 25 + 3  # + R7, R9, R10
    assert f["remuneration"]["A"]["regulated_consultations_by_week"]["2026-W47"] == 20  # type: ignore[index]
    assert f["definition_version"]
