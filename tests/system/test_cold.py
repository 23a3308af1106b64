"""The cold backlog (issue 11): a queue keeps only its head in memory
(--hot-tasks), the rest of its ready tasks wait in the journal and come
back in dispatch order. Driven through the wire protocol with a small head,
so that every path (by id, queue-wide, restart) meets cold tasks."""

from conftest import Broker, wait_until
from helpers import CANCELLED, queue_counts, status, submit_many

READY = 3


def take_all(worker, queue='default'):
    """Leases everything of a queue, one TAKE at a time; the ids in order."""
    taken = []
    while True:
        kind, _, body, _ = worker.request('TAKE', {'queue': queue, 'max': 7})
        assert kind == 'DISPATCH', body
        if not body.get('tasks'):
            return taken
        taken += [t['id'] for t in body['tasks']]
        worker.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']}
                                           for t in body['tasks']]},
                    [b''] * len(body['tasks']))


def register(peer):
    kind, _, body, _ = peer.request('REGISTER', {'name': 'w', 'slots': 1})
    assert kind == 'WELCOME', body


def test_order_counts_and_lookups_across_the_backlog(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--hot-tasks', '8'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    plain = submit_many(client, [{'name': 'n'} for _ in range(60)], batch=7)
    urgent = submit_many(client, [{'name': 'n', 'priority': 5} for _ in range(3)])
    late = submit_many(client, [{'name': 'n', 'timeout_ms': 60000}])  # options: in memory
    low = submit_many(client, [{'name': 'n', 'priority': -2} for _ in range(5)], batch=2)
    assert queue_counts(client)['ready'] == 69
    # a cold task by id: STATUS from the journal, CANCEL reads it back
    infos = status(client, [plain[40], plain[41]])
    assert infos[plain[40]]['state'] == READY
    kind, _, body, _ = client.request('CANCEL', {'ids': [plain[41]]})
    assert kind == 'CANCEL_REPLY' and body['tasks'][0]['state'] == CANCELLED, body
    # PEEK sees the head in order, cold tasks read back as needed
    kind, _, body, _ = client.request('PEEK', {'queue': 'default', 'max': 20})
    assert [t['id'] for t in body['tasks']] == urgent + plain[:17]
    worker = peer_factory(b.endpoint)
    register(worker)
    expected = urgent + [i for i in plain if i != plain[41]] + late + low
    assert take_all(worker) == expected
    counts = queue_counts(client)
    assert counts.get('ready', 0) == 0 and counts['succeeded'] == 68


def test_restart_and_purge_with_a_cold_backlog(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--hot-tasks', '4', '--recovery-ms', '0'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'n', 'priority': i % 3} for i in range(40)], batch=9)
    other = submit_many(client, [{'name': 'n', 'queue': 'other'} for _ in range(30)])
    b.kill9()
    b = b.restart()
    processes.append(b)
    client = peer_factory(b.endpoint)
    assert queue_counts(client)['ready'] == 40
    assert queue_counts(client, 'other')['ready'] == 30
    # LIST pages through the cold tasks as through the others
    seen = []
    after = 0
    while True:
        kind, _, body, _ = client.request('LIST', {'queue': 'default', 'limit': 7,
                                                   'after_id': after})
        assert kind == 'LIST_REPLY', body
        seen += [t['id'] for t in body['tasks']]
        assert all(t['state'] == READY for t in body['tasks'])
        if not body.get('more'):
            break
        after = seen[-1]
    assert seen == ids
    # purge ends the cold tasks too, each counted once
    kind, _, body, _ = client.request('QUEUE', {'queue': 'other', 'op': 'purge'})
    assert kind == 'OK', body
    assert queue_counts(client, 'other').get('ready', 0) == 0
    assert queue_counts(client, 'other')['cancelled'] == 30
    assert all(t['state'] == CANCELLED for t in status(client, other).values())
    worker = peer_factory(b.endpoint)
    register(worker)
    taken = take_all(worker)
    by_priority = sorted(ids, key=lambda i: (-(ids.index(i) % 3), i))
    assert taken == by_priority


def test_purge_tells_event_subscribers_of_cold_tasks(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--hot-tasks', '4'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    events = peer_factory(b.endpoint)
    assert events.request('EVENTS', {'queue': 'p'})[0] == 'OK'
    ids = submit_many(client, [{'name': 'n', 'queue': 'p'} for _ in range(20)], batch=3)
    kind, _, body, _ = client.request('QUEUE', {'queue': 'p', 'op': 'purge'})
    assert kind == 'OK', body
    ended = set()
    while len(ended) < 20:
        kind, _, body, _ = events.recv(timeout=5)
        if kind == 'EVENT':
            ended |= {e['id'] for e in body['events'] if e['state'] == CANCELLED}
    assert ended == set(ids)
    assert queue_counts(client, 'p')['cancelled'] == 20


def test_a_cold_task_gets_a_child(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--hot-tasks', '4'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'n'} for _ in range(20)], batch=3)
    [child] = submit_many(client, [{'name': 'c', 'after': [{'id': ids[15]}]}])
    worker = peer_factory(b.endpoint)
    register(worker)
    assert take_all(worker) == ids + [child]
    assert status(client, [child])[child]['state'] == 5


def memory(peer):
    """What the broker's memory holds: (task records, cold tasks, watches)."""
    kind, _, body, _ = peer.request('STATS', {})
    assert kind == 'STATS_REPLY', body
    return tuple(body.get(k, 0) for k in ('tasks_in_memory', 'tasks_cold', 'watches'))


def done_ids(peer, count, timeout=10):
    """{id: state} of the first count tasks DONE tells peer of."""
    ended = {}
    while len(ended) < count:
        kind, _, body, _ = peer.recv(timeout=timeout)
        assert kind == 'DONE', (kind, body)
        ended.update({t['id']: t['state'] for t in body['tasks']})
    return ended


def test_watched_tasks_go_cold_and_hear_their_end(tmp_path, processes, peer_factory):
    # A producer that watches all it submits keeps no record per task in
    # the broker's memory: the watch is apart from the task (arb_watch.h).
    b = Broker(tmp_path, extra=['--hot-tasks', '8'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'n'} for _ in range(60)], batch=7, watch=True)
    watcher2 = peer_factory(b.endpoint)
    kind, _, body, _ = watcher2.request('WATCH', {'ids': ids[50:]})
    assert kind == 'WATCHING' and body['watching'] == 10, body
    in_memory, cold, watches = memory(client)
    assert cold >= 40 and in_memory + cold == 60, (in_memory, cold)
    assert watches == 70
    worker = peer_factory(b.endpoint)
    register(worker)
    assert take_all(worker) == ids
    assert done_ids(client, 60) == {i: 5 for i in ids}
    assert done_ids(watcher2, 10) == {i: 5 for i in ids[50:]}
    assert memory(client) == (0, 0, 0)


def test_cold_watched_tasks_hear_of_a_purge_and_a_cancel(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--hot-tasks', '4'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'n', 'queue': 'p'} for _ in range(30)], batch=4,
                      watch=True)
    assert memory(client)[1] >= 20
    # one by id (read back from the journal), then the rest with the queue
    kind, _, body, _ = client.request('CANCEL', {'ids': [ids[25]]})
    assert kind == 'CANCEL_REPLY', body
    assert done_ids(client, 1) == {ids[25]: CANCELLED}
    kind, _, body, _ = client.request('QUEUE', {'queue': 'p', 'op': 'purge'})
    assert kind == 'OK' and body['count'] == 29, body
    assert done_ids(client, 29) == {i: CANCELLED for i in ids if i != ids[25]}
    assert memory(client) == (0, 0, 0)


def ready_bytes(peer, queue='default'):
    """STATS' ready_bytes of a queue (absent: 0)."""
    kind, _, body, _ = peer.request('STATS', {})
    assert kind == 'STATS_REPLY', body
    return next((q.get('ready_bytes', 0) for q in body.get('queues', []) if q['name'] == queue), 0)


def test_ready_bytes_follow_dispatch_release_and_restart(tmp_path, processes, peer_factory):
    """STATS' ready_bytes: the payload bytes of the ready tasks, hot and
    cold; a dispatch takes a task's out, a release puts them back, a cancel
    and a purge take them out, a restart counts them again."""
    b = Broker(tmp_path, extra=['--hot-tasks', '4', '--recovery-ms', '0'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'n', 'payload': b'x' * (i + 1)} for i in range(20)],
                      batch=6)
    assert ready_bytes(client) == 210  # 1 + 2 + ... + 20, 16 of them cold
    worker = peer_factory(b.endpoint)
    register(worker)
    kind, _, body, _ = worker.request('TAKE', {'queue': 'default', 'max': 3})
    assert kind == 'DISPATCH' and [t['id'] for t in body['tasks']] == ids[:3], body
    assert ready_bytes(client) == 210 - 6
    first, second, third = body['tasks']
    # the second released (back to ready), the others done
    worker.send('RESULT', {'results': [
        {'id': first['id'], 'lease': first['lease']},
        {'id': second['id'], 'lease': second['lease'], 'outcome': 2},
        {'id': third['id'], 'lease': third['lease']}]}, [b''] * 3)
    wait_until(lambda: ready_bytes(client) == 210 - 4, timeout=5, what='the release counted')
    # a cold task cancelled by id
    kind, _, body, _ = client.request('CANCEL', {'ids': [ids[14]]})
    assert kind == 'CANCEL_REPLY', body
    assert ready_bytes(client) == 206 - 15
    # one leased when the broker dies is ready again after it
    kind, _, body, _ = worker.request('TAKE', {'queue': 'default', 'max': 1})
    assert [t['id'] for t in body['tasks']] == [ids[1]], body
    assert ready_bytes(client) == 191 - 2
    b.kill9()
    b = b.restart()
    processes.append(b)
    client = peer_factory(b.endpoint)
    assert ready_bytes(client) == 191
    kind, _, body, _ = client.request('QUEUE', {'queue': 'default', 'op': 'purge'})
    assert kind == 'OK', body
    assert ready_bytes(client) == 0
