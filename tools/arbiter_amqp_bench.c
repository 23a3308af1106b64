/*  arbiter-amqp-bench — the gateway's AMQP server against a real RabbitMQ,
    with the same client (rabbitmq-c) and the same settings, in one run on
    one machine.

    It starts its own arbiterd (fresh journal in a temporary directory,
    --sync full unless told otherwise; an acked message's task deleted at
    its ack, as RabbitMQ deletes the message, unless --retention says to
    keep it) and arbiter-gateway, and a
    rabbitmq-server of its own (Debian's package: a temporary data
    directory, node name arbbench<PID>@localhost, its own epmd, AMQP and
    distribution ports, all on loopback; stopped by PID), then runs on
    each, every workload on a durable queue of its own:

      A1  publish: P connections publish N persistent messages
          (delivery_mode 2) with publisher confirms, each with up to
          --window unconfirmed: confirmed messages/s
      A2  consume: C connections (basic.qos --prefetch) drain those N,
          acking each one: acked messages/s
      A3  end to end: A1 and A2 at once on one queue: messages/s from the
          first publish to the last ack, and the publish-to-delivery
          latency (p50, p99, max)
      A4  half load: A3 with the publishers paced to a total rate (by
          default half of RabbitMQ's A3 figure, the same rate on both):
          publish-to-delivery latency p50, p99, max

    The client is rabbitmq-c, which writes each frame with a system call of
    its own (three a publish, one an ack): at the gateway's rates its
    sending took a core, most of it the kernel's TCP path. With --cork a
    client's socket is corked while it writes a window of publishes, or
    acks deliveries it has read already, so that they leave together, as
    pika and amqplib write what they have queued at once; the same for
    both targets, and said in every JSON line ("cork").

    Each message's body starts with its publish time (CLOCK_MONOTONIC, ns),
    so the latency is measured in one process. One JSON line per workload
    and target, then one with the ratios. Speed thresholds never belong in
    tests; this tool is how BENCHMARKS.md gets its figures.
*/

#include "arb_benchkit.h"
#include "arb_benchproc.h"
#include "arb_proto.h"

#include <amqp.h>
#include <czmq.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *arbiterd;
    const char *gateway;
    const char *sync;
    const char *retention;  //  seconds: the broker's --retention, the gateway's --message-retention
    const char *only;       //  "gateway", "rabbitmq" or NULL: both
    const char *workloads;  //  comma list of A1..A4
    int items;
    int payload;
    int producers;
    int consumers;
    int window;
    int prefetch;
    bool cork;  //  the clients batch their writes (TCP_CORK), on both targets
    int rate;   //  A4's messages/s; 0: half of RabbitMQ's A3
    arb_benchproc_broker_t broker;
    pid_t gw;
    int gw_port;
    arb_benchproc_rabbit_t rabbit;
} s_bench_t;

//  One target's figures.
typedef struct {
    const char *name;
    int port;
    double publish;  //  A1 messages/s
    double consume;  //  A2
    double e2e;      //  A3
    double e2e_p50_ms, e2e_p99_ms, e2e_max_ms;
    double half_rate;  //  A4's offered rate
    double half_p50_ms, half_p99_ms, half_max_ms;
} s_target_t;

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

//  ---------------------------------------------------------------------
//  rabbitmq-c connections

static bool
s_ok (amqp_rpc_reply_t reply)
{
    return reply.reply_type == AMQP_RESPONSE_NORMAL;
}

//  A logged-in connection with channel 1 open, or NULL.
static amqp_connection_state_t
s_connect (int port)
{
    amqp_connection_state_t conn = amqp_new_connection ();
    amqp_socket_t *sock = amqp_tcp_socket_new (conn);
    if (!sock || amqp_socket_open (sock, "127.0.0.1", port) != AMQP_STATUS_OK
        || !s_ok (amqp_login (conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"))
        || !amqp_channel_open (conn, 1) || !s_ok (amqp_get_rpc_reply (conn))) {
        amqp_destroy_connection (conn);
        return NULL;
    }
    return conn;
}

//  With --cork, a client's writes wait in its socket while it writes a
//  window of publishes, or acks deliveries it has read already, and go
//  out together when it stops (rabbitmq-c writes each frame with a system
//  call of its own: three a publish); pika and amqplib write what they
//  have queued at once. The same for both targets.
static void
s_cork (const s_bench_t *bench, amqp_connection_state_t conn, int on)
{
    if (bench->cork)
        setsockopt (amqp_get_sockfd (conn), IPPROTO_TCP, TCP_CORK, &on, sizeof (on));
}

static void
s_disconnect (amqp_connection_state_t conn)
{
    amqp_channel_close (conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
}

static int
s_declare (int port, const char *queue)
{
    amqp_connection_state_t conn = s_connect (port);
    if (!conn)
        return -1;
    amqp_queue_declare (conn, 1, amqp_cstring_bytes (queue), 0, 1, 0, 0, amqp_empty_table);
    int rc = s_ok (amqp_get_rpc_reply (conn)) ? 0 : -1;
    s_disconnect (conn);
    return rc;
}

//  Waits until a client can log in (the gateway holds connection.open
//  until its records are loaded). 0, or -1 after timeout_s.
static int
s_wait_up (int port, int timeout_s)
{
    uint64_t deadline = s_now_ns () + (uint64_t) timeout_s * 1000000000ull;
    while (s_now_ns () < deadline) {
        amqp_connection_state_t conn = s_connect (port);
        if (conn) {
            s_disconnect (conn);
            return 0;
        }
        usleep (200 * 1000);
    }
    return -1;
}

//  ---------------------------------------------------------------------
//  Workers (one thread and one connection each)

typedef struct {
    s_bench_t *bench;
    int port;
    const char *queue;
    int count;         //  a publisher's messages
    double rate;       //  a publisher's messages/s; 0: as fast as confirms allow
    atomic_int *done;  //  consumers: messages acked, all consumers together
    int total;         //  consumers: stop at this many
    uint64_t *lat;     //  consumers: latencies (ns), owned by the caller
    int nlat;
    int cap;
    int failed;
    uint64_t first_ns;  //  publishers: first publish
    uint64_t last_ns;   //  last confirm or ack
} s_worker_t;

static void *
s_publisher (void *arg)
{
    s_worker_t *w = (s_worker_t *) arg;
    amqp_connection_state_t conn = s_connect (w->port);
    if (!conn) {
        w->failed = w->count;
        return NULL;
    }
    amqp_confirm_select (conn, 1);
    if (!s_ok (amqp_get_rpc_reply (conn))) {
        w->failed = w->count;
        s_disconnect (conn);
        return NULL;
    }
    size_t size = (size_t) w->bench->payload;
    char *body = arb_benchproc_payload ((int) size);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    uint64_t sent = 0, confirmed = 0;
    uint64_t interval = w->rate > 0 ? (uint64_t) (1e9 / w->rate) : 0;
    w->first_ns = s_now_ns ();
    while (confirmed < (uint64_t) w->count && !zsys_interrupted) {
        s_cork (w->bench, conn, 1);
        while (sent < (uint64_t) w->count && sent - confirmed < (uint64_t) w->bench->window) {
            if (interval) {
                uint64_t due = w->first_ns + sent * interval;
                if (s_now_ns () < due)
                    break;
            }
            uint64_t now = s_now_ns ();
            memcpy (body, &now, sizeof (now));
            amqp_bytes_t bytes = {size, body};
            if (amqp_basic_publish (conn, 1, amqp_cstring_bytes (""), amqp_cstring_bytes (w->queue),
                                    0, 0, &props, bytes)
                != AMQP_STATUS_OK) {
                w->failed += (int) (w->count - confirmed);
                goto cleanup;
            }
            sent++;
        }
        s_cork (w->bench, conn, 0);
        //  confirms: wait for one, unless the next publish is due sooner
        struct timeval tv = {0, 200 * 1000};
        if (interval && sent < (uint64_t) w->count
            && sent - confirmed < (uint64_t) w->bench->window) {
            uint64_t due = w->first_ns + sent * interval, now = s_now_ns ();
            uint64_t wait = due > now ? due - now : 0;
            tv.tv_sec = (time_t) (wait / 1000000000ull);
            tv.tv_usec = (suseconds_t) ((wait % 1000000000ull) / 1000);
        }
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame_noblock (conn, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            w->failed += (int) (w->count - confirmed);
            goto cleanup;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD
            || frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            bool nack = frame.payload.method.id == AMQP_BASIC_NACK_METHOD;
            uint64_t tag;
            bool multiple;
            if (nack) {
                amqp_basic_nack_t *m = (amqp_basic_nack_t *) frame.payload.method.decoded;
                tag = m->delivery_tag;
                multiple = m->multiple;
            }
            else {
                amqp_basic_ack_t *m = (amqp_basic_ack_t *) frame.payload.method.decoded;
                tag = m->delivery_tag;
                multiple = m->multiple;
            }
            uint64_t n = multiple ? tag - confirmed : 1;
            if (nack)
                w->failed += (int) n;
            confirmed += n;
        }
        amqp_maybe_release_buffers (conn);
    }
    w->last_ns = s_now_ns ();
cleanup:
    free (body);
    s_disconnect (conn);
    return NULL;
}

static void *
s_consumer (void *arg)
{
    s_worker_t *w = (s_worker_t *) arg;
    amqp_connection_state_t conn = s_connect (w->port);
    if (!conn) {
        w->failed = 1;
        return NULL;
    }
    amqp_basic_qos (conn, 1, 0, (uint16_t) w->bench->prefetch, 0);
    amqp_basic_consume (conn, 1, amqp_cstring_bytes (w->queue), amqp_empty_bytes, 0, 0, 0,
                        amqp_empty_table);
    if (!s_ok (amqp_get_rpc_reply (conn))) {
        w->failed = 1;
        s_disconnect (conn);
        return NULL;
    }
    while (atomic_load (w->done) < w->total && !zsys_interrupted) {
        amqp_envelope_t envelope;
        struct timeval tv = {0, 200 * 1000};
        amqp_maybe_release_buffers (conn);
        amqp_rpc_reply_t reply = amqp_consume_message (conn, &envelope, &tv, 0);
        if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
            && reply.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (!s_ok (reply)) {
            w->failed = 1;
            break;
        }
        uint64_t now = s_now_ns (), sent = 0;
        if (envelope.message.body.len >= sizeof (sent))
            memcpy (&sent, envelope.message.body.bytes, sizeof (sent));
        if (w->nlat < w->cap && sent && now > sent)
            w->lat[w->nlat++] = now - sent;
        //  the acks of the deliveries read already go out together
        s_cork (w->bench, conn, 1);
        amqp_basic_ack (conn, 1, envelope.delivery_tag, 0);
        if (!amqp_data_in_buffer (conn))
            s_cork (w->bench, conn, 0);
        amqp_destroy_envelope (&envelope);
        atomic_fetch_add (w->done, 1);
        w->last_ns = now;
    }
    s_disconnect (conn);
    return NULL;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Runs publishers (publish), consumers (consume) or both on queue;
//  returns messages/s from the first publish (or the start) to the last
//  confirm or ack, and the latencies' p50/p99/max in ms when consuming.
static double
s_run (s_bench_t *bench,
       int port,
       const char *queue,
       bool publish,
       bool consume,
       double rate,
       double *p50,
       double *p99,
       double *max,
       int *failed)
{
    int np = publish ? bench->producers : 0, nc = consume ? bench->consumers : 0;
    s_worker_t *workers = (s_worker_t *) calloc ((size_t) (np + nc), sizeof (s_worker_t));
    pthread_t *threads = (pthread_t *) calloc ((size_t) (np + nc), sizeof (pthread_t));
    atomic_int done = 0;
    uint64_t start = s_now_ns ();
    for (int i = 0; i < nc; i++) {
        s_worker_t *w = &workers[np + i];
        *w = (s_worker_t){.bench = bench,
                          .port = port,
                          .queue = queue,
                          .done = &done,
                          .total = bench->items,
                          .cap = bench->items};
        w->lat = (uint64_t *) malloc ((size_t) bench->items * sizeof (uint64_t));
        pthread_create (&threads[np + i], NULL, s_consumer, w);
    }
    for (int i = 0; i < np; i++) {
        s_worker_t *w = &workers[i];
        *w = (s_worker_t){.bench = bench,
                          .port = port,
                          .queue = queue,
                          .count = bench->items / np + (i < bench->items % np),
                          .rate = rate / np};
        pthread_create (&threads[i], NULL, s_publisher, w);
    }
    uint64_t first = UINT64_MAX, last = 0;
    size_t nlat = 0;
    *failed = 0;
    for (int i = 0; i < np + nc; i++) {
        pthread_join (threads[i], NULL);
        if (i < np && workers[i].first_ns && workers[i].first_ns < first)
            first = workers[i].first_ns;
        if (workers[i].last_ns > last)
            last = workers[i].last_ns;
        nlat += (size_t) workers[i].nlat;
        *failed += workers[i].failed;
    }
    if (!np)
        first = start;
    uint64_t *lat = (uint64_t *) malloc ((nlat + 1) * sizeof (uint64_t));
    size_t k = 0;
    for (int i = np; i < np + nc; i++) {
        memcpy (lat + k, workers[i].lat, (size_t) workers[i].nlat * sizeof (uint64_t));
        k += (size_t) workers[i].nlat;
        free (workers[i].lat);
    }
    qsort (lat, nlat, sizeof (uint64_t), s_cmp_u64);
    *p50 = nlat ? (double) lat[nlat / 2] / 1e6 : 0;
    *p99 = nlat ? (double) lat[(nlat * 99) / 100] / 1e6 : 0;
    *max = nlat ? (double) lat[nlat - 1] / 1e6 : 0;
    free (lat);
    free (workers);
    free (threads);
    return last > first ? bench->items / ((double) (last - first) / 1e9) : 0;
}

static void
s_report (const s_bench_t *bench,
          const char *workload,
          s_target_t *t,
          double rate,
          double p50,
          double p99,
          double max,
          int failed,
          const char *what)
{
    if (zsys_interrupted)
        return;  //  a workload cut short: no figure
    //  the head arbiter-bench's lines have (the system measured, when, the
    //  load average), then this tool's figures
    arb_benchkit_json_head (stdout, t->name, workload, what);
    printf (", \"target\": \"%s\", \"cork\": %s, \"msgs_per_s\": %.0f", t->name,
            bench->cork ? "true" : "false", rate);
    if (p99 > 0)
        printf (", \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f", p50, p99, max);
    printf (", \"failed\": %d}\n", failed);
    fflush (stdout);
}

static bool
s_wants (s_bench_t *bench, const char *workload)
{
    return strstr (bench->workloads, workload) != NULL;
}

//  A1-A3 on one target.
static void
s_measure (s_bench_t *bench, s_target_t *t)
{
    double p50, p99, max;
    int failed;
    s_declare (t->port, "bench-a1");
    if (s_wants (bench, "A1") || s_wants (bench, "A2")) {
        t->publish = s_run (bench, t->port, "bench-a1", true, false, 0, &p50, &p99, &max, &failed);
        s_report (bench, "A1", t, t->publish, 0, 0, 0, failed, "durable publish with confirms");
    }
    if (s_wants (bench, "A2")) {
        t->consume = s_run (bench, t->port, "bench-a1", false, true, 0, &p50, &p99, &max, &failed);
        s_report (bench, "A2", t, t->consume, 0, 0, 0, failed, "consume with ack");
    }
    if (s_wants (bench, "A3") || (s_wants (bench, "A4") && !bench->rate)) {
        s_declare (t->port, "bench-a3");
        t->e2e = s_run (bench, t->port, "bench-a3", true, true, 0, &t->e2e_p50_ms, &t->e2e_p99_ms,
                        &t->e2e_max_ms, &failed);
        s_report (bench, "A3", t, t->e2e, t->e2e_p50_ms, t->e2e_p99_ms, t->e2e_max_ms, failed,
                  "publish and consume at once, end to end");
    }
}

//  A4 on one target at rate.
static void
s_measure_half (s_bench_t *bench, s_target_t *t, double rate)
{
    int failed;
    s_declare (t->port, "bench-a4");
    t->half_rate = rate;
    double got = s_run (bench, t->port, "bench-a4", true, true, rate, &t->half_p50_ms,
                        &t->half_p99_ms, &t->half_max_ms, &failed);
    char what[96];
    snprintf (what, sizeof (what), "end to end at %.0f msgs/s offered", rate);
    s_report (bench, "A4", t, got, t->half_p50_ms, t->half_p99_ms, t->half_max_ms, failed, what);
}

//  ---------------------------------------------------------------------
//  The servers

static int
s_start_gateway (s_bench_t *self)
{
    //  an acked message's task kept --retention seconds (the broker's
    //  --retention, which the gateway's --message-retention 0 defers to)
    char *extra[] = {"--retention", (char *) self->retention, NULL};
    if (arb_benchproc_start_broker_with (&self->broker, self->arbiterd, self->sync, extra, false,
                                         30000))
        return -1;
    self->gw_port = arb_benchproc_free_port ();
    char amqp[64];
    snprintf (amqp, sizeof (amqp), "127.0.0.1:%d", self->gw_port);
    char *argv[] = {(char *) self->gateway,
                    "--config",
                    "/dev/null",
                    "--broker",
                    self->broker.endpoint,
                    "--amqp",
                    amqp,
                    "--kestrel",
                    "off",
                    "--http",
                    "off",
                    "--message-retention",
                    "0",
                    NULL};
    self->gw = arb_benchproc_spawn (argv);
    return s_wait_up (self->gw_port, 30);
}

static bool
s_rabbit_ready (int port, void *arg)
{
    (void) arg;
    amqp_connection_state_t conn = s_connect (port);
    if (conn)
        s_disconnect (conn);
    return conn != NULL;
}

#define S_PROGRAM "arbiter-amqp-bench"

//  The value of the long option name, refused unless a whole number from
//  min to max (arb_benchkit.h): 0 or -1.
static int
s_whole (const char *name, const char *text, int min, int max, int *value)
{
    return arb_benchkit_whole (S_PROGRAM, name, text, min, max, value);
}

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: arbiter-amqp-bench [OPTIONS]\n"
                  "Starts its own arbiterd, arbiter-gateway and rabbitmq-server and measures, in\n"
                  "one run and with rabbitmq-c on both: A1 durable publish with confirms, A2\n"
                  "consume with ack, A3 both at once (end to end, with latency), A4 end to end\n"
                  "at a paced rate (latency at half load). One JSON line per workload.\n"
                  "  --items N         messages per workload (default 100000)\n"
                  "  --payload BYTES   message size (default 100; at least 8)\n"
                  "  --producers P     publishing connections (default 4)\n"
                  "  --consumers C     consuming connections (default 4)\n"
                  "  --window W        unconfirmed publishes per connection (default 100)\n"
                  "  --prefetch Q      basic.qos per consumer (default 100)\n"
                  "  --cork            the clients batch their writes (TCP_CORK while they write\n"
                  "                    a window of publishes or ack what they have read), on both\n"
                  "                    targets (default: rabbitmq-c's own, a write per frame)\n"
                  "  --rate N          A4's total messages/s (default: half of RabbitMQ's A3;\n"
                  "                    with --only gateway, of the gateway's)\n"
                  "  --only T          gateway or rabbitmq\n"
                  "  --workloads LIST  a comma list of A1, A2, A3, A4 (default all; A2 runs A1\n"
                  "                    first, A4 without --rate runs A3 first)\n"
                  "  --sync MODE       the broker's --sync (default full)\n"
                  "  --retention S     how long the broker keeps an acked message's task (default\n"
                  "                    0: deleted at its ack, as RabbitMQ does)\n"
                  "  --arbiterd PATH   (default build/broker/arbiterd)\n"
                  "  --gateway PATH    (default build/gateway/arbiter-gateway)\n"
                  "  -h, --help        this text\n"
                  "  --version         the version\n"
                  "RabbitMQ is Debian's rabbitmq-server package (and its /usr/bin/epmd).\n");
}

int
main (int argc, char **argv)
{
    s_bench_t self = {.arbiterd = "build/broker/arbiterd",
                      .gateway = "build/gateway/arbiter-gateway",
                      .sync = "full",
                      .retention = "0",
                      .workloads = "A1,A2,A3,A4",
                      .items = 100000,
                      .payload = 100,
                      .producers = 4,
                      .consumers = 4,
                      .window = 100,
                      .prefetch = 100};
    struct option options[] = {{"items", required_argument, 0, 'n'},
                               {"payload", required_argument, 0, 's'},
                               {"producers", required_argument, 0, 'p'},
                               {"consumers", required_argument, 0, 'c'},
                               {"window", required_argument, 0, 'w'},
                               {"prefetch", required_argument, 0, 'q'},
                               {"rate", required_argument, 0, 'r'},
                               {"only", required_argument, 0, 'o'},
                               {"sync", required_argument, 0, 'y'},
                               {"retention", required_argument, 0, 'R'},
                               {"arbiterd", required_argument, 0, 'a'},
                               {"gateway", required_argument, 0, 'g'},
                               {"workloads", required_argument, 0, 'W'},
                               {"cork", no_argument, 0, 'k'},
                               {"help", no_argument, 0, 'h'},
                               {"version", no_argument, 0, 'V'},
                               {0, 0, 0, 0}};
    int opt, index;
    while ((index = -1, opt = getopt_long (argc, argv, "h", options, &index)) != -1) {
        //  a number's option by its long name, for the refusal
        const char *name = index >= 0 ? options[index].name : "";
        int rc = 0;
        switch (opt) {
            case 'n':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.items);
                break;
            case 's':
                rc = s_whole (name, optarg, 8, INT_MAX, &self.payload);
                break;
            case 'k':
                self.cork = true;
                break;
            case 'p':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.producers);
                break;
            case 'c':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.consumers);
                break;
            case 'w':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.window);
                break;
            case 'q':
                rc = s_whole (name, optarg, 1, 65535, &self.prefetch);
                break;
            case 'r':
                rc = s_whole (name, optarg, 0, INT_MAX, &self.rate);
                break;
            case 'o':
                self.only = optarg;
                break;
            case 'y':
                self.sync = optarg;
                break;
            case 'R':
                rc = arb_benchkit_seconds (S_PROGRAM, name, optarg, ARB_BENCHKIT_RETENTION_MAX_MS);
                self.retention = optarg;
                break;
            case 'a':
                self.arbiterd = optarg;
                break;
            case 'g':
                self.gateway = optarg;
                break;
            case 'W':
                self.workloads = optarg;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf ("arbiter-amqp-bench %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                return 0;
            default:
                s_usage (stderr);
                return 2;
        }
        if (rc)
            return 2;
    }
    if (!arb_benchkit_workloads_known (S_PROGRAM, self.workloads, "A1,A2,A3,A4", false))
        return 2;
    if (optind < argc) {
        arb_benchkit_refuse (S_PROGRAM, "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (strcmp (self.sync, "full") && strcmp (self.sync, "normal")) {
        arb_benchkit_refuse (S_PROGRAM, "--sync: expected full or normal, not '%s'", self.sync);
        return 2;
    }
    if (self.only && strcmp (self.only, "gateway") && strcmp (self.only, "rabbitmq")) {
        arb_benchkit_refuse (S_PROGRAM, "--only: expected gateway or rabbitmq, not '%s'",
                             self.only);
        return 2;
    }
    bool gateway = !self.only || !strcmp (self.only, "gateway");
    bool rabbitmq = !self.only || !strcmp (self.only, "rabbitmq");
    char arbiterd[PATH_MAX], gateway_path[PATH_MAX];
    if (gateway) {
        if (arb_benchproc_find (self.arbiterd, "--arbiterd", arbiterd, sizeof (arbiterd))
            || arb_benchproc_find (self.gateway, "--gateway", gateway_path, sizeof (gateway_path)))
            return 2;
        self.arbiterd = arbiterd;
        self.gateway = gateway_path;
    }
    //  SIGINT and SIGTERM (czmq's handler) end the workload under way and
    //  the run, so that the servers are stopped and their directories removed
    zsys_init ();
    signal (SIGPIPE, SIG_IGN);
    int status = 0;
    if ((gateway && s_start_gateway (&self))
        || (rabbitmq
            && arb_benchproc_start_rabbit (&self.rabbit, "arbbench", s_rabbit_ready, NULL))) {
        fprintf (stderr, "arbiter-amqp-bench: a server did not start\n");
        status = 1;
        goto cleanup;
    }
    s_target_t rmq = {.name = "rabbitmq", .port = self.rabbit.port};
    s_target_t gw = {.name = "gateway", .port = self.gw_port};
    if (rabbitmq)
        s_measure (&self, &rmq);
    if (gateway && !zsys_interrupted)
        s_measure (&self, &gw);
    double rate = self.rate ? self.rate : (rabbitmq ? rmq.e2e : gw.e2e) / 2;
    if (rate < 1)
        rate = 1;
    if (rabbitmq && s_wants (&self, "A4") && !zsys_interrupted)
        s_measure_half (&self, &rmq, rate);
    if (gateway && s_wants (&self, "A4") && !zsys_interrupted)
        s_measure_half (&self, &gw, rate);
    if (zsys_interrupted) {
        fprintf (stderr, "arbiter-amqp-bench: interrupted: the servers stopped\n");
        status = 1;
        goto cleanup;
    }
    if (gateway && rabbitmq && rmq.publish > 0 && rmq.consume > 0 && rmq.e2e > 0
        && rmq.half_p99_ms > 0)
        printf ("{\"ratio\": \"gateway/rabbitmq\", \"publish\": %.2f, \"consume\": %.2f, "
                "\"e2e\": %.2f, \"half_load_p99\": %.2f}\n",
                gw.publish / rmq.publish, gw.consume / rmq.consume, gw.e2e / rmq.e2e,
                gw.half_p99_ms / rmq.half_p99_ms);
cleanup:
    arb_benchproc_stop (self.gw);
    arb_benchproc_stop_broker (&self.broker);
    arb_benchproc_stop_rabbit (&self.rabbit);
    return status;
}
