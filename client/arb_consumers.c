/*  arb_consumers.c — a link's consumers (see arb_consumers.h).

    Consumers live in `consumers` (by subscription number). Those with a
    CREDIT due sit in `dirty`, oldest first, so that a turn never walks
    every consumer; cancels due are subscription numbers in `cancels`.
*/

#include "arb_consumers.h"
#include "arb_idmap.h"

#define ARB_CONSUMERS_TAG  0x0c1e0005u  //  a live arb_consumers_t
#define ARB_CONSUMERS_DEAD 0xdeadc1e5u  //  written on destroy, to catch use after it

typedef struct {
    uint32_t sub;
    char **queues;  //  owned strings
    size_t queue_count;
    int64_t credit;  //  what the broker holds: given minus dispatched
    int64_t owed;    //  given since the last CREDIT (negative: taken back)
    bool announced;  //  its first CREDIT (with the queues) went out in this session
    void *dirty;     //  handle in dirty: a CREDIT is due
    arb_link_dispatch_fn *fn;
    void *arg;  //  borrowed
} s_consumer_t;

struct _arb_consumers_t {
    uint32_t tag;            //  ARB_CONSUMERS_TAG
    arb_idmap_t *consumers;  //  owned: sub -> owned s_consumer_t
    uint32_t last_sub;       //  last subscription number given
    int64_t given;           //  sum of the consumers' positive credit
    zlistx_t *dirty;         //  owned list of borrowed s_consumer_t with a CREDIT due
    zlistx_t *cancels;       //  owned list of subscription numbers (as pointers) to cancel
};

arb_consumers_t *
arb_consumers_new (void)
{
    arb_consumers_t *self = (arb_consumers_t *) zmalloc (sizeof (arb_consumers_t));
    self->tag = ARB_CONSUMERS_TAG;
    self->consumers = arb_idmap_new ();
    self->dirty = zlistx_new ();
    self->cancels = zlistx_new ();
    return self;
}

static void
s_consumer_destroy (s_consumer_t **consumer_p)
{
    s_consumer_t *consumer = *consumer_p;
    for (size_t i = 0; i < consumer->queue_count; i++)
        free (consumer->queues[i]);
    free (consumer->queues);
    free (consumer);
    *consumer_p = NULL;
}

void
arb_consumers_destroy (arb_consumers_t **self_p)
{
    assert (self_p);
    arb_consumers_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_CONSUMERS_TAG);
    size_t cursor = 0;
    uint64_t sub;
    void *value;
    while (arb_idmap_next (self->consumers, &cursor, &sub, &value)) {
        s_consumer_t *consumer = (s_consumer_t *) value;
        s_consumer_destroy (&consumer);
    }
    arb_idmap_destroy (&self->consumers);
    zlistx_destroy (&self->dirty);
    zlistx_destroy (&self->cancels);
    self->tag = ARB_CONSUMERS_DEAD;
    free (self);
    *self_p = NULL;
}

static s_consumer_t *
s_consumer (arb_consumers_t *self, uint32_t sub)
{
    return (s_consumer_t *) arb_idmap_lookup (self->consumers, sub);
}

//  Changes what the broker holds for a consumer, keeping the sum of the
//  positive credit in step.
static void
s_set_credit (arb_consumers_t *self, s_consumer_t *consumer, int64_t credit)
{
    self->given -= consumer->credit > 0 ? consumer->credit : 0;
    consumer->credit = credit;
    self->given += credit > 0 ? credit : 0;
}

static void
s_mark_dirty (arb_consumers_t *self, s_consumer_t *consumer)
{
    if (!consumer->dirty)
        consumer->dirty = zlistx_add_end (self->dirty, consumer);
}

static int
s_check_queues (const char **queues, size_t n, char *error, size_t size)
{
    if (n == 0 || n > ARB_CREDIT_QUEUES_MAX) {
        snprintf (error, size, "a consumer has 1 to %d queues, not %zu", ARB_CREDIT_QUEUES_MAX, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = queues[i] ? strlen (queues[i]) : 0;
        if (len == 0 || len > ARB_NAME_MAX) {
            snprintf (error, size, "queues[%zu]: a queue name has 1 to %d bytes, not %zu", i,
                      ARB_NAME_MAX, len);
            return -1;
        }
        //  the broker would refuse the CREDIT, and nothing would tell
        char why[128];
        if (arb_name_check (queues[i], len, why, sizeof (why))) {
            snprintf (error, size, "queues[%zu]: %s (names are printable UTF-8)", i, why);
            return -1;
        }
    }
    return 0;
}

uint32_t
arb_consumers_add (arb_consumers_t *self,
                   const char **queues,
                   size_t n,
                   int credit,
                   arb_link_dispatch_fn *fn,
                   void *arg,
                   char *error,
                   size_t size)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG && (queues || n == 0) && fn && credit >= 0);
    if (s_check_queues (queues, n, error, size))
        return 0;
    if (arb_idmap_size (self->consumers) >= ARB_LINK_CONSUMERS_MAX) {
        snprintf (error, size, "%d consumers already", ARB_LINK_CONSUMERS_MAX);
        return 0;
    }
    //  a number not in use, never 0 (TAKE's tasks come with sub 0)
    do
        self->last_sub = self->last_sub == UINT32_MAX ? 1 : self->last_sub + 1;
    while (arb_idmap_contains (self->consumers, self->last_sub));
    s_consumer_t *consumer = (s_consumer_t *) zmalloc (sizeof (s_consumer_t));
    consumer->sub = self->last_sub;
    consumer->queues = (char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        consumer->queues[i] = strdup (queues[i]);
    consumer->queue_count = n;
    consumer->fn = fn;
    consumer->arg = arg;
    arb_idmap_insert (self->consumers, consumer->sub, consumer);
    s_set_credit (self, consumer, credit);
    s_mark_dirty (self, consumer);
    return consumer->sub;
}

int
arb_consumers_remove (arb_consumers_t *self, uint32_t sub)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    s_consumer_t *consumer = s_consumer (self, sub);
    if (!consumer)
        return -1;
    //  the broker knows it only once its first CREDIT went out
    if (consumer->announced)
        zlistx_add_end (self->cancels, (void *) (uintptr_t) sub);
    if (consumer->dirty)
        zlistx_delete (self->dirty, consumer->dirty);
    s_set_credit (self, consumer, 0);
    arb_idmap_remove (self->consumers, sub);
    s_consumer_destroy (&consumer);
    return 0;
}

int
arb_consumers_add_credit (arb_consumers_t *self, uint32_t sub, int credit)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    s_consumer_t *consumer = s_consumer (self, sub);
    if (!consumer)
        return -1;
    s_set_credit (self, consumer, consumer->credit + credit);
    consumer->owed += credit;
    s_mark_dirty (self, consumer);
    return 0;
}

int64_t
arb_consumers_credit (arb_consumers_t *self, uint32_t sub)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    s_consumer_t *consumer = s_consumer (self, sub);
    return consumer ? consumer->credit : 0;
}

int64_t
arb_consumers_given (arb_consumers_t *self)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    return self->given;
}

size_t
arb_consumers_size (arb_consumers_t *self)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    return arb_idmap_size (self->consumers);
}

bool
arb_consumers_dispatched (arb_consumers_t *self,
                          uint32_t sub,
                          arb_link_dispatch_fn **fn,
                          void **arg)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG && fn && arg);
    s_consumer_t *consumer = s_consumer (self, sub);
    if (!consumer)
        return false;
    s_set_credit (self, consumer, consumer->credit - 1);
    *fn = consumer->fn;
    *arg = consumer->arg;
    return true;
}

void
arb_consumers_restart (arb_consumers_t *self)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    zlistx_purge (self->cancels);
    size_t cursor = 0;
    uint64_t sub;
    void *value;
    while (arb_idmap_next (self->consumers, &cursor, &sub, &value))
        ((s_consumer_t *) value)->announced = false;
}

void
arb_consumers_announce (arb_consumers_t *self)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    size_t cursor = 0;
    uint64_t sub;
    void *value;
    while (arb_idmap_next (self->consumers, &cursor, &sub, &value)) {
        s_consumer_t *consumer = (s_consumer_t *) value;
        consumer->announced = false;
        consumer->owed = 0;
        s_mark_dirty (self, consumer);
    }
}

bool
arb_consumers_has_credit (arb_consumers_t *self)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    return zlistx_size (self->dirty) > 0 || zlistx_size (self->cancels) > 0;
}

arb_msg_t *
arb_consumers_next_credit (arb_consumers_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    arb_msg_t *msg = NULL;
    s_consumer_t *consumer = (s_consumer_t *) zlistx_first (self->dirty);
    if (consumer) {
        zlistx_delete (self->dirty, consumer->dirty);
        consumer->dirty = NULL;
        msg = arb_msg_new (ARB_MSG_CREDIT, reqid);
        arb_credit_body_t *body = arb_msg_credit (msg);
        body->sub = consumer->sub;
        if (!consumer->announced) {
            //  the first CREDIT of a session names the queues and gives
            //  all the credit the consumer has left
            body->queues.v = (const char **) consumer->queues;
            body->queues.n = consumer->queue_count;
            body->credit = (int32_t) consumer->credit;
        }
        else
            body->credit = (int32_t) consumer->owed;
        consumer->announced = true;
        consumer->owed = 0;
    }
    else
        msg = arb_consumers_next_cancel (self, reqid);
    return msg;
}

arb_msg_t *
arb_consumers_next_cancel (arb_consumers_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_CONSUMERS_TAG);
    if (zlistx_size (self->cancels) == 0)
        return NULL;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_CREDIT, reqid);
    arb_msg_credit (msg)->sub = (uint32_t) (uintptr_t) zlistx_detach (self->cancels, NULL);
    arb_msg_credit (msg)->cancel = true;
    return msg;
}
