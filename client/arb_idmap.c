/*  arb_idmap.c — open-addressing hash map of 64-bit ids to pointers.

    Slots hold the id itself, and a parallel array its value; 0 marks an
    empty slot, so the id 0 (never a task or request id, but the map does
    not rely on that) lives in a flag of its own. The table is a power of
    two, kept at most 3/4 full. A removal shifts the following run of the
    probe sequence back, so lookups never walk over tombstones, however many
    ids come and go.
*/

#include "arb_idmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define ARB_IDMAP_MIN 64  //  slots of a fresh table

struct _arb_idmap_t {
    uint64_t *slots;   //  owned; capacity entries, 0 = empty
    void **values;     //  owned array of capacity borrowed values, beside the slots
    size_t capacity;   //  a power of two
    size_t count;      //  ids in slots (not counting the zero id)
    bool has_zero;     //  the id 0 is in the map
    void *zero_value;  //  borrowed: its value
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

static void *
s_zalloc (size_t count, size_t size)
{
    void *memory = calloc (count, size);
    if (!memory)
        abort ();  //  out of memory
    return memory;
}

arb_idmap_t *
arb_idmap_new (void)
{
    arb_idmap_t *self = (arb_idmap_t *) s_zalloc (1, sizeof (arb_idmap_t));
    self->capacity = ARB_IDMAP_MIN;
    self->slots = (uint64_t *) s_zalloc (self->capacity, sizeof (uint64_t));
    self->values = (void **) s_zalloc (self->capacity, sizeof (void *));
    return self;
}

void
arb_idmap_destroy (arb_idmap_t **self_p)
{
    assert (self_p);
    arb_idmap_t *self = *self_p;
    if (!self)
        return;
    free (self->slots);
    free (self->values);
    free (self);
    *self_p = NULL;
}

//  Index of id's slot, or of the empty slot where it would go.
static size_t
s_find (arb_idmap_t *self, uint64_t id)
{
    size_t mask = self->capacity - 1;
    size_t i = s_hash (id) & mask;
    while (self->slots[i] && self->slots[i] != id)
        i = (i + 1) & mask;
    return i;
}

static void
s_grow (arb_idmap_t *self)
{
    uint64_t *old = self->slots;
    void **old_values = self->values;
    size_t old_capacity = self->capacity;
    self->capacity *= 2;
    self->slots = (uint64_t *) s_zalloc (self->capacity, sizeof (uint64_t));
    self->values = (void **) s_zalloc (self->capacity, sizeof (void *));
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i]) {
            size_t slot = s_find (self, old[i]);
            self->slots[slot] = old[i];
            self->values[slot] = old_values[i];
        }
    free (old);
    free (old_values);
}

bool
arb_idmap_insert (arb_idmap_t *self, uint64_t id, void *value)
{
    assert (self);
    if (id == 0) {
        if (self->has_zero)
            return false;
        self->has_zero = true;
        self->zero_value = value;
        return true;
    }
    if ((self->count + 1) * 4 > self->capacity * 3)
        s_grow (self);
    size_t i = s_find (self, id);
    if (self->slots[i])
        return false;
    self->slots[i] = id;
    self->values[i] = value;
    self->count++;
    return true;
}

bool
arb_idmap_remove (arb_idmap_t *self, uint64_t id)
{
    assert (self);
    if (id == 0) {
        bool had = self->has_zero;
        self->has_zero = false;
        self->zero_value = NULL;
        return had;
    }
    size_t mask = self->capacity - 1;
    size_t hole = s_find (self, id);
    if (!self->slots[hole])
        return false;
    self->slots[hole] = 0;
    self->values[hole] = NULL;
    self->count--;
    //  Backward shift: an entry further along the run may move into the
    //  hole unless its home slot lies cyclically in (hole, j].
    for (size_t j = (hole + 1) & mask; self->slots[j]; j = (j + 1) & mask) {
        size_t home = s_hash (self->slots[j]) & mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->slots[hole] = self->slots[j];
            self->values[hole] = self->values[j];
            self->slots[j] = 0;
            self->values[j] = NULL;
            hole = j;
        }
    }
    return true;
}

bool
arb_idmap_contains (arb_idmap_t *self, uint64_t id)
{
    assert (self);
    if (id == 0)
        return self->has_zero;
    return self->slots[s_find (self, id)] != 0;
}

void *
arb_idmap_lookup (arb_idmap_t *self, uint64_t id)
{
    assert (self);
    if (id == 0)
        return self->zero_value;
    size_t i = s_find (self, id);
    return self->slots[i] ? self->values[i] : NULL;
}

size_t
arb_idmap_size (arb_idmap_t *self)
{
    assert (self);
    return self->count + (self->has_zero ? 1 : 0);
}

void
arb_idmap_clear (arb_idmap_t *self)
{
    assert (self);
    memset (self->slots, 0, self->capacity * sizeof (uint64_t));
    memset (self->values, 0, self->capacity * sizeof (void *));
    self->count = 0;
    self->has_zero = false;
    self->zero_value = NULL;
}

bool
arb_idmap_next (arb_idmap_t *self, size_t *cursor, uint64_t *id, void **value)
{
    assert (self && cursor && id);
    //  cursor 0 is the zero id; cursor k > 0 is slot k - 1
    if (*cursor == 0) {
        *cursor = 1;
        if (self->has_zero) {
            *id = 0;
            if (value)
                *value = self->zero_value;
            return true;
        }
    }
    while (*cursor <= self->capacity) {
        size_t slot = *cursor - 1;
        (*cursor)++;
        if (self->slots[slot]) {
            *id = self->slots[slot];
            if (value)
                *value = self->values[slot];
            return true;
        }
    }
    return false;
}
