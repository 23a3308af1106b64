/*  arb_journal.c — the SQLite journal: the file, its schema, statements
    and transactions (tasks in arb_journal_tasks.c, metadata and
    schedules in arb_journal_meta.c); see arb_journal.h.

    Schema, version 10 (PRAGMA user_version; version 2 added
    tasks.soft_timeout_ms, version 3 the schedules table, version 4
    attempts.seq, version 5 tasks.delivered and tasks_queue, version 6
    tasks_order in place of tasks_queue, version 7 both indexes below as
    they are now, version 8 tasks.unwatched, version 9 no table: the task
    log's second file, version 10 no table: tasks.copies counted):

      tasks     one row per task, final or not, until the retention sweep
                removes it. `state` holds only logical states (waiting,
                scheduled, ready, and the final ones): a running task is
                `ready` here, so a restart gives it back. `purge_at_ms` is
                set when the task becomes final. `delivered` counts the
                times it was handed out, as of its last write (a dispatch
                writes nothing; the end of the lease, or a clean stop,
                writes the count). `unwatched` is 1 for a task whose
                submitter said nobody asks about it after its end (the
                gateway's messages), 0 otherwise: with a retention of 0
                its row goes as it ends (arb_life.c), read back from here
                or not. `copies` is a fan-out task's count of endpoint
                copies (the rows whose `origin` it is), stored with its row
                in the transaction that stores them: a restart tells a
                fan-out task, waiting for its copies, from one waiting for
                parents by it, and a retry refuses it.
      attempts  one row per attempt that ended other than by success:
                the task's history (the successful attempt is in `tasks`),
                in the order they ended (`seq`, from 1 per task; `attempt`
                is the attempt's number, which starts again at 1 when a
                dead task is retried). Bounded: a task keeps its first
                ARB_HISTORY_FIRST and its last ARB_HISTORY_LAST rows, and
                each new row past them removes the oldest of the last ones,
                so a task that fails for ever costs a fixed number of rows;
                the dropped ones are counted as the gap between the rows
                kept and the highest seq.
      deps      DAG edges: child waits for parent; kind 0 on success,
                1 on failure, 2 always.
      flows     DAGs, groups and pipes: tasks submitted as one (tasks.flow).
      meta      small key/value settings (queue settings, the broker's
                start count, the gateway's exchanges later).
      schedules (version 3) periodic schedules, by name: the expression,
                zone and catch-up policy, the template of their tasks, and
                their state: paused, cursor_ms (every slot at or before it
                is done with: fired or skipped) and the last slot fired.

    Indexes are partial where they can be, because every index is paid on
    the hot path:
      tasks_order   open tasks (state < 5) by queue, state and priority,
                    highest first, then id, which SQLite appends: the open
                    tasks read at start, a queue's open tasks for
                    queue-wide operations in one statement, and a queue's
                    cold ready tasks read back in dispatch order
                    (arb_queue.h). A task leaves it when it ends, so that
                    a finished task costs one index write there, not two
                    (moved to its final state) and a third at its purge.
      tasks_purge   final tasks (every one has purge_at_ms) by purge time,
                    then queue and state: the retention sweep, and what is
                    read of final tasks by queue (their counts at start, a
                    queue's dead tasks, a queue forgotten) without the
                    table.
      tasks_ckey    client keys, only for tasks that have one.
    A statement meant to use a partial index says its condition, even when
    another term implies it (SQLite does not infer "state < 5" from
    "state = 3").

    Version 5 (from 4): tasks.delivered (an older journal counts the
    attempts and lost leases it recorded), and tasks_queue in place of
    tasks_open (state) WHERE state < 5.

    Version 6 (from 5): tasks_order (queue, state, priority DESC) in place
    of tasks_queue (queue, state): the same entries, each with its
    priority, so that a queue's ready rows come in dispatch order.

    Version 7 (from 6): tasks_order for open tasks only, tasks_purge
    with queue and state.

    Version 8 (from 7): tasks.unwatched, 0 in the rows of an older
    journal (whose broker kept the mark in memory only: such a task waits
    for the sweep, as it would have).

    Version 9 (from 8): no table changes. With --sync full the task log
    may be two files, named by meta keys (broker.log_file, broker.log_next;
    arb_journal_batch.c); an arbiterd of version 8 would read the first
    file only, and lose what a crash left in the second, so the version
    makes it refuse the journal instead.

    Version 10 (from 9): no table changes. An arbiterd of version 9 left
    every fan-out task's copies at 0 (it counted them in memory only), so
    that a restart took one still waiting for a task waiting for parents,
    and a retry took a dead one for a task of its own. The migration counts
    them from their copies' rows; a dead one whose copies are gone (the
    retention sweep) counts the missing endpoints its error names, which
    were copies too. A waiting one with no copy at all (a broadcast that
    found no worker) stays at 0 and ends dead at start
    (arb_life_resume_waiting).

    Changing the schema: bump ARB_SCHEMA_VERSION, add a function
    s_migrate_<old>_<new> that changes a version-<old> database in place
    (ALTER, CREATE), and call it from s_migrate's chain, which a new
    journal also walks from version 1; never edit s_create_v1 or an
    existing migration, because journals made by them exist. The chain
    runs in one transaction: a journal is at one version or the last,
    never between. A journal newer than this broker is refused, not
    guessed at.

    Whose file it is: PRAGMA application_id holds ARB_APPLICATION_ID in
    every journal made or migrated since it was introduced (schema 5); an
    older one is known by its user_version and its tasks and meta tables.
    A file with another application id, or with tables but no version, or
    with a version but not those tables, is another program's and is
    refused whole: the broker never adds its tables to it.
*/

#include "arb_journal_priv.h"
#include "arb_queue.h"

#include <sqlite3.h>
#include <sys/file.h>

//  A test build opens the journal through a VFS that fails the writes it
//  is told to (arb_journal_faults.c); arbiterd itself is built without it.
#ifdef ARB_JOURNAL_FAULTS
#include "arb_journal_faults.h"
#define S_VFS arb_journal_faults_vfs ()
#else
#define S_VFS NULL
#endif

#define ARB_SCHEMA_VERSION 10
#define ARB_APPLICATION_ID 0x41524254  //  "ARBT": PRAGMA application_id of a journal
#define ARB_PROBE_KEY      "broker.probe"


//  ---------------------------------------------------------------------
//  Schema

static const char *s_create_v1 =
    "CREATE TABLE tasks ("
    " id INTEGER PRIMARY KEY,"
    " ckey TEXT,"
    " queue TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 1,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " lost INTEGER NOT NULL DEFAULT 0,"
    " backoff INTEGER NOT NULL DEFAULT 0,"
    " backoff_ms INTEGER NOT NULL DEFAULT 0,"
    " backoff_cap_ms INTEGER NOT NULL DEFAULT 0,"
    " jitter INTEGER NOT NULL DEFAULT 1,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0,"
    " expires_ms INTEGER NOT NULL DEFAULT 0,"
    " retention_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL DEFAULT 0,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " purge_at_ms INTEGER,"
    " worker TEXT,"
    " error TEXT,"
    " headers BLOB,"
    " payload BLOB,"
    " result BLOB,"
    " flow INTEGER,"
    " ref TEXT,"
    " input INTEGER NOT NULL DEFAULT 0,"
    " origin INTEGER,"
    " endpoint TEXT,"
    " parents INTEGER NOT NULL DEFAULT 0,"
    " copies INTEGER NOT NULL DEFAULT 0,"
    " has_children INTEGER NOT NULL DEFAULT 0,"
    " args BLOB);"
    "CREATE UNIQUE INDEX tasks_ckey ON tasks (ckey) WHERE ckey IS NOT NULL;"
    "CREATE INDEX tasks_open ON tasks (state) WHERE state < 5;"
    "CREATE INDEX tasks_purge ON tasks (purge_at_ms) WHERE purge_at_ms IS NOT NULL;"
    "CREATE INDEX tasks_flow ON tasks (flow) WHERE flow IS NOT NULL;"
    "CREATE INDEX tasks_origin ON tasks (origin) WHERE origin IS NOT NULL;"
    "CREATE TABLE flows ("
    " id INTEGER PRIMARY KEY,"
    " kind INTEGER NOT NULL,"
    " name TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX flows_name ON flows (name) WHERE name IS NOT NULL;"
    "CREATE TABLE attempts ("
    " task_id INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " ended_ms INTEGER NOT NULL,"
    " worker TEXT,"
    " outcome INTEGER NOT NULL,"
    " error TEXT,"
    " PRIMARY KEY (task_id, attempt)) WITHOUT ROWID;"
    "CREATE TABLE deps ("
    " child INTEGER NOT NULL,"
    " parent INTEGER NOT NULL,"
    " kind INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (child, parent)) WITHOUT ROWID;"
    "CREATE INDEX deps_parent ON deps (parent);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;";


//  What a failure of SQLite says about the journal: the disk (no space,
//  or an I/O error writing or syncing it: a write may work again later)
//  or anything else (a damaged file, a read error: it will not).
static arb_journal_fault_t
s_classify (int code)
{
    if ((code & 0xff) == SQLITE_FULL)
        return ARB_JOURNAL_FULL;
    switch (code) {
        case SQLITE_IOERR:  //  unspecified: SQLite says this of a failed write or commit
        case SQLITE_IOERR_WRITE:
        case SQLITE_IOERR_FSYNC:
        case SQLITE_IOERR_DIR_FSYNC:
        case SQLITE_IOERR_TRUNCATE:
        case SQLITE_IOERR_SHMSIZE:  //  the -shm file could not grow
            return ARB_JOURNAL_FULL;
        default:
            return ARB_JOURNAL_BROKEN;
    }
}

//  Notes the failure SQLite just reported, if it is the first since the
//  last rollback; a damaged file says so once, naming it.
void
arb_journal_note_fault (arb_journal_t *self)
{
    int code = sqlite3_extended_errcode (self->db);
    if (self->fault != ARB_JOURNAL_SOUND || code == SQLITE_OK)
        return;
    self->fault = s_classify (code);
    if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB)
        zsys_error ("journal: %s is damaged (%s); arbiterd will not guess at its contents: "
                    "restore it from a backup",
                    self->path, sqlite3_errmsg (self->db));
}

static int
s_exec (arb_journal_t *self, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec (self->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        arb_journal_note_fault (self);
        zsys_error ("journal: statement failed path=%s error=\"%s\"", self->path,
                    err ? err : sqlite3_errmsg (self->db));
        sqlite3_free (err);
        return -1;
    }
    return 0;
}

//  Version 2: a task's soft timeout (the worker warns its handler).
static int
s_migrate_1_2 (arb_journal_t *self)
{
    return s_exec (self, "ALTER TABLE tasks ADD COLUMN soft_timeout_ms INTEGER NOT NULL DEFAULT 0");
}

//  Version 3: periodic schedules.
static int
s_migrate_2_3 (arb_journal_t *self)
{
    return s_exec (self, "CREATE TABLE schedules ("
                         " name TEXT PRIMARY KEY,"
                         " cron TEXT NOT NULL,"
                         " zone TEXT NOT NULL,"
                         " catch_up TEXT NOT NULL,"
                         " paused INTEGER NOT NULL DEFAULT 0,"
                         " created_ms INTEGER NOT NULL,"
                         " cursor_ms INTEGER NOT NULL,"
                         " last_slot_ms INTEGER NOT NULL DEFAULT 0,"
                         " last_id INTEGER NOT NULL DEFAULT 0,"
                         " queue TEXT NOT NULL,"
                         " task TEXT NOT NULL,"
                         " priority INTEGER NOT NULL DEFAULT 0,"
                         " retries INTEGER NOT NULL DEFAULT 0,"
                         " backoff INTEGER NOT NULL DEFAULT 0,"
                         " backoff_ms INTEGER NOT NULL DEFAULT 0,"
                         " backoff_cap_ms INTEGER NOT NULL DEFAULT 0,"
                         " no_jitter INTEGER NOT NULL DEFAULT 0,"
                         " timeout_ms INTEGER NOT NULL DEFAULT 0,"
                         " soft_timeout_ms INTEGER NOT NULL DEFAULT 0,"
                         " retention_ms INTEGER NOT NULL DEFAULT 0,"
                         " payload BLOB NOT NULL) WITHOUT ROWID;");
}

//  Version 4: attempts in the order they ended (seq), so that none
//  overwrites another of the same number (a lost lease and the attempt
//  after it; the rounds of a retried task), and the history bounded
//  (see the schema above), old histories trimmed to the bound.
static int
s_migrate_3_4 (arb_journal_t *self)
{
    char trim[256];
    snprintf (trim, sizeof (trim),
              "DELETE FROM attempts WHERE seq > %d AND seq <= (SELECT max (seq) FROM attempts a "
              "WHERE a.task_id = attempts.task_id) - %d;",
              ARB_HISTORY_FIRST, ARB_HISTORY_LAST);
    if (s_exec (self, "CREATE TABLE attempts_v4 ("
                      " task_id INTEGER NOT NULL,"
                      " seq INTEGER NOT NULL,"
                      " attempt INTEGER NOT NULL,"
                      " started_ms INTEGER NOT NULL,"
                      " ended_ms INTEGER NOT NULL,"
                      " worker TEXT,"
                      " outcome INTEGER NOT NULL,"
                      " error TEXT,"
                      " PRIMARY KEY (task_id, seq)) WITHOUT ROWID;"
                      "INSERT INTO attempts_v4 SELECT task_id, attempt, attempt, started_ms, "
                      "ended_ms, worker, outcome, error FROM attempts;"
                      "DROP TABLE attempts;"
                      "ALTER TABLE attempts_v4 RENAME TO attempts;"))
        return -1;
    return s_exec (self, trim);
}

//  Version 5: the delivery count, and an index of tasks by queue.
static int
s_migrate_4_5 (arb_journal_t *self)
{
    return s_exec (self, "ALTER TABLE tasks ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;"
                         "UPDATE tasks SET delivered = attempts + lost WHERE state < 5;"
                         "DROP INDEX tasks_open;"
                         "CREATE INDEX tasks_queue ON tasks (queue, state);");
}

//  Version 6: the index by queue also orders a queue's tasks by priority.
static int
s_migrate_5_6 (arb_journal_t *self)
{
    return s_exec (self, "DROP INDEX tasks_queue;"
                         "CREATE INDEX tasks_order ON tasks (queue, state, priority DESC);");
}

//  Version 7: only open tasks in tasks_order, and tasks_purge covering
//  what is read of final tasks by queue (see the schema above).
static int
s_migrate_6_7 (arb_journal_t *self)
{
    return s_exec (self, "DROP INDEX tasks_order;"
                         "CREATE INDEX tasks_order ON tasks (queue, state, priority DESC) "
                         "WHERE state < 5;"
                         "DROP INDEX tasks_purge;"
                         "CREATE INDEX tasks_purge ON tasks (purge_at_ms, queue, state) "
                         "WHERE purge_at_ms IS NOT NULL;");
}

//  Version 8: the unwatched mark, so that a task read back (at start, or
//  from the cold backlog) still goes at its end with a retention of 0.
static int
s_migrate_7_8 (arb_journal_t *self)
{
    return s_exec (self, "ALTER TABLE tasks ADD COLUMN unwatched INTEGER NOT NULL DEFAULT 0");
}

//  Version 10: the copies of fan-out tasks stored before (above). A copy
//  never has copies; a fan-out task that ran nothing (no attempt, no lost
//  lease, no parents) and died naming missing endpoints is one whatever
//  its rows left.
static int
s_migrate_9_10 (arb_journal_t *self)
{
    return s_exec (
        self, "UPDATE tasks SET copies = (SELECT count(*) FROM tasks c WHERE c.origin = tasks.id) "
              "WHERE copies = 0 AND origin IS NULL AND id IN (SELECT origin FROM tasks WHERE "
              "origin IS NOT NULL);"
              "UPDATE tasks SET copies = length (error) - length (replace (error, ',', '')) + 1 "
              "WHERE copies = 0 AND origin IS NULL AND state = 7 AND parents = 0 AND attempts = 0 "
              "AND lost = 0 AND error LIKE 'incomplete: missing endpoints: %';");
}

//  The first column of the first row of sql, an integer (a PRAGMA, a
//  count). 0 or -1.
static int
s_number (arb_journal_t *self, const char *sql, int *number)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        arb_journal_note_fault (self);
        zsys_error ("journal: cannot read %s: %s", self->path, sqlite3_errmsg (self->db));
        return -1;
    }
    int rc = sqlite3_step (stmt);
    *number = sqlite3_column_int (stmt, 0);
    if (rc != SQLITE_ROW) {
        arb_journal_note_fault (self);
        zsys_error ("journal: cannot read %s: %s", self->path, sqlite3_errmsg (self->db));
    }
    sqlite3_finalize (stmt);
    return rc == SQLITE_ROW ? 0 : -1;
}

//  Refuses a file that is not an arbiter journal this broker can use,
//  saying which file and why: another program's database (its application
//  id; tables without a schema version; a schema version without the
//  journal's tables), or a newer schema. Sets *version. 0 or -1.
static int
s_check_owner (arb_journal_t *self, int *version)
{
    int application, objects, ours;
    if (s_number (self, "PRAGMA user_version", version)
        || s_number (self, "PRAGMA application_id", &application)
        || s_number (self, "SELECT count(*) FROM sqlite_master", &objects)
        || s_number (self,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                     "('tasks', 'meta')",
                     &ours))
        return -1;
    const char *advice = "arbiterd will not change it: give --db the path of an arbiter "
                         "journal, or of a file that does not exist yet";
    if (application != 0 && application != ARB_APPLICATION_ID)
        zsys_error ("journal: %s is another program's SQLite database (application id 0x%08x, "
                    "not arbiter's 0x%08x); %s",
                    self->path, (unsigned) application, ARB_APPLICATION_ID, advice);
    else if (*version == 0 && objects > 0)
        zsys_error ("journal: %s is another program's SQLite database (it has tables of its "
                    "own and no arbiter schema version); %s",
                    self->path, advice);
    else if (*version > 0 && ours < 2)
        zsys_error ("journal: %s is another program's SQLite database (schema version %d, but "
                    "not the tables of an arbiter journal); %s",
                    self->path, *version, advice);
    else if (*version > ARB_SCHEMA_VERSION)
        zsys_error ("journal: %s has schema version %d, newer than this arbiterd's %d: run the "
                    "arbiterd that wrote it, or a newer one (a journal is never taken back to "
                    "an older schema)",
                    self->path, *version, ARB_SCHEMA_VERSION);
    else
        return 0;
    return -1;
}

//  Brings a journal of schema version (s_check_owner) up to date.
static int
s_migrate (arb_journal_t *self, int version)
{
    if (version == ARB_SCHEMA_VERSION)
        return 0;
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    int rc = 0;
    if (version == 0)
        rc = s_exec (self, s_create_v1);
    if (rc == 0 && version <= 1)
        rc = s_migrate_1_2 (self);
    if (rc == 0 && version <= 2)
        rc = s_migrate_2_3 (self);
    if (rc == 0 && version <= 3)
        rc = s_migrate_3_4 (self);
    if (rc == 0 && version <= 4)
        rc = s_migrate_4_5 (self);
    if (rc == 0 && version <= 5)
        rc = s_migrate_5_6 (self);
    if (rc == 0 && version <= 6)
        rc = s_migrate_6_7 (self);
    if (rc == 0 && version <= 7)
        rc = s_migrate_7_8 (self);
    //  8 to 9 changes no table (above)
    if (rc == 0 && version <= 9)
        rc = s_migrate_9_10 (self);
    char sql[128];
    snprintf (sql, sizeof (sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
              ARB_SCHEMA_VERSION, ARB_APPLICATION_ID);
    if (rc == 0)
        rc = s_exec (self, sql);
    if (rc == 0 && s_exec (self, "COMMIT") == 0) {
        if (version > 0)
            zsys_notice ("journal: schema migrated path=%s from=%d to=%d", self->path, version,
                         ARB_SCHEMA_VERSION);
        return 0;
    }
    s_exec (self, "ROLLBACK");
    return -1;
}

//  ---------------------------------------------------------------------
//  Statements

int
arb_journal_prepare (arb_journal_t *self, sqlite3_stmt **stmt, const char *sql)
{
    assert (self->prepared_count < sizeof (self->prepared) / sizeof (self->prepared[0]));
    self->prepared[self->prepared_count++] = stmt;
    if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL)
        != SQLITE_OK) {
        zsys_error ("journal: cannot prepare \"%s\": %s", sql, sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

#define TASK_COLUMNS                                                                            \
    "id, queue, name, state, priority, max_attempts, attempts, lost, backoff, backoff_ms, "     \
    "backoff_cap_ms, jitter, timeout_ms, not_before_ms, expires_ms, retention_ms, created_ms, " \
    "flow, input, origin, parents, copies, has_children, args IS NOT NULL, soft_timeout_ms, "   \
    "delivered, length (payload), unwatched"

//  TASK_COLUMNS up to has_children, for INSERT (which sets soft_timeout_ms,
//  delivered and unwatched after the columns it takes from the row).
#define INSERT_COLUMNS                                                                          \
    "id, queue, name, state, priority, max_attempts, attempts, lost, backoff, backoff_ms, "     \
    "backoff_cap_ms, jitter, timeout_ms, not_before_ms, expires_ms, retention_ms, created_ms, " \
    "flow, input, origin, parents, copies, has_children"

#define INFO_COLUMNS                                                                         \
    "id, queue, name, ckey, state, priority, attempts, max_attempts, lost, created_ms, "     \
    "not_before_ms, started_ms, finished_ms, timeout_ms, worker, error, flow, ref, origin, " \
    "endpoint, (SELECT kind FROM flows WHERE id = tasks.flow), "                             \
    "(SELECT name FROM flows WHERE id = tasks.flow), soft_timeout_ms"

#define SCHEDULE_COLUMNS                                                                        \
    "name, cron, zone, catch_up, paused, created_ms, cursor_ms, last_slot_ms, last_id, queue, " \
    "task, priority, retries, backoff, backoff_ms, backoff_cap_ms, no_jitter, timeout_ms, "     \
    "retention_ms, payload, soft_timeout_ms"

//  The ids of a queue's tasks, open (tasks_order) and final (tasks_purge):
//  neither index alone holds them all, and a plain "queue = ?1" would scan
//  the table.
#define S_QUEUE_IDS                                                          \
    "SELECT id FROM tasks WHERE queue = ?1 AND state < 5 UNION ALL "         \
    "SELECT id FROM tasks WHERE purge_at_ms IS NOT NULL AND queue = ?1 AND " \
    "state >= 5"

static int
s_prepare_all (arb_journal_t *self)
{
    struct {
        sqlite3_stmt **stmt;
        const char *sql;
    } all[] = {
        {&self->begin, "BEGIN"},
        {&self->commit, "COMMIT"},
        {&self->rollback, "ROLLBACK"},
        {&self->insert,
         "INSERT INTO tasks (" INSERT_COLUMNS ", ckey, headers, payload, ref, endpoint, args, "
         "soft_timeout_ms, delivered, unwatched) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
         "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)"},
        //  the columns a plain task sets (arb_journal_insert); the others
        //  take their defaults
        {&self->insert_plain,
         "INSERT INTO tasks (id, queue, name, state, priority, max_attempts, created_ms, headers, "
         "payload, unwatched) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
        {&self->find_key, "SELECT id, state, flow FROM tasks WHERE ckey = ?1"},
        {&self->save,
         "UPDATE tasks SET state = ?2, attempts = ?3, lost = ?4, not_before_ms = ?5, "
         "started_ms = ?6, finished_ms = ?7, worker = coalesce (?8, worker), expires_ms = ?12, "
         "delivered = ?13, "
         "error = CASE WHEN ?9 IS NULL THEN error WHEN ?9 = '' THEN NULL ELSE ?9 END, "
         "result = coalesce (?10, result), purge_at_ms = ?11 WHERE id = ?1"},
        {&self->add_attempt,
         "INSERT INTO attempts (task_id, seq, attempt, started_ms, ended_ms, worker, outcome, "
         "error) VALUES (?1, (SELECT coalesce (max (seq), 0) + 1 FROM attempts WHERE task_id = "
         "?1), ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&self->trim_attempts,
         "DELETE FROM attempts WHERE task_id = ?1 AND seq > ?2 AND seq <= (SELECT max (seq) "
         "FROM attempts WHERE task_id = ?1) - ?3"},
        {&self->load_payload, "SELECT payload, headers, args FROM tasks WHERE id = ?1"},
        //  by queue (tasks_queue): each queue's tasks in the order they came
        {&self->load_open, "SELECT " TASK_COLUMNS " FROM tasks WHERE state < 5 "
                           "ORDER BY queue, state, priority DESC, id"},
        //  a queue's cold tasks, in dispatch order from (priority, id) on
        //  (with the payload: what is read back is dispatched next, and a
        //  read by id per task costs more than the whole ordered read);
        //  "state < 5" too, because SQLite takes a partial index only for a
        //  query that says its condition, and INDEXED BY makes sure of it
        {&self->load_ready, "SELECT " TASK_COLUMNS ", payload, headers FROM tasks "
                            "INDEXED BY tasks_order WHERE queue = ?1 AND state = 3 AND state < 5 "
                            "AND (priority < ?2 OR (priority = ?2 AND id >= ?3)) "
                            "ORDER BY priority DESC, id LIMIT ?4"},
        {&self->load_task, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1"},
        //  final rows by queue: through tasks_purge, which every final row is in
        {&self->dead_ids, "SELECT id FROM tasks INDEXED BY tasks_purge "
                          "WHERE purge_at_ms IS NOT NULL AND state = 7 AND queue = ?1 ORDER BY id"},
        {&self->flow_dead_ids,
         "SELECT id FROM tasks WHERE flow = ?1 AND state = 7 AND origin IS NULL ORDER BY id"},
        {&self->task_info, "SELECT " INFO_COLUMNS ", result, args FROM tasks WHERE id = ?1"},
        {&self->add_dep, "INSERT OR REPLACE INTO deps (child, parent, kind) VALUES (?1, ?2, ?3)"},
        {&self->set_has_children, "UPDATE tasks SET has_children = 1 WHERE id = ?1"},
        {&self->parents,
         "SELECT d.parent, d.kind, t.state, t.ref, t.result, t.error FROM deps d "
         "LEFT JOIN tasks t ON t.id = d.parent WHERE d.child = ?1 ORDER BY d.parent"},
        {&self->children, "SELECT child, kind FROM deps WHERE parent = ?1 ORDER BY child"},
        {&self->copies,
         "SELECT endpoint, id, state, error, finished_ms, result FROM tasks WHERE origin = ?1 "
         "ORDER BY id"},
        {&self->insert_flow, "INSERT INTO flows (kind, name, created_ms) VALUES (?1, ?2, ?3)"},
        {&self->flow_kind, "SELECT kind FROM flows WHERE id = ?1"},
        {&self->flows_named, "SELECT id FROM flows WHERE name = ?1 AND kind = ?2 ORDER BY id"},
        {&self->history,
         "SELECT attempt, started_ms, ended_ms, worker, outcome, error, seq FROM attempts "
         "WHERE task_id = ?1 ORDER BY seq"},
        {&self->done, "SELECT state, attempts, error, result FROM tasks WHERE id = ?1"},
        {&self->state, "SELECT state, ref FROM tasks WHERE id = ?1"},
        {&self->list_final, "SELECT " INFO_COLUMNS " FROM tasks WHERE id > ?1 AND state >= 5 "
                            "AND (?2 = 0 OR state = ?2) AND (?3 IS NULL OR queue = ?3) "
                            "AND (?5 = 0 OR flow = ?5) AND (?6 = 0 OR id < ?6) "
                            "ORDER BY id LIMIT ?4"},
        //  ready rows for LIST, those in memory skipped by the caller (the
        //  cold backlog's are not); no LIMIT: it reads on past those
        {&self->list_ready, "SELECT " INFO_COLUMNS " FROM tasks WHERE id > ?1 AND state = 3 "
                            "AND (?2 IS NULL OR queue = ?2) AND (?3 = 0 OR id < ?3) "
                            "ORDER BY id"},
        {&self->list_ready_newest,
         "SELECT " INFO_COLUMNS " FROM tasks WHERE id > ?1 AND state = 3 "
         "AND (?2 IS NULL OR queue = ?2) AND (?3 = 0 OR id < ?3) ORDER BY id DESC"},
        {&self->list_final_newest,
         "SELECT " INFO_COLUMNS " FROM tasks WHERE id > ?1 AND state >= 5 "
         "AND (?2 = 0 OR state = ?2) AND (?3 IS NULL OR queue = ?3) "
         "AND (?5 = 0 OR flow = ?5) AND (?6 = 0 OR id < ?6) ORDER BY id DESC LIMIT ?4"},
        {&self->deps_of,
         "SELECT d.parent, d.kind, t.ref FROM deps d LEFT JOIN tasks t ON t.id = d.parent "
         "WHERE d.child = ?1 ORDER BY d.parent"},
        {&self->count_final, "SELECT queue, state, count(*) FROM tasks "
                             "WHERE purge_at_ms IS NOT NULL AND state >= 5 GROUP BY queue, state"},
        {&self->purge_due, "SELECT id, queue, state, "
                           //  whether it may have rows of history: an attempt that did not
                           //  succeed, a lease lost or cancelled; a task that succeeded at its
                           //  one handout has none
                           "state != 5 OR delivered != 1 OR lost > 0 OR attempts > 1, "
                           //  whether it may have edges to its parents
                           "parents > 0, has_children "
                           "FROM tasks WHERE purge_at_ms <= ?1 ORDER BY purge_at_ms LIMIT ?2"},
        {&self->keep_until, "UPDATE tasks SET purge_at_ms = ?2 "
                            "WHERE id IN (SELECT value FROM json_each (?1))"},
        {&self->scan, "SELECT id, queue, state, finished_ms, has_children FROM tasks WHERE id > ?1 "
                      "ORDER BY id LIMIT ?2"},
        //  a batch of ids as one JSON array (s_json_ids): one statement run
        //  a table, not three a task
        {&self->purge_task, "DELETE FROM tasks WHERE id IN (SELECT value FROM json_each (?1))"},
        {&self->purge_attempts,
         "DELETE FROM attempts WHERE task_id IN (SELECT value FROM json_each (?1))"},
        {&self->purge_deps, "DELETE FROM deps WHERE child IN (SELECT value FROM json_each (?1))"},
        {&self->unlose, "DELETE FROM attempts WHERE task_id = ?1 AND outcome = ?2 AND seq = "
                        "(SELECT max (seq) FROM attempts WHERE task_id = ?1)"},
        {&self->max_id,
         "SELECT max (coalesce ((SELECT max (id) FROM tasks), 0), "
         "coalesce ((SELECT CAST (value AS INTEGER) FROM meta WHERE key = 'broker.id_floor'), "
         "0))"},
        {&self->meta_get, "SELECT value FROM meta WHERE key = ?1"},
        {&self->meta_set, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)"},
        {&self->meta_del, "DELETE FROM meta WHERE key = ?1"},
        {&self->meta_list,
         "SELECT key, value FROM meta WHERE substr (key, 1, length (?1)) = ?1 ORDER BY key"},
        {&self->schedule_add, "INSERT OR REPLACE INTO schedules (" SCHEDULE_COLUMNS
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                              "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"},
        {&self->schedule_remove, "DELETE FROM schedules WHERE name = ?1"},
        {&self->schedule_state, "UPDATE schedules SET paused = ?2, cursor_ms = ?3 WHERE name = ?1"},
        {&self->schedule_fired,
         "UPDATE schedules SET cursor_ms = ?2, last_slot_ms = ?2, last_id = ?3 WHERE name = ?1"},
        {&self->schedules, "SELECT " SCHEDULE_COLUMNS " FROM schedules ORDER BY name"},
        //  ?1 .. ?2: the keys that begin with a prefix (?2 NULL: no end)
        {&self->meta_page,
         "SELECT key, value FROM meta WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) AND key > ?3 "
         "ORDER BY key LIMIT ?4"},
        {&self->meta_del_range, "DELETE FROM meta WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)"},
        {&self->set_delivered, "UPDATE tasks SET delivered = ?2 WHERE id = ?1"},
        //  the open rows that load as ready (a scheduled one whose time has come)
        {&self->deliver_ready, "UPDATE tasks SET delivered = delivered + 1 "
                               "WHERE state IN (2, 3) AND (state = 3 OR not_before_ms <= ?1)"},
        {&self->cancel_open,
         "UPDATE tasks SET state = 8, finished_ms = ?2, error = ?3, "
         "purge_at_ms = ?2 + CASE WHEN retention_ms > 0 THEN retention_ms ELSE ?4 END "
         "WHERE queue = ?1 AND state < 5 AND id NOT IN (SELECT value FROM json_each (?5)) "
         "RETURNING id, attempts"},
        {&self->forget_attempts, "DELETE FROM attempts WHERE task_id IN (" S_QUEUE_IDS ")"},
        {&self->forget_deps, "DELETE FROM deps WHERE child IN (" S_QUEUE_IDS ")"},
        {&self->forget_tasks, "DELETE FROM tasks WHERE id IN (" S_QUEUE_IDS ")"},
        {&self->probe_set,
         "INSERT OR REPLACE INTO meta (key, value) VALUES ('" ARB_PROBE_KEY "', zeroblob (?1))"},
        {&self->probe_del, "DELETE FROM meta WHERE key = '" ARB_PROBE_KEY "'"},
    };
    for (size_t i = 0; i < sizeof (all) / sizeof (all[0]); i++)
        if (arb_journal_prepare (self, all[i].stmt, all[i].sql))
            return -1;
    return arb_journal_batch_prepare (self);
}

//  Runs a statement that returns no rows, and resets it. Every write is
//  part of a turn's transaction (arb_journal_begin): a write outside one
//  would commit on its own, before the turn's replies are decided, and a
//  crash before the turn's commit would then keep half a turn. For the
//  same reason nothing but a rollback runs after a failure, until
//  arb_journal_rollback: SQLite may have rolled the transaction back by
//  itself (SQLITE_FULL, an I/O error), and what followed would commit
//  alone.
int
arb_journal_run (arb_journal_t *self, sqlite3_stmt *stmt, const char *what)
{
    assert (self->in_txn || stmt == self->begin || stmt == self->commit || stmt == self->rollback);
    if (self->fault != ARB_JOURNAL_SOUND && stmt != self->rollback)
        return -1;
    if (arb_journal_batch_before (self, stmt))
        return -1;
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rc != SQLITE_DONE) {
        arb_journal_note_fault (self);
        if (self->probing)
            zsys_debug ("journal: probe %s failed: %s", what, sqlite3_errmsg (self->db));
        else
            zsys_error ("journal: %s failed: %s", what, sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

bool
arb_journal_misses_log (arb_journal_t *self, sqlite3_stmt *stmt)
{
    //  metadata, schedules and flows; final rows: no plain row held is
    //  final or has a purge time (arb_journal_tasks.c, s_is_plain), and a
    //  row dropped is of a task that ends with nothing to keep, not final
    //  in the tables. (Not keys: a keyed task's row may be dropped.)
    return stmt == self->meta_get || stmt == self->meta_list || stmt == self->meta_page
           || stmt == self->schedules || stmt == self->flow_kind || stmt == self->flows_named
           || stmt == self->purge_due || stmt == self->count_final || stmt == self->list_final
           || stmt == self->list_final_newest;
}

int
arb_journal_step (arb_journal_t *self, sqlite3_stmt *stmt)
{
    if (arb_journal_batch_before (self, stmt)) {
        int code = sqlite3_errcode (self->db);
        return code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE ? SQLITE_ERROR : code;
    }
    return sqlite3_step (stmt);
}

int
arb_journal_step_id (arb_journal_t *self, sqlite3_stmt *stmt, uint64_t id)
{
    return arb_journal_batch_holds (self, id) ? arb_journal_step (self, stmt) : sqlite3_step (stmt);
}

//  Ends a read: resets the statement, and says whether rc, its last
//  step's result, was a failure (logged: "journal: WHAT [ID] unreadable").
int
arb_journal_read_end (
    arb_journal_t *self, sqlite3_stmt *stmt, int rc, const char *what, uint64_t id)
{
    arb_sql_done (stmt);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return 0;
    arb_journal_note_fault (self);
    if (id)
        zsys_error ("journal: %s %" PRIu64 " unreadable: %s", what, id, sqlite3_errmsg (self->db));
    else
        zsys_error ("journal: %s unreadable: %s", what, sqlite3_errmsg (self->db));
    return -1;
}

//  The ids in the first column of every row of a bound statement, or NULL
//  if the read failed.
zlistx_t *
arb_journal_read_ids (arb_journal_t *self, sqlite3_stmt *stmt, const char *what)
{
    zlistx_t *ids = zlistx_new ();
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        //  an id cast to a pointer: 0 would be no item
        if (sqlite3_column_int64 (stmt, 0) > 0)
            zlistx_add_end (ids, (void *) (uintptr_t) arb_sql_u64 (stmt, 0));
        else
            zsys_error ("journal: %s: id %" PRId64 " skipped: ids are from 1", what,
                        (int64_t) sqlite3_column_int64 (stmt, 0));
    }
    if (arb_journal_read_end (self, stmt, rc, what, 0))
        zlistx_destroy (&ids);
    return ids;
}

//  ---------------------------------------------------------------------
//  Lifecycle

static int
s_lock (arb_journal_t *self)
{
    char *lock_path = zsys_sprintf ("%s.lock", self->path);
    self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    //  the first file a start makes: a journal's directory that cannot be
    //  written (or made) is found here, and the message says it is that
    if (self->lock_fd < 0) {
        const char *slash = strrchr (self->path, '/');
        int dir_size = !slash ? 1 : slash == self->path ? 1 : (int) (slash - self->path);
        zsys_error ("journal: cannot open %s, the journal's lock file: %s; arbiterd makes it "
                    "beside the journal, so its directory, %.*s, must exist and be writable by "
                    "the user arbiterd runs as (the lock file too, if it is there), or give "
                    "another --db",
                    lock_path, strerror (errno), dir_size, slash ? self->path : ".");
        rc = -1;
    }
    else if (flock (self->lock_fd, LOCK_EX | LOCK_NB)) {
        zsys_error ("journal: %s is in use by another arbiterd, which holds its lock file %s: "
                    "stop that broker first, or give this one another --db",
                    self->path, lock_path);
        rc = -1;
    }
    zstr_free (&lock_path);
    return rc;
}

static uint32_t
s_be32 (const uint8_t *at)
{
    return (uint32_t) at[0] << 24 | (uint32_t) at[1] << 16 | (uint32_t) at[2] << 8 | at[3];
}

//  The journal's files, as a suffix of its path each: what
//  arb_journal_discard may remove.
static const char *S_FILES[] = {"", "-wal", "-shm", ARB_JOURNAL_LOG_SUFFIX,
                                ARB_JOURNAL_LOG2_SUFFIX};
#define S_FILE_COUNT (sizeof (S_FILES) / sizeof (S_FILES[0]))

static char *
s_file_path (arb_journal_t *self, size_t i)
{
    return zsys_sprintf ("%s%s", self->path, S_FILES[i]);
}

//  Notes which of the journal's files are there before this open, so that
//  a discard removes only what the open made.
static void
s_note_found (arb_journal_t *self)
{
    for (size_t i = 0; i < S_FILE_COUNT; i++) {
        char *file = s_file_path (self, i);
        if (access (file, F_OK) == 0 || errno != ENOENT)
            self->found |= (uint8_t) (1u << i);
        zstr_free (&file);
    }
}

//  Looks at an existing file before SQLite does (SQLite reads a header
//  only when it first needs a page, and takes an empty file for a new
//  database): refuses, naming it, a file that does not begin with
//  SQLite's header, and one cut short, whose header counts more pages
//  than it holds while no WAL file holds frames that could fill them (a
//  checkpoint writes page 1 first, so a crash in one leaves the file short
//  of its header's count, and the WAL that completes it). 0 or -1.
static int
s_check_file (arb_journal_t *self)
{
    int fd = open (self->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        self->created = self->absent = errno == ENOENT;
        if (self->absent)
            s_note_found (self);
        return 0;  //  none yet; or SQLite will say why it cannot open it
    }
    struct stat file;
    uint8_t header[100];
    ssize_t got = fstat (fd, &file) == 0 ? pread (fd, header, sizeof (header), 0) : -1;
    close (fd);
    self->created = got == 0 && file.st_size == 0;
    if (got < 0 || file.st_size == 0)
        return 0;  //  SQLite says why; an empty file is a new journal
    if (got < (ssize_t) sizeof (header) || memcmp (header, "SQLite format 3", 16) != 0) {
        zsys_error ("journal: %s is not an SQLite database (it does not begin with SQLite's "
                    "header); arbiterd never replaces a file it cannot read: move it away, or "
                    "give --db another path",
                    self->path);
        return -1;
    }
    uint64_t page_size = (uint64_t) header[16] << 8 | header[17];
    if (page_size == 1)
        page_size = 65536;
    //  SQLite's rule: the page count at 28 holds when the change counter
    //  (24) equals the version-valid-for number (92)
    uint32_t pages = s_be32 (header + 28);
    bool counted = pages && s_be32 (header + 24) == s_be32 (header + 92);
    char *wal_path = zsys_sprintf ("%s-wal", self->path);
    struct stat wal;
    bool wal_frames = stat (wal_path, &wal) == 0 && wal.st_size > 32;  //  more than its header
    zstr_free (&wal_path);
    if (counted && !wal_frames && (uint64_t) file.st_size < pages * page_size) {
        zsys_error ("journal: %s is cut short: its header counts %u pages of %" PRIu64
                    " bytes, the file holds %" PRIu64 " bytes; arbiterd will not start on a "
                    "journal that lost its end: restore it from a backup",
                    self->path, pages, page_size, (uint64_t) file.st_size);
        return -1;
    }
    return 0;
}

//  SQLite's WAL hook, after each commit: the WAL holds pages pages.
static int
s_wal_grown (void *arg, sqlite3 *db, const char *name, int pages)
{
    (void) db;
    (void) name;
    if (pages >= ARB_BACKFILL_PAGES)
        arb_backfill_wake ((arb_backfill_t *) arg);
    return SQLITE_OK;
}

void
arb_journal_watch_wal (sqlite3 *db, arb_backfill_t *backfill)
{
    sqlite3_wal_hook (db, s_wal_grown, backfill);
}

//  With --sync full, the WAL is copied into the database file on a thread
//  (arb_backfill.h), not by the commit that fills it. With --sync normal
//  SQLite's own checkpoints stay: the task log's checkpoint runs one to
//  sync the WAL (arb_journal_batch.c), which the thread's could refuse.
static void
s_start_backfill (arb_journal_t *self, arb_sync_t sync)
{
    if (sync != ARB_SYNC_FULL)
        return;
    self->backfill = arb_backfill_new (self->path, S_VFS);
    if (self->backfill)
        arb_journal_watch_wal (self->db, self->backfill);
    else
        zsys_warning ("journal: the WAL is copied into the database file by the commits that "
                      "fill it");
}

static int
s_open (arb_journal_t *self, arb_sync_t sync)
{
    //  SQLite's memory statistics take a global mutex at every allocation
    //  (a thousand instructions a submitted task); the journal reads none.
    //  Process-wide, and only before SQLite starts: later calls are refused
    //  (SQLITE_MISUSE), harmlessly.
    sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
    //  a directory that could not be made says why here: the lock's open
    //  below would say only "No such file or directory"
    char *dir = strdup (self->path);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (zsys_dir_create ("%s", dir) != 0) {
            zsys_error ("journal: cannot make the directory %s: %s", dir, strerror (errno));
            free (dir);
            return -1;
        }
    }
    free (dir);
    if (s_lock (self) || s_check_file (self)
        || (self->created && arb_journal_batch_check_fresh (self)))
        return -1;
    if (sqlite3_open_v2 (self->path, &self->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, S_VFS)
        != SQLITE_OK) {
        zsys_error ("journal: cannot open %s: %s", self->path,
                    self->db ? sqlite3_errmsg (self->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout (self->db, 5000);
    //  whose file it is, before anything writes to it (WAL mode does)
    int version;
    if (s_check_owner (self, &version))
        return -1;
    //  WAL: a commit appends to the log, one fsync per group commit.
    //  cache_size is in KiB when negative.
    char pragmas[256];
    snprintf (pragmas, sizeof (pragmas),
              "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA cache_size = -%d;"
              "PRAGMA foreign_keys = OFF; PRAGMA journal_size_limit = 67108864;",
              sync == ARB_SYNC_FULL ? "FULL" : "NORMAL", ARB_JOURNAL_CACHE_KB);
    if (s_exec (self, pragmas) || s_migrate (self, version) || s_prepare_all (self))
        return -1;
    s_start_backfill (self, sync);
    self->log_sync = sync == ARB_SYNC_FULL;
    self->vfs = S_VFS;
#ifdef ARB_JOURNAL_FAULTS
    self->log_fault = arb_journal_faults_errno;
#endif
    int rc = arb_journal_batch_open_log (self, version == 0);
    return rc;
}

arb_journal_t *
arb_journal_new (const char *path, arb_sync_t sync)
{
    arb_journal_t *self = (arb_journal_t *) zmalloc (sizeof (arb_journal_t));
    self->path = strdup (path);
    self->lock_fd = -1;
    if (s_open (self, sync))
        arb_journal_destroy (&self);
    return self;
}

void
arb_journal_destroy (arb_journal_t **self_p)
{
    assert (self_p);
    arb_journal_t *self = *self_p;
    if (!self)
        return;
    //  An open transaction here belongs to a turn that did not finish:
    //  it must not reach the journal.
    arb_journal_fault_t fault = self->fault;
    if (self->in_txn)
        arb_journal_rollback (self);
    //  a clean close leaves the tables whole, for whoever reads them next
    //  (not a journal that failed: a damaged one is written no more)
    if (self->log && fault == ARB_JOURNAL_SOUND && arb_journal_batch_close (self))
        zsys_warning ("journal: the task log stays beside the tables at close: the next open "
                      "replays it");
    arb_journal_batch_destroy (self);
    //  before the loop's connection, whose close, the last, copies the
    //  rest of the WAL and removes it
    arb_backfill_destroy (&self->backfill);
    for (size_t i = 0; i < self->prepared_count; i++)
        sqlite3_finalize (*self->prepared[i]);
    if (self->db && sqlite3_close (self->db) != SQLITE_OK)
        zsys_error ("journal: close failed: %s", sqlite3_errmsg (self->db));
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    free (self->path);
    free (self);
    *self_p = NULL;
}

void
arb_journal_discard (arb_journal_t **self_p)
{
    arb_journal_t *self = *self_p;
    if (!self || !self->absent) {
        arb_journal_destroy (self_p);
        return;
    }
    //  held until the files are gone: a broker that starts meanwhile
    //  finds the journal in use, never half of one
    int lock_fd = self->lock_fd;
    self->lock_fd = -1;
    char *files[S_FILE_COUNT] = {NULL};
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        if (!(self->found & (1u << i)))
            files[i] = s_file_path (self, i);  //  only what this open made
    char *path = strdup (self->path);
    arb_journal_destroy (self_p);
    for (size_t i = 0; i < S_FILE_COUNT; i++) {
        if (files[i] && unlink (files[i]) && errno != ENOENT)
            zsys_warning ("journal: cannot remove %s: %s", files[i], strerror (errno));
        zstr_free (&files[i]);
    }
    zsys_info ("journal: removed the new journal, as the broker did not start path=%s", path);
    free (path);
    if (lock_fd >= 0)
        close (lock_fd);
}

bool
arb_journal_is_new (arb_journal_t *self)
{
    return self->created;
}

//  ---------------------------------------------------------------------
//  Transactions

int
arb_journal_begin (arb_journal_t *self)
{
    if (self->in_txn)
        return 0;
    if (arb_journal_run (self, self->begin, "begin"))
        return -1;
    self->in_txn = true;
    return 0;
}

int
arb_journal_commit (arb_journal_t *self)
{
    if (!self->in_txn) {
        //  a turn with nothing to commit: a save that ended while the
        //  broker went idle still gives its memory back (the rows it
        //  wrote, up to ARB_LOG_BYTES, stayed kept until then)
        arb_journal_batch_take_ended (self);
        return 0;
    }
    int rc = arb_journal_batch_commit (self);
    self->in_txn = false;
    uint64_t floor = self->floor_txn;
    self->floor_txn = 0;
    if (rc == 0 && floor > self->floor_kept)
        self->floor_kept = floor;
    return rc;
}

void
arb_journal_set_log (arb_journal_t *self, bool on)
{
    self->log_on = on && self->log;
}

bool
arb_journal_in_txn (arb_journal_t *self)
{
    return self->in_txn;
}

uint64_t
arb_journal_backfills (arb_journal_t *self)
{
    return self->backfill ? arb_backfill_rounds (self->backfill) : 0;
}

bool
arb_journal_has_writes (arb_journal_t *self)
{
    return self->in_txn && !arb_journal_batch_is_idle (self);
}

arb_journal_fault_t
arb_journal_fault (arb_journal_t *self)
{
    return self->fault;
}

int
arb_journal_rollback (arb_journal_t *self)
{
    arb_journal_batch_forget (self);
    self->in_txn = false;
    self->floor_txn = 0;
    if (!sqlite3_get_autocommit (self->db) && arb_journal_run (self, self->rollback, "rollback"))
        return -1;
    self->fault = ARB_JOURNAL_SOUND;
    return 0;
}

int
arb_journal_probe (arb_journal_t *self)
{
    //  at most a view open (arb_journal_batch.c): nothing a turn wrote
    assert (!self->in_txn || arb_journal_batch_is_idle (self));
    if (arb_journal_rollback (self))
        return -1;
    //  Two transactions: pages written and freed in one are never
    //  written at all. The second leaves them free in the file, for the
    //  writes that follow.
    self->probing = true;
    sqlite3_bind_int (self->probe_set, 1, ARB_JOURNAL_PROBE_BYTES);
    int rc = arb_journal_begin (self) || arb_journal_run (self, self->probe_set, "write")
                     || arb_journal_commit (self) || arb_journal_begin (self)
                     || arb_journal_run (self, self->probe_del, "removal")
                     || arb_journal_commit (self)
                 ? -1
                 : 0;
    sqlite3_clear_bindings (self->probe_set);
    self->probing = false;
    if (rc) {
        //  keep the failure for the caller; leave no transaction open
        arb_journal_fault_t fault = self->fault;
        arb_journal_rollback (self);
        self->fault = fault;
    }
    return rc;
}
