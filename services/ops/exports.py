"""The rows behind the figures as CSV (pure): for a French spreadsheet by default — `;` between
fields, a UTF-8 byte-order mark so that accents open right, Paris local times, decimal commas,
`oui`/`non` — or as plain RFC 4180 (`,`, RFC 3339 instants, `.`, true/false) for programs.

In both forms a cell a spreadsheet would run as a formula (a professional named
`=HYPERLINK(…)`, say) is written with a leading `'` (OWASP's CSV injection advice, through
`defusedcsv`; also for a leading tab or carriage return, which it leaves)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from defusedcsv import csv

from services.common.clock import PARIS

Format = Literal["csv-fr", "csv-rfc4180"]
BOM = "\ufeff"


def _french(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, datetime):
        return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}".replace(".", ",")
    return str(value)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _inert(text: str) -> str:
    return "'" + text if text[:1] in ("\t", "\r") else text


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], form: Format = "csv-fr") -> str:
    out = io.StringIO()
    french = form == "csv-fr"
    writer = csv.writer(out, delimiter=";" if french else ",", lineterminator="\r\n")
    writer.writerow(columns)
    cell = _french if french else _plain
    writer.writerows([_inert(cell(v)) for v in row] for row in rows)
    return (BOM if french else "") + out.getvalue()
