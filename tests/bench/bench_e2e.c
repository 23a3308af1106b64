/*  bench_e2e.c — tasks per second through the real broker and the worker
    runtime.

        build/tests/bench/bench_e2e ARBITERD [TASKS [WORKERS [SLOTS [SYNC]]]]

    Starts ARBITERD (a path) on a free port with a temporary journal and
    `--sync SYNC` (default full), forks WORKERS worker processes (SLOTS light
    slots each, a handler that echoes its 16-byte payload), which wait on a
    pipe before they connect. Submits TASKS tasks in batches of 1000 with
    watch, then lets the workers go and times how long it takes until every
    task has been reported done: the dispatch -> run -> result -> journal
    path, without the submissions. Prints tasks/s and the CPU each side
    used per task (wait4).
*/

#include "arb_client.h"
#include "bench_proc.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_WORKERS_MAX 16
#define S_BATCH       1000

static double
s_cpu (struct rusage *usage)
{
    return (double) usage->ru_utime.tv_sec + (double) usage->ru_utime.tv_usec / 1e6
           + (double) usage->ru_stime.tv_sec + (double) usage->ru_stime.tv_usec / 1e6;
}

//  Stops a child with SIGTERM; returns the CPU seconds it used.
static double
s_stop (pid_t pid)
{
    kill (pid, SIGTERM);
    int status;
    struct rusage usage;
    wait4 (pid, &status, 0, &usage);
    return s_cpu (&usage);
}

static int
s_submit_all (arb_client_t *client, long total)
{
    arb_task_spec_t *specs = (arb_task_spec_t *) zmalloc (S_BATCH * sizeof (arb_task_spec_t));
    uint64_t *ids = (uint64_t *) zmalloc (S_BATCH * sizeof (uint64_t));
    int rc = 0;
    for (long sent = 0; sent < total && rc == 0;) {
        size_t n = total - sent < S_BATCH ? (size_t) (total - sent) : S_BATCH;
        memset (specs, 0, n * sizeof (arb_task_spec_t));
        for (size_t i = 0; i < n; i++) {
            specs[i].name = "echo";
            specs[i].payload = zframe_new ("0123456789abcdef", 16);
        }
        rc = arb_client_submit (client, specs, n, true, ids, NULL);
        sent += (long) n;
    }
    free (specs);
    free (ids);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: bench_e2e ARBITERD [TASKS [WORKERS [SLOTS [SYNC]]]]\n");
        return 2;
    }
    long total = argc > 2 ? atol (argv[2]) : 100000;
    int workers = argc > 3 ? atoi (argv[3]) : 2;
    int slots = argc > 4 ? atoi (argv[4]) : 8;
    const char *sync = argc > 5 ? argv[5] : "full";
    assert (workers >= 1 && workers <= S_WORKERS_MAX && slots >= 1);
    char endpoint[64], dir[] = "/tmp/bench-e2e-XXXXXX", db[128];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", arb_benchproc_free_port ());
    assert (mkdtemp (dir));
    snprintf (db, sizeof (db), "%s/arbiter.db", dir);

    int go[2];
    assert (pipe (go) == 0);
    pid_t worker_pids[S_WORKERS_MAX];
    for (int i = 0; i < workers; i++)
        worker_pids[i] = bench_spawn_echo_worker (endpoint, slots, go[0]);
    pid_t broker = fork ();
    if (broker == 0) {
        execl (argv[1], argv[1], "--bind", endpoint, "--db", db, "--sync", sync, "--retention",
               "60", (char *) NULL);
        _exit (127);
    }

    arb_client_t *client = arb_client_new (endpoint);
    arb_client_set_timeout (client, 30000);
    int64_t ready_by = zclock_mono () + 10000;
    while (arb_client_ping (client, NULL) != 0 && zclock_mono () < ready_by)
        ;
    if (s_submit_all (client, total) != 0) {
        fprintf (stderr, "bench: submit failed: %s\n", arb_client_error (client));
        return 1;
    }
    int64_t started = zclock_usecs ();
    for (int i = 0; i < workers; i++)
        assert (write (go[1], "g", 1) == 1);
    long done = 0, failed = 0;
    while (done < total) {
        arb_done_t *report = arb_client_next (client, 30000);
        if (!report) {
            fprintf (stderr, "bench: stalled at %ld of %ld: %s\n", done, total,
                     arb_client_error (client) ? arb_client_error (client) : "timeout");
            break;
        }
        if (report->state != ARB_STATE_SUCCEEDED)
            failed++;
        done++;
        arb_done_destroy (&report);
    }
    double seconds = (double) (zclock_usecs () - started) / 1e6;
    arb_client_destroy (&client);
    double worker_cpu = 0;
    for (int i = 0; i < workers; i++)
        worker_cpu += s_stop (worker_pids[i]);
    double broker_cpu = s_stop (broker);
    printf ("bench: tasks=%ld workers=%d slots=%d sync=%s cpus=%ld failed=%ld\n", done, workers,
            slots, sync, sysconf (_SC_NPROCESSORS_ONLN), failed);
    printf ("bench: %.0f tasks/s from dispatch to stored result (%.2f s)\n",
            (double) done / seconds, seconds);
    printf ("bench: cpu per task: workers %.2f us, broker %.2f us (broker total includes the "
            "submits)\n",
            worker_cpu * 1e6 / (double) done, broker_cpu * 1e6 / (double) done);
    char command[256];
    snprintf (command, sizeof (command), "rm -rf %s", dir);
    return system (command) == 0 && done == total ? 0 : 1;
}
