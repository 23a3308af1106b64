/*  arb_journal.h — the broker's durable state: one SQLite database in WAL mode.

    The journal is the truth about every task; the broker's memory is a
    cache of the unfinished ones that can be rebuilt from it at any start.
    It is the only module that includes sqlite3.h. Every statement is
    prepared once, in arb_journal_new, and finalized in destroy.

    Group commit: the broker calls arb_journal_begin before its first write
    of a loop turn and arb_journal_commit once at the end of the turn, then
    sends the replies that promise durability. What the journal records is
    the logical state: `running` never reaches it (a lease lives in the
    broker's memory, and a restart gives every leased task back), so the hot
    path is one INSERT per submitted task and one UPDATE (or, with nothing
    to keep, a DELETE) per finished one. A plain task's INSERT and a
    DELETE are held and written with the others of the turn, a batch to a
    statement, before any other statement and before the commit; a turn
    that writes nothing else commits them by one append to the task log
    instead, whose rows the tables take at the next checkpoint, if they
    are still open (arb_journal_batch.c, arb_tasklog.h).

    Faults. Every failure is classified (arb_journal_fault): the disk
    (SQLITE_FULL, or an I/O error writing or syncing) or anything else (a
    damaged file, a read error). After a failure every write fails until
    arb_journal_rollback: a statement that fails with SQLITE_FULL may roll
    the whole transaction back by itself, and a write after it would then
    commit on its own, half a turn. arb_journal_probe tells when the disk
    takes writes again.

    Files it refuses at open, naming the file and why, never replacing or
    repairing it: one that is not an SQLite database, one cut short (its
    header counts more pages than it holds, with no WAL to fill them), an
    SQLite database of another program (another application id, or tables
    without arbiter's schema version), and a journal of a newer schema.

    Reads trust no row: the journal is only ever written by the broker,
    but a damaged or hand-edited one can hold anything a column can. A
    row the broker cannot use (a task without a valid queue or name, in a
    state it cannot be in, of id 0; an edge of no kind) is skipped, or read
    as absent, with a log line; texts read into replies are cut to their
    limits on the wire (tests/fuzz/fuzz_journal.c).

    Owned by the broker's loop thread; not thread-safe.
*/

#ifndef ARB_JOURNAL_H
#define ARB_JOURNAL_H

#include "arb_proto.h"
#include "arb_task.h"
#include "arb_vec.h"

typedef struct _arb_journal_t arb_journal_t;

typedef enum {
    ARB_SYNC_FULL,  //  fsync every commit: an acknowledged task survives a power cut
    ARB_SYNC_NORMAL,  //  fsync only at checkpoints: survives a crash of the process, not of the machine
} arb_sync_t;

//  Opens (creating if needed, with its parent directory) the journal at
//  path and brings its schema up to date. Returns NULL after logging why.
arb_journal_t *arb_journal_new (const char *path, arb_sync_t sync);

void arb_journal_destroy (arb_journal_t **self_p);

//  Destroys the journal as arb_journal_destroy does, for a start that ends
//  before it serves (its endpoint cannot be bound): when no file at all
//  was at its path, it removes what this open made (the file, and those of
//  its -wal, -shm, -tasklog and -tasklog2 that were not there before it),
//  before it lets the lock go, so that a
//  start refused leaves no new journal behind. The lock file and a
//  directory made for the journal stay. Accepts NULL; nulls *self_p.
void arb_journal_discard (arb_journal_t **self_p);

//  Whether no journal was at its path (no file, or an empty one) when it
//  opened: a new, empty journal, which a misspelt --db also makes.
bool arb_journal_is_new (arb_journal_t *self);

//  Starts the turn's transaction if none is open. 0 or -1.
int arb_journal_begin (arb_journal_t *self);

//  Commits the open transaction, if any. 0 or -1 (the transaction is then
//  rolled back: nothing of it is in the journal).
int arb_journal_commit (arb_journal_t *self);

bool arb_journal_in_txn (arb_journal_t *self);

//  The copies of the WAL into the database file that its own thread has
//  run (arb_backfill.h); 0 where SQLite's commits copy it (--sync normal).
uint64_t arb_journal_backfills (arb_journal_t *self);

//  Whether the open transaction has writes of its own to commit (a read
//  outside a turn may open one that has none: a view of the task log).
bool arb_journal_has_writes (arb_journal_t *self);

//  The task log beside the journal's file (arb_tasklog.h): the journal's
//  path and this suffix; with --sync full, a second file too, which the
//  log's records go to while a checkpoint's writes are on their way to
//  the tables (arb_journal_batch.c). A journal is its file, SQLite's -wal
//  and -shm, and these logs; a copy of the journal is a copy of all five,
//  taken with the broker stopped.
#define ARB_JOURNAL_LOG_SUFFIX  "-tasklog"
#define ARB_JOURNAL_LOG2_SUFFIX "-tasklog2"

//  Whether turns that write only plain rows and drops may commit to the
//  task log (on from open): off, every turn commits to the tables. The
//  log is replayed at open either way.
void arb_journal_set_log (arb_journal_t *self, bool on);

//  Writes what the turn's batch holds, the rows, then the drops, when the
//  turn goes to the tables (every other statement, and arb_journal_commit,
//  does so first); a turn that may still commit to the task log writes
//  nothing here. 0, or -1 (the failure noted and logged as a failed
//  write's; nothing is held after either), the turn then to be rolled
//  back.
int arb_journal_settle (arb_journal_t *self);

//  Whether the open turn holds half of the rows, drops or bytes the task
//  log takes in one turn: a turn that read on would likely go to the
//  tables (arb_journal_batch.c), so the loop commits it and reads the rest
//  in the next. False when the log is not in use.
bool arb_journal_turn_is_full (arb_journal_t *self);

//  What the journal's first failure since it opened, or since the last
//  arb_journal_rollback, was.
typedef enum {
    ARB_JOURNAL_SOUND,   //  none
    ARB_JOURNAL_FULL,    //  the disk: no space (SQLITE_FULL), or an I/O error writing or syncing
    ARB_JOURNAL_BROKEN,  //  anything else: a damaged file, a read error
} arb_journal_fault_t;

arb_journal_fault_t arb_journal_fault (arb_journal_t *self);

//  Ends the open transaction, if any, leaving none of its changes, and
//  forgets the last failure: writes are tried again. 0 or -1.
int arb_journal_rollback (arb_journal_t *self);

//  Whether the disk takes writes again, after a failure of
//  ARB_JOURNAL_FULL: stores a test record of ARB_JOURNAL_PROBE_BYTES and
//  removes it, each in a transaction of its own (none may be open). 0 if
//  both committed; -1 if not, with arb_journal_fault saying why and
//  nothing of the probe left. The record's pages stay in the file, free
//  for the next writes.
#define ARB_JOURNAL_PROBE_BYTES (256 * 1024)
int arb_journal_probe (arb_journal_t *self);

//  The broker's start count as stored (0 if none), and storing it, in the
//  turn's transaction (a start that could not write it stores it later).
//  0 or -1.
int arb_journal_epoch (arb_journal_t *self, uint64_t *epoch);
int arb_journal_set_epoch (arb_journal_t *self, uint64_t epoch);

//  What a new task has besides its record; any field may be NULL (a
//  bin's data NULL: none).
typedef struct {
    const char *key;       //  client key
    const char *ref;       //  name in its flow
    const char *endpoint;  //  a fan-out copy: its worker
    zframe_t *payload;     //  borrowed
    arb_bin_t headers;     //  borrowed
    arb_bin_t args;        //  borrowed
} arb_journal_row_t;

//  Stores a new task (its id chosen by the caller). 0 or -1. A plain
//  task's row may be held for the turn's batch: a failure to write it is
//  then the failure of the next statement or of the commit.
int arb_journal_insert (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row);

//  Records that child depends on parent (kind: 0 on success, 1 on
//  failure, 2 always), and marks a parent as having children. 0 or -1.
int arb_journal_add_dep (arb_journal_t *self, uint64_t child, uint64_t parent, int kind);
int arb_journal_set_has_children (arb_journal_t *self, uint64_t id);

//  One dependency of a task, with its parent's outcome (state 0 if the
//  parent is gone, or its row unusable); kind 0, 1 or 2 (an edge of
//  another kind is skipped). Pointers borrow from the journal until fn
//  returns.
typedef struct {
    uint64_t id;
    int kind;
    int state;
    const char *ref;
    const void *result;
    size_t result_size;
    const char *error;
} arb_journal_parent_t;

//  Calls fn for each dependency of child; fn returns 0 to go on. 0 or -1.
typedef int (arb_journal_parent_fn) (void *arg, const arb_journal_parent_t *parent);
int arb_journal_parents (arb_journal_t *self, uint64_t child, arb_journal_parent_fn *fn, void *arg);

//  Appends the tasks that depend on parent to children, as (child id,
//  kind) pairs. 0 or -1.
int arb_journal_children (arb_journal_t *self, uint64_t parent, arb_vec_t *children);

//  Fills info->responses with the copies of a fan-out task. 0 or -1.
int
arb_journal_copies (arb_journal_t *self, uint64_t origin, arb_msg_t *msg, arb_task_info_t *info);

//  Stores a new flow (DAG, group, pipe); its id in *id. 0 or -1.
int arb_journal_insert_flow (
    arb_journal_t *self, int kind, const char *name, uint64_t now_ms, uint64_t *id);

//  The kind of a flow (0 if there is no such flow). 0 or -1.
int arb_journal_flow_kind (arb_journal_t *self, uint64_t id, int *kind);

//  Ids of the flows of a kind with that name (caller owns the list of
//  ids cast to pointers). NULL on failure.
zlistx_t *arb_journal_flows_named (arb_journal_t *self, const char *name, int kind);

//  Looks up a client key: *id 0 if unknown; else its task's state, and
//  its flow (0 none) if flow is not NULL. 0 or -1.
int arb_journal_find_key (
    arb_journal_t *self, const char *key, uint64_t *id, int *state, uint64_t *flow);

//  Writes a task's changing columns: state (running is stored as ready),
//  and from the record attempts, lost, not_before, started; finished_ms. worker, error and result, when not NULL, replace
//  what is stored (an empty error clears it); purge_at_ms is when the
//  retention sweep may remove a final task (0: never, not final).
int arb_journal_save (arb_journal_t *self,
                      const arb_task_t *task,
                      int state,
                      uint64_t finished_ms,
                      const char *worker,
                      const char *error,
                      zframe_t *result,
                      uint64_t purge_at_ms);

//  Appends one attempt to a task's history, keeping it within its bound
//  (the first ARB_HISTORY_FIRST and the last ARB_HISTORY_LAST). 0 or -1.
int arb_journal_add_attempt (arb_journal_t *self, uint64_t id, const arb_attempt_info_t *attempt);

//  Removes the last attempt of a task's history if it is a lost lease: the
//  lease was claimed back by its worker, so the loss is undone, in the
//  history as in the count (the sweep and arb_journal_drop go by the
//  count to know whether a task has history). 0 or -1.
int arb_journal_unlose (arb_journal_t *self, uint64_t id);

//  Reads a task's payload, headers and (if args is not NULL) args; each
//  NULL when it has none. 0 or -1.
int arb_journal_load_payload (
    arb_journal_t *self, uint64_t id, zframe_t **payload, zframe_t **headers, zframe_t **args);

//  A task row read back: a record whose queue and name are NULL, and the
//  names beside it (valid names, never NULL). fn returns 0 to go on.
typedef int (arb_journal_task_fn) (void *arg,
                                   arb_task_t *task,
                                   const char *queue,
                                   const char *name);

//  Calls fn for the task id (any state; *found false if none, or if its
//  row is unusable). 0 or -1.
int arb_journal_load_task (
    arb_journal_t *self, uint64_t id, arb_journal_task_fn *fn, void *arg, bool *found);

//  Ids of the dead tasks of a queue, for a queue-wide retry (caller owns
//  the zlistx of uint64 values cast to pointers). NULL on failure.
zlistx_t *arb_journal_dead_ids (arb_journal_t *self, const char *queue);

//  Ids of the dead tasks of a flow but its fan-out copies, for a flow-wide
//  retry (as arb_journal_dead_ids). NULL on failure.
zlistx_t *arb_journal_flow_dead_ids (arb_journal_t *self, uint64_t flow);

//  Calls fn for every unfinished task (waiting, scheduled, ready), in id
//  order; an unusable row is skipped. 0 or -1.
int arb_journal_load_open (arb_journal_t *self, arb_journal_task_fn *fn, void *arg);

//  A row's payload and headers, borrowed from the journal while a
//  callback runs (NULL and 0 when empty).
typedef struct {
    const void *payload;
    size_t payload_size;
    const void *headers;
    size_t headers_size;
} arb_journal_body_t;

typedef int (arb_journal_ready_fn) (void *arg,
                                    arb_task_t *task,
                                    const char *queue,
                                    const char *name,
                                    const arb_journal_body_t *body);

//  Reads up to max ready rows of queue in dispatch order (priority
//  highest first, then id) from (priority, id) on, handing each with its
//  payload and headers to fn (which returns 0 to go on); *count: rows
//  read, *last_priority and *last_id: the last one's key (rows not handed
//  on count too: one not usable, one whose task ended since the task
//  log's last checkpoint; priority and id when none). The scheduler's
//  cold backlog (arb_queue.h). 0 or -1.
int arb_journal_load_ready (arb_journal_t *self,
                            const char *queue,
                            int32_t priority,
                            uint64_t id,
                            size_t max,
                            arb_journal_ready_fn *fn,
                            void *arg,
                            size_t *count,
                            int32_t *last_priority,
                            uint64_t *last_id);

//  Fills info from the journal, with its parents, strings and result
//  allocated in msg. with_detail adds the result, the attempt history (in
//  the order the attempts ended, with history_dropped) and the fan-out
//  responses. info->found is
//  false if there is no such task. 0 or -1.
int arb_journal_task_info (
    arb_journal_t *self, uint64_t id, bool with_detail, arb_msg_t *msg, arb_task_info_t *info);

//  A task's state (0 if there is no such task) and, when ref is not NULL,
//  its name in its flow (empty if none). 0 or -1.
int arb_journal_state (arb_journal_t *self, uint64_t id, int *state, char *ref, size_t ref_size);

//  Reads a final task's outcome into a DONE record (result frame
//  allocated). *found false if no such task. 0 or -1.
int arb_journal_done (
    arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_done_task_t *done, bool *found);

//  Appends to list up to limit ready tasks that match filter (queue,
//  after_id, before_id, newest; not state or flow) and that in_memory says
//  no to: the scheduler's cold backlog, which memory cannot list. Sets
//  list->more if more match. 0 or -1.
int arb_journal_list_cold (arb_journal_t *self,
                           const arb_list_body_t *filter,
                           uint32_t limit,
                           bool (*in_memory) (void *arg, uint64_t id),
                           void *arg,
                           arb_msg_t *msg,
                           arb_list_reply_body_t *list);

//  Appends to list up to limit final tasks that pass filter: ids between
//  after_id and before_id (0: no bound), of its state (0: any final
//  state), queue (NULL: any) and flow (0: any); lowest ids first, or
//  highest with filter->newest. Each with its parents. *more tells
//  whether more match. 0 or -1.
int arb_journal_list_final (arb_journal_t *self,
                            const arb_list_body_t *filter,
                            uint32_t limit,
                            arb_msg_t *msg,
                            arb_list_reply_body_t *list);

//  Counts final tasks by queue and state, for stats after a restart (a
//  valid queue name, a final state; other rows are not counted).
typedef void (arb_journal_count_fn) (void *arg, const char *queue, int state, uint64_t count);
int arb_journal_count_final (arb_journal_t *self, arb_journal_count_fn *fn, void *arg);

//  The functions that remove rows record an id floor (id_floor: the
//  largest id given out) so that no id is ever given out twice. They
//  write it this far beyond, so that most removals write no floor (a
//  write to the tables, which makes a turn a checkpoint of the task log
//  on the loop: at 65,536 it came once or twice a P2 of 100,000 and wrote
//  the backlog kept into the tables each time, about 30 % of the broker's
//  CPU a task: BENCHMARKS.md, "The id floor a million ids ahead"); after a
//  restart (or a fall back that reloads from the journal), ids go on from
//  up to that many beyond the last given out.
#define ARB_ID_FLOOR_AHEAD 1048576

//  Removes up to max final tasks whose purge time has come, with their
//  history and edges, calling fn for each just before; a task fn keeps
//  (returns true: tasks that have not ended still need it) stays, its
//  purge time moved to keep_until_ms. Records id_floor (above). Returns
//  how many were removed, or -1.
typedef bool (arb_journal_purge_fn) (
    void *arg, uint64_t id, const char *queue, int state, bool has_children);
int arb_journal_purge (arb_journal_t *self,
                       uint64_t now_ms,
                       size_t max,
                       uint64_t id_floor,
                       uint64_t keep_until_ms,
                       arb_journal_purge_fn *fn,
                       void *arg);

//  Removes the row of a task that has just ended with nothing to keep (no
//  retention, no history, no edges, no flow: the caller knows), in the
//  turn's transaction, instead of saving it final for the sweep to remove:
//  one write at its end, not two. Records id_floor as arb_journal_purge
//  does, once a transaction at most. 0 or -1 (the DELETE may be held for
//  the turn's batch, as a plain insert is).
int arb_journal_drop (arb_journal_t *self, uint64_t id, uint64_t id_floor);

//  Removes tasks with their history and the edges on which they wait (the
//  retention sweep, DELETE), and records id_floor (above). 0 or -1.
int arb_journal_remove (arb_journal_t *self, const uint64_t *ids, size_t count, uint64_t id_floor);

//  One task row as arb_journal_scan reads it; queue borrowed until fn returns.
typedef struct {
    uint64_t id;
    const char *queue;
    int state;
    uint64_t finished_ms;
    bool has_children;
} arb_journal_scanned_t;

//  Reads up to max tasks (any state) with id > after_id, in id order, and
//  calls fn with each; fn must not change the journal. *last_id: the last
//  id read (after_id if none), *seen: how many. So a walk of the whole
//  journal goes by bounded steps, each a range of the primary key. 0 or -1.
typedef void (arb_journal_scan_fn) (void *arg, const arb_journal_scanned_t *row);
int arb_journal_scan (arb_journal_t *self,
                      uint64_t after_id,
                      size_t max,
                      arb_journal_scan_fn *fn,
                      void *arg,
                      uint64_t *last_id,
                      size_t *seen);

//  Stores a task's delivery count alone (a clean stop records the leases
//  it ends this way: their attempts go on, so nothing else changes). 0 or -1.
int arb_journal_set_delivered (arb_journal_t *self, uint64_t id, uint32_t delivered);

//  Counts one more delivery for every task that loads as ready at now_ms
//  (state ready, or scheduled with its time come), in one statement; sets
//  *changed to how many. For a start after a crash (arb_life.h). Opens
//  the turn's transaction. 0 or -1.
int arb_journal_deliver_ready (arb_journal_t *self, uint64_t now_ms, uint64_t *changed);

//  Called for each task a statement ended, with its id and attempts.
typedef void (arb_journal_ended_fn) (void *arg, uint64_t id, uint32_t attempts);

//  Cancels, in one statement, every unfinished task of a queue but the
//  keep_count ids in keep (running tasks): state cancelled, error, finished
//  now, removed after the task's own retention, else retention_ms. Calls
//  fn (if not NULL) for each task cancelled and sets *changed to their
//  number. Opens the turn's transaction. 0 or -1.
int arb_journal_cancel_open (arb_journal_t *self,
                             const char *queue,
                             const uint64_t *keep,
                             size_t keep_count,
                             uint64_t now_ms,
                             const char *error,
                             uint64_t retention_ms,
                             arb_journal_ended_fn *fn,
                             void *arg,
                             uint64_t *changed);

//  Removes every task of a queue, with its history and the edges to its
//  parents, in one statement a table; the caller has ended its unfinished
//  tasks first. Records id_floor as arb_journal_purge does. Opens the
//  turn's transaction. 0 or -1.
int arb_journal_forget_queue (arb_journal_t *self, const char *queue, uint64_t id_floor);

//  Largest task id ever used (also across purged tasks). 0 or -1.
int arb_journal_max_id (arb_journal_t *self, uint64_t *id);

//  Small key/value store for broker and gateway settings. get: *value
//  NULL if absent (caller owns the chunk). 0 or -1.
int arb_journal_meta_get (arb_journal_t *self, const char *key, zchunk_t **value);
int arb_journal_meta_set (arb_journal_t *self, const char *key, const void *data, size_t size);
int arb_journal_meta_del (arb_journal_t *self, const char *key);
//  list: data is never NULL (an empty or NULL value is 0 bytes).
typedef void (arb_journal_meta_fn) (void *arg, const char *key, const void *data, size_t size);
int
arb_journal_meta_list (arb_journal_t *self, const char *prefix, arb_journal_meta_fn *fn, void *arg);

//  One page of the keys that begin with prefix and sort after after (NULL
//  or "": from the first), in key order: fn is called for each of at most
//  limit keys; it returns 0 to take the key, or non-zero to stop before it
//  (a reply that is full). *more tells whether keys were left. 0 or -1.
typedef int (arb_journal_meta_take_fn) (void *arg, const char *key, const void *data, size_t size);
int arb_journal_meta_page (arb_journal_t *self,
                           const char *prefix,
                           const char *after,
                           uint32_t limit,
                           arb_journal_meta_take_fn *fn,
                           void *arg,
                           bool *more);

//  Deletes every key that begins with prefix, in one statement. 0 or -1.
int arb_journal_meta_del_prefix (arb_journal_t *self, const char *prefix);

//  A key holding a decimal number (the broker's own: `broker.epoch`):
//  read (0 if absent) and written. 0 or -1.
int arb_journal_meta_number (arb_journal_t *self, const char *key, uint64_t *number);
int arb_journal_set_number (arb_journal_t *self, const char *key, uint64_t number);

//  Bumps and returns the broker start count. 0 or -1.
int arb_journal_next_epoch (arb_journal_t *self, uint64_t *epoch);

//  Periodic schedules. A schedule's cursor_ms is the time up to which its
//  slots are done with (fired or skipped): its next slot is the first
//  after it. The reply-only fields of arb_schedule_info_t (next_ms,
//  next_offset_s) are not stored; the rest are, NULL zone as "UTC", NULL
//  catch_up as "one", NULL queue as "default".

//  Stores a new schedule with its cursor, replacing any of its name (one
//  the broker could not load). 0 or -1.
int arb_journal_schedule_add (arb_journal_t *self,
                              const arb_schedule_info_t *schedule,
                              uint64_t cursor_ms);

//  Removes a schedule (the tasks it made stay). 0 or -1.
int arb_journal_schedule_remove (arb_journal_t *self, const char *name);

//  Pauses or resumes a schedule and sets its cursor (resuming, or slots
//  skipped). 0 or -1.
int
arb_journal_schedule_state (arb_journal_t *self, const char *name, bool paused, uint64_t cursor_ms);

//  Records that the slot slot_ms fired and made task id: it is the last
//  slot fired, and the cursor. 0 or -1.
int
arb_journal_schedule_fired (arb_journal_t *self, const char *name, uint64_t slot_ms, uint64_t id);

//  Calls fn for every schedule, by name, with its cursor; fn returns 0 to
//  go on. The schedule's strings are borrowed for the call; its payload
//  frame (never NULL) is fn's to take (set it NULL), else freed after. 0
//  or -1.
typedef int (arb_journal_schedule_fn) (void *arg,
                                       arb_schedule_info_t *schedule,
                                       uint64_t cursor_ms);
int arb_journal_schedules (arb_journal_t *self, arb_journal_schedule_fn *fn, void *arg);

#endif
