/*  arb_cli_schedule.c — `arbiter schedule add|list|remove|pause|resume`:
    periodic tasks, kept by the broker (SCHEDULE, proto/PROTOCOL.md).

    The broker checks the cron expression and the time zone (it alone has
    the parser and the zone files) and refuses a bad one with 422 and a
    reason naming the field, which this prints before exiting 2. What can
    be checked here (names, option values, the catch-up policy) is, before
    anything is sent. Times are shown in the schedule's zone, with its
    offset: "2026-12-02T02:30:00+01:00".
*/

#include "arb_cli.h"

typedef struct {
    arb_cli_t *cli;        //  borrowed
    arb_task_spec_t spec;  //  template options (strings borrowed from argv)
    const char *cron;      //  borrowed from argv
    const char *zone;      //  borrowed from argv
    const char *catch_up;  //  borrowed from argv
    const char *task;      //  borrowed from argv
    bool add_options;      //  an option only add takes was given
} s_schedule_t;

static const struct option s_options[] = {
    {"cron", required_argument, NULL, 'c'},
    {"tz", required_argument, NULL, 'z'},
    {"catch-up", required_argument, NULL, 'u'},
    {"task", required_argument, NULL, 'n'},
    ARB_CLI_TASK_OPTIONS,
    {NULL, 0, NULL, 0},
};

static int
s_option (s_schedule_t *self, int c, const char *value)
{
    arb_cli_t *cli = self->cli;
    self->add_options = true;
    int rc = arb_cli_task_option (cli, &self->spec, c, value);
    if (rc <= 0)
        return rc;
    switch (c) {
        case 'c':
            self->cron = value;
            if (!*value || strlen (value) > ARB_NAME_MAX)
                return arb_cli_say (cli, -1, "--cron: 1 to %d bytes, not %zu", ARB_NAME_MAX,
                                    strlen (value));
            return 0;
        case 'z':
            self->zone = value;
            return arb_cli_opt_name (cli, "tz", value);
        case 'u':
            self->catch_up = value;
            if (!streq (value, "none") && !streq (value, "one") && !streq (value, "all"))
                return arb_cli_say (cli, -1, "--catch-up: '%s' is not none, one or all", value);
            return 0;
        case 'n':
            self->task = value;
            return arb_cli_opt_name (cli, "task", value);
    }
    return -1;
}

//  Unix ms as the zone's clock shows it: "2026-12-02T02:30:00+01:00".
static void
s_format_local (uint64_t ms, int32_t offset_s, char *buf, size_t size)
{
    time_t seconds = (time_t) (ms / 1000) + offset_s;
    struct tm tm;
    char date[32];
    if (!gmtime_r (&seconds, &tm) || !strftime (date, sizeof (date), "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf (buf, size, "?");
        return;
    }
    int32_t abs_offset = offset_s < 0 ? -offset_s : offset_s;
    snprintf (buf, size, "%s%c%02d:%02d", date, offset_s < 0 ? '-' : '+', abs_offset / 3600,
              abs_offset / 60 % 60);
}

static json_t *
s_json (arb_schedule_info_t *s)
{
    json_t *obj = json_object ();
    char text[48];
    arb_json_str (obj, "name", s->name);
    arb_json_str (obj, "cron", s->cron);
    arb_json_str (obj, "zone", s->zone);
    arb_json_str (obj, "catch_up", s->catch_up);
    json_object_set_new (obj, "paused", json_boolean (s->paused));
    arb_json_time (obj, "created", s->created_ms);
    arb_json_time (obj, "next", s->next_ms);
    s_format_local (s->next_ms, s->next_offset_s, text, sizeof (text));
    json_object_set_new (obj, "next_local", s->next_ms ? json_string (text) : json_null ());
    arb_json_time (obj, "last_slot", s->last_slot_ms);
    json_object_set_new (obj, "last_id",
                         s->last_id ? json_integer ((json_int_t) s->last_id) : json_null ());
    arb_json_str (obj, "queue", s->queue);
    arb_json_str (obj, "task", s->task);
    json_object_set_new (obj, "priority", json_integer (s->priority));
    json_object_set_new (obj, "retries", json_integer (s->retries));
    json_object_set_new (obj, "backoff", json_integer (s->backoff));
    json_object_set_new (obj, "backoff_ms", json_integer ((json_int_t) s->backoff_ms));
    json_object_set_new (obj, "backoff_cap_ms", json_integer ((json_int_t) s->backoff_cap_ms));
    json_object_set_new (obj, "no_jitter", json_boolean (s->no_jitter));
    json_object_set_new (obj, "timeout_ms", json_integer ((json_int_t) s->timeout_ms));
    json_object_set_new (obj, "soft_timeout_ms", json_integer ((json_int_t) s->soft_timeout_ms));
    json_object_set_new (obj, "retention_ms", json_integer ((json_int_t) s->retention_ms));
    arb_json_bytes (obj, "payload", s->payload ? zframe_data (s->payload) : NULL,
                    s->payload ? zframe_size (s->payload) : 0);
    return obj;
}

//  When a schedule fires next, for people.
static void
s_next_text (arb_schedule_info_t *s, char *buf, size_t size)
{
    if (s->paused)
        snprintf (buf, size, "paused");
    else if (s->next_ms == 0)
        snprintf (buf, size, "never");
    else
        s_format_local (s->next_ms, s->next_offset_s, buf, size);
}

//  The list as an aligned table: NAME CRON ZONE NEXT CATCH-UP QUEUE TASK LAST.
static void
s_print_table (arb_schedule_reply_body_t *body)
{
    enum {
        COLUMNS = 8
    };
    const char *heads[COLUMNS] = {"NAME",     "CRON",  "ZONE", "NEXT",
                                  "CATCH-UP", "QUEUE", "TASK", "LAST"};
    size_t n = body->schedules.n;
    char (*cells)[COLUMNS][64] = calloc (n ? n : 1, sizeof (*cells));
    assert (cells);
    int widths[COLUMNS];
    for (int c = 0; c < COLUMNS; c++)
        widths[c] = (int) strlen (heads[c]);
    for (size_t i = 0; i < n; i++) {
        arb_schedule_info_t *s = &body->schedules.v[i];
        char next[48];
        s_next_text (s, next, sizeof (next));
        const char *texts[COLUMNS] = {s->name,     s->cron,  s->zone, next,
                                      s->catch_up, s->queue, s->task, NULL};
        for (int c = 0; c < COLUMNS; c++) {
            if (texts[c])
                snprintf (cells[i][c], sizeof (cells[i][c]), "%s", texts[c]);
            else if (s->last_id)
                snprintf (cells[i][c], sizeof (cells[i][c]), "%" PRIu64, s->last_id);
            else
                snprintf (cells[i][c], sizeof (cells[i][c]), "-");
            int width = (int) arb_cli_columns (cells[i][c]);
            widths[c] = width > widths[c] ? width : widths[c];
        }
    }
    for (int c = 0; c < COLUMNS; c++)
        printf ("%-*s%s", c + 1 < COLUMNS ? widths[c] : 0, heads[c], c + 1 < COLUMNS ? "  " : "\n");
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < COLUMNS; c++)
            printf ("%-*s%s", c + 1 < COLUMNS ? arb_cli_pad (cells[i][c], widths[c]) : 0,
                    cells[i][c], c + 1 < COLUMNS ? "  " : "\n");
    free (cells);
}

static void
s_print (arb_cli_t *cli, const char *op, arb_schedule_reply_body_t *body)
{
    if (cli->json) {
        for (size_t i = 0; i < body->schedules.n; i++)
            arb_cli_json_print (s_json (&body->schedules.v[i]));
        return;
    }
    if (streq (op, "list")) {
        s_print_table (body);
        fflush (stdout);
        return;
    }
    for (size_t i = 0; i < body->schedules.n; i++) {
        arb_schedule_info_t *s = &body->schedules.v[i];
        char next[48];
        s_next_text (s, next, sizeof (next));
        if (streq (op, "remove") || streq (op, "pause"))
            printf ("schedule %s %sd\n", s->name, op);
        else
            printf ("schedule %s %s%s: next %s (%s)\n", s->name, op, streq (op, "add") ? "ed" : "d",
                    next, s->zone ? s->zone : "UTC");
    }
    fflush (stdout);
}

//  What add sends besides the name and payload.
static void
s_template (arb_schedule_body_t *body, s_schedule_t *self, const char *name)
{
    arb_schedule_info_from_spec (body, &self->spec);
    body->cron = self->cron;
    body->zone = self->zone;
    body->catch_up = self->catch_up;
    body->task = self->task ? self->task : name;
}

//  The operation's arguments: NAME for all but list (where it is
//  optional), and for add the payload. Returns 0 or an exit status.
static int
s_check (const arb_cli_cmd_t *cmd, s_schedule_t *self, const char *op, int left)
{
    arb_cli_t *cli = self->cli;
    bool add = streq (op, "add"), list = streq (op, "list");
    if (!add && !list && !streq (op, "remove") && !streq (op, "pause") && !streq (op, "resume"))
        return arb_cli_usage (cli, cmd, "'%s' is not add, list, remove, pause or resume", op);
    if (!add && self->add_options)
        return arb_cli_usage (cli, cmd,
                              "--cron, --tz, --catch-up, --task and the task's options go "
                              "with add");
    if (add && !self->cron)
        return arb_cli_usage (cli, cmd, "add: when? give --cron EXPR");
    if (arb_cli_task_check (cli, &self->spec))
        return ARB_EXIT_USAGE;
    int most = add ? 2 : 1, least = list ? 0 : 1;
    if (left < least || left > most)
        return arb_cli_usage (cli, cmd,
                              left < least ? "which schedule? give its NAME"
                              : add        ? "too many arguments: a NAME and one PAYLOAD (quote a "
                                             "payload that has spaces: 'nightly report')"
                                           : "too many arguments");
    return 0;
}

static int
s_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_schedule;
    s_schedule_t self = {.cli = cli};
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (s_option (&self, c, optarg))
            return ARB_EXIT_USAGE;
    }
    if (optind >= argc)
        return arb_cli_usage (cli, cmd, "give an operation: add, list, remove, pause or resume");
    const char *op = argv[optind++];
    int status = s_check (cmd, &self, op, argc - optind);
    if (status)
        return status;
    const char *name = optind < argc ? argv[optind] : NULL;
    if (name && arb_cli_opt_name (cli, "NAME", name))
        return ARB_EXIT_USAGE;
    if (name && strlen (name) > ARB_SCHEDULE_NAME_MAX)
        return arb_cli_say (cli, ARB_EXIT_USAGE, "NAME: %zu bytes, over the %d-byte limit",
                            strlen (name), ARB_SCHEDULE_NAME_MAX);
    zframe_t *payload = NULL;
    if (streq (op, "add")
        && !(payload = arb_cli_payload (cli, optind + 1 < argc ? argv[optind + 1] : NULL)))
        return ARB_EXIT_USAGE;
    if (!arb_cli_client (cli)) {
        zframe_destroy (&payload);
        return ARB_EXIT_USAGE;
    }
    arb_msg_t *request = arb_client_request_new (cli->client, ARB_MSG_SCHEDULE);
    arb_schedule_body_t *body = arb_msg_schedule (request);
    body->op = op;
    body->name = name;
    body->payload = payload;
    if (payload)
        s_template (body, &self, name);
    char what[32];
    snprintf (what, sizeof (what), "schedule %s", op);
    arb_msg_t *reply = arb_client_request (cli->client, &request);
    if (!reply)
        return arb_cli_client_fail (cli, what);
    s_print (cli, op, arb_msg_schedule_reply (reply));
    arb_msg_destroy (&reply);
    return ARB_EXIT_OK;
}

const arb_cli_cmd_t arb_cli_cmd_schedule = {
    .name = "schedule",
    .summary = "add, list, remove, pause or resume periodic tasks",
    .usage = "usage: arbiter schedule add NAME --cron EXPR [--tz ZONE] [--catch-up none|one|all]\n"
             "                            [--task TASK] [task options] [PAYLOAD | -]\n"
             "       arbiter schedule list [NAME]\n"
             "       arbiter schedule remove|pause|resume NAME\n"
             "\n"
             "A schedule submits a task at every time its cron expression gives (a slot),\n"
             "kept by the broker in its journal. Each task has the client key\n"
             "schedule:NAME:SLOT_MS (the slot in Unix ms), so a slot never makes two tasks.\n"
             "\n"
             "  add      a schedule called NAME (1 to 160 bytes); its tasks are TASK (default:\n"
             "           NAME) with the payload PAYLOAD, or stdin (up to 16 MiB) for '-', or\n"
             "           none; prints when it fires next\n"
             "  list     every schedule (or NAME's), with when it fires next in its zone:\n"
             "           NAME CRON ZONE NEXT CATCH-UP QUEUE TASK LAST (the last task it made)\n"
             "  remove   delete the schedule (the tasks it made stay)\n"
             "  pause    no slot fires until resume\n"
             "  resume   fire again from the next slot after now (slots while paused never fire)\n"
             "\n"
             "  --cron EXPR          5 fields (minute hour day-of-month month day-of-week), or 6\n"
             "                       with the seconds first ('*/10 * * * * *': every 10 s); '*',\n"
             "                       N, N-M, lists, /STEP, names (jan, mon-fri); @yearly\n"
             "                       @monthly @weekly @daily @hourly. With day of month and\n"
             "                       day of week both restricted, a day matching either fires.\n"
             "  --tz ZONE            the expression's time zone (IANA: Europe/Berlin; default\n"
             "                       UTC). When the clocks change: with every hour in the hour\n"
             "                       field, slots follow the clock (a skipped hour fires\n"
             "                       nothing, a repeated one fires twice); otherwise each time\n"
             "                       fires once (a skipped one at the end of the gap)\n"
             "  --catch-up POLICY    slots missed while the broker was down: none (skip them),\n"
             "                       one (default: the latest fires once), all (each fires once,\n"
             "                       at most 1,000)\n"
             "  --task TASK          the tasks' (handler's) name (default: "
             "NAME)\n" ARB_CLI_TASK_OPTIONS_HELP
             "  --json               one object per schedule: name, cron, zone, catch_up, paused,\n"
             "                       next_ms, next (UTC), next_local (in the zone), last_slot,\n"
             "                       last_id, the template and its payload\n"
             "\n"
             "Exit: 0; 2 for a bad option, or an expression, zone or template the broker\n"
             "refused (422, with the reason), or an unknown NAME (404); 1 if NAME exists\n"
             "already (add, 409) or the broker is unreachable.\n",
    .options = s_options,
    .run = s_run,
};
