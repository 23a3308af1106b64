/*  arb_metrics.c — the Prometheus page; see arb_metrics.h.
*/

#include "arb_metrics.h"

#include <microhttpd.h>

#define ARB_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

//  A label value, escaped as the format wants (\\ \" \n).
static void
s_label (FILE *out, const char *value)
{
    for (const char *c = value ? value : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            fputc ('\\', out);
        if (*c == '\n')
            fputs ("\\n", out);
        else
            fputc (*c, out);
    }
}

static void
s_header (FILE *out, const char *name, const char *type, const char *help)
{
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_queues (FILE *out, arb_stats_reply_body_t *stats)
{
    s_header (out, "arbiter_tasks", "gauge", "Tasks in the broker by queue and state.");
    for (size_t i = 0; i < stats->queues.n; i++) {
        arb_queue_info_t *queue = &stats->queues.v[i];
        for (int state = 1; state <= ARB_STATE_MAX; state++) {
            if (state == ARB_STATE_FAILED)
                continue;  //  only in events: a task never stays failed
            fputs ("arbiter_tasks{queue=\"", out);
            s_label (out, queue->name);
            fprintf (out, "\",state=\"%s\"} %" PRIu64 "\n", arb_state_name (state),
                     (size_t) state < queue->counts.n ? queue->counts.v[state] : 0);
        }
    }
    s_header (out, "arbiter_queue_paused", "gauge", "1 if the queue is paused.");
    for (size_t i = 0; i < stats->queues.n; i++) {
        fputs ("arbiter_queue_paused{queue=\"", out);
        s_label (out, stats->queues.v[i].name);
        fprintf (out, "\"} %d\n", stats->queues.v[i].paused ? 1 : 0);
    }
    s_header (out, "arbiter_queue_oldest_ready_seconds", "gauge",
              "Age of the queue's oldest ready task (0: none).");
    for (size_t i = 0; i < stats->queues.n; i++) {
        fputs ("arbiter_queue_oldest_ready_seconds{queue=\"", out);
        s_label (out, stats->queues.v[i].name);
        fprintf (out, "\"} %.3f\n", (double) stats->queues.v[i].oldest_ready_ms / 1000.0);
    }
    s_header (out, "arbiter_queue_ready_bytes", "gauge",
              "Payload bytes of the queue's ready tasks (in memory and in the journal).");
    for (size_t i = 0; i < stats->queues.n; i++) {
        fputs ("arbiter_queue_ready_bytes{queue=\"", out);
        s_label (out, stats->queues.v[i].name);
        fprintf (out, "\"} %" PRIu64 "\n", stats->queues.v[i].ready_bytes);
    }
    s_header (out, "arbiter_queue_consumers", "gauge",
              "Sessions consuming the queue, busy or idle (workers, gateway consumers).");
    for (size_t i = 0; i < stats->queues.n; i++) {
        fputs ("arbiter_queue_consumers{queue=\"", out);
        s_label (out, stats->queues.v[i].name);
        fprintf (out, "\"} %u\n", stats->queues.v[i].consumers);
    }
}

//  A metric of one value, without labels.
static void
s_single (FILE *out, const char *name, const char *type, const char *help, uint64_t value)
{
    s_header (out, name, type, help);
    fprintf (out, "%s %" PRIu64 "\n", name, value);
}

static void
s_counters (FILE *out, arb_stats_reply_body_t *stats)
{
    s_single (out, "arbiter_tasks_submitted_total", "counter",
              "Tasks created by SUBMIT since the broker started.", stats->submitted);
    s_single (out, "arbiter_tasks_dispatched_total", "counter",
              "Attempts handed to workers since the broker started.", stats->dispatched);
    s_header (out, "arbiter_tasks_finished_total", "counter",
              "Tasks that ended since the broker started, by final state.");
    for (int state = 1; state <= ARB_STATE_MAX; state++)
        if (arb_state_is_final (state))
            fprintf (out, "arbiter_tasks_finished_total{state=\"%s\"} %" PRIu64 "\n",
                     arb_state_name (state),
                     (size_t) state < stats->finished.n ? stats->finished.v[state] : 0);
    s_header (out, "arbiter_journal_commit_seconds", "histogram",
              "Time of the broker's journal commits that wrote something.");
    uint64_t total = 0;
    for (size_t i = 0; i < ARB_COMMIT_BUCKETS; i++) {
        total += i < stats->commit_buckets.n ? stats->commit_buckets.v[i] : 0;
        if (i + 1 < ARB_COMMIT_BUCKETS)
            fprintf (out, "arbiter_journal_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                     (double) arb_commit_bound_us (i) / 1e6, total);
    }
    fprintf (out, "arbiter_journal_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", total);
    fprintf (out, "arbiter_journal_commit_seconds_sum %.6f\n", (double) stats->commit_us / 1e6);
    fprintf (out, "arbiter_journal_commit_seconds_count %" PRIu64 "\n", total);
    s_header (out, "arbiter_broker_uptime_seconds", "gauge", "Time since the broker started.");
    fprintf (out, "arbiter_broker_uptime_seconds %.3f\n", (double) stats->uptime_ms / 1000.0);
    s_single (out, "arbiter_broker_tasks_in_memory", "gauge",
              "Task records in the broker's memory (open tasks but the cold ones).",
              stats->tasks_in_memory);
    s_single (out, "arbiter_broker_tasks_cold", "gauge",
              "Ready tasks held only in the broker's journal.", stats->tasks_cold);
    s_single (out, "arbiter_broker_watches", "gauge", "Tasks and clients waiting for a DONE.",
              stats->watches);
}

static void
s_workers (FILE *out, arb_stats_reply_body_t *stats)
{
    uint64_t slots = 0, busy = 0;
    for (size_t i = 0; i < stats->workers.n; i++) {
        slots += stats->workers.v[i].slots;
        busy += stats->workers.v[i].busy;
    }
    s_header (out, "arbiter_workers", "gauge", "Worker sessions connected to the broker.");
    fprintf (out, "arbiter_workers %zu\n", stats->workers.n);
    s_header (out, "arbiter_worker_slots", "gauge", "Slots the workers announced.");
    fprintf (out, "arbiter_worker_slots %" PRIu64 "\n", slots);
    s_header (out, "arbiter_worker_slots_busy", "gauge", "Tasks the workers run now.");
    fprintf (out, "arbiter_worker_slots_busy %" PRIu64 "\n", busy);
}

char *
arb_metrics_render (arb_stats_reply_body_t *stats,
                    const arb_metrics_gateway_t *gateway,
                    size_t *size)
{
    char *text = NULL;
    FILE *out = open_memstream (&text, size);
    if (!out)
        return NULL;
    if (stats) {
        s_queues (out, stats);
        s_counters (out, stats);
        s_workers (out, stats);
    }
    s_header (out, "arbiter_gateway_broker_up", "gauge",
              "1 if the gateway's session with the broker is up.");
    fprintf (out, "arbiter_gateway_broker_up %d\n", gateway->broker_up ? 1 : 0);
    s_header (out, "arbiter_gateway_connections", "gauge",
              "Client connections to the gateway, by protocol.");
    for (int p = 0; p < ARB_GATEWAY_PROTOCOLS; p++)
        fprintf (out, "arbiter_gateway_connections{protocol=\"%s\"} %" PRIu64 "\n",
                 arb_gateway_protocol_name ((arb_gateway_protocol_t) p), gateway->connections[p]);
    bool failed = ferror (out);
    if (fclose (out) || failed) {
        free (text);
        return NULL;
    }
    return text;
}

//  ---------------------------------------------------------------------

static void
s_answer (arb_http_req_t *req, arb_stats_reply_body_t *stats)
{
    arb_gateway_t *gateway = arb_http_req_gateway (req);
    arb_metrics_gateway_t numbers = {.broker_up = stats != NULL};
    for (int p = 0; p < ARB_GATEWAY_PROTOCOLS; p++)
        numbers.connections[p] = arb_gateway_connections (gateway, (arb_gateway_protocol_t) p);
    size_t size;
    char *text = arb_metrics_render (stats, &numbers, &size);
    if (!text) {
        //  out of memory: ours, not the client's, and no reason to stop
        arb_http_reply_error (req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "the gateway could not write its metrics");
        return;
    }
    arb_http_reply_text (req, MHD_HTTP_OK, ARB_METRICS_TYPE, text, size);
    free (text);
}

//  Every page of STATS, or NULL: the gateway's part alone.
static void
s_on_stats (
    arb_http_req_t *req, arb_stats_reply_body_t *stats, int code, const char *reason, void *arg)
{
    (void) code;
    (void) reason;
    (void) arg;
    s_answer (req, stats);
}

static void
s_metrics (arb_http_req_t *req, void *arg)
{
    arb_gateway_t *gateway = arb_http_req_gateway (req);
    if (!arb_gateway_is_up (gateway)) {
        s_answer (req, NULL);
        return;
    }
    arb_http_stats (req, NULL, s_on_stats, arg);
}

int
arb_metrics_serve (arb_http_t *http)
{
    //  HEAD as GET, without the body (libmicrohttpd leaves it out), as
    //  the static files
    //  served with the broker down too (the gateway's part), so not
    //  ARB_HTTP_BROKER; a page of every queue's counts asks it, so it
    //  takes its turn with the other reads that do
    int rc = arb_http_route (http, "GET", "/metrics", ARB_HTTP_ASKS, s_metrics, NULL);
    return rc ? -1 : 0;
}
