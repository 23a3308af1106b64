/*  test_idset.c — the client's id set and id map against plain arrays.

    Random inserts and removals over a small id range force long probe
    runs, wrap-around at the table's end and many backward shifts; after
    every step the set must agree with the reference, and every value of
    the map must still belong to its id.
*/

#include "arb_idmap.h"
#include "arb_idset.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>

#define RANGE 3000  //  ids 0 .. RANGE-1, so that the zero id takes part

static void
test_agrees_with_reference (void **state)
{
    (void) state;
    arb_idset_t *set = arb_idset_new ();
    static bool present[RANGE];
    size_t count = 0;
    srand (42);
    for (int step = 0; step < 200000; step++) {
        uint64_t id = (uint64_t) (rand () % RANGE);
        //  lean towards inserting at first, then towards removing
        bool insert = rand () % 100 < (step < 100000 ? 60 : 40);
        if (insert) {
            assert_int_equal (arb_idset_insert (set, id), !present[id]);
            count += !present[id];
            present[id] = true;
        }
        else {
            assert_int_equal (arb_idset_remove (set, id), present[id]);
            count -= present[id];
            present[id] = false;
        }
        assert_int_equal (arb_idset_size (set), count);
        if (step % 997 == 0)
            for (uint64_t k = 0; k < RANGE; k++)
                assert_int_equal (arb_idset_contains (set, k), present[k]);
    }
    //  a walk visits each id once
    size_t cursor = 0, seen = 0;
    uint64_t id;
    while (arb_idset_next (set, &cursor, &id)) {
        assert_true (id < RANGE && present[id]);
        present[id] = false;
        seen++;
    }
    assert_int_equal (seen, count);
    arb_idset_clear (set);
    assert_int_equal (arb_idset_size (set), 0);
    assert_false (arb_idset_contains (set, 0));
    arb_idset_destroy (&set);
    assert_null (set);
}

static void
test_large_ids_and_growth (void **state)
{
    (void) state;
    arb_idset_t *set = arb_idset_new ();
    for (uint64_t i = 1; i <= 100000; i++)
        assert_true (arb_idset_insert (set, i * 0x9e3779b97f4a7c15ull));
    assert_int_equal (arb_idset_size (set), 100000);
    for (uint64_t i = 1; i <= 100000; i += 2)
        assert_true (arb_idset_remove (set, i * 0x9e3779b97f4a7c15ull));
    for (uint64_t i = 1; i <= 100000; i++)
        assert_int_equal (arb_idset_contains (set, i * 0x9e3779b97f4a7c15ull), i % 2 == 0);
    assert_true (arb_idset_insert (set, UINT64_MAX));
    assert_false (arb_idset_insert (set, UINT64_MAX));
    arb_idset_destroy (&set);
}

//  Values travel with their ids through growth and backward shifts.
static void
test_map_values_follow_their_ids (void **state)
{
    (void) state;
    arb_idmap_t *map = arb_idmap_new ();
    static int values[RANGE];
    static bool present[RANGE];
    srand (7);
    for (int step = 0; step < 100000; step++) {
        uint64_t id = (uint64_t) (rand () % RANGE);
        if (rand () % 100 < 55) {
            assert_int_equal (arb_idmap_insert (map, id, &values[id]), !present[id]);
            present[id] = true;
        }
        else {
            assert_int_equal (arb_idmap_remove (map, id), present[id]);
            present[id] = false;
        }
        if (step % 1009 == 0)
            for (uint64_t k = 0; k < RANGE; k++)
                assert_ptr_equal (arb_idmap_lookup (map, k), present[k] ? &values[k] : NULL);
    }
    size_t cursor = 0, seen = 0;
    uint64_t id;
    void *value;
    while (arb_idmap_next (map, &cursor, &id, &value)) {
        assert_true (present[id]);
        assert_ptr_equal (value, &values[id]);
        seen++;
    }
    assert_int_equal (seen, arb_idmap_size (map));
    //  an id already there keeps its value
    assert_true (arb_idmap_insert (map, RANGE + 1, &values[1]));
    assert_false (arb_idmap_insert (map, RANGE + 1, &values[2]));
    assert_ptr_equal (arb_idmap_lookup (map, RANGE + 1), &values[1]);
    arb_idmap_destroy (&map);
    assert_null (map);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_agrees_with_reference),
        cmocka_unit_test (test_large_ids_and_growth),
        cmocka_unit_test (test_map_values_follow_their_ids),
    };
    return cmocka_run_group_tests_name ("idset", tests, NULL, NULL);
}
