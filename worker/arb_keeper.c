/*  arb_keeper.c — a process group's keeper (see arb_keeper.h).

    Called from a light slot's pool thread (arb_exec.c) or the run thread
    (heavy slots); the keeper is a fork of that process which never execs
    and ends only by SIGKILL, so it runs neither atexit handlers nor the
    sanitizers' leak check.
*/

#include "arb_keeper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_DEATH_SIG SIGHUP  //  the keeper's parent-death signal

static void s_keeper (pid_t parent) __attribute__ ((noreturn));

//  The keeper's life. Only async-signal-safe calls: the parent may have
//  other threads, holding locks this copy of them will never release.
static void
s_keeper (pid_t parent)
{
    setpgid (0, 0);
    //  no copy of the worker's descriptors (another slot's pipes, the
    //  broker's connection) may outlive the worker's own
    close_range (0, ~0U, 0);
    sigset_t death;
    sigemptyset (&death);
    sigaddset (&death, S_DEATH_SIG);
    prctl (PR_SET_PDEATHSIG, S_DEATH_SIG);
    //  the worker may have died before prctl; and the signal also comes
    //  when only the forking thread ended (a sibling thread is the parent
    //  now, with the same pid), or when someone else sent it
    while (getppid () == parent)
        sigwaitinfo (&death, NULL);
    kill (0, SIGKILL);
    _exit (1);  //  not reached: SIGKILL cannot be blocked
}

pid_t
arb_keeper_new (void)
{
    pid_t parent = getpid ();
    //  the keeper starts with every signal blocked, so that nothing the
    //  group is sent (a cancel's SIGTERM) runs this process's handlers or
    //  ends it before it is armed
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    pid_t pid = fork ();
    if (pid == 0)
        s_keeper (parent);
    int saved = errno;
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    errno = saved;
    //  the keeper does the same; doing it here too means the group exists
    //  before the task's process is put in it
    if (pid > 0)
        setpgid (pid, pid);
    return pid;
}

void
arb_keeper_destroy (pid_t *keeper_p)
{
    pid_t keeper = *keeper_p;
    *keeper_p = 0;
    if (keeper <= 0)
        return;
    kill (-keeper, SIGKILL);
    while (waitpid (keeper, NULL, 0) < 0 && errno == EINTR)
        ;
}
