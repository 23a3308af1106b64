/*  test_upstream_url.c — an upstream's URL: amqp:// and amqps:// as
    rabbitmq-c reads them, RabbitMQ's TLS query parameters, what is
    refused (and that no refusal quotes the password), and the URL logs
    show; a client key encrypted with a password (password=), its
    certificate and key made here with OpenSSL in a directory of the
    run's. The TLS connections themselves are in
    tests/system/test_bridge.py, against a real RabbitMQ.
*/

#include "arb_upstream_url.h"

#include <czmq.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>

//  A file that exists, for the certificate parameters.
#define S_FILE "/etc/hostname"

//  The client key's password, and as a URL writes it (%-encoded; a +
//  stays itself, as in the paths), in s_url's printf forms
#define S_PASSWORD     "p@ss&w+rd"
#define S_PASSWORD_URL "p%%40ss%%26w+rd"

//  The group's files: a client key, in the clear and encrypted with
//  S_PASSWORD, and a certificate for it.
typedef struct {
    char dir[64];
    char key[96];        //  PEM, not encrypted
    char encrypted[96];  //  PEM, encrypted with S_PASSWORD
    char cert[96];       //  PEM, self-signed, of the key
    char other[96];      //  PEM, another key, not the certificate's
    char empty[96];      //  an empty file
    EVP_PKEY *pkey;      //  owned
} s_files_t;

//  Writes key to path, encrypted with password unless it is NULL.
static void
s_write_key (EVP_PKEY *pkey, const char *path, const char *password)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (PEM_write_PrivateKey (file, pkey, password ? EVP_aes_256_cbc () : NULL,
                                            (const unsigned char *) password,
                                            password ? (int) strlen (password) : 0, NULL, NULL),
                      1);
    fclose (file);
}

static int
s_files_make (void **state)
{
    s_files_t *files = (s_files_t *) zmalloc (sizeof (s_files_t));
    strcpy (files->dir, "/tmp/arb-upstream-url-XXXXXX");
    assert_non_null (mkdtemp (files->dir));
    snprintf (files->key, sizeof (files->key), "%s/key.pem", files->dir);
    snprintf (files->encrypted, sizeof (files->encrypted), "%s/encrypted.pem", files->dir);
    snprintf (files->cert, sizeof (files->cert), "%s/cert.pem", files->dir);
    snprintf (files->other, sizeof (files->other), "%s/other.pem", files->dir);
    snprintf (files->empty, sizeof (files->empty), "%s/empty.pem", files->dir);
    files->pkey = EVP_EC_gen ("P-256");
    assert_non_null (files->pkey);
    s_write_key (files->pkey, files->key, NULL);
    EVP_PKEY *other = EVP_EC_gen ("P-256");
    assert_non_null (other);
    s_write_key (other, files->other, NULL);
    EVP_PKEY_free (other);
    FILE *empty = fopen (files->empty, "w");
    assert_non_null (empty);
    fclose (empty);
    s_write_key (files->pkey, files->encrypted, S_PASSWORD);
    X509 *cert = X509_new ();
    assert_non_null (cert);
    ASN1_INTEGER_set (X509_get_serialNumber (cert), 1);
    X509_gmtime_adj (X509_getm_notBefore (cert), 0);
    X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
    X509_set_pubkey (cert, files->pkey);
    X509_NAME *name = X509_get_subject_name (cert);
    X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const unsigned char *) "client", -1, -1,
                                0);
    X509_set_issuer_name (cert, name);
    assert_true (X509_sign (cert, files->pkey, EVP_sha256 ()) > 0);
    FILE *file = fopen (files->cert, "w");
    assert_non_null (file);
    assert_int_equal (PEM_write_X509 (file, cert), 1);
    fclose (file);
    X509_free (cert);
    *state = files;
    return 0;
}

static int
s_files_remove (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    unlink (files->key);
    unlink (files->encrypted);
    unlink (files->cert);
    unlink (files->other);
    unlink (files->empty);
    rmdir (files->dir);
    EVP_PKEY_free (files->pkey);
    free (files);
    return 0;
}

//  A new URL of text's form, with the files' paths for %s (as many as
//  the form has), or NULL with why.
static arb_upstream_url_t *
s_url (const char *form, const char *a, const char *b, char *why, size_t size)
{
    char text[512];
    snprintf (text, sizeof (text), form, a, b);
    return arb_upstream_url_new (text, why, size);
}

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
    s_files_t *files = (s_files_t *) *state;
    char why[256] = "";
    //  the directory's / written %2F
    char form[512], shown[512];
    snprintf (form, sizeof (form),
              "amqps://u:secret@rabbit/jobs?cacertfile=%%2F%s&verify=verify_peer", files->cert + 1);
    arb_upstream_url_t *url = arb_upstream_url_new (form, why, 256);
    if (!url)
        fail_msg ("refused: %s", why);
    assert_true (arb_upstream_url_tls (url));
    assert_int_equal (arb_upstream_url_info (url)->port, 5671);  //  amqps's
    assert_string_equal (arb_upstream_url_info (url)->vhost, "jobs");
    snprintf (shown, sizeof (shown),
              "amqps://u@rabbit:5671/jobs?cacertfile=%%2F%s&verify=verify_peer", files->cert + 1);
    assert_string_equal (arb_upstream_url_shown (url), shown);
    arb_upstream_url_destroy (&url);
    url = s_url ("amqps://h/?certfile=%s&keyfile=%s&verify=verify_none&", files->cert, files->key,
                 why, 256);
    assert_non_null (url);
    arb_upstream_url_destroy (&url);
}

//  An encrypted key with its password (%-decoded as the other
//  parameters): read, its socket made, and the password in no URL shown.
static void
test_key_password (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    char why[256] = "";
    arb_upstream_url_t *url =
        s_url ("amqps://u:secret@h/?certfile=%s&keyfile=%s&password=" S_PASSWORD_URL, files->cert,
               files->encrypted, why, 256);
    if (!url)
        fail_msg ("refused: %s", why);
    const char *shown = arb_upstream_url_shown (url);
    assert_non_null (strstr (shown, "&password=***"));
    assert_null (strstr (shown, "p%40ss"));
    assert_null (strstr (shown, "secret"));
    amqp_connection_state_t conn = amqp_new_connection ();
    if (!arb_upstream_url_socket (url, conn, why, 256))
        fail_msg ("no socket: %s", why);
    amqp_destroy_connection (conn);
    arb_upstream_url_destroy (&url);
    //  the parameter's name %-encoded is the same parameter, hidden too
    url = s_url ("amqps://h/?certfile=%s&keyfile=%s&pass%%77ord=" S_PASSWORD_URL, files->cert,
                 files->encrypted, why, 256);
    if (!url)
        fail_msg ("refused: %s", why);
    assert_non_null (strstr (arb_upstream_url_shown (url), "&password=***"));
    arb_upstream_url_destroy (&url);
    //  a key in the clear takes a password all the same (unused)
    url = s_url ("amqps://h/?certfile=%s&keyfile=%s&password=x", files->cert, files->key, why, 256);
    assert_non_null (url);
    arb_upstream_url_destroy (&url);
}

//  The key's mistakes, found when the URL is read (as --check-config
//  reads it), each said without the password.
static void
test_key_refused (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    static const struct {
        const char *form;  //  %s: the certificate, then the key
        bool encrypted;    //  the key is the encrypted one
        const char *why;
    } cases[] = {
        {"amqps://u:secret@h/?certfile=%s&keyfile=%s&password=wr0ng", true,
         "keyfile: cannot decrypt %s with the password given (wrong password)"},
        {"amqps://u:secret@h/?certfile=%s&keyfile=%s", true,
         "keyfile: %s is encrypted: give its password (password=...)"},
        {"amqps://u:secret@h/?certfile=%s&keyfile=%s&password=", true,
         "password: empty (a key that is not encrypted takes none)"},
        {"amqps://u:secret@h/?certfile=%s&keyfile=" S_FILE "%.0s", false,
         "keyfile: no PEM private key in " S_FILE},
        {"amqps://u:secret@h/?password=wr0ng%.0s%.0s", false,
         "password is the keyfile's: it needs keyfile"},
        {"amqp://u:secret@h/?certfile=%s&keyfile=%s&password=wr0ng", true,
         "TLS parameters need an amqps:// URL"},
        {"amqps://u:secret@h/?certfile=%s&keyfile=%s&password=wr%%2", true, "a bad %%-escape"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        const char *key = cases[i].encrypted ? files->encrypted : files->key;
        char why[256] = "", expected[256];
        snprintf (expected, sizeof (expected), cases[i].why, key);
        arb_upstream_url_t *url = s_url (cases[i].form, files->cert, key, why, sizeof (why));
        if (url || !strstr (why, expected))
            fail_msg ("%s: got '%s'", cases[i].form, why);
        assert_null (strstr (why, "secret"));
        assert_null (strstr (why, "wr0ng"));
    }
}

//  A key whose password changed after the URL was read: its socket is
//  refused with the same reason, without a prompt for the password.
static void
test_key_changed (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    char why[256] = "";
    arb_upstream_url_t *url = s_url ("amqps://h/?certfile=%s&keyfile=%s&password=" S_PASSWORD_URL,
                                     files->cert, files->encrypted, why, 256);
    arb_upstream_url_t *none =
        s_url ("amqps://h/?certfile=%s&keyfile=%s", files->cert, files->key, why, 256);
    assert_non_null (url);
    assert_non_null (none);
    s_write_key (files->pkey, files->encrypted, "another");
    s_write_key (files->pkey, files->key, "another");
    amqp_connection_state_t conn = amqp_new_connection ();
    assert_null (arb_upstream_url_socket (url, conn, why, 256));
    assert_non_null (strstr (why, "with the password given (wrong password)"));
    amqp_destroy_connection (conn);
    conn = amqp_new_connection ();
    assert_null (arb_upstream_url_socket (none, conn, why, 256));
    assert_non_null (strstr (why, "is encrypted: give its password"));
    amqp_destroy_connection (conn);
    s_write_key (files->pkey, files->encrypted, S_PASSWORD);
    s_write_key (files->pkey, files->key, NULL);
    arb_upstream_url_destroy (&url);
    arb_upstream_url_destroy (&none);
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
        {"amqp://u:secret@h:notaport/", "the port 'notaport' is not a number (1 to 65535)"},
        {"amqp://u:secret@h:99999/%2f", "the port 99999 is out of range (1 to 65535)"},
        //  an unencoded '@' in the password: how to write it
        {"amqp://u:sec@ret@h/", "@ as %40"},
        //  rabbitmq-c takes port 0; the check of every program's ports does not
        {"amqp://u:secret@h:0/%2f", "the port 0 is out of range (1 to 65535)"},
        {"amqps://u:secret@[::1]:0/%2f", "the port 0 is out of range (1 to 65535)"},
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
    s_files_t *files = (s_files_t *) *state;
    char why[256] = "";
    arb_upstream_url_t *plain = arb_upstream_url_new ("amqp://h/", why, 256);
    arb_upstream_url_t *tls = arb_upstream_url_new ("amqps://h/", why, 256);
    //  a certificate that is no longer one when the socket is made
    char copy[128];
    snprintf (copy, sizeof (copy), "%s/copy.pem", files->dir);
    assert_int_equal (link (files->cert, copy), 0);
    arb_upstream_url_t *bad =
        s_url ("amqps://h/?certfile=%s&keyfile=%s", copy, files->key, why, 256);
    unlink (copy);
    assert_int_equal (link (files->empty, copy), 0);
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
    assert_non_null (strstr (why, "cannot load the certificate "));
    unlink (copy);
    amqp_destroy_connection (conn);
    arb_upstream_url_destroy (&plain);
    arb_upstream_url_destroy (&tls);
    arb_upstream_url_destroy (&bad);
}

//  A password with an & not written %26: what follows it is not quoted
//  in any reason, wherever it lands (an & in a login password before the
//  query is the URL's; a ? in it starts the query).
static void
test_password_tail_never_quoted (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    static const struct {
        const char *form;  //  %s: the certificate, then the (encrypted) key
        const char *why;
        const char *tail;  //  never in why
    } cases[] = {
        {"amqps://h/?certfile=%s&keyfile=%s&password=Xy7&Sup3rS3cretTail",
         "a URL parameter after password= is not one", "Sup3rS3cretTail"},
        {"amqps://h/?certfile=%s&keyfile=%s&password=k3y&pass=word",
         "a URL parameter after password= is not one", "'pass"},
        {"amqps://h/?certfile=%s&keyfile=%s&password=k3y&verify=Tail3",
         "a URL parameter after password= is not one", "Tail3"},
        {"amqps://h/?password=k3y&cacertfile=/T41l&certfile=%s&keyfile=%s",
         "cacertfile: cannot read the file given", "T41l"},
        {"amqps://h/?password=k3y&keyfile=T41l%.0s%.0s", "keyfile: cannot read the file given",
         "T41l"},
        //  a login password of digits then ?: rabbitmq-c reads host u, port 123
        {"amqps://u:123?s3cret@h/%.0s%.0s", "write a ? in a user or password as %3F", "s3cret"},
        {"amqps://u:123?s3cret=x@h/%.0s%.0s", "write a ? in a user or password as %3F", "s3cret"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char why[256] = "";
        arb_upstream_url_t *url =
            s_url (cases[i].form, files->cert, files->encrypted, why, sizeof (why));
        if (url || !strstr (why, cases[i].why) || strstr (why, cases[i].tail))
            fail_msg ("%s: got '%s'", cases[i].form, why);
        assert_null (strstr (why, "k3y"));
    }
}

//  Files a connection would not take, refused when the URL is read, each
//  naming the file.
static void
test_files_refused (void **state)
{
    s_files_t *files = (s_files_t *) *state;
    const struct {
        const char *form;  //  %s: a and b
        const char *a, *b;
        const char *why;  //  %s: a, %s: b
    } cases[] = {
        {"amqps://h/?cacertfile=%s%.0s", files->dir, "", "cacertfile: %s is a directory"},
        {"amqps://h/?cacertfile=%s%.0s", files->empty, "", "cacertfile: no certificate in %s"},
        {"amqps://h/?cacertfile=%s%.0s", files->key, "", "cacertfile: no certificate in %s"},
        {"amqps://h/?cacertfile=%.0s%.0s", "", "", "cacertfile: empty"},
        {"amqps://h/?certfile=%s&keyfile=%s", files->dir, files->key,
         "certfile: %s is a directory"},
        {"amqps://h/?certfile=%s&keyfile=%s", files->key, files->key,
         "certfile: no certificate in %s"},
        {"amqps://h/?certfile=%s&keyfile=%s", files->cert, files->other,
         "certfile and keyfile do not match: %.0s%s is not the key of"},
        {"amqps://h/?certfile=%s&keyfile=%s", files->cert, "", "keyfile: empty"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char why[256] = "", expected[256];
        snprintf (expected, sizeof (expected), cases[i].why, cases[i].a, cases[i].b);
        arb_upstream_url_t *url = s_url (cases[i].form, cases[i].a, cases[i].b, why, sizeof (why));
        if (url || !strstr (why, expected))
            fail_msg ("%s (%s, %s): got '%s', not '%s'", cases[i].form, cases[i].a, cases[i].b, why,
                      expected);
        arb_upstream_url_destroy (&url);
    }
    //  the matching pair, and a CA file of certificates
    char why[256] = "";
    char form[512];
    snprintf (form, sizeof (form), "amqps://h/?cacertfile=%s&certfile=%s&keyfile=%s", files->cert,
              files->cert, files->key);
    arb_upstream_url_t *url = arb_upstream_url_new (form, why, sizeof (why));
    if (!url)
        fail_msg ("refused: %s", why);
    arb_upstream_url_destroy (&url);
}

//  The URL shown is a URL: an IPv6 address in brackets, a user's @ and :
//  %-encoded; a parameter given twice is refused.
static void
test_shown_is_a_url (void **state)
{
    (void) state;
    static const struct {
        const char *url;
        const char *shown;
    } cases[] = {
        {"amqp://guest:secret@[::1]:41477/%2f", "amqp://guest@[::1]:41477/%2f"},
        {"amqp://us%40er%3ax:secret@host/v", "amqp://us%40er%3ax@host:5672/v"},
        {"amqps://[fe80::1]/", "amqps://guest@[fe80::1]:5671/"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char why[256] = "";
        arb_upstream_url_t *url = arb_upstream_url_new (cases[i].url, why, sizeof (why));
        if (!url)
            fail_msg ("%s: refused: %s", cases[i].url, why);
        assert_string_equal (arb_upstream_url_shown (url), cases[i].shown);
        arb_upstream_url_destroy (&url);
    }
    static const struct {
        const char *url;
        const char *why;
    } twice[] = {
        {"amqps://h/?password=a&password=b", "password given twice"},
        {"amqps://h/?verify=verify_none&verify=verify_peer", "verify given twice"},
        {"amqps://h/?certfile=" S_FILE "&certfile=" S_FILE, "certfile given twice"},
    };
    for (size_t i = 0; i < sizeof (twice) / sizeof (twice[0]); i++) {
        char why[256] = "";
        arb_upstream_url_t *url = arb_upstream_url_new (twice[i].url, why, sizeof (why));
        if (url || !strstr (why, twice[i].why))
            fail_msg ("%s: got '%s'", twice[i].url, why);
        assert_null (strstr (why, "secret"));
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_plain_url),     cmocka_unit_test (test_tls_url_and_its_parameters),
        cmocka_unit_test (test_refused),       cmocka_unit_test (test_key_password),
        cmocka_unit_test (test_key_refused),   cmocka_unit_test (test_key_changed),
        cmocka_unit_test (test_sockets),       cmocka_unit_test (test_password_tail_never_quoted),
        cmocka_unit_test (test_files_refused), cmocka_unit_test (test_shown_is_a_url),
    };
    return cmocka_run_group_tests (tests, s_files_make, s_files_remove);
}
