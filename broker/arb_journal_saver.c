/*  arb_journal_saver.c — a task log checkpoint's writes to the tables, on
    a thread of its own; see arb_journal_priv.h and arb_journal_batch.c.

    With --sync full, a checkpoint that is due when a turn would go to the
    log is handed here instead of done by the loop: the rows kept and the
    drops of rows in the tables, copied, and the log's keys to store with
    them. Meanwhile the loop goes on appending turns to the other log file
    (arb_journal_batch.c says how the two files and the keys keep a crash
    safe). This thread writes them in one transaction on a connection of
    its own, the way a checkpoint of the loop would (the same statements,
    ARB_BATCH_ROWS to a statement), and says when it has ended.

    One save at a time: the loop starts one, then asks whether it has
    ended, or waits for it. While a save is in progress the loop's own
    connection only reads, what the save does not change or beside it
    (arb_journal_batch.c waits first for anything else), so the two never
    write, nor read a half-written state, at once. The thread is a chore
    (arb_chore.h): the save and its result are the thread's from the ask
    until the chore is idle again.
*/

#include "arb_bigmem.h"
#include "arb_chore.h"
#include "arb_journal_priv.h"

struct _arb_journal_saver_t {
    sqlite3 *db;  //  owned: the thread's connection
    sqlite3_stmt *insert_rows[ARB_BATCH_SIZES], *drop_rows[ARB_BATCH_SIZES], *meta_set;
    arb_chore_t *chore;        //  owned
    arb_journal_save_t *save;  //  owned: the save asked for (the thread's until idle)
    int result;                //  the last save's (0: committed)
};

static int
s_exec (arb_journal_saver_t *self, const char *sql)
{
    return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
s_run (sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  The rows, ARB_BATCH_ROWS to a statement, the biggest first.
static int
s_write_rows (arb_journal_saver_t *self, const arb_journal_save_t *save)
{
    const char *rows[ARB_BATCH_ROWS];
    size_t at = 0, left = save->row_count;
    while (left) {
        size_t k = arb_journal_batch_size_index (left);
        size_t n = (size_t) 1 << k;
        for (size_t slot = 0; slot < n; slot++) {
            rows[slot] = save->rows + at;
            at += arb_journal_batch_row_size (rows[slot]);
        }
        for (size_t slot = 0; slot < n; slot++)
            arb_journal_batch_bind_row (self->insert_rows[k], (int) (slot * ARB_BATCH_COLUMNS),
                                        rows[slot]);
        if (s_run (self->insert_rows[k]))
            return -1;
        left -= n;
    }
    return 0;
}

static int
s_write_drops (arb_journal_saver_t *self, const arb_journal_save_t *save)
{
    for (size_t from = 0; from < save->drop_count;) {
        size_t k = arb_journal_batch_size_index (save->drop_count - from);
        for (size_t slot = 0; slot < ((size_t) 1 << k); slot++)
            arb_sql_bind_u64 (self->drop_rows[k], (int) slot + 1, save->drops[from + slot]);
        if (s_run (self->drop_rows[k]))
            return -1;
        from += (size_t) 1 << k;
    }
    return 0;
}

static int
s_set_number (arb_journal_saver_t *self, const char *key, uint64_t number)
{
    char text[32];
    snprintf (text, sizeof (text), "%" PRIu64, number);
    arb_sql_bind_text (self->meta_set, 1, key);
    sqlite3_bind_blob (self->meta_set, 2, text, (int) strlen (text), SQLITE_TRANSIENT);
    return s_run (self->meta_set);
}

//  One save, in one transaction: 0 when it committed.
static int
s_write (arb_journal_saver_t *self, const arb_journal_save_t *save)
{
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    int rc = s_write_rows (self, save) || s_write_drops (self, save)
                     || s_set_number (self, ARB_LOG_GEN_KEY, save->gen)
                     || s_set_number (self, ARB_LOG_FILE_KEY, save->file)
                     || s_set_number (self, ARB_LOG_NEXT_KEY, save->next)
                 ? -1
                 : s_exec (self, "COMMIT");
    if (rc) {
        zsys_error ("journal: a task log checkpoint could not be written to the tables: %s",
                    sqlite3_errmsg (self->db));
        if (!sqlite3_get_autocommit (self->db))
            s_exec (self, "ROLLBACK");
    }
    //  the save's pages go: a checkpoint of a large backlog would leave
    //  them held until the next, long after the backlog drained
    sqlite3_db_release_memory (self->db);
    return rc;
}

static void
s_save_free (arb_journal_save_t **save_p)
{
    arb_journal_save_t *save = *save_p;
    if (!save)
        return;
    arb_bigmem_free (save->rows, save->rows_bytes, 1);
    arb_bigmem_free (save->drops, save->drops_bytes, 1);
    free (save);
    *save_p = NULL;
}

//  The chore: the save asked for, then freed.
static void
s_run_save (void *arg)
{
    arb_journal_saver_t *self = (arb_journal_saver_t *) arg;
    self->result = s_write (self, self->save);
    s_save_free (&self->save);
}

static int
s_prepare (arb_journal_saver_t *self, sqlite3_stmt **stmt, char *sql)
{
    int rc = sqlite3_prepare_v2 (self->db, sql, -1, stmt, NULL) == SQLITE_OK ? 0 : -1;
    free (sql);
    return rc;
}

static int
s_open (arb_journal_saver_t *self, const char *path, const char *vfs)
{
    //  as the loop's connection (arb_journal.c): its WAL cut back when it
    //  starts over; a smaller cache (ARB_SAVER_CACHE_KB)
    char pragmas[160];
    snprintf (pragmas, sizeof (pragmas),
              "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -%d; "
              "PRAGMA journal_size_limit = 67108864;",
              ARB_SAVER_CACHE_KB);
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs)
            != SQLITE_OK
        || s_exec (self, pragmas))
        return -1;
    sqlite3_busy_timeout (self->db, 5000);
    for (size_t k = 0; k < ARB_BATCH_SIZES; k++)
        if (s_prepare (self, &self->insert_rows[k], arb_journal_batch_insert_sql ((size_t) 1 << k))
            || s_prepare (self, &self->drop_rows[k], arb_journal_batch_drop_sql ((size_t) 1 << k)))
            return -1;
    return s_prepare (self, &self->meta_set,
                      strdup ("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)"));
}

static void
s_close (arb_journal_saver_t *self)
{
    for (size_t k = 0; k < ARB_BATCH_SIZES; k++) {
        sqlite3_finalize (self->insert_rows[k]);
        sqlite3_finalize (self->drop_rows[k]);
    }
    sqlite3_finalize (self->meta_set);
    if (self->db && sqlite3_close (self->db) != SQLITE_OK)
        zsys_error ("journal: the checkpoint writer's close failed: %s", sqlite3_errmsg (self->db));
}

arb_journal_saver_t *
arb_journal_saver_new (const char *path, const char *vfs, arb_backfill_t *backfill)
{
    arb_journal_saver_t *self = (arb_journal_saver_t *) zmalloc (sizeof (arb_journal_saver_t));
    if (s_open (self, path, vfs)) {
        zsys_error ("journal: the checkpoint writer cannot open %s: %s", path,
                    self->db ? sqlite3_errmsg (self->db) : "out of memory");
        s_close (self);
        free (self);
        return NULL;
    }
    //  its commits grow the WAL as the loop's do
    if (backfill)
        arb_journal_watch_wal (self->db, backfill);
    self->chore = arb_chore_new ("journal: the checkpoint writer", s_run_save, self);
    if (!self->chore) {
        s_close (self);
        free (self);
        return NULL;
    }
    return self;
}

void
arb_journal_saver_destroy (arb_journal_saver_t **self_p)
{
    assert (self_p);
    arb_journal_saver_t *self = *self_p;
    if (!self)
        return;
    arb_chore_destroy (&self->chore);
    s_save_free (&self->save);  //  one asked and never started
    s_close (self);
    free (self);
    *self_p = NULL;
}

void
arb_journal_saver_start (arb_journal_saver_t *self, arb_journal_save_t **save_p)
{
    assert (arb_chore_idle (self->chore) && !self->save);
    self->save = *save_p;
    *save_p = NULL;
    arb_chore_ask (self->chore);
}

bool
arb_journal_saver_ended (arb_journal_saver_t *self)
{
    return arb_chore_idle (self->chore);
}

int
arb_journal_saver_wait (arb_journal_saver_t *self)
{
    arb_chore_wait (self->chore);
    return self->result;
}
