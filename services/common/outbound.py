"""Where the service sends requests (contract v2): public addresses only, unless allowed.

A regulator's `callback_url` or a booking software's webhook is someone else's input: without a
rule the service would POST to its own database port, its `/internal` routes or anything on its
network (server-side request forgery). So:

- when the URL is given, its host — an address, or a name and what it resolves to — must be
  public (not loopback, private, link-local, multicast, reserved, shared …) or inside
  `OUTBOUND_ALLOWED_NETWORKS`; `http` only inside those networks, `https` everywhere else;
- when connecting, the addresses a name resolves to are checked again (`GuardedResolver`: a
  name that pointed elsewhere when given is refused then), and redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_SECONDS = 2.0


class RefusedDestination(Exception):
    """A URL or an address the service will not send to; the message says why."""


def parse_networks(setting: str) -> tuple[Network, ...]:
    """`OUTBOUND_ALLOWED_NETWORKS`: comma-separated CIDR (ValueError names a bad one)."""
    found = []
    for item in (part.strip() for part in setting.split(",")):
        if item:
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"OUTBOUND_ALLOWED_NETWORKS: {item!r} is not a network (CIDR such as 127.0.0.0/8)"
                ) from None
    return tuple(found)


def _embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (`::ffff:10.0.0.1`, 6to4), judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class OutboundPolicy:
    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_setting(cls, setting: str) -> OutboundPolicy:
        return cls(parse_networks(setting))

    def inside_allowed(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.allowed)

    def refusal(self, address: Address) -> str | None:
        """Why this address may not be sent to, or None: it is public, or inside the allowed networks."""
        if self.inside_allowed(address):
            return None
        judged = _embedded_ipv4(address)
        if judged.is_multicast:
            return f"{address} is a multicast address"
        if judged.is_loopback:
            return f"{address} is a loopback address"
        if judged.is_link_local:
            return f"{address} is a link-local address"
        if judged.is_private or not judged.is_global:
            return f"{address} is not a public address"
        return None

    def check_shape(self, url: str) -> tuple[str, str]:
        """The URL's scheme and host, or RefusedDestination (what needs no name resolution)."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        if scheme not in ("http", "https") or not host:
            raise RefusedDestination("an http(s) URL with a host is needed")
        if parts.username or parts.password:
            raise RefusedDestination("a URL with a user name or password is refused")
        literal = _literal(host)
        if literal is not None:
            reason = self.refusal(literal)
            if reason:
                raise RefusedDestination(f"{reason}; see OUTBOUND_ALLOWED_NETWORKS")
        if (host.lower() == "localhost" or host.lower().endswith(".localhost")) and not any(
            self.inside_allowed(a) for a in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
        ):
            raise RefusedDestination("localhost is a loopback address; see OUTBOUND_ALLOWED_NETWORKS")
        return scheme, host

    def check_addresses(self, scheme: str, host: str, addresses: list[Address]) -> None:
        """What the host resolved to: every address allowed, and `http` only inside the allowed networks."""
        for address in addresses:
            reason = self.refusal(address)
            if reason:
                raise RefusedDestination(f"{host} resolves to {reason}; see OUTBOUND_ALLOWED_NETWORKS")
        if scheme == "http" and not (addresses and all(self.inside_allowed(a) for a in addresses)):
            raise RefusedDestination("https is required outside OUTBOUND_ALLOWED_NETWORKS")

    async def check_url(self, url: str) -> None:
        """The check made when a URL is given (a 422 from the route when it raises)."""
        scheme, host = self.check_shape(url)
        literal = _literal(host)
        addresses = [literal] if literal is not None else await resolve(host)
        if not addresses and scheme == "https":
            return  # no answer now: judged again when connecting (GuardedResolver)
        self.check_addresses(scheme, host, addresses)


async def resolve(host: str) -> list[Address]:
    """What `host` resolves to now (empty when nothing answers within RESOLVE_SECONDS)."""
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows (the check at connection)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        kept = [r for r in found if self.policy.refusal(ipaddress.ip_address(r["host"])) is None]
        if not kept:
            reasons = {self.policy.refusal(ipaddress.ip_address(r["host"])) for r in found}
            raise OSError(f"refused destination {host}: {', '.join(sorted(str(r) for r in reasons))}")
        return kept

    async def close(self) -> None:
        await self.inner.close()
