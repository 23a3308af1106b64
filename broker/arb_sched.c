/*  arb_sched.c — the scheduler: queues, tasks, sessions and timers; see
    arb_sched.h. Leases and dispatch are in arb_sched_dispatch.c. */

#include "arb_bytes.h"
#include "arb_sched_priv.h"
#include "arb_spare.h"

#include <malloc.h>

//  Freed task records kept for the next tasks, at most (arb_spare.h): a
//  task record is made and freed for every task, and the allocator's round
//  trip for it was a few percent of P2's loop.
#define S_SPARE_TASKS ARB_SPARES (4096)

//  A task name, kept once however many tasks bear it.
typedef struct {
    size_t refs;  //  tasks that bear it
    char name[];
} s_interned_t;


static size_t *
s_timer_slot (void *task)
{
    return &((arb_task_t *) task)->timer_slot;
}

static bool
s_timer_before (const void *a, const void *b, void *arg)
{
    (void) arg;
    const arb_task_t *x = (const arb_task_t *) a, *y = (const arb_task_t *) b;
    return x->timer_ms < y->timer_ms || (x->timer_ms == y->timer_ms && x->id < y->id);
}

//  A cached payload: one block, the payload then the headers.
typedef struct {
    uint32_t payload_size;  //  bytes
    uint32_t headers_size;  //  bytes; 0: none
    uint8_t data[];
} s_cached_t;

//  Bytes a block costs: what the allocator gave, plus its own header.
static size_t
s_cache_held (void *block)
{
    return malloc_usable_size (block) + sizeof (size_t);
}

static void
s_cache_drop (arb_sched_t *self, arb_task_t *task)
{
    if (!task->cache)
        return;
    size_t held = s_cache_held (task->cache);
    assert (self->cache_used >= held);
    self->cache_used -= held;
    free (task->cache);
    task->cache = NULL;
}

arb_sched_t *
arb_sched_new (const arb_sched_config_t *config, const arb_sched_hooks_t *hooks)
{
    arb_sched_t *self = (arb_sched_t *) zmalloc (sizeof (arb_sched_t));
    self->turn = 1;  //  a task loaded from the journal counts as of turn 0: committed
    self->config = *config;
    self->hooks = *hooks;
    self->queues = zhashx_new ();
    self->sessions = zhashx_new ();
    self->names = zhashx_new ();
    self->interned = zhashx_new ();
    zhashx_set_key_duplicator (self->interned, NULL);
    zhashx_set_key_destructor (self->interned, NULL);
    zhashx_set_destructor (self->interned, NULL);
    self->timers = arb_heap_new (s_timer_before, s_timer_slot, NULL);
    if (!self->config.hot_max)
        self->config.hot_max = ARB_HOT_MAX;
    return self;
}

//  The one copy of a task name, for one more task.
static const char *
s_intern (arb_sched_t *self, const char *name)
{
    s_interned_t *entry = (s_interned_t *) self->last_name;
    if (!entry || strcmp (entry->name, name) != 0)
        entry = (s_interned_t *) zhashx_lookup (self->interned, name);
    if (!entry) {
        size_t size = strlen (name) + 1;
        entry = (s_interned_t *) malloc (sizeof (s_interned_t) + size);
        assert (entry);
        entry->refs = 0;
        memcpy (entry->name, name, size);
        zhashx_insert (self->interned, entry->name, entry);
    }
    entry->refs++;
    self->last_name = entry;
    return entry->name;
}

//  A task no longer bears its name (one s_intern gave): the last one
//  frees it.
static void
s_unintern (arb_sched_t *self, const char *name)
{
    s_interned_t *entry = (s_interned_t *) (name - offsetof (s_interned_t, name));
    assert (entry->refs > 0);
    if (--entry->refs == 0) {
        if (self->last_name == entry)
            self->last_name = NULL;
        zhashx_delete (self->interned, entry->name);
        free (entry);
    }
}

static void
s_task_free (arb_sched_t *self, arb_task_t **task_p)
{
    arb_task_t *task = *task_p;
    s_cache_drop (self, task);
    arb_task_free_ext (task);
    s_unintern (self, task->name);
    if (self->spare_count + 1 <= S_SPARE_TASKS) {
        task->queue_next = self->spare;
        self->spare = task;
        self->spare_count++;
    }
    else
        free (task);
    *task_p = NULL;
}

void
arb_sched_destroy (arb_sched_t **self_p)
{
    assert (self_p);
    arb_sched_t *self = *self_p;
    if (!self)
        return;
    //  heaps first: they write into the tasks they hold
    arb_heap_destroy (&self->timers);
    arb_queue_t *queue = (arb_queue_t *) zhashx_first (self->queues);
    while (queue) {
        arb_queue_destroy (&queue);
        queue = (arb_queue_t *) zhashx_next (self->queues);
    }
    zhashx_destroy (&self->queues);
    arb_session_t *session = (arb_session_t *) zhashx_first (self->sessions);
    while (session) {
        //  leases die with the scheduler: unlink them so the session may go
        while (arb_session_first_lease (session))
            arb_session_remove_lease (session, arb_session_first_lease (session));
        arb_session_destroy (&session);
        session = (arb_session_t *) zhashx_next (self->sessions);
    }
    zhashx_destroy (&self->sessions);
    arb_sched_name_t *entry = (arb_sched_name_t *) zhashx_first (self->names);
    while (entry) {
        zlistx_destroy (&entry->parked);
        free (entry->name);
        free (entry);
        entry = (arb_sched_name_t *) zhashx_next (self->names);
    }
    zhashx_destroy (&self->names);
    for (arb_task_t *task = arb_taskmap_first (&self->tasks); task;
         task = arb_taskmap_next (&self->tasks))
        s_task_free (self, &task);
    arb_taskmap_free (&self->tasks);
    while (self->spare) {
        arb_task_t *next = self->spare->queue_next;
        free (self->spare);
        self->spare = next;
    }
    //  every task gave its name back, but for one made and never added
    for (void *name = zhashx_first (self->interned); name; name = zhashx_next (self->interned))
        free (name);
    zhashx_destroy (&self->interned);
    free (self->dirty);
    free (self->wakes);
    arb_vec_free (&self->fresh);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Queues

//  A queue's warm callback: the next half of hot_max cold tasks.
static void
s_warm_queue (void *arg, arb_queue_t *queue)
{
    arb_sched_t *self = (arb_sched_t *) arg;
    int32_t priority;
    uint64_t id;
    arb_queue_cold_from (queue, &priority, &id);
    size_t max = self->config.hot_max > 1 ? self->config.hot_max / 2 : 1;
    self->hooks.warm (self->hooks.arg, queue, priority, id, max);
}

arb_queue_t *
arb_sched_queue (arb_sched_t *self, const char *name)
{
    arb_queue_t *queue = self->last_queue;
    if (queue && strcmp (arb_queue_name (queue), name) == 0)
        return queue;
    queue = (arb_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue) {
        queue = arb_queue_new (name, self->config.aging_ms);
        if (self->hooks.warm && self->hooks.thaw)
            arb_queue_set_warm (queue, s_warm_queue, self,
                                self->config.hot_max > 1 ? self->config.hot_max / 2 : 1);
        zhashx_insert (self->queues, name, queue);
    }
    self->last_queue = queue;
    return queue;
}

arb_queue_t *
arb_sched_find_queue (arb_sched_t *self, const char *name)
{
    return (arb_queue_t *) zhashx_lookup (self->queues, name);
}

zhashx_t *
arb_sched_queues (arb_sched_t *self)
{
    return self->queues;
}

//  Marks a queue for the next dispatch pass, if it could dispatch.
void
arb_sched_mark_dirty (arb_sched_t *self, arb_queue_t *queue)
{
    if (arb_queue_dirty (queue) || arb_queue_size (queue) == 0
        || arb_queue_consumer_count (queue) == 0)
        return;
    self->dirty = (arb_queue_t **) arb_array_grow (self->dirty, self->dirty_count,
                                                   &self->dirty_capacity, sizeof (arb_queue_t *));
    self->dirty[self->dirty_count++] = queue;
    arb_queue_set_dirty (queue, true);
}

void
arb_sched_touch_queue (arb_sched_t *self, arb_queue_t *queue)
{
    arb_sched_loosened (self);
    arb_sched_mark_dirty (self, queue);
}

void
arb_sched_loosened (arb_sched_t *self)
{
    self->loosened = self->turn;
}

void
arb_sched_forget_queue (arb_sched_t *self, arb_queue_t *queue)
{
    if (!arb_queue_is_idle (queue))
        return;
    arb_sched_drop_wakes (self, queue, NULL);
    if (self->last_queue == queue)
        self->last_queue = NULL;
    zhashx_delete (self->queues, arb_queue_name (queue));
    arb_queue_destroy (&queue);
}

void
arb_sched_clear_queue (arb_sched_t *self, arb_queue_t *queue)
{
    assert (!arb_queue_first_task (queue));
    *arb_queue_settings (queue) = (arb_queue_settings_t){0};
    *arb_queue_limit (queue) = (arb_limit_t){0};
    memset (arb_queue_counts (queue), 0, (ARB_STATE_MAX + 1) * sizeof (uint64_t));
    *arb_queue_ready_bytes (queue) = 0;
    arb_sched_forget_queue (self, queue);
}

static int
s_compare_ptr (const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *) a, y = (uintptr_t) * (void *const *) b;
    return x < y ? -1 : x > y;
}

size_t
arb_sched_consumers (arb_sched_t *self, arb_queue_t *queue)
{
    (void) self;
    //  a session may hold many subscriptions on one queue (the gateway
    //  holds one per consumer of its own): count each session once. A
    //  consumer counts busy or idle (its credit spent or not), as
    //  RabbitMQ's consumer count does: a queue whose workers are all busy
    //  has consumers.
    size_t count = arb_queue_consumer_count (queue), distinct = 0;
    void **sessions = (void **) malloc ((count + 1) * sizeof (void *));
    assert (sessions);
    for (size_t i = 0; i < count; i++)
        sessions[i] = ((arb_sub_t *) arb_queue_consumer_at (queue, i))->session;
    qsort (sessions, count, sizeof (void *), s_compare_ptr);
    for (size_t i = 0; i < count; i++)
        distinct += i == 0 || sessions[i] != sessions[i - 1];
    free (sessions);
    return distinct;
}


arb_limit_t *
arb_sched_name_limit (arb_sched_t *self, const char *name)
{
    arb_sched_name_t *entry = (arb_sched_name_t *) zhashx_lookup (self->names, name);
    if (entry)
        return &entry->limit;
    entry = (arb_sched_name_t *) zmalloc (sizeof (arb_sched_name_t));
    entry->name = strdup (name);
    entry->parked = zlistx_new ();
    //  the running count starts from the leases held now
    zhashx_t *sessions = self->sessions;
    for (arb_session_t *session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions))
        for (arb_task_t *task = arb_session_first_lease (session); task;
             task = arb_task_ext (task)->lease_next)
            if (streq (task->name, name))
                entry->limit.running++;
    zhashx_insert (self->names, name, entry);
    return &entry->limit;
}

void
arb_sched_touch_name (arb_sched_t *self, const char *name)
{
    arb_sched_name_t *entry = (arb_sched_name_t *) zhashx_lookup (self->names, name);
    if (!entry)
        return;
    arb_sched_loosened (self);
    arb_sched_unpark (self, entry);
    if (!arb_limit_is_set (&entry->limit)) {
        arb_sched_drop_wakes (self, NULL, entry);
        zlistx_destroy (&entry->parked);
        free (entry->name);
        zhashx_delete (self->names, name);
        free (entry);
    }
}

zhashx_t *
arb_sched_limited_names (arb_sched_t *self)
{
    return self->names;
}

const char *
arb_sched_limited_name (void *entry)
{
    return ((arb_sched_name_t *) entry)->name;
}

const arb_limit_t *
arb_sched_limited_limit (void *entry)
{
    return &((arb_sched_name_t *) entry)->limit;
}

//  ---------------------------------------------------------------------
//  Tasks

arb_task_t *
arb_sched_new_task (arb_sched_t *self, const char *queue, const char *name)
{
    arb_task_t *task = self->spare;
    if (task) {
        self->spare = task->queue_next;
        self->spare_count--;
        memset (task, 0, sizeof (*task));
    }
    else
        task = (arb_task_t *) zmalloc (sizeof (arb_task_t));
    task->queue = arb_sched_queue (self, queue);
    task->name = s_intern (self, name);
    task->ready_slot = ARB_HEAP_NONE;
    task->timer_slot = ARB_HEAP_NONE;
    task->max_attempts = 1;
    task->jitter = true;
    return task;
}

arb_task_t *
arb_sched_task_from_row (arb_sched_t *self,
                         const arb_task_t *row,
                         const char *queue,
                         const char *name)
{
    arb_task_t *task = arb_sched_new_task (self, queue, name);
    arb_queue_t *owned_queue = task->queue;
    const char *owned_name = task->name;
    *task = *row;
    task->queue = owned_queue;
    task->name = owned_name;
    task->cache = NULL;
    if (row->ext) {
        //  a copy of what the row read: the row keeps (and frees) its own
        assert (!row->ext->emits);
        task->ext = NULL;
        *arb_task_ext_rw (task) = *row->ext;
    }
    task->ready_slot = ARB_HEAP_NONE;
    task->timer_slot = ARB_HEAP_NONE;
    return task;
}

void
arb_sched_discard_task (arb_sched_t *self, arb_task_t **task_p)
{
    if (*task_p)
        s_task_free (self, task_p);
}

//  Tasks of queue of size payload bytes join (sign 1) or leave (-1) the
//  ready ones (never below 0: a row changed under the broker
//  may read back another size than it went cold with).
static void
s_count_bytes (arb_queue_t *queue, uint64_t size, int sign)
{
    uint64_t *bytes = arb_queue_ready_bytes (queue);
    if (sign > 0)
        *bytes += size;
    else
        *bytes -= size < *bytes ? size : *bytes;
}

void
arb_sched_set_state (arb_task_t *task, int state)
{
    uint64_t *counts = arb_queue_counts (task->queue);
    counts[task->state]--;
    counts[state]++;
    if (task->state == ARB_STATE_READY)
        s_count_bytes (task->queue, task->payload_size, -1);
    if (state == ARB_STATE_READY)
        s_count_bytes (task->queue, task->payload_size, 1);
    task->state = (uint8_t) state;
}

//  The limit entry of a task's name, or NULL (no names have limits: no lookup).
arb_sched_name_t *
arb_sched_name_of (arb_sched_t *self, const char *name)
{
    if (zhashx_size (self->names) == 0)
        return NULL;
    return (arb_sched_name_t *) zhashx_lookup (self->names, name);
}

//  Takes a task out of its queue and the timers (not out of its lease).
void
arb_sched_detach (arb_sched_t *self, arb_task_t *task)
{
    if (task->parked) {
        arb_sched_name_t *entry = arb_sched_name_of (self, task->name);
        assert (entry);
        zlistx_delete (entry->parked, task->parked);
        task->parked = NULL;
    }
    if (task->ready_slot != ARB_HEAP_NONE)
        arb_queue_remove (task->queue, task);
    arb_queue_unlink_ready (task->queue, task);
    if (task->timer_slot != ARB_HEAP_NONE)
        arb_heap_remove (self->timers, task);
}

//  Whether a ready task is all its journal row says (arb_queue.h).
static bool
s_is_plain (const arb_task_t *task)
{
    return task->state == ARB_STATE_READY && (!task->ext || arb_task_ext_is_options (task->ext))
           && !task->head && !task->parked && !task->aside && task->attempts == 0 && task->lost == 0
           && task->delivered == 0 && !task->has_children;
}

void
arb_sched_add (arb_sched_t *self, arb_task_t *task, uint64_t now_ms, uint64_t mono_ms)
{
    arb_taskmap_insert (&self->tasks, task);
    arb_queue_link_task (task->queue, task);
    int state = task->state;
    arb_queue_counts (task->queue)[state]++;
    if (state == ARB_STATE_READY)
        s_count_bytes (task->queue, task->payload_size, 1);
    task->fresh = !self->loading && s_is_plain (task) && arb_queue_keeps_cold (task->queue);
    if (task->fresh)
        arb_vec_push (&self->fresh, task->id);
    if (state == ARB_STATE_SCHEDULED)
        arb_sched_make_scheduled (self, task, arb_task_ext (task)->not_before_ms, now_ms, mono_ms);
    else if (state == ARB_STATE_READY)
        arb_sched_make_ready (self, task, false, now_ms, mono_ms);
}

arb_task_t *
arb_sched_find_hot (arb_sched_t *self, uint64_t id)
{
    //  ids start at 1: no task has id 0
    if (id == 0)
        return NULL;
    return arb_taskmap_find (&self->tasks, id);
}

arb_task_t *
arb_sched_find (arb_sched_t *self, uint64_t id)
{
    arb_task_t *task = arb_sched_find_hot (self, id);
    if (!task && id && self->cold)
        task = self->hooks.thaw (self->hooks.arg, id);
    return task;
}

void
arb_sched_settle (arb_sched_t *self)
{
    //  in the order they came: the last ones go cold, not the first
    for (size_t i = 0; i < arb_vec_size (&self->fresh); i++) {
        arb_task_t *task = arb_taskmap_find (&self->tasks, self->fresh.v[self->fresh.head + i]);
        if (task && task->fresh)
            (*arb_queue_fresh (task->queue))++;
    }
    uint64_t id;
    while (arb_vec_shift (&self->fresh, &id)) {
        arb_task_t *task = arb_taskmap_find (&self->tasks, id);
        if (!task || !task->fresh)
            continue;
        task->fresh = false;
        (*arb_queue_fresh (task->queue))--;
        if (s_is_plain (task) && arb_queue_may_freeze (task->queue, task, self->config.hot_max)) {
            arb_queue_freeze (task->queue, task);
            self->cold++;
            arb_queue_unlink_task (task->queue, task);
            arb_taskmap_remove (&self->tasks, task->id);
            s_task_free (self, &task);
        }
        else if (task->state == ARB_STATE_READY)
            arb_queue_note_hot (task->queue, task);
    }
}

uint64_t
arb_sched_cold_count (arb_sched_t *self)
{
    return self->cold;
}

void
arb_sched_set_loading (arb_sched_t *self, bool loading)
{
    self->loading = loading;
}

void
arb_sched_committed (arb_sched_t *self)
{
    //  turns count from 1, so that 0 stays "never" (loosened, a session's
    //  held turn) when the count wraps
    if (++self->turn == 0)
        self->turn = 1;
}

void
arb_sched_welcome (arb_sched_t *self, arb_session_t *session)
{
    arb_session_set_welcome_turn (session, self->turn);
}

bool
arb_sched_welcome_waits (arb_sched_t *self, arb_session_t *session)
{
    return arb_session_welcome_waits (session, self->turn);
}

bool
arb_sched_add_cold (arb_sched_t *self,
                    const arb_task_t *row,
                    const char *queue_name,
                    uint64_t now_ms)
{
    if (row->state != ARB_STATE_READY || (row->ext && !arb_task_ext_is_options (row->ext))
        || row->head || row->has_children)
        return false;
    arb_queue_t *queue = arb_sched_queue (self, queue_name);
    if (!arb_queue_keeps_cold (queue))
        return false;
    //  every plain ready row stays cold at start (the mark is the lowest
    //  key of them): the queue's first pop reads its head back, in order
    arb_queue_counts (queue)[ARB_STATE_READY]++;
    s_count_bytes (queue, row->payload_size, 1);
    arb_queue_add_cold (queue, row->priority, row->id, row->payload_size,
                        arb_task_ready_since (row, now_ms));
    self->cold++;
    return true;
}

void
arb_sched_thaw (arb_sched_t *self, arb_task_t *task, uint64_t now_ms)
{
    assert (task->state == ARB_STATE_READY && self->cold > 0);
    arb_queue_t *queue = task->queue;
    arb_taskmap_insert (&self->tasks, task);
    arb_queue_link_task (queue, task);
    task->ready_ms = now_ms;
    task->seq = arb_queue_seq (queue, task->id, true);
    task->listed_ms = arb_task_ready_since (task, now_ms);
    arb_queue_thaw (queue, task);
    arb_queue_link_ready (queue, task);
    self->cold--;
    arb_sched_mark_dirty (self, queue);
}

void
arb_sched_cold_read (
    arb_sched_t *self, arb_queue_t *queue, int32_t priority, uint64_t id, bool more)
{
    uint64_t before = arb_queue_cold (queue);
    uint64_t bytes = arb_queue_cold_bytes (queue);
    arb_queue_cold_read (queue, priority, id, more);
    uint64_t gone = before - arb_queue_cold (queue);
    self->cold -= gone;
    //  cold tasks the journal does not have as ready are not ready
    uint64_t *ready = &arb_queue_counts (queue)[ARB_STATE_READY];
    *ready -= gone < *ready ? gone : *ready;
    s_count_bytes (queue, bytes - arb_queue_cold_bytes (queue), -1);
}

void
arb_sched_thaw_all (arb_sched_t *self, arb_queue_t *queue)
{
    while (arb_queue_cold (queue)) {
        uint64_t before = arb_queue_cold (queue);
        //  all in one read: the rows in memory (hot) are read past too
        int32_t priority;
        uint64_t id;
        arb_queue_cold_from (queue, &priority, &id);
        size_t max = self->config.hot_max > 1 ? self->config.hot_max / 2 : 1;
        if (before + arb_queue_hot_size (queue) > max)
            max = (size_t) before + arb_queue_hot_size (queue);
        self->hooks.warm (self->hooks.arg, queue, priority, id, max);
        int32_t after_priority;
        uint64_t after_id;
        arb_queue_cold_from (queue, &after_priority, &after_id);
        if (arb_queue_cold (queue) == before && after_priority == priority && after_id == id)
            break;  //  the journal failed: the broker halts
    }
}

uint64_t
arb_sched_end_cold (arb_sched_t *self, arb_queue_t *queue, int final_state, uint64_t now_ms)
{
    uint64_t cold = arb_queue_cold (queue);
    uint64_t *counts = arb_queue_counts (queue);
    assert (counts[ARB_STATE_READY] >= cold);
    counts[ARB_STATE_READY] -= cold;
    counts[final_state] += cold;
    s_count_bytes (queue, arb_queue_cold_bytes (queue), -1);
    for (uint64_t i = 0; i < cold; i++)
        arb_queue_count_done (queue, now_ms);
    arb_queue_drop_cold (queue);
    self->cold -= cold;
    return cold;
}

size_t
arb_sched_task_count (arb_sched_t *self)
{
    return self->tasks.count;
}

arb_task_t *
arb_sched_first_task (arb_sched_t *self)
{
    return arb_taskmap_first (&self->tasks);
}

arb_task_t *
arb_sched_next_task (arb_sched_t *self)
{
    return arb_taskmap_next (&self->tasks);
}

//  The monotonic time at which wall-clock time wall_ms falls due (now).
static uint64_t
s_mono_at (uint64_t wall_ms, uint64_t now_ms, uint64_t mono_ms)
{
    return mono_ms + (wall_ms > now_ms ? wall_ms - now_ms : 0);
}

void
arb_sched_make_ready (
    arb_sched_t *self, arb_task_t *task, bool head, uint64_t now_ms, uint64_t mono_ms)
{
    assert (arb_task_ext (task)->lease == 0);
    arb_sched_detach (self, task);
    arb_sched_set_state (task, ARB_STATE_READY);
    task->head = head;
    //  A task back at the head (released, or failed under the head policy)
    //  keeps its place among the others back there: its arrival and ready
    //  time, not those of its return. Holders give tasks back in any order
    //  (a Kestrel item aborted after the items behind it were given back,
    //  two consumers nacking), and the queue's order must survive that.
    bool back = head && task->seq != 0;
    if (!back) {
        task->ready_ms = now_ms;
        task->seq = arb_queue_seq (task->queue, task->id, self->loading);
    }
    //  what start-up loads was committed; anything else waits for this
    //  turn's commit before an early pass may hand it out
    task->ready_turn = self->loading ? self->turn - 1 : self->turn;
    arb_queue_push (task->queue, task);
    if (!task->fresh)
        arb_queue_note_hot (task->queue, task);
    //  the ready list is in order of becoming ready (the queue's oldest
    //  age): a task back at the head keeps the time it was listed with (a
    //  consumer that gives back what it prefetched, a Kestrel reader's
    //  turns, must not make a backlog look young, nor a restart: a task
    //  loaded or read back counts from its row); one loaded at start-up
    //  became ready before the broker's start
    task->listed_ms = self->loading ? arb_task_ready_since (task, now_ms)
                      : back        ? task->listed_ms
                                    : now_ms;
    arb_queue_link_ready (task->queue, task);
    arb_sched_mark_dirty (self, task->queue);
    //  a task that may expire leaves at its expiry even if no worker
    //  ever looks at its queue (a fan-out copy for an absent endpoint)
    if (arb_task_ext (task)->expires_ms) {
        task->timer_ms = s_mono_at (arb_task_ext (task)->expires_ms, now_ms, mono_ms);
        arb_heap_push (self->timers, task);
    }
}

void
arb_sched_make_scheduled (
    arb_sched_t *self, arb_task_t *task, uint64_t not_before_ms, uint64_t now_ms, uint64_t mono_ms)
{
    assert (arb_task_ext (task)->lease == 0);
    arb_sched_detach (self, task);
    arb_sched_set_state (task, ARB_STATE_SCHEDULED);
    arb_task_ext_rw (task)->not_before_ms = not_before_ms;
    if (not_before_ms <= now_ms) {
        arb_sched_make_ready (self, task, false, now_ms, mono_ms);
        return;
    }
    task->timer_ms = s_mono_at (not_before_ms, now_ms, mono_ms);
    arb_heap_push (self->timers, task);
}

void
arb_sched_make_waiting (arb_sched_t *self, arb_task_t *task)
{
    assert (arb_task_ext (task)->lease == 0);
    arb_sched_detach (self, task);
    arb_sched_set_state (task, ARB_STATE_WAITING);
}

void
arb_sched_finish (arb_sched_t *self, arb_task_t **task_p, int final_state, uint64_t now_ms)
{
    arb_task_t *task = *task_p;
    if (arb_task_ext (task)->lease)
        arb_sched_unlease (self, task);
    arb_sched_detach (self, task);
    arb_sched_set_state (task, final_state);
    arb_queue_count_done (task->queue, now_ms);
    arb_queue_unlink_task (task->queue, task);
    arb_taskmap_remove (&self->tasks, task->id);
    s_task_free (self, task_p);
}

bool
arb_sched_cache_put (arb_sched_t *self,
                     arb_task_t *task,
                     const void *payload,
                     size_t payload_size,
                     const void *headers,
                     size_t headers_size)
{
    assert (!task->cache);
    if (payload_size > UINT32_MAX || headers_size > UINT32_MAX)
        return false;
    size_t want = sizeof (s_cached_t) + payload_size + headers_size;
    //  the allocator's own header and rounding, before asking it
    if (self->cache_used + want + 2 * sizeof (size_t) > self->config.cache_bytes)
        return false;
    s_cached_t *block = (s_cached_t *) malloc (want);
    assert (block);
    size_t held = s_cache_held (block);
    if (self->cache_used + held > self->config.cache_bytes) {
        free (block);
        return false;
    }
    block->payload_size = (uint32_t) payload_size;
    block->headers_size = (uint32_t) headers_size;
    if (payload_size)
        memcpy (block->data, payload, payload_size);
    if (headers_size)
        memcpy (block->data + payload_size, headers, headers_size);
    self->cache_used += held;
    task->cache = block;
    return true;
}

bool
arb_sched_cache_view (arb_sched_t *self, arb_task_t *task, arb_bin_t *payload, arb_bin_t *headers)
{
    (void) self;
    s_cached_t *block = (s_cached_t *) task->cache;
    if (!block)
        return false;
    *payload = (arb_bin_t){block->data, block->payload_size};
    *headers = (arb_bin_t){block->data + block->payload_size, block->headers_size};
    return true;
}

void
arb_sched_cache_drop (arb_sched_t *self, arb_task_t *task)
{
    s_cache_drop (self, task);
}

uint64_t
arb_sched_cache_used (arb_sched_t *self)
{
    return self->cache_used;
}

//  ---------------------------------------------------------------------
//  Sessions

arb_session_t *
arb_sched_session (arb_sched_t *self, const uint8_t *peer, size_t peer_size)
{
    char key[ARB_HEX_ID_SIZE];
    arb_bytes_hex_id (peer, peer_size, key);
    return (arb_session_t *) zhashx_lookup (self->sessions, key);
}

arb_session_t *
arb_sched_open_session (arb_sched_t *self, zframe_t *identity, uint64_t mono_ms)
{
    char key[ARB_HEX_ID_SIZE];
    arb_bytes_hex_id (zframe_data (identity), zframe_size (identity), key);
    assert (!zhashx_lookup (self->sessions, key));
    arb_session_t *session = arb_session_new (identity, key);
    arb_session_touch (session, mono_ms);
    zhashx_insert (self->sessions, key, session);
    return session;
}

zhashx_t *
arb_sched_sessions (arb_sched_t *self)
{
    return self->sessions;
}

//  The hidden queue of a worker's own fan-out copies for a queue.
static arb_queue_t *
s_endpoint_queue (arb_sched_t *self, const char *queue, arb_session_t *session)
{
    char name[2 * ARB_NAME_MAX + 2];
    snprintf (name, sizeof (name), "%s@%s", queue, arb_session_name (session));
    return arb_sched_queue (self, name);
}

static void
s_sub_detach (arb_sched_t *self, arb_sub_t *sub)
{
    for (size_t i = 0; i < sub->queue_count; i++) {
        arb_queue_remove_consumer (arb_sched_queue (self, sub->queues[i]), sub);
        arb_queue_remove_consumer (s_endpoint_queue (self, sub->queues[i], sub->session), sub);
    }
}

int
arb_sched_credit (arb_sched_t *self,
                  arb_session_t *session,
                  uint32_t sub_id,
                  const char **queues,
                  size_t queue_count,
                  int32_t credit,
                  bool cancel)
{
    arb_sub_t *sub = arb_session_sub (session, sub_id);
    if (cancel) {
        if (sub) {
            s_sub_detach (self, sub);
            arb_session_remove_sub (session, sub_id);
        }
        return 0;
    }
    if (!sub) {
        if (queue_count == 0)
            return -1;
        sub = arb_session_add_sub (session, sub_id, queues, queue_count);
        for (size_t i = 0; i < queue_count; i++) {
            arb_queue_add_consumer (arb_sched_queue (self, queues[i]), sub);
            arb_queue_add_consumer (s_endpoint_queue (self, queues[i], session), sub);
        }
    }
    sub->credit += credit;
    if (sub->credit > 0)
        for (size_t i = 0; i < sub->queue_count; i++) {
            arb_sched_mark_dirty (self, arb_sched_queue (self, sub->queues[i]));
            arb_sched_mark_dirty (self, s_endpoint_queue (self, sub->queues[i], session));
        }
    return 0;
}

arb_session_t *
arb_sched_silent_session (arb_sched_t *self,
                          uint64_t mono_ms,
                          arb_sched_unread_fn *unread,
                          void *arg)
{
    arb_session_t *session = (arb_session_t *) zhashx_first (self->sessions);
    while (session) {
        if (arb_session_last_seen (session) + self->config.liveness_ms < mono_ms
            && !(unread && unread (arg, session)))
            return session;
        session = (arb_session_t *) zhashx_next (self->sessions);
    }
    return NULL;
}

void
arb_sched_close_session (arb_sched_t *self, arb_session_t **session_p)
{
    arb_session_t *session = *session_p;
    assert (arb_session_lease_count (session) == 0);
    for (size_t i = 0; i < arb_session_sub_count (session); i++)
        s_sub_detach (self, arb_session_sub_at (session, i));
    zhashx_delete (self->sessions, arb_session_key (session));
    arb_session_destroy (session_p);
}

//  ---------------------------------------------------------------------
//  Timers

uint64_t
arb_sched_next_timer (arb_sched_t *self)
{
    uint64_t next = UINT64_MAX;
    arb_task_t *first = (arb_task_t *) arb_heap_peek (self->timers);
    if (first)
        next = first->timer_ms;
    for (size_t i = 0; i < self->wake_count; i++)
        if (self->wakes[i].wake_ms < next)
            next = self->wakes[i].wake_ms;
    return next;
}

arb_task_t *
arb_sched_pop_timer (arb_sched_t *self, uint64_t mono_ms)
{
    for (size_t i = 0; i < self->wake_count;) {
        if (self->wakes[i].wake_ms <= mono_ms) {
            if (self->wakes[i].queue)
                arb_sched_mark_dirty (self, self->wakes[i].queue);
            else
                arb_sched_unpark (self, self->wakes[i].name);
            self->wakes[i] = self->wakes[--self->wake_count];
        }
        else
            i++;
    }
    arb_task_t *first = (arb_task_t *) arb_heap_peek (self->timers);
    if (!first || first->timer_ms > mono_ms)
        return NULL;
    return (arb_task_t *) arb_heap_pop (self->timers);
}
