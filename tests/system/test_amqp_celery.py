"""Celery (Debian's python3-celery, with kombu and py-amqp) against the
gateway, as a Celery user points it at RabbitMQ: a real `celery worker`
process runs tasks sent by a client, results come back over the rpc://
backend (a reply queue per client), and the remote-control commands
(`celery inspect ping`, `celery status`) go through the pidbox fanout
exchange to queues named `NODE@HOST.celery.pidbox`."""

import os
import signal
import subprocess
import sys
import time

import pytest

celery = pytest.importorskip('celery')

APP = '''
from celery import Celery

app = Celery('arbapp', broker='amqp://guest:guest@127.0.0.1:%(port)d//', backend='rpc://')
app.conf.broker_connection_retry_on_startup = True


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=3)
def flaky(self, n):
    """Fails n times (counted in the retries Celery itself keeps), then succeeds."""
    if self.request.retries < n:
        raise self.retry(countdown=0.2)
    return 'after %%d retries' %% self.request.retries
'''


@pytest.fixture
def gateway(gateway_factory, broker):
    return gateway_factory(broker)


@pytest.fixture
def app_dir(gateway, tmp_path):
    (tmp_path / 'arbapp.py').write_text(APP % {'port': gateway.amqp_port})
    return tmp_path


def celery_cmd(app_dir, *args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(app_dir))
    return subprocess.run([sys.executable, '-m', 'celery', '-A', 'arbapp'] + list(args),
                          cwd=app_dir, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def worker(app_dir):
    log = open(app_dir / 'worker.log', 'w')
    env = dict(os.environ, PYTHONPATH=str(app_dir))
    proc = subprocess.Popen([sys.executable, '-m', 'celery', '-A', 'arbapp', 'worker', '-n',
                             'w1@arbtest', '--pool=solo', '--loglevel=INFO', '--without-heartbeat'],
                            cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while 'ready.' not in (app_dir / 'worker.log').read_text():
        assert proc.poll() is None, (app_dir / 'worker.log').read_text()
        assert time.time() < deadline, (app_dir / 'worker.log').read_text()
        time.sleep(0.1)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def client(app_dir):
    sys.path.insert(0, str(app_dir))
    try:
        import arbapp
        return arbapp
    finally:
        sys.path.remove(str(app_dir))


def test_tasks_and_results(app_dir, worker):
    arbapp = client(app_dir)
    try:
        assert arbapp.add.delay(2, 3).get(timeout=30) == 5
        results = [arbapp.add.delay(i, i) for i in range(50)]
        assert [r.get(timeout=30) for r in results] == [2 * i for i in range(50)]
        assert arbapp.flaky.delay(2).get(timeout=30) == 'after 2 retries'
    finally:
        arbapp.app.close()
        sys.modules.pop('arbapp', None)


def test_remote_control_reaches_the_worker(app_dir, worker):
    """inspect ping and status: a broadcast to the pidbox queue, whose name
    holds '@', and the replies on a reply queue of the caller."""
    r = celery_cmd(app_dir, 'inspect', 'ping', '-d', 'w1@arbtest', '--timeout', '5')
    assert r.returncode == 0 and 'pong' in r.stdout, r.stdout + r.stderr
    r = celery_cmd(app_dir, 'status', '--timeout', '5')
    assert r.returncode == 0 and 'w1@arbtest: OK' in r.stdout, r.stdout + r.stderr
