/*  arb_stats_pages.c — the broker's STATS, gathered from every page; see
    arb_stats_pages.h.

    The merged reply holds shallow copies of the pages' records: their
    strings and lists stay in the pages, which this object keeps.
*/

#include "arb_stats_pages.h"

struct _arb_stats_pages_t {
    char *queue;                    //  owned: the one queue asked for, or NULL
    arb_msg_t **pages;              //  owned array of owned STATS_REPLY
    size_t count;                   //  pages kept
    size_t dropped;                 //  pages taken and freed (arb_stats_pages_drop)
    char *after;                    //  owned: the last queue of the pages dropped, or NULL
    char *after_worker;             //  owned: the last worker of the pages dropped, or NULL
    size_t cap;                     //  room in pages
    size_t queue_cap;               //  room in merged.queues.v
    size_t worker_cap;              //  room in merged.workers.v
    arb_stats_reply_body_t merged;  //  queues.v, workers.v owned; the rest borrowed from page 0
};

arb_stats_pages_t *
arb_stats_pages_new (const char *queue)
{
    arb_stats_pages_t *self = (arb_stats_pages_t *) zmalloc (sizeof (arb_stats_pages_t));
    self->queue = queue ? strdup (queue) : NULL;
    return self;
}

void
arb_stats_pages_destroy (arb_stats_pages_t **self_p)
{
    assert (self_p);
    arb_stats_pages_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        arb_msg_destroy (&self->pages[i]);
    free (self->pages);
    free (self->merged.queues.v);
    free (self->merged.workers.v);
    free (self->queue);
    free (self->after);
    free (self->after_worker);
    free (self);
    *self_p = NULL;
}

void
arb_stats_pages_request (arb_stats_pages_t *self, arb_msg_t *request)
{
    arb_stats_body_t *body = arb_msg_stats (request);
    arb_stats_reply_body_t *merged = &self->merged;
    if (self->queue)
        body->queue = arb_msg_strdup (request, self->queue);
    if (merged->queues.n)
        body->after = arb_msg_strdup (request, merged->queues.v[merged->queues.n - 1].name);
    else if (self->after)
        body->after = arb_msg_strdup (request, self->after);
    if (merged->workers.n)
        body->after_worker =
            arb_msg_strdup (request, merged->workers.v[merged->workers.n - 1].identity);
    else if (self->after_worker)
        body->after_worker = arb_msg_strdup (request, self->after_worker);
}

void
arb_stats_pages_drop (arb_stats_pages_t *self)
{
    arb_stats_reply_body_t *merged = &self->merged;
    //  the cursor first: the names live in the pages
    if (merged->queues.n) {
        free (self->after);
        self->after = strdup (merged->queues.v[merged->queues.n - 1].name);
        assert (self->after);
    }
    if (merged->workers.n) {
        free (self->after_worker);
        self->after_worker = strdup (merged->workers.v[merged->workers.n - 1].identity);
        assert (self->after_worker);
    }
    for (size_t i = 0; i < self->count; i++)
        arb_msg_destroy (&self->pages[i]);
    self->dropped += self->count;
    self->count = 0;
    //  the lists keep their room; what page 0 lent (its times, counters
    //  and their lists) goes with it
    arb_queue_info_t *queues = merged->queues.v;
    arb_worker_stats_t *workers = merged->workers.v;
    memset (merged, 0, sizeof (*merged));
    merged->queues.v = queues;
    merged->workers.v = workers;
}

//  Appends count records of size bytes at src to an array of *n records
//  with room for *cap. Returns the array (it may move).
static void *
s_append (void *array, size_t *n, size_t *cap, const void *src, size_t count, size_t size)
{
    if (*n + count > *cap) {
        *cap = *n + count > *cap * 2 ? *n + count : *cap * 2;
        array = realloc (array, *cap * size);
        assert (array);
    }
    if (count)
        memcpy ((char *) array + *n * size, src, count * size);
    *n += count;
    return array;
}

int
arb_stats_pages_add (arb_stats_pages_t *self, arb_msg_t **reply_p)
{
    arb_msg_t *reply = *reply_p;
    *reply_p = NULL;
    if (!reply || arb_msg_type (reply) != ARB_MSG_STATS_REPLY
        || self->count + self->dropped == ARB_STATS_PAGES_MAX) {
        arb_msg_destroy (&reply);
        return -1;
    }
    self->pages = (arb_msg_t **) s_append (self->pages, &self->count, &self->cap, &reply, 1,
                                           sizeof (arb_msg_t *));
    arb_stats_reply_body_t *page = arb_msg_stats_reply (reply);
    arb_stats_reply_body_t *merged = &self->merged;
    if (self->count == 1) {
        //  the times and counters of the first page; the lists merged below
        arb_queue_info_t *queues = merged->queues.v;
        arb_worker_stats_t *workers = merged->workers.v;
        *merged = *page;
        merged->queues.v = queues;
        merged->queues.n = 0;
        merged->workers.v = workers;
        merged->workers.n = 0;
        merged->more = merged->more_workers = false;
    }
    merged->queues.v =
        (arb_queue_info_t *) s_append (merged->queues.v, &merged->queues.n, &self->queue_cap,
                                       page->queues.v, page->queues.n, sizeof (arb_queue_info_t));
    merged->workers.v = (arb_worker_stats_t *) s_append (
        merged->workers.v, &merged->workers.n, &self->worker_cap, page->workers.v, page->workers.n,
        sizeof (arb_worker_stats_t));
    //  a list that says more but brought none cannot move its cursor on:
    //  stop rather than ask the same page forever
    bool more = (page->more && page->queues.n) || (page->more_workers && page->workers.n);
    return more && !self->queue ? 1 : 0;
}

arb_stats_reply_body_t *
arb_stats_pages_reply (arb_stats_pages_t *self)
{
    return &self->merged;
}

size_t
arb_stats_pages_count (arb_stats_pages_t *self)
{
    return self->count + self->dropped;
}
