"""The breaking-change gate of the public contract (`make schema-check`, part of `make test`).

Compares the schema the code builds with a baseline SDL — `schema/baseline.graphql` (the contract
as last published), or the committed `schema/schema.graphql` of a git revision (`--against main`) —
using graphql-core's breaking and dangerous change detection. A breaking change fails the check
unless `schema/acknowledged-changes.toml` lists it with a reason; dangerous changes (an enum value
or an optional argument added, a default changed) are printed, since strict clients may trip on
them. An acknowledgement that no longer matches any change fails too, so the file stays true.

Publishing the contract (a release): `make schema-baseline` copies the current SDL over the
baseline and the acknowledged list is emptied.
"""

import argparse
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from graphql import GraphQLSchema, build_schema, find_breaking_changes, find_dangerous_changes

from schema.export import SDL_PATH, render_sdl

BASELINE_PATH = SDL_PATH.with_name("baseline.graphql")
ACKNOWLEDGED_PATH = SDL_PATH.with_name("acknowledged-changes.toml")


@dataclass(frozen=True)
class Change:
    kind: str
    description: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.description}"


@dataclass(frozen=True)
class Acknowledgement:
    kind: str
    description: str
    reason: str

    def matches(self, change: Change) -> bool:
        return (self.kind, self.description) == (change.kind, change.description)


@dataclass(frozen=True)
class Report:
    breaking: list[Change]
    dangerous: list[Change]
    unacknowledged: list[Change]
    stale: list[Acknowledgement]

    @property
    def passed(self) -> bool:
        return not self.unacknowledged and not self.stale


def compare(baseline: GraphQLSchema, current: GraphQLSchema, acknowledged: Sequence[Acknowledgement]) -> Report:
    """Return the changes from `baseline` to `current` and which breaking ones nobody acknowledged."""
    breaking = [Change(c.type.name, c.description) for c in find_breaking_changes(baseline, current)]
    dangerous = [Change(c.type.name, c.description) for c in find_dangerous_changes(baseline, current)]
    return Report(
        breaking=breaking,
        dangerous=dangerous,
        unacknowledged=[c for c in breaking if not any(a.matches(c) for a in acknowledged)],
        stale=[a for a in acknowledged if not any(a.matches(c) for c in breaking)],
    )


def read_acknowledged(path: Path) -> list[Acknowledgement]:
    """Read `[[change]]` entries (`type`, `description`, `reason`); a missing file acknowledges nothing."""
    if not path.is_file():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("change", [])
    acknowledged = []
    for number, entry in enumerate(entries, start=1):
        missing = [key for key in ("type", "description", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            msg = f"{path}: change #{number} needs {', '.join(missing)} (a breaking change is accepted with a reason)"
            raise ValueError(msg)
        acknowledged.append(Acknowledgement(entry["type"], entry["description"], entry["reason"]))
    return acknowledged


def sdl_at_revision(revision: str) -> str:
    """Return the committed SDL at a git revision (a branch, tag or commit)."""
    path = SDL_PATH.relative_to(SDL_PATH.parent.parent).as_posix()
    result = subprocess.run(  # noqa: S603 - git with a revision the developer named
        ["git", "show", f"{revision}:{path}"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
        cwd=SDL_PATH.parent,
    )
    if result.returncode != 0:
        msg = f"cannot read {path} at {revision!r}: {result.stderr.strip()}"
        raise ValueError(msg)
    return result.stdout


def publish() -> None:
    """Make the code's schema the published baseline and empty the acknowledged list (keeping its comments)."""
    BASELINE_PATH.write_text(render_sdl(), encoding="utf-8")
    if ACKNOWLEDGED_PATH.is_file():
        lines = ACKNOWLEDGED_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
        header = []
        for line in lines:
            if not line.startswith("#"):
                break
            header.append(line)
        ACKNOWLEDGED_PATH.write_text("".join(header), encoding="utf-8")


def _print_report(report: Report, baseline_name: str) -> None:
    out = sys.stdout
    out.write(f"schema-check: against {baseline_name}\n")
    for change in report.dangerous:
        out.write(f"  dangerous   {change}\n")
    for change in report.breaking:
        status = "UNACKNOWLEDGED" if change in report.unacknowledged else "acknowledged"
        out.write(f"  breaking    {change} [{status}]\n")
    for stale in report.stale:
        out.write(f"  stale       {stale.kind}: {stale.description} (acknowledged, but no such change: remove it)\n")
    if report.passed:
        out.write(
            f"schema-check: ok ({len(report.breaking)} breaking acknowledged, {len(report.dangerous)} dangerous)\n"
        )
    else:
        out.write(
            "schema-check: FAILED. A breaking change breaks deployed clients: keep the old field (deprecate it"
            f" with a reason), or list the change in {ACKNOWLEDGED_PATH.name} as\n"
            '  [[change]]\n  type = "<TYPE>"\n  description = "<description above>"\n'
            '  reason = "<why clients are safe>"\n'
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH, help="the published SDL")
    parser.add_argument("--against", metavar="REVISION", help="compare with schema/schema.graphql at a git revision")
    parser.add_argument("--current", type=Path, help="an SDL file to check instead of the code's schema")
    parser.add_argument("--acknowledged", type=Path, default=ACKNOWLEDGED_PATH)
    parser.add_argument("--publish", action="store_true", help="make the code's schema the new baseline")
    args = parser.parse_args(argv)
    if args.publish:
        publish()
        sys.stdout.write(f"schema-check: {BASELINE_PATH.name} now holds the current schema\n")
        return 0
    try:
        if args.against:
            baseline_sdl, baseline_name = sdl_at_revision(args.against), f"{args.against}:schema/schema.graphql"
        else:
            baseline_sdl, baseline_name = args.baseline.read_text(encoding="utf-8"), args.baseline.name
        current_sdl = args.current.read_text(encoding="utf-8") if args.current else render_sdl()
        acknowledged = read_acknowledged(args.acknowledged)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"schema-check: {exc}\n")
        return 2
    report = compare(build_schema(baseline_sdl), build_schema(current_sdl), acknowledged)
    _print_report(report, baseline_name)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
