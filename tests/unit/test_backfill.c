/*  test_backfill.c — the WAL copied into the database file on a thread
    (broker/arb_backfill.c): a woken copier copies what a writer that
    never checkpoints committed, the WAL starts over after each copy
    instead of growing, a stop with a copy asked ends. The journal's use
    of it is test_journal.c's (test_the_wal_is_copied_on_a_thread). */

#include "arb_backfill.h"
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <czmq.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define S_PAGE 4096

typedef tmpdir_fixture_t s_fixture_t;

static int
s_setup (void **state)
{
    return tmpdir_fixture (state, "backfill", "j.db");
}

static int
s_teardown (void **state)
{
    return tmpdir_fixture_end (state);
}

static uint64_t
s_size (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0 ? (uint64_t) info.st_size : 0;
}

//  The size of the journal's WAL.
static uint64_t
s_wal_size (const s_fixture_t *fx)
{
    char wal[128];
    snprintf (wal, sizeof (wal), "%s-wal", fx->path);
    return s_size (wal);
}

//  A writer in WAL mode that never checkpoints by itself.
static sqlite3 *
s_writer (const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db,
                                    "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;"
                                    "CREATE TABLE IF NOT EXISTS t (b BLOB);",
                                    NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_wal_autocheckpoint (db, 0);
    return db;
}

//  Commits about pages pages of blobs.
static void
s_write (sqlite3 *db, int pages)
{
    sqlite3_stmt *insert;
    assert_int_equal (
        sqlite3_prepare_v2 (db, "INSERT INTO t VALUES (zeroblob (3500))", -1, &insert, NULL),
        SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < pages; i++) {
        assert_int_equal (sqlite3_step (insert), SQLITE_DONE);
        sqlite3_reset (insert);
    }
    assert_int_equal (sqlite3_exec (db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_finalize (insert);
}

//  Waits, at most 10 s, until the copier has finished rounds copies.
static void
s_wait_rounds (arb_backfill_t *copier, uint64_t rounds)
{
    for (int i = 0; i < 1000 && arb_backfill_rounds (copier) < rounds; i++)
        zclock_sleep (10);
    assert_true (arb_backfill_rounds (copier) >= rounds);
}

static void
test_copies_what_the_writer_committed (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    sqlite3 *db = s_writer (fx->path);
    s_write (db, 2000);
    //  the pages are in the WAL only
    assert_true (s_wal_size (fx) > 2000 * S_PAGE);
    assert_true (s_size (fx->path) < 100 * S_PAGE);
    arb_backfill_t *copier = arb_backfill_new (fx->path, NULL);
    assert_non_null (copier);
    assert_int_equal (arb_backfill_rounds (copier), 0);
    arb_backfill_wake (copier);
    s_wait_rounds (copier, 1);
    assert_true (s_size (fx->path) > 2000 * S_PAGE);
    //  all of it: a checkpoint of the writer's finds nothing left
    int frames = -1, copied = -1;
    assert_int_equal (
        sqlite3_wal_checkpoint_v2 (db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied),
        SQLITE_OK);
    assert_int_equal (frames, copied);
    arb_backfill_destroy (&copier);
    assert_null (copier);
    sqlite3_close (db);
}

static void
test_the_wal_starts_over (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    sqlite3 *db = s_writer (fx->path);
    arb_backfill_t *copier = arb_backfill_new (fx->path, NULL);
    assert_non_null (copier);
    for (uint64_t round = 1; round <= 8; round++) {
        s_write (db, 1500);
        arb_backfill_wake (copier);
        s_wait_rounds (copier, round);
    }
    //  each commit after a whole copy wrote from the WAL's start: two
    //  rounds' worth at most, not eight
    assert_true (s_wal_size (fx) < 3200 * S_PAGE);
    assert_true (s_size (fx->path) > 8 * 1500 * S_PAGE);
    arb_backfill_destroy (&copier);
    sqlite3_close (db);
}

static void
test_stops_with_a_copy_asked (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    sqlite3 *db = s_writer (fx->path);
    s_write (db, 500);
    arb_backfill_t *copier = arb_backfill_new (fx->path, NULL);
    assert_non_null (copier);
    arb_backfill_wake (copier);
    arb_backfill_wake (copier);
    arb_backfill_destroy (&copier);
    assert_null (copier);
    //  and one that was never asked
    copier = arb_backfill_new (fx->path, NULL);
    assert_non_null (copier);
    arb_backfill_destroy (&copier);
    sqlite3_close (db);
    //  a file that is not there is said, not made
    char missing[128];
    snprintf (missing, sizeof (missing), "%s/none.db", fx->dir);
    assert_null (arb_backfill_new (missing, NULL));
    assert_int_equal (s_size (missing), 0);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_copies_what_the_writer_committed, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_the_wal_starts_over, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stops_with_a_copy_asked, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
