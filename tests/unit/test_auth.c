/*  test_auth.c — CURVE certificates and roles: the peer's side (arb_curve:
    role names, keys, loading from options and the environment, and what
    it says when they are wrong) and the broker's (arb_auth: the key pair
    it makes once, the role of each message's peer over a real CURVE
    connection, the allowed folder read again when it changes, which
    endpoints count as local).
*/

#include "arb_auth.h"
#include "arb_curve.h"

#include <czmq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

//  A fresh folder under /tmp; the path in a static buffer.
static const char *
s_tmpdir (void)
{
    static char path[64];
    snprintf (path, sizeof (path), "/tmp/arb-test-auth-XXXXXX");
    assert_non_null (mkdtemp (path));
    return path;
}

static void
s_rmdir (const char *path)
{
    zdir_t *dir = zdir_new (path, NULL);
    if (dir)
        zdir_remove (dir, true);
    zdir_destroy (&dir);
}

//  A certificate with a role (NULL: none) saved as dir/name.cert and
//  name.cert_secret; returned (the caller owns it).
static zcert_t *
s_cert (const char *dir, const char *name, const char *role)
{
    zcert_t *cert = zcert_new ();
    if (role)
        zcert_set_meta (cert, ARB_ROLE_META, "%s", role);
    char path[256];
    snprintf (path, sizeof (path), "%s/%s.cert", dir, name);
    assert_int_equal (zcert_save (cert, path), 0);
    return cert;
}

static void
test_roles (void **state)
{
    (void) state;
    assert_int_equal (arb_role_parse ("client"), ARB_ROLE_CLIENT);
    assert_int_equal (arb_role_parse ("worker"), ARB_ROLE_WORKER);
    assert_int_equal (arb_role_parse ("admin"), ARB_ROLE_ADMIN);
    assert_int_equal (arb_role_parse ("Admin"), ARB_ROLE_NONE);
    assert_int_equal (arb_role_parse (""), ARB_ROLE_NONE);
    assert_int_equal (arb_role_parse (NULL), ARB_ROLE_NONE);
    assert_string_equal (arb_role_name (ARB_ROLE_WORKER), "worker");
    assert_string_equal (arb_role_name (ARB_ROLE_NONE), "none");
    assert_string_equal (arb_role_name ((arb_role_t) 3), "none");
    assert_true (arb_curve_is_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));
    assert_false (arb_curve_is_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf"));
    assert_false (arb_curve_is_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\""));
    assert_false (arb_curve_is_key (NULL));
}

static void
test_curve_loading (void **state)
{
    (void) state;
    const char *dir = s_tmpdir ();
    zcert_t *peer = s_cert (dir, "peer", "client");
    zcert_t *broker = s_cert (dir, "broker", NULL);
    char secret[256], public_path[256], broker_path[256], why[512];
    snprintf (secret, sizeof (secret), "%s/peer.cert_secret", dir);
    snprintf (public_path, sizeof (public_path), "%s/peer.cert", dir);
    snprintf (broker_path, sizeof (broker_path), "%s/broker.cert", dir);

    //  the key as text, or the broker's certificate file
    arb_curve_t *curve = arb_curve_new (secret, zcert_public_txt (broker), why, sizeof (why));
    assert_non_null (curve);
    assert_string_equal (arb_curve_public_key (curve), zcert_public_txt (peer));
    arb_curve_t *copy = arb_curve_dup (curve);
    arb_curve_destroy (&curve);
    assert_null (curve);
    assert_string_equal (arb_curve_public_key (copy), zcert_public_txt (peer));
    arb_curve_destroy (&copy);
    curve = arb_curve_new (public_path, broker_path, why, sizeof (why));  //  finds its _secret
    assert_non_null (curve);
    arb_curve_destroy (&curve);
    //  a file there that is no certificate is said to be one, not missing
    char junk[256];
    snprintf (junk, sizeof (junk), "%s/junk.cert", dir);
    FILE *file = fopen (junk, "w");
    assert_non_null (file);
    fputs ("garbage\n", file);
    fclose (file);
    assert_null (arb_curve_new (junk, broker_path, why, sizeof (why)));
    assert_non_null (strstr (why, "is not a certificate"));
    remove (junk);

    //  nothing given: no CURVE, and no complaint
    unsetenv (ARB_CURVE_ENV_CERT);
    unsetenv (ARB_CURVE_ENV_KEY);
    assert_null (arb_curve_resolve (NULL, NULL, why, sizeof (why)));
    assert_string_equal (why, "");
    //  from the environment, an option over its variable
    setenv (ARB_CURVE_ENV_CERT, "/nonexistent/x.cert_secret", 1);
    setenv (ARB_CURVE_ENV_KEY, broker_path, 1);
    curve = arb_curve_resolve (secret, NULL, why, sizeof (why));
    assert_non_null (curve);
    arb_curve_destroy (&curve);
    assert_null (arb_curve_resolve (NULL, NULL, why, sizeof (why)));
    assert_non_null (strstr (why, "$ARBITER_CERT: cannot read a certificate from "
                                  "'/nonexistent/x.cert_secret'"));
    //  one without the other
    unsetenv (ARB_CURVE_ENV_KEY);
    assert_null (arb_curve_resolve (secret, "", why, sizeof (why)));
    assert_string_equal (why, "--cert is given but not the broker's key (--broker-key or "
                              "$ARBITER_BROKER_KEY): CURVE needs both");
    unsetenv (ARB_CURVE_ENV_CERT);
    assert_null (arb_curve_resolve (NULL, broker_path, why, sizeof (why)));
    assert_non_null (strstr (why, "--broker-key is given but not the certificate"));
    //  a public certificate alone, a key that is neither
    unlink (secret);
    assert_null (arb_curve_resolve (public_path, broker_path, why, sizeof (why)));
    assert_non_null (strstr (why, "holds no secret key"));
    zcert_t *peer2 = s_cert (dir, "peer2", "worker");
    zcert_destroy (&peer2);
    snprintf (secret, sizeof (secret), "%s/peer2.cert_secret", dir);
    assert_null (arb_curve_resolve (secret, "nokey", why, sizeof (why)));
    assert_non_null (strstr (why, "--broker-key: 'nokey' is neither the broker's public key"));
    assert_non_null (strstr (why, "holding it: No such file or directory"));
    //  a file there that is not a certificate: no errno of another file
    file = fopen (junk, "w");
    assert_non_null (file);
    fputs ("garbage\n", file);
    fclose (file);
    assert_null (arb_curve_resolve (secret, junk, why, sizeof (why)));
    assert_non_null (strstr (why, "is neither the broker's public key"));
    assert_null (strstr (why, "No such file"));
    remove (junk);

    zcert_destroy (&peer);
    zcert_destroy (&broker);
    s_rmdir (dir);
}

static void
test_local_endpoints (void **state)
{
    (void) state;
    assert_true (arb_auth_endpoint_is_local ("tcp://127.0.0.1:7700"));
    assert_true (arb_auth_endpoint_is_local ("tcp://127.8.9.10:*"));
    assert_true (arb_auth_endpoint_is_local ("tcp://[::1]:7700"));
    assert_true (arb_auth_endpoint_is_local ("tcp://localhost:7700"));
    assert_true (arb_auth_endpoint_is_local ("tcp://lo:7700"));
    assert_true (arb_auth_endpoint_is_local ("ipc:///run/arbiter.sock"));
    assert_true (arb_auth_endpoint_is_local ("inproc://broker"));
    assert_false (arb_auth_endpoint_is_local ("tcp://0.0.0.0:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://*:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://[::]:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://192.168.1.5:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://eth0:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://example.org:7700"));
    assert_false (arb_auth_endpoint_is_local ("ws://127.0.0.1:7700"));
    assert_false (arb_auth_endpoint_is_local ("tcp://127.0.0.1"));
    assert_false (arb_auth_endpoint_is_local (NULL));
}

//  The same key pair with another role (zcert_set_meta adds, never
//  replaces); the caller owns it.
static zcert_t *
s_with_role (zcert_t *cert, const char *role)
{
    zcert_t *copy = zcert_new_from (zcert_public_key (cert), zcert_secret_key (cert));
    zcert_set_meta (copy, ARB_ROLE_META, "%s", role);
    return copy;
}

//  A DEALER with cert, connected to port over CURVE, that says hello.
static zsock_t *
s_peer (zcert_t *cert, const char *broker_key, int port)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, dealer);
    zsock_set_curve_serverkey (dealer, broker_key);
    assert_int_equal (zsock_connect (dealer, "tcp://127.0.0.1:%d", port), 0);
    zstr_send (dealer, "hello");
    return dealer;
}

//  The role the broker gives the next message on router.
static arb_role_t
s_next_role (arb_auth_t *auth, zsock_t *router)
{
    zsock_set_rcvtimeo (router, 5000);
    zmsg_t *msg = zmsg_recv (router);
    assert_non_null (msg);
    //  the part after the routing id carries the connection's metadata
    zframe_t *frame = zmsg_first (msg) ? zmsg_next (msg) : NULL;
    const char *key = frame ? zframe_meta (frame, "User-Id") : NULL;
    arb_role_t role = arb_auth_role (auth, key);
    zmsg_destroy (&msg);
    return role;
}

static void
test_roles_of_peers (void **state)
{
    (void) state;
    const char *dir = s_tmpdir ();
    char allowed[256], keys[256], path[300];
    snprintf (allowed, sizeof (allowed), "%s/%s", dir, ARB_AUTH_ALLOWED);
    snprintf (keys, sizeof (keys), "%s/keys", dir);
    zsys_dir_create ("%s", keys);
    zcert_t *alice = s_cert (keys, "alice", "client");
    zcert_t *wendy = s_cert (keys, "wendy", "worker");

    zsock_t *router = zsock_new (ZMQ_ROUTER);
    mode_t mask = umask (022);
    arb_auth_t *auth = arb_auth_new (dir, router);  //  makes allowed/ and its key pair
    umask (mask);
    assert_non_null (auth);
    //  the public half is for peers to copy; the secret is the broker's
    struct stat st;
    snprintf (path, sizeof (path), "%s/%s", dir, ARB_AUTH_CERT);
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0644);
    snprintf (path, sizeof (path), "%s/%s_secret", dir, ARB_AUTH_CERT);
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    zcert_t *broker_cert = zcert_load (path);
    assert_string_equal (zcert_public_txt (broker_cert), arb_auth_public_key (auth));
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert_true (port > 0);

    //  added after the start: let in, and its role known at once
    snprintf (path, sizeof (path), "%s/alice.cert", allowed);
    assert_int_equal (zcert_save_public (alice, path), 0);
    zsock_t *a = s_peer (alice, arb_auth_public_key (auth), port);
    assert_int_equal (s_next_role (auth, router), ARB_ROLE_CLIENT);

    //  another role for the same key: counts for the connected peer
    zcert_t *admin = s_with_role (alice, "admin");
    assert_int_equal (zcert_save_public (admin, path), 0);
    zcert_destroy (&admin);
    arb_auth_refresh (auth, (uint64_t) zclock_mono () + 2000);
    zstr_send (a, "again");
    assert_int_equal (s_next_role (auth, router), ARB_ROLE_ADMIN);

    //  removed: its connected peer has no role any more
    unlink (path);
    arb_auth_refresh (auth, (uint64_t) zclock_mono () + 4000);
    zstr_send (a, "and again");
    assert_int_equal (s_next_role (auth, router), ARB_ROLE_NONE);

    //  a certificate with a role nobody knows
    snprintf (path, sizeof (path), "%s/wendy.cert", allowed);
    zcert_t *boss = s_with_role (wendy, "boss");
    assert_int_equal (zcert_save_public (boss, path), 0);
    zcert_destroy (&boss);
    zsock_t *w = s_peer (wendy, arb_auth_public_key (auth), port);
    assert_int_equal (s_next_role (auth, router), ARB_ROLE_NONE);

    zsock_destroy (&a);
    zsock_destroy (&w);
    zsock_destroy (&router);
    arb_auth_destroy (&auth);
    assert_null (auth);
    zcert_destroy (&alice);
    zcert_destroy (&wendy);
    zcert_destroy (&broker_cert);
    s_rmdir (dir);
}

//  What arb_auth_changed_roles told, and what arb_auth_prune keeps.
typedef struct {
    size_t calls;
    arb_role_t role;
    char identity[32];
    char name[64];
    zframe_t *keep;  //  the one peer said to hold something
} s_changes_t;

static void
s_changed (void *arg, zframe_t *identity, arb_role_t role, const char *name)
{
    s_changes_t *changes = (s_changes_t *) arg;
    changes->calls++;
    changes->role = role;
    snprintf (changes->identity, sizeof (changes->identity), "%.*s", (int) zframe_size (identity),
              (const char *) zframe_data (identity));
    snprintf (changes->name, sizeof (changes->name), "%s", name);
}

static bool
s_holds (void *arg, zframe_t *identity)
{
    return zframe_eq (((s_changes_t *) arg)->keep, identity);
}

//  The peers noted by routing id: told when their certificate's role
//  changes (once per change; removed: none, by the name it had), pruned
//  of those that hold nothing once they are many.
static void
test_peers_whose_role_changed (void **state)
{
    (void) state;
    const char *dir = s_tmpdir ();
    char keys[256], path[300];
    snprintf (keys, sizeof (keys), "%s/keys", dir);
    zsys_dir_create ("%s", keys);
    zcert_t *alice = s_cert (keys, "alice", "client");
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    arb_auth_t *auth = arb_auth_new (dir, router);
    assert_non_null (auth);
    snprintf (path, sizeof (path), "%s/%s/alice.cert", dir, ARB_AUTH_ALLOWED);
    assert_int_equal (zcert_save_public (alice, path), 0);
    const char *key = zcert_public_txt (alice);
    assert_int_equal (arb_auth_role (auth, key), ARB_ROLE_CLIENT);  //  a look finds it
    assert_true (arb_auth_refresh (auth, 0));  //  that look read the folder again
    assert_false (arb_auth_refresh (auth, 0));

    zframe_t *a = zframe_new ("a", 1);
    s_changes_t changes = {.keep = a};
    arb_auth_note (auth, zframe_data (a), zframe_size (a), key);
    arb_auth_changed_roles (auth, s_changed, &changes);
    assert_int_equal (changes.calls, 0);

    zcert_t *worker = s_with_role (alice, "worker");
    assert_int_equal (zcert_save_public (worker, path), 0);
    zcert_destroy (&worker);
    assert_true (arb_auth_refresh (auth, (uint64_t) zclock_mono () + 2000));
    arb_auth_note (auth, zframe_data (a), zframe_size (a),
                   key);  //  a message since: the change is still told
    arb_auth_changed_roles (auth, s_changed, &changes);
    assert_int_equal (changes.calls, 1);
    assert_int_equal (changes.role, ARB_ROLE_WORKER);
    assert_string_equal (changes.identity, "a");
    assert_string_equal (changes.name, "alice.cert");
    arb_auth_changed_roles (auth, s_changed, &changes);
    assert_int_equal (changes.calls, 1);  //  told once

    //  many peers that hold nothing: pruned, the one that holds kept
    for (int i = 0; i < 1100; i++) {
        zframe_t *other = zframe_new (&i, sizeof (i));
        arb_auth_note (auth, zframe_data (other), zframe_size (other), key);
        zframe_destroy (&other);
    }
    arb_auth_prune (auth, s_holds, &changes);
    unlink (path);
    assert_true (arb_auth_refresh (auth, (uint64_t) zclock_mono () + 4000));
    arb_auth_changed_roles (auth, s_changed, &changes);
    assert_int_equal (changes.calls, 2);  //  the pruned are not told
    assert_int_equal (changes.role, ARB_ROLE_NONE);
    assert_string_equal (changes.name, "alice.cert");

    zframe_destroy (&a);
    zsock_destroy (&router);
    arb_auth_destroy (&auth);
    zcert_destroy (&alice);
    s_rmdir (dir);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_curve_loading),
        cmocka_unit_test (test_local_endpoints),
        cmocka_unit_test (test_roles_of_peers),
        cmocka_unit_test (test_peers_whose_role_changed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
