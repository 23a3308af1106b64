/*  arbiter_gateway.c — arbiter-gateway: lets programs written for Kestrel,
    tasker's REST API and RabbitMQ (AMQP 0-9-1) use arbiter unchanged, shows
    the system in a browser, and bridges the queues of an upstream
    RabbitMQ into arbiter. Settings (command line and config file, one
    table), then the gateway's loop until SIGINT/SIGTERM/SIGHUP.
*/

#include "arb_admin.h"
#include "arb_amqp.h"
#include "arb_bridges.h"
#include "arb_defaults.h"
#include "arb_endpoint.h"
#include "arb_fdlimit.h"
#include "arb_gateway.h"
#include "arb_hangup.h"
#include "arb_http.h"
#include "arb_metrics.h"
#include "arb_kestrel.h"
#include "arb_listener.h"
#include "arb_log.h"
#include "arb_curve_options.h"
#include "arb_options.h"
#include "arb_static.h"
#include "arb_tasker.h"
#include "arb_upstream_url.h"

#include <inttypes.h>

//  The installed binary's default config file (see broker/arbiterd.c).
#ifdef ARB_CONFIG_DIR
#define ARB_GATEWAY_CONFIG ARB_CONFIG_DIR "/arbiter-gateway.conf"
#else
#define ARB_GATEWAY_CONFIG NULL
#endif

typedef struct {
    const char *broker;
    const char *cert;
    const char *broker_key;
    const char *name;
    uint64_t rpc_timeout_ms;
    uint64_t max_payload;
    const char *http;
    const char *http_token;
    uint64_t http_max_body;
    uint64_t http_connections;
    uint64_t http_idle_ms;
    uint64_t http_request_ms;
    const char *kestrel;
    uint64_t kestrel_max_item;
    uint64_t kestrel_max_connections;
    uint64_t kestrel_request_ms;
    uint64_t kestrel_idle_ms;
    bool kestrel_allow_shutdown;
    bool kestrel_bare_value_key;
    bool kestrel_insecure;
    uint64_t message_retention_ms;
    const char *upstream;
    uint64_t upstream_reconnect_max_ms;
    const char *amqp;
    uint64_t amqp_frame_max;
    uint64_t amqp_channel_max;
    uint64_t amqp_heartbeat_ms;
    uint64_t amqp_max_connections;
    const char *amqp_vhosts;
    int log_level;  //  index in ARB_LOG_LEVELS
} s_settings_t;

//  What the config file's sections fill.
typedef struct {
    arb_defaults_t *defaults;  //  [queue.NAME], [type.NAME]
    arb_bridges_t *bridges;    //  [bridge.NAME]
    zhashx_t *users;           //  [user.NAME]: NAME -> owned zhashx of key -> value
    arb_options_t *options;    //  borrowed: the settings being read
    zlist_t *url_problems;     //  owned list of owned strings: bad upstream URLs (--check-config)
    zhashx_t *headers;         //  owned: each section's name -> where its header is ("FILE:LINE")
    char *upstream_shown;      //  owned: --upstream as logs show it (--check-config), or NULL
    zlist_t *shown;            //  owned list of owned lines: the sections as read (--check-config)
    char *last;                //  owned: the section of the last line shown, or NULL
} s_sections_t;

//  An upstream URL, given where options says: with --check-config, a
//  problem is kept (said with the others once all is read, each where it
//  was given, and the exit is 2). A start takes it unread: a bad URL
//  stops only the bridges that use it, when they start, and the gateway
//  serves its other protocols (docs/gateway.md).
//  Returns the URL as logs show it (owned), or NULL: refused, or not read.
static char *
s_url_check (s_sections_t *sections, const char *url)
{
    if (!arb_options_is_checking (sections->options))
        return NULL;
    char why[256], where[512];
    arb_upstream_url_t *parsed = arb_upstream_url_new (url, why, sizeof (why));
    if (!parsed) {
        arb_options_where (sections->options, where, sizeof (where));
        char *problem = zsys_sprintf ("%s: %s", where, why);
        zlist_append (sections->url_problems, problem);  //  autofree: the list keeps a copy
        zstr_free (&problem);
        return NULL;
    }
    char *shown = strdup (arb_upstream_url_shown (parsed));
    arb_upstream_url_destroy (&parsed);
    return shown;
}

//  A section's key as --check-config prints it, after the top-level
//  settings: as the file gave it (checked), under its section's header;
//  secrets not shown (a user's password, an upstream URL's passwords).
static void
s_show_line (s_sections_t *sections, char *line)
{
    zlist_append (sections->shown, line);  //  autofree: the list keeps a copy
    zstr_free (&line);
}

static void
s_show_section (s_sections_t *sections, const char *section, const char *key, const char *value)
{
    if (!arb_options_is_checking (sections->options))
        return;
    if (!sections->last || !streq (sections->last, section)) {
        s_show_line (sections, zsys_sprintf ("\n[%s]", section));
        zstr_free (&sections->last);
        sections->last = strdup (section);
    }
    if (!key)
        return;
    char *shown = NULL;
    if (strncmp (section, "user.", 5) == 0 && streq (key, "password"))
        shown = strdup ("***");
    else if (streq (key, "upstream") && !(shown = s_url_check (sections, value)))
        shown = strdup ("(not shown)");
    s_show_line (sections, zsys_sprintf ("%s = %s", key, shown ? shown : value));
    zstr_free (&shown);
}

//  An AMQP user: password, vhosts; where its section's header is, under
//  the key "where" (no key of the file's: those are refused), for
//  s_check_users.
static int
s_user_section (s_sections_t *sections,
                const char *section,
                const char *key,
                const char *value,
                char *why,
                size_t size)
{
    zhashx_t *users = sections->users;
    if (!section[5]) {
        snprintf (why, size, "a user section is [user.NAME]");
        return -1;
    }
    if (key && !streq (key, "password") && !streq (key, "vhosts")) {
        snprintf (why, size, "unknown key (a user has password and vhosts)");
        return -1;
    }
    zhashx_t *user = (zhashx_t *) zhashx_lookup (users, section + 5);
    if (!user) {
        user = zhashx_new ();
        zhashx_set_destructor (user, (zhashx_destructor_fn *) zstr_free);
        zhashx_set_duplicator (user, (zhashx_duplicator_fn *) strdup);
        zhashx_insert (users, section + 5, user);
        char where[512];
        arb_options_section_where (sections->options, where, sizeof (where));
        zhashx_insert (user, "where", where);
    }
    if (key)  //  (none: a section without keys, refused later for its password)
        zhashx_update (user, key, (void *) value);
    return 0;
}

static void
s_user_table_free (void **item)
{
    zhashx_destroy ((zhashx_t **) item);
}

static int
s_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    s_sections_t *sections = (s_sections_t *) arg;
    //  inih merges a section given twice into one: refused instead, as
    //  the second may be a copy meant for another name
    char where[512];
    arb_options_section_where (sections->options, where, sizeof (where));
    const char *first = (const char *) zhashx_lookup (sections->headers, section);
    if (first && !streq (first, where)) {
        snprintf (why, size, "[%s] is given twice (first at %s): one section a name", section,
                  first);
        return -1;
    }
    if (!first)
        zhashx_insert (sections->headers, section, where);
    int rc;
    if (strncmp (section, "bridge.", 7) == 0)
        rc = arb_bridges_section (sections->bridges, section, key, value, why, size);
    else if (strncmp (section, "queue.", 6) == 0 || strncmp (section, "type.", 5) == 0)
        rc = arb_defaults_section (sections->defaults, section, key, value, why, size);
    else if (strncmp (section, "user.", 5) == 0)
        rc = s_user_section (sections, section, key, value, why, size);
    else {
        snprintf (why, size,
                  "unknown section (expected [queue.NAME], [type.NAME], [bridge.NAME] "
                  "or [user.NAME])");
        return -1;
    }
    if (rc == 0)  //  (an upstream URL checked there too, where it was given)
        s_show_section (sections, section, key, value);
    return rc;
}

static arb_amqp_config_t
s_amqp_config (const s_settings_t *settings, arb_defaults_t *defaults)
{
    return (arb_amqp_config_t){
        .listen = settings->amqp,
        .frame_max = (uint32_t) settings->amqp_frame_max,
        .channel_max = (uint16_t) settings->amqp_channel_max,
        .heartbeat = (uint16_t) (settings->amqp_heartbeat_ms / 1000),
        .max_connections = (size_t) settings->amqp_max_connections,
        .max_payload = (size_t) settings->max_payload,
        .vhosts = settings->amqp_vhosts,
        .retention_ms = settings->message_retention_ms,
        .defaults = defaults,
    };
}

//  Starts the AMQP server, unless its address is "off": 0, or -1.
static int
s_amqp_start (arb_amqp_t **amqp_p,
              arb_gateway_t *gateway,
              const s_settings_t *settings,
              zhashx_t *users,
              arb_defaults_t *defaults)
{
    if (streq (settings->amqp, "off"))
        return 0;
    arb_amqp_config_t config = s_amqp_config (settings, defaults);
    arb_amqp_t *amqp = arb_amqp_new (gateway, &config);
    if (!amqp)
        return -1;
    for (zhashx_t *user = (zhashx_t *) zhashx_first (users); user;
         user = (zhashx_t *) zhashx_next (users))
        arb_amqp_add_user (amqp, (const char *) zhashx_cursor (users),
                           (const char *) zhashx_lookup (user, "password"),
                           (const char *) zhashx_lookup (user, "vhosts"));
    *amqp_p = amqp;
    return 0;
}

//  Starts the bridges the config names; a gateway without any says so if
//  it was given an upstream.
static void
s_bridges_start (arb_bridges_t *bridges,
                 arb_gateway_t *gateway,
                 const s_settings_t *settings,
                 arb_defaults_t *defaults)
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
        .defaults = defaults,
    };
    arb_bridges_start (bridges, gateway, &shared);
}

//  The HTTP server and what it serves.
typedef struct {
    arb_http_t *http;
    arb_tasker_t *tasker;
} s_web_t;

static arb_http_config_t
s_http_config (const s_settings_t *settings)
{
    return (arb_http_config_t){
        .address = settings->http,
        .token = settings->http_token,
        .max_body = (size_t) settings->http_max_body,
        .max_connections = (unsigned) settings->http_connections,
        .idle_timeout_s = (unsigned) ((settings->http_idle_ms + 999) / 1000),
        .request_timeout_ms = settings->http_request_ms,
    };
}

//  Starts the HTTP server, unless its address is "off". 0, or -1.
static int
s_web_start (s_web_t *web,
             arb_gateway_t *gateway,
             const s_settings_t *settings,
             arb_defaults_t *defaults)
{
    if (streq (settings->http, "off"))
        return 0;
    arb_http_config_t config = s_http_config (settings);
    web->http = arb_http_new (gateway, &config);
    if (!web->http)
        return -1;
    arb_admin_serve (web->http);
    arb_metrics_serve (web->http);
    arb_static_serve (web->http);
    web->tasker = arb_tasker_new (web->http, defaults);
    return 0;
}

static void
s_web_stop (s_web_t *web)
{
    arb_http_destroy (&web->http);
    arb_tasker_destroy (&web->tasker);
}

#define S_KESTREL_MAX_ITEM (1u << 20)  //  --kestrel-max-item's default, bytes

//  A Kestrel item over --max-payload could never be stored: a
//  --kestrel-max-item set over it is refused, by --check-config and at
//  start alike, rather than cut to --max-payload behind the user's back;
//  the default (1M) is lowered to a smaller --max-payload, and
//  --check-config shows what is used. 0, or -1 after saying why.
static int
s_check_item (s_settings_t *settings)
{
    if (settings->kestrel_max_item <= settings->max_payload)
        return 0;
    if (settings->kestrel_max_item == S_KESTREL_MAX_ITEM || streq (settings->kestrel, "off")) {
        settings->kestrel_max_item = settings->max_payload;
        return 0;
    }
    fprintf (stderr,
             "arbiter-gateway: kestrel-max-item %" PRIu64 " is over max-payload %" PRIu64
             " (a larger item could never be stored): lower it or raise max-payload\n",
             settings->kestrel_max_item, settings->max_payload);
    return -1;
}

//  AMQP's heartbeat is whole seconds (Tune's short): a fraction was cut
//  behind the user's back, and `amqp-heartbeat = 0.5` turned heartbeats
//  off. Refused, by --check-config and at start alike. 0, or -1 after
//  saying why.
static int
s_check_heartbeat (const s_settings_t *settings)
{
    if (settings->amqp_heartbeat_ms % 1000 == 0 || streq (settings->amqp, "off"))
        return 0;
    fprintf (stderr,
             "arbiter-gateway: amqp-heartbeat %.3f is not a whole number of seconds (AMQP's "
             "heartbeat is whole seconds; 0: none)\n",
             settings->amqp_heartbeat_ms / 1000.0);
    return -1;
}

//  `http-token =` (empty, or a template that filled in nothing) ran the
//  server without a token, every route open, while --check-config wrote
//  it as *** as if one were set. Refused, by --check-config and at
//  start alike: leave the key out for none. 0, or -1 after saying why.
static int
s_check_token (const s_settings_t *settings)
{
    if (!settings->http_token || *settings->http_token || streq (settings->http, "off"))
        return 0;
    fprintf (stderr,
             "arbiter-gateway: http-token is empty: give the token, or leave the key out for "
             "none (every route open, the HTTP server on loopback only)\n");
    return -1;
}

//  A [bridge.NAME] without an upstream key uses --upstream: without that
//  either, a start logs it and leaves that bridge out; --check-config
//  says it with the bad URLs, where the section's header is.
static void
s_check_bridge_urls (s_sections_t *sections, const s_settings_t *settings)
{
    if (settings->upstream)
        return;
    zlist_t *names = arb_bridges_without_url (sections->bridges);
    for (const char *name = (const char *) zlist_first (names); name;
         name = (const char *) zlist_next (names)) {
        char section[128];  //  "bridge." and a name of 64 bytes at most
        snprintf (section, sizeof (section), "bridge.%s", name);
        char *problem =
            zsys_sprintf ("%s: [%s]: no upstream URL (give --upstream, or upstream in the section)",
                          (const char *) zhashx_lookup (sections->headers, section), section);
        zlist_append (sections->url_problems, problem);  //  autofree: the list keeps a copy
        zstr_free (&problem);
    }
    zlist_destroy (&names);
}

//  A user's vhosts: each one of amqp-vhosts (or "*", every one), else
//  the user's login would fail (530) for a reason the config hides; an
//  empty list is refused (leave the key out for every vhost). Says each
//  problem; 0, or -1.
static int
s_check_user_vhosts (const char *where,
                     const char *name,
                     const char *vhosts,
                     const s_settings_t *settings)
{
    if (!*vhosts) {
        fprintf (stderr,
                 "arbiter-gateway: %s: [user.%s]: vhosts is empty (leave it out for every "
                 "vhost, or name them)\n",
                 where, name);
        return -1;
    }
    const char *served = *settings->amqp_vhosts ? settings->amqp_vhosts : "/";
    int rc = 0;
    char *list = strdup (vhosts);
    char *save = NULL;
    for (char *tok = strtok_r (list, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok && !streq (tok, "*") && !arb_amqp_vhosts_name (served, tok)) {
            fprintf (stderr,
                     "arbiter-gateway: %s: [user.%s]: vhost '%s' is not one of amqp-vhosts "
                     "(%s)\n",
                     where, name, tok, served);
            rc = -1;
        }
    }
    free (list);
    return rc;
}

//  A [user.NAME] section without a password, or with `password =`, would
//  let that user in with an empty one: refused, by --check-config and at
//  start, where its header is; its vhosts as s_check_user_vhosts says.
//  Says each; 0, or -1.
static int
s_check_users (s_sections_t *sections, const s_settings_t *settings)
{
    int rc = 0;
    for (zhashx_t *user = (zhashx_t *) zhashx_first (sections->users); user;
         user = (zhashx_t *) zhashx_next (sections->users)) {
        const char *where = (const char *) zhashx_lookup (user, "where");
        const char *name = (const char *) zhashx_cursor (sections->users);
        const char *password = (const char *) zhashx_lookup (user, "password");
        const char *vhosts = (const char *) zhashx_lookup (user, "vhosts");
        if (!password || !*password) {
            fprintf (stderr,
                     "arbiter-gateway: %s: [user.%s]: %s (every AMQP user needs "
                     "`password = ...`, not empty)\n",
                     where, name, password ? "an empty password" : "no password");
            rc = -1;
        }
        if (vhosts && s_check_user_vhosts (where, name, vhosts, settings))
            rc = -1;
    }
    return rc;
}

//  Kestrel has no authentication, and the gateway acts on the broker with
//  its own (admin) rights: anyone who reaches the port could flush or
//  delete any queue. So, as arbiterd without --curve, it listens on
//  loopback only unless --kestrel-insecure says otherwise. 0, or -1
//  after logging why.
static int
s_check_kestrel_open (const s_settings_t *settings)
{
    if (settings->kestrel_insecure) {
        if (!arb_listener_is_loopback ("kestrel", settings->kestrel))
            zsys_warning ("kestrel: --kestrel-insecure: %s may be reached from other hosts, "
                          "without authentication; any of them can flush or delete queues",
                          settings->kestrel);
        return 0;
    }
    if (arb_listener_is_loopback ("kestrel", settings->kestrel))
        return 0;
    zsys_error ("kestrel: refusing to listen on %s without authentication (Kestrel has none): "
                "any host that reaches it could flush or delete queues with the gateway's "
                "rights. Listen on a loopback address, or give --kestrel-insecure to listen on "
                "it anyway",
                settings->kestrel);
    return -1;
}

//  What the servers' starts refuse before they listen (addresses,
//  vhosts, no HTTP token off loopback, Kestrel off loopback), for --check-config and before a
//  start binds anything. Each problem is logged; 0, or -1.
static int
s_check_servers (const s_settings_t *settings)
{
    int rc = 0;
    if (!streq (settings->kestrel, "off")
        && (arb_listener_check ("kestrel", settings->kestrel) || s_check_kestrel_open (settings)))
        rc = -1;
    arb_http_config_t http = s_http_config (settings);
    if (!streq (settings->http, "off") && arb_http_config_check (&http))
        rc = -1;
    arb_amqp_config_t amqp = s_amqp_config (settings, NULL);
    if (!streq (settings->amqp, "off") && arb_amqp_config_check (&amqp))
        rc = -1;
    return rc;
}

//  Values the table's types take but a start refuses (arb_link_new_curve,
//  a name over ARB_NAME_MAX), refused here with the file's line, and by
//  --check-config too; an upstream URL is checked by --check-config only
//  (s_url_check).
static int
s_check (void *arg, const arb_option_t *option, const char *text, char *why, size_t size)
{
    if (streq (option->name, "name") && strlen (text) > ARB_NAME_MAX) {
        snprintf (why, size, "not a worker name (at most %d bytes)", ARB_NAME_MAX);
        return -1;
    }
    //  the one check of every program's endpoints (arb_endpoint.h)
    if (streq (option->name, "broker"))
        return arb_endpoint_check (text, false, why, size);
    //  a certificate file this user cannot read, refused as the file is
    //  read, as the worker's (arb_curve_resolve_options reads its content
    //  once the broker key is known too)
    if ((streq (option->name, "cert")
         || (streq (option->name, "broker-key") && !arb_curve_is_key (text)))
        && *text && access (text, R_OK) != 0) {
        snprintf (why, size, "cannot read the file: %s", strerror (errno));
        return -1;
    }
    if (streq (option->name, "upstream")) {
        s_sections_t *sections = (s_sections_t *) arg;
        zstr_free (&sections->upstream_shown);  //  the command line's after the file's
        sections->upstream_shown = s_url_check (sections, text);
    }
    return 0;
}

//  --upstream as --check-config prints it: without its passwords, as the
//  log writes it, from its check (arb_options_show_fn). Never as given.
//  The HTTP token is a password too: written ***, as the URL's are.
static bool
s_show_setting (void *arg, const arb_option_t *option, const char *value, char *buf, size_t size)
{
    (void) value;
    if (streq (option->name, "http-token")) {
        snprintf (buf, size, "***");
        return true;
    }
    if (!streq (option->name, "upstream"))
        return false;
    const char *shown = ((s_sections_t *) arg)->upstream_shown;
    snprintf (buf, size, "%s", shown ? shown : "(not shown)");
    return true;
}

int
main (int argc, char **argv)
{
    arb_log_t *log = arb_log_new ("arbiter-gateway");
    //  a closed terminal stops it cleanly, as SIGTERM does
    arb_hangup_catch ();
    s_settings_t settings = {
        .broker = getenv ("ARBITER_BROKER") ? getenv ("ARBITER_BROKER") : "tcp://127.0.0.1:7700",
        .cert = getenv (ARB_CURVE_ENV_CERT),
        .broker_key = getenv (ARB_CURVE_ENV_KEY),
        .name = NULL,
        .rpc_timeout_ms = 5000,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
        .http = "127.0.0.1:7780",
        .http_token = NULL,
        .http_max_body = 1u << 20,
        .http_connections = 1000,
        .http_idle_ms = 60000,
        .http_request_ms = 30000,
        .kestrel = "127.0.0.1:22133,-[::1]:22133",
        .kestrel_max_item = S_KESTREL_MAX_ITEM,
        .kestrel_max_connections = 10000,
        .kestrel_request_ms = 30000,
        .kestrel_idle_ms = 3600 * 1000,
        .message_retention_ms = 60000,
        .upstream = NULL,
        .upstream_reconnect_max_ms = 30000,
        .amqp = "127.0.0.1:5672,-[::1]:5672",
        .amqp_frame_max = 131072,
        .amqp_channel_max = 2047,
        .amqp_heartbeat_ms = 60000,
        .amqp_max_connections = 10000,
        .amqp_vhosts = "/",
        .log_level = ARB_LOG_INFO,
    };
    arb_option_t table[] = {
        {"broker", 'b', ARB_OPT_STR, &settings.broker, 0, 0, "EP",
         "the broker's endpoint (default $ARBITER_BROKER, else tcp://127.0.0.1:7700)"},
        {"cert", 0, ARB_OPT_STR, &settings.cert, 0, 0, "FILE",
         "the gateway's secret certificate for a broker with --curve, role admin (default "
         "$ARBITER_CERT)"},
        {"broker-key", 0, ARB_OPT_STR, &settings.broker_key, 0, 0, "KEY|FILE",
         "the broker's public key, or its broker.cert file (default $ARBITER_BROKER_KEY)"},
        {"name", 0, ARB_OPT_STR, &settings.name, 0, 0, "NAME",
         "the gateway's worker name at the broker (default host.pid)"},
        {"rpc-timeout", 0, ARB_OPT_SECONDS, &settings.rpc_timeout_ms, 100, 3600 * 1000, "S",
         "a request the broker has not answered by then fails (default 5)"},
        {"max-payload", 0, ARB_OPT_BYTES, &settings.max_payload, 1, 1ull << 30, "BYTES",
         "largest item, as the broker's --max-payload (default 16M)"},
        {"http", 0, ARB_OPT_STR, &settings.http, 0, 0, "ADDR",
         "HTTP server address HOST:PORT, or off (default 127.0.0.1:7780)"},
        {"http-token", 0, ARB_OPT_STR, &settings.http_token, 0, 0, "TOKEN",
         "bearer token for the admin API and every change; without one the HTTP server "
         "listens on loopback only"},
        {"http-max-body", 0, ARB_OPT_BYTES, &settings.http_max_body, 1, 1ull << 30, "BYTES",
         "largest HTTP request body; larger ones get 413 (default 1M)"},
        {"http-connections", 0, ARB_OPT_UINT, &settings.http_connections, 1, 100000, "N",
         "HTTP connections at once (default 1000)"},
        {"http-idle-timeout", 0, ARB_OPT_SECONDS, &settings.http_idle_ms, 1000, 3600 * 1000, "S",
         "an idle HTTP connection is closed after this long (default 60)"},
        {"http-request-timeout", 0, ARB_OPT_SECONDS, &settings.http_request_ms, 1000, 3600 * 1000,
         "S",
         "a request's header and body must arrive within this long of its first byte, and "
         "its answer be read within as long (a second more a MiB), else its connection is "
         "closed (default 30)"},
        {"kestrel", 0, ARB_OPT_STR, &settings.kestrel, 0, 0, "ADDR",
         "the Kestrel (memcache) server's HOST:PORT, or up to 4, comma-separated; a leading '-' "
         "makes one optional; or off (default 127.0.0.1:22133,-[::1]:22133: both loopbacks)"},
        {"kestrel-max-item", 0, ARB_OPT_BYTES, &settings.kestrel_max_item, 1, 1ull << 30, "BYTES",
         "largest Kestrel item, at most --max-payload (default 1M)"},
        {"kestrel-max-connections", 0, ARB_OPT_UINT, &settings.kestrel_max_connections, 1, 1000000,
         "N", "Kestrel clients at once; more are refused (default 10000)"},
        {"kestrel-request-timeout", 0, ARB_OPT_SECONDS, &settings.kestrel_request_ms, 0,
         3600 * 1000, "S",
         "a Kestrel command (a set's line and data) must arrive within this long of its first "
         "byte, else its connection is closed (default 30; 0: no limit)"},
        {"kestrel-idle-timeout", 0, ARB_OPT_SECONDS, &settings.kestrel_idle_ms, 0,
         30 * 86400 * 1000ull, "S",
         "a Kestrel connection idle this long is closed, its open items going back to their "
         "queues; a get waiting with t= is not idle (default 3600: an hour, as pooled memcache "
         "clients idle long; 0: never)"},
        {"kestrel-allow-shutdown", 0, ARB_OPT_BOOL, &settings.kestrel_allow_shutdown, 0, 0, NULL,
         "the Kestrel shutdown command stops the gateway (default: refused)"},
        {"kestrel-bare-value-key", 0, ARB_OPT_BOOL, &settings.kestrel_bare_value_key, 0, 0, NULL,
         "VALUE lines name the queue, as Kestrel does, not the key asked (default: the key)"},
        {"kestrel-insecure", 0, ARB_OPT_BOOL, &settings.kestrel_insecure, 0, 0, NULL,
         "listen on a --kestrel address other hosts can reach anyway (refused otherwise: Kestrel "
         "has no authentication, and anyone could flush or delete queues)"},
        {"message-retention", 0, ARB_OPT_SECONDS, &settings.message_retention_ms, 0,
         ARB_RETENTION_MAX_MS, "S",
         "how long the broker keeps the task of a Kestrel item or an AMQP message once it is "
         "consumed (default 60; 0: the broker's --retention; a [queue.NAME] retention wins)"},
        {"upstream", 0, ARB_OPT_STR, &settings.upstream, 0, 0, "URL",
         "the RabbitMQ whose queues [bridge.NAME] sections bridge: "
         "amqp://user:password@host:port/vhost, or amqps://... for TLS with the parameters "
         "cacertfile=PATH, certfile=PATH and keyfile=PATH (a client certificate), password= (the "
         "key's, %-encoded) and verify=verify_peer|verify_none; the URL is a secret: give it in "
         "the config file, not on the command line"},
        {"upstream-reconnect-max", 0, ARB_OPT_SECONDS, &settings.upstream_reconnect_max_ms, 500,
         3600 * 1000, "S",
         "longest wait between attempts to reach the upstream (from 0.5, doubling; default 30)"},
        {"amqp", 0, ARB_OPT_STR, &settings.amqp, 0, 0, "ADDR",
         "the AMQP 0-9-1 server's HOST:PORT ([IPv6]:PORT too), or up to 4, comma-separated; a "
         "leading '-' makes one optional; or off (default 127.0.0.1:5672,-[::1]:5672: both "
         "loopbacks)"},
        {"amqp-frame-max", 0, ARB_OPT_BYTES, &settings.amqp_frame_max, 4096, 1u << 20, "BYTES",
         "AMQP frame_max proposed to clients (default 131072)"},
        {"amqp-channel-max", 0, ARB_OPT_UINT, &settings.amqp_channel_max, 1, 65535, "N",
         "AMQP channel_max proposed to clients (default 2047)"},
        {"amqp-heartbeat", 0, ARB_OPT_SECONDS, &settings.amqp_heartbeat_ms, 0, 65535 * 1000, "S",
         "AMQP heartbeat proposed to clients, whole seconds (default 60; 0: none)"},
        {"amqp-max-connections", 0, ARB_OPT_UINT, &settings.amqp_max_connections, 1, 1000000, "N",
         "AMQP connections open at once; more are refused at connection.open (530 NOT_ALLOWED, "
         "as RabbitMQ's connection_max) (default 10000)"},
        {"amqp-vhosts", 0, ARB_OPT_STR, &settings.amqp_vhosts, 0, 0, "LIST",
         "AMQP virtual hosts, comma-separated (default \"/\")"},
        ARB_LOG_OPTION (&settings.log_level),
    };
    arb_options_t *options = arb_options_new (
        "arbiter-gateway", table, sizeof (table) / sizeof (table[0]), ARB_GATEWAY_CONFIG);
    arb_options_set_about (
        options, "[OPTIONS]",
        "Serves Kestrel, HTTP and AMQP 0-9-1 clients from an arbiter broker, and bridges\n"
        "the queues of an upstream RabbitMQ into it. SIGINT, SIGTERM or SIGHUP (its\n"
        "terminal closed) stops it cleanly.\n"
        "\n"
        "The config file may also hold [queue.NAME] sections (defaults of the tasks the\n"
        "gateway submits to queue NAME) and [type.NAME] sections (tasker task types; with\n"
        "none, any type is accepted), with the keys priority, retries, timeout, retention,\n"
        "backoff (none, fixed, exponential), backoff-delay, backoff-cap and\n"
        "wait-for-endpoints-timeout (seconds an endpoint has to receive its copy of a\n"
        "fan-out task); a type also takes broadcast (yes: a POST without endpoints goes\n"
        "to every worker connected on the type's queue; default no) and\n"
        "wait-for-endpoints (yes: a POST to endpoints is answered once each has its\n"
        "copy, DONE, or one is missing, INCOMPLETE; default no: at once, SENT).\n"
        "\n"
        "[bridge.NAME] sections each bridge one queue of an upstream RabbitMQ into\n"
        "arbiter (its messages become tasks, and each task's result is published to the\n"
        "message's reply_to), with the keys upstream (a URL; default --upstream),\n"
        "upstream-queue, queue, task (each default NAME), prefetch (default 100),\n"
        "max-pending (default 10000), and the keys above for the bridge's tasks (over\n"
        "their queue's).\n"
        "\n"
        "[user.NAME] sections are AMQP users (password = ..., vhosts = a,b); without any,\n"
        "guest/guest from loopback addresses only. See docs/gateway.md and\n"
        "examples/arbiter-gateway.conf.");
    s_sections_t sections = {.defaults = arb_defaults_new (),
                             .bridges = arb_bridges_new (),
                             .users = zhashx_new (),
                             .options = options,
                             .url_problems = zlist_new (),
                             .headers = zhashx_new (),
                             .shown = zlist_new ()};
    zhashx_set_destructor (sections.users, s_user_table_free);
    zhashx_set_destructor (sections.headers, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (sections.headers, (zhashx_duplicator_fn *) strdup);
    zlist_autofree (sections.url_problems);
    zlist_autofree (sections.shown);
    arb_defaults_t *defaults = sections.defaults;
    arb_options_set_sections (options, s_section, &sections);
    arb_options_set_check (options, s_check, &sections);
    arb_options_set_show (options, s_show_setting, &sections);
    arb_options_rc_t rc = arb_options_parse (options, argc, argv, NULL);
    arb_log_set_level (log, settings.log_level);
    int status = rc == ARB_OPTIONS_BAD ? 2 : 0;
    char why[512] = "";
    arb_curve_t *curve = NULL;  //  CURVE towards the broker; NULL: none
    //  a --broker given was checked as it was read; $ARBITER_BROKER here
    if ((rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
        && arb_endpoint_check (settings.broker, false, why, sizeof (why))) {
        fprintf (stderr, "arbiter-gateway: ARBITER_BROKER: %s\n", why);
        rc = ARB_OPTIONS_BAD;
        status = 2;
    }
    //  --check-config refuses what a start would before it listens or
    //  connects: the certificate, as the worker's, then the servers' settings
    if ((rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
        && !(curve = arb_curve_resolve_options (options, settings.cert, settings.broker_key, why,
                                                sizeof (why)))
        && *why) {
        fprintf (stderr, "arbiter-gateway: %s\n", why);
        status = 2;
    }
    else if ((rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
             && (s_check_item (&settings) | s_check_heartbeat (&settings)
                 | s_check_token (&settings) | s_check_users (&sections, &settings)))
        status = 2;
    else if (rc == ARB_OPTIONS_CHECK) {
        //  all, so that every problem is said at once: each upstream URL's
        //  where it was given (used by a bridge or not), a bridge without
        //  one, the servers'
        s_check_bridge_urls (&sections, &settings);
        for (char *problem = (char *) zlist_first (sections.url_problems); problem;
             problem = (char *) zlist_next (sections.url_problems))
            fprintf (stderr, "arbiter-gateway: %s\n", problem);
        if (s_check_servers (&settings) || zlist_size (sections.url_problems))
            status = 2;
        else {
            arb_options_print (options, stdout);
            for (char *line = (char *) zlist_first (sections.shown); line;
                 line = (char *) zlist_next (sections.shown))
                printf ("%s\n", line);
        }
    }
    //  before anything listens: one server's refusal binds no other; a bad
    //  setting, as for --check-config (exit status 2: a unit does not
    //  restart for it, RestartPreventExitStatus=2)
    else if (rc == ARB_OPTIONS_RUN && s_check_servers (&settings))
        status = 2;
    else if (rc == ARB_OPTIONS_RUN) {
        arb_gateway_config_t config = {
            .broker = settings.broker,
            .curve = curve,
            .cert = settings.cert,
            .name = settings.name,
            .request_timeout_ms = settings.rpc_timeout_ms,
            .max_payload = (size_t) settings.max_payload,
        };
        arb_fdlimit_raise ();  //  every connection is a descriptor
        arb_gateway_t *gateway = arb_gateway_new (&config);
        s_web_t web = {0};
        arb_kestrel_t *kestrel = NULL;
        arb_amqp_t *amqp = NULL;
        arb_kestrel_config_t kconfig = {
            .bind = settings.kestrel,
            .max_item = (size_t) settings.kestrel_max_item,  //  at most max_payload
            .max_connections = (size_t) settings.kestrel_max_connections,
            .request_timeout_ms = settings.kestrel_request_ms,
            .idle_timeout_ms = settings.kestrel_idle_ms,
            .allow_shutdown = settings.kestrel_allow_shutdown,
            .bare_value_key = settings.kestrel_bare_value_key,
            .retention_ms = settings.message_retention_ms,
            .defaults = defaults,
        };
        if (gateway && !streq (settings.kestrel, "off"))
            kestrel = arb_kestrel_new (gateway, &kconfig);
        if (!gateway || (!kestrel && !streq (settings.kestrel, "off"))
            || s_web_start (&web, gateway, &settings, defaults)
            || s_amqp_start (&amqp, gateway, &settings, sections.users, defaults))
            status = 1;
        else {
            s_bridges_start (sections.bridges, gateway, &settings, defaults);
            zsys_info ("gateway: started broker=%s version=%s", settings.broker, ARB_VERSION);
            status = arb_gateway_run (gateway) == 0 && !arb_amqp_stepped_down (amqp) ? 0 : 1;
            zsys_info ("gateway: stopping");
        }
        arb_bridges_destroy (&sections.bridges);
        arb_amqp_destroy (&amqp);
        s_web_stop (&web);
        arb_kestrel_destroy (&kestrel);
        arb_gateway_destroy (&gateway);
    }
    arb_curve_destroy (&curve);
    arb_options_destroy (&options);
    arb_bridges_destroy (&sections.bridges);
    arb_defaults_destroy (&sections.defaults);
    zhashx_destroy (&sections.users);
    zlist_destroy (&sections.url_problems);
    zhashx_destroy (&sections.headers);
    zstr_free (&sections.upstream_shown);
    zlist_destroy (&sections.shown);
    zstr_free (&sections.last);
    arb_log_destroy (&log);
    return status;
}
