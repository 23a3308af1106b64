"""A queue's bounds on its ready tasks (QUEUE set max_ready,
max_ready_bytes): a submit that takes the queue over drops its oldest
ready tasks in the same turn, exactly, however many clients submit at
once, with a cold backlog too, and across a kill -9."""

import pytest

import arbiter_proto
from python_support import FAST, start_py_worker  # (and the arbiter package on the path)
from arbiter import Client, Invalid, State, flows
from conftest import Broker, wait_until
from helpers import count_while


@pytest.fixture
def broker(tmp_path, processes):
    # few tasks in memory, so that a bound reaches into the cold backlog
    b = Broker(tmp_path, extra=FAST + ['--hot-tasks', '8'])
    processes.append(b)
    return b


@pytest.fixture
def client(broker):
    c = Client(broker.endpoint, timeout=10.0)
    yield c
    c.close()


def ready_payloads(client, queue):
    return [p.payload for p in client.peek(queue, 1000)]


def test_a_submit_drops_the_oldest_ready_tasks(client):
    client.configure_queue('b', max_ready=3)
    q = client.stats().queue('b')
    assert (q.max_ready, q.max_ready_bytes) == (3, 0)
    first = [client.submit('job', b'%d' % i, queue='b') for i in range(5)]
    assert ready_payloads(client, 'b') == [b'2', b'3', b'4']
    dropped = client.status(first[0])
    assert dropped.state is State.CANCELLED and 'dropped' in dropped.error
    assert client.status(first[2]).state is State.READY
    # a batch bigger than the bound keeps its own last three
    batch = client.submit_many([{'name': 'job', 'queue': 'b', 'payload': b'x%d' % i}
                                for i in range(10)])
    assert [t.state for t in batch] == [State.CANCELLED] * 7 + [State.READY] * 3
    assert ready_payloads(client, 'b') == [b'x7', b'x8', b'x9']
    assert client.stats().queue('b').counts[State.READY] == 3
    assert client.stats().queue('b').dropped == 2 + 3 + 7  # 0, 1; then 2-4 and x0-x6
    # the head is the next task out: a task of a higher priority is the
    # head as it comes in, and goes (as RabbitMQ's priority queues drop)
    urgent = client.submit('job', b'urgent', queue='b', priority=9)
    assert urgent.state is State.CANCELLED
    assert ready_payloads(client, 'b') == [b'x7', b'x8', b'x9']
    client.submit('job', b'low', queue='b', priority=-1)
    assert ready_payloads(client, 'b') == [b'x8', b'x9', b'low']


def test_a_byte_bound(client):
    client.configure_queue('bytes', max_ready_bytes=250)
    for i in range(4):
        client.submit('job', bytes([65 + i]) * 100, queue='bytes')
    assert [p[:1] for p in ready_payloads(client, 'bytes')] == [b'C', b'D']
    assert client.stats().queue('bytes').ready_bytes == 200
    # a task bigger than the bound by itself goes too, once it is the head
    client.submit('job', b'Z' * 300, queue='bytes')
    assert ready_payloads(client, 'bytes') == []
    # both bounds hold
    client.configure_queue('bytes', max_ready=2)
    for i in range(3):
        client.submit('job', b'%d' % i, queue='bytes')
    assert ready_payloads(client, 'bytes') == [b'1', b'2']


def test_setting_a_bound_trims_at_once_and_clearing_it_stops(client):
    client.submit_many([{'name': 'job', 'queue': 'later', 'payload': b'%d' % i}
                        for i in range(50)])
    client.configure_queue('later', max_ready=5)
    assert ready_payloads(client, 'later') == [b'%d' % i for i in range(45, 50)]
    client.configure_queue('later', max_ready=0)
    q = client.stats().queue('later')
    assert q.max_ready == 0 and q.counts[State.READY] == 5
    client.submit('job', b'more', queue='later')
    assert len(ready_payloads(client, 'later')) == 6
    with pytest.raises(Invalid):
        client.configure_queue('later', max_ready=-1)


def test_bound_with_a_cold_backlog(client):
    # 100 ready tasks, 8 of them in memory: the bound drops through the
    # journal's backlog in order
    client.submit_many([{'name': 'job', 'queue': 'cold', 'payload': b'%03d' % i}
                        for i in range(100)])
    client.configure_queue('cold', max_ready=30)
    assert ready_payloads(client, 'cold') == [b'%03d' % i for i in range(70, 100)]
    for i in range(100, 110):
        client.submit('job', b'%03d' % i, queue='cold')
    assert ready_payloads(client, 'cold') == [b'%03d' % i for i in range(80, 110)]
    assert client.stats().queue('cold').counts[State.READY] == 30


def test_concurrent_submitters_never_see_it_over(broker, client):
    client.configure_queue('busy', max_ready=4)

    def submitter():
        with Client(broker.endpoint, timeout=10.0) as c:
            for i in range(60):
                c.submit_many([{'name': 'job', 'queue': 'busy'} for _ in range(3)])

    with Client(broker.endpoint, timeout=10.0) as c:
        seen = count_while([submitter] * 3, lambda: max(
            c.stats().queue('busy').counts[State.READY], len(c.peek('busy', 100))))
    assert seen and max(seen) <= 4
    assert client.stats().queue('busy').counts[State.READY] == 4


def test_the_bound_survives_a_kill(broker, processes):
    with Client(broker.endpoint, timeout=10.0) as c:
        c.configure_queue('kept', max_ready=2, max_ready_bytes=1000)
        for i in range(3):
            c.submit('job', b'%d' % i, queue='kept')
    broker.kill9()
    again = broker.restart()
    processes.append(again)
    with Client(again.endpoint, timeout=10.0) as c:
        q = c.stats().queue('kept')
        assert (q.max_ready, q.max_ready_bytes, q.counts[State.READY]) == (2, 1000, 2)
        c.submit('job', b'3', queue='kept')
        assert c.stats().queue('kept').counts[State.READY] == 2
        # PEEK shows nothing while the broker waits for workers to claim
        # their tasks back (--recovery-ms)
        wait_until(lambda: ready_payloads(c, 'kept') == [b'2', b'3'], 10)


def test_tasks_held_back_by_a_name_limit_are_dropped_first(broker, client, processes,
                                                           tmp_path):
    # one 'sleep' at a time: the worker's free slot makes the scheduler
    # hold the other three back (ready, out of the queue) for their name
    client.limit('sleep', max_running=1)
    start_py_worker(broker, processes, tmp_path, '--queue', 'lim', '--slots', '2', '--drain',
                    '0.5', '--grace', '0.5')
    ids = [client.submit('sleep', b'30', queue='lim') for _ in range(4)]
    wait_until(lambda: client.status(ids[0]).state is State.RUNNING, 20)
    assert client.stats().queue('lim').counts[State.READY] == 3
    client.configure_queue('lim', max_ready=1)
    assert client.stats().queue('lim').counts[State.READY] == 1
    assert [client.status(i).state for i in ids[1:]] == \
        [State.CANCELLED, State.CANCELLED, State.READY]
    later = client.submit('sleep', b'30', queue='lim')
    assert client.status(ids[3]).state is State.CANCELLED
    assert client.status(later).state is State.READY
    client.cancel(ids[0])


def test_a_dropped_parent_readies_its_always_child(client):
    client.configure_queue('dag', max_ready=1)
    flow = flows.dag([{'name': 'p', 'task': 'job', 'queue': 'dag', 'payload': 'p'},
                      {'name': 'k', 'task': 'job', 'queue': 'dag', 'payload': 'k',
                       'after': [{'task': 'p', 'when': 'always'}]}])
    submitted = client.submit_flow(flow)
    assert ready_payloads(client, 'dag') == [b'p']
    late = client.submit('job', b'late', queue='dag')
    # p goes, which makes k ready: then the queue is over again, and the
    # head goes (the late task: k became ready after it)
    assert ready_payloads(client, 'dag') == [b'k']
    assert late.state is State.CANCELLED
    assert client.status(submitted.tasks['p']).state is State.CANCELLED


def test_items_a_worker_routes_hold_the_bound(broker, client, processes, tmp_path):
    client.configure_queue('routed', max_ready=2)
    start_py_worker(broker, processes, tmp_path)
    done = [client.submit('route', b'%d' % i) for i in range(4)]
    for t in done:
        assert client.wait(t, timeout=20).state is State.SUCCEEDED
    # the two routed last (the worker runs two at once: in either order)
    assert client.stats().queue('routed').counts[State.READY] == 2
    assert len(ready_payloads(client, 'routed')) == 2


def test_reject_refuses_the_new_and_keeps_the_old(client):
    client.configure_queue('rej', max_ready=2, max_ready_bytes=250, overflow='reject')
    q = client.stats().queue('rej')
    assert (q.max_ready, q.max_ready_bytes, q.overflow) == (2, 250, 'reject')
    first = client.submit('job', b'a' * 200, queue='rej')
    too_big = client.submit('job', b'b' * 100, queue='rej')
    fits = client.submit('job', b'c' * 50, queue='rej')
    assert (first.state, too_big.state, fits.state) == \
        (State.READY, State.CANCELLED, State.READY)
    assert 'refused' in client.status(too_big).error
    # a batch: each of its tasks is taken or refused in order
    client.configure_queue('rej', max_ready_bytes=0)
    out = client.submit_many([{'name': 'job', 'queue': 'rej', 'payload': b'%d' % i}
                              for i in range(3)])
    assert [t.state for t in out] == [State.CANCELLED] * 3
    assert [p[:1] for p in ready_payloads(client, 'rej')] == [b'a', b'c']
    # a lower bound in this mode drops nothing; drop-head then does
    client.configure_queue('rej', max_ready=1)
    assert len(ready_payloads(client, 'rej')) == 2
    client.configure_queue('rej', overflow='drop-head')
    assert client.stats().queue('rej').overflow is None
    assert [p[:1] for p in ready_payloads(client, 'rej')] == [b'c']
    with pytest.raises(Invalid):
        client.configure_queue('rej', overflow='drop-tail')


def test_refused_and_dropped_are_told_apart(client):
    client.configure_queue('told-r', max_ready=1, overflow='reject')
    client.configure_queue('told-d', max_ready=1)
    kept, refused = client.submit_many([{'name': 'job', 'queue': 'told-r'}] * 2)
    assert (kept.refused, refused.refused, refused.state) == (False, True, State.CANCELLED)
    dropped, last = client.submit_many([{'name': 'job', 'queue': 'told-d'}] * 2)
    # dropped by the bound, not refused: it was stored (its submit is done)
    assert (dropped.refused, dropped.state, last.state) == (False, State.CANCELLED, State.READY)
    # switching back to drop-head holds the bound at once
    client.configure_queue('told-r', max_ready=0)
    client.submit('job', queue='told-r')
    assert client.stats().queue('told-r').counts[State.READY] == 2
    client.configure_queue('told-r', max_ready=1)
    assert client.stats().queue('told-r').counts[State.READY] == 2  # reject drops nothing
    client.configure_queue('told-r', overflow='drop-head')
    assert client.stats().queue('told-r').counts[State.READY] == 1
    # and so does clearing the overflow (QUEUE set clear), as the CLI cannot
    client.configure_queue('told-r', max_ready=0, overflow='reject')
    client.submit_many([{'name': 'job', 'queue': 'told-r'}] * 2)
    client.configure_queue('told-r', max_ready=1)
    assert client.stats().queue('told-r').counts[State.READY] == 3
    peer = arbiter_proto.Peer(client.endpoint)
    try:
        kind, _, body, _ = peer.request('QUEUE', {'queue': 'told-r', 'op': 'set',
                                                  'clear': ['overflow']})
        assert kind == 'OK', body
    finally:
        peer.close()
    q = client.stats().queue('told-r')
    assert (q.overflow, q.counts[State.READY]) == (None, 1)


def test_a_refused_parent_readies_a_child_that_must_fit_too(client):
    for q in ('ra', 'rb'):
        client.configure_queue(q, max_ready=1, overflow='reject')
    client.submit('job', b'full', queue='ra')
    # rb is held before ra refuses p; p's refusal makes c ready in rb
    flow = flows.dag([{'name': 'x', 'task': 'job', 'queue': 'rb', 'payload': 'x'},
                      {'name': 'p', 'task': 'job', 'queue': 'ra', 'payload': 'p'},
                      {'name': 'c', 'task': 'job', 'queue': 'rb', 'payload': 'c',
                       'after': [{'task': 'p', 'when': 'always'}]}])
    tasks = client.submit_flow(flow).tasks
    assert (tasks['x'].refused, tasks['p'].refused, tasks['c'].refused) == (False, True, True)
    assert ready_payloads(client, 'ra') == [b'full']
    assert ready_payloads(client, 'rb') == [b'x']
