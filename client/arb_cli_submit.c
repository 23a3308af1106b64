/*  arb_cli_submit.c — `arbiter submit`: one task from the command line.

    Every option value is checked here, before anything is sent, so that a
    mistake is an exit 2 naming the option rather than a round trip; the
    broker checks again (422) for callers that are not this CLI.
*/

#include "arb_cli.h"

typedef struct {
    arb_cli_t *cli;        //  borrowed
    arb_task_spec_t spec;  //  strings borrowed from argv
    bool watch;
    bool have_delay;
    bool have_at;
    bool fan_out_options;  //  --allow-unknown-endpoints, --endpoint-timeout
    const char *endpoints[ARB_CLIENT_ENDPOINTS_MAX];  //  borrowed from argv
} s_submit_t;

static const struct option s_options[] = {
    ARB_CLI_TASK_OPTIONS,
    {"key", required_argument, NULL, 'k'},
    {"delay", required_argument, NULL, 'd'},
    {"at", required_argument, NULL, 'a'},
    {"watch", no_argument, NULL, 'w'},
    {"endpoint", required_argument, NULL, 'e'},
    {"broadcast", no_argument, NULL, 'B'},
    {"allow-unknown-endpoints", no_argument, NULL, 'U'},
    {"endpoint-timeout", required_argument, NULL, 'T'},
    {NULL, 0, NULL, 0},
};

//  Adds one --endpoint: a worker's name, each once.
static int
s_endpoint (s_submit_t *self, const char *name)
{
    arb_cli_t *cli = self->cli;
    arb_strs_t *endpoints = &self->spec.endpoints;
    if (arb_cli_opt_name (cli, "endpoint", name))
        return -1;
    if (strchr (name, '@'))
        return arb_cli_say (cli, -1, "--endpoint: '%s' is not a worker name ('@' is reserved)",
                            name);
    for (size_t e = 0; e < endpoints->n; e++)
        if (streq (endpoints->v[e], name))
            return arb_cli_say (cli, -1, "--endpoint: '%s' is given twice", name);
    if (endpoints->n == ARB_CLIENT_ENDPOINTS_MAX)
        return arb_cli_say (cli, -1, "--endpoint: more than %d endpoints",
                            ARB_CLIENT_ENDPOINTS_MAX);
    endpoints->v = self->endpoints;
    endpoints->v[endpoints->n++] = name;
    return 0;
}

//  Applies one fan-out option. Returns 0, or -1 after printing why.
static int
s_fan_out_option (s_submit_t *self, int c, const char *value)
{
    arb_cli_t *cli = self->cli;
    arb_task_spec_t *spec = &self->spec;
    if (c == 'e')
        return s_endpoint (self, value);
    if (c == 'B') {
        spec->broadcast = true;
        return 0;
    }
    self->fan_out_options = true;
    if (c == 'U') {
        spec->allow_unknown = true;
        return 0;
    }
    return arb_cli_opt_positive_seconds (cli, "endpoint-timeout", value, ARB_TIMEOUT_MAX_MS,
                                         &spec->endpoint_timeout_ms);
}

int
arb_cli_task_option (arb_cli_t *cli, arb_task_spec_t *spec, int c, const char *value)
{
    arb_cli_err_t err;
    uint64_t number;
    int64_t priority;
    switch (c) {
        case 'q':
            spec->queue = value;
            return arb_cli_opt_name (cli, "queue", value);
        case 'p':
            if (arb_cli_parse_int (value, INT32_MIN, INT32_MAX, &priority, &err))
                return arb_cli_say (cli, -1, "--priority: %s", err.text);
            spec->priority = (int32_t) priority;
            return 0;
        case 'r':
            if (arb_cli_opt_uint (cli, "retries", value, ARB_RETRIES_MAX, &number))
                return -1;
            spec->retries = (uint32_t) number;
            return 0;
        case 'b':
            if (arb_cli_parse_backoff (value, &spec->backoff, &spec->backoff_ms,
                                       &spec->backoff_cap_ms, &err))
                return arb_cli_say (cli, -1, "--backoff: %s", err.text);
            return 0;
        case 'J':
            spec->no_jitter = true;
            return 0;
        case 't':
            return arb_cli_opt_seconds (cli, "timeout", value, ARB_TIMEOUT_MAX_MS,
                                        &spec->timeout_ms);
        case 'S':
            return arb_cli_opt_positive_seconds (cli, "soft-timeout", value, ARB_TIMEOUT_MAX_MS,
                                                 &spec->soft_timeout_ms);
        case 'R':
            return arb_cli_opt_seconds (cli, "retention", value, ARB_RETENTION_MAX_MS,
                                        &spec->retention_ms);
    }
    return 1;
}

int
arb_cli_task_check (arb_cli_t *cli, const arb_task_spec_t *spec)
{
    if (spec->no_jitter && spec->backoff != ARB_BACKOFF_EXP)
        return arb_cli_say (cli, -1, "--no-jitter: only exp: backoff is jittered");
    if (spec->backoff != ARB_BACKOFF_NONE && spec->retries == 0)
        return arb_cli_say (cli, -1,
                            "--backoff: it delays retries, and there are none: add --retries N");
    if (spec->soft_timeout_ms && spec->timeout_ms && spec->soft_timeout_ms >= spec->timeout_ms)
        return arb_cli_say (cli, -1, "--soft-timeout: must be below --timeout");
    return 0;
}

//  Applies one option. Returns 0, or -1 after printing why.
static int
s_option (s_submit_t *self, int c, const char *value)
{
    arb_cli_t *cli = self->cli;
    arb_task_spec_t *spec = &self->spec;
    arb_cli_err_t err;
    int rc = arb_cli_task_option (cli, spec, c, value);
    if (rc <= 0)
        return rc;
    switch (c) {
        case 'k':
            spec->key = value;
            return arb_cli_opt_name (cli, "key", value);
        case 'd':
            self->have_delay = true;
            return arb_cli_opt_seconds (cli, "delay", value, ARB_DELAY_MAX_MS, &spec->delay_ms);
        case 'a':
            self->have_at = true;
            if (arb_cli_parse_time (value, (uint64_t) zclock_time (), &spec->at_ms, &err))
                return arb_cli_say (cli, -1, "--at: %s", err.text);
            return 0;
        case 'w':
            self->watch = true;
            return 0;
        case 'e':
        case 'B':
        case 'U':
        case 'T':
            return s_fan_out_option (self, c, value);
    }
    return -1;
}

zframe_t *
arb_cli_payload (arb_cli_t *cli, const char *arg)
{
    if (!arg)
        return zframe_new_empty ();
    if (!streq (arg, "-")) {
        size_t size = strlen (arg);
        if (size > ARB_PAYLOAD_DEFAULT_MAX) {
            arb_cli_say (cli, 0, "payload: %zu bytes, over the %u-byte limit", size,
                         ARB_PAYLOAD_DEFAULT_MAX);
            return NULL;
        }
        return zframe_new (arg, size);
    }
    return arb_cli_read_stdin (cli, "payload", ARB_PAYLOAD_DEFAULT_MAX);
}

static void
s_print (arb_cli_t *cli, s_submit_t *self, uint64_t id, bool existing, bool refused)
{
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "id", json_integer ((json_int_t) id));
        json_object_set_new (obj, "existing", json_boolean (existing));
        json_object_set_new (obj, "refused", json_boolean (refused));
        arb_cli_json_print (obj);
    }
    else {
        printf ("%" PRIu64 "\n", id);
        fflush (stdout);
        if (existing)
            arb_cli_note (cli, "key '%s' was known already: %" PRIu64 " is the task it named",
                          self->spec.key, id);
    }
    if (refused)
        arb_cli_say (cli, 0,
                     "submit: task %" PRIu64 " was refused: its queue '%s' is over its bound "
                     "(overflow reject); it ended cancelled and will not run",
                     id, self->spec.queue ? self->spec.queue : "default");
}

//  The rules between options. Returns 0, or -1 after printing why.
static int
s_check (s_submit_t *self)
{
    arb_cli_t *cli = self->cli;
    arb_task_spec_t *spec = &self->spec;
    if (self->have_delay && self->have_at)
        return arb_cli_say (cli, -1, "--delay and --at both say when; give one");
    if (arb_cli_task_check (cli, spec))
        return -1;
    if (spec->endpoints.n && spec->broadcast)
        return arb_cli_say (cli, -1, "--endpoint and --broadcast both say where; give one");
    if (self->fan_out_options && !spec->endpoints.n && !spec->broadcast)
        return arb_cli_say (cli, -1,
                            "--allow-unknown-endpoints and --endpoint-timeout go with "
                            "--endpoint or --broadcast");
    return 0;
}

//  A refusal of the SUBMIT, in the command's words: the broker names the
//  request's fields (tasks[0].endpoints, allow_unknown), the command has
//  one task and options.
static int
s_fail (arb_cli_t *cli)
{
    const char *error = arb_client_error (cli->client);
    int code = arb_client_error_code (cli->client);
    if (error && strncmp (error, "tasks[0]: frame of ", 19) == 0) {
        //  the task's one frame is its payload, the limit the broker's
        arb_cli_say_code (cli, 0, code, "submit: payload of %s (the broker's --max-payload)",
                          error + 19);
        return arb_cli_exit_for (code);
    }
    if (!error || strncmp (error, "tasks[0].", 9) != 0)
        return arb_cli_client_fail (cli, "submit");
    const char *text = error + 9;
    int status = arb_cli_say_allow_unknown (cli, "submit", text, "--allow-unknown-endpoints");
    if (status >= 0)
        return status;
    arb_cli_say_code (cli, 0, code, "submit: %s", text);
    return arb_cli_exit_for (code);
}

//  Waits for a fan-out task, then shows its endpoints' answers.
static int
s_watch_fan_out (arb_cli_t *cli, uint64_t id)
{
    while (true) {
        arb_done_t *done = arb_client_next (cli->client, -1);
        if (!done)
            return arb_cli_client_fail (cli, "wait");
        bool ended = done->id == id;
        arb_done_destroy (&done);
        if (ended)
            return arb_cli_show_responses (cli, id);
    }
}

static int
s_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_submit;
    s_submit_t self = {.cli = cli};
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (s_option (&self, c, optarg))
            return ARB_EXIT_USAGE;
    }
    int left = argc - optind;
    //  `submit upper hello world` is the newcomer's: say how to give it
    if (left < 1 || left > 2)
        return arb_cli_usage (cli, cmd,
                              left < 1 ? "which task? give its NAME"
                                       : "too many arguments: a NAME and one PAYLOAD (quote a "
                                         "payload that has spaces: 'hello world')");
    if (s_check (&self))
        return ARB_EXIT_USAGE;
    self.spec.name = argv[optind];
    arb_cli_err_t err;
    if (arb_cli_parse_name (self.spec.name, &err))
        return arb_cli_say (cli, ARB_EXIT_USAGE, "NAME: %s", err.text);
    self.spec.payload = arb_cli_payload (cli, left == 2 ? argv[optind + 1] : NULL);
    if (!self.spec.payload)
        return ARB_EXIT_USAGE;

    arb_client_t *client = arb_cli_client (cli);
    if (!client) {
        zframe_destroy (&self.spec.payload);
        return ARB_EXIT_USAGE;
    }
    uint64_t id;
    bool existing;
    if (arb_client_submit (client, &self.spec, 1, self.watch, &id, &existing))
        return s_fail (cli);
    //  a task its queue refused ended cancelled: a task that will not run
    //  is a failure (exit 1), as `wait` says of a cancelled one
    bool refused = arb_client_submit_refused (client, 0);
    s_print (cli, &self, id, existing, refused);
    if (refused || !self.watch)
        return refused ? ARB_EXIT_FAILED : ARB_EXIT_OK;
    if (self.spec.endpoints.n || self.spec.broadcast)
        return s_watch_fan_out (cli, id);
    return arb_cli_wait_for (cli, &id, 1, -1, true);
}

const arb_cli_cmd_t arb_cli_cmd_submit = {
    .name = "submit",
    .summary = "submit a task and print its id",
    .usage =
        "usage: arbiter submit [options] NAME [PAYLOAD | -]\n"
        "\n"
        "Submits one task for the handler NAME and prints its id. The payload is\n"
        "PAYLOAD, or stdin (up to 16 MiB) for '-'; without one it is empty and stdin\n"
        "is left alone. A PAYLOAD that starts with '-' goes after '--'.\n"
        "\n"
        "  --key K              client key: submitting a known key again returns the\n"
        "                       first task's id and submits nothing (safe retries)\n"
    /* the options a schedule's tasks take too */ ARB_CLI_TASK_OPTIONS_HELP
        "  --delay SECONDS      start no earlier than SECONDS from now (a unit too: 1.5h;\n"
        "                       up to 366 days)\n"
        "  --at TIME            start no earlier than TIME: RFC 3339 (2026-11-23T10:00:00Z,\n"
        "                       or with an offset like +01:00) or Unix seconds\n"
        "  --watch              then wait for the task and print its result, as `wait ID`\n"
        "  --json               print {\"id\", \"existing\", \"refused\"}\n"
        "\n"
        "Fan-out: one copy of the task to each of several workers (endpoints), by name:\n"
        "  --endpoint NAME      a worker that must run it (repeat for each); the worker must\n"
        "                       be connected now (else exit 2)\n"
        "  --broadcast          every worker that serves the queue now\n"
        "  --allow-unknown-endpoints  send to endpoints that are not connected yet\n"
        "  --endpoint-timeout SECONDS  an endpoint that has not received its copy by then\n"
        "                       is missing, and the task ends dead as incomplete (default 30)\n"
        "The task succeeds when every endpoint has answered (with a result or an error);\n"
        "`arbiter status ID` shows each answer. With --watch, each endpoint's answer is\n"
        "printed (\"NAME STATE: RESULT|ERROR\"), and the exit status is 1 unless all\n"
        "succeeded.\n"
        "\n"
        "A queue set with --overflow reject that is at its bound refuses the task: it\n"
        "ends cancelled at once, its id is printed all the same, a line on stderr says\n"
        "so, and the exit status is 1 (with --json: \"refused\": true).\n"
        "\n"
        "SECONDS may have decimals (0.25), rounded to the ms; a value above 0 is at\n"
        "least 1 ms (0.0004 is 1 ms, never 0, which means none). Values out of range\n"
        "are refused before anything is sent (exit 2). If the broker does not\n"
        "acknowledge the submit in time its outcome is unknown: submit again with the\n"
        "same --key to be safe.\n",
    .options = s_options,
    .run = s_run,
};
