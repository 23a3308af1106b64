"""Dead letters through the gateway's AMQP server, checked with pika as
RabbitMQ writes them: expired messages of a queue with a dead-letter
exchange are dead-lettered (reason expired), and every dead-lettered copy
carries the x-death header and x-first-death-*."""

import datetime
import time

import pytest

from conftest import Gateway, wait_until
from test_amqp import connect, gateway  # noqa: F401 (the fixture)

pika = pytest.importorskip('pika')


def get_one(ch, queue, timeout=10):
    """The next message of queue (basic.get, acked), waiting for it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m, props, body = ch.basic_get(queue, auto_ack=True)
        if m:
            return m, props, body
        time.sleep(0.05)
    raise AssertionError('nothing came to %s' % queue)


def test_expired_messages_are_dead_lettered_with_x_death(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('dlx', 'direct')
    ch.queue_declare('expired')
    ch.queue_bind('expired', 'dlx', 'exp')
    ch.queue_declare('ttl-q', arguments={'x-message-ttl': 300, 'x-dead-letter-exchange': 'dlx',
                                         'x-dead-letter-routing-key': 'exp'})
    ch.queue_declare('own-ttl', arguments={'x-dead-letter-exchange': 'dlx',
                                           'x-dead-letter-routing-key': 'exp'})
    ch.confirm_delivery()
    before = int(time.time()) - 1
    # no consumer, no get: the head check finds them when they expire
    ch.basic_publish('', 'ttl-q', b'queue-ttl', pika.BasicProperties(message_id='q1'))
    m, props, body = get_one(ch, 'expired')
    assert body == b'queue-ttl' and props.message_id == 'q1'
    assert m.exchange == 'dlx' and m.routing_key == 'exp'
    death, = props.headers['x-death']
    assert death['count'] == 1 and death['reason'] == 'expired'
    assert death['queue'] == 'ttl-q' and death['exchange'] == ''
    assert death['routing-keys'] == ['ttl-q']
    assert 'original-expiration' not in death
    assert isinstance(death['time'], datetime.datetime)
    assert before <= death['time'].replace(tzinfo=datetime.timezone.utc).timestamp() \
        <= time.time() + 1
    assert props.headers['x-first-death-queue'] == 'ttl-q'
    assert props.headers['x-first-death-reason'] == 'expired'
    assert props.headers['x-first-death-exchange'] == ''
    # the message's own expiration: recorded, and gone from the copy
    ch.basic_publish('', 'own-ttl', b'own', pika.BasicProperties(expiration='200',
                                                                  headers={'keep': 'me'}))
    m, props, body = get_one(ch, 'expired')
    assert body == b'own' and props.expiration is None
    assert props.headers['keep'] == 'me'
    death, = props.headers['x-death']
    assert death['reason'] == 'expired' and death['original-expiration'] == '200'
    assert death['queue'] == 'own-ttl'
    # expired behind a head that does not expire: it stays until it gets
    # there (as RabbitMQ), then a basic.get or a consumer dead-letters it
    # instead of handing it out
    for name in ('fresh', 'late', 'fresh2', 'late2', 'fresh3'):
        ch.basic_publish('', 'own-ttl', name.encode(), pika.BasicProperties(
            expiration='100' if name.startswith('late') else None))
    time.sleep(0.4)
    assert ch.queue_declare('own-ttl', passive=True).method.message_count == 5
    assert ch.basic_get('own-ttl', auto_ack=True)[2] == b'fresh'
    m, _, body = ch.basic_get('own-ttl', auto_ack=True)
    assert body == b'fresh2' and m.message_count == 2
    assert get_one(ch, 'expired')[2] == b'late'
    got = []
    for m, props, body in ch.consume('own-ttl', inactivity_timeout=0.5):
        if not m:
            break
        got.append(body)
        ch.basic_ack(m.delivery_tag)
    ch.cancel()
    assert got == [b'fresh3']
    assert get_one(ch, 'expired')[2] == b'late2'
    # without a dead-letter exchange an expired message is dropped
    ch.queue_declare('plain-ttl', arguments={'x-message-ttl': 100})
    ch.basic_publish('', 'plain-ttl', b'dropped')
    time.sleep(0.4)
    assert ch.basic_get('plain-ttl') == (None, None, None)
    assert ch.basic_get('expired') == (None, None, None)
    c.close()


def test_x_death_counts_rejections_and_max_length(gateway):
    c = connect(gateway)
    ch = c.channel()
    # a -> b -> a through two fanouts: each rejection adds to x-death
    ch.exchange_declare('to-b', 'fanout')
    ch.exchange_declare('to-a', 'fanout')
    ch.queue_declare('a', arguments={'x-dead-letter-exchange': 'to-b'})
    ch.queue_declare('b', arguments={'x-dead-letter-exchange': 'to-a'})
    ch.queue_bind('b', 'to-b')
    ch.queue_bind('a', 'to-a')
    ch.confirm_delivery()
    ch.basic_publish('', 'a', b'bounced', pika.BasicProperties(expiration='60000'))

    def bounce(queue, nack=False):
        m = None
        deadline = time.time() + 10
        while not m and time.time() < deadline:
            m, props, body = ch.basic_get(queue)
        assert body == b'bounced'
        if nack:  # a nack without requeue is a rejection too
            ch.basic_nack(m.delivery_tag, requeue=False)
        else:
            ch.basic_reject(m.delivery_tag, requeue=False)
        return m, props

    m, props = bounce('a')
    assert props.expiration == '60000' and props.headers is None
    m, props = bounce('b', nack=True)
    assert m.exchange == 'to-b'
    assert [(d['queue'], d['reason'], d['count']) for d in props.headers['x-death']] == \
        [('a', 'rejected', 1)]
    assert props.headers['x-death'][0]['original-expiration'] == '60000'
    assert props.expiration is None
    m, props = bounce('a')
    assert [(d['queue'], d['reason'], d['count']) for d in props.headers['x-death']] == \
        [('b', 'rejected', 1), ('a', 'rejected', 1)]
    m, props = bounce('b')
    # a's entry counted up and moved first; the first death stays a's
    assert [(d['queue'], d['reason'], d['count']) for d in props.headers['x-death']] == \
        [('a', 'rejected', 2), ('b', 'rejected', 1)]
    assert props.headers['x-first-death-queue'] == 'a'
    assert props.headers['x-first-death-reason'] == 'rejected'
    m, props, body = get_one(ch, 'a')
    assert len(props.headers['x-death']) == 2
    # x-max-length's drops: reason maxlen
    ch.exchange_declare('ml-dlx', 'fanout')
    ch.queue_declare('ml-dead')
    ch.queue_bind('ml-dead', 'ml-dlx')
    ch.queue_declare('ml', arguments={'x-max-length': 1, 'x-dead-letter-exchange': 'ml-dlx'})
    ch.basic_publish('', 'ml', b'first')
    ch.basic_publish('', 'ml', b'second')
    m, props, body = get_one(ch, 'ml-dead')
    assert body == b'first'
    death, = props.headers['x-death']
    assert (death['reason'], death['queue'], death['routing-keys']) == ('maxlen', 'ml', ['ml'])
    c.close()


def test_expired_back_to_its_own_queue_is_a_cycle_dropped(gateway):
    """As RabbitMQ: a message that expires into its own queue, with no
    rejection on the way, is dropped rather than going round for ever."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('loop', 'fanout')
    ch.queue_declare('looping', arguments={'x-message-ttl': 100,
                                           'x-dead-letter-exchange': 'loop'})
    ch.queue_bind('looping', 'loop')
    ch.queue_declare('watcher')
    ch.queue_bind('watcher', 'loop')
    ch.confirm_delivery()
    ch.basic_publish('', 'looping', b'round')
    m, props, body = get_one(ch, 'watcher')
    assert body == b'round'

    def count(queue):
        return ch.queue_declare(queue, passive=True).method.message_count
    time.sleep(0.5)
    wait_until(lambda: count('looping') == 0, timeout=5, what='the cycle ended')
    assert count('watcher') == 0
    c.close()


def test_expired_while_out_is_dead_lettered_when_it_comes_back(gateway):
    """A message of a queue that dead-letters, held by a client past its
    TTL (the queue's or its own) while the head check its publish armed
    found the queue empty, is dead-lettered as soon as it comes back: a
    nack with requeue, basic.recover, or the connection of a prefetch-1
    consumer that held it closing (RabbitMQ does it at once; it stayed in
    its queue for ever)."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('back-dl')
    dl = {'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'back-dl'}
    ch.queue_declare('back-ttl', arguments=dict(dl, **{'x-message-ttl': 300}))
    ch.queue_declare('back-own', arguments=dl)
    ch.confirm_delivery()

    def returned(queue, body):
        start = time.monotonic()
        wait_until(lambda: count(ch, 'back-dl') == 1, timeout=5,
                   what='%s dead-lettered once back' % body)
        took = time.monotonic() - start
        m, props, got = ch.basic_get('back-dl', auto_ack=True)
        assert got == body and props.headers['x-death'][0]['reason'] == 'expired'
        assert props.headers['x-death'][0]['queue'] == queue
        assert count(ch, queue) == 0
        assert took < 2, took

    for how in ('nack', 'recover'):
        for queue, props in (('back-ttl', None), ('back-own', pika.BasicProperties(expiration='300'))):
            body = ('%s-%s' % (how, queue)).encode()
            ch.basic_publish('', queue, body, props)
            m, _, got = ch.basic_get(queue)
            assert got == body
            time.sleep(0.7)  # its TTL and the head check at it are past
            if how == 'nack':
                ch.basic_nack(m.delivery_tag, requeue=True)
            else:
                ch.basic_recover(requeue=True)
            returned(queue, body)
    # a prefetch-1 consumer holds it; its connection closes
    ch.basic_publish('', 'back-ttl', b'held')
    other = connect(gateway)
    och = other.channel()
    och.basic_qos(prefetch_count=1)
    got = []
    och.basic_consume('back-ttl', lambda c_, m_, p_, b_: got.append(b_))
    wait_until(lambda: other.process_data_events(time_limit=0.05) or got, timeout=5,
               what='the consumer got it')
    time.sleep(0.7)
    other.close()
    returned('back-ttl', b'held')
    c.close()


def count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def test_reject_publish_refuses_what_does_not_fit(gateway):
    """x-overflow reject-publish: a publish over x-max-length is refused
    before the store (basic.nack under confirms, dropped without), the
    ready messages stay; unacked ones do not count."""
    c = connect(gateway)
    ch = c.channel()
    ch.queue_declare('rp', arguments={'x-max-length': 3, 'x-overflow': 'reject-publish'})
    # many in one go, without confirms: exactly the bound is kept, the first ones
    for i in range(20):
        ch.basic_publish('', 'rp', b'%d' % i)
    c.process_data_events(time_limit=0.5)
    assert count(ch, 'rp') == 3
    # under confirms: nacked
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rp', b'over')
    m, _, body = ch.basic_get('rp')
    assert body == b'0'
    # taken, unacked: there is room for one more
    ch.basic_publish('', 'rp', b'fits')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rp', b'over-again')
    ch.basic_ack(m.delivery_tag)
    got = [ch.basic_get('rp', auto_ack=True)[2] for _ in range(3)]
    assert got == [b'1', b'2', b'fits']
    assert ch.basic_get('rp') == (None, None, None)
    # a message routed to two queues, one full: nacked, stored in the other
    ch.queue_declare('rp-one', arguments={'x-max-length': 1, 'x-overflow': 'reject-publish'})
    ch.queue_declare('rp-free')
    ch.exchange_declare('rp-both', 'fanout')
    ch.queue_bind('rp-one', 'rp-both')
    ch.queue_bind('rp-free', 'rp-both')
    ch.basic_publish('rp-both', '', b'a')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('rp-both', '', b'b')
    assert (count(ch, 'rp-one'), count(ch, 'rp-free')) == (1, 2)
    c.close()
    # in a transaction, a message over the bound is dropped, the others
    # are stored, and the commit fails, as RabbitMQ's
    c = connect(gateway)
    ch = c.channel()
    ch.tx_select()
    ch.basic_publish('', 'rp-one', b'in-tx')
    ch.basic_publish('', 'rp-free', b'in-tx')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_commit()
    assert e.value.reply_code == 406
    assert e.value.reply_text == 'PRECONDITION_FAILED - partial tx completion'
    ch = c.channel()
    assert (count(ch, 'rp-one'), count(ch, 'rp-free')) == (1, 3)
    c.close()


def test_reject_publish_dlx_dead_letters_the_refused(gateway):
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('rpd-dlx', 'fanout')
    ch.queue_declare('rpd-dead')
    ch.queue_bind('rpd-dead', 'rpd-dlx')
    ch.queue_declare('rpd', arguments={'x-max-length': 2, 'x-overflow': 'reject-publish-dlx',
                                       'x-dead-letter-exchange': 'rpd-dlx'})
    ch.confirm_delivery()
    ch.basic_publish('', 'rpd', b'1')
    ch.basic_publish('', 'rpd', b'2')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rpd', b'3', pika.BasicProperties(message_id='m3'))
    m, props, body = get_one(ch, 'rpd-dead')
    assert body == b'3' and props.message_id == 'm3'
    death, = props.headers['x-death']
    assert (death['reason'], death['queue'], death['count']) == ('maxlen', 'rpd', 1)
    assert [ch.basic_get('rpd', auto_ack=True)[2] for _ in range(2)] == [b'1', b'2']
    # a dead-letter copy that finds its queue full is dropped (as RabbitMQ)
    ch.queue_declare('rpd-src', arguments={'x-dead-letter-exchange': 'rpd-to-full'})
    ch.exchange_declare('rpd-to-full', 'fanout')
    ch.queue_declare('rpd-full', arguments={'x-max-length': 1, 'x-overflow': 'reject-publish'})
    ch.queue_bind('rpd-full', 'rpd-to-full')
    ch.basic_publish('', 'rpd-full', b'there')
    ch.basic_publish('', 'rpd-src', b'rejected')
    m, _, _ = ch.basic_get('rpd-src')
    ch.basic_reject(m.delivery_tag, requeue=False)
    wait_until(lambda: count(ch, 'rpd-src') == 0, timeout=5, what='the rejected one settled')
    assert count(ch, 'rpd-full') == 1
    c.close()


def test_expired_across_a_gateway_restart_are_dead_lettered(tmp_path, broker, processes):
    """The expiry is worked out from the task, not kept in the gateway: a
    message that expires while no gateway runs is dead-lettered by the
    next one."""
    g = Gateway(tmp_path, broker, wait=True)
    processes.append(g)
    c = connect(g)
    ch = c.channel()
    ch.exchange_declare('rs-dlx', 'fanout', durable=True)
    ch.queue_declare('rs-dead', durable=True)
    ch.queue_bind('rs-dead', 'rs-dlx')
    ch.queue_declare('rs-ttl', durable=True, arguments={'x-message-ttl': 1500,
                                                        'x-dead-letter-exchange': 'rs-dlx'})
    ch.confirm_delivery()
    ch.basic_publish('', 'rs-ttl', b'outlived', pika.BasicProperties(delivery_mode=2))
    c.close()
    g.kill9()
    time.sleep(1.6)
    g2 = g.restart(wait=True)
    processes.append(g2)
    c = connect(g2)
    ch = c.channel()
    # the broker hands nothing out during its recovery window: poll
    m, props, body = get_one(ch, 'rs-dead', timeout=30)
    assert body == b'outlived'
    assert props.headers['x-death'][0]['reason'] == 'expired'
    assert count(ch, 'rs-ttl') == 0
    c.close()


def test_x_death_sent_by_a_client_is_taken_as_it_comes(gateway):
    """Whatever a publisher put in x-death (wrong kinds, a count of any
    width, at the top of a long), the copy gets a well-formed entry and
    the gateway goes on."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('odd-dlx', 'fanout')
    ch.queue_declare('odd-dead')
    ch.queue_bind('odd-dead', 'odd-dlx')
    ch.queue_declare('odd', arguments={'x-dead-letter-exchange': 'odd-dlx'})
    top = 2 ** 63 - 1
    cases = [
        ({'x-death': [{'count': top, 'queue': 'odd', 'reason': 'rejected'}, 'junk', 5]}, top, 'odd'),
        ({'x-death': [{'count': 7, 'queue': 'odd', 'reason': 'rejected'}]}, 8, 'odd'),
        ({'x-death': [{'count': 'many', 'queue': 'odd', 'reason': 'rejected'}]}, 2, 'odd'),
        ({'x-death': 'not an array', 'x-first-death-queue': 'elsewhere'}, 1, 'elsewhere'),
    ]
    for headers, want_count, want_first in cases:
        ch.basic_publish('', 'odd', b'odd', pika.BasicProperties(headers=headers))
        m = None
        while not m:
            m, _, _ = ch.basic_get('odd')
        ch.basic_reject(m.delivery_tag, requeue=False)
        _, props, _ = get_one(ch, 'odd-dead')
        first = props.headers['x-death'][0]
        assert (first['queue'], first['reason'], first['count']) == ('odd', 'rejected', want_count)
        assert props.headers['x-first-death-queue'] == want_first
    c.close()


def test_dead_letters_keep_their_priority(gateway):
    """Rejected from a plain queue into one with x-max-priority, dead
    letters come out by priority, as RabbitMQ orders them: the copy keeps
    the message's priority (at most the queue's maximum)."""
    c = connect(gateway)
    ch = c.channel()
    ch.exchange_declare('pdlx', 'fanout')
    ch.queue_declare('pdead', arguments={'x-max-priority': 5})
    ch.queue_bind('pdead', 'pdlx')
    ch.queue_declare('plain', arguments={'x-dead-letter-exchange': 'pdlx'})
    ch.confirm_delivery()
    for priority in (1, 5, 3, 9):
        ch.basic_publish('', 'plain', b'p%d' % priority, pika.BasicProperties(priority=priority))
    for _ in range(4):
        m, _, _ = ch.basic_get('plain')
        ch.basic_reject(m.delivery_tag, requeue=False)
    wait_until(lambda: ch.queue_declare('pdead', passive=True).method.message_count == 4,
               what='four dead letters')
    got = [get_one(ch, 'pdead') for _ in range(4)]
    assert [body for _, _, body in got] == [b'p5', b'p9', b'p3', b'p1']
    assert [props.priority for _, props, _ in got] == [5, 9, 3, 1]  # the property unchanged
    c.close()
