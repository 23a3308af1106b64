/*  arb_taskmap.h — the broker's unfinished tasks by id.

    An open-addressing hash table of borrowed task pointers (the task's own
    id is the key), with linear probing and deletion by backward shift, so
    that it needs no tombstones and no allocation per task: 8 bytes a slot,
    at most three quarters full, about 11 to 21 bytes per task against
    czmq's zhashx, which allocates an item of 48 bytes per entry on top of
    its slots (issue 11: a million queued tasks). Slots of 512 KiB or more
    are a huge-page mapping (arb_bigmem.h: up to 2 MiB for a table of 512
    KiB to 2 MiB where huge pages are on). It never shrinks. Owned by the
    scheduler, used in the broker's one thread.
*/

#ifndef ARB_TASKMAP_H
#define ARB_TASKMAP_H

#include "arb_task.h"

typedef struct {
    arb_task_t **slots;  //  owned array of borrowed tasks; NULL: empty slot
    size_t capacity;     //  slots, a power of two (0 before the first insert)
    size_t count;        //  tasks held
    size_t cursor;       //  the next slot arb_taskmap_next looks at
} arb_taskmap_t;

//  Adds a task under its id, which no task of the map may have. A plain
//  struct: zero-initialise it, and arb_taskmap_free it when done.
void arb_taskmap_insert (arb_taskmap_t *self, arb_task_t *task);

//  The task of that id, or NULL.
arb_task_t *arb_taskmap_find (const arb_taskmap_t *self, uint64_t id);

//  Removes the task of that id, if any.
void arb_taskmap_remove (arb_taskmap_t *self, uint64_t id);

//  Walks the tasks, in no order: the first, then each next one; NULL at
//  the end. The map must not change during a walk.
arb_task_t *arb_taskmap_first (arb_taskmap_t *self);
arb_task_t *arb_taskmap_next (arb_taskmap_t *self);

//  Frees the slots (not the tasks).
void arb_taskmap_free (arb_taskmap_t *self);

#endif
