/*  arb_vec.c — see arb_vec.h. */

#include "arb_vec.h"

#include <assert.h>
#include <stdlib.h>

void *
arb_array_grow (void *array, size_t count, size_t *capacity, size_t size)
{
    if (count < *capacity)
        return array;
    *capacity = *capacity ? *capacity * 2 : 16;
    array = realloc (array, *capacity * size);
    assert (array);
    return array;
}

void
arb_vec_push (arb_vec_t *self, uint64_t value)
{
    self->v = (uint64_t *) arb_array_grow (self->v, self->n, &self->capacity, sizeof (uint64_t));
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

typedef struct {
    uint64_t id;
    size_t at;
} s_id_at_t;

static int
s_compare_id_at (const void *a, const void *b)
{
    const s_id_at_t *x = (const s_id_at_t *) a, *y = (const s_id_at_t *) b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

size_t *
arb_ids_first (const uint64_t *ids, size_t n)
{
    size_t *first = (size_t *) malloc ((n ? n : 1) * sizeof (size_t));
    s_id_at_t *sorted = (s_id_at_t *) malloc ((n ? n : 1) * sizeof (s_id_at_t));
    assert (first && sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = (s_id_at_t){ids[i], i};
    qsort (sorted, n, sizeof (s_id_at_t), s_compare_id_at);
    for (size_t i = 0; i < n; i++)
        first[sorted[i].at] =
            i && sorted[i].id == sorted[i - 1].id ? first[sorted[i - 1].at] : sorted[i].at;
    free (sorted);
    return first;
}
