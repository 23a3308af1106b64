/*  arb_heap.c — indexed binary heap; see arb_heap.h. */

#include "arb_heap.h"

#include <czmq.h>

struct _arb_heap_t {
    void **items;     //  owned array of borrowed items
    size_t size;      //  items in the heap
    size_t capacity;  //  slots allocated
    arb_heap_before_fn *before;
    arb_heap_slot_fn *slot;
    void *arg;  //  borrowed, passed to before
};

arb_heap_t *
arb_heap_new (arb_heap_before_fn *before, arb_heap_slot_fn *slot, void *arg)
{
    arb_heap_t *self = (arb_heap_t *) zmalloc (sizeof (arb_heap_t));
    self->before = before;
    self->slot = slot;
    self->arg = arg;
    return self;
}

void
arb_heap_destroy (arb_heap_t **self_p)
{
    assert (self_p);
    arb_heap_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        *self->slot (self->items[i]) = ARB_HEAP_NONE;
    free (self->items);
    free (self);
    *self_p = NULL;
}

static void
s_place (arb_heap_t *self, size_t index, void *item)
{
    self->items[index] = item;
    *self->slot (item) = index;
}

static void
s_sift_up (arb_heap_t *self, size_t index)
{
    void *item = self->items[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!self->before (item, self->items[parent], self->arg))
            break;
        s_place (self, index, self->items[parent]);
        index = parent;
    }
    s_place (self, index, item);
}

static void
s_sift_down (arb_heap_t *self, size_t index)
{
    void *item = self->items[index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size
            && self->before (self->items[child + 1], self->items[child], self->arg))
            child++;
        if (!self->before (self->items[child], item, self->arg))
            break;
        s_place (self, index, self->items[child]);
        index = child;
    }
    s_place (self, index, item);
}

void
arb_heap_push (arb_heap_t *self, void *item)
{
    assert (*self->slot (item) == ARB_HEAP_NONE);
    if (self->size == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 64;
        self->items = (void **) realloc (self->items, self->capacity * sizeof (void *));
        assert (self->items);
    }
    self->items[self->size++] = item;
    s_sift_up (self, self->size - 1);
}

void *
arb_heap_peek (arb_heap_t *self)
{
    return self->size ? self->items[0] : NULL;
}

void *
arb_heap_pop (arb_heap_t *self)
{
    void *first = arb_heap_peek (self);
    if (first)
        arb_heap_remove (self, first);
    return first;
}

void
arb_heap_remove (arb_heap_t *self, void *item)
{
    size_t index = *self->slot (item);
    assert (index < self->size && self->items[index] == item);
    *self->slot (item) = ARB_HEAP_NONE;
    void *last = self->items[--self->size];
    if (index == self->size)
        return;
    s_place (self, index, last);
    //  the moved item may belong above or below its new place
    if (index > 0 && self->before (last, self->items[(index - 1) / 2], self->arg))
        s_sift_up (self, index);
    else
        s_sift_down (self, index);
}

void
arb_heap_update (arb_heap_t *self, void *item)
{
    size_t index = *self->slot (item);
    assert (index < self->size && self->items[index] == item);
    s_sift_up (self, index);
    s_sift_down (self, *self->slot (item));
}

size_t
arb_heap_size (arb_heap_t *self)
{
    return self->size;
}

void *
arb_heap_at (arb_heap_t *self, size_t index)
{
    return index < self->size ? self->items[index] : NULL;
}

//  arb_heap_first walks the heap's tree in order with a second, small
//  heap of positions: the next item in order is always the best of the
//  children of those already seen.
typedef struct {
    arb_heap_t *heap;
    size_t *at;  //  owned: positions in heap, a binary heap of its own
    size_t count;
} s_walk_t;

static bool
s_walk_before (s_walk_t *walk, size_t a, size_t b)
{
    return walk->heap->before (walk->heap->items[walk->at[a]], walk->heap->items[walk->at[b]],
                               walk->heap->arg);
}

static void
s_walk_swap (s_walk_t *walk, size_t a, size_t b)
{
    size_t tmp = walk->at[a];
    walk->at[a] = walk->at[b];
    walk->at[b] = tmp;
}

static void
s_walk_push (s_walk_t *walk, size_t position)
{
    if (position >= walk->heap->size)
        return;
    size_t index = walk->count++;
    walk->at[index] = position;
    while (index > 0 && s_walk_before (walk, index, (index - 1) / 2)) {
        s_walk_swap (walk, index, (index - 1) / 2);
        index = (index - 1) / 2;
    }
}

static size_t
s_walk_pop (s_walk_t *walk)
{
    size_t first = walk->at[0];
    walk->at[0] = walk->at[--walk->count];
    for (size_t index = 0;;) {
        size_t child = 2 * index + 1;
        if (child >= walk->count)
            break;
        if (child + 1 < walk->count && s_walk_before (walk, child + 1, child))
            child++;
        if (!s_walk_before (walk, child, index))
            break;
        s_walk_swap (walk, index, child);
        index = child;
    }
    return first;
}

size_t
arb_heap_first (
    arb_heap_t *self, void **items, size_t max, size_t scan, arb_heap_keep_fn *keep, void *arg)
{
    //  each item seen adds at most two positions and removes one
    s_walk_t walk = {self, (size_t *) malloc ((2 * scan + 1) * sizeof (size_t)), 0};
    assert (walk.at);
    size_t count = 0;
    s_walk_push (&walk, 0);
    for (size_t seen = 0; count < max && seen < scan && walk.count > 0; seen++) {
        size_t position = s_walk_pop (&walk);
        if (!keep || keep (self->items[position], arg))
            items[count++] = self->items[position];
        s_walk_push (&walk, 2 * position + 1);
        s_walk_push (&walk, 2 * position + 2);
    }
    free (walk.at);
    return count;
}
