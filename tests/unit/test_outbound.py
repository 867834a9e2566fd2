"""Where the service may send requests, and how it signs them (contract v2).

Every address here is judged without connecting to it: the policy is a pure function of the
address; a name's resolution is given to it (tests send traffic to loopback only)."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.common.outbound import GuardedResolver, OutboundPolicy, RefusedDestination, parse_networks
from services.common.signing import DeliveryFailed, SignedPoster, signed_headers
from services.common.webhook_secrets import receiver_secret, rotated, signing_secrets, with_versions

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # a cloud's metadata service
    "100.64.0.1",  # shared address space
    "0.0.0.0",
    "224.0.0.251",
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # loopback written as IPv6
    "::ffff:10.0.0.1",
    "2002:0a00:0001::1",  # 6to4 around a private address
    "::",
]
PUBLIC = ["8.8.8.8", "193.51.24.1", "2001:4860:4860::8888"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_an_address_that_is_not_public_is_refused(address: str) -> None:
    assert OutboundPolicy().refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_allowed(address: str) -> None:
    assert OutboundPolicy().refusal(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_exactly_themselves() -> None:
    policy = OutboundPolicy.from_setting("127.0.0.0/8, 10.20.0.0/16")
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) is not None
    assert policy.refusal(ipaddress.ip_address("::1")) is not None  # another family, not listed
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("127.0.0.0/8,nonsense")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:5432/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.5/hook", "not a public"),
        ("http://localhost:8000/internal/v1/requests/x/contact", "loopback"),
        ("https://user:pw@example.org/x", "user name"),
        ("ftp://example.org/x", r"http\(s\)"),
        ("https:///nohost", r"http\(s\)"),
    ],
)
async def test_a_url_is_refused_when_given_and_says_why(url: str, reason: str) -> None:
    with pytest.raises(RefusedDestination, match=reason):
        await OutboundPolicy().check_url(url)


def test_http_only_inside_the_allowed_networks_and_names_judged_by_what_they_resolve_to() -> None:
    policy = OutboundPolicy.from_setting("127.0.0.0/8")
    policy.check_addresses("http", "receiver.test", [ipaddress.ip_address("127.0.0.1")])  # a trial on one machine
    with pytest.raises(RefusedDestination, match="https is required"):
        policy.check_addresses("http", "sas.example.org", [ipaddress.ip_address("193.51.24.1")])
    policy.check_addresses("https", "sas.example.org", [ipaddress.ip_address("193.51.24.1")])
    with pytest.raises(RefusedDestination, match="resolves to"):  # a name pointing inside
        OutboundPolicy().check_addresses("https", "evil.example.org", [ipaddress.ip_address("10.0.0.1")])
    with pytest.raises(RefusedDestination, match="resolves to"):  # one bad address among good ones
        OutboundPolicy().check_addresses(
            "https", "mixed.example.org", [ipaddress.ip_address("193.51.24.1"), ipaddress.ip_address("127.0.0.1")]
        )


class FixedResolver:
    """Stands for DNS: the name resolves to what the test says (nothing is looked up or connected)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: object = None) -> list[dict[str, object]]:
        return [
            {"hostname": host, "host": a, "port": port, "family": 2, "proto": 0, "flags": 0} for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_at_connection_a_name_that_now_resolves_inside_is_refused() -> None:
    guarded = GuardedResolver(OutboundPolicy())
    guarded.inner = FixedResolver("10.0.0.7")  # type: ignore[assignment]
    with pytest.raises(OSError, match="refused destination"):
        await guarded.resolve("rebinding.example.org", 443)
    guarded.inner = FixedResolver("127.0.0.1", "193.51.24.1")  # type: ignore[assignment]
    kept = await guarded.resolve("mixed.example.org", 443)
    assert [r["host"] for r in kept] == ["193.51.24.1"]  # only the public address is connected to


async def test_a_literal_address_is_refused_before_any_connection() -> None:
    poster = SignedPoster(OutboundPolicy())
    with pytest.raises(DeliveryFailed, match="refused destination"):
        await poster.post("https://10.0.0.1/hook", {"a": 1}, ["whsec_dGVzdA=="], "e1")
    await poster.close()


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_ZXhhbXBsZS1uZXctc2VjcmV0LWZvci1yb3RhdGlvbg=="


def test_signatures_verify_with_the_standard_webhooks_library_and_both_during_a_rotation() -> None:
    body = b'{"request_id":"SAS-1","status":"confirmed"}'
    headers = signed_headers([NEW_SECRET, SECRET], "evt-1", body)
    assert headers["webhook-id"] == "evt-1" and int(headers["webhook-timestamp"]) <= time.time()
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (SECRET, NEW_SECRET):  # a receiver still on the old secret, and one on the new
        assert Webhook(secret).verify(body, headers) == {"request_id": "SAS-1", "status": "confirmed"}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_b3RoZXI=").verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # altered body
        Webhook(SECRET).verify(body.replace(b"confirmed", b"cancelled"), headers)
    stale = signed_headers([SECRET], "evt-1", body, sent_at=time.time() - 3600)
    with pytest.raises(WebhookVerificationError):  # an old capture replayed
        Webhook(SECRET).verify(body, stale)


def test_nothing_is_signed_with_an_empty_secret() -> None:
    with pytest.raises(DeliveryFailed, match="no signing secret"):
        signed_headers([""], "evt-1", b"{}")
    with pytest.raises(DeliveryFailed, match="no signing secret"):
        signed_headers([], "evt-1", b"{}")


def test_each_webhook_receiver_has_its_own_secret_kept_across_edits_and_rotated_with_an_overlap() -> None:
    master = "whsec_bWFzdGVy"
    a, b = (
        receiver_secret(master, "https://a.example.org/hook", 1),
        receiver_secret(master, "https://b.example.org/hook", 1),
    )
    assert a != b and a.startswith("whsec_")  # one receiver cannot sign for another
    assert receiver_secret(master, "https://a.example.org/hook", 2) != a
    channels, new = with_versions([{"type": "webhook", "destination": "https://a.example.org/hook"}], [])
    assert new == ["https://a.example.org/hook"] and channels[0]["secret_version"] == 1
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    turned = rotated(channels[0], now)
    kept, new = with_versions([{"type": "webhook", "destination": "https://a.example.org/hook"}], [turned])
    assert new == [] and kept[0]["secret_version"] == 2  # an edit of the card keeps the version
    both = signing_secrets(master, kept[0], now)
    assert both == [receiver_secret(master, "https://a.example.org/hook", 2), a]  # during the overlap
    assert signing_secrets(master, kept[0], now + timedelta(hours=25)) == both[:1]  # then the new one alone
    assert signing_secrets("", kept[0], now) == []  # never an empty key
