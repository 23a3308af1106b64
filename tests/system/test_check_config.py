"""--check-config refuses what a start would refuse before it binds, opens
or connects anything (broker/arbiterd.c, gateway/arbiter_gateway.c): the
same message, a non-zero exit, and no settings printed; good settings still
print and exit 0. Nothing here binds or listens: --check-config never does."""

import os
import socket
import subprocess

import pytest

from conftest import binary


def broker(*args, check=True):
    return subprocess.run([binary('broker', 'arbiterd')] + list(args)
                          + (['--check-config'] if check else []),
                          capture_output=True, text=True, timeout=30)


def gateway(*args, check=True):
    return subprocess.run([binary('gateway', 'arbiter-gateway')] + list(args)
                          + (['--check-config'] if check else []),
                          capture_output=True, text=True, timeout=30)


def refused(out, message):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert message in out.stderr
    assert out.stdout == ''  # no settings shown as if they would do


# A start refuses the same settings with the same exit status, 2 (it
# exited 1, as for a port in use, while --check-config exited 2); refused,
# it binds and opens nothing either.
@pytest.mark.parametrize('check', [True, False])
def test_broker_refuses_an_open_bind_without_curve(tmp_path, check):
    db = tmp_path / 'x.db'
    out = broker('--bind', 'tcp://0.0.0.0:24700', '--db', str(db), check=check)
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
    (['--http', 'nosuchhost.invalid:23799'], "http: bad address 'nosuchhost.invalid:23799'"),
    (['--http', '0.0.0.0:23799'], 'http: no token is configured, so the server listens on '
                                  'loopback only'),
    (['--kestrel', 'nonsense'], "kestrel: bad address 'nonsense'"),
    (['--kestrel', ','], "kestrel: nothing to listen on in ','"),
    (['--amqp', '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5'],
     'amqp: more than 4 addresses'),
    (['--amqp', '-:5672'], "amqp: bad address ':5672'"),
    (['--amqp', '127.0.0.1:x'], "amqp: bad address '127.0.0.1:x'"),
    (['--kestrel', '127.0.0.1:65536'], "kestrel: bad address '127.0.0.1:65536'"),
    # a URL was looked up as a host name: "Name or service not known"
    (['--http', 'http://127.0.0.1:23799'], "http: bad address 'http://127.0.0.1:23799' "
                                           "(HOST:PORT, [IPv6]:PORT, not a URL: without 'http://')"),
    (['--amqp', '-amqp://[::1]:5672'], "amqp: bad address 'amqp://[::1]:5672' (HOST:PORT, "
                                       "[IPv6]:PORT, not a URL: without 'amqp://')"),
    # Kestrel has no authentication: loopback only, unless --kestrel-insecure
    (['--kestrel', '0.0.0.0:22133'],
     'kestrel: refusing to listen on 0.0.0.0:22133 without authentication'),
    (['--kestrel', '127.0.0.1:22133,-[::]:22133'],
     'kestrel: refusing to listen on 127.0.0.1:22133,-[::]:22133 without authentication'),
    (['--amqp-vhosts', 'a,a'], "amqp: bad vhost 'a'"),
    (['--amqp-vhosts', 'a,,b'], "amqp: bad vhost ''"),
    (['--amqp-vhosts', ','], "amqp: bad vhost ''"),
    (['--name', 'n' * 201], 'not a worker name (at most 200 bytes)'),
    # the certificate is read, as the worker's --check-config reads its own
    (['--cert', '/nonexistent/g.cert_secret', '--broker-key', '/nonexistent/b.cert'],
     '--cert: cannot read the file: No such file or directory'),
])
def test_gateway_refuses_what_a_start_would(args, message):
    refused(gateway(*args), message)
    # and a start refuses it alike, exit status 2 (it was 1), before it
    # listens on anything
    refused(gateway('--config', os.devnull, *args, check=False), message)


@pytest.mark.parametrize('args', [
    [],
    ['--http', '0.0.0.0:23799', '--http-token', 'secret'],
    ['--http', '[::1]:23799', '--kestrel', '-[::1]:22133', '--amqp', 'localhost:5672'],
    ['--http', 'off', '--kestrel', 'off', '--amqp', 'off', '--amqp-vhosts', ','],
    ['--kestrel', 'localhost:22133'],
    ['--kestrel', '0.0.0.0:22133,[::]:22133', '--kestrel-insecure'],
])
def test_gateway_takes_good_settings(args):
    out = gateway(*args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('# arbiter-gateway settings')


def test_gateway_http_takes_a_host_name_as_kestrel_and_amqp_do():
    """--http HOST:PORT with a name (this machine's), as --kestrel and
    --amqp take one: it was 'bad address' unless the name was localhost."""
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, None)
    except OSError:
        pytest.skip('this machine\'s name does not resolve')
    for option in ('--http', '--kestrel'):
        out = gateway(option, '%s:23799' % name, '--http-token', 'secret',
                      '--kestrel-insecure')
        assert out.returncode == 0, (option, out.stderr)


@pytest.mark.parametrize('section', ['bridge.a', 'user.app', 'queue.jobs'])
def test_gateway_refuses_a_section_given_twice(tmp_path, section):
    """inih merges a section given twice into one: refused, where the
    second is, naming the first."""
    key = {'bridge.a': 'prefetch = 5', 'user.app': 'password = p',
           'queue.jobs': 'priority = 3'}[section]
    conf = tmp_path / 'twice.conf'
    conf.write_text('[%s]\n%s\n\n[%s]\n%s\n' % (section, key, section, key))
    out = gateway('--config', str(conf))
    refused(out, '%s:5: %s.%s: [%s] is given twice (first at %s:1)'
            % (conf, section, key.split()[0], section, conf))


@pytest.mark.parametrize('section,message', [
    ('type.api', "not a type name"), ('user.frank', 'no password'),
    ('bridge.a', 'no upstream URL'), ('elsewhere.x', 'unknown section'),
    ('queue.jobs', None), ('type.deploy', None)])
def test_gateway_reads_a_section_without_keys(tmp_path, section, message):
    """A section without a key is there all the same: inih tells only
    keys, and such a section went unread (a bare [type.deploy] declared no
    type, a bare [type.api] or [user.frank] passed)."""
    conf = tmp_path / 'bare.conf'
    conf.write_text('[type.first]\npriority = 1\n\n[%s]\n' % section)
    out = gateway('--config', str(conf))
    if message:
        refused(out, '%s:4: [%s]: %s' % (conf, section, message))
    else:
        assert out.returncode == 0, out.stderr
    # with keys after it, the section given twice is refused at the first
    conf.write_text('[queue.jobs]\n[queue.jobs]\npriority = 3\n')
    refused(gateway('--config', str(conf)), '[queue.jobs] is given twice')


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


# -- endpoints: one check for every program (proto/arb_endpoint.c) -----------
# libzmq wraps a port over 65535 (99999 to 34463) and takes 65536 as 0 (a
# random port): each program refused none of them, and logged one endpoint
# while it used another.

BAD_CONNECT = [('foo', "expected tcp://HOST:PORT (or ipc://PATH, inproc://NAME), not 'foo'"),
               ('tcp://127.0.0.1:99999', 'the port 99999 is out of range (1 to 65535'),
               ('tcp://127.0.0.1:65536', 'the port 65536 is out of range (1 to 65535'),
               ('tcp://127.0.0.1:abc', "the port 'abc' is not a number"),
               ('tcp://127.0.0.1:0', 'the port 0 is out of range'),
               ('tcp://127.0.0.1', 'has no port'),
               ('tcp://:7700', 'has no host')]


def one_line(out, program, option, message):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    first = out.stderr.splitlines()[0]
    assert first.startswith('%s: %s: ' % (program, option)) and message in first, out.stderr
    assert out.stdout == ''


@pytest.mark.parametrize('endpoint,message', BAD_CONNECT[1:] + [
    ('tcp://127.0.0.1:abc', "the port 'abc' is not a number (1 to 65535, or * or 0")])
def test_broker_refuses_a_bind_out_of_range(tmp_path, endpoint, message):
    if endpoint.endswith(':0'):
        return  # binding port 0 (any free port) is taken, as * is
    out = broker('--bind', endpoint, '--db', str(tmp_path / 'x.db'))
    one_line(out, 'arbiterd', '--bind', message)
    # and a start refuses it the same way, before it opens anything
    start = subprocess.run([binary('broker', 'arbiterd'), '--bind', endpoint,
                            '--db', str(tmp_path / 'x.db')], capture_output=True, text=True,
                           timeout=30)
    one_line(start, 'arbiterd', '--bind', message)
    assert not (tmp_path / 'x.db').exists()


@pytest.mark.parametrize('endpoint', ['tcp://127.0.0.1:*', 'tcp://127.0.0.1:0',
                                      'tcp://127.0.0.1:65535', 'ipc:///tmp/arbiter.sock'])
def test_broker_takes_a_bind_in_range_or_any_free_port(tmp_path, endpoint):
    out = broker('--bind', endpoint, '--db', str(tmp_path / 'x.db'))
    assert out.returncode == 0, out.stderr
    assert 'bind = %s\n' % endpoint in out.stdout


def test_broker_refuses_a_bind_out_of_range_in_its_file(tmp_path):
    conf = tmp_path / 'arbiterd.conf'
    conf.write_text('bind = tcp://127.0.0.1:99999\n')
    out = broker('--config', str(conf), '--db', str(tmp_path / 'x.db'))
    assert out.returncode == 2 and out.stdout == ''
    assert '%s:1: bind: ' % conf in out.stderr and 'out of range' in out.stderr


@pytest.mark.parametrize('endpoint,message', BAD_CONNECT)
def test_worker_and_gateway_refuse_a_broker_they_cannot_reach(endpoint, message):
    one_line(worker('--broker', endpoint), 'arbiter-worker', '--broker', message)
    one_line(gateway('--broker', endpoint), 'arbiter-gateway', '--broker', message)


def test_worker_and_gateway_check_arbiter_broker_too():
    env = dict(os.environ, ARBITER_BROKER='tcp://127.0.0.1:99999')
    for args in ([binary('worker', 'arbiter-worker'), '--exec', 'true'],
                 [binary('gateway', 'arbiter-gateway')]):
        out = subprocess.run(args + ['--check-config'], capture_output=True, text=True,
                             timeout=30, env=env)
        assert out.returncode == 2 and out.stdout == '', out
        assert 'ARBITER_BROKER: ' in out.stderr and 'out of range' in out.stderr


def test_gateway_broadcast_is_a_type_key(tmp_path):
    """broadcast says how a POST of a tasker type is delivered: a type's
    key, a yes or a no; in a [queue.NAME] section it is refused."""
    conf = tmp_path / 'broadcast.conf'
    conf.write_text('[type.deploy]\nbroadcast = yes\n')
    assert gateway('--config', str(conf)).returncode == 0
    conf.write_text('[type.deploy]\nbroadcast = sometimes\n')
    refused(gateway('--config', str(conf)), 'type.deploy.broadcast')
    conf.write_text('[queue.jobs]\nbroadcast = yes\n')
    refused(gateway('--config', str(conf)), 'only in a [type.NAME] section')


def test_worker_refuses_a_task_name_the_broker_would(tmp_path):
    """A --task name the broker refuses (not printable UTF-8) is refused by
    --check-config, as the start would refuse it (the start said only "no
    handler registered", exit 1, or dropped it in silence beside a good one)."""
    for args in (['--task', 'bad\nname'], ['--task', 'ok', '--task', 'x\x01y']):
        out = worker(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert '--task: not a task name (1..200 bytes of printable UTF-8)' in out.stderr
    conf = tmp_path / 'w.conf'
    conf.write_text('exec = cat\ntask = a\tb\n')
    out = worker('--config', str(conf))
    assert out.returncode == 2 and '%s:2: task: not a task name' % conf in out.stderr, out.stderr


def test_gateway_shows_its_sections_without_their_secrets(tmp_path):
    """--check-config prints the file's sections after the settings, as
    read (checked), without a user's password or an upstream URL's."""
    conf = tmp_path / 'gateway.conf'
    conf.write_text('[type.deploy]\nretries = 2\n[queue.jobs]\nretention = 60\n'
                    '[bridge.thumbs]\nupstream = amqp://u:bridgesecret@rabbit:5672/v\n'
                    'queue = images\n[user.app]\npassword = usersecret\nvhosts = /\n')
    out = gateway('--config', str(conf))
    assert out.returncode == 0, out.stderr
    sections = out.stdout.split('\n\n', 1)[1]
    assert sections == ('[type.deploy]\nretries = 2\n\n[queue.jobs]\nretention = 60\n\n'
                        '[bridge.thumbs]\nupstream = amqp://u@rabbit:5672/v\nqueue = images\n\n'
                        '[user.app]\npassword = ***\nvhosts = /\n'), out.stdout
    assert 'secret' not in out.stdout


@pytest.mark.parametrize('value', ['0.5', '1.5', '59.9'])
def test_gateway_refuses_an_amqp_heartbeat_in_a_fraction(tmp_path, value):
    """AMQP's heartbeat is whole seconds (Tune's short): 1.5 was cut to 1
    without a word, and 0.5 to 0, turning heartbeats off. Refused, on the
    command line and in the file, unless AMQP is off."""
    refused(gateway('--amqp-heartbeat', value),
            'amqp-heartbeat %.3f is not a whole number of seconds' % float(value))
    conf = tmp_path / 'hb.conf'
    conf.write_text('amqp-heartbeat = %s\n' % value)
    refused(gateway('--config', str(conf)), 'is not a whole number of seconds')
    assert gateway('--config', str(conf), '--amqp', 'off').returncode == 0
    assert gateway('--amqp-heartbeat', '2').returncode == 0
