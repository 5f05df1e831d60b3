"""Persisted operations: a request may name its document by hash instead of sending it (README "Persisted operations").

- Automatic persisted queries (Apollo's APQ): `extensions.persistedQuery = {"version": 1,
  "sha256Hash": "<hex>"}`. With the hash alone the document is looked up; unknown, the answer is
  PERSISTED_QUERY_NOT_FOUND and the client sends the hash again with the text, which is checked
  against the hash, kept (in Redis under `<REDIS_KEY_PREFIX>:apq:<hash>` for APQ_TTL_SECONDS, else
  in this process's LRU of APQ_CACHE_MAX_BYTES) and run.
- Persisted documents (the GraphQL-over-HTTP appendix): `documentId = "sha256:<hex>"` (plain hex
  too) names a document of the trusted-documents manifest, or one kept through APQ.
- TRUSTED_DOCUMENTS_ONLY: only the manifest's documents run, named by hash, by id, or sent as text
  whose sha256 is in the manifest; any other text is PERSISTED_QUERY_NOT_IN_LIST, and APQ adds
  nothing at run time.

A store that fails (Redis down) costs a miss and a warning, never the request: the client then
sends the text, and it runs.
"""

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog
from graphql import GraphQLError, GraphQLSchema, parse, validate
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from strawberry.http import GraphQLRequestData

from api.http import BAD_REQUEST, GRAPHQL_RESPONSE_JSON, HTTPRefusal, negotiate_media_type
from api.settings import Settings

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"  # Apollo clients match this exact message
NOT_IN_LIST_MESSAGE = "This server runs trusted documents only; this document is not one of them."
HASH_MISMATCH = "The provided sha256Hash does not match the query."
UNSUPPORTED_VERSION = "Unsupported persisted query version; this server speaks version 1."
BAD_PERSISTED_QUERY = '`extensions.persistedQuery` must be {"version": 1, "sha256Hash": "<64 hex digits>"}.'
BAD_DOCUMENT_ID = '`documentId` must be "sha256:<64 lower-case hex digits>" (or the 64 hex digits alone).'
ONE_DOCUMENT_ONLY = "Name the document once: `documentId`, or `query` with or without `extensions.persistedQuery`."
BAD_QUERY_TYPE = "`query` must be a string and `extensions` an object."
# What one entry of the in-process store costs besides its text: the key, the dict slot, two str headers.
MEMORY_ENTRY_OVERHEAD_BYTES = 256

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SHA256_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")

logger = structlog.get_logger("api.persisted")

PERSISTED_QUERIES = Counter(
    "graphql_persisted_queries_total",
    "Persisted-operation look-ups and registrations: hit, miss, registered, not_in_list.",
    ["outcome"],
)
PERSISTED_QUERY_STORE_ERRORS = Counter(
    "graphql_persisted_query_store_errors_total",
    "APQ store commands that failed (Redis down): a failed get is a miss, a failed set keeps nothing.",
    ["operation"],
)


class ManifestError(RuntimeError):
    """The trusted-documents manifest cannot be used; with TRUSTED_DOCUMENTS_ONLY the app does not start."""


class PersistedQueryError(Exception):
    """A persisted-operation request refused, with its `extensions.code`; answered before anything runs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def refusal(self, accept: str | None) -> HTTPRefusal:
        """Answer this error over HTTP for a client that sent this Accept header."""
        # A malformed persisted request (bad hash, version or id) is a 400 BAD_REQUEST, as Apollo
        # Server answers it. The other two are request errors, answered as the router answers those:
        # 200 with application/json (GraphQL over HTTP: "SHOULD use 200" for a well-formed request;
        # Apollo Server 4 sends PersistedQueryNotFound with 200), a 4xx with graphql-response+json
        # (the spec's MUST for a response without `data`): 404 for an unknown document, 400 for one
        # not in the list. Never 400 for a miss: before apollographql/apollo-client#10806 (3.7.16)
        # its PersistedQueryLink turned persisted queries off for good on a 400 or 500; Apollo
        # Client 4 names graphql-response+json first and reads the errors of the 404's body (#9410).
        if self.code == BAD_REQUEST:
            status = 400
        elif negotiate_media_type(accept) == GRAPHQL_RESPONSE_JSON:
            status = 404 if self.code == PERSISTED_QUERY_NOT_FOUND else 400
        else:
            status = 200
        return HTTPRefusal(status, self.message, code=self.code)


def sha256_hex(document: str) -> str:
    """Return the lower-case hex SHA-256 of a document's UTF-8 text: its hash, id and manifest key."""
    return hashlib.sha256(document.encode()).hexdigest()


class DocumentStore(Protocol):
    """Where APQ keeps the documents clients registered, by their sha256."""

    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, document: str) -> None: ...


class MemoryDocumentStore:
    """This process's APQ documents, least recently used first out past `max_bytes` (text and bookkeeping)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    async def put(self, sha256: str, document: str) -> None:
        if sha256 in self._documents:
            self._documents.move_to_end(sha256)
            return
        size = _entry_size(document)
        if size > self.max_bytes:
            return
        self._documents[sha256] = document
        self.size += size
        while self.size > self.max_bytes:
            _, evicted = self._documents.popitem(last=False)
            self.size -= _entry_size(evicted)


def _entry_size(document: str) -> int:
    return MEMORY_ENTRY_OVERHEAD_BYTES + len(document.encode())


class RedisDocumentStore:
    """APQ documents in Redis, shared by every worker and instance; each read renews its time to live."""

    def __init__(self, redis: Redis, *, key_prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.key_prefix = key_prefix
        self.ttl_seconds = ttl_seconds

    def key(self, sha256: str) -> str:
        return f"{self.key_prefix}:apq:{sha256}"

    async def get(self, sha256: str) -> str | None:
        try:
            # GETEX (Redis 6.2+): a document in use never expires; one nobody asks for goes after the TTL.
            value: bytes | str | None = await self.redis.getex(self.key(sha256), ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            _store_failed("get", exc)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, sha256: str, document: str) -> None:
        try:
            await self.redis.set(self.key(sha256), document, ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            _store_failed("set", exc)


def _store_failed(operation: str, exc: Exception) -> None:
    PERSISTED_QUERY_STORE_ERRORS.labels(operation).inc()
    logger.warning("persisted.store_unavailable", operation=operation, error=type(exc).__name__)


def create_document_store(settings: Settings, redis: Redis | None) -> DocumentStore:
    """Return the APQ store: the app's Redis when configured, else this process's memory."""
    if redis is None:
        return MemoryDocumentStore(settings.apq_cache_max_bytes)
    return RedisDocumentStore(redis, key_prefix=settings.redis_key_prefix, ttl_seconds=settings.apq_ttl_seconds)


def load_manifest(path: Path) -> dict[str, str]:
    """Read a trusted-documents manifest, `{sha256 hex of the text: text}`; refuse any entry that does not hash."""
    where = f"TRUSTED_DOCUMENTS_MANIFEST {str(path)!r}"
    try:
        manifest = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where} must be a JSON object {{sha256 hex: document text}}")
    for key, document in manifest.items():
        if not _SHA256_HEX.fullmatch(key) or not isinstance(document, str):
            raise ManifestError(f"{where}: {key[:80]!r} is not a lower-case sha256 hex key with a document text")
        if sha256_hex(document) != key:
            raise ManifestError(f"{where}: the entry {key} is not the sha256 of its document's UTF-8 text")
    return manifest


def trusted_documents(settings: Settings) -> dict[str, str]:
    """The manifest for these settings: required with TRUSTED_DOCUMENTS_ONLY, a convenience without it."""
    path = settings.trusted_documents_manifest
    if settings.trusted_documents_only:
        manifest = load_manifest(path)
        if not manifest:
            raise ManifestError(
                f"TRUSTED_DOCUMENTS_MANIFEST {str(path)!r} is empty: with TRUSTED_DOCUMENTS_ONLY nothing could run"
            )
        return manifest
    if not path.exists():
        if "trusted_documents_manifest" in settings.model_fields_set:
            logger.warning("persisted.manifest_missing", path=str(path))
        return {}
    try:
        return load_manifest(path)
    except ManifestError as exc:
        # Only a convenience here (documentId for first-party clients): the API serves without it.
        logger.warning("persisted.manifest_ignored", error=str(exc))
        return {}


def _persisted_query_hash(extensions: Mapping[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise PersistedQueryError(BAD_REQUEST, BAD_PERSISTED_QUERY)
    version = persisted.get("version")
    if type(version) is not int:  # a bool is an int to isinstance
        raise PersistedQueryError(BAD_REQUEST, BAD_PERSISTED_QUERY)
    if version != 1:
        raise PersistedQueryError(BAD_REQUEST, UNSUPPORTED_VERSION)
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256_ANY_CASE.fullmatch(sha256):
        raise PersistedQueryError(BAD_REQUEST, BAD_PERSISTED_QUERY)
    return sha256.lower()


def _document_id_hash(document_id: object) -> str:
    if isinstance(document_id, str):
        payload = document_id.removeprefix("sha256:")
        if _SHA256_HEX.fullmatch(payload):
            return payload
    raise PersistedQueryError(BAD_REQUEST, BAD_DOCUMENT_ID)


class PersistedOperations:
    """Turn a request that names its document (APQ hash, `documentId`) into one that carries it; enforce the mode."""

    def __init__(
        self, store: DocumentStore, manifest: Mapping[str, str], settings: Settings, schema: GraphQLSchema
    ) -> None:
        self.store = store
        self.manifest = manifest
        self.schema = schema
        self.trusted_only = settings.trusted_documents_only
        self.max_tokens = settings.query_max_tokens
        self.max_document_bytes = settings.apq_max_document_bytes

    async def resolve_request(
        self, request: GraphQLRequestData, params: Mapping[str, Any], accept: str | None
    ) -> GraphQLRequestData:
        """Return the request with the document it names filled in; refuse it as an HTTP answer otherwise."""
        try:
            query = await self.resolve(request.query, request.extensions, params.get("documentId"))
        except PersistedQueryError as exc:
            raise exc.refusal(accept) from exc
        return request if query is request.query else replace(request, query=query)

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None, document_id: object) -> str | None:
        """Return the text to run for a request's `query`, `extensions` and `documentId`; raise PersistedQueryError."""
        # Over HTTP the request's shape is checked already; a WebSocket `subscribe` payload is not.
        if not isinstance(query, str | None) or not isinstance(extensions, Mapping | None):
            raise PersistedQueryError(BAD_REQUEST, BAD_QUERY_TYPE)
        sha256 = _persisted_query_hash(extensions)
        if document_id is not None:
            if query is not None or sha256 is not None:
                raise PersistedQueryError(BAD_REQUEST, ONE_DOCUMENT_ONLY)
            return await self._find(_document_id_hash(document_id))
        if sha256 is None:
            if query is not None and self.trusted_only:
                self._require_trusted(sha256_hex(query))
            return query
        if query is None:
            return await self._find(sha256)
        if sha256_hex(query) != sha256:
            raise PersistedQueryError(BAD_REQUEST, HASH_MISMATCH)
        if self.trusted_only:
            self._require_trusted(sha256)  # registration adds nothing in this mode
        elif sha256 not in self.manifest:
            await self._register(sha256, query)
        return query

    async def _find(self, sha256: str) -> str:
        document = self.manifest.get(sha256)
        if document is None and not self.trusted_only:
            document = await self.store.get(sha256)
        if document is None:
            PERSISTED_QUERIES.labels("miss").inc()
            raise PersistedQueryError(PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE)
        PERSISTED_QUERIES.labels("hit").inc()
        return document

    def _require_trusted(self, sha256: str) -> None:
        if sha256 not in self.manifest:
            PERSISTED_QUERIES.labels("not_in_list").inc()
            raise PersistedQueryError(PERSISTED_QUERY_NOT_IN_LIST, NOT_IN_LIST_MESSAGE)

    async def _register(self, sha256: str, query: str) -> None:
        # Kept only when it could run: within APQ_MAX_DOCUMENT_BYTES and QUERY_MAX_TOKENS, and valid
        # against the schema. The store (Redis, shared with the rate limits) holds no junk anyone can
        # send; the execution that follows reports what is wrong with a document left out.
        if len(query.encode()) > self.max_document_bytes:
            return
        try:
            document = parse(query, no_location=True, max_lexical_tokens=self.max_tokens, max_comments=self.max_tokens)
        except GraphQLError:
            return
        if validate(self.schema, document):
            return
        await self.store.put(sha256, query)
        PERSISTED_QUERIES.labels("registered").inc()
