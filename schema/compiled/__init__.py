"""Compiled execution of queries: a plan per (document, operation name), run level by level (issue #14).

`CompiledExecution` (schema/compiled/extension.py), the schema's last extension, answers a query
from its plan after the same parse, validation, limits, cost charge and credential checks as
always; whatever the plan cannot run, or any operation that does not simply succeed, runs through
graphql-core as before. The setting `graphql_compiled` (GRAPHQL_COMPILED) switches it off.
"""
