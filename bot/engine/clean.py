"""Tidy a streamed reply: models often open with their own name ("Mira: …"); drop that label.

The label can only be recognised once enough text has arrived, so the start of a reply is held
back until it either completes a label (dropped) or cannot be one (released unchanged).
"""

from __future__ import annotations


def speaker_labels(name: str) -> list[str]:
    """The ways a reply may name its own speaker before speaking: "Mira Vale:", "**Mira:**"."""
    names = [name]
    first = name.split(maxsplit=1)[0] if name.split() else name
    if first != name:
        names.append(first)
    labels = []
    for n in names:
        labels += [f"{n}:", f"**{n}:**", f"**{n}**:"]
    return sorted(labels, key=len, reverse=True)


class LeadingLabel:
    """Feed chunks in, get text out; a leading speaker label never comes out."""

    def __init__(self, labels: list[str]) -> None:
        self._labels = [label.casefold() for label in labels]
        self._held = ""
        self._decided = not labels
        self._trim = False  # a label was dropped: the space after it goes too

    def feed(self, chunk: str) -> str:
        if self._decided:
            if self._trim:
                chunk = chunk.lstrip()
                self._trim = not chunk
            return chunk
        self._held += chunk
        text = self._held.lstrip()
        folded = text.casefold()
        for label in self._labels:
            if folded.startswith(label):
                self._decided = True
                self._held = ""
                rest = text[len(label) :].lstrip()
                self._trim = not rest
                return rest
        if any(label.startswith(folded) for label in self._labels):
            return ""  # still could be a label: wait for more
        return self.flush()

    def flush(self) -> str:
        """Release whatever is held (the reply ended, or the start is not a label)."""
        self._decided = True
        held, self._held = self._held, ""
        return held
