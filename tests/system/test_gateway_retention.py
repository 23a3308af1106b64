"""How long the broker keeps the task of a consumed Kestrel item or AMQP
message: --message-retention (60 s by default), unless the queue's
[queue.NAME] section says otherwise; 0 leaves the broker's own --retention.
Read off the journal: a final task's purge time minus its finish time."""

import pytest

from conftest import wait_until
from helpers import journal_value
from test_kestrel import client

pika = pytest.importorskip('pika')

KEPT = 'SELECT purge_at_ms - finished_ms FROM tasks WHERE queue = ? AND purge_at_ms IS NOT NULL'


def kept_ms(broker, queue):
    """The retention of queue's one finished task, once it is finished."""
    wait_until(lambda: journal_value(broker, 'SELECT count(*) FROM tasks WHERE queue = ? AND '
                                     'purge_at_ms IS NOT NULL', queue) == 1,
               timeout=10, what='%s finished' % queue)
    return journal_value(broker, KEPT, queue)


def consume_kestrel(gw, queue):
    c = client(gw)
    assert c.set(queue, b'item')
    assert c.get(queue) == b'item'
    c.close()


def consume_amqp(gw, queue):
    conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', gw.amqp_port))
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.confirm_delivery()
    ch.basic_publish('', queue, b'message')
    method, _, body = ch.basic_get(queue, auto_ack=False)
    assert body == b'message'
    ch.basic_ack(method.delivery_tag)
    conn.close()


def test_consumed_items_and_messages_are_kept_a_minute_or_as_their_queue_says(
        broker, gateway_factory, tmp_path):
    config = tmp_path / 'gateway.conf'
    config.write_text('[queue.k-kept]\nretention = 300\n\n[queue.a-kept]\nretention = 300\n')
    gw = gateway_factory(broker, '--config', str(config))
    consume_kestrel(gw, 'k-plain')
    consume_kestrel(gw, 'k-kept')
    consume_amqp(gw, 'a-plain')
    consume_amqp(gw, 'a-kept')
    assert kept_ms(broker, 'k-plain') == 60000
    assert kept_ms(broker, 'a-plain') == 60000
    assert kept_ms(broker, 'k-kept') == 300000
    assert kept_ms(broker, 'a-kept') == 300000


def test_message_retention_zero_leaves_the_brokers_own(broker, gateway_factory):
    gw = gateway_factory(broker, '--message-retention', '0')
    consume_kestrel(gw, 'k0')
    consume_amqp(gw, 'a0')
    # the broker's --retention: a day
    assert kept_ms(broker, 'k0') == 86400 * 1000
    assert kept_ms(broker, 'a0') == 86400 * 1000


def test_message_retention_takes_seconds(broker, gateway_factory):
    gw = gateway_factory(broker, '--message-retention', '5')
    consume_kestrel(gw, 'k5')
    assert kept_ms(broker, 'k5') == 5000
