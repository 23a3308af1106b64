/*  arb_schedule.c — one periodic schedule; see arb_schedule.h.

    The next slot is cached: it changes only when the cursor or the paused
    flag does, and the broker asks for it every turn. Finding the latest of
    many missed slots costs a binary search (arb_cron_last), never a walk
    over them, so a long downtime of a per-second schedule costs nothing.
*/

#include "arb_schedule.h"
#include "arb_cron.h"

static const char *s_catch_up_names[] = {"none", "one", "all"};

struct _arb_schedule_t {
    char *name;        //  owned
    char *expr;        //  owned: the cron expression as given
    arb_cron_t *cron;  //  owned
    arb_catch_up_t catch_up;
    bool paused;
    uint64_t created_ms;       //  Unix ms
    uint64_t cursor_ms;        //  Unix ms: every slot at or before it is done with
    uint64_t next_ms;          //  Unix ms: the first slot after the cursor; 0 paused or none
    uint64_t last_slot_ms;     //  Unix ms: the last slot fired; 0 none
    uint64_t last_id;          //  the task it made
    arb_task_spec_t template;  //  the task of a slot but its key and payload; queue, name owned
    zframe_t *payload;         //  owned
};

static void
s_update_next (arb_schedule_t *self)
{
    if (self->paused || arb_cron_next (self->cron, self->cursor_ms, &self->next_ms))
        self->next_ms = 0;
}

static bool
s_name_ok (const char *name, size_t max)
{
    return name && *name && strlen (name) <= max;
}

//  Checks what arb_schedule_new refuses besides the expression and zone.
static int
s_check (const arb_schedule_info_t *info, arb_catch_up_t *catch_up, char *why, size_t why_size)
{
    *catch_up = ARB_CATCH_UP_ONE;
    for (int i = 0; info->catch_up && i < 3; i++)
        if (streq (info->catch_up, s_catch_up_names[i]))
            *catch_up = (arb_catch_up_t) i;
    if (!s_name_ok (info->name, ARB_SCHEDULE_NAME_MAX))
        snprintf (why, why_size, "name: 1 to %d bytes", ARB_SCHEDULE_NAME_MAX);
    else if (info->catch_up && !streq (info->catch_up, s_catch_up_names[*catch_up]))
        snprintf (why, why_size, "catch_up: '%.64s' is not none, one or all", info->catch_up);
    else if (!s_name_ok (info->task, ARB_NAME_MAX))
        snprintf (why, why_size, "task: the name of the schedule's tasks is missing");
    else if (info->queue && !*info->queue)
        snprintf (why, why_size, "queue: must not be empty");
    else if (!info->cron)
        snprintf (why, why_size, "cron: the expression is missing");
    else
        return 0;
    return -1;
}

arb_schedule_t *
arb_schedule_new (const arb_schedule_info_t *info, uint64_t cursor_ms, char *why, size_t why_size)
{
    arb_catch_up_t catch_up;
    if (s_check (info, &catch_up, why, why_size))
        return NULL;
    char reason[ARB_TEXT_MAX];
    arb_tz_t *zone = arb_tz_new (info->zone ? info->zone : "UTC", reason, sizeof (reason));
    if (!zone) {
        snprintf (why, why_size, "zone: %s", reason);
        return NULL;
    }
    arb_cron_t *cron = arb_cron_new_in (info->cron, &zone, reason, sizeof (reason));
    if (!cron) {
        snprintf (why, why_size, "cron: %s", reason);
        return NULL;
    }
    arb_schedule_t *self = (arb_schedule_t *) zmalloc (sizeof (arb_schedule_t));
    self->name = strdup (info->name);
    self->expr = strdup (info->cron);
    self->cron = cron;
    self->catch_up = catch_up;
    self->paused = info->paused;
    self->created_ms = info->created_ms;
    self->cursor_ms = cursor_ms;
    self->last_slot_ms = info->last_slot_ms;
    self->last_id = info->last_id;
    arb_schedule_info_to_spec (info, &self->template);
    self->template.queue = strdup (info->queue ? info->queue : "default");
    self->template.name = strdup (info->task);
    self->payload = info->payload ? zframe_dup (info->payload) : zframe_new_empty ();
    s_update_next (self);
    return self;
}

void
arb_schedule_destroy (arb_schedule_t **self_p)
{
    assert (self_p);
    arb_schedule_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->expr);
    arb_cron_destroy (&self->cron);
    free ((char *) self->template.queue);
    free ((char *) self->template.name);
    zframe_destroy (&self->payload);
    free (self);
    *self_p = NULL;
}

const char *
arb_schedule_name (arb_schedule_t *self)
{
    return self->name;
}

bool
arb_schedule_is_paused (arb_schedule_t *self)
{
    return self->paused;
}

uint64_t
arb_schedule_cursor (arb_schedule_t *self)
{
    return self->cursor_ms;
}

uint64_t
arb_schedule_next (arb_schedule_t *self)
{
    return self->next_ms;
}

void
arb_schedule_set_paused (arb_schedule_t *self, bool paused, uint64_t now_ms)
{
    if (self->paused && !paused && now_ms > self->cursor_ms)
        self->cursor_ms = now_ms;
    self->paused = paused;
    s_update_next (self);
}

uint64_t
arb_schedule_due (arb_schedule_t *self, uint64_t now_ms, bool at_start, arb_vec_t *slots)
{
    if (!self->next_ms || self->next_ms > now_ms)
        return self->cursor_ms;
    uint64_t slot = self->next_ms, after;
    if (self->catch_up == ARB_CATCH_UP_ALL) {
        for (size_t count = 0; count < ARB_SCHEDULE_CATCH_UP_MAX; count++) {
            arb_vec_push (slots, slot);
            if (arb_cron_next (self->cron, slot, &after) || after > now_ms)
                return slot;
            slot = after;
        }
        zsys_warning ("schedule: missed slots over the catch-up bound name=%s fired=%d "
                      "skipped_until=%" PRIu64,
                      self->name, ARB_SCHEDULE_CATCH_UP_MAX, now_ms);
        return now_ms;
    }
    //  Several due: the latest alone fires (none at start: not even it).
    uint64_t last = slot;
    arb_cron_last (self->cron, self->cursor_ms, now_ms, &last);
    if (self->catch_up == ARB_CATCH_UP_NONE && at_start) {
        zsys_notice ("schedule: missed slots skipped name=%s catch_up=none until=%" PRIu64,
                     self->name, now_ms);
        return now_ms;
    }
    if (last != slot)
        zsys_notice ("schedule: missed slots skipped name=%s catch_up=%s fired=%" PRIu64,
                     self->name, s_catch_up_names[self->catch_up], last);
    arb_vec_push (slots, last);
    return last;
}

void
arb_schedule_fired (arb_schedule_t *self, uint64_t slot_ms, uint64_t id)
{
    self->last_slot_ms = slot_ms;
    self->last_id = id;
    arb_schedule_skip (self, slot_ms);
}

void
arb_schedule_skip (arb_schedule_t *self, uint64_t cursor_ms)
{
    if (cursor_ms > self->cursor_ms)
        self->cursor_ms = cursor_ms;
    s_update_next (self);
}

void
arb_schedule_info (arb_schedule_t *self, arb_schedule_info_t *info)
{
    *info = (arb_schedule_info_t){
        .name = self->name,
        .cron = self->expr,
        .zone = arb_tz_name (arb_cron_zone (self->cron)),
        .catch_up = s_catch_up_names[self->catch_up],
        .paused = self->paused,
        .created_ms = self->created_ms,
        .next_ms = self->next_ms,
        .last_slot_ms = self->last_slot_ms,
        .last_id = self->last_id,
        .payload = zframe_dup (self->payload),
    };
    if (self->next_ms)
        info->next_offset_s =
            arb_tz_offset (arb_cron_zone (self->cron), (int64_t) (self->next_ms / 1000));
    arb_schedule_info_from_spec (info, &self->template);
}

void
arb_schedule_task (arb_schedule_t *self, uint64_t slot_ms, arb_task_spec_t *spec, char *key)
{
    snprintf (key, ARB_SCHEDULE_KEY_SIZE, "schedule:%s:%" PRIu64, self->name, slot_ms);
    *spec = self->template;
    spec->key = key;
    spec->payload = zframe_dup (self->payload);
}
