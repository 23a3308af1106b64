"""--check-config refuses what a start would refuse before it binds, opens
or connects anything (broker/arbiterd.c, gateway/arbiter_gateway.c): the
same message, a non-zero exit, and no settings printed; good settings still
print and exit 0. Nothing here binds or listens: --check-config never does."""

import subprocess

import pytest

from conftest import binary


def broker(*args):
    return subprocess.run([binary('broker', 'arbiterd')] + list(args) + ['--check-config'],
                          capture_output=True, text=True, timeout=30)


def gateway(*args):
    return subprocess.run([binary('gateway', 'arbiter-gateway')] + list(args)
                          + ['--check-config'], capture_output=True, text=True, timeout=30)


def refused(out, message):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert message in out.stderr
    assert out.stdout == ''  # no settings shown as if they would do


def test_broker_refuses_an_open_bind_without_curve(tmp_path):
    db = tmp_path / 'x.db'
    out = broker('--bind', 'tcp://0.0.0.0:24700', '--db', str(db))
    refused(out, 'broker: refusing to bind tcp://0.0.0.0:24700 without authentication')
    assert not db.exists()  # the journal was not opened


@pytest.mark.parametrize('extra', [['--insecure'], ['--curve', '/nonexistent/curve']])
def test_broker_takes_an_open_bind_with_insecure_or_curve(tmp_path, extra):
    db = tmp_path / 'x.db'
    out = broker('--bind', 'tcp://0.0.0.0:24700', '--db', str(db), *extra)
    assert out.returncode == 0, out.stderr
    assert 'bind = tcp://0.0.0.0:24700\n' in out.stdout
    assert not db.exists()


def test_broker_takes_loopback(tmp_path):
    out = broker('--bind', 'tcp://127.0.0.1:24700', '--db', str(tmp_path / 'x.db'))
    assert out.returncode == 0, out.stderr
    assert 'bind = tcp://127.0.0.1:24700\n' in out.stdout


@pytest.mark.parametrize('args, message', [
    (['--http', 'nonsense'], "http: bad address 'nonsense'"),
    (['--http', '0.0.0.0:23799'], 'http: no token is configured, so the server listens on '
                                  'loopback only'),
    (['--kestrel', 'nonsense'], "kestrel: bad address 'nonsense'"),
    (['--kestrel', ','], "kestrel: nothing to listen on in ','"),
    (['--amqp', '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5'],
     'amqp: more than 4 addresses'),
    (['--amqp', '-:5672'], "amqp: bad address ':5672'"),
    (['--amqp', '127.0.0.1:x'], "amqp: bad address '127.0.0.1:x'"),
    (['--kestrel', '127.0.0.1:65536'], "kestrel: bad address '127.0.0.1:65536'"),
    (['--amqp-vhosts', 'a,a'], "amqp: bad vhost 'a'"),
    (['--name', 'n' * 201], 'not a worker name (at most 200 bytes)'),
    # the certificate is read, as the worker's --check-config reads its own
    (['--cert', '/nonexistent/g.cert_secret', '--broker-key', '/nonexistent/b.cert'],
     "--cert: cannot read a certificate from '/nonexistent/g.cert_secret'"),
])
def test_gateway_refuses_what_a_start_would(args, message):
    refused(gateway(*args), message)


@pytest.mark.parametrize('args', [
    [],
    ['--http', '0.0.0.0:23799', '--http-token', 'secret'],
    ['--http', '[::1]:23799', '--kestrel', '-[::1]:22133', '--amqp', 'localhost:5672'],
    ['--http', 'off', '--kestrel', 'off', '--amqp', 'off', '--amqp-vhosts', ','],
])
def test_gateway_takes_good_settings(args):
    out = gateway(*args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('# arbiter-gateway settings')


def worker(*args):
    return subprocess.run([binary('worker', 'arbiter-worker'), '--exec', 'true'] + list(args)
                          + ['--check-config'], capture_output=True, text=True, timeout=30)


def test_worker_shows_the_queue_it_takes_from_without_queue():
    out = worker()
    assert out.returncode == 0, out.stderr
    assert '\nqueue = default\n' in out.stdout  # what it subscribes to
    assert 'queue = (none)' not in out.stdout
    out = worker('--queue', 'a', '--queue', 'b')
    assert 'queue = a\nqueue = b\n' in out.stdout and 'queue = default' not in out.stdout
