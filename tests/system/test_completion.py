"""Shell completion of arbiter (dist/completion/): bash loads it and
completes commands, verbs and options as the tool's --help has them;
zsh's completion function gives the same candidates (compadd stubbed, as
zsh itself filters them by what is typed)."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, binary

BASH = os.path.join(ROOT, 'dist', 'completion', 'arbiter.bash')
ZSH = os.path.join(ROOT, 'dist', 'completion', '_arbiter')


def env():
    return dict(os.environ, PATH=os.path.dirname(binary('client', 'arbiter')) + ':' +
                os.environ.get('PATH', '/usr/bin:/bin'))


def bash(*words):
    """What bash's completion offers for the command line words (the last
    is the word being completed)."""
    script = ('source %s\n'
              'complete -p arbiter >/dev/null || exit 9\n'
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
              '_arbiter\n'
              'printf "%%s\\n" "${COMPREPLY[@]}"\n' % BASH)
    out = subprocess.run(['bash', '-c', script, 'bash'] + list(words), capture_output=True,
                         text=True, env=env(), timeout=60)
    assert out.returncode == 0, out.stderr
    return sorted(line for line in out.stdout.splitlines() if line)


def test_bash():
    assert bash('arbiter', 'su') == ['submit']
    assert bash('arbiter', 'st') == ['stats', 'status']
    assert 'schedule' in bash('arbiter', '')
    assert bash('arbiter', '--broker', 'tcp://127.0.0.1:1', 'que') == ['queue']
    assert bash('arbiter', 'queue', '') == ['declare', 'delete', 'pause', 'purge', 'resume', 'set',
                                            'show']
    assert bash('arbiter', 'schedule', '') == ['add', 'list', 'pause', 'remove', 'resume']
    assert bash('arbiter', 'dag', 's') == ['status', 'submit']
    assert bash('arbiter', 'submit', '--re') == ['--retention', '--retries']
    assert bash('arbiter', 'submit', '--queue', 'q', '--wa') == ['--watch']
    assert bash('arbiter', 'submit', '--queue', '') == []  # a value: anything
    assert bash('arbiter', 'dag', 'wait', '--t') == ['--timeout']
    assert bash('arbiter', 'peek', '-') == ['--broker', '--broker-key', '--cert', '--help',
                                            '--json', '--rpc-timeout', '--version', '-h', '-n']
    # authentication (arbiter keygen, --cert, --broker-key)
    assert bash('arbiter', 'ke') == ['keygen']
    assert bash('arbiter', 'keygen', 'alice', '--') == sorted([
        '--broker', '--broker-key', '--cert', '--dir', '--help', '--json', '--role',
        '--rpc-timeout', '--version'])
    assert bash('arbiter', '--cert', '') == []  # a file name
    assert bash('arbiter', '--cert', 'a.cert_secret', '--broker-key', 'k', 'sub') == ['submit']
    assert bash('arbiter', '--js') == ['--json']


def test_zsh():
    if not shutil.which('zsh'):
        pytest.skip('no zsh')
    script = ('compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }\n'
              '_files() { print -r -- "(files)"; }\n'
              'source <(sed \'$d\' %s)\n'
              'words=("$@"); CURRENT=$#\n'
              '_arbiter\n' % ZSH)

    def zsh(*words):
        out = subprocess.run(['zsh', '-c', script, 'zsh'] + list(words), capture_output=True,
                             text=True, env=env(), timeout=60)
        assert out.returncode == 0, out.stderr
        return sorted(line for line in out.stdout.splitlines() if line)

    assert 'submit' in zsh('arbiter', 'su') and 'schedule' in zsh('arbiter', 'su')
    assert zsh('arbiter', '--broker', 'tcp://127.0.0.1:1', 'queue', '') == [
        'declare', 'delete', 'pause', 'purge', 'resume', 'set', 'show']
    assert '--watch' in zsh('arbiter', 'submit', '--w')
    assert zsh('arbiter', 'submit', '--queue', '') == ['(files)']
    assert zsh('arbiter', 'dag', 'wait', '--') == ['--broker', '--broker-key', '--cert',
                                                    '--help', '--json', '--rpc-timeout',
                                                    '--timeout', '--version', '-h']
    assert 'keygen' in zsh('arbiter', 'ke')
    assert '--role' in zsh('arbiter', 'keygen', 'alice', '--')
    assert zsh('arbiter', '--cert', '') == ['(files)']
    out = subprocess.run(['zsh', '-n', ZSH], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
