/*  arb_session.h — a worker's session with the broker.

    A session starts with REGISTER and ends when the worker says BYE, falls
    silent past the liveness window, or is replaced; its states are:

        (unknown) --REGISTER--> active --BYE / silent / re-register--> ended

    While active it holds the worker's subscriptions (queues + credit) and
    its leases (the tasks it runs now, as an intrusive list through the
    tasks). Any message from the worker renews every lease: a lease lives
    exactly as long as the session, so a long task is never taken away from
    a live worker.

    Owned by the scheduler, in the broker's loop thread.
*/

#ifndef ARB_SESSION_H
#define ARB_SESSION_H

#include "arb_task.h"

//  One subscription: queues the worker takes from, and how many more
//  tasks the broker may send on it. Owned by its session.
typedef struct {
    uint32_t id;
    arb_session_t *session;  //  borrowed: the owner
    char **queues;           //  owned strings
    size_t queue_count;
    int64_t credit;  //  tasks the broker may still send
} arb_sub_t;

arb_session_t *arb_session_new (zframe_t *identity, const char *key);
void arb_session_destroy (arb_session_t **self_p);

zframe_t *arb_session_identity (arb_session_t *self);  //  borrowed
const char *arb_session_key (arb_session_t *self);     //  the identity in hex

//  What REGISTER said.
void arb_session_set_info (arb_session_t *self,
                           const char *name,
                           const char *mode,
                           uint32_t slots,
                           uint32_t pid,
                           const char *host);
bool arb_session_registered (arb_session_t *self);  //  set_info was called

//  The task names the worker runs (REGISTER's handles; copied); none: every
//  name, as before it said (the default). Set before it subscribes.
void arb_session_set_handles (arb_session_t *self, const char **names, size_t count);
//  Whether the worker runs tasks of this name; and whether it runs all.
bool arb_session_handles (arb_session_t *self, const char *name);
bool arb_session_handles_all (arb_session_t *self);

//  The request id of the session's REGISTER, and whether self is a later
//  session of the same worker process as other (same name, pid and host:
//  it registered again from a new socket, after other did).
void arb_session_set_register_id (arb_session_t *self, uint32_t reqid);
bool arb_session_newer (arb_session_t *self, arb_session_t *other);
//  The worker process behind the session, as a number: the same for every
//  session of one worker (name, pid and host), to tell whose lease a task
//  lost. 0 before REGISTER.
uint64_t arb_session_worker (arb_session_t *self);

//  Whether the worker registered with acks: it keeps each result until
//  the RESULT_OK that answers its RESULT, and its HEARTBEAT's busy counts
//  every task it holds, so the broker can check its leases against it;
//  and with marks (acks too): its HEARTBEAT says the highest mark it read
//  (arb_session_mark), and only the leases up to it are checked. Set at
//  each REGISTER, which starts the checks anew.
void arb_session_set_acks (arb_session_t *self, bool acks, bool marks);
bool arb_session_acks (arb_session_t *self);
bool arb_session_marks (arb_session_t *self);

//  Its certificate lost the worker role (arb_life_shut_out): nothing is
//  sent to it, and when it falls silent its leases go back, none lost.
//  A message taken from it again (arb_session_touch) ends that.
void arb_session_set_shut_out (arb_session_t *self);
bool arb_session_is_shut_out (arb_session_t *self);

//  In the scheduler's turn `turn` the worker was answered something that
//  must reach it before any DISPATCH (a TAKE's tasks; or the WELCOME of
//  its REGISTER, arb_session_set_welcome_turn), and that waits for the
//  commit: the dispatch before the commit (arb_sched_dispatch_early)
//  leaves it alone in that turn. Turns are never 0, which a session that
//  was never held keeps.
void arb_session_hold_early (arb_session_t *self, uint32_t turn);
bool arb_session_held_early (arb_session_t *self, uint32_t turn);

//  Its WELCOME was made in the scheduler's turn `turn` and leaves after
//  that turn's commit: nothing may reach the worker before it, not even a
//  HEARTBEAT sent within the turn (arb_life_pulse); it is held early in
//  that turn too.
void arb_session_set_welcome_turn (arb_session_t *self, uint32_t turn);
bool arb_session_welcome_waits (arb_session_t *self, uint32_t turn);

//  A HEARTBEAT came at now_ms (Unix). Returns when the one before the
//  last one came (0 if there was none): the leases handed out before then
//  the worker must know of by now.
uint64_t arb_session_beat (arb_session_t *self, uint64_t now_ms);

//  Counts heartbeats in a row whose busy was below the leases the worker
//  must know of: adds one (out true) or starts again; returns the count.
uint32_t arb_session_out_of_step (arb_session_t *self, bool out);

//  Marks the session as no longer in step with its worker (a DISPATCH
//  could not be sent): the broker ends it after the dispatch pass, and
//  sends it nothing more meanwhile.
void arb_session_set_broken (arb_session_t *self);
bool arb_session_is_broken (arb_session_t *self);

const char *arb_session_name (arb_session_t *self);
const char *arb_session_mode (arb_session_t *self);
uint32_t arb_session_slots (arb_session_t *self);

//  Liveness, in monotonic ms.
void arb_session_touch (arb_session_t *self, uint64_t mono_ms);
uint64_t arb_session_last_seen (arb_session_t *self);
//  When the broker last sent it anything (for the broker's heartbeats).
void arb_session_sent (arb_session_t *self, uint64_t mono_ms);
uint64_t arb_session_last_sent (arb_session_t *self);

//  A worker with acks learns which leases it must hold from the marks in
//  the broker's HEARTBEATs (arb_heartbeat_body_t): every lease up to a mark
//  left in a message before it. Due: leases beyond the last mark, and a
//  heartbeat period since it. arb_session_mark gives the next one (the
//  highest lease given): only for a HEARTBEAT queued behind every message
//  that carries the session's leases.
bool arb_session_mark_due (arb_session_t *self, uint64_t mono_ms, uint64_t every_ms);
uint64_t arb_session_mark (arb_session_t *self, uint64_t mono_ms);
//  What its last HEARTBEAT said was running.
void arb_session_set_busy (arb_session_t *self, uint32_t busy);
uint32_t arb_session_busy (arb_session_t *self);
uint32_t arb_session_pid (arb_session_t *self);
const char *arb_session_host (arb_session_t *self);

//  Subscriptions.
arb_sub_t *arb_session_sub (arb_session_t *self, uint32_t id);
arb_sub_t *
arb_session_add_sub (arb_session_t *self, uint32_t id, const char **queues, size_t count);
void arb_session_remove_sub (arb_session_t *self, uint32_t id);
size_t arb_session_sub_count (arb_session_t *self);
arb_sub_t *arb_session_sub_at (arb_session_t *self, size_t index);
//  Sum of the credit of its subscriptions.
int64_t arb_session_credit (arb_session_t *self);

//  Leases.
void arb_session_add_lease (arb_session_t *self, arb_task_t *task);
void arb_session_remove_lease (arb_session_t *self, arb_task_t *task);
arb_task_t *arb_session_first_lease (arb_session_t *self);
size_t arb_session_lease_count (arb_session_t *self);

//  The DISPATCH being filled for this worker in the current loop turn
//  (the broker sends it after the turn's dispatch pass). Borrowed slot;
//  and the bytes of payloads it holds, kept by the broker (a slot too).
arb_msg_t **arb_session_outgoing (arb_session_t *self);
size_t *arb_session_outgoing_bytes (arb_session_t *self);

#endif
