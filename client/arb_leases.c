/*  arb_leases.c — the tasks a session holds (see arb_leases.h).

    Each task is one record in `tasks` (by id). A settled record of an
    unclaimed task also sits in `outbox`, in the order it was settled, so
    that a RESULT takes the oldest outcomes first and never walks the
    whole table; once sent, it sits in `sent` (oldest first) until the
    broker acknowledges it, or it is due again. A claimed record is in
    neither: its lease is one the broker may no longer know until the
    WELCOME says. Forgotten records wait in `spare` for the next tasks
    (arb_spare.h): a consumer adds and forgets one a task.
*/

#include "arb_leases.h"
#include "arb_chain.h"
#include "arb_idmap.h"
#include "arb_spare.h"

#define ARB_LEASES_TAG  0x0c1e0003u  //  a live arb_leases_t
#define ARB_LEASES_DEAD 0xdeadc1e3u  //  written on destroy, to catch use after it

//  Forgotten records kept, at most: a credit's worth and more.
#define S_SPARE_TASKS ARB_SPARES (1024)

typedef struct {
    uint64_t id;
    uint64_t lease;  //  current lease: the dispatch's, or the one a WELCOME gave back
    uint32_t sub;    //  subscription it came on; 0 for a TAKE
    bool claimed;    //  listed in the REGISTER awaiting its WELCOME
    bool settled;
    bool routed;  //  EMIT items went out under the lease: never claimed
    arb_outcome_t outcome;
    char *error;            //  owned, or NULL
    zframe_t *result;       //  owned, or NULL
    arb_chain_link_t node;  //  in the outbox (queued), the sent list (sent), spare, or none
    bool queued, sent;
    uint32_t sent_reqid;  //  the RESULT that carried it last
    int64_t sent_ms;      //  monotonic ms it went
} s_task_t;

struct _arb_leases_t {
    uint32_t tag;        //  ARB_LEASES_TAG
    arb_idmap_t *tasks;  //  owned: id -> owned s_task_t
    arb_chain_t outbox;  //  s_task_t settled, unclaimed, oldest first
    arb_chain_t sent;    //  s_task_t sent, not acknowledged, oldest first
    arb_chain_t spare;   //  owned: forgotten records, emptied, for the next tasks
    size_t bytes;        //  result bytes held
};

//  The first task of a list, and the one after task, or NULL.
static s_task_t *
s_first (const arb_chain_t *list)
{
    return ARB_CHAIN_ITEM (arb_chain_first (list), s_task_t, node);
}

static s_task_t *
s_next (const arb_chain_t *list, const s_task_t *task)
{
    return ARB_CHAIN_ITEM (arb_chain_next (list, &task->node), s_task_t, node);
}

arb_leases_t *
arb_leases_new (void)
{
    arb_leases_t *self = (arb_leases_t *) zmalloc (sizeof (arb_leases_t));
    self->tag = ARB_LEASES_TAG;
    self->tasks = arb_idmap_new ();
    arb_chain_init (&self->outbox);
    arb_chain_init (&self->sent);
    arb_chain_init (&self->spare);
    return self;
}

static void
s_task_destroy (s_task_t **task_p)
{
    s_task_t *task = *task_p;
    if (!task)
        return;
    free (task->error);
    zframe_destroy (&task->result);
    free (task);
    *task_p = NULL;
}

void
arb_leases_destroy (arb_leases_t **self_p)
{
    assert (self_p);
    arb_leases_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_LEASES_TAG);
    size_t cursor = 0;
    uint64_t id;
    void *value;
    s_task_t *task;
    while (arb_idmap_next (self->tasks, &cursor, &id, &value)) {
        task = (s_task_t *) value;
        s_task_destroy (&task);
    }
    ARB_SPARE_FREE (&self->spare, s_task_t, node);
    arb_idmap_destroy (&self->tasks);
    self->tag = ARB_LEASES_DEAD;
    free (self);
    *self_p = NULL;
}

//  Takes a task out of the outbox and the sent list.
static void
s_unlist (arb_leases_t *self, s_task_t *task)
{
    if (task->queued)
        arb_chain_remove (&self->outbox, &task->node);
    if (task->sent)
        arb_chain_remove (&self->sent, &task->node);
    task->queued = task->sent = false;
}

//  Forgets a task: out of the table and the lists, its outcome freed, and
//  its record kept for the next task (or freed).
static void
s_forget (arb_leases_t *self, s_task_t **task_p)
{
    s_task_t *task = *task_p;
    s_unlist (self, task);
    if (task->result)
        self->bytes -= zframe_size (task->result);
    arb_idmap_remove (self->tasks, task->id);
    free (task->error);
    task->error = NULL;
    zframe_destroy (&task->result);
    ARB_SPARE_KEEP (&self->spare, task, node, S_SPARE_TASKS);
    *task_p = NULL;
}

int
arb_leases_add (arb_leases_t *self, uint64_t id, uint64_t lease, uint32_t sub)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *held = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (held && held->settled && !held->claimed && held->lease != lease)
        s_forget (self, &held);  //  the broker is done with the lease it had
    if (held || arb_idmap_size (self->tasks) >= ARB_LEASES_MAX)
        return -1;
    s_task_t *task = ARB_SPARE_TAKE (&self->spare, s_task_t, node);
    task->id = id;
    task->lease = lease;
    task->sub = sub;
    arb_idmap_insert (self->tasks, id, task);
    return 0;
}

size_t
arb_leases_size (arb_leases_t *self)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    return arb_idmap_size (self->tasks);
}

bool
arb_leases_is_open (arb_leases_t *self, uint64_t id)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    return task && !task->settled;
}

//  A settled task's outcome waits in the outbox, unless the task is
//  claimed: then it waits for the WELCOME.
static void
s_queue (arb_leases_t *self, s_task_t *task)
{
    if (!task->claimed && !task->queued) {
        assert (!task->sent);
        arb_chain_add_end (&self->outbox, &task->node);
        task->queued = true;
    }
}

int
arb_leases_settle (
    arb_leases_t *self, uint64_t id, arb_outcome_t outcome, const char *error, zframe_t **result_p)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    zframe_t *result = result_p ? *result_p : NULL;
    if (result_p)
        *result_p = NULL;
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (!task || task->settled) {
        zframe_destroy (&result);
        return -1;
    }
    task->settled = true;
    task->outcome = outcome;
    if (outcome == ARB_OUTCOME_OK && result) {
        task->result = result;
        self->bytes += zframe_size (result);
    }
    else
        zframe_destroy (&result);
    if (outcome == ARB_OUTCOME_FAIL) {
        if (!error || !*error)
            error = "failed";
        task->error = (char *) zmalloc (ARB_TEXT_MAX + 1);
        arb_text_copy (task->error, error, strlen (error));
    }
    s_queue (self, task);
    return 0;
}

int
arb_leases_release (arb_leases_t *self, uint64_t id, uint64_t lease)
{
    if (arb_leases_add (self, id, lease, 0))
        return -1;
    return arb_leases_settle (self, id, ARB_OUTCOME_RELEASE, NULL, NULL);
}

bool
arb_leases_drop (arb_leases_t *self, uint64_t id, uint64_t lease)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (!task || task->lease != lease)
        return false;
    s_forget (self, &task);
    return true;
}

bool
arb_leases_forget (arb_leases_t *self, uint64_t id)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (!task)
        return false;
    s_forget (self, &task);
    return true;
}

void
arb_leases_set_routed (arb_leases_t *self, uint64_t id)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, id);
    if (task)
        task->routed = true;
}

bool
arb_leases_has_results (arb_leases_t *self)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    return self->outbox.size > 0;
}

arb_msg_t *
arb_leases_results (arb_leases_t *self, uint32_t reqid, int64_t now_ms)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    if (self->outbox.size == 0)
        return NULL;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_RESULT, reqid);
    arb_result_body_t *body = arb_msg_result (msg);
    size_t bytes = 0;
    s_task_t *task;
    while (body->results.n < ARB_LEASES_RESULT_ITEMS && bytes < ARB_LEASES_RESULT_BYTES
           && (task = s_first (&self->outbox))) {
        arb_result_item_t *item =
            (arb_result_item_t *) arb_msg_grow (msg, &body->results, sizeof (*item), 1);
        item->id = task->id;
        item->lease = task->lease;
        item->outcome = task->outcome;
        item->error = task->error ? arb_msg_strdup (msg, task->error) : NULL;
        item->routed = task->routed;
        //  a copy: the result stays until the broker says it has it
        item->result = task->result ? zframe_dup (task->result) : NULL;
        bytes += item->result ? zframe_size (item->result) : 0;
        arb_chain_remove (&self->outbox, &task->node);
        task->queued = false;
        arb_chain_add_end (&self->sent, &task->node);
        task->sent = true;
        task->sent_reqid = reqid;
        task->sent_ms = now_ms;
    }
    return msg;
}

size_t
arb_leases_acked (arb_leases_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    //  The outcomes of one RESULT joined the sent list together, and one
    //  sent again leaves it first: they are one run, which answers in the
    //  order the RESULTs went find at the head.
    size_t count = 0;
    s_task_t *task = s_first (&self->sent);
    while (task && task->sent_reqid != reqid)
        task = s_next (&self->sent, task);
    while (task && task->sent_reqid == reqid) {
        s_task_t *next = s_next (&self->sent, task);
        s_forget (self, &task);
        count++;
        task = next;
    }
    return count;
}

size_t
arb_leases_resend (arb_leases_t *self, int64_t now_ms, int64_t after_ms)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    size_t count = 0;
    s_task_t *task;
    while ((task = s_first (&self->sent)) && task->sent_ms + after_ms <= now_ms) {
        arb_chain_remove (&self->sent, &task->node);
        task->sent = false;
        arb_chain_add_end (&self->outbox, &task->node);
        task->queued = true;
        count++;
    }
    return count;
}

int64_t
arb_leases_resend_at (arb_leases_t *self, int64_t after_ms)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    s_task_t *task = s_first (&self->sent);
    return task ? task->sent_ms + after_ms : INT64_MAX;
}

size_t
arb_leases_bytes (arb_leases_t *self)
{
    assert (self && self->tag == ARB_LEASES_TAG);
    return self->bytes;
}

void
arb_leases_claim (arb_leases_t *self, arb_msg_t *reg)
{
    assert (self && self->tag == ARB_LEASES_TAG && reg);
    arb_register_body_t *body = arb_msg_register (reg);
    size_t count = arb_idmap_size (self->tasks);
    if (count == 0)
        return;
    //  routed ones are forgotten after the walk (the map must not change
    //  during it)
    uint64_t *routed = (uint64_t *) zmalloc (count * sizeof (uint64_t));
    size_t routed_count = 0;
    arb_held_t *held = (arb_held_t *) arb_msg_grow (reg, &body->held, sizeof (arb_held_t), count);
    size_t claimed = 0, cursor = 0;
    uint64_t id;
    void *value;
    while (arb_idmap_next (self->tasks, &cursor, &id, &value)) {
        s_task_t *task = (s_task_t *) value;
        if (task->routed) {
            routed[routed_count++] = id;
            continue;
        }
        task->claimed = true;
        //  its lease may be gone: the outcome waits for the WELCOME, and
        //  one sent and not acknowledged goes again after it
        s_unlist (self, task);
        held[claimed++] = (arb_held_t){.id = task->id, .lease = task->lease};
    }
    body->held.n -= count - claimed;
    for (size_t i = 0; i < routed_count; i++)
        arb_leases_forget (self, routed[i]);
    free (routed);
}

void
arb_leases_adopt (arb_leases_t *self,
                  arb_welcome_body_t *welcome,
                  arb_leases_lost_fn *lost,
                  void *arg)
{
    assert (self && self->tag == ARB_LEASES_TAG && welcome);
    for (size_t i = 0; i < welcome->adopted.n; i++) {
        arb_held_t *item = &welcome->adopted.v[i];
        s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, item->id);
        if (!task) {
            //  ended here meanwhile (a STOP of the old lease): back to its
            //  queue, to run again
            arb_leases_release (self, item->id, item->lease);
            continue;
        }
        if (!task->claimed)
            continue;
        task->claimed = false;
        task->lease = item->lease;
        if (task->settled)
            s_queue (self, task);
    }
    //  the rest the broker gave to someone else, or ended: all forgotten
    //  before the holder hears of any, so that it finds the table settled
    size_t count = 0, cursor = 0;
    uint64_t *gone = (uint64_t *) zmalloc ((arb_idmap_size (self->tasks) + 1) * sizeof (uint64_t));
    uint64_t id;
    void *value;
    while (arb_idmap_next (self->tasks, &cursor, &id, &value))
        if (((s_task_t *) value)->claimed)
            gone[count++] = id;
    for (size_t i = 0; i < count; i++) {
        s_task_t *task = (s_task_t *) arb_idmap_lookup (self->tasks, gone[i]);
        s_forget (self, &task);
    }
    for (size_t i = 0; lost && i < count; i++)
        lost (arg, gone[i]);
    free (gone);
}
