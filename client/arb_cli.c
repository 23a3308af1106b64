/*  arb_cli.c — the helpers every `arbiter` command uses: option parsing,
    messages and exit statuses, the lazily connected client, JSON output.
*/

#include "arb_cli.h"
#include "arb_idset.h"

#include <errno.h>
#include <stdarg.h>

#define ARB_CLI_OPT_JSON    0x1001
#define ARB_CLI_OPT_HELP    'h'
#define ARB_CLI_OPTIONS_MAX 32

//  ---------------------------------------------------------------------
//  Messages.

int
arb_cli_say (int status, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fputs ("arbiter: ", stderr);
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
    va_end (args);
    return status;
}

int
arb_cli_usage (const arb_cli_cmd_t *cmd, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "arbiter %s: ", cmd->name);
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n\n%s", cmd->usage);
    va_end (args);
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
        default:
            return ARB_EXIT_FAILED;
    }
}

int
arb_cli_client_fail (arb_cli_t *cli, const char *what)
{
    const char *error = arb_client_error (cli->client);
    int code = arb_client_error_code (cli->client);
    arb_cli_say (0, "%s: %s", what, error ? error : "failed");
    if (code == 0 && error && streq (error, "interrupted"))
        return ARB_EXIT_INTERRUPTED;
    return arb_cli_exit_for (code);
}

//  ---------------------------------------------------------------------
//  Options.

int
arb_cli_getopt (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv)
{
    //  The command's options plus the two every command has.
    struct option options[ARB_CLI_OPTIONS_MAX];
    size_t n = 0;
    for (const struct option *o = cmd->options; o && o->name; o++) {
        assert (n < ARB_CLI_OPTIONS_MAX - 3);
        options[n++] = *o;
    }
    options[n++] = (struct option){"json", no_argument, NULL, ARB_CLI_OPT_JSON};
    options[n++] = (struct option){"help", no_argument, NULL, ARB_CLI_OPT_HELP};
    options[n] = (struct option){NULL, 0, NULL, 0};

    while (true) {
        int index = -1;
        int c = getopt_long (argc, argv, ":h", options, &index);
        if (c == ARB_CLI_OPT_JSON) {
            cli->json = true;
            continue;
        }
        if (c == ARB_CLI_OPT_HELP) {
            fputs (cmd->usage, stdout);
            return ARB_CLI_HELP;
        }
        if (c == '?' || c == ':') {
            const char *arg = argv[optind - 1];
            if (c == ':')
                arb_cli_usage (cmd, "%s needs a value", arg);
            else
                arb_cli_usage (cmd, "unknown option %s", arg);
            return ARB_CLI_USAGE;
        }
        return c;  //  an option of the command, or -1 at the end
    }
}

int
arb_cli_getopt_exit (int rc)
{
    return rc == ARB_CLI_HELP ? ARB_EXIT_OK : ARB_EXIT_USAGE;
}

int
arb_cli_opt_seconds (const char *name, const char *text, uint64_t max_ms, uint64_t *ms)
{
    arb_cli_err_t err;
    if (arb_cli_parse_seconds (text, max_ms, ms, &err) == 0)
        return 0;
    arb_cli_say (0, "--%s: %s", name, err.text);
    return -1;
}

int
arb_cli_opt_uint (const char *name, const char *text, uint64_t max, uint64_t *value)
{
    arb_cli_err_t err;
    if (arb_cli_parse_uint (text, max, value, &err) == 0)
        return 0;
    arb_cli_say (0, "--%s: %s", name, err.text);
    return -1;
}

int
arb_cli_opt_name (const char *name, const char *text)
{
    arb_cli_err_t err;
    if (arb_cli_parse_name (text, &err) == 0)
        return 0;
    arb_cli_say (0, "--%s: %s", name, err.text);
    return -1;
}

int
arb_cli_parse_ids (int argc, char **argv, uint64_t **ids_p, size_t *n_p)
{
    uint64_t *ids = (uint64_t *) calloc ((size_t) argc + 1, sizeof (uint64_t));
    arb_idset_t *seen = arb_idset_new ();
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        arb_cli_err_t err;
        uint64_t id;
        if (arb_cli_parse_uint (argv[i], UINT64_MAX, &id, &err) || id == 0)
            rc = arb_cli_say (-1, "'%s' is not a task id (a number from 1)", argv[i]);
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
arb_cli_read_stdin (const char *what, size_t max)
{
    size_t size = 0, capacity = 65536;
    uint8_t *data = (uint8_t *) malloc (capacity);
    assert (data);
    size_t got;
    while ((got = fread (data + size, 1, capacity - size, stdin)) > 0) {
        size += got;
        if (size > max) {
            free (data);
            arb_cli_say (0, "%s: more than %zu bytes on stdin, over the limit", what, max);
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
        arb_cli_say (0, "%s: cannot read stdin: %s", what, strerror (errno));
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
    cli->client = arb_client_new (cli->broker);
    if (!cli->client) {
        arb_cli_say (0, "cannot use broker endpoint '%s': %s",
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
