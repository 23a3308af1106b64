/*  arbiter_gateway.c — arbiter-gateway: lets programs written for Kestrel,
    tasker's REST API (and, later, AMQP) use arbiter unchanged, and shows
    the system in a browser. Settings, logging, then the gateway's loop
    until SIGINT/SIGTERM.
*/

#include "arb_options.h"
#include "arb_proto.h"
#include "arb_reactor.h"

int
main (int argc, char **argv)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const char *broker = "tcp://127.0.0.1:7700";
    arb_option_t table[] = {
        {"broker", 'b', ARB_OPT_STR, &broker, 0, 0, "EP", "the broker's endpoint"},
    };
    arb_options_t *options =
        arb_options_new ("arbiter-gateway", table, sizeof (table) / sizeof (table[0]), NULL);
    int first = argc;
    arb_options_rc_t rc = arb_options_parse (options, argc, argv, &first);
    int status = rc == ARB_OPTIONS_BAD ? 2 : 0;
    if (rc == ARB_OPTIONS_CHECK)
        arb_options_print (options, stdout);
    if (rc == ARB_OPTIONS_RUN) {
        arb_reactor_t *reactor = arb_reactor_new ();
        status = reactor && arb_reactor_run (reactor) == 0 ? 0 : 1;
        arb_reactor_destroy (&reactor);
    }
    arb_options_destroy (&options);
    return status;
}
