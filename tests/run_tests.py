#!/usr/bin/python3
"""Runs every test of the given build variants and ends with one summary line.

    tests/run_tests.py build [build/asan] [--pytest-args='-k crash']

Each fuzz target briefly; for each variant, every cmocka binary under
<variant>/tests/unit; then the pytest system tests in tests/system with
ARBITER_BUILD=<variant>, so they start that variant's binaries, the
variants side by side (--serial: one after the other). Exit status 0 only
if everything passed.
"""

import argparse
import glob
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sanitizer_env(variant):
    env = dict(os.environ)
    if 'asan' in variant:
        env['ASAN_OPTIONS'] = 'detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86'
        env['UBSAN_OPTIONS'] = 'halt_on_error=1:print_stacktrace=1'
        env['LSAN_OPTIONS'] = 'suppressions=%s' % os.path.join(ROOT, 'tests', 'lsan.supp')
    return env


def run_units(variant, results):
    for binary in sorted(glob.glob(os.path.join(ROOT, variant, 'tests', 'unit', 'test_*'))):
        if binary.endswith('.o') or not os.access(binary, os.X_OK):
            continue
        name = '%s:%s' % (variant, os.path.basename(binary))
        started = time.time()
        proc = subprocess.run([binary], env=sanitizer_env(variant), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
        ok = proc.returncode == 0
        if not ok:
            sys.stdout.write(proc.stdout)
        print('%-48s %s (%.1fs)' % (name, 'ok' if ok else 'FAILED', time.time() - started),
              flush=True)
        results.append((name, ok))


def system_cmd(variant, pytest_args):
    env = sanitizer_env(variant)
    env['ARBITER_BUILD'] = os.path.join(ROOT, variant)
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--color=no',
           '--durations=20', os.path.join(ROOT, 'tests', 'system')] + shlex.split(pytest_args or '')
    return cmd, env


def run_system(variants, pytest_args, results, serial):
    """The system tests of each variant; of all variants at once unless
    serial. They spend most of their time waiting on the processes they
    start, so two suites side by side take little more than the longer one;
    each writes to a file of its own, printed whole when it ends."""
    if not glob.glob(os.path.join(ROOT, 'tests', 'system', 'test_*.py')):
        return
    import tempfile
    running, took = [], {}
    for variant in variants:
        cmd, env = system_cmd(variant, pytest_args)
        log = tempfile.TemporaryFile(mode='w+')
        started = time.time()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        running.append((variant, proc, log, started))
        if serial:
            proc.wait()
            took[variant] = time.time() - started
    while len(took) < len(running):  # each suite's own time, side by side
        for variant, proc, log, started in running:
            if variant not in took and proc.poll() is not None:
                took[variant] = time.time() - started
        time.sleep(0.2)
    for variant, proc, log, started in running:
        log.seek(0)
        sys.stdout.write(log.read())
        log.close()
        name = '%s:system' % variant
        ok = proc.returncode == 0
        print('%-48s %s (%.1fs)' % (name, 'ok' if ok else 'FAILED', took[variant]), flush=True)
        results.append((name, ok))


def run_fuzz(seconds, results):
    """Each fuzz target for a bounded time, from a copy of its own seed
    corpus: tests/fuzz/corpus/<target name without fuzz_>."""
    import shutil
    import tempfile
    for target in sorted(glob.glob(os.path.join(ROOT, 'build', 'fuzz', 'fuzz_*'))):
        if target.endswith('.o') or not os.access(target, os.X_OK):
            continue
        work = tempfile.mkdtemp(prefix='arbiter-fuzz-')
        corpus = os.path.join(work, 'corpus')
        seeds = os.path.basename(target)[len('fuzz_'):]
        shutil.copytree(os.path.join(ROOT, 'tests', 'fuzz', 'corpus', seeds), corpus)
        started = time.time()
        proc = subprocess.run([target, '-max_total_time=%d' % seconds, '-timeout=10',
                               '-artifact_prefix=%s/' % work, corpus], cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ok = proc.returncode == 0
        if ok:
            shutil.rmtree(work)
        else:
            sys.stdout.write(proc.stdout[-6000:])
            print('fuzz artifacts kept in %s' % work)
        name = 'fuzz:%s' % os.path.basename(target)
        print('%-48s %s (%.1fs)' % (name, 'ok' if ok else 'FAILED', time.time() - started),
              flush=True)
        results.append((name, ok))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('variants', nargs='+')
    parser.add_argument('--pytest-args', default='')
    parser.add_argument('--fuzz-seconds', type=int, default=10)
    parser.add_argument('--serial', action='store_true',
                        help="the variants' system tests one after the other")
    args = parser.parse_args()
    results = []
    if args.fuzz_seconds > 0:
        run_fuzz(args.fuzz_seconds, results)
    for variant in args.variants:
        run_units(variant, results)
    run_system(args.variants, args.pytest_args, results, args.serial)
    failed = [name for name, ok in results if not ok]
    print('tests: %d suites, %d passed, %d failed%s' % (
        len(results), len(results) - len(failed), len(failed),
        (' (' + ', '.join(failed) + ')') if failed else ''))
    return 1 if failed or not results else 0


if __name__ == '__main__':
    sys.exit(main())
