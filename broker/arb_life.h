/*  arb_life.h — the task lifecycle: every change to a task, from its
    submission to its end, and what follows from its end.

    The broker's second layer (docs/broker.md, "Layers"). It owns the
    scheduler, makes every change of task state through it and through
    the journal (inside the turn's transaction), and writes what each
    change tells peers into the outbox: DONE to watchers, EVENT to
    subscribers, STOP to workers. It is given the turn's clock. The verbs
    and the loop above call it; it never calls them.

    An attempt ends in one of five ways, and each has its own rule:

      succeeded   final; the result is stored and sent to the watchers
      failed      the handler said so, or the attempt timed out: counts
                  an attempt; then the queue's on_failure policy: retry
                  (after the task's backoff while attempts remain, else
                  dead), head or dead; every error is kept in the task's
                  bounded history (the first and the last attempts)
                  head: back to the head of its queue once a backoff has
                  passed (the task's own, else 100 ms doubling per
                  failure up to 30 s, jittered), other tasks going past
                  it meanwhile; dead after its max attempts if it has
                  retries, else "quarantined" after max_head_failures
                  failures in a row, so a poison item neither spins nor
                  comes back for ever
      released    given back (Kestrel abort, AMQP nack, worker leaving):
                  to the head of its queue, no attempt counted
      lost        its worker died: not the task's fault, so no attempt is
                  counted, but `lost` is; at max_lost the task is dead
                  ("quarantined"): one poison task cannot take down every
                  worker in turn
      cancelled   final; a running task is stopped on its worker

    Whatever ends an attempt, the lease ends with it, so a result that
    arrives later quotes a lease that is no longer current and is refused,
    with one exception: a worker that still runs a task nobody else has
    taken since (the broker restarted, or had given the worker up), or
    still keeps its result, may claim it back in its REGISTER, and the
    attempt goes on under a new lease (arb_life_register,
    arb_sched_can_adopt).

    When a task ends, its flow hears of it: its dependents (edges, groups,
    pipes) and its fan-out origin; see arb_life_flow.c for the rules.

    The module is four files over one private struct (arb_life_priv.h):
      arb_life.c         attempts and leases, worker sessions, timers,
                         dispatch, queue-wide operations
      arb_life_flow.c    the flow rules: dependencies, fan-out copies,
                         cancelling trees and flows, routed (EMIT) items
      arb_life_submit.c  tasks entering: submit, retry, load at start,
                         watchers
      arb_life_schedule.c  tasks entering on time: periodic schedules,
                         each slot submitted as SUBMIT would, with the
                         slot recorded in the same transaction
    A new lifecycle rule goes into one of these, with its entry point here.

    If the journal fails, the lifecycle halts (arb_life_halt): it changes
    nothing more, and the loop abandons the turn. If the disk was at fault
    (no space, an I/O error writing), the loop replaces the lifecycle with
    one rebuilt from the journal (arb_life_take_over) and goes on without
    writes until the disk takes them again (arb_life_set_journal_full);
    else it stops.

    Callers may read the scheduler (arb_life_sched: lookups and walks) but
    change it only through the functions below. Runs in the loop thread.
*/

#ifndef ARB_LIFE_H
#define ARB_LIFE_H

#include "arb_clock.h"
#include "arb_dag.h"
#include "arb_journal.h"
#include "arb_outbox.h"
#include "arb_schedule.h"
#include "arb_sched.h"
#include "arb_tally.h"

typedef struct _arb_life_t arb_life_t;

typedef struct {
    uint64_t aging_ms;           //  ms of waiting worth one priority level; 0 strict
    uint32_t liveness_ms;        //  a worker silent this long is dead
    uint64_t cache_bytes;        //  payloads kept in memory for dispatch
    size_t hot_max;              //  ready tasks a queue keeps in memory (arb_sched.h); 0: default
    uint32_t max_lost;           //  leases lost before a task is quarantined
    uint32_t max_head_failures;  //  failures in a row at the head of a queue before quarantine
    uint64_t retention_ms;       //  finished tasks kept this long by default
    uint64_t dead_retention_ms;  //  dead tasks kept this long by default
    uint64_t epoch;              //  0: count this start in the journal; else this run's epoch,
                                 //  which the journal learns later (arb_life_save_deferred)
    //  Called within long work (a request naming many tasks: seconds on a
    //  loaded machine; arb_life_pulse), so that the loop can keep its worker
    //  sessions meanwhile (arb_broker sends the heartbeats that fall due,
    //  and nothing else). NULL: none.
    void (*pulse) (void *arg);
    void *pulse_arg;  //  borrowed: the pulse's
} arb_life_config_t;

//  ---------------------------------------------------------------------
//  Start-up

//  Starts the lifecycle over a journal: counts this start (the epoch; or
//  takes config->epoch, writing nothing), finds the last task id given out
//  and makes an empty scheduler. The journal, outbox and clock are
//  borrowed. NULL if the journal failed.
arb_life_t *arb_life_new (const arb_life_config_t *config,
                          arb_journal_t *journal,
                          arb_outbox_t *outbox,
                          const arb_clock_t *clock);

//  Destroys the lifecycle and its scheduler.
void arb_life_destroy (arb_life_t **self_p);

//  Long work (a request naming up to 100,000 tasks) calls this with the
//  index of each task it goes through: every 256th runs the config's pulse,
//  so that the loop keeps its worker sessions meanwhile.
void arb_life_pulse (arb_life_t *self, size_t i);

//  Loads the unfinished tasks and the final counts from the journal, then
//  lets every waiting task look at its parents again. Sets *count to the
//  tasks loaded. 0, or -1 if the journal failed.
int arb_life_load (arb_life_t *self, size_t *count);

//  Hands out no ready task before until_ms (monotonic), so that workers
//  may claim back what they still run (arb_sched_hold_ready).
void arb_life_hold_ready (arb_life_t *self, uint64_t until_ms);

//  Deliveries. Dispatch writes nothing, so the journal's count of a
//  task's deliveries (tasks.delivered) is as of its last write: the end
//  of a lease (result, release, loss, timeout) writes it, and so does a
//  clean stop for the leases still running (arb_life_stop). After a
//  crash, the journal cannot tell a ready task that was running from one
//  that never left: arb_life_count_stop_deliveries, at start after
//  arb_life_load, counts one more delivery for each ready task (a task
//  has one lease at most), in memory and the journal, erring towards
//  "delivered before" as RabbitMQ does: a count is never below the true
//  one. Sets *count to how many it counted (0 after a clean stop). 0, or
//  -1 if the journal failed.
int arb_life_count_stop_deliveries (arb_life_t *self, size_t *count);

//  At a clean stop (the loop commits after): journals the delivery count
//  of every running task and that this run stopped cleanly. 0, or -1 if
//  the journal failed.
int arb_life_stop (arb_life_t *self);

//  The scheduler, borrowed, for lookups and walks only.
arb_sched_t *arb_life_sched (arb_life_t *self);

//  Whether a broadcast of task name to queue would reach a worker now:
//  one serves the queue and runs the name (a SUBMIT of one that reaches
//  none is refused: it would have no answer to wait for).
bool arb_life_broadcast_reaches (arb_life_t *self, const char *queue, const char *name);

//  Watches held: (task, client) pairs waiting for a DONE.
size_t arb_life_watch_count (arb_life_t *self);
//  Whether identity (borrowed) watches a task; forgets its watches (it
//  hears of no task's end), returning how many there were.
bool arb_life_is_watching (arb_life_t *self, zframe_t *identity);
size_t arb_life_unwatch (arb_life_t *self, zframe_t *identity);
//  Forgets the watches of count identities (borrowed) at once: peers whose
//  connections are gone (arb_wire_next_gone). Returns how many there were.
size_t arb_life_unwatch_peers (arb_life_t *self, zframe_t **identities, size_t count);
uint64_t arb_life_epoch (arb_life_t *self);
uint64_t arb_life_last_id (arb_life_t *self);

//  The journal failed during what: logs it once and halts; nothing more
//  changes, and the loop abandons the turn.
void arb_life_halt (arb_life_t *self, const char *what);
bool arb_life_is_halted (arb_life_t *self);

//  ---------------------------------------------------------------------
//  The journal full (docs/broker.md, "Disk full")

//  Takes over from old, a lifecycle whose memory may say more than the
//  journal (a turn whose commit failed), what the journal does not hold
//  and is still true; self was just loaded from the journal. Watchers
//  watch again (a task that is final in the journal is told at once; one
//  the journal does not know was never acknowledged: its watch goes).
//  Delivery counts never go down: a task keeps old's count, and a ready
//  task that old no longer had (its lease ended in the failed turn) counts
//  one more, as after a crash; both are journaled with
//  arb_life_save_deferred. The counters since start go on. Sessions and
//  leases do not: their workers register again (410) and claim what they
//  run, as after a restart, since self's epoch is old's plus one. Destroys
//  old.
void arb_life_take_over (arb_life_t *self, arb_life_t **old_p);

//  While the journal is full (the loop takes no request that writes, fires
//  no timer and dispatches nothing), what must still change changes in
//  memory only: a task given back (BYE, a RESULT that cannot be stored)
//  is ready again, and its delivery count waits for
//  arb_life_save_deferred.
void arb_life_set_journal_full (arb_life_t *self, bool full);

//  Once the journal takes writes again: journals what waited, this run's
//  epoch if it was never written and the delivery counts kept in memory
//  only, in the turn's transaction. 0, or -1 (halted).
int arb_life_save_deferred (arb_life_t *self);

//  ---------------------------------------------------------------------
//  The turn (called by the loop)

//  Acts on every due timer: starts scheduled tasks, times out running
//  ones, expires ready ones that no worker took in time, fires the
//  schedules' due slots.
void arb_life_fire_timers (arb_life_t *self);

//  Monotonic ms of the next timer: a task's, or a schedule's next slot;
//  UINT64_MAX if none.
uint64_t arb_life_next_timer (arb_life_t *self);

//  How a worker session ends, and what becomes of its leases.
typedef enum {
    ARB_END_BYE,          //  the worker said BYE: released, no attempt counted
    ARB_END_LOST,         //  it fell silent: lost (counted in lost, not as attempts)
    ARB_END_OUT_OF_STEP,  //  the broker and the worker disagree on its leases: back to
                          //  the head, no attempt counted, claimable by the same worker
    ARB_END_SHUT_OUT,     //  its certificate lost the role: as out of step (the worker
                          //  did not fail; the caller logs it)
} arb_end_t;

//  Ends a worker session, its leases going as how says. Closes the session.
void arb_life_end_session (arb_life_t *self, arb_session_t *session, arb_end_t how);

//  A worker whose certificate lost the worker role: it gets nothing more
//  (its subscriptions end, no heartbeat goes to it), and its leases stay
//  until it falls silent past the liveness window (what it sends is
//  refused, 403, and renews nothing), then go back to the heads of their
//  queues, none lost (ARB_END_SHUT_OUT). Ending the session at once handed
//  its tasks to other workers while it still ran them; told 403, a worker
//  stops them (arbiter-worker and the Python worker exit). A session
//  holding no lease ends at once.
void arb_life_shut_out (arb_life_t *self, arb_session_t *session);

//  Removes up to batch final tasks past their retention from the journal,
//  and forgets the queues that hold nothing (no task, consumer or
//  setting). Returns how many tasks, or -1 (halted) if the journal failed.
int arb_life_sweep (arb_life_t *self, size_t batch);

//  Matches ready tasks with worker credit and sends one DISPATCH per
//  worker (after the commit: a dispatch writes nothing).
void arb_life_dispatch (arb_life_t *self);

//  The same before the turn's commit, for the tasks that were ready at
//  the last commit (arb_sched_dispatch_early): a worker's next tasks do
//  not wait for this turn's fsync. The DISPATCHes go at once.
void arb_life_dispatch_early (arb_life_t *self);

//  The turn's transaction is committed (what it made ready may go early).
void arb_life_committed (arb_life_t *self);

//  ---------------------------------------------------------------------
//  Tasks (called by the client and admin verbs)

//  Stores a checked SUBMIT (msg; dag over its tasks, or NULL when no task
//  has a ref or a dependency): new tasks, their edges, flow and fan-out
//  copies; a known key gives the first task. Fills reply (a SUBMITTED)
//  and, if asked, makes the sender watch every task.
//  0, or -1 if the journal failed (the caller halts).
int arb_life_submit (arb_life_t *self, arb_msg_t *msg, arb_dag_t *dag, arb_msg_t *reply);

//  Makes peer (a routing id of peer_size bytes) watch task id: it hears of
//  its end in a DONE (at once if the task is final). *found is false if
//  the journal knows no such task. 0, or -1 if the journal failed.
int
arb_life_watch (arb_life_t *self, uint64_t id, const uint8_t *peer, size_t peer_size, bool *found);

//  Cancels a task with its descendants (over on_success and on_failure
//  edges) and its fan-out copies. Returns the task's state after.
int arb_life_cancel_tree (arb_life_t *self, arb_task_t **task_p, const char *why);

//  Cancels the unfinished tasks of a flow: all of a DAG or pipe; a group's
//  members (and what waits on them, but its finalizer).
void arb_life_cancel_flow (arb_life_t *self, uint64_t flow, bool group);

//  Cancels every unfinished task of a queue, running ones too. The tasks
//  whose end nobody else waits for are journaled in one statement.
void arb_life_cancel_queue (arb_life_t *self, const char *queue);

//  Tasks cancelled since start (a request counts its own by the difference).
uint64_t arb_life_cancelled (arb_life_t *self);

//  The broker's counters since start (borrowed; the loop adds its commits).
arb_tally_t *arb_life_tally (arb_life_t *self);

//  Retries dead tasks (RETRY). Each of the n ids that names a dead task
//  (not a fan-out task; from index own_from on, not one that died of a
//  failed dependency) gets a new round of attempts, its history kept, and
//  revived[i] says so; it is ready, or waits for those of its parents
//  that are not final. Then what died because of them comes back: their
//  descendants over on_success edges that ended dead of a failed
//  dependency wait for their parents again (and die again at once if
//  another parent still failed them), and tasks still waiting that had
//  counted any of these as ended wait for them again. *count: the tasks
//  back (revived and reopened). 0, or -1 if the journal failed.
int arb_life_retry (arb_life_t *self,
                    const uint64_t *ids,
                    size_t n,
                    size_t own_from,
                    bool *revived,
                    uint64_t *count);

//  Deletes a final task from the journal with its history and edges, as
//  the retention sweep would (DELETE), unless tasks that have not ended
//  depend on it. Fills outcome: code 0 and the state it had; 404 if there
//  is no such task; 409 with its state if it has not ended, or if tasks
//  that have not ended wait for it. 0, or -1 if the journal failed.
int arb_life_delete (arb_life_t *self, uint64_t id, arb_outcome_info_t *outcome);

//  Deletes, as arb_life_delete, the final tasks that match filter's
//  state, queue and older_than_ms among the ARB_DELETE_MAX tasks after
//  filter->after_id in id order (so a request costs a bounded step, never
//  a walk of the journal); *count: how many, *last_id: the last id looked
//  at, *more: there may be more after it. 0, or -1 if the journal failed.
int arb_life_delete_matching (arb_life_t *self,
                              const arb_delete_body_t *filter,
                              uint32_t *count,
                              uint64_t *last_id,
                              bool *more);

//  Cancels every task of a queue that is not running (running tasks
//  finish), in memory and in one journal statement; visits only the
//  queue's own tasks. Returns how many were cancelled.
uint64_t arb_life_purge_queue (arb_life_t *self, const char *queue);

//  Deletes a queue: cancels its tasks as arb_life_cancel_queue does, then
//  removes every task of the queue from the journal (final ones too, with
//  their history) and forgets the queue in memory (settings, limits,
//  counts; it stays only while subscriptions name it). Its stored
//  settings and metadata are arb_settings_forget_queue's. Returns how
//  many tasks were cancelled.
uint64_t arb_life_delete_queue (arb_life_t *self, const char *queue);

//  Keeps a bounded queue (max_ready, max_ready_bytes: arb_queue_settings_t)
//  within its bounds once the n tasks of fresh (ids, in the order they
//  came; the tasks of a SUBMIT or routed items) have joined it, in the turn
//  that stored them, so nothing sees it over. With drop-head (AMQP's
//  x-max-length default) its oldest ready tasks go, in dispatch order; with
//  reject (Kestrel's full queue, AMQP's reject-publish) each fresh task
//  that does not fit with those before it does. Either way they end
//  cancelled, as CANCEL ends them (their watchers told); refused (if not
//  NULL) gets the ids of the fresh tasks refused. Also called when a bound
//  is set (fresh empty: only drop-head drops then). queue may be NULL.
//  Returns how many tasks ended: an ended parent may make children ready
//  (a DAG's always step), which the caller holds the bounds against again.
uint64_t arb_life_hold_bounds (
    arb_life_t *self, arb_queue_t *queue, const uint64_t *fresh, size_t n, arb_vec_t *refused);

//  Fills tasks with up to max ready tasks of a queue, borrowed, in the
//  order they would be handed out, without taking them: none from a
//  paused or held queue, none that has expired (arb_sched_peek). Returns
//  how many.
size_t arb_life_peek (arb_life_t *self, const char *queue, arb_task_t **tasks, size_t max);

//  ---------------------------------------------------------------------
//  Workers (called by the worker verbs)

//  The session of a worker that registers from identity: its existing one
//  with its credit gone (the worker announces its slots again; its leases
//  stay), or a new one. Takes back the tasks it says it still runs that
//  nobody has taken since, listing them in welcome (a WELCOME).
arb_session_t *arb_life_register (arb_life_t *self,
                                  zframe_t *identity,
                                  uint32_t reqid,
                                  const arb_register_body_t *body,
                                  arb_msg_t *welcome);

//  Adds credit to a subscription, or ends it (arb_sched_credit). 0, or -1
//  if a new subscription names no queue.
int arb_life_credit (arb_life_t *self, arb_session_t *session, const arb_credit_body_t *body);

//  Leases up to max ready tasks of queue to session outside its credit,
//  into reply (a DISPATCH), stopping once the reply holds ARB_REPLY_BYTES.
void arb_life_take (
    arb_life_t *self, arb_session_t *session, const char *queue, size_t max, arb_msg_t *reply);

//  The running task of a result item under session: its current lease
//  there. NULL, logged, for a late result whose lease has ended (a
//  worker that still holds a result of a lease it lost claims the task
//  again in its REGISTER instead).
arb_task_t *
arb_life_leased (arb_life_t *self, arb_session_t *session, const arb_result_item_t *item);

//  The attempt succeeded: enqueues its routed items and ends the task,
//  taking the result frame; or fails the attempt if an item was refused.
void arb_life_succeed (arb_life_t *self, arb_task_t **task_p, zframe_t **result_p);

//  The attempt failed (error says why): the queue's on_failure policy.
void arb_life_attempt_failed (arb_life_t *self, arb_task_t **task_p, const char *error);

//  The attempt is given back: the task goes to the head of its queue.
void arb_life_release (arb_life_t *self, arb_task_t *task);

//  Stages the routed items of an EMIT for their tasks' current leases
//  (taking their payloads); they are enqueued when the attempt succeeds.
void arb_life_emit (arb_life_t *self, arb_session_t *session, arb_emit_body_t *body);

//  A HEARTBEAT of session said busy (the tasks its worker holds). For a
//  worker registered with acks, the leases it has had must be among them:
//  those up to mark, the highest mark it read in the broker's HEARTBEATs
//  (every lease up to it went out before it); from a worker that says no
//  mark, those handed out before its heartbeat before last. If they
//  outnumber busy in two heartbeats in a row, a DISPATCH went missing on
//  its way (a connection that broke and came back): the session ends out
//  of step (ARB_END_OUT_OF_STEP) and true is returned; the caller answers
//  410, and the worker registers again, claiming what it does hold. Else
//  false.
bool arb_life_check_busy (arb_life_t *self, arb_session_t *session, uint32_t busy, uint64_t mark);

//  The socket did not take a DISPATCH (a TAKE's reply) for identity: its
//  n tasks were not delivered, and the session ends out of step with its
//  worker (see arb_life_check_busy).
void
arb_life_undelivered (arb_life_t *self, zframe_t *identity, const arb_held_t *leases, size_t n);

//  ---------------------------------------------------------------------
//  Periodic schedules (arb_life_schedule.c; called by the loop at start
//  and by the admin verbs). Each change is journaled in the turn's
//  transaction; on a journal failure the lifecycle halts and -1 is
//  returned.

//  Loads every schedule from the journal, then (with catch_up) fires the
//  slots missed while the broker was down, by each one's catch-up policy
//  (a schedule that cannot be loaded, its zone gone, is logged and left in
//  the journal, where adding one of its name replaces it). Without, they
//  fire when the timers next run, as slots that came together do. Sets
//  *count to the schedules loaded. 0 or -1.
int arb_life_load_schedules (arb_life_t *self, bool catch_up, size_t *count);

//  The schedule called name (borrowed), or NULL.
arb_schedule_t *arb_life_schedule (arb_life_t *self, const char *name);

//  Every schedule, name -> arb_schedule_t (borrowed, for walks only).
zhashx_t *arb_life_schedules (arb_life_t *self);

//  Stores a new schedule, whose name no schedule has, and takes it (nulls
//  *schedule_p). Its first slot is the first after its cursor. 0 or -1.
int arb_life_add_schedule (arb_life_t *self, arb_schedule_t **schedule_p);

//  Removes the schedule called name (its tasks stay). 0 or -1.
int arb_life_remove_schedule (arb_life_t *self, const char *name);

//  Pauses a schedule, or resumes it from its first slot after now; at once.
//  0 or -1.
int arb_life_pause_schedule (arb_life_t *self, arb_schedule_t *schedule, bool paused);

#endif
