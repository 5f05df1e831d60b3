"""Error shaping: every GraphQL error gets `extensions.code` and `requestId`; internals are masked."""

import re
from collections.abc import Iterable
from typing import Any, cast

import structlog
from graphql import GraphQLError
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext, ExecutionResult

from domains.common.exceptions import ClientError
from schema.context import Context
from schema.extensions.complexity import validation_work_limit

INTERNAL_ERROR_MESSAGE = "Internal server error"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# graphql-core's parser stops at its token and comment limits with a syntax error of this shape.
INTROSPECTION_TOO_DEEP = "Maximum introspection depth exceeded"  # graphql-core's MaxIntrospectionDepthRule
VALIDATION_ABORTED = "Validation aborted."  # graphql-core, past its validation work budget
NESTED_TOO_DEEPLY = "Document is nested too deeply. Parsing aborted."  # graphql-core's parser, past 200 levels
COMPLEXITY_REFUSALS = (INTROSPECTION_TOO_DEEP, VALIDATION_ABORTED, NESTED_TOO_DEEPLY)
_PARSER_LIMIT = re.compile(r"Document contains more than (\d+) (tokens|comments)\. Parsing aborted\.")
# graphql-core ends a message with its guess: "Cannot query field 'prise' on type 'Product'. Did you
# mean 'price'?". Guesses spell out the schema piece by piece, even with introspection off.
_SUGGESTION = re.compile(r" Did you mean .+\?$")

logger = structlog.get_logger("schema.extensions.errors")


def error_code(error: GraphQLError) -> str:
    """Classify an error: a client error's own code, bad variables, an invalid document, or internal."""
    original = error.original_error
    if isinstance(original, ClientError):
        return original.code
    if error.path is None:
        if parser_limit(error) is not None or error.message.endswith(COMPLEXITY_REFUSALS):
            return QUERY_TOO_COMPLEX
        if error.message.startswith("Variable '$"):
            return BAD_USER_INPUT
        if original is None or isinstance(original, GraphQLError):
            return GRAPHQL_VALIDATION_FAILED
    return INTERNAL_SERVER_ERROR


def limit_extensions(error: GraphQLError) -> dict[str, Any]:
    """Name the limit a document passed, for the QUERY_TOO_COMPLEX refusals graphql-core itself makes."""
    if isinstance(error, ValidationAbortedError) or error.message == VALIDATION_ABORTED:
        budget = validation_work_limit()
        return {"measure": "validation work", "value": budget + 1, "limit": budget}
    if error.message == INTROSPECTION_TOO_DEEP:
        return {"measure": "introspection depth"}
    if error.message.endswith(NESTED_TOO_DEEPLY):
        return {"measure": "nesting", "value": MAX_NESTING_DEPTH + 1, "limit": MAX_NESTING_DEPTH}
    return parser_limit(error) or {}


def parser_limit(error: GraphQLError) -> dict[str, Any] | None:
    """Return the extensions of a document the parser refused at its token limit, else None."""
    match = _PARSER_LIMIT.search(error.message)
    if match is None:
        return None
    limit = int(match[1])
    # The parser stops at the first token over the limit, so that is the figure it saw.
    return {"measure": match[2], "value": limit + 1, "limit": limit}


def is_unexpected(error: GraphQLError) -> bool:
    """Tell whether an error must be masked (and logged with its traceback)."""
    return error_code(error) == INTERNAL_SERVER_ERROR


def request_id_of(execution_context: ExecutionContext | None) -> str | None:
    """Read the request id from a Strawberry execution context, when there is one."""
    context = getattr(execution_context, "context", None)
    return getattr(context, "request_id", None)


def without_suggestions(message: str) -> str:
    """Drop graphql-core's "Did you mean …?" sentence from an error message, as Apollo Server does."""
    return _SUGGESTION.sub("", message)


def _hides_suggestions(execution_context: ExecutionContext | None) -> bool:
    context = getattr(execution_context, "context", None)
    return isinstance(context, Context) and not context.settings.suggestions_enabled


def log_unexpected(errors: Iterable[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log every unexpected error once, with its traceback, under the request id."""
    for error in errors:
        if not is_unexpected(error):
            continue
        original = error.original_error or error
        logger.error(
            "graphql.unexpected_error",
            path=list(error.path) if error.path else None,
            operation_name=getattr(execution_context, "operation_name", None),
            exc_info=(type(original), original, original.__traceback__),
        )


class ErrorFormatter(MaskErrors):
    """MaskErrors that also stamps `code` and `requestId` on every error it lets through."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_ERROR_MESSAGE)

    def _process_result(self, result: object) -> None:
        # MaskErrors' own asks a runtime-checkable Protocol (`isinstance(result, _ResultWithErrors)`),
        # whose "no" walks the result's class with `inspect.getattr_static`: 10 µs of every operation.
        errors = getattr(result, "errors", None)
        if errors:
            cast(Any, result).errors = self._process_errors(errors)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        request_id = request_id_of(self.execution_context)
        hide_suggestions = _hides_suggestions(self.execution_context)
        shaped: list[GraphQLError] = []
        for error in errors:
            code = error_code(error)
            masked = code == INTERNAL_SERVER_ERROR
            kept = self.anonymise_error(error) if masked else error
            # A masked error keeps none of its extensions: they may carry internals too.
            extensions: dict[str, Any] = {} if masked else dict(error.extensions or {})
            if code == QUERY_TOO_COMPLEX and "measure" not in extensions:
                extensions |= limit_extensions(error)
            extensions |= {"code": code, "requestId": request_id}
            about_the_document = code in (GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT)
            message = without_suggestions(kept.message) if hide_suggestions and about_the_document else kept.message
            shaped.append(
                GraphQLError(
                    message,
                    nodes=kept.nodes,
                    source=kept.source,
                    positions=kept.positions,
                    path=kept.path,
                    original_error=kept.original_error,
                    extensions=extensions,
                )
            )
        return shaped


OPERATION_TIMEOUT = "OPERATION_TIMEOUT"


def timeout_result(seconds: float, context: object) -> ExecutionResult:
    """Answer an operation cancelled at the wall-clock ceiling: no data, one coded error; log it once."""
    request_id = getattr(context, "request_id", None)
    logger.warning("graphql.operation_timeout", timeout_seconds=seconds)
    message = f"The operation ran longer than {seconds:g} s and was cancelled; ask for less, or page through it."
    error = GraphQLError(message, extensions={"code": OPERATION_TIMEOUT, "requestId": request_id})
    return ExecutionResult(data=None, errors=[error])
