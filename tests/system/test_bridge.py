"""The gateway's bridge to an upstream RabbitMQ (docs/gateway.md, "Bridge"),
against a real rabbitmq-server: messages published upstream with pika run
as arbiter tasks on a worker, and their results come back on reply_to with
their correlation_id; a restart of RabbitMQ or a kill -9 of the gateway
mid-stream loses no reply; a bad URL or wrong credentials are logged and
the gateway goes on.

One RabbitMQ serves every test of the file (it takes seconds to start): its
own node name, Erlang distribution port and epmd on free loopback ports,
and a temporary data directory, so it never meets another node of the
machine. Each test uses queues of its own.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid

import pytest
import requests

import arbiter_proto
from conftest import ROOT, Gateway, binary, free_port, wait_until
from helpers import (CLIENT_KEY_PASSWORD, encrypt_key, example_with_its_examples, make_tls_files, start_exec_worker,
                     start_minion,
                     start_rabbit)

pika = pytest.importorskip('pika', reason='python3-pika is not installed')

@pytest.fixture(scope='module')
def rabbit_server(tmp_path_factory):
    server = start_rabbit(tmp_path_factory, tls=True)
    yield server
    server.close()


@pytest.fixture
def rabbit(rabbit_server):
    """The module's RabbitMQ, running (a test that failed while it was
    stopped leaves it stopped)."""
    if rabbit_server.proc is None:
        rabbit_server.start()
    return rabbit_server


def names(prefix):
    """Queue names of one test."""
    tag = uuid.uuid4().hex[:8]
    return '%s-%s' % (prefix, tag), 'replies-%s-%s' % (prefix, tag)


def declare(rabbit, *queues):
    with rabbit.connect() as conn:
        channel = conn.channel()
        for queue in queues:
            channel.queue_declare(queue, durable=True)


def publish(rabbit, queue, reply_to, bodies, start=0, message_ids=True):
    """Publishes bodies to queue with confirms (each is persisted when this
    returns); correlation ids are 'c<N>', N counting from start."""
    with rabbit.connect() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for i, body in enumerate(bodies, start):
            props = pika.BasicProperties(reply_to=reply_to, correlation_id='c%d' % i,
                                         delivery_mode=2,
                                         message_id='m%d' % i if message_ids else None)
            channel.basic_publish('', queue, body, props)


class Replies:
    """Every reply read from a queue, by correlation id."""

    def __init__(self, rabbit, queue):
        self.rabbit = rabbit
        self.queue = queue
        self.got = {}   # correlation id -> (properties, body) of the first
        self.all = {}   # correlation id -> every (properties, body)

    def drain(self):
        """Takes what is in the queue now (a fresh connection each time:
        RabbitMQ may have restarted)."""
        try:
            with self.rabbit.connect() as conn:
                channel = conn.channel()
                while True:
                    method, props, body = channel.basic_get(self.queue, auto_ack=True)
                    if method is None:
                        break
                    self.all.setdefault(props.correlation_id, []).append((props, body))
                    self.got.setdefault(props.correlation_id, (props, body))
        except pika.exceptions.AMQPError:
            pass
        return self

    def wait(self, n, timeout=60):
        wait_until(lambda: len(self.drain().got) >= n, timeout=timeout, interval=0.2,
                   what='%d replies on %s (got %d)' % (n, self.queue, len(self.got)))
        return self


def start_gateway(broker, processes, tmp_path, rabbit, sections, queues=None, reconnect_max='1',
                  extra=()):
    """A gateway (HTTP on a free port) with the [bridge.NAME] sections given
    as {name: {key: value}}, and [queue.NAME] sections as queues."""
    config = tmp_path / ('bridges-%d.conf' % len(processes))
    lines = []
    for kind, named in (('bridge', sections), ('queue', queues or {})):
        for name, keys in named.items():
            lines.append('[%s.%s]' % (kind, name))
            lines += ['%s = %s' % item for item in keys.items()]
    config.write_text('\n'.join(lines) + '\n')
    gateway = Gateway(tmp_path, broker, ['--config', str(config), '--upstream', rabbit.url(),
                                         '--upstream-reconnect-max', reconnect_max] + list(extra),
                      wait=True)
    processes.append(gateway)
    return gateway


def bridge_queue(broker, processes, tmp_path, rabbit, name, command, *worker_args, **keys):
    """An upstream queue and a reply queue of the test's own, an exec worker
    of arbiter queue name running command, and a gateway whose
    [bridge.name] bridges the one into the other (keys: the section's
    other keys). Returns the two queues, the gateway and its sections."""
    jobs, replies = names(name)
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, command, '--queue', name, *worker_args)
    sections = {name: dict(keys, **{'upstream-queue': jobs})}
    gateway = start_gateway(broker, processes, tmp_path, rabbit, sections)
    return jobs, replies, gateway, sections


def others_serve(gateway, queue):
    """The gateway's other servers go on whatever the upstream does: HTTP
    takes a task (tasker's POST) and shows its queue, Kestrel stores an
    item and gives it back."""
    reply = requests.post('%s/%s' % (gateway.url, queue),
                          json={'identifier': uuid.uuid4().hex, 'payload': 'ping'}, timeout=10)
    assert reply.status_code == 201, reply.text
    reply = requests.get('%s/api/v1/queues/%s' % (gateway.url, queue), timeout=10)
    assert reply.status_code == 200, reply.text
    with socket.create_connection(('127.0.0.1', gateway.kestrel_port), timeout=10) as conn:
        conn.sendall(b'set %s-k 0 0 4\r\npong\r\nget %s-k\r\n' % (queue.encode(), queue.encode()))
        expected = b'STORED\r\nVALUE %s-k 0 4\r\npong\r\nEND\r\n' % queue.encode()
        got = b''
        while len(got) < len(expected):
            part = conn.recv(4096)
            assert part, got
            got += part
        assert got == expected


def records(broker, bridge):
    """The bridge's records in the broker's metadata (replies owed)."""
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        kind, _, body, _ = peer.request('META', {'op': 'list', 'key': 'gw.bridge.%s.' % bridge})
        assert kind == 'META_REPLY', body
        return [item['key'] for item in body.get('items', [])]
    finally:
        peer.close()


def task_count(broker, queue, state=None):
    """Tasks of an arbiter queue, in any state or in state (a name)."""
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        kind, _, body, _ = peer.request('STATS', {})
        counts = next((q['counts'] for q in body.get('queues', []) if q['name'] == queue), [])
        if state is None:
            return sum(counts)
        return sum(c for i, c in enumerate(counts) if arbiter_proto.STATES.get(i) == state)
    finally:
        peer.close()


def upstream_depth(rabbit, queue):
    """Messages ready in an upstream queue (not those delivered unacked)."""
    with rabbit.connect() as conn:
        return conn.channel().queue_declare(queue, passive=True).method.message_count


def upstream_unsettled(rabbit, queue):
    """Messages of an upstream queue ready or delivered and not acked yet:
    0 once the bridge has acked all it was given."""
    listed = rabbit.ctl('list_queues', '--quiet', '--no-table-headers', 'name', 'messages')
    for line in listed.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == queue:
            return int(fields[1])
    raise AssertionError('queue %s not listed: %r' % (queue, listed))


def test_replies_arrive_once_on_reply_to(broker, processes, tmp_path, rabbit):
    jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'upper',
                                             'tr a-z A-Z', '--slots', '4', prefetch=10,
                                             task='upcase')
    n = 40
    publish(rabbit, jobs, replies, [b'hello %d' % i for i in range(n)])
    got = Replies(rabbit, replies).wait(n)
    for i in range(n):
        props, body = got.got['c%d' % i]
        assert body == b'HELLO %d' % i
        assert props.headers['x-arbiter-state'] == 'succeeded'
        assert props.headers['x-arbiter-task-id'] > 0
        assert 'x-arbiter-error' not in props.headers
    # every message acked upstream, every record deleted, and no reply twice
    wait_until(lambda: upstream_depth(rabbit, jobs) == 0 and not records(broker, 'upper'),
               what='upstream queue drained and records deleted')
    time.sleep(1)
    assert all(len(r) == 1 for r in got.drain().all.values()), got.all
    assert task_count(broker, 'upper') == n
    peer = arbiter_proto.Peer(broker.endpoint)
    kind, _, body, _ = peer.request('STATUS', {'ids': [got.got['c7'][0].headers[
        'x-arbiter-task-id']]})
    peer.close()
    task = body['tasks'][0]
    assert (task['queue'], task['name'], task['key']) == ('upper', 'upcase', 'bridge:upper:id:m7')
    # the same message again (same message_id), as RabbitMQ would deliver a
    # message whose ack was lost: its task, answered again
    publish(rabbit, jobs, replies, [b'hello 0'])
    wait_until(lambda: len(got.drain().all['c0']) == 2, what="the repeated message's reply")
    first, again = (props.headers['x-arbiter-task-id'] for props, _ in got.all['c0'])
    assert first == again
    assert task_count(broker, 'upper') == n
    # RabbitMQ's direct reply-to, as RPC clients use it
    with rabbit.connect() as conn:
        channel = conn.channel()
        direct = []
        channel.basic_consume('amq.rabbitmq.reply-to', auto_ack=True,
                              on_message_callback=lambda c, m, p, b: direct.append((p, b)))
        channel.basic_publish('', jobs, b'direct', pika.BasicProperties(
            reply_to='amq.rabbitmq.reply-to', correlation_id='d1'))
        deadline = time.time() + 30
        while not direct and time.time() < deadline:
            conn.process_data_events(time_limit=0.2)
    assert [(p.correlation_id, b) for p, b in direct] == [('d1', b'DIRECT')]
    assert gateway.alive()


def test_same_content_without_message_id_is_two_tasks(broker, processes, tmp_path, rabbit):
    jobs, replies, _, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'twins', 'cat')
    # one correlation id for both: the messages are alike in every byte
    with rabbit.connect() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(reply_to=replies, correlation_id='same', delivery_mode=2)
        for _ in range(2):
            channel.basic_publish('', jobs, b'tick', props)
    got = Replies(rabbit, replies)
    wait_until(lambda: len(got.drain().all.get('same', [])) == 2, what='two replies')
    ids = {props.headers['x-arbiter-task-id'] for props, _ in got.all['same']}
    assert len(ids) == 2
    assert task_count(broker, 'twins') == 2


def test_dead_and_cancelled_tasks_answer_with_their_error(broker, processes, tmp_path, rabbit):
    jobs, replies = names('failing')
    idle, _ = names('idle')
    declare(rabbit, jobs, idle, replies)
    start_exec_worker(broker, processes, tmp_path, 'echo "no such file" >&2; exit 3',
                      '--queue', 'failing')
    # the queue's retries, and the bridge's own backoff
    start_gateway(broker, processes, tmp_path, rabbit, {
        'failing': {'upstream-queue': jobs, 'backoff': 'fixed', 'backoff-delay': 0.1},
        'idle': {'upstream-queue': idle}}, queues={'failing': {'retries': 1, 'priority': 3}})
    publish(rabbit, jobs, replies, [b'x', b'y'])
    got = Replies(rabbit, replies).wait(2)
    for cid in ('c0', 'c1'):
        props, body = got.got[cid]
        assert props.headers['x-arbiter-state'] == 'dead'
        assert 'no such file' in props.headers['x-arbiter-error']
    # the options reached the task: two attempts each
    peer = arbiter_proto.Peer(broker.endpoint)
    task_id = got.got['c0'][0].headers['x-arbiter-task-id']
    kind, _, body, _ = peer.request('STATUS', {'ids': [task_id]})
    assert body['tasks'][0]['attempts'] == 2 and body['tasks'][0]['priority'] == 3
    assert body['tasks'][0]['queue'] == 'failing' and body['tasks'][0]['name'] == 'failing'
    # no worker serves idle: a task cancelled there answers too
    publish(rabbit, idle, replies, [b'z'], start=2)
    wait_until(lambda: records(broker, 'idle'), what='the idle task recorded')
    # gw.bridge.idle.ID.HEX: the task's id, the digest of the reply address
    task_id = int(records(broker, 'idle')[0].split('.')[3])
    kind, _, body, _ = peer.request('CANCEL', {'ids': [task_id]})
    peer.close()
    assert kind == 'CANCEL_REPLY', body
    props, body = got.wait(3).got['c2']
    assert props.headers['x-arbiter-state'] == 'cancelled'
    assert props.headers['x-arbiter-task-id'] == task_id


def check_all_answered(got, n, broker, bridge, rabbit, jobs, kept=()):
    """Every message 0..n-1 answered with its upper-cased body, nothing
    left upstream, no record left but kept."""
    for i in range(n):
        props, body = got.got['c%d' % i]
        assert body == b'MESSAGE %d' % i, (i, body)
        assert props.headers['x-arbiter-state'] == 'succeeded'
    wait_until(lambda: upstream_depth(rabbit, jobs) == 0
               and records(broker, bridge) == list(kept),
               what='upstream queue drained and records deleted')


def test_upstream_restart_mid_stream_loses_nothing(broker, processes, tmp_path, rabbit):
    jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'restart',
                                             'sleep 0.1; tr a-z A-Z', '--slots', '2', prefetch=8)
    n = 60
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(30)])
    got = Replies(rabbit, replies).wait(5)
    rabbit.stop()
    # the bridge sees the upstream go, and keeps trying; HTTP goes on
    wait_until(lambda: 'upstream: connection lost bridge=restart' in gateway.output()
               or 'upstream: cannot consume bridge=restart' in gateway.output(),
               what='the bridge noticing the upstream is gone')
    others_serve(gateway, 'while-rabbitmq-is-down')
    rabbit.start()
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(30, n)], start=30)
    got.wait(n, timeout=90)
    check_all_answered(got, n, broker, 'restart', rabbit, jobs)
    assert task_count(broker, 'restart') == n
    assert gateway.output().count('upstream: consuming bridge=restart') >= 2


def test_upstream_queue_deleted_under_the_bridge_is_noticed(broker, processes, tmp_path, rabbit):
    """RabbitMQ tells a consumer its queue is gone only to a client that
    says it can hear it (consumer_cancel_notify): the bridge says so, is
    named in RabbitMQ's connections, and consumes again once the queue is
    declared again."""
    jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'deleted',
                                             'tr a-z A-Z')
    publish(rabbit, jobs, replies, [b'before'])
    got = Replies(rabbit, replies).wait(1)
    listed = rabbit.ctl('list_connections', 'client_properties')
    assert 'arbiter-gateway bridge deleted' in listed, listed
    with rabbit.connect() as conn:
        conn.channel().queue_delete(jobs)
    wait_until(lambda: 'bridge=deleted' in gateway.output()
               and 'RabbitMQ cancelled the consumer' in gateway.output(),
               what='the bridge hearing its queue was deleted')
    cannot_consume(gateway, 'deleted', 1)  # 404 until it is back
    declare(rabbit, jobs)
    publish(rabbit, jobs, replies, [b'after'], start=1)
    got.wait(2)
    assert got.got['c1'][1] == b'AFTER'
    assert gateway.output().count('upstream: consuming bridge=deleted') >= 2


def test_gateway_kill9_mid_stream_loses_nothing(broker, processes, tmp_path, rabbit):
    # few tasks awaiting replies at once: most messages wait unacked in
    # RabbitMQ, which delivers them again to the next gateway
    jobs, replies, gateway, sections = bridge_queue(
        broker, processes, tmp_path, rabbit, 'kill', 'sleep 0.05; tr a-z A-Z', '--slots', '2',
        prefetch=20, **{'max-pending': 10})
    n = 50
    # no message_id: nothing tells a message delivered again from a new one
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(n)], message_ids=False)
    got = Replies(rabbit, replies).wait(5)
    # past max-pending the bridge says it holds messages back, once, not
    # once a message
    assert gateway.output().count('bridge: max-pending reached, messages wait unacked in '
                                  'RabbitMQ bridge=kill max_pending=10') == 1, gateway.output()
    gateway.kill9()
    # the tasks it had submitted end while it is away
    peer = arbiter_proto.Peer(broker.endpoint)

    def settled():
        kind, _, body, _ = peer.request('STATS', {})
        counts = next((q['counts'] for q in body.get('queues', []) if q['name'] == 'kill'), [])
        return counts and sum(counts[1:5]) == 0
    wait_until(settled, timeout=30, what='the kill queue settled')
    # a record that is no reply address is left alone
    kind, _, body, _ = peer.request('META', {'op': 'set', 'key': 'gw.bridge.kill.999999',
                                             'value': b'junk'})
    assert kind == 'META_REPLY', body
    peer.close()
    assert len(got.drain().got) < n
    gateway = start_gateway(broker, processes, tmp_path, rabbit, sections)
    got.wait(n, timeout=60)
    check_all_answered(got, n, broker, 'kill', rabbit, jobs, kept=['gw.bridge.kill.999999'])
    # without a message_id, a message delivered again after its submit gets
    # a task of its own (nothing lost; it may run twice)
    assert task_count(broker, 'kill') >= n
    assert 'record is no reply address, left alone bridge=kill task=999999' in gateway.output()
    # every hold of the second gateway ended once all was answered
    held = gateway.output().count('bridge: max-pending reached, messages wait')
    wait_until(lambda: gateway.output().count('bridge: below max-pending again, messages are '
                                              'submitted bridge=kill') == held,
               what='the bridge taking messages again')
    assert 1 <= held < 5, gateway.output()
    awaited = int(gateway.output().split('bridge: tasks awaiting their reply bridge=kill tasks=')[1]
                  .split()[0])
    assert awaited > 0


def test_bad_url_and_wrong_credentials_leave_the_rest_running(broker, processes, tmp_path,
                                                               rabbit):
    jobs, replies = names('good')
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'good')
    gateway = start_gateway(broker, processes, tmp_path, rabbit, {
        'bad': {'upstream': 'amqp://guest:gu@est@127.0.0.1/%2f'},
        'denied': {'upstream': rabbit.url(password='wrong')},
        'missing': {'upstream-queue': 'no-such-queue-%s' % uuid.uuid4().hex[:8]},
        'good': {'upstream-queue': jobs}})
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(3)])
    got = Replies(rabbit, replies).wait(3)
    check_all_answered(got, 3, broker, 'good', rabbit, jobs)
    out = gateway.output()
    assert 'upstream: bad URL bridge=bad reason="malformed URL' in out
    assert 'bridge: not started bridge=bad' in out
    # wrong credentials and a missing queue are tried again, each time said
    wait_until(lambda: gateway.output().count('cannot consume bridge=denied') >= 2,
               what='a second attempt of the denied bridge')
    out = gateway.output()
    assert "login as 'guest' to vhost '/' refused: 403 ACCESS_REFUSED" in out, out
    assert 'cannot consume bridge=missing' in out and '404 NOT_FOUND' in out, out
    assert 'guest:wrong' not in out and ':wrong@' not in out
    others_serve(gateway, 'beside-bad-bridges')
    assert gateway.alive()


def test_a_failure_after_each_start_backs_off(broker, processes, tmp_path, rabbit):
    """An upstream user that may read the queue but not publish the replies
    (403 ACCESS_REFUSED on amq.default): each connection consumes, and is
    lost at the reply's publish. The delay between attempts doubles up to
    upstream-reconnect-max, as for a failure to connect, instead of
    starting again at 0.5 s each time consuming starts; the log says the
    publish failed."""
    user = 'reader%s' % uuid.uuid4().hex[:8]
    rabbit.ctl('add_user', user, 'pw')
    rabbit.ctl('set_permissions', '-p', '/', user, '.*', '^$', '.*')  # configure, write, read
    jobs, replies = names('readonly')
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'readonly')
    gateway = start_gateway(broker, processes, tmp_path, rabbit, {
        'readonly': {'upstream-queue': jobs, 'upstream': rabbit.url(user, 'pw')}},
        reconnect_max='2')
    publish(rabbit, jobs, replies, [b'message 0'])

    def lost():
        return [line for line in gateway.output().splitlines()
                if 'connection lost bridge=readonly ' in line]
    wait_until(lambda: len(lost()) >= 4, timeout=30, what='four lost connections')
    lines = lost()
    assert [line.rsplit('retry_in_ms=', 1)[1] for line in lines[:4]] == [
        '500', '1000', '2000', '2000'], lines
    assert 'reason="publishing a reply: 403 ACCESS_REFUSED' in lines[0], lines[0]
    assert 'consuming bridge=readonly' in gateway.output()


def test_bad_top_level_upstream_stops_only_its_bridges(broker, processes, tmp_path, rabbit):
    """A start takes a bad --upstream all the same (--check-config refuses
    it): the bridges that use it do not start, and the gateway serves the
    rest, a bridge with its own URL too. A key password's tail (an & not
    written %26) is in no log."""
    jobs, replies = names('own')
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'own')
    config = tmp_path / 'top.conf'
    config.write_text('[bridge.defaulted]\nupstream-queue = q\n'
                      '[bridge.tail]\nupstream = amqps://guest:guest@localhost/%%2f?'
                      'password=Xy7&Sup3rS3cretTail\n'
                      '[bridge.own]\nupstream-queue = %s\nupstream = %s\n'
                      % (jobs, rabbit.url()))
    gateway = Gateway(tmp_path, broker, ['--config', str(config), '--upstream',
                                         'amqp://guest:guest@127.0.0.1/%2f?x=1',
                                         '--upstream-reconnect-max', '1'], wait=True)
    processes.append(gateway)
    publish(rabbit, jobs, replies, [b'message 0'])
    got = Replies(rabbit, replies).wait(1)
    check_all_answered(got, 1, broker, 'own', rabbit, jobs)
    out = gateway.output()
    assert ("upstream: bad URL bridge=defaulted reason=\"unknown URL parameter 'x'" in out), out
    assert 'bridge: not started bridge=defaulted' in out
    assert ('upstream: bad URL bridge=tail reason="a URL parameter after password= is not one'
            in out), out
    assert 'Sup3rS3cretTail' not in out and 'Xy7' not in out
    others_serve(gateway, 'beside-bad-upstream')
    assert gateway.alive()
    # with no section at all, the bad --upstream is not even read
    lone = Gateway(tmp_path, broker, ['--upstream', 'amqp://guest:guest@127.0.0.1/%2f?x=1'],
                   wait=True)
    processes.append(lone)
    assert 'nothing is bridged' in lone.output()


def test_the_documented_example_config_is_valid(tmp_path):
    """The example is the defaults as it is, and its commented-out
    sections are valid when taken in."""
    example = os.path.join(ROOT, 'examples', 'arbiter-gateway.conf')
    proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', example,
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert b'# upstream = (not set)' in proc.stdout
    assert b'bridge.' not in proc.stdout and b'user.' not in proc.stdout
    taken = example_with_its_examples(example, str(tmp_path / 'taken.conf'))
    proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', taken,
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    for line in (b'upstream = amqp://', b'[bridge.thumbnails]', b'[bridge.emails]',
                 b'[type.deploy]', b'[queue.backup]', b'[user.app]'):
        assert line in proc.stdout, line
    # and a section's mistake is named with its line
    bad = tmp_path / 'bad.conf'
    bad.write_text('[bridge.jobs]\nprefetch = 0\n')
    proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(bad),
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 2
    assert b'bad.conf:2: bridge.jobs.prefetch: 0 is out of range (1 to 65535)' in proc.stderr


def test_check_config_prints_the_upstream_without_its_password(tmp_path):
    gateway = binary('gateway', 'arbiter-gateway')
    proc = subprocess.run([gateway, '--upstream', 'amqp://guest:sekrit@localhost:5672/%2f',
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert b'upstream = amqp://guest@localhost:5672/%2f\n' in proc.stdout, proc.stdout
    assert b'sekrit' not in proc.stdout + proc.stderr
    # a URL the bridge could not use is refused as the option is read,
    # bridged or not
    proc = subprocess.run([gateway, '--upstream', 'amqp://guest:sekrit@localhost/%2f?x=1',
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 2
    assert b"--upstream: unknown URL parameter 'x'" in proc.stderr, proc.stderr
    assert b'sekrit' not in proc.stdout + proc.stderr


def test_check_config_refuses_a_bridge_without_url_and_a_port_0(tmp_path):
    """A [bridge.NAME] without an upstream URL (no --upstream, no upstream
    key) is not started by a start: --check-config says so, with its
    section's line (exit 2); port 0 is refused as every program's ports
    are; an '@' left in a password gets the way to write it."""
    gateway = binary('gateway', 'arbiter-gateway')
    config = tmp_path / 'nourl.conf'
    config.write_text('[bridge.a]\nprefetch = 5\n'
                      '[bridge.b]\nupstream = amqp://u:sekrit@h:0/%2f\n'
                      '[bridge.c]\nupstream = amqp://u:sek@rit@h/%2f\n')
    proc = subprocess.run([gateway, '--config', str(config), '--check-config'],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == '', proc.stderr
    assert '%s:1: [bridge.a]: no upstream URL' % config in proc.stderr, proc.stderr
    assert ('%s:4: bridge.b.upstream: the port 0 is out of range (1 to 65535)' % config
            in proc.stderr), proc.stderr
    assert '%s:6: bridge.c.upstream: malformed URL' % config in proc.stderr, proc.stderr
    assert '@ as %40' in proc.stderr and 'sek' not in proc.stderr
    # --upstream gives bridge.a its URL
    config.write_text('[bridge.a]\nprefetch = 5\n')
    proc = subprocess.run([gateway, '--config', str(config), '--upstream', 'amqp://u:p@h/%2f',
                           '--check-config'], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_broker_kill9_mid_stream_loses_nothing(broker, processes, tmp_path, rabbit):
    jobs, replies, _, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'brokerkill',
                                       'sleep 0.05; tr a-z A-Z', '--slots', '2', prefetch=10)
    n = 40
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(n)])
    got = Replies(rabbit, replies).wait(5)
    broker.kill9()
    time.sleep(1)
    processes.append(broker.restart())
    got.wait(n, timeout=90)
    check_all_answered(got, n, broker, 'brokerkill', rabbit, jobs)
    assert task_count(broker, 'brokerkill') == n


def test_amqps_upstream_checks_the_servers_certificate(broker, processes, tmp_path, rabbit):
    """A TLS upstream (amqps://, RabbitMQ's URI parameters): with the CA
    that signed the server's certificate, for the name it holds, messages
    flow (a body over several TLS records among them); with another CA,
    the system's CAs, or a name the certificate does not hold, the bridge
    does not connect, says why and tries again; verify_none connects to
    anyone. The other bridges and servers go on."""
    tls = rabbit.tls
    good, replies = names('tls')
    declare(rabbit, good, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'tls')
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'tlsnone')
    none, none_replies = names('tlsnone')
    declare(rabbit, none, none_replies)
    gateway = start_gateway(broker, processes, tmp_path, rabbit, {
        'tls': {'upstream': rabbit.tls_url('cacertfile=' + tls['ca']), 'upstream-queue': good},
        'otherca': {'upstream': rabbit.tls_url('cacertfile=' + tls['other_ca']),
                    'upstream-queue': good},
        'systemca': {'upstream': rabbit.tls_url(''), 'upstream-queue': good},
        'wrongname': {'upstream': rabbit.tls_url('cacertfile=' + tls['ca'], host='127.0.0.1'),
                      'upstream-queue': good},
        'tlsnone': {'upstream': rabbit.tls_url('verify=verify_none', host='127.0.0.1'),
                    'upstream-queue': none}})
    big = b'message 2 ' + b'x' * 100000
    publish(rabbit, good, replies, [b'message 0', b'message 1', big])
    publish(rabbit, none, none_replies, [b'message 0'])
    got = Replies(rabbit, replies).wait(3)
    assert got.got['c2'][1] == big.upper()
    assert Replies(rabbit, none_replies).wait(1).got['c0'][1] == b'MESSAGE 0'
    out = gateway.output()
    assert ('upstream: consuming bridge=tls url=amqps://guest@localhost:%d/%%2f?cacertfile='
            % rabbit.tls_port) in out, out
    refused = "SSL handshake failed: the server's certificate: "
    # a CA it does not know (the words depend on whether the server sends
    # its CA: "self-signed certificate in certificate chain", or "unable to
    # get local issuer certificate"), an address the certificate does not hold
    for bridge, why in (('otherca', refused), ('systemca', refused),
                        ('wrongname', refused + 'IP address mismatch')):
        wait_until(lambda: gateway.output().count('cannot consume bridge=%s ' % bridge) >= 2,
                   what='a second attempt of the %s bridge' % bridge)
        line = next(line for line in gateway.output().splitlines()
                    if 'cannot consume bridge=%s ' % bridge in line)
        assert why in line, line
        assert 'consuming bridge=%s ' % bridge not in gateway.output()
    others_serve(gateway, 'beside-tls-bridges')
    assert gateway.alive()


def test_failure_reasons_name_their_cause(broker, processes, tmp_path, rabbit):
    """Each failure to connect says what happened, not a refusal of the
    server's: a port nobody listens on (connection refused), amqp:// to
    the TLS port and amqps:// to the plain one (is it a TLS port?), a
    server that takes the connection and never speaks (no answer to the
    login). And the gateway stops at once even while a bridge waits for
    that answer: the loop wakes its thread."""
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(16)
    silent.settimeout(0)
    accepted = []

    def accept():
        try:
            accepted.append(silent.accept()[0])
        except (BlockingIOError, socket.timeout):
            pass
        return len(accepted)
    try:
        gateway = start_gateway(broker, processes, tmp_path, rabbit, {
            'closed': {'upstream': 'amqp://guest:guest@127.0.0.1:%d/%%2f' % free_port()},
            'plaintotls': {'upstream': 'amqp://guest:guest@127.0.0.1:%d/%%2f' % rabbit.tls_port},
            'tlstoplain': {'upstream': 'amqps://guest:guest@127.0.0.1:%d/%%2f?verify=verify_none'
                           % rabbit.port},
            'silent': {'upstream': 'amqp://guest:guest@127.0.0.1:%d/%%2f'
                       % silent.getsockname()[1]}})
        for bridge, why in (('closed', 'a socket error occurred: Connection refused'),
                            ('plaintotls', 'the connection failed during the login: '),
                            ('plaintotls', '(is it a TLS port? the URL is amqp://)'),
                            ('tlstoplain', 'SSL handshake failed (is it a TLS port?)')):
            line = cannot_consume(gateway, bridge)
            assert why in line, line
            assert 'refused:' not in line, line
        wait_until(lambda: 'cannot consume bridge=silent ' in gateway.output(), timeout=30,
                   what='the silent bridge giving up its login')
        line = cannot_consume(gateway, 'silent', 1)
        assert ('reason="no answer to the login as \'guest\' to vhost \'/\' within 10 s"'
                in line), line
        # the next attempt waits in its login: the stop does not wait for it
        wait_until(lambda: accept() >= 2, timeout=10, what='a second attempt of the silent bridge')
        accepted[-1].settimeout(10)
        assert accepted[-1].recv(8, socket.MSG_WAITALL) == b'AMQP\x00\x00\x09\x01'
        started = time.monotonic()
        assert gateway.stop() == 0
        # under the login's 10 s by far (a stop of a sanitized gateway on a
        # loaded machine takes a second or two)
        assert time.monotonic() - started < 6, gateway.output()
        assert gateway.output().count('cannot consume bridge=silent ') == 1
    finally:
        for conn in accepted:
            conn.close()
        silent.close()


def cannot_consume(gateway, bridge, n=2):
    """The first of the bridge's failed attempts, once it has made n."""
    wait_until(lambda: gateway.output().count('cannot consume bridge=%s ' % bridge) >= n,
               what='attempt %d of the %s bridge' % (n, bridge))
    return next(line for line in gateway.output().splitlines()
                if 'cannot consume bridge=%s ' % bridge in line)


def test_amqps_client_key_with_a_password(broker, processes, tmp_path, rabbit):
    """A client key encrypted with a password (password=, %-encoded, as
    RabbitMQ's URI parameters have it), for a RabbitMQ that requires a
    client certificate: with the right password messages flow; a wrong one,
    or none, stops that bridge when it starts, saying why; a key encrypted
    anew under a running bridge is refused at each attempt, said, and
    tried again until it is right. A bridge without a certificate is
    refused by RabbitMQ. No log holds the password."""
    tls = rabbit.tls
    key = str(tmp_path / 'client-key.pem')  # a copy: encrypted anew below
    shutil.copy(tls['client_key_encrypted'], key)
    jobs, replies = names('tlskey')
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'tlskey')

    def url(password):
        query = 'cacertfile=%s&certfile=%s&keyfile=%s' % (tls['ca'], tls['client_cert'], key)
        if password is not None:
            query += '&password=' + urllib.parse.quote(password, safe='')
        return rabbit.tls_url(query, client=False)
    gateway = start_gateway(broker, processes, tmp_path, rabbit, {
        'tlskey': {'upstream': url(CLIENT_KEY_PASSWORD), 'upstream-queue': jobs},
        'wrongpw': {'upstream': url('not the key password'), 'upstream-queue': jobs},
        'nopw': {'upstream': url(None), 'upstream-queue': jobs},
        'nocert': {'upstream': rabbit.tls_url('cacertfile=' + tls['ca'], client=False),
                   'upstream-queue': jobs}})
    publish(rabbit, jobs, replies, [b'message 0', b'message 1'])
    got = Replies(rabbit, replies).wait(2)
    out = gateway.output()
    assert ('upstream: consuming bridge=tlskey url=amqps://guest@localhost:%d/%%2f?cacertfile=%s'
            '&certfile=%s&keyfile=%s&password=*** ' % (rabbit.tls_port, tls['ca'],
                                                       tls['client_cert'], key)) in out, out
    assert ('upstream: bad URL bridge=wrongpw reason="keyfile: cannot decrypt %s with the '
            'password given (wrong password)"' % key) in out, out
    assert 'bridge: not started bridge=wrongpw' in out
    assert ('upstream: bad URL bridge=nopw reason="keyfile: %s is encrypted: give its password '
            '(password=...)"' % key) in out, out
    # RabbitMQ requires a certificate: without one, the bridge never gets
    # in, and the log says the connection failed (no refusal of RabbitMQ's)
    line = cannot_consume(gateway, 'nocert')
    assert ('reason="the connection failed during the login: a SSL error occurred (did the '
            'server want a client certificate?)"' in line), line
    assert 'consuming bridge=nocert ' not in gateway.output()
    # the key encrypted with another password, under the running bridge:
    # when RabbitMQ closes its connection, each attempt to get back in is
    # refused and says why, until the key is right again
    encrypt_key(tls['client_key'], key + '.new', 'another key password')
    os.replace(key + '.new', key)
    rabbit.close_connections()
    line = cannot_consume(gateway, 'tlskey')
    assert ('reason="keyfile: cannot decrypt %s with the password given (wrong password)"' % key
            in line), line
    shutil.copy(tls['client_key_encrypted'], key)
    publish(rabbit, jobs, replies, [b'message 2'], start=2)
    got.wait(3)
    check_all_answered(got, 3, broker, 'tlskey', rabbit, jobs)
    out = gateway.output()
    assert out.count('upstream: consuming bridge=tlskey ') >= 2
    for secret in (CLIENT_KEY_PASSWORD, urllib.parse.quote(CLIENT_KEY_PASSWORD, safe=''),
                   'not the key password', 'not%20the', 'another key password'):
        assert secret not in out, secret
    others_serve(gateway, 'beside-tls-key-bridges')
    assert gateway.alive()


def test_amqps_url_mistakes_are_refused_by_check_config(tmp_path):
    """A TLS parameter the bridge does not know, a certificate file that
    is not there, an encrypted key with a wrong password or none:
    --check-config says so, naming the section, and quotes no password."""
    tls = make_tls_files(str(tmp_path / 'tls'))
    key = 'certfile=%s&keyfile=%s' % (tls['client_cert'], tls['client_key_encrypted'])
    empty = tmp_path / 'empty.pem'
    empty.write_text('')
    for query, why in (('server_name_indication=h', "unknown URL parameter 'server_name_indication'"),
                       # a key password with an & not written %26: its tail is not quoted
                       (key + '&password=Xy7&sekritTail', 'a URL parameter after password= is '
                        'not one'),
                       (key + '&password=k3y&pass=sekrit', 'a URL parameter after password= is '
                        'not one'),
                       (key + '&password=a&password=b', 'password given twice'),
                       # files no connection could use
                       ('cacertfile=', 'cacertfile: empty'),
                       ('cacertfile=' + str(tmp_path), 'cacertfile: %s is a directory' % tmp_path),
                       ('cacertfile=%s' % empty, 'cacertfile: no certificate in %s' % empty),
                       ('cacertfile=%s' % tls['client_key'],
                        'cacertfile: no certificate in %s' % tls['client_key']),
                       ('certfile=%s&keyfile=%s' % (tmp_path, tls['client_key']),
                        'certfile: %s is a directory' % tmp_path),
                       ('certfile=%s&keyfile=%s' % (tls['client_key'], tls['client_key']),
                        'certfile: no certificate in %s' % tls['client_key']),
                       ('certfile=%s&keyfile=%s' % (tls['ca'], tls['client_key']),
                        'certfile and keyfile do not match: %s is not the key of %s'
                        % (tls['client_key'], tls['ca'])),
                       ('cacertfile=/no/such/ca.pem', 'cacertfile: cannot read /no/such/ca.pem'),
                       (key + '&password=sekrit', 'keyfile: cannot decrypt %s with the password '
                        'given (wrong password)' % tls['client_key_encrypted']),
                       (key, 'keyfile: %s is encrypted: give its password (password=...)'
                        % tls['client_key_encrypted'])):
        conf = tmp_path / 'tls.conf'
        conf.write_text('[bridge.jobs]\nupstream = amqps://guest:sekrit@localhost/%%2f?%s\n' % query)
        proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(conf),
                               '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 2, (query, proc.stdout, proc.stderr)
        assert (b'tls.conf:2: bridge.jobs.upstream: ' + why.encode()) in proc.stderr, proc.stderr
        assert b'sekrit' not in proc.stderr
    # every URL problem, each where it was given: the top-level one that
    # no section uses, and each section's
    conf.write_text('upstream = amqp://guest:sekrit@localhost/%%2f?x=1\n'
                    '\n[bridge.a]\nupstream-queue = q\n'
                    'upstream = amqps://guest:sekrit@localhost/%%2f?cacertfile=%s\n'
                    '[bridge.b]\nupstream = amqps://guest:sekrit@localhost/%%2f?%s&password=x&y\n'
                    % (empty, key))
    proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(conf),
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert (b"tls.conf:1: upstream: unknown URL parameter 'x'" in proc.stderr
            and b'tls.conf:5: bridge.a.upstream: cacertfile: no certificate in' in proc.stderr
            and b'tls.conf:7: bridge.b.upstream: a URL parameter after password=' in proc.stderr
            ), proc.stderr
    assert b'sekrit' not in proc.stderr
    # and the right password passes
    conf.write_text('[bridge.jobs]\nupstream = amqps://guest:sekrit@localhost/%%2f?%s&password=%s\n'
                    % (key, urllib.parse.quote(CLIENT_KEY_PASSWORD, safe='')))
    proc = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', str(conf),
                           '--check-config'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


def publish_as(rabbit, queue, reply_to, message_id, correlation_id, body):
    """One message with the message_id and correlation_id given."""
    with rabbit.connect() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish('', queue, body, pika.BasicProperties(
            reply_to=reply_to, correlation_id=correlation_id, delivery_mode=2,
            message_id=message_id))


def answered_once_each(got, cids, body):
    """Each correlation id answered with body by one task; that task's id."""
    ids = set()
    for cid in cids:
        props, got_body = got.got[cid]
        assert got_body == body, (cid, got_body)
        assert props.headers['x-arbiter-state'] == 'succeeded'
        ids.add(props.headers['x-arbiter-task-id'])
    assert len(ids) == 1, ids
    return ids.pop()


def gated(command, gate):
    """A worker's shell command that waits until the file gate exists (60 s
    at most: a test that failed before opening it leaves no task behind
    for long)."""
    return ('i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; %s'
            % (gate, command))


def test_same_message_id_answers_every_caller(broker, processes, tmp_path, rabbit):
    """Two messages with one message_id find one task; each is answered on
    its reply_to with its own correlation_id (one record each). A
    message sent again after its reply went out gets the result again."""
    # the task ends when the test opens its gate, not after a time a loaded
    # machine may not keep to
    gate = tmp_path / 'gate'
    jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'dup',
                                             gated('tr a-z A-Z', gate))
    publish_as(rabbit, jobs, replies, 'dup-1', 'x1', b'same task')
    publish_as(rabbit, jobs, replies, 'dup-1', 'x2', b'same task')
    # a record each while the task runs (read as they come: a loaded
    # machine took more than the 3 s this task once ran to record both)
    def both_recorded():
        owed = records(broker, 'dup')
        return owed if len(owed) == 2 else None
    owed = wait_until(both_recorded, what='a record for each message')
    # both acked once their records are committed
    wait_until(lambda: upstream_unsettled(rabbit, jobs) == 0, what='both messages acked')
    gate.touch()
    got = Replies(rabbit, replies).wait(2, timeout=30)
    task_id = answered_once_each(got, ['x1', 'x2'], b'SAME TASK')
    assert len(owed) == 2 and all(key.startswith('gw.bridge.dup.%d.' % task_id)
                                  for key in owed), owed
    assert task_count(broker, 'dup') == 1
    wait_until(lambda: not records(broker, 'dup'), what='the records deleted')
    # a third caller after the replies went out: the old result
    publish_as(rabbit, jobs, replies, 'dup-1', 'x3', b'same task')
    got.wait(3)
    assert answered_once_each(got, ['x3'], b'SAME TASK') == task_id
    assert task_count(broker, 'dup') == 1
    time.sleep(1)
    assert all(len(r) == 1 for r in got.drain().all.values()), got.all
    assert gateway.alive()


def test_same_message_id_across_a_gateway_kill9(broker, processes, tmp_path, rabbit):
    """Callers of one task whose gateway is killed -9 between their
    messages, or after both were acked and before the result: each is
    answered, by the records the next gateway lists."""
    # the tasks end when the test opens their gate, after the second kill
    # (a fixed sleep of 8 s ended one before it on a loaded machine)
    gate = tmp_path / 'gate'
    jobs, replies, gateway, sections = bridge_queue(broker, processes, tmp_path, rabbit,
                                                    'dupkill', gated('tr a-z A-Z', gate),
                                                    '--slots', '2')
    got = Replies(rabbit, replies)
    # killed between the two messages
    publish_as(rabbit, jobs, replies, 'dup-a', 'a1', b'first')
    # acked, not only delivered: one delivered unacked when the gateway is
    # killed comes again to the next, which then finds its record itself
    wait_until(lambda: records(broker, 'dupkill') and upstream_unsettled(rabbit, jobs) == 0,
               what='the first message acked and recorded')
    gateway.kill9()
    gateway = start_gateway(broker, processes, tmp_path, rabbit, sections)
    publish_as(rabbit, jobs, replies, 'dup-a', 'a2', b'first')
    # killed after both were acked, before the result
    publish_as(rabbit, jobs, replies, 'dup-b', 'b1', b'second')
    publish_as(rabbit, jobs, replies, 'dup-b', 'b2', b'second')
    wait_until(lambda: upstream_unsettled(rabbit, jobs) == 0, what='every message acked')
    gateway.kill9()
    assert not got.drain().got, got.got
    owed = records(broker, 'dupkill')
    gate.touch()
    gateway = start_gateway(broker, processes, tmp_path, rabbit, sections)
    got.wait(4, timeout=40)
    assert len(owed) == 4, owed
    first = answered_once_each(got, ['a1', 'a2'], b'FIRST')
    second = answered_once_each(got, ['b1', 'b2'], b'SECOND')
    assert first != second
    assert task_count(broker, 'dupkill') == 2
    wait_until(lambda: not records(broker, 'dupkill'), what='the records deleted')
    listed = [line for line in gateway.output().splitlines() if 'bridge: ' in line]
    assert any('bridge: tasks awaiting their reply bridge=dupkill tasks=2 replies=4' in line
               for line in listed), listed


def test_broker_back_retries_waiting_messages_at_once(broker, processes, tmp_path, rabbit):
    """Messages that came while the broker was away are submitted as soon
    as its session is up again, not at the end of their backoff (up to
    10 s); the first failure is a warning, said once, and so is the
    recovery."""
    jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'brokerback',
                                             'tr a-z A-Z')
    publish(rabbit, jobs, replies, [b'message 0'])
    got = Replies(rabbit, replies).wait(1)
    assert broker.stop() == 0
    publish(rabbit, jobs, replies, [b'message %d' % i for i in range(1, 4)], start=1)
    failed = 'bridge: submit failed, messages wait unacked and are tried again bridge=brokerback'
    wait_until(lambda: failed in gateway.output(), what='the first failure said')
    # away until the backoff is 8 s (0.5, 1, 2, 4, 8: debug lines)
    wait_until(lambda: 'submit failed, again in 8000 ms bridge=brokerback' in gateway.output(),
               timeout=40, what='the backoff at 8 s')
    before = len(gateway.output())
    processes.append(broker.restart())
    back = time.time()
    got.wait(4, timeout=30)
    took = time.time() - back
    check_all_answered(got, 4, broker, 'brokerback', rabbit, jobs)
    out = gateway.output()
    assert out.count(failed) == 1, out
    after = out[before:]
    up = after.index('gateway: broker session up')
    # the messages waiting out a backoff: all three but those whose attempt
    # was on its way just then (each fails or lands by itself: in a CI
    # run the third was, and the line said 2)
    line = 'bridge: broker session up, messages tried again bridge=brokerback messages='
    retried = after.index(line)
    assert after[retried + len(line)] in '123', after
    recovered = after.index('bridge: the broker takes messages again bridge=brokerback')
    assert up < retried < recovered, after
    # generous: the backoff still had seconds to run
    assert took < 5, took


def test_a_stop_does_not_wait_for_a_blocked_upstream(broker, processes, tmp_path, rabbit):
    """RabbitMQ in a resource alarm stops reading a connection that
    publishes: the bridge's replies (4 MB each) fill the socket's buffers
    and its thread blocks in a send. SIGTERM still stops the gateway at
    once: the stop shuts the thread's socket down."""
    jobs, replies = names('blocked')
    declare(rabbit, jobs, replies)
    gateway = start_gateway(broker, processes, tmp_path, rabbit,
                            {'blocked': {'upstream-queue': jobs, 'prefetch': '20'}})
    publish(rabbit, jobs, replies, [b'job %d' % i for i in range(8)])
    wait_until(lambda: task_count(broker, 'blocked') == 8, what='eight tasks')
    rabbit.ctl('set_disk_free_limit', '100000GB')
    try:
        wait_until(lambda: 'disk' in rabbit.ctl('eval', 'rabbit_alarm:get_alarms().'),
                   timeout=60, interval=0.5, what='the disk alarm')
        start_exec_worker(broker, processes, tmp_path,
                          'cat >/dev/null; head -c 4000000 /dev/zero | tr "\\0" r',
                          '--queue', 'blocked', '--slots', '4')
        wait_until(lambda: task_count(broker, 'blocked', 'succeeded') >= 4, timeout=30,
                   what='results to publish')
        time.sleep(3)  # the replies' publishes fill the buffers and block
        assert gateway.alive()
        started = time.time()
        gateway.proc.send_signal(signal.SIGTERM)
        gateway.proc.wait(timeout=20)
        assert time.time() - started < 10
    finally:
        rabbit.ctl('set_disk_free_limit', '50MB')
        wait_until(lambda: 'disk' not in rabbit.ctl('eval', 'rabbit_alarm:get_alarms().'),
                   timeout=60, interval=0.5, what='the disk alarm cleared')


def test_a_reply_over_rabbitmqs_largest_message_is_answered_with_the_reason(
        broker, processes, tmp_path, rabbit):
    """A result over RabbitMQ's max_message_size: RabbitMQ refuses its
    reply's publish (406) and closes the replies' channel. The consumer
    goes on (its channel is another): every other message is answered,
    and the refused reply's caller gets a reply without the result whose
    x-arbiter-error says why; nothing is lost, no connection dropped."""
    rabbit.ctl('eval', 'application:set_env(rabbit, max_message_size, 1048576).')
    try:
        command = ('x=$(cat); if [ "$x" = big ]; then head -c 2000000 /dev/zero | tr "\\0" a; '
                   'else printf %s "$x" | tr a-z A-Z; fi')
        jobs, replies, gateway, _ = bridge_queue(broker, processes, tmp_path, rabbit, 'huge',
                                                 command, '--slots', '4', prefetch=20)
        publish(rabbit, jobs, replies, [b'big'] + [b'small %d' % i for i in range(1, 21)])
        got = Replies(rabbit, replies).wait(21)
        props, body = got.got['c0']
        assert body == b''
        assert props.headers['x-arbiter-state'] == 'succeeded'
        assert 'refused by RabbitMQ' in props.headers['x-arbiter-error']
        assert '406' in props.headers['x-arbiter-error']
        for i in range(1, 21):
            assert got.got['c%d' % i][1] == b'SMALL %d' % i
        wait_until(lambda: upstream_depth(rabbit, jobs) == 0 and not records(broker, 'huge'),
                   what='upstream queue drained and records deleted')
        assert 'connection lost bridge=huge' not in gateway.output()
        assert task_count(broker, 'huge') == 21
    finally:
        rabbit.ctl('eval', 'application:set_env(rabbit, max_message_size, 134217728).')


def test_a_body_over_max_payload_is_rejected_and_never_held(broker, processes, tmp_path, rabbit):
    """A message over the gateway's --max-payload is rejected upstream
    (no requeue) and the next is answered; its body is dropped as it
    comes, frame by frame, so the gateway's memory never holds it."""
    jobs, replies = names('oversize')
    declare(rabbit, jobs, replies)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'oversize')
    gateway = start_gateway(broker, processes, tmp_path, rabbit,
                            {'oversize': {'upstream-queue': jobs}}, extra=['--max-payload', '1M'])
    before = rss_kib(gateway.pid)
    publish(rabbit, jobs, replies, [b'x' * (40 << 20), b'small'])
    got = Replies(rabbit, replies).wait(1)
    assert got.got['c1'][1] == b'SMALL' and 'c0' not in got.got
    wait_until(lambda: upstream_depth(rabbit, jobs) == 0, what='both settled upstream')
    out = gateway.output()
    assert 'message refused, rejected upstream bridge=oversize key=bridge:oversize:id:m0 ' \
        'code=413' in out, out[-2000:]
    assert rss_kib(gateway.pid) - before < 16 << 10  # peak (VmHWM) growth under 16 MiB


def rss_kib(pid, field='VmHWM'):
    with open('/proc/%d/status' % pid) as f:
        return int(next(line for line in f if line.startswith(field + ':')).split()[1])


def test_a_refused_reply_is_found_under_steady_load(broker, processes, tmp_path, rabbit):
    """A reply RabbitMQ refuses (406) while many others are in flight: the
    replies in doubt each go again alone, so the refused one is found at
    its first retry, however many other replies go out meanwhile; the
    others are all answered."""
    rabbit.ctl('eval', 'application:set_env(rabbit, max_message_size, 8).')
    try:
        jobs, replies = names('steady')
        declare(rabbit, jobs, replies)
        start_minion(broker, processes, tmp_path, '--queue', 'steady', '--slots', '64')
        gateway = start_gateway(broker, processes, tmp_path, rabbit, {
            'steady': {'upstream-queue': jobs, 'task': 'sleep', 'prefetch': '200'}})
        n = 3000
        # results "slept 30" (8 bytes) but one, "slept 100" (9: over 8), in
        # flight with others
        publish(rabbit, jobs, replies, [b'100' if i == 40 else b'30' for i in range(n)])
        got = Replies(rabbit, replies).wait(n, timeout=120)
        props, body = got.got['c40']
        assert body == b'' and 'refused by RabbitMQ' in props.headers['x-arbiter-error']
        assert all(got.got['c%d' % i][1] == b'slept 30' for i in range(n) if i != 40)
        refusals = [line for line in gateway.output().splitlines()
                    if 'upstream: RabbitMQ refused a reply' in line]
        assert 1 <= len(refusals) <= 2, refusals
    finally:
        rabbit.ctl('eval', 'application:set_env(rabbit, max_message_size, 134217728).')
