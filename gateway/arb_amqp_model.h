/*  arb_amqp_model.h — the AMQP world the gateway serves: virtual hosts,
    exchanges, queues and the bindings between them, and the routing of a
    published message to the queues it reaches.

    Every vhost has the default exchange "" (direct; every queue is bound
    to it under its own name, implicitly) and amq.direct, amq.fanout,
    amq.topic, amq.headers and amq.match. Exchanges route as their type
    says: direct (binding key == routing key), fanout (every binding),
    topic (words split on '.', '*' one word, '#' zero or more) and headers
    (x-match all or any over the binding's arguments; arguments starting
    with "x-" are not matched). Exchange-to-exchange bindings are followed,
    each exchange at most once per message; a queue gets a message at most
    once, however many bindings lead to it.

    A queue is a broker queue: in vhost "/" of the same name (so AMQP,
    Kestrel and REST clients share queues), in any other vhost V the name
    "V|Q" (a vhost name holds no '|'; AMQP's own names are any printable
    UTF-8 up to the broker's 200 bytes with the prefix). The broker keeps
    '@' for its endpoint queues, and '|' ends a vhost's prefix, so a name
    that holds either (Celery's "celery@HOST.celery.pidbox") is the broker
    queue "amq.esc:" and the name with '%', '@' and '|' written %25, %40
    and %7C (behind the vhost's prefix): no other AMQP queue can have that
    name, since clients may not declare names starting with "amq.", and no
    queue of "/" can have another vhost's name.

    Records. Exchanges, queues and bindings are kept in the broker's
    metadata store, one key each (arb_amqp_model_key), the value an AMQP
    field table encoded by rabbitmq-c: "gw.amqp.x.V|NAME" an exchange,
    "gw.amqp.q.V|NAME" a queue, "gw.amqp.b.V|SOURCE|HASH" a binding. The
    model only builds and reads these; the server sends them.

    Pure memory, no I/O; one thread.
*/

#ifndef ARB_AMQP_MODEL_H
#define ARB_AMQP_MODEL_H

#include "arb_amqp_frame.h"

#include <czmq.h>

#define ARB_AMQP_META_PREFIX "gw.amqp."
#define ARB_AMQP_NAME_MAX    255  //  AMQP shortstr

typedef struct _arb_amqp_model_t arb_amqp_model_t;
typedef struct _arb_amqp_vhost_t arb_amqp_vhost_t;
typedef struct _arb_amqp_exchange_t arb_amqp_exchange_t;
typedef struct _arb_amqp_queue_t arb_amqp_queue_t;

//  The longest TTL taken (x-message-ttl, x-expires, a message's
//  expiration), in ms: RabbitMQ's (3.10) bound, ten years. (Not the
//  broker's 366 days of delay_ms: an expiry is a task's expires_ms, which
//  has no bound.)
#define ARB_AMQP_TTL_MAX_MS 315360000000ULL

typedef enum {
    ARB_AMQP_DIRECT = 0,
    ARB_AMQP_FANOUT = 1,
    ARB_AMQP_TOPIC = 2,
    ARB_AMQP_HEADERS = 3,
} arb_amqp_type_t;

//  x-overflow: what a queue at its x-max-length or x-max-length-bytes does
//  with one more message.
typedef enum {
    ARB_AMQP_DROP_HEAD = 0,           //  drops (or dead-letters) its oldest
    ARB_AMQP_REJECT_PUBLISH = 1,      //  refuses the new one (nack under confirms)
    ARB_AMQP_REJECT_PUBLISH_DLX = 2,  //  the same, and dead-letters it
} arb_amqp_overflow_t;

//  A queue's settings, from its x- arguments (0: not set).
typedef struct {
    uint64_t message_ttl_ms;  //  x-message-ttl (set: has_ttl)
    bool has_ttl;
    uint64_t expires_ms;   //  x-expires: deleted once unused this long
    uint8_t max_priority;  //  x-max-priority (0: no priorities)
    uint64_t max_length;   //  x-max-length: ready messages kept at most (set: has_max_length)
    bool has_max_length;
    uint64_t max_length_bytes;  //  x-max-length-bytes: their body bytes at most (set: has_...)
    bool has_max_length_bytes;
    arb_amqp_overflow_t overflow;  //  x-overflow
    char *dlx;                     //  owned x-dead-letter-exchange, or NULL
    char *dlrk;                    //  owned x-dead-letter-routing-key, or NULL
    bool quorum;                   //  x-queue-type quorum (else classic)
    uint64_t delivery_limit;       //  x-delivery-limit (quorum; set: has_delivery_limit)
    bool has_delivery_limit;
    bool single_active;  //  x-single-active-consumer true: one consumer served at a time
} arb_amqp_qargs_t;

//  A queue (fields read-only for callers but the counters marked so).
struct _arb_amqp_queue_t {
    arb_amqp_vhost_t *vhost;  //  borrowed
    char *name;               //  owned
    char *broker;             //  owned: the broker queue's name
    bool durable;
    bool exclusive;
    bool auto_delete;
    uint64_t owner;  //  exclusive: the owning connection's number
    zchunk_t *args;  //  owned encoded arguments table (with length prefix)
    arb_amqp_qargs_t settings;
    size_t consumers;         //  the gateway's consumers on it now (callers count)
    bool had_consumer;        //  auto-delete: it had one (callers set)
    bool exclusive_consumer;  //  a consumer holds it exclusively (callers set)
    uint64_t last_used_ms;    //  x-expires: monotonic ms of its last use (arb_amqp_queue_used)
    void *trim;  //  x-max-length(-bytes): the server's trim under way, or NULL (callers set)
    bool broker_bounds;    //  the broker took its bounds: it never needs the trim (callers set)
    bool rebound_due;      //  its bounds go to the broker again this turn (same)
    void *gate;            //  x-overflow reject-*: the server's held publishes, or NULL (same)
    void *head;            //  TTL with a DLX: the server's head check under way, or NULL (same)
    uint64_t head_due_ms;  //  TTL with a DLX: Unix ms its head is checked next (0: none; same)
    bool expiring;         //  TTL with a DLX: its messages may expire out of order (same)
    //  x-single-active-consumer: the gateway's consumers on it in the order
    //  they were registered, the first the active one (owned list of
    //  borrowed consumers, callers add and remove them); NULL for a queue
    //  without it
    zlistx_t *sac;
    //  consumer priorities (x-priority): every consumer of the gateway on
    //  it (owned list of borrowed consumers, callers add and remove them),
    //  how many of them have a priority other than 0, and the highest
    //  priority of those not blocked (INT64_MIN: none, or no priorities),
    //  below which a consumer waits (arb_amqp_consumer.c; callers set)
    zlistx_t *ranks;
    size_t prioritized;
    int64_t top_priority;
    bool ranking;  //  its ranking is under way (callers set)
};

struct _arb_amqp_exchange_t {
    arb_amqp_vhost_t *vhost;  //  borrowed
    char *name;               //  owned
    arb_amqp_type_t type;
    bool durable;
    bool auto_delete;
    bool internal;
    bool builtin;        //  "" and amq.*: never deleted
    bool had_binding;    //  auto-delete: a binding from it was made (or read back)
    zchunk_t *args;      //  owned encoded arguments table
    char *alternate;     //  owned: its alternate-exchange argument, NULL none
    zlistx_t *bindings;  //  owned arb_amqp_binding_t (arb_amqp_model_priv.h)
};

//  ---------------------------------------------------------------------

arb_amqp_model_t *arb_amqp_model_new (void);
void arb_amqp_model_destroy (arb_amqp_model_t **self_p);

//  Adds a vhost (with its built-in exchanges). 0, or -1 if the name is
//  empty, holds '|' or exists.
int arb_amqp_model_add_vhost (arb_amqp_model_t *self, const char *name);

//  A vhost by name (borrowed), or NULL.
arb_amqp_vhost_t *arb_amqp_model_vhost (arb_amqp_model_t *self, const char *name);
const char *arb_amqp_vhost_name (arb_amqp_vhost_t *vhost);

//  Checks an AMQP name for exchanges and queues: printable UTF-8, and for
//  queues short enough for the broker with the vhost's prefix. 0, or -1
//  with why.
int arb_amqp_model_check_name (
    arb_amqp_vhost_t *vhost, const char *name, bool queue, char *why, size_t size);

//  Lookups (borrowed), or NULL.
arb_amqp_exchange_t *arb_amqp_model_exchange (arb_amqp_vhost_t *vhost, const char *name);
arb_amqp_queue_t *arb_amqp_model_queue (arb_amqp_vhost_t *vhost, const char *name);

//  The type of a name ("direct", ...): 0, or -1 if unknown.
int arb_amqp_model_type (const char *name, arb_amqp_type_t *type);
const char *arb_amqp_model_type_name (arb_amqp_type_t type);

//  Whether an exchange declared again with args names the alternate
//  exchange it has (or none, as it has none): the one argument RabbitMQ
//  compares for an exchange. If not, values says how they differ (as
//  RabbitMQ's 406 does: "received 'b' but current is 'a'").
bool arb_amqp_model_same_alternate (arb_amqp_exchange_t *exchange,
                                    amqp_table_t *args,
                                    char *values,
                                    size_t size);

//  Creates an exchange (args: its arguments table, copied; its
//  alternate-exchange, a string, takes what it routes nowhere). Borrowed.
arb_amqp_exchange_t *arb_amqp_model_add_exchange (arb_amqp_vhost_t *vhost,
                                                  const char *name,
                                                  arb_amqp_type_t type,
                                                  bool durable,
                                                  bool auto_delete,
                                                  bool internal,
                                                  amqp_table_t *args);

//  Removes an exchange and every binding from or to it.
void arb_amqp_model_remove_exchange (arb_amqp_exchange_t *exchange);

//  Reads a queue's x- arguments into settings (freed by
//  arb_amqp_model_free_qargs). 0, or -1 with why (a PRECONDITION_FAILED
//  text: a wrong type or value, naming the queue as subject says, e.g.
//  "queue 'q' in vhost '/'", RabbitMQ's words).
int arb_amqp_model_parse_qargs (
    amqp_table_t *args, arb_amqp_qargs_t *settings, const char *subject, char *why, size_t size);
void arb_amqp_model_free_qargs (arb_amqp_qargs_t *settings);

//  The bounds of a queue (x-max-length, x-max-length-bytes: both apply
//  when both are set), as RabbitMQ keeps them over its ready messages
//  (unacked ones do not count) and their body bytes. Whether settings
//  bound the queue at all; whether ready messages of bytes are over a
//  bound (drop-head drops from the head while they are); and whether one
//  more message of size bytes fits (reject-publish refuses it if not).
bool arb_amqp_model_is_bounded (const arb_amqp_qargs_t *settings);

//  The broker priority of a message of props in a queue of settings: its
//  priority property, at most the queue's x-max-priority; 0 in a queue
//  without one, or for a message without one (props may be NULL).
uint32_t arb_amqp_model_priority (const arb_amqp_qargs_t *settings,
                                  const amqp_basic_properties_t *props);
bool arb_amqp_model_is_over (const arb_amqp_qargs_t *settings, uint64_t ready, uint64_t bytes);
bool arb_amqp_model_fits (const arb_amqp_qargs_t *settings,
                          uint64_t ready,
                          uint64_t bytes,
                          uint64_t size);

//  Whether the broker keeps the queue within its bounds itself (QUEUE set
//  max_ready, max_ready_bytes, overflow: exact, in the turn of the
//  submit): reject-publish(-dlx), and drop-head without a dead-letter
//  exchange (drops are the gateway's to dead-letter), with no bound of 0
//  (none, to the broker). Else the gateway trims after publishes, or counts
//  before them (arb_amqp_admit.c).
bool arb_amqp_model_broker_bounds (const arb_amqp_qargs_t *settings);

//  Creates a queue (args copied, settings parsed). Borrowed.
arb_amqp_queue_t *arb_amqp_model_add_queue (arb_amqp_vhost_t *vhost,
                                            const char *name,
                                            bool durable,
                                            bool exclusive,
                                            bool auto_delete,
                                            uint64_t owner,
                                            amqp_table_t *args);

//  Removes a queue and every binding to it.
void arb_amqp_model_remove_queue (arb_amqp_queue_t *queue);

//  Whether a new queue's declaration asks for nothing arbiter lacks and
//  keeps RabbitMQ's (3.10) rules for its type: x-queue-type classic (or
//  none) or quorum (stream is refused), x-single-active-consumer a boolean;
//  a quorum queue durable, not exclusive, not auto-delete, without the
//  arguments RabbitMQ refuses for one (x-max-priority, x-queue-mode,
//  x-queue-master-locator); a classic queue without the quorum ones
//  (x-delivery-limit, x-dead-letter-strategy, x-quorum-initial-group-size).
//  Returns 0, or -1 with why (a NUL-terminated text of size bytes) for a
//  406, naming the queue as subject says.
int arb_amqp_model_check_supported (amqp_table_t *args,
                                    bool durable,
                                    bool exclusive,
                                    bool auto_delete,
                                    const char *subject,
                                    char *why,
                                    size_t size);

//  Whether stored arguments equal args, all of them (a binding's identity).
bool arb_amqp_model_same_args (zchunk_t *stored, amqp_table_t *args);

//  Whether a queue declared again with args is the queue declared with
//  stored, as RabbitMQ checks it: the same x-queue-type (classic and none
//  are the same), and the arguments its type knows (x-message-ttl,
//  x-max-length, x-dead-letter-exchange, ..., x-delivery-limit for a
//  quorum queue) there in both with equal values, or in neither; other
//  arguments may differ. If not, *key_p is the first argument that
//  differs (in RabbitMQ's order; a static string, NULL if the stored ones
//  cannot be read) and values says how, in RabbitMQ's words ("received
//  '2000' but current is '1000'", "received none but current is the
//  value '5' of type 'signedint'").
bool arb_amqp_model_equivalent_qargs (
    zchunk_t *stored, amqp_table_t *args, const char **key_p, char *values, size_t size);

//  Whether source takes a binding with args, as RabbitMQ's exchange types
//  validate one: a headers exchange's x-match, when there, must be the
//  string all, any, all-with-x or any-with-x. Returns 0, or -1 with why
//  (a NUL-terminated text of size bytes) for a 406.
int arb_amqp_model_check_binding (arb_amqp_exchange_t *source,
                                  const amqp_table_t *args,
                                  char *why,
                                  size_t size);

//  Binds destination (a queue, or an exchange if dest_exchange) to source
//  under key with args. Returns 1 if added, 0 if it existed already.
int arb_amqp_model_bind (arb_amqp_exchange_t *source,
                         const char *dest,
                         bool dest_exchange,
                         const char *key,
                         amqp_table_t *args);

//  Whether that binding is there.
bool arb_amqp_model_bound (arb_amqp_exchange_t *source,
                           const char *dest,
                           bool dest_exchange,
                           const char *key,
                           amqp_table_t *args);

//  Removes that binding. Returns 1 if removed, 0 if there was none.
int arb_amqp_model_unbind (arb_amqp_exchange_t *source,
                           const char *dest,
                           bool dest_exchange,
                           const char *key,
                           amqp_table_t *args);

//  Calls fn with the record key of every binding to dest (a queue, or an
//  exchange if dest_exchange), and of every binding from it if it is an
//  exchange: the records to delete with it.
void arb_amqp_model_binding_keys (arb_amqp_vhost_t *vhost,
                                  const char *dest,
                                  bool dest_exchange,
                                  void (*fn) (void *arg, const char *key),
                                  void *arg);

//  Whether exchange has bindings from it (if_unused of exchange.delete).
bool arb_amqp_model_exchange_in_use (arb_amqp_exchange_t *exchange);

//  An auto-delete exchange of vhost that had bindings from it and has
//  none left (to delete, as RabbitMQ does), or NULL. Borrowed.
arb_amqp_exchange_t *arb_amqp_model_spent_exchange (arb_amqp_vhost_t *vhost);

//  The queues a message reaches: borrowed, each once, in the order found.
//  Its owner keeps one and empties it (n = 0) after each message, so that
//  routing allocates nothing once the array has grown (a list node per
//  queue a message reached, before).
typedef struct {
    arb_amqp_queue_t **v;  //  owned array
    size_t n, capacity;
} arb_amqp_targets_t;

//  Frees the array (the queues are not the targets').
void arb_amqp_targets_fini (arb_amqp_targets_t *self);

//  Takes out the queue at index i, keeping the others' order.
void arb_amqp_targets_remove (arb_amqp_targets_t *self, size_t i);

//  Routes a message published to exchange with routing key and headers
//  (NULL: none): adds each queue it reaches, once, to targets (give them
//  empty). Returns the number of queues.
size_t arb_amqp_model_route (arb_amqp_exchange_t *exchange,
                             const char *key,
                             const amqp_table_t *headers,
                             arb_amqp_targets_t *targets);

//  The same with nkeys routing keys (the publish's, and those its CC and
//  BCC headers add, as RabbitMQ's sender-selected distribution): a direct
//  or topic binding (and the default exchange) takes the message if any
//  key matches it; each queue is reached once all the same.
size_t arb_amqp_model_route_keys (arb_amqp_exchange_t *exchange,
                                  const char *const *keys,
                                  size_t nkeys,
                                  const amqp_table_t *headers,
                                  arb_amqp_targets_t *targets);

//  Whether routing key matches a topic binding key.
bool arb_amqp_model_topic_match (const char *pattern, const char *key);

//  ---------------------------------------------------------------------
//  Records in the broker's metadata store.

//  The key of an exchange's, a queue's, or (dest given) a binding's record
//  into buf. Returns buf.
char *arb_amqp_model_exchange_key (arb_amqp_exchange_t *exchange, char *buf, size_t size);
char *arb_amqp_model_queue_key (arb_amqp_queue_t *queue, char *buf, size_t size);
char *arb_amqp_model_binding_key (arb_amqp_exchange_t *source,
                                  const char *dest,
                                  bool dest_exchange,
                                  const char *key,
                                  amqp_table_t *args,
                                  char *buf,
                                  size_t size);

//  The record of an exchange, a queue or a binding (owned by the caller).
zchunk_t *arb_amqp_model_exchange_record (arb_amqp_exchange_t *exchange);
zchunk_t *arb_amqp_model_queue_record (arb_amqp_queue_t *queue);
zchunk_t *arb_amqp_model_binding_record (arb_amqp_exchange_t *source,
                                         const char *dest,
                                         bool dest_exchange,
                                         const char *key,
                                         amqp_table_t *args);

//  Loads one record read back from the store. Returns 0, or -1 if it is
//  not one (logged and skipped by the caller). Records of vhosts not
//  configured are skipped (0). Bindings may come before what they bind:
//  call arb_amqp_model_load_done after the last record.
int
arb_amqp_model_load (arb_amqp_model_t *self, const char *key, const uint8_t *value, size_t size);

//  Resolves the bindings loaded; drops those whose source or destination
//  is missing. Returns how many were dropped.
size_t arb_amqp_model_load_done (arb_amqp_model_t *self);

//  Calls fn for every queue of every vhost (for start-up clean-up).
void arb_amqp_model_each_queue (arb_amqp_model_t *self,
                                void (*fn) (void *arg, arb_amqp_queue_t *queue),
                                void *arg);

//  Calls fn for every exchange of every vhost, built-in ones too; fn may
//  remove exchanges (for start-up clean-up).
void arb_amqp_model_each_exchange (arb_amqp_model_t *self,
                                   void (*fn) (void *arg, arb_amqp_exchange_t *exchange),
                                   void *arg);

#endif
