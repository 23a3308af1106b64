"""arbiter: the Python client and worker of the arbiter task queue.

A pure-Python speaker of arbiter's wire protocol (proto/PROTOCOL.md) over
pyzmq and msgpack. Submit and wait in a few lines:

    from arbiter import Client
    c = Client()                                  # $ARBITER_BROKER or tcp://127.0.0.1:7700
    t = c.submit("resize", b"cat.png", retries=3)
    print(c.wait(t).result)

and run tasks:

    from arbiter import Worker
    w = Worker(queues=["images"])

    @w.task("resize")
    def resize(job):
        return shrink(job.payload)

    w.run()                                       # until SIGTERM / SIGINT

Modules: ``client`` (Client), ``aio`` (AsyncClient, asyncio), ``worker``
(Worker, Job), ``flows`` (DAG, group and pipe files), ``functions``
(functions as tasks: ``@task``, ``add_task``), ``runner`` (invenia's
Arbiter: ``create_task``, ``run_tasks``; its ``exceptions``), ``carrier``
(the carrier arbiter's ``Minion`` and ``Arbiter``), ``arbeiter`` (Arbeiter's
``Arbeiter``, over arbiter-gateway's Kestrel port), ``records``
(what the broker tells), ``errors`` (the exceptions), ``codec`` (the wire
format).
"""

__version__ = '0.1.0'  # before the modules: arbiter.functions reads it

import importlib
from typing import Any

from . import codec, errors, exceptions, flows
from .arbeiter import Arbeiter
from .carrier import Arbiter, Minion
from .client import Client
from .errors import (ArbiterError, BadRequest, BrokerError, Conflict, Forbidden, Invalid,
                     JournalFailed, JournalFull, NotFound, ProtocolError, Refused, TaskFailed,
                     Timeout, TooLarge, Unavailable, UnknownWorker, Unreachable,
                     VersionNotSpoken, WaitTimeout)
from .records import (Change, Done, FlowResult, FlowSubmitted, FlowTask, Limit, Outcome, Peeked,
                      Pong, Schedule, State, Stats, Submitted, TaskInfo)
from .runner import Result, Task, create_task, run_tasks
from .worker import Fail, Job, Worker


def __getattr__(name: str) -> Any:
    """arbiter.functions, imported at its first use rather than with the
    package, so that `python3 -m arbiter.functions` runs it without runpy's
    warning that it was imported before."""
    if name == 'functions':
        return importlib.import_module('.functions', __name__)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


__all__ = [
    'Client', 'Worker', 'Job', 'Fail', 'flows', 'codec', 'errors', 'exceptions',
    'create_task', 'run_tasks', 'Task', 'Result', 'Minion', 'Arbiter', 'Arbeiter',
    'ArbiterError', 'BrokerError', 'BadRequest', 'Forbidden', 'NotFound', 'Conflict', 'UnknownWorker',
    'TooLarge', 'Invalid', 'JournalFailed', 'JournalFull', 'Unavailable', 'VersionNotSpoken',
    'Unreachable', 'Refused',
    'Timeout', 'WaitTimeout', 'ProtocolError', 'TaskFailed',
    'State', 'Submitted', 'Done', 'TaskInfo', 'Change', 'Outcome', 'Stats', 'Peeked',
    'Schedule', 'Limit', 'Pong', 'FlowSubmitted', 'FlowResult', 'FlowTask',
]
