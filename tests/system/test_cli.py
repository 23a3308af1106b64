"""The `arbiter` CLI against a real arbiterd: outputs and exit statuses.

Tasks are run by a small worker in a thread of the test (a Python peer
speaking the wire protocol), so that these tests need only the broker and
the CLI. Its handlers: "echo" returns the payload, "upper" the payload in
capitals, "fail" fails with "boom", "sleep" sleeps payload seconds first.
"""

import json
import os
import pty
import select
import signal
import subprocess
import threading
import time

import pytest

import arbiter_proto
from conftest import Broker, binary, free_port, wait_until
from helpers import start_exec_worker

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


class Worker(threading.Thread):
    """One slot per task name, all in this thread; re-registers after 410."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.stopping = threading.Event()
        self.start()

    def register(self, peer):
        peer.send('REGISTER', {'name': 'pytest', 'slots': 8})
        peer.send('CREDIT', {'sub': 1, 'queues': ['default'], 'credit': 8})

    def handle(self, peer, task, payload):
        if task['name'] == 'sleep':
            time.sleep(float(payload or b'0'))
        if task['name'] == 'fail':
            result = {'id': task['id'], 'lease': task['lease'], 'outcome': 1, 'error': 'boom'}
            frame = b''
        else:
            result = {'id': task['id'], 'lease': task['lease']}
            frame = payload.upper() if task['name'] == 'upper' else payload
        peer.send('RESULT', {'results': [result]}, [frame])
        peer.send('CREDIT', {'sub': 1, 'credit': 1})

    def run(self):
        peer = arbiter_proto.Peer(self.endpoint, context=arbiter_proto.zmq.Context())
        self.register(peer)
        while not self.stopping.is_set():
            try:
                kind, _, body, frames = peer.recv(timeout=0.2)
            except TimeoutError:
                peer.send('HEARTBEAT', {})
                continue
            if kind == 'DISPATCH':
                for task, payload in zip(body['tasks'], frames):
                    self.handle(peer, task, payload)
            elif kind == 'ERROR' and body.get('code') == 410:
                self.register(peer)
        peer.close()

    def stop(self):
        self.stopping.set()
        self.join(5)


@pytest.fixture
def worker(broker):
    w = Worker(broker.endpoint)
    yield w
    w.stop()


def arbiter(broker_endpoint, *args, stdin=None, timeout=60, rpc_timeout=None):
    cmd = [binary('client', 'arbiter'), '--broker', broker_endpoint]
    if rpc_timeout:
        cmd += ['--rpc-timeout', str(rpc_timeout)]
    proc = subprocess.run(cmd + list(args), input=stdin if stdin is not None else b'',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    assert 'Sanitizer' not in proc.stderr.decode('utf-8', 'replace'), proc.stderr
    return proc


def submit(broker, *args, **kw):
    proc = arbiter(broker.endpoint, 'submit', *args, **kw)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[0])


def test_submit_and_wait_print_the_result(broker, worker):
    task = submit(broker, 'upper', 'hello')
    proc = arbiter(broker.endpoint, 'wait', str(task))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout == b'HELLO'  # one id: the bytes as they are

    proc = arbiter(broker.endpoint, 'submit', '--watch', 'echo', '-', stdin=b'from\nstdin')
    assert proc.returncode == EXIT_OK, proc.stderr
    first, rest = proc.stdout.split(b'\n', 1)
    assert int(first) > task and rest == b'from\nstdin'


def test_failed_task_exits_1(broker, worker):
    proc = arbiter(broker.endpoint, 'submit', '--watch', 'fail', 'x')
    assert proc.returncode == EXIT_FAILED
    assert b'dead after 1 attempt: boom' in proc.stderr


def test_wait_many_lines_and_json(broker, worker):
    ok, bad = submit(broker, 'echo', 'a\nb'), submit(broker, 'fail', 'y')
    proc = arbiter(broker.endpoint, 'wait', str(ok), str(bad))
    assert proc.returncode == EXIT_FAILED
    lines = sorted(proc.stdout.decode().splitlines())
    assert lines == sorted(['%d succeeded: a\\nb' % ok, '%d dead: boom' % bad])
    assert proc.stderr == b''  # no progress line when stderr is not a terminal

    proc = arbiter(broker.endpoint, 'wait', '--json', str(ok), str(bad))
    objs = {o['id']: o for o in map(json.loads, proc.stdout.decode().splitlines())}
    assert objs[ok]['state'] == 'succeeded' and objs[ok]['result'] == 'a\nb'
    assert objs[ok]['error'] is None  # every line has the keys --help lists
    assert objs[bad]['state'] == 'dead' and objs[bad]['error'] == 'boom'


def test_wait_draws_progress_on_a_terminal(broker, worker):
    # the last ends 2 s after its submit: after `wait` has started, however
    # slowly the submits went (a sanitized build on a busy machine), and
    # apart from the others, so that the bar has a step between 0 and 4
    sleeps = ['1.0', '1.5', '2.0']
    ids = [submit(broker, 'sleep', s) for s in sleeps] + [submit(broker, 'fail', 'z')]
    master, slave = pty.openpty()
    proc = subprocess.Popen([binary('client', 'arbiter'), '--broker', broker.endpoint, 'wait']
                            + [str(i) for i in ids], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen = b''
    while True:
        try:
            chunk = os.read(master, 4096)  # EIO once the CLI has exited
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_FAILED
    # results on stdout, a line each, never mixed with the bar
    assert sorted(out.decode().splitlines()) == sorted(
        ['%d succeeded: %s' % (i, s) for i, s in zip(ids, sleeps)] + ['%d dead: boom' % ids[3]])
    # the bar is drawn in place on stderr as tasks finish, then wiped
    assert b'\r[------------------------] 0/4 done, 0 failed' in screen
    assert b'/s  ETA ' in screen
    assert any(b'] %d/4 done' % n in screen for n in (1, 2, 3)), screen
    assert screen.endswith(b'\r\x1b[K')


def test_wait_timeout_and_unknown_ids(broker):
    task = submit(broker, '--delay', '1m', 'echo', 'later')  # a time with its unit
    started = time.time()
    proc = arbiter(broker.endpoint, 'wait', '--timeout', '0.5', str(task))
    assert proc.returncode == EXIT_TIMEOUT
    assert time.time() - started < 10
    assert b'1 of 1 task unfinished after 0.5 s: %d (scheduled)' % task in proc.stderr
    proc = arbiter(broker.endpoint, 'wait', '999999')
    assert proc.returncode == EXIT_USAGE and b'999999: no such task' in proc.stderr


def test_wait_timeout_says_what_keeps_a_task_ready(broker, processes, tmp_path):
    """A task left ready at a wait's timeout is said with what keeps it:
    no worker consumes its queue (a misspelt queue), the queue is paused,
    or no worker of the queue runs its name (a misspelt task name)."""
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'picky', '--task', 'mine')
    wait_until(lambda: b'picky' in arbiter(broker.endpoint, 'stats').stdout,
               what='the worker on picky')
    lonely = submit(broker, '--queue', 'nobody', 'echo', 'x')
    other = submit(broker, '--queue', 'picky', 'theirs', 'x')
    assert arbiter(broker.endpoint, 'queue', 'pause', 'held').returncode == EXIT_OK
    held = submit(broker, '--queue', 'held', 'echo', 'x')
    proc = arbiter(broker.endpoint, 'wait', '--timeout', '0.5', str(lonely), str(other), str(held))
    assert proc.returncode == EXIT_TIMEOUT
    assert (b"3 of 3 tasks unfinished after 0.5 s: %d (ready: no worker consumes queue 'nobody'), "
            b"%d (ready: no worker of queue 'picky' runs 'theirs'), "
            b"%d (ready: queue 'held' is paused)" % (lonely, other, held)) in proc.stderr, \
        proc.stderr


def test_wait_timeout_with_the_broker_silent_lists_the_ids(broker):
    """A broker that stops answering during a wait: at the timeout the
    CLI asks STATUS, is not answered within its second, and says the ids
    alone (the diagnosis is not a second wait)."""
    task = submit(broker, '--queue', 'nobody', 'echo', 'x')
    proc = subprocess.Popen([binary('client', 'arbiter'), '--broker', broker.endpoint, 'wait',
                             '--timeout', '2', str(task)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peer = arbiter_proto.Peer(broker.endpoint)
    try:  # the CLI has connected and waits for the DONE
        wait_until(lambda: peer.request('STATS', {})[2].get('watches', 0) >= 1,
                   what="the wait's watch")
    finally:
        peer.close()
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        started = time.time()
        _, err = proc.communicate(timeout=20)
        took = time.time() - started
    finally:
        os.kill(broker.pid, signal.SIGCONT)  # bounded: never left stopped
    assert proc.returncode == EXIT_TIMEOUT, err
    assert b'1 of 1 task unfinished after 2.0 s: %d\n' % task in err, err
    # the rest of the timeout, then a second for STATUS (not the CLI's 5 s
    # --rpc-timeout: that would be a second wait)
    assert took < 5, took


def test_status_json(broker, worker):
    task = submit(broker, '--key', 'k-status', '--priority', '3', '--retries', '2', 'echo', 'x')
    assert arbiter(broker.endpoint, 'wait', str(task)).returncode == EXIT_OK
    proc = arbiter(broker.endpoint, 'status', '--json', str(task))
    assert proc.returncode == EXIT_OK, proc.stderr
    status = json.loads(proc.stdout)
    assert status['state'] == 'succeeded' and status['result'] == 'x'
    assert status['key'] == 'k-status' and status['priority'] == 3
    assert status['max_attempts'] == 3
    assert status['created'].endswith('Z') and status['created_ms'] > 0
    proc = arbiter(broker.endpoint, 'status', '999999')
    assert proc.returncode == EXIT_USAGE and b'task 999999 not found' in proc.stderr


def test_same_key_returns_the_first_task(broker):
    first = submit(broker, '--key', 'once', 'echo', 'a')
    proc = arbiter(broker.endpoint, '--json', 'submit', '--key', 'once', 'echo', 'b')
    assert proc.returncode == EXIT_OK
    assert json.loads(proc.stdout) == {'id': first, 'existing': True, 'refused': False}


def test_bad_values_exit_2_and_send_nothing(broker):
    cases = [
        (['--delay', '-1'], b'arbiter: --delay: must be 0 or more seconds'),
        (['--delay', 'soon'], b'arbiter: --delay: expected a duration, like 30, 1.5h or 7d'),
        (['--delay', '31622401'], b'arbiter: --delay: 31622401 s is over the limit of 366 days'),
        (['--retries', '1001'], b'arbiter: --retries: 1001 is over the limit of 1000'),
        (['--timeout', '2592001'], b'arbiter: --timeout:'),
        (['--backoff', 'exp:5,1'], b'arbiter: --backoff: exp: CAP (1 s) is below BASE (5 s)'),
        (['--at', '2026-02-30T00:00:00Z'], b'arbiter: --at: expected an RFC 3339 time'),
        (['--priority', '1.5'], b'arbiter: --priority:'),
        (['--queue', 'q' * 201], b'arbiter: --queue: 201 bytes, over the 200-byte limit'),
    ]
    for args, message in cases:
        proc = arbiter(broker.endpoint, 'submit', *args, 'echo', 'x')
        assert proc.returncode == EXIT_USAGE, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
    proc = arbiter(broker.endpoint, 'submit', '--bogus', 'echo')
    assert proc.returncode == EXIT_USAGE  # one line and a hint, not the whole help
    assert proc.stderr == b'arbiter submit: unknown option --bogus\nsee arbiter submit --help\n'
    proc = arbiter(broker.endpoint, '--json', 'list')
    assert proc.returncode == EXIT_OK and proc.stdout == b''  # nothing was submitted


def test_scheduled_at(broker):
    at = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + 3600))
    task = submit(broker, '--at', at, 'echo', 'x')
    status = json.loads(arbiter(broker.endpoint, 'status', '--json', str(task)).stdout)
    assert status['state'] == 'scheduled' and status['not_before'] == at.replace('Z', '.000Z')


def test_unreachable_broker_fails_within_the_timeout():
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    for args in (['ping'], ['status', '1'], ['wait', '1'], ['submit', 'echo', 'x']):
        started = time.time()
        proc = arbiter(endpoint, *args, rpc_timeout=300)
        assert proc.returncode == EXIT_FAILED, (args, proc.stderr)
        assert time.time() - started < 5
        assert b'within 0.3 s' in proc.stderr, proc.stderr
        # nothing listens: said so, and a submit that reached no broker is
        # not one of unknown outcome
        assert b'cannot reach the broker at' in proc.stderr, proc.stderr
        assert b'outcome unknown' not in proc.stderr, proc.stderr


def test_a_port_that_holds_the_connection_silently_is_named():
    """A port that takes the connection and says nothing (the gateway's
    Kestrel or HTTP port waits for a line): the CLI says no ZeroMQ
    handshake came, not only that the broker did not answer."""
    import socket
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    held = []

    def hold():
        listener.settimeout(5)
        try:
            while len(held) < 8:
                held.append(listener.accept()[0])
        except OSError:
            pass
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        endpoint = 'tcp://127.0.0.1:%d' % listener.getsockname()[1]
        proc = arbiter(endpoint, 'ping', rpc_timeout=500)
        assert proc.returncode == EXIT_FAILED, proc.stderr
        assert b'a connection was made, but no ZeroMQ handshake' in proc.stderr, proc.stderr
        assert held, 'the CLI never connected'
    finally:
        listener.close()
        for conn in held:
            conn.close()
        thread.join(timeout=10)


def test_a_payload_over_the_brokers_limit_is_said_so(tmp_path, processes):
    small = Broker(tmp_path, extra=['--max-payload', '1K'])
    processes.append(small)
    proc = arbiter(small.endpoint, 'submit', 'echo', '-', stdin=b'x' * 2000)
    assert proc.returncode != EXIT_OK
    assert proc.stderr == (b"arbiter: submit: payload of 2000 bytes, over the 1024-byte limit "
                           b"(the broker's --max-payload)\n"), proc.stderr


def test_cancel_retry_and_queue(broker, worker):
    later = submit(broker, '--delay', '60', 'echo', 'x')
    proc = arbiter(broker.endpoint, 'cancel', str(later))
    assert proc.returncode == EXIT_OK and proc.stdout == b'%d cancelled\n' % later, proc.stdout
    proc = arbiter(broker.endpoint, 'cancel', str(later))  # finished already: a no-op
    assert proc.returncode == EXIT_FAILED
    proc = arbiter(broker.endpoint, 'cancel', '999999')
    assert proc.returncode == EXIT_USAGE and b'999999 not found' in proc.stdout

    dead = submit(broker, 'fail', 'x')
    assert arbiter(broker.endpoint, 'wait', str(dead)).returncode == EXIT_FAILED
    proc = arbiter(broker.endpoint, '--json', 'retry', str(dead))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert json.loads(proc.stdout)['tasks'][0]['code'] == 0
    # it fails again: its history shows the two rounds apart
    assert arbiter(broker.endpoint, 'wait', str(dead)).returncode == EXIT_FAILED
    history = arbiter(broker.endpoint, 'status', str(dead)).stdout.decode()
    history = history[history.index('history\n'):].splitlines()[1:]
    assert [line.split()[0] for line in history] == ['#1', '--', '#1'], history
    assert history[1] == '  -- retried: a new round of attempts'

    proc = arbiter(broker.endpoint, 'queue', 'purge', 'default')
    assert proc.returncode == EXIT_USAGE and b'--yes' in proc.stderr
    assert arbiter(broker.endpoint, 'queue', 'purge', 'default', '--yes').returncode == EXIT_OK
    assert arbiter(broker.endpoint, 'queue', 'pause', 'default').returncode == EXIT_OK
    stats = json.loads(arbiter(broker.endpoint, '--json', 'stats').stdout)
    assert [q for q in stats['queues'] if q['name'] == 'default'][0]['paused'] is True
    assert arbiter(broker.endpoint, 'queue', 'resume', 'default').returncode == EXIT_OK
    proc = arbiter(broker.endpoint, 'queue', 'set', 'default', '--max-running', '2', '--rate',
                   '50')
    assert proc.returncode == EXIT_OK, proc.stderr
    proc = arbiter(broker.endpoint, '--json', 'limit', 'echo', '--max-running', '3')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert json.loads(proc.stdout) == {'name': 'echo', 'max_running': 3, 'rate_per_sec': 0}
    assert arbiter(broker.endpoint, 'limit', 'echo', '--rate', '-1').returncode == EXIT_USAGE


def test_queue_bounds(broker):
    for i in range(4):
        submit(broker, '--queue', 'bounded', 'echo', str(i))
    proc = arbiter(broker.endpoint, 'queue', 'set', 'bounded', '--max-ready', '2',
                   '--max-ready-bytes', '1000')
    assert proc.returncode == EXIT_OK, proc.stderr
    proc = arbiter(broker.endpoint, 'queue', 'show', 'bounded')
    assert b'max ready    2 tasks' in proc.stdout and b'1000 bytes' in proc.stdout, proc.stdout
    assert b'ready 2' in proc.stdout and b'cancelled 2' in proc.stdout, proc.stdout
    shown = json.loads(arbiter(broker.endpoint, '--json', 'queue', 'show', 'bounded').stdout)
    assert shown['settings'] == {'max_ready': 2, 'max_ready_bytes': 1000}
    assert arbiter(broker.endpoint, 'queue', 'set', 'bounded', '--max-ready', '0').returncode \
        == EXIT_OK
    shown = json.loads(arbiter(broker.endpoint, '--json', 'queue', 'show', 'bounded').stdout)
    assert shown['settings'] == {'max_ready_bytes': 1000}
    proc = arbiter(broker.endpoint, 'queue', 'set', 'bounded', '--max-ready', 'many')
    assert proc.returncode == EXIT_USAGE and b'max-ready' in proc.stderr
    assert arbiter(broker.endpoint, 'queue', 'set', 'bounded', '--overflow', 'reject') \
        .returncode == EXIT_OK
    proc = arbiter(broker.endpoint, 'queue', 'show', 'bounded')
    assert b'overflow     reject' in proc.stdout, proc.stdout
    proc = arbiter(broker.endpoint, 'queue', 'set', 'bounded', '--overflow', 'drop-tail')
    assert proc.returncode == EXIT_USAGE and b'drop-head or reject' in proc.stderr
    proc = arbiter(broker.endpoint, 'queue', 'pause', 'bounded', '--max-ready', '3')
    assert proc.returncode == EXIT_USAGE and b'go with set' in proc.stderr


def test_list_pages_and_limit(broker):
    ids = [submit(broker, '--delay', '60', 'echo', str(i)) for i in range(5)]
    rows = arbiter(broker.endpoint, '--json', 'list', '--state', 'scheduled').stdout.splitlines()
    assert [json.loads(r)['id'] for r in rows] == ids
    proc = arbiter(broker.endpoint, 'list', '--limit', '3')
    assert len(proc.stdout.splitlines()) == 1 + 3 and b'more tasks match' in proc.stderr
    proc = arbiter(broker.endpoint, 'list', '--state', 'bogus')
    assert proc.returncode == EXIT_USAGE


def test_wait_survives_a_broker_restart(broker, processes, worker):
    task = submit(broker, 'sleep', '1')
    waiter = subprocess.Popen([binary('client', 'arbiter'), '--broker', broker.endpoint, 'wait',
                               str(task)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    broker.kill9()
    again = broker.restart()
    processes.append(again)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == EXIT_OK, err
    assert out == b'1'


def test_oldest_ready_age_survives_a_broker_restart(broker, processes):
    """stats' oldest ready age counts from the task's submit, not from the
    broker's start: tasks loaded from the journal, in the cold backlog or
    in memory (one with a start time never goes cold)."""
    submit(broker, '--queue', 'aged', 'echo', 'plain')
    submit(broker, '--queue', 'aged-kept', '--at', '1', 'echo', 'kept')
    time.sleep(1.5)
    broker.kill9()
    again = broker.restart()
    processes.append(again)
    stats = json.loads(arbiter(again.endpoint, '--json', 'stats').stdout)
    ages = {q['name']: q['oldest_ready_age_ms'] for q in stats['queues']}
    assert ages['aged'] >= 1500 and ages['aged-kept'] >= 1500, ages


def test_events_until_sigint(broker, worker):
    proc = subprocess.Popen([binary('client', 'arbiter'), '--broker', broker.endpoint, 'events',
                             '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)

    def events_of(task, timeout):
        """States of task's events read within timeout."""
        states, deadline = [], time.time() + timeout
        while 'succeeded' not in states and time.time() < deadline:
            if select.select([proc.stdout], [], [], 0.1)[0]:
                event = json.loads(proc.stdout.readline())
                if event['id'] == task:
                    states.append(event['state'])
        return states

    try:
        # the tail subscribes shortly after it starts: submit until it sees one
        wait_until(lambda: 'succeeded' in events_of(submit(broker, 'echo', 'e'), 1.0),
                   timeout=30, what='events of a task')
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == EXIT_OK, proc.stderr.read()
