"""What a walk through the `arbiter` CLI found, each against a real arbiterd:
a task its queue refused, the status history of a lost lease, durations
below a millisecond, and the words of errors and help texts.
"""

import json
import os
import re
import socket
import subprocess
import unicodedata

import pytest

import arbiter_proto
from conftest import Broker, binary
from test_cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Worker, arbiter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def worker(broker):
    w = Worker(broker.endpoint)
    yield w
    w.stop()


def rejecting_queue(broker, name='rj'):
    """A paused queue of one ready task at most that refuses the rest,
    holding one task already: the next submit to it is refused."""
    for args in (('queue', 'set', name, '--max-ready', '1', '--overflow', 'reject'),
                 ('queue', 'pause', name), ('submit', '--queue', name, 'x', 'first')):
        proc = arbiter(broker.endpoint, *args)
        assert proc.returncode == EXIT_OK, proc.stderr


# -- a task its queue refused -------------------------------------------------

def test_submit_of_a_refused_task_says_so_and_exits_1(broker):
    rejecting_queue(broker)
    proc = arbiter(broker.endpoint, 'submit', '--queue', 'rj', 'x', 'b')
    assert proc.returncode == EXIT_FAILED, proc.stderr
    task = int(proc.stdout)  # the id all the same: `status` tells the rest
    err = proc.stderr.decode()
    assert ('task %d was refused: its queue \'rj\' is over its bound (overflow reject)' % task
            in err), err
    status = arbiter(broker.endpoint, 'status', str(task))
    assert b'cancelled' in status.stdout and b'refused' in status.stdout

    proc = arbiter(broker.endpoint, 'submit', '--json', '--queue', 'rj', 'x', 'c')
    assert proc.returncode == EXIT_FAILED
    out = json.loads(proc.stdout)
    assert out == {'id': out['id'], 'existing': False, 'refused': True}
    error = json.loads(proc.stderr)
    assert 'task %d was refused' % out['id'] in error['error']

    # a task its queue takes: refused false, exit 0
    proc = arbiter(broker.endpoint, 'submit', '--json', 'x', 'd')
    assert proc.returncode == EXIT_OK and json.loads(proc.stdout)['refused'] is False


def test_flow_submits_name_the_tasks_their_queue_refused(broker):
    rejecting_queue(broker)
    dag = {'tasks': [{'name': 'a', 'task': 'x', 'queue': 'rj'},
                     {'name': 'b', 'task': 'x'}]}
    proc = arbiter(broker.endpoint, 'dag', 'submit', '-', stdin=json.dumps(dag).encode())
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert proc.stdout.startswith(b'flow:')
    err = proc.stderr.decode()
    assert '1 task refused by a queue over its bound' in err and "'a' (" in err, err
    assert "'b'" not in err

    proc = arbiter(broker.endpoint, 'dag', 'submit', '--json', '-',
                   stdin=json.dumps(dag).encode())
    assert proc.returncode == EXIT_FAILED
    out = json.loads(proc.stdout)
    assert out['refused'] == ['a'] and set(out['tasks']) == {'a', 'b'}

    group = {'tasks': [{'task': 'x', 'queue': 'rj'}, {'task': 'x', 'queue': 'rj'}]}
    proc = arbiter(broker.endpoint, 'group', 'submit', '-', stdin=json.dumps(group).encode())
    assert proc.returncode == EXIT_FAILED
    assert b'2 tasks refused' in proc.stderr and b"'member1'" in proc.stderr, proc.stderr

    # a pipe's later steps wait (not ready, not bounded): its first is refused
    proc = arbiter(broker.endpoint, 'pipe', 'submit', '--queue', 'rj', 'x', 'y')
    assert proc.returncode == EXIT_FAILED
    assert b"1 task refused" in proc.stderr and b"'step1'" in proc.stderr

    # none refused: exit 0, an empty list
    proc = arbiter(broker.endpoint, 'dag', 'submit', '--json', '-',
                   stdin=json.dumps({'tasks': [{'name': 'c', 'task': 'x'}]}).encode())
    assert proc.returncode == EXIT_OK and json.loads(proc.stdout)['refused'] == []


# -- peek of a paused queue ---------------------------------------------------

def test_peek_help_says_what_a_paused_queue_shows(broker):
    rejecting_queue(broker)  # paused, one ready task
    proc = arbiter(broker.endpoint, 'peek', 'rj')
    assert proc.returncode == EXIT_OK and proc.stdout.count(b'\n') == 1  # the header only
    listed = arbiter(broker.endpoint, 'list', '--state', 'ready', '--queue', 'rj')
    assert b'rj' in listed.stdout
    text = ' '.join(arbiter(broker.endpoint, 'peek', '--help').stdout.decode().split())
    assert 'a paused queue shows none' in text
    assert 'what it would hand out' not in text


# -- retry of a task that died of its parent ----------------------------------

def test_retry_help_and_workflows_say_a_dead_parent_is_not_waited_for(broker, worker):
    dag = {'tasks': [{'name': 'a', 'task': 'fail'}, {'name': 'b', 'task': 'echo', 'after': ['a']}]}
    proc = arbiter(broker.endpoint, 'dag', 'submit', '--watch', '--json', '-',
                   stdin=json.dumps(dag).encode())
    assert proc.returncode == EXIT_FAILED, proc.stderr
    ids = json.loads(proc.stdout.splitlines()[0])['tasks']
    proc = arbiter(broker.endpoint, 'retry', str(ids['b']))
    assert proc.returncode == EXIT_OK and b'now ready' in proc.stdout  # not waiting
    proc = arbiter(broker.endpoint, 'wait', '--json', str(ids['b']))
    assert proc.returncode == EXIT_OK and json.loads(proc.stdout)['state'] == 'succeeded'
    status = arbiter(broker.endpoint, 'status', '--json', str(ids['a']))
    assert json.loads(status.stdout)['state'] == 'dead'  # the parent is still dead

    text = ' '.join(arbiter(broker.endpoint, 'retry', '--help').stdout.decode().split())
    assert ('retried by its own ID while that parent is still dead, does not wait for it: '
            'it is ready at once and runs with the dead parent\'s outcome as its input') in text
    doc = ' '.join(open(os.path.join(ROOT, 'docs', 'workflows.md')).read().split())
    assert ('retried by its own id while that parent is still dead, does **not** wait for '
            'the parent') in doc


# -- a flow submit not acknowledged -------------------------------------------

def test_flow_submit_not_acknowledged_gives_advice_it_can_follow(tmp_path):
    # a peer that takes the connection and never answers
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    silent = 'tcp://127.0.0.1:%d' % listener.getsockname()[1]
    path = tmp_path / 'dag.json'
    path.write_text(json.dumps({'tasks': [{'name': 'a', 'task': 'x'}]}))
    for args in (('dag', 'submit', str(path)), ('pipe', 'submit', 'x', 'y'),
                 ('group', 'submit', str(path))):
        proc = arbiter(silent, *args, rpc_timeout=200)
        assert proc.returncode == EXIT_FAILED, proc.stderr
        err = proc.stderr.decode()
        assert 'outcome unknown' in err and '--key' not in err, err
        assert 'look for its tasks with `arbiter list`' in err, err
    # a single task has a --key: that advice stands
    proc = arbiter(silent, 'submit', 'x', rpc_timeout=200)
    listener.close()
    assert b're-submit with the same --key' in proc.stderr


# -- status history: a lost lease is not a retry ------------------------------

def lose_a_lease(endpoint):
    """A worker that takes the next task of default and goes silent, so that
    the broker declares it dead and its lease lost."""
    peer = arbiter_proto.Peer(endpoint, context=arbiter_proto.zmq.Context())
    peer.send('REGISTER', {'name': 'lost', 'slots': 1})
    peer.send('CREDIT', {'sub': 1, 'queues': ['default'], 'credit': 1})
    while True:
        kind, _, body, _ = peer.recv(timeout=10)
        if kind == 'DISPATCH':
            break
    peer.close()
    return body['tasks'][0]['id']


def history_lines(broker, task):
    proc = arbiter(broker.endpoint, 'status', str(task))
    assert proc.returncode in (EXIT_OK, EXIT_FAILED), proc.stderr
    return proc.stdout.decode().split('\nhistory\n')[1].splitlines()


def test_status_history_tells_a_lost_lease_from_a_retry(tmp_path, processes):
    b = Broker(tmp_path, extra=['--heartbeat-ms', '50', '--liveness-ms', '300'])
    processes.append(b)
    lost = int(arbiter(b.endpoint, 'submit', 'echo', 'x').stdout)
    assert lose_a_lease(b.endpoint) == lost
    w = Worker(b.endpoint)
    try:
        assert arbiter(b.endpoint, 'wait', str(lost)).returncode == EXIT_OK
        lines = history_lines(b, lost)
        assert not any('retried' in line for line in lines), lines
        assert '  -- attempt 1 again: a lost lease uses no attempt' in lines, lines

        # a retry of a dead task is one
        failed = int(arbiter(b.endpoint, 'submit', 'fail', 'y').stdout)
        assert arbiter(b.endpoint, 'wait', str(failed)).returncode == EXIT_FAILED
        assert arbiter(b.endpoint, 'retry', str(failed)).returncode == EXIT_OK
        assert arbiter(b.endpoint, 'wait', str(failed)).returncode == EXIT_FAILED
        assert '  -- retried: a new round of attempts' in history_lines(b, failed)
    finally:
        w.stop()


def test_status_history_after_a_lost_lease_that_killed_the_task(tmp_path, processes):
    # dead of one lost lease, then retried: attempt 1 after a lost lease,
    # and the record (the lost count starts again) cannot say which it was
    b = Broker(tmp_path, extra=['--heartbeat-ms', '50', '--liveness-ms', '300',
                                '--max-lost', '1'])
    processes.append(b)
    task = int(arbiter(b.endpoint, 'submit', 'echo', 'x').stdout)
    assert lose_a_lease(b.endpoint) == task
    assert arbiter(b.endpoint, 'wait', str(task)).returncode == EXIT_FAILED
    assert arbiter(b.endpoint, 'retry', str(task)).returncode == EXIT_OK
    w = Worker(b.endpoint)
    try:
        assert arbiter(b.endpoint, 'wait', str(task)).returncode == EXIT_OK
        lines = history_lines(b, task)
        assert ('  -- attempt 1 again: after the lost lease, or a retry of the dead task'
                in lines), lines
    finally:
        w.stop()


# -- durations below a millisecond --------------------------------------------

def test_a_positive_duration_below_1_ms_is_1_ms_not_none(broker):
    def stored(*args):
        proc = arbiter(broker.endpoint, 'submit', '--json', *args)
        assert proc.returncode == EXIT_OK, proc.stderr
        task = json.loads(proc.stdout)['id']
        return json.loads(arbiter(broker.endpoint, 'status', '--json', str(task)).stdout)

    assert stored('--timeout', '0.0004', 'x')['timeout_ms'] == 1
    assert stored('--timeout', '0.0005', 'x')['timeout_ms'] == 1
    assert stored('--timeout', '0.0016', 'x')['timeout_ms'] == 2
    assert stored('--timeout', '0', 'x')['timeout_ms'] == 0  # 0 stays none
    task = stored('--timeout', '1', '--soft-timeout', '0.0001', 'x')
    assert task['soft_timeout_ms'] == 1
    # once refused as "more than 0 s": now 1 ms, as they were meant
    for args in (('--endpoint-timeout', '0.0001'), ('--retries', '1', '--backoff', 'exp:0.0001,1')):
        proc = arbiter(broker.endpoint, 'submit', '--broadcast', *args, 'x')
        assert b'more than 0 s' not in proc.stderr, proc.stderr

    dag = {'tasks': [{'name': 'a', 'task': 'x', 'timeout': 0.0001}]}
    proc = arbiter(broker.endpoint, 'dag', 'submit', '--json', '-', stdin=json.dumps(dag).encode())
    assert proc.returncode == EXIT_OK, proc.stderr
    task = json.loads(proc.stdout)['tasks']['a']
    status = json.loads(arbiter(broker.endpoint, 'status', '--json', str(task)).stdout)
    assert status['timeout_ms'] == 1


# -- docs made true -----------------------------------------------------------

def test_arbiterd_creates_the_journal_directory_as_its_man_page_says(tmp_path, processes):
    page = ' '.join(open(os.path.join(ROOT, 'dist', 'man', 'arbiterd.8.scd')).read().split())
    assert 'must exist' not in page
    assert 'Its directory is created at start if it does not exist' in page
    db = tmp_path / 'not' / 'there' / 'arbiter.db'
    b = Broker(tmp_path, db=str(db))
    processes.append(b)
    assert db.exists()


def test_status_json_puts_an_unknown_id_in_its_own_object_as_wait_does(broker, worker):
    known = int(arbiter(broker.endpoint, 'submit', 'echo', 'x').stdout)
    for command in ('wait', 'status'):
        proc = arbiter(broker.endpoint, command, '--json', '999999', str(known))
        assert proc.returncode == EXIT_USAGE, (command, proc.stderr)
        assert proc.stderr == b'', (command, proc.stderr)
        objs = [json.loads(line) for line in proc.stdout.splitlines()]
        unknown = [o for o in objs if o['id'] == 999999]
        assert unknown and unknown[0]['state'] == 'unknown', (command, objs)
        assert unknown[0]['error'] == 'no such task'
    # without --json: a line on stderr, as before
    proc = arbiter(broker.endpoint, 'status', '999999')
    assert proc.returncode == EXIT_USAGE and b'task 999999 not found' in proc.stderr


# -- small ones ---------------------------------------------------------------

@pytest.mark.parametrize('value', ['0', '-5', 'abc', '86400001'])
def test_rpc_timeout_says_one_range_for_every_value_it_refuses(value):
    proc = arbiter('tcp://127.0.0.1:9', '--rpc-timeout', value, 'ping')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.decode() == (
        "arbiter: --rpc-timeout: expected a whole number from 1 to 86400000, not '%s'\n" % value)


# -- endpoints out of range ---------------------------------------------------

@pytest.mark.parametrize('endpoint,message', [
    ('tcp://127.0.0.1:99999', "--broker: 'tcp://127.0.0.1:99999': the port 99999 is out of "
                              "range (1 to 65535)"),
    ('tcp://127.0.0.1:65536', 'the port 65536 is out of range'),
    ('tcp://127.0.0.1:abc', "the port 'abc' is not a number"),
    ('tcp://127.0.0.1:0', 'the port 0 is out of range'),
    ('foo', "--broker: expected tcp://HOST:PORT")])
def test_cli_refuses_a_broker_port_out_of_range(endpoint, message):
    # 99999 reached a broker on 34463 (libzmq wraps it), 65536 port 0
    proc = arbiter(endpoint, 'ping')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.decode().startswith('arbiter: ') and message in proc.stderr.decode()
    assert len(proc.stderr.splitlines()) == 1
    env = dict(os.environ, ARBITER_BROKER=endpoint)
    proc = subprocess.run([binary('client', 'arbiter'), 'ping'], capture_output=True, env=env,
                          timeout=30)
    assert proc.returncode == EXIT_USAGE and b'arbiter: ARBITER_BROKER: ' in proc.stderr


def display_column(line, at):
    """The terminal column of line[at]: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in line[:at])


def test_tables_pad_names_by_the_columns_they_take(broker):
    """A queue or task name in UTF-8 takes fewer columns than bytes: the
    tables of list and stats pad it to its columns, so the columns after
    it line up."""
    for queue, name in (('ascii-q', 'plain'), ('\u00fcn\u00ef-q', '\u4efb\u52a1')):
        assert arbiter(broker.endpoint, 'submit', '--queue', queue, name).returncode == EXIT_OK
    listing = arbiter(broker.endpoint, 'list').stdout.decode().splitlines()
    rows = [line for line in listing if '-q ' in line]
    assert len(rows) == 2, listing
    # ATTEMPTS, after QUEUE and NAME
    at = {display_column(row, re.search(r' \d+/\d+ ', row).start()) for row in rows}
    assert len(at) == 1, rows
    stats = arbiter(broker.endpoint, 'stats').stdout.decode().splitlines()
    rows = [line for line in stats if line.startswith(('ascii-q', '\u00fcn\u00ef-q'))]
    assert len(rows) == 2, stats
    # the first count, after QUEUE
    at = {display_column(row, re.search(r' +(\d)', row).start(1)) for row in rows}
    assert len(at) == 1, rows
