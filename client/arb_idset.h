/*  arb_idset.h — a set of 64-bit ids (task ids, request ids).

    The client tracks which task ids it watches and which request ids it
    awaits; at 100,000 tasks a second that is one insert and one removal
    per task, so the set is arb_idmap's open-addressing hash table (linear
    probing, deletion by backward shift: no tombstones) without values,
    which allocates only when it grows, never per id. Not thread-safe;
    owned by one client.
*/

#ifndef ARB_IDSET_H
#define ARB_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _arb_idset_t arb_idset_t;

//  Creates an empty set.
arb_idset_t *arb_idset_new (void);

//  Destroys the set. Accepts NULL; nulls the caller's pointer.
void arb_idset_destroy (arb_idset_t **self_p);

//  Adds id; returns true if it was not there yet.
bool arb_idset_insert (arb_idset_t *self, uint64_t id);

//  Removes id; returns true if it was there.
bool arb_idset_remove (arb_idset_t *self, uint64_t id);

//  Whether id is in the set.
bool arb_idset_contains (arb_idset_t *self, uint64_t id);

//  Number of ids in the set.
size_t arb_idset_size (arb_idset_t *self);

//  Removes every id (keeps the memory).
void arb_idset_clear (arb_idset_t *self);

//  Walks the set in no particular order: start with *cursor = 0; each call
//  stores the next id in *id and returns true, or returns false at the
//  end. The set must not change during a walk.
bool arb_idset_next (arb_idset_t *self, size_t *cursor, uint64_t *id);

#endif
