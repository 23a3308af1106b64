"""What the broker tells, as typed records: a task's state and report, its
status, a queue's and a worker's statistics, a schedule.

Fields keep the protocol's names (proto/PROTOCOL.md, "task_info" and the
others), so the wire documentation is their documentation too. Times are
Unix milliseconds (``*_ms``, 0: not set), durations milliseconds, states
``State`` values, bytes ``bytes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from .errors import TaskFailed


class State(enum.IntEnum):
    """A task's state (the protocol's numbers). ``UNKNOWN`` is the client's
    own: a watched id the broker knows nothing about (it never existed, or
    its retention ran out)."""

    UNKNOWN = 0
    WAITING = 1  # parents not finished
    SCHEDULED = 2  # not before its time (delay, backoff)
    READY = 3  # in its queue
    RUNNING = 4  # leased to one worker
    SUCCEEDED = 5  # final
    FAILED = 6  # only in events: an attempt failed
    DEAD = 7  # final: attempts used up, or a failed dependency
    CANCELLED = 8  # final
    SKIPPED = 9  # final: its dependencies made it unnecessary

    @property
    def is_final(self) -> bool:
        """Whether a task in this state has ended (succeeded, dead,
        cancelled or skipped)."""
        return self in (State.SUCCEEDED, State.DEAD, State.CANCELLED, State.SKIPPED)

    @property
    def is_resting(self) -> bool:
        """Whether a task can be in this state between events, so that
        ``list`` can find it there: any but ``UNKNOWN`` and ``FAILED`` (a
        failed attempt leaves its task scheduled for a retry, or dead)."""
        return self not in (State.UNKNOWN, State.FAILED)

    @classmethod
    def parse(cls, value: 'State | int | str') -> 'State':
        """A state from its number or its name ("dead")."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError('%r is not a state (%s)' % (
                    value, ', '.join(s.name.lower() for s in cls if s))) from None
        return cls(value)

    def __str__(self) -> str:
        return self.name.lower()


def _state(value: int) -> State:
    try:
        return State(value)
    except ValueError:
        return State.UNKNOWN


class Submitted(int):
    """A submitted task's id (an ``int``), with what the broker said of it:
    ``existing`` (its client key was known: this is the first task's id and
    nothing was submitted), ``state`` (right after the submit) and
    ``refused`` (its queue was full, with overflow reject: it ended
    cancelled at once)."""

    existing: bool
    state: State
    refused: bool

    def __new__(cls, id: int, existing: bool = False, state: int = 0,
                refused: bool = False) -> 'Submitted':
        self = super().__new__(cls, id)
        self.existing = existing
        self.state = _state(state)
        self.refused = refused
        return self

    @property
    def id(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return 'Submitted(%d, existing=%s, state=%s, refused=%s)' % (
            self, self.existing, self.state, self.refused)

    def __str__(self) -> str:
        return int.__repr__(self)  # print(task) shows the id, as `arbiter submit` does


@dataclass(frozen=True)
class Done:
    """A watched task that ended, reported once: its state (succeeded,
    dead, cancelled, skipped, or ``UNKNOWN`` for an id the broker does not
    know), attempts started, error, and result (empty unless succeeded)."""

    id: int
    state: State
    attempts: int = 0
    error: Optional[str] = None
    result: bytes = b''

    @property
    def ok(self) -> bool:
        """Whether the task succeeded."""
        return self.state is State.SUCCEEDED

    def check(self) -> bytes:
        """The result of a task that succeeded; raises ``TaskFailed`` for
        any other end (dead, cancelled, skipped, unknown)."""
        if not self.ok:
            raise TaskFailed('task %d %s%s' % (self.id, self.state,
                                                ': ' + self.error if self.error else ''), self)
        return self.result


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task (STATUS history); outcome 0 ok, 1 failed, 2
    released, 3 lease lost, 4 timed out, 5 cancelled, 6 running."""

    attempt: int
    started_ms: int
    ended_ms: int
    worker: Optional[str]
    outcome: int
    error: Optional[str]

    OUTCOMES = ('ok', 'failed', 'released', 'lost', 'timed out', 'cancelled', 'running')


@dataclass(frozen=True)
class Response:
    """One endpoint's answer to a fan-out task."""

    endpoint: Optional[str]
    id: int
    state: State
    error: Optional[str]
    finished_ms: int
    result: bytes


@dataclass(frozen=True)
class Dependency:
    """A task's dependency: a task id, its name in the flow (ref), and when
    the edge holds (0 on success, 1 on failure, 2 always)."""

    id: int
    ref: Optional[str]
    when: int


@dataclass(frozen=True)
class TaskInfo:
    """What STATUS (``Client.status``) or LIST (``Client.list``) tells of a
    task. LIST leaves out result, history, responses and args, and for an
    unfinished task its key, ref, origin and error. ``found`` false: no
    such task (only ``id`` is set). ``payload`` is set only by a STATUS
    that asks for it (``with_payload``), which ``Client.status`` does not:
    there it is ``b''``."""

    id: int
    found: bool = False
    queue: Optional[str] = None
    name: Optional[str] = None
    key: Optional[str] = None
    state: State = State.UNKNOWN
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 0
    lost: int = 0
    created_ms: int = 0
    not_before_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    timeout_ms: int = 0
    soft_timeout_ms: int = 0
    worker: Optional[str] = None
    error: Optional[str] = None
    result: bytes = b''
    history: List[Attempt] = field(default_factory=list)
    history_dropped: int = 0
    flow: int = 0
    ref: Optional[str] = None
    origin: int = 0
    endpoint: Optional[str] = None
    responses: List[Response] = field(default_factory=list)
    args: bytes = b''
    flow_kind: int = 0
    flow_name: Optional[str] = None
    no_handler: bool = False
    parents: List[Dependency] = field(default_factory=list)
    payload: bytes = b''

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> 'TaskInfo':
        values = dict(d)
        values['state'] = _state(d['state'])
        values['history'] = [Attempt(**a) for a in d['history']]
        values['responses'] = [Response(**dict(r, state=_state(r['state'])))
                               for r in d['responses']]
        values['parents'] = [Dependency(**p) for p in d['parents']]
        return cls(**values)


@dataclass(frozen=True)
class Outcome:
    """One id's answer to cancel, retry or delete: code 0 done, 404 unknown,
    409 not in a state that allows it; state: the one it is in now (delete:
    the one it had)."""

    id: int
    code: int
    state: State

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class Change:
    """The answer to cancel, retry or delete: how many tasks changed, and
    each asked id's outcome, in the order asked."""

    count: int
    outcomes: List[Outcome]


def outcomes(tasks: List[Mapping[str, Any]]) -> List[Outcome]:
    return [Outcome(t['id'], t['code'], _state(t['state'])) for t in tasks]


@dataclass(frozen=True)
class QueueStats:
    """A queue in STATS: tasks per state (``counts[State.READY]``), whether
    paused, tasks done in the last minute (and per second, oldest first),
    the age of its oldest ready task, its settings (0 / None: default),
    the worker sessions with credit on it, whether it was declared, the
    payload bytes of its ready tasks, and its bounds on them (0: none) with
    what a submit over them does (overflow: None drops the oldest, "reject"
    refuses the new), and how many ready tasks its bounds dropped since the
    broker started."""

    name: str
    counts: Dict[State, int]
    paused: bool
    done_last_minute: int
    oldest_ready_ms: int
    max_running: int
    rate_per_sec: int
    retention_ms: int
    on_failure: Optional[str]
    done_seconds: List[int]
    consumers: int
    declared: bool
    ready_bytes: int
    max_ready: int = 0
    max_ready_bytes: int = 0
    overflow: Optional[str] = None
    dropped: int = 0

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> 'QueueStats':
        values = dict(d)
        values['counts'] = {State(i): n for i, n in enumerate(d['counts'])
                            if 0 < i <= State.SKIPPED and i != State.FAILED}
        return cls(**values)


@dataclass(frozen=True)
class WorkerStats:
    """A worker session in STATS."""

    name: Optional[str]
    identity: Optional[str]
    slots: int
    credit: int
    busy: int
    last_seen_ms: int
    queues: List[str]


@dataclass(frozen=True)
class Stats:
    """The broker's statistics (``Client.stats``): queues, workers, and
    what it did since it started (zero again after a restart)."""

    now_ms: int
    uptime_ms: int
    queues: List[QueueStats]
    workers: List[WorkerStats]
    submitted: int
    dispatched: int
    finished: List[int]
    commits: int
    commit_us: int
    commit_buckets: List[int]
    tasks_in_memory: int = 0  # task records in the broker's memory now
    tasks_cold: int = 0  # ready tasks held only in its journal
    watches: int = 0  # (task, client) pairs waiting for a DONE

    def queue(self, name: str) -> Optional[QueueStats]:
        """The named queue's statistics, or None if the broker has none."""
        return next((q for q in self.queues if q.name == name), None)

    @classmethod
    def from_wire(cls, pages: Sequence[Mapping[str, Any]]) -> 'Stats':
        """Stats from the pages of STATS_REPLY the broker sent (its counters
        from the last page, its queues and workers from them all)."""
        values = dict(pages[-1])
        values.pop('more')
        values.pop('more_workers')
        values['queues'] = [QueueStats.from_wire(q) for page in pages for q in page['queues']]
        values['workers'] = [WorkerStats(**w) for page in pages for w in page['workers']]
        return cls(**values)


@dataclass(frozen=True)
class Parent:
    """A dependency's outcome, as a task that waited for it gets it: its
    name in the flow, id, state, result (succeeded) or error."""

    name: Optional[str]
    id: int
    state: State
    result: bytes
    error: Optional[str]


def parents(items: List[Mapping[str, Any]]) -> List[Parent]:
    return [Parent(p['name'], p['id'], _state(p['state']), p['result'], p['error'])
            for p in items]


@dataclass(frozen=True)
class Peeked:
    """A ready task at the head of a queue (``Client.peek``), not taken."""

    id: int
    attempt: int
    delivered: int  # how many times it was handed out before
    queue: Optional[str]
    name: Optional[str]
    timeout_ms: int
    soft_timeout_ms: int
    created_ms: int
    headers: bytes
    parents: List[Parent]
    args: bytes
    payload: bytes


@dataclass(frozen=True)
class Schedule:
    """A periodic schedule: its cron expression in its zone, what missed
    slots do, its state, and the template of its tasks."""

    name: Optional[str]
    cron: Optional[str]
    zone: Optional[str]
    catch_up: Optional[str]
    paused: bool
    created_ms: int
    next_ms: int
    next_offset_s: int
    last_slot_ms: int
    last_id: int
    queue: Optional[str]
    task: Optional[str]
    priority: int
    retries: int
    backoff: int
    backoff_ms: int
    backoff_cap_ms: int
    no_jitter: bool
    timeout_ms: int
    soft_timeout_ms: int
    retention_ms: int
    payload: bytes


@dataclass(frozen=True)
class Limit:
    """The limits of a task name (``Client.limit`` sets them; 0: none),
    and how many of its tasks run now."""

    name: str
    max_running: int
    rate_per_sec: int
    running: int


@dataclass(frozen=True)
class Pong:
    """The broker's answer to a ping: its version, its epoch (start count:
    a new one means it restarted) and its clock."""

    version: Optional[str]
    epoch: int
    now_ms: int


@dataclass(frozen=True)
class FlowSubmitted:
    """A submitted flow: its id (``flow:ID`` to the CLI) and each task's id
    by its name in the flow."""

    flow: int
    tasks: Dict[str, Submitted]


@dataclass(frozen=True)
class FlowTask:
    """One task of a flow as it ended (``Client.wait_flow``): its name in
    the flow, its handler's name, and its report."""

    name: str
    task: Optional[str]
    done: Done

    @property
    def id(self) -> int:
        return self.done.id

    @property
    def state(self) -> State:
        return self.done.state


@dataclass(frozen=True)
class FlowResult:
    """Every task a flow was submitted with (not fan-out copies or emitted
    tasks), each ended, in the flow's order (as submitted, which is id
    order: a pipe's in its order), not the order they ended in.
    Iterating gives the ``FlowTask``s in that order (as ``tasks`` does),
    ``len`` their number, ``result["name"]`` one by its name in the flow
    (KeyError if none), ``"name" in result`` whether there is one. ``ok``:
    every task succeeded or was skipped."""

    flow: int
    tasks: List[FlowTask]

    @property
    def ok(self) -> bool:
        return all(t.state in (State.SUCCEEDED, State.SKIPPED) for t in self.tasks)

    def __getitem__(self, name: str) -> FlowTask:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def __iter__(self) -> Iterator[FlowTask]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, item: object) -> bool:
        """A name in the flow, or one of its ``FlowTask``s."""
        return any(t.name == item or t is item for t in self.tasks)

    @property
    def result(self) -> bytes:
        """The last task's result (a pipe's result)."""
        return self.tasks[-1].done.result if self.tasks else b''
