/*  arb_tcpinfo.c — what the kernel knows of a TCP socket; see
    arb_tcpinfo.h.
*/

#include "arb_tcpinfo.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

uint64_t
arb_tcpinfo_bytes_received (int fd)
{
    struct tcp_info info;
    socklen_t size = sizeof (info);
    memset (&info, 0, sizeof (info));
    if (getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0)
        return 0;
    //  a kernel older than 4.1 fills less: the field stays 0
    return info.tcpi_bytes_received;
}
