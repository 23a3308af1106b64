/*  arbiter_gateway.c — arbiter-gateway: lets programs written for Kestrel
    and tasker's REST API (and, next, AMQP) use arbiter unchanged, and shows
    the system in a browser. Settings (command line and config file, one
    table), then the gateway's loop until SIGINT/SIGTERM.
*/

#include "arb_gateway.h"
#include "arb_options.h"

#define ARB_GATEWAY_CONFIG "/etc/arbiter/arbiter-gateway.conf"

typedef struct {
    const char *broker;
    const char *name;
    uint64_t rpc_timeout_ms;
    uint64_t max_payload;
} s_settings_t;

int
main (int argc, char **argv)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    s_settings_t settings = {
        .broker = getenv ("ARBITER_BROKER") ? getenv ("ARBITER_BROKER") : "tcp://127.0.0.1:7700",
        .name = NULL,
        .rpc_timeout_ms = 5000,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
    };
    arb_option_t table[] = {
        {"broker", 'b', ARB_OPT_STR, &settings.broker, 0, 0, "EP",
         "the broker's endpoint (default $ARBITER_BROKER, else tcp://127.0.0.1:7700)"},
        {"name", 0, ARB_OPT_STR, &settings.name, 0, 0, "NAME",
         "the gateway's worker name at the broker (default host.pid)"},
        {"rpc-timeout", 0, ARB_OPT_SECONDS, &settings.rpc_timeout_ms, 100, 3600 * 1000, "S",
         "a request the broker has not answered by then fails (default 5)"},
        {"max-payload", 0, ARB_OPT_BYTES, &settings.max_payload, 1, 1ull << 30, "BYTES",
         "largest item, as the broker's --max-payload (default 16M)"},
    };
    arb_options_t *options = arb_options_new (
        "arbiter-gateway", table, sizeof (table) / sizeof (table[0]), ARB_GATEWAY_CONFIG);
    arb_options_set_about (options, "[OPTIONS]",
                           "Serves Kestrel and HTTP clients from an arbiter broker.");
    int first = argc;
    arb_options_rc_t rc = arb_options_parse (options, argc, argv, &first);
    int status = rc == ARB_OPTIONS_BAD ? 2 : 0;
    if (rc == ARB_OPTIONS_RUN && first < argc) {
        fprintf (stderr, "arbiter-gateway: '%s' is not an option (see arbiter-gateway --help)\n",
                 argv[first]);
        status = 2;
    }
    else if (rc == ARB_OPTIONS_CHECK)
        arb_options_print (options, stdout);
    else if (rc == ARB_OPTIONS_RUN) {
        arb_gateway_config_t config = {
            .broker = settings.broker,
            .name = settings.name,
            .request_timeout_ms = settings.rpc_timeout_ms,
            .max_payload = (size_t) settings.max_payload,
        };
        arb_gateway_t *gateway = arb_gateway_new (&config);
        if (!gateway)
            status = 1;
        else {
            zsys_info ("gateway: started broker=%s version=%s", settings.broker, ARB_VERSION);
            status = arb_gateway_run (gateway) == 0 ? 0 : 1;
            zsys_info ("gateway: stopping");
            arb_gateway_destroy (&gateway);
        }
    }
    arb_options_destroy (&options);
    return status;
}
