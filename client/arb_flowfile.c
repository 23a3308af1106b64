/*  arb_flowfile.c — workflow files into task specs; see arb_flowfile.h.

    Reading is one pass over each task object (arb_flowfile_task.c), then
    one pass over the whole flow here that checks names and dependencies (a
    hash of the names: linear in the size of the file, so a 10,000-node DAG
    reads in milliseconds). The kind's own edges are added here too: the
    group's callback and finalizer, the pipe's chain.

    Memory. The specs' strings borrow from the parsed JSON document, which
    the flow keeps; the arrays and texts made here (dependency lists,
    endpoint lists, JSON text of non-string args) are blocks the flow owns
    and frees together. Payloads are frames, which a submit takes.
*/

#include "arb_cli_args.h"
#include "arb_flowfile_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>

//  ---------------------------------------------------------------------
//  Memory and messages.

//  Zeroed memory the flow owns.
void *
arb_flowfile_alloc (arb_flowfile_t *self, size_t size)
{
    void *block = zmalloc (size ? size : 1);
    zlistx_add_end (self->blocks, block);
    return block;
}

//  A copy of text the flow owns.
const char *
arb_flowfile_strdup (arb_flowfile_t *self, const char *text)
{
    char *copy = (char *) arb_flowfile_alloc (self, strlen (text) + 1);
    memcpy (copy, text, strlen (text) + 1);
    return copy;
}

static void
s_block_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  A name as messages quote it: at most ARB_FLOWFILE_QUOTE_MAX bytes, '.' for what
//  would not print.
void
arb_flowfile_quote (const char *text, char *buf, size_t size)
{
    size_t n = 0, len = strlen (text);
    for (; n < len && n < ARB_FLOWFILE_QUOTE_MAX && n + 4 < size; n++)
        buf[n] = isprint ((unsigned char) text[n]) || (text[n] & 0x80) ? text[n] : '.';
    buf[n] = 0;
    if (n < len && n + 4 <= size)
        memcpy (buf + n, "...", 4);
}

//  "<file>: <where>.<field>: <reason>", any of where and field left out
//  when empty. Returns -1.
int
arb_flowfile_fail (arb_flowfile_ctx_t *ctx, const char *field, const char *fmt, ...)
{
    char reason[512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (reason, sizeof (reason), fmt, args);
    va_end (args);
    const char *where = ctx->where;
    snprintf (ctx->err->text, sizeof (ctx->err->text), "%s: %s%s%s%s%s", ctx->label, where,
              *where && field ? "." : "", field ? field : "", *where || field ? ": " : "", reason);
    return -1;
}

//  Names the task being read in ctx->where.
void
arb_flowfile_where (arb_flowfile_ctx_t *ctx, const char *list, size_t index, const char *name)
{
    char quoted[ARB_FLOWFILE_QUOTE_MAX + 8];
    if (!list)
        snprintf (ctx->where, sizeof (ctx->where), "%s", name ? name : "");
    else if (name) {
        arb_flowfile_quote (name, quoted, sizeof (quoted));
        snprintf (ctx->where, sizeof (ctx->where), "%s[%zu] ('%s')", list, index, quoted);
    }
    else
        snprintf (ctx->where, sizeof (ctx->where), "%s[%zu]", list, index);
}

//  ---------------------------------------------------------------------
//  The whole flow: names and dependencies.

//  Index of every task by its name; a name given twice is refused.
static int
s_index_names (arb_flowfile_ctx_t *ctx, const char *list, zhashx_t *index)
{
    arb_flowfile_t *self = ctx->self;
    for (size_t i = 0; i < self->count; i++) {
        const char *ref = self->specs[i].ref;
        uintptr_t first = (uintptr_t) zhashx_lookup (index, ref);
        if (first) {
            char quoted[ARB_FLOWFILE_QUOTE_MAX + 8];
            arb_flowfile_quote (ref, quoted, sizeof (quoted));
            arb_flowfile_where (ctx, list, i, ref);
            return arb_flowfile_fail (ctx, "name", "'%s' is also the name of %s[%zu]", quoted, list,
                                      (size_t) first - 1);
        }
        zhashx_insert (index, ref, (void *) (uintptr_t) (i + 1));
    }
    return 0;
}

//  A dependency on an existing task's id, named once.
static int
s_check_id_dep (arb_flowfile_ctx_t *ctx, arb_task_spec_t *spec, size_t k)
{
    for (size_t d = 0; d < k; d++)
        if (spec->after.v[d].id == spec->after.v[k].id) {
            char field[32];
            snprintf (field, sizeof (field), "after[%zu]", k);
            return arb_flowfile_fail (ctx, field, "task %" PRIu64 " is named twice",
                                      spec->after.v[k].id);
        }
    return 0;
}

//  Each dependency of task i names a task of the flow (or an existing
//  task's id), not itself, and each parent once: the broker would wait for
//  a parent named twice twice over. mark[p] == i + 1: i named p already.
static int
s_check_deps (arb_flowfile_ctx_t *ctx, const char *list, size_t i, zhashx_t *index, size_t *mark)
{
    arb_task_spec_t *spec = &ctx->self->specs[i];
    arb_flowfile_where (ctx, list, i, spec->ref);
    for (size_t k = 0; k < spec->after.n; k++) {
        const char *ref = spec->after.v[k].ref;
        if (!ref) {
            if (s_check_id_dep (ctx, spec, k))
                return -1;
            continue;
        }
        char field[32], quoted[ARB_FLOWFILE_QUOTE_MAX + 8];
        snprintf (field, sizeof (field), "after[%zu]", k);
        arb_flowfile_quote (ref, quoted, sizeof (quoted));
        uintptr_t at = (uintptr_t) zhashx_lookup (index, ref);
        if (!at)
            return arb_flowfile_fail (
                ctx, field, "no task named '%s' in this file (an existing task is {\"id\": N})",
                quoted);
        if (at - 1 == i)
            return arb_flowfile_fail (ctx, field, "'%s' cannot wait for itself", quoted);
        if (mark[at - 1] == i + 1)
            return arb_flowfile_fail (ctx, field, "'%s' is named twice", quoted);
        mark[at - 1] = i + 1;
    }
    return 0;
}

//  Names unique, dependencies resolvable. Cycles are the broker's to
//  find: it refuses them naming the tasks on the cycle, in order.
static int
s_check_flow (arb_flowfile_ctx_t *ctx, const char *list)
{
    arb_flowfile_t *self = ctx->self;
    zhashx_t *index = zhashx_new ();
    size_t *mark = (size_t *) calloc (self->count ? self->count : 1, sizeof (size_t));
    assert (mark);
    int rc = s_index_names (ctx, list, index);
    for (size_t i = 0; rc == 0 && i < self->count; i++)
        rc = s_check_deps (ctx, list, i, index, mark);
    free (mark);
    zhashx_destroy (&index);
    return rc;
}

//  ---------------------------------------------------------------------
//  The kinds of flow.

//  The object's keys are among the known ones (a space-separated list).
static int
s_check_keys (arb_flowfile_ctx_t *ctx, json_t *obj, const char *known, const char *what)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value)
    {
        char word[64];
        snprintf (word, sizeof (word), " %s ", key);
        char padded[128];
        snprintf (padded, sizeof (padded), " %s ", known);
        if (!strstr (padded, word))
            return arb_flowfile_fail (ctx, NULL, "unknown field '%s' (%s has: %s)", key, what,
                                      known);
    }
    return 0;
}

//  The list of tasks at key: 1 to ARB_LIST_MAX - extra objects. Allocates
//  the specs for them and extra more.
static int
s_task_list (arb_flowfile_ctx_t *ctx, json_t *root, const char *key, size_t extra, json_t **list)
{
    *list = json_object_get (root, key);
    size_t n = json_array_size (*list);
    if (!*list)
        return arb_flowfile_fail (ctx, key, "is required: the list of tasks");
    if (!json_is_array (*list) || n == 0)
        return arb_flowfile_fail (ctx, key, "must be a list of one or more task objects");
    if (n + extra > ARB_LIST_MAX)
        return arb_flowfile_fail (ctx, key, "%zu tasks, over the limit of %d", n + extra,
                                  ARB_LIST_MAX);
    ctx->self->specs = (arb_task_spec_t *) calloc (n + extra, sizeof (arb_task_spec_t));
    assert (ctx->self->specs);
    ctx->self->count = n;
    return 0;
}

static int
s_read_dag (arb_flowfile_ctx_t *ctx, json_t *root)
{
    json_t *tasks;
    if (s_check_keys (ctx, root, "name tasks", "a DAG file")
        || s_task_list (ctx, root, "tasks", 0, &tasks)
        || arb_flowfile_read_tasks (ctx, tasks, "tasks", ARB_FLOWFILE_ROLE_NODE, ctx->self->specs))
        return -1;
    return s_check_flow (ctx, "tasks");
}

//  Reads a group's callback or finalizer into the next spec, if the file
//  has one. Returns 0 (stores whether it had one) or -1.
static int
s_read_hook (arb_flowfile_ctx_t *ctx, json_t *root, const char *name, bool *had)
{
    json_t *obj = json_object_get (root, name);
    *had = obj != NULL;
    if (!obj)
        return 0;
    ctx->role = ARB_FLOWFILE_ROLE_HOOK;
    arb_flowfile_t *self = ctx->self;
    //  counted before it is read: a payload read before a refusal is then
    //  the flow's to free
    self->count++;
    return arb_flowfile_read_task (ctx, obj, NULL, 0, name, &self->specs[self->count - 1]);
}

//  n dependencies of the given kind on specs[0..n-1].
static void
s_wait_for_all (arb_flowfile_t *self, arb_task_spec_t *spec, size_t n, uint32_t when)
{
    spec->after.v = (arb_dep_t *) arb_flowfile_alloc (self, n * sizeof (arb_dep_t));
    spec->after.n = n;
    for (size_t i = 0; i < n; i++)
        spec->after.v[i] = (arb_dep_t){.ref = self->specs[i].ref, .when = when};
}

//  Members may not take the names of the callback and the finalizer.
static int
s_check_members (arb_flowfile_ctx_t *ctx, size_t members)
{
    for (size_t i = 0; i < members; i++) {
        const char *ref = ctx->self->specs[i].ref;
        if (!streq (ref, ARB_FLOWFILE_CALLBACK) && !streq (ref, ARB_FLOWFILE_FINALIZER))
            continue;
        arb_flowfile_where (ctx, "tasks", i, ref);
        return arb_flowfile_fail (ctx, "name", "'%s' is the name of the group's %s; choose another",
                                  ref, ref);
    }
    return 0;
}

//  The callback waits on_success for every member (it runs only if all
//  succeed, and gets their results); the finalizer always for every
//  member and the callback (it runs however they end).
static int
s_read_group (arb_flowfile_ctx_t *ctx, json_t *root)
{
    json_t *tasks;
    bool callback, finalizer;
    if (s_check_keys (ctx, root, "name tasks callback finalizer", "a group file")
        || s_task_list (ctx, root, "tasks", 2, &tasks)
        || arb_flowfile_read_tasks (ctx, tasks, "tasks", ARB_FLOWFILE_ROLE_MEMBER,
                                    ctx->self->specs))
        return -1;
    size_t members = ctx->self->count;
    if (s_check_members (ctx, members) || s_read_hook (ctx, root, ARB_FLOWFILE_CALLBACK, &callback)
        || s_read_hook (ctx, root, ARB_FLOWFILE_FINALIZER, &finalizer))
        return -1;
    arb_flowfile_t *self = ctx->self;
    if (callback)
        s_wait_for_all (self, &self->specs[members], members, 0);
    if (finalizer)
        s_wait_for_all (self, &self->specs[self->count - 1], members + callback, 2);
    return s_check_flow (ctx, "tasks");
}

//  Step k + 1 waits on_success for step k and takes its result as input.
static void
s_chain (arb_flowfile_t *self)
{
    for (size_t k = 1; k < self->count; k++) {
        arb_task_spec_t *step = &self->specs[k];
        step->after.v = (arb_dep_t *) arb_flowfile_alloc (self, sizeof (arb_dep_t));
        step->after.v[0] = (arb_dep_t){.ref = self->specs[k - 1].ref, .when = 0};
        step->after.n = 1;
        step->input = ARB_INPUT_PARENT;
    }
}

//  The pipe's input and args, given to its steps.
static int
s_read_pipe_values (arb_flowfile_ctx_t *ctx, json_t *root)
{
    arb_flowfile_t *self = ctx->self;
    ctx->where[0] = 0;
    json_t *input = json_object_get (root, "input");
    if (input && arb_flowfile_payload (ctx, "input", input, &self->specs[0]))
        return -1;
    json_t *args = json_object_get (root, "args");
    arb_task_spec_t shared = {.name = NULL};
    if (args && arb_flowfile_args (ctx, "args", args, &shared))
        return -1;
    for (size_t k = 0; k < self->count; k++)
        if (!self->specs[k].args.data)
            self->specs[k].args = shared.args;
    return 0;
}

static int
s_read_pipe (arb_flowfile_ctx_t *ctx, json_t *root)
{
    json_t *steps;
    if (s_check_keys (ctx, root, "name input args steps", "a pipe file")
        || s_task_list (ctx, root, "steps", 0, &steps)
        || arb_flowfile_read_tasks (ctx, steps, "steps", ARB_FLOWFILE_ROLE_STEP, ctx->self->specs)
        || s_read_pipe_values (ctx, root))
        return -1;
    s_chain (ctx->self);
    return s_check_flow (ctx, "steps");
}

//  ---------------------------------------------------------------------
//  The flow.

static arb_flowfile_t *
s_new (arb_flow_kind_t kind)
{
    arb_flowfile_t *self = (arb_flowfile_t *) zmalloc (sizeof (arb_flowfile_t));
    self->kind = kind;
    self->blocks = zlistx_new ();
    zlistx_set_destructor (self->blocks, s_block_free);
    return self;
}

void
arb_flowfile_destroy (arb_flowfile_t **self_p)
{
    assert (self_p);
    arb_flowfile_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        zframe_destroy (&self->specs[i].payload);
    free (self->specs);
    zlistx_destroy (&self->blocks);
    json_decref (self->json);
    free (self);
    *self_p = NULL;
}

//  Reads the document's top level as a flow of the self's kind.
static int
s_read_root (arb_flowfile_ctx_t *ctx, json_t *root)
{
    if (!json_is_object (root))
        return arb_flowfile_fail (ctx, NULL, "must be a JSON object");
    json_t *name = json_object_get (root, "name");
    if (name && arb_flowfile_name_value (ctx, "name", name, &ctx->self->name))
        return -1;
    arb_flow_kind_t kind = ctx->self->kind;
    return kind == ARB_FLOW_DAG     ? s_read_dag (ctx, root)
           : kind == ARB_FLOW_GROUP ? s_read_group (ctx, root)
                                    : s_read_pipe (ctx, root);
}

arb_flowfile_t *
arb_flowfile_parse (
    const char *label, const char *text, size_t size, arb_flow_kind_t kind, arb_flowfile_err_t *err)
{
    assert (label && (text || size == 0) && err);
    assert (kind == ARB_FLOW_DAG || kind == ARB_FLOW_GROUP || kind == ARB_FLOW_PIPE);
    json_error_t error;
    json_t *json = json_loadb (text, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
    if (!json) {
        snprintf (err->text, sizeof (err->text), "%s:%d:%d: %s", label, error.line, error.column,
                  error.text);
        return NULL;
    }
    arb_flowfile_t *self = s_new (kind);
    self->json = json;
    arb_flowfile_ctx_t ctx = {
        .self = self, .label = label, .err = err, .now_ms = (uint64_t) zclock_time ()};
    if (s_read_root (&ctx, json))
        arb_flowfile_destroy (&self);
    return self;
}

//  Reads all of a stream. Returns malloc'd bytes (NUL-terminated) or NULL.
static char *
s_slurp (FILE *file, size_t *size)
{
    size_t capacity = 65536, used = 0, got;
    char *data = (char *) malloc (capacity);
    assert (data);
    while ((got = fread (data + used, 1, capacity - used - 1, file)) > 0) {
        used += got;
        if (used + 1 == capacity) {
            capacity *= 2;
            data = (char *) realloc (data, capacity);
            assert (data);
        }
    }
    if (ferror (file)) {
        free (data);
        return NULL;
    }
    data[used] = 0;
    *size = used;
    return data;
}

arb_flowfile_t *
arb_flowfile_read (const char *path, arb_flow_kind_t kind, arb_flowfile_err_t *err)
{
    assert (path && err);
    bool from_stdin = streq (path, "-");
    const char *label = from_stdin ? "<stdin>" : path;
    FILE *file = from_stdin ? stdin : fopen (path, "rb");
    size_t size = 0;
    char *text = file ? s_slurp (file, &size) : NULL;
    if (!text) {
        snprintf (err->text, sizeof (err->text), "%s: cannot read: %s", label, strerror (errno));
        if (file && !from_stdin)
            fclose (file);
        return NULL;
    }
    if (!from_stdin)
        fclose (file);
    arb_flowfile_t *self = arb_flowfile_parse (label, text, size, kind, err);
    free (text);
    return self;
}

//  One step of a pipe from the command line.
static int
s_pipe_step (
    arb_flowfile_ctx_t *ctx, size_t k, const char *handler, const char *queue, arb_bin_t args)
{
    arb_flowfile_t *self = ctx->self;
    arb_task_spec_t *spec = &self->specs[k];
    char ref[32];
    snprintf (ref, sizeof (ref), ARB_FLOWFILE_STEP "%zu", k + 1);
    spec->ref = arb_flowfile_strdup (self, ref);
    arb_flowfile_where (ctx, "steps", k, spec->ref);
    arb_cli_err_t err;
    if (arb_cli_parse_name (handler, &err))
        return arb_flowfile_fail (ctx, "task", "%s", err.text);
    spec->name = arb_flowfile_strdup (self, handler);
    spec->queue = queue;
    spec->args = args;
    spec->payload = zframe_new_empty ();
    return 0;
}

//  What a pipe from the command line is refused for before its steps.
static int
s_check_pipe (arb_flowfile_ctx_t *ctx, size_t n, const char *queue, size_t args_size)
{
    arb_cli_err_t err;
    if (n == 0 || n > ARB_LIST_MAX)
        return arb_flowfile_fail (ctx, "steps", "a pipe has 1 to %d steps, not %zu", ARB_LIST_MAX,
                                  n);
    if (args_size > ARB_ARGS_MAX)
        return arb_flowfile_fail (ctx, "args", "%zu bytes, over the %u-byte limit", args_size,
                                  ARB_ARGS_MAX);
    if (queue && arb_cli_parse_name (queue, &err))
        return arb_flowfile_fail (ctx, "queue", "%s", err.text);
    if (queue && strchr (queue, '@'))
        return arb_flowfile_fail (ctx, "queue", "'@' is reserved for endpoint queues");
    return 0;
}

//  The steps of a pipe from the command line, all with the same queue and
//  args (copied into the flow).
static int
s_pipe_steps (arb_flowfile_ctx_t *ctx,
              const char *const *handlers,
              size_t n,
              const char *queue,
              const uint8_t *args,
              size_t args_size)
{
    arb_flowfile_t *self = ctx->self;
    self->specs = (arb_task_spec_t *) calloc (n, sizeof (arb_task_spec_t));
    assert (self->specs);
    self->count = n;
    const char *queue_copy = queue ? arb_flowfile_strdup (self, queue) : NULL;
    arb_bin_t shared = {NULL, args_size};
    if (args_size) {
        uint8_t *copy = (uint8_t *) arb_flowfile_alloc (self, args_size);
        memcpy (copy, args, args_size);
        shared.data = copy;
    }
    for (size_t k = 0; k < n; k++)
        if (s_pipe_step (ctx, k, handlers[k], queue_copy, shared))
            return -1;
    return 0;
}

arb_flowfile_t *
arb_flowfile_new_pipe (const char *const *handlers,
                       size_t n,
                       const char *queue,
                       zframe_t **input_p,
                       const uint8_t *args,
                       size_t args_size,
                       arb_flowfile_err_t *err)
{
    assert ((handlers || n == 0) && (args || args_size == 0) && err);
    zframe_t *input = input_p ? *input_p : NULL;
    if (input_p)
        *input_p = NULL;
    arb_flowfile_t *self = s_new (ARB_FLOW_PIPE);
    arb_flowfile_ctx_t ctx = {.self = self, .label = "pipe", .err = err};
    if (s_check_pipe (&ctx, n, queue, args_size)
        || s_pipe_steps (&ctx, handlers, n, queue, args, args_size)) {
        zframe_destroy (&input);
        arb_flowfile_destroy (&self);
        return NULL;
    }
    if (input) {
        zframe_destroy (&self->specs[0].payload);
        self->specs[0].payload = input;
    }
    s_chain (self);
    return self;
}

arb_flow_kind_t
arb_flowfile_kind (arb_flowfile_t *self)
{
    assert (self);
    return self->kind;
}

const char *
arb_flowfile_name (arb_flowfile_t *self)
{
    assert (self);
    return self->name;
}

arb_task_spec_t *
arb_flowfile_specs (arb_flowfile_t *self)
{
    assert (self);
    return self->specs;
}

size_t
arb_flowfile_size (arb_flowfile_t *self)
{
    assert (self);
    return self->count;
}
