"""arbiter-worker against a real arbiterd: commands run per task, in light
and heavy slots, with their environment, parents and failures; stops
(cancel, timeout) that leave no process behind; a broker restart; a
draining SIGTERM; and the binary's usage and exit statuses.

The test is the client (a Python peer speaking the wire protocol); the
worker is the real binary with one command that acts on $ARBITER_TASK_NAME.
"""

import json
import os
import signal
import subprocess
import time

import pytest

import arbiter_proto
from conftest import Process, binary, wait_until
from helpers import gone, read_pid

SUCCEEDED, DEAD, CANCELLED = 5, 7, 8

#  One command for every test: what it does depends on the task's name.
COMMAND = r'''
case "$ARBITER_TASK_NAME" in
  upper) tr a-z A-Z ;;
  fail) cat >/dev/null; echo "it broke" >&2; exit 3 ;;
  slow) echo $$ > "$PIDDIR/$ARBITER_TASK_ID"; exec sleep 30 ;;
  orphan) echo $$ > "$PIDDIR/$ARBITER_TASK_ID"; sh -c "$ORPHAN" orphan "$PIDDIR/$ARBITER_TASK_ID" ;;
  nap) sleep 1; echo done ;;
  json) printf '{"x": 1}' ;;
  parents) cat "$ARBITER_PARENTS" ;;
  env) printf '%s|%s|%s|%s' "$ARBITER_TASK_ID" "$ARBITER_ATTEMPT" "$ARBITER_TASK_NAME" \
           "$ARBITER_QUEUE" ;;
  *) echo "unknown task $ARBITER_TASK_NAME" >&2; exit 1 ;;
esac
'''


#  A shell that the task's command starts (a grandchild of a light worker),
#  which starts a sleep: each notes its pid in $1.sh and $1.sleep, and the
#  shell notes its start and end in $1.log.
ORPHAN = ('echo $$ > "$1.sh"; echo start >> "$1.log"; sleep 5 & echo $! > "$1.sleep"; wait $!; '
          'echo end >> "$1.log"')


def start_worker(broker, processes, tmp_path, *extra):
    piddir = tmp_path / 'pids'
    piddir.mkdir(exist_ok=True)
    (tmp_path / 'tmp').mkdir(exist_ok=True)
    env = dict(os.environ, PIDDIR=str(piddir), TMPDIR=str(tmp_path / 'tmp'), ORPHAN=ORPHAN)
    args = [binary('worker', 'arbiter-worker'), '--broker', broker.endpoint,
            '--exec', COMMAND, '--grace-ms', '500'] + list(extra)
    worker = Process(args, str(tmp_path / ('worker-%d.log' % len(processes))), env=env)
    processes.append(worker)
    return worker


@pytest.fixture
def client(broker, peer_factory):
    return peer_factory(broker.endpoint)


def submit(peer, tasks):
    """Submits tasks (dicts; 'payload' goes in its frame) with watch; ids."""
    specs = [{k: v for k, v in t.items() if k != 'payload'} for t in tasks]
    kind, _, reply, _ = peer.request('SUBMIT', {'watch': True, 'tasks': specs},
                                     [t.get('payload', b'') for t in tasks])
    assert kind == 'SUBMITTED', reply
    return [t['id'] for t in reply['tasks']]


def wait_done(peer, ids, timeout=20.0):
    """{id: (state, error, result)} once every id has been reported done."""
    done = {}
    deadline = time.time() + timeout
    while set(ids) - set(done):
        _, _, body, frames = peer.next_of('DONE', timeout=max(0.1, deadline - time.time()))
        for task, frame in zip(body['tasks'], frames):
            done[task['id']] = (task['state'], task.get('error', ''), frame)
    return done


def pid_of(tmp_path, task_id):
    return read_pid(tmp_path / 'pids' / str(task_id))


def test_usage_and_exit_statuses():
    worker = binary('worker', 'arbiter-worker')
    out = subprocess.run([worker, '--help'], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and 'usage: arbiter-worker' in out.stdout
    for bad in (['--slots', '0', '--exec', 'true'], ['--mode', 'medium', '--exec', 'true'],
                ['--queue', 'q'], ['--exec', 'true', '--bogus'], ['--exec', 'true', 'extra'],
                ['--exec', 'true', '--grace-ms', '-1'], ['--exec', 'true', '--log-level', 'loud'],
                ['--exec', 'true', '--task', '']):
        out = subprocess.run([worker] + bad, capture_output=True, text=True, timeout=10)
        assert out.returncode == 2, bad
        # one line and a hint, as the arbiter CLI's
        lines = out.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith('arbiter-worker: '), (bad, out.stderr)
        assert lines[1] == 'see arbiter-worker --help', bad
        assert out.stdout == '', bad


@pytest.mark.parametrize('mode', ['light', 'heavy'])
def test_commands_run_tasks(broker, processes, client, tmp_path, mode):
    start_worker(broker, processes, tmp_path, '--slots', '4', '--mode', mode,
                 '--queue', 'default', '--queue', 'other')
    tasks = [{'name': 'upper', 'payload': b'hello %d' % i} for i in range(40)]
    tasks += [{'name': 'fail', 'payload': b'x'}, {'name': 'env', 'queue': 'other'}]
    ids = submit(client, tasks)
    done = wait_done(client, ids)
    for i in range(40):
        assert done[ids[i]] == (SUCCEEDED, '', b'HELLO %d' % i)
    assert done[ids[40]][:2] == (DEAD, 'it broke')
    assert done[ids[41]] == (SUCCEEDED, '', b'%d|1|env|other' % ids[41])


def test_parents_reach_the_command(broker, processes, client, tmp_path):
    start_worker(broker, processes, tmp_path, '--slots', '2')
    ids = submit(client, [
        {'name': 'json', 'ref': 'first'},
        {'name': 'upper', 'ref': 'second', 'payload': b'text'},
        {'name': 'parents', 'ref': 'last', 'after': [{'ref': 'first'}, {'ref': 'second'}]},
    ])
    state, error, result = wait_done(client, ids)[ids[2]]
    assert state == SUCCEEDED, error
    parents = json.loads(result)
    assert parents == {
        'first': {'id': ids[0], 'state': 'succeeded', 'result': {'x': 1}, 'error': None},
        'second': {'id': ids[1], 'state': 'succeeded', 'result': 'TEXT', 'error': None}}


@pytest.mark.parametrize('mode', ['light', 'heavy'])
def test_cancel_and_timeout_kill_the_command(broker, processes, client, tmp_path, mode):
    start_worker(broker, processes, tmp_path, '--slots', '2', '--mode', mode)
    cancelled, timed_out = submit(client, [{'name': 'slow'},
                                           {'name': 'slow', 'timeout_ms': 1000}])
    pids = [pid_of(tmp_path, cancelled), pid_of(tmp_path, timed_out)]
    kind, _, reply, _ = client.request('CANCEL', {'ids': [cancelled]})
    assert kind == 'CANCEL_REPLY' and reply['tasks'][0].get('code', 0) == 0, reply
    done = wait_done(client, [cancelled, timed_out])
    assert done[cancelled][0] == CANCELLED
    assert done[timed_out][0] == DEAD and 'timed out' in done[timed_out][1]
    for pid in pids:
        wait_until(lambda: gone(pid), timeout=3, what='process %d gone' % pid)
    # killed mid-command, the worker left no temporary file behind
    assert os.listdir(tmp_path / 'tmp') == []
    # both slots are free again
    ids = submit(client, [{'name': 'upper', 'payload': b'a'}, {'name': 'upper', 'payload': b'b'}])
    assert {r[2] for r in wait_done(client, ids).values()} == {b'A', b'B'}


@pytest.mark.parametrize('mode', ['light', 'heavy'])
def test_kill9_of_the_worker_kills_its_commands(broker, processes, client, tmp_path, mode):
    # the broker gives a dead worker's tasks to others: whatever the task
    # started on this host must not run on beside that rerun
    worker = start_worker(broker, processes, tmp_path, '--slots', '1', '--mode', mode)
    task, = submit(client, [{'name': 'orphan'}])
    base = tmp_path / 'pids' / str(task)
    pids = [read_pid(base)] + [read_pid(tmp_path / 'pids' / ('%d.%s' % (task, what)))
                               for what in ('sh', 'sleep')]
    assert not any(gone(pid) for pid in pids)
    worker.kill9()
    for pid in pids:
        wait_until(lambda: gone(pid), timeout=3, what='process %d gone' % pid)
    # nothing of the task is left that could write its end
    assert (tmp_path / 'pids' / ('%d.log' % task)).read_text() == 'start\n'


def test_broker_restart(broker, processes, client, tmp_path):
    start_worker(broker, processes, tmp_path)
    ids = submit(client, [{'name': 'upper', 'payload': b'before'}])
    assert wait_done(client, ids)[ids[0]][2] == b'BEFORE'
    broker.kill9()
    client.close()
    again = broker.restart()
    processes.append(again)
    peer = arbiter_proto.Peer(again.endpoint)
    try:
        ids = submit(peer, [{'name': 'upper', 'payload': b'after'}])
        assert wait_done(peer, ids, timeout=20)[ids[0]] == (SUCCEEDED, '', b'AFTER')
    finally:
        peer.close()


# SIGHUP (the terminal of a worker started by hand closed) drains too: it
# ended the worker at once, dropping its running task
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_lets_running_tasks_finish(broker, processes, client, tmp_path, sig):
    worker = start_worker(broker, processes, tmp_path, '--slots', '1')
    ids = submit(client, [{'name': 'nap'}])
    wait_until(lambda: client.request('STATUS', {'ids': ids})[2]['tasks'][0]['state'] == 4,
               what='task running')
    os.kill(worker.pid, sig)
    assert wait_done(client, ids)[ids[0]] == (SUCCEEDED, '', b'done\n')
    worker.proc.wait(10)
    assert worker.proc.returncode == 0
    assert 'stopped' in worker.output()


def test_second_sigterm_stops_at_once(broker, processes, client, tmp_path):
    worker = start_worker(broker, processes, tmp_path, '--slots', '1', '--mode', 'heavy')
    ids = submit(client, [{'name': 'slow'}])
    pid = pid_of(tmp_path, ids[0])
    os.kill(worker.pid, signal.SIGTERM)
    # two signals, not one: the second after the worker has acted on the first
    wait_until(lambda: 'worker: stopping' in worker.output(), what='drain started')
    os.kill(worker.pid, signal.SIGTERM)
    worker.proc.wait(5)
    assert worker.proc.returncode == 0
    wait_until(lambda: gone(pid), timeout=3, what='command killed')
    assert os.listdir(tmp_path / 'tmp') == []
    # the BYE gave the lease back: the task is ready again, no attempt lost
    # (the BYE left before the worker exited, but the broker may answer this
    # client's STATUS in a turn before it reads the worker's connection; a
    # lease lost instead would be ready again only after the liveness
    # window, with its attempt counted)
    task = wait_until(lambda: (lambda t: t if t['state'] != 4 else None)(
        client.request('STATUS', {'ids': ids})[2]['tasks'][0]), timeout=5,
        what='the lease given back')
    assert task['state'] == 3 and task.get('attempts', 0) == 0, task
    # nor counted as lost (a lost lease counts toward quarantine), nor in
    # its history as an attempt
    assert task.get('lost', 0) == 0 and not task.get('history'), task
