/*  arb_backfill.c — the WAL's copy into the database file, on a thread of
    its own; see arb_backfill.h.

    The thread sleeps on a condition until woken (or stopped), then runs
    one PASSIVE checkpoint on its own connection. The mutex guards only
    the two flags and the count; SQLite is never called under it.
*/

#include "arb_backfill.h"
#include "arb_proto.h"

#include <pthread.h>
#include <sqlite3.h>

struct _arb_backfill_t {
    sqlite3 *db;  //  owned: the thread's connection
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool asked;       //  under lock: a copy is wanted
    bool stopping;    //  under lock: the thread ends after its copy
    uint64_t rounds;  //  under lock: copies finished
};

//  One copy; a failure is logged when it follows a copy that worked.
static void
s_copy (arb_backfill_t *self, bool *failing)
{
    int frames = 0, copied = 0;
    int rc =
        sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    //  BUSY: another checkpoint runs (the last connection's, at close)
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        if (!*failing)
            zsys_warning ("journal: the WAL could not be copied into the database file (%s): it "
                          "keeps its pages, and the next commits try again",
                          sqlite3_errmsg (self->db));
        *failing = true;
    }
    else if (rc == SQLITE_OK)
        *failing = false;
}

static void *
s_run (void *arg)
{
    arb_backfill_t *self = (arb_backfill_t *) arg;
    bool failing = false;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        if (!self->asked) {
            pthread_cond_wait (&self->wake, &self->lock);
            continue;
        }
        self->asked = false;
        pthread_mutex_unlock (&self->lock);
        s_copy (self, &failing);
        pthread_mutex_lock (&self->lock);
        self->rounds++;
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
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
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    int rc = pthread_create (&self->thread, NULL, s_run, self);
    if (rc) {
        zsys_error ("journal: the WAL's copier cannot start a thread: %s", strerror (rc));
        pthread_cond_destroy (&self->wake);
        pthread_mutex_destroy (&self->lock);
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
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    if (sqlite3_close (self->db) != SQLITE_OK)
        zsys_error ("journal: the WAL's copier's close failed: %s", sqlite3_errmsg (self->db));
    free (self);
    *self_p = NULL;
}

void
arb_backfill_wake (arb_backfill_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->asked = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
}

uint64_t
arb_backfill_rounds (arb_backfill_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t rounds = self->rounds;
    pthread_mutex_unlock (&self->lock);
    return rounds;
}
