"""The contract between workers and the broker, with real processes: a task
goes only to a worker that runs its name, and waits for one otherwise."""

import json
import subprocess

from conftest import binary, wait_until
from helpers import SUCCEEDED, all_final, start_exec_worker, start_minion, status, submit_many

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
