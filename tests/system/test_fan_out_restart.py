"""Fan-out tasks across broker restarts, retries and broadcasts to nobody,
with a real arbiterd, the arbiter CLI and arbiter-worker.

- a fan-out task still waiting for its copies survives a clean stop and a
  kill -9, with the task log on and off: the broker starts, the task waits
  with its copies, completes when its endpoint shows up and answers, or
  dies at its endpoint timeout;
- a dead fan-out task is not retried (409: the CLI, the wire, HTTP), before
  and after a restart;
- a broadcast that reaches no worker is refused at submit (exit 2), and
  creates no task;
- a journal of schema 9, whose fan-out tasks have copies 0 (the count was
  in memory only), still opens: its waiting fan-out task completes, its
  dead one is not retried, and a broadcast that found no worker ends dead;
- a copy whose endpoint dies while running it waits for the endpoint to
  come back for its endpoint timeout again, and the fan-out ends dead as
  incomplete if it does not (it waited for ever).
"""

import json
import sqlite3
import subprocess

import pytest

import arbiter_proto
from conftest import Broker, binary, wait_until
from helpers import start_exec_worker

FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1000']


def cli(broker, *args, timeout=60):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def status(broker, task_id):
    proc = cli(broker, '--json', 'status', str(task_id))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def submit(broker, *args):
    proc = cli(broker, 'submit', *args)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.decode().strip())


def copies_column(db, task_id):
    """The journal row's copies of a task (read beside the running broker)."""
    con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    try:
        return con.execute('SELECT copies FROM tasks WHERE id = ?', (task_id,)).fetchone()[0]
    finally:
        con.close()


def retry_code(broker, task_id):
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        kind, _, body, _ = peer.request('RETRY', {'ids': [task_id]})
    finally:
        peer.close()
    assert kind == 'RETRY_REPLY', (kind, body)
    return body['tasks'][0]['code']


def deploy_worker(broker, processes, tmp_path, name):
    return start_exec_worker(broker, processes, tmp_path, 'echo "deployed $(cat) on $WHO"',
                             '--name', name, env={'WHO': name})


def stop_broker(broker, how):
    if how == 'kill9':
        broker.kill9()
    else:
        assert broker.stop() == 0, broker.output()


@pytest.mark.parametrize('task_log', ['on', 'off'])
@pytest.mark.parametrize('how', ['stop', 'kill9'])
def test_waiting_fan_out_survives_a_restart(tmp_path, processes, how, task_log):
    b = Broker(tmp_path, extra=FAST + ['--task-log', task_log])
    processes.append(b)
    # a plain task too, so that the task log (when on) holds a record
    submit(b, '--queue', 'plain', 'noop', 'x')
    waits = submit(b, '--endpoint', 'ghost', '--allow-unknown-endpoints',
                   '--endpoint-timeout', '120', 'deploy', 'v1')
    dies = submit(b, '--endpoint', 'nobody', '--allow-unknown-endpoints',
                  '--endpoint-timeout', '4', 'deploy', 'v1')
    assert copies_column(b.db, waits) == 1 and copies_column(b.db, dies) == 1
    stop_broker(b, how)
    b2 = b.restart()
    processes.append(b2)
    for task_id, endpoint in ((waits, 'ghost'), (dies, 'nobody')):
        info = status(b2, task_id)
        assert info['state'] == 'waiting', info
        assert [r['endpoint'] for r in info['responses']] == [endpoint]
    # a second restart of the same kind: still the same
    stop_broker(b2, how)
    b3 = b2.restart()
    processes.append(b3)
    assert status(b3, waits)['state'] == 'waiting'
    # the endpoint shows up and answers
    deploy_worker(b3, processes, tmp_path, 'ghost')
    assert cli(b3, 'wait', str(waits)).returncode == 0
    info = status(b3, waits)
    assert info['state'] == 'succeeded'
    assert {r['endpoint']: r['result'] for r in info['responses']} == {
        'ghost': 'deployed v1 on ghost\n'}
    # it never ran itself (its copy did): no attempt in its history
    assert info['attempts'] == 0 and info.get('history', []) == [], info
    # the other one's endpoint never comes: dead at its timeout, as before
    assert cli(b3, 'wait', str(dies)).returncode == 1
    info = status(b3, dies)
    assert info['state'] == 'dead' and info['error'] == 'incomplete: missing endpoints: nobody'
    assert {r['endpoint']: r['state'] for r in info['responses']} == {'nobody': 'cancelled'}


def test_dead_fan_out_is_not_retried(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    task_id = submit(b, '--queue', 'fq', '--endpoint', 'ghost', '--allow-unknown-endpoints',
                     '--endpoint-timeout', '1', 'deploy', 'v1')
    proc = cli(b, 'wait', str(task_id))
    assert proc.returncode == 1
    assert status(b, task_id)['error'] == 'incomplete: missing endpoints: ghost'
    proc = cli(b, 'retry', str(task_id))
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.decode() == (
        '%d not retried: a fan-out task is not retried (submit it again)\n' % task_id)
    assert retry_code(b, task_id) == 409
    assert status(b, task_id)['state'] == 'dead'
    # the journal knows it too: after a restart, still refused
    assert b.stop() == 0
    b2 = b.restart()
    processes.append(b2)
    assert retry_code(b2, task_id) == 409
    # and a plain worker on its queue never gets it
    runs = tmp_path / 'runs'
    start_exec_worker(b2, processes, tmp_path, 'echo ran >> "$RUNS"', '--queue', 'fq',
                      env={'RUNS': str(runs)})
    assert cli(b2, 'retry', str(task_id)).returncode != 0
    plain = submit(b2, '--queue', 'fq', 'other', 'x')
    assert cli(b2, 'wait', str(plain)).returncode == 0
    assert runs.read_text() == 'ran\n'
    assert status(b2, task_id)['state'] == 'dead'


def test_broadcast_to_no_worker_is_refused(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    proc = cli(b, 'submit', '--watch', '--broadcast', '--queue', 'edge', 'purge-cache', '/img')
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.decode()
    assert "no worker serving queue 'edge' that runs 'purge-cache'" in err, err
    assert proc.stdout == b''
    # allow_unknown names endpoints; a broadcast has none: refused alike
    proc = cli(b, 'submit', '--broadcast', '--allow-unknown-endpoints', '--queue', 'edge',
               'purge-cache', '/img')
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    stats = json.loads(cli(b, '--json', 'stats').stdout)
    assert not [q for q in stats['queues'] if q['name'] == 'edge' and any(q['counts'])]
    # a worker serving the queue but not running the name: refused too
    start_exec_worker(b, processes, tmp_path, 'echo other', '--queue', 'edge', '--task', 'other',
                      '--name', 'e0')
    wait_until(lambda: len(json.loads(cli(b, '--json', 'stats').stdout)['workers']) == 1,
               what='a worker registered')
    proc = cli(b, 'submit', '--broadcast', '--queue', 'edge', 'purge-cache', '/img')
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    # with a worker that runs it, the broadcast goes, and the restart keeps it
    start_exec_worker(b, processes, tmp_path, 'echo "purged $(cat)"', '--queue', 'edge',
                      '--name', 'e1')
    wait_until(lambda: len(json.loads(cli(b, '--json', 'stats').stdout)['workers']) == 2,
               what='two workers registered')
    proc = cli(b, 'submit', '--watch', '--broadcast', '--queue', 'edge', 'purge-cache', '/img')
    assert proc.returncode == 0, proc.stderr
    assert b'purged /img' in proc.stdout


def test_schema_9_journal_with_fan_out_tasks_opens(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    waits = submit(b, '--endpoint', 'ghost', '--allow-unknown-endpoints',
                   '--endpoint-timeout', '120', 'deploy', 'v1')
    dead = submit(b, '--endpoint', 'lb1', '--endpoint', 'lb2', '--allow-unknown-endpoints',
                  '--endpoint-timeout', '1', 'deploy', 'v1')
    assert cli(b, 'wait', str(dead)).returncode == 1
    assert b.stop() == 0
    # as an arbiterd of schema 9 left it: every copies 0, and a broadcast
    # that found no worker waiting with no copy at all
    con = sqlite3.connect(b.db)
    with con:
        con.execute('UPDATE tasks SET copies = 0')
        # the dead one's copies gone with the retention sweep
        con.execute('DELETE FROM tasks WHERE origin = ?', (dead,))
        con.execute("INSERT INTO tasks (id, queue, name, state, created_ms, payload) "
                    "VALUES (1000, 'edge', 'purge-cache', 1, 1, x'2f696d67')")
        con.execute('PRAGMA user_version = 9')
    con.close()
    b2 = b.restart()
    processes.append(b2)
    assert 'schema migrated' in b2.output()
    assert status(b2, waits)['state'] == 'waiting'
    assert copies_column(b2.db, waits) == 1 and copies_column(b2.db, dead) == 2
    assert retry_code(b2, dead) == 409
    info = status(b2, 1000)
    assert info['state'] == 'dead' and info['error'].startswith('incomplete: no endpoints'), info
    deploy_worker(b2, processes, tmp_path, 'ghost')
    assert cli(b2, 'wait', str(waits)).returncode == 0
    assert status(b2, waits)['state'] == 'succeeded'
    # and it starts again
    assert b2.stop() == 0
    b3 = b2.restart()
    processes.append(b3)
    assert status(b3, waits)['state'] == 'succeeded'


def test_dead_fan_out_is_not_retried_over_http(tmp_path, processes, gateway_factory):
    requests = pytest.importorskip('requests')
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    gateway = gateway_factory(b)
    task_id = submit(b, '--endpoint', 'ghost', '--allow-unknown-endpoints',
                     '--endpoint-timeout', '1', 'deploy', 'v1')
    assert cli(b, 'wait', str(task_id)).returncode == 1
    reply = requests.post('%s/api/v1/tasks/%d/retry' % (gateway.url, task_id), timeout=10)
    assert reply.status_code == 409, reply.text
    assert reply.json()['error'] == (
        'task %d cannot be retried: a fan-out task is not retried (state: dead)' % task_id)
    assert status(b, task_id)['state'] == 'dead'


def test_copy_lost_with_its_endpoint_waits_its_endpoint_timeout_again(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    gone_for_good = start_exec_worker(b, processes, tmp_path, 'sleep 30', '--name', 'ep1')
    comes_back = start_exec_worker(b, processes, tmp_path, 'sleep 30', '--name', 'ep2')
    wait_until(lambda: len(json.loads(cli(b, '--json', 'stats').stdout)['workers']) == 2,
               timeout=10, what='both endpoints connected')
    lost = submit(b, '--endpoint', 'ep1', '--endpoint-timeout', '2', 'deploy', 'v1')
    kept = submit(b, '--endpoint', 'ep2', '--endpoint-timeout', '20', 'deploy', 'v1')

    def copies_running():
        return all(r['state'] == 'running'
                   for t in (lost, kept) for r in status(b, t)['responses'])
    # (a copy running at its endpoint shows as running: its row still says ready)
    wait_until(copies_running, timeout=10, what='both copies running at their endpoints')
    gone_for_good.kill9()
    comes_back.kill9()
    # ep1 never comes back: its copy is missing once the broker has lost it
    # (liveness 1 s) and 2 s more have passed; before, it waited for ever
    proc = cli(b, 'wait', '--timeout', '15', str(lost))
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    info = status(b, lost)
    assert info['state'] == 'dead', info
    assert info['error'] == 'incomplete: missing endpoints: ep1', info
    [response] = info['responses']
    assert response['state'] == 'cancelled', response
    assert 'lost while running it' in response['error'], response
    # ep2 comes back within its endpoint timeout and answers
    deploy_worker(b, processes, tmp_path, 'ep2')
    assert cli(b, 'wait', '--timeout', '20', str(kept)).returncode == 0
    info = status(b, kept)
    assert info['state'] == 'succeeded', info
    assert [r['result'] for r in info['responses']] == ['deployed v1 on ep2\n']
