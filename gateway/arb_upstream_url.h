/*  arb_upstream_url.h — an upstream RabbitMQ's URL, and the socket it asks for.

    amqp://USER:PASSWORD@HOST:PORT/VHOST, as rabbitmq-c reads it, or
    amqps://... for TLS (port 5671 unless given), with RabbitMQ's own URI
    query parameters for it (those its shovels and federation take):

        cacertfile=PATH   the CAs that may sign the server's certificate
                          (default: the system's, OpenSSL's default paths)
        certfile=PATH     a client certificate (PEM, its chain after it),
        keyfile=PATH      and its key (PEM): both or neither
        password=SECRET   the key's password, if it is encrypted
        verify=verify_peer|verify_none
                          verify_peer (the default) checks the server's
                          certificate and that it names HOST; verify_none
                          checks neither (encrypted, but to anyone)

    Values are percent-decoded; any other parameter, one given twice, or
    one of these on an amqp:// URL, is refused, so that a typo does not
    turn into a connection without the check it asked for. The files are
    loaded when the URL is read, as a connection loads them, into a TLS
    context thrown away after (so --check-config finds a wrong path, a
    directory, a file without a certificate, a key that is not the
    certificate's, a wrong password or an encrypted key without one), and
    read again at each connection.

    The URL is a secret: it holds the login password, and the key's. No
    reason and no shown URL quotes either, nor what may be a password's
    tail: the pair after password= (an & in the password not written %26)
    and a pair holding an @ (a ? in a user or password not written %3F).
    The URL shown is a URL: the user and vhost %-encoded, an IPv6 address
    in brackets.
*/

#ifndef ARB_UPSTREAM_URL_H
#define ARB_UPSTREAM_URL_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _arb_upstream_url_t arb_upstream_url_t;

//  Reads text. NULL, with why (never quoting text: it may hold a
//  password), if it is not such a URL.
arb_upstream_url_t *arb_upstream_url_new (const char *text, char *why, size_t size);

void arb_upstream_url_destroy (arb_upstream_url_t **self_p);

//  Host, port, user, password and vhost, decoded (borrowed).
const struct amqp_connection_info *arb_upstream_url_info (arb_upstream_url_t *self);

//  The URL for logs: its password left out, the key's written ***, the
//  vhost and the other parameters as given (borrowed).
const char *arb_upstream_url_shown (arb_upstream_url_t *self);

//  Whether it asks for TLS (amqps://).
bool arb_upstream_url_tls (arb_upstream_url_t *self);

//  A new socket of conn for the URL, not yet open: TCP, or TLS at version
//  1.2 at least with the URL's certificates and checks. NULL with why.
amqp_socket_t *arb_upstream_url_socket (arb_upstream_url_t *self,
                                        amqp_connection_state_t conn,
                                        char *why,
                                        size_t size);

//  After a TLS socket of it failed to open: why the server's certificate
//  was refused (the chain, the name), or NULL if it was not. Clears the
//  thread's OpenSSL errors.
const char *arb_upstream_url_refused (arb_upstream_url_t *self);

#endif
