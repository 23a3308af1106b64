"""One gateway serves AMQP for a broker (gateway/arb_amqp_claim.c): a
second one on the same broker stands by, leaves the first one's queues
alone, refuses AMQP logins naming the holder, and takes over when the
holder stops, is killed, or is cut off for longer than its claim lasts;
a holder that finds its claim taken over stops. With python3-pika.
"""

import os
import signal
import threading
import time

import pytest

from conftest import SANITIZED, Gateway, wait_until

pika = pytest.importorskip('pika')


def connect(gateway):
    return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', gateway.amqp_port))


def start(tmp_path, processes, broker):
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    return g


def standing_by(gateway):
    return 'standing by' in gateway.output()


def serving(gateway):
    return 'this gateway serves AMQP' in gateway.output()


def test_second_gateway_stands_by_and_leaves_the_first_ones_queues(tmp_path, processes, broker):
    first = start(tmp_path, processes, broker)
    conn = connect(first)
    ch = conn.channel()
    # what a second server's load deleted before the claim: the exclusive
    # queue of a live connection, and a non-durable queue with a message
    mine = ch.queue_declare('', exclusive=True).method.queue
    ch.queue_declare('passing', durable=False)
    ch.basic_publish('', 'passing', b'kept')
    ch.queue_declare('work', durable=True)
    ch.basic_publish('', 'work', b'job', pika.BasicProperties(delivery_mode=2))
    second = start(tmp_path, processes, broker)
    assert standing_by(second) and not serving(second)
    assert 'holder: name=' in second.output()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(second)
    assert '530' in str(refused.value) and 'stands by' in str(refused.value)
    # the first one's queues are still there, messages and all
    ch.basic_publish('', mine, b'to me')
    assert wait_until(lambda: ch.basic_get(mine, auto_ack=True)[2], what='the exclusive queue') \
        == b'to me'
    assert ch.basic_get('passing', auto_ack=True)[2] == b'kept'
    conn.close()
    # the first stops and gives its claim up: the second takes over at its
    # next try (a second), not when the claim would have run out (10 s),
    # and serves the durable queue's message
    assert first.stop() == 0
    stopped = time.time()
    wait_until(lambda: serving(second), timeout=10, what='the take-over')
    assert time.time() - stopped < 4
    conn = connect(second)
    ch = conn.channel()
    assert wait_until(lambda: ch.basic_get('work', auto_ack=True)[2], what='the durable message') \
        == b'job'
    conn.close()


def test_a_killed_holder_is_replaced_at_once(tmp_path, processes, broker):
    first = start(tmp_path, processes, broker)
    second = start(tmp_path, processes, broker)
    assert standing_by(second)
    first.kill9()
    # its process is gone from this host: no wait for its claim to run out
    started = time.time()
    wait_until(lambda: serving(second), timeout=10, what='the take-over')
    assert time.time() - started < 5
    connect(second).close()
    # started again, the killed one stands by in its turn
    again = first.restart()
    processes.append(again)
    wait_until(lambda: standing_by(again), what='the standby')  # (its log holds the first's too)


def test_a_holder_cut_off_past_its_claim_stops(tmp_path, processes, broker):
    first = start(tmp_path, processes, broker)
    second = start(tmp_path, processes, broker)
    assert standing_by(second)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        # its claim runs out 10 s after its last renewal
        wait_until(lambda: serving(second), timeout=20, what='the take-over')
    finally:
        os.kill(first.pid, signal.SIGCONT)
    # back, it finds another gateway's claim where its own was, and stops
    first.proc.wait(15)
    assert first.proc.returncode == 1
    assert 'took over AMQP for this broker' in first.output()
    connect(second).close()


@pytest.mark.skipif(SANITIZED, reason='a wait past the claim\'s 7 s: once, with build/, is enough')
def test_a_holder_away_from_its_broker_holds_amqp_input_then_goes_on(tmp_path, processes,
                                                                      broker):
    gateway = start(tmp_path, processes, broker)
    conn = connect(gateway)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare('kept', durable=True)
    ch.basic_publish('', 'kept', b'before', pika.BasicProperties(delivery_mode=2))
    broker.kill9()
    # past the claim's 7 s of freshness: the gateway reads no AMQP method
    # (it could no longer know that it alone serves), but keeps the
    # connection; once the broker is back and the claim renewed, it goes on
    time.sleep(8)
    answered = threading.Event()

    def qos():
        ch.basic_qos(prefetch_count=5)  # a method the gateway answers alone
        answered.set()
    asker = threading.Thread(target=qos, daemon=True)
    asker.start()
    assert not answered.wait(1.5), 'a method read while the claim was not fresh'
    restarted = broker.restart()
    processes.append(restarted)
    assert answered.wait(15), 'the connection never went on'
    asker.join()
    ch.basic_publish('', 'kept', b'after', pika.BasicProperties(delivery_mode=2))
    # (after a crash the broker holds ready tasks back for a while, for
    # their workers to claim them: docs/broker.md)
    got = [wait_until(lambda: ch.basic_get('kept', auto_ack=True)[2], timeout=20,
                      what='message %d' % i) for i in range(2)]
    assert got == [b'before', b'after']
    conn.close()
    assert gateway.alive() and 'took over' not in gateway.output()
