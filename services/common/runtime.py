"""Hosting services in a process: migrations, consumers, outbox relays, timers, HTTP routes.

`make run` hosts the three services in one process; each service can also be hosted alone
(`sas-intake`, `sas-matcher`, `sas-notifier`), several processes per consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker

from schemas.topics import Topics
from services.common import metrics
from services.common.access.registry import ClientRegistry
from services.common.broker_watch import BrokerWatch
from services.common.consumer_groups import ConsumerGroups
from services.common.consumer_rest import ConsumerRest
from services.common.db_listener import DatabaseListener
from services.common.messaging import Pump, ensure_topics
from services.common.parts import ServicePart
from services.common.rate_limits import RateLimits
from services.common.reconcile import Reconciler
from services.common.relay import PUBLISHED, OutboxRelay, prune_delivered
from services.common.settings import Settings
from services.common.web import make_app

log = structlog.get_logger(__name__)


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
        listener: DatabaseListener | None = None,
    ) -> None:
        """`listener`: the process's one listening connection, shared with the parts' own
        listeners (db_listener.py); made here on the clients' database when not given."""
        self.settings, self.broker, self.bootstrap_servers = settings, broker, bootstrap_servers
        self.prepare = prepare  # before anything: the database's roles (services/common/db_roles.py)
        self.clients = clients  # who may call the routes (services/common/access)
        self.listener = listener or DatabaseListener(clients.db)
        self.limits = RateLimits(clients.db)  # shared by every process (services/common/rate_limits.py)
        self.topics, self.parts = topics, list(parts)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.relays: dict[str, OutboxRelay] = {}
        # consumers that rest when nothing comes, woken by any relay's publishing (consumer_rest.py)
        self.rest = ConsumerRest(settings.rest_after_ms / 1000, settings.consumer_look_seconds)
        self.consumers = ConsumerGroups(settings, broker, topics, self.rest)
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
        for part in self.parts:
            relay = OutboxRelay(part.db, self.broker, listener=self.listener)
            self.relays[part.name] = relay
            pump = Pump(f"{part.name}-outbox", relay.relay_more, self.settings.relay_interval_seconds)
            part.db.on_commit.append(pump.poke)  # a commit here
            relay.on_notified = pump.poke  # a commit in any process
            part.pumps.append(pump)
            part.on_stop.append(relay.close)
        self.consumers.register([(sub, part.db) for part in self.parts for sub in part.subscriptions])

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
        if self.rest.enabled:  # a relay (of any service, in any process) has just published
            await self.listener.listen(PUBLISHED, lambda _: self.rest.wake())
        await self.broker.start()
        for part in self.parts:
            for pump in part.pumps:
                pump.start()
            for job, seconds in part.timers:
                leading = _when_leading(self.relays[part.name], job)
                self.scheduler.add_job(leading, "interval", seconds=seconds, max_instances=1, coalesce=True)
            for job, seconds in part.local_timers:
                self.scheduler.add_job(job, "interval", seconds=seconds, max_instances=1, coalesce=True)
        self.scheduler.add_job(self.limits.storage.prune, "interval", hours=1, max_instances=1)
        for part in self.parts:
            keep = timedelta(hours=self.settings.event_retention_hours)
            self.scheduler.add_job(prune_delivered, "interval", args=(part.db, keep), hours=1, max_instances=1)
            if part.stuck:
                reconcile = _when_leading(self.relays[part.name], Reconciler(part.db, part.stuck).run_once)
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
        await _within("listening connection", self.listener.close())
        await _within("clients database", self.clients.dispose())

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
        await self.consumers.rewind()
        log.warning("consumers read the new topics from their beginning")

    async def measure(self) -> None:
        """Gauges read at scrape time: outbox backlog per service, consumer lag per group, the
        broker's and the consumers' health (what /healthz says)."""
        metrics.BROKER_WHOLE.set(1 if self.broker_watch.healthy else 0)
        await self.consumers.measure()
        for name, relay in self.relays.items():
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(name).set(await relay.backlog())

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
        for name, healthy in self.consumers.healthy().items():
            checks[f"{name}.consumers"] = healthy
        checks["started"] = self.started
        return checks

    def app(
        self,
        title: str = "SAS–CPTS orientation",
        on_started: Callable[[], Awaitable[None]] | None = None,
        documented: Sequence[APIRouter] = (),
    ) -> FastAPI:
        """The HTTP application serving these parts (services/common/web.py)."""
        return make_app(self, title, on_started, documented)


def _when_leading(relay: OutboxRelay, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    """A service's timers run once per deployment, not in each of its processes: in the one that
    relays its outbox (OutboxRelay.leading). When that process dies another takes the relay over,
    the timers with it. Each timer stays safe to run twice (its claims skip locked rows)."""

    async def run() -> None:
        if relay.leading:
            await job()

    return run


STOP_STEP_SECONDS = 5.0


async def _within(step: str, stopping: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(stopping, STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning("a stopping step took too long: left unfinished", step=step, seconds=STOP_STEP_SECONDS)
    except Exception:
        log.exception("a stopping step failed", step=step)
