/*  arb_cli_show.c — `arbiter status`, `arbiter list` and `arbiter peek`:
    what the broker knows about tasks, for people (aligned text) and for
    programs (--json, with state names as strings and times both as ms and
    as RFC 3339).
*/

#include "arb_cli_flow.h"

//  ---------------------------------------------------------------------
//  Text.

//  "  LABEL  VALUE", the value escaped onto its line: names out of a journal
//  older than the name rule may hold a newline (PROTOCOL.md).
static void
s_escaped_field (const char *label, const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    char *text = arb_cli_escape (data, size);
    printf ("  %-12s %s\n", label, text);  //  "soft timeout" is the longest label
    free (text);
}

static void
s_field (const char *label, const char *value)
{
    if (value)
        s_escaped_field (label, (const uint8_t *) value, strlen (value));
}

static void
s_time_field (const char *label, uint64_t ms)
{
    char text[40];
    if (ms) {
        arb_cli_format_time (ms, text, sizeof (text));
        s_field (label, text);
    }
}

static void
s_print_attempt (arb_attempt_info_t *attempt)
{
    char started[40] = "-", ended[40] = "-", took[32] = "";
    if (attempt->started_ms)
        arb_cli_format_time (attempt->started_ms, started, sizeof (started));
    if (attempt->ended_ms)
        arb_cli_format_time (attempt->ended_ms, ended, sizeof (ended));
    if (attempt->started_ms && attempt->ended_ms >= attempt->started_ms) {
        char duration[24];
        arb_cli_format_duration (attempt->ended_ms - attempt->started_ms, duration,
                                 sizeof (duration));
        snprintf (took, sizeof (took), " (%s)", duration);
    }
    printf ("  #%-3u %s .. %s%s  %s  %s", attempt->attempt, started, ended, took,
            attempt->worker && *attempt->worker ? attempt->worker : "-",
            attempt->ended_ms ? arb_cli_outcome_name (attempt->outcome) : "running");
    if (attempt->error && *attempt->error) {
        char *text = arb_cli_escape_str (attempt->error);
        printf (": %s", text);
        free (text);
    }
    putchar ('\n');
}

//  One endpoint's answer: "NAME  STATE  FINISHED  result: ..." (or error),
//  indented under a task's status.
static void
s_print_response (arb_response_info_t *response, const char *indent)
{
    char finished[40] = "-";
    if (response->finished_ms)
        arb_cli_format_time (response->finished_ms, finished, sizeof (finished));
    const char *endpoint = response->endpoint ? response->endpoint : "?";
    printf ("%s%-*s %-9s %-24s", indent, arb_cli_pad (endpoint, 16), endpoint,
            arb_state_name ((int) response->state), finished);
    bool ok = response->state == ARB_STATE_SUCCEEDED;
    const uint8_t *data = ok ? response->result.data : (const uint8_t *) response->error;
    size_t size = ok ? response->result.size : response->error ? strlen (response->error) : 0;
    if (size) {
        char *text = arb_cli_escape (data, size);
        printf ("  %s: %s", ok ? "result" : "error", text);
        free (text);
    }
    putchar ('\n');
}

//  The flow and name of a flow's task; the origin of a fan-out copy.
static void
s_print_place (arb_task_info_t *task)
{
    char text[ARB_NAME_MAX + 64];
    if (task->flow) {
        snprintf (text, sizeof (text), ARB_CLI_FLOW_PREFIX "%" PRIu64 "%s%s%s", task->flow,
                  task->ref ? ", as '" : "", task->ref ? task->ref : "", task->ref ? "'" : "");
        s_field ("flow", text);
    }
    if (task->origin) {
        snprintf (text, sizeof (text), "%" PRIu64 " (endpoint %s)", task->origin,
                  task->endpoint ? task->endpoint : "?");
        s_field ("copy of", text);
    }
}

//  Whether every lost lease the kept history shows is of the current round
//  of attempts: a retry sets the task's lost count to 0, so a lost lease
//  of an earlier round makes the history hold more than the count.
static bool
s_lost_all_this_round (arb_task_info_t *task)
{
    uint32_t lost = 0;
    for (size_t i = 0; i < task->history.n; i++)
        lost += task->history.v[i].outcome == ARB_ATTEMPT_LOST;
    return task->history_dropped == 0 && lost == task->lost;
}

//  What happened between attempt i - 1 and attempt i of the history. A
//  retry of the dead task starts its attempts at 1 again; a lease lost
//  with its worker, or released, uses no attempt, so the same number comes
//  again without a retry. After a lost lease of attempt 1 the record tells
//  the two apart only when its lost count accounts for every lost lease
//  the history shows; else both are said.
static void
s_print_between (arb_task_info_t *task, size_t i)
{
    const arb_attempt_info_t *before = &task->history.v[i - 1];
    uint32_t attempt = task->history.v[i].attempt;
    bool leased_again =
        before->outcome == ARB_OUTCOME_RELEASE || before->outcome == ARB_ATTEMPT_LOST;
    if (attempt > before->attempt)
        return;
    if (attempt < before->attempt || !leased_again)
        printf ("  -- retried: a new round of attempts\n");
    else if (attempt > 1 || before->outcome == ARB_OUTCOME_RELEASE || s_lost_all_this_round (task))
        printf ("  -- attempt %u again: a %s lease uses no attempt\n", attempt,
                before->outcome == ARB_OUTCOME_RELEASE ? "released" : "lost");
    else
        printf ("  -- attempt 1 again: after the lost lease, or a retry of the dead task\n");
}

static void
s_print_status (arb_task_info_t *task)
{
    char text[64];
    printf ("task %" PRIu64 "\n", task->id);
    snprintf (text, sizeof (text), "%s%s", arb_state_name ((int) task->state),
              task->no_handler ? " (waiting for a handler)" : "");
    s_field ("state", text);
    s_field ("queue", task->queue);
    s_field ("name", task->name);
    s_field ("key", task->key);
    snprintf (text, sizeof (text), "%d", task->priority);
    s_field ("priority", text);
    arb_cli_format_attempts (task->attempts, task->max_attempts, text, sizeof (text));
    snprintf (text + strlen (text), sizeof (text) - strlen (text), "%s",
              task->lost ? " (leases lost: " : "");
    if (task->lost)
        snprintf (text + strlen (text), sizeof (text) - strlen (text), "%u)", task->lost);
    s_field ("attempts", text);
    s_time_field ("created", task->created_ms);
    s_time_field ("not before", task->not_before_ms);
    s_time_field ("started", task->started_ms);
    s_time_field ("finished", task->finished_ms);
    if (task->timeout_ms) {
        arb_cli_format_duration (task->timeout_ms, text, sizeof (text));
        s_field ("timeout", text);
    }
    if (task->soft_timeout_ms) {
        arb_cli_format_duration (task->soft_timeout_ms, text, sizeof (text));
        s_field ("soft timeout", text);
    }
    s_field ("worker", task->worker);
    s_print_place (task);
    if (task->error)
        s_escaped_field ("error", (const uint8_t *) task->error, strlen (task->error));
    if (task->state == ARB_STATE_SUCCEEDED)
        s_escaped_field ("result", task->result.data, task->result.size);
    if (task->history.n)
        printf ("history\n");
    for (size_t i = 0; i < task->history.n; i++) {
        //  the attempts not kept were those after the first ones
        if (i == ARB_HISTORY_FIRST && task->history_dropped)
            printf ("  ... %u attempt%s not kept\n", task->history_dropped,
                    task->history_dropped == 1 ? "" : "s");
        else if (i > 0)
            s_print_between (task, i);
        s_print_attempt (&task->history.v[i]);
    }
    if (task->responses.n)
        printf ("responses (%zu endpoint%s)\n", task->responses.n,
                task->responses.n == 1 ? "" : "s");
    for (size_t i = 0; i < task->responses.n; i++)
        s_print_response (&task->responses.v[i], "  ");
}

static void
s_print_row (arb_task_info_t *task)
{
    char created[40] = "-";
    if (task->created_ms)
        arb_cli_format_time (task->created_ms, created, sizeof (created));
    //  a task waiting for a handler has had no error yet: say why it waits
    const char *note = task->no_handler && !task->error ? "waiting for a handler" : task->error;
    char *error = arb_cli_escape_str (note);
    arb_cli_clip (error, 60);
    //  names escaped too: one from an old journal may hold a newline
    char *queue = arb_cli_escape_str (task->queue);
    char *name = arb_cli_escape_str (task->name);
    char attempts[24];
    arb_cli_format_attempts (task->attempts, task->max_attempts, attempts, sizeof (attempts));
    printf ("%-10" PRIu64 " %-9s %-*s %-*s %9s %-24s  %s\n", task->id,
            arb_state_name ((int) task->state), arb_cli_pad (queue, 16), queue,
            arb_cli_pad (name, 20), name, attempts, created, error);
    free (queue);
    free (name);
    free (error);
}

//  ---------------------------------------------------------------------
//  status

typedef struct {
    arb_cli_t *cli;
    int status;  //  exit status so far
} s_shown_t;

//  Shows one task of `status`.
static int
s_show_one (void *arg, arb_task_info_t *task)
{
    s_shown_t *self = (s_shown_t *) arg;
    if (!task->found && self->cli->json) {
        //  in the task's own object on stdout, as `wait --json` says it
        json_t *obj = json_object ();
        json_object_set_new (obj, "id", json_integer ((json_int_t) task->id));
        json_object_set_new (obj, "state", json_string ("unknown"));
        json_object_set_new (obj, "error", json_string ("no such task"));
        arb_cli_json_print (obj);
        self->status = ARB_EXIT_USAGE;
    }
    else if (!task->found)
        self->status = arb_cli_say_code (self->cli, ARB_EXIT_USAGE, ARB_ERR_NOT_FOUND,
                                         "task %" PRIu64 " not found", task->id);
    else if (self->cli->json)
        arb_cli_json_print (arb_json_task (task, true));
    else
        s_print_status (task);
    return 0;
}

static int
s_status_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_status;
    int c = arb_cli_getopt (cli, cmd, argc, argv);
    if (c != ARB_CLI_END)
        return arb_cli_getopt_exit (c);
    if (optind >= argc)
        return arb_cli_usage (cli, cmd, "which task? give its ID");
    uint64_t flow;
    int status = arb_cli_flow_arg (cli, cmd, argc, argv, &flow);
    if (status >= 0)
        return status ? status : arb_cli_flow_status (cli, ARB_FLOW_NONE, flow);
    uint64_t *ids;
    size_t n;
    if (arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    s_shown_t shown = {.cli = cli, .status = ARB_EXIT_OK};
    if (!arb_cli_client (cli))
        shown.status = ARB_EXIT_USAGE;
    else if (arb_client_status (cli->client, ids, n, s_show_one, &shown) < 0)
        shown.status = arb_cli_client_fail (cli, "status");
    free (ids);
    return shown.status;
}

//  Shows the answers of one fan-out task: its status is the exit status.
static int
s_show_responses (void *arg, arb_task_info_t *task)
{
    s_shown_t *self = (s_shown_t *) arg;
    self->status = task->state == ARB_STATE_SUCCEEDED ? ARB_EXIT_OK : ARB_EXIT_FAILED;
    for (size_t i = 0; i < task->responses.n; i++) {
        arb_response_info_t *response = &task->responses.v[i];
        if (response->state != ARB_STATE_SUCCEEDED)
            self->status = ARB_EXIT_FAILED;
        if (self->cli->json)
            arb_cli_json_print (arb_json_response (response));
        else
            s_print_response (response, "");
    }
    fflush (stdout);
    if (task->state != ARB_STATE_SUCCEEDED)
        arb_cli_say (self->cli, 0, "task %" PRIu64 " %s%s%s", task->id,
                     arb_state_name ((int) task->state), task->error ? ": " : "",
                     task->error ? task->error : "");
    return 0;
}

int
arb_cli_show_responses (arb_cli_t *cli, uint64_t id)
{
    s_shown_t shown = {.cli = cli, .status = ARB_EXIT_FAILED};
    if (arb_client_status (cli->client, &id, 1, s_show_responses, &shown) < 0)
        return arb_cli_client_fail (cli, "status");
    return shown.status;
}

const arb_cli_cmd_t arb_cli_cmd_status = {
    .name = "status",
    .summary = "show a task: state, times, worker, result, attempts",
    .usage = "usage: arbiter status [--json] ID... | flow:ID\n"
             "\n"
             "Shows what the broker knows about each task: state (\"ready (waiting for a\n"
             "handler)\" when workers serve its queue but none runs its name), queue, name,\n"
             "priority, attempts, created/started/finished times, timeout, soft timeout,\n"
             "worker, the flow it belongs to (and its name there), error, result, each\n"
             "attempt's start, end, worker, outcome and error (the first 5 and the last 5\n"
             "that did not succeed, and how many between were not kept), and for a fan-out\n"
             "task each endpoint's answer (state, time, result or error). Results and\n"
             "errors are escaped onto one line (\\n, \\xNN). A flow (flow:ID, as `dag\n"
             "submit` and `group submit` print it) is shown as `arbiter dag status` shows\n"
             "it.\n"
             "\n"
             "  --json  one object per task: state names as strings, each time as NAME_ms\n"
             "          (Unix ms) and NAME (RFC 3339), \"result\" (or \"result_base64\" when\n"
             "          it is not UTF-8), \"history\" (the attempts kept),\n"
             "          \"history_dropped\" (attempts not kept), \"flow\" and \"ref\"\n"
             "          (its flow and name there), \"origin\" and \"endpoint\" (a fan-out\n"
             "          copy), \"responses\" ([{\"endpoint\", \"id\", \"state\", \"finished\",\n"
             "          \"result\", \"error\"}] of a fan-out task), \"no_handler\" (true:\n"
             "          waiting for a handler); an unknown ID's is {\"id\", \"state\":\n"
             "          \"unknown\", \"error\": \"no such task\"}, in its place among them\n"
             "\n"
             "Exit: 0; 2 if a task is not found; 1 if the broker is unreachable.\n",
    .options = NULL,
    .run = s_status_run,
};

//  ---------------------------------------------------------------------
//  list

#define ARB_LIST_DEFAULT_LIMIT 1000  //  tasks `list` shows without --limit

//  A table whose header goes out with its first row, or once its request
//  was answered: a refused request (403) prints nothing on stdout.
typedef struct {
    arb_cli_t *cli;
    void (*header) (void);  //  prints the header line (not with --json)
    bool shown;             //  the header went out
} s_table_t;

static void
s_table_head (s_table_t *table)
{
    if (!table->shown && !table->cli->json)
        table->header ();
    table->shown = true;
}

static void
s_list_header (void)
{
    printf ("%-10s %-9s %-16s %-20s %9s %-24s  %s\n", "ID", "STATE", "QUEUE", "NAME", "ATTEMPTS",
            "CREATED", "ERROR");
}

//  Prints one task of the listing.
static int
s_list_one (void *arg, arb_task_info_t *task)
{
    s_table_t *table = (s_table_t *) arg;
    s_table_head (table);
    if (table->cli->json)
        arb_cli_json_print (arb_json_task (task, false));
    else
        s_print_row (task);
    return 0;
}

//  Pages through LIST until limit tasks (0: all) are shown.
static int
s_list_pages (arb_cli_t *cli, uint32_t state, const char *queue, uint64_t limit)
{
    s_table_t table = {.cli = cli, .header = s_list_header};
    arb_list_body_t filter = {.state = state, .queue = queue};
    int rc = arb_client_list (cli->client, &filter, limit, s_list_one, &table);
    if (rc >= 0)
        s_table_head (&table);
    fflush (stdout);
    if (rc < 0)
        return arb_cli_client_fail (cli, "list");
    if (rc > 0)
        arb_cli_note (cli, "list: more tasks match; --limit %" PRIu64 " reached (0: no limit)",
                      limit);
    return ARB_EXIT_OK;
}

//  The state of --state: one a task can rest in. Returns 0, or -1 after
//  saying which there are.
static int
s_list_state (arb_cli_t *cli, const char *text, int *state)
{
    *state = arb_state_parse (text);
    if (arb_state_is_resting (*state))
        return 0;
    char states[160] = "";
    for (int s = 1, used = 0; s <= ARB_STATE_MAX; s++)
        if (arb_state_is_resting (s))
            used += snprintf (states + used, sizeof (states) - (size_t) used, "%s%s",
                              used ? ", " : "", arb_state_name (s));
    char *quoted = arb_cli_escape_str (text);
    if (*state == ARB_STATE_FAILED)
        arb_cli_say (cli, 0,
                     "--state: no task rests in failed (a failed attempt leaves its task "
                     "scheduled for a retry, or dead); give one of %s",
                     states);
    else
        arb_cli_say (cli, 0, "--state: '%.64s' is not one of %s", quoted, states);
    free (quoted);
    return -1;
}

static const struct option s_list_options[] = {
    {"state", required_argument, NULL, 's'},
    {"queue", required_argument, NULL, 'q'},
    {"limit", required_argument, NULL, 'l'},
    {NULL, 0, NULL, 0},
};

static int
s_list_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_list;
    int state = 0;
    const char *queue = NULL;
    uint64_t limit = ARB_LIST_DEFAULT_LIMIT;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c == 's' && s_list_state (cli, optarg, &state))
            return ARB_EXIT_USAGE;
        else if (c == 'q' && arb_cli_opt_name (cli, "queue", optarg))
            return ARB_EXIT_USAGE;
        else if (c == 'l' && arb_cli_opt_uint (cli, "limit", optarg, UINT32_MAX, &limit))
            return ARB_EXIT_USAGE;
        else if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == 'q')
            queue = optarg;
    }
    if (optind < argc)
        return arb_cli_usage (cli, cmd, "unexpected argument '%s'", argv[optind]);
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    return s_list_pages (cli, (uint32_t) state, queue, limit);
}

const arb_cli_cmd_t arb_cli_cmd_list = {
    .name = "list",
    .summary = "list tasks by state and queue",
    .usage = "usage: arbiter list [--state S] [--queue Q] [--limit N] [--json]\n"
             "\n"
             "Lists tasks in id order, asking the broker page by page. A ready task that\n"
             "none of its queue's workers runs says \"waiting for a handler\" in place of\n"
             "an error.\n"
             "\n"
             "  --state S  waiting, scheduled, ready, running, succeeded, dead, cancelled or\n"
             "             skipped (default: any); a failed attempt leaves its task\n"
             "             scheduled (for a retry) or dead\n"
             "  --queue Q  only this queue\n"
             "  --limit N  at most N tasks (default 1000; 0: no limit)\n"
             "  --json     one object per task and line\n",
    .options = s_list_options,
    .run = s_list_run,
};

//  ---------------------------------------------------------------------
//  peek

#define ARB_PEEK_DEFAULT 10    //  tasks `peek` shows without -n
#define ARB_PEEK_MAX     1000  //  the broker shows no more at once

static void
s_peek_header (void)
{
    printf ("%-10s %-20s %7s %-24s  %s\n", "ID", "NAME", "ATTEMPT", "CREATED", "PAYLOAD");
}

static int
s_peek_one (void *arg, arb_dispatch_task_t *task)
{
    s_table_t *table = (s_table_t *) arg;
    s_table_head (table);
    arb_cli_t *cli = table->cli;
    const uint8_t *data = task->payload ? zframe_data (task->payload) : NULL;
    size_t size = task->payload ? zframe_size (task->payload) : 0;
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "id", json_integer ((json_int_t) task->id));
        arb_json_str (obj, "queue", task->queue);
        arb_json_str (obj, "name", task->name);
        json_object_set_new (obj, "attempt", json_integer (task->attempt));
        arb_json_time (obj, "created", task->created_ms);
        json_object_set_new (obj, "timeout_ms", json_integer ((json_int_t) task->timeout_ms));
        arb_json_bytes (obj, "payload", data ? data : (const uint8_t *) "", size);
        arb_cli_json_print (obj);
        return 0;
    }
    char created[40] = "-";
    if (task->created_ms)
        arb_cli_format_time (task->created_ms, created, sizeof (created));
    char *name = arb_cli_escape_str (task->name);
    char *payload = arb_cli_escape (data, size);
    arb_cli_clip (payload, 60);
    printf ("%-10" PRIu64 " %-*s %7u %-24s  %s\n", task->id, arb_cli_pad (name, 20), name,
            task->attempt, created, payload);
    free (name);
    free (payload);
    return 0;
}

static const struct option s_peek_options[] = {
    {NULL, 0, NULL, 0},
};

static int
s_peek_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_peek;
    uint64_t max = ARB_PEEK_DEFAULT;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (arb_cli_opt_uint (cli, "n", optarg, ARB_PEEK_MAX, &max))
            return ARB_EXIT_USAGE;
        if (max == 0)
            return arb_cli_say (cli, ARB_EXIT_USAGE, "-n: must be 1 or more");
    }
    if (argc - optind != 1)
        return arb_cli_usage (cli, cmd, optind < argc ? "give one QUEUE" : "which queue? give it");
    const char *queue = argv[optind];
    if (arb_cli_opt_name (cli, "QUEUE", queue) || !arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    s_table_t table = {.cli = cli, .header = s_peek_header};
    int rc = arb_client_peek (cli->client, queue, (uint32_t) max, s_peek_one, &table);
    if (rc >= 0)
        s_table_head (&table);
    fflush (stdout);
    if (rc < 0)
        return arb_cli_client_fail (cli, "peek");
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_peek = {
    .name = "peek",
    .summary = "show the next tasks of a queue without taking them",
    .usage = "usage: arbiter peek [-n N] [--json] QUEUE\n"
             "\n"
             "Shows the next ready tasks of QUEUE in the order workers would get them\n"
             "(priority, then age), without taking them: id, name, the attempt it would be,\n"
             "created time and payload (escaped onto one line, cut at 60 characters).\n"
             "Tasks that are scheduled, waiting or running are not shown, and a paused\n"
             "queue shows none: it hands out nothing (`arbiter list` shows its ready tasks).\n"
             "\n"
             "  -n N    at most N tasks (1..1000; default 10)\n"
             "  --json  one object per task: {\"id\", \"queue\", \"name\", \"attempt\",\n"
             "          \"created\", \"created_ms\", \"timeout_ms\", \"payload\" (or\n"
             "          \"payload_base64\" when it is not UTF-8)}\n",
    .options = s_peek_options,
    .run = s_peek_run,
    .short_options = "n:",
};
