"""TCP keepalive on every connection of ours (proto/arb_tcp.c): a peer
whose host vanished without a FIN is found by the kernel's probes, within
two minutes, rather than held for ever with what it held (an AMQP
consumer's unacknowledged deliveries, a Kestrel client's open items).

What is checked is the kernel's own state of each socket, as `ss -o`
shows it: the keepalive timer armed, and due within ARB_TCP_IDLE_S (60 s;
Linux's default is two hours). A real vanished host would take the test
two minutes to wait out; the probes themselves are the kernel's."""

import re
import socket
import subprocess

import arbiter_proto
from conftest import Broker, free_port, wait_until

IDLE_S = 60


def timers(filter_):
    """The timer of each established TCP socket that filter_ (an ss filter)
    selects: (name, seconds left), or None for a socket without one."""
    out = subprocess.run(['ss', '-tnoH', 'state', 'established', filter_], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    found = []
    for line in out.splitlines():
        # ss writes 59sec, 1min, 1min2sec, 2.224ms
        m = re.search(r'timer:\((\w+),(?:(\d+)min)?(?:([\d.]+)sec)?(?:([\d.]+)ms)?,\d+\)',
                      line)
        if not m:
            found.append(None)
            continue
        minutes, seconds, ms = (float(g or 0) for g in m.group(2, 3, 4))
        found.append((m.group(1), minutes * 60 + seconds + ms / 1000))
    return found


def armed(found):
    return found and all(t is not None and t[0] == 'keepalive' for t in found)


def assert_keepalive(filter_, what):
    """Every connection filter_ selects has its keepalive timer armed,
    once idle (while bytes are on their way, the retransmission timer
    shows instead)."""
    # the reading that showed them armed, not a second one (a heartbeat on
    # its way between two readings shows the retransmission timer)
    found = wait_until(lambda: (lambda f: f if armed(f) else None)(timers(filter_)), timeout=5,
                       what=what)
    for timer in found:
        assert timer is not None and timer[0] == 'keepalive', '%s: %r' % (what, found)
        assert timer[1] <= IDLE_S, '%s: the first probe is not due within %d s: %r' % (
            what, IDLE_S, found)


def test_the_gateways_servers_arm_keepalive_on_each_connection(broker, gateway_factory):
    gateway = gateway_factory(broker)
    for name, port in (('kestrel', gateway.kestrel_port), ('http', gateway.http_port),
                       ('amqp', gateway.amqp_port)):
        with socket.create_connection(('127.0.0.1', port), timeout=5) as client:
            mine = client.getsockname()[1]
            # the server's end of this connection, and ours (which has none:
            # Python's socket does not ask for keepalive)
            assert_keepalive('( sport = :%d and dport = :%d )' % (port, mine),
                             'the gateway\'s %s server' % name)
            assert timers('( sport = :%d and dport = :%d )' % (mine, port)) == [None]


def test_the_broker_and_its_dialling_peers_arm_keepalive(broker, gateway_factory):
    # the gateway dials the broker with the client library (client/arb_dial.c)
    gateway_factory(broker)
    dialled = '( dport = :%d )' % broker.port
    accepted = '( sport = :%d )' % broker.port
    assert_keepalive(dialled, 'the gateway\'s connections to the broker')
    assert_keepalive(accepted, 'the broker\'s accepted connections')


def test_the_brokers_zeromq_endpoint_arms_keepalive(tmp_path, processes):
    # an endpoint the loop's own listener does not serve (an interface
    # name) is the ROUTER's, libzmq's connections
    port = free_port()
    broker = Broker(tmp_path, port=port, extra=['--bind', 'tcp://lo:%d' % port])
    processes.append(broker)
    assert 'transport=zeromq' in broker.output()
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        kind, _, _, _ = peer.request('PING', {}, timeout=5)
        assert kind == 'PONG'
        assert_keepalive('( sport = :%d )' % port, 'the ROUTER\'s accepted connections')
    finally:
        peer.close()


def test_the_python_package_arms_keepalive(broker, processes, tmp_path):
    # the sync and asyncio clients and the worker (python/arbiter), each a
    # DEALER of libzmq's given the keepalive options
    from python_support import arbiter, start_py_worker
    import asyncio
    import arbiter.aio
    start_py_worker(broker, processes, tmp_path)
    sync = arbiter.Client(broker.endpoint, timeout=10.0)

    async def session():
        async with arbiter.aio.AsyncClient(broker.endpoint, timeout=10.0) as aio:
            await aio.ping()
            wait_until(lambda: len(timers('( dport = :%d )' % broker.port)) == 3, timeout=10,
                       what='the worker, the client and the asyncio client connected')
            assert_keepalive('( dport = :%d )' % broker.port, 'the Python package\'s sockets')
    try:
        sync.ping()
        asyncio.run(session())
    finally:
        sync.close()
