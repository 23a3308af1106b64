/*  arb_heap.h — an indexed binary heap of pointers.

    The broker keeps its ready queues and its timers in these: O(log n)
    push, pop and remove-from-the-middle (a cancelled or leased task leaves
    its heap at once). Each item stores its own position, through the
    index callback, so removal needs no search.

    Not thread-safe; owned by the broker's loop thread.
*/

#ifndef ARB_HEAP_H
#define ARB_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#define ARB_HEAP_NONE ((size_t) -1)  //  position of an item in no heap

typedef struct _arb_heap_t arb_heap_t;

//  True when a must come out before b.
typedef bool (arb_heap_before_fn) (const void *a, const void *b, void *arg);

//  Where an item keeps its position; the heap writes ARB_HEAP_NONE there
//  when the item leaves.
typedef size_t *(arb_heap_slot_fn) (void *item);

arb_heap_t *arb_heap_new (arb_heap_before_fn *before, arb_heap_slot_fn *slot, void *arg);

//  Destroys the heap; the items are not its to free.
void arb_heap_destroy (arb_heap_t **self_p);

void arb_heap_push (arb_heap_t *self, void *item);

//  The first item, or NULL; pop also removes it.
void *arb_heap_peek (arb_heap_t *self);
void *arb_heap_pop (arb_heap_t *self);

//  Removes an item that is in this heap (its slot says where).
void arb_heap_remove (arb_heap_t *self, void *item);

//  Restores order after the item's key changed.
void arb_heap_update (arb_heap_t *self, void *item);

size_t arb_heap_size (arb_heap_t *self);

//  The item at a position (0 .. size-1), in no particular order: for walks.
void *arb_heap_at (arb_heap_t *self, size_t index);

//  Whether an item seen by arb_heap_first is one to show.
typedef bool (arb_heap_keep_fn) (void *item, void *arg);

//  Fills items with the first items of count heaps that share one order,
//  in that order, without taking them out: up to max of those keep (NULL:
//  all) says yes to, looking at no more than scan items in all. Returns
//  how many it wrote. O((count + scan) log (count + scan)).
size_t arb_heap_first (arb_heap_t **heaps,
                       size_t count,
                       void **items,
                       size_t max,
                       size_t scan,
                       arb_heap_keep_fn *keep,
                       void *arg);

#endif
