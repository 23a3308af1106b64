/*  arb_fdlimit.h — the descriptors a server process may hold.

    Every connection is a descriptor, and a shell's soft limit is often
    1,024 while the hard one is far higher: a server started by hand
    (tools/arbiter-dev up, a terminal) ran out at a thousand clients, and
    stopped accepting until some left. The servers take all the hard limit
    allows at start, as redis raises its own for its maxclients; the
    systemd units set LimitNOFILE too.
*/

#ifndef ARB_FDLIMIT_H
#define ARB_FDLIMIT_H

#include <stdint.h>

//  Raises the soft limit of open files to the hard one; returns the soft
//  limit now in force (0 if it cannot be read).
uint64_t arb_fdlimit_raise (void);

#endif
