/*  arb_sched_priv.h — the scheduler's state, shared by its two files:
    arb_sched.c (queues, tasks, sessions, timers) and arb_sched_dispatch.c
    (leases and dispatch); see arb_sched.h.

    Not for use outside them: the layers above see only arb_sched.h.
*/

#ifndef ARB_SCHED_PRIV_H
#define ARB_SCHED_PRIV_H

#include "arb_heap.h"
#include "arb_sched.h"
#include "arb_taskmap.h"
#include "arb_vec.h"

//  A task name with a limit, and its ready tasks waiting for it.
typedef struct {
    char *name;  //  owned
    arb_limit_t limit;
    zlistx_t *parked;  //  owned list of borrowed tasks, in the order they were parked
} arb_sched_name_t;

//  A rate limit waiting for its next token: a queue's or a name's.
typedef struct {
    arb_queue_t *queue;      //  borrowed, or NULL
    arb_sched_name_t *name;  //  borrowed, or NULL
    uint64_t wake_ms;        //  monotonic
} arb_sched_wake_t;

struct _arb_sched_t {
    arb_sched_config_t config;
    arb_sched_hooks_t hooks;
    arb_taskmap_t tasks;  //  id -> owned task
    zhashx_t *queues;     //  name -> owned queue
    zhashx_t *sessions;   //  hex routing id -> owned session
    zhashx_t *names;      //  task name -> owned arb_sched_name_t, for names with a limit
    zhashx_t *interned;   //  task name -> owned s_interned_t (keys borrowed from it)
    arb_heap_t *timers;   //  borrowed tasks by timer_ms
    arb_queue_t **dirty;  //  owned array of borrowed queues to visit
    size_t dirty_count;
    size_t dirty_capacity;
    arb_sched_wake_t *wakes;  //  owned array: rate-limited queues
    size_t wake_count;
    uint64_t lease_seq;   //  leases handed out since start
    uint64_t cache_used;  //  bytes the payload cache holds, as the allocator counts them
    arb_vec_t fresh;      //  ids of fresh tasks to settle (arb_sched.h)
    uint64_t cold;        //  cold tasks of all queues
    bool loading;         //  start-up: seqs are exact
    uint32_t turn;        //  commits so far, plus one: the transaction under way (never 0)
    bool early;           //  the pass under way is arb_sched_dispatch_early's
    uint32_t loosened;    //  the turn a limit, pause or setting was loosened in, or 0
    arb_task_t *spare;    //  owned: freed task records kept for the next, through queue_next
    size_t spare_count;
    //  the queue and the name looked up last (borrowed; NULL when gone):
    //  most tasks of a turn bear the ones before them
    arb_queue_t *last_queue;
    void *last_name;
};

//  Moves a task to state, keeping its queue's counts (and ready bytes).
void arb_sched_set_state (arb_task_t *task, int state);

//  Marks a queue for the next dispatch pass, if it could dispatch.
void arb_sched_mark_dirty (arb_sched_t *self, arb_queue_t *queue);

//  A queue's or a name's settings, or the running count under a limit,
//  changed in this turn: the journal says otherwise until the commit, so
//  this turn's early pass hands out nothing (arb_sched_dispatch_early).
void arb_sched_loosened (arb_sched_t *self);

//  The limit entry of a task's name, or NULL (no names have limits: no lookup).
arb_sched_name_t *arb_sched_name_of (arb_sched_t *self, const char *name);

//  Takes a task out of its queue and the timers (not out of its lease).
void arb_sched_detach (arb_sched_t *self, arb_task_t *task);

//  Forgets the rate-limit wakes of a queue, or of a name.
void arb_sched_drop_wakes (arb_sched_t *self, arb_queue_t *queue, arb_sched_name_t *name);

//  Puts a name's parked tasks back into their queues, in their old places.
void arb_sched_unpark (arb_sched_t *self, arb_sched_name_t *entry);

#endif
