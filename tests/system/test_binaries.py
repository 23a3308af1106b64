"""Every binary, and every tool written in Python (tools/arbiter-bench-run,
tools/arbiter-soak, tools/arbiter-amqp-soak), answers --version with the same line, and -h as well
as --help (the arbiter CLI's commands and verbs: test_cli_options.py)."""

import os
import re
import subprocess
import sys

from conftest import binary

BINARIES = [('broker', 'arbiterd'), ('worker', 'arbiter-worker'), ('client', 'arbiter'),
            ('gateway', 'arbiter-gateway'), ('tools', 'arbiter-bench'),
            ('tools', 'arbiter-peers'), ('tools', 'arbiter-kestrel-bench'),
            ('tools', 'arbiter-amqp-bench'), ('examples', 'commander'), ('examples', 'minion')]


# the tools written in Python, run from the source tree
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = ['arbiter-bench-run', 'arbiter-soak', 'arbiter-amqp-soak']


def commands():
    """(name, argv before the flag) of every binary and script."""
    for folder, name in BINARIES:
        yield name, [binary(folder, name)]
    for name in SCRIPTS:
        yield name, [sys.executable, os.path.join(ROOT, 'tools', name)]


def test_version_and_help_everywhere():
    for name, command in commands():
        proc = subprocess.run(command + ['--version'], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)
        assert proc.returncode == 0, (name, proc.stderr)
        assert re.fullmatch(rb'%s \d+\.\d+\.\d+ \(protocol 1\)\n' % name.encode(),
                            proc.stdout), (name, proc.stdout)
        for flag in ('-h', '--help'):
            proc = subprocess.run(command + [flag], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=30)
            assert proc.returncode == 0, (name, flag, proc.stderr)
            assert proc.stdout.startswith(b'usage: ' + name.encode()), (name, flag)
            assert re.search(rb'--version', proc.stdout), (name, flag)


def test_help_says_which_options_are_not_config_keys():
    """The daemons' and the worker's --help say every option is a key of
    the config file: all but the four of the command line alone, which a
    file refuses ('not a setting'), and which --help lists apart."""
    for folder, name in [('broker', 'arbiterd'), ('worker', 'arbiter-worker'),
                         ('gateway', 'arbiter-gateway')]:
        text = subprocess.run([binary(folder, name), '--help'], capture_output=True, text=True,
                              timeout=30).stdout
        keys, alone = text.split('\nOn the command line only:\n')
        assert 'also a key of the config file' in keys
        for flag in ('--config FILE', '--check-config', '--help', '--version'):
            assert flag in alone and flag not in keys, (name, flag)
