"""Pydantic validation errors in one line of words: where (``a.b.0``) and what is wrong.

Every layer that validates input (the event log, the LLM's JSON, the engine's fields, config)
says it the same way, so a message reads alike wherever it comes from.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def field_path(error: ErrorDetails, root: str = "") -> str:
    """The failing field as a dotted path; ``root`` when the whole value failed."""
    return ".".join(str(part) for part in error["loc"]) or root


def problem(error: ErrorDetails, root: str = "(root)") -> str:
    return f"{field_path(error, root)}: {error['msg']}"


def first_problem(exc: ValidationError, root: str = "(root)") -> str:
    """The first thing wrong: enough for a person to fix, one thing at a time."""
    return problem(exc.errors(include_url=False)[0], root)


def all_problems(exc: ValidationError, root: str = "(root)") -> str:
    """Everything wrong, ``; ``-separated: for logs and the LLM's retry."""
    return "; ".join(problem(error, root) for error in exc.errors(include_url=False))
