/*  arb_cli_wait.c — `arbiter wait`: waits for tasks and prints each one as
    it finishes, in the order they finish.

    Output. With one task (and no --json) the result is printed as it is,
    bytes for bytes, so that `out=$(arbiter wait 42)` or `arbiter wait 42 >
    file` give the task's output; a failure goes to stderr. With several
    tasks each gets one line, "ID succeeded: RESULT" or "ID dead: ERROR",
    the result escaped so that it stays on its line. --json prints one
    object per task and line.

    Progress. When stderr is a terminal a progress line (done, failed,
    total, rate, ETA) is redrawn in place on it, at most every 100 ms, and
    wiped before each result is printed so the two never mix on screen.
*/

#include "arb_cli_flow.h"
#include "arb_idset.h"

#include <unistd.h>

#define ARB_BAR_WIDTH     24
#define ARB_BAR_REDRAW_MS 100
#define ARB_BAR_TICK_MS   250   //  how often the line moves while nothing finishes
#define ARB_LIST_IDS      10    //  unfinished ids named in a timeout message
#define S_DIAGNOSIS_MS    1000  //  each request of a timeout message, at most

typedef struct {
    bool tty;          //  stderr is a terminal: draw it
    bool shown;        //  a line is on screen now
    size_t total;      //  tasks waited for
    size_t done;       //  reported, whatever the outcome
    size_t failed;     //  dead, cancelled, unknown
    int64_t started;   //  ms, zclock_mono
    int64_t drawn_at;  //  ms
} s_bar_t;

typedef struct {
    arb_cli_t *cli;
    arb_idset_t *waiting;  //  owned: ids not reported yet
    bool raw;              //  one task, printed as its bytes
    bool any_failed;
    bool any_unknown;
    s_bar_t bar;
} s_wait_t;

//  ---------------------------------------------------------------------
//  The progress line.

static void
s_bar_wipe (s_bar_t *bar)
{
    if (bar->shown) {
        fputs ("\r\033[K", stderr);
        bar->shown = false;
    }
}

static void
s_bar_draw (s_bar_t *bar, bool force)
{
    int64_t now = zclock_mono ();
    if (!bar->tty || (!force && now - bar->drawn_at < ARB_BAR_REDRAW_MS))
        return;
    bar->drawn_at = now;
    double elapsed = (now - bar->started) / 1000.0;
    double rate = elapsed > 0 ? bar->done / elapsed : 0;
    char cells[ARB_BAR_WIDTH + 1];
    size_t full = bar->total ? bar->done * ARB_BAR_WIDTH / bar->total : 0;
    for (size_t i = 0; i < ARB_BAR_WIDTH; i++)
        cells[i] = i < full ? '#' : '-';
    cells[ARB_BAR_WIDTH] = 0;
    char eta[32] = "-";
    if (rate > 0 && bar->done < bar->total)
        arb_cli_format_duration ((uint64_t) ((bar->total - bar->done) / rate * 1000), eta,
                                 sizeof (eta));
    char took[32];
    arb_cli_format_duration ((uint64_t) (elapsed * 1000), took, sizeof (took));
    fprintf (stderr, "\r[%s] %zu/%zu done, %zu failed  %.1f/s  ETA %s  (%s)\033[K", cells,
             bar->done, bar->total, bar->failed, rate, eta, took);
    fflush (stderr);
    bar->shown = true;
}

//  ---------------------------------------------------------------------
//  Printing one finished task.

static const char *
s_state_word (int state)
{
    return state == ARB_DONE_UNKNOWN ? "unknown" : arb_state_name (state);
}

static void
s_print_json (arb_done_t *done)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) done->id));
    json_object_set_new (obj, "state", json_string (s_state_word (done->state)));
    json_object_set_new (obj, "attempts", json_integer (done->attempts));
    if (done->state == ARB_STATE_SUCCEEDED && done->result)
        arb_json_bytes (obj, "result", zframe_data (done->result), zframe_size (done->result));
    arb_json_str (obj, "error", done->error);  //  null when none: every line has the same keys
    arb_cli_json_print (obj);
}

static void
s_print_line (arb_done_t *done)
{
    printf ("%" PRIu64 " %s", done->id, s_state_word (done->state));
    if (done->state == ARB_STATE_SUCCEEDED && done->result && zframe_size (done->result)) {
        char *text = arb_cli_escape (zframe_data (done->result), zframe_size (done->result));
        printf (": %s", text);
        free (text);
    }
    else if (done->state != ARB_STATE_SUCCEEDED && done->error && *done->error) {
        char *text = arb_cli_escape_str (done->error);
        printf (": %s", text);
        free (text);
    }
    putchar ('\n');
    fflush (stdout);
}

static void
s_print_raw (arb_cli_t *cli, arb_done_t *done)
{
    if (done->state == ARB_STATE_SUCCEEDED) {
        size_t size = done->result ? zframe_size (done->result) : 0;
        if (size)
            fwrite (zframe_data (done->result), 1, size, stdout);
        //  a prompt after the result on a terminal, but bytes unchanged in a pipe
        if (isatty (STDOUT_FILENO) && (size == 0 || zframe_data (done->result)[size - 1] != '\n'))
            putchar ('\n');
        fflush (stdout);
    }
    else if (done->state == ARB_DONE_UNKNOWN)
        arb_cli_say_code (cli, 0, ARB_ERR_NOT_FOUND, "task %" PRIu64 ": no such task", done->id);
    else
        arb_cli_say (cli, 0, "task %" PRIu64 " %s after %u attempt%s%s%s", done->id,
                     arb_state_name (done->state), done->attempts, done->attempts == 1 ? "" : "s",
                     done->error && *done->error ? ": " : "", done->error ? done->error : "");
}

static void
s_report (s_wait_t *self, arb_done_t *done)
{
    self->bar.done++;
    //  a skipped task (a DAG's on_failure step whose parent succeeded) did
    //  what its DAG asked of it
    bool ok = done->state == ARB_STATE_SUCCEEDED || done->state == ARB_STATE_SKIPPED;
    if (done->state == ARB_DONE_UNKNOWN)
        self->any_unknown = true;
    else if (!ok)
        self->any_failed = true;
    if (!ok)
        self->bar.failed++;
    s_bar_wipe (&self->bar);
    if (self->cli->json)
        s_print_json (done);
    else if (self->raw)
        s_print_raw (self->cli, done);
    else
        s_print_line (done);
}

//  ---------------------------------------------------------------------
//  Waiting.

//  What a timeout message says of the tasks left: each id, with its state
//  and, for a ready one, what keeps it waiting that a person can mend (no
//  worker of its queue runs its name, the queue is paused, no worker
//  consumes it), as STATUS, then STATS of each such queue, tell it now.
typedef struct {
    uint64_t id;
    bool found;                    //  STATUS knew it
    uint32_t state;                //  ARB_STATE_*
    bool no_handler;               //  ready, and no worker of its queue runs its name
    char queue[ARB_NAME_MAX + 1];  //  its queue
    char name[ARB_NAME_MAX + 1];   //  its task name
} s_left_t;

typedef struct {
    s_left_t *v;  //  borrowed: room for ARB_LIST_IDS
    size_t n;     //  filled by STATUS, in the order asked
} s_lefts_t;

static int
s_left_task (void *arg, arb_task_info_t *task)
{
    s_lefts_t *lefts = (s_lefts_t *) arg;
    if (lefts->n == ARB_LIST_IDS)
        return 1;  //  (one answer an id asked: never)
    s_left_t *left = &lefts->v[lefts->n++];
    *left = (s_left_t){
        .id = task->id, .found = task->found, .state = task->state, .no_handler = task->no_handler};
    snprintf (left->queue, sizeof (left->queue), "%s", task->queue ? task->queue : "");
    snprintf (left->name, sizeof (left->name), "%s", task->name ? task->name : "");
    return 0;
}

//  How many bytes of text to print to show at most max of it (names may
//  be long; the message has room for ten).
static int
s_cut (const char *text, size_t max)
{
    return (int) arb_utf8_cut (text, max);
}

//  Why a ready task waits, into why (empty: nothing to say), asking STATS
//  of its queue. -1 if the broker did not answer.
static int
s_left_why (arb_client_t *client, const s_left_t *left, char *why, size_t size)
{
    *why = 0;
    if (!left->found || left->state != ARB_STATE_READY || !*left->queue)
        return 0;
    if (left->no_handler) {
        snprintf (why, size, ": no worker of queue '%.*s' runs '%.*s'", s_cut (left->queue, 40),
                  left->queue, s_cut (left->name, 40), left->name);
        return 0;
    }
    arb_msg_t *request = arb_client_request_new (client, ARB_MSG_STATS);
    arb_msg_stats (request)->queue = left->queue;  //  that queue alone
    arb_msg_t *reply = arb_client_request (client, &request);
    if (!reply)
        return -1;
    arb_stats_reply_body_t *stats = arb_msg_stats_reply (reply);
    for (size_t i = 0; i < stats->queues.n; i++) {
        const arb_queue_info_t *queue = &stats->queues.v[i];
        if (!streq (queue->name, left->queue))
            continue;
        if (queue->paused)
            snprintf (why, size, ": queue '%.*s' is paused", s_cut (left->queue, 60), left->queue);
        else if (!queue->consumers)
            snprintf (why, size, ": no worker consumes queue '%.*s'", s_cut (left->queue, 60),
                      left->queue);
    }
    arb_msg_destroy (&reply);
    return 0;
}

//  The timeout message's list: up to ARB_LIST_IDS of the tasks left, each
//  with what is known of it, into text. A broker that does not answer
//  these within S_DIAGNOSIS_MS each: the ids alone (the wait is over; its
//  diagnosis must not be another one).
static void
s_left_list (s_wait_t *self, const uint64_t *listed, size_t count, char *text, size_t size)
{
    arb_client_t *client = self->cli->client;
    int rpc_ms = self->cli->rpc_timeout_ms;
    arb_client_set_timeout (client, rpc_ms < S_DIAGNOSIS_MS ? rpc_ms : S_DIAGNOSIS_MS);
    s_left_t v[ARB_LIST_IDS];
    s_lefts_t lefts = {v, 0};
    char whys[ARB_LIST_IDS][200];
    bool known =
        arb_client_status (client, listed, count, s_left_task, &lefts) == 0 && lefts.n == count;
    for (size_t i = 0; known && i < count; i++)
        known = s_left_why (client, &v[i], whys[i], sizeof (whys[i])) == 0;
    arb_client_set_timeout (client, rpc_ms);
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        int n = known
                    ? snprintf (text + used, size - used, "%s%" PRIu64 " (%s%s)", i ? ", " : "",
                                v[i].id, v[i].found ? arb_state_name ((int) v[i].state) : "unknown",
                                whys[i])
                    : snprintf (text + used, size - used, "%s%" PRIu64, i ? ", " : "", listed[i]);
        used += n > 0 && (size_t) n < size - used ? (size_t) n : 0;
    }
}

static int
s_timed_out (s_wait_t *self, const uint64_t *ids, size_t n, int64_t timeout_ms)
{
    uint64_t listed[ARB_LIST_IDS];
    size_t count = 0;
    for (size_t i = 0; i < n && count < ARB_LIST_IDS; i++)
        if (arb_idset_contains (self->waiting, ids[i]))
            listed[count++] = ids[i];
    char text[ARB_LIST_IDS * 200 + 8] = "";
    s_left_list (self, listed, count, text, sizeof (text));
    size_t remaining = arb_idset_size (self->waiting);
    arb_cli_say (self->cli, 0, "wait: %zu of %zu task%s unfinished after %.1f s: %s%s", remaining,
                 n, n == 1 ? "" : "s", timeout_ms / 1000.0, text, remaining > count ? ", ..." : "");
    return ARB_EXIT_TIMEOUT;
}

//  Waits for every id. Returns -1 when done, else the exit status to leave with.
static int
s_wait_all (s_wait_t *self, const uint64_t *ids, size_t n, int64_t timeout_ms)
{
    arb_client_t *client = self->cli->client;
    int64_t deadline = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    while (arb_idset_size (self->waiting) > 0) {
        int64_t slice = self->bar.tty ? ARB_BAR_TICK_MS : -1;
        if (deadline >= 0) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0)
                return s_timed_out (self, ids, n, timeout_ms);
            slice = slice < 0 || left < slice ? left : slice;
        }
        arb_done_t *done = arb_client_next (client, (int) slice);
        if (!done && arb_client_error (client))
            return arb_cli_client_fail (self->cli, "wait");
        if (done && arb_idset_remove (self->waiting, done->id))
            s_report (self, done);
        arb_done_destroy (&done);
        s_bar_draw (&self->bar, false);
    }
    return -1;
}

int
arb_cli_wait_for (arb_cli_t *cli, const uint64_t *ids, size_t n, int64_t timeout_ms, bool raw)
{
    arb_client_t *client = arb_cli_client (cli);
    if (!client)
        return ARB_EXIT_USAGE;
    s_wait_t self = {
        .cli = cli,
        .waiting = arb_idset_new (),
        .raw = raw && n == 1 && !cli->json,
        .bar = {.tty = isatty (STDERR_FILENO), .total = n, .started = zclock_mono ()},
    };
    for (size_t i = 0; i < n; i++)
        arb_idset_insert (self.waiting, ids[i]);
    int status = -1;
    if (arb_client_watch (client, ids, n))
        status = arb_cli_client_fail (cli, "wait");
    else {
        s_bar_draw (&self.bar, true);
        status = s_wait_all (&self, ids, n, timeout_ms);
    }
    s_bar_wipe (&self.bar);
    arb_idset_destroy (&self.waiting);
    if (status >= 0)
        return status;
    return self.any_unknown ? ARB_EXIT_USAGE : self.any_failed ? ARB_EXIT_FAILED : ARB_EXIT_OK;
}

//  ---------------------------------------------------------------------
//  The command.

static const struct option s_options[] = {
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

static int
s_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_wait;
    int64_t timeout_ms = -1;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        uint64_t ms;
        if (c == 't') {
            if (arb_cli_opt_seconds (cli, "timeout", optarg, ARB_DELAY_MAX_MS, &ms))
                return ARB_EXIT_USAGE;
            timeout_ms = (int64_t) ms;
        }
        else
            return arb_cli_getopt_exit (c);
    }
    if (optind >= argc)
        return arb_cli_usage (cli, cmd, "which tasks? give one or more IDs");
    uint64_t flow;
    int status = arb_cli_flow_arg (cli, cmd, argc, argv, &flow);
    if (status >= 0)
        return status ? status : arb_cli_flow_wait_id (cli, ARB_FLOW_NONE, flow, timeout_ms);
    uint64_t *ids;
    size_t n;
    if (arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    status = arb_cli_wait_for (cli, ids, n, timeout_ms, true);
    free (ids);
    return status;
}

const arb_cli_cmd_t arb_cli_cmd_wait = {
    .name = "wait",
    .summary = "wait for tasks to finish and print their results",
    .usage = "usage: arbiter wait [--timeout SECONDS] [--json] ID... | flow:ID\n"
             "\n"
             "Waits until every task has finished and prints each one as it finishes.\n"
             "  one ID      the result's bytes as they are on stdout (a newline is added on a\n"
             "              terminal only); if the task did not succeed, why on stderr\n"
             "  several IDs one line per task: \"ID succeeded: RESULT\", \"ID dead: ERROR\",\n"
             "              \"ID cancelled\", \"ID unknown: no such task\" (RESULT escaped: \\n, "
             "\\xNN)\n"
             "  --json      one object per task and line: {\"id\", \"state\", \"attempts\",\n"
             "              \"result\" (or \"result_base64\" if not UTF-8), \"error\"}\n"
             "  flow:ID     each task of the flow, as `arbiter dag wait` prints them\n"
             "When stderr is a terminal, a progress line (done/failed/total, rate, ETA) is\n"
             "drawn on it. The wait survives a broker restart.\n"
             "\n"
             "  --timeout SECONDS  give up after this long (decimals allowed), naming the\n"
             "                     tasks left: their state, and for a ready one what keeps\n"
             "                     it (no worker on its queue, the queue paused, no worker\n"
             "                     of the queue running its name)\n"
             "\n"
             "Exit: 0 all succeeded (or were skipped: a DAG's on_failure task whose parent\n"
             "succeeded); 1 some task dead or cancelled, or the broker unreachable;\n"
             "2 an unknown ID; 3 --timeout passed first; 130 interrupted.\n",
    .options = s_options,
    .run = s_run,
};
