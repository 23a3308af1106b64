/*  arb_amqp_binding.c — the model's bindings: binding and unbinding, a
    binding found by its identity (destination, key, arguments), and the
    records to delete with a queue or an exchange; see arb_amqp_model.h.

    A binding is kept by its source exchange, in the order made; its
    destination is a name, looked up when a message is routed
    (arb_amqp_routing.c), so a queue or an exchange removed takes the
    bindings to it along (arb_amqp_model_unbind_all). Pure memory, one
    thread.
*/

#include "arb_amqp_model_priv.h"

void
arb_amqp_binding_destroy (arb_amqp_binding_t **binding_p)
{
    arb_amqp_binding_t *binding = *binding_p;
    if (!binding)
        return;
    free (binding->dest);
    free (binding->key);
    zchunk_destroy (&binding->args);
    free (binding);
    *binding_p = NULL;
}

void
arb_amqp_binding_destructor (void **item)
{
    arb_amqp_binding_destroy ((arb_amqp_binding_t **) item);
}

static arb_amqp_binding_t *
s_binding_find (arb_amqp_exchange_t *source,
                const char *dest,
                bool dest_exchange,
                const char *key,
                amqp_table_t *args)
{
    for (arb_amqp_binding_t *b = (arb_amqp_binding_t *) zlistx_first (source->bindings); b;
         b = (arb_amqp_binding_t *) zlistx_next (source->bindings))
        if (b->dest_exchange == dest_exchange && streq (b->dest, dest) && streq (b->key, key)
            && arb_amqp_model_same_args (b->args, args))
            return b;
    return NULL;
}

arb_amqp_binding_t *
arb_amqp_binding_new (const char *dest, bool dest_exchange, const char *key, zchunk_t *args)
{
    arb_amqp_binding_t *binding = (arb_amqp_binding_t *) zmalloc (sizeof (arb_amqp_binding_t));
    binding->dest = strdup (dest);
    binding->dest_exchange = dest_exchange;
    binding->key = strdup (key);
    binding->args = args;
    return binding;
}

void
arb_amqp_model_unbind_all (arb_amqp_vhost_t *vhost, const char *dest, bool dest_exchange)
{
    for (arb_amqp_exchange_t *x = (arb_amqp_exchange_t *) zhashx_first (vhost->exchanges); x;
         x = (arb_amqp_exchange_t *) zhashx_next (vhost->exchanges)) {
        arb_amqp_binding_t *b = (arb_amqp_binding_t *) zlistx_first (x->bindings);
        while (b) {
            arb_amqp_binding_t *next = (arb_amqp_binding_t *) zlistx_next (x->bindings);
            if (b->dest_exchange == dest_exchange && streq (b->dest, dest)) {
                //  by its handle (a NULL handle would delete the first)
                zlistx_delete (x->bindings, zlistx_find (x->bindings, b));
                if (next)
                    zlistx_find (x->bindings, next);
            }
            b = next;
        }
    }
}

int
arb_amqp_model_bind (arb_amqp_exchange_t *source,
                     const char *dest,
                     bool dest_exchange,
                     const char *key,
                     amqp_table_t *args)
{
    if (s_binding_find (source, dest, dest_exchange, key, args))
        return 0;
    source->had_binding = true;
    zlistx_add_end (source->bindings, arb_amqp_binding_new (dest, dest_exchange, key,
                                                            arb_amqp_model_encode_args (args)));
    return 1;
}

bool
arb_amqp_model_bound (arb_amqp_exchange_t *source,
                      const char *dest,
                      bool dest_exchange,
                      const char *key,
                      amqp_table_t *args)
{
    return s_binding_find (source, dest, dest_exchange, key, args) != NULL;
}

int
arb_amqp_model_unbind (arb_amqp_exchange_t *source,
                       const char *dest,
                       bool dest_exchange,
                       const char *key,
                       amqp_table_t *args)
{
    arb_amqp_binding_t *binding = s_binding_find (source, dest, dest_exchange, key, args);
    if (!binding)
        return 0;
    zlistx_delete (source->bindings, zlistx_find (source->bindings, binding));
    return 1;
}

//  The record key of binding b from source.
static void
s_binding_key (arb_amqp_exchange_t *source, arb_amqp_binding_t *b, char *buf, size_t size)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t table = {0, NULL};
    arb_amqp_model_decode_args (b->args, &pool, &table);
    arb_amqp_model_binding_key (source, b->dest, b->dest_exchange, b->key, &table, buf, size);
    empty_amqp_pool (&pool);
}

void
arb_amqp_model_binding_keys (arb_amqp_vhost_t *vhost,
                             const char *dest,
                             bool dest_exchange,
                             void (*fn) (void *arg, const char *key),
                             void *arg)
{
    char key[800];
    for (arb_amqp_exchange_t *x = (arb_amqp_exchange_t *) zhashx_first (vhost->exchanges); x;
         x = (arb_amqp_exchange_t *) zhashx_next (vhost->exchanges)) {
        bool from = dest_exchange && streq (x->name, dest);
        for (arb_amqp_binding_t *b = (arb_amqp_binding_t *) zlistx_first (x->bindings); b;
             b = (arb_amqp_binding_t *) zlistx_next (x->bindings))
            if (from || (b->dest_exchange == dest_exchange && streq (b->dest, dest))) {
                s_binding_key (x, b, key, sizeof (key));
                fn (arg, key);
            }
    }
}
