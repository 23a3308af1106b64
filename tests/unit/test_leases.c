/*  test_leases.c — the tasks a worker session holds (client/arb_leases.h):
    outcomes go out oldest first with their leases and results, stay until
    acknowledged and are forgotten then; a task held is refused again, one
    settled under an old lease is replaced; records forgotten are reused
    (rounds of tasks past the number kept) with nothing of the task before
    them: no outcome, error or result carried over.
*/

#include "arb_leases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

//  One RESULT's items are the tasks first..first+n-1, in order, with the
//  lease 1000 + id and, for even ids, the result "r<id>" (odd ids failed).
static void
s_expect_results (arb_msg_t *msg, uint64_t first, size_t n)
{
    assert_non_null (msg);
    arb_result_body_t *body = arb_msg_result (msg);
    assert_int_equal (body->results.n, n);
    for (size_t i = 0; i < n; i++) {
        arb_result_item_t *item = &body->results.v[i];
        uint64_t id = first + i;
        assert_int_equal (item->id, id);
        assert_int_equal (item->lease, 1000 + id);
        if (id % 2 == 0) {
            char want[32];
            snprintf (want, sizeof (want), "r%llu", (unsigned long long) id);
            assert_int_equal (item->outcome, ARB_OUTCOME_OK);
            assert_null (item->error);
            assert_non_null (item->result);
            assert_int_equal (zframe_size (item->result), strlen (want));
            assert_memory_equal (zframe_data (item->result), want, strlen (want));
        }
        else {
            assert_int_equal (item->outcome, ARB_OUTCOME_FAIL);
            assert_string_equal (item->error, "odd");
            assert_null (item->result);
        }
    }
}

//  Holds and settles tasks first..first+n-1 (even ones with a result).
static void
s_hold_and_settle (arb_leases_t *leases, uint64_t first, size_t n)
{
    for (uint64_t id = first; id < first + n; id++)
        assert_int_equal (arb_leases_add (leases, id, 1000 + id, 1), 0);
    for (uint64_t id = first; id < first + n; id++) {
        assert_true (arb_leases_is_open (leases, id));
        if (id % 2 == 0) {
            char result[32];
            snprintf (result, sizeof (result), "r%llu", (unsigned long long) id);
            zframe_t *frame = zframe_new (result, strlen (result));
            assert_int_equal (arb_leases_settle (leases, id, ARB_OUTCOME_OK, NULL, &frame), 0);
            assert_null (frame);
        }
        else
            assert_int_equal (arb_leases_settle (leases, id, ARB_OUTCOME_FAIL, "odd", NULL), 0);
        assert_false (arb_leases_is_open (leases, id));
    }
}

static void
test_outcomes_go_out_and_are_forgotten_when_acked (void **state)
{
    (void) state;
    arb_leases_t *leases = arb_leases_new ();
    assert_int_equal (arb_leases_add (leases, 5, 1005, 1), 0);
    assert_int_equal (arb_leases_add (leases, 5, 2005, 1), -1);  //  open, another lease
    assert_true (arb_leases_forget (leases, 5));
    s_hold_and_settle (leases, 10, 3);
    assert_int_equal (arb_leases_add (leases, 11, 1011, 1), -1);  //  held
    assert_int_equal (arb_leases_settle (leases, 11, ARB_OUTCOME_OK, NULL, NULL), -1);
    assert_true (arb_leases_has_results (leases));
    assert_int_equal (arb_leases_bytes (leases), 6);  //  "r10", "r12"

    arb_msg_t *msg = arb_leases_results (leases, 7, 100);
    s_expect_results (msg, 10, 3);
    arb_msg_destroy (&msg);
    assert_false (arb_leases_has_results (leases));
    assert_null (arb_leases_results (leases, 8, 100));
    assert_int_equal (arb_leases_size (leases), 3);  //  until acknowledged
    assert_int_equal (arb_leases_acked (leases, 6), 0);
    assert_int_equal (arb_leases_acked (leases, 7), 3);
    assert_int_equal (arb_leases_size (leases), 0);
    assert_int_equal (arb_leases_bytes (leases), 0);

    //  a task settled under an old lease, not acknowledged: a new dispatch
    //  of it replaces it, open again and without the old outcome
    s_hold_and_settle (leases, 20, 1);
    assert_int_equal (arb_leases_add (leases, 20, 2020, 1), 0);
    assert_true (arb_leases_is_open (leases, 20));
    assert_int_equal (arb_leases_size (leases), 1);
    assert_int_equal (arb_leases_bytes (leases), 0);
    assert_false (arb_leases_has_results (leases));
    arb_leases_destroy (&leases);
    assert_null (leases);
}

static void
test_records_come_back_empty (void **state)
{
    (void) state;
    arb_leases_t *leases = arb_leases_new ();
    //  rounds of 500 then one of 3,000 (more than are kept), each acked
    size_t rounds[] = {500, 500, 3000, 500, 7};
    uint64_t next = 1;
    for (uint32_t r = 0; r < 5; r++) {
        s_hold_and_settle (leases, next, rounds[r]);
        //  a RESULT carries at most ARB_LEASES_RESULT_ITEMS
        for (uint64_t first = next; first < next + rounds[r]; first += ARB_LEASES_RESULT_ITEMS) {
            size_t n = next + rounds[r] - first;
            if (n > ARB_LEASES_RESULT_ITEMS)
                n = ARB_LEASES_RESULT_ITEMS;
            arb_msg_t *msg = arb_leases_results (leases, r + 1, 100);
            s_expect_results (msg, first, n);
            arb_msg_destroy (&msg);
        }
        assert_int_equal (arb_leases_acked (leases, r + 1), rounds[r]);
        assert_int_equal (arb_leases_size (leases), 0);
        next += rounds[r];
    }
    //  held, not settled, and released: a reused record is open, bare
    assert_int_equal (arb_leases_add (leases, 1, 1001, 1), 0);
    assert_int_equal (arb_leases_release (leases, 2, 1002), 0);
    assert_int_equal (arb_leases_settle (leases, 1, ARB_OUTCOME_RELEASE, NULL, NULL), 0);
    arb_msg_t *msg = arb_leases_results (leases, 9, 100);
    arb_result_body_t *body = arb_msg_result (msg);
    assert_int_equal (body->results.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal (body->results.v[i].outcome, ARB_OUTCOME_RELEASE);
        assert_null (body->results.v[i].error);
        assert_null (body->results.v[i].result);
        assert_false (body->results.v[i].routed);
    }
    arb_msg_destroy (&msg);
    arb_leases_destroy (&leases);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_outcomes_go_out_and_are_forgotten_when_acked),
        cmocka_unit_test (test_records_come_back_empty),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
