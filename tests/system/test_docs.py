"""What the docs and the build say is what the code does: a message
docs/workflows.md quotes is the one `arbiter dag wait` prints; a file the
build's messages send people to exists."""

import json
import os
import re
import subprocess

from conftest import ROOT, binary
from helpers import start_exec_worker


def test_workflows_md_quotes_what_dag_wait_prints(broker, processes, tmp_path):
    doc = open(os.path.join(ROOT, 'docs', 'workflows.md')).read()
    quoted = re.search(r'^    (alert skipped: .*)$', doc, re.M).group(1)
    start_exec_worker(broker, processes, tmp_path, 'cat')
    dag = tmp_path / 'dag.json'
    dag.write_text(json.dumps({'tasks': [
        {'name': 'load', 'payload': 'rows'},
        {'name': 'alert', 'after': [{'task': 'load', 'when': 'on_failure'}]}]}))
    proc = subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint, 'dag',
                           'submit', '--watch', str(dag)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert quoted in proc.stdout.decode().splitlines(), (quoted, proc.stdout)


def test_build_messages_name_files_that_exist():
    sconstruct = open(os.path.join(ROOT, 'SConstruct')).read()
    message = re.search(r"print\('scons: pkg-config cannot find(.*?)\)\n", sconstruct, re.S)
    paths = re.findall(r'\.?[\w-]+/[\w.-]+', message.group(1))
    assert paths
    for path in paths:
        assert os.path.exists(os.path.join(ROOT, path)), path
