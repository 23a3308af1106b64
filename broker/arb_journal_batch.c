/*  arb_journal_batch.c — a turn's plain inserts and drops, written a batch
    to a statement; see arb_journal_priv.h.

    Why: a statement's run costs SQLite about as much again as the row it
    writes (each run opens a cursor on the table and on each of its
    indexes, and binds and resets), and a busy turn inserts and drops
    dozens of tasks one at a time. Written together, one INSERT of up to
    ARB_BATCH_ROWS rows and one DELETE of up to as many ids, a task's two
    writes cost a third less (BENCHMARKS.md, "A turn's writes in
    batches", has the figures).

    The rule that keeps it the same journal: whatever the batch holds is
    written before any other statement runs (arb_journal_run and
    arb_journal_step settle it first), and before the commit, rows before
    drops, each in the order it was made. So a read sees the turn's
    writes, a drop of a row held in the same turn deletes it, and a
    failure to write the batch fails the turn as a failed statement or
    COMMIT does: the broker rolls it back whole (arb_journal.h, Faults).
    Only plain rows (arb_journal_tasks.c, s_is_plain) wait, and only small
    ones: a row whose headers and payload are over ARB_BATCH_ROW_BYTES is
    written at once, so the bytes held stay under ARB_BATCH_ROWS times that
    and their names.
*/

#include "arb_journal_priv.h"
#include "arb_queue.h"

#define ARB_BATCH_COLUMNS 10  //  a plain row: as insert_plain writes it

//  SQL of an INSERT of count plain rows, or a DELETE of count ids: ?NNN
//  numbered in order, row r's column c at r * ARB_BATCH_COLUMNS + c + 1.
static char *
s_insert_sql (size_t count)
{
    const char *head = "INSERT INTO tasks (id, queue, name, state, priority, max_attempts, "
                       "created_ms, headers, payload, unwatched) VALUES ";
    const char *values = "(?,?,?,?,?,?,?,?,?,?)";
    size_t size = strlen (head) + count * (strlen (values) + 1) + 1;
    char *sql = (char *) malloc (size);
    assert (sql);
    char *end = stpcpy (sql, head);
    for (size_t i = 0; i < count; i++) {
        if (i)
            *end++ = ',';
        end = stpcpy (end, values);
    }
    return sql;
}

static char *
s_drop_sql (size_t count)
{
    const char *head = "DELETE FROM tasks WHERE id IN (";
    char *sql = (char *) malloc (strlen (head) + count * 2 + 2);
    assert (sql);
    char *end = stpcpy (sql, head);
    for (size_t i = 0; i < count; i++) {
        *end++ = i ? ',' : ' ';
        *end++ = '?';
    }
    strcpy (end, ")");
    return sql;
}

int
arb_journal_batch_prepare (arb_journal_t *self)
{
    for (size_t k = 0; k < ARB_BATCH_SIZES; k++) {
        char *insert = s_insert_sql ((size_t) 1 << k);
        char *drop = s_drop_sql ((size_t) 1 << k);
        int rc = arb_journal_prepare (self, &self->insert_rows[k], insert)
                 || arb_journal_prepare (self, &self->drop_rows[k], drop);
        free (insert);
        free (drop);
        if (rc)
            return -1;
    }
    return 0;
}

//  Copies bytes into the batch's bytes; returns their offset.
static size_t
s_keep (arb_journal_t *self, const void *data, size_t size)
{
    if (self->batch_size + size > self->batch_max) {
        size_t max = self->batch_max ? self->batch_max : 4096;
        while (max < self->batch_size + size)
            max *= 2;
        self->batch_bytes = (char *) realloc (self->batch_bytes, max);
        assert (self->batch_bytes);
        self->batch_max = max;
    }
    size_t offset = self->batch_size;
    if (size)
        memcpy (self->batch_bytes + offset, data, size);
    self->batch_size += size;
    return offset;
}

//  The largest batch size, as the index k of 1 << k, not over count.
static size_t
s_size_index (size_t count)
{
    size_t k = 0;
    while (k + 1 < ARB_BATCH_SIZES && ((size_t) 1 << (k + 1)) <= count)
        k++;
    return k;
}

static void
s_bind_held (sqlite3_stmt *stmt, int base, const arb_journal_held_t *held, const char *bytes)
{
    arb_sql_bind_u64 (stmt, base + 1, held->id);
    arb_sql_bind_text (stmt, base + 2, bytes + held->queue);
    arb_sql_bind_text (stmt, base + 3, bytes + held->name);
    sqlite3_bind_int (stmt, base + 4, held->state);
    sqlite3_bind_int (stmt, base + 5, held->priority);
    sqlite3_bind_int64 (stmt, base + 6, held->max_attempts);
    arb_sql_bind_u64 (stmt, base + 7, held->created_ms);
    if (held->has_headers)
        sqlite3_bind_blob (stmt, base + 8, bytes + held->headers, (int) held->headers_size,
                           SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, base + 8);
    sqlite3_bind_blob (stmt, base + 9, bytes + held->payload, (int) held->payload_size,
                       SQLITE_STATIC);
    sqlite3_bind_int (stmt, base + 10, held->unwatched ? 1 : 0);
}

//  Binds the item (a row held, or an id dropped) at index into a batch
//  statement, as its slot'th.
typedef void (s_bind_fn) (arb_journal_t *self, sqlite3_stmt *stmt, size_t slot, size_t index);

static void
s_bind_row (arb_journal_t *self, sqlite3_stmt *stmt, size_t slot, size_t index)
{
    s_bind_held (stmt, (int) (slot * ARB_BATCH_COLUMNS), &self->held[index], self->batch_bytes);
}

static void
s_bind_drop (arb_journal_t *self, sqlite3_stmt *stmt, size_t slot, size_t index)
{
    arb_sql_bind_u64 (stmt, (int) slot + 1, self->drops[index]);
}

//  Writes count items by the batch statements of each size, the biggest
//  first: 13 items are a statement of 8, one of 4 and one of 1. 0 or -1.
static int
s_write (arb_journal_t *self, sqlite3_stmt **stmts, size_t count, s_bind_fn *bind, const char *what)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count;) {
        size_t k = s_size_index (count - i);
        for (size_t slot = 0; slot < ((size_t) 1 << k); slot++)
            bind (self, stmts[k], slot, i + slot);
        rc = arb_journal_run (self, stmts[k], what);
        i += (size_t) 1 << k;
    }
    return rc;
}

static int
s_write_rows (arb_journal_t *self)
{
    int rc = s_write (self, self->insert_rows, self->held_count, s_bind_row, "insert");
    self->held_count = 0;
    self->batch_size = 0;
    return rc;
}

static int
s_write_drops (arb_journal_t *self)
{
    int rc = s_write (self, self->drop_rows, self->drop_count, s_bind_drop, "drop");
    self->drop_count = 0;
    self->drop_top = 0;
    return rc;
}

//  Writes the rows held, and the drops too if drops (the rows go first: a
//  drop may be of a row held). 0 or -1, nothing held after a failure.
static int
s_settle (arb_journal_t *self, bool drops)
{
    if (self->settling || (self->held_count == 0 && (!drops || self->drop_count == 0)))
        return 0;
    self->settling = true;
    int rc = s_write_rows (self);
    if (rc == 0 && drops)
        rc = s_write_drops (self);
    self->settling = false;
    if (rc)
        arb_journal_batch_forget (self);
    return rc;
}

int
arb_journal_settle (arb_journal_t *self)
{
    return s_settle (self, true);
}

int
arb_journal_batch_insert (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    assert (self->in_txn);
    if (self->fault != ARB_JOURNAL_SOUND)
        return -1;  //  as arb_journal_run: nothing but a rollback after a failure
    if (self->held_count == ARB_BATCH_ROWS && s_settle (self, false))
        return -1;
    //  rows go before drops: a row of an id dropped earlier in the turn
    //  (ids grow and are never given twice, so only in principle) waits
    //  for none
    if (task->id <= self->drop_top && arb_journal_settle (self))
        return -1;
    arb_journal_held_t *held = &self->held[self->held_count++];
    held->id = task->id;
    held->created_ms = task->created_ms;
    held->max_attempts = task->max_attempts;
    held->state = task->state == ARB_STATE_RUNNING ? ARB_STATE_READY : task->state;
    held->priority = task->priority;
    held->unwatched = task->unwatched;
    const char *queue = arb_queue_name (task->queue);
    held->queue = s_keep (self, queue, strlen (queue) + 1);
    held->name = s_keep (self, task->name, strlen (task->name) + 1);
    held->has_headers = row->headers != NULL;
    held->headers_size = row->headers ? zframe_size (row->headers) : 0;
    held->headers =
        s_keep (self, row->headers ? zframe_data (row->headers) : NULL, held->headers_size);
    held->payload_size = zframe_size (row->payload);
    held->payload = s_keep (self, zframe_data (row->payload), held->payload_size);
    return 0;
}

bool
arb_journal_batch_takes (const arb_journal_row_t *row)
{
    return (row->headers ? zframe_size (row->headers) : 0) + zframe_size (row->payload)
           <= ARB_BATCH_ROW_BYTES;
}

int
arb_journal_batch_drop (arb_journal_t *self, uint64_t id)
{
    assert (self->in_txn);
    if (self->fault != ARB_JOURNAL_SOUND)
        return -1;
    if (self->drop_count == ARB_BATCH_ROWS && arb_journal_settle (self))
        return -1;
    self->drops[self->drop_count++] = id;
    if (id > self->drop_top)
        self->drop_top = id;
    return 0;
}

void
arb_journal_batch_forget (arb_journal_t *self)
{
    self->held_count = 0;
    self->drop_count = 0;
    self->drop_top = 0;
    self->batch_size = 0;
}
