"""A short kill -9 soak of the gateway's AMQP server
(tools/arbiter-amqp-soak): 36 s of chaos, the broker (--sync full)
SIGKILLed 6 times and the gateway 3 times, both together once more,
consumers closing their connection twice with deliveries unacked, while
pika publishers with confirms and consumers with manual acks and a
prefetch go on. It must find every confirmed message delivered and acked,
every delivery not acked delivered again, every duplicate explained
(flagged redelivered, or a copy that a publisher sent again unconfirmed),
no unknown message, and no crash.

ARBITER_SOAK_SEED=X repeats a soak's schedule (the seed is in every
failure's message); the records stay in pytest's temporary directory.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SANITIZED
from helpers import run_soak

pytest.importorskip('pika')

SOAK = os.path.join(ROOT, 'tools', 'arbiter-amqp-soak')
ARGS = ['--kills', '6', '--gateway-kills', '3', '--both-kills', '1', '--consumer-drops', '2',
        '--seconds', '36', '--rate', '100']


@pytest.fixture(scope='module')
def soak(tmp_path_factory):
    # once a `scons test`, in build/ (test_soak.py's runs in build/asan):
    # the sanitized suite is the run's longest, and this one a minute of it.
    # The gateway's paths under the sanitizers: the AMQP tests, its fuzz
    # target, and test_soak.py's gateway kills.
    if SANITIZED:
        pytest.skip('the short AMQP soak runs in the plain build (build/); '
                    "test_soak.py's in the sanitized one")
    binaries = (('broker', 'arbiterd'), ('gateway', 'arbiter-gateway'))
    return run_soak(tmp_path_factory, SOAK, binaries, ARGS, 'amqp-soak')


def test_amqp_soak_loses_no_confirmed_message(soak):
    assert soak['broker_kills'] == 7 and soak['gateway_kills'] == 4, soak['text']
    assert soak['both_kills'] == 1, soak['text']
    assert soak['confirmed'] > 1000, soak['text']
    assert soak['lost'] == 0, soak['text']
    assert soak['not_redelivered'] == 0, soak['text']
    assert soak['crashes'] == 0, soak['text']


def test_amqp_soak_explains_every_duplicate(soak):
    assert soak['unexplained_duplicates'] == 0 and soak['unknown'] == 0, soak['text']
    assert not soak['broken_promises'], soak['text']


def load_soak():
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader('arbiter_amqp_soak', SOAK)
    spec = importlib.util.spec_from_loader('arbiter_amqp_soak', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_checker_finds_losses_and_unexplained_duplicates(tmp_path):
    """The verdict is only as good as the checker: records made by hand,
    one of each thing it must tell apart."""
    soak = load_soak()
    t = 1800000000.0
    (tmp_path / 'logs').mkdir()
    (tmp_path / 'logs' / 'broker.log').write_text('')
    chaos = [{'ev': 'config', 't': t, 'seed': 'x',
              'fanouts': {'soak.fan': ['soak.q0', 'soak.q1']}},
             {'ev': 'broker_kill', 't': t + 5, 'pid': 1},
             {'ev': 'shutdown', 't': t + 60, 'rcs': {'broker': 0, 'gateway': 0}},
             {'ev': 'done', 't': t + 60, 'seconds': 60, 'left': {'soak.q0': 0}, 'counts': {}}]
    (tmp_path / 'chaos.jsonl').write_text(''.join(json.dumps(c) + '\n' for c in chaos))
    pub, dels = [], []

    def made(i, sends=1, confirmed=True, size=20, target='soak.q0'):
        pub.append('I p0.%d %s %d %.6f' % (i, target, size, t))
        for k in range(sends):
            pub.append('S p0.%d p0.%d %d %.6f' % (i, k + 1, i, t + k))
        if confirmed:
            pub.append('C p0.%d %.6f' % (i, t + sends))

    def delivered(i, conn, tag, redelivered=False, ack='A', queue='soak.q0', body_ok=1,
                  msg=None):
        msg = msg or 'p0.%d' % i
        dels.append('D %s %s %s %d %d %d %.6f' % (conn, msg, queue, redelivered, tag, body_ok,
                                                   t + 10 + len(dels)))
        if ack:
            dels.append('%s %s %s %d %.6f' % (ack, conn, msg, tag, t + 10 + len(dels)))

    made(1)
    delivered(1, 'c0.1', 1)                         # fine
    made(2)                                         # confirmed, never delivered: lost
    made(3)
    delivered(3, 'c0.1', 2, ack=None)               # let go (connection gone) ...
    delivered(3, 'c1.1', 1, redelivered=True)       # ... and back, flagged: fine
    made(4)
    delivered(4, 'c0.1', 3)
    delivered(4, 'c1.1', 2)                         # again, not flagged, one publish: unexplained
    made(5, sends=2)
    delivered(5, 'c0.1', 4)
    delivered(5, 'c1.1', 3)                         # a copy sent again: explained
    made(6)
    delivered(6, 'c0.1', 5, ack='R')                # requeued, never back: not redelivered
    made(7, confirmed=False)                        # unconfirmed, never delivered: fine
    delivered(0, 'c0.1', 6, msg='p9.1')             # nobody made it: unknown
    made(8)
    delivered(8, 'c0.1', 7, queue='soak.q1')        # from another queue
    made(9)
    delivered(9, 'c0.1', 8, body_ok=0)              # not its body
    made(10, target='soak.fan')
    delivered(10, 'c0.1', 9)                        # in one of its two queues only: lost
    made(11, target='soak.fan')
    delivered(11, 'c0.1', 10)
    delivered(11, 'c1.1', 4, queue='soak.q1')       # in both: fine
    made(12)
    delivered(12, 'c0.1', 11, redelivered=True)     # flagged at once (a broker restart) ...
    delivered(12, 'c1.1', 5)                        # ... then new again: lost its flag
    (tmp_path / 'published.log').write_text(''.join(line + '\n' for line in pub))
    (tmp_path / 'delivered.log').write_text(''.join(line + '\n' for line in dels))
    s = soak.analyze(str(tmp_path))
    # p0.2; p0.10 in q1; p0.8 in q0 (it came from q1); p0.6 never acked
    assert [p.split()[:3] for p in s['problems']['lost']] == [
        ['p0.10', 'in', 'soak.q1'], ['p0.2', 'in', 'soak.q0'], ['p0.8', 'in', 'soak.q0'],
        ['p0.6', 'in', 'soak.q0']]
    assert s['lost'] == 4
    assert s['not_redelivered'] == 1 and 'p0.6' in s['problems']['not_redelivered'][0]
    assert s['unexplained_duplicates'] == 2
    assert [p.split()[0] for p in s['problems']['unexplained_duplicates']] == ['p0.4', 'p0.12']
    assert s['extra_deliveries_redelivered'] == 1 and s['extra_deliveries_of_copies'] == 1
    assert s['unknown'] == 1
    # p0.4's ack did not hold, with no kill to explain it: counted
    assert s['acked_then_delivered_again_without_a_kill'] == 2  # and p0.12's
    assert len(s['problems']['wrong_queue']) == 1 and len(s['problems']['wrong_body']) == 1
    assert s['exit'] == 1
    assert s['confirmed'] == 11 and s['publishes_again'] == 1 and s['fanout_messages'] == 2


def test_the_bodies_are_the_ids_own():
    soak = load_soak()
    body = soak.body_of('p3.17', 200)
    assert len(body) == 200 and body.startswith(b'p3.17 ')
    assert soak.body_of('p3.17', 200) == body != soak.body_of('p3.18', 200)
    assert soak.body_of('p3.17', 1) == b'p3.17 '  # never shorter than its id


def test_help_and_version():
    import re
    proc = subprocess.run([sys.executable, SOAK, '--version'], stdout=subprocess.PIPE, timeout=30)
    assert proc.returncode == 0
    assert re.fullmatch(rb'arbiter-amqp-soak \d+\.\d+\.\d+ \(protocol 1\)\n', proc.stdout)
    for flag in ('-h', '--help'):
        proc = subprocess.run([sys.executable, SOAK, flag], stdout=subprocess.PIPE, timeout=30)
        assert proc.returncode == 0 and proc.stdout.startswith(b'usage: arbiter-amqp-soak')
        assert b'--version' in proc.stdout and b'--analyze' in proc.stdout
