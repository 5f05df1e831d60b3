"""GraphiQL in a real browser: Debian's Chromium driven by Playwright, against a real uvicorn server.

The page runs under its Content-Security-Policy (api/graphiql.py). Every request for another origin
is aborted and recorded, a listener installed before any page script records each
`securitypolicyviolation`, and the console's errors and uncaught exceptions are collected.
"""

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, WebSocketRoute, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.graphiql_examples import AUTHORIZATION_PLACEHOLDER
from domains.common.ids import encode_global_id
from domains.users import models as users_models
from domains.users.tokens import TokenIssuer
from scripts.seed import SeedSize, seed
from tests import factories
from tests.auth import signed_in as signed_in_as
from tests.orders.subscriptions import SUBSCRIPTIONS, move
from tests.servers import Uvicorn
from tests.ws_reference import wait_for_metric

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make browser`)
WAIT_MS = 60_000
CLICK_WAIT_MS = 5_000
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
EDITOR_READY = (
    "!!document.querySelector('.graphiql-execute-button')"
    " && !!document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror"
)
# CodeMirror 5 keeps its editor on the `.CodeMirror` element. The tools pane holds the variables
# and the headers editors; the one not shown has the `hidden` class.
EDITOR = {
    "query": "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror",
    "response": "document.querySelector('.graphiql-response .CodeMirror').CodeMirror",
    "headers": (
        'document.querySelector(\'section.graphiql-editor-tool[aria-label="Headers"]'
        " .graphiql-editor:not(.hidden) .CodeMirror').CodeMirror"
    ),
}
INJECT_INLINE_SCRIPT = """
const script = document.createElement('script');
script.textContent = 'window.injectedScriptRan = true;';
document.body.appendChild(script);
"""
INTROSPECTED = 'graphql_operations_total{operation="IntrospectionQuery",outcome="ok",type="query"}'
DEMO_CUSTOMER = "customer@example.com"


@dataclass
class GraphiQL:
    """A browser page on the server's GraphiQL, with what it tried beyond the server and what went wrong."""

    page: Page
    offsite: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def value(self, editor: str) -> str:
        return str(await self.page.evaluate(f"{EDITOR[editor]}.getValue()"))

    async def set_value(self, editor: str, text: str) -> None:
        await self.page.evaluate(f"(text) => {EDITOR[editor]}.setValue(text)", text)

    async def write(self, document: str, operation: str) -> None:
        """Replace the document; see `_operation_taken_in`."""
        await self.set_value("query", document)
        await self._operation_taken_in(operation)

    async def _operation_taken_in(self, operation: str) -> None:
        # GraphiQL reads the operation's name from a new document 100 ms later (debounced); a run
        # before that would send the previous name, and the server would refuse it.
        await self.page.wait_for_function(
            f"(name) => {EDITOR['query']}.operationName === name", arg=operation, timeout=WAIT_MS
        )

    async def csp_violations(self) -> list[str]:
        violations: list[str] = await self.page.evaluate("window.cspViolations")
        return violations

    async def shown(self, text: str, timeout_ms: int = WAIT_MS) -> str:
        """Wait until the response pane holds `text`; return the response."""
        await self.page.wait_for_function(
            f"(text) => {EDITOR['response']}.getValue().includes(text)", arg=text, timeout=timeout_ms
        )
        return await self.value("response")

    async def run(self, until: str) -> str:
        """Press the execute button until the response pane holds `until` (a click GraphiQL takes while busy
        with the schema it just loaded can be lost on a loaded machine); return the response."""
        for _ in range(WAIT_MS // CLICK_WAIT_MS):
            await self.page.click(".graphiql-execute-button")
            try:
                return await self.shown(until, CLICK_WAIT_MS)
            except PlaywrightTimeoutError:
                continue
        response = await self.value("response")
        pytest.fail(f"GraphiQL never answered with {until!r} but {response!r}; console errors: {self.console_errors}")

    async def open_tab(self, title: str) -> None:
        await self.page.locator(".graphiql-tab-button", has_text=title).click()
        await self._operation_taken_in(title)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium (Playwright's own driver; no browser download)."""
    assert shutil.which(CHROMIUM), "Chromium is missing: `make test` installs it (make browser)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def _opened(browser: Browser, server: Uvicorn) -> AsyncIterator[GraphiQL]:
    """A fresh browser context (empty localStorage) on the server's /graphql, cut off from every other origin."""
    context = await browser.new_context()
    origin = server.url
    ws_origin = origin.replace("http://", "ws://", 1)
    watched = GraphiQL(await context.new_page())

    async def refuse(route: Route) -> None:
        watched.offsite.append(route.request.url)
        await route.abort()

    async def refuse_socket(socket: WebSocketRoute) -> None:
        watched.offsite.append(socket.url)
        await socket.close()

    await context.route(lambda url: not url.startswith(f"{origin}/"), refuse)
    await context.route_web_socket(lambda url: not url.startswith(f"{ws_origin}/"), refuse_socket)
    await context.add_init_script(RECORD_CSP_VIOLATIONS)
    watched.page.on("console", lambda message: _error(watched, message.type, message.text))
    watched.page.on("pageerror", lambda error: _error(watched, "error", str(error)))
    try:
        await watched.page.goto(f"{origin}/graphql", wait_until="load")
        await watched.page.wait_for_function(EDITOR_READY, timeout=WAIT_MS)
        yield watched
    finally:
        await context.close()


def _error(watched: GraphiQL, kind: str, text: str) -> None:
    if kind == "error":
        watched.console_errors.append(text)


async def _catalog(session: AsyncSession) -> dict[str, Any]:
    """The demo data (its accounts), plus one product of the test's own, newest of all, with a review."""
    await seed(session, SeedSize(products=3, customers=1, reviews_per_customer=1))
    customer = await _demo_account(session, DEMO_CUSTOMER)
    category = await factories.create_category(session, name="Telescopes")
    product = await factories.create_product(session, name="Teaching Telescope", price="249.50", category=category)
    await factories.create_review(session, product=product, author=customer, rating=4)
    await session.commit()
    return {
        "name": "Teaching Telescope",
        "price": {"amount": "249.50", "currency": "USD"},
        "inStock": True,
        "category": {"name": "Telescopes"},
        "rating": {"average": 4.0, "count": 1},
    }


async def _demo_account(session: AsyncSession, email: str) -> users_models.User:
    account = await session.scalar(select(users_models.User).where(users_models.User.email == email))
    assert account is not None, f"the seed has no {email}"
    return account


async def test_graphiql_opens_on_a_working_example_and_the_sign_in_hint(
    live_server: Uvicorn, db_session: AsyncSession, browser: Browser
) -> None:
    # given: the demo accounts and a catalog
    expected = await _catalog(db_session)

    # when: the page loads (introspecting the schema) and its default example runs as it opened
    async with _opened(browser, live_server) as graphiql:
        document = await graphiql.value("query")
        headers_shown = await graphiql.page.locator('section.graphiql-editor-tool[aria-label="Headers"]').inner_text()
        tabs = await graphiql.page.locator(".graphiql-tab-button").all_inner_texts()
        answer = json.loads(await graphiql.run(until="Teaching Telescope"))
        violations = await graphiql.csp_violations()
        loading = await graphiql.page.evaluate("document.body.innerText.includes('Loading')")
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        metrics = (await client.get("/metrics")).text

    # then: the products, run anonymously: the placeholder Authorization header was left out
    assert "errors" not in answer
    products = answer["data"]["products"]
    assert products["nodes"][0] == expected  # the newest product first
    assert products["totalCount"] == len(products["nodes"]) > 1
    assert "query FirstProducts" in document
    assert "customer@example.com" in document
    assert "storefront-demo" in document
    assert f'"Authorization": "{AUTHORIZATION_PLACEHOLDER}"' in headers_shown
    assert [tab.strip() for tab in tabs] == ["FirstProducts", "SignIn"]
    assert loading is False
    # nothing but this server was asked for anything, and the policy refused nothing the page does
    assert graphiql.offsite == []
    assert violations == []
    assert graphiql.console_errors == []
    assert INTROSPECTED in metrics


async def test_the_sign_in_tab_signs_in_and_a_subscription_follows_an_order_over_websocket(
    live_server: Uvicorn, db_session: AsyncSession, browser: Browser, token_issuer: TokenIssuer
) -> None:
    # given: the demo accounts, the customer with an order
    await _catalog(db_session)
    customer = await _demo_account(db_session, DEMO_CUSTOMER)
    staff = signed_in_as(token_issuer, await _demo_account(db_session, "staff@example.com"))
    product = await factories.create_product(db_session, stock=5)
    order = await factories.create_order(db_session, customer=customer, product=product)
    await db_session.commit()
    order_id = encode_global_id("Order", order.id)

    async with _opened(browser, live_server) as graphiql:
        # when: the SignIn tab runs as it is, and its token replaces the placeholder in its headers
        await graphiql.open_tab("SignIn")
        signed_in = json.loads(await graphiql.run(until="accessToken"))["data"]["tokenCreate"]
        await graphiql.set_value("headers", json.dumps({"Authorization": f"Bearer {signed_in['accessToken']}"}))
        await graphiql.write("query WhoAmI { me { email roles } }", "WhoAmI")
        me = json.loads(await graphiql.run(until=DEMO_CUSTOMER))["data"]["me"]

        # and: the customer follows their order from GraphiQL while staff move it along over HTTP
        await graphiql.write(
            f'subscription Follow {{ orderStatusChanged(orderId: "{order_id}") {{ previousStatus status }} }}', "Follow"
        )
        await graphiql.page.click(".graphiql-execute-button")
        await wait_for_metric(live_server.url, SUBSCRIPTIONS, 1)
        await move(live_server.url, staff, order_id, "PAID")
        change = json.loads(await graphiql.shown('"status": "PAID"'))
        violations = await graphiql.csp_violations()

    # then
    assert signed_in["userErrors"] == []
    assert signed_in["user"] == {"name": "Casey Customer", "email": DEMO_CUSTOMER, "roles": ["CUSTOMER"]}
    assert me == {"email": DEMO_CUSTOMER, "roles": ["CUSTOMER"]}
    assert change["data"]["orderStatusChanged"] == {"previousStatus": "PENDING", "status": "PAID"}
    assert graphiql.offsite == []
    assert violations == []
    assert graphiql.console_errors == []


async def test_graphiql_policy_blocks_an_inline_script_the_page_did_not_ship(
    live_server: Uvicorn, browser: Browser
) -> None:
    async with _opened(browser, live_server) as graphiql:
        # when: something (an injected payload) adds an inline script of its own
        await graphiql.page.evaluate(INJECT_INLINE_SCRIPT)
        await graphiql.page.wait_for_function("window.cspViolations.length > 0", timeout=WAIT_MS)

        # then
        assert await graphiql.page.evaluate("window.injectedScriptRan === true") is False
        assert await graphiql.csp_violations() == ["script-src-elem blocked inline"]
