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
    ch.basic_ack(tag)  # settled already: now unknown
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(q2, passive=True)
    assert e.value.reply_code == 406
    conn.close()
