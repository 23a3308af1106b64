/*  test_kestrel_cmd.c — Kestrel command lines: every command and get
    option, Kestrel's option rules, set's numbers and noreply, queue names
    (fan-out, reserved characters, UTF-8, lengths), an empty key in every
    command's form, what a refused storage command says to skip, and
    exptime to an expiry time.
*/

#include "arb_kestrel_cmd.h"
#include "arb_proto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static arb_kestrel_rc_t
s_parse (const char *line, arb_kestrel_cmd_t *cmd)
{
    char why[256];
    arb_kestrel_rc_t rc = arb_kestrel_cmd_parse (line, strlen (line), cmd, why, sizeof (why));
    if (rc != ARB_KESTREL_OK)
        assert_true (strlen (why) > 0);
    return rc;
}

static void
test_get_options (void **state)
{
    (void) state;
    arb_kestrel_cmd_t cmd;
    assert_int_equal (s_parse ("get work", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_GET);
    assert_int_equal (cmd.queue_len, 4);
    assert_false (cmd.open || cmd.close || cmd.abort || cmd.peek || cmd.wait);

    assert_int_equal (s_parse ("GET work/close/t=500/open", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.close && cmd.open && cmd.wait);
    assert_int_equal (cmd.wait_ms, 500);
    assert_int_equal (cmd.queue_len, 4);
    assert_int_equal (cmd.key_len, strlen ("work/close/t=500/open"));
    assert_memory_equal (cmd.key, "work/close/t=500/open", cmd.key_len);

    assert_int_equal (s_parse ("gets work/peek", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.gets && cmd.peek);
    assert_int_equal (s_parse ("get work/abort", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.abort);
    assert_int_equal (s_parse ("get work/t=0", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.wait && cmd.wait_ms == 0);

    //  Kestrel's rules: peek and abort alone, a t= a number
    assert_int_equal (s_parse ("get work/peek/open", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("get work/abort/close", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("get work/peek/abort", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("get work/t=x", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("get work/t=2147483648", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("get /open", &cmd), ARB_KESTREL_BAD);
    //  and as Kestrel reads them: an unknown or empty option is ignored, a
    //  repeated one counts once, the last t= counts
    assert_int_equal (s_parse ("get work/opne", &cmd), ARB_KESTREL_OK);
    assert_false (cmd.open);
    assert_int_equal (s_parse ("get work//open/", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.open);
    assert_int_equal (cmd.key_len, strlen ("work//open/"));
    assert_int_equal (s_parse ("get work/open/open", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.open);
    assert_int_equal (s_parse ("get work/t=5/t=6", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.wait && cmd.wait_ms == 6);
    assert_int_equal (s_parse ("get work/xyz/\xc3\xa9/peek", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.peek);
    //  what a refusal quotes: t= without its number is t='s; an option
    //  with a control byte (the VALUE line would carry it), printable, cut
    //  at 32 bytes
    char why[256];
    const char *line = "get work/t=";
    assert_int_equal (arb_kestrel_cmd_parse (line, strlen (line), &cmd, why, sizeof (why)),
                      ARB_KESTREL_BAD);
    assert_string_equal (why, "bad get option t=: a wait in ms, at most 2147483647");
    line = "get work/a\rb\x01\xc3\xa9";
    assert_int_equal (arb_kestrel_cmd_parse (line, strlen (line), &cmd, why, sizeof (why)),
                      ARB_KESTREL_BAD);
    assert_string_equal (why, "control character in get option 'a.b...'");
    line = "get work/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy\x7f";
    assert_int_equal (arb_kestrel_cmd_parse (line, strlen (line), &cmd, why, sizeof (why)),
                      ARB_KESTREL_BAD);
    assert_string_equal (why,
                         "control character in get option 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
    assert_int_equal (s_parse ("get", &cmd), ARB_KESTREL_BAD);
    //  several keys: the first, as Kestrel serves them
    assert_int_equal (s_parse ("get a/open b c", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.open);
    assert_memory_equal (cmd.key, "a/open", cmd.key_len);
    assert_int_equal (cmd.key_len, 6);
    assert_int_equal (s_parse ("gets a b c d e f g h i j k l", &cmd), ARB_KESTREL_OK);
    assert_memory_equal (cmd.key, "a", cmd.key_len);
}

static void
test_set (void **state)
{
    (void) state;
    arb_kestrel_cmd_t cmd;
    assert_int_equal (s_parse ("set q 7 60 5", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_SET);
    assert_int_equal (cmd.flags, 7);
    assert_int_equal (cmd.exptime, 60);
    assert_int_equal (cmd.bytes, 5);
    assert_false (cmd.noreply);
    assert_int_equal (s_parse ("set q 4294967295 -1 0 noreply", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.noreply);
    assert_int_equal (cmd.flags, 4294967295u);
    assert_int_equal (cmd.exptime, -1);

    //  bad fields with a good length: refused, the block skipped
    const char *skipped[] = {
        "set q x 0 5",       "set q 4294967296 0 5", "set q 0 x 5",
        "set q 0 0 5 extra", "set q/open 0 0 5",     "set a.b 0 0 5",
        "add q 0 0 5",       "cas q 0 0 5 1",        "replace q 0 0 5 noreply",
    };
    for (size_t i = 0; i < sizeof (skipped) / sizeof (skipped[0]); i++) {
        assert_int_equal (s_parse (skipped[i], &cmd), ARB_KESTREL_BAD);
        assert_true (cmd.skip);
        assert_int_equal (cmd.bytes, 5);
    }
    assert_int_equal (s_parse ("replace q 0 0 5 noreply", &cmd), ARB_KESTREL_BAD);
    assert_true (cmd.noreply);
    //  no length to skip by: the stream cannot go on
    assert_int_equal (s_parse ("set q 0 0", &cmd), ARB_KESTREL_FATAL);
    assert_int_equal (s_parse ("set q 0 0 -5", &cmd), ARB_KESTREL_FATAL);
    assert_int_equal (s_parse ("set q 0 0 99999999999999999999999", &cmd), ARB_KESTREL_FATAL);
}

static void
test_other_commands (void **state)
{
    (void) state;
    arb_kestrel_cmd_t cmd;
    assert_int_equal (s_parse ("delete q", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_DELETE);
    assert_int_equal (s_parse ("delete q noreply", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.noreply);
    assert_int_equal (s_parse ("flush q", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_FLUSH);
    assert_int_equal (s_parse ("flush_all", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("flush_all 0 noreply", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.noreply);
    assert_int_equal (s_parse ("flush_all 10", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("stats", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_STATS);
    //  arguments ignored, as Kestrel does
    assert_int_equal (s_parse ("stats items", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_STATS);
    assert_int_equal (s_parse ("Version", &cmd), ARB_KESTREL_OK);
    assert_int_equal (cmd.verb, ARB_KESTREL_VERSION);
    assert_int_equal (s_parse ("shutdown", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("quit", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("", &cmd), ARB_KESTREL_BAD);
    assert_int_equal (s_parse ("   ", &cmd), ARB_KESTREL_BAD);
    //  whether a block follows is unknown: the stream cannot go on
    assert_int_equal (s_parse ("monitor q 1", &cmd), ARB_KESTREL_FATAL);
    assert_int_equal (s_parse ("a b c d e f g h i", &cmd), ARB_KESTREL_FATAL);
    char line[ARB_KESTREL_LINE_MAX + 2];
    memset (line, 'a', sizeof (line) - 1);
    line[sizeof (line) - 1] = 0;
    assert_int_equal (s_parse (line, &cmd), ARB_KESTREL_FATAL);
}

static void
test_queue_names (void **state)
{
    (void) state;
    char why[128];
    size_t parent;
    assert_int_equal (arb_kestrel_cmd_check_queue ("orders+audit", 12, &parent, why, sizeof (why)),
                      0);
    assert_int_equal (parent, 6);
    assert_int_equal (arb_kestrel_cmd_check_queue ("a+b+c", 5, &parent, why, sizeof (why)), 0);
    assert_int_equal (parent, 1);
    assert_int_equal (arb_kestrel_cmd_check_queue ("plain_name-1", 12, &parent, why, sizeof (why)),
                      0);
    assert_int_equal (parent, 0);
    assert_int_equal (arb_kestrel_cmd_check_queue ("caf\xc3\xa9", 5, &parent, why, sizeof (why)),
                      0);
    const char *bad[] = {"+a",       "a+",  "a~b",          "a.b",   "a/b", "a\x01", "caf\xc3",
                         "\xc0\xaf", "a b", "\xed\xa0\x80", "a\x7f", "q@w", "a+b@c"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++)
        assert_int_equal (
            arb_kestrel_cmd_check_queue (bad[i], strlen (bad[i]), &parent, why, sizeof (why)), -1);
    assert_int_equal (arb_kestrel_cmd_check_queue ("", 0, &parent, why, sizeof (why)), -1);
    char name[ARB_NAME_MAX + 2];
    memset (name, 'q', sizeof (name));
    assert_int_equal (arb_kestrel_cmd_check_queue (name, ARB_NAME_MAX, &parent, why, sizeof (why)),
                      0);
    assert_int_equal (
        arb_kestrel_cmd_check_queue (name, ARB_NAME_MAX + 1, &parent, why, sizeof (why)), -1);
    //  a key over 250 bytes with its options
    arb_kestrel_cmd_t cmd;
    char line[400];
    snprintf (line, sizeof (line), "get %.*s/open/t=100000000", 230, name);
    assert_int_equal (s_parse (line, &cmd), ARB_KESTREL_BAD);
    snprintf (line, sizeof (line), "get %.*s/open", 200, name);
    assert_int_equal (s_parse (line, &cmd), ARB_KESTREL_OK);
}

//  A key that is not there, or empty before its options, is refused the
//  same way by every command, naming the command's form; a set's block
//  is still skipped by its length.
static void
test_empty_keys (void **state)
{
    (void) state;
    struct {
        const char *line;
        const char *why;
        bool skip;
        bool noreply;
    } cases[] = {
        {"get", "empty queue name (get <queue>[/options])", false, false},
        {"get ", "empty queue name (get <queue>[/options])", false, false},
        {"get /t=10", "empty queue name (get <queue>[/options])", false, false},
        {"gets /open", "empty queue name (gets <queue>[/options])", false, false},
        {"set  0 0 1", "empty queue name (set <queue> <flags> <exptime> <bytes> [noreply])", true,
         false},
        {"set  0 0 1 noreply", "empty queue name (set <queue> <flags> <exptime> <bytes> [noreply])",
         true, true},
        {"set /t 0 0 1", "empty queue name (set <queue> <flags> <exptime> <bytes> [noreply])", true,
         false},
        {"delete", "empty queue name (delete <queue> [noreply])", false, false},
        {"delete  noreply", "empty queue name (delete <queue> [noreply])", false, true},
        {"delete /x", "empty queue name (delete <queue> [noreply])", false, false},
        {"flush ", "empty queue name (flush <queue> [noreply])", false, false},
        {"flush  noreply", "empty queue name (flush <queue> [noreply])", false, true},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        arb_kestrel_cmd_t cmd;
        char why[256];
        assert_int_equal (
            arb_kestrel_cmd_parse (cases[i].line, strlen (cases[i].line), &cmd, why, sizeof (why)),
            ARB_KESTREL_BAD);
        assert_string_equal (why, cases[i].why);
        assert_int_equal (cmd.skip, cases[i].skip);
        assert_int_equal (cmd.noreply, cases[i].noreply);
        if (cases[i].skip)
            assert_int_equal (cmd.bytes, 1);
    }
    //  a line a field short without the gap: which one is missing is
    //  unknown, and so the block's length
    arb_kestrel_cmd_t cmd;
    assert_int_equal (s_parse ("set 0 0 1", &cmd), ARB_KESTREL_FATAL);
    //  lines that are whole are taken as ever, however spaced
    assert_int_equal (s_parse ("set  q 0 0 1", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("get  q", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("get  noreply", &cmd), ARB_KESTREL_OK);
    assert_int_equal (s_parse ("stats  ", &cmd), ARB_KESTREL_OK);
    //  noreply after a queue only: `delete noreply` names the queue
    assert_int_equal (s_parse ("delete noreply", &cmd), ARB_KESTREL_OK);
    assert_false (cmd.noreply);
    assert_memory_equal (cmd.queue, "noreply", cmd.queue_len);
    assert_int_equal (s_parse ("delete noreply noreply", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.noreply);
    //  fields between the queue and noreply are ignored, as Kestrel does
    //  (memcached's `delete <key> 0`)
    assert_int_equal (s_parse ("delete q 0", &cmd), ARB_KESTREL_OK);
    assert_false (cmd.noreply);
    assert_int_equal (s_parse ("delete q 0 noreply", &cmd), ARB_KESTREL_OK);
    assert_true (cmd.noreply);
    assert_memory_equal (cmd.queue, "q", cmd.queue_len);
}

static void
test_expiry (void **state)
{
    (void) state;
    uint64_t now = 1700000000000ull;
    assert_int_equal (arb_kestrel_cmd_expires_ms (0, now), 0);
    assert_int_equal (arb_kestrel_cmd_expires_ms (60, now), now + 60000);
    assert_int_equal (arb_kestrel_cmd_expires_ms (999999, now), now + 999999000ull);
    assert_int_equal (arb_kestrel_cmd_expires_ms (1000000, now), 1000000000ull);
    assert_int_equal (arb_kestrel_cmd_expires_ms (1800000000, now), 1800000000000ull);
    assert_int_equal (arb_kestrel_cmd_expires_ms (-1, now), 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_get_options),    cmocka_unit_test (test_set),
        cmocka_unit_test (test_other_commands), cmocka_unit_test (test_queue_names),
        cmocka_unit_test (test_empty_keys),     cmocka_unit_test (test_expiry),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
