"""amqplib's own test suite, run unmodified against the gateway, as its
authors run it against RabbitMQ.

The suite is that of amqplib 1.0.7, the last package on the npm registry
that ships its tests (tools/arbiter-dev unpacks it into the build tree,
beside the amqplib the other Node tests use). Its tests read the broker's
address from URL, and some connect to localhost:5672 outright: the same
preloaded module as test_amqp_examples.py points those at the gateway's
free port. Two use fixed ports of their own (23450, where nothing may
listen, and 31991, where one listens): tests/system/ports.py never hands
them out to the other tests' servers. One test is expected to fail, and
is checked to fail for that reason alone: `serverProperties` asserts that
the server's product is "RabbitMQ", and the gateway says what it is
(docs/gateway.md, "Connections").
"""

import itertools
import os
import re
import subprocess

from helpers import AMQP_PORT_REDIRECT, node_or_skip, npm_path

SUITE = npm_path('amqplib-suite')

EXPECTED = {'serverProperties': "'arbiter-gateway' == 'RabbitMQ'"}


def failures(tap):
    """The failing tests of a TAP report, by name, with their error: only
    tests that failed themselves, not the suites that hold them."""
    found = {}
    lines = tap.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'\s*not ok \d+ - (.*)$', line)
        if not m:
            continue
        block = []
        for follow in lines[i + 1:]:
            if follow.strip() == '...':
                break
            block.append(follow)
        if any(b.strip() == "failureType: 'subtestsFailed'" for b in block):
            continue
        error = ''
        for j, b in enumerate(block):
            if b.strip().startswith('error: '):
                error = b.strip()[len('error: '):]
                if error in ('|', '|-', '>', '>-'):  # YAML's block: the lines indented under it
                    depth = len(b) - len(b.lstrip())
                    below = itertools.takewhile(
                        lambda f: not f.strip() or len(f) - len(f.lstrip()) > depth, block[j + 1:])
                    error = ' '.join(f.strip() for f in below if f.strip())
                break
        found[m.group(1).strip()] = error.strip('"')
    return found


def test_amqplib_own_suite(gateway_factory, broker, tmp_path):
    node = node_or_skip(os.path.join(SUITE, 'test'))
    gateway = gateway_factory(broker)
    redirect = tmp_path / 'redirect.js'
    redirect.write_text(AMQP_PORT_REDIRECT)
    env = dict(os.environ, URL='amqp://guest:guest@127.0.0.1:%d' % gateway.amqp_port,
               ARB_TEST_AMQP_PORT=str(gateway.amqp_port),
               NODE_OPTIONS='--require %s' % redirect)
    # node's timeout holds a whole file too: connection.test.js (heartbeats
    # on real timers) passed 30 s under the sanitizers on a heavily loaded
    # machine once (the suite 43 s; 10 s alone), a test of it cancelled; a
    # hang still ends at 90 s
    proc = subprocess.run([node, '--test', '--test-timeout=90000', '--test-reporter=tap'],
                          cwd=SUITE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    summary = dict(re.findall(r'^# (tests|pass|fail|cancelled) (\d+)$', proc.stdout, re.M))
    assert int(summary.get('tests', 0)) > 250, proc.stdout[-3000:]
    # the failures first: a test cancelled (its timeout) is named there
    found = failures(proc.stdout)
    assert found == EXPECTED, 'failed: %r\n%s' % (found, proc.stdout[-5000:])
    assert summary.get('cancelled') == '0', proc.stdout[-3000:]
