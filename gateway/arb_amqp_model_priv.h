/*  arb_amqp_model_priv.h — what the model's files share, and nothing
    else:

        arb_amqp_model.c     the model, its vhosts, freeing them; the
                             arguments tables kept encoded
        arb_amqp_exchange.c  exchanges
        arb_amqp_queue.c     queues and their x- arguments
        arb_amqp_binding.c   bindings
        arb_amqp_routing.c   a message routed to its queues
        arb_amqp_record.c    records in the broker's metadata store

    Exchanges and queues are public structs (arb_amqp_model.h); a vhost,
    the model itself and a binding are known only to these files. Not for
    use outside them.
*/

#ifndef ARB_AMQP_MODEL_PRIV_H
#define ARB_AMQP_MODEL_PRIV_H

#include "arb_amqp_model.h"

//  A binding from an exchange (in its bindings list, in the order made).
typedef struct {
    char *dest;  //  owned
    bool dest_exchange;
    char *key;       //  owned
    zchunk_t *args;  //  owned encoded table
} arb_amqp_binding_t;

//  A binding loaded before its source exists.
typedef struct {
    char *vhost;
    char *source;
    arb_amqp_binding_t *binding;
} arb_amqp_pending_t;

struct _arb_amqp_vhost_t {
    char *name;           //  owned
    char *prefix;         //  owned: "" for "/", else "NAME|"
    zhashx_t *exchanges;  //  name -> owned exchange
    zhashx_t *queues;     //  name -> owned queue
};

struct _arb_amqp_model_t {
    zhashx_t *vhosts;   //  name -> owned vhost
    zlistx_t *pending;  //  owned arb_amqp_pending_t, while loading
};

//  ---------------------------------------------------------------------
//  Shared by the model's files

//  An arguments table (NULL: none) encoded, length prefix included (an
//  empty table if it does not encode in 1 MiB). Owned by the caller.
zchunk_t *arb_amqp_model_encode_args (amqp_table_t *args);

//  Decodes an encoded table (with prefix) into pool. 0 or -1.
int arb_amqp_model_decode_args (zchunk_t *chunk, amqp_pool_t *pool, amqp_table_t *table);

//  The broker queue of an AMQP queue (arb_amqp_model.h), a fresh string.
char *arb_amqp_model_broker_name (arb_amqp_vhost_t *vhost, const char *name);

//  A binding (args: an encoded table, taken).
arb_amqp_binding_t *
arb_amqp_binding_new (const char *dest, bool dest_exchange, const char *key, zchunk_t *args);

//  Frees a binding; NULL is fine.
void arb_amqp_binding_destroy (arb_amqp_binding_t **binding_p);

//  The destructor of an exchange's bindings list.
void arb_amqp_binding_destructor (void **item);

//  How an argument's current value and the one received differ, as
//  RabbitMQ's 406 says it ("received 'x' but current is none"); either
//  may be NULL (absent).
void arb_amqp_model_inequivalent (const amqp_field_value_t *current,
                                  const amqp_field_value_t *received,
                                  char *values,
                                  size_t size);

//  Removes every binding to dest from every exchange of vhost.
void arb_amqp_model_unbind_all (arb_amqp_vhost_t *vhost, const char *dest, bool dest_exchange);

#endif
