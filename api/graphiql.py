"""GraphiQL served entirely from this server, under a policy that allows no inline script.

The page is ours. Its logic is `api/ide/storefront-graphiql.js` (committed, served under
`/graphql/ide/storefront/`); what differs per mode (the example documents, the headers hint) travels
in a JSON block the browser never runs. The third-party files (React, GraphiQL, its explorer plugin)
are pinned below, each npm tarball by its registry integrity and each file by the SRI hash the page
carries. `python -m api.graphiql` (run by `make install`) downloads those tarballs over HTTPS with the
standard library, checks both hashes and keeps the files under `api/static/ide/` (gitignored).
"""

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from api.graphiql_examples import AUTHORIZATION_PLACEHOLDER, HEADERS_HINT, examples

ASSETS_DIR = Path(__file__).with_name("static") / "ide"
OWN_DIR = Path(__file__).with_name("ide")
MOUNT_PATH = "/graphql/ide"
OWN_PATH = f"{MOUNT_PATH}/storefront"
CONFIG_ELEMENT_ID = "graphiql-config"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
DOWNLOAD_TIMEOUT_SECONDS = 60
USER_AGENT = "storefront-graphql (python -m api.graphiql)"
HOW_TO_FIX = (
    "GraphiQL needs these files: check the network, or set NPM_CONFIG_REGISTRY to a reachable npm registry,"
    " then run `make install` again"
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of a package, with the SRI hash the browser checks it against."""

    path: str
    integrity: str


@dataclass(frozen=True, slots=True)
class Package:
    """An npm package pinned by version and by its tarball's integrity (the registry's `dist.integrity`)."""

    name: str
    version: str
    integrity: str
    stylesheets: tuple[Asset, ...] = ()
    scripts: tuple[Asset, ...] = ()

    @property
    def assets(self) -> tuple[Asset, ...]:
        return self.stylesheets + self.scripts

    def url(self, asset: Asset) -> str:
        """Where this server serves the file."""
        return f"{MOUNT_PATH}/{self.name}@{self.version}/{asset.path}"

    def tarball(self, registry: str) -> str:
        """The tarball's address in the registry's standard layout: `@scope/name/-/name-1.0.0.tgz`."""
        return f"{registry}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


# The versions and file hashes Strawberry's own GraphiQL page pins; the scripts load in this order.
PACKAGES = (
    Package(
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        scripts=(
            Asset(
                "umd/react.production.min.js",
                "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
            ),
        ),
    ),
    Package(
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        scripts=(
            Asset(
                "umd/react-dom.production.min.js",
                "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
            ),
        ),
    ),
    Package(
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        stylesheets=(
            Asset("graphiql.min.css", "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"),
        ),
        scripts=(Asset("graphiql.min.js", "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie"),),
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
        stylesheets=(
            Asset("dist/style.css", "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi"),
        ),
        scripts=(
            Asset("dist/index.umd.js", "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9"),
        ),
    ),
)


class AssetError(Exception):
    """A pinned file could not be had: unreachable registry, unexpected answer, or a hash that differs."""


# ---------------------------------------------------------------------------------------------- the page


def content_security_policy() -> str:
    """Return the page's CSP: scripts from this server only, no inline script of any kind."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            # GraphiQL's dialogs (react-remove-scroll) add <style> elements at run time whose text no
            # hash can name ahead; styles cannot run code, so inline styles are allowed, scripts not.
            "style-src 'self' 'unsafe-inline'",
            # The stylesheets embed their fonts and icons as data: URLs; the favicon is one too.
            "img-src 'self' data:",
            "font-src 'self' data:",
            # Queries over fetch and subscriptions over WebSocket, both to this origin only.
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def script_json(value: object) -> str:
    """Serialise `value` for a `<script type="application/json">` block: no `<`, `>` or `&` can end it early."""
    text = json.dumps(value, ensure_ascii=True)  # ensure_ascii: U+2028 and U+2029 arrive escaped too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def ide_html(*, demo: bool) -> str:
    """Return the GraphiQL page: with the demo accounts' sign-in in development (`demo`), neutral otherwise."""
    config = {**examples(demo=demo), "headers": HEADERS_HINT, "placeholder": AUTHORIZATION_PLACEHOLDER}
    stylesheets = [(package.url(asset), asset.integrity) for package in PACKAGES for asset in package.stylesheets]
    scripts = [(package.url(asset), asset.integrity) for package in PACKAGES for asset in package.scripts]
    links = "".join(
        f'    <link rel="stylesheet" href="{escape(url)}" integrity="{escape(integrity)}" crossorigin>\n'
        for url, integrity in stylesheets
    )
    tags = "".join(
        f'    <script src="{escape(url)}" integrity="{escape(integrity)}" crossorigin></script>\n'
        for url, integrity in scripts
    )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n'
        "  <head>\n"
        '    <meta charset="utf-8">\n'
        '    <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "    <title>Storefront GraphiQL</title>\n"
        '    <link rel="icon" href="data:,">\n'
        f"{links}"
        f'    <link rel="stylesheet" href="{OWN_PATH}/storefront-graphiql.css">\n'
        "  </head>\n"
        "  <body>\n"
        '    <div id="graphiql">Loading…</div>\n'
        f'    <script type="application/json" id="{CONFIG_ELEMENT_ID}">{script_json(config)}</script>\n'
        f"{tags}"
        f'    <script src="{OWN_PATH}/storefront-graphiql.js"></script>\n'
        "  </body>\n"
        "</html>\n"
    )


class _Downloaded(StaticFiles):
    """The downloaded files: each one a plain 404 (not a 500) while `make install` has not fetched them."""

    async def check_config(self) -> None:
        """Accept a directory that does not exist (yet): a lookup in it finds nothing."""


def mount(app: Starlette, assets: Path = ASSETS_DIR) -> None:
    """Serve the page's own files and the downloaded `assets` under MOUNT_PATH (the own files first)."""
    app.mount(OWN_PATH, StaticFiles(directory=OWN_DIR), name="ide-storefront")
    app.mount(MOUNT_PATH, _Downloaded(directory=assets, check_dir=False), name="ide")


# ------------------------------------------------------------------------------------------ the download


def _matches(data: bytes, integrity: str) -> bool:
    algorithm, _, expected = integrity.partition("-")
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == expected


def registry_url() -> str:
    """The npm registry to download from: NPM_CONFIG_REGISTRY (as npm reads it) or the public one."""
    # npm reads its variables in either case, and sets them lower-case itself (npm run, npx).
    configured = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")  # noqa: SIM112
    return (configured or DEFAULT_REGISTRY).rstrip("/")


def _download(url: str) -> bytes:
    if not url.startswith(("https://", "http://")):
        msg = f"{url}: the registry must be an http(s) URL"
        raise AssetError(msg)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked above
            data: bytes = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        msg = f"could not download {url}: HTTP {exc.code} {exc.reason}"
        raise AssetError(msg) from exc
    except (urllib.error.URLError, OSError) as exc:  # refused, unresolvable, TLS, timeout
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        msg = f"could not download {url}: {reason}"
        raise AssetError(msg) from exc
    return data


def _unpack(package: Package, tarball: bytes) -> dict[Asset, bytes]:
    """The package's pinned files from its tarball (npm puts them under `package/`), each checked."""
    label = f"{package.name}@{package.version}"
    if not _matches(tarball, package.integrity):
        msg = f"{label}: the tarball does not match its pinned integrity"
        raise AssetError(msg)
    files: dict[Asset, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for asset in package.assets:
                member = archive.getmember(f"package/{asset.path}")
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is None:
                    msg = f"{label}: {asset.path} is not a file in the tarball"
                    raise AssetError(msg)
                files[asset] = extracted.read()
    except (tarfile.TarError, KeyError, OSError) as exc:
        msg = f"{label}: unreadable tarball or missing file ({exc})"
        raise AssetError(msg) from exc
    for asset, data in files.items():
        if not _matches(data, asset.integrity):
            msg = f"{label}/{asset.path}: does not match the page's integrity attribute"
            raise AssetError(msg)
    return files


def _destination(target: Path, package: Package, asset: Asset) -> Path:
    return target / f"{package.name}@{package.version}" / asset.path


def fetch_assets(
    target: Path = ASSETS_DIR, *, registry: str | None = None, packages: tuple[Package, ...] = PACKAGES
) -> list[Path]:
    """Download and check every pinned file, then write them all into `target`; return the files written."""
    registry = (registry or registry_url()).rstrip("/")
    checked = [(package, _unpack(package, _download(package.tarball(registry)))) for package in packages]
    written: list[Path] = []
    for package, files in checked:
        for asset, data in files.items():
            destination = _destination(target, package, asset)
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(destination.name + ".partial")
            partial.write_bytes(data)
            partial.replace(destination)  # a reader never sees half a file
            written.append(destination)
    return written


def assets_present(target: Path = ASSETS_DIR, packages: tuple[Package, ...] = PACKAGES) -> bool:
    """Tell whether every pinned file is on disk (cheap: the app asks at start-up)."""
    return all(_destination(target, p, asset).is_file() for p in packages for asset in p.assets)


def assets_intact(target: Path = ASSETS_DIR, packages: tuple[Package, ...] = PACKAGES) -> bool:
    """Tell whether every pinned file is on disk with the content its hash names."""
    return assets_present(target, packages) and all(
        _matches(_destination(target, p, asset).read_bytes(), asset.integrity) for p in packages for asset in p.assets
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.graphiql", description="Download GraphiQL's pinned files.")
    parser.add_argument("--target", type=Path, default=ASSETS_DIR, help="where to keep them (default: %(default)s)")
    target: Path = parser.parse_args(argv).target
    if assets_intact(target):
        return
    try:
        written = fetch_assets(target)
    except AssetError as exc:
        sys.exit(f"python -m api.graphiql: {exc}. {HOW_TO_FIX}.")
    for path in written:
        sys.stdout.write(f"graphiql asset: {path.relative_to(target)}\n")


if __name__ == "__main__":
    main()
