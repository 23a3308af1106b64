/*  arb_task.c — the little that a task record does itself. */

#include "arb_task.h"

void
arb_task_drop_emits (arb_task_t *task)
{
    if (!task->emits)
        return;
    arb_emit_t *emit;
    while ((emit = (arb_emit_t *) zlist_pop (task->emits))) {
        free (emit->queue);
        free (emit->name);
        zframe_destroy (&emit->payload);
        free (emit);
    }
    zlist_destroy (&task->emits);
    task->emit_bytes = 0;
    task->emit_refused = false;
}
