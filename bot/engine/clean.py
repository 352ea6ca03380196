"""Tidy a streamed reply: no speaker labels, and nothing written for someone else.

Models often open with a label ("Mira: …", even "Tomás Reyes: Mira Vale: …"): every label at
the start is dropped, whoever it names. Later, a line that starts with another's label
("\\nAlex: …") is the model speaking for someone else: the reply ends before it, even when the
server ignored the stop sequences; the speaker's own label at a line's start is dropped.

A label can only be recognised once enough text has arrived, so text that may still become
one (the reply's start, or the start of a line) is held back until it completes a label or
cannot be one.
"""

from __future__ import annotations

from collections.abc import Sequence


def speaker_labels(names: Sequence[str]) -> list[str]:
    """The ways a reply may name someone (any of ``names``) before their words: "Mira Vale:",
    "**Mira:**", longest first."""
    labels = []
    for n in names:
        labels += [f"{n}:", f"**{n}:**", f"**{n}**:"]
    return sorted(labels, key=len, reverse=True)


def stop_sequences(others: Sequence[Sequence[str]]) -> list[str]:
    """Stops for a reply, most important first: each other person's first name form (the
    list's order), then their other forms. The server may take only the first few."""
    firsts = [f"\n{names[0]}:" for names in others if names]
    rest = [f"\n{n}:" for names in others for n in names[1:]]
    return list(dict.fromkeys(firsts + rest))


def name_forms(name: str, nickname: str = "") -> list[str]:
    """How a person may be named: full name, first name, nickname (no repeats)."""
    first = name.split(maxsplit=1)[0] if name.split() else name
    return [n for n in dict.fromkeys((name, first, nickname)) if n]


class ReplyCleaner:
    """Feed chunks in, get text out. ``cut`` turns true where the model starts writing for
    someone else; nothing more comes out after that, and the caller stops the stream."""

    def __init__(self, own: Sequence[str], others: Sequence[str]) -> None:
        self._own = [label.lower() for label in own]
        self._others = [label.lower() for label in others if label.lower() not in self._own]
        self._held = ""
        self._started = False  # some text of the reply itself has come out
        self.cut = False

    def feed(self, chunk: str) -> str:
        if self.cut:
            return ""
        self._held += chunk
        return self._drain(final=False)

    def flush(self) -> str:
        """Release whatever is held (the reply ended)."""
        if self.cut:
            return ""
        return self._drain(final=True)

    def _label(self, text: str, labels: Sequence[str]) -> str | None:
        folded = text.lower()
        return next((label for label in labels if folded.startswith(label)), None)

    def _maybe_label(self, text: str) -> bool:
        folded = text.lower()
        return any(label.startswith(folded) for label in (*self._own, *self._others))

    def _drain(self, *, final: bool) -> str:
        out: list[str] = []
        while self._held:
            if not self._started:
                if not self._opening(final):
                    break
                continue
            newline = self._held.find("\n")
            if newline < 0:
                out.append(self._held)
                self._held = ""
                break
            out.append(self._held[:newline])
            rest = self._held[newline:]
            line = rest.lstrip()
            gap = rest[: len(rest) - len(line)]
            if not line:
                self._held = "" if final else rest  # trailing blank lines wait for more
                break
            if self._label(line, self._others) is not None:
                self.cut, self._held = True, ""
                break
            if (own := self._label(line, self._own)) is not None:
                out.append(gap)
                self._held = line[len(own) :].lstrip(" \t")
                continue
            if self._maybe_label(line) and not final:
                self._held = rest
                break
            end = rest.find("\n", len(gap))
            end = len(rest) if end < 0 else end
            out.append(rest[:end])
            self._held = rest[end:]
        return "".join(out)

    def _opening(self, final: bool) -> bool:
        """Drop labels opening the reply; False while the start could still be one."""
        text = self._held.lstrip()
        label = self._label(text, (*self._own, *self._others))
        if label is not None:
            self._held = text[len(label) :].lstrip()
            return True
        if text and self._maybe_label(text) and not final:
            return False
        if not text:
            self._held = "" if final else self._held
            return False
        self._held, self._started = text, True
        return True
