/*  arb_kestrel.h — the gateway's Kestrel server: programs written for
    Kestrel (the memcache text protocol) use arbiter's queues unchanged.

    The server owns a TCP listener, its connections (arb_kestrel_conn),
    and a record per queue in use (waiting gets, the consumer that serves
    them, fan-out children). It runs on the gateway's reactor and reaches
    the broker only through the gateway (docs/gateway.md, "Kestrel"):

        set q               a task of queue q (batched per turn), one more
                            per fan-out child of q, STORED after SUBMITTED
        get q               TAKE (one per queue per turn for every get of
                            the turn), completed at once
        get q/open          the task stays leased to the connection until
                            /close (complete) or /abort, or the connection
                            ends (release: back to the head)
        get q/t=MS          a waiter served by the queue's consumer, whose
                            credit is the number of waiters
        get q/peek          PEEK (with t=: a waiter whose task is given
                            back at once)
        delete              QUEUE delete (also forgets a fan-out child)
        flush               QUEUE purge
        stats, flush_all    every page of STATS, then per queue as above
        any set, get, flush QUEUE declare of the queue, once per session

    Fan-out children (`parent+child`) are kept in the broker's metadata
    under queue@<parent>@gw.kestrel.fanout.<child> (so that deleting the
    parent removes them), loaded when the session first comes up; until
    then `set` and `delete` answer SERVER_ERROR.

    Runs in the reactor's thread; not thread-safe.
*/

#ifndef ARB_KESTREL_H
#define ARB_KESTREL_H

#include "arb_defaults.h"
#include "arb_gateway.h"

#define ARB_KESTREL_OPEN_MAX     256    //  items open on one connection (one per queue)
#define ARB_KESTREL_CHILDREN_MAX 10000  //  fan-out children, all parents together
//  A fan-out child's record: queue@PARENT@gw.kestrel.fanout.CHILD; and the
//  key of the form before (gw.kestrel.fanout.CHILD), moved there at start.
#define ARB_KESTREL_CHILD_MARK "@gw.kestrel.fanout."
#define ARB_KESTREL_OLD_PREFIX "gw.kestrel.fanout."

typedef struct _arb_kestrel_t arb_kestrel_t;

typedef struct {
    const char *bind;             //  "HOST:PORT" (port 0: any free one)
    size_t max_item;              //  bytes of one item at most
    size_t max_connections;       //  clients at once; more are refused
    uint64_t request_timeout_ms;  //  a command arrives within this of its first byte (0: any)
    uint64_t idle_timeout_ms;     //  an idle connection is closed after this long (0: never)
    bool allow_shutdown;          //  the shutdown command stops the gateway
    bool bare_value_key;          //  VALUE lines name the queue (as Kestrel), not the key asked
    uint64_t retention_ms;        //  an item's task is kept this long once ended (0: the broker's)
    arb_defaults_t *defaults;     //  borrowed [queue.NAME] settings (over retention_ms), or NULL
} arb_kestrel_config_t;

//  Listens on config->bind and serves on the gateway's loop (the config
//  is copied). NULL after logging why (a bad address, a port in use).
arb_kestrel_t *arb_kestrel_new (arb_gateway_t *gateway, const arb_kestrel_config_t *config);

//  Closes the listener and every connection (items still open go back to
//  the head of their queues). Accepts NULL; nulls *self_p.
void arb_kestrel_destroy (arb_kestrel_t **self_p);

//  The port listened on.
int arb_kestrel_port (arb_kestrel_t *self);

#endif
