/*  test_upstream_url.c — an upstream's URL: amqp:// and amqps:// as
    rabbitmq-c reads them, RabbitMQ's TLS query parameters, what is
    refused (and that no refusal quotes the password), and the URL logs
    show. The TLS connections themselves are in tests/system/test_bridge.py,
    against a real RabbitMQ.
*/

#include "arb_upstream_url.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>

//  A file that exists, for the certificate parameters.
#define S_FILE "/etc/hostname"

static void
test_plain_url (void **state)
{
    (void) state;
    char why[256] = "";
    arb_upstream_url_t *url = arb_upstream_url_new ("amqp://u:secret@rabbit:5673/%2f", why, 256);
    assert_non_null (url);
    const struct amqp_connection_info *info = arb_upstream_url_info (url);
    assert_string_equal (info->host, "rabbit");
    assert_int_equal (info->port, 5673);
    assert_string_equal (info->user, "u");
    assert_string_equal (info->password, "secret");
    assert_string_equal (info->vhost, "/");
    assert_false (arb_upstream_url_tls (url));
    assert_string_equal (arb_upstream_url_shown (url), "amqp://u@rabbit:5673/%2f");
    arb_upstream_url_destroy (&url);
    assert_null (url);
}

static void
test_tls_url_and_its_parameters (void **state)
{
    (void) state;
    char why[256] = "";
    arb_upstream_url_t *url = arb_upstream_url_new (
        "amqps://u:secret@rabbit/jobs?cacertfile=%2Fetc%2Fhostname&verify=verify_peer", why, 256);
    assert_non_null (url);
    assert_true (arb_upstream_url_tls (url));
    assert_int_equal (arb_upstream_url_info (url)->port, 5671);  //  amqps's
    assert_string_equal (arb_upstream_url_info (url)->vhost, "jobs");
    assert_string_equal (
        arb_upstream_url_shown (url),
        "amqps://u@rabbit:5671/jobs?cacertfile=%2Fetc%2Fhostname&verify=verify_peer");
    arb_upstream_url_destroy (&url);
    url = arb_upstream_url_new (
        "amqps://h/?certfile=" S_FILE "&keyfile=" S_FILE "&verify=verify_none&", why, 256);
    assert_non_null (url);
    arb_upstream_url_destroy (&url);
}

//  Each refused, with its reason, and never the password.
static void
test_refused (void **state)
{
    (void) state;
    static const struct {
        const char *url;
        const char *why;
    } cases[] = {
        {"http://u:secret@h/", "not an amqp:// or amqps:// URL"},
        {"amqp://u:secret@h:notaport/", "malformed URL"},
        {"amqps://u:secret@h/?verify=yes", "verify: 'yes' is neither verify_peer nor verify_none"},
        {"amqps://u:secret@h/?server_name_indication=x",
         "unknown URL parameter 'server_name_indication'"},
        {"amqps://u:secret@h/?cacertfile", "URL parameter 'cacertfile' without a value"},
        {"amqps://u:secret@h/?cacertfile=%2", "a bad %-escape"},
        {"amqps://u:secret@h/?cacertfile=a%00b", "a bad %-escape"},
        {"amqps://u:secret@h/?cacertfile=/no/such/ca.pem",
         "cacertfile: cannot read /no/such/ca.pem"},
        {"amqps://u:secret@h/?certfile=" S_FILE, "certfile and keyfile go together"},
        {"amqp://u:secret@h/?cacertfile=" S_FILE, "TLS parameters need an amqps:// URL"},
        {"amqp://u:secret@h/?verify=verify_none", "TLS parameters need an amqps:// URL"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char why[256] = "";
        arb_upstream_url_t *url = arb_upstream_url_new (cases[i].url, why, sizeof (why));
        if (url || !strstr (why, cases[i].why))
            fail_msg ("%s: got '%s'", cases[i].url, why);
        assert_null (strstr (why, "secret"));
    }
}

//  A socket of each kind, made and owned by its connection; a TLS one's
//  certificate that cannot be loaded is said.
static void
test_sockets (void **state)
{
    (void) state;
    char why[256] = "";
    arb_upstream_url_t *plain = arb_upstream_url_new ("amqp://h/", why, 256);
    arb_upstream_url_t *tls = arb_upstream_url_new ("amqps://h/", why, 256);
    arb_upstream_url_t *bad =
        arb_upstream_url_new ("amqps://h/?certfile=" S_FILE "&keyfile=" S_FILE, why, 256);
    assert_non_null (plain);
    assert_non_null (tls);
    assert_non_null (bad);
    amqp_connection_state_t conn = amqp_new_connection ();
    assert_non_null (arb_upstream_url_socket (plain, conn, why, 256));
    amqp_destroy_connection (conn);
    conn = amqp_new_connection ();
    assert_non_null (arb_upstream_url_socket (tls, conn, why, 256));
    amqp_destroy_connection (conn);
    conn = amqp_new_connection ();
    assert_null (arb_upstream_url_socket (bad, conn, why, 256));
    assert_non_null (strstr (why, "cannot load the certificate " S_FILE));
    amqp_destroy_connection (conn);
    arb_upstream_url_destroy (&plain);
    arb_upstream_url_destroy (&tls);
    arb_upstream_url_destroy (&bad);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_plain_url),
        cmocka_unit_test (test_tls_url_and_its_parameters),
        cmocka_unit_test (test_refused),
        cmocka_unit_test (test_sockets),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
