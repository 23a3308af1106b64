/*  arb_admin.h — the admin API under /api/v1/, in the spirit of
    guillotina_amqp's: tasks (list with filters and pages, one with its
    history and result, cancel, retry), queues (counts, consumers, paused;
    pause, resume, purge), workers, the broker's stats, and DAGs, groups
    and pipes with their tasks. Every route needs the token when one is
    configured. The JSON of tasks, queues and workers is the CLI's
    (arb_json.h); docs/http.md shows each route with an example, and the
    dashboard is built on them.

    Runs in the reactor's thread.
*/

#ifndef ARB_ADMIN_H
#define ARB_ADMIN_H

#include "arb_http.h"

//  Adds the routes to http. 0, or -1 if its route table is full.
int arb_admin_serve (arb_http_t *http);

//  Tasks a list page holds by default and at most.
#define ARB_ADMIN_PAGE     100
#define ARB_ADMIN_PAGE_MAX 1000

#endif
