"""arbiterd's and arbiter-worker's settings (proto/arb_options.c, as the
gateway's): every command-line option is a key of the config file; the
command line overrides the file; --check-config prints the effective
settings, which read back as a config file; a bad key or value names the
file, the line and the key, with exit status 2; and a broker and a worker
started from their files alone run a task."""

import os
import re
import subprocess

import pytest

import arbiter_proto
from conftest import Process, binary, free_port, wait_until

COMMON = {'config', 'check-config', 'help', 'version'}

# a value for every setting, and how --check-config prints it
VALUES = {
    'arbiterd': {
        'bind': ('tcp://127.0.0.1:7999', 'tcp://127.0.0.1:7999'),
        'curve': ('/tmp/somewhere/curve', '/tmp/somewhere/curve'),
        'insecure': ('on', 'true'),
        'db': ('/tmp/somewhere/arbiter.db', '/tmp/somewhere/arbiter.db'),
        'sync': ('normal', 'normal'),
        'transport': ('zeromq', 'zeromq'),
        'task-log': ('off', 'off'),
        'max-payload': ('2M', '2097152'),
        'heartbeat-ms': ('900', '900'),
        'liveness-ms': ('4000', '4000'),
        'aging': ('2.5', '2.500'),
        'cache-mb': ('64', '64'),
        'hot-tasks': ('100', '100'),
        'max-lost': ('4', '4'),
        'max-head-failures': ('5', '5'),
        'retention': ('60', '60.000'),
        'dead-retention': ('120', '120.000'),
        'recovery-ms': ('100', '100'),
        'log-level': ('warning', 'warning'),
    },
    'arbiter-worker': {
        'broker': ('tcp://127.0.0.1:7998', 'tcp://127.0.0.1:7998'),
        # made by arbiter keygen into {keys}: --check-config reads them
        'cert': ('{keys}/w.cert_secret', '{keys}/w.cert_secret'),
        'broker-key': ('{keys}/b.cert', '{keys}/b.cert'),
        'queue': ('images', 'images'),
        'task': ('resize', 'resize'),
        'slots': ('3', '3'),
        'mode': ('heavy', 'heavy'),
        'exec': ('tr a-z A-Z', 'tr a-z A-Z'),
        'name': ('w1', 'w1'),
        'grace-ms': ('100', '100'),
        'drain-ms': ('200', '200'),
        'connect-timeout': ('1.5', '1.500'),
        'max-payload': ('1M', '1048576'),
        'route': ('yes', 'true'),
        'log-level': ('debug', 'debug'),
    },
}

FOLDER = {'arbiterd': 'broker', 'arbiter-worker': 'worker', 'arbiter-gateway': 'gateway'}


def run(name, *args):
    return subprocess.run([binary(FOLDER[name], name)] + list(args), capture_output=True,
                          text=True, timeout=30)


def help_options(name):
    """The long options --help lists."""
    out = run(name, '--help')
    assert out.returncode == 0
    return set(re.findall(r'^  (?:-\w, |    )--([a-z][a-z0-9-]*)', out.stdout, re.M))


def settings(text):
    """--check-config's output as {key: [values]}; commented keys are unset."""
    found = {}
    for line in text.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        key, _, value = line.partition(' = ')
        found.setdefault(key, []).append(value)
    return found


def keys(tmp_path):
    """A worker's and a broker's certificates in tmp_path/keys."""
    folder = tmp_path / 'keys'
    folder.mkdir()
    for name, role in (('w', 'worker'), ('b', 'admin')):
        out = subprocess.run([binary('client', 'arbiter'), 'keygen', name, '--role', role,
                              '--dir', str(folder)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
    return str(folder)


def write(tmp_path, text, name='settings.conf'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('name', ['arbiterd', 'arbiter-worker'])
def test_every_option_is_a_key(name, tmp_path):
    folder = keys(tmp_path)
    values = {k: tuple(x.format(keys=folder) for x in v) for k, v in VALUES[name].items()}
    assert help_options(name) - COMMON == set(values), 'an option this test does not know'
    path = write(tmp_path, ''.join('%s = %s\n' % (k, v[0]) for k, v in values.items()))
    out = run(name, '--config', path, '--check-config')
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('# %s settings from %s\n' % (name, path))
    shown = settings(out.stdout)
    assert shown == {k: [v[1]] for k, v in values.items()}
    # what it prints is a config file that gives the same settings
    again = write(tmp_path, out.stdout, 'again.conf')
    out2 = run(name, '--config', again, '--check-config')
    assert out2.returncode == 0, out2.stderr
    assert settings(out2.stdout) == shown


def test_defaults_are_printed(tmp_path):
    out = run('arbiterd', '--check-config')
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('# arbiterd settings (no config file)\n')
    shown = settings(out.stdout)
    assert shown['bind'] == ['tcp://127.0.0.1:7700'] and shown['sync'] == ['full']
    assert shown['recovery-ms'] == ['3500']  # heartbeat-ms + 2500, as it will be used
    out = run('arbiter-worker', '--exec', 'cat', '--check-config')
    assert out.returncode == 0, out.stderr
    assert '\nqueue = default\n' in out.stdout and '# name = (not set)\n' in out.stdout


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, 'heartbeat-ms = 900\nsync = normal\nbind = tcp://127.0.0.1:1\n')
    out = run('arbiterd', '--config', path, '--heartbeat-ms', '800', '--check-config')
    assert out.returncode == 0, out.stderr
    shown = settings(out.stdout)
    assert shown['heartbeat-ms'] == ['800'] and shown['sync'] == ['normal']
    assert shown['recovery-ms'] == ['3300']
    # a list on the command line replaces the file's
    path = write(tmp_path, 'exec = cat\nqueue = a\nqueue = b\ntask = t\n', 'w.conf')
    out = run('arbiter-worker', '--config', path, '--queue', 'c', '--queue', 'd',
              '--check-config')
    assert out.returncode == 0, out.stderr
    shown = settings(out.stdout)
    assert shown['queue'] == ['c', 'd'] and shown['task'] == ['t']
    # --config=FILE is the same, and a flag before --config still wins
    out = run('arbiter-worker', '--slots', '2', '--config=%s' % path, '--check-config')
    assert out.returncode == 0 and settings(out.stdout)['slots'] == ['2'], out.stderr


def test_inline_comments_and_the_token_not_shown(tmp_path):
    """`#` and `;` start a comment after whitespace in any value, as at the
    start of a line; one without whitespace before it is the value's.
    --check-config writes the HTTP token ***, as an upstream's password."""
    path = write(tmp_path, '# a worker\nexec = cat#x\nname = w1 # the first\n'
                           'queue = a ; the queue\nqueue = b\t# tab\n', 'w.conf')
    out = run('arbiter-worker', '--config', path, '--check-config')
    assert out.returncode == 0, out.stderr
    shown = settings(out.stdout)
    assert shown['exec'] == ['cat#x'] and shown['name'] == ['w1']
    assert shown['queue'] == ['a', 'b']
    path = write(tmp_path, 'http-token = s3cret-abc # the token\n', 'g.conf')
    out = run('arbiter-gateway', '--config', path, '--check-config')
    assert out.returncode == 0, out.stderr
    assert settings(out.stdout)['http-token'] == ['***'] and 's3cret' not in out.stdout



def test_an_empty_http_token_is_refused(tmp_path):
    """`http-token =` ran the HTTP server without a token, every route
    open, while --check-config wrote it *** as if one were set: refused by
    --check-config and at start (exit 2), on the command line too; with
    http off it does not matter."""
    path = write(tmp_path, 'http-token =\nkestrel = off\namqp = off\nhttp = 127.0.0.1:%d\n'
                 % free_port(), 'g.conf')
    why = ('arbiter-gateway: http-token is empty: give the token, or leave the key out for '
           'none (every route open, the HTTP server on loopback only)')
    for extra in (['--check-config'], []):
        out = run('arbiter-gateway', '--config', path, *extra)
        assert out.returncode == 2, out.stderr
        assert why in out.stderr and '***' not in out.stdout
    out = run('arbiter-gateway', '--http-token', '', '--check-config')
    assert out.returncode == 2 and why in out.stderr
    out = run('arbiter-gateway', '--config', path, '--http', 'off', '--check-config')
    assert out.returncode == 0, out.stderr

BAD = [
    ('arbiterd', 'bind = tcp://127.0.0.1:1\n\nnope = 1\n', 3, 'nope',
     'not a setting of arbiterd'),
    ('arbiterd', '# sync\nsync = fast\n', 2, 'sync', "expected full or normal, not 'fast'"),
    ('arbiterd', 'max-lost = 0\n', 1, 'max-lost', '0 is out of range (1 to 1000)'),
    ('arbiterd', 'aging = soon\n', 1, 'aging', "expected seconds, like 30 or 0.25, not 'soon'"),
    ('arbiterd', 'max-payload = 2T\n', 1, 'max-payload',
     "expected a size, like 512, 64K or 16M, not '2T'"),
    ('arbiter-worker', 'exec = cat\nslots = many\n', 2, 'slots',
     "expected a whole number, not 'many'"),
    ('arbiter-worker', 'exec = cat\nqueue = a\nqueue = \x01\n', 3, 'queue',
     'not a queue name (1..200 bytes of printable UTF-8)'),
    ('arbiter-worker', 'mode = medium\n', 1, 'mode', "expected light or heavy, not 'medium'"),
    ('arbiter-worker', 'route = perhaps\n', 1, 'route', "expected true or false, not 'perhaps'"),
    ('arbiter-worker', '[queue.x]\nslots = 1\n', 2, 'queue.x.slots', 'no sections are known here'),
    ('arbiterd', 'insecure = maybe\n', 1, 'insecure', "expected true or false, not 'maybe'"),
    ('arbiterd', 'sync = full\ncurve =\n', 2, 'curve', 'expected a folder, not an empty value'),
    ('arbiterd', 'bind =\n', 1, 'bind', 'expected a ZeroMQ endpoint, not an empty value'),
    ('arbiter-worker', 'exec = cat\ncert = /nonexistent/w.cert_secret\n', 2, 'cert',
     'cannot read the file: No such file or directory'),
    ('arbiter-worker', 'exec = cat\nbroker-key = /nonexistent/broker.cert\n', 2, 'broker-key',
     'cannot read the file: No such file or directory'),
    # the gateway's said '--cert: cannot read a certificate from ...', no file nor line
    ('arbiter-gateway', 'http = off\ncert = /nonexistent/g.cert_secret\n', 2, 'cert',
     'cannot read the file: No such file or directory'),
    ('arbiter-gateway', 'broker-key = /nonexistent/broker.cert\n', 1, 'broker-key',
     'cannot read the file: No such file or directory'),
] + [
    # a type the HTTP router keeps for its own paths could never be reached
    ('arbiter-gateway', '[type.ok]\npriority = 1\n[type.%s]\npriority = 1\n' % name, 4,
     'type.%s.priority' % name, 'not a type name: api, metrics, static and index.html are '
     "the HTTP server's own paths") for name in ('api', 'metrics', 'static', 'index.html')
]


@pytest.mark.parametrize('name,text,line,key,why', BAD)
def test_bad_keys_and_values(name, text, line, key, why, tmp_path):
    path = write(tmp_path, text)
    for extra in ([], ['--check-config']):
        out = run(name, '--config', path, *extra)
        assert out.returncode == 2, out
        assert out.stderr == '%s: %s:%d: %s: %s\n' % (name, path, line, key, why)
        assert out.stdout == ''


def test_bad_command_lines():
    for name, args, message in [
            ('arbiterd', ['--sync', 'fast'], "--sync: expected full or normal, not 'fast'"),
            ('arbiterd', ['--nope'], '--nope is not an option'),
            ('arbiterd', ['--db'], '--db needs a value'),
            ('arbiterd', ['stray'], "unexpected argument 'stray'"),
            ('arbiterd', ['--heartbeat-ms', '5000'],
             'liveness-ms (5000) must be longer than heartbeat-ms (5000)'),
            ('arbiterd', ['--config', '/nonexistent.conf'], None),
            ('arbiter-worker', ['--queue', 'q'],
             '--exec CMD (exec = CMD in the config file) is required'),
            ('arbiter-worker', ['--exec', 'cat', '--mode', 'fast'],
             "--mode: expected light or heavy, not 'fast'")]:
        out = run(name, *args)
        assert out.returncode == 2, (name, args)
        if message is None:
            assert out.stderr == ('%s: /nonexistent.conf: cannot read: No such file or '
                                  'directory\n' % name)
        else:
            assert out.stderr == '%s: %s\nsee %s --help\n' % (name, message, name)


def test_a_folder_given_as_the_file_is_refused(tmp_path):
    """--config /etc/arbiter (the folder, not the file in it) read as an
    empty file: the defaults ran, with exit status 0, and --check-config
    said '# arbiterd settings from /etc/arbiter'."""
    port = free_port()
    # settings a start without the refusal would run with, out of harm's way
    safe = {'arbiterd': ['--bind', 'tcp://127.0.0.1:%d' % port, '--db', str(tmp_path / 'a.db')],
            'arbiter-worker': ['--exec', 'cat', '--broker', 'tcp://127.0.0.1:%d' % port,
                               '--connect-timeout', '1'],
            'arbiter-gateway': ['--broker', 'tcp://127.0.0.1:%d' % port, '--http', 'off',
                                '--kestrel', 'off', '--amqp', 'off']}
    folder = tmp_path / 'etc'
    folder.mkdir()
    for name in ('arbiterd', 'arbiter-worker', 'arbiter-gateway'):
        for extra in ([], ['--check-config']):
            try:
                out = subprocess.run([binary(FOLDER[name], name), '--config', str(folder)]
                                     + safe[name] + extra, capture_output=True, text=True,
                                     timeout=10, cwd=str(tmp_path))
            except subprocess.TimeoutExpired:
                pytest.fail('%s %s ran with a folder as its config file' % (name, extra))
            assert out.returncode == 2, (name, extra, out)
            assert out.stderr == '%s: %s: cannot read: Is a directory\n' % (name, folder)
            assert out.stdout == ''


def test_help_and_version_answer_whatever_the_file(tmp_path):
    path = write(tmp_path, 'nope = 1\n')
    for name in ('arbiterd', 'arbiter-worker'):
        assert run(name, '--config', path, '--help').returncode == 0
        assert run(name, '--config', path, '--version').returncode == 0


def test_broker_and_worker_from_their_files(tmp_path, processes):
    port = free_port()
    endpoint = 'tcp://127.0.0.1:%d' % port
    broker_conf = write(tmp_path, 'bind = %s\ndb = %s\nsync = normal\n' % (
        endpoint, tmp_path / 'journal.db'), 'arbiterd.conf')
    broker = Process([binary('broker', 'arbiterd'), '--config', broker_conf],
                     str(tmp_path / 'broker.log'))
    processes.append(broker)
    peer = arbiter_proto.Peer(endpoint)

    def pong():
        assert broker.alive(), broker.output()
        try:
            return peer.request('PING', {}, timeout=0.5)[0] == 'PONG'
        except TimeoutError:
            return False
    try:
        wait_until(pong, timeout=20, what='the broker answers')
    finally:
        peer.close()
    assert os.path.exists(tmp_path / 'journal.db')
    worker_conf = write(tmp_path, 'broker = %s\nqueue = images\nexec = tr a-z A-Z\nslots = 2\n'
                        % endpoint, 'worker-images.conf')
    processes.append(Process([binary('worker', 'arbiter-worker'), '--config', worker_conf],
                             str(tmp_path / 'worker.log')))
    out = subprocess.run([binary('client', 'arbiter'), '--broker', endpoint, 'submit', '--watch',
                          '--queue', 'images', 'upper', 'from the files'],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out
    assert out.stdout == b'1\nFROM THE FILES', out.stdout


def test_the_worker_checks_its_certificate(tmp_path):
    folder = keys(tmp_path)
    # both halves are needed; a public certificate is not a secret one
    out = run('arbiter-worker', '--exec', 'cat', '--cert', folder + '/w.cert_secret',
              '--check-config')
    assert out.returncode == 2 and out.stdout == ''
    assert out.stderr == ("arbiter-worker: --cert is given but not the broker's key "
                          "(--broker-key or $ARBITER_BROKER_KEY): CURVE needs both\n")
    # the public half alone (NAME.cert finds NAME.cert_secret beside it)
    write(tmp_path, open(folder + '/w.cert').read(), 'public.cert')
    path = write(tmp_path, 'exec = cat\ncert = %s/public.cert\nbroker-key = %s/b.cert\n' % (
        tmp_path, folder))
    out = run('arbiter-worker', '--config', path, '--check-config')
    assert out.returncode == 2 and 'holds no secret key' in out.stderr, out.stderr
    # a key written out is a key, not a file name
    key = re.search(r'public-key = "(.*)"', open(folder + '/b.cert').read()).group(1)
    out = run('arbiter-worker', '--exec', 'cat', '--cert', folder + '/w.cert_secret',
              '--broker-key', key, '--check-config')
    assert out.returncode == 0, out.stderr
    assert settings(out.stdout)['broker-key'] == [key]


def test_a_certificate_message_names_where_it_was_given(tmp_path):
    """A certificate or broker key that cannot be used is named as it was
    given: --cert, the file's line or $ARBITER_CERT (the gateway and the
    worker said --cert for all three), and likewise the broker key."""
    folder = keys(tmp_path)
    # one word: czmq 4.2 leaks what it read of a file its parser refuses
    junk = write(tmp_path, 'junk\n', 'junk')
    is_junk = "'%s' is not a certificate" % junk
    for name in ('arbiter-worker', 'arbiter-gateway'):
        base = [binary(FOLDER[name], name), '--exec', 'cat'][:3 if name == 'arbiter-worker' else 1]

        def check(args, env, where, why):
            out = subprocess.run(base + args + ['--check-config'], capture_output=True,
                                 text=True, timeout=30, env=dict(os.environ, **env))
            assert out.returncode == 2, out
            assert out.stderr.startswith('%s: %s' % (name, where)), out.stderr
            assert why in out.stderr, out.stderr

        key = ['--broker-key', folder + '/b.cert']
        check(['--config', os.devnull, '--cert', junk] + key, {}, '--cert: ', is_junk)
        check(['--config', os.devnull] + key, {'ARBITER_CERT': junk}, '$ARBITER_CERT: ', is_junk)
        conf = write(tmp_path, '# the certificate\ncert = %s\n' % junk, 'cert.conf')
        check(['--config', conf] + key, {}, '%s:2: cert: ' % conf, is_junk)
        check(['--config', os.devnull], {'ARBITER_CERT': folder + '/w.cert_secret'},
              "$ARBITER_CERT is given but not the broker's key", '')
        check(['--config', os.devnull, '--cert', folder + '/w.cert_secret'],
              {'ARBITER_BROKER_KEY': junk}, "$ARBITER_BROKER_KEY: '%s' is neither" % junk, '')


def test_curve_from_the_files(tmp_path, processes):
    """A broker with curve in its file admits the worker whose file names
    its certificate, and refuses the client that has none."""
    folder = keys(tmp_path)
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    curve = tmp_path / 'curve'
    (curve / 'allowed').mkdir(parents=True)
    (curve / 'allowed' / 'w.cert').write_text(open(folder + '/w.cert').read())
    broker = Process([binary('broker', 'arbiterd'), '--config', write(
        tmp_path, 'bind = %s\ndb = %s\ncurve = %s\n' % (endpoint, tmp_path / 'j.db', curve),
        'arbiterd.conf')], str(tmp_path / 'broker.log'))
    processes.append(broker)
    wait_until(lambda: 'broker: listening' in broker.output(), what='the broker listens')
    assert 'curve=off' not in broker.output()
    worker = Process([binary('worker', 'arbiter-worker'), '--config', write(
        tmp_path, 'broker = %s\nexec = tr a-z A-Z\ncert = %s/w.cert_secret\n'
        'broker-key = %s/broker.cert\n' % (endpoint, folder, curve), 'w.conf')],
        str(tmp_path / 'worker.log'))
    processes.append(worker)
    wait_until(lambda: 'registered' in worker.output() or not worker.alive(), timeout=20,
               what='the worker registers')
    assert worker.alive(), worker.output()
    out = subprocess.run([binary('client', 'arbiter'), '--broker', endpoint, '--rpc-timeout',
                          '1000', 'ping'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out


@pytest.mark.parametrize('name', ['arbiterd', 'arbiter-worker'])
def test_the_example_config_has_every_key(name, tmp_path):
    """examples/NAME.conf (installed as /etc/arbiter/arbiterd.conf and as the
    workers' example) names every setting, and its commented-out values
    are the defaults."""
    from conftest import ROOT
    text = open(os.path.join(ROOT, 'examples', name + '.conf')).read()
    out = run(name, '--config', write(tmp_path, text), '--check-config')
    assert out.returncode == 0, out.stderr
    # every key, commented or not, is a setting
    keys = set(re.findall(r'^#? ?([a-z][a-z-]*) = ', text, re.M))
    assert keys == help_options(name) - COMMON
    if name == 'arbiterd':
        uncommented = re.sub(r'^# ([a-z][a-z-]*) = ', r'\1 = ', text, flags=re.M)
        out = run(name, '--config', write(tmp_path, uncommented, 'all.conf'), '--check-config')
        assert out.returncode == 0, out.stderr
        defaults = settings(run(name, '--check-config').stdout)
        shown = settings(out.stdout)
        assert shown.pop('db') == ['/var/lib/arbiter/arbiter.db']  # the installed default
        defaults.pop('db')
        # a suggestion where the installed broker may write, not a default
        assert shown.pop('curve') == ['/var/lib/arbiter/curve'] and 'curve' not in defaults
        assert shown == defaults
