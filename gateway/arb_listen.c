/*  arb_listen.c — a listening TCP socket; see arb_listen.h. */

#include "arb_listen.h"

#include <czmq.h>
#include <netdb.h>

int
arb_listen (const char *who, const char *bind_to, int *port)
{
    char host[256];
    const char *colon = strrchr (bind_to, ':');
    size_t host_len = colon ? (size_t) (colon - bind_to) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof (host) || !colon[1]) {
        zsys_error ("%s: bad address '%s' (HOST:PORT, [IPv6]:PORT)", who, bind_to);
        return -1;
    }
    memcpy (host, bind_to, host_len);
    host[host_len] = 0;
    char *name = host;
    if (host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = 0;
        name = host + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (name, colon + 1, &hints, &found);
    if (rc) {
        zsys_error ("%s: bad address '%s': %s", who, bind_to, gai_strerror (rc));
        return -1;
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (fd < 0 || bind (fd, found->ai_addr, found->ai_addrlen) || listen (fd, 1024)) {
        zsys_error ("%s: cannot listen on %s: %s", who, bind_to, strerror (errno));
        if (fd >= 0)
            close (fd);
        freeaddrinfo (found);
        return -1;
    }
    freeaddrinfo (found);
    struct sockaddr_storage addr;
    socklen_t len = sizeof (addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    *port = ntohs (addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                                              : ((struct sockaddr_in *) &addr)->sin_port);
    return fd;
}
