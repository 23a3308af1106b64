"""The examples that ship with the Node client amqplib (the RabbitMQ
tutorials ported to it, direct reply-to, a headers exchange, confirms),
run unmodified against the gateway, as a RabbitMQ user would run them.

They all connect to amqp://localhost (port 5672); a preloaded module
(`node -r`) points that port at the test's gateway, so that the gateway
under test listens on a free port, not on a fixed one. Listening
examples run until they are stopped; they are stopped by their PID.
"""

import os
import queue
import subprocess
import threading
import time

import pytest

from helpers import AMQP_PORT_REDIRECT, node_or_skip, npm_path

NPM = npm_path('node_modules')
EXAMPLES = os.path.join(NPM, 'amqplib', 'examples')
TUTORIALS = os.path.join(EXAMPLES, 'tutorials')


@pytest.fixture
def gateway(gateway_factory, broker):
    return gateway_factory(broker)


@pytest.fixture
def node(gateway, tmp_path):
    """Runs an example: node(path, *args) -> Example (started)."""
    exe = node_or_skip(*[os.path.join(NPM, m) for m in ('amqplib', 'uuid')])
    redirect = tmp_path / 'redirect.js'
    redirect.write_text(AMQP_PORT_REDIRECT)
    env = dict(os.environ, NODE_PATH=NPM, ARB_TEST_AMQP_PORT=str(gateway.amqp_port))
    started = []

    def run(path, *args):
        example = Example([exe, '-r', str(redirect), path] + list(args), env)
        started.append(example)
        return example

    yield run
    for example in started:
        example.stop()


class Example:
    """A running example, its output lines read as they come."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, cwd=os.path.dirname(argv[3]), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip('\n'))

    def expect(self, text, timeout=20):
        """Waits for a line holding text; returns it."""
        deadline = time.time() + timeout
        for line in self.seen:
            if text in line:
                return line
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError('no %r from %s; output: %s' % (text, self.proc.args[3], self.seen))

    def wait(self, timeout=30):
        """Waits for the example to end by itself; returns its exit code."""
        rc = self.proc.wait(timeout=timeout)
        time.sleep(0.1)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def tutorial(name):
    return os.path.join(TUTORIALS, name)


def test_hello_world(node):
    receive = node(tutorial('receive.js'))
    receive.expect('Waiting for messages')
    send = node(tutorial('send.js'))
    assert send.wait() == 0, send.seen
    receive.expect("Received 'Hello World!'")


def test_work_queues(node):
    worker = node(tutorial('worker.js'))
    worker.expect('Waiting for messages')
    for text in ('first.', 'second..'):
        task = node(tutorial('new_task.js'), text)
        assert task.wait() == 0, task.seen
    worker.expect("Received 'first.'")
    worker.expect("Received 'second..'")
    worker.expect('Done')


def test_publish_subscribe(node):
    logs = [node(tutorial('receive_logs.js')) for _ in range(2)]
    for each in logs:
        each.expect('Waiting for logs')
    emit = node(tutorial('emit_log.js'), 'info: to every subscriber')
    assert emit.wait() == 0, emit.seen
    for each in logs:
        each.expect('info: to every subscriber')


def test_routing(node):
    errors = node(tutorial('receive_logs_direct.js'), 'error')
    errors.expect('Waiting for logs')
    for severity, text in (('info', 'only info'), ('error', 'an error')):
        emit = node(tutorial('emit_log_direct.js'), severity, text)
        assert emit.wait() == 0, emit.seen
    errors.expect("error:'an error'")
    assert not any('only info' in line for line in errors.seen)


def test_topics(node):
    kern = node(tutorial('receive_logs_topic.js'), 'kern.*', '*.critical')
    kern.expect('Waiting for logs')
    for key in ('kern.critical', 'user.info', 'app.critical'):
        emit = node(tutorial('emit_log_topic.js'), key, 'from ' + key)
        assert emit.wait() == 0, emit.seen
    kern.expect("kern.critical:'from kern.critical'")
    kern.expect("app.critical:'from app.critical'")
    assert not any('user.info' in line for line in kern.seen)


def test_rpc(node):
    server = node(tutorial('rpc_server.js'))
    server.expect('Awaiting RPC requests')
    client = node(tutorial('rpc_client.js'), '12')
    assert client.wait() == 0, client.seen
    assert any('Got 144' in line for line in client.seen), client.seen
    server.expect('fib(12)')


def test_direct_reply_to(node):
    """amq.rabbitmq.reply-to: the client consumes the pseudo-queue and the
    server answers to the name its request's reply_to was given."""
    server = node(os.path.join(EXAMPLES, 'direct_reply_to_server.js'))
    server.expect('To exit press CTRL+C')
    client = node(os.path.join(EXAMPLES, 'direct_reply_to_client.js'))
    assert client.wait() == 0, client.seen
    assert any('pong' in line for line in client.seen), client.seen
    server.expect('ping')


def test_headers_exchange(node):
    example = node(os.path.join(EXAMPLES, 'headers.js'))
    example.expect('hello')
    time.sleep(0.5)
    lines = [line for line in example.seen if line in ('hello', 'lost')]
    while not example.lines.empty():
        lines.append(example.lines.get())
    assert lines.count('hello') == 2 and 'lost' not in lines, example.seen


def test_wait_for_confirms(node):
    example = node(os.path.join(EXAMPLES, 'waitForConfirms.js'))
    assert example.wait() == 0
    assert 'All messages done' in example.seen, example.seen
