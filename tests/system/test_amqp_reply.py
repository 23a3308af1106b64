"""Direct reply-to (amq.rabbitmq.reply-to) through the gateway, with
Debian's python3-pika: the RPC pattern without a reply queue, and what
RabbitMQ refuses or drops."""

import time

import pytest

from helpers import journal_value

pika = pytest.importorskip('pika')

from test_amqp import connect  # noqa: E402 (after the skip: it imports pika too)

PSEUDO = 'amq.rabbitmq.reply-to'


@pytest.fixture
def gateway(gateway_factory, broker):
    return gateway_factory(broker)


def replies(channel, got):
    """Consumes the pseudo-queue on channel into got; returns the consumer tag."""
    return channel.basic_consume(PSEUDO, lambda ch, m, p, b: got.append((m, p, b)),
                                 auto_ack=True)


def pump(conn, got, n, timeout=10):
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    return got


def test_rpc_round_trip_keeps_properties_and_never_stores_the_reply(gateway, broker):
    client, server = connect(gateway), connect(gateway)
    cch, sch = client.channel(), server.channel()
    sch.queue_declare('rpc')
    got = []
    tag = replies(cch, got)
    props = pika.BasicProperties(reply_to=PSEUDO, correlation_id='c-1', content_type='text/plain',
                                 headers={'n': 1}, priority=2)
    cch.basic_publish('', 'rpc', b'ping', props)
    method, request, body = None, None, None
    deadline = time.time() + 10
    while method is None and time.time() < deadline:
        method, request, body = sch.basic_get('rpc', auto_ack=True)
    assert body == b'ping'
    # the reply name is the consumer's own, the other properties as sent
    assert request.reply_to.startswith(PSEUDO + '.') and len(request.reply_to) > len(PSEUDO) + 8
    assert (request.correlation_id, request.content_type, request.headers, request.priority) == \
        ('c-1', 'text/plain', {'n': 1}, 2)
    # the server may check that the client is still there, passively or
    # not (RabbitMQ answers both, with the reply consumer counted)
    for passive in (True, False):
        ok = sch.queue_declare(request.reply_to, passive=passive).method
        assert (ok.queue, ok.consumer_count) == (request.reply_to, 1)
    ok = sch.queue_declare(PSEUDO).method
    assert (ok.queue, ok.consumer_count) == (PSEUDO, 1)
    reply = pika.BasicProperties(correlation_id=request.correlation_id, headers={'ok': 'yes'})
    sch.basic_publish('', request.reply_to, b'pong', reply)
    pump(client, got, 1)
    assert len(got) == 1
    m, p, b = got[0]
    assert b == b'pong' and m.consumer_tag == tag and m.routing_key == request.reply_to
    assert m.exchange == '' and not m.redelivered
    assert p.correlation_id == 'c-1' and p.headers == {'ok': 'yes'}
    # the request was a broker task, the reply never was one
    count = 'SELECT count(*) FROM tasks WHERE payload = ?'
    assert journal_value(broker, count, b'ping') == 1
    assert journal_value(broker, count, b'pong') == 0
    client.close()
    server.close()


def test_many_replies_to_several_clients_each_get_their_own(gateway):
    server = connect(gateway)
    sch = server.channel()
    sch.queue_declare('rpc2')
    clients = []
    for i in range(3):
        conn = connect(gateway)
        ch = conn.channel()
        got = []
        replies(ch, got)
        for j in range(5):
            ch.basic_publish('', 'rpc2', b'%d.%d' % (i, j),
                             pika.BasicProperties(reply_to=PSEUDO, correlation_id='%d' % i))
        clients.append((conn, got))
    answered = 0
    deadline = time.time() + 15
    while answered < 15 and time.time() < deadline:
        method, props, body = sch.basic_get('rpc2', auto_ack=True)
        if method is None:
            continue
        sch.basic_publish('', props.reply_to, b're:' + body,
                          pika.BasicProperties(correlation_id=props.correlation_id))
        answered += 1
    assert answered == 15
    for i, (conn, got) in enumerate(clients):
        pump(conn, got, 5)
        assert sorted(b for _, _, b in got) == [b're:%d.%d' % (i, j) for j in range(5)]
        assert {p.correlation_id for _, p, _ in got} == {'%d' % i}
        conn.close()
    server.close()


def test_reply_consumer_must_be_no_ack_and_one_per_channel(gateway):
    conn = connect(gateway)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_consume(PSEUDO, lambda *a: None, auto_ack=False)
    assert e.value.reply_code == 406
    ch = conn.channel()
    replies(ch, [])
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        replies(ch, [])
    assert e.value.reply_code == 406
    conn.close()


def test_publishing_with_the_pseudo_reply_to_needs_a_reply_consumer(gateway):
    conn = connect(gateway)
    ch = conn.channel()
    ch.queue_declare('rpc3')
    ch.basic_publish('', 'rpc3', b'x', pika.BasicProperties(reply_to=PSEUDO))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('rpc3', passive=True)
    assert e.value.reply_code == 406
    ch = conn.channel()
    assert ch.queue_declare('rpc3', passive=True).method.message_count == 0
    # the pseudo-queue itself answers a passive declare
    assert ch.queue_declare(PSEUDO, passive=True).method.queue == PSEUDO
    conn.close()


def test_a_reply_to_a_gone_consumer_is_dropped_or_returned(gateway):
    client, server = connect(gateway), connect(gateway)
    cch = client.channel()
    replies(cch, [])
    sch = server.channel()
    sch.queue_declare('rpc4')
    cch.basic_publish('', 'rpc4', b'q', pika.BasicProperties(reply_to=PSEUDO))
    deadline = time.time() + 10
    method = None
    while method is None and time.time() < deadline:
        method, props, _ = sch.basic_get('rpc4', auto_ack=True)
    name = props.reply_to
    cch.close()  # the reply consumer goes with its channel
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        sch.queue_declare(name, passive=True)
    assert e.value.reply_code == 404
    sch = server.channel()
    returned = []
    sch.add_on_return_callback(lambda ch, m, p, b: returned.append((m.reply_code, b)))
    sch.confirm_delivery()
    # confirmed (the gateway took it), then returned: no one to route it to
    with pytest.raises(pika.exceptions.UnroutableError):
        sch.basic_publish('', name, b'late', mandatory=True)
    # without mandatory it is dropped, and confirmed
    sch.basic_publish('', name, b'dropped')
    assert sch.queue_declare('rpc4', passive=True).method.message_count == 0
    client.close()
    server.close()


def test_cancel_ends_the_reply_consumer(gateway):
    conn = connect(gateway)
    ch = conn.channel()
    tag = replies(ch, [])
    ch.basic_cancel(tag)
    ch.queue_declare('rpc5')
    ch.basic_publish('', 'rpc5', b'x', pika.BasicProperties(reply_to=PSEUDO))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('rpc5', passive=True)
    assert e.value.reply_code == 406
    conn.close()
