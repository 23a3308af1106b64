/*  arb_listener.h — the listening TCP sockets of one of the gateway's
    servers (Kestrel, AMQP), and the accepting of their clients.

    Addresses: a comma-separated list of up to ARB_LISTENER_MAX, each
    "HOST:PORT": an IPv4 address, an IPv6 one in brackets ("[::1]:5672")
    or a name (every address it resolves to is bound), port 0 for one the
    kernel picks (the next addresses of the list then take the same one).
    An address with a leading '-' is optional, as in redis's `bind`: if this
    machine cannot bind it (its address family is off, or the address is
    not one of its own), the server goes on without it, with a note in the
    log; "127.0.0.1:5672,-[::1]:5672" serves both loopbacks where both
    exist, so that a client told "localhost" finds the server whichever
    address it tries first.

    Accepting: up to ARB_LISTENER_BATCH clients per socket and turn; out of
    descriptors, the listener stops accepting for a moment instead of
    spinning on a socket that stays readable.
*/

#ifndef ARB_LISTENER_H
#define ARB_LISTENER_H

#include "arb_reactor.h"

#define ARB_LISTENER_MAX 4  //  addresses in a list

typedef struct _arb_listener_t arb_listener_t;

//  Takes an accepted client's socket (non-blocking, close on exec,
//  TCP_NODELAY): the callee owns it.
typedef void (arb_listener_fn) (int fd, void *arg);

//  Listens on every address of addresses, in the reactor, giving each
//  client to on_client. NULL after logging why (who names the server in
//  the log: "amqp").
arb_listener_t *arb_listener_new (arb_reactor_t *reactor,
                                  const char *who,
                                  const char *addresses,
                                  arb_listener_fn *on_client,
                                  void *arg);

//  The checks of addresses that arb_listener_new makes before it binds
//  (the list's length, each address's HOST:PORT form), for
//  --check-config: whether a host resolves, or an address is free, only
//  binding tells. 0, or -1 after logging why.
int arb_listener_check (const char *who, const char *addresses);

//  Whether only this host can reach every address of addresses (a list
//  arb_listener_check takes): each a loopback address, or a name that
//  resolves to loopback addresses only. A name that does not resolve
//  counts as reachable from elsewhere (logged as who's bad address). For
//  the servers without authentication, which refuse other addresses
//  unless told.
bool arb_listener_is_loopback (const char *who, const char *addresses);

//  Resolves one address (HOST:PORT, [IPv6]:PORT; a name too) as a server
//  binds it, into *found (freeaddrinfo), and says in *loopback (unless
//  NULL) whether every address it resolves to is a loopback one. 0, or -1
//  after logging why as who's bad address.
int
arb_listener_resolve (const char *who, const char *text, struct addrinfo **found, bool *loopback);

//  Closes the listening sockets; clients accepted are not touched.
void arb_listener_destroy (arb_listener_t **self_p);

//  The port bound for the first address.
int arb_listener_port (arb_listener_t *self);

//  The number of sockets listening (at least 1).
size_t arb_listener_count (arb_listener_t *self);

#endif
