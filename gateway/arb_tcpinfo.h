/*  arb_tcpinfo.h — what the kernel knows of a TCP socket (TCP_INFO).

    Its own file: the kernel's struct tcp_info (linux/tcp.h) has fields
    that glibc's (netinet/tcp.h, which libmicrohttpd's header brings in)
    lacks, and the two cannot be included together.
*/

#ifndef ARB_TCPINFO_H
#define ARB_TCPINFO_H

#include <stdint.h>

//  Bytes received on the socket so far (the kernel's count, read or not
//  by the program), or 0 if it cannot tell.
uint64_t arb_tcpinfo_bytes_received (int fd);

#endif
