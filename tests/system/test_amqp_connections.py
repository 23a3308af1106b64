"""--amqp-max-connections: the AMQP connections open at once, refused past
it at connection.open with RabbitMQ's 530 (pika raises it, amqp-tools
print it), the count going down whichever way a connection ends, and the
handshakes past it bounded too (gateway/arb_amqp.c, s_on_client)."""

import socket
import subprocess

import pytest

from conftest import wait_until
from test_amqp import RawAmqp, connect, tool

pika = pytest.importorskip('pika')

REFUSED = 'NOT_ALLOWED - connection refused: node connection limit (3) is reached'
LOGGED = 'amqp: connection refused: 3 connections open'


@pytest.fixture
def gw(gateway_factory, broker):
    return gateway_factory(broker, '--amqp-max-connections', '3')


def refused(gw):
    """One more connection: 530 at connection.open, in RabbitMQ's words,
    which pika raises as it raises RabbitMQ's (the Close during its
    handshake: "probable access denied", with the broker's reason)."""
    params = pika.ConnectionParameters('127.0.0.1', gw.amqp_port, connection_attempts=1)
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        pika.BlockingConnection(params).close()
    assert "ConnectionClosedByBroker: (530) '%s'" % REFUSED in str(e.value), e.value


def opens(gw):
    """A connection that gets in (a channel opens on it), left open."""
    c = connect(gw)
    c.channel()
    return c


def raw_open(gw):
    """A raw connection, opened."""
    raw = RawAmqp(gw.amqp_port)
    raw.expect(pika.spec.Connection.OpenOk)
    return raw


def test_past_the_limit_refused_until_one_ends_whichever_way(gw):
    """Three open, a fourth refused, and not counted: refused again. Each
    way a connection ends frees its place: the client's Close, a
    connection error (501), a socket dropped without a Close; a login
    refused never takes one."""
    first, raw, third = opens(gw), raw_open(gw), opens(gw)
    refused(gw)
    refused(gw)
    # rabbitmq-c says it too
    r = subprocess.run([tool('amqp-get'), '--url', 'amqp://guest:guest@127.0.0.1:%d' % gw.amqp_port,
                        '-q', 'any'], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and '530' in r.stderr and REFUSED in r.stderr, r.stderr
    first.close()
    first = opens(gw)
    refused(gw)
    raw.send_raw(b'\x08\x00\x00\x00\x00\x00\x00\x00')  # a heartbeat whose end octet is bad
    assert raw.expect(pika.spec.Connection.Close).reply_code == 501
    raw.close()
    second = opens(gw)
    refused(gw)
    second.close()
    raw = raw_open(gw)
    raw.close()  # no Close: the socket ends
    second = opens(gw)
    refused(gw)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.ConnectionParameters(
            '127.0.0.1', gw.amqp_port, connection_attempts=1,
            credentials=pika.PlainCredentials('guest', 'wrong')))
    refused(gw)
    for c in (first, second, third):
        c.close()
    again = [opens(gw) for _ in range(3)]
    refused(gw)
    for c in again:
        c.close()
    wait_until(lambda: LOGGED in gw.output(), what='a refusal logged')


def handshake_to_open():
    """What a client sends from its protocol header to connection.open,
    all at once."""
    frames = [pika.spec.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                           response=b'\0guest\0guest', locale='en_US'),
              pika.spec.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0),
              pika.spec.Connection.Open(virtual_host='/')]
    return b'AMQP\x00\x00\x09\x01' + b''.join(pika.frame.Method(0, m).marshal() for m in frames)


def test_handshakes_past_the_limit_are_bounded_and_refusals_logged_5_a_second(gw):
    """Past the limit, 64 more connections may be in their handshakes (each
    to be told 530) or closing; one more is closed as it comes, unheard,
    and said in the log. A burst of refusals logs at most 5 lines a
    second."""
    held = [opens(gw) for _ in range(3)]
    idle = [socket.create_connection(('127.0.0.1', gw.amqp_port), timeout=5)
            for _ in range(64)]
    extra = socket.create_connection(('127.0.0.1', gw.amqp_port), timeout=5)
    try:
        assert extra.recv(1) == b''
    except ConnectionResetError:
        pass
    extra.close()
    wait_until(lambda: 'amqp: connection closed at once: 67 connections, 3 of them open'
               in gw.output(), what='the connection closed at once logged')
    # in their handshakes, the 64 are each told why when they open
    hello = handshake_to_open()
    for s in idle:
        s.sendall(hello)
    for s in idle:
        s.settimeout(5)
        got = b''
        while REFUSED.encode() not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        s.close()
    # the refusals came in a burst: 64 of them, at most 5 lines a second
    out = gw.output()
    assert 1 <= out.count(LOGGED) <= 15, out.count(LOGGED)
    for c in held:
        c.close()
    for c in [opens(gw) for _ in range(3)]:
        c.close()


def test_failed_logins_are_logged_at_most_twenty_a_second(gw):
    """Refused logins and connection errors are logged at most 20 times a
    second, the rest counted: the clients decide how often they fail, and
    without a limit how fast the log's disk fills."""
    bad = pika.spec.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                       response=b'\0guest\0wrong', locale='en_US')
    for _ in range(60):
        raw = RawAmqp(gw.amqp_port, handshake=False)
        raw.send_raw(b'AMQP\x00\x00\x09\x01')
        raw.expect(pika.spec.Connection.Start)
        raw.send(0, bad)
        raw.close()
    wait_until(lambda: gw.output().count('amqp: login refused') >= 20, timeout=10,
               what='the first refusals logged')
    assert gw.output().count('amqp: login refused') < 60
    # a second later, the next one logs how many were not
    wait_until(lambda: (pika_refused(gw), 'connection errors and refused logins not logged'
                        in gw.output())[1], timeout=10, what='the count of those not logged')


def pika_refused(gw):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.ConnectionParameters(
            '127.0.0.1', gw.amqp_port, connection_attempts=1,
            credentials=pika.PlainCredentials('guest', 'wrong')))
