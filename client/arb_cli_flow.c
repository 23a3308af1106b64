/*  arb_cli_flow.c — the flow commands' shared parts: a flow's tasks
    (loaded from the broker, or named by the file just submitted), submit,
    status and cancel. Waiting is in arb_cli_flow_wait.c.

    A flow's id is written flow:7, so that it is never taken for a task's.
    `dag status` of a group's id shows the group as a DAG: the command's
    kind only chooses the words; `arbiter status flow:7` takes the kind
    the broker keeps.
*/

#include "arb_cli_flow.h"

//  States in the order a flow's counts are shown.
static const int s_states[] = {
    ARB_STATE_WAITING,   ARB_STATE_SCHEDULED, ARB_STATE_READY,     ARB_STATE_RUNNING,
    ARB_STATE_SUCCEEDED, ARB_STATE_SKIPPED,   ARB_STATE_CANCELLED, ARB_STATE_DEAD,
};

#define ARB_STATES (sizeof (s_states) / sizeof (s_states[0]))

//  ---------------------------------------------------------------------
//  The flow's tasks.

arb_cli_flow_t *
arb_cli_flow_new (arb_flow_kind_t kind, uint64_t id)
{
    arb_cli_flow_t *self = (arb_cli_flow_t *) zmalloc (sizeof (arb_cli_flow_t));
    self->kind = kind;
    self->id = id;
    return self;
}

void
arb_cli_flow_destroy (arb_cli_flow_t **self_p)
{
    assert (self_p);
    arb_cli_flow_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        free (self->v[i].ref);
        free (self->v[i].name);
        free (self->v[i].error);
        free (self->v[i].result);
    }
    free (self->v);
    free (self);
    *self_p = NULL;
}

const char *
arb_cli_flow_word (arb_flow_kind_t kind)
{
    return kind == ARB_FLOW_GROUP  ? "group"
           : kind == ARB_FLOW_PIPE ? "pipe"
           : kind == ARB_FLOW_DAG  ? "dag"
                                   : "flow";
}

bool
arb_cli_is_flow_id (const char *text)
{
    return strncmp (text, ARB_CLI_FLOW_PREFIX, strlen (ARB_CLI_FLOW_PREFIX)) == 0;
}

int
arb_cli_parse_flow_id (arb_cli_t *cli, const char *text, uint64_t *id)
{
    const char *digits = arb_cli_is_flow_id (text) ? text + strlen (ARB_CLI_FLOW_PREFIX) : text;
    arb_cli_err_t err;
    if (arb_cli_parse_uint (digits, UINT64_MAX, id, &err) == 0 && *id > 0)
        return 0;
    char *quoted = arb_cli_escape_str (text);
    arb_cli_say (cli, 0, "'%.64s' is not a flow id (flow:N, N a number from 1)", quoted);
    free (quoted);
    return -1;
}

//  A new task at the end of the flow.
static arb_cli_node_t *
s_add (arb_cli_flow_t *self, uint64_t id, const char *ref, const char *name)
{
    if (self->n == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 16;
        self->v = (arb_cli_node_t *) realloc (self->v, self->capacity * sizeof (arb_cli_node_t));
        assert (self->v);
    }
    arb_cli_node_t *node = &self->v[self->n++];
    memset (node, 0, sizeof (*node));
    node->id = id;
    node->ref = strdup (ref ? ref : "");
    node->name = strdup (name ? name : "");
    return node;
}

//  One task of the flow as STATUS tells it; copies and emitted tasks are
//  not the flow's own.
static int
s_load_task (void *arg, arb_task_info_t *task)
{
    arb_cli_flow_t *self = (arb_cli_flow_t *) arg;
    if (task->origin || !task->ref)
        return 0;
    if (self->kind == ARB_FLOW_NONE && task->flow_kind <= ARB_FLOW_PIPE)
        self->kind = (arb_flow_kind_t) task->flow_kind;
    arb_cli_node_t *node = s_add (self, task->id, task->ref, task->name);
    node->state = (int) task->state;
    node->attempts = task->attempts;
    node->max_attempts = task->max_attempts;
    node->error = task->error ? strdup (task->error) : NULL;
    if (task->state == ARB_STATE_SUCCEEDED && task->result.size) {
        node->result = (uint8_t *) malloc (task->result.size);
        assert (node->result);
        memcpy (node->result, task->result.data, task->result.size);
        node->result_size = task->result.size;
    }
    return 0;
}

int
arb_cli_flow_load (arb_cli_t *cli, arb_cli_flow_t *self)
{
    if (arb_client_flow_each (cli->client, self->id, s_load_task, self) < 0)
        return arb_cli_client_fail (cli, arb_cli_flow_word (self->kind));
    if (self->n == 0)
        return arb_cli_say_code (
            cli, ARB_EXIT_USAGE, ARB_ERR_NOT_FOUND,
            ARB_CLI_FLOW_PREFIX "%" PRIu64 ": no such flow (or its tasks are gone)", self->id);
    return 0;
}

//  ---------------------------------------------------------------------
//  Submit.

//  Prints the flow's id (with --json, its tasks' ids by name and the
//  names of those refused), then one line on stderr naming the tasks
//  their queue refused. Returns how many were refused.
static size_t
s_print_submitted (arb_cli_t *cli, arb_flowfile_t *file, uint64_t flow, const uint64_t *ids)
{
    arb_task_spec_t *specs = arb_flowfile_specs (file);
    size_t n = arb_flowfile_size (file);
    size_t refused = 0;
    for (size_t i = 0; i < n; i++)
        refused += arb_client_submit_refused (cli->client, i);
    if (!cli->json) {
        printf (ARB_CLI_FLOW_PREFIX "%" PRIu64 "\n", flow);
        fflush (stdout);
    }
    else {
        json_t *tasks = json_object ();
        json_t *names = json_array ();
        for (size_t i = 0; i < n; i++) {
            json_object_set_new (tasks, specs[i].ref, json_integer ((json_int_t) ids[i]));
            if (arb_client_submit_refused (cli->client, i))
                json_array_append_new (names, json_string (specs[i].ref));
        }
        json_t *obj = json_object ();
        json_object_set_new (obj, "flow", json_integer ((json_int_t) flow));
        json_object_set_new (obj, "tasks", tasks);
        json_object_set_new (obj, "refused", names);
        arb_cli_json_print (obj);
    }
    if (!refused)
        return 0;
    //  "a (12), b (13)": as many as fit one line, then how many more
    char text[1024];
    size_t used = 0, named = 0;
    for (size_t i = 0; i < n && used < sizeof (text) - 200; i++)
        if (arb_client_submit_refused (cli->client, i)) {
            char *ref = arb_cli_escape_str (specs[i].ref);
            used += (size_t) snprintf (text + used, sizeof (text) - used, "%s'%.64s' (%" PRIu64 ")",
                                       named ? ", " : "", ref, ids[i]);
            free (ref);
            named++;
        }
    if (named < refused)
        snprintf (text + used, sizeof (text) - used, " and %zu more", refused - named);
    arb_cli_say (cli, 0,
                 "%s: " ARB_CLI_FLOW_PREFIX "%" PRIu64 ": %zu task%s refused by a queue over its "
                 "bound (overflow reject), ended cancelled and will not run: %s",
                 arb_cli_flow_word (arb_flowfile_kind (file)), flow, refused,
                 refused == 1 ? "" : "s", text);
    return refused;
}

//  A submit that failed. Not acknowledged in time, its outcome is
//  unknown, and the library's advice (the same --key) is not for flows,
//  which have no --key: say what can be done instead.
static int
s_submit_fail (arb_cli_t *cli, const char *word)
{
    const char *error = arb_client_error (cli->client);
    int code = arb_client_error_code (cli->client);
    //  the broker names the request's field; the file's is another
    int status = arb_cli_say_allow_unknown (cli, word, error, "\"allow_unknown_endpoints\": true");
    if (status >= 0)
        return status;
    const char *advice = error ? strstr (error, "; re-submit with the same --key") : NULL;
    if (!advice || code != 0)
        return arb_cli_client_fail (cli, word);
    return arb_cli_say (cli, ARB_EXIT_FAILED,
                        "%s: %.*s; before submitting it again, look for its tasks with `arbiter "
                        "list` (a file whose tasks all have a \"key\" can be submitted again "
                        "safely: a known key submits nothing)",
                        word, (int) (advice - error), error);
}

//  The flow just submitted, as the file names its tasks.
static arb_cli_flow_t *
s_flow_of_file (arb_flowfile_t *file, uint64_t flow, const uint64_t *ids)
{
    arb_cli_flow_t *self = arb_cli_flow_new (arb_flowfile_kind (file), flow);
    arb_task_spec_t *specs = arb_flowfile_specs (file);
    for (size_t i = 0; i < arb_flowfile_size (file); i++)
        s_add (self, ids[i], specs[i].ref, specs[i].name);
    return self;
}

int
arb_cli_flow_submit (arb_cli_t *cli, arb_flowfile_t **file_p, bool watch)
{
    arb_flowfile_t *file = *file_p;
    *file_p = NULL;
    const char *word = arb_cli_flow_word (arb_flowfile_kind (file));
    size_t n = arb_flowfile_size (file);
    uint64_t *ids = (uint64_t *) calloc (n, sizeof (uint64_t));
    assert (ids);
    uint64_t flow = 0;
    int status = ARB_EXIT_OK;
    if (!arb_cli_client (cli))
        status = ARB_EXIT_USAGE;
    else if (arb_client_submit_flow (cli->client, arb_flowfile_kind (file),
                                     arb_flowfile_name (file), arb_flowfile_specs (file), n, watch,
                                     ids, &flow))
        status = s_submit_fail (cli, word);
    else {
        //  a task that will not run is a failure (exit 1), as a cancelled
        //  one is to `wait`
        if (s_print_submitted (cli, file, flow, ids))
            status = ARB_EXIT_FAILED;
        if (watch) {
            arb_cli_flow_t *self = s_flow_of_file (file, flow, ids);
            int waited = arb_cli_flow_wait (cli, self, true, -1);
            arb_cli_flow_destroy (&self);
            if (waited != ARB_EXIT_OK)
                status = waited;
        }
    }
    free (ids);
    arb_flowfile_destroy (&file);
    return status;
}

//  ---------------------------------------------------------------------
//  Status.

//  Counts by state, as "2 succeeded, 1 running" (or JSON {"succeeded": 2}).
static void
s_counts (arb_cli_flow_t *self, char *text, size_t size, json_t *obj)
{
    size_t used = 0;
    text[0] = 0;
    for (size_t s = 0; s < ARB_STATES; s++) {
        size_t count = 0;
        for (size_t i = 0; i < self->n; i++)
            count += self->v[i].state == s_states[s];
        if (count == 0)
            continue;
        json_object_set_new (obj, arb_state_name (s_states[s]), json_integer ((json_int_t) count));
        used += (size_t) snprintf (text + used, size - used, "%s%zu %s", used ? ", " : "", count,
                                   arb_state_name (s_states[s]));
        if (used >= size)
            break;
    }
}

//  A group's members: the tasks but its callback and finalizer.
static bool
s_is_member (arb_cli_node_t *node)
{
    return !streq (node->ref, ARB_FLOWFILE_CALLBACK) && !streq (node->ref, ARB_FLOWFILE_FINALIZER);
}

//  A group's members: how many, how many ended, how many of those failed.
static void
s_members (arb_cli_flow_t *self, size_t *total, size_t *done, size_t *failed)
{
    *total = *done = *failed = 0;
    for (size_t i = 0; i < self->n; i++) {
        arb_cli_node_t *node = &self->v[i];
        if (!s_is_member (node))
            continue;
        (*total)++;
        *done += arb_state_is_final (node->state);
        *failed += arb_state_is_final (node->state) && node->state != ARB_STATE_SUCCEEDED;
    }
}

static json_t *
s_node_json (arb_cli_node_t *node)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) node->id));
    arb_json_str (obj, "name", node->ref);
    arb_json_str (obj, "task", node->name);
    json_object_set_new (obj, "state", json_string (arb_state_name (node->state)));
    json_object_set_new (obj, "attempts", json_integer (node->attempts));
    json_object_set_new (obj, "max_attempts", json_integer (node->max_attempts));
    arb_json_str (obj, "error", node->error);
    if (node->state == ARB_STATE_SUCCEEDED)
        arb_json_bytes (obj, "result", node->result, node->result_size);
    else
        json_object_set_new (obj, "result", json_null ());
    return obj;
}

static void
s_status_json (arb_cli_flow_t *self)
{
    json_t *obj = json_object ();
    json_t *counts = json_object ();
    char text[256];
    s_counts (self, text, sizeof (text), counts);
    json_object_set_new (obj, "flow", json_integer ((json_int_t) self->id));
    json_object_set_new (obj, "total", json_integer ((json_int_t) self->n));
    json_object_set_new (obj, "counts", counts);
    if (self->kind == ARB_FLOW_GROUP) {
        size_t total, done, failed;
        s_members (self, &total, &done, &failed);
        json_t *members = json_object ();
        json_object_set_new (members, "total", json_integer ((json_int_t) total));
        json_object_set_new (members, "done", json_integer ((json_int_t) done));
        json_object_set_new (members, "failed", json_integer ((json_int_t) failed));
        json_object_set_new (obj, "members", members);
    }
    json_t *tasks = json_array ();
    for (size_t i = 0; i < self->n; i++)
        json_array_append_new (tasks, s_node_json (&self->v[i]));
    json_object_set_new (obj, "tasks", tasks);
    arb_cli_json_print (obj);
}

static void
s_print_node (arb_cli_node_t *node, int width)
{
    char attempts[32];
    arb_cli_format_attempts (node->attempts, node->max_attempts, attempts, sizeof (attempts));
    char *error = arb_cli_escape_str (node->error);
    if (*error)
        printf ("%-*s %-9s %-8s %-10" PRIu64 " %s\n", arb_cli_pad (node->ref, width), node->ref,
                arb_state_name (node->state), attempts, node->id, error);
    else
        printf ("%-*s %-9s %-8s %" PRIu64 "\n", arb_cli_pad (node->ref, width), node->ref,
                arb_state_name (node->state), attempts, node->id);
    free (error);
}

static void
s_status_text (arb_cli_flow_t *self)
{
    char counts[256];
    json_t *unused = json_object ();
    s_counts (self, counts, sizeof (counts), unused);
    json_decref (unused);
    printf (ARB_CLI_FLOW_PREFIX "%" PRIu64 " (%s): %zu task%s: %s\n", self->id,
            arb_cli_flow_word (self->kind), self->n, self->n == 1 ? "" : "s", counts);
    if (self->kind == ARB_FLOW_GROUP) {
        size_t total, done, failed;
        s_members (self, &total, &done, &failed);
        printf ("members: %zu/%zu done, %zu failed\n", done, total, failed);
    }
    int width = 4;
    for (size_t i = 0; i < self->n; i++)
        if ((int) arb_cli_columns (self->v[i].ref) > width)
            width = (int) arb_cli_columns (self->v[i].ref);
    width = width > 40 ? 40 : width;
    printf ("%-*s %-9s %-8s %-10s %s\n", width, "NAME", "STATE", "ATTEMPTS", "ID", "ERROR");
    for (size_t i = 0; i < self->n; i++)
        s_print_node (&self->v[i], width);
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  The verbs on a flow id.

//  Reads the verb's one flow id ("flow:7" or "7"). Returns 0, or the exit
//  status.
static int
s_flow_id (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv, uint64_t *id)
{
    if (argc - optind != 1)
        return arb_cli_usage (cli, cmd,
                              argc - optind < 1 ? "which one? give its ID" : "give one ID");
    return arb_cli_parse_flow_id (cli, argv[optind], id) ? ARB_EXIT_USAGE : 0;
}

int
arb_cli_flow_arg (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv, uint64_t *id)
{
    bool any = false;
    for (int i = optind; i < argc; i++)
        any = any || arb_cli_is_flow_id (argv[i]);
    if (!any)
        return -1;
    if (argc - optind != 1)
        return arb_cli_usage (cli, cmd, "give task IDs, or one flow:ID");
    return arb_cli_parse_flow_id (cli, argv[optind], id) ? ARB_EXIT_USAGE : 0;
}

//  The flow id of kind, loaded; NULL with *status set.
static arb_cli_flow_t *
s_load (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id, int *status)
{
    if (!arb_cli_client (cli)) {
        *status = ARB_EXIT_USAGE;
        return NULL;
    }
    arb_cli_flow_t *self = arb_cli_flow_new (kind, id);
    if ((*status = arb_cli_flow_load (cli, self)))
        arb_cli_flow_destroy (&self);
    return self;
}

int
arb_cli_flow_status (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id)
{
    int status;
    arb_cli_flow_t *self = s_load (cli, kind, id, &status);
    if (!self)
        return status;
    if (cli->json)
        s_status_json (self);
    else
        s_status_text (self);
    arb_cli_flow_destroy (&self);
    return ARB_EXIT_OK;
}

int
arb_cli_flow_wait_id (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id, int64_t timeout_ms)
{
    int status;
    arb_cli_flow_t *self = s_load (cli, kind, id, &status);
    if (!self)
        return status;
    status = arb_cli_flow_wait (cli, self, false, timeout_ms);
    arb_cli_flow_destroy (&self);
    return status;
}

//  A verb without options of its own: fn on its one flow id.
static int
s_run_on_id (arb_cli_t *cli,
             const arb_cli_cmd_t *cmd,
             arb_flow_kind_t kind,
             int argc,
             char **argv,
             int (*fn) (arb_cli_t *, arb_flow_kind_t, uint64_t))
{
    int c = arb_cli_getopt (cli, cmd, argc, argv);
    if (c != ARB_CLI_END)
        return arb_cli_getopt_exit (c);
    uint64_t id;
    int status = s_flow_id (cli, cmd, argc, argv, &id);
    return status ? status : fn (cli, kind, id);
}

int
arb_cli_flow_status_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv)
{
    return s_run_on_id (cli, cmd, kind, argc, argv, arb_cli_flow_status);
}

int
arb_cli_flow_wait_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv)
{
    int64_t timeout_ms = -1;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        uint64_t ms;
        if (c != 't')
            return arb_cli_getopt_exit (c);
        if (arb_cli_opt_seconds (cli, "timeout", optarg, ARB_DELAY_MAX_MS, &ms))
            return ARB_EXIT_USAGE;
        timeout_ms = (int64_t) ms;
    }
    uint64_t id;
    int status = s_flow_id (cli, cmd, argc, argv, &id);
    return status ? status : arb_cli_flow_wait_id (cli, kind, id, timeout_ms);
}

//  ---------------------------------------------------------------------
//  Cancel.

//  Prints what the cancel changed: the tasks unfinished before and
//  cancelled now, and those still unfinished (a group's finalizer runs).
//  Returns how many it cancelled.
static size_t
s_print_cancelled (arb_cli_t *cli, arb_cli_flow_t *before, arb_cli_flow_t *after)
{
    json_t *cancelled = json_array (), *left = json_array ();
    size_t count = 0;
    for (size_t i = 0, k = 0; i < before->n; i++) {
        while (k < after->n && after->v[k].id < before->v[i].id)
            k++;
        arb_cli_node_t *now =
            k < after->n && after->v[k].id == before->v[i].id ? &after->v[k] : NULL;
        if (arb_state_is_final (before->v[i].state) || !now)
            continue;
        bool stopped = now->state == ARB_STATE_CANCELLED;
        count += stopped;
        json_array_append_new (stopped ? cancelled : left, json_string (now->ref));
        if (!cli->json)
            printf ("%s %s\n", now->ref, stopped ? "cancelled" : arb_state_name (now->state));
    }
    if (cli->json) {
        json_t *obj = json_object ();
        json_object_set_new (obj, "flow", json_integer ((json_int_t) before->id));
        json_object_set_new (obj, "count", json_integer ((json_int_t) count));
        json_object_set_new (obj, "cancelled", cancelled);
        json_object_set_new (obj, "left", left);
        arb_cli_json_print (obj);
        return count;
    }
    json_decref (cancelled);
    json_decref (left);
    printf (ARB_CLI_FLOW_PREFIX "%" PRIu64 ": %zu task%s cancelled\n", before->id, count,
            count == 1 ? "" : "s");
    fflush (stdout);
    return count;
}

//  How many tasks of the flow are not final.
static size_t
s_unfinished (arb_cli_flow_t *self)
{
    size_t count = 0;
    for (size_t i = 0; i < self->n; i++)
        count += !arb_state_is_final (self->v[i].state);
    return count;
}

int
arb_cli_flow_cancel (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id)
{
    int status;
    arb_cli_flow_t *before = s_load (cli, kind, id, &status);
    if (!before)
        return status;
    if (s_unfinished (before) == 0) {
        status = arb_cli_say (
            cli, ARB_EXIT_FAILED,
            ARB_CLI_FLOW_PREFIX "%" PRIu64 ": nothing to cancel, every task has finished", id);
        arb_cli_flow_destroy (&before);
        return status;
    }
    arb_cancel_body_t what = {.flow = id};
    arb_cli_flow_t *after = arb_cli_flow_new (before->kind, id);
    if (arb_client_cancel (cli->client, &what, NULL, NULL))
        status = arb_cli_client_fail (cli, "cancel");
    //  a group whose one unfinished task is its finalizer, which a cancel
    //  leaves to run: nothing cancelled, exit 1 as above, and as `arbiter
    //  cancel --group` (this exited 0)
    else if (!(status = arb_cli_flow_load (cli, after))
             && s_print_cancelled (cli, before, after) == 0)
        status = arb_cli_say (cli, ARB_EXIT_FAILED,
                              ARB_CLI_FLOW_PREFIX
                              "%" PRIu64 ": nothing to cancel, every task has finished but "
                              "what a cancel leaves to run (a group's finalizer)",
                              id);
    arb_cli_flow_destroy (&before);
    arb_cli_flow_destroy (&after);
    return status;
}

int
arb_cli_flow_cancel_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv)
{
    return s_run_on_id (cli, cmd, kind, argc, argv, arb_cli_flow_cancel);
}

//  ---------------------------------------------------------------------
//  Verbs.

int
arb_cli_run_verb (arb_cli_t *cli,
                  const arb_cli_cmd_t *cmd,
                  const arb_cli_cmd_t *const *verbs,
                  size_t count,
                  int argc,
                  char **argv)
{
    //  common options between the command and its verb: `dag --json status 7`
    optind = 0;
    int rc = arb_cli_common_options (cli, cmd, argc, argv);
    if (rc != ARB_CLI_END)
        return arb_cli_getopt_exit (rc);
    size_t prefix = strlen (cmd->name) + 1;  //  "dag "
    if (optind >= argc) {
        char names[256] = "";
        for (size_t i = 0; i < count; i++)
            snprintf (names + strlen (names), sizeof (names) - strlen (names), "%s%s",
                      i ? ", " : "", verbs[i]->name + prefix);
        return arb_cli_usage (cli, cmd, "what? give a verb: %s", names);
    }
    const char *verb = argv[optind];
    int first = optind;
    optind = 0;  //  the verb's options are read afresh
    for (size_t i = 0; i < count; i++)
        if (streq (verbs[i]->name + prefix, verb))
            return verbs[i]->run (cli, argc - first, argv + first);
    char *quoted = arb_cli_escape_str (verb);
    arb_cli_usage (cli, cmd, "'%.64s' is not a verb of %s", quoted, cmd->name);
    free (quoted);
    return ARB_EXIT_USAGE;
}
