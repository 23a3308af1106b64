/*  arb_vec.h — a growable array of uint64_t, also usable as a FIFO.

    For the broker's lists of ids and (id, value) pairs, where a zero is a
    value like any other (czmq's lists refuse NULL items). A small plain
    struct: zero-initialise it, and arb_vec_free it when done.
*/

#ifndef ARB_VEC_H
#define ARB_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *v;      //  owned
    size_t head;      //  first value not yet shifted off
    size_t n;         //  values pushed
    size_t capacity;  //  values allocated
} arb_vec_t;

void arb_vec_push (arb_vec_t *self, uint64_t value);

//  Takes the oldest value not taken yet; false when none is left.
bool arb_vec_shift (arb_vec_t *self, uint64_t *value);

//  Values not taken yet.
size_t arb_vec_size (const arb_vec_t *self);

void arb_vec_free (arb_vec_t *self);

//  Makes room for one element more in array (count elements used of
//  *capacity allocated, each size bytes), doubling the allocation when it
//  is full; returns the array, which may have moved. n additions then copy
//  O(n) elements in all, where growing by one copies O(n^2) whenever
//  realloc cannot extend in place (a peer's 10,000 subscriptions on one
//  queue: 400 MB copied).
void *arb_array_grow (void *array, size_t count, size_t *capacity, size_t size);

//  For each of n ids, the index of its first place in the list (its own
//  index unless an earlier id is the same): n indexes (at least one
//  allocated), for the caller to free. O(n log n), for the lists of ids a
//  peer sends (up to 100,000), where a repeated id must not cost again.
size_t *arb_ids_first (const uint64_t *ids, size_t n);

#endif
