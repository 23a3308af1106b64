"""The contract between workers and the broker, with real processes: a task
goes only to a worker that runs its name, and waits for one otherwise; a
result over the broker's --max-payload fails its task and frees its slot; a
worker says when it cannot reach the broker, and may give up; a soft timeout
warns the command before the hard one."""

import json
import subprocess

import pytest

from conftest import Broker, Process, binary, free_port, wait_until
from helpers import (DEAD, SUCCEEDED, all_final, start_exec_worker, start_minion, status,
                     submit_many)

ADD = 'read a b; echo $((a + b))'


def cli(broker, *args, timeout=30):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def wait_workers(peer, count):
    """Waits until count workers have subscribed to a queue."""
    def subscribed():
        _, _, body, _ = peer.request('STATS', {})
        return len([w for w in body.get('workers', []) if w.get('queues')]) >= count
    wait_until(subscribed, what='%d workers subscribed' % count)


def test_tasks_reach_a_worker_that_runs_their_name(broker, processes, peer_factory, tmp_path):
    # the case: examples/minion runs simple_add and sleep, the other
    # worker add; before, 4 of 6 adds died "no handler for task 'add'"
    start_minion(broker, processes, tmp_path, '--slots', '4', '--name', 'minion')
    start_exec_worker(broker, processes, tmp_path, ADD, '--task', 'add', '--slots', '2',
                      '--name', 'adder')
    client = peer_factory(broker.endpoint)
    wait_workers(client, 2)
    tasks = [{'name': 'add', 'payload': b'%d 10' % i} for i in range(6)]
    tasks += [{'name': 'simple_add', 'payload': b'2 3'}, {'name': 'sleep', 'payload': b'10'}]
    ids = submit_many(client, tasks)
    wait_until(all_final(client, ids), what='every task final')
    infos = status(client, ids)
    for i, task_id in enumerate(ids):
        info = infos[task_id]
        assert info['state'] == SUCCEEDED, info
        assert info['worker'] == ('adder' if i < 6 else 'minion'), info
    for i in range(6):
        assert cli(broker, 'wait', str(ids[i])).stdout == b'%d\n' % (i + 10)


def test_a_task_nobody_runs_waits_for_a_handler(broker, processes, peer_factory, tmp_path):
    start_exec_worker(broker, processes, tmp_path, ADD, '--task', 'add')
    client = peer_factory(broker.endpoint)
    wait_workers(client, 1)
    waiting, behind = submit_many(client, [{'name': 'resize', 'priority': 5, 'payload': b'x'},
                                           {'name': 'add', 'payload': b'1 2'}])
    # the task behind it runs; it waits, and says why
    wait_until(all_final(client, [behind]), what='the add done')
    info = status(client, [waiting])[waiting]
    assert info['state'] == 3 and info.get('no_handler') is True, info
    text = cli(broker, 'status', str(waiting)).stdout.decode()
    assert 'ready (waiting for a handler)' in text, text
    rows = cli(broker, 'list', '--state', 'ready').stdout.decode()
    assert 'waiting for a handler' in rows, rows
    shown = json.loads(cli(broker, 'status', '--json', str(waiting)).stdout)
    assert shown['no_handler'] is True
    # a worker that runs it comes, and it runs
    start_exec_worker(broker, processes, tmp_path, 'tr x y', '--task', 'resize')
    wait_until(all_final(client, [waiting]), what='the resize done')
    info = status(client, [waiting])[waiting]
    assert info['state'] == SUCCEEDED and not info.get('no_handler'), info
    assert cli(broker, 'wait', str(waiting)).stdout == b'y'


def test_a_catch_all_worker_runs_every_name(broker, processes, peer_factory, tmp_path):
    start_exec_worker(broker, processes, tmp_path, 'printf "%s" "$ARBITER_TASK_NAME"')
    client = peer_factory(broker.endpoint)
    ids = submit_many(client, [{'name': 'n%d' % i} for i in range(5)])
    wait_until(all_final(client, ids), what='every task final')
    assert {t['state'] for t in status(client, ids).values()} == {SUCCEEDED}


def test_a_result_over_the_limit_fails_its_task(tmp_path, processes, peer_factory):
    # the case: before, the task stayed running for ever and
    # submit --watch never returned
    b = Broker(tmp_path, extra=['--max-payload', '1K'])
    processes.append(b)
    start_exec_worker(b, processes, tmp_path, 'if [ "$ARBITER_TASK_NAME" = big ]; then '
                      'head -c 5000 /dev/zero; else echo small; fi')
    proc = cli(b, 'submit', '--watch', 'big', timeout=60)
    assert proc.returncode == 1, proc
    assert b'result of 5000 bytes is over the 1024-byte limit' in proc.stderr, proc.stderr
    # the slot is free again
    proc = cli(b, 'submit', '--watch', 'small', timeout=60)
    assert proc.returncode == 0 and proc.stdout.endswith(b'\nsmall\n'), proc


def test_the_broker_fails_only_the_task_whose_result_is_too_large(tmp_path, processes,
                                                                   peer_factory):
    # a worker that does not know the limit sends the result anyway
    b = Broker(tmp_path, extra=['--max-payload', '1K'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    worker = peer_factory(b.endpoint)
    kind, _, welcome, _ = worker.request('REGISTER', {'name': 'careless', 'slots': 2})
    assert kind == 'WELCOME' and welcome['max_payload'] == 1024, welcome
    worker.send('CREDIT', {'queues': ['default'], 'credit': 2})
    wait_workers(client, 1)
    ids = submit_many(client, [{'name': 'big'}, {'name': 'small'}])
    leased = []
    while len(leased) < 2:
        kind, _, body, _ = worker.next_of('DISPATCH', timeout=10)
        leased += body['tasks']
    by_name = {t['name']: t for t in leased}
    items = [{'id': by_name[n]['id'], 'lease': by_name[n]['lease']} for n in ('big', 'small')]
    worker.send('RESULT', {'results': items}, [b'x' * 5000, b'fine'])
    wait_until(all_final(client, ids), what='both final')
    infos = status(client, ids)
    assert infos[ids[0]]['state'] == DEAD
    assert infos[ids[0]]['error'] == 'result of 5000 bytes is over the 1024-byte limit'
    assert infos[ids[1]]['state'] == SUCCEEDED
    _, _, stats, _ = client.request('STATS', {})
    assert [w.get('busy', 0) for w in stats['workers']] == [0]


def test_a_worker_says_it_cannot_reach_the_broker(tmp_path, processes, peer_factory):
    # before, it waited for ever and said nothing
    port = free_port()
    endpoint = 'tcp://127.0.0.1:%d' % port
    worker = Process([binary('worker', 'arbiter-worker'), '--broker', endpoint, '--exec', 'cat'],
                     str(tmp_path / 'worker.log'))
    processes.append(worker)
    # said, and said again every few seconds while it lasts
    wait_until(lambda: worker.output().count('cannot reach the broker') >= 2, timeout=20,
               what='two "cannot reach" lines')
    assert 'endpoint=%s' % endpoint in worker.output()
    # the broker comes: the worker registers and runs tasks
    b = Broker(tmp_path, port=port)
    processes.append(b)
    client = peer_factory(b.endpoint)
    ids = submit_many(client, [{'name': 'echo', 'payload': b'hi'}])
    wait_until(all_final(client, ids), timeout=20, what='task done')
    assert status(client, ids)[ids[0]]['state'] == SUCCEEDED


def test_connect_timeout_gives_up_with_status_1(tmp_path):
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    proc = subprocess.run([binary('worker', 'arbiter-worker'), '--broker', endpoint,
                           '--exec', 'cat', '--connect-timeout', '0.5'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 1, proc
    assert b'cannot reach the broker endpoint=%s, giving up' % endpoint.encode() in proc.stderr
    out = subprocess.run([binary('worker', 'arbiter-worker'), '--exec', 'cat',
                          '--connect-timeout', 'soon'], capture_output=True, timeout=10)
    assert out.returncode == 2 and b'--connect-timeout' in out.stderr


WARNED = 'trap \'echo warned; exit 0\' USR1; sleep 30 & wait'


@pytest.mark.parametrize('mode', ['light', 'heavy'])
def test_soft_timeout_warns_the_command(broker, processes, peer_factory, tmp_path, mode):
    start_exec_worker(broker, processes, tmp_path, WARNED, '--mode', mode)
    proc = cli(broker, 'submit', '--watch', '--timeout', '20', '--soft-timeout', '1', 'slow')
    assert proc.returncode == 0, proc
    assert proc.stdout.endswith(b'\nwarned\n'), proc.stdout
    task = int(proc.stdout.split()[0])
    shown = json.loads(cli(broker, 'status', '--json', str(task)).stdout)
    assert shown['soft_timeout_ms'] == 1000 and shown['timeout_ms'] == 20000
    assert 'soft timeout' in cli(broker, 'status', str(task)).stdout.decode()


def test_soft_timeout_is_kept_across_a_restart(broker, processes, peer_factory, tmp_path):
    proc = cli(broker, 'submit', '--soft-timeout', '1', 'slow')
    assert proc.returncode == 0, proc
    task = int(proc.stdout)
    broker.kill9()
    again = broker.restart()
    processes.append(again)
    start_exec_worker(again, processes, tmp_path, WARNED)
    proc = cli(again, 'wait', str(task))
    assert proc.returncode == 0 and proc.stdout == b'warned\n', proc


def test_soft_timeout_must_be_below_the_timeout(broker, peer_factory):
    proc = cli(broker, 'submit', '--timeout', '5', '--soft-timeout', '5', 'slow')
    assert proc.returncode == 2
    assert b'--soft-timeout: must be below --timeout' in proc.stderr
    client = peer_factory(broker.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [
        {'name': 'slow', 'timeout_ms': 1000, 'soft_timeout_ms': 1000}]}, [b''])
    assert kind == 'ERROR' and body['code'] == 422, body
    assert body['reason'] == 'tasks[0].soft_timeout_ms: 1000 is not below timeout_ms (1000)'
