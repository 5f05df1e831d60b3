"""Trusted documents: with TRUSTED_DOCUMENTS_ONLY only the manifest's documents run; the manifest is checked first."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError

from api.app import create_app
from api.persisted import ManifestError, sha256_hex
from api.settings import Settings
from tests.persisted import get, persisted, post, refusal
from tests.servers import ROOT, STARTUP_SECONDS, free_port

PRODUCT_COUNT = "query ProductCount { products { totalCount } }"
TYPENAME = "{ __typename }"
FREE_FORM = "{ products { totalCount } }"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "trusted-documents.json"
    path.write_text(json.dumps({sha256_hex(document): document for document in (PRODUCT_COUNT, TYPENAME)}))
    return path


@pytest.fixture
def trusted_settings(settings: Settings, manifest: Path) -> Settings:
    return settings.model_copy(update={"trusted_documents_only": True, "trusted_documents_manifest": manifest})


@pytest.fixture
async def trusted_client(trusted_settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(trusted_settings)
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def test_a_manifest_document_runs_by_hash_and_by_document_id(trusted_client: AsyncClient) -> None:
    # given
    digest = sha256_hex(PRODUCT_COUNT)

    # when
    by_hash = await post(trusted_client, {"extensions": persisted(PRODUCT_COUNT)})
    by_hash_over_get = await get(trusted_client, {"extensions": persisted(PRODUCT_COUNT)}, {"Accept": "*/*"})
    by_id = await post(trusted_client, {"documentId": f"sha256:{digest}"})
    by_plain_id_over_get = await get(trusted_client, {"documentId": digest})

    # then
    answers = [by_hash, by_hash_over_get, by_id, by_plain_id_over_get]
    assert [answer.status_code for answer in answers] == [200] * 4
    assert all(answer.json()["data"] == {"products": {"totalCount": 0}} for answer in answers)


async def test_free_form_text_runs_only_when_its_hash_is_in_the_manifest(trusted_client: AsyncClient) -> None:
    # when
    listed = await post(trusted_client, {"query": PRODUCT_COUNT})
    free_form = await post(trusted_client, {"query": FREE_FORM})
    free_form_over_get = await get(
        trusted_client, {"query": FREE_FORM}, {"Accept": "application/graphql-response+json"}
    )

    # then
    assert listed.json()["data"] == {"products": {"totalCount": 0}}
    assert refusal(free_form) == (200, "PERSISTED_QUERY_NOT_IN_LIST")
    assert refusal(free_form_over_get) == (400, "PERSISTED_QUERY_NOT_IN_LIST")


async def test_an_unknown_hash_or_id_is_not_found(trusted_client: AsyncClient) -> None:
    # when
    by_hash = await post(trusted_client, {"extensions": persisted(FREE_FORM)})
    by_id = await post(trusted_client, {"documentId": "sha256:" + sha256_hex(FREE_FORM)})

    # then
    assert refusal(by_hash) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert refusal(by_id) == (200, "PERSISTED_QUERY_NOT_FOUND")


async def test_apq_registration_is_refused_and_adds_nothing(trusted_client: AsyncClient) -> None:
    # when: Apollo Client's exchange for a document outside the manifest
    registration = await post(trusted_client, {"query": FREE_FORM, "extensions": persisted(FREE_FORM)})
    by_hash = await post(trusted_client, {"extensions": persisted(FREE_FORM)})
    listed = await post(trusted_client, {"query": TYPENAME, "extensions": persisted(TYPENAME)})

    # then: a manifest document sent the same way runs
    assert refusal(registration) == (200, "PERSISTED_QUERY_NOT_IN_LIST")
    assert refusal(by_hash) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert listed.json()["data"] == {"__typename": "Query"}


async def test_without_the_mode_manifest_documents_may_be_named_by_id(settings: Settings, manifest: Path) -> None:
    # given
    app = create_app(settings.model_copy(update={"trusted_documents_manifest": manifest}))

    # when
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        by_id = await post(client, {"documentId": "sha256:" + sha256_hex(PRODUCT_COUNT)})
        free_form = await post(client, {"query": FREE_FORM})

    # then
    assert by_id.json()["data"] == {"products": {"totalCount": 0}}
    assert free_form.json()["data"] == {"products": {"totalCount": 0}}


BAD_MANIFESTS = {
    "not JSON": "{",
    "not an object": "[]",
    "empty": "{}",
    "a key that is not a sha256": json.dumps({"abc": TYPENAME}),
    "a key that is not the document's hash": json.dumps({sha256_hex(FREE_FORM): TYPENAME}),
    "an upper-case key": json.dumps({sha256_hex(TYPENAME).upper(): TYPENAME}),
}


@pytest.mark.parametrize("content", [*BAD_MANIFESTS.values(), None], ids=[*BAD_MANIFESTS, "missing"])
def test_start_up_is_refused_with_a_bad_manifest(
    trusted_settings: Settings, tmp_path: Path, content: str | None
) -> None:
    # given
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content)

    # when / then
    with pytest.raises(ManifestError, match="TRUSTED_DOCUMENTS_MANIFEST"):
        create_app(trusted_settings.model_copy(update={"trusted_documents_manifest": path}))


async def test_without_the_mode_a_broken_manifest_is_ignored(settings: Settings, tmp_path: Path) -> None:
    # given
    path = tmp_path / "broken.json"
    path.write_text("{")
    app = create_app(settings.model_copy(update={"trusted_documents_manifest": path}))

    # when
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        by_id = await post(client, {"documentId": "sha256:" + sha256_hex(TYPENAME)})

    # then
    assert refusal(by_id) == (200, "PERSISTED_QUERY_NOT_FOUND")


async def test_a_server_process_with_a_bad_manifest_exits_naming_it(settings: Settings, tmp_path: Path) -> None:
    # given
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({sha256_hex(FREE_FORM): TYPENAME}))
    environment = {
        **os.environ,
        "DATABASE_URL": settings.effective_database_url,
        "TRUSTED_DOCUMENTS_ONLY": "true",
        "TRUSTED_DOCUMENTS_MANIFEST": str(path),
    }

    # when
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(free_port())),
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # then
    assert process.returncode != 0
    assert f"TRUSTED_DOCUMENTS_MANIFEST {str(path)!r}: the entry {sha256_hex(FREE_FORM)}" in stderr.decode()


def test_graphiql_is_off_in_the_mode_and_neither_it_nor_the_legacy_websocket_protocol_can_be_on(manifest: Path) -> None:
    # when
    trusted = Settings(trusted_documents_only=True, trusted_documents_manifest=manifest, _env_file=None)

    # then
    assert not trusted.graphiql_enabled
    with pytest.raises(ValidationError, match="GRAPHIQL cannot be on with TRUSTED_DOCUMENTS_ONLY"):
        Settings(trusted_documents_only=True, graphiql=True, _env_file=None)
    with pytest.raises(ValidationError, match="WS_LEGACY_PROTOCOL cannot be on with TRUSTED_DOCUMENTS_ONLY"):
        Settings(trusted_documents_only=True, ws_legacy_protocol=True, _env_file=None)
