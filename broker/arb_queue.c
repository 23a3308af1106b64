/*  arb_queue.c — one named queue; see arb_queue.h. */

#include "arb_queue.h"
#include "arb_vec.h"
#include "arb_heap.h"

#define ARB_DONE_RING ARB_DONE_SECONDS

struct _arb_queue_t {
    char *name;          //  owned
    uint64_t aging_ms;   //  ms of waiting worth one priority level; 0 strict
    arb_heap_t *ready;   //  owned heap of borrowed tasks
    zhashx_t *aside;     //  owned, or NULL: task name -> owned heap of borrowed tasks set aside
    size_t aside_count;  //  tasks in those heaps
    arb_queue_settings_t settings;
    uint64_t counts[ARB_STATE_MAX + 1];
    uint64_t ready_bytes;              //  payload bytes of its ready tasks, cold ones too
    uint64_t dropped;                  //  ready tasks its bounds dropped
    arb_limit_t limit;                 //  running cap, rate limit, running count
    uint64_t done[ARB_DONE_RING];      //  finished per second
    uint64_t done_sec[ARB_DONE_RING];  //  which Unix second each slot counts
    void **consumers;                  //  owned array of borrowed consumers
    size_t consumer_count;
    size_t consumer_capacity;  //  consumers allocated
    size_t consumer_next;      //  round-robin cursor
    bool dirty;
    uint64_t held_until;      //  ms (monotonic): hands out nothing before
    arb_task_t *tasks;        //  borrowed: first of its unfinished tasks
    arb_task_t *ready_first;  //  borrowed: the ready task that became ready first
    arb_task_t *ready_last;   //  borrowed: and last

    //  the cold backlog (arb_queue.h)
    arb_queue_warm_fn *warm;  //  borrowed: reads cold tasks back; NULL: none ever
    void *warm_arg;           //  borrowed, for warm
    size_t warm_low;          //  tasks: fewer hot ready ones than this, and it warms
    uint64_t cold;            //  ready tasks in the journal only
    uint64_t cold_bytes;      //  their payload bytes
    int32_t cold_priority;    //  every cold task sorts at or after this key
    uint64_t cold_seq;
    uint64_t cold_since_ms;  //  Unix ms: no cold task became ready before (oldest age)
    bool hot_last_set;       //  hot_last is an upper bound of the hot ready keys
    int32_t hot_last_priority;
    uint64_t hot_last_seq;
    uint64_t seq_id;  //  the highest id made ready (arb_queue_seq)
    uint64_t seq_n;   //  tasks made ready since with a lower id
    size_t fresh;     //  during arb_sched_settle: fresh tasks still to look at
};

//  Whether key (pa, sa) comes before key (pb, sb) in dispatch order
//  (strict priorities).
static bool
s_key_before (int32_t pa, uint64_t sa, int32_t pb, uint64_t sb)
{
    return pa != pb ? pa > pb : sa < sb;
}

static bool
s_before (const void *a_, const void *b_, void *arg)
{
    const arb_task_t *a = (const arb_task_t *) a_;
    const arb_task_t *b = (const arb_task_t *) b_;
    const arb_queue_t *self = (const arb_queue_t *) arg;
    if (self->aging_ms == 0) {
        if (a->priority != b->priority)
            return a->priority > b->priority;
    }
    else {
        int64_t ka = (int64_t) a->priority * (int64_t) self->aging_ms - (int64_t) a->ready_ms;
        int64_t kb = (int64_t) b->priority * (int64_t) self->aging_ms - (int64_t) b->ready_ms;
        if (ka != kb)
            return ka > kb;
    }
    //  back at the head: of its priority, not of the whole queue
    if (a->head != b->head)
        return a->head;
    return a->seq < b->seq;
}

//  Whether a hot ready task comes before every cold one (cold tasks are
//  never at the head: one back at the head of its priority comes before
//  the cold tasks of that priority and the lower ones).
static bool
s_before_cold (const arb_queue_t *self, const arb_task_t *task)
{
    return task->head
               ? task->priority >= self->cold_priority
               : s_key_before (task->priority, task->seq, self->cold_priority, self->cold_seq);
}

static void s_warm (arb_queue_t *self, size_t want);

static size_t *
s_slot (void *task)
{
    return &((arb_task_t *) task)->ready_slot;
}

arb_queue_t *
arb_queue_new (const char *name, uint64_t aging_ms)
{
    arb_queue_t *self = (arb_queue_t *) zmalloc (sizeof (arb_queue_t));
    self->name = strdup (name);
    self->aging_ms = aging_ms < ARB_AGING_MAX_MS ? aging_ms : ARB_AGING_MAX_MS;
    self->ready = arb_heap_new (s_before, s_slot, self);
    return self;
}

void
arb_queue_destroy (arb_queue_t **self_p)
{
    assert (self_p);
    arb_queue_t *self = *self_p;
    if (!self)
        return;
    arb_heap_destroy (&self->ready);
    if (self->aside) {
        for (arb_heap_t *heap = (arb_heap_t *) zhashx_first (self->aside); heap;
             heap = (arb_heap_t *) zhashx_next (self->aside))
            arb_heap_destroy (&heap);
        zhashx_destroy (&self->aside);
    }
    free (self->consumers);
    free (self->name);
    free (self);
    *self_p = NULL;
}

const char *
arb_queue_name (const arb_queue_t *self)
{
    return self->name;
}

void
arb_queue_push (arb_queue_t *self, arb_task_t *task)
{
    task->aside = false;
    arb_heap_push (self->ready, task);
}

static void
s_set_aside (arb_queue_t *self, arb_task_t *task)
{
    if (!self->aside)
        self->aside = zhashx_new ();
    arb_heap_t *heap = (arb_heap_t *) zhashx_lookup (self->aside, task->name);
    if (!heap) {
        heap = arb_heap_new (s_before, s_slot, self);
        zhashx_insert (self->aside, task->name, heap);
    }
    arb_heap_push (heap, task);
    task->aside = true;
    self->aside_count++;
}

//  Takes a task out of its name's heap; an empty heap goes, so that memory
//  follows the names set aside now.
static void
s_take_aside (arb_queue_t *self, arb_heap_t *heap, arb_task_t *task)
{
    arb_heap_remove (heap, task);
    task->aside = false;
    self->aside_count--;
    if (arb_heap_size (heap) == 0) {
        zhashx_delete (self->aside, task->name);
        arb_heap_destroy (&heap);
    }
}

//  Of the first tasks of the names set aside that accept takes (NULL: any
//  name), the first; its heap in *from.
static arb_task_t *
s_first_aside (arb_queue_t *self, arb_queue_accept_fn *accept, void *arg, arb_heap_t **from)
{
    arb_task_t *best = NULL;
    *from = NULL;
    if (self->aside_count == 0)
        return NULL;
    for (arb_heap_t *heap = (arb_heap_t *) zhashx_first (self->aside); heap;
         heap = (arb_heap_t *) zhashx_next (self->aside)) {
        if (accept && !accept (arg, (const char *) zhashx_cursor (self->aside)))
            continue;
        arb_task_t *first = (arb_task_t *) arb_heap_peek (heap);
        if (!best || s_before (first, best, self)) {
            best = first;
            *from = heap;
        }
    }
    return best;
}

arb_task_t *
arb_queue_pop (arb_queue_t *self)
{
    s_warm (self, self->warm_low);
    if (self->aside_count == 0)
        return (arb_task_t *) arb_heap_pop (self->ready);
    arb_heap_t *from;
    arb_task_t *aside = s_first_aside (self, NULL, NULL, &from);
    arb_task_t *first = (arb_task_t *) arb_heap_peek (self->ready);
    if (!aside || (first && s_before (first, aside, self)))
        return (arb_task_t *) arb_heap_pop (self->ready);
    s_take_aside (self, from, aside);
    return aside;
}

arb_task_t *
arb_queue_pop_for (arb_queue_t *self, arb_queue_accept_fn *accept, void *arg)
{
    arb_heap_t *from;
    arb_task_t *aside = s_first_aside (self, accept, arg, &from);
    arb_task_t *first;
    //  a task set aside here goes to a name accept refuses: the first of
    //  the accepted names stays what it was
    while ((s_warm (self, self->warm_low), first = (arb_task_t *) arb_heap_peek (self->ready))
           && (!aside || s_before (first, aside, self))) {
        arb_heap_pop (self->ready);
        if (accept (arg, first->name))
            return first;
        s_set_aside (self, first);
    }
    if (aside)
        s_take_aside (self, from, aside);
    return aside;
}

void
arb_queue_remove (arb_queue_t *self, arb_task_t *task)
{
    if (task->aside)
        s_take_aside (self, (arb_heap_t *) zhashx_lookup (self->aside, task->name), task);
    else
        arb_heap_remove (self->ready, task);
}

size_t
arb_queue_size (arb_queue_t *self)
{
    return arb_heap_size (self->ready) + self->aside_count + self->cold;
}

size_t
arb_queue_hot_size (arb_queue_t *self)
{
    return arb_heap_size (self->ready) + self->aside_count;
}

//  Reads cold tasks back until it holds want hot ready ones (or none is
//  cold) and its first hot task comes before every cold one.
static void
s_warm (arb_queue_t *self, size_t want)
{
    while (self->cold && self->warm) {
        arb_task_t *first = (arb_task_t *) arb_heap_peek (self->ready);
        bool behind = first && !s_before_cold (self, first);
        if (arb_queue_hot_size (self) >= want && !behind)
            return;
        uint64_t cold = self->cold, seq = self->cold_seq;
        int32_t priority = self->cold_priority;
        self->warm (self->warm_arg, self);
        if (self->cold == cold && self->cold_seq == seq && self->cold_priority == priority)
            return;  //  the journal failed: the broker halts
    }
}

size_t
arb_queue_aside_count (arb_queue_t *self)
{
    return self->aside_count;
}

size_t
arb_queue_first (arb_queue_t *self,
                 arb_task_t **tasks,
                 size_t max,
                 size_t scan,
                 bool (*keep) (void *task, void *arg),
                 void *arg)
{
    s_warm (self, max);
    //  the tasks set aside are in their names' heaps, in the same order
    size_t count = 1 + (self->aside ? zhashx_size (self->aside) : 0);
    arb_heap_t **heaps = (arb_heap_t **) malloc (count * sizeof (arb_heap_t *));
    heaps[0] = self->ready;
    count = 1;
    for (arb_heap_t *heap = self->aside ? (arb_heap_t *) zhashx_first (self->aside) : NULL; heap;
         heap = (arb_heap_t *) zhashx_next (self->aside))
        heaps[count++] = heap;
    size_t found = arb_heap_first (heaps, count, (void **) tasks, max, scan, keep, arg);
    free (heaps);
    //  a hot task behind the first cold one (read back by id) may not
    //  show before the cold ones: read on until none shows early
    for (size_t i = 0; i < found && self->cold && self->warm; i++)
        if (!s_before_cold (self, tasks[i])) {
            uint64_t cold = self->cold, seq = self->cold_seq;
            int32_t priority = self->cold_priority;
            self->warm (self->warm_arg, self);
            if (self->cold == cold && self->cold_seq == seq && self->cold_priority == priority)
                return i;  //  the journal failed: the broker halts
            return arb_queue_first (self, tasks, max, scan, keep, arg);
        }
    return found;
}

uint64_t
arb_queue_oldest_ms (arb_queue_t *self, uint64_t now_ms)
{
    uint64_t since = self->ready_first ? self->ready_first->listed_ms : UINT64_MAX;
    if (self->cold && self->cold_since_ms < since)
        since = self->cold_since_ms;
    return since < now_ms ? now_ms - since : 0;
}

void
arb_queue_link_task (arb_queue_t *self, arb_task_t *task)
{
    task->queue_prev = NULL;
    task->queue_next = self->tasks;
    if (self->tasks)
        self->tasks->queue_prev = task;
    self->tasks = task;
}

void
arb_queue_unlink_task (arb_queue_t *self, arb_task_t *task)
{
    if (task->queue_prev)
        task->queue_prev->queue_next = task->queue_next;
    else if (self->tasks == task)
        self->tasks = task->queue_next;
    if (task->queue_next)
        task->queue_next->queue_prev = task->queue_prev;
    task->queue_prev = task->queue_next = NULL;
}

arb_task_t *
arb_queue_first_task (arb_queue_t *self)
{
    return self->tasks;
}

//  How far a task that became ready earlier than those last listed is
//  placed from the list's end, then from its front (arb_queue_link_ready):
//  bounds, so that a link stays cheap; past both the order is loose in the
//  middle, and the front, which the queue's age reads, is right.
#define S_READY_WALK  32
#define S_READY_REACH 512

void
arb_queue_link_ready (arb_queue_t *self, arb_task_t *task)
{
    arb_task_t *prev = self->ready_last;
    int steps = 0;
    for (; prev && prev->listed_ms > task->listed_ms && steps < S_READY_WALK; steps++)
        prev = prev->ready_prev;
    if (prev && prev->listed_ms > task->listed_ms) {
        //  further back than the walk (tasks given back, oldest first,
        //  behind many newer ones: a Kestrel queue's prefetched items):
        //  from the front, after the older ones there
        prev = NULL;
        for (arb_task_t *t = self->ready_first;
             t && t->listed_ms <= task->listed_ms && steps < S_READY_WALK + S_READY_REACH;
             t = t->ready_next, steps++)
            prev = t;
    }
    arb_task_t *next = prev ? prev->ready_next : self->ready_first;
    task->ready_prev = prev;
    task->ready_next = next;
    if (prev)
        prev->ready_next = task;
    else
        self->ready_first = task;
    if (next)
        next->ready_prev = task;
    else
        self->ready_last = task;
}

void
arb_queue_unlink_ready (arb_queue_t *self, arb_task_t *task)
{
    if (!task->ready_prev && self->ready_first != task)
        return;  //  not linked
    if (task->ready_prev)
        task->ready_prev->ready_next = task->ready_next;
    else
        self->ready_first = task->ready_next;
    if (task->ready_next)
        task->ready_next->ready_prev = task->ready_prev;
    else
        self->ready_last = task->ready_prev;
    task->ready_prev = task->ready_next = NULL;
}

arb_queue_settings_t *
arb_queue_settings (arb_queue_t *self)
{
    return &self->settings;
}

uint64_t *
arb_queue_counts (arb_queue_t *self)
{
    return self->counts;
}

uint64_t *
arb_queue_ready_bytes (arb_queue_t *self)
{
    return &self->ready_bytes;
}

uint64_t
arb_queue_cold_bytes (arb_queue_t *self)
{
    return self->cold_bytes;
}

arb_limit_t *
arb_queue_limit (arb_queue_t *self)
{
    return &self->limit;
}

//  ---------------------------------------------------------------------
//  The cold backlog

void
arb_queue_set_warm (arb_queue_t *self, arb_queue_warm_fn *warm, void *arg, size_t low)
{
    self->warm = warm;
    self->warm_arg = arg;
    self->warm_low = low;
}

bool
arb_queue_keeps_cold (arb_queue_t *self)
{
    return self->warm && self->aging_ms == 0;
}

uint64_t
arb_queue_seq (arb_queue_t *self, uint64_t id, bool exact)
{
    if (id > self->seq_id || exact) {
        if (id > self->seq_id) {
            self->seq_id = id;
            self->seq_n = 0;
        }
        return id << ARB_SEQ_SHIFT;
    }
    if (self->seq_n < (1ull << ARB_SEQ_SHIFT) - 1)
        self->seq_n++;
    return (self->seq_id << ARB_SEQ_SHIFT) | self->seq_n;
}

uint64_t
arb_queue_cold (arb_queue_t *self)
{
    return self->cold;
}

void
arb_queue_cold_from (arb_queue_t *self, int32_t *priority, uint64_t *id)
{
    *priority = self->cold_priority;
    *id = (self->cold_seq + (1ull << ARB_SEQ_SHIFT) - 1) >> ARB_SEQ_SHIFT;
}

void
arb_queue_note_hot (arb_queue_t *self, arb_task_t *task)
{
    //  alone in memory (it was just pushed): the bound starts again. The
    //  bound only chooses which new tasks go cold; the order never rests
    //  on it (a pop reads cold tasks back before any hot one behind them)
    if (arb_queue_hot_size (self) <= 1)
        self->hot_last_set = false;
    if (!self->hot_last_set
        || s_key_before (self->hot_last_priority, self->hot_last_seq, task->priority, task->seq)) {
        self->hot_last_set = true;
        self->hot_last_priority = task->priority;
        self->hot_last_seq = task->seq;
    }
}

//  The last key of the hot ready tasks, but those fresh ones not yet
//  looked at (arb_sched's settle): an exact bound again.
static void
s_last_again (arb_queue_t *self)
{
    self->hot_last_set = false;
    for (size_t i = 0; i < arb_heap_size (self->ready); i++) {
        arb_task_t *task = (arb_task_t *) arb_heap_at (self->ready, i);
        if (!task->fresh)
            arb_queue_note_hot (self, task);
    }
    for (arb_heap_t *heap = self->aside ? (arb_heap_t *) zhashx_first (self->aside) : NULL; heap;
         heap = (arb_heap_t *) zhashx_next (self->aside))
        for (size_t i = 0; i < arb_heap_size (heap); i++)
            arb_queue_note_hot (self, (arb_task_t *) arb_heap_at (heap, i));
}

size_t *
arb_queue_fresh (arb_queue_t *self)
{
    return &self->fresh;
}

bool
arb_queue_may_freeze (arb_queue_t *self, arb_task_t *task, size_t hot_max)
{
    if (!arb_queue_keeps_cold (self) || task->aside || task->head
        || task->ready_slot == ARB_HEAP_NONE || task->seq != task->id << ARB_SEQ_SHIFT)
        return false;
    if (self->cold)
        return !s_key_before (task->priority, task->seq, self->cold_priority, self->cold_seq);
    //  the hot tasks before it: all but it and the fresh ones after it
    if (arb_queue_hot_size (self) < hot_max + 1 + self->fresh)
        return false;
    if (self->hot_last_set
        && !s_key_before (self->hot_last_priority, self->hot_last_seq, task->priority, task->seq)
        && arb_queue_hot_size (self) > 2 * hot_max + self->fresh)
        s_last_again (self);  //  the bound may be stale: tasks left since
    return !self->hot_last_set
           || s_key_before (self->hot_last_priority, self->hot_last_seq, task->priority, task->seq);
}

void
arb_queue_freeze (arb_queue_t *self, arb_task_t *task)
{
    arb_heap_remove (self->ready, task);
    arb_queue_unlink_ready (self, task);
    if (self->cold == 0) {
        self->cold_priority = task->priority;
        self->cold_seq = task->seq;
        self->cold_since_ms = task->listed_ms;
    }
    else if (task->listed_ms < self->cold_since_ms)
        self->cold_since_ms = task->listed_ms;
    self->cold++;
    self->cold_bytes += task->payload_size;
}

void
arb_queue_add_cold (
    arb_queue_t *self, int32_t priority, uint64_t id, uint32_t payload_size, uint64_t ready_ms)
{
    uint64_t seq = id << ARB_SEQ_SHIFT;
    if (self->cold == 0 || s_key_before (priority, seq, self->cold_priority, self->cold_seq)) {
        self->cold_priority = priority;
        self->cold_seq = seq;
    }
    if (self->cold == 0 || ready_ms < self->cold_since_ms)
        self->cold_since_ms = ready_ms;
    self->cold++;
    self->cold_bytes += payload_size;
}

void
arb_queue_thaw (arb_queue_t *self, arb_task_t *task)
{
    assert (self->cold > 0);
    self->cold--;
    //  the row's size, as the record had it when it went cold (unless the
    //  file was changed under the broker: never below 0)
    self->cold_bytes -=
        task->payload_size < self->cold_bytes ? task->payload_size : self->cold_bytes;
    //  the cold tasks left came after it (the same priority: later ids,
    //  later submits): no older than it, a bound that stays below them
    if (task->listed_ms > self->cold_since_ms)
        self->cold_since_ms = task->listed_ms;
    arb_queue_push (self, task);
    arb_queue_note_hot (self, task);
}

void
arb_queue_cold_read (arb_queue_t *self, int32_t priority, uint64_t id, bool more)
{
    self->cold_priority = priority;
    self->cold_seq = (id << ARB_SEQ_SHIFT) + 1;
    if (!more && self->cold) {
        zsys_warning ("queue: %" PRIu64 " cold tasks not found in the journal queue=%s", self->cold,
                      self->name);
        self->cold = 0;
        self->cold_bytes = 0;
    }
}

void
arb_queue_drop_cold (arb_queue_t *self)
{
    self->cold = 0;
    self->cold_bytes = 0;
}

bool
arb_queue_is_idle (arb_queue_t *self)
{
    for (int state = 0; state <= ARB_STATE_MAX; state++)
        if (self->counts[state])
            return false;
    return arb_queue_size (self) == 0 && self->consumer_count == 0 && !self->dirty
           && !arb_queue_has_settings (self) && !self->tasks && self->limit.running == 0;
}

bool
arb_queue_has_settings (arb_queue_t *self)
{
    const arb_queue_settings_t *settings = &self->settings;
    return settings->paused || settings->retention_ms || settings->on_failure || settings->declared
           || arb_queue_is_bounded (self) || settings->reject || arb_limit_is_set (&self->limit);
}

bool
arb_queue_is_bounded (arb_queue_t *self)
{
    return self->settings.max_ready || self->settings.max_ready_bytes;
}

uint64_t *
arb_queue_dropped (arb_queue_t *self)
{
    return &self->dropped;
}

bool
arb_queue_is_over_bound (arb_queue_t *self)
{
    uint64_t ready = self->counts[ARB_STATE_READY];
    return ready
           && ((self->settings.max_ready && ready > self->settings.max_ready)
               || (self->settings.max_ready_bytes
                   && self->ready_bytes > self->settings.max_ready_bytes));
}

void
arb_queue_count_done (arb_queue_t *self, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000;
    size_t slot = sec % ARB_DONE_RING;
    if (self->done_sec[slot] != sec) {
        self->done_sec[slot] = sec;
        self->done[slot] = 0;
    }
    self->done[slot]++;
}

uint64_t
arb_queue_done_last_minute (arb_queue_t *self, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000;
    uint64_t total = 0;
    for (size_t i = 0; i < ARB_DONE_RING; i++)
        if (self->done_sec[i] + ARB_DONE_RING > sec)
            total += self->done[i];
    return total;
}

void
arb_queue_done_seconds (arb_queue_t *self, uint64_t now_ms, uint64_t *counts)
{
    uint64_t sec = now_ms / 1000;
    for (size_t i = 0; i < ARB_DONE_RING; i++) {
        uint64_t at = sec + 1 + i - ARB_DONE_RING;  //  oldest first, now last
        size_t slot = at % ARB_DONE_RING;
        counts[i] = self->done_sec[slot] == at ? self->done[slot] : 0;
    }
}

void
arb_queue_add_consumer (arb_queue_t *self, void *consumer)
{
    self->consumers = (void **) arb_array_grow (self->consumers, self->consumer_count,
                                                &self->consumer_capacity, sizeof (void *));
    self->consumers[self->consumer_count++] = consumer;
}

void
arb_queue_remove_consumer (arb_queue_t *self, void *consumer)
{
    for (size_t i = 0; i < self->consumer_count; i++)
        if (self->consumers[i] == consumer) {
            memmove (&self->consumers[i], &self->consumers[i + 1],
                     (self->consumer_count - i - 1) * sizeof (void *));
            self->consumer_count--;
            if (self->consumer_next > i)
                self->consumer_next--;
            return;
        }
}

size_t
arb_queue_consumer_count (arb_queue_t *self)
{
    return self->consumer_count;
}

void *
arb_queue_consumer_at (arb_queue_t *self, size_t index)
{
    return index < self->consumer_count ? self->consumers[index] : NULL;
}

void *
arb_queue_next_consumer (arb_queue_t *self)
{
    if (self->consumer_count == 0)
        return NULL;
    if (self->consumer_next >= self->consumer_count)
        self->consumer_next = 0;
    return self->consumers[self->consumer_next++];
}

void
arb_queue_keep_turn (arb_queue_t *self)
{
    if (self->consumer_next > 0)
        self->consumer_next--;
}

bool
arb_queue_dirty (arb_queue_t *self)
{
    return self->dirty;
}

void
arb_queue_set_dirty (arb_queue_t *self, bool dirty)
{
    self->dirty = dirty;
}

void
arb_queue_hold (arb_queue_t *self, uint64_t until_ms)
{
    self->held_until = until_ms;
}

uint64_t
arb_queue_held_until (arb_queue_t *self)
{
    return self->held_until;
}
