"""The API documentation works with no network beyond the service: Swagger UI's files are served
by the service itself (swagger-ui-bundle), not fetched from a CDN."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route

from tests.e2e.conftest import Stack
from tests.e2e.test_browser import shot

pytestmark = pytest.mark.e2e


async def test_docs_render_with_every_outside_request_blocked(stack: Stack, browser: Browser) -> None:
    outside: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 900})

    async def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_local)
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "SAS" in await page.inner_text(".swagger-ui .info .title")
    await page.get_by_text("/v1/requests", exact=True).first.wait_for(timeout=15_000)  # the operations are listed
    await shot(page, "docs-offline")
    assert outside == []
    await context.close()
    html = (await stack.http.get("/docs")).text
    assert "cdn" not in html and "https://" not in html
