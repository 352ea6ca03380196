"""A sensible answer to any engine call over HTTP, for stories played against the loopback
server: the server never learns a call's purpose, so the answer is chosen from the prompt."""

from __future__ import annotations

import json
import re

from tests.helpers.llm_server import RecordedRequest, Reply

NARRATOR = re.compile(r"You are (.+?), a character")
TARGET_ID = re.compile(r"\(id ([\w-]+), affinity")
DIGEST = "While you were away, Mira and Tomás stacked the chairs and argued about the ledger."
THREAD = "The missing ledger page"


def story_reply(request: RecordedRequest) -> Reply:
    """Answer any engine call sensibly: JSON for structured calls, prose for narration."""
    messages = request.messages
    system = messages[0]["content"] if messages else ""
    if "response_format" not in request.json and request.stream:
        match = NARRATOR.search(system)
        name = match[1].split()[0] if match else "Someone"
        return Reply.text(f'*{name} nods slowly.* "Go on, I\'m listening."')
    if system.startswith("You split a role-play player's message"):
        answer: object = {"segments": [{"kind": "narration", "text": messages[-1]["content"]}]}
    elif system.startswith("You track the inner life of"):
        answer = {
            "relationships": [
                {"target_id": t, "affinity_delta": 3, "trust_delta": 1, "knowledge_facts": []}
                for t in TARGET_ID.findall(messages[-1]["content"])
            ]
        }
    elif system.startswith("Summarize, in two to four sentences"):
        answer = {"summary": DIGEST}
    elif system.startswith("List the open plot threads"):
        answer = {"threads": [{"title": THREAD, "summary": "Who tore it out?"}]}
    else:  # a point-of-view summary
        answer = {"summary": "A long, wet evening.", "knowledge_facts": []}
    return Reply.text(json.dumps(answer))
