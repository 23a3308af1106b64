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

//  arb_heap_first walks the heaps' trees in order with a small heap of
//  places (a heap and a position in it): the next item in order is always
//  the best of the roots and of the children of those already seen.
typedef struct {
    size_t heap;      //  which of the heaps
    size_t position;  //  where in it
} s_place_t;

typedef struct {
    arb_heap_t **heaps;  //  borrowed
    s_place_t *at;       //  owned: a binary heap of places
    size_t count;
} s_walk_t;

static void *
s_walk_item (s_walk_t *walk, size_t index)
{
    return walk->heaps[walk->at[index].heap]->items[walk->at[index].position];
}

static bool
s_walk_before (s_walk_t *walk, size_t a, size_t b)
{
    arb_heap_t *heap = walk->heaps[0];
    return heap->before (s_walk_item (walk, a), s_walk_item (walk, b), heap->arg);
}

static void
s_walk_swap (s_walk_t *walk, size_t a, size_t b)
{
    s_place_t tmp = walk->at[a];
    walk->at[a] = walk->at[b];
    walk->at[b] = tmp;
}

static void
s_walk_push (s_walk_t *walk, size_t heap, size_t position)
{
    if (position >= walk->heaps[heap]->size)
        return;
    size_t index = walk->count++;
    walk->at[index] = (s_place_t){heap, position};
    while (index > 0 && s_walk_before (walk, index, (index - 1) / 2)) {
        s_walk_swap (walk, index, (index - 1) / 2);
        index = (index - 1) / 2;
    }
}

static s_place_t
s_walk_pop (s_walk_t *walk)
{
    s_place_t first = walk->at[0];
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
arb_heap_first (arb_heap_t **heaps,
                size_t count,
                void **items,
                size_t max,
                size_t scan,
                arb_heap_keep_fn *keep,
                void *arg)
{
    //  the roots, then each item seen adds at most two places and removes one
    s_walk_t walk = {heaps, (s_place_t *) malloc ((count + 2 * scan + 1) * sizeof (s_place_t)), 0};
    assert (walk.at);
    for (size_t heap = 0; heap < count; heap++)
        s_walk_push (&walk, heap, 0);
    size_t found = 0;
    for (size_t seen = 0; found < max && seen < scan && walk.count > 0; seen++) {
        s_place_t place = s_walk_pop (&walk);
        void *item = heaps[place.heap]->items[place.position];
        if (!keep || keep (item, arg))
            items[found++] = item;
        s_walk_push (&walk, place.heap, 2 * place.position + 1);
        s_walk_push (&walk, place.heap, 2 * place.position + 2);
    }
    free (walk.at);
    return found;
}
