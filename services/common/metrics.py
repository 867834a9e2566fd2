"""Prometheus metrics of every service process, served on /metrics (see deploy/grafana-dashboard.json)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_STATUS = Counter("sas_request_status_total", "Requests reaching a status", ["status"])
MATCH_SECONDS = Histogram(
    "sas_match_seconds",
    "Time to search and claim a candidate for one request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OFFERS = Counter("sas_offers_total", "Offers by outcome", ["outcome"])
MESSAGES = Counter("sas_messages_total", "Messages to professionals by channel and result", ["channel", "result"])
PATIENT_DATA_ERASED = Counter(
    "sas_patient_data_erased_total",
    "Requests whose patient data was erased: `contact` alone, or every detail (`patient`); asked or by retention",
    ["what", "why"],
)
DEAD_LETTERS = Counter("sas_dead_letters_total", "Messages a consumer could not handle", ["consumer"])
EVENTS_HANDLED = Counter("sas_events_handled_total", "Events handled by consumer and type", ["consumer", "type"])
OUTBOX_BACKLOG = Gauge("sas_outbox_backlog", "Committed events not yet published", ["service"])
CONSUMER_LAG = Gauge("sas_consumer_lag", "Messages behind the end of the topics", ["consumer"])
BROKER_WHOLE = Gauge("sas_broker_whole", "1 while the broker is reachable with every topic (no loss being healed)")
BROKER_LOSSES = Counter("sas_broker_losses_total", "Times this process found the broker had lost its log")
CONSUMER_HEALTHY = Gauge(
    "sas_consumer_healthy", "1 while a consumer group has joined and its commits succeed", ["consumer"]
)
EVENTS_REPUBLISHED = Counter(
    "sas_events_republished_total", "Outbox events published again (broker loss, stuck requests)", ["service", "why"]
)
LOOP_LAG = Histogram(
    "sas_event_loop_lag_seconds",
    "How late a timer fires in a process's event loop (time spent queueing behind other work)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
