/*  arb_idset.c — open-addressing hash set of 64-bit ids.

    Slots hold the id itself; 0 marks an empty slot, so the id 0 (never a
    task or request id, but the set does not rely on that) lives in a flag
    of its own. The table is a power of two, kept at most 3/4 full. A
    removal shifts the following run of the probe sequence back, so lookups
    never walk over tombstones, however many ids come and go.
*/

#include "arb_idset.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define ARB_IDSET_MIN 64  //  slots of a fresh table

struct _arb_idset_t {
    uint64_t *slots;  //  owned; capacity entries, 0 = empty
    size_t capacity;  //  a power of two
    size_t count;     //  ids in slots (not counting the zero id)
    bool has_zero;    //  the id 0 is in the set
};

//  splitmix64's finaliser: task ids are sequential, so the low bits alone
//  would cluster; this spreads them over the whole table.
static size_t
s_hash (uint64_t id)
{
    id ^= id >> 30;
    id *= 0xbf58476d1ce4e5b9ull;
    id ^= id >> 27;
    id *= 0x94d049bb133111ebull;
    id ^= id >> 31;
    return (size_t) id;
}

static uint64_t *
s_slots_new (size_t capacity)
{
    uint64_t *slots = (uint64_t *) calloc (capacity, sizeof (uint64_t));
    if (!slots)
        abort ();  //  out of memory
    return slots;
}

arb_idset_t *
arb_idset_new (void)
{
    arb_idset_t *self = (arb_idset_t *) calloc (1, sizeof (arb_idset_t));
    if (!self)
        abort ();  //  out of memory
    self->capacity = ARB_IDSET_MIN;
    self->slots = s_slots_new (self->capacity);
    return self;
}

void
arb_idset_destroy (arb_idset_t **self_p)
{
    assert (self_p);
    arb_idset_t *self = *self_p;
    if (!self)
        return;
    free (self->slots);
    free (self);
    *self_p = NULL;
}

//  Index of id's slot, or of the empty slot where it would go.
static size_t
s_find (arb_idset_t *self, uint64_t id)
{
    size_t mask = self->capacity - 1;
    size_t i = s_hash (id) & mask;
    while (self->slots[i] && self->slots[i] != id)
        i = (i + 1) & mask;
    return i;
}

static void
s_grow (arb_idset_t *self)
{
    uint64_t *old = self->slots;
    size_t old_capacity = self->capacity;
    self->capacity *= 2;
    self->slots = s_slots_new (self->capacity);
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i])
            self->slots[s_find (self, old[i])] = old[i];
    free (old);
}

bool
arb_idset_insert (arb_idset_t *self, uint64_t id)
{
    assert (self);
    if (id == 0) {
        bool added = !self->has_zero;
        self->has_zero = true;
        return added;
    }
    if ((self->count + 1) * 4 > self->capacity * 3)
        s_grow (self);
    size_t i = s_find (self, id);
    if (self->slots[i])
        return false;
    self->slots[i] = id;
    self->count++;
    return true;
}

bool
arb_idset_remove (arb_idset_t *self, uint64_t id)
{
    assert (self);
    if (id == 0) {
        bool had = self->has_zero;
        self->has_zero = false;
        return had;
    }
    size_t mask = self->capacity - 1;
    size_t hole = s_find (self, id);
    if (!self->slots[hole])
        return false;
    self->slots[hole] = 0;
    self->count--;
    //  Backward shift: an entry further along the run may move into the
    //  hole unless its home slot lies cyclically in (hole, j].
    for (size_t j = (hole + 1) & mask; self->slots[j]; j = (j + 1) & mask) {
        size_t home = s_hash (self->slots[j]) & mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->slots[hole] = self->slots[j];
            self->slots[j] = 0;
            hole = j;
        }
    }
    return true;
}

bool
arb_idset_contains (arb_idset_t *self, uint64_t id)
{
    assert (self);
    if (id == 0)
        return self->has_zero;
    return self->slots[s_find (self, id)] != 0;
}

size_t
arb_idset_size (arb_idset_t *self)
{
    assert (self);
    return self->count + (self->has_zero ? 1 : 0);
}

void
arb_idset_clear (arb_idset_t *self)
{
    assert (self);
    memset (self->slots, 0, self->capacity * sizeof (uint64_t));
    self->count = 0;
    self->has_zero = false;
}

bool
arb_idset_next (arb_idset_t *self, size_t *cursor, uint64_t *id)
{
    assert (self && cursor && id);
    //  cursor 0 is the zero id; cursor k > 0 is slot k - 1
    if (*cursor == 0) {
        *cursor = 1;
        if (self->has_zero) {
            *id = 0;
            return true;
        }
    }
    while (*cursor <= self->capacity) {
        uint64_t value = self->slots[*cursor - 1];
        (*cursor)++;
        if (value) {
            *id = value;
            return true;
        }
    }
    return false;
}
