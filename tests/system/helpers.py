"""Shared helpers of the system tests: submitting in batches through the
wire protocol, reading task states, starting the real worker binaries."""

import os
import re
import json
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time

import arbiter_proto
import pytest

from conftest import BUILD, ROOT, Process, binary, free_port, wait_until

SUCCEEDED, DEAD, CANCELLED, SKIPPED = 5, 7, 8, 9
FINAL = (SUCCEEDED, DEAD, CANCELLED, SKIPPED)



def example_with_its_examples(example, out):
    """Writes to out a copy of an example config whose commented-out
    examples are taken in: its `# upstream = ` line, and each commented
    section after its "# Sections" line (a `# [kind.NAME]` line and the
    `# key = value` lines under it, to a blank line), so a test can check
    they are valid too."""
    lines, sections, block = [], False, False
    header = re.compile(r'# \[[a-z]+\.[A-Za-z0-9_-]+\]$')
    key = re.compile(r'# [a-z][a-z-]* = ')
    with open(example) as f:
        for line in f.read().split('\n'):
            sections = sections or line == '# Sections'
            block = sections and (header.match(line) is not None or (block and line != ''))
            if (block and (header.match(line) or key.match(line))) \
                    or line.startswith('# upstream = amqp://'):
                line = line[2:]
            lines.append(line)
    with open(out, 'w') as f:
        f.write('\n'.join(lines))
    return out


def read_to_end(sock):
    """Everything a socket gives until its peer's end (its timeout bounds
    each read)."""
    got = b''
    while True:
        data = sock.recv(4096)
        if not data:
            return got
        got += data

def submit_many(peer, tasks, batch=500, watch=False):
    """Submits task dicts ('payload' goes in its frame) in batches; every
    batch is acknowledged before the next. Returns the ids in order."""
    ids = []
    for start in range(0, len(tasks), batch):
        chunk = tasks[start:start + batch]
        specs = [{k: v for k, v in t.items() if k != 'payload'} for t in chunk]
        body = {'tasks': specs}
        if watch:
            body['watch'] = True
        kind, _, reply, _ = peer.request('SUBMIT', body, [t.get('payload', b'') for t in chunk],
                                         timeout=30)
        assert kind == 'SUBMITTED', reply
        ids += [t['id'] for t in reply['tasks']]
    return ids


def status(peer, ids):
    """{id: task info} for any number of ids."""
    infos = {}
    for start in range(0, len(ids), 1000):
        kind, _, body, _ = peer.request('STATUS', {'ids': ids[start:start + 1000]}, timeout=30)
        assert kind == 'STATUS_REPLY', body
        infos.update({t['id']: t for t in body['tasks']})
    return infos


def queue_counts(peer, queue='default'):
    """Counts by state name of a queue, from STATS."""
    kind, _, body, _ = peer.request('STATS', {})
    for q in body.get('queues', []):
        if q['name'] == queue:
            return {arbiter_proto.STATES.get(i, '?'): c for i, c in enumerate(q.get('counts', []))
                    if i}
    return {}


def all_final(peer, ids):
    return lambda: all(t.get('state') in FINAL for t in status(peer, ids).values())


def start_exec_worker(broker, processes, tmp_path, command, *extra, env=None):
    args = [binary('worker', 'arbiter-worker'), '--broker', broker.endpoint,
            '--exec', command] + list(extra)
    log = str(tmp_path / ('exec-worker-%d.log' % len(processes)))
    worker = Process(args, log, env=dict(os.environ, **(env or {})))
    processes.append(worker)
    return worker


def start_minion(broker, processes, tmp_path, *extra):
    args = [binary('examples', 'minion'), '--broker', broker.endpoint] + list(extra)
    minion = Process(args, str(tmp_path / ('minion-%d.log' % len(processes))))
    processes.append(minion)
    return minion


def gone(pid):
    """No such process, or a zombie nobody of ours will reap. (It may go
    between the open and the read of its stat: ESRCH then.)"""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return True


def read_pid(path):
    """The pid a task's shell wrote to path, once the whole line is there
    (the file exists a moment before its text)."""
    return int(wait_until(lambda: path.exists() and path.read_text().endswith('\n')
                          and path.read_text().strip(), what='pid file %s' % path.name))


def wait_state(peer, task_id, state, timeout=20):
    return wait_until(lambda: status(peer, [task_id])[task_id].get('state') == state,
                      timeout=timeout, what='task %d %s' % (task_id, arbiter_proto.STATES[state]))


def _crc32c(data, crc=0):
    crc ^= 0xffffffff
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def task_log_records(path):
    """The whole records of a journal's task log (broker/arb_tasklog.h), as
    (generation, rows, drops): rows as tuples of the tasks columns a plain
    row has (arb_journal_batch.c), drops as ids. Stops at the first record
    that is not whole, as the broker does."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records, at = [], 0
    while len(data) - at >= 24:
        magic, size, gen, crc = struct.unpack_from('<IIQI', data, at)
        body = data[at + 24:at + 24 + size]
        if magic != 0x4c425241 or len(body) != size:
            break
        if _crc32c(body, _crc32c(struct.pack('<QI', gen, size))) != crc:
            break
        count, dropped = struct.unpack_from('<II', body)
        rows, p = [], 8
        for _ in range(count):
            (tid, created, max_attempts, state, priority, qsize, nsize, hsize, psize,
             unwatched) = struct.unpack_from('<QQqiiIIIII', body, p)
            p += 56
            queue = body[p:p + qsize].decode()
            name = body[p + qsize:p + qsize + nsize].decode()
            q = p + qsize + nsize
            headers = None
            if hsize != 0xffffffff:
                headers, q = body[q:q + hsize], q + hsize
            payload = body[q:q + psize]
            length = qsize + nsize + (0 if hsize == 0xffffffff else hsize) + psize
            p += (length + 7) & ~7
            rows.append((tid, queue, name, state, priority, max_attempts, created, headers,
                         payload, unwatched))
        drops = list(struct.unpack_from('<%dQ' % dropped, body, p))
        records.append((gen, rows, drops))
        at += 24 + size
    return records


def journal_rows(broker, sql, *args):
    """Every row of a read-only query of a broker's journal, while it runs:
    its tables (a copy of a consistent snapshot: WAL lets readers in) with
    its task log's records applied, as the broker's next start would: those
    of the tables' generation in the file they name, then those of the next
    generation in the other file (docs/broker.md, "A checkpoint on a
    thread"). The files are read first: a checkpoint between the reads is
    then in the snapshot, whose keys make the records it took obsolete."""
    files = [task_log_records(broker.db + suffix) if os.path.exists(broker.db + suffix) else []
             for suffix in ('-tasklog', '-tasklog2')]
    source = sqlite3.connect('file:%s?mode=ro' % broker.db, uri=True, timeout=10)
    db = sqlite3.connect(':memory:')
    try:
        source.backup(db)
        def key(name):
            # text of an unsigned 64-bit number (CAST would clamp it at 2^63 - 1)
            value = db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            return int(bytes(value[0]) if isinstance(value[0], bytes) else value[0]) if value else 0
        first = 1 if key('broker.log_file') else 0
        for records, gen in ((files[first], key('broker.log_gen')),
                             (files[1 - first], key('broker.log_next'))):
            for record_gen, rows, drops in records:
                if record_gen != gen:
                    break  # older records, past the current ones (arb_tasklog.h)
                db.executemany('INSERT OR IGNORE INTO tasks (id, queue, name, state, priority, '
                               'max_attempts, created_ms, headers, payload, unwatched) '
                               'VALUES (?,?,?,?,?,?,?,?,?,?)', rows)
                db.executemany('DELETE FROM tasks WHERE id = ?', [(d,) for d in drops])
        return db.execute(sql, args).fetchall()
    finally:
        source.close()
        db.close()


def journal_value(broker, sql, *args):
    """The first column of the first row of a read-only query of a broker's
    journal, while it runs (journal_rows)."""
    return journal_rows(broker, sql, *args)[0][0]


# A module for `node -r` (or NODE_OPTIONS=--require): connections a Node
# program makes to port 5672 (amqp://localhost, as RabbitMQ examples and
# test suites assume) go to ARB_TEST_AMQP_PORT on 127.0.0.1, so that the
# gateway under test listens on a free port, not on a fixed one.
AMQP_PORT_REDIRECT = '''
const net = require('net');
const port = Number(process.env.ARB_TEST_AMQP_PORT);
for (const name of ['connect', 'createConnection']) {
  const original = net[name];
  net[name] = function (options, ...rest) {
    if (options && typeof options === 'object' && Number(options.port || 5672) === 5672)
      options = Object.assign({}, options, {host: '127.0.0.1', port});
    return original.call(this, options, ...rest);
  };
}
'''


def count_while(writers, count, timeout=60):
    """Runs the writer callables in threads while count() is called over
    and over in another; returns every value count gave, once the writers
    are done. Fails if any of them raised, or did not end within timeout."""
    import threading
    seen, errors, stop = [], [], threading.Event()

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: B902 (reported below)
                errors.append(e)
        return run

    def counter():
        while not stop.is_set():
            seen.append(count())

    watcher = threading.Thread(target=guarded(counter))
    threads = [threading.Thread(target=guarded(w)) for w in writers]
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stop.set()
    watcher.join(timeout)
    assert not any(t.is_alive() for t in threads + [watcher]), 'a thread did not end'
    assert not errors, errors
    return seen


RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'


class Rabbit:
    """A rabbitmq-server of the test's own (Debian's rabbitmq-server), on free
    loopback ports (AMQP, Erlang distribution, epmd) with its data in root, so
    it never meets another node of the machine; started and stopped by PID.
    Needs python3-pika."""

    def __init__(self, root, tls=False):
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        for sub in ('home', 'mnesia', 'log'):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        with open(os.path.join(root, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        open(os.path.join(root, 'rabbitmq-env.conf'), 'w').close()
        with open(os.path.join(root, 'rabbitmq.conf'), 'w') as f:
            f.write('listeners.tcp.1 = 127.0.0.1:%d\n' % self.port)
            # with tls, a TLS listener too (self.tls_port), its certificate
            # made here (self.tls: make_tls_files' paths); it requires a
            # client certificate signed by the same CA, so that a client's
            # key (an encrypted one among them) is shown to be used
            self.tls = make_tls_files(os.path.join(root, 'tls')) if tls else None
            if tls:
                self.tls_port = free_port()
                f.write('listeners.ssl.1 = 127.0.0.1:%d\n' % self.tls_port)
                f.write('ssl_options.cacertfile = %s\n' % self.tls['ca'])
                f.write('ssl_options.certfile = %s\n' % self.tls['server_cert'])
                f.write('ssl_options.keyfile = %s\n' % self.tls['server_key'])
                f.write('ssl_options.verify = verify_peer\n')
                f.write('ssl_options.fail_if_no_peer_cert = true\n')
        self.env = dict(
            os.environ, HOME=os.path.join(root, 'home'), ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS='127.0.0.1', RABBITMQ_NODENAME='arbtest%d@localhost' % os.getpid(),
            RABBITMQ_NODE_IP_ADDRESS='127.0.0.1', RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(root, 'mnesia'),
            RABBITMQ_LOG_BASE=os.path.join(root, 'log'), RABBITMQ_LOGS='-',
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(root, 'enabled_plugins'),
            RABBITMQ_CONF_ENV_FILE=os.path.join(root, 'rabbitmq-env.conf'),
            RABBITMQ_CONFIG_FILE=os.path.join(root, 'rabbitmq'),
            RABBITMQ_PID_FILE=os.path.join(root, 'rabbitmq.pid'))
        self.log = open(os.path.join(root, 'rabbitmq.log'), 'ab')
        self.epmd = subprocess.Popen(['epmd', '-port', str(self.epmd_port), '-address',
                                      '127.0.0.1'], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        self.proc = None
        try:
            self.start()
        except AssertionError:
            self.close()
            raise

    def url(self, user='guest', password='guest'):
        return 'amqp://%s:%s@127.0.0.1:%d/%%2f' % (user, password, self.port)

    def tls_url(self, query, host='localhost', client=True):
        """An amqps:// URL of the TLS listener, as guest, with the query
        given (RabbitMQ's URI parameters: cacertfile=..., verify=...), and
        with client the client certificate the listener requires (its key
        not encrypted)."""
        if client:
            query += '%scertfile=%s&keyfile=%s' % ('&' if query else '', self.tls['client_cert'],
                                                   self.tls['client_key'])
        return 'amqps://guest:guest@%s:%d/%%2f%s' % (host, self.tls_port,
                                                     '?' + query if query else '')

    def ctl(self, *args):
        """rabbitmqctl ARGS on this node; its output."""
        return subprocess.run([os.path.join(os.path.dirname(RABBITMQ_SERVER), 'rabbitmqctl')]
                              + list(args), env=self.env, cwd=self.root, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60).stdout

    def close_connections(self):
        """Closes every client connection, as an operator does
        (rabbitmqctl close_all_connections): its clients reconnect."""
        self.ctl('close_all_connections', 'closed by the test')

    def connect(self):
        import pika
        return pika.BlockingConnection(pika.ConnectionParameters(
            '127.0.0.1', self.port, connection_attempts=1, socket_timeout=5,
            blocked_connection_timeout=30))

    def start(self, timeout=90):
        import pika
        self.proc = subprocess.Popen([RABBITMQ_SERVER], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, cwd=self.root)

        def ready():
            assert self.proc.poll() is None, 'rabbitmq-server exited; see %s' % self.root
            try:
                self.connect().close()
                return True
            except pika.exceptions.AMQPError:
                return False
        wait_until(ready, timeout=timeout, interval=0.25, what='rabbitmq-server on %d' % self.port)

    def stop(self, timeout=60):
        """A clean stop (SIGTERM to the server's script, which stops the
        node and waits for it)."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            if self.epmd.poll() is None:
                os.kill(self.epmd.pid, signal.SIGTERM)
                self.epmd.wait(10)
            self.log.close()


# The password of make_tls_files' 'client_key_encrypted': characters a
# URL %-encodes among them
CLIENT_KEY_PASSWORD = 'key pass&word/+%'


def encrypt_key(key, out, password):
    """Writes the PEM key at path key to out, encrypted (AES-256) with
    password."""
    subprocess.run(('openssl', 'pkey', '-in', key, '-aes256', '-passout', 'pass:' + password,
                    '-out', out), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60)


def make_tls_files(folder):
    """Certificates made with openssl for a TLS server on this machine: a
    CA ('ca'), a server certificate it signs for the name localhost only
    ('server_cert', 'server_key'), a client certificate it signs
    ('client_cert', its key 'client_key', and the same key encrypted with
    CLIENT_KEY_PASSWORD, 'client_key_encrypted'), and another CA that
    signed nothing ('other_ca'). Paths by name."""
    os.makedirs(folder, exist_ok=True)
    files = {name: os.path.join(folder, name + '.pem') for name in
             ('ca', 'ca_key', 'server_cert', 'server_key', 'server_csr', 'other_ca', 'other_key',
              'client_cert', 'client_key', 'client_csr', 'client_key_encrypted')}
    ext = os.path.join(folder, 'server.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n'
                'extendedKeyUsage = serverAuth\n')
    client_ext = os.path.join(folder, 'client.ext')
    with open(client_ext, 'w') as f:
        f.write('basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n')

    def openssl(*args):
        subprocess.run(('openssl',) + args, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    for ca, key, name in (('ca', 'ca_key', 'arbiter test CA'),
                          ('other_ca', 'other_key', 'another CA')):
        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj',
                '/CN=%s' % name, '-keyout', files[key], '-out', files[ca])
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout',
            files['server_key'], '-out', files['server_csr'])
    openssl('x509', '-req', '-in', files['server_csr'], '-CA', files['ca'], '-CAkey',
            files['ca_key'], '-CAcreateserial', '-days', '2', '-extfile', ext, '-out',
            files['server_cert'])
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=arbiter-gateway', '-keyout',
            files['client_key'], '-out', files['client_csr'])
    openssl('x509', '-req', '-in', files['client_csr'], '-CA', files['ca'], '-CAkey',
            files['ca_key'], '-CAcreateserial', '-days', '2', '-extfile', client_ext, '-out',
            files['client_cert'])
    encrypt_key(files['client_key'], files['client_key_encrypted'], CLIENT_KEY_PASSWORD)
    return files


def start_rabbit(tmp_path_factory, tls=False):
    """A started Rabbit in a temporary directory (the test is skipped
    without rabbitmq-server, epmd or python3-pika), with a TLS listener
    too if tls; close() it at the end."""
    import pytest
    pytest.importorskip('pika', reason='python3-pika is not installed')
    if not os.access(RABBITMQ_SERVER, os.X_OK) or not shutil.which('epmd'):
        pytest.skip('rabbitmq-server is not installed (Debian package rabbitmq-server)')
    # the ports are free when chosen, but the node takes seconds to bind
    # them, and the other build variant's suite runs beside this one: a
    # node that could not listen (it exits) is tried again on other ports
    for attempt in range(3):
        try:
            return Rabbit(str(tmp_path_factory.mktemp('rabbitmq')), tls=tls)
        except AssertionError:
            if attempt == 2:
                raise


def run_soak(tmp_path_factory, script, binaries, args, name):
    """Runs a soak tool (tools/arbiter-soak, tools/arbiter-amqp-soak) on
    this build to its end and returns its JSON summary, with 'text': the
    seed, exit status and end of its output, for failures' messages.
    ARBITER_SOAK_SEED=X repeats a soak's schedule. binaries: the (folder,
    name) pairs it starts, each built first."""
    for folder, program in binaries:
        binary(folder, program)
    work = tmp_path_factory.mktemp(name)
    seed = os.environ.get('ARBITER_SOAK_SEED') or str(int(time.time() * 1000) % 1000000007)
    summary_path = work / 'summary.json'
    cmd = [sys.executable, script, '--build', BUILD, '--seed', seed, '--dir', str(work / 'records'),
           '--json', str(summary_path), '--quiet'] + args
    with open(work / 'soak.out', 'wb') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(600)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # it stops what it started
            proc.wait(120)
    text = (work / 'soak.out').read_text(errors='replace')
    assert summary_path.exists(), 'the soak did not finish (seed %s):\n%s' % (seed, text[-4000:])
    summary = json.loads(summary_path.read_text())
    summary['text'] = 'seed %s, exit %s:\n%s' % (seed, proc.returncode, text[-6000:])
    return summary


def npm_path(*parts):
    """A path under the npm folder tools/arbiter-dev fills with the Node
    clients: the variant's build tree's, else build/'s (the sanitized
    variant's tests use the packages of the plain one)."""
    own = os.path.join(BUILD, 'npm', *parts)
    return own if os.path.exists(own) else os.path.join(ROOT, 'build', 'npm', *parts)


def node_or_skip(*folders):
    """The node binary; the test is skipped without it or without one of
    the folders (a package, a suite)."""
    node = shutil.which('node')
    missing = [os.path.basename(f) for f in folders if not os.path.isdir(f)]
    if not node or missing:
        pytest.skip('%s not installed (tools/arbiter-dev installs them)'
                    % ', '.join(([] if node else ['node']) + missing))
    return node
