/*  arb_vec.c — see arb_vec.h. */

#include "arb_vec.h"

#include <assert.h>
#include <stdlib.h>

void
arb_vec_push (arb_vec_t *self, uint64_t value)
{
    if (self->n == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 16;
        self->v = (uint64_t *) realloc (self->v, self->capacity * sizeof (uint64_t));
        assert (self->v);
    }
    self->v[self->n++] = value;
}

bool
arb_vec_shift (arb_vec_t *self, uint64_t *value)
{
    if (self->head == self->n) {
        self->head = self->n = 0;  //  empty again: reuse from the start
        return false;
    }
    *value = self->v[self->head++];
    return true;
}

size_t
arb_vec_size (const arb_vec_t *self)
{
    return self->n - self->head;
}

void
arb_vec_free (arb_vec_t *self)
{
    free (self->v);
    *self = (arb_vec_t){0};
}
