"""The `arbiter` CLI's options and messages, against a real arbiterd:
--broker, --json and --rpc-timeout anywhere on the line; with --json every
error is a JSON object on stderr and the exit status stays; a usage error
is one line and a hint; -h, --help and --version on every command and verb;
submit reads stdin for '-' only; --backoff needs retries.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import SANITIZED, binary, free_port

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(*args, env=None, stdin=b''):
    """The CLI with ARBITER_BROKER at a port nobody serves: only a --broker
    on the line reaches the broker."""
    environ = dict(os.environ, ARBITER_BROKER='tcp://127.0.0.1:%d' % free_port())
    environ.update(env or {})
    proc = subprocess.run([binary('client', 'arbiter')] + list(args), input=stdin, env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert b'Sanitizer' not in proc.stderr, proc.stderr
    return proc


def json_lines(data):
    return [json.loads(line) for line in data.decode().splitlines()]


def test_common_options_anywhere(broker):
    ep = broker.endpoint
    proc = run('submit', '--delay', '60', 'echo', 'x', '--broker', ep, '--json')
    assert proc.returncode == EXIT_OK, proc.stderr
    task = json.loads(proc.stdout)['id']
    for args in (['status', str(task), '--json', '--broker', ep],
                 ['status', '--broker', ep, str(task), '--json'],
                 ['--json', 'status', str(task), '--broker', ep],
                 ['--broker', ep, 'status', '--json', str(task)],
                 ['list', '--rpc-timeout', '2000', '--state', 'scheduled', '--json', '--broker', ep]):
        proc = run(*args)
        assert proc.returncode == EXIT_OK, (args, proc.stderr)
        assert json_lines(proc.stdout)[0]['id'] == task, args
    # between a command and its verb, and after the verb
    dag = broker.tmp_path / 'one.json'
    dag.write_text(json.dumps({'tasks': [{'name': 'a', 'delay': 60}]}))
    proc = run('dag', '--broker', ep, 'submit', str(dag), '--json')
    assert proc.returncode == EXIT_OK, proc.stderr
    flow = json.loads(proc.stdout)['flow']
    for args in (['dag', '--json', '--broker', ep, 'status', str(flow)],
                 ['dag', 'status', str(flow), '--broker', ep, '--json']):
        proc = run(*args)
        assert proc.returncode == EXIT_OK, (args, proc.stderr)
        assert json.loads(proc.stdout)['tasks'][0]['name'] == 'a'
    # an option's value that looks like --json stays a value
    proc = run('submit', '--broker', ep, '--key', '--json', 'echo')
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.strip().isdigit()
    assert json.loads(run('status', '--json', '--broker', ep, proc.stdout.strip().decode())
                      .stdout)['key'] == '--json'


def test_json_errors_are_objects_and_keep_the_exit_status(broker, tmp_path):
    ep = broker.endpoint
    cycle = tmp_path / 'cycle.json'
    cycle.write_text(json.dumps({'tasks': [{'name': 'a', 'after': ['b']},
                                           {'name': 'b', 'after': ['a']}]}))
    cases = [  # (args, exit status, code)
        (['submit', '--json', '--broker', ep], EXIT_USAGE, None),
        (['submit', '--delay', 'soon', 'echo', '--broker', ep, '--json'], EXIT_USAGE, None),
        (['--json', 'status', 'flow:999999', '--broker', ep], EXIT_USAGE, 404),
        (['dag', 'submit', str(cycle), '--broker', ep, '--json'], EXIT_USAGE, 422),
        (['bogus', '--json'], EXIT_USAGE, None),
        (['--json', '--frob'], EXIT_USAGE, None),
        (['ping', '--json', '--rpc-timeout', '300'], EXIT_FAILED, None),  # nobody answers
    ]
    for args, status, code in cases:
        proc = run(*args)
        assert proc.returncode == status, (args, proc.stderr)
        errors = json_lines(proc.stderr)
        assert len(errors) == 1 and set(errors[0]) == {'error', 'code'}, (args, proc.stderr)
        assert errors[0]['code'] == code and errors[0]['error'], (args, errors)
        if code != 404:
            assert proc.stdout == b'', (args, proc.stdout)
    # wait --json tells of an unknown id on stdout, like of any other task
    proc = run('wait', '999999', '--broker', ep, '--json')
    assert proc.returncode == EXIT_USAGE and proc.stderr == b''
    assert json_lines(proc.stdout) == [{'id': 999999, 'state': 'unknown', 'attempts': 0,
                                        'error': 'no such task'}]
    # and so does status --json, as README says
    proc = run('status', '999999', '--broker', ep, '--json')
    assert proc.returncode == EXIT_USAGE and proc.stderr == b''
    assert json_lines(proc.stdout) == [{'id': 999999, 'state': 'unknown',
                                        'error': 'no such task'}]
    # the same mistakes without --json: one line of text each
    proc = run('dag', 'submit', str(cycle), '--broker', ep)
    assert proc.returncode == EXIT_USAGE
    assert re.fullmatch(rb"arbiter: dag: .*dependency cycle: .*\n", proc.stderr), proc.stderr
    # a notice with --json is an object too
    first = run('submit', '--broker', ep, '--key', 'k', 'echo').stdout.strip()
    proc = run('submit', '--broker', ep, '--key', 'k', 'echo')
    assert proc.stderr == b"arbiter: key 'k' was known already: %s is the task it named\n" % first
    assert run('submit', '--broker', ep, 'echo').returncode == EXIT_OK
    proc = run('list', '--broker', ep, '--limit', '1', '--json')
    assert proc.returncode == EXIT_OK
    assert json_lines(proc.stderr) == [
        {'notice': 'list: more tasks match; --limit 1 reached (0: no limit)'}]


def test_usage_errors_are_one_line_and_a_hint():
    for args, line in [
            (['submit'], b'arbiter submit: which task? give its NAME'),
            # the payload unquoted: say how to give it
            (['submit', 'upper', 'hello', 'world'],
             b"arbiter submit: too many arguments: a NAME and one PAYLOAD (quote a payload "
             b"that has spaces: 'hello world')"),
            (['schedule', 'add', 'nightly', '--cron', '30 2 * * *', 'nightly', 'report'],
             b"arbiter schedule: too many arguments: a NAME and one PAYLOAD (quote a payload "
             b"that has spaces: 'nightly report')"),
            (['submit', '--frob', 'x'], b'arbiter submit: unknown option --frob'),
            (['wait', '--timeout'], b'arbiter wait: --timeout needs a value'),
            (['dag'], b'arbiter dag: what? give a verb: submit, status, wait, cancel'),
            (['pipe'], b'arbiter pipe: what? give a verb: submit, status, wait, cancel'),
            (['dag', 'status'], b'arbiter dag status: which one? give its ID'),
            (['queue', 'pause'], b'arbiter queue: give an operation and a queue'),
            (['--frob'], b'arbiter: unknown option --frob'),
            ([], b'arbiter: which command?')]:
        proc = run(*args)
        assert proc.returncode == EXIT_USAGE, args
        lines = proc.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith(line), (args, proc.stderr)
        cmd = line.split(b':')[0]
        assert lines[1] == b'see ' + cmd + b' --help', (args, proc.stderr)


def test_an_rpc_timeout_in_seconds_is_told():
    """--rpc-timeout counts milliseconds: a value no broker could answer
    within (seconds meant, as the daemons count them) is refused, saying so."""
    proc = run('--rpc-timeout', '5', 'ping')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.startswith(b'arbiter: --rpc-timeout: 5 ms is too short to hear from a '
                                  b'broker (it counts milliseconds: 5000 is 5 s; at least 50)'), \
        proc.stderr


def commands():
    """Every command and verb, from the tool's own help."""
    out = run('--help').stdout.decode()
    names = re.findall(r'^  (\w+) ', out.split('Commands')[1].split('Options')[0], re.M)
    assert 'submit' in names and 'dag' in names
    found = []
    for name in names:
        usage = run(name, '--help').stdout.decode()
        verbs = re.findall(r'arbiter %s (\w+)' % name, usage)
        if 'arbiter %s status' % name not in usage:  # a command with verbs (dag, group, pipe)
            verbs = []
        found += [[name, v] for v in dict.fromkeys(verbs)] if verbs else [[name]]
    return found


# once a `scons test`, in build/: every command's --help, a dozen seconds of
# the sanitized suite, which is what the run's 15 minutes wait on (the
# option parsing runs sanitized at every daemon's start, and in fuzz_cli_args)
@pytest.mark.skipif(SANITIZED, reason='the texts are checked in the plain build (build/)')
def test_help_and_version_everywhere():
    for args in [[]] + commands():
        for flag in ('-h', '--help'):
            proc = run(*(args + [flag]))
            assert proc.returncode == EXIT_OK, (args, flag, proc.stderr)
            assert proc.stdout.startswith(b'usage: arbiter ' + ' '.join(args).encode()), (
                args, flag, proc.stdout[:80])
            assert proc.stderr == b''
        proc = run(*(args + ['--version']))
        assert proc.returncode == EXIT_OK, (args, proc.stderr)
        assert re.fullmatch(rb'arbiter \d+\.\d+\.\d+ \(protocol \d+\)\n', proc.stdout), args


def peeked_payloads(broker, peer_factory):
    kind, _, _, frames = peer_factory(broker.endpoint).request('PEEK', {'queue': 'default',
                                                                        'max': 100})
    assert kind == 'PEEK_REPLY'
    return frames


def test_submit_reads_stdin_only_for_a_dash(broker, peer_factory, tmp_path):
    lines = tmp_path / 'lines'
    lines.write_text('one\ntwo\nthree\n')
    # a loop that reads its own stdin submits once per line
    loop = 'while read line; do "$ARBITER" --broker "$EP" submit --delay 60 x; done < "$LINES"'
    proc = subprocess.run(['sh', '-c', loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(os.environ, ARBITER=binary('client', 'arbiter'),
                                   EP=broker.endpoint, LINES=str(lines)), timeout=60)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert len(proc.stdout.split()) == 3, proc.stdout
    proc = run('--broker', broker.endpoint, 'submit', 'x', '-', stdin=b'from\nstdin')
    assert proc.returncode == EXIT_OK, proc.stderr
    proc = run('--broker', broker.endpoint, 'submit', 'x', stdin=b'not read')
    assert proc.returncode == EXIT_OK, proc.stderr
    # three empty payloads (delayed, so not peeked), then '-' and none
    assert peeked_payloads(broker, peer_factory) == [b'from\nstdin', b'']


def test_backoff_needs_retries(broker, tmp_path):
    proc = run('--broker', broker.endpoint, 'submit', '--backoff', 'fixed:1', 'echo')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == (b'arbiter: --backoff: it delays retries, and there are none: '
                           b'add --retries N\n')
    dag = tmp_path / 'dag.json'
    dag.write_text(json.dumps({'tasks': [{'name': 'a', 'backoff': 'exp:1,10'}]}))
    proc = run('--broker', broker.endpoint, 'dag', 'submit', str(dag))
    assert proc.returncode == EXIT_USAGE
    assert b"tasks[0] ('a').backoff: it delays retries, and there are none" in proc.stderr
    assert run('--broker', broker.endpoint, 'list').stdout.count(b'\n') == 1  # the header
    proc = run('--broker', broker.endpoint, 'submit', '--backoff', 'fixed:1', '--retries', '1',
               'echo')
    assert proc.returncode == EXIT_OK, proc.stderr


def test_every_state_stats_shows_can_be_listed(broker):
    ep = broker.endpoint
    assert run('--broker', ep, 'submit', 'echo').returncode == EXIT_OK
    stats = json.loads(run('--broker', ep, 'stats', '--json').stdout)
    states = list(stats['queues'][0]['counts'])
    header = run('--broker', ep, 'stats').stdout.decode().splitlines()[2].split()
    assert header[1:1 + len(states)] == states
    assert 'failed' not in states and len(states) == 8
    for state in states:
        proc = run('--broker', ep, 'list', '--state', state)
        assert proc.returncode == EXIT_OK, (state, proc.stderr)
    # no task rests in failed: said in words, with no internal number
    proc = run('--broker', ep, 'list', '--state', 'failed')
    assert proc.returncode == EXIT_USAGE and proc.stdout == b''
    assert proc.stderr.startswith(b'arbiter: --state: no task rests in failed')
    assert not re.search(rb'\d', proc.stderr), proc.stderr


def test_flow_ids_are_written_flow_colon(broker, tmp_path):
    ep = broker.endpoint
    group = tmp_path / 'group.json'
    group.write_text(json.dumps({'name': 'g', 'tasks': [{'task': 'm', 'delay': 60},
                                                        {'task': 'm', 'delay': 60}]}))
    proc = run('--broker', ep, 'group', 'submit', str(group))
    assert proc.returncode == EXIT_OK, proc.stderr
    flow = proc.stdout.decode().strip()
    assert re.fullmatch(r'flow:\d+', flow), flow
    number = flow.split(':')[1]
    # everywhere a flow id is taken, flow:N names the flow
    for args in (['status', flow], ['group', 'status', flow], ['group', 'status', number]):
        proc = run('--broker', ep, *args)
        assert proc.returncode == EXIT_OK, (args, proc.stderr)
        assert proc.stdout.decode().startswith('%s (group): 2 tasks: 2 scheduled' % flow), args
    member = json.loads(run('--broker', ep, '--json', 'status', flow).stdout)['tasks'][0]['id']
    proc = run('--broker', ep, 'status', str(member))
    assert ('flow         %s, as \'member1\'' % flow) in proc.stdout.decode()
    proc = run('--broker', ep, 'wait', '--timeout', '0.2', flow)
    assert proc.returncode == 3 and proc.stderr.startswith(b'arbiter: %s: 2 of 2 tasks unfinished'
                                                           % flow.encode())
    proc = run('--broker', ep, 'cancel', flow)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.decode().splitlines()[-1] == '%s: 2 tasks cancelled' % flow
    # a flow id is never taken for a task id, nor mixed with them
    proc = run('--broker', ep, 'retry', flow)
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == b"arbiter: '%s' is not a task id (a number from 1): it names a flow\n" % (
        flow.encode())
    proc = run('--broker', ep, 'status', str(member), flow)
    assert proc.returncode == EXIT_USAGE and b'give task IDs, or one flow:ID' in proc.stderr
    proc = run('--broker', ep, 'status', 'flow:999999')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == b'arbiter: flow:999999: no such flow (or its tasks are gone)\n'
