/*  arb_journal_priv.h — the journal's state, shared by its three files:
    arb_journal.c (the file, its schema, statements and transactions),
    arb_journal_tasks.c (tasks, their history and edges) and
    arb_journal_meta.c (metadata and schedules); see arb_journal.h.

    Not for use outside them: the layers above see only arb_journal.h.
*/

#ifndef ARB_JOURNAL_PRIV_H
#define ARB_JOURNAL_PRIV_H

#include "arb_journal.h"
#include "arb_sql.h"

#define ARB_EPOCH_KEY "broker.epoch"

//  The turn's plain inserts and drops, held to be written a batch to a
//  statement (arb_journal_batch.c): statements of 1, 2, 4 ... up to
//  ARB_BATCH_ROWS rows or ids.
#define ARB_BATCH_ROWS      32
#define ARB_BATCH_SIZES     6
#define ARB_BATCH_ROW_BYTES (64 * 1024)  //  a bigger row is written at once

//  A plain row held: its texts and blobs are copied into the batch's
//  bytes (offsets, because the bytes grow by realloc).
typedef struct {
    uint64_t id;
    uint64_t created_ms;
    int64_t max_attempts;
    int state;
    int priority;
    bool unwatched;
    bool has_headers;
    size_t queue, name, headers, payload;  //  offsets in batch_bytes
    size_t headers_size, payload_size;
} arb_journal_held_t;

struct _arb_journal_t {
    sqlite3 *db;                //  owned
    int lock_fd;                //  owned: flock'ed, so two brokers never share a journal
    bool in_txn;                //  a turn's transaction is open
    uint64_t floor_kept;        //  the id floor committed to the file, as far as this process
                                //  wrote it (0: not yet)
    uint64_t floor_txn;         //  the id floor the open transaction wrote (0: none)
    arb_journal_fault_t fault;  //  the first failure since open or the last rollback
    bool probing;               //  a probe runs: its failures are expected, logged at debug
    char *path;                 //  owned
    arb_journal_held_t held[ARB_BATCH_ROWS];  //  plain inserts not yet written
    size_t held_count;
    uint64_t drops[ARB_BATCH_ROWS];  //  ids dropped, not yet deleted
    size_t drop_count;
    uint64_t drop_top;  //  the largest of them (0: none)
    char *batch_bytes;  //  owned: the held rows' texts and blobs
    size_t batch_size, batch_max;
    bool settling;  //  the batch is being written
    sqlite3_stmt *insert_rows[ARB_BATCH_SIZES], *drop_rows[ARB_BATCH_SIZES];
    sqlite3_stmt **prepared[96];  //  every statement slot below, for finalize
    size_t prepared_count;
    sqlite3_stmt *begin, *commit, *rollback, *insert, *insert_plain, *find_key, *save, *add_attempt,
        *load_payload, *trim_attempts, *load_open, *load_ready, *list_ready, *list_ready_newest,
        *load_task, *dead_ids, *flow_dead_ids, *task_info, *history, *done, *state, *list_final,
        *count_final, *purge_due, *add_dep, *set_has_children, *parents, *children, *copies,
        *insert_flow, *flows_named, *flow_kind, *scan, *purge_task, *purge_attempts, *purge_deps,
        *max_id, *meta_get, *meta_set, *meta_del, *meta_list, *schedule_add, *schedule_remove,
        *schedule_state, *schedule_fired, *schedules, *list_final_newest, *deps_of, *meta_page,
        *meta_del_range, *set_delivered, *cancel_open, *forget_attempts, *forget_deps,
        *forget_tasks, *deliver_ready, *probe_set, *probe_del, *unlose, *keep_until;
};

//  Runs a statement that returns no rows, and resets it: 0, or -1 (the
//  failure noted and logged, "journal: WHAT failed"). Every write is part
//  of a turn's transaction (arb_journal_begin), and after a failure nothing
//  runs but a rollback (arb_journal.c says why).
int arb_journal_run (arb_journal_t *self, sqlite3_stmt *stmt, const char *what);

//  Steps a statement, as sqlite3_step, after writing what the batch holds
//  (arb_journal_settle): every statement sees the turn's writes in the
//  order they were made. If that write fails, returns its error code.
int arb_journal_step (arb_journal_t *self, sqlite3_stmt *stmt);

//  Prepares a statement into a slot, which arb_journal_destroy finalizes.
//  0 or -1.
int arb_journal_prepare (arb_journal_t *self, sqlite3_stmt **stmt, const char *sql);

//  The batch (arb_journal_batch.c). Prepares its statements: 0 or -1.
int arb_journal_batch_prepare (arb_journal_t *self);
//  Whether a plain row is small enough to be held: one whose headers and
//  payload are bigger is written at once (the copy would cost more than
//  the statement saves), so the bytes held stay under ARB_BATCH_ROWS
//  times ARB_BATCH_ROW_BYTES and their names.
bool arb_journal_batch_takes (const arb_journal_row_t *row);
//  Holds a plain row (one that insert_plain writes whole) to be written
//  with the others of its batch. 0 or -1.
int arb_journal_batch_insert (arb_journal_t *self,
                              const arb_task_t *task,
                              const arb_journal_row_t *row);
//  Holds a task's id, for its row to be deleted with the others of its
//  batch (after every row held before it is written). 0 or -1.
int arb_journal_batch_drop (arb_journal_t *self, uint64_t id);
//  Forgets what the batch holds (the transaction is rolled back).
void arb_journal_batch_forget (arb_journal_t *self);

//  Ends a read: resets the statement, and says whether rc, its last
//  step's result, was a failure (logged: "journal: WHAT [ID] unreadable").
int arb_journal_read_end (
    arb_journal_t *self, sqlite3_stmt *stmt, int rc, const char *what, uint64_t id);

//  The ids in the first column of every row of a bound statement, or NULL
//  if the read failed.
zlistx_t *arb_journal_read_ids (arb_journal_t *self, sqlite3_stmt *stmt, const char *what);

//  Notes the failure SQLite just reported, if it is the first since the
//  last rollback; a damaged file says so once, naming it.
void arb_journal_note_fault (arb_journal_t *self);

#endif
