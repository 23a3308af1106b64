/*  arbiter_gateway.c — arbiter-gateway: lets programs written for Kestrel
    and tasker's REST API (and, next, AMQP) use arbiter unchanged, shows
    the system in a browser, and bridges the queues of an upstream
    RabbitMQ into arbiter. Settings (command line and config file, one
    table), then the gateway's loop until SIGINT/SIGTERM.
*/

#include "arb_bridges.h"
#include "arb_gateway.h"
#include "arb_options.h"

#define ARB_GATEWAY_CONFIG "/etc/arbiter/arbiter-gateway.conf"

typedef struct {
    const char *broker;
    const char *name;
    uint64_t rpc_timeout_ms;
    uint64_t max_payload;
    const char *upstream;
    uint64_t upstream_reconnect_max_ms;
} s_settings_t;

//  The config file's sections: [bridge.NAME] (arg: the arb_bridges_t).
static int
s_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    return arb_bridges_section (arg, section, key, value, why, size);
}

//  Starts the bridges the config names; a gateway without any says so if
//  it was given an upstream.
static void
s_bridges_start (arb_bridges_t *bridges, arb_gateway_t *gateway, const s_settings_t *settings)
{
    if (arb_bridges_size (bridges) == 0) {
        if (settings->upstream)
            zsys_warning ("gateway: --upstream is set but no [bridge.NAME] section names a queue: "
                          "nothing is bridged");
        return;
    }
    arb_bridges_settings_t shared = {
        .upstream = settings->upstream,
        .reconnect_max_ms = settings->upstream_reconnect_max_ms,
        .max_payload = (size_t) settings->max_payload,
    };
    arb_bridges_start (bridges, gateway, &shared);
}

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
        .upstream = NULL,
        .upstream_reconnect_max_ms = 30000,
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
        {"upstream", 0, ARB_OPT_STR, &settings.upstream, 0, 0, "URL",
         "the RabbitMQ whose queues [bridge.NAME] sections bridge: "
         "amqp://user:password@host:port/vhost"},
        {"upstream-reconnect-max", 0, ARB_OPT_SECONDS, &settings.upstream_reconnect_max_ms, 500,
         3600 * 1000, "S",
         "longest wait between attempts to reach the upstream (from 0.5, doubling; default 30)"},
    };
    arb_options_t *options = arb_options_new (
        "arbiter-gateway", table, sizeof (table) / sizeof (table[0]), ARB_GATEWAY_CONFIG);
    arb_options_set_about (
        options, "[OPTIONS]",
        "Serves Kestrel and HTTP clients from an arbiter broker.\n"
        "\n"
        "The config file may also hold [bridge.NAME] sections: each bridges one queue of\n"
        "an upstream RabbitMQ into arbiter (its messages become tasks, and each task's\n"
        "result is published to the message's reply_to), with the keys upstream (a URL;\n"
        "default --upstream), upstream-queue, queue, task (each default NAME), prefetch\n"
        "(default 100), max-pending (default 10000), and the tasks' priority, retries,\n"
        "timeout, retention, backoff (none, fixed, exponential), backoff-delay and\n"
        "backoff-cap. See docs/gateway.md and examples/arbiter-gateway.conf.");
    arb_bridges_t *bridges = arb_bridges_new ();
    arb_options_set_sections (options, s_section, bridges);
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
            s_bridges_start (bridges, gateway, &settings);
            zsys_info ("gateway: started broker=%s version=%s", settings.broker, ARB_VERSION);
            status = arb_gateway_run (gateway) == 0 ? 0 : 1;
            zsys_info ("gateway: stopping");
            arb_bridges_destroy (&bridges);
            arb_gateway_destroy (&gateway);
        }
    }
    arb_bridges_destroy (&bridges);
    arb_options_destroy (&options);
    return status;
}
