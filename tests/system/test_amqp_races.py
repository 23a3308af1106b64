"""Where a client and the gateway cross each other, as pika's own
acceptance suite does against RabbitMQ: a channel close that meets the
server's, and the settling of a delivery the server has taken back."""

import time

import pytest

pika = pytest.importorskip('pika')

from test_amqp import connect  # noqa: E402 (after the skip: it imports pika too)


@pytest.fixture
def gateway(gateway_factory, broker):
    return gateway_factory(broker)


def test_a_close_that_crosses_the_servers_leaves_the_connection_up(gateway):
    """The server closes a channel (404) while the client closes it too:
    each answers the other, and the connection's other channels go on."""
    conn = connect(gateway)
    other = conn.channel()
    for _ in range(3):
        ch = conn.channel()
        ch.basic_publish('no-such-exchange', 'rk', b'x')  # Channel.Close 404 on its way
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.close()  # the client's Close crosses the server's
        assert e.value.reply_code == 404
    q = other.queue_declare('', exclusive=True).method.queue
    other.basic_publish('', q, b'still here')
    assert other.basic_get(q, auto_ack=True)[2] == b'still here'
    assert conn.is_open
    conn.close()


@pytest.mark.parametrize('settle', ['ack', 'reject', 'nack'])
def test_a_delivery_whose_queue_went_may_still_be_settled(gateway, settle):
    """Its tag stays valid: settling it does nothing and closes nothing,
    as with RabbitMQ (pika rejects the deliveries of a consumer the server
    cancelled)."""
    conn = connect(gateway)
    ch = conn.channel()
    q = 'gone-' + settle
    ch.queue_declare(q)
    ch.basic_publish('', q, b'x')
    # under a channel prefetch: the delivery counts against it until the
    # queue goes, and not again when it is settled
    ch.basic_qos(prefetch_count=1, global_qos=True)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    deadline = time.time() + 10
    while not got and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert got
    ch.queue_delete(q)
    conn.process_data_events(time_limit=0.3)
    tag = got[0].delivery_tag
    {'ack': lambda: ch.basic_ack(tag), 'reject': lambda: ch.basic_reject(tag, requeue=True),
     'nack': lambda: ch.basic_nack(tag, requeue=False)}[settle]()
    conn.process_data_events(time_limit=0.3)
    assert ch.is_open
    # the channel goes on, and an unknown tag is still refused
    q2 = ch.queue_declare('', exclusive=True).method.queue
    ch.basic_publish('', q2, b'y')
    assert ch.basic_get(q2, auto_ack=True)[2] == b'y'
    ch.basic_publish('', q2, b'z1')
    ch.basic_publish('', q2, b'z2')
    ch.basic_consume(q2, lambda c, m, p, b: got.append(m))
    conn.process_data_events(time_limit=0.3)
    assert len(got) == 2  # one more, the prefetch's: not two
    ch.basic_ack(got[1].delivery_tag)
    deadline = time.time() + 5
    while len(got) < 3 and time.time() < deadline:
        conn.process_data_events(time_limit=0.05)
    assert len(got) == 3
    ch.basic_ack(tag)  # settled already: now unknown
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(q2, passive=True)
    assert e.value.reply_code == 406
    conn.close()


def test_trims_meet_gets_counts_purges_and_deletes_of_other_connections(gateway):
    """Publishers keep a bounded queue over its bound (a trim under way
    most of the time) while other connections get, count, purge, delete
    and declare it again: every method is answered (no connection is left
    holding its input, no trim's waiter is lost when its queue goes) and
    the gateway serves on afterwards, exact again once the load stops. A
    count may find the queue over its bound here: it waits for the trim
    of what was published before it, and the publishes of the other
    connections meanwhile are counted before their own trim (RabbitMQ's
    drop-head never lets them in; docs/gateway.md). Bounded: 4 s of load."""
    import threading
    args = {'x-max-length': 3}
    setup = connect(gateway)
    setup.channel().queue_declare('churn', arguments=args)
    setup.close()
    stop = time.time() + 4
    errors, counts = [], []

    def publisher():
        conn = connect(gateway)
        ch = conn.channel()
        n = 0
        while time.time() < stop:
            for _ in range(20):
                ch.basic_publish('', 'churn', b'm%d' % n)
                n += 1
            conn.process_data_events(time_limit=0.01)
        conn.close()

    def other(kind):
        conn = connect(gateway)
        ch = conn.channel()
        while time.time() < stop:
            try:
                if kind == 'get':
                    ch.basic_get('churn', auto_ack=True)
                elif kind == 'count':
                    counts.append(ch.queue_declare('churn', passive=True).method.message_count)
                elif kind == 'purge':
                    ch.queue_purge('churn')
                else:
                    ch.queue_delete('churn')
                    ch.queue_declare('churn', arguments=args)
            except pika.exceptions.ChannelClosedByBroker as e:
                if e.reply_code != 404:  # the queue deleted by another: fine
                    errors.append((kind, e.reply_code, e.reply_text))
                ch = conn.channel()
                try:
                    ch.queue_declare('churn', arguments=args)
                except pika.exceptions.ChannelClosedByBroker as e2:
                    errors.append((kind, e2.reply_code, e2.reply_text))
                    ch = conn.channel()
            except Exception as e:  # a hang shows up as pika's own timeout
                errors.append((kind, repr(e)))
                return
        conn.close()

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    threads += [threading.Thread(target=other, args=(k,))
                for k in ('get', 'count', 'purge', 'delete')]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), 'a connection hangs'
    assert errors == []
    assert counts
    conn = connect(gateway)
    ch = conn.channel()
    ch.queue_declare('churn', arguments=args)
    ch.queue_purge('churn')
    for i in range(5):
        ch.basic_publish('', 'churn', b'%d' % i)
    assert ch.basic_get('churn', auto_ack=True)[2] == b'2'
    conn.close()
