/*  arb_metrics.h — GET /metrics: the broker's and the gateway's numbers
    in Prometheus's text format (version 0.0.4).

    From the broker's STATS (every page of it): tasks by queue and state
    (gauge), queues paused, the age of their oldest ready task and their
    consumers, tasks submitted, dispatched and finished by state since the
    broker started (counters), journal commit durations (histogram),
    workers and their slots (total, busy); from the gateway: whether its broker session is up and its
    connections by protocol. While the broker cannot be reached the page
    still answers, with the gateway's numbers only, so a scraper sees
    arbiter_gateway_broker_up 0 rather than a failed scrape. Open without
    the token (it changes nothing). docs/http.md lists every metric.
*/

#ifndef ARB_METRICS_H
#define ARB_METRICS_H

#include "arb_http.h"

//  Adds GET /metrics to http. 0, or -1 if its route table is full.
int arb_metrics_serve (arb_http_t *http);

//  What the gateway adds to the broker's numbers.
typedef struct {
    bool broker_up;
    uint64_t connections[ARB_GATEWAY_PROTOCOLS];  //  open now, by protocol
} arb_metrics_gateway_t;

//  The page for stats (NULL: the broker's part left out). Returns a
//  string the caller frees, and its length in *size; NULL if memory for
//  it ran out.
char *arb_metrics_render (arb_stats_reply_body_t *stats,
                          const arb_metrics_gateway_t *gateway,
                          size_t *size);

#endif
