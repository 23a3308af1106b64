/*  arbiter-bench — measures arbiter with libarbiter, as a user would.

    Each workload gets its own arbiterd, started on a fresh journal in a
    temporary directory under /tmp (--sync full unless told otherwise, and
    --retention short enough that finished tasks leave the journal during
    the run), so that every figure comes from a clean start. Consumers are
    processes of their own (this binary, run again with --consumer).

    The shapes every queue is measured with (arbiter-peers runs the same
    ones against beanstalkd, redis and RabbitMQ; BENCHMARKS.md):

      F1  fdatasync probe: a small write made durable in the journals'
          directory, again and again (appended, overwritten, and as the
          task log writes: arb_benchkit.h): the floor W1 is compared with;
          and the task log's way's longest write and its writes over 2 ms
          (the disk's stalls, which every durable ack waits out)
      R1  the transport's floor (arb_benchfloor.h): round trips to a
          server that writes and fdatasyncs a commit's worth before each
          reply, over plain TCP and over ZeroMQ, and the same without the
          write (in "all", not in the default list)
      W1  one producer submits one task at a time (100-byte payloads), each
          acknowledged only after its commit: tasks/s and ack latency
      W2  W1's producer (watching its tasks) + consumer processes holding
          one task each, from the first submit to the last result: tasks/s
          and submit-to-result latency
      P1  one task per SUBMIT, up to --window SUBMITs awaiting their
          acknowledgement: tasks/s counted at the acknowledgements
      P2  P1's producer (watching) + consumers with up to --prefetch tasks
          of credit each, end to end; then the broker's RSS (M1)
      L1  P2 with the producer paced at --rate tasks/s (default: half of
          the P2 just measured): submit-to-result latency
      M2  --queued tasks (batches of 500) and no workers: the broker's RSS
          and bytes per queued task; then S1, the broker started again on
          that journal: seconds until it answers
      M3  the same with --queued-big tasks (10,000,000; not in "all")

    --batch N puts N tasks in each SUBMIT of W1..L1 (default 1). Latency
    comes from a timestamp in the payload (the worker echoes the payload as
    its result). The older batched workloads stay under their own names:

      B1  durable submits in batches of --b-batch (500), one producer
      B2  end to end with --b-window (20,000) tasks in flight and two
          arb_worker processes of --b-slots (64) light slots
      B3  the broker's peak RSS after B2
      B4  one 10,000-node DAG submitted at once: seconds until accepted

    It prints one JSON line per workload. Speed thresholds never belong in
    tests; this tool is how BENCHMARKS.md gets its figures.
*/

#include "arb_benchfloor.h"
#include "arb_benchkit.h"
#include "arb_benchproc.h"
#include "arb_client.h"
#include "arb_link.h"
#include "arb_worker.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_CONSUMERS_MAX 16
#define S_RING          65536  //  submit times by request id (larger than any window)
#define S_STALL_MS      15000  //  no progress this long: the workload failed

typedef struct {
    const char *arbiterd;   //  path of the broker binary
    const char *sync;       //  full | normal
    const char *workloads;  //  comma list, or "all"
    const char *retention;  //  the broker's --retention, seconds
    int tasks;              //  per workload
    int payload;            //  bytes per task
    int batch;              //  tasks per SUBMIT (W1..L1)
    int window;             //  SUBMITs awaiting acknowledgement (P1, P2, L1)
    int consumers;          //  W2, P2, L1: consumer processes
    int prefetch;           //  P2, L1: credit per consumer
    int rate;               //  L1: tasks/s (0: half of P2's)
    int queued;             //  M2
    int queued_big;         //  M3
    int probe;              //  F1: writes
    int b_batch;            //  B1, B2
    int b_window;           //  B2: tasks
    int b_workers;          //  B2
    int b_slots;            //  B2
    int dag_nodes;          //  B4
    double p2_per_s;        //  P2's figure in this run, for L1
    char endpoint[64];      //  the broker's
    arb_benchproc_broker_t broker;
    char self[PATH_MAX];  //  this binary, to start consumers
} s_bench_t;

static void
s_print_lat (const char *name, arb_benchkit_lat_t lat)
{
    printf (", \"%s_ms\": {\"n\": %zu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
            "\"mean\": %.3f}",
            name, lat.n, lat.p50, lat.p90, lat.p99, lat.max, lat.mean);
}

static void
s_head (const char *workload, const char *what)
{
    arb_benchkit_json_head (stdout, "arbiter", workload, what);
}

static int s_failures;  //  workloads that did not end well: the exit code

static void
s_end (bool ok)
{
    if (!ok)
        s_failures++;
    printf (", \"ok\": %s}\n", ok ? "true" : "false");
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  The consumer process (W2, P2, L1): one link consumer with `credit`
//  tasks of credit on queue "default"; each task is completed at once
//  with its payload as result, and gives its credit back.

typedef struct {
    arb_link_t *link;
    uint32_t sub;
} s_consumer_t;

static void
s_consumer_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) arg;
    zframe_t *result = task->payload;
    task->payload = NULL;
    arb_link_complete (link, task->id, &result);
    arb_link_add_credit (link, sub, 1);
}

static int
s_run_consumer (const char *endpoint, int credit)
{
    arb_link_callbacks_t callbacks = {0};
    arb_link_t *link = arb_link_new (endpoint, NULL, &callbacks, NULL);
    const char *queues[] = {"default"};
    if (!link || !arb_link_subscribe (link, queues, 1, credit, s_consumer_dispatch, NULL)) {
        fprintf (stderr, "arbiter-bench: consumer: cannot start\n");
        return 1;
    }
    zmq_pollitem_t item = {NULL, arb_link_fd (link), ZMQ_POLLIN, 0};
    while (!zsys_interrupted) {
        int wait = arb_link_timeout (link);
        if (wait != 0)
            zmq_poll (&item, 1, wait < 0 || wait > 200 ? 200 : wait);
        arb_link_handle (link);
    }
    arb_link_destroy (&link);
    return 0;
}

//  The arb_worker process of B2: echoes the payload back.
static int
s_echo (arb_job_t *job, void *arg)
{
    (void) arg;
    return arb_job_set_result (job, arb_job_payload (job), arb_job_payload_size (job));
}

static int
s_run_worker (const char *endpoint, int slots)
{
    arb_worker_t *worker = arb_worker_new (endpoint, NULL);
    arb_worker_handle (worker, "bench", s_echo, NULL);
    arb_worker_set_slots (worker, slots, ARB_WORKER_LIGHT);
    int rc = arb_worker_run (worker);
    arb_worker_destroy (&worker);
    return rc == 0 ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  The producer of W1..L1, on a link: one task per SUBMIT (or --batch),
//  at most `window` SUBMITs awaiting their reply, paced at `rate` tasks/s
//  if rate > 0; with watch, every result comes back to it (DONE).

typedef struct {
    s_bench_t *bench;
    arb_link_t *link;
    bool watch;
    int total, submitted, acked, finished, inflight;
    int errors;
    int64_t sent_at[S_RING];  //  by request id
    int64_t *ack_lat;         //  µs, per task: submit to SUBMITTED
    int64_t *done_lat;        //  µs, per task: payload stamp to DONE
    size_t n_ack, n_done;
    int64_t last_ack_us, last_done_us;
    int64_t progress_us;  //  last time anything came back
} s_producer_t;

static void
s_producer_reply (arb_link_t *link, uint32_t reqid, arb_msg_t **reply_p, void *arg)
{
    (void) link;
    s_producer_t *self = (s_producer_t *) arg;
    int64_t now = arb_benchkit_now_us ();
    self->inflight--;
    self->progress_us = now;
    if (arb_msg_type (*reply_p) != ARB_MSG_SUBMITTED) {
        if (self->errors++ == 0) {
            const char *why = arb_msg_type (*reply_p) == ARB_MSG_ERROR
                                  ? arb_msg_error (*reply_p)->reason
                                  : "unexpected reply";
            fprintf (stderr, "arbiter-bench: SUBMIT failed: %s\n", why ? why : "?");
        }
        return;
    }
    size_t n = arb_msg_submitted (*reply_p)->tasks.n;
    for (size_t i = 0; i < n && self->n_ack < (size_t) self->total; i++)
        self->ack_lat[self->n_ack++] = now - self->sent_at[reqid % S_RING];
    self->acked += (int) n;
    self->last_ack_us = now;
}

static void
s_producer_done (arb_link_t *link, arb_done_task_t *task, void *arg)
{
    (void) link;
    s_producer_t *self = (s_producer_t *) arg;
    int64_t now = arb_benchkit_now_us ();
    self->progress_us = now;
    if (task->state != ARB_STATE_SUCCEEDED) {
        if (self->errors++ == 0)
            fprintf (stderr, "arbiter-bench: task %" PRIu64 " ended in state %u\n", task->id,
                     task->state);
        return;
    }
    int64_t at = task->result ? arb_benchkit_stamp_of (zframe_data (task->result),
                                                       zframe_size (task->result))
                              : -1;
    if (at >= 0 && self->n_done < (size_t) self->total)
        self->done_lat[self->n_done++] = now - at;
    self->finished++;
    self->last_done_us = now;
}

//  Submits the next SUBMIT (batch tasks, or what is left).
static int
s_producer_submit (s_producer_t *self, char *payload)
{
    int batch = self->bench->batch;
    int count = self->total - self->submitted < batch ? self->total - self->submitted : batch;
    arb_task_spec_t specs[count];
    memset (specs, 0, sizeof (specs));
    int64_t now = arb_benchkit_stamp (payload, (size_t) self->bench->payload);
    for (int i = 0; i < count; i++) {
        specs[i].name = "bench";
        specs[i].payload = zframe_new (payload, (size_t) self->bench->payload);
    }
    uint32_t reqid = arb_link_submit (self->link, specs, (size_t) count, self->watch);
    if (!reqid) {
        fprintf (stderr, "arbiter-bench: submit refused: %s\n", arb_link_error (self->link));
        return -1;
    }
    self->sent_at[reqid % S_RING] = now;
    self->submitted += count;
    self->inflight++;
    return 0;
}

//  Runs the producer to the end. Fills *started and returns 0, or -1.
static int
s_produce (s_producer_t *self, int window, double rate, int64_t *started, int64_t *behind_max)
{
    arb_link_callbacks_t callbacks = {.reply = s_producer_reply, .done = s_producer_done};
    self->link = arb_link_new (self->bench->endpoint, NULL, &callbacks, self);
    arb_link_set_timeout (self->link, 60000);
    char *payload = arb_benchproc_payload (self->bench->payload);
    zmq_pollitem_t item = {NULL, arb_link_fd (self->link), ZMQ_POLLIN, 0};
    int rc = 0;
    *started = arb_benchkit_now_us ();
    *behind_max = 0;
    self->progress_us = *started;
    double interval_us = rate > 0 ? 1e6 / rate : 0;
    while (rc == 0) {
        bool over = self->acked + self->errors >= self->total
                    && (!self->watch || self->finished + self->errors >= self->total);
        if (over || zsys_interrupted)
            break;
        int64_t now = arb_benchkit_now_us ();
        int64_t next_at = 0;
        while (rc == 0 && self->submitted < self->total && self->inflight < window) {
            if (interval_us > 0) {
                next_at = *started + (int64_t) (self->submitted * interval_us);
                if (next_at > now)
                    break;
                if (now - next_at > *behind_max)
                    *behind_max = now - next_at;
            }
            rc = s_producer_submit (self, payload);
        }
        int wait = arb_link_timeout (self->link);
        if (wait < 0 || wait > 100)
            wait = 100;
        //  paced: the next SUBMIT is due in until_us; zmq_poll counts in
        //  ms, so a shorter wait is slept (a reply that comes meanwhile
        //  is read that much later, which only adds to the latencies
        //  measured), not spun: a spinning producer takes a core from
        //  the broker and the consumers it measures
        int64_t until_us = 0;
        if (interval_us > 0 && self->submitted < self->total && self->inflight < window) {
            until_us = next_at - arb_benchkit_now_us ();
            if (until_us / 1000 < wait)
                wait = until_us < 0 ? 0 : (int) (until_us / 1000);
        }
        if (wait > 0)
            zmq_poll (&item, 1, wait);
        else if (until_us > 0 && arb_link_timeout (self->link) != 0)
            arb_benchkit_sleep_until (next_at);
        arb_link_handle (self->link);
        if (arb_benchkit_now_us () - self->progress_us > (int64_t) S_STALL_MS * 1000) {
            fprintf (stderr,
                     "arbiter-bench: nothing came back for %d s (%d submitted, %d acknowledged, "
                     "%d finished)\n",
                     S_STALL_MS / 1000, self->submitted, self->acked, self->finished);
            rc = -1;
        }
    }
    free (payload);
    arb_link_destroy (&self->link);
    return rc || self->errors || zsys_interrupted ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  Brokers and consumers

//  Starts a broker on a fresh journal with the run's retention.
static int
s_start (s_bench_t *self)
{
    char *extra[] = {"--retention", (char *) self->retention, NULL};
    if (arb_benchproc_start_broker_with (&self->broker, self->arbiterd, self->sync, extra, false,
                                         20000)) {
        fprintf (stderr, "arbiter-bench: the broker (%s) did not start\n", self->arbiterd);
        s_failures++;
        return -1;
    }
    snprintf (self->endpoint, sizeof (self->endpoint), "%s", self->broker.endpoint);
    return 0;
}

static void
s_stop (s_bench_t *self)
{
    if (arb_benchproc_stop_broker (&self->broker))
        s_failures++;
}

typedef struct {
    size_t workers;
    uint64_t ready;
    uint64_t commits;    //  journal commits that wrote something
    uint64_t commit_us;  //  their time
} s_counts_t;

static void
s_on_stats (void *arg, arb_stats_reply_body_t *stats)
{
    s_counts_t *counts = (s_counts_t *) arg;
    counts->workers = stats->workers.n;
    counts->commits = stats->commits;
    counts->commit_us = stats->commit_us;
    for (size_t i = 0; i < stats->queues.n; i++)
        if (stats->queues.v[i].counts.n > ARB_STATE_READY)
            counts->ready += stats->queues.v[i].counts.v[ARB_STATE_READY];
}

//  The broker's counts now (workers connected, tasks ready). 0 or -1.
static int
s_counts (s_bench_t *self, s_counts_t *counts)
{
    memset (counts, 0, sizeof (*counts));
    arb_client_t *client = arb_client_new (self->endpoint);
    arb_client_set_timeout (client, 60000);
    int rc = arb_client_stats (client, s_on_stats, counts);
    arb_client_destroy (&client);
    return rc;
}

//  Starts n consumer processes of `credit` each and waits until the
//  broker sees them all (at most 10 s).
static int
s_start_consumers (s_bench_t *self, pid_t *pids, int n, int credit)
{
    char text[16];
    snprintf (text, sizeof (text), "%d", credit);
    for (int i = 0; i < n; i++) {
        char *argv[] = {self->self, "--consumer", self->endpoint, "--credit", text, NULL};
        char log[128];
        snprintf (log, sizeof (log), "%s/arbiterd.log", self->broker.dir);
        pids[i] = arb_benchproc_spawn_log (argv, log);
    }
    int64_t deadline = arb_benchkit_now_us () + 10000000;
    s_counts_t counts = {0};
    while (arb_benchkit_now_us () < deadline) {
        if (s_counts (self, &counts) == 0 && counts.workers >= (size_t) n)
            return 0;
        usleep (20000);
    }
    fprintf (stderr, "arbiter-bench: the consumers did not register\n");
    return -1;
}

static void
s_stop_consumers (pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (arb_benchproc_stop (pids[i]))
            s_failures++;
}

//  ---------------------------------------------------------------------
//  F1, W1, W2, P1, P2 (+ M1), L1

static void
s_f1 (s_bench_t *self)
{
    arb_benchkit_sync_t append, overwrite, direct;
    char dir[] = "/tmp/arbiter-bench-XXXXXX";
    bool ok =
        mkdtemp (dir)
        && arb_benchkit_fsync_probe (dir, self->probe, 100, ARB_BENCHKIT_APPEND, &append) == 0
        && arb_benchkit_fsync_probe (dir, self->probe, 100, ARB_BENCHKIT_OVERWRITE, &overwrite) == 0
        && arb_benchkit_fsync_probe (dir, self->probe, 100, ARB_BENCHKIT_DIRECT, &direct) == 0;
    rmdir (dir);
    s_head ("F1", "fdatasync of a 100-byte write, in the journals' directory (/tmp)");
    if (ok)
        printf (", \"writes\": %d, \"append_per_s\": %.0f, \"append_p50_us\": %.1f, "
                "\"append_p99_us\": %.1f, \"overwrite_per_s\": %.0f, \"overwrite_p50_us\": %.1f, "
                "\"overwrite_p99_us\": %.1f, \"direct_per_s\": %.0f, \"direct_p50_us\": %.1f, "
                "\"direct_p99_us\": %.1f, \"direct_max_us\": %.0f, \"direct_stalls\": %d, "
                "\"stall_us\": %d",
                self->probe, append.per_s, append.p50_us, append.p99_us, overwrite.per_s,
                overwrite.p50_us, overwrite.p99_us, direct.per_s, direct.p50_us, direct.p99_us,
                direct.max_us, direct.stalls, ARB_BENCHKIT_STALL_US);
    s_end (ok);
}

//  R1: --probe round trips of each kind. The bare ones (no write) give
//  the transports' cost when no thread has slept through an fsync; the
//  durable ones, what that sleep makes of it.
static void
s_r1 (s_bench_t *self)
{
    arb_benchkit_sync_t tcp, zmq, tcp_bare, zmq_bare;
    char dir[] = "/tmp/arbiter-bench-XXXXXX";
    int n = self->probe;
    bool ok = mkdtemp (dir) != NULL;
    ok = ok && arb_benchfloor_roundtrip (dir, ARB_BENCHFLOOR_TCP, n, true, &tcp) == 0;
    ok = ok && arb_benchfloor_roundtrip (dir, ARB_BENCHFLOOR_ZMQ, n, true, &zmq) == 0;
    ok = ok && arb_benchfloor_roundtrip (dir, ARB_BENCHFLOOR_TCP, n, false, &tcp_bare) == 0;
    ok = ok && arb_benchfloor_roundtrip (dir, ARB_BENCHFLOOR_ZMQ, n, false, &zmq_bare) == 0;
    rmdir (dir);
    s_head ("R1",
            "one request at a time to a server that writes 8,240 bytes in place and "
            "fdatasyncs before each reply: plain TCP against ZeroMQ (W1's floor by transport)");
    if (ok)
        printf (", \"round_trips\": %d, \"tcp_per_s\": %.0f, \"tcp_p50_us\": %.1f, "
                "\"tcp_p99_us\": %.1f, \"zmq_per_s\": %.0f, \"zmq_p50_us\": %.1f, "
                "\"zmq_p99_us\": %.1f, \"zmq_over_tcp\": %.2f, \"bare_tcp_p50_us\": %.1f, "
                "\"bare_zmq_p50_us\": %.1f",
                n, tcp.per_s, tcp.p50_us, tcp.p99_us, zmq.per_s, zmq.p50_us, zmq.p99_us,
                tcp.per_s > 0 ? zmq.per_s / tcp.per_s : 0, tcp_bare.p50_us, zmq_bare.p50_us);
    s_end (ok);
}

//  One shape: consumers (0 for W1, P1) of credit each, the producer with
//  window SUBMITs in flight, paced at rate (0: not).
static void
s_shape (s_bench_t *self,
         const char *workload,
         const char *what,
         int window,
         int consumers,
         int credit,
         double rate)
{
    if (s_start (self))
        return;
    pid_t pids[S_CONSUMERS_MAX] = {0};
    bool ok = consumers == 0 || s_start_consumers (self, pids, consumers, credit) == 0;
    s_producer_t *producer = (s_producer_t *) zmalloc (sizeof (s_producer_t));
    producer->bench = self;
    producer->watch = consumers > 0;
    producer->total = self->tasks;
    producer->ack_lat = (int64_t *) calloc ((size_t) self->tasks, sizeof (int64_t));
    producer->done_lat = (int64_t *) calloc ((size_t) self->tasks, sizeof (int64_t));
    int64_t started = 0, behind = 0;
    double cpu_before = arb_benchkit_cpu_s (self->broker.pid);
    long faults_before = arb_benchkit_minflt (self->broker.pid);
    if (ok)
        ok = s_produce (producer, window, rate, &started, &behind) == 0;
    int64_t ended = consumers ? producer->last_done_us : producer->last_ack_us;
    double seconds = (double) (ended - started) / 1e6;
    int count = consumers ? producer->finished : producer->acked;
    double cpu = arb_benchkit_cpu_s (self->broker.pid) - cpu_before;
    long faults_after = arb_benchkit_minflt (self->broker.pid);
    long faults = faults_before >= 0 && faults_after >= 0 ? faults_after - faults_before : -1;
    s_counts_t counts = {0};
    s_counts (self, &counts);
    long rss = arb_benchproc_kb (self->broker.pid, "VmRSS:");
    long hwm = arb_benchproc_kb (self->broker.pid, "VmHWM:");
    s_head (workload, what);
    printf (", \"tasks\": %d, \"payload_bytes\": %d, \"batch\": %d, \"window\": %d, "
            "\"consumers\": %d, \"credit\": %d, \"sync\": \"%s\", \"retention_s\": %s, "
            "\"seconds\": %.3f, \"tasks_per_s\": %.0f",
            count, self->payload, self->batch, window, consumers, credit, self->sync,
            self->retention, seconds, seconds > 0 ? count / seconds : 0.0);
    if (rate > 0)
        printf (", \"rate\": %.0f, \"behind_schedule_max_ms\": %.2f", rate, behind / 1000.0);
    s_print_lat ("ack_latency", arb_benchkit_latency (producer->ack_lat, producer->n_ack));
    if (consumers)
        s_print_lat ("result_latency", arb_benchkit_latency (producer->done_lat, producer->n_done));
    //  the broker's CPU time and journal commits over the workload
    printf (", \"broker_cpu_s\": %.2f, \"broker_cpu_us_per_task\": %.1f, \"commits\": %" PRIu64
            ", \"commit_ms\": %.1f, \"tasks_per_commit\": %.1f",
            cpu, count ? cpu * 1e6 / count : 0.0, counts.commits, counts.commit_us / 1000.0,
            counts.commits ? (double) count / (double) counts.commits : 0.0);
    printf (", \"broker_faults\": %ld, \"broker_faults_per_1000_tasks\": %.1f", faults,
            count && faults >= 0 ? faults * 1000.0 / count : -1.0);
    printf (", \"broker_rss_kb\": %ld, \"broker_peak_rss_kb\": %ld", rss, hwm);
    s_end (ok && count == self->tasks);
    if (ok && streq (workload, "P2") && self->batch == 1)
        self->p2_per_s = count / seconds;
    if (streq (workload, "P2")) {
        s_head ("M1", "broker RSS after P2");
        printf (", \"batch\": %d, \"rss_kb\": %ld, \"peak_rss_kb\": %ld", self->batch, rss, hwm);
        s_end (ok && rss > 0);
    }
    s_stop_consumers (pids, consumers);
    s_stop (self);
    free (producer->ack_lat);
    free (producer->done_lat);
    free (producer);
}

static void
s_w1 (s_bench_t *self)
{
    s_shape (self, "W1", "submit one at a time, each acknowledged after its commit", 1, 0, 0, 0);
}

static void
s_w2 (s_bench_t *self)
{
    s_shape (self, "W2", "W1's producer + consumers of one slot each, end to end", 1,
             self->consumers, 1, 0);
}

static void
s_p1 (s_bench_t *self)
{
    s_shape (self, "P1", "one task per request, a window of requests, counted at the ack",
             self->window, 0, 0, 0);
}

static void
s_p2 (s_bench_t *self)
{
    s_shape (self, "P2", "P1's producer + consumers with prefetch credit, end to end", self->window,
             self->consumers, self->prefetch, 0);
}

static void
s_l1 (s_bench_t *self)
{
    double rate = self->rate > 0 ? self->rate : self->p2_per_s / 2;
    if (rate <= 0) {
        fprintf (stderr, "arbiter-bench: L1 needs --rate, or P2 in the same run\n");
        s_head ("L1", "P2 paced");
        s_end (false);
        return;
    }
    s_shape (self, "L1", "P2 with the producer paced, submit-to-result latency", self->window,
             self->consumers, self->prefetch, rate);
}

//  ---------------------------------------------------------------------
//  M2 + S1, M3: many tasks queued, no workers; the start-up on them

//  Submits n tasks in SUBMITs of 500, 64 in flight, unwatched. 0 or -1.
static int
s_fill (s_bench_t *self, int n, double *seconds)
{
    s_producer_t *producer = (s_producer_t *) zmalloc (sizeof (s_producer_t));
    s_bench_t copy = *self;
    copy.batch = 500;
    producer->bench = &copy;
    producer->total = n;
    producer->ack_lat = (int64_t *) calloc ((size_t) n, sizeof (int64_t));
    producer->done_lat = NULL;
    int64_t started = 0, behind = 0;
    int rc = s_produce (producer, 64, 0, &started, &behind);
    *seconds = (double) (producer->last_ack_us - started) / 1e6;
    free (producer->ack_lat);
    free (producer);
    return rc;
}

//  Bytes of the journal's files (the database, its WAL, the task log).
static long long
s_journal_bytes (s_bench_t *self)
{
    long long total = 0;
    const char *suffixes[] = {"", "-wal", "-shm", "-tasklog", "-tasklog2"};
    for (size_t i = 0; i < sizeof (suffixes) / sizeof (suffixes[0]); i++) {
        char path[160];
        struct stat st;
        snprintf (path, sizeof (path), "%s/bench.db%s", self->broker.dir, suffixes[i]);
        if (stat (path, &st) == 0)
            total += st.st_size;
    }
    return total;
}

static void
s_queued (s_bench_t *self, const char *workload, int n, bool startup)
{
    if (s_start (self))
        return;
    usleep (200000);
    long base = arb_benchproc_kb (self->broker.pid, "VmRSS:");
    double fill_s = 0;
    bool ok = s_fill (self, n, &fill_s) == 0;
    s_counts_t counts = {0};
    ok = ok && s_counts (self, &counts) == 0 && counts.ready == (uint64_t) n;
    long rss = arb_benchproc_kb (self->broker.pid, "VmRSS:");
    long hwm = arb_benchproc_kb (self->broker.pid, "VmHWM:");
    long long journal = s_journal_bytes (self);
    s_head (workload, "tasks queued, no workers: broker RSS");
    printf (", \"queued\": %d, \"ready_counted\": %" PRIu64 ", \"payload_bytes\": %d, "
            "\"fill_seconds\": %.2f, \"fill_tasks_per_s\": %.0f, \"rss_idle_kb\": %ld, "
            "\"rss_kb\": %ld, \"peak_rss_kb\": %ld, \"bytes_per_queued_task\": %.0f, "
            "\"journal_bytes\": %lld",
            n, counts.ready, self->payload, fill_s, fill_s > 0 ? n / fill_s : 0.0, base, rss, hwm,
            (double) (rss - base) * 1024.0 / n, journal);
    s_end (ok);
    //  S1: the broker started again on that journal
    arb_benchproc_stop (self->broker.pid);
    self->broker.pid = 0;
    int64_t t0 = arb_benchkit_now_us ();
    char *extra[] = {"--retention", (char *) self->retention, NULL};
    bool up = arb_benchproc_start_broker_with (&self->broker, self->arbiterd, self->sync, extra,
                                               true, 600000)
              == 0;
    double start_s = (double) (arb_benchkit_now_us () - t0) / 1e6;
    if (up)
        snprintf (self->endpoint, sizeof (self->endpoint), "%s", self->broker.endpoint);
    s_counts_t after = {0};
    up = up && s_counts (self, &after) == 0;
    s_head (startup ? "S1" : "S3", "start-up on the journal just filled: spawn to first answer");
    printf (", \"open_tasks\": %d, \"ready_counted\": %" PRIu64 ", \"seconds\": %.3f, "
            "\"rss_kb\": %ld",
            n, after.ready, start_s, up ? arb_benchproc_kb (self->broker.pid, "VmRSS:") : -1L);
    s_end (up && after.ready == (uint64_t) n);
    if (up)
        s_stop (self);
    else {
        char cmd[128];
        snprintf (cmd, sizeof (cmd), "rm -rf %s", self->broker.dir);
        if (system (cmd) != 0)
            fprintf (stderr, "arbiter-bench: could not remove %s\n", self->broker.dir);
    }
}

static void
s_m2 (s_bench_t *self)
{
    s_queued (self, "M2", self->queued, true);
}

static void
s_m3 (s_bench_t *self)
{
    s_queued (self, "M3", self->queued_big, false);
}

//  ---------------------------------------------------------------------
//  B1..B4: the older batched workloads (arb_client, arb_worker)

//  Submits count tasks in one SUBMIT; records the submit time of each id
//  (for latency). Returns 0 or -1.
static int
s_submit_batch (
    arb_client_t *client, s_bench_t *self, int count, bool watch, char *payload, zhashx_t *sent_at)
{
    arb_task_spec_t *specs = (arb_task_spec_t *) calloc ((size_t) count, sizeof (arb_task_spec_t));
    uint64_t *ids = (uint64_t *) calloc ((size_t) count, sizeof (uint64_t));
    int64_t now = arb_benchkit_stamp (payload, (size_t) self->payload);
    for (int i = 0; i < count; i++) {
        specs[i].name = "bench";
        specs[i].payload = zframe_new (payload, (size_t) self->payload);
    }
    int rc = arb_client_submit (client, specs, (size_t) count, watch, ids, NULL);
    for (int i = 0; i < count; i++)
        zframe_destroy (&specs[i].payload);
    if (rc == 0 && sent_at)
        for (int i = 0; i < count; i++) {
            char key[24];
            snprintf (key, sizeof (key), "%" PRIu64, ids[i]);
            zhashx_insert (sent_at, key, (void *) (intptr_t) now);
        }
    free (specs);
    free (ids);
    return rc;
}

static void
s_b1 (s_bench_t *self)
{
    if (s_start (self))
        return;
    arb_client_t *client = arb_client_new (self->endpoint);
    char *payload = arb_benchproc_payload (self->payload);
    int64_t started = arb_benchkit_now_us ();
    int done = 0, rc = 0;
    while (done < self->tasks && rc == 0) {
        int count = self->tasks - done < self->b_batch ? self->tasks - done : self->b_batch;
        rc = s_submit_batch (client, self, count, false, payload, NULL);
        done += count;
    }
    double seconds = (double) (arb_benchkit_now_us () - started) / 1e6;
    if (rc)
        fprintf (stderr, "arbiter-bench: B1: %s\n", arb_client_error (client));
    s_head ("B1", "durable submits in batches, one producer");
    printf (", \"tasks\": %d, \"payload_bytes\": %d, \"batch\": %d, \"sync\": \"%s\", "
            "\"seconds\": %.3f, \"tasks_per_s\": %.0f",
            done, self->payload, self->b_batch, self->sync, seconds, done / seconds);
    s_end (rc == 0);
    free (payload);
    arb_client_destroy (&client);
    s_stop (self);
}

//  Takes every result that is there; records latencies. Returns how many.
static int
s_collect (arb_client_t *client, zhashx_t *sent_at, int64_t *latency, int *count, int timeout_ms)
{
    int got = 0;
    arb_done_t *done;
    while ((done = arb_client_next (client, got ? 0 : timeout_ms))) {
        int64_t now = arb_benchkit_now_us ();
        char key[24];
        snprintf (key, sizeof (key), "%" PRIu64, done->id);
        intptr_t at = (intptr_t) zhashx_lookup (sent_at, key);
        if (at) {
            latency[(*count)++] = now - (int64_t) at;
            zhashx_delete (sent_at, key);
        }
        arb_done_destroy (&done);
        got++;
    }
    return got;
}

static void
s_b2 (s_bench_t *self)
{
    if (s_start (self))
        return;
    pid_t workers[S_CONSUMERS_MAX] = {0};
    char slots[16];
    snprintf (slots, sizeof (slots), "%d", self->b_slots);
    for (int i = 0; i < self->b_workers; i++) {
        char *argv[] = {self->self, "--worker", self->endpoint, "--slots", slots, NULL};
        char log[128];
        snprintf (log, sizeof (log), "%s/arbiterd.log", self->broker.dir);
        workers[i] = arb_benchproc_spawn_log (argv, log);
    }
    arb_client_t *client = arb_client_new (self->endpoint);
    char *payload = arb_benchproc_payload (self->payload);
    zhashx_t *sent_at = zhashx_new ();
    int64_t *latency = (int64_t *) calloc ((size_t) self->tasks, sizeof (int64_t));
    int submitted = 0, finished = 0, rc = 0;
    int64_t started = arb_benchkit_now_us ();
    while (finished < self->tasks && rc == 0) {
        while (submitted < self->tasks && submitted - finished < self->b_window && rc == 0) {
            int count =
                self->tasks - submitted < self->b_batch ? self->tasks - submitted : self->b_batch;
            rc = s_submit_batch (client, self, count, true, payload, sent_at);
            submitted += count;
            s_collect (client, sent_at, latency, &finished, 0);
        }
        if (s_collect (client, sent_at, latency, &finished, 5000) == 0 && finished < self->tasks) {
            fprintf (stderr, "arbiter-bench: B2: no result for 5 s (%d of %d finished)\n", finished,
                     self->tasks);
            rc = -1;
        }
    }
    double seconds = (double) (arb_benchkit_now_us () - started) / 1e6;
    s_head ("B2", "end to end, batches, arb_worker processes");
    printf (", \"tasks\": %d, \"payload_bytes\": %d, \"batch\": %d, \"window_tasks\": %d, "
            "\"workers\": %d, \"slots_per_worker\": %d, \"sync\": \"%s\", \"seconds\": %.3f, "
            "\"tasks_per_s\": %.0f",
            finished, self->payload, self->b_batch, self->b_window, self->b_workers, self->b_slots,
            self->sync, seconds, finished / seconds);
    s_print_lat ("result_latency", arb_benchkit_latency (latency, (size_t) finished));
    s_end (rc == 0);
    s_head ("B3", "broker peak RSS after B2");
    printf (", \"peak_rss_kb\": %ld, \"rss_kb\": %ld",
            arb_benchproc_kb (self->broker.pid, "VmHWM:"),
            arb_benchproc_kb (self->broker.pid, "VmRSS:"));
    s_end (true);
    free (latency);
    free (payload);
    zhashx_destroy (&sent_at);
    arb_client_destroy (&client);
    for (int i = 0; i < self->b_workers; i++)
        if (arb_benchproc_stop (workers[i]))
            s_failures++;
    s_stop (self);
}

//  A random DAG: each node waits for up to two earlier nodes.
static void
s_b4 (s_bench_t *self)
{
    if (s_start (self))
        return;
    int n = self->dag_nodes;
    arb_client_t *client = arb_client_new (self->endpoint);
    arb_client_set_timeout (client, 60000);
    arb_task_spec_t *specs = (arb_task_spec_t *) calloc ((size_t) n, sizeof (arb_task_spec_t));
    arb_dep_t *deps = (arb_dep_t *) calloc ((size_t) n * 2, sizeof (arb_dep_t));
    char (*names)[16] = calloc ((size_t) n, 16);
    uint64_t *ids = (uint64_t *) calloc ((size_t) n, sizeof (uint64_t));
    srand (7);
    for (int i = 0; i < n; i++) {
        snprintf (names[i], 16, "n%d", i);
        specs[i].name = "bench";
        specs[i].ref = names[i];
        specs[i].queue = "dag";
        specs[i].payload = zframe_new ("x", 1);
        for (int k = 0; k < 2 && i > 0; k++) {
            deps[i * 2 + k].ref = names[rand () % i];
            if (k == 1 && deps[i * 2 + 1].ref == deps[i * 2].ref)
                break;
            specs[i].after.v = &deps[i * 2];
            specs[i].after.n = (size_t) k + 1;
        }
    }
    uint64_t flow = 0;
    int64_t started = arb_benchkit_now_us ();
    int rc = arb_client_submit_flow (client, ARB_FLOW_DAG, "bench", specs, (size_t) n, false, ids,
                                     &flow);
    double seconds = (double) (arb_benchkit_now_us () - started) / 1e6;
    if (rc)
        fprintf (stderr, "arbiter-bench: B4: %s\n", arb_client_error (client));
    s_head ("B4", "one DAG submitted and accepted");
    printf (", \"nodes\": %d, \"seconds\": %.3f", n, seconds);
    s_end (rc == 0);
    for (int i = 0; i < n; i++)
        zframe_destroy (&specs[i].payload);
    free (specs);
    free (deps);
    free (names);
    free (ids);
    arb_client_destroy (&client);
    s_stop (self);
}

//  ---------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: arbiter-bench [options]\n"
        "\n"
        "Starts its own arbiterd on a fresh journal for each workload and measures it\n"
        "(one JSON line per workload). The shapes every queue is measured with:\n"
        "  F1  a small write made durable in the journals' directory, three ways (W1's floor)\n"
        "  R1  durable round trips (a commit's write + fdatasync each) over plain TCP\n"
        "      and over ZeroMQ: the transport's share of W1 (not in the default)\n"
        "  W1  submit one task at a time, each acknowledged after its commit\n"
        "  W2  W1's producer + consumers holding one task each, end to end\n"
        "  P1  one task per SUBMIT, --window SUBMITs in flight, counted at the ack\n"
        "  P2  P1's producer + consumers with --prefetch credit, end to end (+ M1, RSS)\n"
        "  L1  P2 paced at --rate (default half of P2's): submit-to-result latency\n"
        "  M2  --queued tasks queued, no workers: RSS, bytes per task (+ S1, start-up)\n"
        "  M3  the same with --queued-big tasks (not in all)\n"
        "The older batched workloads: B1 durable submits in batches, B2 end to end\n"
        "with arb_worker processes (+ B3, peak RSS), B4 a DAG submitted at once.\n"
        "\n"
        "  --arbiterd PATH   broker binary (default: build/broker/arbiterd)\n"
        "  --workloads LIST  comma list, or all: F1,W1,W2,P1,P2,L1,M2,B1,B2,B4 (default)\n"
        "  --tasks N         tasks per workload (default 100000)\n"
        "  --payload BYTES   payload size (default 100, at least 16)\n"
        "  --batch N         W1..L1: tasks per SUBMIT (default 1)\n"
        "  --window N        P1, P2, L1: SUBMITs awaiting their ack, at most (default 256)\n"
        "  --consumers N     W2, P2, L1: consumer processes (default 2)\n"
        "  --prefetch N      P2, L1: credit per consumer (default 50)\n"
        "  --rate N          L1: tasks/s (default: half of P2's in this run)\n"
        "  --retention S     the broker's --retention in seconds (default 0: a finished task\n"
        "                    leaves the journal at its end, as the peers delete it)\n"
        "  --queued N        M2: tasks queued (default 1000000)\n"
        "  --queued-big N    M3: tasks queued (default 10000000)\n"
        "  --probe N         F1: writes; R1: round trips of each kind (default 2000)\n"
        "  --b-batch N       B1, B2: tasks per submit (default 500)\n"
        "  --b-window N      B2: tasks submitted and not finished (default 20000)\n"
        "  --b-workers N     B2: worker processes (default 2)\n"
        "  --b-slots N       B2: light slots per worker (default 64)\n"
        "  --dag-nodes N     B4: nodes (default 10000)\n"
        "  --sync full|normal  the broker's durability (default full)\n"
        "  -h, --help        this text\n"
        "  --version         the version\n");
}

//  The value of the long option name, refused unless a whole number from
//  min to max (arb_benchkit.h): 0 or -1.
static int
s_whole (const char *name, const char *text, int min, int max, int *value)
{
    return arb_benchkit_whole ("arbiter-bench", name, text, min, max, value);
}

static int
s_parse (s_bench_t *self, int argc, char *argv[])
{
    static struct option options[] = {
        {"arbiterd", required_argument, 0, 'a'},  {"workloads", required_argument, 0, 'w'},
        {"tasks", required_argument, 0, 't'},     {"payload", required_argument, 0, 'p'},
        {"batch", required_argument, 0, 'b'},     {"window", required_argument, 0, 'W'},
        {"consumers", required_argument, 0, 'c'}, {"prefetch", required_argument, 0, 'f'},
        {"rate", required_argument, 0, 'r'},      {"retention", required_argument, 0, 'R'},
        {"queued", required_argument, 0, 'q'},    {"queued-big", required_argument, 0, 'Q'},
        {"probe", required_argument, 0, 'P'},     {"b-batch", required_argument, 0, '1'},
        {"b-window", required_argument, 0, '2'},  {"b-workers", required_argument, 0, '3'},
        {"b-slots", required_argument, 0, '4'},   {"dag-nodes", required_argument, 0, 'd'},
        {"sync", required_argument, 0, 'S'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0},
    };
    int opt, index;
    while ((index = -1, opt = getopt_long (argc, argv, "h", options, &index)) != -1) {
        //  a number's option by its long name, for the refusal
        const char *name = index >= 0 ? options[index].name : "";
        int rc = 0;
        switch (opt) {
            case 'a':
                self->arbiterd = optarg;
                break;
            case 'w':
                self->workloads = optarg;
                break;
            case 't':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->tasks);
                break;
            case 'p':
                rc = s_whole (name, optarg, ARB_BENCHKIT_STAMP, INT_MAX, &self->payload);
                break;
            case 'b':
                rc = s_whole (name, optarg, 1, 10000, &self->batch);
                break;
            case 'W':
                rc = s_whole (name, optarg, 1, 10000, &self->window);
                break;
            case 'c':
                rc = s_whole (name, optarg, 1, S_CONSUMERS_MAX, &self->consumers);
                break;
            case 'f':
                rc = s_whole (name, optarg, 1, 10000, &self->prefetch);
                break;
            case 'r':
                rc = s_whole (name, optarg, 0, INT_MAX, &self->rate);
                break;
            case 'R':
                rc = arb_benchkit_seconds ("arbiter-bench", name, optarg,
                                           ARB_BENCHKIT_RETENTION_MAX_MS);
                self->retention = optarg;
                break;
            case 'q':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->queued);
                break;
            case 'Q':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->queued_big);
                break;
            case 'P':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->probe);
                break;
            case '1':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->b_batch);
                break;
            case '2':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->b_window);
                break;
            case '3':
                rc = s_whole (name, optarg, 1, S_CONSUMERS_MAX, &self->b_workers);
                break;
            case '4':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->b_slots);
                break;
            case 'd':
                rc = s_whole (name, optarg, 1, INT_MAX, &self->dag_nodes);
                break;
            case 'S':
                self->sync = optarg;
                break;
            case 'h':
                s_usage (stdout);
                exit (0);
            case 'V':
                printf ("arbiter-bench %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                exit (0);
            default:
                s_usage (stderr);
                return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        arb_benchkit_refuse ("arbiter-bench", "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!streq (self->sync, "full") && !streq (self->sync, "normal")) {
        arb_benchkit_refuse ("arbiter-bench", "--sync: expected full or normal, not '%s'",
                             self->sync);
        return -1;
    }
    if (self->b_window < self->b_batch) {
        arb_benchkit_refuse ("arbiter-bench",
                             "--b-window (%d) is less than --b-batch (%d): no batch would fit",
                             self->b_window, self->b_batch);
        return -1;
    }
    return 0;
}

//  Whether the run includes workload (a whole item of the comma list).
static bool
s_wants (s_bench_t *self, const char *workload)
{
    if (streq (self->workloads, "all") && !streq (workload, "M3"))
        return true;
    size_t len = strlen (workload);
    for (const char *at = self->workloads; (at = strstr (at, workload)); at += len)
        if ((at == self->workloads || at[-1] == ',') && (at[len] == 0 || at[len] == ','))
            return true;
    return false;
}

int
main (int argc, char *argv[])
{
    if (argc == 5 && streq (argv[1], "--consumer") && streq (argv[3], "--credit")) {
        zsys_init ();
        zsys_set_logstream (stderr);
        return s_run_consumer (argv[2], atoi (argv[4]));
    }
    zsys_init ();
    zsys_set_logstream (stderr);  //  stdout is for the JSON lines
    if (argc == 5 && streq (argv[1], "--worker") && streq (argv[3], "--slots"))
        return s_run_worker (argv[2], atoi (argv[4]));
    s_bench_t self = {.arbiterd = "build/broker/arbiterd",
                      .sync = "full",
                      .workloads = "all",
                      .retention = "0",
                      .tasks = 100000,
                      .payload = 100,
                      .batch = 1,
                      .window = 256,
                      .consumers = 2,
                      .prefetch = 50,
                      .queued = 1000000,
                      .queued_big = 10000000,
                      .probe = 2000,
                      .b_batch = 500,
                      .b_window = 20000,
                      .b_workers = 2,
                      .b_slots = 64,
                      .dag_nodes = 10000};
    if (s_parse (&self, argc, argv))
        return 2;
    char arbiterd[PATH_MAX];
    if (arb_benchproc_find (self.arbiterd, "--arbiterd", arbiterd, sizeof (arbiterd)))
        return 2;
    self.arbiterd = arbiterd;
    if (!realpath ("/proc/self/exe", self.self)) {
        fprintf (stderr, "arbiter-bench: cannot find itself\n");
        return 1;
    }
    struct {
        const char *name;
        void (*run) (s_bench_t *);
    } workloads[] = {{"F1", s_f1}, {"R1", s_r1}, {"W1", s_w1}, {"W2", s_w2},
                     {"P1", s_p1}, {"P2", s_p2}, {"L1", s_l1}, {"M2", s_m2},
                     {"M3", s_m3}, {"B1", s_b1}, {"B2", s_b2}, {"B4", s_b4}};
    //  every name asked for must be known (M1, S1, B3 come with P2, M2, B2)
    char *names = strdup (self.workloads);
    for (char *name = strtok (names, ","); name; name = strtok (NULL, ",")) {
        bool known =
            streq (name, "all") || streq (name, "M1") || streq (name, "S1") || streq (name, "B3");
        for (size_t i = 0; i < sizeof (workloads) / sizeof (workloads[0]); i++)
            known = known || streq (name, workloads[i].name);
        if (!known) {
            fprintf (stderr, "arbiter-bench: unknown workload %s\n", name);
            free (names);
            return 2;
        }
    }
    free (names);
    for (size_t i = 0; i < sizeof (workloads) / sizeof (workloads[0]) && !zsys_interrupted; i++) {
        const char *name = workloads[i].name;
        bool wanted = s_wants (&self, name) || (streq (name, "P2") && s_wants (&self, "M1"))
                      || (streq (name, "M2") && s_wants (&self, "S1"))
                      || (streq (name, "B2") && s_wants (&self, "B3"));
        if (wanted)
            workloads[i].run (&self);
    }
    return s_failures || zsys_interrupted ? 1 : 0;
}
