/*  arb_watchlist.c — watched tasks and the keep-alive of their watches
    (see arb_watchlist.h).

    Exactly-once reports. `watched` holds the ids whose end has not been
    reported yet; a DONE record is kept only if its id leaves that set, so
    the duplicates a re-WATCH causes are dropped on arrival. Records that
    may belong to a pending SUBMIT with watch wait in `limbo` (a DONE of
    our own, whose strings live in its arena) until that submit's reply
    comes, or until no such submit is pending any more.

    Keep-alive. While `watched` is not empty, every interval (tick): a
    PING, whose PONG shows whether the broker restarted (a new epoch: WATCH
    everything again); and if nothing but answers to the owner's own
    requests arrived for a whole interval, a WATCH of everything (a probe),
    whose time the owner may use to decide the broker is unreachable.
*/

#include "arb_watchlist.h"
#include "arb_idset.h"

#include <inttypes.h>

#define ARB_WATCHLIST_TAG  0x0c1e0002u  //  a live arb_watchlist_t
#define ARB_WATCHLIST_DEAD 0xdeadc1e2u  //  written on destroy, to catch use after it

struct _arb_watchlist_t {
    uint32_t tag;  //  ARB_WATCHLIST_TAG
    arb_watchlist_send_fn *send;
    arb_watchlist_report_fn *report;
    void *arg;                   //  borrowed: given to send and report
    int interval_ms;             //  keep-alive interval
    arb_idset_t *watched;        //  owned: task ids watched and not reported yet
    arb_idset_t *watch_submits;  //  owned: request ids of SUBMIT with watch awaiting SUBMITTED
    arb_msg_t *limbo;            //  owned DONE, or NULL: reports awaiting a pending SUBMITTED
    bool refile;                 //  settle must run the limbo through the filter again
    bool epoch_known;
    uint64_t epoch;     //  broker boot count, from the last PONG or WELCOME
    int64_t last_news;  //  ms: last message that was not an answer to the owner's request
    int64_t tick_at;    //  ms: next keep-alive
    int64_t ping_at;    //  ms: our unanswered PING went out; 0 none
    int64_t probe_at;   //  ms: an unanswered re-WATCH went out in silence; 0 none
};

arb_watchlist_t *
arb_watchlist_new (arb_watchlist_send_fn *send, arb_watchlist_report_fn *report, void *arg)
{
    assert (send && report);
    arb_watchlist_t *self = (arb_watchlist_t *) zmalloc (sizeof (arb_watchlist_t));
    self->tag = ARB_WATCHLIST_TAG;
    self->send = send;
    self->report = report;
    self->arg = arg;
    self->interval_ms = ARB_WATCHLIST_INTERVAL_MS;
    self->watched = arb_idset_new ();
    self->watch_submits = arb_idset_new ();
    self->last_news = zclock_mono ();
    return self;
}

void
arb_watchlist_destroy (arb_watchlist_t **self_p)
{
    assert (self_p);
    arb_watchlist_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_WATCHLIST_TAG);
    arb_idset_destroy (&self->watched);
    arb_idset_destroy (&self->watch_submits);
    arb_msg_destroy (&self->limbo);
    self->tag = ARB_WATCHLIST_DEAD;
    free (self);
    *self_p = NULL;
}

void
arb_watchlist_set_interval (arb_watchlist_t *self, int interval_ms)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG && interval_ms > 0);
    self->interval_ms = interval_ms;
    self->tick_at = zclock_mono () + interval_ms;
}

size_t
arb_watchlist_size (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    return arb_idset_size (self->watched);
}

bool
arb_watchlist_is_outstanding (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    return arb_idset_size (self->watched) > 0 || arb_idset_size (self->watch_submits) > 0;
}

//  ---------------------------------------------------------------------
//  What we send.

static void
s_watch_id (arb_watchlist_t *self, uint64_t id)
{
    if (arb_idset_size (self->watched) == 0) {
        //  the first outstanding watch starts the keep-alive clock
        int64_t now = zclock_mono ();
        self->tick_at = now + self->interval_ms;
        self->last_news = now;
    }
    arb_idset_insert (self->watched, id);
}

static void
s_send_ping (arb_watchlist_t *self, int64_t now)
{
    arb_msg_t *ping = arb_msg_new (ARB_MSG_PING, 0);
    if (self->send (self->arg, &ping) == 0)
        self->ping_at = now;
}

void
arb_watchlist_rewatch (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    //  in messages of at most ARB_IDS_MAX ids
    size_t left = arb_idset_size (self->watched);
    size_t cursor = 0;
    while (left > 0) {
        size_t n = left < ARB_IDS_MAX ? left : ARB_IDS_MAX;
        arb_msg_t *watch = arb_msg_new (ARB_MSG_WATCH, 0);
        arb_watch_body_t *body = arb_msg_watch (watch);
        body->ids.v = (uint64_t *) arb_msg_alloc (watch, n * sizeof (uint64_t));
        while (body->ids.n < n
               && arb_idset_next (self->watched, &cursor, &body->ids.v[body->ids.n]))
            body->ids.n++;
        left -= n;
        if (self->send (self->arg, &watch) != 0)
            break;  //  the next keep-alive tries again
    }
}

bool
arb_watchlist_track (arb_watchlist_t *self, arb_msg_t *request)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG && request);
    arb_msg_type_t type = arb_msg_type (request);
    bool watches = false;
    if (type == ARB_MSG_SUBMIT && arb_msg_submit (request)->watch) {
        arb_idset_insert (self->watch_submits, arb_msg_reqid (request));
        watches = true;
    }
    else if (type == ARB_MSG_WATCH) {
        arb_ids_t *ids = &arb_msg_watch (request)->ids;
        for (size_t i = 0; i < ids->n; i++)
            s_watch_id (self, ids->v[i]);
        watches = true;
    }
    //  Learn the broker's epoch as soon as there are watches, so that a
    //  restart later shows as a change.
    if (watches && !self->epoch_known && !self->ping_at)
        s_send_ping (self, zclock_mono ());
    return watches;
}

int64_t
arb_watchlist_tick_at (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    return arb_idset_size (self->watched) > 0 ? self->tick_at : INT64_MAX;
}

void
arb_watchlist_tick (arb_watchlist_t *self, int64_t now, int timeout_ms)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    if (arb_idset_size (self->watched) == 0 || now < self->tick_at)
        return;
    self->tick_at = now + self->interval_ms;
    if (!self->ping_at || now - self->ping_at >= timeout_ms)
        s_send_ping (self, now);
    if (now - self->last_news >= self->interval_ms && !self->probe_at) {
        arb_watchlist_rewatch (self);
        self->probe_at = now;
    }
}

int64_t
arb_watchlist_probe_at (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    return self->probe_at;
}

void
arb_watchlist_forget_probe (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    self->probe_at = 0;
}

//  ---------------------------------------------------------------------
//  What we receive.

//  Moves one report into the limbo DONE (its strings into the limbo's arena).
static void
s_limbo_add (arb_watchlist_t *self, arb_done_task_t *task)
{
    if (!self->limbo)
        self->limbo = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_body_t *body = arb_msg_done (self->limbo);
    arb_done_task_t *copy =
        (arb_done_task_t *) arb_msg_grow (self->limbo, &body->tasks, sizeof (arb_done_task_t), 1);
    copy->id = task->id;
    copy->state = task->state;
    copy->attempts = task->attempts;
    copy->error = arb_msg_strdup (self->limbo, task->error);
    copy->result = task->result;
    task->result = NULL;
}

//  Keeps the reports of ids we watch (and forgets the ids), parks reports
//  that a pending SUBMITTED may claim, drops duplicates; reports the DONE
//  if anything is left of it.
static void
s_on_done (arb_watchlist_t *self, arb_msg_t **msg_p)
{
    arb_done_body_t *body = arb_msg_done (*msg_p);
    size_t keep = 0;
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_done_task_t *task = &body->tasks.v[i];
        if (arb_idset_remove (self->watched, task->id))
            body->tasks.v[keep++] = *task;  //  records past `keep` are never read again
        else if (arb_idset_size (self->watch_submits) > 0)
            s_limbo_add (self, task);
        else
            zframe_destroy (&task->result);
    }
    body->tasks.n = keep;
    if (keep > 0)
        self->report (self->arg, msg_p);
    arb_msg_destroy (msg_p);
}

//  Runs the limbo through the filter again, after the set of watched ids
//  or of pending submits changed.
static void
s_refile_limbo (arb_watchlist_t *self)
{
    self->refile = false;
    arb_msg_t *limbo = self->limbo;
    self->limbo = NULL;
    if (limbo)
        s_on_done (self, &limbo);
}

void
arb_watchlist_untrack (arb_watchlist_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    if (arb_idset_remove (self->watch_submits, reqid))
        s_refile_limbo (self);
}

static void
s_on_submitted (arb_watchlist_t *self, arb_msg_t *msg)
{
    if (!arb_idset_remove (self->watch_submits, arb_msg_reqid (msg)))
        return;
    arb_submitted_body_t *body = arb_msg_submitted (msg);
    for (size_t i = 0; i < body->tasks.n; i++)
        s_watch_id (self, body->tasks.v[i].id);
    self->refile = true;
}

//  Ids the broker does not know will never be reported by it: report them
//  ourselves (state ARB_DONE_UNKNOWN), once, if we were watching them.
static void
s_on_watching (arb_watchlist_t *self, arb_msg_t *msg)
{
    arb_ids_t *unknown = &arb_msg_watching (msg)->unknown;
    arb_msg_t *done = NULL;
    for (size_t i = 0; i < unknown->n; i++) {
        if (!arb_idset_remove (self->watched, unknown->v[i]))
            continue;
        if (!done)
            done = arb_msg_new (ARB_MSG_DONE, 0);
        arb_done_body_t *body = arb_msg_done (done);
        arb_done_task_t *task =
            (arb_done_task_t *) arb_msg_grow (done, &body->tasks, sizeof (arb_done_task_t), 1);
        task->id = unknown->v[i];
        task->state = ARB_DONE_UNKNOWN;
        task->error = "no such task";
    }
    if (done)
        self->report (self->arg, &done);
    arb_msg_destroy (&done);
}

//  The broker's boot count: a new one means it restarted and forgot every
//  watch.
static void
s_on_epoch (arb_watchlist_t *self, uint64_t epoch, const char *from)
{
    if (self->epoch_known && epoch != self->epoch && arb_idset_size (self->watched) > 0) {
        zsys_info ("watchlist: broker restarted epoch=%" PRIu64 " seen_in=%s watched=%zu", epoch,
                   from, arb_idset_size (self->watched));
        arb_watchlist_rewatch (self);
    }
    self->epoch = epoch;
    self->epoch_known = true;
}

void
arb_watchlist_learn (arb_watchlist_t *self, arb_msg_t **msg_p, bool ours)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    self->probe_at = 0;
    arb_msg_t *msg = msg_p ? *msg_p : NULL;
    if (!msg)
        return;
    if (!ours)
        self->last_news = zclock_mono ();
    switch (arb_msg_type (msg)) {
        case ARB_MSG_DONE:
            s_on_done (self, msg_p);
            break;
        case ARB_MSG_PONG:
            if (ours)
                self->ping_at = 0;
            s_on_epoch (self, arb_msg_pong (msg)->epoch, "PONG");
            break;
        case ARB_MSG_WELCOME:
            s_on_epoch (self, arb_msg_welcome (msg)->epoch, "WELCOME");
            break;
        case ARB_MSG_SUBMITTED:
            s_on_submitted (self, msg);
            break;
        case ARB_MSG_WATCHING:
            s_on_watching (self, msg);
            break;
        case ARB_MSG_ERROR:
            //  a refused SUBMIT names no ids to watch
            if (arb_idset_remove (self->watch_submits, arb_msg_reqid (msg)))
                self->refile = true;
            break;
        default:
            break;
    }
}

void
arb_watchlist_settle (arb_watchlist_t *self)
{
    assert (self && self->tag == ARB_WATCHLIST_TAG);
    if (self->refile)
        s_refile_limbo (self);
}
