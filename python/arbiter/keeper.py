"""A keeper: a small process that leads a task's process group and takes
the whole group down when the worker dies (a port of worker/arb_keeper.c).

A process slot's child runs in a process group that the worker signals on a
stop and SIGKILLs once the child has exited. When the worker itself dies
(kill -9, a crash, the OOM killer) nobody does that, and the task would run
on beside the same task given to another worker. PR_SET_PDEATHSIG on the
child alone would not do: it reaches that one process, not what it started
(a subprocess), and it fires when the forking *thread* exits.

So the group is led by a keeper, forked before the child: it holds no
descriptor, blocks every signal and waits for SIGHUP, its parent-death
signal, which the kernel sends whenever it changes parent. It then checks
whether its parent is still the worker (the pid saved before the fork);
once it is not, it SIGKILLs its whole group, itself included. It checks
once right after arming the signal too, so a worker that died before then
is caught. It sits out what the group is sent (SIGTERM, SIGUSR1: blocked)
and dies with the group's SIGKILL, keeping the group id reserved meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
DEATH_SIG = signal.SIGHUP

_libc = ctypes.CDLL(None, use_errno=True)

__all__ = ['keeper_new', 'keeper_end']


def keeper_new() -> int:
    """Forks a keeper that leads a new process group, whose id is its pid;
    the group exists when this returns. Returns the pid; raises OSError."""
    parent = os.getpid()
    # the keeper starts with every signal blocked, so that nothing the group
    # is sent runs the worker's handlers in it or ends it before it is armed
    old = signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            _keeper(parent)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    # the keeper does the same; doing it here too means the group exists
    # before the task's process is put in it
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    return pid


def _keeper(parent: int) -> None:
    """The keeper's life; it never returns into the worker's code."""
    try:
        os.setpgid(0, 0)
        # no copy of the worker's descriptors (the broker's connection,
        # other slots' pipes) may outlive the worker's own
        os.closerange(0, os.sysconf('SC_OPEN_MAX'))
        _libc.prctl(PR_SET_PDEATHSIG, int(DEATH_SIG), 0, 0, 0)
        # the worker may have died before prctl; and the signal also comes
        # when only the forking thread ended, or when someone else sent it
        while os.getppid() == parent:
            signal.sigwaitinfo({DEATH_SIG})
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(1)


def keeper_end(keeper: int) -> None:
    """SIGKILLs the keeper's group (the keeper, and whatever the task left
    in it) and reaps the keeper. Call it once the task's own process has
    exited. A keeper of 0 is none."""
    if keeper <= 0:
        return
    try:
        os.killpg(keeper, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(keeper, 0)
    except ChildProcessError:
        pass
