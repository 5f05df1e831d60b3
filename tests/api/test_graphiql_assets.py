"""`python -m api.graphiql`: npm tarballs from a registry over HTTP, each tarball and file checked by its hash.

A registry of the test's own (a real HTTP server on loopback) serves a tarball built here, pinned the
way api/graphiql.py pins React and GraphiQL.
"""

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.applications import Starlette

from api.graphiql import (
    OWN_PATH,
    PACKAGES,
    Asset,
    AssetError,
    Package,
    assets_intact,
    assets_present,
    fetch_assets,
    mount,
)
from tests.servers import ROOT, free_port

SCRIPT = b"window.Widget = 1;\n"
STYLE = b".widget { color: teal; }\n"


def _sri(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            member = tarfile.TarInfo(f"package/{path}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Registry:
    """An npm registry of tarballs by path; it remembers what it was asked for."""

    url: str
    tarballs: dict[str, bytes] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.asked.append(self.path)
            body = served.tarballs.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_args: object) -> None:
            """Quiet: the test reads `asked`."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _widget(registry: Registry, *, tarball: bytes | None = None, script: bytes = SCRIPT) -> Package:
    """A scoped package pinned by the hashes of SCRIPT and STYLE; its registry serves `script` instead."""
    data = tarball or _tarball({"dist/widget.js": script, "dist/widget.css": STYLE, "README.md": b"# widget\n"})
    registry.tarballs["/@demo/widget/-/widget-1.2.3.tgz"] = data
    return Package(
        "@demo/widget",
        "1.2.3",
        _sri("sha512", data),
        stylesheets=(Asset("dist/widget.css", _sri("sha384", STYLE)),),
        scripts=(Asset("dist/widget.js", _sri("sha384", SCRIPT)),),
    )


def test_the_pinned_files_are_fetched_checked_and_kept(registry: Registry, tmp_path: Path) -> None:
    # given
    package = _widget(registry)

    # when
    written = fetch_assets(tmp_path, registry=registry.url, packages=(package,))

    # then: the tarball's standard address for a scoped package, and only the pinned files, intact
    assert registry.asked == ["/@demo/widget/-/widget-1.2.3.tgz"]
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == [
        "@demo/widget@1.2.3/dist/widget.css",
        "@demo/widget@1.2.3/dist/widget.js",
    ]
    assert (tmp_path / "@demo/widget@1.2.3/dist/widget.js").read_bytes() == SCRIPT
    assert assets_intact(tmp_path, (package,))


@pytest.mark.parametrize("tampered", ["tarball", "file"])
def test_a_tarball_or_file_that_differs_from_its_pin_is_refused_and_nothing_is_written(
    registry: Registry, tmp_path: Path, tampered: str
) -> None:
    # given: a registry serving other bytes than pinned (the tarball's own pin, or one file's)
    package = _widget(registry, script=b"window.Widget = 'evil';\n")
    if tampered == "tarball":
        package = _widget(registry)
        registry.tarballs["/@demo/widget/-/widget-1.2.3.tgz"] += b"\0"

    # when
    with pytest.raises(AssetError) as refused:
        fetch_assets(tmp_path, registry=registry.url, packages=(package,))

    # then
    assert "@demo/widget@1.2.3" in str(refused.value)
    assert "does not match" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_registry_without_the_tarball_is_named_with_its_answer(registry: Registry, tmp_path: Path) -> None:
    # given
    package = _widget(registry)
    registry.tarballs.clear()

    # when
    with pytest.raises(AssetError) as refused:
        fetch_assets(tmp_path, registry=registry.url, packages=(package,))

    # then
    assert str(refused.value) == f"could not download {registry.url}@demo/widget/-/widget-1.2.3.tgz: HTTP 404 Not Found"


def test_a_partial_download_is_not_taken_for_the_assets(registry: Registry, tmp_path: Path) -> None:
    # given: one pinned file on disk, the other missing; then both, one of them changed
    package = _widget(registry)
    fetch_assets(tmp_path, registry=registry.url, packages=(package,))
    (tmp_path / "@demo/widget@1.2.3/dist/widget.css").unlink()
    missing = assets_present(tmp_path, (package,))
    fetch_assets(tmp_path, registry=registry.url, packages=(package,))
    (tmp_path / "@demo/widget@1.2.3/dist/widget.js").write_bytes(b"changed")

    # then
    assert missing is False
    assert assets_present(tmp_path, (package,)) is True
    assert assets_intact(tmp_path, (package,)) is False


def test_the_command_says_in_one_line_what_failed_when_the_registry_is_unreachable(tmp_path: Path) -> None:
    # given: a registry address where nothing listens
    registry = f"http://127.0.0.1:{free_port()}"
    environment = {**os.environ, "NPM_CONFIG_REGISTRY": registry}
    environment.pop("npm_config_registry", None)

    # when
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "api.graphiql", "--target", str(tmp_path / "ide")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then: exit status 1, one line naming the address and the fix, no traceback, nothing written
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"python -m api.graphiql: could not download {registry}/react/-/react-18.2.0.tgz: ")
    assert "NPM_CONFIG_REGISTRY" in line
    assert "make install" in line
    assert done.stdout == ""
    assert not (tmp_path / "ide").exists()


async def test_before_the_download_each_asset_is_a_plain_404_and_the_page_script_is_served(tmp_path: Path) -> None:
    # given: an app whose assets were never downloaded
    app = Starlette()
    mount(app, tmp_path / "never-downloaded")
    react = PACKAGES[0]

    # when
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        asset = await client.get(react.url(react.scripts[0]))
        script = await client.get(f"{OWN_PATH}/storefront-graphiql.js")

    # then: the page's own script still loads, and says what is missing
    assert asset.status_code == 404
    assert script.status_code == 200
    assert "make install" in script.text
