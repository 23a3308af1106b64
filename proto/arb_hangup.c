/*  arb_hangup.c — SIGHUP as SIGTERM; see arb_hangup.h. */

#include "arb_hangup.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

void
arb_hangup_catch (void)
{
    struct sigaction term, hup;
    if (sigaction (SIGTERM, NULL, &term)
        || sigaction (SIGHUP, NULL, &hup)
        //  nohup's promise: the terminal's end does not stop the program
        || (hup.sa_handler != SIG_IGN && sigaction (SIGHUP, &term, NULL)))
        zsys_warning ("cannot catch SIGHUP (it will end the process at once): %s",
                      strerror (errno));
}
