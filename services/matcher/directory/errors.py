"""Why a directory write is refused (the routes turn each into a 4xx with its reason)."""

from __future__ import annotations


class UnknownReference(Exception):
    """A slot names a professional or a site the directory does not have."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SlotBusy(Exception):
    """The slot is held for a pending offer or booked: it cannot be changed or withdrawn now."""


class NotFound(Exception):
    pass


class SlotOverlap(Exception):
    """The professional already has a slot (not withdrawn) at that time."""
