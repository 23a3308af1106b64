/*  arbiter.c — the `arbiter` command-line tool: global options, then one
    command (client/arb_cli_*.c), whose return value is the exit status
    (see arb_cli.h for what each status means).

        arbiter [--broker EP] [--json] [--rpc-timeout MS] COMMAND [ARGS]
*/

#include "arb_cli.h"

static const arb_cli_cmd_t *s_commands[] = {
    &arb_cli_cmd_submit, &arb_cli_cmd_wait,   &arb_cli_cmd_status, &arb_cli_cmd_list,
    &arb_cli_cmd_dag,    &arb_cli_cmd_group,  &arb_cli_cmd_pipe,   &arb_cli_cmd_cancel,
    &arb_cli_cmd_retry,  &arb_cli_cmd_delete, &arb_cli_cmd_queue,  &arb_cli_cmd_limit,
    &arb_cli_cmd_stats,  &arb_cli_cmd_events, &arb_cli_cmd_ping,
};

#define ARB_COMMANDS (sizeof (s_commands) / sizeof (s_commands[0]))

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: arbiter [--broker EP] [--json] [--rpc-timeout MS] COMMAND [ARGS]\n"
                  "\n"
                  "The arbiter task queue's client and admin tool.\n"
                  "\n"
                  "Commands (arbiter COMMAND --help tells more):\n");
    for (size_t i = 0; i < ARB_COMMANDS; i++)
        fprintf (out, "  %-8s %s\n", s_commands[i]->name, s_commands[i]->summary);
    fprintf (out,
             "\n"
             "Options (before the command; --json and --help also after it):\n"
             "  --broker EP        broker endpoint (default: $ARBITER_BROKER, else\n"
             "                     " ARB_CLIENT_ENDPOINT ")\n"
             "  --json             machine-readable output (JSON, one value per line)\n"
             "  --rpc-timeout MS   how long to wait for each answer of the broker (default %d)\n"
             "  --help, --version\n"
             "\n"
             "Exit status: 0 done; 1 failed (a task failed, the broker is unreachable or\n"
             "answered 409/500/503); 2 usage error or refused input (bad option values,\n"
             "unknown ids, broker 400/404/413/422); 3 wait --timeout passed; 130 interrupted.\n",
             ARB_CLIENT_TIMEOUT_MS);
}

static const arb_cli_cmd_t *
s_find (const char *name)
{
    for (size_t i = 0; i < ARB_COMMANDS; i++)
        if (streq (s_commands[i]->name, name))
            return s_commands[i];
    return NULL;
}

//  Parses the global options into cli. Returns -1 to go on with the
//  command at argv[optind], else the exit status.
static int
s_global_options (arb_cli_t *cli, int argc, char **argv)
{
    static const struct option options[] = {
        {"broker", required_argument, NULL, 'b'},      {"json", no_argument, NULL, 'j'},
        {"rpc-timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},           {NULL, 0, NULL, 0},
    };
    int c;
    //  '+': stop at the command, whose options are its own
    while ((c = getopt_long (argc, argv, "+:h", options, NULL)) != -1) {
        uint64_t ms;
        switch (c) {
            case 'b':
                cli->broker = optarg;
                break;
            case 'j':
                cli->json = true;
                break;
            case 't':
                if (arb_cli_opt_uint ("rpc-timeout", optarg, 24 * 3600 * 1000, &ms))
                    return ARB_EXIT_USAGE;
                if (ms == 0)
                    return arb_cli_say (ARB_EXIT_USAGE, "--rpc-timeout: must be at least 1 ms");
                cli->rpc_timeout_ms = (int) ms;
                break;
            case 'h':
                s_usage (stdout);
                return ARB_EXIT_OK;
            case 'V':
                printf ("arbiter %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                return ARB_EXIT_OK;
            default:
                fprintf (stderr, "arbiter: %s %s\n\n", argv[optind - 1],
                         c == ':' ? "needs a value" : "is not an option");
                s_usage (stderr);
                return ARB_EXIT_USAGE;
        }
    }
    return -1;
}

int
main (int argc, char **argv)
{
    arb_cli_t cli = {.rpc_timeout_ms = ARB_CLIENT_TIMEOUT_MS};
    //  czmq logs to stdout unless told otherwise; stdout carries results.
    zsys_init ();
    zsys_set_logstream (stderr);
    int status = s_global_options (&cli, argc, argv);
    if (status >= 0)
        return status;
    if (optind >= argc) {
        fprintf (stderr, "arbiter: which command?\n\n");
        s_usage (stderr);
        return ARB_EXIT_USAGE;
    }
    const arb_cli_cmd_t *cmd = s_find (argv[optind]);
    if (!cmd) {
        fprintf (stderr, "arbiter: '%s' is not a command\n\n", argv[optind]);
        s_usage (stderr);
        return ARB_EXIT_USAGE;
    }
    cli.command = cmd->name;
    int first = optind;
    optind = 0;  //  glibc: start getopt afresh on the command's arguments
    status = cmd->run (&cli, argc - first, argv + first);
    arb_client_destroy (&cli.client);
    return status;
}
