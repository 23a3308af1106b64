/*  arb_bridges.h — the upstream RabbitMQ queues the gateway bridges into
    arbiter: the [bridge.NAME] sections of its config file, and one
    arb_bridge running for each.

    A section names one bridge. NAME is 1 to 64 letters, digits, '-' or
    '_' (it is part of the tasks' keys and of the bridge's records). Every
    key is optional:

        upstream        amqp://user:password@host:port/vhost of the RabbitMQ
                        (default: the gateway's --upstream)
        upstream-queue  the RabbitMQ queue consumed; it must exist
                        (default NAME)
        queue           the arbiter queue its tasks go to (default NAME)
        task            the tasks' name, the handler that runs them
                        (default NAME)
        prefetch        RabbitMQ messages taken and not acked yet, at most
                        (1 to 65535; default 100)
        max-pending     replies not published yet (one a task and reply
                        address), at most;
                        past it the bridge takes no more messages (1 to
                        100000; default 10000)
        priority, retries, timeout, retention, backoff, backoff-delay,
        backoff-cap, wait-for-endpoints-timeout
                        the tasks' options, as in a [queue.NAME] section
                        (arb_defaults.h); they override those of the
                        [queue.NAME] of the bridge's arbiter queue

    Loaded with the config file, in the loop's thread, before the gateway
    runs; started once the gateway is made.
*/

#ifndef ARB_BRIDGES_H
#define ARB_BRIDGES_H

#include "arb_defaults.h"
#include "arb_gateway.h"

#define ARB_BRIDGES_MAX 32  //  [bridge.NAME] sections at most

typedef struct _arb_bridges_t arb_bridges_t;

//  What every bridge shares (the gateway's settings).
typedef struct {
    const char *upstream;       //  the URL of a section without one (NULL: none)
    uint64_t reconnect_max_ms;  //  cap of the delay between upstream attempts
    size_t max_payload;         //  largest message body taken
    arb_defaults_t *defaults;   //  borrowed [queue.NAME] settings, or NULL
} arb_bridges_settings_t;

arb_bridges_t *arb_bridges_new (void);

//  Stops every bridge and frees the sections. Accepts NULL; nulls
//  *self_p.
void arb_bridges_destroy (arb_bridges_t **self_p);

//  An arb_options_section_fn: takes one key of a [bridge.NAME] section
//  (arg is the arb_bridges_t). 0, or -1 with why.
int arb_bridges_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size);

//  Number of sections.
size_t arb_bridges_size (arb_bridges_t *self);

//  The NAME of each section without an upstream key, in file order: a new
//  list that the caller destroys, of names borrowed from self.
zlist_t *arb_bridges_without_url (arb_bridges_t *self);

//  Starts a bridge for every section in the gateway's loop. A bridge that
//  cannot start (no upstream URL, one that does not parse) is logged and
//  left out: the gateway serves its other protocols all the same. Returns
//  the number of bridges started.
size_t arb_bridges_start (arb_bridges_t *self,
                          arb_gateway_t *gateway,
                          const arb_bridges_settings_t *settings);

#endif
