"""The blocking client: submit tasks and flows, wait for them, look at and
change what the broker holds.

One ``Client`` is one ZeroMQ DEALER socket connected to the broker, with a
random routing id of its own: that identity is the client's result
channel, so the reports of the tasks it watches come back to it. Everything
happens on the caller's thread, inside the call that waits on the socket;
there is no background thread. A client is not thread-safe (use one per
thread; using one from two threads at once raises RuntimeError) and
belongs to the process that made it.

Watching. Each watched task is reported exactly once, by ``wait``,
``wait_all``, ``as_done``, ``wait_flow`` or ``next_done``. Watches live in
the broker's memory only, so while the client has watched ids without a
report it keeps them alive by itself, from inside whichever call is
waiting: it pings the broker every ``rewatch`` seconds and sends WATCH
again for every outstanding id when the broker's epoch changes (it
restarted) or when nothing at all has arrived for a whole interval (a DONE
may have been lost); the duplicates that causes are dropped. A wait
survives a broker restart; a broker that stays silent for ``timeout``
seconds while a wait goes on raises ``Unreachable`` (the ids stay watched:
calling again goes on waiting).

    from arbiter import Client
    c = Client()                                   # $ARBITER_BROKER or 127.0.0.1:7700
    t = c.submit("resize", b"cat.png", retries=3)
    print(c.wait(t).result)
"""

from __future__ import annotations

import functools
import threading
import os
import time
from typing import (Any, Callable, Dict, Generator, Iterable, Iterator, List, Optional,
                    Sequence, TypeVar, Union, cast)

import zmq

from . import calls, codec, flows
from .calls import Request
from .codec import Message, MsgType
from .errors import (ArbiterError, BrokerError, NotFound, ProtocolError, Refused, Timeout,
                     Unreachable, WaitTimeout)
from .records import (Change, Done, FlowResult, FlowSubmitted, FlowTask, Limit, Peeked, Pong,
                      Schedule, State, Stats, Submitted, TaskInfo)
from .session import (Handshake, Session, curve_keys, endpoint_error, endpoint_of, keepalive,
                      routing_id, secure)
from .spec import Data, Seconds, When, refuse, task_spec

T = TypeVar('T')
F = TypeVar('F', bound=Callable[..., Any])
RECV_BATCH = 256  # messages received per wake-up before timers run again
TaskIds = Union[int, Iterable[int]]
StateArg = Union[State, int, str, None]
FlowId = Union[int, str]


def flow_id(flow: FlowId) -> int:
    """A flow's id from an int or the CLI's "flow:7"."""
    if isinstance(flow, str):
        text = flow[5:] if flow.startswith('flow:') else flow
        if not text.isdigit() or int(text) == 0:
            raise ValueError('%r is not a flow id (flow:N)' % flow)
        return int(text)
    if isinstance(flow, bool) or not isinstance(flow, int) or flow <= 0:
        raise ValueError('%r is not a flow id' % (flow,))
    return flow


def _ids(tasks: TaskIds) -> List[int]:
    if isinstance(tasks, int):
        return [tasks]
    return calls.task_ids(tasks)


def _exclusive(method: F) -> F:
    """Refuses a call from a second thread, or from a forked child, while
    the client is someone else's: a ZeroMQ socket is not thread-safe."""
    @functools.wraps(method)
    def wrapper(self: 'Client', *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != self._pid:
            raise RuntimeError('this Client was made in process %d; make one per process'
                               % self._pid)
        if not self._lock.acquire(blocking=False):
            raise RuntimeError('a Client is used by one thread at a time; make one per thread')
        try:
            return method(self, *args, **kwargs)
        finally:
            self._lock.release()
    return cast(F, wrapper)


class Client:
    """A connection to the broker, for submitting, waiting, looking and
    changing.

    endpoint: the broker (default $ARBITER_BROKER, else
    tcp://127.0.0.1:7700). timeout: seconds each request waits for its
    reply (also how long a wait tolerates a silent broker). rewatch:
    seconds between keep-alives of watches. max_payload: the largest
    payload ``submit`` takes (match the broker's --max-payload). cert and
    broker_key: for a broker that runs with --curve, this peer's secret
    certificate and the broker's public key or broker.cert file (default
    $ARBITER_CERT and $ARBITER_BROKER_KEY; ``session.curve_keys``).

    Never blocks on construction and never waits for the broker until a
    call needs it. Use it as a context manager, or ``close`` it.
    """

    def __init__(self, endpoint: Optional[str] = None, *, timeout: float = 5.0,
                 rewatch: float = 2.0, max_payload: int = codec.PAYLOAD_DEFAULT_MAX,
                 context: Optional[zmq.Context] = None,  # type: ignore[type-arg]
                 cert: Optional[str] = None, broker_key: Optional[str] = None) -> None:
        if timeout <= 0 or rewatch <= 0:
            raise ValueError('timeout and rewatch are seconds, above 0')
        self.endpoint = endpoint_of(endpoint)
        self.timeout = float(timeout)
        self.max_payload = max_payload
        self._pid = os.getpid()
        self._lock = threading.Lock()
        keys = curve_keys(cert, broker_key)  # ValueError before anything is made
        self._context = context or zmq.Context.instance()
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, routing_id(b'c'))
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
        keepalive(sock)
        secure(sock, keys)
        # before it connects: a refusal of the first attempt is seen too
        self._handshake = Handshake(sock, keys is not None)
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as e:
            self._handshake.close()
            sock.close(0)
            raise endpoint_error(self.endpoint, e) from None
        self._sock: Optional[zmq.Socket] = sock  # type: ignore[type-arg]
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._handshake.events, zmq.POLLIN)
        self._refused = False  # a call raised Refused: the next ones ask the watcher first
        self._session = Session(self._send_own, rewatch)

    # -- life --

    def close(self) -> None:
        """Closes the socket at once: requests still queued are dropped."""
        if self._sock is not None:
            self._handshake.close()
            self._sock.close(0)
            self._sock = None

    def __enter__(self) -> 'Client':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return 'Client(%r)' % self.endpoint

    @property
    def watching(self) -> int:
        """Watched tasks not reported yet."""
        return len(self._session.watchlist.watched)

    # -- I/O --

    def _socket(self) -> 'zmq.Socket[Any]':
        if self._sock is None:
            raise ArbiterError('the client is closed')
        return self._sock

    def _send_own(self, msg: Message) -> bool:
        """Sends a keep-alive request of the watchlist's; never blocks."""
        try:
            self._socket().send_multipart(codec.encode(msg), flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _io(self, deadline: float) -> None:
        """Runs the keep-alive if due, waits until a message comes, the
        deadline (time.monotonic) passes, a timer of ours falls due or the
        handshake watcher has news, and files what came (up to a batch).
        Raises Refused if the broker refused our handshake."""
        session = self._session
        watchlist = session.watchlist
        now = time.monotonic()
        watchlist.tick(now, self.timeout)
        until = min(deadline, watchlist.tick_due())
        # a wait must wake when a probe has gone unanswered too long
        if watchlist.probe_at:
            due = watchlist.probe_at + self.timeout
            if now < due < until:
                until = due
        sock = self._socket()
        wait_ms = None if until == float('inf') else max(0, int((until - now) * 1000) + 1)
        # the handshake's events are read only here, while a call waits: a
        # broker that refused us ends the wait at once, not at the timeout
        self._check_refused()
        ready = dict(self._poller.poll(wait_ms))
        if self._handshake.events in ready and sock not in ready:
            refusal = self._handshake.refusal()
            if refusal is not None:
                raise self._refuse(refusal)
        if sock not in ready:
            return
        for _ in range(RECV_BATCH):
            try:
                parts = sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            session.file(parts)

    def _request(self, req: Request) -> Dict[str, Any]:
        """Sends a request and waits for its reply's body."""
        session = self._session
        msg = Message(req.type, session.next_reqid(), req.body)
        frames = codec.encode(msg, self.max_payload)  # refuses what the broker would
        # after a refusal, libzmq may not try again (ZAP's 400 ends the
        # connection for good) and a send may wait the whole timeout for
        # one: asked again before anything is sent
        self._check_refused()
        session.expect(msg)
        try:
            try:
                self._socket().send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                # no connection takes it: a refused handshake leaves none
                self._refused = True
                self._check_refused()
                self._socket().send_multipart(frames)
        except zmq.Again:
            session.abandon(msg.reqid)
            raise Unreachable('cannot send to broker %s within %.1f s (send queue full)'
                              % (self.endpoint, self.timeout)) from None
        except Refused:
            session.abandon(msg.reqid)
            raise
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                reply = session.take_reply(msg.reqid, req.type)
            except ArbiterError:
                session.watchlist.settle()
                raise
            if reply is not None:
                return reply.body
            if time.monotonic() >= deadline:
                session.abandon(msg.reqid)
                raise self._timeout(req)
            try:
                self._io(deadline)
            except Refused:
                session.abandon(msg.reqid)
                raise

    def _refuse(self, refusal: str) -> Refused:
        self._refused = True
        return Refused('broker %s refused the connection: %s' % (self.endpoint, refusal))

    def _check_refused(self) -> None:
        """After a refusal (only then: nothing is read otherwise), raises
        Refused again while no handshake has succeeded since."""
        if self._refused:
            refusal = self._handshake.refusal()
            if refusal is not None:
                raise self._refuse(refusal)
            self._refused = False

    def _silent(self) -> Unreachable:
        """A broker that did not answer, with why if its handshakes failed."""
        failure = self._handshake.failure()
        return Unreachable('broker %s did not answer within %.1f s%s'
                           % (self.endpoint, self.timeout, ': ' + failure if failure else ''))

    def _timeout(self, req: Request) -> Unreachable:
        unreached = self._handshake.unreached(self.endpoint, self.timeout)
        if unreached is not None:
            return Unreachable(unreached)  # nothing reached a broker: no outcome unknown
        if self._handshake.failure() is not None:
            return self._silent()  # it never reached the broker
        if req.type is MsgType.SUBMIT:
            return Timeout('submit not acknowledged within %.1f s (broker %s): outcome unknown; '
                           're-submit with the same key to be safe' % (self.timeout, self.endpoint))
        if req.changes:
            return Timeout('broker %s did not answer %s within %.1f s: outcome unknown'
                           % (self.endpoint, req.type.name, self.timeout))
        return self._silent()

    def _drive(self, call: Generator[Request, Dict[str, Any], T]) -> T:
        """Runs a call (calls.py): each request it yields, sent and answered."""
        try:
            req = next(call)
            while True:
                try:
                    reply = self._request(req)
                except BrokerError as e:
                    calls.python_words(e)
                    raise
                req = call.send(reply)
        except StopIteration as stop:
            return cast(T, stop.value)

    # -- submitting --

    @_exclusive
    def ping(self) -> Pong:
        """Asks the broker for its version and epoch (start count)."""
        return self._drive(calls.ping())

    @_exclusive
    def submit(self, name: str, payload: Optional[Data] = None, *, watch: bool = False,
               queue: Optional[str] = None, key: Optional[str] = None, priority: int = 0,
               retries: int = 0, backoff: Optional[str] = None, no_jitter: bool = False,
               delay: Optional[Seconds] = None, at: Optional[When] = None,
               timeout: Optional[Seconds] = None, soft_timeout: Optional[Seconds] = None,
               retention: Optional[Seconds] = None, expires: Optional[When] = None,
               headers: Optional[bytes] = None, endpoints: Optional[Sequence[str]] = None,
               broadcast: bool = False, allow_unknown_endpoints: bool = False,
               endpoint_timeout: Optional[Seconds] = None,
               args: Optional[Data] = None) -> Submitted:
        """Submits one task for the handler ``name`` and returns its id,
        once the broker has committed it to its journal. payload (and args):
        bytes, str (UTF-8), or another JSON value, sent as its compact JSON
        text.

        The options are ``arbiter submit``'s: queue (default "default");
        key (client key: submitting a known key again returns the first
        task, ``existing`` true, and submits nothing); priority (higher
        first); retries (extra attempts, 0..1000); backoff ("fixed:S" or
        "exp:BASE,CAP", seconds; needs retries) and no_jitter; delay
        (seconds) or at (datetime, Unix seconds or RFC 3339); timeout and
        soft_timeout (seconds; the handler is warned at the soft one);
        retention (seconds the finished task is kept); expires (a time
        after which a task that has not started is dropped); headers
        (opaque bytes handed back on dispatch); endpoints (worker names:
        one copy each) or broadcast (every worker serving the queue), with
        allow_unknown_endpoints and endpoint_timeout; args (persistent
        arguments, beside the input). watch: the broker watches the task
        as part of the submit (``wait`` then needs no WATCH).

        Raises ``Invalid``/``TooLarge``/``BadRequest`` (local) for a value
        the broker would refuse, the broker's refusal, or ``Timeout`` when
        the submit was not acknowledged in time: its outcome is unknown,
        and submitting again with the same key is the safe way to find out.
        """
        spec = task_spec(name, payload, queue=queue, key=key, priority=priority,
                         retries=retries, backoff=backoff, no_jitter=no_jitter, delay=delay,
                         at=at, timeout=timeout, soft_timeout=soft_timeout, retention=retention,
                         expires=expires, headers=headers, endpoints=endpoints,
                         broadcast=broadcast, allow_unknown_endpoints=allow_unknown_endpoints,
                         endpoint_timeout=endpoint_timeout, args=args,
                         max_payload=self.max_payload, what='tasks[0]')
        tasks, _ = self._drive(calls.submit([spec], watch))
        return tasks[0]

    @_exclusive
    def submit_many(self, tasks: Iterable[Dict[str, Any]], *,
                    watch: bool = False) -> List[Submitted]:
        """Submits several tasks in one SUBMIT, all or none. Each task is a
        dict of ``submit``'s arguments: {"name": ..., "payload": ...,
        "retries": 3, ...}. Returns their ids in order."""
        specs = []
        for i, task in enumerate(tasks):
            options = dict(task)
            if 'name' not in options:
                raise refuse('tasks[%d].name' % i, 'a task needs a name')
            specs.append(task_spec(options.pop('name'), options.pop('payload', None),
                                   max_payload=self.max_payload, what='tasks[%d]' % i,
                                   **options))
        submitted, _ = self._drive(calls.submit(specs, watch))
        return submitted

    @_exclusive
    def submit_flow(self, flow: flows.Flow, *, watch: bool = False) -> FlowSubmitted:
        """Submits a DAG, a group or a pipe (``arbiter.flows``: read from a
        file as ``arbiter dag submit`` reads it, or built in Python) as one
        flow, all or none. Returns the flow's id and each task's id by its
        name. The broker refuses a dependency cycle (``Invalid``, naming
        the tasks), a dependency on an unknown task id, an endpoint that is
        not connected."""
        return self._drive(calls.submit_flow(flow.kind, flow.name, flow.specs(self.max_payload),
                                              watch))

    # -- waiting --

    @_exclusive
    def watch(self, tasks: TaskIds) -> None:
        """Watches tasks: each is reported once (``next_done``, ``wait``,
        ...) when it ends, at once if it has ended already. The ids stay
        watched even if the broker does not answer (the keep-alive sends
        them again)."""
        self._drive(calls.watch(_ids(tasks)))

    def _watch_missing(self, ids: Iterable[int]) -> None:
        session = self._session
        missing = [i for i in dict.fromkeys(ids)
                   if i not in session.watchlist.watched and i not in session.reports]
        if missing:
            self._drive(calls.watch(missing))

    def _deadline(self, timeout: Optional[float]) -> float:
        return float('inf') if timeout is None else time.monotonic() + timeout

    def _next_report(self, wanted: Optional[Dict[int, Any]], deadline: float) -> Done:
        """The next report of a wanted id (None: any watched id)."""
        session = self._session
        watchlist = session.watchlist
        while True:
            if wanted is None:
                done = session.take_report()
                if done is not None:
                    return done
            else:
                for id in session.reported():
                    if id in wanted:
                        done = session.take_report(id)
                        assert done is not None
                        return done
            if not watchlist.is_outstanding():
                raise ArbiterError('no watched task is outstanding')
            now = time.monotonic()
            if watchlist.probe_at and now - watchlist.probe_at >= self.timeout:
                watchlist.probe_at = 0.0  # a later call probes again
                raise self._silent()
            if now >= deadline:
                raise WaitTimeout('no report within the time given')
            self._io(deadline)

    @_exclusive
    def next_done(self, timeout: Optional[float] = None) -> Done:
        """The next report of any watched task, in the order they came.
        Raises WaitTimeout after timeout seconds (None: no limit),
        Unreachable if the broker stays silent, ArbiterError if nothing is
        watched."""
        return self._next_report(None, self._deadline(timeout))

    @_exclusive
    def wait(self, task: int, *, timeout: Optional[float] = None) -> Done:
        """Waits until a task has ended and returns its report (state,
        attempts, error, result; ``.check()`` raises unless it succeeded).
        A task the broker does not know comes back with state UNKNOWN.
        Raises WaitTimeout after timeout seconds (the task stays watched),
        Unreachable if the broker stays silent for the client's timeout."""
        id = calls.task_id(task)
        self._watch_missing([id])
        return self._next_report({id: None}, self._deadline(timeout))

    @_exclusive
    def wait_all(self, tasks: Iterable[int], *, timeout: Optional[float] = None) -> List[Done]:
        """Waits for every task; their reports in the order given."""
        ids = calls.task_ids(tasks)
        reports: Dict[int, Done] = {}
        deadline = self._deadline(timeout)
        self._watch_missing(ids)
        wanted = dict.fromkeys(ids)
        while wanted:
            done = self._next_report(wanted, deadline)
            del wanted[done.id]
            reports[done.id] = done
        return [reports[i] for i in ids]

    @_exclusive
    def _watch_exclusive(self, ids: List[int]) -> None:
        self._watch_missing(ids)

    @_exclusive
    def _next_exclusive(self, wanted: Dict[int, Any], deadline: float) -> Done:
        return self._next_report(wanted, deadline)

    def as_done(self, tasks: Iterable[int], *,
                timeout: Optional[float] = None) -> Iterator[Done]:
        """Yields each task's report as it ends, in the order they end."""
        ids = calls.task_ids(tasks)
        deadline = self._deadline(timeout)
        self._watch_exclusive(ids)
        wanted: Dict[int, Any] = dict.fromkeys(ids)
        while wanted:
            done = self._next_exclusive(wanted, deadline)
            del wanted[done.id]
            yield done

    @_exclusive
    def flow_tasks(self, flow: FlowId) -> List[TaskInfo]:
        """Every task of a flow in id order, as ``status`` tells them (their
        name in the flow in ``ref``). The copies of its fan-out tasks and
        the tasks its tasks emitted are among them (``origin`` set, or no
        ``ref``)."""
        return self._drive(calls.flow_tasks(flow_id(flow)))

    def wait_flow(self, flow: FlowId, *, timeout: Optional[float] = None) -> FlowResult:
        """Waits until every task of a flow has ended (those it was
        submitted with: not fan-out copies or emitted tasks) and returns
        them in the flow's order, each with its name and report.
        ``.ok``: every task succeeded or was skipped. Raises NotFound for a
        flow without tasks (none, or past their retention)."""
        number = flow_id(flow)
        tasks = [t for t in self.flow_tasks(number) if not t.origin and t.ref]
        if not tasks:
            raise NotFound('flow:%d: no such flow' % number, local=True)
        reports = {d.id: d for d in self.as_done([t.id for t in tasks], timeout=timeout)}
        return FlowResult(number, [FlowTask(cast(str, t.ref), t.name, reports[t.id])
                                   for t in tasks])

    # -- looking --

    @_exclusive
    def status(self, task: int) -> TaskInfo:
        """What the broker knows of a task: state, times, worker, error,
        result, every attempt, a fan-out task's responses, its flow. Raises
        NotFound for a task it does not know."""
        info = self._drive(calls.status([calls.task_id(task)]))[0]
        if not info.found:
            raise calls.not_found([info.id])
        return info

    @_exclusive
    def status_many(self, tasks: Iterable[int]) -> List[TaskInfo]:
        """``status`` of several tasks, in the order given; one the broker
        does not know has ``found`` false."""
        return self._drive(calls.status(calls.task_ids(tasks)))

    @_exclusive
    def list(self, *, state: StateArg = None, queue: Optional[str] = None,
             flow: Optional[FlowId] = None, limit: int = 1000,
             newest: bool = False) -> 'List[TaskInfo]':
        """Tasks that match state, queue and flow (None: any), lowest ids
        first (newest: highest first), at most limit (0: every one), paged
        from the broker. Without result and history (``status`` has them).
        The state is one a task rests in: ``failed`` raises Invalid (a
        failed attempt leaves its task scheduled for a retry, or dead)."""
        tasks, _ = self._drive(calls.list_tasks(state, queue, flow_id(flow) if flow else 0,
                                                limit, newest))
        return tasks

    @_exclusive
    def stats(self) -> Stats:
        """Per queue the tasks in each state, per worker its slots and load,
        and what the broker did since it started."""
        return self._drive(calls.stats())

    @_exclusive
    def peek(self, queue: str, n: int = 10) -> 'List[Peeked]':
        """The next n ready tasks of a queue (1..1000), in the order workers
        would get them, without taking them."""
        return self._drive(calls.peek(queue, n))

    # -- changing --

    @_exclusive
    def cancel(self, tasks: Optional[TaskIds] = None, *, queue: Optional[str] = None,
               group: Optional[str] = None, flow: Optional[FlowId] = None) -> Change:
        """Cancels tasks (ids), or every unfinished task of a queue, of the
        groups of a name, or of a flow (one of them). A running task is
        stopped on its worker. Per id: code 0 cancelled, 404 unknown, 409
        finished already (a no-op). A group or flow that does not exist
        raises NotFound (nothing is cancelled)."""
        return self._drive(calls.cancel(tasks, queue, group, flow_id(flow) if flow else 0))

    @_exclusive
    def retry(self, tasks: Optional[TaskIds] = None, *, queue: Optional[str] = None,
              flow: Optional[FlowId] = None, group: Optional[str] = None) -> Change:
        """Gives dead tasks a new round of attempts: the ids, every dead
        task of a queue, or those of a flow or of the groups of a name that
        died on their own (what died of them waits for them again)."""
        return self._drive(calls.retry(tasks, queue, flow_id(flow) if flow else 0, group))

    @_exclusive
    def delete(self, tasks: Optional[TaskIds] = None, *, state: StateArg = None,
               queue: Optional[str] = None, older_than: Optional[Seconds] = None) -> Change:
        """Removes finished tasks from the journal: the ids, or every
        finished task that matches state, queue and older_than (seconds
        since it finished), asked in bounded steps until none is left."""
        return self._drive(calls.delete(tasks, state, queue, older_than))

    @_exclusive
    def pause(self, queue: str) -> None:
        """Stops handing out the queue's tasks (running ones go on)."""
        self._drive(calls.queue_op(queue, 'pause'))

    @_exclusive
    def resume(self, queue: str) -> None:
        """Hands out the queue's tasks again."""
        self._drive(calls.queue_op(queue, 'resume'))

    @_exclusive
    def purge(self, queue: str) -> int:
        """Cancels every task of the queue that is not running; returns how
        many."""
        return self._drive(calls.queue_op(queue, 'purge'))

    @_exclusive
    def configure_queue(self, queue: str, *, max_running: Optional[int] = None,
                        rate_per_sec: Optional[int] = None, retention: Optional[Seconds] = None,
                        on_failure: Optional[str] = None, max_ready: Optional[int] = None,
                        max_ready_bytes: Optional[int] = None,
                        overflow: Optional[str] = None) -> None:
        """Changes the settings given (0 puts one back to its default):
        tasks running at once, starts per second, retention (seconds),
        what a failed attempt does ("retry", "head" or "dead"), and the
        bounds on its ready tasks and their payload bytes, and what a
        submit over them does: "drop-head" (the default) drops the queue's
        oldest ready tasks, "reject" refuses the new ones (they end
        cancelled at once)."""
        self._drive(calls.queue_op(queue, 'set', max_running, rate_per_sec, retention,
                                   on_failure, max_ready, max_ready_bytes, overflow))

    @_exclusive
    def limit(self, name: str, *, max_running: Optional[int] = None,
              rate_per_sec: Optional[int] = None) -> None:
        """Limits the tasks of a name across every queue and worker (0
        removes a limit)."""
        self._drive(calls.limit(name, max_running, rate_per_sec))

    @_exclusive
    def limits(self, name: Optional[str] = None) -> List[Limit]:
        """Every task name with a limit, by name, and how many of its tasks
        run now (or the one named: an empty list if it has none)."""
        return self._drive(calls.limits(name))

    # -- schedules --

    @_exclusive
    def add_schedule(self, name: str, cron: str, payload: Optional[Data] = None, *,
                     task: Optional[str] = None, zone: Optional[str] = None,
                     catch_up: Optional[str] = None, queue: Optional[str] = None,
                     priority: int = 0, retries: int = 0, backoff: Optional[str] = None,
                     no_jitter: bool = False, timeout: Optional[Seconds] = None,
                     soft_timeout: Optional[Seconds] = None,
                     retention: Optional[Seconds] = None) -> Schedule:
        """Adds a periodic schedule, kept by the broker: at every slot of the
        cron expression (in zone, default UTC) it submits one task
        (``task``, default the schedule's name) with the key
        schedule:NAME:SLOT_MS, so a slot never makes two. catch_up: what
        slots missed while the broker was down do ("none", "one", "all").
        The broker refuses a bad expression or zone (Invalid), a known name
        (Conflict)."""
        template = calls.schedule_template(
            name, cron, task, cast(Optional[bytes], payload), zone, catch_up, queue, priority,
            retries, backoff, no_jitter, timeout, soft_timeout, retention)
        return self._drive(calls.schedule('add', name, template))[0]

    @_exclusive
    def schedules(self, name: Optional[str] = None) -> 'List[Schedule]':
        """Every schedule by name (or the one named)."""
        return self._drive(calls.schedule('list', name))

    @_exclusive
    def remove_schedule(self, name: str) -> Schedule:
        """Deletes a schedule (not the tasks it made)."""
        return self._drive(calls.schedule('remove', name))[0]

    @_exclusive
    def pause_schedule(self, name: str) -> Schedule:
        """No slot of the schedule fires until resumed."""
        return self._drive(calls.schedule('pause', name))[0]

    @_exclusive
    def resume_schedule(self, name: str) -> Schedule:
        """Fires again from the first slot after now."""
        return self._drive(calls.schedule('resume', name))[0]


__all__ = ['Client', 'flow_id', 'ProtocolError']
