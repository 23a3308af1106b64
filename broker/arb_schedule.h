/*  arb_schedule.h — one periodic schedule in the broker's memory: its
    cron expression in its zone (arb_cron), the template of its tasks, and
    where it stands: paused or not; its cursor, the time up to which every
    slot is done with (fired, or skipped); the last slot fired and the task
    it made. Its next slot is the first after the cursor.

    It decides which slots fire when several are due at once (the catch-up
    policy); the broker makes their tasks, journals them with the cursor
    in one transaction, and tells the schedule (arb_schedule_fired, _skip).

    Catch-up. Slots that came while the broker was not running (found at
    its start) are missed: none skips them all; one fires the latest of
    them once; all fires each once in order, the first
    ARB_SCHEDULE_CATCH_UP_MAX at most, and skips the rest. While the broker
    runs, each slot fires when it comes; if several came at once (the loop
    was held up, or the wall clock jumped ahead), the policy applies to them
    too, except that none then fires the latest, as one does. A wall clock
    set back fires nothing twice: the next slot stays the first after the
    cursor.

    Owned by the broker's loop thread; not thread-safe.
*/

#ifndef ARB_SCHEDULE_H
#define ARB_SCHEDULE_H

#include "arb_proto.h"
#include "arb_vec.h"

typedef struct _arb_schedule_t arb_schedule_t;

typedef enum {
    ARB_CATCH_UP_NONE = 0,
    ARB_CATCH_UP_ONE = 1,  //  the default
    ARB_CATCH_UP_ALL = 2,
} arb_catch_up_t;

//  Missed slots fired at once by "all", per schedule, at most.
#define ARB_SCHEDULE_CATCH_UP_MAX 1000

//  Bytes of a schedule task's client key "schedule:NAME:SLOT_MS", with its NUL.
#define ARB_SCHEDULE_KEY_SIZE (ARB_NAME_MAX + 1)

//  A schedule from its description (SCHEDULE add, or the journal) and its
//  cursor; copies what it keeps (info's reply-only fields are not read).
//  Returns NULL and says why in why, naming the field, if the name, the
//  cron expression, the zone, the catch-up policy or the task's name is
//  refused ("cron: field 2 (hour): 25 is out of range 0-23"). The
//  template's other values are not checked here.
arb_schedule_t *
arb_schedule_new (const arb_schedule_info_t *info, uint64_t cursor_ms, char *why, size_t why_size);

//  Destroys a schedule. Accepts NULL; nulls the caller's pointer.
void arb_schedule_destroy (arb_schedule_t **self_p);

//  The name (borrowed).
const char *arb_schedule_name (arb_schedule_t *self);

bool arb_schedule_is_paused (arb_schedule_t *self);

//  Every slot at or before the cursor is done with (Unix ms).
uint64_t arb_schedule_cursor (arb_schedule_t *self);

//  Its next slot (Unix ms), or 0 when it is paused or has none.
uint64_t arb_schedule_next (arb_schedule_t *self);

//  Pauses it, or resumes it: then its slots until now_ms are skipped.
void arb_schedule_set_paused (arb_schedule_t *self, bool paused, uint64_t now_ms);

//  The slots to fire at now_ms, by the policy (above), appended in order
//  to slots; at_start: they came while the broker was not running. Returns
//  the cursor the schedule has once they fired and the rest were skipped
//  (the last slot to fire, or now_ms when slots are skipped after it; the
//  cursor as it is when nothing is due).
uint64_t arb_schedule_due (arb_schedule_t *self, uint64_t now_ms, bool at_start, arb_vec_t *slots);

//  Records that slot slot_ms fired and made task id (the cursor moves to it).
void arb_schedule_fired (arb_schedule_t *self, uint64_t slot_ms, uint64_t id);

//  Skips every slot up to cursor_ms (a cursor never moves back).
void arb_schedule_skip (arb_schedule_t *self, uint64_t cursor_ms);

//  Fills a SCHEDULE_REPLY record: strings borrowed from the schedule; the
//  payload frame a copy, which the record (its message) owns.
void arb_schedule_info (arb_schedule_t *self, arb_schedule_info_t *info);

//  The task of slot slot_ms: fills spec from the template (strings
//  borrowed from the schedule; the payload frame a copy the caller owns),
//  with the client key "schedule:NAME:SLOT_MS" written into key (of
//  ARB_SCHEDULE_KEY_SIZE bytes).
void arb_schedule_task (arb_schedule_t *self, uint64_t slot_ms, arb_task_spec_t *spec, char *key);

#endif
