/*  test_options.c — settings from one table: defaults, then the config
    file, then the command line; every kind of value; sections; and the
    refusals, which name the file, the line and the key.
*/

#include "arb_endpoint.h"
#include "arb_options.h"

#include <czmq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    const char *addr;
    uint64_t count;
    uint64_t timeout_ms;
    uint64_t size;
    bool verbose;
    char section_seen[128];
    char addr_from[128];   //  arb_options_origin's, "unset" for the default
    char count_from[128];  //  the same for count
} s_settings_t;

static int
s_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    if (strncmp (section, "queue.", 6) || !streq (key, "priority")) {
        snprintf (why, size, "not a setting of a queue");
        return -1;
    }
    snprintf (settings->section_seen, sizeof (settings->section_seen), "%s:%s", section + 6, value);
    return 0;
}

//  A config file with the given text; returns its path (static buffer).
static const char *
s_file (const char *text)
{
    static char path[64];
    snprintf (path, sizeof (path), "/tmp/arb-options-%d.conf", (int) getpid ());
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    return path;
}

//  Parses "test [--config=FILE] ARGV...", FILE holding config_text if any.
static arb_options_rc_t
s_run (arb_options_t *options, const char *config_text, int argc, char **argv)
{
    char config[128];
    char *args[16] = {"test"};
    int n = 1;
    if (config_text) {
        snprintf (config, sizeof (config), "--config=%s", s_file (config_text));
        args[n++] = config;
    }
    for (int i = 0; i < argc && n < 16; i++)
        args[n++] = argv[i];
    int first = 0;
    return arb_options_parse (options, n, args, &first);
}

static arb_options_rc_t
s_parse (s_settings_t *settings, const char *config_text, int argc, char **argv)
{
    arb_option_t table[] = {
        {"addr", 'a', ARB_OPT_STR, &settings->addr, 0, 0, "ADDR", "an address"},
        {"count", 0, ARB_OPT_UINT, &settings->count, 1, 100, "N", "a count"},
        {"timeout", 0, ARB_OPT_SECONDS, &settings->timeout_ms, 0, 60000, "S", "a time"},
        {"size", 0, ARB_OPT_BYTES, &settings->size, 0, 1u << 30, "BYTES", "a size"},
        {"verbose", 'v', ARB_OPT_BOOL, &settings->verbose, 0, 0, NULL, "a flag"},
    };
    arb_options_t *options = arb_options_new ("test", table, 5, NULL);
    arb_options_set_sections (options, s_section, settings);
    arb_options_rc_t rc = s_run (options, config_text, argc, argv);
    //  strings are owned by the set: keep what the test looks at
    static char addr[64];
    if (settings->addr) {
        snprintf (addr, sizeof (addr), "%s", settings->addr);
        settings->addr = addr;
    }
    arb_options_origin (options, "addr", "unset", settings->addr_from,
                        sizeof (settings->addr_from));
    arb_options_origin (options, "count", "unset", settings->count_from,
                        sizeof (settings->count_from));
    arb_options_destroy (&options);
    return rc;
}

static void
test_file_then_flags (void **state)
{
    (void) state;
    s_settings_t settings = {.addr = "default", .count = 5};
    char *argv[] = {"--count", "7", "-v"};
    assert_int_equal (s_parse (&settings,
                               "# a comment\n"
                               "addr = 127.0.0.1:1\n"
                               "count = 3\n"
                               "timeout = 1.5\n"
                               "size = 16M\n"
                               "[queue.images]\n"
                               "priority = 4\n",
                               3, argv),
                      ARB_OPTIONS_RUN);
    assert_string_equal (settings.addr, "127.0.0.1:1");
    assert_int_equal (settings.count, 7);  //  the flag wins over the file
    assert_int_equal (settings.timeout_ms, 1500);
    assert_int_equal (settings.size, 16u << 20);
    assert_true (settings.verbose);
    assert_string_equal (settings.section_seen, "images:4");
    //  where each came from, for messages: the file's line, the flag over it
    char where[128];
    snprintf (where, sizeof (where), "%s:2: addr", s_file (""));
    assert_string_equal (settings.addr_from, where);
    assert_string_equal (settings.count_from, "--count");

    //  a flag the file sets is turned off by --no-NAME
    s_settings_t off = {.addr = "default", .count = 5};
    char *no[] = {"--no-verbose"};
    assert_int_equal (s_parse (&off, "verbose = true\n", 1, no), ARB_OPTIONS_RUN);
    assert_false (off.verbose);
    //  only flags have one
    char *bad[] = {"--no-count"};
    assert_int_equal (s_parse (&off, NULL, 1, bad), ARB_OPTIONS_BAD);
}

static void
test_defaults_stay (void **state)
{
    (void) state;
    s_settings_t settings = {.addr = "default", .count = 5, .timeout_ms = 250};
    assert_int_equal (s_parse (&settings, NULL, 0, NULL), ARB_OPTIONS_RUN);
    assert_string_equal (settings.addr, "default");
    assert_int_equal (settings.count, 5);
    assert_int_equal (settings.timeout_ms, 250);
    assert_false (settings.verbose);
    assert_string_equal (settings.addr_from, "unset");
}

static void
test_refusals (void **state)
{
    (void) state;
    s_settings_t settings = {0};
    assert_int_equal (s_parse (&settings, "count = 3\nnope = 1\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "count = 0\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "count = 3x\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "timeout = 61\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "size = 2G\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "verbose = maybe\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "[queue.x]\ncolour = red\n", 0, NULL), ARB_OPTIONS_BAD);
    assert_int_equal (s_parse (&settings, "just words\n", 0, NULL), ARB_OPTIONS_BAD);
    //  one value given twice: which did the file mean?
    assert_int_equal (s_parse (&settings, "count = 3\ncount = 4\n", 0, NULL), ARB_OPTIONS_BAD);
    char *bad_flag[] = {"--count", "200"};
    assert_int_equal (s_parse (&settings, NULL, 2, bad_flag), ARB_OPTIONS_BAD);
    char *unknown[] = {"--colour", "red"};
    assert_int_equal (s_parse (&settings, NULL, 2, unknown), ARB_OPTIONS_BAD);
    char *missing[] = {"--config", "/nonexistent/arb.conf"};
    assert_int_equal (s_parse (&settings, NULL, 2, missing), ARB_OPTIONS_BAD);
}

//  first NULL: a program without positional arguments, which are refused
static void
test_no_positional_arguments (void **state)
{
    (void) state;
    uint64_t count = 1;
    arb_option_t table[] = {{"count", 0, ARB_OPT_UINT, &count, 1, 100, "N", "a count"}};
    char *stray[] = {"test", "--count", "3", "stray"};
    arb_options_t *options = arb_options_new ("test", table, 1, NULL);
    assert_int_equal (arb_options_parse (options, 4, stray, NULL), ARB_OPTIONS_BAD);
    arb_options_destroy (&options);
    char *check[] = {"test", "stray", "--check-config"};
    options = arb_options_new ("test", table, 1, NULL);
    assert_int_equal (arb_options_parse (options, 3, check, NULL), ARB_OPTIONS_BAD);
    arb_options_destroy (&options);
    char *fine[] = {"test", "--count", "3"};
    options = arb_options_new ("test", table, 1, NULL);
    assert_int_equal (arb_options_parse (options, 3, fine, NULL), ARB_OPTIONS_RUN);
    assert_int_equal (count, 3);
    int first = 0;
    assert_int_equal (arb_options_parse (options, 4, stray, &first), ARB_OPTIONS_RUN);
    assert_int_equal (first, 3);
    arb_options_destroy (&options);
}

//  Writes a string through a show callback: "url" without what follows ':'
static bool
s_show (void *arg, const arb_option_t *option, const char *value, char *buf, size_t size)
{
    (*(int *) arg)++;
    if (!streq (option->name, "url"))
        return false;
    snprintf (buf, size, "%.*s:***", (int) strcspn (value, ":"), value);
    return true;
}

static void
test_print_shows_strings_through_the_callback (void **state)
{
    (void) state;
    const char *url = NULL, *addr = NULL;
    arb_option_t table[] = {
        {"url", 0, ARB_OPT_STR, &url, 0, 0, "URL", "a URL with a secret"},
        {"addr", 0, ARB_OPT_STR, &addr, 0, 0, "ADDR", "an address"},
    };
    arb_options_t *options = arb_options_new ("test", table, 2, NULL);
    int calls = 0;
    arb_options_set_show (options, s_show, &calls);
    char *argv[] = {"--url=bob:hunter2", "--addr=here:1"};
    assert_int_equal (s_run (options, NULL, 2, argv), ARB_OPTIONS_RUN);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    arb_options_print (options, out);
    fclose (out);
    assert_non_null (strstr (text, "url = bob:***\n"));
    assert_null (strstr (text, "hunter2"));
    assert_non_null (strstr (text, "addr = here:1\n"));  //  false: as it is
    assert_int_equal (calls, 2);
    free (text);
    arb_options_destroy (&options);
}

//  Every section key seen, as "section|key=value" lines.
static int
s_collect (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    (void) why, (void) size;
    char *seen = (char *) arg;
    size_t len = strlen (seen);
    snprintf (seen + len, 4096 - len, "%s|%s=%s\n", section, key, value);
    return 0;
}

static void
test_long_section_names_stay_whole (void **state)
{
    (void) state;
    //  inih keeps 49 bytes of a section's name: two names alike in those
    //  must stay two sections, a name of 300 bytes whole, and a value
    //  longer than inih's first line buffer (200) whole too
    char one[80], two[80], huge[301], value[501];
    snprintf (one, sizeof (one), "bridge.%s_one",
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    snprintf (two, sizeof (two), "bridge.%s_two",
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    memset (huge, 'h', 300);
    huge[300] = 0;
    memset (value, 'v', 500);
    value[500] = 0;
    char *text = NULL;
    assert_true (asprintf (&text,
                           "\xEF\xBB\xBF[%s]\nqueue = one\n  [%s]  \r\nqueue = two\n[%s]\nk = %s\n"
                           "[short]\nk = 1\n",
                           one, two, huge, value)
                 > 0);
    const char *addr = NULL;
    arb_option_t table[] = {{"addr", 0, ARB_OPT_STR, &addr, 0, 0, "ADDR", "an address"}};
    arb_options_t *options = arb_options_new ("test", table, 1, NULL);
    char seen[4096] = "";
    arb_options_set_sections (options, s_collect, seen);
    assert_int_equal (s_run (options, text, 0, NULL), ARB_OPTIONS_RUN);
    char *expect = NULL;
    assert_true (asprintf (&expect, "%s|queue=one\n%s|queue=two\n%s|k=%s\nshort|k=1\n", one, two,
                           huge, value)
                 > 0);
    assert_string_equal (seen, expect);
    free (expect);
    free (text);
    arb_options_destroy (&options);
}

static void
test_check_and_help (void **state)
{
    (void) state;
    s_settings_t settings = {0};
    char *check[] = {"--check-config"};
    assert_int_equal (s_parse (&settings, "count = 2\n", 1, check), ARB_OPTIONS_CHECK);
    assert_int_equal (settings.count, 2);
    char *version[] = {"--version"};
    assert_int_equal (s_parse (&settings, "nope = 1\n", 1, version), ARB_OPTIONS_EXIT);
}

static void
test_values (void **state)
{
    (void) state;
    arb_option_t seconds = {"t", 0, ARB_OPT_SECONDS, NULL, 0, UINT64_MAX / 2, "S", ""};
    uint64_t ms;
    char why[128];
    assert_int_equal (arb_options_value (&seconds, "0.25", &ms, why, sizeof (why)), 0);
    assert_int_equal (ms, 250);
    assert_int_equal (arb_options_value (&seconds, "2.0005", &ms, why, sizeof (why)), 0);
    assert_int_equal (ms, 2000);
    //  above 0 is never 0 (none): below a millisecond is one
    assert_int_equal (arb_options_value (&seconds, "0.0004", &ms, why, sizeof (why)), 0);
    assert_int_equal (ms, 1);
    assert_int_equal (arb_options_value (&seconds, "0.000", &ms, why, sizeof (why)), 0);
    assert_int_equal (ms, 0);
    assert_int_equal (arb_options_value (&seconds, "-1", &ms, why, sizeof (why)), -1);
    assert_int_equal (arb_options_value (&seconds, "1.", &ms, why, sizeof (why)), -1);
    assert_int_equal (arb_options_value (&seconds, "99999999999999999999", &ms, why, sizeof (why)),
                      -1);
    //  well formed but past 64 bits: out of range, as past the maximum
    assert_string_equal (why, "99999999999999999999 is out of range (0 to 9.22337e+15 seconds)");
    arb_option_t count = {"n", 0, ARB_OPT_UINT, NULL, 1, 100, "N", ""};
    assert_int_equal (arb_options_value (&count, "18446744073709551616", &ms, why, sizeof (why)),
                      -1);
    assert_string_equal (why, "18446744073709551616 is out of range (1 to 100)");
    assert_int_equal (arb_options_value (&count, "1x", &ms, why, sizeof (why)), -1);
    assert_string_equal (why, "expected a whole number, not '1x'");
    arb_option_t bytes = {"b", 0, ARB_OPT_BYTES, NULL, 0, UINT64_MAX, "B", ""};
    assert_int_equal (arb_options_value (&bytes, "64k", &ms, why, sizeof (why)), 0);
    assert_int_equal (ms, 65536);
    assert_int_equal (arb_options_value (&bytes, "K", &ms, why, sizeof (why)), -1);
    assert_int_equal (arb_options_value (&bytes, "18446744073709551615", &ms, why, sizeof (why)),
                      0);
    assert_true (ms == UINT64_MAX);
    assert_int_equal (arb_options_value (&bytes, "99999999999G", &ms, why, sizeof (why)), -1);
    assert_string_equal (why, "99999999999G is out of range (0 to 18446744073709551615)");
}

//  A program's own rule: names that start with '-' are refused.
static int
s_check (void *arg, const arb_option_t *option, const char *text, char *why, size_t size)
{
    (void) arg;
    if (streq (option->name, "name") && text[0] == '-') {
        snprintf (why, size, "a name does not start with '-'");
        return -1;
    }
    return 0;
}

typedef struct {
    int mode;
    arb_opt_list_t queues;
    const char *name;
    arb_options_t *options;  //  owns the strings until s_words_end
} s_words_t;

static arb_options_rc_t
s_words (s_words_t *words, const char *config_text, int argc, char **argv)
{
    static arb_option_t table[3];
    table[0] =
        (arb_option_t){"mode", 0, ARB_OPT_CHOICE, &words->mode, 0, 0, "light|heavy|odd", "a mode"};
    table[1] = (arb_option_t){"queue", 'q', ARB_OPT_LIST, &words->queues, 0, 3, "Q", "queues"};
    table[2] = (arb_option_t){"name", 0, ARB_OPT_STR, &words->name, 0, 0, "NAME", "a name"};
    words->options = arb_options_new ("test", table, 3, NULL);
    arb_options_set_check (words->options, s_check, NULL);
    return s_run (words->options, config_text, argc, argv);
}

static void
s_words_end (s_words_t *words)
{
    arb_options_destroy (&words->options);
    assert_null (words->queues.items);  //  the list is the set's, and went with it
    assert_int_equal (words->queues.count, 0);
}

static void
test_choices_lists_and_checks (void **state)
{
    (void) state;
    s_words_t words = {0};
    assert_int_equal (s_words (&words, "mode = odd\nqueue = a\nqueue = b c\n", 0, NULL),
                      ARB_OPTIONS_RUN);
    assert_int_equal (words.mode, 2);
    assert_int_equal (words.queues.count, 2);
    assert_string_equal (words.queues.items[0], "a");
    assert_string_equal (words.queues.items[1], "b c");
    s_words_end (&words);

    //  the command line's list replaces the file's, and adds up itself
    char *flags[] = {"--queue", "x", "-q", "y", "--mode", "light"};
    assert_int_equal (s_words (&words, "mode = heavy\nqueue = a\n", 6, flags), ARB_OPTIONS_RUN);
    assert_int_equal (words.mode, 0);
    assert_int_equal (words.queues.count, 2);
    assert_string_equal (words.queues.items[0], "x");
    assert_string_equal (words.queues.items[1], "y");
    s_words_end (&words);

    //  no list anywhere: empty
    assert_int_equal (s_words (&words, NULL, 0, NULL), ARB_OPTIONS_RUN);
    assert_int_equal (words.queues.count, 0);
    s_words_end (&words);

    assert_int_equal (s_words (&words, "mode = medium\n", 0, NULL), ARB_OPTIONS_BAD);
    s_words_end (&words);
    assert_int_equal (s_words (&words, "mode = \n", 0, NULL), ARB_OPTIONS_BAD);
    s_words_end (&words);
    assert_int_equal (s_words (&words, "queue = a\nqueue = b\nqueue = c\nqueue = d\n", 0, NULL),
                      ARB_OPTIONS_BAD);
    s_words_end (&words);
    assert_int_equal (s_words (&words, "name = -x\n", 0, NULL), ARB_OPTIONS_BAD);
    s_words_end (&words);
    char *bad_name[] = {"--name", "-x"};
    assert_int_equal (s_words (&words, NULL, 2, bad_name), ARB_OPTIONS_BAD);
    s_words_end (&words);
    char *good_name[] = {"--name", "x-"};
    assert_int_equal (s_words (&words, NULL, 2, good_name), ARB_OPTIONS_RUN);
    assert_string_equal (words.name, "x-");
    s_words_end (&words);

    arb_option_t mode = {"mode", 0, ARB_OPT_CHOICE, NULL, 0, 0, "full|normal", ""};
    int index = -1;
    char why[128];
    assert_int_equal (arb_options_value (&mode, "normal", &index, why, sizeof (why)), 0);
    assert_int_equal (index, 1);
    assert_int_equal (arb_options_value (&mode, "ful", &index, why, sizeof (why)), -1);
    assert_string_equal (why, "expected full or normal, not 'ful'");
}

//  The one endpoint check of every program (arb_endpoint.h): libzmq would
//  wrap a port over 65535 (99999 to 34463) and take 65536 as 0.
static void
s_endpoint_bad (const char *endpoint, bool bind, const char *reason)
{
    char why[256];
    if (arb_endpoint_check (endpoint, bind, why, sizeof (why)) != -1)
        fail_msg ("'%s' (bind %d) was taken", endpoint, bind);
    if (!strstr (why, reason))
        fail_msg ("'%s': expected '%s' in '%s'", endpoint, reason, why);
}

static void
test_endpoint_check (void **state)
{
    (void) state;
    char why[256];
    const char *good[] = {"tcp://127.0.0.1:7700", "tcp://127.0.0.1:1", "tcp://127.0.0.1:65535",
                          "tcp://localhost:7700", "tcp://[::1]:7700",  "tcp://eth0:7700",
                          "ipc:///tmp/a.sock",    "inproc://broker"};
    for (size_t i = 0; i < sizeof (good) / sizeof (good[0]); i++) {
        assert_int_equal (arb_endpoint_check (good[i], false, why, sizeof (why)), 0);
        assert_int_equal (arb_endpoint_check (good[i], true, why, sizeof (why)), 0);
    }
    //  a source address first, on connect
    assert_int_equal (arb_endpoint_check ("tcp://10.0.0.1;h:7700", false, why, sizeof (why)), 0);
    //  any free port, and every interface, only where one binds
    assert_int_equal (arb_endpoint_check ("tcp://127.0.0.1:*", true, why, sizeof (why)), 0);
    assert_int_equal (arb_endpoint_check ("tcp://127.0.0.1:0", true, why, sizeof (why)), 0);
    assert_int_equal (arb_endpoint_check ("tcp://*:7700", true, why, sizeof (why)), 0);
    s_endpoint_bad ("tcp://127.0.0.1:0", false, "the port 0 is out of range (1 to 65535)");
    s_endpoint_bad ("tcp://127.0.0.1:*", false, "the port '*' is not a number");
    s_endpoint_bad ("tcp://*:7700", false, "* is for binding");
    s_endpoint_bad ("tcp://127.0.0.1:99999", false, "the port 99999 is out of range");
    s_endpoint_bad ("tcp://127.0.0.1:99999", true, "the port 99999 is out of range");
    s_endpoint_bad ("tcp://127.0.0.1:65536", true, "the port 65536 is out of range");
    s_endpoint_bad ("tcp://127.0.0.1:000000065536", true, "out of range");
    s_endpoint_bad ("tcp://127.0.0.1:99999999999999999999999", true, "out of range");
    s_endpoint_bad ("tcp://127.0.0.1:abc", true, "the port 'abc' is not a number");
    s_endpoint_bad ("tcp://127.0.0.1:+80", false, "is not a number");
    s_endpoint_bad ("tcp://127.0.0.1: 80", false, "is not a number");
    s_endpoint_bad ("tcp://127.0.0.1:", false, "is not a number");
    s_endpoint_bad ("tcp://127.0.0.1", false, "has no port");
    s_endpoint_bad ("tcp://[::1]", false, "has no port");
    s_endpoint_bad ("tcp://:7700", true, "has no host");
    s_endpoint_bad ("tcp://[]:7700", false, "has no host");
    s_endpoint_bad ("foo", false, "expected tcp://HOST:PORT");
    s_endpoint_bad ("udp://127.0.0.1:7700", false, "expected tcp://HOST:PORT");
    s_endpoint_bad ("", true, "not an empty value");
    s_endpoint_bad ("ipc://", true, "names no path");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_file_then_flags),
        cmocka_unit_test (test_defaults_stay),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_no_positional_arguments),
        cmocka_unit_test (test_check_and_help),
        cmocka_unit_test (test_long_section_names_stay_whole),
        cmocka_unit_test (test_print_shows_strings_through_the_callback),
        cmocka_unit_test (test_values),
        cmocka_unit_test (test_choices_lists_and_checks),
        cmocka_unit_test (test_endpoint_check),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char path[64];
    snprintf (path, sizeof (path), "/tmp/arb-options-%d.conf", (int) getpid ());
    unlink (path);
    return rc;
}
