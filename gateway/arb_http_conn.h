/*  arb_http_conn.h — the HTTP server's connections: a record for each
    (libmicrohttpd's socket context), holding the request begun on it,
    and the deadline of each request's arrival (--http-request-timeout).

    libmicrohttpd's own timeout is an idle one, which each byte renews, so
    a client sending one byte a minute held a connection for ever, and a
    thousand such the whole server. A request must arrive (its header and
    body) within the deadline of its first byte: once a second a watch
    reads each waiting connection's bytes received (TCP_INFO); the first
    byte past the last request's end starts the clock, and past the
    deadline the socket is shut down (libmicrohttpd then closes the
    connection). The idle time between keep-alive requests does not count.

    So must its answer be read: within the same time of its being queued,
    a second more for each MiB of it. A client reading a big answer
    a byte at a time held the answer's memory, and its connection slot,
    for as long as it liked (20 such readers of a 16 MB listing held
    1.25 GB).
*/

#ifndef ARB_HTTP_CONN_H
#define ARB_HTTP_CONN_H

#include "arb_reactor.h"

#include <microhttpd.h>
#include <stdint.h>

typedef struct _arb_http_conns_t arb_http_conns_t;
typedef struct _arb_http_conn_t arb_http_conn_t;

//  Connections watched in reactor's loop; request_timeout_ms 0: no deadline.
arb_http_conns_t *arb_http_conns_new (arb_reactor_t *reactor, uint64_t request_timeout_ms);

//  Frees the records left (none once the daemon has stopped, which closes
//  every connection) and disarms the watch.
void arb_http_conns_destroy (arb_http_conns_t **self_p);

//  A connection accepted (MHD_CONNECTION_NOTIFY_STARTED): its record, the
//  clock of its first request waiting for its first byte.
arb_http_conn_t *arb_http_conns_open (arb_http_conns_t *self, struct MHD_Connection *connection);

//  A connection closed: its record freed. The caller frees the request
//  it held (arb_http_conn_req) first.
void arb_http_conns_close (arb_http_conns_t *self, arb_http_conn_t **conn_p);

//  The record of a connection (its socket context), or NULL.
arb_http_conn_t *arb_http_conn_of (struct MHD_Connection *connection);

//  The request begun on the connection and not completed (borrowed), or
//  NULL; set by the request's maker, cleared when it is freed.
void *arb_http_conn_req (arb_http_conn_t *conn);
void arb_http_conn_set_req (arb_http_conn_t *conn, void *req);

//  The current request is in (or refused before its body): its deadline
//  is met.
void arb_http_conn_received (arb_http_conn_t *conn);

//  The current request's answer, size bytes, is queued at now (the
//  reactor's clock): its time to be read starts.
void arb_http_conn_answered (arb_http_conn_t *conn, uint64_t now, size_t size);

//  The current request ended: the next one's clock starts at its first
//  byte.
void arb_http_conn_ended (arb_http_conn_t *conn);

#endif
