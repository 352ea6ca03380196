"""``check-config --probe``: ask the LLM server what works before the first turn needs it.

A wrong key, URL or model name otherwise shows up as a failed reply in the middle of a story.
The probe lists the server's models (if it can), sends a one-token completion to each
configured model, tries JSON mode and streaming, and says in plain words what it found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.llm.base import Message, Priority
from bot.llm.client import OpenAICompatibleClient
from bot.llm.errors import LLMConnectionError, LLMError, LLMHTTPError

Verdict = Literal["ok", "warning", "failed"]
_SAY_OK = [Message(role="user", content="Say OK.")]
_SAY_JSON = [
    Message(role="system", content='Answer with the JSON object {"ok": true} and nothing else.'),
    Message(role="user", content="Are you there?"),
]


@dataclass(frozen=True, slots=True)
class Finding:
    verdict: Verdict
    text: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.text}"


async def probe(
    client: OpenAICompatibleClient,
    *,
    narrative_model: str,
    classifier_model: str,
    use_response_format: bool = True,
) -> list[Finding]:
    """Every finding, in the order a person would check them; the client is not closed."""
    listed: list[str] | LLMError
    try:
        listed = await client.models()
    except LLMConnectionError as exc:  # nothing else can work: one line says it
        return [Finding("failed", f"{exc}: check [llm] base_url and that the server runs")]
    except LLMError as exc:
        listed = exc
    findings = [_listing(client.base_url, listed, (narrative_model, classifier_model))]
    for model in dict.fromkeys((narrative_model, classifier_model)):
        findings.append(await _one_token(client, model))
    if use_response_format:
        findings.append(await _json_mode(client, classifier_model))
    findings.append(await _streaming(client, narrative_model))
    return findings


def _listing(base_url: str, listed: list[str] | LLMError, wanted: Sequence[str]) -> Finding:
    if isinstance(listed, LLMHTTPError) and listed.status in (404, 405, 501):
        return Finding("ok", f"{base_url} does not list its models (many do not)")
    if isinstance(listed, LLMError):
        return Finding("failed", f"listing the models failed: {listed}")
    missing = [m for m in dict.fromkeys(wanted) if m not in listed]
    if missing:
        return Finding(
            "warning",
            f"{base_url} lists {len(listed)} models, but not {', '.join(missing)}: "
            "check the spelling of [llm] narrative_model / classifier_model",
        )
    return Finding("ok", f"{base_url} lists {len(listed)} models, the configured among them")


async def _one_token(client: OpenAICompatibleClient, model: str) -> Finding:
    try:
        await client.complete(_SAY_OK, model=model, priority=Priority.NARRATIVE, max_tokens=1)
    except LLMError as exc:
        return Finding("failed", f"model {model} does not answer: {exc}")
    return Finding("ok", f"model {model} answers")


async def _json_mode(client: OpenAICompatibleClient, model: str) -> Finding:
    params: dict[str, Any] = {"response_format": {"type": "json_object"}, "max_tokens": 20}
    try:
        await client.complete(_SAY_JSON, model=model, **params)
    except LLMError as exc:
        return Finding("failed", f"asking {model} for JSON failed: {exc}")
    if not client.json_mode:
        return Finding(
            "warning",
            "the server does not take JSON mode (response_format): storybot asks for JSON in "
            "the prompt instead; set [llm] use_response_format = false to skip the first try",
        )
    return Finding("ok", f"JSON mode (response_format) works with {model}")


async def _streaming(client: OpenAICompatibleClient, model: str) -> Finding:
    try:
        async for _ in client.stream(_SAY_OK, model=model, max_tokens=1):
            pass
    except LLMError as exc:
        return Finding("failed", f"streaming from {model} failed: {exc}")
    return Finding("ok", f"streaming from {model} works")
