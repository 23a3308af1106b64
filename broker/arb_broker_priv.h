/*  arb_broker_priv.h — the broker's state, shared by its three files:

      arb_broker.c         the loop: turns, group commit, sending, start-up
      arb_broker_client.c  client verbs: submit, status, list, watch, ...
      arb_broker_worker.c  worker verbs and the task lifecycle: leases,
                           results, failures and retries, timeouts, lost
                           workers
      arb_broker_flow.c    workflows: dependencies, fan-out, routing

    Not for use outside broker/.
*/

#ifndef ARB_BROKER_PRIV_H
#define ARB_BROKER_PRIV_H

#include "arb_broker.h"
#include "arb_sched.h"
#include "arb_heap.h"
#include "arb_outbox.h"

struct _arb_broker_t {
    arb_broker_config_t config;
    zsock_t *router;         //  owned
    arb_journal_t *journal;  //  owned
    arb_sched_t *sched;      //  owned
    arb_limits_t limits;
    uint64_t epoch;       //  broker start count
    uint64_t next_id;     //  last task id given out
    uint64_t started_ms;  //  Unix ms at start
    arb_clock_t clock;    //  the current turn's time
    uint64_t rng;         //  xorshift state, for backoff jitter
    bool fatal;           //  the journal failed: stop after this turn

    arb_outbox_t *outbox;       //  owned: what the turn sends after its commit
    arb_msg_t *take_reply;      //  borrowed: the DISPATCH answering a TAKE, while one runs
    arb_vec_t settle;           //  (id, state) pairs of ended tasks whose dependents must hear;
                                //  state 0: a fan-out copy of task id ended
    bool settling;              //  draining settle now
    uint64_t cancelled;         //  tasks cancelled since start (requests count theirs by it)
    uint64_t next_liveness_ms;  //  monotonic: next check of silent workers
    uint64_t next_sweep_ms;     //  monotonic: next retention sweep
};


//  arb_broker.c
void arb_broker_fail (arb_broker_t *self, const char *what);
uint64_t arb_broker_random (arb_broker_t *self);
//  Frees the queues that hold nothing (no task, consumer, setting, count).
void arb_broker_forget_idle_queues (arb_broker_t *self);

//  arb_broker_client.c
void arb_broker_on_client (arb_broker_t *self, arb_msg_t *msg);

//  arb_broker_worker.c
void arb_broker_on_worker (arb_broker_t *self, arb_msg_t *msg);
int arb_broker_dispatch_hook (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task);
void arb_broker_expired_hook (void *arg, arb_task_t *task);
void arb_broker_fire_timers (arb_broker_t *self);
void arb_broker_check_workers (arb_broker_t *self);
void arb_broker_send_dispatches (arb_broker_t *self);

//  Ends a task in a final state: journals it, tells its watchers, frees it.
//  Takes the result frame, if any (it goes to the last watcher as is).
void arb_broker_finish (
    arb_broker_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p);

//  Cancels a task in any unfinished state (a running one is stopped on its
//  worker). Returns its state after.
int arb_broker_cancel_task (arb_broker_t *self, arb_task_t **task_p, const char *why);

//  arb_broker_flow.c
//  Checks the workflow parts of a SUBMIT (dependencies, cycles, input,
//  endpoints). Returns 0, or -1 with why set.
typedef struct _arb_dag_t arb_dag_t;
int
arb_broker_check_flow (arb_broker_t *self, arb_msg_t *msg, arb_dag_t *dag, char *why, size_t size);
//  Makes the endpoint copies of a fan-out task (journaled and added).
int arb_broker_fan_out (arb_broker_t *self,
                        arb_task_t *origin,
                        const arb_task_spec_t *spec,
                        zframe_t *payload,
                        zframe_t *headers);
//  At start: recomputes every waiting task (parents, fan-out copies).
void arb_broker_resume_waiting (arb_broker_t *self);
//  Recomputes a waiting task from its parents in the journal.
void arb_broker_recount (arb_broker_t *self, arb_task_t **task_p);
//  Tells a task's dependents (and its fan-out origin) that it ended.
void arb_broker_after_finish (
    arb_broker_t *self, uint64_t id, int state, bool has_children, uint64_t origin);
//  While held, dependents hear of ended tasks only at the release.
void arb_broker_hold_settle (arb_broker_t *self);
void arb_broker_release_settle (arb_broker_t *self);
//  Cancels the unfinished tasks of a flow: all of a DAG or pipe; a
//  group's members (and what waits on them, but its finalizer).
void arb_broker_cancel_flow (arb_broker_t *self, uint64_t flow, bool group);
//  Cancels a task with its descendants (over on_success and on_failure
//  edges) and its fan-out copies. Returns the task's state after.
int arb_broker_cancel_tree (arb_broker_t *self, arb_task_t **task_p, const char *why);
//  Adds the parents' results of a task to its dispatch (and its parent's
//  result as its input, for pipes). 0 or -1.
int arb_broker_fill_parents (arb_broker_t *self,
                             arb_task_t *task,
                             arb_msg_t *msg,
                             arb_dispatch_task_t *d);
void arb_broker_on_emit (arb_broker_t *self, arb_session_t *session, arb_msg_t *msg);
//  Enqueues a succeeding task's staged EMIT items. 0 or -1.
int arb_broker_commit_emits (arb_broker_t *self, arb_task_t *task);

#endif
