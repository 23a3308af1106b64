/*  commander — submits tasks, waits for their results as they finish, and
    prints them: the carrier arbiter seed's test_app commander, in C.

        build/examples/commander [--broker EP] [--count N]

    Submits N simple_add tasks ("i i*i"), streams each result as it
    arrives (each client has its own result channel, so two commanders
    never see each other's results), then shows the status of the first
    and the default queue's counts. Every step is one call of arb_client.h:
    no message is built or read by hand. Exit status 0 if every task
    succeeded.
*/

#include "arb_client.h"

#include <getopt.h>

static int
s_show_status (void *arg, arb_task_info_t *info)
{
    (void) arg;
    if (info->found)
        printf ("status of task %" PRIu64 ": %s after %u attempt(s) on %s\n", info->id,
                arb_state_name ((int) info->state), info->attempts,
                info->worker ? info->worker : "?");
    return 0;
}

static void
s_show_counts (void *arg, arb_stats_reply_body_t *stats)
{
    (void) arg;
    for (size_t i = 0; i < stats->queues.n; i++) {
        arb_queue_info_t *queue = &stats->queues.v[i];
        if (!streq (queue->name, "default") || queue->counts.n <= ARB_STATE_SUCCEEDED)
            continue;
        printf ("queue default: %" PRIu64 " ready, %" PRIu64 " running, %" PRIu64 " succeeded\n",
                queue->counts.v[ARB_STATE_READY], queue->counts.v[ARB_STATE_RUNNING],
                queue->counts.v[ARB_STATE_SUCCEEDED]);
    }
}

int
main (int argc, char *argv[])
{
    const char *broker = NULL;
    int count = 10;
    static struct option options[] = {
        {"broker", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'b')
            broker = optarg;
        else if (opt == 'c' && atoi (optarg) > 0 && atoi (optarg) <= 100000)
            count = atoi (optarg);
        else if (opt == 'V') {
            printf ("commander %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
            return 0;
        }
        else {
            fprintf (opt == 'h' ? stdout : stderr,
                     "usage: commander [--broker EP] [--count N] | --version\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    arb_client_t *client = arb_client_new (broker);
    if (!client) {
        fprintf (stderr, "commander: bad broker endpoint: %s\n", zmq_strerror (zmq_errno ()));
        return 2;
    }
    arb_task_spec_t *specs = (arb_task_spec_t *) calloc ((size_t) count, sizeof (arb_task_spec_t));
    uint64_t *ids = (uint64_t *) calloc ((size_t) count, sizeof (uint64_t));
    for (int i = 0; i < count; i++) {
        char args[48];
        snprintf (args, sizeof (args), "%d %d", i, i * i);
        specs[i].name = "simple_add";
        specs[i].payload = zframe_new (args, strlen (args));
    }
    //  one message, and watch them all: results stream back as they finish
    int rc = arb_client_submit (client, specs, (size_t) count, true, ids, NULL);
    int failed = 0;
    for (int left = rc == 0 ? count : 0; left > 0; left--) {
        arb_done_t *done = arb_client_next (client, 30000);
        if (!done) {
            fprintf (stderr, "commander: %s\n",
                     arb_client_error (client) ? arb_client_error (client) : "no result in 30 s");
            failed++;
            break;
        }
        if (done->state == ARB_STATE_SUCCEEDED)
            printf ("task %" PRIu64 " succeeded: %.*s\n", done->id,
                    (int) zframe_size (done->result), (const char *) zframe_data (done->result));
        else {
            printf ("task %" PRIu64 " %s: %s\n", done->id, arb_state_name (done->state),
                    done->error ? done->error : "");
            failed++;
        }
        arb_done_destroy (&done);
    }
    if (rc == 0
        && (arb_client_status (client, ids, 1, s_show_status, NULL) < 0
            || arb_client_stats (client, s_show_counts, NULL)))
        rc = -1;
    if (rc)
        fprintf (stderr, "commander: %s\n", arb_client_error (client));
    free (specs);
    free (ids);
    arb_client_destroy (&client);
    return rc || failed ? 1 : 0;
}
