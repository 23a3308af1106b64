/*  arbiter_worker.c — the arbiter-worker binary: a worker whose every task
    runs a shell command (arb_exec), so tasks can be written in any language.

    It parses its options, wires arb_exec as the handler for every task name
    (or for the --task names only) and hands the main thread to
    arb_worker_run until SIGINT/SIGTERM.
    Exit status: 0 after a clean stop, 1 if the worker could not run (or
    reach the broker within --connect-timeout), 2 for bad arguments.
*/

#include "arb_exec.h"
#include "arb_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <syslog.h>
#include <unistd.h>

#define S_QUEUES_MAX ARB_WORKER_QUEUES_MAX

typedef struct {
    const char *broker;      //  NULL: $ARBITER_BROKER or the default
    const char *cert;        //  secret certificate; NULL: $ARBITER_CERT
    const char *broker_key;  //  the broker's public key or its file; NULL: $ARBITER_BROKER_KEY
    const char *queues[S_QUEUES_MAX];
    int queue_count;
    const char *tasks[ARB_HANDLES_MAX];  //  task names it runs; none: every name
    int task_count;
    int slots;
    arb_worker_mode_t mode;
    const char *exec;
    const char *name;
    int grace_ms;
    int drain_ms;
    int connect_timeout_ms;  //  0: wait for the broker for ever
    long max_payload;
    bool route;
    int log_level;
} s_options_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: arbiter-worker --exec CMD [options]\n"
             "\n"
             "Takes tasks from the arbiter broker and runs CMD for each with /bin/sh -c:\n"
             "the payload on stdin, the result from stdout, the error from stderr's end.\n"
             "\n"
             "  --broker EP         broker endpoint (default $ARBITER_BROKER, else %s)\n"
             "  --cert FILE         this worker's secret certificate (arbiter keygen NAME\n"
             "                      --role worker writes NAME.cert_secret), for a broker that\n"
             "                      runs with --curve (default $ARBITER_CERT)\n"
             "  --broker-key KEY|FILE  the broker's public key, or its broker.cert file\n"
             "                      (default $ARBITER_BROKER_KEY)\n"
             "  --queue Q           queue to take tasks from; repeat for more (default: default)\n"
             "  --task NAME         run only tasks of this name; repeat for more (default: every\n"
             "                      name). The broker sends the worker no other task\n"
             "  --slots N           tasks run at once, 1..%d (default 1)\n"
             "  --mode light|heavy  slots are threads, or one forked process per task\n"
             "                      (default light)\n"
             "  --exec CMD          command run for every task (required)\n"
             "  --name NAME         worker name (default host.pid)\n"
             "  --grace-ms MS       SIGTERM to SIGKILL of a stopped task (default %d)\n"
             "  --drain-ms MS       on shutdown, time running tasks get to finish (default %d)\n"
             "  --connect-timeout S give up (exit status 1) if the broker has not answered\n"
             "                      within S seconds of the start (default: wait for ever;\n"
             "                      an unanswered broker is logged every few seconds)\n"
             "  --max-payload BYTES largest result (default %u); the broker's --max-payload,\n"
             "                      learned when the worker registers, holds if smaller\n"
             "  --route             route instead of answering (Arbeiter): every stdout line\n"
             "                      QUEUE<TAB>DATA becomes a task of QUEUE, enqueued when the\n"
             "                      command succeeds; no output makes it a sink\n"
             "  --log-level LEVEL   error, warning, notice, info or debug (default info)\n"
             "  -h, --help          this text\n"
             "  --version           the version\n"
             "\n"
             "The command sees ARBITER_TASK_ID, ARBITER_ATTEMPT, ARBITER_TASK_NAME,\n"
             "ARBITER_QUEUE, ARBITER_PARENTS (a path to the DAG parents' outcomes as JSON:\n"
             "{NAME: {\"id\", \"state\", \"result\", \"error\"}})\n"
             "and ARBITER_ARGS (a path to the task's persistent arguments).\n"
             "SIGINT/SIGTERM stop taking tasks and let running ones finish; a second\n"
             "signal stops them at once.\n"
             "\n"
             "Exit status: 0 after a stop, 1 if the worker could not start or did not\n"
             "reach the broker within --connect-timeout, 2 for bad arguments.\n",
             ARB_WORKER_ENDPOINT, ARB_WORKER_SLOTS_MAX, ARB_WORKER_GRACE_MS, ARB_WORKER_DRAIN_MS,
             ARB_PAYLOAD_DEFAULT_MAX);
}

static int
s_bad (const char *fmt, const char *value)
{
    fprintf (stderr, "arbiter-worker: ");
    fprintf (stderr, fmt, value);
    fprintf (stderr, "\n\n");
    s_usage (stderr);
    return 2;
}

//  Parses a decimal number in [min, max]. Returns 0, or -1.
static int
s_number (const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || end == text || *end || n < min || n > max)
        return -1;
    *value = n;
    return 0;
}

//  A name the broker takes (arb_name_check).
static bool
s_is_name (const char *text)
{
    char why[80];
    size_t len = strlen (text);
    return len > 0 && len <= ARB_NAME_MAX && arb_name_check (text, len, why, sizeof (why)) == 0;
}

static int
s_log_level (const char *name)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"error", LOG_ERR},
                  {"warning", LOG_WARNING},
                  {"notice", LOG_NOTICE},
                  {"info", LOG_INFO},
                  {"debug", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof (levels) / sizeof (levels[0]); i++)
        if (streq (name, levels[i].name))
            return levels[i].level;
    return -1;
}

enum {
    S_OPT_BROKER = 1,
    S_OPT_CERT,
    S_OPT_BROKER_KEY,
    S_OPT_QUEUE,
    S_OPT_TASK,
    S_OPT_SLOTS,
    S_OPT_MODE,
    S_OPT_EXEC,
    S_OPT_NAME,
    S_OPT_GRACE,
    S_OPT_DRAIN,
    S_OPT_CONNECT_TIMEOUT,
    S_OPT_MAX_PAYLOAD,
    S_OPT_LOG_LEVEL,
    S_OPT_ROUTE,
    S_OPT_HELP,
    S_OPT_VERSION,
};

//  One option's value into opts. Returns 0, or 2 (usage printed).
static int
s_option (s_options_t *opts, int opt, const char *arg)
{
    long n;
    switch (opt) {
        case S_OPT_BROKER:
            opts->broker = arg;
            return 0;
        case S_OPT_CERT:
            opts->cert = arg;
            return 0;
        case S_OPT_BROKER_KEY:
            opts->broker_key = arg;
            return 0;
        case S_OPT_QUEUE:
            if (!s_is_name (arg))
                return s_bad ("--queue: %s", "not a queue name (1..200 bytes of printable UTF-8)");
            if (opts->queue_count == S_QUEUES_MAX)
                return s_bad ("--queue: more than %s queues", "64");
            opts->queues[opts->queue_count++] = arg;
            return 0;
        case S_OPT_TASK:
            if (!*arg || strlen (arg) > ARB_NAME_MAX)
                return s_bad ("--task: '%s' is not a task name", arg);
            if (opts->task_count == ARB_HANDLES_MAX)
                return s_bad ("--task: more than %s names", "1000");
            opts->tasks[opts->task_count++] = arg;
            return 0;
        case S_OPT_SLOTS:
            if (s_number (arg, 1, ARB_WORKER_SLOTS_MAX, &n))
                return s_bad ("--slots: '%s' is not a number of slots (1..1024)", arg);
            opts->slots = (int) n;
            return 0;
        case S_OPT_MODE:
            if (!streq (arg, "light") && !streq (arg, "heavy"))
                return s_bad ("--mode: '%s' is neither light nor heavy", arg);
            opts->mode = streq (arg, "heavy") ? ARB_WORKER_HEAVY : ARB_WORKER_LIGHT;
            return 0;
        case S_OPT_EXEC:
            opts->exec = arg;
            return 0;
        case S_OPT_NAME:
            if (!s_is_name (arg))
                return s_bad ("--name: %s", "not a worker name (1..200 bytes of printable UTF-8)");
            opts->name = arg;
            return 0;
        case S_OPT_GRACE:
        case S_OPT_DRAIN:
            if (s_number (arg, 0, INT_MAX, &n))
                return s_bad ("'%s' is not a number of milliseconds", arg);
            *(opt == S_OPT_GRACE ? &opts->grace_ms : &opts->drain_ms) = (int) n;
            return 0;
        case S_OPT_CONNECT_TIMEOUT: {
            char *end;
            errno = 0;
            double seconds = strtod (arg, &end);
            if (errno || end == arg || *end || !(seconds > 0) || seconds > INT_MAX / 1000)
                return s_bad ("--connect-timeout: '%s' is not a number of seconds", arg);
            opts->connect_timeout_ms = seconds * 1000 < 1 ? 1 : (int) (seconds * 1000);
            return 0;
        }
        case S_OPT_MAX_PAYLOAD:
            if (s_number (arg, 1, LONG_MAX, &n))
                return s_bad ("--max-payload: '%s' is not a number of bytes", arg);
            opts->max_payload = n;
            return 0;
        case S_OPT_ROUTE:
            opts->route = true;
            return 0;
        case S_OPT_LOG_LEVEL:
            opts->log_level = s_log_level (arg);
            if (opts->log_level < 0)
                return s_bad ("--log-level: '%s' is not error, warning, notice, info or debug",
                              arg);
            return 0;
        default:
            return s_bad ("%s", "unknown option");
    }
}

//  Returns 0 to run, 1 for --help or --version (done), 2 for bad arguments.
static int
s_parse (int argc, char **argv, s_options_t *opts)
{
    static const struct option longopts[] = {
        {"broker", required_argument, NULL, S_OPT_BROKER},
        {"cert", required_argument, NULL, S_OPT_CERT},
        {"broker-key", required_argument, NULL, S_OPT_BROKER_KEY},
        {"queue", required_argument, NULL, S_OPT_QUEUE},
        {"task", required_argument, NULL, S_OPT_TASK},
        {"slots", required_argument, NULL, S_OPT_SLOTS},
        {"mode", required_argument, NULL, S_OPT_MODE},
        {"exec", required_argument, NULL, S_OPT_EXEC},
        {"name", required_argument, NULL, S_OPT_NAME},
        {"grace-ms", required_argument, NULL, S_OPT_GRACE},
        {"drain-ms", required_argument, NULL, S_OPT_DRAIN},
        {"connect-timeout", required_argument, NULL, S_OPT_CONNECT_TIMEOUT},
        {"max-payload", required_argument, NULL, S_OPT_MAX_PAYLOAD},
        {"log-level", required_argument, NULL, S_OPT_LOG_LEVEL},
        {"route", no_argument, NULL, S_OPT_ROUTE},
        {"help", no_argument, NULL, S_OPT_HELP},
        {"version", no_argument, NULL, S_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;  //  we explain bad options ourselves
    int opt;
    while ((opt = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == S_OPT_HELP || opt == 'h') {
            s_usage (stdout);
            return 1;
        }
        if (opt == S_OPT_VERSION) {
            printf ("arbiter-worker %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
            return 1;
        }
        if (opt == '?' || opt == ':')
            return s_bad ("bad option or missing value: %s", argv[optind - 1]);
        int rc = s_option (opts, opt, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return s_bad ("unexpected argument '%s'", argv[optind]);
    if (!opts->exec || !*opts->exec)
        return s_bad ("%s", "--exec CMD is required");
    return 0;
}

//  A command must find stdin, stdout and stderr open; a worker started
//  with one closed would hand that number to a pipe instead.
static void
s_standard_fds (void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl (fd, F_GETFD) < 0 && errno == EBADF) {
            int null = open ("/dev/null", O_RDWR);
            if (null >= 0 && null != fd) {
                dup2 (null, fd);
                close (null);
            }
        }
}

int
main (int argc, char **argv)
{
    s_options_t opts = {
        .slots = 1,
        .mode = ARB_WORKER_LIGHT,
        .grace_ms = ARB_WORKER_GRACE_MS,
        .drain_ms = ARB_WORKER_DRAIN_MS,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
        .log_level = LOG_INFO,
    };
    int rc = s_parse (argc, argv, &opts);
    if (rc)
        return rc == 1 ? 0 : rc;
    s_standard_fds ();
    zsys_init ();
    zsys_set_logident ("arbiter-worker");
    zsys_set_logstream (stderr);
    char why[512];
    arb_curve_t *curve = arb_curve_resolve (opts.cert, opts.broker_key, why, sizeof (why));
    if (!curve && *why) {
        fprintf (stderr, "arbiter-worker: %s\n", why);
        return 2;
    }

    arb_worker_t *worker = arb_worker_new (opts.broker, opts.name);
    arb_exec_t *exec = arb_exec_new (opts.exec);
    assert (worker);  //  the name's length was checked above
    arb_exec_set_grace (exec, opts.grace_ms);
    arb_exec_set_max_output (exec, (size_t) opts.max_payload);
    arb_exec_set_route (exec, opts.route);
    //  the same name twice is one handler (the second call is refused)
    for (int i = 0; i < opts.task_count; i++)
        arb_worker_handle (worker, opts.tasks[i], arb_exec_handler, exec);
    if (opts.task_count == 0)
        arb_worker_handle (worker, "*", arb_exec_handler, exec);
    for (int i = 0; i < opts.queue_count; i++)
        arb_worker_listen (worker, opts.queues[i]);
    arb_worker_set_slots (worker, opts.slots, opts.mode);
    arb_worker_set_grace (worker, opts.grace_ms);
    arb_worker_set_drain (worker, opts.drain_ms);
    arb_worker_set_connect_timeout (worker, opts.connect_timeout_ms);
    arb_worker_set_max_payload (worker, (size_t) opts.max_payload);
    arb_worker_set_log_level (worker, opts.log_level);
    if (curve)
        arb_worker_set_curve (worker, curve);
    arb_curve_destroy (&curve);
    rc = arb_worker_run (worker);
    arb_worker_destroy (&worker);
    arb_exec_destroy (&exec);
    return rc == 0 ? 0 : 1;
}
