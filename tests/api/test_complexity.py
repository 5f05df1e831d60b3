"""The static analysis of operations: hand-computed costs, and each structural limit at its boundary."""

from typing import Any

import pytest
from graphql import get_introspection_query, parse
from graphql.execution.values import get_variable_values

from domains.common.exceptions import BadUserInputError
from schema import build_schema
from schema.extensions.complexity import (
    Limits,
    PageSizeError,
    QueryTooComplexError,
    check_storable_strings,
    cost_variables,
    find_operation,
    measure_cost,
    measure_structure,
)

SCHEMA = build_schema()

LIMITS = Limits()


def _cost(document: str, variables: dict[str, Any] | None = None, limits: Limits = LIMITS) -> int:
    parsed = parse(document)
    operation = find_operation(parsed, None)
    assert operation is not None
    coerced = get_variable_values(SCHEMA._schema, operation.variable_definitions or (), variables or {})
    assert not isinstance(coerced, list), coerced
    return measure_cost(SCHEMA._schema, parsed, operation, coerced, limits)


def _structure(document: str, limits: Limits = LIMITS) -> tuple[int, int]:
    tally = measure_structure(parse(document), None, limits)
    return tally.depth, tally.aliases


@pytest.mark.parametrize(
    ("document", "variables", "expected"),
    [
        # an object costs 1, a scalar 0
        ('{ product(slug: "a") { name category { name } } }', None, 2),
        # a connection: 1, plus per item (node) 1 plus its selection
        ("{ products(first: 10) { nodes { name } } }", None, 1 + 10 * 1),
        # edges are envelopes, pageInfo is free, totalCount runs a COUNT
        ("{ products(first: 10) { edges { cursor node { name } } pageInfo { hasNextPage } totalCount } }", None, 12),
        # no first/last: the default page of 20
        ("{ products { nodes { name } } }", None, 1 + 20 * 1),
        # nested connections multiply, and a page size passed as a variable counts
        (
            "query ($n: Int) { products(first: $n) { nodes { reviews(first: $n) { nodes { author { name } } } } } }",
            {"n": 100},
            1 + 100 * (1 + 1 + 100 * (1 + 1)),
        ),
        ("query ($n: Int = 7) { products(last: $n) { nodes { id } } }", None, 1 + 7),
        # a root mutation field weighs 10, plus its payload's objects
        ('mutation { tokenRevoke(input: {refreshToken: "x"}) { revoked userErrors { code } } }', None, 10 + 1),
        # nodes(ids:) costs per id; sibling type conditions add up (an upper bound)
        (
            "query ($ids: [ID!]!) { nodes(ids: $ids) { id "
            "... on Product { category { name } } ... on User { name } } }",
            {"ids": ["a", "b", "c"]},
            3 * (1 + 1),
        ),
        # what @skip leaves out costs nothing
        (
            "query ($s: Boolean!) { products(first: 10) { nodes { category @skip(if: $s) { name } } } }",
            {"s": True},
            1 + 10,
        ),
        # a fragment spread twice counts twice
        ("fragment P on Query { products(first: 5) { nodes { id } } } { ...P ... on Query { ...P } }", None, 2 * 6),
    ],
)
def test_costs_equal_hand_computed_values(document: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert _cost(document, variables) == expected


def test_a_weight_table_entry_changes_one_field() -> None:
    # given
    limits = Limits(weights={**LIMITS.weights, "Product.category": 5})

    # when / then
    assert _cost("{ products(first: 2) { nodes { category { name } } } }", limits=limits) == 1 + 2 * (1 + 5)


def test_the_introspection_query_of_graphiql_passes_the_structural_limits_and_is_cheap() -> None:
    document = get_introspection_query(descriptions=True, input_value_deprecation=True)
    depth, _aliases = _structure(document)
    assert depth == 1
    assert _cost(document) < 100


def _nested_categories(parents: int) -> str:
    return "{ products { nodes { category { " + "parent { " * parents + "name" + " }" * parents + " } } } }"


def test_depth_at_the_limit_passes_and_one_over_is_refused() -> None:
    # products(1) nodes(2) category(3) parent x 6 (4..9) name(10)
    assert _structure(_nested_categories(6))[0] == 10
    with pytest.raises(QueryTooComplexError) as refused:
        _structure(_nested_categories(7))
    assert refused.value.extensions == {"measure": "depth", "value": 11, "limit": 10}


def test_aliases_at_the_limit_pass_and_one_over_is_refused() -> None:
    def aliases(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    assert _structure(aliases(30))[1] == 30
    with pytest.raises(QueryTooComplexError) as refused:
        _structure(aliases(31))
    assert refused.value.extensions == {"measure": "aliases", "value": 31, "limit": 30}


def test_aliases_inside_a_fragment_count_at_every_spread() -> None:
    document = "fragment A on Query { a: __typename b: __typename } { ...A ... on Query { ...A } x: __typename }"
    assert _structure(document) == (1, 5)


def test_one_field_repeated_in_a_set_is_counted_across_fragments() -> None:
    fragments = " ".join(f"fragment F{i} on Product {{ id }}" for i in range(26))
    spreads = " ".join(f"...F{i}" for i in range(26))
    with pytest.raises(QueryTooComplexError) as refused:
        _structure(fragments + " { products { nodes { " + spreads + " } } }")
    assert refused.value.extensions == {"measure": "repeats", "value": 26, "limit": 25}
    # spreading one fragment many times merges once, as graphql-core does
    assert _structure("fragment F on Query { __typename } { " + "...F " * 100 + "}") == (1, 0)


def test_a_fragment_spread_ten_thousand_times_is_measured_once_per_fragment() -> None:
    # given: far past the token limit, so measured here directly
    document = "fragment F on Query { products(first: 100) { nodes { id } } } { " + "...F " * 10_000 + "}"

    # then: the cost counts every spread, and computing it stays cheap (memoised per fragment)
    assert _cost(document) == 10_000 * 101


def test_a_fragment_cycle_does_not_loop() -> None:
    document = "fragment A on Query { ...B } fragment B on Query { ...A __typename } { ...A }"
    assert _structure(document) == (1, 0)


@pytest.mark.parametrize("arguments", ["first: 101", "last: -1", "first: 1, last: 1"])
def test_page_sizes_are_refused_before_execution(arguments: str) -> None:
    with pytest.raises(PageSizeError) as refused:
        _cost(f"{{ products({arguments}) {{ nodes {{ id }} }} }}")
    assert refused.value.code == "BAD_USER_INPUT"
    assert "`products`" in refused.value.message


def test_the_largest_page_passes() -> None:
    assert _cost("{ products(first: 100) { nodes { id } } }") == 101


@pytest.mark.parametrize(
    ("document", "variables", "named"),
    [
        (
            'mutation { accountRegister(input: {email: "a@b.c", password: "x", name: "a\\u0000b"}) { user { id } } }',
            None,
            "accountRegister(input).name",
        ),
        (
            "mutation ($i: AccountRegisterInput!) { accountRegister(input: $i) { user { id } } }",
            {"i": {"email": "a@b.c", "password": "x", "name": "bad\x00"}},
            "$i.name",
        ),
        ('query ($s: String = "\\u0000") { product(slug: $s) { id } }', None, "$s"),
        ("query ($s: [String!]) { __typename }", {"s": ["ok", "\ud800"]}, "$s[1]"),
    ],
)
def test_strings_no_database_stores_are_refused_naming_the_argument(
    document: str, variables: dict[str, Any] | None, named: str
) -> None:
    with pytest.raises(BadUserInputError) as refused:
        check_storable_strings(parse(document), variables)
    assert f"`{named}`" in refused.value.message


def test_ordinary_strings_pass_the_storable_check() -> None:
    check_storable_strings(parse('{ product(slug: "ü-ß-😀") { id } }'), {"x": ["é", {"k": "日本"}]})


def test_one_password_check_per_operation() -> None:
    sign_in = 'tokenCreate(input: {email: "a@b.co", password: "x"}) { accessToken }'
    assert _structure(f"mutation {{ {sign_in} }}") == (2, 0)
    with pytest.raises(QueryTooComplexError) as refused:
        _structure(f"mutation {{ a: {sign_in} b: {sign_in} }}")
    assert refused.value.extensions == {"measure": "password checks", "value": 2, "limit": 1}
    with pytest.raises(QueryTooComplexError):
        _structure(f"fragment S on Mutation {{ x: {sign_in} }} mutation {{ ...S y: {sign_in} }}")


def test_cost_variables_are_the_page_sizes_list_sizes_and_conditions_and_no_other() -> None:
    # given
    document = parse(
        "query ($a: Int, $b: Int, $ids: [ID!]!, $skip: Boolean!, $inc: Boolean!, $slug: String!, $id: ID!) {"
        " products(first: $a, filter: {search: $slug}) { nodes { reviews(last: $b) { nodes { id } } } }"
        " nodes(ids: $ids) { id } ... @skip(if: $skip) { node(id: $id) { id } } ...F }"
        " fragment F on Query { product(slug: $slug) @include(if: $inc) { id } }"
    )

    # when
    names = cost_variables(document)

    # then
    assert sorted(names) == ["a", "b", "ids", "inc", "skip"]
