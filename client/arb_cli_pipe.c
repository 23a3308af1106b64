/*  arb_cli_pipe.c — `arbiter pipe`: a chain of handlers where each step's
    result is the next step's input, from the command line or a file; and
    the status, wait and cancel of a pipe by its id (arb_cli_flow.c).
*/

#include "arb_cli_flow.h"

typedef struct {
    bool watch;
    const char *input;  //  borrowed from argv; "-": stdin; NULL: empty
    const char *args;   //  borrowed from argv; NULL: none
    const char *queue;  //  borrowed from argv; NULL: default
} s_pipe_t;

static const struct option s_submit_options[] = {
    {"input", required_argument, NULL, 'i'},
    {"args", required_argument, NULL, 'a'},
    {"queue", required_argument, NULL, 'q'},
    {"watch", no_argument, NULL, 'w'},
    {NULL, 0, NULL, 0},
};

static const struct option s_wait_options[] = {
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

static int
s_option (arb_cli_t *cli, s_pipe_t *self, int c, const char *value)
{
    if (c == 'w')
        self->watch = true;
    else if (c == 'i')
        self->input = value;
    else if (c == 'a')
        self->args = value;
    else if (arb_cli_opt_name (cli, "queue", value))
        return -1;
    else
        self->queue = value;
    return 0;
}

//  Whether the arguments name a pipe file rather than handlers.
static bool
s_is_file (int count, char **names)
{
    size_t len = strlen (names[0]);
    return count == 1 && len > 5 && streq (names[0] + len - 5, ".json");
}

//  The pipe from the handlers named on the command line. NULL after
//  printing why.
static arb_flowfile_t *
s_from_handlers (arb_cli_t *cli, s_pipe_t *self, int count, char **handlers)
{
    zframe_t *input = NULL;
    if (self->input && streq (self->input, "-"))
        input = arb_cli_read_stdin (cli, "--input", ARB_PAYLOAD_DEFAULT_MAX);
    else if (self->input)
        input = zframe_new (self->input, strlen (self->input));
    else
        input = zframe_new_empty ();
    if (!input)
        return NULL;
    arb_flowfile_err_t err;
    size_t args_size = self->args ? strlen (self->args) : 0;
    arb_flowfile_t *file =
        arb_flowfile_new_pipe ((const char *const *) handlers, (size_t) count, self->queue, &input,
                               (const uint8_t *) self->args, args_size, &err);
    if (!file)
        arb_cli_say (cli, 0, "%s", err.text);
    return file;
}

static const arb_cli_cmd_t s_submit_cmd;
static const arb_cli_cmd_t s_status_cmd;
static const arb_cli_cmd_t s_wait_cmd;
static const arb_cli_cmd_t s_cancel_cmd;

static int
s_submit (arb_cli_t *cli, int argc, char **argv)
{
    s_pipe_t self = {.watch = false};
    int c;
    while ((c = arb_cli_getopt (cli, &s_submit_cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (s_option (cli, &self, c, optarg))
            return ARB_EXIT_USAGE;
    }
    int count = argc - optind;
    if (count < 1)
        return arb_cli_usage (cli, &s_submit_cmd,
                              "which steps? give HANDLER names, or a FILE.json");
    arb_flowfile_t *file = NULL;
    if (!s_is_file (count, argv + optind))
        file = s_from_handlers (cli, &self, count, argv + optind);
    else if (self.input || self.args || self.queue)
        return arb_cli_usage (cli, &s_submit_cmd,
                              "a pipe file gives its own input, args and queues");
    else {
        arb_flowfile_err_t err;
        file = arb_flowfile_read (argv[optind], ARB_FLOW_PIPE, &err);
        if (!file)
            arb_cli_say (cli, 0, "%s", err.text);
    }
    if (!file)
        return ARB_EXIT_USAGE;
    return arb_cli_flow_submit (cli, &file, self.watch);
}

static int
s_status (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_status_run (cli, &s_status_cmd, ARB_FLOW_PIPE, argc, argv);
}

static int
s_wait (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_wait_run (cli, &s_wait_cmd, ARB_FLOW_PIPE, argc, argv);
}

static int
s_cancel (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_flow_cancel_run (cli, &s_cancel_cmd, ARB_FLOW_PIPE, argc, argv);
}

static const arb_cli_cmd_t s_submit_cmd = {
    .name = "pipe submit",
    .usage = "usage: arbiter pipe submit [options] HANDLER [HANDLER...]\n"
             "       arbiter pipe submit [--watch] [--json] FILE.json\n"
             "\n"
             "Submits a pipe: one step per HANDLER, in order; the first step's input is\n"
             "--input, each next step's input is the result of the step before. Prints the\n"
             "pipe's id, flow:ID. If a step fails, the steps after it are dead.\n"
             "\n"
             "  --input DATA | -  the first step's input (-: stdin; default: empty)\n"
             "  --args DATA       persistent arguments every step gets beside its input\n"
             "  --queue Q         every step's queue (default: default)\n"
             "  --watch           then print each step's result as it finishes, in order, and\n"
             "                    the pipe's result, as `arbiter pipe wait`\n"
             "  --json            print {\"flow\": N, \"tasks\": {NAME: ID},\n"
             "                    \"refused\": [NAME]}\n"
             "\n"
             "A step its queue refuses (--overflow reject, at its bound) ends cancelled: a\n"
             "line on stderr names it, and the exit status is 1.\n"
             "\n"
             "One argument ending in .json is a pipe file (- is not), which gives each step\n"
             "its own args and options (docs/workflows.md):\n"
             "\n"
             "  {\"input\": 0, \"args\": \"1\", \"steps\": [{\"task\": \"add\"}, {\"task\": "
             "\"add\", \"args\": "
             "\"2\"}]}\n",
    .options = s_submit_options,
    .run = s_submit,
};

static const arb_cli_cmd_t s_status_cmd = {
    .name = "pipe status",
    .usage = "usage: arbiter pipe status [--json] flow:ID\n"
             "\n"
             "Shows the pipe's counts by state and each step (step1, step2, ... unless the\n"
             "file named them): state, attempts, id and error. --json as `dag status --json`.\n"
             "\n"
             "Exit: 0; 2 if no such pipe; 1 if the broker is unreachable.\n",
    .run = s_status,
};

static const arb_cli_cmd_t s_wait_cmd = {
    .name = "pipe wait",
    .usage = "usage: arbiter pipe wait [--timeout SECONDS] [--json] flow:ID\n"
             "\n"
             "Waits for the pipe and prints each step as it finishes, in order (\"step1\n"
             "succeeded: RESULT\", \"step2 dead: ERROR\"), then \"result: RESULT\", the last\n"
             "step's result, if it succeeded. --json: one object per step, then\n"
             "{\"pipe\", \"state\", \"result\"}.\n"
             "\n"
             "  --timeout SECONDS  give up after this long (decimals allowed)\n"
             "\n"
             "Exit: 0 if every step succeeded; 1 if a step ended dead or cancelled; 2 if no\n"
             "such pipe; 3 if the timeout passed first.\n",
    .options = s_wait_options,
    .run = s_wait,
};

static const arb_cli_cmd_t s_cancel_cmd = {
    .name = "pipe cancel",
    .usage = "usage: arbiter pipe cancel [--json] flow:ID\n"
             "\n"
             "Cancels every step of the pipe that has not finished.\n"
             "\n"
             "Exit: 0; 1 if every step had finished already; 2 if no such pipe.\n",
    .run = s_cancel,
};

static const arb_cli_cmd_t *const s_verbs[] = {
    &s_submit_cmd,
    &s_status_cmd,
    &s_wait_cmd,
    &s_cancel_cmd,
};

static int
s_run (arb_cli_t *cli, int argc, char **argv)
{
    return arb_cli_run_verb (cli, &arb_cli_cmd_pipe, s_verbs,
                             sizeof (s_verbs) / sizeof (s_verbs[0]), argc, argv);
}

const arb_cli_cmd_t arb_cli_cmd_pipe = {
    .name = "pipe",
    .summary = "submit a chain of handlers, each fed the one before's result",
    .usage = "usage: arbiter pipe submit [--input DATA|-] [--args DATA] [--queue Q] [--watch]\n"
             "                           HANDLER [HANDLER...]\n"
             "       arbiter pipe submit [--watch] FILE.json\n"
             "       arbiter pipe status flow:ID\n"
             "       arbiter pipe wait [--timeout SECONDS] flow:ID\n"
             "       arbiter pipe cancel flow:ID\n"
             "\n"
             "A pipe runs its steps one after the other, each with the result of the one\n"
             "before as its input. Each verb takes --json and --help.\n",
    .run = s_run,
};
