"""One LLM cap across every process on a PostgreSQL, in session-level advisory locks.

``max_concurrency`` is the provider's cap per API key, so with several bot processes it must
hold across all of them. Each of the ``limit`` slots is an advisory lock; a request holds one
for its whole life, as with ``PriorityGate``. Session-level locks die with their connection,
so a crashed process's slots are free at once, with nothing to clean up.

The same priorities as ``PriorityGate``, across processes:

- every process whose replies are waiting (for a slot or for their first token) holds the
  shared *reply* lock, and no background (JSON) call is sent while anyone holds it;
- each process registers its best waiter as a *waiter* lock whose key orders (priority,
  arrival); only the process holding the lowest key takes a free slot, so a reply queued in
  one process beats a JSON call queued in another, and arrival order holds between processes.

One connection per gate, driven by one task (the pump) that does all of the gate's
PostgreSQL work in order; the others wake it. A release or a change of the best waiter is
announced with NOTIFY; a crashed process announces nothing, so waiters also look again every
``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from bot.llm.base import Priority
from bot.llm.errors import LLMConnectionError
from bot.llm.gate import ReplyWait, waiting_for_first_token

log = logging.getLogger(__name__)
_LOST = "lost the connection to PostgreSQL, which shares the LLM cap"

Connect = Callable[[], Awaitable[asyncpg.Connection]]
"""Opens the gate's PostgreSQL connection (again, after one was lost)."""

# Advisory keys are one bigint: 0x53 ("S", storybot) | purpose (4 bits) | scope (12) | value (40).
_TAG = 0x53
_SLOT, _REPLY, _WAIT_NARRATIVE, _WAIT_BACKGROUND = 1, 2, 3, 4
_VALUE_BITS = 40
_EPOCH_MS = 1_704_067_200_000  # 2024-01-01: arrival in ms since then fits 40 bits until 2058

# Take a free slot (its index, or NULL) for this session's waiter if it is the first of all
# processes and, for a background call ($5), no other session shows a reply waiting. The
# advisory locks of this database come from pg_locks, as bigints (it splits a bigint key into
# classid, the high half, and objid, the low one); a free slot is one nobody holds.
_TAKE_SQL = """
WITH held AS (
    SELECT pid, (classid::int8 << 32) | objid::int8 AS key
    FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
),
free AS (
    SELECT min(i) AS i FROM generate_series(0, $3::int - 1) AS i
    WHERE ($4::int8 | i) NOT IN (SELECT key FROM held)
)
SELECT free.i,
    CASE WHEN free.i IS NOT NULL
        AND (SELECT pid FROM held WHERE key >> 40 = ANY($1::int8[]) ORDER BY key, pid LIMIT 1)
            = pg_backend_pid()
        AND NOT ($5::bool AND EXISTS (
            SELECT 1 FROM held WHERE key = $2 AND pid <> pg_backend_pid()))
    THEN pg_try_advisory_lock($4::int8 | free.i) END
FROM free
"""


def _prefix(purpose: int, scope: int) -> int:
    return (_TAG << 16) | (purpose << 12) | scope


def _key(purpose: int, scope: int, value: int) -> int:
    return (_prefix(purpose, scope) << _VALUE_BITS) | (value & ((1 << _VALUE_BITS) - 1))


def scope_of(base_url: str, api_key: str) -> int:
    """The cap's scope: one per (server, API key), so two bots with two keys never share one."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{api_key}".encode()).digest()
    return int.from_bytes(digest[:2], "big") & 0xFFF


@dataclass(frozen=True, slots=True)
class _Held:
    connection: int
    """Which of the gate's connections holds the lock (one since lost holds nothing)."""
    index: int


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    arrived_ms: int = field(compare=False)
    future: asyncio.Future[_Held] = field(compare=False)


class SharedGate:
    """At most ``limit`` requests in flight over all processes sharing one PostgreSQL.

    ``async with SharedGate.open(connect, limit, scope) as gate`` (or ``start``/``aclose``);
    the client uses ``slot`` and ``reply_waiting`` as with ``PriorityGate``.
    """

    def __init__(self, connect: Connect, limit: int, scope: int, *, poll: float = 0.25) -> None:
        if limit < 1:
            raise ValueError("the LLM concurrency limit must be at least 1")
        self._limit = limit
        self.scope = scope
        self.poll = poll
        self._connect = connect
        self._conn: asyncpg.Connection | None = None
        self._channel = f"storybot_llm_{scope:03x}"
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._held: set[int] = set()
        self._to_release: list[int] = []
        self._registered: int | None = None  # the waiter key this process shows
        self._reply_held = False
        self._generation = 0
        self.replies_waiting = 0
        self.in_use = 0
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def limit(self) -> int:
        return self._limit

    @classmethod
    @asynccontextmanager
    async def open(
        cls, connect: Connect, limit: int, scope: int, *, poll: float = 0.25
    ) -> AsyncIterator[SharedGate]:
        gate = cls(connect, limit, scope, poll=poll)
        await gate.start()
        try:
            yield gate
        finally:
            await gate.aclose()

    async def start(self) -> None:
        """Connect (a failure to reach PostgreSQL is raised here, at start-up) and serve."""
        await self._reconnect()
        self._pump_task = asyncio.create_task(self._pump(), name="shared LLM gate")

    async def aclose(self) -> None:
        self._closed = True
        self._wake.set()
        if self._pump_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump_task), 2)
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(LLMConnectionError("the shared LLM cap was closed"))
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.close(timeout=2)  # and every lock it held goes with it
            self._conn = None

    # -- what the client uses ---------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[None]:
        held = await self._acquire(priority)
        try:
            yield
        finally:
            self._release(held)

    def reply_waiting(self) -> AbstractAsyncContextManager[ReplyWait]:
        return waiting_for_first_token(self._reply_started, self._reply_arrived)

    def _reply_started(self) -> None:
        self.replies_waiting += 1
        self._wake.set()

    def _reply_arrived(self) -> None:
        self.replies_waiting -= 1
        self._wake.set()

    async def _acquire(self, priority: Priority) -> _Held:
        if self._closed or self._pump_task is None or self._pump_task.done():
            raise LLMConnectionError("the shared LLM cap is not running (PostgreSQL)")
        future: asyncio.Future[_Held] = asyncio.get_running_loop().create_future()
        now_ms = int(time.time() * 1000) - _EPOCH_MS
        heapq.heappush(self._waiters, _Waiter(int(priority), next(self._seq), now_ms, future))
        self._wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(future.result())  # granted just as we were cancelled
            self._wake.set()
            raise

    def _release(self, held: _Held) -> None:
        self.in_use -= 1
        if held.connection == self._generation and held.index in self._held:
            self._to_release.append(held.index)  # else its lock died with an old connection
        self._wake.set()

    # -- the pump: all PostgreSQL work, one step at a time ----------------------------------

    async def _pump(self) -> None:
        while not self._closed:
            try:
                await self._step()
            except Exception as exc:  # the session is in doubt: a new one is the safe way on
                await self._lost(str(exc) or type(exc).__name__)
                continue
            timeout = self.poll if self._live_waiters() else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()

    def _live_waiters(self) -> bool:
        while self._waiters and self._waiters[0].future.done():
            heapq.heappop(self._waiters)
        return bool(self._waiters)

    async def _step(self) -> None:
        conn = self._conn
        assert conn is not None
        if conn.is_closed():
            raise asyncpg.InterfaceError("the server closed the connection")
        announce = False
        while self._to_release:
            freed = self._to_release.pop()
            self._held.discard(freed)
            await conn.fetchval("SELECT pg_advisory_unlock($1::int8)", self._slot(freed))
            announce = True
        announce |= await self._show_replies(conn)
        while self._live_waiters():
            best = self._waiters[0]
            announce |= await self._register(conn, best)
            index = await self._take_if_first(conn, best)
            if index is None:
                break
            announce = True
            if self._waiters and self._waiters[0] is best and not best.future.done():
                heapq.heappop(self._waiters)
                self._held.add(index)
                self.in_use += 1
                best.future.set_result(_Held(self._generation, index))
            else:  # while we asked, a better waiter came (a reply) or this one left: ask again
                await conn.fetchval("SELECT pg_advisory_unlock($1::int8)", self._slot(index))
        if not self._live_waiters():
            announce |= await self._register(conn, None)
        if announce:
            await conn.execute("SELECT pg_notify($1, '')", self._channel)

    async def _show_replies(self, conn: asyncpg.Connection) -> bool:
        """Hold the shared reply lock exactly while replies of ours wait; True if let go."""
        want = self.replies_waiting > 0
        if want == self._reply_held:
            return False
        key = _key(_REPLY, self.scope, 0)
        if want:
            await conn.fetchval("SELECT pg_advisory_lock_shared($1::int8)", key)
        else:
            await conn.fetchval("SELECT pg_advisory_unlock_shared($1::int8)", key)
        self._reply_held = want
        return not want

    async def _register(self, conn: asyncpg.Connection, best: _Waiter | None) -> bool:
        """Show ``best`` (or nobody) as this process's waiter; True if that changed."""
        key = None
        if best is not None:
            purpose = _WAIT_NARRATIVE if best.priority == Priority.NARRATIVE else _WAIT_BACKGROUND
            key = _key(purpose, self.scope, best.arrived_ms)
        if key == self._registered:
            return False
        if self._registered is not None and key is not None:  # one round trip for the swap
            await conn.execute(
                "SELECT pg_advisory_lock_shared($2::int8), pg_advisory_unlock_shared($1::int8)",
                self._registered,
                key,
            )
        elif self._registered is not None:
            await conn.fetchval("SELECT pg_advisory_unlock_shared($1::int8)", self._registered)
        elif key is not None:
            await conn.fetchval("SELECT pg_advisory_lock_shared($1::int8)", key)
        self._registered = key
        return True

    async def _take_if_first(self, conn: asyncpg.Connection, best: _Waiter) -> int | None:
        """A free slot for ``best`` if it is the first waiter of every process and, if a
        background call, no reply waits anywhere; else None (look again when woken)."""
        background = best.priority != Priority.NARRATIVE
        if background and self.replies_waiting:
            return None
        row = await conn.fetchrow(
            _TAKE_SQL,
            [_prefix(_WAIT_NARRATIVE, self.scope), _prefix(_WAIT_BACKGROUND, self.scope)],
            _key(_REPLY, self.scope, 0),
            self._limit,
            _key(_SLOT, self.scope, 0),
            background,
        )
        if row is None or not row[1]:
            return None  # not first, a reply waits, no slot free, or another took it first
        return int(row[0])

    def _slot(self, index: int) -> int:
        return _key(_SLOT, self.scope, index)

    # -- the connection ----------------------------------------------------------------------

    async def _reconnect(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(self._channel, self._heard)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(lambda _: self._wake.set())  # noticed even when idle
        self._conn = conn
        self._generation += 1
        self._held.clear()
        self._to_release.clear()
        self._registered = None
        self._reply_held = False

    def _heard(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if self._conn is None or pid != self._conn.get_server_pid():
            self._wake.set()

    async def _lost(self, reason: str) -> None:
        """The connection died, and every slot it held with it: fail the waiters, reconnect.

        Requests already running finish; until they do, they are not counted by PostgreSQL.
        """
        if self._closed:
            return
        log.error("lost the PostgreSQL connection that shares the LLM cap: %s", reason)
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(LLMConnectionError(_LOST))
        self._waiters.clear()
        old, self._conn = self._conn, None
        if old is not None:
            old.terminate()
        delay = self.poll
        while not self._closed:
            try:
                await self._reconnect()
                log.warning("the shared LLM cap is back on PostgreSQL")
                return
            except Exception as again:  # whatever the connect says, we try again later
                log.error("PostgreSQL still unreachable (%s); next try in %.1f s", again, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
