/*  arb_endpoint.h — the one check of a ZeroMQ endpoint that every arbiter
    program applies to the endpoints it is given: arbiterd's --bind, the
    --broker of the CLI, the worker and the gateway, libarbiter's
    arb_client_new and arb_link_new, and --check-config, which refuses what
    a start would.

    libzmq takes "tcp://127.0.0.1:99999" and binds or connects to the port
    modulo 65536 (34463), and ":65536" to port 0, a random one; a program
    that passed it on would log one endpoint and use another. So a port is
    digits, from 1 to 65535, checked here before libzmq sees it.

    Pure C, no state.
*/

#ifndef ARB_ENDPOINT_H
#define ARB_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

//  Checks endpoint: tcp://HOST:PORT (HOST a name, an address, an
//  interface or [IPv6], not empty; PORT digits from 1 to 65535; on
//  connect, a source address may come first, "tcp://SRC;HOST:PORT"),
//  ipc://PATH or inproc://NAME (not empty). With bind, HOST may be * (every
//  interface) and PORT * or 0 (a port the system chooses). Returns 0, or
//  -1 with why filled: one line that quotes at most 64 bytes of endpoint.
int arb_endpoint_check (const char *endpoint, bool bind, char *why, size_t size);

//  Checks a port as arb_endpoint_check does (and the gateway's upstream
//  URLs): 1 to 65535 in digits, no sign, no blanks; with ephemeral, * or
//  0 too. Returns 0, or -1 with why filled: one line that quotes at most
//  16 bytes of port.
int arb_endpoint_port_check (const char *port, bool ephemeral, char *why, size_t size);

#endif
