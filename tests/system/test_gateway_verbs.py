"""What the gateway needs from the broker (issue 8): how often a task was
handed out (across broker stops too), PEEK with headers, declared queues
and queue delete, purge in bulk, the queue listing with consumers,
metadata compare-and-set and pages, and the bounds one peer meets."""

import json
import os
import subprocess
import threading
import time

import pytest

import arbiter_proto
from conftest import Broker, binary, wait_until
from helpers import status, submit_many, wait_state

FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1000']


def register(peer, queues=('default',), credit=10, name='w'):
    kind, _, body, _ = peer.request('REGISTER', {'name': name, 'slots': credit})
    assert kind == 'WELCOME', body
    peer.send('CREDIT', {'queues': list(queues), 'credit': credit})


def dispatched(peer, timeout=5.0):
    """The tasks and payloads of the next DISPATCH."""
    _, _, body, frames = peer.next_of('DISPATCH', timeout)
    return body.get('tasks', []), frames


def dispatched_alive(peer, timeout=10.0):
    """As dispatched, for a worker that must heartbeat while it waits."""
    deadline = time.time() + timeout
    while True:
        peer.send('HEARTBEAT', {})
        try:
            return dispatched(peer, timeout=0.1)
        except TimeoutError:
            if time.time() > deadline:
                raise


def report(peer, task, outcome=0, error=None):
    item = {'id': task['id'], 'lease': task['lease'], 'outcome': outcome}
    if error:
        item['error'] = error
    peer.send('RESULT', {'results': [item]}, [b''])


def queue_info(peer, name):
    """The STATS record of one queue, or None."""
    kind, _, body, _ = peer.request('STATS', {'queue': name})
    assert kind == 'STATS_REPLY', body
    queues = body.get('queues', [])
    return queues[0] if queues else None


def listed(peer, limit=0):
    """The queues of the listing, page by page: [(name, record)], and the pages."""
    found, pages, after = [], 0, None
    while True:
        request = {'limit': limit} if limit else {}
        if after:
            request['after'] = after
        kind, _, body, _ = peer.request('STATS', request)
        assert kind == 'STATS_REPLY', body
        pages += 1
        found += [(q['name'], q) for q in body.get('queues', [])]
        if not body.get('more'):
            return found, pages
        after = found[-1][0]


def meta(peer, **body):
    kind, _, reply, _ = peer.request('META', body)
    return kind, reply


def cli(broker, *args):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.fixture
def fast_broker(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    return b


# ---------------------------------------------------------------------------
# Deliveries


def test_delivered_counts_releases_and_lost_leases(fast_broker, peer_factory):
    client = peer_factory(fast_broker.endpoint)
    worker = peer_factory(fast_broker.endpoint)
    [tid] = submit_many(client, [{'name': 'job', 'retries': 3, 'payload': b'p'}])
    register(worker, credit=1)
    [task], _ = dispatched(worker)
    assert task['id'] == tid and task.get('delivered', 0) == 0 and task['attempt'] == 1
    # released: no attempt used up, but handed out once before
    report(worker, task, outcome=2)
    wait_state(client, tid, 3)
    _, _, body, _ = client.request('PEEK', {'queue': 'default'})
    assert body['tasks'][0]['delivered'] == 1 and body['tasks'][0]['attempt'] == 1
    worker.send('CREDIT', {'credit': 1})
    [task], _ = dispatched(worker)
    assert task['delivered'] == 1 and task['attempt'] == 1
    # failed: an attempt, and a delivery
    report(worker, task, outcome=1, error='no')
    worker.send('CREDIT', {'credit': 1})
    [task], _ = dispatched(worker)
    assert task['delivered'] == 2 and task['attempt'] == 2
    # its worker falls silent: the lease is lost, and the next one is told
    other = peer_factory(fast_broker.endpoint)
    register(other, credit=1, name='other')
    [task], _ = dispatched_alive(other)
    assert task['delivered'] == 3 and task['attempt'] == 2
    assert status(client, [tid])[tid]['lost'] == 1


def test_delivered_before_survives_a_broker_kill(tmp_path, processes, peer_factory):
    broker = Broker(tmp_path, extra=FAST + ['--recovery-ms', '0'])
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    [running, waiting, released] = submit_many(client, [{'name': 'job', 'queue': 'a'},
                                                        {'name': 'job', 'queue': 'b'},
                                                        {'name': 'job', 'queue': 'r'}])
    worker = arbiter_proto.Peer(broker.endpoint)
    register(worker, queues=('a',), credit=1)
    [task], _ = dispatched(worker)
    assert task['id'] == running and task.get('delivered', 0) == 0
    # a release writes its count: it is not lost with the broker
    [task] = worker.request('TAKE', {'queue': 'r'})[2]['tasks']
    report(worker, task, outcome=2)
    wait_state(client, released, 3)
    worker.close()  # gone with the broker: it claims nothing back
    broker.kill9()
    broker = broker.restart()
    processes.append(broker)
    # dispatch wrote nothing; the task was running when the broker died
    again = peer_factory(broker.endpoint)
    register(again, queues=('a', 'b', 'r'), credit=3, name='again')
    tasks = {}
    while len(tasks) < 3:
        tasks.update({t['id']: t for t in dispatched(again)[0]})
    assert tasks[running]['delivered'] == 1
    # the broker cannot tell it from a task that never left: it errs
    # towards "delivered before", as RabbitMQ does after a crash
    assert tasks[waiting]['delivered'] == 1
    assert tasks[released]['delivered'] == 2
    # a clean stop records its running leases: counts stay exact
    [fresh] = submit_many(peer_factory(broker.endpoint), [{'name': 'job', 'queue': 'c'}])
    wait_until(lambda: status(peer_factory(broker.endpoint), [running])[running]['state'] == 4)
    assert broker.stop() == 0
    broker = broker.restart()
    processes.append(broker)
    last = peer_factory(broker.endpoint)
    register(last, queues=('a', 'b', 'c'), credit=3, name='last')
    tasks = {}
    while len(tasks) < 3:
        tasks.update({t['id']: t for t in dispatched(last)[0]})
    assert tasks[running]['delivered'] == 2
    assert tasks[waiting]['delivered'] == 2
    assert tasks[fresh].get('delivered', 0) == 0


# ---------------------------------------------------------------------------
# PEEK


def test_peek_shows_headers_skips_expired_and_respects_pause(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    soon = int(time.time() * 1000) + 300
    [short, kept] = submit_many(client, [
        {'name': 'a', 'queue': 'kv', 'headers': b'h-short', 'expires_ms': soon, 'payload': b'1'},
        {'name': 'b', 'queue': 'kv', 'headers': b'h-kept', 'payload': b'2'}])
    kind, _, body, frames = client.request('PEEK', {'queue': 'kv', 'max': 10})
    assert kind == 'PEEK_REPLY'
    assert [(t['id'], t['headers']) for t in body['tasks']] == [(short, b'h-short'),
                                                               (kept, b'h-kept')]
    assert frames == [b'1', b'2'] and all('lease' not in t for t in body['tasks'])
    # past its expiry it is shown no more
    wait_until(lambda: [t['id'] for t in
                        client.request('PEEK', {'queue': 'kv', 'max': 10})[2].get('tasks', [])]
               == [kept], what='the expired task gone from PEEK')
    # and its expiry timer ends it (PEEK reads the clock; the timer fires on
    # the broker's next turn, which a loaded machine may delay a little)
    wait_until(lambda: status(client, [short])[short]['state'] == 8, what='expired')
    # a paused queue hands out nothing, so PEEK shows nothing
    assert client.request('QUEUE', {'queue': 'kv', 'op': 'pause'})[0] == 'OK'
    assert client.request('PEEK', {'queue': 'kv', 'max': 10})[2].get('tasks', []) == []
    assert client.request('QUEUE', {'queue': 'kv', 'op': 'resume'})[0] == 'OK'
    assert len(client.request('PEEK', {'queue': 'kv', 'max': 10})[2]['tasks']) == 1


# ---------------------------------------------------------------------------
# Declared queues, the listing, queue delete


def test_declared_queues_are_listed_with_their_consumers(broker, processes, peer_factory):
    client = peer_factory(broker.endpoint)
    _, _, body, _ = client.request('QUEUE', {'queue': 'inbox', 'op': 'declare'})
    assert body['count'] == 1
    _, _, body, _ = client.request('QUEUE', {'queue': 'inbox', 'op': 'declare'})
    assert body.get('count', 0) == 0  # already declared
    info = queue_info(client, 'inbox')
    assert info['declared'] and info.get('consumers', 0) == 0
    assert 'inbox' in dict(listed(client)[0])
    # consumers are the sessions subscribed, busy or idle: a gateway with
    # three subscriptions counts once
    gateway = peer_factory(broker.endpoint)
    kind, _, _, _ = gateway.request('REGISTER', {'name': 'gateway'})
    for sub in (1, 2, 3):
        gateway.send('CREDIT', {'sub': sub, 'queues': ['inbox'], 'credit': 5})
    idle = peer_factory(broker.endpoint)
    register(idle, queues=('inbox', 'lonely'), credit=0, name='idle')
    worker = peer_factory(broker.endpoint)
    register(worker, queues=('inbox', 'wanted'), credit=1, name='worker')
    wait_until(lambda: queue_info(client, 'inbox').get('consumers') == 3)
    # a queue whose only consumers have no credit is not listed; one that
    # a consumer waits on is (a worker's endpoint queue is not, empty)
    names = dict(listed(client)[0])
    assert 'lonely' not in names and names['wanted']['consumers'] == 1
    assert not [n for n in names if '@' in n]
    # pages, in name order
    for name in ('p1', 'p2', 'p3', 'p4'):
        client.request('QUEUE', {'queue': name, 'op': 'declare'})
    names, pages = listed(client, limit=2)
    assert [n for n, _ in names] == ['inbox', 'p1', 'p2', 'p3', 'p4', 'wanted'] and pages == 3
    # declared queues survive a restart
    assert broker.stop() == 0
    restarted = broker.restart()
    processes.append(restarted)
    client = peer_factory(restarted.endpoint)
    assert queue_info(client, 'inbox')['declared']
    assert client.request('QUEUE', {'queue': 'in@box', 'op': 'declare'})[2]['code'] == 422


def test_queue_delete_stops_its_running_task_and_forgets_it(broker, processes, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    register(worker, queues=('jobs',), credit=1)
    [done] = submit_many(client, [{'name': 'job', 'queue': 'jobs'}])
    [task], _ = dispatched(worker)
    report(worker, task)
    wait_state(client, done, 5)
    worker.send('CREDIT', {'credit': 1})
    ids = submit_many(client, [{'name': 'job', 'queue': 'jobs'} for _ in range(3)], watch=True)
    [running], _ = dispatched(worker)
    for request in ({'queue': 'jobs', 'op': 'declare'}, {'queue': 'jobs', 'op': 'pause'}):
        assert client.request('QUEUE', request)[0] == 'OK'
    assert meta(client, op='set', key='queue@jobs@fanout', value=b'jobs+audit')[0] == 'META_REPLY'
    meta(client, op='set', key='queue@jobsx@fanout', value=b'other')
    kind, _, body, _ = client.request('QUEUE', {'queue': 'jobs', 'op': 'delete'})
    assert kind == 'OK' and body['count'] == 3
    _, _, stop, _ = worker.next_of('STOP')
    assert stop['tasks'] == [{'id': running['id'], 'lease': running['lease'], 'reason': 2}]
    # its watchers hear of the end, then the tasks are forgotten
    ended = {}
    while len(ended) < 3:
        ended.update({t['id']: t['state'] for t in client.next_of('DONE')[2]['tasks']})
    assert ended == {i: 8 for i in ids}
    assert all(not t.get('found') for t in status(client, ids + [done]).values())
    assert queue_info(client, 'jobs') is None or 'jobs' not in dict(listed(client)[0])
    assert 'jobs' not in dict(listed(client)[0])
    assert meta(client, op='get', key='queue@jobs@fanout')[1].get('items', []) == []
    assert meta(client, op='get', key='queue@jobsx@fanout')[1]['items'][0]['value'] == b'other'
    # nothing comes back with a restart: no settings, no tasks
    assert broker.stop() == 0
    restarted = broker.restart()
    processes.append(restarted)
    client = peer_factory(restarted.endpoint)
    assert 'jobs' not in dict(listed(client)[0])
    assert meta(client, op='get', key='queue.jobs')[1].get('items', []) == []


def test_purge_of_a_big_queue_is_one_step_and_keeps_the_worker_alive(tmp_path, processes,
                                                                     peer_factory):
    broker = Broker(tmp_path, extra=['--sync', 'normal', '--heartbeat-ms', '500',
                                     '--liveness-ms', '5000'])
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    [held] = submit_many(client, [{'name': 'long', 'queue': 'bulk'}])
    arrivals, stop, errors = [], threading.Event(), []

    def work():
        # a worker holding one lease, heartbeating, noting when the broker speaks
        peer = arbiter_proto.Peer(broker.endpoint)
        try:
            register(peer, queues=('bulk',), credit=1, name='holder')
            beat = 0
            while not stop.is_set():
                if time.time() - beat > 0.25:
                    peer.send('HEARTBEAT', {'busy': 1})
                    beat = time.time()
                try:
                    kind, _, body, _ = peer.recv(timeout=0.05)
                except TimeoutError:
                    continue
                arrivals.append(time.time())
                if kind == 'ERROR':
                    errors.append(body)
        finally:
            peer.close()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        wait_state(client, held, 4)
        submit_many(client, [{'name': 'x', 'queue': 'bulk'} for _ in range(100000)], batch=5000)
        arrivals.clear()
        kind, _, body, _ = client.request('QUEUE', {'queue': 'bulk', 'op': 'purge'}, timeout=60)
        assert kind == 'OK' and body['count'] == 100000
        counts = queue_info(client, 'bulk')['counts']
        assert counts[8] == 100000 and counts[4] == 1 and counts[3] == 0
        time.sleep(1.5)  # let heartbeats after the purge arrive
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors
    info = status(client, [held])[held]
    assert info['state'] == 4 and info.get('lost', 0) == 0
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert arrivals and max(gaps, default=0) < 5.0, gaps


# ---------------------------------------------------------------------------
# Metadata


def test_meta_compare_and_set_races_and_pages(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    kind, reply = meta(client, op='cas', key='counter', absent=True, value=b'0')
    assert kind == 'META_REPLY' and reply['matched'] and reply['items'][0]['value'] == b'0'
    kind, reply = meta(client, op='cas', key='counter', absent=True, value=b'9')
    assert not reply.get('matched') and reply['items'][0]['value'] == b'0'
    successes = []

    def bump(n):
        # every increment reads, then sets only if nobody came between
        peer = arbiter_proto.Peer(broker.endpoint)
        won = 0
        try:
            while won < n:
                _, got = meta(peer, op='get', key='counter')
                value = got['items'][0]['value']
                _, done = meta(peer, op='cas', key='counter', expect=value,
                               value=b'%d' % (int(value) + 1))
                won += bool(done.get('matched'))
        finally:
            peer.close()
        successes.append(won)
    racers = [threading.Thread(target=bump, args=(50,)) for _ in range(3)]
    for r in racers:
        r.start()
    for r in racers:
        r.join(60)
    assert sum(successes) == 150
    assert meta(client, op='get', key='counter')[1]['items'][0]['value'] == b'150'
    kind, reply = meta(client, op='cas', key='counter', expect=b'150', remove=True)
    assert reply['matched'] and reply.get('items', []) == []
    kind, reply = meta(client, op='cas', key='queue.x', absent=True, value=b'paused=1')
    assert kind == 'ERROR' and reply['code'] == 422
    # pages: by prefix, after the last key, at most limit
    for i in range(25):
        meta(client, op='set', key='kestrel.fanout.%02d' % i, value=b'v')
    meta(client, op='set', key='kestrel.other', value=b'v')
    keys, after = [], None
    for _ in range(10):
        request = {'op': 'list', 'key': 'kestrel.fanout.', 'limit': 10}
        if after:
            request['after'] = after
        _, reply = meta(client, **request)
        keys += [item['key'] for item in reply['items']]
        after = keys[-1]
        if not reply.get('more'):
            break
    assert keys == ['kestrel.fanout.%02d' % i for i in range(25)]


# ---------------------------------------------------------------------------
# Bounds


def test_replies_are_bounded(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    # 1 MiB payloads: a reply holds 16 MiB of them
    submit_many(client, [{'name': 'big', 'queue': 'big', 'payload': os.urandom(1 << 20)}
                         for _ in range(20)], batch=5)
    _, _, body, frames = client.request('PEEK', {'queue': 'big', 'max': 20})
    assert len(body['tasks']) == 16 and len(frames) == 16
    worker = peer_factory(broker.endpoint)
    register(worker, queues=('big',), credit=20)
    sizes = [len(dispatched(worker)[0]), len(dispatched(worker)[0])]
    assert sizes == [16, 4]
    # TAKE leases 1,000 at most
    submit_many(client, [{'name': 'small', 'queue': 'many'} for _ in range(1200)], batch=1200)
    kind, _, body, _ = worker.request('TAKE', {'queue': 'many', 'max': 5000})
    assert kind == 'DISPATCH' and len(body['tasks']) == 1000
    # LIST pages at 10,000
    submit_many(client, [{'name': 'small', 'queue': 'many'} for _ in range(9000)], batch=9000)
    _, _, body, _ = client.request('LIST', {'queue': 'many', 'limit': 50000}, timeout=30)
    assert len(body['tasks']) == 10000 and body['more']
    # DONE and EVENT messages carry 1,000 records at most
    watcher = peer_factory(broker.endpoint)
    watched = submit_many(watcher, [{'name': 'w', 'queue': 'watched'} for _ in range(2500)],
                          batch=2500, watch=True)
    events = peer_factory(broker.endpoint)
    assert events.request('EVENTS', {'queue': 'watched'})[0] == 'OK'
    assert client.request('QUEUE', {'queue': 'watched', 'op': 'purge'})[2]['count'] == 2500
    done, sizes = set(), []
    while len(done) < 2500:
        tasks = watcher.next_of('DONE')[2]['tasks']
        sizes.append(len(tasks))
        done.update(t['id'] for t in tasks)
    assert done == set(watched) and max(sizes) == 1000
    seen, sizes = 0, []
    while seen < 2500:
        got = events.next_of('EVENT')[2]['events']
        sizes.append(len(got))
        seen += len(got)
    assert max(sizes) == 1000


def test_a_session_holds_bounded_subscriptions_and_credit(broker, peer_factory):
    gateway = peer_factory(broker.endpoint)
    kind, _, _, _ = gateway.request('REGISTER', {'name': 'gateway'})
    # queue names over a session's subscriptions: 10,000 in all
    names = ['q%d' % i for i in range(64)]
    for sub in range(1, 157):
        gateway.send('CREDIT', {'sub': sub, 'queues': names})
    kind, _, body, _ = gateway.request('CREDIT', {'sub': 157, 'queues': names})
    assert kind == 'ERROR' and body['code'] == 413 and 'queues' in body['reason']
    # subscriptions: 10,000
    other = peer_factory(broker.endpoint)
    other.request('REGISTER', {'name': 'many'})
    for sub in range(1, 10001):
        other.send('CREDIT', {'sub': sub, 'queues': ['one']})
    kind, _, body, _ = other.request('CREDIT', {'sub': 10001, 'queues': ['one']}, timeout=30)
    assert kind == 'ERROR' and body['code'] == 413 and 'subscriptions' in body['reason']
    assert not [m for m in other.pending if m[0] == 'ERROR']  # the first 10,000 were taken
    # credit is capped at 100,000 a subscription
    other.send('CREDIT', {'sub': 1, 'credit': 2**31 - 1})
    other.send('CREDIT', {'sub': 1, 'credit': 2**31 - 1})
    stats = {w['name']: w for w in other.request('STATS', {}, timeout=30)[2]['workers']}
    assert stats['many']['credit'] == 100000
    assert stats['many']['queues'] == ['one']  # each queue shown once


def test_an_event_subscriber_that_is_gone_is_forgotten(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    gone = arbiter_proto.Peer(broker.endpoint)
    assert gone.request('EVENTS', {})[0] == 'OK'
    gone.close()
    stays = peer_factory(broker.endpoint)
    assert stays.request('EVENTS', {})[0] == 'OK'

    def forgotten():
        submit_many(client, [{'name': 'tick'}])
        return 'event subscriber forgotten' in broker.output()
    wait_until(forgotten, what='the subscriber forgotten')
    assert broker.output().count('event subscriber forgotten') == 1
    assert stays.next_of('EVENT')[2]['events']


# ---------------------------------------------------------------------------
# CLI


def test_cli_declares_deletes_and_shows_consumers(broker, peer_factory):
    proc = cli(broker, 'queue', 'declare', 'orders')
    assert proc.returncode == 0 and b'queue orders declared' in proc.stdout
    worker = peer_factory(broker.endpoint)
    register(worker, queues=('orders',), credit=2)
    peer = peer_factory(broker.endpoint)
    wait_until(lambda: queue_info(peer, 'orders').get('consumers') == 1)
    stats = json.loads(cli(broker, '--json', 'stats').stdout)
    [orders] = [q for q in stats['queues'] if q['name'] == 'orders']
    assert orders['declared'] is True and orders['consumers'] == 1
    assert b'consumers' in cli(broker, 'stats').stdout
    proc = cli(broker, 'queue', 'delete', 'orders')
    assert proc.returncode == 2 and b'--yes' in proc.stderr
    worker.send('BYE', {})  # a queue someone waits on is listed, deleted or not
    wait_until(lambda: queue_info(peer, 'orders').get('consumers', 0) == 0)
    proc = cli(broker, 'queue', 'delete', 'orders', '--yes')
    assert proc.returncode == 0 and b'queue orders deleted: 0 tasks cancelled' in proc.stdout
    stats = json.loads(cli(broker, '--json', 'stats').stdout)
    assert 'orders' not in [q['name'] for q in stats['queues']]
