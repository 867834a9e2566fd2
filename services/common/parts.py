"""What a service brings to a process (its part), and the consumer groups it subscribes:
declared by each service's entrypoint, hosted by services/common/runtime.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from schemas.events import EventData
from services.common.db import Database
from services.common.http import ProblemMap
from services.common.http_guards import RefusalFormat
from services.common.messaging import Handler, Pump

Handlers = dict[type[EventData], Handler]


@dataclass
class Subscription:
    """A consumer group: its name (also what it remembers handled event ids under), topics, handlers."""

    name: str
    topics: list[str]
    handlers: Handlers
    together: bool = True  # a batch of events in one transaction (see EventConsumer)
    # > 0: nobody waits on it (a read model): its own Kafka consumer, polling that rarely, so
    # that it takes many events per transaction and costs little polling; 0: prompt, shared
    patience_ms: int = 0


@dataclass
class ServicePart:
    """What one service brings to a process."""

    name: str
    db: Database
    migrations: Path
    routers: list[APIRouter] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    pumps: list[Pump] = field(default_factory=list)
    # (job, seconds): run once per deployment, by the process relaying this service's outbox
    timers: list[tuple[Callable[[], Awaitable[Any]], float]] = field(default_factory=list)
    # (job, seconds): run in every process (what each process keeps in memory)
    local_timers: list[tuple[Callable[[], Awaitable[Any]], float]] = field(default_factory=list)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # before consuming
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # SQL selecting the ids of requests stuck on this service's side (see services/common/reconcile.py)
    stuck: str | None = None
    # what its routes ask for by type (services/common/deps.py `provided`)
    provides: list[object] = field(default_factory=list)
    # its domain's exceptions, each answered as a problem (the one place they are mapped)
    problems: ProblemMap = field(default_factory=dict)
    # paths (by prefix) whose refusals before any route speak another language than problem+json
    refusals: dict[str, RefusalFormat] = field(default_factory=dict)
