/*  test_journal.c — the SQLite journal on real files: what is committed
    survives a reopen, what is not does not, and the bookkeeping around it;
    files it must refuse (not a database, another program's, newer, cut
    short, damaged), and a disk that fails its writes (through the test
    VFS, arb_journal_faults.h). The task log and its checkpoints are
    test_journal_log.c's. */

#include "arb_journal.h"
#include "arb_journal_priv.h"  //  ARB_JOURNAL_CACHE_KB: the cache a test fills
#include "arb_queue.h"
#include "arb_settings.h"
#include "journal_kit.h"
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sqlite3.h>

typedef tmpdir_fixture_t s_fixture_t;

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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        zframe_t *payload = zframe_new ("abc", 3);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    //  a fourth, never committed
    assert_int_equal (arb_journal_begin (j), 0);
    arb_task_t *t = journal_kit_task_new (q, 4, ARB_STATE_READY);
    arb_journal_row_t none = {0};
    assert_int_equal (arb_journal_insert (j, t, &none), 0);
    journal_kit_task_destroy (&t);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 3);
    //  a queue's tasks come by priority, highest first (journal_kit_task_new: priority = id)
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
    arb_task_t *t = journal_kit_task_new (q, 1, ARB_STATE_READY);
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
    arb_task_t *child = journal_kit_task_new (q, 2, ARB_STATE_WAITING);
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
    journal_kit_task_destroy (&child);
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
    journal_kit_task_destroy (&t);
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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {.payload = payload};
        if (id == 1) {  //  keyed, with arguments: the full statement
            row.key = "k1";
            row.headers = (arb_bin_t){(const uint8_t *) "hdr", 3};
            row.args = (arb_bin_t){(const uint8_t *) "args", 4};
        }
        else if (id == 2)  //  plain, with headers
            row.headers = (arb_bin_t){(const uint8_t *) "h2", 2};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        journal_kit_task_destroy (&t);
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
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE args IS NULL"), 2);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE headers IS NULL"), 1);
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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        t->unwatched = id % 2 == 1;
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT sum (id) FROM tasks WHERE unwatched = 1"), 1 + 3);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE unwatched = 0"), 2);

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
    arb_task_t *t = journal_kit_task_new (q, 1, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    s_add_attempt (j, 1, "lost");
    for (uint32_t n = 1; n <= 40; n++)
        s_add_attempt (j, n, "boom");
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count (*) FROM attempts"),
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
    journal_kit_task_destroy (&t);
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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {0};
        arb_journal_insert (j, t, &row);
        int final = id % 2 ? ARB_STATE_SUCCEEDED : ARB_STATE_DEAD;
        if (id != 10)
            arb_journal_save (j, t, final, 5000, NULL, NULL, NULL, 1);
        journal_kit_task_destroy (&t);
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
    journal_kit_log_t log;
    journal_kit_log_start (&log);
    arb_journal_t *j = arb_journal_new (path, ARB_SYNC_NORMAL);
    char *text = journal_kit_log_end (&log);
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
        arb_task_t *t = journal_kit_task_new (queue, first + (uint64_t) i, ARB_STATE_READY);
        zframe_t *frame = zframe_new (payload, size);
        arb_journal_row_t row = {.payload = frame};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&frame);
        journal_kit_task_destroy (&t);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 1200);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    arb_journal_set_log (j, false);
    for (int turn = 12; turn < 24; turn++)
        s_fill (j, q, 1 + (uint64_t) turn * 100, 100, 8000);
    assert_int_equal (arb_journal_backfills (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2400);
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
    journal_kit_log_t log;
    journal_kit_log_start (&log);
    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    int rc = j ? arb_journal_load_open (j, s_collect, &(s_seen_t){0}) : -1;
    char *text = journal_kit_log_end (&log);
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
        journal_kit_disk (modes[m]);
        assert_int_equal (arb_journal_begin (j), 0);
        arb_task_t *t = journal_kit_task_new (queue, id, ARB_STATE_READY);
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);  //  in the cache yet
        assert_int_equal (arb_journal_commit (j), -1);
        assert_false (arb_journal_in_txn (j));
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        //  nothing is written after the failure, not even a new transaction
        assert_int_equal (arb_journal_begin (j), -1);
        assert_int_equal (arb_journal_rollback (j), 0);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
        assert_false (journal_kit_has_task (j, id));
        assert_true (journal_kit_has_task (j, 1));
        //  the disk still fails: so does the probe, leaving nothing
        assert_int_equal (arb_journal_probe (j), -1);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        assert_false (arb_journal_in_txn (j));
        journal_kit_disk ("");
        assert_int_equal (arb_journal_probe (j), 0);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_SOUND);
        zchunk_t *probe = NULL;
        assert_int_equal (arb_journal_meta_get (j, "broker.probe", &probe), 0);
        assert_null (probe);
        //  and the journal takes the same write now
        assert_int_equal (arb_journal_begin (j), 0);
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        assert_int_equal (arb_journal_commit (j), 0);
        assert_true (journal_kit_has_task (j, id));
        journal_kit_task_destroy (&t);
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
    journal_kit_disk ("full");
    assert_int_equal (arb_journal_begin (j), 0);
    int rc = 0;
    char *payload = (char *) calloc (1, 1 << 20);
    //  MiB rows, past the page cache (ARB_JOURNAL_CACHE_KB)
    const uint64_t rows = ARB_JOURNAL_CACHE_KB / 1024 + 8;
    for (uint64_t id = 1; id <= rows && rc == 0; id++) {
        arb_task_t *t = journal_kit_task_new (queue, id, ARB_STATE_READY);
        zframe_t *frame = zframe_new (payload, 1 << 20);
        arb_journal_row_t row = {.payload = frame};
        rc = arb_journal_insert (j, t, &row);
        zframe_destroy (&frame);
        journal_kit_task_destroy (&t);
    }
    free (payload);
    assert_int_equal (rc, -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    journal_kit_disk ("");
    for (uint64_t id = 1; id <= rows; id++)
        assert_false (journal_kit_has_task (j, id));
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
            arb_task_t *t = journal_kit_task_new (q, ++next, ARB_STATE_READY);
            arb_journal_row_t row = {0};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            journal_kit_task_destroy (&t);
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
                journal_kit_disk ("full");
                lost = arb_journal_commit (j) != 0;
                journal_kit_disk ("");
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
    arb_task_t *t =
        journal_kit_task_new (q, id, state < ARB_STATE_SUCCEEDED ? state : ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    if (state >= ARB_STATE_SUCCEEDED)
        assert_int_equal (arb_journal_save (j, t, state, 500, NULL, NULL, NULL, purge_at), 0);
    journal_kit_task_destroy (&t);
}

static int
s_state_of (arb_journal_t *j, uint64_t id)
{
    int state;
    assert_int_equal (arb_journal_state (j, id, &state, NULL, 0), 0);
    return state;
}

//  Keeps the parents (as the broker does while their children have not
//  ended), counting the others.
static bool
s_keep_parents (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    journal_kit_count_purged (arg, id, queue, state, has_children);
    return has_children;
}

//  Rows of history and edges left in the journal (they must go with their
//  task).
static int
s_rows_left (const char *path)
{
    return journal_kit_count_rows (
        path, "SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM deps)");
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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
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
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (s_rows_left (fx->path), 3);
    int purged = 0;
    assert_int_equal (arb_journal_purge (j, 1004, 100, 9, 0, journal_kit_count_purged, &purged), 4);
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
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        t->attempts = t->delivered = 1;
        t->has_children = id == 2;
        arb_journal_row_t row = {0};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 500, NULL, NULL, NULL, 1000),
                          0);
        journal_kit_task_destroy (&t);
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
    assert_int_equal (arb_journal_purge (j, 5000, 100, 9, 0, journal_kit_count_purged, &seen), 1);
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
        arb_task_t *t = journal_kit_task_new (q, 1, ARB_STATE_READY);
        t->id = id;
        t->unwatched = true;
        arb_journal_row_t row = {.payload = id == 3 ? big_payload : payload, .headers = headers};
        if (id == 2)
            row.key = "k";
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        journal_kit_task_destroy (&t);
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
            assert_true (
                journal_kit_has_task (j, 76));  //  a read writes what is held first, rows first
            assert_false (journal_kit_has_task (j, 77));
            assert_false (journal_kit_has_task (j, 38));
        }
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        char body[16], head[16];
        snprintf (body, sizeof (body), "p%" PRIu64, id);
        snprintf (head, sizeof (head), "h%" PRIu64, id);
        zframe_t *payload = zframe_new (body, strlen (body));
        arb_bin_t headers = {id % 2 ? (const uint8_t *) head : NULL, id % 2 ? strlen (head) : 0};
        arb_journal_row_t row = {.payload = payload, .headers = headers};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);  //  the journal kept its own copy
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    //  rolled back: neither the rows held nor the drop
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 100; id < 103; id++) {
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        zframe_t *payload = zframe_new ("x", 1);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&payload);
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_drop (j, 1, 100), 0);
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    for (uint64_t id = 1; id <= 102; id++) {
        bool gone = id == 7 || id == 38 || id == 77 || id > 78;
        assert_int_equal (journal_kit_has_task (j, id), !gone);
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
    journal_kit_disk ("full");
    assert_int_equal (arb_journal_begin (j), 0);
    zframe_t *payload = zframe_new ("x", 1);
    for (uint64_t id = 10; id < 15; id++) {
        arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
        arb_journal_row_t row = {.payload = payload};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);  //  held
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_drop (j, 1, 100), 0);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
    assert_int_equal (arb_journal_rollback (j), 0);
    journal_kit_disk ("");
    for (uint64_t id = 10; id < 15; id++)
        assert_false (journal_kit_has_task (j, id));
    assert_true (journal_kit_has_task (j, 1));
    zframe_destroy (&payload);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
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
    journal_kit_held (j, q, 5, 3, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    //  at commit
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 6, 3, 'b');
    journal_kit_held (j, q, 5, 3, 'c');  //  held: no failure yet
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    assert_false (arb_journal_in_txn (j));
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_false (journal_kit_has_task (j, 6));
    //  at a read
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 6, 3, 'b');
    journal_kit_held (j, q, 5, 3, 'c');
    bool found = true;
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_task (j, 6, s_collect, &seen, &found), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    arb_task_t *t = journal_kit_task_new (q, 7, ARB_STATE_READY);
    zframe_t *p = zframe_new ("x", 1);
    arb_journal_row_t row = {.payload = p};
    assert_int_equal (arb_journal_insert (j, t, &row), -1);  //  nothing after a fault
    assert_int_equal (arb_journal_drop (j, 5, 100), -1);
    zframe_destroy (&p);
    journal_kit_task_destroy (&t);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    //  at the 33rd row
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 5, 3, 'c');
    for (uint64_t id = 10; id < 41; id++)
        journal_kit_held (j, q, id, 3, 'd');
    t = journal_kit_task_new (q, 41, ARB_STATE_READY);
    p = zframe_new ("x", 1);
    row.payload = p;
    assert_int_equal (arb_journal_insert (j, t, &row), -1);
    zframe_destroy (&p);
    journal_kit_task_destroy (&t);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    //  and the journal goes on
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = 10; id < 60; id++)
        journal_kit_held (j, q, id, 9000, (char) ('A' + id % 26));  //  the bytes grow by realloc
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
    journal_kit_held (j, q, 1, 3, 'a');
    arb_task_t *t = journal_kit_task_new (q, 1, ARB_STATE_READY);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 3000, "w", "", NULL, 9999), 0);
    journal_kit_task_destroy (&t);
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
        journal_kit_held (j, q, id, 3, 'a');
    for (uint64_t id = 1; id <= 31; id++)  //  32 drops held, ten of them of rows held
        assert_int_equal (arb_journal_drop (j, id, 600), 0);
    journal_kit_held (j, q, 41, 3, 'b');
    assert_int_equal (arb_journal_drop (j, 42, 600), 0);  //  the 33rd: the batch is written
    assert_int_equal (arb_journal_commit (j), 0);
    for (uint64_t id = 1; id <= 10; id++)
        assert_false (journal_kit_has_task (j, id));
    assert_true (journal_kit_has_task (j, 41));
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Inserts a task of that id and commits it.
static void
s_insert_committed (arb_journal_t *j, arb_queue_t *q, uint64_t id)
{
    arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    journal_kit_task_destroy (&t);
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
    assert_int_equal (journal_kit_id_floor (j), 3 + ARB_ID_FLOOR_AHEAD);
    //  later tasks below the floor leave without writing it
    for (uint64_t id = 4; id <= 50; id++) {
        s_insert_committed (j, q, id);
        assert_int_equal (arb_journal_drop (j, id, id), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
    uint64_t removed[] = {1, 2};
    assert_int_equal (arb_journal_remove (j, removed, 2, 50), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_id_floor (j), 3 + ARB_ID_FLOOR_AHEAD);
    //  one beyond it moves it on
    uint64_t beyond = 4 + ARB_ID_FLOOR_AHEAD;
    s_insert_committed (j, q, beyond);
    assert_int_equal (arb_journal_drop (j, beyond, beyond), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_id_floor (j), beyond + ARB_ID_FLOOR_AHEAD);
    //  a floor in a transaction rolled back was not written
    s_insert_committed (j, q, 2 * beyond + ARB_ID_FLOOR_AHEAD);
    assert_int_equal (arb_journal_drop (j, 2 * beyond + ARB_ID_FLOOR_AHEAD, 2 * beyond), 0);
    assert_int_equal (arb_journal_rollback (j), 0);
    assert_int_equal (journal_kit_id_floor (j), beyond + ARB_ID_FLOOR_AHEAD);
    arb_journal_destroy (&j);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    uint64_t max = 0;
    assert_int_equal (arb_journal_max_id (j, &max), 0);
    assert_int_equal (max, 2 * beyond + ARB_ID_FLOOR_AHEAD);  //  the row rolled back stays
    //  this process has written no floor yet: its first removal writes one
    assert_int_equal (arb_journal_drop (j, max, max), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_id_floor (j), max + ARB_ID_FLOOR_AHEAD);
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
    arb_task_t *t = journal_kit_task_new (q, 5, ARB_STATE_READY);
    arb_task_ext_rw (t)->retention_ms = 100;
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    journal_kit_task_destroy (&t);
    s_store (j, q, 6, ARB_STATE_SCHEDULED, 0);
    //  task 7 waits for 9 (its row counts the parent, as the broker's do)
    t = journal_kit_task_new (q, 7, ARB_STATE_WAITING);
    arb_task_ext_rw (t)->parents = 1;
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    journal_kit_task_destroy (&t);
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
    assert_int_equal (arb_journal_purge (j, 10100, 100, 9, 0, journal_kit_count_purged, &purged),
                      1);
    assert_int_equal (s_state_of (j, 5), 0);
    assert_int_equal (arb_journal_purge (j, 10499, 100, 9, 0, journal_kit_count_purged, &purged),
                      0);
    assert_int_equal (arb_journal_purge (j, 10500, 100, 9, 0, journal_kit_count_purged, &purged),
                      5);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "PRAGMA user_version"), 10);
    assert_int_equal (journal_kit_count_rows (fx->path,
                                              "SELECT count (*) FROM sqlite_master WHERE name = "
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
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE queue = 'q'"), 0);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE queue = 'r'"), 2);
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
    arb_task_t *old = journal_kit_task_new (q, 1, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, old, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    s_sqlite_file (fx->path, s_to_version_7);
    assert_int_equal (journal_kit_count_rows (fx->path,
                                              "SELECT count (*) FROM pragma_table_info ('tasks') "
                                              "WHERE name = 'unwatched'"),
                      0);

    j = arb_journal_new (fx->path, ARB_SYNC_NORMAL);
    assert_non_null (j);
    assert_int_equal (journal_kit_count_rows (fx->path, "PRAGMA user_version"), 10);
    arb_task_t *young = journal_kit_task_new (q, 2, ARB_STATE_READY);
    young->unwatched = true;
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, young, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    s_seen_t seen = {0};
    assert_int_equal (arb_journal_load_open (j, s_collect, &seen), 0);
    assert_int_equal (seen.count, 2);
    //  by priority, highest first (journal_kit_task_new: priority = id)
    assert_int_equal (seen.ids[0], 2);
    assert_true (seen.unwatched[0]);
    assert_int_equal (seen.ids[1], 1);
    assert_false (seen.unwatched[1]);
    arb_journal_destroy (&j);
    journal_kit_task_destroy (&old);
    journal_kit_task_destroy (&young);
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
    arb_task_t *waiting = journal_kit_task_new (q, 1, ARB_STATE_WAITING);
    arb_task_ext_rw (waiting)->copies = 2;
    arb_task_t *copy1 = journal_kit_task_new (at, 2, ARB_STATE_READY);
    arb_task_ext_rw (copy1)->origin = 1;
    arb_task_t *copy2 = journal_kit_task_new (at, 3, ARB_STATE_READY);
    arb_task_ext_rw (copy2)->origin = 1;
    arb_task_t *plain = journal_kit_task_new (q, 4, ARB_STATE_READY);
    arb_journal_row_t row = {0};
    arb_journal_row_t copy_row = {.endpoint = "lb1"};
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_insert (j, waiting, &row), 0);
    assert_int_equal (arb_journal_insert (j, copy1, &copy_row), 0);
    assert_int_equal (arb_journal_insert (j, copy2, &copy_row), 0);
    assert_int_equal (arb_journal_insert (j, plain, &row), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 1"),
                      2);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "PRAGMA user_version"), 10);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 1"),
                      2);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT copies FROM tasks WHERE id = 5"),
                      3);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count (*) FROM tasks WHERE copies > 0"), 2);
    journal_kit_task_destroy (&waiting);
    journal_kit_task_destroy (&copy1);
    journal_kit_task_destroy (&copy2);
    journal_kit_task_destroy (&plain);
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
    arb_task_t *old = journal_kit_task_new (queue, 1, ARB_STATE_READY);
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
    arb_task_t *young = journal_kit_task_new (queue, 2, ARB_STATE_READY);
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
    journal_kit_task_destroy (&old);
    journal_kit_task_destroy (&young);
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
    arb_task_t *task = journal_kit_task_new (queue, 1, ARB_STATE_READY);
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
    journal_kit_task_destroy (&task);
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
    arb_task_t *t = journal_kit_task_new (queue, 1, ARB_STATE_READY);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "PRAGMA user_version"), 10);
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
    journal_kit_task_destroy (&t);
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

int
main (void)
{
    char control[64];
    journal_kit_faults_begin (control, sizeof (control));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_foreign_files_are_refused, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_short_and_damaged_journals, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_disk_faults, journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_disk_fault_within_a_transaction, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_committed_tasks_survive_reopen, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_wal_is_copied_on_a_thread, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_row_bins_stored, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_unwatched_survives_reopen, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_final_states_and_history, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_list_final_pages, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_meta_and_epoch, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_second_broker_is_refused, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_newer_schema_is_refused, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_purge_takes_history_and_edges, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_purge_keeps_what_it_is_told, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_id_floor_is_written_ahead, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_no_id_is_given_twice, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_plain_row_is_a_full_one, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_turn_writes_in_batches, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_batch_the_disk_refuses, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_batch_statement_that_fails, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_write_after_a_held_row_finds_it, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_full_list_of_drops, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_queue_in_bulk, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_meta_pages, journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_meta_compare_and_set, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_4_counts_deliveries, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_5_reads_ready_in_order, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_schedules, journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_1_is_migrated, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_6_is_migrated, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_7_is_migrated, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_9_counts_copies, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_history_is_bounded, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_2_is_migrated, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_version_3_is_migrated, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_rows_are_not_trusted, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_ids_are_skipped, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_meta_keys_are_skipped, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_queue_settings_round_trip, journal_kit_setup,
                                         journal_kit_teardown),
    };
    int rc = cmocka_run_group_tests_name ("journal", tests, NULL, NULL);
    journal_kit_faults_end (control);
    return rc;
}
