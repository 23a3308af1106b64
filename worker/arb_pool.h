/*  arb_pool.h — the threads of a light worker: a fixed pool that runs
    queued jobs and leaves notes for the one thread that owns them (the
    worker's run thread).

    The threads and the run thread share exactly two lists under one mutex:
    the queue of jobs waiting for a thread, and the notes the threads leave
    for the run thread ("done, rc", "here are staged items", "too late, not
    started"). This departs from "threads talk over ZeroMQ pipes" on
    purpose: with a PAIR per slot every task cost two thread wakeups (run ->
    slot, slot -> run), nearly all of the runtime's CPU per task in the
    scheduler (a wakeup costs far more than a trivial task, above all in a
    VM). Here a thread that finishes a job takes the next queued one before
    it sleeps; a thread that takes a job while more wait wakes one more
    thread, so a long job never holds back a queued one, but only one woken
    thread is ever on its way (the first to run may well take the whole
    queue); and the run thread is woken (the notify descriptor, an eventfd)
    only when the notes go from none to some, then takes them all at once.

    A job is the caller's pointer; the pool never looks inside it. Each
    push gives a start-by time: a thread that takes a job later does not
    run it but notes it as late. A job waits that long only if the whole
    process was stopped (SIGSTOP) between the push and a thread, and by
    then the broker may have given its task to another worker.
*/

#ifndef ARB_POOL_H
#define ARB_POOL_H

#include "arb_proto.h"

typedef struct _arb_pool_t arb_pool_t;

//  Runs a job on a pool thread; returns its outcome (the note's rc).
typedef int (arb_pool_fn) (void *job, void *arg);

//  What a thread tells the run thread about a job.
typedef struct {
    void *job;
    arb_msg_t *emits;  //  owned by the note: staged items to send; NULL: the job ended
    int rc;            //  the job's outcome, when it ended
    bool late;         //  taken after its start-by time: not run
} arb_pool_note_t;

//  A pool of count threads, count at least 1 (at most count jobs queued
//  or running at once), running jobs with run(job, arg). SIGINT, SIGTERM
//  and SIGHUP are blocked in the threads, so that signals reach the run
//  thread.
arb_pool_t *arb_pool_new (int count, arb_pool_fn *run, void *arg);

//  Whether every thread started and the notify descriptor exists.
bool arb_pool_is_ready (arb_pool_t *self);

//  Stops the threads once they are idle and frees the pool; jobs still
//  queued are not started. With abandon, threads still running a job are
//  left to it, and so is the pool.
void arb_pool_destroy (arb_pool_t **self_p, bool abandon);

//  Queues count jobs with one wakeup; a thread that takes one after
//  start_by (ms, zclock_mono) notes it as late instead of running it.
void arb_pool_push (arb_pool_t *self, void **jobs, size_t count, int64_t start_by);

//  From a pool thread, while it runs job: notes the staged items (takes
//  *emits_p).
void arb_pool_note_emits (arb_pool_t *self, void *job, arb_msg_t **emits_p);

//  Readable when notes wait.
int arb_pool_notify_fd (arb_pool_t *self);

//  Takes every note left so far: swaps the pool's list with *notes (whose
//  old contents must have been handled). Returns how many there are.
size_t arb_pool_take_notes (arb_pool_t *self, arb_pool_note_t **notes, size_t *cap);

#endif
