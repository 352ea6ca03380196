"""Structured answers: ask for one JSON object, parse it leniently, validate, repair once.

Background calls (classification, state updates, summaries) must never crash a turn, so every
failure ends in the caller's ``default`` plus a warning. Schemas should tolerate extra keys
(pydantic's default ``extra="ignore"``): models love adding fields nobody asked for.
Cancellation and programming errors (e.g. ``MockLLMExhausted``) still propagate.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.llm.base import LLMClient, Message, Priority, Purpose
from bot.llm.errors import LLMError
from bot.validation import all_problems

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
_decoder = json.JSONDecoder()
_SURROGATE = re.compile("[\ud800-\udfff]")
_ECHO_CHARS = 2000
_ERROR_CHARS = 800


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``: bare, in a ```json fence, or wrapped in prose."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _decoder.raw_decode(text, start)
        except ValueError:
            pass
        else:
            if isinstance(value, dict):
                return value
        start = text.find("{", start + 1)
    return None


def mended_text(text: str) -> str:
    """``text`` with every lone UTF-16 surrogate (JSON may escape one: ``"\\ud800"``) made
    U+FFFD and split pairs joined: such text cannot be stored, and the events holding it
    (a reply, a beat's state update) would be refused whole."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _mended(value: Any) -> Any:
    if isinstance(value, str):
        return mended_text(value)
    if isinstance(value, list):
        return [_mended(item) for item in value]
    if isinstance(value, dict):
        return {_mended(key): _mended(item) for key, item in value.items()}
    return value


def _parse(text: str, schema: type[T]) -> tuple[T | None, str]:
    """(model, "") on success, else (None, a description of what is wrong for the LLM)."""
    obj = extract_json_object(text)
    if obj is None:
        return None, "the answer contained no JSON object"
    if "\\u" in text or _SURROGATE.search(text) is not None:
        obj = _mended(obj)  # a lone surrogate is written as one, or escaped: else none is in it
    try:
        return schema.model_validate(obj), ""
    except ValidationError as exc:
        return None, f"the JSON object does not match the expected fields: {all_problems(exc)}"


async def complete_json(
    client: LLMClient,
    messages: Sequence[Message],
    schema: type[T],
    *,
    model: str,
    default: T,
    use_response_format: bool = True,
    priority: Priority = Priority.BACKGROUND,
    purpose: Purpose | None = None,
    **params: Any,
) -> T:
    """Ask for a ``schema`` object; one repair round on a bad answer, else ``default``.

    ``use_response_format`` adds ``response_format={"type": "json_object"}``; turn it off for
    servers that reject it. The repair round shows the model its answer and what was wrong.
    """
    if use_response_format:
        params = {"response_format": {"type": "json_object"}, **params}
    convo = list(messages)
    problem = ""
    for attempt in range(2):
        try:
            answer = await client.complete(
                convo, model=model, priority=priority, purpose=purpose, **params
            )
        except LLMError as exc:
            log.warning(
                "structured LLM call for %s failed (%s); using the default", schema.__name__, exc
            )
            return default
        result, problem = _parse(answer, schema)
        if result is not None:
            return result
        if attempt == 0:
            convo += [
                Message(role="assistant", content=answer[:_ECHO_CHARS]),
                Message(
                    role="user",
                    content=(
                        f"That answer could not be used: {problem[:_ERROR_CHARS]}. "
                        "Reply again with only one JSON object with the requested fields, "
                        "no prose and no code fence."
                    ),
                ),
            ]
    log.warning(
        "structured LLM answer for %s still unusable after a repair round (%s); using the default",
        schema.__name__,
        problem,
    )
    return default
