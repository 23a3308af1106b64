"""One request must not stall the broker's loop past the workers' liveness
window (issue 10): a SUBMIT of 100,000 specs with client keys (twice: the
second finds every key), and a listing of those 100,000 tasks in pages,
while a worker holds a task. The worker keeps its session and its lease
throughout: it never counts the broker silent, and the broker never counts
it lost. Before: keys within a SUBMIT were found by a walk over the
batch, 5 billion comparisons for 100,000 keys.

A SUBMIT that long still lasts seconds on a loaded machine (the plain
build's first took 6.4 s in a CI run of 2026-12-05, past the 5 s window,
and its worker registered again): the broker sends the heartbeats that
fall due while it works (arb_life_config_t.pulse). A second, bare worker
session records when the broker's messages reach it during the first
SUBMIT: with heartbeats every 100 ms, the longest silence is a fraction of
the SUBMIT's time (decoding it and encoding the reply are not pulsed), not
all of it (the silence was the whole SUBMIT before: 1.17 of 1.18 s). The
same for a STATUS of the 100,000 ids (each read from the journal: 2.3 s, silent
throughout, before), and for the CANCEL of a chain's root, whose 99,999
descendants go with it (1.5 s, silent throughout, before).

Plain build only (conftest.PLAIN_ONLY): what it measures is time, and the
sanitized build's SUBMIT took 6 to 16 s on a loaded machine. A keyed
SUBMIT of 20,000 tasks, pulsed, runs sanitized in tests/unit/test_broker.c
(its heartbeats after the WELCOME); the STATUS and the LISTs of 100,000
ids run sanitized nowhere else at this size (STATUS and LIST of a few
hundred ids do, through the pulse of every 256th).
"""

import time

import zmq

import arbiter_proto
from conftest import Broker, Process, binary, wait_until
from helpers import status

RUNNING = 4
N = 100000


def workers(peer):
    kind, _, body, _ = peer.request('STATS', {}, timeout=30)
    assert kind == 'STATS_REPLY', body
    return {w['identity']: w for w in body.get('workers', [])}


def request_heard(client, beats, type_name, body, frames=()):
    """Sends a request, answering each message that reaches the bare worker
    session beats meanwhile. Returns the reply, the time the request took
    and the longest time beats heard nothing in it."""
    heard = False
    for _ in range(1000):  # what came before the request
        if not beats.sock.poll(0):
            break
        beats.sock.recv_multipart()
        heard = True
    if heard:
        beats.send('HEARTBEAT', {})
    reqid = client.send(type_name, body, frames)
    poller = zmq.Poller()
    poller.register(client.sock, zmq.POLLIN)
    poller.register(beats.sock, zmq.POLLIN)
    started = time.time()
    heard, longest = started, 0.0
    while time.time() < started + 120:
        events = dict(poller.poll(1000))
        now = time.time()
        if beats.sock in events:
            beats.sock.recv_multipart()
            longest, heard = max(longest, now - heard), now
            beats.send('HEARTBEAT', {})
        if client.sock in events:
            msg = arbiter_proto.decode(client.sock.recv_multipart())
            if msg[1] == reqid:
                return msg, now - started, max(longest, now - heard)
    raise TimeoutError('no reply to %s within 120 s' % type_name)


def test_big_submit_and_listing_keep_the_workers(processes, tmp_path, peer_factory):
    broker = Broker(tmp_path, extra=['--heartbeat-ms', '100'])
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    worker = Process([binary('worker', 'arbiter-worker'), '--broker', broker.endpoint,
                      '--queue', 'hold', '--drain-ms', '200', '--grace-ms', '200',
                      '--exec', 'exec sleep 600'],
                     str(tmp_path / 'worker.log'))
    processes.append(worker)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'hold', 'queue': 'hold'}]},
                                      [b''])
    held = body['tasks'][0]['id']
    wait_until(lambda: status(client, [held])[held]['state'] == RUNNING, what='task held')
    [identity] = workers(client)
    beats = peer_factory(broker.endpoint)
    kind, _, body, _ = beats.request('REGISTER', {'name': 'beats', 'slots': 1})
    assert kind == 'WELCOME', body

    specs = [{'name': 'bulk', 'queue': 'bulk', 'key': 'bulk-%06d' % i} for i in range(N)]
    (kind, _, body, _), first, silent = request_heard(client, beats, 'SUBMIT', {'tasks': specs},
                                                      [b''] * N)
    assert kind == 'SUBMITTED' and len(body['tasks']) == N, body
    assert silent < first / 2, (silent, first)
    # beats answers the broker throughout, or a slow machine's broker would
    # count it lost
    (kind, _, body, _), again, _ = request_heard(client, beats, 'SUBMIT', {'tasks': specs},
                                                 [b''] * N)
    took = [first, again]
    assert kind == 'SUBMITTED' and len(body['tasks']) == N, body
    assert all(t['existing'] for t in body['tasks'])
    ids = [t['id'] for t in body['tasks']]

    listed, after, pages = 0, 0, []
    while True:
        (kind, _, body, _), page, _ = request_heard(
            client, beats, 'LIST', {'queue': 'bulk', 'after_id': after, 'limit': 10000})
        pages.append(page)
        assert kind == 'LIST_REPLY', body
        listed += len(body.get('tasks', []))
        if not body.get('more'):
            break
        after = body['tasks'][-1]['id']
    assert listed == N

    # a STATUS of them all: each id read from the journal, heartbeats meanwhile
    (kind, _, body, _), asked, silent = request_heard(client, beats, 'STATUS', {'ids': ids})
    assert kind == 'STATUS_REPLY' and len(body['tasks']) == N, body
    assert silent < asked / 2, (silent, asked)

    # a chain of N tasks, then a CANCEL of its root: the cascade over its
    # descendants, pulsed too (it was silent throughout before: 1.5 s for
    # 100,000, past a liveness window of 1 s)
    chain = [{'name': 'link', 'ref': 'l0', 'queue': 'chain'}] + [
        {'name': 'link', 'ref': 'l%d' % i, 'queue': 'chain', 'after': [{'ref': 'l%d' % (i - 1)}]}
        for i in range(1, N)]
    (kind, _, body, _), _, _ = request_heard(client, beats, 'SUBMIT',
                                             {'tasks': chain, 'flow_kind': 1}, [b''] * N)
    assert kind == 'SUBMITTED', body
    root = body['tasks'][0]['id']
    (kind, _, body, _), cancelled, silent = request_heard(client, beats, 'CANCEL',
                                                          {'ids': [root]})
    assert kind == 'CANCEL_REPLY', body
    assert silent < cancelled / 2, (silent, cancelled)

    # the same sessions (beats by its name: the broker gives a peer whose
    # routing id starts with a zero byte one of its own), the lease never lost
    now = workers(client)
    assert identity in now and sorted(w['name'] for w in now.values()) == \
        sorted([now[identity]['name'], 'beats']), (took, pages, now)
    info = status(client, [held])[held]
    assert info['state'] == RUNNING and info.get('lost', 0) == 0, info
    assert 'registering again' not in worker.output(), (took, pages, worker.output())
    assert 'worker lost' not in broker.output(), (took, pages)
