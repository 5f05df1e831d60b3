"""Every `UserErrorCode` is asserted by some test: compared in an `assert`, not merely mentioned.

A code counts when its string literal sits inside an `assert` statement, or inside a plain literal
assigned to a name that an `assert` of the same module reads (`EXPECTED = [{"code": "X"}]` ...
`assert errors == EXPECTED`). A code that appears only in a docstring, a comment, an input or a
helper call that nothing asserts does not count.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

from domains.common.exceptions import ErrorCode

TESTS = Path(__file__).resolve().parent
CODES = frozenset(code.value for code in ErrorCode)


def _literals(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def _expected_value(node: ast.AST) -> bool:
    # A plain literal (`[{"code": "X"}]`), not a computation whose arguments merely mention a code.
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def asserted_codes(source: str) -> set[str]:
    """The error codes a test module's `assert` statements compare, directly or through a literal's name."""
    tree = ast.parse(source)
    asserts = [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    found = {literal for node in asserts for literal in _literals(node)}
    read = {sub.id for node in asserts for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in read for t in node.targets):
            value: ast.expr | None = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in read:
            value = node.value
        else:
            continue
        if value is not None and _expected_value(value):
            found.update(_literals(value))
    return found & CODES


def test_every_user_error_code_is_asserted_by_some_test() -> None:
    # given: every test module but this one
    modules = [path for path in TESTS.rglob("test_*.py") if path != Path(__file__).resolve()]

    # when
    asserted = set().union(*(asserted_codes(path.read_text()) for path in modules))

    # then
    assert sorted(CODES - asserted) == []


def test_a_code_that_is_only_mentioned_does_not_count() -> None:
    # given: one code asserted directly, one through an expected value, the rest only mentioned
    source = '''
"""Answers NOT_FOUND."""
EXPECTED = [{"field": ["input"], "code": "TOO_LONG"}]
UNUSED = [{"code": "DUPLICATE"}]

async def test_it(client):
    payload = await send(client, {"code": "REFERENCED"})  # OUT_OF_STOCK in a comment
    assert payload["userErrors"][0]["code"] == "INVALID"
    assert payload["userErrors"] == EXPECTED
'''

    # when
    found = asserted_codes(source)

    # then
    assert found == {"INVALID", "TOO_LONG"}
