"""Shared pytest wiring: the loopback OpenAI-compatible server fixtures (tests/llm_server.py)."""

pytest_plugins = ["tests.llm_server"]
