/*  arbiter_worker.c — the arbiter-worker binary: a worker whose every task
    runs a shell command (arb_exec), so tasks can be written in any language.

    It reads its settings (arb_options: the command line over the config
    file given with --config; a systemd instance arbiter-worker@NAME reads
    /etc/arbiter/worker-NAME.conf), wires arb_exec as the handler for every
    task name (or for the task names listed only) and hands the main thread
    to arb_worker_run until SIGINT/SIGTERM/SIGHUP. There is no default config
    file: a host runs several workers, each with its own.
    Exit status: 0 after a clean stop, 1 if the worker could not run (or
    reach the broker within connect-timeout, or the broker refused its
    handshake or its REGISTER), 2 for bad arguments or settings.
*/

#include "arb_endpoint.h"
#include "arb_exec.h"
#include "arb_hangup.h"
#include "arb_log.h"
#include "arb_curve_options.h"
#include "arb_options.h"
#include "arb_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <syslog.h>
#include <unistd.h>

//  The settings as the option table stores them.
typedef struct {
    const char *broker;
    const char *cert;        //  secret certificate; NULL: none (no CURVE)
    const char *broker_key;  //  the broker's public key or its file
    arb_opt_list_t queues;
    arb_opt_list_t tasks;  //  task names it runs; none: every name
    uint64_t slots;
    int mode;  //  index in "light|heavy"
    const char *exec;
    const char *name;  //  NULL: host.pid
    uint64_t grace_ms;
    uint64_t drain_ms;
    uint64_t connect_timeout_ms;  //  0: wait for the broker for ever
    uint64_t max_payload;
    bool route;
    int log_level;  //  index in ARB_LOG_LEVELS
} s_settings_t;

static const int s_log_levels[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

static const char *s_about =
    "Takes tasks from the arbiter broker and runs CMD for each with /bin/sh -c:\n"
    "the payload on stdin, the result from stdout, the error from stderr's end.\n"
    "\n"
    "The command sees ARBITER_TASK_ID, ARBITER_ATTEMPT, ARBITER_TASK_NAME,\n"
    "ARBITER_QUEUE, ARBITER_PARENTS (a path to the DAG parents' outcomes as JSON:\n"
    "{NAME: {\"id\", \"state\", \"result\", \"error\"}})\n"
    "and ARBITER_ARGS (a path to the task's persistent arguments).\n"
    "SIGINT/SIGTERM/SIGHUP stop taking tasks and let running ones finish; a second\n"
    "signal stops them (heavy: SIGKILL at once; light: SIGTERM, SIGKILL after\n"
    "grace-ms).\n"
    "\n"
    "Exit status: 0 after a stop, 1 if the worker could not start, did not\n"
    "reach the broker within connect-timeout or was refused by it (its\n"
    "handshake, at once, or its REGISTER), 2 for bad arguments or settings.";

//  A name the broker takes (arb_name_check).
static bool
s_is_name (const char *text)
{
    return arb_name_is_valid (text, strlen (text));
}

//  What the broker would refuse, refused here with the file's line.
static int
s_check (void *arg, const arb_option_t *option, const char *text, char *why, size_t size)
{
    (void) arg;
    //  the name itself is not quoted: it may hold anything but printable text
    if ((streq (option->name, "queue") || streq (option->name, "name")) && !s_is_name (text))
        snprintf (why, size, "not a %s name (1..200 bytes of printable UTF-8)",
                  streq (option->name, "queue") ? "queue" : "worker");
    else if (streq (option->name, "task") && !s_is_name (text))
        snprintf (why, size, "not a task name (1..200 bytes of printable UTF-8)");
    else if (streq (option->name, "exec") && !*text)
        snprintf (why, size, "the command is empty");
    //  the one check of every program's endpoints (arb_endpoint.h)
    else if (streq (option->name, "broker"))
        return arb_endpoint_check (text, false, why, size);
    //  a certificate file this user cannot read, refused as the file is
    //  read (its content is read with the broker key, once both are known:
    //  arb_curve_resolve_options)
    else if ((streq (option->name, "cert")
              || (streq (option->name, "broker-key") && !arb_curve_is_key (text)))
             && *text && access (text, R_OK) != 0)
        snprintf (why, size, "cannot read the file: %s", strerror (errno));
    else
        return 0;
    return -1;
}

//  --check-config's line for a setting (arb_options_show_fn): without
//  --queue the worker takes tasks from "default" (arb_worker_run), which
//  is what is in force.
static bool
s_show (void *arg, const arb_option_t *option, const char *value, char *buf, size_t size)
{
    (void) arg;
    if (value || !streq (option->name, "queue"))
        return false;
    snprintf (buf, size, "default");
    return true;
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
    s_settings_t settings = {
        .broker = getenv ("ARBITER_BROKER") ? getenv ("ARBITER_BROKER") : ARB_WORKER_ENDPOINT,
        .cert = getenv (ARB_CURVE_ENV_CERT),
        .broker_key = getenv (ARB_CURVE_ENV_KEY),
        .slots = 1,
        .grace_ms = ARB_WORKER_GRACE_MS,
        .drain_ms = ARB_WORKER_DRAIN_MS,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
        .log_level = ARB_LOG_INFO,
    };
    arb_option_t table[] = {
        {"broker", 0, ARB_OPT_STR, &settings.broker, 0, 0, "EP",
         "broker endpoint (default $ARBITER_BROKER, else " ARB_WORKER_ENDPOINT ")"},
        {"cert", 0, ARB_OPT_STR, &settings.cert, 0, 0, "FILE",
         "this worker's secret certificate (arbiter keygen NAME --role worker writes "
         "NAME.cert_secret), for a broker that runs with --curve (default $ARBITER_CERT)"},
        {"broker-key", 0, ARB_OPT_STR, &settings.broker_key, 0, 0, "KEY|FILE",
         "the broker's public key, or its broker.cert file (default $ARBITER_BROKER_KEY)"},
        {"queue", 0, ARB_OPT_LIST, &settings.queues, 0, ARB_WORKER_QUEUES_MAX, "Q",
         "queue to take tasks from; repeat for more (default: default)"},
        {"task", 0, ARB_OPT_LIST, &settings.tasks, 0, ARB_HANDLES_MAX, "NAME",
         "run only tasks of this name; repeat for more (default: every name). The broker "
         "sends the worker no other task"},
        {"slots", 0, ARB_OPT_UINT, &settings.slots, 1, ARB_WORKER_SLOTS_MAX, "N",
         "tasks run at once (default 1)"},
        {"mode", 0, ARB_OPT_CHOICE, &settings.mode, 0, 0, "light|heavy",
         "slots are threads, or one forked process per task (default light)"},
        {"exec", 0, ARB_OPT_STR, &settings.exec, 0, 0, "CMD",
         "command run for every task (required)"},
        {"name", 0, ARB_OPT_STR, &settings.name, 0, 0, "NAME", "worker name (default host.pid)"},
        {"grace-ms", 0, ARB_OPT_UINT, &settings.grace_ms, 0, INT_MAX, "MS",
         "SIGTERM to SIGKILL of a stopped task (default 5000)"},
        {"drain-ms", 0, ARB_OPT_UINT, &settings.drain_ms, 0, INT_MAX, "MS",
         "on shutdown, time running tasks get to finish (default 30000)"},
        {"connect-timeout", 0, ARB_OPT_SECONDS, &settings.connect_timeout_ms, 0, INT_MAX, "S",
         "give up (exit status 1) if the broker has not answered within S seconds of the "
         "start (default 0: wait for ever; an unanswered broker is logged every few seconds)"},
        {"max-payload", 0, ARB_OPT_BYTES, &settings.max_payload, 1, 1ull << 30, "BYTES",
         "largest result (default 16M); the broker's max-payload, learned when the worker "
         "registers, holds if smaller"},
        {"route", 0, ARB_OPT_BOOL, &settings.route, 0, 0, NULL,
         "route instead of answering (Arbeiter): every stdout line QUEUE<TAB>DATA becomes a "
         "task of QUEUE, enqueued when the command succeeds; no output makes it a sink"},
        ARB_LOG_OPTION (&settings.log_level),
    };
    arb_options_t *options =
        arb_options_new ("arbiter-worker", table, sizeof (table) / sizeof (table[0]), NULL);
    arb_options_set_about (options, "--exec CMD [OPTIONS]", s_about);
    arb_options_set_check (options, s_check, NULL);
    arb_options_set_show (options, s_show, NULL);
    arb_options_rc_t rc = arb_options_parse (options, argc, argv, NULL);
    int status = rc == ARB_OPTIONS_BAD ? 2 : 0;
    if ((rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK) && !settings.exec) {
        arb_options_refuse (options, "--exec CMD (exec = CMD in the config file) is required");
        status = 2;
    }
    //  a --broker given was checked as it was read; $ARBITER_BROKER here
    char bad[512];
    if (!status && (rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
        && arb_endpoint_check (settings.broker, false, bad, sizeof (bad))) {
        fprintf (stderr, "arbiter-worker: ARBITER_BROKER: %s\n", bad);
        status = 2;
    }
    //  the certificate is loaded by --check-config too: a file the worker
    //  cannot read is a bad setting
    char why[512] = "";
    arb_curve_t *curve = NULL;  //  CURVE towards the broker; NULL: none
    if (!status && (rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
        && !(curve = arb_curve_resolve_options (options, settings.cert, settings.broker_key, why,
                                                sizeof (why)))
        && *why) {
        fprintf (stderr, "arbiter-worker: %s\n", why);
        status = 2;
    }
    if (!status && rc == ARB_OPTIONS_CHECK)
        arb_options_print (options, stdout);
    if (status || rc != ARB_OPTIONS_RUN) {
        arb_curve_destroy (&curve);
        arb_options_destroy (&options);
        return status;
    }
    s_standard_fds ();
    arb_log_t *log = arb_log_new ("arbiter-worker");
    arb_log_set_level (log, settings.log_level);
    //  a closed terminal drains it, as SIGTERM does
    arb_hangup_catch ();

    arb_worker_t *worker = arb_worker_new (settings.broker, settings.name);
    arb_exec_t *exec = arb_exec_new (settings.exec);
    assert (worker);  //  the name's length was checked above
    arb_exec_set_grace (exec, (int) settings.grace_ms);
    arb_exec_set_max_output (exec, (size_t) settings.max_payload);
    arb_exec_set_route (exec, settings.route);
    //  the same name twice is one handler (the second call is refused)
    for (size_t i = 0; i < settings.tasks.count; i++)
        arb_worker_handle (worker, settings.tasks.items[i], arb_exec_handler, exec);
    if (settings.tasks.count == 0)
        arb_worker_handle (worker, "*", arb_exec_handler, exec);
    for (size_t i = 0; i < settings.queues.count; i++)
        arb_worker_listen (worker, settings.queues.items[i]);
    arb_worker_set_slots (worker, (int) settings.slots,
                          settings.mode == 1 ? ARB_WORKER_HEAVY : ARB_WORKER_LIGHT);
    arb_worker_set_grace (worker, (int) settings.grace_ms);
    arb_worker_set_drain (worker, (int) settings.drain_ms);
    arb_worker_set_connect_timeout (worker, (int) settings.connect_timeout_ms);
    arb_worker_set_max_payload (worker, (size_t) settings.max_payload);
    arb_worker_set_log_level (worker, s_log_levels[settings.log_level]);
    if (curve)
        arb_worker_set_curve (worker, curve);
    arb_curve_destroy (&curve);
    int run = arb_worker_run (worker);
    arb_worker_destroy (&worker);
    arb_exec_destroy (&exec);
    arb_log_destroy (&log);
    arb_options_destroy (&options);
    return run == 0 ? 0 : 1;
}
