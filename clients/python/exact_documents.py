"""An ariadne-codegen plugin: the generated client sends each document exactly as the manifest holds it.

ariadne-codegen prints each operation (with its fragments, sorted by name) with graphql-core's
`print_ast`, the same text examples/trusted-documents.json keys by its SHA-256, but then lays it out
in the client's source as an indented triple-quoted string, so the text sent would carry a leading
newline and the method's indentation. This plugin makes the client's `gql()` undo that layout, so
the bytes sent are the manifest's document and a server that runs trusted documents only accepts
them. It runs in clients/python/.venv (ariadne-codegen's environment), not the server's.
"""

import ast

from ariadne_codegen.plugins.base import Plugin

_GQL_SOURCE = '''
def gql(q: str) -> str:
    """The document as printed by graphql-core: the source's indentation and framing newlines removed."""
    return textwrap.dedent(q).strip()
'''


class ExactDocumentsPlugin(Plugin):
    def generate_gql_function(self, function_def: ast.FunctionDef) -> ast.FunctionDef:
        replacement = ast.parse(_GQL_SOURCE).body[0]
        if not isinstance(replacement, ast.FunctionDef):
            raise TypeError("_GQL_SOURCE must hold one function")
        replacement.lineno = function_def.lineno
        return replacement

    def generate_client_module(self, module: ast.Module) -> ast.Module:
        module.body.insert(0, ast.Import(names=[ast.alias(name="textwrap")], lineno=0))
        return module
