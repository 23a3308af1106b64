/*  arb_fdlimit.c — the descriptors a server process may hold; see
    arb_fdlimit.h. */

#include "arb_fdlimit.h"

#include <sys/resource.h>

uint64_t
arb_fdlimit_raise (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = {limit.rlim_max, limit.rlim_max};
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) limit.rlim_cur;
}
