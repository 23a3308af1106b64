/*  arb_hangup.c — SIGHUP as SIGTERM; see arb_hangup.h. */

#include "arb_hangup.h"

#include <signal.h>
#include <stddef.h>

int
arb_hangup_catch (void)
{
    struct sigaction term, hup;
    if (sigaction (SIGTERM, NULL, &term) || sigaction (SIGHUP, NULL, &hup))
        return -1;
    //  nohup's promise: the terminal's end does not stop the program
    if (hup.sa_handler == SIG_IGN)
        return 0;
    return sigaction (SIGHUP, &term, NULL);
}
