"""Schemathesis, with every check, against the running services: the OpenAPI document says what the
API really answers, and no input it can generate gets a 500 or an undocumented answer.

Bounded by the number of examples per operation (not by time, which it would fill); the seed is
fixed so that a failure can be replayed. `schemathesis.toml` at the root says which statuses a
schema-valid request may still get, and why.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_KEY, Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def test_schemathesis_with_every_check_finds_nothing(stack: Stack) -> None:
    schemathesis = Path(sys.executable).parent / "st"
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{stack.http.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",  # the key that reaches every route
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "20261125",
        "--generation-database",
        "none",
        "--no-color",
        cwd=ROOT,  # where schemathesis.toml is
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=170)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "passed" in report and "failures" not in report.lower().split("summary")[-1], report[-3000:]
