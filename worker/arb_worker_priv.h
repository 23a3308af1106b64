/*  arb_worker_priv.h — the worker runtime's state, shared by its files:
    arb_worker.c (configuration, the loop, stopping, run),
    arb_worker_session.c (the session with the broker) and
    arb_worker_slots.c (the slots: light threads, heavy children); see
    arb_worker.h.

    Not for use outside them: users of the runtime see only arb_worker.h.
    What crosses files is named arb_worker_*, as the public calls are, and
    listed under local in tools/libarbiter.map, so that libarbiter.so does
    not export it.
*/

#ifndef ARB_WORKER_PRIV_H
#define ARB_WORKER_PRIV_H

#include "arb_worker.h"
#include "arb_dial.h"
#include "arb_handshake.h"
#include "arb_leases.h"
#include "arb_keeper.h"
#include "arb_pool.h"

#include <stdatomic.h>
#include <syslog.h>

#define ARB_WORKER_REGISTER_FIRST  500   //  ms before a REGISTER is sent again; doubles
#define ARB_WORKER_REGISTER_MAX    2000  //  ms, up to this (within the broker's recovery window)
#define ARB_WORKER_UNREACHABLE_MS  2000  //  REGISTER unanswered this long: "cannot reach" is logged
#define ARB_WORKER_UNREACHABLE_LOG 5000  //  ms, and again this often while it lasts

#define ARB_WORKER_LOG(self, level, fn, ...) \
    do {                                     \
        if ((self)->log_level >= (level))    \
            fn (__VA_ARGS__);                \
    } while (0)
#define ARB_WORKER_DEBUG(self, ...)   ARB_WORKER_LOG (self, LOG_DEBUG, zsys_debug, __VA_ARGS__)
#define ARB_WORKER_INFO(self, ...)    ARB_WORKER_LOG (self, LOG_INFO, zsys_info, __VA_ARGS__)
#define ARB_WORKER_WARNING(self, ...) ARB_WORKER_LOG (self, LOG_WARNING, zsys_warning, __VA_ARGS__)
#define ARB_WORKER_ERROR(self, ...)   ARB_WORKER_LOG (self, LOG_ERR, zsys_error, __VA_ARGS__)

typedef struct {
    char name[ARB_NAME_MAX + 1];
    arb_handler_fn *fn;
    void *arg;  //  borrowed
} arb_worker_handler_t;

//  A DISPATCH message kept alive while its tasks run: their jobs borrow
//  its strings and parents.
typedef struct {
    arb_msg_t *msg;  //  owned
    size_t refs;     //  slots running one of its tasks
} arb_worker_batch_t;

typedef struct _arb_worker_slot_t arb_worker_slot_t;

struct _arb_worker_slot_t {
    arb_pool_t *pool;  //  light: borrowed; outlives the slot even when abandoned
    int index;
    arb_job_t *job;             //  owned; reused task after task
    arb_worker_batch_t *batch;  //  one reference while busy
    bool busy;
    bool quiet;       //  the lease is over (STOP, forced stop, not taken back): report nothing
    bool orphan;      //  from an earlier session, claimed in the REGISTER being answered
    bool held;        //  an orphan that finished: held_rc waits for the broker's answer
    int held_rc;      //  its outcome
    bool emitted;     //  items went out under this lease (a new session cannot take it back)
    bool unstarted;   //  light: its thread did not start it in time; waits for a WELCOME
    bool adopted;     //  a WELCOME gave it back since it was last handed to the pool
    uint64_t lease;   //  current lease: the dispatch's, or the one a WELCOME gave back
    int64_t started;  //  ms (arb_worker_now) the task came to it: REGISTER's ran_ms
    //  heavy
    pid_t pid;        //  child, 0 if none
    pid_t keeper;     //  leads the child's process group, its id (arb_keeper.h); 0 if none
    int report_fd;    //  read end of its report pipe, -1 once closed
    int pidfd;        //  readable when the child exits; -1 if unavailable
    int64_t kill_at;  //  ms (zclock_mono): SIGKILL then; 0 none
    bool bad_report;  //  the child broke the report format
};

typedef enum {
    ARB_WORKER_SESSION_REGISTERING,
    ARB_WORKER_SESSION_READY,
} arb_worker_session_t;

typedef enum {
    ARB_WORKER_PHASE_RUN,    //  taking tasks
    ARB_WORKER_PHASE_DRAIN,  //  credit cancelled, running tasks finish
    ARB_WORKER_PHASE_FORCE,  //  running tasks stopped, waiting for their slots
    ARB_WORKER_PHASE_DONE,
} arb_worker_phase_t;

struct _arb_worker_t {
    //  Configuration: set before run, read-only while running.
    char *endpoint;  //  owned
    char name[ARB_NAME_MAX + 1];
    char host[ARB_NAME_MAX + 1];
    arb_worker_handler_t *handlers;  //  owned array
    size_t handler_count;
    arb_worker_handler_t fallback;        //  "*"; fn NULL if none
    char *queues[ARB_WORKER_QUEUES_MAX];  //  owned strings
    size_t queue_count;
    int slot_count;
    arb_worker_mode_t mode;
    int grace_ms;
    int drain_ms;
    int connect_timeout_ms;  //  the first REGISTER unanswered this long ends run; 0 never
    size_t max_payload;      //  bytes: what the worker was told (arb_worker_set_max_payload)
    int log_level;           //  syslog level
    arb_curve_t *curve;      //  owned: certificate and broker key; NULL: the environment's

    //  Stop requests, from any thread or a signal handler.
    atomic_int stop_requests;
    int wake_fd;  //  owned eventfd: wakes the loop on a stop request

    //  Run state: the run thread only.
    zsock_t *dealer;             //  owned; NULL with a dial
    arb_dial_t *dial;            //  owned: our own connection (arb_dial.h); NULL with a dealer
    arb_curve_t *run_curve;      //  owned: what this run connects with; NULL: no CURVE
    arb_handshake_t *handshake;  //  owned: the dealer's handshakes, to say why a broker is silent
    arb_pool_t *pool;            //  owned: light mode's threads
    arb_pool_note_t *notes;      //  owned: notes taken from the pool, being handled
    size_t note_cap;
    void **launch;  //  owned, slot_count: light slots (arb_worker_slot_t) of this turn,
                    //  for the pool
    size_t launch_count;
    arb_worker_slot_t *slots;  //  owned array of slot_count
    int *free;                 //  owned stack of free slot indexes
    int free_count;
    int busy;                       //  slots not free
    zmq_pollitem_t *items;          //  owned, S_FIXED_ITEMS (arb_worker.c) + 2 * slot_count
    arb_worker_slot_t **item_slot;  //  owned, which slot a poll item belongs to
    int signals;                    //  SIGINT/SIGTERM seen
    arb_worker_session_t session;
    uint32_t reqid;              //  last request id used
    uint32_t register_reqid;     //  of the REGISTER being answered
    int register_wait_ms;        //  current REGISTER retry interval
    int64_t register_retry_at;   //  ms
    int64_t unanswered_since;    //  ms: the first REGISTER of those not answered yet; 0 none
    int64_t unreachable_log_at;  //  ms: next "cannot reach the broker"
    bool welcomed;               //  this run has had a WELCOME
    bool gave_up;                //  the broker could not be reached in connect_timeout_ms,
                                 //  or refused to register the worker (403)
    uint32_t heartbeat_ms;
    uint32_t liveness_ms;
    size_t broker_max_payload;  //  bytes: the broker's limit, from its WELCOME; 0 not known
    int64_t last_rx;            //  ms: last message from the broker
    int64_t last_tx;            //  ms: last message sent to it in this session
    int64_t heartbeat_at;
    uint64_t mark;  //  the highest mark read in the broker's HEARTBEATs this session
    bool no_marks;  //  the broker refused marks: the next REGISTER goes without
    arb_worker_phase_t phase;
    int64_t phase_deadline;  //  ms: end of drain, or of the forced stop
    int force_sig;           //  signal the forced stop used on heavy tasks; 0 none yet
    bool abandoned;          //  light handlers ignored a forced stop
    int64_t turn_at;         //  ms: the end of the last loop turn; 0 none yet
    arb_leases_t *results;   //  owned: outcomes kept until the broker acknowledges them
    //  What this loop turn will send.
    arb_msg_t **out_emits;  //  owned EMIT messages, in order
    size_t out_emit_count;
    size_t out_emit_cap;
    int credit_owed;  //  slots freed since the last CREDIT
};

//  arb_worker.c

//  The run thread's clock: ms (zclock_mono).
int64_t arb_worker_now (void);

//  Whether the worker was silent past the liveness window by its own
//  clock, so that what waits in its socket belongs to a session the
//  broker has given up.
bool arb_worker_was_silent (arb_worker_t *self);

//  arb_worker_session.c

//  The next request id (never 0).
uint32_t arb_worker_next_reqid (arb_worker_t *self);

//  Sends a message to the broker now. Takes it.
void arb_worker_send (arb_worker_t *self, arb_msg_t **msg_p);

//  Queues an EMIT message for the turn's flush. Takes it.
void arb_worker_out_emit (arb_worker_t *self, arb_msg_t **emit_p);

//  Sends a CREDIT: credit more, the queues with the first of a session,
//  or the credit cancelled.
void arb_worker_credit (arb_worker_t *self, int credit, bool with_queues, bool cancel);

//  Sends what the turn produced: items, then results, then credit.
void arb_worker_flush (arb_worker_t *self);

//  Drops what the turn would have sent (a new session begins).
void arb_worker_discard (arb_worker_t *self);

//  Keeps a task's outcome until the broker acknowledges it (it goes out
//  with the turn's flush), under lease. Takes the result frame, if any.
void arb_worker_keep_result (arb_worker_t *self,
                             uint64_t id,
                             uint64_t lease,
                             arb_outcome_t outcome,
                             const char *error,
                             bool routed,
                             zframe_t **result_p);

//  Connects to the broker: a connection of our own (arb_dial.h) or a new
//  DEALER, which replaces the old one only once it works. Returns 0, or
//  -1 (the old one, if any, stays).
int arb_worker_connect (arb_worker_t *self);

//  Starts a new session: whatever runs now belongs to the old one. With
//  new_socket, on a new connection.
void arb_worker_register (arb_worker_t *self, bool new_socket);

//  The broker shut this worker out (403 to its session's messages: its
//  certificate left allowed/ or lost the worker role): its tasks are
//  stopped now, nothing is reported, and the run ends, failed. The broker
//  gives the tasks to other workers once this one has been silent for the
//  liveness window, by when they must not run here any more.
void arb_worker_shut_out (arb_worker_t *self);

//  Takes the messages the broker sent, up to a burst.
void arb_worker_recv_broker (arb_worker_t *self);

//  arb_worker_slots.c

//  Runs a light slot's job on a pool thread (arb_pool_fn; job is the slot,
//  arg the worker).
int arb_worker_pool_run (void *job, void *arg);

//  Streams a handler's staged items to the run thread (arb_job_flush_fn;
//  arg is the slot).
void arb_worker_slot_flush (arb_msg_t **emit_p, void *arg);

//  Forks the child that runs the slot's job; a failure to fork ends the
//  task at once.
void arb_worker_heavy_launch (arb_worker_t *self, arb_worker_slot_t *slot);

//  Sends sig to the slot's child's process group; SIGKILL follows after
//  the grace unless sig is SIGKILL.
void arb_worker_heavy_kill (arb_worker_t *self, arb_worker_slot_t *slot, int sig);

//  Reads what the child reported so far; staged items go out at once.
void arb_worker_heavy_read (arb_worker_t *self, arb_worker_slot_t *slot);

//  Whether the child has exited, without reaping it (no pidfd).
bool arb_worker_heavy_exited (arb_worker_slot_t *slot);

//  The child has exited: reaps it and finishes its task.
void arb_worker_heavy_reap (arb_worker_t *self, arb_worker_slot_t *slot);

//  Drops one reference to a batch, and the batch with the last. Nulls
//  *batch_p, which may be NULL.
void arb_worker_batch_release (arb_worker_batch_t **batch_p);

//  A task has ended in its slot (rc: the handler's): reports it unless
//  its lease is over, and frees the slot.
void arb_worker_slot_done (arb_worker_t *self, arb_worker_slot_t *slot, int rc);

//  The busy slot running task id under lease, or NULL.
arb_worker_slot_t *arb_worker_slot_find (arb_worker_t *self, uint64_t id, uint64_t lease);

//  Ends a running task's lease on this side and asks it to stop (light:
//  flag; heavy: sig to its group).
void arb_worker_slot_stop (arb_worker_t *self, arb_worker_slot_t *slot, int sig);

//  Handles the notes the light slots' threads left.
void arb_worker_recv_notes (arb_worker_t *self);

#endif
