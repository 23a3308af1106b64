/*  arb_tcp.c — the options every TCP connection of ours gets; see
    arb_tcp.h. */

#include "arb_tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int
s_set (int fd, int level, int name, int value)
{
    return setsockopt (fd, level, name, &value, sizeof (value));
}

int
arb_tcp_keepalive (int fd)
{
    return s_set (fd, SOL_SOCKET, SO_KEEPALIVE, 1)
                   || s_set (fd, IPPROTO_TCP, TCP_KEEPIDLE, ARB_TCP_IDLE_S)
                   || s_set (fd, IPPROTO_TCP, TCP_KEEPINTVL, ARB_TCP_INTERVAL_S)
                   || s_set (fd, IPPROTO_TCP, TCP_KEEPCNT, ARB_TCP_PROBES)
               ? -1
               : 0;
}

int
arb_tcp_tune (int fd)
{
    return s_set (fd, IPPROTO_TCP, TCP_NODELAY, 1) || arb_tcp_keepalive (fd) ? -1 : 0;
}

void
arb_tcp_zsock_keepalive (zsock_t *sock)
{
    zsock_set_tcp_keepalive (sock, 1);
    zsock_set_tcp_keepalive_idle (sock, ARB_TCP_IDLE_S);
    zsock_set_tcp_keepalive_intvl (sock, ARB_TCP_INTERVAL_S);
    zsock_set_tcp_keepalive_cnt (sock, ARB_TCP_PROBES);
}
