/*  bench_proc.c — see bench_proc.h. */

#include "bench_proc.h"

#include <syslog.h>
#include <unistd.h>

static int
s_echo (arb_job_t *job, void *arg)
{
    (void) arg;
    return arb_job_set_result (job, arb_job_payload (job), arb_job_payload_size (job));
}

pid_t
bench_spawn_echo_worker (const char *endpoint, int slots, int go)
{
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    char byte;
    if (go >= 0 && read (go, &byte, 1) != 1)
        _exit (1);
    arb_worker_t *worker = arb_worker_new (endpoint, NULL);
    arb_worker_set_slots (worker, slots, ARB_WORKER_LIGHT);
    arb_worker_set_log_level (worker, LOG_WARNING);
    arb_worker_handle (worker, "*", s_echo, NULL);
    int rc = arb_worker_run (worker);
    arb_worker_destroy (&worker);
    exit (rc == 0 ? 0 : 1);
}
