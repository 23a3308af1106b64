"""The carrier arbiter's API over arbiter: a ``Minion`` runs named
functions, an ``Arbiter`` applies them and waits for their results.

    from arbiter import Minion

    app = Minion(host="localhost", port=7700)

    @app.task(name="simple_add")
    def adds(x, y):
        return x + y

    if __name__ == "__main__":
        app.run(worker_type="heavy", workers=3)

and, where the work is asked for:

    from arbiter import Arbiter

    arbiter = Arbiter(host="localhost", port=7700)
    task_keys = arbiter.apply("simple_add", tasks_count=1, task_args=[1, 2])
    for message in arbiter.wait_for_tasks(task_keys):
        print(message)            # {'task_key': 17, 'state': 'done', 'result': 3, ...}
    arbiter.status(task_keys[0])  # the same dict, at any time

``host`` and ``port`` are the broker's (``arbiterd --bind``, port 7700 by
default), not a RabbitMQ's. The carrier's ``user`` and ``password`` have
no counterpart here: a broker run with --curve admits peers by their
certificates (``cert=``, ``broker_key=``); they are taken for the
signature's sake and never sent. A task type's tasks go to the carrier's
queue for it (``arbiterHeavy``, ``arbiterLight``) under its vhost
(``carrier|arbiterHeavy``, as the AMQP gateway names a vhost's queues):
``run(worker_type="heavy")`` takes the heavy ones, a process each, and
"light" ones run in threads. Task keys are the broker's task ids, and the
states its: each Arbiter watches its own tasks, so results do not mix
between two. A call's arguments travel as JSON (``{"args": [...],
"kwargs": {...}}``, as ``arbiter.functions``), and its return value, as
JSON, is the task's result.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .client import Client
from .errors import NotFound
from .job import Fail, Job
from .records import State, TaskInfo
from .worker import Worker

# arbiter.functions is imported where it is used, not here: the package
# imports this module, and a package that imports arbiter.functions makes
# `python3 -m arbiter.functions` warn (runpy's RuntimeWarning: found in
# sys.modules ... unpredictable).

TASK_TYPES = ('heavy', 'light')
PORT = 7700  # the broker's


class TaskNotFound(NotFound, NameError):
    """A task key the broker does not know (the carrier raised NameError)."""


class _Base:
    """What a Minion and an Arbiter share: the broker and the queues."""

    def __init__(self, host: str = 'localhost', port: int = PORT, user: Optional[str] = None,
                 password: Optional[str] = None, vhost: str = 'carrier',
                 light_queue: str = 'arbiterLight', heavy_queue: str = 'arbiterHeavy',
                 all_queue: str = 'arbiterAll', *, cert: Optional[str] = None,
                 broker_key: Optional[str] = None) -> None:
        del user, password, all_queue  # the carrier's; nothing here uses them
        self.endpoint = 'tcp://%s:%d' % ('[%s]' % host if ':' in host else host, port)
        prefix = '' if vhost in ('', '/') else vhost + '|'
        self.queues = {'heavy': prefix + heavy_queue, 'light': prefix + light_queue}
        self.cert = cert
        self.broker_key = broker_key

    def queue(self, task_type: str) -> str:
        if task_type not in TASK_TYPES:
            raise TypeError('task_type is not supported please use any of [%s]'
                            % ','.join(TASK_TYPES))
        return self.queues[task_type]


class Minion(_Base):
    """Runs the functions registered with ``@task`` (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task_registry: Dict[str, Callable[..., Any]] = {}

    def task(self, name: Optional[str] = None,
             task_type: str = 'heavy') -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@app.task(name="simple_add")`` registers the function
        under that name (default "FUNCTION.MODULE", as the carrier named it);
        the function itself is returned, unchanged."""
        self.queue(task_type)  # a mistake is said here

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(func):
                raise TypeError('@task decorated function must be callable')
            self.task_registry.setdefault(name or '%s.%s' % (func.__name__, func.__module__),
                                          func)
            return func
        return register

    def _handle(self, job: Job) -> str:
        func = self.task_registry.get(job.name)
        if func is None:
            raise Fail('no task %s here: this minion runs %s' % (
                job.name, ', '.join(sorted(self.task_registry)) or 'none'))
        from . import functions
        args, kwargs = functions.call_of(job)
        return functions.json_result(job, func(*args, **kwargs))

    def worker(self, worker_type: str = 'heavy', workers: int = 1, **options: Any) -> Worker:
        """The Worker ``run`` runs (its other options: name, drain, ...)."""
        w = Worker([self.queue(worker_type)], endpoint=self.endpoint, slots=workers,
                   mode='process' if worker_type == 'heavy' else 'thread', cert=self.cert,
                   broker_key=self.broker_key, **options)
        w.handle('*', self._handle)
        return w

    def run(self, worker_type: str = 'heavy', workers: int = 1) -> None:
        """Takes the tasks of that type, ``workers`` at once, until SIGTERM
        or SIGINT."""
        self.worker(worker_type, workers).run()


class Arbiter(_Base):
    """Applies tasks and waits for their results (see the module)."""

    def __init__(self, *args: Any, start_consumer: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del start_consumer  # the carrier's: the broker keeps the states here
        self.client = Client(self.endpoint, cert=self.cert, broker_key=self.broker_key)
        self.types = {queue: task_type for task_type, queue in self.queues.items()}
        self.applied: Dict[int, Tuple[str, str]] = {}  # key -> name and type

    def apply(self, task_name: str, task_type: str = 'heavy', tasks_count: int = 1,
              task_args: Optional[Sequence[Any]] = None,
              task_kwargs: Optional[Dict[str, Any]] = None) -> List[int]:
        """Queues ``tasks_count`` calls of the task (all or none, once the
        broker has them in its journal); their keys."""
        from . import functions
        task = {'name': task_name, 'queue': self.queue(task_type),
                'payload': functions.call_payload(task_args or [], task_kwargs or {})}
        keys = [s.id for s in self.client.submit_many([task] * tasks_count)]
        self.applied.update((key, (task_name, task_type)) for key in keys)
        return keys

    def wait_for_tasks(self, tasks: Sequence[int]) -> Iterator[Dict[str, Any]]:
        """Yields each task's state as it ends, in the order they end;
        TaskNotFound for a key the broker does not know, as ``status``."""
        for done in self.client.as_done(tasks):
            if done.state is State.UNKNOWN:
                raise TaskNotFound('Task or Group not found: %r' % (done.id,))
            name, task_type = self.applied.get(done.id, (None, None))
            yield self._state(TaskInfo(done.id, found=True, name=name, state=done.state,
                                       attempts=done.attempts, error=done.error,
                                       result=done.result), task_type)

    def status(self, task_key: int) -> Dict[str, Any]:
        """A task's state: ``state`` initiated, running or done, and once
        done ``result`` (its JSON value; None if it failed), ``error``."""
        try:
            info = self.client.status(task_key)
        except NotFound:
            raise TaskNotFound('Task or Group not found: %r' % (task_key,)) from None
        return self._state(info, self.types.get(info.queue or '', info.queue))

    def kill(self, task_key: int) -> None:
        """Stops the task (a cancel): its minion stops running it."""
        self.client.cancel([task_key])

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> 'Arbiter':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _state(info: TaskInfo, task_type: Optional[str]) -> Dict[str, Any]:
        state: Dict[str, Any] = {
            'task_key': info.id, 'task_name': info.name, 'task_type': task_type,
            'state': 'done' if info.state.is_final else
                     'running' if info.state is State.RUNNING else 'initiated',
            'result': None}
        if info.state is State.SUCCEEDED:
            from . import functions
            state['result'] = functions.result_value(info)
        elif info.state.is_final:
            state['error'] = info.error or str(info.state)
        return state


__all__ = ['Minion', 'Arbiter', 'TaskNotFound']
