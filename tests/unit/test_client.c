/*  test_client.c — the client library against a scripted broker.

    The broker side is a real ZeroMQ ROUTER socket in a zactor thread that
    speaks the protocol through arb_msg_* — a protocol fixture, not a mock
    of the client. What it answers depends on the ids in the request, so
    each test picks its scenario by the ids it uses:

        STATUS 404       ERROR 404 "task 404 not found"
        STATUS 111       no answer now; the next STATUS first answers it late
        STATUS 333       DONE {7 succeeded "r7"}, DONE {7 again}, the reply,
                         then DONE {8 dead "boom"}
        STATS            queues q0000 .. q2499 and workers w0000 .. w1199 in
                         pages of 1000 (after, after_worker); the first page
                         (no after) has submitted 11 and comes after EVENT
                         {77 running}, the others have submitted 99
        QUEUE            PONG (a reply of the wrong type)
        WATCH  555       DONE 555 only from the second WATCH naming it on
        WATCH  556       as 555 (the re-WATCH comes from an epoch change)
        WATCH  >= 9000   unknown
        SUBMIT           ids 100, 101, ... ("existing" when the key starts
                         with "old-"); a task named "instant" is reported
                         DONE before SUBMITTED (a finished, re-submitted key);
                         a flow of kind K gets the flow id 40 + K
        LIST  flow 77    tasks 10001 .. 12345, paged by after_id and limit
        STATUS >= 10001  every id found with ref "n<id>", but 10013 (gone)
        PING             PONG with the current epoch

    test_refused_handshake_fails_at_once talks to a CURVE ROUTER of its own
    whose ZAP handler refuses every certificate.

    The test thread talks to the fixture over the actor pipe: "COUNT TYPE"
    (requests of that type received so far), "EPOCH n", "PAYLOADS" (the
    payloads of the last SUBMIT joined by '|').
*/

#include "arb_client.h"
#include "arb_stats_pages.h"

#include <setjmp.h>
#include <stdarg.h>
#include <unistd.h>
#include <cmocka.h>

//  ---------------------------------------------------------------------
//  The scripted broker.

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    int count[ARB_MSG_TYPE_MAX];  //  requests received, by type
    int watched_555;              //  WATCHes that named 555 or 556
    uint64_t epoch;
    uint64_t next_id;
    arb_msg_t *held;     //  owned: the request answered late
    char payloads[256];  //  of the last SUBMIT
    char flow[256];      //  "KIND NAME" of the last SUBMIT
} s_fake_t;

#define FLOW_FIRST 10001  //  the tasks of flow 77
#define FLOW_LAST  12345
#define FLOW_GONE  10013  //  listed, but gone when STATUS asks

static void
s_send_done (s_fake_t *fake, arb_msg_t *request, uint64_t id, int state, const char *text)
{
    arb_msg_t *done = arb_msg_new (ARB_MSG_DONE, 0);
    arb_msg_set_routing_id (done, arb_msg_routing_id (request));
    arb_done_body_t *body = arb_msg_done (done);
    arb_done_task_t *task =
        (arb_done_task_t *) arb_msg_grow (done, &body->tasks, sizeof (arb_done_task_t), 1);
    task->id = id;
    task->state = (uint32_t) state;
    task->attempts = 1;
    if (state == ARB_STATE_SUCCEEDED)
        task->result = zframe_new (text, strlen (text));
    else
        task->error = text;
    arb_msg_send (&done, fake->router);
}

static void
s_send_event (s_fake_t *fake, arb_msg_t *request)
{
    arb_msg_t *event = arb_msg_new (ARB_MSG_EVENT, 0);
    arb_msg_set_routing_id (event, arb_msg_routing_id (request));
    arb_event_body_t *body = arb_msg_event (event);
    arb_event_info_t *info =
        (arb_event_info_t *) arb_msg_grow (event, &body->events, sizeof (arb_event_info_t), 1);
    info->id = 77;
    info->state = ARB_STATE_RUNNING;
    arb_msg_send (&event, fake->router);
}

static void
s_reply_status (s_fake_t *fake, arb_msg_t *request, uint64_t id)
{
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_STATUS_REPLY);
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    arb_task_info_t *task =
        (arb_task_info_t *) arb_msg_grow (reply, &body->tasks, sizeof (arb_task_info_t), 1);
    task->id = id;
    task->found = true;
    task->state = ARB_STATE_READY;
    arb_msg_send (&reply, fake->router);
}

//  STATUS of the tasks of flow 77: each with its ref, but one gone.
static void
s_reply_flow_status (s_fake_t *fake, arb_msg_t *request)
{
    arb_ids_t *ids = &arb_msg_status (request)->ids;
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_STATUS_REPLY);
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    arb_task_info_t *tasks =
        (arb_task_info_t *) arb_msg_grow (reply, &body->tasks, sizeof (arb_task_info_t), ids->n);
    for (size_t i = 0; i < ids->n; i++) {
        char ref[32];
        snprintf (ref, sizeof (ref), "n%" PRIu64, ids->v[i]);
        tasks[i].id = ids->v[i];
        tasks[i].found = ids->v[i] != FLOW_GONE;
        tasks[i].state = tasks[i].found ? ARB_STATE_SUCCEEDED : 0;
        tasks[i].flow = tasks[i].found ? 77 : 0;
        tasks[i].ref = tasks[i].found ? arb_msg_strdup (reply, ref) : NULL;
    }
    arb_msg_send (&reply, fake->router);
    arb_msg_destroy (&request);
}

static void
s_on_list (s_fake_t *fake, arb_msg_t *request)
{
    arb_list_body_t *body = arb_msg_list (request);
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_LIST_REPLY);
    arb_list_reply_body_t *out = arb_msg_list_reply (reply);
    uint64_t limit = body->limit ? body->limit : 1000;
    uint64_t id = body->after_id < FLOW_FIRST ? FLOW_FIRST : body->after_id + 1;
    for (; body->flow == 77 && id <= FLOW_LAST && out->tasks.n < limit; id++) {
        arb_task_info_t *task =
            (arb_task_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (arb_task_info_t), 1);
        task->id = id;
        task->found = true;
        task->state = ARB_STATE_SUCCEEDED;
    }
    out->more = body->flow == 77 && id <= FLOW_LAST;
    arb_msg_send (&reply, fake->router);
    arb_msg_destroy (&request);
}

#define STATS_QUEUES  2500
#define STATS_WORKERS 1200

//  A page of STATS: the queues (workers) whose names sort after the
//  request's after (after_worker), at most 1000 of each.
static void
s_on_stats (s_fake_t *fake, arb_msg_t *request)
{
    arb_stats_body_t *body = arb_msg_stats (request);
    bool first = !body->after && !body->after_worker;
    if (first)
        s_send_event (fake, request);
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_STATS_REPLY);
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    out->submitted = first ? 11 : 99;
    int q = body->after ? atoi (body->after + 1) + 1 : 0;
    for (; q < STATS_QUEUES && out->queues.n < 1000; q++) {
        char name[16];
        snprintf (name, sizeof (name), "q%04d", q);
        arb_queue_info_t *queue =
            (arb_queue_info_t *) arb_msg_grow (reply, &out->queues, sizeof (arb_queue_info_t), 1);
        queue->name = arb_msg_strdup (reply, name);
        queue->consumers = (uint32_t) q % 3;
    }
    out->more = q < STATS_QUEUES;
    int w = body->after_worker ? atoi (body->after_worker + 1) + 1 : 0;
    for (; w < STATS_WORKERS && out->workers.n < 1000; w++) {
        char name[16];
        snprintf (name, sizeof (name), "w%04d", w);
        arb_worker_stats_t *worker = (arb_worker_stats_t *) arb_msg_grow (
            reply, &out->workers, sizeof (arb_worker_stats_t), 1);
        worker->name = arb_msg_strdup (reply, name);
        worker->identity = worker->name;
    }
    out->more_workers = w < STATS_WORKERS;
    arb_msg_send (&reply, fake->router);
    arb_msg_destroy (&request);
}

static void
s_on_status (s_fake_t *fake, arb_msg_t *request)
{
    arb_status_body_t *body = arb_msg_status (request);
    uint64_t id = body->ids.n ? body->ids.v[0] : 0;
    if (id >= FLOW_FIRST) {
        s_reply_flow_status (fake, request);
        return;
    }
    if (id == 404) {
        arb_msg_t *error = arb_msg_new_error (request, ARB_ERR_NOT_FOUND, "task 404 not found");
        arb_msg_send (&error, fake->router);
        arb_msg_destroy (&request);
        return;
    }
    if (id == 111) {
        arb_msg_destroy (&fake->held);
        fake->held = request;
        return;
    }
    if (fake->held) {
        s_reply_status (fake, fake->held, 111);
        arb_msg_destroy (&fake->held);
    }
    if (id == 333) {
        s_send_done (fake, request, 7, ARB_STATE_SUCCEEDED, "r7");
        s_send_done (fake, request, 7, ARB_STATE_SUCCEEDED, "r7");
    }
    s_reply_status (fake, request, id);
    if (id == 333)
        s_send_done (fake, request, 8, ARB_STATE_DEAD, "boom");
    arb_msg_destroy (&request);
}

static void
s_on_watch (s_fake_t *fake, arb_msg_t *request)
{
    arb_ids_t *ids = &arb_msg_watch (request)->ids;
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_WATCHING);
    arb_watching_body_t *body = arb_msg_watching (reply);
    body->unknown.v = (uint64_t *) arb_msg_alloc (reply, ids->n * sizeof (uint64_t));
    bool later = false;
    for (size_t i = 0; i < ids->n; i++) {
        if (ids->v[i] >= 9000)
            body->unknown.v[body->unknown.n++] = ids->v[i];
        else
            body->watching++;
        if (ids->v[i] == 555 || ids->v[i] == 556)
            later = ++fake->watched_555 >= 2;
    }
    arb_msg_send (&reply, fake->router);
    if (later)
        s_send_done (fake, request, ids->v[0], ARB_STATE_SUCCEEDED, "late");
    arb_msg_destroy (&request);
}

static void
s_on_submit (s_fake_t *fake, arb_msg_t *request)
{
    arb_submit_body_t *body = arb_msg_submit (request);
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_SUBMITTED);
    arb_submitted_body_t *submitted = arb_msg_submitted (reply);
    fake->payloads[0] = 0;
    snprintf (fake->flow, sizeof (fake->flow), "%u %s", body->flow_kind,
              body->flow_name ? body->flow_name : "-");
    if (body->flow_kind)
        submitted->flow = 40 + body->flow_kind;
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_task_spec_t *spec = &body->tasks.v[i];
        arb_submitted_task_t *task = (arb_submitted_task_t *) arb_msg_grow (
            reply, &submitted->tasks, sizeof (arb_submitted_task_t), 1);
        task->id = fake->next_id++;
        task->existing = spec->key && strncmp (spec->key, "old-", 4) == 0;
        task->state = ARB_STATE_READY;
        if (body->watch && streq (spec->name, "instant"))
            s_send_done (fake, request, task->id, ARB_STATE_SUCCEEDED, "instant");
        size_t used = strlen (fake->payloads);
        snprintf (fake->payloads + used, sizeof (fake->payloads) - used, "%s%.*s", i ? "|" : "",
                  (int) zframe_size (spec->payload), (char *) zframe_data (spec->payload));
    }
    arb_msg_send (&reply, fake->router);
    arb_msg_destroy (&request);
}

static void
s_on_request (s_fake_t *fake, arb_msg_t *request)
{
    fake->count[arb_msg_type (request)]++;
    arb_msg_t *reply;
    switch (arb_msg_type (request)) {
        case ARB_MSG_PING:
            reply = arb_msg_new_reply (request, ARB_MSG_PONG);
            arb_msg_pong (reply)->epoch = fake->epoch;
            arb_msg_pong (reply)->version = ARB_VERSION;
            arb_msg_send (&reply, fake->router);
            break;
        case ARB_MSG_STATUS:
            s_on_status (fake, request);
            return;
        case ARB_MSG_WATCH:
            s_on_watch (fake, request);
            return;
        case ARB_MSG_SUBMIT:
            s_on_submit (fake, request);
            return;
        case ARB_MSG_LIST:
            s_on_list (fake, request);
            return;
        case ARB_MSG_STATS:
            s_on_stats (fake, request);
            return;
        case ARB_MSG_QUEUE:
            reply = arb_msg_new_reply (request, ARB_MSG_PONG);  //  the wrong type
            arb_msg_send (&reply, fake->router);
            break;
        default:
            reply = arb_msg_new_error (request, ARB_ERR_BAD_REQUEST, "not scripted");
            arb_msg_send (&reply, fake->router);
            break;
    }
    arb_msg_destroy (&request);
}

//  Returns false when told to end.
static bool
s_on_command (s_fake_t *fake)
{
    char *command = zstr_recv (fake->pipe);
    if (!command || streq (command, "$TERM")) {
        zstr_free (&command);
        return false;
    }
    if (strncmp (command, "COUNT ", 6) == 0) {
        int type = 0;
        for (int t = 1; t < ARB_MSG_TYPE_MAX; t++)
            if (arb_msg_type_name (t) && streq (arb_msg_type_name (t), command + 6))
                type = t;
        zstr_sendf (fake->pipe, "%d", fake->count[type]);
    }
    else if (strncmp (command, "EPOCH ", 6) == 0) {
        fake->epoch = strtoull (command + 6, NULL, 10);
        zstr_send (fake->pipe, "ok");
    }
    else if (streq (command, "PAYLOADS"))
        zstr_send (fake->pipe, fake->payloads);
    else if (streq (command, "FLOW"))
        zstr_send (fake->pipe, fake->flow);
    zstr_free (&command);
    return true;
}

static void
s_fake_actor (zsock_t *pipe, void *args)
{
    (void) args;
    s_fake_t fake = {.pipe = pipe, .epoch = 1, .next_id = 100};
    fake.router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (fake.router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
    zpoller_t *poller = zpoller_new (pipe, fake.router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            if (!s_on_command (&fake))
                break;
        }
        else if (which == fake.router) {
            arb_msg_t *request;
            if (arb_msg_recv (fake.router, NULL, &request) == 0)
                s_on_request (&fake, request);
            else
                arb_msg_destroy (&request);
        }
        else
            break;
    }
    zpoller_destroy (&poller);
    arb_msg_destroy (&fake.held);
    zsock_destroy (&fake.router);
}

//  ---------------------------------------------------------------------
//  Fixture.

typedef struct {
    zactor_t *fake;
    char *endpoint;
    arb_client_t *client;
} s_test_t;

static int
s_setup (void **state)
{
    s_test_t *test = (s_test_t *) zmalloc (sizeof (s_test_t));
    test->fake = zactor_new (s_fake_actor, NULL);
    test->endpoint = zstr_recv (test->fake);
    test->client = arb_client_new (test->endpoint);
    assert_non_null (test->client);
    *state = test;
    return 0;
}

static int
s_teardown (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_client_destroy (&test->client);
    zactor_destroy (&test->fake);
    zstr_free (&test->endpoint);
    free (test);
    return 0;
}

static int
s_fake_count (s_test_t *test, const char *type)
{
    zstr_sendf (test->fake, "COUNT %s", type);
    char *reply = zstr_recv (test->fake);
    int count = atoi (reply);
    zstr_free (&reply);
    return count;
}

static void
s_fake_command (s_test_t *test, const char *command, char *out, size_t size)
{
    zstr_send (test->fake, command);
    char *reply = zstr_recv (test->fake);
    snprintf (out, size, "%s", reply);
    zstr_free (&reply);
}

static arb_msg_t *
s_status (s_test_t *test, uint64_t id)
{
    arb_msg_t *request = arb_client_request_new (test->client, ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = (uint64_t *) arb_msg_alloc (request, sizeof (uint64_t));
    body->ids.v[0] = id;
    body->ids.n = 1;
    return arb_client_request (test->client, &request);
}

static void
s_expect_done (arb_done_t *done, uint64_t id, int state, const char *text)
{
    assert_non_null (done);
    assert_int_equal (done->id, id);
    assert_int_equal (done->state, state);
    if (state == ARB_STATE_SUCCEEDED) {
        assert_non_null (done->result);
        assert_int_equal (zframe_size (done->result), strlen (text));
        assert_memory_equal (zframe_data (done->result), text, strlen (text));
    }
    else
        assert_string_equal (done->error, text);
}

static arb_task_spec_t
s_spec (const char *name, const char *key, const char *payload)
{
    arb_task_spec_t spec = {.name = name, .key = key};
    spec.payload = zframe_new (payload, strlen (payload));
    return spec;
}

//  ---------------------------------------------------------------------
//  Tests.

static void
test_submit_round_trip (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_task_spec_t specs[3] = {
        s_spec ("add", NULL, "one"),
        s_spec ("add", "old-1", ""),
        s_spec ("mul", "k3", "three"),
    };
    uint64_t ids[3] = {0};
    bool existing[3] = {true, false, true};
    assert_int_equal (arb_client_submit (test->client, specs, 3, false, ids, existing), 0);
    assert_null (arb_client_error (test->client));
    assert_int_equal (ids[0], 100);
    assert_int_equal (ids[1], 101);
    assert_int_equal (ids[2], 102);
    assert_false (existing[0]);
    assert_true (existing[1]);
    assert_false (existing[2]);
    for (int i = 0; i < 3; i++)
        assert_null (specs[i].payload);  //  taken
    char payloads[256];
    s_fake_command (test, "PAYLOADS", payloads, sizeof (payloads));
    assert_string_equal (payloads, "one||three");
    //  without watch nothing is outstanding
    assert_int_equal (arb_client_watching (test->client), 0);
    assert_null (arb_client_next (test->client, 0));
    assert_non_null (strstr (arb_client_error (test->client), "no watched task"));
}

static void
test_submit_flow_names_the_flow (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_task_spec_t specs[2] = {s_spec ("a", NULL, "x"), s_spec ("b", NULL, "")};
    specs[0].ref = "first";
    specs[1].ref = "second";
    arb_dep_t dep = {.ref = "first"};
    specs[1].after.v = &dep;
    specs[1].after.n = 1;
    uint64_t ids[2] = {0}, flow = 0;
    assert_int_equal (arb_client_submit_flow (test->client, ARB_FLOW_GROUP, "nightly", specs, 2,
                                              false, ids, &flow),
                      0);
    assert_int_equal (flow, 40 + ARB_FLOW_GROUP);
    assert_int_equal (ids[1], 101);
    char seen[256];
    s_fake_command (test, "FLOW", seen, sizeof (seen));
    assert_string_equal (seen, "2 nightly");

    //  refused before sending, payloads taken all the same
    specs[0] = s_spec ("a", NULL, "x");
    assert_int_equal (
        arb_client_submit_flow (test->client, ARB_FLOW_NONE, "named", specs, 1, false, ids, &flow),
        -1);
    assert_null (specs[0].payload);
    assert_non_null (strstr (arb_client_error (test->client), "no flow has no name"));
    char long_ref[ARB_NAME_MAX + 2];
    memset (long_ref, 'r', sizeof (long_ref) - 1);
    long_ref[sizeof (long_ref) - 1] = 0;
    specs[0] = s_spec ("a", NULL, "x");
    specs[0].ref = long_ref;
    assert_int_equal (
        arb_client_submit_flow (test->client, ARB_FLOW_DAG, NULL, specs, 1, false, ids, &flow), -1);
    assert_string_equal (arb_client_error (test->client),
                         "tasks[0].ref: 201 bytes, over the 200-byte limit");
    assert_int_equal (s_fake_count (test, "SUBMIT"), 1);
}

typedef struct {
    uint64_t count;
    uint64_t last;  //  id of the last task given
    bool ordered;   //  every id above the one before
    bool refs;      //  every task had its ref
    uint64_t stop;  //  stop after this many (0: never)
} s_tally_t;

static int
s_tally (void *arg, arb_task_info_t *task)
{
    s_tally_t *tally = (s_tally_t *) arg;
    tally->ordered &= task->id > tally->last;
    tally->refs &= task->ref && task->ref[0] == 'n';
    tally->last = task->id;
    tally->count++;
    return tally->stop && tally->count == tally->stop;
}

static void
test_list_pages_and_flow_each (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_list_body_t filter = {.flow = 77};
    s_tally_t all = {.ordered = true};
    assert_int_equal (arb_client_list (test->client, &filter, 0, s_tally, &all), 0);
    assert_int_equal (all.count, FLOW_LAST - FLOW_FIRST + 1);
    assert_true (all.ordered);
    assert_int_equal (s_fake_count (test, "LIST"), 3);  //  pages of 1000

    s_tally_t some = {.ordered = true};
    assert_int_equal (arb_client_list (test->client, &filter, 1500, s_tally, &some), 1);
    assert_int_equal (some.count, 1500);
    s_tally_t stopped = {.ordered = true, .stop = 10};
    assert_int_equal (arb_client_list (test->client, &filter, 0, s_tally, &stopped), 1);
    assert_int_equal (stopped.count, 10);

    //  the flow's tasks with their refs, in order, but the one gone since LIST
    s_tally_t flow = {.ordered = true, .refs = true};
    int lists = s_fake_count (test, "LIST");
    assert_int_equal (arb_client_flow_each (test->client, 77, s_tally, &flow), 0);
    assert_int_equal (flow.count, FLOW_LAST - FLOW_FIRST);
    assert_true (flow.ordered);
    assert_true (flow.refs);
    assert_int_equal (s_fake_count (test, "LIST"), lists + 3);
    assert_int_equal (s_fake_count (test, "STATUS"), 10);  //  2345 ids, 256 a time

    s_tally_t none = {.ordered = true};
    assert_int_equal (arb_client_flow_each (test->client, 78, s_tally, &none), 0);
    assert_int_equal (none.count, 0);
}

static void
test_submit_watch_reports_each_task_once (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    //  "instant" is reported before its SUBMITTED arrives
    arb_task_spec_t specs[2] = {s_spec ("instant", "old-9", "x"), s_spec ("slow", NULL, "y")};
    uint64_t ids[2];
    assert_int_equal (arb_client_submit (test->client, specs, 2, true, ids, NULL), 0);
    arb_done_t *done = arb_client_next (test->client, 2000);
    s_expect_done (done, ids[0], ARB_STATE_SUCCEEDED, "instant");
    arb_done_destroy (&done);
    assert_null (done);
    assert_int_equal (arb_client_watching (test->client), 1);  //  "slow" still runs
    assert_null (arb_client_next (test->client, 50));
    assert_null (arb_client_error (test->client));  //  a plain timeout
}

static void
test_error_reply_has_code_and_reason (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    assert_null (s_status (test, 404));
    assert_int_equal (arb_client_error_code (test->client), ARB_ERR_NOT_FOUND);
    assert_string_equal (arb_client_error (test->client), "task 404 not found");
    //  the next call starts clean
    arb_msg_t *reply = s_status (test, 5);
    assert_non_null (reply);
    assert_null (arb_client_error (test->client));
    assert_int_equal (arb_client_error_code (test->client), 0);
    arb_msg_destroy (&reply);
}

static void
test_stale_reply_is_dropped (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_client_set_timeout (test->client, 200);
    int64_t started = zclock_mono ();
    assert_null (s_status (test, 111));
    int64_t took = zclock_mono () - started;
    assert_true (took >= 190 && took < 1500);
    assert_non_null (strstr (arb_client_error (test->client), "did not answer within 0.2 s"));
    assert_int_equal (arb_client_error_code (test->client), 0);

    //  the late answer to 111 arrives just before the answer to 222
    arb_msg_t *reply = s_status (test, 222);
    assert_non_null (reply);
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    assert_int_equal (body->tasks.n, 1);
    assert_int_equal (body->tasks.v[0].id, 222);
    assert_true (arb_msg_reqid (reply) == 2);
    arb_msg_destroy (&reply);
    //  and it was not kept for recv either
    assert_null (arb_client_recv (test->client, 100));
}

static void
test_done_during_request_is_kept (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    uint64_t ids[2] = {7, 8};
    assert_int_equal (arb_client_watch (test->client, ids, 2), 0);
    assert_int_equal (arb_client_watching (test->client), 2);
    arb_msg_t *reply = s_status (test, 333);  //  DONE 7 (twice) comes before this reply
    assert_non_null (reply);
    arb_msg_destroy (&reply);

    arb_done_t *done = arb_client_next (test->client, 2000);
    s_expect_done (done, 7, ARB_STATE_SUCCEEDED, "r7");
    arb_done_destroy (&done);
    done = arb_client_next (test->client, 2000);
    s_expect_done (done, 8, ARB_STATE_DEAD, "boom");
    arb_done_destroy (&done);
    //  the duplicate report of 7 was dropped
    assert_int_equal (arb_client_watching (test->client), 0);
    assert_null (arb_client_next (test->client, 100));
    assert_non_null (strstr (arb_client_error (test->client), "no watched task"));
    assert_null (arb_client_recv (test->client, 50));
}

static void
test_event_during_request_is_kept (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_msg_t *request = arb_client_request_new (test->client, ARB_MSG_STATS);
    arb_msg_t *reply = arb_client_request (test->client, &request);
    assert_non_null (reply);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_STATS_REPLY);
    arb_msg_destroy (&reply);
    arb_msg_t *event = arb_client_recv (test->client, 1000);
    assert_non_null (event);
    assert_int_equal (arb_msg_type (event), ARB_MSG_EVENT);
    assert_int_equal (arb_msg_event (event)->events.v[0].id, 77);
    arb_msg_destroy (&event);
}

static void
s_take_stats (void *arg, arb_stats_reply_body_t *stats)
{
    arb_stats_reply_body_t *copy = (arb_stats_reply_body_t *) arg;
    *copy = *stats;
    copy->queues.v = NULL;  //  borrowed for the call only
    copy->workers.v = NULL;
    char name[32];
    for (size_t i = 0; i < stats->queues.n; i++) {
        snprintf (name, sizeof (name), "q%04zu", i);
        assert_string_equal (stats->queues.v[i].name, name);
        assert_int_equal (stats->queues.v[i].consumers, i % 3);
    }
    for (size_t i = 0; i < stats->workers.n; i++) {
        snprintf (name, sizeof (name), "w%04zu", i);
        assert_string_equal (stats->workers.v[i].identity, name);
    }
}

//  arb_client_stats reads every page, and calls back once with them all.
static void
test_stats_reads_every_page (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_stats_reply_body_t stats = {0};
    assert_int_equal (arb_client_stats (test->client, s_take_stats, &stats), 0);
    assert_int_equal (stats.queues.n, STATS_QUEUES);
    assert_int_equal (stats.workers.n, STATS_WORKERS);
    assert_int_equal (stats.submitted, 11);  //  the first page's counters
    assert_false (stats.more || stats.more_workers);
    assert_int_equal (s_fake_count (test, "STATS"), 3);
}

//  A STATS_REPLY of n queues named PREFIX0.., with more.
static arb_msg_t *
s_stats_page (const char *prefix, size_t n, bool more)
{
    arb_msg_t *reply = arb_msg_new (ARB_MSG_STATS_REPLY, 1);
    arb_stats_reply_body_t *body = arb_msg_stats_reply (reply);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf (name, sizeof (name), "%s%zu", prefix, i);
        arb_queue_info_t *queue =
            (arb_queue_info_t *) arb_msg_grow (reply, &body->queues, sizeof (arb_queue_info_t), 1);
        queue->name = arb_msg_strdup (reply, name);
    }
    body->more = more;
    return reply;
}

static void
test_stats_pages_edges (void **state)
{
    (void) state;
    //  the next request names the last queue of the pages so far
    arb_stats_pages_t *pages = arb_stats_pages_new (NULL);
    arb_msg_t *request = arb_msg_new (ARB_MSG_STATS, 1);
    arb_stats_pages_request (pages, request);
    assert_null (arb_msg_stats (request)->after);
    arb_msg_destroy (&request);
    arb_msg_t *reply = s_stats_page ("a", 2, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), 1);
    assert_null (reply);
    request = arb_msg_new (ARB_MSG_STATS, 2);
    arb_stats_pages_request (pages, request);
    assert_string_equal (arb_msg_stats (request)->after, "a1");
    assert_null (arb_msg_stats (request)->queue);
    arb_msg_destroy (&request);
    //  a page that says more but brings nothing ends it
    reply = s_stats_page ("b", 0, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), 0);
    assert_int_equal (arb_stats_pages_reply (pages)->queues.n, 2);
    assert_int_equal (arb_stats_pages_count (pages), 2);
    //  anything but a STATS_REPLY fails
    reply = arb_msg_new (ARB_MSG_PONG, 1);
    assert_int_equal (arb_stats_pages_add (pages, &reply), -1);
    assert_null (reply);
    arb_stats_pages_destroy (&pages);
    assert_null (pages);

    //  one queue asked for: one page, whatever it says
    pages = arb_stats_pages_new ("only");
    request = arb_msg_new (ARB_MSG_STATS, 1);
    arb_stats_pages_request (pages, request);
    assert_string_equal (arb_msg_stats (request)->queue, "only");
    arb_msg_destroy (&request);
    reply = s_stats_page ("only", 1, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), 0);
    arb_stats_pages_destroy (&pages);

    //  at most ARB_STATS_PAGES_MAX pages
    pages = arb_stats_pages_new (NULL);
    for (int i = 0; i < ARB_STATS_PAGES_MAX; i++) {
        reply = s_stats_page ("c", 1, true);
        assert_int_equal (arb_stats_pages_add (pages, &reply), 1);
    }
    reply = s_stats_page ("c", 1, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), -1);
    assert_int_equal (arb_stats_pages_reply (pages)->queues.n, ARB_STATS_PAGES_MAX);
    arb_stats_pages_destroy (&pages);

    //  pages dropped as they are used: the next request goes on after
    //  them, the merged reply holds only the pages since, and the bound
    //  counts them all
    pages = arb_stats_pages_new (NULL);
    reply = s_stats_page ("d", 3, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), 1);
    arb_stats_pages_drop (pages);
    assert_int_equal (arb_stats_pages_reply (pages)->queues.n, 0);
    request = arb_msg_new (ARB_MSG_STATS, 3);
    arb_stats_pages_request (pages, request);
    assert_string_equal (arb_msg_stats (request)->after, "d2");
    arb_msg_destroy (&request);
    arb_stats_pages_drop (pages);  //  nothing taken since: the place stays
    request = arb_msg_new (ARB_MSG_STATS, 4);
    arb_stats_pages_request (pages, request);
    assert_string_equal (arb_msg_stats (request)->after, "d2");
    arb_msg_destroy (&request);
    reply = s_stats_page ("e", 2, false);
    assert_int_equal (arb_stats_pages_add (pages, &reply), 0);
    assert_int_equal (arb_stats_pages_reply (pages)->queues.n, 2);
    assert_string_equal (arb_stats_pages_reply (pages)->queues.v[0].name, "e0");
    assert_int_equal (arb_stats_pages_count (pages), 2);
    for (int i = 2; i < ARB_STATS_PAGES_MAX; i++) {
        reply = s_stats_page ("f", 1, true);
        assert_int_equal (arb_stats_pages_add (pages, &reply), 1);
        arb_stats_pages_drop (pages);
    }
    reply = s_stats_page ("f", 1, true);
    assert_int_equal (arb_stats_pages_add (pages, &reply), -1);
    arb_stats_pages_destroy (&pages);
}

static void
test_reply_of_wrong_type_is_refused (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_msg_t *request = arb_client_request_new (test->client, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = "q";
    arb_msg_queue (request)->op = "pause";
    assert_null (arb_client_request (test->client, &request));
    assert_null (request);
    assert_non_null (strstr (arb_client_error (test->client), "answered QUEUE with PONG"));
    //  a request not made by arb_client_request_new cannot be matched to its reply
    request = arb_msg_new (ARB_MSG_PING, 0);
    assert_null (arb_client_request (test->client, &request));
    assert_null (request);
    assert_non_null (strstr (arb_client_error (test->client), "arb_client_request_new"));
}

static void
test_rewatch_after_silence (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_client_set_rewatch (test->client, 100);
    uint64_t id = 555;
    assert_int_equal (arb_client_watch (test->client, &id, 1), 0);
    //  the fixture reports 555 only when it is watched a second time
    arb_done_t *done = arb_client_next (test->client, 3000);
    s_expect_done (done, 555, ARB_STATE_SUCCEEDED, "late");
    arb_done_destroy (&done);
    assert_true (s_fake_count (test, "WATCH") >= 2);
    assert_true (s_fake_count (test, "PING") >= 1);
}

static void
test_rewatch_on_new_epoch (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_client_set_rewatch (test->client, 60000);  //  no silence in this test
    uint64_t id = 556;
    assert_int_equal (arb_client_watch (test->client, &id, 1), 0);
    uint64_t epoch = 0;
    //  the client pinged on its own after WATCH; this ping comes after it
    assert_int_equal (arb_client_ping (test->client, &epoch), 0);
    assert_int_equal (epoch, 1);
    assert_null (arb_client_next (test->client, 100));
    assert_int_equal (s_fake_count (test, "WATCH"), 1);

    char ok[16];
    s_fake_command (test, "EPOCH 2", ok, sizeof (ok));  //  "the broker restarted"
    assert_int_equal (arb_client_ping (test->client, &epoch), 0);
    assert_int_equal (epoch, 2);
    arb_done_t *done = arb_client_next (test->client, 2000);
    s_expect_done (done, 556, ARB_STATE_SUCCEEDED, "late");
    arb_done_destroy (&done);
    assert_int_equal (s_fake_count (test, "WATCH"), 2);
}

static void
test_unknown_id_is_reported (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    uint64_t ids[2] = {9001, 9002};
    assert_int_equal (arb_client_watch (test->client, ids, 2), 0);
    for (int i = 0; i < 2; i++) {
        arb_done_t *done = arb_client_next (test->client, 1000);
        assert_non_null (done);
        assert_int_equal (done->id, ids[i]);
        assert_int_equal (done->state, ARB_DONE_UNKNOWN);
        assert_string_equal (done->error, "no such task");
        arb_done_destroy (&done);
    }
    assert_int_equal (arb_client_watching (test->client), 0);
}

static void
test_async_send_and_recv (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    arb_msg_t *ping = arb_client_request_new (test->client, ARB_MSG_PING);
    uint32_t first = arb_client_send (test->client, &ping);
    assert_null (ping);
    arb_msg_t *submit = arb_client_request_new (test->client, ARB_MSG_SUBMIT);
    arb_submit_body_t *body = arb_msg_submit (submit);
    arb_task_spec_t *spec =
        (arb_task_spec_t *) arb_msg_grow (submit, &body->tasks, sizeof (arb_task_spec_t), 1);
    spec->name = "instant";
    body->watch = true;
    uint32_t second = arb_client_send (test->client, &submit);
    assert_int_equal (first, 1);
    assert_int_equal (second, 2);

    arb_msg_t *msg = arb_client_recv (test->client, 2000);
    assert_non_null (msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_PONG);
    assert_int_equal (arb_msg_reqid (msg), first);
    arb_msg_destroy (&msg);
    //  the DONE of the instant task came before SUBMITTED: it waits in the
    //  client until SUBMITTED names its id, then follows it
    msg = arb_client_recv (test->client, 2000);
    assert_non_null (msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_SUBMITTED);
    assert_int_equal (arb_msg_reqid (msg), second);
    uint64_t id = arb_msg_submitted (msg)->tasks.v[0].id;
    arb_msg_destroy (&msg);
    msg = arb_client_recv (test->client, 2000);
    assert_non_null (msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_DONE);
    assert_int_equal (arb_msg_done (msg)->tasks.n, 1);
    assert_int_equal (arb_msg_done (msg)->tasks.v[0].id, id);
    arb_msg_destroy (&msg);
    assert_null (arb_client_recv (test->client, 50));
    assert_null (arb_client_error (test->client));
}

static void
test_unreachable_broker_fails_in_time (void **state)
{
    (void) state;
    //  an endpoint nobody listens on. Not a TCP port freed after a bind:
    //  a test binary running in parallel could bind it for its fixture.
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "ipc:///tmp/arbiter-test-nobody-%d", (int) getpid ());
    arb_client_t *client = arb_client_new (endpoint);
    assert_non_null (client);
    arb_client_set_timeout (client, 300);

    int64_t started = zclock_mono ();
    assert_int_equal (arb_client_ping (client, NULL), -1);
    int64_t took = zclock_mono () - started;
    assert_true (took >= 290 && took < 1500);
    //  no connection was ever made: said so, not "did not answer"
    char expect[192];
    snprintf (expect, sizeof (expect),
              "cannot reach the broker at %s: no connection within 0.3 s (is arbiterd running "
              "there?)",
              endpoint);
    assert_string_equal (arb_client_error (client), expect);
    assert_int_equal (arb_client_error_code (client), 0);

    //  and a submit that never left is not of unknown outcome
    arb_task_spec_t spec = s_spec ("add", "k1", "payload");
    uint64_t id;
    assert_int_equal (arb_client_submit (client, &spec, 1, true, &id, NULL), -1);
    assert_string_equal (arb_client_error (client), expect);

    //  a watch that is never answered: the keep-alive probes within 50 ms,
    //  and next, though told to wait forever, gives up once the probe has
    //  gone unanswered for the timeout
    arb_client_set_rewatch (client, 50);
    started = zclock_mono ();
    assert_int_equal (arb_client_watch (client, &id, 1), -1);
    assert_int_equal (arb_client_watching (client), 1);
    assert_null (arb_client_next (client, -1));
    took = zclock_mono () - started;
    assert_true (took >= 340 && took < 1500);
    assert_string_equal (arb_client_error (client), expect);
    arb_client_destroy (&client);
}

//  A submit given up because nothing listened is not sent later: a broker
//  that starts at that endpoint afterwards gets nothing from the client.
static void
test_unreachable_submit_is_not_sent_later (void **state)
{
    (void) state;
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "ipc:///tmp/arbiter-test-later-%d", (int) getpid ());
    arb_client_t *client = arb_client_new (endpoint);
    assert_non_null (client);
    arb_client_set_timeout (client, 200);
    arb_task_spec_t spec = s_spec ("add", NULL, "payload");
    uint64_t id;
    assert_int_equal (arb_client_submit (client, &spec, 1, false, &id, NULL), -1);
    assert_non_null (strstr (arb_client_error (client), "cannot reach the broker"));

    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert_int_equal (zsock_bind (router, "%s", endpoint), 0);
    zpoller_t *poller = zpoller_new (router, NULL);
    void *which = zpoller_wait (poller, 700);
    if (which) {
        zmsg_t *got = zmsg_recv (router);
        zmsg_destroy (&got);
        fail_msg ("the broker that came later got a message from the client");
    }
    zpoller_destroy (&poller);
    //  the client works with it: a request now reaches it
    zsock_set_rcvtimeo (router, 2000);
    arb_client_set_timeout (client, 100);
    assert_int_equal (arb_client_ping (client, NULL), -1);
    zmsg_t *ping = zmsg_recv (router);
    assert_non_null (ping);
    zmsg_destroy (&ping);
    zsock_destroy (&router);
    arb_client_destroy (&client);
    //  libzmq may close the socket after the process has gone on: its file
    //  would stay in /tmp, one a run
    unlink (endpoint + strlen ("ipc://"));
}

//  A broker that refuses the client's handshake: every call fails at once,
//  well before the timeout, saying why. The second ping is sent after a
//  ZAP 400, after which libzmq never connects again: only the watcher,
//  asked before the send, can tell.
static void
s_refused_twice (arb_client_t *client, const char *why)
{
    arb_client_set_timeout (client, 10000);
    for (int i = 0; i < 2; i++) {
        int64_t started = zclock_mono ();
        assert_int_equal (arb_client_ping (client, NULL), -1);
        assert_true (zclock_mono () - started < 5000);
        const char *error = arb_client_error (client);
        if (!strstr (error, "refused the connection: ") || !strstr (error, why))
            fail_msg ("not refused with \"%s\": %s", why, error);
        assert_int_equal (arb_client_error_code (client), 0);
    }
}

static void
test_refused_handshake_fails_at_once (void **state)
{
    (void) state;
    //  a CURVE server whose ZAP handler knows no certificate
    zactor_t *auth = zactor_new (zauth, NULL);
    zstr_sendx (auth, "CURVE", "/nonexistent/arbiter-test-no-certs", NULL);
    zsock_wait (auth);
    zcert_t *server = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_zap_domain (router, "arbiter");
    zsock_set_curve_server (router, 1);
    zcert_apply (server, router);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    const char *endpoint = zsock_endpoint (router);

    //  no certificate
    arb_client_t *client = arb_client_new_curve (endpoint, NULL);
    assert_non_null (client);
    s_refused_twice (client, "the broker requires CURVE");
    arb_client_destroy (&client);

    //  a certificate the broker does not allow
    char dir[] = "/tmp/test-client-XXXXXX", path[64], secret[80];
    assert_non_null (mkdtemp (dir));
    snprintf (path, sizeof (path), "%s/peer.cert", dir);
    snprintf (secret, sizeof (secret), "%s_secret", path);
    zcert_t *peer = zcert_new ();
    assert_int_equal (zcert_save (peer, path), 0);
    char why[256];
    arb_curve_t *curve = arb_curve_new (secret, zcert_public_txt (server), why, sizeof (why));
    assert_non_null (curve);
    client = arb_client_new_curve (endpoint, curve);
    assert_non_null (client);
    s_refused_twice (client, "the broker refused this peer's certificate (ZAP 400)");
    arb_client_destroy (&client);

    arb_curve_destroy (&curve);
    unlink (path);
    unlink (secret);
    assert_int_equal (rmdir (dir), 0);
    zcert_destroy (&peer);
    zsock_destroy (&router);
    zcert_destroy (&server);
    zactor_destroy (&auth);
}

static void
test_oversized_payload_is_refused_locally (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    size_t size = ARB_PAYLOAD_DEFAULT_MAX + 1;
    char *big = (char *) calloc (1, size);
    arb_task_spec_t specs[2] = {s_spec ("small", NULL, "ok"), {.name = "big"}};
    specs[1].payload = zframe_new (big, size);
    free (big);
    uint64_t ids[2];
    assert_int_equal (arb_client_submit (test->client, specs, 2, false, ids, NULL), -1);
    char expect[128];
    snprintf (expect, sizeof (expect), "tasks[1].payload: %zu bytes, over the %u-byte limit", size,
              ARB_PAYLOAD_DEFAULT_MAX);
    assert_string_equal (arb_client_error (test->client), expect);
    assert_null (specs[0].payload);
    assert_null (specs[1].payload);

    //  a smaller configured limit, and a task without a name
    arb_client_set_max_payload (test->client, 2);
    arb_task_spec_t spec = s_spec ("x", NULL, "abc");
    assert_int_equal (arb_client_submit (test->client, &spec, 1, false, ids, NULL), -1);
    assert_non_null (strstr (arb_client_error (test->client), "3 bytes, over the 2-byte limit"));
    spec = s_spec (NULL, NULL, "a");
    assert_int_equal (arb_client_submit (test->client, &spec, 1, false, ids, NULL), -1);
    assert_string_equal (arb_client_error (test->client), "tasks[0].name: a task needs a name");

    //  nothing reached the broker (the ping is ordered after any submit)
    assert_int_equal (arb_client_ping (test->client, NULL), 0);
    assert_int_equal (s_fake_count (test, "SUBMIT"), 0);
}

//  Names are printable UTF-8: the library refuses others before sending,
//  naming the field as the broker would.
static void
test_bad_names_are_refused_locally (void **state)
{
    s_test_t *test = (s_test_t *) *state;
    uint64_t ids[2], flow;
    arb_task_spec_t spec = s_spec ("two\nlines", NULL, "a");
    assert_int_equal (arb_client_submit (test->client, &spec, 1, false, ids, NULL), -1);
    assert_string_equal (arb_client_error (test->client),
                         "tasks[0].name: control character 0x0a at byte 4 (names are printable "
                         "UTF-8)");
    assert_int_equal (arb_client_error_code (test->client), 0);
    assert_null (spec.payload);

    arb_task_spec_t specs[2] = {s_spec ("a", NULL, ""), s_spec ("b", NULL, "")};
    specs[1].queue = "q\xff";
    assert_int_equal (arb_client_submit (test->client, specs, 2, false, ids, NULL), -1);
    assert_string_equal (arb_client_error (test->client),
                         "tasks[1].queue: invalid UTF-8 at byte 2 (names are printable UTF-8)");

    const char *endpoints[] = {"w1", "w\t2"};
    spec = s_spec ("a", NULL, "");
    spec.endpoints = (arb_strs_t){endpoints, 2};
    assert_int_equal (arb_client_submit (test->client, &spec, 1, false, ids, NULL), -1);
    assert_non_null (strstr (arb_client_error (test->client), "tasks[0].endpoints[1]: control"));

    spec = s_spec ("a", NULL, "");
    assert_int_equal (
        arb_client_submit_flow (test->client, ARB_FLOW_GROUP, "g\r", &spec, 1, false, ids, &flow),
        -1);
    assert_non_null (strstr (arb_client_error (test->client), "flow name: control character 0x0d"));

    assert_int_equal (arb_client_ping (test->client, NULL), 0);
    assert_int_equal (s_fake_count (test, "SUBMIT"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_submit_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_submit_flow_names_the_flow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_list_pages_and_flow_each, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_submit_watch_reports_each_task_once, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_error_reply_has_code_and_reason, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stale_reply_is_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_done_during_request_is_kept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_event_during_request_is_kept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reply_of_wrong_type_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rewatch_after_silence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rewatch_on_new_epoch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_id_is_reported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_async_send_and_recv, s_setup, s_teardown),
        cmocka_unit_test (test_unreachable_broker_fails_in_time),
        cmocka_unit_test (test_unreachable_submit_is_not_sent_later),
        cmocka_unit_test (test_refused_handshake_fails_at_once),
        cmocka_unit_test_setup_teardown (test_stats_reads_every_page, s_setup, s_teardown),
        cmocka_unit_test (test_stats_pages_edges),
        cmocka_unit_test_setup_teardown (test_oversized_payload_is_refused_locally, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_names_are_refused_locally, s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name ("client", tests, NULL, NULL);
}
