"""Strawberry's extension runner, with each extension class's hooks wrapped once instead of per request.

For every operation and every stage (the operation, parsing, validation, execution) Strawberry's
context managers ask each extension whether it implements the stage's hook (`inspect`'s
`isgeneratorfunction`, `isasyncgenfunction`) and wrap the hook into a new context-manager function
(`contextlib.contextmanager`, which copies the hook's metadata with `functools.wraps`): 48 lookups
and a dozen wrappings per request for the schema's twelve extensions. Here both happen once per
extension class and stage; per request a hook is only bound to its extension. Entering and leaving
the hooks is Strawberry's own (its exit stacks): the order, and what an exception does, are unchanged.
"""

import contextlib
import functools
import inspect
from asyncio import iscoroutinefunction
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# A hook as a context-manager factory taking the extension, and whether it is entered with `async with`.
Factory = tuple[Callable[[SchemaExtension], Any], bool]
_FACTORIES: dict[tuple[type[SchemaExtension], str], Factory | None] = {}


def hook_factory(extension_class: type[SchemaExtension], hook_name: str) -> Factory | None:
    """The class's hook for a stage as Strawberry would wrap it (`get_hook`); None when it has none."""
    key = (extension_class, hook_name)
    if key in _FACTORIES:
        return _FACTORIES[key]
    hook: Any = getattr(extension_class, hook_name)
    factory: Factory | None
    if hook is getattr(SchemaExtension, hook_name):
        factory = None
    elif inspect.isgeneratorfunction(hook):
        factory = contextlib.contextmanager(hook), False
    elif inspect.isasyncgenfunction(hook):
        factory = contextlib.asynccontextmanager(hook), True
    elif iscoroutinefunction(hook):
        factory = contextlib.asynccontextmanager(_after_coroutine(hook)), True
    elif callable(hook):
        factory = contextlib.contextmanager(_after_call(hook)), False
    else:
        msg = f"Hook {hook_name} on {extension_class.__name__} must be callable, received {hook!r}"
        raise ValueError(msg)
    _FACTORIES[key] = factory
    return factory


def _after_coroutine(hook: Callable[[SchemaExtension], Any]) -> Callable[[SchemaExtension], AsyncIterator[None]]:
    async def run(extension: SchemaExtension) -> AsyncIterator[None]:
        await hook(extension)
        yield

    return run


def _after_call(hook: Callable[[SchemaExtension], Any]) -> Callable[[SchemaExtension], Iterator[None]]:
    def run(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return run


class _WrappedOnce(ExtensionContextManagerBase):
    __slots__ = ()

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        found = hook_factory(type(extension), self.HOOK_NAME)
        if found is None:
            return None
        factory, is_async = found
        return WrappedHook(extension=extension, hook=functools.partial(factory, extension), is_async=is_async)


class _Operation(_WrappedOnce, OperationContextManager):
    __slots__ = ()


class _Validation(_WrappedOnce, ValidationContextManager):
    __slots__ = ()


class _Parsing(_WrappedOnce, ParsingContextManager):
    __slots__ = ()


class _Executing(_WrappedOnce, ExecutingContextManager):
    __slots__ = ()


class ExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner, with the stage context managers above."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
