"""Arbeiter's API over arbiter's Kestrel gateway (python/arbiter/arbeiter.py):
its README's handlers (forward to a queue, pairs, a generator, a sink, a
failure that goes back to the head and raises, a failures queue), `push`,
and its job script run by `job.start()` in processes of their own, against
a real arbiterd and arbiter-gateway."""

import os
import sys
import textwrap
import threading

import pytest

from python_support import PYTHON
from conftest import SANITIZED, Process, wait_until
from test_kestrel import client, ready

from arbiter import Arbeiter
from arbiter.arbeiter import KestrelError

pytestmark = pytest.mark.skipif(SANITIZED, reason='pure Python: once, with build/, is enough')


@pytest.fixture
def kgw(gateway):
    gw = gateway()
    ready(gw)
    return gw


def servers(gw):
    return ['127.0.0.1:%d' % gw.kestrel_port]


def drain(gw, queue):
    k = client(gw)
    items = []
    while True:
        item = k.get(queue)
        if item is None:
            return items
        items.append(item)


def test_the_readmes_handlers(kgw):
    def handler(a, data):
        return {"output": data}

    job = Arbeiter(servers(kgw), "input", handler)
    job.push("Hello, World!")
    job.push(b"second")
    threading.Timer(1.0, job.stop).start()
    job.run()                                   # until stop(): both items, then an empty get
    assert drain(kgw, 'output') == [b'Hello, World!', b'second']
    assert drain(kgw, 'input') == []            # closed: not given back

    def spit_words(a, data):
        words = data.split(b" ")
        return [("words", word) for word in words]

    words = Arbeiter(servers(kgw), "lines", spit_words)
    words.push("to be or")
    assert words.work_one()
    assert drain(kgw, 'words') == [b'to', b'be', b'or']

    def by_generator(a, key_list):
        key_list = key_list.split(b",")

        def datagen():
            for key in key_list:
                yield ("data", key.upper())
        return datagen()

    gen = Arbeiter(servers(kgw), "keys", by_generator)
    gen.push("k1,k2")
    assert gen.work_one()
    assert drain(kgw, 'data') == [b'K1', b'K2']

    stored = []
    sink = Arbeiter(servers(kgw), "sink", lambda a, data: stored.append(data))
    sink.push("x")
    assert sink.work_one()
    assert stored == [b'x'] and drain(kgw, 'sink') == []
    assert not sink.work_one(wait_ms=10)        # nothing left: no item, no call

    def times_two(a, data):
        value = int(data)                       # this could throw a ValueError
        return {"times-two": str(value * 2)}

    fails = Arbeiter(servers(kgw), "numbers", times_two)
    fails.push("21")
    fails.push("x")
    fails.push("5")
    assert fails.work_one()
    with pytest.raises(ValueError):
        fails.work_one()
    # the item went back to the head of the queue, before "5"
    assert drain(kgw, 'numbers') == [b'x', b'5']
    assert drain(kgw, 'times-two') == [b'42']

    def with_failures(a, data):
        try:
            value = int(data)
        except ValueError:
            return {"times-two-failures": data}
        return {"times-two": str(value * 2)}

    keep = Arbeiter(servers(kgw), "numbers", with_failures)
    keep.push("y")
    keep.push("4")
    assert keep.work_one() and keep.work_one()
    assert drain(kgw, 'times-two-failures') == [b'y']
    assert drain(kgw, 'times-two') == [b'8']


def test_a_refused_push_raises(kgw):
    job = Arbeiter(servers(kgw), "input", lambda a, data: None)
    with pytest.raises(KestrelError):
        job.push("x", queue="bad\x01queue")
    with pytest.raises(KestrelError, match='cannot reach'):
        Arbeiter(['127.0.0.1:1'], 'input', lambda a, data: None).push('x')


JOB = textwrap.dedent('''
    import os
    from arbiter import Arbeiter

    def some_cpu_bound_handler(a, data):
        return {"out": data + b" from %d" % os.getpid()}

    job = Arbeiter(["127.0.0.1:" + os.environ["PORT"]], "in", some_cpu_bound_handler)

    if __name__ == '__main__':
       job.start()
''')


def test_the_readmes_job_in_processes(kgw, processes, tmp_path):
    (tmp_path / 'job.py').write_text(JOB)
    env = dict(os.environ, PYTHONPATH=PYTHON, PORT=str(kgw.kestrel_port))
    for i in range(2):
        p = Process([sys.executable, 'job.py'], str(tmp_path / ('job-%d.log' % i)),
                    env=env, cwd=str(tmp_path))
        processes.append(p)
    # pushing from another process, as the README's prompt does
    job = Arbeiter(servers(kgw), 'in', lambda a, data: None)
    for line in range(20):
        job.push('line %d' % line)
    got = []

    def all_out():
        got.extend(drain(kgw, 'out'))
        return len(got) >= 20
    wait_until(all_out, timeout=60, what='20 items worked')
    assert sorted(g.split(b' from ')[0] for g in got) == sorted(
        b'line %d' % i for i in range(20))
