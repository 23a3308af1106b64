/*  arb_hangup.h — SIGHUP, a stop like SIGTERM in the servers.

    Closing the terminal of a broker, worker or gateway started in the
    foreground sends it SIGHUP, whose default action ends the process at
    once: the broker then left no stop record (its next start took the run
    for a crash and counted a delivery more for every ready task), a worker
    dropped its running tasks without a drain. czmq's zsys_init catches
    SIGINT and SIGTERM only; arbiterd, arbiter-worker and arbiter-gateway
    give SIGHUP the same action, so that it stops them as SIGTERM does. None
    of them reads its configuration again on SIGHUP.
*/

#ifndef ARB_HANGUP_H
#define ARB_HANGUP_H

//  Gives SIGHUP the action SIGTERM has now (czmq's handler, which sets
//  zsys_interrupted, once zsys_init or arb_log_new ran). A SIGHUP the
//  process was started ignoring (nohup) stays ignored. If sigaction fails,
//  says so in a warning: SIGHUP then ends the process at once, as before.
void arb_hangup_catch (void);

#endif
