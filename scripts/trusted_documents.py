"""The trusted-documents manifest, examples/trusted-documents.json (`make codegen` writes it).

One entry per named operation of examples/operations/*.graphql, keyed by the lowercase hex SHA-256
of the document's UTF-8 text: {"<sha256>": "<document>"}. A document is the operation followed by
the fragments it uses (transitively), sorted by name, as graphql-core's `print_ast` prints them,
joined by a blank line: the text the example clients send (clients/python's generated client,
clients/typescript's `documentText`). The operations must be valid against the committed SDL
(schema/schema.graphql).

`python -m scripts.trusted_documents` writes the manifest; `--check` exits 1 when the committed one
is not what the operations give.
"""

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    build_schema,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import Visitor

from api.persisted import sha256_hex

ROOT = Path(__file__).resolve().parent.parent
SDL_PATH = ROOT / "schema" / "schema.graphql"
OPERATIONS_DIR = ROOT / "examples" / "operations"
MANIFEST_PATH = ROOT / "examples" / "trusted-documents.json"


class OperationsError(Exception):
    """The example operations cannot make a manifest: unnamed, duplicated or invalid."""


class _SpreadCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.add(node.name.value)


def spreads(node: Node) -> set[str]:
    """The names of the fragments a document (or one of its definitions) spreads."""
    collector = _SpreadCollector()
    visit(node, collector)
    return collector.names


def read_operations(directory: Path = OPERATIONS_DIR) -> DocumentNode:
    """Parse every .graphql file of `directory` into one document; refuse unnamed or repeated definitions."""
    definitions: list[OperationDefinitionNode | FragmentDefinitionNode] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.graphql")):
        for definition in parse(path.read_text(encoding="utf-8"), no_location=True).definitions:
            if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                raise OperationsError(f"{path.name}: only operations and fragments belong here")
            if definition.name is None:
                raise OperationsError(f"{path.name}: every operation needs a name (an anonymous one was found)")
            name = definition.name.value
            if name in seen:
                raise OperationsError(f"{path.name}: `{name}` is defined twice (also in {seen[name]})")
            seen[name] = path.name
            definitions.append(definition)
    return DocumentNode(definitions=tuple(definitions))


def check_valid(document: DocumentNode, schema: GraphQLSchema) -> None:
    """Raise OperationsError listing every validation error of `document` against `schema`."""
    errors = validate(schema, document)
    if errors:
        raise OperationsError("the operations are not valid against the SDL:\n" + "\n".join(map(str, errors)))


def documents(document: DocumentNode) -> dict[str, str]:
    """Return each operation's own document text (operation, then the fragments it uses by name), by name."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    texts = {}
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode) or operation.name is None:
            continue
        used: set[str] = set()
        pending = spreads(operation)
        while pending:
            name = pending.pop()
            if name not in used and name in fragments:
                used.add(name)
                pending |= spreads(fragments[name])
        own = DocumentNode(definitions=(operation, *(fragments[name] for name in sorted(used))))
        texts[operation.name.value] = print_ast(own)
    return texts


def manifest(texts: Iterable[str]) -> dict[str, str]:
    """Key each document text by the lowercase hex SHA-256 of its UTF-8 bytes."""
    return {sha256_hex(text): text for text in texts}


def render(entries: Mapping[str, str]) -> str:
    """The manifest file's exact text: sorted keys, 2-space indent, a trailing newline."""
    return json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(directory: Path = OPERATIONS_DIR, sdl_path: Path = SDL_PATH) -> str:
    """Return the manifest text the operations of `directory` give, after validating them against the SDL."""
    document = read_operations(directory)
    check_valid(document, build_schema(sdl_path.read_text(encoding="utf-8")))
    return render(manifest(documents(document).values()))


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check the trusted-documents manifest.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the manifest is not what the operations give")
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH, help="the manifest file (default: %(default)s)")
    args = parser.parse_args(argv)
    path: Path = args.manifest
    shown = _shown(path)
    try:
        text = build()
    except OperationsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    count = len(json.loads(text))
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{shown} is not what examples/operations/ give: run `make codegen` and commit it\n")
            return 1
        sys.stdout.write(f"{shown} is up to date ({count} documents)\n")
        return 0
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {shown} ({count} documents)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
