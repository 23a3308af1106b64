/*  test_journal.c — the SQLite journal on real files: what is committed
    survives a reopen, what is not does not, and the bookkeeping around it;
    files it must refuse (not a database, another program's, newer, cut
    short, damaged), and a disk that fails its writes (through the test
    VFS, arb_journal_faults.h). */

#include "arb_journal.h"
#include "arb_journal_faults.h"
#include "arb_journal_priv.h"  //  its limits (ARB_LOG_ROWS): when a checkpoint falls due
#include "arb_queue.h"
#include "arb_settings.h"
#include "arb_tasklog.h"
#include "journal_files.h"
#include "tmpdir.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sqlite3.h>

typedef tmpdir_fixture_t s_fixture_t;

static int
s_setup (void **state)
{
    return tmpdir_fixture (state, "journal", "sub/j.db");
}

static int
s_teardown (void **state)
{
    return tmpdir_fixture_end (state);
}

static arb_task_t *
s_task (arb_queue_t *queue, uint64_t id, int state)
{
    arb_task_t *task = (arb_task_t *) calloc (1, sizeof (arb_task_t));
    task->id = id;
    task->queue = queue;
    task->name = "job";
    task->state = (uint8_t) state;
    task->max_attempts = 3;
    task->priority = (int32_t) id;
    task->created_ms = 1000 + id;
    task->jitter = true;
    return task;
}

static void
s_task_free (arb_task_t **task_p)
{
    arb_task_free_ext (*task_p);
    free (*task_p);
    *task_p = NULL;
}

typedef struct {
    uint64_t ids[64];
    int states[64];
    int32_t priorities[64];
    char bodies[64][16];  //  load_ready: payload '/' headers
    uint32_t sizes[64];   //  payload bytes, as the row says
    bool unwatched[64];
    size_t count;
} s_seen_t;

static int
s_collect (void *arg, arb_task_t *task, const char *queue, const char *name)
{
    s_seen_t *seen = (s_seen_t *) arg;
    assert_string_equal (queue, "q");
    assert_string_equal (name, "job");
    seen->ids[seen->count] = task->id;
    seen->states[seen->count] = task->state;
    seen->sizes[seen->count] = task->payload_size;
    seen->unwatched[seen->count] = task->unwatched;
    seen->priorities[seen->count++] = task->priority;
    return 0;
}

static int
s_collect_ready (void *arg,
                 arb_task_t *task,
                 const char *queue,
                 const char *name,
                 const arb_journal_body_t *body)
{
    s_seen_t *seen = (s_seen_t *) arg;
    snprintf (seen->bodies[seen->count], sizeof (seen->bodies[0]), "%.*s/%.*s",
              (int) body->payload_size, (const char *) body->payload, (int) body->headers_size,
              (const char *) body->headers);
    return s_collect (arg, task, queue, name);
}

//  Takes a journal of this version back to version 7 (the migration to 8
//  undone), to version 6 (the migration to 7 undone too), to version 5
//  (the migration to 6 as well), and to version 4 (and the migration to
//  5), for the migration tests.
#define S_TO_VERSION_7 "ALTER TABLE tasks DROP COLUMN unwatched;"
#define S_TO_VERSION_6                                                 \
    S_TO_VERSION_7                                                     \
    "DROP INDEX tasks_order; DROP INDEX tasks_purge;"                  \
    "CREATE INDEX tasks_order ON tasks (queue, state, priority DESC);" \
    "CREATE INDEX tasks_purge ON tasks (purge_at_ms) WHERE purge_at_ms IS NOT NULL;"
static const char *s_to_version_7 = S_TO_VERSION_7 "PRAGMA user_version = 7;";
static const char *s_to_version_6 = S_TO_VERSION_6 "PRAGMA user_version = 6;";
static const char *s_to_version_5 =
    S_TO_VERSION_6 "DROP INDEX tasks_order; CREATE INDEX tasks_queue ON tasks (queue, state);"
                   "PRAGMA user_version = 5;";
static const char *s_to_version_4 =
    S_TO_VERSION_6 "DROP INDEX tasks_order; ALTER TABLE tasks DROP COLUMN delivered;"
                   "CREATE INDEX tasks_open ON tasks (state) WHERE state < 5;"
                   "PRAGMA user_version = 4;";

//  As s_collect, with each task's delivery count where its priority goes.
static int
s_collect_delivered (void *arg, arb_task_t *task, const char *queue, const char *name)
{
    task->priority = (int32_t) task->delivered;
    return s_collect (arg, task, queue, name);
}

static void
test_committed_tasks_survive_reopen (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 1; id <= 3; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        zframe_t *payload = zframe_new ("abc", 3);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    //  a fourth, never committed
    assert_int_equal (arb_journal_begin (j), 0);
    arb_task_t *t = s_task (q, 4, ARB_STATE_READY);
    arb_journal_row_t none = {0};
    assert_int_equal (arb_journal_insert (j, t, &none), 0);
    s_task_free (&t);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 3);
    //  a queue's tasks come by priority, highest first (s_task: priority = id)
    assert_int_equal (seen.ids[0], 3);
    assert_int_equal (seen.priorities[1], 2);
    zframe_t *payload, *headers;
    assert_int_equal (arb_journal_load_payload (j, 2, &payload, &headers, NULL), 0);
    assert_true (zframe_streq (payload, "abc"));
    assert_null (headers);
    zframe_destroy (&payload);
    uint64_t max;
    assert_int_equal (arb_journal_max_id (j, &max), 0);
    assert_int_equal (max, 3);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
test_final_states_and_history (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_task_t *t = s_task (q, 1, ARB_STATE_READY);
    assert_int_equal (arb_journal_begin (j), 0);
    arb_journal_row_t keyed = {.key = "key-1"};
    assert_int_equal (arb_journal_insert (j, t, &keyed), 0);
    t->attempts = 1;
    arb_task_ext_rw (t)->started_ms = 2000;
    arb_attempt_info_t attempt = {1, 2000, 2100, "w1", ARB_OUTCOME_FAIL, "boom"};
    assert_int_equal (arb_journal_add_attempt (j, 1, &attempt), 0);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SCHEDULED, 0, NULL, "boom", NULL, 0), 0);
    t->attempts = 2;
    zframe_t *result = zframe_new ("42", 2);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 3000, "w2", "", result, 99999),
                      0);
    zframe_destroy (&result);
    assert_int_equal (arb_journal_commit (j), 0);

    s_seen_t seen = {0};
    arb_journal_load_open (j, s_collect, &seen);
    assert_int_equal (seen.count, 0);

    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    assert_int_equal (arb_journal_task_info (j, 1, true, msg, &info), 0);
    assert_true (info.found);
    assert_int_equal (info.state, ARB_STATE_SUCCEEDED);
    assert_int_equal (info.attempts, 2);
    assert_string_equal (info.key, "key-1");
    assert_string_equal (info.worker, "w2");
    assert_null (info.error);  //  cleared by the success
    assert_int_equal (info.result.size, 2);
    assert_memory_equal (info.result.data, "42", 2);
    assert_int_equal (info.history.n, 1);
    assert_string_equal (info.history.v[0].error, "boom");
    assert_string_equal (info.history.v[0].worker, "w1");
    assert_int_equal (info.parents.n, 0);
    arb_task_info_t none = {0};
    assert_int_equal (arb_journal_task_info (j, 77, true, msg, &none), 0);
    assert_false (none.found);
    //  a child's parents: the task above (on failure) and one purged (77)
    arb_task_t *child = s_task (q, 2, ARB_STATE_WAITING);
    assert_int_equal (arb_journal_begin (j), 0);
    arb_journal_row_t row = {.ref = "child"};
    assert_int_equal (arb_journal_insert (j, child, &row), 0);
    assert_int_equal (arb_journal_add_dep (j, 2, 1, 1), 0);
    assert_int_equal (arb_journal_add_dep (j, 2, 77, 2), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_task_info_t kid = {0};
    assert_int_equal (arb_journal_task_info (j, 2, false, msg, &kid), 0);
    assert_int_equal (kid.parents.n, 2);
    assert_int_equal (kid.parents.v[0].id, 1);
    assert_int_equal (kid.parents.v[0].when, 1);
    assert_int_equal (kid.parents.v[1].id, 77);
    assert_int_equal (kid.parents.v[1].when, 2);
    assert_null (kid.parents.v[1].ref);
    s_task_free (&child);
    arb_done_task_t done = {0};
    bool found;
    assert_int_equal (arb_journal_done (j, 1, msg, &done, &found), 0);
    assert_true (found);
    assert_true (zframe_streq (done.result, "42"));
    zframe_destroy (&done.result);
    arb_msg_destroy (&msg);

    uint64_t id;
    int st;
    assert_int_equal (arb_journal_find_key (j, "key-1", &id, &st, NULL), 0);
    assert_int_equal (id, 1);
    assert_int_equal (st, ARB_STATE_SUCCEEDED);
    assert_int_equal (arb_journal_find_key (j, "nope", &id, &st, NULL), 0);
    assert_int_equal (id, 0);
    s_task_free (&t);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Adds attempt number `number` to task 1's history.
static void
s_add_attempt (arb_journal_t *j, uint32_t number, const char *error)
{
    arb_attempt_info_t attempt = {number, 1000 * number,    1000 * number + 10,
                                  "w",    ARB_OUTCOME_FAIL, error};
    assert_int_equal (arb_journal_add_attempt (j, 1, &attempt), 0);
}

static int
s_count_rows (const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int count = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return count;
}

//  A new task's headers and arguments, given as bins, come back as they
//  were stored, in the full statement (a keyed row) and the plain one; a
//  bin with no data stores none (SQL NULL, read back as no frame).
static void
test_row_bins_stored (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    zframe_t *payload = zframe_new ("body", 4);
    for (uint64_t id = 1; id <= 3; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {.payload = payload};
        if (id == 1) {  //  keyed, with arguments: the full statement
            row.key = "k1";
            row.headers = (arb_bin_t){(const uint8_t *) "hdr", 3};
            row.args = (arb_bin_t){(const uint8_t *) "args", 4};
        }
        else if (id == 2)  //  plain, with headers
            row.headers = (arb_bin_t){(const uint8_t *) "h2", 2};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    zframe_destroy (&payload);
    const char *want_headers[] = {"hdr", "h2", NULL};
    for (uint64_t id = 1; id <= 3; id++) {
        zframe_t *got = NULL, *headers = NULL, *args = NULL;
        assert_int_equal (arb_journal_load_payload (j, id, &got, &headers, &args), 0);
        assert_int_equal (zframe_size (got), 4);
        if (want_headers[id - 1]) {
            assert_non_null (headers);
            assert_int_equal (zframe_size (headers), strlen (want_headers[id - 1]));
            assert_memory_equal (zframe_data (headers), want_headers[id - 1],
                                 strlen (want_headers[id - 1]));
        }
        else
            assert_null (headers);
        if (id == 1) {
            assert_non_null (args);
            assert_memory_equal (zframe_data (args), "args", 4);
        }
        else
            assert_null (args);
        zframe_destroy (&got);
        zframe_destroy (&headers);
        zframe_destroy (&args);
    }
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE args IS NULL"), 2);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE headers IS NULL"),
                      1);
    arb_queue_destroy (&q);
}

//  A task's unwatched mark is written in its row (1 when set, else 0) and
//  read back by each read that makes a task of a row: the open tasks at
//  start, a queue's cold tasks in order, a task by id.
static void
test_unwatched_survives_reopen (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 1; id <= 4; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        t->unwatched = id % 2 == 1;
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT sum (id) FROM tasks WHERE unwatched = 1"),
                      1 + 3);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE unwatched = 0"),
                      2);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 4);
    for (size_t i = 0; i < seen.count; i++)
        assert_int_equal (seen.unwatched[i], seen.ids[i] % 2 == 1);
    memset (&seen, 0, sizeof (seen));
    size_t count;
    int32_t last_priority;
    uint64_t last_id;
    assert_int_equal (arb_journal_load_ready (j, "q", INT32_MAX, 0, 10, s_collect_ready, &seen,
                                              &count, &last_priority, &last_id),
                      0);
    assert_int_equal (count, 4);
    for (size_t i = 0; i < seen.count; i++)
        assert_int_equal (seen.unwatched[i], seen.ids[i] % 2 == 1);
    for (uint64_t id = 2; id <= 3; id++) {
        memset (&seen, 0, sizeof (seen));
        bool found;
        assert_int_equal (arb_journal_load_task (j, id, s_collect, &seen, &found), 0);
        assert_true (found);
        assert_int_equal (seen.unwatched[0], id == 3);
    }
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A task that fails for ever keeps its first and last attempts, the
//  count of those between, and a fixed number of rows; attempts of the
//  same number (a lost lease and the one after it) are both kept.
static void
test_history_is_bounded (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_task_t *t = s_task (q, 1, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    s_add_attempt (j, 1, "lost");
    for (uint32_t n = 1; n <= 40; n++)
        s_add_attempt (j, n, "boom");
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM attempts"),
                      ARB_HISTORY_FIRST + ARB_HISTORY_LAST);

    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    assert_int_equal (arb_journal_task_info (j, 1, true, msg, &info), 0);
    assert_int_equal (info.history.n, ARB_HISTORY_FIRST + ARB_HISTORY_LAST);
    assert_int_equal (info.history_dropped, 41 - ARB_HISTORY_FIRST - ARB_HISTORY_LAST);
    //  the first rows in the order they ended: the lost attempt 1, then 1, 2, ...
    assert_string_equal (info.history.v[0].error, "lost");
    assert_int_equal (info.history.v[0].attempt, 1);
    assert_int_equal (info.history.v[1].attempt, 1);
    assert_int_equal (info.history.v[ARB_HISTORY_FIRST - 1].attempt, ARB_HISTORY_FIRST - 1);
    //  then the last ones, the latest last
    assert_int_equal (info.history.v[ARB_HISTORY_FIRST].attempt, 40 - ARB_HISTORY_LAST + 1);
    assert_int_equal (info.history.v[info.history.n - 1].attempt, 40);
    arb_msg_destroy (&msg);
    s_task_free (&t);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
test_list_final_pages (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_begin (j);
    for (uint64_t id = 1; id <= 10; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {0};
        arb_journal_insert (j, t, &row);
        int final = id % 2 ? ARB_STATE_SUCCEEDED : ARB_STATE_DEAD;
        if (id != 10)
            arb_journal_save (j, t, final, 5000, NULL, NULL, NULL, 1);
        s_task_free (&t);
    }
    arb_journal_commit (j);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_LIST_REPLY, 0);
    arb_list_reply_body_t *list = arb_msg_list_reply (msg);
    arb_list_body_t filter = {.queue = "q"};
    assert_int_equal (arb_journal_list_final (j, &filter, 4, msg, list), 0);
    assert_int_equal (list->tasks.n, 4);
    assert_true (list->more);
    assert_int_equal (list->tasks.v[3].id, 4);
    arb_msg_destroy (&msg);
    msg = arb_msg_new (ARB_MSG_LIST_REPLY, 0);
    list = arb_msg_list_reply (msg);
    filter = (arb_list_body_t){.state = ARB_STATE_DEAD, .after_id = 4};
    assert_int_equal (arb_journal_list_final (j, &filter, 100, msg, list), 0);
    assert_int_equal (list->tasks.n, 2);  //  6 and 8 (10 is not final)
    assert_false (list->more);
    assert_int_equal (list->tasks.v[0].id, 6);
    arb_msg_destroy (&msg);
    //  newest first, below a bound
    msg = arb_msg_new (ARB_MSG_LIST_REPLY, 0);
    list = arb_msg_list_reply (msg);
    filter = (arb_list_body_t){.newest = true, .before_id = 9};
    assert_int_equal (arb_journal_list_final (j, &filter, 3, msg, list), 0);
    assert_int_equal (list->tasks.n, 3);  //  8, 7, 6
    assert_true (list->more);
    assert_int_equal (list->tasks.v[0].id, 8);
    assert_int_equal (list->tasks.v[2].id, 6);
    arb_msg_destroy (&msg);
    zlistx_t *dead = arb_journal_dead_ids (j, "q");
    assert_int_equal (zlistx_size (dead), 4);
    zlistx_destroy (&dead);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
s_meta_count (void *arg, const char *key, const void *data, size_t size)
{
    (void) key;
    (void) data;
    (void) size;
    (*(int *) arg)++;
}

static void
test_meta_and_epoch (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    uint64_t epoch;
    assert_int_equal (arb_journal_next_epoch (j, &epoch), 0);
    assert_int_equal (epoch, 1);
    arb_journal_begin (j);
    arb_journal_meta_set (j, "queue.a", "x", 1);
    arb_journal_meta_set (j, "queue.b", "yy", 2);
    arb_journal_meta_set (j, "other", "z", 1);
    arb_journal_meta_del (j, "queue.a");
    arb_journal_commit (j);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_next_epoch (j, &epoch), 0);
    assert_int_equal (epoch, 2);
    zchunk_t *value;
    assert_int_equal (arb_journal_meta_get (j, "queue.b", &value), 0);
    assert_int_equal (zchunk_size (value), 2);
    zchunk_destroy (&value);
    assert_int_equal (arb_journal_meta_get (j, "queue.a", &value), 0);
    assert_null (value);
    int count = 0;
    assert_int_equal (arb_journal_meta_list (j, "queue.", s_meta_count, &count), 0);
    assert_int_equal (count, 1);
    arb_journal_destroy (&j);
}

static void
test_second_broker_is_refused (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *first = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (first);
    arb_journal_t *second = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_null (second);
    arb_journal_destroy (&first);
    second = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (second);
    arb_journal_destroy (&second);
}

//  ---------------------------------------------------------------------
//  Files the journal refuses

//  The log, caught while a call runs (s_log_start ... s_log_end).
typedef struct {
    char *text;
    size_t size;
    FILE *stream;
} s_log_t;

static void
s_log_start (s_log_t *log)
{
    memset (log, 0, sizeof (*log));
    log->stream = open_memstream (&log->text, &log->size);
    zsys_set_logstream (log->stream);
}

//  The text logged since s_log_start (caller frees).
static char *
s_log_end (s_log_t *log)
{
    zsys_set_logstream (stderr);
    fclose (log->stream);
    fputs (log->text, stderr);
    return log->text;
}

//  A whole file's bytes (caller frees), and its size.
static char *
s_file (const char *path, size_t *size)
{
    FILE *f = fopen (path, "rb");
    assert_non_null (f);
    fseek (f, 0, SEEK_END);
    *size = (size_t) ftell (f);
    rewind (f);
    char *data = (char *) malloc (*size + 1);
    assert_int_equal (fread (data, 1, *size, f), *size);
    fclose (f);
    return data;
}

//  Opening path is refused with a message that names it and says why
//  (said), and leaves the file as it was.
static void
s_refused (const char *path, const char *said)
{
    size_t before_size, after_size;
    char *before = s_file (path, &before_size);
    s_log_t log;
    s_log_start (&log);
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_NORMAL);
    char *text = s_log_end (&log);
    assert_null (j);
    assert_non_null (strstr (text, path));
    assert_non_null (strstr (text, said));
    free (text);
    char *after = s_file (path, &after_size);
    assert_int_equal (after_size, before_size);
    assert_memory_equal (after, before, before_size);
    free (before);
    free (after);
}

//  An SQLite database at path made by sql.
static void
s_sqlite_file (const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
}

static void
test_newer_schema_is_refused (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_destroy (&j);
    s_sqlite_file (fx->path, "PRAGMA user_version = 99");
    s_refused (fx->path, "schema version 99, newer than this arbiterd's");
}

//  Files that are not arbiter journals are refused whole, named, and
//  never changed: random bytes, a text file, other programs' SQLite
//  databases (tables without a version; a version without the journal's
//  tables; another application id). An empty file is a new journal.
static void
test_foreign_files_are_refused (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char path[128];
    snprintf (path, sizeof (path), "%s/random.db", fx->dir);
    FILE *f = fopen (path, "wb");
    for (int i = 0; i < 8192; i++)
        fputc ((i * 7919 + 13) % 251, f);
    fclose (f);
    s_refused (path, "is not an SQLite database");

    snprintf (path, sizeof (path), "%s/notes.txt", fx->dir);
    f = fopen (path, "wb");
    fputs ("remember the milk\n", f);
    fclose (f);
    s_refused (path, "is not an SQLite database");

    snprintf (path, sizeof (path), "%s/app.db", fx->dir);
    s_sqlite_file (path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                         "INSERT INTO users (name) VALUES ('ada');");
    s_refused (path, "another program's SQLite database");

    snprintf (path, sizeof (path), "%s/versioned.db", fx->dir);
    s_sqlite_file (path, "CREATE TABLE tasks (x); PRAGMA user_version = 3;");
    s_refused (path, "not the tables of an arbiter journal");

    snprintf (path, sizeof (path), "%s/other-id.db", fx->dir);
    s_sqlite_file (path, "PRAGMA application_id = 305419896;");
    s_refused (path, "application id 0x12345678");

    snprintf (path, sizeof (path), "%s/empty.db", fx->dir);
    f = fopen (path, "wb");
    fclose (f);
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_journal_destroy (&j);
    //  a journal made now says whose it is
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA application_id", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 0x41524254);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
}

//  Stores count tasks of queue "q" (committed), each with a payload of
//  size bytes.
static void
s_fill (arb_journal_t *j, arb_queue_t *queue, uint64_t first, int count, size_t size)
{
    char *payload = (char *) calloc (1, size);
    assert_int_equal (arb_journal_begin (j), 0);
    for (int i = 0; i < count; i++) {
        arb_task_t *t = s_task (queue, first + (uint64_t) i, ARB_STATE_READY);
        zframe_t *frame = zframe_new (payload, size);
        arb_journal_row_t row = {.payload = frame};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&frame);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    free (payload);
}

//  With --sync full the journal's commits leave the WAL's copy into the
//  file to its thread (arb_backfill.h), and what they committed is all
//  there after a reopen; with --sync normal SQLite's commits copy it.
static void
test_the_wal_is_copied_on_a_thread (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    arb_journal_set_log (j, false);
    //  about 2,400 pages, in twelve commits
    for (int turn = 0; turn < 12; turn++)
        s_fill (j, q, 1 + (uint64_t) turn * 100, 100, 8000);
    for (int i = 0; i < 1000 && arb_journal_backfills (j) == 0; i++)
        zclock_sleep (10);
    assert_true (arb_journal_backfills (j) >= 1);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 1200);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_journal_set_log (j, false);
    for (int turn = 12; turn < 24; turn++)
        s_fill (j, q, 1 + (uint64_t) turn * 100, 100, 8000);
    assert_int_equal (arb_journal_backfills (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2400);
    arb_queue_destroy (&q);
}

//  A journal cut short (its header counts more pages than it holds, and
//  no WAL could fill them) is refused; a damaged page is found when it is
//  read, and said so, naming the file.
static void
test_short_and_damaged_journals (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    s_fill (j, queue, 1, 50, 3000);
    arb_journal_destroy (&j);  //  a clean close: checkpointed, no WAL left
    char wal[128];
    snprintf (wal, sizeof (wal), "%s-wal", fx->path);
    assert_int_not_equal (access (wal, F_OK), 0);
    size_t size;
    free (s_file (fx->path, &size));
    char saved[128];
    snprintf (saved, sizeof (saved), "%s.whole", fx->path);
    char cmd[512];
    snprintf (cmd, sizeof (cmd), "cp %s %s", fx->path, saved);
    assert_int_equal (system (cmd), 0);
    assert_int_equal (truncate (fx->path, (off_t) size / 2), 0);
    s_refused (fx->path, "is cut short");

    //  whole again, but for pages past the schema's, overwritten
    snprintf (cmd, sizeof (cmd), "cp %s %s", saved, fx->path);
    assert_int_equal (system (cmd), 0);
    FILE *f = fopen (fx->path, "r+b");
    fseek (f, 4096, SEEK_SET);
    for (size_t i = 4096; i < size; i++)
        fputc (0xa5, f);
    fclose (f);
    s_log_t log;
    s_log_start (&log);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    int rc = j ? arb_journal_load_open (j, s_collect, &(s_seen_t){0}) : -1;
    char *text = s_log_end (&log);
    assert_int_equal (rc, -1);
    assert_non_null (strstr (text, fx->path));
    assert_non_null (strstr (text, "damaged"));
    if (j)
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    free (text);
    arb_journal_destroy (&j);
    arb_queue_destroy (&queue);
}

//  ---------------------------------------------------------------------
//  A disk that fails writes

static void
s_disk (const char *mode)
{
    FILE *f = fopen (getenv (ARB_JOURNAL_FAULTS_ENV), "w");
    assert_non_null (f);
    fputs (mode, f);
    fclose (f);
}

//  Whether task id is in the journal.
static bool
s_has_task (arb_journal_t *j, uint64_t id)
{
    s_seen_t seen = {0};
    bool found = false;
    assert_int_equal (arb_journal_load_task (j, id, s_collect, &seen, &found), 0);
    return found;
}

//  A commit the disk refuses leaves nothing of its transaction; the
//  failure is the disk's (full, or an I/O error writing or syncing), and
//  no write is taken after it until a rollback; a probe says when the disk
//  takes writes again and leaves nothing behind.
static void
test_disk_faults (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_fill (j, queue, 1, 1, 10);
    const char *modes[] = {"full", "ioerr", "fsync"};
    for (size_t m = 0; m < 3; m++) {
        uint64_t id = 10 + m;
        s_disk (modes[m]);
        assert_int_equal (arb_journal_begin (j), 0);
        arb_task_t *t = s_task (queue, id, ARB_STATE_READY);
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);  //  in the cache yet
        assert_int_equal (arb_journal_commit (j), -1);
        assert_false (arb_journal_in_txn (j));
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        //  nothing is written after the failure, not even a new transaction
        assert_int_equal (arb_journal_begin (j), -1);
        assert_int_equal (arb_journal_rollback (j), 0);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
        assert_false (s_has_task (j, id));
        assert_true (s_has_task (j, 1));
        //  the disk still fails: so does the probe, leaving nothing
        assert_int_equal (arb_journal_probe (j), -1);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        assert_false (arb_journal_in_txn (j));
        s_disk ("");
        assert_int_equal (arb_journal_probe (j), 0);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
        zchunk_t *probe = NULL;
        assert_int_equal (arb_journal_meta_get (j, "broker.probe", &probe), 0);
        assert_null (probe);
        //  and the journal takes the same write now
        assert_int_equal (arb_journal_begin (j), 0);
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        assert_int_equal (arb_journal_commit (j), 0);
        assert_true (s_has_task (j, id));
        s_task_free (&t);
    }
    //  the epoch a start could not write is written later
    uint64_t epoch = 0;
    assert_int_equal (arb_journal_epoch (j, &epoch), 0);
    assert_int_equal (arb_journal_set_epoch (j, epoch + 5), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    uint64_t stored = 0;
    assert_int_equal (arb_journal_epoch (j, &stored), 0);
    assert_int_equal (stored, epoch + 5);
    arb_journal_destroy (&j);
    arb_queue_destroy (&queue);
}

//  A write that fails within the transaction, before its commit (a big
//  one spills the page cache into the WAL), fails the transaction whole.
static void
test_disk_fault_within_a_transaction (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    s_disk ("full");
    assert_int_equal (arb_journal_begin (j), 0);
    int rc = 0;
    char *payload = (char *) calloc (1, 1 << 20);
    //  MiB rows, past the page cache (ARB_JOURNAL_CACHE_KB)
    const uint64_t rows = ARB_JOURNAL_CACHE_KB / 1024 + 8;
    for (uint64_t id = 1; id <= rows && rc == 0; id++) {
        arb_task_t *t = s_task (queue, id, ARB_STATE_READY);
        zframe_t *frame = zframe_new (payload, 1 << 20);
        arb_journal_row_t row = {.payload = frame};
        rc = arb_journal_insert (j, t, &row);
        zframe_destroy (&frame);
        s_task_free (&t);
    }
    free (payload);
    assert_int_equal (rc, -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    s_disk ("");
    for (uint64_t id = 1; id <= rows; id++)
        assert_false (s_has_task (j, id));
    arb_journal_destroy (&j);
    arb_queue_destroy (&queue);
}

#define S_MODEL_TURNS 2000
#define S_MODEL_ROWS  4096

//  Puts the committed rows a failed turn removed back among the rows.
static void
s_rows_back (uint64_t *rows, size_t *count, const uint64_t *removed, size_t n)
{
    for (size_t i = 0; i < n && *count < S_MODEL_ROWS; i++)
        rows[(*count)++] = removed[i];
}

//  A model of how the broker gives out ids, over the journal: turns that
//  insert tasks and remove some (new ones at their end, as with
//  --retention 0, or older ones, as the sweep does); most turns commit,
//  some fail at the commit (the disk full: rolled back, and the next id
//  read back from the same journal, as the broker's fall back does), some
//  end in a kill -9 (closed without a commit, opened again). Whenever the
//  next id is read back it is at least the largest id a committed turn
//  gave out, removed or not: no id is given out twice, whatever the floor
//  written ahead leaves unwritten.
static void
test_no_id_is_given_twice (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    uint64_t next = 0, given = 0;  //  the last id given out; the largest a commit kept
    assert_int_equal (arb_journal_max_id (j, &next), 0);
    uint64_t *rows = (uint64_t *) calloc (S_MODEL_ROWS, sizeof (uint64_t));
    size_t count = 0;  //  committed rows
    int failed = 0, killed = 0;
    srand (20261202);
    for (int turn = 0; turn < S_MODEL_TURNS; turn++) {
        uint64_t added[4], removed[4], newest = 0;
        size_t adds = 0, removes = 0;
        assert_int_equal (arb_journal_begin (j), 0);
        for (int k = rand () % 5; k > 0; k--) {
            arb_task_t *t = s_task (q, ++next, ARB_STATE_READY);
            arb_journal_row_t row = {0};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            s_task_free (&t);
            added[adds++] = newest = next;
        }
        for (int k = rand () % 4; k > 0; k--) {
            uint64_t id;
            if (adds && rand () % 2) {
                size_t at = (size_t) rand () % adds;
                id = added[at];
                added[at] = added[--adds];
            }
            else if (count) {
                size_t at = (size_t) rand () % count;
                id = rows[at];
                rows[at] = rows[--count];
                removed[removes++] = id;
            }
            else
                continue;
            if (rand () % 2)
                assert_int_equal (arb_journal_drop (j, id, next), 0);
            else
                assert_int_equal (arb_journal_remove (j, &id, 1, next), 0);
        }
        int fate = rand () % 20;
        if (fate < 2) {
            bool lost = true;
            if (fate == 0) {  //  the disk fails the commit
                s_disk ("full");
                lost = arb_journal_commit (j) != 0;
                s_disk ("");
                if (lost)
                    assert_int_equal (arb_journal_rollback (j), 0);
                failed += lost;
            }
            else {  //  kill -9: the open transaction goes with the process
                arb_journal_destroy (&j);
                j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
                assert_non_null (j);
                killed++;
            }
            if (lost) {
                s_rows_back (rows, &count, removed, removes);
                assert_int_equal (arb_journal_max_id (j, &next), 0);
                if (next < given)
                    fail_msg ("turn %d: ids go on after %" PRIu64 ", and %" PRIu64
                              " was given out already",
                              turn, next, given);
                continue;
            }
        }
        else
            assert_int_equal (arb_journal_commit (j), 0);
        if (newest > given)
            given = newest;
        for (size_t i = 0; i < adds && count < S_MODEL_ROWS; i++)
            rows[count++] = added[i];
    }
    //  the model went where it means to: past the floor more than once,
    //  through failed commits and kills
    assert_true (given > 2 * ARB_ID_FLOOR_AHEAD);
    assert_true (failed > 10 && killed > 10);
    free (rows);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Stores a task of queue q in state (a final one purged after purge_at).
static void
s_store (arb_journal_t *j, arb_queue_t *q, uint64_t id, int state, uint64_t purge_at)
{
    arb_task_t *t = s_task (q, id, state < ARB_STATE_SUCCEEDED ? state : ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    if (state >= ARB_STATE_SUCCEEDED)
        assert_int_equal (arb_journal_save (j, t, state, 500, NULL, NULL, NULL, purge_at), 0);
    s_task_free (&t);
}

static int
s_state_of (arb_journal_t *j, uint64_t id)
{
    int state;
    assert_int_equal (arb_journal_state (j, id, &state, NULL, 0), 0);
    return state;
}

static bool
s_count_purged (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    (void) id;
    (void) queue;
    (void) state;
    (void) has_children;
    (*(int *) arg)++;
    return false;
}

//  Keeps the parents (as the broker does while their children have not
//  ended), counting the others.
static bool
s_keep_parents (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    s_count_purged (arg, id, queue, state, has_children);
    return has_children;
}

//  Rows of history and edges left in the journal (they must go with their
//  task).
static int
s_rows_left (const char *path)
{
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2 (db, "SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM deps)",
                        -1, &stmt, NULL);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int left = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return left;
}

//  The retention sweep looks for history and edges only where a task's
//  row says there may be some, and leaves none behind: a task that
//  succeeded at its one handout has none; one handed out again, or that
//  lost a lease, or ended otherwise, may; one with parents has edges.
static void
test_purge_takes_history_and_edges (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_begin (j);
    arb_attempt_info_t failed = {1, 100, 200, "w", ARB_OUTCOME_FAIL, "boom"};
    for (uint64_t id = 1; id <= 5; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        t->attempts = 1;
        t->delivered = 1;
        if (id == 2)  //  failed once, then succeeded: handed out twice
            t->attempts = t->delivered = 2;
        if (id == 4)  //  waits for 1
            arb_task_ext_rw (t)->parents = 1;
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        if (id == 2 || id == 3)
            assert_int_equal (arb_journal_add_attempt (j, id, &failed), 0);
        if (id == 4)
            assert_int_equal (arb_journal_add_dep (j, 4, 1, 0), 0);
        int final = id == 3 ? ARB_STATE_DEAD : ARB_STATE_SUCCEEDED;
        assert_int_equal (arb_journal_save (j, t, final, 500, NULL, NULL, NULL, 1000 + id), 0);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_rows_left (fx->path), 3);
    int purged = 0;
    assert_int_equal (arb_journal_purge (j, 1004, 100, 9, 0, s_count_purged, &purged), 4);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_rows_left (fx->path), 0);
    assert_int_equal (s_state_of (j, 5), ARB_STATE_SUCCEEDED);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A task the sweep's callback keeps stays, due again only at the time
//  given; the others go.
static void
test_purge_keeps_what_it_is_told (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_begin (j);
    for (uint64_t id = 1; id <= 3; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        t->attempts = t->delivered = 1;
        t->has_children = id == 2;
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 500, NULL, NULL, NULL, 1000),
                          0);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    int seen = 0;
    assert_int_equal (arb_journal_purge (j, 1000, 100, 9, 5000, s_keep_parents, &seen), 2);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (seen, 3);
    assert_int_equal (s_state_of (j, 1), 0);
    assert_int_equal (s_state_of (j, 2), ARB_STATE_SUCCEEDED);
    assert_int_equal (s_state_of (j, 3), 0);
    assert_int_equal (arb_journal_purge (j, 4999, 100, 9, 9000, s_keep_parents, &seen), 0);
    assert_int_equal (seen, 3);
    assert_int_equal (arb_journal_purge (j, 5000, 100, 9, 0, s_count_purged, &seen), 1);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_state_of (j, 2), 0);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A plain task (no workflow, key, arguments, timeouts or backoff) is
//  written by a shorter INSERT that leaves the other columns to their
//  defaults: its row is the one the full INSERT writes. Task 1 is plain
//  and small (held for the turn's batch, arb_journal_batch.c), task 2 is
//  task 1 with a key (ckey), which takes the full INSERT, and task 3 is
//  task 1 with a payload too big to be held (written at once by
//  insert_plain); the rows are the same but for id, ckey and task 3's
//  payload.
#define S_BIG_ROW (1 << 20)  //  a payload over what a batch holds (64 KiB a row)

static void
test_a_plain_row_is_a_full_one (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    char *big = (char *) calloc (1, S_BIG_ROW);
    zframe_t *payload = zframe_new ("body", 4);
    arb_bin_t headers = {(const uint8_t *) "h", 1};
    zframe_t *big_payload = zframe_new (big, S_BIG_ROW);
    free (big);
    for (uint64_t id = 1; id <= 3; id++) {
        arb_task_t *t = s_task (q, 1, ARB_STATE_READY);
        t->id = id;
        t->unwatched = true;
        arb_journal_row_t row = {.payload = id == 3 ? big_payload : payload, .headers = headers};
        if (id == 2)
            row.key = "k";
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    zframe_destroy (&payload);
    zframe_destroy (&big_payload);
    arb_journal_destroy (&j);

    sqlite3 *db;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT * FROM tasks ORDER BY id", -1, &stmt, NULL),
                      SQLITE_OK);
    int columns = sqlite3_column_count (stmt);
    assert_true (columns <= 64);
    sqlite3_value *rows[3][64];
    for (int r = 0; r < 3; r++) {
        assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
        for (int c = 0; c < columns; c++)
            rows[r][c] = sqlite3_value_dup (sqlite3_column_value (stmt, c));
    }
    assert_int_equal (sqlite3_step (stmt), SQLITE_DONE);
    for (int r = 0; r < 3; r += 2)
        for (int c = 0; c < columns; c++) {
            const char *name = sqlite3_column_name (stmt, c);
            if (!strcmp (name, "id") || !strcmp (name, "ckey")
                || (r == 2 && !strcmp (name, "payload")))
                continue;
            sqlite3_value *full = rows[1][c], *plain = rows[r][c];
            int type = sqlite3_value_type (full);
            if (type != sqlite3_value_type (plain))
                fail_msg ("column %s: type %d in plain row %d, %d in the full one", name,
                          sqlite3_value_type (plain), r + 1, type);
            int size = sqlite3_value_bytes (full);
            assert_int_equal (sqlite3_value_bytes (plain), size);
            if (type == SQLITE_INTEGER)
                assert_int_equal (sqlite3_value_int64 (plain), sqlite3_value_int64 (full));
            else if (type == SQLITE_BLOB || type == SQLITE_TEXT)
                assert_memory_equal (sqlite3_value_blob (plain), sqlite3_value_blob (full),
                                     (size_t) size);
        }
    for (int c = 0; c < columns; c++)
        if (!strcmp (sqlite3_column_name (stmt, c), "payload"))
            assert_int_equal (sqlite3_value_bytes (rows[2][c]), S_BIG_ROW);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < columns; c++)
            sqlite3_value_free (rows[r][c]);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    arb_queue_destroy (&q);
}

//  A turn's plain rows and drops are held and written a batch to a
//  statement (arb_journal_batch.c): a read in the turn sees them, a drop
//  of a row held takes it, rows past a batch's size and the odd counts
//  between sizes are all written, each with its own bytes, and a rollback
//  leaves none of them.
static void
test_a_turn_writes_in_batches (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 1; id <= 78; id++) {
        if (id == 41) {  //  7's floor write wrote what was held: 38 is a row by then
            assert_int_equal (arb_journal_drop (j, 7, 100), 0);
            assert_int_equal (arb_journal_drop (j, 38, 100), 0);
        }
        if (id == 78) {  //  77 just inserted: held
            assert_int_equal (arb_journal_drop (j, 77, 100), 0);
            assert_true (s_has_task (j, 76));  //  a read writes what is held first, rows first
            assert_false (s_has_task (j, 77));
            assert_false (s_has_task (j, 38));
        }
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        char body[16], head[16];
        snprintf (body, sizeof (body), "p%" PRIu64, id);
        snprintf (head, sizeof (head), "h%" PRIu64, id);
        zframe_t *payload = zframe_new (body, strlen (body));
        arb_bin_t headers = {id % 2 ? (const uint8_t *) head : NULL, id % 2 ? strlen (head) : 0};
        arb_journal_row_t row = {.payload = payload, .headers = headers};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);  //  the journal kept its own copy
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    //  rolled back: neither the rows held nor the drop
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 100; id < 103; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        zframe_t *payload = zframe_new ("x", 1);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_drop (j, 1, 100), 0);
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    for (uint64_t id = 1; id <= 102; id++) {
        bool gone = id == 7 || id == 38 || id == 77 || id > 78;
        assert_int_equal (s_has_task (j, id), !gone);
        if (gone)
            continue;
        zframe_t *payload = NULL, *headers = NULL;
        assert_int_equal (arb_journal_load_payload (j, id, &payload, &headers, NULL), 0);
        char body[16], head[16];
        snprintf (body, sizeof (body), "p%" PRIu64, id);
        snprintf (head, sizeof (head), "h%" PRIu64, id);
        assert_non_null (payload);
        assert_true (zframe_streq (payload, body));
        if (id % 2)
            assert_true (headers && zframe_streq (headers, head));
        else
            assert_null (headers);
        zframe_destroy (&payload);
        zframe_destroy (&headers);
    }
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A row held fails with the turn: the disk that refuses the batch's
//  write fails the commit, as the disk's failure, and leaves nothing.
static void
test_a_batch_the_disk_refuses (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    s_fill (j, q, 1, 1, 10);
    s_disk ("full");
    assert_int_equal (arb_journal_begin (j), 0);
    zframe_t *payload = zframe_new ("x", 1);
    for (uint64_t id = 10; id < 15; id++) {
        arb_task_t *t = s_task (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);  //  held
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_drop (j, 1, 100), 0);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
    assert_int_equal (arb_journal_rollback (j), 0);
    s_disk ("");
    for (uint64_t id = 10; id < 15; id++)
        assert_false (s_has_task (j, id));
    assert_true (s_has_task (j, 1));
    zframe_destroy (&payload);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
s_held (arb_journal_t *j, arb_queue_t *q, uint64_t id, size_t size, char fill)
{
    arb_task_t *t = s_task (q, id, ARB_STATE_READY);
    char *body = (char *) malloc (size);
    memset (body, fill, size);
    zframe_t *payload = zframe_new (body, size);
    free (body);
    arb_journal_row_t row = {.payload = payload};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    zframe_destroy (&payload);
    s_task_free (&t);
}

//  A batch statement that fails (here a held row whose id is taken: a
//  failure every run meets, where the disk's may wait for the commit)
//  fails the turn wherever it is written: at the commit, at a read, at
//  the row that fills the batch; nothing is taken after it until the
//  rollback, which leaves none of it, and the journal goes on. The rows
//  held after that are big enough for their bytes to grow by realloc.
static void
test_a_batch_statement_that_fails (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 5, 3, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    //  at commit
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 6, 3, 'b');
    s_held (j, q, 5, 3, 'c');  //  held: no failure yet
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    assert_false (arb_journal_in_txn (j));
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_false (s_has_task (j, 6));
    //  at a read
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 6, 3, 'b');
    s_held (j, q, 5, 3, 'c');
    bool found = true;
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_task (j, 6, s_collect, &seen, &found), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    arb_task_t *t = s_task (q, 7, ARB_STATE_READY);
    zframe_t *p = zframe_new ("x", 1);
    arb_journal_row_t row = {.payload = p};
    assert_int_equal (arb_journal_insert (j, t, &row), -1);  //  nothing after a fault
    assert_int_equal (arb_journal_drop (j, 5, 100), -1);
    zframe_destroy (&p);
    s_task_free (&t);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    //  at the 33rd row
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 5, 3, 'c');
    for (uint64_t id = 10; id < 41; id++)
        s_held (j, q, id, 3, 'd');
    t = s_task (q, 41, ARB_STATE_READY);
    p = zframe_new ("x", 1);
    row.payload = p;
    assert_int_equal (arb_journal_insert (j, t, &row), -1);
    zframe_destroy (&p);
    s_task_free (&t);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    //  and the journal goes on
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 10; id < 60; id++)
        s_held (j, q, id, 9000, (char) ('A' + id % 26));  //  the bytes grow by realloc
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    for (uint64_t id = 10; id < 60; id++) {
        zframe_t *payload = NULL, *headers = NULL;
        assert_int_equal (arb_journal_load_payload (j, id, &payload, &headers, NULL), 0);
        assert_int_equal (zframe_size (payload), 9000);
        for (size_t i = 0; i < 9000; i++)
            assert_int_equal (zframe_data (payload)[i], 'A' + id % 26);
        zframe_destroy (&payload);
        zframe_destroy (&headers);
    }
    zframe_t *payload = NULL, *headers = NULL;
    assert_int_equal (arb_journal_load_payload (j, 5, &payload, &headers, NULL), 0);
    assert_true (zframe_streq (payload, "aaa"));
    zframe_destroy (&payload);
    zframe_destroy (&headers);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}


//  Every other write writes what is held first: an UPDATE of a row held
//  in the same turn finds it.
static void
test_a_write_after_a_held_row_finds_it (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 1, 3, 'a');
    arb_task_t *t = s_task (q, 1, ARB_STATE_READY);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 3000, "w", "", NULL, 9999), 0);
    s_task_free (&t);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    s_seen_t seen = {0};
    bool found = false;
    assert_int_equal (arb_journal_load_task (j, 1, s_collect, &seen, &found), 0);
    assert_true (found);
    assert_int_equal (seen.states[0], ARB_STATE_SUCCEEDED);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A full list of drops is written after the rows held: the drops of
//  rows still held take them.
static void
test_a_full_list_of_drops (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 500, 600), 0);  //  the floor, written now
    for (uint64_t id = 1; id <= 10; id++)
        s_held (j, q, id, 3, 'a');
    for (uint64_t id = 1; id <= 31; id++)  //  32 drops held, ten of them of rows held
        assert_int_equal (arb_journal_drop (j, id, 600), 0);
    s_held (j, q, 41, 3, 'b');
    assert_int_equal (arb_journal_drop (j, 42, 600), 0);  //  the 33rd: the batch is written
    assert_int_equal (arb_journal_commit (j), 0);
    for (uint64_t id = 1; id <= 10; id++)
        assert_false (s_has_task (j, id));
    assert_true (s_has_task (j, 41));
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Inserts a task of that id and commits it.
static void
s_insert_committed (arb_journal_t *j, arb_queue_t *q, uint64_t id)
{
    arb_task_t *t = s_task (q, id, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    s_task_free (&t);
}

static uint64_t
s_id_floor (arb_journal_t *j)
{
    uint64_t floor = 0;
    assert_int_equal (arb_journal_meta_number (j, "broker.id_floor", &floor), 0);
    return floor;
}

//  The id floor is written ahead of the ids given out: tasks that leave
//  one by one, each in its own commit, write it again only once the ids
//  pass it; and a reopened journal never gives out an id twice.
static void
test_the_id_floor_is_written_ahead (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    for (uint64_t id = 1; id <= 3; id++)
        s_insert_committed (j, q, id);
    assert_int_equal (arb_journal_drop (j, 3, 3), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_id_floor (j), 3 + ARB_ID_FLOOR_AHEAD);
    //  later tasks below the floor leave without writing it
    for (uint64_t id = 4; id <= 50; id++) {
        s_insert_committed (j, q, id);
        assert_int_equal (arb_journal_drop (j, id, id), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
    uint64_t removed[] = {1, 2};
    assert_int_equal (arb_journal_remove (j, removed, 2, 50), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_id_floor (j), 3 + ARB_ID_FLOOR_AHEAD);
    //  one beyond it moves it on
    uint64_t beyond = 4 + ARB_ID_FLOOR_AHEAD;
    s_insert_committed (j, q, beyond);
    assert_int_equal (arb_journal_drop (j, beyond, beyond), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_id_floor (j), beyond + ARB_ID_FLOOR_AHEAD);
    //  a floor in a transaction rolled back was not written
    s_insert_committed (j, q, 2 * beyond + ARB_ID_FLOOR_AHEAD);
    assert_int_equal (arb_journal_drop (j, 2 * beyond + ARB_ID_FLOOR_AHEAD, 2 * beyond), 0);
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_int_equal (s_id_floor (j), beyond + ARB_ID_FLOOR_AHEAD);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    uint64_t max = 0;
    assert_int_equal (arb_journal_max_id (j, &max), 0);
    assert_int_equal (max, 2 * beyond + ARB_ID_FLOOR_AHEAD);  //  the row rolled back stays
    //  this process has written no floor yet: its first removal writes one
    assert_int_equal (arb_journal_drop (j, max, max), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_id_floor (j), max + ARB_ID_FLOOR_AHEAD);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A queue's unfinished tasks are cancelled in one statement, but those
//  to keep (running); deleting a queue removes every row it had.
static void
test_queue_in_bulk (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_queue_t *r = arb_queue_new ("r", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_begin (j);
    for (uint64_t id = 1; id <= 4; id++)
        s_store (j, q, id, ARB_STATE_READY, 0);
    //  task 5 has a retention of its own
    arb_task_t *t = s_task (q, 5, ARB_STATE_READY);
    arb_task_ext_rw (t)->retention_ms = 100;
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    s_task_free (&t);
    s_store (j, q, 6, ARB_STATE_SCHEDULED, 0);
    //  task 7 waits for 9 (its row counts the parent, as the broker's do)
    t = s_task (q, 7, ARB_STATE_WAITING);
    arb_task_ext_rw (t)->parents = 1;
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    s_task_free (&t);
    s_store (j, q, 8, ARB_STATE_SUCCEEDED, 99999);
    s_store (j, r, 9, ARB_STATE_READY, 0);
    arb_attempt_info_t attempt = {1, 100, 200, "w", ARB_OUTCOME_FAIL, "boom"};
    assert_int_equal (arb_journal_add_attempt (j, 8, &attempt), 0);
    assert_int_equal (arb_journal_add_dep (j, 7, 9, 0), 0);
    arb_journal_commit (j);

    uint64_t keep[] = {2}, changed;
    assert_int_equal (
        arb_journal_cancel_open (j, "q", keep, 1, 10000, "purged", 500, NULL, NULL, &changed), 0);
    assert_int_equal (changed, 6);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_state_of (j, 1), ARB_STATE_CANCELLED);
    assert_int_equal (s_state_of (j, 2), ARB_STATE_READY);
    assert_int_equal (s_state_of (j, 7), ARB_STATE_CANCELLED);
    assert_int_equal (s_state_of (j, 8), ARB_STATE_SUCCEEDED);
    assert_int_equal (s_state_of (j, 9), ARB_STATE_READY);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    assert_int_equal (arb_journal_task_info (j, 6, false, msg, &info), 0);
    assert_string_equal (info.error, "purged");
    assert_int_equal (info.finished_ms, 10000);
    arb_msg_destroy (&msg);
    //  each goes after its retention: the task's own, else the one given
    int purged = 0;
    assert_int_equal (arb_journal_purge (j, 10100, 100, 9, 0, s_count_purged, &purged), 1);
    assert_int_equal (s_state_of (j, 5), 0);
    assert_int_equal (arb_journal_purge (j, 10499, 100, 9, 0, s_count_purged, &purged), 0);
    assert_int_equal (arb_journal_purge (j, 10500, 100, 9, 0, s_count_purged, &purged), 5);
    arb_journal_commit (j);
    //  no keep list: every unfinished one
    assert_int_equal (
        arb_journal_cancel_open (j, "q", NULL, 0, 20000, "x", 500, NULL, NULL, &changed), 0);
    assert_int_equal (changed, 1);
    arb_journal_commit (j);

    //  deleting the queue leaves nothing of it, nor of its history
    assert_int_equal (arb_journal_forget_queue (j, "q", 77), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    for (uint64_t id = 1; id <= 8; id++)
        assert_int_equal (s_state_of (j, id), 0);
    assert_int_equal (s_state_of (j, 9), ARB_STATE_READY);
    //  the sweep above wrote a floor beyond 77 (ahead of its 9): it holds
    uint64_t max;
    assert_int_equal (arb_journal_max_id (j, &max), 0);
    assert_int_equal (max, 9 + ARB_ID_FLOOR_AHEAD);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2 (db, "SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM deps)",
                        -1, &stmt, NULL);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
    arb_queue_destroy (&r);
}

typedef struct {
    char keys[16][32];
    size_t count;
    size_t refuse_at;  //  refuse the key at this count (a full reply); 0 never
} s_page_t;

static int
s_take_key (void *arg, const char *key, const void *data, size_t size)
{
    (void) data;
    (void) size;
    s_page_t *page = (s_page_t *) arg;
    if (page->refuse_at && page->count == page->refuse_at)
        return -1;
    snprintf (page->keys[page->count++], 32, "%s", key);
    return 0;
}

//  Keys page by prefix, after a key, with a limit; the taker may stop a
//  page early.
static void
test_meta_pages (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_begin (j);
    const char *keys[] = {"a.1",
                          "a.2",
                          "a.3",
                          "a.4",
                          "a.5",
                          "a/x",
                          "b",
                          "\xff\xff"
                          "1",
                          "\xff"
                          "2"};
    for (size_t i = 0; i < sizeof (keys) / sizeof (keys[0]); i++)
        arb_journal_meta_set (j, keys[i], "v", 1);
    arb_journal_commit (j);
    s_page_t page = {0};
    bool more;
    assert_int_equal (arb_journal_meta_page (j, "a.", NULL, 2, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 2);
    assert_true (more);
    assert_string_equal (page.keys[1], "a.2");
    page.count = 0;
    assert_int_equal (arb_journal_meta_page (j, "a.", "a.4", 2, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 1);
    assert_false (more);
    assert_string_equal (page.keys[0], "a.5");
    page = (s_page_t){.refuse_at = 3};
    assert_int_equal (arb_journal_meta_page (j, "", NULL, 100, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 3);
    assert_true (more);
    //  a prefix that ends in 0xff bytes
    page = (s_page_t){0};
    assert_int_equal (arb_journal_meta_page (j, "\xff\xff", NULL, 10, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 1);
    page = (s_page_t){0};
    assert_int_equal (arb_journal_meta_page (j, "\xff", "", 10, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 2);
    //  a prefix removed in one statement
    arb_journal_begin (j);
    assert_int_equal (arb_journal_meta_del_prefix (j, "a."), 0);
    arb_journal_commit (j);
    page = (s_page_t){0};
    assert_int_equal (arb_journal_meta_page (j, "a", NULL, 10, s_take_key, &page, &more), 0);
    assert_int_equal (page.count, 1);
    assert_string_equal (page.keys[0], "a/x");
    arb_journal_destroy (&j);
}

//  A queue's settings come back from the journal, its bounds too; a
//  record stored before the bounds existed loads unbounded.
static void
test_queue_settings_round_trip (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_sched_config_t config = {.liveness_ms = 3000, .cache_bytes = 1000, .epoch = 1};
    arb_sched_hooks_t hooks = {0};
    arb_sched_t *sched = arb_sched_new (&config, &hooks);
    arb_queue_change_t change = {.paused = -1,
                                 .on_failure = -1,
                                 .max_ready = 5,
                                 .max_ready_bytes = 1ull << 40,
                                 .overflow = ARB_OVERFLOW_REJECT,
                                 .retention_ms = 7};
    assert_int_equal (arb_settings_change_queue (sched, j, "b", &change), 0);
    const char *old = "paused=1 max_running=2 rate=3 retention_ms=4 on_failure=1 declared=1";
    assert_int_equal (arb_settings_set_key (j, "queue.old", old, strlen (old)), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_sched_destroy (&sched);
    sched = arb_sched_new (&config, &hooks);
    assert_int_equal (arb_settings_load (sched, j), 0);
    arb_queue_t *b = arb_sched_find_queue (sched, "b");
    assert_non_null (b);
    assert_int_equal (arb_queue_settings (b)->max_ready, 5);
    assert_int_equal (arb_queue_settings (b)->max_ready_bytes, 1ull << 40);
    assert_int_equal (arb_queue_settings (b)->retention_ms, 7);
    assert_true (arb_queue_settings (b)->reject);
    assert_true (arb_queue_is_bounded (b));
    assert_false (arb_queue_is_idle (b));
    arb_queue_t *q = arb_sched_find_queue (sched, "old");
    assert_non_null (q);
    assert_true (arb_queue_settings (q)->paused && arb_queue_settings (q)->declared);
    assert_int_equal (arb_queue_settings (q)->on_failure, 1);
    assert_false (arb_queue_is_bounded (q));
    assert_false (arb_queue_settings (q)->reject);
    //  cleared: unbounded again, and stored so
    arb_queue_change_t clear = {.paused = -1,
                                .on_failure = -1,
                                .clear_max_ready = true,
                                .clear_max_ready_bytes = true,
                                .clear_overflow = true};
    assert_int_equal (arb_settings_change_queue (sched, j, "b", &clear), 0);
    assert_false (arb_queue_is_bounded (b));
    assert_false (arb_queue_settings (b)->reject);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_sched_destroy (&sched);
    sched = arb_sched_new (&config, &hooks);
    assert_int_equal (arb_settings_load (sched, j), 0);
    assert_false (arb_queue_is_bounded (arb_sched_find_queue (sched, "b")));
    assert_false (arb_queue_settings (arb_sched_find_queue (sched, "b"))->reject);
    arb_sched_destroy (&sched);
    arb_journal_destroy (&j);
}

//  A compare-and-set changes a key only if it holds what is expected (or
//  is absent, when that is expected), and says what it holds after.
static void
test_meta_compare_and_set (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    bool matched;
    zchunk_t *now;
    assert_int_equal (arb_settings_cas_key (j, "k", true, NULL, 0, false, "one", 3, &matched, &now),
                      0);
    assert_true (matched);
    assert_true (zchunk_streq (now, "one"));
    zchunk_destroy (&now);
    //  absent expected, but it exists now
    assert_int_equal (arb_settings_cas_key (j, "k", true, NULL, 0, false, "two", 3, &matched, &now),
                      0);
    assert_false (matched);
    assert_true (zchunk_streq (now, "one"));
    zchunk_destroy (&now);
    //  a wrong value, a shorter one, and the right one
    assert_int_equal (
        arb_settings_cas_key (j, "k", false, "uno", 3, false, "two", 3, &matched, &now), 0);
    assert_false (matched);
    zchunk_destroy (&now);
    assert_int_equal (
        arb_settings_cas_key (j, "k", false, "on", 2, false, "two", 3, &matched, &now), 0);
    assert_false (matched);
    zchunk_destroy (&now);
    assert_int_equal (
        arb_settings_cas_key (j, "k", false, "one", 3, false, "two", 3, &matched, &now), 0);
    assert_true (matched);
    assert_true (zchunk_streq (now, "two"));
    zchunk_destroy (&now);
    //  an empty value is a value, not an absence
    assert_int_equal (arb_settings_cas_key (j, "e", false, NULL, 0, false, "x", 1, &matched, &now),
                      0);
    assert_false (matched);
    assert_null (now);
    assert_int_equal (arb_settings_set_key (j, "e", NULL, 0), 0);
    assert_int_equal (arb_settings_cas_key (j, "e", false, NULL, 0, false, "x", 1, &matched, &now),
                      0);
    assert_true (matched);
    zchunk_destroy (&now);
    //  remove on a match
    assert_int_equal (arb_settings_cas_key (j, "k", false, "two", 3, true, NULL, 0, &matched, &now),
                      0);
    assert_true (matched);
    assert_null (now);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_meta_get (j, "k", &now), 0);
    assert_null (now);
    //  a queue's settings and metadata go with it, another queue's stay
    arb_journal_begin (j);
    const char *keys[] = {"queue.q", "queue@q@fanout", "queue@q@x", "queue@qq@x", "queue.qq"};
    for (size_t i = 0; i < 5; i++)
        arb_journal_meta_set (j, keys[i], "v", 1);
    assert_int_equal (arb_settings_forget_queue (j, "q"), 0);
    arb_journal_commit (j);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal (arb_journal_meta_get (j, keys[i], &now), 0);
        assert_true ((now != NULL) == (i >= 3));
        zchunk_destroy (&now);
    }
    assert_true (arb_settings_key_is_reserved ("queue.q"));
    assert_true (arb_settings_key_is_reserved ("limit.x"));
    assert_true (arb_settings_key_is_reserved ("broker.epoch"));
    assert_false (arb_settings_key_is_reserved ("queue@q@fanout"));
    arb_journal_destroy (&j);
}

//  A version-4 journal is brought to version 5: its open tasks count the
//  deliveries it recorded (attempts and lost leases).
static void
test_version_4_counts_deliveries (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_destroy (&j);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, s_to_version_4, NULL, NULL, NULL), SQLITE_OK);
    const char *rows = "INSERT INTO tasks (id, queue, name, state, attempts, lost, created_ms) "
                       "VALUES (1, 'q', 'job', 3, 2, 1, 1), (2, 'q', 'job', 5, 1, 0, 1);";
    assert_int_equal (sqlite3_exec (db, rows, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect_delivered, &seen), 0);
    assert_int_equal (seen.count, 1);
    assert_int_equal (seen.priorities[0], 3);  //  2 attempts + 1 lost
    arb_journal_destroy (&j);
}

//  What arb_journal_count_final told, as "queue/state=count" lines.
static void
s_count_final_text (void *arg, const char *queue, int state, uint64_t count)
{
    char *out = (char *) arg;
    size_t used = strlen (out);
    snprintf (out + used, 256 - used, "%s/%d=%" PRIu64 " ", queue, state, count);
}

//  A version-6 journal (every task in tasks_order) is migrated to 7: open
//  tasks only in tasks_order, final ones found through tasks_purge; the
//  final counts at start, a queue's dead tasks and a queue forgotten
//  still see every row, and the ready rows still come in dispatch order.
static void
test_version_6_is_migrated (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_destroy (&j);
    char sql[1024];
    snprintf (sql, sizeof (sql),
              "%s INSERT INTO tasks (id, queue, name, state, priority, created_ms, purge_at_ms) "
              "VALUES (1, 'q', 'job', 3, 0, 1, NULL), (2, 'q', 'job', 3, 5, 1, NULL),"
              "(3, 'q', 'job', 5, 0, 1, 100), (4, 'q', 'job', 7, 0, 1, 100),"
              "(5, 'q', 'job', 7, 0, 1, 200), (6, 'r', 'job', 7, 0, 1, 100),"
              "(7, 'r', 'job', 3, 0, 1, NULL);",
              s_to_version_6);
    s_sqlite_file (fx->path, sql);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    assert_int_equal (s_count_rows (fx->path, "PRAGMA user_version"), 10);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM sqlite_master WHERE name = "
                                              "'tasks_order' AND sql LIKE '%WHERE state < 5'"),
                      1);
    char counts[256] = "";
    assert_int_equal (arb_journal_count_final (j, s_count_final_text, counts), 0);
    assert_string_equal (counts, "q/5=1 q/7=2 r/7=1 ");
    zlistx_t *dead = arb_journal_dead_ids (j, "q");
    assert_non_null (dead);
    assert_int_equal (zlistx_size (dead), 2);
    assert_int_equal ((uintptr_t) zlistx_first (dead), 4);
    assert_int_equal ((uintptr_t) zlistx_next (dead), 5);
    zlistx_destroy (&dead);
    s_seen_t seen = {0};
    size_t count;
    int32_t last_priority;
    uint64_t last_id;
    assert_int_equal (arb_journal_load_ready (j, "q", INT32_MAX, 0, 10, s_collect_ready, &seen,
                                              &count, &last_priority, &last_id),
                      0);
    assert_int_equal (count, 2);
    assert_int_equal (seen.ids[0], 2);
    assert_int_equal (seen.ids[1], 1);
    assert_int_equal (arb_journal_forget_queue (j, "q", 7), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE queue = 'q'"), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE queue = 'r'"), 2);
    arb_journal_destroy (&j);
}

//  A version-7 journal (no tasks.unwatched: the mark was in memory only)
//  is migrated to 8: its tasks read back unmarked, and a new task's mark
//  is kept beside them.
static void
test_version_7_is_migrated (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_task_t *old = s_task (q, 1, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, old, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    s_sqlite_file (fx->path, s_to_version_7);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM pragma_table_info ('tasks') "
                                              "WHERE name = 'unwatched'"),
                      0);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    assert_int_equal (s_count_rows (fx->path, "PRAGMA user_version"), 10);
    arb_task_t *young = s_task (q, 2, ARB_STATE_READY);
    young->unwatched = true;
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, young, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 2);
    //  by priority, highest first (s_task: priority = id)
    assert_int_equal (seen.ids[0], 2);
    assert_true (seen.unwatched[0]);
    assert_int_equal (seen.ids[1], 1);
    assert_false (seen.unwatched[1]);
    arb_journal_destroy (&j);
    s_task_free (&old);
    s_task_free (&young);
    arb_queue_destroy (&q);
}

//  A version-9 journal, whose fan-out tasks have copies 0 (an arbiterd of
//  version 9 counted them in memory only), is migrated to 10: a task
//  with copy rows counts them, a dead one whose copies are gone counts the
//  missing endpoints its error names; a task without copies (a copy, a
//  plain task, a failed task with that error of its own) keeps 0.
static void
test_version_9_counts_copies (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_queue_t *at = arb_queue_new ("q@lb1", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_task_t *waiting = s_task (q, 1, ARB_STATE_WAITING);
    arb_task_ext_rw (waiting)->copies = 2;
    arb_task_t *copy1 = s_task (at, 2, ARB_STATE_READY);
    arb_task_ext_rw (copy1)->origin = 1;
    arb_task_t *copy2 = s_task (at, 3, ARB_STATE_READY);
    arb_task_ext_rw (copy2)->origin = 1;
    arb_task_t *plain = s_task (q, 4, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    arb_journal_row_t copy_row = {.endpoint = "lb1"};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, waiting, &row), 0);
    assert_int_equal (arb_journal_insert (j, copy1, &copy_row), 0);
    assert_int_equal (arb_journal_insert (j, copy2, &copy_row), 0);
    assert_int_equal (arb_journal_insert (j, plain, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 1"), 2);
    //  as version 9 left them; 5 a fan-out task dead, its copies swept;
    //  6 a task whose handler failed with the same words
    s_sqlite_file (fx->path,
                   "UPDATE tasks SET copies = 0;"
                   "INSERT INTO tasks (id, queue, name, state, created_ms, error) VALUES "
                   "(5, 'q', 'job', 7, 1, 'incomplete: missing endpoints: lb1, lb2, lb3'),"
                   "(6, 'q', 'job', 7, 1, 'incomplete: missing endpoints: x');"
                   "UPDATE tasks SET attempts = 1 WHERE id = 6;"
                   "PRAGMA user_version = 9;");
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "PRAGMA user_version"), 10);
    assert_int_equal (s_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 1"), 2);
    assert_int_equal (s_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 5"), 3);
    assert_int_equal (s_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE copies > 0"), 2);
    s_task_free (&waiting);
    s_task_free (&copy1);
    s_task_free (&copy2);
    s_task_free (&plain);
    arb_queue_destroy (&at);
    arb_queue_destroy (&q);
}

//  A version-5 journal (tasks_queue) is migrated to tasks_order, and a
//  queue's ready rows read back in dispatch order from a key on: priority
//  highest first, then id, each with its payload and headers.
static void
test_version_5_reads_ready_in_order (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_journal_destroy (&j);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, s_to_version_5, NULL, NULL, NULL), SQLITE_OK);
    const char *rows =
        "INSERT INTO tasks (id, queue, name, state, priority, created_ms) VALUES "
        "(1, 'q', 'job', 3, 0, 1), (2, 'q', 'job', 3, 5, 1), (3, 'q', 'job', 3, 0, 1),"
        "(4, 'r', 'job', 3, 9, 1), (5, 'q', 'job', 6, 9, 1), (6, 'q', 'job', 3, 5, 1),"
        "(7, 'q', 'job', 3, -1, 1);"
        "UPDATE tasks SET payload = X'6869' WHERE id = 2;"
        "UPDATE tasks SET payload = X'6f6b', headers = X'6878' WHERE id = 6;";
    assert_int_equal (sqlite3_exec (db, rows, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    s_seen_t seen = {0};
    size_t count;
    int32_t last_priority;
    uint64_t last_id;
    assert_int_equal (arb_journal_load_ready (j, "q", INT32_MAX, 0, 10, s_collect_ready, &seen,
                                              &count, &last_priority, &last_id),
                      0);
    assert_int_equal (count, 5);
    assert_int_equal (last_priority, -1);
    assert_int_equal (last_id, 7);
    uint64_t order[] = {2, 6, 1, 3, 7};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal (seen.ids[i], order[i]);
    assert_string_equal (seen.bodies[0], "hi/");
    assert_string_equal (seen.bodies[1], "ok/hx");
    assert_string_equal (seen.bodies[2], "/");
    //  each row's payload size, for the queue's ready bytes
    assert_int_equal (seen.sizes[0], 2);
    assert_int_equal (seen.sizes[1], 2);
    assert_int_equal (seen.sizes[2], 0);
    memset (&seen, 0, sizeof (seen));
    bool found;
    assert_int_equal (arb_journal_load_task (j, 6, s_collect, &seen, &found), 0);
    assert_true (found);
    assert_int_equal (seen.sizes[0], 2);
    //  from (5, 6) on, two at a time
    memset (&seen, 0, sizeof (seen));
    assert_int_equal (arb_journal_load_ready (j, "q", 5, 6, 2, s_collect_ready, &seen, &count,
                                              &last_priority, &last_id),
                      0);
    assert_int_equal (count, 2);
    assert_int_equal (last_id, 1);
    assert_int_equal (seen.ids[0], 6);
    assert_int_equal (seen.ids[1], 1);
    memset (&seen, 0, sizeof (seen));
    assert_int_equal (arb_journal_load_ready (j, "q", 0, 2, 10, s_collect_ready, &seen, &count,
                                              &last_priority, &last_id),
                      0);
    assert_int_equal (count, 2);
    assert_int_equal (seen.ids[0], 3);
    assert_int_equal (seen.ids[1], 7);
    arb_journal_destroy (&j);
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db,
                                          "SELECT count(*) FROM sqlite_master WHERE name IN "
                                          "('tasks_order', 'tasks_queue')",
                                          -1, &stmt, NULL),
                      SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 1);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
}

typedef struct {
    char names[8][32];
    uint64_t cursors[8];
    arb_schedule_info_t rows[8];
    char payloads[8][32];
    size_t count;
} s_schedules_t;

static int
s_collect_schedule (void *arg, arb_schedule_info_t *schedule, uint64_t cursor_ms)
{
    s_schedules_t *seen = (s_schedules_t *) arg;
    size_t i = seen->count++;
    snprintf (seen->names[i], sizeof (seen->names[i]), "%s", schedule->name);
    seen->cursors[i] = cursor_ms;
    seen->rows[i] = *schedule;
    assert_non_null (schedule->payload);
    snprintf (seen->payloads[i], sizeof (seen->payloads[i]), "%.*s",
              (int) zframe_size (schedule->payload), (char *) zframe_data (schedule->payload));
    //  strings are the journal's: keep copies of those the test reads
    seen->rows[i].name = seen->names[i];
    seen->rows[i].cron = seen->rows[i].zone = seen->rows[i].catch_up = seen->rows[i].queue =
        seen->rows[i].task = NULL;
    assert_string_equal (schedule->queue,
                         streq (schedule->name, "nightly") ? "reports" : "default");
    assert_string_equal (schedule->zone,
                         streq (schedule->name, "nightly") ? "Europe/Berlin" : "UTC");
    assert_string_equal (schedule->catch_up, streq (schedule->name, "nightly") ? "all" : "one");
    assert_string_equal (schedule->task, "report");
    seen->rows[i].payload = NULL;
    return 0;
}

static s_schedules_t
s_schedules (arb_journal_t *j)
{
    s_schedules_t seen = {.count = 0};
    assert_int_equal (arb_journal_schedules (j, s_collect_schedule, &seen), 0);
    return seen;
}

static void
test_schedules (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    zframe_t *payload = zframe_new ("{\"a\":1}", 7);
    arb_schedule_info_t nightly = {.name = "nightly",
                                   .cron = "30 2 * * *",
                                   .zone = "Europe/Berlin",
                                   .catch_up = "all",
                                   .created_ms = 1000,
                                   .queue = "reports",
                                   .task = "report",
                                   .priority = -3,
                                   .retries = 2,
                                   .backoff = ARB_BACKOFF_EXP,
                                   .backoff_ms = 100,
                                   .backoff_cap_ms = 900,
                                   .no_jitter = true,
                                   .timeout_ms = 60000,
                                   .soft_timeout_ms = 30000,
                                   .retention_ms = 3600000,
                                   .payload = payload};
    arb_schedule_info_t minutely = {
        .name = "minutely", .cron = "* * * * *", .created_ms = 2000, .task = "report"};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_schedule_add (j, &nightly, 1000), 0);
    assert_int_equal (arb_journal_schedule_add (j, &minutely, 2000), 0);
    assert_int_equal (arb_journal_schedule_add (j, &minutely, 2000), 0);  //  replaced: one per name
    assert_int_equal (arb_journal_commit (j), 0);
    zframe_destroy (&payload);

    //  the same after a reopen, in name order, with the defaults filled in
    arb_journal_destroy (&j);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    s_schedules_t seen = s_schedules (j);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.names[0], "minutely");
    assert_string_equal (seen.names[1], "nightly");
    assert_int_equal (seen.cursors[1], 1000);
    arb_schedule_info_t *row = &seen.rows[1];
    assert_true (row->priority == -3 && row->retries == 2 && row->backoff == ARB_BACKOFF_EXP
                 && row->backoff_ms == 100 && row->backoff_cap_ms == 900 && row->no_jitter
                 && row->timeout_ms == 60000 && row->soft_timeout_ms == 30000
                 && row->retention_ms == 3600000 && row->created_ms == 1000 && !row->paused
                 && row->last_slot_ms == 0);
    assert_string_equal (seen.payloads[1], "{\"a\":1}");
    assert_string_equal (seen.payloads[0], "");

    //  a fired slot, a pause: committed, they stay; not committed, they go
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_schedule_fired (j, "nightly", 86400000, 42), 0);
    assert_int_equal (arb_journal_schedule_state (j, "minutely", true, 2000), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_schedule_fired (j, "nightly", 2 * 86400000, 43), 0);
    assert_int_equal (arb_journal_schedule_remove (j, "minutely"), 0);
    arb_journal_destroy (&j);  //  the open transaction is rolled back
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    seen = s_schedules (j);
    assert_int_equal (seen.count, 2);
    assert_true (seen.rows[0].paused);
    assert_int_equal (seen.cursors[1], 86400000);
    assert_int_equal (seen.rows[1].last_slot_ms, 86400000);
    assert_int_equal (seen.rows[1].last_id, 42);

    //  resumed, its cursor moves; removed, it is gone
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_schedule_state (j, "minutely", false, 5000), 0);
    assert_int_equal (arb_journal_schedule_remove (j, "nightly"), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    seen = s_schedules (j);
    assert_int_equal (seen.count, 1);
    assert_false (seen.rows[0].paused);
    assert_int_equal (seen.cursors[0], 5000);
    arb_journal_destroy (&j);
}

static int
s_collect_soft (void *arg, arb_task_t *task, const char *queue, const char *name)
{
    (void) queue;
    (void) name;
    ((uint64_t *) arg)[task->id] = arb_task_ext (task)->soft_timeout_ms;
    return 0;
}

//  Makes a journal at path holding task, then turns it into an older
//  version's by running sql on the file (after the way back to version 4).
static void
s_downgrade (const char *path, arb_task_t *task, const char *sql)
{
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_NORMAL);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, task, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, s_to_version_4, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
}

//  A version-1 journal (before soft timeouts) is migrated in place: its
//  tasks load, with no soft timeout, and new ones keep theirs.
static void
test_version_1_is_migrated (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_task_t *old = s_task (queue, 1, ARB_STATE_READY);
    s_downgrade (fx->path, old,
                 "ALTER TABLE tasks DROP COLUMN soft_timeout_ms; DROP TABLE schedules;"
                 "DROP TABLE attempts;"
                 "CREATE TABLE attempts (task_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
                 " started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, worker TEXT,"
                 " outcome INTEGER NOT NULL, error TEXT, PRIMARY KEY (task_id, attempt))"
                 " WITHOUT ROWID;"
                 "PRAGMA user_version = 1");
    arb_journal_row_t row = {0};
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_task_t *young = s_task (queue, 2, ARB_STATE_READY);
    arb_task_ext_rw (young)->soft_timeout_ms = 1500;
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, young, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    uint64_t soft[3] = {7, 7, 7};
    assert_int_equal (arb_journal_load_open (j, s_collect_soft, soft), 0);
    assert_int_equal (soft[1], 0);
    assert_int_equal (soft[2], 1500);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    assert_int_equal (arb_journal_task_info (j, 2, true, msg, &info), 0);
    assert_int_equal (info.soft_timeout_ms, 1500);
    arb_msg_destroy (&msg);
    arb_journal_destroy (&j);
    s_task_free (&old);
    s_task_free (&young);
    arb_queue_destroy (&queue);
}

//  A version-2 journal (no schedules table) is brought to the current
//  version in place: its tasks stay, and schedules can be stored.
static void
test_version_2_is_migrated (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_task_t *task = s_task (queue, 1, ARB_STATE_READY);
    arb_journal_row_t row = {.key = "k1"};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, task, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, s_to_version_4, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal (
        sqlite3_exec (db,
                      "DROP TABLE schedules;"
                      "DROP TABLE attempts;"
                      "CREATE TABLE attempts (task_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
                      " started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, worker TEXT,"
                      " outcome INTEGER NOT NULL, error TEXT, PRIMARY KEY (task_id, attempt))"
                      " WITHOUT ROWID;"
                      "PRAGMA user_version = 2",
                      NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close (db);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    uint64_t id;
    int task_state;
    assert_int_equal (arb_journal_find_key (j, "k1", &id, &task_state, NULL), 0);
    assert_int_equal (id, 1);
    arb_schedule_info_t hourly = {.name = "hourly", .cron = "@hourly", .task = "report"};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_schedule_add (j, &hourly, 0), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_schedules (j).count, 1);
    arb_journal_destroy (&j);
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 10);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    s_task_free (&task);
    arb_queue_destroy (&queue);
}

//  A version-3 journal (attempts keyed by their number, unbounded) is
//  migrated in place: its histories are kept in order, trimmed to the
//  bound with the dropped ones counted, and new attempts follow them.
static void
test_version_3_is_migrated (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *queue = arb_queue_new ("q", 0);
    arb_task_t *t = s_task (queue, 1, ARB_STATE_READY);
    s_downgrade (fx->path, t,
                 "DROP TABLE attempts;"
                 "CREATE TABLE attempts (task_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
                 " started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, worker TEXT,"
                 " outcome INTEGER NOT NULL, error TEXT, PRIMARY KEY (task_id, attempt))"
                 " WITHOUT ROWID;"
                 "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12)"
                 " INSERT INTO attempts SELECT 1, i, i, i + 1, 'w', 1, 'old ' || i FROM n;"
                 "PRAGMA user_version = 3");

    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    assert_int_equal (s_count_rows (fx->path, "PRAGMA user_version"), 10);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    assert_int_equal (arb_journal_task_info (j, 1, true, msg, &info), 0);
    assert_int_equal (info.history.n, ARB_HISTORY_FIRST + ARB_HISTORY_LAST);
    assert_int_equal (info.history_dropped, 2);
    assert_string_equal (info.history.v[0].error, "old 1");
    assert_string_equal (info.history.v[info.history.n - 1].error, "old 12");
    assert_int_equal (arb_journal_begin (j), 0);
    s_add_attempt (j, 1, "new");
    assert_int_equal (arb_journal_commit (j), 0);
    arb_task_info_t after = {0};
    assert_int_equal (arb_journal_task_info (j, 1, true, msg, &after), 0);
    assert_int_equal (after.history_dropped, 3);
    assert_string_equal (after.history.v[after.history.n - 1].error, "new");
    arb_msg_destroy (&msg);
    arb_journal_destroy (&j);
    s_task_free (&t);
    arb_queue_destroy (&queue);
}

//  ---------------------------------------------------------------------
//  Corrupted rows (fuzz_journal found each): a row the broker cannot use
//  is skipped or read as absent, and what is read makes replies a client
//  decodes.

//  A journal whose rows were written behind its back, NOT NULLs and all
//  taken out of its schema first: what a damaged or hand-edited one holds.
static arb_journal_t *
s_corrupted (const char *path, const char *sql)
{
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_journal_destroy (&j);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db,
                                    "PRAGMA writable_schema = ON;"
                                    "UPDATE sqlite_master SET sql = replace (sql, 'NOT NULL', '')"
                                    " WHERE type = 'table'; PRAGMA writable_schema = OFF;",
                                    NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_close (db);
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg ("%s", err);
    sqlite3_close (db);
    j = arb_journal_new (path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    return j;
}

//  A task row; one whose state is not open gets a purge time, as every
//  final row the broker writes has (the final ones are found through
//  tasks_purge), so that only the columns under test are damaged.
#define S_TASK_ROW(id, queue, name, state)                                                   \
    "INSERT INTO tasks (id, queue, name, state, created_ms, payload) VALUES (" id ", " queue \
    ", " name ", " state ", 1, x'');"                                                        \
    "UPDATE tasks SET purge_at_ms = 1 WHERE id = " id                                        \
    " AND NOT (typeof (state) = 'integer' AND state < 5);"

static int
s_count_parent (void *arg, const arb_journal_parent_t *parent)
{
    arb_journal_parent_t *seen = (arb_journal_parent_t *) arg;
    assert_true (parent->kind >= 0 && parent->kind <= 2);
    seen[0].id++;  //  how many
    seen[parent->id] = *parent;
    return 0;
}

static void
s_count_final (void *arg, const char *queue, int state, uint64_t count)
{
    assert_non_null (queue);
    assert_true (arb_state_is_final (state));
    *(uint64_t *) arg += count;
}

static int
s_schedule_payload (void *arg, arb_schedule_info_t *schedule, uint64_t cursor_ms)
{
    (void) cursor_ms;
    assert_non_null (schedule->payload);
    (*(int *) arg)++;
    return 0;
}

static void
s_meta_value (void *arg, const char *key, const void *data, size_t size)
{
    (void) key;
    assert_non_null (data);  //  a NULL value reads as 0 bytes at ""
    *(size_t *) arg += size + 1;
}

static void
test_corrupted_rows_are_not_trusted (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = s_corrupted (
        fx->path,
        //  usable: 1 ready, 2 waiting on 1 (on_success) and 8 (edge of kind 99)
        S_TASK_ROW ("1", "'q'", "'job'", "3") S_TASK_ROW ("2", "'q'", "'job'", "1")
        //  unusable open tasks: each would crash or corrupt the scheduler
        S_TASK_ROW ("3", "'q'", "'job'", "-1")       //  counts[255]
        S_TASK_ROW ("4", "NULL", "'job'", "3")       //  no queue
        S_TASK_ROW ("5", "'q'", "x'6100'", "3")      //  a blob name with a NUL
        S_TASK_ROW ("6", "'q'", "'job'", "4")        //  running is never stored
        S_TASK_ROW ("0", "'q'", "'job'", "3")        //  id 0 is no key
        S_TASK_ROW ("7", "'q'", "'job'", "'ready'")  //  a state that is text
        S_TASK_ROW ("8", "'q'", "'job'", "77")       //  a parent of no state
        S_TASK_ROW ("9", "NULL", "'job'", "5")       //  final, no queue
        S_TASK_ROW ("10", "'q'", "'job'", "42")      //  final? no such state
        S_TASK_ROW ("11", "'q'", "'job'", "7")       //  dead, with long texts
        S_TASK_ROW ("12", "'q'", "'job'", "5")       //  succeeded, a bad ref
        "INSERT INTO tasks (id, queue, name, state, created_ms, payload) VALUES"
        " (13, printf ('%.300c', 'q'), 'job', 3, 1, x'');"
        "UPDATE tasks SET worker = printf ('%.300c', 'w'), error = printf ('%.5000c', 'e'),"
        " endpoint = printf ('%.300c', 'n'), args = zeroblob (1048577) WHERE id = 11;"
        "UPDATE tasks SET ref = 'a' || char (1) WHERE id = 12;"
        "UPDATE tasks SET ref = printf ('%.300c', 'r') WHERE id = 8;"
        "INSERT INTO deps VALUES (2, 1, 0), (2, 8, 99), (11, 12, 0), (11, 8, 2);"
        "INSERT INTO meta VALUES ('queue.q', NULL);"
        "INSERT INTO schedules (name, cron, zone, catch_up, created_ms, cursor_ms, queue, task,"
        " payload) VALUES ('nightly', '0 3 * * *', 'UTC', 'one', 1, 1, 'q', 'report', NULL);");

    //  the broker's start loads the usable open tasks only
    s_seen_t seen = {.count = 0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 2);
    assert_int_equal (seen.ids[0] + seen.ids[1], 3);  //  1 and 2, in either order
    uint64_t final = 0;
    assert_int_equal (arb_journal_count_final (j, s_count_final, &final), 0);
    assert_int_equal (final, 2);  //  11 and 12; not 9 (no queue) nor 10 (no state)

    //  an unusable task reads as none
    bool found;
    s_seen_t one = {.count = 0};
    for (uint64_t id = 0; id <= 10; id++) {
        assert_int_equal (arb_journal_load_task (j, id, s_collect, &one, &found), 0);
        assert_true (found == (id == 1 || id == 2 || id == 6));  //  6 is in a state
    }
    arb_msg_t *msg = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_task_t done = {0};
    assert_int_equal (arb_journal_done (j, 10, msg, &done, &found), 0);
    assert_false (found);
    arb_msg_destroy (&msg);

    //  edges: one of no kind is skipped, a parent of no state is gone
    arb_journal_parent_t parents[16] = {{0}};
    assert_int_equal (arb_journal_parents (j, 2, s_count_parent, parents), 0);
    assert_int_equal (parents[0].id, 1);
    assert_int_equal (arb_journal_parents (j, 11, s_count_parent, parents), 0);
    assert_int_equal (parents[8].state, 0);
    assert_null (parents[8].ref);
    arb_vec_t children = {0};
    assert_int_equal (arb_journal_children (j, 8, &children), 0);
    assert_int_equal (children.n, 2);  //  (11, always), not (2, 99)
    assert_int_equal (children.v[0], 11);
    arb_vec_free (&children);

    //  a STATUS of the task with long texts still decodes
    msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_status_reply_body_t *body = arb_msg_status_reply (msg);
    arb_task_info_t *info =
        (arb_task_info_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_info_t), 1);
    assert_int_equal (arb_journal_task_info (j, 11, true, msg, info), 0);
    assert_int_equal (strlen (info->worker), ARB_NAME_MAX);
    assert_int_equal (strlen (info->error), ARB_TEXT_MAX);
    assert_null (info->args.data);  //  over ARB_ARGS_MAX: left out
    assert_int_equal (info->parents.n, 2);
    assert_null (info->parents.v[1].ref);  //  'a\x01' is no name
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_limits_t limits = {.max_frame = 1 << 24};
    arb_msg_t *back = NULL;
    assert_int_equal (arb_msg_decode (&zmsg, false, &limits, &back), 0);
    arb_msg_destroy (&back);

    //  ids lists skip id 0; a NULL setting is 0 bytes; a schedule has a payload
    zlistx_t *ids = arb_journal_flows_named (j, "x", 1);
    zlistx_destroy (&ids);
    size_t meta = 0;
    assert_int_equal (arb_journal_meta_list (j, "queue.", s_meta_value, &meta), 0);
    assert_int_equal (meta, 1);
    int schedules = 0;
    assert_int_equal (arb_journal_schedules (j, s_schedule_payload, &schedules), 0);
    assert_int_equal (schedules, 1);
    arb_journal_destroy (&j);
}

static int
s_meta_key (void *arg, const char *key, const void *data, size_t size)
{
    assert_non_null (data);
    (void) size;
    snprintf ((char *) arg, 16, "%s", key);
    return 0;
}

//  A META list page skips a key no reply can hold (over ARB_TEXT_MAX
//  bytes), and still tells rightly whether keys are left.
static void
test_corrupted_meta_keys_are_skipped (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j =
        s_corrupted (fx->path, "INSERT INTO meta VALUES ('a1', 'x'),"
                               " ('a2' || printf ('%.5000c', 'k'), 'y'), ('a3', NULL);");
    char key[16] = "";
    bool more;
    assert_int_equal (arb_journal_meta_page (j, "a", NULL, 1, s_meta_key, key, &more), 0);
    assert_string_equal (key, "a1");
    assert_true (more);
    assert_int_equal (arb_journal_meta_page (j, "a", "a1", 1, s_meta_key, key, &more), 0);
    assert_string_equal (key, "a3");
    assert_false (more);
    arb_journal_destroy (&j);
}

//  Ids cast to list items: a row of id 0 would be no item (zlistx asserts).
static void
test_corrupted_ids_are_skipped (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = s_corrupted (fx->path, S_TASK_ROW ("0", "'q'", "'job'", "7")
                                                  S_TASK_ROW ("-5", "'q'", "'job'", "7")
                                                      S_TASK_ROW ("6", "'q'", "'job'", "7"));
    zlistx_t *ids = arb_journal_dead_ids (j, "q");
    assert_non_null (ids);
    assert_int_equal (zlistx_size (ids), 1);
    assert_int_equal ((uintptr_t) zlistx_first (ids), 6);
    zlistx_destroy (&ids);
    arb_journal_destroy (&j);
}

//  ---------------------------------------------------------------------
//  The task log (arb_tasklog.h, arb_journal_batch.c)

//  The bytes of the records in a journal's task log (its file grows
//  ahead of them with zeros, and older records may follow them): where a
//  header that is not one of the first record's generation is.
static long
s_log_file_size (const char *path, const char *suffix)
{
    char log[200];
    snprintf (log, sizeof (log), "%s%s", path, suffix);
    FILE *f = fopen (log, "rb");
    if (!f)
        return -1;
    long at = 0;
    uint32_t head[6];  //  magic, size, generation (two words), checksum, pad
    uint32_t gen[2] = {0, 0};
    while (fseek (f, at, SEEK_SET) == 0 && fread (head, sizeof (head), 1, f) == 1
           && head[0] == ARB_TASKLOG_MAGIC) {
        if (at == 0)
            memcpy (gen, head + 2, sizeof (gen));
        else if (memcmp (gen, head + 2, sizeof (gen)))
            break;
        at += (long) sizeof (head) + head[1];
    }
    fclose (f);
    return at;
}

static long
s_log_size (const char *path)
{
    return s_log_file_size (path, ARB_JOURNAL_LOG_SUFFIX);
}

static void
s_drop_committed (arb_journal_t *j, uint64_t id)
{
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, id, id), 0);
    assert_int_equal (arb_journal_commit (j), 0);
}

//  A turn of plain rows and drops commits to the log, not the tables;
//  what a crash leaves (the files as they are) opens with every committed
//  row and drop; a read outside a turn sees the log's rows through a view
//  that leaves the tables as they were; a payload in the log is read from
//  memory; a turn with another write is a checkpoint; a clean close
//  leaves the tables whole and the log empty.
static void
test_the_task_log_holds_plain_turns (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 1, 100, 'a');
    s_held (j, q, 2, 100, 'b');
    s_held (j, q, 3, 100, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_true (s_log_size (fx->path) > 300);
    //  the file grows ahead of its records, so that a record's sync
    //  writes no file size
    char log[200];
    snprintf (log, sizeof (log), "%s" ARB_JOURNAL_LOG_SUFFIX, fx->path);
    struct stat info;
    assert_int_equal (stat (log, &info), 0);
    assert_int_equal (info.st_size, ARB_TASKLOG_GROW_BYTES);
    //  the first drop writes the id floor: a checkpoint
    s_drop_committed (j, 2);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    //  then rows and drops to the log: 1 is in the tables, 4 only in the log
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 4, 100, 'd');
    s_held (j, q, 5, 100, 'e');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 1, 5), 0);
    assert_int_equal (arb_journal_drop (j, 4, 5), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    zframe_t *payload = NULL, *headers = NULL;
    assert_int_equal (arb_journal_load_payload (j, 5, &payload, &headers, NULL), 0);
    assert_int_equal (zframe_size (payload), 100);
    assert_int_equal (zframe_data (payload)[99], 'e');
    assert_null (headers);
    zframe_destroy (&payload);
    //  a crash now: the copy opens with 3 and 5, and the log's rows are in
    //  its tables
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"), 2);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (3, 5)"), 2);
    arb_journal_destroy (&c);
    //  a read outside a turn sees the log through a view, which the next
    //  commit closes without writing
    assert_true (s_has_task (j, 5));
    assert_false (s_has_task (j, 4));
    assert_false (s_has_task (j, 1));
    assert_true (arb_journal_in_txn (j));
    assert_int_equal (arb_journal_commit (j), 0);
    assert_false (arb_journal_in_txn (j));
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    //  a turn with another write takes the log with it
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (3, 5)"), 2);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  and a clean close leaves the tables whole
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 6, 10, 'f');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 6"), 0);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 6"), 1);
    arb_queue_destroy (&q);
}

//  Commits one turn of count plain rows of size-byte payloads, ids from
//  first on.
static void
s_log_turn (arb_journal_t *j, arb_queue_t *q, uint64_t first, uint64_t count, size_t size)
{
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = first; id < first + count; id++)
        s_held (j, q, id, size, 'r');
    assert_int_equal (arb_journal_commit (j), 0);
}

//  Commits turns of plain rows, ids from first on, 1,000 to a turn, until
//  the log keeps count rows: all to the log. Their payloads are small
//  enough that ARB_LOG_ROWS of them stay under ARB_LOG_BYTES (about 100
//  bytes a row), so that the count of rows is what makes a checkpoint due.
static void
s_log_rows (arb_journal_t *j, arb_queue_t *q, uint64_t first, uint64_t count)
{
    for (uint64_t id = first; id < first + count; id += 1000)
        s_log_turn (j, q, id, first + count - id < 1000 ? first + count - id : 1000, 24);
}

//  An outside connection that holds the journal's write lock: the saver
//  waits for it (its busy timeout), and a test decides when a save runs.
static sqlite3 *
s_hold_lock (const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void
s_release_lock (sqlite3 **db_p)
{
    assert_int_equal (sqlite3_exec (*db_p, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (*db_p);
    *db_p = NULL;
}

//  A thread's: releases the lock (s_hold_lock) arg points to after 300 ms.
static void *
s_release_later (void *arg)
{
    zclock_sleep (300);
    s_release_lock ((sqlite3 **) arg);
    return NULL;
}

//  Waits, at most 10 s, until the tables hold count tasks.
static void
s_wait_rows (const char *path, int count)
{
    for (int i = 0; i < 1000 && s_count_rows (path, "SELECT count(*) FROM tasks") != count; i++)
        zclock_sleep (10);
    assert_int_equal (s_count_rows (path, "SELECT count(*) FROM tasks"), count);
}

//  A journal (--sync full) whose log keeps ARB_LOG_ROWS rows, ids 2 on:
//  a checkpoint is due at the next turn. Its id floor is written ahead
//  first (a checkpoint of the loop's, which stores the next generation).
static arb_journal_t *
s_journal_due (const char *path, arb_queue_t *q)
{
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    s_log_rows (j, q, 2, ARB_LOG_ROWS);
    return j;
}

//  With --sync full, a checkpoint that falls due goes to the saver's
//  thread (arb_journal_saver.c): the turns go on to the log's other file
//  meanwhile, and are acknowledged before the save commits; the save
//  writes the rows kept, and the rows it wrote that ended meanwhile leave
//  the tables at the next checkpoint. A crash before the save commits
//  leaves both files, and the replay takes both: nothing acknowledged is
//  lost, nothing dropped comes back.
static void
test_a_checkpoint_on_the_saver (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = s_journal_due (fx->path, q);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_int_equal (s_log_file_size (fx->path, ARB_JOURNAL_LOG2_SUFFIX), -1);
    //  the save starts at the next turn's commit, and waits for the lock
    sqlite3 *lock = s_hold_lock (fx->path);
    uint64_t next = 2 + ARB_LOG_ROWS;
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, next, 100, 'a');
    s_held (j, q, next + 1, 100, 'a');
    assert_int_equal (arb_journal_drop (j, 2, next + 1), 0);  //  after the save took it
    assert_int_equal (arb_journal_commit (j), 0);
    assert_true (s_log_file_size (fx->path, ARB_JOURNAL_LOG2_SUFFIX) > 200);
    //  a turn while it waits: a row it has ends, two new ones
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 3, next + 1), 0);
    s_held (j, q, next + 2, 100, 'b');
    s_held (j, q, next + 3, 100, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    //  a crash now: both files
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    //  the save commits by itself, without the loop: every row kept when
    //  it started, those that ended since too
    s_release_lock (&lock);
    s_wait_rows (fx->path, ARB_LOG_ROWS);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 2);
    //  the loop's reads see the journal whole: 3 ended, the new rows there
    assert_false (s_has_task (j, 2));
    assert_false (s_has_task (j, 3));
    assert_true (s_has_task (j, 4));
    assert_true (s_has_task (j, next + 3));
    assert_int_equal (arb_journal_commit (j), 0);
    //  more turns to the other file, then a clean close: 2 and 3 leave the
    //  tables
    s_log_rows (j, q, next + 4, 10);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS - 2 + 4 + 10);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 0);
    //  the crash's copy: the tables had nothing; both files are read back
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS - 2 + 4);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 0);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id >= 4"),
                      ARB_LOG_ROWS - 2 + 4);
    //  and goes on from there: its next save uses the files the other way
    s_log_rows (c, q, next + 100, ARB_LOG_ROWS + 1);
    arb_journal_destroy (&c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"),
                      2 * ARB_LOG_ROWS - 2 + 4 + 1);
    arb_queue_destroy (&q);
}

//  Once a save has committed, the tables name the second file: a crash
//  leaves records there that a copy of the journal without it would lose,
//  so such a copy is refused, naming the file. A clean close names the
//  first file again: its copy needs no second file.
static void
test_the_second_file_after_a_crash (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = s_journal_due (fx->path, q);
    s_log_rows (j, q, 2 + ARB_LOG_ROWS, 10);  //  the save starts
    s_wait_rows (fx->path, ARB_LOG_ROWS);
    assert_true (s_has_task (j, 2));  //  the save taken in
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT value FROM meta WHERE key = "
                                              "'broker.log_file'"),
                      1);
    char copy[160], second[200];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    snprintf (second, sizeof (second), "%s" ARB_JOURNAL_LOG2_SUFFIX, copy);
    journal_files_copy_journal (fx->path, copy);
    assert_int_equal (unlink (second), 0);
    s_log_t log;
    s_log_start (&log);
    arb_journal_t *refused = arb_journal_new (copy, ARB_SYNC_FULL);
    char *text = s_log_end (&log);
    assert_null (refused);
    assert_non_null (strstr (text, "-tasklog2 for its task log's records, and that file is not"));
    free (text);
    //  with it, all there
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 10);
    //  a clean close: the first file named, the second not needed
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT value FROM meta WHERE key = "
                                              "'broker.log_file'"),
                      0);
    journal_files_copy_journal (fx->path, copy);
    assert_int_equal (unlink (second), 0);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 10);
    arb_queue_destroy (&q);
}

//  A backlog the log kept, then ended: the memory its rows took goes back
//  once few are kept (s_trim), rather than staying at its high-water mark,
//  and the log goes on as before.
static void
test_kept_rows_give_their_memory_back (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    const uint64_t backlog = 40000;     //  under ARB_LOG_ROWS: all kept
    s_drop_committed (j, 2 * backlog);  //  the id floor, written ahead of them all
    s_log_rows (j, q, 1, backlog);
    size_t bytes = j->batch_max, held = j->held_max;
    assert_true (bytes >= 2 << 20);
    for (uint64_t id = 1; id <= backlog;) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (int i = 0; i < 1000 && id <= backlog; i++, id++)
            assert_int_equal (arb_journal_drop (j, id, backlog + 1), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_true (j->batch_max <= bytes / 8);
    assert_true (j->held_max <= held / 8);
    //  the next rows are kept as before, and a crash leaves them
    s_log_rows (j, q, backlog + 1, 10);
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    arb_journal_destroy (&j);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks"), 10);
    assert_int_equal (s_count_rows (copy, "SELECT min(id) FROM tasks"), (int) backlog + 1);
    arb_journal_destroy (&c);
    arb_queue_destroy (&q);
}

//  A backlog of rows of a usual size (100-byte payloads) stays in the log
//  until its bytes reach ARB_LOG_BYTES, whatever their count: 90,000 of
//  them (past 65,536, the bound of rows before) make no checkpoint due and
//  leave the tables empty; the next rows past the bytes make one due.
static void
test_a_backlog_stays_in_the_log_until_its_bytes_are_due (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    const uint64_t backlog = 90000;
    s_drop_committed (j, 4 * backlog);  //  the id floor, written ahead of them all
    uint64_t id = 1;
    for (; id <= backlog; id += 1000) {
        s_log_turn (j, q, id, 1000, 100);
        assert_false (j->checkpoint_due);
        assert_false (j->saving);
    }
    assert_true (j->batch_size < ARB_LOG_BYTES);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    //  rows of the same size until a checkpoint is due: by the bytes
    for (; !j->checkpoint_due && id < 4 * backlog; id += 1000)
        s_log_turn (j, q, id, 1000, 100);
    assert_true (j->checkpoint_due);
    assert_true (j->batch_size >= ARB_LOG_BYTES);
    assert_true (id - 1 < ARB_LOG_ROWS);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A backlog the log keeps while its oldest tasks end and new ones come
//  (a producer 40,000 ahead of its consumers, 100,000 tasks more) goes
//  on without the tables: the id floor written at the first removal
//  covers them all (ARB_ID_FLOOR_AHEAD), where a floor written again in
//  the stream would make its turn a checkpoint of every row kept.
static void
test_a_backlog_streams_past_the_id_floor_without_the_tables (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    const uint64_t ahead = 40000, more = 100000;
    s_drop_committed (j, 1);  //  the first removal: its floor is written
    s_log_rows (j, q, 2, ahead);
    uint64_t next = 2 + ahead, oldest = 2;
    while (next < 2 + ahead + more) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (int i = 0; i < 1000; i++, next++, oldest++) {
            s_held (j, q, next, 24, 'n');
            assert_int_equal (arb_journal_drop (j, oldest, next), 0);
        }
        assert_int_equal (arb_journal_commit (j), 0);
        assert_false (j->saving);
    }
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_int_equal (s_id_floor (j), 1 + ARB_ID_FLOOR_AHEAD);  //  written once
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A save with no drop ever kept (its list of drops never made): the
//  first checkpoint due is the loop's (no next generation stored yet), the
//  second a save.
static void
test_a_save_without_drops (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_log_rows (j, q, 1, ARB_LOG_ROWS);
    s_log_rows (j, q, ARB_LOG_ROWS + 1, 1);  //  the loop's checkpoint
    s_log_rows (j, q, ARB_LOG_ROWS + 2, ARB_LOG_ROWS);
    s_log_rows (j, q, 2 * ARB_LOG_ROWS + 2, 1);  //  a save
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2 * ARB_LOG_ROWS + 2);
    char second[200];
    snprintf (second, sizeof (second), "%s" ARB_JOURNAL_LOG2_SUFFIX, fx->path);
    assert_int_equal (access (second, F_OK), 0);
    arb_queue_destroy (&q);
}

//  A save that fails (a full disk) loses nothing: the rows stay kept, and
//  the next turn writes them all to the tables itself.
static void
test_a_failed_save (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = s_journal_due (fx->path, q);
    sqlite3 *lock = s_hold_lock (fx->path);
    uint64_t next = 2 + ARB_LOG_ROWS;
    s_log_rows (j, q, next, 1);  //  the save starts, and waits
    s_disk ("full");
    s_release_lock (&lock);
    //  a read waits for the save, which fails
    assert_true (s_has_task (j, 2));
    assert_int_equal (arb_journal_commit (j), 0);
    s_disk ("");
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    //  the next turn takes everything to the tables
    s_log_rows (j, q, next + 1, 1);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 2);
    //  and the log is used again
    s_log_rows (j, q, next + 2, 5);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 2);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 7);
    arb_queue_destroy (&q);
}

//  A read in a turn while a save runs goes on beside it when it reads
//  what the log never holds (metadata; the retention sweep's search for
//  final tasks, once a second): the save writes none of it. One that
//  needs the rows kept (here a read of a task the turn drops, through a
//  view) waits for the save (here until a lock held elsewhere goes, after
//  300 ms): a read of the tables from before the save's commit would see
//  its rows twice, and leave the turn unable to write after it (SQLite
//  refuses to write from an older snapshot).
static void
test_a_read_waits_for_the_save (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = s_journal_due (fx->path, q);
    sqlite3 *lock = s_hold_lock (fx->path);
    s_log_rows (j, q, 2 + ARB_LOG_ROWS, 1);  //  the save starts, and waits
    assert_int_equal (arb_journal_begin (j), 0);
    zchunk_t *value = NULL;
    assert_int_equal (arb_journal_meta_get (j, "k", &value), 0);
    assert_null (value);
    int purged = 0;
    assert_int_equal (arb_journal_purge (j, 1000, 100, 9, 0, s_count_purged, &purged), 0);
    assert_int_equal (purged, 0);
    assert_true (j->saving);  //  not waited for
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_release_later, &lock), 0);
    assert_int_equal (arb_journal_drop (j, 5, 3 + ARB_LOG_ROWS), 0);
    int st = -1;
    assert_int_equal (arb_journal_state (j, 5, &st, NULL, 0), 0);
    assert_int_equal (st, 0);
    assert_false (j->saving);
    assert_int_equal (pthread_join (thread, NULL), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  What a read of the cold backlog hands on, whole, to compare.
typedef struct {
    arb_task_t tasks[32];
    char names[32][16];
    char bodies[32][24];  //  payload '/' headers, or payload alone without headers
    size_t count;
    int32_t last_priority;
    uint64_t last_id;
} s_backlog_t;

static int
s_collect_backlog (void *arg,
                   arb_task_t *task,
                   const char *queue,
                   const char *name,
                   const arb_journal_body_t *body)
{
    s_backlog_t *seen = (s_backlog_t *) arg;
    assert_string_equal (queue, "q");
    assert_null (task->ext);
    assert_true (seen->count < 32);
    seen->tasks[seen->count] = *task;
    snprintf (seen->names[seen->count], sizeof (seen->names[0]), "%s", name);
    snprintf (seen->bodies[seen->count++], sizeof (seen->bodies[0]), "%.*s%s%.*s",
              (int) body->payload_size, (const char *) body->payload, body->headers ? "/" : "",
              (int) body->headers_size, (const char *) body->headers);
    return 0;
}

//  The backlog of q read from the start in reads of max rows each.
static s_backlog_t
s_read_backlog (arb_journal_t *j, size_t max)
{
    s_backlog_t seen = {0};
    int32_t priority = INT32_MAX;
    uint64_t id = 0;
    for (;;) {
        size_t count;
        assert_int_equal (arb_journal_load_ready (j, "q", priority, id, max, s_collect_backlog,
                                                  &seen, &count, &priority, &id),
                          0);
        if (count < max)
            return seen;
        id++;
    }
}

static void
s_plain (arb_journal_t *j,
         arb_queue_t *q,
         uint64_t id,
         int32_t priority,
         const char *payload,
         const char *headers)
{
    arb_task_t *t = s_task (q, id, id % 5 ? ARB_STATE_READY : ARB_STATE_RUNNING);
    t->priority = priority;
    t->unwatched = id % 3 == 0;
    t->name = id % 2 ? "job" : "other job";
    zframe_t *body = zframe_new (payload, strlen (payload));
    arb_bin_t head = {(const uint8_t *) headers, headers ? strlen (headers) : 0};
    arb_journal_row_t row = {.payload = body, .headers = head};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    zframe_destroy (&body);
    s_task_free (&t);
}

//  The cold backlog read while the log holds rows: the tables' rows and
//  the log's are merged in the backlog's order (priority, then id),
//  without the drops kept or the turn's own, exactly as the tables give
//  them after a checkpoint; and the read leaves the turn one the log
//  takes (nothing reaches the tables).
static void
test_the_backlog_is_read_beside_the_task_log (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_queue_t *other = arb_queue_new ("other", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    //  rows 1 to 9 in the tables (a turn with another write: the id floor,
    //  written far enough ahead for the turns below)
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 1; id <= 9; id++)
        s_plain (j, id == 4 ? other : q, id, (int32_t) (id % 3), id % 2 ? "p" : "pay", "h");
    assert_int_equal (arb_journal_drop (j, 9, 9), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 8);
    //  rows 10 to 16 in the log, 2 (tables) and 10 (log) dropped there
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 10; id <= 16; id++)
        s_plain (j, id == 12 ? other : q, id, (int32_t) (id % 3), id % 2 ? "payload" : "x",
                 id % 4 ? NULL : "");
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 2, 16), 0);
    assert_int_equal (arb_journal_drop (j, 10, 16), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    //  and an open turn with rows of its own and drops of both kinds
    assert_int_equal (arb_journal_begin (j), 0);
    s_plain (j, q, 17, 2, "late", "hh");
    s_plain (j, q, 18, -1, "last", NULL);
    assert_int_equal (arb_journal_drop (j, 5, 18), 0);
    assert_int_equal (arb_journal_drop (j, 11, 18), 0);
    long log_before = s_log_size (fx->path);
    s_backlog_t beside = s_read_backlog (j, 100);
    //  q's rows but 2, 5, 9, 10, 11 (dropped), 4 and 12 (other's): 11
    //  rows, priority 2 first (2, 5, 8, 11, 14, 17), then 1, 0, -1
    uint64_t want[] = {8, 14, 17, 1, 7, 13, 16, 3, 6, 15, 18};
    assert_int_equal (beside.count, 11);
    for (size_t i = 0; i < 11; i++)
        assert_int_equal (beside.tasks[i].id, want[i]);
    //  in reads of 1, 2 and 5 rows: the same
    for (size_t max = 1; max <= 5; max += max < 2 ? 1 : 3) {
        s_backlog_t part = s_read_backlog (j, max);
        assert_int_equal (part.count, 11);
        for (size_t i = 0; i < 11; i++)
            assert_int_equal (part.tasks[i].id, want[i]);
    }
    //  the turn is still one for the log
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 8);
    assert_true (s_log_size (fx->path) > log_before);
    //  after a checkpoint the tables give the same, field by field
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "w", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE queue = 'q'"), 11);
    s_backlog_t tables = s_read_backlog (j, 100);
    assert_int_equal (tables.count, beside.count);
    for (size_t i = 0; i < tables.count; i++) {
        assert_memory_equal (&tables.tasks[i], &beside.tasks[i], sizeof (arb_task_t));
        assert_string_equal (tables.names[i], beside.names[i]);
        assert_string_equal (tables.bodies[i], beside.bodies[i]);
    }
    assert_string_equal (beside.bodies[2], "late/hh");
    assert_string_equal (beside.bodies[10], "last");
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
    arb_queue_destroy (&other);
}

//  The ids of q's cold backlog, read from the start in reads of max rows.
typedef struct {
    uint64_t ids[1024];
    size_t count;
} s_ids_t;

static int
s_collect_id (void *arg,
              arb_task_t *task,
              const char *queue,
              const char *name,
              const arb_journal_body_t *body)
{
    s_ids_t *seen = (s_ids_t *) arg;
    assert_string_equal (queue, "q");
    assert_string_equal (name, "job");
    assert_int_equal (body->payload_size, 8);
    assert_memory_equal (body->payload, &task->id, 8);
    assert_true (seen->count < 1024);
    seen->ids[seen->count++] = task->id;
    return 0;
}

static void
s_backlog_ids (arb_journal_t *j, size_t max, s_ids_t *seen)
{
    seen->count = 0;
    int32_t priority = INT32_MAX;
    uint64_t id = 0;
    size_t count = max;
    while (count == max) {
        assert_int_equal (arb_journal_load_ready (j, "q", priority, id, max, s_collect_id, seen,
                                                  &count, &priority, &id),
                          0);
        id++;
    }
}

//  Rows first, first + 1, ... of q in turns of 1,000, each with its id as
//  its payload (s_collect_id), to the tables (another write) or the log.
static void
s_id_rows (arb_journal_t *j, arb_queue_t *q, uint64_t first, uint64_t count, bool tables)
{
    for (uint64_t id = first; id < first + count;) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (int i = 0; i < 1000 && id < first + count; i++, id++) {
            arb_task_t *t = s_task (q, id, ARB_STATE_READY);
            t->priority = 0;
            zframe_t *body = zframe_new (&id, 8);
            arb_journal_row_t row = {.payload = body};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            zframe_destroy (&body);
            s_task_free (&t);
        }
        if (tables)
            assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
}

//  Starts a save held back by a lock taken elsewhere (*lock): q's rows
//  first to first - 1 + ARB_LOG_ROWS go to the log, then to the save, and
//  one more goes to the log's other file.
static void
s_start_saving (arb_journal_t *j, const char *path, arb_queue_t *q, uint64_t first, sqlite3 **lock)
{
    s_id_rows (j, q, first, ARB_LOG_ROWS, false);
    *lock = s_hold_lock (path);
    s_id_rows (j, q, first + ARB_LOG_ROWS, 1, false);  //  the save starts, and waits
    assert_true (j->saving);
}

//  A journal (--sync full) whose save runs, held back by a lock taken
//  elsewhere: q's rows 2 to 11 in the tables, 12 to 11 + ARB_LOG_ROWS
//  in the save, one more in the log's other file.
static arb_journal_t *
s_journal_saving (const char *path, arb_queue_t *q, sqlite3 **lock)
{
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    s_id_rows (j, q, 2, 10, true);
    s_start_saving (j, path, q, 12, lock);
    return j;
}

//  The first max rows of q's backlog are first, first + 1, ..., each once.
static void
s_expect_backlog (arb_journal_t *j, size_t max, uint64_t first)
{
    s_ids_t seen = {.count = 0};
    size_t count;
    int32_t priority;
    uint64_t id;
    assert_int_equal (arb_journal_load_ready (j, "q", INT32_MAX, 0, max, s_collect_id, &seen,
                                              &count, &priority, &id),
                      0);
    assert_int_equal (seen.count, max);
    for (size_t i = 0; i < max; i++)
        assert_int_equal (seen.ids[i], first + i);
}

static void
s_wait_save_ended (arb_journal_t *j)
{
    for (int i = 0; i < 10000 && !arb_journal_saver_ended (j->saver); i++)
        zclock_sleep (1);
    assert_true (arb_journal_saver_ended (j->saver));
}

//  A read of one task's row that the log has neither a row nor a drop of
//  goes to the tables alone, without a view of the rows kept (a STATUS
//  during a backlog the log keeps); one it has either of sees the log.
static void
test_a_read_by_id_needs_no_view (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    s_id_rows (j, q, 2, 10, true);
    s_id_rows (j, q, 12, 10, false);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 3, 21), 0);  //  a row of the tables ends
    assert_int_equal (arb_journal_commit (j), 0);
    int st = 0;
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_state (j, 5, &st, NULL, 0), 0);
    assert_int_equal (st, ARB_STATE_READY);
    assert_false (j->tables);  //  no view
    assert_int_equal (arb_journal_state (j, 3, &st, NULL, 0), 0);
    assert_int_equal (st, 0);  //  its drop seen, through a view
    assert_true (j->tables);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_state (j, 15, &st, NULL, 0), 0);
    assert_int_equal (st, ARB_STATE_READY);  //  a row the log holds, from memory
    assert_false (j->tables);
    assert_int_equal (arb_journal_drop (j, 16, 16), 0);
    assert_int_equal (arb_journal_state (j, 16, &st, NULL, 0), 0);
    assert_int_equal (st, 0);  //  one the turn drops: through a view
    assert_true (j->tables);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
s_expect_same_text (const char *a, const char *b)
{
    if (a && b)
        assert_string_equal (a, b);
    else
        assert_ptr_equal (a, b);  //  both NULL
}

//  Every field a STATUS reads, the same in a and b.
static void
s_expect_same_info (const arb_task_info_t *a, const arb_task_info_t *b)
{
    assert_true (a->found && b->found);
    assert_int_equal (a->id, b->id);
    s_expect_same_text (a->queue, b->queue);
    s_expect_same_text (a->name, b->name);
    s_expect_same_text (a->key, b->key);
    assert_int_equal (a->state, b->state);
    assert_int_equal (a->priority, b->priority);
    assert_int_equal (a->attempts, b->attempts);
    assert_int_equal (a->max_attempts, b->max_attempts);
    assert_int_equal (a->lost, b->lost);
    assert_int_equal (a->created_ms, b->created_ms);
    assert_int_equal (a->not_before_ms, b->not_before_ms);
    assert_int_equal (a->started_ms, b->started_ms);
    assert_int_equal (a->finished_ms, b->finished_ms);
    assert_int_equal (a->timeout_ms, b->timeout_ms);
    s_expect_same_text (a->worker, b->worker);
    s_expect_same_text (a->error, b->error);
    assert_int_equal (a->flow, b->flow);
    s_expect_same_text (a->ref, b->ref);
    assert_int_equal (a->origin, b->origin);
    s_expect_same_text (a->endpoint, b->endpoint);
    assert_int_equal (a->flow_kind, b->flow_kind);
    s_expect_same_text (a->flow_name, b->flow_name);
    assert_int_equal (a->soft_timeout_ms, b->soft_timeout_ms);
    assert_int_equal (a->result.size, b->result.size);
    assert_ptr_equal (a->result.data, b->result.data);  //  both NULL: no result
    assert_int_equal (a->args.size, b->args.size);
    assert_ptr_equal (a->args.data, b->args.data);
    assert_int_equal (a->history.n, b->history.n);
    assert_int_equal (a->history_dropped, b->history_dropped);
    assert_int_equal (a->responses.n, b->responses.n);
    assert_int_equal (a->parents.n, b->parents.n);
}

//  A read of one task's row the log holds (a STATUS, a parent's state, a
//  watcher's look) is answered from that row, without a view of the rows
//  kept, and says what the tables say once a checkpoint wrote the row: a
//  task of another queue and name, with headers, one handed out before
//  its commit (the row says READY, as the tables do).
static void
test_a_row_the_log_holds_answers_as_the_tables_do (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("emails.outbound", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 2; id <= 3; id++) {
        arb_task_t *t = s_task (q, id, id == 2 ? ARB_STATE_READY : ARB_STATE_RUNNING);
        t->name = "send.welcome";
        t->priority = -7;
        t->max_attempts = 5;
        zframe_t *body = zframe_new ("hello", 5);
        arb_journal_row_t row = {.payload = body, .headers = {(const uint8_t *) "h:1", 3}};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&body);
        s_task_free (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);

    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t held[2] = {{0}}, brief = {0};
    int states[2];
    char ref[32] = "x";
    arb_done_task_t done = {0};
    bool found = false;
    assert_int_equal (arb_journal_begin (j), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal (arb_journal_task_info (j, 2 + (uint64_t) i, true, msg, &held[i]), 0);
        assert_int_equal (arb_journal_state (j, 2 + (uint64_t) i, &states[i], ref, sizeof (ref)),
                          0);
        assert_string_equal (ref, "");
    }
    assert_int_equal (arb_journal_task_info (j, 2, false, msg, &brief), 0);
    assert_int_equal (arb_journal_done (j, 3, msg, &done, &found), 0);
    assert_false (j->tables);  //  no view
    assert_int_equal (arb_journal_commit (j), 0);
    assert_true (found);
    assert_int_equal (done.state, ARB_STATE_READY);
    assert_int_equal (held[0].state, ARB_STATE_READY);
    assert_int_equal (held[1].state, ARB_STATE_READY);
    assert_string_equal (held[0].queue, "emails.outbound");
    assert_string_equal (held[0].name, "send.welcome");
    assert_int_equal (held[0].priority, -7);

    //  a turn with another write: the rows go to the tables
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    assert_int_equal (arb_journal_begin (j), 0);
    for (int i = 0; i < 2; i++) {
        arb_task_info_t table = {0};
        int st = -1;
        assert_int_equal (arb_journal_task_info (j, 2 + (uint64_t) i, true, msg, &table), 0);
        s_expect_same_info (&held[i], &table);
        assert_int_equal (arb_journal_state (j, 2 + (uint64_t) i, &st, ref, sizeof (ref)), 0);
        assert_int_equal (st, states[i]);
        assert_string_equal (ref, "");
    }
    arb_task_info_t table = {0};
    assert_int_equal (arb_journal_task_info (j, 2, false, msg, &table), 0);
    s_expect_same_info (&brief, &table);
    arb_done_task_t again = {0};
    found = false;
    assert_int_equal (arb_journal_done (j, 3, msg, &again, &found), 0);
    assert_true (found);
    assert_int_equal (again.state, done.state);
    assert_int_equal (again.attempts, done.attempts);
    assert_ptr_equal (again.error, done.error);
    assert_null (done.result);
    assert_int_equal (again.result ? zframe_size (again.result) : 0, 0);
    zframe_destroy (&again.result);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_msg_destroy (&msg);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A drop kept after a save started stays a drop through reads during the
//  save (which sort the drops kept, but not into the save's own) and the
//  save's end: the ended task's row leaves the tables at the checkpoint.
static void
test_a_drop_kept_during_a_save_stays (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    s_id_rows (j, q, 2, 10, true);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 9, 9), 0);  //  the save's drop
    assert_int_equal (arb_journal_commit (j), 0);
    s_id_rows (j, q, 12, ARB_LOG_ROWS, false);
    sqlite3 *lock = s_hold_lock (fx->path);
    s_id_rows (j, q, 12 + ARB_LOG_ROWS, 1, false);  //  the save starts, and waits
    assert_true (j->saving);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 5, 5), 0);  //  a drop after it, below its one
    assert_int_equal (arb_journal_commit (j), 0);
    int st = -1;
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_state (j, 3, &st, NULL, 0), 0);
    assert_int_equal (st, ARB_STATE_READY);
    s_ids_t seen = {.count = 0};
    size_t count;
    int32_t priority;
    uint64_t last;
    assert_int_equal (arb_journal_load_ready (j, "q", INT32_MAX, 0, 8, s_collect_id, &seen, &count,
                                              &priority, &last),
                      0);
    //  the rows the read passes over count (the next read goes on after them)
    const uint64_t want[] = {2, 3, 4, 6, 7, 8};
    assert_int_equal (seen.count, 6);
    assert_memory_equal (seen.ids, want, sizeof (want));
    assert_int_equal (arb_journal_commit (j), 0);
    assert_true (j->saving);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "w", 1), 0);  //  a checkpoint
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (5, 9)"), 0);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A read of a task by id whose callback writes (RETRY's) while a save
//  runs: the read waits for the save, so the write goes on from a snapshot
//  after its commit.
static int
s_write_meta (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    (void) row, (void) queue, (void) name;
    return arb_journal_meta_set ((arb_journal_t *) arg, "k2", "x", 1);
}

static void
test_a_read_by_id_that_writes_during_a_save (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_release_later, &lock), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    bool found = false;
    assert_int_equal (arb_journal_load_task (j, 3, s_write_meta, j, &found), 0);
    assert_true (found);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (pthread_join (thread, NULL), 0);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
    zchunk_t *value = NULL;
    assert_int_equal (arb_journal_meta_get (j, "k2", &value), 0);
    assert_non_null (value);
    zchunk_destroy (&value);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  An id floor that s_drop_committed has written ahead (ARB_ID_FLOOR_AHEAD)
#define S_FLOOR 500000
//  The first id above the rows of s_journal_saving (12 to 12 + ARB_LOG_ROWS)
#define S_ABOVE_SAVING (13 + ARB_LOG_ROWS)

//  Drops count ids in turns of 1,024, none of them a row the log keeps:
//  the ten rows of the tables that s_journal_saving wrote (2 to 11), then
//  ids of no task, from S_ABOVE_SAVING on.
static void
s_drop_turns (arb_journal_t *j, uint64_t count)
{
    for (uint64_t k = 0; k < count;) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (uint64_t n = 0; n < 1024 && k < count; n++, k++)
            assert_int_equal (
                arb_journal_drop (j, k < 10 ? 2 + k : S_ABOVE_SAVING + k - 10, S_FLOOR), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
}

//  A checkpoint that falls due while a save runs (here at the drops of
//  rows in the tables: tasks an earlier checkpoint wrote, ending) waits
//  for the save to end, the turns going on to the log meanwhile, rather
//  than hold the loop until it has (up to 150 ms in a batched P2); the
//  first turn after the save's end starts the next save.
static void
test_a_checkpoint_due_during_a_save_waits_for_its_end (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    s_drop_turns (j, ARB_LOG_DROPS);
    uint64_t next = S_ABOVE_SAVING + ARB_LOG_DROPS;  //  above every id dropped
    assert_true (j->checkpoint_due);
    s_log_turn (j, q, next++, 1, 24);
    assert_true (j->saving);  //  not waited for
    assert_true (j->checkpoint_due);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 10);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    s_log_turn (j, q, next++, 1, 24);  //  takes it in, and starts the next
    assert_true (j->saving);
    assert_false (j->checkpoint_due);
    s_wait_save_ended (j);
    s_log_turn (j, q, next++, 1, 24);
    assert_false (j->saving);
    //  the rows of both saves, less the ten of the tables that ended
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 2);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A save that ends while no turn writes (a broker gone idle after a
//  burst) is taken in at the next turn all the same, one with nothing to
//  commit (no transaction, or one that only read): the rows it wrote,
//  kept until then, go from memory.
static void
s_save_ended_while_idle (const char *path, bool reads)
{
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (path, q, &lock);
    assert_int_equal (j->frozen_held, ARB_LOG_ROWS);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    assert_true (j->saving);  //  not taken in: no turn since
    if (reads) {
        assert_int_equal (arb_journal_begin (j), 0);
        zchunk_t *value = NULL;
        assert_int_equal (arb_journal_meta_get (j, "k", &value), 0);
        zchunk_destroy (&value);
        assert_true (j->saving);  //  that read ran beside it
    }
    assert_int_equal (arb_journal_commit (j), 0);
    assert_false (j->saving);
    assert_int_equal (j->held_count, 1);  //  the row kept after the save's
    assert_int_equal (s_count_rows (path, "SELECT count(*) FROM tasks"), 10 + ARB_LOG_ROWS);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

static void
test_a_save_ended_while_idle_gives_its_rows_back (void **state)
{
    s_save_ended_while_idle (((s_fixture_t *) *state)->path, false);
}

static void
test_a_save_ended_before_a_turn_that_only_reads (void **state)
{
    s_save_ended_while_idle (((s_fixture_t *) *state)->path, true);
}

//  ... but not past ARB_LOG_PAST_SAVE times its bound: the turn that
//  reaches that waits for the save (here until a lock held elsewhere goes,
//  after 300 ms), and starts the next.
static void
test_a_checkpoint_far_past_due_waits_for_the_save (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_release_later, &lock), 0);
    s_drop_turns (j, ARB_LOG_PAST_SAVE * ARB_LOG_DROPS);
    //  the last turn took the first save in and started another, of the
    //  drops of every turn before it
    assert_true (j->saving);
    assert_false (j->checkpoint_due);
    assert_int_equal (j->frozen_drops, ARB_LOG_PAST_SAVE * ARB_LOG_DROPS - 1024);
    assert_int_equal (pthread_join (thread, NULL), 0);
    s_wait_save_ended (j);
    s_log_turn (j, q, S_ABOVE_SAVING + ARB_LOG_PAST_SAVE * ARB_LOG_DROPS, 1, 24);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 1);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Asks for each task the sweep finds whether it has children (as the
//  broker's s_final_goes does), and lets it go.
typedef struct {
    arb_journal_t *j;
    int calls, failed;
} s_sweep_t;

static bool
s_read_children (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    (void) queue;
    (void) state;
    s_sweep_t *sweep = (s_sweep_t *) arg;
    sweep->calls++;
    if (has_children) {
        arb_vec_t children = {0};
        if (arb_journal_children (sweep->j, id, &children))
            sweep->failed++;
        arb_vec_free (&children);
    }
    return false;
}

//  The retention sweep's search runs beside a save, and what it asks of a
//  task it found (its children) waits for the save: that read comes after
//  the search has ended, so it never shares the search's snapshot from
//  before the save's commit (a write from it would fail, and the journal
//  with it). In a turn's transaction and outside one.
static void
s_sweep_beside_a_save (const char *path, bool in_txn)
{
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_drop_committed (j, 1);
    assert_int_equal (arb_journal_begin (j), 0);
    arb_task_t *t = s_task (q, 2, ARB_STATE_READY);
    t->attempts = t->delivered = 1;
    t->has_children = true;
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 500, NULL, NULL, NULL, 1000), 0);
    s_task_free (&t);
    assert_int_equal (arb_journal_commit (j), 0);
    sqlite3 *lock;
    s_start_saving (j, path, q, 3, &lock);
    s_id_rows (j, q, 4 + ARB_LOG_ROWS, 1, false);  //  a row kept after the save's
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_release_later, &lock), 0);
    if (in_txn)
        assert_int_equal (arb_journal_begin (j), 0);
    s_sweep_t sweep = {j, 0, 0};
    assert_int_equal (arb_journal_purge (j, 1000, 100, 9, 0, s_read_children, &sweep), 1);
    assert_int_equal (sweep.calls, 1);
    assert_int_equal (sweep.failed, 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
    assert_int_equal (pthread_join (thread, NULL), 0);
    arb_journal_destroy (&j);
    assert_int_equal (s_count_rows (path, "SELECT count(*) FROM tasks WHERE id = 2"), 0);
    assert_int_equal (s_count_rows (path, "SELECT count(*) FROM tasks"), ARB_LOG_ROWS + 2);
    arb_queue_destroy (&q);
}

static void
test_the_sweep_beside_a_save (void **state)
{
    s_sweep_beside_a_save (((s_fixture_t *) *state)->path, false);
}

static void
test_the_sweep_beside_a_save_in_a_turn (void **state)
{
    s_sweep_beside_a_save (((s_fixture_t *) *state)->path, true);
}

//  A read of the cold backlog does not wait for a save that runs (a large
//  one would hold the loop as long as it writes): the save's rows come
//  from memory, after the tables' older ones. A read from a snapshot
//  taken before the save committed still sees each row once; the next
//  statement that writes takes the save in, and its transaction, which
//  had only read, begins again rather than write from that old snapshot
//  (SQLite would refuse).
static void
test_a_backlog_read_goes_on_beside_a_save (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    assert_int_equal (arb_journal_begin (j), 0);
    s_expect_backlog (j, 20, 2);
    assert_true (j->saving);  //  not waited for
    s_release_lock (&lock);
    s_wait_save_ended (j);
    s_expect_backlog (j, 20, 2);  //  the snapshot from before the commit
    assert_int_equal (arb_journal_meta_set (j, "k", "w", 1), 0);
    assert_false (j->saving);
    s_expect_backlog (j, 20, 2);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 10 + ARB_LOG_ROWS + 1);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A read beside a save that has committed but is not taken in yet: the
//  tables have the save's rows, and memory still holds them; each is read
//  once.
static void
test_a_backlog_read_beside_a_save_just_committed (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 10 + ARB_LOG_ROWS);
    assert_int_equal (arb_journal_begin (j), 0);
    s_expect_backlog (j, 20, 2);
    assert_true (j->saving);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Turns of random inserts and drops, some to the log and some to the
//  tables (another write), with reads of the backlog in reads of random
//  sizes before and after the turn's other write: always q's live rows in
//  the backlog's order, as a model of them says. With mixed priorities the
//  rows held are taken and sorted; with one (all 0, then all 1: the rows
//  held of one priority, before, at and after the read's position) they
//  are walked in order from the position (arb_journal_batch_beside).
static void
s_backlog_model (void **state, bool mixed)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_queue_t *other = arb_queue_new ("other", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    enum {
        ROWS = 900
    };
    int32_t priority[ROWS + 1];
    bool alive[ROWS + 1] = {false}, in_q[ROWS + 1];
    uint64_t next = 1;
    srand (20261203);
    s_ids_t seen;
    while (next + 10 < ROWS) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (int n = rand () % 8; n > 0; n--, next++) {
            arb_task_t *t = s_task (rand () % 5 ? q : other, next, ARB_STATE_READY);
            t->priority = priority[next] = mixed ? rand () % 5 - 2 : next > ROWS / 2;
            in_q[next] = t->queue == q;
            alive[next] = true;
            zframe_t *body = zframe_new (&next, 8);
            arb_journal_row_t row = {.payload = body};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            zframe_destroy (&body);
            s_task_free (&t);
        }
        for (int n = rand () % 6; n > 0; n--) {
            uint64_t id = 1 + (uint64_t) rand () % (next - 1);
            if (alive[id]) {
                assert_int_equal (arb_journal_drop (j, id, next), 0);
                alive[id] = false;
            }
        }
        bool tables = rand () % 6 == 0;
        for (int read = 0; read < 1 + tables; read++) {
            if (read)
                assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
            s_backlog_ids (j, 1 + (size_t) rand () % 40, &seen);
            size_t at = 0;
            for (int p = 2; p >= -2; p--)
                for (uint64_t id = 1; id < next; id++)
                    if (alive[id] && in_q[id] && priority[id] == p) {
                        assert_true (at < seen.count);
                        assert_int_equal (seen.ids[at++], id);
                    }
            assert_int_equal (at, seen.count);
        }
        assert_int_equal (arb_journal_commit (j), 0);
    }
    //  and the tables, after a clean close, have the same
    arb_journal_destroy (&j);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    s_ids_t again;
    s_backlog_ids (j, 1000, &again);
    assert_int_equal (again.count, seen.count);
    assert_memory_equal (again.ids, seen.ids, seen.count * sizeof (uint64_t));
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
    arb_queue_destroy (&other);
}

static void
test_the_backlog_beside_the_log_matches_a_model (void **state)
{
    s_backlog_model (state, true);
}

static void
test_a_backlog_of_one_priority_beside_the_log_matches_a_model (void **state)
{
    s_backlog_model (state, false);
}

//  A row as the task log holds it (arb_journal_batch.c's s_row_t), to
//  make records no broker writes.
typedef struct {
    uint64_t id, created_ms;
    int64_t max_attempts;
    int32_t state, priority;
    uint32_t queue_size, name_size, headers_size, payload_size, unwatched, pad;
} s_log_row_t;

//  Takes the records of the generation at arg, as the replay does.
static int
s_of_gen (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    (void) body, (void) size;
    return gen == *(uint64_t *) arg ? 0 : 1;
}

//  Appends to a journal's log a record of the tables' generation with one
//  row of queue "q", this name and state.
static void
s_log_row (arb_journal_t *j, const char *path, const char *name, int32_t state)
{
    uint64_t gen = 0;
    assert_int_equal (arb_journal_meta_number (j, "broker.log_gen", &gen), 0);
    char log[200];
    snprintf (log, sizeof (log), "%s" ARB_JOURNAL_LOG_SUFFIX, path);
    arb_tasklog_t *tasklog = arb_tasklog_new (log, true);
    assert_non_null (tasklog);
    assert_int_equal (arb_tasklog_read (tasklog, s_of_gen, &gen), 0);
    uint32_t counts[2] = {1, 0};
    s_log_row_t row = {.id = 50,
                       .created_ms = 1,
                       .max_attempts = 1,
                       .state = state,
                       .queue_size = 1,
                       .name_size = (uint32_t) strlen (name),
                       .headers_size = UINT32_MAX};
    char bytes[512] = "q";
    memcpy (bytes + 1, name, row.name_size);
    arb_tasklog_part_t parts[] = {
        {counts, sizeof (counts)}, {&row, sizeof (row)}, {bytes, (1 + row.name_size + 7) & ~7u}};
    assert_int_equal (arb_tasklog_append (tasklog, gen, parts, 3, true), 0);
    arb_tasklog_destroy (&tasklog);
}

//  A record with a sound checksum whose row the broker could not hold (a
//  name too long or with a control character, a state a plain row never
//  has) stops the start with an error: the log is not guessed at.
static void
test_the_task_log_refuses_rows_it_cannot_hold (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    s_drop_committed (j, 10);  //  a checkpoint: the tables have a generation
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    char long_name[300];
    memset (long_name, 'n', sizeof (long_name) - 1);
    long_name[sizeof (long_name) - 1] = 0;
    struct {
        const char *name;
        int32_t state;
        bool opens;
    } cases[] = {{"job", ARB_STATE_READY, true},
                 {long_name, ARB_STATE_READY, false},
                 {"j\x01ob", ARB_STATE_READY, false},
                 {"job", 99, false}};
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        journal_files_copy_journal (fx->path, copy);
        s_log_row (j, copy, cases[i].name, cases[i].state);
        arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
        assert_int_equal (c != NULL, cases[i].opens);
        if (c)
            assert_true (s_has_task (c, 50));
        arb_journal_destroy (&c);
    }
    arb_journal_destroy (&j);
}

//  With --sync normal a checkpoint has SQLite sync its WAL before the
//  log's records are overwritten; when that sync fails the old records
//  stay, and the log pauses: the next turn goes to the tables (a record
//  after the old ones would be past the replay's end), until a
//  checkpoint's sync works.
static void
test_the_task_log_waits_for_the_wal_under_sync_normal (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    s_drop_committed (j, 10);  //  the id floor, written ahead
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 1, 50, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 1"), 0);
    //  a checkpoint whose WAL sync fails: its commit stands
    s_disk ("fsync");
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    s_disk ("");
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 1"), 1);
    //  the next plain turn goes to the tables, and a crash after it keeps it
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 2"), 1);
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_NORMAL);
    assert_non_null (c);
    assert_true (s_has_task (c, 1) && s_has_task (c, 2));
    arb_journal_destroy (&c);
    //  that checkpoint's sync worked: the log takes turns again
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 3"), 0);
    assert_true (s_log_size (fx->path) > 0);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A record cut short or damaged ends the replay: the records before it
//  are read back, it and those after it are not (none was acknowledged:
//  a reply waits for the sync of its record, and records are appended in
//  order). Records of a generation a checkpoint took are skipped, so a
//  crash between a checkpoint's commit and the log's cut brings back
//  nothing that a later turn removed.
static void
test_the_task_log_replay_stops_at_a_bad_record (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    s_drop_committed (j, 100);  //  the id floor, written ahead
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 1, 50, 'a');
    s_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    long first = s_log_size (fx->path);
    char saved[160];
    snprintf (saved, sizeof (saved), "%s/saved-log", fx->dir);
    char log[200];
    snprintf (log, sizeof (log), "%s" ARB_JOURNAL_LOG_SUFFIX, fx->path);
    journal_files_copy (log, saved);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    char copy[160], copy_log[180];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    snprintf (copy_log, sizeof (copy_log), "%s" ARB_JOURNAL_LOG_SUFFIX, copy);
    //  a torn tail: bytes of a record that never got whole
    journal_files_copy_journal (fx->path, copy);
    long end = s_log_size (copy);
    FILE *f = fopen (copy_log, "r+b");
    assert_non_null (f);
    assert_int_equal (fseek (f, end, SEEK_SET), 0);
    fwrite ("ARBLxxxxxxxx", 1, 12, f);
    fclose (f);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (1, 2, 3)"), 3);
    arb_journal_destroy (&c);
    //  a byte of the second record changed: the first alone is read
    journal_files_copy_journal (fx->path, copy);
    f = fopen (copy_log, "r+b");
    assert_non_null (f);
    assert_int_equal (fseek (f, first + 40, SEEK_SET), 0);
    fputc ('!', f);
    fclose (f);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (1, 2)"), 2);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id = 3"), 0);
    arb_journal_destroy (&c);
    //  a checkpoint takes 1 to 3, then a turn with another write removes
    //  1; the log as it was before the checkpoint, left by a crash before
    //  the cut, brings nothing back
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 1, 3), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "w", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    journal_files_copy_journal (fx->path, copy);
    journal_files_copy (saved, copy_log);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id = 1"), 0);
    assert_int_equal (s_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 2);
    arb_journal_destroy (&c);
    arb_journal_destroy (&j);
    //  a log beside a journal that is not there any more is refused
    char lone[160];
    snprintf (lone, sizeof (lone), "%s/lone.db", fx->dir);
    char lone_log[200];
    snprintf (lone_log, sizeof (lone_log), "%s" ARB_JOURNAL_LOG_SUFFIX, lone);
    journal_files_copy (saved, lone_log);
    assert_null (arb_journal_new (lone, ARB_SYNC_FULL));
    arb_queue_destroy (&q);
}

//  A failed append (a full disk, a failed sync) fails the turn and leaves
//  no record; the turns after it go to the tables until a checkpoint has
//  committed, which takes the log's rows; then the log takes turns again.
//  With the log off, every turn goes to the tables.
static void
test_the_task_log_on_a_failing_disk (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 1, 50, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    //  the log's own append fails (the first mode), then the tables' commit
    //  (the log is paused): a failed WAL sync may leave its frames, which
    //  a copy of the files would read, so the copy is taken after the first
    const char *modes[] = {"full", "ioerr", "fsync"};
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    for (size_t i = 0; i < 3; i++) {
        s_disk (modes[i]);
        assert_int_equal (arb_journal_begin (j), 0);
        s_held (j, q, 2, 50, 'b');
        assert_int_equal (arb_journal_commit (j), -1);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        assert_int_equal (arb_journal_rollback (j), 0);
        s_disk ("");
        if (i == 0) {
            journal_files_copy_journal (fx->path, copy);
            arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
            assert_true (s_has_task (c, 1));
            assert_false (s_has_task (c, 2));
            arb_journal_destroy (&c);
        }
    }
    //  paused: the next turn goes to the tables, with the log's row
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  and the log takes turns again
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  off: the next turn writes the tables (with what the log held)
    arb_journal_set_log (j, false);
    assert_int_equal (arb_journal_begin (j), 0);
    s_held (j, q, 4, 50, 'd');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_count_rows (fx->path, "SELECT count(*) FROM tasks"), 4);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    char control[64];
    snprintf (control, sizeof (control), "/tmp/arb-journal-faults-%d", (int) getpid ());
    setenv (ARB_JOURNAL_FAULTS_ENV, control, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_foreign_files_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_short_and_damaged_journals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_faults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_fault_within_a_transaction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_committed_tasks_survive_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_wal_is_copied_on_a_thread, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_checkpoint_on_the_saver, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kept_rows_give_their_memory_back, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_stays_in_the_log_until_its_bytes_are_due,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_backlog_streams_past_the_id_floor_without_the_tables, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_save, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_second_file_after_a_crash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_without_drops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_waits_for_the_save, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_row_bins_stored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unwatched_survives_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_final_states_and_history, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_list_final_pages, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_meta_and_epoch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_second_broker_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_newer_schema_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_purge_takes_history_and_edges, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_purge_keeps_what_it_is_told, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_id_floor_is_written_ahead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_id_is_given_twice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_plain_row_is_a_full_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_turn_writes_in_batches, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_batch_the_disk_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_batch_statement_that_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_write_after_a_held_row_finds_it, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_full_list_of_drops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_queue_in_bulk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_meta_pages, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_meta_compare_and_set, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_4_counts_deliveries, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_5_reads_ready_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_schedules, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_1_is_migrated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_6_is_migrated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_7_is_migrated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_9_counts_copies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_history_is_bounded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_2_is_migrated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version_3_is_migrated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_rows_are_not_trusted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_ids_are_skipped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_meta_keys_are_skipped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_queue_settings_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_holds_plain_turns, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_replay_stops_at_a_bad_record, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_on_a_failing_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_backlog_is_read_beside_the_task_log, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_backlog_beside_the_log_matches_a_model, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_backlog_of_one_priority_beside_the_log_matches_a_model, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_by_id_needs_no_view, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_row_the_log_holds_answers_as_the_tables_do, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_sweep_beside_a_save, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_sweep_beside_a_save_in_a_turn, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_checkpoint_due_during_a_save_waits_for_its_end,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_ended_while_idle_gives_its_rows_back, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_ended_before_a_turn_that_only_reads, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_checkpoint_far_past_due_waits_for_the_save, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_read_goes_on_beside_a_save, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_drop_kept_during_a_save_stays, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_by_id_that_writes_during_a_save, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_read_beside_a_save_just_committed, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_refuses_rows_it_cannot_hold, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_waits_for_the_wal_under_sync_normal,
                                         s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests_name ("journal", tests, NULL, NULL);
    unlink (control);
    return rc;
}
