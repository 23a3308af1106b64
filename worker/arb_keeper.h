/*  arb_keeper.h — a keeper: a small process that leads a task's process
    group and takes the whole group down when the worker dies.

    A worker runs each task's processes (a light slot's command, a heavy
    slot's child and its command) in a process group of their own, which
    the worker signals on a cancel or a stop and SIGKILLs once the task's
    process has exited. When the worker itself dies (kill -9, a crash, the
    OOM killer) nobody does that: the task would run on while the broker
    gives the lost lease's task to another worker, the same task twice at
    the same time. PR_SET_PDEATHSIG on the task's process alone is not
    enough: it reaches that one process, not what it started (a shell's
    `sleep`), and it fires when the *thread* that forked exits, not the
    process.

    So the group is led by a keeper, forked before anything of the task
    exists: it holds no descriptor, blocks every signal, and waits for
    SIGHUP, its parent-death signal. The kernel sends it each time the
    keeper changes parent (the forking thread ended: a sibling thread
    becomes the parent; the whole worker ended: init or a subreaper does).
    It then checks whether its parent is still the worker (getppid against
    the pid saved before the fork); once it is not, it SIGKILLs its whole
    group, itself included. It checks once right after arming the signal
    too, so a worker that died before then is caught. A task process put
    in the group after arb_keeper_new returns is therefore covered from its
    first instruction, and so is everything it starts in the group.

    The keeper sits out what the group is sent (a cancel's SIGTERM, a soft
    timeout's SIGUSR1: blocked, never acted on) and dies with the group's
    SIGKILL; while it lives, it keeps the group id reserved. A hung or
    stopped (SIGSTOP) worker is not dead: its tasks run on.
*/

#ifndef ARB_KEEPER_H
#define ARB_KEEPER_H

#include <sys/types.h>

//  Forks a keeper that leads a new process group, whose id is the
//  keeper's pid; the group exists when this returns. The child makes only
//  async-signal-safe calls, so any thread of a multithreaded process may
//  call this. Returns the keeper's pid, or -1 with errno set.
pid_t arb_keeper_new (void);

//  SIGKILLs the keeper's group (the keeper, and whatever the task left
//  in it) and reaps the keeper. Call it once the task's own process has
//  exited. Accepts a pid of 0 (no keeper); sets *keeper_p to 0.
void arb_keeper_destroy (pid_t *keeper_p);

#endif
