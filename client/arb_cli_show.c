/*  arb_cli_show.c — `arbiter status` and `arbiter list`: what the broker
    knows about tasks, for people (aligned text) and for programs (--json,
    with state names as strings and times both as ms and as RFC 3339).
*/

#include "arb_cli.h"

//  ---------------------------------------------------------------------
//  Text.

static void
s_field (const char *label, const char *value)
{
    if (value && *value)
        printf ("  %-11s %s\n", label, value);
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
s_escaped_field (const char *label, const uint8_t *data, size_t size)
{
    char *text = arb_cli_escape (data, size);
    s_field (label, text);
    free (text);
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
        char *text = arb_cli_escape ((const uint8_t *) attempt->error, strlen (attempt->error));
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
    printf ("%s%-16s %-9s %-24s", indent, response->endpoint ? response->endpoint : "?",
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
        snprintf (text, sizeof (text), "%" PRIu64 "%s%s%s", task->flow, task->ref ? ", as '" : "",
                  task->ref ? task->ref : "", task->ref ? "'" : "");
        s_field ("flow", text);
    }
    if (task->origin) {
        snprintf (text, sizeof (text), "%" PRIu64 " (endpoint %s)", task->origin,
                  task->endpoint ? task->endpoint : "?");
        s_field ("copy of", text);
    }
}

static void
s_print_status (arb_task_info_t *task)
{
    char text[64];
    printf ("task %" PRIu64 "\n", task->id);
    s_field ("state", arb_state_name ((int) task->state));
    s_field ("queue", task->queue);
    s_field ("name", task->name);
    s_field ("key", task->key);
    snprintf (text, sizeof (text), "%d", task->priority);
    s_field ("priority", text);
    snprintf (text, sizeof (text), "%u/%u%s", task->attempts, task->max_attempts,
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
    s_field ("worker", task->worker);
    s_print_place (task);
    if (task->error)
        s_escaped_field ("error", (const uint8_t *) task->error, strlen (task->error));
    if (task->state == ARB_STATE_SUCCEEDED)
        s_escaped_field ("result", task->result.data, task->result.size);
    if (task->history.n)
        printf ("history\n");
    for (size_t i = 0; i < task->history.n; i++)
        s_print_attempt (&task->history.v[i]);
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
    char *error = arb_cli_escape ((const uint8_t *) (task->error ? task->error : ""),
                                  task->error ? strlen (task->error) : 0);
    if (strlen (error) > 60)
        strcpy (error + 57, "...");
    printf ("%-10" PRIu64 " %-9s %-16s %-20s %4u/%-4u %s  %s\n", task->id,
            arb_state_name ((int) task->state), task->queue ? task->queue : "",
            task->name ? task->name : "", task->attempts, task->max_attempts, created, error);
    free (error);
}

//  ---------------------------------------------------------------------
//  status

static int
s_status_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_status;
    int c = arb_cli_getopt (cli, cmd, argc, argv);
    if (c != ARB_CLI_END)
        return arb_cli_getopt_exit (c);
    if (optind >= argc)
        return arb_cli_usage (cmd, "which task? give its ID");
    uint64_t *ids;
    size_t n;
    if (arb_cli_parse_ids (argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    arb_client_t *client = arb_cli_client (cli);
    if (!client) {
        free (ids);
        return ARB_EXIT_USAGE;
    }
    arb_msg_t *request = arb_client_request_new (client, ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = ids;  //  borrowed until sent
    body->ids.n = n;
    arb_msg_t *reply = arb_client_request (client, &request);
    free (ids);
    if (!reply)
        return arb_cli_client_fail (cli, "status");
    int status = ARB_EXIT_OK;
    arb_status_reply_body_t *tasks = arb_msg_status_reply (reply);
    for (size_t i = 0; i < tasks->tasks.n; i++) {
        arb_task_info_t *task = &tasks->tasks.v[i];
        if (!task->found)
            status = arb_cli_say (ARB_EXIT_USAGE, "task %" PRIu64 " not found", task->id);
        else if (cli->json)
            arb_cli_json_print (arb_json_task (task, true));
        else
            s_print_status (task);
    }
    arb_msg_destroy (&reply);
    return status;
}

int
arb_cli_show_responses (arb_cli_t *cli, uint64_t id)
{
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = &id;  //  borrowed until sent
    body->ids.n = 1;
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "status");
    arb_status_reply_body_t *tasks = arb_msg_status_reply (reply);
    arb_task_info_t *task = tasks->tasks.n ? &tasks->tasks.v[0] : NULL;
    int status = task && task->state == ARB_STATE_SUCCEEDED ? ARB_EXIT_OK : ARB_EXIT_FAILED;
    for (size_t i = 0; task && i < task->responses.n; i++) {
        arb_response_info_t *response = &task->responses.v[i];
        if (response->state != ARB_STATE_SUCCEEDED)
            status = ARB_EXIT_FAILED;
        if (cli->json)
            arb_cli_json_print (arb_json_response (response));
        else
            s_print_response (response, "");
    }
    fflush (stdout);
    if (task && task->state != ARB_STATE_SUCCEEDED)
        arb_cli_say (0, "task %" PRIu64 " %s%s%s", id, arb_state_name ((int) task->state),
                     task->error ? ": " : "", task->error ? task->error : "");
    arb_msg_destroy (&reply);
    return status;
}

const arb_cli_cmd_t arb_cli_cmd_status = {
    .name = "status",
    .summary = "show a task: state, times, worker, result, attempts",
    .usage = "usage: arbiter status [--json] ID...\n"
             "\n"
             "Shows what the broker knows about each task: state, queue, name, priority,\n"
             "attempts, created/started/finished times, worker, the flow it belongs to (and\n"
             "its name there), error, result, each attempt's start, end, worker, outcome and\n"
             "error, and for a fan-out task each endpoint's answer (state, time, result or\n"
             "error). Results and errors are escaped onto one line (\\n, \\xNN).\n"
             "\n"
             "  --json  one object per task: state names as strings, each time as NAME_ms\n"
             "          (Unix ms) and NAME (RFC 3339), \"result\" (or \"result_base64\" when\n"
             "          it is not UTF-8), \"history\" (the attempts), \"flow\" and \"ref\"\n"
             "          (its flow and name there), \"origin\" and \"endpoint\" (a fan-out\n"
             "          copy), \"responses\" ([{\"endpoint\", \"id\", \"state\", \"finished\",\n"
             "          \"result\", \"error\"}] of a fan-out task)\n"
             "\n"
             "Exit: 0; 2 if a task is not found; 1 if the broker is unreachable.\n",
    .options = NULL,
    .run = s_status_run,
};

//  ---------------------------------------------------------------------
//  list

#define ARB_LIST_DEFAULT_LIMIT 1000  //  tasks `list` shows without --limit

//  Prints one task of the listing.
static int
s_list_one (void *arg, arb_task_info_t *task)
{
    arb_cli_t *cli = (arb_cli_t *) arg;
    if (cli->json)
        arb_cli_json_print (arb_json_task (task, false));
    else
        s_print_row (task);
    return 0;
}

//  Pages through LIST until limit tasks (0: all) are shown.
static int
s_list_pages (arb_cli_t *cli, uint32_t state, const char *queue, uint64_t limit)
{
    if (!cli->json)
        printf ("%-10s %-9s %-16s %-20s %9s %-24s  %s\n", "ID", "STATE", "QUEUE", "NAME",
                "ATTEMPTS", "CREATED", "ERROR");
    arb_list_body_t filter = {.state = state, .queue = queue};
    int rc = arb_client_list (cli->client, &filter, limit, s_list_one, cli);
    fflush (stdout);
    if (rc < 0)
        return arb_cli_client_fail (cli, "list");
    if (rc > 0)
        arb_cli_say (0, "list: more tasks match; --limit %" PRIu64 " reached (0: no limit)", limit);
    return ARB_EXIT_OK;
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
        if (c == 's' && (state = arb_state_parse (optarg)) < 0)
            return arb_cli_say (ARB_EXIT_USAGE,
                                "--state: '%s' is not one of waiting, scheduled, ready, running, "
                                "succeeded, dead, cancelled, skipped",
                                optarg);
        else if (c == 'q' && arb_cli_opt_name ("queue", optarg))
            return ARB_EXIT_USAGE;
        else if (c == 'l' && arb_cli_opt_uint ("limit", optarg, UINT32_MAX, &limit))
            return ARB_EXIT_USAGE;
        else if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == 'q')
            queue = optarg;
    }
    if (optind < argc)
        return arb_cli_usage (cmd, "unexpected argument '%s'", argv[optind]);
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    return s_list_pages (cli, (uint32_t) state, queue, limit);
}

const arb_cli_cmd_t arb_cli_cmd_list = {
    .name = "list",
    .summary = "list tasks by state and queue",
    .usage = "usage: arbiter list [--state S] [--queue Q] [--limit N] [--json]\n"
             "\n"
             "Lists tasks in id order, asking the broker page by page.\n"
             "\n"
             "  --state S  waiting, scheduled, ready, running, succeeded, dead, cancelled or\n"
             "             skipped (default: any)\n"
             "  --queue Q  only this queue\n"
             "  --limit N  at most N tasks (default 1000; 0: no limit)\n"
             "  --json     one object per task and line\n",
    .options = s_list_options,
    .run = s_list_run,
};
