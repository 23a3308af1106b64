/*  arb_tasker.h — tasker's REST API on the gateway's HTTP server.

        POST /TYPE          {"identifier", "payload", "endpoints"} creates a
                            task: 201 with the task (200 if the identifier
                            was known: the first task)
        GET  /TYPE/ID       the task, each endpoint's response, and its
                            "status": pending, complete or incomplete

    A task type is the broker queue of that name, and the task's handler
    name too. The identifier becomes the task's client key, so a POST
    retried after a lost answer returns the first task. The payload is
    the JSON text of "payload" (absent: empty). "endpoints" fan the task
    out, one copy per named worker; a copy its endpoint has not received
    within the type's wait-for-endpoints-timeout is missing, and the task
    is then incomplete. Task types and their settings come from the
    config's [type.NAME] sections (arb_defaults.h); with none, any name
    is accepted but the names the other routes use (api, metrics,
    static).

    docs/http.md shows every answer. Runs in the reactor's thread.
*/

#ifndef ARB_TASKER_H
#define ARB_TASKER_H

#include "arb_defaults.h"
#include "arb_http.h"

typedef struct _arb_tasker_t arb_tasker_t;

//  Adds the routes to http (both borrowed, as defaults).
arb_tasker_t *arb_tasker_new (arb_http_t *http, arb_defaults_t *defaults);
void arb_tasker_destroy (arb_tasker_t **self_p);

//  A POST body, checked.
typedef struct {
    json_t *root;            //  owned: the parsed body
    const char *identifier;  //  borrowed from root
    json_t *payload;         //  borrowed from root, or NULL
    arb_strs_t endpoints;    //  owned array of names borrowed from root
} arb_tasker_post_t;

//  Parses and checks a POST body (size bytes). Returns a new post, or
//  NULL with why filled (a message for a 400 answer).
arb_tasker_post_t *arb_tasker_parse (const char *body, size_t size, char *why, size_t why_size);
void arb_tasker_post_destroy (arb_tasker_post_t **post_p);

//  Whether name is a usable type name before the config is asked: 1 to
//  ARB_NAME_MAX bytes, no '@' (the broker's endpoint queues), not a name
//  another route uses.
bool arb_tasker_is_type_name (const char *name);

#endif
