/*  test_amqp_model.c — the AMQP model's routing: topic patterns with `*`
    and `#` at their edges, headers exchanges with x-match all and any,
    the default exchange, exchange-to-exchange bindings with loops, and
    the queue arguments refused or kept.
*/

#include "arb_amqp_frame.h"
#include "arb_amqp_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void
test_topic_words (void **state)
{
    (void) state;
    //  plain words
    assert_true (arb_amqp_model_topic_match ("a.b.c", "a.b.c"));
    assert_false (arb_amqp_model_topic_match ("a.b.c", "a.b"));
    assert_false (arb_amqp_model_topic_match ("a.b", "a.b.c"));
    assert_false (arb_amqp_model_topic_match ("a.b.c", "a.b.cd"));
    //  '*' is exactly one word, which may be empty
    assert_true (arb_amqp_model_topic_match ("a.*.c", "a.b.c"));
    assert_true (arb_amqp_model_topic_match ("a.*.c", "a..c"));
    assert_false (arb_amqp_model_topic_match ("a.*.c", "a.c"));
    assert_false (arb_amqp_model_topic_match ("a.*.c", "a.b.b.c"));
    assert_true (arb_amqp_model_topic_match ("*", "word"));
    assert_false (arb_amqp_model_topic_match ("*", ""));
    assert_false (arb_amqp_model_topic_match ("*", "a.b"));
    assert_true (arb_amqp_model_topic_match ("*.*", "a."));
    //  a '*' inside a word is that character, not a wildcard
    assert_false (arb_amqp_model_topic_match ("a*.b", "ab.b"));
    assert_true (arb_amqp_model_topic_match ("a*.b", "a*.b"));
}

static void
test_topic_hash (void **state)
{
    (void) state;
    //  '#' is zero or more words, at either end or in the middle
    assert_true (arb_amqp_model_topic_match ("#", ""));
    assert_true (arb_amqp_model_topic_match ("#", "a"));
    assert_true (arb_amqp_model_topic_match ("#", "a.b.c"));
    assert_true (arb_amqp_model_topic_match ("a.#", "a"));
    assert_true (arb_amqp_model_topic_match ("a.#", "a.b.c"));
    assert_false (arb_amqp_model_topic_match ("a.#", "b.a"));
    assert_true (arb_amqp_model_topic_match ("#.c", "c"));
    assert_true (arb_amqp_model_topic_match ("#.c", "a.b.c"));
    assert_false (arb_amqp_model_topic_match ("#.c", "a.c.b"));
    assert_true (arb_amqp_model_topic_match ("a.#.c", "a.c"));
    assert_true (arb_amqp_model_topic_match ("a.#.c", "a.x.y.c"));
    assert_false (arb_amqp_model_topic_match ("a.#.c", "a.x.y"));
    //  together with '*': at least one word
    assert_true (arb_amqp_model_topic_match ("#.*", "a"));
    assert_false (arb_amqp_model_topic_match ("#.*", ""));
    assert_true (arb_amqp_model_topic_match ("*.#", "a.b.c"));
    assert_true (arb_amqp_model_topic_match ("#.#", ""));
    assert_true (arb_amqp_model_topic_match ("#.#", "a.b"));
    assert_true (arb_amqp_model_topic_match ("a.#.#.b", "a.b"));
    assert_true (arb_amqp_model_topic_match ("#.a.#", "x.a.y"));
    assert_false (arb_amqp_model_topic_match ("#.a.#", "x.b.y"));
    //  '#' inside a word is that character
    assert_false (arb_amqp_model_topic_match ("a#", "a.b"));
    //  the empty pattern matches the empty key only
    assert_true (arb_amqp_model_topic_match ("", ""));
    assert_false (arb_amqp_model_topic_match ("", "a"));
}

static void
test_topic_many_hashes_do_not_blow_up (void **state)
{
    (void) state;
    //  a run of '#'s and a long key that fails at its last word: one
    //  pass, not one per way of splitting the key
    char key[256] = "";
    for (int i = 0; i < 60; i++)
        strcat (key, i ? ".w" : "w");
    assert_false (arb_amqp_model_topic_match ("#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.x", key));
    assert_true (arb_amqp_model_topic_match ("#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.w", key));
}

//  ---------------------------------------------------------------------
//  Routing through a model

typedef struct {
    arb_amqp_model_t *model;
    arb_amqp_vhost_t *vhost;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = (s_fixture_t *) calloc (1, sizeof (s_fixture_t));
    f->model = arb_amqp_model_new ();
    assert_int_equal (arb_amqp_model_add_vhost (f->model, "/"), 0);
    f->vhost = arb_amqp_model_vhost (f->model, "/");
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    arb_amqp_model_destroy (&f->model);
    free (f);
    return 0;
}

static arb_amqp_queue_t *
s_queue (s_fixture_t *f, const char *name)
{
    return arb_amqp_model_add_queue (f->vhost, name, true, false, false, 0, NULL);
}

static arb_amqp_exchange_t *
s_exchange (s_fixture_t *f, const char *name, arb_amqp_type_t type)
{
    return arb_amqp_model_add_exchange (f->vhost, name, type, true, false, false, NULL);
}

//  The names of queues, sorted, comma-separated; queues are emptied.
static char *
s_names (arb_amqp_targets_t *queues, size_t n)
{
    assert_int_equal (n, queues->n);
    zlistx_t *names = zlistx_new ();
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    for (size_t i = 0; i < queues->n; i++)
        zlistx_add_end (names, queues->v[i]->name);
    zlistx_sort (names);
    static char out[256];
    out[0] = 0;
    for (char *name = (char *) zlistx_first (names); name; name = (char *) zlistx_next (names)) {
        if (out[0])
            strcat (out, ",");
        strcat (out, name);
    }
    zlistx_destroy (&names);
    arb_amqp_targets_fini (queues);
    return out;
}

//  The names of the queues a message reaches, sorted, comma-separated.
static char *
s_route (arb_amqp_exchange_t *x, const char *key, const amqp_table_t *headers)
{
    arb_amqp_targets_t queues = {0};
    size_t n = arb_amqp_model_route (x, key, headers, &queues);
    return s_names (&queues, n);
}

static void
test_default_exchange (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "jobs");
    s_queue (f, "other");
    arb_amqp_exchange_t *dflt = arb_amqp_model_exchange (f->vhost, "");
    assert_non_null (dflt);
    assert_true (dflt->builtin);
    //  the routing key is the queue's name, nothing else
    assert_string_equal (s_route (dflt, "jobs", NULL), "jobs");
    assert_string_equal (s_route (dflt, "missing", NULL), "");
    assert_string_equal (s_route (dflt, "", NULL), "");
    //  the built-in exchanges of every vhost
    const char *builtin[] = {"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"};
    for (size_t i = 0; i < 5; i++)
        assert_non_null (arb_amqp_model_exchange (f->vhost, builtin[i]));
}

//  Broker queue names: as the AMQP name, behind the vhost's prefix; one
//  holding '@' (kept by the broker for endpoint queues) escaped, so that
//  Celery's pidbox queues reach the broker.
static void
test_broker_names (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    assert_string_equal (s_queue (f, "jobs")->broker, "jobs");
    assert_string_equal (s_queue (f, "celery@vm.celery.pidbox")->broker,
                         "amq.esc:celery%40vm.celery.pidbox");
    assert_string_equal (s_queue (f, "a@b%40")->broker, "amq.esc:a%40b%2540");
    //  '%' alone needs no escape: the name is as it was
    assert_string_equal (s_queue (f, "50%")->broker, "50%");
    //  a queue of "/" named like another vhost's queue is not that queue
    assert_string_equal (s_queue (f, "v2|x")->broker, "amq.esc:v2%7Cx");
    assert_int_equal (arb_amqp_model_add_vhost (f->model, "v2"), 0);
    arb_amqp_vhost_t *v2 = arb_amqp_model_vhost (f->model, "v2");
    arb_amqp_queue_t *q = arb_amqp_model_add_queue (v2, "x@y", true, false, false, 0, NULL);
    assert_string_equal (q->broker, "v2|amq.esc:x%40y");
    //  the limit counts the escapes: 196 bytes fit plainly, not with an '@'
    char name[197];
    memset (name, 'n', 196);
    name[196] = 0;
    char why[256];
    assert_int_equal (arb_amqp_model_check_name (f->vhost, name, true, why, sizeof (why)), 0);
    name[0] = '@';
    assert_int_equal (arb_amqp_model_check_name (f->vhost, name, true, why, sizeof (why)), -1);
}

static void
test_direct_fanout_topic (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "q1");
    s_queue (f, "q2");
    s_queue (f, "q3");
    arb_amqp_exchange_t *direct = s_exchange (f, "d", ARB_AMQP_DIRECT);
    assert_int_equal (arb_amqp_model_bind (direct, "q1", false, "red", NULL), 1);
    assert_int_equal (arb_amqp_model_bind (direct, "q1", false, "red", NULL), 0);
    arb_amqp_model_bind (direct, "q2", false, "red", NULL);
    arb_amqp_model_bind (direct, "q3", false, "blue", NULL);
    assert_string_equal (s_route (direct, "red", NULL), "q1,q2");
    assert_string_equal (s_route (direct, "blue", NULL), "q3");
    assert_string_equal (s_route (direct, "green", NULL), "");
    assert_int_equal (arb_amqp_model_unbind (direct, "q2", false, "red", NULL), 1);
    assert_int_equal (arb_amqp_model_unbind (direct, "q2", false, "red", NULL), 0);
    assert_string_equal (s_route (direct, "red", NULL), "q1");

    arb_amqp_exchange_t *fanout = s_exchange (f, "f", ARB_AMQP_FANOUT);
    arb_amqp_model_bind (fanout, "q1", false, "ignored", NULL);
    arb_amqp_model_bind (fanout, "q2", false, "", NULL);
    assert_string_equal (s_route (fanout, "anything", NULL), "q1,q2");

    //  a queue bound twice is reached once
    arb_amqp_exchange_t *topic = s_exchange (f, "t", ARB_AMQP_TOPIC);
    arb_amqp_model_bind (topic, "q1", false, "logs.*", NULL);
    arb_amqp_model_bind (topic, "q1", false, "logs.#", NULL);
    arb_amqp_model_bind (topic, "q2", false, "#.error", NULL);
    assert_string_equal (s_route (topic, "logs.error", NULL), "q1,q2");
    assert_string_equal (s_route (topic, "logs.a.b", NULL), "q1");
    assert_string_equal (s_route (topic, "db.error", NULL), "q2");
    assert_string_equal (s_route (topic, "logs", NULL), "q1");
    //  a removed queue takes its bindings with it
    arb_amqp_model_remove_queue (arb_amqp_model_queue (f->vhost, "q1"));
    assert_string_equal (s_route (topic, "logs.error", NULL), "q2");
    assert_string_equal (s_route (fanout, "x", NULL), "q2");
}

static amqp_table_entry_t
s_str (const char *key, const char *value)
{
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes (key)};
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes (value);
    return entry;
}

static amqp_table_entry_t
s_bool (const char *key, bool value)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes (key);
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = value;
    return e;
}

//  arb_amqp_model_equivalent_qargs, its account of a difference dropped.
static bool
s_equivalent (zchunk_t *stored, amqp_table_t *args)
{
    const char *key;
    char values[256];
    return arb_amqp_model_equivalent_qargs (stored, args, &key, values, sizeof (values));
}

static amqp_table_entry_t
s_int (const char *key, int32_t value)
{
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes (key)};
    entry.value.kind = AMQP_FIELD_KIND_I32;
    entry.value.value.i32 = value;
    return entry;
}

static void
test_headers_all_and_any (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "all");
    s_queue (f, "any");
    s_queue (f, "none");
    s_queue (f, "anyempty");
    arb_amqp_exchange_t *x = s_exchange (f, "h", ARB_AMQP_HEADERS);
    amqp_table_entry_t all[] = {s_str ("x-match", "all"), s_str ("format", "pdf"),
                                s_int ("size", 3)};
    amqp_table_t all_args = {3, all};
    arb_amqp_model_bind (x, "all", false, "", &all_args);
    amqp_table_entry_t any[] = {s_str ("x-match", "any"), s_str ("format", "pdf"),
                                s_int ("size", 3)};
    amqp_table_t any_args = {3, any};
    arb_amqp_model_bind (x, "any", false, "", &any_args);
    //  no x-match: all; no other argument: every message
    arb_amqp_model_bind (x, "none", false, "", NULL);
    //  x-match any with nothing to match: no message
    amqp_table_entry_t anyempty[] = {s_str ("x-match", "any")};
    amqp_table_t anyempty_args = {1, anyempty};
    arb_amqp_model_bind (x, "anyempty", false, "", &anyempty_args);

    amqp_table_entry_t both[] = {s_str ("format", "pdf"), s_int ("size", 3), s_str ("extra", "1")};
    amqp_table_t h_both = {3, both};
    assert_string_equal (s_route (x, "k", &h_both), "all,any,none");
    amqp_table_entry_t one[] = {s_str ("format", "pdf"), s_int ("size", 4)};
    amqp_table_t h_one = {2, one};
    assert_string_equal (s_route (x, "k", &h_one), "any,none");
    amqp_table_entry_t other[] = {s_str ("format", "zip")};
    amqp_table_t h_other = {1, other};
    assert_string_equal (s_route (x, "k", &h_other), "none");
    //  no headers at all, and the routing key plays no part
    assert_string_equal (s_route (x, "format", NULL), "none");
    //  a value of another type is another value
    amqp_table_entry_t typed[] = {s_str ("format", "pdf"), s_str ("size", "3")};
    amqp_table_t h_typed = {2, typed};
    assert_string_equal (s_route (x, "k", &h_typed), "any,none");
    //  but a byte array is the string of its bytes, as RabbitMQ compares
    amqp_table_entry_t raw[] = {s_str ("format", "pdf"), s_int ("size", 3)};
    raw[0].value.kind = AMQP_FIELD_KIND_BYTES;
    amqp_table_t h_raw = {2, raw};
    assert_string_equal (s_route (x, "k", &h_raw), "all,any,none");
}

static void
test_exchange_to_exchange_and_loops (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "qa");
    s_queue (f, "qb");
    arb_amqp_exchange_t *a = s_exchange (f, "a", ARB_AMQP_FANOUT);
    arb_amqp_exchange_t *b = s_exchange (f, "b", ARB_AMQP_TOPIC);
    arb_amqp_exchange_t *c = s_exchange (f, "c", ARB_AMQP_DIRECT);
    //  a -> b -> c -> a: a loop; and a -> c directly too
    arb_amqp_model_bind (a, "b", true, "", NULL);
    arb_amqp_model_bind (b, "c", true, "k.#", NULL);
    arb_amqp_model_bind (c, "a", true, "k.1", NULL);
    arb_amqp_model_bind (a, "c", true, "", NULL);
    arb_amqp_model_bind (b, "qb", false, "#", NULL);
    arb_amqp_model_bind (c, "qa", false, "k.1", NULL);
    //  every exchange is visited once, every queue reached once
    assert_string_equal (s_route (a, "k.1", NULL), "qa,qb");
    assert_string_equal (s_route (b, "k.1", NULL), "qa,qb");
    assert_string_equal (s_route (c, "k.1", NULL), "qa,qb");
    //  the key travels unchanged: c's binding to qa wants k.1
    assert_string_equal (s_route (a, "k.2", NULL), "qb");
    assert_string_equal (s_route (c, "k.2", NULL), "");
    //  a bound to itself
    arb_amqp_exchange_t *self = s_exchange (f, "self", ARB_AMQP_FANOUT);
    arb_amqp_model_bind (self, "self", true, "", NULL);
    arb_amqp_model_bind (self, "qa", false, "", NULL);
    assert_string_equal (s_route (self, "x", NULL), "qa");
    //  an exchange removed takes the bindings to and from it
    assert_true (arb_amqp_model_exchange_in_use (b));
    arb_amqp_model_remove_exchange (b);
    assert_string_equal (s_route (a, "k.1", NULL), "qa");
}

//  x-match all-with-x and any-with-x match the binding's x- arguments too
//  (but x-match); a binding with another x-match is refused (RabbitMQ's
//  406), and one stored before that check routes as all.
static void
test_headers_with_x (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "allx");
    s_queue (f, "anyx");
    s_queue (f, "plain");
    arb_amqp_exchange_t *x = s_exchange (f, "h", ARB_AMQP_HEADERS);
    amqp_table_entry_t allx[] = {s_str ("x-match", "all-with-x"), s_str ("x-k", "v"),
                                 s_int ("n", 1)};
    amqp_table_t allx_args = {3, allx};
    amqp_table_entry_t anyx[] = {s_str ("x-match", "any-with-x"), s_str ("x-k", "v"),
                                 s_int ("n", 1)};
    amqp_table_t anyx_args = {3, anyx};
    amqp_table_entry_t plain[] = {s_str ("x-match", "all"), s_str ("x-k", "v"), s_int ("n", 1)};
    amqp_table_t plain_args = {3, plain};
    char why[200];
    assert_int_equal (arb_amqp_model_check_binding (x, &allx_args, why, sizeof (why)), 0);
    assert_int_equal (arb_amqp_model_check_binding (x, &anyx_args, why, sizeof (why)), 0);
    arb_amqp_model_bind (x, "allx", false, "", &allx_args);
    arb_amqp_model_bind (x, "anyx", false, "", &anyx_args);
    arb_amqp_model_bind (x, "plain", false, "", &plain_args);
    amqp_table_entry_t both[] = {s_str ("x-k", "v"), s_int ("n", 1)};
    amqp_table_t h_both = {2, both};
    assert_string_equal (s_route (x, "k", &h_both), "allx,anyx,plain");
    amqp_table_entry_t n_only[] = {s_int ("n", 1)};
    amqp_table_t h_n = {1, n_only};
    assert_string_equal (s_route (x, "k", &h_n), "anyx,plain");
    amqp_table_entry_t k_only[] = {s_str ("x-k", "v")};
    amqp_table_t h_k = {1, k_only};
    assert_string_equal (s_route (x, "k", &h_k), "anyx");

    amqp_table_entry_t bogus[] = {s_str ("x-match", "anything")};
    amqp_table_t bogus_args = {1, bogus};
    assert_int_equal (arb_amqp_model_check_binding (x, &bogus_args, why, sizeof (why)), -1);
    assert_non_null (strstr (why, "value <<\"anything\">>;"));
    amqp_table_entry_t number[] = {s_int ("x-match", 5)};
    amqp_table_t number_args = {1, number};
    assert_int_equal (arb_amqp_model_check_binding (x, &number_args, why, sizeof (why)), -1);
    assert_non_null (strstr (why, "type signedint (value 5); expected longstr"));
    //  other exchange types take any arguments
    arb_amqp_exchange_t *d = s_exchange (f, "d", ARB_AMQP_DIRECT);
    assert_int_equal (arb_amqp_model_check_binding (d, &bogus_args, why, sizeof (why)), 0);
    //  a binding stored before the check routes as all
    s_queue (f, "legacy");
    arb_amqp_model_bind (x, "legacy", false, "", &bogus_args);
    assert_string_equal (s_route (x, "k", &h_n), "anyx,legacy,plain");
}

//  An exchange none of whose bindings matches hands the message to its
//  The names of the queues a message with several routing keys (CC and
//  BCC) reaches, sorted, comma-separated.
static char *
s_route_keys (arb_amqp_exchange_t *x, const char *const *keys, size_t nkeys)
{
    arb_amqp_targets_t queues = {0};
    size_t n = arb_amqp_model_route_keys (x, keys, nkeys, NULL, &queues);
    return s_names (&queues, n);
}

//  Sender-selected distribution: more keys reach more queues of a direct
//  or topic exchange (and the default one), each once; a fanout exchange
//  does not look at them; an alternate exchange is taken only when no key
//  matched.
static void
test_route_keys (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "q1");
    s_queue (f, "q2");
    s_queue (f, "q3");
    s_queue (f, "spare");
    amqp_table_entry_t ae[] = {s_str ("alternate-exchange", "ae")};
    amqp_table_t ae_args = {1, ae};
    arb_amqp_exchange_t *direct =
        arb_amqp_model_add_exchange (f->vhost, "d", ARB_AMQP_DIRECT, true, false, false, &ae_args);
    arb_amqp_exchange_t *spare = s_exchange (f, "ae", ARB_AMQP_FANOUT);
    arb_amqp_model_bind (spare, "spare", false, "", NULL);
    arb_amqp_model_bind (direct, "q1", false, "a", NULL);
    arb_amqp_model_bind (direct, "q2", false, "b", NULL);
    arb_amqp_model_bind (direct, "q2", false, "c", NULL);
    const char *abc[] = {"a", "b", "c", "a", "zz"};
    assert_string_equal (s_route_keys (direct, abc, 5), "q1,q2");
    const char *miss[] = {"zz", "yy"};
    assert_string_equal (s_route_keys (direct, miss, 2), "spare");
    const char *one_hit[] = {"zz", "c"};
    assert_string_equal (s_route_keys (direct, one_hit, 2), "q2");

    arb_amqp_exchange_t *topic = s_exchange (f, "t", ARB_AMQP_TOPIC);
    arb_amqp_model_bind (topic, "q1", false, "x.*", NULL);
    arb_amqp_model_bind (topic, "q3", false, "#.y", NULL);
    const char *xy[] = {"x.1", "z.y", "x.y"};
    assert_string_equal (s_route_keys (topic, xy, 3), "q1,q3");

    arb_amqp_exchange_t *fanout = s_exchange (f, "f", ARB_AMQP_FANOUT);
    arb_amqp_model_bind (fanout, "q3", false, "", NULL);
    assert_string_equal (s_route_keys (fanout, abc, 5), "q3");

    arb_amqp_exchange_t *dflt = arb_amqp_model_exchange (f->vhost, "");
    const char *names[] = {"missing", "q2", "q3", "q2"};
    assert_string_equal (s_route_keys (dflt, names, 4), "q2,q3");
}

//  alternate exchange; a loop of alternates ends.
static void
test_alternate_exchange (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    s_queue (f, "bound");
    s_queue (f, "spare");
    amqp_table_entry_t ae[] = {s_str ("alternate-exchange", "ae")};
    amqp_table_t ae_args = {1, ae};
    arb_amqp_exchange_t *x =
        arb_amqp_model_add_exchange (f->vhost, "x", ARB_AMQP_DIRECT, true, false, false, &ae_args);
    amqp_table_entry_t back[] = {s_str ("alternate-exchange", "x")};
    amqp_table_t back_args = {1, back};
    arb_amqp_exchange_t *spare = arb_amqp_model_add_exchange (f->vhost, "ae", ARB_AMQP_DIRECT, true,
                                                              false, false, &back_args);
    arb_amqp_model_bind (x, "bound", false, "k", NULL);
    arb_amqp_model_bind (spare, "spare", false, "s", NULL);
    assert_string_equal (s_route (x, "k", NULL), "bound");
    assert_string_equal (s_route (x, "s", NULL), "spare");
    assert_string_equal (s_route (x, "none", NULL), "");  //  x -> ae -> x: ends
    char why[256];
    assert_true (arb_amqp_model_same_alternate (x, &ae_args, why, sizeof (why)));
    assert_false (arb_amqp_model_same_alternate (x, NULL, why, sizeof (why)));
    assert_string_equal (why, "received none but current is the value 'ae' of type 'longstr'");
    assert_false (arb_amqp_model_same_alternate (x, &back_args, why, sizeof (why)));
    assert_string_equal (why, "received 'x' but current is 'ae'");
}

//  Bytes as Erlang's ~p prints them in RabbitMQ's texts: strings and
//  binaries, escapes, non-printable bytes as their values, latin-1 kept.
static void
test_erlang_terms (void **state)
{
    (void) state;
    char out[64];
    assert_string_equal (
        arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes ("some"), true),
        "<<\"some\">>");
    assert_string_equal (arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes (""), true),
                         "<<>>");
    assert_string_equal (
        arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes ("a\"b\\"), false),
        "\"a\\\"b\\\\\"");
    assert_string_equal (
        arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes ("\n"), false), "\"\\n\"");
    assert_string_equal (arb_amqp_frame_erlang (out, sizeof (out),
                                                amqp_cstring_bytes ("a\x01"
                                                                    "b"),
                                                true),
                         "<<97,1,98>>");
    assert_string_equal (
        arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes ("a\x01"), false), "[97,1]");
    assert_string_equal (
        arb_amqp_frame_erlang (out, sizeof (out), amqp_cstring_bytes ("\xc3\xa9"), true),
        "<<\"\xc3\xa9\">>");
    //  cut to fit, never past the end
    char small[8];
    arb_amqp_frame_erlang (small, sizeof (small), amqp_cstring_bytes ("abcdefghijkl"), true);
    assert_true (strlen (small) < sizeof (small));
}

//  A reply text over a short string's 255 bytes is cut to 252 and "...",
//  as RabbitMQ cuts its own, never inside a UTF-8 character.
static void
test_short_string_cut (void **state)
{
    (void) state;
    char cut[256], text[600];
    assert_string_equal (arb_amqp_frame_short (cut, "short"), "short");
    memset (text, 'a', 255);
    text[255] = 0;
    assert_string_equal (arb_amqp_frame_short (cut, text), text);  //  255: whole
    memset (text, 'a', 600);
    text[599] = 0;
    arb_amqp_frame_short (cut, text);
    assert_int_equal (strlen (cut), 255);
    assert_string_equal (cut + 252, "...");
    //  "é" (2 bytes) from byte 251: its second byte would be the 253rd
    memset (text, 'a', 251);
    strcpy (text + 251, "\xc3\xa9");
    memset (text + 253, 'b', 100);
    text[353] = 0;
    arb_amqp_frame_short (cut, text);
    assert_int_equal (strlen (cut), 254);
    assert_memory_equal (cut + 250, "a...", 5);
    //  a 4-byte character from byte 250
    memset (text, 'a', 250);
    strcpy (text + 250, "\xf0\x9f\x98\x80");
    memset (text + 254, 'b', 100);
    text[354] = 0;
    arb_amqp_frame_short (cut, text);
    assert_int_equal (strlen (cut), 253);
}

static void
test_headers_record (void **state)
{
    (void) state;
    uint8_t buf[64];
    amqp_bytes_t raw = {3, "\x80\x00\x01"};
    size_t n = arb_amqp_frame_record (buf, sizeof (buf), amqp_cstring_bytes ("x"),
                                      amqp_cstring_bytes ("a.b"), raw);
    assert_int_equal (n, ARB_AMQP_RECORD_OVERHEAD + 1 + 3 + 3);
    assert_memory_equal (buf,
                         "AQ\x01\x01"
                         "x\x03"
                         "a.b\x80\x00\x01",
                         n);
    amqp_bytes_t x, k, r;
    assert_int_equal (arb_amqp_frame_read_record (buf, n, &x, &k, &r), 0);
    assert_int_equal (x.len, 1);
    assert_int_equal (k.len, 3);
    assert_memory_equal (k.bytes, "a.b", 3);
    assert_int_equal (r.len, 3);
    //  empty names, no properties
    n = arb_amqp_frame_record (buf, sizeof (buf), amqp_empty_bytes, amqp_empty_bytes,
                               amqp_empty_bytes);
    assert_int_equal (n, ARB_AMQP_RECORD_OVERHEAD);
    assert_int_equal (arb_amqp_frame_read_record (buf, n, &x, &k, &r), 0);
    assert_int_equal (x.len + k.len + r.len, 0);
    //  too small a buffer; cut or foreign bytes
    assert_int_equal (arb_amqp_frame_record (buf, 6, amqp_cstring_bytes ("xy"), amqp_empty_bytes,
                                             amqp_empty_bytes),
                      0);
    assert_int_equal (arb_amqp_frame_read_record ((const uint8_t *) "AQ\x01\x05"
                                                                    "ab",
                                                  6, &x, &k, &r),
                      -1);
    assert_int_equal (arb_amqp_frame_read_record ((const uint8_t *) "flags", 5, &x, &k, &r), -1);
}

static void
test_queue_arguments (void **state)
{
    (void) state;
    arb_amqp_qargs_t settings;
    char why[256];
    amqp_table_entry_t kept[] = {s_int ("x-message-ttl", 500), s_int ("x-expires", 1000),
                                 s_int ("x-max-priority", 9),
                                 s_str ("x-dead-letter-exchange", "dlx")};
    amqp_table_t kept_args = {4, kept};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&kept_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.has_ttl);
    assert_int_equal (settings.message_ttl_ms, 500);
    assert_int_equal (settings.expires_ms, 1000);
    assert_int_equal (settings.max_priority, 9);
    assert_string_equal (settings.dlx, "dlx");
    arb_amqp_model_free_qargs (&settings);
    //  x-max-length and x-max-length-bytes are kept with each of
    //  RabbitMQ's overflows; an unknown overflow is refused, never ignored
    amqp_table_entry_t bound[] = {s_int ("x-max-length", 10), s_str ("x-overflow", "drop-head")};
    amqp_table_t bound_args = {2, bound};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&bound_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.has_max_length);
    assert_int_equal (settings.max_length, 10);
    arb_amqp_model_free_qargs (&settings);
    amqp_table_entry_t zero_bound[] = {s_int ("x-max-length", 0)};
    amqp_table_t zero_bound_args = {1, zero_bound};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&zero_bound_args, &settings, "queue 'q'", why, sizeof (why)),
        0);
    assert_true (settings.has_max_length);
    assert_int_equal (settings.max_length, 0);
    arb_amqp_model_free_qargs (&settings);
    assert_int_equal (
        arb_amqp_model_parse_qargs (&kept_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_false (settings.has_max_length);
    arb_amqp_model_free_qargs (&settings);
    amqp_table_entry_t negative[] = {s_int ("x-max-length", -1)};
    amqp_table_t negative_args = {1, negative};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&negative_args, &settings, "queue 'q'", why, sizeof (why)), -1);
    assert_string_equal (why, "invalid arg 'x-max-length' for queue 'q': {value_negative,-1}");
    amqp_table_entry_t bytes[] = {s_int ("x-max-length-bytes", 1000),
                                  s_str ("x-overflow", "reject-publish")};
    amqp_table_t bytes_args = {2, bytes};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&bytes_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.has_max_length_bytes);
    assert_int_equal (settings.max_length_bytes, 1000);
    assert_false (settings.has_max_length);
    assert_int_equal (settings.overflow, ARB_AMQP_REJECT_PUBLISH);
    arb_amqp_model_free_qargs (&settings);
    assert_int_equal (
        arb_amqp_model_parse_qargs (&kept_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_false (settings.has_max_length_bytes);
    arb_amqp_model_free_qargs (&settings);
    amqp_table_entry_t bad_bytes[] = {s_int ("x-max-length-bytes", -5)};
    amqp_table_t bad_bytes_args = {1, bad_bytes};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&bad_bytes_args, &settings, "queue 'q'", why, sizeof (why)),
        -1);
    assert_non_null (strstr (why, "x-max-length-bytes"));
    amqp_table_entry_t text_bytes[] = {s_str ("x-max-length-bytes", "1kb")};
    amqp_table_t text_bytes_args = {1, text_bytes};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&text_bytes_args, &settings, "queue 'q'", why, sizeof (why)),
        -1);
    assert_non_null (strstr (why, "\"expected integer, got longstr\""));
    const char *overflows[] = {"drop-head", "reject-publish", "reject-publish-dlx"};
    arb_amqp_overflow_t kinds[] = {ARB_AMQP_DROP_HEAD, ARB_AMQP_REJECT_PUBLISH,
                                   ARB_AMQP_REJECT_PUBLISH_DLX};
    for (size_t i = 0; i < 3; i++) {
        amqp_table_entry_t overflow[] = {s_int ("x-max-length", 5),
                                         s_str ("x-overflow", overflows[i])};
        amqp_table_t overflow_args = {2, overflow};
        assert_int_equal (
            arb_amqp_model_parse_qargs (&overflow_args, &settings, "queue 'q'", why, sizeof (why)),
            0);
        assert_int_equal (settings.overflow, kinds[i]);
        arb_amqp_model_free_qargs (&settings);
    }
    amqp_table_entry_t unknown[] = {s_int ("x-max-length", 5), s_str ("x-overflow", "drop-tail")};
    amqp_table_t unknown_args = {2, unknown};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&unknown_args, &settings, "queue 'q'", why, sizeof (why)), -1);
    assert_non_null (strstr (why, "x-overflow' for queue 'q': invalid_overflow"));
    //  x-expires 0 and a routing key without its exchange are wrong
    amqp_table_entry_t zero[] = {s_int ("x-expires", 0)};
    amqp_table_t zero_args = {1, zero};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&zero_args, &settings, "queue 'q'", why, sizeof (why)), -1);
    amqp_table_entry_t dlrk[] = {s_str ("x-dead-letter-routing-key", "k")};
    amqp_table_t dlrk_args = {1, dlrk};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&dlrk_args, &settings, "queue 'q'", why, sizeof (why)), -1);
}

//  The bounds: drop-head drops while either is over; a message fits if
//  it keeps both (the bytes counting its own body); none set, no bound.
static void
test_queue_bounds (void **state)
{
    (void) state;
    arb_amqp_qargs_t none = {0};
    assert_false (arb_amqp_model_is_bounded (&none));
    assert_false (arb_amqp_model_is_over (&none, 1000000, UINT64_MAX));
    assert_true (arb_amqp_model_fits (&none, 1000000, UINT64_MAX, UINT64_MAX));
    arb_amqp_qargs_t bytes = {.has_max_length_bytes = true, .max_length_bytes = 100};
    assert_true (arb_amqp_model_is_bounded (&bytes));
    assert_false (arb_amqp_model_is_over (&bytes, 50, 100));
    assert_true (arb_amqp_model_is_over (&bytes, 1, 101));
    assert_true (arb_amqp_model_fits (&bytes, 1000, 60, 40));
    assert_false (arb_amqp_model_fits (&bytes, 0, 60, 41));
    assert_false (arb_amqp_model_fits (&bytes, 0, 0, 101));  //  too big even alone
    assert_true (arb_amqp_model_fits (&bytes, 0, 0, 0));
    assert_false (arb_amqp_model_fits (&bytes, 0, UINT64_MAX, 1));  //  no wrap
    arb_amqp_qargs_t zero = {.has_max_length_bytes = true};
    assert_true (arb_amqp_model_is_bounded (&zero));
    assert_true (arb_amqp_model_is_over (&zero, 1, 1));
    assert_false (arb_amqp_model_is_over (&zero, 3, 0));  //  empty bodies weigh nothing
    assert_false (arb_amqp_model_fits (&zero, 0, 0, 1));
    arb_amqp_qargs_t both = {.has_max_length = true,
                             .max_length = 3,
                             .has_max_length_bytes = true,
                             .max_length_bytes = 100};
    assert_false (arb_amqp_model_is_over (&both, 3, 100));
    assert_true (arb_amqp_model_is_over (&both, 4, 10));
    assert_true (arb_amqp_model_is_over (&both, 2, 101));
    assert_true (arb_amqp_model_fits (&both, 2, 90, 10));
    assert_false (arb_amqp_model_fits (&both, 3, 0, 1));
    assert_false (arb_amqp_model_fits (&both, 2, 91, 10));
}

//  A queue keeps its byte bound, and a redeclare must name the same one.
static void
test_queue_bytes_redeclare (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    amqp_table_entry_t kept[] = {s_int ("x-max-length-bytes", 100)};
    amqp_table_t kept_args = {1, kept};
    arb_amqp_queue_t *q =
        arb_amqp_model_add_queue (f->vhost, "bounded", true, false, false, 0, &kept_args);
    assert_true (q->settings.has_max_length_bytes);
    assert_int_equal (q->settings.max_length_bytes, 100);
    assert_int_equal (q->settings.overflow, ARB_AMQP_DROP_HEAD);
    assert_true (arb_amqp_model_same_args (q->args, &kept_args));
    amqp_table_entry_t other[] = {s_int ("x-max-length-bytes", 200)};
    amqp_table_t other_args = {1, other};
    assert_false (arb_amqp_model_same_args (q->args, &other_args));
    amqp_table_t empty = {0, NULL};
    assert_false (arb_amqp_model_same_args (q->args, &empty));
    amqp_table_entry_t count[] = {s_int ("x-max-length", 100)};
    amqp_table_t count_args = {1, count};
    assert_false (arb_amqp_model_same_args (q->args, &count_args));
}

//  Quorum queues: RabbitMQ 3.10's declaration rules, the delivery limit,
//  and the type compared on a redeclare (from the stored arguments, as a
//  restart loads them).
static void
test_quorum_queues (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    char why[256];
    amqp_table_entry_t quorum[] = {s_str ("x-queue-type", "quorum"), s_int ("x-delivery-limit", 2)};
    amqp_table_t quorum_args = {2, quorum};
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      0);
    //  durable, not exclusive, not auto-delete
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, false, false, false,
                                                      "queue 'q'", why, sizeof (why)),
                      -1);
    assert_string_equal (why, "invalid property 'non-durable' for queue 'q'");
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, true, true, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, true, false, true, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    //  RabbitMQ's order: auto-delete, exclusive, then non-durable
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, false, true, true, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_string_equal (why, "invalid property 'auto-delete' for queue 'q'");
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, false, true, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_string_equal (why, "invalid property 'exclusive-owner' for queue 'q'");
    //  arguments of the other type are refused, for either
    amqp_table_entry_t priority[] = {s_str ("x-queue-type", "quorum"), s_int ("x-max-priority", 0)};
    amqp_table_t priority_args = {2, priority};
    assert_int_equal (arb_amqp_model_check_supported (&priority_args, true, false, false,
                                                      "queue 'q'", why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "x-max-priority"));
    amqp_table_entry_t mode[] = {s_str ("x-queue-type", "quorum"), s_str ("x-queue-mode", "lazy")};
    amqp_table_t mode_args = {2, mode};
    assert_int_equal (arb_amqp_model_check_supported (&mode_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    amqp_table_entry_t classic_limit[] = {s_int ("x-delivery-limit", 2)};
    amqp_table_t classic_limit_args = {1, classic_limit};
    assert_int_equal (arb_amqp_model_check_supported (&classic_limit_args, true, false, false,
                                                      "queue 'q'", why, sizeof (why)),
                      -1);
    //  values RabbitMQ refuses for arguments that change nothing here
    amqp_table_entry_t eager[] = {s_str ("x-queue-mode", "eager")};
    amqp_table_t eager_args = {1, eager};
    assert_int_equal (arb_amqp_model_check_supported (&eager_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "\"unsupported queue mode 'eager'\""));
    amqp_table_entry_t version[] = {s_int ("x-queue-version", 3)};
    amqp_table_t version_args = {1, version};
    assert_int_equal (arb_amqp_model_check_supported (&version_args, true, false, false,
                                                      "queue 'q'", why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "\"unsupported queue version '3'\""));
    amqp_table_entry_t lazy[] = {s_str ("x-queue-mode", "lazy"), s_int ("x-queue-version", 2)};
    amqp_table_t lazy_args = {2, lazy};
    assert_int_equal (arb_amqp_model_check_supported (&lazy_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      0);
    amqp_table_entry_t max_age[] = {s_str ("x-max-age", "1D")};
    amqp_table_t max_age_args = {1, max_age};
    assert_int_equal (arb_amqp_model_check_supported (&max_age_args, true, false, false,
                                                      "queue 'q'", why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "of queue type rabbit_classic_queue"));
    amqp_table_entry_t stream[] = {s_str ("x-queue-type", "stream")};
    amqp_table_t stream_args = {1, stream};
    assert_int_equal (arb_amqp_model_check_supported (&stream_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "stream"));
    amqp_table_entry_t classic[] = {s_str ("x-queue-type", "classic")};
    amqp_table_t classic_args = {1, classic};
    assert_int_equal (arb_amqp_model_check_supported (&classic_args, false, true, true, "queue 'q'",
                                                      why, sizeof (why)),
                      0);

    //  x-delivery-limit: an integer (a negative one as 0), else none
    arb_amqp_qargs_t settings;
    assert_int_equal (
        arb_amqp_model_parse_qargs (&quorum_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.quorum);
    assert_true (settings.has_delivery_limit);
    assert_int_equal (settings.delivery_limit, 2);
    arb_amqp_model_free_qargs (&settings);
    amqp_table_entry_t negative[] = {s_str ("x-queue-type", "quorum"),
                                     s_int ("x-delivery-limit", -1)};
    amqp_table_t negative_args = {2, negative};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&negative_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.has_delivery_limit);
    assert_int_equal (settings.delivery_limit, 0);
    amqp_table_entry_t text[] = {s_str ("x-queue-type", "quorum"), s_str ("x-delivery-limit", "x")};
    amqp_table_t text_args = {2, text};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&text_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.quorum);
    assert_false (settings.has_delivery_limit);
    assert_int_equal (
        arb_amqp_model_parse_qargs (&classic_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_false (settings.quorum);

    //  a redeclare names the same type (classic and none are one) and,
    //  for a quorum queue, the same delivery limit; x-max-priority is not
    //  compared for one (RabbitMQ ignores it then)
    arb_amqp_queue_t *q =
        arb_amqp_model_add_queue (f->vhost, "qq", true, false, false, 0, &quorum_args);
    assert_true (q->settings.quorum);
    assert_true (s_equivalent (q->args, &quorum_args));
    amqp_table_entry_t more[] = {s_str ("x-queue-type", "quorum"), s_int ("x-delivery-limit", 2),
                                 s_int ("x-max-priority", 5), s_int ("x-own", 1)};
    amqp_table_t more_args = {4, more};
    assert_true (s_equivalent (q->args, &more_args));
    amqp_table_entry_t other_limit[] = {s_str ("x-queue-type", "quorum"),
                                        s_int ("x-delivery-limit", 3)};
    amqp_table_t other_limit_args = {2, other_limit};
    assert_false (s_equivalent (q->args, &other_limit_args));
    //  RabbitMQ's account of it: the argument, and both values (with its
    //  type when the other side has none)
    const char *key;
    char values[256];
    assert_false (arb_amqp_model_equivalent_qargs (q->args, &other_limit_args, &key, values,
                                                   sizeof (values)));
    assert_string_equal (key, "x-delivery-limit");
    assert_string_equal (values, "received '3' but current is '2'");
    amqp_table_t empty = {0, NULL};
    assert_false (s_equivalent (q->args, &empty));
    assert_false (arb_amqp_model_equivalent_qargs (q->args, &empty, &key, values, sizeof (values)));
    assert_string_equal (key, "x-queue-type");
    assert_string_equal (values,
                         "received none but current is the value 'quorum' of type 'longstr'");
    assert_false (s_equivalent (q->args, &classic_args));
    arb_amqp_queue_t *c = arb_amqp_model_add_queue (f->vhost, "cq", true, false, false, 0, NULL);
    assert_false (c->settings.quorum);
    assert_true (s_equivalent (c->args, &classic_args));
    assert_true (s_equivalent (c->args, &empty));
    amqp_table_entry_t bare_quorum[] = {s_str ("x-queue-type", "quorum")};
    amqp_table_t bare_quorum_args = {1, bare_quorum};
    assert_false (s_equivalent (c->args, &bare_quorum_args));
}

//  x-single-active-consumer: a boolean (else refused, as RabbitMQ), for
//  either type; a queue with it true has its consumers' list, from its
//  stored arguments as a restart loads them, and a redeclare must say the
//  same.
static void
test_single_active_consumer (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    char why[256];
    amqp_table_entry_t sac[] = {s_bool ("x-single-active-consumer", true)};
    amqp_table_t sac_args = {1, sac};
    assert_int_equal (arb_amqp_model_check_supported (&sac_args, false, true, true, "queue 'q'",
                                                      why, sizeof (why)),
                      0);
    amqp_table_entry_t quorum[] = {s_bool ("x-single-active-consumer", true),
                                   s_str ("x-queue-type", "quorum")};
    amqp_table_t quorum_args = {2, quorum};
    assert_int_equal (arb_amqp_model_check_supported (&quorum_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      0);
    amqp_table_entry_t number[] = {s_int ("x-single-active-consumer", 1)};
    amqp_table_t number_args = {1, number};
    assert_int_equal (arb_amqp_model_check_supported (&number_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);
    assert_non_null (strstr (why, "x-single-active-consumer"));
    amqp_table_entry_t text[] = {s_str ("x-single-active-consumer", "true")};
    amqp_table_t text_args = {1, text};
    assert_int_equal (arb_amqp_model_check_supported (&text_args, true, false, false, "queue 'q'",
                                                      why, sizeof (why)),
                      -1);

    arb_amqp_qargs_t settings;
    assert_int_equal (
        arb_amqp_model_parse_qargs (&quorum_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_true (settings.single_active);
    assert_true (settings.quorum);
    arb_amqp_model_free_qargs (&settings);
    amqp_table_entry_t off[] = {s_bool ("x-single-active-consumer", false)};
    amqp_table_t off_args = {1, off};
    assert_int_equal (
        arb_amqp_model_parse_qargs (&off_args, &settings, "queue 'q'", why, sizeof (why)), 0);
    assert_false (settings.single_active);

    arb_amqp_queue_t *q =
        arb_amqp_model_add_queue (f->vhost, "sac", true, false, false, 0, &sac_args);
    assert_true (q->settings.single_active);
    assert_non_null (q->sac);
    assert_int_equal (zlistx_size (q->sac), 0);
    assert_true (s_equivalent (q->args, &sac_args));
    assert_false (s_equivalent (q->args, &off_args));
    amqp_table_t empty = {0, NULL};
    assert_false (s_equivalent (q->args, &empty));
    arb_amqp_queue_t *plain =
        arb_amqp_model_add_queue (f->vhost, "plain", true, false, false, 0, &off_args);
    assert_null (plain->sac);
    arb_amqp_model_remove_queue (q);  //  its list goes with it
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_topic_words),
        cmocka_unit_test (test_short_string_cut),
        cmocka_unit_test (test_erlang_terms),
        cmocka_unit_test (test_topic_hash),
        cmocka_unit_test (test_topic_many_hashes_do_not_blow_up),
        cmocka_unit_test_setup_teardown (test_default_exchange, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_route_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_names, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_direct_fanout_topic, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_headers_all_and_any, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_headers_with_x, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_alternate_exchange, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exchange_to_exchange_and_loops, s_setup, s_teardown),
        cmocka_unit_test (test_headers_record),
        cmocka_unit_test (test_queue_arguments),
        cmocka_unit_test (test_queue_bounds),
        cmocka_unit_test_setup_teardown (test_queue_bytes_redeclare, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_queues, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_single_active_consumer, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
