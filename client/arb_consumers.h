/*  arb_consumers.h — the consumers of a link: CREDIT subscriptions, the
    credit the broker holds for each, and the CREDIT messages that tell
    the broker.

    A consumer is a subscription number (never 0: TAKE's tasks come with
    sub 0), its queues, and its credit as the broker holds it: what was
    given, minus the tasks dispatched on it. Giving credit marks the
    consumer for a CREDIT; its first CREDIT in a session names its queues
    and gives all the credit it has left, later ones what was added since.
    A new session (restart) knows no subscription: every consumer is
    announced again once the session is up (announce), and subscriptions
    ended meanwhile need no cancel.

    Bounds: at most ARB_LINK_CONSUMERS_MAX consumers of at most
    ARB_CREDIT_QUEUES_MAX queues each; the CREDITs due are one per
    consumer at most, plus one per cancelled consumer. Not thread-safe:
    one owner (arb_link), on its thread.
*/

#ifndef ARB_CONSUMERS_H
#define ARB_CONSUMERS_H

#include "arb_link.h"

typedef struct _arb_consumers_t arb_consumers_t;

//  Creates an empty set of consumers.
arb_consumers_t *arb_consumers_new (void);

//  Destroys the consumers. Accepts NULL; nulls the caller's pointer.
void arb_consumers_destroy (arb_consumers_t **self_p);

//  Adds a consumer of n queues with an initial credit (>= 0) whose tasks go
//  to fn with arg. Returns its subscription number, or 0 with a sentence
//  in error (size bytes) for bad queue names or too many consumers.
uint32_t arb_consumers_add (arb_consumers_t *self,
                            const char **queues,
                            size_t n,
                            int credit,
                            arb_link_dispatch_fn *fn,
                            void *arg,
                            char *error,
                            size_t size);

//  Removes consumer sub (a CREDIT cancel is due if the broker knows it).
//  Returns 0, or -1 if there is no such consumer.
int arb_consumers_remove (arb_consumers_t *self, uint32_t sub);

//  Adds credit to consumer sub (negative: takes some back). Returns 0, or
//  -1 if there is no such consumer.
int arb_consumers_add_credit (arb_consumers_t *self, uint32_t sub, int credit);

//  The credit the broker holds for consumer sub (0 if there is none).
int64_t arb_consumers_credit (arb_consumers_t *self, uint32_t sub);

//  The sum of every consumer's positive credit.
int64_t arb_consumers_given (arb_consumers_t *self);

//  Number of consumers.
size_t arb_consumers_size (arb_consumers_t *self);

//  A task was dispatched on sub: one of its credit is used. Stores its
//  callback and argument. Returns false if there is no such consumer.
bool arb_consumers_dispatched (arb_consumers_t *self,
                               uint32_t sub,
                               arb_link_dispatch_fn **fn,
                               void **arg);

//  A new session starts: the broker knows none of the subscriptions, so
//  none needs cancelling, and none is announced.
void arb_consumers_restart (arb_consumers_t *self);

//  The session is up: every consumer's CREDIT is due, with all the credit
//  it has left.
void arb_consumers_announce (arb_consumers_t *self);

//  Whether CREDIT messages are due.
bool arb_consumers_has_credit (arb_consumers_t *self);

//  The next CREDIT due (with request id reqid), or NULL if none is. The
//  caller owns it; it borrows the consumer's queue names until sent.
arb_msg_t *arb_consumers_next_credit (arb_consumers_t *self, uint32_t reqid);

//  The next CREDIT that cancels a consumer, or NULL if none is due: the
//  link sends these before its outcomes, so that a task a cancelled
//  consumer gives back is not handed to it again.
arb_msg_t *arb_consumers_next_cancel (arb_consumers_t *self, uint32_t reqid);

#endif
