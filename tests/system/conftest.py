"""Fixtures of the system tests: real arbiterd / arbiter-worker processes on
free loopback ports, each broker with its own temporary journal.

ARBITER_BUILD names the build variant whose binaries are tested (build or
build/asan); tests/run_tests.py sets it.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import arbiter_proto  # noqa: E402
import ports  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get('ARBITER_BUILD', os.path.join(ROOT, 'build')))
SANITIZED = 'asan' in BUILD

# The daemons the tests start inherit this process's signal dispositions: a
# pytest run under nohup (or from a job that ignores SIGHUP) would start
# them ignoring SIGHUP, as nohup promises, and the tests of what SIGHUP
# does (a clean stop) would fail. They are started as from a terminal; the
# test of the nohup case ignores it in its own child.
signal.signal(signal.SIGHUP, signal.SIG_DFL)


# The files that take longest, first: pytest-xdist hands files out in the
# order they were collected (--dist loadfile), so the long ones start early
# rather than one of them ending a worker's run alone while the other
# waits (`scons test`'s 15 minutes wait on the sanitized suite). The others
# keep their order.
HEAVY_FIRST = ['test_soak.py', 'test_amqp_soak.py', 'test_bridge.py',
               'test_amqp_versus_rabbitmq.py', 'test_amqp.py', 'test_lifecycle.py',
               'test_big_requests.py', 'test_spine.py', 'test_task_log.py', 'test_workflows.py',
               'test_bad_input_catalogue.py', 'test_bench.py']


# Files the sanitized suite leaves to build/: what they check is text and
# Python (the docs, man pages and --help agree; shell completion; the dev
# tool; the Python package's own logic), the dashboard's page in a browser
# (its admin API is test_http's and test_admin's), or the benchmark
# tools' runs; and the C paths they drive are driven there by the rest of
# the suite; or a time measured (test_big_requests: a request's silence
# toward the workers; its docstring says what of it runs sanitized). 2026-12-05:
# about 110 s of the sanitized suite's 760, on the budget's critical path,
# and the two headless Chromiums' CPU.
PLAIN_ONLY = ['test_docs.py', 'test_man.py', 'test_binaries.py', 'test_completion.py',
              'test_dev_tool.py', 'test_python_client.py', 'test_python_aio.py',
              'test_python_codec.py', 'test_python_flows.py', 'test_python_functions.py',
              'test_python_types.py', 'test_python_worker.py', 'test_dashboard.py',
              'test_bench.py', 'test_big_requests.py', 'test_python_runner.py',
              'test_python_carrier.py']


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))
    if SANITIZED:
        plain = pytest.mark.skip(reason='checked in the plain build (build/) only: '
                                 'conftest.PLAIN_ONLY says why')
        for item in items:
            if os.path.basename(str(item.fspath)) in PLAIN_ONLY:
                item.add_marker(plain)


def binary(folder, name):
    path = os.path.join(BUILD, folder, name)
    if not os.access(path, os.X_OK):
        pytest.skip('%s is not built' % path)
    return path


_PORTS = ports.PortPool(ports.slot_of(BUILD, os.environ.get('PYTEST_XDIST_WORKER')))


def free_port():
    """A free loopback port below the ephemeral range, never one this test
    process was given before (tests/system/ports.py says why)."""
    return _PORTS.take()


def wait_until(predicate, timeout=10.0, interval=0.02, what='condition'):
    """Polls predicate until it returns a true value, which is returned."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError('%s not met within %.1f s' % (what, timeout))
        time.sleep(interval)


class Process:
    """A started binary whose output goes to a log file; stopped by PID."""

    def __init__(self, args, log_path, env=None, cwd=None):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, 'ab')
        # where this process's lines start: a restart appends to its
        # predecessor's file (own_output)
        self.log_from = os.path.getsize(log_path)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env or os.environ.copy(), start_new_session=True,
                                     cwd=cwd)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=15):
        """SIGTERM, and the exit status (SIGKILL if it does not stop)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                raise AssertionError('%s did not stop on SIGTERM' % self.args[0])
        self.log.close()
        return self.proc.returncode

    def output(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def own_output(self):
        """What this process wrote, without its predecessors' lines in
        the same file (a restart's readiness is read from its own)."""
        with open(self.log_path, 'rb') as f:
            f.seek(self.log_from)
            return f.read().decode('utf-8', 'replace')


class Broker(Process):
    def __init__(self, tmp_path, port=None, db=None, extra=()):
        self.port = port or free_port()
        self.endpoint = 'tcp://127.0.0.1:%d' % self.port
        self.db = db or str(tmp_path / 'arbiter.db')
        self.tmp_path = tmp_path
        self.extra = list(extra)
        # debug: tests read lines below info (the default) in the log
        args = [binary('broker', 'arbiterd'), '--bind', self.endpoint, '--db', self.db,
                '--log-level', 'debug'] + self.extra
        super().__init__(args, str(tmp_path / ('broker-%d.log' % self.port)))
        self.wait_ready()

    def wait_ready(self, timeout=20):
        peer = arbiter_proto.Peer(self.endpoint)
        try:
            deadline = time.time() + timeout
            while True:
                assert self.alive(), 'arbiterd exited:\n' + self.output()
                try:
                    kind, _, body, _ = peer.request('PING', {}, timeout=0.5)
                    assert kind == 'PONG'
                    self.epoch = body['epoch']
                    return
                except TimeoutError:
                    if time.time() > deadline:
                        raise
        finally:
            peer.close()

    def restart(self):
        """A new broker process on the same port and journal."""
        return Broker(self.tmp_path, port=self.port, db=self.db, extra=self.extra)


SANITIZER_MARKS = ('runtime error:', 'AddressSanitizer', 'LeakSanitizer')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the last lines each process it
    started wrote, and a browser test what its page said and shows (a
    flake under load is then read, not guessed at)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != 'call' or not report.failed:
        return
    driver = item.funcargs.get('browser') if hasattr(item, 'funcargs') else None
    if driver is not None:  # test_dashboard's page: what its console said, what it shows
        try:
            said = ['%s %s' % (e['level'], e['message']) for e in driver.get_log('browser')]
            shows = driver.execute_script(
                'const live = document.getElementById("live");'
                'return [location.href, document.visibilityState,'
                ' live ? live.dataset.conn + " " + live.textContent : "no #live"].join(" | ")')
            report.sections.append(('the page', '\n'.join(said[-40:] + [shows])))
        except Exception as e:  # a browser that went away says why here
            report.sections.append(('the page', 'not read: %r' % e))
    for proc in getattr(item, 'arbiter_processes', None) or ():
        try:
            lines = proc.own_output().splitlines()[-40:]
        except OSError as e:
            lines = ['(its log could not be read: %s)' % e]
        state = 'running' if proc.alive() else 'exited %s' % proc.proc.returncode
        report.sections.append(('%s, pid %d, %s' % (os.path.basename(proc.args[0]), proc.pid, state),
                                '\n'.join(lines)))


@pytest.fixture
def processes(request):
    """Every process a test starts, stopped at the end (by PID), the last
    started first: workers and gateways while their broker still answers
    (a worker whose broker went first waits out its liveness, 5 s, for the
    ends it reported to be acknowledged). A process that reports a
    sanitizer error, or that was still running and does not stop cleanly
    on SIGTERM, fails the test. One that dies of the SIGTERM before it
    wrote a line was stopped in its start-up, before czmq set its handler
    (a worker the test no longer needed, started a few milliseconds
    before): that is not a failure."""
    started = []
    request.node.arbiter_processes = started
    yield started
    problems = []
    for proc in reversed(started):
        if proc.alive():
            try:
                rc = proc.stop(timeout=20)
                if rc == -signal.SIGTERM and not proc.own_output().strip():
                    rc = 0
                if rc != 0:
                    problems.append('%s exited with %s on SIGTERM' % (proc.args[0], rc))
            except AssertionError as e:
                problems.append(str(e))
        out = proc.output()
        if any(mark in out for mark in SANITIZER_MARKS):
            problems.append('%s reported a sanitizer error:\n%s' % (proc.args[0], out[-4000:]))
    assert not problems, '\n'.join(problems)


@pytest.fixture
def broker(tmp_path, processes):
    b = Broker(tmp_path)
    processes.append(b)
    return b


@pytest.fixture
def peer_factory():
    peers = []

    def make(endpoint):
        p = arbiter_proto.Peer(endpoint)
        peers.append(p)
        return p
    yield make
    for p in peers:
        p.close()


class Gateway(Process):
    """arbiter-gateway on free loopback ports (Kestrel, HTTP and AMQP),
    connected to a broker; extra arguments (a --config FILE, --http-token,
    --amqp off, ...) go on its command line, after the ports, so they may
    override them."""

    def __init__(self, tmp_path, broker, extra=(), ports=None, wait=False):
        self.tmp_path = tmp_path
        self.broker = broker
        self.extra = list(extra)
        self.kestrel_port, self.http_port, self.amqp_port = ports or (
            free_port(), free_port(), free_port())
        self.url = 'http://127.0.0.1:%d' % self.http_port
        args = [binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                '--broker', broker.endpoint, '--kestrel', '127.0.0.1:%d' % self.kestrel_port,
                '--http', '127.0.0.1:%d' % self.http_port,
                '--amqp', '127.0.0.1:%d' % self.amqp_port, '--log-level', 'debug'] + self.extra
        super().__init__(args, str(tmp_path / ('gateway-%d.log' % self.kestrel_port)))
        if wait:
            wait_until(self.ready, timeout=20, what='gateway up')

    def serves(self, protocol):
        """Whether the gateway was started with that server on (not "off")."""
        values = [self.extra[i + 1] for i in range(len(self.extra) - 1)
                  if self.extra[i] == '--' + protocol]
        return not values or values[-1] != 'off'

    def ready(self):
        """Up: the broker session, the HTTP listener, unless they are off
        Kestrel with its fan-out queues loaded and the AMQP server with its
        records loaded (or standing by: another gateway serves AMQP for the
        broker)."""
        assert self.alive(), 'arbiter-gateway exited:\n' + self.output()
        out = self.own_output()  # not a killed predecessor's lines (restart)
        return ('broker session up' in out and 'http: listening' in out
                and ('kestrel: fan-out children loaded' in out or not self.serves('kestrel'))
                and ('amqp: loaded' in out or 'amqp: another arbiter-gateway serves' in out
                     or not self.serves('amqp')))

    def restart(self, wait=False):
        """A new gateway process with the same arguments and ports."""
        return Gateway(self.tmp_path, self.broker, self.extra,
                       (self.kestrel_port, self.http_port, self.amqp_port), wait)


@pytest.fixture
def gateway_factory(tmp_path, processes):
    """gateway_factory(broker, *extra) starts a gateway and waits until it
    serves; stopped by PID at the end."""

    def start(broker, *extra):
        gateway = Gateway(tmp_path, broker, extra, wait=True)
        processes.append(gateway)
        return gateway
    return start


@pytest.fixture
def gateway(tmp_path, processes, broker):
    """Starts arbiter-gateway on the test's broker without waiting for it:
    gateway(*extra_args); gateway(..., broker=other) for another broker."""
    def start(*extra, **kwargs):
        g = Gateway(tmp_path, kwargs.get('broker', broker), extra)
        processes.append(g)
        return g
    return start
