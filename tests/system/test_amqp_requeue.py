"""Where a requeued message goes, checked with pika as RabbitMQ places it:
back at the head of the messages of its priority, so it never overtakes
a higher priority (kombu's integration test test_publish_requeue_consume
relies on it), and ahead of those of its own priority that came after."""

import time

import pytest

from test_amqp import connect, gateway  # noqa: F401 (the fixture)

pika = pytest.importorskip('pika')


def get(ch, queue, timeout=10):
    """basic.get until a message comes: (method, body), not acked."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m, _, body = ch.basic_get(queue)
        if m:
            return m, body
        time.sleep(0.05)
    raise AssertionError('nothing came to %s' % queue)


def publish(ch, queue, body, priority):
    ch.basic_publish('', queue, body, pika.BasicProperties(priority=priority, delivery_mode=2))


def test_a_requeued_message_keeps_to_its_priority(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare('requeue-prio', durable=True, arguments={'x-max-priority': 10})
    publish(ch, 'requeue-prio', b'low-1', 1)
    publish(ch, 'requeue-prio', b'low-2', 1)
    m, body = get(ch, 'requeue-prio')
    assert body == b'low-1'
    # a higher priority arrives while low-1 is out; then low-1 is requeued
    publish(ch, 'requeue-prio', b'high', 9)
    ch.basic_nack(m.delivery_tag, requeue=True)
    order = []
    for _ in range(3):
        m, body = get(ch, 'requeue-prio')
        order.append((body, m.redelivered))
        ch.basic_ack(m.delivery_tag)
    assert order == [(b'high', False), (b'low-1', True), (b'low-2', False)]
    c.close()


def test_requeued_by_a_closed_channel_come_back_in_order(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare('requeue-close', durable=True, arguments={'x-max-priority': 10})
    for i in range(3):
        publish(ch, 'requeue-close', b'p5-%d' % i, 5)
    publish(ch, 'requeue-close', b'p2', 2)
    consumer = c.channel()
    got = [get(consumer, 'requeue-close')[1] for _ in range(2)]
    assert got == [b'p5-0', b'p5-1']
    publish(ch, 'requeue-close', b'p7', 7)
    consumer.close()  # p5-0 and p5-1 go back, in their places
    rest = []
    for _ in range(5):
        m, body = get(ch, 'requeue-close')
        rest.append(body)
        ch.basic_ack(m.delivery_tag)
    assert rest == [b'p7', b'p5-0', b'p5-1', b'p5-2', b'p2']
    c.close()
