"""Hosting services in a process: migrations, consumers, outbox relays, timers, HTTP routes.

`make run` hosts the three services in one process; each service can also be hosted alone
(`sas-intake`, `sas-matcher`, `sas-notifier`), several processes per consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from aiokafka.abc import ConsumerRebalanceListener
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.events import EventData
from schemas.topics import Topics
from services.common import metrics
from services.common.access.registry import ClientRegistry
from services.common.access.roles import Forbidden
from services.common.broker_watch import BrokerWatch
from services.common.db import Database
from services.common.http import (
    InputGuard,
    Problem,
    ProblemMap,
    RefusalFormat,
    describe_problems,
    inline_script_hashes,
    install_log_context,
    install_offline_docs,
    install_problem_handlers,
    install_security_headers,
)
from services.common.messaging import (
    BatchSubscriber,
    EventConsumer,
    Handler,
    OutboxRelay,
    Pump,
    SharedConsumer,
    ensure_topics,
    prune_delivered,
    subscriber_options,
)
from services.common.rate_limits import RateLimits, TooManyRequests
from services.common.reconcile import Reconciler
from services.common.settings import Settings

log = structlog.get_logger(__name__)

REWIND_SECONDS = 60.0  # after a broker loss, a consumer given partitions in this time reads them from the start


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
    timers: list[tuple[Callable[[], Awaitable[Any]], float]] = field(default_factory=list)
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


class _Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """Marks a consumer ready once it has joined its group (with or without partitions); after a
    broker loss, starts it at the beginning of what it is given (see Runtime.heal)."""

    def __init__(self, function: BatchSubscriber) -> None:
        self.ready = asyncio.Event()
        self.function = function  # what handles its batches: tells whether its commits fail
        self.subscriber: Any = None  # FastStream's subscriber, once registered
        self.rewind_until = -float("inf")  # loop time until which an assignment starts at the beginning

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = getattr(self.subscriber, "consumer", None)
        if assigned and consumer is not None and asyncio.get_running_loop().time() < self.rewind_until:
            # a new broker's group may hold offsets the old consumer committed late, past what
            # the new topics hold: everything there is to read again (handled ids are skipped)
            await consumer.seek_to_beginning(*assigned)
        self.ready.set()


async def _watch_loop(period: float = 0.25) -> None:
    """Measures how late the event loop wakes a timer: every await of this process waits that
    long too. Logged when it passes a second, so that a stalled process shows in its log."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(period)
        lag = loop.time() - asked - period
        metrics.LOOP_LAG.observe(max(0.0, lag))
        if lag > 1.0:
            log.warning("event loop stalled", lag_ms=round(lag * 1000))


class Runtime:
    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        bootstrap_servers: str,
        topics: Topics,
        parts: Sequence[ServicePart],
        clients: ClientRegistry,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings, self.broker, self.bootstrap_servers = settings, broker, bootstrap_servers
        self.prepare = prepare  # before anything: the database's roles (services/common/db_roles.py)
        self.clients = clients  # who may call the routes (services/common/access)
        self.limits = RateLimits(clients.db)  # shared by every process (services/common/rate_limits.py)
        self.topics, self.parts = topics, list(parts)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.relays: dict[str, OutboxRelay] = {}
        self.joined: dict[str, _Joined] = {}
        self._registered = False
        self._watch: asyncio.Task[None] | None = None
        self.broker_watch = BrokerWatch(
            bootstrap_servers,
            topics.all(),
            topics.epoch,
            lambda: ensure_topics(
                bootstrap_servers, topics, settings.topic_partitions, settings.topic_replication_factor
            ),
            self._after_look,
        )
        self._looking = Pump("broker-watch", self._look, settings.broker_check_seconds)
        self.started = False

    def _register(self) -> None:
        """Subscribers and relays must exist before the broker starts."""
        if self._registered:
            return
        self._registered = True
        consumers: list[tuple[Subscription, EventConsumer]] = []
        for part in self.parts:
            relay = OutboxRelay(part.db, self.broker)
            self.relays[part.name] = relay
            pump = Pump(f"{part.name}-outbox", relay.relay_more, self.settings.relay_interval_seconds)
            part.db.on_commit.append(pump.poke)  # a commit here
            relay.on_notified = pump.poke  # a commit in any process
            part.pumps.append(pump)
            part.on_stop.append(relay.close)
            for sub in part.subscriptions:
                consumer = EventConsumer(
                    sub.name,
                    part.db,
                    self.broker,
                    self.topics,
                    sub.handlers,
                    self.settings.consumer_max_attempts,
                    together=sub.together,
                )
                consumers.append((sub, consumer))
        prompt = [(sub, consumer) for sub, consumer in consumers if not sub.patience_ms]
        for sub, consumer in consumers:
            if sub.patience_ms:
                self._subscribe(sub.name, sub.topics, consumer, [sub], sub.patience_ms)
        if len(prompt) == 1:
            sub, consumer = prompt[0]
            self._subscribe(sub.name, sub.topics, consumer, [sub])
        elif prompt:  # one Kafka consumer for all of them (see SharedConsumer)
            shared = SharedConsumer([(frozenset(sub.topics), consumer) for sub, consumer in prompt])
            self._subscribe(
                "+".join(sub.name for sub, _ in prompt),
                sorted({topic for sub, _ in prompt for topic in sub.topics}),
                shared,
                [sub for sub, _ in prompt],
            )

    def _subscribe(
        self,
        group: str,
        topics: list[str],
        function: BatchSubscriber,
        subs: list[Subscription],
        patience_ms: int = 0,
    ) -> None:
        joined = _Joined(function)
        for sub in subs:
            self.joined[sub.name] = joined
        joined.subscriber = self.broker.subscriber(
            *topics,
            group_id=f"{self.topics.prefix}{group}",
            listener=joined,
            title=f"{group}-consumer",
            **subscriber_options(self.settings, patience_ms),
        )
        joined.subscriber(function.subscriber_function())

    async def start(self) -> None:
        if self.prepare is not None:
            await self.prepare()
        await self.clients.start()
        for part in self.parts:
            await part.db.migrate(part.migrations)
        await ensure_topics(
            self.bootstrap_servers, self.topics, self.settings.topic_partitions, self.settings.topic_replication_factor
        )
        for part in self.parts:
            for hook in part.on_start:
                await hook()
        self._register()
        await self.broker.start()
        for part in self.parts:
            for pump in part.pumps:
                pump.start()
            for job, seconds in part.timers:
                self.scheduler.add_job(job, "interval", seconds=seconds, max_instances=1, coalesce=True)
        self.scheduler.add_job(self.limits.storage.prune, "interval", hours=1, max_instances=1)
        for part in self.parts:
            keep = timedelta(hours=self.settings.event_retention_hours)
            self.scheduler.add_job(prune_delivered, "interval", args=(part.db, keep), hours=1, max_instances=1)
            if part.stuck:
                reconcile = Reconciler(part.db, part.stuck).run_once
                seconds = self.settings.reconcile_seconds
                self.scheduler.add_job(reconcile, "interval", seconds=seconds, max_instances=1, coalesce=True)
        self.scheduler.start()
        self._looking.start()
        self._watch = asyncio.create_task(_watch_loop(), name="event-loop-lag")
        self.started = True
        log.info("services started", services=[p.name for p in self.parts])

    async def stop(self) -> None:
        """Stop every part, each step within STOP_STEP_SECONDS: a process asked to stop must stop
        (seen once: a notifier that never finished stopping). A step left unfinished loses
        nothing: what was not committed is delivered again, the outbox is relayed again."""
        self.started = False
        if self._watch is not None:
            self._watch.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await _within("broker look", self._looking.stop())
        await _within("broker watch", self.broker_watch.close())
        for part in self.parts:
            for pump in part.pumps:
                await _within(f"pump {pump.name}", pump.stop())
        await _within("consumers and producer", self.broker.stop())
        for part in self.parts:
            for hook in part.on_stop:
                await _within(f"{part.name} on_stop", hook())
            await _within(f"{part.name} database", part.db.dispose())
        await _within("clients database", self.clients.dispose())

    def _consumers_healthy(self) -> dict[str, bool]:
        """Each consumer group: joined, and its commits not failing for 10 s or more."""
        now = asyncio.get_running_loop().time()
        healthy = {}
        for name, joined in self.joined.items():
            failing = joined.function.commit_failing_since
            healthy[name] = joined.ready.is_set() and (failing is None or now - failing < 10)
        return healthy

    async def _look(self) -> int:
        await self.broker_watch.check()
        return 0

    async def _after_look(self, epoch: str, lost: bool) -> None:
        """After each look at the broker: heal if it lost its log, and let each service's relay
        record the epoch (which replays the outbox when the service last saw another one)."""
        if lost:
            await self.heal()
        margin = timedelta(seconds=self.settings.replay_margin_seconds)
        for relay in self.relays.values():
            await relay.follow_epoch(epoch, margin)
        if lost:
            for part in self.parts:
                for pump in part.pumps:
                    pump.retry_now()  # the relays publish again at once, not after their back-off

    async def heal(self) -> None:
        """The broker lost its log while this process ran: its consumers read the new topics from
        their beginning. They rejoin the new broker's groups by themselves; what they were given,
        and what they are given for a while, they read from the start — past positions belong to
        the lost log, and a commit retried into it may have landed there."""
        rewind_until = asyncio.get_running_loop().time() + REWIND_SECONDS
        for joined in {id(j): j for j in self.joined.values()}.values():
            joined.rewind_until = rewind_until
            consumer = getattr(joined.subscriber, "consumer", None)
            if consumer is not None and consumer.assignment():
                await consumer.seek_to_beginning(*consumer.assignment())
        log.warning("consumers read the new topics from their beginning")

    async def measure(self) -> None:
        """Gauges read at scrape time: outbox backlog per service, consumer lag per group, the
        broker's and the consumers' health (what /healthz says)."""
        metrics.BROKER_WHOLE.set(1 if self.broker_watch.healthy else 0)
        for name, healthy in self._consumers_healthy().items():
            metrics.CONSUMER_HEALTHY.labels(name).set(1 if healthy else 0)
        for name, relay in self.relays.items():
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(name).set(await relay.backlog())
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            lag = 0
            with contextlib.suppress(Exception):
                for partition in consumer.assignment():
                    highwater = consumer.highwater(partition)
                    if highwater is not None:
                        lag += max(0, highwater - await consumer.position(partition))
                group = str(getattr(subscriber, "group_id", None) or "none").removeprefix(self.topics.prefix)
                metrics.CONSUMER_LAG.labels(group).set(lag)

    async def health(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for part in self.parts:
            try:
                checks[f"{part.name}.database"] = await asyncio.wait_for(part.db.ping(), 2)
            except Exception:
                checks[f"{part.name}.database"] = False
        try:
            checks["broker"] = bool(await self.broker.ping(timeout=2))
        except Exception:
            checks["broker"] = False
        checks["broker.topics"] = self.broker_watch.healthy  # reachable, every topic there, loss healed
        for name, healthy in self._consumers_healthy().items():
            checks[f"{name}.consumers"] = healthy
        checks["started"] = self.started
        return checks

    def app(
        self,
        title: str = "SAS–CPTS orientation",
        on_started: Callable[[], Awaitable[None]] | None = None,
        documented: Sequence[APIRouter] = (),
    ) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            if on_started:
                await on_started()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(title=title, version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
        install_offline_docs(app)
        app.state.settings = self.settings
        app.state.clients = self.clients
        app.state.limits = self.limits
        app.state.provided = {type(thing): thing for part in self.parts for thing in part.provides}
        install_problem_handlers(app, ACCESS_PROBLEMS | {k: a for part in self.parts for k, a in part.problems.items()})
        install_log_context(app)
        install_security_headers(app, inline_script_hashes(), https=self.settings.base_url.startswith("https://"))
        app.add_middleware(
            InputGuard,
            max_body_bytes=self.settings.max_body_bytes,
            uploads=("/rpps-import",),
            max_upload_bytes=self.settings.max_upload_bytes,
            refusals={prefix: answer for part in self.parts for prefix, answer in part.refusals.items()},
        )
        served = [router for part in self.parts for router in part.routers]
        describe_problems(app, [router for router in documented if router not in served])
        for part in self.parts:
            for router in part.routers:
                app.include_router(router)

        @app.get("/metrics", tags=["operations"], include_in_schema=False)
        async def prometheus() -> Response:
            await self.measure()
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @app.get(
            "/healthz",
            tags=["operations"],
            responses={
                503: {"description": "not ready: `checks` says which part", "content": {"application/json": {}}}
            },
        )
        async def healthz() -> JSONResponse:
            checks = await self.health()
            ready = all(checks.values())
            return JSONResponse(
                {"status": "ok" if ready else "starting", "checks": checks}, status_code=200 if ready else 503
            )

        return app


# who may call, and how often (services/common/deps.py), answered alike by every service
ACCESS_PROBLEMS: ProblemMap = {
    Forbidden: lambda e: Problem(403, "Forbidden", str(e)),
    TooManyRequests: lambda e: Problem(429, "Too Many Requests", str(e), {"Retry-After": str(e.retry_after)}),
}
STOP_STEP_SECONDS = 5.0


async def _within(step: str, stopping: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(stopping, STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning("a stopping step took too long: left unfinished", step=step, seconds=STOP_STEP_SECONDS)
    except Exception:
        log.exception("a stopping step failed", step=step)
