"""arbiterd as a systemd service without systemd: the sd_notify messages its
unit (Type=notify, WatchdogSec=) relies on, received on a socket of our
own as $NOTIFY_SOCKET; and its log on a journal stream (JOURNAL_STREAM),
where every line carries its priority as "<N>"."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

import pytest

import arbiter_proto
from conftest import Process, binary, free_port, wait_until


def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / 'notify')
    sock.bind(path)
    sock.settimeout(20)
    return sock, path


def test_ready_watchdog_and_stopping(tmp_path, processes):
    sock, path = notify_socket(tmp_path)
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC='400000')
    broker = Process([binary('broker', 'arbiterd'), '--bind', endpoint, '--db',
                      str(tmp_path / 'a.db')], str(tmp_path / 'broker.log'), env=env)
    processes.append(broker)
    try:
        ready = sock.recv(4096).decode()
        assert ready == 'READY=1\nSTATUS=listening on %s' % endpoint, ready
        # ready means bound, with the journal loaded: it answers at once
        peer = arbiter_proto.Peer(endpoint)
        try:
            assert peer.request('PING', {}, timeout=5)[0] == 'PONG'
        finally:
            peer.close()
        # the loop pings the watchdog every half interval (200 ms) even
        # with nothing to do
        started = time.time()
        pings = 0
        while time.time() - started < 1.5:
            assert sock.recv(4096) == b'WATCHDOG=1'
            pings += 1
        assert 5 <= pings <= 12, pings
        os.kill(broker.pid, signal.SIGTERM)
        message = sock.recv(4096)
        while message == b'WATCHDOG=1':
            message = sock.recv(4096)
        assert message == b'STOPPING=1\nSTATUS=stopping'
        assert broker.stop() == 0
    finally:
        sock.close()


def test_no_watchdog_without_its_variable(tmp_path, processes):
    sock, path = notify_socket(tmp_path)
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop('WATCHDOG_USEC', None)
    broker = Process([binary('broker', 'arbiterd'), '--bind', endpoint, '--db',
                      str(tmp_path / 'a.db')], str(tmp_path / 'broker.log'), env=env)
    processes.append(broker)
    try:
        assert sock.recv(4096).startswith(b'READY=1\n')
        sock.settimeout(1.2)
        try:
            message = sock.recv(4096)
        except socket.timeout:
            message = None
        assert message is None
    finally:
        sock.close()


def journal_stream(path):
    st = os.stat(path)
    return '%d:%d' % (st.st_dev, st.st_ino)


def on_journal(tmp_path, processes, args, name, stream=None):
    """args started with their output in tmp_path/name.log and
    JOURNAL_STREAM naming that file, as systemd names the journal's stream
    to a service; or naming the file stream, as when stderr went elsewhere
    since."""
    log = tmp_path / (name + '.log')
    log.write_bytes(b'')
    stream = tmp_path / stream if stream else log
    stream.write_bytes(b'')
    proc = Process(args, str(log), env=dict(os.environ, JOURNAL_STREAM=journal_stream(stream)))
    processes.append(proc)
    return proc


def test_log_lines_carry_priorities_on_the_journal_stream(tmp_path, processes):
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    broker = on_journal(tmp_path, processes, [binary('broker', 'arbiterd'), '--bind', endpoint,
                                              '--db', str(tmp_path / 'a.db')], 'broker')
    peer = arbiter_proto.Peer(endpoint)
    try:
        for _ in range(100):
            try:
                if peer.request('PING', {}, timeout=0.5)[0] == 'PONG':
                    break
            except TimeoutError:
                pass
    finally:
        peer.close()
    assert broker.stop() == 0
    lines = broker.output().splitlines()
    assert ('<6>broker: listening endpoint=%s transport=loop sync=full task_log=on version=' % endpoint
            in lines[1]), lines
    assert lines[-1] == '<6>broker: stopping', lines
    assert all(line.startswith('<') for line in lines if line), lines

    # an error is priority 3
    # (--insecure: a broker without --curve binds no other host's address;
    # its warning is priority 4; an interface that is not there passes the
    # endpoint check, a port out of range would not start at all)
    proc = on_journal(tmp_path, processes, [binary('broker', 'arbiterd'), '--bind',
                                            'tcp://nowhere:7', '--insecure', '--db',
                                            str(tmp_path / 'b.db')], 'bad')
    proc.proc.wait(30)
    assert proc.stop() == 1
    lines = proc.output().splitlines()
    assert any(line.startswith('<4>broker: --insecure: tcp://nowhere:7 is bound without')
               for line in lines), lines
    assert any(line.startswith('<3>broker: cannot bind tcp://nowhere:7') for line in lines), lines


def test_plain_lines_when_stderr_is_not_the_journal(tmp_path, processes):
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    # systemd set it, but stderr went elsewhere since
    broker = on_journal(tmp_path, processes, [binary('broker', 'arbiterd'), '--bind', endpoint,
                                              '--db', str(tmp_path / 'a.db')], 'broker', 'other')
    wait_until(lambda: 'broker: listening' in broker.output(), what='the broker listens')
    assert broker.stop() == 0
    assert broker.output().startswith('I: (arbiterd) '), broker.output()


def test_worker_and_gateway_log_to_the_journal_too(tmp_path, processes, broker):
    """arbiter-worker@.service and arbiter-gateway.service write to the
    journal as the broker does: every line with its priority."""
    for name, args, ready in [
            ('worker', [binary('worker', 'arbiter-worker'), '--broker', broker.endpoint,
                        '--exec', 'cat'], 'worker: registered'),
            ('gateway', [binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                         '--broker', broker.endpoint, '--kestrel', '127.0.0.1:%d' % free_port(),
                         '--http', 'off', '--amqp', 'off'], 'broker session up')]:
        proc = on_journal(tmp_path, processes, args, name)
        wait_until(lambda: ready in proc.output() or not proc.alive(), timeout=20,
                   what='the %s starts' % name)
        assert proc.stop() == 0, proc.output()
        lines = [line for line in proc.output().splitlines() if line]
        assert any(line.startswith('<6>') and ready in line for line in lines), lines
        assert all(re.match(r'<[0-7]>', line) for line in lines), lines


def test_log_level_drops_the_lines_below_it(tmp_path, processes):
    """--log-level: info by default (a connection's debug line is not
    written), debug writes it, warning drops info too."""
    found = {}
    for level in (None, 'debug', 'warning'):
        endpoint = 'tcp://127.0.0.1:%d' % free_port()
        args = [binary('broker', 'arbiterd'), '--bind', endpoint,
                '--db', str(tmp_path / ('%s.db' % level))]
        broker = Process(args + (['--log-level', level] if level else []),
                         str(tmp_path / ('%s.log' % level)))
        processes.append(broker)
        peer = arbiter_proto.Peer(endpoint)
        try:
            wait_until(lambda: ping(peer), timeout=20, what='the broker answers')
        finally:
            peer.close()
        if level == 'debug':
            wait_until(lambda: 'broker: connection closed' in broker.output(), timeout=10,
                       what='the connection closed line')
        assert broker.stop() == 0
        found[level] = {line[:2] for line in broker.output().splitlines() if line[1:3] == ': '}
    assert found[None] == {'I:'}, found
    assert found['debug'] == {'I:', 'D:'}, found
    assert found['warning'] == set(), found


def ping(peer):
    try:
        return peer.request('PING', {}, timeout=0.5)[0] == 'PONG'
    except TimeoutError:
        return False


def broker_with_a_ready_task(tmp_path, processes):
    """A broker on a new journal, holding one task no worker has had: its
    journal, its endpoint and its Process."""
    db = str(tmp_path / 'a.db')
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    first = Process([binary('broker', 'arbiterd'), '--bind', endpoint, '--db', db],
                    str(tmp_path / 'first.log'))
    processes.append(first)
    wait_until(lambda: 'listening' in first.output(), what='the first broker')
    peer = arbiter_proto.Peer(endpoint)
    try:
        kind, _, reply, _ = peer.request('SUBMIT', {'tasks': [{'name': 'n', 'queue': 'q'}]},
                                         [b''], timeout=5)
        assert kind == 'SUBMITTED', reply
    finally:
        peer.close()
    return db, endpoint, first


def assert_the_last_stop_was_clean(tmp_path, processes, db, endpoint):
    """A start on db does not take the last run for a crash, which counts a
    delivery more for every ready task (the one task of
    broker_with_a_ready_task)."""
    again = Process([binary('broker', 'arbiterd'), '--bind', endpoint, '--db', db],
                    str(tmp_path / 'again.log'))
    processes.append(again)
    wait_until(lambda: 'listening' in again.output(), what='the broker started again')
    assert 'did not stop cleanly' not in again.output(), again.output()
    assert again.stop() == 0
    with sqlite3.connect('file:%s?mode=ro' % db, uri=True) as journal:
        assert journal.execute('SELECT delivered FROM tasks').fetchall() == [(0,)]


def test_a_start_that_cannot_bind_counts_as_a_clean_stop(tmp_path, processes):
    # A start on a port in use (a service manager restarting it while the
    # old process still holds the port) exits 1 having leased nothing: the
    # next start must not take it for a crash, which counts a delivery
    # more for every ready task.
    db, endpoint, first = broker_with_a_ready_task(tmp_path, processes)
    assert first.stop() == 0
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        busy = 'tcp://127.0.0.1:%d' % taken.getsockname()[1]
        for _ in range(2):
            failed = subprocess.run([binary('broker', 'arbiterd'), '--bind', busy, '--db', db],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    timeout=30, text=True)
            assert failed.returncode == 1, failed.stdout
            assert 'cannot bind %s' % busy in failed.stdout, failed.stdout
    assert_the_last_stop_was_clean(tmp_path, processes, db, endpoint)


def test_a_journal_that_cannot_be_had_says_why(tmp_path, processes):
    """What a new operator meets with --db (or the unit's state directory)
    wrong, each one line and exit status 1 (docs/broker.md): a second
    broker on the same journal, and a directory of the journal's path that
    cannot be made, which said only 'cannot open DIR/a.db.lock: No such
    file or directory' (the mkdir's own error was dropped)."""
    db = str(tmp_path / 'a.db')
    first = Process([binary('broker', 'arbiterd'), '--bind', 'tcp://127.0.0.1:%d' % free_port(),
                     '--db', db], str(tmp_path / 'first.log'))
    processes.append(first)
    wait_until(lambda: 'listening' in first.output(), what='the first broker')
    (tmp_path / 'file').write_text('')
    for path, message in [
            (db, 'journal: %s is in use by another arbiterd' % db),
            # a file where a directory should be: root cannot make it either
            (str(tmp_path / 'file' / 'sub' / 'a.db'),
             'journal: cannot make the directory %s: Not a directory' % (tmp_path / 'file' /
                                                                          'sub'))]:
        failed = subprocess.run([binary('broker', 'arbiterd'), '--bind',
                                 'tcp://127.0.0.1:%d' % free_port(), '--db', path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                                text=True)
        assert failed.returncode == 1, failed.stdout
        assert message in failed.stdout, failed.stdout
    assert first.stop() == 0


def test_sighup_is_a_clean_stop(tmp_path, processes):
    # Closing the terminal of a broker started by hand sends it SIGHUP,
    # which ended it at once (exit status 129): the next start took the run
    # for a crash and counted a delivery more for every ready task. It
    # stops as SIGTERM does now; started ignoring SIGHUP (nohup), it still
    # ignores it.
    db, endpoint, first = broker_with_a_ready_task(tmp_path, processes)
    os.kill(first.pid, signal.SIGHUP)
    assert first.proc.wait(15) == 0, first.output()
    assert 'broker: stopping' in first.output()
    assert_the_last_stop_was_clean(tmp_path, processes, db, endpoint)
    with open(str(tmp_path / 'nohup.log'), 'wb') as log:
        nohup = subprocess.Popen([binary('broker', 'arbiterd'), '--bind', endpoint, '--db', db],
                                 stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        wait_until(lambda: 'listening' in (tmp_path / 'nohup.log').read_text(),
                   what='the broker under nohup')
        os.kill(nohup.pid, signal.SIGHUP)
        peer = arbiter_proto.Peer(endpoint)
        try:
            wait_until(lambda: ping(peer), what='a PING after the SIGHUP')
        finally:
            peer.close()
        assert nohup.poll() is None
    finally:
        nohup.terminate()
        assert nohup.wait(15) == 0


def test_a_journal_that_cannot_be_locked_says_what_to_do(tmp_path, processes):
    # The lock file is the first thing a start makes beside the journal:
    # its errors said only "DB is in use by another arbiterd" and "cannot
    # open DB.lock: Permission denied", naming neither the lock file nor
    # the directory as the cause, nor what to do.
    db = str(tmp_path / 'a.db')
    first = Process([binary('broker', 'arbiterd'), '--bind',
                     'tcp://127.0.0.1:%d' % free_port(), '--db', db], str(tmp_path / 'first.log'))
    processes.append(first)
    wait_until(lambda: 'listening' in first.output(), what='the first broker')
    second = subprocess.run([binary('broker', 'arbiterd'), '--bind',
                             'tcp://127.0.0.1:%d' % free_port(), '--db', db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, text=True)
    assert second.returncode == 1, second.stdout
    assert ('journal: %s is in use by another arbiterd, which holds its lock file %s.lock: stop '
            'that broker first, or give this one another --db' % (db, db)) in second.stdout, \
        second.stdout
    assert first.stop() == 0
    # a directory the broker's user cannot write (as root: run it as nobody)
    folder = tempfile.mkdtemp(prefix='h-ro-')
    try:
        os.chmod(folder, 0o555)
        prefix = []
        if os.geteuid() == 0:
            if not shutil.which('setpriv'):
                pytest.skip('root without setpriv: no directory it cannot write')
            prefix = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
        db = os.path.join(folder, 'a.db')
        refused = subprocess.run(prefix + [binary('broker', 'arbiterd'), '--bind',
                                           'tcp://127.0.0.1:%d' % free_port(), '--db', db],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                                 text=True)
        assert refused.returncode == 1, refused.stdout
        assert ("journal: cannot open %s.lock, the journal's lock file: Permission denied; "
                "arbiterd makes it beside the journal, so its directory, %s, must exist and be "
                "writable by the user arbiterd runs as (the lock file too, if it is there), or "
                "give another --db" % (db, folder)) in refused.stdout, refused.stdout
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_a_start_refused_for_its_port_leaves_no_new_journal(tmp_path):
    # A start on a port in use at a path with no journal made the file and
    # its schema, then exited 1: a misspelt --db, or a first start, left a
    # new journal behind. The lock file stays (it always does); an empty
    # file that was there stays as it was made into a journal.
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        busy = 'tcp://127.0.0.1:%d' % taken.getsockname()[1]
        folder = tmp_path / 'new'
        failed = subprocess.run([binary('broker', 'arbiterd'), '--bind', busy, '--db',
                                 str(folder / 'a.db')], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=30, text=True)
        assert failed.returncode == 1, failed.stdout
        assert 'cannot bind %s' % busy in failed.stdout, failed.stdout
        assert sorted(os.listdir(folder)) == ['a.db.lock'], failed.stdout
        # a file of the journal's that was there is not the start's to remove
        (folder / 'b.db-tasklog2').write_bytes(b'')
        failed = subprocess.run([binary('broker', 'arbiterd'), '--bind', busy, '--db',
                                 str(folder / 'b.db')], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=30, text=True)
        assert failed.returncode == 1, failed.stdout
        assert sorted(os.listdir(folder)) == ['a.db.lock', 'b.db-tasklog2', 'b.db.lock'], \
            failed.stdout
        empty = tmp_path / 'empty.db'
        empty.write_bytes(b'')
        failed = subprocess.run([binary('broker', 'arbiterd'), '--bind', busy, '--db',
                                 str(empty)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=30, text=True)
        assert failed.returncode == 1, failed.stdout
        assert empty.exists()
