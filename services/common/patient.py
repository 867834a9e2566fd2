"""Rules about the patient's data that several services share (pure, no I/O): what is kept of an
age, and how long a contact may be shown or kept (docs/personal-data.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.common.clock import PARIS


def age_band(age: int | None) -> str | None:
    """What is kept of an age once the exact age is not needed: enough for a professional to
    prepare and for the indicators, not enough to identify (`<2`, `2-17`, ten-year bands, `90+`)."""
    if age is None:
        return None
    if age < 2:
        return "<2"
    if age < 18:
        return "2-17"
    if age < 30:
        return "18-29"
    if age >= 90:
        return "90+"
    low = (age // 10) * 10
    return f"{low}-{low + 9}"


def contact_shown_until(appointment: datetime) -> datetime:
    """The patient's contact shows on the accepted offer's page until the end of the day after the
    appointment (Paris time): long enough to call back or be late, not for ever to anyone who
    finds the link in a mailbox. After that nothing may show it, so it is erased."""
    day_after = appointment.astimezone(PARIS).date() + timedelta(days=2)
    return datetime(day_after.year, day_after.month, day_after.day, tzinfo=PARIS)


def contact_kept_until(
    status: str, appointment_start: datetime | None, ended_at: datetime, after_end: timedelta
) -> datetime | None:
    """When a request's patient contact is erased by retention: once no page may show it (after
    an appointment), or `after_end` after a request ended without one; None while it may still
    be needed (the request is still being handled)."""
    if status == "confirmed" and appointment_start is not None:
        return contact_shown_until(appointment_start)
    if status in ("unresolved", "cancelled"):
        return ended_at + after_end
    return None
