/*  arb_life_priv.h — the task lifecycle's state, shared by its four
    files (arb_life.c, arb_life_flow.c, arb_life_submit.c,
    arb_life_schedule.c; see arb_life.h).

    Not for use outside them: the layers above see only arb_life.h.
*/

#ifndef ARB_LIFE_PRIV_H
#define ARB_LIFE_PRIV_H

#include "arb_loglimit.h"
#include "arb_life.h"
#include "arb_vec.h"
#include "arb_watch.h"


struct _arb_life_t {
    arb_life_config_t config;
    arb_sched_t *sched;        //  owned
    arb_watch_t *watch;        //  owned: who hears of which task's end
    arb_journal_t *journal;    //  borrowed from the loop
    arb_outbox_t *outbox;      //  borrowed from the loop
    const arb_clock_t *clock;  //  borrowed: the turn's time
    uint64_t epoch;            //  broker start count
    uint64_t next_id;          //  last task id given out
    uint64_t rng;              //  xorshift state, for backoff jitter
    uint64_t cancelled;        //  tasks cancelled since start
    arb_tally_t tally;         //  tasks submitted, dispatched, finished since start (STATS)
    arb_loglimit_t late;       //  the late results and emits refused, logged
    arb_msg_t *take_reply;     //  borrowed: the DISPATCH answering a TAKE, while one runs
    size_t take_bytes;         //  bytes of payloads and results in take_reply
    bool clean_start;          //  the previous run stopped cleanly and wrote its leases
    arb_vec_t settle;          //  (id, state) pairs of ended tasks whose dependents must hear;
                               //  state 0: a fan-out copy of task id ended
    bool settling;             //  draining settle now
    bool halted;               //  the journal failed: change nothing more
    bool journal_full;         //  the journal takes no writes: what must change, memory only
    bool epoch_unsaved;        //  the journal has not stored this run's epoch yet
    arb_vec_t unsaved;         //  ids of tasks whose delivery count only memory holds
    zhashx_t *schedules;       //  owned: schedule name -> arb_schedule_t (owned)
    uint64_t next_slot_ms;     //  Unix ms: the earliest next slot of a schedule; 0 none
};

//  arb_life.c

//  Ends a task in a final state: journals it, tells its watchers and
//  subscribers, frees it, then lets its flow hear of it. Takes the result
//  frame, if any (it goes to the last watcher as is).
void arb_life_finish (
    arb_life_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p);

//  A task has ended (its journal row says so, or it is gone): tells its
//  watchers and subscribers, frees it, then lets its flow hear of it.
void arb_life_ended (
    arb_life_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p);

//  A final task of queue leaves the journal: it is counted no more (queue
//  may be NULL).
void arb_life_uncount (arb_queue_t *queue, int state);

//  Frees the queues that hold nothing (no task, consumer, setting, count).
void arb_life_forget_idle_queues (arb_life_t *self);

//  Tells the watchers of task id (hot or cold) of its end in a DONE, and
//  forgets them. Takes the result frame, if any (the last watcher's).
void arb_life_tell_watchers (arb_life_t *self,
                             uint64_t id,
                             int state,
                             uint32_t attempts,
                             const char *error,
                             zframe_t **result_p);

//  Cancels a task in any unfinished state (a running one is stopped on its
//  worker). Returns its state after.
int arb_life_cancel_task (arb_life_t *self, arb_task_t **task_p, const char *why);

//  arb_life_submit.c

//  Whether a dead task died of a failed dependency rather than on its
//  own: it has parents and never ran (a started attempt or a lost lease
//  would count; a retry puts both back to 0).
bool arb_life_died_of_dependency (const arb_task_t *task);

//  What arb_life_bring_back takes.
typedef enum {
    ARB_BACK_ANY,         //  any dead task
    ARB_BACK_OWN,         //  one that died on its own
    ARB_BACK_DEPENDENCY,  //  one that died of a failed dependency
} arb_back_t;

//  Brings task id back from the journal if it is dead (no fan-out task)
//  and of the kind asked: waiting, its attempts reset (its history kept),
//  with all its parents counted as pending until it is counted again
//  (arb_life_recount). *task is it, or NULL. 0, or -1 if the journal failed.
int arb_life_bring_back (arb_life_t *self, uint64_t id, arb_back_t which, arb_task_t **task);

//  arb_life_flow.c

//  The endpoints a fan-out task of spec goes to (worker names, owned by
//  the caller): those it names, or for a broadcast the workers serving
//  its queue now that run its name. The origin's copies are their count,
//  set before its row is stored, so that the journal has it.
zlistx_t *
arb_life_fan_out_targets (arb_life_t *self, arb_task_t *origin, const arb_task_spec_t *spec);

//  Makes and stores the endpoint copies of a fan-out task, one per name
//  of targets (arb_life_fan_out_targets; borrowed), after its own row,
//  which counts them (copies). 0 or -1.
int arb_life_fan_out (arb_life_t *self,
                      arb_task_t *origin,
                      zlistx_t *targets,
                      const arb_task_spec_t *spec,
                      zframe_t *payload,
                      arb_bin_t headers);

//  Recomputes a waiting task from its parents in the journal (at start,
//  and for dependencies on tasks that existed before their batch).
void arb_life_recount (arb_life_t *self, arb_task_t **task_p);

//  At start: every waiting task looks at its parents (or copies) again.
void arb_life_resume_waiting (arb_life_t *self);

//  Tells a task's dependents (and its fan-out origin) that it ended.
void arb_life_after_finish (
    arb_life_t *self, uint64_t id, int state, bool has_children, uint64_t origin);

//  Adds the parents' results of a task to its dispatch d in msg (and its
//  parent's result as its input, for pipes). 0 or -1.
int
arb_life_fill_parents (arb_life_t *self, arb_task_t *task, arb_msg_t *msg, arb_dispatch_task_t *d);

//  Enqueues a succeeding task's staged EMIT items. 0, or -1 (halted).
int arb_life_commit_emits (arb_life_t *self, arb_task_t *task);

//  After a retry brought back the first `roots` tasks of batch (ids;
//  arb_life_bring_back): appends and brings back their descendants that
//  died of a failed dependency, makes the waiting tasks that counted any
//  of them as ended wait again, then counts every one of them: a root
//  waits for its parents that are not final, or is ready; a descendant
//  follows its edges (arb_life_recount).
void arb_life_reopen (arb_life_t *self, arb_vec_t *batch, size_t roots);

//  arb_life_schedule.c

//  Fires the schedules' slots that are due (with arb_life_fire_timers).
void arb_life_fire_schedules (arb_life_t *self);

//  The scheduler's hooks for its cold backlog (arb_sched.h), in
//  arb_life_submit.c.
void arb_life_warm_hook (void *arg, arb_queue_t *queue, int32_t priority, uint64_t id, size_t max);
arb_task_t *arb_life_thaw_hook (void *arg, uint64_t id);

#endif
