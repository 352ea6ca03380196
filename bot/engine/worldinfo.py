"""World-info activation: which lorebook entries a prompt carries, and why. Pure; no I/O.

An entry fires when one of its keys appears in the text scanned: the newest beats the speaker
witnessed (the book's scan depth) and the current line. The caller hands in only what the
speaker witnessed, so a word said while a character was away can never fire lore for it.
Fired entries are kept by priority within each book's token budget and the caller's cap, then
put in insertion order. With ``recursive_scanning``, fired entries' content is scanned too.

Regex keys come from strangers' cards, so they are matched with the ``regex`` module under a
timeout: a pathological pattern fails to match instead of stalling the bot.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import regex

from bot.cards.lorebook import Lorebook
from bot.store.events import LoreEntry

log = logging.getLogger(__name__)

DEFAULT_SCAN_DEPTH = 2
"""SillyTavern's default: the last two messages (plus the line being answered)."""
DEFAULT_TOKEN_BUDGET = 1024
MAX_RECURSION = 5
REGEX_TIMEOUT = 0.05
REGEX_BUDGET = 0.25
"""Seconds all regex keys of one activation may take together (a stranger's card may hold
many pathological patterns)."""
CHARS_PER_TOKEN = 4
_REGEX_KEY = regex.compile(r"^/(.+)/([a-z]*)$", regex.DOTALL)


def lore_tokens(text: str) -> int:
    """The same cheap estimate the prompt budget uses (about four characters a token)."""
    return len(text) // CHARS_PER_TOKEN + 1


@dataclass(frozen=True, slots=True)
class Scanned:
    """One piece of text scanned for keys, with where it came from (for ``/lore why``)."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class Fired:
    """An entry that fired: which book, which entry (its number in a chat's world book), why."""

    book: str
    number: int | None
    entry: LoreEntry
    reason: str

    @property
    def title(self) -> str:
        entry = self.entry
        return entry.comment or (entry.keys[0] if entry.keys else entry.content[:40])


@dataclass(frozen=True, slots=True)
class Activation:
    """What fired (in insertion order) and what fired but did not fit a budget."""

    fired: tuple[Fired, ...] = ()
    over_budget: tuple[Fired, ...] = ()

    def texts(self, position: str) -> list[str]:
        return [f.entry.content for f in self.fired if f.entry.position == position]

    def at_depth(self) -> list[LoreEntry]:
        """Fired entries that go into the transcript at a depth, in insertion order."""
        return [f.entry for f in self.fired if f.entry.position == "at_depth"]

    def describe(self) -> str:
        """One line: each entry that fired and why, then what the budget left out."""
        parts = [f"{f.title} ({f.reason})" for f in self.fired]
        if self.over_budget:
            parts.append("over budget: " + ", ".join(f.title for f in self.over_budget))
        return "; ".join(parts) or "nothing fired"


def activate(
    books: Sequence[Lorebook],
    recent: Sequence[Scanned],
    current: Scanned | None,
    *,
    max_tokens: int,
    resolve: Callable[[str], str] = str,
) -> Activation:
    """Entries of ``books`` that fire for this prompt.

    ``recent`` is the witnessed transcript, oldest first; ``current`` the line being answered.
    ``resolve`` fills macros in keys and content (``{{char}}`` in a key means the speaker).
    """
    matcher = _Matcher(resolve)
    candidates: list[tuple[Fired, Lorebook]] = []
    for book in books:
        fired = _fire_book(book, recent, current, matcher)
        candidates.extend((f, book) for f in fired)
    candidates.extend(_recurse(books, candidates, matcher))
    kept, over = _within_budgets(candidates, max_tokens)
    kept.sort(key=lambda f: (f.entry.insertion_order, -f.entry.priority))
    return Activation(tuple(kept), tuple(over))


def _numbered(book: Lorebook) -> list[tuple[int | None, LoreEntry]]:
    numbers: Sequence[int | None] = book.numbers or [None] * len(book.entries)
    return list(zip(numbers, book.entries, strict=True))


def _fire_book(
    book: Lorebook,
    recent: Sequence[Scanned],
    current: Scanned | None,
    matcher: _Matcher,
) -> list[Fired]:
    fired = []
    for number, entry in _numbered(book):
        if not entry.enabled:
            continue
        if entry.constant:
            fired.append(Fired(book.name, number, entry, "constant"))
            continue
        depth = entry.scan_depth if entry.scan_depth is not None else book.scan_depth
        window = matcher.window(recent, current, DEFAULT_SCAN_DEPTH if depth is None else depth)
        reason = matcher.match(entry, window)
        if reason is not None:
            fired.append(Fired(book.name, number, entry, reason))
    return fired


def _recurse(
    books: Sequence[Lorebook],
    fired: list[tuple[Fired, Lorebook]],
    matcher: _Matcher,
) -> list[tuple[Fired, Lorebook]]:
    """Entries fired by other entries' content, in books that scan recursively."""
    seen = {id(f.entry) for f, _ in fired}
    found: list[tuple[Fired, Lorebook]] = []
    frontier = [f for f, _ in fired if not f.entry.prevent_recursion]
    for _ in range(MAX_RECURSION):
        if not frontier:
            break
        window = tuple(Scanned(f"entry '{f.title}'", f.entry.content) for f in frontier)
        frontier = []
        for book in books:
            if not book.recursive_scanning:
                continue
            for number, entry in _numbered(book):
                if id(entry) in seen or not entry.enabled or entry.exclude_recursion:
                    continue
                reason = matcher.match(entry, window)
                if reason is None:
                    continue
                seen.add(id(entry))
                hit = Fired(book.name, number, entry, f"recursion: {reason}")
                found.append((hit, book))
                if not entry.prevent_recursion:
                    frontier.append(hit)
    return found


def _within_budgets(
    candidates: list[tuple[Fired, Lorebook]], max_tokens: int
) -> tuple[list[Fired], list[Fired]]:
    """Keep the highest priority first (then the earliest order) while each budget allows."""
    order = sorted(candidates, key=lambda c: (-c[0].entry.priority, c[0].entry.insertion_order))
    used_total = 0
    used_by_book: dict[int, int] = {}
    kept: list[Fired] = []
    over: list[Fired] = []
    for fired, book in order:
        cost = lore_tokens(fired.entry.content)
        budget = book.token_budget if book.token_budget else DEFAULT_TOKEN_BUDGET
        used = used_by_book.get(id(book), 0)
        if used + cost > budget or used_total + cost > max_tokens:
            over.append(fired)
            continue
        used_by_book[id(book)] = used + cost
        used_total += cost
        kept.append(fired)
    return kept, over


class _Matcher:
    """Key matching for one activation: texts lowered once, keys resolved once, patterns
    compiled once per process, and regex time capped for the whole activation."""

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self.resolve = resolve
        self.keys: dict[str, str] = {}
        self.windows: dict[int, tuple[Scanned, ...]] = {}
        self.joined: dict[int, tuple[tuple[Scanned, ...], str, str]] = {}
        self.regex_left = REGEX_BUDGET

    def window(
        self, recent: Sequence[Scanned], current: Scanned | None, depth: int
    ) -> tuple[Scanned, ...]:
        """The newest ``depth`` beats and the current line (the same tuple for one depth)."""
        found = self.windows.get(depth)
        if found is None:
            lines = list(recent[-depth:]) if depth > 0 else []
            found = self.windows[depth] = (*lines, *([current] if current else []))
        return found

    def _texts(self, window: tuple[Scanned, ...]) -> tuple[str, str]:
        """The window as one text, as written and lowered (keys are looked for in it once)."""
        cached = self.joined.get(id(window))
        if cached is None or cached[0] is not window:
            text = "\n".join(scanned.text for scanned in window)
            cached = self.joined[id(window)] = (window, text, text.lower())
        return cached[1], cached[2]

    def match(self, entry: LoreEntry, window: tuple[Scanned, ...]) -> str | None:
        """Why ``entry`` fires on ``window`` (a primary key, then the secondary rule), or None."""
        primary = self._first_hit(entry, entry.keys, window)
        if primary is None:
            return None
        secondary = entry.secondary_keys
        if not entry.selective or not secondary:
            return primary
        hits = [self._first_hit(entry, [key], window) is not None for key in secondary]
        allowed = {
            "and_any": any(hits),
            "and_all": all(hits),
            "not_any": not any(hits),
            "not_all": not all(hits),
        }[entry.selective_logic]
        logic = entry.selective_logic.replace("_", " ")
        return f"{primary}, secondary keys {logic}" if allowed else None

    def _first_hit(
        self, entry: LoreEntry, keys: Sequence[str], window: tuple[Scanned, ...]
    ) -> str | None:
        text, lowered = self._texts(window)
        for key in keys:
            resolved = self.keys.get(key)
            if resolved is None:
                resolved = self.keys[key] = self.resolve(key)
            if not resolved.strip():
                continue
            plain = not (entry.use_regex or entry.match_whole_words or _REGEX_KEY.match(resolved))
            if plain and (resolved if entry.case_sensitive else resolved.lower()) not in (
                text if entry.case_sensitive else lowered
            ):
                continue  # the common case, settled by one substring search of the window
            for scanned in reversed(window):
                if self._found(entry, resolved, scanned.text, plain=plain):
                    return f"key '{key}' in {scanned.where}"
        return None

    def _found(self, entry: LoreEntry, key: str, text: str, *, plain: bool) -> bool:
        if plain:
            return key in text if entry.case_sensitive else key.lower() in text.lower()
        literal = _REGEX_KEY.match(key)
        pattern = _pattern(key, entry.case_sensitive, entry.use_regex, entry.match_whole_words)
        if pattern is None:
            return False
        if literal is not None or entry.use_regex:
            return self._search(pattern, key, text)
        return pattern.search(text) is not None

    def _search(self, pattern: regex.Pattern[str], key: str, text: str) -> bool:
        """A regex key's search, timed out so a pathological pattern cannot stall the bot."""
        if self.regex_left <= 0:
            return False
        started = time.perf_counter()
        try:
            return pattern.search(text, timeout=min(REGEX_TIMEOUT, self.regex_left)) is not None
        except TimeoutError:
            log.warning("the world-info key %r took too long to match; skipped", key[:80])
            return False
        finally:
            self.regex_left -= time.perf_counter() - started


@functools.lru_cache(maxsize=4096)
def _pattern(
    key: str, case_sensitive: bool, use_regex: bool, whole_words: bool
) -> regex.Pattern[str] | None:
    """The compiled form of a regex key (or a whole-word key); None for an invalid pattern."""
    flags = 0 if case_sensitive else regex.IGNORECASE
    literal = _REGEX_KEY.match(key)
    try:
        if literal is not None:  # SillyTavern's /pattern/flags: its own flags decide the case
            body, extra = literal.groups()
            return regex.compile(body, regex.IGNORECASE if "i" in extra else 0)
        if use_regex:
            return regex.compile(key, flags)
    except regex.error:
        log.info("the world-info key %r is not a valid regex; skipped", key[:80])
        return None
    escaped = regex.escape(key)
    return regex.compile(rf"(?<!\w){escaped}(?!\w)" if whole_words else escaped, flags)
