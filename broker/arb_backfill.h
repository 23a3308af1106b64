/*  arb_backfill.h — copies the journal's WAL back into its database file
    on a thread of its own.

    SQLite's WAL mode appends each commit's pages to the -wal file; a
    checkpoint copies them into the database file (SQLite says the frames
    are "backfilled") and syncs it, so that the WAL can start over. By
    default the connection that commits runs that checkpoint itself, in
    the commit that takes the WAL past 1,000 pages: the broker's loop
    then stood still for the copy and a sync of the database file, 20 to
    40 ms at each task log checkpoint of a producer ahead of its consumers
    (BENCHMARKS.md, "The WAL copied on a thread").

    Here the loop's connection only says that the WAL has grown
    (arb_backfill_wake, from SQLite's WAL hook), and this thread, with a
    connection of its own to the same file, runs a PASSIVE checkpoint: it
    copies what is committed and never waits for a lock, so it never holds
    back the loop's commits, nor they it; a commit after a complete copy
    starts the WAL over, as before. What a crash can leave is SQLite's to
    recover, as with its own checkpoints: a frame is copied only once it
    is committed, and the WAL is started over only after the database
    file's sync.

    The loop's thread calls new, wake and destroy; the thread owns its
    connection. Each copy that fails (a full disk, an I/O error) leaves
    the WAL as it was, logged once until a copy works again; the next
    wake tries again.
*/

#ifndef ARB_BACKFILL_H
#define ARB_BACKFILL_H

#include <stdbool.h>
#include <stdint.h>

//  The WAL's size, in pages, past which a commit wakes the copy: SQLite's
//  own default for its checkpoints (4 MiB with the journal's pages).
#define ARB_BACKFILL_PAGES 1000

typedef struct _arb_backfill_t arb_backfill_t;

//  Opens a connection to the database at path (through the SQLite VFS
//  named vfs, NULL for the default) and starts the thread. The database
//  must be in WAL mode already. NULL if either fails (logged).
arb_backfill_t *arb_backfill_new (const char *path, const char *vfs);

//  Stops the thread, after the copy it runs, and closes its connection.
void arb_backfill_destroy (arb_backfill_t **self_p);

//  Asks for a copy of what the WAL holds: at once if the thread is
//  waiting, else right after the copy it runs.
void arb_backfill_wake (arb_backfill_t *self);

//  The copies the thread has finished, whether or not they copied all.
uint64_t arb_backfill_rounds (arb_backfill_t *self);

#endif
