/*  arbiter-kestrel-bench — measures the gateway's Kestrel server against
    the broker's own client path, in one run on one machine.

    It starts its own arbiterd (fresh journal in a temporary directory,
    --sync full unless told otherwise) and arbiter-gateway, on free
    loopback ports, then runs, each on a queue of its own:

      B1  libarbiter: one client submits N items (batches of 500, each
          acknowledged after its journal commit): items/s
      B2  libarbiter: one link consumer (credit 1000) drains those N
          items, completing each: items/s
      B3  libarbiter: B1 again, then C consumers of credit 1 each (one item
          at a time, as a Kestrel connection takes them) drain it: items/s
      K1  Kestrel: C connections `set` N items, each connection with up to
          --window sets in flight, every STORED counted: items/s
      K2  Kestrel: C connections drain those N items with the reliable
          loop (`get q/open`, then `get q/close/open` until END): items/s
      K3  the gateway's resident memory with 1,000 idle connections open

    One JSON line per workload. Speed thresholds never belong in tests;
    this tool is how BENCHMARKS.md gets its figures.
*/

#include "arb_benchkit.h"
#include "arb_benchproc.h"
#include "arb_client.h"
#include "arb_link.h"

#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    const char *arbiterd;
    const char *gateway;
    const char *sync;
    const char *workloads;
    int items;
    int payload;
    int conns;
    int window;
    int idle;
    char endpoint[64];  //  the broker's
    arb_benchproc_broker_t broker;
    int kport;  //  the gateway's Kestrel port
    pid_t gw;
} s_bench_t;

//  ---------------------------------------------------------------------
//  A Kestrel connection: blocking writes, reads through poll

typedef struct {
    int fd;
    char in[65536];
    size_t len;
    int outstanding;  //  K1: sets sent and not answered
    int sent;         //  K1: sets sent
    bool done;
    bool opened;  //  K2: an item is open
} s_kconn_t;

static int
s_kconnect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    if (connect (fd, (struct sockaddr *) &addr, sizeof (addr))) {
        close (fd);
        return -1;
    }
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    return fd;
}

static int
s_send_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

//  One request, one line answer (for set-up): the answer's first line.
static int
s_ask (int port, const char *request, char *answer, size_t size)
{
    int fd = s_kconnect (port);
    if (fd < 0)
        return -1;
    struct timeval tv = {1, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
    int rc = s_send_all (fd, request, strlen (request));
    ssize_t n = rc ? -1 : recv (fd, answer, size - 1, 0);
    close (fd);
    if (n <= 0)
        return -1;
    answer[n] = 0;
    return 0;
}

//  ---------------------------------------------------------------------
//  Processes

static int
s_start (s_bench_t *self)
{
    if (arb_benchproc_start_broker (&self->broker, self->arbiterd, self->sync))
        return -1;
    snprintf (self->endpoint, sizeof (self->endpoint), "%s", self->broker.endpoint);
    self->kport = arb_benchproc_free_port ();
    char kestrel[64];
    snprintf (kestrel, sizeof (kestrel), "127.0.0.1:%d", self->kport);
    char *gateway[] = {(char *) self->gateway,
                       "--broker",
                       self->endpoint,
                       "--kestrel",
                       kestrel,
                       "--amqp",
                       "off",
                       "--http",
                       "off",
                       NULL};
    self->gw = arb_benchproc_spawn (gateway);
    //  ready once a set is stored (session up, fan-out children loaded)
    char answer[256];
    for (int tries = 0; tries < 100; tries++) {
        if (s_ask (self->kport, "set warmup 0 0 1\r\nx\r\n", answer, sizeof (answer)) == 0
            && strncmp (answer, "STORED", 6) == 0)
            return s_ask (self->kport, "get warmup\r\n", answer, sizeof (answer));
        usleep (100000);
    }
    return -1;
}

static void
s_cleanup (s_bench_t *self)
{
    arb_benchproc_stop (self->gw);
    arb_benchproc_stop_broker (&self->broker);
}

static void
s_report (
    const char *workload, const char *what, s_bench_t *self, int done, double seconds, bool ok)
{
    //  the head arbiter-bench's lines have: the B workloads measure the
    //  broker alone, the K ones the gateway in front of it
    arb_benchkit_json_head (stdout, workload[0] == 'B' ? "arbiter" : "gateway", workload, what);
    printf (", \"items\": %d, \"payload_bytes\": %d, "
            "\"connections\": %d, \"window\": %d, \"sync\": \"%s\", \"seconds\": %.3f, "
            "\"items_per_s\": %.0f, \"ok\": %s}\n",
            done, self->payload, self->conns, self->window, self->sync, seconds,
            seconds > 0 ? done / seconds : 0, ok ? "true" : "false");
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  B1, B2, B3: the broker's own client path

static void
s_b1 (s_bench_t *self)
{
    arb_client_t *client = arb_client_new (self->endpoint);
    char *payload = arb_benchproc_payload (self->payload);
    arb_task_spec_t specs[500];
    uint64_t ids[500];
    int done = 0, rc = 0;
    int64_t started = zclock_usecs ();
    while (done < self->items && rc == 0) {
        int count = self->items - done < 500 ? self->items - done : 500;
        for (int i = 0; i < count; i++) {
            specs[i] = (arb_task_spec_t){.queue = "b", .name = "b"};
            specs[i].payload = zframe_new (payload, (size_t) self->payload);
        }
        rc = arb_client_submit (client, specs, (size_t) count, false, ids, NULL);
        for (int i = 0; i < count; i++)
            zframe_destroy (&specs[i].payload);
        done += count;
    }
    s_report ("B1", "libarbiter client submits, batches of 500", self, done,
              (double) (zclock_usecs () - started) / 1e6, rc == 0);
    free (payload);
    arb_client_destroy (&client);
}

typedef struct {
    int done;
} s_drain_t;

static void
s_on_task (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    s_drain_t *drain = (s_drain_t *) arg;
    arb_link_complete (link, task->id, NULL);
    arb_link_add_credit (link, sub, 1);
    drain->done++;
}

//  Drains queue b with n consumers of the given credit each, completing
//  every task and giving its credit back at once.
static void
s_drain (s_bench_t *self, const char *workload, const char *what, int consumers, int credit)
{
    s_drain_t drain = {0};
    arb_link_callbacks_t callbacks = {0};
    arb_link_t *link = arb_link_new (self->endpoint, "bench-drain", &callbacks, NULL);
    const char *queues[] = {"b"};
    for (int i = 0; i < consumers; i++)
        arb_link_subscribe (link, queues, 1, credit, s_on_task, &drain);
    int64_t started = zclock_usecs ();
    int64_t last = zclock_mono ();
    int seen = 0;
    while (drain.done < self->items && zclock_mono () - last < 5000) {
        zmq_pollitem_t item = {NULL, arb_link_fd (link), ZMQ_POLLIN, 0};
        int wait = arb_link_timeout (link);
        zmq_poll (&item, 1, wait < 0 || wait > 100 ? 100 : wait);
        arb_link_handle (link);
        if (drain.done != seen) {
            seen = drain.done;
            last = zclock_mono ();
        }
    }
    double seconds = (double) (zclock_usecs () - started) / 1e6;
    arb_link_flush (link);
    s_report (workload, what, self, drain.done, seconds, drain.done == self->items);
    arb_link_destroy (&link);
}

//  ---------------------------------------------------------------------
//  K1, K2: Kestrel clients

static s_kconn_t *
s_kconns (s_bench_t *self, int n)
{
    s_kconn_t *conns = (s_kconn_t *) calloc ((size_t) n, sizeof (s_kconn_t));
    for (int i = 0; i < n; i++)
        conns[i].fd = s_kconnect (self->kport);
    return conns;
}

static void
s_kclose (s_kconn_t *conns, int n)
{
    for (int i = 0; i < n; i++)
        if (conns[i].fd >= 0)
            close (conns[i].fd);
    free (conns);
}

//  Reads what a connection has; returns -1 if it ended.
static int
s_kread (s_kconn_t *conn)
{
    ssize_t n = recv (conn->fd, conn->in + conn->len, sizeof (conn->in) - conn->len, 0);
    if (n <= 0)
        return -1;
    conn->len += (size_t) n;
    return 0;
}

static void
s_consume (s_kconn_t *conn, size_t bytes)
{
    memmove (conn->in, conn->in + bytes, conn->len - bytes);
    conn->len -= bytes;
}

//  An epoll set over the connections (the load generator shares the
//  machine: it must cost little per item).
static int
s_kpoll (s_kconn_t *conns, int n)
{
    int ep = epoll_create1 (0);
    for (int i = 0; i < n; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        epoll_ctl (ep, EPOLL_CTL_ADD, conns[i].fd, &event);
    }
    return ep;
}

//  Waits for answers (5 s at most) and hands each connection that has
//  some, read, to fn. Returns -1 if nothing came, a connection ended, or
//  fn failed.
static int
s_kturn (int ep, s_kconn_t *conns, int (*fn) (s_kconn_t *conn, void *arg), void *arg)
{
    struct epoll_event events[128];
    int n = epoll_wait (ep, events, 128, 5000);
    if (n <= 0)
        return -1;
    for (int e = 0; e < n; e++) {
        s_kconn_t *conn = &conns[events[e].data.u32];
        if (s_kread (conn) || fn (conn, arg))
            return -1;
    }
    return 0;
}

//  Sends a connection's next sets, up to its window.
static int
s_k1_send (s_bench_t *self, s_kconn_t *conn, int per, const char *burst, size_t one)
{
    int room = self->window - conn->outstanding;
    if (per - conn->sent < room)
        room = per - conn->sent;
    if (room <= 0)
        return 0;
    conn->sent += room;
    conn->outstanding += room;
    return s_send_all (conn->fd, burst, one * (size_t) room);
}

typedef struct {
    s_bench_t *self;
    int per;  //  sets per connection
    const char *burst;
    size_t one;  //  bytes of one set
    int stored;
} s_k1_t;

//  STORED answers: counted, and as many sets sent again.
static int
s_k1_answers (s_kconn_t *conn, void *arg)
{
    s_k1_t *k1 = (s_k1_t *) arg;
    while (conn->len >= 8 && memcmp (conn->in, "STORED\r\n", 8) == 0) {
        s_consume (conn, 8);
        conn->outstanding--;
        k1->stored++;
    }
    if (conn->len >= 8 || (conn->len && conn->in[0] != 'S')) {
        fprintf (stderr, "arbiter-kestrel-bench: K1: unexpected answer: %.*s\n",
                 (int) (conn->len > 80 ? 80 : conn->len), conn->in);
        return -1;
    }
    return s_k1_send (k1->self, conn, k1->per, k1->burst, k1->one);
}

static void
s_k1 (s_bench_t *self)
{
    s_kconn_t *conns = s_kconns (self, self->conns);
    char *payload = arb_benchproc_payload (self->payload);
    char head[64];
    int head_len = snprintf (head, sizeof (head), "set k 0 0 %d\r\n", self->payload);
    size_t one = (size_t) head_len + (size_t) self->payload + 2;
    char *burst = (char *) malloc (one * (size_t) self->window);
    for (int k = 0; k < self->window; k++) {
        char *at = burst + one * (size_t) k;
        memcpy (at, head, (size_t) head_len);
        memcpy (at + head_len, payload, (size_t) self->payload);
        memcpy (at + head_len + self->payload, "\r\n", 2);
    }
    int ep = s_kpoll (conns, self->conns);
    int per = self->items / self->conns, stored = 0, failed = 0;
    int total = per * self->conns;
    int64_t started = zclock_usecs ();
    for (int i = 0; i < self->conns && !failed; i++)
        failed = s_k1_send (self, &conns[i], per, burst, one);
    s_k1_t k1 = {self, per, burst, one, 0};
    while (k1.stored < total && !failed)
        failed = s_kturn (ep, conns, s_k1_answers, &k1);
    stored = k1.stored;
    s_report ("K1", "Kestrel set, STORED after the broker's commit", self, stored,
              (double) (zclock_usecs () - started) / 1e6, !failed && stored == total);
    close (ep);
    free (burst);
    free (payload);
    s_kclose (conns, self->conns);
}

//  Parses one get answer at the head of conn->in: 1 VALUE (consumed), 0
//  END, -1 not complete yet, -2 unexpected.
static int
s_kvalue (s_kconn_t *conn)
{
    if (conn->len >= 5 && memcmp (conn->in, "END\r\n", 5) == 0) {
        s_consume (conn, 5);
        return 0;
    }
    char *nl = memchr (conn->in, '\n', conn->len);
    if (!nl)
        return -1;
    unsigned flags;
    size_t bytes;
    char key[256];
    if (sscanf (conn->in, "VALUE %255s %u %zu\r\n", key, &flags, &bytes) != 3)
        return -2;
    size_t need = (size_t) (nl + 1 - conn->in) + bytes + 7;
    if (conn->len < need)
        return -1;
    s_consume (conn, need);
    return 1;
}

typedef struct {
    int ep;
    int got;     //  items
    int active;  //  connections not at the end
} s_k2_t;

//  A get's answer: the next get, or the end of this connection's loop.
static int
s_k2_answer (s_kconn_t *conn, void *arg)
{
    s_k2_t *k2 = (s_k2_t *) arg;
    int rc = s_kvalue (conn);
    if (rc == -2) {
        fprintf (stderr, "arbiter-kestrel-bench: K2: unexpected answer: %.*s\n",
                 (int) (conn->len > 80 ? 80 : conn->len), conn->in);
        return -1;
    }
    if (rc == 1) {
        k2->got++;
        return s_send_all (conn->fd, "get k/close/open\r\n", 18);
    }
    if (rc == 0) {
        //  empty: the last item was closed by this get already
        epoll_ctl (k2->ep, EPOLL_CTL_DEL, conn->fd, NULL);
        k2->active--;
    }
    return 0;
}

static void
s_k2 (s_bench_t *self)
{
    s_kconn_t *conns = s_kconns (self, self->conns);
    int ep = s_kpoll (conns, self->conns);
    int got = 0, failed = 0;
    int expected = (self->items / self->conns) * self->conns;
    int64_t started = zclock_usecs ();
    for (int i = 0; i < self->conns; i++)
        if (s_send_all (conns[i].fd, "get k/open\r\n", 12))
            failed = 1;
    s_k2_t k2 = {ep, 0, self->conns};
    while (k2.active > 0 && !failed)
        failed = s_kturn (ep, conns, s_k2_answer, &k2);
    got = k2.got;
    s_report ("K2", "Kestrel get/open + close, one item at a time per connection", self, got,
              (double) (zclock_usecs () - started) / 1e6, !failed && got == expected);
    close (ep);
    s_kclose (conns, self->conns);
}

static void
s_k3 (s_bench_t *self)
{
    long before = arb_benchproc_kb (self->gw, "VmRSS:");
    int *fds = (int *) calloc ((size_t) self->idle, sizeof (int));
    int open = 0;
    char answer[64];
    for (int i = 0; i < self->idle; i++) {
        fds[i] = s_kconnect (self->kport);
        if (fds[i] >= 0)
            open++;
    }
    //  every one accepted and served once (then idle)
    int served = 0;
    for (int i = 0; i < self->idle; i++)
        if (fds[i] >= 0 && s_send_all (fds[i], "version\r\n", 9) == 0
            && recv (fds[i], answer, sizeof (answer), 0) > 0)
            served++;
    long after = arb_benchproc_kb (self->gw, "VmRSS:");
    arb_benchkit_json_head (stdout, "gateway", "K3", "gateway RSS with idle connections");
    printf (", \"connections\": %d, \"served\": %d, \"rss_before_kb\": %ld, \"rss_kb\": %ld, "
            "\"peak_rss_kb\": %ld}\n",
            open, served, before, after, arb_benchproc_kb (self->gw, "VmHWM:"));
    fflush (stdout);
    for (int i = 0; i < self->idle; i++)
        if (fds[i] >= 0)
            close (fds[i]);
    free (fds);
}

//  ---------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: arbiter-kestrel-bench [options]\n"
             "\n"
             "Starts its own arbiterd and arbiter-gateway and measures, in one run: B1-B3 the\n"
             "broker's own client path (submit; drain, pipelined and one item at a time),\n"
             "K1/K2 the same through Kestrel (set; get/open + close), K3 the gateway's RSS\n"
             "with idle connections.\n"
             "\n"
             "  --arbiterd PATH   broker binary (default: build/broker/arbiterd)\n"
             "  --gateway PATH    gateway binary (default: build/gateway/arbiter-gateway)\n"
             "  --workloads LIST  B1,B2,B3,K1,K2,K3 or all (default all)\n"
             "  --items N         items per workload (default 200000)\n"
             "  --payload BYTES   item size (default 100)\n"
             "  --connections N   Kestrel connections (default 100)\n"
             "  --window N        K1: sets in flight per connection (default 16)\n"
             "  --idle N          K3: idle connections (default 1000)\n"
             "  --sync full|normal  the broker's durability (default full)\n"
             "  -h, --help        this text\n"
             "  --version         the version\n");
}

#define S_PROGRAM "arbiter-kestrel-bench"

//  The value of the long option name, refused unless a whole number from
//  min to max (arb_benchkit.h): 0 or -1.
static int
s_whole (const char *name, const char *text, int min, int max, int *value)
{
    return arb_benchkit_whole (S_PROGRAM, name, text, min, max, value);
}

static bool
s_wants (s_bench_t *self, const char *workload)
{
    return streq (self->workloads, "all") || strstr (self->workloads, workload);
}

int
main (int argc, char *argv[])
{
    zsys_init ();
    zsys_set_logstream (stderr);
    s_bench_t self = {.arbiterd = "build/broker/arbiterd",
                      .gateway = "build/gateway/arbiter-gateway",
                      .sync = "full",
                      .workloads = "all",
                      .items = 200000,
                      .payload = 100,
                      .conns = 100,
                      .window = 16,
                      .idle = 1000};
    static struct option options[] = {
        {"arbiterd", required_argument, 0, 'a'},  {"gateway", required_argument, 0, 'g'},
        {"workloads", required_argument, 0, 'w'}, {"items", required_argument, 0, 'n'},
        {"payload", required_argument, 0, 'p'},   {"connections", required_argument, 0, 'c'},
        {"window", required_argument, 0, 'W'},    {"idle", required_argument, 0, 'i'},
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
                self.arbiterd = optarg;
                break;
            case 'g':
                self.gateway = optarg;
                break;
            case 'w':
                self.workloads = optarg;
                break;
            case 'n':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.items);
                break;
            case 'p':
                rc = s_whole (name, optarg, 0, INT_MAX, &self.payload);
                break;
            case 'c':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.conns);
                break;
            case 'W':
                rc = s_whole (name, optarg, 1, INT_MAX, &self.window);
                break;
            case 'i':
                rc = s_whole (name, optarg, 0, INT_MAX, &self.idle);
                break;
            case 'S':
                self.sync = optarg;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf ("arbiter-kestrel-bench %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                return 0;
            default:
                s_usage (stderr);
                return 2;
        }
        if (rc)
            return 2;
    }
    if (!arb_benchkit_workloads_known (S_PROGRAM, self.workloads, "B1,B2,B3,K1,K2,K3", true))
        return 2;
    if (optind < argc) {
        arb_benchkit_refuse (S_PROGRAM, "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (self.conns > self.items) {
        arb_benchkit_refuse (S_PROGRAM, "--connections (%d) is more than --items (%d)", self.conns,
                             self.items);
        return 2;
    }
    if (!streq (self.sync, "full") && !streq (self.sync, "normal")) {
        arb_benchkit_refuse (S_PROGRAM, "--sync: expected full or normal, not '%s'", self.sync);
        return 2;
    }
    char arbiterd[PATH_MAX], gateway[PATH_MAX];
    if (arb_benchproc_find (self.arbiterd, "--arbiterd", arbiterd, sizeof (arbiterd))
        || arb_benchproc_find (self.gateway, "--gateway", gateway, sizeof (gateway)))
        return 2;
    self.arbiterd = arbiterd;
    self.gateway = gateway;
    signal (SIGPIPE, SIG_IGN);
    if (s_start (&self)) {
        fprintf (stderr, "arbiter-kestrel-bench: the broker or the gateway did not start\n");
        s_cleanup (&self);
        return 1;
    }
    if (s_wants (&self, "B1"))
        s_b1 (&self);
    if (s_wants (&self, "B2"))
        s_drain (&self, "B2", "libarbiter link consumer drains, credit 1000", 1, 1000);
    if (s_wants (&self, "B3")) {
        s_b1 (&self);  //  the items again
        s_drain (&self, "B3", "libarbiter link, one consumer of credit 1 per connection",
                 self.conns, 1);
    }
    if (s_wants (&self, "K1"))
        s_k1 (&self);
    if (s_wants (&self, "K2"))
        s_k2 (&self);
    if (s_wants (&self, "K3"))
        s_k3 (&self);
    s_cleanup (&self);
    return 0;
}
