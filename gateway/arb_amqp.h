/*  arb_amqp.h — the gateway's AMQP 0-9-1 server: programs written for
    RabbitMQ (pika, amqplib, rabbitmq-c, ...) publish to and consume from
    arbiter's queues without a line changed.

    One listener on the gateway's reactor accepts connections; each is a
    state machine (arb_amqp_conn.c) with its channels (arb_amqp_channel.c)
    over a byte stream (arb_stream). Exchanges, queues and bindings
    (arb_amqp_model) live in the broker's metadata store and are loaded
    when the broker session first comes up and this gateway holds the
    broker's AMQP claim (one gateway serves AMQP for a broker; another
    stands by: arb_amqp_claim.c); until then connections wait at
    connection.open. docs/gateway.md ("AMQP") tells the mapping to the
    broker.

    Runs in the reactor's thread.
*/

#ifndef ARB_AMQP_H
#define ARB_AMQP_H

#include "arb_defaults.h"
#include "arb_gateway.h"

typedef struct _arb_amqp_t arb_amqp_t;

typedef struct {
    const char *listen;        //  "HOST:PORT"
    uint32_t frame_max;        //  proposed in connection.tune, bytes (>= 4096)
    uint16_t channel_max;      //  proposed in connection.tune
    uint16_t heartbeat;        //  proposed in connection.tune, seconds (0: none)
    size_t max_connections;    //  connections open at once (>= 1); more are refused (530)
    size_t max_payload;        //  largest message body, bytes (the broker's limit)
    const char *vhosts;        //  comma-separated vhost names; NULL: "/"
    uint64_t retention_ms;     //  a message's task is kept this long once ended (0: the broker's)
    arb_defaults_t *defaults;  //  borrowed [queue.NAME] settings (over retention_ms), or NULL
} arb_amqp_config_t;

//  The checks of config that arb_amqp_new makes before it listens (the
//  vhost names, the addresses' form: arb_listener_check), for
//  --check-config. 0, or -1 after logging why. Binds nothing.
int arb_amqp_config_check (const arb_amqp_config_t *config);

//  Listens on config->listen. NULL after logging why (a bad address, a
//  port in use, a bad vhost name). gateway is borrowed.
arb_amqp_t *arb_amqp_new (arb_gateway_t *gateway, const arb_amqp_config_t *config);

//  Closes every connection (320 CONNECTION_FORCED first) and the listener.
//  Accepts NULL; nulls *self_p.
void arb_amqp_destroy (arb_amqp_t **self_p);

//  Whether another gateway took the AMQP claim over while this one held
//  it (arb_amqp_claim.c): the reactor was stopped, and the gateway exits
//  with an error, so that two never serve AMQP for one broker.
bool arb_amqp_stepped_down (arb_amqp_t *self);

//  Whether the comma-separated list vhosts (blanks before a name skipped)
//  names vhost.
bool arb_amqp_vhosts_name (const char *vhosts, const char *vhost);

//  Adds a user who may log in (PLAIN, AMQPLAIN) with password to the
//  vhosts named (comma-separated; NULL or "*": every vhost). Without any
//  user, guest/guest is the one user; a user named guest logs in from
//  loopback addresses only, as with RabbitMQ. 0, or -1 if the name is
//  empty or already added, or password is NULL (never taken as empty).
int
arb_amqp_add_user (arb_amqp_t *self, const char *name, const char *password, const char *vhosts);

//  The port listened on (useful with port 0).
int arb_amqp_port (arb_amqp_t *self);

#endif
