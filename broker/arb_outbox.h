/*  arb_outbox.h — what the broker sends, held until the turn's commit.

    The lowest layer of the broker (see docs/broker.md, "Layers"). Every
    message a turn produces waits here until the loop has committed the
    turn's transaction (but the DISPATCHes and HEARTBEATs it sends at
    once, arb_outbox_send, which promise nothing durable): the replies in
    the order they were made, then one DONE per watching peer (the
    results of the tasks that ended), then one EVENT per event
    subscriber. So a reply that promises durability never leaves before
    its data is on disk. If the commit fails, the loop abandons all of
    it: none of it is true yet.

    It also keeps the event subscribers (a routing id and an optional
    queue filter each) and the refusal-log limiter: at most 20 refusals
    are logged a second, so a peer spraying garbage cannot flood the log.

    A TAKE's reply (DISPATCH) that the socket refuses is kept aside, its
    peer and tasks, for the loop to give the tasks back
    (arb_outbox_next_undelivered).

    Bounds: a DONE or EVENT message holds at most 1,000 records (and a
    DONE at most ARB_REPLY_BYTES of results beyond its first); a turn's
    records for one peer go in as many messages as they need. A
    subscriber the ROUTER knows no more (its peer is gone: the loop's
    ROUTER is ZMQ_ROUTER_MANDATORY), or whose EVENTs it has refused for
    60 s (its queue full: the peer stopped reading), is forgotten; events
    refused before that are counted in the next EVENT's `dropped`.

    It calls nothing of the broker above it. It borrows the loop's ROUTER
    socket (it never blocks on it: a ROUTER drops what it cannot deliver)
    and the turn's clock (events carry its time). Runs in the loop thread.
*/

#ifndef ARB_OUTBOX_H
#define ARB_OUTBOX_H

#include "arb_clock.h"
#include "arb_task.h"
#include "arb_wire.h"

typedef struct _arb_outbox_t arb_outbox_t;

//  A new, empty outbox sending on the wire, stamping events with clock's
//  time; both are borrowed and must outlive it.
arb_outbox_t *arb_outbox_new (arb_wire_t *wire, const arb_clock_t *clock);

//  Destroys the outbox with every message it still holds (unsent).
void arb_outbox_destroy (arb_outbox_t **self_p);

//  Queues a reply (or any message with a routing id: STOP, HEARTBEAT) to
//  go after the commit. Takes it.
void arb_outbox_reply (arb_outbox_t *self, arb_msg_t **msg_p);

//  Queues an ERROR reply to request (code and reason) and logs the
//  refusal, within the log's limit.
void
arb_outbox_refuse (arb_outbox_t *self, arb_msg_t *request, arb_err_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Logs a refusal that has no request to answer (identity may be NULL),
//  within the log's limit.
void arb_outbox_log_refusal (arb_outbox_t *self,
                             zframe_t *identity,
                             const char *type,
                             const char *reason);

//  Adds a task's end to the DONE being filled for identity. Takes the
//  result frame (NULL, or *result_p NULL, for none).
void arb_outbox_done (arb_outbox_t *self,
                      zframe_t *identity,
                      uint64_t id,
                      int state,
                      uint32_t attempts,
                      const char *error,
                      zframe_t **result_p);

//  Adds an event (task entered state; error may be NULL) to the EVENT
//  being filled for every subscriber of its queue.
void arb_outbox_event (arb_outbox_t *self, arb_task_t *task, int state, const char *error);

//  Whether any peer subscribes to events (a task's end need not be told
//  to anyone else).
bool arb_outbox_has_subscribers (arb_outbox_t *self);

//  Subscribes a peer to the events of a queue (NULL: all), replacing its
//  earlier filter; with on false, unsubscribes it.
void arb_outbox_subscribe (arb_outbox_t *self, zframe_t *identity, const char *queue, bool on);

//  Whether identity (borrowed) subscribes to events.
bool arb_outbox_is_subscribed (arb_outbox_t *self, zframe_t *identity);

//  Sends a message at once, outside the commit's order: for DISPATCH and
//  HEARTBEAT, which promise nothing durable. Takes it. Returns 0, or -1 if
//  the socket did not take it (errno: EHOSTUNREACH, the peer is gone;
//  EAGAIN, its queue is full).
int arb_outbox_send (arb_outbox_t *self, arb_msg_t **msg_p);

//  A reply with tasks in it (a DISPATCH answering a TAKE) that the socket
//  did not take at the last flush: its peer's identity and the tasks'
//  (id, lease), both given to the caller (zframe_destroy, free); true, or
//  false once there is none left. The tasks were never delivered.
bool arb_outbox_next_undelivered (arb_outbox_t *self,
                                  zframe_t **identity_p,
                                  arb_held_t **leases_p,
                                  size_t *n);

//  Whether nothing waits to be sent.
bool arb_outbox_is_empty (arb_outbox_t *self);

//  After the commit: sends the replies, then the DONE, then the EVENT
//  messages, and empties the outbox; forgets the subscribers gone.
void arb_outbox_flush (arb_outbox_t *self);

//  After a failed commit: drops everything waiting, unsent.
void arb_outbox_abandon (arb_outbox_t *self);

//  After a failed commit the broker goes on from: every request of the
//  turn is answered with an ERROR of code and reason (same routing id and
//  request id) in place of its reply, since nothing it did stayed; an
//  ERROR the turn made stands (a refusal changed nothing). Everything else
//  waiting (DONE, EVENT, STOP, HEARTBEAT) is dropped, unsent. The ERRORs
//  go with the next flush. The ends the dropped DONEs told are kept, for
//  the loop to watch those tasks again (arb_outbox_next_dropped_end).
void arb_outbox_refuse_all (arb_outbox_t *self, arb_err_t code, const char *reason);

//  A task end that a DONE dropped by arb_outbox_refuse_all would have
//  told: its watcher's identity (given to the caller: zframe_destroy) and
//  the task's id; true, or false once there is none left. The end was
//  never committed, and its watch was used up by it: the caller watches
//  the task again, or the watcher never hears of it.
bool arb_outbox_next_dropped_end (arb_outbox_t *self, zframe_t **identity_p, uint64_t *id);

//  Whether what was sent to peer (its routing id) waited in the broker,
//  not yet written to its connection, at any time since since_ms
//  (monotonic; arb_wire_unwritten).
bool arb_outbox_unwritten (arb_outbox_t *self, zframe_t *identity, uint64_t since_ms);

#endif
