/*  test_journal_log.c — the journal's task log (arb_tasklog.h,
    arb_journal_batch.c) on real files: the turns it holds and their
    replay, checkpoints on the saver's thread and what runs beside them,
    the cold backlog read beside the log, and a disk that fails under it
    (through the test VFS, arb_journal_faults.h). The rest of the journal
    is test_journal.c's. */

#include "arb_journal.h"
#include "arb_journal_priv.h"  //  its limits (ARB_LOG_ROWS): when a checkpoint falls due
#include "arb_queue.h"
#include "arb_tasklog.h"
#include "journal_files.h"
#include "journal_kit.h"
#include "tmpdir.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sqlite3.h>

typedef tmpdir_fixture_t s_fixture_t;

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
    journal_kit_held (j, q, 1, 100, 'a');
    journal_kit_held (j, q, 2, 100, 'b');
    journal_kit_held (j, q, 3, 100, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
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
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    //  then rows and drops to the log: 1 is in the tables, 4 only in the log
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 4, 100, 'd');
    journal_kit_held (j, q, 5, 100, 'e');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 1, 5), 0);
    assert_int_equal (arb_journal_drop (j, 4, 5), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
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
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"), 2);
    assert_int_equal (
        journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (3, 5)"), 2);
    arb_journal_destroy (&c);
    //  a read outside a turn sees the log through a view, which the next
    //  commit closes without writing
    assert_true (journal_kit_has_task (j, 5));
    assert_false (journal_kit_has_task (j, 4));
    assert_false (journal_kit_has_task (j, 1));
    assert_true (arb_journal_in_txn (j));
    assert_int_equal (arb_journal_commit (j), 0);
    assert_false (arb_journal_in_txn (j));
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (1, 3)"), 2);
    //  a turn with another write takes the log with it
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (3, 5)"), 2);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  and a clean close leaves the tables whole
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 6, 10, 'f');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 6"),
                      0);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 6"),
                      1);
    arb_queue_destroy (&q);
}

//  Commits one turn of count plain rows of size-byte payloads, ids from
//  first on.
static void
s_log_turn (arb_journal_t *j, arb_queue_t *q, uint64_t first, uint64_t count, size_t size)
{
    assert_int_equal (arb_journal_begin (j), 0);
    for (uint64_t id = first; id < first + count; id++)
        journal_kit_held (j, q, id, size, 'r');
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
    for (int i = 0;
         i < 1000 && journal_kit_count_rows (path, "SELECT count(*) FROM tasks") != count; i++)
        zclock_sleep (10);
    assert_int_equal (journal_kit_count_rows (path, "SELECT count(*) FROM tasks"), count);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_int_equal (s_log_file_size (fx->path, ARB_JOURNAL_LOG2_SUFFIX), -1);
    //  the save starts at the next turn's commit, and waits for the lock
    sqlite3 *lock = s_hold_lock (fx->path);
    uint64_t next = 2 + ARB_LOG_ROWS;
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, next, 100, 'a');
    journal_kit_held (j, q, next + 1, 100, 'a');
    assert_int_equal (arb_journal_drop (j, 2, next + 1), 0);  //  after the save took it
    assert_int_equal (arb_journal_commit (j), 0);
    assert_true (s_log_file_size (fx->path, ARB_JOURNAL_LOG2_SUFFIX) > 200);
    //  a turn while it waits: a row it has ends, two new ones
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 3, next + 1), 0);
    journal_kit_held (j, q, next + 2, 100, 'b');
    journal_kit_held (j, q, next + 3, 100, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    //  a crash now: both files
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    //  the save commits by itself, without the loop: every row kept when
    //  it started, those that ended since too
    s_release_lock (&lock);
    s_wait_rows (fx->path, ARB_LOG_ROWS);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 2);
    //  the loop's reads see the journal whole: 3 ended, the new rows there
    assert_false (journal_kit_has_task (j, 2));
    assert_false (journal_kit_has_task (j, 3));
    assert_true (journal_kit_has_task (j, 4));
    assert_true (journal_kit_has_task (j, next + 3));
    assert_int_equal (arb_journal_commit (j), 0);
    //  more turns to the other file, then a clean close: 2 and 3 leave the
    //  tables
    s_log_rows (j, q, next + 4, 10);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS - 2 + 4 + 10);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 0);
    //  the crash's copy: the tables had nothing; both files are read back
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS - 2 + 4);
    assert_int_equal (
        journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 0);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id >= 4"),
                      ARB_LOG_ROWS - 2 + 4);
    //  and goes on from there: its next save uses the files the other way,
    //  the second one cut first (its records are of an older generation,
    //  which would end the replay before the new ones); a crash during
    //  that save leaves every row
    s_log_rows (c, q, next + 100, ARB_LOG_ROWS);
    lock = s_hold_lock (copy);
    s_log_rows (c, q, next + 100 + ARB_LOG_ROWS, 1);  //  the save starts, and waits
    assert_true (c->saving);
    s_log_rows (c, q, next + 101 + ARB_LOG_ROWS, 1);  //  to the second file
    char again[160];
    snprintf (again, sizeof (again), "%s/again.db", fx->dir);
    journal_files_copy_journal (copy, again);
    s_release_lock (&lock);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      2 * ARB_LOG_ROWS - 2 + 4 + 2);
    c = arb_journal_new (again, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (again, "SELECT count(*) FROM tasks"),
                      2 * ARB_LOG_ROWS - 2 + 4 + 2);
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
    assert_true (journal_kit_has_task (j, 2));  //  the save taken in
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT value FROM meta WHERE key = "
                                                        "'broker.log_file'"),
                      1);
    char copy[160], second[200];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    snprintf (second, sizeof (second), "%s" ARB_JOURNAL_LOG2_SUFFIX, copy);
    journal_files_copy_journal (fx->path, copy);
    assert_int_equal (unlink (second), 0);
    journal_kit_log_t log;
    journal_kit_log_start (&log);
    arb_journal_t *refused = arb_journal_new (copy, ARB_SYNC_FULL);
    char *text = journal_kit_log_end (&log);
    assert_null (refused);
    assert_non_null (strstr (text, "-tasklog2 for its task log's records, and that file is not"));
    free (text);
    //  with it, all there
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 10);
    //  a checkpoint of the loop's keeps naming the second file, where the
    //  next turns go: a crash after them opens with them
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    s_log_rows (j, q, 2 + ARB_LOG_ROWS + 10, 1);
    journal_files_copy_journal (fx->path, copy);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 11);
    //  a clean close: the first file named, the second not needed
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT value FROM meta WHERE key = "
                                                        "'broker.log_file'"),
                      0);
    journal_files_copy_journal (fx->path, copy);
    assert_int_equal (unlink (second), 0);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 11);
    //  open again beside both files, their records all older: the next
    //  turns carry the tables' generation, and a crash after them opens
    //  with them
    j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_non_null (j);
    s_log_rows (j, q, 2 + ARB_LOG_ROWS + 11, 1);
    journal_files_copy_journal (fx->path, copy);
    c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    arb_journal_destroy (&c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 12);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  The payload of id in j is size bytes of fill.
static void
s_expect_payload (arb_journal_t *j, uint64_t id, size_t size, char fill)
{
    zframe_t *payload = NULL, *headers = NULL;
    assert_int_equal (arb_journal_load_payload (j, id, &payload, &headers, NULL), 0);
    assert_non_null (payload);
    assert_int_equal (zframe_size (payload), size);
    assert_int_equal (zframe_data (payload)[size - 1], fill);
    zframe_destroy (&payload);
    zframe_destroy (&headers);
}

//  A row of an id the turn dropped before (ids are never given twice, so
//  only in principle) goes to the tables: the log's record has its rows
//  before its drops, so that a replay, and the turn kept, would drop it.
static void
test_a_row_after_its_drop_goes_to_the_tables (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 5, 10, 'a');
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);  //  to the tables
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_drop (j, 5, 6), 0);
    journal_kit_held (j, q, 5, 20, 'z');
    assert_int_equal (arb_journal_commit (j), 0);
    s_expect_payload (j, 5, 20, 'z');
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);  //  a crash
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    s_expect_payload (c, 5, 20, 'z');
    arb_journal_destroy (&c);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A journal opened on a full disk with records in its log: the rows
//  replayed stay kept, and reads see them; the first commit that works
//  writes them to the tables.
static void
test_a_log_replayed_on_a_full_disk_waits (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 1, 50, 'a');
    journal_kit_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);  //  a crash
    arb_journal_destroy (&j);
    journal_kit_disk ("full");
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"), 0);
    assert_true (journal_kit_has_task (c, 1));
    assert_int_equal (arb_journal_rollback (c), 0);
    journal_kit_disk ("");
    assert_int_equal (arb_journal_begin (c), 0);
    journal_kit_held (c, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (c), 0);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"), 3);
    arb_journal_destroy (&c);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
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
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks"), 10);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT min(id) FROM tasks"),
                      (int) backlog + 1);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
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
            journal_kit_held (j, q, next, 24, 'n');
            assert_int_equal (arb_journal_drop (j, oldest, next), 0);
        }
        assert_int_equal (arb_journal_commit (j), 0);
        assert_false (j->saving);
    }
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    assert_int_equal (journal_kit_id_floor (j), 1 + ARB_ID_FLOOR_AHEAD);  //  written once
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      2 * ARB_LOG_ROWS + 2);
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
    journal_kit_disk ("full");
    s_release_lock (&lock);
    //  a read waits for the save, which fails
    assert_true (journal_kit_has_task (j, 2));
    assert_int_equal (arb_journal_commit (j), 0);
    journal_kit_disk ("");
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);
    //  the next turn takes everything to the tables
    s_log_rows (j, q, next + 1, 1);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 2);
    //  and the log is used again
    s_log_rows (j, q, next + 2, 5);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 2);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 7);
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
    assert_int_equal (arb_journal_purge (j, 1000, 100, 9, 0, journal_kit_count_purged, &purged), 0);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS);
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
    arb_task_t *t = journal_kit_task_new (q, id, id % 5 ? ARB_STATE_READY : ARB_STATE_RUNNING);
    t->priority = priority;
    t->unwatched = id % 3 == 0;
    t->name = id % 2 ? "job" : "other job";
    zframe_t *body = zframe_new (payload, strlen (payload));
    arb_bin_t head = {(const uint8_t *) headers, headers ? strlen (headers) : 0};
    arb_journal_row_t row = {.payload = body, .headers = head};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    zframe_destroy (&body);
    journal_kit_task_destroy (&t);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 8);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 8);
    assert_true (s_log_size (fx->path) > log_before);
    //  after a checkpoint the tables give the same, field by field
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "w", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE queue = 'q'"), 11);
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
            arb_task_t *t = journal_kit_task_new (q, id, ARB_STATE_READY);
            t->priority = 0;
            zframe_t *body = zframe_new (&id, 8);
            arb_journal_row_t row = {.payload = body};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            zframe_destroy (&body);
            journal_kit_task_destroy (&t);
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
        arb_task_t *t = journal_kit_task_new (q, id, id == 2 ? ARB_STATE_READY : ARB_STATE_RUNNING);
        t->name = "send.welcome";
        t->priority = -7;
        t->max_attempts = 5;
        zframe_t *body = zframe_new ("hello", 5);
        arb_journal_row_t row = {.payload = body, .headers = {(const uint8_t *) "h:1", 3}};
        assert_int_equal (arb_journal_insert (j, t, &row), 0);
        zframe_destroy (&body);
        journal_kit_task_destroy (&t);
    }
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 0);

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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
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
    assert_int_equal (
        journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id IN (5, 9)"), 0);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 10);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    s_log_turn (j, q, next++, 1, 24);  //  takes it in, and starts the next
    assert_true (j->saving);
    assert_false (j->checkpoint_due);
    s_wait_save_ended (j);
    s_log_turn (j, q, next++, 1, 24);
    assert_false (j->saving);
    //  the rows of both saves, less the ten of the tables that ended
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 2);
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
    assert_int_equal (journal_kit_count_rows (path, "SELECT count(*) FROM tasks"),
                      10 + ARB_LOG_ROWS);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 1);
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
    arb_task_t *t = journal_kit_task_new (q, 2, ARB_STATE_READY);
    t->attempts = t->delivered = 1;
    t->has_children = true;
    arb_journal_row_t row = {0};
    assert_int_equal (arb_journal_insert (j, t, &row), 0);
    assert_int_equal (arb_journal_save (j, t, ARB_STATE_SUCCEEDED, 500, NULL, NULL, NULL, 1000), 0);
    journal_kit_task_destroy (&t);
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
    assert_int_equal (journal_kit_count_rows (path, "SELECT count(*) FROM tasks WHERE id = 2"), 0);
    assert_int_equal (journal_kit_count_rows (path, "SELECT count(*) FROM tasks"),
                      ARB_LOG_ROWS + 2);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      10 + ARB_LOG_ROWS + 1);
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
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      10 + ARB_LOG_ROWS);
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
            arb_task_t *t = journal_kit_task_new (rand () % 5 ? q : other, next, ARB_STATE_READY);
            t->priority = priority[next] = mixed ? rand () % 5 - 2 : next > ROWS / 2;
            in_q[next] = t->queue == q;
            alive[next] = true;
            zframe_t *body = zframe_new (&next, 8);
            arb_journal_row_t row = {.payload = body};
            assert_int_equal (arb_journal_insert (j, t, &row), 0);
            zframe_destroy (&body);
            journal_kit_task_destroy (&t);
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
//  row of a queue of one byte, this name and state, and a count of drops
//  (none written).
static void
s_log_row (
    arb_journal_t *j, const char *path, char queue, const char *name, int32_t state, uint32_t drops)
{
    uint64_t gen = 0;
    assert_int_equal (arb_journal_meta_number (j, "broker.log_gen", &gen), 0);
    char log[200];
    snprintf (log, sizeof (log), "%s" ARB_JOURNAL_LOG_SUFFIX, path);
    arb_tasklog_t *tasklog = arb_tasklog_new (log, true);
    assert_non_null (tasklog);
    assert_int_equal (arb_tasklog_read (tasklog, s_of_gen, &gen), 0);
    uint32_t counts[2] = {1, drops};  //  drops: said, none written
    s_log_row_t row = {.id = 50,
                       .created_ms = 1,
                       .max_attempts = 1,
                       .state = state,
                       .queue_size = 1,
                       .name_size = (uint32_t) strlen (name),
                       .headers_size = UINT32_MAX};
    char bytes[512] = {queue};
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
        char queue;
        const char *name;
        int32_t state;
        uint32_t drops;
        bool opens;
    } cases[] = {{'q', "job", ARB_STATE_READY, 0, true},
                 {'q', long_name, ARB_STATE_READY, 0, false},
                 {'q', "j\x01ob", ARB_STATE_READY, 0, false},
                 {'\x01', "job", ARB_STATE_READY, 0, false},
                 {'q', "job", 99, 0, false},
                 {'q', "job", ARB_STATE_READY, 1, false}};
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        journal_files_copy_journal (fx->path, copy);
        s_log_row (j, copy, cases[i].queue, cases[i].name, cases[i].state, cases[i].drops);
        arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
        assert_int_equal (c != NULL, cases[i].opens);
        if (c)
            assert_true (journal_kit_has_task (c, 50));
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
    journal_kit_held (j, q, 1, 50, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 1"),
                      0);
    //  a checkpoint whose WAL sync fails: its commit stands
    journal_kit_disk ("fsync");
    assert_int_equal (arb_journal_begin (j), 0);
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), 0);
    journal_kit_disk ("");
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 1"),
                      1);
    //  the next plain turn goes to the tables, and a crash after it keeps it
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 2"),
                      1);
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_NORMAL);
    assert_non_null (c);
    assert_true (journal_kit_has_task (c, 1) && journal_kit_has_task (c, 2));
    arb_journal_destroy (&c);
    //  that checkpoint's sync worked: the log takes turns again
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 3"),
                      0);
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
    journal_kit_held (j, q, 1, 50, 'a');
    journal_kit_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    long first = s_log_size (fx->path);
    char saved[160];
    snprintf (saved, sizeof (saved), "%s/saved-log", fx->dir);
    char log[200];
    snprintf (log, sizeof (log), "%s" ARB_JOURNAL_LOG_SUFFIX, fx->path);
    journal_files_copy (log, saved);
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 3, 50, 'c');
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
    assert_int_equal (
        journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (1, 2, 3)"), 3);
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
    assert_int_equal (
        journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (1, 2)"), 2);
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id = 3"), 0);
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
    assert_int_equal (journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id = 1"), 0);
    assert_int_equal (
        journal_kit_count_rows (copy, "SELECT count(*) FROM tasks WHERE id IN (2, 3)"), 2);
    arb_journal_destroy (&c);
    arb_journal_destroy (&j);
    //  a log beside a journal that is not there any more is refused
    char lone[160];
    snprintf (lone, sizeof (lone), "%s/lone.db", fx->dir);
    char lone_log[200];
    snprintf (lone_log, sizeof (lone_log), "%s" ARB_JOURNAL_LOG_SUFFIX, lone);
    journal_files_copy (saved, lone_log);
    assert_null (arb_journal_new (lone, ARB_SYNC_FULL));
    //  and leaves no journal made for it behind: a second start is
    //  refused too, rather than taking the log for an old one of its own
    assert_int_equal (access (lone, F_OK), -1);
    assert_null (arb_journal_new (lone, ARB_SYNC_FULL));
    assert_int_equal (access (lone, F_OK), -1);
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
    journal_kit_held (j, q, 1, 50, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    //  the log's own append fails (the first mode), then the tables' commit
    //  (the log is paused): a failed WAL sync may leave its frames, which
    //  a copy of the files would read, so the copy is taken after the first
    const char *modes[] = {"full", "ioerr", "fsync"};
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    for (size_t i = 0; i < 3; i++) {
        journal_kit_disk (modes[i]);
        assert_int_equal (arb_journal_begin (j), 0);
        journal_kit_held (j, q, 2, 50, 'b');
        assert_int_equal (arb_journal_commit (j), -1);
        assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
        assert_int_equal (arb_journal_rollback (j), 0);
        journal_kit_disk ("");
        if (i == 0) {
            journal_files_copy_journal (fx->path, copy);
            arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
            assert_true (journal_kit_has_task (c, 1));
            assert_false (journal_kit_has_task (c, 2));
            arb_journal_destroy (&c);
        }
    }
    //  paused: the next turn goes to the tables, with the log's row
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  and the log takes turns again
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 2);
    //  off: the next turn writes the tables (with what the log held)
    arb_journal_set_log (j, false);
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 4, 50, 'd');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"), 4);
    //  on again: the log's own append is synced (--sync full), and a sync
    //  that fails fails its turn
    arb_journal_set_log (j, true);
    journal_kit_disk ("fsync");
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 5, 50, 'e');
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_FULL);
    assert_int_equal (arb_journal_rollback (j), 0);
    journal_kit_disk ("");
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 5, 50, 'e');
    assert_int_equal (arb_journal_commit (j), 0);  //  the tables, and the log resumes
    //  a record that cannot be unmade either may be read back: the journal
    //  is broken, not full (the broker stops, and its restart replays it)
    journal_kit_disk ("unmake");
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 6, 50, 'f');
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_fault (j), ARB_JOURNAL_BROKEN);
    journal_kit_disk ("");
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  A checkpoint whose commit failed at its sync may be on the disk all
//  the same, with the log's next generation: the log pauses until a
//  checkpoint is known to have committed. Turns to the log meanwhile
//  would carry a generation the tables may no longer name, and a restart
//  would skip them.
static void
test_a_failed_checkpoint_pauses_the_log (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    arb_journal_t *j = arb_journal_new (fx->path, ARB_SYNC_FULL);
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 1, 50, 'a');
    assert_int_equal (arb_journal_commit (j), 0);
    //  a checkpoint (a turn with another write) whose WAL sync fails
    journal_kit_disk ("fsync");
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 2, 50, 'b');
    assert_int_equal (arb_journal_meta_set (j, "k", "v", 1), 0);
    assert_int_equal (arb_journal_commit (j), -1);
    assert_int_equal (arb_journal_rollback (j), 0);
    journal_kit_disk ("");
    //  the next plain turn goes to the tables
    assert_int_equal (arb_journal_begin (j), 0);
    journal_kit_held (j, q, 3, 50, 'c');
    assert_int_equal (arb_journal_commit (j), 0);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks WHERE id = 3"),
                      1);
    //  and what a crash leaves opens with both
    char copy[160];
    snprintf (copy, sizeof (copy), "%s/copy.db", fx->dir);
    journal_files_copy_journal (fx->path, copy);
    arb_journal_t *c = arb_journal_new (copy, ARB_SYNC_FULL);
    assert_non_null (c);
    assert_true (journal_kit_has_task (c, 1));
    assert_true (journal_kit_has_task (c, 3));
    arb_journal_destroy (&c);
    arb_journal_destroy (&j);
    arb_queue_destroy (&q);
}

//  Most of a running save's rows ending while it runs: the rows kept are
//  not compacted under it (its rows are held[0, frozen_held) until it is
//  taken in); once it ends, the tables have the rows that did not end.
static void
test_a_save_whose_rows_end_while_it_runs (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_queue_t *q = arb_queue_new ("q", 0);
    sqlite3 *lock;
    arb_journal_t *j = s_journal_saving (fx->path, q, &lock);
    //  rows 12 to 11 + ARB_LOG_ROWS in the save: its first 70,000 end
    const uint64_t ended = 70000;
    for (uint64_t id = 12; id < 12 + ended; id += 1000) {
        assert_int_equal (arb_journal_begin (j), 0);
        for (uint64_t k = id; k < id + 1000 && k < 12 + ended; k++)
            assert_int_equal (arb_journal_drop (j, k, k), 0);
        assert_int_equal (arb_journal_commit (j), 0);
    }
    assert_true (j->saving);
    s_release_lock (&lock);
    s_wait_save_ended (j);
    assert_false (journal_kit_has_task (j, 12));
    assert_true (journal_kit_has_task (j, 12 + ended));
    assert_int_equal (arb_journal_commit (j), 0);
    arb_journal_destroy (&j);
    assert_int_equal (journal_kit_count_rows (fx->path, "SELECT count(*) FROM tasks"),
                      10 + ARB_LOG_ROWS + 1 - ended);
    assert_int_equal (journal_kit_count_rows (
                          fx->path, "SELECT count(*) FROM tasks WHERE id < 70012 AND id >= 12"),
                      0);
    arb_queue_destroy (&q);
}

int
main (void)
{
    char control[64];
    journal_kit_faults_begin (control, sizeof (control));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_a_checkpoint_on_the_saver, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_kept_rows_give_their_memory_back, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_stays_in_the_log_until_its_bytes_are_due,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_backlog_streams_past_the_id_floor_without_the_tables, journal_kit_setup,
            journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_save, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_second_file_after_a_crash, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_without_drops, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_waits_for_the_save, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_holds_plain_turns, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_replay_stops_at_a_bad_record,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_on_a_failing_disk, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_checkpoint_pauses_the_log, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_log_replayed_on_a_full_disk_waits,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_row_after_its_drop_goes_to_the_tables,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_whose_rows_end_while_it_runs,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_backlog_is_read_beside_the_task_log,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_backlog_beside_the_log_matches_a_model,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_backlog_of_one_priority_beside_the_log_matches_a_model, journal_kit_setup,
            journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_by_id_needs_no_view, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_row_the_log_holds_answers_as_the_tables_do,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_sweep_beside_a_save, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_sweep_beside_a_save_in_a_turn, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_checkpoint_due_during_a_save_waits_for_its_end,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_ended_while_idle_gives_its_rows_back,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_save_ended_before_a_turn_that_only_reads,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_checkpoint_far_past_due_waits_for_the_save,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_read_goes_on_beside_a_save,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_drop_kept_during_a_save_stays, journal_kit_setup,
                                         journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_read_by_id_that_writes_during_a_save,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_a_backlog_read_beside_a_save_just_committed,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_refuses_rows_it_cannot_hold,
                                         journal_kit_setup, journal_kit_teardown),
        cmocka_unit_test_setup_teardown (test_the_task_log_waits_for_the_wal_under_sync_normal,
                                         journal_kit_setup, journal_kit_teardown),
    };
    int rc = cmocka_run_group_tests_name ("journal_log", tests, NULL, NULL);
    journal_kit_faults_end (control);
    return rc;
}
