/*  arb_kestrel_priv.h — the Kestrel server's records, shared by its three
    files and nothing else:

        arb_kestrel.c        the server: listener, clients, commands, sets,
                             fan-out children, declarations
        arb_kestrel_get.c    queue records and gets: TAKEs, waiters, the
                             prefetched items, open items, peeks
        arb_kestrel_admin.c  delete, flush, flush_all, stats; the turns of
                             the listings (stats, flush_all)

    Records. A client (arb_kestrel_client_t) is the server's side of one
    connection: the items it holds open, its sets in flight, and its one
    other command in flight (arb_kestrel_op_t: a get being served, or an
    admin command waiting for the broker). A queue record exists while
    something uses it (pins: gets, TAKEs in flight, open items; waiters,
    a consumer, prefetched items, fan-out children), so the server's
    memory follows its clients' activity, not the number of queue names
    ever seen.

    Not for use outside arb_kestrel*.c.
*/

#ifndef ARB_KESTREL_PRIV_H
#define ARB_KESTREL_PRIV_H

#include "arb_idmap.h"
#include "arb_kestrel.h"
#include "arb_kestrel_conn.h"
#include "arb_listener.h"
#include "arb_loglimit.h"
#include "arb_stats_pages.h"
#include "arb_turns.h"

//  What version answers: the Kestrel release whose protocol the gateway
//  speaks, then the gateway's own; stats says the first as "version" (a
//  value of one word, as clients split it) and the second as
//  "arbiter_version". memcached clients built on libmemcached (its tools,
//  pylibmc, PHP's memcached) refuse a server whose major version reads 0,
//  which the gateway's own version alone would be.
#define ARB_KESTREL_PROTOCOL        "2.4.1"
#define ARB_KESTREL_VERSION_TEXT    ARB_KESTREL_PROTOCOL " arbiter-gateway/" ARB_VERSION
#define ARB_KESTREL_REFUSALS_LOGGED 5  //  connections refused at the limit, logged a second

#define ARB_KESTREL_PREFETCH        256   //  items a busy queue keeps leased ahead of its gets
#define ARB_KESTREL_PREFETCH_FIRST  16    //  items ahead until the queue's items are seen
#define ARB_KESTREL_PREFETCH_ITEM   4096  //  bytes: a queue with larger items prefetches none
#define ARB_KESTREL_PREFETCH_QUEUES 32  //  queues prefetching at once (8,192 items, 32 MiB at most)
#define ARB_KESTREL_IDLE_MS         500     //  a queue without gets this long gives its items back
#define ARB_KESTREL_DECLARED_MAX    100000  //  queue names remembered as declared (then forgotten)
#define ARB_KESTREL_ASKING          4  //  listings (stats, flush_all) asking the broker at once

typedef struct _arb_kestrel_queue_t arb_kestrel_queue_t;
typedef struct _arb_kestrel_client_t arb_kestrel_client_t;
typedef struct _arb_kestrel_take_t arb_kestrel_take_t;

//  A fan-out child of a queue.
typedef struct {
    char *name;                   //  owned: parent+child
    arb_kestrel_queue_t *parent;  //  borrowed
    bool stored;                  //  recorded in the broker's metadata
    uint32_t reqid;               //  its META set, or the claim of its old record, in flight; or 0
} arb_kestrel_child_t;

//  What an item carries beside its payload: its set's flags and expiry
//  (from the task's headers), and the task's creation.
typedef struct {
    uint32_t flags;
    uint64_t expires_ms;  //  the set's exptime, wall clock; 0: never
    uint64_t created_ms;  //  the task's, broker's wall clock
} arb_kestrel_tags_t;

//  A task leased ahead of the gets (the head of its queue, in order).
typedef struct _arb_kestrel_item_t {
    struct _arb_kestrel_item_t *next;
    struct _arb_kestrel_item_t *prev;
    arb_kestrel_queue_t *queue;  //  borrowed
    uint64_t id;
    arb_kestrel_tags_t tags;
    zframe_t *payload;  //  owned
} arb_kestrel_item_t;

struct _arb_kestrel_queue_t {
    arb_kestrel_t *server;
    char *name;                       //  owned
    size_t pins;                      //  uses: gets, TAKEs in flight, open items
    zlistx_t *children;               //  owned arb_kestrel_child_t, or NULL
    arb_kestrel_client_t *wait_head;  //  waiters, oldest first (linked through their op)
    arb_kestrel_client_t *wait_tail;
    size_t waiters;
    uint32_t sub;               //  the consumer serving waiters and prefetch, or 0
    size_t prefetch;            //  items to keep leased ahead (0, _PREFETCH_FIRST or _PREFETCH)
    arb_kestrel_item_t *items;  //  owned, prefetched, oldest first
    arb_kestrel_item_t *items_tail;
    size_t item_count;
    size_t largest;                 //  bytes of the largest item seen
    uint64_t last_get_ms;           //  reactor time of the last get
    arb_timer_t idle;               //  prefetching: when to look for idleness
    arb_kestrel_client_t **takers;  //  owned array of borrowed clients: gets of this turn
    size_t taker_count;
    size_t taker_cap;
    size_t opens;  //  items open on it through this server
};

//  One TAKE in flight for the takers of a turn.
struct _arb_kestrel_take_t {
    void *handle;  //  in the server's takes
    uint32_t reqid;
    arb_kestrel_queue_t *queue;      //  pinned
    arb_kestrel_client_t **clients;  //  owned array; an entry is NULL once its client left
    size_t n;
};

//  An item open on a connection.
typedef struct _arb_kestrel_open_t {
    struct _arb_kestrel_open_t *next;
    arb_kestrel_client_t *client;  //  borrowed: its holder
    arb_kestrel_queue_t *queue;    //  pinned
    uint64_t id;                   //  the task
    arb_kestrel_tags_t tags;
    zframe_t *payload;  //  owned copy for an abort (see s_deliver), or NULL
} arb_kestrel_open_t;

//  A set in flight: its task and its fan-out copies.
typedef struct _arb_kestrel_set_t {
    struct _arb_kestrel_set_t *next;
    struct _arb_kestrel_set_t *prev;
    arb_kestrel_client_t *client;
    uint64_t slot;
    size_t outstanding;  //  tasks not answered yet
    size_t n;            //  tickets
    uint64_t *tickets;   //  owned (0: refused alone)
    char why[256];       //  the first failure, if any
    bool full;           //  its queue is full (overflow reject): the item was refused
} arb_kestrel_set_t;

typedef enum {
    ARB_KESTREL_OP_NONE,
    ARB_KESTREL_OP_TURN,   //  one of its queue's takers of this turn
    ARB_KESTREL_OP_TAKE,   //  in a TAKE in flight (op.take; NULL once answered)
    ARB_KESTREL_OP_WAIT,   //  a waiter of its queue
    ARB_KESTREL_OP_PEEK,   //  a PEEK in flight
    ARB_KESTREL_OP_ADMIN,  //  delete, flush, flush_all, stats: a request in flight
} arb_kestrel_op_kind_t;

//  The command in flight that is not a set (at most one per connection).
typedef struct {
    arb_kestrel_op_kind_t kind;
    arb_kestrel_verb_t verb;
    uint64_t slot;
    char key[ARB_KESTREL_KEY_MAX + 1];  //  echoed in VALUE
    size_t key_len;
    arb_kestrel_queue_t *queue;  //  pinned
    bool open;                   //  the task stays leased to the connection
    bool peek;                   //  the task goes back at once
    bool gets;                   //  asked as gets: the answer has a cas
    arb_timer_t timer;           //  a waiter's t=
    bool waiting;                //  in its queue's waiters
    arb_kestrel_client_t *wait_next;
    arb_kestrel_client_t *wait_prev;
    arb_kestrel_take_t *take;  //  the TAKE it is in (in flight), or NULL
    size_t take_index;
    uint32_t reqid;                  //  PEEK or admin request in flight
    char purging[ARB_NAME_MAX + 1];  //  delete, flush, flush_all: the queue asked about
    bool existed;                    //  delete: the broker knew the queue (counted if deleted)
    arb_stats_pages_t *stats;        //  owned: stats and flush_all's page of STATS
    bool more;                       //  flush_all: more pages after this one
    size_t next_queue;               //  flush_all: the next queue of the page to purge
    zmsg_t *lines;                   //  owned: stats: the queue lines of the pages so far
    uint64_t ready;                  //  stats: ready tasks of the queues listed so far
    arb_turn_t turn;                 //  a listing's: waiting, or asking
} arb_kestrel_op_t;

struct _arb_kestrel_client_t {
    arb_kestrel_t *server;
    arb_kestrel_conn_t *conn;
    void *handle;               //  in the server's clients
    arb_kestrel_open_t *opens;  //  owned
    size_t open_count;
    arb_kestrel_set_t *sets;  //  owned, in flight
    arb_kestrel_op_t op;
};

struct _arb_kestrel_t {
    arb_gateway_t *gateway;  //  borrowed
    arb_reactor_t *reactor;  //  borrowed
    arb_link_t *link;        //  borrowed
    arb_kestrel_config_t config;
    char *bind;                  //  owned copy of config.bind
    arb_listener_t *listener;    //  owned
    zlistx_t *clients;           //  owned arb_kestrel_client_t
    arb_loglimit_t refusals;     //  the connections refused at the limit, logged
    zhashx_t *queues;            //  name -> owned arb_kestrel_queue_t
    arb_idmap_t *opens;          //  task id -> borrowed arb_kestrel_open_t
    arb_idmap_t *items;          //  task id -> borrowed arb_kestrel_item_t (prefetched)
    zlistx_t *dirty;             //  borrowed queues with takers this turn
    zlistx_t *takes;             //  owned arb_kestrel_take_t in flight
    size_t prefetching;          //  queues with prefetch on
    bool children_loaded;        //  both loads done, no old record being moved
    int children_phase;          //  what is being listed (arb_kestrel.c, s_children_load)
    char *children_after;        //  owned: the last key listed, or NULL
    uint32_t children_reqid;     //  the META list in flight, or 0
    arb_timer_t children_timer;  //  loading them again after a failure
    size_t child_count;
    size_t moves;        //  old records being removed (META del in flight)
    zhashx_t *declared;  //  queue names declared in this session (values unused)
    arb_turns_t *turns;  //  owned: the listings' turns (at most ARB_KESTREL_ASKING ask)
    arb_stream_io_t io;
    uint64_t started_ms;  //  wall clock
    uint64_t total_connections, cmd_get, cmd_set, cmd_peek, get_hits, get_misses, total_items,
        queue_deletes, queue_creates;
};

//  arb_kestrel.c
//  Notes the use of a fan-out child named by cmd (a no-op for other
//  names). Returns 0, or -1 past ARB_KESTREL_CHILDREN_MAX.
int arb_kestrel_child_note (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd);
//  Forgets the fan-out child named by cmd, here and in the metadata.
void arb_kestrel_child_delete (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd);
//  A queue named by a client (set, get, flush) is declared at the broker,
//  once per queue and session (a no-op while the session is down).
void arb_kestrel_declare (arb_kestrel_t *self, const char *name, size_t len);
//  The broker deleted the queue: its fan-out children are forgotten here
//  (the broker removed their records with it), and it is declared again
//  when a client names it.
void arb_kestrel_queue_deleted (arb_kestrel_t *self, const char *name);

//  arb_kestrel_get.c
arb_kestrel_queue_t *arb_kestrel_queue_pin (arb_kestrel_t *self, const char *name, size_t len);
void arb_kestrel_queue_unpin (arb_kestrel_queue_t **queue_p);
//  Frees a record nothing uses any more (after its children went).
void arb_kestrel_queue_check (arb_kestrel_queue_t *queue);
//  zhashx destructor of the queue table.
void arb_kestrel_queue_free (void **item);
//  The broker purged (flush) or deleted the queue: its prefetched items
//  go, cancelled here after a purge (which leaves leased tasks alone),
//  and a deleted queue stops prefetching until its next get.
void arb_kestrel_queue_emptied (arb_kestrel_queue_t *queue, bool deleted);
void arb_kestrel_get (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot);
//  Ends the client's op (answered, or the client went away).
void arb_kestrel_op_end (arb_kestrel_client_t *client);
//  Gives the client's open items back to their queues.
void arb_kestrel_release_opens (arb_kestrel_client_t *client);

//  The client ended its side (EOF): a get waiting for an item (t=) ends
//  now with END, as at its wait's end, and later ones do not wait. An
//  EOF is also how a client that died looks: an item given to a wait
//  after it would be written to nobody, and a plain get's item is
//  completed when sent.
void arb_kestrel_end_wait (arb_kestrel_client_t *client);
void arb_kestrel_answer_error (arb_kestrel_client_t *client, const char *why);
const char *arb_kestrel_reason (arb_msg_t *reply);
int arb_kestrel_prepare (arb_reactor_t *reactor, void *arg);
void arb_kestrel_on_stop (void *arg, uint64_t id, int reason);
//  zlistx destructor of the takes in flight.
void arb_kestrel_take_free (void **item);

//  arb_kestrel_admin.c: delete, flush, flush_all, stats.
void arb_kestrel_admin (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot);
//  The client's listing starts, its turn come (the turns' start function).
void arb_kestrel_listing_start (void *item);
//  The client's listing ends (answered, or the client went away): its
//  turn goes to the next waiting, or it leaves the line.
void arb_kestrel_listing_leave (arb_kestrel_client_t *client);

#endif
