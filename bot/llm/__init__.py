"""The LLM layer: one protocol, a real OpenAI-compatible client, a mock, structured outputs."""

from bot.llm.base import LLMClient, Message, Priority, Purpose, Role, Task
from bot.llm.client import OpenAICompatibleClient, Timeouts
from bot.llm.errors import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMProtocolError,
    LLMRateLimitedError,
    LLMStreamError,
    LLMTimeoutError,
    TimeoutPhase,
)
from bot.llm.gate import PriorityGate
from bot.llm.mock import MockLLMClient, MockLLMExhausted, RecordedCall, ScriptedLLM
from bot.llm.structured import complete_json, extract_json_object

__all__ = [
    "LLMClient",
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPError",
    "LLMProtocolError",
    "LLMRateLimitedError",
    "LLMStreamError",
    "LLMTimeoutError",
    "Message",
    "MockLLMClient",
    "MockLLMExhausted",
    "OpenAICompatibleClient",
    "Priority",
    "PriorityGate",
    "Purpose",
    "RecordedCall",
    "Role",
    "ScriptedLLM",
    "Task",
    "TimeoutPhase",
    "Timeouts",
    "complete_json",
    "extract_json_object",
]
