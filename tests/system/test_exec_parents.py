"""A child run by `arbiter-worker --exec` sees each parent's outcome in
ARBITER_PARENTS as the C API gives it: a failed parent's state and error,
not an empty result."""

import json
import subprocess

from conftest import binary
from helpers import start_exec_worker

COMMAND = r'''
case "$ARBITER_TASK_NAME" in
  boom) echo "disk full" >&2; exit 3 ;;
  *) cat "$ARBITER_PARENTS" ;;
esac
'''


def test_a_child_sees_its_failed_parent(broker, processes, tmp_path):
    start_exec_worker(broker, processes, tmp_path, COMMAND, '--slots', '2')
    dag = tmp_path / 'dag.json'
    dag.write_text(json.dumps({'tasks': [
        {'name': 'fine', 'task': 'ok', 'payload': 'x'},
        {'name': 'load', 'task': 'boom'},
        {'name': 'report', 'task': 'show',
         'after': [{'task': 'load', 'when': 'on_failure'}, {'task': 'fine', 'when': 'always'}]}]}))
    proc = subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint, '--json',
                           'dag', 'submit', '--watch', str(dag)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    first, *ended = [json.loads(line) for line in proc.stdout.splitlines()]
    report = [t for t in ended if t['name'] == 'report'][0]
    assert report['state'] == 'succeeded', (report, proc.stderr)
    parents = json.loads(report['result'])
    assert parents == {
        'load': {'id': first['tasks']['load'], 'state': 'dead', 'result': None,
                 'error': 'disk full'},
        'fine': {'id': first['tasks']['fine'], 'state': 'succeeded', 'result': {},
                 'error': None}}
