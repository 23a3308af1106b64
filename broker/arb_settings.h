/*  arb_settings.h — the broker's stored settings: queue settings and
    task-name limits, and the metadata store's keys.

    Queue settings and name limits live in the scheduler (they steer
    dispatch) and are stored as text in the journal's meta table, so a
    restart finds them again:

        queue.<name>   "paused=0 max_running=3 rate=50 retention_ms=0 on_failure=0
                        declared=1 max_ready=1000 max_ready_bytes=0 reject=0"
        limit.<name>   "max_running=3 rate=50"

    (a record without `declared=` is from before queues were declared: 0;
    one without `max_ready=` from before queues were bounded: 0, none; one
    without `reject=`: drop-head).

    Every other key of the table belongs to the broker's clients (META:
    the gateway's Kestrel fan-out names, AMQP exchanges and bindings);
    `broker.`, `queue.` and `limit.` keys are the broker's own, which META
    may read but not change. A client key that begins `queue@<name>@` is
    the metadata of queue <name> (a queue name holds no '@'): it goes when
    the queue is deleted. This module writes both kinds; reading a key
    back (META get, list) is a journal query the verbs make themselves.

    Part of the broker's second layer, beside the task lifecycle: the loop
    loads the settings at start, the admin verbs change them. It keeps no
    state of its own. Runs in the loop thread.
*/

#ifndef ARB_SETTINGS_H
#define ARB_SETTINGS_H

#include "arb_journal.h"
#include "arb_sched.h"

//  What a submit over a queue's bound does (arb_queue_change_t.overflow).
#define ARB_OVERFLOW_DROP_HEAD 1
#define ARB_OVERFLOW_REJECT    2

//  A change to a queue's settings (QUEUE pause, resume or set). A clear
//  flag resets its setting to the default after the values are applied.
typedef struct {
    int paused;                //  1 pause, 0 resume, -1 unchanged
    bool declare;              //  declare it (it stays declared until deleted)
    uint32_t max_running;      //  tasks running at once; 0 unchanged
    uint32_t rate_per_sec;     //  dispatches per second; 0 unchanged
    uint64_t retention_ms;     //  0 unchanged
    int on_failure;            //  ARB_ON_FAILURE_*; -1 unchanged
    uint64_t max_ready;        //  0 unchanged
    uint64_t max_ready_bytes;  //  0 unchanged
    int overflow;              //  ARB_OVERFLOW_*; 0 unchanged
    bool clear_max_running;
    bool clear_rate_per_sec;
    bool clear_retention_ms;
    bool clear_on_failure;
    bool clear_max_ready;
    bool clear_max_ready_bytes;
    bool clear_overflow;
} arb_queue_change_t;

//  Loads every stored queue setting and name limit into the scheduler (at
//  start, before the tasks). 0, or -1 if the journal failed.
int arb_settings_load (arb_sched_t *sched, arb_journal_t *journal);

//  Applies a change to the settings of a queue (created if needed) and
//  stores them. 0, or -1 if the journal failed.
int arb_settings_change_queue (arb_sched_t *sched,
                               arb_journal_t *journal,
                               const char *queue,
                               const arb_queue_change_t *change);

//  Sets the limit of a task name: max_running and rate_per_sec if not 0,
//  then clears what the flags say; stores it, or deletes it once unset.
//  0, or -1 if the journal failed.
int arb_settings_change_limit (arb_sched_t *sched,
                               arb_journal_t *journal,
                               const char *name,
                               uint32_t max_running,
                               uint32_t rate_per_sec,
                               bool clear_max_running,
                               bool clear_rate_per_sec);

//  Deletes the stored settings of a queue and its metadata (the keys
//  `queue@<name>@...`), in the turn's transaction. The scheduler's copy
//  is the lifecycle's to clear (arb_life_delete_queue). 0, or -1 if the
//  journal failed.
int arb_settings_forget_queue (arb_journal_t *journal, const char *queue);

//  Whether a key is one of the broker's own (`broker.`, `queue.`,
//  `limit.`), which clients may read but not change.
bool arb_settings_key_is_reserved (const char *key);

//  Stores a client's key (data may be NULL when size is 0), or deletes it.
//  0, or -1 if the journal failed.
int arb_settings_set_key (arb_journal_t *journal, const char *key, const void *data, size_t size);
int arb_settings_del_key (arb_journal_t *journal, const char *key);

//  A compare-and-set of a client's key: if the key does not exist and
//  absent is set, or it holds exactly expect (expect_size bytes) and
//  absent is not set, it is set to value (or deleted, with remove) and
//  *matched is true; else nothing changes. Either way *now is the key's
//  value after the request (caller owns it; NULL if there is none). The
//  loop is single-threaded, so nothing comes between the compare and the
//  set. 0, or -1 if the journal failed.
int arb_settings_cas_key (arb_journal_t *journal,
                          const char *key,
                          bool absent,
                          const void *expect,
                          size_t expect_size,
                          bool remove,
                          const void *value,
                          size_t value_size,
                          bool *matched,
                          zchunk_t **now);

#endif
