"""Workflows from the Python package against a real arbiterd and a Python
worker: DAG, group and pipe files submitted and awaited, their tasks'
results flowing down, mistakes the broker finds refused naming the tasks,
and the same file read the same way by `arbiter dag submit`."""

import json
import os
import re
import subprocess
import sys

import pytest

from python_support import PYTHON, arbiter, client, fast_broker, start_py_worker  # noqa: F401
from arbiter import Invalid, NotFound, State, flows
from conftest import ROOT, Process, binary


def test_dag_file_submitted_and_awaited(client, fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path, '--slots', '3')
    path = tmp_path / 'dag.json'
    path.write_text(json.dumps({'name': 'nightly', 'tasks': [
        {'name': 'a', 'task': 'upper', 'payload': 'left'},
        {'name': 'b', 'task': 'upper', 'payload': {'w': 2}},
        {'name': 'both', 'task': 'join', 'after': ['a', 'b'], 'args': 'args'},
        {'name': 'alert', 'task': 'upper', 'after': [{'task': 'both', 'when': 'on_failure'}]},
        {'name': 'last', 'task': 'upper', 'after': ['both'], 'input': 'parent'}]}))
    submitted = client.submit_flow(flows.load(str(path), 'dag'))
    assert list(submitted.tasks) == ['a', 'b', 'both', 'alert', 'last']
    result = client.wait_flow(submitted.flow, timeout=30)
    assert result.ok and [t.name for t in result.tasks] == ['a', 'b', 'both', 'alert', 'last']
    assert [t.name for t in result] == ['a', 'b', 'both', 'alert', 'last'] and len(result) == 5
    assert 'both' in result and 'nope' not in result and result.tasks[0] in result
    with pytest.raises(KeyError):
        result['nope']
    assert result['both'].done.result == b'LEFT+{"W":2}|args'
    assert result['alert'].state is State.SKIPPED
    assert result['last'].done.result == b'LEFT+{"W":2}|ARGS'
    assert result['a'].task == 'upper' and result['a'].id == submitted.tasks['a']
    tasks = client.flow_tasks('flow:%d' % submitted.flow)
    assert [t.ref for t in tasks] == ['a', 'b', 'both', 'alert', 'last']
    assert {t.flow_name for t in tasks} == {'nightly'}


def test_failures_flow_down_and_retry_brings_them_back(client, fast_broker, processes,
                                                       tmp_path):
    start_py_worker(fast_broker, processes, tmp_path)
    flow = flows.dag([{'name': 'fetch', 'task': 'fail', 'payload': 'net'},
                      {'name': 'parse', 'task': 'upper', 'after': ['fetch']},
                      {'name': 'cleanup', 'task': 'upper', 'payload': 'c',
                       'after': [{'task': 'fetch', 'when': 'always'}]}])
    submitted = client.submit_flow(flow, watch=True)
    result = client.wait_flow(submitted.flow, timeout=30)
    assert not result.ok
    assert result['fetch'].done.error == 'it broke: net'
    assert result['parse'].state is State.DEAD
    assert "failed dependency: 'fetch'" in result['parse'].done.error
    assert result['cleanup'].done.result == b'C'
    assert client.retry(flow=submitted.flow).count == 2


def test_group_and_pipe(client, fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path, '--slots', '2')
    group = flows.group([{'task': 'upper', 'payload': 'x'}, {'name': 'y', 'task': 'upper',
                                                              'payload': 'y'}],
                        callback={'task': 'join'}, finalizer={'task': 'upper'}, name='g1')
    done = client.wait_flow(client.submit_flow(group).flow, timeout=30)
    assert [t.name for t in done.tasks] == ['member1', 'y', 'callback', 'finalizer']
    assert done['callback'].done.result == b'X+Y|'
    pipe = flows.pipe(['upper', {'task': 'join', 'args': '!'}, 'upper'], input='go')
    result = client.wait_flow(client.submit_flow(pipe).flow, timeout=30)
    assert result.ok and result.result == b'GO|!'
    with pytest.raises(NotFound):
        client.wait_flow(424242, timeout=1)
    # the flow's order, not the order its tasks ended in
    slow_first = flows.group([{'name': 'slow', 'task': 'sleep', 'payload': '0.6'},
                              {'name': 'quick', 'task': 'sleep', 'payload': '0.05'}])
    submitted = client.submit_flow(slow_first, watch=True)
    assert [client.next_done(timeout=30).id for _ in range(2)] == \
        [submitted.tasks['quick'], submitted.tasks['slow']]
    assert [t.name for t in client.wait_flow(submitted.flow, timeout=30)] == ['slow', 'quick']


def test_the_broker_refuses_a_cycle_naming_it(client):
    flow = flows.dag([{'name': 'a', 'task': 't', 'after': ['c']},
                      {'name': 'b', 'task': 't', 'after': ['a']},
                      {'name': 'c', 'task': 't', 'after': ['b']}])
    with pytest.raises(Invalid) as e:
        client.submit_flow(flow)
    assert not e.value.local and 'cycle' in e.value.reason and "'a'" in e.value.reason
    with pytest.raises(Invalid):
        client.submit_flow(flows.dag([{'name': 'a', 'task': 't', 'after': [{'id': 424242}]}]))


def test_a_file_means_what_it_means_to_the_cli(client, fast_broker, tmp_path):
    path = tmp_path / 'pipe.json'
    path.write_text(json.dumps({'input': 0, 'args': '1', 'steps': [
        {'task': 'add', 'queue': 'math'}, {'task': 'add', 'args': 5, 'retries': 2,
                                           'backoff': 'fixed:1', 'timeout': 1.5}]}))
    ours = client.submit_flow(flows.load(str(path), 'pipe'))
    proc = subprocess.run([binary('client', 'arbiter'), '--broker', fast_broker.endpoint,
                           '--json', 'pipe', 'submit', str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)['tasks']
    a = client.status_many(list(ours.tasks.values()))
    b = client.status_many([theirs['step1'], theirs['step2']])

    def shape(t):
        return (t.ref, t.name, t.queue, t.max_attempts, t.timeout_ms, t.args,
                [(p.ref, p.when) for p in t.parents])
    assert [shape(t) for t in a] == [shape(t) for t in b]
    assert a[1].args == b'5' and a[0].args == b'1'


README_WORKER = '''
import sys
from arbiter import Worker
w = Worker(queues=['default'], endpoint=sys.argv[1], slots=2)

@w.task('http_get')
def http_get(job):
    return b'page of ' + job.payload

@w.task('parse')
def parse(job):
    return job.payload.upper()

@w.task('add')
def add(job):
    return str(int(job.payload) + int(job.args))

@w.task('mul')
def mul(job):
    return str(int(job.payload) * int(job.args))

w.run()
'''


def test_the_readmes_workflow_example_runs(fast_broker, processes, tmp_path):
    """python/README.md's Workflows example, as a reader copies it, with
    `c`, `url` and nightly.json as its earlier lines make them."""
    text = open(os.path.join(ROOT, 'python', 'README.md')).read()
    section = text.split('## Workflows', 1)[1].split('\n## ', 1)[0]
    code, = re.findall(r'```python\n(.*?)```', section, re.S)
    (tmp_path / 'nightly.json').write_text(json.dumps(
        {'tasks': [{'name': 'one', 'task': 'add', 'payload': '1', 'args': '2'}]}))
    (tmp_path / 'flow.py').write_text(
        'from arbiter import Client\nc = Client(timeout=30)\nurl = "example.org"\n' + code)
    (tmp_path / 'worker.py').write_text(README_WORKER)
    env = dict(os.environ, PYTHONPATH=PYTHON, ARBITER_BROKER=fast_broker.endpoint)
    processes.append(Process([sys.executable, str(tmp_path / 'worker.py'), fast_broker.endpoint],
                             str(tmp_path / 'worker.log'), env=env))
    done = subprocess.run([sys.executable, str(tmp_path / 'flow.py')], env=env, cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "True b'PAGE OF EXAMPLE.ORG'", lines
    assert lines[-1] == "b'10'", lines  # ((0 + 1) + 1) * 5
