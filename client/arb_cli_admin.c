/*  arb_cli_admin.c — changing things: `arbiter cancel`, `arbiter retry`,
    `arbiter delete`, `arbiter queue pause|resume|purge|set|show|declare|delete`
    and `arbiter limit`.

    CANCEL, RETRY and DELETE answer per id (0 done, 404 unknown, 409 not in
    a state that allows it). The exit status follows the worst answer: 2 if
    an id is unknown (refused input), 1 if a task could not be changed
    (409: already finished, still running, ...), else 0.
*/

#include "arb_cli_flow.h"

//  ---------------------------------------------------------------------
//  cancel and retry

static const char *
s_verb_done (arb_msg_type_t type)
{
    return type == ARB_MSG_CANCEL ? "cancelled" : type == ARB_MSG_RETRY ? "retried" : "deleted";
}

//  Prints the per-id outcomes (n of them) of CANCEL_REPLY, RETRY_REPLY or
//  DELETE_REPLY, or with by_id false the count of tasks changed, and
//  returns the exit status.
static int
s_print_outcomes (arb_cli_t *cli,
                  arb_msg_type_t type,
                  arb_outcome_info_t *outcomes,
                  size_t n,
                  uint32_t count,
                  bool by_id)
{
    const char *done = s_verb_done (type);
    int status = ARB_EXIT_OK;
    json_t *tasks = json_array ();
    for (size_t i = 0; i < n; i++) {
        const arb_outcome_info_t *outcome = &outcomes[i];
        const char *state = arb_state_name ((int) outcome->state);
        if (outcome->code == ARB_ERR_NOT_FOUND)
            status = ARB_EXIT_USAGE;
        else if (outcome->code && status == ARB_EXIT_OK)
            status = arb_cli_exit_for ((int) outcome->code);
        if (cli->json)
            json_array_append_new (tasks, arb_json_outcome (outcome));
        else if (outcome->code == 0 && type == ARB_MSG_CANCEL
                 && outcome->state == ARB_STATE_CANCELLED)
            printf ("%" PRIu64 " cancelled\n", outcome->id);  //  not "(now cancelled)"
        else if (outcome->code == 0)
            printf ("%" PRIu64 " %s (%s %s)\n", outcome->id, s_verb_done (type),
                    type == ARB_MSG_DELETE ? "it was" : "now", state);
        else if (outcome->code == ARB_ERR_NOT_FOUND)
            printf ("%" PRIu64 " not found\n", outcome->id);
        else if (type == ARB_MSG_DELETE && arb_state_is_final ((int) outcome->state))
            printf ("%" PRIu64 " not deleted: tasks that have not ended depend on it\n",
                    outcome->id);
        else if (type == ARB_MSG_RETRY && outcome->state == ARB_STATE_DEAD)
            //  the one dead task RETRY refuses (PROTOCOL.md)
            printf ("%" PRIu64 " not retried: a fan-out task is not retried (submit it again)\n",
                    outcome->id);
        else
            printf ("%" PRIu64 " not %s: it is %s\n", outcome->id, done, state);
    }
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "count", json_integer (count));
        json_object_set_new (obj, "tasks", tasks);
        arb_cli_json_print (obj);
    }
    else {
        json_decref (tasks);
        if (!by_id)
            printf ("%u task%s %s\n", count, count == 1 ? "" : "s", s_verb_done (type));
    }
    fflush (stdout);
    return status;
}

//  Cancels what cancel names, or retries what retry names (the other is
//  NULL), and prints the answer. Takes ids (malloc'd: the request's).
static int
s_change (arb_cli_t *cli,
          const arb_cancel_body_t *cancel,
          const arb_retry_body_t *retry,
          uint64_t *ids,
          size_t n)
{
    arb_outcome_info_t *outcomes =
        (arb_outcome_info_t *) calloc (n ? n : 1, sizeof (arb_outcome_info_t));
    assert (outcomes);
    uint32_t count = 0;
    int status;
    if (!arb_cli_client (cli))
        status = ARB_EXIT_USAGE;
    else if (cancel ? arb_client_cancel (cli->client, cancel, outcomes, &count)
                    : arb_client_retry (cli->client, retry, outcomes, &count))
        status = arb_cli_client_fail (cli, cancel ? "cancel" : "retry");
    else
        status = s_print_outcomes (cli, cancel ? ARB_MSG_CANCEL : ARB_MSG_RETRY, outcomes, n, count,
                                   n > 0);
    //  a group is a set of tasks that ends, as a flow is: nothing left in it
    //  to cancel is exit 1, as `arbiter group cancel` says it (this said
    //  "0 tasks cancelled" and exited 0). The broker lets a finalizer run,
    //  so it may be the one task left.
    if (status == ARB_EXIT_OK && cancel && cancel->group && count == 0)
        status = arb_cli_say (cli, ARB_EXIT_FAILED,
                              "cancel: group '%s': nothing to cancel, every task has finished "
                              "(but a finalizer, which a cancel leaves to run)",
                              cancel->group);
    free (outcomes);
    free (ids);
    return status;
}

static const struct option s_cancel_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {"group", required_argument, NULL, 'g'},
    {NULL, 0, NULL, 0},
};

static int
s_cancel_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_cancel;
    const char *queue = NULL, *group = NULL;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (arb_cli_opt_name (cli, c == 'q' ? "queue" : "group", optarg))
            return ARB_EXIT_USAGE;
        *(c == 'q' ? &queue : &group) = optarg;
    }
    int forms = (optind < argc) + (queue != NULL) + (group != NULL);
    if (forms != 1)
        return arb_cli_usage (cli, cmd,
                              "give task IDs, or a flow:ID, or --queue Q, or --group G (one of "
                              "them)");
    uint64_t flow;
    int status = optind < argc ? arb_cli_flow_arg (cli, cmd, argc, argv, &flow) : -1;
    if (status >= 0)
        return status ? status : arb_cli_flow_cancel (cli, ARB_FLOW_NONE, flow);
    uint64_t *ids = NULL;
    size_t n = 0;
    if (optind < argc && arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    arb_cancel_body_t what = {.ids = {ids, n}, .queue = queue, .group = group};
    return s_change (cli, &what, NULL, ids, n);
}

const arb_cli_cmd_t arb_cli_cmd_cancel = {
    .name = "cancel",
    .summary = "cancel tasks by id, queue or group",
    .usage = "usage: arbiter cancel [--json] ID... | flow:ID | --queue Q | --group G\n"
             "\n"
             "Cancels the given tasks, or every unfinished task of queue Q or of group G.\n"
             "A running task is stopped on its worker. Prints one line per ID (\"ID\n"
             "cancelled\", \"ID not found\", \"ID not cancelled: it is succeeded\"), or the\n"
             "number of tasks cancelled. A flow (flow:ID) is cancelled as `arbiter dag\n"
             "cancel` does.\n"
             "\n"
             "  --json  {\"count\", \"tasks\": [{\"id\", \"code\", \"state\"}]} (code 0 done, 404\n"
             "          unknown, 409 not in a state that allows it)\n"
             "\n"
             "Exit: 0; 2 if an ID, the flow or the group is unknown; 1 if a task could not be\n"
             "cancelled (finished), or the flow or the group had nothing left to cancel (as\n"
             "`arbiter group cancel`).\n",
    .options = s_cancel_options,
    .run = s_cancel_run,
};

static const struct option s_retry_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {"all", no_argument, NULL, 'a'},
    {"flow", required_argument, NULL, 'f'},
    {"group", required_argument, NULL, 'g'},
    {NULL, 0, NULL, 0},
};

//  A flow id as `submit` prints it, flow:N, or N. 0, or -1 after saying why.
static int
s_flow_option (arb_cli_t *cli, const char *text, uint64_t *flow)
{
    arb_cli_err_t err;
    const char *number = strncmp (text, "flow:", 5) == 0 ? text + 5 : text;
    if (arb_cli_parse_uint (number, UINT64_MAX, flow, &err) || *flow == 0)
        return arb_cli_say (cli, -1, "--flow: '%s' is not a flow id (flow:N, N from 1)", text);
    return 0;
}

static int
s_retry_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_retry;
    const char *queue = NULL, *group = NULL;
    uint64_t flow = 0;
    bool all = false;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == 'a')
            all = true;
        else if (c == 'f' && s_flow_option (cli, optarg, &flow))
            return ARB_EXIT_USAGE;
        else if (c != 'f' && arb_cli_opt_name (cli, c == 'q' ? "queue" : "group", optarg))
            return ARB_EXIT_USAGE;
        else if (c != 'f')
            *(c == 'q' ? &queue : &group) = optarg;
    }
    bool by_id = optind < argc;
    int forms = by_id + (queue || all) + (flow != 0) + (group != NULL);
    if (forms != 1 || (!by_id && (queue || all) && !(queue && all)))
        return arb_cli_usage (cli, cmd,
                              "give task IDs, or --queue Q --all, or --flow FLOW, or "
                              "--group NAME (one of them)");
    uint64_t *ids = NULL;
    size_t n = 0;
    if (by_id && arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    arb_retry_body_t what = {
        .ids = {ids, n}, .queue = queue, .all = all, .flow = flow, .group = group};
    return s_change (cli, NULL, &what, ids, n);
}

const arb_cli_cmd_t arb_cli_cmd_retry = {
    .name = "retry",
    .summary = "run dead tasks again",
    .usage = "usage: arbiter retry [--json] ID... | --queue Q --all | --flow FLOW | --group NAME\n"
             "\n"
             "Gives dead tasks a new round of attempts (their history stays): the given\n"
             "tasks, every dead task of queue Q (--queue Q --all), or those of a flow\n"
             "(--flow flow:N, as submit prints it) or of the groups named NAME (--group)\n"
             "that died on their own. The tasks that died because one of them failed\n"
             "(failed dependency: its children, theirs, a group's callback, the rest of a\n"
             "pipe) wait for it again and run when it succeeds; what ran because it failed\n"
             "(on_failure steps, a finalizer) stays as it ended. A fan-out task cannot be\n"
             "retried. Prints one line per ID, or the number of tasks back.\n"
             "\n"
             "An ID is retried whatever it died of. A task that died of a failed dependency,\n"
             "retried by its own ID while that parent is still dead, does not wait for it:\n"
             "it is ready at once and runs with the dead parent's outcome as its input (an\n"
             "empty payload for the parent's result; its state, dead, and error in\n"
             "ARBITER_PARENTS). To run it on a new result, retry the parent or the flow.\n"
             "\n"
             "  --json  {\"count\", \"tasks\": [{\"id\", \"code\", \"state\"}]} (count: tasks\n"
             "          back, the tasks that waited for them included)\n"
             "\n"
             "Exit: 0; 2 if an ID, the flow or the group is unknown; 1 if a task could not be\n"
             "retried (not dead, or a fan-out task).\n",
    .options = s_retry_options,
    .run = s_retry_run,
};

//  ---------------------------------------------------------------------
//  delete

static const struct option s_delete_options[] = {
    {"state", required_argument, NULL, 's'},
    {"queue", required_argument, NULL, 'q'},
    {"older-than", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

//  Deletes the finished tasks that match body's filters, one bounded step
//  of the broker's journal after another, and prints how many. Returns
//  the exit status.
static int
s_delete_matching (arb_cli_t *cli, const arb_delete_body_t *filter)
{
    uint32_t count = 0;
    bool more = true;
    uint64_t after_id = 0;
    //  each step starts after the last id the broker looked at, so the
    //  walk ends with the journal's ids
    while (more) {
        arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_DELETE);
        arb_delete_body_t *body = arb_msg_delete (request);
        *body = *filter;
        body->after_id = after_id;
        arb_msg_t *reply = arb_client_request (cli->client, &request);
        if (!reply) {
            if (count)
                arb_cli_say (cli, 0, "delete: %u task%s deleted before this", count,
                             count == 1 ? "" : "s");
            return arb_cli_client_fail (cli, "delete");
        }
        arb_delete_reply_body_t *out = arb_msg_delete_reply (reply);
        count += out->count;
        more = out->more && out->last_id > after_id;
        after_id = out->last_id;
        arb_msg_destroy (&reply);
    }
    return s_print_outcomes (cli, ARB_MSG_DELETE, NULL, 0, count, false);
}

static int
s_delete_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_delete;
    arb_delete_body_t filter = {.state = 0};
    arb_cli_err_t err;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == 's') {
            int state = arb_state_parse (optarg);
            if (state < 0 || !arb_state_is_final (state))
                return arb_cli_say (cli, ARB_EXIT_USAGE,
                                    "--state: '%s' is not succeeded, dead, cancelled or skipped",
                                    optarg);
            filter.state = (uint32_t) state;
        }
        else if (c == 'q') {
            if (arb_cli_opt_name (cli, "queue", optarg))
                return ARB_EXIT_USAGE;
            filter.queue = optarg;
        }
        else if (arb_cli_parse_duration (optarg, ARB_RETENTION_MAX_MS, &filter.older_than_ms, &err))
            return arb_cli_say (cli, ARB_EXIT_USAGE, "--older-than: %s", err.text);
    }
    bool by_id = optind < argc;
    bool matching = filter.state || filter.queue || filter.older_than_ms;
    if (by_id == matching)
        return arb_cli_usage (cli, cmd, "give task IDs, or --state, --queue or --older-than");
    uint64_t *ids = NULL;
    size_t n = 0;
    if (by_id && arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    if (n > ARB_DELETE_MAX) {
        free (ids);
        return arb_cli_usage (cli, cmd, "%zu IDs: at most %d at a time", n, ARB_DELETE_MAX);
    }
    if (!arb_cli_client (cli)) {
        free (ids);
        return ARB_EXIT_USAGE;
    }
    if (!by_id)
        return s_delete_matching (cli, &filter);
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_DELETE);
    arb_msg_delete (request)->ids = (arb_ids_t){ids, n};  //  borrowed until sent
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    free (ids);
    if (!reply)
        return arb_cli_client_fail (cli, "delete");
    arb_delete_reply_body_t *out = arb_msg_delete_reply (reply);
    int status =
        s_print_outcomes (cli, ARB_MSG_DELETE, out->tasks.v, out->tasks.n, out->count, true);
    arb_msg_destroy (&reply);
    return status;
}

const arb_cli_cmd_t arb_cli_cmd_delete = {
    .name = "delete",
    .summary = "remove finished tasks from the journal",
    .usage = "usage: arbiter delete [--json] ID...\n"
             "       arbiter delete [--json] [--state STATE] [--queue Q] [--older-than AGE]\n"
             "\n"
             "Removes finished tasks (succeeded, dead, cancelled or skipped) from the broker's\n"
             "journal, with their results and history, as their retention would later: the\n"
             "given IDs (up to 1000), or every finished task that matches the options given\n"
             "(at least one). A task that has not finished is not deleted, nor one that\n"
             "tasks that have not finished depend on. Prints one line per ID (\"ID deleted\n"
             "(it was STATE)\", \"ID not found\", \"ID not deleted: it is running\"), or\n"
             "the number of tasks deleted.\n"
             "\n"
             "  --state STATE     only tasks in this state: succeeded, dead, cancelled, skipped\n"
             "  --queue Q         only tasks of queue Q\n"
             "  --older-than AGE  only tasks that finished at least AGE ago: seconds, or a\n"
             "                    number with a unit: 90s, 30m, 12h, 7d\n"
             "  --json            {\"count\", \"tasks\": [{\"id\", \"code\", \"state\"}]} (code 0\n"
             "                    deleted, with the state it had; 404 unknown; 409 not\n"
             "                    finished, or finished with unfinished tasks depending on it)\n"
             "\n"
             "Exit: 0; 2 if an ID is unknown; 1 if a task could not be deleted.\n",
    .options = s_delete_options,
    .run = s_delete_run,
};

//  ---------------------------------------------------------------------
//  queue

typedef struct {
    bool yes;
    bool settings;  //  a set option was given
    uint64_t max_running;
    uint64_t rate;
    uint64_t retention_ms;
    uint64_t max_ready;
    uint64_t max_ready_bytes;
    const char *on_failure;  //  borrowed from argv
    const char *overflow;    //  borrowed from argv
    const char *clear[6];    //  settings given as 0: back to their default
    size_t clear_count;
} s_queue_t;

static const struct option s_queue_options[] = {
    {"yes", no_argument, NULL, 'y'},
    {"max-running", required_argument, NULL, 'm'},
    {"rate", required_argument, NULL, 'r'},
    {"retention", required_argument, NULL, 'R'},
    {"on-failure", required_argument, NULL, 'f'},
    {"max-ready", required_argument, NULL, 'x'},
    {"max-ready-bytes", required_argument, NULL, 'X'},
    {"overflow", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

//  A setting given as 0 is cleared (back to no limit / the default).
static void
s_clear_if_zero (const char **clear, size_t *count, uint64_t value, const char *name)
{
    if (value == 0)
        clear[(*count)++] = name;
}

static int
s_queue_option (arb_cli_t *cli, s_queue_t *self, int c, const char *value)
{
    if (c == 'y') {
        self->yes = true;
        return 0;
    }
    self->settings = true;
    int rc = 0;
    if (c == 'm') {
        rc = arb_cli_opt_uint (cli, "max-running", value, UINT32_MAX, &self->max_running);
        s_clear_if_zero (self->clear, &self->clear_count, self->max_running, "max_running");
    }
    else if (c == 'r') {
        rc = arb_cli_opt_uint (cli, "rate", value, UINT32_MAX, &self->rate);
        s_clear_if_zero (self->clear, &self->clear_count, self->rate, "rate_per_sec");
    }
    else if (c == 'R') {
        rc = arb_cli_opt_seconds (cli, "retention", value, ARB_RETENTION_MAX_MS,
                                  &self->retention_ms);
        s_clear_if_zero (self->clear, &self->clear_count, self->retention_ms, "retention_ms");
    }
    else if (c == 'x') {
        rc = arb_cli_opt_uint (cli, "max-ready", value, INT64_MAX, &self->max_ready);
        s_clear_if_zero (self->clear, &self->clear_count, self->max_ready, "max_ready");
    }
    else if (c == 'X') {
        rc = arb_cli_opt_uint (cli, "max-ready-bytes", value, INT64_MAX, &self->max_ready_bytes);
        s_clear_if_zero (self->clear, &self->clear_count, self->max_ready_bytes, "max_ready_bytes");
    }
    else if (c == 'o') {
        if (!streq (value, "drop-head") && !streq (value, "reject"))
            return arb_cli_say (cli, ARB_EXIT_USAGE, "--overflow: '%s' is not drop-head or reject",
                                value);
        self->overflow = value;
    }
    else {
        if (!streq (value, "retry") && !streq (value, "head") && !streq (value, "dead"))
            return arb_cli_say (cli, ARB_EXIT_USAGE,
                                "--on-failure: '%s' is not retry, head or dead", value);
        self->on_failure = value;
    }
    return rc;
}

//  Checks the operation against the options given. Returns 0 or an exit status.
static int
s_queue_check (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, const char *op, const char *queue, s_queue_t *self)
{
    const char *ops[] = {"pause", "resume", "purge", "set", "show", "declare", "delete"};
    bool known = false;
    for (size_t i = 0; i < sizeof (ops) / sizeof (ops[0]); i++)
        known |= streq (op, ops[i]);
    if (!known)
        return arb_cli_usage (cli, cmd,
                              "'%s' is not pause, resume, purge, set, show, declare or delete", op);
    if (arb_cli_opt_name (cli, "Q", queue))
        return ARB_EXIT_USAGE;
    if (self->settings && !streq (op, "set"))
        return arb_cli_usage (cli, cmd,
                              "--max-running, --rate, --retention, --on-failure, --max-ready, "
                              "--max-ready-bytes and --overflow go with set");
    if (streq (op, "set") && !self->settings)
        return arb_cli_usage (cli, cmd,
                              "set what? give --max-running, --rate, --retention, --on-failure, "
                              "--max-ready, --max-ready-bytes or --overflow");
    bool destroys = streq (op, "purge") || streq (op, "delete");
    if (self->yes && !destroys)
        return arb_cli_usage (cli, cmd, "--yes goes with purge and delete");
    if (streq (op, "purge") && !self->yes)
        return arb_cli_say (cli, ARB_EXIT_USAGE,
                            "queue purge: this cancels every task of queue '%s' that is not "
                            "running; add --yes to do it",
                            queue);
    if (streq (op, "delete") && !self->yes)
        return arb_cli_say (cli, ARB_EXIT_USAGE,
                            "queue delete: this cancels every task of queue '%s', running ones "
                            "too, and forgets the queue, its finished tasks and its settings; "
                            "add --yes to do it",
                            queue);
    return 0;
}

static void
s_queue_print (arb_cli_t *cli, const char *op, const char *queue, uint64_t count)
{
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "queue", json_string (queue));
        json_object_set_new (obj, "op", json_string (op));
        json_object_set_new (obj, "count", json_integer ((json_int_t) count));
        arb_cli_json_print (obj);
    }
    else if (streq (op, "purge"))
        printf ("queue %s: %" PRIu64 " task%s purged\n", queue, count, count == 1 ? "" : "s");
    else if (streq (op, "delete"))
        printf ("queue %s deleted: %" PRIu64 " task%s cancelled\n", queue, count,
                count == 1 ? "" : "s");
    else if (streq (op, "declare"))
        printf ("queue %s %s\n", queue, count ? "declared" : "was declared already");
    else if (streq (op, "set"))
        printf ("queue %s: settings stored\n", queue);
    else
        printf ("queue %s %sd\n", queue, op);
}

//  One line of `queue show`: "  LABEL  VALUE".
static void
s_show_line (const char *label, const char *value)
{
    printf ("  %-12s %s\n", label, value);
}

//  Prints a queue of STATS: its settings that are set, then its tasks.
static void
s_queue_show_text (arb_queue_info_t *queue)
{
    char text[64];
    printf ("queue %s\n", queue->name);
    s_show_line ("paused", queue->paused ? "yes" : "no");
    if (queue->max_running) {
        snprintf (text, sizeof (text), "%u", queue->max_running);
        s_show_line ("max running", text);
    }
    if (queue->rate_per_sec) {
        snprintf (text, sizeof (text), "%u/s", queue->rate_per_sec);
        s_show_line ("rate", text);
    }
    if (queue->retention_ms) {
        arb_cli_format_duration (queue->retention_ms, text, sizeof (text));
        s_show_line ("retention", text);
    }
    if (queue->on_failure)
        s_show_line ("on failure", queue->on_failure);
    if (queue->max_ready) {
        snprintf (text, sizeof (text), "%" PRIu64 " tasks", queue->max_ready);
        s_show_line ("max ready", text);
    }
    if (queue->max_ready_bytes) {
        snprintf (text, sizeof (text), "%" PRIu64 " bytes", queue->max_ready_bytes);
        s_show_line ("max ready", text);
    }
    if (queue->overflow)
        s_show_line ("overflow", queue->overflow);
    if (!queue->max_running && !queue->rate_per_sec && !queue->retention_ms && !queue->on_failure
        && !queue->max_ready && !queue->max_ready_bytes && !queue->overflow)
        s_show_line ("settings",
                     "the defaults (no limits, the broker's retention, on failure retry)");
    printf ("  %-12s", "tasks");
    bool any = false;
    for (size_t state = 1; state <= ARB_STATE_MAX && state < queue->counts.n; state++)
        if (queue->counts.v[state]) {
            printf ("%s%s %" PRIu64, any ? ", " : " ", arb_state_name ((int) state),
                    queue->counts.v[state]);
            any = true;
        }
    printf ("%s\n", any ? "" : " none");
}

//  queue show: the queue's record in STATS. Returns the exit status.
static int
s_queue_show (arb_cli_t *cli, const char *name)
{
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_STATS);
    arb_msg_stats (request)->queue = name;  //  that queue alone, whatever page it is on
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "queue show");
    arb_stats_reply_body_t *stats = arb_msg_stats_reply (reply);
    arb_queue_info_t *queue = NULL;
    for (size_t i = 0; i < stats->queues.n && !queue; i++)
        if (streq (stats->queues.v[i].name, name))
            queue = &stats->queues.v[i];
    int status = ARB_EXIT_OK;
    if (!queue)
        status =
            arb_cli_say (cli, ARB_EXIT_USAGE,
                         "queue show: no queue named '%s' (it has no tasks and no settings)", name);
    else if (cli->json)
        arb_cli_json_print (arb_json_queue (queue));
    else
        s_queue_show_text (queue);
    arb_msg_destroy (&reply);
    return status;
}

static int
s_queue_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_queue;
    s_queue_t self = {.yes = false};
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (s_queue_option (cli, &self, c, optarg))
            return ARB_EXIT_USAGE;
    }
    if (argc - optind != 2)
        return arb_cli_usage (
            cli, cmd,
            "give an operation and a queue: queue pause|resume|purge|set|show|declare|delete Q");
    const char *op = argv[optind], *queue = argv[optind + 1];
    int status = s_queue_check (cli, cmd, op, queue, &self);
    if (status)
        return status;
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    if (streq (op, "show"))
        return s_queue_show (cli, queue);
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_QUEUE);
    arb_queue_body_t *body = arb_msg_queue (request);
    body->queue = queue;
    body->op = op;
    body->max_running = (uint32_t) self.max_running;
    body->rate_per_sec = (uint32_t) self.rate;
    body->retention_ms = self.retention_ms;
    body->on_failure = self.on_failure;
    body->max_ready = self.max_ready;
    body->max_ready_bytes = self.max_ready_bytes;
    body->overflow = self.overflow;
    body->clear.v = self.clear;
    body->clear.n = self.clear_count;
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "queue");
    s_queue_print (cli, op, queue, arb_msg_ok (reply)->count);
    arb_msg_destroy (&reply);
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_queue = {
    .name = "queue",
    .summary = "pause, resume, purge, configure, show, declare or delete a queue",
    .usage = "usage: arbiter queue pause Q | resume Q | show Q | declare Q\n"
             "       arbiter queue purge Q --yes | delete Q --yes\n"
             "       arbiter queue set Q [--max-running N] [--rate PER_SEC] [--retention SECONDS]\n"
             "                           [--on-failure retry|head|dead] [--max-ready N]\n"
             "                           [--max-ready-bytes BYTES] [--overflow drop-head|reject]\n"
             "\n"
             "  pause, resume  stop / start handing out the queue's tasks (running ones go on)\n"
             "  purge          cancel every task of the queue that is not running; refused\n"
             "                 without --yes (exit 2)\n"
             "  declare        make the queue known: listed by stats while empty, kept across\n"
             "                 restarts until deleted\n"
             "  delete         cancel every task of the queue, running ones too, and forget\n"
             "                 the queue: its finished tasks, settings and metadata; refused\n"
             "                 without --yes (exit 2)\n"
             "  set            change the settings given (the others stay); 0 puts a setting\n"
             "                 back to its default (no limit, the broker's retention)\n"
             "    --max-running N      at most N tasks of the queue running at once\n"
             "    --rate PER_SEC       start at most PER_SEC tasks per second\n"
             "    --retention SECONDS  keep finished tasks this long\n"
             "    --on-failure retry|head|dead  what a failed attempt does: retry with the\n"
             "                         task's backoff (default); back to the head of the\n"
             "                         queue (Arbeiter) after a backoff, the task's own or\n"
             "                         100 ms doubling up to 30 s, the others going past it\n"
             "                         meanwhile, and dead after the task's retries, or\n"
             "                         without retries quarantined after the broker's\n"
             "                         --max-head-failures failures in a row (10); or dead\n"
             "                         at once\n"
             "    --max-ready N        keep at most N ready tasks: a submit that takes the\n"
             "                         queue over drops its oldest ready tasks (cancelled,\n"
             "                         in the order they would be handed out)\n"
             "    --max-ready-bytes BYTES  the same for the payload bytes of its ready tasks\n"
             "    --overflow drop-head|reject  what a submit over a bound does: drop the\n"
             "                         oldest ready tasks (default), or refuse the new\n"
             "                         ones that do not fit (they end cancelled at once)\n"
             "  show           print the queue's settings that are set (paused, max running,\n"
             "                 rate, retention, on failure, max ready, overflow) and its tasks\n"
             "                 by state; exit 2 if the broker knows no such queue (no tasks,\n"
             "                 no settings)\n"
             "  --json         print {\"queue\", \"op\", \"count\"}; show: the queue as\n"
             "                 `stats --json` gives it, {\"name\", \"counts\", \"paused\",\n"
             "                 \"settings\": {the ones set}, ...}\n",
    .options = s_queue_options,
    .run = s_queue_run,
};

//  ---------------------------------------------------------------------
//  limit

static const struct option s_limit_options[] = {
    {"max-running", required_argument, NULL, 'm'},
    {"rate", required_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static void
s_limit_print (arb_cli_t *cli, const arb_limit_info_t *info, bool *shown)
{
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "name", json_string (info->name));
        json_object_set_new (obj, "max_running", json_integer (info->max_running));
        json_object_set_new (obj, "rate_per_sec", json_integer (info->rate_per_sec));
        json_object_set_new (obj, "running", json_integer (info->running));
        arb_cli_json_print (obj);
        return;
    }
    if (!*shown)
        printf ("%-24s %11s %8s %8s\n", "NAME", "MAX RUNNING", "RATE/S", "RUNNING");
    *shown = true;
    char *name = arb_cli_escape_str (info->name);
    char max_running[16] = "-", rate[16] = "-";
    if (info->max_running)
        snprintf (max_running, sizeof (max_running), "%u", info->max_running);
    if (info->rate_per_sec)
        snprintf (rate, sizeof (rate), "%u", info->rate_per_sec);
    printf ("%-*s %11s %8s %8u\n", arb_cli_pad (name, 24), name, max_running, rate, info->running);
    free (name);
}

//  `arbiter limit [NAME]` without limits to set: shows the names that have
//  limits (LIMITS, a page at a time), or NAME's.
static int
s_limit_show (arb_cli_t *cli, const char *name)
{
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    bool shown = false;
    char *after = NULL;
    while (true) {
        arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_LIMITS);
        arb_limits_body_t *body = arb_msg_limits (request);
        body->name = name;
        body->after = after;
        arb_msg_t *reply = arb_client_request (cli->client, &request);
        if (!reply) {
            free (after);
            return arb_cli_client_fail (cli, "limit");
        }
        arb_limits_reply_body_t *out = arb_msg_limits_reply (reply);
        for (size_t i = 0; i < out->limits.n; i++)
            s_limit_print (cli, &out->limits.v[i], &shown);
        bool more = out->more && out->limits.n > 0;
        free (after);
        after = more ? strdup (out->limits.v[out->limits.n - 1].name) : NULL;
        arb_msg_destroy (&reply);
        if (!more)
            break;
    }
    if (!shown && !cli->json) {
        if (name)
            printf ("tasks named %s: no limits\n", name);
        else
            printf ("no task name has limits\n");
    }
    return ARB_EXIT_OK;
}

static int
s_limit_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_limit;
    uint64_t max_running = 0, rate = 0;
    const char *clear[2];
    size_t clear_count = 0;
    bool given = false;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        given = true;
        if (arb_cli_opt_uint (cli, c == 'm' ? "max-running" : "rate", optarg, UINT32_MAX,
                              c == 'm' ? &max_running : &rate))
            return ARB_EXIT_USAGE;
        s_clear_if_zero (clear, &clear_count, c == 'm' ? max_running : rate,
                         c == 'm' ? "max_running" : "rate_per_sec");
    }
    if (argc - optind > 1 || (given && argc - optind != 1))
        return arb_cli_usage (cli, cmd, "give one task NAME");
    const char *name = argc - optind == 1 ? argv[optind] : NULL;
    if (name && arb_cli_opt_name (cli, "NAME", name))
        return ARB_EXIT_USAGE;
    if (!given)
        return s_limit_show (cli, name);
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_LIMIT);
    arb_limit_body_t *body = arb_msg_limit (request);
    body->name = name;
    body->max_running = (uint32_t) max_running;
    body->rate_per_sec = (uint32_t) rate;
    body->clear.v = clear;
    body->clear.n = clear_count;
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, "limit");
    arb_msg_destroy (&reply);
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "name", json_string (name));
        json_object_set_new (obj, "max_running", json_integer ((json_int_t) max_running));
        json_object_set_new (obj, "rate_per_sec", json_integer ((json_int_t) rate));
        arb_cli_json_print (obj);
    }
    else {
        printf ("tasks named %s: limits updated\n", name);
    }
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_limit = {
    .name = "limit",
    .summary = "limit how many tasks of a name run at once, or start per second",
    .usage = "usage: arbiter limit NAME [--max-running N] [--rate PER_SEC] [--json]\n"
             "       arbiter limit [NAME] [--json]\n"
             "\n"
             "Sets the limits of the tasks named NAME, across every queue and worker. Only\n"
             "the limits given change; 0 removes one. A task held back by a limit keeps its\n"
             "place in its queue. Without a limit to set: shows the names that have limits\n"
             "(or NAME's), and how many of their tasks run now.\n"
             "\n"
             "  --max-running N   at most N of them running at once\n"
             "  --rate PER_SEC    start at most PER_SEC of them per second\n",
    .options = s_limit_options,
    .run = s_limit_run,
};
