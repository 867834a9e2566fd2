"""What every in-memory storage shares: a transaction that records the events it emits and runs
its after-commit callbacks when it ends without an error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import CloudEvent, EventData
from services.common.clock import utcnow


@dataclass
class MemoryTransaction:
    """What a handler is given: events emitted, callbacks after the commit."""

    emitted: list[CloudEvent] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def emit(self, topic: str, data: EventData, now: datetime | None = None) -> CloudEvent:
        event = CloudEvent.wrap(data, source="/memory", time=now or utcnow())
        self.emitted.append(event)
        self.topics.append(topic)
        return event


class MemoryStorage:
    def __init__(self) -> None:
        self.committed: list[tuple[str, CloudEvent]] = []  # (topic, event), in commit order

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        tx = MemoryTransaction()
        yield tx
        self.committed.extend(zip(tx.topics, tx.emitted, strict=True))
        for callback in tx.after_commit:
            callback()
