/*  minion — an arbiter worker with two named handlers, in C: the carrier
    arbiter seed's test_app minion.

        build/examples/minion [--broker EP] [--queue Q] [--slots N]
                              [--mode light|heavy] [--name NAME] [--verbose]

      --verbose logs each task's start and end (the worker's LOG_DEBUG).

      simple_add  payload "X Y" (two integers) -> result "X+Y"
      sleep       payload "MS" -> sleeps MS milliseconds, result "slept MS";
                  stops early, as failed, when the broker asks it to stop
*/

#include "arb_worker.h"

#include <getopt.h>
#include <syslog.h>

static int
s_simple_add (arb_job_t *job, void *arg)
{
    (void) arg;
    long long x, y;
    //  arb_job_payload is followed by a NUL byte, so sscanf is safe
    if (sscanf ((const char *) arb_job_payload (job), "%lld %lld", &x, &y) != 2)
        return arb_job_fail (job, "simple_add wants two integers, got '%.40s'",
                             (const char *) arb_job_payload (job));
    char sum[32];
    int size = snprintf (sum, sizeof (sum), "%lld", x + y);
    return arb_job_set_result (job, sum, (size_t) size);
}

static int
s_sleep (arb_job_t *job, void *arg)
{
    (void) arg;
    long ms = atol ((const char *) arb_job_payload (job));
    int64_t until = zclock_mono () + ms;
    //  a light slot cannot be killed: it looks at the stop flag instead
    while (zclock_mono () < until) {
        if (arb_job_is_cancelled (job))
            return arb_job_fail (job, "stopped after %ld ms of %ld",
                                 ms - (long) (until - zclock_mono ()), ms);
        zclock_sleep (10);
    }
    char text[48];
    int size = snprintf (text, sizeof (text), "slept %ld", ms);
    return arb_job_set_result (job, text, (size_t) size);
}

int
main (int argc, char *argv[])
{
    const char *broker = NULL, *name = NULL;
    const char *queues[8];
    int queue_count = 0, slots = 4;
    arb_worker_mode_t mode = ARB_WORKER_LIGHT;
    bool verbose = false;
    static struct option options[] = {
        {"broker", required_argument, 0, 'b'},
        {"queue", required_argument, 0, 'q'},
        {"slots", required_argument, 0, 's'},
        {"mode", required_argument, 0, 'm'},
        {"name", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'b')
            broker = optarg;
        else if (opt == 'q' && queue_count < 8)
            queues[queue_count++] = optarg;
        else if (opt == 's' && atoi (optarg) > 0)
            slots = atoi (optarg);
        else if (opt == 'm' && (streq (optarg, "light") || streq (optarg, "heavy")))
            mode = streq (optarg, "heavy") ? ARB_WORKER_HEAVY : ARB_WORKER_LIGHT;
        else if (opt == 'n')
            name = optarg;
        else if (opt == 'v')
            verbose = true;
        else if (opt == 'V') {
            printf ("minion %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
            return 0;
        }
        else {
            fprintf (opt == 'h' ? stdout : stderr,
                     "usage: minion [--broker EP] [--queue Q]... [--slots N] "
                     "[--mode light|heavy] [--name NAME] [--verbose] | --version\n"
                     "handlers: simple_add (\"X Y\" -> X+Y), sleep (\"MS\")\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    arb_worker_t *worker = arb_worker_new (broker, name);
    if (verbose)
        arb_worker_set_log_level (worker, LOG_DEBUG);
    arb_worker_handle (worker, "simple_add", s_simple_add, NULL);
    arb_worker_handle (worker, "sleep", s_sleep, NULL);
    for (int i = 0; i < queue_count; i++)
        arb_worker_listen (worker, queues[i]);
    arb_worker_set_slots (worker, slots, mode);
    int rc = arb_worker_run (worker);
    arb_worker_destroy (&worker);
    return rc == 0 ? 0 : 1;
}
