/*  arb_journal.c — the SQLite journal; see arb_journal.h.

    Schema, version 6 (PRAGMA user_version; version 2 added
    tasks.soft_timeout_ms, version 3 the schedules table, version 4
    attempts.seq, version 5 tasks.delivered and tasks_queue, version 6
    tasks_order in place of tasks_queue):

      tasks     one row per task, final or not, until the retention sweep
                removes it. `state` holds only logical states (waiting,
                scheduled, ready, and the final ones): a running task is
                `ready` here, so a restart gives it back. `purge_at_ms` is
                set when the task becomes final. `delivered` counts the
                times it was handed out, as of its last write (a dispatch
                writes nothing; the end of the lease, or a clean stop,
                writes the count).
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
    the hot path: tasks_order (every task by queue, state and priority,
    highest first, then id, which SQLite appends: the open tasks read at
    start, a queue's tasks for queue-wide operations in one statement, and
    a queue's cold ready tasks read back in dispatch order, arb_queue.h), tasks_purge (final tasks by purge time, for the
    retention sweep), tasks_ckey (client keys, only for tasks that have
    one).

    Version 5 (from 4): tasks.delivered (an older journal counts the
    attempts and lost leases it recorded), and tasks_queue in place of
    tasks_open (state) WHERE state < 5.

    Version 6 (from 5): tasks_order (queue, state, priority DESC) in place
    of tasks_queue (queue, state): the same entries, each with its
    priority, so that a queue's ready rows come in dispatch order.

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

#include "arb_journal.h"
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

#define ARB_SCHEMA_VERSION 6
#define ARB_APPLICATION_ID 0x41524254  //  "ARBT": PRAGMA application_id of a journal
#define ARB_EPOCH_KEY      "broker.epoch"
#define ARB_PROBE_KEY      "broker.probe"

struct _arb_journal_t {
    sqlite3 *db;                  //  owned
    int lock_fd;                  //  owned: flock'ed, so two brokers never share a journal
    bool in_txn;                  //  a turn's transaction is open
    arb_journal_fault_t fault;    //  the first failure since open or the last rollback
    bool probing;                 //  a probe runs: its failures are expected, logged at debug
    char *path;                   //  owned
    sqlite3_stmt **prepared[64];  //  every statement slot below, for finalize
    size_t prepared_count;
    sqlite3_stmt *begin, *commit, *rollback, *insert, *find_key, *save, *add_attempt, *load_payload,
        *trim_attempts, *load_open, *load_ready, *list_ready, *list_ready_newest, *load_task,
        *dead_ids, *flow_dead_ids, *task_info, *history, *done, *state, *list_final, *count_final,
        *purge_due, *add_dep, *set_has_children, *parents, *children, *copies, *insert_flow,
        *flows_named, *flow_kind, *scan, *purge_task, *purge_attempts, *purge_deps, *max_id,
        *meta_get, *meta_set, *meta_del, *meta_list, *schedule_add, *schedule_remove,
        *schedule_state, *schedule_fired, *schedules, *list_final_newest, *deps_of, *meta_page,
        *meta_del_range, *set_delivered, *cancel_open, *forget_attempts, *forget_deps,
        *forget_tasks, *deliver_ready, *probe_set, *probe_del;
};

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
static void
s_fault (arb_journal_t *self)
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
        s_fault (self);
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

//  The first column of the first row of sql, an integer (a PRAGMA, a
//  count). 0 or -1.
static int
s_number (arb_journal_t *self, const char *sql, int *number)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        s_fault (self);
        zsys_error ("journal: cannot read %s: %s", self->path, sqlite3_errmsg (self->db));
        return -1;
    }
    int rc = sqlite3_step (stmt);
    *number = sqlite3_column_int (stmt, 0);
    if (rc != SQLITE_ROW) {
        s_fault (self);
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

static int
s_prepare (arb_journal_t *self, sqlite3_stmt **stmt, const char *sql)
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
    "delivered, length (payload)"

//  TASK_COLUMNS up to has_children, for INSERT (which sets soft_timeout_ms
//  and delivered after the columns it takes from the row).
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
         "soft_timeout_ms, delivered) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
         "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)"},
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
        //  read by id per task costs more than the whole ordered read)
        {&self->load_ready, "SELECT " TASK_COLUMNS ", payload, headers FROM tasks "
                            "WHERE queue = ?1 AND state = 3 "
                            "AND (priority < ?2 OR (priority = ?2 AND id >= ?3)) "
                            "ORDER BY priority DESC, id LIMIT ?4"},
        {&self->load_task, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1"},
        {&self->dead_ids, "SELECT id FROM tasks WHERE state = 7 AND queue = ?1 ORDER BY id"},
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
        {&self->count_final,
         "SELECT queue, state, count(*) FROM tasks WHERE state >= 5 GROUP BY queue, state"},
        {&self->purge_due, "SELECT id, queue, state, "
                           //  whether it may have rows of history: an attempt that did not
                           //  succeed, a lease lost or cancelled; a task that succeeded at its
                           //  one handout has none
                           "state != 5 OR delivered != 1 OR lost > 0 OR attempts > 1, "
                           //  whether it may have edges to its parents
                           "parents > 0 "
                           "FROM tasks WHERE purge_at_ms <= ?1 ORDER BY purge_at_ms LIMIT ?2"},
        {&self->scan, "SELECT id, queue, state, finished_ms, has_children FROM tasks WHERE id > ?1 "
                      "ORDER BY id LIMIT ?2"},
        //  a batch of ids as one JSON array (s_json_ids): one statement run
        //  a table, not three a task
        {&self->purge_task, "DELETE FROM tasks WHERE id IN (SELECT value FROM json_each (?1))"},
        {&self->purge_attempts,
         "DELETE FROM attempts WHERE task_id IN (SELECT value FROM json_each (?1))"},
        {&self->purge_deps, "DELETE FROM deps WHERE child IN (SELECT value FROM json_each (?1))"},
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
        {&self->forget_attempts,
         "DELETE FROM attempts WHERE task_id IN (SELECT id FROM tasks WHERE queue = ?1)"},
        {&self->forget_deps,
         "DELETE FROM deps WHERE child IN (SELECT id FROM tasks WHERE queue = ?1)"},
        {&self->forget_tasks, "DELETE FROM tasks WHERE queue = ?1"},
        {&self->probe_set,
         "INSERT OR REPLACE INTO meta (key, value) VALUES ('" ARB_PROBE_KEY "', zeroblob (?1))"},
        {&self->probe_del, "DELETE FROM meta WHERE key = '" ARB_PROBE_KEY "'"},
    };
    for (size_t i = 0; i < sizeof (all) / sizeof (all[0]); i++)
        if (s_prepare (self, all[i].stmt, all[i].sql))
            return -1;
    return 0;
}

//  Runs a statement that returns no rows, and resets it. Every write is
//  part of a turn's transaction (arb_journal_begin): a write outside one
//  would commit on its own, before the turn's replies are decided, and a
//  crash before the turn's commit would then keep half a turn. For the
//  same reason nothing but a rollback runs after a failure, until
//  arb_journal_rollback: SQLite may have rolled the transaction back by
//  itself (SQLITE_FULL, an I/O error), and what followed would commit
//  alone.
static int
s_run (arb_journal_t *self, sqlite3_stmt *stmt, const char *what)
{
    assert (self->in_txn || stmt == self->begin || stmt == self->commit || stmt == self->rollback);
    if (self->fault != ARB_JOURNAL_SOUND && stmt != self->rollback)
        return -1;
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rc != SQLITE_DONE) {
        s_fault (self);
        if (self->probing)
            zsys_debug ("journal: probe %s failed: %s", what, sqlite3_errmsg (self->db));
        else
            zsys_error ("journal: %s failed: %s", what, sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

static void
s_done (sqlite3_stmt *stmt)
{
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
}

//  Ends a read: resets the statement, and says whether rc, its last
//  step's result, was a failure (logged: "journal: WHAT [ID] unreadable").
static int
s_read_end (arb_journal_t *self, sqlite3_stmt *stmt, int rc, const char *what, uint64_t id)
{
    s_done (stmt);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return 0;
    s_fault (self);
    if (id)
        zsys_error ("journal: %s %" PRIu64 " unreadable: %s", what, id, sqlite3_errmsg (self->db));
    else
        zsys_error ("journal: %s unreadable: %s", what, sqlite3_errmsg (self->db));
    return -1;
}

static void
s_bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

static void
s_bind_u64 (sqlite3_stmt *stmt, int index, uint64_t value)
{
    sqlite3_bind_int64 (stmt, index, (sqlite3_int64) value);
}

//  Binds a bound of a range of ids (after_id, before_id) a peer gave: one
//  past the largest id SQLite holds is that largest id, not a negative
//  number that every id is past.
static void
s_bind_id_bound (sqlite3_stmt *stmt, int index, uint64_t value)
{
    sqlite3_bind_int64 (stmt, index, value > INT64_MAX ? INT64_MAX : (sqlite3_int64) value);
}

//  Binds a frame's bytes; NULL binds SQL NULL, an empty frame an empty blob.
static void
s_bind_frame (sqlite3_stmt *stmt, int index, zframe_t *frame)
{
    if (frame)
        sqlite3_bind_blob (stmt, index, zframe_data (frame), (int) zframe_size (frame),
                           SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

static uint64_t
s_u64 (sqlite3_stmt *stmt, int column)
{
    return (uint64_t) sqlite3_column_int64 (stmt, column);
}

//  The ids in the first column of every row of a bound statement, or NULL
//  if the read failed.
static zlistx_t *
s_read_ids (arb_journal_t *self, sqlite3_stmt *stmt, const char *what)
{
    zlistx_t *ids = zlistx_new ();
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        //  an id cast to a pointer: 0 would be no item
        if (sqlite3_column_int64 (stmt, 0) > 0)
            zlistx_add_end (ids, (void *) (uintptr_t) s_u64 (stmt, 0));
        else
            zsys_error ("journal: %s: id %" PRId64 " skipped: ids are from 1", what,
                        (int64_t) sqlite3_column_int64 (stmt, 0));
    }
    if (s_read_end (self, stmt, rc, what, 0))
        zlistx_destroy (&ids);
    return ids;
}

//  A copy of a text column in the message's arena, cut to max bytes (the
//  field's limit on the wire: a longer text, which only a damaged journal
//  holds, would make the whole reply one no client decodes), or NULL.
static const char *
s_text (sqlite3_stmt *stmt, int column, size_t max, arb_msg_t *msg)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    if (!text)
        return NULL;
    size_t len = strnlen (text, max);
    char *copy = (char *) arb_msg_alloc (msg, len + 1);
    memcpy (copy, text, len);
    return copy;
}

//  ---------------------------------------------------------------------
//  What a row must hold for the broker to use it. The journal is only
//  ever written by the broker, but a damaged or hand-edited one can hold
//  anything a column can (the schema's types are not enforced): a row the
//  broker cannot use is skipped, or read as absent, with a log line,
//  never handed on to index an array or be sent where a peer refuses it.

//  Whether a column holds a name (arb_name_check): text, 1 to ARB_NAME_MAX
//  bytes, no NUL.
static bool
s_is_name (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    int len = sqlite3_column_bytes (stmt, column);
    char why[80];
    return text && len > 0 && len <= ARB_NAME_MAX && strlen (text) == (size_t) len
           && arb_name_check (text, (size_t) len, why, sizeof (why)) == 0;
}

//  A column's value if it is an integer in [low, high]; else -1.
static int
s_small (sqlite3_stmt *stmt, int column, int low, int high)
{
    if (sqlite3_column_type (stmt, column) != SQLITE_INTEGER)
        return -1;
    sqlite3_int64 value = sqlite3_column_int64 (stmt, column);
    return value >= low && value <= high ? (int) value : -1;
}

static zframe_t *
s_frame (sqlite3_stmt *stmt, int column)
{
    if (sqlite3_column_type (stmt, column) == SQLITE_NULL)
        return NULL;
    const void *data = sqlite3_column_blob (stmt, column);
    int size = sqlite3_column_bytes (stmt, column);
    return zframe_new (data, (size_t) size);
}

//  ---------------------------------------------------------------------
//  Lifecycle

static int
s_lock (arb_journal_t *self)
{
    char *lock_path = zsys_sprintf ("%s.lock", self->path);
    self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (self->lock_fd < 0) {
        zsys_error ("journal: cannot open %s: %s", lock_path, strerror (errno));
        rc = -1;
    }
    else if (flock (self->lock_fd, LOCK_EX | LOCK_NB)) {
        zsys_error ("journal: %s is in use by another arbiterd", self->path);
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
    if (fd < 0)
        return 0;  //  none yet; or SQLite will say why it cannot open it
    struct stat file;
    uint8_t header[100];
    ssize_t got = fstat (fd, &file) == 0 ? pread (fd, header, sizeof (header), 0) : -1;
    close (fd);
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

static int
s_open (arb_journal_t *self, arb_sync_t sync)
{
    //  SQLite's memory statistics take a global mutex at every allocation
    //  (a thousand instructions a submitted task); the journal reads none.
    //  Process-wide, and only before SQLite starts: later calls are refused
    //  (SQLITE_MISUSE), harmlessly.
    sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
    char *dir = strdup (self->path);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        zsys_dir_create ("%s", dir);
    }
    free (dir);
    if (s_lock (self) || s_check_file (self))
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
    const char *pragmas = sync == ARB_SYNC_FULL
                              ? "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                "PRAGMA cache_size = -8192; PRAGMA foreign_keys = OFF;"
                                "PRAGMA journal_size_limit = 67108864;"
                              : "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                                "PRAGMA cache_size = -8192; PRAGMA foreign_keys = OFF;"
                                "PRAGMA journal_size_limit = 67108864;";
    if (s_exec (self, pragmas) || s_migrate (self, version) || s_prepare_all (self))
        return -1;
    return 0;
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
    if (self->in_txn)
        s_run (self, self->rollback, "rollback");
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

//  ---------------------------------------------------------------------
//  Transactions

int
arb_journal_begin (arb_journal_t *self)
{
    if (self->in_txn)
        return 0;
    if (s_run (self, self->begin, "begin"))
        return -1;
    self->in_txn = true;
    return 0;
}

int
arb_journal_commit (arb_journal_t *self)
{
    if (!self->in_txn)
        return 0;
    self->in_txn = false;
    if (s_run (self, self->commit, "commit") == 0)
        return 0;
    //  COMMIT can fail and leave the transaction open (SQLITE_BUSY), or
    //  roll it back itself (I/O error); either way nothing of it stays.
    if (!sqlite3_get_autocommit (self->db))
        s_run (self, self->rollback, "rollback");
    return -1;
}

bool
arb_journal_in_txn (arb_journal_t *self)
{
    return self->in_txn;
}

arb_journal_fault_t
arb_journal_fault (arb_journal_t *self)
{
    return self->fault;
}

int
arb_journal_rollback (arb_journal_t *self)
{
    self->in_txn = false;
    if (!sqlite3_get_autocommit (self->db) && s_run (self, self->rollback, "rollback"))
        return -1;
    self->fault = ARB_JOURNAL_SOUND;
    return 0;
}

int
arb_journal_probe (arb_journal_t *self)
{
    assert (!self->in_txn);
    if (arb_journal_rollback (self))
        return -1;
    //  Two transactions: pages written and freed in one are never
    //  written at all. The second leaves them free in the file, for the
    //  writes that follow.
    self->probing = true;
    sqlite3_bind_int (self->probe_set, 1, ARB_JOURNAL_PROBE_BYTES);
    int rc = arb_journal_begin (self) || s_run (self, self->probe_set, "write")
                     || arb_journal_commit (self) || arb_journal_begin (self)
                     || s_run (self, self->probe_del, "removal") || arb_journal_commit (self)
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

//  ---------------------------------------------------------------------
//  Tasks

int
arb_journal_insert (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    sqlite3_stmt *stmt = self->insert;
    s_bind_u64 (stmt, 1, task->id);
    s_bind_text (stmt, 2, arb_queue_name (task->queue));
    s_bind_text (stmt, 3, task->name);
    sqlite3_bind_int (stmt, 4, task->state == ARB_STATE_RUNNING ? ARB_STATE_READY : task->state);
    sqlite3_bind_int (stmt, 5, task->priority);
    sqlite3_bind_int64 (stmt, 6, task->max_attempts);
    sqlite3_bind_int64 (stmt, 7, task->attempts);
    sqlite3_bind_int64 (stmt, 8, task->lost);
    sqlite3_bind_int (stmt, 9, task->backoff);
    s_bind_u64 (stmt, 10, arb_task_ext (task)->backoff_ms);
    s_bind_u64 (stmt, 11, arb_task_ext (task)->backoff_cap_ms);
    sqlite3_bind_int (stmt, 12, task->jitter);
    s_bind_u64 (stmt, 13, arb_task_ext (task)->timeout_ms);
    s_bind_u64 (stmt, 14, arb_task_ext (task)->not_before_ms);
    s_bind_u64 (stmt, 15, arb_task_ext (task)->expires_ms);
    s_bind_u64 (stmt, 16, arb_task_ext (task)->retention_ms);
    s_bind_u64 (stmt, 17, task->created_ms);
    if (arb_task_ext (task)->flow)
        s_bind_u64 (stmt, 18, arb_task_ext (task)->flow);
    sqlite3_bind_int (stmt, 19, task->input);
    if (arb_task_ext (task)->origin)
        s_bind_u64 (stmt, 20, arb_task_ext (task)->origin);
    sqlite3_bind_int64 (stmt, 21, arb_task_ext (task)->parents);
    sqlite3_bind_int64 (stmt, 22, arb_task_ext (task)->copies);
    sqlite3_bind_int (stmt, 23, task->has_children);
    s_bind_text (stmt, 24, row->key);
    s_bind_frame (stmt, 25, row->headers);
    if (row->payload)
        s_bind_frame (stmt, 26, row->payload);
    else
        sqlite3_bind_zeroblob (stmt, 26, 0);
    s_bind_text (stmt, 27, row->ref);
    s_bind_text (stmt, 28, row->endpoint);
    s_bind_frame (stmt, 29, row->args);
    s_bind_u64 (stmt, 30, arb_task_ext (task)->soft_timeout_ms);
    sqlite3_bind_int64 (stmt, 31, task->delivered);
    return s_run (self, stmt, "insert");
}

int
arb_journal_find_key (
    arb_journal_t *self, const char *key, uint64_t *id, int *state, uint64_t *flow)
{
    sqlite3_stmt *stmt = self->find_key;
    s_bind_text (stmt, 1, key);
    int rc = sqlite3_step (stmt);
    *id = 0;
    if (flow)
        *flow = 0;
    if (rc == SQLITE_ROW) {
        *id = s_u64 (stmt, 0);
        *state = sqlite3_column_int (stmt, 1);
        if (flow)
            *flow = s_u64 (stmt, 2);
    }
    return s_read_end (self, stmt, rc, "key", 0);
}

int
arb_journal_save (arb_journal_t *self,
                  const arb_task_t *task,
                  int state,
                  uint64_t finished_ms,
                  const char *worker,
                  const char *error,
                  zframe_t *result,
                  uint64_t purge_at_ms)
{
    sqlite3_stmt *stmt = self->save;
    s_bind_u64 (stmt, 1, task->id);
    sqlite3_bind_int (stmt, 2, state == ARB_STATE_RUNNING ? ARB_STATE_READY : state);
    sqlite3_bind_int64 (stmt, 3, task->attempts);
    sqlite3_bind_int64 (stmt, 4, task->lost);
    s_bind_u64 (stmt, 5, arb_task_ext (task)->not_before_ms);
    s_bind_u64 (stmt, 6, arb_task_ext (task)->started_ms);
    s_bind_u64 (stmt, 7, finished_ms);
    s_bind_text (stmt, 8, worker);
    s_bind_text (stmt, 9, error);
    s_bind_frame (stmt, 10, result);
    if (purge_at_ms)
        s_bind_u64 (stmt, 11, purge_at_ms);
    else
        sqlite3_bind_null (stmt, 11);
    s_bind_u64 (stmt, 12, arb_task_ext (task)->expires_ms);
    sqlite3_bind_int64 (stmt, 13, task->delivered);
    return s_run (self, stmt, "save");
}

int
arb_journal_add_attempt (arb_journal_t *self, uint64_t id, const arb_attempt_info_t *attempt)
{
    sqlite3_stmt *stmt = self->add_attempt;
    s_bind_u64 (stmt, 1, id);
    sqlite3_bind_int64 (stmt, 2, attempt->attempt);
    s_bind_u64 (stmt, 3, attempt->started_ms);
    s_bind_u64 (stmt, 4, attempt->ended_ms);
    s_bind_text (stmt, 5, attempt->worker);
    sqlite3_bind_int (stmt, 6, (int) attempt->outcome);
    s_bind_text (stmt, 7, attempt->error);
    if (s_run (self, stmt, "add attempt"))
        return -1;
    //  past the bound, the oldest of the last rows goes
    stmt = self->trim_attempts;
    s_bind_u64 (stmt, 1, id);
    sqlite3_bind_int (stmt, 2, ARB_HISTORY_FIRST);
    sqlite3_bind_int (stmt, 3, ARB_HISTORY_LAST);
    return s_run (self, stmt, "trim attempts");
}

int
arb_journal_load_payload (
    arb_journal_t *self, uint64_t id, zframe_t **payload, zframe_t **headers, zframe_t **args)
{
    sqlite3_stmt *stmt = self->load_payload;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    *payload = NULL;
    *headers = NULL;
    if (args)
        *args = NULL;
    if (rc == SQLITE_ROW) {
        *payload = s_frame (stmt, 0);
        *headers = s_frame (stmt, 1);
        if (args)
            *args = s_frame (stmt, 2);
    }
    s_done (stmt);
    if (rc != SQLITE_ROW) {
        zsys_error ("journal: payload of task %" PRIu64 " unreadable: %s", id,
                    rc == SQLITE_DONE ? "no such task" : sqlite3_errmsg (self->db));
        return -1;
    }
    if (!*payload)
        *payload = zframe_new_empty ();
    return 0;
}

//  Whether the TASK_COLUMNS of the current row make a task the broker can
//  hold: an id from 1 (0 is no id: the scheduler keys tasks by id), a
//  queue and a name, a state from waiting to max_state (the scheduler
//  counts tasks in arrays indexed by state). Logs why not.
static bool
s_task_usable (sqlite3_stmt *stmt, int max_state)
{
    const char *why =
        sqlite3_column_int64 (stmt, 0) <= 0                   ? "its id is not from 1"
        : s_small (stmt, 3, ARB_STATE_WAITING, max_state) < 0 ? "its state is not one it can be in"
        : !s_is_name (stmt, 1) || !s_is_name (stmt, 2)        ? "its queue or name is no name"
                                                              : NULL;
    if (why)
        zsys_error ("journal: task %" PRIu64 " skipped: %s", s_u64 (stmt, 0), why);
    return why == NULL;
}

//  Reads the TASK_COLUMNS of the current row into task; its ext goes in
//  *ext, and task->ext points to it unless it is all zeros.
static void
s_fill_task (sqlite3_stmt *stmt, arb_task_t *task, arb_task_ext_t *ext)
{
    *task = (arb_task_t){0};
    *ext = (arb_task_ext_t){0};
    task->id = s_u64 (stmt, 0);
    task->state = (uint8_t) sqlite3_column_int (stmt, 3);
    task->priority = sqlite3_column_int (stmt, 4);
    task->max_attempts = (uint32_t) sqlite3_column_int64 (stmt, 5);
    task->attempts = (uint32_t) sqlite3_column_int64 (stmt, 6);
    task->lost = (uint32_t) sqlite3_column_int64 (stmt, 7);
    task->backoff = (uint8_t) sqlite3_column_int (stmt, 8);
    ext->backoff_ms = s_u64 (stmt, 9);
    ext->backoff_cap_ms = s_u64 (stmt, 10);
    task->jitter = sqlite3_column_int (stmt, 11) != 0;
    ext->timeout_ms = s_u64 (stmt, 12);
    ext->not_before_ms = s_u64 (stmt, 13);
    ext->expires_ms = s_u64 (stmt, 14);
    ext->retention_ms = s_u64 (stmt, 15);
    task->created_ms = s_u64 (stmt, 16);
    ext->flow = s_u64 (stmt, 17);
    task->input = (uint8_t) sqlite3_column_int (stmt, 18);
    ext->origin = s_u64 (stmt, 19);
    ext->parents = (uint32_t) sqlite3_column_int64 (stmt, 20);
    ext->copies = (uint32_t) sqlite3_column_int64 (stmt, 21);
    task->has_children = sqlite3_column_int (stmt, 22) != 0;
    task->has_args = sqlite3_column_int (stmt, 23) != 0;
    ext->soft_timeout_ms = s_u64 (stmt, 24);
    task->delivered = (uint32_t) sqlite3_column_int64 (stmt, 25);
    //  length () of a blob reads its size, not its bytes (the queue's ready
    //  bytes: the load and the cold reads count what the submit counted)
    arb_task_set_payload_size (task, s_u64 (stmt, 26));
    if (memcmp (ext, &arb_task_ext_zero, sizeof (*ext)))
        task->ext = ext;
}

//  Reads the TASK_COLUMNS of the current row and hands them to fn.
static int
s_read_task (sqlite3_stmt *stmt, arb_journal_task_fn *fn, void *arg)
{
    arb_task_t task;
    arb_task_ext_t ext;  //  the row's task->ext, while fn runs, if not all zeros
    s_fill_task (stmt, &task, &ext);
    return fn (arg, &task, (const char *) sqlite3_column_text (stmt, 1),
               (const char *) sqlite3_column_text (stmt, 2));
}

int
arb_journal_load_open (arb_journal_t *self, arb_journal_task_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->load_open;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        if (s_task_usable (stmt, ARB_STATE_READY) && s_read_task (stmt, fn, arg))
            break;
    return s_read_end (self, stmt, rc, "open tasks", 0);
}

int
arb_journal_load_ready (arb_journal_t *self,
                        const char *queue,
                        int32_t priority,
                        uint64_t id,
                        size_t max,
                        arb_journal_ready_fn *fn,
                        void *arg,
                        size_t *count,
                        int32_t *last_priority,
                        uint64_t *last_id)
{
    sqlite3_stmt *stmt = self->load_ready;
    s_bind_text (stmt, 1, queue);
    sqlite3_bind_int (stmt, 2, priority);
    s_bind_u64 (stmt, 3, id);
    sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) max);
    *count = 0;
    int rc;
    *last_priority = priority;
    *last_id = id;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        ++*count;
        //  past a row it skips too (logged), so that the next read goes on
        *last_priority = sqlite3_column_int (stmt, 4);
        *last_id = s_u64 (stmt, 0);
        if (!s_task_usable (stmt, ARB_STATE_READY))
            continue;
        arb_task_t task;
        arb_task_ext_t ext;
        s_fill_task (stmt, &task, &ext);
        arb_journal_body_t body = {
            .payload = sqlite3_column_blob (stmt, 27),
            .payload_size = (size_t) sqlite3_column_bytes (stmt, 27),
            .headers = sqlite3_column_blob (stmt, 28),
            .headers_size = (size_t) sqlite3_column_bytes (stmt, 28),
        };
        if (fn (arg, &task, (const char *) sqlite3_column_text (stmt, 1),
                (const char *) sqlite3_column_text (stmt, 2), &body))
            break;
    }
    return s_read_end (self, stmt, rc, "cold tasks", 0);
}

int
arb_journal_load_task (
    arb_journal_t *self, uint64_t id, arb_journal_task_fn *fn, void *arg, bool *found)
{
    sqlite3_stmt *stmt = self->load_task;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    *found = rc == SQLITE_ROW && s_task_usable (stmt, ARB_STATE_MAX);
    if (*found)
        s_read_task (stmt, fn, arg);
    return s_read_end (self, stmt, rc, "task", id);
}

zlistx_t *
arb_journal_dead_ids (arb_journal_t *self, const char *queue)
{
    sqlite3_stmt *stmt = self->dead_ids;
    s_bind_text (stmt, 1, queue);
    return s_read_ids (self, stmt, "dead tasks");
}

zlistx_t *
arb_journal_flow_dead_ids (arb_journal_t *self, uint64_t flow)
{
    sqlite3_stmt *stmt = self->flow_dead_ids;
    s_bind_u64 (stmt, 1, flow);
    return s_read_ids (self, stmt, "dead tasks of a flow");
}

//  Reads the INFO_COLUMNS of the current row.
static void
s_read_info (sqlite3_stmt *stmt, arb_msg_t *msg, arb_task_info_t *info)
{
    info->found = true;
    info->id = s_u64 (stmt, 0);
    info->queue = s_text (stmt, 1, ARB_NAME_MAX, msg);
    info->name = s_text (stmt, 2, ARB_NAME_MAX, msg);
    info->key = s_text (stmt, 3, ARB_NAME_MAX, msg);
    info->state = (uint32_t) sqlite3_column_int (stmt, 4);
    info->priority = sqlite3_column_int (stmt, 5);
    info->attempts = (uint32_t) sqlite3_column_int64 (stmt, 6);
    info->max_attempts = (uint32_t) sqlite3_column_int64 (stmt, 7);
    info->lost = (uint32_t) sqlite3_column_int64 (stmt, 8);
    info->created_ms = s_u64 (stmt, 9);
    info->not_before_ms = s_u64 (stmt, 10);
    info->started_ms = s_u64 (stmt, 11);
    info->finished_ms = s_u64 (stmt, 12);
    info->timeout_ms = s_u64 (stmt, 13);
    info->worker = s_text (stmt, 14, ARB_NAME_MAX, msg);
    info->error = s_text (stmt, 15, ARB_TEXT_MAX, msg);
    info->flow = s_u64 (stmt, 16);
    info->ref = s_text (stmt, 17, ARB_NAME_MAX, msg);
    info->origin = s_u64 (stmt, 18);
    info->endpoint = s_text (stmt, 19, ARB_NAME_MAX, msg);
    info->flow_kind = (uint32_t) sqlite3_column_int (stmt, 20);
    info->flow_name = s_text (stmt, 21, ARB_NAME_MAX, msg);
    info->soft_timeout_ms = s_u64 (stmt, 22);
}

//  A copy of a blob column in the message's arena; left out when over max
//  bytes (0: no bound).
static arb_bin_t
s_bin (sqlite3_stmt *stmt, int column, size_t max, arb_msg_t *msg)
{
    arb_bin_t bin = {NULL, 0};
    if (sqlite3_column_type (stmt, column) != SQLITE_NULL
        && (!max || (size_t) sqlite3_column_bytes (stmt, column) <= max)) {
        bin.size = (size_t) sqlite3_column_bytes (stmt, column);
        uint8_t *data = (uint8_t *) arb_msg_alloc (msg, bin.size);
        if (bin.size)  //  an empty blob's pointer is NULL
            memcpy (data, sqlite3_column_blob (stmt, column), bin.size);
        bin.data = data;
    }
    return bin;
}

static int
s_read_responses (arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->copies;
    s_bind_u64 (stmt, 1, id);
    int rc = SQLITE_DONE;
    //  at most a fan-out's endpoints: a reply holds no more
    while (info->responses.n < ARB_ENDPOINTS_MAX && (rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        arb_response_info_t *r =
            (arb_response_info_t *) arb_msg_grow (msg, &info->responses, sizeof (*r), 1);
        r->endpoint = s_text (stmt, 0, ARB_NAME_MAX, msg);
        r->id = s_u64 (stmt, 1);
        r->state = (uint32_t) sqlite3_column_int (stmt, 2);
        r->error = s_text (stmt, 3, ARB_TEXT_MAX, msg);
        r->finished_ms = s_u64 (stmt, 4);
        r->result = s_bin (stmt, 5, 0, msg);
    }
    s_done (stmt);
    return info->responses.n == ARB_ENDPOINTS_MAX || rc == SQLITE_DONE ? 0 : -1;
}

//  The task's dependencies (a parent already purged keeps its id, without a ref).
static int
s_read_parents (arb_journal_t *self, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->deps_of;
    s_bind_u64 (stmt, 1, info->id);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        arb_dep_t *dep = (arb_dep_t *) arb_msg_grow (msg, &info->parents, sizeof (*dep), 1);
        dep->id = s_u64 (stmt, 0);
        dep->when = (uint32_t) sqlite3_column_int (stmt, 1);
        //  a dependency's ref is a name on the wire (it is one in SUBMIT)
        dep->ref = s_is_name (stmt, 2) ? s_text (stmt, 2, ARB_NAME_MAX, msg) : NULL;
    }
    return s_read_end (self, stmt, rc, "dependencies", info->id);
}

static int
s_read_history (arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->history;
    s_bind_u64 (stmt, 1, id);
    int rc;
    uint64_t seq = 0;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        arb_attempt_info_t *a =
            (arb_attempt_info_t *) arb_msg_grow (msg, &info->history, sizeof (*a), 1);
        seq = s_u64 (stmt, 6);
        a->attempt = (uint32_t) sqlite3_column_int64 (stmt, 0);
        a->started_ms = s_u64 (stmt, 1);
        a->ended_ms = s_u64 (stmt, 2);
        a->worker = s_text (stmt, 3, ARB_NAME_MAX, msg);
        a->outcome = (uint32_t) sqlite3_column_int (stmt, 4);
        a->error = s_text (stmt, 5, ARB_TEXT_MAX, msg);
    }
    //  seq counts every row ever written: what is not here was dropped
    info->history_dropped = (uint32_t) (seq - info->history.n);
    s_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
arb_journal_task_info (
    arb_journal_t *self, uint64_t id, bool with_detail, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->task_info;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    info->id = id;
    info->found = false;
    if (rc == SQLITE_ROW) {
        s_read_info (stmt, msg, info);
        if (with_detail) {
            info->result = s_bin (stmt, 23, 0, msg);
            info->args = s_bin (stmt, 24, ARB_ARGS_MAX, msg);
        }
    }
    if (s_read_end (self, stmt, rc, "task", id)
        || (info->found && s_read_parents (self, msg, info)))
        return -1;
    if (info->found && with_detail
        && (s_read_history (self, id, msg, info) || s_read_responses (self, id, msg, info))) {
        zsys_error ("journal: history of %" PRIu64 " unreadable: %s", id,
                    sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

int
arb_journal_state (arb_journal_t *self, uint64_t id, int *state, char *ref, size_t ref_size)
{
    sqlite3_stmt *stmt = self->state;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    *state = rc == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : 0;
    if (ref) {
        const char *text = rc == SQLITE_ROW ? (const char *) sqlite3_column_text (stmt, 1) : NULL;
        snprintf (ref, ref_size, "%s", text ? text : "");
    }
    return s_read_end (self, stmt, rc, "task", id);
}

int
arb_journal_done (
    arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_done_task_t *done, bool *found)
{
    sqlite3_stmt *stmt = self->done;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    int state = rc == SQLITE_ROW ? s_small (stmt, 0, ARB_STATE_WAITING, ARB_STATE_MAX) : 0;
    if (state < 0)
        zsys_error ("journal: task %" PRIu64 " skipped: its state is not one it can be in", id);
    *found = rc == SQLITE_ROW && state > 0;
    if (*found) {
        done->id = id;
        done->state = (uint32_t) state;
        done->attempts = (uint32_t) sqlite3_column_int64 (stmt, 1);
        done->error = s_text (stmt, 2, ARB_TEXT_MAX, msg);
        done->result = s_frame (stmt, 3);
    }
    return s_read_end (self, stmt, rc, "task", id);
}

int
arb_journal_list_final (arb_journal_t *self,
                        const arb_list_body_t *filter,
                        uint32_t limit,
                        arb_msg_t *msg,
                        arb_list_reply_body_t *list)
{
    sqlite3_stmt *stmt = filter->newest ? self->list_final_newest : self->list_final;
    s_bind_id_bound (stmt, 1, filter->after_id);
    sqlite3_bind_int (stmt, 2, (int) filter->state);
    s_bind_text (stmt, 3, filter->queue);
    sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) limit + 1);
    s_bind_u64 (stmt, 5, filter->flow);
    s_bind_id_bound (stmt, 6, filter->before_id);
    size_t first = list->tasks.n;
    int rc;
    uint32_t count = 0;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        if (count++ == limit) {
            list->more = true;
            break;
        }
        arb_task_info_t *info =
            (arb_task_info_t *) arb_msg_grow (msg, &list->tasks, sizeof (*info), 1);
        s_read_info (stmt, msg, info);
    }
    if (s_read_end (self, stmt, rc, "task list", 0))
        return -1;
    //  read once the list's statement is done with
    for (size_t i = first; i < list->tasks.n; i++)
        if (s_read_parents (self, msg, &list->tasks.v[i]))
            return -1;
    return 0;
}

int
arb_journal_list_cold (arb_journal_t *self,
                       const arb_list_body_t *filter,
                       uint32_t limit,
                       bool (*in_memory) (void *arg, uint64_t id),
                       void *arg,
                       arb_msg_t *msg,
                       arb_list_reply_body_t *list)
{
    sqlite3_stmt *stmt = filter->newest ? self->list_ready_newest : self->list_ready;
    s_bind_id_bound (stmt, 1, filter->after_id);
    s_bind_text (stmt, 2, filter->queue);
    s_bind_id_bound (stmt, 3, filter->before_id);
    int rc;
    uint32_t count = 0;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        if (in_memory (arg, s_u64 (stmt, 0)))
            continue;
        if (count++ == limit) {
            list->more = true;
            break;
        }
        arb_task_info_t *info =
            (arb_task_info_t *) arb_msg_grow (msg, &list->tasks, sizeof (*info), 1);
        s_read_info (stmt, msg, info);
    }
    return s_read_end (self, stmt, rc, "task list", 0);
}

int
arb_journal_add_dep (arb_journal_t *self, uint64_t child, uint64_t parent, int kind)
{
    sqlite3_stmt *stmt = self->add_dep;
    s_bind_u64 (stmt, 1, child);
    s_bind_u64 (stmt, 2, parent);
    sqlite3_bind_int (stmt, 3, kind);
    return s_run (self, stmt, "add dependency");
}

int
arb_journal_set_has_children (arb_journal_t *self, uint64_t id)
{
    sqlite3_stmt *stmt = self->set_has_children;
    s_bind_u64 (stmt, 1, id);
    return s_run (self, stmt, "mark parent");
}

//  A text column cut to max bytes in buf (size max + 1) when longer, as
//  s_text does; NULL if none.
static const char *
s_text_in (sqlite3_stmt *stmt, int column, char *buf, size_t max)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    if (!text || strnlen (text, max + 1) <= max)
        return text;
    memcpy (buf, text, max);
    buf[max] = 0;
    return buf;
}

//  The kind of the edge in a column, or -1 (logged) if it is no kind.
static int
s_edge_kind (sqlite3_stmt *stmt, int column, uint64_t child, uint64_t parent)
{
    int kind = s_small (stmt, column, 0, 2);
    if (kind < 0)
        zsys_error ("journal: edge %" PRIu64 " -> %" PRIu64 " skipped: its kind is no kind", child,
                    parent);
    return kind;
}

int
arb_journal_parents (arb_journal_t *self, uint64_t child, arb_journal_parent_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->parents;
    s_bind_u64 (stmt, 1, child);
    int rc;
    char ref[ARB_NAME_MAX + 1], error[ARB_TEXT_MAX + 1];
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        uint64_t id = s_u64 (stmt, 0);
        int kind = s_edge_kind (stmt, 1, child, id);
        if (kind < 0)
            continue;
        arb_journal_parent_t parent = {.id = id, .kind = kind};
        //  a parent whose row is unusable is read as gone, as a purged one
        int state = sqlite3_column_type (stmt, 2) == SQLITE_NULL
                        ? 0
                        : s_small (stmt, 2, ARB_STATE_WAITING, ARB_STATE_MAX);
        if (state < 0)
            zsys_error ("journal: task %" PRIu64 " read as gone: its state is not one it can be in",
                        id);
        if (state > 0) {
            parent.state = state;
            parent.ref = s_text_in (stmt, 3, ref, ARB_NAME_MAX);
            parent.result = sqlite3_column_blob (stmt, 4);
            parent.result_size = (size_t) sqlite3_column_bytes (stmt, 4);
            parent.error = s_text_in (stmt, 5, error, ARB_TEXT_MAX);
        }
        if (fn (arg, &parent))
            break;
    }
    return s_read_end (self, stmt, rc, "parents of task", child);
}

int
arb_journal_children (arb_journal_t *self, uint64_t parent, arb_vec_t *children)
{
    sqlite3_stmt *stmt = self->children;
    s_bind_u64 (stmt, 1, parent);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        int kind = s_edge_kind (stmt, 1, s_u64 (stmt, 0), parent);
        if (kind < 0)
            continue;
        arb_vec_push (children, s_u64 (stmt, 0));
        arb_vec_push (children, (uint64_t) kind);
    }
    return s_read_end (self, stmt, rc, "children of task", parent);
}

int
arb_journal_copies (arb_journal_t *self, uint64_t origin, arb_msg_t *msg, arb_task_info_t *info)
{
    return s_read_responses (self, origin, msg, info);
}

int
arb_journal_insert_flow (
    arb_journal_t *self, int kind, const char *name, uint64_t now_ms, uint64_t *id)
{
    sqlite3_stmt *stmt = self->insert_flow;
    sqlite3_bind_int (stmt, 1, kind);
    s_bind_text (stmt, 2, name);
    s_bind_u64 (stmt, 3, now_ms);
    if (s_run (self, stmt, "insert flow"))
        return -1;
    *id = (uint64_t) sqlite3_last_insert_rowid (self->db);
    return 0;
}

int
arb_journal_flow_kind (arb_journal_t *self, uint64_t id, int *kind)
{
    sqlite3_stmt *stmt = self->flow_kind;
    s_bind_u64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    *kind = rc == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : 0;
    return s_read_end (self, stmt, rc, "flow", id);
}

zlistx_t *
arb_journal_flows_named (arb_journal_t *self, const char *name, int kind)
{
    sqlite3_stmt *stmt = self->flows_named;
    s_bind_text (stmt, 1, name);
    sqlite3_bind_int (stmt, 2, kind);
    return s_read_ids (self, stmt, "flows by name");
}

int
arb_journal_count_final (arb_journal_t *self, arb_journal_count_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->count_final;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        int state = s_small (stmt, 1, ARB_STATE_SUCCEEDED, ARB_STATE_MAX);
        if (state > 0 && arb_state_is_final (state) && s_is_name (stmt, 0))
            fn (arg, (const char *) sqlite3_column_text (stmt, 0), state, s_u64 (stmt, 2));
        else
            zsys_error ("journal: %" PRIu64 " final tasks not counted: their queue or state is "
                        "unusable",
                        s_u64 (stmt, 2));
    }
    s_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Records the largest id given out, before rows that held it may go.
static int
s_set_id_floor (arb_journal_t *self, uint64_t id_floor)
{
    return arb_journal_set_number (self, "broker.id_floor", id_floor);
}

//  Ids as one JSON array, for json_each: a statement that takes a set of
//  ids in one run. Returns a string the caller frees; *length its length.
static char *
s_json_ids (const uint64_t *ids, size_t count, size_t *length)
{
    char *json = (char *) malloc (3 + count * 21);
    assert (json);
    size_t used = 0;
    json[used++] = '[';
    for (size_t i = 0; i < count; i++) {
        if (i)
            json[used++] = ',';
        char digits[20];
        size_t n = 0;
        uint64_t value = ids[i];
        do
            digits[n++] = (char) ('0' + value % 10);
        while ((value /= 10));
        while (n)
            json[used++] = digits[--n];
    }
    json[used++] = ']';
    json[used] = 0;
    *length = used;
    return json;
}

#define ARB_REMOVE_CHUNK 1000  //  ids a remove statement takes in one run

//  Runs a statement that takes a set of ids (?1, a JSON array) over ids,
//  in chunks. 0 or -1.
static int
s_run_ids (arb_journal_t *self, sqlite3_stmt *stmt, const uint64_t *ids, size_t count)
{
    for (size_t at = 0; at < count; at += ARB_REMOVE_CHUNK) {
        size_t length;
        char *json = s_json_ids (
            ids + at, count - at < ARB_REMOVE_CHUNK ? count - at : ARB_REMOVE_CHUNK, &length);
        sqlite3_bind_text (stmt, 1, json, (int) length, SQLITE_STATIC);
        int rc = s_run (self, stmt, "remove");
        free (json);
        if (rc)
            return -1;
    }
    return 0;
}

//  Removes the tasks ids, the history of those in with_history and the
//  edges of those in with_parents (subsets of ids), after recording the
//  id floor. 0 or -1.
static int
s_remove (arb_journal_t *self,
          const uint64_t *ids,
          size_t count,
          const uint64_t *with_history,
          size_t histories,
          const uint64_t *with_parents,
          size_t parents,
          uint64_t id_floor)
{
    if (count == 0)
        return 0;
    if (arb_journal_begin (self) || s_run_ids (self, self->purge_task, ids, count)
        || s_run_ids (self, self->purge_attempts, with_history, histories)
        || s_run_ids (self, self->purge_deps, with_parents, parents))
        return -1;
    return s_set_id_floor (self, id_floor);
}

int
arb_journal_remove (arb_journal_t *self, const uint64_t *ids, size_t count, uint64_t id_floor)
{
    //  by id: any of them may have history and edges
    return s_remove (self, ids, count, ids, count, ids, count, id_floor);
}

int
arb_journal_purge (arb_journal_t *self,
                   uint64_t now_ms,
                   size_t max,
                   uint64_t id_floor,
                   arb_journal_purge_fn *fn,
                   void *arg)
{
    //  Read the batch first, then delete: never change a table while a
    //  statement is walking it. Most tasks have no history and no edges:
    //  only those that may have are looked for there (a search each).
    size_t room = max ? max : 1;
    uint64_t *ids = (uint64_t *) malloc (3 * room * sizeof (uint64_t));
    assert (ids);
    uint64_t *with_history = ids + room, *with_parents = ids + 2 * room;
    size_t count = 0, histories = 0, parents = 0;
    sqlite3_stmt *stmt = self->purge_due;
    s_bind_u64 (stmt, 1, now_ms);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) max);
    while (count < max && sqlite3_step (stmt) == SQLITE_ROW) {
        uint64_t id = s_u64 (stmt, 0);
        ids[count++] = id;
        if (sqlite3_column_int (stmt, 3))
            with_history[histories++] = id;
        if (sqlite3_column_int (stmt, 4))
            with_parents[parents++] = id;
        fn (arg, id, (const char *) sqlite3_column_text (stmt, 1), sqlite3_column_int (stmt, 2));
    }
    s_done (stmt);
    int result =
        s_remove (self, ids, count, with_history, histories, with_parents, parents, id_floor)
            ? -1
            : (int) count;
    free (ids);
    return result;
}

int
arb_journal_set_delivered (arb_journal_t *self, uint64_t id, uint32_t delivered)
{
    sqlite3_stmt *stmt = self->set_delivered;
    s_bind_u64 (stmt, 1, id);
    sqlite3_bind_int64 (stmt, 2, delivered);
    return s_run (self, stmt, "delivered");
}

int
arb_journal_deliver_ready (arb_journal_t *self, uint64_t now_ms, uint64_t *changed)
{
    sqlite3_stmt *stmt = self->deliver_ready;
    s_bind_u64 (stmt, 1, now_ms);
    int rc = arb_journal_begin (self) || s_run (self, stmt, "count deliveries") ? -1 : 0;
    *changed = rc == 0 ? (uint64_t) sqlite3_changes (self->db) : 0;
    return rc;
}

int
arb_journal_cancel_open (arb_journal_t *self,
                         const char *queue,
                         const uint64_t *keep,
                         size_t keep_count,
                         uint64_t now_ms,
                         const char *error,
                         uint64_t retention_ms,
                         arb_journal_ended_fn *fn,
                         void *arg,
                         uint64_t *changed)
{
    *changed = 0;
    if (arb_journal_begin (self) || self->fault != ARB_JOURNAL_SOUND)
        return -1;
    //  The ids to keep go in as one JSON array (json_each), so that the
    //  statement is one, whatever their number.
    size_t length;
    char *json = s_json_ids (keep, keep_count, &length);
    sqlite3_stmt *stmt = self->cancel_open;
    s_bind_text (stmt, 1, queue);
    s_bind_u64 (stmt, 2, now_ms);
    s_bind_text (stmt, 3, error);
    s_bind_u64 (stmt, 4, retention_ms);
    s_bind_text (stmt, 5, json);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        (*changed)++;
        if (fn)
            fn (arg, s_u64 (stmt, 0), (uint32_t) sqlite3_column_int64 (stmt, 1));
    }
    if (rc != SQLITE_DONE) {
        s_fault (self);
        zsys_error ("journal: cancel queue failed: %s", sqlite3_errmsg (self->db));
    }
    s_done (stmt);
    free (json);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
arb_journal_forget_queue (arb_journal_t *self, const char *queue, uint64_t id_floor)
{
    if (arb_journal_begin (self))
        return -1;
    sqlite3_stmt *all[] = {self->forget_attempts, self->forget_deps, self->forget_tasks};
    for (size_t k = 0; k < 3; k++) {
        s_bind_text (all[k], 1, queue);
        if (s_run (self, all[k], "forget queue"))
            return -1;
    }
    return s_set_id_floor (self, id_floor);
}

int
arb_journal_scan (arb_journal_t *self,
                  uint64_t after_id,
                  size_t max,
                  arb_journal_scan_fn *fn,
                  void *arg,
                  uint64_t *last_id,
                  size_t *seen)
{
    sqlite3_stmt *stmt = self->scan;
    s_bind_id_bound (stmt, 1, after_id);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) max);
    *seen = 0;
    *last_id = after_id;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        arb_journal_scanned_t row = {
            .id = s_u64 (stmt, 0),
            .queue = (const char *) sqlite3_column_text (stmt, 1),
            .state = sqlite3_column_int (stmt, 2),
            .finished_ms = s_u64 (stmt, 3),
            .has_children = sqlite3_column_int (stmt, 4) != 0,
        };
        *last_id = row.id;
        (*seen)++;
        fn (arg, &row);
    }
    return s_read_end (self, stmt, rc, "tasks in id order", 0);
}

int
arb_journal_max_id (arb_journal_t *self, uint64_t *id)
{
    int rc = sqlite3_step (self->max_id);
    *id = rc == SQLITE_ROW ? s_u64 (self->max_id, 0) : 0;
    return s_read_end (self, self->max_id, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "max id", 0);
}

//  ---------------------------------------------------------------------
//  Metadata

int
arb_journal_meta_get (arb_journal_t *self, const char *key, zchunk_t **value)
{
    sqlite3_stmt *stmt = self->meta_get;
    s_bind_text (stmt, 1, key);
    int rc = sqlite3_step (stmt);
    *value = NULL;
    if (rc == SQLITE_ROW)
        *value =
            zchunk_new (sqlite3_column_blob (stmt, 0), (size_t) sqlite3_column_bytes (stmt, 0));
    return s_read_end (self, stmt, rc, "meta", 0);
}

int
arb_journal_meta_set (arb_journal_t *self, const char *key, const void *data, size_t size)
{
    sqlite3_stmt *stmt = self->meta_set;
    s_bind_text (stmt, 1, key);
    sqlite3_bind_blob (stmt, 2, data, (int) size, SQLITE_STATIC);
    return s_run (self, stmt, "meta set");
}

int
arb_journal_meta_del (arb_journal_t *self, const char *key)
{
    sqlite3_stmt *stmt = self->meta_del;
    s_bind_text (stmt, 1, key);
    return s_run (self, stmt, "meta del");
}

int
arb_journal_meta_list (arb_journal_t *self, const char *prefix, arb_journal_meta_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->meta_list;
    s_bind_text (stmt, 1, prefix ? prefix : "");
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        //  an empty or NULL value's blob pointer is NULL: fn gets "" instead
        const void *data = sqlite3_column_blob (stmt, 1);
        fn (arg, (const char *) sqlite3_column_text (stmt, 0), data ? data : "",
            (size_t) sqlite3_column_bytes (stmt, 1));
    }
    s_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Binds the range of keys that begin with prefix to ?1 and ?2: from the
//  prefix itself to the first string after every key that begins with it
//  (the prefix with its last byte raised; a byte 0xff is dropped and the
//  one before raised). end is scratch of strlen (prefix) + 1 bytes.
static void
s_bind_prefix (sqlite3_stmt *stmt, const char *prefix, char *end)
{
    size_t len = strlen (prefix);
    memcpy (end, prefix, len + 1);
    while (len > 0 && (uint8_t) end[len - 1] == 0xff)
        len--;
    sqlite3_bind_text (stmt, 1, prefix, -1, SQLITE_STATIC);
    if (len == 0) {
        sqlite3_bind_null (stmt, 2);  //  every key
        return;
    }
    end[len - 1] = (char) ((uint8_t) end[len - 1] + 1);
    sqlite3_bind_text (stmt, 2, end, (int) len, SQLITE_STATIC);
}

int
arb_journal_meta_page (arb_journal_t *self,
                       const char *prefix,
                       const char *after,
                       uint32_t limit,
                       arb_journal_meta_take_fn *fn,
                       void *arg,
                       bool *more)
{
    sqlite3_stmt *stmt = self->meta_page;
    char *end = strdup (prefix);
    s_bind_prefix (stmt, prefix, end);
    s_bind_text (stmt, 3, after ? after : "");
    //  no LIMIT: a row too long for a reply is skipped, and must not take
    //  the place of one after it (*more would be wrong)
    sqlite3_bind_int64 (stmt, 4, -1);
    *more = false;
    uint32_t count = 0;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text (stmt, 0);
        size_t key_size = (size_t) sqlite3_column_bytes (stmt, 0);
        const void *data = sqlite3_column_blob (stmt, 1);
        size_t size = (size_t) sqlite3_column_bytes (stmt, 1);
        if (!key || key_size > ARB_TEXT_MAX || size > ARB_META_VALUE_MAX) {
            zsys_error ("journal: meta key of %zu bytes skipped: key or value of %zu bytes over "
                        "its limit",
                        key_size, size);
            continue;
        }
        if (count++ == limit || fn (arg, key, data ? data : "", size)) {
            *more = true;
            break;
        }
    }
    rc = s_read_end (self, stmt, rc, "meta page", 0);
    free (end);
    return rc;
}

int
arb_journal_meta_del_prefix (arb_journal_t *self, const char *prefix)
{
    sqlite3_stmt *stmt = self->meta_del_range;
    char *end = strdup (prefix);
    s_bind_prefix (stmt, prefix, end);
    int rc = s_run (self, stmt, "meta delete prefix");
    free (end);
    return rc;
}

int
arb_journal_meta_number (arb_journal_t *self, const char *key, uint64_t *number)
{
    zchunk_t *value;
    if (arb_journal_meta_get (self, key, &value))
        return -1;
    *number = 0;
    if (value) {
        char text[32] = "";
        size_t size =
            zchunk_size (value) < sizeof (text) - 1 ? zchunk_size (value) : sizeof (text) - 1;
        memcpy (text, zchunk_data (value), size);
        *number = strtoull (text, NULL, 10);
        zchunk_destroy (&value);
    }
    return 0;
}

int
arb_journal_set_number (arb_journal_t *self, const char *key, uint64_t number)
{
    char text[32];
    snprintf (text, sizeof (text), "%" PRIu64, number);
    return arb_journal_meta_set (self, key, text, strlen (text));
}

int
arb_journal_next_epoch (arb_journal_t *self, uint64_t *epoch)
{
    if (arb_journal_meta_number (self, ARB_EPOCH_KEY, epoch))
        return -1;
    ++*epoch;
    if (arb_journal_begin (self) || arb_journal_set_number (self, ARB_EPOCH_KEY, *epoch)
        || arb_journal_commit (self))
        return -1;
    return 0;
}

int
arb_journal_epoch (arb_journal_t *self, uint64_t *epoch)
{
    return arb_journal_meta_number (self, ARB_EPOCH_KEY, epoch);
}

int
arb_journal_set_epoch (arb_journal_t *self, uint64_t epoch)
{
    return arb_journal_begin (self) || arb_journal_set_number (self, ARB_EPOCH_KEY, epoch) ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  Schedules

int
arb_journal_schedule_add (arb_journal_t *self,
                          const arb_schedule_info_t *schedule,
                          uint64_t cursor_ms)
{
    sqlite3_stmt *stmt = self->schedule_add;
    s_bind_text (stmt, 1, schedule->name);
    s_bind_text (stmt, 2, schedule->cron);
    s_bind_text (stmt, 3, schedule->zone ? schedule->zone : "UTC");
    s_bind_text (stmt, 4, schedule->catch_up ? schedule->catch_up : "one");
    sqlite3_bind_int (stmt, 5, schedule->paused);
    s_bind_u64 (stmt, 6, schedule->created_ms);
    s_bind_u64 (stmt, 7, cursor_ms);
    s_bind_u64 (stmt, 8, schedule->last_slot_ms);
    s_bind_u64 (stmt, 9, schedule->last_id);
    s_bind_text (stmt, 10, schedule->queue ? schedule->queue : "default");
    s_bind_text (stmt, 11, schedule->task);
    sqlite3_bind_int (stmt, 12, schedule->priority);
    sqlite3_bind_int64 (stmt, 13, schedule->retries);
    sqlite3_bind_int64 (stmt, 14, schedule->backoff);
    s_bind_u64 (stmt, 15, schedule->backoff_ms);
    s_bind_u64 (stmt, 16, schedule->backoff_cap_ms);
    sqlite3_bind_int (stmt, 17, schedule->no_jitter);
    s_bind_u64 (stmt, 18, schedule->timeout_ms);
    s_bind_u64 (stmt, 19, schedule->retention_ms);
    if (schedule->payload)
        s_bind_frame (stmt, 20, schedule->payload);
    else
        sqlite3_bind_zeroblob (stmt, 20, 0);
    s_bind_u64 (stmt, 21, schedule->soft_timeout_ms);
    return s_run (self, stmt, "add schedule");
}

int
arb_journal_schedule_remove (arb_journal_t *self, const char *name)
{
    sqlite3_stmt *stmt = self->schedule_remove;
    s_bind_text (stmt, 1, name);
    return s_run (self, stmt, "remove schedule");
}

int
arb_journal_schedule_state (arb_journal_t *self, const char *name, bool paused, uint64_t cursor_ms)
{
    sqlite3_stmt *stmt = self->schedule_state;
    s_bind_text (stmt, 1, name);
    sqlite3_bind_int (stmt, 2, paused);
    s_bind_u64 (stmt, 3, cursor_ms);
    return s_run (self, stmt, "schedule state");
}

int
arb_journal_schedule_fired (arb_journal_t *self, const char *name, uint64_t slot_ms, uint64_t id)
{
    sqlite3_stmt *stmt = self->schedule_fired;
    s_bind_text (stmt, 1, name);
    s_bind_u64 (stmt, 2, slot_ms);
    s_bind_u64 (stmt, 3, id);
    return s_run (self, stmt, "schedule fired");
}

int
arb_journal_schedules (arb_journal_t *self, arb_journal_schedule_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->schedules;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        arb_schedule_info_t schedule = {
            .name = (const char *) sqlite3_column_text (stmt, 0),
            .cron = (const char *) sqlite3_column_text (stmt, 1),
            .zone = (const char *) sqlite3_column_text (stmt, 2),
            .catch_up = (const char *) sqlite3_column_text (stmt, 3),
            .paused = sqlite3_column_int (stmt, 4) != 0,
            .created_ms = s_u64 (stmt, 5),
            .last_slot_ms = s_u64 (stmt, 7),
            .last_id = s_u64 (stmt, 8),
            .queue = (const char *) sqlite3_column_text (stmt, 9),
            .task = (const char *) sqlite3_column_text (stmt, 10),
            .priority = sqlite3_column_int (stmt, 11),
            .retries = (uint32_t) sqlite3_column_int64 (stmt, 12),
            .backoff = (uint32_t) sqlite3_column_int64 (stmt, 13),
            .backoff_ms = s_u64 (stmt, 14),
            .backoff_cap_ms = s_u64 (stmt, 15),
            .no_jitter = sqlite3_column_int (stmt, 16) != 0,
            .timeout_ms = s_u64 (stmt, 17),
            .retention_ms = s_u64 (stmt, 18),
            .payload = s_frame (stmt, 19),
            .soft_timeout_ms = s_u64 (stmt, 20),
        };
        if (!schedule.payload)
            schedule.payload = zframe_new_empty ();  //  never NULL, as promised
        int stop = fn (arg, &schedule, s_u64 (stmt, 6));
        zframe_destroy (&schedule.payload);
        if (stop)
            break;
    }
    return s_read_end (self, stmt, rc, "schedules", 0);
}
