/*  test_link.c — the non-blocking session (arb_link) against a real broker.

    Each test starts arbiterd (the one built beside this binary:
    <variant>/broker/arbiterd) on a free loopback port with a journal in a
    temporary folder, short heartbeats (200 ms) and liveness (1 s), talks
    to it through a link, checks what the broker stored with a blocking
    arb_client, and stops it by its PID (kill -9 for the crash tests).
    Every wait polls the link's socket (or, in one test, its descriptor,
    as a foreign loop would) until a condition holds or a generous deadline
    passes; nothing sleeps to synchronise.
*/

#include "arb_client.h"
#include "arb_link.h"
#include "../bench/bench_proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define S_WAIT_MS 15000  //  deadline of a wait (sanitized builds are slow)
#define S_MAX_IDS 64     //  tasks one consumer records

//  ---------------------------------------------------------------------
//  The broker process.

typedef struct {
    pid_t pid;
    char dir[64];  //  temporary folder: journal and log
    char db[128];
    char endpoint[64];
    char binary[PATH_MAX];
} s_broker_t;

//  Starts arbiterd on the broker's endpoint and journal, with extra
//  arguments (NULL-terminated, may be NULL), and waits until it answers.
static void
s_broker_start (s_broker_t *self, const char *const *extra)
{
    const char *argv[24] = {self->binary, "--bind",         self->endpoint, "--db",
                            self->db,     "--heartbeat-ms", "200",          "--liveness-ms",
                            "1000",       "--sync",         "normal"};
    size_t argc = 11;
    for (size_t i = 0; extra && extra[i] && argc < 23; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    self->pid = fork ();
    assert_true (self->pid >= 0);
    if (self->pid == 0) {
        char log[160];
        snprintf (log, sizeof (log), "%s/broker.log", self->dir);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, STDOUT_FILENO);
            dup2 (fd, STDERR_FILENO);
        }
        execv (self->binary, (char *const *) argv);
        _exit (127);
    }
    arb_client_t *client = arb_client_new (self->endpoint);
    arb_client_set_timeout (client, 500);
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (arb_client_ping (client, NULL) != 0) {
        assert_true (zclock_mono () < deadline);
        assert_int_equal (waitpid (self->pid, NULL, WNOHANG), 0);  //  still running
    }
    arb_client_destroy (&client);
}

static s_broker_t *
s_broker_new (const char *const *extra)
{
    s_broker_t *self = (s_broker_t *) zmalloc (sizeof (s_broker_t));
    snprintf (self->dir, sizeof (self->dir), "/tmp/test-link-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->db, sizeof (self->db), "%s/arbiter.db", self->dir);
    snprintf (self->endpoint, sizeof (self->endpoint), "tcp://127.0.0.1:%d",
              arb_benchproc_free_port ());
    //  this binary is <variant>/tests/unit/test_link
    char exe[PATH_MAX] = "";
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    assert_true (len > 0);
    exe[len] = '\0';
    char *variant = dirname (dirname (dirname (exe)));
    snprintf (self->binary, sizeof (self->binary), "%s/broker/arbiterd", variant);
    assert_int_equal (access (self->binary, X_OK), 0);
    s_broker_start (self, extra);
    return self;
}

//  Sends sig to the broker and waits for it to end, at most S_WAIT_MS.
static void
s_broker_kill (s_broker_t *self, int sig)
{
    if (self->pid <= 0)
        return;
    kill (self->pid, sig);
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    int status;
    while (waitpid (self->pid, &status, WNOHANG) == 0) {
        if (zclock_mono () > deadline) {
            kill (self->pid, SIGKILL);
            waitpid (self->pid, &status, 0);
            break;
        }
        zclock_sleep (10);  //  waiting for a process to end, not to synchronise
    }
    self->pid = 0;
}

static void
s_broker_destroy (s_broker_t **self_p)
{
    s_broker_t *self = *self_p;
    s_broker_kill (self, SIGTERM);
    //  the journal, its WAL and lock files, the log
    DIR *dir = opendir (self->dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir)))
        if (entry->d_type == DT_REG) {
            char path[PATH_MAX];
            snprintf (path, sizeof (path), "%s/%s", self->dir, entry->d_name);
            unlink (path);
        }
    if (dir)
        closedir (dir);
    assert_int_equal (rmdir (self->dir), 0);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  What the link's callbacks saw.

typedef struct _s_ctx_t s_ctx_t;

typedef struct {
    s_ctx_t *ctx;
    uint32_t sub;
    int granted;  //  credit given so far
    int count;    //  tasks dispatched to it
    uint64_t ids[S_MAX_IDS];
} s_consumer_t;

typedef struct {
    uint64_t id;
    int state;
    char text[64];  //  result or error
} s_done_t;

struct _s_ctx_t {
    arb_link_t *link;
    bool use_fd;        //  wait on the descriptor, as a foreign loop would
    zlistx_t *replies;  //  owned arb_msg_t *, in order
    s_done_t dones[S_MAX_IDS];
    size_t done_count;
    uint64_t stopped[S_MAX_IDS];
    int stop_reasons[S_MAX_IDS];
    size_t stop_count;
    int ups, downs;
    size_t events;  //  state changes seen in EVENT messages
};

static void
s_on_reply (arb_link_t *link, uint32_t reqid, arb_msg_t **reply_p, void *arg)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    assert_ptr_equal (link, ctx->link);
    assert_int_equal (arb_msg_reqid (*reply_p), reqid);
    zlistx_add_end (ctx->replies, *reply_p);
    *reply_p = NULL;
}

static void
s_on_done (arb_link_t *link, arb_done_task_t *task, void *arg)
{
    (void) link;
    s_ctx_t *ctx = (s_ctx_t *) arg;
    assert_true (ctx->done_count < S_MAX_IDS);
    s_done_t *done = &ctx->dones[ctx->done_count++];
    done->id = task->id;
    done->state = (int) task->state;
    if (task->state == ARB_STATE_SUCCEEDED)
        snprintf (done->text, sizeof (done->text), "%.*s", (int) zframe_size (task->result),
                  (char *) zframe_data (task->result));
    else if (task->error)
        snprintf (done->text, sizeof (done->text), "%s", task->error);
}

static void
s_on_stop (arb_link_t *link, uint64_t id, int reason, void *arg)
{
    (void) link;
    s_ctx_t *ctx = (s_ctx_t *) arg;
    assert_true (ctx->stop_count < S_MAX_IDS);
    ctx->stopped[ctx->stop_count] = id;
    ctx->stop_reasons[ctx->stop_count++] = reason;
}

static void
s_on_event (arb_link_t *link, arb_event_body_t *event, void *arg)
{
    (void) link;
    s_ctx_t *ctx = (s_ctx_t *) arg;
    ctx->events += event->events.n;
}

static void
s_on_state (arb_link_t *link, bool up, void *arg)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    assert_int_equal (arb_link_is_up (link), up);
    if (up)
        ctx->ups++;
    else
        ctx->downs++;
}

//  The broker never sends a consumer more than the credit it was given.
static void
s_on_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) link;
    s_consumer_t *consumer = (s_consumer_t *) arg;
    assert_int_equal (sub, consumer->sub);
    assert_int_equal (task->sub, sub);
    assert_true (consumer->count < consumer->granted);
    assert_true (consumer->count < S_MAX_IDS);
    consumer->ids[consumer->count++] = task->id;
}

static s_ctx_t *
s_ctx_new (s_broker_t *broker, const char *name)
{
    s_ctx_t *ctx = (s_ctx_t *) zmalloc (sizeof (s_ctx_t));
    ctx->replies = zlistx_new ();
    arb_link_callbacks_t callbacks = {.reply = s_on_reply,
                                      .done = s_on_done,
                                      .stop = s_on_stop,
                                      .event = s_on_event,
                                      .state = s_on_state};
    ctx->link = arb_link_new (broker->endpoint, name, &callbacks, ctx);
    assert_non_null (ctx->link);
    return ctx;
}

static void
s_ctx_destroy (s_ctx_t **ctx_p)
{
    s_ctx_t *ctx = *ctx_p;
    arb_link_destroy (&ctx->link);
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlistx_detach (ctx->replies, NULL)))
        arb_msg_destroy (&msg);
    zlistx_destroy (&ctx->replies);
    free (ctx);
    *ctx_p = NULL;
}

static int64_t
s_deadline (void)
{
    return zclock_mono () + S_WAIT_MS;
}

//  One turn of the caller's loop: wait for input or the link's timer (at
//  most until deadline), then handle. Returns false once past deadline.
static bool
s_step (s_ctx_t *ctx, int64_t deadline)
{
    int64_t now = zclock_mono ();
    if (now >= deadline)
        return false;
    int wait = arb_link_timeout (ctx->link);
    if (wait > deadline - now)
        wait = (int) (deadline - now);
    //  a DEALER's handshake events too, as docs/link.md asks
    zsock_t *events = arb_link_events (ctx->link);
    zmq_pollitem_t items[2] = {{NULL, arb_link_fd (ctx->link), ZMQ_POLLIN, 0},
                               {events ? zsock_resolve (events) : NULL, 0, ZMQ_POLLIN, 0}};
    if (!ctx->use_fd && arb_link_sock (ctx->link))
        items[0] = (zmq_pollitem_t){zsock_resolve (arb_link_sock (ctx->link)), 0, ZMQ_POLLIN, 0};
    if (zmq_poll (items, events ? 2 : 1, wait) > 0 && (items[1].revents & ZMQ_POLLIN))
        arb_link_handshake (ctx->link);
    arb_link_handle (ctx->link);
    return true;
}

#define S_UNTIL(ctx, condition)                   \
    do {                                          \
        int64_t until_ = s_deadline ();           \
        while (!(condition))                      \
            assert_true (s_step ((ctx), until_)); \
    } while (0)

//  Runs the loop until request reqid is answered; returns the answer.
static arb_msg_t *
s_reply (s_ctx_t *ctx, uint32_t reqid)
{
    assert_true (reqid > 0);
    int64_t deadline = s_deadline ();
    while (true) {
        for (arb_msg_t *msg = (arb_msg_t *) zlistx_first (ctx->replies); msg;
             msg = (arb_msg_t *) zlistx_next (ctx->replies))
            if (arb_msg_reqid (msg) == reqid)
                return (arb_msg_t *) zlistx_detach_cur (ctx->replies);
        assert_true (s_step (ctx, deadline));
    }
}

//  The reply to reqid, checked to be of the given type.
static arb_msg_t *
s_expect (s_ctx_t *ctx, uint32_t reqid, arb_msg_type_t type)
{
    arb_msg_t *reply = s_reply (ctx, reqid);
    if (arb_msg_type (reply) != type && arb_msg_type (reply) == ARB_MSG_ERROR)
        fail_msg ("ERROR %u %s", arb_msg_error (reply)->code, arb_msg_error (reply)->reason);
    assert_int_equal (arb_msg_type (reply), type);
    return reply;
}

static s_consumer_t *
s_subscribe (s_ctx_t *ctx, const char **queues, size_t n, int credit)
{
    s_consumer_t *consumer = (s_consumer_t *) zmalloc (sizeof (s_consumer_t));
    consumer->ctx = ctx;
    consumer->granted = credit;
    consumer->sub = arb_link_subscribe (ctx->link, queues, n, credit, s_on_dispatch, consumer);
    assert_true (consumer->sub > 0);
    return consumer;
}

static void
s_add_credit (s_consumer_t *consumer, int credit)
{
    assert_int_equal (arb_link_add_credit (consumer->ctx->link, consumer->sub, credit), 0);
    consumer->granted += credit;
}

//  Submits one task per payload to queue; stores the ids (if not NULL).
static uint32_t
s_submit (s_ctx_t *ctx, const char *queue, const char **payloads, size_t n, bool watch)
{
    arb_task_spec_t specs[16] = {{0}};
    assert_true (n <= 16);
    for (size_t i = 0; i < n; i++) {
        specs[i].queue = queue;
        specs[i].name = "echo";
        specs[i].payload = zframe_new (payloads[i], strlen (payloads[i]));
    }
    uint32_t reqid = arb_link_submit (ctx->link, specs, n, watch);
    assert_true (reqid > 0);
    return reqid;
}

static void
s_submitted (s_ctx_t *ctx, uint32_t reqid, uint64_t *ids, size_t n)
{
    arb_msg_t *reply = s_expect (ctx, reqid, ARB_MSG_SUBMITTED);
    arb_submitted_body_t *body = arb_msg_submitted (reply);
    assert_int_equal (body->tasks.n, n);
    for (size_t i = 0; i < n; i++)
        ids[i] = body->tasks.v[i].id;
    arb_msg_destroy (&reply);
}

static void
s_complete (s_ctx_t *ctx, uint64_t id, const char *result)
{
    zframe_t *frame = zframe_new (result, strlen (result));
    assert_int_equal (arb_link_complete (ctx->link, id, &frame), 0);
    assert_null (frame);
}

//  What the broker says about one task (through a blocking client).
typedef struct {
    int state;
    uint32_t attempts;
    char text[64];  //  result, else error
} s_status_t;

static s_status_t
s_status (s_broker_t *broker, uint64_t id)
{
    arb_client_t *client = arb_client_new (broker->endpoint);
    arb_client_set_timeout (client, S_WAIT_MS);
    arb_msg_t *request = arb_client_request_new (client, ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = &id;
    body->ids.n = 1;
    arb_msg_t *reply = arb_client_request (client, &request);
    assert_non_null (reply);
    arb_task_info_t *task = &arb_msg_status_reply (reply)->tasks.v[0];
    assert_true (task->found);
    s_status_t status = {(int) task->state, task->attempts, ""};
    if (task->result.size)
        snprintf (status.text, sizeof (status.text), "%.*s", (int) task->result.size,
                  (const char *) task->result.data);
    else if (task->error)
        snprintf (status.text, sizeof (status.text), "%s", task->error);
    arb_msg_destroy (&reply);
    arb_client_destroy (&client);
    return status;
}

static size_t
s_count_done (s_ctx_t *ctx, uint64_t id)
{
    size_t count = 0;
    for (size_t i = 0; i < ctx->done_count; i++)
        count += ctx->dones[i].id == id;
    return count;
}

//  A round trip through the broker: everything it sent before answering
//  has been handled when this returns.
static void
s_round_trip (s_ctx_t *ctx)
{
    arb_msg_t *ping = arb_link_request_new (ctx->link, ARB_MSG_PING);
    arb_msg_t *pong = s_expect (ctx, arb_link_send (ctx->link, &ping), ARB_MSG_PONG);
    arb_msg_destroy (&pong);
}

//  ---------------------------------------------------------------------
//  Tests.

//  arb_link_timeout says 0 whenever a message waits, however the link's
//  last receive ended: here a reply comes in while the caller sends
//  another request, and that send (more than libzmq's 1 ms command
//  throttle after the last) takes in the command that would have made the
//  descriptor readable, so only ZMQ_EVENTS can tell. The link skips that
//  question only while nothing was sent since a receive found nothing.
//  The first reply must be in before the second send: a loaded machine
//  may answer later than 20 ms, so a round that finds nothing waiting is
//  tried again with twice the wait, up to 160 ms; each try starts with the
//  link's next timer (its heartbeat, every 200 ms here) further off than
//  its wait, so that only a waiting reply can make the timeout 0.
static void
test_timeout_sees_a_reply_a_send_took_the_signal_of (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-drained");
    ctx->use_fd = true;
    S_UNTIL (ctx, ctx->ups == 1);
    for (int round = 0; round < 20; round++) {
        int timeout = -1;
        for (int wait_ms = 20; timeout != 0; wait_ms *= 2) {
            assert_true (wait_ms <= 160);
            //  drained: handled until a receive found nothing
            arb_link_handle (ctx->link);
            //  the timers due before the wait ends run first (the
            //  heartbeat goes out); a loaded machine may need a few turns
            for (int turns = 0; arb_link_timeout (ctx->link) <= wait_ms + 10; turns++) {
                assert_true (turns < 20);
                zclock_sleep (arb_link_timeout (ctx->link) + 5);
                arb_link_handle (ctx->link);
            }
            arb_msg_t *request = arb_link_request_new (ctx->link, ARB_MSG_STATS);
            uint32_t first = arb_link_send (ctx->link, &request);
            assert_true (first > 0);
            zclock_sleep (wait_ms);  //  its reply is in, unread
            request = arb_link_request_new (ctx->link, ARB_MSG_STATS);
            uint32_t second = arb_link_send (ctx->link, &request);
            assert_true (second > 0);
            timeout = arb_link_timeout (ctx->link);
            arb_msg_t *reply = s_expect (ctx, first, ARB_MSG_STATS_REPLY);
            arb_msg_destroy (&reply);
            reply = s_expect (ctx, second, ARB_MSG_STATS_REPLY);
            arb_msg_destroy (&reply);
        }
    }
    s_ctx_destroy (&ctx);
}

//  Every request call, answered by the broker or refused locally; the
//  loop waits on the descriptor, as a foreign loop would.
static void
test_requests (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-requests");
    ctx->use_fd = true;
    assert_true (arb_link_fd (ctx->link) >= 0);
    //  the transport main asked for: a socket only with a DEALER
    const char *transport = getenv ("ARBITER_LINK_TRANSPORT");
    bool dealer = transport && streq (transport, "zmq");
    assert_true (dealer == (arb_link_sock (ctx->link) != NULL));
    S_UNTIL (ctx, ctx->ups == 1);

    const char *payloads[] = {"a", "b"};
    uint64_t ids[2];
    s_submitted (ctx, s_submit (ctx, "q1", payloads, 2, false), ids, 2);

    //  peek: the head of the queue, nothing leased
    arb_msg_t *reply = s_expect (ctx, arb_link_peek (ctx->link, "q1", 5), ARB_MSG_PEEK_REPLY);
    arb_peek_reply_body_t *peeked = arb_msg_peek_reply (reply);
    assert_int_equal (peeked->tasks.n, 2);
    assert_int_equal (peeked->tasks.v[0].id, ids[0]);
    assert_int_equal (peeked->tasks.v[0].lease, 0);
    assert_memory_equal (zframe_data (peeked->tasks.v[0].payload), "a", 1);
    arb_msg_destroy (&reply);
    assert_int_equal (arb_link_held (ctx->link), 0);

    //  generic requests: STATUS, STATS (we are a worker), META set and get
    arb_msg_t *request = arb_link_request_new (ctx->link, ARB_MSG_STATUS);
    arb_msg_status (request)->ids.v = ids;
    arb_msg_status (request)->ids.n = 1;
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_STATUS_REPLY);
    assert_null (request);
    assert_int_equal (arb_msg_status_reply (reply)->tasks.v[0].state, ARB_STATE_READY);
    arb_msg_destroy (&reply);
    request = arb_link_request_new (ctx->link, ARB_MSG_STATS);
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_STATS_REPLY);
    arb_stats_reply_body_t *stats = arb_msg_stats_reply (reply);
    bool listed = false;
    for (size_t i = 0; i < stats->workers.n; i++)
        listed |= streq (stats->workers.v[i].name, "link-requests");
    assert_true (listed);
    arb_msg_destroy (&reply);
    request = arb_link_request_new (ctx->link, ARB_MSG_META);
    arb_meta_body_t *meta = arb_msg_meta (request);
    meta->op = "set";
    meta->key = "gateway.x";
    meta->value = (arb_bin_t){(const uint8_t *) "v1", 2};
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_META_REPLY);
    arb_msg_destroy (&reply);
    request = arb_link_request_new (ctx->link, ARB_MSG_META);
    meta = arb_msg_meta (request);
    meta->op = "get";
    meta->key = "gateway.x";
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_META_REPLY);
    assert_int_equal (arb_msg_meta_reply (reply)->items.n, 1);
    assert_memory_equal (arb_msg_meta_reply (reply)->items.v[0].value.data, "v1", 2);
    arb_msg_destroy (&reply);

    //  the broker's ERROR comes back to the reply callback too
    request = arb_link_request_new (ctx->link, ARB_MSG_META);
    arb_msg_meta (request)->op = "bogus";
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_ERROR);
    assert_int_equal (arb_msg_error (reply)->code, ARB_ERR_INVALID);
    arb_msg_destroy (&reply);

    //  events of a queue, after EVENTS
    request = arb_link_request_new (ctx->link, ARB_MSG_EVENTS);
    arb_msg_events (request)->queue = "q1";
    reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_OK);
    arb_msg_destroy (&reply);

    //  cancel
    reply = s_expect (ctx, arb_link_cancel (ctx->link, &ids[1], 1), ARB_MSG_CANCEL_REPLY);
    assert_int_equal (arb_msg_cancel_reply (reply)->tasks.v[0].code, 0);
    assert_int_equal (arb_msg_cancel_reply (reply)->tasks.v[0].state, ARB_STATE_CANCELLED);
    arb_msg_destroy (&reply);
    assert_int_equal (s_status (broker, ids[1]).state, ARB_STATE_CANCELLED);
    S_UNTIL (ctx, ctx->events >= 1);  //  the cancel, as an event

    //  refused locally, at once, with a reason
    arb_task_spec_t nameless = {.queue = "q1", .payload = zframe_new ("x", 1)};
    assert_int_equal (arb_link_submit (ctx->link, &nameless, 1, false), 0);
    assert_null (nameless.payload);
    assert_non_null (strstr (arb_link_error (ctx->link), "name"));
    arb_link_set_max_payload (ctx->link, 4);
    arb_task_spec_t big = {.queue = "q1", .name = "big", .payload = zframe_new ("12345", 5)};
    assert_int_equal (arb_link_submit (ctx->link, &big, 1, false), 0);
    assert_non_null (strstr (arb_link_error (ctx->link), "payload"));
    request = arb_link_request_new (ctx->link, ARB_MSG_HEARTBEAT);
    assert_int_equal (arb_link_send (ctx->link, &request), 0);
    assert_null (request);
    assert_int_equal (arb_link_peek (ctx->link, "", 1), 0);
    assert_int_equal (arb_link_peek (ctx->link, "bad\nq", 1), 0);
    assert_non_null (strstr (arb_link_error (ctx->link), "control character"));
    //  a consumer of a queue the broker would refuse: refused here, not
    //  left without tasks and without a word
    const char *bad[] = {"bad\nq"};
    assert_int_equal (arb_link_subscribe (ctx->link, bad, 1, 1, s_on_dispatch, NULL), 0);
    assert_non_null (strstr (arb_link_error (ctx->link), "control character"));
    assert_int_equal (arb_link_take (ctx->link, "q1", ARB_LINK_HELD_MAX + 1), 0);
    assert_int_equal (arb_link_cancel (ctx->link, ids, 0), 0);
    assert_int_equal (arb_link_complete (ctx->link, ids[0], NULL), -1);
    assert_non_null (arb_link_error (ctx->link));
    s_round_trip (ctx);
    assert_int_equal (ctx->stop_count, 0);
    assert_int_equal (ctx->downs, 0);

    s_ctx_destroy (&ctx);
}

//  Consumers on one queue each get exactly their own credit, then what is
//  added to it, and nothing after they are cancelled.
static void
test_consumers_have_separate_credit (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-consumers");
    const char *cq[] = {"cq"};
    const char *both[] = {"other", "cq"};
    s_consumer_t *a = s_subscribe (ctx, cq, 1, 1);
    s_consumer_t *b = s_subscribe (ctx, cq, 1, 2);
    s_consumer_t *c = s_subscribe (ctx, both, 2, 3);
    assert_int_not_equal (a->sub, b->sub);
    S_UNTIL (ctx, ctx->ups == 1);

    const char *payloads[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"};
    uint64_t ids[12];
    s_submitted (ctx, s_submit (ctx, "cq", payloads, 12, false), ids, 12);
    S_UNTIL (ctx, a->count + b->count + c->count == 6);
    //  the broker has given out all the credit and holds the rest back
    arb_msg_t *reply = s_expect (ctx, arb_link_peek (ctx->link, "cq", 100), ARB_MSG_PEEK_REPLY);
    assert_int_equal (arb_msg_peek_reply (reply)->tasks.n, 6);
    arb_msg_destroy (&reply);
    assert_int_equal (a->count, 1);
    assert_int_equal (b->count, 2);
    assert_int_equal (c->count, 3);
    assert_int_equal (arb_link_credit (ctx->link, a->sub), 0);
    assert_int_equal (arb_link_held (ctx->link), 6);

    //  more credit for one consumer alone
    s_add_credit (a, 2);
    S_UNTIL (ctx, a->count == 3);
    assert_int_equal (b->count + c->count, 5);

    //  a cancelled consumer gets nothing more; the tasks it has stay held
    assert_int_equal (arb_link_unsubscribe (ctx->link, b->sub), 0);
    assert_int_equal (arb_link_add_credit (ctx->link, b->sub, 1), -1);
    s_add_credit (c, 1);
    S_UNTIL (ctx, c->count == 4);
    assert_int_equal (arb_link_held (ctx->link), 9);
    //  credit past the link's bound is refused
    assert_int_equal (arb_link_add_credit (ctx->link, a->sub, ARB_LINK_HELD_MAX), -1);

    //  every task settled at once goes out in the next turn
    s_consumer_t *all[] = {a, b, c};
    for (size_t k = 0; k < 3; k++)
        for (int i = 0; i < all[k]->count; i++)
            s_complete (ctx, all[k]->ids[i], "ok");
    arb_link_flush (ctx->link);
    //  held until the broker has stored them (RESULT_OK, before the PONG)
    assert_int_equal (arb_link_held (ctx->link), 9);
    s_round_trip (ctx);
    assert_int_equal (arb_link_held (ctx->link), 0);
    for (size_t k = 0; k < 3; k++)
        for (int i = 0; i < all[k]->count; i++) {
            s_status_t status = s_status (broker, all[k]->ids[i]);
            assert_int_equal (status.state, ARB_STATE_SUCCEEDED);
            assert_string_equal (status.text, "ok");
        }
    s_ctx_destroy (&ctx);
    free (a);
    free (b);
    free (c);
}

//  TAKE, then complete, fail and release: the released task is at the
//  head of its queue again.
static void
test_take_complete_fail_release (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-take");
    S_UNTIL (ctx, ctx->ups == 1);
    const char *payloads[] = {"t1", "t2", "t3", "t4"};
    uint64_t ids[4];
    s_submitted (ctx, s_submit (ctx, "tq", payloads, 4, false), ids, 4);

    arb_msg_t *reply = s_expect (ctx, arb_link_take (ctx->link, "tq", 3), ARB_MSG_DISPATCH);
    arb_dispatch_body_t *taken = arb_msg_dispatch (reply);
    assert_int_equal (taken->tasks.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (taken->tasks.v[i].id, ids[i]);
        assert_true (taken->tasks.v[i].lease != 0);
    }
    arb_msg_destroy (&reply);
    assert_int_equal (arb_link_held (ctx->link), 3);

    s_complete (ctx, ids[0], "r1");
    assert_int_equal (arb_link_fail (ctx->link, ids[1], "boom"), 0);
    assert_int_equal (arb_link_release (ctx->link, ids[2]), 0);
    assert_int_equal (arb_link_release (ctx->link, ids[2]), -1);  //  settled already
    assert_int_equal (arb_link_timeout (ctx->link), 0);           //  outcomes wait to go out
    arb_link_flush (ctx->link);
    s_round_trip (ctx);  //  their RESULT_OK comes before the PONG
    assert_int_equal (arb_link_held (ctx->link), 0);

    s_status_t status = s_status (broker, ids[0]);
    assert_int_equal (status.state, ARB_STATE_SUCCEEDED);
    assert_string_equal (status.text, "r1");
    status = s_status (broker, ids[1]);
    assert_int_equal (status.state, ARB_STATE_DEAD);
    assert_string_equal (status.text, "boom");
    status = s_status (broker, ids[2]);
    assert_int_equal (status.state, ARB_STATE_READY);
    assert_int_equal (status.attempts, 0);  //  a release counts no attempt

    //  the released task is back at the head, before t4
    reply = s_expect (ctx, arb_link_take (ctx->link, "tq", 1), ARB_MSG_DISPATCH);
    assert_int_equal (arb_msg_dispatch (reply)->tasks.n, 1);
    assert_int_equal (arb_msg_dispatch (reply)->tasks.v[0].id, ids[2]);
    arb_msg_destroy (&reply);
    s_complete (ctx, ids[2], "r3");
    //  nothing ready: an empty DISPATCH
    reply = s_expect (ctx, arb_link_take (ctx->link, "empty", 2), ARB_MSG_DISPATCH);
    assert_int_equal (arb_msg_dispatch (reply)->tasks.n, 0);
    arb_msg_destroy (&reply);
    assert_int_equal (s_status (broker, ids[2]).state, ARB_STATE_SUCCEEDED);
    s_ctx_destroy (&ctx);
}

//  A submit with watch: its DONE comes once, with the result; an unknown
//  id watched is reported as unknown.
static void
test_submit_with_watch (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-watch");
    const char *wq[] = {"wq"};
    s_consumer_t *consumer = s_subscribe (ctx, wq, 1, 2);
    const char *payloads[] = {"x", "y"};
    uint64_t ids[2];
    s_submitted (ctx, s_submit (ctx, "wq", payloads, 2, true), ids, 2);
    S_UNTIL (ctx, consumer->count == 2);
    s_complete (ctx, ids[0], "X!");
    assert_int_equal (arb_link_fail (ctx->link, ids[1], NULL), 0);
    S_UNTIL (ctx, ctx->done_count == 2);
    for (size_t i = 0; i < 2; i++) {
        s_done_t *done = ctx->dones[0].id == ids[i] ? &ctx->dones[0] : &ctx->dones[1];
        assert_int_equal (done->id, ids[i]);
        assert_int_equal (done->state, i == 0 ? ARB_STATE_SUCCEEDED : ARB_STATE_DEAD);
        assert_string_equal (done->text, i == 0 ? "X!" : "failed");
    }

    uint64_t unknown = 999999;
    arb_msg_t *request = arb_link_request_new (ctx->link, ARB_MSG_WATCH);
    arb_msg_watch (request)->ids.v = &unknown;
    arb_msg_watch (request)->ids.n = 1;
    arb_msg_t *reply = s_expect (ctx, arb_link_send (ctx->link, &request), ARB_MSG_WATCHING);
    arb_msg_destroy (&reply);
    S_UNTIL (ctx, ctx->done_count == 3);
    assert_int_equal (ctx->dones[2].id, unknown);
    assert_int_equal (ctx->dones[2].state, ARB_DONE_UNKNOWN);
    s_round_trip (ctx);
    assert_int_equal (ctx->done_count, 3);  //  each once
    s_ctx_destroy (&ctx);
    free (consumer);
}

//  A running task of ours that is cancelled, or whose timeout passes,
//  comes back as STOP; it is no longer held.
static void
test_cancel_and_timeout_stop (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-stop");
    const char *sq[] = {"sq"};
    s_consumer_t *consumer = s_subscribe (ctx, sq, 1, 2);
    const char *payloads[] = {"s"};
    uint64_t id;
    s_submitted (ctx, s_submit (ctx, "sq", payloads, 1, false), &id, 1);
    S_UNTIL (ctx, consumer->count == 1);

    arb_msg_t *reply = s_expect (ctx, arb_link_cancel (ctx->link, &id, 1), ARB_MSG_CANCEL_REPLY);
    assert_int_equal (arb_msg_cancel_reply (reply)->tasks.v[0].state, ARB_STATE_CANCELLED);
    arb_msg_destroy (&reply);
    S_UNTIL (ctx, ctx->stop_count == 1);
    assert_int_equal (ctx->stopped[0], id);
    assert_int_equal (ctx->stop_reasons[0], ARB_STOP_CANCEL);
    assert_int_equal (arb_link_held (ctx->link), 0);
    assert_int_equal (arb_link_complete (ctx->link, id, NULL), -1);

    arb_task_spec_t spec = {.queue = "sq", .name = "slow", .timeout_ms = 200};
    uint64_t slow;
    s_submitted (ctx, arb_link_submit (ctx->link, &spec, 1, false), &slow, 1);
    S_UNTIL (ctx, consumer->count == 2);
    S_UNTIL (ctx, ctx->stop_count == 2);
    assert_int_equal (ctx->stopped[1], slow);
    assert_int_equal (ctx->stop_reasons[1], ARB_STOP_TIMEOUT);
    assert_int_equal (arb_link_release (ctx->link, slow), -1);
    assert_int_equal (s_status (broker, slow).state, ARB_STATE_DEAD);
    s_ctx_destroy (&ctx);
    free (consumer);
}

//  The broker stops: a request comes back with a local error after the
//  request timeout, the session goes down, and comes up again with the
//  broker.
static void
test_request_timeout_while_broker_stopped (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-timeout");
    S_UNTIL (ctx, ctx->ups == 1);
    arb_link_set_timeout (ctx->link, 300);
    s_broker_kill (broker, SIGKILL);

    int64_t sent = zclock_mono ();
    arb_msg_t *request = arb_link_request_new (ctx->link, ARB_MSG_STATS);
    arb_msg_t *reply = s_reply (ctx, arb_link_send (ctx->link, &request));
    assert_int_equal (arb_msg_type (reply), ARB_MSG_ERROR);
    assert_int_equal (arb_msg_error (reply)->code, 0);  //  local: outcome unknown
    assert_non_null (strstr (arb_msg_error (reply)->reason, "STATS"));
    //  the link's own connection sees the broker's end: the request fails
    //  with it, before its timeout; a DEALER hides it, and the timeout says
    const char *transport = getenv ("ARBITER_LINK_TRANSPORT");
    if (transport && streq (transport, "zmq"))
        assert_true (zclock_mono () - sent >= 300);
    else
        assert_non_null (strstr (arb_msg_error (reply)->reason, "lost with the connection"));
    arb_msg_destroy (&reply);
    S_UNTIL (ctx, ctx->downs == 1);
    assert_false (arb_link_is_up (ctx->link));

    //  while it is away, requests fail the same way, and never block
    const char *payloads[] = {"p"};
    uint32_t reqid = s_submit (ctx, "dq", payloads, 1, false);
    reply = s_reply (ctx, reqid);
    assert_int_equal (arb_msg_error (reply)->code, 0);
    arb_msg_destroy (&reply);

    s_broker_start (broker, NULL);
    S_UNTIL (ctx, ctx->ups == 2);
    arb_link_set_timeout (ctx->link, S_WAIT_MS);
    s_round_trip (ctx);
    s_ctx_destroy (&ctx);
}

//  kill -9 of the broker with tasks held, one settled while it is away:
//  the link registers again, the broker gives every held task back (each
//  runs once, its outcome taken once), the consumers get their remaining
//  credit back, and the watches still report every task once.
static void
test_broker_kill_and_restart (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-restart");
    arb_link_set_rewatch (ctx->link, 500);  //  the keep-alive runs during the test too
    const char *rq[] = {"rq"};
    s_consumer_t *a = s_subscribe (ctx, rq, 1, 2);
    s_consumer_t *b = s_subscribe (ctx, rq, 1, 1);
    S_UNTIL (ctx, ctx->ups == 1);
    const char *payloads[] = {"1", "2", "3", "4", "5", "6"};
    uint64_t ids[6];
    s_submitted (ctx, s_submit (ctx, "rq", payloads, 6, true), ids, 6);
    S_UNTIL (ctx, a->count == 2 && b->count == 1);
    arb_msg_t *reply = s_expect (ctx, arb_link_take (ctx->link, "rq", 1), ARB_MSG_DISPATCH);
    assert_int_equal (arb_msg_dispatch (reply)->tasks.n, 1);
    uint64_t taken = arb_msg_dispatch (reply)->tasks.v[0].id;
    arb_msg_destroy (&reply);
    //  one finished before the crash
    s_complete (ctx, a->ids[0], "before");
    S_UNTIL (ctx, ctx->done_count == 1);
    assert_int_equal (arb_link_held (ctx->link), 3);

    s_broker_kill (broker, SIGKILL);
    S_UNTIL (ctx, ctx->downs == 1);
    //  settled while the broker is away: kept for the new session
    s_complete (ctx, b->ids[0], "during");
    s_broker_start (broker, NULL);
    S_UNTIL (ctx, ctx->ups == 2);
    assert_int_equal (ctx->stop_count, 0);          //  every held task was given back
    S_UNTIL (ctx, arb_link_held (ctx->link) == 2);  //  "during" stored
    s_complete (ctx, a->ids[1], "after");
    s_complete (ctx, taken, "taken");

    //  the consumers' credit is back: what they had left, and more
    s_add_credit (a, 2);
    S_UNTIL (ctx, a->count == 4);
    for (int i = 2; i < 4; i++)
        s_complete (ctx, a->ids[i], "later");
    S_UNTIL (ctx, ctx->done_count == 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal (s_count_done (ctx, ids[i]), 1);
        s_status_t status = s_status (broker, ids[i]);
        assert_int_equal (status.state, ARB_STATE_SUCCEEDED);
        assert_int_equal (status.attempts, 1);  //  each ran once
    }
    assert_string_equal (s_status (broker, b->ids[0]).text, "during");
    assert_string_equal (s_status (broker, a->ids[1]).text, "after");
    //  no task came twice
    for (int i = 0; i < a->count; i++)
        for (int k = 0; k < i; k++)
            assert_int_not_equal (a->ids[i], a->ids[k]);
    assert_int_equal (b->count, 1);
    s_ctx_destroy (&ctx);
    free (a);
    free (b);
}

//  A held task the broker gave to someone else while our link was away
//  is not given back: the stop callback names it as lost, and only the
//  other holder's outcome counts.
static void
test_task_not_taken_back_is_lost (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *first = s_ctx_new (broker, "link-first");
    const char *lq[] = {"lq"};
    s_consumer_t *a = s_subscribe (first, lq, 1, 1);
    const char *payloads[] = {"l"};
    uint64_t id;
    s_submitted (first, s_submit (first, "lq", payloads, 1, false), &id, 1);
    S_UNTIL (first, a->count == 1);

    //  the first link is not run while the broker restarts, without a
    //  recovery window, and a second link takes the task
    s_broker_kill (broker, SIGKILL);
    const char *no_recovery[] = {"--recovery-ms", "0", NULL};
    s_broker_start (broker, no_recovery);
    s_ctx_t *second = s_ctx_new (broker, "link-second");
    s_consumer_t *b = s_subscribe (second, lq, 1, 1);
    S_UNTIL (second, b->count == 1);
    assert_int_equal (b->ids[0], id);

    S_UNTIL (first, first->stop_count == 1);
    assert_int_equal (first->stopped[0], id);
    assert_int_equal (first->stop_reasons[0], ARB_LINK_LOST);
    assert_int_equal (arb_link_held (first->link), 0);
    assert_int_equal (arb_link_complete (first->link, id, NULL), -1);
    S_UNTIL (first, first->ups == 2);

    s_complete (second, id, "second");
    s_round_trip (second);
    s_status_t status = s_status (broker, id);
    assert_int_equal (status.state, ARB_STATE_SUCCEEDED);
    assert_string_equal (status.text, "second");
    s_ctx_destroy (&first);
    s_ctx_destroy (&second);
    free (a);
    free (b);
}

//  Every test gets its own broker, stopped and cleaned up even when the
//  test fails.
static int
s_setup (void **state)
{
    *state = s_broker_new (NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    s_broker_destroy ((s_broker_t **) state);
    return 0;
}

//  Steps the loop for ms, whatever happens.
static void
s_run_for (s_ctx_t *ctx, int ms)
{
    for (int64_t end = zclock_mono () + ms; s_step (ctx, end);)
        ;
}

//  Waits (stepping the loop) until the broker says a task succeeded.
static s_status_t
s_wait_succeeded (s_ctx_t *ctx, s_broker_t *broker, uint64_t id)
{
    int64_t deadline = s_deadline ();
    s_status_t status;
    while ((status = s_status (broker, id)).state != ARB_STATE_SUCCEEDED)
        assert_true (s_step (ctx, deadline));
    return status;
}

//  An outcome stays held until the broker acknowledges it after its
//  commit: one whose RESULT the broker read but never committed (it was
//  stopped, then killed), and one settled during an outage longer than the
//  liveness window (the link drops its connection meanwhile), each reach
//  the new broker, claimed and sent again: both tasks run once.
static void
test_outcomes_survive_a_broker_lost_before_its_commit (void **state)
{
    s_broker_t *broker = (s_broker_t *) *state;
    s_ctx_t *ctx = s_ctx_new (broker, "link-kept");
    const char *kq[] = {"kq"};
    s_consumer_t *a = s_subscribe (ctx, kq, 1, 2);
    S_UNTIL (ctx, ctx->ups == 1);
    const char *payloads[] = {"1", "2"};
    uint64_t ids[2];
    s_submitted (ctx, s_submit (ctx, "kq", payloads, 2, false), ids, 2);
    S_UNTIL (ctx, a->count == 2);

    //  the broker stops reading; the first outcome goes into its socket
    kill (broker->pid, SIGSTOP);
    s_complete (ctx, ids[0], "first");
    s_run_for (ctx, 300);
    assert_int_equal (arb_link_held (ctx->link), 2);  //  not acknowledged
    s_broker_kill (broker, SIGKILL);
    //  down past the liveness window; the second is settled meanwhile
    S_UNTIL (ctx, ctx->downs == 1);
    s_complete (ctx, ids[1], "second");
    s_run_for (ctx, 1200);
    s_broker_start (broker, NULL);
    S_UNTIL (ctx, ctx->ups == 2);
    assert_string_equal (s_wait_succeeded (ctx, broker, ids[0]).text, "first");
    assert_string_equal (s_wait_succeeded (ctx, broker, ids[1]).text, "second");
    S_UNTIL (ctx, arb_link_held (ctx->link) == 0);
    assert_int_equal (a->count, 2);  //  neither came back to run again
    assert_int_equal (ctx->stop_count, 0);
    s_ctx_destroy (&ctx);
    free (a);
}

//  A link whose handshake the broker refuses: its requests fail at once
//  (well before their timeout), saying why; a CURVE server stands in for
//  a broker with --curve, a plain ROUTER for one without.
static void
s_refused_at_once (s_ctx_t *ctx, const char *why)
{
    arb_link_set_timeout (ctx->link, 4 * S_WAIT_MS);  //  s_reply's deadline comes first
    for (int i = 0; i < 2; i++) {
        //  the second may be refused by the send itself: after a refusal
        //  a DEALER may have no connection left to queue it on
        arb_msg_t *ping = arb_link_request_new (ctx->link, ARB_MSG_PING);
        uint32_t reqid = arb_link_send (ctx->link, &ping);
        arb_msg_t *reply = reqid ? s_reply (ctx, reqid) : NULL;
        assert_true (!reply || arb_msg_type (reply) == ARB_MSG_ERROR);
        const char *reason = reply ? arb_msg_error (reply)->reason : arb_link_error (ctx->link);
        if (!strstr (reason, "refused the connection: ") || !strstr (reason, why))
            fail_msg ("not refused with \"%s\": %s", why, reason);
        arb_msg_destroy (&reply);
    }
}

static void
test_a_refused_handshake_fails_requests_at_once (void **state)
{
    (void) state;
    arb_link_callbacks_t callbacks = {.reply = s_on_reply,
                                      .done = s_on_done,
                                      .stop = s_on_stop,
                                      .event = s_on_event,
                                      .state = s_on_state};
    s_ctx_t *ctx = (s_ctx_t *) zmalloc (sizeof (s_ctx_t));
    ctx->replies = zlistx_new ();

    //  no certificate, for a broker that wants CURVE
    zcert_t *server = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_curve_server (router, 1);
    zcert_apply (server, router);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    ctx->link = arb_link_new_curve (zsock_endpoint (router), "refused", &callbacks, ctx, NULL);
    assert_non_null (ctx->link);
    s_refused_at_once (ctx, "the broker requires CURVE");
    arb_link_destroy (&ctx->link);
    zsock_destroy (&router);

    //  a certificate, for a broker without CURVE (through a DEALER)
    char dir[] = "/tmp/test-link-XXXXXX", path[64];
    assert_non_null (mkdtemp (dir));
    snprintf (path, sizeof (path), "%s/peer.cert", dir);
    zcert_t *peer = zcert_new ();
    assert_int_equal (zcert_save (peer, path), 0);
    char why[256];
    snprintf (path, sizeof (path), "%s/peer.cert_secret", dir);
    arb_curve_t *curve = arb_curve_new (path, zcert_public_txt (server), why, sizeof (why));
    assert_non_null (curve);
    router = zsock_new (ZMQ_ROUTER);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    ctx->link = arb_link_new_curve (zsock_endpoint (router), "refused", &callbacks, ctx, curve);
    assert_non_null (ctx->link);
    assert_non_null (arb_link_events (ctx->link));
    //  which side notices first is a race: either is said
    s_refused_at_once (ctx, "CURVE");
    arb_link_destroy (&ctx->link);
    zsock_destroy (&router);
    arb_curve_destroy (&curve);
    unlink (path);
    snprintf (path, sizeof (path), "%s/peer.cert", dir);
    unlink (path);
    assert_int_equal (rmdir (dir), 0);
    zcert_destroy (&peer);
    zcert_destroy (&server);
    s_ctx_destroy (&ctx);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_sees_a_reply_a_send_took_the_signal_of,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_consumers_have_separate_credit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_take_complete_fail_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_submit_with_watch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancel_and_timeout_stop, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_request_timeout_while_broker_stopped, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_kill_and_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_task_not_taken_back_is_lost, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_outcomes_survive_a_broker_lost_before_its_commit,
                                         s_setup, s_teardown),
        cmocka_unit_test (test_a_refused_handshake_fails_requests_at_once),
    };
    //  every test twice: on the link's own connection (a tcp:// endpoint's
    //  default, arb_dial.h), then through a ZeroMQ DEALER
    unsetenv ("ARBITER_LINK_TRANSPORT");
    int failed = cmocka_run_group_tests_name ("link, own connection", tests, NULL, NULL);
    setenv ("ARBITER_LINK_TRANSPORT", "zmq", 1);
    failed += cmocka_run_group_tests_name ("link, ZeroMQ DEALER", tests, NULL, NULL);
    return failed;
}
