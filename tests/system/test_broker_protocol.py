"""The broker at the protocol level: a real arbiterd, driven by a Python peer
that speaks the wire protocol as a client and as a worker."""

import time

import pytest

from conftest import Broker, wait_until


def submit(peer, tasks, watch=False):
    specs = [{k: v for k, v in t.items() if k != 'payload'} for t in tasks]
    body = {'tasks': specs}
    if watch:
        body['watch'] = True
    kind, _, reply, _ = peer.request('SUBMIT', body, [t.get('payload', b'') for t in tasks])
    assert kind == 'SUBMITTED', reply
    return [t['id'] for t in reply['tasks']]


def register(peer, queue='default', credit=10, name='w'):
    kind, _, body, _ = peer.request('REGISTER', {'name': name, 'slots': credit})
    assert kind == 'WELCOME'
    peer.send('CREDIT', {'queues': [queue], 'credit': credit})
    return body


def test_submit_dispatch_result_done(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    register(worker)
    ids = submit(client, [{'name': 'echo', 'payload': b'hello'}], watch=True)
    kind, _, body, frames = worker.next_of('DISPATCH')
    task = body['tasks'][0]
    assert task['id'] == ids[0] and task['name'] == 'echo' and task['attempt'] == 1
    assert frames == [b'hello']
    worker.send('RESULT', {'results': [{'id': task['id'], 'lease': task['lease']}]}, [b'HELLO'])
    kind, _, done, frames = client.next_of('DONE')
    assert done['tasks'][0]['id'] == ids[0]
    assert done['tasks'][0]['state'] == 5
    assert frames == [b'HELLO']


def test_ends_of_one_turn_reach_each_watcher_apart(broker, peer_factory):
    """Two clients' tasks that end in one RESULT, their ends alternating:
    each client hears of its own tasks, with their results, and no other's
    (the DONE being filled for one peer is not taken for the next's)."""
    clients = {name: peer_factory(broker.endpoint) for name in ('a', 'b')}
    worker = peer_factory(broker.endpoint)
    register(worker)
    owner = {}
    for name, client in clients.items():
        for task_id in submit(client, [{'name': 'echo', 'payload': name.encode()}] * 3,
                              watch=True):
            owner[task_id] = name
    dispatched = []
    while len(dispatched) < 6:
        _, _, body, frames = worker.next_of('DISPATCH')
        dispatched += zip(body['tasks'], frames)
    by_owner = {name: [t for t, payload in dispatched if payload == name.encode()]
                for name in clients}
    ends = [t for pair in zip(by_owner['a'], by_owner['b']) for t in pair]  # a, b, a, b...
    worker.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']} for t in ends]},
                [b'%d' % t['id'] for t in ends])
    for name, client in clients.items():
        heard = {}
        while len(heard) < 3:
            _, _, done, frames = client.next_of('DONE')
            for task, result in zip(done['tasks'], frames):
                heard[task['id']] = (task['state'], result)
        assert {owner[task_id] for task_id in heard} == {name}, heard
        assert heard == {t['id']: (5, b'%d' % t['id']) for t in by_owner[name]}


def test_stats_counts_submits_dispatches_finishes_and_commits(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    register(worker)
    ids = submit(client, [{'name': 'a', 'key': 'k1'}, {'name': 'b'}], watch=True)
    assert submit(client, [{'name': 'a', 'key': 'k1'}]) == ids[:1]  # a known key adds nothing
    dispatched = []
    while len(dispatched) < 2:
        dispatched += worker.next_of('DISPATCH')[2]['tasks']
    worker.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']} for t in dispatched]},
                [b'', b''])
    client.next_of('DONE')
    kind, _, body, _ = client.request('STATS', {})
    assert kind == 'STATS_REPLY'
    assert body['submitted'] == 2 and body['dispatched'] == 2
    assert body['finished'][5] == 2 and sum(body['finished']) == 2
    assert len(body['commit_buckets']) == 13
    assert body['commits'] == sum(body['commit_buckets']) >= 2
    assert body['commit_us'] > 0


def test_credit_bounds_tasks_in_flight(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    submit(client, [{'name': 't', 'payload': b'%d' % i} for i in range(10)])
    register(worker, credit=3)
    got = []
    deadline = time.time() + 1.0
    while time.time() < deadline:
        try:
            got += worker.next_of('DISPATCH', timeout=0.2)[2]['tasks']
        except TimeoutError:
            pass
    assert len(got) == 3
    worker.send('CREDIT', {'credit': 2})
    more = worker.next_of('DISPATCH')[2]['tasks']
    assert len(more) <= 2
    if len(more) < 2:
        more += worker.next_of('DISPATCH')[2]['tasks']
    assert len(more) == 2


def test_registering_again_replaces_the_credit_it_had(broker, peer_factory):
    """A worker that registers again on its connection (its REGISTER sent
    again) announces its free slots anew: the credit of its first
    registration goes, so it is never sent more tasks than its slots."""
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    register(worker, credit=1)
    register(worker, credit=1)
    submit(client, [{'name': 't'} for _ in range(3)])
    # asked after the SUBMIT's reply, the PING is answered after the
    # DISPATCHes of the SUBMIT's turn
    worker.send('PING', {})
    got = []
    while True:
        kind, _, body, _ = worker.recv(timeout=10)
        if kind == 'PONG':
            break
        if kind == 'DISPATCH':
            got += body['tasks']
    assert len(got) == 1, got


def test_after_a_clean_stop_a_task_never_handed_out_was_never_delivered(tmp_path, processes,
                                                                        peer_factory):
    """Dispatch writes nothing, so after a crash each ready task counts one
    delivery more (it may have been handed out); a clean stop writes its
    leases, and after it the counts are exact: a ready task that no worker
    ever had comes with no delivery before (AMQP's redelivered unset)."""
    b = Broker(tmp_path, extra=['--recovery-ms', '0'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    [task_id] = submit(client, [{'name': 't'}])
    assert b.stop() == 0
    restarted = b.restart()
    processes.append(restarted)
    worker = peer_factory(restarted.endpoint)
    register(worker, credit=1)
    task = worker.next_of('DISPATCH', timeout=10)[2]['tasks'][0]
    assert task['id'] == task_id and task.get('delivered', 0) == 0, task


def test_priority_order(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    submit(client, [{'name': 'low', 'priority': -5}, {'name': 'mid'},
                    {'name': 'high', 'priority': 9}, {'name': 'mid2'}])
    register(worker, credit=1)
    order = []
    for _ in range(4):
        task = worker.next_of('DISPATCH')[2]['tasks'][0]
        order.append(task['name'])
        worker.send('RESULT', {'results': [{'id': task['id'], 'lease': task['lease']}]}, [b''])
        worker.send('CREDIT', {'credit': 1})
    assert order == ['high', 'mid', 'mid2', 'low']


def test_late_result_is_refused(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    register(worker, credit=1)
    ids = submit(client, [{'name': 'x', 'retries': 1}], watch=True)
    task = worker.next_of('DISPATCH')[2]['tasks'][0]
    # release it: the lease ends; the same task comes back with a new lease
    worker.send('RESULT', {'results': [{'id': task['id'], 'lease': task['lease'], 'outcome': 2}]},
                [b''])
    worker.send('CREDIT', {'credit': 1})
    again = worker.next_of('DISPATCH')[2]['tasks'][0]
    assert again['id'] == ids[0] and again['lease'] != task['lease']
    # a result for the old lease changes nothing
    worker.send('RESULT', {'results': [{'id': task['id'], 'lease': task['lease']}]}, [b'old'])
    worker.send('RESULT', {'results': [{'id': again['id'], 'lease': again['lease']}]}, [b'new'])
    kind, _, done, frames = client.next_of('DONE')
    assert frames == [b'new']


def test_bad_requests_get_clear_errors(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'a'}, {'queue': 'q'}]},
                                      [b'', b''])
    assert kind == 'ERROR' and body['code'] == 400
    assert "tasks[1]: missing required key 'name'" in body['reason']
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'a', 'retries': 5000}]}, [b''])
    assert kind == 'ERROR' and body['code'] == 422 and 'tasks[0].retries' in body['reason']
    kind, _, body, _ = client.request('STATUS', {'ids': [999999]})
    assert kind == 'STATUS_REPLY' and body['tasks'][0].get('found') is not True
    kind, _, body, _ = client.request('CREDIT', {'credit': 1})
    assert kind == 'ERROR' and body['code'] == 410
    # nothing of the refused submits was stored
    kind, _, body, _ = client.request('LIST', {})
    assert body.get('tasks', []) == []


@pytest.mark.parametrize('cache', ['cached', 'journal'])
def test_status_answers_payloads_only_when_asked(tmp_path, processes, peer_factory, cache):
    """A STATUS with with_payload answers each task's payload, from the
    payload cache or the journal (--cache-mb 0: from the journal only),
    before and after the task ran; one without it is answered as before,
    without payloads. The field is checked as any other."""
    broker = Broker(tmp_path, extra=('--cache-mb', '0') if cache == 'journal' else ())
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    one, empty = submit(client, [{'name': 'echo', 'payload': b'one\x00\xff'},
                                 {'name': 'echo', 'payload': b''}])

    def ask(**extra):
        kind, _, body, _ = client.request('STATUS', dict({'ids': [one, empty, one, 999999]},
                                                         **extra))
        assert kind == 'STATUS_REPLY', body
        return body['tasks']

    assert not any('payload' in t for t in ask())
    assert not any('payload' in t for t in ask(with_payload=False))
    first, none, repeat, missing = ask(with_payload=True)
    assert first['payload'] == b'one\x00\xff'
    # no payload, an id given again (as its result) and no such task: none
    assert 'payload' not in none and 'payload' not in repeat and 'payload' not in missing
    assert missing.get('found') is not True

    worker = peer_factory(broker.endpoint)
    register(worker)
    ran = {}
    while len(ran) < 2:
        kind, _, body, frames = worker.next_of('DISPATCH')
        for task, payload in zip(body['tasks'], frames):
            ran[task['id']] = payload
            worker.send('RESULT', {'results': [{'id': task['id'], 'lease': task['lease']}]},
                        [b'r'])
    assert ran == {one: b'one\x00\xff', empty: b''}
    wait_until(lambda: all(t.get('state') == 5 for t in ask()[:3]), what='both tasks succeeded')
    first, none, _, _ = ask(with_payload=True)
    assert first['payload'] == b'one\x00\xff' and first['result'] == b'r'
    assert 'payload' not in none

    for body, why in (({'ids': [one], 'with_payload': 1},
                       'with_payload: expected boolean, got integer'),
                      ({'ids': [one], 'payload': True}, "unknown key 'payload'")):
        kind, _, reply, _ = client.request('STATUS', body)
        assert kind == 'ERROR' and reply['code'] == 400 and why in reply['reason'], reply


def test_a_worker_hears_its_welcome_before_any_dispatch(broker, peer_factory):
    """Tasks that were ready at the last commit may go before the turn's
    commit (docs/broker.md, "The loop and group commit"), but not to a
    worker whose WELCOME waits for that commit: REGISTER and CREDIT sent at
    once, as a worker does, read in one turn."""
    client = peer_factory(broker.endpoint)
    submit(client, [{'name': 'job', 'payload': b'%d' % i} for i in range(40)])
    for i in range(20):
        worker = peer_factory(broker.endpoint)
        worker.send('REGISTER', {'name': 'w%d' % i, 'slots': 2})
        worker.send('CREDIT', {'queues': ['default'], 'credit': 2})
        kind, _, body, _ = worker.recv()
        assert kind == 'WELCOME', (i, kind, body)
        kind, _, body, _ = worker.next_of('DISPATCH')
        assert len(body['tasks']) >= 1


def test_a_second_live_worker_under_a_name_in_use_is_said(broker, peer_factory):
    # fan-out and broadcast address workers by name: a second worker
    # process under a live worker's name shares its copies, and the broker
    # says so; the same process registering again is not a second one
    first, second, third = (peer_factory(broker.endpoint) for _ in range(3))
    for peer, pid in ((first, 101), (first, 101), (third, 303)):
        kind, _, body, _ = peer.request('REGISTER', {'name': 'lb', 'pid': pid, 'host': 'h'})
        assert kind == 'WELCOME', body
        if peer is first:
            assert 'a second worker registered under a name in use' not in broker.output()
    kind, _, body, _ = second.request('REGISTER', {'name': 'other', 'pid': 202, 'host': 'h'})
    assert kind == 'WELCOME', body
    wait_until(lambda: 'a second worker registered under a name in use name=lb' in
               broker.output(), what='the warning')
    assert broker.output().count('a second worker registered under a name in use') == 1
