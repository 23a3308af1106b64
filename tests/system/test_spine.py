"""The spine, end to end with real processes: arbiterd, arbiter-worker (exec
commands) and the C minion, on loopback with temporary journals.

- 1,000 tasks through two exec workers, every result right;
- kill -9 of the broker right after 10,000 acknowledged submits: after a
  restart all 10,000 are there, and then run;
- kill -9 of a worker in the middle of a task: the task runs to completion
  on another worker, and its history says the first lease was lost;
- kill -9 of the broker while tasks run: the workers claim them back when
  the broker returns, and each runs once, whether it finished while the
  broker was away or after it came back.
"""

import os
import signal
import time

import pytest

from conftest import SANITIZED, Broker, wait_until
from helpers import (SUCCEEDED, all_final, queue_counts, start_exec_worker, start_minion,
                     status, submit_many, wait_state)


def test_many_tasks_through_two_exec_workers(broker, processes, peer_factory, tmp_path):
    for name in ('alpha', 'beta'):
        start_exec_worker(broker, processes, tmp_path, 'read a b; echo $((a + b))',
                          '--slots', '4', '--name', name)
    client = peer_factory(broker.endpoint)
    # a shell a task: 300 take the same paths as 1,000 (which took 34 s
    # under the sanitizers and 10 in build/, on the budget's critical path)
    count = 300
    ids = submit_many(client, [{'name': 'sum', 'payload': b'%d %d' % (i, i * 3)}
                               for i in range(count)])
    wait_until(all_final(client, ids), timeout=120, interval=0.5, what='%d tasks' % count)
    infos = status(client, ids)
    for i, task_id in enumerate(ids):
        assert infos[task_id]['state'] == SUCCEEDED, infos[task_id]
        assert infos[task_id]['result'] == b'%d\n' % (4 * i)
    workers = {infos[i]['worker'] for i in ids}
    assert workers == {'alpha', 'beta'}


def test_kill9_after_10000_acknowledged_submits(broker, processes, peer_factory, tmp_path):
    client = peer_factory(broker.endpoint)
    tasks = [{'name': 'simple_add', 'payload': b'%d %d' % (i, i)} for i in range(10000)]
    ids = submit_many(client, tasks)
    assert len(set(ids)) == 10000
    # every submit above was acknowledged: nothing may be lost now
    broker.kill9()
    restarted = broker.restart()
    processes.append(restarted)
    client = peer_factory(restarted.endpoint)
    assert queue_counts(client)['ready'] == 10000
    start_minion(restarted, processes, tmp_path, '--slots', '32')
    wait_until(lambda: queue_counts(client).get('succeeded') == 10000, timeout=120,
               interval=0.5, what='10,000 tasks run')
    infos = status(client, ids)
    assert all(infos[task_id]['result'] == b'%d' % (2 * i) for i, task_id in enumerate(ids))
    # each ran once: the restart gave them back exactly once
    assert all(infos[task_id]['attempts'] == 1 for task_id in ids)


def test_kill9_of_a_worker_mid_task(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '1000'])
    processes.append(b)
    marks = tmp_path / 'marks'
    marks.mkdir()
    command = 'echo "$ARBITER_WORKER" >> "$MARKS/$ARBITER_TASK_ID"; sleep 2; echo finished'
    first = start_exec_worker(b, processes, tmp_path, command, '--name', 'first',
                              env={'MARKS': str(marks), 'ARBITER_WORKER': 'first'})
    client = peer_factory(b.endpoint)
    [task_id] = submit_many(client, [{'name': 'long'}])
    wait_until(lambda: (marks / str(task_id)).exists(), what='the task starts on the first worker')
    start_exec_worker(b, processes, tmp_path, command, '--name', 'second',
                      env={'MARKS': str(marks), 'ARBITER_WORKER': 'second'})
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(10)
    wait_state(client, task_id, SUCCEEDED, timeout=30 if SANITIZED else 15)
    info = status(client, [task_id])[task_id]
    assert info['result'] == b'finished\n'
    assert info['worker'] == 'second'
    assert info['lost'] == 1 and info['attempts'] == 1
    assert (marks / str(task_id)).read_text().split() == ['first', 'second']
    lost = [a for a in info['history'] if a.get('outcome') == 3]
    assert len(lost) == 1 and lost[0]['worker'] == 'first'


@pytest.mark.parametrize('mode', ['light', 'heavy'])
def test_tasks_running_when_the_broker_dies_run_once(broker, processes, peer_factory, tmp_path,
                                                      mode):
    marks = tmp_path / 'marks'
    marks.mkdir()
    # the payload is how long a task runs
    command = 'echo run >> "$MARKS/$ARBITER_TASK_ID"; sleep "$(cat)"; echo "done $ARBITER_ATTEMPT"'
    start_exec_worker(broker, processes, tmp_path, command, '--slots', '4', '--mode', mode,
                      env={'MARKS': str(marks)})
    client = peer_factory(broker.endpoint)
    short = submit_many(client, [{'name': 'job', 'payload': b'0.5'} for _ in range(2)])
    long = submit_many(client, [{'name': 'job', 'payload': b'4'} for _ in range(2)])
    waiting = submit_many(client, [{'name': 'job', 'payload': b'0'} for _ in range(4)])
    wait_until(lambda: len(os.listdir(marks)) == 4, what='four tasks running')
    broker.kill9()
    time.sleep(1.5)  # the short ones finish while the broker is away
    restarted = broker.restart()
    processes.append(restarted)
    client = peer_factory(restarted.endpoint)
    ids = short + long + waiting
    wait_until(all_final(client, ids), timeout=60, interval=0.2, what='every task')
    infos = status(client, ids)
    for task_id in ids:
        info = infos[task_id]
        assert (marks / str(task_id)).read_text() == 'run\n', 'task %d ran twice' % task_id
        assert info['state'] == SUCCEEDED and info['result'] == b'done 1\n', info
        assert info['attempts'] == 1 and info.get('lost', 0) == 0, info
