"""A service's one HTTP client to another service's internal routes (`/internal/…`, with
INTERNAL_API_KEY): the notifier asking the intake for a contact, the operations service asking
the matcher to pause a professional, when they run apart."""

from __future__ import annotations

from typing import Any

import httpx


class InternalClient:
    """One httpx client per process, made in the event loop that uses it, closed at stop."""

    def __init__(self, base_url: str, key: str, timeout: float = 5.0) -> None:
        self.base_url, self.key, self.timeout = base_url, key, timeout
        self._client: httpx.AsyncClient | None = None

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Raises httpx.HTTPError when the other service does not answer."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.key}", **options.pop("headers", {})}
        return await self._client.request(method, path, headers=headers, **options)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
