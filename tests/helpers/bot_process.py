"""``python -m bot …`` as a child process, the way a user starts it, for end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def start_bot(
    *argv: str,
    merge_stderr: bool = False,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> asyncio.subprocess.Process:
    """Started with piped stdin and stdout (and stderr, or stderr into stdout)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        cwd=ROOT,
        env=env,
        preexec_fn=preexec_fn,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    )
