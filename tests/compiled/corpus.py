"""Every query the test suite sends, read from its sources, with variables filled from the compiled tests' catalog.

A document is a string constant of a module under tests/ that parses as GraphQL, holds an operation and is valid
against the schema. Fragments kept in constants of their own join the documents of their module that use them.
Documents built at run time (f-strings, joined constants) are not read. Each operation becomes a document of its
own, with the fragments it uses; mutations and subscriptions are left out, since the compiled path serves queries
only and the two runs of a mutation would not see the same rows.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    ValueNode,
    VariableNode,
    build_schema,
    get_named_type,
    is_input_type,
    parse,
    print_ast,
    validate,
)
from graphql.language import FieldNode, Visitor, visit
from graphql.utilities import separate_operations, type_from_ast

from schema.export import render_sdl
from scripts.trusted_documents import spreads

TESTS_DIR = Path(__file__).resolve().parents[1]
# The type of row an ID or slug variable asks for, by a word of its place: its name, its argument's, its field's,
# the type conditions under that field (`node(id: $id) { ... on Order { number } }`), first word first.
TYPE_HINTS = (
    ("apikey", "ApiKey"),
    ("orderitem", "OrderItem"),
    ("product", "Product"),
    ("categor", "Category"),
    ("review", "Review"),
    ("user", "User"),
    ("customer", "User"),
    ("author", "User"),
    ("order", "Order"),
)
CURSORS = ("after", "before")
_OMIT = object()


@dataclass(frozen=True)
class Suite:
    """Global ids and slugs of the rows the corpus's variables point at."""

    ids: dict[str, str]  # type name -> global id of a row that exists
    more_ids: list[str]  # several global ids of different types, some hidden or missing
    slugs: dict[str, str]  # type name -> slug of a row that exists


@dataclass(frozen=True)
class Document:
    source: str  # file:line of the constant it came from
    operation_name: str | None
    text: str


def _string_constants(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _graphql_constants(path: Path) -> tuple[list[tuple[int, DocumentNode]], list[FragmentDefinitionNode]]:
    """The module's constants that hold an operation, and the fragments kept in constants of their own."""
    documents: list[tuple[int, DocumentNode]] = []
    fragments: list[FragmentDefinitionNode] = []
    for line, text in _string_constants(path):
        try:
            document = parse(text)
        except GraphQLError:
            continue
        if any(isinstance(definition, OperationDefinitionNode) for definition in document.definitions):
            documents.append((line, document))
        else:
            fragments += [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    return documents, fragments


def _with_fragments(document: DocumentNode, fragments: list[FragmentDefinitionNode]) -> DocumentNode:
    """The document with the fragments it spreads but does not define (and those they spread), and no others."""
    definitions = list(document.definitions)
    while True:
        defined = {d.name.value for d in definitions if isinstance(d, FragmentDefinitionNode)}
        spread = spreads(DocumentNode(definitions=tuple(definitions)))
        missing = [f for f in fragments if f.name.value in spread - defined]
        if not missing:
            return DocumentNode(definitions=tuple(definitions))
        definitions += {f.name.value: f for f in missing}.values()


def _queries(schema: GraphQLSchema, document: DocumentNode) -> Iterator[tuple[str | None, str]]:
    if validate(schema, document):
        return
    for name, separated in separate_operations(document).items():
        operation = next(d for d in separated.definitions if isinstance(d, OperationDefinitionNode))
        if operation.operation == OperationType.QUERY:
            yield name or None, print_ast(separated)


def suite_documents(schema: GraphQLSchema) -> list[Document]:
    """Each query of the test suite's sources once (by printed text), first source first."""
    found: dict[str, Document] = {}
    for path in sorted(TESTS_DIR.rglob("*.py")):
        documents, fragments = _graphql_constants(path)
        for line, document in documents:
            for name, text in _queries(schema, _with_fragments(document, fragments)):
                source = f"{path.relative_to(TESTS_DIR.parent)}:{line}"
                found.setdefault(text, Document(source, name, text))
    return list(found.values())


def schema_from_sdl() -> GraphQLSchema:
    """The app's schema as graphql-core builds it from the committed SDL."""
    return build_schema(render_sdl())


class _Uses(Visitor):
    """Where each variable is used: the words (argument, field, type conditions, input fields) that name its place."""

    def __init__(self, document: DocumentNode) -> None:
        super().__init__()
        self.words: dict[str, list[str]] = {}
        self._fragments = {
            d.name.value: d.type_condition.name.value
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }

    def enter_field(self, node: FieldNode, *_: object) -> None:
        selections = node.selection_set.selections if node.selection_set else ()
        conditions = [condition for selection in selections if (condition := self._condition(selection))]
        for argument in node.arguments or ():
            self._value(argument.value, [argument.name.value, node.name.value, *conditions])

    def _condition(self, selection: SelectionNode) -> str | None:
        if isinstance(selection, InlineFragmentNode) and selection.type_condition:
            return selection.type_condition.name.value
        if isinstance(selection, FragmentSpreadNode):
            return self._fragments.get(selection.name.value)
        return None

    def _value(self, value: ValueNode, words: list[str]) -> None:
        if isinstance(value, VariableNode):
            self.words.setdefault(value.name.value, []).extend(words)
        elif isinstance(value, ListValueNode):
            for item in value.values:
                self._value(item, words)
        elif isinstance(value, ObjectValueNode):
            for object_field in value.fields:
                self._value(object_field.value, [object_field.name.value, *words])


def variables(schema: GraphQLSchema, document: Document, suite: Suite) -> dict[str, Any]:
    """Values for the operation's variables: optional ones with a default, cursors and input objects left out."""
    parsed = parse(document.text)
    uses = _Uses(parsed)
    visit(parsed, uses)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        if definition.default_value is not None or not is_input_type(type_):
            continue
        value = _value(type_, [name, *uses.words.get(name, [])], suite)
        if value is not _OMIT:
            values[name] = value
    return values


def _value(type_: GraphQLInputType, words: list[str], suite: Suite) -> Any:
    if not isinstance(type_, GraphQLNonNull):
        if isinstance(type_, GraphQLInputObjectType) or any(word in CURSORS for word in words[:1]):
            return _OMIT
        return _value(GraphQLNonNull(type_), words, suite)
    inner = type_.of_type
    if isinstance(inner, GraphQLList):
        if get_named_type(inner).name == "ID":
            return suite.more_ids
        return [_value(inner.of_type, words, suite)]
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        built = {
            name: _value(field.type, [name, *words], suite)
            for name, field in inner.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is None
        }
        return {name: value for name, value in built.items() if value is not _OMIT}
    assert isinstance(inner, GraphQLScalarType)
    return _scalar(inner.name, words, suite)


def _scalar(name: str, words: list[str], suite: Suite) -> Any:
    if name == "ID":
        return suite.ids[_hinted_type(words)]
    if name == "Int":
        return 2
    if name == "Boolean":
        return True
    if name == "Float":
        return 2.0
    if name == "Decimal":
        return "1.50"
    if name == "DateTime":
        return "2026-01-01T00:00:00Z"
    if any("slug" in word.lower() for word in words):
        return suite.slugs.get(_hinted_type(words), suite.slugs["Product"])
    return "a"


def _hinted_type(words: list[str]) -> str:
    lowered = [word.lower() for word in words]
    return next((type_name for word in lowered for hint, type_name in TYPE_HINTS if hint in word), "Product")
