/*  test_requests.c — a link's pending requests (client/arb_requests.h):
    found by id, walked oldest first, a pending id refused again, TAKEs'
    reservations summed; ended records reused (a window's worth at a
    time, then more than are kept) without mixing up order or ids.
*/

#include "arb_requests.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

//  The pending ids, oldest first, are exactly want[0..n).
static void
s_expect (arb_requests_t *requests, const uint32_t *want, size_t n)
{
    size_t count;
    uint32_t *ids = arb_requests_ids (requests, &count);
    assert_int_equal (count, n);
    assert_int_equal (arb_requests_size (requests), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (ids[i], want[i]);
    free (ids);
    int64_t sent_at = -1;
    assert_int_equal (arb_requests_oldest (requests, &sent_at), n ? want[0] : 0);
    if (n)
        assert_int_equal (sent_at, 1000 + want[0]);
}

static void
test_order_ids_and_reservations (void **state)
{
    (void) state;
    arb_requests_t *requests = arb_requests_new ();
    s_expect (requests, NULL, 0);
    assert_int_equal (arb_requests_add (requests, 7, ARB_MSG_SUBMIT, 0, 1007), 0);
    assert_int_equal (arb_requests_add (requests, 3, ARB_MSG_TAKE, 10, 1003), 0);
    assert_int_equal (arb_requests_add (requests, 9, ARB_MSG_TAKE, 5, 1009), 0);
    assert_int_equal (arb_requests_add (requests, 3, ARB_MSG_SUBMIT, 0, 1003), -1);
    s_expect (requests, (uint32_t[]){7, 3, 9}, 3);
    assert_int_equal (arb_requests_reserved (requests), 15);
    assert_true (arb_requests_contains (requests, 3));

    assert_int_equal (arb_requests_end (requests, 3), ARB_MSG_TAKE);
    assert_int_equal (arb_requests_end (requests, 3), 0);
    assert_false (arb_requests_contains (requests, 3));
    assert_int_equal (arb_requests_reserved (requests), 5);
    s_expect (requests, (uint32_t[]){7, 9}, 2);

    //  the ended record comes back for the next: at the end, with its own
    //  id; a pending id is refused with a record spare, changing nothing
    assert_int_equal (arb_requests_add (requests, 3, ARB_MSG_SUBMIT, 0, 1003), 0);
    s_expect (requests, (uint32_t[]){7, 9, 3}, 3);
    assert_int_equal (arb_requests_end (requests, 7), ARB_MSG_SUBMIT);
    assert_int_equal (arb_requests_add (requests, 9, ARB_MSG_TAKE, 8, 1009), -1);
    assert_int_equal (arb_requests_reserved (requests), 5);
    s_expect (requests, (uint32_t[]){9, 3}, 2);
    assert_int_equal (arb_requests_add (requests, 7, ARB_MSG_SUBMIT, 0, 1007), 0);
    s_expect (requests, (uint32_t[]){9, 3, 7}, 3);
    assert_int_equal (arb_requests_end (requests, 7), ARB_MSG_SUBMIT);
    assert_int_equal (arb_requests_end (requests, 3), ARB_MSG_SUBMIT);
    s_expect (requests, (uint32_t[]){9}, 1);
    arb_requests_destroy (&requests);
    assert_null (requests);
}

static void
test_windows_of_requests_come_and_go (void **state)
{
    (void) state;
    arb_requests_t *requests = arb_requests_new ();
    uint32_t next = 1, oldest = 1;
    //  windows of 256, then one of 5,000 (more than are kept), each ended
    //  oldest first but for its last ten, which stay pending a while
    size_t windows[] = {256, 256, 5000, 256};
    for (size_t w = 0; w < 4; w++) {
        for (size_t i = 0; i < windows[w]; i++, next++)
            assert_int_equal (arb_requests_add (requests, next, ARB_MSG_SUBMIT, 1, 1000 + next), 0);
        while (next - oldest > 10) {
            int64_t sent_at;
            assert_int_equal (arb_requests_oldest (requests, &sent_at), oldest);
            assert_int_equal (sent_at, 1000 + oldest);
            assert_int_equal (arb_requests_end (requests, oldest), ARB_MSG_SUBMIT);
            oldest++;
        }
        assert_int_equal (arb_requests_size (requests), 10);
        assert_int_equal (arb_requests_reserved (requests), 10);
    }
    uint32_t want[10];
    for (uint32_t i = 0; i < 10; i++)
        want[i] = oldest + i;
    s_expect (requests, want, 10);
    arb_requests_destroy (&requests);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_order_ids_and_reservations),
        cmocka_unit_test (test_windows_of_requests_come_and_go),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
