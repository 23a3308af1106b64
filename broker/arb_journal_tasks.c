/*  arb_journal_tasks.c — the journal's tasks: rows, their history
    (attempts) and DAG edges, flows, the reads at start and the retention
    sweep; see arb_journal.h and, for the schema, arb_journal.c.
*/

#include "arb_journal_priv.h"
#include "arb_queue.h"

//  ---------------------------------------------------------------------
//  Tasks

//  Whether a new task sets only what insert_plain writes, every other
//  column at its default: no workflow, key, arguments, timeouts or
//  backoff, not handed out yet. Most tasks are; a third of the binds.
static bool
s_is_plain (const arb_task_t *task, const arb_journal_row_t *row)
{
    return !task->ext && task->attempts == 0 && task->lost == 0 && task->backoff == 0
           && task->jitter && task->input == 0 && !task->has_children && task->delivered == 0
           && !row->key && !row->ref && !row->endpoint && !row->args.data && row->payload;
}

//  Binds the columns both INSERTs begin with (?1 to ?6): id, queue, name,
//  state (a running task is stored ready), priority, max_attempts.
static void
s_bind_head (sqlite3_stmt *stmt, const arb_task_t *task)
{
    arb_sql_bind_u64 (stmt, 1, task->id);
    arb_sql_bind_text (stmt, 2, arb_queue_name (task->queue));
    arb_sql_bind_text (stmt, 3, task->name);
    sqlite3_bind_int (stmt, 4, task->state == ARB_STATE_RUNNING ? ARB_STATE_READY : task->state);
    sqlite3_bind_int (stmt, 5, task->priority);
    sqlite3_bind_int64 (stmt, 6, task->max_attempts);
}

static int
s_insert_plain (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    sqlite3_stmt *stmt = self->insert_plain;
    s_bind_head (stmt, task);
    arb_sql_bind_u64 (stmt, 7, task->created_ms);
    arb_sql_bind_bin (stmt, 8, row->headers);
    arb_sql_bind_frame (stmt, 9, row->payload);
    sqlite3_bind_int (stmt, 10, task->unwatched ? 1 : 0);
    return arb_journal_run (self, stmt, "insert");
}

int
arb_journal_insert (arb_journal_t *self, const arb_task_t *task, const arb_journal_row_t *row)
{
    if (s_is_plain (task, row))
        return arb_journal_batch_takes (row) ? arb_journal_batch_insert (self, task, row)
                                             : s_insert_plain (self, task, row);
    sqlite3_stmt *stmt = self->insert;
    s_bind_head (stmt, task);
    sqlite3_bind_int64 (stmt, 7, task->attempts);
    sqlite3_bind_int64 (stmt, 8, task->lost);
    sqlite3_bind_int (stmt, 9, task->backoff);
    arb_sql_bind_u64 (stmt, 10, arb_task_ext (task)->backoff_ms);
    arb_sql_bind_u64 (stmt, 11, arb_task_ext (task)->backoff_cap_ms);
    sqlite3_bind_int (stmt, 12, task->jitter);
    arb_sql_bind_u64 (stmt, 13, arb_task_ext (task)->timeout_ms);
    arb_sql_bind_u64 (stmt, 14, arb_task_ext (task)->not_before_ms);
    arb_sql_bind_u64 (stmt, 15, arb_task_ext (task)->expires_ms);
    arb_sql_bind_u64 (stmt, 16, arb_task_ext (task)->retention_ms);
    arb_sql_bind_u64 (stmt, 17, task->created_ms);
    if (arb_task_ext (task)->flow)
        arb_sql_bind_u64 (stmt, 18, arb_task_ext (task)->flow);
    sqlite3_bind_int (stmt, 19, task->input);
    if (arb_task_ext (task)->origin)
        arb_sql_bind_u64 (stmt, 20, arb_task_ext (task)->origin);
    sqlite3_bind_int64 (stmt, 21, arb_task_ext (task)->parents);
    sqlite3_bind_int64 (stmt, 22, arb_task_ext (task)->copies);
    sqlite3_bind_int (stmt, 23, task->has_children);
    arb_sql_bind_text (stmt, 24, row->key);
    arb_sql_bind_bin (stmt, 25, row->headers);
    if (row->payload)
        arb_sql_bind_frame (stmt, 26, row->payload);
    else
        sqlite3_bind_zeroblob (stmt, 26, 0);
    arb_sql_bind_text (stmt, 27, row->ref);
    arb_sql_bind_text (stmt, 28, row->endpoint);
    arb_sql_bind_bin (stmt, 29, row->args);
    arb_sql_bind_u64 (stmt, 30, arb_task_ext (task)->soft_timeout_ms);
    sqlite3_bind_int64 (stmt, 31, task->delivered);
    sqlite3_bind_int (stmt, 32, task->unwatched ? 1 : 0);
    return arb_journal_run (self, stmt, "insert");
}

int
arb_journal_find_key (
    arb_journal_t *self, const char *key, uint64_t *id, int *state, uint64_t *flow)
{
    sqlite3_stmt *stmt = self->find_key;
    arb_sql_bind_text (stmt, 1, key);
    int rc = arb_journal_step (self, stmt);
    *id = 0;
    if (flow)
        *flow = 0;
    if (rc == SQLITE_ROW) {
        *id = arb_sql_u64 (stmt, 0);
        *state = sqlite3_column_int (stmt, 1);
        if (flow)
            *flow = arb_sql_u64 (stmt, 2);
    }
    return arb_journal_read_end (self, stmt, rc, "key", 0);
}

int
arb_journal_save (arb_journal_t *self,
                  const arb_task_t *task,
                  int state,
                  uint64_t finished_ms,
                  const char *worker,
                  const char *error,
                  zframe_t *result,
                  uint64_t purge_at_ms)
{
    sqlite3_stmt *stmt = self->save;
    arb_sql_bind_u64 (stmt, 1, task->id);
    sqlite3_bind_int (stmt, 2, state == ARB_STATE_RUNNING ? ARB_STATE_READY : state);
    sqlite3_bind_int64 (stmt, 3, task->attempts);
    sqlite3_bind_int64 (stmt, 4, task->lost);
    arb_sql_bind_u64 (stmt, 5, arb_task_ext (task)->not_before_ms);
    arb_sql_bind_u64 (stmt, 6, arb_task_ext (task)->started_ms);
    arb_sql_bind_u64 (stmt, 7, finished_ms);
    arb_sql_bind_text (stmt, 8, worker);
    arb_sql_bind_text (stmt, 9, error);
    arb_sql_bind_frame (stmt, 10, result);
    if (purge_at_ms)
        arb_sql_bind_u64 (stmt, 11, purge_at_ms);
    else
        sqlite3_bind_null (stmt, 11);
    arb_sql_bind_u64 (stmt, 12, arb_task_ext (task)->expires_ms);
    sqlite3_bind_int64 (stmt, 13, task->delivered);
    return arb_journal_run (self, stmt, "save");
}

int
arb_journal_unlose (arb_journal_t *self, uint64_t id)
{
    sqlite3_stmt *stmt = self->unlose;
    arb_sql_bind_u64 (stmt, 1, id);
    sqlite3_bind_int (stmt, 2, ARB_ATTEMPT_LOST);
    return arb_journal_run (self, stmt, "unlose");
}

int
arb_journal_add_attempt (arb_journal_t *self, uint64_t id, const arb_attempt_info_t *attempt)
{
    sqlite3_stmt *stmt = self->add_attempt;
    arb_sql_bind_u64 (stmt, 1, id);
    sqlite3_bind_int64 (stmt, 2, attempt->attempt);
    arb_sql_bind_u64 (stmt, 3, attempt->started_ms);
    arb_sql_bind_u64 (stmt, 4, attempt->ended_ms);
    arb_sql_bind_text (stmt, 5, attempt->worker);
    sqlite3_bind_int (stmt, 6, (int) attempt->outcome);
    arb_sql_bind_text (stmt, 7, attempt->error);
    if (arb_journal_run (self, stmt, "add attempt"))
        return -1;
    //  past the bound, the oldest of the last rows goes
    stmt = self->trim_attempts;
    arb_sql_bind_u64 (stmt, 1, id);
    sqlite3_bind_int (stmt, 2, ARB_HISTORY_FIRST);
    sqlite3_bind_int (stmt, 3, ARB_HISTORY_LAST);
    return arb_journal_run (self, stmt, "trim attempts");
}

int
arb_journal_load_payload (
    arb_journal_t *self, uint64_t id, zframe_t **payload, zframe_t **headers, zframe_t **args)
{
    *payload = NULL;
    *headers = NULL;
    if (args)
        *args = NULL;
    //  a plain row the tables may not have yet (a plain row has no args)
    if (arb_journal_batch_payload (self, id, payload, headers))
        return 0;
    sqlite3_stmt *stmt = self->load_payload;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = arb_journal_step (self, stmt);
    if (rc == SQLITE_ROW) {
        *payload = arb_sql_frame (stmt, 0);
        *headers = arb_sql_frame (stmt, 1);
        if (args)
            *args = arb_sql_frame (stmt, 2);
    }
    arb_sql_done (stmt);
    if (rc != SQLITE_ROW) {
        zsys_error ("journal: payload of task %" PRIu64 " unreadable: %s", id,
                    rc == SQLITE_DONE ? "no such task" : sqlite3_errmsg (self->db));
        return -1;
    }
    if (!*payload)
        *payload = zframe_new_empty ();
    return 0;
}

//  Whether the TASK_COLUMNS of the current row make a task the broker can
//  hold: an id from 1 (0 is no id: the scheduler keys tasks by id), a
//  queue and a name, a state from waiting to max_state (the scheduler
//  counts tasks in arrays indexed by state). Logs why not.
static bool
s_task_usable (sqlite3_stmt *stmt, int max_state)
{
    const char *why = sqlite3_column_int64 (stmt, 0) <= 0 ? "its id is not from 1"
                      : arb_sql_small (stmt, 3, ARB_STATE_WAITING, max_state) < 0
                          ? "its state is not one it can be in"
                      : !arb_sql_is_name (stmt, 1) || !arb_sql_is_name (stmt, 2)
                          ? "its queue or name is no name"
                          : NULL;
    if (why)
        zsys_error ("journal: task %" PRIu64 " skipped: %s", arb_sql_u64 (stmt, 0), why);
    return why == NULL;
}

//  Reads the TASK_COLUMNS of the current row into task; its ext goes in
//  *ext, and task->ext points to it unless it is all zeros.
static void
s_fill_task (sqlite3_stmt *stmt, arb_task_t *task, arb_task_ext_t *ext)
{
    *task = (arb_task_t){0};
    *ext = (arb_task_ext_t){0};
    task->id = arb_sql_u64 (stmt, 0);
    task->state = (uint8_t) sqlite3_column_int (stmt, 3);
    task->priority = sqlite3_column_int (stmt, 4);
    task->max_attempts = (uint32_t) sqlite3_column_int64 (stmt, 5);
    task->attempts = (uint32_t) sqlite3_column_int64 (stmt, 6);
    task->lost = (uint32_t) sqlite3_column_int64 (stmt, 7);
    task->backoff = (uint8_t) sqlite3_column_int (stmt, 8);
    ext->backoff_ms = arb_sql_u64 (stmt, 9);
    ext->backoff_cap_ms = arb_sql_u64 (stmt, 10);
    task->jitter = sqlite3_column_int (stmt, 11) != 0;
    ext->timeout_ms = arb_sql_u64 (stmt, 12);
    ext->not_before_ms = arb_sql_u64 (stmt, 13);
    ext->expires_ms = arb_sql_u64 (stmt, 14);
    ext->retention_ms = arb_sql_u64 (stmt, 15);
    task->created_ms = arb_sql_u64 (stmt, 16);
    ext->flow = arb_sql_u64 (stmt, 17);
    task->input = (uint8_t) sqlite3_column_int (stmt, 18);
    ext->origin = arb_sql_u64 (stmt, 19);
    ext->parents = (uint32_t) sqlite3_column_int64 (stmt, 20);
    ext->copies = (uint32_t) sqlite3_column_int64 (stmt, 21);
    //  a copy not received yet still has the expiry it was made with
    if (ext->origin && ext->expires_ms > task->created_ms)
        ext->window_ms = ext->expires_ms - task->created_ms;
    task->has_children = sqlite3_column_int (stmt, 22) != 0;
    task->has_args = sqlite3_column_int (stmt, 23) != 0;
    ext->soft_timeout_ms = arb_sql_u64 (stmt, 24);
    task->delivered = (uint32_t) sqlite3_column_int64 (stmt, 25);
    //  length () of a blob reads its size, not its bytes (the queue's ready
    //  bytes: the load and the cold reads count what the submit counted)
    arb_task_set_payload_size (task, arb_sql_u64 (stmt, 26));
    task->unwatched = sqlite3_column_int (stmt, 27) != 0;
    if (memcmp (ext, &arb_task_ext_zero, sizeof (*ext)))
        task->ext = ext;
}

//  Reads the TASK_COLUMNS of the current row and hands them to fn.
static int
s_read_task (sqlite3_stmt *stmt, arb_journal_task_fn *fn, void *arg)
{
    arb_task_t task;
    arb_task_ext_t ext;  //  the row's task->ext, while fn runs, if not all zeros
    s_fill_task (stmt, &task, &ext);
    return fn (arg, &task, (const char *) sqlite3_column_text (stmt, 1),
               (const char *) sqlite3_column_text (stmt, 2));
}

int
arb_journal_load_open (arb_journal_t *self, arb_journal_task_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->load_open;
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW)
        if (s_task_usable (stmt, ARB_STATE_READY) && s_read_task (stmt, fn, arg))
            break;
    return arb_journal_read_end (self, stmt, rc, "open tasks", 0);
}

//  Whether a held row comes before the current row of load_ready in the
//  backlog's order (priority highest first, then id).
static bool
s_held_first (const arb_journal_mark_t *held, sqlite3_stmt *stmt)
{
    int32_t priority = sqlite3_column_int (stmt, 4);
    return held->priority > priority
           || (held->priority == priority && held->id < arb_sql_u64 (stmt, 0));
}

int
arb_journal_load_ready (arb_journal_t *self,
                        const char *queue,
                        int32_t priority,
                        uint64_t id,
                        size_t max,
                        arb_journal_ready_fn *fn,
                        void *arg,
                        size_t *count,
                        int32_t *last_priority,
                        uint64_t *last_id)
{
    *count = 0;
    *last_priority = priority;
    *last_id = id;
    //  The rows the batch holds are read beside the tables' rather than
    //  written into a view of them: a turn that reads its backlog back
    //  (consumers behind a producer) stays one the task log can take.
    arb_journal_beside_t beside;
    bool merge = arb_journal_batch_beside (self, queue, priority, id, max, &beside);
    sqlite3_stmt *stmt = self->load_ready;
    arb_sql_bind_text (stmt, 1, queue);
    sqlite3_bind_int (stmt, 2, priority);
    arb_sql_bind_u64 (stmt, 3, id);
    //  the rows of a running save that the tables give are passed over
    //  (memory's are read): they do not count against the limit
    sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) (max + beside.saved_count));
    int rc = merge ? sqlite3_step (stmt) : arb_journal_step (self, stmt);
    while (*count < max && (rc == SQLITE_ROW || rc == SQLITE_DONE)) {
        arb_task_t task;
        arb_task_ext_t ext;
        arb_journal_body_t body;
        if (beside.next < beside.count
            && (rc == SQLITE_DONE || s_held_first (&beside.rows[beside.next], stmt))) {
            const arb_journal_mark_t *held = &beside.rows[beside.next++];
            ++*count;
            *last_priority = held->priority;
            *last_id = held->id;
            char name[ARB_NAME_MAX + 1];
            arb_journal_batch_row (self, held->at, &task, name, &body);
            if (fn (arg, &task, queue, name, &body))
                break;
            continue;
        }
        if (rc == SQLITE_DONE)
            break;
        if (arb_journal_beside_saved (&beside, arb_sql_u64 (stmt, 0))) {
            rc = sqlite3_step (stmt);
            continue;
        }
        ++*count;
        //  past a row it skips too (logged), so that the next read goes on
        *last_priority = sqlite3_column_int (stmt, 4);
        *last_id = arb_sql_u64 (stmt, 0);
        if (!arb_journal_beside_dropped (&beside, *last_id)
            && s_task_usable (stmt, ARB_STATE_READY)) {
            s_fill_task (stmt, &task, &ext);
            //  payload and headers follow the 28 TASK_COLUMNS
            body = (arb_journal_body_t){
                .payload = sqlite3_column_blob (stmt, 28),
                .payload_size = (size_t) sqlite3_column_bytes (stmt, 28),
                .headers = sqlite3_column_blob (stmt, 29),
                .headers_size = (size_t) sqlite3_column_bytes (stmt, 29),
            };
            if (fn (arg, &task, (const char *) sqlite3_column_text (stmt, 1),
                    (const char *) sqlite3_column_text (stmt, 2), &body))
                break;
        }
        rc = sqlite3_step (stmt);  //  a view, if any, was written at the first step
    }
    arb_journal_beside_end (&beside);
    return arb_journal_read_end (self, stmt, rc, "cold tasks", 0);
}

int
arb_journal_load_task (
    arb_journal_t *self, uint64_t id, arb_journal_task_fn *fn, void *arg, bool *found)
{
    sqlite3_stmt *stmt = self->load_task;
    arb_sql_bind_u64 (stmt, 1, id);
    //  not arb_journal_step_id: fn may write while the statement is open
    //  (RETRY's s_back_row), and a write must not follow a read that did
    //  not wait for a save (a rollback with a statement open keeps its
    //  snapshot)
    int rc = arb_journal_step (self, stmt);
    *found = rc == SQLITE_ROW && s_task_usable (stmt, ARB_STATE_MAX);
    if (*found)
        s_read_task (stmt, fn, arg);
    return arb_journal_read_end (self, stmt, rc, "task", id);
}

zlistx_t *
arb_journal_dead_ids (arb_journal_t *self, const char *queue)
{
    sqlite3_stmt *stmt = self->dead_ids;
    arb_sql_bind_text (stmt, 1, queue);
    return arb_journal_read_ids (self, stmt, "dead tasks");
}

zlistx_t *
arb_journal_flow_dead_ids (arb_journal_t *self, uint64_t flow)
{
    sqlite3_stmt *stmt = self->flow_dead_ids;
    arb_sql_bind_u64 (stmt, 1, flow);
    return arb_journal_read_ids (self, stmt, "dead tasks of a flow");
}

//  Reads the INFO_COLUMNS of the current row.
static void
s_read_info (sqlite3_stmt *stmt, arb_msg_t *msg, arb_task_info_t *info)
{
    info->found = true;
    info->id = arb_sql_u64 (stmt, 0);
    info->queue = arb_sql_text (stmt, 1, ARB_NAME_MAX, msg);
    info->name = arb_sql_text (stmt, 2, ARB_NAME_MAX, msg);
    info->key = arb_sql_text (stmt, 3, ARB_NAME_MAX, msg);
    info->state = (uint32_t) sqlite3_column_int (stmt, 4);
    info->priority = sqlite3_column_int (stmt, 5);
    info->attempts = (uint32_t) sqlite3_column_int64 (stmt, 6);
    info->max_attempts = (uint32_t) sqlite3_column_int64 (stmt, 7);
    info->lost = (uint32_t) sqlite3_column_int64 (stmt, 8);
    info->created_ms = arb_sql_u64 (stmt, 9);
    info->not_before_ms = arb_sql_u64 (stmt, 10);
    info->started_ms = arb_sql_u64 (stmt, 11);
    info->finished_ms = arb_sql_u64 (stmt, 12);
    info->timeout_ms = arb_sql_u64 (stmt, 13);
    info->worker = arb_sql_text (stmt, 14, ARB_NAME_MAX, msg);
    info->error = arb_sql_text (stmt, 15, ARB_TEXT_MAX, msg);
    info->flow = arb_sql_u64 (stmt, 16);
    info->ref = arb_sql_text (stmt, 17, ARB_NAME_MAX, msg);
    info->origin = arb_sql_u64 (stmt, 18);
    info->endpoint = arb_sql_text (stmt, 19, ARB_NAME_MAX, msg);
    info->flow_kind = (uint32_t) sqlite3_column_int (stmt, 20);
    info->flow_name = arb_sql_text (stmt, 21, ARB_NAME_MAX, msg);
    info->soft_timeout_ms = arb_sql_u64 (stmt, 22);
}

//  A copy of a blob column in the message's arena; left out when over max
//  bytes (0: no bound).
static arb_bin_t
s_bin (sqlite3_stmt *stmt, int column, size_t max, arb_msg_t *msg)
{
    arb_bin_t bin = {NULL, 0};
    if (sqlite3_column_type (stmt, column) != SQLITE_NULL
        && (!max || (size_t) sqlite3_column_bytes (stmt, column) <= max)) {
        bin.size = (size_t) sqlite3_column_bytes (stmt, column);
        uint8_t *data = (uint8_t *) arb_msg_alloc (msg, bin.size);
        if (bin.size)  //  an empty blob's pointer is NULL
            memcpy (data, sqlite3_column_blob (stmt, column), bin.size);
        bin.data = data;
    }
    return bin;
}

static int
s_read_responses (arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->copies;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = SQLITE_DONE;
    //  at most a fan-out's endpoints: a reply holds no more
    while (info->responses.n < ARB_ENDPOINTS_MAX
           && (rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        arb_response_info_t *r =
            (arb_response_info_t *) arb_msg_grow (msg, &info->responses, sizeof (*r), 1);
        r->endpoint = arb_sql_text (stmt, 0, ARB_NAME_MAX, msg);
        r->id = arb_sql_u64 (stmt, 1);
        r->state = (uint32_t) sqlite3_column_int (stmt, 2);
        r->error = arb_sql_text (stmt, 3, ARB_TEXT_MAX, msg);
        r->finished_ms = arb_sql_u64 (stmt, 4);
        r->result = s_bin (stmt, 5, 0, msg);
    }
    arb_sql_done (stmt);
    return info->responses.n == ARB_ENDPOINTS_MAX || rc == SQLITE_DONE ? 0 : -1;
}

//  The task's dependencies (a parent already purged keeps its id, without a ref).
static int
s_read_parents (arb_journal_t *self, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->deps_of;
    arb_sql_bind_u64 (stmt, 1, info->id);
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        arb_dep_t *dep = (arb_dep_t *) arb_msg_grow (msg, &info->parents, sizeof (*dep), 1);
        dep->id = arb_sql_u64 (stmt, 0);
        dep->when = (uint32_t) sqlite3_column_int (stmt, 1);
        //  a dependency's ref is a name on the wire (it is one in SUBMIT)
        dep->ref = arb_sql_is_name (stmt, 2) ? arb_sql_text (stmt, 2, ARB_NAME_MAX, msg) : NULL;
    }
    return arb_journal_read_end (self, stmt, rc, "dependencies", info->id);
}

static int
s_read_history (arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_task_info_t *info)
{
    sqlite3_stmt *stmt = self->history;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc;
    uint64_t seq = 0;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        arb_attempt_info_t *a =
            (arb_attempt_info_t *) arb_msg_grow (msg, &info->history, sizeof (*a), 1);
        seq = arb_sql_u64 (stmt, 6);
        a->attempt = (uint32_t) sqlite3_column_int64 (stmt, 0);
        a->started_ms = arb_sql_u64 (stmt, 1);
        a->ended_ms = arb_sql_u64 (stmt, 2);
        a->worker = arb_sql_text (stmt, 3, ARB_NAME_MAX, msg);
        a->outcome = (uint32_t) sqlite3_column_int (stmt, 4);
        a->error = arb_sql_text (stmt, 5, ARB_TEXT_MAX, msg);
    }
    //  seq counts every row ever written: what is not here was dropped
    info->history_dropped = (uint32_t) (seq - info->history.n);
    arb_sql_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Task id's row as the log holds it, when that row alone answers a read
//  of it (arb_journal_batch_live): *task and name (ARB_NAME_MAX + 1
//  bytes) as arb_journal_batch_row gives them, *queue its queue's name.
//  False when the tables answer. A STATUS of a queued task the log holds
//  read it through a view of every row kept: 60 ms with 60,000 kept, and
//  in a turn with writes of its own, a checkpoint on the loop.
static bool
s_live_row (arb_journal_t *self, uint64_t id, arb_task_t *task, char *name, arb_bin_t *queue)
{
    size_t at;
    if (!arb_journal_batch_live (self, id, &at, queue))
        return false;
    arb_journal_body_t body;
    arb_journal_batch_row (self, at, task, name, &body);
    return true;
}

//  What s_read_info reads of the row a plain task will have in the tables:
//  the columns the log does not hold at their defaults (0, or NULL). A
//  plain task has no parents, attempts, copies, result or args yet.
static void
s_live_info (const arb_task_t *task,
             const char *name,
             arb_bin_t queue,
             bool with_detail,
             arb_msg_t *msg,
             arb_task_info_t *info)
{
    info->found = true;
    info->id = task->id;
    char *text = (char *) arb_msg_alloc (msg, queue.size + 1);
    memcpy (text, queue.data, queue.size);
    text[queue.size] = 0;
    info->queue = text;
    size_t len = strlen (name);
    text = (char *) arb_msg_alloc (msg, len + 1);
    memcpy (text, name, len + 1);
    info->name = text;
    info->key = info->worker = info->error = info->ref = info->endpoint = info->flow_name = NULL;
    info->state = task->state;
    info->priority = task->priority;
    info->max_attempts = task->max_attempts;
    info->created_ms = task->created_ms;
    info->attempts = info->lost = info->flow_kind = 0;
    info->not_before_ms = info->started_ms = info->finished_ms = info->timeout_ms = 0;
    info->flow = info->origin = info->soft_timeout_ms = 0;
    if (with_detail) {
        info->result = info->args = (arb_bin_t){NULL, 0};
        info->history_dropped = 0;
    }
}

int
arb_journal_task_info (
    arb_journal_t *self, uint64_t id, bool with_detail, arb_msg_t *msg, arb_task_info_t *info)
{
    arb_task_t task;
    char name[ARB_NAME_MAX + 1];
    arb_bin_t queue;
    if (s_live_row (self, id, &task, name, &queue)) {
        s_live_info (&task, name, queue, with_detail, msg, info);
        return 0;
    }
    sqlite3_stmt *stmt = self->task_info;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = arb_journal_step_id (self, stmt, id);
    info->id = id;
    info->found = false;
    if (rc == SQLITE_ROW) {
        s_read_info (stmt, msg, info);
        if (with_detail) {
            info->result = s_bin (stmt, 23, 0, msg);
            info->args = s_bin (stmt, 24, ARB_ARGS_MAX, msg);
        }
    }
    if (arb_journal_read_end (self, stmt, rc, "task", id)
        || (info->found && s_read_parents (self, msg, info)))
        return -1;
    if (info->found && with_detail
        && (s_read_history (self, id, msg, info) || s_read_responses (self, id, msg, info))) {
        zsys_error ("journal: history of %" PRIu64 " unreadable: %s", id,
                    sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

int
arb_journal_state (arb_journal_t *self, uint64_t id, int *state, char *ref, size_t ref_size)
{
    arb_task_t task;
    char name[ARB_NAME_MAX + 1];
    arb_bin_t queue;
    if (s_live_row (self, id, &task, name, &queue)) {
        *state = task.state;
        if (ref)
            snprintf (ref, ref_size, "%s", "");  //  a plain task has none
        return 0;
    }
    sqlite3_stmt *stmt = self->state;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = arb_journal_step_id (self, stmt, id);
    *state = rc == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : 0;
    if (ref) {
        const char *text = rc == SQLITE_ROW ? (const char *) sqlite3_column_text (stmt, 1) : NULL;
        snprintf (ref, ref_size, "%s", text ? text : "");
    }
    return arb_journal_read_end (self, stmt, rc, "task", id);
}

int
arb_journal_done (
    arb_journal_t *self, uint64_t id, arb_msg_t *msg, arb_done_task_t *done, bool *found)
{
    arb_task_t task;
    char name[ARB_NAME_MAX + 1];
    arb_bin_t queue;
    *found = s_live_row (self, id, &task, name, &queue);
    if (*found) {
        //  a plain task: no attempt ended yet, no error, no result
        done->id = id;
        done->state = task.state;
        done->attempts = 0;
        done->error = NULL;
        done->result = NULL;
        return 0;
    }
    sqlite3_stmt *stmt = self->done;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = arb_journal_step_id (self, stmt, id);
    int state = rc == SQLITE_ROW ? arb_sql_small (stmt, 0, ARB_STATE_WAITING, ARB_STATE_MAX) : 0;
    if (state < 0)
        zsys_error ("journal: task %" PRIu64 " skipped: its state is not one it can be in", id);
    *found = rc == SQLITE_ROW && state > 0;
    if (*found) {
        done->id = id;
        done->state = (uint32_t) state;
        done->attempts = (uint32_t) sqlite3_column_int64 (stmt, 1);
        done->error = arb_sql_text (stmt, 2, ARB_TEXT_MAX, msg);
        done->result = arb_sql_frame (stmt, 3);
    }
    return arb_journal_read_end (self, stmt, rc, "task", id);
}

int
arb_journal_list_final (arb_journal_t *self,
                        const arb_list_body_t *filter,
                        uint32_t limit,
                        arb_msg_t *msg,
                        arb_list_reply_body_t *list)
{
    sqlite3_stmt *stmt = filter->newest ? self->list_final_newest : self->list_final;
    arb_sql_bind_id_bound (stmt, 1, filter->after_id);
    sqlite3_bind_int (stmt, 2, (int) filter->state);
    arb_sql_bind_text (stmt, 3, filter->queue);
    sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) limit + 1);
    arb_sql_bind_u64 (stmt, 5, filter->flow);
    arb_sql_bind_id_bound (stmt, 6, filter->before_id);
    size_t first = list->tasks.n;
    int rc;
    uint32_t count = 0;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        if (count++ == limit) {
            list->more = true;
            break;
        }
        arb_task_info_t *info =
            (arb_task_info_t *) arb_msg_grow (msg, &list->tasks, sizeof (*info), 1);
        s_read_info (stmt, msg, info);
    }
    if (arb_journal_read_end (self, stmt, rc, "task list", 0))
        return -1;
    //  read once the list's statement is done with
    for (size_t i = first; i < list->tasks.n; i++)
        if (s_read_parents (self, msg, &list->tasks.v[i]))
            return -1;
    return 0;
}

int
arb_journal_list_cold (arb_journal_t *self,
                       const arb_list_body_t *filter,
                       uint32_t limit,
                       bool (*in_memory) (void *arg, uint64_t id),
                       void *arg,
                       arb_msg_t *msg,
                       arb_list_reply_body_t *list)
{
    sqlite3_stmt *stmt = filter->newest ? self->list_ready_newest : self->list_ready;
    arb_sql_bind_id_bound (stmt, 1, filter->after_id);
    arb_sql_bind_text (stmt, 2, filter->queue);
    arb_sql_bind_id_bound (stmt, 3, filter->before_id);
    int rc;
    uint32_t count = 0;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        if (in_memory (arg, arb_sql_u64 (stmt, 0)))
            continue;
        if (count++ == limit) {
            list->more = true;
            break;
        }
        arb_task_info_t *info =
            (arb_task_info_t *) arb_msg_grow (msg, &list->tasks, sizeof (*info), 1);
        s_read_info (stmt, msg, info);
    }
    return arb_journal_read_end (self, stmt, rc, "task list", 0);
}

int
arb_journal_add_dep (arb_journal_t *self, uint64_t child, uint64_t parent, int kind)
{
    sqlite3_stmt *stmt = self->add_dep;
    arb_sql_bind_u64 (stmt, 1, child);
    arb_sql_bind_u64 (stmt, 2, parent);
    sqlite3_bind_int (stmt, 3, kind);
    return arb_journal_run (self, stmt, "add dependency");
}

int
arb_journal_set_has_children (arb_journal_t *self, uint64_t id)
{
    sqlite3_stmt *stmt = self->set_has_children;
    arb_sql_bind_u64 (stmt, 1, id);
    return arb_journal_run (self, stmt, "mark parent");
}

//  A text column cut to max bytes in buf (size max + 1) when longer, as
//  arb_sql_text does; NULL if none.
static const char *
s_text_in (sqlite3_stmt *stmt, int column, char *buf, size_t max)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    if (!text || strnlen (text, max + 1) <= max)
        return text;
    memcpy (buf, text, max);
    buf[max] = 0;
    return buf;
}

//  The kind of the edge in a column, or -1 (logged) if it is no kind.
static int
s_edge_kind (sqlite3_stmt *stmt, int column, uint64_t child, uint64_t parent)
{
    int kind = arb_sql_small (stmt, column, 0, 2);
    if (kind < 0)
        zsys_error ("journal: edge %" PRIu64 " -> %" PRIu64 " skipped: its kind is no kind", child,
                    parent);
    return kind;
}

int
arb_journal_parents (arb_journal_t *self, uint64_t child, arb_journal_parent_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->parents;
    arb_sql_bind_u64 (stmt, 1, child);
    int rc;
    char ref[ARB_NAME_MAX + 1], error[ARB_TEXT_MAX + 1];
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        uint64_t id = arb_sql_u64 (stmt, 0);
        int kind = s_edge_kind (stmt, 1, child, id);
        if (kind < 0)
            continue;
        arb_journal_parent_t parent = {.id = id, .kind = kind};
        //  a parent whose row is unusable is read as gone, as a purged one
        int state = sqlite3_column_type (stmt, 2) == SQLITE_NULL
                        ? 0
                        : arb_sql_small (stmt, 2, ARB_STATE_WAITING, ARB_STATE_MAX);
        if (state < 0)
            zsys_error ("journal: task %" PRIu64 " read as gone: its state is not one it can be in",
                        id);
        if (state > 0) {
            parent.state = state;
            parent.ref = s_text_in (stmt, 3, ref, ARB_NAME_MAX);
            parent.result = sqlite3_column_blob (stmt, 4);
            parent.result_size = (size_t) sqlite3_column_bytes (stmt, 4);
            parent.error = s_text_in (stmt, 5, error, ARB_TEXT_MAX);
        }
        if (fn (arg, &parent))
            break;
    }
    return arb_journal_read_end (self, stmt, rc, "parents of task", child);
}

int
arb_journal_children (arb_journal_t *self, uint64_t parent, arb_vec_t *children)
{
    sqlite3_stmt *stmt = self->children;
    arb_sql_bind_u64 (stmt, 1, parent);
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        int kind = s_edge_kind (stmt, 1, arb_sql_u64 (stmt, 0), parent);
        if (kind < 0)
            continue;
        arb_vec_push (children, arb_sql_u64 (stmt, 0));
        arb_vec_push (children, (uint64_t) kind);
    }
    return arb_journal_read_end (self, stmt, rc, "children of task", parent);
}

int
arb_journal_copies (arb_journal_t *self, uint64_t origin, arb_msg_t *msg, arb_task_info_t *info)
{
    return s_read_responses (self, origin, msg, info);
}

int
arb_journal_insert_flow (
    arb_journal_t *self, int kind, const char *name, uint64_t now_ms, uint64_t *id)
{
    sqlite3_stmt *stmt = self->insert_flow;
    sqlite3_bind_int (stmt, 1, kind);
    arb_sql_bind_text (stmt, 2, name);
    arb_sql_bind_u64 (stmt, 3, now_ms);
    if (arb_journal_run (self, stmt, "insert flow"))
        return -1;
    *id = (uint64_t) sqlite3_last_insert_rowid (self->db);
    return 0;
}

int
arb_journal_flow_kind (arb_journal_t *self, uint64_t id, int *kind)
{
    sqlite3_stmt *stmt = self->flow_kind;
    arb_sql_bind_u64 (stmt, 1, id);
    int rc = arb_journal_step (self, stmt);
    *kind = rc == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : 0;
    return arb_journal_read_end (self, stmt, rc, "flow", id);
}

zlistx_t *
arb_journal_flows_named (arb_journal_t *self, const char *name, int kind)
{
    sqlite3_stmt *stmt = self->flows_named;
    arb_sql_bind_text (stmt, 1, name);
    sqlite3_bind_int (stmt, 2, kind);
    return arb_journal_read_ids (self, stmt, "flows by name");
}

int
arb_journal_count_final (arb_journal_t *self, arb_journal_count_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->count_final;
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        int state = arb_sql_small (stmt, 1, ARB_STATE_SUCCEEDED, ARB_STATE_MAX);
        if (state > 0 && arb_state_is_final (state) && arb_sql_is_name (stmt, 0))
            fn (arg, (const char *) sqlite3_column_text (stmt, 0), state, arb_sql_u64 (stmt, 2));
        else
            zsys_error ("journal: %" PRIu64 " final tasks not counted: their queue or state is "
                        "unusable",
                        arb_sql_u64 (stmt, 2));
    }
    arb_sql_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Makes the id floor cover top, the largest id of the rows about to go:
//  unless a floor this process wrote holds it, writes one
//  ARB_ID_FLOOR_AHEAD beyond id_floor (arb_journal.h says why).
static int
s_cover_ids (arb_journal_t *self, uint64_t top, uint64_t id_floor)
{
    //  held by a floor this process wrote, committed or in this transaction
    if (top <= self->floor_kept || top <= self->floor_txn)
        return 0;
    uint64_t floor =
        id_floor > UINT64_MAX - ARB_ID_FLOOR_AHEAD ? UINT64_MAX : id_floor + ARB_ID_FLOOR_AHEAD;
    if (arb_journal_set_number (self, "broker.id_floor", floor))
        return -1;
    self->floor_txn = floor;
    return 0;
}

int
arb_journal_drop (arb_journal_t *self, uint64_t id, uint64_t id_floor)
{
    if (arb_journal_begin (self) || s_cover_ids (self, id, id_floor))
        return -1;
    return arb_journal_batch_drop (self, id);
}

//  Ids as one JSON array, for json_each: a statement that takes a set of
//  ids in one run. Returns a string the caller frees; *length its length.
static char *
s_json_ids (const uint64_t *ids, size_t count, size_t *length)
{
    char *json = (char *) malloc (3 + count * 21);
    assert (json);
    size_t used = 0;
    json[used++] = '[';
    for (size_t i = 0; i < count; i++) {
        if (i)
            json[used++] = ',';
        char digits[20];
        size_t n = 0;
        uint64_t value = ids[i];
        do
            digits[n++] = (char) ('0' + value % 10);
        while ((value /= 10));
        while (n)
            json[used++] = digits[--n];
    }
    json[used++] = ']';
    json[used] = 0;
    *length = used;
    return json;
}

#define ARB_REMOVE_CHUNK 1000  //  ids a remove statement takes in one run

//  Runs a statement that takes a set of ids (?1, a JSON array) over ids,
//  in chunks; value, when the statement has a ?2, is bound there each
//  time. 0 or -1.
static int
s_run_ids (arb_journal_t *self,
           sqlite3_stmt *stmt,
           const char *what,
           const uint64_t *ids,
           size_t count,
           uint64_t value)
{
    for (size_t at = 0; at < count; at += ARB_REMOVE_CHUNK) {
        size_t length;
        char *json = s_json_ids (
            ids + at, count - at < ARB_REMOVE_CHUNK ? count - at : ARB_REMOVE_CHUNK, &length);
        sqlite3_bind_text (stmt, 1, json, (int) length, SQLITE_STATIC);
        if (sqlite3_bind_parameter_count (stmt) >= 2)
            arb_sql_bind_u64 (stmt, 2, value);
        int rc = arb_journal_run (self, stmt, what);
        free (json);
        if (rc)
            return -1;
    }
    return 0;
}

//  Removes the tasks ids, the history of those in with_history and the
//  edges of those in with_parents (subsets of ids), after recording the
//  id floor. 0 or -1.
static int
s_remove (arb_journal_t *self,
          const uint64_t *ids,
          size_t count,
          const uint64_t *with_history,
          size_t histories,
          const uint64_t *with_parents,
          size_t parents,
          uint64_t id_floor)
{
    if (count == 0)
        return 0;
    uint64_t top = 0;
    for (size_t i = 0; i < count; i++)
        top = ids[i] > top ? ids[i] : top;
    if (arb_journal_begin (self) || s_cover_ids (self, top, id_floor)
        || s_run_ids (self, self->purge_task, "remove", ids, count, 0)
        || s_run_ids (self, self->purge_attempts, "remove history", with_history, histories, 0)
        || s_run_ids (self, self->purge_deps, "remove edges", with_parents, parents, 0))
        return -1;
    return 0;
}

int
arb_journal_remove (arb_journal_t *self, const uint64_t *ids, size_t count, uint64_t id_floor)
{
    //  by id: any of them may have history and edges
    return s_remove (self, ids, count, ids, count, ids, count, id_floor);
}

//  A final task whose purge time has come, as purge_due reads it.
typedef struct {
    uint64_t id;
    char *queue;  //  owned
    int state;
    bool history, parents, children;  //  it may have history, parents' edges, children
} s_due_t;

//  Reads up to max tasks whose purge time has come into due (room for
//  max), and ends the read. Their count (a read that fails ends the
//  batch there, for a later sweep).
static size_t
s_read_due (arb_journal_t *self, uint64_t now_ms, size_t max, s_due_t *due)
{
    sqlite3_stmt *stmt = self->purge_due;
    arb_sql_bind_u64 (stmt, 1, now_ms);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) max);
    size_t count = 0;
    while (count < max && arb_journal_step (self, stmt) == SQLITE_ROW) {
        const char *queue = (const char *) sqlite3_column_text (stmt, 1);
        due[count++] = (s_due_t){arb_sql_u64 (stmt, 0),
                                 strdup (queue ? queue : ""),
                                 sqlite3_column_int (stmt, 2),
                                 sqlite3_column_int (stmt, 3) != 0,
                                 sqlite3_column_int (stmt, 4) != 0,
                                 sqlite3_column_int (stmt, 5) != 0};
        assert (due[count - 1].queue);
    }
    arb_sql_done (stmt);
    return count;
}

int
arb_journal_purge (arb_journal_t *self,
                   uint64_t now_ms,
                   size_t max,
                   uint64_t id_floor,
                   uint64_t keep_until_ms,
                   arb_journal_purge_fn *fn,
                   void *arg)
{
    //  Read the batch first, then ask fn and delete: never change a table
    //  while a statement is walking it, and fn's reads (a task's children)
    //  come after the read has ended (it may have run beside a save, whose
    //  snapshot a read of fn's, which waits for the save, must not share).
    //  Most tasks have no history and no edges: only those that may have
    //  are looked for there (a search each).
    size_t room = max ? max : 1;
    s_due_t *due = (s_due_t *) calloc (room, sizeof (s_due_t));
    //  zeroed: gcc cannot see that s_remove reads only what the loop wrote
    uint64_t *ids = (uint64_t *) calloc (4 * room, sizeof (uint64_t));
    assert (due && ids);
    uint64_t *with_history = ids + room, *with_parents = ids + 2 * room, *kept = ids + 3 * room;
    size_t count = 0, histories = 0, parents = 0, keeps = 0;
    size_t read = s_read_due (self, now_ms, max, due);
    for (size_t i = 0; i < read; i++) {
        if (fn (arg, due[i].id, due[i].queue, due[i].state, due[i].children))
            kept[keeps++] = due[i].id;
        else {
            ids[count++] = due[i].id;
            if (due[i].history)
                with_history[histories++] = due[i].id;
            if (due[i].parents)
                with_parents[parents++] = due[i].id;
        }
    }
    int result =
        s_remove (self, ids, count, with_history, histories, with_parents, parents, id_floor)
                || (keeps
                    && (arb_journal_begin (self)
                        || s_run_ids (self, self->keep_until, "keep", kept, keeps, keep_until_ms)))
            ? -1
            : (int) count;
    for (size_t i = 0; i < read; i++)
        free (due[i].queue);
    free (due);
    free (ids);
    return result;
}

int
arb_journal_set_delivered (arb_journal_t *self, uint64_t id, uint32_t delivered)
{
    sqlite3_stmt *stmt = self->set_delivered;
    arb_sql_bind_u64 (stmt, 1, id);
    sqlite3_bind_int64 (stmt, 2, delivered);
    return arb_journal_run (self, stmt, "delivered");
}

int
arb_journal_deliver_ready (arb_journal_t *self, uint64_t now_ms, uint64_t *changed)
{
    sqlite3_stmt *stmt = self->deliver_ready;
    arb_sql_bind_u64 (stmt, 1, now_ms);
    int rc = arb_journal_begin (self) || arb_journal_run (self, stmt, "count deliveries") ? -1 : 0;
    *changed = rc == 0 ? (uint64_t) sqlite3_changes (self->db) : 0;
    return rc;
}

int
arb_journal_cancel_open (arb_journal_t *self,
                         const char *queue,
                         const uint64_t *keep,
                         size_t keep_count,
                         uint64_t now_ms,
                         const char *error,
                         uint64_t retention_ms,
                         arb_journal_ended_fn *fn,
                         void *arg,
                         uint64_t *changed)
{
    *changed = 0;
    if (arb_journal_begin (self) || self->fault != ARB_JOURNAL_SOUND)
        return -1;
    //  The ids to keep go in as one JSON array (json_each), so that the
    //  statement is one, whatever their number.
    size_t length;
    char *json = s_json_ids (keep, keep_count, &length);
    sqlite3_stmt *stmt = self->cancel_open;
    arb_sql_bind_text (stmt, 1, queue);
    arb_sql_bind_u64 (stmt, 2, now_ms);
    arb_sql_bind_text (stmt, 3, error);
    arb_sql_bind_u64 (stmt, 4, retention_ms);
    arb_sql_bind_text (stmt, 5, json);
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        (*changed)++;
        if (fn)
            fn (arg, arb_sql_u64 (stmt, 0), (uint32_t) sqlite3_column_int64 (stmt, 1));
    }
    if (rc != SQLITE_DONE) {
        arb_journal_note_fault (self);
        zsys_error ("journal: cancel queue failed: %s", sqlite3_errmsg (self->db));
    }
    arb_sql_done (stmt);
    free (json);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
arb_journal_forget_queue (arb_journal_t *self, const char *queue, uint64_t id_floor)
{
    if (arb_journal_begin (self))
        return -1;
    sqlite3_stmt *all[] = {self->forget_attempts, self->forget_deps, self->forget_tasks};
    for (size_t k = 0; k < 3; k++) {
        arb_sql_bind_text (all[k], 1, queue);
        if (arb_journal_run (self, all[k], "forget queue"))
            return -1;
    }
    return s_cover_ids (self, id_floor, id_floor);
}

int
arb_journal_scan (arb_journal_t *self,
                  uint64_t after_id,
                  size_t max,
                  arb_journal_scan_fn *fn,
                  void *arg,
                  uint64_t *last_id,
                  size_t *seen)
{
    sqlite3_stmt *stmt = self->scan;
    arb_sql_bind_id_bound (stmt, 1, after_id);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) max);
    *seen = 0;
    *last_id = after_id;
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        arb_journal_scanned_t row = {
            .id = arb_sql_u64 (stmt, 0),
            .queue = (const char *) sqlite3_column_text (stmt, 1),
            .state = sqlite3_column_int (stmt, 2),
            .finished_ms = arb_sql_u64 (stmt, 3),
            .has_children = sqlite3_column_int (stmt, 4) != 0,
        };
        *last_id = row.id;
        (*seen)++;
        fn (arg, &row);
    }
    return arb_journal_read_end (self, stmt, rc, "tasks in id order", 0);
}

int
arb_journal_max_id (arb_journal_t *self, uint64_t *id)
{
    int rc = arb_journal_step (self, self->max_id);
    *id = rc == SQLITE_ROW ? arb_sql_u64 (self->max_id, 0) : 0;
    return arb_journal_read_end (self, self->max_id, rc == SQLITE_DONE ? SQLITE_ERROR : rc,
                                 "max id", 0);
}
