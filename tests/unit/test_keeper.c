/*  test_keeper.c — arb_keeper: a process group led by a keeper dies, to
    its last grandchild, when the process that made the keeper is killed
    with SIGKILL; it does not when only the thread that made it ends, nor
    on the SIGTERM a cancel sends the group; arb_keeper_destroy kills the
    group and reaps the keeper.

    The test process is a child subreaper, so that a dead "worker"'s
    orphans come to it: it reaps them and sees how they died. Waiting is
    polling with a deadline.
*/

#include "arb_keeper.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

extern char **environ;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = {0, (long) ms * 1000000L};
    nanosleep (&ts, NULL);
}

//  Spawns /bin/sh -c script in group pgid, stdout to out_fd. Returns its pid.
static pid_t
s_spawn (const char *script, pid_t pgid, int out_fd)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2 (&actions, out_fd, STDOUT_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    posix_spawnattr_setpgroup (&attr, pgid);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP);
    char *argv[] = {"/bin/sh", "-c", (char *) script, NULL};
    pid_t pid = -1;
    int rc = posix_spawn (&pid, "/bin/sh", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    return rc == 0 ? pid : -1;
}

//  Reaps pid within ms; returns its status, or -1 if it did not end.
static int
s_reap (pid_t pid, int ms)
{
    for (int64_t end = s_now_ms () + ms; s_now_ms () < end; s_sleep_ms (10)) {
        int status;
        pid_t got = waitpid (pid, &status, WNOHANG);
        if (got == pid)
            return status;
        assert_int_equal (got, 0);
    }
    return -1;
}

//  Whether pid, a child of ours, still runs: it does not end within ms.
static bool
s_still_runs (pid_t pid, int ms)
{
    for (int64_t end = s_now_ms () + ms; s_now_ms () < end; s_sleep_ms (10)) {
        int status;
        if (waitpid (pid, &status, WNOHANG) != 0)
            return false;
    }
    return true;
}

static void
s_assert_killed (int status)
{
    assert_true (status != -1);
    assert_true (WIFSIGNALED (status));
    assert_int_equal (WTERMSIG (status), SIGKILL);
}

//  A "worker": makes a keeper, starts a shell in its group, tells out_fd
//  "keeper shell" (the shell writes its own pid), and waits to be killed.
static void s_worker (int out_fd) __attribute__ ((noreturn));

static void
s_worker (int out_fd)
{
    pid_t keeper = arb_keeper_new ();
    if (keeper <= 0)
        _exit (1);
    char line[64];
    int len = snprintf (line, sizeof (line), "%d ", (int) keeper);
    if (write (out_fd, line, (size_t) len) != len)
        _exit (1);
    s_spawn ("echo $$; exec >&-; exec sleep 30", keeper, out_fd);
    while (true)
        pause ();
}

static void
test_group_dies_with_the_worker (void **state)
{
    (void) state;
    int fds[2];
    assert_int_equal (pipe (fds), 0);
    pid_t worker = fork ();
    assert_true (worker >= 0);
    if (worker == 0) {
        close (fds[0]);
        s_worker (fds[1]);
    }
    close (fds[1]);
    FILE *in = fdopen (fds[0], "r");
    int keeper = 0, shell = 0;
    assert_int_equal (fscanf (in, "%d %d", &keeper, &shell), 2);
    fclose (in);
    assert_true (keeper > 0 && shell > 0);
    kill (worker, SIGKILL);
    s_assert_killed (s_reap (worker, 5000));
    //  their parent gone, keeper and shell are ours (a subreaper) now, and
    //  killed
    s_assert_killed (s_reap ((pid_t) keeper, 5000));
    s_assert_killed (s_reap ((pid_t) shell, 5000));
    assert_int_equal (kill ((pid_t) -keeper, 0), -1);
    assert_int_equal (errno, ESRCH);
}

static void
test_grandchildren_die_with_the_worker (void **state)
{
    (void) state;
    //  the shell's own child, a sleep: killed too
    int fds[2];
    assert_int_equal (pipe (fds), 0);
    pid_t worker = fork ();
    assert_true (worker >= 0);
    if (worker == 0) {
        close (fds[0]);
        pid_t keeper = arb_keeper_new ();
        if (keeper <= 0)
            _exit (1);
        s_spawn ("sleep 30 & echo $!; exec >&-; wait", keeper, fds[1]);
        while (true)
            pause ();
    }
    close (fds[1]);
    FILE *in = fdopen (fds[0], "r");
    int sleeper = 0;
    assert_int_equal (fscanf (in, "%d", &sleeper), 1);
    fclose (in);
    kill (worker, SIGKILL);
    s_assert_killed (s_reap (worker, 5000));
    //  the keeper and the shell are reaped as they come, whatever their
    //  order; the sleep must be among the dead
    bool sleep_killed = false;
    for (int64_t end = s_now_ms () + 5000; !sleep_killed && s_now_ms () < end; s_sleep_ms (10)) {
        int status;
        pid_t got;
        while ((got = waitpid (-1, &status, WNOHANG)) > 0)
            if (got == (pid_t) sleeper) {
                s_assert_killed (status);
                sleep_killed = true;
            }
    }
    assert_true (sleep_killed);
    while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
}

static void *
s_thread (void *arg)
{
    pid_t *keeper = (pid_t *) arg;
    *keeper = arb_keeper_new ();
    return NULL;
}

static void
test_thread_exit_and_sigterm_are_not_death (void **state)
{
    (void) state;
    //  made by a thread that then ends: the parent-death signal comes,
    //  but the parent process is the same
    pid_t keeper = 0;
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_thread, &keeper), 0);
    pthread_join (thread, NULL);
    assert_true (keeper > 0);
    pid_t sleeper = s_spawn ("exec sleep 30", keeper, -1);
    assert_true (sleeper > 0);
    assert_true (s_still_runs (sleeper, 300));
    assert_true (s_still_runs (keeper, 0));
    //  a cancel's SIGTERM ends the command, not the keeper
    kill (-keeper, SIGTERM);
    int status = s_reap (sleeper, 5000);
    assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM);
    assert_true (s_still_runs (keeper, 100));
    sleeper = s_spawn ("exec sleep 30", keeper, -1);
    assert_true (sleeper > 0);
    pid_t group = keeper;
    arb_keeper_destroy (&keeper);
    assert_int_equal (keeper, 0);
    s_assert_killed (s_reap (sleeper, 5000));
    assert_int_equal (kill (-group, 0), -1);
    assert_int_equal (errno, ESRCH);
    arb_keeper_destroy (&keeper);  //  none: nothing to do
}

int
main (void)
{
    //  the dead worker's orphans come to this process, to be reaped
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_group_dies_with_the_worker),
        cmocka_unit_test (test_grandchildren_die_with_the_worker),
        cmocka_unit_test (test_thread_exit_and_sigterm_are_not_death),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
