/*  arbiter.c — the `arbiter` command-line tool: common options, then one
    command (client/arb_cli_*.c), whose return value is the exit status
    (see arb_cli.h for what each status means).

        arbiter [--broker EP] [--cert FILE --broker-key KEY] [--json]
                [--rpc-timeout MS] COMMAND [ARGS]

    The common options may also come anywhere after the command.
*/

#include "arb_cli.h"

static const arb_cli_cmd_t *s_commands[] = {
    &arb_cli_cmd_submit,   &arb_cli_cmd_wait,   &arb_cli_cmd_status, &arb_cli_cmd_list,
    &arb_cli_cmd_dag,      &arb_cli_cmd_group,  &arb_cli_cmd_pipe,   &arb_cli_cmd_cancel,
    &arb_cli_cmd_retry,    &arb_cli_cmd_delete, &arb_cli_cmd_queue,  &arb_cli_cmd_limit,
    &arb_cli_cmd_stats,    &arb_cli_cmd_events, &arb_cli_cmd_ping,   &arb_cli_cmd_peek,
    &arb_cli_cmd_schedule, &arb_cli_cmd_keygen,
};

#define ARB_COMMANDS (sizeof (s_commands) / sizeof (s_commands[0]))

//  The tool's own usage: the commands and the common options.
static void
s_usage (char *text, size_t size)
{
    size_t used = (size_t) snprintf (text, size,
                                     "usage: arbiter [options] COMMAND [ARGS]\n"
                                     "\n"
                                     "The arbiter task queue's client and admin tool.\n"
                                     "\n"
                                     "Commands (arbiter COMMAND --help tells more):\n");
    for (size_t i = 0; i < ARB_COMMANDS && used < size; i++)
        used += (size_t) snprintf (text + used, size - used, "  %-8s %s\n", s_commands[i]->name,
                                   s_commands[i]->summary);
    if (used < size)
        snprintf (
            text + used, size - used,
            "\n"
            "Options (anywhere on the line, before or after the command):\n"
            "  --broker EP        broker endpoint (default: $ARBITER_BROKER, else\n"
            "                     " ARB_CLIENT_ENDPOINT ")\n"
            "  --cert FILE        this peer's secret certificate (arbiter keygen writes\n"
            "                     NAME.cert_secret), for a broker that runs with --curve\n"
            "                     (default: $ARBITER_CERT)\n"
            "  --broker-key KEY|FILE  the broker's public key, or its broker.cert file\n"
            "                     (default: $ARBITER_BROKER_KEY)\n"
            "  --json             machine-readable output (JSON, one value per line); errors\n"
            "                     and notices on stderr become {\"error\", \"code\"} and\n"
            "                     {\"notice\"} objects\n"
            "  --rpc-timeout MS   how long to wait for each answer of the broker (default %d)\n"
            "  -h, --help         this text (after a command: the command's)\n"
            "  --version          the version\n"
            "\n"
            "Task ids are numbers (7); flow ids (DAGs, groups, pipes) are written flow:7.\n"
            "\n"
            "Exit status: 0 done; 1 failed (a task failed or its queue refused it, the\n"
            "broker is unreachable or answered 403/409/500/503); 2 usage error or refused\n"
            "input (bad option values, unknown ids, broker 400/404/413/422); 3 wait\n"
            "--timeout passed; 4 the broker's journal is full (507: nothing was done; send\n"
            "it again once space is freed); 130 interrupted.\n",
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

int
main (int argc, char **argv)
{
    arb_cli_t cli = {.rpc_timeout_ms = ARB_CLIENT_TIMEOUT_MS};
    //  czmq logs to stdout unless told otherwise; stdout carries results.
    zsys_init ();
    zsys_set_logstream (stderr);
    char usage[4096];
    s_usage (usage, sizeof (usage));
    const arb_cli_cmd_t tool = {.name = NULL, .usage = usage};
    optind = 0;
    int rc = arb_cli_common_options (&cli, &tool, argc, argv);
    if (rc != ARB_CLI_END)
        return arb_cli_getopt_exit (rc);
    if (optind >= argc)
        return arb_cli_usage (&cli, &tool, "which command?");
    const arb_cli_cmd_t *cmd = s_find (argv[optind]);
    if (!cmd) {
        char *quoted = arb_cli_escape_str (argv[optind]);
        arb_cli_usage (&cli, &tool, "'%.64s' is not a command", quoted);
        free (quoted);
        return ARB_EXIT_USAGE;
    }
    cli.command = cmd->name;
    int first = optind;
    optind = 0;  //  glibc: start getopt afresh on the command's arguments
    int status = cmd->run (&cli, argc - first, argv + first);
    arb_client_destroy (&cli.client);
    return status;
}
