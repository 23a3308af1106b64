"""A short kill -9 soak (tools/arbiter-soak): 36 s of chaos, the
broker SIGKILLed 8 times, workers SIGKILLed and SIGSTOPped, the gateway
SIGKILLed once, while producers submit plain, delayed and DAG tasks with
keys. One soak, two verdicts:

- nothing acknowledged is lost, every task succeeded (or died of the chaos,
  as quarantine explains), no DAG child ran early, no delayed task started
  early, nothing crashed: this must always pass;
- no task ran twice but for a worker that died or was declared dead while
  running it (workers keep their results until the broker acknowledges
  them after its commit, and register again after a long silence before
  starting what they received meanwhile).

ARBITER_SOAK_SEED=X repeats a soak's schedule (the seed is in every
failure's message); the records stay in pytest's temporary directory.
"""

import io
import json
import os

import pytest

from conftest import ROOT, SANITIZED
from helpers import run_soak

SOAK = os.path.join(ROOT, 'tools', 'arbiter-soak')
ARGS = ['--kills', '8', '--seconds', '36', '--worker-kills', '3', '--stops', '4',
        '--gateway-kills', '1', '--rate', '6']


@pytest.fixture(scope='module')
def soak(tmp_path_factory):
    # one soak per `scons test`, the sanitized one: a memory error under
    # chaos is a crash it reports, and the time (a minute) is spent once
    if not SANITIZED:
        pytest.skip('the short soak runs in the sanitized build (build/asan)')
    binaries = (('broker', 'arbiterd'), ('worker', 'arbiter-worker'), ('client', 'arbiter'),
                ('gateway', 'arbiter-gateway'))
    return run_soak(tmp_path_factory, SOAK, binaries, ARGS, 'soak')


def test_soak_keeps_every_promise_but_once(soak):
    assert not soak['broken_promises'], soak['text']
    assert soak['broker_kills'] == 8, soak['text']
    # enough acknowledged to mean something: a loaded sanitized run of
    # 2026-12-05 got 84 (66 submits) through its 8 kills
    assert soak['lost'] == 0 and soak['tasks_acknowledged'] > 50, soak['text']
    assert soak['succeeded'] + soak['dead_explained'] == soak['tasks_acknowledged'], soak['text']


def test_soak_runs_each_task_once_unless_its_worker_died(soak):
    assert soak['unexcused_duplicates'] == 0, soak['text']


def load_soak():
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader('arbiter_soak', SOAK)
    spec = importlib.util.spec_from_loader('arbiter_soak', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def write_records(path, chaos, submits, runs, finals):
    (path / 'logs').mkdir(parents=True)
    (path / 'logs' / 'broker.log').write_text('')
    for name, records in (('chaos.jsonl', chaos), ('submits.jsonl', submits),
                          ('final.jsonl', finals)):
        (path / name).write_text(''.join(json.dumps(r) + '\n' for r in records))
    (path / 'runs.log').write_text(''.join(line + '\n' for line in runs))


def test_the_checker_tells_losses_and_duplicates_apart(tmp_path):
    """The soak's verdict is only as good as its checker: records made up
    by hand, with one of each thing it must tell apart."""
    soak = load_soak()
    t = 1800000000.0
    chaos = [{'ev': 'config', 't': t, 'heartbeat_ms': 1000, 'liveness_ms': 5000, 'max_lost': 3},
             {'ev': 'worker_kill', 't': t + 10.5, 'worker': 'w0.1', 'pid': 1},
             {'ev': 'broker_kill', 't': t + 20.5, 'pid': 2},
             {'ev': 'stop', 't': t + 30, 'worker': 'w1.1', 'pid': 3},
             {'ev': 'cont', 't': t + 38, 'worker': 'w1.1', 'stopped_s': 8.0},
             # w3.1 stopped as its task ends, killed just after it wakes
             {'ev': 'stop', 't': t + 42, 'worker': 'w3.1', 'pid': 100},
             {'ev': 'cont', 't': t + 43.8, 'worker': 'w3.1', 'stopped_s': 1.8},
             {'ev': 'worker_kill', 't': t + 44, 'worker': 'w3.1', 'pid': 100},
             {'ev': 'done', 't': t + 60, 'seconds': 60}]
    plain = [('k1', 1), ('k2', 2), ('k3', 3), ('k4', 4), ('k5', 5), ('k6', 6), ('k9', 9),
             ('k10', 10)]
    submits = []
    for key, task_id in plain:
        task = {'key': key, 'queue': 'default', 'name': 'light', 'payload': '0'}
        if key == 'k6':
            task['delay'] = 5.0
        submits.append({'ev': 'intent', 'key': key, 'kind': 'plain', 't': t, 'tasks': [task]})
        submits.append({'ev': 'ack', 'key': key, 't': t + 0.1, 'ids': {key: task_id}})
    dag = [{'key': 'd.n0', 'queue': 'default', 'name': 'light', 'payload': '0', 'after': []},
           {'key': 'd.n1', 'queue': 'default', 'name': 'light', 'payload': '0',
            'after': ['d.n0']}]
    submits.append({'ev': 'intent', 'key': 'd', 'kind': 'dag', 't': t, 'tasks': dag})
    submits.append({'ev': 'ack', 'key': 'd', 't': t + 0.1, 'ids': {'d.n0': 7, 'd.n1': 8}})

    def run(task_id, worker, pid, start, end=None):
        lines = ['S %d 1 %s %d %.6f' % (task_id, worker, pid, t + start)]
        if end is not None:
            lines.append('E %d 1 %s %d %.6f %.6f' % (task_id, worker, pid, t + start, t + end))
        return lines

    runs = (run(2, 'w0.1', 20, 10, None) + run(2, 'w2.1', 21, 16, 16.1)  # worker killed
            + run(3, 'w2.1', 30, 20.0, 20.2) + run(3, 'w2.1', 31, 25, 25.1)  # result lost
            + run(4, 'w2.1', 40, 31, 31.1) + run(4, 'w1.1', 41, 38.2, 38.3)  # stale dispatch
            + run(5, 'w1.1', 50, 29.5, 33) + run(5, 'w2.1', 51, 36, 36.1)  # stopped while running
            + run(6, 'w2.1', 60, 3, 3.1)  # delayed, early
            + run(7, 'w2.1', 70, 1, 2) + run(8, 'w2.1', 80, 1.5, 2.5)  # DAG child early
            # its worker stopped while running it, and the result it sent on
            # waking was the one kept: the other worker's run is the extra
            + run(9, 'w1.1', 90, 29.8, 31) + run(9, 'w2.1', 91, 35, 39)
            # ended while its worker was stopped, the worker killed on waking
            + run(10, 'w3.1', 100, 40, 42.5) + run(10, 'w0.2', 101, 47, 47.1))

    def final(task_id, pid, start, state='succeeded', worker='w2.1'):
        return {'id': task_id, 'state': state, 'finished_ms': (t + 50) * 1000,
                'result': '%s %d %.6f\n' % (worker, pid, t + start)}
    finals = [final(2, 21, 16), final(3, 31, 25), final(4, 40, 31), final(5, 51, 36),
              final(6, 60, 3), final(7, 70, 1), final(8, 80, 1.5),
              final(9, 90, 29.8, worker='w1.1'),
              final(10, 101, 47, worker='w0.2')]  # task 1: lost
    write_records(tmp_path, chaos, submits, runs, finals)
    summary = soak.analyze(str(tmp_path))
    assert summary['lost'] == 1
    assert summary['problems']['lost'][0].startswith('task 1 (key k1)')
    assert summary['duplicates_excused'] == {
        'its worker was killed while running it': 1,
        'its worker was stopped past the liveness window while running it': 2,
        'its worker was stopped when it ended and killed before reporting it': 1}
    assert summary['duplicates_unexcused'] == {
        'it ended just before a broker kill, and its result was not committed': 1,
        'a worker back from a stop past the liveness window started a DISPATCH that had '
        'waited in its socket': 1}
    assert summary['delayed_started_early'] == 1
    assert summary['dag_order_violations'] == 1
    assert summary['exit'] == 1


def test_the_checker_tells_unfinished_tasks_from_lost_ones(tmp_path):
    """A task the broker still holds open when the drain runs out is not
    lost, but not ended either (a failure all the same: too much work for
    the workers, or a stall); a DAG child that ran after the statuses were
    read is not judged against its parent's state in them."""
    soak = load_soak()
    t = 1800000000.0
    chaos = [{'ev': 'config', 't': t, 'heartbeat_ms': 1000, 'liveness_ms': 5000, 'max_lost': 3},
             {'ev': 'final', 't': t + 50, 'open': 2},
             {'ev': 'done', 't': t + 60, 'seconds': 60}]
    dag = [{'key': 'd.n0', 'queue': 'heavy', 'name': 'heavy', 'payload': '3', 'after': []},
           {'key': 'd.n1', 'queue': 'default', 'name': 'light', 'payload': '0',
            'after': ['d.n0']}]
    submits = [{'ev': 'intent', 'key': 'k1', 'kind': 'plain', 't': t,
                'tasks': [{'key': 'k1', 'queue': 'default', 'name': 'light', 'payload': '0'}]},
               {'ev': 'ack', 'key': 'k1', 't': t + 0.1, 'ids': {'k1': 1}},
               {'ev': 'intent', 'key': 'd', 'kind': 'dag', 't': t, 'tasks': dag},
               {'ev': 'ack', 'key': 'd', 't': t + 0.1, 'ids': {'d.n0': 2, 'd.n1': 3}}]
    runs = ['S 1 1 w0.1 10 %.6f' % (t + 1), 'E 1 1 w0.1 10 %.6f %.6f' % (t + 1, t + 1.1),
            'S 2 1 w1.1 20 %.6f' % (t + 48), 'E 2 1 w1.1 20 %.6f %.6f' % (t + 48, t + 51),
            'S 3 1 w0.1 30 %.6f' % (t + 51.1)]
    finals = [{'id': 1, 'state': 'succeeded', 'finished_ms': (t + 1.1) * 1000,
               'result': 'w0.1 10 %.6f\n' % (t + 1)},
              {'id': 2, 'state': 'running'}, {'id': 3, 'state': 'waiting'}]
    write_records(tmp_path / 'a', chaos, submits, runs, finals)
    summary = soak.analyze(str(tmp_path / 'a'))
    assert summary['lost'] == 0
    assert summary['unfinished'] == 2
    assert summary['unfinished_states'] == {'running': 1, 'waiting': 1}
    assert summary['dag_order_violations'] == 0
    assert summary['exit'] == 1
    # a child that started after the read, while its parent still ran, is
    # early all the same; one whose parent had ended dead is not excused
    early = runs[:3] + ['E 2 1 w1.1 20 %.6f %.6f' % (t + 48, t + 55), runs[4]]
    write_records(tmp_path / 'b', chaos, submits, early, finals)
    assert soak.analyze(str(tmp_path / 'b'))['dag_order_violations'] == 1
    dead = [finals[0], {'id': 2, 'state': 'dead'}, {'id': 3, 'state': 'dead'}]
    write_records(tmp_path / 'c', chaos, submits, runs, dead)
    assert soak.analyze(str(tmp_path / 'c'))['dag_order_violations'] == 1
    out = io.StringIO()
    soak.print_summary(summary, out)
    assert 'not ended when the drain ran out (still in the journal, so not lost): 2' in \
        out.getvalue()
    assert 'the workers were still running tasks then' in out.getvalue()
    assert 'FAIL: tasks not ended in the drain (none lost)' in out.getvalue()
