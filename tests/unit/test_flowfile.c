/*  test_flowfile.c — workflow files: good DAG, group and pipe files into
    the specs they mean (edges, defaults, option values), every kind of
    mistake refused with a message naming the file, the task and the
    field, and a 10,000-node DAG.
*/

#include "arb_flowfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static arb_flowfile_t *
s_parse (arb_flow_kind_t kind, const char *text)
{
    arb_flowfile_err_t err;
    const char *label = kind == ARB_FLOW_DAG     ? "dag.json"
                        : kind == ARB_FLOW_GROUP ? "g.json"
                                                 : "p.json";
    arb_flowfile_t *flow = arb_flowfile_parse (label, text, strlen (text), kind, &err);
    if (!flow)
        fail_msg ("refused: %s", err.text);
    return flow;
}

//  The file is refused with exactly this message.
static void
s_refused (arb_flow_kind_t kind, const char *text, const char *message)
{
    arb_flowfile_err_t err;
    const char *label = kind == ARB_FLOW_DAG     ? "dag.json"
                        : kind == ARB_FLOW_GROUP ? "g.json"
                                                 : "p.json";
    arb_flowfile_t *flow = arb_flowfile_parse (label, text, strlen (text), kind, &err);
    if (flow) {
        arb_flowfile_destroy (&flow);
        fail_msg ("accepted: %s", text);
    }
    if (!streq (err.text, message))
        fail_msg ("for %s\n  expected: %s\n  got:      %s", text, message, err.text);
}

static void
s_payload_is (arb_task_spec_t *spec, const char *text)
{
    assert_non_null (spec->payload);
    assert_int_equal (zframe_size (spec->payload), strlen (text));
    assert_memory_equal (zframe_data (spec->payload), text, strlen (text));
}

static void
s_args_are (arb_task_spec_t *spec, const char *text)
{
    assert_int_equal (spec->args.size, strlen (text));
    assert_memory_equal (spec->args.data, text, strlen (text));
}

static void
s_dep_is (arb_task_spec_t *spec, size_t k, const char *ref, uint64_t id, uint32_t when)
{
    assert_true (k < spec->after.n);
    if (ref)
        assert_string_equal (spec->after.v[k].ref, ref);
    else
        assert_null (spec->after.v[k].ref);
    assert_int_equal (spec->after.v[k].id, id);
    assert_int_equal (spec->after.v[k].when, when);
}

//  ---------------------------------------------------------------------
//  Good files.

static void
test_dag_fields (void **state)
{
    (void) state;
    arb_flowfile_t *flow = s_parse (
        ARB_FLOW_DAG,
        "{\"name\": \"nightly\", \"tasks\": ["
        " {\"name\": \"a\", \"payload\": \"text\", \"queue\": \"q1\", \"retries\": 2,"
        "  \"timeout\": 1.5, \"soft_timeout\": 1.25, \"priority\": -3, \"delay\": 0.25,"
        "  \"backoff\": \"exp:1,60\","
        "  \"no_jitter\": true, \"key\": \"k-a\", \"retention\": 60},"
        " {\"name\": \"b\", \"task\": \"resize\", \"payload\": {\"w\": 2, \"tags\": [1, \"x\"]},"
        "  \"args\": 1, \"after\": [\"a\"]},"
        " {\"name\": \"c\", \"after\": [{\"task\": \"a\", \"when\": \"on_failure\"}, {\"id\": "
        "1234},"
        "  {\"task\": \"b\", \"when\": \"always\"}], \"args\": \"--fast\"},"
        " {\"name\": \"d\", \"input\": \"parent\", \"after\": [{\"task\": \"b\", \"when\": "
        "\"on_success\"}]},"
        " {\"name\": \"e\", \"endpoints\": [\"w1\", \"w2\"], \"allow_unknown_endpoints\": true,"
        "  \"endpoint_timeout\": 2, \"at\": \"2020-01-01T00:00:00Z\"},"
        " {\"name\": \"f\", \"broadcast\": true, \"payload\": null, \"args\": [true, 0.5]}"
        "]}");
    assert_int_equal (arb_flowfile_kind (flow), ARB_FLOW_DAG);
    assert_string_equal (arb_flowfile_name (flow), "nightly");
    assert_int_equal (arb_flowfile_size (flow), 6);
    arb_task_spec_t *t = arb_flowfile_specs (flow);

    assert_string_equal (t[0].ref, "a");
    assert_string_equal (t[0].name, "a");  //  the handler is named as the task
    assert_string_equal (t[0].queue, "q1");
    s_payload_is (&t[0], "text");
    assert_int_equal (t[0].retries, 2);
    assert_int_equal (t[0].timeout_ms, 1500);
    assert_int_equal (t[0].soft_timeout_ms, 1250);
    assert_int_equal (t[0].priority, -3);
    assert_int_equal (t[0].delay_ms, 250);
    assert_int_equal (t[0].backoff, ARB_BACKOFF_EXP);
    assert_int_equal (t[0].backoff_ms, 1000);
    assert_int_equal (t[0].backoff_cap_ms, 60000);
    assert_true (t[0].no_jitter);
    assert_string_equal (t[0].key, "k-a");
    assert_int_equal (t[0].retention_ms, 60000);
    assert_int_equal (t[0].after.n, 0);
    assert_null (t[0].args.data);

    assert_string_equal (t[1].name, "resize");
    s_payload_is (&t[1], "{\"w\":2,\"tags\":[1,\"x\"]}");  //  non-strings: their JSON text
    s_args_are (&t[1], "1");
    assert_int_equal (t[1].after.n, 1);
    s_dep_is (&t[1], 0, "a", 0, 0);

    assert_int_equal (t[2].after.n, 3);
    s_dep_is (&t[2], 0, "a", 0, 1);
    s_dep_is (&t[2], 1, NULL, 1234, 0);
    s_dep_is (&t[2], 2, "b", 0, 2);
    s_args_are (&t[2], "--fast");
    s_payload_is (&t[2], "");  //  no payload: empty

    assert_int_equal (t[3].input, ARB_INPUT_PARENT);
    assert_int_equal (t[4].endpoints.n, 2);
    assert_string_equal (t[4].endpoints.v[1], "w2");
    assert_true (t[4].allow_unknown);
    assert_int_equal (t[4].endpoint_timeout_ms, 2000);
    assert_int_equal (t[4].at_ms, 1577836800000ull);  //  in the past: due at once
    assert_true (t[5].broadcast);
    s_payload_is (&t[5], "null");
    s_args_are (&t[5], "[true,0.5]");
    arb_flowfile_destroy (&flow);
    assert_null (flow);
}

static void
test_decimal_seconds_round_to_ms (void **state)
{
    (void) state;
    arb_flowfile_t *flow =
        s_parse (ARB_FLOW_DAG, "{\"tasks\": [{\"name\": \"a\", \"timeout\": 0.29,"
                               " \"delay\": 0.00049, \"retention\": 1e3}]}");
    arb_task_spec_t *t = arb_flowfile_specs (flow);
    assert_int_equal (t[0].timeout_ms, 290);  //  no binary rounding: 0.29 is 290 ms
    assert_int_equal (t[0].delay_ms, 1);      //  above 0: at least 1 ms, never none
    assert_int_equal (t[0].retention_ms, 1000000);
    assert_null (arb_flowfile_name (flow));
    arb_flowfile_destroy (&flow);
}

static void
test_group_edges (void **state)
{
    (void) state;
    arb_flowfile_t *flow =
        s_parse (ARB_FLOW_GROUP, "{\"name\": \"g1\", \"tasks\": ["
                                 "  {\"task\": \"member\", \"payload\": \"0\"},"
                                 "  {\"task\": \"member\", \"payload\": \"1\"},"
                                 "  {\"name\": \"third\", \"payload\": \"2\"}],"
                                 " \"callback\": {\"task\": \"sum\", \"queue\": \"cb\"},"
                                 " \"finalizer\": {\"retries\": 1}}");
    assert_string_equal (arb_flowfile_name (flow), "g1");
    assert_int_equal (arb_flowfile_size (flow), 5);
    arb_task_spec_t *t = arb_flowfile_specs (flow);
    assert_string_equal (t[0].ref, "member1");  //  unnamed members are named by their place
    assert_string_equal (t[1].ref, "member2");
    assert_string_equal (t[2].ref, "third");
    assert_string_equal (t[2].name, "third");
    for (int i = 0; i < 3; i++)
        assert_int_equal (t[i].after.n, 0);
    //  the callback waits on_success for every member
    assert_string_equal (t[3].ref, ARB_FLOWFILE_CALLBACK);
    assert_string_equal (t[3].name, "sum");
    assert_string_equal (t[3].queue, "cb");
    assert_int_equal (t[3].after.n, 3);
    s_dep_is (&t[3], 0, "member1", 0, 0);
    s_dep_is (&t[3], 2, "third", 0, 0);
    //  the finalizer always, for every member and the callback
    assert_string_equal (t[4].ref, ARB_FLOWFILE_FINALIZER);
    assert_string_equal (t[4].name, ARB_FLOWFILE_FINALIZER);
    assert_int_equal (t[4].retries, 1);
    assert_int_equal (t[4].after.n, 4);
    s_dep_is (&t[4], 1, "member2", 0, 2);
    s_dep_is (&t[4], 3, ARB_FLOWFILE_CALLBACK, 0, 2);
    arb_flowfile_destroy (&flow);

    //  without a callback the finalizer waits for the members only
    flow = s_parse (ARB_FLOW_GROUP,
                    "{\"tasks\": [{\"name\": \"m\"}], \"finalizer\": {\"task\": \"fin\"}}");
    t = arb_flowfile_specs (flow);
    assert_int_equal (arb_flowfile_size (flow), 2);
    assert_int_equal (t[1].after.n, 1);
    s_dep_is (&t[1], 0, "m", 0, 2);
    arb_flowfile_destroy (&flow);
}

static void
test_pipe_file_chains_steps (void **state)
{
    (void) state;
    arb_flowfile_t *flow =
        s_parse (ARB_FLOW_PIPE, "{\"input\": 0, \"args\": \"1\", \"steps\": ["
                                "  {\"task\": \"add\"}, {\"task\": \"add\", \"args\": 5},"
                                "  {\"name\": \"last\", \"task\": \"mul\", \"queue\": \"math\"}]}");
    assert_int_equal (arb_flowfile_size (flow), 3);
    arb_task_spec_t *t = arb_flowfile_specs (flow);
    assert_string_equal (t[0].ref, "step1");
    assert_string_equal (t[1].ref, "step2");
    assert_string_equal (t[2].ref, "last");
    s_payload_is (&t[0], "0");  //  the pipe's input
    assert_int_equal (t[0].input, ARB_INPUT_PAYLOAD);
    assert_int_equal (t[0].after.n, 0);
    s_args_are (&t[0], "1");  //  the pipe's args ...
    s_args_are (&t[1], "5");  //  ... unless the step has its own
    s_args_are (&t[2], "1");
    for (int k = 1; k < 3; k++) {
        assert_int_equal (t[k].input, ARB_INPUT_PARENT);
        assert_int_equal (t[k].after.n, 1);
        s_dep_is (&t[k], 0, t[k - 1].ref, 0, 0);
    }
    assert_string_equal (t[2].queue, "math");
    arb_flowfile_destroy (&flow);
}

static void
test_pipe_from_handlers (void **state)
{
    (void) state;
    const char *handlers[] = {"add", "add", "double"};
    zframe_t *input = zframe_new ("7", 1);
    arb_flowfile_err_t err;
    arb_flowfile_t *flow =
        arb_flowfile_new_pipe (handlers, 3, "math", &input, (const uint8_t *) "2", 1, &err);
    assert_non_null (flow);
    assert_null (input);  //  taken
    arb_task_spec_t *t = arb_flowfile_specs (flow);
    assert_int_equal (arb_flowfile_size (flow), 3);
    s_payload_is (&t[0], "7");
    s_payload_is (&t[2], "");
    assert_string_equal (t[2].name, "double");
    assert_string_equal (t[2].ref, "step3");
    assert_string_equal (t[1].queue, "math");
    s_args_are (&t[1], "2");
    s_dep_is (&t[2], 0, "step2", 0, 0);
    assert_int_equal (t[2].input, ARB_INPUT_PARENT);
    arb_flowfile_destroy (&flow);

    const char *empty[] = {"add", ""};
    input = zframe_new ("x", 1);
    assert_null (arb_flowfile_new_pipe (empty, 2, NULL, &input, NULL, 0, &err));
    assert_null (input);  //  taken even on failure
    assert_string_equal (err.text, "pipe: steps[1] ('step2').task: must not be empty");
    assert_null (arb_flowfile_new_pipe (handlers, 3, "q@w", NULL, NULL, 0, &err));
    assert_string_equal (err.text, "pipe: queue: '@' is reserved for endpoint queues");
    assert_null (arb_flowfile_new_pipe (handlers, 0, NULL, NULL, NULL, 0, &err));
    assert_string_equal (err.text, "pipe: steps: a pipe has 1 to 100000 steps, not 0");
}

//  A chain of 10,000 tasks where every 100th also waits for the first:
//  read whole, every edge where it belongs.
static void
test_ten_thousand_nodes (void **state)
{
    (void) state;
    size_t n = 10000;
    char *text = (char *) malloc (n * 100 + 64);
    size_t used = (size_t) sprintf (text, "{\"tasks\": [{\"name\": \"n0\", \"task\": \"step\"}");
    for (size_t i = 1; i < n; i++) {
        if (i % 100 == 0)
            used += (size_t) sprintf (text + used,
                                      ", {\"name\": \"n%zu\", \"task\": \"step\", \"after\": "
                                      "[\"n%zu\", {\"task\": \"n0\", \"when\": \"always\"}]}",
                                      i, i - 1);
        else
            used += (size_t) sprintf (
                text + used, ", {\"name\": \"n%zu\", \"task\": \"step\", \"after\": [\"n%zu\"]}", i,
                i - 1);
    }
    sprintf (text + used, "]}");
    arb_flowfile_t *flow = s_parse (ARB_FLOW_DAG, text);
    assert_int_equal (arb_flowfile_size (flow), n);
    arb_task_spec_t *t = arb_flowfile_specs (flow);
    for (size_t i = 1; i < n; i++) {
        char ref[16];
        snprintf (ref, sizeof (ref), "n%zu", i - 1);
        assert_int_equal (t[i].after.n, i % 100 == 0 ? 2 : 1);
        assert_string_equal (t[i].after.v[0].ref, ref);
    }
    s_dep_is (&t[9900], 1, "n0", 0, 2);
    assert_string_equal (t[n - 1].ref, "n9999");
    arb_flowfile_destroy (&flow);

    //  the same size with a mistake at the end is refused, naming it
    memcpy (text + used - 8, "nX\"]}   ", 8);
    s_refused (ARB_FLOW_DAG, text,
               "dag.json: tasks[9999] ('n9999').after[0]: no task named 'nX' in this file (an "
               "existing task is {\"id\": N})");
    free (text);
}

static void
test_read_from_disk (void **state)
{
    (void) state;
    char path[] = "/tmp/test_flowfile_XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    const char *text = "{\"tasks\": [{\"name\": \"a\"}, {\"name\": \"b\", \"after\": [\"a\"]}]}";
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    arb_flowfile_err_t err;
    arb_flowfile_t *flow = arb_flowfile_read (path, ARB_FLOW_DAG, &err);
    assert_non_null (flow);
    assert_int_equal (arb_flowfile_size (flow), 2);
    arb_flowfile_destroy (&flow);
    unlink (path);
    assert_null (arb_flowfile_read (path, ARB_FLOW_DAG, &err));
    char expected[128];
    snprintf (expected, sizeof (expected), "%s: cannot read: No such file or directory", path);
    assert_string_equal (err.text, expected);
}

//  ---------------------------------------------------------------------
//  Mistakes.

static void
test_document_errors (void **state)
{
    (void) state;
    s_refused (ARB_FLOW_DAG, "{\"tasks\": [}", "dag.json:1:12: unexpected token near '}'");
    s_refused (ARB_FLOW_DAG, "{\"tasks\": [], \"tasks\": []}",
               "dag.json:1:21: duplicate object key near '\"tasks\"'");
    s_refused (ARB_FLOW_DAG, "[1]", "dag.json: must be a JSON object");
    s_refused (ARB_FLOW_DAG, "{}", "dag.json: tasks: is required: the list of tasks");
    s_refused (ARB_FLOW_DAG, "{\"name\": \"x\\u0001\", \"tasks\": [{\"name\": \"a\"}]}",
               "dag.json: name: control character 0x01 at byte 2 (names are printable UTF-8)");
    s_refused (ARB_FLOW_DAG, "{\"tasks\": []}",
               "dag.json: tasks: must be a list of one or more task objects");
    s_refused (ARB_FLOW_DAG, "{\"tasks\": {\"name\": \"a\"}}",
               "dag.json: tasks: must be a list of one or more task objects");
    s_refused (ARB_FLOW_DAG, "{\"task\": [{\"name\": \"a\"}]}",
               "dag.json: unknown field 'task' (a DAG file has: name tasks)");
    s_refused (ARB_FLOW_DAG, "{\"name\": \"\", \"tasks\": [{\"name\": \"a\"}]}",
               "dag.json: name: must not be empty");
    s_refused (ARB_FLOW_PIPE, "{\"tasks\": [{\"task\": \"a\"}]}",
               "p.json: unknown field 'tasks' (a pipe file has: name input args steps)");
    s_refused (ARB_FLOW_GROUP, "{\"tasks\": [{\"name\": \"a\"}], \"callbacks\": {}}",
               "g.json: unknown field 'callbacks' (a group file has: name tasks callback "
               "finalizer)");
}

static void
test_task_errors (void **state)
{
    (void) state;
    struct {
        const char *task;
        const char *message;
    } cases[] = {
        {"7", "dag.json: tasks[1]: must be an object"},
        {"{\"task\": \"x\"}",
         "dag.json: tasks[1]: 'name' is required (the task's name in the flow)"},
        {"{\"name\": 5}", "dag.json: tasks[1].name: must be a string"},
        {"{\"name\": \"b\\u0000c\"}", "dag.json: tasks[1].name: must not contain NUL"},
        {"{\"name\": \"b\\nc\"}",
         "dag.json: tasks[1].name: control character 0x0a at byte 2 (names are printable UTF-8)"},
        {"{\"name\": \"b\", \"queue\": \"q\\u0085\"}",
         "dag.json: tasks[1] ('b').queue: control character U+0085 at byte 2 (names are "
         "printable UTF-8)"},
        {"{\"name\": \"b\", \"retry\": 3}", "dag.json: tasks[1] ('b'): unknown field 'retry'"},
        {"{\"name\": \"b\", \"retries\": 1001}",
         "dag.json: tasks[1] ('b').retries: 1001 is over the limit of 1000"},
        {"{\"name\": \"b\", \"retries\": 1.5}", "dag.json: tasks[1] ('b').retries: must be a whole "
                                                "number (no fraction or exponent), not 1.5"},
        {"{\"name\": \"b\", \"retries\": \"2\"}",
         "dag.json: tasks[1] ('b').retries: must be a whole number"},
        {"{\"name\": \"b\", \"retries\": -1}",
         "dag.json: tasks[1] ('b').retries: expected a whole number from 0 to 1000, not '-1'"},
        {"{\"name\": \"b\", \"timeout\": -1}",
         "dag.json: tasks[1] ('b').timeout: must be 0 or more seconds, not '-1'"},
        {"{\"name\": \"b\", \"timeout\": \"30\"}",
         "dag.json: tasks[1] ('b').timeout: must be a number of seconds, like 30 or 0.25"},
        {"{\"name\": \"b\", \"timeout\": 2592000.5}",
         "dag.json: tasks[1] ('b').timeout: 2592000.5 s is over the limit of 30 days"},
        {"{\"name\": \"b\", \"timeout\": 2, \"soft_timeout\": 2}",
         "dag.json: tasks[1] ('b').soft_timeout: must be below 'timeout'"},
        {"{\"name\": \"b\", \"soft_timeout\": 0}",
         "dag.json: tasks[1] ('b').soft_timeout: must be more than 0 s"},
        {"{\"name\": \"b\", \"delay\": 31622401}",
         "dag.json: tasks[1] ('b').delay: 31622401 s is over the limit of 366 days"},
        {"{\"name\": \"b\", \"priority\": 2147483648}",
         "dag.json: tasks[1] ('b').priority: expected a whole number from -2147483648 to "
         "2147483647, not '2147483648'"},
        {"{\"name\": \"b\", \"backoff\": \"lin:1\"}",
         "dag.json: tasks[1] ('b').backoff: expected fixed:SECONDS or exp:BASE,CAP (or none), "
         "not 'lin:1'"},
        {"{\"name\": \"b\", \"backoff\": \"fixed:1\", \"no_jitter\": true}",
         "dag.json: tasks[1] ('b').no_jitter: only an exp: backoff is jittered"},
        {"{\"name\": \"b\", \"backoff\": \"fixed:1\"}",
         "dag.json: tasks[1] ('b').backoff: it delays retries, and there are none: give "
         "'retries'"},
        {"{\"name\": \"b\", \"backoff\": \"exp:1,2\", \"retries\": 0}",
         "dag.json: tasks[1] ('b').backoff: it delays retries, and there are none: give "
         "'retries'"},
        {"{\"name\": \"b\", \"no_jitter\": 1}",
         "dag.json: tasks[1] ('b').no_jitter: must be true or false"},
        {"{\"name\": \"b\", \"delay\": 1, \"at\": 1577836800}",
         "dag.json: tasks[1] ('b'): 'delay' and 'at' both say when; give one"},
        {"{\"name\": \"b\", \"at\": \"tomorrow\"}",
         "dag.json: tasks[1] ('b').at: expected an RFC 3339 time like 2026-11-23T10:00:00Z (or "
         "+01:00) or Unix seconds, not 'tomorrow'"},
        {"{\"name\": \"b\", \"queue\": \"\"}", "dag.json: tasks[1] ('b').queue: must not be empty"},
        {"{\"name\": \"b\", \"queue\": \"q@w1\"}",
         "dag.json: tasks[1] ('b').queue: '@' is reserved for endpoint queues"},
        {"{\"name\": \"b\", \"key\": [\"k\"]}", "dag.json: tasks[1] ('b').key: must be a string"},
        {"{\"name\": \"b\", \"input\": \"stdin\"}",
         "dag.json: tasks[1] ('b').input: must be \"payload\" or \"parent\""},
        {"{\"name\": \"b\", \"input\": \"parent\"}",
         "dag.json: tasks[1] ('b').input: \"parent\" needs exactly one dependency, on_success"},
        {"{\"name\": \"b\", \"input\": \"parent\", \"after\": [{\"task\": \"a\", \"when\": "
         "\"always\"}]}",
         "dag.json: tasks[1] ('b').input: \"parent\" needs exactly one dependency, on_success"},
        {"{\"name\": \"b\", \"input\": \"parent\", \"after\": [\"a\"], \"payload\": \"x\"}",
         "dag.json: tasks[1] ('b').payload: not used when the input is the parent's result"},
        {"{\"name\": \"b\", \"endpoints\": []}",
         "dag.json: tasks[1] ('b').endpoints: must be a list of worker names"},
        {"{\"name\": \"b\", \"endpoints\": [\"w1\", \"w1\"]}",
         "dag.json: tasks[1] ('b').endpoints[1]: 'w1' is named twice"},
        {"{\"name\": \"b\", \"endpoints\": [\"q@w1\"]}",
         "dag.json: tasks[1] ('b').endpoints[0]: 'q@w1' is not a worker name ('@' is reserved)"},
        {"{\"name\": \"b\", \"endpoints\": [\"w1\"], \"broadcast\": true}",
         "dag.json: tasks[1] ('b'): give 'endpoints' or 'broadcast', not both"},
        {"{\"name\": \"b\", \"endpoint_timeout\": 5}",
         "dag.json: tasks[1] ('b'): allow_unknown_endpoints and endpoint_timeout go with "
         "'endpoints' or 'broadcast'"},
        {"{\"name\": \"b\", \"broadcast\": true, \"endpoint_timeout\": 0}",
         "dag.json: tasks[1] ('b').endpoint_timeout: must be more than 0 s"},
        {"{\"name\": \"b\", \"broadcast\": true, \"after\": [\"a\"]}",
         "dag.json: tasks[1] ('b'): a fan-out task (endpoints, broadcast) cannot wait for others"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char text[512];
        snprintf (text, sizeof (text), "{\"tasks\": [{\"name\": \"a\"}, %s]}", cases[i].task);
        s_refused (ARB_FLOW_DAG, text, cases[i].message);
    }
    char long_name[ARB_NAME_MAX + 64];
    memset (long_name, 'n', sizeof (long_name));
    snprintf (long_name + ARB_NAME_MAX + 1, 63, "\"}]}");
    char text[512];
    snprintf (text, sizeof (text), "{\"tasks\": [{\"name\": \"%s", long_name);
    s_refused (ARB_FLOW_DAG, text, "dag.json: tasks[0].name: 201 bytes, over the 200-byte limit");
}

static void
test_dependency_errors (void **state)
{
    (void) state;
    struct {
        const char *after;
        const char *message;
    } cases[] = {
        {"[{\"task\": \"a\", \"when\": \"sometimes\"}]",
         "dag.json: tasks[2] ('c').after[0]: 'when' must be on_success, on_failure or always"},
        {"[\"a\", {\"task\": \"b\", \"when\": 1}]",
         "dag.json: tasks[2] ('c').after[1]: 'when' must be on_success, on_failure or always"},
        {"[\"x\"]", "dag.json: tasks[2] ('c').after[0]: no task named 'x' in this file (an "
                    "existing task is {\"id\": N})"},
        {"[\"a\", \"c\"]", "dag.json: tasks[2] ('c').after[1]: 'c' cannot wait for itself"},
        {"[\"a\", {\"task\": \"a\", \"when\": \"always\"}]",
         "dag.json: tasks[2] ('c').after[1]: 'a' is named twice"},
        {"[{\"id\": 5}, {\"id\": 5}]", "dag.json: tasks[2] ('c').after[1]: task 5 is named twice"},
        {"[{\"task\": \"a\", \"id\": 5}]",
         "dag.json: tasks[2] ('c').after[0]: give 'task' (a task of this file) or 'id' (an "
         "existing task)"},
        {"[{\"when\": \"always\"}]",
         "dag.json: tasks[2] ('c').after[0]: give 'task' (a task of this file) or 'id' (an "
         "existing task)"},
        {"[{\"id\": 0}]", "dag.json: tasks[2] ('c').after[0]: 'id' must be a task id, from 1"},
        {"[{\"id\": -4}]", "dag.json: tasks[2] ('c').after[0]: expected a whole number from 0 to "
                           "9223372036854775807, not '-4'"},
        {"[{\"task\": \"a\", \"if\": \"ok\"}]",
         "dag.json: tasks[2] ('c').after[0]: unknown field 'if' (a dependency has task or id, "
         "and when)"},
        {"[3]", "dag.json: tasks[2] ('c').after[0]: must be a task name or an object"},
        {"\"a\"", "dag.json: tasks[2] ('c').after: must be a list of task names or {\"task\", "
                  "\"when\"} objects"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char text[512];
        snprintf (text, sizeof (text),
                  "{\"tasks\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\", "
                  "\"after\": %s}]}",
                  cases[i].after);
        s_refused (ARB_FLOW_DAG, text, cases[i].message);
    }
    s_refused (ARB_FLOW_DAG,
               "{\"tasks\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"a\"}]}",
               "dag.json: tasks[2] ('a').name: 'a' is also the name of tasks[0]");
}

static void
test_group_and_pipe_errors (void **state)
{
    (void) state;
    s_refused (ARB_FLOW_GROUP,
               "{\"tasks\": [{\"name\": \"m\", \"after\": [\"n\"]}, {\"name\": \"n\"}]}",
               "g.json: tasks[0] ('m'): 'after' has no place in a group's member (members wait "
               "for nothing)");
    s_refused (ARB_FLOW_GROUP, "{\"tasks\": [{\"payload\": \"x\"}]}",
               "g.json: tasks[0] ('member1'): give 'task' (the handler's name)");
    s_refused (ARB_FLOW_GROUP, "{\"tasks\": [{\"name\": \"m\"}, {\"name\": \"callback\"}]}",
               "g.json: tasks[1] ('callback').name: 'callback' is the name of the group's "
               "callback; choose another");
    s_refused (ARB_FLOW_GROUP, "{\"tasks\": [{\"name\": \"m\"}], \"callback\": {\"name\": \"cb\"}}",
               "g.json: callback: 'name' has no place in a group's callback or finalizer");
    s_refused (ARB_FLOW_GROUP,
               "{\"tasks\": [{\"name\": \"m\"}], \"finalizer\": {\"retries\": 1001}}",
               "g.json: finalizer.retries: 1001 is over the limit of 1000");
    s_refused (ARB_FLOW_GROUP, "{\"tasks\": [{\"name\": \"m\"}], \"callback\": [1]}",
               "g.json: callback: must be an object");
    s_refused (ARB_FLOW_PIPE, "{\"steps\": [{\"task\": \"a\", \"payload\": \"x\"}]}",
               "p.json: steps[0] ('step1'): 'payload' has no place in a pipe's step (the pipe "
               "gives its input and dependency)");
    s_refused (ARB_FLOW_PIPE, "{\"steps\": [{\"task\": \"a\", \"after\": [\"step1\"]}]}",
               "p.json: steps[0] ('step1'): 'after' has no place in a pipe's step (the pipe "
               "gives its input and dependency)");
    s_refused (ARB_FLOW_PIPE,
               "{\"steps\": [{\"task\": \"a\"}, {\"name\": \"step1\", \"task\": \"b\"}]}",
               "p.json: steps[1] ('step1').name: 'step1' is also the name of steps[0]");
    s_refused (ARB_FLOW_PIPE, "{\"steps\": [{\"args\": 1}]}",
               "p.json: steps[0] ('step1'): give 'task' (the handler's name)");

    //  args over ARB_ARGS_MAX, named where they are
    size_t big = ARB_ARGS_MAX + 1;
    char *text = (char *) malloc (big + 64);
    int used = sprintf (text, "{\"args\": \"");
    memset (text + used, 'a', big);
    sprintf (text + used + big, "\", \"steps\": [{\"task\": \"a\"}]}");
    s_refused (ARB_FLOW_PIPE, text, "p.json: args: 1048577 bytes, over the 1048576-byte limit");
    free (text);

    //  a callback refused after its payload was read: the payload was
    //  leaked (fuzz_flowfile; the sanitizer build's leak check sees it)
    s_refused (ARB_FLOW_GROUP,
               "{\"tasks\": [{\"task\": \"m\"}], \"callback\": {\"task\": \"cb\", \"payload\": "
               "\"x\", \"delay\": 1, \"at\": 5}}",
               "g.json: callback: 'delay' and 'at' both say when; give one");
    s_refused (ARB_FLOW_GROUP,
               "{\"tasks\": [{\"task\": \"m\"}], \"finalizer\": {\"payload\": [1], \"bad\": 1}}",
               "g.json: finalizer: unknown field 'bad'");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_dag_fields),
        cmocka_unit_test (test_decimal_seconds_round_to_ms),
        cmocka_unit_test (test_group_edges),
        cmocka_unit_test (test_pipe_file_chains_steps),
        cmocka_unit_test (test_pipe_from_handlers),
        cmocka_unit_test (test_ten_thousand_nodes),
        cmocka_unit_test (test_read_from_disk),
        cmocka_unit_test (test_document_errors),
        cmocka_unit_test (test_task_errors),
        cmocka_unit_test (test_dependency_errors),
        cmocka_unit_test (test_group_and_pipe_errors),
    };
    return cmocka_run_group_tests_name ("flowfile", tests, NULL, NULL);
}
