"""A worker written with the Python package, for the system tests:

    python_worker_app.py ENDPOINT [--mode thread|process] [--slots N]
                         [--queue Q]... [--name NAME] [--drain S] [--grace S]

Its handlers note each start in $RUNS/<task id> (so a test counts runs),
and their pid in $RUNS/<task id>.pid."""

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time

from arbiter import Fail, Worker

parser = argparse.ArgumentParser()
parser.add_argument('endpoint')
parser.add_argument('--mode', default='thread')
parser.add_argument('--slots', type=int, default=2)
parser.add_argument('--queue', action='append')
parser.add_argument('--name')
parser.add_argument('--drain', type=float, default=30.0)
parser.add_argument('--grace', type=float, default=1.0)
opts = parser.parse_args()
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format='%(asctime)s %(name)s %(levelname)s %(message)s')

worker = Worker(queues=opts.queue or ['default'], endpoint=opts.endpoint, slots=opts.slots,
                mode=opts.mode, drain=opts.drain, grace=opts.grace, name=opts.name)
RUNS = os.environ['RUNS']


def note(job):
    with open(os.path.join(RUNS, str(job.id)), 'a') as f:
        f.write('%d %d\n' % (job.attempt, os.getpid()))
    with open(os.path.join(RUNS, '%d.pid' % job.id), 'w') as f:
        f.write('%d\n' % os.getpid())


@worker.task('upper')
def upper(job):
    note(job)
    return job.payload.upper()


@worker.task('aupper')
async def aupper(job):
    """An asyncio handler: awaits, emits nothing, returns."""
    note(job)
    await asyncio.sleep(0.01)
    return job.payload.upper()


@worker.task('afail')
async def afail(job):
    note(job)
    await asyncio.sleep(0)
    raise Fail('async broke: ' + job.payload.decode())


@worker.task('fail')
def fail(job):
    note(job)
    raise Fail('it broke: ' + job.payload.decode())


@worker.task('crash')
def crash(job):
    note(job)
    return {}['missing']


@worker.task('sleep')
def sleep(job):
    """Sleeps payload seconds; a thread slot returns early when cancelled."""
    note(job)
    deadline = time.monotonic() + float(job.payload or b'1')
    while time.monotonic() < deadline:
        if job.cancelled:
            return 'cancelled'
        time.sleep(0.02)
    return 'slept'


@worker.task('nap')
def nap(job):
    """Sleeps payload seconds, then notes its end in $RUNS/<task id>.end."""
    note(job)
    time.sleep(float(job.payload or b'1'))
    with open(os.path.join(RUNS, '%d.end' % job.id), 'a') as f:
        f.write('%d\n' % os.getpid())
    return 'napped'


@worker.task('orphan')
def orphan(job):
    """Runs a shell that starts a sleep (the task's grandchild): each notes
    its pid in $RUNS/<task id>.sh and .sleep, the shell its start and end
    in $RUNS/<task id>.log."""
    note(job)
    script = ('echo $$ > "$1.sh"; echo start >> "$1.log"; sleep 5 & echo $! > "$1.sleep"; '
              'wait $!; echo end >> "$1.log"')
    subprocess.run(['sh', '-c', script, 'orphan', os.path.join(RUNS, str(job.id))], check=True)
    return 'ended'


@worker.task('soft')
def soft(job):
    """Works until its soft timeout warns it, then wraps up."""
    note(job)
    started = time.monotonic()
    while not job.soft_timed_out:
        if time.monotonic() - started > 20:
            raise Fail('no soft timeout came')
        time.sleep(0.01)
    return 'wrapped up after %.1f s' % (time.monotonic() - started)


@worker.task('route')
def route(job):
    note(job)
    job.emit('routed', b'from ' + job.payload, name='upper')
    return 'routed'


@worker.task('join')
def join(job):
    note(job)
    return b'+'.join(p.result for p in job.parents) + b'|' + job.args


@worker.task('big')
def big(job):
    note(job)
    return b'x' * int(job.payload)


@worker.task('info')
def info(job):
    note(job)
    return '%s|%s|%d|%s' % (job.name, job.queue, job.attempt, job.in_process)


worker.run()
