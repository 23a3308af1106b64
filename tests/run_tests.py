#!/usr/bin/python3
"""Runs every test of the given build variants and ends with one summary line.

    tests/run_tests.py build [build/asan] [--pytest-args='-k crash'] [--workers N]

Each fuzz target briefly, beside every variant's cmocka binaries under
<variant>/tests/unit, four binaries at a time; then the pytest system
tests in tests/system with ARBITER_BUILD=<variant>, so they start that
variant's binaries, the variants side by side (--serial: one after the
other, the fuzz before the unit binaries and these one at a time), each
variant's files spread over --workers processes (2 by default;
pytest-xdist). Exit status 0 only if everything passed.
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


def unit_one(variant, binary):
    """One unit test binary. Returns (name, ok, report)."""
    name = '%s:%s' % (variant, os.path.basename(binary))
    started = time.time()
    proc = subprocess.run([binary], env=sanitizer_env(variant), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    ok = proc.returncode == 0
    report = '' if ok else proc.stdout
    report += '%-48s %s (%.1fs)\n' % (name, 'ok' if ok else 'FAILED', time.time() - started)
    return name, ok, report


# The unit binaries that take longest (sanitized, alone, on the 2-core
# machine of 2026-12-06: 22, 21, 20, 10 and 7 s; the others under 3).
UNITS_LONG_FIRST = ['test_worker', 'test_link', 'test_journal_log', 'test_broker', 'test_journal']


def run_units(variants, results, workers):
    """Every variant's unit test binaries, workers at a time: the longest
    wait on timers more than they compute (test_link, test_worker: 20 s
    each, under a second of CPU), so four at once on two cores take little
    more than the longest (both variants: 89 s two at a time, 51 s four at
    a time, on the 2-core machine of 2026-12-05). Each binary's report is
    printed whole when it ends."""
    from concurrent.futures import ThreadPoolExecutor
    binaries = [(variant, binary) for variant in variants
                for binary in sorted(glob.glob(os.path.join(ROOT, variant, 'tests', 'unit',
                                                            'test_*')))
                if not binary.endswith('.o') and os.access(binary, os.X_OK)]
    # the long ones first, the sanitized variant's before the plain one's,
    # so that none of them starts last and ends the phase alone
    rank = {name: i for i, name in enumerate(UNITS_LONG_FIRST)}
    binaries.sort(key=lambda vb: (rank.get(os.path.basename(vb[1]), len(rank)),
                                  'asan' not in vb[0]))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, ok, report in pool.map(lambda vb: unit_one(*vb), binaries):
            sys.stdout.write(report)
            sys.stdout.flush()
            results.append((name, ok))


def has_xdist():
    try:
        import xdist  # noqa: F401 (Debian's python3-pytest-xdist)
        return True
    except ImportError:
        return False


def system_cmd(variant, pytest_args, workers):
    """The pytest command of one variant's system tests. With workers > 1,
    pytest-xdist spreads them over that many processes, a file to a process
    (--dist loadfile), so that a module's fixtures (one rabbitmq-server,
    one soak) are still set up once: the tests spend two thirds of their
    time waiting on the processes they start, and the machine has cores to
    spare for a second file meanwhile."""
    env = sanitizer_env(variant)
    env['ARBITER_BUILD'] = os.path.join(ROOT, variant)
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--color=no',
           '--durations=20']
    if workers > 1:
        cmd += ['-n', str(workers), '--dist', 'loadfile']
    cmd += [os.path.join(ROOT, 'tests', 'system')] + shlex.split(pytest_args or '')
    return cmd, env


def run_system(variants, pytest_args, results, serial, workers):
    """The system tests of each variant; of all variants at once unless
    serial. They spend most of their time waiting on the processes they
    start, so two suites side by side take little more than the longer one;
    each writes to a file of its own, printed whole when it ends."""
    if not glob.glob(os.path.join(ROOT, 'tests', 'system', 'test_*.py')):
        return
    if workers > 1 and not has_xdist():
        print('tests: pytest-xdist is not installed (python3-pytest-xdist): '
              'each variant in one process')
        workers = 1
    import tempfile
    running, took = [], {}
    for variant in variants:
        cmd, env = system_cmd(variant, pytest_args, workers)
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


def fuzz_one(target, seconds):
    """One fuzz target for a bounded time, from a copy of its own seed
    corpus: tests/fuzz/corpus/<target name without fuzz_>. Returns
    (name, ok, report)."""
    import shutil
    import tempfile
    work = tempfile.mkdtemp(prefix='arbiter-fuzz-')
    corpus = os.path.join(work, 'corpus')
    seeds = os.path.basename(target)[len('fuzz_'):]
    shutil.copytree(os.path.join(ROOT, 'tests', 'fuzz', 'corpus', seeds), corpus)
    started = time.time()
    proc = subprocess.run([target, '-max_total_time=%d' % seconds, '-timeout=10',
                           '-artifact_prefix=%s/' % work, corpus], cwd=work,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = proc.returncode == 0
    report = ''
    if ok:
        shutil.rmtree(work)
    else:
        report = proc.stdout[-6000:] + 'fuzz artifacts kept in %s\n' % work
    name = 'fuzz:%s' % os.path.basename(target)
    report += '%-48s %s (%.1fs)\n' % (name, 'ok' if ok else 'FAILED', time.time() - started)
    return name, ok, report


def run_fuzz(seconds, results):
    """Each fuzz target for a bounded time, as many at once as there are
    cores (each is one busy process)."""
    from concurrent.futures import ThreadPoolExecutor
    targets = [t for t in sorted(glob.glob(os.path.join(ROOT, 'build', 'fuzz', 'fuzz_*')))
               if not t.endswith('.o') and os.access(t, os.X_OK)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for name, ok, report in pool.map(lambda t: fuzz_one(t, seconds), targets):
            sys.stdout.write(report)
            sys.stdout.flush()
            results.append((name, ok))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('variants', nargs='+')
    parser.add_argument('--pytest-args', default='')
    parser.add_argument('--fuzz-seconds', type=int, default=4)
    parser.add_argument('--serial', action='store_true',
                        help="the variants' system tests one after the other")
    # two a variant: three were faster (both variants side by side on
    # 2026-12-07, the machine otherwise idle: 491 and 528 s with three,
    # 640 and 652 s with two) but the load made timing-bound tests fail
    # more often (two of them in a quiet CI run of three)
    parser.add_argument('--workers', type=int, default=2,
                        help="processes for each variant's system tests (pytest-xdist, "
                        'a file to a process; 1: one process)')
    args = parser.parse_args()
    results = []
    # the fuzz targets keep both cores busy and the unit tests mostly wait
    # on timers: side by side, unless --serial (both variants' units and
    # the 11 targets: 95 to 98 s one after the other, 64 to 66 s side by
    # side, on the 2-core machine of 2026-12-05)
    import threading

    def fuzz_all():
        try:
            run_fuzz(args.fuzz_seconds, results)
        except Exception as e:  # a run that could not even start fails the run
            print('fuzz: %s' % e, flush=True)
            results.append(('fuzz', False))
    fuzz = threading.Thread(target=fuzz_all)
    if args.fuzz_seconds > 0:
        fuzz.start()
        if args.serial:
            fuzz.join()
    run_units(args.variants, results, 1 if args.serial else 4)
    if fuzz.is_alive():
        fuzz.join()
    run_system(args.variants, args.pytest_args, results, args.serial, args.workers)
    failed = [name for name, ok in results if not ok]
    print('tests: %d suites, %d passed, %d failed%s' % (
        len(results), len(results) - len(failed), len(failed),
        (' (' + ', '.join(failed) + ')') if failed else ''))
    return 1 if failed or not results else 0


if __name__ == '__main__':
    sys.exit(main())
