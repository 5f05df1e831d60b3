from pathlib import Path

from domains.common.exceptions import ErrorCode

TESTS = Path(__file__).resolve().parent


def test_every_user_error_code_is_asserted_by_some_mutation_test() -> None:
    # given: every test module but this one
    sources = "\n".join(path.read_text() for path in TESTS.rglob("test_*.py") if path != Path(__file__).resolve())

    # when: looking for each code as a string literal a test compares against
    missing = [code.value for code in ErrorCode if f'"{code.value}"' not in sources]

    # then
    assert missing == []
