/*  test_route.c — the HTTP route table: paths split into segments,
    literal routes beat wildcard ones, 405 with the methods allowed, tails,
    over-long paths, strict numbers.
*/

#include "arb_route.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int
s_find (arb_route_table_t *table, const char *method, const char *path, char *allow)
{
    arb_route_path_t split;
    if (arb_route_split (path, &split))
        return -2;
    int route = -1;
    char buffer[128];
    arb_route_rc_t rc =
        arb_route_find (table, method, &split, &route, allow ? allow : buffer, sizeof (buffer));
    arb_route_path_clear (&split);
    return rc == ARB_ROUTE_FOUND ? route : rc == ARB_ROUTE_METHOD ? -3 : -1;
}

static void
test_split (void **state)
{
    (void) state;
    arb_route_path_t path;
    assert_int_equal (arb_route_split ("/a/b", &path), 0);
    assert_int_equal (path.n, 2);
    assert_string_equal (path.v[0], "a");
    assert_string_equal (path.v[1], "b");
    arb_route_path_clear (&path);
    //  empty segments are kept, not collapsed
    assert_int_equal (arb_route_split ("//a//b/", &path), 0);
    assert_int_equal (path.n, 5);
    assert_string_equal (path.v[0], "");
    assert_string_equal (path.v[1], "a");
    assert_string_equal (path.v[2], "");
    assert_string_equal (path.v[3], "b");
    assert_string_equal (path.v[4], "");
    arb_route_path_clear (&path);
    assert_int_equal (arb_route_split ("/", &path), 0);
    assert_int_equal (path.n, 0);
    char deep[200] = "";
    for (int i = 0; i < ARB_ROUTE_SEGMENTS + 1; i++)
        strcat (deep, "/x");
    assert_int_equal (arb_route_split (deep, &path), -1);
    assert_int_equal (path.n, 0);
}

static bool
s_claims_deploy (const arb_route_path_t *path, void *arg)
{
    return path->n && strcmp (path->v[0], (const char *) arg) == 0;
}

static void
test_literal_routes_win_and_405 (void **state)
{
    (void) state;
    arb_route_table_t *table = arb_route_table_new ();
    assert_int_equal (arb_route_add (table, "GET", "/metrics"), 0);
    assert_int_equal (arb_route_add (table, "POST", "/{}"), 1);
    assert_int_equal (arb_route_add (table, "GET", "/{}/{}"), 2);
    assert_int_equal (arb_route_add (table, "GET", "/api/v1/tasks/{}"), 3);
    assert_int_equal (arb_route_add (table, "DELETE", "/api/v1/tasks/{}"), 4);
    assert_int_equal (arb_route_add (table, "GET", "/static/**"), 5);
    assert_int_equal (arb_route_add (table, "GET", "/a/**/b"), -1);
    assert_int_equal (s_find (table, "GET", "/metrics", NULL), 0);
    char allow[128];
    assert_int_equal (s_find (table, "POST", "/metrics", allow), -3);
    assert_string_equal (allow, "GET, HEAD");
    assert_int_equal (s_find (table, "POST", "/deploy", NULL), 1);
    assert_int_equal (s_find (table, "GET", "/deploy/12", NULL), 2);
    assert_int_equal (s_find (table, "GET", "/api/v1/tasks/7", NULL), 3);
    assert_int_equal (s_find (table, "DELETE", "/api/v1/tasks/7", NULL), 4);
    assert_int_equal (s_find (table, "PUT", "/api/v1/tasks/7", allow), -3);
    assert_string_equal (allow, "GET, HEAD, DELETE");
    //  HEAD is served by the GET route
    assert_int_equal (s_find (table, "HEAD", "/api/v1/tasks/7", NULL), 3);
    assert_int_equal (s_find (table, "HEAD", "/deploy", allow), -3);
    assert_string_equal (allow, "POST");
    assert_int_equal (s_find (table, "GET", "/static/js/app.js", NULL), 5);
    assert_int_equal (s_find (table, "GET", "/deploy", allow), -3);
    assert_string_equal (allow, "POST");
    assert_int_equal (arb_route_add (table, "POST", "/api/v1/queues/{}/{}"), 6);
    assert_int_equal (arb_route_add (table, "POST", "/a//b"), -1);
    assert_int_equal (s_find (table, "POST", "/api/v1/queues/q/pause", NULL), 6);
    //  not found: a reserved first segment is matched by its literal routes
    //  only (not tasker's POST /{}, a 405 offering POST, nor GET /{}/{});
    //  an empty segment matches no pattern (not a queue named "pause")
    const char *none[][2] = {
        {"GET", "/static"},        {"POST", "/static"},  {"GET", "/api/v1"},
        {"GET", "/metrics/5"},     {"GET", "/a/b/c/d"},  {"POST", "/api/v1/queues//pause"},
        {"GET", "/api/v1/tasks/"}, {"POST", "/deploy/"}, {"GET", "/static/js//app.js"},
        {"GET", "//metrics"},
    };
    for (size_t i = 0; i < sizeof (none) / sizeof (none[0]); i++)
        assert_int_equal (s_find (table, none[i][0], none[i][1], NULL), -1);
    //  a route offered in a 405 must serve the path: one with a claim only
    //  where it claims it; it still serves, under its method, what it matches
    arb_route_set_claims (table, 1, s_claims_deploy, "deploy");
    assert_int_equal (s_find (table, "GET", "/deploy", allow), -3);
    assert_string_equal (allow, "POST");
    assert_int_equal (s_find (table, "GET", "/metric", allow), -1);
    assert_int_equal (s_find (table, "POST", "/metric", NULL), 1);
    assert_int_equal (s_find (table, "PUT", "/metric/1", allow), -3);
    assert_string_equal (allow, "GET, HEAD");
    arb_route_table_destroy (&table);
    assert_null (table);
}

static void
test_numbers (void **state)
{
    (void) state;
    uint64_t value = 0;
    assert_int_equal (arb_route_number ("42", 100, &value), 0);
    assert_int_equal (value, 42);
    assert_int_equal (arb_route_number ("18446744073709551615", UINT64_MAX, &value), 0);
    assert_int_equal (arb_route_number ("18446744073709551616", UINT64_MAX, &value), -1);
    assert_int_equal (arb_route_number ("101", 100, &value), -1);
    assert_int_equal (arb_route_number ("-1", 100, &value), -1);
    assert_int_equal (arb_route_number (" 1", 100, &value), -1);
    assert_int_equal (arb_route_number ("", 100, &value), -1);
    assert_int_equal (arb_route_number (NULL, 100, &value), -1);
}

//  An id has one spelling: no leading zero, no 0.
static void
test_ids (void **state)
{
    (void) state;
    uint64_t value = 0;
    assert_int_equal (arb_route_id ("12", &value), 0);
    assert_int_equal (value, 12);
    assert_int_equal (arb_route_id ("9223372036854775807", &value), 0);
    assert_int_equal (arb_route_id ("9223372036854775808", &value), -1);
    assert_int_equal (arb_route_id ("012", &value), -1);
    assert_int_equal (arb_route_id ("0", &value), -1);
    assert_int_equal (arb_route_id ("00", &value), -1);
    assert_int_equal (arb_route_id ("", &value), -1);
    assert_int_equal (arb_route_id (NULL, &value), -1);
    assert_int_equal (value, 9223372036854775807ULL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_split),
        cmocka_unit_test (test_literal_routes_win_and_405),
        cmocka_unit_test (test_numbers),
        cmocka_unit_test (test_ids),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
