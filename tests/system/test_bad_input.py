"""Bad input at a real broker: random, truncated and oversized frames. The
broker answers what it can with an error, changes nothing, and keeps
serving everyone else."""

import os
import random
import struct
import time

import msgpack
import zmq

import arbiter_proto
from arbiter_proto import header
from conftest import wait_until
from helpers import SUCCEEDED, status, submit_many


def valid_submit(name=b'ok'):
    return arbiter_proto.encode('SUBMIT', 7, {'tasks': [{'name': name.decode()}]}, [b'payload'])


def garbage(rng):
    """One malformed multipart message, of a random kind."""
    kind = rng.randrange(8)
    if kind == 0:  # random frames
        return [os.urandom(rng.randrange(0, 64)) for _ in range(rng.randrange(1, 5))]
    if kind == 1:  # a valid message cut short at a random byte
        parts = valid_submit()
        body = parts[1]
        return [parts[0], body[:rng.randrange(0, len(body))]] + parts[2:]
    if kind == 2:  # valid header, random body
        return [header('SUBMIT', 1), os.urandom(rng.randrange(0, 200)), b'x']
    if kind == 3:  # unknown type or version
        return [b'AR' + struct.pack('>BBI', rng.choice([0, 2, 9]), rng.randrange(256), 5), b'\x80']
    if kind == 4:  # a count that lies
        return [header('STATUS', 2), b'\x81\xa3ids\xdd\x7f\xff\xff\xff']
    if kind == 5:  # frames that do not match the records
        return valid_submit()[:2] + [b'a', b'b', b'c']
    if kind == 6:  # right shape, wrong types
        return [header('SUBMIT', 3),
                msgpack.packb({'tasks': [{'name': 5, 'priority': 'high'}]}), b'']
    # a worker verb from a peer that never registered
    return arbiter_proto.encode('RESULT', 4, {'results': [{'id': 1, 'lease': 1}]}, [b''])


def test_random_and_truncated_frames(broker, peer_factory):
    rng = random.Random(20261123)
    attacker = peer_factory(broker.endpoint)
    for _ in range(3000):
        attacker.send_raw(garbage(rng))
    # a healthy client is served normally during and after the flood
    client = peer_factory(broker.endpoint)
    for _ in range(3):
        kind, _, body, _ = client.request('PING', {})
        assert kind == 'PONG'
    # the attacker got error replies, never anything else
    replies = 0
    while True:
        try:
            kind, _, body, _ = attacker.recv(timeout=1.0)
        except TimeoutError:
            break
        assert kind == 'ERROR', kind
        assert body['code'] in (400, 404, 410, 413, 422, 505)
        replies += 1
    assert replies > 1000
    # nothing the garbage said was stored
    kind, _, body, _ = client.request('LIST', {})
    assert body.get('tasks', []) == []
    # and a real submit still works
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'after'}]}, [b''])
    assert kind == 'SUBMITTED'
    assert broker.alive()


def test_oversized_payload_is_refused_clearly(tmp_path, processes, peer_factory):
    from conftest import Broker
    b = Broker(tmp_path, extra=['--max-payload', '64K'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'big'}]}, [b'x' * 70000])
    assert kind == 'ERROR' and body['code'] == 413
    assert 'tasks[0]: frame of 70000 bytes, over the 65536-byte limit' in body['reason']
    # far over the limit: ZeroMQ drops the connection; the broker carries on
    rogue = peer_factory(b.endpoint)
    rogue.send_raw(valid_submit()[:2] + [b'y' * (1 << 20)])
    kind, _, body, _ = client.request('PING', {})
    assert kind == 'PONG'
    kind, _, body, _ = client.request('LIST', {})
    assert body.get('tasks', []) == []


def test_empty_lists_are_answered(broker, peer_factory):
    """A request whose list is empty (SUBMIT of no tasks, STATUS of no ids)
    is answered as any other; the sanitized broker once stopped on it (a
    memset of a list that had no items at all)."""
    client = peer_factory(broker.endpoint)
    for kind, body, want in [('SUBMIT', {'tasks': []}, 'SUBMITTED'),
                             ('STATUS', {'ids': []}, 'STATUS_REPLY'),
                             ('WATCH', {'ids': []}, None),
                             ('CANCEL', {'ids': []}, None)]:
        got, _, _, _ = client.request(kind, body)
        assert want is None or got == want, (kind, got)
    kind, _, _, _ = client.request('PING', {})
    assert kind == 'PONG'
    assert broker.alive()


def peak_rss_mib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM'):
                return int(line.split()[1]) / 1024
    return 0


def test_a_client_that_does_not_read_is_not_read_from(broker, peer_factory):
    """A client that sends requests with big answers and does not read
    them has at most 64 MiB of answers wait for it (docs/broker.md,
    "Bounds": those past it are dropped, as past the 10,000 messages) and
    is not read from meanwhile; what it reads later is whole. Before: 150
    STATUS of a task with an 8 MB result, left unread, held over a
    gigabyte of the broker's memory and stalled its loop for seconds (each
    answer copied the backlog), long enough for workers to be taken for
    lost."""
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    kind, _, _, _ = worker.request('REGISTER', {'name': 'w', 'slots': 1})
    assert kind == 'WELCOME'
    worker.send('CREDIT', {'queues': ['big'], 'credit': 1})
    task_id, = submit_many(client, [{'name': 'x', 'queue': 'big'}])
    _, _, dispatch, _ = worker.next_of('DISPATCH')
    held = dispatch['tasks'][0]
    result = b'r' * (8 << 20)
    worker.send('RESULT', {'results': [{'id': held['id'], 'lease': held['lease']}]}, [result])
    wait_until(lambda: status(client, [task_id])[task_id]['state'] == SUCCEEDED,
               what='the big result stored')
    # it takes one message into its own memory, and little into TCP's
    slow = arbiter_proto.Peer(broker.endpoint, sockopts=[(zmq.RCVHWM, 1), (zmq.RCVBUF, 65536)])
    try:
        for _ in range(150):
            slow.send('STATUS', {'ids': [task_id]})
        time.sleep(3)
        assert peak_rss_mib(broker.pid) < 640, peak_rss_mib(broker.pid)
        kind, _, _, _ = client.request('PING', {})
        assert kind == 'PONG'
        got = 0
        while True:
            try:
                # the answers kept come one after the other once it reads,
                # and the requests read since then are answered as they
                # come: 4 s of silence after the first is the end (each is
                # 8 MB: a loaded CI run saw a gap of over 2 s)
                kind, _, body, _ = slow.recv(timeout=4 if got else 5)
            except TimeoutError:
                break
            assert kind == 'STATUS_REPLY', kind
            assert body['tasks'][0]['result'] == result
            got += 1
        assert 8 <= got < 150, got
    finally:
        slow.close()
    assert broker.alive()
