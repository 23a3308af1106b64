"""Functions as tasks: what guillotina_amqp's ``add_task`` and ``@task`` do
over RabbitMQ and Redis, over arbiter alone.

    from arbiter.functions import task, add_task

    @task                                   # or @task(retries=5, queue="images")
    async def resize(path, width=100):
        ...
        return {"path": path, "width": width}

    state = await resize("cat.png", width=64)   # queued, not run here
    state = await add_task(resize, "dog.png")   # the same
    print(await state.join())                   # {'status': 'finished', 'result': {...}, ...}

and, where the work is done, the module imported and its functions run:

    python3 -m arbiter.functions worker --import myapp.tasks --max-running-tasks 8

A call becomes a task named by the function's dotted name
("myapp.tasks.resize"), whose payload is the JSON of its arguments
(``{"args": [...], "kwargs": {...}}``), in the queue "functions" unless told
otherwise; the worker runs the function (awaited, on an event loop of its
slot's own, if it is a coroutine function) and what it returns, as JSON, is
the task's result. A function that raises fails the attempt, and the
broker retries it ``retries`` times (3) after a delay (2 minutes), as
guillotina_amqp's delay queue did (``@task(backoff=...)`` or
``configure(backoff=...)`` for another). A task cancelled
(``state.cancel()``, ``arbiter cancel``, ``DELETE /api/v1/tasks/ID``) or
past its ``timeout`` is stopped in the worker: its coroutine is cancelled
in a thread slot, its process killed in a process slot (``--mode
process``). A function that blocks its event loop, or will not stop, is
what ``--auto-kill-timeout`` is for (``Watchdog``). The state is the
broker's: no Redis, no state manager.

The worker runs only what its modules define: a name is looked up among
the functions decorated with ``@task`` and the functions the modules given
with ``--import`` define themselves (not one they import: a module's
``os.system`` is not its own), never imported from what a task says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib
import inspect
import json
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import __version__
from .aio import AsyncClient
from .client import Client
from .errors import ArbiterError, NotFound
from .job import Fail, Job
from .records import State, TaskInfo
from .worker import Worker

QUEUE = 'functions'
RETRIES = 3
BACKOFF = 'fixed:120'  # guillotina_amqp's delay queue: its delayed_ttl_ms, 2 minutes
EXIT_STUCK = 3  # the worker's exit status when its watchdog ends it

log = logging.getLogger('arbiter.functions')

#  guillotina_amqp's statuses, by the broker's state
STATUS = {
    State.WAITING: 'scheduled', State.SCHEDULED: 'scheduled', State.READY: 'scheduled',
    State.RUNNING: 'running', State.SUCCEEDED: 'finished', State.DEAD: 'errored',
    State.CANCELLED: 'canceled', State.SKIPPED: 'canceled',
}

_settings: Dict[str, Any] = {'endpoint': None, 'queue': QUEUE, 'backoff': BACKOFF, 'cert': None,
                             'broker_key': None}
#  an AsyncClient belongs to one event loop; one whose loop has closed is
#  closed at the next call (and by configure)
_clients: Dict[asyncio.AbstractEventLoop, AsyncClient] = {}
_registry: Dict[str, 'TaskDefinition'] = {}
_job: 'contextvars.ContextVar[Optional[Job]]' = contextvars.ContextVar('arbiter_job', default=None)


class TaskNotFound(NotFound):
    """No such task: it never existed, or its retention ran out."""


class TaskNotFinished(ArbiterError):
    """``get_result`` of a task that has not ended."""


def configure(endpoint: Optional[str] = None, *, queue: str = QUEUE, backoff: str = BACKOFF,
              cert: Optional[str] = None, broker_key: Optional[str] = None) -> None:
    """Where calls go: the broker (default $ARBITER_BROKER, else
    tcp://127.0.0.1:7700), the queue of functions without one of their
    own, the delay before a failed call is retried (``"fixed:S"``, or any
    backoff ``Client.submit`` takes) for functions without one of their
    own, and the certificate for a broker with --curve. Clients made
    before are closed with their event loops."""
    _settings.update(endpoint=endpoint, queue=queue, backoff=backoff, cert=cert,
                     broker_key=broker_key)
    for loop in list(_clients):
        _shut(loop, _clients.pop(loop))


async def close() -> None:
    """Closes the running event loop's client (made at its first call)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()


def current_job() -> Optional[Job]:
    """In a function the worker runs, its task (``Job``: id, attempt, ...);
    None elsewhere."""
    return _job.get()


def _shut(loop: asyncio.AbstractEventLoop, client: AsyncClient) -> None:
    """Closes a client: at once if its loop has closed, else in its loop."""
    if loop.is_closed():
        client._close_socket()
    else:
        loop.call_soon_threadsafe(lambda: loop.create_task(client.close()))


def _client() -> AsyncClient:
    """The running event loop's client (an AsyncClient belongs to one loop)."""
    for ended in [loop for loop in _clients if loop.is_closed()]:
        _shut(ended, _clients.pop(ended))  # each asyncio.run() has a loop of its own
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = AsyncClient(_settings['endpoint'], cert=_settings['cert'],
                             broker_key=_settings['broker_key'])
        _clients[loop] = client
    return client


def dotted_name(func: Callable[..., Any]) -> str:
    """The task name of a function: its module and qualified name."""
    if isinstance(func, TaskDefinition):
        return func.name
    module = getattr(func, '__module__', None)
    qualname = getattr(func, '__qualname__', None)
    if not module or not qualname or '<' in qualname:
        raise ValueError('%r has no importable name (a lambda or a nested function cannot be '
                         'a task)' % (func,))
    return '%s.%s' % (module, qualname)


def call_payload(args: Sequence[Any], kwargs: Dict[str, Any]) -> str:
    """A call's payload: ``{"args": [...], "kwargs": {...}}`` as JSON."""
    try:
        return json.dumps({'args': list(args), 'kwargs': kwargs}, separators=(',', ':'))
    except (TypeError, ValueError) as e:
        raise TypeError('a task\'s arguments go as JSON: %s' % e) from None


class TaskState:
    """A queued call, by its task id: guillotina_amqp's TaskState, read from
    the broker."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id

    def __repr__(self) -> str:
        return 'TaskState(%d)' % self.task_id

    async def _info(self) -> TaskInfo:
        try:
            info = await _client().status(self.task_id)
        except NotFound:
            info = None
        if info is None or not info.found:
            raise TaskNotFound('no task %d (never submitted, or its retention ran out)'
                               % self.task_id)
        return info

    async def get_state(self) -> Dict[str, Any]:
        """status (scheduled, running, finished, errored, canceled), name,
        attempts, and once ended its result (the function's return value)
        or error."""
        return state_of(await self._info())

    async def get_status(self) -> str:
        return str((await self.get_state())['status'])

    async def get_result(self) -> Any:
        """The function's return value; TaskNotFinished before its end, the
        error text of a task that failed."""
        state = await self.get_state()
        if state['status'] not in ('finished', 'errored'):
            raise TaskNotFinished('task %d is %s' % (self.task_id, state['status']))
        return state.get('result', state.get('error'))

    async def join(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits for the task's end (the broker tells it: no polling) and
        returns its state."""
        await _client().wait(self.task_id, timeout=timeout)
        return await self.get_state()

    async def cancel(self) -> bool:
        """Cancels the task; whether it was still to end (False: it had)."""
        info = await self._info()
        if info.state.is_final:
            return False
        await _client().cancel([self.task_id])
        return True


def state_of(info: TaskInfo) -> Dict[str, Any]:
    state: Dict[str, Any] = {'task_id': info.id, 'name': info.name,
                             'status': STATUS.get(info.state, 'scheduled'),
                             'attempts': info.attempts}
    if info.state is State.SUCCEEDED:
        state['result'] = result_value(info)
    elif info.state.is_final and info.error:
        state['error'] = info.error
    return state


def result_value(info: TaskInfo) -> Any:
    """A call's result as its function returned it: the JSON value of the
    task's result (None if empty), else its text."""
    try:
        return json.loads(info.result) if info.result else None
    except ValueError:
        return info.result.decode('utf-8', 'replace')


class TaskDefinition:
    """A function made a task by ``@task``: calling it queues it."""

    def __init__(self, func: Callable[..., Any], retries: int = RETRIES,
                 queue: Optional[str] = None, **options: Any) -> None:
        self.func = func
        self.retries = retries
        self.queue = queue
        self.options = options
        self.name = dotted_name(func)
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return '<task %s>' % self.name

    def _submit_args(self) -> Dict[str, Any]:
        args = dict(self.options, queue=self.queue or _settings['queue'], retries=self.retries)
        if self.retries and 'backoff' not in args:
            args['backoff'] = _settings['backoff']  # a backoff without retries is refused
        return args

    async def __call__(self, *args: Any, **kwargs: Any) -> TaskState:
        """Queues the call (once the broker has it in its journal)."""
        done = await _client().submit(self.name, call_payload(args, kwargs), **self._submit_args())
        return TaskState(done.id)

    schedule = __call__

    def submit(self, *args: Any, **kwargs: Any) -> int:
        """Queues the call from code without an event loop; its task id."""
        with Client(_settings['endpoint'], cert=_settings['cert'],
                    broker_key=_settings['broker_key']) as client:
            return client.submit(self.name, call_payload(args, kwargs), **self._submit_args()).id

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Calls the function here, as it is."""
        return self.func(*args, **kwargs)


def task(func: Optional[Callable[..., Any]] = None, *, retries: int = RETRIES,
         queue: Optional[str] = None, **options: Any) -> Any:
    """Decorator: ``@task`` or ``@task(retries=N, queue=Q, timeout=S, ...)``
    (any option of ``Client.submit``)."""
    def register(f: Callable[..., Any]) -> TaskDefinition:
        definition = TaskDefinition(f, retries, queue, **options)
        _registry[definition.name] = definition  # the workers look it up by name
        return definition
    return register if func is None else register(func)


async def add_task(func: Callable[..., Any], *args: Any, _retries: int = RETRIES,
                   _queue: Optional[str] = None, **kwargs: Any) -> TaskState:
    """Queues func(*args, **kwargs): a ``@task`` function, or any function
    of a module the workers import."""
    if isinstance(func, TaskDefinition):
        return await func(*args, **kwargs)
    # only its name travels: the workers find the function in their modules
    return await TaskDefinition(func, _retries, _queue)(*args, **kwargs)


# ---------------------------------------------------------------------
# The worker's side.

class _Call:
    """A call the watchdog watches: when its event loop last came back to
    its task runner (None: not a coroutine), when it was first seen stopped
    (None: not yet)."""

    __slots__ = ('loop_at', 'stopped_at')

    def __init__(self, loop_at: Optional[float]) -> None:
        self.loop_at = loop_at
        self.stopped_at: Optional[float] = None


class Watchdog:
    """guillotina_amqp's ``--auto-kill-timeout``, for thread slots: the
    worker exits (status ``EXIT_STUCK``), for its supervisor to start it
    again, once a call has held its event loop ``timeout`` seconds without
    coming back to it (a coroutine that blocks instead of awaiting), or
    still runs ``timeout`` seconds after the broker stopped it (a cancel,
    or its own timeout: a thread cannot be stopped from outside, and its
    slot would stay taken). The broker takes back what the worker held and
    hands it out again; a task that keeps doing this is quarantined, as is
    any task that kills its worker. Its thread runs while it watches a
    call, so that a worker made in a program (``worker(...).run()``) leaves
    none behind once its calls have ended."""

    def __init__(self, timeout: float, exit: Callable[[int], Any] = os._exit) -> None:
        if not timeout > 0:
            raise ValueError('the auto-kill timeout is a number of seconds over 0')
        self.timeout = timeout
        self._exit = exit
        self._lock = threading.Lock()
        self._calls: Dict[Job, _Call] = {}
        self._watching = False  # a thread runs _watch; it ends once no call is left

    def started(self, job: Job, on_loop: bool) -> None:
        with self._lock:
            self._calls[job] = _Call(time.monotonic() if on_loop else None)
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name='arbiter-watchdog',
                                 daemon=True).start()

    def tick(self, job: Job) -> None:
        """The call's event loop came back to its task runner."""
        with self._lock:
            call = self._calls.get(job)
            if call is not None:
                call.loop_at = time.monotonic()

    def ended(self, job: Job) -> None:
        with self._lock:
            self._calls.pop(job, None)

    def stuck(self, now: float) -> Optional[str]:
        """Why the worker is stuck, or None."""
        with self._lock:
            for job, call in self._calls.items():
                if call.stopped_at is None and job.cancelled:
                    call.stopped_at = now
                if call.loop_at is not None and now - call.loop_at >= self.timeout:
                    return 'task %d (%s) has held its event loop for %.1f s' % (
                        job.id, job.name, now - call.loop_at)
                if call.stopped_at is not None and now - call.stopped_at >= self.timeout:
                    return 'task %d (%s) runs on %.1f s after it was stopped' % (
                        job.id, job.name, now - call.stopped_at)
        return None

    def _watch(self) -> None:
        period = min(1.0, self.timeout / 4)
        while True:
            time.sleep(period)
            with self._lock:
                if not self._calls:
                    self._watching = False
                    return
            why = self.stuck(time.monotonic())
            if why is not None:
                log.error('%s: the worker exits (--auto-kill-timeout %g s) for its supervisor '
                          'to start it again', why, self.timeout)
                with self._lock:
                    self._watching = False
                self._exit(EXIT_STUCK)
                return


class Functions:
    """The functions a worker may run, by dotted name: those decorated with
    ``@task`` under the modules it imported, and the functions those
    modules define at their top level (not those they import)."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = list(modules)
        self.watchdog: Optional[Watchdog] = None  # worker() gives one, if asked
        for module in self.modules:
            importlib.import_module(module)

    def find(self, name: str) -> Callable[..., Any]:
        """The function of a task name: a @task function under one of the
        modules, or a function one of them defines at its top level. Nothing
        is looked up but in the modules' own names (no attribute of another
        object is read: a lookup runs no code of theirs)."""
        for module in self.modules:
            if not name.startswith(module + '.'):
                continue
            found = _registry.get(name)
            if found is not None:
                return found.func
            qualname = name[len(module) + 1:]
            value = vars(sys.modules[module]).get(qualname) if '.' not in qualname else None
            if isinstance(value, TaskDefinition):
                value = value.func
            # a function the module itself defines, under that very name: not
            # one it imported (its "os.system" is not its own), nor a class
            if (inspect.isfunction(value) and value.__module__ == module
                    and value.__qualname__ == qualname):
                return value
        raise Fail('no function %s here: the worker runs the @task functions and the functions '
                   'the modules it imports define (%s)' % (name, ', '.join(self.modules) or 'none'))

    def handle(self, job: Job) -> str:
        """Runs the task's function; its return value as JSON."""
        func = self.find(job.name)
        args, kwargs = call_of(job)
        token = _job.set(job)
        on_loop = inspect.iscoroutinefunction(func)
        if self.watchdog is not None:
            self.watchdog.started(job, on_loop)
        try:
            if on_loop:
                value = asyncio.run(_until_cancelled(job, func(*args, **kwargs), self.watchdog))
            else:
                value = func(*args, **kwargs)
        finally:
            if self.watchdog is not None:
                self.watchdog.ended(job)
            _job.reset(token)
        return json_result(job, value)


def call_of(job: Job) -> Tuple[List[Any], Dict[str, Any]]:
    """The arguments of a call from its task's payload, ``{"args": [...],
    "kwargs": {...}}`` (either may be left out); Fail if it is not one."""
    try:
        call = json.loads(job.payload or b'{}')
        args, kwargs = call.get('args', []), call.get('kwargs', {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError('args is a list, kwargs an object')
    except (ValueError, AttributeError) as e:
        raise Fail('the payload is not a call ({"args": [...], "kwargs": {...}}): %s'
                   % e) from None
    return args, kwargs


def json_result(job: Job, value: Any) -> str:
    """A function's return value as its task's result: its JSON text."""
    try:
        return json.dumps(value, separators=(',', ':'))
    except (TypeError, ValueError) as e:
        raise Fail('%s returned what JSON cannot carry: %s' % (job.name, e)) from None


async def _until_cancelled(job: Job, coroutine: Any, watchdog: Optional[Watchdog]) -> Any:
    """Runs the coroutine, cancelling it once the broker stops its task, and
    telling the watchdog each time the loop comes back; the client it made
    for its calls (add_task, join) goes with its loop."""
    try:
        running = asyncio.ensure_future(coroutine)
        while not running.done():
            await asyncio.wait({running}, timeout=0.1)
            if watchdog is not None:
                watchdog.tick(job)
            if job.cancelled and not running.done():
                running.cancel()
        return running.result()
    finally:
        await close()


def worker(modules: Sequence[str], queues: Sequence[str] = (QUEUE,),
           auto_kill_timeout: Optional[float] = None, **options: Any) -> Worker:
    """A Worker (its options: endpoint, slots, mode, ...) that runs the
    functions of modules from queues, with a ``Watchdog`` if given an
    auto-kill timeout (thread slots only: a process slot is killed at its
    task's timeout); ``run()`` it."""
    if auto_kill_timeout is not None and options.get('mode', 'thread') not in ('thread', 'light'):
        raise ValueError('--auto-kill-timeout watches thread slots: with --mode process a '
                         'call is killed at its task\'s timeout')
    w = Worker(queues, **options)  # its options checked before a watchdog starts
    functions = Functions(modules)
    if auto_kill_timeout is not None:
        functions.watchdog = Watchdog(auto_kill_timeout)
    w.handle('*', functions.handle)
    return w


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python3 -m arbiter.functions',
        description='Runs the functions of Python modules as arbiter tasks (see '
                    'arbiter.functions): "worker" takes their calls from the queue and runs '
                    'them until SIGTERM or SIGINT.')
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('worker', help='run the functions of the modules imported')
    run.add_argument('--import', dest='modules', action='append', required=True,
                     metavar='MODULE', help='a module whose functions run (repeat for more)')
    run.add_argument('--queue', dest='queues', action='append', metavar='QUEUE',
                     help='a queue to take calls from (default: %s; repeat for more)' % QUEUE)
    run.add_argument('--broker', metavar='ENDPOINT',
                     help='the broker (default: $ARBITER_BROKER, else tcp://127.0.0.1:7700)')
    run.add_argument('--max-running-tasks', type=int, default=1, metavar='N',
                     help='calls run at once (the slots; default 1)')
    run.add_argument('--mode', choices=('thread', 'process'), default='thread',
                     help='a thread per slot, or a process per call, killed at its timeout '
                          'or cancel (default thread)')
    run.add_argument('--auto-kill-timeout', type=float, metavar='S',
                     help='exit (status %d), for a supervisor to start the worker again, once a '
                          'call has held its event loop S seconds, or runs S seconds after it '
                          'was stopped (thread mode; default: never)' % EXIT_STUCK)
    run.add_argument('--name', help='the worker\'s name (default host.pid)')
    run.add_argument('--cert', help='its secret certificate, for a broker with --curve')
    run.add_argument('--broker-key', help='the broker\'s public key or broker.cert file')
    parser.add_argument('--version', action='version', version='%(prog)s (arbiter) ' + __version__)
    opts = parser.parse_args(argv)
    sys.path.insert(0, '')  # the modules of the directory it runs in, as python3 -m does
    try:
        w = worker(opts.modules, opts.queues or (QUEUE,), opts.auto_kill_timeout,
                   endpoint=opts.broker, slots=opts.max_running_tasks, mode=opts.mode,
                   name=opts.name, cert=opts.cert, broker_key=opts.broker_key)
    except (ImportError, ValueError) as e:
        print('arbiter.functions: %s' % e, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    try:
        w.run()
    except ValueError as e:  # an endpoint ZeroMQ would not connect to
        print('arbiter.functions: %s' % e, file=sys.stderr)
        return 2
    except ArbiterError as e:
        print('arbiter.functions: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # run as arbiter.functions, not __main__: the modules' @task register
    # with that module, and it must be the one that looks them up
    from arbiter.functions import main as _main
    sys.exit(_main())
