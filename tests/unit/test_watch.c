/*  test_watch.c — the broker's watches (arb_watch): who hears of which
    task's end, apart from the task records. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "arb_watch.h"

//  What arb_watch_take told: the identities, in order, and which was last.
typedef struct {
    char names[16][16];
    bool last[16];
    size_t count;
} s_told_t;

//  Makes the routing id in frame watch task id.
static void
s_add (arb_watch_t *watch, uint64_t id, zframe_t *frame)
{
    arb_watch_add (watch, id, zframe_data (frame), zframe_size (frame));
}

static void
s_tell (void *arg, zframe_t *identity, bool last)
{
    s_told_t *told = (s_told_t *) arg;
    assert_true (told->count < 16);
    snprintf (told->names[told->count], sizeof (told->names[0]), "%.*s",
              (int) zframe_size (identity), (const char *) zframe_data (identity));
    told->last[told->count++] = last;
}

static zframe_t *
s_peer (const char *name)
{
    return zframe_new (name, strlen (name));
}

static void
test_add_take_once_per_peer (void **state)
{
    (void) state;
    arb_watch_t *watch = arb_watch_new ();
    zframe_t *a = s_peer ("alice"), *b = s_peer ("bob");
    s_add (watch, 7, a);
    s_add (watch, 7, a);  //  once per routing id
    s_add (watch, 7, b);
    s_add (watch, 8, b);
    assert_int_equal (arb_watch_size (watch), 3);
    assert_int_equal (arb_watch_peers (watch), 2);

    s_told_t told = {0};
    assert_int_equal (arb_watch_take (watch, 7, s_tell, &told), 2);
    assert_int_equal (told.count, 2);
    //  both peers, each once, and only the second told it is the last
    assert_true ((streq (told.names[0], "alice") && streq (told.names[1], "bob"))
                 || (streq (told.names[0], "bob") && streq (told.names[1], "alice")));
    assert_false (told.last[0]);
    assert_true (told.last[1]);
    //  taken: gone; alice has no watch left, so she is forgotten
    memset (&told, 0, sizeof (told));
    assert_int_equal (arb_watch_take (watch, 7, s_tell, &told), 0);
    assert_int_equal (told.count, 0);
    assert_int_equal (arb_watch_size (watch), 1);
    assert_int_equal (arb_watch_peers (watch), 1);
    assert_int_equal (arb_watch_take (watch, 8, s_tell, &told), 1);
    assert_string_equal (told.names[0], "bob");
    assert_true (told.last[0]);
    assert_int_equal (arb_watch_peers (watch), 0);
    //  a peer forgotten and seen again is interned anew
    s_add (watch, 9, a);
    assert_int_equal (arb_watch_peers (watch), 1);
    zframe_destroy (&a);
    zframe_destroy (&b);
    arb_watch_destroy (&watch);
    assert_null (watch);
}

//  A peer shut out (arb_watch_drop_peer) loses every watch, among many of
//  others in runs that removal must keep whole; the others still hear.
static void
test_drop_peer_forgets_its_watches_only (void **state)
{
    (void) state;
    arb_watch_t *watch = arb_watch_new ();
    zframe_t *a = s_peer ("alice"), *b = s_peer ("bob");
    for (uint64_t id = 1; id <= 500; id++) {
        s_add (watch, id, b);
        if (id % 3 == 0)
            s_add (watch, id, a);
    }
    assert_true (arb_watch_has_peer (watch, a));
    assert_int_equal (arb_watch_drop_peer (watch, a), 166);
    assert_false (arb_watch_has_peer (watch, a));
    assert_int_equal (arb_watch_drop_peer (watch, a), 0);
    assert_int_equal (arb_watch_size (watch), 500);
    assert_int_equal (arb_watch_peers (watch), 1);
    s_told_t told = {0};
    for (uint64_t id = 1; id <= 500; id++) {
        told.count = 0;
        assert_int_equal (arb_watch_take (watch, id, s_tell, &told), 1);
        assert_string_equal (told.names[0], "bob");
    }
    assert_int_equal (arb_watch_size (watch), 0);
    zframe_destroy (&a);
    zframe_destroy (&b);
    arb_watch_destroy (&watch);
}

//  Peers gone together (arb_watch_drop_peers: a turn's closed
//  connections) lose every watch in one walk; a peer named twice or
//  watching nothing counts once or not at all; the others still hear.
static void
test_drop_peers_forgets_theirs_only (void **state)
{
    (void) state;
    arb_watch_t *watch = arb_watch_new ();
    zframe_t *a = s_peer ("alice"), *b = s_peer ("bob"), *c = s_peer ("carol");
    zframe_t *n = s_peer ("nobody");
    for (uint64_t id = 1; id <= 3000; id++) {
        s_add (watch, id, c);
        if (id % 2 == 0)
            s_add (watch, id, a);
        if (id % 5 == 0)
            s_add (watch, id, b);
    }
    zframe_t *gone[] = {a, n, b, a};
    assert_int_equal (arb_watch_drop_peers (watch, gone, 4), 1500 + 600);
    assert_int_equal (arb_watch_drop_peers (watch, gone, 4), 0);
    assert_int_equal (arb_watch_size (watch), 3000);
    assert_int_equal (arb_watch_peers (watch), 1);
    s_told_t told = {0};
    for (uint64_t id = 1; id <= 3000; id++) {
        told.count = 0;
        assert_int_equal (arb_watch_take (watch, id, s_tell, &told), 1);
        assert_string_equal (told.names[0], "carol");
    }
    zframe_destroy (&a);
    zframe_destroy (&b);
    zframe_destroy (&c);
    zframe_destroy (&n);
    arb_watch_destroy (&watch);
}

//  Many ids (the table grows, then shrinks as they are taken), each taken
//  exactly once, whatever the order; ids next to each other collide in
//  runs that deletion must keep whole.
static void
test_many_ids_grow_and_shrink (void **state)
{
    (void) state;
    arb_watch_t *watch = arb_watch_new ();
    zframe_t *peers[3] = {s_peer ("p0"), s_peer ("p1"), s_peer ("p2")};
    const uint64_t n = 20000;
    for (uint64_t id = 1; id <= n; id++)
        for (uint64_t k = 0; k <= id % 3; k++)
            s_add (watch, id, peers[k]);
    assert_int_equal (arb_watch_size (watch), n / 3 * 6 + 2 + 3);  //  n = 3 * 6666 + 2
    assert_int_equal (arb_watch_peers (watch), 3);
    //  every other id first, then the rest backwards
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0; i < n; i++) {
            uint64_t id = pass == 0 ? 2 * i + 1 : n - i;
            if (id > n || (pass == 0) != (id % 2 == 1))
                continue;
            s_told_t told = {0};
            size_t want = (size_t) (id % 3) + 1;
            assert_int_equal (arb_watch_take (watch, id, s_tell, &told), want);
            assert_true (told.last[want - 1]);
        }
    assert_int_equal (arb_watch_size (watch), 0);
    assert_int_equal (arb_watch_peers (watch), 0);
    s_told_t told = {0};
    assert_int_equal (arb_watch_take (watch, 5, s_tell, &told), 0);
    for (int k = 0; k < 3; k++)
        zframe_destroy (&peers[k]);
    arb_watch_destroy (&watch);
}

//  pop hands out every watch once, with a copy of its identity.
static void
test_pop_takes_every_watch (void **state)
{
    (void) state;
    arb_watch_t *watch = arb_watch_new ();
    zframe_t *a = s_peer ("a"), *b = s_peer ("b");
    for (uint64_t id = 1; id <= 300; id++)
        s_add (watch, id, id % 2 ? a : b);
    s_add (watch, 300, a);
    uint64_t sum = 0;
    size_t count = 0, as = 0;
    uint64_t id;
    zframe_t *identity;
    while (arb_watch_pop (watch, &id, &identity)) {
        sum += id;
        count++;
        as += zframe_eq (identity, a);
        zframe_destroy (&identity);
    }
    assert_int_equal (count, 301);
    assert_int_equal (sum, 300 * 301 / 2 + 300);
    assert_int_equal (as, 151);
    assert_int_equal (arb_watch_size (watch), 0);
    assert_int_equal (arb_watch_peers (watch), 0);
    assert_false (arb_watch_pop (watch, &id, &identity));
    zframe_destroy (&a);
    zframe_destroy (&b);
    arb_watch_destroy (&watch);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_add_take_once_per_peer),
        cmocka_unit_test (test_many_ids_grow_and_shrink),
        cmocka_unit_test (test_pop_takes_every_watch),
        cmocka_unit_test (test_drop_peer_forgets_its_watches_only),
        cmocka_unit_test (test_drop_peers_forgets_theirs_only),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
