"""x-max-length-bytes through the gateway's AMQP server, checked with pika
as RabbitMQ keeps it: the bound is on the body bytes of a queue's ready
messages (unacked ones do not count); drop-head drops (or dead-letters,
reason maxlen) the oldest until the queue is within every bound;
reject-publish refuses a publish that would take it over (nack under
confirms). The bytes are the broker's count (STATS ready_bytes), hot and
cold, across a restart."""

import pytest

from conftest import Broker, Gateway, wait_until
from helpers import count_while
from test_amqp import bodies_of, connect, gateway  # noqa: F401 (the fixture)
from test_amqp_deadletter import count, get_one

pika = pytest.importorskip('pika')


def test_drop_head_by_bytes(gateway):
    """The oldest ready messages go until the bytes fit, dead-lettered
    with x-death reason maxlen when the queue has a dead-letter exchange;
    a message bigger than the bound goes too."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('mb-dlx', 'fanout')
    ch.queue_declare('mb-dead')
    ch.queue_bind('mb-dead', 'mb-dlx')
    ch.queue_declare('mb', arguments={'x-max-length-bytes': 10})
    ch.queue_declare('mb-dl', arguments={'x-max-length-bytes': 10,
                                         'x-dead-letter-exchange': 'mb-dlx'})
    ch.confirm_delivery()
    for body in (b'aaaa', b'bbbb', b'cc'):  # 10 bytes: all fit
        ch.basic_publish('', 'mb', body)
        ch.basic_publish('', 'mb-dl', body)
    c.process_data_events(time_limit=0.3)
    assert (count(ch, 'mb'), count(ch, 'mb-dl'), count(ch, 'mb-dead')) == (3, 3, 0)
    # 13 bytes: the head goes; then 19: three more go
    for body in (b'ddd', b'eeeeeeeeee'):
        ch.basic_publish('', 'mb', body)
        ch.basic_publish('', 'mb-dl', body)
    wait_until(lambda: count(ch, 'mb-dead') == 4, timeout=10, what='four dead-lettered')
    wait_until(lambda: count(ch, 'mb') == 1, timeout=10, what='mb trimmed')
    assert count(ch, 'mb-dl') == 1
    assert bodies_of(ch, 'mb') == [b'eeeeeeeeee']
    assert bodies_of(ch, 'mb-dl') == [b'eeeeeeeeee']
    dead = []
    for _ in range(4):
        m, props, body = get_one(ch, 'mb-dead')
        death, = props.headers['x-death']
        assert (death['reason'], death['queue'], death['count']) == ('maxlen', 'mb-dl', 1)
        assert props.headers['x-first-death-reason'] == 'maxlen'
        dead.append(body)
    assert dead == [b'aaaa', b'bbbb', b'cc', b'ddd']
    # one message over the bound by itself: it goes as well
    ch.basic_publish('', 'mb', b'small')
    ch.basic_publish('', 'mb', b'x' * 11)
    wait_until(lambda: count(ch, 'mb') == 0, timeout=10, what='mb emptied')
    # unacked messages do not count: one taken, the next fits beside it
    ch.basic_publish('', 'mb', b'1234567')
    m, _, body = ch.basic_get('mb')
    assert body == b'1234567'
    ch.basic_publish('', 'mb', b'7654321')
    ch.basic_publish('', 'mb', b'abc')
    c.process_data_events(time_limit=0.3)
    assert count(ch, 'mb') == 2
    ch.basic_ack(m.delivery_tag)
    assert bodies_of(ch, 'mb') == [b'7654321', b'abc']
    c.close()


def test_reject_publish_by_bytes(gateway):
    """reject-publish: a publish that would take the queue over its bytes
    is nacked, a smaller one after it may still fit; -dlx dead-letters
    the refused one."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('rb', arguments={'x-max-length-bytes': 10, 'x-overflow': 'reject-publish'})
    ch.confirm_delivery()
    ch.basic_publish('', 'rb', b'123456')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rb', b'12345')  # 11 bytes
    ch.basic_publish('', 'rb', b'1234')  # exactly 10
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rb', b'1')
    ch.basic_publish('', 'rb', b'')  # no bytes: fits
    # taken, unacked: its bytes do not count
    m, _, body = ch.basic_get('rb')
    assert body == b'123456'
    ch.basic_publish('', 'rb', b'abcdef')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rb', b'x')
    ch.basic_ack(m.delivery_tag)
    assert bodies_of(ch, 'rb') == [b'1234', b'', b'abcdef']
    # many in one go, without confirms: those that fit, in order
    c2 = connect(gateway)
    burst = c2.channel()
    for body in (b'aaaa', b'bbbb', b'ccc', b'dd', b'e'):
        burst.basic_publish('', 'rb', body)
    c2.process_data_events(time_limit=0.5)
    c2.close()
    wait_until(lambda: count(ch, 'rb') == 3, timeout=5, what='the burst admitted')
    assert bodies_of(ch, 'rb') == [b'aaaa', b'bbbb', b'dd']
    # reject-publish-dlx: the refused message is dead-lettered, reason maxlen
    ch.exchange_declare('rbd-dlx', 'fanout')
    ch.queue_declare('rbd-dead')
    ch.queue_bind('rbd-dead', 'rbd-dlx')
    ch.queue_declare('rbd', arguments={'x-max-length-bytes': 5,
                                       'x-overflow': 'reject-publish-dlx',
                                       'x-dead-letter-exchange': 'rbd-dlx'})
    ch.basic_publish('', 'rbd', b'fits!')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rbd', b'over', pika.BasicProperties(message_id='m2'))
    m, props, body = get_one(ch, 'rbd-dead')
    assert body == b'over' and props.message_id == 'm2'
    death, = props.headers['x-death']
    assert (death['reason'], death['queue']) == ('maxlen', 'rbd')
    assert bodies_of(ch, 'rbd') == [b'fits!']
    # a redeclare must name the same bound
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('rbd', arguments={'x-max-length-bytes': 6,
                                           'x-overflow': 'reject-publish-dlx',
                                           'x-dead-letter-exchange': 'rbd-dlx'})
    assert e.value.reply_code == 406 and 'inequivalent' in e.value.reply_text
    c.close()


def test_both_bounds_apply(gateway):
    """x-max-length and x-max-length-bytes together: drop-head trims until
    both hold; reject-publish refuses what breaks either."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('both', arguments={'x-max-length': 3, 'x-max-length-bytes': 10})
    ch.confirm_delivery()
    for body in (b'a', b'b', b'c', b'd', b'e'):
        ch.basic_publish('', 'both', body)
    wait_until(lambda: count(ch, 'both') == 3, timeout=10, what='trimmed to 3 messages')
    # 3 + 9 bytes: the count holds at 4 - 1, the bytes need one more to go
    ch.basic_publish('', 'both', b'123456789')
    wait_until(lambda: count(ch, 'both') == 2, timeout=10, what='trimmed to 10 bytes')
    assert bodies_of(ch, 'both') == [b'e', b'123456789']
    ch.queue_declare('both-rp', arguments={'x-max-length': 2, 'x-max-length-bytes': 10,
                                           'x-overflow': 'reject-publish'})
    ch.basic_publish('', 'both-rp', b'12345')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'both-rp', b'123456')  # the bytes
    ch.basic_publish('', 'both-rp', b'1')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'both-rp', b'2')  # the count
    assert bodies_of(ch, 'both-rp') == [b'12345', b'1']
    c.close()


def test_bytes_survive_a_broker_restart_with_a_cold_backlog(tmp_path, processes):
    """The broker counts the bytes of its cold tasks (--hot-tasks 4: most
    of the queue is rows in the journal) and counts them again at start."""
    b = Broker(tmp_path, extra=['--hot-tasks', '4', '--recovery-ms', '0'])
    processes.append(b)
    g = Gateway(tmp_path, b, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.queue_declare('cold-rp', durable=True,
                     arguments={'x-max-length-bytes': 1000, 'x-overflow': 'reject-publish'})
    ch.queue_declare('cold-dh', durable=True, arguments={'x-max-length-bytes': 300})
    ch.confirm_delivery()
    persistent = pika.BasicProperties(delivery_mode=2)
    for i in range(30):
        ch.basic_publish('', 'cold-rp', b'%030d' % i, persistent)
    for i in range(10):
        ch.basic_publish('', 'cold-dh', b'%030d' % i, persistent)
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'cold-rp', b'x' * 101, persistent)
    c.close()
    assert g.stop() == 0
    b.kill9()
    b = b.restart()
    processes.append(b)
    g = Gateway(tmp_path, b, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.confirm_delivery()
    assert count(ch, 'cold-rp') == 30
    # 900 bytes ready, most of them cold: 101 more do not fit, 100 do
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'cold-rp', b'x' * 101, persistent)
    ch.basic_publish('', 'cold-rp', b'y' * 100, persistent)
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'cold-rp', b'z', persistent)
    # 300 bytes: one more message drops exactly the head
    ch.basic_publish('', 'cold-dh', b'%030d' % 10, persistent)
    wait_until(lambda: count(ch, 'cold-dh') == 10, timeout=10, what='cold-dh trimmed')
    assert bodies_of(ch, 'cold-dh') == [b'%030d' % i for i in range(1, 11)]
    got = bodies_of(ch, 'cold-rp')
    assert got == [b'%030d' % i for i in range(30)] + [b'y' * 100]
    c.close()


def test_drop_head_is_exact_under_concurrent_publishers(gateway):
    """Without a dead-letter exchange the broker keeps the bound itself, in
    the turn of each submit: two connections flooding a queue of 3 while a
    third counts and peeks never find more than 3, and a Kestrel `set` into
    the same broker queue is bounded too."""
    from pymemcache.client.base import Client as Kestrel
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('flood', arguments={'x-max-length': 3})

    def publisher(tag):
        pc = connect(gateway)
        pch = pc.channel()
        for i in range(400):
            pch.basic_publish('', 'flood', b'%s%d' % (tag, i))
        pc.close()

    cc = connect(gateway)
    cch = cc.channel()
    seen = count_while([lambda: publisher(b'a'), lambda: publisher(b'b')],
                       lambda: cch.queue_declare('flood', passive=True).method.message_count)
    cc.close()
    assert seen and max(seen) <= 3, max(seen)
    assert count(ch, 'flood') == 3
    stats = requests_json(gateway, '/api/v1/queues/flood')
    assert stats['settings'] == {'max_ready': 3}
    k = Kestrel(('127.0.0.1', gateway.kestrel_port), timeout=10)
    for i in range(5):
        assert k.set('flood', b'k%d' % i)
    assert count(ch, 'flood') == 3
    assert bodies_of(ch, 'flood') == [b'k2', b'k3', b'k4']
    k.close()
    c.close()


def requests_json(gateway, path):
    import requests
    reply = requests.get(gateway.url + path, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_declare_ok_counts_consumers_after_the_trim(gateway):
    """Declare-Ok's consumer_count is the queue's consumers when it is
    answered, on a queue the gateway trims (a dead-letter exchange) too."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('cc-dlx', 'fanout')
    for name, args in (('cc-plain', {}), ('cc-bounded', {'x-max-length': 1}),
                       ('cc-dl', {'x-max-length': 1, 'x-dead-letter-exchange': 'cc-dlx'})):
        ch.queue_declare(name, arguments=args)
        other = c.channel()
        tag = other.basic_consume(name, lambda *a: None)
        for i in range(3):
            ch.basic_publish('', name, b'%d' % i)
        ok = ch.queue_declare(name, passive=True).method
        assert ok.consumer_count == 1, name
        other.basic_cancel(tag)
        assert ch.queue_declare(name, passive=True).method.consumer_count == 0, name
    c.close()


def test_reject_publish_bounds_every_protocol(gateway):
    """reject-publish is the broker's to keep (overflow reject): a Kestrel
    set to the full queue answers NOT_STORED, and a publish after Kestrel
    filled it is nacked; the bound holds whoever submits."""
    import socket
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('rp-mixed', arguments={'x-max-length': 2, 'x-overflow': 'reject-publish'})
    ch.confirm_delivery()
    k = socket.create_connection(('127.0.0.1', gateway.kestrel_port), timeout=10)
    answers = []
    for v in (b'k1', b'k2', b'k3'):
        k.sendall(b'set rp-mixed 0 0 2\r\n%s\r\n' % v)
        answers.append(k.recv(100))
    k.close()
    assert answers == [b'STORED\r\n', b'STORED\r\n', b'NOT_STORED\r\n']
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rp-mixed', b'a')
    assert count(ch, 'rp-mixed') == 2
    stats = requests_json(gateway, '/api/v1/queues/rp-mixed')
    assert stats['settings'] == {'max_ready': 2, 'overflow': 'reject'}
    c.close()
