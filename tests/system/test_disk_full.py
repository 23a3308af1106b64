"""A broker whose journal's disk fills up or fails (docs/broker.md, "Disk
full"): submits refused with 507 (the CLI's exit status 4, the Python
client's JournalFull), status, list and stats served, a worker that keeps
its session and keeps the results it could not store until then, space
freed and submits taken again without a restart, every task acknowledged
before the disk filled completed. Once through the test build's VFS that
fails writes (build/tests/arbiterd-faults), once on a real tmpfs that runs
out of space (where this sandbox lets us mount one). And journal files
that are not this broker's, refused at start, untouched."""

import errno
import os
import subprocess
import sys
import time

import pytest

import arbiter_proto
from conftest import ROOT, SANITIZED, Broker, Gateway, Process, binary, free_port, wait_until
from helpers import SUCCEEDED, start_exec_worker, status

sys.path.insert(0, os.path.join(ROOT, 'python'))
import arbiter  # noqa: E402

FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1500', '--recovery-ms', '1000']


class FaultyBroker(Broker):
    """arbiterd built with the test VFS (tests/SConscript): its journal's
    writes fail as the file `control` says (broker/arb_journal_faults.h:
    full, ioerr, fsync, unmake; empty: none)."""

    def __init__(self, tmp_path, extra=()):
        self.control = tmp_path / 'disk'
        self.control.write_text('')
        self.port = free_port()
        self.endpoint = 'tcp://127.0.0.1:%d' % self.port
        self.db = str(tmp_path / 'arbiter.db')
        self.tmp_path = tmp_path
        self.extra = list(extra)
        args = [binary('tests', 'arbiterd-faults'), '--bind', self.endpoint,
                '--db', self.db] + self.extra
        env = dict(os.environ, ARBITER_JOURNAL_FAULTS=str(self.control))
        Process.__init__(self, args, str(tmp_path / ('broker-%d.log' % self.port)), env=env)
        self.wait_ready()


def cli(broker, *args, timeout=30):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def workers(peer):
    kind, _, body, _ = peer.request('STATS', {})
    assert kind == 'STATS_REPLY', body
    return [w['name'] for w in body.get('workers', [])]


def submit_until_accepted(broker, key, payload):
    """Submits (the same key each time) until the broker takes it: it finds
    out by itself that space is back. Returns the task id."""
    def attempt():
        proc = cli(broker, 'submit', '--key', key, 'job', payload)
        assert proc.returncode in (0, 4), proc.stderr
        return proc.returncode == 0 and int(proc.stdout)
    return wait_until(attempt, timeout=30, interval=0.2, what='a submit taken again')


def check_full_and_serving(broker, peer, ids):
    """While the journal is full: writes refused with 507 everywhere, reads
    served, the worker's session kept for more than its liveness window."""
    proc = cli(broker, 'submit', 'job', 'refused')
    assert proc.returncode == 4, (proc.returncode, proc.stderr)
    assert b'journal: disk full' in proc.stderr
    assert cli(broker, 'cancel', str(ids[-1])).returncode == 4
    client = arbiter.Client(broker.endpoint, timeout=5.0)
    try:
        with pytest.raises(arbiter.JournalFull) as refused:
            client.submit('job', b'refused')
        assert refused.value.code == 507 and 'journal: disk full' in str(refused.value)
        assert client.status(ids[0]).id == ids[0]
    finally:
        client.close()
    assert cli(broker, 'status', str(ids[0])).returncode == 0
    listing = cli(broker, 'list')
    assert listing.returncode == 0, listing.stderr
    assert cli(broker, 'stats').returncode == 0
    # the worker registers again once (the broker's memory was rebuilt, as
    # at a restart) and then keeps its session while the disk stays full
    wait_until(lambda: 'w1' in workers(peer), timeout=10, what='the worker registered again')
    deadline = time.time() + 2.5
    while time.time() < deadline:
        assert 'w1' in workers(peer)
        assert 'worker lost' not in broker.output()


def run_through_full_disk(broker, processes, tmp_path, fill, free):
    """Tasks acknowledged, then the disk fills (fill()), then is freed
    (free()): every acknowledged task completes, and runs once: a result
    that came while the disk was full stays with the worker, which keeps
    it until the broker acknowledges it after a commit."""
    runs = tmp_path / 'runs'
    start_exec_worker(broker, processes, tmp_path,
                      'echo "$ARBITER_TASK_ID" >> "$RUNS"; sleep 0.3; tr a-z A-Z',
                      '--slots', '2', '--name', 'w1', env={'RUNS': str(runs)})
    ids = []
    for i in range(12):
        proc = cli(broker, 'submit', '--key', 'before-%d' % i, 'job', 'task %d' % i)
        assert proc.returncode == 0, proc.stderr
        ids.append(int(proc.stdout))
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        wait_until(lambda: runs.exists(), what='a task running')
        fill()
        check_full_and_serving(broker, peer, ids)
        free()
        late = submit_until_accepted(broker, 'after', 'late')
        ids.append(late)
        wait_until(lambda: all(t['state'] == SUCCEEDED for t in status(peer, ids).values()),
                   timeout=60, what='every task succeeded')
        infos = status(peer, ids)
        for i, task_id in enumerate(ids[:-1]):
            assert infos[task_id]['result'] == ('TASK %d' % i).encode()
        assert infos[late]['result'] == b'LATE'
        ran = [int(line) for line in runs.read_text().split()]
        assert sorted(ran) == sorted(ids), 'each task runs once'
    finally:
        peer.close()
    assert 'journal takes writes again' in broker.output()
    assert broker.alive()


def test_full_disk_through_the_test_vfs(tmp_path, processes):
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)

    def fill():
        broker.control.write_text('full')
        # the next write fails: the turn falls back, its submit gets 507
        proc = cli(broker, 'submit', 'job', 'first refused')
        assert proc.returncode == 4, proc.stderr

    run_through_full_disk(broker, processes, tmp_path, fill,
                          lambda: broker.control.write_text(''))


@pytest.mark.skipif(SANITIZED, reason='a wait past the claim\'s 7 s: once, with build/, is enough')
def test_amqp_serves_on_while_the_journal_is_full(tmp_path, processes):
    """The gateway's AMQP claim is renewed by a journal write: refused with
    507 while the disk is full, it still counts (no other gateway can take
    the claim meanwhile), so AMQP clients are served and publishes nacked,
    rather than every client hanging once the last renewal is 7 s old.
    Before: a channel.open waited for the disk to have room."""
    import pika
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    gateway = Gateway(tmp_path, broker, ['--kestrel', 'off'])
    processes.append(gateway)
    wait_until(gateway.ready, timeout=20, what='gateway up')
    params = pika.ConnectionParameters('127.0.0.1', gateway.amqp_port, blocked_connection_timeout=5,
                                       socket_timeout=5)
    declaring = pika.BlockingConnection(params)
    declaring.channel().queue_declare('q')
    declaring.close()
    standby = Gateway(tmp_path, broker, ['--kestrel', 'off'])
    processes.append(standby)
    wait_until(lambda: 'standing by' in standby.output(), what='a second gateway standing by')
    broker.control.write_text('full')
    # past the claim's freshness (7 s) and its lease (10 s) with every write
    # refused: the standby sees the claim run out, and its take-over meets
    # the full journal too
    time.sleep(11.5)
    started = time.monotonic()
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        with pytest.raises(pika.exceptions.NackError):
            channel.basic_publish('', 'q', b'refused', mandatory=False)
        assert time.monotonic() - started < 5
        assert 'the AMQP claim cannot be renewed; serving on' in gateway.output()
        broker.control.write_text('')

        def taken():
            try:
                channel.basic_publish('', 'q', b'taken')
                return True
            except pika.exceptions.NackError:
                return False
        wait_until(taken, timeout=20, interval=0.5, what='a publish taken again')
        assert channel.queue_declare('q', passive=True).method.message_count == 1
    finally:
        connection.close()
    # the holder renews before the standby tries again: nobody took over
    time.sleep(3)
    assert 'claim cannot be taken now' in standby.output(), standby.output()
    assert 'serves AMQP for this broker (' not in standby.output(), standby.output()
    assert 'took over' not in gateway.output() and gateway.alive()

def test_a_task_of_a_turn_that_failed_is_never_handed_out(tmp_path, processes, peer_factory):
    """A turn hands out before its commit what was ready at the last commit
    (a hand-out writes nothing), and a task it made ready only after the
    commit that records it (docs/broker.md, "The loop and group commit").
    So when that commit fails, the worker waiting with credit never got the
    task that its submitter was told was not stored."""
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    kind, _, body, _ = worker.request('REGISTER', {'name': 'w1', 'slots': 10})
    assert kind == 'WELCOME', body
    worker.send('CREDIT', {'queues': ['default'], 'credit': 10})
    assert 'w1' in workers(worker)  # after the CREDIT, from the same peer
    broker.control.write_text('fsync')  # the commit's sync fails
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'job'}]}, [b'not stored'])
    assert kind == 'ERROR' and body['code'] == 507, body
    with pytest.raises(TimeoutError):
        worker.next_of('DISPATCH', timeout=1.0)


def test_a_record_that_cannot_be_unmade_is_not_said_unstored(tmp_path, processes, peer_factory):
    """A turn whose task log record fails its sync, and whose unmaking
    fails too, may be read back by the next start: the broker does not
    answer 507 (nothing stored) but stops, and its restart has the task
    the record held."""
    broker = FaultyBroker(tmp_path)
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'job'}]}, [b'first'])
    assert kind == 'SUBMITTED', body
    first = body['tasks'][0]['id']
    broker.control.write_text('unmake')
    client.send('SUBMIT', {'tasks': [{'name': 'job'}]}, [b'maybe'])
    broker.proc.wait(20)
    assert broker.proc.returncode != 0
    assert 'could not be unmade' in broker.output()
    try:  # the turn abandoned: no answer, or one that does not say unstored
        kind, _, body, _ = client.recv(timeout=0.5)
        assert kind == 'ERROR' and body['code'] == 500, body
    except TimeoutError:
        pass
    broker.control.write_text('')
    again = FaultyBroker(tmp_path)  # the same journal, nothing failed
    processes.append(again)
    infos = status(peer_factory(again.endpoint), [first, first + 1])
    assert infos[first]['found'] and infos[first + 1]['found'], infos


def test_a_resume_that_failed_lets_no_task_out(tmp_path, processes, peer_factory):
    """The same for what a turn loosens: a paused queue resumed in a turn
    whose commit fails is still paused (507, nothing changed), and the
    worker waiting on it got nothing in that turn either."""
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    assert client.request('QUEUE', {'queue': 'default', 'op': 'pause'})[0] == 'OK'
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'job'}]}, [b'waits'])
    assert kind == 'SUBMITTED', body
    kind, _, body, _ = worker.request('REGISTER', {'name': 'w1', 'slots': 10})
    assert kind == 'WELCOME', body
    worker.send('CREDIT', {'queues': ['default'], 'credit': 10})
    assert 'w1' in workers(worker)
    broker.control.write_text('fsync')
    kind, _, body, _ = client.request('QUEUE', {'queue': 'default', 'op': 'resume'})
    assert kind == 'ERROR' and body['code'] == 507, body
    with pytest.raises(TimeoutError):
        worker.next_of('DISPATCH', timeout=1.0)


def test_a_task_handed_out_as_a_turn_failed_is_claimed_back_and_runs_once(
        tmp_path, processes, peer_factory):
    """A task ready before a turn may reach a worker before the turn's
    commit. When that commit fails, the worker hears 410 (memory was rebuilt
    under a new epoch), registers again holding the task, the broker adopts
    it, and its result is stored once space is back: it ran once. (CREDIT
    and SUBMIT go in one burst, usually one turn; read in two, the task goes
    before the failed turn instead, and is claimed the same way.)"""
    broker = FaultyBroker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '10000',
                                           '--recovery-ms', '1000'])
    processes.append(broker)
    client = peer_factory(broker.endpoint)
    worker = peer_factory(broker.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [{'name': 'job'}]}, [b'once'])
    assert kind == 'SUBMITTED', body
    task_id = body['tasks'][0]['id']
    kind, _, body, _ = worker.request('REGISTER', {'name': 'w1', 'slots': 1, 'acks': True})
    assert kind == 'WELCOME', body
    broker.control.write_text('fsync')
    worker.send('CREDIT', {'queues': ['default'], 'credit': 1})
    submit = worker.send('SUBMIT', {'tasks': [{'name': 'other'}]}, [b'refused'])
    _, _, body, _ = worker.next_of('DISPATCH', timeout=10)
    lease = body['tasks'][0]['lease']
    assert body['tasks'][0]['id'] == task_id
    # the SUBMIT's 507 says the failed turn is over (a HEARTBEAT read in it,
    # beside the SUBMIT, would be the old session's, which gets no answer)
    _, reqid, body, _ = worker.next_of('ERROR', timeout=10)
    assert reqid == submit and body['code'] == 507, body
    kind, _, body, _ = worker.request('HEARTBEAT', {'busy': 1})
    assert kind == 'ERROR' and body['code'] == 410, body
    kind, _, welcome, _ = worker.request('REGISTER', {
        'name': 'w1', 'slots': 1, 'acks': True, 'held': [{'id': task_id, 'lease': lease}]})
    assert kind == 'WELCOME', welcome
    assert [a['id'] for a in welcome.get('adopted', [])] == [task_id], welcome
    adopted = welcome['adopted'][0]['lease']
    broker.control.write_text('')

    def writable():
        kind, _, body, _ = client.request(
            'SUBMIT', {'tasks': [{'name': 'probe', 'key': 'space-back'}]}, [b''])
        return kind == 'SUBMITTED'
    wait_until(writable, timeout=30, interval=0.2, what='the journal taking writes again')
    kind, _, body, _ = worker.request(
        'RESULT', {'results': [{'id': task_id, 'lease': adopted}]}, [b'done'])
    assert kind == 'RESULT_OK' and body.get('stored') == [task_id], body
    kind, _, body, _ = client.request('STATUS', {'ids': [task_id]})
    assert kind == 'STATUS_REPLY', body
    assert body['tasks'][0]['state'] == SUCCEEDED and body['tasks'][0]['attempts'] == 1, body
    with pytest.raises(TimeoutError):  # and it never went out again
        worker.next_of('DISPATCH', timeout=0.5)


def test_stop_or_kill_while_full_loses_nothing_acknowledged(tmp_path, processes):
    """SIGTERM while the journal is full exits 0 (the stop record cannot be
    written: the next start counts as after a crash); kill -9 then too;
    every task acknowledged before is there after each restart."""
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    ids = [int(cli(broker, 'submit', 'job', 'a%d' % i).stdout) for i in range(3)]
    broker.control.write_text('full')
    assert cli(broker, 'submit', 'job', 'refused').returncode == 4
    assert broker.stop() == 0
    assert 'stopping with the journal full' in broker.output()
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        assert [t['state'] for t in status(peer, ids).values()] == [3, 3, 3]
        ids.append(int(cli(broker, 'submit', 'job', 'b').stdout))
        broker.control.write_text('ioerr')
        assert cli(broker, 'submit', 'job', 'refused').returncode == 4
    finally:
        peer.close()
    broker.kill9()
    broker = FaultyBroker(tmp_path, extra=FAST)
    processes.append(broker)
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        infos = status(peer, ids + [ids[-1] + 1])
        assert [infos[i]['state'] for i in ids] == [3, 3, 3, 3]
        assert all(infos[i].get('found') for i in ids)
        assert not infos[ids[-1] + 1].get('found')  # refused: never stored
    finally:
        peer.close()


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs at tmp_path/mnt, unmounted at the end (after the
    processes fixture has stopped the broker: a test lists it first)."""
    if os.geteuid() != 0:
        pytest.skip('mounting a size-limited tmpfs needs root')
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mnt)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs in this sandbox: %s' % proc.stdout.decode().strip())
    yield mnt
    if subprocess.run(['umount', str(mnt)]).returncode != 0:
        subprocess.run(['umount', '-l', str(mnt)])


def fill_with_zeros(path):
    """Writes zeros to path until its file system is full."""
    # unbuffered: what a failed write left in a buffer would fail again at
    # close, outside the try (seen once)
    with open(path, 'wb', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * 65536)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_full_disk_on_a_real_filesystem(tmpfs, tmp_path, processes):
    broker = Broker(tmp_path, db=str(tmpfs / 'arbiter.db'), extra=FAST)
    processes.append(broker)
    filler = tmpfs / 'filler'

    def fill():
        fill_with_zeros(filler)
        # the journal's WAL may have room left: submits with payloads go on
        # until a commit needs more than the disk has
        for i in range(400):
            proc = cli(broker, 'submit', '--key', 'fill-%d' % i, 'filler', 'x' * 50000)
            if proc.returncode == 4:
                assert b'journal: disk full' in proc.stderr
                return
            assert proc.returncode == 0, proc.stderr
        raise AssertionError('the journal never ran out of space')

    run_through_full_disk(broker, processes, tmp_path, fill, filler.unlink)


def test_a_disk_full_before_the_first_append_is_answered_507(tmpfs, tmp_path, processes):
    """A disk full before the task log's first record (its file still
    empty): the append fails before any byte of it, so there is nothing
    to unmake; the broker answers 507 and serves on, and takes the task
    once space is back (zeroing a header there would fail as the write
    did: the broker stopped, taking a full disk for a broken journal)."""
    broker = Broker(tmp_path, db=str(tmpfs / 'arbiter.db'), extra=FAST)
    processes.append(broker)
    assert os.path.getsize(str(tmpfs / 'arbiter.db-tasklog')) == 0
    filler = tmpfs / 'filler'
    fill_with_zeros(filler)
    proc = cli(broker, 'submit', 'job', 'x')  # no key: a plain row, for the log
    assert proc.returncode == 4 and b'journal: disk full' in proc.stderr, proc.stderr
    assert broker.alive() and 'could not be unmade' not in broker.output()
    filler.unlink()
    submit_until_accepted(broker, 'first', 'x')
    assert broker.alive()


def test_journals_that_are_not_ours_are_refused_at_start(tmp_path):
    import sqlite3
    cases = []
    garbage = tmp_path / 'garbage.db'
    garbage.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(16384)))
    cases.append((garbage, 'is not an SQLite database'))
    other = tmp_path / 'other.db'
    db = sqlite3.connect(str(other))
    db.execute('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)')
    db.commit()
    db.close()
    cases.append((other, "another program's SQLite database"))
    future = tmp_path / 'future.db'
    Broker(tmp_path, db=str(future)).stop()
    db = sqlite3.connect(str(future))
    db.execute('PRAGMA user_version = 42')
    db.close()
    cases.append((future, 'schema version 42, newer than'))
    for path, reason in cases:
        before = path.read_bytes()
        proc = subprocess.run([binary('broker', 'arbiterd'), '--bind',
                               'tcp://127.0.0.1:%d' % free_port(), '--db', str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = proc.stdout.decode()
        assert proc.returncode == 1, out
        assert str(path) in out and reason in out, out
        assert path.read_bytes() == before


def test_a_new_journal_is_said_apart_from_a_loaded_one(tmp_path, processes):
    """A broker that finds no journal at its --db (a misspelt path among
    them) says it made a new, empty one; one that opens its own says it
    loaded it, with what it holds."""
    db = tmp_path / 'missing' / 'arbiter.db'  # its directory made too
    first = Broker(tmp_path, db=str(db))
    processes.append(first)
    assert 'journal created (no journal was at this path: a new, empty one) path=%s' % db \
        in first.output()
    assert first.stop() == 0
    said = len(first.output())
    again = first.restart()  # the same log file, appended
    processes.append(again)
    out = again.output()[said:]
    assert 'journal loaded path=%s epoch=2' % db in out and 'journal created' not in out, out
    empty = tmp_path / 'empty.db'
    empty.write_bytes(b'')  # an empty file is a new journal too
    processes.append(Broker(tmp_path, db=str(empty)))
    assert 'journal created' in processes[-1].output()
