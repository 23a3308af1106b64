"""tools/arbiter-dev up takes a port and a directory (or ARBITER_PORT and
ARBITER_DIR), so that two run side by side, each broker with its own
journal, its worker and its gateway (HTTP on the port + 80) on it; and CI
(.ci/run) gets the package step with everything it needs installed."""

import fcntl
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

import arbiter_proto
from conftest import BUILD, ROOT, Process, binary, free_port, wait_until


def answers(endpoint):
    peer = arbiter_proto.Peer(endpoint)
    try:
        return peer.request('PING', {}, timeout=0.5)[0] == 'PONG'
    except TimeoutError:
        return False
    finally:
        peer.close()


def dev_port(taken):
    """A port N such that N, N+1, N+2 and N+80 (the broker and the
    gateway's AMQP, Kestrel and HTTP ports) are free now and none is
    another setup's."""
    while True:
        port = free_port()
        ports = {port, port + 1, port + 2, port + 80}
        if max(ports) > 65535 or ports & taken:
            continue
        try:
            for p in ports - {port}:
                with socket.socket() as s:
                    s.bind(('127.0.0.1', p))
        except OSError:
            continue
        taken |= ports
        return port


def dashboard(port):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/' % (port + 80), timeout=2) as page:
            return page.status == 200 and b'<html' in page.read().lower()
    except (OSError, urllib.error.URLError):
        return False


def test_two_dev_setups_side_by_side(processes, tmp_path):
    binary('broker', 'arbiterd')
    setups, taken = [], set()
    for i, how in enumerate(['options', 'environment']):
        port, folder = dev_port(taken), tmp_path / ('dev%d' % i)
        args = [os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--no-build']
        env = dict(os.environ, ARBITER_BUILD=BUILD)
        if how == 'options':
            args += ['--port', str(port), '--dir', str(folder)]
        else:
            # a relative dir is the caller's, not the repository's
            env.update(ARBITER_PORT=str(port), ARBITER_DIR=folder.name)
        proc = Process(args, str(tmp_path / ('dev%d.log' % i)), env=env, cwd=str(tmp_path))
        processes.append(proc)
        setups.append((proc, 'tcp://127.0.0.1:%d' % port, folder, port))
    for proc, endpoint, folder, port in setups:
        wait_until(lambda: answers(endpoint), timeout=20, what='broker of ' + str(folder))
        wait_until(lambda: dashboard(port), timeout=20, what='dashboard of ' + str(folder))
        assert (folder / 'arbiter.db').exists()
        submit = subprocess.run([binary('client', 'arbiter'), '--broker', endpoint, 'submit',
                                 '--watch', 'upper', folder.name], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=60)
        assert submit.returncode == 0, (submit.stderr, proc.output())
        assert submit.stdout.split(b'\n', 1)[1] == folder.name.upper().encode()
        # the AMQP address it prints is one rabbitmq-c's tools log in with
        url = re.search(r'AMQP (amqp://\S+)', proc.output()).group(1)
        declare = subprocess.run(['amqp-declare-queue', '-u', url, '-q', 'dev-check'],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert declare.returncode == 0, (url, declare.stderr)
        assert declare.stdout.strip() == b'dev-check'
    # a third on a port in use says so and starts nothing (its worker does
    # not join the broker already there)
    busy = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--no-build',
                           '--port', str(setups[0][3]), '--dir', str(tmp_path / 'busy')],
                          env=dict(os.environ, ARBITER_BUILD=BUILD), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    assert busy.returncode == 1, busy.stderr
    assert b'127.0.0.1:%d is in use' % setups[0][3] in busy.stderr
    assert not (tmp_path / 'busy').exists()  # nor makes its dir
    assert b'worker' not in busy.stdout + busy.stderr
    for proc, endpoint, folder, port in setups:
        assert proc.stop() == 0, proc.output()  # Ctrl-C or SIGTERM: a clean stop
        assert not answers(endpoint)  # and the broker went with it
        assert not dashboard(port)  # and the gateway
    bad = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--port', 'x'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert bad.returncode == 2 and b"--port: 'x' is not a port" in bad.stderr
    # --help with any command shows the help and runs nothing
    for command in (['--help'], ['up', '--help'], ['test', '--help'], ['deb', '-h']):
        shown = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev')] + command,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert shown.returncode == 0 and b'quick start' in shown.stdout, (command, shown)
        assert b'arbiter-dev: installing' not in shown.stdout + shown.stderr


def dev_list(name):
    text = open(os.path.join(ROOT, 'tools', 'arbiter-dev')).read()
    return set(re.search(r'^%s=\(([^)]*)\)' % name, text, re.M).group(1).split())


def dev_packages():
    return dev_list('BUILD_PACKAGES') | dev_list('TEST_PACKAGES') | dev_list('DEB_PACKAGES')


def test_up_installs_the_build_alone_and_no_server():
    """`up` installs what the build needs and nothing more: not the servers
    the tests start (Debian's rabbitmq-server starts a RabbitMQ on 5672 as
    it is installed, which then took the port `up` gives the gateway's
    AMQP), nor the browser, sanitizers or packaging. The servers `test`
    installs are listed, to be kept from running as services."""
    build, servers = dev_list('BUILD_PACKAGES'), dev_list('TEST_SERVERS')
    assert servers == {'rabbitmq-server', 'redis-server', 'beanstalkd'}
    assert servers <= dev_list('TEST_PACKAGES') and not servers & build
    assert not {'chromium', 'clang', 'lintian', 'nodejs'} & build
    # every library the build links (a -dev package) is in the build's list
    assert {p for p in dev_packages() if p.endswith('-dev')} - {'libclang-rt-14-dev'} <= build
    text = open(os.path.join(ROOT, 'tools', 'arbiter-dev')).read()
    assert 'install_missing "${BUILD_PACKAGES[@]}"\n' in text


def test_ci_builds_installs_and_purges_the_packages():
    """.ci/run, after the tests and the format check, builds the Debian
    packages and runs .ci/deb; on a clean Debian 12, tools/arbiter-dev
    installs everything both need: the packages' Build-Depends, and what
    .ci/deb calls (man, systemd-analyze, a C compiler, pkg-config)."""
    steps = [line.strip() for line in open(os.path.join(ROOT, '.ci', 'run'))
             if line.strip() and not line.lstrip().startswith(('#', 'echo'))]
    order = [s for s in steps if s in ('tools/arbiter-dev test', 'tools/arbiter-dev deb',
                                       '.ci/deb')]
    assert order == ['tools/arbiter-dev test', 'tools/arbiter-dev deb', '.ci/deb'], steps
    for script in ('.ci/run', '.ci/deb', 'tools/arbiter-dev'):
        path = os.path.join(ROOT, script)
        assert os.access(path, os.X_OK), script
        assert subprocess.run(['bash', '-n', path]).returncode == 0, script
    control = open(os.path.join(ROOT, 'debian', 'control')).read()
    build_depends = re.search(r'^Build-Depends:(.*?)^\S', control, re.M | re.S).group(1)
    needed = {re.sub(r'\s*\(.*\)', '', dep).strip() for dep in build_depends.split(',')}
    needed = {'debhelper' if dep == 'debhelper-compat' else dep for dep in needed if dep}
    needed |= {'build-essential', 'pkg-config', 'lintian'}
    # `deb` alone installs the build's and the packaging's, not the tests'
    # toolchain; `test` (run first) installs those too, and what .ci/deb calls
    assert needed - dev_list('BUILD_PACKAGES') - dev_list('DEB_PACKAGES') == set()
    text = open(os.path.join(ROOT, 'tools', 'arbiter-dev')).read()
    assert 'install_missing "${BUILD_PACKAGES[@]}" "${DEB_PACKAGES[@]}"\n        deb' in text
    assert ('install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${DEB_PACKAGES[@]}"'
            in text)
    assert {'man-db', 'systemd'} <= dev_list('TEST_PACKAGES')


def test_the_packages_restart_the_gateway_on_an_upgrade_and_stop_it_on_a_remove():
    """debhelper's --no-start, which kept the gateway from starting at
    install, also left out the prerm's stop and the postinst's restart, and
    kept the preinst's stop: an upgrade stopped a running gateway and left
    it stopped, and `apt remove` left it running, its binary gone. Without
    it the postinst's start skips a unit that is not enabled (as
    deb-systemd-invoke does), which is what kept it from starting."""
    rules = open(os.path.join(ROOT, 'debian', 'rules')).read()
    calls = re.findall(r'^\tdh_installsystemd (.*)$', rules, re.M)
    assert calls == ['-parbiter --name=arbiterd', '-parbiter --name=arbiter-gateway --no-enable']


def test_help_is_the_comment_at_the_top():
    """--help prints the comment that opens tools/arbiter-dev, and only
    that: not a comment of the code after it (it printed "where it was run
    from: up's --dir is relative to it", the comment of the line after
    `set -euo pipefail`, as its last line)."""
    path = os.path.join(ROOT, 'tools', 'arbiter-dev')
    header = []
    for line in open(path).read().split('\n')[1:]:
        if not line.startswith('#'):
            break
        header.append(re.sub(r'^# ?', '', line))
    shown = subprocess.run([path, '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
    assert shown.returncode == 0 and shown.stderr == b''
    assert shown.stdout.decode().split('\n')[:-1] == header


SIGNAL_RECORDER = '''#!/usr/bin/python3
# stands in for a daemon of `up`: records each signal it gets (handling
# them, as the daemons do, whatever it inherited), says when it handles
# them, and ends 1 s after the first
import os, signal, sys, time
got = []
def note(sig, frame):
    got.append(sig)
    with open(%r + os.path.basename(sys.argv[0]), 'a') as log:
        log.write(signal.Signals(sig).name + '\\n')
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, note)
open(%r + os.path.basename(sys.argv[0]) + '.ready', 'w').close()
while not got:
    time.sleep(0.05)
time.sleep(1)
'''


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGHUP])
def test_ctrl_c_or_a_closed_terminal_signals_each_daemon_once(tmp_path, sig):
    """Ctrl-C (SIGINT to the terminal's whole process group) or a closed
    terminal (SIGHUP) stops `up` cleanly, and each daemon gets one signal:
    the script's SIGTERM. Each got the terminal's signal too, so the
    script's SIGTERM was its second, and a worker's second signal stops its
    running tasks at once instead of letting them end (`worker: stopping
    running tasks busy=1`); SIGHUP killed the script (exit 129)."""
    build, logs = tmp_path / 'build', tmp_path / 'signals'
    logs.mkdir()
    for folder, name in (('broker', 'arbiterd'), ('worker', 'arbiter-worker'),
                         ('gateway', 'arbiter-gateway')):
        (build / folder).mkdir(parents=True)
        fake = build / folder / name
        fake.write_text(SIGNAL_RECORDER % ((str(logs) + '/',) * 2))
        fake.chmod(0o755)
    port = dev_port(set())
    proc = subprocess.Popen([os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--no-build',
                             '--port', str(port), '--dir', str(tmp_path / 'var')],
                            env=dict(os.environ, ARBITER_BUILD=str(build)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        first = proc.stdout.readline()  # the banner: the daemons started
        assert first.startswith(b'arbiter-dev: broker on'), first
        wait_until(lambda: len(list(logs.glob('*.ready'))) == 3, timeout=20,
                   what='the daemons handling signals')
        os.killpg(proc.pid, sig)  # the terminal signals its foreground group
        output = first + proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output
    for name in ('arbiterd', 'arbiter-worker', 'arbiter-gateway'):
        assert (logs / name).read_text().split() == ['SIGTERM'], (name, output)


def test_a_misspelt_command_is_named():
    """`tools/arbiter-dev upp` said only the usage, not what was wrong with
    the line; it names the word it does not know, as `arbiter` does."""
    typo = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev'), 'upp'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert typo.returncode == 2 and typo.stdout == b''
    assert typo.stderr.startswith(b"arbiter-dev: 'upp' is not a command (up, test or deb)\n"
                                  b'usage: '), typo.stderr
    bare = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev')], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    assert bare.returncode == 2 and bare.stderr.startswith(b'usage: '), bare.stderr


def test_up_installs_what_the_readme_runs_beside_arbiter():
    """The README's tour runs, beside arbiter's own programs, curl (its
    HTTP lines) and Python's pymemcache and pika: `up`, which says it
    installs what the tour needs, installs them (it left out curl, which
    Debian 12 does not install by itself)."""
    readme = open(os.path.join(ROOT, 'README.md')).read()
    build = dev_list('BUILD_PACKAGES')
    commands = {line.split()[1] for line in re.findall(r'^ +\$ \S+.*$', readme, re.M)}
    assert 'curl' in commands
    assert 'curl' in build
    for module, package in (('pymemcache', 'python3-pymemcache'), ('pika', 'python3-pika'),
                            ('arbiter', 'python3-zmq')):
        assert re.search(r'(import|from) %s\b' % module, readme), module
        assert package in build, package


def test_up_shows_what_scons_builds_not_what_it_did_not(tmp_path):
    """`up` on a built tree printed scons's "scons: `build/...' is up to
    date." for each of some eighty default targets before its own lines;
    those are left out, what scons builds or says otherwise is shown, and
    a build that fails still stops `up` with scons's status, before it
    starts anything. (A stand-in scons, and a dpkg-query that finds every
    package installed, on PATH.)"""
    tools = tmp_path / 'bin'
    tools.mkdir()
    (tools / 'dpkg-query').write_text(
        '#!/bin/sh\n[ "$2" = \'-f=${Status}\' ] && printf "install ok installed"\nexit 0\n')
    scons = tools / 'scons'
    for fake in tools.iterdir():
        fake.chmod(0o755)
    env = dict(os.environ, PATH='%s:%s' % (tools, os.environ['PATH']))
    port = dev_port(set())
    args = [os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--port', str(port), '--dir',
            str(tmp_path / 'var')]
    said = ("scons: `build/proto/libarbproto.a' is up to date.\n"
            "gcc -o build/x.o -c x.c\n"
            "scons: `build/broker/arbiterd' is up to date.\n")
    (tmp_path / 'said').write_text(said)
    scons.write_text('#!/bin/sh\ncat %s\nexit 2\n' % (tmp_path / 'said'))
    scons.chmod(0o755)
    failed = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=60)
    assert failed.returncode == 2, failed
    assert failed.stdout == b'gcc -o build/x.o -c x.c\n', failed
    assert not (tmp_path / 'var').exists()  # nothing started
    scons.write_text('#!/bin/sh\ncat %s\n' % (tmp_path / 'said'))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        shown = proc.stdout.readline() + proc.stdout.readline()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert shown.startswith(b'gcc -o build/x.o -c x.c\narbiter-dev: broker on'), shown
    assert proc.returncode == 0


def test_a_journal_another_setup_holds_is_told_before_anything_starts(tmp_path):
    """A second `up` with another --port but the first's --dir printed
    where its broker, worker and gateway listen, then stopped at its
    broker's refusal of the journal (the first broker holds its lock
    file) with "if a port is in use, run another setup with --port N":
    the lock is checked first, as the ports are, and named."""
    var = tmp_path / 'var'
    var.mkdir()
    with open(var / 'arbiter.db.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the first setup's arbiterd
        second = subprocess.run([os.path.join(ROOT, 'tools', 'arbiter-dev'), 'up', '--no-build',
                                 '--port', str(dev_port(set())), '--dir', str(var)],
                                env=dict(os.environ, ARBITER_BUILD=BUILD), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=60)
    assert second.returncode == 1, second
    assert second.stdout == b'', second  # nothing started
    assert second.stderr == ('arbiter-dev: %s/arbiter.db is in use by another arbiterd; run '
                             'another setup with --dir DIR (and --port N)\n' % var).encode()
