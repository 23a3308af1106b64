"""The arbiter CLI's workflow commands against a real arbiterd: DAG, group and
pipe files, their status, wait and cancel, and fan-out on `arbiter submit`.

Tasks are run by scripted workers (tests/system/scripted.py), each pumped in
a thread of its own for as long as the test runs, so that commands that wait
(`dag wait`, `submit --watch`) can run as processes meanwhile.
"""

import json
import threading

import pytest

from scripted import ScriptedWorker
from test_cli import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, arbiter


class Pumped(threading.Thread):
    """A ScriptedWorker made and pumped in its own thread until stopped."""

    def __init__(self, endpoint, handler, name='scripted', queues=('default',)):
        super().__init__(daemon=True)
        self.args = (endpoint, handler)
        self.kw = {'name': name, 'queues': queues}
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.seen = []
        self.start()
        assert self.ready.wait(10), 'worker did not register'

    def run(self):
        worker = ScriptedWorker(*self.args, **self.kw)
        self.seen = worker.seen
        self.ready.set()
        while not self.stopping.is_set():
            worker.pump(0.05)
        worker.close()

    def stop(self):
        self.stopping.set()
        self.join(10)


@pytest.fixture
def workers():
    started = []

    def start(endpoint, handler, **kw):
        w = Pumped(endpoint, handler, **kw)
        started.append(w)
        return w
    yield start
    for w in started:
        w.stop()


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def cli(broker, *args, **kw):
    return arbiter(broker.endpoint, *args, **kw)


def lines(proc):
    return proc.stdout.decode().splitlines()


def parents_handler(task, payload, w):
    """Returns its name, then each parent's name=result, sorted."""
    got = {p['name']: p.get('result', b'') for p in task.get('parents', [])}
    return (task['name'] + ':' + ','.join('%s=%s' % (k, got[k].decode())
                                          for k in sorted(got))).encode()


DIAMOND = {'name': 'diamond', 'tasks': [
    {'name': 'a'},
    {'name': 'b', 'after': ['a']},
    {'name': 'c', 'after': ['a']},
    {'name': 'd', 'after': ['b', {'task': 'c', 'when': 'on_success'}]},
]}


def test_dag_diamond_submit_status_wait(broker, workers, tmp_path):
    path = write(tmp_path, 'dag.json', DIAMOND)
    proc = cli(broker, 'dag', 'submit', path)
    assert proc.returncode == EXIT_OK, proc.stderr
    text = proc.stdout.decode().strip()
    assert text.startswith('flow:'), text  # never taken for a task id
    flow = int(text[len('flow:'):])

    # before any worker: every task is there with its name, waiting or ready
    proc = cli(broker, '--json', 'dag', 'status', str(flow))
    assert proc.returncode == EXIT_OK, proc.stderr
    status = json.loads(proc.stdout)
    assert status['flow'] == flow and status['total'] == 4
    assert status['counts'] == {'ready': 1, 'waiting': 3}
    assert [t['name'] for t in status['tasks']] == ['a', 'b', 'c', 'd']

    workers(broker.endpoint, parents_handler)
    proc = cli(broker, 'dag', 'wait', '--timeout', '30', str(flow))
    assert proc.returncode == EXIT_OK, proc.stderr
    out = lines(proc)
    assert sorted(out) == sorted(['a succeeded: a:', 'b succeeded: b:a=a:', 'c succeeded: c:a=a:',
                                  'd succeeded: d:b=b:a=a:,c=c:a=a:'])
    assert out[0].startswith('a ') and out[-1].startswith('d ')

    proc = cli(broker, 'dag', 'status', str(flow))
    assert proc.returncode == EXIT_OK, proc.stderr
    out = lines(proc)
    assert out[0] == 'flow:%d (dag): 4 tasks: 4 succeeded' % flow
    assert out[2].split()[:3] == ['a', 'succeeded', '1/1']
    status = json.loads(cli(broker, '--json', 'dag', 'status', str(flow)).stdout)
    assert status['tasks'][3]['result'] == 'd:b=b:a=a:,c=c:a=a:'

    # a node's own status names its flow and its name there
    node = status['tasks'][1]['id']
    proc = cli(broker, 'status', str(node))
    assert ('flow         flow:%d, as \'b\'' % flow) in proc.stdout.decode()
    mine = json.loads(cli(broker, 'status', '--json', str(node)).stdout)
    assert mine['flow'] == flow and mine['ref'] == 'b' and mine['origin'] is None


def test_dag_submit_watch_json(broker, workers, tmp_path):
    workers(broker.endpoint, parents_handler)
    path = write(tmp_path, 'dag.json', DIAMOND)
    proc = cli(broker, '--json', 'dag', 'submit', '--watch', path)
    assert proc.returncode == EXIT_OK, proc.stderr
    first, *rest = [json.loads(x) for x in lines(proc)]
    assert sorted(first['tasks']) == ['a', 'b', 'c', 'd']
    ended = {o['name']: o for o in rest}
    assert ended['d']['result'] == 'd:b=b:a=a:,c=c:a=a:' and ended['d']['task'] == 'd'
    assert ended['b']['id'] == first['tasks']['b']


def test_a_failed_dependency_outside_the_flow_is_named_by_its_id(broker, workers, tmp_path):
    """A parent given as {"id": N} has no name in the flow: the child's
    error names it by its id (as ARBITER_PARENTS keys it), not '?'."""
    def handler(task, payload, w):
        raise RuntimeError('boom')
    workers(broker.endpoint, handler)
    proc = cli(broker, 'submit', 'bad', 'x')
    assert proc.returncode == EXIT_OK, proc.stderr
    parent = int(proc.stdout)
    assert cli(broker, 'wait', str(parent)).returncode == EXIT_FAILED
    path = write(tmp_path, 'dag.json', {'tasks': [
        {'name': 'child', 'task': 'ok', 'after': [{'id': parent}]}]})
    proc = cli(broker, 'dag', 'submit', '--watch', path)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    flow, line = lines(proc)
    assert line == "child dead: failed dependency: '%d' (task %d) ended dead" % (parent, parent)


def test_failing_node_fails_its_descendants(broker, workers, tmp_path):
    def handler(task, payload, w):
        if task['name'] == 'bad':
            raise RuntimeError('boom')
        return b'ok'
    workers(broker.endpoint, handler)
    path = write(tmp_path, 'dag.json', {'tasks': [
        {'name': 'root', 'task': 'ok'},
        {'name': 'bad', 'after': ['root']},
        {'name': 'child', 'task': 'ok', 'after': ['bad']},
        {'name': 'grandchild', 'task': 'ok', 'after': ['child']},
        {'name': 'sibling', 'task': 'ok', 'after': ['root']},
        {'name': 'compensate', 'task': 'ok', 'after': [{'task': 'bad', 'when': 'on_failure'}]},
        {'name': 'undo', 'task': 'ok', 'after': [{'task': 'sibling', 'when': 'on_failure'}]},
        {'name': 'cleanup', 'task': 'ok', 'after': [{'task': 'grandchild', 'when': 'always'}]},
    ]})
    proc = cli(broker, 'dag', 'submit', '--watch', path)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    flow, *out = lines(proc)
    got = {line.split()[0]: line for line in out}
    assert got['root'] == 'root succeeded: ok' and got['bad'] == 'bad dead: boom'
    assert got['child'].startswith("child dead: failed dependency: 'bad' (task ")
    assert got['grandchild'].startswith("grandchild dead: failed dependency: 'child' (task ")
    assert got['compensate'] == 'compensate succeeded: ok'
    assert got['undo'].startswith('undo skipped')
    assert got['cleanup'] == 'cleanup succeeded: ok'
    assert b'3 of 8 tasks dead or cancelled' in proc.stderr

    # wait on the finished flow says the same, and fails the same
    proc = cli(broker, 'dag', 'wait', flow)
    assert proc.returncode == EXIT_FAILED
    assert sorted(lines(proc)) == sorted(out)
    status = json.loads(cli(broker, '--json', 'dag', 'status', flow).stdout)
    assert status['counts'] == {'succeeded': 4, 'skipped': 1, 'dead': 3}
    dead = {t['name']: t['error'] for t in status['tasks'] if t['state'] == 'dead'}
    assert "'bad'" in dead['child'] and "'child'" in dead['grandchild']
    text = cli(broker, 'dag', 'status', flow).stdout.decode()
    assert "failed dependency: 'bad'" in text
    # a skipped task did what its DAG asked of it: `wait` on it succeeds
    undo = [t['id'] for t in status['tasks'] if t['name'] == 'undo'][0]
    proc = cli(broker, 'wait', str(undo))
    assert proc.returncode == EXIT_OK and proc.stdout == b'', proc.stderr
    assert b'skipped' in proc.stderr


def test_cycle_and_missing_dependency_are_refused(broker, tmp_path):
    cycle = write(tmp_path, 'cycle.json', {'tasks': [
        {'name': 'a', 'after': ['c']}, {'name': 'b', 'after': ['a']},
        {'name': 'c', 'after': ['b']}, {'name': 'd'}]})
    proc = cli(broker, 'dag', 'submit', cycle)
    assert proc.returncode == EXIT_USAGE
    err = proc.stderr.decode()
    assert 'cycle' in err and all("'%s'" % n in err for n in 'abc') and "'d'" not in err

    missing = write(tmp_path, 'missing.json', {'tasks': [
        {'name': 'a'}, {'name': 'b', 'after': ['a', 'nope']}]})
    proc = cli(broker, 'dag', 'submit', missing)
    assert proc.returncode == EXIT_USAGE
    assert ("missing.json: tasks[1] ('b').after[1]: no task named 'nope'"
            in proc.stderr.decode())

    bad_when = write(tmp_path, 'when.json', {'tasks': [
        {'name': 'a'}, {'name': 'b'}, {'name': 'c', 'after': [{'task': 'a', 'when': 'later'}]}]})
    proc = cli(broker, 'dag', 'submit', bad_when)
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.decode() == ("arbiter: %s: tasks[2] ('c').after[0]: 'when' must be "
                                    "on_success, on_failure or always\n" % bad_when)

    # an existing task that does not exist is the broker's to refuse
    ghost = write(tmp_path, 'ghost.json', {'tasks': [{'name': 'a', 'after': [{'id': 987654}]}]})
    proc = cli(broker, 'dag', 'submit', ghost)
    assert proc.returncode == EXIT_USAGE and b"'a' waits for task 987654" in proc.stderr

    proc = cli(broker, '--json', 'list')
    assert proc.returncode == EXIT_OK and proc.stdout == b''  # nothing was submitted
    proc = cli(broker, 'dag', 'status', '999')
    assert proc.returncode == EXIT_USAGE and b'flow:999: no such flow' in proc.stderr


def test_dag_wait_timeout_and_cancel(broker, tmp_path):
    path = write(tmp_path, 'dag.json', {'tasks': [
        {'name': 'a'}, {'name': 'b', 'after': ['a']},
        {'name': 'fin', 'after': [{'task': 'b', 'when': 'always'}]}]})
    flow = cli(broker, 'dag', 'submit', path).stdout.decode().strip()
    proc = cli(broker, 'dag', 'wait', '--timeout', '0.3', flow)
    assert proc.returncode == EXIT_TIMEOUT
    assert b'3 of 3 tasks unfinished after 0.3 s: a, b, fin' in proc.stderr

    proc = cli(broker, 'dag', 'cancel', flow)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert lines(proc)[-1] == '%s: 3 tasks cancelled' % flow
    proc = cli(broker, 'dag', 'wait', flow)
    assert proc.returncode == EXIT_FAILED
    assert sorted(x.split(':')[0] for x in lines(proc)) == [
        'a cancelled', 'b cancelled', 'fin cancelled']  # a DAG is cancelled whole
    proc = cli(broker, 'dag', 'cancel', flow)
    assert proc.returncode == EXIT_FAILED and b'nothing to cancel' in proc.stderr


GROUP = {'name': 'g1',
         'tasks': [{'task': 'member', 'payload': str(i)} for i in range(5)],
         'callback': {'task': 'callback'},
         'finalizer': {'task': 'finalizer'}}


def group_handler(task, payload, w):
    if task['name'] == 'member':
        return payload * 2
    if task['name'] == 'callback':
        return b'+'.join(sorted(p['result'] for p in task['parents']))
    return b'final'


def test_retry_of_a_failed_flow_or_group_runs_what_died_of_it(broker, workers, tmp_path):
    broken = {'bad'}

    def handler(task, payload, w):
        if task['name'] in broken:
            raise RuntimeError('boom')
        return task['name'].encode()
    workers(broker.endpoint, handler)
    path = write(tmp_path, 'dag.json', {'tasks': [
        {'name': 'bad'},
        {'name': 'child', 'task': 'ok', 'after': ['bad']},
        {'name': 'grandchild', 'task': 'ok', 'after': ['child']},
    ]})
    proc = cli(broker, 'dag', 'submit', '--watch', path)
    assert proc.returncode == EXIT_FAILED
    flow = lines(proc)[0]
    assert flow.startswith('flow:'), flow
    broken.clear()
    proc = cli(broker, 'retry', '--flow', flow)
    assert proc.returncode == EXIT_OK and lines(proc) == ['3 tasks retried'], proc.stderr
    proc = cli(broker, 'dag', 'wait', '--timeout', '10', flow)
    assert proc.returncode == EXIT_OK, proc.stdout
    assert sorted(lines(proc)) == ['bad succeeded: bad', 'child succeeded: ok',
                                   'grandchild succeeded: ok']
    # nothing dead is left in it: a second retry has nothing to do
    proc = cli(broker, '--json', 'retry', '--flow', flow)
    assert proc.returncode == EXIT_OK and json.loads(proc.stdout)['count'] == 0

    broken.add('member')
    group = write(tmp_path, 'group.json', {'name': 'thumbs', 'tasks': [
        {'task': 'member'}, {'task': 'ok'}], 'callback': {'task': 'zip'}})
    assert cli(broker, 'group', 'submit', '--watch', group).returncode == EXIT_FAILED
    broken.clear()
    proc = cli(broker, 'retry', '--group', 'thumbs')
    assert proc.returncode == EXIT_OK and lines(proc) == ['2 tasks retried'], proc.stderr
    proc = cli(broker, 'retry', '--group', 'nope')
    assert proc.returncode == EXIT_USAGE and b"no group named 'nope'" in proc.stderr
    proc = cli(broker, 'cancel', '--group', 'nope')  # a misspelt name is not "0 cancelled"
    assert proc.returncode == EXIT_USAGE and b"no group named 'nope'" in proc.stderr
    proc = cli(broker, 'retry', '--flow', 'flow:x')
    assert proc.returncode == EXIT_USAGE and b'not a flow id' in proc.stderr


def test_group_callback_sees_every_result(broker, workers, tmp_path):
    workers(broker.endpoint, group_handler)
    path = write(tmp_path, 'group.json', GROUP)
    proc = cli(broker, 'group', 'submit', '--watch', path)
    assert proc.returncode == EXIT_OK, proc.stderr
    flow, *out = lines(proc)
    assert 'callback succeeded: 00+11+22+33+44' in out
    assert out[-1] == 'finalizer succeeded: final'
    assert 'member3 succeeded: 22' in out

    proc = cli(broker, 'group', 'status', flow)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert lines(proc)[:2] == ['%s (group): 7 tasks: 7 succeeded' % flow,
                               'members: 5/5 done, 0 failed']
    status = json.loads(cli(broker, '--json', 'group', 'status', flow).stdout)
    assert status['members'] == {'total': 5, 'done': 5, 'failed': 0}
    assert [t['name'] for t in status['tasks']][-2:] == ['callback', 'finalizer']
    assert cli(broker, 'group', 'wait', flow).returncode == EXIT_OK


def test_group_cancel_keeps_the_finalizer(broker, tmp_path):
    path = write(tmp_path, 'group.json', dict(GROUP, name='g2'))
    flow = cli(broker, 'group', 'submit', path).stdout.decode().strip()
    proc = cli(broker, '--json', 'group', 'cancel', flow)
    assert proc.returncode == EXIT_OK, proc.stderr
    result = json.loads(proc.stdout)
    assert result['count'] == 6 and result['left'] == ['finalizer']
    assert sorted(result['cancelled']) == sorted(['member%d' % i for i in range(1, 6)]
                                                 + ['callback'])
    status = json.loads(cli(broker, '--json', 'group', 'status', flow).stdout)
    assert status['members'] == {'total': 5, 'done': 5, 'failed': 5}
    assert status['tasks'][-1]['state'] == 'ready'

    # by name, as before: a second group of that name
    other = cli(broker, 'group', 'submit', path).stdout.decode().strip()
    proc = cli(broker, 'cancel', '--group', 'g2')
    # (the count is the broker's, which counts the members it started from)
    assert proc.returncode == EXIT_OK and b'tasks cancelled' in proc.stdout
    status = json.loads(cli(broker, '--json', 'group', 'status', other).stdout)
    assert status['counts'] == {'cancelled': 6, 'ready': 1}

    # nothing left to cancel but the finalizers: exit 1 both ways, as for
    # a group whose every task has finished (`cancel --group` said "0 tasks
    # cancelled" and exited 0, `group cancel` exited 0 here and 1 there)
    assert_nothing_to_cancel(broker, other, 'g2', b'nothing to cancel')
    assert json.loads(cli(broker, '--json', 'cancel', '--group', 'g2').stdout)['count'] == 0


def assert_nothing_to_cancel(broker, flow, name, said):
    """`group cancel FLOW` and `cancel --group NAME` of a group with nothing
    left to cancel both exit 1, saying so."""
    proc = cli(broker, 'group', 'cancel', flow)
    assert proc.returncode == EXIT_FAILED, (proc.stdout, proc.stderr)
    assert said in proc.stderr
    proc = cli(broker, 'cancel', '--group', name)
    assert proc.returncode == EXIT_FAILED, (proc.stdout, proc.stderr)
    assert b"cancel: group '%s': nothing to cancel" % name.encode() in proc.stderr


def test_cancelling_a_finished_group_fails_both_ways(broker, tmp_path):
    # `arbiter cancel --group G` on a group whose tasks have all finished
    # said "0 tasks cancelled" and exited 0, while `arbiter group cancel`
    # exited 1 ("nothing to cancel"): both exit 1 now
    path = write(tmp_path, 'group.json', {'name': 'g3', 'tasks': [{'task': 'member'}] * 2})
    flow = cli(broker, 'group', 'submit', path).stdout.decode().strip()
    proc = cli(broker, 'cancel', '--group', 'g3')
    assert proc.returncode == EXIT_OK and lines(proc) == ['2 tasks cancelled'], proc.stderr
    assert_nothing_to_cancel(broker, flow, 'g3', b'nothing to cancel, every task has finished')
    # a group name that is not there is still 2
    assert cli(broker, 'cancel', '--group', 'g4').returncode == EXIT_USAGE


def add_handler(task, payload, w):
    """Adds its args to its input: a running sum along a pipe."""
    return b'%d' % (int(payload or b'0') + int(task.get('args') or b'0'))


def test_pipe_running_sum_of_twenty_steps(broker, workers, tmp_path):
    workers(broker.endpoint, add_handler)
    path = write(tmp_path, 'sum.json', {
        'input': 0, 'steps': [{'task': 'add', 'args': k} for k in range(1, 21)]})
    proc = cli(broker, 'pipe', 'submit', '--watch', path)
    assert proc.returncode == EXIT_OK, proc.stderr
    flow, *out = lines(proc)
    # each step's result, in order, then the pipe's
    assert out == ['step%d succeeded: %d' % (k, k * (k + 1) // 2) for k in range(1, 21)] + [
        'result: 210']

    proc = cli(broker, '--json', 'pipe', 'wait', flow)
    assert proc.returncode == EXIT_OK, proc.stderr
    objs = [json.loads(x) for x in lines(proc)]
    assert [o['name'] for o in objs[:-1]] == ['step%d' % k for k in range(1, 21)]
    assert objs[-1] == {'pipe': int(flow[len('flow:'):]), 'state': 'succeeded', 'result': '210'}


def test_pipe_from_the_command_line(broker, workers):
    workers(broker.endpoint, add_handler)
    proc = cli(broker, 'pipe', 'submit', '--watch', '--input', '-', '--args', '2', 'add', 'add',
               'add', stdin=b'5')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert lines(proc)[1:] == ['step1 succeeded: 7', 'step2 succeeded: 9', 'step3 succeeded: 11',
                               'result: 11']
    proc = cli(broker, 'pipe', 'submit', '--input', 'x', 'pipe.json')
    assert proc.returncode == EXIT_USAGE and b'a pipe file gives its own input' in proc.stderr


def test_pipe_stops_at_a_failed_step(broker, workers):
    def handler(task, payload, w):
        if task['name'] == 'fail':
            raise RuntimeError('no')
        return payload + b'!'
    workers(broker.endpoint, handler)
    proc = cli(broker, 'pipe', 'submit', '--watch', '--input', 'x', 'up', 'fail', 'up')
    assert proc.returncode == EXIT_FAILED
    out = lines(proc)[1:]
    assert out[:2] == ['step1 succeeded: x!', 'step2 dead: no']
    assert out[2].startswith("step3 dead: failed dependency: 'step2'") and len(out) == 3


def test_fan_out_to_three_named_workers(broker, workers):
    for i in range(3):
        workers(broker.endpoint, lambda t, p, w: w.name.encode() + b':' + p, name='ep%d' % i)
    proc = cli(broker, 'submit', '--endpoint', 'ep0', '--endpoint', 'ep1', '--endpoint', 'ep2',
               'deploy', 'v2')
    assert proc.returncode == EXIT_OK, proc.stderr
    task = proc.stdout.decode().strip()
    assert cli(broker, 'wait', task).returncode == EXIT_OK

    proc = cli(broker, 'status', task)
    assert proc.returncode == EXIT_OK
    text = proc.stdout.decode()
    assert 'responses (3 endpoints)' in text
    for i in range(3):
        row = [x for x in text.splitlines() if x.startswith('  ep%d ' % i)]
        assert row and 'succeeded' in row[0] and row[0].endswith('result: ep%d:v2' % i), text
    status = json.loads(cli(broker, '--json', 'status', task).stdout)
    answers = {r['endpoint']: (r['state'], r['result']) for r in status['responses']}
    assert answers == {'ep%d' % i: ('succeeded', 'ep%d:v2' % i) for i in range(3)}
    assert all(r['finished_ms'] > 0 for r in status['responses'])

    # with --watch, each endpoint's answer as it is
    proc = cli(broker, 'submit', '--watch', '--broadcast', 'deploy', 'v3')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert sorted(x.split()[:2] for x in lines(proc)[1:]) == [
        ['ep0', 'succeeded'], ['ep1', 'succeeded'], ['ep2', 'succeeded']]


def test_unknown_endpoint_is_refused_unless_allowed(broker, workers, tmp_path):
    workers(broker.endpoint, lambda t, p, w: b'done', name='ep0')
    proc = cli(broker, 'submit', '--endpoint', 'ep0', '--endpoint', 'ghost', 'deploy', 'x')
    assert proc.returncode == EXIT_USAGE
    # in the command's words: its option, not the request's field
    assert b"submit: endpoints: no worker named 'ghost' is connected " \
        b"(--allow-unknown-endpoints to send anyway)" in proc.stderr, proc.stderr
    assert b'tasks[0]' not in proc.stderr and b'allow_unknown' not in proc.stderr
    assert cli(broker, '--json', 'list').stdout == b''

    proc = cli(broker, 'submit', '--watch', '--endpoint', 'ep0', '--endpoint', 'ghost',
               '--allow-unknown-endpoints', '--endpoint-timeout', '0.5', 'deploy', 'x')
    assert proc.returncode == EXIT_FAILED, proc.stderr
    task, *out = lines(proc)
    assert sorted(x.split()[:2] for x in out) == [['ep0', 'succeeded'], ['ghost', 'cancelled']]
    assert b'incomplete: missing endpoints: ghost' in proc.stderr
    status = json.loads(cli(broker, '--json', 'status', task).stdout)
    assert status['state'] == 'dead' and 'ghost' in status['error']

    # a flow file's task: the file's field
    dag = write(tmp_path, 'ghost.json', {'tasks': [
        {'name': 'a', 'task': 'deploy', 'endpoints': ['ghost']}]})
    proc = cli(broker, 'dag', 'submit', dag)
    assert proc.returncode == EXIT_USAGE
    assert b"dag: tasks[0].endpoints: no worker named 'ghost' is connected " \
        b'("allow_unknown_endpoints": true to send anyway)' in proc.stderr, proc.stderr

    for args, message in [
            (['--endpoint', 'a', '--broadcast'], b'give one'),
            (['--endpoint-timeout', '5'], b'go with --endpoint or --broadcast'),
            (['--endpoint', 'a', '--endpoint', 'a'], b"'a' is given twice"),
            (['--endpoint', 'q@a'], b"'@' is reserved"),
            (['--broadcast', '--endpoint-timeout', '0'], b'must be more than 0 s'),
            # -1 in the same words as 0 (it said "must be 0 or more seconds")
            (['--broadcast', '--endpoint-timeout', '-1'], b"must be more than 0 s, not '-1'"),
            (['--soft-timeout', '-1'], b"must be more than 0 s, not '-1'")]:
        proc = cli(broker, 'submit', *args, 'deploy', 'x')
        assert proc.returncode == EXIT_USAGE and message in proc.stderr, (args, proc.stderr)
