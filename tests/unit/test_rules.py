"""Small pure rules of the intake and the notifier."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.common.i18n import age_band as age_band_label
from services.common.patient import age_band
from services.intake.domain import RequestStatus, fingerprint, follows, legacy_fingerprint
from services.notifier.domain import offer_expiry, offer_token, token_hash


def test_fingerprint_ignores_key_order_but_not_values_and_needs_the_key() -> None:
    key = b"service secret"
    assert fingerprint({"a": 1, "b": {"c": 2, "d": 3}}, key) == fingerprint({"b": {"d": 3, "c": 2}, "a": 1}, key)
    assert fingerprint({"a": 1}, key) != fingerprint({"a": 2}, key)
    body = {"patient": {"contact": {"name": "Jeanne Martin", "phone": "0612345678"}}}
    assert fingerprint(body, key) != fingerprint(body, b"a guess") != legacy_fingerprint(body)  # no key, no match
    assert hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest() not in (
        fingerprint(body, key)
    )


@pytest.mark.parametrize("final", [RequestStatus.CONFIRMED, RequestStatus.UNRESOLVED, RequestStatus.CANCELLED])
def test_a_final_outcome_is_never_overwritten_by_a_late_event(final: RequestStatus) -> None:
    assert not any(follows(final, new) for new in RequestStatus)


def test_progress_statuses_follow_each_other() -> None:
    assert follows(RequestStatus.RECEIVED, RequestStatus.SEARCHING)
    assert follows(RequestStatus.OFFERED, RequestStatus.SEARCHING)  # a refusal: searching again
    assert follows(RequestStatus.OFFERED, RequestStatus.OFFERED)  # the next candidate's offer
    assert not follows(RequestStatus.SEARCHING, RequestStatus.RECEIVED)


def test_offer_tokens_are_bound_to_the_offer_the_professional_and_the_key() -> None:
    token = offer_token(b"k1", "offer-1", "100")
    assert len(token) >= 43 and token == offer_token(b"k1", "offer-1", "100")
    assert token not in {
        offer_token(b"k2", "offer-1", "100"),
        offer_token(b"k1", "offer-2", "100"),
        offer_token(b"k1", "offer-1", "101"),
    }
    assert token_hash(token) != token and len(token_hash(token)) == 64


def test_an_offer_never_outlives_the_deadline() -> None:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert offer_expiry(now, now + timedelta(hours=5), timedelta(minutes=15)) == now + timedelta(minutes=15)
    assert offer_expiry(now, now + timedelta(minutes=5), timedelta(minutes=15)) == now + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("age", "band", "label"),
    [
        (None, None, None),
        (0, "<2", "nourrisson (< 2 ans)"),
        (7, "2-17", "enfant (2–17 ans)"),
        (18, "18-29", "18–29 ans"),
        (29, "18-29", "18–29 ans"),
        (30, "30-39", "30–39 ans"),
        (67, "60-69", "60–69 ans"),
        (89, "80-89", "80–89 ans"),
        (95, "90+", "90 ans et plus"),
    ],
)
def test_age_is_kept_and_shown_in_bands(age: int | None, band: str | None, label: str | None) -> None:
    assert age_band(age) == band
    assert age_band_label(band) == (label or "")
