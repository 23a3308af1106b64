/*  arb_tasklog.h — the journal's append-only log of plain task writes.

    A turn whose only writes are plain inserts and drops of tasks (most
    turns under load: a submit of a task with nothing but a payload, the
    end of a task with nothing to keep) commits by appending one record to
    this file and syncing it, not by writing SQLite's B-trees and their
    indexes: a few hundred bytes of copy against tens of thousands of
    instructions, and one write and fdatasync against SQLite's WAL frames
    and locks. The tables take the rows still open later, at a checkpoint,
    and a task submitted and ended between two checkpoints never reaches
    them (arb_journal_batch.c decides what goes where; docs/broker.md,
    "The task log").

    The file is records, one per committed turn, each:

        magic   u32  ARB_TASKLOG_MAGIC
        size    u32  bytes of body
        gen     u64  the generation it belongs to
        crc     u32  CRC-32C of gen, size and body
        pad     u32  0
        body    size bytes (arb_journal_batch.c's format)

    in the machine's byte order (a log is read back by the broker that
    wrote it, on the same machine; a record read in the other order fails
    its magic). A record is whole or it is not: the reader stops at the
    first one whose header or checksum does not hold, as SQLite's WAL
    reader stops at the first bad frame, so a tail torn by a crash is
    ignored. A checkpoint that the tables committed makes every record
    of its generation obsolete (the generation the tables expect is
    stored with them, in the same transaction); the next records are
    written from the file's start again, over the old ones, which the
    reader skips (an older generation) or stops at (cut by a new record).

    Owned by the journal, in the broker's loop thread; not thread-safe
    (its growth's thread is its own, arb_tasklog.c).
*/

#ifndef ARB_TASKLOG_H
#define ARB_TASKLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_TASKLOG_MAGIC 0x4c425241u  //  "ARBL" in a little-endian file

typedef struct _arb_tasklog_t arb_tasklog_t;

//  For test builds: the errno a step of an append should fail with now,
//  or 0 (arb_journal_faults.h).
typedef enum {
    ARB_TASKLOG_WRITE,   //  the record's write
    ARB_TASKLOG_SYNC,    //  its sync
    ARB_TASKLOG_UNMAKE,  //  zeroing the header of a record that failed
} arb_tasklog_step_t;
typedef int (arb_tasklog_fault_fn) (arb_tasklog_step_t step);

//  Opens the log at path, creating it (and syncing its directory, so that
//  the file itself survives a power cut) if it does not exist. synced: its
//  appends will all be synced, so it writes them directly (O_DIRECT) where
//  the file system allows (arb_tasklog.c says why). Returns NULL after
//  logging why.
arb_tasklog_t *arb_tasklog_new (const char *path, bool synced);

void arb_tasklog_destroy (arb_tasklog_t **self_p);

//  A record read back: its generation and body, borrowed for the call.
//  Returns 0 to go on; else the read stops there (1: a record that ends
//  the reader's records, -1: a body the caller cannot use).
typedef int (arb_tasklog_record_fn) (void *arg, uint64_t gen, const uint8_t *body, size_t size);

//  Reads the file from its start and hands fn every whole record, in
//  order, up to the first that is not (logged at notice when bytes other
//  than zeros follow it) or that fn stops at. Appends then go after the
//  last record fn took. 0; fn's result if it stopped; -1 if the file
//  could not be read.
int arb_tasklog_read (arb_tasklog_t *self, arb_tasklog_record_fn *fn, void *arg);

//  Appends one record of the parts (their bytes concatenated are its
//  body) and, if sync, fdatasyncs the file. 0, or -1 with errno set and
//  the record unmade (its header zeroed, if the file holds one), so that
//  no reader takes it; if that failed too, arb_tasklog_is_doubtful says so.
typedef struct {
    const void *data;
    size_t size;
} arb_tasklog_part_t;

int arb_tasklog_append (
    arb_tasklog_t *self, uint64_t gen, const arb_tasklog_part_t *parts, size_t count, bool sync);

//  Whether the last append failed and its record could not be unmade: a
//  reader may take it, so its outcome is not known.
bool arb_tasklog_is_doubtful (arb_tasklog_t *self);

//  Starts the records again from the file's start, after a checkpoint
//  made them obsolete; a file over ARB_TASKLOG_KEEP_BYTES is cut to
//  nothing. 0, or -1 with errno set if the cut failed.
#define ARB_TASKLOG_KEEP_BYTES (64u * 1024 * 1024)
//  The file grows by this many bytes of zeros ahead of its records
//  (arb_tasklog.c says why).
#define ARB_TASKLOG_GROW_BYTES (1024u * 1024)
//  A log written directly asks its thread for the next growth once its
//  records are within this many bytes of the file's end.
#define ARB_TASKLOG_GROW_AHEAD (ARB_TASKLOG_GROW_BYTES / 2)
int arb_tasklog_clear (arb_tasklog_t *self);

//  The bytes of records in the file (where the next one goes).
uint64_t arb_tasklog_size (arb_tasklog_t *self);

//  Whether appends go to the disk directly (O_DIRECT), not through the
//  page cache.
bool arb_tasklog_direct (arb_tasklog_t *self);

//  Test builds: a function to ask before each step of an append.
void arb_tasklog_set_fault (arb_tasklog_t *self, arb_tasklog_fault_fn *fault);

#endif
