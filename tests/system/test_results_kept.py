"""A task that finished runs once, whatever happens to the broker meanwhile
(issue 10): the worker keeps each result until the broker acknowledges it
after its commit, claims what it keeps when it registers again, and sends
it again. For the C runtime (arbiter-worker --exec, light and heavy slots)
and the Python worker (thread and process slots), with real processes:

- the broker dies with the RESULT read into its socket but not committed
  (stopped, then kill -9), and comes back at once;
- the broker is down longer than the workers' liveness window while the
  task finishes (the worker registers again from a new socket meanwhile);
- a worker told to stop while the broker does not answer says it leaves
  a result unacknowledged;
- a worker stopped (SIGSTOP) past the liveness window, with a DISPATCH
  waiting for it, does not start it when it goes on (Python worker; the C
  runtime's test is test_worker's test_stalled_worker_registers_before_starting).
"""

import os
import signal
import sys
import time

import pytest

import arbiter_proto
from conftest import SANITIZED, Broker, Process, binary, wait_until
from helpers import status, submit_many
from python_support import APP, PYTHON

SUCCEEDED = 5
FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1000', '--recovery-ms', '3000']

#  arbiter-worker's command: notes its start and end, sleeps payload seconds
COMMAND = ('echo "$ARBITER_TASK_ID" >> "$RUNS/$ARBITER_TASK_ID"; sleep "$(cat)"; '
           'echo "$ARBITER_TASK_ID" >> "$RUNS/$ARBITER_TASK_ID.end"; printf done')
KINDS = ['exec-light', 'exec-heavy', 'python-thread', 'python-process']


def start_worker(kind, broker, processes, tmp_path):
    runs = tmp_path / 'runs'
    runs.mkdir(exist_ok=True)
    env = dict(os.environ, RUNS=str(runs), PYTHONPATH=PYTHON)
    if kind.startswith('exec'):
        args = [binary('worker', 'arbiter-worker'), '--broker', broker.endpoint, '--exec',
                COMMAND, '--slots', '2', '--mode', kind.split('-')[1], '--task', 'nap']
    else:
        args = [sys.executable, APP, broker.endpoint, '--mode', kind.split('-')[1]]
    worker = Process(args, str(tmp_path / ('worker-%d.log' % len(processes))), env=env)
    processes.append(worker)
    return worker


def runs(tmp_path, task_id, suffix=''):
    path = tmp_path / 'runs' / ('%d%s' % (task_id, suffix))
    return len(path.read_text().splitlines()) if path.exists() else 0


def submit_nap(broker, seconds):
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        [task_id] = submit_many(peer, [{'name': 'nap', 'payload': b'%g' % seconds}])
    finally:
        peer.close()
    return task_id


def succeeded(broker, task_id, timeout=30):
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        return wait_until(lambda: (lambda t: t if t['state'] == SUCCEEDED else None)(
            status(peer, [task_id])[task_id]), timeout=timeout, what='task %d done' % task_id)
    finally:
        peer.close()


def registered(worker):
    return worker.output().count('registered')


def start_nap(kind, tmp_path, processes):
    """A broker, a worker of that kind, and a task of 0.3 s started on it."""
    broker = Broker(tmp_path, extra=FAST)
    processes.append(broker)
    worker = start_worker(kind, broker, processes, tmp_path)
    wait_until(lambda: registered(worker) == 1, what='worker registered')
    task_id = submit_nap(broker, 0.3)
    wait_until(lambda: runs(tmp_path, task_id), what='task started')
    return broker, worker, task_id


@pytest.mark.parametrize('kind', KINDS)
def test_result_read_but_not_committed(tmp_path, processes, kind):
    broker, worker, task_id = start_nap(kind, tmp_path, processes)
    # the broker stops reading: the RESULT goes into its socket, and is
    # lost with it
    os.kill(broker.pid, signal.SIGSTOP)
    wait_until(lambda: runs(tmp_path, task_id, '.end'), what='task ended')
    time.sleep(0.3)  # for the RESULT to leave: nothing outside can see it go
    broker.kill9()
    broker = broker.restart()
    processes.append(broker)
    info = succeeded(broker, task_id)
    assert runs(tmp_path, task_id) == 1, worker.output()
    assert info['result'] in (b'done', b'napped')


@pytest.mark.parametrize('kind', KINDS)
def test_result_of_a_task_that_ended_in_a_long_outage(tmp_path, processes, kind):
    broker, worker, task_id = start_nap(kind, tmp_path, processes)
    broker.kill9()
    # it ends before the worker counts the broker gone (its RESULT waits in
    # the socket), and the broker stays down past the worker's liveness
    # window: the worker registers again from a new socket meanwhile
    wait_until(lambda: runs(tmp_path, task_id, '.end'), what='task ended')
    wait_until(lambda: 'registering again' in worker.output(), what='worker gave up the session')
    broker = broker.restart()
    processes.append(broker)
    info = succeeded(broker, task_id)
    assert runs(tmp_path, task_id) == 1, worker.output()
    assert info['result'] in (b'done', b'napped')


@pytest.mark.parametrize('kind', KINDS)
def test_a_stop_that_cannot_wait_for_the_acknowledgement_says_so(tmp_path, processes, kind):
    """Stopped (SIGTERM) while the broker does not answer, the worker ends
    once the broker is silent past its liveness window, with a result the
    broker never acknowledged: it says so, rather than stopping as if all
    were handed over."""
    if SANITIZED and kind.startswith('python'):
        pytest.skip('the Python worker is pure Python: once, with build/, is enough')
    broker, worker, task_id = start_nap(kind, tmp_path, processes)
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        os.kill(worker.pid, signal.SIGTERM)
        wait_until(lambda: runs(tmp_path, task_id, '.end'), what='task ended')
        worker.proc.wait(15)
        assert 'not acknowledged tasks=1' in worker.output(), worker.output()
    finally:
        os.kill(broker.pid, signal.SIGCONT)


def test_stopped_python_worker_registers_before_starting(tmp_path, processes):
    """Python worker, thread slots, against a scripted broker (a ROUTER in
    the test): stopped past the liveness window while it reads a burst that
    ends with a DISPATCH, it registers again when it goes on, from a new
    socket, and the task never starts. Before: it read on and ran it."""
    import zmq
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.SNDHWM, 0)
    port = router.bind_to_random_port('tcp://127.0.0.1')
    try:
        endpoint = 'tcp://127.0.0.1:%d' % port
        runs_dir = tmp_path / 'runs'
        runs_dir.mkdir()
        env = dict(os.environ, RUNS=str(runs_dir), PYTHONPATH=PYTHON)
        worker = Process([sys.executable, APP, endpoint, '--slots', '1'],
                         str(tmp_path / 'pyworker.log'), env=env)
        processes.append(worker)

        def recv(kind, timeout=10.0):
            deadline = time.time() + timeout
            while router.poll(max(1, int((deadline - time.time()) * 1000))):
                parts = router.recv_multipart()
                msg = arbiter_proto.decode(parts[1:])
                if msg[0] == kind:
                    return parts[0], msg
                assert msg[0] in ('HEARTBEAT', 'CREDIT'), msg
            raise TimeoutError('no %s' % kind)

        identity, (_, reqid, _, _) = recv('REGISTER')
        welcome = {'heartbeat_ms': 100, 'liveness_ms': 600, 'epoch': 1}
        router.send_multipart([identity] + arbiter_proto.encode('WELCOME', reqid, welcome))
        recv('CREDIT')
        task = {'id': 9, 'lease': 99, 'attempt': 1, 'queue': 'default', 'name': 'upper'}
        # the burst is queued while the worker is stopped, so that it is
        # still reading it when it is stopped again: sent while it ran, a
        # worker that kept up read it all, DISPATCH too, before the stop
        os.kill(worker.pid, signal.SIGSTOP)
        heartbeat = [identity] + arbiter_proto.encode('HEARTBEAT', 0, {})
        for _ in range(100000):
            router.send_multipart(heartbeat)
        router.send_multipart([identity] + arbiter_proto.encode('DISPATCH', 0, {'tasks': [task]},
                                                                [b'x']))
        os.kill(worker.pid, signal.SIGCONT)
        # 100,001 messages take a Python worker far longer (seconds); 20,000
        # were read to the end in the sanitized run of a loaded CI, whose
        # sleep here lasted longer than 0.05 s
        time.sleep(0.05)
        os.kill(worker.pid, signal.SIGSTOP)
        time.sleep(1.0)  # stopped past the liveness window
        os.kill(worker.pid, signal.SIGCONT)
        again, (_, _, body, _) = recv('REGISTER')
        assert again != identity and not body.get('held'), body
        time.sleep(0.3)
        assert not (runs_dir / '9').exists(), worker.output()
    finally:
        router.close(0)
