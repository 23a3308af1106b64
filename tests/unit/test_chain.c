/*  test_chain.c — the intrusive list (proto/arb_chain.h) against a plain
    array: random adds at the end and removals anywhere, each step checked
    by a walk from the first item to the last, and the item of the end
    (NULL) is NULL.
*/

#include "arb_chain.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#define ITEMS 64

typedef struct {
    int value;
    arb_chain_link_t node;  //  not first: the item is not at its link's address
} s_item_t;

static s_item_t *
s_first (arb_chain_t *chain)
{
    return ARB_CHAIN_ITEM (arb_chain_first (chain), s_item_t, node);
}

static s_item_t *
s_next (arb_chain_t *chain, s_item_t *item)
{
    return ARB_CHAIN_ITEM (arb_chain_next (chain, &item->node), s_item_t, node);
}

//  The chain holds exactly the items of order, in that order.
static void
s_expect (arb_chain_t *chain, s_item_t **order, size_t count)
{
    assert_int_equal (chain->size, count);
    size_t seen = 0;
    for (s_item_t *item = s_first (chain); item; item = s_next (chain, item)) {
        assert_true (seen < count);
        assert_ptr_equal (item, order[seen]);
        seen++;
    }
    assert_int_equal (seen, count);
}

static void
test_empty_chain_has_no_items (void **state)
{
    (void) state;
    arb_chain_t chain;
    arb_chain_init (&chain);
    assert_null (arb_chain_first (&chain));
    assert_null (s_first (&chain));
    assert_int_equal (chain.size, 0);
    s_item_t one = {.value = 1};
    arb_chain_add_end (&chain, &one.node);
    assert_ptr_equal (s_first (&chain), &one);
    assert_null (s_next (&chain, &one));
    arb_chain_remove (&chain, &one.node);
    assert_null (one.node.prev);
    assert_null (one.node.next);
    assert_null (s_first (&chain));
}

static void
test_agrees_with_array (void **state)
{
    (void) state;
    static s_item_t items[ITEMS];
    bool linked[ITEMS] = {false};
    s_item_t *order[ITEMS];
    size_t count = 0;
    arb_chain_t chain;
    arb_chain_init (&chain);
    srand (7);
    for (int step = 0; step < 20000; step++) {
        int i = rand () % ITEMS;
        if (!linked[i]) {
            items[i].value = i;
            arb_chain_add_end (&chain, &items[i].node);
            order[count++] = &items[i];
            linked[i] = true;
        }
        else {
            arb_chain_remove (&chain, &items[i].node);
            size_t at = 0;
            while (order[at] != &items[i])
                at++;
            for (; at + 1 < count; at++)
                order[at] = order[at + 1];
            count--;
            linked[i] = false;
        }
        s_expect (&chain, order, count);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_empty_chain_has_no_items),
        cmocka_unit_test (test_agrees_with_array),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
