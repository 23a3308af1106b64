"""The gateway's listening sockets (gateway/arb_listener.c), shared by its
Kestrel and AMQP servers: address lists, optional addresses ('-'), names
that resolve to several addresses, and what happens when the process runs
out of file descriptors."""

import os
import resource
import socket
import subprocess
import time

import pika
import requests
from pymemcache.client.base import Client

from conftest import binary, free_port, wait_until

# TEST-NET-1 (RFC 5737): never an address of this machine
NOT_OURS = '192.0.2.1'


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def start_gateway(broker, *args):
    return subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                           '--broker', broker.endpoint, '--http', 'off'] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, text=True)


def test_an_optional_address_this_machine_lacks_is_skipped(gateway_factory, broker):
    amqp, kestrel = free_port(), free_port()
    g = gateway_factory(broker, '--amqp', '127.0.0.1:%d,-%s:%d' % (amqp, NOT_OURS, amqp),
                        '--kestrel', '-%s:%d, 127.0.0.1:%d' % (NOT_OURS, kestrel, kestrel),
                        '--kestrel-insecure')
    assert "amqp: not listening on optional address '%s:%d'" % (NOT_OURS, amqp) in g.output()
    assert "kestrel: not listening on optional address '%s:%d'" % (NOT_OURS, kestrel) \
        in g.output()
    c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', amqp))
    c.channel().queue_declare('optional')
    c.close()
    k = Client(('127.0.0.1', kestrel), default_noreply=False)
    assert k.set('optional', b'x')
    k.close()


def test_an_address_this_machine_lacks_stops_the_gateway(broker):
    port = free_port()
    for option in ('--amqp', '--kestrel'):
        other = '--kestrel' if option == '--amqp' else '--amqp'
        r = start_gateway(broker, other, 'off', option,
                          '127.0.0.1:%d,%s:%d' % (port, NOT_OURS, port), '--kestrel-insecure')
        assert r.returncode != 0, r.stderr
        assert 'cannot listen on %s:%d' % (NOT_OURS, port) in r.stderr, r.stderr
        # optional or not, a port in use is an error
        with socket.socket() as taken:
            taken.bind(('127.0.0.1', 0))
            taken.listen()
            used = taken.getsockname()[1]
            r = start_gateway(broker, other, 'off', option, '-127.0.0.1:%d' % used)
        assert r.returncode != 0, r.stderr
        assert 'cannot listen on 127.0.0.1:%d' % used in r.stderr, r.stderr


def test_a_port_outside_0_to_65535_stops_the_gateway(broker):
    # getaddrinfo took "99999" and the bind wrapped it: 99999 - 65536 = 34463
    port = free_port()
    for option in ('--amqp', '--kestrel'):
        other = '--kestrel' if option == '--amqp' else '--amqp'
        for address in ('127.0.0.1:99999', '127.0.0.1:65536', '-127.0.0.1:70000',
                        '127.0.0.1:%d,127.0.0.1:70000' % port, '127.0.0.1:http',
                        '127.0.0.1:-1'):
            r = start_gateway(broker, other, 'off', option, address)
            assert r.returncode == 2, (address, r.stderr)
            shown = address.split(',')[-1].lstrip('-')
            assert "%s: bad address '%s' (HOST:PORT, [IPv6]:PORT)" % (
                option[2:], shown) in r.stderr, r.stderr
            assert 'listening' not in r.stderr, r.stderr


def test_port_0_takes_a_port_the_kernel_picks(gateway_factory, broker):
    g = gateway_factory(broker, '--kestrel', '127.0.0.1:0', '--amqp', 'off')
    line = [x for x in g.output().splitlines() if 'kestrel: listening on 127.0.0.1:0' in x]
    assert line, g.output()
    port = int(line[0].rsplit('port=', 1)[1].split()[0])
    assert port > 0
    k = Client(('127.0.0.1', port), default_noreply=False)
    assert k.set('zero', b'x')
    k.close()


def test_an_http_port_in_use_stops_the_second_gateway(gateway_factory, broker):
    # SO_REUSEPORT would let both bind it and split the requests silently
    first = gateway_factory(broker)
    r = start_gateway(broker, '--kestrel', 'off', '--amqp', 'off',
                      '--http', '127.0.0.1:%d' % first.http_port)
    assert r.returncode == 1, r.stderr
    assert 'http: cannot listen on 127.0.0.1:%d: Address already in use' % first.http_port \
        in r.stderr, r.stderr
    # every request still reaches the first
    for _ in range(20):
        assert requests.get(first.url + '/metrics', timeout=10).ok
    assert first.alive()


def test_kestrel_on_both_loopbacks(gateway_factory, broker):
    port = free_port()
    gateway_factory(broker, '--kestrel', '127.0.0.1:%d,[::1]:%d' % (port, port))
    for host in ('::1', '127.0.0.1'):
        k = Client((host, port), default_noreply=False)
        assert k.set('both', host.encode())
        k.close()
    k = Client(('127.0.0.1', port), default_noreply=False)
    assert [k.get('both'), k.get('both')] == [b'::1', b'127.0.0.1']
    k.close()


def test_a_name_is_served_on_every_address_it_resolves_to(gateway_factory, broker):
    port = free_port()
    gateway_factory(broker, '--amqp', 'localhost:%d' % port)
    found = {info[4][0] for info in socket.getaddrinfo('localhost', port, type=socket.SOCK_STREAM)}
    assert found
    for host in found:
        c = pika.BlockingConnection(pika.ConnectionParameters(host, port))
        assert c.is_open
        c.close()


def test_out_of_descriptors_the_gateway_waits_instead_of_spinning(gateway_factory, broker):
    # with its descriptors used up, a listener stays readable: accepting
    # must pause, not spin, and resume once descriptors are free again
    g = gateway_factory(broker)
    pid = g.pid
    in_use = len(os.listdir('/proc/%d/fd' % pid))
    limit = in_use + 8
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    held = []
    try:
        for port in (g.amqp_port, g.kestrel_port):
            for _ in range(12):
                s = socket.create_connection(('127.0.0.1', port), timeout=5)
                held.append(s)
        time.sleep(0.5)
        before = cpu_seconds(pid)
        time.sleep(2)
        used = cpu_seconds(pid) - before
        # a spin on the readable listener costs a whole core
        assert used < 0.5, 'the gateway used %.2f s of CPU in 2 s' % used
        assert g.alive()
        assert 'out of file descriptors, not accepting for 100 ms' in g.output()
    finally:
        for s in held:
            s.close()
    # descriptors back: new clients get in on both servers
    def serves():
        try:
            c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', g.amqp_port,
                                                                  socket_timeout=2))
            c.close()
            k = Client(('127.0.0.1', g.kestrel_port), default_noreply=False, timeout=2)
            ok = k.set('after', b'1')
            k.close()
            return ok
        except Exception:
            return False
    wait_until(serves, timeout=20, what='accepting again')


def open_files_limits(pid):
    """(soft, hard) open files limit of a process."""
    with open('/proc/%d/limits' % pid) as f:
        line = next(line for line in f if line.startswith('Max open files'))
    return tuple(int(v) for v in line.split()[3:5])


def test_the_servers_take_every_descriptor_the_hard_limit_allows(tmp_path, broker):
    """Started with a soft limit of 256 open files (a shell's is often
    1,024), the broker and the gateway raise it to the hard limit: every
    connection is a descriptor. Before, a broker started by hand stopped
    accepting at about a thousand clients and workers."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard > 256

    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    port = free_port()
    servers = [
        subprocess.Popen([binary('broker', 'arbiterd'), '--bind', 'tcp://127.0.0.1:%d' % port,
                          '--db', str(tmp_path / 'low.db')], preexec_fn=low,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                          '--broker', broker.endpoint, '--http', 'off', '--amqp', 'off',
                          '--kestrel', '127.0.0.1:%d' % free_port()], preexec_fn=low,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for server in servers:
            wait_until(lambda: open_files_limits(server.pid) == (hard, hard), timeout=10,
                       what='the limit raised')
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
