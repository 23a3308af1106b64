/*  arb_listen.h — a listening TCP socket for the gateway's servers
    (Kestrel, AMQP): "HOST:PORT", an IPv4 or IPv6 address ("[::1]:5672")
    or a name, port 0 for one the kernel picks. Non-blocking, close on
    exec, SO_REUSEADDR, a backlog of 1,024.
*/

#ifndef ARB_LISTEN_H
#define ARB_LISTEN_H

//  Listens on bind_to; *port gets the port bound. Returns the socket, or
//  -1 after logging why (who names the server in the log: "amqp").
int arb_listen (const char *who, const char *bind_to, int *port);

#endif
