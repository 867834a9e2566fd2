"""The service layer's tests run twice: against memory (fast: tests/fakes) and against a real
PostgreSQL (the same behaviour where it counts). `pytest -m "not e2e and not integration"`
runs only the memory half with the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel
from sqlmodel import col, select

from schemas.events import CloudEvent, EventData
from schemas.topics import Topics
from services.common.db import Database, Transaction
from services.common.sealing import seal_with
from services.matcher.adapters import models, repository
from services.matcher.adapters.allocation_store import SqlAllocationStorage
from services.matcher.adapters.directory_store import SqlDirectoryStorage
from services.matcher.allocation.cascade import Cascade
from services.matcher.allocation.handlers import Allocation
from services.matcher.allocation.waiting_list import Changes, WaitingList
from services.matcher.directory import Directory
from services.matcher.domain.index import DirectoryIndex
from services.notifier.channels import Message, ShownContact
from services.notifier.dispatch import Outgoing
from services.notifier.messages import Messages
from services.notifier.models import AuditEntry, Notification
from services.notifier.news import MatcherNews
from services.notifier.pages import templates as notifier_templates
from services.notifier.service import NotifierService
from services.notifier.store import SqlNotifierStorage
from tests.conftest import FakeClock, create_database
from tests.fakes.matcher import MemoryMatcherStorage
from tests.fakes.notifier import MemoryNotifierStorage

# a Tuesday, 09:00 in Paris: practices open, no public holiday
TUESDAY_MORNING = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
ALWAYS_OPEN = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
TOPICS = Topics(prefix="service.")


class Recording:
    """A PostgreSQL storage keeping the events its transactions committed, as the memory ones do."""

    db: Database

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.committed: list[tuple[str, CloudEvent]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.db.transaction() as tx:
            yield tx
        self.committed.extend(("", event) for event in tx.emitted)


class RecordingSqlStorage(Recording, SqlAllocationStorage):
    pass


class RecordingSqlDirectoryStorage(Recording, SqlDirectoryStorage):
    pass


class RecordingSqlNotifierStorage(Recording, SqlNotifierStorage):
    pass


def committed_events(storage: Any, kind: type[EventData]) -> list[Any]:
    """The payloads of the events of this type the storage's transactions committed, in order."""
    return [e.payload() for _, e in storage.committed if isinstance(e.payload(), kind)]


@dataclass
class Allocating:
    """The allocation built on one storage, with the directory rows its index mirrors."""

    kind: str
    storage: Any
    clock: FakeClock
    index: DirectoryIndex = field(default_factory=DirectoryIndex)
    woken: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        changes = Changes(lambda: self.woken.append("wake"))
        lead = timedelta(minutes=5)
        self.cascade = Cascade(self.storage, TOPICS, lead, self.index, 15.0, changes.just_waiting)
        self.waiting = WaitingList(self.storage, self.clock, lead, self.index, self.cascade, changes)
        self.allocation = Allocation(self.storage, TOPICS, self.clock, self.cascade)
        self.revision = 0

    async def add(self, *rows: Any) -> None:
        if self.kind == "memory":
            for row in rows:
                self.storage.memory.add(row)
            return
        async with self.storage.db.transaction() as tx:
            for row in rows:
                tx.session.add(row)

    async def professional(self, rpps: str, lat: float, lon: float, slots: int = 1, **fields: Any) -> list[str]:
        """A GP at (lat, lon), always open, with `slots` free slots from two hours from now."""
        pro = models.ProfessionalRow(
            rpps=rpps,
            name=f"Dr {rpps}",
            profession="general_practitioner",
            cpts_id=None,
            email=f"{rpps}@example.org",
            channels=[{"type": "email", "destination": f"{rpps}@example.org"}],
            updated_at=self.clock(),
            **fields,
        )
        site = models.SiteRow(
            rpps=rpps,
            site_id="main",
            name="Cabinet",
            commune_insee="79174",
            department="79",
            lat=lat,
            lon=lon,
            opening_hours=ALWAYS_OPEN,
            active=True,
        )
        start = self.clock() + timedelta(hours=2)
        rows = [
            models.Slot(
                slot_id=f"{rpps}-{n}",
                rpps=rpps,
                site_id="main",
                start=start + timedelta(minutes=20 * n),
                end=start + timedelta(minutes=20 * (n + 1)),
                mode="in_person",
                state="free",
                updated_at=self.clock(),
            )
            for n in range(slots)
        ]
        await self.add(pro, site, *rows)
        self.revision += 1
        self.index.put_professional(
            repository.to_domain_professional(pro), [repository.to_domain_site(site)], self.revision
        )
        for slot in rows:
            self.index.put_slot(slot.slot_id, rpps, "main", slot.start, slot.end, "in_person", "free", self.revision)
        return [slot.slot_id for slot in rows]

    async def sealed(self, request_id: str, details: BaseModel) -> str:
        """`details` sealed under a key made for the request, as the intake does."""
        if self.kind == "memory":
            memory = self.storage.memory
            return seal_with(memory.keys.get(request_id) or memory.create_key(request_id), details)
        vault = self.storage.vault
        async with self.storage.db.transaction() as tx:
            key = await vault.key(tx.session, request_id) or await vault.create(tx.session, request_id, self.clock())
            return seal_with(key, details)

    async def handle(self, handler: Callable[..., Any], event: EventData) -> None:
        async with self.storage.transaction() as tx:
            await handler(tx, event, CloudEvent.wrap(event, source="/test", time=self.clock()))

    def events(self, kind: type[EventData]) -> list[Any]:
        return committed_events(self.storage, kind)

    async def search(self, request_id: str) -> models.SearchRecord:
        async with self.storage.transaction() as tx:
            found = await self.storage.store(tx).search(request_id)
        assert found is not None
        return found

    async def slot(self, slot_id: str) -> str:
        if self.kind == "memory":
            return str(self.storage.memory.slots[slot_id].state)
        async with self.storage.db.transaction() as tx:
            found = await tx.session.get(models.Slot, slot_id)
        assert found is not None
        return str(found.state)


BOTH = ["memory", pytest.param("postgres", marks=pytest.mark.integration)]


@asynccontextmanager
async def matcher_database(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """A fresh matcher schema (the server is started only when a PostgreSQL half runs)."""
    from tests.integration.helpers import migrated

    db = await migrated(await create_database(request.getfixturevalue("postgres_url")), "matcher")
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=BOTH)
async def allocating(request: pytest.FixtureRequest) -> AsyncIterator[Allocating]:
    clock = FakeClock(TUESDAY_MORNING)
    if request.param == "memory":
        yield Allocating("memory", MemoryMatcherStorage(), clock)
        return
    from tests.integration.helpers import vault_for_tests

    async with matcher_database(request) as db:
        storage = RecordingSqlStorage(db, vault_for_tests())
        yield Allocating("postgres", storage, clock)


@dataclass
class Supplying:
    """The directory built on one storage, and what it told (events, index refreshes)."""

    kind: str
    storage: Any
    clock: FakeClock
    changed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def refreshed(keys: list[str]) -> None:
            self.changed.extend(keys)

        self.directory = Directory.over(self.storage, self.clock, TOPICS, refreshed)

    def events(self, kind: type[EventData]) -> list[Any]:
        return committed_events(self.storage, kind)

    async def row(self, model: type[Any], key: Any) -> Any:
        async with self.storage.transaction() as tx:
            return await self.storage.store(tx).get(model, key)

    async def add(self, *rows: Any) -> None:
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            for row in rows:
                store.upsert(None, type(row), row.model_dump())


@pytest.fixture(params=BOTH)
async def supplying(request: pytest.FixtureRequest) -> AsyncIterator[Supplying]:
    clock = FakeClock(TUESDAY_MORNING)
    if request.param == "memory":
        yield Supplying("memory", MemoryMatcherStorage(), clock)
        return
    async with matcher_database(request) as db:
        storage = RecordingSqlDirectoryStorage(db)
        yield Supplying("postgres", storage, clock)


class PatientContacts:
    """The intake's side of the offer page: one contact for every request, each look recorded."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    async def contact(self, request_id: str, rpps: str) -> ShownContact | None:
        self.shown.append((request_id, rpps))
        return ShownContact("Mme Patiente", "06 00 00 00 01")


SECRET = b"service-tests"


class Unsent:
    """A sender no test here reaches: sending is tested with a real SMTP sink (tests/e2e)."""

    async def send(self, message: Message) -> None:
        raise AssertionError("nothing is sent in the service-layer tests")


@dataclass
class Notifying:
    """The notifier's flows built on one storage."""

    kind: str
    storage: Any
    clock: FakeClock
    contacts: PatientContacts = field(default_factory=PatientContacts)

    def __post_init__(self) -> None:
        db = getattr(self.storage, "db", None)  # the message queues' (sending is not what these tests look at)
        senders = {"email": Unsent()}
        self.messages = Messages(db, self.clock, SECRET, "https://sas.example.org", senders, notifier_templates())
        self.handed: list[Outgoing] = []  # what was handed to the sender after a commit
        self.messages.queue.send_claimed = self.handed.extend  # type: ignore[method-assign]
        self.news = MatcherNews(self.storage, self.clock, SECRET, timedelta(minutes=15), self.messages)
        self.service = NotifierService(self.storage, TOPICS, self.clock, self.contacts, self.messages, 5.0)

    async def handle(self, handler: Callable[..., Any], event: EventData) -> None:
        async with self.storage.transaction() as tx:
            await handler(tx, event, CloudEvent.wrap(event, source="/test", time=self.clock()))

    def events(self, kind: type[EventData]) -> list[Any]:
        return committed_events(self.storage, kind)

    async def messages_queued(self) -> list[str]:
        """The purposes of the messages waiting to be sent, in order."""
        if self.kind == "memory":
            return [n.purpose for n in self.storage.memory.notifications]
        async with self.storage.db.transaction() as tx:
            found = await tx.session.execute(select(Notification.purpose).order_by(col(Notification.id)))
            return list(found.scalars())

    async def audited(self) -> list[str]:
        if self.kind == "memory":
            return [a.action for a in self.storage.memory.audit]
        async with self.storage.db.transaction() as tx:
            found = await tx.session.execute(select(AuditEntry.action).order_by(col(AuditEntry.id)))
            return list(found.scalars())

    async def sealed(self, request_id: str, details: BaseModel) -> str:
        if self.kind == "memory":
            key = self.storage.memory.keys.setdefault(request_id, Fernet(Fernet.generate_key()))
            return seal_with(key, details)
        async with self.storage.db.transaction() as tx:
            return seal_with(await self.storage.vault.create(tx.session, request_id, self.clock()), details)


@pytest.fixture(params=BOTH)
async def notifying(request: pytest.FixtureRequest) -> AsyncIterator[Notifying]:
    clock = FakeClock(TUESDAY_MORNING)
    if request.param == "memory":
        yield Notifying("memory", MemoryNotifierStorage(), clock)
        return
    from tests.integration.helpers import migrated, vault_for_tests

    db = await migrated(await create_database(request.getfixturevalue("postgres_url")), "notifier")
    storage = RecordingSqlNotifierStorage(db, vault_for_tests())
    try:
        yield Notifying("postgres", storage, clock)
    finally:
        await db.dispose()
