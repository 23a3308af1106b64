/*  fuzz_journal.c — libFuzzer target for the journal's loader on
    corrupted rows (broker/arb_journal_tasks.c).

    A real journal, in a file under /dev/shm (else /tmp): arb_journal_new
    makes its schema once, then the NOT NULL constraints are taken out of
    it (writable_schema) so that a row may hold what a damaged or
    hand-edited journal holds. For each input the tables are emptied and
    filled, through a second SQLite connection, with rows whose columns
    the input chooses: wrong types, NULLs, texts and blobs of any size,
    negative numbers, unknown states and kinds, dangling edges.

    The input: a byte of flags (0xa0 and, or'ed in, 1: reopen the
    journal with arb_journal_new over the rows; 2: bump the start count;
    4: run the retention sweep and the queue-wide writes), then rows: a table byte, a count of columns to set
    and, for each, a column byte and a value (a tag byte, then its bytes:
    NULL, a small or 8-byte integer, a real, a text or blob with its
    length, a text from a list of meaningful ones, a long text or blob,
    each tag modulo 16).
    Columns not set keep a plausible value (a ready task in "default",
    its attempt, its edge, its flow...), so one bad column is one byte
    away.

    Then every read the broker makes runs, with the broker's own code
    where it consumes the result at start: open tasks into a scheduler
    (arb_sched), settings (arb_settings_load), schedules (arb_schedule_new);
    and per task load_task, task_info with and without detail, parents,
    children, done, state, payload, copies; list_final, count_final,
    scan, dead ids, flows, keys, meta (in one transaction, as in a turn). Nothing may crash, assert or leak;
    what the journal hands the broker must be usable (a task's queue and
    name valid names, its state one it can be in, an edge of a known
    kind), and the replies built from it (STATUS, LIST, DONE) must pass
    the strict decoder, so that one bad row never makes a reply no client
    can read. Seeds: tests/fuzz/corpus/journal.

        scons fuzz && build/fuzz/fuzz_journal -max_total_time=60 tests/fuzz/corpus/journal
*/

#include "arb_journal.h"
#include "arb_sched.h"
#include "arb_schedule.h"
#include "arb_settings.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NOW_MS   1795000000000ull  //  2026-11-18
#define MONO_MS  1000000ull
#define ROWS_MAX 48  //  rows of one input
#define IDS_MAX  8   //  task ids probed one by one

//  The journal and the connection that writes rows behind its back: one
//  for the process (opening a journal prepares some forty statements).
static struct {
    char dir[64];
    char path[96];
    sqlite3 *db;
    arb_journal_t *journal;
} s_fx;

static void
s_fail (const char *what)
{
    fprintf (stderr, "fuzz_journal: %s\n", what);
    abort ();
}

static void
s_exec (const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec (s_fx.db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf (stderr, "fuzz_journal: %s: %s\n", sql, err ? err : "?");
        abort ();
    }
}

static void
s_cleanup (void)
{
    arb_journal_destroy (&s_fx.journal);
    sqlite3_close_v2 (s_fx.db);
    char *files[] = {"", "-wal", "-shm", ".lock", ARB_JOURNAL_LOG_SUFFIX};
    for (size_t i = 0; i < sizeof (files) / sizeof (files[0]); i++) {
        char path[128];
        snprintf (path, sizeof (path), "%s%s", s_fx.path, files[i]);
        unlink (path);
    }
    rmdir (s_fx.dir);
}

static void
s_setup (void)
{
    //  pages read through a map, not copied by read(): each input's rows
    //  are new to the journal's connection
    sqlite3_config (SQLITE_CONFIG_MMAP_SIZE, (sqlite3_int64) 1 << 28, (sqlite3_int64) 1 << 28);
    zsys_init ();
    zsys_set_logstream (NULL);  //  the journal's log lines are not the finding
    zsys_set_logsystem (false);
    const char *base = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf (s_fx.dir, sizeof (s_fx.dir), "%s/arbiter-fuzz-journal-XXXXXX", base);
    if (!mkdtemp (s_fx.dir))
        s_fail ("cannot make a directory");
    snprintf (s_fx.path, sizeof (s_fx.path), "%s/journal.db", s_fx.dir);
    //  the journal makes its schema, then loses its NOT NULLs
    arb_journal_t *journal = arb_journal_new (s_fx.path, ARB_SYNC_NORMAL);
    if (!journal)
        s_fail ("cannot make the journal");
    arb_journal_destroy (&journal);
    if (sqlite3_open (s_fx.path, &s_fx.db) != SQLITE_OK)
        s_fail ("cannot open the journal's file");
    s_exec ("PRAGMA writable_schema = ON;"
            "UPDATE sqlite_master SET sql = replace (sql, 'NOT NULL', '') WHERE type = 'table';"
            "PRAGMA writable_schema = OFF;");
    sqlite3_close (s_fx.db);
    if (sqlite3_open (s_fx.path, &s_fx.db) != SQLITE_OK)
        s_fail ("cannot open the journal's file");
    s_exec ("PRAGMA synchronous = OFF; PRAGMA integrity_check;");
    sqlite3_busy_timeout (s_fx.db, 5000);
    s_fx.journal = arb_journal_new (s_fx.path, ARB_SYNC_NORMAL);
    if (!s_fx.journal)
        s_fail ("cannot open the journal");
    atexit (s_cleanup);
}

//  ---------------------------------------------------------------------
//  Rows from the input.

typedef struct {
    const uint8_t *p, *end;
} s_in_t;

static uint8_t
s_byte (s_in_t *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

static uint64_t
s_be64 (s_in_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | s_byte (in);
    return value;
}

static const char *s_words[] = {
    "",
    "default",
    "job",
    "UTC",
    "Europe/Berlin",
    "../../../etc/passwd",
    "one",
    "all",
    "none",
    "*/5 * * * *",
    "0 3 * * *",
    "queue.default",
    "limit.job",
    "broker.epoch",
    "broker.id_floor",
    "paused=1 max_running=5 rate=10 retention_ms=1000 on_failure=7",
    "max_running=4294967295 rate=99999999999",
    "18446744073709551615",
    "-1",
    "caf\xc3\xa9",
    "two\nlines",
    "x@y",
    "\xff\xfe",
    "nightly",
};

#define S_WORDS (sizeof (s_words) / sizeof (s_words[0]))

//  Binds the input's next value at index.
static void
s_bind_value (sqlite3_stmt *stmt, int index, s_in_t *in)
{
    uint8_t tag = s_byte (in);
    switch (tag % 16) {
        case 0:
            sqlite3_bind_null (stmt, index);
            break;
        default:
            sqlite3_bind_int64 (stmt, index, (int8_t) s_byte (in));
            break;
        case 2:
            sqlite3_bind_int64 (stmt, index, (sqlite3_int64) s_be64 (in));
            break;
        case 3: {
            uint64_t bits = s_be64 (in);
            double real;
            memcpy (&real, &bits, sizeof (real));
            sqlite3_bind_double (stmt, index, real);
            break;
        }
        case 4:
        case 5: {
            size_t len = s_byte (in);
            if (len > (size_t) (in->end - in->p))
                len = (size_t) (in->end - in->p);
            if (tag % 16 == 4)
                sqlite3_bind_text (stmt, index, (const char *) in->p, (int) len, SQLITE_TRANSIENT);
            else
                sqlite3_bind_blob (stmt, index, in->p, (int) len, SQLITE_TRANSIENT);
            in->p += len;
            break;
        }
        case 6:
            sqlite3_bind_text (stmt, index, s_words[s_byte (in) % S_WORDS], -1, SQLITE_STATIC);
            break;
        case 15: {
            //  up to 64 KB, past every limit on a text (a larger one is
            //  only slower): a text of printable bytes or a blob of zeros
            size_t n = s_byte (in), len = n * n;
            if (s_byte (in) % 2) {
                sqlite3_bind_zeroblob (stmt, index, (int) len);
                break;
            }
            char *text = (char *) malloc (len + 1);
            memset (text, 'q', len);
            sqlite3_bind_text (stmt, index, text, (int) len, free);
            break;
        }
    }
}

//  The tables, their columns in schema order, and a plausible row of
//  each: n is the row's number in its table (from 1), for ids.
typedef struct {
    const char *insert;
    int columns;
} s_table_t;

static const s_table_t s_tables[] = {
    {"INSERT OR REPLACE INTO tasks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
     "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, "
     "?32, ?33, ?34, ?35, ?36, ?37, ?38)",
     38},
    {"INSERT OR REPLACE INTO attempts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", 8},
    {"INSERT OR REPLACE INTO deps VALUES (?1, ?2, ?3)", 3},
    {"INSERT OR REPLACE INTO flows VALUES (?1, ?2, ?3, ?4)", 4},
    {"INSERT OR REPLACE INTO meta VALUES (?1, ?2)", 2},
    {"INSERT OR REPLACE INTO schedules VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
     "?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
     21},
};

#define S_TABLES (sizeof (s_tables) / sizeof (s_tables[0]))

static void
s_defaults (sqlite3_stmt *stmt, size_t table, int64_t n)
{
    switch (table) {
        case 0: {
            //  id, ckey, queue, name, state, priority, max_attempts, attempts,
            //  lost, backoff, backoff_ms, backoff_cap_ms, jitter, timeout_ms,
            //  not_before_ms, expires_ms, retention_ms, created_ms, started_ms,
            //  finished_ms, purge_at_ms, worker, error, headers, payload,
            //  result, flow, ref, input, origin, endpoint, parents, copies,
            //  has_children, args, soft_timeout_ms, delivered, unwatched
            static const int64_t numbers[] = {0, 0, 0, 0, 3, 0, 1, 0, 0,
                                              0, 0, 0, 1, 0, 0, 0, 0, (int64_t) NOW_MS};
            sqlite3_bind_int64 (stmt, 1, n);
            for (int i = 5; i <= 18; i++)
                sqlite3_bind_int64 (stmt, i, numbers[i - 1]);
            sqlite3_bind_text (stmt, 3, "default", -1, SQLITE_STATIC);
            sqlite3_bind_text (stmt, 4, "job", -1, SQLITE_STATIC);
            sqlite3_bind_int64 (stmt, 19, 0);
            sqlite3_bind_int64 (stmt, 20, 0);
            sqlite3_bind_zeroblob (stmt, 25, 0);
            sqlite3_bind_int64 (stmt, 29, 0);
            sqlite3_bind_int64 (stmt, 32, 0);
            sqlite3_bind_int64 (stmt, 33, 0);
            sqlite3_bind_int64 (stmt, 34, 0);
            sqlite3_bind_int64 (stmt, 36, 0);
            sqlite3_bind_int64 (stmt, 37, 0);
            sqlite3_bind_int64 (stmt, 38, 0);
            break;
        }
        case 1:
            //  task_id, seq, attempt, started_ms, ended_ms, worker, outcome, error
            sqlite3_bind_int64 (stmt, 1, 1);
            sqlite3_bind_int64 (stmt, 2, n);
            sqlite3_bind_int64 (stmt, 3, n);
            sqlite3_bind_int64 (stmt, 4, (int64_t) NOW_MS);
            sqlite3_bind_int64 (stmt, 5, (int64_t) NOW_MS + 5);
            sqlite3_bind_text (stmt, 6, "w1", -1, SQLITE_STATIC);
            sqlite3_bind_int64 (stmt, 7, 1);
            sqlite3_bind_text (stmt, 8, "boom", -1, SQLITE_STATIC);
            break;
        case 2:
            //  child, parent, kind
            sqlite3_bind_int64 (stmt, 1, n + 1);
            sqlite3_bind_int64 (stmt, 2, n);
            sqlite3_bind_int64 (stmt, 3, 0);
            break;
        case 3:
            //  id, kind, name, created_ms
            sqlite3_bind_int64 (stmt, 1, n);
            sqlite3_bind_int64 (stmt, 2, 1);
            sqlite3_bind_text (stmt, 3, "nightly", -1, SQLITE_STATIC);
            sqlite3_bind_int64 (stmt, 4, (int64_t) NOW_MS);
            break;
        case 4:
            //  key, value
            sqlite3_bind_text (stmt, 1, n % 2 ? "queue.default" : "limit.job", -1, SQLITE_STATIC);
            sqlite3_bind_text (stmt, 2, "paused=0 max_running=2 rate=0 retention_ms=0 on_failure=0",
                               -1, SQLITE_STATIC);
            break;
        case 5: {
            //  name, cron, zone, catch_up, paused, created_ms, cursor_ms,
            //  last_slot_ms, last_id, queue, task, priority, retries,
            //  backoff, backoff_ms, backoff_cap_ms, no_jitter, timeout_ms,
            //  soft_timeout_ms, retention_ms, payload
            char name[32];
            snprintf (name, sizeof (name), "nightly%" PRId64, n);
            sqlite3_bind_text (stmt, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (stmt, 2, "0 3 * * *", -1, SQLITE_STATIC);
            sqlite3_bind_text (stmt, 3, "UTC", -1, SQLITE_STATIC);
            sqlite3_bind_text (stmt, 4, "one", -1, SQLITE_STATIC);
            for (int i = 5; i <= 20; i++)
                sqlite3_bind_int64 (stmt, i, 0);
            sqlite3_bind_int64 (stmt, 6, (int64_t) NOW_MS);
            sqlite3_bind_int64 (stmt, 7, (int64_t) NOW_MS);
            sqlite3_bind_text (stmt, 10, "default", -1, SQLITE_STATIC);
            sqlite3_bind_text (stmt, 11, "report", -1, SQLITE_STATIC);
            sqlite3_bind_zeroblob (stmt, 21, 0);
            break;
        }
    }
}

//  Runs a statement of no rows, prepared once in *stmt_p.
static void
s_step_once (sqlite3_stmt **stmt_p, const char *sql)
{
    if (!*stmt_p && sqlite3_prepare_v2 (s_fx.db, sql, -1, stmt_p, NULL) != SQLITE_OK)
        s_fail (sqlite3_errmsg (s_fx.db));
    if (sqlite3_step (*stmt_p) != SQLITE_DONE)
        s_fail (sqlite3_errmsg (s_fx.db));
    sqlite3_reset (*stmt_p);
}

//  Empties the tables and writes the input's rows, in one transaction.
static void
s_write_rows (s_in_t *in)
{
    static sqlite3_stmt *inserts[S_TABLES];
    if (!inserts[0])
        for (size_t t = 0; t < S_TABLES; t++)
            if (sqlite3_prepare_v2 (s_fx.db, s_tables[t].insert, -1, &inserts[t], NULL)
                != SQLITE_OK)
                s_fail (sqlite3_errmsg (s_fx.db));
    static sqlite3_stmt *clear[8];
    static const char *clear_sql[] = {"BEGIN",
                                      "DELETE FROM tasks",
                                      "DELETE FROM attempts",
                                      "DELETE FROM deps",
                                      "DELETE FROM flows",
                                      "DELETE FROM meta",
                                      "DELETE FROM schedules",
                                      "COMMIT"};
    for (size_t i = 0; i < 7; i++)
        s_step_once (&clear[i], clear_sql[i]);
    int64_t made[S_TABLES] = {0};
    for (int row = 0; row < ROWS_MAX && in->p < in->end; row++) {
        size_t table = s_byte (in) % S_TABLES;
        sqlite3_stmt *stmt = inserts[table];
        s_defaults (stmt, table, ++made[table]);
        for (int set = s_byte (in) % 8; set > 0; set--) {
            int column = s_byte (in) % s_tables[table].columns;
            s_bind_value (stmt, column + 1, in);
        }
        sqlite3_step (stmt);  //  a row SQLite refuses (an id that is text) is no row
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
    }
    s_step_once (&clear[7], clear_sql[7]);
}

//  Up to max ids of a query's first column (the query prepared once, in
//  *stmt_p).
static size_t
s_ids (sqlite3_stmt **stmt_p, const char *sql, uint64_t *ids, size_t max)
{
    if (!*stmt_p && sqlite3_prepare_v2 (s_fx.db, sql, -1, stmt_p, NULL) != SQLITE_OK)
        s_fail (sqlite3_errmsg (s_fx.db));
    size_t n = 0;
    while (n < max && sqlite3_step (*stmt_p) == SQLITE_ROW)
        ids[n++] = (uint64_t) sqlite3_column_int64 (*stmt_p, 0);
    sqlite3_reset (*stmt_p);
    return n;
}

//  ---------------------------------------------------------------------
//  What the journal promises the broker.

static bool
s_is_name (const char *text)
{
    char why[80];
    return text && *text && strlen (text) <= ARB_NAME_MAX
           && arb_name_check (text, strlen (text), why, sizeof (why)) == 0;
}

//  A reply built from journal reads must reach a client: the strict
//  decoder takes it back (payload-size limits aside: a broker may be
//  configured with larger frames).
static void
s_round_trip (arb_msg_t **msg_p, const char *what)
{
    zmsg_t *zmsg = arb_msg_encode (msg_p);
    arb_limits_t limits = {.max_frame = (size_t) 1 << 40};
    arb_msg_t *back = NULL;
    if (arb_msg_decode (&zmsg, false, &limits, &back)) {
        fprintf (stderr, "fuzz_journal: %s: %s\n", what,
                 back && arb_msg_decode_error (back) ? arb_msg_decode_error (back) : "?");
        s_fail ("a reply built from the journal does not decode");
    }
    arb_msg_destroy (&back);
}

typedef struct {
    arb_sched_t *sched;
    size_t loaded;
    bool open;  //  load_open (else load_task)
} s_load_t;

//  As the broker's start does (arb_life_load): each open task into the
//  scheduler, in its queue, by its state.
static int
s_load_task (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_load_t *load = (s_load_t *) arg;
    if (!s_is_name (queue) || !s_is_name (name))
        s_fail ("a task without a valid queue or name");
    if (load->open ? row->state < ARB_STATE_WAITING || row->state > ARB_STATE_READY
                   : row->state < ARB_STATE_WAITING || row->state > ARB_STATE_MAX)
        s_fail ("a task in a state it cannot be in");
    if (load->open) {
        arb_task_t *task = arb_sched_task_from_row (load->sched, row, queue, name);
        arb_sched_add (load->sched, task, NOW_MS, MONO_MS);
    }
    load->loaded++;
    return 0;
}

static void
s_count_final (void *arg, const char *queue, int state, uint64_t count)
{
    (void) arg;
    (void) count;
    if (!s_is_name (queue) || !arb_state_is_final (state))
        s_fail ("a final count without a valid queue, or of a state not final");
}

static int
s_parent (void *arg, const arb_journal_parent_t *parent)
{
    (void) arg;
    if (parent->kind < 0 || parent->kind > 2 || parent->state < 0 || parent->state > ARB_STATE_MAX)
        s_fail ("an edge of an unknown kind, or a parent in an unknown state");
    if ((parent->ref && strlen (parent->ref) > ARB_NAME_MAX)
        || (parent->error && strlen (parent->error) > ARB_TEXT_MAX))
        s_fail ("a parent's name or error over its limit");
    return 0;
}

static int
s_schedule (void *arg, arb_schedule_info_t *info, uint64_t cursor_ms)
{
    (void) arg;
    if (!info->payload)
        s_fail ("a schedule without a payload frame");
    //  as the broker's start does (arb_life_load_schedules)
    char why[ARB_TEXT_MAX] = "";
    arb_schedule_t *schedule = arb_schedule_new (info, cursor_ms, why, sizeof (why));
    if (!schedule && !*why)
        s_fail ("a schedule refused without a reason");
    arb_schedule_destroy (&schedule);
    return 0;
}

static void
s_meta (void *arg, const char *key, const void *data, size_t size)
{
    (void) arg;
    if (!key || (size && !data))
        s_fail ("a setting without a key, or a value without its bytes");
}

//  As the broker's META list does (arb_verbs_admin.c): each key and value
//  into the reply.
static int
s_meta_take (void *arg, const char *key, const void *data, size_t size)
{
    arb_msg_t *reply = (arb_msg_t *) arg;
    if (!key || (size && !data))
        s_fail ("a setting without a key, or a value without its bytes");
    arb_meta_reply_body_t *out = arb_msg_meta_reply (reply);
    arb_meta_item_t *item =
        (arb_meta_item_t *) arb_msg_grow (reply, &out->items, sizeof (arb_meta_item_t), 1);
    item->key = arb_msg_strdup (reply, key);
    uint8_t *copy = (uint8_t *) arb_msg_alloc (reply, size);
    if (size)
        memcpy (copy, data, size);
    item->value = (arb_bin_t){copy, size};
    return 0;
}

static void
s_scanned (void *arg, const arb_journal_scanned_t *row)
{
    (void) arg;
    (void) row;
}

static bool
s_purged (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    (void) arg;
    (void) id;
    (void) queue;
    (void) state;
    return has_children;  //  parents kept: the journal moves their purge time on
}

//  Every read of one task.
static void
s_probe_task (arb_journal_t *journal, uint64_t id, s_load_t *load)
{
    bool found;
    arb_journal_load_task (journal, id, s_load_task, load, &found);
    //  with detail (without it, it reads what list_final reads)
    arb_msg_t *reply = arb_msg_new (ARB_MSG_STATUS_REPLY, 1);
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    arb_task_info_t *info =
        (arb_task_info_t *) arb_msg_grow (reply, &body->tasks, sizeof (arb_task_info_t), 1);
    if (arb_journal_task_info (journal, id, true, reply, info) == 0)
        s_round_trip (&reply, "STATUS_REPLY");
    arb_msg_destroy (&reply);
    arb_journal_parents (journal, id, s_parent, NULL);
    arb_vec_t children = {0};
    if (arb_journal_children (journal, id, &children) == 0)
        for (size_t i = 1; i < children.n; i += 2)
            if (children.v[i] > 2)
                s_fail ("a child's edge of an unknown kind");
    arb_vec_free (&children);

    arb_msg_t *msg = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_body_t *done_body = arb_msg_done (msg);
    arb_done_task_t *done =
        (arb_done_task_t *) arb_msg_grow (msg, &done_body->tasks, sizeof (arb_done_task_t), 1);
    if (arb_journal_done (journal, id, msg, done, &found) == 0 && found)
        s_round_trip (&msg, "DONE");
    arb_msg_destroy (&msg);

    int state;
    char ref[ARB_NAME_MAX + 1];
    arb_journal_state (journal, id, &state, ref, sizeof (ref));
    zframe_t *payload, *headers, *args;
    if (arb_journal_load_payload (journal, id, &payload, &headers, &args) == 0 && !payload)
        s_fail ("a payload read as NULL");
    zframe_destroy (&payload);
    zframe_destroy (&headers);
    zframe_destroy (&args);
}

static void
s_list (arb_journal_t *journal, const arb_list_body_t *filter)
{
    arb_msg_t *reply = arb_msg_new (ARB_MSG_LIST_REPLY, 1);
    arb_list_reply_body_t *body = arb_msg_list_reply (reply);
    if (arb_journal_list_final (journal, filter, 20, reply, body) == 0)
        s_round_trip (&reply, "LIST_REPLY");
    arb_msg_destroy (&reply);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_fx.journal)
        s_setup ();
    s_in_t in = {data, data + size};
    //  the costly ones (a new journal, a commit) only now and then
    uint8_t flags = s_byte (&in);
    flags = (flags & 0xf0) == 0xa0 ? flags & 0x0f : 0;
    s_write_rows (&in);
    if (flags & 1) {
        arb_journal_destroy (&s_fx.journal);
        s_fx.journal = arb_journal_new (s_fx.path, ARB_SYNC_NORMAL);
        if (!s_fx.journal)
            s_fail ("the journal does not open over the rows");
    }
    arb_journal_t *journal = s_fx.journal;

    //  the broker's start: its ids, settings, open tasks, counts, schedules
    uint64_t max_id, epoch;
    if (flags & 2)
        arb_journal_next_epoch (journal, &epoch);
    //  the reads in one transaction, as in a broker's turn (and one
    //  SQLite lock, not one per read)
    arb_journal_begin (journal);
    arb_journal_max_id (journal, &max_id);
    arb_sched_config_t config = {.liveness_ms = 10000, .epoch = 1};
    arb_sched_hooks_t hooks = {NULL, NULL, NULL, NULL, NULL};
    s_load_t load = {arb_sched_new (&config, &hooks), 0, true};
    arb_settings_load (load.sched, journal);
    arb_journal_load_open (journal, s_load_task, &load);
    arb_journal_count_final (journal, s_count_final, NULL);
    arb_journal_schedules (journal, s_schedule, NULL);
    arb_journal_meta_list (journal, NULL, s_meta, NULL);

    //  each task, and one that is not there
    uint64_t ids[IDS_MAX + 2];
    static sqlite3_stmt *task_ids, *flow_ids;
    size_t n = s_ids (&task_ids, "SELECT id FROM tasks ORDER BY id", ids, IDS_MAX);
    ids[n++] = 0;
    ids[n++] = max_id + 1;
    load.open = false;
    for (size_t i = 0; i < n; i++)
        s_probe_task (journal, ids[i], &load);
    arb_sched_destroy (&load.sched);

    //  lists, by each filter the CLI and the dashboard use
    arb_list_body_t filters[] = {
        {.after_id = 0},
        {.newest = true},
        {.state = ARB_STATE_DEAD, .queue = "default"},
        {.flow = 1, .before_id = max_id},
    };
    for (size_t i = 0; i < sizeof (filters) / sizeof (filters[0]); i++)
        s_list (journal, &filters[i]);
    uint64_t last_id;
    size_t seen;
    arb_journal_scan (journal, 0, 100, s_scanned, NULL, &last_id, &seen);
    zlistx_t *list = arb_journal_dead_ids (journal, "default");
    zlistx_destroy (&list);
    uint64_t flows[4];
    size_t n_flows = s_ids (&flow_ids, "SELECT id FROM flows ORDER BY id", flows, 4);
    for (size_t i = 0; i < n_flows; i++) {
        int kind;
        arb_journal_flow_kind (journal, flows[i], &kind);
        list = arb_journal_flow_dead_ids (journal, flows[i]);
        zlistx_destroy (&list);
    }
    list = arb_journal_flows_named (journal, "nightly", 1);
    zlistx_destroy (&list);
    uint64_t key_id;
    int key_state;
    uint64_t key_flow;
    arb_journal_find_key (journal, "k-a", &key_id, &key_state, &key_flow);
    zchunk_t *value;
    if (arb_journal_meta_get (journal, "queue.default", &value) == 0)
        zchunk_destroy (&value);
    const char *prefixes[] = {"", "queue.", "\xff"};
    for (size_t i = 0; i < 3; i++) {
        arb_msg_t *reply = arb_msg_new (ARB_MSG_META_REPLY, 1);
        bool more;
        if (arb_journal_meta_page (journal, prefixes[i], NULL, 10, s_meta_take, reply, &more) == 0)
            s_round_trip (&reply, "META_REPLY");
        arb_msg_destroy (&reply);
    }
    uint64_t number;
    arb_journal_meta_number (journal, "broker.epoch", &number);

    //  the retention sweep removes what is due; a start after a crash
    //  counts deliveries; a queue's tasks are cancelled, then forgotten
    if (flags & 4) {
        arb_journal_purge (journal, NOW_MS + ARB_RETENTION_MAX_MS, 16, max_id, NOW_MS + 1, s_purged,
                           NULL);
        uint64_t changed, keep[] = {1, 2};
        arb_journal_deliver_ready (journal, NOW_MS, &changed);
        arb_journal_cancel_open (journal, "default", keep, 2, NOW_MS, "cancelled", 1000, NULL, NULL,
                                 &changed);
        arb_journal_forget_queue (journal, "job", max_id);
    }
    arb_journal_commit (journal);
    return 0;
}
