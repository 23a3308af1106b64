"""The publish path when the broker stalls or dies (docs/gateway.md, AMQP
"What reaches the broker"): under confirms a publish whose outcome is
unknown is never nacked (the connection closes with 320 instead: it may
have been stored)."""

import os
import signal
import threading
import time

import pytest

from conftest import wait_until

pika = pytest.importorskip('pika')

from test_amqp import connect  # noqa: E402 (after the skip: it imports pika too)


@pytest.fixture
def gateway(gateway_factory, broker):
    return gateway_factory(broker)


def stored(gateway, queue):
    conn = connect(gateway)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def confirm_publishers(gateway, queue, stop, threads=4):
    """Publishers with confirms, each on its own connection, until stop is
    set or their connection fails. Returns (threads, outcomes): outcomes
    maps a body to 'acked', 'nacked' or 'doubt' (the connection closed
    with it unconfirmed)."""
    outcomes = {}
    lock = threading.Lock()

    def run(t):
        try:
            conn = connect(gateway)
            ch = conn.channel()
            ch.confirm_delivery()
        except pika.exceptions.AMQPError:
            return
        i = 0
        while not stop.is_set():
            body = b't%d-%d' % (t, i)
            i += 1
            try:
                ch.basic_publish('', queue, body)
                outcome = 'acked'
            except pika.exceptions.NackError:
                outcome = 'nacked'
            except pika.exceptions.AMQPError:
                with lock:
                    outcomes[body] = 'doubt'
                return
            with lock:
                outcomes[body] = outcome
        try:
            conn.close()
        except pika.exceptions.AMQPError:
            pass
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    return pool, outcomes


def all_bodies(gateway, queue, count):
    conn = connect(gateway)
    ch = conn.channel()
    got = set()
    deadline = time.time() + 30
    while len(got) < count and time.time() < deadline:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.add(body)
    conn.close()
    return got


def check_no_nacked_stored(gateway, queue, outcomes):
    # the queue read once the broker has stored what was on its way: its
    # count the same twice, a second apart
    last = [-1]

    def settled():
        count = stored(gateway, queue)
        if count == last[0]:
            return True
        last[0] = count
        time.sleep(1)
        return False
    wait_until(settled, timeout=60, what='the queue settled')
    bodies = all_bodies(gateway, queue, last[0])
    nacked = {b for b, o in outcomes.items() if o == 'nacked'}
    acked = {b for b, o in outcomes.items() if o == 'acked'}
    assert not (nacked & bodies), 'nacked yet stored: %r' % sorted(nacked & bodies)[:5]
    assert acked <= bodies, 'acked yet not stored: %r' % sorted(acked - bodies)[:5]
    return nacked, bodies


def test_a_confirm_whose_outcome_is_unknown_is_not_a_nack(gateway, broker):
    """The broker stopped past the gateway's give-up time (5 s) with
    publishes in flight, then continued: they may be stored, so none is
    nacked; the connection closes (320) and the publisher knows them to be
    in doubt."""
    conn = connect(gateway)
    conn.channel().queue_declare('doubt')
    conn.close()
    stop = threading.Event()
    pool, outcomes = confirm_publishers(gateway, 'doubt', stop)
    try:
        wait_until(lambda: len(outcomes) >= 200, timeout=20, what='publishes confirmed')
        os.kill(broker.pid, signal.SIGSTOP)
        time.sleep(7)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        stop.set()
        for thread in pool:
            thread.join(30)
    assert not any(thread.is_alive() for thread in pool)
    check_no_nacked_stored(gateway, 'doubt', outcomes)
    assert 'doubt' in outcomes.values(), 'no publish was in flight'
    assert 'code=320' in gateway.output()


def test_a_confirm_whose_broker_was_killed_is_not_a_nack(gateway, broker):
    """kill -9 with publishes in flight and a restart: no message is both
    nacked and stored (a publish in flight is in doubt, not refused)."""
    conn = connect(gateway)
    conn.channel().queue_declare('killed', durable=True)
    conn.close()
    stop = threading.Event()
    pool, outcomes = confirm_publishers(gateway, 'killed', stop)
    restarted = None
    try:
        wait_until(lambda: len(outcomes) >= 200, timeout=20, what='publishes confirmed')
        broker.kill9()
        time.sleep(1)
        restarted = broker.restart()
    finally:
        stop.set()
        for thread in pool:
            thread.join(30)
    try:
        assert not any(thread.is_alive() for thread in pool)
        check_no_nacked_stored(gateway, 'killed', outcomes)
    finally:
        restarted.stop()
