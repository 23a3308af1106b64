/*  test_turns.c — the gateway's turns to ask the broker: at most so many
    asking, the others started in the order they came as earlier ones
    leave; a start that leaves at once makes room in the same loop; a
    waiting item that goes leaves the line; after a stop nothing starts.
*/

#include "arb_turns.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define S_ITEMS 6

typedef struct s_fx_t s_fx_t;

typedef struct {
    s_fx_t *fx;
    int index;
    arb_turn_t turn;
    bool answers_at_once;  //  its start leaves at once
} s_item_t;

struct s_fx_t {
    arb_turns_t *turns;
    s_item_t items[S_ITEMS];
    int started[S_ITEMS * 2];  //  indexes, in the order started
    int count;
};

static void
s_start (void *arg)
{
    s_item_t *item = (s_item_t *) arg;
    s_fx_t *fx = item->fx;
    fx->started[fx->count++] = item->index;
    if (item->answers_at_once)
        arb_turns_leave (fx->turns, &item->turn);
}

static s_fx_t *
s_fx_new (size_t max)
{
    s_fx_t *fx = (s_fx_t *) test_calloc (1, sizeof (s_fx_t));
    fx->turns = arb_turns_new (max, s_start);
    assert_non_null (fx->turns);
    for (int i = 0; i < S_ITEMS; i++)
        fx->items[i] = (s_item_t){.fx = fx, .index = i};
    return fx;
}

static void
s_fx_destroy (s_fx_t **fx_p)
{
    arb_turns_destroy (&(*fx_p)->turns);
    assert_null ((*fx_p)->turns);
    test_free (*fx_p);
    *fx_p = NULL;
}

static void
s_take (s_fx_t *fx, int i)
{
    arb_turns_take (fx->turns, &fx->items[i].turn, &fx->items[i]);
}

static void
s_leave (s_fx_t *fx, int i)
{
    arb_turns_leave (fx->turns, &fx->items[i].turn);
}

static void
test_at_most_max_ask_and_the_others_start_in_order (void **state)
{
    (void) state;
    s_fx_t *fx = s_fx_new (2);
    for (int i = 0; i < 4; i++)
        s_take (fx, i);
    assert_int_equal (fx->count, 2);
    assert_int_equal (arb_turns_asking (fx->turns), 2);
    assert_false (arb_turns_waiting (&fx->items[1].turn));
    assert_true (arb_turns_waiting (&fx->items[2].turn));
    assert_true (arb_turns_waiting (&fx->items[3].turn));
    s_leave (fx, 1);
    assert_int_equal (fx->count, 3);
    assert_int_equal (fx->started[2], 2);
    assert_false (arb_turns_waiting (&fx->items[2].turn));
    //  leaving twice, or a turn that was never taken, changes nothing
    s_leave (fx, 1);
    s_leave (fx, 5);
    assert_int_equal (arb_turns_asking (fx->turns), 2);
    assert_int_equal (fx->count, 3);
    //  a newcomer waits behind those already waiting
    s_take (fx, 4);
    assert_true (arb_turns_waiting (&fx->items[4].turn));
    s_leave (fx, 0);
    assert_int_equal (fx->started[3], 3);
    s_leave (fx, 2);
    assert_int_equal (fx->started[4], 4);
    assert_int_equal (fx->count, 5);
    s_fx_destroy (&fx);
}

static void
test_a_start_that_leaves_at_once_makes_room_in_the_same_loop (void **state)
{
    (void) state;
    s_fx_t *fx = s_fx_new (1);
    s_take (fx, 0);
    for (int i = 1; i < 5; i++) {
        fx->items[i].answers_at_once = i != 4;
        s_take (fx, i);
    }
    assert_int_equal (fx->count, 1);
    //  0 leaves: 1, 2 and 3 start and leave at once, 4 starts and asks
    s_leave (fx, 0);
    assert_int_equal (fx->count, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal (fx->started[i], i);
    assert_int_equal (arb_turns_asking (fx->turns), 1);
    //  one that answers at once with room: asks nothing after
    s_leave (fx, 4);
    fx->items[5].answers_at_once = true;
    s_take (fx, 5);
    assert_int_equal (fx->count, 6);
    assert_int_equal (arb_turns_asking (fx->turns), 0);
    s_fx_destroy (&fx);
}

static void
test_a_waiting_item_that_goes_leaves_the_line (void **state)
{
    (void) state;
    s_fx_t *fx = s_fx_new (1);
    for (int i = 0; i < 3; i++)
        s_take (fx, i);
    s_leave (fx, 1);  //  gone while it waited: never started
    assert_false (arb_turns_waiting (&fx->items[1].turn));
    s_leave (fx, 0);
    assert_int_equal (fx->count, 2);
    assert_int_equal (fx->started[1], 2);
    s_fx_destroy (&fx);
}

static void
test_after_a_stop_nothing_starts (void **state)
{
    (void) state;
    s_fx_t *fx = s_fx_new (1);
    for (int i = 0; i < 3; i++)
        s_take (fx, i);
    arb_turns_stop (fx->turns);
    assert_false (arb_turns_waiting (&fx->items[1].turn));
    assert_false (arb_turns_waiting (&fx->items[2].turn));
    s_leave (fx, 0);
    s_leave (fx, 1);
    s_take (fx, 3);
    assert_int_equal (fx->count, 1);
    assert_int_equal (arb_turns_asking (fx->turns), 0);
    s_fx_destroy (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_at_most_max_ask_and_the_others_start_in_order),
        cmocka_unit_test (test_a_start_that_leaves_at_once_makes_room_in_the_same_loop),
        cmocka_unit_test (test_a_waiting_item_that_goes_leaves_the_line),
        cmocka_unit_test (test_after_a_stop_nothing_starts),
    };
    return cmocka_run_group_tests_name ("turns", tests, NULL, NULL);
}
