/*  arb_cli_dag.c — `arbiter dag` and `arbiter group`: submit a workflow
    file, and the status, wait and cancel of a flow by its id. The work is
    in arb_cli_flow.c; here are the verbs, their options and their help.
*/

#include "arb_cli_flow.h"

static const struct option s_submit_options[] = {
    {"watch", no_argument, NULL, 'w'},
    {NULL, 0, NULL, 0},
};

static const struct option s_wait_options[] = {
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

//  `X submit FILE [--watch]` for a flow of kind.
static int
s_submit (arb_cli_t *cli, const arb_cli_cmd_t *cmd, arb_flow_kind_t kind, int argc, char **argv)
{
    bool watch = false;
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c != 'w')
            return arb_cli_getopt_exit (c);
        watch = true;
    }
    if (argc - optind != 1)
        return arb_cli_usage (cli, cmd, "give one FILE (- for stdin)");
    arb_flowfile_err_t err;
    arb_flowfile_t *file = arb_flowfile_read (argv[optind], kind, &err);
    if (!file)
        return arb_cli_say (cli, ARB_EXIT_USAGE, "%s", err.text);
    return arb_cli_flow_submit (cli, &file, watch);
}

//  ---------------------------------------------------------------------
//  dag

static const arb_cli_cmd_t s_dag_submit_cmd;
static const arb_cli_cmd_t s_dag_status_cmd;
static const arb_cli_cmd_t s_dag_wait_cmd;
static const arb_cli_cmd_t s_dag_cancel_cmd;

static int
s_dag_submit (arb_cli_t *cli, int argc, char **argv)
{
    return s_submit (cli, &s_dag_submit_cmd, ARB_FLOW_DAG, argc, argv);
}

static int
s_dag_status (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_status_run (cli, &s_dag_status_cmd, ARB_FLOW_DAG, argc, argv);
}

static int
s_dag_wait (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_wait_run (cli, &s_dag_wait_cmd, ARB_FLOW_DAG, argc, argv);
}

static int
s_dag_cancel (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_cancel_run (cli, &s_dag_cancel_cmd, ARB_FLOW_DAG, argc, argv);
}

static const arb_cli_cmd_t s_dag_submit_cmd = {
    .name = "dag submit",
    .usage =
        "usage: arbiter dag submit [--watch] [--json] FILE\n"
        "\n"
        "Submits the DAG described by the JSON file FILE (- for stdin) as one flow and\n"
        "prints its id, flow:ID. docs/workflows.md describes the file:\n"
        "\n"
        "  {\"name\": \"nightly\", \"tasks\": [\n"
        "    {\"name\": \"fetch\", \"payload\": \"http://...\"},\n"
        "    {\"name\": \"parse\", \"after\": [\"fetch\"]},\n"
        "    {\"name\": \"alert\", \"task\": \"mail\", \"after\": [{\"task\": \"parse\", \"when\": "
        "\"on_failure\"}]}]}\n"
        "\n"
        "A task waits for its dependencies (\"after\"): on_success (default) runs it once\n"
        "they succeeded and gives it their results; on_failure only if one failed (else it\n"
        "is skipped); always however they end. A task whose on_success dependency failed\n"
        "is dead, naming it. Mistakes in the file are refused naming the task and the\n"
        "field, a dependency cycle naming the tasks on it (exit 2).\n"
        "\n"
        "  --watch  then wait for every task, as `arbiter dag wait`\n"
        "  --json   print {\"flow\": N, \"tasks\": {NAME: ID}, \"refused\": [NAME]}\n"
        "\n"
        "A task its queue refuses (--overflow reject, at its bound) ends cancelled:\n"
        "a line on stderr names it, and the exit status is 1.\n",
    .options = s_submit_options,
    .run = s_dag_submit,
};

static const arb_cli_cmd_t s_dag_status_cmd = {
    .name = "dag status",
    .usage =
        "usage: arbiter dag status [--json] flow:ID\n"
        "\n"
        "Shows the DAG's counts by state and each task: its name, state, attempts, id\n"
        "and error.\n"
        "\n"
        "  --json  {\"flow\", \"total\", \"counts\": {STATE: N}, \"tasks\": [{\"id\", \"name\",\n"
        "          \"task\", \"state\", \"attempts\", \"max_attempts\", \"error\", \"result\"}]}\n"
        "\n"
        "Exit: 0; 2 if no such flow; 1 if the broker is unreachable.\n",
    .run = s_dag_status,
};

static const arb_cli_cmd_t s_dag_wait_cmd = {
    .name = "dag wait",
    .usage = "usage: arbiter dag wait [--timeout SECONDS] [--json] flow:ID\n"
             "\n"
             "Waits for every task of the DAG and prints each as it ends: \"NAME STATE: RESULT\"\n"
             "or \"NAME STATE: ERROR\" (escaped onto one line). --json: one object per task,\n"
             "{\"id\", \"name\", \"task\", \"state\", \"attempts\", \"result\", \"error\"}.\n"
             "\n"
             "  --timeout SECONDS  give up after this long (decimals allowed)\n"
             "\n"
             "Exit: 0 if every task succeeded or was skipped; 1 if any ended dead or\n"
             "cancelled (or the broker is unreachable); 2 if no such flow; 3 if the timeout\n"
             "passed first; 130 interrupted.\n",
    .options = s_wait_options,
    .run = s_dag_wait,
};

static const arb_cli_cmd_t s_dag_cancel_cmd = {
    .name = "dag cancel",
    .usage = "usage: arbiter dag cancel [--json] flow:ID\n"
             "\n"
             "Cancels every unfinished task of the DAG (running ones are stopped on their\n"
             "workers) and prints each task it cancelled.\n"
             "\n"
             "  --json  {\"flow\", \"count\", \"cancelled\": [NAME], \"left\": [NAME]}\n"
             "\n"
             "Exit: 0; 1 if every task had finished already; 2 if no such flow.\n",
    .run = s_dag_cancel,
};

static const arb_cli_cmd_t *const s_dag_verbs[] = {
    &s_dag_submit_cmd,
    &s_dag_status_cmd,
    &s_dag_wait_cmd,
    &s_dag_cancel_cmd,
};

static int
s_dag_run (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_run_verb (cli, &arb_cli_cmd_dag, s_dag_verbs,
                             sizeof (s_dag_verbs) / sizeof (s_dag_verbs[0]), argc, argv);
}

const arb_cli_cmd_t arb_cli_cmd_dag = {
    .name = "dag",
    .summary = "submit a DAG of tasks from a file; its status, wait, cancel",
    .usage = "usage: arbiter dag submit [--watch] FILE\n"
             "       arbiter dag status flow:ID\n"
             "       arbiter dag wait [--timeout SECONDS] flow:ID\n"
             "       arbiter dag cancel flow:ID\n"
             "\n"
             "A DAG is tasks that wait for each other and get their results, submitted as\n"
             "one flow from a JSON file (docs/workflows.md). Each verb takes --json and --help.\n"
             "A flow's id is written flow:ID (flow:7), never to be taken for a task's; the\n"
             "verbs take the number alone too.\n"
             "\n"
             "  submit  submit the file's tasks and print the flow's id, flow:ID\n"
             "  status  counts by state, and each task's name, state, attempts and error\n"
             "  wait    print each task as it ends; exit 0 if all succeeded or were skipped,\n"
             "          1 if any ended dead or cancelled, 3 on --timeout\n"
             "  cancel  cancel every unfinished task\n",
    .run = s_dag_run,
};

//  ---------------------------------------------------------------------
//  group

static const arb_cli_cmd_t s_group_submit_cmd;
static const arb_cli_cmd_t s_group_status_cmd;
static const arb_cli_cmd_t s_group_wait_cmd;
static const arb_cli_cmd_t s_group_cancel_cmd;

static int
s_group_submit (arb_cli_t *cli, int argc, char **argv)
{
    return s_submit (cli, &s_group_submit_cmd, ARB_FLOW_GROUP, argc, argv);
}

static int
s_group_status (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_status_run (cli, &s_group_status_cmd, ARB_FLOW_GROUP, argc, argv);
}

static int
s_group_wait (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_wait_run (cli, &s_group_wait_cmd, ARB_FLOW_GROUP, argc, argv);
}

static int
s_group_cancel (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_cancel_run (cli, &s_group_cancel_cmd, ARB_FLOW_GROUP, argc, argv);
}

static const arb_cli_cmd_t s_group_submit_cmd = {
    .name = "group submit",
    .usage =
        "usage: arbiter group submit [--watch] [--json] FILE\n"
        "\n"
        "Submits the group described by the JSON file FILE (- for stdin) and prints its\n"
        "id, flow:ID. The members run independently; the callback runs once all of them\n"
        "succeeded, with their results (if one fails it is dead); the finalizer runs\n"
        "after all of them and the callback, however they ended:\n"
        "\n"
        "  {\"name\": \"thumbs\", \"tasks\": [{\"task\": \"resize\", \"payload\": \"a.jpg\"},\n"
        "                               {\"task\": \"resize\", \"payload\": \"b.jpg\"}],\n"
        "   \"callback\": {\"task\": \"zip\"}, \"finalizer\": {\"task\": \"cleanup\"}}\n"
        "\n"
        "Members without a name are member1, member2, ...; the callback and finalizer\n"
        "are named callback and finalizer. `arbiter cancel --group NAME` cancels the\n"
        "members of every group of that name (the finalizer still runs).\n"
        "\n"
        "  --watch  then wait for every task, as `arbiter group wait`\n"
        "  --json   print {\"flow\": N, \"tasks\": {NAME: ID}, \"refused\": [NAME]}\n"
        "\n"
        "A task its queue refuses (--overflow reject, at its bound) ends cancelled:\n"
        "a line on stderr names it, and the exit status is 1.\n",
    .options = s_submit_options,
    .run = s_group_submit,
};

static const arb_cli_cmd_t s_group_status_cmd = {
    .name = "group status",
    .usage =
        "usage: arbiter group status [--json] flow:ID\n"
        "\n"
        "Shows how many members are done and failed out of how many, the counts by\n"
        "state, and each task (members, callback, finalizer): name, state, attempts,\n"
        "id and error.\n"
        "\n"
        "  --json  as `dag status --json`, with \"members\": {\"total\", \"done\", \"failed\"}\n"
        "\n"
        "Exit: 0; 2 if no such group; 1 if the broker is unreachable.\n",
    .run = s_group_status,
};

static const arb_cli_cmd_t s_group_wait_cmd = {
    .name = "group wait",
    .usage = "usage: arbiter group wait [--timeout SECONDS] [--json] flow:ID\n"
             "\n"
             "Waits for every task of the group and prints each as it ends, as `dag wait`.\n"
             "\n"
             "  --timeout SECONDS  give up after this long (decimals allowed)\n"
             "\n"
             "Exit: 0 if every task succeeded or was skipped; 1 if any ended dead or\n"
             "cancelled; 2 if no such group; 3 if the timeout passed first.\n",
    .options = s_wait_options,
    .run = s_group_wait,
};

static const arb_cli_cmd_t s_group_cancel_cmd = {
    .name = "group cancel",
    .usage = "usage: arbiter group cancel [--json] flow:ID\n"
             "\n"
             "Cancels the group's unfinished members and what waits on them, but its\n"
             "finalizer, which still runs. Prints each task it cancelled.\n"
             "\n"
             "  --json  {\"flow\", \"count\", \"cancelled\": [NAME], \"left\": [NAME]}\n"
             "\n"
             "Exit: 0; 1 if every task had finished already (but the finalizer); 2 if no such\n"
             "group.\n",
    .run = s_group_cancel,
};

static const arb_cli_cmd_t *const s_group_verbs[] = {
    &s_group_submit_cmd,
    &s_group_status_cmd,
    &s_group_wait_cmd,
    &s_group_cancel_cmd,
};

static int
s_group_run (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_run_verb (cli, &arb_cli_cmd_group, s_group_verbs,
                             sizeof (s_group_verbs) / sizeof (s_group_verbs[0]), argc, argv);
}

const arb_cli_cmd_t arb_cli_cmd_group = {
    .name = "group",
    .summary = "submit a group with callback and finalizer; its status, wait, cancel",
    .usage = "usage: arbiter group submit [--watch] FILE\n"
             "       arbiter group status flow:ID\n"
             "       arbiter group wait [--timeout SECONDS] flow:ID\n"
             "       arbiter group cancel flow:ID\n"
             "\n"
             "A group is independent members, an optional callback that runs when all of\n"
             "them succeeded (with their results), and an optional finalizer that runs when\n"
             "everything else has ended. Each verb takes --json and --help.\n",
    .run = s_group_run,
};
