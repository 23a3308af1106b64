/*  arb_dag.c — see arb_dag.h.

    Cycles: Kahn's algorithm removes every task whose dependencies are all
    removed; what remains lies on a cycle or downstream of one, and every
    remaining task has a remaining dependency. Walking from any remaining
    task to a remaining dependency, again and again, must come back to a
    task already seen: the walk from that task on is a cycle.
*/

#include "arb_dag.h"

struct _arb_dag_t {
    const arb_task_spec_t *tasks;  //  borrowed batch
    size_t count;
    zhashx_t *index;       //  ref -> index + 1 (owned keys); NULL until a task has a ref
    char duplicates[512];  //  names given twice, as text; empty if none
    size_t duplicate_count;
};

//  Appends to a bounded reason buffer.
static void s_add (char *why, size_t size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_add (char *why, size_t size, const char *fmt, ...)
{
    size_t used = strlen (why);
    if (used + 1 >= size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (why + used, size - used, fmt, args);
    va_end (args);
}

arb_dag_t *
arb_dag_new (const arb_task_spec_t *tasks, size_t count)
{
    //  not zeroed: of the reason buffer only its first byte matters, and
    //  clearing all of it cost a task submitted alone more than its checks
    arb_dag_t *self = (arb_dag_t *) malloc (sizeof (arb_dag_t));
    assert (self);
    self->tasks = tasks;
    self->count = count;
    self->index = NULL;
    self->duplicates[0] = '\0';
    self->duplicate_count = 0;
    for (size_t i = 0; i < count; i++) {
        const char *ref = tasks[i].ref;
        if (!ref)
            continue;
        //  made for the first ref: most submits have none, and a hash
        //  table's slots cost a task submitted alone more than its check
        if (!self->index)
            self->index = zhashx_new ();
        if (zhashx_insert (self->index, ref, (void *) (uintptr_t) (i + 1)) == 0)
            continue;
        if (++self->duplicate_count <= 10)
            s_add (self->duplicates, sizeof (self->duplicates), " '%s'", ref);
    }
    return self;
}

void
arb_dag_destroy (arb_dag_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zhashx_destroy (&(*self_p)->index);
        free (*self_p);
        *self_p = NULL;
    }
}

long
arb_dag_index (arb_dag_t *self, const char *ref)
{
    uintptr_t at = ref && self && self->index ? (uintptr_t) zhashx_lookup (self->index, ref) : 0;
    return at ? (long) at - 1 : -1;
}

static int
s_check_names (arb_dag_t *self, char *why, size_t size)
{
    if (!self->duplicate_count)
        return 0;
    s_add (why, size, "duplicate task names:%s", self->duplicates);
    if (self->duplicate_count > 10)
        s_add (why, size, " and %zu more", self->duplicate_count - 10);
    return -1;
}

static int
s_check_targets (arb_dag_t *self, arb_dag_exists_fn *exists, void *arg, char *why, size_t size)
{
    size_t missing = 0;
    for (size_t i = 0; i < self->count; i++) {
        const arb_task_spec_t *task = &self->tasks[i];
        for (size_t k = 0; k < task->after.n; k++) {
            const arb_dep_t *dep = &task->after.v[k];
            bool ok = dep->ref ? arb_dag_index (self, dep->ref) >= 0
                               : dep->id && exists && exists (arg, dep->id);
            for (size_t j = 0; j < k; j++) {
                const arb_dep_t *other = &task->after.v[j];
                if ((dep->ref && other->ref && streq (dep->ref, other->ref))
                    || (dep->id && dep->id == other->id)) {
                    s_add (why, size, "tasks[%zu].after[%zu]: the same dependency is named twice",
                           i, k);
                    return -1;
                }
            }
            if (dep->when > 2) {
                s_add (why, size, "tasks[%zu].after[%zu].when: %u is not 0, 1 or 2", i, k,
                       dep->when);
                return -1;
            }
            if ((dep->ref != NULL) == (dep->id != 0)) {
                s_add (why, size, "tasks[%zu].after[%zu]: give a ref or an id, not both or neither",
                       i, k);
                return -1;
            }
            if (ok)
                continue;
            if (missing++ == 0)
                s_add (why, size, "dependencies on nothing:");
            if (missing > 10)
                continue;
            const char *name = task->ref ? task->ref : task->name;
            const char *sep = missing > 1 ? ";" : "";  //  between the items, not after
            if (dep->ref)
                s_add (why, size, "%s '%s' waits for '%s', which names no task in the set", sep,
                       name, dep->ref);
            else
                s_add (why, size, "%s '%s' waits for task %" PRIu64 ", which does not exist", sep,
                       name, dep->id);
        }
    }
    if (missing > 10)
        s_add (why, size, "; and %zu more", missing - 10);
    return missing ? -1 : 0;
}

//  Kahn's algorithm over the edges inside the batch; reports a cycle.
static int
s_check_cycles (arb_dag_t *self, char *why, size_t size)
{
    size_t n = self->count;
    size_t *pending = (size_t *) calloc (n ? n : 1, sizeof (size_t));
    //  children lists in CSR form: for each parent, the tasks that wait for it
    size_t *starts = (size_t *) calloc (n + 1, sizeof (size_t));
    size_t edges = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < self->tasks[i].after.n; k++) {
            long parent = arb_dag_index (self, self->tasks[i].after.v[k].ref);
            if (parent >= 0) {
                starts[parent + 1]++;
                pending[i]++;
                edges++;
            }
        }
    for (size_t i = 0; i < n; i++)
        starts[i + 1] += starts[i];
    size_t *children = (size_t *) malloc ((edges ? edges : 1) * sizeof (size_t));
    size_t *fill = (size_t *) malloc ((n ? n : 1) * sizeof (size_t));
    memcpy (fill, starts, n * sizeof (size_t));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < self->tasks[i].after.n; k++) {
            long parent = arb_dag_index (self, self->tasks[i].after.v[k].ref);
            if (parent >= 0)
                children[fill[parent]++] = i;
        }
    size_t *ready = fill;  //  reused as the work stack
    size_t top = 0, removed = 0;
    for (size_t i = 0; i < n; i++)
        if (pending[i] == 0)
            ready[top++] = i;
    while (top) {
        size_t at = ready[--top];
        removed++;
        for (size_t c = starts[at]; c < starts[at + 1]; c++)
            if (--pending[children[c]] == 0)
                ready[top++] = children[c];
    }
    int rc = 0;
    if (removed < n) {
        rc = -1;
        //  walk remaining dependencies until a task comes back
        size_t *seen_at = (size_t *) calloc (n, sizeof (size_t));  //  step + 1
        size_t *path = (size_t *) malloc (n * sizeof (size_t));
        size_t at = 0;
        while (pending[at] == 0)
            at++;
        size_t steps = 0;
        while (!seen_at[at]) {
            seen_at[at] = ++steps;
            path[steps - 1] = at;
            const arb_task_spec_t *task = &self->tasks[at];
            for (size_t k = 0; k < task->after.n; k++) {
                long parent = arb_dag_index (self, task->after.v[k].ref);
                if (parent >= 0 && pending[parent]) {
                    at = (size_t) parent;
                    break;
                }
            }
        }
        s_add (why, size, "dependency cycle:");
        for (size_t s = seen_at[at] - 1; s < steps; s++)
            s_add (why, size, " '%s' ->", self->tasks[path[s]].ref);
        s_add (why, size, " '%s' (each waits for the next)", self->tasks[at].ref);
        free (seen_at);
        free (path);
    }
    free (pending);
    free (starts);
    free (children);
    free (fill);
    return rc;
}

int
arb_dag_check (arb_dag_t *self, arb_dag_exists_fn *exists, void *arg, char *why, size_t size)
{
    *why = 0;
    if (s_check_names (self, why, size) || s_check_targets (self, exists, arg, why, size)
        || s_check_cycles (self, why, size))
        return -1;
    return 0;
}
