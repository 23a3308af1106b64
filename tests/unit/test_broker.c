/*  test_broker.c — the broker's loop: how much a turn reads, what it
    does when the disk fails its journal, and what a restart finds of a
    fan-out task.

    A burst of batched submits is read over several turns, each small
    enough for the journal's task log, rather than in one that the tables
    would have to take.

    The journal opens through the test VFS (arb_journal_faults.h), whose
    control file says which writes fail; the test drives the loop turn by
    turn (arb_broker_step) over an inproc socket, as a client and as a
    worker, and reads the journal beside it. It checks that a turn whose
    commit failed leaves nothing half done and every request of it
    answered 507, that memory is the journal's again, that requests that
    write are refused (507) and reads served, that a worker goes on, and
    that the broker takes writes again by itself when the disk does; and
    that a turn's DONEs and EVENTs leave after its commit, all of them and
    within their bounds, or never (its commit failed). */

#include "arb_broker.h"
#include "arb_journal.h"
#include "arb_journal_faults.h"
#include "journal_files.h"
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sqlite3.h>

typedef struct {
    char dir[64];
    char db[96];
    char endpoint[96];
    unsigned starts;  //  each start binds a name of its own (below)
    arb_broker_t *broker;
    zsock_t *client;  //  a DEALER to the broker
    zsock_t *worker;  //  another, as a worker; NULL until s_worker
    uint32_t reqid;
    size_t hot_max;  //  the broker's hot_max (0: its default)
} s_fx_t;

//  The control file of the test VFS (the same for the whole process).
static void
s_disk (const char *mode)
{
    FILE *f = fopen (getenv (ARB_JOURNAL_FAULTS_ENV), "w");
    assert_non_null (f);
    fputs (mode, f);
    fclose (f);
}

static void
s_start (s_fx_t *fx)
{
    //  an inproc name is free again only once libzmq's reaper has closed
    //  the socket that bound it, some time after arb_broker_destroy
    snprintf (fx->endpoint, sizeof (fx->endpoint), "inproc://%s-%u", fx->dir + 5, fx->starts++);
    arb_broker_config_t config;
    arb_broker_config_defaults (&config);
    config.endpoint = fx->endpoint;
    config.db_path = fx->db;
    config.heartbeat_ms = 100;
    config.liveness_ms = 2000;
    config.recovery_ms = 0;
    config.hot_max = fx->hot_max;
    fx->broker = arb_broker_new (&config);
    assert_non_null (fx->broker);
    fx->client = zsock_new_dealer (fx->endpoint);
    assert_non_null (fx->client);
}

static void
s_stop (s_fx_t *fx)
{
    zsock_destroy (&fx->client);
    zsock_destroy (&fx->worker);
    arb_broker_destroy (&fx->broker);
}

static int
s_setup (void **state)
{
    s_fx_t *fx = (s_fx_t *) calloc (1, sizeof (s_fx_t));
    tmpdir_make (fx->dir, sizeof (fx->dir), "broker");
    snprintf (fx->db, sizeof (fx->db), "%s/arbiter.db", fx->dir);
    s_disk ("");
    s_start (fx);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    s_disk ("");
    s_stop (fx);
    tmpdir_remove (fx->dir);
    free (fx);
    return 0;
}

//  ---------------------------------------------------------------------
//  Talking to the broker

//  Turns the loop until sock has a message that passes: of type (0: any
//  type but DONE, EVENT, HEARTBEAT and STOP) with reqid (0: any).
static arb_msg_t *
s_receive (s_fx_t *fx, zsock_t *sock, arb_msg_type_t type, uint32_t reqid, int turns)
{
    for (int turn = 0; turn < turns; turn++) {
        arb_broker_step (fx->broker, 10);
        while (zsock_events (sock) & ZMQ_POLLIN) {
            arb_msg_t *msg = NULL;
            assert_int_equal (arb_msg_recv (zsock_resolve (sock), NULL, &msg), 0);
            arb_msg_type_t got = arb_msg_type (msg);
            bool own = got != ARB_MSG_DONE && got != ARB_MSG_EVENT && got != ARB_MSG_HEARTBEAT
                       && got != ARB_MSG_STOP;
            if ((type ? got == type : own) && (!reqid || arb_msg_reqid (msg) == reqid))
                return msg;
            arb_msg_destroy (&msg);
        }
    }
    return NULL;
}

static uint32_t
s_send (s_fx_t *fx, zsock_t *sock, arb_msg_t *msg)
{
    uint32_t reqid = ++fx->reqid;
    arb_msg_set_reqid (msg, reqid);
    assert_int_equal (arb_msg_send (&msg, sock), 0);
    return reqid;
}

//  Sends a request and returns the broker's answer (failing the test
//  without one).
static arb_msg_t *
s_call (s_fx_t *fx, zsock_t *sock, arb_msg_t *msg)
{
    uint32_t reqid = s_send (fx, sock, msg);
    arb_msg_t *reply = s_receive (fx, sock, 0, reqid, 300);
    assert_non_null (reply);
    return reply;
}

//  The code of an ERROR, or 0 for any other answer; destroys it.
static int
s_code (arb_msg_t *reply)
{
    int code = arb_msg_type (reply) == ARB_MSG_ERROR ? (int) arb_msg_error (reply)->code : 0;
    if (code == ARB_ERR_JOURNAL_FULL)
        assert_non_null (strstr (arb_msg_error (reply)->reason, "journal: disk full"));
    arb_msg_destroy (&reply);
    return code;
}

static arb_msg_t *
s_submit_msg (const char *payload)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 0);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *spec =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_spec_t), 1);
    spec->name = "job";
    spec->payload = zframe_new (payload, strlen (payload));
    return msg;
}

//  A REGISTER of worker w1, one light slot.
static arb_msg_t *
s_register_msg (void)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_REGISTER, 0);
    arb_register_body_t *reg = arb_msg_register (msg);
    reg->name = "w1";
    reg->mode = "light";
    reg->slots = 1;
    reg->pid = 1;
    reg->host = "here";
    return msg;
}

//  Submits one task; returns its id, or 0 with the ERROR's code in *code.
static uint64_t
s_submit (s_fx_t *fx, const char *payload, int *code)
{
    arb_msg_t *reply = s_call (fx, fx->client, s_submit_msg (payload));
    uint64_t id = 0;
    *code = 0;
    if (arb_msg_type (reply) == ARB_MSG_SUBMITTED)
        id = arb_msg_submitted (reply)->tasks.v[0].id;
    else
        *code = (int) arb_msg_error (reply)->code;
    arb_msg_destroy (&reply);
    return id;
}

static arb_msg_t *
s_ids_msg (arb_msg_type_t type, uint64_t id)
{
    arb_msg_t *msg = arb_msg_new (type, 0);
    arb_ids_t *ids =
        type == ARB_MSG_STATUS ? &arb_msg_status (msg)->ids : &arb_msg_cancel (msg)->ids;
    *(uint64_t *) arb_msg_grow (msg, ids, sizeof (uint64_t), 1) = id;
    return msg;
}

//  The state STATUS says a task is in; 0 if the broker knows no such task.
static int
s_state (s_fx_t *fx, uint64_t id)
{
    arb_msg_t *reply = s_call (fx, fx->client, s_ids_msg (ARB_MSG_STATUS, id));
    assert_int_equal (arb_msg_type (reply), ARB_MSG_STATUS_REPLY);
    arb_task_info_t *info = &arb_msg_status_reply (reply)->tasks.v[0];
    int state = info->found ? (int) info->state : 0;
    arb_msg_destroy (&reply);
    return state;
}

static arb_msg_t *
s_meta_msg (const char *op, const char *key)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_META, 0);
    arb_meta_body_t *body = arb_msg_meta (msg);
    body->op = op;
    body->key = key;
    body->value = (arb_bin_t){(const uint8_t *) "v", 1};
    return msg;
}

//  Turns the loop until the journal takes writes again.
static void
s_wait_writable (s_fx_t *fx)
{
    for (int turn = 0; turn < 1000 && arb_broker_is_journal_full (fx->broker); turn++)
        arb_broker_step (fx->broker, 10);
    assert_false (arb_broker_is_journal_full (fx->broker));
}

//  The answer to request reqid (sent already) is a 507.
static void
s_expect_full (s_fx_t *fx, uint32_t reqid)
{
    arb_msg_t *reply = s_receive (fx, fx->client, 0, reqid, 300);
    assert_non_null (reply);
    assert_int_equal (s_code (reply), ARB_ERR_JOURNAL_FULL);
}

//  ---------------------------------------------------------------------
//  The journal beside the broker

//  The journal as a restart would find it: its file, WAL and task log
//  copied and opened by the journal, which replays the log into the
//  copy's tables, with no fault in the way; then the copy, read only.
static sqlite3 *
s_open_journal (s_fx_t *fx)
{
    char copy[300];
    snprintf (copy, sizeof (copy), "%s.copy", fx->db);
    journal_files_copy_journal (fx->db, copy);
    char mode[16] = "";
    FILE *f = fopen (getenv (ARB_JOURNAL_FAULTS_ENV), "r");
    if (f) {
        if (!fgets (mode, sizeof (mode), f))
            mode[0] = 0;
        fclose (f);
    }
    s_disk ("");
    arb_journal_t *journal = arb_journal_new (copy, ARB_SYNC_NORMAL);
    assert_non_null (journal);
    arb_journal_destroy (&journal);
    s_disk (mode);
    sqlite3 *db = NULL;
    char uri[320];
    snprintf (uri, sizeof (uri), "file:%s?mode=ro", copy);
    assert_int_equal (sqlite3_open_v2 (uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL),
                      SQLITE_OK);
    return db;
}

//  An integer the journal answers sql with; -1 without a row.
static int64_t
s_journal (s_fx_t *fx, const char *sql)
{
    sqlite3 *db = s_open_journal (fx);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK);
    int64_t value = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return value;
}

//  Memory is the journal: for every id up to last (and two beyond), the
//  broker knows the task exactly when the journal has its row, in the
//  journal's state (a running task is ready there); and STATS counts the
//  queue's unfinished tasks as the journal does.
static void
s_memory_is_journal (s_fx_t *fx, uint64_t last)
{
    int64_t open = 0;
    for (uint64_t id = 1; id <= last + 2; id++) {
        char sql[96];
        snprintf (sql, sizeof (sql), "SELECT state FROM tasks WHERE id = %" PRIu64, id);
        int64_t stored = s_journal (fx, sql);
        int state = s_state (fx, id);
        if (state == ARB_STATE_RUNNING)
            state = ARB_STATE_READY;
        assert_int_equal (state, stored < 0 ? 0 : stored);
        open += stored > 0 && stored < ARB_STATE_SUCCEEDED;
    }
    arb_msg_t *reply = s_call (fx, fx->client, arb_msg_new (ARB_MSG_STATS, 0));
    arb_stats_reply_body_t *stats = arb_msg_stats_reply (reply);
    int64_t counted = 0;
    for (size_t q = 0; q < stats->queues.n; q++)
        for (int s = 1; s < ARB_STATE_SUCCEEDED && s < (int) stats->queues.v[q].counts.n; s++)
            counted += (int64_t) stats->queues.v[q].counts.v[s];
    arb_msg_destroy (&reply);
    assert_int_equal (counted, open);
}

//  After a failed turn: the journal holds only the tasks up to last, and
//  memory is the journal; then the disk takes writes again, and so does
//  the broker: the next task gets the id after last.
static void
s_undone_then_recovered (s_fx_t *fx, uint64_t last)
{
    char sql[64];
    snprintf (sql, sizeof (sql), "SELECT count(*) FROM tasks WHERE id > %" PRIu64, last);
    assert_int_equal (s_journal (fx, sql), 0);
    s_memory_is_journal (fx, last);
    s_disk ("");
    s_wait_writable (fx);
    int code;
    assert_int_equal (s_submit (fx, "after", &code), last + 1);
}

//  ---------------------------------------------------------------------
//  Tests

//  A SUBMIT of count plain tasks.
static arb_msg_t *
s_batch_msg (size_t count)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 0);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *specs =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_spec_t), count);
    for (size_t i = 0; i < count; i++) {
        specs[i].name = "job";
        specs[i].payload = zframe_new ("batched", 7);
    }
    return msg;
}

//  How many tasks the journal's tables hold themselves (the task log's
//  rows not counted), read beside the running broker.
static int64_t
s_table_rows (s_fx_t *fx)
{
    sqlite3 *db = NULL;
    char uri[160];
    snprintf (uri, sizeof (uri), "file:%s?mode=ro", fx->db);
    assert_int_equal (sqlite3_open_v2 (uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL),
                      SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT count(*) FROM tasks", -1, &stmt, NULL),
                      SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int64_t count = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return count;
}

//  Twelve SUBMITs of 1,000 plain tasks waiting at once: one turn would
//  hold more rows than the task log takes in a turn (ARB_TURN_ROWS), and
//  go to the tables. The loop stops reading once the turn holds half of
//  that, so the burst takes a few turns, each committed to the log: every
//  request answered, every task journaled, none in the tables yet.
static void
test_a_burst_of_batches_takes_turns_the_log_can_hold (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    uint32_t first = 0;
    for (int i = 0; i < 12; i++) {
        uint32_t reqid = s_send (fx, fx->client, s_batch_msg (1000));
        first = first ? first : reqid;
    }
    zclock_sleep (50);  //  all twelve in the broker's queue (inproc)
    arb_broker_step (fx->broker, 10);
    int answered = 0;
    while (zsock_events (fx->client) & ZMQ_POLLIN) {
        arb_msg_t *reply = NULL;
        assert_int_equal (arb_msg_recv (zsock_resolve (fx->client), NULL, &reply), 0);
        assert_int_equal (arb_msg_type (reply), ARB_MSG_SUBMITTED);
        arb_msg_destroy (&reply);
        answered++;
    }
    assert_true (answered > 0 && answered < 12);
    for (uint32_t reqid = first + (uint32_t) answered; reqid < first + 12; reqid++) {
        arb_msg_t *reply = s_receive (fx, fx->client, ARB_MSG_SUBMITTED, reqid, 100);
        assert_non_null (reply);
        arb_msg_destroy (&reply);
    }
    assert_int_equal (s_table_rows (fx), 0);
    assert_int_equal (s_journal (fx, "SELECT count(*) FROM tasks"), 12000);
}

//  A commit fails: the turn's requests get 507, nothing of the turn is in
//  the journal or in memory; then writes are refused and reads served,
//  and once the disk takes writes again the broker does too.
static void
test_full_disk_refuses_writes_and_recovers (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t a = s_submit (fx, "a", &code), b = s_submit (fx, "b", &code);
    assert_int_equal (code, 0);
    assert_false (arb_broker_is_journal_full (fx->broker));

    s_disk ("full");
    assert_int_equal (s_submit (fx, "c", &code), 0);
    assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
    assert_true (arb_broker_is_journal_full (fx->broker));
    assert_int_equal (s_journal (fx, "SELECT count(*) FROM tasks"), 2);
    s_memory_is_journal (fx, b);

    //  writes refused before they change anything
    assert_int_equal (s_submit (fx, "d", &code), 0);
    assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
    assert_int_equal (s_code (s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, a))),
                      ARB_ERR_JOURNAL_FULL);
    assert_int_equal (s_code (s_call (fx, fx->client, s_meta_msg ("set", "k"))),
                      ARB_ERR_JOURNAL_FULL);
    arb_msg_t *queue = arb_msg_new (ARB_MSG_QUEUE, 0);
    arb_msg_queue (queue)->queue = "default";
    arb_msg_queue (queue)->op = "pause";
    assert_int_equal (s_code (s_call (fx, fx->client, queue)), ARB_ERR_JOURNAL_FULL);
    //  reads served
    assert_int_equal (s_state (fx, a), ARB_STATE_READY);
    assert_int_equal (s_code (s_call (fx, fx->client, s_meta_msg ("get", "k"))), 0);
    assert_int_equal (s_code (s_call (fx, fx->client, arb_msg_new (ARB_MSG_PING, 0))), 0);
    assert_int_equal (s_code (s_call (fx, fx->client, arb_msg_new (ARB_MSG_LIST, 0))), 0);
    arb_msg_t *peek = arb_msg_new (ARB_MSG_PEEK, 0);
    arb_msg_peek (peek)->queue = "default";
    arb_msg_peek (peek)->max = 10;
    arb_msg_t *peeked = s_call (fx, fx->client, peek);
    assert_int_equal (arb_msg_type (peeked), ARB_MSG_PEEK_REPLY);
    assert_int_equal (arb_msg_peek_reply (peeked)->tasks.n, 2);
    arb_msg_destroy (&peeked);
    s_memory_is_journal (fx, b);

    //  still full: the probes fail and the broker stays as it is
    for (int turn = 0; turn < 60; turn++)
        arb_broker_step (fx->broker, 10);
    assert_true (arb_broker_is_journal_full (fx->broker));

    s_disk ("");
    s_wait_writable (fx);
    uint64_t e = s_submit (fx, "e", &code);
    assert_int_equal (code, 0);
    assert_int_equal (e, b + 1);  //  the ids of refused submits were never given out
    assert_int_equal (s_journal (fx, "SELECT count(*) FROM tasks"), 3);
    //  this run's epoch, counted in memory while full, is in the journal now
    assert_int_equal (s_journal (fx, "SELECT CAST (value AS INTEGER) FROM meta WHERE key = "
                                     "'broker.epoch'"),
                      2);
    assert_int_equal (s_journal (fx, "SELECT count(*) FROM meta WHERE key = 'broker.probe'"), 0);
    assert_int_equal (s_code (s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, a))), 0);
    assert_int_equal (s_state (fx, a), ARB_STATE_CANCELLED);
    s_memory_is_journal (fx, e);
}

//  Every request of the turn whose commit failed is answered 507, reads
//  too (their answers may have shown what the turn did); none of its
//  changes stays, in the journal or in memory.
static void
test_failed_turn_is_all_or_nothing (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t a = s_submit (fx, "a", &code);
    s_disk ("full");
    //  three requests read in one turn
    uint32_t submit = s_send (fx, fx->client, s_submit_msg ("b"));
    uint32_t cancel = s_send (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, a));
    uint32_t status = s_send (fx, fx->client, s_ids_msg (ARB_MSG_STATUS, a + 1));
    arb_msg_t *bad = s_submit_msg ("c");
    arb_msg_submit (bad)->tasks.v[0].name = "";
    uint32_t refused = s_send (fx, fx->client, bad);
    zclock_sleep (20);
    s_expect_full (fx, submit);
    s_expect_full (fx, cancel);
    s_expect_full (fx, status);
    //  a refusal changed nothing: it stands
    arb_msg_t *reply = s_receive (fx, fx->client, 0, refused, 300);
    assert_non_null (reply);
    assert_int_equal (s_code (reply), ARB_ERR_INVALID);
    assert_int_equal (s_state (fx, a), ARB_STATE_READY);
    assert_int_equal (s_state (fx, a + 1), 0);
    s_undone_then_recovered (fx, a);
}

//  A write that fails within the turn, before its commit (a payload over
//  the page cache spills into the WAL), falls back the same way; requests
//  behind it in the socket are read in the next turn, and refused.
static void
test_write_fails_within_the_turn (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t a = s_submit (fx, "a", &code);
    s_disk ("full");
    char *big = (char *) malloc (12 << 20);
    memset (big, 'x', 12 << 20);
    big[(12 << 20) - 1] = 0;
    uint32_t first = s_send (fx, fx->client, s_submit_msg (big));
    free (big);
    uint32_t second = s_send (fx, fx->client, s_submit_msg ("small"));
    zclock_sleep (50);
    s_expect_full (fx, first);
    s_expect_full (fx, second);
    s_undone_then_recovered (fx, a);
}

//  An I/O error writing, or syncing, is the disk's fault too.
static void
test_write_and_sync_errors_are_the_disk (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    const char *modes[] = {"ioerr", "fsync"};
    int code;
    uint64_t last = s_submit (fx, "a", &code);
    for (size_t i = 0; i < 2; i++) {
        s_disk (modes[i]);
        assert_int_equal (s_submit (fx, "x", &code), 0);
        assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
        assert_true (arb_broker_is_journal_full (fx->broker));
        s_memory_is_journal (fx, last);
        s_disk ("");
        s_wait_writable (fx);
        last = s_submit (fx, "y", &code);
        assert_int_equal (code, 0);
        s_memory_is_journal (fx, last);
    }
}

//  A worker goes on: its session ends with the failed turn (410 to its
//  next message), it registers again and claims the task it runs, as
//  after a restart; a result that cannot be stored gives the task back,
//  nothing is dispatched while the journal is full, and once it takes
//  writes the task runs again and its result is stored.
static void
test_worker_goes_on_through_a_full_disk (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t id = s_submit (fx, "work", &code);
    fx->worker = zsock_new_dealer (fx->endpoint);
    arb_msg_t *msg = s_register_msg ();
    arb_register_body_t *reg = arb_msg_register (msg);
    arb_msg_t *welcome = s_call (fx, fx->worker, msg);
    assert_int_equal (arb_msg_type (welcome), ARB_MSG_WELCOME);
    assert_int_equal (arb_msg_welcome (welcome)->epoch, 1);
    arb_msg_destroy (&welcome);
    msg = arb_msg_new (ARB_MSG_CREDIT, 0);
    arb_credit_body_t *credit = arb_msg_credit (msg);
    credit->sub = 1;
    credit->credit = 1;
    const char *queues[] = {"default"};
    credit->queues = (arb_strs_t){queues, 1};
    s_send (fx, fx->worker, msg);
    arb_msg_t *dispatch = s_receive (fx, fx->worker, ARB_MSG_DISPATCH, 0, 300);
    assert_non_null (dispatch);
    assert_int_equal (arb_msg_dispatch (dispatch)->tasks.v[0].id, id);
    uint64_t lease = arb_msg_dispatch (dispatch)->tasks.v[0].lease;
    arb_msg_destroy (&dispatch);

    s_disk ("full");
    s_submit (fx, "refused", &code);
    assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
    //  the session went with the memory: the worker registers again
    arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, 0);
    arb_msg_heartbeat (beat)->busy = 1;
    assert_int_equal (s_code (s_call (fx, fx->worker, beat)), ARB_ERR_UNKNOWN_WORKER);
    msg = s_register_msg ();
    reg = arb_msg_register (msg);
    arb_held_t *held = (arb_held_t *) arb_msg_grow (msg, &reg->held, sizeof (arb_held_t), 1);
    *held = (arb_held_t){.id = id, .lease = lease};
    welcome = s_call (fx, fx->worker, msg);
    assert_int_equal (arb_msg_type (welcome), ARB_MSG_WELCOME);
    assert_int_equal (arb_msg_welcome (welcome)->epoch, 2);
    assert_int_equal (arb_msg_welcome (welcome)->adopted.n, 1);
    lease = arb_msg_welcome (welcome)->adopted.v[0].lease;
    arb_msg_destroy (&welcome);
    assert_int_equal (s_state (fx, id), ARB_STATE_RUNNING);
    //  heartbeats keep the session
    beat = arb_msg_new (ARB_MSG_HEARTBEAT, 0);
    s_send (fx, fx->worker, beat);
    assert_null (s_receive (fx, fx->worker, ARB_MSG_ERROR, 0, 20));

    //  its result cannot be stored: the task is ready again, in memory only
    msg = arb_msg_new (ARB_MSG_RESULT, 0);
    arb_result_body_t *result = arb_msg_result (msg);
    arb_result_item_t *item =
        (arb_result_item_t *) arb_msg_grow (msg, &result->results, sizeof (*item), 1);
    *item = (arb_result_item_t){.id = id, .lease = lease, .result = zframe_new ("r1", 2)};
    s_send (fx, fx->worker, msg);
    for (int turn = 0; turn < 20; turn++)
        arb_broker_step (fx->broker, 10);
    assert_int_equal (s_state (fx, id), ARB_STATE_READY);
    s_memory_is_journal (fx, id);
    //  credit, but nothing goes out while the journal is full
    msg = arb_msg_new (ARB_MSG_CREDIT, 0);
    credit = arb_msg_credit (msg);
    credit->sub = 1;
    credit->credit = 1;
    credit->queues = (arb_strs_t){queues, 1};
    s_send (fx, fx->worker, msg);
    assert_null (s_receive (fx, fx->worker, ARB_MSG_DISPATCH, 0, 30));

    s_disk ("");
    dispatch = s_receive (fx, fx->worker, ARB_MSG_DISPATCH, 0, 1000);
    assert_non_null (dispatch);
    arb_dispatch_task_t *d = &arb_msg_dispatch (dispatch)->tasks.v[0];
    assert_int_equal (d->id, id);
    assert_true (d->delivered >= 1);  //  handed out before: counts never go down
    lease = d->lease;
    arb_msg_destroy (&dispatch);
    msg = arb_msg_new (ARB_MSG_RESULT, 0);
    result = arb_msg_result (msg);
    item = (arb_result_item_t *) arb_msg_grow (msg, &result->results, sizeof (*item), 1);
    *item = (arb_result_item_t){.id = id, .lease = lease, .result = zframe_new ("r2", 2)};
    s_send (fx, fx->worker, msg);
    for (int turn = 0; turn < 100 && s_state (fx, id) != ARB_STATE_SUCCEEDED; turn++)
        arb_broker_step (fx->broker, 10);
    assert_int_equal (s_state (fx, id), ARB_STATE_SUCCEEDED);
    assert_int_equal (s_journal (fx, "SELECT state FROM tasks WHERE id = 1"), ARB_STATE_SUCCEEDED);
}

//  A watcher of a task keeps watching through the fall back, and hears of
//  its end once the journal takes writes again.
static void
test_watchers_are_kept (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t id = s_submit (fx, "a", &code);
    arb_msg_t *watch = arb_msg_new (ARB_MSG_WATCH, 0);
    *(uint64_t *) arb_msg_grow (watch, &arb_msg_watch (watch)->ids, sizeof (uint64_t), 1) = id;
    assert_int_equal (s_code (s_call (fx, fx->client, watch)), 0);
    s_disk ("full");
    s_submit (fx, "b", &code);
    assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
    s_disk ("");
    s_wait_writable (fx);
    //  cancelled by another peer: the watcher hears of it
    zsock_t *other = zsock_new_dealer (fx->endpoint);
    assert_int_equal (s_code (s_call (fx, other, s_ids_msg (ARB_MSG_CANCEL, id))), 0);
    zsock_destroy (&other);
    arb_msg_t *done = s_receive (fx, fx->client, ARB_MSG_DONE, 0, 300);
    assert_non_null (done);
    assert_int_equal (arb_msg_done (done)->tasks.v[0].id, id);
    assert_int_equal (arb_msg_done (done)->tasks.v[0].state, ARB_STATE_CANCELLED);
    arb_msg_destroy (&done);
}

//  A broker that starts on a full disk starts all the same, without
//  writes, and counts its start once it can.
static void
test_start_on_a_full_disk (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t a = s_submit (fx, "a", &code);
    s_stop (fx);
    s_disk ("full");
    s_start (fx);
    assert_true (arb_broker_is_journal_full (fx->broker));
    assert_int_equal (s_state (fx, a), ARB_STATE_READY);
    s_submit (fx, "b", &code);
    assert_int_equal (code, ARB_ERR_JOURNAL_FULL);
    arb_msg_t *pong = s_call (fx, fx->client, arb_msg_new (ARB_MSG_PING, 0));
    assert_int_equal (arb_msg_pong (pong)->epoch, 2);
    arb_msg_destroy (&pong);
    assert_int_equal (
        s_journal (fx, "SELECT CAST (value AS INTEGER) FROM meta WHERE key = 'broker.epoch'"), 1);
    s_disk ("");
    s_wait_writable (fx);
    assert_int_equal (s_submit (fx, "b", &code), a + 1);
    assert_int_equal (
        s_journal (fx, "SELECT CAST (value AS INTEGER) FROM meta WHERE key = 'broker.epoch'"), 2);
    s_memory_is_journal (fx, a + 1);
}

//  Runs sql on the journal's file, the broker stopped.
static void
s_sql (s_fx_t *fx, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->db, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
}

//  A fan-out task's row counts its copies, in the submit's commit, so that
//  a restart finds it waiting for them (not for parents it has not: the
//  start wrote outside a transaction and aborted). A journal of schema 9
//  (copies 0, the count was in memory only; a broadcast that found no
//  worker left waiting with no copy) starts too: the first waits again,
//  the second ends dead. A broadcast that reaches no worker is refused.
static void
test_fan_out_waits_across_a_restart (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    arb_msg_t *msg = s_submit_msg ("v1");
    arb_task_spec_t *spec = &arb_msg_submit (msg)->tasks.v[0];
    *(const char **) arb_msg_grow (msg, &spec->endpoints, sizeof (char *), 1) = "ghost";
    spec->allow_unknown = true;
    arb_msg_t *reply = s_call (fx, fx->client, msg);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_SUBMITTED);
    uint64_t id = arb_msg_submitted (reply)->tasks.v[0].id;
    arb_msg_destroy (&reply);
    assert_int_equal (s_journal (fx, "SELECT copies FROM tasks WHERE id = 1"), 1);
    assert_int_equal (s_journal (fx, "SELECT count (*) FROM tasks WHERE origin = 1"), 1);
    s_stop (fx);
    s_start (fx);
    assert_int_equal (s_state (fx, id), ARB_STATE_WAITING);
    msg = s_submit_msg ("/img");
    arb_msg_submit (msg)->tasks.v[0].broadcast = true;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    s_stop (fx);
    s_sql (fx, "UPDATE tasks SET copies = 0;"
               "INSERT INTO tasks (id, queue, name, state, created_ms, payload) VALUES "
               "(10, 'edge', 'purge', 1, 1, x'00');"
               "PRAGMA user_version = 9;");
    s_start (fx);
    assert_int_equal (s_state (fx, id), ARB_STATE_WAITING);
    assert_int_equal (s_state (fx, 10), ARB_STATE_DEAD);
    assert_int_equal (s_journal (fx, "SELECT copies FROM tasks WHERE id = 1"), 1);
    assert_int_equal (s_journal (fx, "SELECT state FROM tasks WHERE id = 10"), ARB_STATE_DEAD);
    assert_int_equal (s_journal (fx, "PRAGMA user_version"), 10);
}

//  A long turn (a SUBMIT of 60,000 keyed tasks, far past the 100 ms heartbeat;
//  20,000 took under 100 ms once the broker got faster, 2026-12-06)
//  sends the heartbeats that fall due while it works, but not to a worker
//  whose REGISTER it read before: that worker's WELCOME waits for the
//  commit, and nothing may reach it before (PROTOCOL: REGISTER -> WELCOME,
//  then ...). One peer sends both, so that one turn reads both, in order.
static void
test_no_heartbeat_before_the_welcome (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    fx->worker = zsock_new_dealer (fx->endpoint);
    arb_msg_t *msg = s_register_msg ();
    uint32_t registered = s_send (fx, fx->worker, msg);
    enum {
        KEYED = 60000
    };
    char (*keys)[16] = (char (*)[16]) malloc (KEYED * sizeof (*keys));
    assert_non_null (keys);
    msg = arb_msg_new (ARB_MSG_SUBMIT, 0);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *specs =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_spec_t), KEYED);
    for (size_t i = 0; i < KEYED; i++) {
        snprintf (keys[i], sizeof (keys[i]), "key-%zu", i);
        specs[i].name = "job";
        specs[i].key = keys[i];
        specs[i].payload = zframe_new ("keyed", 5);
    }
    int64_t started = zclock_mono ();
    uint32_t submitted = s_send (fx, fx->worker, msg);
    //  the first message the worker gets is its WELCOME
    arb_msg_t *first = NULL;
    for (int turn = 0; turn < 300 && !first; turn++) {
        arb_broker_step (fx->broker, 10);
        if (zsock_events (fx->worker) & ZMQ_POLLIN)
            assert_int_equal (arb_msg_recv (zsock_resolve (fx->worker), NULL, &first), 0);
    }
    assert_non_null (first);
    //  (the turn lasted past a heartbeat, or the test shows nothing)
    assert_true (zclock_mono () - started > 100);
    assert_int_equal (arb_msg_type (first), ARB_MSG_WELCOME);
    assert_int_equal (arb_msg_reqid (first), registered);
    arb_msg_destroy (&first);
    arb_msg_t *reply = s_receive (fx, fx->worker, ARB_MSG_SUBMITTED, submitted, 300);
    assert_non_null (reply);
    assert_int_equal (arb_msg_submitted (reply)->tasks.n, KEYED);
    arb_msg_destroy (&reply);
    free (keys);
}

//  What a peer heard of one type (EVENT or DONE) over some turns of the
//  loop: messages, their records (events, ended tasks), the most records
//  in one message, records of a queue other than queue (EVENT; NULL:
//  any), and the events said dropped before them.
typedef struct {
    size_t messages, records, most, other_queue;
    uint64_t dropped;
} s_heard_t;

static s_heard_t
s_hear (s_fx_t *fx, zsock_t *sock, arb_msg_type_t type, const char *queue, int turns)
{
    s_heard_t heard = {0};
    for (int turn = 0; turn < turns; turn++) {
        arb_broker_step (fx->broker, 10);
        while (zsock_events (sock) & ZMQ_POLLIN) {
            arb_msg_t *msg = NULL;
            assert_int_equal (arb_msg_recv (zsock_resolve (sock), NULL, &msg), 0);
            if (arb_msg_type (msg) == type) {
                bool event = type == ARB_MSG_EVENT;
                size_t n = event ? arb_msg_event (msg)->events.n : arb_msg_done (msg)->tasks.n;
                heard.messages++;
                heard.records += n;
                heard.most = n > heard.most ? n : heard.most;
                for (size_t i = 0; event && queue && i < n; i++)
                    heard.other_queue += !streq (arb_msg_event (msg)->events.v[i].queue, queue);
                heard.dropped += event ? arb_msg_event (msg)->dropped : 0;
            }
            arb_msg_destroy (&msg);
        }
    }
    return heard;
}

//  A CANCEL of every task of a queue.
static arb_msg_t *
s_cancel_queue_msg (const char *queue)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_CANCEL, 0);
    arb_msg_cancel (msg)->queue = queue;
    return msg;
}

//  A watch that a failed turn fulfilled (its task ended, the DONE never
//  left) stays: the end that does commit later reaches the watcher.
static void
test_a_watch_fulfilled_by_a_failed_turn_stays (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t id = s_submit (fx, "a", &code);
    zsock_t *watcher = zsock_new_dealer (fx->endpoint);
    arb_msg_t *watch = arb_msg_new (ARB_MSG_WATCH, 0);
    *(uint64_t *) arb_msg_grow (watch, &arb_msg_watch (watch)->ids, sizeof (uint64_t), 1) = id;
    assert_int_equal (s_code (s_call (fx, watcher, watch)), 0);
    s_disk ("full");
    assert_int_equal (s_code (s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, id))),
                      ARB_ERR_JOURNAL_FULL);
    s_disk ("");
    s_wait_writable (fx);
    assert_int_equal (s_hear (fx, watcher, ARB_MSG_DONE, NULL, 5).records, 0);
    assert_int_equal (s_code (s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, id))), 0);
    assert_int_equal (s_hear (fx, watcher, ARB_MSG_DONE, NULL, 5).records, 1);
    zsock_destroy (&watcher);
}

//  A turn's EVENTs and DONEs leave after its commit, all of them, 1,000
//  records a message at most (PROTOCOL, Bounds), each EVENT to the
//  subscribers of its queue; a turn whose commit failed sends none of
//  them, then or later.
static void
test_ends_and_events_leave_whole_after_the_commit (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *all = zsock_new_dealer (fx->endpoint), *only_a = zsock_new_dealer (fx->endpoint);
    zsock_t *watcher = zsock_new_dealer (fx->endpoint);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_EVENTS, 0);
    assert_int_equal (s_code (s_call (fx, all, msg)), 0);
    msg = arb_msg_new (ARB_MSG_EVENTS, 0);
    arb_msg_events (msg)->queue = "a";
    assert_int_equal (s_code (s_call (fx, only_a, msg)), 0);
    //  1,001 tasks in queue a, one in b
    msg = s_batch_msg (1001);
    for (size_t i = 0; i < 1001; i++)
        arb_msg_submit (msg)->tasks.v[i].queue = "a";
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), 0);
    msg = s_submit_msg ("b");
    arb_msg_submit (msg)->tasks.v[0].queue = "b";
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), 0);
    s_heard_t heard = s_hear (fx, all, ARB_MSG_EVENT, NULL, 5);
    assert_int_equal (heard.records, 1002);
    assert_true (heard.most <= 1000);
    assert_int_equal (heard.dropped, 0);
    heard = s_hear (fx, only_a, ARB_MSG_EVENT, "a", 5);
    assert_int_equal (heard.records, 1001);
    assert_int_equal (heard.other_queue, 0);
    msg = arb_msg_new (ARB_MSG_WATCH, 0);
    uint64_t *ids =
        (uint64_t *) arb_msg_grow (msg, &arb_msg_watch (msg)->ids, sizeof (uint64_t), 1001);
    for (size_t i = 0; i < 1001; i++)
        ids[i] = i + 1;
    msg = s_call (fx, watcher, msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_WATCHING);
    assert_int_equal (arb_msg_watching (msg)->watching, 1001);
    arb_msg_destroy (&msg);

    //  the commit of the cancel fails: its ends and events never leave
    s_disk ("full");
    assert_int_equal (s_code (s_call (fx, fx->client, s_cancel_queue_msg ("a"))),
                      ARB_ERR_JOURNAL_FULL);
    s_disk ("");
    s_wait_writable (fx);
    int code;
    s_submit (fx, "after", &code);
    assert_int_equal (code, 0);
    assert_int_equal (s_hear (fx, watcher, ARB_MSG_DONE, NULL, 5).records, 0);
    assert_int_equal (s_hear (fx, all, ARB_MSG_EVENT, NULL, 5).records, 1);

    //  once it commits, every end reaches its watcher
    assert_int_equal (s_code (s_call (fx, fx->client, s_cancel_queue_msg ("a"))), 0);
    heard = s_hear (fx, watcher, ARB_MSG_DONE, NULL, 5);
    assert_int_equal (heard.records, 1001);
    assert_true (heard.most <= 1000);
    heard = s_hear (fx, all, ARB_MSG_EVENT, NULL, 5);
    assert_int_equal (heard.records, 1001);
    assert_true (heard.most <= 1000);
    //  a new filter replaces the old
    msg = arb_msg_new (ARB_MSG_EVENTS, 0);
    arb_msg_events (msg)->queue = "b";
    assert_int_equal (s_code (s_call (fx, only_a, msg)), 0);
    msg = s_submit_msg ("b2");
    arb_msg_submit (msg)->tasks.v[0].queue = "b";
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), 0);
    heard = s_hear (fx, only_a, ARB_MSG_EVENT, "b", 5);
    assert_int_equal (heard.records, 1);
    assert_int_equal (heard.other_queue, 0);
    zsock_destroy (&all);
    zsock_destroy (&only_a);
    zsock_destroy (&watcher);
}

//  A SUBMIT of two tasks: "a", and "b" with a dependency on a (when), for
//  the caller to change.
static arb_msg_t *
s_pair_msg (uint32_t when)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 0);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *specs =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_spec_t), 2);
    const char *refs[] = {"a", "b"};
    for (size_t i = 0; i < 2; i++) {
        specs[i].name = "job";
        specs[i].ref = refs[i];
        specs[i].payload = zframe_new ("x", 1);
    }
    arb_dep_t *dep = (arb_dep_t *) arb_msg_grow (msg, &specs[1].after, sizeof (arb_dep_t), 1);
    *dep = (arb_dep_t){.ref = "a", .when = when};
    return msg;
}

//  Workflow checks refuse, as invalid, what would wait for ever or take
//  the wrong input: a dependency on itself, one of unknown kind or naming
//  nothing; a parent's result taken with more than one parent or from
//  one that failed; a fan-out task with dependencies. A pair that is
//  right is taken. So are retries at their bound; past it, or a time to
//  run over a year ahead, are refused.
static void
test_workflow_checks (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    assert_int_equal (s_code (s_call (fx, fx->client, s_pair_msg (2))), 0);
    arb_msg_t *msg = s_pair_msg (0);
    arb_msg_submit (msg)->tasks.v[1].after.v[0].ref = "b";
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    assert_int_equal (s_code (s_call (fx, fx->client, s_pair_msg (3))), ARB_ERR_INVALID);
    msg = s_pair_msg (0);
    arb_msg_submit (msg)->tasks.v[1].after.v[0].ref = NULL;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    msg = s_pair_msg (1);
    arb_msg_submit (msg)->tasks.v[1].input = ARB_INPUT_PARENT;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    msg = s_pair_msg (0);
    arb_task_spec_t *b = &arb_msg_submit (msg)->tasks.v[1];
    b->input = ARB_INPUT_PARENT;
    *(arb_dep_t *) arb_msg_grow (msg, &b->after, sizeof (arb_dep_t), 1) = (arb_dep_t){.id = 1};
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    msg = s_pair_msg (0);
    b = &arb_msg_submit (msg)->tasks.v[1];
    *(const char **) arb_msg_grow (msg, &b->endpoints, sizeof (char *), 1) = "ghost";
    b->allow_unknown = true;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    //  none of them left a task
    assert_int_equal (s_state (fx, 3), 0);
    //  bounds of a task's options: the bound itself is taken
    msg = s_submit_msg ("r");
    arb_msg_submit (msg)->tasks.v[0].retries = ARB_RETRIES_MAX;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), 0);
    msg = s_submit_msg ("r");
    arb_msg_submit (msg)->tasks.v[0].retries = ARB_RETRIES_MAX + 1;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
    msg = s_submit_msg ("at");
    arb_msg_submit (msg)->tasks.v[0].at_ms = (uint64_t) zclock_time () + 2 * ARB_DELAY_MAX_MS;
    assert_int_equal (s_code (s_call (fx, fx->client, msg)), ARB_ERR_INVALID);
}

//  A STATUS answers tasks until their payloads reach ARB_REPLY_BYTES, and
//  says there are more: the ids past the bound are not answered at all.
static void
test_status_stops_at_its_bound (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    size_t size = ARB_REPLY_BYTES / 2 + 1;
    char *big = (char *) malloc (size + 1);
    memset (big, 'x', size);
    big[size] = 0;
    int code;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS, 0);
    for (int i = 0; i < 3; i++) {
        uint64_t id = s_submit (fx, big, &code);
        assert_int_equal (code, 0);
        *(uint64_t *) arb_msg_grow (msg, &arb_msg_status (msg)->ids, sizeof (uint64_t), 1) = id;
    }
    free (big);
    arb_msg_status (msg)->with_payload = true;
    arb_msg_t *reply = s_call (fx, fx->client, msg);
    arb_status_reply_body_t *out = arb_msg_status_reply (reply);
    assert_int_equal (out->tasks.n, 2);
    assert_true (out->more);
    assert_int_equal (out->tasks.v[1].payload.size, size);
    arb_msg_destroy (&reply);
}

//  The answer for one id of a CANCEL or RETRY, and its count.
static arb_outcome_info_t
s_outcome (arb_msg_t *reply, size_t i, uint32_t *count)
{
    bool cancel = arb_msg_type (reply) == ARB_MSG_CANCEL_REPLY;
    assert_true (cancel || arb_msg_type (reply) == ARB_MSG_RETRY_REPLY);
    arb_outcome_info_t outcome =
        cancel ? arb_msg_cancel_reply (reply)->tasks.v[i] : arb_msg_retry_reply (reply)->tasks.v[i];
    *count = cancel ? arb_msg_cancel_reply (reply)->count : arb_msg_retry_reply (reply)->count;
    return outcome;
}

//  CANCEL and RETRY answer each id: done (0), not in a state that allows
//  it (409, with its state), or unknown (404); a CANCEL of a group name
//  reaches every group of that name. (And a WATCH of an ended task is
//  answered before its DONE.)
static void
test_cancel_and_retry_answer_each_id (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t a = s_submit (fx, "a", &code), b = s_submit (fx, "b", &code);
    arb_msg_t *reply = s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, a));
    uint32_t count;
    arb_outcome_info_t outcome = s_outcome (reply, 0, &count);
    assert_true (outcome.code == 0 && outcome.state == ARB_STATE_CANCELLED && count == 1);
    arb_msg_destroy (&reply);
    arb_msg_t *msg = s_ids_msg (ARB_MSG_CANCEL, a);
    *(uint64_t *) arb_msg_grow (msg, &arb_msg_cancel (msg)->ids, sizeof (uint64_t), 1) = 999;
    reply = s_call (fx, fx->client, msg);
    outcome = s_outcome (reply, 0, &count);
    assert_true (outcome.code == ARB_ERR_CONFLICT && outcome.state == ARB_STATE_CANCELLED);
    outcome = s_outcome (reply, 1, &count);
    assert_true (outcome.code == ARB_ERR_NOT_FOUND && outcome.state == 0 && count == 0);
    arb_msg_destroy (&reply);
    //  a watch of an ended task: WATCHING, then the DONE (PROTOCOL, WATCH)
    msg = arb_msg_new (ARB_MSG_WATCH, 0);
    *(uint64_t *) arb_msg_grow (msg, &arb_msg_watch (msg)->ids, sizeof (uint64_t), 1) = a;
    s_send (fx, fx->client, msg);
    arb_msg_type_t heard[2] = {0, 0};
    for (int turn = 0, n = 0; turn < 100 && n < 2; turn++) {
        arb_broker_step (fx->broker, 10);
        while (n < 2 && (zsock_events (fx->client) & ZMQ_POLLIN)) {
            assert_int_equal (arb_msg_recv (zsock_resolve (fx->client), NULL, &msg), 0);
            if (arb_msg_type (msg) != ARB_MSG_HEARTBEAT)
                heard[n++] = arb_msg_type (msg);
            arb_msg_destroy (&msg);
        }
    }
    assert_int_equal (heard[0], ARB_MSG_WATCHING);
    assert_int_equal (heard[1], ARB_MSG_DONE);
    //  a task waiting to run has nothing to retry
    msg = arb_msg_new (ARB_MSG_RETRY, 0);
    *(uint64_t *) arb_msg_grow (msg, &arb_msg_retry (msg)->ids, sizeof (uint64_t), 1) = b;
    reply = s_call (fx, fx->client, msg);
    outcome = s_outcome (reply, 0, &count);
    assert_true (outcome.code == ARB_ERR_CONFLICT && outcome.state == ARB_STATE_READY
                 && count == 0);
    arb_msg_destroy (&reply);
    //  two groups of one name
    for (int g = 0; g < 2; g++) {
        msg = s_submit_msg ("member");
        arb_msg_submit (msg)->flow_kind = ARB_FLOW_GROUP;
        arb_msg_submit (msg)->flow_name = "g";
        arb_msg_submit (msg)->tasks.v[0].ref = "m";
        assert_int_equal (s_code (s_call (fx, fx->client, msg)), 0);
    }
    msg = arb_msg_new (ARB_MSG_CANCEL, 0);
    arb_msg_cancel (msg)->group = "g";
    reply = s_call (fx, fx->client, msg);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_CANCEL_REPLY);
    assert_int_equal (arb_msg_cancel_reply (reply)->count, 2);
    arb_msg_destroy (&reply);
}

//  Registers fx->worker, with slots, once.
static void
s_worker (s_fx_t *fx, uint32_t slots)
{
    if (fx->worker)
        return;
    fx->worker = zsock_new_dealer (fx->endpoint);
    arb_msg_t *msg = s_register_msg ();
    arb_msg_register (msg)->slots = slots;
    arb_msg_t *welcome = s_call (fx, fx->worker, msg);
    assert_int_equal (arb_msg_type (welcome), ARB_MSG_WELCOME);
    arb_msg_destroy (&welcome);
}

//  Registers fx->worker (once) and takes up to max ready tasks of queue:
//  the DISPATCH that answers.
static arb_msg_t *
s_take (s_fx_t *fx, const char *queue, uint32_t max)
{
    s_worker (fx, 4);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_TAKE, 0);
    arb_msg_take (msg)->queue = queue;
    arb_msg_take (msg)->max = max;
    arb_msg_t *reply = s_call (fx, fx->worker, msg);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_DISPATCH);
    assert_true (arb_msg_dispatch (reply)->tasks.n > 0);
    return reply;
}

//  A RESULT for every task of a DISPATCH (destroyed): outcome, and a
//  result of size bytes each.
static void
s_result (s_fx_t *fx, arb_msg_t **dispatch_p, uint32_t outcome, size_t size)
{
    arb_dispatch_body_t *dispatch = arb_msg_dispatch (*dispatch_p);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_RESULT, 0);
    arb_result_body_t *body = arb_msg_result (msg);
    arb_result_item_t *items = (arb_result_item_t *) arb_msg_grow (
        msg, &body->results, sizeof (arb_result_item_t), dispatch->tasks.n);
    char *bytes = (char *) calloc (size ? size : 1, 1);
    for (size_t i = 0; i < dispatch->tasks.n; i++)
        items[i] = (arb_result_item_t){.id = dispatch->tasks.v[i].id,
                                       .lease = dispatch->tasks.v[i].lease,
                                       .outcome = outcome,
                                       .error = outcome ? "failed" : NULL,
                                       .result = zframe_new (bytes, size)};
    free (bytes);
    arb_msg_destroy (dispatch_p);
    s_send (fx, fx->worker, msg);
}

//  Results that end in one turn for one watcher go in more than one DONE
//  once they pass ARB_REPLY_BYTES: three of half that in two.
static void
test_big_results_end_in_done_messages_apart (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *watcher = zsock_new_dealer (fx->endpoint);
    arb_msg_t *msg = s_batch_msg (3);
    arb_msg_submit (msg)->watch = true;
    assert_int_equal (s_code (s_call (fx, watcher, msg)), 0);
    arb_msg_t *dispatch = s_take (fx, "default", 3);
    assert_int_equal (arb_msg_dispatch (dispatch)->tasks.n, 3);
    s_result (fx, &dispatch, ARB_OUTCOME_OK, ARB_REPLY_BYTES / 2 + 1);
    s_heard_t heard = {0};
    for (int turn = 0; turn < 100 && heard.records < 3; turn++) {
        s_heard_t more = s_hear (fx, watcher, ARB_MSG_DONE, NULL, 1);
        heard.records += more.records;
        heard.messages += more.messages;
    }
    assert_int_equal (heard.records, 3);
    assert_int_equal (heard.messages, 2);
    zsock_destroy (&watcher);
}

//  RETRY of a queue's dead tasks (all) retries each whatever it died of:
//  one that died because its parent (in another queue) did comes back.
static void
test_retry_of_a_queue_takes_what_died_of_a_parent (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    arb_msg_t *msg = s_pair_msg (0);
    arb_msg_submit (msg)->tasks.v[0].queue = "x";
    arb_msg_submit (msg)->tasks.v[1].queue = "y";
    msg = s_call (fx, fx->client, msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_SUBMITTED);
    uint64_t parent = arb_msg_submitted (msg)->tasks.v[0].id;
    uint64_t child = arb_msg_submitted (msg)->tasks.v[1].id;
    arb_msg_destroy (&msg);
    arb_msg_t *dispatch = s_take (fx, "x", 1);
    s_result (fx, &dispatch, ARB_OUTCOME_FAIL, 0);
    for (int turn = 0; turn < 100 && s_state (fx, child) != ARB_STATE_DEAD; turn++)
        arb_broker_step (fx->broker, 10);
    assert_int_equal (s_state (fx, parent), ARB_STATE_DEAD);
    assert_int_equal (s_state (fx, child), ARB_STATE_DEAD);
    msg = arb_msg_new (ARB_MSG_RETRY, 0);
    arb_msg_retry (msg)->queue = "y";
    arb_msg_retry (msg)->all = true;
    arb_msg_t *reply = s_call (fx, fx->client, msg);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_RETRY_REPLY);
    assert_int_equal (arb_msg_retry_reply (reply)->count, 1);
    arb_msg_destroy (&reply);
    assert_int_not_equal (s_state (fx, child), ARB_STATE_DEAD);
}

//  A LIST page: the ids it holds, written "1,2," into ids; whether more.
static bool
s_list (s_fx_t *fx, uint64_t after_id, uint32_t limit, char *ids, size_t size)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_LIST, 0);
    arb_msg_list (msg)->after_id = after_id;
    arb_msg_list (msg)->limit = limit;
    arb_msg_t *reply = s_call (fx, fx->client, msg);
    assert_int_equal (arb_msg_type (reply), ARB_MSG_LIST_REPLY);
    arb_list_reply_body_t *out = arb_msg_list_reply (reply);
    ids[0] = 0;
    for (size_t i = 0; i < out->tasks.n; i++)
        snprintf (ids + strlen (ids), size - strlen (ids), "%" PRIu64 ",", out->tasks.v[i].id);
    bool more = out->more;
    arb_msg_destroy (&reply);
    return more;
}

//  LIST pages through open and ended tasks alike by id: each page starts
//  after the last id of the one before, and says more only if a task
//  matches past it.
static void
test_list_pages_by_id (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    for (int i = 0; i < 3; i++)
        s_submit (fx, "t", &code);
    assert_int_equal (s_code (s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, 2))), 0);
    char ids[64];
    assert_false (s_list (fx, 0, 3, ids, sizeof (ids)));
    assert_string_equal (ids, "1,2,3,");
    assert_true (s_list (fx, 0, 2, ids, sizeof (ids)));
    assert_string_equal (ids, "1,2,");
    assert_false (s_list (fx, 1, 2, ids, sizeof (ids)));
    assert_string_equal (ids, "2,3,");
}

//  A CANCEL of a task in the cold backlog (in the journal only) cancels
//  it, as one of a task in memory.
static void
test_cancel_reaches_a_cold_task (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    s_stop (fx);
    fx->hot_max = 2;
    s_start (fx);
    assert_int_equal (s_code (s_call (fx, fx->client, s_batch_msg (5))), 0);
    for (int turn = 0; turn < 5; turn++)
        arb_broker_step (fx->broker, 10);
    arb_msg_t *reply = s_call (fx, fx->client, s_ids_msg (ARB_MSG_CANCEL, 5));
    uint32_t count;
    arb_outcome_info_t outcome = s_outcome (reply, 0, &count);
    assert_true (outcome.code == 0 && outcome.state == ARB_STATE_CANCELLED && count == 1);
    arb_msg_destroy (&reply);
    assert_int_equal (s_state (fx, 5), ARB_STATE_CANCELLED);
}

//  A STATUS that names an id twice answers it twice, the same.
static void
test_status_answers_an_id_given_twice (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t id = s_submit (fx, "a", &code);
    arb_msg_t *msg = s_ids_msg (ARB_MSG_STATUS, id);
    *(uint64_t *) arb_msg_grow (msg, &arb_msg_status (msg)->ids, sizeof (uint64_t), 1) = id;
    arb_msg_t *reply = s_call (fx, fx->client, msg);
    arb_status_reply_body_t *out = arb_msg_status_reply (reply);
    assert_int_equal (out->tasks.n, 2);
    for (size_t i = 0; i < 2; i++)
        assert_true (out->tasks.v[i].id == id && out->tasks.v[i].found
                     && out->tasks.v[i].state == ARB_STATE_READY);
    arb_msg_destroy (&reply);
}

//  A TAKE's reply (DISPATCH) that the socket cannot deliver, its peer gone
//  between the TAKE and the flush, gives its task back at once, though it
//  holds a single task.
static void
test_an_undelivered_take_gives_its_task_back (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int code;
    uint64_t id = s_submit (fx, "a", &code);
    s_worker (fx, 1);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_TAKE, 0);
    arb_msg_take (msg)->queue = "default";
    arb_msg_take (msg)->max = 1;
    s_send (fx, fx->worker, msg);
    zsock_destroy (&fx->worker);
    zclock_sleep (20);  //  the ROUTER forgets the peer; its TAKE is read still
    for (int turn = 0; turn < 20; turn++)
        arb_broker_step (fx->broker, 10);
    assert_int_equal (s_state (fx, id), ARB_STATE_READY);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    char control[64];
    snprintf (control, sizeof (control), "/tmp/arb-broker-faults-%d", (int) getpid ());
    setenv (ARB_JOURNAL_FAULTS_ENV, control, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_a_burst_of_batches_takes_turns_the_log_can_hold,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_disk_refuses_writes_and_recovers, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_turn_is_all_or_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_fails_within_the_turn, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_and_sync_errors_are_the_disk, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_worker_goes_on_through_a_full_disk, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_watchers_are_kept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_start_on_a_full_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fan_out_waits_across_a_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_heartbeat_before_the_welcome, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ends_and_events_leave_whole_after_the_commit, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_watch_fulfilled_by_a_failed_turn_stays, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_workflow_checks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_status_stops_at_its_bound, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancel_and_retry_answer_each_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_big_results_end_in_done_messages_apart, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_retry_of_a_queue_takes_what_died_of_a_parent, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_list_pages_by_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancel_reaches_a_cold_task, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_status_answers_an_id_given_twice, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_an_undelivered_take_gives_its_task_back, s_setup,
                                         s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    unlink (control);
    return rc;
}
