/*  arb_cli_flow_wait.c — waiting for a flow: each task is printed as it
    ends, with its name in the flow, its state and its result or error.

    A DAG's or a group's tasks are printed in the order they end. A pipe's
    steps are printed in the pipe's order (a report that comes early waits
    for the steps before it), then the pipe's result: its last step's.

    Exit status: a skipped task counts as done (its dependencies made it
    unnecessary); a dead or cancelled one as failed.
*/

#include "arb_cli_flow.h"

#define ARB_NAMES_LISTED 10  //  unfinished tasks named in a timeout message

typedef struct {
    uint64_t id;
    size_t index;  //  in the flow
} s_entry_t;

typedef struct {
    arb_cli_t *cli;
    arb_cli_flow_t *flow;  //  borrowed
    s_entry_t *by_id;      //  owned: every task, by id
    bool *reported;        //  owned: per task, whether its report came
    arb_done_t **held;     //  owned: pipes: reports waiting for their turn, and the last step's
    size_t next;           //  pipes: the first step not printed yet
    size_t left;           //  tasks not reported yet
    size_t failed;         //  tasks dead, cancelled or unknown
} s_waiter_t;

static int
s_compare_entry (const void *a, const void *b)
{
    uint64_t x = ((const s_entry_t *) a)->id, y = ((const s_entry_t *) b)->id;
    return x < y ? -1 : x > y;
}

static void
s_waiter_init (s_waiter_t *self, arb_cli_t *cli, arb_cli_flow_t *flow)
{
    size_t n = flow->n;
    self->cli = cli;
    self->flow = flow;
    self->by_id = (s_entry_t *) calloc (n, sizeof (s_entry_t));
    self->held = (arb_done_t **) calloc (n, sizeof (arb_done_t *));
    self->reported = (bool *) calloc (n, sizeof (bool));
    assert (self->by_id && self->held && self->reported);
    for (size_t i = 0; i < n; i++)
        self->by_id[i] = (s_entry_t){flow->v[i].id, i};
    qsort (self->by_id, n, sizeof (s_entry_t), s_compare_entry);
    self->left = n;
}

static void
s_waiter_destroy (s_waiter_t *self)
{
    for (size_t i = 0; i < self->flow->n; i++)
        arb_done_destroy (&self->held[i]);
    free (self->held);
    free (self->reported);
    free (self->by_id);
}

//  ---------------------------------------------------------------------
//  Printing.

static const char *
s_state_word (int state)
{
    return state == ARB_DONE_UNKNOWN ? "unknown" : arb_state_name (state);
}

static void
s_print_json (arb_cli_node_t *node, arb_done_t *done)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) done->id));
    arb_json_str (obj, "name", node->ref);
    arb_json_str (obj, "task", node->name);
    json_object_set_new (obj, "state", json_string (s_state_word (done->state)));
    json_object_set_new (obj, "attempts", json_integer (done->attempts));
    if (done->state == ARB_STATE_SUCCEEDED && done->result)
        arb_json_bytes (obj, "result", zframe_data (done->result), zframe_size (done->result));
    arb_json_str (obj, "error", done->error);
    arb_cli_json_print (obj);
}

//  "NAME STATE: RESULT" or "NAME STATE: ERROR", escaped onto one line.
static void
s_print_line (arb_cli_node_t *node, arb_done_t *done)
{
    printf ("%s %s", node->ref, s_state_word (done->state));
    bool ok = done->state == ARB_STATE_SUCCEEDED;
    const uint8_t *data =
        ok && done->result ? zframe_data (done->result) : (const uint8_t *) done->error;
    size_t size = ok ? (done->result ? zframe_size (done->result) : 0)
                     : (done->error ? strlen (done->error) : 0);
    if (size) {
        char *text = arb_cli_escape (data, size);
        printf (": %s", text);
        free (text);
    }
    putchar ('\n');
    fflush (stdout);
}

static void
s_print (s_waiter_t *self, size_t index, arb_done_t *done)
{
    if (self->cli->json)
        s_print_json (&self->flow->v[index], done);
    else
        s_print_line (&self->flow->v[index], done);
}

//  Prints the pipe's steps whose turn has come; keeps the last one's
//  report for the pipe's result.
static void
s_flush (s_waiter_t *self)
{
    size_t last = self->flow->n - 1;
    while (self->next <= last && self->held[self->next]) {
        s_print (self, self->next, self->held[self->next]);
        if (self->next < last)
            arb_done_destroy (&self->held[self->next]);
        self->next++;
    }
}

//  A pipe's result: its last step's (JSON: {"pipe", "state", "result"}).
static void
s_print_pipe_result (s_waiter_t *self)
{
    arb_done_t *last = self->held[self->flow->n - 1];
    bool ok = last->state == ARB_STATE_SUCCEEDED;
    const uint8_t *data = ok && last->result ? zframe_data (last->result) : NULL;
    size_t size = ok && last->result ? zframe_size (last->result) : 0;
    if (self->cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "pipe", json_integer ((json_int_t) self->flow->id));
        json_object_set_new (obj, "state", json_string (s_state_word (last->state)));
        if (ok)
            arb_json_bytes (obj, "result", data ? data : (const uint8_t *) "", size);
        else
            json_object_set_new (obj, "result", json_null ());
        arb_cli_json_print (obj);
        return;
    }
    if (!ok)
        return;
    char *text = arb_cli_escape (data ? data : (const uint8_t *) "", size);
    printf ("result: %s\n", text);
    fflush (stdout);
    free (text);
}

//  ---------------------------------------------------------------------
//  Waiting.

//  Files a report under every task with its id (one task can stand for
//  two specs that gave the same key).
static void
s_on_done (s_waiter_t *self, arb_done_t **done_p)
{
    arb_done_t *done = *done_p;
    s_entry_t key = {done->id, 0};
    s_entry_t *entry = (s_entry_t *) bsearch (&key, self->by_id, self->flow->n, sizeof (s_entry_t),
                                              s_compare_entry);
    while (entry && entry > self->by_id && (entry - 1)->id == done->id)
        entry--;
    for (; entry && entry < self->by_id + self->flow->n && entry->id == done->id; entry++) {
        if (self->reported[entry->index])
            continue;  //  a duplicate (the client drops those) or a second spec of one key
        self->reported[entry->index] = true;
        self->flow->v[entry->index].state = done->state;
        self->left--;
        if (done->state != ARB_STATE_SUCCEEDED && done->state != ARB_STATE_SKIPPED)
            self->failed++;
        if (self->flow->kind != ARB_FLOW_PIPE) {
            s_print (self, entry->index, done);  //  a DAG's or group's tasks as they end
            continue;
        }
        arb_done_t *copy = (arb_done_t *) zmalloc (sizeof (arb_done_t));
        *copy = *done;
        copy->error = done->error ? strdup (done->error) : NULL;
        copy->result = done->result ? zframe_dup (done->result) : NULL;
        self->held[entry->index] = copy;
    }
    arb_done_destroy (done_p);
    if (self->flow->kind == ARB_FLOW_PIPE)
        s_flush (self);
}

static int
s_timed_out (s_waiter_t *self, int64_t timeout_ms)
{
    char names[ARB_NAMES_LISTED * 72 + 8] = "";
    size_t listed = 0, used = 0;
    for (size_t i = 0; i < self->flow->n && listed < ARB_NAMES_LISTED; i++)
        if (!self->reported[i]) {
            used += (size_t) snprintf (names + used, sizeof (names) - used, "%s%.64s",
                                       listed ? ", " : "", self->flow->v[i].ref);
            listed++;
        }
    arb_cli_say (self->cli, 0,
                 ARB_CLI_FLOW_PREFIX "%" PRIu64 ": %zu of %zu task%s unfinished after %.1f s: %s%s",
                 self->flow->id, self->left, self->flow->n, self->flow->n == 1 ? "" : "s",
                 timeout_ms / 1000.0, names, self->left > listed ? ", ..." : "");
    return ARB_EXIT_TIMEOUT;
}

//  Waits for every report. Returns -1 when all came, else the exit status.
static int
s_wait_all (s_waiter_t *self, int64_t timeout_ms)
{
    arb_client_t *client = self->cli->client;
    int64_t deadline = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    while (self->left > 0) {
        int64_t slice = -1;
        if (deadline >= 0) {
            slice = deadline - zclock_mono ();
            if (slice <= 0)
                return s_timed_out (self, timeout_ms);
        }
        arb_done_t *done = arb_client_next (client, (int) slice);
        if (!done && arb_client_error (client))
            return arb_cli_client_fail (self->cli, "wait");
        if (done)
            s_on_done (self, &done);
    }
    return -1;
}

//  The ids of the flow, to watch.
static int
s_watch (arb_cli_t *cli, arb_cli_flow_t *flow)
{
    uint64_t *ids = (uint64_t *) calloc (flow->n, sizeof (uint64_t));
    assert (ids);
    for (size_t i = 0; i < flow->n; i++)
        ids[i] = flow->v[i].id;
    int rc = arb_client_watch (cli->client, ids, flow->n);
    free (ids);
    return rc;
}

int
arb_cli_flow_wait (arb_cli_t *cli, arb_cli_flow_t *flow, bool watching, int64_t timeout_ms)
{
    if (!watching && s_watch (cli, flow))
        return arb_cli_client_fail (cli, "wait");
    s_waiter_t self = {.cli = cli};
    s_waiter_init (&self, cli, flow);
    int status = s_wait_all (&self, timeout_ms);
    if (status < 0 && flow->kind == ARB_FLOW_PIPE)
        s_print_pipe_result (&self);
    if (status < 0 && self.failed)
        status =
            arb_cli_say (cli, ARB_EXIT_FAILED,
                         ARB_CLI_FLOW_PREFIX "%" PRIu64 ": %zu of %zu task%s dead or cancelled",
                         flow->id, self.failed, flow->n, flow->n == 1 ? "" : "s");
    s_waiter_destroy (&self);
    return status < 0 ? ARB_EXIT_OK : status;
}
