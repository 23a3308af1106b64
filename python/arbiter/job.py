"""One task as a handler sees it (``Job``), what a handler's outcome
becomes on the wire, and the report a process slot's child sends back.

A handler gets a ``Job`` and returns the result (``bytes``, ``str`` as
UTF-8, or None for an empty one) or raises to fail the task: ``Fail``'s
text is the error as it is, any other exception's is "TypeName: text".
A coroutine function (``async def``) is a handler too: what it returns is
awaited to the end in the slot, on an event loop of its own
(``asyncio.run``), so asyncio code runs as it is.
Errors are cut to 4096 bytes of valid UTF-8, as the broker keeps them.

The report of a process slot: the child runs the handler and writes what
it leaves to a pipe as a stream of records, items as they are emitted (so
a handler can emit more than fits in memory), then one outcome:

    'E' u32 queue_len u32 name_len u64 size  queue name payload   an emitted item
    'R' u64 size  data                                            success, its result
    'F' u32 len   text                                            failure, its error

little-endian (both ends are the same program on the same machine). The
parent reads it as it fills (``Report``); a record beyond the limits
breaks the format, and the child is killed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import struct
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from . import codec
from .errors import BadRequest, TooLarge
from .records import Parent, parents

Outcome = Tuple[bool, Union[bytes, str]]  # (True, result) or (False, error)
Emitted = Dict[str, Any]  # an EMIT item without id and lease: queue, name, payload


class Fail(Exception):
    """Raised by a handler to fail its task with exactly this error text
    (any other exception fails it too, as "TypeName: text")."""


def error_text(error: BaseException) -> str:
    if isinstance(error, Fail):
        text = str(error) or 'handler failed'
    else:
        text = '%s: %s' % (type(error).__name__, error) if str(error) else type(error).__name__
    return codec.clean_text(text)


def over_limit(size: int, limit: int) -> str:
    return 'result of %d bytes is over the %d-byte limit' % (size, limit)


def result_bytes(value: object, limit: int) -> Outcome:
    """A handler's return value as the outcome to report."""
    if value is None:
        data = b''
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, str):
        data = value.encode('utf-8', 'surrogateescape')
    else:
        return False, 'handler returned %s, not bytes, str or None' % type(value).__name__
    if len(data) > limit:
        return False, over_limit(len(data), limit)
    return True, data


class Job:
    """A task in a slot: what the handler gets.

    Attributes: ``id``, ``attempt`` (1 for the first), ``name`` (the
    handler's name), ``queue``, ``payload`` (its input: the payload, or its
    parent's result in a pipe), ``args`` (persistent arguments, b'' if
    none), ``headers`` (opaque bytes given at submit), ``parents`` (each
    dependency's name, id, state, result and error), ``timeout_ms``,
    ``soft_timeout_ms``, ``created_ms``, ``max_payload`` (the largest
    result or item it may leave) and ``in_process`` (a process slot).
    """

    def __init__(self, task: Dict[str, Any], max_payload: int, in_process: bool) -> None:
        self.id: int = task['id']
        self.lease: int = task['lease']
        self.attempt: int = task['attempt']
        #  how many times the task was handed out before (releases, lost
        #  workers, a broker restart while it ran): AMQP's redelivered
        self.delivered: int = task['delivered']
        self.name: str = task['name'] or ''
        self.queue: str = task['queue'] or 'default'
        self.payload: bytes = task['payload']
        self.args: bytes = task['args']
        self.headers: bytes = task['headers']
        self.parents: List[Parent] = parents(task['parents'])
        self.timeout_ms: int = task['timeout_ms']
        self.soft_timeout_ms: int = task['soft_timeout_ms']
        self.created_ms: int = task['created_ms']
        self.max_payload = max_payload
        self.in_process = in_process
        self._cancelled = threading.Event()
        # the soft timeout counts from when the task takes its slot; the
        # monotonic clock is the machine's, so a forked child shares it
        self._soft_at = time.monotonic() + self.soft_timeout_ms / 1000.0 \
            if self.soft_timeout_ms else 0.0
        self._emit: Optional[Callable[[Emitted], None]] = None
        self.emitted = 0

    def __repr__(self) -> str:
        return 'Job(id=%d, name=%r, attempt=%d)' % (self.id, self.name, self.attempt)

    @property
    def cancelled(self) -> bool:
        """Whether the broker asked to stop this task (its timeout passed,
        or it was cancelled), or the worker is stopping by force: a handler
        in a thread slot should return soon (nothing is reported for it).
        A process slot is killed instead, so this stays False there."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def soft_timed_out(self) -> bool:
        """Whether the task's soft timeout has passed (``submit(...,
        soft_timeout=S)``): a warning, before the hard timeout stops it,
        that the handler should wrap up. False for a task without one."""
        return bool(self._soft_at) and time.monotonic() >= self._soft_at

    def parent(self, name: str) -> Parent:
        """The dependency of that name in the flow."""
        for p in self.parents:
            if p.name == name:
                return p
        raise KeyError(name)

    def emit(self, queue: str, data: Union[bytes, str], name: Optional[str] = None) -> None:
        """Routing: stages data as a new task for queue (named ``name``,
        default the queue's name, as the broker names an item without one). The broker enqueues staged items in the same
        transaction that stores this task's success, and drops them if the
        attempt ends any other way: an item is never both lost and done."""
        for what, value in (('queue', queue), ('name', name)):
            if value is None and what == 'name':
                continue
            why = codec.check_name(value) if isinstance(value, str) and value else \
                'must be a name (1 to 200 bytes)'
            if not why and len(value.encode('utf-8')) > codec.NAME_MAX:  # type: ignore[union-attr]
                why = 'over the %d-byte limit' % codec.NAME_MAX
            if why:
                raise BadRequest('emit: %s: %s' % (what, why), local=True)
        payload = data.encode('utf-8') if isinstance(data, str) else bytes(data)
        if len(payload) > self.max_payload:
            raise TooLarge('emit: %d bytes, over the %d-byte limit'
                           % (len(payload), self.max_payload), local=True)
        assert self._emit is not None, 'emit outside a worker'
        self._emit({'queue': queue, 'name': name, 'payload': payload})
        self.emitted += 1


async def _settle(awaitable: Any) -> Any:
    return await awaitable


def run_handler(fn: Callable[[Job], Any], job: Job) -> Outcome:
    try:
        value = fn(job)
        if inspect.isawaitable(value):  # an async handler: run to its end here
            value = asyncio.run(_settle(value))
    except BaseException as e:  # noqa: B036 - a handler's SystemExit fails its task too
        return False, error_text(e)
    return result_bytes(value, job.max_payload)


# ---------------------------------------------------------------------
# The report of a process slot.

_E = struct.Struct('<IIQ')
_R = struct.Struct('<Q')
_F = struct.Struct('<I')


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_item(fd: int, item: Emitted) -> None:
    queue = item['queue'].encode('utf-8')
    name = (item['name'] or '').encode('utf-8')
    _write_all(fd, b'E' + _E.pack(len(queue), len(name), len(item['payload'])) + queue + name)
    _write_all(fd, item['payload'])


def write_outcome(fd: int, outcome: Outcome) -> None:
    ok, value = outcome
    if ok:
        assert isinstance(value, bytes)
        _write_all(fd, b'R' + _R.pack(len(value)))
        _write_all(fd, value)
    else:
        text = str(value).encode('utf-8')
        _write_all(fd, b'F' + _F.pack(len(text)) + text)


class Report:
    """A child's report, read as it comes (the parent's side)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.items: List[Emitted] = []
        self.outcome: Optional[Outcome] = None
        self.bad = False

    def feed(self, data: bytes) -> None:
        """Takes bytes read from the pipe; sets ``bad`` on a record that
        breaks the format or the limits."""
        self.buf += data
        while self.buf and not self.bad:
            if self.outcome is not None:
                self.bad = True  # nothing may follow the outcome
                break
            kind = self.buf[0]
            if kind == ord('E'):
                if len(self.buf) < 1 + _E.size:
                    break
                qlen, nlen, size = _E.unpack_from(self.buf, 1)
                if qlen > codec.NAME_MAX or nlen > codec.NAME_MAX or size > self.limit:
                    self.bad = True
                    break
                end = 1 + _E.size + qlen + nlen + size
                if len(self.buf) < end:
                    break
                at = 1 + _E.size
                try:
                    queue = self.buf[at:at + qlen].decode('utf-8')
                    name = self.buf[at + qlen:at + qlen + nlen].decode('utf-8') or None
                except UnicodeDecodeError:
                    self.bad = True
                    break
                self.items.append({'queue': queue, 'name': name,
                                   'payload': bytes(self.buf[at + qlen + nlen:end])})
            elif kind == ord('R'):
                if len(self.buf) < 1 + _R.size:
                    break
                (size,) = _R.unpack_from(self.buf, 1)
                if size > self.limit:
                    self.bad = True
                    break
                end = 1 + _R.size + size
                if len(self.buf) < end:
                    break
                self.outcome = (True, bytes(self.buf[1 + _R.size:end]))
            elif kind == ord('F'):
                if len(self.buf) < 1 + _F.size:
                    break
                (size,) = _F.unpack_from(self.buf, 1)
                if size > 4 * codec.TEXT_MAX:
                    self.bad = True
                    break
                end = 1 + _F.size + size
                if len(self.buf) < end:
                    break
                self.outcome = (False, codec.clean_text(
                    bytes(self.buf[1 + _F.size:end]).decode('utf-8', 'replace')))
            else:
                self.bad = True
                break
            del self.buf[:end]

    def take_items(self) -> List[Emitted]:
        items, self.items = self.items, []
        return items
