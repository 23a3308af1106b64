/*  arb_journal_batch.c — a turn's plain inserts and drops: written to the
    tables a batch to a statement, or appended to the task log; see
    arb_journal_priv.h and arb_tasklog.h.

    Why a batch: a statement's run costs SQLite about as much again as
    the row it writes (each run opens a cursor on the table and on each of
    its indexes, and binds and resets), so a turn's rows go up to
    ARB_BATCH_ROWS to an INSERT and its drops as many to a DELETE
    (BENCHMARKS.md, "A turn's writes in batches").

    Why a log: even batched, a task's INSERT and DELETE are most of the
    broker's work a task, and SQLite's commit (WAL frames, locks) costs
    half as much again as a write and fdatasync of the same bytes
    (docs/performance.md). A turn whose only writes are plain rows and
    drops (a submit of tasks with nothing but a payload, the end of tasks
    with nothing to keep: most turns under load) commits by appending one
    record, its rows then its drops, to the log and syncing it. The rows
    are kept here, in the form the record has them; a later drop of one
    marks it dead. A checkpoint, the commit of a turn that goes to the
    tables, writes the live rows kept and the drops of rows the tables
    hold, with the log's next generation, and the log is cut: a task
    submitted and ended between two checkpoints costs the tables nothing.

    What goes to the tables, and when:
    - any other statement first gets every row and drop, kept and held,
      written into the open transaction, so it sees the journal whole (a
      read outside a transaction opens one for that: a view, which the
      next commit rolls back if nothing was written after it); but a read
      of one task's row that the batch has nothing of goes to the tables
      alone (arb_journal_step_id), one whose live row it holds is
      answered by that row (arb_journal_batch_live), and the cold
      backlog's read (arb_journal_load_ready) takes the rows held beside
      the tables' (arb_journal_batch_beside) while the transaction holds
      none of them, so that reading a backlog back costs no checkpoint;
    - a turn with a statement that writes, one whose rows the log cannot
      order (an id not above the last row's, a row after a drop of its id
      or above), one that holds more than ARB_TURN_ROWS rows or drops, or
      ARB_TURN_BYTES, and every turn while the log is off or paused after
      a failed append, commits to the tables;
    - so does the first turn that writes after a checkpoint is due
      (ARB_LOG_ROWS, ARB_LOG_DROPS, ARB_LOG_BYTES, ARB_LOG_FILE_BYTES),
      unless the saver takes the checkpoint (--sync full: "Checkpoints on
      the saver's thread", below) and the turn goes on to the log.

    Crash safety: a turn's record is appended only after its transaction
    is closed (nothing can fail after the record is synced), and the reply
    goes after the sync. A checkpoint stores the next generation in the
    tables in its own transaction, so its commit makes the log's records
    obsolete at once; a crash before the log is cut leaves records that
    the replay skips. At open, the records of the tables' generation are
    read back (arb_journal_batch_open_log) and checkpointed before
    anything reads the journal.

    A failure to write to the tables fails the turn as a failed statement
    or COMMIT does; a failed append fails it too (ARB_JOURNAL_FULL: the
    broker rolls the turn back and probes), and pauses the log until a
    checkpoint has committed.
*/

#include "arb_bigmem.h"
#include "arb_journal_priv.h"
#include "arb_queue.h"

#include <sys/random.h>


//  A row as it is held, and logged: this head, then the bytes of the
//  queue's name, the task's name, the headers (if any) and the payload,
//  padded to 8 bytes.
typedef struct {
    uint64_t id;
    uint64_t created_ms;
    int64_t max_attempts;
    int32_t state;
    int32_t priority;
    uint32_t queue_size, name_size;
    uint32_t headers_size;  //  S_NO_HEADERS: none (NULL in the column)
    uint32_t payload_size;
    uint32_t unwatched;
    uint32_t pad;
} s_row_t;

#define S_NO_HEADERS UINT32_MAX
#define S_ALIGN(n)   (((n) + 7) & ~(size_t) 7)

//  A record's body: these counts, the rows, then the drops' ids.
typedef struct {
    uint32_t rows;
    uint32_t drops;
} s_counts_t;

//  SQL of an INSERT of count plain rows, or a DELETE of count ids: ?NNN
//  numbered in order, row r's column c at r * ARB_BATCH_COLUMNS + c + 1.
char *
arb_journal_batch_insert_sql (size_t count)
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

char *
arb_journal_batch_drop_sql (size_t count)
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
    self->held_sorted = true;
    for (size_t k = 0; k < ARB_BATCH_SIZES; k++) {
        char *insert = arb_journal_batch_insert_sql ((size_t) 1 << k);
        char *drop = arb_journal_batch_drop_sql ((size_t) 1 << k);
        int rc = arb_journal_prepare (self, &self->insert_rows[k], insert)
                 || arb_journal_prepare (self, &self->drop_rows[k], drop);
        free (insert);
        free (drop);
        if (rc)
            return -1;
    }
    return 0;
}

static void s_join (arb_journal_t *self);
static uint64_t s_next_gen (arb_journal_t *self);

//  Closes both files of the log.
static void
s_close_logs (arb_journal_t *self)
{
    arb_tasklog_destroy (&self->logs[0]);
    arb_tasklog_destroy (&self->logs[1]);
    self->log = NULL;
}

void
arb_journal_batch_destroy (arb_journal_t *self)
{
    s_join (self);
    arb_journal_saver_destroy (&self->saver);
    arb_bigmem_free (self->held, self->held_max, sizeof (*self->held));
    arb_bigmem_free (self->drops, self->drop_max, sizeof (uint64_t));
    arb_bigmem_free (self->batch_bytes, self->batch_max, 1);
    free (self->save_ids);
    free (self->save_drops);
    s_close_logs (self);
}

//  ---------------------------------------------------------------------
//  The rows and drops held

//  An array of *max items of size bytes made max items long (its first
//  items kept): in huge pages once big (arb_bigmem), since each 4 KiB
//  page of a buffer that grows is a fault on the loop when first written
//  (16 to 35 µs on the VMs measured). Returns the array; on failure it
//  stays as it was, and NULL is returned when it had to grow.
static void *
s_resize (void *array, size_t *max, size_t to, size_t size)
{
    void *resized = arb_bigmem_realloc (array, *max * size, to * size);
    if (!resized)
        return to > *max ? NULL : array;
    *max = to;
    return resized;
}

//  Room for size more bytes; returns the offset they go at.
static size_t
s_reserve (arb_journal_t *self, size_t size)
{
    if (self->batch_size + size > self->batch_max) {
        size_t max = self->batch_max ? self->batch_max : 4096;
        while (max < self->batch_size + size)
            max *= 2;
        self->batch_bytes = (char *) s_resize (self->batch_bytes, &self->batch_max, max, 1);
        assert (self->batch_bytes);
    }
    size_t at = self->batch_size;
    self->batch_size += size;
    return at;
}

static void
s_push_held (arb_journal_t *self, uint64_t id, size_t at)
{
    if (self->held_count == self->held_max) {
        self->held = (arb_journal_held_t *) s_resize (self->held, &self->held_max,
                                                      self->held_max ? self->held_max * 2 : 256,
                                                      sizeof (*self->held));
        assert (self->held);
    }
    if (self->held_count && id <= self->held[self->held_count - 1].id)
        self->held_sorted = false;
    //  the row is written at at already
    int32_t priority;
    memcpy (&priority, self->batch_bytes + at + offsetof (s_row_t, priority), sizeof (priority));
    if (self->held_count == 0) {
        self->held_priority = priority;
        self->held_mixed = false;
    }
    else if (priority != self->held_priority)
        self->held_mixed = true;
    self->held[self->held_count++] = (arb_journal_held_t){.id = id, .at = at};
}

//  Room for count drops in all.
static void
s_reserve_drops (arb_journal_t *self, size_t count)
{
    if (count <= self->drop_max)
        return;
    size_t max = self->drop_max ? self->drop_max : 256;
    while (max < count)
        max *= 2;
    self->drops = (uint64_t *) s_resize (self->drops, &self->drop_max, max, sizeof (uint64_t));
    assert (self->drops);
}

#define S_TRIM_FLOOR (256 * 1024)

//  An array of *max items of size bytes, used up to used: an eighth of
//  it when used fits there and it is over S_TRIM_FLOOR. Returns the array
//  (the bigger one, which still holds everything, if that fails).
static void *
s_shrink (void *array, size_t *max, size_t used, size_t size)
{
    if (*max * size <= S_TRIM_FLOOR || used > *max / 8)
        return array;
    return s_resize (array, max, *max / 8, size);
}

//  Gives back the memory of rows and drops that are gone, once what is
//  held is an eighth of it or less: a backlog the log held (up to twice
//  ARB_LOG_BYTES) would otherwise keep its high-water mark of memory
//  touched, so counted in the broker's RSS, long after it drained.
static void
s_trim (arb_journal_t *self)
{
    self->batch_bytes =
        (char *) s_shrink (self->batch_bytes, &self->batch_max, self->batch_size, 1);
    self->held = (arb_journal_held_t *) s_shrink (self->held, &self->held_max, self->held_count,
                                                  sizeof (*self->held));
    self->drops =
        (uint64_t *) s_shrink (self->drops, &self->drop_max, self->drop_count, sizeof (uint64_t));
}

static void
s_push_drop (arb_journal_t *self, uint64_t id)
{
    s_reserve_drops (self, self->drop_count + 1);
    self->drops[self->drop_count++] = id;
}

//  Encodes a plain row into the bytes and holds it.
static void
s_hold (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    const char *queue = arb_queue_name (task->queue);
    s_row_t head = {
        .id = task->id,
        .created_ms = task->created_ms,
        .max_attempts = task->max_attempts,
        .state = task->state == ARB_STATE_RUNNING ? ARB_STATE_READY : task->state,
        .priority = task->priority,
        .queue_size = (uint32_t) strlen (queue),
        .name_size = (uint32_t) strlen (task->name),
        .headers_size = row->headers.data ? (uint32_t) row->headers.size : S_NO_HEADERS,
        .payload_size = (uint32_t) zframe_size (row->payload),
        .unwatched = task->unwatched,
    };
    size_t headers = row->headers.data ? head.headers_size : 0;
    size_t bytes = head.queue_size + head.name_size + headers + head.payload_size;
    size_t at = s_reserve (self, sizeof (head) + S_ALIGN (bytes));
    char *p = self->batch_bytes + at;
    memcpy (p, &head, sizeof (head));
    p += sizeof (head);
    memcpy (p, queue, head.queue_size);
    p += head.queue_size;
    memcpy (p, task->name, head.name_size);
    p += head.name_size;
    if (headers)
        memcpy (p, row->headers.data, headers);
    p += headers;
    if (head.payload_size)
        memcpy (p, zframe_data (row->payload), head.payload_size);
    p += head.payload_size;
    memset (p, 0, S_ALIGN (bytes) - bytes);
    s_push_held (self, task->id, at);
}

//  Rows held in id order (held_sorted): the index of the first with an
//  id of id or above (held_count if none).
static size_t
s_lower_bound (const arb_journal_t *self, uint64_t id)
{
    size_t low = 0, high = self->held_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (self->held[mid].id < id)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

//  The row held of id, or NULL.
static arb_journal_held_t *
s_find (arb_journal_t *self, uint64_t id)
{
    if (!self->held_sorted) {
        for (size_t i = self->held_count; i-- > 0;)
            if (self->held[i].id == id)
                return &self->held[i];
        return NULL;
    }
    size_t low = s_lower_bound (self, id);
    return low < self->held_count && self->held[low].id == id ? &self->held[low] : NULL;
}

//  The encoded row at an offset: its head, and its bytes after it.
static s_row_t
s_head (const arb_journal_t *self, size_t at)
{
    s_row_t head;
    memcpy (&head, self->batch_bytes + at, sizeof (head));
    return head;
}

static size_t
s_row_size (const s_row_t *head)
{
    size_t headers = head->headers_size == S_NO_HEADERS ? 0 : head->headers_size;
    return sizeof (*head)
           + S_ALIGN ((size_t) head->queue_size + head->name_size + headers + head->payload_size);
}

size_t
arb_journal_batch_row_size (const char *row)
{
    s_row_t head;
    memcpy (&head, row, sizeof (head));
    return s_row_size (&head);
}

int
arb_journal_batch_payload (arb_journal_t *self, uint64_t id, zframe_t **payload, zframe_t **headers)
{
    const arb_journal_held_t *held = s_find (self, id);
    if (!held || held->dead)
        return 0;
    s_row_t head = s_head (self, held->at);
    const char *p = self->batch_bytes + held->at + sizeof (head) + head.queue_size + head.name_size;
    *headers = NULL;
    if (head.headers_size != S_NO_HEADERS) {
        *headers = zframe_new (p, head.headers_size);
        p += head.headers_size;
    }
    *payload = zframe_new (p, head.payload_size);
    return 1;
}

//  ---------------------------------------------------------------------
//  Reads beside the tables

static int
s_compare_ids (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

//  qsort, but for what is in order already: the log's rows are held in
//  the order they came (a queue's ids rising within each priority), and a
//  turn's drops mostly in the order their tasks were handed out. glibc's
//  merge sort compares about n log n / 2 times even then.
static void
s_sort (void *base, size_t n, size_t size, int (*compare) (const void *, const void *))
{
    const char *at = (const char *) base;
    for (size_t i = 1; i < n; i++)
        if (compare (at + (i - 1) * size, at + i * size) > 0) {
            qsort (base, n, size, compare);
            return;
        }
}

//  Sorts ids[0, n), whose first from are sorted already: the rest sorted
//  alone, then merged in from the back. The kept drops grow by a turn's
//  few at a time, and sorting them all again for each read of the
//  backlog was a few percent of P2's loop.
static void
s_sort_tail (uint64_t *ids, size_t from, size_t n)
{
    size_t tail = n - from;
    s_sort (ids + from, tail, sizeof (uint64_t), s_compare_ids);
    if (from == 0 || tail == 0 || ids[from - 1] <= ids[from])
        return;  //  in order as they are
    uint64_t *copy = (uint64_t *) malloc (tail * sizeof (uint64_t));
    assert (copy);
    memcpy (copy, ids + from, tail * sizeof (uint64_t));
    size_t i = from, j = tail, k = n;
    while (j > 0)
        ids[--k] = i > 0 && ids[i - 1] > copy[j - 1] ? ids[--i] : copy[--j];
    free (copy);
}

//  Room for n ids, for a sorted copy of what a running save holds (its
//  rows' ids, its drops), made at the first read beside it.
static uint64_t *
s_new_ids (size_t n)
{
    uint64_t *ids = (uint64_t *) malloc (n * sizeof (uint64_t));
    assert (ids);
    return ids;
}

//  Drops are a set, in the log and in the tables: each part is sorted in
//  place, the kept one once for all the reads until it grows (nothing is
//  written of them yet: the transaction holds none), and goes to beside's
//  kept and turn. A running save's drops, drops[0, frozen_drops), are its
//  own and stay where they are (s_end_save takes that part whole): the
//  kept ones after them are sorted apart, and the save's are looked up
//  in a sorted copy (s_save_drops).
static void
s_sort_drops (arb_journal_t *self, arb_journal_beside_t *beside)
{
    size_t base = self->saving ? self->frozen_drops : 0;
    assert (base <= self->drops_sorted && self->drops_sorted <= self->drop_turn);
    if (self->drops_sorted < self->drop_turn) {
        s_sort_tail (self->drops + base, self->drops_sorted - base, self->drop_turn - base);
        self->drops_sorted = self->drop_turn;
    }
    beside->kept = self->drops + base;
    beside->kept_count = self->drop_turn - base;
    beside->turn = self->drops + self->drop_turn;
    beside->turn_count = self->drop_count - self->drop_turn;
    s_sort (self->drops + self->drop_turn, beside->turn_count, sizeof (uint64_t), s_compare_ids);
    if (!self->saving)
        return;
    if (!self->save_drops && self->frozen_drops) {
        self->save_drops = s_new_ids (self->frozen_drops);
        memcpy (self->save_drops, self->drops, self->frozen_drops * sizeof (uint64_t));
        s_sort (self->save_drops, self->frozen_drops, sizeof (uint64_t), s_compare_ids);
    }
    beside->save_drops = self->save_drops;
    beside->save_drop_count = self->save_drops ? self->frozen_drops : 0;
}

//  Whether a drop held (the turn's, kept, or a running save's) names id.
static bool
s_dropped (arb_journal_t *self, uint64_t id)
{
    if (self->drop_count == 0)
        return false;
    arb_journal_beside_t drops = {0};
    s_sort_drops (self, &drops);
    return arb_journal_beside_dropped (&drops, id);
}

bool
arb_journal_batch_holds (arb_journal_t *self, uint64_t id)
{
    return self->tables || self->fault != ARB_JOURNAL_SOUND || s_find (self, id)
           || s_dropped (self, id);
}

bool
arb_journal_batch_live (arb_journal_t *self, uint64_t id, size_t *at, arb_bin_t *queue)
{
    if (self->tables || self->fault != ARB_JOURNAL_SOUND)
        return false;
    const arb_journal_held_t *held = s_find (self, id);
    if (!held || held->dead || s_dropped (self, id))
        return false;
    s_row_t head = s_head (self, held->at);
    *at = held->at;
    *queue = (arb_bin_t){(const uint8_t *) self->batch_bytes + held->at + sizeof (head),
                         head.queue_size};
    return true;
}

//  The ids of the rows the running save writes, sorted, made at the first
//  read beside it: the tables may hold them from its commit on.
static void
s_save_ids (arb_journal_t *self, arb_journal_beside_t *beside)
{
    if (!self->save_ids && self->frozen_held) {
        self->save_ids = s_new_ids (self->frozen_held);
        for (size_t i = 0; i < self->frozen_held; i++)
            self->save_ids[i] = self->held[i].id;
        s_sort (self->save_ids, self->frozen_held, sizeof (uint64_t), s_compare_ids);
    }
    beside->saved = self->save_ids;
    beside->saved_count = self->save_ids ? self->frozen_held : 0;
}

//  The backlog's order: priority highest first, then id.
static int
s_compare_marks (const void *a, const void *b)
{
    const arb_journal_mark_t *x = (const arb_journal_mark_t *) a;
    const arb_journal_mark_t *y = (const arb_journal_mark_t *) b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

bool
arb_journal_batch_beside (arb_journal_t *self,
                          const char *queue,
                          int32_t priority,
                          uint64_t id,
                          size_t max,
                          arb_journal_beside_t *beside)
{
    *beside = (arb_journal_beside_t){0};
    //  The tables and the rows kept, each without the other's. A save that
    //  runs is not waited for (a large one would hold the loop for as long
    //  as it writes): the rows it writes stay held until it is taken in,
    //  and a row of the tables with one of their ids is passed over, since
    //  the read's snapshot may be from before the save's commit or after.
    //  Nothing else the loop does on its connection goes on past a save
    //  but reads of what the log never holds (arb_journal_batch_before).
    if (self->tables || self->fault != ARB_JOURNAL_SOUND)
        return false;
    if (self->saving)
        s_save_ids (self, beside);
    s_sort_drops (self, beside);
    //  Rows held in id order and of one priority are in the backlog's
    //  order already: the walk starts at the position and stops once it
    //  has max, rather than take and sort every row past the position (a
    //  backlog the log holds, tens of thousands of rows, is read back a
    //  few thousand at a time).
    bool ordered = self->held_sorted && !self->held_mixed;
    size_t from = 0;
    if (ordered && self->held_count)
        from = self->held_priority > priority    ? self->held_count
               : self->held_priority == priority ? s_lower_bound (self, id)
                                                 : 0;
    size_t queue_size = strlen (queue);
    for (size_t i = from; i < self->held_count && !(ordered && beside->count == max); i++) {
        const arb_journal_held_t *held = &self->held[i];
        if (held->dead)
            continue;
        s_row_t head = s_head (self, held->at);
        if (head.state != ARB_STATE_READY || head.queue_size != queue_size
            || memcmp (self->batch_bytes + held->at + sizeof (head), queue, queue_size)
            || head.priority > priority || (head.priority == priority && head.id < id)
            || arb_journal_beside_dropped (beside, head.id))
            continue;
        if (beside->count == 0) {
            size_t room = self->held_count - i;
            if (ordered && room > max)
                room = max;
            beside->rows = (arb_journal_mark_t *) malloc (room * sizeof (arb_journal_mark_t));
        }
        assert (beside->rows);
        beside->rows[beside->count++] = (arb_journal_mark_t){head.priority, head.id, held->at};
    }
    if (!ordered)
        s_sort (beside->rows, beside->count, sizeof (arb_journal_mark_t), s_compare_marks);
    if (beside->count > max)
        beside->count = max;
    return true;
}

static bool
s_has_id (const uint64_t *ids, size_t count, uint64_t id)
{
    return count && bsearch (&id, ids, count, sizeof (uint64_t), s_compare_ids);
}

bool
arb_journal_beside_dropped (const arb_journal_beside_t *beside, uint64_t id)
{
    return s_has_id (beside->kept, beside->kept_count, id)
           || s_has_id (beside->turn, beside->turn_count, id)
           || s_has_id (beside->save_drops, beside->save_drop_count, id);
}

bool
arb_journal_beside_saved (const arb_journal_beside_t *beside, uint64_t id)
{
    return s_has_id (beside->saved, beside->saved_count, id);
}

void
arb_journal_beside_end (arb_journal_beside_t *beside)
{
    free (beside->rows);
    *beside = (arb_journal_beside_t){0};
}

void
arb_journal_batch_row (
    arb_journal_t *self, size_t at, arb_task_t *task, char *name, arb_journal_body_t *body)
{
    s_row_t head = s_head (self, at);
    const char *p = self->batch_bytes + at + sizeof (head) + head.queue_size;
    *task = (arb_task_t){
        .id = head.id,
        .state = (uint8_t) head.state,
        .priority = head.priority,
        .max_attempts = (uint32_t) head.max_attempts,
        .jitter = true,  //  the column's default
        .created_ms = head.created_ms,
        .unwatched = head.unwatched != 0,
    };
    arb_task_set_payload_size (task, head.payload_size);
    memcpy (name, p, head.name_size);
    name[head.name_size] = 0;
    p += head.name_size;
    *body = (arb_journal_body_t){0};
    if (head.headers_size != S_NO_HEADERS) {
        //  as SQLite gives an empty blob: no bytes
        body->headers = head.headers_size ? p : NULL;
        body->headers_size = head.headers_size;
        p += head.headers_size;
    }
    body->payload = head.payload_size ? p : NULL;
    body->payload_size = head.payload_size;
}

//  ---------------------------------------------------------------------
//  Writing to the tables

//  The largest batch size, as the index k of 1 << k, not over count.
size_t
arb_journal_batch_size_index (size_t count)
{
    size_t k = 0;
    while (k + 1 < ARB_BATCH_SIZES && ((size_t) 1 << (k + 1)) <= count)
        k++;
    return k;
}

void
arb_journal_batch_bind_row (sqlite3_stmt *stmt, int base, const char *row)
{
    s_row_t head;
    memcpy (&head, row, sizeof (head));
    const char *p = row + sizeof (head);
    arb_sql_bind_u64 (stmt, base + 1, head.id);
    sqlite3_bind_text (stmt, base + 2, p, (int) head.queue_size, SQLITE_STATIC);
    p += head.queue_size;
    sqlite3_bind_text (stmt, base + 3, p, (int) head.name_size, SQLITE_STATIC);
    p += head.name_size;
    sqlite3_bind_int (stmt, base + 4, head.state);
    sqlite3_bind_int (stmt, base + 5, head.priority);
    sqlite3_bind_int64 (stmt, base + 6, head.max_attempts);
    arb_sql_bind_u64 (stmt, base + 7, head.created_ms);
    if (head.headers_size != S_NO_HEADERS) {
        sqlite3_bind_blob (stmt, base + 8, p, (int) head.headers_size, SQLITE_STATIC);
        p += head.headers_size;
    }
    else
        sqlite3_bind_null (stmt, base + 8);
    sqlite3_bind_blob (stmt, base + 9, p, (int) head.payload_size, SQLITE_STATIC);
    sqlite3_bind_int (stmt, base + 10, head.unwatched ? 1 : 0);
}

//  Writes the live rows held from index from to to, by the batch
//  statements of each size, the biggest first: 13 rows are a statement
//  of 8, one of 4 and one of 1. 0 or -1.
static int
s_write_rows (arb_journal_t *self, size_t from, size_t to)
{
    size_t pick[ARB_BATCH_ROWS];
    int rc = 0;
    while (rc == 0) {
        size_t n = 0;
        for (; from < to && n < ARB_BATCH_ROWS; from++)
            if (!self->held[from].dead)
                pick[n++] = from;
        if (n == 0)
            break;
        for (size_t i = 0; rc == 0 && i < n;) {
            size_t k = arb_journal_batch_size_index (n - i);
            sqlite3_stmt *stmt = self->insert_rows[k];
            for (size_t slot = 0; slot < ((size_t) 1 << k); slot++)
                arb_journal_batch_bind_row (stmt, (int) (slot * ARB_BATCH_COLUMNS),
                                            self->batch_bytes + self->held[pick[i + slot]].at);
            rc = arb_journal_run (self, stmt, "insert");
            i += (size_t) 1 << k;
        }
    }
    return rc;
}

static int
s_write_drops (arb_journal_t *self, size_t from, size_t to)
{
    int rc = 0;
    while (rc == 0 && from < to) {
        size_t k = arb_journal_batch_size_index (to - from);
        sqlite3_stmt *stmt = self->drop_rows[k];
        for (size_t slot = 0; slot < ((size_t) 1 << k); slot++)
            arb_sql_bind_u64 (stmt, (int) slot + 1, self->drops[from + slot]);
        rc = arb_journal_run (self, stmt, "drop");
        from += (size_t) 1 << k;
    }
    return rc;
}

//  Forgets the transaction's own rows and drops once they are in it and
//  it goes to the tables: only the rows kept wait for its commit.
static void
s_shed_turn (arb_journal_t *self)
{
    self->held_count = self->held_written = self->held_turn;
    self->batch_size = self->bytes_turn;
    self->drop_count = self->drops_written = self->drop_turn;
}

//  Writes into the open transaction every row and drop, kept or held,
//  that it does not hold yet (rows before drops: a drop may be of a row).
//  0, or -1 (the turn's rows and drops forgotten).
static int
s_settle (arb_journal_t *self)
{
    if (self->settling)
        return 0;
    s_join (self);
    size_t rows_from = self->tables ? self->held_written : 0;
    size_t drops_from = self->tables ? self->drops_written : 0;
    self->settling = true;
    int rc = s_write_rows (self, rows_from, self->held_count);
    if (rc == 0)
        rc = s_write_drops (self, drops_from, self->drop_count);
    self->settling = false;
    if (rc) {
        arb_journal_batch_forget (self);
        return -1;
    }
    //  A view that wrote rows kept (a read of the tables: a STATUS, a LIST
    //  of the cold backlog) has done a checkpoint's work: a turn with
    //  writes of its own then commits it rather than roll it back, and the
    //  next views have little to write.
    if (!self->tables && (self->held_turn || self->drop_turn))
        self->view_kept = true;
    self->tables = true;
    self->held_written = self->held_count;
    self->drops_written = self->drop_count;
    if (self->must_tables)
        s_shed_turn (self);
    return 0;
}

int
arb_journal_settle (arb_journal_t *self)
{
    //  a turn that may still go to the log writes nothing to the tables
    if (!self->in_txn || !self->must_tables)
        return 0;
    return s_settle (self);
}

int
arb_journal_batch_before (arb_journal_t *self, sqlite3_stmt *stmt)
{
    if (self->settling || stmt == self->begin || stmt == self->commit || stmt == self->rollback)
        return 0;
    //  A read of what the log never holds needs nothing of it, and runs
    //  beside a save, which writes only rows the log held and the log's
    //  own keys, which nothing reads but the open (the retention sweep's
    //  search, once a second, waited for saves of up to 16 MiB). Nothing
    //  else of the loop's runs on its connection while the saver writes:
    //  the two never write at once, and a read sees the save whole.
    bool reads = sqlite3_stmt_readonly (stmt);
    if (reads && arb_journal_misses_log (self, stmt))
        return 0;
    s_join (self);
    if (!reads)
        self->must_tables = true;
    if (!self->in_txn) {
        if (self->held_count == 0 && self->drop_count == 0)
            return 0;  //  the tables are the whole journal
        if (arb_journal_run (self, self->begin, "begin"))
            return -1;
        self->in_txn = true;
    }
    return s_settle (self);
}

//  Before a row or drop is held: a transaction that goes to the tables
//  writes a full batch first.
static int
s_make_room (arb_journal_t *self)
{
    if (!self->must_tables)
        return 0;
    size_t rows = self->held_count - (self->tables ? self->held_written : self->held_turn);
    size_t drops = self->drop_count - (self->tables ? self->drops_written : self->drop_turn);
    return rows >= ARB_BATCH_ROWS || drops >= ARB_BATCH_ROWS ? s_settle (self) : 0;
}

//  After: a turn that holds too much for the log goes to the tables.
static void
s_check_turn (arb_journal_t *self)
{
    if (self->held_count - self->held_turn > ARB_TURN_ROWS
        || self->drop_count - self->drop_turn > ARB_TURN_ROWS
        || self->batch_size - self->bytes_turn > ARB_TURN_BYTES)
        self->must_tables = true;
}

int
arb_journal_batch_insert (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    assert (self->in_txn);
    if (self->fault != ARB_JOURNAL_SOUND)
        return -1;  //  as arb_journal_run: nothing but a rollback after a failure
    //  A row of an id dropped earlier in the turn (ids grow and are never
    //  given twice, so only in principle) must follow that drop, and the
    //  log finds rows by id: an order it cannot keep goes to the tables.
    bool after_drop = task->id <= self->drop_top;
    if (after_drop || (self->held_count && task->id <= self->held[self->held_count - 1].id))
        self->must_tables = true;
    if ((after_drop && s_settle (self)) || s_make_room (self))
        return -1;
    s_hold (self, task, row);
    s_check_turn (self);
    return 0;
}

bool
arb_journal_batch_takes (const arb_journal_row_t *row)
{
    return row->headers.size + zframe_size (row->payload) <= ARB_BATCH_ROW_BYTES;
}

int
arb_journal_batch_drop (arb_journal_t *self, uint64_t id)
{
    assert (self->in_txn);
    if (self->fault != ARB_JOURNAL_SOUND)
        return -1;
    if (s_make_room (self))
        return -1;
    s_push_drop (self, id);
    if (id > self->drop_top)
        self->drop_top = id;
    s_check_turn (self);
    return 0;
}

void
arb_journal_batch_forget (arb_journal_t *self)
{
    self->held_count = self->held_turn;
    self->batch_size = self->bytes_turn;
    self->drop_count = self->drop_turn;
    self->held_written = self->drops_written = 0;
    self->drop_top = 0;
    self->tables = self->must_tables = self->view_kept = self->settling = false;
}

bool
arb_journal_turn_is_full (arb_journal_t *self)
{
    return self->log && self->log_on && !self->must_tables
           && (self->held_count - self->held_turn >= ARB_TURN_ROWS / 2
               || self->drop_count - self->drop_turn >= ARB_TURN_ROWS / 2
               || self->batch_size - self->bytes_turn >= ARB_TURN_BYTES / 2);
}

bool
arb_journal_batch_is_idle (arb_journal_t *self)
{
    return !self->must_tables && self->held_count == self->held_turn
           && self->drop_count == self->drop_turn;
}

//  ---------------------------------------------------------------------
//  Checkpoints on the saver's thread (--sync full)
//
//  The log has two files. The tables store the generation of the records
//  they have not taken (ARB_LOG_GEN_KEY), the file those are in
//  (ARB_LOG_FILE_KEY), and the generation the records after them get, in
//  the other file, once a checkpoint is on its way (ARB_LOG_NEXT_KEY). A
//  save copies the rows kept and the drops of rows in the tables, hands
//  the copy to the saver (arb_journal_saver.c), and sends the turns from
//  then on to the other file, cleared, with that next generation. The
//  saver writes the copy and moves the keys on (that generation, that
//  file, a new next) in one transaction. Until it commits, a replay takes
//  the first file's records, then the other's; after, the other's only.
//  The rows copied stay kept, frozen (held[0, frozen_held)), so that a
//  payload is still found; when the save ends they go, and those dropped
//  meanwhile become drops of rows in the tables. While a save runs the
//  loop's connection only reads what the save does not change (a task's
//  row the batch has nothing of, what the log never holds: metadata,
//  final tasks) or reads beside it (the cold backlog, passing over the
//  tables' copies of the save's rows); anything else
//  waits for it (s_join), and a transaction that had only read begins
//  again after it, so its reads never see a row twice and its writes
//  never meet the saver's. A save that fails leaves everything kept and
//  pauses the log: the next turn is a checkpoint of the loop's own, as
//  after a failed append.

//  Takes in the save that ended with rc (0: committed).
static void
s_end_save (arb_journal_t *self, int rc)
{
    assert (self->saving && !self->tables);
    self->saving = false;
    free (self->save_ids);
    self->save_ids = NULL;
    free (self->save_drops);
    self->save_drops = NULL;
    self->drops_sorted = 0;  //  the save's drops were not kept in order with the rest
    if (rc) {
        for (size_t i = 0; i < self->frozen_held; i++)
            self->held[i].sent = false;
        self->frozen_held = self->frozen_drops = self->frozen_bytes = 0;
        self->log_paused = true;
        zsys_warning ("journal: a checkpoint on the saver's thread failed: the next turn writes "
                      "every row kept to the tables");
        return;
    }
    //  drops: those the saver wrote go; the rows it wrote that ended since
    //  are rows of the tables now, and their drops go first
    size_t ended = 0;
    for (size_t i = 0; i < self->frozen_held; i++)
        ended += self->held[i].sent && self->held[i].dead;
    size_t after = self->drop_count - self->frozen_drops;
    s_reserve_drops (self, ended + after);
    if (after)
        memmove (self->drops + ended, self->drops + self->frozen_drops, after * sizeof (uint64_t));
    for (size_t i = 0, k = 0; i < self->frozen_held; i++)
        if (self->held[i].sent && self->held[i].dead)
            self->drops[k++] = self->held[i].id;
    self->drop_turn = self->drop_turn - self->frozen_drops + ended;
    self->drop_count = ended + after;
    self->drops_sorted = 0;
    //  rows: the frozen ones go, the others move down, the turn's after
    //  the kept ones as before
    size_t keep = 0, bytes = 0, dead = 0, turn = 0, bytes_turn = 0;
    for (size_t i = self->frozen_held; i <= self->held_count; i++) {
        if (i == self->held_turn) {
            turn = keep;
            bytes_turn = bytes;
        }
        if (i == self->held_count)
            break;
        s_row_t head = s_head (self, self->held[i].at);
        size_t size = s_row_size (&head);
        memmove (self->batch_bytes + bytes, self->batch_bytes + self->held[i].at, size);
        self->held[keep] = self->held[i];
        self->held[keep].at = bytes;
        dead += self->held[keep].dead;
        keep++;
        bytes += size;
    }
    self->held_count = keep;
    self->held_turn = turn;
    self->held_dead = dead;
    self->batch_size = bytes;
    self->bytes_turn = bytes_turn;
    self->frozen_held = self->frozen_drops = self->frozen_bytes = 0;
    self->log_next = self->save_next;
    s_trim (self);
}

//  Waits for a save that runs, and takes it in.
static void
s_join (arb_journal_t *self)
{
    if (!self->saving)
        return;
    s_end_save (self, arb_journal_saver_wait (self->saver));
    //  A read beside the save (the backlog's, arb_journal_batch_beside, or
    //  one of what the log never holds) may have begun the transaction's
    //  snapshot before the save committed:
    //  the rows memory just let go would be missing from it, and a write
    //  after it would fail (SQLite refuses to write from an older
    //  snapshot). A transaction that has only read begins again.
    if (self->in_txn && sqlite3_txn_state (self->db, "main") == SQLITE_TXN_READ
        && arb_journal_run (self, self->rollback, "rollback") == 0)
        arb_journal_run (self, self->begin, "begin");
}

//  The file of logs index i, opened (and created) if it is not yet.
static arb_tasklog_t *
s_log_file (arb_journal_t *self, uint64_t i)
{
    if (!self->logs[i]) {
        char *path =
            zsys_sprintf ("%s%s", self->path, i ? ARB_JOURNAL_LOG2_SUFFIX : ARB_JOURNAL_LOG_SUFFIX);
        self->logs[i] = arb_tasklog_new (path, self->log_sync);
        zstr_free (&path);
        if (self->logs[i] && self->log_fault)
            arb_tasklog_set_fault (self->logs[i], self->log_fault);
    }
    return self->logs[i];
}

//  Hands the checkpoint that is due to the saver, and sends the turns to
//  the other file (checkpoint_due cleared); else leaves it due, for the
//  loop's own.
static void
s_start_save (arb_journal_t *self)
{
    s_join (self);  //  one at a time
    uint64_t other = 1 - self->log_file;
    if (!self->saver || !self->log_next || self->log_paused || !s_log_file (self, other))
        return;
    if (arb_tasklog_clear (self->logs[other]))
        zsys_warning ("journal: the task log could not be cut (%s): its records are obsolete, "
                      "and new ones overwrite them",
                      strerror (errno));
    arb_journal_save_t *save = (arb_journal_save_t *) zmalloc (sizeof (arb_journal_save_t));
    size_t bytes = 0;
    for (size_t i = 0; i < self->held_turn; i++)
        if (!self->held[i].dead) {
            s_row_t head = s_head (self, self->held[i].at);
            bytes += s_row_size (&head);
        }
    //  arb_bigmem: 16 MiB of fresh pages would be 4,096 faults on the loop
    save->rows_bytes = bytes ? bytes : 1;
    save->rows = (char *) arb_bigmem_calloc (save->rows_bytes, 1);
    save->drops_bytes = self->drop_turn ? self->drop_turn * sizeof (uint64_t) : 1;
    save->drops = (uint64_t *) arb_bigmem_calloc (save->drops_bytes, 1);
    assert (save->rows && save->drops);
    for (size_t i = 0, at = 0; i < self->held_turn; i++)
        if (!self->held[i].dead) {
            s_row_t head = s_head (self, self->held[i].at);
            size_t size = s_row_size (&head);
            memcpy (save->rows + at, self->batch_bytes + self->held[i].at, size);
            at += size;
            save->row_count++;
            self->held[i].sent = true;
        }
    if (self->drop_turn)
        memcpy (save->drops, self->drops, self->drop_turn * sizeof (uint64_t));
    save->drop_count = self->drop_turn;
    save->gen = self->log_next;
    save->file = other;
    save->next = s_next_gen (self);
    self->frozen_held = self->held_turn;
    self->frozen_drops = self->drop_turn;
    self->drops_sorted = self->frozen_drops;  //  from here, of the kept drops after the save's
    self->frozen_bytes = self->bytes_turn;
    self->save_next = save->next;
    self->saving = true;
    self->log = self->logs[other];
    self->log_file = other;
    self->log_gen = self->log_next;
    self->log_next = 0;
    self->checkpoint_due = false;
    arb_journal_saver_start (self->saver, &save);
}

//  ---------------------------------------------------------------------
//  Commits

//  Moves rows kept past the dead ones, when those are most of them.
static void
s_compact (arb_journal_t *self)
{
    if (self->saving || self->held_dead < 64
        || self->held_dead < self->held_count - self->held_dead)
        return;
    size_t keep = 0, bytes = 0;
    for (size_t i = 0; i < self->held_count; i++) {
        if (self->held[i].dead)
            continue;
        s_row_t head = s_head (self, self->held[i].at);
        size_t size = s_row_size (&head);
        memmove (self->batch_bytes + bytes, self->batch_bytes + self->held[i].at, size);
        self->held[keep++] = (arb_journal_held_t){.id = self->held[i].id, .at = bytes};
        bytes += size;
    }
    self->held_count = self->held_turn = keep;
    self->batch_size = self->bytes_turn = bytes;
    self->held_dead = 0;
}

//  Whether what the log keeps has reached its bounds (times ARB_LOG_DROPS
//  and ARB_LOG_FILE_BYTES): what a running save has is not counted (its
//  rows, dead or not).
static bool
s_log_is_over (arb_journal_t *self, size_t times)
{
    size_t rows =
        self->saving ? self->held_count - self->frozen_held : self->held_count - self->held_dead;
    return rows >= ARB_LOG_ROWS || self->batch_size - self->frozen_bytes >= ARB_LOG_BYTES
           || self->drop_count - self->frozen_drops >= times * ARB_LOG_DROPS
           || arb_tasklog_size (self->log) >= times * ARB_LOG_FILE_BYTES;
}

//  The turn the log took becomes kept: its drops of rows held mark them
//  dead, its drops of rows in the tables wait for the next checkpoint.
static void
s_keep_turn (arb_journal_t *self)
{
    size_t keep = self->drop_turn;
    for (size_t i = self->drop_turn; i < self->drop_count; i++) {
        arb_journal_held_t *held = s_find (self, self->drops[i]);
        if (!held)
            self->drops[keep++] = self->drops[i];
        else if (!held->dead) {
            held->dead = true;
            self->held_dead++;
        }
    }
    self->drop_count = self->drop_turn = keep;
    self->held_turn = self->held_count;
    self->bytes_turn = self->batch_size;
    self->held_written = self->drops_written = 0;
    self->drop_top = 0;
    self->tables = self->must_tables = self->view_kept = false;
    s_compact (self);
    s_trim (self);
    self->checkpoint_due = s_log_is_over (self, 1);
}

//  Appends the turn's rows and drops to the log. The transaction holds
//  nothing of its own (at most a view of what is kept): it is closed
//  first, so that nothing can fail once the record is durable.
static int
s_commit_log (arb_journal_t *self)
{
    //  a view the turn wrote goes with the rollback: a failure below must
    //  not leave it counted while a save that this commit started runs
    self->tables = false;
    self->held_written = self->drops_written = 0;
    if (arb_journal_run (self, self->rollback, "rollback"))
        return -1;
    s_counts_t counts = {(uint32_t) (self->held_count - self->held_turn),
                         (uint32_t) (self->drop_count - self->drop_turn)};
    arb_tasklog_part_t parts[3] = {
        {&counts, sizeof (counts)},
        {self->batch_bytes + self->bytes_turn, self->batch_size - self->bytes_turn},
        {self->drops + self->drop_turn, counts.drops * sizeof (uint64_t)},
    };
    if (arb_tasklog_append (self->log, self->log_gen, parts, 3, self->log_sync)) {
        bool doubtful = arb_tasklog_is_doubtful (self->log);
        //  a record that may be read back: a refusal saying nothing was
        //  stored would be wrong, so the broker stops and its restart
        //  replays it
        zsys_error (doubtful ? "journal: the task log failed (%s) and its record could not be "
                               "unmade: a restart may replay it"
                             : "journal: the task log failed: %s; the tables take the next turns",
                    strerror (errno));
        if (self->fault == ARB_JOURNAL_SOUND)
            self->fault = doubtful ? ARB_JOURNAL_BROKEN : ARB_JOURNAL_FULL;
        self->log_paused = true;
        return -1;
    }
    s_keep_turn (self);
    return 0;
}

//  Forgets every row and drop: the tables have them all.
static void
s_clear (arb_journal_t *self)
{
    self->held_count = self->held_turn = self->held_dead = 0;
    self->batch_size = self->bytes_turn = 0;
    self->drop_count = self->drop_turn = self->drops_sorted = 0;
    self->held_sorted = true;
    arb_journal_batch_forget (self);
    s_trim (self);
}

//  A generation for the log's next records: random, so that bytes of an
//  older log, or a payload inside one, cannot pass for a record of it.
static uint64_t
s_next_gen (arb_journal_t *self)
{
    uint64_t gen = 0;
    while (gen == 0 || gen == self->log_gen || gen == self->log_next)
        if (getrandom (&gen, sizeof (gen), 0) != (ssize_t) sizeof (gen))
            gen = self->log_gen + self->log_next + 1;
    return gen;
}

//  Commits to the tables: with every row and drop kept, and the log's
//  next generation, when the log has any (a checkpoint).
static int
s_commit_tables (arb_journal_t *self)
{
    s_join (self);
    //  after a failed append the log may hold a record of this generation
    //  that was never acknowledged: the next generation makes it obsolete
    bool checkpoint =
        self->log
        && (self->held_turn || self->drop_turn || self->log_paused || arb_tasklog_size (self->log));
    uint64_t gen = checkpoint ? s_next_gen (self) : self->log_gen;
    //  the keys go with every checkpoint, and with the first turn to the
    //  tables that finds no next generation stored (a save needs one)
    bool keys = checkpoint || (self->log && !self->log_next);
    uint64_t next = keys ? gen : self->log_next;
    while (keys && next == gen)
        next = s_next_gen (self);
    int rc = s_settle (self);
    if (rc == 0 && keys) {
        self->settling = true;  //  the log's keys are the batch's own writes
        rc = arb_journal_set_number (self, ARB_LOG_GEN_KEY, gen)
             || arb_journal_set_number (self, ARB_LOG_FILE_KEY, self->log_file)
             || arb_journal_set_number (self, ARB_LOG_NEXT_KEY, next);
        self->settling = false;
    }
    if (rc == 0)
        rc = arb_journal_run (self, self->commit, "commit");
    if (rc) {
        //  COMMIT can fail and leave the transaction open (SQLITE_BUSY), or
        //  roll it back itself (I/O error); either way nothing of it stays
        if (!sqlite3_get_autocommit (self->db))
            arb_journal_run (self, self->rollback, "rollback");
        //  a commit that failed at its sync may be on the disk all the
        //  same, with the next generation: the log waits for a checkpoint
        //  that is known to have committed
        if (checkpoint)
            self->log_paused = true;
        return -1;
    }
    s_clear (self);
    self->checkpoint_due = false;
    self->log_paused = false;
    self->log_next = next;
    if (checkpoint) {
        self->log_gen = gen;
        //  Without a sync at each commit (--sync normal) the tables'
        //  commit may not be on the disk when the next records overwrite
        //  the log's: a checkpoint of SQLite's own syncs its WAL first. If
        //  it fails, the old records must stay, and new ones after them
        //  would be past the replay's end (it stops at the first record of
        //  another generation): the log pauses, and the turns go to the
        //  tables until a checkpoint's WAL sync works.
        if (!self->log_sync
            && sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL)
                   != SQLITE_OK) {
            zsys_warning ("journal: the WAL could not be synced after a checkpoint (%s): the "
                          "tables take the next turns",
                          sqlite3_errmsg (self->db));
            self->log_paused = true;
            return 0;
        }
        if (arb_tasklog_clear (self->log))
            zsys_warning ("journal: the task log could not be cut (%s): its records are "
                          "obsolete, and new ones overwrite them",
                          strerror (errno));
    }
    return 0;
}

void
arb_journal_batch_take_ended (arb_journal_t *self)
{
    if (self->saving && arb_journal_saver_ended (self->saver))
        s_join (self);
}

int
arb_journal_batch_commit (arb_journal_t *self)
{
    if (self->fault != ARB_JOURNAL_SOUND) {
        //  as arb_journal_run: nothing but a rollback after a failure
        if (!sqlite3_get_autocommit (self->db))
            arb_journal_run (self, self->rollback, "rollback");
        return -1;
    }
    if (arb_journal_batch_is_idle (self)) {
        //  nothing of its own: a view of the rows kept at most, which the
        //  log holds already
        int rc = arb_journal_run (self, self->rollback, "rollback");
        arb_journal_batch_forget (self);
        arb_journal_batch_take_ended (self);
        return rc;
    }
    arb_journal_batch_take_ended (self);
    if (self->log && self->log_on && !self->log_paused && !self->must_tables && !self->view_kept) {
        //  A checkpoint due while a save runs waits for its end, the turns
        //  going on to the log, unless the rows reach their bounds (the
        //  memory): drops of rows in the tables, 8 bytes each, and the
        //  file may pass theirs. Waiting here held the loop up to 150 ms
        //  in a batched P2, its drops due before the save of its backlog
        //  had ended.
        if (self->checkpoint_due && (!self->saving || s_log_is_over (self, ARB_LOG_PAST_SAVE)))
            s_start_save (self);
        if (!self->checkpoint_due || self->saving)
            return s_commit_log (self);
    }
    return s_commit_tables (self);
}

//  ---------------------------------------------------------------------
//  The replay at open

//  Checks a record's body: counts, then each row's sizes, state and names
//  within it (names the broker can hold, as the tables' rows are checked
//  when read), then the drops filling the rest. Sets *rows_end. Whether
//  it is sound.
static bool
s_body_is_sound (const uint8_t *body, size_t size, s_counts_t *counts, size_t *rows_end)
{
    if (size < sizeof (*counts))
        return false;
    memcpy (counts, body, sizeof (*counts));
    size_t at = sizeof (*counts);
    for (uint32_t i = 0; i < counts->rows; i++) {
        s_row_t head;
        if (size - at < sizeof (head))
            return false;
        memcpy (&head, body + at, sizeof (head));
        size_t headers = head.headers_size == S_NO_HEADERS ? 0 : head.headers_size;
        uint64_t bytes = (uint64_t) head.queue_size + head.name_size + headers + head.payload_size;
        if (head.id == 0 || head.state < ARB_STATE_WAITING || head.state > ARB_STATE_READY
            || S_ALIGN (bytes) > size - at - sizeof (head)
            || !arb_name_is_valid ((const char *) body + at + sizeof (head), head.queue_size)
            || !arb_name_is_valid ((const char *) body + at + sizeof (head) + head.queue_size,
                                   head.name_size))
            return false;
        at += sizeof (head) + S_ALIGN (bytes);
    }
    *rows_end = at;
    return (size - at) % sizeof (uint64_t) == 0 && (size - at) / sizeof (uint64_t) == counts->drops;
}

//  Takes one record of the tables' generation: its rows held, its drops
//  applied as at its commit. A record of another generation ends the
//  replay (1): the records of this one are written from the file's start
//  on, and what follows them is older (arb_tasklog.h).
static int
s_replay (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    arb_journal_t *self = (arb_journal_t *) arg;
    if (gen != self->log_gen)
        return 1;
    s_counts_t counts;
    size_t rows_end;
    if (!s_body_is_sound (body, size, &counts, &rows_end)) {
        zsys_error ("journal: a task log record has a sound checksum but no sound rows; "
                    "arbiterd will not guess at it: restore the journal and its log from a "
                    "backup");
        return -1;
    }
    for (size_t at = sizeof (counts); at < rows_end;) {
        s_row_t head;
        memcpy (&head, body + at, sizeof (head));
        size_t row_size = s_row_size (&head);
        size_t offset = s_reserve (self, row_size);
        memcpy (self->batch_bytes + offset, body + at, row_size);
        s_push_held (self, head.id, offset);
        at += row_size;
    }
    for (uint32_t i = 0; i < counts.drops; i++) {
        uint64_t id;
        memcpy (&id, body + rows_end + i * sizeof (id), sizeof (id));
        s_push_drop (self, id);
    }
    s_keep_turn (self);
    self->log_replayed++;
    return 0;
}

//  A log file's records are not this journal's (the reader's stop): it is
//  read to find its end, as a file the log may write again.
static int
s_skip (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    (void) arg;
    (void) gen;
    (void) body;
    (void) size;
    return 1;
}

//  Refuses a log of some size beside a fresh journal: -1.
static int
s_check_fresh (arb_journal_t *self, const char *path)
{
    struct stat info;
    if (stat (path, &info) == 0 && info.st_size > 0) {
        zsys_error ("journal: %s is the task log of a journal that is not there (%s is "
                    "new); arbiterd will not apply it to another: move it away, or put "
                    "back the journal it belongs to",
                    path, self->path);
        return -1;
    }
    return 0;
}

int
arb_journal_batch_check_fresh (arb_journal_t *self)
{
    char *paths[2] = {zsys_sprintf ("%s" ARB_JOURNAL_LOG_SUFFIX, self->path),
                      zsys_sprintf ("%s" ARB_JOURNAL_LOG2_SUFFIX, self->path)};
    int rc = s_check_fresh (self, paths[0]) || s_check_fresh (self, paths[1]) ? -1 : 0;
    zstr_free (&paths[0]);
    zstr_free (&paths[1]);
    return rc;
}

//  Opens the log's files and reads back the records of the tables'
//  generation, in the tables' file, then those of the next one in the
//  other file (a save that had not committed). 0 or -1.
static int
s_read_logs (arb_journal_t *self, bool fresh)
{
    char *paths[2] = {zsys_sprintf ("%s" ARB_JOURNAL_LOG_SUFFIX, self->path),
                      zsys_sprintf ("%s" ARB_JOURNAL_LOG2_SUFFIX, self->path)};
    uint64_t gen = 0, file = 0, next = 0;
    int rc = fresh && (s_check_fresh (self, paths[0]) || s_check_fresh (self, paths[1])) ? -1 : 0;
    if (rc == 0)
        rc = arb_journal_meta_number (self, ARB_LOG_GEN_KEY, &gen)
                     || arb_journal_meta_number (self, ARB_LOG_FILE_KEY, &file)
                     || arb_journal_meta_number (self, ARB_LOG_NEXT_KEY, &next)
                 ? -1
                 : 0;
    self->log_file = file ? 1 : 0;
    uint64_t other = 1 - self->log_file;
    bool other_there = access (paths[other], F_OK) == 0;
    if (rc == 0 && self->log_file == 1 && access (paths[1], F_OK) != 0) {
        //  only a broker that did not stop cleanly leaves the tables
        //  naming the second file (arb_journal_batch_close)
        zsys_error ("journal: %s names %s for its task log's records, and that file is not "
                    "there: arbiterd will not start without records it may need; put it back "
                    "beside the journal (a copy of a journal is all five of its files)",
                    self->path, paths[1]);
        rc = -1;
    }
    if (rc == 0)
        rc = s_log_file (self, self->log_file) ? 0 : -1;
    self->log = self->logs[self->log_file];
    self->log_gen = gen;
    if (rc == 0)
        rc = arb_tasklog_read (self->log, s_replay, self) < 0 ? -1 : 0;
    if (rc == 0 && other_there) {
        self->log_gen = next;
        rc = !s_log_file (self, other)
                     || arb_tasklog_read (self->logs[other], next ? s_replay : s_skip, self) < 0
                 ? -1
                 : 0;
        self->log_gen = gen;
    }
    self->log_next = next;
    zstr_free (&paths[0]);
    zstr_free (&paths[1]);
    return rc;
}

int
arb_journal_batch_open_log (arb_journal_t *self, bool fresh)
{
    if (s_read_logs (self, fresh)) {
        s_clear (self);
        s_close_logs (self);
        return -1;
    }
    self->log_on = true;
    if (self->log_sync)
        self->saver = arb_journal_saver_new (self->path, self->vfs, self->backfill);
    if (self->held_count == 0 && self->drop_count == 0 && arb_tasklog_size (self->log) == 0)
        return 0;
    //  what the log holds goes to the tables before anything reads them
    size_t rows = self->held_count - self->held_dead, drops = self->drop_count;
    if (arb_journal_batch_checkpoint (self)) {
        if (arb_journal_fault (self) != ARB_JOURNAL_FULL) {
            zsys_error ("journal: the task log could not be written to the tables path=%s%s",
                        self->path, ARB_JOURNAL_LOG_SUFFIX);
            s_clear (self);
            arb_journal_saver_destroy (&self->saver);
            s_close_logs (self);
            return -1;
        }
        //  a full disk: the rows stay kept, the reads see them, and the
        //  first commit that works (the broker's probe) checkpoints them
        zsys_warning ("journal: the disk is full: the task log's rows wait for the first "
                      "commit that works path=%s%s rows=%zu drops=%zu",
                      self->path, ARB_JOURNAL_LOG_SUFFIX, rows, drops);
        self->log_paused = true;
        return arb_journal_rollback (self);
    }
    if (self->log_replayed)
        zsys_notice ("journal: task log replayed records=%" PRIu64 " rows=%zu drops=%zu",
                     self->log_replayed, rows, drops);
    return 0;
}

int
arb_journal_batch_checkpoint (arb_journal_t *self)
{
    assert (!self->in_txn);
    s_join (self);
    if (!self->log
        || (self->held_count == 0 && self->drop_count == 0 && arb_tasklog_size (self->log) == 0))
        return 0;
    if (arb_journal_begin (self))
        return -1;
    self->must_tables = true;
    return arb_journal_commit (self);
}

int
arb_journal_batch_close (arb_journal_t *self)
{
    assert (!self->in_txn);
    s_join (self);
    if (!self->log || self->log_file == 0)
        return arb_journal_batch_checkpoint (self);
    //  the next records would go to the first file; the second's stay
    //  until the checkpoint's commit names the first (the log paused: a
    //  checkpoint, with its keys, even with nothing kept)
    if (!s_log_file (self, 0))
        return -1;
    self->log = self->logs[0];
    self->log_file = 0;
    self->log_paused = true;
    if (arb_journal_begin (self))
        return -1;
    self->must_tables = true;
    return arb_journal_commit (self);
}
