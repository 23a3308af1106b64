/*  journal_kit.c — what the journal's unit tests share; see
    journal_kit.h. */

#include "journal_kit.h"
#include "arb_journal_faults.h"
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <czmq.h>
#include <sqlite3.h>

int
journal_kit_setup (void **state)
{
    return tmpdir_fixture (state, "journal", "sub/j.db");
}

int
journal_kit_teardown (void **state)
{
    return tmpdir_fixture_end (state);
}

void
journal_kit_faults_begin (char *control, size_t size)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    snprintf (control, size, "/tmp/arb-journal-faults-%d", (int) getpid ());
    setenv (ARB_JOURNAL_FAULTS_ENV, control, 1);
}

void
journal_kit_faults_end (const char *control)
{
    unlink (control);
}

void
journal_kit_disk (const char *mode)
{
    FILE *f = fopen (getenv (ARB_JOURNAL_FAULTS_ENV), "w");
    assert_non_null (f);
    fputs (mode, f);
    fclose (f);
}

arb_task_t *
journal_kit_task_new (arb_queue_t *queue, uint64_t id, int state)
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

void
journal_kit_task_destroy (arb_task_t **task_p)
{
    arb_task_free_ext (*task_p);
    free (*task_p);
    *task_p = NULL;
}

void
journal_kit_held (arb_journal_t *j, arb_queue_t *q, uint64_t id, size_t size, char fill)
{
    arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
    char *body = (char *) malloc (size);
    memset (body, fill, size);
    zframe_t *payload = zframe_new (body, size);
    free (body);
    arb_journal_row_t row = {.payload = payload};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    zframe_destroy (&payload);
    journal_kit_task_destroy (&t);
}

int
journal_kit_count_rows (const char *path, const char *sql)
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

//  arb_journal_load_task's callback for journal_kit_has_task: the tests'
//  tasks are of queue "q" and named "job".
static int
s_found (void *arg, arb_task_t *task, const char *queue, const char *name)
{
    (void) arg;
    (void) task;
    assert_string_equal (queue, "q");
    assert_string_equal (name, "job");
    return 0;
}

bool
journal_kit_has_task (arb_journal_t *j, uint64_t id)
{
    bool found = false;
    assert_int_equal (arb_journal_load_task (j, id, s_found, NULL, &found), 0);
    return found;
}

uint64_t
journal_kit_id_floor (arb_journal_t *j)
{
    uint64_t floor = 0;
    assert_int_equal (arb_journal_meta_number (j, "broker.id_floor", &floor), 0);
    return floor;
}

bool
journal_kit_count_purged (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    (void) id;
    (void) queue;
    (void) state;
    (void) has_children;
    (*(int *) arg)++;
    return false;
}

void
journal_kit_log_start (journal_kit_log_t *log)
{
    memset (log, 0, sizeof (*log));
    log->stream = open_memstream (&log->text, &log->size);
    zsys_set_logstream (log->stream);
}

char *
journal_kit_log_end (journal_kit_log_t *log)
{
    zsys_set_logstream (stderr);
    fclose (log->stream);
    fputs (log->text, stderr);
    return log->text;
}
