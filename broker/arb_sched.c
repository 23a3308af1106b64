/*  arb_sched.c — the scheduler; see arb_sched.h. */

#include "arb_sched.h"
#include "arb_heap.h"
#include "arb_taskmap.h"
#include "arb_vec.h"

#include <malloc.h>


//  A task name with a limit, and its ready tasks waiting for it.
typedef struct {
    char *name;  //  owned
    arb_limit_t limit;
    zlistx_t *parked;  //  owned list of borrowed tasks, in the order they were parked
} s_name_t;

//  A rate limit waiting for its next token: a queue's or a name's.
typedef struct {
    arb_queue_t *queue;  //  borrowed, or NULL
    s_name_t *name;      //  borrowed, or NULL
    uint64_t wake_ms;    //  monotonic
} s_wake_t;

//  A task name, kept once however many tasks bear it.
typedef struct {
    size_t refs;  //  tasks that bear it
    char name[];
} s_interned_t;

struct _arb_sched_t {
    arb_sched_config_t config;
    arb_sched_hooks_t hooks;
    arb_taskmap_t tasks;  //  id -> owned task
    zhashx_t *queues;     //  name -> owned queue
    zhashx_t *sessions;   //  hex routing id -> owned session
    zhashx_t *names;      //  task name -> owned s_name_t, for names with a limit
    zhashx_t *interned;   //  task name -> owned s_interned_t (keys borrowed from it)
    arb_heap_t *timers;   //  borrowed tasks by timer_ms
    arb_queue_t **dirty;  //  owned array of borrowed queues to visit
    size_t dirty_count;
    size_t dirty_capacity;
    s_wake_t *wakes;  //  owned array: rate-limited queues
    size_t wake_count;
    uint64_t lease_seq;   //  leases handed out since start
    uint64_t cache_used;  //  bytes the payload cache holds, as the allocator counts them
    arb_vec_t fresh;      //  ids of fresh tasks to settle (arb_sched.h)
    uint64_t cold;        //  cold tasks of all queues
    bool loading;         //  start-up: seqs are exact
};

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
    s_interned_t *entry = (s_interned_t *) zhashx_lookup (self->interned, name);
    if (!entry) {
        size_t size = strlen (name) + 1;
        entry = (s_interned_t *) malloc (sizeof (s_interned_t) + size);
        assert (entry);
        entry->refs = 0;
        memcpy (entry->name, name, size);
        zhashx_insert (self->interned, entry->name, entry);
    }
    entry->refs++;
    return entry->name;
}

//  A task no longer bears its name: the last one frees it.
static void
s_unintern (arb_sched_t *self, const char *name)
{
    s_interned_t *entry = (s_interned_t *) zhashx_lookup (self->interned, name);
    assert (entry && entry->refs > 0);
    if (--entry->refs == 0) {
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
    s_name_t *entry = (s_name_t *) zhashx_first (self->names);
    while (entry) {
        zlistx_destroy (&entry->parked);
        free (entry->name);
        free (entry);
        entry = (s_name_t *) zhashx_next (self->names);
    }
    zhashx_destroy (&self->names);
    for (arb_task_t *task = arb_taskmap_first (&self->tasks); task;
         task = arb_taskmap_next (&self->tasks))
        s_task_free (self, &task);
    arb_taskmap_free (&self->tasks);
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
    arb_queue_t *queue = (arb_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue) {
        queue = arb_queue_new (name, self->config.aging_ms);
        if (self->hooks.warm && self->hooks.thaw)
            arb_queue_set_warm (queue, s_warm_queue, self,
                                self->config.hot_max > 1 ? self->config.hot_max / 2 : 1);
        zhashx_insert (self->queues, name, queue);
    }
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
static void
s_mark_dirty (arb_sched_t *self, arb_queue_t *queue)
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
    s_mark_dirty (self, queue);
}

static void s_unpark (arb_sched_t *self, s_name_t *entry);
static void s_drop_wakes (arb_sched_t *self, arb_queue_t *queue, s_name_t *name);

void
arb_sched_forget_queue (arb_sched_t *self, arb_queue_t *queue)
{
    if (!arb_queue_is_idle (queue))
        return;
    s_drop_wakes (self, queue, NULL);
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
    //  holds one per consumer of its own): count each session once
    size_t count = 0, distinct = 0;
    void **sessions = (void **) malloc ((arb_queue_consumer_count (queue) + 1) * sizeof (void *));
    for (size_t i = 0; i < arb_queue_consumer_count (queue); i++) {
        arb_sub_t *sub = (arb_sub_t *) arb_queue_consumer_at (queue, i);
        if (sub->credit > 0)
            sessions[count++] = sub->session;
    }
    qsort (sessions, count, sizeof (void *), s_compare_ptr);
    for (size_t i = 0; i < count; i++)
        distinct += i == 0 || sessions[i] != sessions[i - 1];
    free (sessions);
    return distinct;
}


arb_limit_t *
arb_sched_name_limit (arb_sched_t *self, const char *name)
{
    s_name_t *entry = (s_name_t *) zhashx_lookup (self->names, name);
    if (entry)
        return &entry->limit;
    entry = (s_name_t *) zmalloc (sizeof (s_name_t));
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
    s_name_t *entry = (s_name_t *) zhashx_lookup (self->names, name);
    if (!entry)
        return;
    s_unpark (self, entry);
    if (!arb_limit_is_set (&entry->limit)) {
        s_drop_wakes (self, NULL, entry);
        zlistx_destroy (&entry->parked);
        free (entry->name);
        zhashx_delete (self->names, name);
        free (entry);
    }
}

//  ---------------------------------------------------------------------
//  Tasks

arb_task_t *
arb_sched_new_task (arb_sched_t *self, const char *queue, const char *name)
{
    arb_task_t *task = (arb_task_t *) zmalloc (sizeof (arb_task_t));
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

static void
s_set_state (arb_task_t *task, int state)
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
static s_name_t *
s_name_of (arb_sched_t *self, const char *name)
{
    if (zhashx_size (self->names) == 0)
        return NULL;
    return (s_name_t *) zhashx_lookup (self->names, name);
}

//  Takes a task out of its queue and the timers (not out of its lease).
static void
s_detach (arb_sched_t *self, arb_task_t *task)
{
    if (task->parked) {
        s_name_t *entry = s_name_of (self, task->name);
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

bool
arb_sched_add_cold (arb_sched_t *self, const arb_task_t *row, const char *queue_name)
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
    arb_queue_add_cold (queue, row->priority, row->id, row->payload_size);
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
    task->listed_ms = now_ms;
    arb_queue_thaw (queue, task);
    arb_queue_link_ready (queue, task);
    self->cold--;
    s_mark_dirty (self, queue);
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
    s_detach (self, task);
    s_set_state (task, ARB_STATE_READY);
    task->head = head;
    //  A task back at the head (released, or failed under the head policy)
    //  keeps its place among the others back there: its arrival and ready
    //  time, not those of its return. Holders give tasks back in any order
    //  (a Kestrel item aborted after the items behind it were given back,
    //  two consumers nacking), and the queue's order must survive that.
    if (!head || task->seq == 0) {
        task->ready_ms = now_ms;
        task->seq = arb_queue_seq (task->queue, task->id, self->loading);
    }
    arb_queue_push (task->queue, task);
    if (!task->fresh)
        arb_queue_note_hot (task->queue, task);
    //  the ready list is in order of joining: a task back at the head
    //  joins it anew, so the oldest stays first without a sorted insert
    task->listed_ms = now_ms;
    arb_queue_link_ready (task->queue, task);
    s_mark_dirty (self, task->queue);
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
    s_detach (self, task);
    s_set_state (task, ARB_STATE_SCHEDULED);
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
    s_detach (self, task);
    s_set_state (task, ARB_STATE_WAITING);
}

void
arb_sched_finish (arb_sched_t *self, arb_task_t **task_p, int final_state, uint64_t now_ms)
{
    arb_task_t *task = *task_p;
    if (arb_task_ext (task)->lease)
        arb_sched_unlease (self, task);
    s_detach (self, task);
    s_set_state (task, final_state);
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
arb_sched_cache_peek (arb_sched_t *self, arb_task_t *task, zframe_t **payload, zframe_t **headers)
{
    (void) self;
    s_cached_t *block = (s_cached_t *) task->cache;
    if (!block)
        return false;
    *payload = zframe_new (block->data, block->payload_size);
    *headers = block->headers_size
                   ? zframe_new (block->data + block->payload_size, block->headers_size)
                   : NULL;
    return true;
}

bool
arb_sched_cache_take (arb_sched_t *self, arb_task_t *task, zframe_t **payload, zframe_t **headers)
{
    if (!arb_sched_cache_peek (self, task, payload, headers))
        return false;
    s_cache_drop (self, task);
    return true;
}

uint64_t
arb_sched_cache_used (arb_sched_t *self)
{
    return self->cache_used;
}

//  ---------------------------------------------------------------------
//  Sessions

static char *
s_session_key (zframe_t *identity)
{
    return zframe_strhex (identity);
}

arb_session_t *
arb_sched_session (arb_sched_t *self, zframe_t *identity)
{
    char *key = s_session_key (identity);
    arb_session_t *session = (arb_session_t *) zhashx_lookup (self->sessions, key);
    free (key);
    return session;
}

arb_session_t *
arb_sched_open_session (arb_sched_t *self, zframe_t *identity, uint64_t mono_ms)
{
    char *key = s_session_key (identity);
    assert (!zhashx_lookup (self->sessions, key));
    arb_session_t *session = arb_session_new (identity, key);
    arb_session_touch (session, mono_ms);
    zhashx_insert (self->sessions, key, session);
    free (key);
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
            s_mark_dirty (self, arb_sched_queue (self, sub->queues[i]));
            s_mark_dirty (self, s_endpoint_queue (self, sub->queues[i], session));
        }
    return 0;
}

arb_session_t *
arb_sched_silent_session (arb_sched_t *self, uint64_t mono_ms)
{
    arb_session_t *session = (arb_session_t *) zhashx_first (self->sessions);
    while (session) {
        if (arb_session_last_seen (session) + self->config.liveness_ms < mono_ms)
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
//  Leases and dispatch

arb_task_t *
arb_sched_leased (arb_sched_t *self, uint64_t id, uint64_t lease)
{
    arb_task_t *task = arb_sched_find (self, id);
    if (!task || arb_task_ext (task)->lease == 0 || arb_task_ext (task)->lease != lease)
        return NULL;
    return task;
}

static void
s_lease (
    arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint32_t sub, uint64_t mono_ms)
{
    if (task->timer_slot != ARB_HEAP_NONE)
        arb_heap_remove (self->timers, task);  //  its expiry: it has started
    arb_queue_unlink_ready (task->queue, task);
    s_set_state (task, ARB_STATE_RUNNING);
    arb_task_ext_rw (task)->lease = (self->config.epoch << ARB_LEASE_BITS) | ++self->lease_seq;
    arb_task_ext_rw (task)->last_lease = 0;
    arb_task_ext_rw (task)->last_lost = false;
    arb_task_ext_rw (task)->claimed_lease = 0;
    arb_task_ext_rw (task)->leased = true;
    arb_task_ext_rw (task)->session = session;
    arb_task_ext_rw (task)->sub = sub;
    task->attempts++;
    arb_session_add_lease (session, task);
    arb_queue_limit (task->queue)->running++;
    s_name_t *entry = s_name_of (self, task->name);
    if (entry)
        entry->limit.running++;
    if (arb_task_ext (task)->timeout_ms) {
        task->timer_ms = mono_ms + arb_task_ext (task)->timeout_ms;
        arb_heap_push (self->timers, task);
    }
}

void
arb_sched_unlease (arb_sched_t *self, arb_task_t *task)
{
    assert (arb_task_ext (task)->lease && arb_task_ext (task)->session);
    arb_session_remove_lease (arb_task_ext (task)->session, task);
    if (task->timer_slot != ARB_HEAP_NONE)
        arb_heap_remove (self->timers, task);
    arb_queue_limit (task->queue)->running--;
    arb_task_drop_emits (task);  //  staged with the lease, gone with it
    arb_task_ext_rw (task)->lease = 0;
    arb_task_ext_rw (task)->session = NULL;
    arb_task_ext_rw (task)->sub = 0;
    //  a queue or a name at its running limit can take more now
    if (arb_queue_limit (task->queue)->max_running)
        s_mark_dirty (self, task->queue);
    s_name_t *entry = s_name_of (self, task->name);
    if (entry) {
        entry->limit.running--;
        s_unpark (self, entry);
    }
}

//  Whether a session runs tasks of this name (arb_queue_accept_fn).
static bool
s_accepts (void *arg, const char *name)
{
    return arb_session_handles ((arb_session_t *) arg, name);
}

//  Pops the next ready task of a queue that session runs and that has not
//  expired; expired ones are given to the broker to end.
static arb_task_t *
s_pop_live (arb_sched_t *self, arb_queue_t *queue, arb_session_t *session, uint64_t now_ms)
{
    arb_task_t *task;
    while ((task = arb_session_handles_all (session)
                       ? arb_queue_pop (queue)
                       : arb_queue_pop_for (queue, s_accepts, session))) {
        if (arb_task_ext (task)->expires_ms == 0 || arb_task_ext (task)->expires_ms > now_ms)
            return task;
        self->hooks.expired (self->hooks.arg, task);
    }
    return NULL;
}

static void
s_add_wake (arb_sched_t *self, arb_queue_t *queue, s_name_t *name, uint64_t wake_ms)
{
    for (size_t i = 0; i < self->wake_count; i++)
        if (self->wakes[i].queue == queue && self->wakes[i].name == name) {
            self->wakes[i].wake_ms = wake_ms;
            return;
        }
    self->wakes = (s_wake_t *) realloc (self->wakes, (self->wake_count + 1) * sizeof (s_wake_t));
    assert (self->wakes);
    self->wakes[self->wake_count++] = (s_wake_t){queue, name, wake_ms};
}

static void
s_drop_wakes (arb_sched_t *self, arb_queue_t *queue, s_name_t *name)
{
    for (size_t i = 0; i < self->wake_count;)
        if ((queue && self->wakes[i].queue == queue) || (name && self->wakes[i].name == name))
            self->wakes[i] = self->wakes[--self->wake_count];
        else
            i++;
}

//  Puts a name's parked tasks back into their queues, in their old places.
static void
s_unpark (arb_sched_t *self, s_name_t *entry)
{
    arb_task_t *task;
    while ((task = (arb_task_t *) zlistx_detach (entry->parked, NULL))) {
        task->parked = NULL;
        arb_queue_push (task->queue, task);
        s_mark_dirty (self, task->queue);
    }
}

//  The next task a queue may hand to session now, with its limits (and its
//  task name's) charged; or NULL. Tasks over their name's limit are parked
//  on the way, and tasks of names the session does not run are set aside
//  (arb_queue.h); rate limits register a wake-up. *blocked says whether
//  NULL means that the queue hands out nothing now (paused, held, at a
//  limit), rather than nothing to this session.
static arb_task_t *
s_next_task (arb_sched_t *self,
             arb_queue_t *queue,
             arb_session_t *session,
             uint64_t now_ms,
             uint64_t mono_ms,
             bool *blocked)
{
    *blocked = true;
    if (arb_queue_settings (queue)->paused)
        return NULL;
    uint64_t held_until = arb_queue_held_until (queue);
    if (held_until > mono_ms) {
        s_add_wake (self, queue, NULL, held_until);
        return NULL;
    }
    arb_limit_t *limit = arb_queue_limit (queue);
    while (arb_queue_size (queue) > 0) {
        uint64_t retry_ms = 0;
        if (!arb_limit_check (limit, mono_ms, &retry_ms)) {
            if (retry_ms)
                s_add_wake (self, queue, NULL, mono_ms + retry_ms);
            return NULL;
        }
        arb_task_t *task = s_pop_live (self, queue, session, now_ms);
        if (!task) {
            *blocked = false;
            return NULL;
        }
        s_name_t *entry = s_name_of (self, task->name);
        if (entry && !arb_limit_check (&entry->limit, mono_ms, &retry_ms)) {
            task->parked = zlistx_add_end (entry->parked, task);
            if (retry_ms)
                s_add_wake (self, NULL, entry, mono_ms + retry_ms);
            continue;
        }
        arb_limit_take (limit);
        if (entry)
            arb_limit_take (&entry->limit);
        return task;
    }
    return NULL;
}

//  Whether a task seen by arb_sched_peek has not expired.
static bool
s_is_live (void *task, void *now_ms)
{
    uint64_t expires_ms = arb_task_ext (((arb_task_t *) task))->expires_ms;
    return expires_ms == 0 || expires_ms > *(uint64_t *) now_ms;
}

size_t
arb_sched_peek (arb_sched_t *self,
                arb_queue_t *queue,
                arb_task_t **tasks,
                size_t max,
                uint64_t now_ms,
                uint64_t mono_ms)
{
    (void) self;
    if (arb_queue_settings (queue)->paused || arb_queue_held_until (queue) > mono_ms)
        return 0;
    //  expired tasks leave at their timer, within a turn: few to skip
    return arb_queue_first (queue, tasks, max, max + ARB_PEEK_SKIP_MAX, s_is_live, &now_ms);
}

void
arb_sched_hold_ready (arb_sched_t *self, uint64_t until_ms)
{
    for (arb_queue_t *queue = (arb_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_queue_t *) zhashx_next (self->queues))
        if (arb_queue_size (queue) > 0)
            arb_queue_hold (queue, until_ms);
}

bool
arb_sched_can_adopt (arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease)
{
    if (lease == 0 || !session || !arb_session_registered (session))
        return false;
    if (task->state == ARB_STATE_RUNNING)
        //  its lease now, or the one an earlier claim named (the worker
        //  never saw that claim's WELCOME), from the same worker
        return (lease == arb_task_ext (task)->lease || lease == arb_task_ext (task)->claimed_lease)
               && (arb_task_ext (task)->session == session
                   || arb_session_newer (session, arb_task_ext (task)->session));
    if (task->state != ARB_STATE_READY)
        return false;
    if (arb_task_ext (task)->last_lease)
        //  lost or taken back in this run, and nobody has had it since
        return lease == arb_task_ext (task)->last_lease
               && arb_task_ext (task)->last_worker == arb_session_worker (session);
    //  a lease of a run before this one (1 is the first epoch), for a task
    //  this run has not leased yet
    uint64_t epoch = lease >> ARB_LEASE_BITS;
    return epoch >= 1 && epoch < self->config.epoch && !arb_task_ext (task)->leased;
}

arb_adopt_t
arb_sched_adopt (
    arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease, uint64_t mono_ms)
{
    if (task->state == ARB_STATE_RUNNING) {
        if (arb_task_ext (task)->session == session)
            return ARB_ADOPT_KEPT;
        //  the same attempt goes on: its count and its timeout stay
        bool timed = task->timer_slot != ARB_HEAP_NONE;
        uint64_t timer_ms = task->timer_ms;
        uint64_t claimed =
            arb_task_ext (task)->claimed_lease ? arb_task_ext (task)->claimed_lease : lease;
        arb_sched_unlease (self, task);
        task->attempts--;
        s_lease (self, task, session, 0, mono_ms);
        arb_task_ext_rw (task)->claimed_lease = claimed;
        if (timed) {
            arb_heap_remove (self->timers, task);
            arb_sched_rearm (self, task, timer_ms);
        }
        return ARB_ADOPT_MOVED;
    }
    if (lease == arb_task_ext (task)->last_lease && arb_task_ext (task)->last_lost && task->lost)
        task->lost--;  //  its worker was not lost after all
    s_detach (self, task);
    s_lease (self, task, session, 0, mono_ms);
    arb_task_ext_rw (task)->claimed_lease = lease;
    return ARB_ADOPT_LEASED;
}

void
arb_sched_give_back (
    arb_sched_t *self, arb_task_t *task, bool head, uint64_t now_ms, uint64_t mono_ms)
{
    uint64_t lease = arb_task_ext (task)->lease;
    uint64_t worker = arb_session_worker (arb_task_ext (task)->session);
    arb_sched_unlease (self, task);
    task->attempts--;
    arb_sched_make_ready (self, task, head, now_ms, mono_ms);
    arb_task_ext_rw (task)->last_lease = lease;
    arb_task_ext_rw (task)->last_worker = worker;
    arb_task_ext_rw (task)->last_lost = false;
}

void
arb_sched_rearm (arb_sched_t *self, arb_task_t *task, uint64_t mono_ms)
{
    assert (task->timer_slot == ARB_HEAP_NONE);
    task->timer_ms = mono_ms;
    arb_heap_push (self->timers, task);
}

//  Hands one task to a subscription. Returns false if the broker could not
//  send it (the task is back at the head).
static bool
s_hand_out (arb_sched_t *self,
            arb_task_t *task,
            arb_session_t *session,
            arb_sub_t *sub,
            uint64_t now_ms,
            uint64_t mono_ms)
{
    s_lease (self, task, session, sub ? sub->id : 0, mono_ms);
    if (sub)
        sub->credit--;
    if (self->hooks.dispatch (self->hooks.arg, session, sub, task) == 0) {
        task->delivered++;  //  after the hook, which tells how often before
        return true;
    }
    if (sub)
        sub->credit++;
    task->attempts--;
    arb_sched_unlease (self, task);
    arb_sched_make_ready (self, task, true, now_ms, mono_ms);
    return false;
}

static void
s_dispatch_queue (arb_sched_t *self, arb_queue_t *queue, uint64_t now_ms, uint64_t mono_ms)
{
    size_t idle = 0;  //  consumers visited in a row without credit
    while (arb_queue_size (queue) > 0 && idle < arb_queue_consumer_count (queue)) {
        arb_sub_t *sub = (arb_sub_t *) arb_queue_next_consumer (queue);
        if (sub->credit <= 0) {
            idle++;
            continue;
        }
        bool blocked;
        arb_task_t *task = s_next_task (self, queue, sub->session, now_ms, mono_ms, &blocked);
        if (!task && blocked)
            return;
        if (!task) {
            idle++;  //  nothing it runs
            continue;
        }
        if (!s_hand_out (self, task, sub->session, sub, now_ms, mono_ms))
            return;
        idle = 0;
    }
}

void
arb_sched_dispatch (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms)
{
    arb_sched_settle (self);
    //  Dispatching may mark queues dirty again (a failed send puts a task
    //  back); those wait for the next turn, so take the list first.
    size_t count = self->dirty_count;
    arb_queue_t **dirty = self->dirty;
    self->dirty = NULL;
    self->dirty_count = self->dirty_capacity = 0;
    for (size_t i = 0; i < count; i++)
        arb_queue_set_dirty (dirty[i], false);
    for (size_t i = 0; i < count; i++)
        s_dispatch_queue (self, dirty[i], now_ms, mono_ms);
    free (dirty);
}

size_t
arb_sched_take (arb_sched_t *self,
                arb_session_t *session,
                const char *queue_name,
                size_t max,
                uint64_t now_ms,
                uint64_t mono_ms)
{
    arb_queue_t *queue = arb_sched_queue (self, queue_name);
    size_t taken = 0;
    while (taken < max) {
        bool blocked;
        arb_task_t *task = s_next_task (self, queue, session, now_ms, mono_ms, &blocked);
        if (!task || !s_hand_out (self, task, session, NULL, now_ms, mono_ms))
            break;
        taken++;
    }
    return taken;
}

bool
arb_sched_is_unhandled (arb_sched_t *self, arb_task_t *task)
{
    (void) self;
    arb_queue_t *queue = task->queue;
    size_t count = arb_queue_consumer_count (queue);
    if (task->state != ARB_STATE_READY || count == 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        arb_sub_t *sub = (arb_sub_t *) arb_queue_consumer_at (queue, i);
        if (arb_session_handles (sub->session, task->name))
            return false;
    }
    return true;
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
                s_mark_dirty (self, self->wakes[i].queue);
            else
                s_unpark (self, self->wakes[i].name);
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
