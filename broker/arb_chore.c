/*  arb_chore.c — a function run on a thread when asked; see arb_chore.h.

    The mutex guards the flags and the count; fn runs outside it.
*/

#include "arb_chore.h"
#include "arb_proto.h"

#include <pthread.h>

struct _arb_chore_t {
    arb_chore_fn *fn;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t asked_cond;  //  a run asked, or the end
    pthread_cond_t idle_cond;   //  no run asked or in progress
    bool asked;                 //  under lock: a run is to start
    bool running;               //  under lock: fn runs
    bool stopping;              //  under lock: the thread ends after its run
    uint64_t runs;              //  under lock
};

static void *
s_run (void *arg)
{
    arb_chore_t *self = (arb_chore_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        if (!self->asked) {
            pthread_cond_wait (&self->asked_cond, &self->lock);
            continue;
        }
        self->asked = false;
        self->running = true;
        pthread_mutex_unlock (&self->lock);
        self->fn (self->arg);
        pthread_mutex_lock (&self->lock);
        self->running = false;
        self->runs++;
        if (!self->asked)
            pthread_cond_broadcast (&self->idle_cond);
    }
    //  a run asked and not started never will be: nobody waits for it
    self->asked = false;
    pthread_cond_broadcast (&self->idle_cond);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

arb_chore_t *
arb_chore_new (const char *what, arb_chore_fn *fn, void *arg)
{
    arb_chore_t *self = (arb_chore_t *) zmalloc (sizeof (arb_chore_t));
    self->fn = fn;
    self->arg = arg;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->asked_cond, NULL);
    pthread_cond_init (&self->idle_cond, NULL);
    int rc = pthread_create (&self->thread, NULL, s_run, self);
    if (rc) {
        zsys_error ("%s: cannot start a thread: %s", what, strerror (rc));
        pthread_cond_destroy (&self->idle_cond);
        pthread_cond_destroy (&self->asked_cond);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    return self;
}

void
arb_chore_destroy (arb_chore_t **self_p)
{
    assert (self_p);
    arb_chore_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_signal (&self->asked_cond);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    pthread_cond_destroy (&self->idle_cond);
    pthread_cond_destroy (&self->asked_cond);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
arb_chore_ask (arb_chore_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->asked = true;
    pthread_cond_signal (&self->asked_cond);
    pthread_mutex_unlock (&self->lock);
}

bool
arb_chore_idle (arb_chore_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool idle = !self->asked && !self->running;
    pthread_mutex_unlock (&self->lock);
    return idle;
}

void
arb_chore_wait (arb_chore_t *self)
{
    pthread_mutex_lock (&self->lock);
    while (self->asked || self->running)
        pthread_cond_wait (&self->idle_cond, &self->lock);
    pthread_mutex_unlock (&self->lock);
}

uint64_t
arb_chore_runs (arb_chore_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t runs = self->runs;
    pthread_mutex_unlock (&self->lock);
    return runs;
}
