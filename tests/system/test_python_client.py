"""The Python client against a real arbiterd: every call, keys, errors in
the broker's words, an unreachable broker, and waits that survive a broker
kill -9 with each task reported exactly once."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from python_support import (FAST, PYTHON, arbiter, client, fast_broker,  # noqa: F401
                            start_py_worker)
from arbiter import (ArbiterError, Client, Conflict, Invalid, NotFound, State, Timeout,
                     Unreachable, WaitTimeout)
from conftest import ROOT, SANITIZED, Broker, Process, free_port, wait_until
from helpers import start_exec_worker


def test_five_lines(fast_broker, processes, tmp_path, monkeypatch):
    start_exec_worker(fast_broker, processes, tmp_path, 'tr a-z A-Z')
    monkeypatch.setenv('ARBITER_BROKER', fast_broker.endpoint)
    from arbiter import Client
    c = Client()
    t = c.submit("resize", b"cat.png", retries=3)
    assert c.wait(t).result == b'CAT.PNG'
    assert str(t) == '%d' % t and '%s' % t == str(int(t))  # prints as the CLI prints it
    c.close()


def test_a_bare_host_and_port_is_told_its_form():
    from arbiter.aio import AsyncClient
    for make in (Client, AsyncClient):
        with pytest.raises(ValueError) as refused:
            make('127.0.0.1:7700')
        assert str(refused.value) == ("bad broker endpoint '127.0.0.1:7700': expected "
                                      "tcp://HOST:PORT (or ipc://PATH, inproc://NAME)")
    from arbiter import Worker
    with pytest.raises(ValueError) as refused:  # at once, as a client: not from run()
        Worker(endpoint='127.0.0.1:7700')
    assert 'expected tcp://HOST:PORT' in str(refused.value)


def test_every_mistake_is_an_arbiter_error(client):
    """python/README.md: every exception is an ArbiterError. A flow file
    nested too deeply, a lone surrogate in a payload and an id that is not
    a number were Python's own errors; a task the broker does not know is
    NotFound, and not local: the broker was asked."""
    from arbiter import flows
    for call in (lambda: flows.parse('[' * 100000, 'dag'),
                 lambda: flows.parse('{"tasks": [{"name": "a", "task": "t", '
                                     '"payload": "\\ud800"}]}', 'dag'),
                 lambda: client.cancel(['abc']),
                 lambda: client.status('x1'),
                 lambda: client.status(1.9),
                 lambda: client.status_many('12'),
                 lambda: client.wait_all([None])):
        with pytest.raises(Invalid) as refused:
            call()
        assert refused.value.local, refused.value
    with pytest.raises(NotFound) as missing:
        client.status(987654321)
    assert not missing.value.local


def test_submit_with_every_option(client, fast_broker):
    client.pause('opts')
    t = client.submit('job', 'payload é', queue='opts', key='k-1', priority=7, retries=2,
                      backoff='exp:1,30', no_jitter=True, timeout=60, soft_timeout=30,
                      retention=3600, expires=time.time() + 3600, headers=b'\x01h',
                      args=b'{"a":1}')
    assert t.existing is False and t.state is State.READY
    info = client.status(t)
    assert (info.queue, info.name, info.key, info.priority) == ('opts', 'job', 'k-1', 7)
    assert (info.max_attempts, info.timeout_ms, info.soft_timeout_ms) == (3, 60000, 30000)
    assert info.args == b'{"a":1}' and info.state is State.READY
    # a paused queue shows nothing at its head: nothing would come from it
    assert client.peek('opts', 5) == []
    client.resume('opts')  # no worker takes from it
    head = client.peek('opts', 5)
    assert [(p.id, p.payload, p.name, p.delivered) for p in head] == \
        [(t, 'payload é'.encode(), 'job', 0)]
    later = client.submit('job', queue='opts', delay=60)
    at = client.submit('job', queue='opts', at=time.time() + 120)
    assert client.status(later).state is State.SCHEDULED
    assert client.status(at).not_before_ms >= (time.time() + 110) * 1000
    # fan-out needs the endpoints connected, unless told otherwise
    with pytest.raises(Invalid) as e:
        client.submit('deploy', endpoints=['nobody'])
    assert 'nobody' in e.value.reason and not e.value.local
    # in this client's words: the protocol's field is allow_unknown
    assert str(e.value).endswith("no worker named 'nobody' is connected "
                                 "(allow_unknown_endpoints=True to send anyway)"), str(e.value)
    fan = client.submit('deploy', endpoints=['w9'], allow_unknown_endpoints=True,
                        endpoint_timeout=0.5)
    done = client.wait(fan, timeout=20)
    assert done.state is State.DEAD and 'missing endpoints: w9' in done.error


def test_a_known_key_returns_the_first_task(client):
    first = client.submit('job', 'one', key='same', delay=60)
    again = client.submit('job', 'two', key='same', delay=60)
    assert again == first and again.existing and not first.existing
    many = client.submit_many([{'name': 'job', 'key': 'same'}, {'name': 'job', 'key': 'other'}])
    assert many[0] == first and many[0].existing and not many[1].existing


def test_wait_status_list_and_failures(client, fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path)
    ok = client.submit('upper', 'abc')
    bad = client.submit('fail', 'why', retries=1)
    done = client.wait(ok, timeout=20)
    assert done.ok and done.result == b'ABC' and done.check() == b'ABC' and done.attempts == 1
    failed = client.wait(bad, timeout=20)
    assert failed.state is State.DEAD and failed.error == 'it broke: why' and failed.attempts == 2
    with pytest.raises(arbiter.TaskFailed) as e:
        failed.check()
    assert e.value.done is failed
    info = client.status(bad)
    assert [a.error for a in info.history] == ['it broke: why', 'it broke: why']
    assert client.wait(ok, timeout=5).result == b'ABC'  # a new watch reports it again
    unknown = client.wait(999999, timeout=5)
    assert unknown.state is State.UNKNOWN and unknown.error == 'no such task'
    with pytest.raises(NotFound):
        client.status(999999)
    assert [t.found for t in client.status_many([ok, 999999])] == [True, False]
    ids = client.submit_many([{'name': 'upper', 'payload': str(i)} for i in range(30)],
                             watch=True)
    assert [d.result for d in client.wait_all(ids, timeout=20)] == \
        [str(i).encode() for i in range(30)]
    listed = client.list(state='succeeded')
    assert [t.id for t in listed] == sorted([ok] + ids)
    assert [t.id for t in client.list(limit=3, newest=True)] == sorted(ids)[-3:][::-1]
    assert client.list(queue='nowhere') == []
    resting = 'waiting, scheduled, ready, running, succeeded, dead, cancelled, skipped'
    for failed in ('failed', State.FAILED, 6):  # only events tell failed: said as the CLI says it
        with pytest.raises(Invalid) as e:
            client.list(state=failed)
        assert e.value.local and e.value.reason == (
            'state: no task rests in failed (a failed attempt leaves its task scheduled for '
            'a retry, or dead); give one of ' + resting)
    for bogus, shown in (('bogus', "'bogus'"), (State.UNKNOWN, "'unknown'"), (42, '42')):
        with pytest.raises(Invalid) as e:
            client.list(state=bogus)
        assert e.value.local and e.value.reason == 'state: %s is not one of %s' % (shown, resting)


def test_as_done_next_done_and_wait_timeouts(client, fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path, '--slots', '3')
    slow = client.submit('sleep', '1.0')
    fast = client.submit('sleep', '0.1')
    order = [d.id for d in client.as_done([slow, fast], timeout=20)]
    assert order == [fast, slow]
    with pytest.raises(ArbiterError):
        client.next_done(timeout=0.1)  # nothing is watched
    parked = client.submit('sleep', '0.5', queue='idle')
    with pytest.raises(WaitTimeout):
        client.wait(parked, timeout=0.3)
    assert client.watching == 1
    client.cancel(parked)
    done = client.next_done(timeout=10)  # the watch lived on: reported once, here
    assert done.id == parked and done.state is State.CANCELLED
    with pytest.raises(ArbiterError):
        client.next_done(timeout=0.3)


def test_cancel_retry_delete(client, fast_broker, processes, tmp_path):
    queued = client.submit_many([{'name': 'upper', 'queue': 'held'} for _ in range(3)])
    change = client.cancel([queued[0], 999999])
    assert [(o.id, o.code, o.state) for o in change.outcomes] == \
        [(queued[0], 0, State.CANCELLED), (999999, 404, State.UNKNOWN)]
    assert client.cancel(queue='held').count == 2
    again = client.cancel(queued[0])
    assert again.outcomes[0].code == 409 and again.outcomes[0].state is State.CANCELLED
    start_py_worker(fast_broker, processes, tmp_path)
    dead = client.submit('fail', 'x')
    assert client.wait(dead, timeout=20).state is State.DEAD
    change = client.retry(dead)
    assert change.outcomes[0].ok and change.count == 1
    assert client.wait(dead, timeout=20).state is State.DEAD
    assert len(client.status(dead).history) == 2  # a new round of attempts ran
    assert client.retry(queue='default').count == 1
    client.wait(dead, timeout=20)
    deleted = client.delete([queued[0], dead, 999999])
    assert [o.code for o in deleted.outcomes] == [0, 0, 404]
    assert [t.found for t in client.status_many([queued[0], dead])] == [False, False]
    assert client.delete(state='cancelled', queue='held').count == 2
    with pytest.raises(Invalid):
        client.delete()
    with pytest.raises(NotFound):
        client.retry(flow=424242)


def test_queues_limits_stats_and_schedules(client, fast_broker):
    client.configure_queue('q', max_running=2, rate_per_sec=10, retention=60,
                           on_failure='head')
    client.submit_many([{'name': 'job', 'queue': 'q'} for _ in range(4)])
    client.pause('q')
    stats = client.stats()
    q = stats.queue('q')
    assert q.paused and q.counts[State.READY] == 4 and q.max_running == 2
    assert (q.rate_per_sec, q.retention_ms, q.on_failure) == (10, 60000, 'head')
    assert stats.submitted >= 4 and stats.uptime_ms > 0
    client.configure_queue('q', max_running=0)
    assert client.stats().queue('q').max_running == 0
    client.resume('q')
    assert not client.stats().queue('q').paused
    assert client.purge('q') == 4
    assert client.limits() == [] and client.limits('job') == []
    client.limit('job', max_running=1, rate_per_sec=0)
    client.limit('alpha', rate_per_sec=7)
    assert client.limits() == [arbiter.Limit('alpha', 0, 7, 0), arbiter.Limit('job', 1, 0, 0)]
    assert client.limits('job') == [arbiter.Limit('job', 1, 0, 0)]
    client.limit('alpha', rate_per_sec=0)
    assert [x.name for x in client.limits()] == ['job']
    with pytest.raises(Invalid):
        client.configure_queue('q', on_failure='sometimes')
    added = client.add_schedule('nightly', '30 2 * * *', b'report', zone='Europe/Berlin',
                                task='upper', retries=2, catch_up='all')
    assert (added.name, added.task, added.zone, added.retries) == \
        ('nightly', 'upper', 'Europe/Berlin', 2)
    assert added.next_ms > time.time() * 1000 and added.payload == b'report'
    with pytest.raises(Conflict):
        client.add_schedule('nightly', '@daily')
    with pytest.raises(Invalid) as e:
        client.add_schedule('bad', '0 25 * * *')
    assert 'hour' in e.value.reason
    assert client.pause_schedule('nightly').paused
    assert not client.resume_schedule('nightly').paused
    assert [s.name for s in client.schedules()] == ['nightly']
    client.remove_schedule('nightly')
    assert client.schedules() == []
    with pytest.raises(NotFound):
        client.remove_schedule('nightly')


def test_an_unreachable_broker(tmp_path, processes):
    port = free_port()
    c = Client('tcp://127.0.0.1:%d' % port, timeout=0.3)
    with pytest.raises(Unreachable) as e:
        c.ping()
    assert not isinstance(e.value, Timeout)
    assert ('cannot reach the broker at tcp://127.0.0.1:%d: no connection within 0.3 s (is '
            'arbiterd running there?)' % port) == str(e.value)
    # a submit that reached no broker is not of unknown outcome: said so, as
    # the C client says it
    with pytest.raises(Unreachable) as e:
        c.submit('job', key='safe')
    assert not isinstance(e.value, Timeout) and 'cannot reach the broker' in str(e.value)
    with pytest.raises(Unreachable):
        c.wait(5)
    assert c.watching == 1  # still watched: a later wait goes on
    # and the submit is not sent later: a broker started there gets nothing of it
    # (the listing goes out behind anything the socket still held)
    broker = Broker(tmp_path, port=port)
    processes.append(broker)
    broker.wait_ready()
    c.timeout = 10.0
    assert list(c.list()) == []
    assert c.submit('job', key='safe') > 0
    c.close()
    with pytest.raises(ArbiterError):
        c.ping()


def test_one_thread_at_a_time(client):
    errors = []
    inside = threading.Event()

    def other():
        inside.wait(5)
        time.sleep(0.2)  # the main thread is in its wait by then
        try:
            client.ping()
        except RuntimeError as e:
            errors.append(e)
    t = threading.Thread(target=other)
    t.start()
    parked = client.submit('job', queue='idle')
    inside.set()
    with pytest.raises(WaitTimeout):
        client.wait(parked, timeout=0.5)
    t.join()
    assert errors and 'one thread at a time' in str(errors[0])


def test_wait_across_a_broker_kill_reports_each_task_once(fast_broker, processes, tmp_path):
    c = Client(fast_broker.endpoint, timeout=10, rewatch=0.2)
    ids = c.submit_many([{'name': 'upper', 'payload': 't%d' % i} for i in range(40)],
                        watch=True)
    finished = c.submit_many([{'name': 'job', 'queue': 'none'}])
    c.cancel(finished)  # ended before the restart, watched after it
    c.watch(finished)
    early = c.next_done(timeout=5)
    assert early.id == finished[0] and early.state is State.CANCELLED
    fast_broker.kill9()
    again = fast_broker.restart()
    processes.append(again)
    start_py_worker(again, processes, tmp_path, '--slots', '4')
    reports = []
    while len(reports) < len(ids):
        reports.append(c.next_done(timeout=30))
    assert sorted(d.id for d in reports) == sorted(ids)
    assert all(d.ok and d.result == b'T%d' % ids.index(d.id) for d in reports)
    # the keep-alive re-watched every 0.2 s: the duplicates never came out
    time.sleep(0.6)
    with pytest.raises(ArbiterError):
        c.next_done(timeout=0.5)
    c.close()


def test_a_wait_outlives_a_restart_in_the_middle(fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path)
    c = Client(fast_broker.endpoint, timeout=10)
    task = c.submit('sleep', '2')
    box = {}
    waiter = threading.Thread(target=lambda: box.update(done=c.wait(task, timeout=60)))
    waiter.start()
    wait_until(lambda: c.watching, what='the wait watches')
    time.sleep(0.3)
    fast_broker.kill9()
    again = Broker(fast_broker.tmp_path, port=fast_broker.port, db=fast_broker.db, extra=FAST)
    processes.append(again)
    waiter.join(60)
    assert box['done'].ok and box['done'].result == b'slept'
    c.close()


def readme_python_blocks():
    """The README's two Python examples ("From Python"): the client's
    and the worker's, as a reader copies them."""
    text = open(os.path.join(ROOT, 'README.md')).read()
    section = text.split('## From Python', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```python\n(.*?)```', section, re.S)


def test_the_readme_examples_work_together(fast_broker, processes, tmp_path):
    """The worker the README shows runs the task its client submits."""
    client_code, worker_code = readme_python_blocks()
    env = dict(os.environ, PYTHONPATH=PYTHON, ARBITER_BROKER=fast_broker.endpoint)
    (tmp_path / 'worker.py').write_text(worker_code)
    (tmp_path / 'client.py').write_text(client_code)
    worker = Process([sys.executable, str(tmp_path / 'worker.py')],
                     str(tmp_path / 'worker.log'), env=env)
    processes.append(worker)
    done = subprocess.run([sys.executable, str(tmp_path / 'client.py')], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert done.returncode == 0, (done.stderr, worker.output())
    assert done.stdout.strip() == b"b'CAT.PNG'"


@pytest.mark.skipif(SANITIZED, reason='pure Python: once, with build/, is enough')
def test_the_package_installs_into_a_virtualenv_without_an_index(fast_broker, processes,
                                                                   tmp_path):
    """python/README.md's offline install: a virtualenv that sees Debian's
    pyzmq, msgpack and setuptools, and pip told to fetch nothing; the
    README's worker and client then run from it, with no PYTHONPATH."""
    source = tmp_path / 'src'
    shutil.copytree(PYTHON, source)  # pip writes its egg-info beside the sources
    venv = tmp_path / 'venv'
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--system-site-packages', str(venv)],
                   check=True, timeout=120)
    pip = subprocess.run([str(venv / 'bin' / 'pip'), 'install', '--no-index',
                          '--no-build-isolation', str(source)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert pip.returncode == 0, pip.stdout.decode(errors='replace')
    python = str(venv / 'bin' / 'python')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['ARBITER_BROKER'] = fast_broker.endpoint
    where = subprocess.run([python, '-c', 'import arbiter; print(arbiter.__file__)'], env=env,
                           cwd=str(tmp_path), stdout=subprocess.PIPE, check=True, timeout=30)
    assert where.stdout.decode().startswith(str(venv)), where.stdout
    client_code, worker_code = readme_python_blocks()
    (tmp_path / 'worker.py').write_text(worker_code)
    (tmp_path / 'client.py').write_text(client_code)
    processes.append(Process([python, str(tmp_path / 'worker.py')],
                             str(tmp_path / 'worker.log'), env=env))
    done = subprocess.run([python, str(tmp_path / 'client.py')], env=env, cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"b'CAT.PNG'"
