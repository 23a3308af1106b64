/*  arb_task.c — the little that a task record does itself. */

#include "arb_task.h"

const arb_task_ext_t arb_task_ext_zero = {0};

arb_task_ext_t *
arb_task_ext_rw (arb_task_t *task)
{
    if (!task->ext) {
        task->ext = (arb_task_ext_t *) calloc (1, sizeof (arb_task_ext_t));
        assert (task->ext);
    }
    return task->ext;
}

uint64_t
arb_task_ready_since (const arb_task_t *task, uint64_t now_ms)
{
    const arb_task_ext_t *ext = arb_task_ext (task);
    uint64_t since = task->created_ms;
    if (ext->not_before_ms > since)
        since = ext->not_before_ms;
    if (ext->started_ms > since)
        since = ext->started_ms;
    return since < now_ms ? since : now_ms;
}

bool
arb_task_ext_is_options (const arb_task_ext_t *ext)
{
    arb_task_ext_t rest = *ext;
    rest.backoff_ms = rest.backoff_cap_ms = rest.timeout_ms = rest.soft_timeout_ms = 0;
    rest.retention_ms = 0;
    //  (the record has no padding: every byte is a field's)
    return memcmp (&rest, &arb_task_ext_zero, sizeof (rest)) == 0;
}

void
arb_task_set_payload_size (arb_task_t *task, uint64_t size)
{
    task->payload_size = size < UINT32_MAX ? (uint32_t) size : UINT32_MAX;
}

void
arb_task_drop_emits (arb_task_t *task)
{
    arb_task_ext_t *ext = task->ext;
    if (!ext || !ext->emits)
        return;
    arb_emit_t *emit;
    while ((emit = (arb_emit_t *) zlist_pop (ext->emits))) {
        free (emit->queue);
        free (emit->name);
        zframe_destroy (&emit->payload);
        free (emit);
    }
    zlist_destroy (&ext->emits);
    ext->emit_bytes = 0;
    ext->emit_refused = false;
}

void
arb_task_free_ext (arb_task_t *task)
{
    if (!task->ext)
        return;
    arb_task_drop_emits (task);
    free (task->ext);
    task->ext = NULL;
}
