/*  arb_cli_monitor.c — watching the broker as a whole: `arbiter stats`,
    `arbiter events` and `arbiter ping`.

    `events` is a long-lived subscriber. Subscriptions live in the broker's
    memory, so it pings the broker whenever the stream has been quiet for
    a while: a new epoch in the PONG means the broker restarted, and the
    subscription is made again (saying so on stderr, since events of the
    gap are lost). A broker that stops answering is reported once on
    stderr, and the tail goes on, like `tail -F`, until SIGINT. A broker
    that refuses the ping (403: the certificate was removed, or lost its
    role) ends the tail, with its reason and a non-zero status.
*/

#include "arb_cli.h"

#define ARB_EVENTS_QUIET_MS 2000  //  ping after this long without events

//  ---------------------------------------------------------------------
//  stats

//  last_seen_ms is the broker's wall-clock time of the last message.
static uint64_t
s_age (uint64_t now_ms, uint64_t then_ms)
{
    return then_ms && now_ms > then_ms ? now_ms - then_ms : 0;
}

static void
s_stats_json (void *arg, arb_stats_reply_body_t *stats)
{
    (void) arg;
    arb_cli_json_print (arb_json_stats (stats));
}

static void
s_stats_text (void *arg, arb_stats_reply_body_t *stats)
{
    (void) arg;
    char uptime[32], age[32];
    arb_cli_format_duration (stats->uptime_ms, uptime, sizeof (uptime));
    printf ("broker up %s\n\n%-20s", uptime, "QUEUE");
    for (int state = 1; state <= ARB_STATE_MAX; state++)
        if (arb_state_is_resting (state))
            printf (" %9s", arb_state_name (state));
    printf (" %9s %13s %9s %s\n", "done/min", "oldest ready", "consumers", "paused");
    for (size_t i = 0; i < stats->queues.n; i++) {
        arb_queue_info_t *queue = &stats->queues.v[i];
        printf ("%-*s", arb_cli_pad (queue->name, 20), queue->name);
        for (size_t state = 1; state <= ARB_STATE_MAX; state++)
            if (arb_state_is_resting ((int) state))
                printf (" %9" PRIu64, state < queue->counts.n ? queue->counts.v[state] : 0);
        snprintf (age, sizeof (age), "-");
        if (queue->oldest_ready_ms)
            arb_cli_format_duration (queue->oldest_ready_ms, age, sizeof (age));
        printf (" %9" PRIu64 " %13s %9u %s\n", queue->done_last_minute, age, queue->consumers,
                queue->paused ? "paused" : "no");
    }
    printf ("\n%-24s %6s %6s %6s %15s  %s\n", "WORKER", "SLOTS", "BUSY", "CREDIT", "LAST HEARD",
            "QUEUES");
    for (size_t i = 0; i < stats->workers.n; i++) {
        arb_worker_stats_t *worker = &stats->workers.v[i];
        arb_cli_format_duration (s_age (stats->now_ms, worker->last_seen_ms), age, sizeof (age));
        const char *name = worker->name ? worker->name : "-";
        printf ("%-*s %6u %6u %6u %11s ago  ", arb_cli_pad (name, 24), name, worker->slots,
                worker->busy, worker->credit, age);
        for (size_t q = 0; q < worker->queues.n; q++)
            printf ("%s%s", q ? "," : "", worker->queues.v[q]);
        putchar ('\n');
    }
}

//  A command without arguments of its own: its options, then the client.
//  Returns -1 to go on, else the exit status (0 after --help).
static int
s_no_arguments (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv)
{
    int c = arb_cli_getopt (cli, cmd, argc, argv);
    if (c != ARB_CLI_END)
        return arb_cli_getopt_exit (c);
    if (optind < argc)
        return arb_cli_usage (cli, cmd, "unexpected argument '%s'", argv[optind]);
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    return -1;
}

static int
s_stats_run (arb_cli_t *cli, int argc, char **argv)
{
    int status = s_no_arguments (cli, &arb_cli_cmd_stats, argc, argv);
    if (status >= 0)
        return status;
    //  every page (arb_client_stats asks them all), shown at once
    if (arb_client_stats (cli->client, cli->json ? s_stats_json : s_stats_text, NULL))
        return arb_cli_client_fail (cli, "stats");
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_stats = {
    .name = "stats",
    .summary = "show queues (counts, rate, backlog) and workers",
    .usage = "usage: arbiter stats [--json]\n"
             "\n"
             "Per queue (declared, configured, or holding tasks): tasks in each state a task\n"
             "can be in (waiting, scheduled, ready, running, succeeded, dead, cancelled,\n"
             "skipped: each one `arbiter list --state` takes), tasks finished in the last\n"
             "minute, age of the oldest ready task, consumers (workers on it, busy or idle),\n"
             "whether it is paused. Per worker: name, slots, busy slots, credit (slots the\n"
             "broker may still fill), time since it was last heard of, queues.\n"
             "\n"
             "  --json  one object: {\"now\", \"uptime_ms\", \"queues\": [{\"name\", \"counts\": "
             "{STATE:\n"
             "          N}, \"done_last_minute\", \"oldest_ready_age_ms\", \"ready_bytes\", "
             "\"paused\",\n"
             "          \"declared\", \"consumers\", \"settings\":\n"
             "          {the settings set: \"max_running\", \"rate_per_sec\", \"retention_ms\",\n"
             "          \"on_failure\"}}], \"workers\":\n"
             "          [{\"name\", \"slots\", \"busy\", \"credit\", \"last_seen_age_ms\", "
             "\"queues\"}]}\n",
    .options = NULL,
    .run = s_stats_run,
};

//  ---------------------------------------------------------------------
//  ping

static int
s_ping_run (arb_cli_t *cli, int argc, char **argv)
{
    int status = s_no_arguments (cli, &arb_cli_cmd_ping, argc, argv);
    if (status >= 0)
        return status;
    arb_client_t *client = cli->client;
    arb_msg_t *request = arb_client_request_new (client, ARB_MSG_PING);
    int64_t started = zclock_usecs ();
    arb_msg_t *reply = arb_client_request (client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "ping");
    double rtt_ms = (zclock_usecs () - started) / 1000.0;
    arb_pong_body_t *pong = arb_msg_pong (reply);
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "broker", json_string (arb_client_endpoint (client)));
        arb_json_str (obj, "version", pong->version);
        json_object_set_new (obj, "epoch", json_integer ((json_int_t) pong->epoch));
        arb_json_time (obj, "now", pong->now_ms);
        json_object_set_new (obj, "rtt_ms", json_real (rtt_ms));
        arb_cli_json_print (obj);
    }
    else
        printf ("pong from %s: arbiterd %s, epoch %" PRIu64 ", %.2f ms\n",
                arb_client_endpoint (client), pong->version ? pong->version : "?", pong->epoch,
                rtt_ms);
    arb_msg_destroy (&reply);
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_ping = {
    .name = "ping",
    .summary = "check that the broker answers",
    .usage = "usage: arbiter ping [--json]\n"
             "\n"
             "Asks the broker for its version and epoch (how many times it has started) and\n"
             "prints them with the round-trip time. Exit 1 if it does not answer within the\n"
             "rpc timeout.\n",
    .options = NULL,
    .run = s_ping_run,
};

//  ---------------------------------------------------------------------
//  events

typedef struct {
    arb_cli_t *cli;
    const char *queue;  //  NULL: all
    uint64_t epoch;     //  of the broker we subscribed at
    uint32_t ping;      //  request id of an unanswered PING, or 0
    int64_t ping_at;    //  ms, zclock_mono
    bool silent;        //  we said the broker stopped answering
} s_events_t;

static void
s_print_event (arb_cli_t *cli, arb_event_info_t *event)
{
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "id", json_integer ((json_int_t) event->id));
        arb_json_time (obj, "at", event->at_ms);
        arb_json_str (obj, "queue", event->queue);
        arb_json_str (obj, "name", event->name);
        json_object_set_new (obj, "state", json_string (arb_state_name ((int) event->state)));
        json_object_set_new (obj, "attempt", json_integer (event->attempt));
        arb_json_str (obj, "worker", event->worker);
        arb_json_str (obj, "error", event->error);
        arb_cli_json_print (obj);
        return;
    }
    char at[40];
    arb_cli_format_time (event->at_ms, at, sizeof (at));
    //  names escaped as errors are: one from an old journal may hold a newline
    char *queue = arb_cli_escape_str (event->queue ? event->queue : "-");
    char *name = arb_cli_escape_str (event->name ? event->name : "-");
    printf ("%s %" PRIu64 " %s/%s %s", at, event->id, queue, name,
            arb_state_name ((int) event->state));
    free (queue);
    free (name);
    if (event->attempt)
        printf (" attempt=%u", event->attempt);
    if (event->worker && *event->worker)
        printf (" worker=%s", event->worker);
    if (event->error && *event->error) {
        char *text = arb_cli_escape_str (event->error);
        printf (" error=%s", text);
        free (text);
    }
    putchar ('\n');
}

static arb_msg_t *
s_subscription (arb_client_t *client, const char *queue, bool off)
{
    arb_msg_t *request = arb_client_request_new (client, ARB_MSG_EVENTS);
    arb_msg_events (request)->queue = queue;
    arb_msg_events (request)->off = off;
    return request;
}

//  A PONG to our keep-alive: resubscribe if the broker restarted.
static void
s_on_pong (s_events_t *self, arb_msg_t *pong)
{
    uint64_t epoch = arb_msg_pong (pong)->epoch;
    self->ping = 0;
    if (self->silent)
        arb_cli_note (self->cli, "events: broker %s answers again",
                      arb_client_endpoint (self->cli->client));
    self->silent = false;
    if (epoch != self->epoch) {
        arb_cli_note (self->cli,
                      "events: broker restarted (epoch %" PRIu64 "); subscribing again, events "
                      "of the restart are missing",
                      epoch);
        arb_msg_t *request = s_subscription (self->cli->client, self->queue, false);
        arb_client_send (self->cli->client, &request);
        self->epoch = epoch;
    }
}

//  Quiet for a while: ping (once at a time), and say once when the broker
//  has not answered for the rpc timeout.
static void
s_on_quiet (s_events_t *self)
{
    int64_t now = zclock_mono ();
    if (self->ping && now - self->ping_at < self->cli->rpc_timeout_ms)
        return;
    if (self->ping && !self->silent) {
        arb_cli_note (self->cli, "events: broker %s has not answered for %.1f s; still waiting",
                      arb_client_endpoint (self->cli->client), self->cli->rpc_timeout_ms / 1000.0);
        self->silent = true;
    }
    arb_msg_t *ping = arb_client_request_new (self->cli->client, ARB_MSG_PING);
    self->ping = arb_client_send (self->cli->client, &ping);
    self->ping_at = now;
}

//  An ERROR to our keep-alive: the broker answers, but refuses us (403:
//  this certificate was removed from its allowed folder, or lost the
//  role; its subscription went with it). Said as a refused request is,
//  and the tail ends with the status of its code.
static int
s_on_refused (s_events_t *self, arb_msg_t *error)
{
    arb_error_body_t *body = arb_msg_error (error);
    arb_cli_say_code (self->cli, 0, (int) body->code, "events: %s",
                      body->reason ? body->reason : "refused");
    return arb_cli_exit_for ((int) body->code);
}

static int
s_tail (s_events_t *self)
{
    arb_client_t *client = self->cli->client;
    int status = ARB_EXIT_OK;
    while (status == ARB_EXIT_OK) {
        arb_msg_t *msg = arb_client_recv (client, ARB_EVENTS_QUIET_MS);
        if (!msg && arb_client_error (client))
            break;  //  interrupted
        if (!msg)
            s_on_quiet (self);
        else if (arb_msg_type (msg) == ARB_MSG_EVENT) {
            arb_event_body_t *body = arb_msg_event (msg);
            if (body->dropped)
                arb_cli_note (self->cli,
                              "events: %" PRIu64 " events dropped (not read fast enough)",
                              body->dropped);
            for (size_t i = 0; i < body->events.n; i++)
                s_print_event (self->cli, &body->events.v[i]);
            fflush (stdout);
        }
        else if (arb_msg_type (msg) == ARB_MSG_PONG && arb_msg_reqid (msg) == self->ping)
            s_on_pong (self, msg);
        else if (arb_msg_type (msg) == ARB_MSG_ERROR && arb_msg_reqid (msg) == self->ping)
            status = s_on_refused (self, msg);
        arb_msg_destroy (&msg);
    }
    //  SIGINT is how a tail ends: unsubscribe without waiting, and succeed
    arb_msg_t *off = s_subscription (client, self->queue, true);
    arb_client_send (client, &off);
    return status;
}

static const struct option s_events_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

static int
s_events_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_events;
    s_events_t self = {.cli = cli};
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (arb_cli_opt_name (cli, "queue", optarg))
            return ARB_EXIT_USAGE;
        self.queue = optarg;
    }
    if (optind < argc)
        return arb_cli_usage (cli, cmd, "unexpected argument '%s'", argv[optind]);
    arb_client_t *client = arb_cli_client (cli);
    if (!client || arb_client_ping (client, &self.epoch))
        return client ? arb_cli_client_fail (cli, "events") : ARB_EXIT_USAGE;
    arb_msg_t *request = s_subscription (client, self.queue, false);
    arb_msg_t *reply = arb_client_request (client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "events");
    arb_msg_destroy (&reply);
    return s_tail (&self);
}

const arb_cli_cmd_t arb_cli_cmd_events = {
    .name = "events",
    .summary = "print task state changes as they happen, until Ctrl-C",
    .usage = "usage: arbiter events [--queue Q] [--json]\n"
             "\n"
             "Prints one line per state change of a task (of queue Q, or of every queue):\n"
             "  TIME ID QUEUE/NAME STATE [attempt=N] [worker=W] [error=...]\n"
             "until interrupted (Ctrl-C, exit 0). Survives a broker restart (said on stderr,\n"
             "with the events of the gap missing); events the broker had to drop because\n"
             "they were not read fast enough are counted on stderr. If the broker refuses\n"
             "it (403: its certificate was removed from the broker's allowed folder, or\n"
             "lost its role), it says why and exits 1.\n"
             "\n"
             "  --queue Q  only this queue\n"
             "  --json     one object per event and line\n",
    .options = s_events_options,
    .run = s_events_run,
};
