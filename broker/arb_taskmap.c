/*  arb_taskmap.c — the broker's unfinished tasks by id; see arb_taskmap.h. */

#include "arb_taskmap.h"
#include "arb_bigmem.h"
#include "arb_probe.h"

//  The slot holding id, or the empty slot where it would go.
static size_t
s_slot (const arb_taskmap_t *self, uint64_t id)
{
    size_t mask = self->capacity - 1;
    size_t i = arb_probe_hash (id) & mask;
    while (self->slots[i] && self->slots[i]->id != id)
        i = (i + 1) & mask;
    return i;
}

static void
s_grow (arb_taskmap_t *self)
{
    arb_task_t **old = self->slots;
    size_t old_capacity = self->capacity;
    self->capacity = old_capacity ? old_capacity * 2 : 64;
    self->slots = (arb_task_t **) arb_bigmem_calloc (self->capacity, sizeof (arb_task_t *));
    assert (self->slots);  //  out of memory
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i])
            self->slots[s_slot (self, old[i]->id)] = old[i];
    arb_bigmem_free (old, old_capacity, sizeof (arb_task_t *));
}

void
arb_taskmap_insert (arb_taskmap_t *self, arb_task_t *task)
{
    if ((self->count + 1) * 4 > self->capacity * 3)
        s_grow (self);
    size_t i = s_slot (self, task->id);
    assert (!self->slots[i]);
    self->slots[i] = task;
    self->count++;
}

arb_task_t *
arb_taskmap_find (const arb_taskmap_t *self, uint64_t id)
{
    if (self->count == 0)
        return NULL;
    return self->slots[s_slot (self, id)];
}

void
arb_taskmap_remove (arb_taskmap_t *self, uint64_t id)
{
    if (self->count == 0)
        return;
    size_t mask = self->capacity - 1;
    size_t hole = s_slot (self, id);
    if (!self->slots[hole])
        return;
    self->count--;
    //  backward shift (arb_probe.h)
    for (size_t j = (hole + 1) & mask; self->slots[j]; j = (j + 1) & mask) {
        size_t home = arb_probe_hash (self->slots[j]->id) & mask;
        if (!arb_probe_stays (hole, home, j)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = NULL;
}

arb_task_t *
arb_taskmap_first (arb_taskmap_t *self)
{
    self->cursor = 0;
    return arb_taskmap_next (self);
}

arb_task_t *
arb_taskmap_next (arb_taskmap_t *self)
{
    while (self->cursor < self->capacity) {
        arb_task_t *task = self->slots[self->cursor++];
        if (task)
            return task;
    }
    return NULL;
}

void
arb_taskmap_free (arb_taskmap_t *self)
{
    arb_bigmem_free (self->slots, self->capacity, sizeof (arb_task_t *));
    *self = (arb_taskmap_t){0};
}
