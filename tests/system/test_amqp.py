"""The gateway's AMQP 0-9-1 server with clients no one here wrote: Debian's
python3-pika, rabbitmq-c's amqp-tools, and the Node client amqplib (from
the npm registry, installed under the build tree by tools/arbiter-dev or
skipped when absent), plus raw sockets for bad input.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import ROOT, Broker, Gateway, binary, free_port, wait_until
from helpers import node_or_skip, npm_path

pika = pytest.importorskip('pika')


@pytest.fixture
def gateway(gateway_factory, broker):
    """The test's gateway, serving AMQP (every test here uses its amqp_port)."""
    return gateway_factory(broker)


def connect(gateway, **kw):
    params = pika.ConnectionParameters('127.0.0.1', gateway.amqp_port, connection_attempts=3,
                                       retry_delay=0.2, **kw)
    return pika.BlockingConnection(params)


def drain(ch, queue, n, timeout=10, ack=True):
    """Consumes n messages of queue with a consumer; returns (method, props, body) triples."""
    got = []
    deadline = time.time() + timeout
    for method, props, body in ch.consume(queue, inactivity_timeout=0.2):
        if method:
            got.append((method, props, body))
            if ack:
                ch.basic_ack(method.delivery_tag)
        if len(got) == n or time.time() > deadline:
            break
    ch.cancel()
    return got


def bodies_of(ch, queue):
    """Every message of queue, with basic.get (acked)."""
    out = []
    while True:
        m, _, b = ch.basic_get(queue, auto_ack=True)
        if not m:
            return out
        out.append(b)


# ---------------------------------------------------------------------------
# pika


def test_pika_publish_confirm_get_consume(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('jobs', durable=True)
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2, priority=3, expiration='600000', reply_to='r',
                                 correlation_id='c1', message_id='m1', content_type='text/plain',
                                 headers={'k': 'v', 'n': 7, 'nested': {'x': [1, 'two']}})
    for i in range(20):
        ch.basic_publish('', 'jobs', b'body-%d' % i, props)
    method, got_props, body = ch.basic_get('jobs')
    assert body == b'body-0' and method.message_count == 19 and not method.redelivered
    for field in ('delivery_mode', 'priority', 'expiration', 'reply_to', 'correlation_id',
                  'message_id', 'content_type', 'headers'):
        assert getattr(got_props, field) == getattr(props, field), field
    ch.basic_ack(method.delivery_tag)
    ch.basic_qos(prefetch_count=5)
    got = drain(ch, 'jobs', 19)
    assert [b for _, _, b in got] == [b'body-%d' % i for i in range(1, 20)]
    assert ch.basic_get('jobs') == (None, None, None)
    assert ch.queue_declare('jobs', passive=True).method.message_count == 0
    c.close()


def test_pika_nack_reject_requeue_redelivered(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('rq')
    ch.basic_publish('', 'rq', b'one')
    ch.basic_publish('', 'rq', b'two')
    m1, _, b1 = ch.basic_get('rq')
    assert b1 == b'one' and not m1.redelivered
    ch.basic_nack(m1.delivery_tag, requeue=True)
    m2, _, b2 = ch.basic_get('rq')
    assert b2 == b'one' and m2.redelivered  # requeued to the head
    ch.basic_reject(m2.delivery_tag, requeue=False)
    m3, _, b3 = ch.basic_get('rq')
    assert b3 == b'two'
    ch.basic_ack(m3.delivery_tag)
    assert ch.basic_get('rq') == (None, None, None)
    # multiple ack of several gets, and an unknown tag closes the channel with 406
    for b in (b'a', b'b', b'c'):
        ch.basic_publish('', 'rq', b)
    tags = [ch.basic_get('rq')[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[-1], multiple=True, requeue=True)  # all three back, in order
    got = [ch.basic_get('rq') for _ in range(3)]
    assert [(m.redelivered, b) for m, _, b in got] == [(True, b'a'), (True, b'b'), (True, b'c')]
    tags = [m.delivery_tag for m, _, _ in got]
    ch.basic_ack(tags[-1], multiple=True)
    assert ch.basic_get('rq') == (None, None, None)
    ch.basic_ack(999)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_get('rq')
    assert e.value.reply_code == 406
    # the multiple ack settled all three, its own tag too: the channel's
    # close gives none back
    assert c.channel().basic_get('rq') == (None, None, None)
    # a message past its x-delivery-limit, dropped as it comes to a
    # consumer, gives back the credit it took: the next one comes
    ch = c.channel()
    ch.queue_declare('lq', durable=True, arguments={'x-queue-type': 'quorum',
                                                    'x-delivery-limit': 0})
    ch.basic_publish('', 'lq', b'over')
    ch.basic_publish('', 'lq', b'next')
    m, _, body = ch.basic_get('lq')
    assert body == b'over'
    ch.basic_nack(m.delivery_tag, requeue=True)  # returned once: over the limit
    ch.basic_qos(prefetch_count=1)
    got = []
    ch.basic_consume('lq', lambda ch_, m_, p_, b_: got.append(b_))
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        c.process_data_events(time_limit=0.05)
    assert got == [b'next']
    c.close()


def test_pika_prefetch_per_consumer_and_per_channel(gateway):
    """basic.qos global=False bounds each consumer; global=True bounds the
    channel, its consumers together; neither starves a consumer."""
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    for q in ('pq1', 'pq2', 'pq3'):
        ch.queue_declare(q)
        for i in range(10):
            ch.basic_publish('', q, b'%s-%d' % (q.encode(), i))
    ch.queue_declare('pq-empty')

    def settle(seconds=1.0):
        deadline = time.time() + seconds
        while time.time() < deadline:
            c.process_data_events(time_limit=0.1)
    shared, own = [], []
    channel_wide = c.channel()
    channel_wide.basic_qos(prefetch_count=4, global_qos=True)
    for q in ('pq1', 'pq2'):
        channel_wide.basic_consume(q, lambda _c, m, _p, b: shared.append((m, b)))
    per_consumer = c.channel()
    per_consumer.basic_qos(prefetch_count=2)
    for _ in range(2):
        per_consumer.basic_consume('pq3', lambda _c, m, _p, b: own.append((m, b)))
    settle()
    assert len(shared) == 4  # the channel's 4, not 4 a consumer
    assert len(own) == 4     # 2 a consumer
    # an ack gives back one credit, to the channel
    channel_wide.basic_ack(shared[0][0].delivery_tag)
    settle(0.5)
    assert len(shared) == 5
    # acking as they come, every message of both queues comes through
    for m, _ in shared[1:]:
        channel_wide.basic_ack(m.delivery_tag)
    channel_wide.close()
    got = {b for _, b in shared}
    one = c.channel()
    one.basic_qos(prefetch_count=1, global_qos=True)
    # a consumer of an empty queue beside them holds nothing back
    one.basic_consume('pq-empty', lambda *a: None)
    for q in ('pq1', 'pq2'):
        one.basic_consume(q, lambda _c, m, _p, b: (got.add(b), _c.basic_ack(m.delivery_tag)))
    wait_until(lambda: c.process_data_events(time_limit=0.1) or len(got) == 20, timeout=15,
               what='every message through a channel prefetch of 1')
    assert got == {b'pq%d-%d' % (q, i) for q in (1, 2) for i in range(10)}
    c.close()


def test_consumers_of_a_queue_take_its_messages_in_turn(gateway):
    """RabbitMQ's work queues (its second tutorial): two workers, each on
    its own connection, share a queue one message each in turn, whether
    the messages come one at a time or in a burst. The broker dealt every
    message that came alone in a turn to the same worker, since the pass
    before each commit, meeting a task it may not hand out yet, took that
    worker's turn."""
    producer = connect(gateway)
    pch = producer.channel()
    pch.queue_declare('work', durable=True)
    workers, got = [], []
    for name in ('a', 'b'):
        conn = connect(gateway)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=5)
        ch.basic_consume('work', lambda c, m, _p, b, name=name: (
            got.append((name, b)), c.basic_ack(m.delivery_tag)))
        workers.append(conn)

    def pump(n):
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            for conn in workers:
                conn.process_data_events(time_limit=0.02)
        assert len(got) == n

    for i in range(10):  # one at a time: each delivered before the next is sent
        pch.basic_publish('', 'work', b'%d' % i,
                          pika.BasicProperties(delivery_mode=2))
        pump(i + 1)
    alone = [name for name, _ in got]
    assert alone.count('a') == 5 and alone.count('b') == 5, alone
    assert all(x != y for x, y in zip(alone, alone[1:])), alone  # in turn
    del got[:]
    for i in range(10):  # a burst
        pch.basic_publish('', 'work', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    pump(10)
    burst = [name for name, _ in got]
    assert burst.count('a') == 5 and burst.count('b') == 5, burst
    for conn in workers + [producer]:
        conn.close()


def test_consumer_priorities_through_cancels_and_closes(gateway):
    """x-priority ranks the consumers of one queue over connections and
    channels: the high ones get the messages while they have room, the
    low one the rest; a cancelled high consumer (its unacked kept) no
    longer counts, a closed channel's unacked come back to the one with
    room, and a new high consumer on another connection takes over."""
    low_conn, high_conn = connect(gateway), connect(gateway)
    setup = low_conn.channel()
    setup.queue_declare('prio')
    low_got = []
    low = low_conn.channel()
    low.basic_qos(prefetch_count=50)
    low.basic_consume('prio', lambda c, m, p, b: (low_got.append(b), c.basic_ack(m.delivery_tag)))
    high = {}
    for name in ('h1', 'h2'):
        ch = high_conn.channel()
        ch.basic_qos(prefetch_count=1)
        got = []
        tag = ch.basic_consume('prio', lambda c, m, p, b, got=got: got.append((m, b)),
                               arguments={'x-priority': 5})
        high[name] = (ch, tag, got)
    conns = [low_conn, high_conn]

    def pump(until, what):
        wait_until(lambda: [c.process_data_events(time_limit=0.02) for c in conns
                            if c.is_open] and until(), timeout=10, what=what)

    def publish(*bodies):
        for body in bodies:
            setup.basic_publish('', 'prio', body)
    publish(b'1', b'2', b'3', b'4')
    pump(lambda: len(low_got) == 2, 'two for the low consumer')
    assert sorted(b for h in high.values() for _, b in h[2]) == [b'1', b'2']
    assert low_got == [b'3', b'4']
    # h1 cancelled with its message unacked: h2 is the only high one
    h1, h1_tag, h1_got = high['h1']
    h1.basic_cancel(h1_tag)
    h2, _, h2_got = high['h2']
    h2.basic_ack(h2_got[0][0].delivery_tag)
    pump(lambda: True, 'the ack')
    publish(b'5', b'6')
    pump(lambda: len(h2_got) == 2 and len(low_got) == 3, 'one each')
    assert h2_got[1][1] == b'5' and low_got[2] == b'6'
    # h2's channel closed: its unacked one comes back, to the low consumer
    h2.close()
    pump(lambda: len(low_got) == 4, 'the returned one')
    assert low_got[3] == b'5'
    # a new high consumer elsewhere takes the next, the low one the rest
    other = connect(gateway)
    conns.append(other)
    h3_got = []
    h3 = other.channel()
    h3.basic_qos(prefetch_count=1)
    h3.basic_consume('prio', lambda c, m, p, b: h3_got.append(b), arguments={'x-priority': 1})
    publish(b'7', b'8')
    pump(lambda: len(h3_got) == 1 and len(low_got) == 5, 'the new high consumer first')
    assert h3_got == [b'7'] and low_got[4] == b'8'
    # the first high connection closed: h1's unacked one goes to the low
    high_conn.close()
    pump(lambda: len(low_got) == 6, "h1's returned one")
    assert low_got[5] == b'1' or low_got[5] == b'2'
    for c in (low_conn, other):
        c.close()


def test_pika_prefetch_per_consumer_under_a_channel_prefetch(gateway):
    """basic.qos global=True and global=False together: a delivery needs
    room under both, as RabbitMQ's."""
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    for q in ('bq1', 'bq2', 'bq3'):
        ch.queue_declare(q)
        for i in range(10):
            ch.basic_publish('', q, b'%s-%d' % (q.encode(), i))

    def settle(seconds=1.0):
        deadline = time.time() + seconds
        while time.time() < deadline:
            c.process_data_events(time_limit=0.1)
    got = {'bq1': [], 'bq2': [], 'bq3': []}

    def on(queue):
        return lambda _c, m, _p, b: got[queue].append(m)
    # the consumer's own 2 under the channel's 10
    roomy = c.channel()
    roomy.basic_qos(prefetch_count=10, global_qos=True)
    roomy.basic_qos(prefetch_count=2)
    roomy.basic_consume('bq1', on('bq1'))
    settle()
    assert len(got['bq1']) == 2
    # two more under the channel's 3, with their own 2 each: 3 together
    tight = c.channel()
    tight.basic_qos(prefetch_count=3, global_qos=True)
    tight.basic_qos(prefetch_count=2)
    tight.basic_consume('bq2', on('bq2'))
    tight.basic_consume('bq3', on('bq3'))
    settle()
    assert len(got['bq2']) + len(got['bq3']) == 3
    assert len(got['bq2']) <= 2 and len(got['bq3']) <= 2
    # an ack frees one under both: one more comes, to whichever has room
    first = got['bq2'][0] if got['bq2'] else got['bq3'][0]
    tight.basic_ack(first.delivery_tag)
    settle(0.5)
    assert len(got['bq2']) + len(got['bq3']) == 4
    # acking as they come, everything comes through
    done = {('bq2' if got['bq2'] and first is got['bq2'][0] else 'bq3', first.delivery_tag)}
    while len(done) < 20:
        before = len(done)
        for q in ('bq2', 'bq3'):
            for m in got[q]:
                if (q, m.delivery_tag) not in done:
                    tight.basic_ack(m.delivery_tag)
                    done.add((q, m.delivery_tag))
        settle(0.3)
        assert len(got['bq2']) + len(got['bq3']) - len(done) <= 3
        if len(done) == before:
            break
    assert (len(got['bq2']), len(got['bq3'])) == (10, 10)
    # a consumer of an empty queue does not hold all of the channel's room
    tight.close()
    for i in range(10):
        ch.basic_publish('', 'bq2', b'again-%d' % i)
    ch.queue_declare('bq-empty')
    again = []
    starved = c.channel()
    starved.basic_qos(prefetch_count=2, global_qos=True)
    starved.basic_qos(prefetch_count=2)
    idle = starved.basic_consume('bq-empty', lambda *a: None)
    starved.basic_consume('bq2', lambda _c, m, _p, b: again.append(m))
    settle()
    assert len(again) == 1  # an equal share of the channel's 2
    for _ in range(3):
        starved.basic_ack(again[-1].delivery_tag)
        settle(0.3)
    assert len(again) == 4
    starved.basic_cancel(idle)
    settle(0.5)
    assert len(again) == 5  # its share is the other's now: 2 unacked
    c.close()


def test_transactions_are_bounded_per_connection(gateway):
    """A transaction holds at most 256 MiB of bodies, and so do all the
    transactions of a connection together: 2,047 channels held 2,047
    times it, all in the gateway's memory, until the client committed."""
    c = connect(gateway)
    body = b'x' * (8 << 20)
    first = c.channel()
    first.queue_declare('txbig')
    first.tx_select()
    for _ in range(17):  # 136 MiB: within a transaction's bound
        first.basic_publish('', 'txbig', body)
    second = c.channel()
    second.tx_select()
    for _ in range(16):  # 128 MiB more: past the connection's
        second.basic_publish('', 'txbig', body)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        second.tx_commit()
    assert e.value.reply_code == 406 and "a connection's transactions" in e.value.reply_text
    first.tx_rollback()  # its bytes are given back: a new one holds as much
    third = c.channel()
    third.tx_select()
    third.basic_publish('', 'txbig', b'small')
    third.tx_commit()
    assert third.queue_declare('txbig', passive=True).method.message_count == 1
    c.close()


def test_pika_transactions(gateway):
    """tx.select: publishes and acks take effect at tx.commit (whose -Ok
    follows the broker's answers), and a rollback forgets them."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('txq')
    look = c.channel()

    def ready():
        return look.queue_declare('txq', passive=True).method.message_count
    ch.tx_select()
    ch.basic_publish('', 'txq', b'rolled-back')
    ch.tx_rollback()
    ch.basic_publish('', 'txq', b'a')
    ch.basic_publish('', 'txq', b'b')
    assert ready() == 0  # kept until the commit
    ch.tx_commit()
    assert ready() == 2  # stored when Commit-Ok came
    m, _, body = ch.basic_get('txq')
    assert body == b'a'
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()  # the ack is forgotten: still unacked
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    m, _, body = ch.basic_get('txq')
    assert body == b'b'
    ch.basic_reject(m.delivery_tag, requeue=True)
    ch.tx_commit()
    ch.close()  # nothing unacked is left to go back
    assert ready() == 1
    m, _, body = look.basic_get('txq', auto_ack=True)
    assert body == b'b' and m.redelivered
    # an unknown tag is refused at once, in a transaction too
    ch = c.channel()
    ch.tx_select()
    ch.basic_ack(42)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('txq', passive=True)  # before any commit
    assert e.value.reply_code == 406
    # confirms and transactions do not mix; commit needs select
    ch = c.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_select()
    assert e.value.reply_code == 406
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_commit()
    assert e.value.reply_code == 406
    c.close()


def test_pika_deletes_purges_cancels_and_recover(gateway):
    """queue.delete if_empty/if_unused, exchange.delete if_unused,
    auto-delete queues and exchanges, purge counts, a consumer cancelled by
    the server when its queue goes, exclusive consumers, basic.recover."""
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare('full')
    ch.basic_publish('', 'full', b'x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_delete('full', if_empty=True)
    assert e.value.reply_code == 406 and 'not empty' in e.value.reply_text
    ch = c.channel()
    ch.confirm_delivery()
    assert ch.queue_purge('full').method.message_count == 1
    assert ch.queue_delete('full', if_empty=True).method.message_count == 0
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('full', passive=True)
    assert e.value.reply_code == 404
    # if_unused: a consumer holds it
    ch = c.channel()
    ch.queue_declare('used')
    held = c.channel()
    cancelled = []
    held.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = held.basic_consume('used', lambda *a: None)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_delete('used', if_unused=True)
    assert e.value.reply_code == 406
    # an exclusive consumer: another one is refused (403)
    other = c.channel()
    other.queue_declare('solo')
    other.basic_consume('solo', lambda *a: None, exclusive=True)
    third = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        third.basic_consume('solo', lambda *a: None)
    assert e.value.reply_code == 403
    # deleting a consumed queue cancels its consumer (basic.cancel to pika)
    ch = c.channel()
    ch.queue_delete('used')
    wait_until(lambda: c.process_data_events(time_limit=0.1) or cancelled == [tag],
               timeout=10, what='basic.cancel from the server')
    # auto-delete: a queue with its last consumer, an exchange with its
    # last binding
    ch.exchange_declare('fleeting-x', 'fanout', auto_delete=True)
    ch.exchange_declare('keeper', 'fanout')
    ch.queue_declare('ad-q', auto_delete=True)
    ch.queue_bind('ad-q', 'fleeting-x')
    ch.queue_bind('ad-q', 'keeper')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_delete('keeper', if_unused=True)
    assert e.value.reply_code == 406
    ch = c.channel()
    consumer = c.channel()
    consumer.basic_consume('ad-q', lambda *a: None)
    consumer.close()  # its last consumer: the queue goes, then the exchange
    for what, declare in (('ad-q', lambda x: x.queue_declare('ad-q', passive=True)),
                          ('fleeting-x', lambda x: x.exchange_declare('fleeting-x',
                                                                      passive=True))):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            declare(ch)
        assert e.value.reply_code == 404, what
        ch = c.channel()
    ch.exchange_declare('keeper', passive=True)  # not auto-delete: kept
    ch.exchange_delete('keeper', if_unused=True)
    # basic.recover: the unacked come again, flagged
    ch.queue_declare('again')
    ch.confirm_delivery()
    for b in (b'1', b'2'):
        ch.basic_publish('', 'again', b)
    first = [ch.basic_get('again')[0] for _ in range(2)]
    assert not any(m.redelivered for m in first)
    ch.basic_recover(requeue=True)
    back = [ch.basic_get('again') for _ in range(2)]
    assert [b for _, _, b in back] == [b'1', b'2'] and all(m.redelivered for m, _, _ in back)
    c.close()


def test_deleting_a_queue_keeps_the_other_queues_bindings(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('both', 'fanout')
    for q in ('first-bound', 'second-bound', 'third-bound'):
        ch.queue_declare(q)
        ch.queue_bind(q, 'both')
    ch.queue_delete('second-bound')
    ch.confirm_delivery()
    ch.basic_publish('both', '', b'to-the-others', mandatory=True)
    assert ch.basic_get('first-bound', auto_ack=True)[2] == b'to-the-others'
    assert ch.basic_get('third-bound', auto_ack=True)[2] == b'to-the-others'
    c.close()


def test_deletes_with_many_bindings(gateway):
    """An exchange or a queue with many bindings deleted: one method waits
    for a record per binding (it once crashed the gateway past 16)."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('many', 'direct')
    ch.exchange_declare('fan', 'fanout')
    for i in range(40):
        ch.queue_declare('mb%d' % i)
        ch.queue_bind('mb%d' % i, 'many', 'k%d' % i)
        ch.queue_bind('mb0', 'fan', 'f%d' % i)
    ch.exchange_delete('many')
    ch.queue_delete('mb0')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare('many', passive=True)
    assert e.value.reply_code == 404
    c.close()
    c = connect(gateway)  # the gateway still serves
    c.channel().exchange_declare('fan', passive=True)
    c.close()


def test_pika_unacked_come_back_redelivered_on_close(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('back')
    for i in range(3):
        ch.basic_publish('', 'back', b'%d' % i)
    got = drain(ch, 'back', 3, ack=False)
    assert len(got) == 3
    c.close()
    c = connect(gateway)
    ch = c.channel()
    got = drain(ch, 'back', 3)
    assert sorted(b for _, _, b in got) == [b'0', b'1', b'2']
    assert all(m.redelivered for m, _, _ in got)
    c.close()


def test_a_purge_after_a_consumers_cancel_takes_what_was_on_its_way(gateway):
    """A consumer cancelled (pika's channel close cancels its consumers
    first) or its connection closed while its deliveries are on their way,
    then the queue purged: the purge takes every message, as RabbitMQ's
    does (what it sent before the Cancel-Ok or Close-Ok is back in the queue
    by then), and none comes back after it. Before: the Cancel-Ok went out
    at once, the broker's deliveries to the consumer came after it and were
    given back only then, and a purge in between missed them (about one
    round in twenty, so sixty rounds)."""
    c = connect(gateway)
    ch = c.channel()
    for round_ in range(60):
        queue = 'purged-%d' % round_
        ch.queue_declare(queue)
        for i in range(20):
            ch.basic_publish('', queue, b'%d' % i)
        whole = round_ % 2 == 1  # close the consumer's connection, not its channel
        holder = connect(gateway) if whole else c
        consumer = holder.channel()
        consumer.basic_consume(queue, lambda *args: None)
        (holder if whole else consumer).close()
        assert ch.queue_purge(queue).method.message_count == 20, round_
        time.sleep(0.05)
        assert ch.queue_declare(queue, passive=True).method.message_count == 0, round_
    c.close()


def test_server_named_consumer_tags_are_rabbitmqs_shape(gateway):
    """A consumer without a tag gets one as RabbitMQ makes them: amq.ctag-
    and 22 random url-safe characters (it was amq.ctag-CONN.CHANNEL.N, which
    a client's own tag could take ahead of the server)."""
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Queue.Declare(queue='tagged'))
    raw.expect(pika.spec.Queue.DeclareOk)
    tags = set()
    for _ in range(3):
        raw.send(1, pika.spec.Basic.Consume(queue='tagged', consumer_tag=''))
        tags.add(raw.expect(pika.spec.Basic.ConsumeOk).consumer_tag)
    assert len(tags) == 3
    assert all(re.fullmatch(r'amq\.ctag-[A-Za-z0-9_-]{22}', tag) for tag in tags), tags
    raw.close()

def test_pika_exchanges_of_each_type(gateway):
    c = connect(gateway)
    ch = c.channel()
    for name, kind in (('d', 'direct'), ('f', 'fanout'), ('t', 'topic'), ('h', 'headers')):
        ch.exchange_declare(name, kind)
    for q in ('q1', 'q2', 'q3'):
        ch.queue_declare(q)
        ch.queue_purge(q)
    ch.queue_bind('q1', 'd', 'red')
    ch.queue_bind('q1', 'f')
    ch.queue_bind('q2', 'f')
    ch.queue_bind('q2', 't', 'a.*.c')
    ch.queue_bind('q3', 't', 'a.#')
    ch.queue_bind('q3', 'h', arguments={'x-match': 'all', 'kind': 'big'})
    ch.queue_bind('q1', 'amq.direct', 'blue')
    ch.basic_publish('d', 'red', b'direct')
    ch.basic_publish('d', 'green', b'nowhere')
    ch.basic_publish('f', 'x', b'fanout')
    ch.basic_publish('t', 'a.b.c', b'topic3')
    ch.basic_publish('t', 'a', b'topic1')
    ch.basic_publish('h', '', b'headers', pika.BasicProperties(headers={'kind': 'big'}))
    ch.basic_publish('h', '', b'not', pika.BasicProperties(headers={'kind': 'small'}))
    ch.basic_publish('amq.direct', 'blue', b'amq')

    def bodies(q):
        return bodies_of(ch, q)
    assert bodies('q1') == [b'direct', b'fanout', b'amq']
    assert bodies('q2') == [b'fanout', b'topic3']
    assert bodies('q3') == [b'topic3', b'topic1', b'headers']
    # exchange to exchange
    ch.exchange_declare('e2', 'fanout')
    ch.exchange_bind('e2', 'd', 'red')
    ch.queue_bind('q2', 'e2')
    ch.basic_publish('d', 'red', b'via-e2')
    assert bodies('q2') == [b'via-e2']
    ch.queue_unbind('q2', 'e2')
    ch.basic_publish('d', 'red', b'again')
    assert bodies('q2') == []
    c.close()


def test_unbind_of_a_gone_queue_or_exchange_is_unbind_ok(gateway):
    """RabbitMQ 3.x unbinds idempotently: an unbind naming a queue or an
    exchange that is not there answers Unbind-Ok, not 404 (py-amqp's and
    kombu's cleanups unbind after an auto-delete queue went); a bind still
    gets 404, and the channel goes on."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('ub-q', auto_delete=False)
    ch.queue_unbind('ub-gone-q', 'amq.direct', 'k')
    ch.queue_unbind('ub-q', 'ub-gone-x', 'k')
    ch.queue_unbind('ub-gone-q', 'ub-gone-x', 'k')
    ch.exchange_unbind('ub-gone-x', 'amq.direct', 'k')
    ch.exchange_unbind('amq.fanout', 'ub-gone-x', 'k')
    # the channel is still open, and a real unbind still unbinds
    ch.queue_bind('ub-q', 'amq.direct', 'k')
    ch.queue_unbind('ub-q', 'amq.direct', 'k')
    ch.basic_publish('amq.direct', 'k', b'unbound')
    assert bodies_of(ch, 'ub-q') == []
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_bind('ub-gone-q', 'amq.direct', 'k')
    assert e.value.reply_code == 404
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_unbind('ub-q', '', 'ub-q')
    assert e.value.reply_code == 403
    c.close()


def test_refusals_in_rabbitmqs_words(gateway):
    """py-amqp (whose own tests carry RabbitMQ's reply texts) gets RabbitMQ
    3.10's words for deleting the default or a system exchange and for
    channel.flow active=false, with the code and the method RabbitMQ gives."""
    amqp = pytest.importorskip('amqp')

    def refusal(call):
        c = amqp.Connection(host='127.0.0.1:%d' % gateway.amqp_port)
        c.connect()
        try:
            with pytest.raises(amqp.exceptions.AMQPError) as e:
                call(c.channel())
            return e.value.reply_code, e.value.reply_text, e.value.method_name
        finally:
            c.collect()
    assert refusal(lambda ch: ch.exchange_delete('')) == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange",
        'Exchange.delete')
    assert refusal(lambda ch: ch.exchange_delete('amq.direct')) == (
        403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
        "allowed", 'Exchange.delete')
    assert refusal(lambda ch: ch.flow(False)) == (
        540, 'NOT_IMPLEMENTED - active=false', 'Channel.flow')


def test_qos_with_a_byte_window_refused(gateway):
    """basic.qos with prefetch_size is refused (540, as RabbitMQ 3.10), not
    accepted and ignored: the gateway keeps no byte window."""
    amqp = pytest.importorskip('amqp')
    c = amqp.Connection(host='127.0.0.1:%d' % gateway.amqp_port)
    c.connect()
    ch = c.channel()
    ch.basic_qos(0, 10, False)
    with pytest.raises(amqp.exceptions.AMQPNotImplementedError) as e:
        ch.basic_qos(10, 0, False)
    assert (e.value.reply_code, e.value.reply_text, e.value.method_name) == (
        540, 'NOT_IMPLEMENTED - prefetch_size!=0 (10)', 'Basic.qos')
    c.collect()


def test_pika_passive_equivalence_and_errors(gateway):
    c = connect(gateway)
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('nope', passive=True)
    assert e.value.reply_code == 404
    ch = c.channel()
    ch.queue_declare('eq', durable=False)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('eq', durable=True)
    assert e.value.reply_code == 406 and 'inequivalent' in e.value.reply_text
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare('missing', passive=True)
    assert e.value.reply_code == 404
    ch = c.channel()
    ch.exchange_declare('ex1', 'direct')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare('ex1', 'fanout')
    assert e.value.reply_code == 406
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare('amq.mine', 'direct')
    assert e.value.reply_code == 403
    ch = c.channel()
    ch.basic_publish('no-such-exchange', 'k', b'x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('eq', passive=True)
    assert e.value.reply_code == 404
    ch = c.channel()
    assert ch.queue_declare('eq', passive=True).method.queue == 'eq'
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        ch.exchange_declare('odd', 'no-such-type')
    assert e.value.reply_code == 503
    # the other connections are unaffected
    c2 = connect(gateway)
    assert c2.channel().queue_declare('eq', passive=True).method.queue == 'eq'
    c2.close()


def test_queues_are_the_brokers(gateway):
    """A declared queue is the broker's (listed while empty); queue.delete
    deletes it there, with its messages; a get's count is its own queue's."""
    import requests
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('listed')
    reply = requests.get('%s/api/v1/queues/listed' % gateway.url, timeout=10)
    assert reply.status_code == 200, reply.text
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish('', 'listed', b'%d' % i)
    method, _, body = ch.basic_get('listed', auto_ack=True)
    assert body == b'0' and method.message_count == 2 and not method.redelivered
    assert ch.queue_delete('listed').method.message_count == 2
    reply = requests.get('%s/api/v1/queues/listed' % gateway.url, timeout=10)
    assert reply.status_code == 404, reply.text
    assert ch.queue_declare('listed').method.message_count == 0
    c.close()


def test_pika_max_length_drops_the_head(gateway):
    """x-max-length as RabbitMQ's default overflow: the oldest ready messages
    go, dead-lettered when the queue says where; unacked ones do not count."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('ml-dlx', 'fanout')
    ch.queue_declare('ml-dropped')
    ch.queue_bind('ml-dropped', 'ml-dlx')
    ch.queue_declare('bounded', arguments={'x-max-length': 3, 'x-overflow': 'drop-head'})
    ch.queue_declare('bounded-dl', arguments={'x-max-length': 2,
                                              'x-dead-letter-exchange': 'ml-dlx'})
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish('', 'bounded', b'%d' % i)
        ch.basic_publish('', 'bounded-dl', b'dl%d' % i)

    def count(queue):
        return ch.queue_declare(queue, passive=True).method.message_count
    wait_until(lambda: (count('bounded'), count('bounded-dl'), count('ml-dropped')) == (3, 2, 8),
               timeout=10, what='the bounded queues trimmed')
    assert bodies_of(ch, 'bounded-dl') == [b'dl8', b'dl9']
    assert bodies_of(ch, 'ml-dropped') == [b'dl%d' % i for i in range(8)]
    # two of the three taken unacked: they are not counted, so one more
    # publish drops only the one ready message left over
    m7, _, b7 = ch.basic_get('bounded')
    m8, _, b8 = ch.basic_get('bounded')
    assert (b7, b8) == (b'7', b'8')
    for b in (b'a', b'b', b'c'):
        ch.basic_publish('', 'bounded', b)
    wait_until(lambda: count('bounded') == 3, timeout=10, what='trimmed to 3 ready')
    ch.basic_ack(m8.delivery_tag, multiple=True)
    assert bodies_of(ch, 'bounded') == [b'a', b'b', b'c']
    c.close()


def test_pika_max_length_holds_for_gets_counts_and_purges(gateway):
    """drop-head as at the store, as far as basic.get, a queue's count and
    queue.purge can tell: each waits for the trim that the publishes before
    it started, so it finds the queue within its bound at once, on the
    publishing connection and on another after the confirms, as with
    RabbitMQ (no wait_until here)."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('exact', arguments={'x-max-length': 2})
    for i in range(6):
        ch.basic_publish('', 'exact', b'%d' % i)
    # no confirms: the get follows the publishes at once
    m, _, body = ch.basic_get('exact')
    assert (body, m.message_count) == (b'4', 1)
    ch.basic_ack(m.delivery_tag)
    for i in range(6, 10):
        ch.basic_publish('', 'exact', b'%d' % i)
    assert ch.queue_declare('exact', passive=True).method.message_count == 2
    for i in range(10, 14):
        ch.basic_publish('', 'exact', b'%d' % i)
    assert ch.queue_purge('exact').method.message_count == 2
    ch.confirm_delivery()
    for i in range(14, 20):
        ch.basic_publish('', 'exact', b'%d' % i)
    other = connect(gateway)
    och = other.channel()
    assert och.basic_get('exact', auto_ack=True)[2] == b'18'
    assert och.queue_declare('exact', passive=True).method.message_count == 1
    other.close()
    # more over the bound than one take drops (256): the get waits for
    # every round it needs
    ch = c.channel()
    for i in range(700):
        ch.basic_publish('', 'exact', b'n%d' % i)
    m, _, body = ch.basic_get('exact', auto_ack=True)
    assert (body, m.message_count) == (b'n698', 1)
    # publishes then a purge in one go: the purge takes them too
    for i in range(3):
        ch.basic_publish('', 'exact', b'p%d' % i)
    assert ch.queue_purge('exact').method.message_count == 2
    assert ch.queue_declare('exact', passive=True).method.message_count == 0
    for i in range(5):
        ch.basic_publish('', 'exact', b'd%d' % i)
    assert ch.queue_delete('exact').method.message_count == 2
    # the same without a bound: a purge or a delete right after publishes
    # takes them along (they reach the broker before it)
    ch.queue_declare('unbounded')
    for i in range(3):
        ch.basic_publish('', 'unbounded', b'u%d' % i)
    assert ch.queue_purge('unbounded').method.message_count == 3
    for i in range(3):
        ch.basic_publish('', 'unbounded', b'v%d' % i)
    assert ch.queue_delete('unbounded').method.message_count == 3
    assert ch.queue_declare('unbounded').method.message_count == 0
    c.close()


def test_pika_unkept_bounds_refused_and_expires_enforced(gateway):
    c = connect(gateway)
    ch = c.channel()
    # a bound the gateway cannot keep is refused, never ignored
    for args, why in (({'x-max-length-bytes': -1}, '{value_negative,-1}'),
                      ({'x-max-length': 10, 'x-overflow': 'drop-tail'}, 'invalid_overflow')):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_declare('bounded', arguments=args)
        assert e.value.reply_code == 406 and why in e.value.reply_text
        ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.queue_declare('bounded', passive=True)
    ch = c.channel()
    # x-expires: deleted, with its messages, once unused that long
    ch.queue_declare('fleeting', arguments={'x-expires': 600})
    ch.basic_publish('', 'fleeting', b'gone with it')
    # a consumer keeps it, however long it stays
    held = c.channel()
    held.queue_declare('kept-alive', arguments={'x-expires': 300})
    held.basic_consume('kept-alive', lambda *a: None)

    def expired():
        probe = c.channel()
        try:
            probe.queue_declare('fleeting', passive=True)
            probe.close()
            return False
        except pika.exceptions.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            return True
    # probes further apart than its expiry: a passive declare renews it
    wait_until(expired, timeout=10, interval=0.8, what='the unused queue expired')
    # as RabbitMQ's, a passive redeclare keeps the queue, as a consumer does
    ch.queue_declare('renewed', arguments={'x-expires': 600})
    for _ in range(5):
        c.sleep(0.3)
        ch.queue_declare('renewed', passive=True)
    c.sleep(0.6)
    assert c.channel().queue_declare('kept-alive', passive=True).method.queue == 'kept-alive'
    # a new queue of the same name is empty
    ch = c.channel()
    assert ch.queue_declare('fleeting').method.message_count == 0
    c.close()


def test_pika_server_named_and_exclusive_queues(gateway):
    c1 = connect(gateway)
    ch1 = c1.channel()
    name = ch1.queue_declare('', exclusive=True).method.queue
    assert name.startswith('amq.gen-') and len(name) == 30
    ch1.basic_publish('', name, b'mine')
    c2 = connect(gateway)
    ch2 = c2.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch2.basic_get(name)
    assert e.value.reply_code == 405
    assert ch1.basic_get(name, auto_ack=True)[2] == b'mine'
    c1.close()
    ch2 = c2.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch2.queue_declare(name, passive=True)
    assert e.value.reply_code == 404  # deleted with its connection
    c2.close()


def test_pika_mandatory_return_and_confirms(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish('', 'no-queue-here', b'x', mandatory=True)
    ch.queue_declare('conf')
    ch.basic_publish('', 'conf', b'ok', mandatory=True)
    assert ch.basic_get('conf', auto_ack=True)[2] == b'ok'
    c.close()


def test_pika_large_bodies_over_frames(gateway):
    c = connect(gateway, frame_max=8192)
    ch = c.channel()
    ch.queue_declare('big')
    ch.confirm_delivery()
    bodies = [os.urandom(300_000), b'', os.urandom(8192 - 8), os.urandom(8192 - 7)]
    for b in bodies:
        ch.basic_publish('', 'big', b)
    for b in bodies:
        assert ch.basic_get('big', auto_ack=True)[2] == b
    c.close()


def test_pika_ttl_priority_and_dead_letters(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('dlx', 'direct')
    ch.queue_declare('dead')
    ch.queue_bind('dead', 'dlx', 'gone')
    ch.queue_declare('live', arguments={'x-dead-letter-exchange': 'dlx',
                                        'x-dead-letter-routing-key': 'gone'})
    ch.basic_publish('', 'live', b'reject-me', pika.BasicProperties(message_id='dl1'))
    m, _, _ = ch.basic_get('live')
    ch.basic_reject(m.delivery_tag, requeue=False)
    deadline = time.time() + 10
    while time.time() < deadline:
        m, props, b = ch.basic_get('dead', auto_ack=True)
        if m:
            break
        time.sleep(0.05)
    assert b == b'reject-me' and props.message_id == 'dl1'
    assert ch.basic_get('live') == (None, None, None)
    # TTL: the queue's and the message's
    ch.queue_declare('short', arguments={'x-message-ttl': 200})
    ch.basic_publish('', 'short', b'expires')
    ch.basic_publish('', 'live', b'msg-ttl', pika.BasicProperties(expiration='200'))
    time.sleep(1.5)
    assert ch.basic_get('short') == (None, None, None)
    assert ch.basic_get('live') == (None, None, None)
    # priorities within x-max-priority
    ch.queue_declare('prio', arguments={'x-max-priority': 5})
    for p in (1, 9, 3):
        ch.basic_publish('', 'prio', b'p%d' % p, pika.BasicProperties(priority=p))
    assert [ch.basic_get('prio', auto_ack=True)[2] for _ in range(3)] == [b'p9', b'p3', b'p1']
    c.close()


def test_pika_heartbeats_kept(gateway):
    c = connect(gateway, heartbeat=1)
    ch = c.channel()
    ch.queue_declare('hb')
    deadline = time.time() + 4
    while time.time() < deadline:
        c.process_data_events(time_limit=0.5)
    ch.basic_publish('', 'hb', b'alive')
    assert ch.basic_get('hb', auto_ack=True)[2] == b'alive'
    c.close()


def test_records_survive_gateway_and_broker_restart(tmp_path, broker, processes):
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.exchange_declare('keep', 'topic', durable=True)
    ch.queue_declare('kept', durable=True)
    ch.queue_bind('kept', 'keep', 'k.#')
    ch.confirm_delivery()
    ch.basic_publish('keep', 'k.1', b'confirmed', pika.BasicProperties(delivery_mode=2))
    c.close()
    g.kill9()
    broker.kill9()
    b2 = broker.restart()
    processes.append(b2)
    g.broker = b2
    g2 = g.restart(wait=True)
    processes.append(g2)
    c = connect(g2)
    ch = c.channel()
    ch.basic_publish('keep', 'k.2', b'routed-after')
    # the broker hands nothing out of a queue with ready tasks during its
    # recovery window after a restart: poll
    got = drain(ch, 'kept', 2, timeout=30)
    assert [b for _, _, b in got] == [b'confirmed', b'routed-after']
    c.close()


def test_get_after_a_broker_restart_waits_for_its_recovery_window(tmp_path, broker, processes):
    """As docs/gateway.md says ("Right after a broker restart"): for the
    broker's recovery window a queue with messages ready hands none out,
    basic.get answers Get-Empty while queue.declare counts them; then a
    get takes them, in order, within the window and a margin."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.queue_declare('rw', durable=True)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish('', 'rw', b'%d' % i)
    c.close()
    broker.kill9()
    b2 = broker.restart()
    processes.append(b2)
    started = time.monotonic()
    ch = wait_until(lambda: channel_when_up(g), timeout=20, what='the gateway back')
    seen = []
    while time.monotonic() - started < 15:
        count = ch.queue_declare('rw', passive=True).method.message_count
        m, _, body = ch.basic_get('rw', auto_ack=True)
        seen.append((count, body))
        if m:
            break
        time.sleep(0.1)
    assert seen[-1] == (3, b'0'), seen
    # before: empty gets, the messages counted all the same
    assert all(entry == (3, None) for entry in seen[:-1]), seen
    # the broker's default window is its heartbeat (1 s) + 2.5 s
    assert time.monotonic() - started < 3.5 + 5
    assert [ch.basic_get('rw', auto_ack=True)[2] for _ in range(2)] == [b'1', b'2']


def channel_when_up(g):
    """A channel of a new connection to g, or None if it cannot be had yet."""
    try:
        return connect(g).channel()
    except pika.exceptions.AMQPError:
        return None

def test_quorum_queue_type_and_delivery_limit_survive_a_gateway_restart(tmp_path, broker,
                                                                        processes):
    """A quorum queue's type and x-delivery-limit are its stored record:
    after a restart a classic redeclare is still inequivalent, and a
    message is still dropped after its limit."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    args = {'x-queue-type': 'quorum', 'x-delivery-limit': 1}
    ch.queue_declare('qq', durable=True, arguments=args)
    ch.confirm_delivery()
    ch.basic_publish('', 'qq', b'm', pika.BasicProperties(delivery_mode=2))
    c.close()
    g.kill9()
    g2 = g.restart(wait=True)
    processes.append(g2)
    c = connect(g2)
    for other in ({}, {'x-queue-type': 'classic', 'x-delivery-limit': 1},
                  {'x-queue-type': 'quorum', 'x-delivery-limit': 2}):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            c.channel().queue_declare('qq', durable=True, arguments=other)
        assert e.value.reply_code == 406
    ch = c.channel()
    ch.queue_declare('qq', durable=True, arguments=args)
    counts = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(counts) < 3:
        method, props, _ = ch.basic_get('qq')
        if method is None:
            if len(counts) == 2:
                break
            time.sleep(0.05)
            continue
        counts.append(props.headers['x-delivery-count'])
        ch.basic_nack(method.delivery_tag, requeue=True)
    assert counts == [0, 1]
    assert ch.queue_declare('qq', passive=True).method.message_count == 0
    c.close()


def test_single_active_consumer_survives_a_gateway_restart(tmp_path, broker, processes):
    """x-single-active-consumer is the queue's stored record: after a kill
    -9 and a restart of the gateway another value is still inequivalent,
    and of the consumers that connect again only the first gets messages,
    the next one once the first's connection closes (its unacked ones
    redelivered)."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    args = {'x-single-active-consumer': True}
    ch.queue_declare('sac', durable=True, arguments=args)
    ch.confirm_delivery()
    for i in range(4):
        ch.basic_publish('', 'sac', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    c.close()
    g.kill9()
    g2 = g.restart(wait=True)
    processes.append(g2)
    c = connect(g2)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        c.channel().queue_declare('sac', durable=True,
                                  arguments={'x-single-active-consumer': False})
    assert e.value.reply_code == 406
    c.channel().queue_declare('sac', durable=True, arguments=args)
    got = {'a': [], 'b': []}
    conns = {}
    for name in ('a', 'b'):
        conns[name] = connect(g2)
        conns[name].channel().basic_consume(
            'sac', lambda ch, m, p, body, name=name: got[name].append((body, m.redelivered)))

    def pump(names, until, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            for name in names:
                conns[name].process_data_events(time_limit=0.02)

    pump(('a', 'b'), lambda: len(got['a']) == 4, 10)
    pump(('a', 'b'), lambda: False, 0.3)
    assert got == {'a': [(b'%d' % i, False) for i in range(4)], 'b': []}
    assert c.channel().queue_declare('sac', passive=True).method.consumer_count == 2
    conns['a'].close()
    pump(('b',), lambda: len(got['b']) == 4, 10)
    assert got['b'] == [(b'%d' % i, True) for i in range(4)]
    conns['b'].close()
    c.close()


def test_non_durable_queues_deleted_when_the_gateway_starts(tmp_path, broker, processes):
    """As RabbitMQ at a restart: transient queues and exchanges go, with
    their messages and bindings; durable ones stay with theirs."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.exchange_declare('tx-keep', 'fanout', durable=True)
    ch.exchange_declare('tx-passing', 'direct', durable=False)
    ch.queue_declare('transient', durable=False)
    ch.queue_declare('lasting', durable=True)
    ch.queue_bind('transient', 'tx-keep')
    ch.queue_bind('lasting', 'tx-keep')
    # bindings from and to the transient exchange go with it
    ch.queue_bind('lasting', 'tx-passing', 'p')
    ch.exchange_bind('tx-passing', 'tx-keep')
    ch.confirm_delivery()
    ch.basic_publish('tx-keep', '', b'before', pika.BasicProperties(delivery_mode=2))
    c.close()
    g.kill9()
    g2 = g.restart(wait=True)
    processes.append(g2)
    c = connect(g2)
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('transient', passive=True)
    assert e.value.reply_code == 404
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare('tx-passing', passive=True)
    assert e.value.reply_code == 404
    ch = c.channel()
    ch.basic_publish('tx-keep', '', b'after')
    got = drain(ch, 'lasting', 2, timeout=30)
    # one copy each: the exchange-to-exchange binding went with tx-passing
    assert [b for _, _, b in got] == [b'before', b'after']
    # declared again, it starts with no binding left over
    ch.exchange_declare('tx-passing', 'direct', durable=False)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish('tx-passing', 'p', b'nowhere', mandatory=True)
    ch = c.channel()
    # a new queue of that name starts empty, with no binding left over
    assert ch.queue_declare('transient').method.message_count == 0
    ch.basic_publish('tx-keep', '', b'not-to-transient')
    assert ch.basic_get('transient') == (None, None, None)
    assert ch.basic_get('lasting', auto_ack=True)[2] == b'not-to-transient'
    c.close()


@pytest.mark.parametrize('victim', ['broker', 'gateway'])
def test_kill9_mid_stream_loses_no_confirmed_message(tmp_path, broker, processes, victim):
    """A publisher with confirms streams while the broker or the gateway is
    killed -9 and started again: every message confirmed before, during or
    after is there; unacked deliveries held across it come back flagged."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.queue_declare('k9s', durable=True)
    ch.queue_declare('k9u', durable=True)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish('', 'k9u', b'u%d' % i)
    held = drain(ch, 'k9u', 5, ack=False)  # unacked while the victim dies
    assert len(held) == 5
    confirmed = []
    stop = threading.Event()

    def publish():
        i = 0
        while not stop.is_set() and i < 20000:
            try:
                pc = connect(g)
                pch = pc.channel()
                pch.confirm_delivery()
                while not stop.is_set() and i < 20000:
                    body = b'm%d' % i
                    i += 1
                    try:
                        pch.basic_publish('', 'k9s', body, pika.BasicProperties(delivery_mode=2))
                        confirmed.append(body)
                    except pika.exceptions.NackError:
                        pass  # not stored (the broker away): not confirmed
            except (pika.exceptions.AMQPError, OSError):
                time.sleep(0.1)  # the gateway away: connect again
    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(confirmed) >= 200, timeout=30, what='a stream of confirms')
        if victim == 'broker':
            broker.kill9()
            processes.append(broker.restart())
        else:
            g.kill9()
            g = g.restart(wait=True)
            processes.append(g)
        at_restart = len(confirmed)
        wait_until(lambda: len(confirmed) >= at_restart + 200, timeout=60,
                   what='confirms again after the restart')
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    try:
        c.close()
    except pika.exceptions.AMQPError:
        pass  # its gateway was the one killed
    c = connect(g)
    ch = c.channel()
    want = set(confirmed)
    got = set()
    deadline = time.time() + 60
    while not want <= got and time.time() < deadline:
        got.update(b for _, _, b in drain(ch, 'k9s', len(want), timeout=5))
    missing = want - got
    assert not missing, '%d confirmed messages lost, e.g. %r' % (len(missing), sorted(missing)[:5])
    back = drain(ch, 'k9u', 5, timeout=30)
    assert sorted(b for _, _, b in back) == [b'u%d' % i for i in range(5)]
    assert all(m.redelivered for m, _, _ in back)
    c.close()


def test_gateway_kill9_unacked_redelivered(tmp_path, broker, processes):
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.queue_declare('k9', durable=True)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish('', 'k9', b'%d' % i)
    got = drain(ch, 'k9', 5, ack=False)
    assert len(got) == 5
    g.kill9()
    g2 = g.restart(wait=True)
    processes.append(g2)
    c2 = connect(g2)
    ch2 = c2.channel()
    # back once the broker sees the old session gone (its liveness window)
    got = drain(ch2, 'k9', 5, timeout=30)
    assert sorted(b for _, _, b in got) == [b'%d' % i for i in range(5)]
    # the broker counted their first delivery: they come back flagged
    assert all(method.redelivered for method, _, _ in got)
    c2.close()


def test_gateway_kill9s_never_quarantine_a_message_and_keep_its_order(tmp_path, processes):
    """Messages held unacked through three kill -9s of the gateway are
    delivered again each time, at the head of the queue and in their
    order, as from RabbitMQ. The broker counted each gateway it lost as a
    worker lost while running them, so that the third (--max-lost 3)
    quarantined them, dead and out of AMQP's sight; and they came back at
    the tail, in reverse order. The gateway registers as a relay: its
    lost leases go back as if released."""
    b = Broker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '1000'])
    processes.append(b)
    g = Gateway(tmp_path, b, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.queue_declare('k3', durable=True)
    ch.confirm_delivery()
    for i in range(6):
        ch.basic_publish('', 'k3', b'm%d' % i, pika.BasicProperties(delivery_mode=2))
    c.close()
    everything = [b'm%d' % i for i in range(6)]
    for _ in range(3):
        c = connect(g)
        ch = c.channel()
        ch.basic_qos(prefetch_count=3)
        got = drain(ch, 'k3', 3, ack=False)
        assert [body for _, _, body in got] == everything[:3]
        g.kill9()
        g = g.restart(wait=True)
        processes.append(g)
        c = connect(g)
        # back once the broker gives the old session up (its liveness)
        wait_until(lambda: c.channel().queue_declare('k3', passive=True).method
                   .message_count == 6, timeout=15, what='the held messages back')
        c.close()
    c = connect(g)
    ch = c.channel()
    got = drain(ch, 'k3', 6, timeout=15)
    assert [body for _, _, body in got] == everything
    assert [m.redelivered for m, _, _ in got] == [True] * 3 + [False] * 3
    c.close()


def test_the_example_config_is_valid():
    example = os.path.join(ROOT, 'examples', 'arbiter-gateway.conf')
    out = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', example,
                          '--check-config'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for key in ('amqp', 'amqp-frame-max', 'amqp-channel-max', 'amqp-heartbeat',
                'amqp-max-connections', 'amqp-vhosts'):
        assert '\n%s = ' % key in out.stdout
    # a user section takes password and vhosts, nothing else
    bad = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', '/dev/stdin',
                          '--check-config'], input='[user.app]\nrole = admin\n',
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and 'a user has password and vhosts' in bad.stderr



def refused_at_check_and_start(conf, messages, absent):
    """--check-config and a start with the config file conf both exit 2,
    saying each of messages and none of absent."""
    for extra in (['--check-config'], []):
        out = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(conf)] + extra,
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 2, (extra, out.stderr)
        for message in messages:
            assert message in out.stderr, out.stderr
        for message in absent:
            assert message not in out.stderr, out.stderr


def test_a_user_without_a_password_is_refused(tmp_path):
    """A [user.NAME] section without a password, or with an empty one,
    would let that user in with an empty one: --check-config and a start
    both refuse it (exit 2), naming the file and line of its header."""
    conf = tmp_path / 'users.conf'
    conf.write_text('amqp = off\nkestrel = off\nhttp = off\n'
                    '[user.app]\npassword = s3cret\n'
                    '[user.nopass]\nvhosts = /\n'
                    '[user.empty]\npassword =\n')
    refused_at_check_and_start(conf, ['%s:6: [user.nopass]: no password' % conf,
                                      '%s:8: [user.empty]: an empty password' % conf],
                               ['user.app'])
    conf.write_text('[user.app]\npassword = s3cret\nvhosts = /\n')
    out = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(conf),
                          '--check-config'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_a_user_vhost_the_gateway_does_not_serve_is_refused(tmp_path):
    """A user's vhosts name vhosts of amqp-vhosts (or *: all of them), else
    its login would fail (530) for a reason the config hides; `vhosts =`
    (empty) is refused: leave the key out for every vhost."""
    conf = tmp_path / 'vhosts.conf'
    conf.write_text('amqp = off\nkestrel = off\nhttp = off\namqp-vhosts = /,staging\n'
                    '[user.app]\npassword = a\nvhosts = /, prod\n'
                    '[user.empty]\npassword = b\nvhosts =\n'
                    '[user.good]\npassword = c\nvhosts = staging,/\n'
                    '[user.all]\npassword = d\nvhosts = *\n')
    refused_at_check_and_start(
        conf, ["%s:5: [user.app]: vhost 'prod' is not one of amqp-vhosts (/,staging)" % conf,
               '%s:8: [user.empty]: vhosts is empty' % conf], ['user.good', 'user.all'])


def test_bad_input_gets_its_exception(gateway):
    def raw(data, read=4096, timeout=5):
        s = socket.create_connection(('127.0.0.1', gateway.amqp_port), timeout=timeout)
        s.sendall(data)
        out = b''
        try:
            while True:
                chunk = s.recv(read)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        s.close()
        return out
    # a wrong protocol header: ours back, then the socket closes
    assert raw(b'HTTP/1.1') == b'AMQP\x00\x00\x09\x01'

    # a bad frame end after the header: Start, then Close 501
    def method_frame(channel, cls, mid, args=b''):
        payload = struct.pack('>HH', cls, mid) + args
        return struct.pack('>BHI', 1, channel, len(payload)) + payload + b'\xce'
    out = raw(b'AMQP\x00\x00\x09\x01' + method_frame(0, 10, 11)[:-1] + b'\x00')
    assert b'FRAME_ERROR' in out and struct.pack('>H', 501) in out
    # a frame over frame max before tune
    out = raw(b'AMQP\x00\x00\x09\x01' + struct.pack('>BHI', 1, 0, 100000))
    assert struct.pack('>H', 501) in out
    # wrong credentials: 403 ACCESS_REFUSED
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        pika.BlockingConnection(pika.ConnectionParameters(
            '127.0.0.1', gateway.amqp_port, credentials=pika.PlainCredentials('guest', 'wrong')))
    assert 'ACCESS_REFUSED' in str(e.value)
    # a method on a channel not open: 504, and other connections go on
    c = connect(gateway)
    ok = connect(gateway)
    ch = c.channel()
    ch.queue_declare('fine')
    c._impl._send_method(9, pika.spec.Basic.Get(queue='fine'))
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        c.process_data_events(time_limit=2)
        ch.basic_get('fine')
    assert e.value.reply_code == 504
    assert ok.channel().queue_declare('fine', passive=True)
    ok.close()


class RawAmqp:
    """A bare AMQP client for what real clients never send: frames built
    and read with pika's codec, on a plain socket."""

    def __init__(self, port, heartbeat=0, frame_max=131072, channel_max=2047, vhost='/',
                 handshake=True):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buf = b''
        self.closed = False
        if not handshake:
            return
        self.sock.sendall(b'AMQP\x00\x00\x09\x01')
        self.start = self.expect(pika.spec.Connection.Start)
        caps = {'authentication_failure_close': True, 'consumer_cancel_notify': True}
        self.send(0, pika.spec.Connection.StartOk(
            client_properties={'capabilities': caps}, mechanism='PLAIN',
            response=b'\0guest\0guest', locale='en_US'))
        self.tune = self.expect(pika.spec.Connection.Tune)
        self.send(0, pika.spec.Connection.TuneOk(channel_max=channel_max, frame_max=frame_max,
                                                 heartbeat=heartbeat))
        self.send(0, pika.spec.Connection.Open(virtual_host=vhost))

    def send(self, channel, method):
        self.sock.sendall(pika.frame.Method(channel, method).marshal())

    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, timeout=5):
        """The next frame, or None once the socket is closed (or at timeout)."""
        deadline = time.time() + timeout
        while True:
            used, frame = pika.frame.decode_frame(self.buf)
            if frame:
                self.buf = self.buf[used:]
                return frame
            left = deadline - time.time()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                data = b''
            if not data:
                self.closed = True
            self.buf += data

    def expect(self, cls, timeout=5):
        """Skips frames (heartbeats, ...) until a method of class cls."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            frame = self.frame(deadline - time.time())
            if frame is None:
                break
            if isinstance(frame, pika.frame.Method) and isinstance(frame.method, cls):
                return frame.method
        raise AssertionError('no %s (closed=%s)' % (cls.NAME, self.closed))

    def open_channel(self, number):
        self.send(number, pika.spec.Channel.Open())
        self.expect(pika.spec.Channel.OpenOk)

    def close(self):
        self.sock.close()


def connection_error(raw, code, timeout=5):
    """Reads until Connection.Close, checks its code, answers Close-Ok and
    sees the socket closed."""
    close = raw.expect(pika.spec.Connection.Close, timeout)
    assert close.reply_code == code, close
    raw.send(0, pika.spec.Connection.CloseOk())
    while raw.frame(timeout) is not None:
        pass
    assert raw.closed
    return close


def test_close_ok_reaches_a_client_whose_publishes_follow_its_close(gateway):
    """A client's Connection.Close can overtake publishes it queued before
    (amqplib sends channel 0 first). The gateway answers Close-Ok and ends
    its side, dropping what comes after the Close: the client must read
    the Close-Ok and then the end of the stream, not a reset (which the
    kernel sends for a socket closed with input unread, and which can
    arrive before the Close-Ok and lose it)."""
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    publish = pika.frame.Method(1, pika.spec.Basic.Publish(exchange='', routing_key='after-close'))
    header = pika.frame.Header(1, 1000, pika.spec.BasicProperties())
    body = pika.frame.Body(1, b'x' * 1000)
    one = publish.marshal() + header.marshal() + body.marshal()
    close = pika.frame.Method(0, pika.spec.Connection.Close(reply_code=200, reply_text='bye',
                                                            class_id=0, method_id=0))
    # more than the gateway reads at once (64 KiB), less than the sockets
    # hold, so that the send cannot block on a gateway that stopped reading
    raw.send_raw(close.marshal() + one * 600)
    raw.expect(pika.spec.Connection.CloseOk)
    raw.sock.settimeout(5)
    assert raw.sock.recv(65536) == b''  # its end, not ConnectionResetError
    raw.close()
    # nothing after the Close was taken
    c = connect(gateway)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        c.channel().queue_declare('after-close', passive=True)
    assert e.value.reply_code == 404
    c.close()


def test_a_deleted_queues_cancel_comes_with_the_delete_ok(gateway):
    """queue.delete of a queue this connection consumes, in RabbitMQ 3.10's
    order: the consumers of other channels are told at once, Basic.Cancel
    before the Delete-Ok; the deleting channel's own consumer just after
    its Delete-Ok, in the same write (amqplib's callback hello world
    deletes the queue it consumes and closes the connection on the
    Delete-Ok: told the cancel first, it handed its consumer a null
    message and crashed); a consumer on another connection is told too."""
    other = RawAmqp(gateway.amqp_port)
    other.expect(pika.spec.Connection.OpenOk)
    other.open_channel(1)
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.open_channel(2)
    raw.send(1, pika.spec.Queue.Declare(queue='gone-soon'))
    raw.expect(pika.spec.Queue.DeclareOk)
    for conn, channel, tag in ((raw, 1, 'mine'), (raw, 2, 'mine-too'), (other, 1, 'theirs')):
        conn.send(channel, pika.spec.Basic.Consume(queue='gone-soon', consumer_tag=tag))
        conn.expect(pika.spec.Basic.ConsumeOk)
    raw.send(1, pika.spec.Queue.Delete(queue='gone-soon'))
    frames = []
    while len(frames) < 3:
        frames.append(raw.frame())
    order = [(f.channel_number, type(f.method).__name__, getattr(f.method, 'consumer_tag', None))
             for f in frames]
    assert order == [(2, 'Cancel', 'mine-too'), (1, 'DeleteOk', None), (1, 'Cancel', 'mine')], \
        order
    assert other.expect(pika.spec.Basic.Cancel).consumer_tag == 'theirs'
    raw.close()
    other.close()


def test_users_vhosts_plain_and_amqplain(gateway_factory, broker, tmp_path):
    """Users of the config file log in with PLAIN (pika) and AMQPLAIN, to
    the vhosts they may use; vhosts keep their queues apart."""
    conf = tmp_path / 'users.conf'
    conf.write_text('amqp-vhosts = /,staging,prod\n'
                    '[user.app]\npassword = s3cret\nvhosts = /,staging\n'
                    '[user.ops]\npassword = other\n')
    g = gateway_factory(broker, '--config', str(conf))

    def login(user, password, vhost='/'):
        return connect(g, credentials=pika.PlainCredentials(user, password), virtual_host=vhost)
    root = login('app', 's3cret')
    staging = login('app', 's3cret', 'staging')
    for c, body in ((root, b'root'), (staging, b'staging')):
        ch = c.channel()
        ch.queue_declare('same-name')
        ch.confirm_delivery()
        ch.basic_publish('', 'same-name', body)
    assert bodies_of(root.channel(), 'same-name') == [b'root']
    assert bodies_of(staging.channel(), 'same-name') == [b'staging']
    # a vhost the user may not open, or that does not exist: 530
    # (worded as RabbitMQ words them)
    for user, password, vhost, text in (
            ('app', 's3cret', 'prod', "access to vhost 'prod' refused for user 'app'"),
            ('ops', 'other', 'nowhere', 'vhost nowhere not found')):
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
            login(user, password, vhost)
        assert '(530)' in str(e.value) and 'NOT_ALLOWED - ' + text in str(e.value)
    assert login('ops', 'other', 'prod').channel().queue_declare('', exclusive=True)
    # guest is no user once users are configured; a wrong password: 403
    for user, password in (('guest', 'guest'), ('app', 'wrong')):
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
            login(user, password)
        assert 'ACCESS_REFUSED' in str(e.value)
    # AMQPLAIN: a field table without its length (as amqplib and py-amqp send)
    for password, ok in (('s3cret', True), ('wrong', False)):
        raw = RawAmqp(g.amqp_port, handshake=False)
        raw.send_raw(b'AMQP\x00\x00\x09\x01')
        raw.expect(pika.spec.Connection.Start)
        table = []
        pika.data.encode_table(table, {'LOGIN': 'app', 'PASSWORD': password})
        caps = {'capabilities': {'authentication_failure_close': True}}
        raw.send(0, pika.spec.Connection.StartOk(client_properties=caps, mechanism='AMQPLAIN',
                                                 response=b''.join(table)[4:], locale='en_US'))
        if ok:
            raw.expect(pika.spec.Connection.Tune)
        else:
            connection_error(raw, 403)
        raw.close()
    # a mechanism not offered: the socket closes (the spec), nothing more
    raw = RawAmqp(g.amqp_port, handshake=False)
    raw.send_raw(b'AMQP\x00\x00\x09\x01')
    raw.expect(pika.spec.Connection.Start)
    raw.send(0, pika.spec.Connection.StartOk(client_properties={}, mechanism='EXTERNAL',
                                             response=b'', locale='en_US'))
    assert raw.frame(timeout=5) is None and raw.closed
    root.close()
    staging.close()


def test_server_properties_advertise_what_is_implemented(gateway):
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    props = raw.start.server_properties
    caps = props[b'capabilities'] if b'capabilities' in props else props['capabilities']
    caps = {k.decode() if isinstance(k, bytes) else k: v for k, v in caps.items()}
    # exactly these (connection.blocked: publishers held while the link to
    # the broker is full, test_amqp_flow.py)
    assert caps == {'publisher_confirms': True, 'exchange_exchange_bindings': True,
                    'basic.nack': True, 'consumer_cancel_notify': True,
                    'authentication_failure_close': True, 'per_consumer_qos': True,
                    'direct_reply_to': True, 'consumer_priorities': True,
                    'connection.blocked': True}
    assert raw.start.mechanisms.split() == [b'PLAIN', b'AMQPLAIN']
    assert (raw.start.version_major, raw.start.version_minor) == (0, 9)
    assert raw.tune.frame_max >= 4096 and raw.tune.heartbeat > 0
    raw.close()


def update_secret_frame(secret, reason):
    """connection.update-secret (10.70), which pika's codec does not know:
    a longstr and a shortstr."""
    payload = (struct.pack('>HHI', 10, 70, len(secret)) + secret
               + struct.pack('>B', len(reason)) + reason)
    return struct.pack('>BHI', 1, 0, len(payload)) + payload + b'\xce'


def test_update_secret_answered_and_the_connection_goes_on(gateway):
    """connection.update-secret (amqplib's updateSecret, as its own test
    suite sends it) gets Update-Secret-Ok, as from RabbitMQ, and the
    connection goes on; one whose arguments do not decode is 502."""
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.send_raw(update_secret_frame(b'new secret', b'no reason'))
    # Update-Secret-Ok (10.71): no arguments; pika cannot decode it either
    ok = struct.pack('>BHIHH', 1, 0, 4, 10, 71) + b'\xce'
    raw.sock.settimeout(5)
    while len(raw.buf) < len(ok):
        data = raw.sock.recv(65536)
        assert data, 'closed before Update-Secret-Ok'
        raw.buf += data
    assert raw.buf[:len(ok)] == ok, raw.buf
    raw.buf = raw.buf[len(ok):]
    raw.open_channel(1)
    raw.send(1, pika.spec.Queue.Declare(queue='', exclusive=True))
    assert raw.expect(pika.spec.Queue.DeclareOk).queue.startswith('amq.gen-')
    raw.close()

    bad = RawAmqp(gateway.amqp_port)
    bad.expect(pika.spec.Connection.OpenOk)
    frame = update_secret_frame(b'secret', b'why')
    # a reason length past the end of the frame
    frame = frame[:-5] + b'\x09' + frame[-4:]
    bad.send_raw(frame)
    close = connection_error(bad, 502)
    assert 'update-secret' in str(close.reply_text), close

    # on a channel, or before the handshake is done, it is named as such
    on_channel = RawAmqp(gateway.amqp_port)
    on_channel.expect(pika.spec.Connection.OpenOk)
    on_channel.open_channel(1)
    frame = update_secret_frame(b'secret', b'why')
    on_channel.send_raw(frame[:1] + b'\x00\x01' + frame[3:])
    close = connection_error(on_channel, 540)
    assert 'connection.update-secret' in str(close.reply_text), close
    early = RawAmqp(gateway.amqp_port, handshake=False)
    early.send_raw(b'AMQP\x00\x00\x09\x01')
    early.expect(pika.spec.Connection.Start)
    early.send_raw(update_secret_frame(b'secret', b'why'))
    close = connection_error(early, 503)
    assert 'got connection.update-secret' in str(close.reply_text), close


def test_confirms_of_a_burst_acked_with_multiple(gateway):
    """Publishes that the broker answers together (one SUBMIT) are
    confirmed together, by an ack with multiple, as RabbitMQ does (the
    amqplib suite's "multiple confirms"); every one is confirmed once, in
    order."""
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Queue.Declare(queue='burst'))
    raw.expect(pika.spec.Queue.DeclareOk)
    raw.send(1, pika.spec.Confirm.Select())
    raw.expect(pika.spec.Confirm.SelectOk)
    n = 200
    data = b''
    for i in range(n):
        body = b'm%d' % i
        data += pika.frame.Method(1, pika.spec.Basic.Publish(routing_key='burst')).marshal()
        data += pika.frame.Header(1, len(body), pika.spec.BasicProperties()).marshal()
        data += pika.frame.Body(1, body).marshal()
    raw.send_raw(data)  # in one write: the gateway reads them in a turn or few
    acks = []
    confirmed = 0
    while confirmed < n:
        ack = raw.expect(pika.spec.Basic.Ack, timeout=10)
        assert ack.delivery_tag > confirmed and (ack.multiple or ack.delivery_tag == confirmed + 1)
        confirmed = ack.delivery_tag
        acks.append(ack)
    assert confirmed == n
    assert any(a.multiple for a in acks) and len(acks) < n // 2, [
        (a.delivery_tag, a.multiple) for a in acks]
    # a burst into a queue that refuses what does not fit: the ones stored
    # are acked before the refused ones are nacked, each once, in order
    raw.send(1, pika.spec.Queue.Declare(queue='burst-bound', arguments={
        'x-max-length': 3, 'x-overflow': 'reject-publish'}))
    raw.expect(pika.spec.Queue.DeclareOk)
    data = b''
    for i in range(6):
        data += pika.frame.Method(1, pika.spec.Basic.Publish(routing_key='burst-bound')).marshal()
        data += pika.frame.Header(1, 1, pika.spec.BasicProperties()).marshal()
        data += pika.frame.Body(1, b'%d' % i).marshal()
    raw.send_raw(data)
    outcomes = {}
    while confirmed < n + 6:
        c = raw.expect((pika.spec.Basic.Ack, pika.spec.Basic.Nack), timeout=10)
        assert c.delivery_tag > confirmed, (c, outcomes)
        first = confirmed + 1 if c.multiple else c.delivery_tag
        for tag in range(first, c.delivery_tag + 1):
            outcomes[tag - n] = c.NAME
        confirmed = c.delivery_tag
    assert [outcomes.get(i) for i in range(1, 7)] == ['Basic.Ack'] * 3 + ['Basic.Nack'] * 3
    # a nack and a get read in one turn: the get takes the requeued head
    raw.send(1, pika.spec.Basic.Get(queue='burst'))
    got = raw.expect(pika.spec.Basic.GetOk)
    assert not got.redelivered
    raw.send_raw(pika.frame.Method(1, pika.spec.Basic.Nack(got.delivery_tag)).marshal()
                 + pika.frame.Method(1, pika.spec.Basic.Get(queue='burst')).marshal())
    again = raw.expect(pika.spec.Basic.GetOk)
    assert again.redelivered and again.message_count == n - 1
    raw.close()


def test_connection_and_channel_exceptions_by_code(gateway):
    """Each bad input gets its reply code (the spec's, as RabbitMQ sends);
    the other connections go on."""
    witness = connect(gateway)
    wch = witness.channel()
    wch.queue_declare('codes')

    # 530: a channel over the channel_max agreed in tune
    raw = RawAmqp(gateway.amqp_port, channel_max=4)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.send(5, pika.spec.Channel.Open())
    assert 'channel_max' in connection_error(raw, 530).reply_text

    # 530: a vhost that does not exist
    raw = RawAmqp(gateway.amqp_port, vhost='/nowhere')
    connection_error(raw, 530)

    # 505: a content header with no method before it; a heartbeat on a
    # channel; a method in the middle of a message's frames
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send_raw(pika.frame.Header(1, 3, pika.spec.BasicProperties()).marshal())
    connection_error(raw, 505)
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.send_raw(b'\x08\x00\x01\x00\x00\x00\x00\xce')
    connection_error(raw, 505)
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Basic.Publish(routing_key='codes'))
    raw.send(1, pika.spec.Queue.Declare(queue='codes', passive=True))
    connection_error(raw, 505)

    # 501: a body longer than its header said; a frame over frame_max
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Basic.Publish(routing_key='codes'))
    raw.send_raw(pika.frame.Header(1, 3, pika.spec.BasicProperties()).marshal())
    raw.send_raw(pika.frame.Body(1, b'12345').marshal())
    connection_error(raw, 501)
    raw = RawAmqp(gateway.amqp_port, frame_max=4096)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Basic.Publish(routing_key='codes'))
    raw.send_raw(pika.frame.Header(1, 6000, pika.spec.BasicProperties()).marshal())
    raw.send_raw(pika.frame.Body(1, b'x' * 6000).marshal())
    connection_error(raw, 501)

    # 540: a method no one defined
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    payload = struct.pack('>HH', 99, 10)
    raw.send_raw(struct.pack('>BHI', 1, 1, len(payload)) + payload + b'\xce')
    connection_error(raw, 540)

    # 504: a second channel.open on an open channel
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Channel.Open())
    connection_error(raw, 504)

    # 503, as RabbitMQ: methods only a server sends, a Close-Ok not asked
    # for; 504 CHANNEL_ERROR: a channel's method on channel 0
    for method in (pika.spec.Basic.QosOk(), pika.spec.Channel.FlowOk(active=True),
                   pika.spec.Channel.CloseOk(),
                   pika.spec.Queue.DeclareOk(queue='q', message_count=0, consumer_count=0),
                   pika.spec.Exchange.BindOk()):
        raw = RawAmqp(gateway.amqp_port)
        raw.expect(pika.spec.Connection.OpenOk)
        raw.open_channel(1)
        raw.send(1, method)
        close = connection_error(raw, 503)
        assert str(close.reply_text).startswith('COMMAND_INVALID'), close
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.send(0, pika.spec.Basic.Qos(prefetch_count=1))
    close = connection_error(raw, 504)
    assert str(close.reply_text).startswith('CHANNEL_ERROR'), close

    # 406, 404, 403, 405 are channel errors: the connection stays
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Basic.Ack(delivery_tag=77))
    close = raw.expect(pika.spec.Channel.Close)
    assert close.reply_code == 406 and (close.class_id, close.method_id) == (60, 80)
    raw.send(1, pika.spec.Channel.CloseOk())
    raw.open_channel(1)  # the number is free again
    raw.send(1, pika.spec.Basic.Publish(exchange='no-such', routing_key='k'))
    raw.send_raw(pika.frame.Header(1, 0, pika.spec.BasicProperties()).marshal())
    assert raw.expect(pika.spec.Channel.Close).reply_code == 404
    raw.send(1, pika.spec.Channel.CloseOk())
    raw.open_channel(2)
    raw.send(2, pika.spec.Exchange.Declare(exchange='amq.mine', type='direct'))
    assert raw.expect(pika.spec.Channel.Close).reply_code == 403
    raw.close()

    # the witness saw none of it
    wch.basic_publish('', 'codes', b'still here')
    assert wch.basic_get('codes', auto_ack=True)[2] == b'still here'
    witness.close()


def test_the_handshake_once_running_is_refused_and_nothing_is_stranded(gateway):
    """Connection.Start-Ok, Tune-Ok or Open again once the connection runs
    is refused as RabbitMQ refuses it: Close 504 CHANNEL_ERROR naming the
    method. Taken, a second tune-ok orphaned the channels with their
    consumers and unacked deliveries (the next delivery to one, after the
    connection closed, was a use after free), a start-ok logged in again
    and an open switched the vhost. The confirmed messages the refused
    connection held all come back to the queue."""
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    again = (pika.spec.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                          response=b'\0guest\0guest', locale='en_US'),
             pika.spec.Connection.TuneOk(channel_max=0, frame_max=0, heartbeat=0),
             pika.spec.Connection.Open(virtual_host='/'))
    for method in again:
        queue = 'again-' + method.NAME
        ch.queue_declare(queue)
        sent = [b'%s %d' % (method.NAME.encode(), i) for i in range(5)]
        for body in sent:
            ch.basic_publish('', queue, body)  # confirmed: a nack raises
        raw = RawAmqp(gateway.amqp_port)
        raw.expect(pika.spec.Connection.OpenOk)
        raw.open_channel(1)
        raw.send(1, pika.spec.Basic.Qos(prefetch_count=5))
        raw.expect(pika.spec.Basic.QosOk)
        raw.send(1, pika.spec.Basic.Consume(queue=queue, consumer_tag='held'))
        raw.expect(pika.spec.Basic.ConsumeOk)
        for _ in sent:
            raw.expect(pika.spec.Basic.Deliver)
        raw.send(0, method)
        close = connection_error(raw, 504)
        assert close.reply_text == 'CHANNEL_ERROR - unexpected method in connection state running'
        assert (close.class_id, close.method_id) == (method.INDEX >> 16, method.INDEX & 0xffff)
        raw.close()
        wait_until(lambda: ch.queue_declare(queue, passive=True).method.message_count == 5,
                   what='the 5 unacked of %s back in the queue' % method.NAME)
        # no consumer is left behind: a message published now is the queue's
        ch.basic_publish('', queue, b'after')
        assert sorted(bodies_of(ch, queue)) == sorted(sent + [b'after'])
    assert gateway.alive()
    c.close()


def test_the_handshake_out_of_order_is_refused(gateway):
    """In the handshake each state takes only its method: another one is
    Close 503 COMMAND_INVALID naming what was expected and what came, as
    the specification (and RabbitMQ) names methods, not rabbitmq-c
    (AMQP_CONNECTION_TUNE_OK_METHOD)."""
    start_ok = pika.spec.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                            response=b'\0guest\0guest', locale='en_US')
    tune_ok = pika.spec.Connection.TuneOk(channel_max=0, frame_max=0, heartbeat=0)
    open_ = pika.spec.Connection.Open(virtual_host='/')
    names = {start_ok.INDEX: 'connection.start-ok', tune_ok.INDEX: 'connection.tune-ok',
             open_.INDEX: 'connection.open'}
    waits_for = (start_ok, tune_ok, open_)
    # (what is sent before it, the method out of order)
    for before, method in (((), tune_ok), ((), open_), ((start_ok,), start_ok),
                           ((start_ok,), open_), ((start_ok, tune_ok), tune_ok),
                           ((start_ok, tune_ok), start_ok)):
        raw = RawAmqp(gateway.amqp_port, handshake=False)
        raw.send_raw(b'AMQP\x00\x00\x09\x01')
        raw.expect(pika.spec.Connection.Start)
        for m in before:
            raw.send(0, m)
        if before:
            raw.expect(pika.spec.Connection.Tune)
        raw.send(0, method)
        close = connection_error(raw, 503)
        assert close.reply_text == 'COMMAND_INVALID - expected %s, got %s' % (
            names[waits_for[len(before)].INDEX], names[method.INDEX]), close
        assert (close.class_id, close.method_id) == (method.INDEX >> 16, method.INDEX & 0xffff)
        raw.close()
    assert gateway.alive()


def test_a_heartbeat_with_a_payload_is_a_frame_error(gateway):
    """A heartbeat frame has no payload: one with bytes is Close 501
    FRAME_ERROR, as from RabbitMQ; an empty one on channel 0 is taken."""
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.send_raw(b'\x08\x00\x00\x00\x00\x00\x00\xce')
    raw.open_channel(1)
    raw.send_raw(b'\x08\x00\x00\x00\x00\x00\x05hello\xce')
    close = connection_error(raw, 501)
    assert 'FRAME_ERROR - heartbeat frame with a payload of 5 bytes' in close.reply_text, close
    raw.close()
    # before the handshake is done, too
    raw = RawAmqp(gateway.amqp_port, handshake=False)
    raw.send_raw(b'AMQP\x00\x00\x09\x01')
    raw.expect(pika.spec.Connection.Start)
    raw.send_raw(b'\x08\x00\x00\x00\x00\x00\x01x\xce')
    connection_error(raw, 501)
    raw.close()
    assert gateway.alive()


def test_heartbeats_sent_and_a_silent_client_dropped(gateway):
    """With heartbeat 1 the gateway sends heartbeats and drops a client that
    sends nothing for three intervals; with heartbeat 0 (amqp-tools) a
    silent client stays."""
    quiet = RawAmqp(gateway.amqp_port, heartbeat=0)
    quiet.expect(pika.spec.Connection.OpenOk)
    silent = RawAmqp(gateway.amqp_port, heartbeat=1)
    silent.expect(pika.spec.Connection.OpenOk)
    began = time.time()
    beats = 0
    while True:
        frame = silent.frame(timeout=10)
        if frame is None:
            break
        beats += isinstance(frame, pika.frame.Heartbeat)
    waited = time.time() - began
    assert silent.closed and beats >= 2 and 2.5 <= waited <= 6, (beats, waited)
    # the one that negotiated none is still served
    quiet.open_channel(1)
    quiet.send(1, pika.spec.Queue.Declare(queue='', exclusive=True))
    assert quiet.expect(pika.spec.Queue.DeclareOk).queue.startswith('amq.gen-')
    quiet.close()


def test_a_client_hears_from_the_gateway_every_half_heartbeat_interval(gateway):
    """With heartbeat 2, about a second (half the interval, and the
    scheduling's slack) at most passes between two frames the gateway
    writes, the open-ok first among them. @cloudamqp/amqp-client sends no
    heartbeats of its own (it answers the server's, as this client does)
    and closes a connection after one interval without a byte: with a
    heartbeat tick every half interval, the first tick skipped for the
    open-ok's bytes, the first heartbeat came a whole interval after the
    open-ok, and about half of its idle connections closed
    (test_amqp_node_clients.py)."""
    raw = RawAmqp(gateway.amqp_port, heartbeat=2)
    raw.expect(pika.spec.Connection.OpenOk)
    began = last = time.time()
    gaps = []
    while time.time() - began < 4.5:
        frame = raw.frame(timeout=3)
        assert frame is not None, ('no frame for 3 s', gaps)
        now = time.time()
        gaps.append(round(now - last, 2))
        last = now
        if isinstance(frame, pika.frame.Heartbeat):
            raw.send_raw(pika.frame.Heartbeat().marshal())
    assert not raw.closed and max(gaps) <= 1.8, gaps  # 2.0 before; 1.0 as due
    raw.close()


# SIGHUP (the terminal of a gateway started by hand closed) is a stop too:
# it ended the gateway at once, exit status 129
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_shutdown_closes_connections_with_320(tmp_path, broker, processes, sig):
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    raw = RawAmqp(g.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    os.kill(g.pid, sig)
    close = connection_error(raw, 320)
    assert close.reply_text.startswith('CONNECTION_FORCED')
    assert g.proc.wait(30) == 0  # (a second SIGTERM would kill it mid-exit)


def test_slow_consumer_held_by_prefetch(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('slow')
    ch.confirm_delivery()
    body = b'x' * 10000
    for _ in range(200):
        ch.basic_publish('', 'slow', body)
    # a raw client that consumes with prefetch 10 and never reads
    pub = connect(gateway)
    pch = pub.channel()
    pch.basic_qos(prefetch_count=10)
    pch.basic_consume('slow', lambda *a: None)
    time.sleep(1)
    assert ch.queue_declare('slow', passive=True).method.message_count >= 190
    pub.close()
    c.close()


def rss_mib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) // 1024


def test_client_that_never_reads_holds_little(gateway):
    """Consumers whose client never reads (no_ack, and acks without a
    prefetch) get a few dozen messages into the gateway, then nothing more
    until it reads: the rest stays in the broker, the gateway's memory
    does not grow with the queue."""
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    body = os.urandom(100_000)
    for q in ('unread-noack', 'unread-ack'):
        ch.queue_declare(q)
        for _ in range(400):
            ch.basic_publish('', q, body)
    before = rss_mib(gateway.pid)
    raw = RawAmqp(gateway.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    raw.open_channel(1)
    raw.send(1, pika.spec.Basic.Consume(queue='unread-noack', no_ack=True))
    raw.send(1, pika.spec.Basic.Consume(queue='unread-ack'))

    def left(q):
        return ch.queue_declare(q, passive=True).method.message_count
    wait_until(lambda: left('unread-noack') < 400 and left('unread-ack') < 400, timeout=10,
               what='deliveries under way')
    time.sleep(1)  # (what would come, comes now)
    assert left('unread-noack') >= 300 and left('unread-ack') >= 300, (
        left('unread-noack'), left('unread-ack'))
    assert rss_mib(gateway.pid) - before < 40
    # once it reads (and acks), everything comes
    got = 0
    deadline = time.time() + 30
    while got < 800 and time.time() < deadline:
        frame = raw.frame(timeout=1)
        if isinstance(frame, pika.frame.Method) and isinstance(frame.method,
                                                               pika.spec.Basic.Deliver):
            got += 1
            if frame.method.routing_key == 'unread-ack':
                raw.send(1, pika.spec.Basic.Ack(delivery_tag=frame.method.delivery_tag))
    assert got == 800
    raw.close()
    c.close()


# ---------------------------------------------------------------------------
# amqp-tools (rabbitmq-c)


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.skip('%s is not installed (Debian amqp-tools)' % name)
    return path


def test_amqp_tools(gateway):
    url = 'amqp://guest:guest@127.0.0.1:%d' % gateway.amqp_port
    r = subprocess.run([tool('amqp-declare-queue'), '--url', url, '-q', 'tools', '-d'],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.strip() == 'tools'
    for i in range(3):
        subprocess.run([tool('amqp-publish'), '--url', url, '-r', 'tools', '-p',
                        '-C', 'text/plain', '-b', 'msg-%d' % i], check=True, timeout=20)
    r = subprocess.run([tool('amqp-get'), '--url', url, '-q', 'tools'], capture_output=True,
                       timeout=20)
    assert r.returncode == 0 and r.stdout == b'msg-0'
    r = subprocess.run([tool('amqp-consume'), '--url', url, '-q', 'tools', '-c', '2', 'cat'],
                       capture_output=True, timeout=20)
    assert r.returncode == 0 and r.stdout == b'msg-1msg-2'
    r = subprocess.run([tool('amqp-get'), '--url', url, '-q', 'tools'], capture_output=True,
                       timeout=20)
    assert r.returncode == 2  # empty
    # a consumer on amq.fanout with a server-named auto-delete queue (-r:
    # amqp-consume 0.11 crashes binding without a routing key, whatever the server)
    proc = subprocess.Popen([tool('amqp-consume'), '--url', url, '-e', 'amq.fanout', '-r', 'x',
                             '-c', '1', 'cat'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def published():
            subprocess.run([tool('amqp-publish'), '--url', url, '-e', 'amq.fanout', '-r', 'x',
                            '-b', 'fan'], check=True, timeout=20)
            try:
                return proc.wait(0.3) is not None
            except subprocess.TimeoutExpired:
                return False
        wait_until(published, timeout=20, what='amqp-consume got the fanout message')
        assert proc.stdout.read() == b'fan'
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# amqplib (Node)

AMQPLIB = npm_path('node_modules', 'amqplib')


def test_amqplib(gateway, tmp_path):
    node = node_or_skip(AMQPLIB)
    script = tmp_path / 'amqplib.js'
    script.write_text('''
const amqp = require(%r);
(async () => {
  const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:%d/');
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange('node-x', 'topic');
  const q = await ch.assertQueue('', {exclusive: true});
  await ch.bindQueue(q.queue, 'node-x', 'n.#');
  for (let i = 0; i < 50; i++)
    ch.publish('node-x', 'n.' + i, Buffer.from('m' + i), {persistent: true, headers: {i}});
  await ch.waitForConfirms();
  await ch.prefetch(7);
  let n = 0;
  const seen = new Set();
  let redelivered = 0;
  await new Promise((resolve) => {
    ch.consume(q.queue, (msg) => {
      if (msg.properties.headers.i !== Number(msg.content.toString().slice(1)))
        throw new Error('headers lost ' + msg.content);
      n++;
      if (msg.fields.redelivered) redelivered++;
      if (n === 25) ch.nack(msg, false, true);
      else { ch.ack(msg); seen.add(msg.content.toString()); }
      if (seen.size === 50) resolve();
    });
  });
  if (redelivered !== 1) throw new Error('redelivered ' + redelivered);
  const got = await ch.get(q.queue);
  console.log('done', n, got === false);
  await conn.close();
})().catch((e) => { console.error(e); process.exit(1); });
''' % (AMQPLIB, gateway.amqp_port))
    r = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == 'done 51 true'




def test_amqp_on_ipv6_loopback_and_two_addresses(gateway_factory, broker):
    # --amqp takes "[::1]:PORT" as --kestrel and --http do, and a list: the
    # same port on both loopbacks; guest may log in from ::1 as from
    # 127.0.0.1 (a loopback peer)
    port = free_port()
    g = gateway_factory(broker, '--amqp', '127.0.0.1:%d, [::1]:%d' % (port, port))
    bodies = []
    for host in ('::1', '127.0.0.1'):
        params = pika.ConnectionParameters(host, port, connection_attempts=3, retry_delay=0.2)
        c = pika.BlockingConnection(params)
        ch = c.channel()
        ch.queue_declare('v6')
        ch.confirm_delivery()
        ch.basic_publish('', 'v6', b'over ' + host.encode())
        c.close()
    c = pika.BlockingConnection(pika.ConnectionParameters('::1', port))
    ch = c.channel()
    for _ in range(2):
        m, _, body = ch.basic_get('v6', auto_ack=True)
        bodies.append(body)
    assert bodies == [b'over ::1', b'over 127.0.0.1']
    c.close()
    assert g.alive()


def test_bad_amqp_addresses_stop_the_gateway_with_a_reason(broker):
    for value, reason in (('127.0.0.1:x', "bad address '127.0.0.1:x'"),
                          ('nowhere', "bad address 'nowhere'"),
                          (','.join('127.0.0.1:%d' % free_port() for _ in range(5)),
                           'more than 4 addresses')):
        proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                               '--broker', broker.endpoint, '--http', 'off', '--kestrel', 'off',
                               '--amqp', value], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30, text=True)
        assert proc.returncode != 0, (value, proc.stderr)
        assert reason in proc.stderr, (value, proc.stderr)


def test_names_with_a_nul_byte_are_refused(gateway):
    """A shortstr may hold a NUL byte; the gateway keeps names as C
    strings, which would cut them there (a queue.declare answered with
    another name, on which pika waits for ever; a routing key taken for
    another). So a name or key with one is refused, 406, the channel
    closed, and nothing made."""
    c = connect(gateway)
    attempts = [lambda ch: ch.queue_declare('nq\x00tail'),
                lambda ch: ch.exchange_declare('nx\x00tail', 'direct'),
                lambda ch: ch.queue_bind('nb', 'amq.direct', 'key\x00one'),
                lambda ch: (ch.basic_publish('amq.direct', 'key\x00two', b'm'),
                            ch.queue_declare('nb', passive=True))]
    c.channel().queue_declare('nb')
    for attempt in attempts:
        ch = c.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            attempt(ch)
        assert e.value.reply_code == 406 and 'NUL byte' in e.value.reply_text, e.value
    # nothing was made under the name cut at the NUL
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        c.channel().queue_declare('nq', passive=True)
    assert e.value.reply_code == 404
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        c.channel().exchange_declare('nx', passive=True)
    assert e.value.reply_code == 404
    c.close()
