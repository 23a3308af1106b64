/*  arb_amqp_model.c — the model and its vhosts, and the arguments
    tables its parts keep encoded; see arb_amqp_model.h.

    A vhost holds its exchanges and queues in hash tables by name; an
    exchange holds the bindings that leave it. Arguments tables are kept
    encoded (rabbitmq-c's table codec, length prefix included) and decoded
    into a scratch pool when needed: only headers routing and equivalence
    checks read them.

    The model's other parts are files of their own that share
    arb_amqp_model_priv.h (which lists them).
*/

#include "arb_amqp_model_priv.h"
#include "arb_proto.h"

//  ---------------------------------------------------------------------
//  Tables

zchunk_t *
arb_amqp_model_encode_args (amqp_table_t *args)
{
    amqp_table_t empty = {0, NULL};
    if (!args)
        args = &empty;
    size_t cap = 4096;
    for (;;) {
        uint8_t *buf = (uint8_t *) malloc (cap);
        assert (buf);
        int n = arb_amqp_frame_encode_table (args, buf, cap);
        if (n >= 0) {
            zchunk_t *chunk = zchunk_new (buf, (size_t) n);
            free (buf);
            return chunk;
        }
        free (buf);
        if (cap >= (1u << 20))
            return zchunk_new ("\0\0\0\0", 4);
        cap *= 4;
    }
}

int
arb_amqp_model_decode_args (zchunk_t *chunk, amqp_pool_t *pool, amqp_table_t *table)
{
    size_t size = zchunk_size (chunk);
    if (size < 4)
        return -1;
    return arb_amqp_frame_table (zchunk_data (chunk) + 4, size - 4, pool, table);
}

bool
arb_amqp_model_same_args (zchunk_t *stored, amqp_table_t *args)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t table;
    amqp_table_t empty = {0, NULL};
    bool same = arb_amqp_model_decode_args (stored, &pool, &table) == 0
                && arb_amqp_table_equal (&table, args ? args : &empty);
    empty_amqp_pool (&pool);
    return same;
}

//  ---------------------------------------------------------------------
//  Model and vhosts

static void
s_exchange_destructor (void **item)
{
    arb_amqp_exchange_t *exchange = (arb_amqp_exchange_t *) *item;
    if (!exchange)
        return;
    zlistx_destroy (&exchange->bindings);
    zchunk_destroy (&exchange->args);
    free (exchange->alternate);
    free (exchange->name);
    free (exchange);
    *item = NULL;
}

static void
s_queue_destructor (void **item)
{
    arb_amqp_queue_t *queue = (arb_amqp_queue_t *) *item;
    if (!queue)
        return;
    arb_amqp_model_free_qargs (&queue->settings);
    zchunk_destroy (&queue->args);
    zlistx_destroy (&queue->sac);
    zlistx_destroy (&queue->ranks);
    free (queue->name);
    free (queue->broker);
    free (queue);
    *item = NULL;
}

static void
s_vhost_destructor (void **item)
{
    arb_amqp_vhost_t *vhost = (arb_amqp_vhost_t *) *item;
    if (!vhost)
        return;
    zhashx_destroy (&vhost->exchanges);
    zhashx_destroy (&vhost->queues);
    free (vhost->name);
    free (vhost->prefix);
    free (vhost);
    *item = NULL;
}

static void
s_pending_destructor (void **item)
{
    arb_amqp_pending_t *pending = (arb_amqp_pending_t *) *item;
    if (!pending)
        return;
    free (pending->vhost);
    free (pending->source);
    arb_amqp_binding_destroy (&pending->binding);
    free (pending);
    *item = NULL;
}

arb_amqp_model_t *
arb_amqp_model_new (void)
{
    arb_amqp_model_t *self = (arb_amqp_model_t *) zmalloc (sizeof (arb_amqp_model_t));
    self->vhosts = zhashx_new ();
    zhashx_set_destructor (self->vhosts, s_vhost_destructor);
    self->pending = zlistx_new ();
    zlistx_set_destructor (self->pending, s_pending_destructor);
    return self;
}

void
arb_amqp_model_destroy (arb_amqp_model_t **self_p)
{
    arb_amqp_model_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->vhosts);
    zlistx_destroy (&self->pending);
    free (self);
    *self_p = NULL;
}

int
arb_amqp_model_add_vhost (arb_amqp_model_t *self, const char *name)
{
    if (!*name || strchr (name, '|') || zhashx_lookup (self->vhosts, name))
        return -1;
    arb_amqp_vhost_t *vhost = (arb_amqp_vhost_t *) zmalloc (sizeof (arb_amqp_vhost_t));
    vhost->name = strdup (name);
    vhost->prefix = streq (name, "/") ? strdup ("") : zsys_sprintf ("%s|", name);
    vhost->exchanges = zhashx_new ();
    zhashx_set_destructor (vhost->exchanges, s_exchange_destructor);
    vhost->queues = zhashx_new ();
    zhashx_set_destructor (vhost->queues, s_queue_destructor);
    zhashx_insert (self->vhosts, name, vhost);
    static const struct {
        const char *name;
        arb_amqp_type_t type;
    } builtin[] = {{"", ARB_AMQP_DIRECT},
                   {"amq.direct", ARB_AMQP_DIRECT},
                   {"amq.fanout", ARB_AMQP_FANOUT},
                   {"amq.topic", ARB_AMQP_TOPIC},
                   {"amq.headers", ARB_AMQP_HEADERS},
                   {"amq.match", ARB_AMQP_HEADERS}};
    for (size_t i = 0; i < sizeof (builtin) / sizeof (builtin[0]); i++) {
        arb_amqp_exchange_t *exchange = arb_amqp_model_add_exchange (
            vhost, builtin[i].name, builtin[i].type, true, false, false, NULL);
        exchange->builtin = true;
    }
    return 0;
}

arb_amqp_vhost_t *
arb_amqp_model_vhost (arb_amqp_model_t *self, const char *name)
{
    return (arb_amqp_vhost_t *) zhashx_lookup (self->vhosts, name);
}

const char *
arb_amqp_vhost_name (arb_amqp_vhost_t *vhost)
{
    return vhost->name;
}

char *
arb_amqp_model_broker_name (arb_amqp_vhost_t *vhost, const char *name)
{
    if (!strpbrk (name, "@|"))
        return zsys_sprintf ("%s%s", vhost->prefix, name);
    size_t prefix = strlen (vhost->prefix);
    char *out = (char *) zmalloc (prefix + 8 + 3 * strlen (name) + 1);
    char *at = out + sprintf (out, "%samq.esc:", vhost->prefix);
    for (const char *c = name; *c; c++)
        if (*c == '@' || *c == '|' || *c == '%')
            at += sprintf (at, "%%%02X", (unsigned char) *c);
        else
            *at++ = *c;
    *at = 0;
    return out;
}

int
arb_amqp_model_check_name (
    arb_amqp_vhost_t *vhost, const char *name, bool queue, char *why, size_t size)
{
    size_t len = strlen (name);
    if (len && arb_name_check (name, len, why, size) != 0)
        return -1;
    if (queue) {
        char *broker = arb_amqp_model_broker_name (vhost, name);
        size_t over = strlen (broker) - len;  //  the prefix, and the escapes of '@'
        free (broker);
        if (over + len > ARB_NAME_MAX) {
            snprintf (why, size, "queue name of %zu bytes is over the %d-byte limit", len,
                      (int) (ARB_NAME_MAX - over));
            return -1;
        }
    }
    return 0;
}

void
arb_amqp_model_each_queue (arb_amqp_model_t *self,
                           void (*fn) (void *arg, arb_amqp_queue_t *queue),
                           void *arg)
{
    for (arb_amqp_vhost_t *vhost = (arb_amqp_vhost_t *) zhashx_first (self->vhosts); vhost;
         vhost = (arb_amqp_vhost_t *) zhashx_next (self->vhosts)) {
        //  fn may remove the queue: walk a copy of the list
        zlistx_t *queues = zhashx_values (vhost->queues);
        zlistx_set_destructor (queues, NULL);
        for (void *q = zlistx_first (queues); q; q = zlistx_next (queues))
            fn (arg, (arb_amqp_queue_t *) q);
        zlistx_destroy (&queues);
    }
}

void
arb_amqp_model_each_exchange (arb_amqp_model_t *self,
                              void (*fn) (void *arg, arb_amqp_exchange_t *exchange),
                              void *arg)
{
    for (arb_amqp_vhost_t *vhost = (arb_amqp_vhost_t *) zhashx_first (self->vhosts); vhost;
         vhost = (arb_amqp_vhost_t *) zhashx_next (self->vhosts)) {
        //  fn may remove the exchange (and others, auto-deleted): walk the
        //  names, and look each up again
        zlistx_t *names = zhashx_keys (vhost->exchanges);
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names)) {
            arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (vhost, name);
            if (exchange)
                fn (arg, exchange);
        }
        zlistx_destroy (&names);
    }
}
