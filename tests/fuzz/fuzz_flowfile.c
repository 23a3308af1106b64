/*  fuzz_flowfile.c — libFuzzer target for the workflow-file reader
    (client/arb_flowfile*.c).

    The input is a file's contents, read as each of the three kinds: a
    DAG, a group and a pipe. A file is either refused with one line that
    names it, or read into task specs that keep every promise of
    arb_flowfile.h and docs/workflows.md: names valid and unique, every
    dependency resolvable and of a known kind, each value within the
    bounds of arb_proto.h, the kind's own edges in place (a pipe's chain,
    a group's callback and finalizer). Then what the CLI would send is
    checked as it would be: by the client's own check (arb_spec_check),
    encoded into a SUBMIT that the broker's strict decoder must take back
    unchanged in size, and the broker's DAG check (arb_dag), which may
    refuse only a DAG file, and only with a reason. A crash, a sanitizer
    report or a leak is a finding too. Seeds: tests/fuzz/corpus/flowfile.

        scons fuzz && build/fuzz/fuzz_flowfile -max_total_time=60 tests/fuzz/corpus/flowfile
*/

#include "arb_client.h"
#include "arb_dag.h"
#include "arb_flowfile.h"
#include "arb_spec.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *s_kinds[] = {"", "dag", "group", "pipe"};

static void
s_fail (arb_flow_kind_t kind, size_t task, const char *what)
{
    fprintf (stderr, "fuzz_flowfile: as a %s, task %zu: %s\n", s_kinds[kind], task, what);
    abort ();
}

static bool
s_is_name (const char *text)
{
    char why[80];
    return text && *text && strlen (text) <= ARB_NAME_MAX
           && arb_name_check (text, strlen (text), why, sizeof (why)) == 0;
}

//  The index of the spec named ref, or -1.
static long
s_find (arb_task_spec_t *specs, size_t n, const char *ref)
{
    for (size_t i = 0; i < n; i++)
        if (streq (specs[i].ref, ref))
            return (long) i;
    return -1;
}

//  One spec's values: what the reader promises of each.
static void
s_check_spec (arb_flow_kind_t kind, arb_task_spec_t *specs, size_t n, size_t i, uint64_t now_ms)
{
    arb_task_spec_t *spec = &specs[i];
    if (!s_is_name (spec->ref) || !s_is_name (spec->name))
        s_fail (kind, i, "a task's name or handler is no valid name");
    if (spec->queue && (!s_is_name (spec->queue) || strchr (spec->queue, '@')))
        s_fail (kind, i, "an invalid queue");
    if (spec->key && !s_is_name (spec->key))
        s_fail (kind, i, "an invalid key");
    if (!spec->payload || zframe_size (spec->payload) > ARB_PAYLOAD_DEFAULT_MAX)
        s_fail (kind, i, "no payload, or one over its limit");
    if (spec->args.size > ARB_ARGS_MAX || (spec->args.size && !spec->args.data))
        s_fail (kind, i, "args over their limit");
    if (spec->retries > ARB_RETRIES_MAX || spec->backoff > ARB_BACKOFF_EXP
        || spec->backoff_ms > ARB_BACKOFF_MAX_MS || spec->backoff_cap_ms > ARB_BACKOFF_MAX_MS)
        s_fail (kind, i, "retries or backoff out of bounds");
    if (spec->backoff == ARB_BACKOFF_EXP
        && (spec->backoff_ms == 0 || spec->backoff_cap_ms < spec->backoff_ms))
        s_fail (kind, i, "an exp: backoff without 0 < BASE <= CAP");
    if (spec->backoff != ARB_BACKOFF_NONE && spec->retries == 0)
        s_fail (kind, i, "a backoff without retries");
    if (spec->no_jitter && spec->backoff != ARB_BACKOFF_EXP)
        s_fail (kind, i, "no_jitter without an exp: backoff");
    if (spec->timeout_ms > ARB_TIMEOUT_MAX_MS || spec->soft_timeout_ms > ARB_TIMEOUT_MAX_MS
        || spec->endpoint_timeout_ms > ARB_TIMEOUT_MAX_MS)
        s_fail (kind, i, "a timeout over its limit");
    if (spec->soft_timeout_ms && spec->timeout_ms && spec->soft_timeout_ms >= spec->timeout_ms)
        s_fail (kind, i, "a soft timeout not below the timeout");
    if (spec->delay_ms > ARB_DELAY_MAX_MS || spec->at_ms > now_ms + ARB_DELAY_MAX_MS
        || (spec->delay_ms && spec->at_ms))
        s_fail (kind, i, "delay or at out of bounds, or both");
    if (spec->retention_ms > ARB_RETENTION_MAX_MS)
        s_fail (kind, i, "retention over its limit");
    if (spec->endpoints.n > ARB_CLIENT_ENDPOINTS_MAX || (spec->endpoints.n && spec->broadcast))
        s_fail (kind, i, "endpoints over their limit, or with broadcast");
    for (size_t e = 0; e < spec->endpoints.n; e++)
        if (!s_is_name (spec->endpoints.v[e]) || strchr (spec->endpoints.v[e], '@'))
            s_fail (kind, i, "an invalid endpoint");
    bool fan_out = spec->endpoints.n || spec->broadcast;
    if ((spec->allow_unknown || spec->endpoint_timeout_ms) && !fan_out)
        s_fail (kind, i, "fan-out options without a fan-out");
    if (fan_out && spec->after.n)
        s_fail (kind, i, "a fan-out task that waits");
    if (spec->input > ARB_INPUT_PARENT)
        s_fail (kind, i, "an unknown input");
    if (spec->input == ARB_INPUT_PARENT && (spec->after.n != 1 || spec->after.v[0].when != 0))
        s_fail (kind, i, "input parent without exactly one on_success dependency");
    if (s_find (specs, n, spec->ref) != (long) i)
        s_fail (kind, i, "a name given twice");
    for (size_t k = 0; k < spec->after.n; k++) {
        arb_dep_t *dep = &spec->after.v[k];
        if (dep->when > 2 || (dep->ref != NULL) == (dep->id != 0))
            s_fail (kind, i, "a dependency of no known kind, or with both ref and id");
        long at = dep->ref ? s_find (specs, n, dep->ref) : -2;  //  -2: an existing task
        if (at == -1 || at == (long) i)
            s_fail (kind, i, "a dependency on nothing, or on itself");
        for (size_t j = 0; j < k; j++)
            if (dep->ref ? spec->after.v[j].ref && streq (spec->after.v[j].ref, dep->ref)
                         : spec->after.v[j].id == dep->id)
                s_fail (kind, i, "a parent named twice");
    }
}

//  The kind's own edges.
static void
s_check_kind (arb_flow_kind_t kind, arb_task_spec_t *specs, size_t n)
{
    for (size_t i = 0; kind == ARB_FLOW_PIPE && i < n; i++) {
        bool chained = i == 0 ? specs[i].after.n == 0
                              : specs[i].after.n == 1 && specs[i].after.v[0].when == 0
                                    && specs[i].input == ARB_INPUT_PARENT
                                    && streq (specs[i].after.v[0].ref, specs[i - 1].ref);
        if (!chained || specs[i].endpoints.n || specs[i].broadcast)
            s_fail (kind, i, "a pipe's step off its chain");
    }
    if (kind != ARB_FLOW_GROUP)
        return;
    long callback = s_find (specs, n, ARB_FLOWFILE_CALLBACK);
    long finalizer = s_find (specs, n, ARB_FLOWFILE_FINALIZER);
    size_t members = n - (callback >= 0) - (finalizer >= 0);
    if (members == 0 || (callback >= 0 && (size_t) callback != members)
        || (finalizer >= 0 && (size_t) finalizer != n - 1))
        s_fail (kind, 0, "a group's callback or finalizer out of place");
    for (size_t i = 0; i < members; i++)
        if (specs[i].after.n)
            s_fail (kind, i, "a group's member that waits");
    if (callback >= 0 && specs[callback].after.n != members)
        s_fail (kind, (size_t) callback, "a callback that does not wait for every member");
    if (finalizer >= 0 && specs[finalizer].after.n != members + (callback >= 0))
        s_fail (kind, (size_t) finalizer, "a finalizer that does not wait for everything");
}

static bool
s_exists (void *arg, uint64_t id)
{
    (void) arg;
    (void) id;
    return true;
}

//  What the CLI would do with the flow: the client's check, the SUBMIT
//  the broker decodes, the broker's DAG check.
static void
s_submit (arb_flowfile_t *flow, arb_flow_kind_t kind)
{
    arb_task_spec_t *specs = arb_flowfile_specs (flow);
    size_t n = arb_flowfile_size (flow);
    char why[512] = "";
    if (arb_spec_check (specs, n, kind, arb_flowfile_name (flow), ARB_PAYLOAD_DEFAULT_MAX, why,
                        sizeof (why)))
        s_fail (kind, 0, "the client's check refuses what the reader read");
    arb_dag_t *dag = arb_dag_new (specs, n);
    int rc = arb_dag_check (dag, s_exists, NULL, why, sizeof (why));
    arb_dag_destroy (&dag);
    if (rc && (kind != ARB_FLOW_DAG || !*why))
        s_fail (kind, 0, "the broker's DAG check refuses a group or pipe, or without a reason");

    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 7);
    arb_submit_body_t *body = arb_msg_submit (msg);
    body->flow_kind = (uint32_t) kind;
    body->flow_name = arb_flowfile_name (flow);
    body->tasks.v = specs;  //  encoding moves the payloads out, as a submit does
    body->tasks.n = n;
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_limits_t limits = {.max_frame = ARB_PAYLOAD_DEFAULT_MAX};
    arb_msg_t *back = NULL;
    if (arb_msg_decode (&zmsg, false, &limits, &back) != 0) {
        fprintf (stderr, "fuzz_flowfile: decode: %s\n",
                 back && arb_msg_decode_error (back) ? arb_msg_decode_error (back) : "?");
        s_fail (kind, 0, "the broker's decoder refuses the SUBMIT of what the reader read");
    }
    if (arb_msg_submit (back)->tasks.n != n)
        s_fail (kind, 0, "the SUBMIT came back with another number of tasks");
    arb_msg_destroy (&back);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    for (arb_flow_kind_t kind = ARB_FLOW_DAG; kind <= ARB_FLOW_PIPE; kind++) {
        arb_flowfile_err_t err = {{0}};
        arb_flowfile_t *flow =
            arb_flowfile_parse ("fuzz.json", (const char *) data, size, kind, &err);
        uint64_t now_ms = (uint64_t) zclock_time ();
        if (!flow) {
            if (strncmp (err.text, "fuzz.json", 9) != 0 || strlen (err.text) < 12)
                s_fail (kind, 0, "refused without a reason naming the file");
            continue;
        }
        arb_task_spec_t *specs = arb_flowfile_specs (flow);
        size_t n = arb_flowfile_size (flow);
        if (arb_flowfile_kind (flow) != kind || n == 0 || n > ARB_LIST_MAX || !specs)
            s_fail (kind, 0, "a flow of another kind, or of no tasks");
        if (arb_flowfile_name (flow) && !s_is_name (arb_flowfile_name (flow)))
            s_fail (kind, 0, "the flow's name is no valid name");
        for (size_t i = 0; i < n; i++)
            s_check_spec (kind, specs, n, i, now_ms);
        s_check_kind (kind, specs, n);
        s_submit (flow, kind);
        arb_flowfile_destroy (&flow);
    }
    return 0;
}
