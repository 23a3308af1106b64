/*  arb_cli_admin.c — changing things: `arbiter cancel`, `arbiter retry`,
    `arbiter queue pause|resume|purge|set|declare|delete` and `arbiter limit`.

    CANCEL and RETRY answer per id (0 done, 404 unknown, 409 not in a
    state that allows it). The exit status follows the worst answer: 2 if
    an id is unknown (refused input), 1 if a task could not be changed
    (409: already finished, still running, ...), else 0.
*/

#include "arb_cli_flow.h"

//  ---------------------------------------------------------------------
//  cancel and retry

//  Prints the per-id outcomes of a cancel (cancel true) or retry, or the
//  count of a queue- or group-wide one, and returns the exit status.
static int
s_print_outcomes (
    arb_cli_t *cli, bool cancel, const arb_outcome_info_t *outcomes, size_t n, uint32_t count)
{
    const char *done = cancel ? "cancelled" : "retried";
    int status = ARB_EXIT_OK;
    json_t *tasks = json_array ();
    for (size_t i = 0; i < n; i++) {
        const arb_outcome_info_t *outcome = &outcomes[i];
        const char *state = arb_state_name ((int) outcome->state);
        if (outcome->code == ARB_ERR_NOT_FOUND)
            status = ARB_EXIT_USAGE;
        else if (outcome->code && status == ARB_EXIT_OK)
            status = arb_cli_exit_for ((int) outcome->code);
        if (cli->json) {
            json_t *obj = json_object ();
            json_object_set_new (obj, "id", json_integer ((json_int_t) outcome->id));
            json_object_set_new (obj, "code", json_integer (outcome->code));
            json_object_set_new (obj, "state", outcome->state ? json_string (state) : json_null ());
            json_array_append_new (tasks, obj);
        }
        else if (outcome->code == 0)
            printf ("%" PRIu64 " %s (now %s)\n", outcome->id, done, state);
        else if (outcome->code == ARB_ERR_NOT_FOUND)
            printf ("%" PRIu64 " not found\n", outcome->id);
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
        if (n == 0)
            printf ("%u task%s %s\n", count, count == 1 ? "" : "s", done);
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
        status = s_print_outcomes (cli, cancel != NULL, outcomes, n, count);
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
             "Exit: 0; 2 if an ID is unknown; 1 if a task could not be cancelled (finished).\n",
    .options = s_cancel_options,
    .run = s_cancel_run,
};

static const struct option s_retry_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {"all", no_argument, NULL, 'a'},
    {NULL, 0, NULL, 0},
};

static int
s_retry_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_retry;
    const char *queue = NULL;
    bool all = false;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == 'a')
            all = true;
        else if (arb_cli_opt_name (cli, "queue", optarg))
            return ARB_EXIT_USAGE;
        else
            queue = optarg;
    }
    bool by_id = optind < argc;
    if (by_id == (queue || all) || (!by_id && !(queue && all)))
        return arb_cli_usage (cli, cmd, "give task IDs, or --queue Q --all");
    uint64_t *ids = NULL;
    size_t n = 0;
    if (by_id && arb_cli_parse_ids (cli, argc - optind, argv + optind, &ids, &n))
        return ARB_EXIT_USAGE;
    arb_retry_body_t what = {.ids = {ids, n}, .queue = queue, .all = all};
    return s_change (cli, NULL, &what, ids, n);
}

const arb_cli_cmd_t arb_cli_cmd_retry = {
    .name = "retry",
    .summary = "run dead tasks again",
    .usage = "usage: arbiter retry [--json] ID... | --queue Q --all\n"
             "\n"
             "Gives dead (or cancelled) tasks a new round of attempts, or every dead task of\n"
             "queue Q with --queue Q --all. Prints one line per ID, or the number retried.\n"
             "\n"
             "  --json  {\"count\", \"tasks\": [{\"id\", \"code\", \"state\"}]}\n"
             "\n"
             "Exit: 0; 2 if an ID is unknown; 1 if a task could not be retried (not dead).\n",
    .options = s_retry_options,
    .run = s_retry_run,
};

//  ---------------------------------------------------------------------
//  queue

typedef struct {
    bool yes;
    bool settings;  //  a set option was given
    uint64_t max_running;
    uint64_t rate;
    uint64_t retention_ms;
    const char *on_failure;  //  borrowed from argv
    const char *clear[4];    //  settings given as 0: back to their default
    size_t clear_count;
} s_queue_t;

static const struct option s_queue_options[] = {
    {"yes", no_argument, NULL, 'y'},
    {"max-running", required_argument, NULL, 'm'},
    {"rate", required_argument, NULL, 'r'},
    {"retention", required_argument, NULL, 'R'},
    {"on-failure", required_argument, NULL, 'f'},
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
    const char *ops[] = {"pause", "resume", "purge", "set", "declare", "delete"};
    bool known = false;
    for (size_t i = 0; i < sizeof (ops) / sizeof (ops[0]); i++)
        known |= streq (op, ops[i]);
    if (!known)
        return arb_cli_usage (cli, cmd, "'%s' is not pause, resume, purge, set, declare or delete",
                              op);
    if (arb_cli_opt_name (cli, "Q", queue))
        return ARB_EXIT_USAGE;
    if (self->settings && !streq (op, "set"))
        return arb_cli_usage (cli, cmd,
                              "--max-running, --rate, --retention and --on-failure go with set");
    if (streq (op, "set") && !self->settings)
        return arb_cli_usage (cli, cmd,
                              "set what? give --max-running, --rate, --retention or --on-failure");
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
            "give an operation and a queue: queue pause|resume|purge|set|declare|delete Q");
    const char *op = argv[optind], *queue = argv[optind + 1];
    int status = s_queue_check (cli, cmd, op, queue, &self);
    if (status)
        return status;
    if (!arb_cli_client (cli))
        return ARB_EXIT_USAGE;
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_QUEUE);
    arb_queue_body_t *body = arb_msg_queue (request);
    body->queue = queue;
    body->op = op;
    body->max_running = (uint32_t) self.max_running;
    body->rate_per_sec = (uint32_t) self.rate;
    body->retention_ms = self.retention_ms;
    body->on_failure = self.on_failure;
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
    .summary = "pause, resume, purge, configure, declare or delete a queue",
    .usage = "usage: arbiter queue pause Q | resume Q | declare Q\n"
             "       arbiter queue purge Q --yes | delete Q --yes\n"
             "       arbiter queue set Q [--max-running N] [--rate PER_SEC] [--retention SECONDS]\n"
             "                           [--on-failure retry|head|dead]\n"
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
             "                         task's backoff (default), back to the head of the queue\n"
             "                         (Arbeiter), or dead at once\n"
             "  --json         print {\"queue\", \"op\", \"count\"}\n",
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
    if (!given)
        return arb_cli_usage (cli, cmd, "limit what? give --max-running or --rate");
    if (argc - optind != 1)
        return arb_cli_usage (cli, cmd, "give one task NAME");
    const char *name = argv[optind];
    if (arb_cli_opt_name (cli, "NAME", name))
        return ARB_EXIT_USAGE;
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
             "\n"
             "Sets the limits of the tasks named NAME, across every queue and worker. Only\n"
             "the limits given change; 0 removes one. A task held back by a limit keeps its\n"
             "place in its queue.\n"
             "\n"
             "  --max-running N   at most N of them running at once\n"
             "  --rate PER_SEC    start at most PER_SEC of them per second\n",
    .options = s_limit_options,
    .run = s_limit_run,
};
