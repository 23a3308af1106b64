/*  arbiter_gateway.c — arbiter-gateway: lets programs written for Kestrel
    and tasker's REST API (and, next, AMQP) use arbiter unchanged, and shows
    the system in a browser. Settings (command line and config file, one
    table), then the gateway's loop until SIGINT/SIGTERM.
*/

#include "arb_amqp.h"
#include "arb_gateway.h"
#include "arb_options.h"

#define ARB_GATEWAY_CONFIG "/etc/arbiter/arbiter-gateway.conf"

typedef struct {
    const char *broker;
    const char *name;
    uint64_t rpc_timeout_ms;
    uint64_t max_payload;
    const char *amqp;
    uint64_t amqp_frame_max;
    uint64_t amqp_channel_max;
    uint64_t amqp_heartbeat_ms;
    const char *amqp_vhosts;
    zhashx_t *users;  //  [user.NAME] sections: NAME -> owned zhashx of key -> value
} s_settings_t;

//  A [user.NAME] section: password, vhosts.
static int
s_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    if (strncmp (section, "user.", 5) != 0 || !section[5]) {
        snprintf (why, size, "unknown section [%s] (sections are [user.NAME])", section);
        return -1;
    }
    if (!streq (key, "password") && !streq (key, "vhosts")) {
        snprintf (why, size, "unknown key (a user has password and vhosts)");
        return -1;
    }
    zhashx_t *user = (zhashx_t *) zhashx_lookup (settings->users, section + 5);
    if (!user) {
        user = zhashx_new ();
        zhashx_set_destructor (user, (zhashx_destructor_fn *) zstr_free);
        zhashx_set_duplicator (user, (zhashx_duplicator_fn *) strdup);
        zhashx_insert (settings->users, section + 5, user);
    }
    zhashx_update (user, key, (void *) value);
    return 0;
}

static void
s_user_table_free (void **item)
{
    zhashx_destroy ((zhashx_t **) item);
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
        .amqp = "127.0.0.1:5672",
        .amqp_frame_max = 131072,
        .amqp_channel_max = 2047,
        .amqp_heartbeat_ms = 60000,
        .amqp_vhosts = "/",
        .users = zhashx_new (),
    };
    zhashx_set_destructor (settings.users, s_user_table_free);
    arb_option_t table[] = {
        {"broker", 'b', ARB_OPT_STR, &settings.broker, 0, 0, "EP",
         "the broker's endpoint (default $ARBITER_BROKER, else tcp://127.0.0.1:7700)"},
        {"name", 0, ARB_OPT_STR, &settings.name, 0, 0, "NAME",
         "the gateway's worker name at the broker (default host.pid)"},
        {"rpc-timeout", 0, ARB_OPT_SECONDS, &settings.rpc_timeout_ms, 100, 3600 * 1000, "S",
         "a request the broker has not answered by then fails (default 5)"},
        {"max-payload", 0, ARB_OPT_BYTES, &settings.max_payload, 1, 1ull << 30, "BYTES",
         "largest item, as the broker's --max-payload (default 16M)"},
        {"amqp", 0, ARB_OPT_STR, &settings.amqp, 0, 0, "ADDR",
         "AMQP 0-9-1 listener, IPv4 HOST:PORT (default 127.0.0.1:5672; \"off\": none)"},
        {"amqp-frame-max", 0, ARB_OPT_BYTES, &settings.amqp_frame_max, 4096, 1u << 20, "BYTES",
         "AMQP frame_max proposed to clients (default 131072)"},
        {"amqp-channel-max", 0, ARB_OPT_UINT, &settings.amqp_channel_max, 1, 65535, "N",
         "AMQP channel_max proposed to clients (default 2047)"},
        {"amqp-heartbeat", 0, ARB_OPT_SECONDS, &settings.amqp_heartbeat_ms, 0, 65535 * 1000, "S",
         "AMQP heartbeat proposed to clients, whole seconds (default 60; 0: none)"},
        {"amqp-vhosts", 0, ARB_OPT_STR, &settings.amqp_vhosts, 0, 0, "LIST",
         "AMQP virtual hosts, comma-separated (default \"/\")"},
    };
    arb_options_t *options = arb_options_new (
        "arbiter-gateway", table, sizeof (table) / sizeof (table[0]), ARB_GATEWAY_CONFIG);
    arb_options_set_about (
        options, "[OPTIONS]",
        "Serves AMQP 0-9-1 clients from an arbiter broker. AMQP users are [user.NAME] sections of "
        "the config file (password = ..., vhosts = a,b); without any, guest/guest from loopback "
        "addresses only.");
    arb_options_set_sections (options, s_section, &settings);
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
        arb_amqp_t *amqp = NULL;
        if (gateway && !streq (settings.amqp, "off")) {
            arb_amqp_config_t aconfig = {
                .listen = settings.amqp,
                .frame_max = (uint32_t) settings.amqp_frame_max,
                .channel_max = (uint16_t) settings.amqp_channel_max,
                .heartbeat = (uint16_t) (settings.amqp_heartbeat_ms / 1000),
                .max_payload = (size_t) settings.max_payload,
                .vhosts = settings.amqp_vhosts,
            };
            amqp = arb_amqp_new (gateway, &aconfig);
            for (zhashx_t *user = (zhashx_t *) zhashx_first (settings.users); amqp && user;
                 user = (zhashx_t *) zhashx_next (settings.users))
                arb_amqp_add_user (amqp, (const char *) zhashx_cursor (settings.users),
                                   (const char *) zhashx_lookup (user, "password"),
                                   (const char *) zhashx_lookup (user, "vhosts"));
            if (!amqp)
                arb_gateway_destroy (&gateway);
        }
        if (!gateway)
            status = 1;
        else {
            zsys_info ("gateway: started broker=%s version=%s", settings.broker, ARB_VERSION);
            status = arb_gateway_run (gateway) == 0 ? 0 : 1;
            zsys_info ("gateway: stopping");
            arb_amqp_destroy (&amqp);
            arb_gateway_destroy (&gateway);
        }
    }
    arb_options_destroy (&options);
    zhashx_destroy (&settings.users);
    return status;
}
