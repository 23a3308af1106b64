"""A short kill -9 soak (tools/arbiter-soak): about a minute of chaos, the
broker SIGKILLed 8 times, workers SIGKILLed and SIGSTOPped, the gateway
SIGKILLed once, while producers submit plain, delayed and DAG tasks with
keys. One soak, two verdicts:

- nothing acknowledged is lost, every task succeeded (or died of the chaos,
  as quarantine explains), no DAG child ran early, no delayed task started
  early, nothing crashed: this must always pass;
- no task ran twice but for a worker that died or was declared dead while
  running it. Expected to fail now and then until the worker keeps its
  results until the broker acknowledges them and registers again after a
  long silence before starting what it received meanwhile (issue 10):
  xfail, not strict, so that it passes when it happens to pass and a loss
  still fails the run.

ARBITER_SOAK_SEED=X repeats a soak's schedule (the seed is in every
failure's message); the records stay in pytest's temporary directory.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD, ROOT, binary

SOAK = os.path.join(ROOT, 'tools', 'arbiter-soak')
ARGS = ['--kills', '8', '--seconds', '45', '--worker-kills', '3', '--stops', '4',
        '--gateway-kills', '1', '--rate', '6']


@pytest.fixture(scope='module')
def soak(tmp_path_factory):
    for folder, name in (('broker', 'arbiterd'), ('worker', 'arbiter-worker'),
                         ('client', 'arbiter'), ('gateway', 'arbiter-gateway')):
        binary(folder, name)
    work = tmp_path_factory.mktemp('soak')
    seed = os.environ.get('ARBITER_SOAK_SEED') or str(int(time.time() * 1000) % 1000000007)
    summary_path = work / 'summary.json'
    cmd = [sys.executable, SOAK, '--build', BUILD, '--seed', seed, '--dir', str(work / 'records'),
           '--json', str(summary_path), '--quiet'] + ARGS
    with open(work / 'soak.out', 'wb') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(600)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # it stops what it started
            proc.wait(120)
    text = (work / 'soak.out').read_text(errors='replace')
    assert summary_path.exists(), 'the soak did not finish (seed %s):\n%s' % (seed, text[-4000:])
    summary = json.loads(summary_path.read_text())
    summary['text'] = 'seed %s, exit %s:\n%s' % (seed, proc.returncode, text[-6000:])
    return summary


def test_soak_keeps_every_promise_but_once(soak):
    assert not soak['broken_promises'], soak['text']
    assert soak['broker_kills'] == 8, soak['text']
    assert soak['lost'] == 0 and soak['tasks_acknowledged'] > 100, soak['text']
    assert soak['succeeded'] + soak['dead_explained'] == soak['tasks_acknowledged'], soak['text']


@pytest.mark.xfail(strict=False, reason='issue 10: the worker does not yet keep results until '
                   'the broker has committed them, nor register again before starting '
                   'DISPATCHes that waited through a long stop')
def test_soak_runs_each_task_once_unless_its_worker_died(soak):
    assert soak['unexcused_duplicates'] == 0, soak['text']
