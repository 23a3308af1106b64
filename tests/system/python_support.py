"""What the tests of the Python package (python/arbiter) share: the
package on sys.path, a broker with short heartbeats, and Python workers
run as their own processes (python_worker_app.py), so that signals,
process slots and kill -9 are real."""

import os
import sys

import pytest

from conftest import ROOT, Broker, Process

PYTHON = os.path.join(ROOT, 'python')
sys.path.insert(0, PYTHON)

import arbiter  # noqa: E402

FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1000', '--recovery-ms', '2000']
APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'python_worker_app.py')


@pytest.fixture
def fast_broker(tmp_path, processes):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    return b


@pytest.fixture
def client(fast_broker):
    c = arbiter.Client(fast_broker.endpoint, timeout=5.0)
    yield c
    c.close()


def start_py_worker(broker, processes, tmp_path, *args, env=None):
    """python_worker_app.py against broker with the given arguments (see
    its top); stopped by PID at the end, which must exit 0 on SIGTERM."""
    environ = dict(os.environ, PYTHONPATH=PYTHON, RUNS=str(tmp_path / 'runs'),
                   **(env or {}))
    (tmp_path / 'runs').mkdir(exist_ok=True)
    log = str(tmp_path / ('pyworker-%d.log' % len(processes)))
    worker = Process([sys.executable, APP, broker.endpoint] + list(args), log, env=environ)
    processes.append(worker)
    return worker


def runs(tmp_path, task_id):
    """How often a task started (the app's handlers note each start)."""
    path = tmp_path / 'runs' / str(task_id)
    return len(path.read_text().splitlines()) if path.exists() else 0
