/*  arb_journal_priv.h — the journal's state, shared by its three files:
    arb_journal.c (the file, its schema, statements and transactions),
    arb_journal_tasks.c (tasks, their history and edges) and
    arb_journal_meta.c (metadata and schedules); see arb_journal.h.

    Not for use outside them: the layers above see only arb_journal.h.
*/

#ifndef ARB_JOURNAL_PRIV_H
#define ARB_JOURNAL_PRIV_H

#include "arb_backfill.h"
#include "arb_journal.h"
#include "arb_sql.h"
#include "arb_tasklog.h"

#define ARB_EPOCH_KEY "broker.epoch"

//  Plain inserts and drops (arb_journal_batch.c): written to the tables a
//  batch to a statement, 1, 2, 4 ... up to ARB_BATCH_ROWS rows or ids; or,
//  in a turn that writes nothing else, appended to the task log
//  (arb_tasklog.h) and kept here until a checkpoint gives the tables the
//  rows still open.
#define ARB_BATCH_ROWS      32
#define ARB_BATCH_SIZES     6
#define ARB_BATCH_ROW_BYTES (64 * 1024)  //  a bigger row is written at once
#define ARB_BATCH_COLUMNS   10           //  a plain row: as insert_plain writes it

//  What the tables store of the task log (arb_journal_batch.c): the
//  generation of the records they have not taken, the file those are in
//  (0: DB-tasklog, 1: DB-tasklog2), and the generation the records after
//  them have, in the other file, while a checkpoint's writes are on their
//  way (arb_journal_saver.c).
#define ARB_LOG_GEN_KEY  "broker.log_gen"
#define ARB_LOG_FILE_KEY "broker.log_file"
#define ARB_LOG_NEXT_KEY "broker.log_next"

//  A checkpoint is due when the rows kept reach ARB_LOG_ROWS live ones
//  or ARB_LOG_BYTES, the drops of rows in the tables ARB_LOG_DROPS, or
//  the log file ARB_LOG_FILE_BYTES; a turn that holds more than
//  ARB_TURN_ROWS rows or drops, or ARB_TURN_BYTES, writes to the tables. So
//  what is kept in memory stays under twice ARB_LOG_BYTES and their
//  entries, and a view of it (arb_journal_batch_before: each drop dirties
//  a page of the table and of two indexes at most) mostly within SQLite's
//  page cache (ARB_JOURNAL_CACHE_KB), which a full disk could not spill;
//  while a save runs the drops may reach ARB_LOG_PAST_SAVE times theirs
//  (and the save's rows that end meanwhile become drops), a view's pages
//  past the cache going to the WAL before the commit.
//  Why 131,072 rows: so that ARB_LOG_BYTES, the memory, decides for rows
//  of a usual size (a 100-byte payload makes a row of about 170 bytes,
//  about 100,000 of them in 16 MiB), and the count only for rows under
//  128 bytes (payloads under about 60: their entries, 24 bytes a row). A
//  producer ahead of its consumers by that many tasks keeps its backlog
//  in the log, not in the tables (BENCHMARKS.md, "A backlog the log
//  holds", "A backlog of 16 MiB"): a task that waits through a checkpoint
//  is written three times (the log, the tables' insert, their delete at
//  its end, which come back as checkpoints of ARB_LOG_DROPS each); a P2
//  of 100,000 in batches of 100 met one at 65,536 rows, then nine (eight
//  of drops alone). The cost: a checkpoint of a larger backlog copies and
//  saves more at once (a higher peak while it runs); the memory goes back
//  as it drains (s_trim).
//  A checkpoint that falls due while a save runs waits for the save to end
//  (arb_journal_batch_commit), unless the drops or the file reach this
//  many times their bounds (the rows and bytes: once).
#define ARB_LOG_PAST_SAVE  4
#define ARB_LOG_ROWS       131072
#define ARB_LOG_DROPS      8192
#define ARB_LOG_BYTES      (16 * 1024 * 1024)
#define ARB_LOG_FILE_BYTES (64 * 1024 * 1024)
#define ARB_TURN_ROWS      8192
#define ARB_TURN_BYTES     (4 * 1024 * 1024)

//  SQLite's page cache, in KiB: more than twice ARB_LOG_BYTES (above). It
//  is memory as used, not reserved.
#define ARB_JOURNAL_CACHE_KB 40960

//  The saver's (arb_journal_saver.c): it writes no view, only a save of
//  up to ARB_LOG_BYTES of rows and a turn's, whose pages past this go to
//  the WAL before the commit (a failed write there fails the save, which
//  loses nothing). At ARB_JOURNAL_CACHE_KB its cache held up to a save's
//  worth of pages at every checkpoint, in its thread's malloc arena
//  after: filling 1,000,000 queued, the broker's peak RSS was 94 MiB
//  against 82 at this size, no slower (BENCHMARKS.md, "A backlog of 16
//  MiB").
#define ARB_SAVER_CACHE_KB 8192

//  A plain row held or kept: its encoded row (arb_journal_batch.c) is at
//  offset at of batch_bytes (an offset, because the bytes grow by
//  realloc).
typedef struct {
    uint64_t id;
    size_t at;  //  offset in batch_bytes
    bool dead;  //  dropped by a turn the log took: written nowhere again
    bool sent;  //  handed to the saver live: in the tables once it commits
} arb_journal_held_t;

//  A checkpoint handed to the saver (arb_journal_saver.c): the live rows
//  kept, encoded back to back as held, and the drops of rows in the tables;
//  the log's keys to store with them.
typedef struct {
    char *rows;  //  owned, rows_bytes long (arb_bigmem)
    size_t row_count, rows_bytes;
    uint64_t *drops;  //  owned, drops_bytes long (arb_bigmem)
    size_t drop_count, drops_bytes;
    uint64_t gen, file, next;  //  ARB_LOG_GEN_KEY, ARB_LOG_FILE_KEY, ARB_LOG_NEXT_KEY
} arb_journal_save_t;

typedef struct _arb_journal_saver_t arb_journal_saver_t;

struct _arb_journal_t {
    sqlite3 *db;                //  owned
    arb_backfill_t *backfill;   //  owned: copies the WAL into the file; NULL: SQLite's own
    int lock_fd;                //  owned: flock'ed, so two brokers never share a journal
    bool in_txn;                //  a turn's transaction is open
    uint64_t floor_kept;        //  the id floor committed to the file, as far as this process
                                //  wrote it (0: not yet)
    uint64_t floor_txn;         //  the id floor the open transaction wrote (0: none)
    arb_journal_fault_t fault;  //  the first failure since open or the last rollback
    bool probing;               //  a probe runs: its failures are expected, logged at debug
    char *path;                 //  owned
    bool created;               //  no journal was at path: this open made it
    bool absent;                //  no file at all was at path (not even an empty one)
    uint8_t found;              //  which of S_FILES were there before this open (a bit each)
    //  The batch and the task log (arb_journal_batch.c). Rows and drops
    //  before held_turn and drop_turn are kept (the log has them, the
    //  tables not yet); those after are the open transaction's. Rows are
    //  in the order of their ids (held_sorted) unless a turn broke it.
    arb_tasklog_t *log;  //  the file of logs the turns append to; NULL for a journal without one
    arb_tasklog_t *logs[2];  //  owned: DB-tasklog, and DB-tasklog2 once a save has used it
    uint64_t log_file;       //  the index in logs of log
    uint64_t log_next;       //  the generation the next save's records get (0: none yet)
    const char *vfs;         //  SQLite's VFS for the saver's connection (NULL: the default)
    arb_tasklog_fault_fn *log_fault;  //  test builds: the logs' fault hook (NULL: none)
    arb_journal_saver_t *saver;  //  owned: writes checkpoints off the loop; NULL: the loop does
    bool saving;                 //  a save runs: held[0, frozen_held) and drops[0, frozen_drops)
    size_t frozen_held, frozen_drops, frozen_bytes;  //  are the saver's (copied)
    uint64_t *save_ids;     //  owned: the ids of held[0, frozen_held), sorted (or NULL: not made)
    uint64_t *save_drops;   //  owned: drops[0, frozen_drops), sorted (or NULL: not made)
    uint64_t save_next;     //  the running save's next generation
    bool log_on;            //  turns may commit to the log (arb_journal_set_log)
    bool log_paused;        //  an append failed: the tables take turns until a checkpoint
    bool checkpoint_due;    //  the next turn that writes goes to the tables
    bool log_sync;          //  fdatasync each append (--sync full)
    uint64_t log_gen;       //  the generation of the records the tables have not taken
    uint64_t log_replayed;  //  records read back at open
    arb_journal_held_t *held;  //  owned: rows kept, then the turn's
    size_t held_count, held_max, held_turn, held_written, held_dead;
    bool held_sorted;
    int32_t held_priority;  //  the priority of the first row held since none were
    bool held_mixed;        //  a row held since then has another
    uint64_t *drops;        //  owned: drops of rows in the tables kept, then the turn's drops
    size_t drop_count, drop_max, drop_turn, drops_written;
    size_t drops_sorted;  //  the drops kept before this (after a running save's) are in id order
    uint64_t drop_top;    //  the largest id the turn dropped (0: none)
    char *batch_bytes;    //  owned: the encoded rows
    size_t batch_size, batch_max, bytes_turn;
    bool tables;       //  the open transaction holds every row and drop kept and held
    bool must_tables;  //  the open transaction commits to the tables, not the log
    bool view_kept;    //  a read wrote the rows kept into it: it commits them, if anything
    bool settling;     //  the batch is being written
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

//  The same for a read of task id's row alone: straight from the tables
//  when the batch has nothing of it (arb_journal_batch_holds), so that a
//  STATUS during a backlog the log keeps does not write the rows kept
//  into a view first (tens of milliseconds for tens of thousands). Only
//  for a read that is ended before anything else runs on the connection:
//  it does not wait for a running save, and a write after it waits and
//  begins the transaction again, which SQLite does not do while a
//  statement is open.
int arb_journal_step_id (arb_journal_t *self, sqlite3_stmt *stmt, uint64_t id);

//  Whether a read cannot see a plain row, so need not wait for the rows
//  the batch and the log hold (metadata, keys, final tasks).
bool arb_journal_misses_log (arb_journal_t *self, sqlite3_stmt *stmt);

//  Prepares a statement into a slot, which arb_journal_destroy finalizes.
//  0 or -1.
int arb_journal_prepare (arb_journal_t *self, sqlite3_stmt **stmt, const char *sql);

//  The batch (arb_journal_batch.c). Prepares its statements: 0 or -1.
int arb_journal_batch_prepare (arb_journal_t *self);
//  Whether a plain row is small enough to be held: one whose headers and
//  payload are bigger is written at once (the copy would cost more than
//  the statement saves).
bool arb_journal_batch_takes (const arb_journal_row_t *row);
//  Holds a plain row (one that insert_plain writes whole) to be written
//  with the others of its batch, or logged with its turn. 0 or -1.
int arb_journal_batch_insert (arb_journal_t *self,
                              const arb_task_t *task,
                              const arb_journal_row_t *row);
//  Holds a task's id, for its row to be deleted with the others of its
//  batch (after every row held before it is written). 0 or -1.
int arb_journal_batch_drop (arb_journal_t *self, uint64_t id);
//  Before stmt runs: a write makes the transaction one for the tables;
//  any statement but BEGIN, COMMIT and ROLLBACK first gets every row and
//  drop kept and held written into the transaction, which a read outside
//  one opens (a view, closed by the next commit). 0 or -1.
int arb_journal_batch_before (arb_journal_t *self, sqlite3_stmt *stmt);
//  Commits the open transaction: to the log, or to the tables (a
//  checkpoint when anything is kept). 0 or -1 (nothing of it stays).
int arb_journal_batch_commit (arb_journal_t *self);
//  Takes in a save that has ended, so that its memory goes (a commit does;
//  this, between turns, for a broker gone idle).
void arb_journal_batch_take_ended (arb_journal_t *self);
//  Forgets the transaction's rows and drops (it is rolled back).
void arb_journal_batch_forget (arb_journal_t *self);
//  Opens the task log's files beside the journal and replays them: every
//  record of the tables' generation (and of the next, in the other file)
//  is kept, then checkpointed. A log of some size beside a fresh journal
//  (fresh) is refused. With --sync full, starts the saver. 0 or -1 (the
//  log then closed, nothing kept).
int arb_journal_batch_open_log (arb_journal_t *self, bool fresh);
//  Refuses, naming it, a log of some size beside a journal file that is
//  not there yet (or empty), before SQLite makes one: a journal made for
//  a refused start would be an old one at the next, and the log's
//  records would be written over. 0 or -1.
int arb_journal_batch_check_fresh (arb_journal_t *self);
//  Writes whatever the log holds to the tables, in a transaction of its
//  own (none may be open): 0 or -1.
int arb_journal_batch_checkpoint (arb_journal_t *self);
//  The same at a clean close, which also names the log's first file in
//  the tables: the second is needed at the next open only after a crash
//  (and a journal that needs it and lacks it is refused). 0 or -1.
int arb_journal_batch_close (arb_journal_t *self);
//  Whether the open transaction has nothing of its own to commit (a view
//  at most).
bool arb_journal_batch_is_idle (arb_journal_t *self);
//  Frees the batch's memory and closes the log.
void arb_journal_batch_destroy (arb_journal_t *self);
//  The rows' encoding, shared with the saver: the SQL of an INSERT of
//  count rows and of a DELETE of count ids (the caller frees it); the
//  batch size index k (1 << k rows) for count; an encoded row's size;
//  its binding into an INSERT's slot at base.
char *arb_journal_batch_insert_sql (size_t count);
char *arb_journal_batch_drop_sql (size_t count);
size_t arb_journal_batch_size_index (size_t count);
size_t arb_journal_batch_row_size (const char *row);
void arb_journal_batch_bind_row (sqlite3_stmt *stmt, int base, const char *row);

//  The saver (arb_journal_saver.c): its own connection to path (through
//  vfs) and thread; its commits wake backfill (may be NULL). NULL if
//  either fails (logged).
arb_journal_saver_t *
arb_journal_saver_new (const char *path, const char *vfs, arb_backfill_t *backfill);
//  Waits for a save that runs, then stops and closes.
void arb_journal_saver_destroy (arb_journal_saver_t **self_p);
//  Starts a save (none may run), taking it.
void arb_journal_saver_start (arb_journal_saver_t *self, arb_journal_save_t **save_p);
//  Whether no save runs.
bool arb_journal_saver_ended (arb_journal_saver_t *self);
//  Waits until no save runs: the last one's result, 0 if it committed.
int arb_journal_saver_wait (arb_journal_saver_t *self);
//  Has SQLite's WAL hook of db wake backfill's copy (arb_journal.c).
void arb_journal_watch_wal (sqlite3 *db, arb_backfill_t *backfill);
//  A kept or held row's payload and headers, if the batch has it: 1, and
//  new frames; 0 if not.
int arb_journal_batch_payload (arb_journal_t *self,
                               uint64_t id,
                               zframe_t **payload,
                               zframe_t **headers);

//  A read of a queue's ready rows beside the tables (arb_journal.h,
//  arb_journal_load_ready): the live rows held of the queue from a key
//  on, in the backlog's order, and every drop held, sorted.
typedef struct {
    int32_t priority;
    uint64_t id;
    size_t at;  //  offset in batch_bytes
} arb_journal_mark_t;

typedef struct {
    arb_journal_mark_t *rows;  //  owned: the rows held to hand on, in order
    size_t count;              //  rows
    size_t next;               //  the next row to hand on
    const uint64_t *kept;      //  borrowed: the drops kept, sorted
    size_t kept_count;
    const uint64_t *turn;  //  borrowed: the turn's drops, sorted
    size_t turn_count;
    const uint64_t *saved;  //  borrowed: the ids a running save writes, sorted
    size_t saved_count;
    const uint64_t *save_drops;  //  borrowed: the drops a running save writes, sorted
    size_t save_drop_count;
} arb_journal_beside_t;

//  Whether the batch has anything of task id's row: a row held (kept or
//  the turn's), a drop held, or the transaction has the batch's writes
//  already. When it has not, a read of that row alone needs no view of
//  the rows kept, and does not wait for a save (it writes none of it).
bool arb_journal_batch_holds (arb_journal_t *self, uint64_t id);
//  Whether a read of task id's row alone is answered by the row held: it
//  is live (not ended), no drop held names it, and the transaction holds
//  none of the batch (else the tables answer, through a view if need be).
//  Then *at is the row's offset (arb_journal_batch_row), and *queue its
//  queue's name, not terminated, in the batch's bytes (valid until the
//  batch next changes). The row is the tables' row to be: a plain task's
//  other columns have their defaults, and a write to the task makes the
//  turn's writes go to the tables first (arb_journal_batch_before).
bool arb_journal_batch_live (arb_journal_t *self, uint64_t id, size_t *at, arb_bin_t *queue);

//  Opens such a read, at most max rows held: true, and *beside filled
//  (valid until the batch next changes); false when the tables alone are
//  the whole journal for the read: the open transaction holds some of the
//  batch already (as after a view), or a write failed in it.
bool arb_journal_batch_beside (arb_journal_t *self,
                               const char *queue,
                               int32_t priority,
                               uint64_t id,
                               size_t max,
                               arb_journal_beside_t *beside);
//  Whether a row held or of the tables has a drop held (it ended).
bool arb_journal_beside_dropped (const arb_journal_beside_t *beside, uint64_t id);
//  Whether a row of the tables was written by a save that runs: memory
//  holds it until the save is taken in, and the read takes memory's.
bool arb_journal_beside_saved (const arb_journal_beside_t *beside, uint64_t id);
//  Frees what the read holds; *beside is left empty.
void arb_journal_beside_end (arb_journal_beside_t *beside);
//  A held row as the tables would give it: task (a plain row has no ext,
//  and the columns insert_plain leaves out have their defaults), its name
//  copied into name (ARB_NAME_MAX + 1 bytes), body into the batch's bytes
//  (valid until the batch next changes).
void arb_journal_batch_row (
    arb_journal_t *self, size_t at, arb_task_t *task, char *name, arb_journal_body_t *body);

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
