/*  arb_bridge.c — one upstream queue bridged into arbiter, the loop's
    side; see arb_bridge.h.

    Two kinds of record. A job is one delivery of the current upstream
    connection, by delivery tag, until it is acked or rejected: held (in
    bridge->held) while there is no room, then submitting (its ticket),
    then, with reply_to, recording (its META set's reqid); a failure that
    may pass arms its timer, which submits or records again.

    A reply is one reply owed: a task's result to one reply address
    (reply_to and correlation_id), by its record's key
    "gw.bridge.NAME.ID.HEX" (ID the task's id, HEX the SHA-1 of the
    address), from the SUBMITTED of the first message that owes it (or
    from the records listed at start) until its record is deleted. Two
    messages with one message_id find one task: with two addresses they
    are owed two replies, two records; with the same address (the same
    message delivered again, or sent again by its caller) one reply
    answers both. The replies of one task are listed in bridge->tasks:

        WAITING -(DONE)-> PUBLISHING -(confirm)-> DELETING -> gone
           \                 |  (upstream down, window full, nack)
            \-(DONE)-> ENDED <-/  -(room)-> REWATCHING -(DONE)-> PUBLISHING

    One reply of a task at a time is PUBLISHING: the upstream's confirm
    names the task (its x-arbiter-task-id), so the others of that task
    wait ENDED and fetch the result again once it is confirmed.

    A job whose upstream connection goes down is dropped (RabbitMQ
    delivers the message again); a reply stays until it is answered.
*/

#include "arb_bridge.h"
#include "arb_envelope.h"
#include "arb_idmap.h"
#include "arb_upstream.h"

#include <inttypes.h>

#define S_RETRY_MIN_MS 500    //  first delay before a submit, record or delete is tried again
#define S_RETRY_MAX_MS 10000  //  its cap
#define S_TICK_MS      1000   //  listing the records and refused watches, again
#define S_EVENTS_BATCH 1000   //  events from the thread handled per turn
#define S_WATCH_BATCH  10000  //  ids per WATCH
#define S_DIGEST_HEX   40     //  hex digits of a record key's address digest (SHA-1)

typedef struct {
    arb_bridge_t *bridge;  //  borrowed
    uint64_t tag;          //  delivery tag on the connection bridge->gen
    bool digest;           //  the key is a digest of the content
    bool keyless;          //  a distinct copy of an earlier message: submitted without a key
    bool attached;         //  its reply is owed (bridge->replies holds record)
    char key[ARB_NAME_MAX + 1];
    zframe_t *headers;  //  owned task headers, or NULL
    zframe_t *address;  //  owned reply address, or NULL: no reply wanted
    zframe_t *body;     //  owned payload, until its task is committed
    char *record;       //  owned key of its reply's record, once committed with an address
    uint64_t ticket;    //  SUBMITTING: the gateway's submit ticket
    uint32_t reqid;     //  RECORDING: the META set
    uint64_t ups;       //  bridge->ups when its submit or record went out
    uint64_t id;        //  its task, once committed (0 before)
    uint64_t delay_ms;  //  the next retry's delay
    arb_timer_t timer;  //  RETRY
    void *held;         //  HELD: its handle in bridge->held
} s_job_t;

typedef enum {
    S_REPLY_WAITING,     //  watched; the task has not ended
    S_REPLY_ENDED,       //  ended; its result is to be fetched again (WATCH)
    S_REPLY_REWATCHING,  //  the WATCH that fetches it went out
    S_REPLY_PUBLISHING,  //  with the thread, until RabbitMQ confirms it
    S_REPLY_DELETING,    //  confirmed; its record is being deleted
} s_reply_state_t;

//  The replies owed one task's result.
typedef struct {
    uint64_t id;        //  the task
    zlistx_t *replies;  //  owned list of borrowed s_reply_t, in order of arrival
    void *publishing;   //  borrowed s_reply_t PUBLISHING, or NULL
} s_task_t;

typedef struct {
    arb_bridge_t *bridge;  //  borrowed
    uint64_t id;           //  the task
    char *key;             //  owned: its record's key (bridge->replies' key)
    s_reply_state_t state;
    bool watched;       //  WAITING: the link took its WATCH
    zframe_t *address;  //  owned reply address
    size_t bytes;       //  PUBLISHING: result bytes given to the thread
    uint32_t reqid;     //  DELETING: the META del awaiting its answer (0: none)
    uint64_t delay_ms;  //  the next retry's delay
    arb_timer_t timer;  //  DELETING: delete again; ENDED after a nack: fetch again
    void *ended;        //  ENDED: its handle in bridge->ended (NULL while its timer runs)
    s_task_t *task;     //  borrowed: its task's replies (bridge->tasks)
    void *sibling;      //  its handle in task->replies
    char *refusal;      //  owned: why RabbitMQ refused it for good, or NULL
} s_reply_t;

struct _arb_bridge_t {
    arb_gateway_t *gateway;    //  borrowed
    arb_reactor_t *reactor;    //  borrowed
    arb_upstream_t *upstream;  //  owned: the thread
    char *name;                //  owned
    char *prefix;              //  owned: "gw.bridge.NAME."
    char *queue;               //  owned
    char *task_name;           //  owned
    arb_task_spec_t task;      //  the tasks' options; queue and name are ours
    uint32_t max_pending;      //  replies owed and jobs submitting or recording, at most
    uint64_t gen;              //  the upstream connection consuming now, 0: none
    arb_idmap_t *jobs;         //  owned: delivery tag -> owned s_job_t
    zlistx_t *held;            //  owned list of borrowed jobs waiting for room, in order
    zhashx_t *replies;         //  owned: record key -> owned s_reply_t
    arb_idmap_t *tasks;        //  owned: task id -> owned s_task_t (its replies)
    zlistx_t *ended;           //  owned list of borrowed replies to fetch again, in order
    size_t window;             //  replies REWATCHING or PUBLISHING
    size_t window_bytes;       //  result bytes given to the thread, not confirmed yet
    bool unwatched;            //  some WAITING reply's WATCH was refused
    bool loaded;               //  the records of an earlier run were listed
    size_t listed;             //  replies found by the listing so far
    uint32_t list_reqid;       //  the META list awaiting its answer
    arb_timer_t tick;          //  listing and watching again
    uint64_t ups;              //  times the broker session went up
    uint64_t failures;         //  submits and records failed since the last that passed
    bool holding;              //  messages wait for room under max_pending (said once)
};

static void s_pump (arb_bridge_t *self);
static void s_submit (s_job_t *job);
static void s_record (s_job_t *job);
static void s_attach (s_job_t *job);

//  ---------------------------------------------------------------------
//  Requests to the broker

//  A META request for the record key (value: NULL, or the bytes to set).
static arb_msg_t *
s_meta (arb_bridge_t *self, const char *op, const char *key, zframe_t *value)
{
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (self->gateway), ARB_MSG_META);
    arb_meta_body_t *body = arb_msg_meta (request);
    body->op = op;
    body->key = arb_msg_strdup (request, key);
    if (value)
        body->value = arb_msg_bindup (request, zframe_data (value), zframe_size (value));
    return request;
}

//  The key of the record of task id's reply to address: new string.
static char *
s_record_key (arb_bridge_t *self, uint64_t id, zframe_t *address)
{
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, zframe_data (address), zframe_size (address));
    char *key = zsys_sprintf ("%s%" PRIu64 ".%s", self->prefix, id, zdigest_string (digest));
    zdigest_destroy (&digest);
    return key;
}

//  The task id of a record key (what follows the prefix: "ID.HEX", or "ID"
//  as gateways before the digest wrote it), or 0 if it is none.
static uint64_t
s_record_id (const char *rest)
{
    char *end = NULL;
    if (*rest < '1' || *rest > '9')
        return 0;
    uint64_t id = strtoull (rest, &end, 10);
    if (*end == '.') {
        size_t n = strspn (end + 1, "0123456789ABCDEF");
        if (n != S_DIGEST_HEX || end[1 + n])
            return 0;
    }
    else if (*end)
        return 0;
    return id;
}

//  Watches n task ids. 0, or -1 if the link refused the request.
static int
s_watch_ids (arb_bridge_t *self, uint64_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (self->gateway), ARB_MSG_WATCH);
    arb_ids_t *list = &arb_msg_watch (request)->ids;
    list->v = (uint64_t *) arb_msg_alloc (request, n * sizeof (uint64_t));
    memcpy (list->v, ids, n * sizeof (uint64_t));
    list->n = n;
    //  the answer (WATCHING) tells nothing the DONE will not: a failed
    //  WATCH stays in force in the link
    return arb_gateway_send (self->gateway, &request, NULL, NULL) ? 0 : -1;
}

static uint64_t
s_backoff (uint64_t *delay_ms)
{
    uint64_t delay = *delay_ms;
    *delay_ms = delay * 2 < S_RETRY_MAX_MS ? delay * 2 : S_RETRY_MAX_MS;
    return delay;
}

static void s_arm_tick (arb_bridge_t *self);

//  ---------------------------------------------------------------------
//  Replies

//  A reply owed (WAITING, not watched yet) of task id to address (taken),
//  its record key (taken).
static s_reply_t *
s_reply_new (arb_bridge_t *self, uint64_t id, char **key_p, zframe_t **address_p)
{
    s_reply_t *reply = (s_reply_t *) zmalloc (sizeof (s_reply_t));
    reply->bridge = self;
    reply->id = id;
    reply->key = *key_p;
    *key_p = NULL;
    reply->address = *address_p;
    *address_p = NULL;
    reply->delay_ms = S_RETRY_MIN_MS;
    zhashx_insert (self->replies, reply->key, reply);
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (!task) {
        task = (s_task_t *) zmalloc (sizeof (s_task_t));
        task->id = id;
        task->replies = zlistx_new ();
        arb_idmap_insert (self->tasks, id, task);
    }
    reply->task = task;
    reply->sibling = zlistx_add_end (task->replies, reply);
    return reply;
}

static void
s_reply_destroy (s_reply_t **reply_p)
{
    s_reply_t *reply = *reply_p;
    arb_bridge_t *self = reply->bridge;
    zhashx_delete (self->replies, reply->key);
    s_task_t *task = reply->task;
    zlistx_delete (task->replies, reply->sibling);
    if (task->publishing == reply)
        task->publishing = NULL;
    if (zlistx_size (task->replies) == 0) {
        arb_idmap_remove (self->tasks, task->id);
        zlistx_destroy (&task->replies);
        free (task);
    }
    if (reply->ended)
        zlistx_delete (self->ended, reply->ended);
    if (reply->reqid)
        arb_gateway_forget (self->gateway, reply->reqid);
    arb_reactor_disarm (self->reactor, &reply->timer);
    zframe_destroy (&reply->address);
    free (reply->key);
    free (reply->refusal);
    free (reply);
    *reply_p = NULL;
}

//  Leaves the window (a reply that was REWATCHING or PUBLISHING).
static void
s_window_leave (arb_bridge_t *self, s_reply_t *reply)
{
    if (reply->state == S_REPLY_PUBLISHING)
        reply->task->publishing = NULL;
    self->window--;
    self->window_bytes -= reply->bytes;
    reply->bytes = 0;
}

//  The task ended but its result cannot go upstream now: fetch it again
//  when there is room.
static void
s_reply_end (arb_bridge_t *self, s_reply_t *reply)
{
    reply->state = S_REPLY_ENDED;
    reply->ended = zlistx_add_end (self->ended, reply);
}

static void s_on_reply_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);

static void
s_on_deleted (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_reply_t *reply = (s_reply_t *) arg;
    arb_bridge_t *self = reply->bridge;
    reply->reqid = 0;
    if (arb_msg_type (*reply_p) == ARB_MSG_META_REPLY) {
        s_reply_destroy (&reply);
        s_pump (self);
        return;
    }
    zsys_debug ("bridge: record not deleted bridge=%s task=%" PRIu64 " reason=\"%s\"", self->name,
                reply->id, arb_msg_error (*reply_p)->reason);
    arb_reactor_arm (self->reactor, &reply->timer, s_backoff (&reply->delay_ms), s_on_reply_timer,
                     reply);
}

static void
s_delete (s_reply_t *reply)
{
    arb_bridge_t *self = reply->bridge;
    arb_msg_t *request = s_meta (self, "del", reply->key, NULL);
    reply->reqid = arb_gateway_send (self->gateway, &request, s_on_deleted, reply);
    if (!reply->reqid)
        arb_reactor_arm (self->reactor, &reply->timer, s_backoff (&reply->delay_ms),
                         s_on_reply_timer, reply);
}

static void
s_on_reply_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_reply_t *reply = (s_reply_t *) arg;
    if (reply->state == S_REPLY_DELETING)
        s_delete (reply);
    else {
        //  ENDED after a nack: fetch it again now
        s_reply_end (reply->bridge, reply);
        s_pump (reply->bridge);
    }
}

//  Publishes the ended task's result to one reply.
static void
s_publish (arb_bridge_t *self, s_reply_t *reply, arb_done_task_t *task)
{
    const char *state = arb_state_name ((int) task->state);
    const char *error = task->state == ARB_STATE_SUCCEEDED ? NULL : task->error;
    if (task->state == ARB_DONE_UNKNOWN) {
        state = "unknown";
        error = "the broker does not know this task (its retention ended?)";
    }
    char refused[ARB_TEXT_MAX];
    if (reply->refusal) {
        //  RabbitMQ refused the result: its caller is told why instead
        snprintf (refused, sizeof (refused),
                  "the reply with the result was refused by RabbitMQ (%s); the task is %s",
                  reply->refusal, state);
        error = refused;
    }
    size_t size = task->result && !reply->refusal ? zframe_size (task->result) : 0;
    //  the record is borrowed: other listeners may read the result too
    zframe_t *result = task->result && !reply->refusal ? zframe_dup (task->result) : NULL;
    arb_upstream_publish (self->upstream, self->gen, reply->id, reply->address, state, error,
                          &result);
    reply->state = S_REPLY_PUBLISHING;
    reply->task->publishing = reply;
    reply->bytes = size;
    self->window++;
    self->window_bytes += size;
}

//  A watched task ended (or was found ended again): the first of its
//  replies waiting for it goes upstream, if there is room; the others
//  fetch the result again later.
static void
s_on_done (void *arg, arb_done_task_t *task)
{
    arb_bridge_t *self = (arb_bridge_t *) arg;
    s_task_t *owed = (s_task_t *) arb_idmap_lookup (self->tasks, task->id);
    if (!owed)
        return;
    size_t size = task->result ? zframe_size (task->result) : 0;
    for (s_reply_t *reply = (s_reply_t *) zlistx_first (owed->replies); reply;
         reply = (s_reply_t *) zlistx_next (owed->replies)) {
        if (reply->state != S_REPLY_WAITING && reply->state != S_REPLY_REWATCHING)
            continue;
        if (reply->state == S_REPLY_REWATCHING)
            s_window_leave (self, reply);
        if (owed->publishing || !self->gen || self->window >= ARB_BRIDGE_WINDOW
            || (self->window > 0 && self->window_bytes + size > ARB_BRIDGE_WINDOW_BYTES))
            s_reply_end (self, reply);
        else
            s_publish (self, reply, task);
    }
}

//  RabbitMQ confirmed (ok) or refused the reply of task id being published.
static void
s_on_confirmed (arb_bridge_t *self, uint64_t id, bool ok)
{
    s_task_t *owed = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    s_reply_t *reply = owed ? (s_reply_t *) owed->publishing : NULL;
    if (!reply)
        return;
    s_window_leave (self, reply);
    if (ok) {
        reply->state = S_REPLY_DELETING;
        reply->delay_ms = S_RETRY_MIN_MS;
        s_delete (reply);
    }
    else {
        zsys_warning ("bridge: RabbitMQ refused a reply, publishing again bridge=%s task=%" PRIu64,
                      self->name, id);
        reply->state = S_REPLY_ENDED;
        arb_reactor_arm (self->reactor, &reply->timer, s_backoff (&reply->delay_ms),
                         s_on_reply_timer, reply);
    }
    s_pump (self);
}

//  RabbitMQ refused the reply of task id for good (406: over its
//  max_message_size, say): it goes again without the result, its
//  x-arbiter-error saying why, so that its caller learns; refused again,
//  it is dropped (logged, its record deleted).
static void
s_on_refused (arb_bridge_t *self, uint64_t id, const char *reason)
{
    s_task_t *owed = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    s_reply_t *reply = owed ? (s_reply_t *) owed->publishing : NULL;
    if (!reply)
        return;
    s_window_leave (self, reply);
    if (!reply->refusal) {
        zsys_warning ("bridge: RabbitMQ refused a reply, answering with its reason bridge=%s "
                      "task=%" PRIu64 " reason=\"%s\"",
                      self->name, id, reason);
        reply->refusal = strdup (reason);
        s_reply_end (self, reply);
    }
    else {
        zsys_error ("bridge: RabbitMQ refused a reply and its reason, dropped bridge=%s "
                    "task=%" PRIu64 " reason=\"%s\"",
                    self->name, id, reason);
        reply->state = S_REPLY_DELETING;
        reply->delay_ms = S_RETRY_MIN_MS;
        s_delete (reply);
    }
    s_pump (self);
}

//  Watches every WAITING reply whose WATCH was refused.
static void
s_watch_refused (arb_bridge_t *self)
{
    self->unwatched = false;
    uint64_t *ids = (uint64_t *) zmalloc (S_WATCH_BATCH * sizeof (uint64_t));
    s_reply_t **batch = (s_reply_t **) zmalloc (S_WATCH_BATCH * sizeof (s_reply_t *));
    size_t n = 0;
    s_reply_t *reply = (s_reply_t *) zhashx_first (self->replies);
    while (true) {
        if (reply && reply->state == S_REPLY_WAITING && !reply->watched) {
            batch[n] = reply;
            ids[n++] = reply->id;
        }
        if (reply)
            reply = (s_reply_t *) zhashx_next (self->replies);
        if (n == S_WATCH_BATCH || (!reply && n > 0)) {
            bool ok = s_watch_ids (self, ids, n) == 0;
            for (size_t i = 0; i < n; i++)
                batch[i]->watched = ok;
            self->unwatched |= !ok;
            n = 0;
        }
        if (!reply)
            break;
    }
    free (ids);
    free (batch);
    if (self->unwatched)
        s_arm_tick (self);
}

//  ---------------------------------------------------------------------
//  Jobs

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    arb_bridge_t *self = job->bridge;
    arb_idmap_remove (self->jobs, job->tag);
    if (job->held)
        zlistx_delete (self->held, job->held);
    if (job->ticket)
        arb_gateway_forget_submit (self->gateway, job->ticket);
    if (job->reqid)
        arb_gateway_forget (self->gateway, job->reqid);
    arb_reactor_disarm (self->reactor, &job->timer);
    zframe_destroy (&job->headers);
    zframe_destroy (&job->address);
    zframe_destroy (&job->body);
    free (job->record);
    free (job);
    *job_p = NULL;
}

//  A submit or record passed: a streak of failures ends.
static void
s_broker_answers (arb_bridge_t *self)
{
    if (self->failures)
        zsys_notice ("bridge: the broker takes messages again bridge=%s failed_attempts=%" PRIu64,
                     self->name, self->failures);
    self->failures = 0;
}

//  Its task (and record) are committed: ack the message upstream.
static void
s_job_finish (s_job_t *job)
{
    arb_bridge_t *self = job->bridge;
    arb_upstream_ack (self->upstream, self->gen, job->tag);
    s_job_destroy (&job);
    s_pump (self);
}

//  The broker will never take it: reject it upstream, without requeue.
static void
s_job_refuse (s_job_t *job, int code, const char *why)
{
    arb_bridge_t *self = job->bridge;
    zsys_warning ("bridge: message refused, rejected upstream bridge=%s key=%s code=%d "
                  "reason=\"%s\"",
                  self->name, job->key, code, why ? why : "?");
    arb_upstream_reject (self->upstream, self->gen, job->tag, false);
    s_job_destroy (&job);
    s_pump (self);
}

//  Its next step, again (a failure may have passed).
static void
s_job_again (s_job_t *job)
{
    if (!job->id)
        s_submit (job);
    else if (!job->attached)
        s_attach (job);
    else
        s_record (job);
}

static void
s_on_job_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_job_again ((s_job_t *) arg);
}

//  The broker did not answer, or cannot now: try again later (RabbitMQ
//  keeps the message unacked meanwhile). The first failure of a streak is
//  a warning: messages wait, and nothing else would say so; the rest are
//  debug (one line per message and attempt would flood the log).
static void
s_job_retry (s_job_t *job, const char *what, const char *why)
{
    arb_bridge_t *self = job->bridge;
    uint64_t delay = s_backoff (&job->delay_ms);
    if (job->ups != self->ups && arb_gateway_is_up (self->gateway)) {
        //  it went out before the session came up again: the broker
        //  answers now
        delay = 0;
        job->delay_ms = S_RETRY_MIN_MS;
    }
    if (self->failures++ == 0)
        zsys_warning ("bridge: %s failed, messages wait unacked and are tried again bridge=%s "
                      "key=%s reason=\"%s\"",
                      what, self->name, job->key, why ? why : "?");
    else
        zsys_debug ("bridge: %s failed, again in %" PRIu64 " ms bridge=%s key=%s reason=\"%s\"",
                    what, delay, self->name, job->key, why ? why : "?");
    arb_reactor_arm (self->reactor, &job->timer, delay, s_on_job_timer, job);
}

static void
s_on_recorded (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_job_t *job = (s_job_t *) arg;
    job->reqid = 0;
    if (arb_msg_type (*reply_p) == ARB_MSG_META_REPLY) {
        s_broker_answers (job->bridge);
        s_job_finish (job);
    }
    else
        s_job_retry (job, "record", arb_msg_error (*reply_p)->reason);
}

//  Writes the record of the job's reply, then acks.
static void
s_record (s_job_t *job)
{
    arb_bridge_t *self = job->bridge;
    s_reply_t *reply = (s_reply_t *) zhashx_lookup (self->replies, job->record);
    if (!reply || reply->state == S_REPLY_DELETING) {
        //  its reply went out (RabbitMQ confirmed it) since the job found
        //  it owed: no record is needed
        s_job_finish (job);
        return;
    }
    arb_msg_t *request = s_meta (self, "set", job->record, job->address);
    job->ups = self->ups;
    job->reqid = arb_gateway_send (self->gateway, &request, s_on_recorded, job);
    if (!job->reqid)
        s_job_retry (job, "record", arb_gateway_error (self->gateway));
}

//  The job's task is committed: its reply is owed (a reply to the same
//  address owed already answers it too), then recorded.
static void
s_attach (s_job_t *job)
{
    arb_bridge_t *self = job->bridge;
    s_reply_t *reply = (s_reply_t *) zhashx_lookup (self->replies, job->record);
    if (reply && reply->state == S_REPLY_DELETING) {
        //  answered before this message came (a resend after its reply):
        //  once the old record is gone, it is owed again
        arb_reactor_arm (self->reactor, &job->timer, s_backoff (&job->delay_ms), s_on_job_timer,
                         job);
        return;
    }
    if (!reply) {
        char *key = strdup (job->record);
        zframe_t *address = zframe_dup (job->address);
        reply = s_reply_new (self, job->id, &key, &address);
        reply->watched = s_watch_ids (self, &reply->id, 1) == 0;
        if (!reply->watched) {
            self->unwatched = true;
            s_arm_tick (self);
        }
    }
    job->attached = true;
    job->delay_ms = S_RETRY_MIN_MS;
    s_record (job);
}

static void
s_on_submitted (arb_gateway_t *gateway,
                const arb_submitted_task_t *task,
                int code,
                const char *error,
                void *arg)
{
    (void) gateway;
    s_job_t *job = (s_job_t *) arg;
    arb_bridge_t *self = job->bridge;
    job->ticket = 0;
    if (!task) {
        if (code == 0 || code >= 500)
            s_job_retry (job, "submit", error);
        else
            s_job_refuse (job, code, error);
        return;
    }
    s_broker_answers (self);
    if (job->digest && task->existing && !job->keyless) {
        //  its content's key is taken: another message with the same
        //  content, or this one delivered again after its submit. The two
        //  cannot be told apart without a message_id, and taking it for the
        //  earlier task could lose it: it gets a task of its own (at least
        //  once: a message delivered again may then run twice)
        zsys_debug ("bridge: same content as task %" PRIu64 ", submitted apart bridge=%s key=%s",
                    task->id, self->name, job->key);
        job->keyless = true;
        s_submit (job);
        return;
    }
    job->id = task->id;
    job->delay_ms = S_RETRY_MIN_MS;
    zframe_destroy (&job->body);
    if (!job->address) {
        s_job_finish (job);
        return;
    }
    job->record = s_record_key (self, job->id, job->address);
    s_attach (job);
}

static void
s_submit (s_job_t *job)
{
    arb_bridge_t *self = job->bridge;
    arb_task_spec_t spec = self->task;
    spec.key = job->keyless ? NULL : job->key;
    if (job->headers)
        spec.headers = (arb_bin_t){zframe_data (job->headers), zframe_size (job->headers)};
    spec.payload = zframe_dup (job->body);
    job->ups = self->ups;
    job->ticket = arb_gateway_submit_one (self->gateway, &spec, s_on_submitted, job);
    if (!job->ticket)
        s_job_refuse (job, ARB_ERR_INVALID, arb_gateway_error (self->gateway));
}

//  Whether one more message may be submitted: replies owed, and jobs
//  that may owe one (submitting, recording), count against max_pending.
static bool
s_has_room (arb_bridge_t *self)
{
    size_t busy = arb_idmap_size (self->jobs) - zlistx_size (self->held);
    return zhashx_size (self->replies) + busy < self->max_pending;
}

//  Starts the jobs there is room for, and fetches the results of ended
//  tasks there is window for.
static void
s_pump (arb_bridge_t *self)
{
    while (zlistx_size (self->held) && s_has_room (self)) {
        s_job_t *job = (s_job_t *) zlistx_first (self->held);
        zlistx_delete (self->held, job->held);
        job->held = NULL;
        s_submit (job);
    }
    //  one line when the bridge starts holding messages back, one when it
    //  holds none and is down to half its bound: not one a message, nor one
    //  each time a message comes just as the last held one left
    size_t pending = zhashx_size (self->replies) + arb_idmap_size (self->jobs);
    if (!self->holding && zlistx_size (self->held)) {
        self->holding = true;
        zsys_info ("bridge: max-pending reached, messages wait unacked in RabbitMQ bridge=%s "
                   "max_pending=%" PRIu32,
                   self->name, self->max_pending);
    }
    else if (self->holding && !zlistx_size (self->held) && pending <= self->max_pending / 2) {
        self->holding = false;
        zsys_info ("bridge: below max-pending again, messages are submitted bridge=%s", self->name);
    }
    //  the WATCHes that fetch ended tasks' results again, 64 ids each
    while (self->gen && zlistx_size (self->ended) && self->window < ARB_BRIDGE_WINDOW
           && self->window_bytes < ARB_BRIDGE_WINDOW_BYTES) {
        uint64_t ids[64];
        s_reply_t *batch[64];
        size_t n = 0;
        for (s_reply_t *reply = (s_reply_t *) zlistx_first (self->ended);
             reply && n < 64 && self->window < ARB_BRIDGE_WINDOW;
             reply = (s_reply_t *) zlistx_next (self->ended)) {
            if (reply->task->publishing)
                continue;  //  after the reply of its task that is with the thread
            zlistx_delete (self->ended, reply->ended);  //  the cursor goes back one
            reply->ended = NULL;
            reply->state = S_REPLY_REWATCHING;
            self->window++;
            batch[n] = reply;
            ids[n++] = reply->id;
        }
        if (n == 0)
            break;
        if (s_watch_ids (self, ids, n)) {
            //  the link is full: fetch them later
            for (size_t i = 0; i < n; i++) {
                s_window_leave (self, batch[i]);
                s_reply_end (self, batch[i]);
            }
            s_arm_tick (self);
            break;
        }
    }
}

//  ---------------------------------------------------------------------
//  The upstream's events

static void
s_on_deliver (arb_bridge_t *self, arb_upstream_event_t *event)
{
    if (event->gen != self->gen)
        return;  //  of a connection already gone: RabbitMQ delivers it again
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->bridge = self;
    job->tag = event->tag;
    job->digest = event->digest;
    memcpy (job->key, event->key, sizeof (job->key));
    job->headers = event->headers;
    job->address = event->address;
    job->body = event->body;
    event->headers = event->address = event->body = NULL;
    job->delay_ms = S_RETRY_MIN_MS;
    arb_idmap_insert (self->jobs, job->tag, job);
    if (event->too_large) {
        s_job_refuse (job, ARB_ERR_TOO_LARGE, "body over the gateway's --max-payload");
        return;
    }
    job->held = zlistx_add_end (self->held, job);
    s_pump (self);
}

//  Drops every job (their deliveries are not ours any more, or the bridge
//  stops).
static void
s_drop_jobs (arb_bridge_t *self)
{
    zlistx_t *jobs = zlistx_new ();
    size_t cursor = 0;
    uint64_t tag;
    void *value;
    while (arb_idmap_next (self->jobs, &cursor, &tag, &value))
        zlistx_add_end (jobs, value);
    for (s_job_t *job = (s_job_t *) zlistx_first (jobs); job; job = (s_job_t *) zlistx_next (jobs))
        s_job_destroy (&job);
    zlistx_destroy (&jobs);
}

//  The upstream connection is gone: its deliveries come again on the
//  next, and what was being published goes again.
static void
s_on_down (arb_bridge_t *self)
{
    self->gen = 0;
    s_drop_jobs (self);
    for (s_reply_t *reply = (s_reply_t *) zhashx_first (self->replies); reply;
         reply = (s_reply_t *) zhashx_next (self->replies)) {
        if (reply->state == S_REPLY_REWATCHING || reply->state == S_REPLY_PUBLISHING) {
            s_window_leave (self, reply);
            s_reply_end (self, reply);
        }
    }
}

static void
s_on_upstream (arb_reactor_t *reactor, zsock_t *sock, void *arg)
{
    (void) reactor;
    (void) sock;
    arb_bridge_t *self = (arb_bridge_t *) arg;
    arb_upstream_event_t event;
    for (int i = 0; i < S_EVENTS_BATCH && arb_upstream_recv (self->upstream, &event) == 0; i++) {
        switch (event.type) {
            case ARB_UPSTREAM_UP:
                self->gen = event.gen;
                zsys_debug ("bridge: upstream up bridge=%s replies_to_send=%zu", self->name,
                            zlistx_size (self->ended));
                s_pump (self);
                break;
            case ARB_UPSTREAM_DOWN:
                if (event.gen == self->gen)
                    s_on_down (self);
                break;
            case ARB_UPSTREAM_DELIVER:
                s_on_deliver (self, &event);
                break;
            case ARB_UPSTREAM_CONFIRMED:
            case ARB_UPSTREAM_NACKED:
                if (event.gen == self->gen)
                    s_on_confirmed (self, event.id, event.type == ARB_UPSTREAM_CONFIRMED);
                break;
            case ARB_UPSTREAM_REFUSED:
                if (event.gen == self->gen)
                    s_on_refused (self, event.id, event.reason);
                break;
        }
        arb_upstream_event_clear (&event);
    }
}

//  ---------------------------------------------------------------------
//  The records of an earlier run

static void s_load (arb_bridge_t *self, const char *after);

static void
s_on_listed (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_bridge_t *self = (arb_bridge_t *) arg;
    self->list_reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY) {
        zsys_warning ("bridge: cannot list the records bridge=%s reason=\"%s\"", self->name,
                      arb_msg_error (*reply_p)->reason);
        s_arm_tick (self);
        return;
    }
    arb_meta_reply_body_t *body = arb_msg_meta_reply (*reply_p);
    size_t prefix = strlen (self->prefix);
    amqp_pool_t pool;
    init_amqp_pool (&pool, 512);
    for (size_t i = 0; i < body->items.n; i++) {
        const char *key = body->items.v[i].key;
        uint64_t id = s_record_id (key + prefix);
        if (id == 0 || zhashx_lookup (self->replies, key))
            continue;
        arb_bin_t value = body->items.v[i].value;
        amqp_bytes_t reply_to, correlation_id;
        int rc =
            arb_envelope_read_address (value.data, value.size, &pool, &reply_to, &correlation_id);
        recycle_amqp_pool (&pool);
        if (rc) {
            zsys_warning ("bridge: record is no reply address, left alone bridge=%s task=%" PRIu64,
                          self->name, id);
            continue;
        }
        char *copy = strdup (key);
        zframe_t *address = zframe_new (value.data, value.size);
        s_reply_new (self, id, &copy, &address);
        self->unwatched = true;
        self->listed++;
    }
    empty_amqp_pool (&pool);
    if (body->more && body->items.n) {
        //  a list holds 10,000 records at most: the next ones
        s_load (self, body->items.v[body->items.n - 1].key);
        if (self->list_reqid)
            return;
    }
    else {
        self->loaded = true;
        zsys_info ("bridge: tasks awaiting their reply bridge=%s tasks=%zu replies=%zu", self->name,
                   arb_idmap_size (self->tasks), self->listed);
    }
    if (self->unwatched)
        s_watch_refused (self);
}

//  Lists the records (after: the last key of the previous list, or NULL).
static void
s_load (arb_bridge_t *self, const char *after)
{
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (self->gateway), ARB_MSG_META);
    arb_msg_meta (request)->op = "list";
    arb_msg_meta (request)->key = arb_msg_strdup (request, self->prefix);
    if (after)
        arb_msg_meta (request)->after = arb_msg_strdup (request, after);
    self->list_reqid = arb_gateway_send (self->gateway, &request, s_on_listed, self);
    if (!self->list_reqid) {
        //  from the start again (the records found so far are kept)
        s_arm_tick (self);
    }
}

static void
s_on_tick (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_bridge_t *self = (arb_bridge_t *) arg;
    if (!self->loaded && !self->list_reqid && arb_gateway_is_up (self->gateway))
        s_load (self, NULL);
    if (self->unwatched)
        s_watch_refused (self);
    s_pump (self);
}

static void
s_arm_tick (arb_bridge_t *self)
{
    if (!self->tick.armed)
        arb_reactor_arm (self->reactor, &self->tick, S_TICK_MS, s_on_tick, self);
}

//  The broker session is up again: what waits for a retry after failing
//  while it was away goes now, not at the end of its backoff.
static void
s_retry_now (arb_bridge_t *self)
{
    size_t n = arb_idmap_size (self->jobs), count = 0;
    uint64_t *tags = (uint64_t *) zmalloc ((n ? n : 1) * sizeof (uint64_t));
    size_t cursor = 0;
    uint64_t tag;
    void *value;
    while (count < n && arb_idmap_next (self->jobs, &cursor, &tag, &value))
        if (((s_job_t *) value)->timer.armed)
            tags[count++] = tag;
    //  by tag: a job tried again may end (acked, refused) and others with it
    for (size_t i = 0; i < count; i++) {
        s_job_t *job = (s_job_t *) arb_idmap_lookup (self->jobs, tags[i]);
        if (!job || !job->timer.armed)
            continue;
        arb_reactor_disarm (self->reactor, &job->timer);
        job->delay_ms = S_RETRY_MIN_MS;
        s_job_again (job);
    }
    free (tags);
    for (s_reply_t *reply = (s_reply_t *) zhashx_first (self->replies); reply;
         reply = (s_reply_t *) zhashx_next (self->replies))
        if (reply->state == S_REPLY_DELETING && reply->timer.armed) {
            arb_reactor_disarm (self->reactor, &reply->timer);
            reply->delay_ms = S_RETRY_MIN_MS;
            s_delete (reply);
        }
    if (count)
        zsys_info ("bridge: broker session up, messages tried again bridge=%s messages=%zu",
                   self->name, count);
}

static void
s_on_state (void *arg, bool up)
{
    arb_bridge_t *self = (arb_bridge_t *) arg;
    if (!up)
        return;
    self->ups++;
    if (!self->loaded && !self->list_reqid)
        s_load (self, NULL);
    s_retry_now (self);
}

//  ---------------------------------------------------------------------
//  The bridge

arb_bridge_t *
arb_bridge_new (arb_gateway_t *gateway, const arb_bridge_config_t *config)
{
    arb_upstream_config_t upstream = {
        .bridge = config->name,
        .url = config->url,
        .queue = config->upstream_queue,
        .prefetch = config->prefetch,
        .reconnect_max_ms = config->reconnect_max_ms,
        .max_payload = config->max_payload,
    };
    arb_bridge_t *self = (arb_bridge_t *) zmalloc (sizeof (arb_bridge_t));
    self->upstream = arb_upstream_new (&upstream);
    if (!self->upstream) {
        free (self);
        return NULL;
    }
    self->gateway = gateway;
    self->reactor = arb_gateway_reactor (gateway);
    self->name = strdup (config->name);
    self->prefix = zsys_sprintf ("%s%s.", ARB_BRIDGE_META_PREFIX, config->name);
    self->queue = strdup (config->task.queue);
    self->task_name = strdup (config->task.name);
    self->task = config->task;
    self->task.queue = self->queue;
    self->task.name = self->task_name;
    self->task.key = NULL;
    self->task.payload = NULL;
    self->max_pending = config->max_pending;
    self->jobs = arb_idmap_new ();
    self->held = zlistx_new ();
    self->replies = zhashx_new ();
    self->tasks = arb_idmap_new ();
    self->ended = zlistx_new ();
    arb_reactor_add_sock (self->reactor, arb_upstream_sock (self->upstream), s_on_upstream, self);
    arb_gateway_listener_t listener = {.done = s_on_done, .state = s_on_state, .arg = self};
    arb_gateway_listen (gateway, &listener);
    if (arb_gateway_is_up (gateway))
        s_load (self, NULL);
    zsys_info ("bridge: started bridge=%s upstream_queue=%s queue=%s task=%s", self->name,
               config->upstream_queue, self->queue, self->task_name);
    return self;
}

void
arb_bridge_destroy (arb_bridge_t **self_p)
{
    assert (self_p);
    arb_bridge_t *self = *self_p;
    if (!self)
        return;
    arb_gateway_unlisten (self->gateway, self);
    arb_reactor_remove_sock (self->reactor, arb_upstream_sock (self->upstream));
    arb_reactor_disarm (self->reactor, &self->tick);
    if (self->list_reqid)
        arb_gateway_forget (self->gateway, self->list_reqid);
    s_drop_jobs (self);
    zlistx_t *replies = zlistx_new ();
    for (void *reply = zhashx_first (self->replies); reply; reply = zhashx_next (self->replies))
        zlistx_add_end (replies, reply);
    for (s_reply_t *reply = (s_reply_t *) zlistx_first (replies); reply;
         reply = (s_reply_t *) zlistx_next (replies))
        s_reply_destroy (&reply);
    zlistx_destroy (&replies);
    arb_upstream_destroy (&self->upstream);
    arb_idmap_destroy (&self->jobs);
    zhashx_destroy (&self->replies);
    arb_idmap_destroy (&self->tasks);
    zlistx_destroy (&self->held);
    zlistx_destroy (&self->ended);
    free (self->name);
    free (self->prefix);
    free (self->queue);
    free (self->task_name);
    free (self);
    *self_p = NULL;
}

bool
arb_bridge_is_up (arb_bridge_t *self)
{
    return self->gen != 0;
}
