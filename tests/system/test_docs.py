"""What the docs and the build say is what the code does: a message
docs/workflows.md quotes is the one `arbiter dag wait` prints; a file the
build's messages send people to exists."""

import json
import os
import re
import subprocess

from conftest import ROOT, Process, binary, free_port, wait_until
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


def readme_quote(start):
    """The line of the README's examples that starts with `start`, as a
    pattern: `...` stands for anything, a date and a time for any."""
    readme = open(os.path.join(ROOT, 'README.md')).read()
    found = re.search(r'^ +(%s.*)$' % re.escape(start), readme, re.M)
    assert found, 'no line of README.md starts with %r' % start
    line = found.group(1)
    pattern = re.escape(line).replace(r'\.\.\.', '.+')
    pattern = re.sub(r'\d\d\\-\d\d\\-\d\d\\ \d\d:\d\d:\d\d', r'\\d\\d-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d',
                     pattern)
    return line, re.sub(r'\d{4}\\-\d\d\\-\d\dT\d\d:\d\d:\d\d\\\+\d\d:\d\d',
                        r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d[+-]\\d\\d:\\d\\d', pattern)


def test_readme_quotes_what_a_curve_broker_logs_as_it_makes_its_certificate(processes, tmp_path):
    """The README's "Securing the broker" quotes the line arbiterd logs as
    it makes its certificate: it left out the process and the time every
    log line carries, and the end of the line that says what to do with
    the key."""
    line, pattern = readme_quote("N: (arbiterd) ")
    curve = tmp_path / 'curve'
    pattern = pattern.replace(re.escape('/etc/arbiter/curve'), re.escape(str(curve)))
    proc = Process([binary('broker', 'arbiterd'), '--bind', 'tcp://127.0.0.1:%d' % free_port(),
                    '--curve', str(curve), '--db', str(tmp_path / 'a.db')],
                   str(tmp_path / 'broker.log'))
    processes.append(proc)
    wait_until(lambda: 'made the broker' in proc.output(), timeout=20, what='the certificate')
    logged = [l for l in proc.output().splitlines() if 'made the broker' in l]
    assert re.fullmatch(pattern, logged[0]), (line, logged[0])


def test_readme_quotes_what_schedule_add_prints(broker):
    line, pattern = readme_quote('schedule nightly added: ')
    added = subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint, 'schedule',
                            'add', 'nightly', '--cron', '30 2 * * *', '--tz', 'Europe/Berlin',
                            '--task', 'upper', '--retries', '2', 'nightly report'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert added.returncode == 0, added.stderr
    assert re.fullmatch(pattern, added.stdout.decode().rstrip('\n')), (line, added.stdout)


def test_readme_kestrel_then_amqp_lines_run_as_shown(broker, gateway_factory):
    """The README's Kestrel and AMQP lines, run in order as a newcomer runs
    them, in one Python: each line's shown result is what it returns, and
    the AMQP basic_get gets the cat.png it published. Both used the queue
    `work`, where the Kestrel lines leave the b'x' of their fan-out line:
    basic_get got that instead."""
    gw = gateway_factory(broker)
    readme = open(os.path.join(ROOT, 'README.md')).read()
    session = re.findall(r'^    (>>> |\.\.\. )(.*?)(?:  +# .*)?\n(?:    ([^>.\s$].*)\n)?',
                         readme[readme.index('    $ python3\n'):], re.M)
    script, checks = [], 0
    for prompt, code, shown in session:
        code = code.replace("('127.0.0.1', 22133)", "('127.0.0.1', %d)" % gw.kestrel_port)
        code = code.replace("ConnectionParameters('127.0.0.1')",
                            "ConnectionParameters('127.0.0.1', %d)" % gw.amqp_port)
        if prompt == '... ':
            script[-1] += '\n' + code
            continue
        if shown:  # the line's value is shown: check it
            script.append('assert repr(%s) == %r, %r' % (code, shown, code))
            checks += 1
        else:
            script.append(code)
    assert checks >= 2 and any('basic_get' in line for line in script), script
    script.append("assert body == b'cat.png', body")
    run = subprocess.run(['/usr/bin/python3', '-c', '\n'.join(script)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=120)
    assert run.returncode == 0, (run.stderr.decode(), '\n'.join(script))
