"""The client library's calls for each verb (arb_client_status, _cancel,
_retry, _stats, _peek) against a real arbiterd: through examples/commander,
which builds no message by hand, and through the CLI commands built on them
(`arbiter peek` among them)."""

import json
import subprocess

from conftest import binary, wait_until
from helpers import start_exec_worker, start_minion, submit_many

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


def test_a_status_of_big_results_comes_in_several_replies(broker, processes, tmp_path,
                                                          peer_factory):
    """A STATUS reply carries results up to 16 MiB beyond its first task,
    as a DISPATCH does: the ids past them are answered by another STATUS
    (`more`), which the client library and the Python package send. Before,
    one STATUS of 100,000 ids with results of 16 MiB was one reply of up
    to 1.6 TB built in the broker's memory."""
    start_exec_worker(broker, processes, tmp_path, 'head -c 7000000 /dev/zero | tr "\\0" r')
    peer = peer_factory(broker.endpoint)
    ids = submit_many(peer, [{'name': 'big'} for _ in range(4)])
    wait_until(lambda: all(t['state'] == 5 for t in status_of(peer, ids)), timeout=60,
               what='4 big results')
    kind, _, body, _ = peer.request('STATUS', {'ids': ids}, timeout=30)
    # 7, 14, then 21 MB: past 16 MiB after the third
    assert [t['id'] for t in body['tasks']] == ids[:3] and body.get('more') is True, \
        [t['id'] for t in body['tasks']]
    kind, _, body, _ = peer.request('STATUS', {'ids': ids[3:]}, timeout=30)
    assert [t['id'] for t in body['tasks']] == ids[3:] and not body.get('more')
    # the CLI (libarbiter) shows all four, their results whole
    proc = arbiter(broker, '--json', 'status', *[str(i) for i in ids])
    assert proc.returncode == EXIT_OK, proc.stderr
    shown = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [t['id'] for t in shown] == ids
    assert all(len(t['result']) == 7000000 for t in shown)
    # and the Python package
    import python_support  # puts the package on sys.path
    del python_support
    from arbiter import Client
    with Client(broker.endpoint) as client:
        infos = client.status_many(ids)
    assert [i.id for i in infos] == ids and all(len(i.result) == 7000000 for i in infos)
    # a fan-out task's endpoints' results count too: 14 MB a task here
    for name in ('e1', 'e2'):
        start_exec_worker(broker, processes, tmp_path,
                          'head -c 7000000 /dev/zero | tr "\\0" r', '--name', name)
    fans = submit_many(peer, [{'name': 'big', 'endpoints': ['e1', 'e2'],
                               'allow_unknown': True} for _ in range(3)])
    wait_until(lambda: all(t['state'] == 5 for t in status_of(peer, fans)), timeout=60,
               what='3 fan-outs of big results')
    kind, _, body, _ = peer.request('STATUS', {'ids': fans}, timeout=30)
    assert [t['id'] for t in body['tasks']] == fans[:2] and body.get('more') is True, \
        [t['id'] for t in body['tasks']]
    assert all(len(r['result']) == 7000000 for r in body['tasks'][1]['responses'])


def status_of(peer, ids):
    kind, _, body, _ = peer.request('STATUS', {'ids': ids}, timeout=30)
    return body['tasks']
