/*  arb_amqp_exchange.c — the model's exchanges: their types, declaring
    one (with its alternate exchange), the one argument RabbitMQ compares
    when one is declared again, removing one, and the auto-delete
    exchanges whose last binding went; see arb_amqp_model.h.

    An exchange owns the bindings that leave it (arb_amqp_binding.c);
    removing one removes the bindings to it as well. Pure memory, one
    thread.
*/

#include "arb_amqp_model_priv.h"

static const char *s_type_names[] = {"direct", "fanout", "topic", "headers"};

int
arb_amqp_model_type (const char *name, arb_amqp_type_t *type)
{
    for (int i = 0; i < 4; i++)
        if (streq (name, s_type_names[i])) {
            *type = (arb_amqp_type_t) i;
            return 0;
        }
    return -1;
}

const char *
arb_amqp_model_type_name (arb_amqp_type_t type)
{
    return s_type_names[type];
}

arb_amqp_exchange_t *
arb_amqp_model_exchange (arb_amqp_vhost_t *vhost, const char *name)
{
    return (arb_amqp_exchange_t *) zhashx_lookup (vhost->exchanges, name);
}

arb_amqp_exchange_t *
arb_amqp_model_add_exchange (arb_amqp_vhost_t *vhost,
                             const char *name,
                             arb_amqp_type_t type,
                             bool durable,
                             bool auto_delete,
                             bool internal,
                             amqp_table_t *args)
{
    arb_amqp_exchange_t *exchange = (arb_amqp_exchange_t *) zmalloc (sizeof (arb_amqp_exchange_t));
    exchange->vhost = vhost;
    exchange->name = strdup (name);
    exchange->type = type;
    exchange->durable = durable;
    exchange->auto_delete = auto_delete;
    exchange->internal = internal;
    exchange->args = arb_amqp_model_encode_args (args);
    //  RabbitMQ's alternate exchange: where what this exchange routes
    //  nowhere goes (a string; one of another type is no exchange name,
    //  and routes nowhere, as there)
    const amqp_field_value_t *alternate =
        args ? arb_amqp_table_get (args, "alternate-exchange") : NULL;
    if (alternate
        && (alternate->kind == AMQP_FIELD_KIND_UTF8 || alternate->kind == AMQP_FIELD_KIND_BYTES)) {
        exchange->alternate = (char *) zmalloc (alternate->value.bytes.len + 1);
        memcpy (exchange->alternate, alternate->value.bytes.bytes, alternate->value.bytes.len);
    }
    exchange->bindings = zlistx_new ();
    zlistx_set_destructor (exchange->bindings, arb_amqp_binding_destructor);
    zhashx_update (vhost->exchanges, name, exchange);
    return exchange;
}

bool
arb_amqp_model_same_alternate (arb_amqp_exchange_t *exchange,
                               amqp_table_t *args,
                               char *values,
                               size_t size)
{
    const amqp_field_value_t *alternate =
        args ? arb_amqp_table_get (args, "alternate-exchange") : NULL;
    amqp_field_value_t current = {AMQP_FIELD_KIND_UTF8, {.bytes = {0, exchange->alternate}}};
    if (exchange->alternate)
        current.value.bytes.len = strlen (exchange->alternate);
    bool same;
    if (!alternate || !exchange->alternate)
        same = !alternate && !exchange->alternate;
    else {
        amqp_bytes_t v = alternate->value.bytes;
        //  a string and a byte array of the same bytes are one value
        same = (alternate->kind == AMQP_FIELD_KIND_UTF8 || alternate->kind == AMQP_FIELD_KIND_BYTES)
               && v.len == current.value.bytes.len
               && (v.len == 0 || memcmp (v.bytes, exchange->alternate, v.len) == 0);
    }
    if (!same)
        arb_amqp_model_inequivalent (exchange->alternate ? &current : NULL, alternate, values,
                                     size);
    return same;
}

void
arb_amqp_model_remove_exchange (arb_amqp_exchange_t *exchange)
{
    arb_amqp_vhost_t *vhost = exchange->vhost;
    char *name = strdup (exchange->name);
    zhashx_delete (vhost->exchanges, name);
    arb_amqp_model_unbind_all (vhost, name, true);
    free (name);
}

bool
arb_amqp_model_exchange_in_use (arb_amqp_exchange_t *exchange)
{
    return zlistx_size (exchange->bindings) > 0;
}

arb_amqp_exchange_t *
arb_amqp_model_spent_exchange (arb_amqp_vhost_t *vhost)
{
    for (arb_amqp_exchange_t *x = (arb_amqp_exchange_t *) zhashx_first (vhost->exchanges); x;
         x = (arb_amqp_exchange_t *) zhashx_next (vhost->exchanges))
        if (x->auto_delete && !x->builtin && x->had_binding && zlistx_size (x->bindings) == 0)
            return x;
    return NULL;
}
