/*  arb_cli.h — what the commands of the `arbiter` CLI share.

    arbiter.c parses the global options into an arb_cli_t and calls one
    command function with the command's own arguments (argv[0] is the
    command's name). A command returns the process's exit status:

        0    done
        1    a runtime failure: a task failed, was dead or cancelled; the
             broker is unreachable (said within the rpc timeout); the broker
             answered 409, 500, 503 (or any code not listed under 2)
        2    usage errors and refused input: bad arguments (usage on
             stderr), option values out of bounds ("arbiter: --delay: ..."),
             nothing sent; the broker answered 400, 404, 413 or 422
        3    wait: --timeout passed before every task finished
        130  interrupted (SIGINT) while waiting

    Library code stays quiet; the CLI is where things get printed: results
    on stdout, everything else on stderr, one "arbiter: ..." line per
    problem.
*/

#ifndef ARB_CLI_H
#define ARB_CLI_H

#include "arb_cli_args.h"
#include "arb_cli_text.h"
#include "arb_json.h"
#include "arb_client.h"

#include <getopt.h>
#include <jansson.h>

enum {
    ARB_EXIT_OK = 0,
    ARB_EXIT_FAILED = 1,
    ARB_EXIT_USAGE = 2,
    ARB_EXIT_TIMEOUT = 3,
    ARB_EXIT_INTERRUPTED = 130,
};

typedef struct {
    const char *broker;    //  endpoint (borrowed from argv); NULL: $ARBITER_BROKER or the default
    int rpc_timeout_ms;    //  per request
    bool json;             //  --json: machine-readable output
    const char *command;   //  the command's name, for messages (borrowed)
    arb_client_t *client;  //  owned; created on first use by arb_cli_client
} arb_cli_t;

//  A command: its name, one-line summary, full help and options (each
//  command also takes --json and --help, added by arb_cli_getopt).
typedef struct {
    const char *name;
    const char *summary;
    const char *usage;             //  printed by --help and after a usage error
    const struct option *options;  //  NULL-terminated; long options only
    int (*run) (arb_cli_t *cli, int argc, char **argv);
} arb_cli_cmd_t;

//  The commands, each in the arb_cli_*.c file of its area.
extern const arb_cli_cmd_t arb_cli_cmd_submit;
extern const arb_cli_cmd_t arb_cli_cmd_wait;
extern const arb_cli_cmd_t arb_cli_cmd_status;
extern const arb_cli_cmd_t arb_cli_cmd_list;
extern const arb_cli_cmd_t arb_cli_cmd_stats;
extern const arb_cli_cmd_t arb_cli_cmd_events;
extern const arb_cli_cmd_t arb_cli_cmd_ping;
extern const arb_cli_cmd_t arb_cli_cmd_cancel;
extern const arb_cli_cmd_t arb_cli_cmd_retry;
extern const arb_cli_cmd_t arb_cli_cmd_queue;
extern const arb_cli_cmd_t arb_cli_cmd_limit;
extern const arb_cli_cmd_t arb_cli_cmd_dag;
extern const arb_cli_cmd_t arb_cli_cmd_group;
extern const arb_cli_cmd_t arb_cli_cmd_pipe;

//  Returned by arb_cli_getopt besides option values.
#define ARB_CLI_END   -1  //  no more options; positional arguments start at optind
#define ARB_CLI_HELP  -2  //  --help: usage printed on stdout, exit 0
#define ARB_CLI_USAGE -3  //  bad option: message and usage printed on stderr, exit 2

//  getopt_long over a command's arguments, with --json and --help handled
//  here. Options may come before, between or after the positional
//  arguments; "--" ends them.
int arb_cli_getopt (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv);

//  Exit status for the outcome of arb_cli_getopt (HELP or USAGE).
int arb_cli_getopt_exit (int rc);

//  Prints "arbiter CMD: message" and the command's usage on stderr;
//  returns ARB_EXIT_USAGE.
int arb_cli_usage (const arb_cli_cmd_t *cmd, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Prints "arbiter: message" on stderr and returns status.
int arb_cli_say (int status, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Parse an option value, printing "arbiter: --NAME: reason" when refused.
//  Return 0 or -1 (then exit ARB_EXIT_USAGE).
int arb_cli_opt_seconds (const char *name, const char *text, uint64_t max_ms, uint64_t *ms);
int arb_cli_opt_uint (const char *name, const char *text, uint64_t max, uint64_t *value);
int arb_cli_opt_name (const char *name, const char *text);  //  queue, key: 1..ARB_NAME_MAX bytes

//  Parses task ids (positive integers). Stores a malloc'd array the caller
//  frees; drops repeated ids. Returns 0, or -1 after printing why.
int arb_cli_parse_ids (int argc, char **argv, uint64_t **ids, size_t *n);

//  Reads all of stdin, refusing more than max bytes. Returns the bytes as
//  a frame (the caller owns it), or NULL after printing "arbiter: WHAT: why".
zframe_t *arb_cli_read_stdin (const char *what, size_t max);

//  The client, connected on first use. NULL after printing why (a
//  malformed --broker endpoint: the caller exits ARB_EXIT_USAGE).
arb_client_t *arb_cli_client (arb_cli_t *cli);

//  Prints "arbiter: WHAT: <the client's error>" and returns the exit status
//  its code calls for (2 for 400/404/413/422, 130 if interrupted, else 1).
int arb_cli_client_fail (arb_cli_t *cli, const char *what);

//  Exit status for a broker code (0 means a local failure: 1).
int arb_cli_exit_for (int code);

//  JSON output: prints the value compactly on one line of stdout and
//  releases it.
void arb_cli_json_print (json_t *value);

//  Waits for the given tasks and prints each one as it finishes (the
//  body of `wait`, also used by `submit --watch`). timeout_ms -1: none.
//  raw: with one task, print its result bytes as they are. Returns the
//  exit status.
int arb_cli_wait_for (arb_cli_t *cli, const uint64_t *ids, size_t n, int64_t timeout_ms, bool raw);

//  Shows the endpoints' answers of a finished fan-out task, one per line
//  ("NAME  STATE  FINISHED  result: ..."; --json: one object each).
//  Returns ARB_EXIT_OK if the task and every answer succeeded, else the
//  exit status (ARB_EXIT_FAILED: incomplete, or some endpoint failed).
int arb_cli_show_responses (arb_cli_t *cli, uint64_t id);

#endif
