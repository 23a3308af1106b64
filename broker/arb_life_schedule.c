/*  arb_life_schedule.c — periodic schedules, the lifecycle's timed
    entrance: at each slot a schedule's task enters as a submitted one
    does. See arb_life.h, and arb_schedule.h for one schedule.

    A slot fires in one turn transaction: the task is stored through the
    same path as SUBMIT (arb_life_submit, with the client key
    "schedule:NAME:SLOT_MS") and the slot recorded as fired in the
    schedule's row. So after a crash either both are in the journal or
    neither is (the slot is then missed, and the catch-up policy decides),
    and the key makes a second task for the slot impossible: submitting it
    again finds the first.

    The earliest next slot of all schedules is kept (next_slot_ms), so the
    turn looks at schedules only when one is due, and the loop sleeps
    until then (arb_life_next_timer).
*/

#include "arb_life_priv.h"

//  Recomputes the earliest next slot after a schedule changed.
static void
s_update_next (arb_life_t *self)
{
    self->next_slot_ms = 0;
    for (arb_schedule_t *schedule = (arb_schedule_t *) zhashx_first (self->schedules); schedule;
         schedule = (arb_schedule_t *) zhashx_next (self->schedules)) {
        uint64_t next = arb_schedule_next (schedule);
        if (next && (!self->next_slot_ms || next < self->next_slot_ms))
            self->next_slot_ms = next;
    }
}

//  Submits the task of one slot and records the slot as fired. 0, or -1
//  if the journal failed.
static int
s_fire (arb_life_t *self, arb_schedule_t *schedule, uint64_t slot_ms)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 0);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *spec =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (arb_task_spec_t), 1);
    char key[ARB_SCHEDULE_KEY_SIZE];
    arb_schedule_task (schedule, slot_ms, spec, key);  //  the message owns the payload
    arb_dag_t *dag = arb_dag_new (body->tasks.v, 1);
    arb_msg_t *reply = arb_msg_new (ARB_MSG_SUBMITTED, 0);
    int rc = arb_life_submit (self, msg, dag, reply);
    arb_submitted_task_t *made = &arb_msg_submitted (reply)->tasks.v[0];
    if (rc == 0)
        rc = arb_journal_schedule_fired (self->journal, arb_schedule_name (schedule), slot_ms,
                                         made->id);
    if (rc == 0) {
        arb_schedule_fired (schedule, slot_ms, made->id);
        zsys_debug ("schedule: fired name=%s slot=%" PRIu64 " id=%" PRIu64 "%s",
                    arb_schedule_name (schedule), slot_ms, made->id,
                    made->existing ? " existing=1" : "");
    }
    arb_dag_destroy (&dag);
    arb_msg_destroy (&reply);
    arb_msg_destroy (&msg);
    return rc;
}

//  Fires the slots of a schedule that are due now (at_start: they came
//  while the broker was down) and skips what its policy skips. 0 or -1.
static int
s_fire_due (arb_life_t *self, arb_schedule_t *schedule, bool at_start)
{
    arb_vec_t slots = {0};
    uint64_t cursor = arb_schedule_due (schedule, self->clock->now_ms, at_start, &slots);
    uint64_t slot;
    int rc = 0;
    while (rc == 0 && arb_vec_shift (&slots, &slot))
        rc = s_fire (self, schedule, slot);
    if (rc == 0 && cursor > arb_schedule_cursor (schedule)) {
        rc = arb_journal_begin (self->journal)
             || arb_journal_schedule_state (self->journal, arb_schedule_name (schedule),
                                            arb_schedule_is_paused (schedule), cursor);
        arb_schedule_skip (schedule, cursor);
    }
    arb_vec_free (&slots);
    return rc ? -1 : 0;
}

static int
s_load_one (void *arg, arb_schedule_info_t *info, uint64_t cursor_ms)
{
    arb_life_t *self = (arb_life_t *) arg;
    char why[ARB_TEXT_MAX];
    arb_schedule_t *schedule = arb_schedule_new (info, cursor_ms, why, sizeof (why));
    if (schedule)
        zhashx_insert (self->schedules, info->name, schedule);
    else
        //  e.g. its zone is gone from the system's zone files: it stays in
        //  the journal, and fires again once the zone is back
        zsys_error ("schedule: cannot load name=%s reason=\"%s\"", info->name, why);
    return 0;
}

int
arb_life_load_schedules (arb_life_t *self, bool catch_up, size_t *count)
{
    if (arb_journal_schedules (self->journal, s_load_one, self))
        return -1;
    for (arb_schedule_t *schedule = (arb_schedule_t *) zhashx_first (self->schedules);
         schedule && catch_up && !self->halted;
         schedule = (arb_schedule_t *) zhashx_next (self->schedules))
        if (s_fire_due (self, schedule, true))
            arb_life_halt (self, "schedule catch-up");
    s_update_next (self);
    *count = zhashx_size (self->schedules);
    return self->halted ? -1 : 0;
}

void
arb_life_fire_schedules (arb_life_t *self)
{
    if (!self->next_slot_ms || self->next_slot_ms > self->clock->now_ms)
        return;
    for (arb_schedule_t *schedule = (arb_schedule_t *) zhashx_first (self->schedules);
         schedule && !self->halted; schedule = (arb_schedule_t *) zhashx_next (self->schedules))
        if (s_fire_due (self, schedule, false))
            arb_life_halt (self, "schedule");
    s_update_next (self);
}

uint64_t
arb_life_next_timer (arb_life_t *self)
{
    uint64_t next = arb_sched_next_timer (self->sched);
    if (self->next_slot_ms) {
        //  the slot is wall time; the timer monotonic
        const arb_clock_t *clock = self->clock;
        uint64_t slot =
            clock->mono_ms
            + (self->next_slot_ms > clock->now_ms ? self->next_slot_ms - clock->now_ms : 0);
        next = slot < next ? slot : next;
    }
    return next;
}

arb_schedule_t *
arb_life_schedule (arb_life_t *self, const char *name)
{
    return (arb_schedule_t *) zhashx_lookup (self->schedules, name);
}

zhashx_t *
arb_life_schedules (arb_life_t *self)
{
    return self->schedules;
}

int
arb_life_add_schedule (arb_life_t *self, arb_schedule_t **schedule_p)
{
    arb_schedule_t *schedule = *schedule_p;
    *schedule_p = NULL;
    arb_schedule_info_t info;
    arb_schedule_info (schedule, &info);
    int rc = arb_journal_begin (self->journal)
             || arb_journal_schedule_add (self->journal, &info, arb_schedule_cursor (schedule));
    zframe_destroy (&info.payload);
    zhashx_insert (self->schedules, arb_schedule_name (schedule), schedule);
    s_update_next (self);
    if (rc)
        arb_life_halt (self, "add schedule");
    return rc ? -1 : 0;
}

int
arb_life_remove_schedule (arb_life_t *self, const char *name)
{
    if (arb_journal_begin (self->journal) || arb_journal_schedule_remove (self->journal, name)) {
        arb_life_halt (self, "remove schedule");
        return -1;
    }
    zhashx_delete (self->schedules, name);
    s_update_next (self);
    return 0;
}

int
arb_life_pause_schedule (arb_life_t *self, arb_schedule_t *schedule, bool paused)
{
    if (arb_schedule_is_paused (schedule) == paused)
        return 0;
    arb_schedule_set_paused (schedule, paused, self->clock->now_ms);
    s_update_next (self);
    if (arb_journal_begin (self->journal)
        || arb_journal_schedule_state (self->journal, arb_schedule_name (schedule), paused,
                                       arb_schedule_cursor (schedule))) {
        arb_life_halt (self, "pause schedule");
        return -1;
    }
    return 0;
}
