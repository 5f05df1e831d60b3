"""Automatic persisted queries (APQ): a document named by its sha256, registered once, over POST and GET."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.http import GRAPHQL_RESPONSE_JSON
from api.persisted import MEMORY_ENTRY_OVERHEAD_BYTES, MemoryDocumentStore, sha256_hex
from api.settings import Settings
from tests import factories
from tests.persisted import get, persisted, post, refusal
from tests.servers import free_port

PRODUCT_COUNT = "query ProductCount { products { totalCount } }"
TOKEN_REVOKE = 'mutation Revoke { tokenRevoke(input: {refreshToken: "not-a-token"}) { revoked } }'


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("graphql_persisted_queries_total", {"outcome": outcome}) or 0.0


@pytest.fixture
async def products(db_session: AsyncSession) -> None:
    for _ in range(3):
        await factories.create_product(db_session)
    await db_session.commit()


@pytest.mark.usefixtures("products")
async def test_apq_round_trip_over_post_registers_then_runs_by_hash(client: AsyncClient) -> None:
    # given: counters as they stand
    hits, misses, registrations = counted("hit"), counted("miss"), counted("registered")

    # when: the hash alone, then with the text (what Apollo Client sends after a miss), then alone again
    miss = await post(client, {"extensions": persisted(PRODUCT_COUNT)})
    registered = await post(client, {"query": PRODUCT_COUNT, "extensions": persisted(PRODUCT_COUNT)})
    by_hash = await post(client, {"extensions": persisted(PRODUCT_COUNT), "operationName": "ProductCount"})

    # then
    assert refusal(miss) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"  # Apollo clients match this text
    assert "no-store" in miss.headers["cache-control"]  # no cache may keep a miss: the next ask may hit
    assert registered.json()["data"] == {"products": {"totalCount": 3}}
    assert by_hash.status_code == 200
    assert by_hash.json()["data"] == registered.json()["data"]
    assert (counted("hit") - hits, counted("miss") - misses, counted("registered") - registrations) == (1, 1, 1)


@pytest.mark.usefixtures("products")
async def test_apq_round_trip_over_get_with_variables(client: AsyncClient) -> None:
    # given
    document = "query First($n: Int) { products(first: $n) { nodes { sku } totalCount } }"
    extensions = persisted(document)

    # when: Apollo Client's useGETForHashedQueries (with Accept: */*, which must not get GraphiQL)
    miss = await get(client, {"variables": {"n": 2}, "extensions": extensions}, {"Accept": "*/*"})
    registered = await get(client, {"query": document, "variables": {"n": 2}, "extensions": extensions})
    by_hash = await get(client, {"operationName": "First", "variables": {"n": 2}, "extensions": extensions})

    # then
    assert refusal(miss) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert registered.status_code == 200
    assert len(registered.json()["data"]["products"]["nodes"]) == 2
    assert by_hash.status_code == 200
    assert by_hash.json()["data"] == registered.json()["data"]


async def test_a_miss_is_a_404_for_graphql_response_json(client: AsyncClient) -> None:
    # when: a client that asks for application/graphql-response+json, which needs a 4xx without data
    response = await post(client, {"extensions": persisted(PRODUCT_COUNT)}, {"Accept": GRAPHQL_RESPONSE_JSON})

    # then: a 404, never the 400 that older Apollo Clients read as "persisted queries not supported"
    assert refusal(response) == (404, "PERSISTED_QUERY_NOT_FOUND")
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON


async def test_a_hash_that_does_not_match_the_query_is_refused_and_nothing_is_kept(client: AsyncClient) -> None:
    # given: the hash of one document sent with another's text
    other = "{ __typename }"
    claimed = persisted(PRODUCT_COUNT)

    # when
    mismatch = await post(client, {"query": other, "extensions": claimed})
    by_claimed_hash = await post(client, {"extensions": claimed})
    by_real_hash = await post(client, {"extensions": persisted(other)})

    # then
    assert refusal(mismatch) == (400, "BAD_REQUEST")
    assert refusal(by_claimed_hash) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert refusal(by_real_hash) == (200, "PERSISTED_QUERY_NOT_FOUND")


@pytest.mark.parametrize(
    "extensions",
    [
        pytest.param(persisted(PRODUCT_COUNT, version=2), id="unsupported version"),
        pytest.param(persisted(PRODUCT_COUNT, version=True), id="version not a number"),
        pytest.param({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}, id="not a sha256"),
        pytest.param({"persistedQuery": "abc"}, id="not an object"),
    ],
)
async def test_a_malformed_persisted_query_is_a_bad_request(client: AsyncClient, extensions: dict[str, Any]) -> None:
    # when
    response = await post(client, {"query": PRODUCT_COUNT, "extensions": extensions})

    # then
    assert refusal(response) == (400, "BAD_REQUEST")


async def test_a_mutation_by_hash_over_get_is_refused_405(client: AsyncClient) -> None:
    # given: the mutation registered (over GET: stored, though not run)
    extensions = persisted(TOKEN_REVOKE)
    registration = await get(client, {"query": TOKEN_REVOKE, "extensions": extensions})

    # when
    by_hash = await get(client, {"extensions": extensions})
    over_post = await post(client, {"extensions": extensions})

    # then: GET runs queries only, however the document was named; POST runs it
    assert refusal(registration) == (405, "METHOD_NOT_ALLOWED")
    assert refusal(by_hash) == (405, "METHOD_NOT_ALLOWED")
    assert by_hash.headers["allow"] == "POST"
    assert over_post.json()["data"] == {"tokenRevoke": {"revoked": False}}


async def test_a_registered_document_may_be_named_by_document_id(client: AsyncClient) -> None:
    # given
    await post(client, {"query": "{ __typename }", "extensions": persisted("{ __typename }")})
    document_id = "sha256:" + sha256_hex("{ __typename }")

    # when: the GraphQL-over-HTTP persisted documents appendix, over POST and GET
    over_post = await post(client, {"documentId": document_id})
    over_get = await get(client, {"documentId": document_id})
    with_query = await post(client, {"documentId": document_id, "query": "{ __typename }"})
    malformed = await post(client, {"documentId": "md5:abc"})

    # then
    assert over_post.json() == {"data": {"__typename": "Query"}, "extensions": over_post.json()["extensions"]}
    assert over_get.json()["data"] == {"__typename": "Query"}
    assert refusal(with_query) == (400, "BAD_REQUEST")
    assert refusal(malformed) == (400, "BAD_REQUEST")


async def test_a_document_beyond_the_token_limit_is_not_kept(client: AsyncClient, settings: Settings) -> None:
    # given: a document the parser refuses at QUERY_MAX_TOKENS
    document = "{ " + "__typename " * settings.query_max_tokens + "}"

    # when
    registration = await post(client, {"query": document, "extensions": persisted(document)})
    by_hash = await post(client, {"extensions": persisted(document)})

    # then
    assert [error["extensions"]["code"] for error in registration.json()["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert refusal(by_hash) == (200, "PERSISTED_QUERY_NOT_FOUND")


async def test_the_memory_store_forgets_the_least_recently_used_past_its_size() -> None:
    # given: room for two small entries, each charged its bookkeeping as well as its text
    store = MemoryDocumentStore(max_bytes=2 * MEMORY_ENTRY_OVERHEAD_BYTES + 12)
    await store.put("a", "{ a a }")
    await store.put("b", "{ b }")

    # when: "a" is read, so "b" is now the least recently used
    await store.get("a")
    await store.put("c", "{ c }")
    await store.put("big", "{ " + "x " * 2 * MEMORY_ENTRY_OVERHEAD_BYTES + "}")

    # then
    assert [await store.get(key) for key in ("a", "b", "c", "big")] == ["{ a a }", None, "{ c }", None]
    assert store.size == 2 * MEMORY_ENTRY_OVERHEAD_BYTES + len("{ a a }{ c }")


async def test_the_memory_store_counts_entries_not_only_their_text() -> None:
    # given: a budget of 64 KiB, and tiny documents (their text alone would fit by the thousand)
    store = MemoryDocumentStore(max_bytes=64 * 1024)

    # when
    for n in range(10_000):
        await store.put(f"{n:064x}", "{a}")

    # then
    assert store.size <= 64 * 1024
    assert await store.get(f"{0:064x}") is None
    assert await store.get(f"{9_999:064x}") == "{a}"


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ("{ nonsense }", "invalid against the schema"),
        ("{ __typename } # " + "x" * 40 * 1024, "over APQ_MAX_DOCUMENT_BYTES"),
    ],
)
async def test_only_a_document_that_could_run_is_kept(client: AsyncClient, document: str, why: str) -> None:
    # when
    await post(client, {"query": document, "extensions": persisted(document)})
    by_hash = await post(client, {"extensions": persisted(document)})

    # then
    assert refusal(by_hash) == (200, "PERSISTED_QUERY_NOT_FOUND"), why


@pytest.fixture
async def redis_app(redis_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(redis_settings)
    async with LifespanManager(application):
        yield application


async def test_with_redis_a_registration_is_kept_with_a_ttl_and_seen_by_another_instance(
    redis_app: FastAPI, redis_settings: Settings
) -> None:
    # given: registered through one app
    async with AsyncClient(transport=ASGITransport(app=redis_app), base_url="http://one") as first:
        registered = await post(first, {"query": PRODUCT_COUNT, "extensions": persisted(PRODUCT_COUNT)})
    key = f"{redis_settings.redis_key_prefix}:apq:{sha256_hex(PRODUCT_COUNT)}"
    redis: Redis = redis_app.state.redis

    # when: another app object on the same Redis (another worker or instance) asks by hash
    other = create_app(redis_settings)
    async with LifespanManager(other), AsyncClient(transport=ASGITransport(app=other), base_url="http://two") as second:
        by_hash = await post(second, {"extensions": persisted(PRODUCT_COUNT)})

    # then
    assert registered.json()["data"] == {"products": {"totalCount": 0}}
    assert by_hash.json()["data"] == registered.json()["data"]
    assert await redis.get(key) == PRODUCT_COUNT.encode()
    assert 0 < await redis.ttl(key) <= redis_settings.apq_ttl_seconds


async def test_with_redis_down_a_miss_is_answered_and_the_full_text_still_runs(settings: Settings) -> None:
    # given: REDIS_URL pointing at a port nothing listens on
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    errors_before = REGISTRY.get_sample_value("graphql_persisted_query_store_errors_total", {"operation": "get"}) or 0
    app = create_app(down)

    # when: Apollo Client's exchange, hash first, then the text
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        miss = await post(client, {"extensions": persisted(PRODUCT_COUNT)})
        full = await post(client, {"query": PRODUCT_COUNT, "extensions": persisted(PRODUCT_COUNT)})

    # then: a miss (never a 500), and the operation runs; the failure is counted
    assert refusal(miss) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert full.status_code == 200
    assert full.json()["data"] == {"products": {"totalCount": 0}}
    errors_after = REGISTRY.get_sample_value("graphql_persisted_query_store_errors_total", {"operation": "get"})
    assert errors_after == errors_before + 1
