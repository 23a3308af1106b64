"""arbiter-bench, arbiter-peers and arbiter-bench-run run every workload to
the end on a few tasks and print well-formed figures. Nothing here judges a
speed: figures belong in BENCHMARKS.md, never in a test."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD, ROOT, SANITIZED, binary


def run_json(cmd, timeout=300):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=ROOT)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    return proc, {rec['workload']: rec for rec in lines}


def test_every_arbiter_workload_ends_well():
    bench = binary('tools', 'arbiter-bench')
    proc, recs = run_json([bench, '--arbiterd', binary('broker', 'arbiterd'), '--workloads',
                           'F1,W1,W2,P1,P2,L1,M2,B1,B2,B4', '--tasks', '300', '--queued', '2000',
                           '--probe', '20', '--dag-nodes', '100', '--b-batch', '50',
                           '--b-window', '500', '--b-slots', '4'])
    assert proc.returncode == 0, proc.stderr
    assert sorted(recs) == ['B1', 'B2', 'B3', 'B4', 'F1', 'L1', 'M1', 'M2', 'P1', 'P2', 'S1',
                            'W1', 'W2']
    for name, rec in recs.items():
        assert rec['ok'] is True, rec
        assert rec['system'] == 'arbiter' and rec['load'] >= 0
    assert recs['F1']['append_per_s'] > 0 and recs['F1']['overwrite_p50_us'] > 0
    assert recs['F1']['direct_per_s'] > 0 and recs['F1']['direct_p50_us'] > 0
    # the longest write is at least the p99's, and the stalls (writes over
    # stall_us) are counted among the probe's 20
    f1 = recs['F1']
    assert f1['direct_max_us'] >= f1['direct_p99_us'] > 0 and f1['stall_us'] == 2000
    assert 0 <= f1['direct_stalls'] <= 20
    assert (f1['direct_stalls'] > 0) == (f1['direct_max_us'] > f1['stall_us'])
    for name in ['W1', 'W2', 'P1', 'P2', 'L1']:
        rec = recs[name]
        assert rec['tasks'] == 300 and rec['batch'] == 1 and rec['sync'] == 'full'
        assert rec['ack_latency_ms']['n'] == 300
    assert recs['W1']['window'] == 1 and recs['P1']['window'] == 256
    assert recs['W2']['credit'] == 1 and recs['P2']['credit'] == 50
    for name in ['W2', 'P2', 'L1']:
        # every result came back with the timestamp its payload carried
        assert recs[name]['result_latency_ms']['n'] == 300
        assert recs[name]['consumers'] == 2
    assert recs['L1']['rate'] > 0
    assert recs['M1']['rss_kb'] > 0
    assert recs['M2']['queued'] == 2000 and recs['M2']['ready_counted'] == 2000
    assert recs['M2']['journal_bytes'] > 2000 * 100
    assert recs['S1']['open_tasks'] == 2000 and recs['S1']['ready_counted'] == 2000
    assert recs['S1']['seconds'] > 0


def test_the_transport_floor_measures_both_transports():
    """R1 is not in the default list: asked for, it runs durable and bare
    round trips over plain TCP and over ZeroMQ, each against a server it
    forks and ends."""
    bench = binary('tools', 'arbiter-bench')
    proc, recs = run_json([bench, '--workloads', 'R1', '--probe', '30'])
    assert proc.returncode == 0, proc.stderr
    rec = recs['R1']
    assert rec['ok'] is True and rec['round_trips'] == 30, rec
    for key in ['tcp_per_s', 'tcp_p50_us', 'zmq_per_s', 'zmq_p50_us', 'bare_tcp_p50_us',
                'bare_zmq_p50_us', 'zmq_over_tcp']:
        assert rec[key] > 0, (key, rec)
    # (no comparison of the two medians: a timing relation, which a loaded
    # machine reversed in CI with 30 round trips under ASan)
    proc, recs = run_json([bench, '--arbiterd', binary('broker', 'arbiterd'), '--workloads', 'F1',
                           '--probe', '5'])
    assert sorted(recs) == ['F1']


def test_batches_and_a_rate():
    bench = binary('tools', 'arbiter-bench')
    proc, recs = run_json([bench, '--arbiterd', binary('broker', 'arbiterd'), '--workloads',
                           'P2,L1', '--tasks', '250', '--batch', '100', '--rate', '2000'])
    assert proc.returncode == 0, proc.stderr
    assert recs['P2']['ok'] and recs['P2']['batch'] == 100 and recs['P2']['tasks'] == 250
    assert recs['L1']['ok'] and recs['L1']['rate'] == 2000
    assert recs['L1']['result_latency_ms']['n'] == 250


@pytest.mark.parametrize('tool,args,said', [
    ('arbiter-bench', ['--workloads', 'W9'], 'unknown workload W9'),
    ('arbiter-bench', ['--payload', '8'], '--payload: 8 is out of range (16 to'),
    ('arbiter-bench', ['--window', '0'], '--window: 0 is out of range (1 to 10000)'),
    ('arbiter-bench', ['--sync', 'x'], "--sync: expected full or normal, not 'x'"),
    ('arbiter-bench', ['--retention', '-1'], "--retention: expected seconds, like 30 or 0.25, "
                                             "not '-1'"),
    ('arbiter-bench', ['--b-batch', '600', '--b-window', '500'],
     '--b-window (500) is less than --b-batch (600)'),
    ('arbiter-bench', ['W1'], "unexpected argument 'W1'"),
    ('arbiter-peers', ['--workloads', 'W9'], 'unknown workload W9'),
    ('arbiter-peers', ['--workloads', 'L1', '--systems', 'redis-always'], 'unknown workload L1'),
    ('arbiter-peers', ['--systems', 'redis'], 'unknown system redis'),
    ('arbiter-peers', ['--consumers', '17'], '--consumers: 17 is out of range (1 to 16)'),
    ('arbiter-peers', ['W1'], "unexpected argument 'W1'"),
    ('arbiter-amqp-bench', ['--workloads', 'A9'], 'unknown workload A9'),
    ('arbiter-amqp-bench', ['--rate', '-1'], "--rate: expected a whole number, not '-1'"),
    ('arbiter-amqp-bench', ['--sync', 'bogus'], "--sync: expected full or normal, not 'bogus'"),
    ('arbiter-amqp-bench', ['--only', 'redis'], "--only: expected gateway or rabbitmq, "
                                                "not 'redis'"),
    ('arbiter-amqp-bench', ['--prefetch', '65536'], '--prefetch: 65536 is out of range'),
    ('arbiter-amqp-bench', ['A3'], "unexpected argument 'A3'"),
    ('arbiter-kestrel-bench', ['--workloads', 'K9'], 'unknown workload K9'),
    ('arbiter-kestrel-bench', ['--sync', 'fast'], "--sync: expected full or normal, not 'fast'"),
    ('arbiter-kestrel-bench', ['K1'], "unexpected argument 'K1'"),
    ('arbiter-kestrel-bench', ['--connections', '50', '--items', '10'],
     '--connections (50) is more than --items (10)')])
def test_the_tools_refuse_what_they_would_not_run(tool, args, said):
    """An unknown workload ran nothing and exited 0 (arbiter-peers,
    arbiter-amqp-bench, arbiter-kestrel-bench); a negative --rate paced A4
    at 1 message a second; a --sync arbiterd refuses started RabbitMQ
    first: each is refused before any server starts, and said, naming
    the argument and why (it was "bad arguments" and the whole usage)."""
    proc = subprocess.run([binary('tools', tool)] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)
    assert proc.returncode == 2, (args, proc.stderr)
    assert said in proc.stderr and proc.stdout == '', proc.stderr
    assert 'bad arguments' not in proc.stderr


#  Each tool's number options, with what makes a run tiny should one be
#  taken: a value that is not a whole number in range was read by atoi,
#  "10x" as 10 and "1.5" as 1, and the run started
NUMBER_OPTIONS = [
    ('arbiter-bench', ['--tasks', '--rate', '--queued-big', '--probe'],
     ['--workloads', 'F1', '--probe', '5']),
    ('arbiter-peers', ['--tasks', '--prefetch'], ['--systems', 'beanstalkd', '--workloads', 'W1']),
    ('arbiter-kestrel-bench', ['--items', '--idle'], ['--workloads', 'B1', '--connections', '1']),
    ('arbiter-amqp-bench', ['--items', '--rate'], ['--only', 'gateway', '--workloads', 'A1']),
]
NOT_WHOLE = ['10x', '', '-5', '1.5', ' 7', '0x10']


@pytest.mark.parametrize('tool,options,tiny', NUMBER_OPTIONS, ids=[n[0] for n in NUMBER_OPTIONS])
def test_a_number_option_takes_a_whole_number_in_range(tool, options, tiny):
    for option in options:
        for value in NOT_WHOLE + ['3000000000', '99999999999999999999']:
            proc = subprocess.run([binary('tools', tool)] + tiny + [option, value],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=30)
            assert proc.returncode == 2 and proc.stdout == '', (option, value, proc.stderr)
            # the option, its value and why, on the first line
            said = proc.stderr.splitlines()[0]
            assert said.startswith('%s: %s: ' % (tool, option)) and value in said, said
            if value in NOT_WHOLE:
                assert "expected a whole number, not '%s'" % value in said, said
            elif value == '3000000000':
                assert 'is out of range (' in said, said


PEERS = [('beanstalkd-fsync', '/usr/bin/beanstalkd'), ('beanstalkd', '/usr/bin/beanstalkd'),
         ('redis-always', '/usr/bin/redis-server'), ('redis-everysec', '/usr/bin/redis-server'),
         ('rabbitmq', '/usr/lib/rabbitmq/bin/rabbitmq-server')]


@pytest.mark.parametrize('system,server', PEERS, ids=[p[0] for p in PEERS])
def test_peers_run_every_shape(system, server):
    if SANITIZED:
        pytest.skip('the peers are not ours: their runs under the sanitizers check nothing more')
    if not os.access(server, os.X_OK) or (system == 'rabbitmq' and not shutil.which('epmd')):
        pytest.skip('%s is not installed (tools/arbiter-dev installs it)' % server)
    peers = binary('tools', 'arbiter-peers')
    # Each shape starts a fresh server, and a RabbitMQ takes seconds to
    # start: it runs the shapes with consumers only, whose producers are
    # W1's and P1's (the others run all four).
    shapes = ['W2', 'P2'] if system == 'rabbitmq' else ['W1', 'W2', 'P1', 'P2']
    proc, recs = run_json([peers, '--systems', system, '--tasks', '200',
                           '--workloads', ','.join(shapes)])
    assert proc.returncode == 0, proc.stderr
    assert sorted(recs) == sorted(['M1'] + shapes)
    for name in shapes:
        rec = recs[name]
        assert rec['ok'] is True and rec['system'] == system, rec
        assert rec['tasks'] == 200 and rec['ack_latency_ms']['n'] == 200
    assert recs['W2']['result_latency_ms']['n'] == 200
    assert recs['P2']['result_latency_ms']['n'] == 200 and recs['P2']['credit'] == 50
    assert recs['M1']['rss_kb'] > 0


def test_peer_not_installed_is_said_once_and_not_started(tmp_path):
    """A peer whose server is missing: one line saying which program and
    package, each shape ok false, exit 1 (it was a failed start a shape, and
    for RabbitMQ without epmd an Erlang crash report)."""
    if SANITIZED:
        pytest.skip('the peers are not ours: once, with build/, is enough')
    empty = tmp_path / 'empty'
    empty.write_text('')
    peers = binary('tools', 'arbiter-peers')
    # the server's program hidden under a file that cannot run, in a mount
    # namespace of this command's own
    cmd = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /usr/bin/beanstalkd && exec "$@"',
           str(empty), peers, '--systems', 'beanstalkd', '--workloads', 'W1,M1', '--tasks', '10']
    if not os.access('/usr/bin/beanstalkd', os.X_OK) or subprocess.run(
            ['unshare', '-m', 'true'], stderr=subprocess.DEVNULL).returncode:
        pytest.skip('needs beanstalkd and a mount namespace (root)')
    proc, recs = run_json(cmd, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count('beanstalkd is not installed: no /usr/bin/beanstalkd') == 1
    assert sorted(recs) == ['P2', 'W1']
    assert all(r['ok'] is False and r['error'] == 'not installed' for r in recs.values())


def test_run_refuses_what_it_cannot_run(tmp_path):
    run = [sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run')]
    # a number that is not whole, or out of range, named with its option
    refused = [([option, value], 2, "argument %s: expected a whole number, not '%s'"
                % (option, value))
               for option in ['--rounds', '--tasks', '--queued', '--probe', '--big']
               for value in ['10x', '', '-5', '1.5']]
    refused += [(['--rounds', '0'], 2, 'argument --rounds: 0 is out of range'),
                (['--tasks', '3000000000'], 2,
                 'argument --tasks: 3000000000 is out of range (1 to 2147483647)'),
                (['--table', str(tmp_path / 'none.jsonl')], 1, 'cannot read'),
                (['--table', os.devnull], 1, 'holds no line of a run'),
                (['--build', str(tmp_path), '--skip-peers'], 1,
                 'no %s/tools/arbiter-bench' % tmp_path)]
    for args, status, said in refused:
        proc = subprocess.run(run + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=30, cwd=tmp_path)
        assert proc.returncode == status and said in proc.stderr, (args, proc.stderr)
        assert 'Traceback' not in proc.stderr
    assert os.listdir(tmp_path) == []  # no bench-run.jsonl began


def test_run_shows_a_failed_step_and_exits_1(tmp_path):
    """A step that failed showed only '# exit 1' (its stderr was thrown
    away) and the run exited 0."""
    for sub in ['tools', 'broker']:
        (tmp_path / sub).mkdir()
    (tmp_path / 'broker' / 'arbiterd').write_text('#!/bin/sh\n')
    (tmp_path / 'tools' / 'arbiter-bench').write_text(
        '#!/bin/sh\necho \'{"system": "arbiter", "workload": "W1", "load": 0.5, "ok": true, '
        '"tasks_per_s": 5, "batch": 1}\'\necho "I: 26-12-07 08:00:00 link: a log line" >&2\n'
        'echo "arbiter-bench: the broker did not start" >&2\nexit 1\n')
    for sub in ['tools/arbiter-bench', 'broker/arbiterd']:
        os.chmod(tmp_path / sub, 0o755)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run'),
                           '--rounds', '1', '--skip-peers', '--build', str(tmp_path), '--out',
                           str(tmp_path / 'run.jsonl')], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1
    assert '#   arbiter-bench: the broker did not start' in proc.stderr
    assert 'a log line' not in proc.stderr and 'step(s) failed' in proc.stderr
    assert '| W1: submit one at a time' in proc.stdout


def test_run_big_takes_a_size(tmp_path):
    """--big ran M3 with its 10,000,000 tasks, whatever the run's sizes:
    --big N queues N (arbiter-bench's --queued-big), so that a quick run
    takes it too."""
    for sub in ['tools', 'broker']:
        (tmp_path / sub).mkdir()
    (tmp_path / 'broker' / 'arbiterd').write_text('#!/bin/sh\n')
    # an arbiter-bench that writes down how it was run
    (tmp_path / 'tools' / 'arbiter-bench').write_text(
        '#!/bin/sh\necho "$*" >> "$(dirname "$0")/runs"\n')
    for sub in ['tools/arbiter-bench', 'broker/arbiterd']:
        os.chmod(tmp_path / sub, 0o755)
    for big, queued in [(['--big', '5000'], '5000'), (['--big'], '10000000')]:
        (tmp_path / 'tools' / 'runs').write_text('')
        subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run'),
                        '--rounds', '1', '--skip-peers', '--build', str(tmp_path), '--out',
                        str(tmp_path / 'run.jsonl')] + big, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        runs = (tmp_path / 'tools' / 'runs').read_text().splitlines()
        assert [r for r in runs if '--workloads M3' in r] == [
            '--arbiterd %s/broker/arbiterd --workloads M3 --queued-big %s' % (tmp_path, queued)]


def test_run_prints_the_tables(tmp_path):
    if SANITIZED:
        pytest.skip('the tables are the Python script\'s: once, with build/, is enough (the '
                    'tests above run arbiter-bench itself under the sanitizers)')
    binary('tools', 'arbiter-bench')
    out = tmp_path / 'run.jsonl'
    # an earlier run's line in FILE: made anew, not appended to (its lines
    # counted in the medians, and as more rounds than the table said)
    out.write_text(json.dumps({'system': 'arbiter', 'workload': 'W1', 'ok': True, 'batch': 1,
                               'label': 'arbiter', 'round': 7, 'load': 9.5,
                               'tasks_per_s': 1}) + '\n')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run'),
                           '--rounds', '1', '--tasks', '200', '--queued', '1000', '--probe', '20',
                           '--skip-peers',
                           '--build', BUILD, '--out', str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert '| W1: submit one at a time' in proc.stdout
    assert '| P2, batches of 100 per SUBMIT |' in proc.stdout
    # labelled with what was run (--queued, --probe), not the defaults
    assert '| M2: broker RSS, 1,000 tasks queued, no workers |' in proc.stdout
    assert '| S1: start-up on that journal (1,000 open tasks) |' in proc.stdout
    assert 'fdatasync probe (F1, 20 appends of 100 bytes' in proc.stdout
    assert "The transport's floor (R1, 20 round trips each" in proc.stdout
    assert 'Not ok' not in proc.stdout, proc.stdout
    assert all(json.loads(line)['round'] == 1 for line in out.read_text().splitlines())
    assert 'Rounds: 1;' in proc.stdout
    again = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run'),
                            '--table', str(out)], stdout=subprocess.PIPE, text=True, timeout=60)
    assert again.stdout == proc.stdout


def _processes_running(prefix):
    """The pids of the live processes whose program is under prefix."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv0 = f.read().split(b'\0')[0].decode(errors='replace')
            with open(f'/proc/{entry}/stat') as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if argv0.startswith(prefix) and state != 'Z':
            found.append(int(entry))
    return found


def _left_running(prefix, wait=20):
    """The pids still running under prefix after up to wait seconds; each
    is killed (ours: started from the copies under tmp_path), so that a
    failing test leaves nothing behind."""
    deadline = time.monotonic() + wait
    while _processes_running(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _processes_running(prefix)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def _sigterm_once_up(proc, up, timeout=60):
    """Waits, while proc runs, until up() returns something (the tool's
    servers are up), lets it work half a second, sends it SIGTERM and
    reads it to its end. Returns (what up returned, out, err). proc is
    killed if it is still running, so that a failing test leaves nothing
    behind."""
    try:
        deadline = time.monotonic() + timeout
        while not (found := up()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        return found, out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_bench_leaves_no_broker_or_consumer(tmp_path):
    # copies under a path of their own, so that their processes are ours to find
    bench = str(tmp_path / 'arbiter-bench')
    arbiterd = str(tmp_path / 'arbiterd')
    shutil.copy(binary('tools', 'arbiter-bench'), bench)
    shutil.copy(binary('broker', 'arbiterd'), arbiterd)
    proc = subprocess.Popen([bench, '--arbiterd', arbiterd, '--workloads', 'P2', '--tasks',
                             '3000000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journals = set()
    try:
        deadline = time.monotonic() + 60
        # the bench, its broker and its two consumers
        while len(_processes_running(str(tmp_path))) < 4:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        journals = _journal_dirs(arbiterd)
    finally:
        proc.kill()
        proc.wait()
    left = _left_running(str(tmp_path))
    # a bench killed cannot remove its broker's directory: this test does
    for journal in journals:
        shutil.rmtree(journal, ignore_errors=True)
    assert left == []


def _journal_dirs(program):
    """The directories of the --db journals of the live processes of program."""
    found = set()
    for pid in _processes_running(program):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = [a.decode(errors='replace') for a in f.read().split(b'\0')]
        except OSError:
            continue
        if '--db' in argv[:-1]:
            found.add(os.path.dirname(argv[argv.index('--db') + 1]))
    return found


def test_a_stopped_amqp_bench_stops_its_servers(tmp_path):
    """SIGTERM (and Ctrl-C) to arbiter-amqp-bench: it went on to the end of
    every workload (czmq's handler took the signal, and nothing looked at
    it); it now ends the workload under way, prints no figure for it,
    stops its servers, removes their directories and exits 1."""
    bench = str(tmp_path / 'arbiter-amqp-bench')
    arbiterd = str(tmp_path / 'arbiterd')
    gateway = str(tmp_path / 'arbiter-gateway')
    shutil.copy(binary('tools', 'arbiter-amqp-bench'), bench)
    shutil.copy(binary('broker', 'arbiterd'), arbiterd)
    shutil.copy(binary('gateway', 'arbiter-gateway'), gateway)
    proc = subprocess.Popen([bench, '--only', 'gateway', '--workloads', 'A1', '--items',
                             '5000000', '--arbiterd', arbiterd, '--gateway', gateway],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the bench, its broker and its gateway, and the broker's journal
    journals, out, err = _sigterm_once_up(
        proc, lambda: len(_processes_running(str(tmp_path))) >= 3 and _journal_dirs(arbiterd))
    left = _left_running(str(tmp_path), wait=0)
    assert left == []
    assert proc.returncode == 1, err
    assert 'interrupted' in err and out == ''
    assert journals and not any(os.path.exists(j) for j in journals)


def test_kestrel_bench_runs_every_workload_with_the_head_of_arbiter_benchs():
    """arbiter-kestrel-bench at a tiny size: every workload ends well, each
    line with arbiter-bench's head (the broker alone is `arbiter`, the
    Kestrel workloads `gateway`)."""
    proc, recs = run_json([binary('tools', 'arbiter-kestrel-bench'), '--items', '200',
                           '--connections', '4', '--idle', '5',
                           '--arbiterd', binary('broker', 'arbiterd'),
                           '--gateway', binary('gateway', 'arbiter-gateway')], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(recs) == ['B1', 'B2', 'B3', 'K1', 'K2', 'K3'], sorted(recs)
    for name, rec in recs.items():
        assert list(rec)[:5] == ['system', 'workload', 'what', 'at', 'load'], rec
        assert rec['system'] == ('arbiter' if name[0] == 'B' else 'gateway'), rec
        assert rec.get('ok', True) is True and rec.get('items', 200) == 200, rec
    assert recs['K3']['served'] == 5, recs['K3']


def test_amqp_bench_lines_have_the_head_of_arbiter_benchs():
    """arbiter-amqp-bench's lines had no system, time or load average, which
    arbiter-bench's and arbiter-peers' have: the same head now, the target
    as the system."""
    proc, recs = run_json([binary('tools', 'arbiter-amqp-bench'), '--only', 'gateway',
                           '--workloads', 'A1', '--items', '100', '--producers', '1',
                           '--arbiterd', binary('broker', 'arbiterd'),
                           '--gateway', binary('gateway', 'arbiter-gateway')], timeout=60)
    assert proc.returncode == 0, proc.stderr
    rec = recs['A1']
    assert list(rec)[:5] == ['system', 'workload', 'what', 'at', 'load'], rec
    assert rec['system'] == rec['target'] == 'gateway' and rec['load'] >= 0
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', rec['at']), rec
    assert rec['msgs_per_s'] > 0 and rec['failed'] == 0


def _children(pid):
    """The argv of each live child of pid."""
    found = {}
    for entry in os.listdir('/proc'):
        try:
            with open(f'/proc/{entry}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv = [a.decode(errors='replace') for a in f.read().split(b'\0')]
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found[int(entry)] = argv
    return found


def test_a_stopped_peers_run_stops_its_server(tmp_path):
    """SIGTERM to arbiter-peers killed it outright: its server was stopped
    (it dies with its parent) but its directory, with the AOF or binlog,
    stayed in /tmp. It now ends the shape under way, stops the server,
    removes the directory and exits 1."""
    if SANITIZED:
        pytest.skip('the peers are not ours: once, with build/, is enough')
    if not os.access('/usr/bin/redis-server', os.X_OK):
        pytest.skip('redis-server is not installed (tools/arbiter-dev installs it)')
    proc = subprocess.Popen([binary('tools', 'arbiter-peers'), '--systems', 'redis-always',
                             '--workloads', 'W1', '--tasks', '5000000'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def server_up():
        """The redis server's pid and folder, once it runs."""
        for pid, argv in _children(proc.pid).items():
            # (redis sets its own title; it runs in its --dir)
            if argv[0].startswith('/usr/bin/redis-server'):
                try:
                    folder = os.readlink(f'/proc/{pid}/cwd')
                except OSError:
                    continue
                if folder.startswith('/tmp/arbiter-peers-'):
                    return pid, folder
        return None

    (server, folder), out, err = _sigterm_once_up(proc, server_up)
    assert proc.returncode == 1, err
    assert 'interrupted' in err
    assert not os.path.exists(f'/proc/{server}') and not os.path.exists(folder)


def test_a_stopped_run_stops_its_step(tmp_path):
    """SIGTERM to arbiter-bench-run ended the script alone: its step
    (arbiter-bench, a peer's run) ran on until its next line met the
    closed pipe and SIGPIPE ended it, its broker or server then stopped
    only by dying with it, the directory left in /tmp. The step is now
    stopped with SIGTERM too, and stops its broker and removes its
    journal."""
    if SANITIZED:
        pytest.skip('the tables are the Python script\'s: once, with build/, is enough')
    # copies under a path of their own, so that their processes are ours to find
    for sub in ['tools', 'broker']:
        (tmp_path / sub).mkdir()
    shutil.copy(binary('tools', 'arbiter-bench'), tmp_path / 'tools' / 'arbiter-bench')
    shutil.copy(binary('broker', 'arbiterd'), tmp_path / 'broker' / 'arbiterd')
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tools', 'arbiter-bench-run'),
                             '--rounds', '1', '--tasks', '3000000', '--probe', '5',
                             '--skip-peers', '--build', str(tmp_path), '--out',
                             str(tmp_path / 'run.jsonl')],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # its arbiter-bench's broker (W1's, after F1 and R1), on its journal
    journals, out, err = _sigterm_once_up(
        proc, lambda: _journal_dirs(str(tmp_path / 'broker' / 'arbiterd')))
    left = _left_running(str(tmp_path))
    for journal in journals:  # a broker killed cannot remove it: this test does
        if os.path.exists(journal):
            shutil.rmtree(journal, ignore_errors=True)
            left.append(journal)
    assert left == []
    assert proc.returncode == 1 and 'stopped (signal 15)' in err, err
