"""SSE and chat-chunk parsing: pure, so every edge case is cheap to pin down."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.llm import LLMProtocolError, LLMStreamError
from bot.llm.sse import ChatStreamDecoder, SSEEvent, SSEParser


def chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> str:
    delta: dict[str, str] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def test_data_lines_comments_and_event_names() -> None:
    parser = SSEParser()
    events = parser.feed(": keep-alive\n\ndata: a\ndata: b\n\nevent: error\ndata: {}\n\n")
    assert events == [SSEEvent("a\nb"), SSEEvent("{}", "error")]
    assert parser.comments == 1


def test_crlf_and_lone_cr_line_ends_even_split_across_reads() -> None:
    parser = SSEParser()
    assert parser.feed("data: one\r") == []
    assert parser.feed("\n\r\ndata:two\r\r") == [SSEEvent("one")]
    assert parser.feed("\n") == [SSEEvent("two")]  # the held \r was half of a \r\n


def test_close_flushes_an_event_without_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed("data: [DONE]") == []
    assert parser.close() == [SSEEvent("[DONE]")]


def test_unicode_line_separators_inside_data_are_not_line_ends() -> None:
    assert SSEParser().feed("data: a\u2028b\x0bc\x1cd\n\n") == [SSEEvent("a\u2028b\x0bc\x1cd")]


def test_decoder_skips_role_only_and_empty_deltas_and_stops_at_done() -> None:
    decoder = ChatStreamDecoder()
    body = (
        chunk("", role=True)
        + chunk()
        + chunk("Hel")
        + chunk("lo")
        + chunk(None, "stop")
        + "data: [DONE]\n\n"
        + chunk("after done is ignored")
    )
    assert decoder.feed(body) == ["Hel", "lo"]
    assert decoder.close() == []
    assert decoder.finish_reason == "stop"
    assert decoder.done


def test_finish_reason_without_done_is_a_proper_end() -> None:
    decoder = ChatStreamDecoder()
    assert decoder.feed(chunk("x") + chunk(None, "length")) == ["x"]
    assert decoder.close() == []


def test_end_without_done_or_finish_reason_is_a_cut_stream() -> None:
    decoder = ChatStreamDecoder()
    assert decoder.feed(chunk("partial")) == ["partial"]
    with pytest.raises(LLMStreamError, match="cut the answer off mid-stream after 7 characters"):
        decoder.close()


def test_error_object_in_stream() -> None:
    decoder = ChatStreamDecoder()
    body = 'data: {"error": {"message": "CUDA out of memory", "code": 500}}\n\n'
    with pytest.raises(LLMStreamError, match=r"CUDA out of memory \(500\)") as info:
        decoder.feed(chunk("ok") + body)
    assert not info.value.retryable


def test_malformed_chunk_is_a_protocol_error() -> None:
    with pytest.raises(LLMProtocolError, match="malformed stream chunk"):
        ChatStreamDecoder().feed('data: {"choices": [\n\n')
    with pytest.raises(LLMProtocolError, match="not an object"):
        ChatStreamDecoder().feed("data: [1, 2]\n\n")


def test_usage_only_chunk_gives_no_text() -> None:
    assert ChatStreamDecoder().feed('data: {"choices": [], "usage": {"total_tokens": 3}}\n\n') == []


TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=12).filter(
    bool
)


@given(pieces=st.lists(TEXT, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 2000)))
def test_any_split_of_the_body_reassembles_the_exact_text(
    pieces: list[str], cuts: list[int]
) -> None:
    body = chunk("", role=True) + "".join(chunk(p) for p in pieces) + chunk(None, "stop")
    body = body.replace("\n", "\r\n") if len(pieces) % 2 else body
    bounds = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    decoder = ChatStreamDecoder()
    out: list[str] = []
    for a, b in itertools.pairwise(bounds):
        out += decoder.feed(body[a:b])
    out += decoder.close()
    assert "".join(out) == "".join(pieces)
