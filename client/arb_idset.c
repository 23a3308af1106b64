/*  arb_idset.c — a set of 64-bit ids: an arb_idmap whose values are all
    NULL, so that there is one hash table to get right.
*/

#include "arb_idset.h"
#include "arb_idmap.h"

#include <assert.h>
#include <stdlib.h>

struct _arb_idset_t {
    arb_idmap_t *map;  //  owned
};

arb_idset_t *
arb_idset_new (void)
{
    arb_idset_t *self = (arb_idset_t *) calloc (1, sizeof (arb_idset_t));
    if (!self)
        abort ();  //  out of memory
    self->map = arb_idmap_new ();
    return self;
}

void
arb_idset_destroy (arb_idset_t **self_p)
{
    assert (self_p);
    arb_idset_t *self = *self_p;
    if (!self)
        return;
    arb_idmap_destroy (&self->map);
    free (self);
    *self_p = NULL;
}

bool
arb_idset_insert (arb_idset_t *self, uint64_t id)
{
    assert (self);
    return arb_idmap_insert (self->map, id, NULL);
}

bool
arb_idset_remove (arb_idset_t *self, uint64_t id)
{
    assert (self);
    return arb_idmap_remove (self->map, id);
}

bool
arb_idset_contains (arb_idset_t *self, uint64_t id)
{
    assert (self);
    return arb_idmap_contains (self->map, id);
}

size_t
arb_idset_size (arb_idset_t *self)
{
    assert (self);
    return arb_idmap_size (self->map);
}

void
arb_idset_clear (arb_idset_t *self)
{
    assert (self);
    arb_idmap_clear (self->map);
}

bool
arb_idset_next (arb_idset_t *self, size_t *cursor, uint64_t *id)
{
    assert (self);
    return arb_idmap_next (self->map, cursor, id, NULL);
}
