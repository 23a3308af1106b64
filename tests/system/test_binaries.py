"""Every binary answers --version, and -h as well as --help (the arbiter
CLI's commands and verbs: test_cli_options.py)."""

import re
import subprocess

from conftest import binary

BINARIES = [('broker', 'arbiterd'), ('worker', 'arbiter-worker'), ('client', 'arbiter'),
            ('gateway', 'arbiter-gateway'), ('tools', 'arbiter-bench'),
            ('tools', 'arbiter-peers'), ('tools', 'arbiter-kestrel-bench'),
            ('tools', 'arbiter-amqp-bench'), ('examples', 'commander'), ('examples', 'minion')]


def test_version_and_help_everywhere():
    for folder, name in BINARIES:
        path = binary(folder, name)
        proc = subprocess.run([path, '--version'], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)
        assert proc.returncode == 0, (name, proc.stderr)
        assert re.fullmatch(rb'%s \d+\.\d+\.\d+ \(protocol 1\)\n' % name.encode(),
                            proc.stdout), (name, proc.stdout)
        for flag in ('-h', '--help'):
            proc = subprocess.run([path, flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=30)
            assert proc.returncode == 0, (name, flag, proc.stderr)
            assert proc.stdout.startswith(b'usage: ' + name.encode()), (name, flag)
            assert re.search(rb'--version', proc.stdout), (name, flag)
