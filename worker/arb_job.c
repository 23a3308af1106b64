/*  arb_job.c — one task as a handler sees it (see arb_job.h).

    A job borrows its strings and parents from the DISPATCH message that
    brought the task (the runtime keeps that message alive while the task
    runs) and owns a copy of its payload, its result frame and its staged
    items. A job made by arb_job_new owns a DISPATCH message of its own for
    the same purpose, so both kinds read the same way.

    The payload is copied out of its frame into a buffer the job keeps from
    task to task, with a NUL byte after it: handlers read text payloads as
    C strings (sscanf, strtol), and a ZeroMQ frame has no byte to spare
    after its data. The copy is cheap next to receiving the bytes, and the
    frame's memory goes back at once.

    Which thread touches what: the handler's thread owns everything here
    while the handler runs, except `cancelled`, which the run thread may set
    at any time.
*/

#include "arb_job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

//  Staged items are handed on once there are this many, or this many
//  bytes: a handler that emits a lot streams instead of piling up memory,
//  while the common handful still goes out in one message with the result.
#define S_EMIT_BATCH_ITEMS 1000
#define S_EMIT_BATCH_BYTES (4u << 20)

//  A payload or parent-side report buffer above this size is freed after
//  the task, so one huge task does not pin its memory for the life of the
//  slot.
#define S_KEEP        (1u << 20)
#define S_REPORT_READ (64u << 10)

#define S_REC_EMIT   'E'
#define S_REC_RESULT 'R'
#define S_REC_FAIL   'F'

struct _arb_job_t {
    uint64_t id;
    uint64_t lease;
    uint32_t attempt;
    const char *name;                  //  borrowed from the DISPATCH
    const char *queue;                 //  borrowed from the DISPATCH
    uint8_t *payload;                  //  owned: payload_size bytes and a NUL
    size_t payload_size;               //  bytes
    size_t payload_cap;                //  bytes allocated
    const arb_parent_info_t *parents;  //  borrowed, parent_count records
    size_t parent_count;
    arb_bin_t args;                 //  borrowed from the DISPATCH
    size_t max_payload;             //  bytes: result and emitted items
    zframe_t *result;               //  owned; NULL: empty
    char error[ARB_TEXT_MAX + 1];   //  "" if none
    arb_msg_t *emits;               //  owned: EMIT being staged; NULL if none
    size_t emits_bytes;             //  payload bytes staged in emits
    size_t emitted;                 //  items emitted by this task
    atomic_bool cancelled;          //  set by the run thread on STOP
    uint64_t soft_timeout_ms;       //  0: none
    int64_t soft_at;                //  ms (zclock_mono) the soft timeout passes; 0 none
    arb_job_flush_fn *flush;        //  light: hands a full EMIT on; NULL: keep staging
    void *flush_arg;                //  borrowed
    int report_fd;                  //  heavy child: pipe to the parent; else -1
    uint8_t *report;                //  heavy parent: bytes read, not yet parsed (owned)
    size_t report_size;             //  bytes in report
    size_t report_cap;              //  bytes allocated
    bool has_outcome;               //  heavy parent: R or F seen
    int outcome;                    //  0 success, -1 failure
    arb_msg_t *own;                 //  arb_job_new: owns name, queue, parents
    arb_dispatch_task_t *own_task;  //  in own
};

//  ---------------------------------------------------------------------
//  Getters for handlers.

uint64_t
arb_job_id (arb_job_t *self)
{
    assert (self);
    return self->id;
}

uint32_t
arb_job_attempt (arb_job_t *self)
{
    assert (self);
    return self->attempt;
}

const char *
arb_job_name (arb_job_t *self)
{
    assert (self);
    return self->name;
}

const char *
arb_job_queue (arb_job_t *self)
{
    assert (self);
    return self->queue;
}

const uint8_t *
arb_job_payload (arb_job_t *self)
{
    assert (self);
    return self->payload ? self->payload : (const uint8_t *) "";
}

size_t
arb_job_payload_size (arb_job_t *self)
{
    assert (self);
    return self->payload_size;
}

size_t
arb_job_parent_count (arb_job_t *self)
{
    assert (self);
    return self->parent_count;
}

const char *
arb_job_parent_name (arb_job_t *self, size_t index)
{
    assert (self && index < self->parent_count);
    const char *name = self->parents[index].name;
    return name ? name : "";
}

uint64_t
arb_job_parent_id (arb_job_t *self, size_t index)
{
    assert (self && index < self->parent_count);
    return self->parents[index].id;
}

const uint8_t *
arb_job_args (arb_job_t *self, size_t *size)
{
    assert (self);
    if (size)
        *size = self->args.size;
    return self->args.data ? self->args.data : (const uint8_t *) "";
}

uint32_t
arb_job_parent_state (arb_job_t *self, size_t index)
{
    assert (self && index < self->parent_count);
    return self->parents[index].state;
}

const char *
arb_job_parent_error (arb_job_t *self, size_t index)
{
    assert (self && index < self->parent_count);
    const char *error = self->parents[index].error;
    return error ? error : "";
}

const uint8_t *
arb_job_parent_result (arb_job_t *self, size_t index, size_t *size)
{
    assert (self && index < self->parent_count);
    const arb_bin_t *result = &self->parents[index].result;
    if (size)
        *size = result->size;
    return result->data ? result->data : (const uint8_t *) "";
}

bool
arb_job_is_cancelled (arb_job_t *self)
{
    assert (self);
    return atomic_load_explicit (&self->cancelled, memory_order_relaxed);
}

bool
arb_job_is_soft_timed_out (arb_job_t *self)
{
    assert (self);
    return self->soft_at && zclock_mono () >= self->soft_at;
}

uint64_t
arb_job_soft_timeout_ms (arb_job_t *self)
{
    assert (self);
    return self->soft_timeout_ms;
}

int64_t
arb_job_soft_at (arb_job_t *self)
{
    assert (self);
    return self->soft_at;
}

void
arb_job_set_soft_timeout (arb_job_t *self, uint64_t soft_timeout_ms)
{
    assert (self);
    //  the clock starts now: in a worker, when the task takes its slot
    self->soft_timeout_ms = soft_timeout_ms;
    self->soft_at = soft_timeout_ms ? zclock_mono () + (int64_t) soft_timeout_ms : 0;
}

bool
arb_job_is_heavy (arb_job_t *self)
{
    assert (self);
    return self->report_fd >= 0;
}

//  ---------------------------------------------------------------------
//  What the handler leaves.

static void
s_set_error (arb_job_t *self, const char *text, size_t len)
{
    arb_text_copy (self->error, text, len);
}

int
arb_job_set_result (arb_job_t *self, const void *data, size_t size)
{
    assert (self);
    zframe_destroy (&self->result);
    if (size > self->max_payload)
        return arb_job_fail (self, "result of %zu bytes is over the %zu-byte limit", size,
                             self->max_payload);
    self->result = zframe_new (data, size);
    return 0;
}

int
arb_job_fail (arb_job_t *self, const char *format, ...)
{
    assert (self && format);
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof (self->error), format, args);
    va_end (args);
    arb_text_clean (self->error);
    return -1;
}

const uint8_t *
arb_job_result (arb_job_t *self, size_t *size)
{
    assert (self);
    if (size)
        *size = self->result ? zframe_size (self->result) : 0;
    return self->result ? zframe_data (self->result) : NULL;
}

const char *
arb_job_error (arb_job_t *self)
{
    assert (self);
    return self->error;
}

size_t
arb_job_emitted (arb_job_t *self)
{
    assert (self);
    return self->emitted;
}

//  ---------------------------------------------------------------------
//  Emitting. A heavy child writes each item to its report pipe at once;
//  everyone else stages items in an EMIT message.

static int
s_write_all (int fd, const void *data, size_t size)
{
    const uint8_t *p = (const uint8_t *) data;
    while (size > 0) {
        ssize_t n = write (fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

static void
s_stage (arb_job_t *self, const char *queue, const void *data, size_t size)
{
    if (!self->emits)
        self->emits = arb_msg_new (ARB_MSG_EMIT, 0);
    arb_emit_body_t *body = arb_msg_emit (self->emits);
    arb_emit_item_t *item =
        (arb_emit_item_t *) arb_msg_grow (self->emits, &body->items, sizeof (arb_emit_item_t), 1);
    item->id = self->id;
    item->lease = self->lease;
    item->queue = arb_msg_strdup (self->emits, queue);
    item->payload = zframe_new (data, size);
    self->emits_bytes += size;
    if (self->flush
        && (body->items.n >= S_EMIT_BATCH_ITEMS || self->emits_bytes >= S_EMIT_BATCH_BYTES)) {
        self->emits_bytes = 0;
        self->flush (&self->emits, self->flush_arg);
    }
}

int
arb_job_emit (arb_job_t *self, const char *queue, const void *data, size_t size)
{
    assert (self);
    size_t qlen = queue ? strlen (queue) : 0;
    char why[80];
    if (qlen == 0 || qlen > ARB_NAME_MAX || arb_name_check (queue, qlen, why, sizeof (why))
        || size > self->max_payload || (size && !data))
        return -1;
    if (self->report_fd >= 0) {
        uint8_t head[1 + 4 + 8];
        uint32_t q32 = (uint32_t) qlen;
        uint64_t s64 = size;
        head[0] = S_REC_EMIT;
        memcpy (head + 1, &q32, 4);
        memcpy (head + 5, &s64, 8);
        if (s_write_all (self->report_fd, head, sizeof (head))
            || s_write_all (self->report_fd, queue, qlen)
            || s_write_all (self->report_fd, data, size))
            return -1;
    }
    else
        s_stage (self, queue, data, size);
    self->emitted++;
    return 0;
}

//  ---------------------------------------------------------------------
//  Life cycle.

//  Copies a payload frame (NULL: empty) into the job's buffer, NUL after.
static void
s_set_payload (arb_job_t *self, zframe_t *frame)
{
    size_t size = frame ? zframe_size (frame) : 0;
    if (size + 1 > self->payload_cap) {
        free (self->payload);
        self->payload_cap = size + 1 > 64 ? size + 1 : 64;
        self->payload = (uint8_t *) malloc (self->payload_cap);
        assert (self->payload);  //  out of memory
    }
    if (size)
        memcpy (self->payload, zframe_data (frame), size);
    self->payload[size] = '\0';
    self->payload_size = size;
}

arb_job_t *
arb_job_new_idle (void)
{
    arb_job_t *self = (arb_job_t *) zmalloc (sizeof (arb_job_t));
    self->name = "";
    self->queue = "default";
    self->attempt = 1;
    self->max_payload = ARB_PAYLOAD_DEFAULT_MAX;
    self->report_fd = -1;
    atomic_init (&self->cancelled, false);
    return self;
}

void
arb_job_start (arb_job_t *self, arb_dispatch_task_t *task)
{
    assert (self && task);
    arb_job_finish (self);
    self->id = task->id;
    self->lease = task->lease;
    self->attempt = task->attempt ? task->attempt : 1;
    self->name = task->name ? task->name : "";
    self->queue = task->queue ? task->queue : "default";
    s_set_payload (self, task->payload);
    zframe_destroy (&task->payload);
    self->parents = task->parents.v;
    self->parent_count = task->parents.n;
    self->args = task->args;
    arb_job_set_soft_timeout (self, task->soft_timeout_ms);
}

void
arb_job_finish (arb_job_t *self)
{
    assert (self);
    self->payload_size = 0;
    if (self->payload_cap > S_KEEP) {
        free (self->payload);
        self->payload = NULL;
        self->payload_cap = 0;
    }
    zframe_destroy (&self->result);
    arb_msg_destroy (&self->emits);
    self->emits_bytes = 0;
    self->emitted = 0;
    self->error[0] = '\0';
    self->parents = NULL;
    self->parent_count = 0;
    self->args = (arb_bin_t){NULL, 0};
    self->has_outcome = false;
    self->outcome = 0;
    self->soft_timeout_ms = 0;
    self->soft_at = 0;
    self->report_size = 0;
    if (self->report_cap > S_KEEP) {
        free (self->report);
        self->report = NULL;
        self->report_cap = 0;
    }
    atomic_store (&self->cancelled, false);
}

arb_job_t *
arb_job_new (uint64_t id, const char *name, const char *queue, const void *payload, size_t size)
{
    arb_job_t *self = arb_job_new_idle ();
    self->own = arb_msg_new (ARB_MSG_DISPATCH, 0);
    arb_dispatch_body_t *body = arb_msg_dispatch (self->own);
    arb_dispatch_task_t *task = (arb_dispatch_task_t *) arb_msg_grow (
        self->own, &body->tasks, sizeof (arb_dispatch_task_t), 1);
    task->id = id;
    task->attempt = 1;
    task->name = arb_msg_strdup (self->own, name ? name : "");
    task->queue = arb_msg_strdup (self->own, queue ? queue : "default");
    task->payload = zframe_new (payload, size);
    arb_job_start (self, task);
    self->own_task = task;
    return self;
}

void
arb_job_destroy (arb_job_t **self_p)
{
    assert (self_p);
    arb_job_t *self = *self_p;
    if (!self)
        return;
    arb_job_finish (self);
    free (self->report);
    free (self->payload);
    arb_msg_destroy (&self->own);
    free (self);
    *self_p = NULL;
}

void
arb_job_set_attempt (arb_job_t *self, uint32_t attempt)
{
    assert (self);
    self->attempt = attempt;
}

void
arb_job_set_args (arb_job_t *self, const void *args, size_t size)
{
    assert (self && self->own);
    uint8_t *copy = (uint8_t *) arb_msg_alloc (self->own, size);
    if (size)
        memcpy (copy, args, size);
    self->own_task->args = (arb_bin_t){copy, size};
    self->args = self->own_task->args;
}

void
arb_job_add_parent (arb_job_t *self, const char *name, uint64_t id, const void *result, size_t size)
{
    assert (self && self->own);
    arb_parent_info_t *parent = (arb_parent_info_t *) arb_msg_grow (
        self->own, &self->own_task->parents, sizeof (arb_parent_info_t), 1);
    parent->name = arb_msg_strdup (self->own, name);
    parent->id = id;
    parent->state = ARB_STATE_SUCCEEDED;
    uint8_t *copy = (uint8_t *) arb_msg_alloc (self->own, size);
    if (size)
        memcpy (copy, result, size);
    parent->result.data = copy;
    parent->result.size = size;
    //  growing may have moved the list
    self->parents = self->own_task->parents.v;
    self->parent_count = self->own_task->parents.n;
}

void
arb_job_cancel (arb_job_t *self)
{
    assert (self);
    atomic_store (&self->cancelled, true);
}

uint64_t
arb_job_lease (arb_job_t *self)
{
    assert (self);
    return self->lease;
}

size_t
arb_job_max_payload (arb_job_t *self)
{
    assert (self);
    return self->max_payload;
}

void
arb_job_set_max_payload (arb_job_t *self, size_t max_payload)
{
    assert (self);
    self->max_payload = max_payload;
}

void
arb_job_set_flush (arb_job_t *self, arb_job_flush_fn *fn, void *arg)
{
    assert (self);
    self->flush = fn;
    self->flush_arg = arg;
}

void
arb_job_set_report_fd (arb_job_t *self, int fd)
{
    assert (self);
    self->report_fd = fd;
}

zframe_t *
arb_job_take_result (arb_job_t *self)
{
    assert (self);
    zframe_t *result = self->result;
    self->result = NULL;
    return result;
}

arb_msg_t *
arb_job_take_emits (arb_job_t *self)
{
    assert (self);
    arb_msg_t *emits = self->emits;
    self->emits = NULL;
    self->emits_bytes = 0;
    return emits;
}

//  ---------------------------------------------------------------------
//  The heavy child's report.

int
arb_job_write_outcome (arb_job_t *self, int rc)
{
    assert (self && self->report_fd >= 0);
    uint8_t head[1 + 8];
    size_t head_size;
    const void *data;
    uint64_t size;
    if (rc == 0) {
        size = self->result ? zframe_size (self->result) : 0;
        data = self->result ? zframe_data (self->result) : NULL;
        head[0] = S_REC_RESULT;
        memcpy (head + 1, &size, 8);
        head_size = 1 + 8;
    }
    else {
        uint32_t len = (uint32_t) strlen (self->error);
        size = len;
        data = self->error;
        head[0] = S_REC_FAIL;
        memcpy (head + 1, &len, 4);
        head_size = 1 + 4;
    }
    if (s_write_all (self->report_fd, head, head_size) || s_write_all (self->report_fd, data, size))
        return -1;
    return 0;
}

//  Parses one record at p (avail bytes). Returns its size once it is
//  complete, 0 if more bytes are needed, -1 if it breaks the format.
static ssize_t
s_parse_record (arb_job_t *self, const uint8_t *p, size_t avail)
{
    if (self->has_outcome)
        return -1;  //  nothing may follow the outcome
    if (p[0] == S_REC_EMIT) {
        uint32_t qlen;
        uint64_t size;
        if (avail < 13)
            return 0;
        memcpy (&qlen, p + 1, 4);
        memcpy (&size, p + 5, 8);
        if (qlen == 0 || qlen > ARB_NAME_MAX || size > self->max_payload)
            return -1;
        if (avail < 13 + qlen + size)
            return 0;
        char queue[ARB_NAME_MAX + 1];
        memcpy (queue, p + 13, qlen);
        queue[qlen] = '\0';
        if (strlen (queue) != qlen)
            return -1;
        s_stage (self, queue, p + 13 + qlen, size);
        self->emitted++;
        return (ssize_t) (13 + qlen + size);
    }
    if (p[0] == S_REC_RESULT) {
        uint64_t size;
        if (avail < 9)
            return 0;
        memcpy (&size, p + 1, 8);
        if (size > self->max_payload)
            return -1;
        if (avail < 9 + size)
            return 0;
        zframe_destroy (&self->result);
        self->result = zframe_new (p + 9, size);
        self->has_outcome = true;
        self->outcome = 0;
        return (ssize_t) (9 + size);
    }
    if (p[0] == S_REC_FAIL) {
        uint32_t len;
        if (avail < 5)
            return 0;
        memcpy (&len, p + 1, 4);
        if (len > ARB_TEXT_MAX)
            return -1;
        if (avail < 5 + (size_t) len)
            return 0;
        s_set_error (self, (const char *) p + 5, len);
        self->has_outcome = true;
        self->outcome = -1;
        return (ssize_t) (5 + len);
    }
    return -1;
}

//  Applies every complete record in the buffer and keeps the rest.
static int
s_parse_report (arb_job_t *self)
{
    size_t used = 0;
    while (used < self->report_size) {
        ssize_t n = s_parse_record (self, self->report + used, self->report_size - used);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t) n;
    }
    if (used > 0) {
        memmove (self->report, self->report + used, self->report_size - used);
        self->report_size -= used;
    }
    return 0;
}

int
arb_job_read_report (arb_job_t *self, int fd)
{
    assert (self);
    while (true) {
        if (self->report_cap - self->report_size < S_REPORT_READ) {
            self->report_cap = self->report_cap ? self->report_cap * 2 : S_REPORT_READ * 2;
            self->report = (uint8_t *) realloc (self->report, self->report_cap);
            assert (self->report);  //  out of memory
        }
        ssize_t n =
            read (fd, self->report + self->report_size, self->report_cap - self->report_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return 1;
        self->report_size += (size_t) n;
        if (s_parse_report (self))
            return -1;
    }
}

bool
arb_job_has_outcome (arb_job_t *self)
{
    assert (self);
    return self->has_outcome;
}

int
arb_job_outcome (arb_job_t *self)
{
    assert (self);
    return self->outcome;
}
