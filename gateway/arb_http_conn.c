/*  arb_http_conn.c — the HTTP server's connections and the deadline of
    each request's arrival; see arb_http_conn.h.
*/

#include "arb_http_conn.h"
#include "arb_tcpinfo.h"

#include <czmq.h>
#include <inttypes.h>
#include <sys/socket.h>

#define ARB_HTTP_WATCH_MS    1000       //  how often the request deadlines are checked
#define ARB_HTTP_ANSWER_RATE (1 << 20)  //  an answer's time grows a second for each of these

struct _arb_http_conns_t {
    arb_reactor_t *reactor;       //  borrowed
    zlistx_t *list;               //  owned arb_http_conn_t: every connection
    uint64_t request_timeout_ms;  //  a request arrives within this of its first byte; 0: any
    arb_timer_t watch;            //  the deadlines' check, armed while there are connections
    bool watching;
};

struct _arb_http_conn_t {
    void *req;  //  borrowed, or NULL
    struct MHD_Connection *connection;
    void *handle;          //  its place on the list
    uint64_t mark;         //  bytes received when its last request ended (or at its accept)
    uint64_t started_ms;   //  monotonic: the current request's first byte seen, or 0
    bool receiving;        //  its request is arriving (not yet handled)
    uint64_t answered_ms;  //  monotonic: its answer was queued, or 0
    size_t answer_size;    //  its bytes
};

static void s_watch (arb_http_conns_t *self);

arb_http_conns_t *
arb_http_conns_new (arb_reactor_t *reactor, uint64_t request_timeout_ms)
{
    arb_http_conns_t *self = (arb_http_conns_t *) zmalloc (sizeof (arb_http_conns_t));
    self->reactor = reactor;
    self->list = zlistx_new ();
    self->request_timeout_ms = request_timeout_ms;
    return self;
}

void
arb_http_conns_destroy (arb_http_conns_t **self_p)
{
    arb_http_conns_t *self = *self_p;
    if (!self)
        return;
    if (self->watching)
        arb_reactor_disarm (self->reactor, &self->watch);
    arb_http_conn_t *conn;
    while ((conn = (arb_http_conn_t *) zlistx_first (self->list)))
        arb_http_conns_close (self, &conn);
    zlistx_destroy (&self->list);
    free (self);
    *self_p = NULL;
}

//  Bytes the kernel received on a connection's socket so far (0 if it
//  cannot tell).
static uint64_t
s_bytes_received (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? arb_tcpinfo_bytes_received (info->connect_fd) : 0;
}

//  Shuts a connection's socket down: libmicrohttpd then closes it.
static void
s_shut (arb_http_conn_t *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info)
        shutdown (info->connect_fd, SHUT_RDWR);
    conn->receiving = false;
    conn->started_ms = 0;
    conn->answered_ms = 0;
}

//  Once a second while there are connections: those whose request has
//  not arrived within the deadline of its first byte are shut down.
static void
s_on_watch (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_http_conns_t *self = (arb_http_conns_t *) arg;
    self->watching = false;
    uint64_t now = arb_reactor_now (reactor);
    for (arb_http_conn_t *conn = (arb_http_conn_t *) zlistx_first (self->list); conn;
         conn = (arb_http_conn_t *) zlistx_next (self->list)) {
        if (conn->answered_ms
            && now - conn->answered_ms
                   >= self->request_timeout_ms + conn->answer_size / ARB_HTTP_ANSWER_RATE * 1000) {
            zsys_debug ("http: an answer of %zu bytes not read in its time: closing",
                        conn->answer_size);
            s_shut (conn);
            continue;
        }
        if (!conn->receiving)
            continue;
        if (!conn->started_ms) {
            uint64_t bytes = s_bytes_received (conn->connection);
            if (bytes > conn->mark)
                conn->started_ms = now;
            continue;
        }
        if (now - conn->started_ms < self->request_timeout_ms)
            continue;
        zsys_debug ("http: a request not in within %" PRIu64 " ms of its first byte: closing",
                    self->request_timeout_ms);
        s_shut (conn);
    }
    s_watch (self);
}

//  Arms the watch if there is something to watch.
static void
s_watch (arb_http_conns_t *self)
{
    if (self->watching || !self->request_timeout_ms || !zlistx_size (self->list))
        return;
    self->watching = true;
    arb_reactor_arm (self->reactor, &self->watch, ARB_HTTP_WATCH_MS, s_on_watch, self);
}

arb_http_conn_t *
arb_http_conns_open (arb_http_conns_t *self, struct MHD_Connection *connection)
{
    arb_http_conn_t *conn = (arb_http_conn_t *) zmalloc (sizeof (arb_http_conn_t));
    conn->connection = connection;
    conn->receiving = true;
    conn->handle = zlistx_add_end (self->list, conn);
    s_watch (self);
    return conn;
}

void
arb_http_conns_close (arb_http_conns_t *self, arb_http_conn_t **conn_p)
{
    arb_http_conn_t *conn = *conn_p;
    if (!conn)
        return;
    zlistx_delete (self->list, conn->handle);
    free (conn);
    *conn_p = NULL;
}

arb_http_conn_t *
arb_http_conn_of (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (arb_http_conn_t *) info->socket_context : NULL;
}

void *
arb_http_conn_req (arb_http_conn_t *conn)
{
    return conn->req;
}

void
arb_http_conn_set_req (arb_http_conn_t *conn, void *req)
{
    conn->req = req;
}

void
arb_http_conn_received (arb_http_conn_t *conn)
{
    conn->receiving = false;
    conn->started_ms = 0;
}

void
arb_http_conn_answered (arb_http_conn_t *conn, uint64_t now, size_t size)
{
    conn->answered_ms = now ? now : 1;
    conn->answer_size = size;
}

void
arb_http_conn_ended (arb_http_conn_t *conn)
{
    conn->receiving = true;
    conn->started_ms = 0;
    conn->answered_ms = 0;
    conn->mark = s_bytes_received (conn->connection);
}
