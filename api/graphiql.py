"""GraphiQL served with every asset from this server: no CDN at run time.

Strawberry's GraphiQL page loads pinned files from unpkg. `python -m api.graphiql` (run by
`make install`) fetches exactly those package versions from the npm registry with `npm pack`,
checks each file against the page's own SRI hash, and keeps them under `api/static/ide/`.
The router then serves the same page with the URLs rewritten to `/graphql/ide/...`, so the
browser checks the very same hashes against our copies.
"""

import base64
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from functools import cache
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

ASSETS_DIR = Path(__file__).with_name("static") / "ide"
MOUNT_PATH = "/graphql/ide"
_ASSET = re.compile(
    r'(?:src|href)="https://unpkg\.com/(?P<package>(?:@[\w.-]+/)?[\w.-]+)@(?P<version>[\w.-]+)/(?P<path>[^"]+)"'
    r'(?:\s+integrity="(?P<integrity>[^"]+)")?'
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _page() -> str:
    return get_graphql_ide_html(graphql_ide="graphiql")


def local_ide_html() -> str:
    """Return the GraphiQL page with every unpkg URL pointing at this server."""
    return re.sub(r"https://unpkg\.com/", f"{MOUNT_PATH}/", _page())


@cache
def content_security_policy() -> str:
    """Return the page's CSP: scripts from this server plus the page's own inline script, by its hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(local_ide_html())
    )
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {hashes}",
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


def _verify(data: bytes, integrity: str | None, name: str) -> None:
    if integrity is None:
        return
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        msg = f"{name}: {algorithm} digest does not match the page's integrity attribute"
        raise RuntimeError(msg)


def fetch_assets(target: Path = ASSETS_DIR) -> list[Path]:
    """Download the page's assets from the npm registry into `target`; return the files written."""
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as scratch:
        for match in _ASSET.finditer(_page()):
            package, version, path = match["package"], match["version"], match["path"]
            destination = target / f"{package}@{version}" / path
            subprocess.run(  # noqa: S603 - fixed arguments; package names come from Strawberry's page
                ["npm", "pack", "--silent", f"{package}@{version}"],  # noqa: S607 - npm from PATH
                cwd=scratch,
                check=True,
                capture_output=True,
            )
            tarball = Path(scratch) / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
            with tarfile.open(tarball) as archive:
                member = archive.extractfile(f"package/{path}")
                if member is None:
                    msg = f"{package}@{version} has no file {path}"
                    raise RuntimeError(msg)
                data = member.read()
            _verify(data, match["integrity"], f"{package}@{version}/{path}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
            written.append(destination)
    return written


def assets_present(target: Path = ASSETS_DIR) -> bool:
    """Tell whether every asset the page needs is on disk."""
    return all((target / f"{m['package']}@{m['version']}" / m["path"]).is_file() for m in _ASSET.finditer(_page()))


def main() -> None:
    if assets_present():
        return
    for path in fetch_assets():
        sys.stdout.write(f"graphiql asset: {path.relative_to(ASSETS_DIR)}\n")


if __name__ == "__main__":
    main()
