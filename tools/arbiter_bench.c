/*  arbiter-bench — measures arbiter with libarbiter, as a user would.

    Each workload gets its own arbiterd, started on a fresh journal in a
    temporary directory (--sync full unless told otherwise), and W2 two
    worker processes (itself, re-run with --worker), so that every figure
    comes from a clean start and no workload sees another's tasks.
    Workloads:

      W1  one producer submits N tasks (100-byte payloads) in batches; every
          batch is acknowledged only after its journal commit: tasks/s
      W2  one producer and two worker processes, from the first submit to
          the last result: tasks/s and p50/p99 submit-to-result latency
      W3  the broker's peak resident memory after W2
      W4  one 10,000-node DAG submitted at once: seconds until accepted
          (validation, cycle check and journal inserts included)

    It prints one JSON line per workload. Speed thresholds never belong in
    tests; this tool is how BENCHMARKS.md gets its figures.
*/

#include "arb_benchproc.h"
#include "arb_client.h"
#include "arb_worker.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>

typedef struct {
    const char *arbiterd;   //  path of the broker binary
    const char *sync;       //  full | normal
    const char *workloads;  //  comma list, or "all"
    int tasks;              //  per workload
    int payload;            //  bytes per task
    int batch;              //  tasks per SUBMIT
    int window;             //  W2: tasks submitted but not finished, at most
    int workers;            //  W2: worker processes
    int slots;              //  W2: light slots per worker
    int dag_nodes;          //  W4
    char endpoint[64];      //  the broker's
    arb_benchproc_broker_t broker;
    char self[PATH_MAX];  //  this binary, to start workers
} s_bench_t;

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  The p-th percentile of n sorted values, in ms.
static double
s_percentile_ms (int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t at = (size_t) ceil (p / 100.0 * (double) n);
    at = at ? at - 1 : 0;
    return (double) sorted[at < n ? at : n - 1] / 1000.0;
}

//  ---------------------------------------------------------------------
//  Processes

//  ---------------------------------------------------------------------
//  The worker side of W2: echo the payload back

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
//  Producing

//  Fills a batch of specs for task number first.. and submits it; records
//  the submit time of each id (for latency). Returns 0 or -1.
static int
s_submit_batch (arb_client_t *client,
                s_bench_t *self,
                int count,
                bool watch,
                const char *payload,
                zhashx_t *sent_at)
{
    arb_task_spec_t *specs = (arb_task_spec_t *) calloc ((size_t) count, sizeof (arb_task_spec_t));
    uint64_t *ids = (uint64_t *) calloc ((size_t) count, sizeof (uint64_t));
    for (int i = 0; i < count; i++) {
        specs[i].name = "bench";
        specs[i].payload = zframe_new (payload, (size_t) self->payload);
    }
    int64_t now = s_now_us ();
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
s_w1 (s_bench_t *self)
{
    arb_client_t *client = arb_client_new (self->endpoint);
    char *payload = arb_benchproc_payload (self->payload);
    int64_t started = s_now_us ();
    int done = 0, rc = 0;
    while (done < self->tasks && rc == 0) {
        int count = self->tasks - done < self->batch ? self->tasks - done : self->batch;
        rc = s_submit_batch (client, self, count, false, payload, NULL);
        done += count;
    }
    double seconds = (double) (s_now_us () - started) / 1e6;
    if (rc)
        fprintf (stderr, "arbiter-bench: W1: %s\n", arb_client_error (client));
    printf ("{\"workload\": \"W1\", \"what\": \"durable submits, one producer\", \"tasks\": %d, "
            "\"payload_bytes\": %d, \"batch\": %d, \"sync\": \"%s\", \"seconds\": %.3f, "
            "\"tasks_per_s\": %.0f, \"ok\": %s}\n",
            done, self->payload, self->batch, self->sync, seconds, done / seconds,
            rc ? "false" : "true");
    fflush (stdout);
    free (payload);
    arb_client_destroy (&client);
}

//  Takes every result that is there; records latencies. Returns how many.
static int
s_collect (arb_client_t *client, zhashx_t *sent_at, int64_t *latency, int *count, int timeout_ms)
{
    int got = 0;
    arb_done_t *done;
    while ((done = arb_client_next (client, got ? 0 : timeout_ms))) {
        int64_t now = s_now_us ();
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
s_w2 (s_bench_t *self, pid_t *workers)
{
    char slots[16];
    snprintf (slots, sizeof (slots), "%d", self->slots);
    for (int i = 0; i < self->workers; i++) {
        char *argv[] = {self->self, "--worker", self->endpoint, "--slots", slots, NULL};
        workers[i] = arb_benchproc_spawn (argv);
    }
    arb_client_t *client = arb_client_new (self->endpoint);
    char *payload = arb_benchproc_payload (self->payload);
    zhashx_t *sent_at = zhashx_new ();
    int64_t *latency = (int64_t *) calloc ((size_t) self->tasks, sizeof (int64_t));
    int submitted = 0, finished = 0, rc = 0;
    int64_t started = s_now_us ();
    while (finished < self->tasks && rc == 0) {
        while (submitted < self->tasks && submitted - finished < self->window && rc == 0) {
            int count =
                self->tasks - submitted < self->batch ? self->tasks - submitted : self->batch;
            rc = s_submit_batch (client, self, count, true, payload, sent_at);
            submitted += count;
            s_collect (client, sent_at, latency, &finished, 0);
        }
        if (s_collect (client, sent_at, latency, &finished, 5000) == 0 && finished < self->tasks) {
            fprintf (stderr, "arbiter-bench: W2: no result for 5 s (%d of %d finished)\n", finished,
                     self->tasks);
            rc = -1;
        }
    }
    double seconds = (double) (s_now_us () - started) / 1e6;
    qsort (latency, (size_t) finished, sizeof (int64_t), s_compare_i64);
    printf ("{\"workload\": \"W2\", \"what\": \"end to end, 1 producer, %d worker processes\", "
            "\"tasks\": %d, \"payload_bytes\": %d, \"batch\": %d, \"window\": %d, "
            "\"slots_per_worker\": %d, \"sync\": \"%s\", \"seconds\": %.3f, \"tasks_per_s\": %.0f, "
            "\"latency_p50_ms\": %.2f, \"latency_p99_ms\": %.2f, \"ok\": %s}\n",
            self->workers, finished, self->payload, self->batch, self->window, self->slots,
            self->sync, seconds, finished / seconds,
            s_percentile_ms (latency, (size_t) finished, 50),
            s_percentile_ms (latency, (size_t) finished, 99), rc ? "false" : "true");
    fflush (stdout);
    free (latency);
    free (payload);
    zhashx_destroy (&sent_at);
    arb_client_destroy (&client);
}

static void
s_w3 (s_bench_t *self)
{
    printf ("{\"workload\": \"W3\", \"what\": \"broker peak RSS after W2\", \"peak_rss_kb\": "
            "%ld}\n",
            arb_benchproc_kb (self->broker.pid, "VmHWM:"));
    fflush (stdout);
}

//  A random DAG: each node waits for up to two earlier nodes.
static void
s_w4 (s_bench_t *self)
{
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
    int64_t started = s_now_us ();
    int rc = arb_client_submit_flow (client, ARB_FLOW_DAG, "bench", specs, (size_t) n, false, ids,
                                     &flow);
    double seconds = (double) (s_now_us () - started) / 1e6;
    if (rc)
        fprintf (stderr, "arbiter-bench: W4: %s\n", arb_client_error (client));
    printf ("{\"workload\": \"W4\", \"what\": \"one DAG submitted and accepted\", \"nodes\": %d, "
            "\"seconds\": %.3f, \"ok\": %s}\n",
            n, seconds, rc ? "false" : "true");
    fflush (stdout);
    for (int i = 0; i < n; i++)
        zframe_destroy (&specs[i].payload);
    free (specs);
    free (deps);
    free (names);
    free (ids);
    arb_client_destroy (&client);
}

//  ---------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: arbiter-bench [options]\n"
             "\n"
             "Starts its own arbiterd on a fresh journal and measures it (one JSON line per\n"
             "workload): W1 durable submits, W2 end to end with worker processes, W3 the\n"
             "broker's peak RSS after W2, W4 a DAG submitted at once.\n"
             "\n"
             "  --arbiterd PATH   broker binary (default: build/broker/arbiterd)\n"
             "  --workloads LIST  W1,W2,W3,W4 or all (default all)\n"
             "  --tasks N         tasks per workload (default 100000)\n"
             "  --payload BYTES   payload size (default 100)\n"
             "  --batch N         tasks per submit (default 500)\n"
             "  --window N        W2: at most N tasks submitted and not finished (default 20000)\n"
             "  --workers N       W2: worker processes (default 2)\n"
             "  --slots N         W2: light slots per worker (default 64)\n"
             "  --dag-nodes N     W4: nodes (default 10000)\n"
             "  --sync full|normal  the broker's durability (default full)\n"
             "  -h, --help        this text\n"
             "  --version         the version\n");
}

static int
s_parse (s_bench_t *self, int argc, char *argv[])
{
    static struct option options[] = {
        {"arbiterd", required_argument, 0, 'a'},
        {"workloads", required_argument, 0, 'w'},
        {"tasks", required_argument, 0, 't'},
        {"payload", required_argument, 0, 'p'},
        {"batch", required_argument, 0, 'b'},
        {"window", required_argument, 0, 'W'},
        {"workers", required_argument, 0, 'k'},
        {"slots", required_argument, 0, 's'},
        {"dag-nodes", required_argument, 0, 'd'},
        {"sync", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        int value = optarg ? atoi (optarg) : 0;
        switch (opt) {
            case 'a':
                self->arbiterd = optarg;
                break;
            case 'w':
                self->workloads = optarg;
                break;
            case 't':
                self->tasks = value;
                break;
            case 'p':
                self->payload = value;
                break;
            case 'b':
                self->batch = value;
                break;
            case 'W':
                self->window = value;
                break;
            case 'k':
                self->workers = value;
                break;
            case 's':
                self->slots = value;
                break;
            case 'd':
                self->dag_nodes = value;
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
    }
    if (optind < argc || self->tasks < 1 || self->payload < 0 || self->batch < 1
        || self->window < self->batch || self->workers < 1 || self->workers > 16 || self->slots < 1
        || self->dag_nodes < 1 || (!streq (self->sync, "full") && !streq (self->sync, "normal"))) {
        fprintf (stderr, "arbiter-bench: bad arguments\n");
        s_usage (stderr);
        return -1;
    }
    return 0;
}

static bool
s_wants (s_bench_t *self, const char *workload)
{
    return streq (self->workloads, "all") || strstr (self->workloads, workload);
}

static void
s_w2_w3 (s_bench_t *self)
{
    pid_t workers[16] = {0};
    s_w2 (self, workers);
    if (s_wants (self, "W3"))
        s_w3 (self);
    for (int i = 0; i < self->workers; i++)
        arb_benchproc_stop (workers[i]);
}

//  Runs a workload against a broker of its own. Returns 0 or -1.
static int
s_with_broker (s_bench_t *self, void (*workload) (s_bench_t *))
{
    if (arb_benchproc_start_broker (&self->broker, self->arbiterd, self->sync)) {
        fprintf (stderr, "arbiter-bench: the broker (%s) did not start\n", self->arbiterd);
        return -1;
    }
    snprintf (self->endpoint, sizeof (self->endpoint), "%s", self->broker.endpoint);
    workload (self);
    arb_benchproc_stop_broker (&self->broker);
    return 0;
}

int
main (int argc, char *argv[])
{
    zsys_init ();
    zsys_set_logstream (stderr);  //  stdout is for the JSON lines
    if (argc == 5 && streq (argv[1], "--worker") && streq (argv[3], "--slots"))
        return s_run_worker (argv[2], atoi (argv[4]));
    s_bench_t self = {.arbiterd = "build/broker/arbiterd",
                      .sync = "full",
                      .workloads = "all",
                      .tasks = 100000,
                      .payload = 100,
                      .batch = 500,
                      .window = 20000,
                      .workers = 2,
                      .slots = 64,
                      .dag_nodes = 10000};
    if (s_parse (&self, argc, argv))
        return 2;
    if (!realpath ("/proc/self/exe", self.self)) {
        fprintf (stderr, "arbiter-bench: cannot find itself\n");
        return 1;
    }
    int rc = 0;
    if (s_wants (&self, "W1"))
        rc |= s_with_broker (&self, s_w1);
    if (s_wants (&self, "W2") || s_wants (&self, "W3"))
        rc |= s_with_broker (&self, s_w2_w3);
    if (s_wants (&self, "W4"))
        rc |= s_with_broker (&self, s_w4);
    return rc ? 1 : 0;
}
