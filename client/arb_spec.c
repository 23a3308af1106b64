/*  arb_spec.c — checks of a SUBMIT batch before it is sent (see arb_spec.h). */

#include "arb_spec.h"

//  Why the broker would refuse a name (over its limit, or not printable
//  UTF-8), into why; false if it would take it. Cheap when it would: a
//  submit checks several names a task.
static bool
s_name_refused (const char *value, char *why, size_t size)
{
    size_t len = value ? strlen (value) : 0;
    if (len > ARB_NAME_MAX)
        snprintf (why, size, "%zu bytes, over the %d-byte limit", len, ARB_NAME_MAX);
    else if (len && arb_name_check (value, len, why, size))
        strncat (why, " (names are printable UTF-8)", size - strlen (why) - 1);
    else
        return false;
    return true;
}

//  A name the broker would refuse, refused here naming it as the broker
//  would (what: "flow name").
static int
s_check_what (const char *what, const char *value, char *error, size_t size)
{
    char why[80];
    if (!s_name_refused (value, why, sizeof (why)))
        return 0;
    snprintf (error, size, "%s: %s", what, why);
    return -1;
}

//  The same for a task spec's field: "tasks[3].queue", or with index k
//  (not SIZE_MAX) in the field, "tasks[3].after[2].ref": the name is
//  made only for a refusal.
static int
s_check_name (size_t i,
              const char *field,
              size_t k,
              const char *rest,
              const char *value,
              char *error,
              size_t size)
{
    char why[80];
    if (!s_name_refused (value, why, sizeof (why)))
        return 0;
    if (k == SIZE_MAX)
        snprintf (error, size, "tasks[%zu].%s: %s", i, field, why);
    else
        snprintf (error, size, "tasks[%zu].%s[%zu]%s: %s", i, field, k, rest, why);
    return -1;
}

//  Sizes the codec would refuse, named here rather than in a 413.
static int
s_check_sizes (size_t i, const arb_task_spec_t *spec, char *error, size_t size)
{
    if (spec->args.size > ARB_ARGS_MAX)
        snprintf (error, size, "tasks[%zu].args: %zu bytes, over the %u-byte limit", i,
                  spec->args.size, ARB_ARGS_MAX);
    else if (spec->endpoints.n > ARB_ENDPOINTS_MAX)
        snprintf (error, size, "tasks[%zu].endpoints: %zu names, over the limit of %d", i,
                  spec->endpoints.n, ARB_ENDPOINTS_MAX);
    else if (spec->after.n > ARB_LIST_MAX)
        snprintf (error, size, "tasks[%zu].after: %zu dependencies, over the limit of %d", i,
                  spec->after.n, ARB_LIST_MAX);
    else
        return 0;
    return -1;
}

//  What we can refuse of one spec before sending.
static int
s_check_spec (size_t i, const arb_task_spec_t *spec, size_t max_payload, char *error, size_t size)
{
    if (!spec->name || !*spec->name) {
        snprintf (error, size, "tasks[%zu].name: a task needs a name", i);
        return -1;
    }
    size_t bytes = spec->payload ? zframe_size (spec->payload) : 0;
    if (bytes > max_payload) {
        snprintf (error, size, "tasks[%zu].payload: %zu bytes, over the %zu-byte limit", i, bytes,
                  max_payload);
        return -1;
    }
    if (s_check_sizes (i, spec, error, size))
        return -1;
    if (s_check_name (i, "name", SIZE_MAX, "", spec->name, error, size)
        || s_check_name (i, "queue", SIZE_MAX, "", spec->queue, error, size)
        || s_check_name (i, "key", SIZE_MAX, "", spec->key, error, size)
        || s_check_name (i, "ref", SIZE_MAX, "", spec->ref, error, size))
        return -1;
    for (size_t k = 0; k < spec->after.n; k++)
        if (s_check_name (i, "after", k, ".ref", spec->after.v[k].ref, error, size))
            return -1;
    for (size_t e = 0; e < spec->endpoints.n; e++)
        if (s_check_name (i, "endpoints", e, "", spec->endpoints.v[e], error, size))
            return -1;
    return 0;
}

static int
s_check_flow (arb_flow_kind_t kind, const char *name, char *error, size_t size)
{
    if (kind > ARB_FLOW_PIPE) {
        snprintf (error, size, "flow kind %d is not a DAG, a group or a pipe", (int) kind);
        return -1;
    }
    if (name && kind == ARB_FLOW_NONE) {
        snprintf (error, size, "flow name '%.64s': a batch that is no flow has no name", name);
        return -1;
    }
    return s_check_what ("flow name", name, error, size);
}

int
arb_spec_check (const arb_task_spec_t *specs,
                size_t n,
                arb_flow_kind_t kind,
                const char *flow_name,
                size_t max_payload,
                char *error,
                size_t size)
{
    assert ((specs || n == 0) && error && size > 0);
    if (s_check_flow (kind, flow_name, error, size))
        return -1;
    if (n == 0 || n > ARB_LIST_MAX) {
        snprintf (error, size, "a submit carries 1 to %d tasks, not %zu", ARB_LIST_MAX, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (s_check_spec (i, &specs[i], max_payload, error, size))
            return -1;
    return 0;
}
