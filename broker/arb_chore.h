/*  arb_chore.h — a function run on a thread of its own, each time the
    owner asks: the journal's work off the loop (arb_backfill.h, the WAL's
    copy; arb_journal_saver.c, a task log checkpoint; arb_tasklog.c, the
    task log file's growth ahead of its records).

    The owner's thread asks (arb_chore_ask) and may wait for the runs it
    asked for to end (arb_chore_wait), or ask whether they have
    (arb_chore_idle). Asks made while a run goes on make one more run
    after it; asks made while idle make one run. The chore's thread calls
    only fn. Whatever fn reads or writes of the owner's must be left alone
    by the owner until the chore is idle: ask, then wait, is the hand-off.
*/

#ifndef ARB_CHORE_H
#define ARB_CHORE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _arb_chore_t arb_chore_t;

typedef void (arb_chore_fn) (void *arg);

//  Starts the thread, which runs fn (arg) when asked. NULL if it cannot
//  (logged, naming what).
arb_chore_t *arb_chore_new (const char *what, arb_chore_fn *fn, void *arg);

//  Waits for a run in progress (not one asked and not started), and ends
//  the thread.
void arb_chore_destroy (arb_chore_t **self_p);

//  Asks for a run.
void arb_chore_ask (arb_chore_t *self);

//  Whether no run is asked or in progress.
bool arb_chore_idle (arb_chore_t *self);

//  Waits until no run is asked or in progress.
void arb_chore_wait (arb_chore_t *self);

//  The runs finished.
uint64_t arb_chore_runs (arb_chore_t *self);

#endif
