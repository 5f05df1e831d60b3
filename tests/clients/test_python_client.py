"""The Python client (clients/python): ariadne-codegen generates `storefront_client` from the SDL and the
example operations, and the storefront's screens run through it against a live server with typed
results (tests/clients/python_screens.py, run by the client environment's interpreter).

ariadne-codegen runs from clients/python/.venv (`make clients`) into a directory of this session's,
so parallel workers never share an output directory.
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from domains.products import models as products_models
from tests import factories
from tests.auth import Account
from tests.clients.tools import PYTHON_DIR, Finished, require_python_tools, run, trusted_documents
from tests.servers import Uvicorn, running_uvicorn

SCREENS_SCRIPT = Path(__file__).with_name("python_screens.py")
TARGET_LINE = re.compile(r"^target_package_path = .*$", re.MULTILINE)
SCRIPT_SECONDS = 120
PASSWORD = "codegen-secret-1"


@pytest.fixture(scope="session")
def generated_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Finished]:
    """ariadne-codegen's package, generated with clients/python's config into a directory of this session's."""
    python = require_python_tools()
    target = tmp_path_factory.mktemp("python-client")
    config = (PYTHON_DIR / "pyproject.toml").read_text(encoding="utf-8")
    assert TARGET_LINE.search(config), "clients/python/pyproject.toml no longer sets target_package_path"
    (target / "pyproject.toml").write_text(TARGET_LINE.sub(f'target_package_path = "{target}"', config), "utf-8")
    # From clients/python, as `make codegen` runs it: the config's paths and its plugin module are relative to it.
    generated = run([python, "-m", "ariadne_codegen", "client", "--config", target / "pyproject.toml"], cwd=PYTHON_DIR)
    return target, generated


@pytest.fixture
def client_path(generated_package: tuple[Path, Finished]) -> Path:
    """The directory to put on PYTHONPATH for `import storefront_client`."""
    target, generated = generated_package
    assert generated.returncode == 0, generated.output
    return target


@pytest.fixture
async def trusted_only_server(settings: Settings, tmp_path: Path) -> AsyncIterator[Uvicorn]:
    """The app under uvicorn running only the documents of examples/trusted-documents.json."""
    async with running_uvicorn(settings, log=tmp_path / "server.log", TRUSTED_DOCUMENTS_ONLY="true") as server:
        yield server


async def _run_screens(python: Path, package_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        python,
        SCREENS_SCRIPT,
        cwd=package_dir,
        env={"PYTHONPATH": str(package_dir), "PYTHONWARNINGS": "error"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(json.dumps(config).encode()), SCRIPT_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    report: dict[str, Any] = json.loads(stdout)
    return report


def test_python_codegen_generates_the_client_package(client_path: Path) -> None:
    # then
    package = client_path / "storefront_client"
    modules = {path.stem for path in package.glob("*.py")}
    assert {"client", "catalog_page", "product_page", "sign_in", "refresh_session", "place_order"} <= modules
    assert {"order_history", "adjust_stock", "fragments", "input_types", "enums"} <= modules
    assert "amount: Decimal" in (package / "fragments.py").read_text(encoding="utf-8")


async def test_python_client_runs_the_storefront_screens_against_a_trusted_documents_only_server(
    client_path: Path, trusted_only_server: Uvicorn, db_session: AsyncSession, staff: Account
) -> None:
    # given
    teas = await factories.create_category(db_session, name="Codegen Teas")
    green = await factories.create_product(db_session, name="Codegen Green", price="4.50", stock=10, category=teas)
    await factories.create_product(db_session, name="Codegen Black", price="3.20", stock=0, category=teas)
    await factories.create_product(db_session, name="Codegen Oolong", price="12.00", stock=3)
    await factories.create_product(db_session, name="Other Coffee", price="1.00", stock=3)
    buyer = await factories.create_user(db_session, name="Cody Buyer", password=PASSWORD)
    reviewer = await factories.create_user(db_session, name="Rita Reviewer")
    review = await factories.create_review(db_session, product=green, author=reviewer, rating=4)
    await db_session.commit()
    config = {
        "url": trusted_only_server.url,
        "search": "codegen",
        "reviewed": "Codegen Green",
        "buy": "Codegen Green",
        "sold_out": "Codegen Black",
        "email": buyer.email.upper(),
        "password": PASSWORD,
        "staff_token": staff.headers["Authorization"].removeprefix("Bearer "),
    }

    # the server runs the manifest's documents only: the same catalog query laid out otherwise is refused
    catalog_text = next(text for text in trusted_documents().values() if text.startswith("query CatalogPage"))
    async with httpx.AsyncClient(base_url=trusted_only_server.url) as http:
        relaid = (await http.post("/graphql", json={"query": "\n    " + catalog_text})).json()
    assert [error["extensions"]["code"] for error in relaid["errors"]] == ["PERSISTED_QUERY_NOT_IN_LIST"]

    # when
    report = await _run_screens(require_python_tools(), client_path, config)

    # then: the catalog, two pages by price, typed down to the Decimal amounts
    catalog = report["catalog"]
    assert catalog["total"] == 3
    assert catalog["pages"] == [
        [
            ["Codegen Black", "3.20", "USD", False, "Codegen Teas"],
            ["Codegen Green", "4.50", "USD", True, "Codegen Teas"],
        ],
        [["Codegen Oolong", "12.00", "USD", True, None]],
    ]
    assert catalog["has_next"] == [True, False]
    assert catalog["types"] == {"result": "CatalogPage", "card": "ProductCardFields", "amount": "Decimal"}
    # the product page with its review and the review's author
    assert report["product"] == {
        "sku": green.sku,
        "reviews": 1,
        "review": ["Rita Reviewer", 4, review.title],
        "rating": [4.0, 1],
        "types": {"created_at": "datetime", "aware": True},
    }
    # sign-in: a wrong password refused as a user error, then a token pair, rotated by the refresh
    sign_in = report["sign_in"]
    assert sign_in["refused"] == [["INVALID_CREDENTIALS", None], None]
    assert sign_in["user"] == ["Cody Buyer", buyer.email, ["CUSTOMER"]]
    assert sign_in["tokens"] == [True, True]
    assert sign_in["rotated"] is True
    assert sign_in["types"] == {"expires_at": "datetime", "role": "Role"}
    # checkout with the refreshed token: placed once despite the retry, a sold-out line refused, in the history
    checkout = report["checkout"]
    assert checkout["order"] == ["PENDING", "9.00", "USD"]
    assert checkout["items"] == [["Codegen Green", 2, "4.50", "9.00"]]
    assert checkout["retry_same_number"] is True
    assert checkout["refused"][0][0][0] == "OUT_OF_STOCK"
    assert checkout["refused"][1] is None
    assert checkout["history"] == [1, [True]]
    assert checkout["types"] == {"status": "OrderStatus", "total": "Decimal"}
    # staff stock adjustment: 10 - 2 ordered + 5; taking more than there is refused
    assert report["stock"]["added"] == [green.sku, 13, True, []]
    assert report["stock"]["refused"][0][0][0] == "OUT_OF_STOCK"
    assert report["stock"]["refused"][1] is None
    stock = await db_session.scalar(
        select(products_models.Product.stock)
        .where(products_models.Product.id == green.id)
        .execution_options(populate_existing=True)
    )
    assert stock == 13
    # every request sent one of the trusted documents, and every trusted document was sent
    assert set(report["sent"]) == set(trusted_documents())
