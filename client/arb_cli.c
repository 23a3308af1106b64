/*  arb_cli.c — the helpers every `arbiter` command uses: option parsing
    (the common options anywhere on the line), messages and exit statuses
    (as JSON objects with --json), the lazily connected client, JSON output.
*/

#include "arb_cli.h"
#include "arb_dealer.h"
#include "arb_endpoint.h"
#include "arb_idset.h"

#include <errno.h>
#include <stdarg.h>

//  Values of the common options that have no letter.
enum {
    ARB_CLI_OPT_JSON = 0x1001,
    ARB_CLI_OPT_BROKER,
    ARB_CLI_OPT_RPC_TIMEOUT,
    ARB_CLI_OPT_VERSION,
    ARB_CLI_OPT_CERT,
    ARB_CLI_OPT_BROKER_KEY,
};

#define ARB_CLI_OPT_HELP     'h'
#define ARB_CLI_OPTIONS_MAX  40
#define ARB_CLI_TEXT_MAX     2048  //  bytes of one message
#define S_RPC_TIMEOUT_MIN_MS 50    //  less is seconds meant: "--rpc-timeout 5"

//  ---------------------------------------------------------------------
//  Messages.

//  One line on stderr: "arbiter: TEXT", or with --json {key: TEXT} and,
//  for an error, "code" (the broker's, null for none).
static void
s_emit (arb_cli_t *cli, const char *key, int code, const char *fmt, va_list args)
{
    char text[ARB_CLI_TEXT_MAX];
    vsnprintf (text, sizeof (text), fmt, args);
    if (!cli->json) {
        fprintf (stderr, "arbiter: %s\n", text);
        return;
    }
    json_t *obj = json_object ();
    arb_json_str (obj, key, text);
    if (streq (key, "error"))
        json_object_set_new (obj, "code", code ? json_integer (code) : json_null ());
    json_dumpf (obj, stderr, JSON_COMPACT);
    fputc ('\n', stderr);
    json_decref (obj);
}

int
arb_cli_say_code (arb_cli_t *cli, int status, int code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_emit (cli, "error", code, fmt, args);
    va_end (args);
    return status;
}

int
arb_cli_say (arb_cli_t *cli, int status, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_emit (cli, "error", 0, fmt, args);
    va_end (args);
    return status;
}

void
arb_cli_note (arb_cli_t *cli, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_emit (cli, "notice", 0, fmt, args);
    va_end (args);
}

int
arb_cli_usage (arb_cli_t *cli, const arb_cli_cmd_t *cmd, const char *fmt, ...)
{
    char text[ARB_CLI_TEXT_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof (text), fmt, args);
    va_end (args);
    const char *name = cmd->name ? cmd->name : "";
    const char *space = cmd->name ? " " : "";
    if (cli->json)
        return arb_cli_say (cli, ARB_EXIT_USAGE, "%s%s%s", name, cmd->name ? ": " : "", text);
    fprintf (stderr, "arbiter%s%s: %s\nsee arbiter%s%s --help\n", space, name, text, space, name);
    return ARB_EXIT_USAGE;
}

int
arb_cli_exit_for (int code)
{
    switch (code) {
        case ARB_ERR_BAD_REQUEST:
        case ARB_ERR_NOT_FOUND:
        case ARB_ERR_TOO_LARGE:
        case ARB_ERR_INVALID:
            return ARB_EXIT_USAGE;  //  the request was refused as it stood
        case ARB_ERR_JOURNAL_FULL:
            return ARB_EXIT_JOURNAL_FULL;  //  the same command works once space is freed
        default:
            return ARB_EXIT_FAILED;
    }
}

int
arb_cli_client_fail (arb_cli_t *cli, const char *what)
{
    const char *error = arb_client_error (cli->client);
    int code = arb_client_error_code (cli->client);
    arb_cli_say_code (cli, 0, code, "%s: %s", what, error ? error : "failed");
    if (code == 0 && error && streq (error, "interrupted"))
        return ARB_EXIT_INTERRUPTED;
    return arb_cli_exit_for (code);
}

int
arb_cli_say_allow_unknown (arb_cli_t *cli, const char *what, const char *text, const char *as)
{
    const char *wire = text ? strstr (text, "(allow_unknown ") : NULL;
    if (!wire)
        return -1;
    int code = arb_client_error_code (cli->client);
    arb_cli_say_code (cli, 0, code, "%s: %.*s(%s %s", what, (int) (wire - text), text, as,
                      wire + strlen ("(allow_unknown "));
    return arb_cli_exit_for (code);
}

//  ---------------------------------------------------------------------
//  Options.

static const struct option s_common[] = {
    {"json", no_argument, NULL, ARB_CLI_OPT_JSON},
    {"broker", required_argument, NULL, ARB_CLI_OPT_BROKER},
    {"rpc-timeout", required_argument, NULL, ARB_CLI_OPT_RPC_TIMEOUT},
    {"cert", required_argument, NULL, ARB_CLI_OPT_CERT},
    {"broker-key", required_argument, NULL, ARB_CLI_OPT_BROKER_KEY},
    {"help", no_argument, NULL, ARB_CLI_OPT_HELP},
    {"version", no_argument, NULL, ARB_CLI_OPT_VERSION},
    {NULL, 0, NULL, 0},
};

//  The command's options and the common ones, into options (NULL-ended),
//  and their letters into optstring: '+' when stop (the first argument
//  ends the options), ':' (missing values are ours to say), then "h".
static void
s_option_table (const arb_cli_cmd_t *cmd,
                bool stop,
                struct option options[ARB_CLI_OPTIONS_MAX],
                char *optstring,
                size_t size)
{
    size_t n = 0;
    for (const struct option *o = cmd->options; o && o->name; o++) {
        assert (n < ARB_CLI_OPTIONS_MAX - 8);
        options[n++] = *o;
    }
    for (const struct option *o = s_common; o->name; o++)
        options[n++] = *o;
    options[n] = (struct option){NULL, 0, NULL, 0};
    snprintf (optstring, size, "%s:h%s", stop ? "+" : "",
              cmd->short_options ? cmd->short_options : "");
}

//  Applies a common option. Returns 0 (applied), ARB_CLI_HELP,
//  ARB_CLI_USAGE, or 1 if c is none of them.
static int
s_common_option (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int c, const char *value)
{
    int64_t ms;
    arb_cli_err_t err;
    switch (c) {
        case ARB_CLI_OPT_JSON:
            cli->json = true;
            return 0;
        case ARB_CLI_OPT_BROKER:
            cli->broker = value;
            return 0;
        case ARB_CLI_OPT_CERT:
            cli->cert = value;
            return 0;
        case ARB_CLI_OPT_BROKER_KEY:
            cli->broker_key = value;
            return 0;
        case ARB_CLI_OPT_RPC_TIMEOUT:
            //  one message for every value refused, 0 included: 1 ms to a day
            if (arb_cli_parse_int (value, 1, 24 * 3600 * 1000, &ms, &err))
                return arb_cli_say (cli, ARB_CLI_USAGE, "--rpc-timeout: %s", err.text);
            //  no broker answers that soon: seconds meant (the daemons'
            //  --rpc-timeout counts seconds)
            if (ms < S_RPC_TIMEOUT_MIN_MS)
                return arb_cli_say (cli, ARB_CLI_USAGE,
                                    "--rpc-timeout: %lld ms is too short to hear from a broker "
                                    "(it counts milliseconds: %lld000 is %lld s; at least %d)",
                                    (long long) ms, (long long) ms, (long long) ms,
                                    S_RPC_TIMEOUT_MIN_MS);
            cli->rpc_timeout_ms = (int) ms;
            return 0;
        case ARB_CLI_OPT_HELP:
            fputs (cmd->usage, stdout);
            return ARB_CLI_HELP;
        case ARB_CLI_OPT_VERSION:
            printf ("arbiter %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
            return ARB_CLI_HELP;
        default:
            return 1;
    }
}

//  Whether --json is among the options: a silent pass of getopt itself
//  (so that in "--key --json" it stays a key), before anything is said,
//  so that even a mistake in front of --json is said as JSON. GNU getopt
//  permutes argv as it goes: the pass runs on a copy of the pointers.
static void
s_find_json (arb_cli_t *cli, int argc, char **argv, struct option *options, const char *optstring)
{
    char **copy = (char **) malloc (((size_t) argc + 1) * sizeof (char *));
    assert (copy);
    memcpy (copy, argv, ((size_t) argc + 1) * sizeof (char *));
    int c;
    while ((c = getopt_long (argc, copy, optstring, options, NULL)) != -1)
        if (c == ARB_CLI_OPT_JSON)
            cli->json = true;
    free (copy);
    optind = 0;
}

//  The bad option getopt stopped at: "-x" for a letter, else the argument.
static const char *
s_bad_option (char **argv, char *letter)
{
    const char *arg = argv[optind - 1];
    if (arg[0] == '-' && arg[1] != '-' && optopt > 0 && optopt < 0x80) {
        snprintf (letter, 3, "-%c", optopt);
        return letter;
    }
    return arg;
}

//  One getopt_long step over the command's and the common options. With
//  stop (the options in front of a command or verb), it reads them all and
//  leaves optind at the command; a --json further on, which only the
//  command can tell from an option's value, counts for the messages said
//  meanwhile.
static int
s_getopt (arb_cli_t *cli, const arb_cli_cmd_t *cmd, bool stop, int argc, char **argv)
{
    struct option options[ARB_CLI_OPTIONS_MAX];
    char optstring[32];
    s_option_table (cmd, stop, options, optstring, sizeof (optstring));
    if (optind == 0) {
        cli->json = cli->json_early;
        s_find_json (cli, argc, argv, options, optstring + stop);  //  without '+': the whole line
    }
    while (true) {
        int c = getopt_long (argc, argv, optstring, options, NULL);
        if (c == ARB_CLI_OPT_JSON && stop)
            cli->json_early = true;
        if (c == -1)
            return ARB_CLI_END;
        if (c == '?' || c == ':') {
            char letter[3];
            const char *arg = s_bad_option (argv, letter);
            arb_cli_usage (cli, cmd, c == ':' ? "%s needs a value" : "unknown option %s", arg);
            return ARB_CLI_USAGE;
        }
        int rc = s_common_option (cli, cmd, c, optarg);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return c;  //  an option of the command
    }
}

int
arb_cli_getopt (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv)
{
    return s_getopt (cli, cmd, false, argc, argv);
}

int
arb_cli_common_options (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv)
{
    assert (!cmd->options);  //  only the common options come before a command or verb
    return s_getopt (cli, cmd, true, argc, argv);
}

int
arb_cli_getopt_exit (int rc)
{
    return rc == ARB_CLI_HELP ? ARB_EXIT_OK : ARB_EXIT_USAGE;
}

//  How an option is written: "-n", "--delay"; an argument's name ("NAME")
//  as it is.
static const char *
s_dashes (const char *name)
{
    if (name[0] < 'a' || name[0] > 'z')
        return "";
    return name[1] ? "--" : "-";
}

int
arb_cli_opt_seconds (
    arb_cli_t *cli, const char *name, const char *text, uint64_t max_ms, uint64_t *ms)
{
    //  a number of seconds, or with its unit as --older-than takes it
    //  ("--delay 1h"): one way to write a time for every option
    arb_cli_err_t err;
    if (arb_cli_parse_duration (text, max_ms, ms, &err) == 0)
        return 0;
    return arb_cli_say (cli, -1, "%s%s: %s", s_dashes (name), name, err.text);
}

int
arb_cli_opt_positive_seconds (
    arb_cli_t *cli, const char *name, const char *text, uint64_t max_ms, uint64_t *ms)
{
    //  "-1" is refused in the same words as "0": one rule, said once
    if (*text != '-') {
        if (arb_cli_opt_seconds (cli, name, text, max_ms, ms))
            return -1;
        if (*ms > 0)
            return 0;
    }
    return arb_cli_say (cli, -1, "%s%s: must be more than 0 s, not '%.32s'", s_dashes (name), name,
                        text);
}

int
arb_cli_opt_uint (arb_cli_t *cli, const char *name, const char *text, uint64_t max, uint64_t *value)
{
    arb_cli_err_t err;
    if (arb_cli_parse_uint (text, max, value, &err) == 0)
        return 0;
    return arb_cli_say (cli, -1, "%s%s: %s", s_dashes (name), name, err.text);
}

int
arb_cli_opt_name (arb_cli_t *cli, const char *name, const char *text)
{
    arb_cli_err_t err;
    if (arb_cli_parse_name (text, &err) == 0)
        return 0;
    return arb_cli_say (cli, -1, "%s%s: %s", s_dashes (name), name, err.text);
}

int
arb_cli_parse_ids (arb_cli_t *cli, int argc, char **argv, uint64_t **ids_p, size_t *n_p)
{
    uint64_t *ids = (uint64_t *) calloc ((size_t) argc + 1, sizeof (uint64_t));
    arb_idset_t *seen = arb_idset_new ();
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        arb_cli_err_t err;
        uint64_t id;
        if (arb_cli_parse_uint (argv[i], UINT64_MAX, &id, &err) || id == 0) {
            char *quoted = arb_cli_escape_str (argv[i]);
            rc = arb_cli_say (cli, -1, "'%.64s' is not a task id (a number from 1)%s", quoted,
                              strncmp (argv[i], ARB_CLI_FLOW_PREFIX, strlen (ARB_CLI_FLOW_PREFIX))
                                  ? ""
                                  : ": it names a flow");
            free (quoted);
        }
        else if (arb_idset_insert (seen, id))
            ids[n++] = id;
    }
    arb_idset_destroy (&seen);
    if (rc) {
        free (ids);
        return -1;
    }
    *ids_p = ids;
    *n_p = n;
    return 0;
}

//  ---------------------------------------------------------------------
//  Input.

zframe_t *
arb_cli_read_stdin (arb_cli_t *cli, const char *what, size_t max)
{
    size_t size = 0, capacity = 65536;
    uint8_t *data = (uint8_t *) malloc (capacity);
    assert (data);
    size_t got;
    while ((got = fread (data + size, 1, capacity - size, stdin)) > 0) {
        size += got;
        if (size > max) {
            free (data);
            arb_cli_say (cli, 0, "%s: more than %zu bytes on stdin, over the limit", what, max);
            return NULL;
        }
        if (size == capacity) {
            capacity *= 2;
            data = (uint8_t *) realloc (data, capacity);
            assert (data);
        }
    }
    zframe_t *frame = NULL;
    if (ferror (stdin))
        arb_cli_say (cli, 0, "%s: cannot read stdin: %s", what, strerror (errno));
    else
        frame = zframe_new (data, size);
    free (data);
    return frame;
}

//  ---------------------------------------------------------------------
//  The client.

arb_client_t *
arb_cli_client (arb_cli_t *cli)
{
    if (cli->client)
        return cli->client;
    //  the options and variables first, so that a mistake in them is said
    //  as such, not as an endpoint the client could not use
    char why[512];
    const char *endpoint = arb_dealer_endpoint (cli->broker);
    if (arb_endpoint_check (endpoint, false, why, sizeof (why))) {
        arb_cli_say (cli, 0, "%s: %s", cli->broker && *cli->broker ? "--broker" : "ARBITER_BROKER",
                     why);
        return NULL;
    }
    arb_curve_t *curve = arb_curve_resolve (cli->cert, cli->broker_key, why, sizeof (why));
    if (!curve && *why) {
        arb_cli_say (cli, 0, "%s", why);
        return NULL;
    }
    cli->client = arb_client_new_curve (cli->broker, curve);
    arb_curve_destroy (&curve);
    if (!cli->client) {
        arb_cli_say (cli, 0, "cannot use broker endpoint '%s': %s",
                     cli->broker ? cli->broker : getenv ("ARBITER_BROKER"),
                     zmq_strerror (zmq_errno ()));
        return NULL;
    }
    arb_client_set_timeout (cli->client, cli->rpc_timeout_ms);
    return cli->client;
}

//  ---------------------------------------------------------------------
//  JSON.

void
arb_cli_json_print (json_t *value)
{
    json_dumpf (value, stdout, JSON_COMPACT | JSON_REAL_PRECISION (6));
    fputc ('\n', stdout);
    fflush (stdout);
    json_decref (value);
}
