/*  arb_cli.h — what the commands of the `arbiter` CLI share.

    arbiter.c reads the common options before the command into an arb_cli_t
    and calls one command function with the command's own arguments
    (argv[0] is the command's name). A command returns the process's exit
    status:

        0    done
        1    a runtime failure: a task failed, was dead or cancelled (or
             its queue refused it at submit: overflow reject); the
             broker is unreachable (said within the rpc timeout, with why
             when its handshake refused us); the broker answered 403 (the
             certificate's role may not do that), 409, 500, 503 (or any
             code not listed under 2)
        2    usage errors and refused input: bad arguments (one line on
             stderr and a hint: "see arbiter CMD --help"), option values
             out of bounds ("arbiter: --delay: ..."), nothing sent; the
             broker answered 400, 404, 413 or 422
        3    wait: --timeout passed before every task finished
        4    the broker's journal is full (507: its disk has no space, or
             fails): it changed nothing and takes writes again by itself
             once space is freed; send the same command again later
        130  interrupted (SIGINT) while waiting

    The common options (--broker, --cert, --broker-key, --json,
    --rpc-timeout, -h/--help, --version) are taken anywhere on the line: before the command, between
    a command and its verb, among the command's own arguments.

    Library code stays quiet; the CLI is where things get printed: results
    on stdout, everything else on stderr, one "arbiter: ..." line per
    problem. With --json every line on stderr is a JSON object instead:
    {"error": TEXT, "code": CODE} for an error (CODE the broker's arb_err_t
    when the broker refused, 404 as well when it knows no such task or
    flow, null when the CLI found the fault itself or the broker did not
    answer; the exit status is the same as without --json), {"notice":
    TEXT} for anything else worth saying.
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
    ARB_EXIT_JOURNAL_FULL = 4,
    ARB_EXIT_INTERRUPTED = 130,
};

typedef struct {
    const char *broker;      //  endpoint (borrowed from argv); NULL: $ARBITER_BROKER or the default
    const char *cert;        //  --cert (borrowed); NULL: $ARBITER_CERT, else no CURVE
    const char *broker_key;  //  --broker-key (borrowed); NULL: $ARBITER_BROKER_KEY
    int rpc_timeout_ms;      //  per request
    bool json;               //  --json: machine-readable output
    bool json_early;         //  --json came among the options in front of the command
    const char *command;     //  the command's name, for messages (borrowed)
    arb_client_t *client;    //  owned; created on first use by arb_cli_client
} arb_cli_t;

//  A command: its name, one-line summary, full help and options (each
//  command also takes the common options, added by arb_cli_getopt).
typedef struct {
    const char *name;
    const char *summary;
    const char *usage;             //  printed by --help
    const struct option *options;  //  NULL-terminated; long options
    int (*run) (arb_cli_t *cli, int argc, char **argv);
    const char *short_options;  //  getopt letters besides -h ("n:"), NULL none
} arb_cli_cmd_t;

//  The commands, each in the arb_cli_*.c file of its area.
extern const arb_cli_cmd_t arb_cli_cmd_submit;
extern const arb_cli_cmd_t arb_cli_cmd_wait;
extern const arb_cli_cmd_t arb_cli_cmd_status;
extern const arb_cli_cmd_t arb_cli_cmd_list;
extern const arb_cli_cmd_t arb_cli_cmd_peek;
extern const arb_cli_cmd_t arb_cli_cmd_stats;
extern const arb_cli_cmd_t arb_cli_cmd_events;
extern const arb_cli_cmd_t arb_cli_cmd_ping;
extern const arb_cli_cmd_t arb_cli_cmd_cancel;
extern const arb_cli_cmd_t arb_cli_cmd_retry;
extern const arb_cli_cmd_t arb_cli_cmd_delete;
extern const arb_cli_cmd_t arb_cli_cmd_queue;
extern const arb_cli_cmd_t arb_cli_cmd_limit;
extern const arb_cli_cmd_t arb_cli_cmd_dag;
extern const arb_cli_cmd_t arb_cli_cmd_group;
extern const arb_cli_cmd_t arb_cli_cmd_pipe;
extern const arb_cli_cmd_t arb_cli_cmd_schedule;
extern const arb_cli_cmd_t arb_cli_cmd_keygen;

//  A task's own options, shared by `submit` and `schedule add`
//  (arb_cli_submit.c): the getopt entries, their help lines, and their
//  parser, which applies one to spec and returns 0, -1 after saying why,
//  or 1 if c is not one of them.
// clang-format off
#define ARB_CLI_TASK_OPTIONS                        \
    {"queue", required_argument, NULL, 'q'},        \
    {"priority", required_argument, NULL, 'p'},     \
    {"retries", required_argument, NULL, 'r'},      \
    {"backoff", required_argument, NULL, 'b'},      \
    {"no-jitter", no_argument, NULL, 'J'},          \
    {"timeout", required_argument, NULL, 't'},      \
    {"soft-timeout", required_argument, NULL, 'S'}, \
    {"retention", required_argument, NULL, 'R'}
// clang-format on
#define ARB_CLI_TASK_OPTIONS_HELP                                                          \
    "  --queue Q            queue (default: default)\n"                                    \
    "  --priority P         higher runs first (-2147483648..2147483647; default 0)\n"      \
    "  --retries N          extra attempts after a failure (0..1000; default 0)\n"         \
    "  --backoff fixed:SECONDS | exp:BASE,CAP\n"                                           \
    "                       delay before a retry: always SECONDS, or BASE doubling\n"      \
    "                       per attempt up to CAP, with random jitter (needs --retries)\n" \
    "  --no-jitter          exp: backoff without jitter\n"                                 \
    "  --timeout SECONDS    limit of one attempt (up to 30 days; default none)\n"          \
    "  --soft-timeout SECONDS  warn the handler this long into an attempt, below\n"        \
    "                       --timeout (an --exec command gets SIGUSR1; a C handler\n"      \
    "                       sees arb_job_is_soft_timed_out); default none\n"               \
    "  --retention SECONDS  keep the finished task this long (default: the queue's)\n"     \
    "  (--timeout, --soft-timeout, --retention: seconds, or a number with a unit,\n"       \
    "  s, m, h or d: 90, 1.5h, 7d; --backoff's: seconds)\n"
int arb_cli_task_option (arb_cli_t *cli, arb_task_spec_t *spec, int c, const char *value);

//  The rules between a task's own options (--no-jitter goes with exp:
//  backoff, --backoff with --retries, --soft-timeout below --timeout). 0,
//  or -1 after saying why.
int arb_cli_task_check (arb_cli_t *cli, const arb_task_spec_t *spec);

//  A task's payload (arb_cli_submit.c): the argument, stdin (up to 16 MiB)
//  for "-" only (so that a loop reading its own stdin can submit), empty
//  when none is given. NULL after saying why.
zframe_t *arb_cli_payload (arb_cli_t *cli, const char *arg);

//  How a flow id is written, so that it is never taken for a task id:
//  printf (ARB_CLI_FLOW_PREFIX "%" PRIu64, id) prints "flow:7".
#define ARB_CLI_FLOW_PREFIX "flow:"

//  Returned by arb_cli_getopt besides option values.
#define ARB_CLI_END   -1  //  no more options; positional arguments start at optind
#define ARB_CLI_HELP  -2  //  --help or --version: printed on stdout, exit 0
#define ARB_CLI_USAGE -3  //  bad option: said on stderr, exit 2

//  getopt_long over a command's arguments, with the common options handled
//  here. Options may come before, between or after the positional
//  arguments; "--" ends them. Call it until it returns ARB_CLI_END (or
//  another negative value), starting with optind 0.
int arb_cli_getopt (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv);

//  The common options in front of argv[optind]: reads them up to the first
//  argument that is not one (a command, a verb), where it leaves optind.
//  Returns ARB_CLI_END there, or ARB_CLI_HELP / ARB_CLI_USAGE (cmd's usage
//  for --help; cmd->name NULL is `arbiter` itself).
int arb_cli_common_options (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv);

//  Exit status for the outcome of arb_cli_getopt (HELP or USAGE).
int arb_cli_getopt_exit (int rc);

//  Says "arbiter CMD: message" and the hint "see arbiter CMD --help" on
//  stderr (--json: an error object); returns ARB_EXIT_USAGE.
int arb_cli_usage (arb_cli_t *cli, const arb_cli_cmd_t *cmd, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Says the error "arbiter: message" on stderr and returns status.
int arb_cli_say (arb_cli_t *cli, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  The same for an error the broker answered with code (an arb_err_t; 0:
//  none), which --json shows.
int arb_cli_say_code (arb_cli_t *cli, int status, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Says "arbiter: message" on stderr, not an error (--json: a notice).
void arb_cli_note (arb_cli_t *cli, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Parse an option value, saying "arbiter: --NAME: reason" when refused
//  ("-n" for a letter). Return 0 or -1 (then exit ARB_EXIT_USAGE). A time
//  is seconds, or a number with a unit (arb_cli_parse_duration).
int arb_cli_opt_seconds (
    arb_cli_t *cli, const char *name, const char *text, uint64_t max_ms, uint64_t *ms);
//  Seconds that must be more than 0 (0 and negatives refused alike).
int arb_cli_opt_positive_seconds (
    arb_cli_t *cli, const char *name, const char *text, uint64_t max_ms, uint64_t *ms);
int arb_cli_opt_uint (
    arb_cli_t *cli, const char *name, const char *text, uint64_t max, uint64_t *value);

//  A name (arb_cli_parse_name) given to option name ("queue": said as
//  "--queue: reason"), or as the argument name stands for ("NAME": said as
//  "NAME: reason").
int arb_cli_opt_name (arb_cli_t *cli, const char *name, const char *text);

//  Parses task ids (positive integers). Stores a malloc'd array the caller
//  frees; drops repeated ids. Returns 0, or -1 after saying why.
int arb_cli_parse_ids (arb_cli_t *cli, int argc, char **argv, uint64_t **ids, size_t *n);

//  Reads all of stdin, refusing more than max bytes. Returns the bytes as
//  a frame (the caller owns it), or NULL after saying "arbiter: WHAT: why".
zframe_t *arb_cli_read_stdin (arb_cli_t *cli, const char *what, size_t max);

//  The client, connected on first use. NULL after printing why (a
//  malformed --broker endpoint: the caller exits ARB_EXIT_USAGE).
arb_client_t *arb_cli_client (arb_cli_t *cli);

//  Says "arbiter: WHAT: <the client's error>" (--json: with the broker's
//  code) and returns the exit status its code calls for (2 for
//  400/404/413/422, 130 if interrupted, else 1).
int arb_cli_client_fail (arb_cli_t *cli, const char *what);

//  A refusal's text that names the request's field allow_unknown, said
//  with the command's name for it instead (as: "--allow-unknown-endpoints",
//  a flow file's "\"allow_unknown_endpoints\": true"), after "what: ".
//  Returns the exit status, or -1 if the text does not name it (nothing
//  said).
int arb_cli_say_allow_unknown (arb_cli_t *cli, const char *what, const char *text, const char *as);

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
