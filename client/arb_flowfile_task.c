/*  arb_flowfile_task.c — one task object of a workflow file into a task
    spec: a table of the fields a task may have and the roles each may
    appear in (a DAG's task, a group's member, its callback or finalizer, a
    pipe's step), one small function per field, and the rules between
    fields once all are read. Values go through the CLI's parsers, so a
    file and the command line agree on what "1.5" or "exp:1,60" mean.
*/

#include "arb_cli_args.h"
#include "arb_flowfile_priv.h"

//  ---------------------------------------------------------------------
//  Values.

//  A JSON string that is a valid name (1..ARB_NAME_MAX bytes, no NUL).
int
arb_flowfile_name_value (arb_flowfile_ctx_t *ctx,
                         const char *field,
                         json_t *value,
                         const char **out)
{
    if (!json_is_string (value))
        return arb_flowfile_fail (ctx, field, "must be a string");
    const char *text = json_string_value (value);
    if (strlen (text) != json_string_length (value))
        return arb_flowfile_fail (ctx, field, "must not contain NUL");
    arb_cli_err_t err;
    if (arb_cli_parse_name (text, &err))
        return arb_flowfile_fail (ctx, field, "%s", err.text);
    *out = text;
    return 0;
}

//  A JSON value as bytes: a string's own bytes (borrowed from the
//  document), any other value its compact JSON text (a block of the flow).
static void
s_value_bytes (arb_flowfile_ctx_t *ctx, json_t *value, const uint8_t **data, size_t *size)
{
    if (json_is_string (value)) {
        *data = (const uint8_t *) json_string_value (value);
        *size = json_string_length (value);
        return;
    }
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION (15));
    assert (text);
    zlistx_add_end (ctx->self->blocks, text);
    *data = (const uint8_t *) text;
    *size = strlen (text);
}

//  A JSON number as the text the CLI's parsers read: integers as they
//  are, reals in fixed notation with the digits that round to a ms.
//  Returns false if the value is no number.
static bool
s_number_text (json_t *value, char *buf, size_t size)
{
    if (json_is_integer (value))
        snprintf (buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
    else if (json_is_real (value)) {
        snprintf (buf, size, "%.6f", json_real_value (value));
        //  "1.500000" reads as "1.5" in messages
        char *end = buf + strlen (buf) - 1;
        while (*end == '0')
            *end-- = 0;
        if (*end == '.')
            *end = 0;
    }
    else
        return false;
    return true;
}

//  Seconds (decimals allowed) into ms, at most max_ms.
static int
s_seconds_value (
    arb_flowfile_ctx_t *ctx, const char *field, json_t *value, uint64_t max_ms, uint64_t *ms)
{
    char text[400];
    if (!s_number_text (value, text, sizeof (text)))
        return arb_flowfile_fail (ctx, field, "must be a number of seconds, like 30 or 0.25");
    arb_cli_err_t err;
    if (arb_cli_parse_seconds (text, max_ms, ms, &err))
        return arb_flowfile_fail (ctx, field, "%s", err.text);
    return 0;
}

//  A whole number in [0, max].
static int
s_uint_value (
    arb_flowfile_ctx_t *ctx, const char *field, json_t *value, uint64_t max, uint64_t *out)
{
    char text[400];
    if (!json_is_integer (value)) {
        if (s_number_text (value, text, sizeof (text)))
            return arb_flowfile_fail (
                ctx, field, "must be a whole number (no fraction or exponent), not %s", text);
        return arb_flowfile_fail (ctx, field, "must be a whole number");
    }
    s_number_text (value, text, sizeof (text));
    arb_cli_err_t err;
    if (arb_cli_parse_uint (text, max, out, &err))
        return arb_flowfile_fail (ctx, field, "%s", err.text);
    return 0;
}

static int
s_bool_value (arb_flowfile_ctx_t *ctx, const char *field, json_t *value, bool *out)
{
    if (!json_is_boolean (value))
        return arb_flowfile_fail (ctx, field, "must be true or false");
    *out = json_is_true (value);
    return 0;
}

//  ---------------------------------------------------------------------
//  The fields of a task.

typedef int (s_field_fn) (arb_flowfile_ctx_t *ctx,
                          const char *key,
                          json_t *value,
                          arb_task_spec_t *spec);

static int
s_f_task (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return arb_flowfile_name_value (ctx, key, value, &spec->name);
}

static int
s_f_queue (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    if (arb_flowfile_name_value (ctx, key, value, &spec->queue))
        return -1;
    if (strchr (spec->queue, '@'))
        return arb_flowfile_fail (ctx, key, "'@' is reserved for endpoint queues");
    return 0;
}

static int
s_f_key (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return arb_flowfile_name_value (ctx, key, value, &spec->key);
}

int
arb_flowfile_payload (arb_flowfile_ctx_t *ctx,
                      const char *key,
                      json_t *value,
                      arb_task_spec_t *spec)
{
    const uint8_t *data;
    size_t size;
    s_value_bytes (ctx, value, &data, &size);
    if (size > ARB_PAYLOAD_DEFAULT_MAX)
        return arb_flowfile_fail (ctx, key, "%zu bytes, over the %u-byte limit", size,
                                  ARB_PAYLOAD_DEFAULT_MAX);
    ctx->seen.payload = true;
    zframe_destroy (&spec->payload);
    spec->payload = zframe_new (data, size);
    return 0;
}

int
arb_flowfile_args (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    const uint8_t *data;
    size_t size;
    s_value_bytes (ctx, value, &data, &size);
    if (size > ARB_ARGS_MAX)
        return arb_flowfile_fail (ctx, key, "%zu bytes, over the %u-byte limit", size,
                                  ARB_ARGS_MAX);
    spec->args = (arb_bin_t){data, size};
    return 0;
}

static int
s_f_priority (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    char text[400];
    if (!json_is_integer (value))
        return arb_flowfile_fail (ctx, key, "must be a whole number");
    s_number_text (value, text, sizeof (text));
    arb_cli_err_t err;
    int64_t priority;
    if (arb_cli_parse_int (text, INT32_MIN, INT32_MAX, &priority, &err))
        return arb_flowfile_fail (ctx, key, "%s", err.text);
    spec->priority = (int32_t) priority;
    return 0;
}

static int
s_f_retries (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    uint64_t retries;
    if (s_uint_value (ctx, key, value, ARB_RETRIES_MAX, &retries))
        return -1;
    spec->retries = (uint32_t) retries;
    return 0;
}

static int
s_f_backoff (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    if (!json_is_string (value))
        return arb_flowfile_fail (
            ctx, key, "must be a string: \"none\", \"fixed:SECONDS\" or \"exp:BASE,CAP\"");
    arb_cli_err_t err;
    if (arb_cli_parse_backoff (json_string_value (value), &spec->backoff, &spec->backoff_ms,
                               &spec->backoff_cap_ms, &err))
        return arb_flowfile_fail (ctx, key, "%s", err.text);
    return 0;
}

static int
s_f_no_jitter (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return s_bool_value (ctx, key, value, &spec->no_jitter);
}

static int
s_f_timeout (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return s_seconds_value (ctx, key, value, ARB_TIMEOUT_MAX_MS, &spec->timeout_ms);
}

static int
s_f_soft_timeout (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    if (s_seconds_value (ctx, key, value, ARB_TIMEOUT_MAX_MS, &spec->soft_timeout_ms))
        return -1;
    if (spec->soft_timeout_ms == 0)
        return arb_flowfile_fail (ctx, key, "must be more than 0 s");
    return 0;
}

static int
s_f_delay (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    ctx->seen.delay = true;
    return s_seconds_value (ctx, key, value, ARB_DELAY_MAX_MS, &spec->delay_ms);
}

static int
s_f_at (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    char text[400];
    const char *time = json_is_string (value) ? json_string_value (value) : NULL;
    if (!time && s_number_text (value, text, sizeof (text)))
        time = text;  //  Unix seconds
    if (!time)
        return arb_flowfile_fail (ctx, key, "must be an RFC 3339 time (a string) or Unix seconds");
    ctx->seen.at = true;
    arb_cli_err_t err;
    if (arb_cli_parse_time (time, ctx->now_ms, &spec->at_ms, &err))
        return arb_flowfile_fail (ctx, key, "%s", err.text);
    return 0;
}

static int
s_f_retention (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return s_seconds_value (ctx, key, value, ARB_RETENTION_MAX_MS, &spec->retention_ms);
}

static int
s_f_input (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    const char *text = json_is_string (value) ? json_string_value (value) : "";
    if (streq (text, "payload"))
        spec->input = ARB_INPUT_PAYLOAD;
    else if (streq (text, "parent"))
        spec->input = ARB_INPUT_PARENT;
    else
        return arb_flowfile_fail (ctx, key, "must be \"payload\" or \"parent\"");
    return 0;
}

//  One endpoint name: a worker's name, each once.
static int
s_endpoint (arb_flowfile_ctx_t *ctx, json_t *list, size_t e, const char **out)
{
    char field[32], quoted[ARB_FLOWFILE_QUOTE_MAX + 8];
    snprintf (field, sizeof (field), "endpoints[%zu]", e);
    if (arb_flowfile_name_value (ctx, field, json_array_get (list, e), out))
        return -1;
    arb_flowfile_quote (*out, quoted, sizeof (quoted));
    if (strchr (*out, '@'))
        return arb_flowfile_fail (ctx, field, "'%s' is not a worker name ('@' is reserved)",
                                  quoted);
    for (size_t k = 0; k < e; k++)
        if (streq (json_string_value (json_array_get (list, k)), *out))
            return arb_flowfile_fail (ctx, field, "'%s' is named twice", quoted);
    return 0;
}

static int
s_f_endpoints (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    size_t n = json_array_size (value);
    if (!json_is_array (value) || n == 0)
        return arb_flowfile_fail (ctx, key, "must be a list of worker names");
    if (n > ARB_CLIENT_ENDPOINTS_MAX)
        return arb_flowfile_fail (ctx, key, "%zu names, over the limit of %d", n,
                                  ARB_CLIENT_ENDPOINTS_MAX);
    spec->endpoints.v = (const char **) arb_flowfile_alloc (ctx->self, n * sizeof (const char *));
    for (size_t e = 0; e < n; e++)
        if (s_endpoint (ctx, value, e, &spec->endpoints.v[e]))
            return -1;
    spec->endpoints.n = n;
    return 0;
}

static int
s_f_broadcast (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    return s_bool_value (ctx, key, value, &spec->broadcast);
}

static int
s_f_allow_unknown (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    ctx->seen.fan_out_options = true;
    return s_bool_value (ctx, key, value, &spec->allow_unknown);
}

static int
s_f_endpoint_timeout (arb_flowfile_ctx_t *ctx,
                      const char *key,
                      json_t *value,
                      arb_task_spec_t *spec)
{
    ctx->seen.fan_out_options = true;
    if (s_seconds_value (ctx, key, value, ARB_TIMEOUT_MAX_MS, &spec->endpoint_timeout_ms))
        return -1;
    if (spec->endpoint_timeout_ms == 0)
        return arb_flowfile_fail (ctx, key, "must be more than 0 s");
    return 0;
}

//  The edge kinds, by the number the protocol gives them.
static const char *s_whens[] = {"on_success", "on_failure", "always"};

static int
s_when (arb_flowfile_ctx_t *ctx, const char *field, json_t *value, uint32_t *when)
{
    const char *text = json_is_string (value) ? json_string_value (value) : "";
    for (uint32_t w = 0; w < 3; w++)
        if (streq (text, s_whens[w])) {
            *when = w;
            return 0;
        }
    return arb_flowfile_fail (ctx, field, "'when' must be on_success, on_failure or always");
}

//  {"task": NAME | "id": N, "when": W}
static int
s_dep_object (arb_flowfile_ctx_t *ctx, const char *field, json_t *value, arb_dep_t *dep)
{
    const char *key;
    json_t *item;
    json_object_foreach (value, key, item)
    {
        uint64_t id;
        if (streq (key, "task") && arb_flowfile_name_value (ctx, field, item, &dep->ref))
            return -1;
        //  (JSON's integers here are 64-bit signed: a larger one is not read)
        else if (streq (key, "id") && s_uint_value (ctx, field, item, INT64_MAX, &id))
            return -1;
        else if (streq (key, "when") && s_when (ctx, field, item, &dep->when))
            return -1;
        else if (!streq (key, "task") && !streq (key, "id") && !streq (key, "when"))
            return arb_flowfile_fail (
                ctx, field, "unknown field '%s' (a dependency has task or id, and when)", key);
        if (streq (key, "id"))
            dep->id = id;
    }
    if ((dep->ref != NULL) == (json_object_get (value, "id") != NULL))
        return arb_flowfile_fail (ctx, field,
                                  "give 'task' (a task of this file) or 'id' (an existing task)");
    if (!dep->ref && dep->id == 0)
        return arb_flowfile_fail (ctx, field, "'id' must be a task id, from 1");
    return 0;
}

static int
s_f_after (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    if (!json_is_array (value))
        return arb_flowfile_fail (ctx, key,
                                  "must be a list of task names or {\"task\", \"when\"} objects");
    size_t n = json_array_size (value);
    spec->after.v = (arb_dep_t *) arb_flowfile_alloc (ctx->self, n * sizeof (arb_dep_t));
    spec->after.n = n;
    for (size_t k = 0; k < n; k++) {
        char field[32];
        snprintf (field, sizeof (field), "after[%zu]", k);
        json_t *item = json_array_get (value, k);
        if (json_is_string (item)) {
            if (arb_flowfile_name_value (ctx, field, item, &spec->after.v[k].ref))
                return -1;
        }
        else if (!json_is_object (item))
            return arb_flowfile_fail (ctx, field, "must be a task name or an object");
        else if (s_dep_object (ctx, field, item, &spec->after.v[k]))
            return -1;
    }
    return 0;
}

//  Which fields a task may have, and in which kinds of task. "name" is
//  read before the others (it names the task in messages).
static const struct {
    const char *key;
    s_field_fn *fn;
    int roles;
} s_fields[] = {
    {"name", NULL, ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_STEP},
    {"task", s_f_task,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"queue", s_f_queue,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"payload", arb_flowfile_payload,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK},
    {"args", arb_flowfile_args,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"after", s_f_after, ARB_FLOWFILE_ROLE_NODE},
    {"input", s_f_input, ARB_FLOWFILE_ROLE_NODE},
    {"key", s_f_key,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"priority", s_f_priority,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"retries", s_f_retries,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"backoff", s_f_backoff,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"no_jitter", s_f_no_jitter,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"timeout", s_f_timeout,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"soft_timeout", s_f_soft_timeout,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"delay", s_f_delay,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"at", s_f_at,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"retention", s_f_retention,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_HOOK
         | ARB_FLOWFILE_ROLE_STEP},
    {"endpoints", s_f_endpoints, ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER},
    {"broadcast", s_f_broadcast, ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER},
    {"allow_unknown_endpoints", s_f_allow_unknown,
     ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER},
    {"endpoint_timeout", s_f_endpoint_timeout, ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER},
};

#define S_FIELDS (sizeof (s_fields) / sizeof (s_fields[0]))

static const char *
s_role_name (arb_flowfile_role_t role)
{
    return role == ARB_FLOWFILE_ROLE_NODE     ? "a DAG's task"
           : role == ARB_FLOWFILE_ROLE_MEMBER ? "a group's member (members wait for nothing)"
           : role == ARB_FLOWFILE_ROLE_HOOK
               ? "a group's callback or finalizer"
               : "a pipe's step (the pipe gives its input and dependency)";
}

//  Reads one field of a task into its spec.
static int
s_field (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec)
{
    for (size_t f = 0; f < S_FIELDS; f++) {
        if (!streq (s_fields[f].key, key))
            continue;
        if (!(s_fields[f].roles & ctx->role))
            return arb_flowfile_fail (ctx, NULL, "'%s' has no place in %s", key,
                                      s_role_name (ctx->role));
        return s_fields[f].fn ? s_fields[f].fn (ctx, key, value, spec) : 0;
    }
    return arb_flowfile_fail (ctx, NULL, "unknown field '%s'", key);
}

//  ---------------------------------------------------------------------
//  A task.

//  The rules between a task's fields, once all are read.
static int
s_check_task (arb_flowfile_ctx_t *ctx, arb_task_spec_t *spec)
{
    bool fan_out = spec->endpoints.n || spec->broadcast;
    if (!spec->name)
        return arb_flowfile_fail (ctx, NULL, "give 'task' (the handler's name)");
    if (spec->endpoints.n && spec->broadcast)
        return arb_flowfile_fail (ctx, NULL, "give 'endpoints' or 'broadcast', not both");
    if (ctx->seen.fan_out_options && !fan_out)
        return arb_flowfile_fail (ctx, NULL,
                                  "allow_unknown_endpoints and endpoint_timeout go with "
                                  "'endpoints' or 'broadcast'");
    if (fan_out && spec->after.n)
        return arb_flowfile_fail (ctx, NULL,
                                  "a fan-out task (endpoints, broadcast) cannot wait for others");
    if (ctx->seen.delay && ctx->seen.at)
        return arb_flowfile_fail (ctx, NULL, "'delay' and 'at' both say when; give one");
    if (spec->no_jitter && spec->backoff != ARB_BACKOFF_EXP)
        return arb_flowfile_fail (ctx, "no_jitter", "only an exp: backoff is jittered");
    if (spec->soft_timeout_ms && spec->timeout_ms && spec->soft_timeout_ms >= spec->timeout_ms)
        return arb_flowfile_fail (ctx, "soft_timeout", "must be below 'timeout'");
    if (spec->backoff != ARB_BACKOFF_NONE && spec->retries == 0)
        return arb_flowfile_fail (ctx, "backoff",
                                  "it delays retries, and there are none: give 'retries'");
    if (spec->input == ARB_INPUT_PARENT && (spec->after.n != 1 || spec->after.v[0].when != 0))
        return arb_flowfile_fail (ctx, "input",
                                  "\"parent\" needs exactly one dependency, on_success");
    if (spec->input == ARB_INPUT_PARENT && ctx->seen.payload)
        return arb_flowfile_fail (ctx, "payload", "not used when the input is the parent's result");
    return 0;
}

//  Reads a task object into spec. name_default (NULL: none) names a task
//  without "name"; the handler's name defaults to the task's name when
//  that was given (or fixed: a group's callback is "callback").
int
arb_flowfile_read_task (arb_flowfile_ctx_t *ctx,
                        json_t *obj,
                        const char *list,
                        size_t index,
                        const char *name_default,
                        arb_task_spec_t *spec)
{
    memset (&ctx->seen, 0, sizeof (ctx->seen));
    arb_flowfile_where (ctx, list, index, list ? NULL : name_default);
    if (!json_is_object (obj))
        return arb_flowfile_fail (ctx, NULL, "must be an object");
    json_t *name = json_object_get (obj, "name");
    if (name
        && (ctx->role
            & (ARB_FLOWFILE_ROLE_NODE | ARB_FLOWFILE_ROLE_MEMBER | ARB_FLOWFILE_ROLE_STEP))) {
        if (arb_flowfile_name_value (ctx, "name", name, &spec->ref))
            return -1;
        ctx->seen.named = true;
    }
    else
        spec->ref = name_default;
    if (!spec->ref)
        return arb_flowfile_fail (ctx, NULL, "'name' is required (the task's name in the flow)");
    arb_flowfile_where (ctx, list, index, spec->ref);
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value)
    {
        if (s_field (ctx, key, value, spec))
            return -1;
    }
    if (!spec->name && (ctx->seen.named || !list))
        spec->name = spec->ref;  //  the handler is named as the task
    if (!spec->payload)
        spec->payload = zframe_new_empty ();
    return s_check_task (ctx, spec);
}

//  Reads the list of task objects at key into specs[0..]. Members and
//  steps without a name are named by their place: "member1", "step1".
int
arb_flowfile_read_tasks (arb_flowfile_ctx_t *ctx,
                         json_t *list,
                         const char *key,
                         arb_flowfile_role_t role,
                         arb_task_spec_t *specs)
{
    ctx->role = role;
    const char *prefix = role == ARB_FLOWFILE_ROLE_MEMBER ? ARB_FLOWFILE_MEMBER
                         : role == ARB_FLOWFILE_ROLE_STEP ? ARB_FLOWFILE_STEP
                                                          : NULL;
    for (size_t i = 0; i < json_array_size (list); i++) {
        char name[32];
        snprintf (name, sizeof (name), "%s%zu", prefix ? prefix : "", i + 1);
        const char *name_default = prefix ? arb_flowfile_strdup (ctx->self, name) : NULL;
        if (arb_flowfile_read_task (ctx, json_array_get (list, i), key, i, name_default, &specs[i]))
            return -1;
    }
    return 0;
}
