"""The TypeScript client (clients/typescript): GraphQL Code Generator's output type-checks with the
example usage under `strict`, a misuse of the generated types does not, and the documents the usage
sends are the trusted documents.

Each run generates into a project of its own under pytest's tmp dir (the tsconfig extends the real
one; node_modules is linked), so parallel workers never share an output directory.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.tools import TYPESCRIPT_DIR, Finished, require_typescript_tools, run, trusted_documents

# Each line misuses a generated type in its own way; tsc must refuse every one of them.
BROKEN_USAGE = """\
import type { CatalogPageQuery, SignInMutationVariables } from "./generated/graphql.js";
import type * as Types from "./generated/schema.js";

export function misuse(page: CatalogPageQuery): void {
  const card = page.products.nodes[0]!;
  const colour: string = card.colour;
  const amount: number = card.price.amount;
  const variables: SignInMutationVariables = { input: { email: "ann@example.com" } };
  const status: Types.OrderStatus = "LOST";
  void [colour, amount, variables, status];
}
"""
BROKEN_LINES = {
    6: "TS2339",  # a field the operation does not select
    7: "TS2322",  # Decimal is a string, not a number
    8: "TS2741",  # a required input field left out
    9: "TS2322",  # not a value of the enum
}
HASHES_SCRIPT = """\
import { createHash } from "node:crypto";
import { DOCUMENTS, documentText } from "./out/usage.js";

const hashes = {};
for (const [name, document] of Object.entries(DOCUMENTS)) {
  hashes[name] = createHash("sha256").update(documentText(document), "utf8").digest("hex");
}
process.stdout.write(JSON.stringify(hashes));
"""


@dataclass(frozen=True)
class Project:
    root: Path
    codegen: Finished


def _tsc(project: Path, *arguments: str) -> Finished:
    return run([TYPESCRIPT_DIR / "node_modules" / ".bin" / "tsc", "-p", project, *arguments], cwd=project)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """clients/typescript with its usage, and codegen's output for it, in a directory of this session's."""
    modules = require_typescript_tools()
    root = tmp_path_factory.mktemp("typescript")
    (root / "node_modules").symlink_to(modules, target_is_directory=True)
    shutil.copy(TYPESCRIPT_DIR / "package.json", root / "package.json")  # "type": "module", as the real one
    (root / "tsconfig.json").write_text(
        json.dumps({"extends": str(TYPESCRIPT_DIR / "tsconfig.json"), "include": ["src"]}), encoding="utf-8"
    )
    (root / "src").mkdir()
    shutil.copy(TYPESCRIPT_DIR / "src" / "usage.ts", root / "src" / "usage.ts")
    codegen = run(
        [modules / ".bin" / "graphql-codegen", "--config", "codegen.ts"],
        cwd=TYPESCRIPT_DIR,
        env={"CODEGEN_OUTPUT_DIR": str(root / "src" / "generated")},
    )
    return Project(root, codegen)


@pytest.fixture(scope="session")
def compiled(generated: Project) -> Finished:
    """tsc over the generated code and the usage, under the real tsconfig (strict), emitting to out/."""
    assert generated.codegen.returncode == 0, generated.codegen.output
    return _tsc(generated.root, "--noEmit", "false", "--outDir", str(generated.root / "out"))


@pytest.fixture
def project(generated: Project, tmp_path: Path) -> Path:
    """A copy of the generated project for one test to change."""
    assert generated.codegen.returncode == 0, generated.codegen.output
    copy = tmp_path / "project"
    shutil.copytree(generated.root, copy, symlinks=True, ignore=shutil.ignore_patterns("out"))
    return copy


def test_typescript_codegen_writes_schema_types_and_typed_documents(generated: Project) -> None:
    # then
    assert generated.codegen.returncode == 0, generated.codegen.output
    output = (generated.root / "src" / "generated" / "graphql.ts").read_text(encoding="utf-8")
    assert "export const CatalogPageDocument" in output
    assert "DocumentNode<CatalogPageQuery, CatalogPageQueryVariables>" in output
    assert "export type OrderStatus =" in (generated.root / "src" / "generated" / "schema.ts").read_text("utf-8")


def test_typescript_usage_of_the_generated_code_type_checks_under_strict(compiled: Finished) -> None:
    # then
    assert compiled.returncode == 0, compiled.output


def test_typescript_misuse_of_the_generated_types_fails_the_type_check(project: Path) -> None:
    # given
    (project / "src" / "misuse.ts").write_text(BROKEN_USAGE, encoding="utf-8")

    # when
    checked = _tsc(project, "--noEmit", "--pretty", "false")

    # then
    assert checked.returncode != 0
    errors = {
        (int(line.split("(", 1)[1].split(",", 1)[0]), line.split("error ", 1)[1].split(":", 1)[0])
        for line in checked.stdout.splitlines()
        if line.startswith("src/misuse.ts(")
    }
    assert errors == set(BROKEN_LINES.items()), checked.output
    assert "src/usage.ts" not in checked.output


def test_typescript_usage_sends_exactly_the_trusted_documents(generated: Project, compiled: Finished) -> None:
    # given
    assert compiled.returncode == 0, compiled.output
    (generated.root / "hashes.mjs").write_text(HASHES_SCRIPT, encoding="utf-8")
    node = shutil.which("node")
    assert node, "Node.js is missing: the TypeScript client runs on it"

    # when
    printed = run([node, generated.root / "hashes.mjs"], cwd=generated.root)

    # then
    assert printed.returncode == 0, printed.output
    hashes: dict[str, str] = json.loads(printed.stdout)
    assert sorted(hashes.values()) == sorted(trusted_documents())
