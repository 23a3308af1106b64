"""The asyncio client: ``Client``'s calls as coroutines, over zmq.asyncio.

    from arbiter.aio import AsyncClient

    async def main():
        async with AsyncClient() as c:
            t = await c.submit("resize", b"cat.png", retries=3)
            print((await c.wait(t)).result)

It shares everything but the waiting with ``Client``: the calls
(calls.py), the session and its watchlist (session.py, watchlist.py: each
watched task reported exactly once, watches kept alive across broker
restarts), the checks of every option. One task of the event loop reads
the socket and runs the keep-alive while anything waits; so several
coroutines may call one AsyncClient at once (each request has its own id),
and the replies and reports find their callers. It belongs to one event
loop, and to the process that made it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Generator, Iterable, List, Optional, Sequence, TypeVar, cast

import zmq
import zmq.asyncio

from . import calls, codec, flows
from .calls import Request
from .client import FlowId, StateArg, TaskIds, _ids, flow_id
from .codec import Message, MsgType
from .errors import (ArbiterError, BrokerError, NotFound, Refused, Timeout, Unreachable,
                     WaitTimeout)
from .records import (Change, Done, FlowResult, FlowSubmitted, FlowTask, Peeked, Pong, Stats,
                      Submitted, TaskInfo)
from .session import (Handshake, Session, curve_keys, endpoint_error, endpoint_of, keepalive,
                      routing_id, secure)
from .spec import Data, Seconds, When, refuse, task_spec

T = TypeVar('T')


class AsyncClient:
    """``Client`` for asyncio: the same arguments, the same calls as
    coroutines (``submit``, ``submit_many``, ``submit_flow``, ``wait``,
    ``wait_all``, ``wait_flow``, ``next_done``, ``status``,
    ``status_many``, ``list``, ``flow_tasks``, ``cancel``, ``retry``,
    ``delete``, ``stats``, ``peek``, ``ping``, ``watch``), with the same
    exceptions."""

    def __init__(self, endpoint: Optional[str] = None, *, timeout: float = 5.0,
                 rewatch: float = 2.0, max_payload: int = codec.PAYLOAD_DEFAULT_MAX,
                 context: Optional[zmq.asyncio.Context] = None,
                 cert: Optional[str] = None, broker_key: Optional[str] = None) -> None:
        if timeout <= 0 or rewatch <= 0:
            raise ValueError('timeout and rewatch are seconds, above 0')
        self.endpoint = endpoint_of(endpoint)
        self.timeout = float(timeout)
        self.max_payload = max_payload
        keys = curve_keys(cert, broker_key)  # ValueError before anything is made
        self._context = context or zmq.asyncio.Context.instance()
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, routing_id(b'c'))
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        keepalive(sock)
        secure(sock, keys)
        self._handshake = Handshake(sock, keys is not None)  # before it connects
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as e:
            self._handshake.close()
            sock.close(0)
            raise endpoint_error(self.endpoint, e) from None
        self._sock: Optional[zmq.asyncio.Socket] = sock
        self._poller = zmq.asyncio.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._handshake.events, zmq.POLLIN)
        # why the broker refused our handshake, as the reader last saw it;
        # while set, calls ask the watcher again before they send or wait
        self._refused: Optional[str] = None
        self._session = Session(self._send_own, rewatch)
        self._changed = asyncio.Event()  # set when messages were filed
        self._reader: Optional[asyncio.Task[None]] = None
        self._waiters = 0  # coroutines waiting on the socket

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._close_socket()

    def _close_socket(self) -> None:
        """The socket's end, without the loop: for a client whose event loop
        has ended (its reader task ended with it)."""
        self._reader = None
        if self._sock is not None:
            self._handshake.close()
            self._sock.close(0)
            self._sock = None

    async def __aenter__(self) -> 'AsyncClient':
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def watching(self) -> int:
        return len(self._session.watchlist.watched)

    # -- I/O: one reader task files what comes and runs the keep-alive --

    def _socket(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            raise ArbiterError('the client is closed')
        return self._sock

    def _send_own(self, msg: Message) -> bool:
        try:
            self._socket().send_multipart(codec.encode(msg), flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    async def _read(self) -> None:
        sock = self._socket()
        watchlist = self._session.watchlist
        while self._waiters:
            now = time.monotonic()
            watchlist.tick(now, self.timeout)
            wait = min(watchlist.tick_due() - now, 0.25)  # also notices the last waiter leave
            if watchlist.probe_at:
                wait = min(wait, max(0.0, watchlist.probe_at + self.timeout - now))
            # the handshake's events are read only here, while a call waits
            ready = dict(await self._poller.poll(max(1, int(wait * 1000))))
            if self._handshake.events in ready and sock not in ready:
                self._refused = self._handshake.refusal()
            if sock in ready:
                for _ in range(256):
                    try:
                        parts = await sock.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._session.file(parts)
            self._changed.set()
        self._reader = None

    async def _until(self, ready: Any, deadline: float) -> None:
        """Waits (reading the socket) until ready() or the deadline."""
        self._waiters += 1
        try:
            while not ready() and time.monotonic() < deadline and self._refused is None:
                if self._reader is None:
                    self._reader = asyncio.ensure_future(self._read())
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(),
                                           max(0.0, min(deadline - time.monotonic(), 0.5)))
                except asyncio.TimeoutError:
                    pass
        finally:
            self._waiters -= 1

    def _check_refused(self) -> None:
        """After a refusal (only then: nothing is read otherwise), raises
        Refused while no handshake has succeeded since: libzmq may not try
        again (after ZAP's 400 it does not)."""
        if self._refused is not None:
            self._refused = self._handshake.refusal()
            if self._refused is not None:
                raise Refused('broker %s refused the connection: %s'
                              % (self.endpoint, self._refused))

    async def _request(self, req: Request) -> Dict[str, Any]:
        session = self._session
        msg = Message(req.type, session.next_reqid(), req.body)
        frames = codec.encode(msg, self.max_payload)
        self._check_refused()
        session.expect(msg)
        try:
            self._socket().send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            session.abandon(msg.reqid)
            # a refused handshake leaves no connection to take it
            self._refused = self._handshake.refusal()
            self._check_refused()
            raise Unreachable('cannot send to broker %s (send queue full)' % self.endpoint) \
                from None
        deadline = time.monotonic() + self.timeout
        await self._until(lambda: session.replies.get(msg.reqid) is not None
                          or msg.reqid in session.errors, deadline)
        reply = session.take_reply(msg.reqid, req.type)
        if reply is None:
            session.abandon(msg.reqid)
            self._check_refused()
            unreached = self._handshake.unreached(self.endpoint, self.timeout)
            if unreached is not None:
                raise Unreachable(unreached)  # nothing reached a broker: no outcome unknown
            if req.type is MsgType.SUBMIT:
                raise Timeout('submit not acknowledged within %.1f s (broker %s): outcome '
                              'unknown; re-submit with the same key to be safe'
                              % (self.timeout, self.endpoint))
            if req.changes:
                raise Timeout('broker %s did not answer %s within %.1f s: outcome unknown'
                              % (self.endpoint, req.type.name, self.timeout))
            raise Unreachable('broker %s did not answer within %.1f s'
                              % (self.endpoint, self.timeout))
        return reply.body

    async def _drive(self, call: Generator[Request, Dict[str, Any], T]) -> T:
        try:
            req = next(call)
            while True:
                try:
                    reply = await self._request(req)
                except BrokerError as e:
                    calls.python_words(e)
                    raise
                req = call.send(reply)
        except StopIteration as stop:
            return cast(T, stop.value)

    # -- calls --

    async def ping(self) -> Pong:
        return await self._drive(calls.ping())

    async def submit(self, name: str, payload: Optional[Data] = None, *, watch: bool = False,
                     queue: Optional[str] = None, key: Optional[str] = None, priority: int = 0,
                     retries: int = 0, backoff: Optional[str] = None, no_jitter: bool = False,
                     delay: Optional[Seconds] = None, at: Optional[When] = None,
                     timeout: Optional[Seconds] = None, soft_timeout: Optional[Seconds] = None,
                     retention: Optional[Seconds] = None, expires: Optional[When] = None,
                     headers: Optional[bytes] = None, endpoints: Optional[Sequence[str]] = None,
                     broadcast: bool = False, allow_unknown_endpoints: bool = False,
                     endpoint_timeout: Optional[Seconds] = None,
                     args: Optional[Data] = None) -> Submitted:
        """As ``Client.submit``."""
        spec = task_spec(name, payload, queue=queue, key=key, priority=priority,
                         retries=retries, backoff=backoff, no_jitter=no_jitter, delay=delay,
                         at=at, timeout=timeout, soft_timeout=soft_timeout, retention=retention,
                         expires=expires, headers=headers, endpoints=endpoints,
                         broadcast=broadcast, allow_unknown_endpoints=allow_unknown_endpoints,
                         endpoint_timeout=endpoint_timeout, args=args,
                         max_payload=self.max_payload, what='tasks[0]')
        tasks, _ = await self._drive(calls.submit([spec], watch))
        return tasks[0]

    async def submit_many(self, tasks: Iterable[Dict[str, Any]], *,
                          watch: bool = False) -> List[Submitted]:
        """As ``Client.submit_many``."""
        specs = []
        for i, task in enumerate(tasks):
            options = dict(task)
            if 'name' not in options:
                raise refuse('tasks[%d].name' % i, 'a task needs a name')
            specs.append(task_spec(options.pop('name'), options.pop('payload', None),
                                   max_payload=self.max_payload, what='tasks[%d]' % i,
                                   **options))
        submitted, _ = await self._drive(calls.submit(specs, watch))
        return submitted

    async def submit_flow(self, flow: flows.Flow, *, watch: bool = False) -> FlowSubmitted:
        return await self._drive(calls.submit_flow(flow.kind, flow.name,
                                                   flow.specs(self.max_payload), watch))

    async def watch(self, tasks: TaskIds) -> None:
        await self._drive(calls.watch(_ids(tasks)))

    async def _watch_missing(self, ids: Iterable[int]) -> None:
        session = self._session
        missing = [i for i in dict.fromkeys(ids)
                   if i not in session.watchlist.watched and i not in session.reports]
        if missing:
            await self._drive(calls.watch(missing))

    async def _next_report(self, wanted: Optional[Dict[int, Any]], timeout: Optional[float]
                           ) -> Done:
        session = self._session
        watchlist = session.watchlist
        deadline = float('inf') if timeout is None else time.monotonic() + timeout

        def found() -> Optional[Done]:
            if wanted is None:
                return session.take_report()
            for id in session.reported():
                if id in wanted:
                    return session.take_report(id)
            return None
        while True:
            done = found()
            if done is not None:
                return done
            if not watchlist.is_outstanding():
                raise ArbiterError('no watched task is outstanding')
            now = time.monotonic()
            if watchlist.probe_at and now - watchlist.probe_at >= self.timeout:
                watchlist.probe_at = 0.0
                raise Unreachable('broker %s did not answer within %.1f s'
                                  % (self.endpoint, self.timeout))
            if now >= deadline:
                raise WaitTimeout('no report within the time given')
            self._check_refused()
            await self._until(lambda: any(wanted is None or i in wanted
                                          for i in session.reports)
                              or (watchlist.probe_at != 0.0
                                  and time.monotonic() - watchlist.probe_at >= self.timeout),
                              min(deadline, time.monotonic() + self.timeout))

    async def next_done(self, timeout: Optional[float] = None) -> Done:
        return await self._next_report(None, timeout)

    async def wait(self, task: int, *, timeout: Optional[float] = None) -> Done:
        """As ``Client.wait``."""
        await self._watch_missing([calls.task_id(task)])
        return await self._next_report({calls.task_id(task): None}, timeout)

    async def wait_all(self, tasks: Iterable[int], *,
                       timeout: Optional[float] = None) -> List[Done]:
        ids = calls.task_ids(tasks)
        deadline = None if timeout is None else time.monotonic() + timeout
        await self._watch_missing(ids)
        wanted = dict.fromkeys(ids)
        reports: Dict[int, Done] = {}
        while wanted:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done = await self._next_report(wanted, left)
            del wanted[done.id]
            reports[done.id] = done
        return [reports[i] for i in ids]

    async def status(self, task: int) -> TaskInfo:
        info = (await self._drive(calls.status([calls.task_id(task)])))[0]
        if not info.found:
            raise calls.not_found([info.id])
        return info

    async def status_many(self, tasks: Iterable[int]) -> List[TaskInfo]:
        return await self._drive(calls.status(calls.task_ids(tasks)))

    async def list(self, *, state: StateArg = None, queue: Optional[str] = None,
                   flow: Optional[FlowId] = None, limit: int = 1000,
                   newest: bool = False) -> 'List[TaskInfo]':
        tasks, _ = await self._drive(calls.list_tasks(state, queue, flow_id(flow) if flow else 0,
                                                      limit, newest))
        return tasks

    async def flow_tasks(self, flow: FlowId) -> 'List[TaskInfo]':
        return await self._drive(calls.flow_tasks(flow_id(flow)))

    async def wait_flow(self, flow: FlowId, *, timeout: Optional[float] = None) -> FlowResult:
        number = flow_id(flow)
        tasks = [t for t in await self.flow_tasks(number) if not t.origin and t.ref]
        if not tasks:
            raise NotFound('flow:%d: no such flow' % number, local=True)
        reports = {d.id: d for d in await self.wait_all([t.id for t in tasks], timeout=timeout)}
        return FlowResult(number, [FlowTask(cast(str, t.ref), t.name, reports[t.id])
                                   for t in tasks])

    async def cancel(self, tasks: Optional[TaskIds] = None, *, queue: Optional[str] = None,
                     group: Optional[str] = None, flow: Optional[FlowId] = None) -> Change:
        return await self._drive(calls.cancel(tasks, queue, group, flow_id(flow) if flow else 0))

    async def retry(self, tasks: Optional[TaskIds] = None, *, queue: Optional[str] = None,
                    flow: Optional[FlowId] = None, group: Optional[str] = None) -> Change:
        return await self._drive(calls.retry(tasks, queue, flow_id(flow) if flow else 0, group))

    async def delete(self, tasks: Optional[TaskIds] = None, *, state: StateArg = None,
                     queue: Optional[str] = None, older_than: Optional[Seconds] = None) -> Change:
        return await self._drive(calls.delete(tasks, state, queue, older_than))

    async def stats(self) -> Stats:
        return await self._drive(calls.stats())

    async def peek(self, queue: str, n: int = 10) -> 'List[Peeked]':
        return await self._drive(calls.peek(queue, n))
