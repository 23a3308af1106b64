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
