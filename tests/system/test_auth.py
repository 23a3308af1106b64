"""Authentication and roles (README.md, "Securing the broker"; PROTOCOL.md,
"Authentication and roles"): a broker started with --curve admits only the
certificates of its allowed folder and lets each do what its role permits;
every peer (the CLI, arbiter-worker, arbiter-gateway, the Python client and
worker, a raw protocol peer) connects with a certificate; a peer that
cannot connect says why; without --curve only loopback is bound unless
--insecure."""

import asyncio
import json
import os
import pathlib
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import types

import pytest
import requests
import zmq.auth

import arbiter_proto
from conftest import Broker, Gateway, Process, binary, free_port, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                                'python'))
import arbiter  # noqa: E402
import arbiter.aio  # noqa: E402

ROLES = {'alice': 'client', 'wendy': 'worker', 'root': 'admin'}


class Certs:
    """Certificates made with `arbiter keygen` in tmp/keys; the broker's
    folder is tmp/curve (its allowed/ gets the public halves)."""

    def __init__(self, tmp_path):
        self.keys = tmp_path / 'keys'
        self.keys.mkdir()
        self.curve = tmp_path / 'curve'
        (self.curve / 'allowed').mkdir(parents=True)

    def make(self, name, role, allow=True):
        proc = cli('keygen', name, '--role', role, '--dir', str(self.keys))
        assert proc.returncode == 0, proc.stderr
        if allow:
            self.allow(name)
        return str(self.keys / (name + '.cert_secret'))

    def allow(self, name):
        target = self.curve / 'allowed' / (name + '.cert')
        target.write_bytes((self.keys / (name + '.cert')).read_bytes())

    def secret(self, name):
        return str(self.keys / (name + '.cert_secret'))

    @property
    def broker_cert(self):
        return str(self.curve / 'broker.cert')

    def broker_key(self):
        return zmq.auth.load_certificate(self.broker_cert)[0].decode()

    def peer_keys(self, name):
        public, secret = zmq.auth.load_certificate(self.secret(name))
        return public, secret, self.broker_key().encode()


class CurveBroker(Broker):
    """arbiterd --curve; ready once an admin's PING is answered."""

    def __init__(self, tmp_path, certs, extra=(), port=None):
        self.certs = certs
        self.curve_extra = list(extra)
        super().__init__(tmp_path, port=port, extra=['--curve', str(certs.curve)] + list(extra))

    def restart(self):
        """A new broker process on the same port, journal and folder."""
        return CurveBroker(self.tmp_path, self.certs, self.curve_extra, port=self.port)

    def wait_ready(self, timeout=20):
        # its key is written (at the first start) before it listens
        wait_until(lambda: 'broker: listening' in self.own_output() or not self.alive(),
                   timeout=timeout, what='the broker listening')
        assert self.alive(), 'arbiterd exited:\n' + self.output()
        peer = self.peer('root')
        try:
            kind, _, body, _ = peer.request('PING', {}, timeout=timeout)
            assert kind == 'PONG'
            self.epoch = body['epoch']
        finally:
            peer.close()

    def peer(self, name):
        return arbiter_proto.Peer(self.endpoint, curve=self.certs.peer_keys(name))


def cli(*args, env=None, timeout=60):
    return subprocess.run([binary('client', 'arbiter')] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


@pytest.fixture
def certs(tmp_path):
    c = Certs(tmp_path)
    for name, role in ROLES.items():
        c.make(name, role)
    return c


@pytest.fixture
def curve_broker(tmp_path, processes, certs):
    b = CurveBroker(tmp_path, certs, extra=['--heartbeat-ms', '200', '--liveness-ms', '1000'])
    processes.append(b)
    return b


def as_peer(broker, name, *args, timeout=60):
    """The CLI as the peer of that certificate."""
    return cli('--broker', broker.endpoint, '--cert', broker.certs.secret(name), '--broker-key',
               broker.certs.broker_cert, *args, timeout=timeout)


def refused(peer, kind, body, frames=()):
    """The broker's 403 to a request, its reason."""
    got, _, reply, _ = peer.request(kind, body, frames)
    assert got == 'ERROR' and reply['code'] == 403, (got, reply)
    return reply['reason']


def start_worker(broker, processes, tmp_path, name, command='tr a-z A-Z', *extra):
    args = [binary('worker', 'arbiter-worker'), '--broker', broker.endpoint, '--cert',
            broker.certs.secret(name), '--broker-key', broker.certs.broker_key(),
            '--exec', command] + list(extra)
    worker = Process(args, str(tmp_path / ('worker-%s-%d.log' % (name, len(processes)))))
    processes.append(worker)
    return worker


# ---------------------------------------------------------------------------
# Who gets in


# A refused handshake ends a call at once, well before its timeout (which
# is long here, so that only the refusal can end it in time). 30 s: a
# sanitized run on a machine loaded four times over its cores once took
# 10.4 s, from the process's start to its end, to be refused (the refusal
# it printed, not the timeout's message); a run that waits for the timeout
# still fails, since half of it is the bound.
RPC_TIMEOUT_MS = 30000


def timed(run, *args, **kwargs):
    """run(*args, **kwargs) and the seconds it took."""
    start = time.monotonic()
    result = run(*args, **kwargs)
    return result, time.monotonic() - start


def refused_at_once(elapsed):
    return elapsed < RPC_TIMEOUT_MS / 1000 / 2


def test_a_client_without_a_certificate_gets_no_service_and_is_told_why(curve_broker):
    proc, elapsed = timed(cli, '--broker', curve_broker.endpoint, '--rpc-timeout',
                          str(RPC_TIMEOUT_MS), 'ping')
    assert proc.returncode == 1
    assert 'refused the connection: the broker requires CURVE' in proc.stderr, proc.stderr
    assert '--cert and --broker-key' in proc.stderr
    assert refused_at_once(elapsed), elapsed
    peer = arbiter_proto.Peer(curve_broker.endpoint)  # a raw peer hears nothing at all
    try:
        with pytest.raises(TimeoutError):
            peer.request('STATS', {}, timeout=1)
    finally:
        peer.close()


def test_a_certificate_not_allowed_and_a_wrong_broker_key_are_said(curve_broker, certs):
    certs.make('eve', 'admin', allow=False)
    proc, elapsed = timed(as_peer, curve_broker, 'eve', '--rpc-timeout', str(RPC_TIMEOUT_MS),
                          'ping')
    assert proc.returncode == 1
    assert "refused the connection: the broker refused this peer's certificate (ZAP 400)" \
        in proc.stderr, proc.stderr
    assert refused_at_once(elapsed), elapsed
    # a wait, too, ends at once
    proc, elapsed = timed(as_peer, curve_broker, 'eve', '--rpc-timeout', str(RPC_TIMEOUT_MS),
                          'wait', '1')
    assert proc.returncode == 1
    assert "the broker refused this peer's certificate" in proc.stderr, proc.stderr
    assert refused_at_once(elapsed), elapsed
    # the key of another certificate instead of the broker's
    other = zmq.auth.load_certificate(certs.secret('alice'))[0].decode()
    proc, elapsed = timed(cli, '--broker', curve_broker.endpoint, '--cert', certs.secret('root'),
                          '--broker-key', other, '--rpc-timeout', str(RPC_TIMEOUT_MS), 'ping')
    assert proc.returncode == 1
    assert "is the broker key this broker's public key" in proc.stderr, proc.stderr
    assert refused_at_once(elapsed), elapsed
    # a certificate for a broker that runs without --curve
    plain = Broker(curve_broker.tmp_path, db=str(curve_broker.tmp_path / 'plain.db'))
    try:
        proc, elapsed = timed(cli, '--broker', plain.endpoint, '--cert', certs.secret('root'),
                              '--broker-key', certs.broker_cert, '--rpc-timeout',
                              str(RPC_TIMEOUT_MS), 'ping')
        assert proc.returncode == 1
        # which side notices first is a race: either is said
        assert ('the broker does not use CURVE' in proc.stderr
                or 'does the broker run with --curve?' in proc.stderr), proc.stderr
        assert refused_at_once(elapsed), elapsed
    finally:
        plain.stop()


def test_a_worker_the_broker_refuses_stops_at_once_saying_why(curve_broker, certs, processes,
                                                               tmp_path):
    certs.make('mallory', 'worker', allow=False)
    bare = [binary('worker', 'arbiter-worker'), '--broker', curve_broker.endpoint,
            '--connect-timeout', str(RPC_TIMEOUT_MS // 1000), '--exec', 'cat']
    for args, why in [
            # no certificate (its own ZMTP connection), then one not allowed (a DEALER)
            ([], 'the broker requires CURVE'),
            (['--cert', certs.secret('mallory'), '--broker-key', certs.broker_cert],
             "the broker refused this peer's certificate (ZAP 400)")]:
        start = time.monotonic()
        worker = Process(bare + args, str(tmp_path / ('refused-%d.log' % len(processes))))
        processes.append(worker)
        assert worker.proc.wait(RPC_TIMEOUT_MS / 1000 * 2) == 1, worker.output()
        assert refused_at_once(time.monotonic() - start), worker.output()
        assert 'the broker refused the connection, giving up' in worker.output()
        assert why in worker.output(), worker.output()


def test_nothing_listening_is_said_so_and_a_silent_broker_times_out(tmp_path):
    """No connection at all (nothing listens): the error says the broker
    cannot be reached, not that it did not answer; a peer that takes the
    connection and says nothing: the timeout says so, as before."""
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    proc = cli('--broker', endpoint, '--rpc-timeout', '300', 'ping')
    assert proc.returncode == 1
    assert ('cannot reach the broker at %s: no connection within 0.3 s (is arbiterd running '
            'there?)' % endpoint) in proc.stderr, proc.stderr
    assert 'refused' not in proc.stderr, proc.stderr
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(4)
    try:
        endpoint = 'tcp://127.0.0.1:%d' % silent.getsockname()[1]
        proc = cli('--broker', endpoint, '--rpc-timeout', '300', 'ping')
    finally:
        silent.close()
    assert proc.returncode == 1
    assert 'broker %s did not answer within 0.3 s' % endpoint in proc.stderr, proc.stderr


class NotABroker:
    """A loopback server that answers every connection with these bytes
    (an HTTP server's 400, or garbage) once the peer's first ones came."""

    def __init__(self, answer):
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', free_port()))
        self.listener.listen(16)
        self.endpoint = 'tcp://127.0.0.1:%d' % self.listener.getsockname()[1]
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn = self.listener.accept()[0]
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(64)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close would not)
        self.thread.join(timeout=10)
        self.listener.close()


def test_a_port_that_is_not_an_arbiterd_is_named(tmp_path, processes):
    """--broker at a port that answers, but not ZMTP (an HTTP server, the
    gateway's own Kestrel port, garbage): the gateway, the worker and the
    CLI name the address and say it does not look like an arbiterd. The
    gateway and the worker said only 'not a ZMTP 3 greeting', or, for a
    port that holds the connection silently, nothing."""
    hint = 'does not look like an arbiterd'
    servers = [NotABroker(b'HTTP/1.0 400 Bad Request\r\n\r\n'), NotABroker(b'\x01garbage' * 8)]
    try:
        # all at once: the worker says why at its first warning, 2 s in
        peers = []
        for server in servers:
            gw = Gateway(tmp_path, server, ['--kestrel', 'off', '--http', 'off', '--amqp', 'off'])
            worker = Process([binary('worker', 'arbiter-worker'), '--config', os.devnull,
                              '--broker', server.endpoint, '--exec', 'cat'],
                             str(tmp_path / ('worker-%d.log' % len(processes))))
            processes.extend([gw, worker])
            peers += [(server, gw), (server, worker)]
        for server in servers:
            proc = cli('--broker', server.endpoint, '--rpc-timeout', '300', 'ping')
            assert proc.returncode == 1 and hint in proc.stderr, proc.stderr
        for server, peer in peers:
            said = '%s %s' % (server.endpoint, hint)
            wait_until(lambda: said in peer.output(), timeout=15, what='the hint')
            assert peer.stop() == 0, peer.output()
    finally:
        for server in servers:
            server.close()
    # the gateway's own Kestrel port, which waits for a line: silence
    kestrel = free_port()
    gw = Gateway(tmp_path, types.SimpleNamespace(endpoint='tcp://127.0.0.1:%d' % kestrel),
                 ['--http', 'off', '--amqp', 'off', '--kestrel', '127.0.0.1:%d' % kestrel])
    processes.append(gw)
    wait_until(lambda: 'tcp://127.0.0.1:%d %s' % (kestrel, hint) in gw.output(), timeout=15,
               what='the hint')


def test_cert_options_and_variables_are_checked_before_anything_is_sent(curve_broker, certs):
    proc = as_peer(curve_broker, 'alice', 'ping')
    assert proc.returncode == 0, proc.stderr
    # the same from the environment, the key given as its text
    env = {'ARBITER_CERT': certs.secret('alice'), 'ARBITER_BROKER_KEY': certs.broker_key()}
    proc = cli('--broker', curve_broker.endpoint, 'ping', env=env)
    assert proc.returncode == 0, proc.stderr
    proc = cli('--broker', curve_broker.endpoint, '--cert', certs.secret('alice'), 'ping')
    assert proc.returncode == 2
    assert "--cert is given but not the broker's key" in proc.stderr
    proc = cli('--broker', curve_broker.endpoint, '--cert', str(certs.keys / 'alice.cert'),
               '--broker-key', 'not-a-key', 'ping')
    assert proc.returncode == 2
    assert "--broker-key: 'not-a-key' is neither the broker's public key" in proc.stderr
    # a public certificate alone is no certificate to connect with
    (certs.keys / 'lonely.cert').write_bytes((certs.keys / 'alice.cert').read_bytes())
    proc = cli('--broker', curve_broker.endpoint, '--cert', str(certs.keys / 'lonely.cert'),
               '--broker-key', certs.broker_cert, 'ping')
    assert proc.returncode == 2 and 'holds no secret key' in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------
# What each role may do


def test_a_client_submits_and_waits_but_cannot_purge(curve_broker, processes, tmp_path):
    start_worker(curve_broker, processes, tmp_path, 'wendy')
    proc = as_peer(curve_broker, 'alice', 'submit', 'upper', 'hello')
    assert proc.returncode == 0, proc.stderr
    task = proc.stdout.strip()
    proc = as_peer(curve_broker, 'alice', 'wait', task)
    assert proc.returncode == 0 and proc.stdout == 'HELLO', proc.stderr
    proc = as_peer(curve_broker, 'alice', 'status', task)
    assert proc.returncode == 0, proc.stderr
    proc = as_peer(curve_broker, 'alice', '--json', 'queue', 'purge', 'default', '--yes')
    assert proc.returncode == 1
    error = json.loads(proc.stderr.splitlines()[-1])
    assert error['code'] == 403
    assert error['error'] == ('queue: QUEUE needs an admin certificate; this peer\'s '
                              'certificate has the role client')
    # a task by its id, yes; a whole queue, no
    proc = as_peer(curve_broker, 'alice', 'cancel', '--queue', 'default')
    assert proc.returncode == 1 and 'CANCEL by queue or group needs an admin' in proc.stderr
    for verb in (['retry', task], ['delete', task], ['peek', 'default'],
                 ['schedule', 'list'], ['limit', 'upper', '--max-running', '2']):
        proc = as_peer(curve_broker, 'alice', *verb)
        # refused: nothing on stdout, not even a table's header
        assert proc.returncode == 1 and proc.stdout == '', (verb, proc.stdout, proc.stderr)
        assert 'needs an admin certificate' in proc.stderr, (verb, proc.stderr)
    proc = as_peer(curve_broker, 'wendy', 'list')
    assert proc.returncode == 1 and proc.stdout == '', (proc.stdout, proc.stderr)
    assert 'LIST needs a client or admin certificate' in proc.stderr, proc.stderr
    # answered: the header, even over no rows
    proc = as_peer(curve_broker, 'root', 'peek', 'empty')
    assert proc.returncode == 0 and proc.stdout.split()[:2] == ['ID', 'NAME'], proc.stdout


def test_a_client_cannot_register_or_send_results(curve_broker, processes, tmp_path):
    peer = curve_broker.peer('alice')
    try:
        assert 'REGISTER needs a worker or admin certificate' in refused(
            peer, 'REGISTER', {'name': 'sneaky', 'slots': 1})
        assert 'has the role client' in refused(
            peer, 'RESULT', {'results': [{'id': 1, 'lease': 1, 'outcome': 0}]}, [b'forged'])
        assert 'needs a worker or admin' in refused(peer, 'TAKE', {'queue': 'default'})
    finally:
        peer.close()
    # arbiter-worker with a client's certificate stops, saying why
    worker = start_worker(curve_broker, processes, tmp_path, 'alice')
    assert worker.proc.wait(20) == 1
    assert 'the broker refused to register this worker: REGISTER needs a worker or admin' \
        in worker.output()


def test_a_worker_runs_tasks_but_cannot_purge_or_submit(curve_broker, processes, tmp_path):
    start_worker(curve_broker, processes, tmp_path, 'wendy', 'rev')
    admin = curve_broker.peer('root')
    peer = curve_broker.peer('wendy')
    try:
        kind, _, body, _ = admin.request('SUBMIT', {'watch': True, 'tasks': [{'name': 'r'}]},
                                         [b'abc'])
        assert kind == 'SUBMITTED'
        done = admin.next_of('DONE', timeout=20)
        assert done[2]['tasks'][0]['state'] == 5 and done[3] == [b'cba']
        assert 'QUEUE needs an admin certificate; this peer\'s certificate has the role ' \
               'worker' == refused(peer, 'QUEUE', {'queue': 'default', 'op': 'purge'})
        assert 'SUBMIT needs a client or admin' in refused(
            peer, 'SUBMIT', {'tasks': [{'name': 'x'}]}, [b''])
        kind, _, _, _ = peer.request('PING', {})
        assert kind == 'PONG'
    finally:
        admin.close()
        peer.close()


def test_an_admin_can_do_everything(curve_broker):
    admin = curve_broker.peer('root')
    try:
        kind, _, welcome, _ = admin.request('REGISTER', {'name': 'admin-worker', 'slots': 1})
        assert kind == 'WELCOME'
        kind, _, body, _ = admin.request('SUBMIT', {'tasks': [{'name': 'a', 'queue': 'q'}]},
                                         [b'x'])
        assert kind == 'SUBMITTED'
        task = body['tasks'][0]['id']
        for kind, body, want in [
                ('STATUS', {'ids': [task]}, 'STATUS_REPLY'),
                ('PEEK', {'queue': 'q'}, 'PEEK_REPLY'),
                ('QUEUE', {'queue': 'q', 'op': 'pause'}, 'OK'),
                ('QUEUE', {'queue': 'q', 'op': 'resume'}, 'OK'),
                ('META', {'op': 'set', 'key': 'k', 'value': b'v'}, 'META_REPLY'),
                ('LIMIT', {'name': 'a', 'max_running': 3}, 'OK'),
                ('CANCEL', {'queue': 'q'}, 'CANCEL_REPLY'),
                ('RETRY', {'ids': [task]}, 'RETRY_REPLY'),
                ('DELETE', {'ids': [task]}, 'DELETE_REPLY'),
                ('QUEUE', {'queue': 'q', 'op': 'purge'}, 'OK'),
                ('SCHEDULE', {'op': 'list'}, 'SCHEDULE_REPLY'),
                ('STATS', {}, 'STATS_REPLY')]:
            got, _, reply, _ = admin.request(kind, body, [b''] if kind == 'SCHEDULE' else [])
            assert got == want, (kind, reply)
    finally:
        admin.close()


def test_roles_follow_the_allowed_folder_for_connected_peers_too(curve_broker, certs):
    peer = curve_broker.peer('alice')
    try:
        assert 'has the role client' in refused(peer, 'QUEUE', {'queue': 'q', 'op': 'pause'})
        # promoted: the same connection may now
        allowed = certs.curve / 'allowed' / 'alice.cert'
        allowed.write_text(allowed.read_text().replace('role = "client"', 'role = "admin"'))
        wait_until(lambda: peer.request('QUEUE', {'queue': 'q', 'op': 'pause'})[0] == 'OK',
                   what='the new role counted')
        # removed: the same connection may do nothing any more
        allowed.unlink()
        wait_until(lambda: peer.request('PING', {})[0] == 'ERROR', what='the removal counted')
        assert 'no longer among the broker\'s allowed certificates' in refused(peer, 'PING', {})
    finally:
        peer.close()
    # a certificate added now gets in at once
    certs.make('newcomer', 'client')
    proc = as_peer(curve_broker, 'newcomer', 'ping')
    assert proc.returncode == 0, proc.stderr
    # one without a role may do nothing, and the broker says so
    certs.make('nobody', 'client', allow=False)
    text = (certs.keys / 'nobody.cert').read_text().replace('    role = "client"\n', '')
    (certs.curve / 'allowed' / 'nobody.cert').write_text(text)
    proc = as_peer(curve_broker, 'nobody', 'ping')
    assert proc.returncode == 1
    assert "this peer's certificate has no role the broker knows" in proc.stderr
    wait_until(lambda: 'certificate without a role the broker knows' in curve_broker.output(),
               what='the log about it')


def drained(peer, quiet=0.5):
    """The types of the messages peer receives until it has heard nothing
    for quiet seconds."""
    kinds = [msg[0] for msg in peer.pending]
    peer.pending = []
    while True:
        try:
            kinds.append(peer.recv(timeout=quiet)[0])
        except TimeoutError:
            return kinds


def test_a_removed_certificate_ends_what_its_connected_peers_held(curve_broker, certs):
    """A worker whose certificate is removed is shut out at the next read
    of allowed/: the broker sends it nothing more, and its lease goes back
    (not lost) once it has been silent for the liveness window (what it
    sends is refused and renews nothing), not at once: it may still run the
    task until it is told, 403, and stops. A client's watches and events
    go at once."""
    certs.make('walt', 'worker')
    worker, client = curve_broker.peer('wendy'), curve_broker.peer('alice')
    admin, other = curve_broker.peer('root'), curve_broker.peer('walt')
    try:
        assert worker.request('REGISTER', {'name': 'shut', 'slots': 2})[0] == 'WELCOME'
        worker.send('CREDIT', {'queues': ['q'], 'credit': 2})
        kind, _, body, _ = admin.request('SUBMIT', {'tasks': [{'name': 'a', 'queue': 'q'}]},
                                         [b'x'])
        task = body['tasks'][0]['id']
        assert worker.next_of('DISPATCH', timeout=10)[2]['tasks'][0]['id'] == task
        assert client.request('WATCH', {'ids': [task]})[0] == 'WATCHING'
        assert client.request('EVENTS', {'queue': 'q'})[0] == 'OK'
        for name in ('wendy', 'alice'):
            (certs.curve / 'allowed' / (name + '.cert')).unlink()
        wait_until(lambda: all(re.search('peer shut out.* name=%s ' % name,
                                         curve_broker.output())
                               for name in ('wendy', 'alice')),
                   what='the peers shut out')
        log = curve_broker.output()
        assert 'worker=shut leases=1 watches=0 events=no' in log, log
        assert 'worker=- leases=0 watches=1 events=yes' in log, log
        assert 'worker lost' not in log
        drained(worker), drained(client)
        # what it sends now is refused and renews nothing
        assert 'no longer among the broker\'s allowed' in refused(worker, 'HEARTBEAT', {})
        # the lease goes back once it is silent for the liveness window (1 s
        # here), not lost: another worker runs the task
        assert other.request('REGISTER', {'name': 'other', 'slots': 1})[0] == 'WELCOME'
        other.send('CREDIT', {'queues': ['q'], 'credit': 1})
        again = other.next_of('DISPATCH', timeout=10)[2]['tasks'][0]
        assert 'worker shut out went silent, its leases go back (none lost) name=shut ' \
            'leases=1' in curve_broker.output()
        assert again['id'] == task
        other.send('RESULT', {'results': [{'id': task, 'lease': again['lease']}]}, [b'done'])
        wait_until(lambda: admin.request('STATUS', {'ids': [task]})[2]['tasks'][0]['state']
                   == 5, what='the task done')
        info = admin.request('STATUS', {'ids': [task]})[2]['tasks'][0]
        assert info.get('lost', 0) == 0 and info['attempts'] == 1, info
        # nothing more for the peers shut out: no DISPATCH, HEARTBEAT, DONE or EVENT
        assert drained(worker) == [] and drained(client) == []
        assert 'no longer among the broker\'s allowed' in refused(worker, 'PING', {})
    finally:
        for peer in (worker, client, admin, other):
            peer.close()


def test_a_worker_shut_out_stops_its_task_before_another_runs_it(curve_broker, certs,
                                                                processes, tmp_path):
    """arbiter-worker whose certificate is removed while it runs a task:
    told 403, it stops the task and exits 1, saying why; the broker gives
    the task to another worker only after the liveness window, so the two
    runs never overlap (each notes its start and end in a file)."""
    certs.make('walt', 'worker')
    marks = tmp_path / 'marks'
    marks.mkdir()
    command = ('echo "start $$ $(date +%%s.%%N)" >> %s/$ARBITER_TASK_ID.$$; sleep 6; '
               'echo "end $$ $(date +%%s.%%N)" >> %s/$ARBITER_TASK_ID.$$' % (marks, marks))
    first = start_worker(curve_broker, processes, tmp_path, 'wendy', command, '--queue', 'sq')
    admin = curve_broker.peer('root')
    try:
        kind, _, body, _ = admin.request('SUBMIT', {'tasks': [{'name': 'long', 'queue': 'sq'}]},
                                         [b''])
        task = body['tasks'][0]['id']
        wait_until(lambda: list(marks.iterdir()), timeout=20, what='the first run started')
        (certs.curve / 'allowed' / 'wendy.cert').unlink()
        assert first.proc.wait(20) == 1
        assert 'the broker shut this worker out, stopping its tasks' in first.output()
        stopped = time.time()
        # the second run need not last (the test's end would wait for it)
        start_worker(curve_broker, processes, tmp_path, 'walt',
                     command.replace('sleep 6;', 'sleep 0;'), '--queue', 'sq')
        # each run's words: start PID TIME [end PID TIME]; the first never
        # ended. A run's file is there (the shell's >>) before its start line.
        def runs():
            found = [path.read_text().split() for path in marks.iterdir()]
            return found if len(found) == 2 and all(len(w) >= 3 for w in found) else None
        first_run, second_run = sorted(wait_until(runs, timeout=20, what='the second run'),
                                       key=lambda words: float(words[2]))
        assert len(first_run) == 3, first_run
        # the second run started after the first worker had stopped its task
        assert float(second_run[2]) >= stopped - 0.5, (first_run, second_run)
        assert not os.path.exists('/proc/%s' % first_run[1]), 'the first run still runs'
        info = admin.request('STATUS', {'ids': [task]})[2]['tasks'][0]
        assert info.get('lost', 0) == 0, info
    finally:
        admin.close()


def test_wait_and_events_end_with_the_reason_when_the_certificate_goes(curve_broker, certs,
                                                                        tmp_path):
    """`arbiter wait` and `arbiter events` of a certificate removed while
    they run: the broker refuses their keep-alive (403), and they say its
    reason and fail, not wait on in silence."""
    admin = curve_broker.peer('root')
    tails = []
    try:
        kind, _, body, _ = admin.request('SUBMIT', {'tasks': [{'name': 'a', 'queue': 'q'}]},
                                         [b'x'])
        task = body['tasks'][0]['id']
        for verb in (['wait', str(task)], ['events', '--queue', 'e']):
            out = tmp_path / ('%s.out' % verb[0])
            tails.append((subprocess.Popen(
                [binary('client', 'arbiter'), '--broker', curve_broker.endpoint, '--cert',
                 certs.secret('alice'), '--broker-key', certs.broker_cert] + verb,
                stdout=out.open('w'), stderr=subprocess.PIPE, text=True), out))
        # both listen: the wait's watch counted, an event of queue e printed
        wait_until(lambda: admin.request('STATS', {})[2].get('watches', 0) >= 1, what='the wait')
        wait_until(lambda: admin.request('SUBMIT', {'tasks': [{'name': 'e', 'queue': 'e'}]},
                                         [b''])
                   and ' e/e ' in tails[1][1].read_text(), interval=0.3, what='an event printed')
        (certs.curve / 'allowed' / 'alice.cert').unlink()
        for tail, _ in tails:
            _, err = tail.communicate(timeout=30)
            assert tail.returncode == 1, err
            assert 'no longer among the broker\'s allowed certificates' in err, err
            assert 'has not answered' not in err, err
    finally:
        for tail, _ in tails:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
        admin.close()


# ---------------------------------------------------------------------------
# The other peers


def test_the_gateway_connects_with_a_certificate(curve_broker, certs, processes, tmp_path):
    certs.make('gw', 'admin')
    # its own copy, given by $ARBITER_CERT (the certificate's other source)
    own = tmp_path / 'gw.cert_secret'
    own.write_bytes(pathlib.Path(certs.secret('gw')).read_bytes())
    os.environ['ARBITER_CERT'] = str(own)
    try:
        gw = Gateway(tmp_path, curve_broker, ['--broker-key', certs.broker_cert], wait=False)
    finally:
        del os.environ['ARBITER_CERT']
    processes.append(gw)
    wait_until(gw.ready, timeout=20, what='gateway up')
    with socket.create_connection(('127.0.0.1', gw.kestrel_port), timeout=10) as k:
        k.sendall(b'set jobs 0 0 5\r\nhello\r\n')
        assert k.recv(100) == b'STORED\r\n'
    # the certificate was read once, at the start: its file removed, and
    # the broker restarted so that the gateway connects again, it serves on
    own.unlink()
    curve_broker.kill9()
    again = curve_broker.restart()
    processes.append(again)
    wait_until(lambda: gw.output().count('gateway: broker session up') == 2, timeout=20,
               what='the session up again')
    reply = requests.get(gw.url + '/api/v1/queues/jobs', timeout=10)
    assert reply.status_code == 200, (reply.status_code, reply.text)
    assert gw.alive(), gw.output()
    # without one it never gets up, and says why
    bare = Gateway(tmp_path, curve_broker, ['--kestrel', 'off', '--http', 'off'])
    processes.append(bare)
    wait_until(lambda: 'the broker requires CURVE' in bare.output(), timeout=30,
               what='the gateway saying why')
    assert 'broker session up' not in bare.output()
    # one whose certificate is not an admin's says so once, naming it, and
    # stops: a client's REGISTER is refused, a worker's META; also when it
    # serves HTTP alone, which asks the broker nothing until a client
    # comes (it came up, and stopped at its first HTTP client)
    for name, refused_what, extra in (
            ('alice', 'REGISTER needs a worker or admin', []),
            ('wendy', 'META needs an admin', []),
            ('wendy', 'META needs an admin', ['--kestrel', 'off', '--amqp', 'off'])):
        weak = Gateway(tmp_path, curve_broker, ['--cert', certs.secret(name), '--broker-key',
                                                certs.broker_cert] + extra)
        processes.append(weak)
        assert weak.proc.wait(30) == 1, weak.output()
        out = weak.output()
        assert out.count('The gateway needs an admin certificate (cert=%s)'
                         % certs.secret(name)) == 1, out
        assert refused_what in out, out
        assert 'link: broker error code=403' not in out, out


def test_a_gateway_shut_out_stops_before_the_broker_gives_back_what_it_held(
        curve_broker, certs, processes, tmp_path):
    """The gateway's admin certificate removed while a Kestrel client holds
    an item open (a lease of the gateway's session): the broker refuses the
    session's next heartbeat (403), and the gateway stops at once, its
    connections with it, rather than hold the item on past the broker's
    liveness window, when the broker gives it to another. The item comes
    back, none lost. Before: the gateway logged the 403 and went on."""
    certs.make('gw', 'admin')
    certs.make('gw2', 'admin')
    gw = Gateway(tmp_path, curve_broker, ['--cert', certs.secret('gw'), '--broker-key',
                                          certs.broker_cert, '--amqp', 'off'])
    processes.append(gw)
    wait_until(gw.ready, timeout=20, what='gateway up')
    with socket.create_connection(('127.0.0.1', gw.kestrel_port), timeout=10) as k:
        k.sendall(b'set jobs 0 0 5\r\nhello\r\n')
        assert k.recv(100) == b'STORED\r\n'
        k.sendall(b'get jobs/open\r\n')
        assert b'hello' in k.recv(100)
        (certs.curve / 'allowed' / 'gw.cert').unlink()
        assert gw.proc.wait(10) == 1, gw.output()
        assert k.recv(100) == b'', 'the connection outlived the gateway'
    out = gw.output()
    assert "the broker refused the gateway's session" in out, out
    assert 'link: broker error code=403' not in out, out
    again = Gateway(tmp_path, curve_broker, ['--cert', certs.secret('gw2'), '--broker-key',
                                             certs.broker_cert, '--amqp', 'off'])
    processes.append(again)
    wait_until(again.ready, timeout=20, what='the second gateway up')
    with socket.create_connection(('127.0.0.1', again.kestrel_port), timeout=10) as k:

        def got_it():
            k.sendall(b'get jobs/t=500\r\n')
            return k.recv(100)

        assert b'hello' in wait_until(lambda: (lambda r: r if r != b'END\r\n' else None)(
            got_it()), timeout=20, what='the item back')


def test_python_client_and_worker_connect_with_certificates(curve_broker, certs, processes,
                                                             tmp_path):
    app = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'python_worker_app.py')
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(arbiter.__file__), '..'),
               RUNS=str(tmp_path), ARBITER_CERT=certs.secret('wendy'),
               ARBITER_BROKER_KEY=certs.broker_cert)
    processes.append(Process([sys.executable, app, curve_broker.endpoint],
                             str(tmp_path / 'pyworker.log'), env=env))
    c = arbiter.Client(curve_broker.endpoint, cert=certs.secret('alice'),
                       broker_key=certs.broker_key())
    try:
        t = c.submit('upper', b'hi')
        assert c.wait(t, timeout=30).state is arbiter.State.SUCCEEDED
        with pytest.raises(arbiter.Forbidden) as refusal:
            c.purge('default')
        assert refusal.value.code == 403 and 'has the role client' in str(refusal.value)
    finally:
        c.close()
    # refused at once, well before its timeout, saying why
    certs.make('trudy', 'client', allow=False)
    for kwargs, why in [({}, 'the broker requires CURVE'),
                        ({'cert': certs.secret('trudy'), 'broker_key': certs.broker_key()},
                         "the broker refused this peer's certificate (ZAP 400)")]:
        refused_client = arbiter.Client(curve_broker.endpoint, timeout=RPC_TIMEOUT_MS / 1000,
                                        **kwargs)
        try:
            start = time.monotonic()
            with pytest.raises(arbiter.Refused) as refusal:
                refused_client.ping()
            assert refused_at_once(time.monotonic() - start)
            assert isinstance(refusal.value, arbiter.Unreachable)
            assert 'refused the connection: ' + why in str(refusal.value), str(refusal.value)
            start = time.monotonic()  # a wait too
            with pytest.raises(arbiter.Refused):
                refused_client.wait(1)
            assert refused_at_once(time.monotonic() - start)
        finally:
            refused_client.close()

        async def refused_async():
            async with arbiter.aio.AsyncClient(curve_broker.endpoint,
                                               timeout=RPC_TIMEOUT_MS / 1000, **kwargs) as client:
                for _ in range(2):  # the second asks the watcher before it sends
                    start = time.monotonic()
                    with pytest.raises(arbiter.Refused) as refusal:
                        await client.ping()
                    assert refused_at_once(time.monotonic() - start)
                    assert 'refused the connection: ' + why in str(refusal.value)
        asyncio.run(refused_async())

        # the worker stops at once, whatever its connect timeout
        worker = arbiter.Worker(endpoint=curve_broker.endpoint,
                                connect_timeout=RPC_TIMEOUT_MS / 1000, **kwargs)
        worker.handle('upper', lambda job: job.payload.upper())
        start = time.monotonic()
        with pytest.raises(arbiter.Refused) as refusal:
            worker.run()
        assert refused_at_once(time.monotonic() - start)
        assert 'refused the connection: ' + why in str(refusal.value)
    with pytest.raises(ValueError, match="cert is given but not the broker's key"):
        arbiter.Client(curve_broker.endpoint, cert=certs.secret('alice'))


def test_a_python_worker_shut_out_stops_its_task_and_says_so(curve_broker, certs):
    """The Python worker whose certificate is removed while a task runs:
    told 403, it cancels the task (nothing reported) and run raises
    Forbidden, as arbiter-worker exits 1."""
    certs.make('pete', 'worker')
    worker = arbiter.Worker(endpoint=curve_broker.endpoint, cert=certs.secret('pete'),
                            broker_key=certs.broker_key(), queues=['pq'])
    seen = {}
    started = threading.Event()

    def hold(job):
        started.set()
        deadline = time.monotonic() + 30
        while not job.cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
        seen['cancelled'] = job.cancelled
        return 'late'
    worker.handle('hold', hold)
    outcome = {}

    def run():
        try:
            worker.run()
        except arbiter.ArbiterError as e:
            outcome['error'] = e
    thread = threading.Thread(target=run)
    thread.start()
    admin = curve_broker.peer('root')
    try:
        admin.request('SUBMIT', {'tasks': [{'name': 'hold', 'queue': 'pq'}]}, [b''])
        assert started.wait(20), 'the task did not start'
        (certs.curve / 'allowed' / 'pete.cert').unlink()
        thread.join(20)
        assert not thread.is_alive(), 'run did not end'
        assert isinstance(outcome.get('error'), arbiter.Forbidden), outcome
        assert seen == {'cancelled': True}
    finally:
        worker.stop()
        worker.stop()
        thread.join(10)
        admin.close()


# ---------------------------------------------------------------------------
# The certificates and the broker's key


def test_keygen_writes_a_pair_with_its_role_and_overwrites_nothing(tmp_path):
    proc = cli('--json', 'keygen', 'w1', '--role', 'worker', '--dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out['role'] == 'worker' and len(out['public_key']) == 40
    public = tmp_path / 'w1.cert'
    secret = tmp_path / 'w1.cert_secret'
    assert 'role = "worker"' in public.read_text() and 'secret-key' not in public.read_text()
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert zmq.auth.load_certificate(str(secret))[0].decode() == out['public_key']
    before = secret.read_bytes()
    proc = cli('keygen', 'w1', '--role', 'worker', '--dir', str(tmp_path))
    assert proc.returncode == 1 and 'exists already' in proc.stderr
    assert secret.read_bytes() == before
    proc = cli('keygen', 'w2', '--role', 'boss', '--dir', str(tmp_path))
    assert proc.returncode == 2 and "'boss' is not client, worker or admin" in proc.stderr
    proc = cli('keygen', '../w3', '--role', 'admin', '--dir', str(tmp_path))
    assert proc.returncode == 2 and 'is not a certificate name' in proc.stderr


def test_the_broker_makes_its_key_once_and_keeps_it(tmp_path, processes, certs):
    b = CurveBroker(tmp_path, certs)
    processes.append(b)
    key = certs.broker_key()
    secret = certs.curve / 'broker.cert_secret'
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert 'curve=%s' % key in b.output()
    assert b.stop() == 0
    again = CurveBroker(tmp_path, certs)
    processes.append(again)
    assert certs.broker_key() == key


# ---------------------------------------------------------------------------
# Without --curve


def test_without_curve_only_loopback_is_bound_unless_insecure(tmp_path):
    port = free_port()
    args = [binary('broker', 'arbiterd'), '--bind', 'tcp://0.0.0.0:%d' % port, '--db',
            str(tmp_path / 'open.db')]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2  # a bad setting, as --check-config says
    assert 'refusing to bind tcp://0.0.0.0:%d without authentication' % port in proc.stderr
    assert '--insecure' in proc.stderr and not os.path.exists(tmp_path / 'open.db')
    # with --insecure the same settings pass the check a start makes (tests
    # bind loopback only, so the open start itself is not run here)
    proc = subprocess.run(args + ['--insecure', '--check-config'], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert 'tcp://0.0.0.0:%d is bound without authentication' % port in proc.stderr
    assert 'insecure = true' in proc.stdout
