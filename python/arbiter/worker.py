"""The worker: takes tasks from the broker and runs them in handler
functions, in thread slots or process slots (a port of worker/arb_worker*.c).

    w = Worker(queues=["images"], slots=4)

    @w.task("resize")
    def resize(job):
        return shrink(job.payload)          # bytes, str or None; raise to fail

    w.run()                                 # until SIGTERM / SIGINT or w.stop()

Threads. ``run`` runs the loop on the calling thread (the "run thread"),
which alone owns the broker socket, the session and the slots. Thread
slots are a pool of ``slots`` threads taking jobs from one queue and
leaving notes for the run thread ("done", "here is an emitted item"),
which it is woken for through a pipe; the run thread and a pool thread
never touch one job at once, except for its cancelled flag. Process slots
fork one child per task, in a process group of its own led by a keeper
(keeper.py: it kills the group when the worker dies, kill -9 included, so
a lost lease's task does not run on beside its rerun): the child runs the
handler, writes its items and outcome to a pipe (job.py) and ``_exit``s,
never touching ZeroMQ; the parent reads the pipe as it fills and watches a
pidfd. A handler in a process slot must return (or raise), not exit.

One loop turn: wait for the broker, the notes, a child, a stop request or
the next timer; take everything that is ready; then send what the turn
produced: EMIT first (the broker must have the items before the RESULT
that commits them), one RESULT for every finished task, one CREDIT for
every freed slot.

Session. REGISTERING (REGISTER sent, with the names of the handlers, so
that the broker sends only tasks this worker runs; a "*" handler takes
any) -> READY (CREDIT: one per free slot). An ERROR 410, or a silence past
the liveness window (the worker's own clock: nothing from the broker, or
the loop stopped; checked before each message is taken; bytes of a
message on its way count, for as long as the largest message may take:
a big DISPATCH on a slow link is not silence), starts a new
session; the tasks still running belong to the old one: the REGISTER
claims them ("held") and they are orphans until the WELCOME says which
ones the broker gave back under a new lease ("adopted"). Those carry on
and report as usual, so a broker restart does not run them twice; the
others are stopped and report nothing. A task that emitted items under its
old lease is not claimed (those items died with the lease). After silence,
and when a REGISTER goes unanswered, the socket is replaced, so that stale
messages queued for a broker that is gone do not pour out when it comes
back, and a worker back from a stop starts none of the DISPATCHes that
waited.

Results. Every outcome is kept until the RESULT_OK that answers its RESULT
after the broker's commit (the REGISTER says ``acks``): sent again when no
answer comes within the liveness window, claimed in the next REGISTER and
sent again under the lease the WELCOME gives. So neither a broker that
dies before its commit nor an outage longer than the liveness window makes
a finished task run twice. While KEPT_MAX results (or KEPT_BYTES) wait for
an answer, the worker gives no credit.

Stopping (SIGINT/SIGTERM when ``run`` is on the main thread, or
``stop()``): the credit is cancelled, running tasks finish and report for
at most ``drain`` seconds, then they are stopped (threads: cancelled flag;
processes: SIGTERM, SIGKILL after ``grace``); a second signal stops them
at once (processes: SIGKILL). Then BYE: the broker gives the unfinished
leases back, no attempt counted, and ``run`` returns.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import queue as queue_module
import signal
import socket as socket_module
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import zmq

from . import codec
from .codec import Message, MsgType
from .errors import (ArbiterError, BrokerError, ProtocolError, Refused, Unreachable,
                     broker_error)
from .job import (Emitted, Fail, Job, Outcome, Report, run_handler, write_item, write_outcome)
from .keeper import keeper_end, keeper_new
from .session import (Handshake, curve_keys, endpoint_error, endpoint_of, keepalive, routing_id,
                      secure)

log = logging.getLogger('arbiter.worker')

Handler = Callable[[Job], Any]

RECV_BURST = 256  # broker messages taken per loop turn
RESULT_ITEMS = 1000  # a RESULT message goes out at this many results
RESULT_BYTES = 32 << 20  # ... or this many result bytes
REGISTER_FIRST = 0.5  # seconds before a REGISTER is sent again; doubles
REGISTER_MAX = 2.0  # up to this (within the broker's recovery window)
FORCE_SLACK = 1.0  # forced stop: extra wait for cancelled thread handlers
UNREACHABLE_AFTER = 2.0  # REGISTER unanswered this long: "cannot reach" is logged
UNREACHABLE_EVERY = 5.0  # and again this often while it lasts
BYE_LINGER_MS = 500  # how long the BYE may take to leave
KEPT_MAX = 10000  # results kept unacknowledged: beyond, no credit is given
KEPT_BYTES = 256 << 20  # ... nor beyond this many result bytes
MESSAGE_TIME = 30.0  # a message on its way counts as the broker's life this long,
#                      and a second more for each MiB of the largest the broker
#                      sends (the C client's ARB_GATHER_MESSAGE_MS)

REGISTERING, READY = 'registering', 'ready'
RUN, DRAIN, FORCE, DONE = 'run', 'drain', 'force', 'done'
MODES = {'thread': 'light', 'process': 'heavy'}

__all__ = ['Worker', 'Job', 'Fail']


class _Kept:
    """A task's outcome, kept until the broker acknowledges it (RESULT_OK,
    after its commit): sent (sent_reqid), or waiting to go (again)."""

    __slots__ = ('id', 'lease', 'outcome', 'error', 'routed', 'result', 'sent_reqid', 'sent_at',
                 'claimed')

    def __init__(self, id: int, lease: int, outcome: int, error: Optional[str], routed: bool,
                 result: bytes) -> None:
        self.id = id
        self.lease = lease  # the one it reports under (a WELCOME may give a new one)
        self.outcome = outcome
        self.error = error
        self.routed = routed  # EMIT items went out under the lease: never claimed
        self.result = result
        self.sent_reqid = 0  # the RESULT that carried it last; 0 waiting to go
        self.sent_at = 0.0
        self.claimed = False  # listed in the REGISTER awaiting its WELCOME


class _Slot:
    """One slot: the task it runs and where its lease stands."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.job: Optional[Job] = None
        self.busy = False
        self.quiet = False  # the lease is over (STOP, forced stop, not taken back): report nothing
        self.ended = False  # the broker ended the task (its STOP): nothing of it is owed
        self.orphan = False  # from an earlier session, claimed in the REGISTER being answered
        self.held: Optional[Outcome] = None  # an orphan that finished: waits for the answer
        self.emitted = False  # items went out under this lease: a new session cannot take it
        self.lease = 0  # the dispatch's, or the one a WELCOME gave back
        self.started = 0.0  # time.monotonic() the task came to it: REGISTER's ran_ms
        # process slots
        self.pid = 0
        self.keeper = 0  # leads the child's process group, its id (keeper.py); 0 if none
        self.report_fd = -1
        self.pidfd = -1
        self.kill_at = 0.0  # time.monotonic(): SIGKILL then; 0 none
        self.report: Optional[Report] = None


class Worker:
    """A worker for the broker at endpoint (default $ARBITER_BROKER, else
    tcp://127.0.0.1:7700).

    queues: the queues it takes tasks from. name: the name fan-out tasks
    address it by (default "host.pid"). slots: how many tasks run at once;
    mode "thread" (a thread per slot) or "process" (a forked process per
    task, killed on a timeout or cancel; "light" and "heavy", arbiter-worker's
    names, say the same). drain: seconds running tasks get to finish when it
    stops; grace: seconds between SIGTERM and SIGKILL of
    a stopped process slot (thread slots: how long a forced stop waits).
    max_payload: the largest result or item in bytes (the broker's limit,
    learnt when registering, applies too). connect_timeout: seconds ``run``
    waits for the broker's first answer before it raises Unreachable (None:
    for ever; once registered, a worker never gives up). cert and
    broker_key: for a broker that runs with --curve, the worker's secret
    certificate (role worker) and the broker's public key or broker.cert
    file (default $ARBITER_CERT and $ARBITER_BROKER_KEY;
    ``session.curve_keys``); checked here, ValueError if unusable.
    """

    def __init__(self, queues: Sequence[str] = ('default',), *, endpoint: Optional[str] = None,
                 name: Optional[str] = None, slots: int = 1, mode: str = 'thread',
                 drain: float = 30.0, grace: float = 5.0,
                 max_payload: int = codec.PAYLOAD_DEFAULT_MAX,
                 connect_timeout: Optional[float] = None,
                 cert: Optional[str] = None, broker_key: Optional[str] = None) -> None:
        if isinstance(queues, str):
            queues = [queues]
        if not queues or len(queues) > codec.CREDIT_QUEUES_MAX:
            raise ValueError('a worker takes tasks from 1 to %d queues' % codec.CREDIT_QUEUES_MAX)
        for q in queues:
            _check_name('queue', q)
        mode = {v: k for k, v in MODES.items()}.get(mode, mode)  # arbiter-worker's names
        if mode not in MODES:
            raise ValueError('mode is "thread" (or "light") or "process" (or "heavy"), not %r'
                             % (mode,))
        if not 1 <= slots <= 1024:
            raise ValueError('slots: 1 to 1024, not %r' % (slots,))
        self.endpoint = endpoint_of(endpoint)
        if '://' not in self.endpoint:  # said at once, as Client() says it
            raise endpoint_error(self.endpoint, ValueError('no scheme'))
        self.queues = list(dict.fromkeys(queues))
        self.host = (socket_module.gethostname() or 'localhost')[:codec.NAME_MAX]
        self.name = name or '%s.%d' % (self.host[:codec.NAME_MAX - 12], os.getpid())
        _check_name('name', self.name)
        self.slots = slots
        self.mode = mode
        self.drain = drain
        self.grace = grace
        self.max_payload = max_payload
        self.connect_timeout = connect_timeout
        self.curve = curve_keys(cert, broker_key)  # a mistake is said now, not in run
        self.handlers: Dict[str, Handler] = {}
        self._stop_requests = 0
        self._lock = threading.Lock()
        self._wake_w = -1
        self._running = False

    # -- configuration --

    def task(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: registers the function as the handler of tasks called
        name ("*": every name without a handler of its own)."""
        def register(fn: Handler) -> Handler:
            self.handle(name, fn)
            return fn
        return register

    def handle(self, name: str, fn: Handler) -> None:
        """Registers fn as the handler of tasks called name ("*": any)."""
        if name != '*':
            _check_name('task name', name)
        if name in self.handlers:
            raise ValueError('task %r has a handler already' % name)
        if name != '*' and len([n for n in self.handlers if n != '*']) >= codec.HANDLES_MAX:
            raise ValueError('a worker has at most %d named handlers' % codec.HANDLES_MAX)
        self.handlers[name] = fn

    def stop(self) -> None:
        """Asks a running worker to stop, as SIGTERM would (a second call
        forces it, as a second signal would). Thread-safe; callable from a
        handler or a signal handler."""
        with self._lock:
            self._stop_requests += 1
        self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b'!')
            except OSError:
                pass  # a full pipe wakes the loop already

    # -- running --

    def run(self) -> None:
        """Runs until ``stop()`` or SIGINT/SIGTERM (handled so when run on
        the main thread). Raises Unreachable if the broker did not answer
        within ``connect_timeout``, Refused (an Unreachable) at once if it
        refused the worker's handshake before it registered (no
        certificate where it wants one, one it does not allow, a wrong
        broker key, a certificate where it runs without --curve), Forbidden
        if it refused to register the worker (its certificate's role is
        not worker or admin), or shut it out while it ran (its certificate
        left the broker's allowed/ or lost its role: its running tasks are
        stopped first, nothing reported)."""
        if not self.handlers:
            raise ValueError('no handler: register one with @worker.task(name)')
        if self._running:
            raise RuntimeError('the worker is running already')
        run = _Run(self)
        self._running = True
        try:
            run.main()
        finally:
            self._running = False
            with self._lock:
                self._stop_requests = 0


def _check_name(what: str, value: object) -> None:
    why = None
    if not isinstance(value, str) or not value:
        why = 'must be a name (1 to %d bytes)' % codec.NAME_MAX
    elif len(value.encode('utf-8', 'surrogatepass')) > codec.NAME_MAX:
        why = 'over the %d-byte limit' % codec.NAME_MAX
    else:
        why = codec.check_name(value)
    if why:
        raise ValueError('%s %r: %s' % (what, value, why))


class _Run:
    """One run of a worker: the loop and everything it owns."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.heavy = worker.mode == 'process'
        self.slots = [_Slot(i) for i in range(worker.slots)]
        self.free: List[int] = list(range(worker.slots - 1, -1, -1))
        self.busy = 0
        self.sock: Optional[zmq.Socket] = None  # type: ignore[type-arg]
        self.context = zmq.Context.instance()
        self.signals = 0
        self.session = REGISTERING
        self.reqid = 0
        self.register_reqid = 0
        self.register_wait = REGISTER_FIRST
        self.register_retry_at = 0.0
        self.unanswered_since = 0.0
        self.unreachable_log_at = 0.0
        self.welcomed = False
        self.gave_up = False
        # the broker's 403 to REGISTER, or its refusal of our handshake
        self.refused: Optional[ArbiterError] = None
        self.handshake: Optional[Handshake] = None  # the socket's handshakes, watched
        self.heartbeat = 1.0
        self.liveness = 5.0
        self.broker_max_payload = 0
        self.last_rx = 0.0
        self.heartbeat_at = 0.0
        self.mark = 0  # the highest mark read in the broker's HEARTBEATs this session
        self.no_marks = False  # the broker refused marks: the next REGISTER goes without
        self.phase = RUN
        self.phase_deadline = 0.0
        self.force_sig = 0
        self.abandoned = False
        self.turn_at = 0.0  # time.monotonic() at the end of the last turn; 0 none yet
        # outcomes kept until the broker acknowledges them, oldest first
        self.kept: Dict[int, _Kept] = {}
        self.kept_bytes = 0
        # what this turn sends
        self.out_emits: List[Message] = []
        self.credit_owed = 0
        # thread slots
        self.jobs: 'queue_module.SimpleQueue[Optional[_Slot]]' = queue_module.SimpleQueue()
        self.notes: Deque[Tuple[_Slot, str, Any]] = collections.deque()
        self.threads: List[threading.Thread] = []
        self.wake_r = -1
        self.old_handlers: Dict[int, Any] = {}

    # -- setup and teardown --

    def main(self) -> None:
        self.wake_r, self.w._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self._signals_on()
            self._connect()
            if not self.heavy:
                for i in range(len(self.slots)):
                    t = threading.Thread(target=self._pool_thread, name='arbiter-slot-%d' % i,
                                         daemon=True)
                    t.start()
                    self.threads.append(t)
            self._register(new_socket=False)
            while self.phase != DONE:
                self._turn()
            ended = sum(1 for slot in self.slots if slot.busy and slot.ended)
            if self.kept or self.busy > ended:
                # the stop could not wait for every acknowledgement
                log.warning('worker: leaving tasks whose end the broker has not acknowledged '
                            'tasks=%d: it runs each again unless its result reached it',
                            len(self.kept) + self.busy - ended)
            if ended:
                log.info('worker: leaving handlers of tasks the broker stopped still running '
                         'tasks=%d (threads cannot be stopped from outside)', ended)
            if self.refused is not None:
                raise self.refused
            if self.gave_up:
                raise Unreachable('cannot reach the broker at %s within %.1f s'
                                  % (self.w.endpoint, self.w.connect_timeout or 0))
            self._flush()
            self._send(Message(MsgType.BYE, self._next_reqid(), {}))
            log.info('worker: stopped name=%s', self.w.name)
        finally:
            self._teardown()

    def _teardown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        if not self.abandoned:
            for t in self.threads:
                t.join(timeout=1.0)
        for slot in self.slots:
            if slot.pid and not self.abandoned:
                try:
                    os.killpg(slot.keeper, signal.SIGKILL)
                    os.waitpid(slot.pid, 0)
                except OSError:
                    pass
                keeper_end(slot.keeper)
                slot.keeper = 0
            for fd in (slot.report_fd, slot.pidfd):
                if fd >= 0:
                    os.close(fd)
            slot.report_fd = slot.pidfd = -1
        if self.handshake is not None:
            self.handshake.close()
            self.handshake = None
        if self.sock is not None:
            self.sock.close(BYE_LINGER_MS)  # the BYE may still be on its way
            self.sock = None
        self._signals_off()
        wake_w, self.w._wake_w = self.w._wake_w, -1  # an abandoned thread must not write to it
        os.close(wake_w)
        os.close(self.wake_r)

    def _signals_on(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may handle signals; stop() still works

        def on_signal(signum: int, frame: object) -> None:
            self.signals += 1
            self.w._wake()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.old_handlers[sig] = signal.signal(sig, on_signal)

    def _signals_off(self) -> None:
        for sig, handler in self.old_handlers.items():
            signal.signal(sig, handler)
        self.old_handlers.clear()

    # -- the socket --

    def _connect(self) -> None:
        sock = self.context.socket(zmq.DEALER)
        # a fresh random identity per socket: the broker must never take a
        # new session for an old one
        sock.setsockopt(zmq.ROUTING_ID, routing_id(bytes((os.urandom(1)[0] | 0x80,))))
        sock.setsockopt(zmq.LINGER, 0)
        # never block the loop: a broker that does not read loses messages
        # (and is soon declared dead) rather than freezing every slot
        sock.setsockopt(zmq.SNDTIMEO, 0)
        keepalive(sock)
        secure(sock, self.w.curve)
        handshake = Handshake(sock, self.w.curve is not None)  # before it connects
        try:
            sock.connect(self.w.endpoint)
        except zmq.ZMQError as e:
            handshake.close()
            sock.close(0)
            raise endpoint_error(self.w.endpoint, e) from None
        if self.handshake is not None:
            self.handshake.close()
        if self.sock is not None:
            self.sock.close(0)
        self.sock = sock
        self.handshake = handshake

    def _next_reqid(self) -> int:
        self.reqid = self.reqid % 0xFFFFFFFF + 1  # 0 is for messages nobody asked for
        return self.reqid

    def _send(self, msg: Message) -> None:
        assert self.sock is not None
        try:
            frames = codec.encode(msg, max(self._limit(), codec.PAYLOAD_DEFAULT_MAX))
        except BrokerError as e:
            # only a process slot's child that broke its own checks gets here
            log.error('worker: not sent type=%s reason=%s', msg.type.name, e)
            return
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning('worker: send failed type=%s (broker not reading)', msg.type.name)

    def _limit(self) -> int:
        """The largest result or item a task may leave: the broker keeps
        nothing bigger (WELCOME tells its limit), and the worker may be
        told less."""
        broker = self.broker_max_payload
        return broker if broker and broker < self.w.max_payload else self.w.max_payload

    # -- what a turn sends --

    def _credit(self, credit: int, with_queues: bool = False, cancel: bool = False) -> None:
        body: Dict[str, Any] = {'sub': 0, 'credit': credit, 'cancel': cancel}
        if with_queues:
            # the first CREDIT of a session names the queues; later ones add credit
            body['queues'] = self.w.queues
        self._send(Message(MsgType.CREDIT, self._next_reqid(), body))

    def _flush(self) -> None:
        """Items before the results that commit them, results before the
        credit, so that a task never finds a slot that is still reporting.
        Results go out only in a session (the broker knows their leases)
        and stay kept until the broker acknowledges them; beyond KEPT_MAX
        (or KEPT_BYTES) of them no credit goes, so that a broker that
        stores nothing cannot make the worker hold results without end."""
        for msg in self.out_emits:
            self._send(msg)
        self.out_emits = []
        if self.session == READY:
            self._send_results()
        if self.credit_owed > 0 and len(self.kept) < KEPT_MAX and self.kept_bytes < KEPT_BYTES:
            self._credit(self.credit_owed)
            self.credit_owed = 0

    def _send_results(self) -> None:
        now = time.monotonic()
        msg: Optional[Message] = None
        size = 0
        for kept in self.kept.values():
            if kept.sent_reqid or kept.claimed:
                continue
            if msg is None:
                msg = Message(MsgType.RESULT, self._next_reqid(), {'results': []})
            msg.body['results'].append({
                'id': kept.id, 'lease': kept.lease, 'outcome': kept.outcome,
                'error': kept.error, 'routed': kept.routed, 'result': kept.result})
            kept.sent_reqid = msg.reqid
            kept.sent_at = now
            size += len(kept.result)
            if len(msg.body['results']) >= RESULT_ITEMS or size >= RESULT_BYTES:
                self._send(msg)
                msg, size = None, 0
        if msg is not None:
            self._send(msg)

    def _discard(self) -> None:
        """A new session begins: the broker no longer knows the leases of
        what this turn would have sent (the results stay kept, to be
        claimed)."""
        self.out_emits = []
        self.credit_owed = 0

    def _keep(self, id: int, lease: int, outcome: int, error: Optional[str] = None,
              routed: bool = False, result: bytes = b'') -> None:
        """Keeps a task's outcome until the broker acknowledges it (it goes
        out with the turn's flush); one kept from an earlier lease of the
        same task is replaced."""
        self._forget(id)
        self.kept[id] = _Kept(id, lease, outcome, error, routed, result)
        self.kept_bytes += len(result)

    def _forget(self, id: int) -> None:
        kept = self.kept.pop(id, None)
        if kept is not None:
            self.kept_bytes -= len(kept.result)

    def _acked(self, reqid: int) -> int:
        """The broker answered RESULT reqid (RESULT_OK after its commit, or
        an ERROR refusing it whole): its outcomes are done with."""
        done = [k.id for k in self.kept.values() if k.sent_reqid == reqid]
        for id in done:
            self._forget(id)
        return len(done)

    # -- slots --

    def _slot_emits(self, slot: _Slot, items: List[Emitted]) -> None:
        """Items a running task staged go out under the slot's current
        lease. An orphan's have no lease the broker knows: they are dropped,
        and the task, no longer complete, is not the broker's to take back."""
        if not items:
            return
        if slot.quiet or slot.orphan or self.session != READY:
            if slot.orphan:
                slot.orphan = False
                slot.quiet = True
            return
        assert slot.job is not None
        slot.emitted = True
        self.out_emits.append(Message(MsgType.EMIT, self._next_reqid(), {'items': [
            dict(item, id=slot.job.id, lease=slot.lease) for item in items]}))

    def _slot_done(self, slot: _Slot, outcome: Outcome) -> None:
        """A task ended in its slot: report it unless its lease is over, and
        free the slot (its credit goes back with the turn's CREDIT)."""
        if slot.orphan:
            slot.held = outcome  # reported, or not, once the broker has answered
            return
        job = slot.job
        assert job is not None
        if not slot.quiet and self.session == READY:
            ok, value = outcome
            if ok:
                assert isinstance(value, bytes)
                self._keep(job.id, slot.lease, 0, routed=slot.emitted, result=value)
            else:
                self._keep(job.id, slot.lease, 1, error=str(value) or 'handler failed',
                           routed=slot.emitted)
        log.debug('worker: task done id=%d ok=%s quiet=%s', job.id, outcome[0], slot.quiet)
        slot.job = None
        slot.busy = slot.quiet = slot.emitted = slot.ended = False
        slot.held = None
        slot.report = None
        self.free.append(slot.index)
        self.busy -= 1
        if self.session == READY and self.phase == RUN:
            self.credit_owed += 1

    def _slot_stop(self, slot: _Slot, sig: int) -> None:
        """Ends a running task's lease on this side: nothing is reported for
        it, and it is asked to stop (thread: flag; process: a signal to its
        group)."""
        slot.quiet = True
        slot.orphan = False
        if slot.held is not None:
            self._slot_done(slot, slot.held)  # it has finished: free the slot
            return
        if not self.heavy:
            assert slot.job is not None
            slot.job.cancel()
        elif sig == signal.SIGKILL or not slot.kill_at:
            self._kill(slot, sig)

    def _find(self, id: int, lease: int) -> Optional[_Slot]:
        for slot in self.slots:
            if slot.busy and slot.job is not None and slot.job.id == id and slot.lease == lease:
                return slot
        return None

    # -- thread slots --

    def _pool_thread(self) -> None:
        while True:
            slot = self.jobs.get()
            if slot is None:
                return
            job = slot.job
            assert job is not None
            outcome = run_handler(self._handler(job.name), job)
            self._note(slot, 'done', outcome)

    def _note(self, slot: _Slot, kind: str, data: Any) -> None:
        self.notes.append((slot, kind, data))
        self.w._wake()

    def _emitter(self, slot: _Slot) -> Callable[[Emitted], None]:
        def emit(item: Emitted) -> None:
            self._note(slot, 'emit', item)
        return emit

    def _take_notes(self) -> None:
        while self.notes:
            slot, kind, data = self.notes.popleft()
            if kind == 'done':
                self._slot_done(slot, data)
            else:
                self._slot_emits(slot, [data])

    def _handler(self, name: str) -> Handler:
        fn = self.w.handlers.get(name) or self.w.handlers.get('*')
        if fn is None:
            def missing(job: Job) -> None:
                raise Fail("no handler for task '%s'" % name)
            return missing
        return fn

    # -- process slots --

    def _launch(self, slot: _Slot) -> None:
        job = slot.job
        assert job is not None
        fn = self._handler(job.name)
        # first the keeper, so that the child is in a guarded group from its
        # first instruction: the worker's death takes the group down
        try:
            slot.keeper = keeper_new()
        except OSError as e:
            self._slot_done(slot, (False, 'worker could not start the task: fork: %s' % e))
            return
        try:
            r, w = os.pipe2(os.O_CLOEXEC)
        except OSError as e:
            keeper_end(slot.keeper)
            slot.keeper = 0
            self._slot_done(slot, (False, 'worker could not start the task: pipe: %s' % e))
            return
        try:
            pid = os.fork()
        except OSError as e:
            os.close(r)
            os.close(w)
            keeper_end(slot.keeper)
            slot.keeper = 0
            self._slot_done(slot, (False, 'worker could not start the task: fork: %s' % e))
            return
        if pid == 0:
            self._child(fn, job, r, w, slot.keeper)
        os.close(w)
        # the child does the same; doing it here too means it is in the
        # group before any STOP can try to kill it
        try:
            os.setpgid(pid, slot.keeper)
        except OSError:
            pass
        os.set_blocking(r, False)
        slot.pid = pid
        slot.report_fd = r
        slot.report = Report(self._limit())
        try:
            slot.pidfd = os.pidfd_open(pid)
        except OSError:
            slot.pidfd = -1  # checked every turn instead
        slot.kill_at = 0.0

    def _child(self, fn: Handler, job: Job, r: int, w: int, keeper: int) -> None:
        """The forked child: in its keeper's process group (the unit a stop
        kills, and the worker's death), default signal actions, the handler, the report, _exit. It never
        touches the parent's ZeroMQ sockets or runs its exit handlers."""
        code = 3
        try:
            os.close(r)
            os.setpgid(0, keeper)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            job._emit = lambda item: write_item(w, item)
            write_outcome(w, run_handler(fn, job))
            code = 0
        except BaseException:  # noqa: B036 - nothing may escape into the parent's code
            code = 3
        finally:
            os._exit(code)

    def _kill(self, slot: _Slot, sig: int) -> None:
        if slot.pid <= 0:
            return
        try:
            os.killpg(slot.keeper, sig)
        except OSError:
            pass
        slot.kill_at = 0.0 if sig == signal.SIGKILL else time.monotonic() + self.w.grace

    def _read_report(self, slot: _Slot) -> None:
        if slot.report_fd < 0 or slot.report is None:
            return
        while True:
            try:
                data = os.read(slot.report_fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                data = b''
            if not data:
                os.close(slot.report_fd)
                slot.report_fd = -1
                break
            slot.report.feed(data)
            if slot.report.bad:
                log.warning('worker: bad report from child pid=%d', slot.pid)
                self._kill(slot, signal.SIGKILL)
                os.close(slot.report_fd)
                slot.report_fd = -1
                break
        self._slot_emits(slot, slot.report.take_items())

    def _exited(self, slot: _Slot) -> bool:
        try:
            info = os.waitid(os.P_PID, slot.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None and info.si_pid != 0

    def _reap(self, slot: _Slot) -> None:
        """The child has exited: kill what it left in its group while the
        keeper still holds the group id, reap them, read the rest of its
        report and finish the task."""
        try:
            os.killpg(slot.keeper, signal.SIGKILL)
        except OSError:
            pass
        status = 0
        while True:
            try:
                _, status = os.waitpid(slot.pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        keeper_end(slot.keeper)
        slot.keeper = 0
        self._read_report(slot)
        for fd in (slot.report_fd, slot.pidfd):
            if fd >= 0:
                os.close(fd)
        slot.report_fd = slot.pidfd = -1
        slot.pid = 0
        slot.kill_at = 0.0
        report = slot.report
        outcome: Outcome
        if report is not None and report.bad:
            outcome = (False, 'bad report from the task\'s process')
        elif report is not None and report.outcome is not None:
            outcome = report.outcome
        elif os.WIFSIGNALED(status):
            outcome = (False, 'killed by signal %d' % os.WTERMSIG(status))
        else:
            outcome = (False, 'exited with status %d without a result'
                       % os.waitstatus_to_exitcode(status))
        self._slot_done(slot, outcome)

    # -- the session --

    def _register(self, new_socket: bool) -> None:
        """Starts a new session: whatever runs now belongs to the old one."""
        self._discard()
        if new_socket:
            self._connect()
        body: Dict[str, Any] = {
            'name': self.w.name, 'mode': MODES[self.w.mode], 'slots': len(self.slots),
            'pid': os.getpid(), 'host': self.w.host, 'held': [],
            'acks': True}  # results stay kept until RESULT_OK
        if not self.no_marks:
            body['marks'] = True  # its HEARTBEAT says the mark it read
        self.no_marks = False  # this REGISTER only: the broker may be upgraded since
        if '*' not in self.w.handlers:
            # the broker then sends only these names; a "*" handler runs any
            body['handles'] = list(self.w.handlers)
        for slot in self.slots:
            if not slot.busy or slot.quiet:
                continue
            if slot.emitted:
                slot.quiet = True
                continue
            assert slot.job is not None
            slot.orphan = True
            # so that its timeout counts from its start, not from the claim
            ran_ms = int((time.monotonic() - slot.started) * 1000)
            body['held'].append({'id': slot.job.id, 'lease': slot.lease, 'ran_ms': ran_ms})
        # and the results not acknowledged: the broker may not have them;
        # a routed one cannot be taken back (its items died with the lease)
        for kept in list(self.kept.values()):
            if kept.routed:
                self._forget(kept.id)
                continue
            kept.claimed = True
            kept.sent_reqid = 0
            body['held'].append({'id': kept.id, 'lease': kept.lease})
        self.register_reqid = self._next_reqid()
        self.session = REGISTERING
        now = time.monotonic()
        self.register_retry_at = now + self.register_wait
        if not self.unanswered_since:
            self.unanswered_since = now
            self.unreachable_log_at = now + UNREACHABLE_AFTER
        self._send(Message(MsgType.REGISTER, self.register_reqid, body))

    def _on_welcome(self, msg: Message) -> None:
        if self.session != REGISTERING or msg.reqid != self.register_reqid:
            return  # answers an earlier REGISTER
        body = msg.body
        self.heartbeat = max(body['heartbeat_ms'], 10) / 1000.0
        liveness = body['liveness_ms'] / 1000.0
        self.liveness = liveness if liveness > self.heartbeat else 3 * self.heartbeat
        self.broker_max_payload = body['max_payload']
        self.session = READY
        self.mark = 0
        self.register_wait = REGISTER_FIRST
        self.unanswered_since = 0.0
        self.welcomed = True
        self.heartbeat_at = time.monotonic() + self.heartbeat
        log.info('worker: registered endpoint=%s name=%s slots=%d epoch=%d taken_back=%d',
                 self.w.endpoint, self.w.name, len(self.slots), body['epoch'],
                 len(body['adopted']))
        if self.phase == RUN:
            self._credit(len(self.free), with_queues=True)
        # the broker's answer to the claim: adopted orphans go on under their
        # new lease (a finished one reports now), adopted results go again
        # under theirs; the rest are no longer ours
        for item in body['adopted']:
            slot = next((s for s in self.slots if s.orphan and s.job is not None
                         and s.job.id == item['id']), None)
            kept = self.kept.get(item['id'])
            if slot is not None:
                slot.orphan = False
                slot.lease = item['lease']
                if slot.held is not None:
                    self._slot_done(slot, slot.held)
            elif kept is not None and kept.claimed:
                kept.claimed = False
                kept.lease = item['lease']
            else:
                # it stopped being complete meanwhile (its items were lost):
                # back to the head of its queue, to run again
                self._keep(item['id'], item['lease'], 2)
        for slot in self.slots:
            if slot.orphan:
                self._slot_stop(slot, signal.SIGTERM)
        for kept in list(self.kept.values()):
            if kept.claimed:
                self._forget(kept.id)

    def _on_error(self, msg: Message) -> None:
        code, reqid = msg.body['code'], msg.reqid
        if code == 410:
            # only the first 410 of a session counts; later ones answer
            # messages sent before the REGISTER already on its way
            if self.session != READY or (reqid != 0 and reqid < self.register_reqid):
                return
            log.info('worker: broker does not know us, registering again')
            self._register(new_socket=False)
            return
        if (code == 400 and reqid == self.register_reqid
                and "'marks'" in msg.body.get('reason', '')):
            # a broker older than marks (400 unknown key): it checks busy by
            # time, as before them (the next REGISTER says marks again: the
            # broker may be upgraded by then)
            log.info('worker: the broker takes no marks (older), registering without')
            self.no_marks = True
            self._register(new_socket=False)
            return
        if code == 403 and reqid == self.register_reqid:
            # its certificate is not a worker's: asking again changes nothing
            log.error('worker: the broker refused to register this worker: %s',
                      msg.body['reason'])
            self.refused = broker_error(code, msg.body['reason'])
            self.phase = DONE
            return
        if code == 403 and self.session == READY:
            # shut out: its certificate no longer allows a worker. The broker
            # gives its tasks to others once it is silent for the liveness
            # window: they stop here now, nothing reported, and run ends
            if self.refused is None:
                log.error('worker: the broker shut this worker out, stopping its tasks: %s',
                          msg.body['reason'])
                self.refused = broker_error(code, msg.body['reason'])
                self.force_sig = signal.SIGKILL
                self._begin_force(signal.SIGKILL)
            return
        if code == 507:
            # the broker's turn was undone and nothing of it stored: the
            # results stay, sent again or claimed with the next REGISTER
            log.warning('worker: broker error code=%d reqid=%d reason=%s results_kept', code,
                        reqid, msg.body['reason'])
            return
        # a RESULT refused whole will never be taken: its outcomes are done
        dropped = self._acked(reqid) if reqid else 0
        log.warning('worker: broker error code=%d reqid=%d reason=%s results_dropped=%d', code,
                    reqid, msg.body['reason'], dropped)

    def _on_dispatch(self, msg: Message) -> None:
        tasks = msg.body['tasks']
        if self.session != READY:
            log.warning('worker: dispatch outside a session dropped tasks=%d', len(tasks))
            return
        for task in tasks:
            if self.phase != RUN or not self.free:
                if self.phase == RUN:
                    log.warning('worker: dispatch beyond credit id=%d', task['id'])
                self._keep(task['id'], task['lease'], 2)  # release: no attempt counted
                continue
            self._forget(task['id'])  # a result kept from an earlier lease is done with
            slot = self.slots[self.free.pop()]
            slot.busy = True
            self.busy += 1
            slot.lease = task['lease']
            slot.started = time.monotonic()
            job = Job(task, self._limit(), self.heavy)
            slot.job = job
            log.debug('worker: task start id=%d name=%s slot=%d', job.id, job.name, slot.index)
            if self.heavy:
                self._launch(slot)
            else:
                job._emit = self._emitter(slot)
                self.jobs.put(slot)

    def _on_stop(self, msg: Message) -> None:
        for item in msg.body['tasks']:
            slot = self._find(item['id'], item['lease'])
            log.debug('worker: stop id=%d reason=%d running=%s', item['id'], item['reason'],
                      slot is not None)
            if slot is not None:
                slot.ended = True
                self._slot_stop(slot, signal.SIGTERM)

    def _recv_broker(self) -> None:
        """Takes up to a burst, so that results and timers still get their
        turn under a flood."""
        assert self.sock is not None
        # the broker sends nothing over its own limit, whatever ours says
        limit = max(self.broker_max_payload, self.w.max_payload)
        for _ in range(RECV_BURST):
            try:
                parts = self.sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            if self._was_silent():
                # stopped while reading: this message and those behind it
                # are the old session's
                log.warning('worker: silent past the liveness window, registering again')
                self._register(new_socket=True)
                break
            self.last_rx = time.monotonic()
            try:
                msg = codec.decode(parts, limit)
            except ProtocolError as e:
                log.warning('worker: malformed message from broker reason=%s', e)
                continue
            if msg.type is MsgType.DISPATCH:
                self._on_dispatch(msg)
            elif msg.type is MsgType.STOP:
                self._on_stop(msg)
            elif msg.type is MsgType.WELCOME:
                self._on_welcome(msg)
            elif msg.type is MsgType.ERROR:
                self._on_error(msg)
            elif msg.type is MsgType.RESULT_OK:
                self._acked(msg.reqid)  # stored or refused after the broker's commit
            elif msg.type is MsgType.HEARTBEAT:
                # its arrival is what counts, and its mark: every lease up
                # to it came before (what the broker checks busy against)
                if self.session == READY:
                    self.mark = max(self.mark, msg.body.get('mark', 0))
            else:
                log.warning('worker: unexpected message type=%s', msg.type.name)

    # -- stopping --

    def _begin_drain(self) -> None:
        log.info('worker: stopping busy=%d drain_s=%.1f', self.busy, self.w.drain)
        self.phase = DRAIN
        self.phase_deadline = time.monotonic() + self.w.drain
        self.credit_owed = 0
        if self.session == READY:
            self._credit(0, cancel=True)

    def _begin_force(self, sig: int) -> None:
        """Stops every running task: SIGTERM (SIGKILL after the grace) when
        the drain time is over, SIGKILL at once on a second request."""
        if self.phase != FORCE:
            #  a warning only when it stops something: run_tasks stops its
            #  worker so at every end
            log.log(logging.WARNING if self.busy else logging.INFO,
                    'worker: stopping running tasks busy=%d', self.busy)
            self.phase = FORCE
            self.phase_deadline = time.monotonic() + self.w.grace + FORCE_SLACK
        for slot in self.slots:
            if slot.busy:
                self._slot_stop(slot, sig)

    def _check_stop(self) -> None:
        with self.w._lock:
            requests = self.signals + self.w._stop_requests
        if requests >= 1 and self.phase == RUN:
            self._begin_drain()
        if requests >= 2 and self.force_sig != signal.SIGKILL:
            self.force_sig = signal.SIGKILL
            self._begin_force(signal.SIGKILL)
        if self.phase in (RUN, DONE):
            return
        # done once nothing runs and the broker has acknowledged every
        # result (while it answers at all)
        acked = not self.kept or self.session != READY or self.refused is not None
        if self.busy == 0 and acked:
            self.phase = DONE
        elif time.monotonic() < self.phase_deadline:
            return
        elif self.busy == 0:
            self.phase = DONE  # the broker has the results, or runs them again
        elif self.phase == DRAIN:
            self.force_sig = signal.SIGTERM
            self._begin_force(signal.SIGTERM)
        else:
            log.error('worker: handlers ignore the stop, leaving them busy=%d', self.busy)
            self.abandoned = True
            self.phase = DONE

    # -- the loop --

    def _give_up_orphans(self) -> None:
        """A stopping worker whose REGISTER goes unanswered stops waiting for
        the broker's answer about its orphans: they finish, or are freed,
        without a report (the broker will run them again)."""
        for slot in self.slots:
            if slot.held is not None:
                self._slot_stop(slot, signal.SIGTERM)
            elif slot.orphan:
                slot.orphan = False
                slot.quiet = True

    def _timers(self) -> None:
        now = time.monotonic()
        if self.session == REGISTERING and self.unanswered_since:
            waited = now - self.unanswered_since
            timeout = self.w.connect_timeout
            if not self.welcomed and timeout is not None and waited >= timeout:
                log.error('worker: cannot reach the broker endpoint=%s, giving up', self.w.endpoint)
                self.gave_up = True
                self.phase = DONE
            elif now >= self.unreachable_log_at:
                # a registered worker reads its handshake events only here
                failure = self.handshake.failure() if self.handshake is not None else None
                log.warning('worker: cannot reach the broker endpoint=%s waited_s=%.1f '
                            '(still trying)%s', self.w.endpoint, waited,
                            ' handshake="%s"' % failure if failure else '')
                self.unreachable_log_at = now + UNREACHABLE_EVERY
        if self.phase == DONE:
            return
        if self.session == READY and now >= self._heard_at(now) + self.liveness:
            log.warning('worker: broker silent for %.1f s, registering again', self.liveness)
            self._register(new_socket=True)
        elif self.session == READY and now >= self.heartbeat_at:
            # every task it holds: running, or its result not acknowledged
            # (the broker checks its leases against it)
            self._send(Message(MsgType.HEARTBEAT, self._next_reqid(),
                               {'busy': self.busy + len(self.kept), 'mark': self.mark}))
            self.heartbeat_at = now + self.heartbeat
        elif self.session == REGISTERING and now >= self.register_retry_at:
            if self.phase != RUN:
                self._give_up_orphans()
            self.register_wait = min(self.register_wait * 2, REGISTER_MAX)
            log.debug('worker: no welcome yet, registering again')
            self._register(new_socket=True)
        if self.session == READY:
            # results whose RESULT, or its answer, went missing go again
            for kept in self.kept.values():
                if kept.sent_reqid and now - kept.sent_at >= self.liveness:
                    kept.sent_reqid = 0
        for slot in self.slots:
            if not self.heavy or not slot.busy or slot.pid <= 0:
                continue
            if slot.kill_at and now >= slot.kill_at:
                self._kill(slot, signal.SIGKILL)
            if slot.pidfd < 0 and self._exited(slot):
                self._reap(slot)

    def _timeout(self) -> float:
        """Seconds until the next timer is due."""
        now = time.monotonic()
        nxt = now + 3600.0
        if self.session == READY:
            nxt = min(nxt, self.heartbeat_at, self._heard_at(now) + self.liveness)
            sent = [k.sent_at for k in self.kept.values() if k.sent_reqid]
            if sent:
                nxt = min(nxt, min(sent) + self.liveness)
        else:
            nxt = min(nxt, self.register_retry_at, self.unreachable_log_at)
            if self.w.connect_timeout is not None and not self.welcomed:
                nxt = min(nxt, self.unanswered_since + self.w.connect_timeout)
        if self.phase != RUN:
            nxt = min(nxt, self.phase_deadline)
        for slot in self.slots:
            if slot.busy and slot.kill_at:
                nxt = min(nxt, slot.kill_at)
            if slot.busy and slot.pid > 0 and slot.pidfd < 0:
                nxt = min(nxt, now + 0.1)
        return max(0.0, nxt - now)

    def _turn(self) -> None:
        assert self.sock is not None
        items: List[Tuple[Any, int]] = [(self.sock, zmq.POLLIN), (self.wake_r, zmq.POLLIN)]
        # the handshake's events, read only when they come and only until the
        # first WELCOME (_check_refused): a registered worker's turns poll
        # nothing more
        events = (self.handshake.events
                  if self.handshake is not None and not self.welcomed else None)
        if events is not None:
            items.append((events, zmq.POLLIN))
        fds: Dict[int, _Slot] = {}
        for slot in self.slots:
            for fd in (slot.report_fd, slot.pidfd):
                if slot.busy and fd >= 0:
                    items.append((fd, zmq.POLLIN))
                    fds[fd] = slot
        try:
            ready: Dict[Any, int] = dict(zmq.zmq_poll(items, int(self._timeout() * 1000) + 1))
        except zmq.ZMQError as e:
            if e.errno != errno.EINTR:
                raise
            ready = {}
        if self._was_silent():
            # before anything received meanwhile runs: a new session on a new
            # socket, and what waited in the old one goes with it
            log.warning('worker: silent past the liveness window, registering again')
            self._register(new_socket=True)
            ready.pop(items[0][0], None)
            events = None  # the old socket's watcher went with it
        if ready.get(self.sock):
            self._recv_broker()
        if events is not None and ready.get(events) and self.handshake is not None:
            self._check_refused(self.handshake.refusal())
        if ready.get(self.wake_r):
            try:
                while os.read(self.wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        self._take_notes()
        for fd, slot in fds.items():
            if not ready.get(fd) or not slot.busy:
                continue
            if fd == slot.report_fd:
                self._read_report(slot)
            elif fd == slot.pidfd:
                self._reap(slot)
        self._timers()
        self._check_stop()
        self._flush()
        self.turn_at = time.monotonic()

    def _check_refused(self, refusal: Optional[str]) -> None:
        """Before the first WELCOME, a broker that refused our handshake
        (a refusal trying again will not mend) ends the run, as a 403 to
        REGISTER does: waiting longer would change nothing. Once
        registered, the worker goes on trying."""
        if refusal is None or self.welcomed or self.phase == DONE:
            return
        log.error('worker: the broker refused the connection, giving up endpoint=%s '
                  'handshake="%s"', self.w.endpoint, refusal)
        self.refused = Refused('broker %s refused the connection: %s'
                               % (self.w.endpoint, refusal))
        self.phase = DONE

    def _heard_at(self, now: float) -> float:
        """When the broker was last heard: its last whole message, or the
        last bytes the kernel took on the connection, while a message may
        still be on its way. libzmq hands on whole messages only, so a
        DISPATCH slower than the liveness window on a slow link (the
        heartbeats wait behind it) looked like silence: the worker
        registered again, and the DISPATCH went with the old socket, each
        time it was sent. A message may take MESSAGE_TIME, and a second a
        MiB of the largest the broker sends (twice its payload limit and
        1 MiB), as in the C client; past that its bytes are no sign of
        life (a peer trickling one for ever)."""
        heard = self.last_rx
        if now - heard < self.liveness or self.handshake is None:
            return heard
        largest = 2 * max(self.broker_max_payload, self.w.max_payload) + (1 << 20)
        if now - heard > self.liveness + MESSAGE_TIME + largest / (1 << 20):
            return heard
        ago = self.handshake.data_ago()
        return max(heard, now - ago) if ago is not None else heard

    def _was_silent(self) -> bool:
        """Whether the worker was silent past the liveness window by its own
        clock: nothing came from the broker for that long, or the worker did
        not run for that long (stopped; a turn never sleeps longer than a
        heartbeat in a session). The broker has given it up, or will soon,
        and what waits in its socket was sent to that session: the tasks it
        dispatched go to others, or back as lost leases."""
        now = time.monotonic()
        return (self.session == READY and self.phase != DONE
                and (now - self._heard_at(now) >= self.liveness
                     or (self.turn_at > 0 and now - self.turn_at >= self.liveness)))
