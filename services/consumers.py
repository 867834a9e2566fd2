"""Who reads what, from the services' own wiring: every consumer group, the topics it reads and
the event types its handler table takes — for the AsyncAPI document (`schemas/generate.py`),
so that the document says what the code does."""

from __future__ import annotations

from schemas.asyncapi import TOPIC_EVENTS, Reader
from services.common.parts import Subscription
from services.common.sealing import DataKeys
from services.common.settings import Settings


def subscriptions() -> list[Subscription]:
    """Every consumer group of `sas-run`, built the way it builds them, connecting to nothing."""
    from services.main import build_runtime  # the composition root itself

    settings = Settings(secret_key="documentation", data_keys=DataKeys.new_key(), internal_api_key="x", demo_data=False)
    runtime, _ = build_runtime(settings, "postgresql://documentation@localhost/documentation", "localhost:9092")
    return [subscription for part in runtime.parts for subscription in part.subscriptions]


def readers(groups: list[Subscription]) -> list[Reader]:
    """Each (group, topic) with the handled event types that travel on that topic."""
    found: list[Reader] = []
    for group in groups:
        for topic in group.topics:
            handled = tuple(t for t in TOPIC_EVENTS[topic].events if t in group.handlers)
            if handled:
                found.append(Reader(group.name, topic, handled))
    return found


def not_carried(groups: list[Subscription]) -> list[str]:
    """Handled event types that no topic of their group carries: the wiring and the document disagree."""
    return [
        f"{group.name}: {handled.__name__}"
        for group in groups
        for handled in group.handlers
        if not any(handled in TOPIC_EVENTS[topic].events for topic in group.topics)
    ]
