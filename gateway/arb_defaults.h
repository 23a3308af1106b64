/*  arb_defaults.h — what the config file says about queues and task types:
    the settings a task gets when the gateway submits it without saying
    otherwise, and which tasker types exist.

    Two kinds of section, with the same keys:

        [queue.NAME]   defaults for every task the gateway submits to
                       queue NAME (HTTP, Kestrel and AMQP alike)
        [type.NAME]    declares tasker type NAME (POST /NAME submits to
                       queue NAME); its keys override the queue's

    Keys: priority (an integer, higher first), retries (extra attempts),
    timeout (seconds per attempt), retention (seconds a finished task is
    kept), backoff (none, fixed or exponential), backoff-delay and
    backoff-cap (seconds), wait-for-endpoints-timeout (seconds an endpoint
    has to receive its copy of a fan-out task before it is missing: tasker's
    wait_for_endpoints_timeout); in a [type.NAME] section only, broadcast
    (yes: a POST without endpoints goes to every worker connected on the
    type's queue, as tasker's publish/subscribe did; no, the default: to
    one) and wait-for-endpoints (yes: a POST with endpoints, or broadcast,
    is answered once every endpoint has received its copy or one is
    missing, DONE or INCOMPLETE, as tasker's API answered; no, the
    default: at once, SENT). A key not given leaves the broker's default.

    With no [type.*] section any type name is accepted; with some, only
    those. Runs in the loop thread; built once at start.
*/

#ifndef ARB_DEFAULTS_H
#define ARB_DEFAULTS_H

#include "arb_proto.h"

typedef struct _arb_defaults_t arb_defaults_t;

arb_defaults_t *arb_defaults_new (void);
void arb_defaults_destroy (arb_defaults_t **self_p);

//  An arb_options_section_fn: takes one key of a [queue.NAME] or
//  [type.NAME] section (arg is the arb_defaults_t). 0, or -1 with why.
int arb_defaults_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size);

//  Whether type's section says broadcast = yes: a POST without endpoints
//  goes to every worker connected on its queue (tasker's publish/subscribe),
//  not to one.
bool arb_defaults_broadcast (arb_defaults_t *self, const char *type);

//  Whether type's section says wait-for-endpoints = yes: a POST to its
//  endpoints is answered once they have received it, or one is missing.
bool arb_defaults_wait (arb_defaults_t *self, const char *type);

//  Whether tasker type name may be used: declared, or no type is declared.
bool arb_defaults_has_type (arb_defaults_t *self, const char *name);

//  Number of declared types.
size_t arb_defaults_types (arb_defaults_t *self);

//  Sets in spec what the config gives for queue, then what it gives for
//  type (if not NULL); the other fields stay as they are.
void arb_defaults_apply (arb_defaults_t *self,
                         const char *queue,
                         const char *type,
                         arb_task_spec_t *spec);

//  A message's spec (an AMQP message, a Kestrel item) for its queue:
//  retention_ms (--message-retention), then what the config (self, may be
//  NULL) gives for the queue. A message is taken and acknowledged by its
//  consumer, and nobody asks about it after that: with the broker's
//  retention (0) it is marked unwatched, so that it leaves the journal at
//  its end; only then, since a broker older than the field refuses it.
void arb_defaults_apply_message (arb_defaults_t *self,
                                 const char *queue,
                                 uint64_t retention_ms,
                                 arb_task_spec_t *spec);

#endif
