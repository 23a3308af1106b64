"""Workflows at the protocol level: DAG dependencies and result passing,
failure and skip propagation, validation, cancellation, groups, pipes,
fan-out to named endpoints and routing, against a real arbiterd."""

import time

import pytest

from scripted import ScriptedWorker, run_until


def submit(peer, tasks, **body):
    specs = [{k: v for k, v in t.items() if k != 'payload'} for t in tasks]
    kind, _, reply, _ = peer.request('SUBMIT', dict(body, tasks=specs),
                                     [t.get('payload', b'') for t in tasks])
    return kind, reply


def states(peer, ids):
    kind, _, body, _ = peer.request('STATUS', {'ids': ids})
    return {t['id']: t for t in body['tasks']}


@pytest.fixture
def client(broker, peer_factory):
    return peer_factory(broker.endpoint)


def final(peer, ids):
    return lambda: all(t.get('state') in (5, 7, 8, 9) for t in states(peer, ids).values())


def failing(names):
    """A handler that fails the tasks whose names are in names (a set the
    test may change), and returns b'ok' for the others."""
    def handler(task, payload, w):
        if task['name'] in names:
            raise RuntimeError('boom')
        return b'ok'
    return handler


def test_diamond_passes_results_down(broker, client):
    def handler(task, payload, w):
        got = {p['name']: p.get('result', b'') for p in task.get('parents', [])}
        return (task['name'] + ':' + ','.join('%s=%s' % (k, got[k].decode())
                                              for k in sorted(got))).encode()
    w = ScriptedWorker(broker.endpoint, handler)
    kind, reply = submit(client, [
        {'name': 'a', 'ref': 'a'},
        {'name': 'b', 'ref': 'b', 'after': [{'ref': 'a'}]},
        {'name': 'c', 'ref': 'c', 'after': [{'ref': 'a'}]},
        {'name': 'd', 'ref': 'd', 'after': [{'ref': 'b'}, {'ref': 'c'}]},
    ], flow_kind=1)
    assert kind == 'SUBMITTED' and reply['flow'] > 0
    ids = [t['id'] for t in reply['tasks']]
    assert [t['state'] for t in reply['tasks']] == [3, 1, 1, 1]
    run_until([w], final(client, ids))
    st = states(client, ids)
    assert all(st[i]['state'] == 5 for i in ids)
    assert st[ids[3]]['result'] == b'd:b=b:a=a:,c=c:a=a:'
    # each ran once, after its parents
    order = [t['name'] for t, _ in w.seen]
    assert sorted(order) == ['a', 'b', 'c', 'd'] and order[0] == 'a' and order[-1] == 'd'
    # LIST by flow gives the nodes with their names
    kind, _, body, _ = client.request('LIST', {'flow': reply['flow']})
    assert sorted(t['ref'] for t in body['tasks']) == ['a', 'b', 'c', 'd']


def test_failure_fails_exactly_its_descendants(broker, client):
    w = ScriptedWorker(broker.endpoint, failing({'bad'}))
    kind, reply = submit(client, [
        {'name': 'ok', 'ref': 'root'},
        {'name': 'bad', 'ref': 'bad', 'after': [{'ref': 'root'}]},
        {'name': 'ok', 'ref': 'child', 'after': [{'ref': 'bad'}]},
        {'name': 'ok', 'ref': 'grandchild', 'after': [{'ref': 'child'}]},
        {'name': 'ok', 'ref': 'sibling', 'after': [{'ref': 'root'}]},
        {'name': 'ok', 'ref': 'compensate', 'after': [{'ref': 'bad', 'when': 1}]},
        {'name': 'ok', 'ref': 'undo', 'after': [{'ref': 'sibling', 'when': 1}]},
        {'name': 'ok', 'ref': 'cleanup', 'after': [{'ref': 'grandchild', 'when': 2}]},
    ], flow_kind=1)
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids))
    st = states(client, ids)
    names = ['root', 'bad', 'child', 'grandchild', 'sibling', 'compensate', 'undo', 'cleanup']
    got = {n: st[i]['state'] for n, i in zip(names, ids)}
    assert got == {'root': 5, 'bad': 7, 'child': 7, 'grandchild': 7, 'sibling': 5,
                   'compensate': 5, 'undo': 9, 'cleanup': 5}
    assert "failed dependency: 'bad'" in st[ids[2]]['error']
    assert "failed dependency: 'child'" in st[ids[3]]['error']
    # the dead descendants never ran
    ran = {t['name'] for t, _ in w.seen}
    assert len(w.seen) == 5 and 'bad' in ran


def retry(peer, **body):
    kind, _, reply, _ = peer.request('RETRY', body)
    assert kind == 'RETRY_REPLY', reply
    return reply


def test_retried_parent_reopens_the_children_it_failed(broker, client):
    broken = {'bad'}
    w = ScriptedWorker(broker.endpoint, failing(broken))
    kind, reply = submit(client, [
        {'name': 'bad', 'ref': 'bad'},
        {'name': 'ok', 'ref': 'child', 'after': [{'ref': 'bad'}]},
        {'name': 'ok', 'ref': 'grandchild', 'after': [{'ref': 'child'}]},
        {'name': 'ok', 'ref': 'compensate', 'after': [{'ref': 'bad', 'when': 1}]},
        {'name': 'ok', 'ref': 'cleanup', 'after': [{'ref': 'grandchild', 'when': 2}]},
    ], flow_kind=1)
    ids = [t['id'] for t in reply['tasks']]
    bad, child, grandchild, compensate, cleanup = ids
    run_until([w], final(client, ids))
    assert [states(client, ids)[i]['state'] for i in ids] == [7, 7, 7, 5, 5]
    broken.clear()
    body = retry(client, ids=[bad])
    assert body['tasks'] == [{'id': bad, 'state': 3}] and body['count'] == 3
    # the two that died of it wait for it again; what ran because it failed stays
    st = states(client, ids)
    assert st[bad]['state'] in (3, 4)  # ready, or already sent to the worker
    assert [st[i]['state'] for i in ids[1:]] == [1, 1, 5, 5]
    assert 'error' not in st[child] and 'finished_ms' not in st[child]
    run_until([w], final(client, ids))
    st = states(client, ids)
    assert [st[i]['state'] for i in ids] == [5, 5, 5, 5, 5]
    ran = [t['name'] for t, _ in w.seen]
    assert ran.count('bad') == 2 and ran.count('ok') == 4  # each of the others once


def test_retry_reopens_only_what_no_other_failure_holds(broker, client):
    """A child of two failed parents comes back for good only once both
    are retried; retrying one makes it dead again, naming the other."""
    broken = {'a', 'b'}
    w = ScriptedWorker(broker.endpoint, failing(broken))
    kind, reply = submit(client, [
        {'name': 'a', 'ref': 'a'}, {'name': 'b', 'ref': 'b'},
        {'name': 'ok', 'ref': 'join', 'after': [{'ref': 'a'}, {'ref': 'b'}]},
    ], flow_kind=1)
    ids = [t['id'] for t in reply['tasks']]
    flow = reply['flow']
    run_until([w], final(client, ids))
    broken.clear()
    body = retry(client, ids=[ids[0]])
    assert body['count'] == 1
    st = states(client, ids)
    assert st[ids[2]]['state'] == 7 and "failed dependency: 'b'" in st[ids[2]]['error']
    run_until([w], final(client, ids))
    # the flow: b died on its own and comes back, and with it the join
    body = retry(client, flow=flow)
    assert body['count'] == 2 and body.get('tasks', []) == []
    run_until([w], final(client, ids))
    assert [states(client, ids)[i]['state'] for i in ids] == [5, 5, 5]
    assert [t['name'] for t, _ in w.seen].count('ok') == 1


def test_group_retry_brings_back_members_and_callback_before_the_finalizer(broker, client):
    broken = {'m1'}

    def handler(task, payload, w):
        if task['name'] in broken:
            raise RuntimeError('boom')
        return task['name'].encode()
    w = ScriptedWorker(broker.endpoint, handler)
    kind, reply = submit(client, [
        {'name': 'm1', 'ref': 'm1'},
        {'name': 'm2', 'ref': 'm2', 'queue': 'later'},
        {'name': 'callback', 'ref': 'callback', 'after': [{'ref': 'm1'}, {'ref': 'm2'}]},
        {'name': 'finalizer', 'ref': 'finalizer',
         'after': [{'ref': 'm1', 'when': 2}, {'ref': 'm2', 'when': 2},
                   {'ref': 'callback', 'when': 2}]},
    ], flow_kind=2, flow_name='thumbs')
    ids = [t['id'] for t in reply['tasks']]
    m1, m2, callback, finalizer = ids
    run_until([w], lambda: states(client, [callback])[callback]['state'] == 7)
    # the finalizer still waits for m2; the group comes back under it
    assert states(client, [finalizer])[finalizer]['state'] == 1
    broken.clear()
    kind, _, body, _ = client.request('RETRY', {'group': 'nope'})
    assert kind == 'ERROR' and body['code'] == 404
    body = retry(client, group='thumbs')
    assert body['count'] == 2
    run_until([w], lambda: states(client, [m1])[m1]['state'] == 5)
    # m1 is done again, but the callback waits for m2, and the finalizer for both
    assert [states(client, ids)[i]['state'] for i in ids] == [5, 3, 1, 1]
    slow = ScriptedWorker(broker.endpoint, handler, name='slow', queues=('later',))
    run_until([w, slow], final(client, ids))
    assert [states(client, ids)[i]['state'] for i in ids] == [5, 5, 5, 5]
    ran = [t['name'] for t, _ in w.seen]
    assert ran.count('finalizer') == 1 and ran.index('callback') < ran.index('finalizer')


def test_pipe_retry_by_flow_runs_the_rest_of_the_pipe(broker, client):
    broken = {'step2'}

    def handler(task, payload, w):
        if task['name'] in broken:
            raise RuntimeError('boom')
        return payload + task['name'][-1:].encode()
    w = ScriptedWorker(broker.endpoint, handler)
    kind, reply = submit(client, [
        {'name': 'step1', 'ref': 'step1', 'payload': b'>'},
        {'name': 'step2', 'ref': 'step2', 'after': [{'ref': 'step1'}], 'input': 1},
        {'name': 'step3', 'ref': 'step3', 'after': [{'ref': 'step2'}], 'input': 1},
    ], flow_kind=3)
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids))
    assert [states(client, ids)[i]['state'] for i in ids] == [5, 7, 7]
    broken.clear()
    kind, _, body, _ = client.request('RETRY', {'flow': reply['flow'] + 100})
    assert kind == 'ERROR' and body['code'] == 404
    assert retry(client, flow=reply['flow'])['count'] == 2
    run_until([w], final(client, ids))
    st = states(client, ids)
    assert [st[i]['state'] for i in ids] == [5, 5, 5] and st[ids[2]]['result'] == b'>123'


def test_cycle_and_missing_are_refused_with_names(broker, client):
    kind, reply = submit(client, [
        {'name': 'x', 'ref': 'a', 'after': [{'ref': 'c'}]},
        {'name': 'x', 'ref': 'b', 'after': [{'ref': 'a'}]},
        {'name': 'x', 'ref': 'c', 'after': [{'ref': 'b'}]},
        {'name': 'x', 'ref': 'd'},
    ])
    assert kind == 'ERROR' and reply['code'] == 422
    assert 'cycle' in reply['reason']
    for name in ("'a'", "'b'", "'c'"):
        assert name in reply['reason']
    assert "'d'" not in reply['reason']
    kind, reply = submit(client, [{'name': 'x', 'ref': 'a', 'after': [{'ref': 'nope'}]},
                                  {'name': 'x', 'ref': 'b', 'after': [{'id': 987654}]}])
    assert kind == 'ERROR' and "'a' waits for 'nope'" in reply['reason']
    assert "'b' waits for task 987654" in reply['reason']
    kind, reply = submit(client, [{'name': 'x', 'ref': 'a'}, {'name': 'y', 'ref': 'a'}])
    assert kind == 'ERROR' and "duplicate task names: 'a'" in reply['reason']
    kind, _, body, _ = client.request('LIST', {})
    assert body.get('tasks', []) == []


def test_cancelling_a_node_cancels_its_descendants(broker, client):
    kind, reply = submit(client, [
        {'name': 'x', 'ref': 'a'},
        {'name': 'x', 'ref': 'b', 'after': [{'ref': 'a'}]},
        {'name': 'x', 'ref': 'c', 'after': [{'ref': 'b'}]},
        {'name': 'x', 'ref': 'fin', 'after': [{'ref': 'c', 'when': 2}]},
        {'name': 'x', 'ref': 'other'},
    ], flow_kind=1)
    ids = [t['id'] for t in reply['tasks']]
    kind, _, body, _ = client.request('CANCEL', {'ids': [ids[0]]})
    assert kind == 'CANCEL_REPLY'
    st = states(client, ids)
    assert [st[i]['state'] for i in ids[:3]] == [8, 8, 8]
    # the finalizer (always) still runs; the unrelated node is untouched
    assert st[ids[3]]['state'] == 3 and st[ids[4]]['state'] == 3


def test_group_callback_sees_all_results_and_finalizer_runs(broker, client):
    def handler(task, payload, w):
        if task['name'] == 'member':
            return payload * 2
        if task['name'] == 'callback':
            return b'+'.join(sorted(p['result'] for p in task['parents']))
        return b'final'
    w = ScriptedWorker(broker.endpoint, handler)
    members = [{'name': 'member', 'ref': 'm%d' % i, 'payload': b'%d' % i} for i in range(5)]
    callback = {'name': 'callback', 'ref': 'callback',
                'after': [{'ref': 'm%d' % i} for i in range(5)]}
    finalizer = {'name': 'finalizer', 'ref': 'finalizer',
                 'after': [{'ref': 'm%d' % i, 'when': 2} for i in range(5)]
                 + [{'ref': 'callback', 'when': 2}]}
    kind, reply = submit(client, members + [callback, finalizer], flow_kind=2, flow_name='g1')
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids))
    st = states(client, ids)
    assert st[ids[5]]['result'] == b'00+11+22+33+44'
    assert st[ids[6]]['state'] == 5
    assert [t['name'] for t, _ in w.seen][-1] == 'finalizer'


def test_group_cancel_keeps_the_finalizer(broker, client):
    members = [{'name': 'member', 'ref': 'm%d' % i} for i in range(3)]
    callback = {'name': 'callback', 'ref': 'cb', 'after': [{'ref': 'm%d' % i} for i in range(3)]}
    finalizer = {'name': 'fin', 'ref': 'fin',
                 'after': [{'ref': 'm%d' % i, 'when': 2} for i in range(3)] + [{'ref': 'cb', 'when': 2}]}
    kind, reply = submit(client, members + [callback, finalizer], flow_kind=2, flow_name='g2')
    ids = [t['id'] for t in reply['tasks']]
    kind, _, body, _ = client.request('CANCEL', {'group': 'g2'})
    assert body['count'] == 4  # the three members and the callback that waited on them
    st = states(client, ids)
    assert [st[i]['state'] for i in ids] == [8, 8, 8, 8, 3]


def test_pipe_feeds_each_result_to_the_next(broker, client):
    def handler(task, payload, w):
        args = task.get('args', b'0')
        return b'%d' % (int(payload or b'0') + int(args))
    w = ScriptedWorker(broker.endpoint, handler)
    steps = [{'name': 'add', 'ref': 's1', 'payload': b'0', 'args': b'1'}]
    for k in range(2, 21):
        steps.append({'name': 'add', 'ref': 's%d' % k, 'args': b'%d' % k, 'input': 1,
                      'after': [{'ref': 's%d' % (k - 1)}]})
    kind, reply = submit(client, steps, flow_kind=3, watch=True)
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids), timeout=20)
    st = states(client, ids)
    assert st[ids[-1]]['result'] == b'%d' % sum(range(1, 21))
    # the caller streamed every step's result as it finished
    seen = {}
    while len(seen) < 20:
        _, _, body, frames = client.next_of('DONE')
        for t, f in zip(body['tasks'], frames):
            seen[t['id']] = f
    assert seen[ids[4]] == b'15'


def test_fan_out_to_named_endpoints(broker, client, peer_factory):
    workers = [ScriptedWorker(broker.endpoint, lambda t, p, w: w.name.encode(), name='ep%d' % i)
               for i in range(3)]
    kind, reply = submit(client, [{'name': 'deploy', 'endpoints': ['ep0', 'ep1', 'ep2'],
                                   'payload': b'v2'}])
    assert kind == 'SUBMITTED', reply
    tid = reply['tasks'][0]['id']
    run_until(workers, final(client, [tid]))
    st = states(client, [tid])[tid]
    assert st['state'] == 5
    answers = {r['endpoint']: r['result'] for r in st['responses']}
    assert answers == {'ep0': b'ep0', 'ep1': b'ep1', 'ep2': b'ep2'}
    # each endpoint got exactly its own copy
    assert all(len(w.seen) == 1 and w.seen[0][1] == b'v2' for w in workers)
    # an unknown endpoint is refused at submit...
    kind, reply = submit(client, [{'name': 'deploy', 'endpoints': ['ep0', 'ghost']}])
    assert kind == 'ERROR' and "'ghost'" in reply['reason']
    # ...unless allowed; then it is missing after the endpoint timeout
    kind, reply = submit(client, [{'name': 'deploy', 'endpoints': ['ep0', 'ghost'],
                                   'allow_unknown': True, 'endpoint_timeout_ms': 500}])
    tid = reply['tasks'][0]['id']
    run_until(workers, final(client, [tid]))
    st = states(client, [tid])[tid]
    assert st['state'] == 7 and 'incomplete' in st['error'] and 'ghost' in st['error']
    assert {r['endpoint']: r['state'] for r in st['responses']} == {'ep0': 5, 'ghost': 8}


def test_routing_enqueues_with_success_only(broker, client):
    def splitter(task, payload, w):
        if task['queue'] == 'lines':
            for word in payload.split():
                w.emit(task, 'words', word)
            if payload.startswith(b'fail'):
                raise RuntimeError('no')
        return b''
    w = ScriptedWorker(broker.endpoint, splitter, queues=('lines',))
    kind, reply = submit(client, [{'name': 'split', 'queue': 'lines', 'payload': b'a b c'},
                                  {'name': 'split', 'queue': 'lines', 'payload': b'fail x y'}])
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids))
    kind, _, body, _ = client.request('PEEK', {'queue': 'words', 'max': 100})
    words = sorted(t['name'] for t in body.get('tasks', []))
    assert len(body['tasks']) == 3 and words == ['words'] * 3
    kind, _, body, frames = client.request('PEEK', {'queue': 'words', 'max': 100})
    assert sorted(frames) == [b'a', b'b', b'c']


def test_queue_failure_policies(broker, client):
    """head: a failed item goes back to the head of its queue (Arbeiter),
    once its backoff has passed, while the items behind it go past it;
    dead: a failed item is dead at once, whatever its retries."""
    calls = []

    def handler(task, payload, w):
        calls.append(payload)
        if payload == b'bad' and calls.count(b'bad') < 3 or payload == b'never':
            raise RuntimeError('not yet')
        if payload.startswith(b'good'):
            time.sleep(0.5)  # much longer than the bad item's backoff
        return b'ok'
    kind, _, body, _ = client.request('QUEUE', {'queue': 'arb', 'op': 'set', 'on_failure': 'head'})
    assert kind == 'OK'
    kind, _, body, _ = client.request('QUEUE', {'queue': 'fragile', 'op': 'set',
                                                'on_failure': 'dead'})
    w = ScriptedWorker(broker.endpoint, handler, queues=('arb', 'fragile'), credit=1)
    kind, reply = submit(client, [{'name': 'x', 'queue': 'arb', 'payload': b'bad',
                                   'backoff': 1, 'backoff_ms': 100}] +
                         [{'name': 'x', 'queue': 'arb', 'payload': b'good%d' % i}
                          for i in (1, 2, 3)])
    ids = [t['id'] for t in reply['tasks']]
    run_until([w], final(client, ids))
    # while it waits out its backoff the next item runs; then it is back
    # first, before the items behind it, without retries set
    assert calls == [b'bad', b'good1', b'bad', b'good2', b'bad', b'good3']
    st = states(client, ids)
    assert st[ids[0]]['state'] == 5 and st[ids[0]]['attempts'] == 3
    kind, reply = submit(client, [{'name': 'x', 'queue': 'fragile', 'retries': 5,
                                   'payload': b'never'}])
    tid = reply['tasks'][0]['id']
    run_until([w], final(client, [tid]))
    assert states(client, [tid])[tid]['state'] == 7
    assert states(client, [tid])[tid]['attempts'] == 1


def test_broadcast_reaches_every_worker_of_the_queue(broker, client):
    workers = [ScriptedWorker(broker.endpoint, lambda t, p, w: w.name.encode(), name=n,
                              queues=('fleet',)) for n in ('w1', 'w2')]
    other = ScriptedWorker(broker.endpoint, lambda t, p, w: b'', name='elsewhere',
                           queues=('other',))
    kind, reply = submit(client, [{'name': 'ping', 'queue': 'fleet', 'broadcast': True}])
    assert kind == 'SUBMITTED', reply
    tid = reply['tasks'][0]['id']
    run_until(workers + [other], final(client, [tid]))
    st = states(client, [tid])[tid]
    assert st['state'] == 5
    assert sorted(r['endpoint'] for r in st['responses']) == ['w1', 'w2']
    assert other.seen == []


def test_broadcast_reaches_the_workers_that_run_its_name(broker, client):
    runs = ScriptedWorker(broker.endpoint, lambda t, p, w: b'pong', name='runs',
                          queues=('fleet',), handles=('ping',))
    not_it = ScriptedWorker(broker.endpoint, lambda t, p, w: b'', name='not-it',
                            queues=('fleet',), handles=('other',))
    kind, reply = submit(client, [{'name': 'ping', 'queue': 'fleet', 'broadcast': True}])
    assert kind == 'SUBMITTED', reply
    tid = reply['tasks'][0]['id']
    run_until([runs, not_it], final(client, [tid]))
    st = states(client, [tid])[tid]
    assert st['state'] == 5
    assert [r['endpoint'] for r in st['responses']] == ['runs']
    assert not_it.seen == []
