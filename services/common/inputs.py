"""What every input of the HTTP API shares: bounded text without control characters, known id shapes.

PostgreSQL refuses a NUL in text and a lone surrogate cannot be encoded: left to the database,
either becomes a 500 after part of the work is done. A control character in a name or an id is
never meant, and in a log line or an e-mail it can forge a line. So the API refuses them all,
with a 422 naming the field, before anything is recorded.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# C0 and C1 control characters (tab and newline included: no input is multi-line), and lone surrogates
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
TEXT_MAX_LENGTH = 1000  # any string of an input model unless the field says less
IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}$"  # request, slot, site, territory and professional ids
INSEE = r"^[0-9][0-9AB][0-9]{3}$"
PHONE = r"^[0-9+() .\-]{3,40}$"


def has_control_characters(text: str) -> bool:
    return _FORBIDDEN.search(text) is not None


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        if has_control_characters(value):
            raise ValueError("control characters (NUL, tab, newline, …) are not allowed")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)


class InputModel(BaseModel):
    """Base of the API's request bodies: every string bounded, none with a control character.

    Nested models derive from it too, so the check reaches every field with its own name.
    Date-times are `Instant`: JSON has no date type, so they alone are parsed from text.
    """

    # strict: "67" is not an age and 0 is not a date; JSON's own types only (an int for a float is fine)
    model_config = ConfigDict(str_max_length=TEXT_MAX_LENGTH, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        _check_text(value)
        return value


def _text_only(value: Any) -> Any:
    if not isinstance(value, str | datetime):
        raise ValueError("an RFC 3339 date-time with its offset, as a string")
    return value


Instant = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_text_only)]
Ident = Annotated[str, Path(pattern=IDENT, description="letters, digits and . _ : - (at most 100)")]
IdentQuery = Annotated[str, Query(pattern=IDENT, description="letters, digits and . _ : - (at most 100)")]
