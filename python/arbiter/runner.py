"""invenia's Arbiter over arbiter: ``create_task`` and ``run_tasks``.

    from arbiter import create_task, run_tasks

    results = run_tasks([
        create_task('foo', foo_function, args=('bar', 'baz')),
        create_task('lorem', lorem_function, dependencies=['foo']),
        create_task('ipsum', ipsum_function, dependencies=['foo']),
    ])
    results['lorem'].success, results['lorem'].value

The list becomes one DAG flow, submitted to the broker (``endpoint=``, else
$ARBITER_BROKER, else tcp://127.0.0.1:7700) in a queue of the call's own,
and a worker of ``max_workers`` slots in this process (threads, or a
process per task with ``processes=True``) serves that queue until the flow
has ended. So the broker orders the tasks by their dependencies, runs a
task whose dependency failed not at all, retries a failed one (``retries``
times, after ``delay``), stops one past its ``timeout``, and keeps their
states in its journal, to be seen as any other's (``arbiter status``, the
dashboard). The functions and their arguments stay in this process: the
broker carries each task's name, and for those who look, the text of its
return value (its JSON, else its repr, cut at 4 KiB) or of its exception.

``run_tasks`` returns ``{name: Result(success, value)}``: the function's
return value, or the exception its last attempt raised (a timeout or a
cancel is a ``TaskFailed``). With ``processes=True`` both come back
pickled; what pickle cannot carry back comes as a stand-in (a TypeError
for a value, a RuntimeError with an exception's text), and the task is
not run again for it. A call that ends before its flow (``timeout=``, an
interruption, the broker gone) cancels the tasks it submitted. A task that did not run has ``FailedDependencyError``
(a dependency failed or did not run) or ``UnsatisfiedDependencyError`` (a
dependency that is not in the list, or a cycle), as invenia's had; those
are found before anything is submitted, and the rest of the list runs.
A function in a thread cannot be stopped from outside: past its timeout
it runs on, and what it returns is not taken.
"""

from __future__ import annotations

import collections
import json
import math
import os
import pickle
import shutil
import socket
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import flows
from .client import Client
from .errors import TaskFailed, Timeout, Unreachable, WaitTimeout
from .exceptions import FailedDependencyError, UnsatisfiedDependencyError
from .job import Job
from .records import FlowResult, FlowTask, State
from .worker import Worker

SHOWN_MAX = 4096  # bytes of a return value's text the broker keeps
Seconds = Union[None, float, timedelta]


class Task(NamedTuple):
    """A task of ``run_tasks``, as ``create_task`` makes it."""

    name: str
    function: Callable[..., Any]
    args: Tuple[Any, ...] = ()
    kwargs: Dict[str, Any] = {}
    dependencies: Tuple[str, ...] = ()
    retries: int = 0
    delay: Optional[float] = None  # seconds before a retry (None: at once)
    timeout: Optional[float] = None  # seconds an attempt may run (None: no bound)


class Result(NamedTuple):
    """How a task ended: ``success``, and ``value``, its function's return
    value or the exception that made it fail."""

    success: bool
    value: Any


def _seconds(what: str, value: Seconds) -> Optional[float]:
    if value is None:
        return None
    try:
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError('%s: %r is not a number of seconds' % (what, value))
    return seconds


def create_task(name: str, function: Callable[..., Any], args: Sequence[Any] = (),
                kwargs: Optional[Dict[str, Any]] = None, dependencies: Iterable[str] = (),
                retries: int = 0, delay: Seconds = None, timeout: Seconds = None,
                replies: Optional[int] = None) -> Task:
    """A task: its name (unique among the tasks run together), the function
    (it succeeds if it returns), its arguments, the names of the tasks that
    must succeed before it runs, retries (extra attempts) and the delay
    before each (seconds or a timedelta; none: at once), and a timeout.
    ``replies`` is ``retries`` as invenia's README spells it in its example
    (``create_task('failable', sketchy_function, replies=3, delay=...)``)."""
    if replies is not None:
        if retries:
            raise TypeError('task %r: give retries or replies (the same), not both' % (name,))
        retries = replies
    if not isinstance(name, str):
        raise TypeError('a task\'s name is a string, not %r' % (name,))
    if not callable(function):
        raise TypeError('task %r: %r is not callable' % (name, function))
    if isinstance(dependencies, str):
        raise TypeError('task %r: dependencies is a list of names, not the string %r'
                        % (name, dependencies))
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 1000:
        raise ValueError('task %r: retries is 0 to 1000, not %r' % (name, retries))
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError('task %r: kwargs is a dict of arguments, not %r' % (name, kwargs))
    #  a dependency named twice is one, as in invenia's
    return Task(name, function, tuple(args), dict(kwargs or {}),
                tuple(dict.fromkeys(dependencies)), retries,
                _seconds('task %r: delay' % name, delay),
                _seconds('task %r: timeout' % name, timeout))


def _blocked(tasks: Sequence[Task]) -> Dict[str, Result]:
    """The tasks that cannot run, found before anything is submitted: those
    with a dependency not in the list, or in (or behind) a cycle, are
    unsatisfied; those that depend on one of them fail their dependency."""
    names = {t.name for t in tasks}
    blocked: Dict[str, Result] = {}
    for t in tasks:
        missing = [d for d in t.dependencies if d not in names]
        if missing:
            blocked[t.name] = Result(False, UnsatisfiedDependencyError(
                'task %r depends on %s, not in the list' % (t.name, ', '.join(map(repr, missing)))))
    #  what is left once every task whose dependencies can all end is taken
    #  away (Kahn's order) is a cycle, or waits behind one
    waiting = {t.name: 0 for t in tasks}
    needed_by: Dict[str, List[str]] = collections.defaultdict(list)
    for t in tasks:
        for d in t.dependencies:  # each once (create_task)
            if d in names:
                waiting[t.name] += 1
                needed_by[d].append(t.name)
    ready = [n for n, count in waiting.items() if not count]
    while ready:
        done = ready.pop()
        del waiting[done]
        for n in needed_by[done]:
            waiting[n] -= 1
            if not waiting[n]:
                ready.append(n)
    for n in waiting:
        blocked.setdefault(n, Result(False, UnsatisfiedDependencyError(
            'task %r cannot run: a circular dependency' % n)))
    #  and what waits for a blocked task does not run either
    spread = list(blocked)
    while spread:
        cause = spread.pop()
        for n in needed_by[cause]:
            if n not in blocked:
                blocked[n] = Result(False, FailedDependencyError(
                    'task %r: its dependency %r did not run' % (n, cause)))
                spread.append(n)
    return blocked


def _spec(task: Task, queue: str) -> Dict[str, Any]:
    spec: Dict[str, Any] = {'name': task.name, 'task': task.name, 'queue': queue,
                            'after': list(task.dependencies)}
    if task.retries:
        spec['retries'] = task.retries
        if task.delay:
            spec['backoff'] = 'fixed:%s' % flows.number_text(task.delay)
    if task.timeout:
        spec['timeout'] = task.timeout
    return spec


def _shown(value: Any) -> bytes:
    """What the broker keeps of a return value: its JSON, else its repr,
    else its type (this never fails the task: its function has run)."""
    try:
        text = json.dumps(value, separators=(',', ':'))
    except Exception:
        try:
            text = repr(value)
        except Exception:
            text = '<%s>' % type(value).__name__
    return text.encode('utf-8', 'replace')[:SHOWN_MAX]


def _carried(name: str, outcome: Result) -> bytes:
    """An outcome pickled for the trip back from a process slot; what
    cannot make it (a value pickle cannot carry, an exception it cannot
    make again) is said by a stand-in, and the task is not run again."""
    try:
        data = pickle.dumps(outcome)
        pickle.loads(data)
        return data
    except Exception as e:
        if outcome.success:
            why: Exception = TypeError('task %r returned what cannot come back from its '
                                       'process: %s' % (name, e))
        else:
            why = RuntimeError('%s: %s' % (type(outcome.value).__name__, outcome.value))
        return pickle.dumps(Result(False, why))


class _Run:
    """One ``run_tasks``: the tasks by name, what their functions returned
    or raised (each with its attempt: only the last counts), and the
    worker's handler."""

    def __init__(self, tasks: Sequence[Task], processes: bool) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.index = {t.name: i for i, t in enumerate(tasks)}  # its outcome's file
        self.outcomes: Dict[str, Tuple[int, Result]] = {}
        #  a process slot's child cannot reach this process's memory: it
        #  leaves its outcome pickled in a file of the task's index and attempt
        self.folder = tempfile.mkdtemp(prefix='arbiter-run-tasks-') if processes else None

    def handle(self, job: Job) -> bytes:
        task = self.tasks[job.name]
        try:
            value = task.function(*task.args, **task.kwargs)
        except Exception as e:
            self._keep(job, Result(False, e))
            raise
        self._keep(job, Result(True, value))
        return _shown(value)

    def _keep(self, job: Job, outcome: Result) -> None:
        if job.cancelled:
            return  # stopped (its timeout, a cancel): what it did is not taken
        if self.folder is None:
            self.outcomes[job.name] = (job.attempt, outcome)
            return
        path = os.path.join(self.folder, '%d.%d' % (self.index[job.name], job.attempt))
        with open(path + '.part', 'wb') as f:
            f.write(_carried(job.name, outcome))
        os.replace(path + '.part', path)

    def outcome(self, name: str, attempt: int) -> Optional[Result]:
        """What the function did in that attempt, if it ended by itself."""
        if self.folder is None:
            kept = self.outcomes.get(name)
            return kept[1] if kept and kept[0] == attempt else None
        try:
            with open(os.path.join(self.folder, '%d.%d' % (self.index[name], attempt)), 'rb') as f:
                outcome: Result = pickle.load(f)  # written by this process's own child
                return outcome
        except FileNotFoundError:
            return None

    def result(self, ended: FlowTask) -> Result:
        done = ended.done
        if done.state is State.DEAD and not done.attempts and done.error \
                and done.error.startswith('failed dependency'):
            return Result(False, FailedDependencyError('task %r: %s' % (ended.name, done.error)))
        outcome = self.outcome(ended.name, done.attempts)
        if outcome is not None and done.state in (State.SUCCEEDED, State.DEAD):
            return outcome
        return Result(False, TaskFailed('task %r (%d) %s%s' % (
            ended.name, done.id, done.state, ': ' + done.error if done.error else ''), done))

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_tasks(tasks: Iterable[Task], max_workers: int = 1, processes: bool = False, *,
              endpoint: Optional[str] = None, timeout: Optional[float] = None,
              name: Optional[str] = None, cert: Optional[str] = None,
              broker_key: Optional[str] = None) -> Dict[str, Result]:
    """Runs the tasks, each once its dependencies have succeeded, with
    ``max_workers`` threads (or processes) here, through the broker; returns
    ``{name: Result}`` once every one has ended (``timeout``: WaitTimeout
    past so many seconds, the tasks not ended cancelled). ``name`` names
    the flow; ``cert`` and ``broker_key`` are for a broker with --curve."""
    if not isinstance(max_workers, int) or not 1 <= max_workers <= 1024:
        raise ValueError('max_workers: 1 to 1024, not %r' % (max_workers,))
    tasks = list(tasks)
    for t in tasks:
        if not isinstance(t, Task):
            raise TypeError('run_tasks takes the tasks create_task makes, not %r' % (t,))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError('task names must be unique: %s' % ', '.join(
            sorted({repr(n) for n in names if names.count(n) > 1})))
    results = _blocked(tasks)
    runnable = [t for t in tasks if t.name not in results]
    if not runnable:
        return {n: results[n] for n in names}
    queue = 'run_tasks-%s' % uuid.uuid4().hex
    flow = flows.dag([_spec(t, queue) for t in runnable], name=name)
    host = (socket.gethostname() or 'localhost')[:100]
    worker = Worker([queue], endpoint=endpoint, name='%s.%d.%s' % (host, os.getpid(), queue[-8:]),
                    slots=max_workers, mode='process' if processes else 'thread', drain=1.0,
                    grace=0.0, cert=cert,
                    broker_key=broker_key)  # a mistake is said before anything runs
    run = _Run(runnable, processes)
    worker.handle('*', run.handle)
    failure: List[BaseException] = []

    def serve() -> None:
        try:
            worker.run()
        except BaseException as e:  # said by run_tasks, on its own thread
            failure.append(e)

    thread = threading.Thread(target=serve, name='arbiter-run-tasks', daemon=True)
    thread.start()
    try:
        with Client(endpoint, cert=cert, broker_key=broker_key) as client:
            sent = True  # the flow may be in the broker
            try:
                try:
                    submitted = client.submit_flow(flow).flow
                except Unreachable as e:
                    sent = isinstance(e, Timeout)  # else it never reached the broker
                    raise
                ended = _wait(client, submitted, timeout, failure)
            except BaseException as e:
                if sent:
                    _abandon(client, queue, e)
                raise
        results.update((t.name, run.result(t)) for t in ended)
    finally:
        #  twice: at once (what still runs is a thread past its timeout, or
        #  what an interruption left, its tasks cancelled); no grace: a
        #  process is killed at once and a thread cannot be stopped, so the
        #  call waits only the worker's second for cancelled threads
        worker.stop()
        worker.stop()
        thread.join(30)
        run.close()
    return {n: results[n] for n in names}


def _wait(client: Client, flow: int, timeout: Optional[float],
          failure: List[BaseException]) -> FlowResult:
    """The flow once ended, while the worker serves it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if failure:
            raise failure[0]
        step = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
        try:
            return client.wait_flow(flow, timeout=step)
        except WaitTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def _abandon(client: Client, queue: str, error: BaseException) -> None:
    """A call that ends without its flow's end (an interruption, a timeout,
    the broker gone) cancels the tasks of its queue, which no one else
    serves: submitted or not, none is left waiting there for ever (a
    submit that never reached the broker, Unreachable but not Timeout,
    needs none). When the broker cannot be told, the error says what to
    run."""
    try:
        client.cancel(queue=queue)
    except Exception as e:
        note = getattr(error, 'add_note', None)  # Python 3.11
        if note is not None:
            note('the tasks of queue %s could not be cancelled (%s): run `arbiter cancel '
                 '--queue %s` once the broker answers' % (queue, e, queue))


__all__ = ['Task', 'Result', 'create_task', 'run_tasks']
