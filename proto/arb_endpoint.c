/*  arb_endpoint.c — the check of a ZeroMQ endpoint (arb_endpoint.h).

    The rules are the forms the programs document and libzmq serves for
    them; what libzmq would take but wrap or guess at (a port over 65535,
    "tcp://host" without one, a port in hex) is refused, so that the
    endpoint a program logs is the one it uses.
*/

#include "arb_endpoint.h"

#include <stdio.h>
#include <string.h>

int
arb_endpoint_port_check (const char *port, bool ephemeral, char *why, size_t size)
{
    const char *any = ephemeral ? ", or * or 0 for any free port" : "";
    if (ephemeral && (strcmp (port, "*") == 0 || strcmp (port, "0") == 0))
        return 0;
    size_t digits = strspn (port, "0123456789");
    if (!*port || port[digits]) {
        snprintf (why, size, "the port '%.16s' is not a number (1 to 65535%s)", port, any);
        return -1;
    }
    unsigned long number = 0;
    for (size_t i = 0; i < digits && number <= 65535; i++)
        number = number * 10 + (unsigned long) (port[i] - '0');
    if (number < 1 || number > 65535) {
        snprintf (why, size, "the port %.16s is out of range (1 to 65535%s)", port, any);
        return -1;
    }
    return 0;
}

int
arb_endpoint_check (const char *endpoint, bool bind, char *why, size_t size)
{
    if (!endpoint || !*endpoint) {
        snprintf (why, size, "expected an endpoint (tcp://HOST:PORT), not an empty value");
        return -1;
    }
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0) {
        if (!endpoint[strncmp (endpoint, "ipc://", 6) == 0 ? 6 : 9]) {
            snprintf (why, size, "'%.64s' names no path", endpoint);
            return -1;
        }
        return 0;
    }
    if (strncmp (endpoint, "tcp://", 6) != 0) {
        snprintf (why, size, "expected tcp://HOST:PORT (or ipc://PATH, inproc://NAME), not '%.64s'",
                  endpoint);
        return -1;
    }
    const char *host = endpoint + 6;
    //  a connect may name its source address first: SRC;HOST:PORT
    const char *semicolon = bind ? NULL : strchr (host, ';');
    if (semicolon)
        host = semicolon + 1;
    const char *colon = strrchr (host, ':');
    //  [::1] without a port ends in ']'
    if (!colon || (host[0] == '[' && strchr (colon, ']'))) {
        snprintf (why, size, "'%.64s' has no port (tcp://HOST:PORT)", endpoint);
        return -1;
    }
    size_t host_size = (size_t) (colon - host);
    bool bracketed = host_size >= 2 && host[0] == '[' && host[host_size - 1] == ']';
    if (host_size == 0 || (bracketed && host_size == 2)) {
        snprintf (why, size, "'%.64s' has no host (tcp://HOST:PORT)", endpoint);
        return -1;
    }
    if (!bind && host_size == 1 && host[0] == '*') {
        snprintf (why, size, "'%.64s': * is for binding, not a host to connect to", endpoint);
        return -1;
    }
    char reason[128];
    if (arb_endpoint_port_check (colon + 1, bind, reason, sizeof (reason))) {
        snprintf (why, size, "'%.64s': %s", endpoint, reason);
        return -1;
    }
    return 0;
}
