"""Structured outputs: lenient parsing, one repair round, a default that never crashes a turn."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import BaseModel

from bot.llm import (
    LLMHTTPError,
    Message,
    MockLLMClient,
    MockLLMExhausted,
    OpenAICompatibleClient,
    complete_json,
    extract_json_object,
)
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply


class Mood(BaseModel):
    mood: str
    intensity: int


DEFAULT = Mood(mood="neutral", intensity=0)
MSGS = [Message(role="user", content="How does Mira feel?")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": {"b": [1, 2]}}\n```', {"a": {"b": [1, 2]}}),
        ('Sure! Here it is: {"a": "}{ tricky \\" }"} Hope that helps.', {"a": '}{ tricky " }'}),
        ('{not json} then {"a": 2}', {"a": 2}),
        ("[1, 2, 3]", None),
        ("no object at all", None),
        ('{"a": 1', None),
    ],
)
def test_extract_json_object(text: str, expected: dict[str, object] | None) -> None:
    assert extract_json_object(text) == expected


async def test_fenced_and_prose_answers_parse_first_time() -> None:
    mock = MockLLMClient(
        canned=[
            '```json\n{"mood": "glad", "intensity": 3, "extra": "ignored"}\n```',
            'Mira feels: {"mood": "wary", "intensity": 2}. Anything else?',
        ]
    )
    assert await complete_json(mock, MSGS, Mood, model="c", default=DEFAULT) == Mood(
        mood="glad", intensity=3
    )
    assert await complete_json(mock, MSGS, Mood, model="c", default=DEFAULT) == Mood(
        mood="wary", intensity=2
    )
    assert len(mock.calls) == 2
    assert mock.calls[0].params["response_format"] == {"type": "json_object"}


async def test_repair_round_shows_the_error() -> None:
    mock = MockLLMClient(canned=['{"mood": "sad"}', '{"mood": "sad", "intensity": 4}'])
    result = await complete_json(mock, MSGS, Mood, model="c", default=DEFAULT, max_tokens=20)
    assert result == Mood(mood="sad", intensity=4)
    assert len(mock.calls) == 2
    second = mock.calls[1]
    assert second.params == {"response_format": {"type": "json_object"}, "max_tokens": 20}
    assert second.messages[:-2] == MSGS
    assert second.messages[-2] == Message(role="assistant", content='{"mood": "sad"}')
    assert second.messages[-1].role == "user"
    assert "intensity: Field required" in second.messages[-1].content


async def test_two_bad_answers_give_the_default_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock = MockLLMClient(canned=["I'd rather not.", '{"mood": 5}'])
    with caplog.at_level(logging.WARNING, logger="bot.llm.structured"):
        assert await complete_json(mock, MSGS, Mood, model="c", default=DEFAULT) is DEFAULT
    assert len(mock.calls) == 2
    assert "no JSON object" in mock.calls[1].messages[-1].content
    assert "Mood still unusable after a repair round" in caplog.text


async def test_llm_error_gives_the_default(caplog: pytest.LogCaptureFixture) -> None:
    mock = MockLLMClient(canned=[LLMHTTPError(503)])
    with caplog.at_level(logging.WARNING):
        assert await complete_json(mock, MSGS, Mood, model="c", default=DEFAULT) is DEFAULT
    assert "HTTP 503" in caplog.text
    assert len(mock.calls) == 1


async def test_cancellation_and_test_mistakes_propagate() -> None:
    with pytest.raises(asyncio.CancelledError):
        await complete_json(
            MockLLMClient(canned=[asyncio.CancelledError()]), MSGS, Mood, model="c", default=DEFAULT
        )
    with pytest.raises(MockLLMExhausted):
        await complete_json(MockLLMClient(), MSGS, Mood, model="c", default=DEFAULT)


@pytest.mark.parametrize("use_response_format", [True, False])
async def test_response_format_on_the_wire(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient, use_response_format: bool
) -> None:
    llm_server.script(Reply.text('{"mood": "calm", "intensity": 1}'))
    result = await complete_json(
        llm_client,
        MSGS,
        Mood,
        model="classifier",
        default=DEFAULT,
        use_response_format=use_response_format,
        temperature=0.2,
    )
    assert result == Mood(mood="calm", intensity=1)
    body = llm_server.requests[0].json
    assert body["stream"] is False and body["temperature"] == 0.2
    if use_response_format:
        assert body["response_format"] == {"type": "json_object"}
    else:
        assert "response_format" not in body


@pytest.mark.parametrize(
    ("refusal", "with_json"),
    [
        ((400, "response_format is not supported"), 1),  # says so: asked again at once
        ((422, "Unknown field: json_schema"), 1),
        ((400, "bad request"), 1),  # says nothing: its one retry goes without it
        ((500, "scripted HTTP 500"), 3),  # llama.cpp: the last of 3 retries goes without it
    ],
)
async def test_a_server_that_refuses_json_mode_is_asked_again_without_it(
    llm_server: LoopbackLLMServer,
    llm_client: OpenAICompatibleClient,
    refusal: tuple[int, str],
    with_json: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    status, message = refusal

    def answer(request: RecordedRequest) -> Reply:
        if "response_format" in request.json:
            return Reply.status(status, message=message)
        return Reply.text('{"mood": "calm", "intensity": 1}')

    llm_server.default = answer

    first = await complete_json(llm_client, MSGS, Mood, model="c", default=DEFAULT)
    second = await complete_json(llm_client, MSGS, Mood, model="c", default=DEFAULT)

    assert first == second == Mood(mood="calm", intensity=1)
    assert not llm_client.json_mode
    with_json_mode = [r for r in llm_server.requests if "response_format" in r.json]
    assert len(with_json_mode) == with_json
    assert len(llm_server.requests) == with_json + 2  # the second call went without at once
    assert caplog.text.count("does not take response_format") == 1
    assert llm_server.base_url in caplog.text


async def test_a_500_storm_keeps_json_mode_and_costs_only_the_retries(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    """Four 500s are a failing server, not a refusal: JSON mode stays on."""
    llm_server.default = Reply.status(500)

    for _ in range(3):  # e.g. the calls of one scene close
        result = await complete_json(llm_client, MSGS, Mood, model="c", default=DEFAULT)
        assert result == DEFAULT

    assert llm_client.json_mode
    assert len(llm_server.requests) == 3 * (1 + 3)  # max_retries = 3
    # the last try of each call went without response_format, and failed just the same
    assert ["response_format" in r.json for r in llm_server.requests[:4]] == [
        True,
        True,
        True,
        False,
    ]
    llm_server.default = Reply.text('{"mood": "calm", "intensity": 1}')
    await complete_json(llm_client, MSGS, Mood, model="c", default=DEFAULT)
    assert llm_server.requests[-1].json["response_format"] == {"type": "json_object"}


async def test_a_400_that_is_not_about_json_is_not_a_refusal(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.default = Reply.status(400, message="max_tokens is too large")

    assert await complete_json(llm_client, MSGS, Mood, model="c", default=DEFAULT) == DEFAULT

    assert llm_client.json_mode
    assert len(llm_server.requests) == 2  # the 400, and the same request without JSON mode
