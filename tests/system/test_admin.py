"""Keeping the broker's journal and settings: `arbiter delete` (and the
DELETE verb), by id and in bulk, and `arbiter queue show` (and the queue
settings STATS carries), against a real arbiterd."""

import json
import time

import pytest

from conftest import wait_until
from helpers import (DEAD, SUCCEEDED, journal_value, queue_counts, status, submit_many,
                     wait_state)
from test_cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Worker, arbiter


@pytest.fixture
def worker(broker):
    w = Worker(broker.endpoint)
    yield w
    w.stop()


def cli(broker, *args):
    return arbiter(broker.endpoint, *args)


def cancelled_tasks(peer, queue, n):
    """n tasks of queue, cancelled at once: finished tasks without a worker."""
    ids = submit_many(peer, [{'name': 'x', 'queue': queue} for _ in range(n)], batch=1000)
    kind, _, body, _ = peer.request('CANCEL', {'queue': queue})
    assert kind == 'CANCEL_REPLY', body
    return ids


def test_delete_by_id(broker, processes, worker, peer_factory):
    client = peer_factory(broker.endpoint)
    done, dead = submit_many(client, [{'name': 'echo'}, {'name': 'fail', 'retries': 2}])
    later, = submit_many(client, [{'name': 'echo', 'delay_ms': 60000}])
    wait_state(client, done, SUCCEEDED)
    wait_state(client, dead, DEAD)
    assert journal_value(broker, 'SELECT count(*) FROM attempts WHERE task_id = ?', dead) == 3
    proc = cli(broker, 'delete', str(done), str(dead), str(later), '999999')
    assert proc.returncode == EXIT_USAGE, proc.stderr  # an unknown id
    assert proc.stdout.decode().splitlines() == [
        '%d deleted (it was succeeded)' % done, '%d deleted (it was dead)' % dead,
        '%d not deleted: it is scheduled' % later, '999999 not found']
    info = status(client, [done, dead, later])
    assert not info[done].get('found') and not info[dead].get('found')
    assert info[later]['state'] == 2
    # with its history, and out of the counts
    assert journal_value(broker, 'SELECT count(*) FROM attempts WHERE task_id = ?', dead) == 0
    counts = queue_counts(client)
    assert counts['succeeded'] == 0 and counts['dead'] == 0 and counts['scheduled'] == 1
    # deleting it again: not found
    proc = cli(broker, '--json', 'delete', str(done))
    assert proc.returncode == EXIT_USAGE
    assert json.loads(proc.stdout) == {'count': 0, 'tasks': [{'id': done, 'code': 404,
                                                             'state': None}]}
    # new ids never reuse a deleted one, even the last one given out
    last, = submit_many(client, [{'name': 'echo'}])
    wait_state(client, last, SUCCEEDED)
    assert cli(broker, 'delete', str(last)).returncode == EXIT_OK
    assert broker.stop() == 0
    restarted = broker.restart()
    processes.append(restarted)
    client = peer_factory(restarted.endpoint)
    newer, = submit_many(client, [{'name': 'echo', 'delay_ms': 60000}])
    assert newer > last


def test_delete_keeps_a_parent_that_unfinished_tasks_wait_for(broker, worker, peer_factory):
    client = peer_factory(broker.endpoint)
    kind, _, reply, _ = client.request('SUBMIT', {'flow_kind': 1, 'tasks': [
        {'name': 'echo', 'ref': 'a'},
        {'name': 'echo', 'ref': 'b', 'delay_ms': 60000},
        {'name': 'echo', 'ref': 'c', 'input': 1, 'after': [{'ref': 'a'}]},
        {'name': 'echo', 'ref': 'd', 'after': [{'ref': 'a'}, {'ref': 'b'}]}]},
        [b'in a', b'', b'', b''])
    a, b, c, d = [t['id'] for t in reply['tasks']]
    wait_state(client, c, SUCCEEDED)
    # d waits for b and will read a's result: a stays
    proc = cli(broker, 'delete', str(a))
    assert proc.returncode == EXIT_FAILED
    assert proc.stdout == b'%d not deleted: tasks that have not ended depend on it\n' % a
    assert status(client, [a])[a]['state'] == SUCCEEDED
    assert status(client, [c])[c]['result'] == b'in a'


def test_delete_in_bulk(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    junk = cancelled_tasks(client, 'junk', 2300)
    keep = cancelled_tasks(client, 'keep', 5)
    waiting, = submit_many(client, [{'name': 'x', 'queue': 'junk'}])
    proc = cli(broker, 'delete', '--state', 'dead', '--older-than', '1d')
    assert proc.returncode == EXIT_OK and proc.stdout == b'0 tasks deleted\n', proc.stderr
    assert cli(broker, 'delete', '--queue', 'junk', '--older-than', '1h').stdout == \
        b'0 tasks deleted\n'
    # more than one step of the journal (1000 tasks looked at each)
    proc = cli(broker, '--json', 'delete', '--queue', 'junk', '--state', 'cancelled')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert json.loads(proc.stdout) == {'count': 2300, 'tasks': []}
    info = status(client, [junk[0], junk[-1], keep[0], waiting])
    assert not info[junk[0]].get('found') and not info[junk[-1]].get('found')
    assert info[keep[0]]['state'] == 8 and info[waiting]['state'] == 3
    assert queue_counts(client, 'junk').get('cancelled', 0) == 0
    assert queue_counts(client, 'keep')['cancelled'] == 5

    # by age: only what finished at least that long ago
    old = cancelled_tasks(client, 'aged', 1)[0]
    finished = status(client, [old])[old]['finished_ms']
    wait_until(lambda: time.time() * 1000 > finished + 3500, timeout=10, what='3.5 s of age')
    young = cancelled_tasks(client, 'aged', 1)[0]
    proc = cli(broker, 'delete', '--queue', 'aged', '--older-than', '3')
    assert proc.stdout == b'1 task deleted\n', proc.stderr
    info = status(client, [old, young])
    assert not info[old].get('found') and info[young]['state'] == 8


def test_delete_refusals(broker, peer_factory):
    client = peer_factory(broker.endpoint)
    for body, code, why in [
            ({}, 400, 'give ids, or a state, a queue or older_than_ms'),
            ({'ids': [1], 'state': 7}, 400, 'not both'),
            ({'state': 3}, 422, 'state: 3 is not a final state'),
            ({'queue': ''}, 422, 'queue: must not be empty'),
            ({'ids': list(range(1, 1002))}, 413, 'ids')]:
        kind, _, reply, _ = client.request('DELETE', body)
        assert kind == 'ERROR' and reply['code'] == code and why in reply['reason'], reply
    # a step: at most 1000 tasks looked at, and where to go on from
    cancelled_tasks(client, 'q', 1200)
    kind, _, reply, _ = client.request('DELETE', {'queue': 'q'})
    assert kind == 'DELETE_REPLY' and reply['count'] == 1000 and reply['more'] is True
    kind, _, reply, _ = client.request('DELETE', {'queue': 'q', 'after_id': reply['last_id']})
    assert reply['count'] == 200 and not reply.get('more')
    for args, why in [(['delete'], b'give task IDs'),
                      (['delete', '1', '--state', 'dead'], b'give task IDs'),
                      (['delete', '--state', 'running'], b'is not succeeded, dead'),
                      (['delete', '--older-than', '1w'], b'expected'),
                      (['delete'] + [str(i) for i in range(1, 1002)], b'at most 1000')]:
        proc = cli(broker, *args)
        assert proc.returncode == EXIT_USAGE and why in proc.stderr, (args, proc.stderr)


def test_queue_show_reads_the_settings_back(broker, processes, peer_factory):
    proc = cli(broker, 'queue', 'set', 'arb', '--max-running', '3', '--rate', '50',
               '--retention', '3600', '--on-failure', 'head')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert cli(broker, 'queue', 'pause', 'arb').returncode == EXIT_OK
    client = peer_factory(broker.endpoint)
    submit_many(client, [{'name': 'x', 'queue': 'arb'}, {'name': 'x'}])
    proc = cli(broker, 'queue', 'show', 'arb')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        'queue arb', '  paused       yes', '  max running  3', '  rate         50/s',
        '  retention    1 h 00 min', '  on failure   head', '  tasks        ready 1']
    shown = json.loads(cli(broker, '--json', 'queue', 'show', 'arb').stdout)
    assert shown['paused'] is True and shown['counts']['ready'] == 1
    assert shown['settings'] == {'max_running': 3, 'rate_per_sec': 50, 'retention_ms': 3600000,
                                 'on_failure': 'head'}
    # stats --json has them too, and only those set
    stats = json.loads(cli(broker, '--json', 'stats').stdout)
    queues = {q['name']: q for q in stats['queues']}
    assert queues['arb']['settings'] == shown['settings'] and queues['default']['settings'] == {}
    proc = cli(broker, 'queue', 'show', 'default')
    assert '  settings     the defaults' in proc.stdout.decode()
    # they live in the journal; 0 puts one back to its default
    assert broker.stop() == 0
    restarted = broker.restart()
    processes.append(restarted)
    assert cli(restarted, 'queue', 'set', 'arb', '--rate', '0', '--on-failure',
               'retry').returncode == EXIT_OK
    shown = json.loads(cli(restarted, '--json', 'queue', 'show', 'arb').stdout)
    assert shown['settings'] == {'max_running': 3, 'retention_ms': 3600000}
    assert shown['paused'] is True
    proc = cli(restarted, 'queue', 'show', 'nope')
    assert proc.returncode == EXIT_USAGE and b"no queue named 'nope'" in proc.stderr


def test_status_of_a_task_past_its_attempts_under_the_head_policy(broker, peer_factory):
    # on_failure head runs a failing task again and again (until the
    # quarantine): "attempts 3/1" would read as a count gone wrong
    assert cli(broker, 'queue', 'set', 'hq', '--on-failure', 'head').returncode == EXIT_OK
    client = peer_factory(broker.endpoint)
    [task] = submit_many(client, [{'name': 'x', 'queue': 'hq'}])
    worker_peer = peer_factory(broker.endpoint)
    kind, _, body, _ = worker_peer.request('REGISTER', {'name': 'w', 'slots': 1})
    assert kind == 'WELCOME', body
    for _ in range(3):
        body = {}
        deadline = time.time() + 10
        while not body.get('tasks') and time.time() < deadline:
            kind, _, body, _ = worker_peer.request('TAKE', {'queue': 'hq', 'max': 1})
            assert kind == 'DISPATCH', body
            time.sleep(0.05)
        [taken] = body['tasks']
        worker_peer.send('RESULT', {'results': [{'id': task, 'lease': taken['lease'],
                                                 'outcome': 1, 'error': 'boom'}]}, [b''])
    wait_until(lambda: status(client, [task])[task]['attempts'] == 3)
    proc = cli(broker, 'status', str(task))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert '  attempts     3\n' in proc.stdout.decode(), proc.stdout
    # and so does the listing's column
    proc = cli(broker, 'list', '--queue', 'hq')
    assert proc.returncode == EXIT_OK, proc.stderr
    [row] = proc.stdout.decode().splitlines()[1:]
    assert row.split()[4] == '3', row
    # a task within its attempts shows both
    [other] = submit_many(client, [{'name': 'x', 'retries': 2}])
    assert '  attempts     0/3\n' in cli(broker, 'status', str(other)).stdout.decode()


def test_limits_read_back(broker, processes, peer_factory):
    # `arbiter limit [NAME]` without a limit to set shows them (LIMITS),
    # with how many tasks of the name run now; they live in the journal
    proc = cli(broker, 'limit')
    assert proc.returncode == EXIT_OK and proc.stdout == b'no task name has limits\n', proc
    assert cli(broker, 'limit', 'resize', '--max-running', '2').returncode == EXIT_OK
    assert cli(broker, 'limit', 'thumbs', '--rate', '10').returncode == EXIT_OK
    client = peer_factory(broker.endpoint)
    [task] = submit_many(client, [{'name': 'resize', 'queue': 'lq'}])
    worker_peer = peer_factory(broker.endpoint)
    kind, _, body, _ = worker_peer.request('REGISTER', {'name': 'w', 'slots': 1})
    assert kind == 'WELCOME', body
    deadline = time.time() + 10
    while time.time() < deadline:
        kind, _, body, _ = worker_peer.request('TAKE', {'queue': 'lq', 'max': 1})
        if body.get('tasks'):
            break
        time.sleep(0.05)
    assert [t['id'] for t in body['tasks']] == [task]
    proc = cli(broker, 'limit')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert [line.split() for line in proc.stdout.decode().splitlines()] == [
        ['NAME', 'MAX', 'RUNNING', 'RATE/S', 'RUNNING'], ['resize', '2', '-', '1'],
        ['thumbs', '-', '10', '0']]
    shown = [json.loads(line) for line in cli(broker, '--json', 'limit', 'thumbs').stdout.splitlines()]
    assert shown == [{'name': 'thumbs', 'max_running': 0, 'rate_per_sec': 10, 'running': 0}]
    assert cli(broker, 'limit', 'other').stdout == b'tasks named other: no limits\n'
    assert cli(broker, 'limit', 'a', 'b').returncode == EXIT_USAGE
    # a limit cleared is gone; the others are there after a restart
    assert cli(broker, 'limit', 'thumbs', '--rate', '0').returncode == EXIT_OK
    assert broker.stop() == 0
    restarted = broker.restart()
    processes.append(restarted)
    proc = cli(restarted, '--json', 'limit')
    assert [json.loads(line)['name'] for line in proc.stdout.splitlines()] == ['resize'], proc
