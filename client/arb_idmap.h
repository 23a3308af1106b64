/*  arb_idmap.h — a map from 64-bit ids (task ids, request ids,
    subscription numbers) to pointers.

    The client and the link look ids up at the rate tasks flow (100,000 a
    second is one insert and one removal per task), so the map is an
    open-addressing hash table (linear probing, deletion by backward shift:
    no tombstones) that allocates only when it grows, never per id. The
    values are borrowed: the map never frees them. Not thread-safe; owned
    by one object. arb_idset is this map without values.
*/

#ifndef ARB_IDMAP_H
#define ARB_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _arb_idmap_t arb_idmap_t;

//  Creates an empty map.
arb_idmap_t *arb_idmap_new (void);

//  Destroys the map (not the values). Accepts NULL; nulls the caller's
//  pointer.
void arb_idmap_destroy (arb_idmap_t **self_p);

//  Maps id to value if id is not in the map yet; returns true if it was
//  added (an id already there keeps its value).
bool arb_idmap_insert (arb_idmap_t *self, uint64_t id, void *value);

//  Removes id; returns true if it was there.
bool arb_idmap_remove (arb_idmap_t *self, uint64_t id);

//  Whether id is in the map.
bool arb_idmap_contains (arb_idmap_t *self, uint64_t id);

//  The value of id (borrowed), or NULL if id is not in the map.
void *arb_idmap_lookup (arb_idmap_t *self, uint64_t id);

//  Number of ids in the map.
size_t arb_idmap_size (arb_idmap_t *self);

//  Removes every id (keeps the memory).
void arb_idmap_clear (arb_idmap_t *self);

//  Walks the map in no particular order: start with *cursor = 0; each call
//  stores the next id in *id and its value in *value (if value is not
//  NULL) and returns true, or returns false at the end. The map must not
//  change during a walk.
bool arb_idmap_next (arb_idmap_t *self, size_t *cursor, uint64_t *id, void **value);

#endif
