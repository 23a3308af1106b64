"""Functions as tasks (python/arbiter/functions.py), guillotina_amqp's
add_task and @task over arbiter: calls queued from asyncio code, run by
`python3 -m arbiter.functions worker` (its own process) against a real
arbiterd, their states read back; retries, cancels that cancel the
coroutine, and a worker that runs only what its modules define."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from python_support import PYTHON, fast_broker  # noqa: F401
from conftest import SANITIZED, Process, wait_until

import arbiter
from arbiter import functions

pytestmark = pytest.mark.skipif(SANITIZED, reason='pure Python: once, with build/, is enough')

MODULE = textwrap.dedent('''
    import asyncio
    import time
    import os  # noqa: F401 (a task naming fnmod.os.system must not reach it)

    from arbiter.functions import current_job, task


    @task
    async def add(a, b=0):
        await asyncio.sleep(0)
        return {'sum': a + b, 'attempt': current_job().attempt}


    def mul(a, b):
        return a * b


    @task(retries=1, backoff='fixed:0.1')
    def broken(text):
        raise RuntimeError(text)


    @task
    async def nap(marker):
        open(marker + '.start', 'w').close()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            open(marker + '.cancelled', 'w').close()
            raise


    @task(retries=0)
    def opaque():
        return object()


    class Box:
        def open(self):
            raise AssertionError('a method ran')


    @task
    async def chain(n):
        from arbiter.functions import add_task
        return (await add_task(mul, n, 2)).task_id


    @task
    def flaky():
        raise RuntimeError('not yet')


    @task(retries=0)
    async def patient(seconds):
        await asyncio.sleep(seconds)
        return 'rested'


    @task(retries=0)
    async def hog(seconds):
        time.sleep(seconds)  # blocks its event loop
        return 'woke'


    @task(retries=0, timeout=1)
    def stubborn(seconds):
        time.sleep(seconds)  # a thread cannot be stopped from outside
        return 'done'
''')


@pytest.fixture
def fnmod(tmp_path):
    (tmp_path / 'fnmod.py').write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop('fnmod', None)
    import fnmod
    yield fnmod
    sys.path.remove(str(tmp_path))
    sys.modules.pop('fnmod', None)


def start_worker(broker, processes, tmp_path, *extra):
    env = dict(os.environ, PYTHONPATH='%s:%s' % (PYTHON, tmp_path),
               ARBITER_BROKER=broker.endpoint)  # for the calls its functions make
    worker = Process([sys.executable, '-m', 'arbiter.functions', 'worker', '--import', 'fnmod',
                      '--broker', broker.endpoint] + list(extra),
                     str(tmp_path / 'functions-worker.log'), env=env)
    processes.append(worker)
    return worker


def test_calls_run_on_the_worker_and_their_states_are_the_brokers(fast_broker, processes,
                                                                   tmp_path, fnmod):
    start_worker(fast_broker, processes, tmp_path, '--max-running-tasks', '2')
    marker = str(tmp_path / 'nap')

    async def main():
        functions.configure(fast_broker.endpoint)
        try:
            added = await fnmod.add(2, b=3)
            state = await added.join(timeout=20)
            assert state['status'] == 'finished', state
            assert state['result'] == {'sum': 5, 'attempt': 1}
            assert await added.get_result() == {'sum': 5, 'attempt': 1}
            # a plain function of a module the worker imports
            product = await functions.add_task(fnmod.mul, 6, 7)
            assert (await product.join(timeout=20))['result'] == 42
            # retried (retries=1), then errored with the exception's text
            broken = await fnmod.broken('boom')
            state = await broken.join(timeout=20)
            assert state['status'] == 'errored' and state['attempts'] == 2, state
            assert state['error'] == 'RuntimeError: boom'
            # a return value JSON cannot carry fails the task, saying so
            state = await (await fnmod.opaque()).join(timeout=20)
            assert state['status'] == 'errored' and 'JSON' in state['error'], state
            # a cancel cancels the coroutine in the worker
            napping = await fnmod.nap(marker)
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
                lambda: os.path.exists(marker + '.start'), what='the nap started'))
            assert await napping.get_status() == 'running'
            with pytest.raises(functions.TaskNotFinished):
                await napping.get_result()
            assert await napping.cancel() is True
            assert (await napping.join(timeout=20))['status'] == 'canceled'
            assert await napping.cancel() is False
            with pytest.raises(functions.TaskNotFound):
                await functions.TaskState(10 ** 9).get_state()
        finally:
            await functions.close()

    asyncio.run(main())
    wait_until(lambda: os.path.exists(marker + '.cancelled'), what='the coroutine cancelled')


def test_a_worker_runs_only_what_its_modules_define(fast_broker, processes, tmp_path, fnmod):
    start_worker(fast_broker, processes, tmp_path)
    victim = tmp_path / 'victim'
    with arbiter.Client(fast_broker.endpoint) as client:
        # a task naming a function of a module the worker did not import
        task = client.submit('os.system', '{"args": ["touch %s"]}' % victim,
                             queue=functions.QUEUE).id
        done = client.wait(task, timeout=20)
        assert done.state is arbiter.State.DEAD
        assert done.error.startswith('no function os.system here'), done.error
        # nor one the module imports, reached through it
        task = client.submit('fnmod.os.system', '{"args": ["touch %s"]}' % victim,
                             queue=functions.QUEUE).id
        done = client.wait(task, timeout=20)
        assert done.state is arbiter.State.DEAD
        assert done.error.startswith('no function fnmod.os.system here'), done.error
        # nor a class, or a method of one
        for name in ('fnmod.Box', 'fnmod.Box.open'):
            done = client.wait(client.submit(name, '{}', queue=functions.QUEUE).id, timeout=20)
            assert done.error.startswith('no function %s here' % name), done.error
        # and a payload that is not a call
        task = client.submit(fnmod.add.name, 'not json', queue=functions.QUEUE).id
        done = client.wait(task, timeout=20)
        assert done.state is arbiter.State.DEAD and 'not a call' in done.error, done.error
        # queued from code without an event loop
        functions.configure(fast_broker.endpoint)
        done = client.wait(fnmod.add.submit(1), timeout=20)
        assert done.result == b'{"sum":1,"attempt":1}'
    assert not victim.exists()


def test_calls_made_in_a_function_leave_no_client_behind(fast_broker, processes, tmp_path,
                                                          fnmod):
    """A coroutine function that queues a call (add_task) makes a client on
    its slot's event loop, one loop per task: it is closed with it. Before:
    each task left its client's socket open, until the worker ran out of
    descriptors."""
    worker = start_worker(fast_broker, processes, tmp_path)
    fds = '/proc/%d/fd' % worker.pid

    def run(n):
        with arbiter.Client(fast_broker.endpoint) as client:
            done = client.wait(fnmod.chain.submit(n), timeout=20)
            assert done.state is arbiter.State.SUCCEEDED, done
            assert client.wait(int(done.result), timeout=20).result == b'%d' % (2 * n)

    functions.configure(fast_broker.endpoint)
    run(0)
    before = len(os.listdir(fds))
    for n in range(1, 11):
        run(n)
    assert len(os.listdir(fds)) < before + 5, (before, len(os.listdir(fds)))

def test_max_running_tasks_is_the_calls_run_at_once(fast_broker, processes, tmp_path, fnmod):
    """--max-running-tasks N: N calls run at once, the next when one ends."""
    start_worker(fast_broker, processes, tmp_path, '--max-running-tasks', '2')
    functions.configure(fast_broker.endpoint)
    markers = [str(tmp_path / ('nap%d' % i)) for i in range(3)]
    started = lambda: [os.path.exists(m + '.start') for m in markers]  # noqa: E731
    naps = [fnmod.nap.submit(m) for m in markers]
    wait_until(lambda: sum(started()) == 2, what='two naps running')
    time.sleep(1)
    assert sum(started()) == 2, started()  # not a third
    waiting = naps[started().index(False)]
    with arbiter.Client(fast_broker.endpoint) as client:
        client.cancel([naps[started().index(True)]])
        wait_until(lambda: all(started()), what='the third nap running, once one ended')
        assert client.status(waiting).state is arbiter.State.RUNNING
        client.cancel(naps)


def test_a_failed_call_is_retried_after_guillotinas_delay(fast_broker, processes, tmp_path,
                                                         fnmod):
    """guillotina_amqp's delay queue held a failed task for delayed_ttl_ms
    (2 minutes) before it ran again; so does the broker's backoff here,
    unless the function or configure() says otherwise."""
    start_worker(fast_broker, processes, tmp_path)
    functions.configure(fast_broker.endpoint)
    with arbiter.Client(fast_broker.endpoint) as client:
        flaky = fnmod.flaky.submit()
        info = wait_until(lambda: (lambda i: i.attempts == 1 and i.state is arbiter.State.SCHEDULED
                                   and i)(client.status(flaky)), what='the first attempt failed')
        assert 100_000 <= info.not_before_ms - time.time() * 1000 <= 120_000, info
        functions.configure(fast_broker.endpoint, backoff='fixed:0.2')
        flaky = fnmod.flaky.submit()
        done = client.wait(flaky, timeout=20)
        assert done.state is arbiter.State.DEAD and done.attempts == 4, done


def test_auto_kill_timeout_ends_a_worker_whose_call_is_stuck(fast_broker, processes, tmp_path,
                                                              fnmod):
    """guillotina_amqp's --auto-kill-timeout: the worker exits, for its
    supervisor to start it again, once a call holds its event loop (or,
    stopped, runs on) that long; a call that awaits is never stuck."""
    functions.configure(fast_broker.endpoint)
    worker = start_worker(fast_broker, processes, tmp_path, '--auto-kill-timeout', '2')
    with arbiter.Client(fast_broker.endpoint) as client:
        assert client.wait(fnmod.patient.submit(3), timeout=20).result == b'"rested"'
        assert worker.alive()
        hog = fnmod.hog.submit(60)
        worker.proc.wait(20)
        assert worker.proc.returncode == functions.EXIT_STUCK
        assert 'task %d (fnmod.hog) has held its event loop for 2.' % hog in worker.own_output()
        client.cancel([hog])  # not for the next worker to take
        worker = start_worker(fast_broker, processes, tmp_path, '--auto-kill-timeout', '2')
        stubborn = fnmod.stubborn.submit(60)
        worker.proc.wait(20)
        assert worker.proc.returncode == functions.EXIT_STUCK
        assert 'task %d (fnmod.stubborn) runs on 2.' % stubborn in worker.own_output()
        assert client.status(stubborn).error.startswith('timed out'), client.status(stubborn)


class _Held:
    """What the watchdog reads of a job: its id, name and cancelled flag."""

    def __init__(self, id):
        self.id, self.name, self.cancelled = id, 'fnmod.held', False


def _watchdog_threads():
    return [t for t in threading.enumerate() if t.name == 'arbiter-watchdog']


def test_the_watchdog_runs_only_while_it_watches_a_call():
    """A worker made in a program (functions.worker(...).run()) leaves no
    watchdog thread behind once its calls end; one is there again for the
    next call, and ends the worker for a call that holds its loop."""
    exits = []
    dog = functions.Watchdog(0.4, exit=exits.append)
    assert _watchdog_threads() == []
    for n in range(3):
        job = _Held(n)
        dog.started(job, on_loop=False)
        assert len(_watchdog_threads()) == 1
        dog.ended(job)
        wait_until(lambda: _watchdog_threads() == [], timeout=5, what='the watchdog ended')
    held = _Held(9)
    dog.started(held, on_loop=True)  # its loop never comes back
    wait_until(lambda: exits, timeout=5, what='the worker told to exit')
    assert exits == [functions.EXIT_STUCK]
    dog.ended(held)
    wait_until(lambda: _watchdog_threads() == [], timeout=5, what='the watchdog ended')


def test_the_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=PYTHON)
    run = subprocess.run([sys.executable, '-m', 'arbiter.functions', 'worker', '--help'],
                         capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 0 and '--max-running-tasks' in run.stdout
    run = subprocess.run([sys.executable, '-m', 'arbiter.functions', 'worker', '--import',
                          'no_such_module_here'], capture_output=True, text=True, env=env,
                         timeout=30)
    assert run.returncode == 2 and "No module named 'no_such_module_here'" in run.stderr
    for refused, why in ((['--mode', 'process'], 'watches thread slots'),
                         (['--auto-kill-timeout', '0'], 'over 0')):
        run = subprocess.run([sys.executable, '-m', 'arbiter.functions', 'worker', '--import',
                              'json', '--auto-kill-timeout', '1'] + refused,
                             capture_output=True, text=True, env=env, timeout=30)
        assert run.returncode == 2 and why in run.stderr, run.stderr


def test_a_broker_address_without_its_scheme_is_refused_at_once(tmp_path):
    """--broker HOST:PORT (the usual slip) is said as every other mistake
    in the options is, status 2 and no traceback; Worker() says it at once,
    as Client() does, not from run()."""
    env = dict(os.environ, PYTHONPATH=PYTHON)
    run = subprocess.run([sys.executable, '-m', 'arbiter.functions', 'worker', '--import',
                          'json', '--broker', '127.0.0.1:7700'], capture_output=True, text=True,
                         env=env, timeout=30)
    assert run.returncode == 2, run.stderr
    assert "arbiter.functions: bad broker endpoint '127.0.0.1:7700'" in run.stderr
    assert 'Traceback' not in run.stderr
    with pytest.raises(ValueError, match='expected tcp://HOST:PORT'):
        arbiter.Worker(['q'], endpoint='127.0.0.1:7700')


def test_the_worker_command_starts_without_a_warning():
    """python3 -m arbiter.functions, as the README runs it: the package
    does not import arbiter.functions itself, so runpy has no cause to warn
    that it found it in sys.modules before running it."""
    env = dict(os.environ, PYTHONPATH=PYTHON)
    run = subprocess.run([sys.executable, '-m', 'arbiter.functions', 'worker', '--help'],
                         capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 0 and run.stderr == ''
    # and arbiter.functions is there for `import arbiter` alone, as before
    run = subprocess.run([sys.executable, '-c', 'import arbiter; print(arbiter.functions.QUEUE)'],
                         capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 0 and run.stdout == 'functions\n', run.stderr
