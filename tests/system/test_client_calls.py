"""The client library's calls for each verb (arb_client_status, _cancel,
_retry, _stats, _peek) against a real arbiterd: through examples/commander,
which builds no message by hand, and through the CLI commands built on them
(`arbiter peek` among them)."""

import json
import os
import subprocess

import arbiter_proto
from conftest import binary, wait_until
from helpers import start_minion

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def arbiter(broker, *args):
    proc = subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          input=b'', stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert b'Sanitizer' not in proc.stderr, proc.stderr
    return proc


def test_commander_uses_the_calls(broker, processes, tmp_path):
    start_minion(broker, processes, tmp_path, '--slots', '4')
    proc = subprocess.run([binary('examples', 'commander'), '--broker', broker.endpoint,
                           '--count', '5'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert sorted(l for l in lines if ' succeeded: ' in l) == sorted(
        'task %d succeeded: %d' % (i + 1, i + i * i) for i in range(5))
    assert 'status of task 1: succeeded after 1 attempt(s) on ' in lines[-2], lines
    assert lines[-1] == 'queue default: 0 ready, 0 running, 5 succeeded', lines


def test_peek_shows_the_head_without_taking_it(broker, peer_factory):
    ids = [int(arbiter(broker, 'submit', '--queue', 'jobs', 'resize', 'photo %d' % i).stdout)
           for i in range(3)]
    urgent = int(arbiter(broker, 'submit', '--queue', 'jobs', '--priority', '5', 'alert',
                         'two\nlines').stdout)
    arbiter(broker, 'submit', '--queue', 'jobs', '--delay', '60', 'later')
    proc = arbiter(broker, 'peek', 'jobs', '-n', '3')
    assert proc.returncode == EXIT_OK, proc.stderr
    rows = proc.stdout.decode().splitlines()
    assert rows[0].split() == ['ID', 'NAME', 'ATTEMPT', 'CREATED', 'PAYLOAD']
    assert [r.split()[0] for r in rows[1:]] == [str(urgent), str(ids[0]), str(ids[1])]
    assert rows[1].split(None, 4)[1:3] == ['alert', '1'] and rows[1].endswith('two\\nlines')
    proc = arbiter(broker, 'peek', '--json', 'jobs')
    objs = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [o['id'] for o in objs] == [urgent] + ids  # ready ones only, in hand-out order
    assert objs[1] == {**objs[1], 'queue': 'jobs', 'name': 'resize', 'attempt': 1,
                       'payload': 'photo 0', 'timeout_ms': 0}
    # nothing was taken: a worker gets them all, the urgent one first
    worker = peer_factory(broker.endpoint)
    worker.send('REGISTER', {'name': 'w', 'slots': 10})
    worker.send('CREDIT', {'sub': 1, 'queues': ['jobs'], 'credit': 10})
    got = []
    wait_until(lambda: got.extend(t['id'] for t in worker.next_of('DISPATCH')[2]['tasks'])
               or len(got) == 4, what='four dispatched tasks')
    assert got[0] == urgent and sorted(got) == sorted([urgent] + ids)
    # an unknown queue has nothing; bad input says so
    proc = arbiter(broker, 'peek', 'nobody')
    assert proc.returncode == EXIT_OK and len(proc.stdout.splitlines()) == 1
    for args, message in [(['peek'], b'arbiter peek: which queue? give it'),
                          (['peek', 'jobs', '-n', '0'], b'arbiter: -n: must be 1 or more'),
                          (['peek', 'jobs', '-n', '1001'], b'arbiter: -n: 1001 is over the limit of 1000'),
                          (['peek', 'q\n'], b'arbiter: QUEUE: control character 0x0a')]:
        proc = arbiter(broker, *args)
        assert proc.returncode == EXIT_USAGE and proc.stderr.startswith(message), (
            args, proc.stderr)
