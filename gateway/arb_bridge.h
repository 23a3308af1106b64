/*  arb_bridge.h — one upstream RabbitMQ queue bridged into arbiter: its
    messages become tasks, and each task's result goes back to the
    message's reply_to.

    Threads. The RabbitMQ connection runs in its own thread
    (arb_upstream); this side runs in the gateway's loop, submits through
    the gateway's one link, and talks to the thread over its socket only.
    So the loop never waits for RabbitMQ, and the gateway's other servers
    go on whatever the upstream does.

    A message's way (at least once, nothing lost):

    1. RabbitMQ delivers it (at most `prefetch` unacked at once). It is
       submitted as a task of the bridge's queue and name, body as
       payload, delivery and properties as headers, and a client key that
       names the message (arb_envelope.h): a message delivered again, or
       another with the same message_id, submits to the task the first
       one made.
    2. SUBMITTED (the broker committed it). A message without reply_to is
       acked upstream now. One with reply_to first gets a record in the
       broker's metadata, key "gw.bridge.NAME.ID.HEX" (ID the task's id,
       HEX the SHA-1 of the reply address), value its reply address; it
       is acked upstream once the record is committed, and its task is
       watched. A task owes one reply per reply address (reply_to and
       correlation_id): each message of it with another address is
       answered on its own, one with the same address by the same reply.
    3. The task ends (succeeded, dead or cancelled: DONE). Its result is
       published to reply_to with the message's correlation_id and
       publisher confirms; headers x-arbiter-task-id and x-arbiter-state,
       and x-arbiter-error for a task that did not succeed (every message
       with reply_to gets an answer). Once RabbitMQ confirms it, the record
       is deleted. A task's replies go out one at a time (a confirm names
       the task), each fetching the result again.

    Failures:
    - The upstream goes away: deliveries not acked go back to its queue
      (RabbitMQ) and come again; their keys find their tasks. Replies not
      confirmed are published again on the next connection. A message
      ack lost with the connection can therefore bring a reply twice; none
      is lost.
    - The gateway dies (kill -9): the same, and at start the bridge lists
      its records (META lists of its prefix; "gw.bridge.NAME.ID", as
      gateways wrote them before the per-address records, read too) and
      watches their tasks again: results of tasks that ended while it was
      down are published then.
    - The broker is away or refuses for a while (no answer, 5xx): the
      submit or record is tried again, 0.5 s doubling to 10 s, while
      RabbitMQ holds the message unacked, and at once when the broker
      session comes up again (the gateway's state listener). The first
      failure of a streak
      is a warning (the rest debug), the end of the streak a notice.
    - The broker refuses the message for good (4xx: over --max-payload,
      ...): it is rejected upstream without requeue (RabbitMQ dead-letters
      it when its queue has a dead-letter exchange) and logged.
    - A message without message_id is keyed by a digest of its content.
      One whose key finds an existing task (another message with the same
      content, or this one delivered again after its submit: they cannot
      be told apart) gets a task of its own, submitted without a key:
      nothing is lost, but it may run twice.

    Bounds: deliveries held by the prefetch; replies owed (one per task
    and reply address) and messages being submitted or recorded by
    max_pending (past it the bridge submits no more messages: the
    prefetch's wait unacked here, the rest in RabbitMQ, which closes the
    channel past its consumer_timeout: the connection is made again and
    they come again); results on their way upstream by ARB_BRIDGE_WINDOW replies
    and ARB_BRIDGE_WINDOW_BYTES (a result that finds the window full, or
    the upstream away, is not kept: the task is watched again later, and
    the broker sends its result again).

    Runs in the gateway's loop; not thread-safe.
*/

#ifndef ARB_BRIDGE_H
#define ARB_BRIDGE_H

#include "arb_gateway.h"

#define ARB_BRIDGE_WINDOW       256          //  replies on their way upstream at most
#define ARB_BRIDGE_WINDOW_BYTES (64u << 20)  //  result bytes on their way upstream at most
#define ARB_BRIDGE_META_PREFIX  "gw.bridge."

typedef struct _arb_bridge_t arb_bridge_t;

typedef struct {
    const char *name;            //  the bridge's name: keys, records, logs
    const char *url;             //  the upstream, amqp://user:password@host:port/vhost
    const char *upstream_queue;  //  the RabbitMQ queue consumed
    uint16_t prefetch;           //  unacked upstream messages at once
    uint32_t max_pending;        //  replies owed (task and reply address) at most
    uint64_t reconnect_max_ms;   //  cap of the delay between upstream attempts
    size_t max_payload;          //  largest body taken (the gateway's --max-payload)
    //  the tasks: queue and name set; the options every task gets
    //  (priority, retries, backoff, timeout, retention); the rest unused
    arb_task_spec_t task;
} arb_bridge_config_t;

//  Starts a bridge (its thread connects at once) in the gateway's loop.
//  Strings are copied. NULL (after logging why) if the URL does not
//  parse; the gateway goes on without it.
arb_bridge_t *arb_bridge_new (arb_gateway_t *gateway, const arb_bridge_config_t *config);

//  Stops the bridge: the thread closes its connection (RabbitMQ takes back
//  what was not acked; see arb_upstream_destroy for how long it may take).
//  Accepts NULL; nulls *self_p.
void arb_bridge_destroy (arb_bridge_t **self_p);

//  Whether the upstream connection is consuming now.
bool arb_bridge_is_up (arb_bridge_t *self);

#endif
