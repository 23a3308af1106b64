/*  arb_pool.c — a light worker's threads; see arb_pool.h. */

#include "arb_pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    void *job;
    int64_t start_by;  //  ms, zclock_mono
} s_queued_t;

struct _arb_pool_t {
    pthread_mutex_t mutex;
    pthread_cond_t wake;  //  a job is queued, or the pool stops
    s_queued_t *queue;    //  owned ring of capacity: jobs waiting for a thread
    size_t head;
    size_t queued;
    size_t capacity;
    arb_pool_note_t *notes;  //  owned: notes for the run thread, in order
    size_t note_count;
    size_t note_cap;
    int waiting;  //  threads waiting on wake
    bool woken;   //  a thread was signalled and has not run yet
    bool stopping;
    int notify_fd;       //  owned eventfd: notes went from none to some
    pthread_t *threads;  //  owned array
    int thread_count;    //  started
    arb_pool_fn *run;
    void *arg;
};

//  Leaves a note for the run thread (pool locked).
static void
s_note_locked (arb_pool_t *self, arb_pool_note_t *note)
{
    if (self->note_count == self->note_cap) {
        self->note_cap = self->note_cap ? self->note_cap * 2 : 64;
        self->notes =
            (arb_pool_note_t *) realloc (self->notes, self->note_cap * sizeof (arb_pool_note_t));
        assert (self->notes);
    }
    self->notes[self->note_count++] = *note;
    if (self->note_count == 1) {
        uint64_t one = 1;
        ssize_t rc = write (self->notify_fd, &one, sizeof (one));
        (void) rc;  //  a full counter already wakes the run thread
    }
}

//  Wakes one more thread if jobs wait, threads sleep and none is already on
//  its way (pool locked).
static void
s_wake_locked (arb_pool_t *self)
{
    if (self->queued > 0 && self->waiting > 0 && !self->woken) {
        self->woken = true;
        pthread_cond_signal (&self->wake);
    }
}

static void *
s_thread (void *arg)
{
    arb_pool_t *self = (arb_pool_t *) arg;
    pthread_mutex_lock (&self->mutex);
    while (true) {
        while (self->queued == 0 && !self->stopping) {
            self->waiting++;
            pthread_cond_wait (&self->wake, &self->mutex);
            self->waiting--;
            self->woken = false;
        }
        if (self->stopping)
            break;  //  jobs still queued are not started: their worker is gone
        s_queued_t next = self->queue[self->head];
        self->head = (self->head + 1) % self->capacity;
        self->queued--;
        s_wake_locked (self);  //  for the jobs still queued
        if (zclock_mono () > next.start_by) {
            arb_pool_note_t late = {next.job, NULL, 0, true};
            s_note_locked (self, &late);
            continue;
        }
        pthread_mutex_unlock (&self->mutex);
        arb_pool_note_t note = {next.job, NULL, self->run (next.job, self->arg), false};
        pthread_mutex_lock (&self->mutex);
        s_note_locked (self, &note);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

arb_pool_t *
arb_pool_new (int count, arb_pool_fn *run, void *arg)
{
    assert (count > 0);
    arb_pool_t *self = (arb_pool_t *) zmalloc (sizeof (arb_pool_t));
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    self->capacity = (size_t) count;
    self->queue = (s_queued_t *) zmalloc (self->capacity * sizeof (s_queued_t));
    self->notify_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->run = run;
    self->arg = arg;
    self->threads = (pthread_t *) zmalloc ((size_t) count * sizeof (pthread_t));
    if (self->notify_fd < 0)
        return self;
    //  SIGINT/SIGTERM (and SIGHUP, which arbiter-worker makes a stop too)
    //  blocked in the threads, so that signals reach the run thread and wake
    //  its poll
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    while (self->thread_count < count
           && pthread_create (&self->threads[self->thread_count], NULL, s_thread, self) == 0)
        self->thread_count++;
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    return self;
}

bool
arb_pool_is_ready (arb_pool_t *self)
{
    return self->notify_fd >= 0 && self->thread_count == (int) self->capacity;
}

void
arb_pool_destroy (arb_pool_t **self_p, bool abandon)
{
    arb_pool_t *self = *self_p;
    *self_p = NULL;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stopping = true;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->mutex);
    for (int i = 0; i < self->thread_count; i++) {
        if (abandon)
            pthread_detach (self->threads[i]);
        else
            pthread_join (self->threads[i], NULL);
    }
    if (abandon)
        return;
    for (size_t i = 0; i < self->note_count; i++)
        arb_msg_destroy (&self->notes[i].emits);
    free (self->notes);
    free (self->queue);
    free (self->threads);
    if (self->notify_fd >= 0)
        close (self->notify_fd);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->wake);
    free (self);
}

void
arb_pool_push (arb_pool_t *self, void **jobs, size_t count, int64_t start_by)
{
    if (count == 0)
        return;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < count; i++) {
        assert (self->queued < self->capacity);  //  one job per thread at most
        size_t at = (self->head + self->queued++) % self->capacity;
        self->queue[at] = (s_queued_t){jobs[i], start_by};
    }
    s_wake_locked (self);
    pthread_mutex_unlock (&self->mutex);
}

void
arb_pool_note_emits (arb_pool_t *self, void *job, arb_msg_t **emits_p)
{
    arb_pool_note_t note = {job, *emits_p, 0, false};
    *emits_p = NULL;
    pthread_mutex_lock (&self->mutex);
    s_note_locked (self, &note);
    pthread_mutex_unlock (&self->mutex);
}

int
arb_pool_notify_fd (arb_pool_t *self)
{
    return self->notify_fd;
}

size_t
arb_pool_take_notes (arb_pool_t *self, arb_pool_note_t **notes, size_t *cap)
{
    uint64_t count;
    ssize_t rc = read (self->notify_fd, &count, sizeof (count));
    (void) rc;  //  reset before taking, so a later note writes again
    pthread_mutex_lock (&self->mutex);
    arb_pool_note_t *taken = self->notes;
    size_t taken_count = self->note_count;
    size_t taken_cap = self->note_cap;
    self->notes = *notes;
    self->note_cap = *cap;
    self->note_count = 0;
    pthread_mutex_unlock (&self->mutex);
    *notes = taken;
    *cap = taken_cap;
    return taken_count;
}
