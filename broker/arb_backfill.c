/*  arb_backfill.c — the WAL's copy into the database file, on a thread of
    its own; see arb_backfill.h.

    The thread is a chore (arb_chore.h): each wake asks for one PASSIVE
    checkpoint on the copier's own connection, which only that thread
    uses once started.
*/

#include "arb_backfill.h"
#include "arb_chore.h"
#include "arb_proto.h"

#include <sqlite3.h>

struct _arb_backfill_t {
    sqlite3 *db;         //  owned: the thread's connection
    arb_chore_t *chore;  //  owned
    bool failing;        //  the thread's: the last copy failed (logged)
};

//  One copy; a failure is logged when it follows a copy that worked.
static void
s_copy (void *arg)
{
    arb_backfill_t *self = (arb_backfill_t *) arg;
    int frames = 0, copied = 0;
    int rc =
        sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    //  BUSY: another checkpoint runs (the last connection's, at close)
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        if (!self->failing)
            zsys_warning ("journal: the WAL could not be copied into the database file (%s): it "
                          "keeps its pages, and the next commits try again",
                          sqlite3_errmsg (self->db));
        self->failing = true;
    }
    else if (rc == SQLITE_OK)
        self->failing = false;
}

arb_backfill_t *
arb_backfill_new (const char *path, const char *vfs)
{
    arb_backfill_t *self = (arb_backfill_t *) zmalloc (sizeof (arb_backfill_t));
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs)
        != SQLITE_OK) {
        zsys_error ("journal: the WAL's copier cannot open %s: %s", path,
                    self->db ? sqlite3_errmsg (self->db) : "out of memory");
        sqlite3_close (self->db);
        free (self);
        return NULL;
    }
    //  its own checkpoints only when asked: none after its (nonexistent)
    //  commits; a small cache, since a checkpoint reads through none
    sqlite3_wal_autocheckpoint (self->db, 0);
    sqlite3_exec (self->db, "PRAGMA cache_size = -256", NULL, NULL, NULL);
    self->chore = arb_chore_new ("journal: the WAL's copier", s_copy, self);
    if (!self->chore) {
        sqlite3_close (self->db);
        free (self);
        return NULL;
    }
    return self;
}

void
arb_backfill_destroy (arb_backfill_t **self_p)
{
    assert (self_p);
    arb_backfill_t *self = *self_p;
    if (!self)
        return;
    arb_chore_destroy (&self->chore);
    if (sqlite3_close (self->db) != SQLITE_OK)
        zsys_error ("journal: the WAL's copier's close failed: %s", sqlite3_errmsg (self->db));
    free (self);
    *self_p = NULL;
}

void
arb_backfill_wake (arb_backfill_t *self)
{
    arb_chore_ask (self->chore);
}

uint64_t
arb_backfill_rounds (arb_backfill_t *self)
{
    return arb_chore_runs (self->chore);
}
