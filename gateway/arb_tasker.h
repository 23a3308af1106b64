/*  arb_tasker.h — tasker's REST API on the gateway's HTTP server.

        POST /TYPE          {"identifier", "payload", "endpoints"} creates a
                            task: 201 with the task (200 if the identifier
                            was known: the first task)
        GET  /TYPE/ID       the task (with the payload it was stored
                            with), each endpoint's response, and its
                            "status": pending, complete or incomplete

    A task type is the broker queue of that name, and the task's handler
    name too. An identifier names a task within its type: the task's
    client key is "TYPE@IDENTIFIER", so a POST retried after a lost answer
    returns the first task (as it is stored: STATUS's state, endpoints and
    payload, not the request's), and the same identifier under another
    type is another task. The payload is the JSON text of "payload"
    (absent: empty). "endpoints" fan the task
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
#include "arb_tasker_body.h"

typedef struct _arb_tasker_t arb_tasker_t;

//  Adds the routes to http (both borrowed, as defaults).
arb_tasker_t *arb_tasker_new (arb_http_t *http, arb_defaults_t *defaults);
void arb_tasker_destroy (arb_tasker_t **self_p);

#endif
