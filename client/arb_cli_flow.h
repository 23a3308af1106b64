/*  arb_cli_flow.h — what the workflow commands of the arbiter CLI (`dag`,
    `group`, `pipe`: arb_cli_dag.c, arb_cli_pipe.c) share: a flow's tasks
    as they show them (arb_cli_flow_t), and the verbs that work alike for
    every kind: submit, status, wait and cancel.

    The tasks of a flow are those it was submitted with, each with its name
    in the flow. A flow may hold others — the copies of a fan-out task, the
    tasks its tasks emitted (routing) — which these commands leave out: they
    are not the flow's steps, and nothing says they will ever run.
*/

#ifndef ARB_CLI_FLOW_H
#define ARB_CLI_FLOW_H

#include "arb_cli.h"
#include "arb_flowfile.h"

//  One task of a flow.
typedef struct {
    uint64_t id;
    char *ref;   //  owned: its name in the flow
    char *name;  //  owned: its handler's name
    int state;   //  arb_state_t; 0 not known yet
    uint32_t attempts;
    uint32_t max_attempts;
    char *error;      //  owned, or NULL
    uint8_t *result;  //  owned, or NULL: a succeeded task's result
    size_t result_size;
} arb_cli_node_t;

//  A flow's tasks in the order of the flow (the file's, which is id order).
typedef struct {
    arb_flow_kind_t kind;  //  the command's kind: how it is shown (NONE: the broker's)
    uint64_t id;           //  the flow's id
    arb_cli_node_t *v;     //  owned
    size_t n;
    size_t capacity;
} arb_cli_flow_t;

//  A flow with no tasks yet, and its destruction (accepts NULL).
arb_cli_flow_t *arb_cli_flow_new (arb_flow_kind_t kind, uint64_t id);
void arb_cli_flow_destroy (arb_cli_flow_t **self_p);

//  "dag", "group" or "pipe" ("flow" for ARB_FLOW_NONE).
const char *arb_cli_flow_word (arb_flow_kind_t kind);

//  Whether an argument names a flow ("flow:7").
bool arb_cli_is_flow_id (const char *text);

//  A flow id: "flow:7", or where only a flow can be meant (a flow verb's
//  argument) "7". Returns 0, or -1 after saying why.
int arb_cli_parse_flow_id (arb_cli_t *cli, const char *text, uint64_t *id);

//  Whether the arguments argv[optind..] of a command that takes task ids
//  or a flow (status, wait, cancel) name a flow. Returns -1 if none of them
//  is a flow id (go on with task ids), 0 with *id set if the one argument
//  is, else ARB_EXIT_USAGE after saying why (a flow among task ids).
int
arb_cli_flow_arg (arb_cli_t *cli, const arb_cli_cmd_t *cmd, int argc, char **argv, uint64_t *id);

//  Fetches the flow's tasks from the broker (a kind of ARB_FLOW_NONE takes
//  the broker's). Returns 0, or the exit status after saying why:
//  ARB_EXIT_USAGE if the flow has no tasks (no such flow, or their
//  retention ran out).
int arb_cli_flow_load (arb_cli_t *cli, arb_cli_flow_t *self);

//  Submits the flow read from a workflow file (takes it, nulls *file_p),
//  prints its id ("flow:7"; --json: {"flow": 7, "tasks": {NAME: ID},
//  "refused": [NAME]}) and a line on stderr naming the tasks their queue
//  refused (overflow reject), and with watch waits as arb_cli_flow_wait.
//  Returns the exit status: 1 if a task was refused, else the wait's.
int arb_cli_flow_submit (arb_cli_t *cli, arb_flowfile_t **file_p, bool watch);

//  Waits for every task of the flow, printing each as it ends ("NAME STATE:
//  RESULT|ERROR"; a pipe's steps in order, then "result: RESULT"). watching:
//  the tasks are watched already (a submit with watch). timeout_ms -1: none.
//  Returns 0 if every task succeeded or was skipped, 1 if any is dead or
//  cancelled, 3 when the timeout passed first, or another exit status.
int arb_cli_flow_wait (arb_cli_t *cli, arb_cli_flow_t *self, bool watching, int64_t timeout_ms);

//  Status, wait and cancel of the flow id, shown as a flow of kind
//  (ARB_FLOW_NONE: the broker's): what the verbs below and `arbiter
//  status|wait|cancel flow:ID` do once their options are read. Each
//  returns the exit status.
int arb_cli_flow_status (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id);
int arb_cli_flow_wait_id (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id, int64_t timeout_ms);
int arb_cli_flow_cancel (arb_cli_t *cli, arb_flow_kind_t kind, uint64_t id);

//  The verbs that take a flow id (argv[0] is the verb, cmd its usage):
//  status, wait [--timeout SECONDS] and cancel of a flow of the given kind.
//  Each returns the exit status.
int arb_cli_flow_status_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv);
int arb_cli_flow_wait_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv);
int arb_cli_flow_cancel_run (
    arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv);

//  Runs the verb named by argv[1] of a command with verbs (`dag submit`):
//  verbs are named "<command> <verb>". `<command> --help` prints the
//  command's usage. Returns the exit status.
int arb_cli_run_verb (arb_cli_t *cli,
                      const arb_cli_cmd_t *cmd,
                      const arb_cli_cmd_t *const *verbs,
                      size_t count,
                      int argc,
                      char **argv);

#endif
