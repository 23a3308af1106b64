"""invenia's Arbiter API over arbiter (python/arbiter/runner.py): the
README of arbiter-dag's example, ``create_task`` and ``run_tasks``, run
through a real arbiterd by the worker run_tasks starts in this process:
results and exceptions as Python objects, dependencies in order, retries
after their delay, a failed dependency and an unsatisfied one (missing,
circular) while the rest runs, max_workers, processes=True, timeouts."""

import logging
import os
import socket
import threading
import time
from datetime import timedelta

import pytest

from python_support import fast_broker  # noqa: F401
from conftest import SANITIZED

import arbiter
from arbiter import create_task, run_tasks
from arbiter.exceptions import FailedDependencyError, UnsatisfiedDependencyError

pytestmark = pytest.mark.skipif(SANITIZED, reason='pure Python: once, with build/, is enough')


class Sketchy(Exception):
    pass


def test_the_readmes_example_runs_through_the_broker(fast_broker):  # noqa: F811
    ran = []

    def foo_function(a, b):
        ran.append('foo')
        return {'joined': a + '-' + b}

    def lorem_function(word='lorem'):
        ran.append(word)
        return word.upper()

    results = run_tasks([
        create_task('foo', foo_function, args=('bar', 'baz')),
        create_task('lorem', lorem_function, dependencies=['foo']),
        create_task('ipsum', lorem_function, kwargs={'word': 'ipsum'}, dependencies=['foo']),
    ], endpoint=fast_broker.endpoint)
    assert results == {'foo': (True, {'joined': 'bar-baz'}), 'lorem': (True, 'LOREM'),
                       'ipsum': (True, 'IPSUM')}
    assert results['foo'].success and results['foo'].value == {'joined': 'bar-baz'}
    assert ran[0] == 'foo' and sorted(ran[1:]) == ['ipsum', 'lorem']
    # the broker ran them: they are its tasks, with what they returned
    with arbiter.Client(fast_broker.endpoint) as client:
        kept = {t.name: t for t in client.list(state='succeeded')}
        assert set(kept) == {'foo', 'lorem', 'ipsum'}
        assert client.status(kept['foo'].id).result == b'{"joined":"bar-baz"}'


def test_failures_retries_and_dependencies(fast_broker):  # noqa: F811
    calls = []
    error = Sketchy('not this time')

    def sketchy():
        calls.append(time.monotonic())
        raise error

    results = run_tasks([
        create_task('failable', sketchy, retries=2, delay=timedelta(seconds=0.3)),
        create_task('after', lambda: 'never', dependencies=['failable']),
        create_task('later', lambda: 'never', dependencies=['after']),
        create_task('alone', lambda: 'fine'),
        create_task('orphan', lambda: 'never', dependencies=['nobody']),
        create_task('below', lambda: 'never', dependencies=['orphan']),
        create_task('chicken', lambda: 'never', dependencies=['egg']),
        create_task('egg', lambda: 'never', dependencies=['chicken']),
    ], endpoint=fast_broker.endpoint, max_workers=2)
    # the exception of the last attempt, itself; three attempts, the delay between
    assert results['failable'] == (False, error)
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.29 and calls[2] - calls[1] >= 0.29
    for name in ('after', 'later', 'below'):
        assert not results[name].success
        assert isinstance(results[name].value, FailedDependencyError), results[name]
    for name in ('orphan', 'chicken', 'egg'):
        assert not results[name].success
        assert isinstance(results[name].value, UnsatisfiedDependencyError), results[name]
    assert 'nobody' in str(results['orphan'].value)
    assert results['alone'] == (True, 'fine')
    assert list(results) == ['failable', 'after', 'later', 'alone', 'orphan', 'below',
                             'chicken', 'egg']
    # the README's example spells retries "replies": the same
    again = []

    def sketchy_function():
        again.append(1)
        if len(again) < 3:
            raise error
        return 'third time'
    assert run_tasks([create_task('failable', sketchy_function, replies=3,
                                  delay=timedelta(seconds=0))],
                     endpoint=fast_broker.endpoint)['failable'] == (True, 'third time')
    with pytest.raises(TypeError, match='not both'):
        create_task('x', print, retries=1, replies=1)
    with pytest.raises(ValueError, match="unique: 'a'"):
        run_tasks([create_task('a', print), create_task('a', print)],
                  endpoint=fast_broker.endpoint)
    # nothing that can run: nothing reaches the broker
    assert not run_tasks([create_task('x', print, dependencies=['y'])],
                         endpoint='tcp://127.0.0.1:1')['x'].success


def test_max_workers_threads_and_timeouts(fast_broker):  # noqa: F811
    both = threading.Barrier(2, timeout=20)  # passes only if the two run at once

    def meet():
        return both.wait() in (0, 1)

    release = threading.Event()
    results = run_tasks([
        create_task('one', meet), create_task('two', meet),
        create_task('slow', release.wait, args=(30,), timeout=1),
    ], max_workers=3, endpoint=fast_broker.endpoint)
    release.set()
    assert results['one'] == (True, True) and results['two'] == (True, True)
    assert not results['slow'].success
    assert isinstance(results['slow'].value, arbiter.TaskFailed)
    assert 'timed out' in str(results['slow'].value)


def test_no_broker_is_said_without_a_cancel_to_run():
    """A broker never reached took nothing: the error does not ask for an
    `arbiter cancel` of the call's queue (5 s: the client's connect
    timeout)."""
    with socket.socket() as s:  # a port that refuses
        s.bind(('127.0.0.1', 0))
        endpoint = 'tcp://127.0.0.1:%d' % s.getsockname()[1]
    with pytest.raises(arbiter.Unreachable) as raised:
        run_tasks([create_task('a', int)], endpoint=endpoint)
    assert not isinstance(raised.value, arbiter.Timeout)
    assert 'arbiter cancel' not in ' '.join(getattr(raised.value, '__notes__', [])), \
        raised.value.__notes__


def test_a_thread_past_its_timeout_does_not_hold_the_call(fast_broker, caplog):  # noqa: F811
    """A thread cannot be stopped: once the broker has timed its task out,
    run_tasks returns without waiting for it (it waited its worker's 5 s
    grace and a second more) and does not warn that the broker may run it
    again: the broker has ended it."""
    release = threading.Event()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger='arbiter'):
        results = run_tasks([create_task('stuck', release.wait, args=(30,), timeout=1)],
                            endpoint=fast_broker.endpoint)
    took = time.monotonic() - started
    release.set()
    assert 'timed out' in str(results['stuck'].value)
    assert took < 4.5, took
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if 'not acknowledged' in m], said
    assert [m for m in said if 'the broker stopped still running tasks=1' in m], said


def test_processes(fast_broker):  # noqa: F811
    parent = os.getpid()

    def where():
        return {'pid': os.getpid(), 'parent': os.getppid()}

    def broken():
        raise Sketchy('in a child')

    results = run_tasks([
        create_task('where', where),
        create_task('broken', broken),
        create_task('after', where, dependencies=['broken']),
    ], processes=True, max_workers=2, endpoint=fast_broker.endpoint)
    assert results['where'].success and results['where'].value['pid'] != parent
    assert results['where'].value['parent'] == parent
    value = results['broken'].value
    assert not results['broken'].success and isinstance(value, Sketchy)
    assert str(value) == 'in a child'
    assert isinstance(results['after'].value, FailedDependencyError)


class NeedsTwo(Exception):
    def __init__(self, a, b):  # pickles, but cannot be made again from its args
        super().__init__('%s-%s' % (a, b))


def test_what_cannot_come_back_and_the_last_attempt(fast_broker, tmp_path):  # noqa: F811
    runs = tmp_path / 'runs'

    def once_then_slow():
        with open(runs, 'a') as f:
            f.write('x')
        if os.path.getsize(runs) == 1:
            raise Sketchy('attempt 1 failed')
        time.sleep(3)  # attempt 2: past its timeout

    results = run_tasks([create_task('f', once_then_slow, retries=1, timeout=1)],
                        endpoint=fast_broker.endpoint, max_workers=2)
    # the last attempt's end, not the first one's exception
    assert isinstance(results['f'].value, arbiter.TaskFailed), results['f']
    assert 'timed out' in str(results['f'].value)

    def generator():
        with open(runs, 'a') as f:
            f.write('g')
        return (x for x in [1])  # cannot be pickled back

    def needs_two():
        raise NeedsTwo(1, 2)

    results = run_tasks([create_task('gen', generator, retries=3),
                         create_task('two', needs_two), create_task('fine', int)],
                        endpoint=fast_broker.endpoint, processes=True)
    assert runs.read_text().count('g') == 1  # it ran once: it did not fail
    assert not results['gen'].success and 'cannot come back' in str(results['gen'].value)
    assert isinstance(results['two'].value, RuntimeError)
    assert str(results['two'].value) == 'NeedsTwo: 1-2'
    assert results['fine'] == (True, 0)


def test_arguments_and_an_abandoned_call(fast_broker):  # noqa: F811
    # a dependency named twice is one; a string is not a list of names
    results = run_tasks([create_task('a', int), create_task('b', int, dependencies=['a', 'a'])],
                        endpoint=fast_broker.endpoint)
    assert results == {'a': (True, 0), 'b': (True, 0)}
    with pytest.raises(TypeError, match='not the string'):
        create_task('c', int, dependencies='a')
    with pytest.raises(ValueError, match='not a number of seconds'):
        create_task('c', int, retries=1, delay=float('nan'))
    with pytest.raises(ValueError, match='max_workers'):
        run_tasks([create_task('a', int)], max_workers=0, endpoint=fast_broker.endpoint)
    # a call that ends before its flow cancels what it left in the broker
    release = threading.Event()
    with pytest.raises(arbiter.WaitTimeout):
        run_tasks([create_task('slow', release.wait, args=(30,)),
                   create_task('after', int, dependencies=['slow'])],
                  endpoint=fast_broker.endpoint, timeout=1)
    release.set()
    with arbiter.Client(fast_broker.endpoint) as client:
        left = [t for t in client.list() if t.name in ('slow', 'after')]
        assert [t.state for t in left] == [arbiter.State.CANCELLED] * 2, left


def test_a_call_interrupted_in_its_submit_leaves_nothing_waiting(fast_broker,  # noqa: F811
                                                                    monkeypatch):
    """Ctrl-C after the broker took the flow but before its answer was
    read: the call's queue is cancelled all the same."""
    submit = arbiter.Client.submit_flow

    def submit_then_interrupted(self, *args, **kwargs):
        submit(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(arbiter.Client, 'submit_flow', submit_then_interrupted)
    release = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        run_tasks([create_task('held', release.wait, args=(30,)),
                   create_task('next', int, dependencies=['held'])],
                  endpoint=fast_broker.endpoint)
    release.set()
    monkeypatch.undo()
    with arbiter.Client(fast_broker.endpoint) as client:
        left = [t for t in client.list() if t.name in ('held', 'next')]
        assert [t.state for t in left] == [arbiter.State.CANCELLED] * 2, left


def test_the_wrong_types_are_told_by_name():
    """A new user's slips are said naming what is wrong, before anything is
    sent (no broker is needed to hear them)."""
    with pytest.raises(TypeError, match="run_tasks takes the tasks create_task makes, not "
                                        "<built-in function len>"):
        run_tasks([len])
    with pytest.raises(TypeError, match="task 'a': kwargs is a dict of arguments, not \\[1\\]"):
        create_task('a', int, kwargs=[1])
    with pytest.raises(ValueError, match="task 'a': delay: '5s' is not a number of seconds"):
        create_task('a', int, retries=1, delay='5s')
    with pytest.raises(ValueError, match="task 'a': timeout: 'x' is not a number of seconds"):
        create_task('a', int, timeout='x')


def test_a_run_that_ends_well_logs_no_warning(fast_broker, caplog):  # noqa: F811
    """The worker run_tasks runs for its call stops quietly once every task
    has ended: a warning that it stops running tasks is for tasks it stops."""
    with caplog.at_level('INFO', logger='arbiter'):
        assert run_tasks([create_task('a', int)], endpoint=fast_broker.endpoint) == \
            {'a': (True, 0)}
    warned = [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert warned == []
