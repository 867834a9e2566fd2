"""The operations service's port to the matcher for pauses, when the matcher does not answer."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.embedded import free_port
from services.ops.professionals import HttpPauses, MatcherUnreachable


async def test_an_unreachable_matcher_is_said_so_and_not_taken_for_a_refusal() -> None:
    pauses = HttpPauses(f"http://127.0.0.1:{free_port()}", "ik")  # nobody listens there
    try:
        with pytest.raises(MatcherUnreachable):
            await pauses.pause("10000000001", date(2026, 12, 24), "coord@cpts.example.org")
    finally:
        await pauses.close()
