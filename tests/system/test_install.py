"""`scons install` as a program using arbiter sees it, through build/stage
(an install with DESTDIR=build/stage that `scons test` makes): the C
examples build out of tree with `pkg-config --cflags --libs libarbiter`
alone and run against a broker; every public header compiles on its own;
libarbiter.so.1 exports exactly what those headers declare; the installed
daemons read their default config file; the units pass `systemd-analyze
verify`. The copy of the staged tree is moved, as an installed one is
when pkg-config is told where (PKG_CONFIG_PATH): only its pc file's prefix
line says where it lives."""

import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, SANITIZED, Process, binary, free_port, wait_until

STAGE = os.path.join(ROOT, 'build', 'stage')

# the asan variant tests the same staged tree: once is enough
pytestmark = pytest.mark.skipif(SANITIZED, reason='the stage is built from build/ only')


def staged_pc():
    found = glob.glob(os.path.join(STAGE, '**', 'pkgconfig', 'libarbiter.pc'), recursive=True)
    if not found:
        pytest.skip('build/stage is not built (scons stage)')
    return found[0]


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """A copy of the staged install whose pc file says where it is: the
    prefix directory, and an environment for pkg-config and the loader."""
    pc = staged_pc()
    prefix_line = open(pc).readline()
    assert prefix_line.startswith('prefix=')
    prefix = prefix_line.strip()[len('prefix='):]
    root = str(tmp_path_factory.mktemp('installed'))
    shutil.copytree(STAGE, root, symlinks=True, dirs_exist_ok=True)
    where = root + prefix
    pcdir = os.path.dirname(pc.replace(STAGE, root))
    text = open(os.path.join(pcdir, 'libarbiter.pc')).read()
    open(os.path.join(pcdir, 'libarbiter.pc'), 'w').write(
        text.replace(prefix_line, 'prefix=%s\n' % where, 1))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    libdir = subprocess.check_output(['pkg-config', '--variable=libdir', 'libarbiter'],
                                     env=env, text=True).strip()
    env['LD_LIBRARY_PATH'] = libdir
    return {'prefix': where, 'env': env, 'libdir': libdir, 'installed_prefix': prefix}


def pkg_config(tree, *args):
    return subprocess.check_output(['pkg-config'] + list(args) + ['libarbiter'],
                                   env=tree['env'], text=True).split()


def test_the_tree_holds_what_it_should(tree):
    p = tree['prefix']
    for path in ['bin/arbiter', 'bin/arbiter-worker', 'sbin/arbiterd', 'sbin/arbiter-gateway',
                 'share/man/man1/arbiter.1', 'share/man/man1/arbiter-worker.1',
                 'share/man/man8/arbiterd.8', 'share/man/man8/arbiter-gateway.8',
                 'share/man/man3/libarbiter.3', 'share/bash-completion/completions/arbiter',
                 'share/doc/arbiter/examples/arbiterd.conf',
                 'share/doc/arbiter/examples/arbiter-worker.conf', 'include/arbiter/arb_client.h',
                 'share/doc/arbiter/README.md', 'share/doc/arbiter/gateway.md',
                 'share/doc/arbiter/link.md',
                 'lib/systemd/system/arbiterd.service',
                 'lib/systemd/system/arbiter-worker@.service']:
        assert os.path.exists(os.path.join(p, path)), path
    lib = tree['libdir']
    assert os.readlink(os.path.join(lib, 'libarbiter.so')) == 'libarbiter.so.1.0.0'
    assert os.readlink(os.path.join(lib, 'libarbiter.so.1')) == 'libarbiter.so.1.0.0'
    dynamic = subprocess.check_output(['readelf', '-d', os.path.join(lib, 'libarbiter.so.1')],
                                      text=True)
    assert 'Library soname: [libarbiter.so.1]' in dynamic
    assert os.path.exists(os.path.join(lib, 'libarbiter.a'))
    assert pkg_config(tree, '--modversion') == [
        re.search(r'#define ARB_VERSION\s+"(.*)"',
                  open(os.path.join(ROOT, 'proto', 'arb_proto.h')).read()).group(1)]


def build(tree, tmp_path, source, static=False):
    """Compiles an example with pkg-config's flags and nothing else."""
    out = str(tmp_path / (os.path.basename(source)[:-2] + ('-static' if static else '')))
    flags = pkg_config(tree, '--cflags', '--libs')
    if static:
        # libarbiter.a, and its dependencies as shared libraries: a fully
        # static link needs every static library of czmq's own dependencies
        private = subprocess.check_output(['pkg-config', '--libs', 'msgpack', 'jansson'],
                                          text=True).split()
        flags = pkg_config(tree, '--cflags') + ['-Wl,-Bstatic', '-larbiter', '-Wl,-Bdynamic'] + [
            f for f in pkg_config(tree, '--libs') if f != '-larbiter'] + private + ['-pthread']
    proc = subprocess.run(['cc', '-o', out, source] + flags, capture_output=True,
                          text=True, env=tree['env'], timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_examples_build_out_of_tree_and_run(tree, tmp_path, processes):
    # the examples as a user has them, away from the source tree's headers
    examples = os.path.join(tree['prefix'], 'share', 'doc', 'arbiter', 'examples')
    minion = build(tree, tmp_path, os.path.join(examples, 'minion.c'))
    commander = build(tree, tmp_path, os.path.join(examples, 'commander.c'))
    needed = subprocess.check_output(['readelf', '-d', minion], text=True)
    assert 'Shared library: [libarbiter.so.1]' in needed
    endpoint = 'tcp://127.0.0.1:%d' % free_port()
    arbiterd = os.path.join(tree['prefix'], 'sbin', 'arbiterd')
    broker = Process([arbiterd, '--bind', endpoint, '--db', str(tmp_path / 'a.db')],
                     str(tmp_path / 'broker.log'))
    processes.append(broker)
    wait_until(lambda: 'broker: listening' in broker.output(), what='the broker listens')
    processes.append(Process([minion, '--broker', endpoint], str(tmp_path / 'minion.log'),
                             env=tree['env']))
    out = subprocess.run([commander, '--broker', endpoint, '--count', '5'], capture_output=True,
                         text=True, env=tree['env'], timeout=60)
    assert out.returncode == 0, out
    # linked with libarbiter.a: no libarbiter.so needed
    static = build(tree, tmp_path, os.path.join(examples, 'commander.c'), static=True)
    needed = subprocess.check_output(['readelf', '-d', static], text=True)
    assert 'libarbiter' not in needed
    out = subprocess.run([static, '--version'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith('commander '), out


def test_every_public_header_stands_alone(tree, tmp_path):
    headers = sorted(glob.glob(os.path.join(tree['prefix'], 'include', 'arbiter', '*.h')))
    assert len(headers) >= 8
    for header in headers:
        source = tmp_path / 'one.c'
        source.write_text('#include <arbiter/%s>\n#include "%s"\n' % (
            os.path.basename(header), os.path.basename(header)))
        proc = subprocess.run(['cc', '-std=c11', '-Wall', '-Wextra', '-Werror', '-pedantic',
                               '-fsyntax-only', '-I', os.path.join(tree['prefix'], 'include'),
                               str(source)] + pkg_config(tree, '--cflags'),
                              capture_output=True, text=True)
        assert proc.returncode == 0, (header, proc.stderr)


def test_the_library_exports_what_its_headers_declare(tree, tmp_path):
    headers = sorted(glob.glob(os.path.join(tree['prefix'], 'include', 'arbiter', '*.h')))
    source = tmp_path / 'all.c'
    source.write_text(''.join('#include "%s"\n' % os.path.basename(h) for h in headers))
    text = subprocess.check_output(['cc', '-E', '-P', str(source)] + pkg_config(tree, '--cflags'),
                                   text=True)
    # a function declaration: its name, then its arguments (typedefs of
    # function types read "(name) (", and are not matched)
    declared = set(re.findall(r'\b(arb_\w+) \(', text))
    assert 'arb_client_submit' in declared and 'arb_msg_submit' in declared
    nm = subprocess.check_output(['nm', '-D', '--defined-only',
                                  os.path.join(tree['libdir'], 'libarbiter.so.1')], text=True)
    exported = {line.split()[2].split('@')[0] for line in nm.splitlines()
                if len(line.split()) == 3 and line.split()[1] in 'TtDdBbRr'} - {'ARBITER_1'}
    assert exported == declared, ('exported, not declared: %s; declared, not exported: %s' % (
        sorted(exported - declared), sorted(declared - exported)))
    versions = subprocess.check_output(['objdump', '-T', os.path.join(tree['libdir'],
                                                                      'libarbiter.so.1')], text=True)
    assert re.search(r'ARBITER_1\s+arb_client_new', versions)


def test_installed_daemons_read_the_default_config(tree):
    prefix = tree['installed_prefix']
    etc = '/etc' if prefix == '/usr' else prefix + '/etc'
    out = subprocess.run([os.path.join(tree['prefix'], 'sbin', 'arbiterd'), '--help'],
                         capture_output=True, text=True)
    text = ' '.join(out.stdout.split())
    assert 'default: %s/arbiter/arbiterd.conf, if it exists' % etc in text
    assert '--db PATH the journal file (default /var/lib/arbiter/arbiter.db)' in text
    out = subprocess.run([os.path.join(tree['prefix'], 'sbin', 'arbiter-gateway'), '--help'],
                         capture_output=True, text=True)
    assert 'default: %s/arbiter/arbiter-gateway.conf' % etc in ' '.join(out.stdout.split())
    # without its file, --check-config says where it looked (a file put in
    # /etc/arbiter for a /usr/local install showed nothing wrong)
    for name, conf in (('arbiterd', 'arbiterd.conf'), ('arbiter-gateway', 'arbiter-gateway.conf')):
        path = '%s/arbiter/%s' % (etc, conf)
        if os.path.exists(path):
            continue  # this machine has one: it is read
        out = subprocess.run([os.path.join(tree['prefix'], 'sbin', name), '--check-config'],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith('# %s settings (no config file: %s does not exist)\n' % (
            name, path)), out.stdout
    # the binaries of build/ read no file unless told
    out = subprocess.run([binary('broker', 'arbiterd'), '--help'], capture_output=True, text=True)
    assert 'if it exists' not in out.stdout and './var/arbiter.db' in out.stdout
    # the man pages name the directory this build reads
    for page in ('man8/arbiterd.8', 'man8/arbiter-gateway.8'):
        text = open(os.path.join(tree['prefix'], 'share', 'man', page)).read().replace('\\&', '')
        named = set(re.findall(r'/[\w/.-]*/arbiter/arbiter[\w.-]*\.conf', text))
        assert named and all(path.startswith(etc + '/arbiter/') for path in named), named


def test_units_verify(tree, tmp_path):
    if not shutil.which('systemd-analyze'):
        pytest.skip('no systemd-analyze (Debian: systemd)')
    units = os.path.join(tree['prefix'], 'lib', 'systemd', 'system')
    prefix = tree['installed_prefix']
    for name in os.listdir(units):
        # the commands where this copy has them
        text = open(os.path.join(units, name)).read()
        text = re.sub(r'^(ExecStart=)%s/' % re.escape(prefix), r'\g<1>%s/' % tree['prefix'],
                      text, flags=re.M)
        (tmp_path / name).write_text(text)
    proc = subprocess.run(['systemd-analyze', 'verify', '--man=no', 'arbiterd.service',
                           'arbiter-gateway.service', 'arbiter-worker@images.service'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    broker = (tmp_path / 'arbiterd.service').read_text()
    for line in ['Type=notify', 'User=arbiter', 'StateDirectory=arbiter', 'WatchdogSec=30s',
                 'ProtectSystem=strict', 'NoNewPrivileges=yes']:
        assert '\n%s\n' % line in broker, line
    # a bad setting (exit status 2, as --check-config's) is not restarted
    # every RestartSec= for ever, one more error line in the journal each time
    for name in ('arbiterd.service', 'arbiter-gateway.service', 'arbiter-worker@.service'):
        text = (tmp_path / name).read_text()
        for line in ['Restart=on-failure', 'RestartPreventExitStatus=2']:
            assert '\n%s\n' % line in text, (name, line)
