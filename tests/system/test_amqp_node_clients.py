"""Two Node AMQP clients besides amqplib against the gateway, as their
users drive them: @cloudamqp/amqp-client 4 (a TypeScript client of its
own, with AMQPSession's reconnects) and amqp-connection-manager 5 (a
reconnecting wrapper of amqplib). Neither npm package ships a test suite,
so the scripts in tests/system/node_clients/ play their users; what they
observe is compared here with what the same scripts observed against
Debian 12's RabbitMQ 3.10 (written out below, from runs of 2026-12-07),
and test_amqp_versus_rabbitmq.py compares a longer session of
@cloudamqp/amqp-client live.

The reconnect tests SIGKILL the gateway while a consumer holds unacked
messages and restart it on the same ports: no confirmed message is lost,
the unacked ones come again with redelivered set, the publishes made while
it was away are sent once it is back (amqp-connection-manager keeps them;
AMQPSession fails them, as against RabbitMQ). The packages come from the
npm registry into build/npm (tools/arbiter-dev test); the tests are skipped
without them or without node.
"""

import json
import os
import subprocess
import threading
import uuid

from conftest import Broker, Gateway
from helpers import node_or_skip, npm_path

NPM = npm_path('node_modules')
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'node_clients')
CLOUDAMQP = os.path.join(NPM, '@cloudamqp', 'amqp-client')
ACM = os.path.join(NPM, 'amqp-connection-manager')


def run_script(script, module, port, on_kill=None, timeout=90):
    """Runs a script of node_clients/ against 127.0.0.1:port; at each line
    "KILL" it prints, on_kill() runs and "RESTARTED" is written to its
    input. Returns its last line, parsed (a failed script fails the test)."""
    node = node_or_skip(module)
    proc = subprocess.Popen([node, os.path.join(SCRIPTS, script), module,
                             'amqp://guest:guest@127.0.0.1:%d' % port, uuid.uuid4().hex[:10]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, proc.kill)  # a hang ends here
    watchdog.start()
    try:
        last = None
        for line in proc.stdout:
            line = line.strip()
            if line == 'KILL' and on_kill:
                on_kill()
                proc.stdin.write('RESTARTED\n')
                proc.stdin.flush()
            elif line:
                last = line
        err = proc.stderr.read()
        proc.wait(10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, '%s exited %s:\n%s\n%s' % (script, proc.returncode, last,
                                                          err[-3000:])
    return json.loads(last)


def test_cloudamqp_consumer_cancelled_by_the_server(gateway_factory, broker):
    """A consumer whose queue another channel deletes is told so with
    basic.cancel, and its connection goes on. RabbitMQ sends that cancel
    with nowait set; @cloudamqp/amqp-client answers one without it with a
    Cancel-Ok, a method only a server sends, which RabbitMQ and the gateway
    refuse with 503. The gateway sent nowait unset: the client's own
    answer closed its connection (COMMAND_INVALID - unimplemented method -
    basic.cancel-ok), every channel with it."""
    gateway = gateway_factory(broker)
    seen = run_script('server_cancel.js', CLOUDAMQP, gateway.amqp_port)
    assert seen == {  # RabbitMQ 3.10's
        'deleted': {'messageCount': 0},
        'consumer': 'rejected: Consumer cancelled by the server',
        'closed': {'connection': False, 'channel': False, 'deleting': False},
        'errors': {'connection': None, 'channel': None},
        'declareAfter': 0}


def test_cloudamqp_idle_connections_with_heartbeats_stay(gateway_factory, broker):
    """Twenty connections with heartbeat 2 left idle for 4.5 s after their
    open all stay, as on RabbitMQ. This client answers the server's
    heartbeats and sends none of its own, and closes a connection after
    one interval without a byte: the gateway's first heartbeat came a whole
    interval after its open-ok, and about half of them closed ("Heartbeat
    timeout"), where RabbitMQ closed none."""
    gateway = gateway_factory(broker)
    seen = run_script('idle_heartbeats.js', CLOUDAMQP, gateway.amqp_port)
    assert seen == {'closed': 0, 'of': 20, 'heartbeat': 2}  # RabbitMQ 3.10's


def killed_and_restarted(tmp_path, processes):
    """A gateway on a broker of its own, and the on_kill of run_script:
    SIGKILL it and start another on the same ports (stopped at the end).
    The deliveries the killed gateway held go back when the broker finds
    its session gone: when a dispatch to it fails, or at the end of the
    liveness window (docs/gateway.md, "Kestrel"), 1.5 s here rather than
    5, for the test's time."""
    broker = Broker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '1500'])
    processes.append(broker)
    first = Gateway(tmp_path, broker, wait=True)
    processes.append(first)

    def on_kill():
        first.kill9()
        processes.append(first.restart(wait=True))
    return first, on_kill


# What both scripts saw of their messages across the kill, on RabbitMQ
# 3.10 (its node SIGKILLed and started again on the same data): m0..m9
# first, acked up to m4; then the held m5..m9 again, redelivered.
BEFORE = [['m%d' % i, False] for i in range(10)]
REDELIVERED = [['m%d' % i, True] for i in range(5, 10)]


def test_amqp_connection_manager_over_a_gateway_kill9(tmp_path, processes):
    gateway, on_kill = killed_and_restarted(tmp_path, processes)
    seen = run_script('acm_reconnect.js', ACM, gateway.amqp_port, on_kill)
    assert seen == {  # RabbitMQ 3.10's
        'before': BEFORE,
        'queuedWhileDown': 3,
        'pendingOutcomes': [11, 12, 13],  # the confirmed count as each one's confirm came
        'after': [['m10', False], ['m11', False], ['m12', False]] + REDELIVERED,
        'events': ['connect', 'disconnect', 'connect'],
        'lostConfirmed': [],
        'redeliveredHeld': ['m5', 'm6', 'm7', 'm8', 'm9'],
        'count': [0, 1]}


def test_cloudamqp_session_over_a_gateway_kill9(tmp_path, processes):
    gateway, on_kill = killed_and_restarted(tmp_path, processes)
    seen = run_script('cloudamqp_reconnect.js', CLOUDAMQP, gateway.amqp_port, on_kill)
    assert seen == {  # RabbitMQ 3.10's, but for the log its 403 points to
        'badPassword': 'connection closed: ACCESS_REFUSED - Login was refused using '
                       "authentication mechanism PLAIN. For details see the gateway's log. (403)",
        'badVhost': 'connection closed: NOT_ALLOWED - vhost nosuch not found (530)',
        'negotiated': ['/', 2, 16384, 7],
        'channels': [1, 2, 3, 4, 5, 6, 7],
        'channelOverMax': 'Max number of channels reached',
        'before': BEFORE,
        'pending': ['failed: Connection closed'] * 3,
        'after': REDELIVERED,
        'events': ['connect', 'disconnect', 'connect'],
        'leftover': None}
