/*  arb_listener.c — listening sockets and accepting; see arb_listener.h.

    IPv6 sockets are IPv6 only (IPV6_V6ONLY, as redis and nginx set it),
    so that "0.0.0.0:P,[::]:P" binds both families instead of the second
    failing on the first's port; a name that resolves to both gets both.
*/

#include "arb_listener.h"
#include "arb_tcp.h"

#include <ctype.h>
#include <czmq.h>
#include <netdb.h>

#define S_SOCKETS_MAX 16   //  sockets: a name may resolve to several addresses
#define S_BATCH       256  //  clients accepted per socket and turn at most
#define S_BACKOFF_MS  100  //  ms without accepting after running out of descriptors
#define S_HOST_MAX    256  //  bytes of an address's host, its end included

struct _arb_listener_t {
    arb_reactor_t *reactor;
    char *who;  //  owned: the server's name in the log
    arb_listener_fn *on_client;
    void *arg;
    int fds[S_SOCKETS_MAX];  //  owned, count of them
    size_t count;
    size_t watched;       //  the first fds in the reactor
    int port;             //  the first address's
    arb_timer_t backoff;  //  armed while out of descriptors
};

//  Whether a bind or socket failure means this machine has no such
//  address (or family), which an optional address may skip.
static bool
s_unavailable (int err)
{
    return err == EADDRNOTAVAIL || err == EAFNOSUPPORT || err == EPROTONOSUPPORT;
}

//  Binds and listens on one resolved address; port, if not 0, replaces
//  the address's own (a list whose first port was 0). The socket, or -1
//  with errno.
static int
s_bind (const struct addrinfo *ai, int port)
{
    struct sockaddr_storage addr;
    memcpy (&addr, ai->ai_addr, ai->ai_addrlen);
    if (port && addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *) &addr)->sin6_port = htons ((uint16_t) port);
    else if (port)
        ((struct sockaddr_in *) &addr)->sin_port = htons ((uint16_t) port);
    int fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (ai->ai_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof (one));
    if (bind (fd, (struct sockaddr *) &addr, ai->ai_addrlen) || listen (fd, 1024)) {
        int err = errno;
        close (fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int
s_bound_port (int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof (addr);
    if (getsockname (fd, (struct sockaddr *) &addr, &len))
        return 0;
    return ntohs (addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                                             : ((struct sockaddr_in *) &addr)->sin_port);
}

//  The colon before text's PORT, or NULL after logging that text is not
//  HOST:PORT with a host under S_HOST_MAX bytes and a port number: what
//  --check-config can tell without resolving or binding.
static const char *
s_port_colon (const char *who, const char *text)
{
    //  a URL (http://0.0.0.0:7780, amqp://...) was looked up as a host
    //  name, "Name or service not known", which sent users to their DNS
    const char *end = strstr (text, "://");
    if (end) {
        const char *scheme = end;
        while (scheme > text && isalpha ((unsigned char) scheme[-1]))
            scheme--;
        zsys_error ("%s: bad address '%s' (HOST:PORT, [IPv6]:PORT, not a URL: without '%.*s')", who,
                    text, (int) (end + 3 - scheme), scheme);
        return NULL;
    }
    const char *colon = strrchr (text, ':');
    size_t host_len = colon ? (size_t) (colon - text) : 0;
    size_t digits = colon ? strspn (colon + 1, "0123456789") : 0;
    if (!colon || host_len == 0 || host_len >= S_HOST_MAX || digits == 0 || colon[1 + digits]
        || digits > 5 || atoi (colon + 1) > 65535) {
        zsys_error ("%s: bad address '%s' (HOST:PORT, [IPv6]:PORT)", who, text);
        return NULL;
    }
    return colon;
}

//  Whether ai is a loopback address (127.0.0.0/8, ::1).
static bool
s_is_loopback (const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET)
        return (ntohl (((struct sockaddr_in *) ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    return ai->ai_family == AF_INET6
           && IN6_IS_ADDR_LOOPBACK (&((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr);
}

int
arb_listener_resolve (const char *who, const char *text, struct addrinfo **found, bool *loopback)
{
    char host[S_HOST_MAX];
    const char *colon = s_port_colon (who, text);
    if (!colon)
        return -1;
    size_t host_len = (size_t) (colon - text);
    memcpy (host, text, host_len);
    host[host_len] = 0;
    char *name = host;
    if (host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = 0;
        name = host + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo (name, colon + 1, &hints, found);
    if (rc) {
        zsys_error ("%s: bad address '%s': %s", who, text, gai_strerror (rc));
        return -1;
    }
    if (loopback) {
        *loopback = true;
        for (struct addrinfo *ai = *found; ai; ai = ai->ai_next)
            *loopback = *loopback && s_is_loopback (ai);
    }
    return 0;
}

//  Listens on one address of the list (text: "HOST:PORT", no '-'), on
//  every address its host resolves to. 0, or -1 after logging why.
static int
s_listen_one (arb_listener_t *self, const char *text, bool optional)
{
    struct addrinfo *found = NULL;
    if (arb_listener_resolve (self->who, text, &found, NULL))
        return -1;
    int port = atoi (strrchr (text, ':') + 1);
    size_t bound = 0;
    int err = 0;
    for (struct addrinfo *ai = found; ai; ai = ai->ai_next) {
        if (self->count == S_SOCKETS_MAX) {
            zsys_error ("%s: more than %d sockets to listen on", self->who, S_SOCKETS_MAX);
            freeaddrinfo (found);
            return -1;
        }
        //  port 0 after the first address: the port the kernel gave it
        int fd = s_bind (ai, self->count && port == 0 ? self->port : 0);
        if (fd < 0) {
            if (!err || !s_unavailable (errno))
                err = errno;
            continue;
        }
        if (self->count == 0)
            self->port = s_bound_port (fd);
        self->fds[self->count++] = fd;
        bound++;
    }
    freeaddrinfo (found);
    //  a name's addresses this machine does not have are skipped, if it
    //  has one of them
    if (bound && err && s_unavailable (err))
        zsys_info ("%s: some addresses of '%s' are not on this machine: %s", self->who, text,
                   strerror (err));
    else if (!bound && optional && s_unavailable (err))
        zsys_notice ("%s: not listening on optional address '%s': %s", self->who, text,
                     strerror (err));
    else if (!bound || err) {
        zsys_error ("%s: cannot listen on %s: %s", self->who, text, strerror (err));
        return -1;
    }
    return 0;
}

static void s_on_ready (arb_reactor_t *reactor, int fd, unsigned events, void *arg);

//  Calls fn (self, text, optional) for each address of the list, until
//  one fails; refuses a list that is too long or names no address. 0, or
//  -1 after logging why.
typedef int (s_each_fn) (arb_listener_t *self, const char *text, bool optional);
static int
s_each (arb_listener_t *self, const char *addresses, s_each_fn *fn)
{
    char *list = strdup (addresses);
    char *save = NULL;
    int rc = 0;
    int given = 0;
    int named = 0;
    for (char *tok = strtok_r (list, ",", &save); tok && rc == 0;
         tok = strtok_r (NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (++given > ARB_LISTENER_MAX) {
            zsys_error ("%s: more than %d addresses in '%s'", self->who, ARB_LISTENER_MAX,
                        addresses);
            rc = -1;
        }
        else if (*tok) {
            named++;
            rc = fn (self, tok[0] == '-' ? tok + 1 : tok, tok[0] == '-');
        }
    }
    free (list);
    if (rc == 0 && named == 0) {
        zsys_error ("%s: nothing to listen on in '%s'", self->who, addresses);
        rc = -1;
    }
    return rc;
}

//  One address of a list for arb_listener_is_loopback: 0 if every
//  address it resolves to is a loopback one, else -1.
static int
s_loopback_one (arb_listener_t *self, const char *text, bool optional)
{
    (void) optional;
    struct addrinfo *found = NULL;
    bool loopback = false;
    if (arb_listener_resolve (self->who, text, &found, &loopback))
        return -1;
    freeaddrinfo (found);
    return loopback ? 0 : -1;
}

bool
arb_listener_is_loopback (const char *who, const char *addresses)
{
    //  only who is read
    arb_listener_t probe = {.who = (char *) who};
    return s_each (&probe, addresses, s_loopback_one) == 0;
}

static int
s_check_one (arb_listener_t *self, const char *text, bool optional)
{
    (void) optional;
    return s_port_colon (self->who, text) ? 0 : -1;
}

int
arb_listener_check (const char *who, const char *addresses)
{
    //  only who is read
    arb_listener_t probe = {.who = (char *) who};
    return s_each (&probe, addresses, s_check_one);
}

static void
s_watch (arb_listener_t *self, unsigned events)
{
    for (size_t i = 0; i < self->count; i++)
        arb_reactor_watch_fd (self->reactor, self->fds[i], events);
}

static void
s_on_backoff_end (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_listener_t *self = (arb_listener_t *) arg;
    s_watch (self, ARB_REACTOR_READ);
    for (size_t i = 0; i < self->count && !self->backoff.armed; i++)
        s_on_ready (reactor, self->fds[i], ARB_REACTOR_READ, self);
}

static void
s_on_ready (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) events;
    arb_listener_t *self = (arb_listener_t *) arg;
    for (int i = 0; i < S_BATCH; i++) {
        int client = accept4 (fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                //  the socket stays readable: stop watching it for a while
                zsys_warning ("%s: out of file descriptors, not accepting for %d ms", self->who,
                              S_BACKOFF_MS);
                s_watch (self, 0);
                arb_reactor_arm (self->reactor, &self->backoff, S_BACKOFF_MS, s_on_backoff_end,
                                 self);
                return;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue;  //  one client's trouble (ECONNABORTED, EPERM, EINTR): the next
        }
        //  options only: a connection works without them
        (void) arb_tcp_tune (client);
        self->on_client (client, self->arg);
    }
}

static void
s_close_all (arb_listener_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        if (i < self->watched)
            arb_reactor_remove_fd (self->reactor, self->fds[i]);
        close (self->fds[i]);
    }
    self->count = 0;
    self->watched = 0;
}

arb_listener_t *
arb_listener_new (arb_reactor_t *reactor,
                  const char *who,
                  const char *addresses,
                  arb_listener_fn *on_client,
                  void *arg)
{
    arb_listener_t *self = (arb_listener_t *) zmalloc (sizeof (arb_listener_t));
    self->reactor = reactor;
    self->who = strdup (who);
    self->on_client = on_client;
    self->arg = arg;
    int rc = s_each (self, addresses, s_listen_one);
    //  every address was optional, and none is on this machine
    if (rc == 0 && self->count == 0) {
        zsys_error ("%s: nothing to listen on in '%s'", who, addresses);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < self->count; i++) {
        if (arb_reactor_add_fd (reactor, self->fds[i], ARB_REACTOR_READ, s_on_ready, self))
            rc = -1;
        else
            self->watched++;
    }
    if (rc)
        arb_listener_destroy (&self);
    return self;
}

void
arb_listener_destroy (arb_listener_t **self_p)
{
    arb_listener_t *self = *self_p;
    if (!self)
        return;
    arb_reactor_disarm (self->reactor, &self->backoff);
    s_close_all (self);
    free (self->who);
    free (self);
    *self_p = NULL;
}

int
arb_listener_port (arb_listener_t *self)
{
    return self->port;
}

size_t
arb_listener_count (arb_listener_t *self)
{
    return self->count;
}
