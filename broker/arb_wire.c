/*  arb_wire.c — the broker's connections: a ROUTER socket, or the loop's
    own ZMTP connections (each an arb_wire_conn_t, arb_wire_conn.c); see
    arb_wire.h. Here: the endpoint (its address, listening, accepting),
    the connections' list and their routing ids, and the interface over
    both ways.
*/

#include "arb_wire_priv.h"
#include "arb_tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_HANDSHAKE_MS  30000                //  as libzmq's ZMQ_HANDSHAKE_IVL
#define S_LINGER_MS     1000                 //  at destroy, output still goes out for this long
#define S_BACKLOG       100                  //  as libzmq's ZMQ_BACKLOG
#define S_ACCEPTS       64                   //  connections accepted per poll at most
#define S_ACCEPT_PAUSE  100                  //  ms without accepting after EMFILE
#define S_SNDBYTES      ((size_t) 64 << 20)  //  default peer_sndbytes
#define S_MESSAGE_BYTES (1ull << 30)         //  one message's frames together, at least
#define S_AWAIT_MISSES  6                    //  waits in vain before the longest skip (2^6 turns)

//  ---------------------------------------------------------------------
//  Routing ids

static size_t
s_key_hash (const void *key)
{
    const arb_wire_key_t *k = (const arb_wire_key_t *) key;
    return (size_t) arb_bytes_fnv (ARB_FNV_BASIS, k->data, k->size);
}

static int
s_key_compare (const void *a, const void *b)
{
    const arb_wire_key_t *x = (const arb_wire_key_t *) a, *y = (const arb_wire_key_t *) b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return memcmp (x->data, y->data, x->size);
}

//  Keys are the connections' own: nothing to copy or free.
static void *
s_key_keep (const void *key)
{
    return (void *) key;
}

static void
s_key_drop (void **key_p)
{
    *key_p = NULL;
}

//  ---------------------------------------------------------------------
//  The endpoint

//  Parses tcp://HOST:PORT for a listener of the loop's own: 0, or -1 when
//  it is not one the loop can serve (the ROUTER then serves it: an ipc://
//  endpoint, a port of "*", an interface name).
static int
s_listen_address (const char *endpoint, struct sockaddr_storage *addr, socklen_t *len)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return -1;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || !colon[1] || strspn (colon + 1, "0123456789") != strlen (colon + 1))
        return -1;
    char name[256];
    size_t host_size = (size_t) (colon - host);
    if (host_size >= sizeof (name))
        return -1;
    memcpy (name, host, host_size);
    name[host_size] = 0;
    if (host_size >= 2 && name[0] == '[' && name[host_size - 1] == ']') {
        memmove (name, name + 1, host_size - 2);
        name[host_size - 2] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    //  names resolve to IPv4 only, as libzmq's without ZMQ_IPV6
    hints.ai_family = strchr (name, ':') ? AF_INET6 : AF_INET;
    struct addrinfo *found = NULL;
    if (getaddrinfo (strcmp (name, "*") == 0 ? NULL : name, colon + 1, &hints, &found) || !found)
        return -1;
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

static int
s_listen (arb_wire_t *self, const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket (addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (bind (fd, (const struct sockaddr *) addr, len) || listen (fd, S_BACKLOG)) {
        int error = errno;
        close (fd);
        errno = error;
        return -1;
    }
    self->listen_fd = fd;
    return 0;
}

//  Adds a connected socket as a connection, our greeting on its way: 0,
//  or -1 (the socket is closed).
static int
s_conn_add (arb_wire_t *self, int fd, uint64_t now)
{
    if (self->n_conns == SIZE_MAX / 2) {
        close (fd);
        return -1;
    }
    if (self->n_conns == self->cap_conns) {
        size_t cap = self->cap_conns ? self->cap_conns * 2 : 16;
        arb_wire_conn_t **conns =
            (arb_wire_conn_t **) realloc (self->conns, cap * sizeof (arb_wire_conn_t *));
        if (!conns) {
            close (fd);
            return -1;
        }
        self->conns = conns;
        self->cap_conns = cap;
    }
    arb_wire_conn_t *conn = arb_wire_conn_new (self, fd, now);
    if (!conn)
        return -1;
    self->conns[self->n_conns++] = conn;
    return 0;
}

static void
s_accept (arb_wire_t *self)
{
    uint64_t now = (uint64_t) zclock_mono ();
    for (int i = 0; i < S_ACCEPTS; i++) {
        int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                zsys_warning ("broker: cannot accept a connection: %s", strerror (errno));
                self->accept_paused_until = now + S_ACCEPT_PAUSE;
            }
            return;  //  EAGAIN: none left; others (ECONNABORTED): the peer's
        }
        //  options only: a connection works without them
        (void) arb_tcp_tune (fd);
        s_conn_add (self, fd, now);
    }
}

//  ---------------------------------------------------------------------
//  The interface

arb_wire_t *
arb_wire_new (const arb_wire_config_t *config)
{
    arb_wire_t *self = (arb_wire_t *) zmalloc (sizeof (arb_wire_t));
    self->config = *config;
    self->endpoint = strdup (config->endpoint);
    self->config.endpoint = self->endpoint;
    self->listen_fd = -1;
    self->closes = (arb_loglimit_t){.module = "broker", .what = "connections closed", .max = 20};
    if (!self->config.peer_sndhwm)
        self->config.peer_sndhwm = 10000;
    if (!self->config.peer_sndbytes)
        self->config.peer_sndbytes = S_SNDBYTES;
    if (!self->config.message_ms)
        self->config.message_ms = ARB_GATHER_MESSAGE_MS;
    self->message_max = S_MESSAGE_BYTES > 2 * (uint64_t) config->max_message
                            ? S_MESSAGE_BYTES
                            : 2 * (uint64_t) config->max_message;
    struct sockaddr_storage addr;
    socklen_t len;
    bool own = config->mode == ARB_WIRE_AUTO && !config->curve
               && s_listen_address (config->endpoint, &addr, &len) == 0;
    if (own) {
        self->by_id = zhashx_new ();
        zhashx_set_key_hasher (self->by_id, s_key_hash);
        zhashx_set_key_comparator (self->by_id, s_key_compare);
        zhashx_set_key_duplicator (self->by_id, s_key_keep);
        zhashx_set_key_destructor (self->by_id, s_key_drop);
        self->gone = zlist_new ();
        return self;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_handover (self->router, 1);
    //  a send to a peer that is gone fails (EHOSTUNREACH) instead of
    //  vanishing: the outbox forgets such event subscribers
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, S_LINGER_MS);
    //  a frame far over the payload limit is cut at the socket
    zsock_set_maxmsgsize (self->router, (int64_t) config->max_message);
    zsock_set_rcvhwm (self->router, (int) config->peer_rcvhwm);
    zsock_set_sndhwm (self->router, (int) config->peer_sndhwm);
    arb_tcp_zsock_keepalive (self->router);
    return self;
}

//  What waits to go out gets S_LINGER_MS to leave, as the ROUTER's linger.
static void
s_linger (arb_wire_t *self)
{
    uint64_t deadline = (uint64_t) zclock_mono () + S_LINGER_MS;
    while ((uint64_t) zclock_mono () < deadline) {
        size_t n = 0;
        for (size_t i = 0; i < self->n_conns; i++) {
            arb_wire_conn_t *conn = self->conns[i];
            if (conn->closed || conn->out.end == conn->out.start)
                continue;
            conn->writing = false;
            arb_wire_conn_write (self, conn);
            if (conn->writing)
                self->fds[n++] = (struct pollfd){conn->fd, POLLOUT, 0};
        }
        if (n == 0 || poll (self->fds, n, 50) < 0)
            return;
    }
}

void
arb_wire_destroy (arb_wire_t **self_p)
{
    assert (self_p);
    arb_wire_t *self = *self_p;
    if (!self)
        return;
    if (self->fds || self->n_conns) {
        struct pollfd *fds =
            (struct pollfd *) realloc (self->fds, (self->n_conns + 1) * sizeof (*fds));
        if (fds) {
            self->fds = fds;
            s_linger (self);
        }
    }
    for (size_t i = 0; i < self->n_conns; i++) {
        arb_wire_conn_close (self, self->conns[i], false, NULL);
        arb_wire_conn_free (&self->conns[i]);
    }
    free (self->conns);
    free (self->fds);
    zhashx_destroy (&self->by_id);
    zframe_t *gone;
    while (self->gone && (gone = (zframe_t *) zlist_pop (self->gone)))
        zframe_destroy (&gone);
    zlist_destroy (&self->gone);
    if (self->listen_fd >= 0)
        close (self->listen_fd);
    zsock_destroy (&self->router);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

zsock_t *
arb_wire_router (arb_wire_t *self)
{
    return self->router;
}

bool
arb_wire_is_own (arb_wire_t *self)
{
    return self->router == NULL;
}

int
arb_wire_bind (arb_wire_t *self)
{
    if (self->router) {
        if (zsock_bind (self->router, "%s", self->endpoint) < 0) {
            zsys_error ("broker: cannot bind %s: %s", self->endpoint, zmq_strerror (zmq_errno ()));
            return -1;
        }
        return 0;
    }
    struct sockaddr_storage addr;
    socklen_t len;
    if (s_listen_address (self->endpoint, &addr, &len) || s_listen (self, &addr, len)) {
        zsys_error ("broker: cannot bind %s: %s", self->endpoint, strerror (errno));
        return -1;
    }
    return 0;
}

//  Frees the connections closed since the last poll.
static void
s_reap (arb_wire_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n_conns; i++) {
        if (self->conns[i]->closed)
            arb_wire_conn_free (&self->conns[i]);
        else
            self->conns[kept++] = self->conns[i];
    }
    self->n_conns = kept;
}

//  Closes connections that did not finish their handshake in time, and
//  those silent past their PING's TTL (input waiting to be read is not
//  silence).
//  Whether a connection's output is over its bound of bytes: no more
//  replies are queued for it (they are dropped, as past the count).
static bool
s_over (arb_wire_t *self, arb_wire_conn_t *conn)
{
    return conn->out.end - conn->out.start >= self->config.peer_sndbytes;
}

//  Whether a connection is held: a client over its bound, which does not
//  read its replies (or reads them slowly), is not read from until they
//  go, so that its requests wait in TCP, at the peer, rather than their
//  answers in the broker's memory. Not a worker's: what it is sent is
//  bounded by the credit it gave, and its heartbeats and results must be
//  heard however slowly it takes its tasks (a worker of 8 slots of 15 MB
//  payloads was held, taken for lost, and its tasks run again).
static bool
s_held (arb_wire_t *self, arb_wire_conn_t *conn)
{
    return !conn->worker && s_over (self, conn);
}

static void
s_expire (arb_wire_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n_conns; i++) {
        arb_wire_conn_t *conn = self->conns[i];
        if (!conn->closed && conn->state != ARB_WIRE_OPEN && now - conn->opened_ms > S_HANDSHAKE_MS)
            arb_wire_conn_close (self, conn, true, "no ZMTP handshake within 30 s");
        else if (!conn->closed && conn->ttl_at && now > conn->ttl_at && !conn->readable
                 && !conn->buffered && !s_held (self, conn))
            arb_wire_conn_close (self, conn, false, "silent past its heartbeat TTL");
        else if (!s_held (self, conn) && arb_wire_conn_overdue (conn, now, self->config.message_ms))
            arb_wire_conn_close (self, conn, true,
                                 "a message not in within its time (30 s from its first byte, a "
                                 "second more a MiB)");
    }
}

//  Room in fds for the listener and every connection: 0, or -1 (ENOMEM).
static int
s_fds_room (arb_wire_t *self)
{
    if (self->cap_fds >= self->n_conns + 1)
        return 0;
    size_t cap = (self->n_conns + 1) * 2;
    struct pollfd *fds = (struct pollfd *) realloc (self->fds, cap * sizeof (*fds));
    if (!fds) {
        errno = ENOMEM;
        return -1;
    }
    self->fds = fds;
    self->cap_fds = cap;
    return 0;
}

int
arb_wire_poll (arb_wire_t *self, int timeout_ms)
{
    if (self->router) {
        zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
        return zmq_poll (&item, 1, timeout_ms);
    }
    arb_wire_flush (self);
    uint64_t now = (uint64_t) zclock_mono ();
    s_reap (self);
    if (s_fds_room (self))
        return -1;
    //  input already waiting (in the kernel or in a buffer): no wait
    bool ready = false;
    size_t n = 0;
    self->fds[n++] =
        (struct pollfd){self->listen_fd, now >= self->accept_paused_until ? POLLIN : 0, 0};
    for (size_t i = 0; i < self->n_conns; i++) {
        arb_wire_conn_t *conn = self->conns[i];
        bool held = s_held (self, conn);
        ready = ready || (!held && (conn->readable || conn->buffered));
        short events =
            (short) ((conn->readable || held ? 0 : POLLIN) | (conn->writing ? POLLOUT : 0));
        self->fds[n++] = (struct pollfd){conn->fd, events, 0};
    }
    if (self->accept_paused_until > now && (timeout_ms < 0 || timeout_ms > S_ACCEPT_PAUSE))
        timeout_ms = S_ACCEPT_PAUSE;
    int rc = poll (self->fds, n, ready ? 0 : timeout_ms);
    if (rc < 0)
        return -1;
    int sources = 0;
    if (self->fds[0].revents & POLLIN)
        s_accept (self);
    for (size_t i = 1; i < n; i++) {
        arb_wire_conn_t *conn = self->conns[i - 1];
        short revents = self->fds[i].revents;
        if (revents & (POLLIN | POLLERR | POLLHUP))
            conn->readable = true;
        if ((revents & (POLLOUT | POLLERR | POLLHUP)) && conn->writing)
            arb_wire_conn_write (self, conn);
        sources += !s_held (self, conn) && (conn->readable || conn->buffered);
    }
    s_expire (self, (uint64_t) zclock_mono ());
    return sources;
}

int
arb_wire_recv (arb_wire_t *self,
               const arb_limits_t *limits,
               arb_msg_t **msg_p,
               char *user_id,
               size_t user_id_size)
{
    if (self->router)
        return arb_msg_recv_from (self->router, true, limits, msg_p, user_id, user_id_size);
    *msg_p = NULL;
    if (user_id && user_id_size)
        user_id[0] = 0;
    //  one message from each connection in turn
    for (size_t tries = 0; tries < self->n_conns; tries++) {
        arb_wire_conn_t *conn = self->conns[self->cursor++ % self->n_conns];
        if (s_held (self, conn))
            continue;
        int rc = arb_wire_conn_next (self, conn, limits, msg_p);
        if (rc != -1)
            return rc;
    }
    errno = EAGAIN;
    return -1;
}

//  Whether the turn waits for the connection's answer: it was sent
//  something this turn or the last and has not answered yet, has nothing
//  unread already, and is not skipped after waits it let pass in vain.
static bool
s_awaited (arb_wire_t *self, arb_wire_conn_t *conn)
{
    return !conn->closed && !conn->draining && conn->owed && self->turn - conn->sent_turn <= 1
           && self->turn >= conn->skip_until && !conn->readable && !conn->buffered
           && !s_held (self, conn);
}

int
arb_wire_await (arb_wire_t *self, uint64_t budget_us)
{
    if (self->router || budget_us == 0 || s_fds_room (self))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < self->n_conns; i++)
        if (s_awaited (self, self->conns[i]))
            self->fds[n++] = (struct pollfd){self->conns[i]->fd, POLLIN, 0};
    if (n == 0)
        return 0;
    struct timespec wait = {(time_t) (budget_us / 1000000), (long) (budget_us % 1000000) * 1000};
    int rc = ppoll (self->fds, n, &wait, NULL);
    if (rc < 0)
        return 0;
    //  the fds are in the order of the awaited connections; those silent
    //  through a whole wait are skipped for 2, 4, ... 2^S_AWAIT_MISSES
    //  turns, those that answered are waited for every turn
    size_t k = 0;
    for (size_t i = 0; i < self->n_conns && k < n; i++) {
        arb_wire_conn_t *conn = self->conns[i];
        if (!s_awaited (self, conn))
            continue;
        if (self->fds[k++].revents) {
            conn->readable = true;
            conn->misses = 0;
        }
        else if (rc == 0) {
            conn->misses += conn->misses < S_AWAIT_MISSES;
            conn->skip_until = self->turn + (1u << conn->misses);
        }
    }
    return rc;
}

void
arb_wire_next_turn (arb_wire_t *self)
{
    self->turn++;
}

//  Whether a turn should wait for what its peer sends after this message
//  (arb_wire_await): a client given its reply sends its next request
//  soon, and that request then shares the commit. Not so a worker given a
//  task: its RESULT follows after the task has run, and a turn waiting for
//  it would hold back the acknowledgements of the requests it already
//  read; it comes in a later turn, and shares that turn's commit. Nor a
//  RESULT_OK, which asks nothing of its worker.
static bool
s_asks_answer (arb_msg_t *msg)
{
    arb_msg_type_t type = arb_msg_type (msg);
    return type != ARB_MSG_DISPATCH && type != ARB_MSG_RESULT_OK;
}

//  The loop's own open connection that holds peer's routing id, or NULL.
static arb_wire_conn_t *
s_peer_conn (arb_wire_t *self, const uint8_t *peer, size_t size)
{
    if (self->router || !peer)
        return NULL;
    arb_wire_key_t key = {size, peer};
    arb_wire_conn_t *conn = (arb_wire_conn_t *) zhashx_lookup (self->by_id, &key);
    return conn && !conn->closed ? conn : NULL;
}

bool
arb_wire_unread (arb_wire_t *self, const uint8_t *peer, size_t size, uint64_t heard_since_ms)
{
    //  the ROUTER's input is one: any of it may be this peer's
    if (self->router)
        return (zsock_events (self->router) & ZMQ_POLLIN) != 0;
    arb_wire_conn_t *conn = s_peer_conn (self, peer, size);
    if (!conn || s_held (self, conn))
        return false;
    //  whole frames may wait in its buffer; part of one alone is not
    //  input (a peer stuck in the middle of a message is silent), unless
    //  its bytes still come
    if (conn->buffered || (conn->heard_ms && conn->heard_ms >= heard_since_ms))
        return true;
    int waiting = 0;
    return ioctl (conn->fd, FIONREAD, &waiting) == 0 && waiting > 0;
}

//  Whether a message is of the worker's protocol: those go past the bound
//  of bytes (a DISPATCH is bounded by its worker's credit, and one dropped
//  would take its tasks back while the worker runs those it has; a STOP,
//  a HEARTBEAT, a WELCOME or a RESULT_OK is small and must not be lost),
//  and a connection sent one is a worker's, never held.
static bool
s_to_worker (arb_msg_type_t type)
{
    return type == ARB_MSG_DISPATCH || type == ARB_MSG_STOP || type == ARB_MSG_HEARTBEAT
           || type == ARB_MSG_WELCOME || type == ARB_MSG_RESULT_OK;
}

bool
arb_wire_unwritten (arb_wire_t *self, const uint8_t *peer, size_t size, uint64_t since_ms)
{
    arb_wire_conn_t *conn = s_peer_conn (self, peer, size);
    return conn
           && (conn->out.end > conn->out.start
               || (conn->drained_ms && conn->drained_ms >= since_ms));
}

int
arb_wire_send (arb_wire_t *self, arb_msg_t **msg_p)
{
    if (self->router)
        return arb_msg_send (msg_p, self->router);
    size_t size;
    const uint8_t *id = arb_msg_peer (*msg_p, &size);
    arb_wire_key_t key = {size, id};
    arb_wire_conn_t *conn = id ? (arb_wire_conn_t *) zhashx_lookup (self->by_id, &key) : NULL;
    arb_msg_type_t type = arb_msg_type (*msg_p);
    int error = !conn ? EHOSTUNREACH
                : arb_wire_conn_waiting (conn) >= self->config.peer_sndhwm
                        || (!s_to_worker (type) && s_over (self, conn))
                    ? EAGAIN
                    : 0;
    if (error) {
        arb_msg_destroy (msg_p);
        errno = error;
        return -1;
    }
    bool asks = s_asks_answer (*msg_p);
    if (s_to_worker (type))
        conn->worker = true;
    if (arb_wire_conn_put (conn, msg_p)) {
        errno = EAGAIN;
        return -1;
    }
    if (asks) {
        conn->owed = true;
        conn->sent_turn = self->turn;
    }
    return 0;
}

//  Writes what waits for the connections the next turn will wait for
//  (awaited), or for the others.
static void
s_flush_some (arb_wire_t *self, bool awaited)
{
    for (size_t i = 0; i < self->n_conns; i++) {
        arb_wire_conn_t *conn = self->conns[i];
        bool asked = conn->owed && conn->sent_turn == self->turn;
        if (asked == awaited && !conn->closed && !conn->writing && conn->out.end > conn->out.start)
            arb_wire_conn_write (self, conn);
    }
}

void
arb_wire_flush (arb_wire_t *self)
{
    //  The peers the next turn will wait for first (a producer given its
    //  acknowledgement): each write costs the loop the kernel's delivery
    //  on loopback, and their answers are on the next commit's path; a
    //  worker's RESULT, or a RESULT_OK's nothing, are not.
    s_flush_some (self, true);
    s_flush_some (self, false);
}

int
arb_wire_adopt (arb_wire_t *self, int fd)
{
    assert (!self->router);
    int flags = fcntl (fd, F_GETFL);
    if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close (fd);
        return -1;
    }
    return s_conn_add (self, fd, (uint64_t) zclock_mono ());
}

zframe_t *
arb_wire_next_gone (arb_wire_t *self)
{
    zframe_t *gone;
    while (self->gone && (gone = (zframe_t *) zlist_pop (self->gone))) {
        //  taken again since (a peer that reconnected): it keeps its id's
        arb_wire_key_t key = {zframe_size (gone), zframe_data (gone)};
        if (!zhashx_lookup (self->by_id, &key))
            return gone;
        zframe_destroy (&gone);
    }
    return NULL;
}

size_t
arb_wire_connections (arb_wire_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_conns; i++)
        n += !self->conns[i]->closed;
    return n;
}
