"""The gateway's SUBMIT batches: one turn's tasks from every protocol go to
the broker together, and the broker takes or refuses a SUBMIT whole, so
no client's task may make a batch the broker refuses for the others:
a fan-out task (whose refusal depends on the workers connected) goes
alone, a payload over the broker's --max-payload is refused by the
gateway for its own client, and headers count in a batch's bytes, so
that a SUBMIT stays under the broker's largest message."""

import os
import signal
import threading
import time
import uuid

import pika
import requests

from conftest import Broker, wait_until
from test_kestrel import KSock, ready


def test_a_refused_fan_out_task_does_not_refuse_the_others(gateway):
    """A broadcast to a queue no worker serves is refused (422), as often
    as it is posted, while Kestrel sets stream in the same turns: every
    set is stored."""
    gw = gateway()
    ready(gw)
    stop = threading.Event()
    codes = {}

    def post_broadcasts():
        session = requests.Session()
        for _ in range(2000):
            if stop.is_set():
                return
            resp = session.post('%s/other' % gw.url, json={
                'identifier': uuid.uuid4().hex, 'payload': 'x', 'broadcast': True}, timeout=10)
            codes[resp.status_code] = codes.get(resp.status_code, 0) + 1

    poster = threading.Thread(target=post_broadcasts)
    poster.start()
    try:
        k = KSock(gw.kestrel_port, timeout=20)
        answers = []
        deadline = time.time() + 4
        while time.time() < deadline and len(answers) < 4000:
            k.send(b''.join(b'set bq 0 0 2\r\nok\r\n' for _ in range(50)))
            answers += [k.line() for _ in range(50)]
        k.close()
    finally:
        stop.set()
        poster.join()
    assert set(codes) == {422}, codes
    assert sum(codes.values()) > 10, codes
    assert set(answers) == {b'STORED'}, {a for a in answers if a != b'STORED'}


def test_a_payload_over_the_brokers_limit_is_refused_alone(tmp_path, processes, gateway):
    """The gateway allows larger payloads than its broker: a set over the
    broker's limit is refused for its own client, and the sets sent with
    it, in the same write, are stored."""
    small = Broker(tmp_path, db=str(tmp_path / 'small.db'), extra=['--max-payload', '4K'])
    processes.append(small)
    gw = gateway('--max-payload', '1M', broker=small)
    ready(gw)
    k = KSock(gw.kestrel_port)
    k.send(b'set lim 0 0 2\r\nv1\r\n' + b'set lim 0 0 8192\r\n' + b'x' * 8192 + b'\r\n'
           + b'set lim 0 0 2\r\nv2\r\n')
    first, big, last = k.line(), k.line(), k.line()
    assert first == b'STORED' and last == b'STORED', (first, big, last)
    assert big.startswith(b'SERVER_ERROR') or big.startswith(b'CLIENT_ERROR'), big
    assert b'4096' in big, big
    assert k.get(b'lim') == (b'v1', 0) and k.get(b'lim') == (b'v2', 0)
    assert k.get(b'lim') is None
    k.close()


def test_headers_count_in_a_batchs_bytes(tmp_path, processes, gateway):
    """Publishes with large headers from many connections, taken in one
    turn, to a broker with a small --max-payload: the gateway's batches
    stay under the broker's largest message (twice that and 1 MiB), so
    every message is queued and the broker session never drops."""
    small = Broker(tmp_path, db=str(tmp_path / 'small.db'), extra=['--max-payload', '64K'])
    processes.append(small)
    gw = gateway('--max-payload', '64K', '--kestrel', 'off', broker=small)
    wait_until(gw.ready, timeout=20, what='gateway up')
    params = pika.ConnectionParameters('127.0.0.1', gw.amqp_port)
    conns = [pika.BlockingConnection(params) for _ in range(30)]
    try:
        channels = [conn.channel() for conn in conns]
        channels[0].queue_declare('hb', durable=True)
        props = pika.BasicProperties(headers={'h': 'y' * 60000}, delivery_mode=2)
        # the gateway stopped while they are written: its next turn reads
        # all 30 (1.8 MB of headers) at once
        os.kill(gw.pid, signal.SIGSTOP)
        try:
            for i, ch in enumerate(channels):
                ch.basic_publish('', 'hb', b'%d' % i, props)
        finally:
            os.kill(gw.pid, signal.SIGCONT)
        wait_until(lambda: channels[0].queue_declare('hb', passive=True).method.message_count
                   == 30, timeout=30, what='30 messages queued')
    finally:
        for conn in conns:
            conn.close()
    assert 'largest message' not in small.output()
    assert gw.output().count('broker session up') == 1
