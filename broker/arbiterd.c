/*  arbiterd — the arbiter broker.

    Reads its settings (arb_options: the command line over the config
    file), then runs the broker until SIGINT, SIGTERM or SIGHUP. Exit status: 0
    after a clean stop, 1 if the broker could not start or its journal
    failed, 2 for bad arguments or settings.

    The installed binary reads ARB_CONFIG_DIR/arbiterd.conf when no
    --config is given and that file exists (`scons install` and the Debian
    build compile it with ARB_CONFIG_DIR, /etc/arbiter there); the one in
    build/ reads a file only when told, so tests and development never
    pick up an installed broker's settings.
*/

#include "arb_broker.h"
#include "arb_endpoint.h"
#include "arb_fdlimit.h"
#include "arb_hangup.h"
#include "arb_log.h"
#include "arb_options.h"
#include "arb_sched.h"

#ifdef ARB_CONFIG_DIR
#define ARB_BROKER_CONFIG ARB_CONFIG_DIR "/arbiterd.conf"
#else
#define ARB_BROKER_CONFIG NULL
#endif
//  and keeps its journal in ARB_STATE_DIR (/var/lib/arbiter, its unit's
//  StateDirectory=) unless told otherwise
#ifdef ARB_STATE_DIR
#define ARB_BROKER_DB ARB_STATE_DIR "/arbiter.db"
#else
#define ARB_BROKER_DB "./var/arbiter.db"
#endif

//  The settings as the option table stores them; copied into the
//  broker's config once read.
typedef struct {
    const char *bind;
    const char *curve;  //  NULL: no CURVE
    bool insecure;
    const char *db;
    int sync;       //  index in "full|normal"
    int transport;  //  index in "auto|zeromq"
    int task_log;   //  index in "on|off"
    int log_level;  //  index in ARB_LOG_LEVELS
    uint64_t max_payload;
    uint64_t heartbeat_ms;
    uint64_t liveness_ms;
    uint64_t aging_ms;
    uint64_t cache_mb;
    uint64_t hot_tasks;
    uint64_t max_lost;
    uint64_t max_head_failures;
    uint64_t retention_ms;
    uint64_t dead_retention_ms;
    uint64_t recovery_ms;  //  UINT64_MAX: heartbeat + 2500
} s_settings_t;

#define S_RETENTION_MAX (3660 * ARB_DAY_MS)

static const char *s_about =
    "The arbiter broker: owns every task's state in a SQLite journal and serves\n"
    "clients and workers over ZeroMQ. SIGINT, SIGTERM or SIGHUP (its terminal\n"
    "closed) stops it cleanly.\n"
    "\n"
    "sync full (the default) fsyncs every commit: an acknowledged task survives a\n"
    "power cut. sync normal survives a crash of arbiterd, but a power cut may lose\n"
    "the last transactions (the journal stays consistent).\n"
    "\n"
    "task-log on (the default) commits turns that only add plain tasks and remove\n"
    "finished ones by one append to DB-tasklog, beside the journal, which its\n"
    "tables take at checkpoints; off writes every turn to the tables. Either way\n"
    "the log is read back at start, and a clean stop leaves the tables whole.\n"
    "The journal is the file, its -wal and -shm, the -tasklog and the -tasklog2\n"
    "(sync full): copy all five, with arbiterd stopped.\n"
    "\n"
    "Exit status: 0 after a clean stop, 1 if the broker could not start or its\n"
    "journal failed, 2 for bad arguments or settings.";

//  Values the table's types take but the broker does not: the refusal
//  names the file, line and key when the value came from the file.
static int
s_check (void *arg, const arb_option_t *option, const char *text, char *why, size_t size)
{
    (void) arg;
    if ((streq (option->name, "curve") || streq (option->name, "bind")
         || streq (option->name, "db"))
        && !*text) {
        snprintf (why, size, "expected a %s, not an empty value",
                  streq (option->name, "curve") ? "folder"
                  : streq (option->name, "db")  ? "file"
                                                : "ZeroMQ endpoint");
        return -1;
    }
    //  the one check of every program's endpoints: a port over 65535 would
    //  be wrapped by libzmq and bound where the log does not say
    if (streq (option->name, "bind"))
        return arb_endpoint_check (text, true, why, size);
    return 0;
}

int
main (int argc, char *argv[])
{
    arb_broker_config_t config;
    arb_broker_config_defaults (&config);
    config.db_path = ARB_BROKER_DB;
    s_settings_t settings = {
        .bind = config.endpoint,
        .curve = NULL,
        .insecure = false,
        .db = config.db_path,
        .sync = config.sync == ARB_SYNC_FULL ? 0 : 1,
        .task_log = config.task_log ? 0 : 1,
        .max_payload = config.max_payload,
        .heartbeat_ms = config.heartbeat_ms,
        .liveness_ms = config.liveness_ms,
        .aging_ms = config.aging_ms,
        .cache_mb = config.cache_bytes >> 20,
        .hot_tasks = ARB_HOT_MAX,
        .max_lost = config.max_lost,
        .max_head_failures = config.max_head_failures,
        .retention_ms = config.retention_ms,
        .dead_retention_ms = config.dead_retention_ms,
        .recovery_ms = UINT64_MAX,
        .log_level = ARB_LOG_INFO,
    };
    arb_option_t table[] = {
        {"bind", 0, ARB_OPT_STR, &settings.bind, 0, 0, "ENDPOINT",
         "ZeroMQ endpoint to bind (default tcp://127.0.0.1:7700)"},
        {"curve", 0, ARB_OPT_STR, &settings.curve, 0, 0, "DIR",
         "CURVE encryption and authentication: DIR/broker.cert is the broker's certificate "
         "(made at the first start), DIR/allowed/ the certificates of the peers it admits, each "
         "with its role (client, worker or admin); read again when it changes"},
        {"insecure", 0, ARB_OPT_BOOL, &settings.insecure, 0, 0, NULL,
         "without curve, bind an address other hosts can reach anyway (refused otherwise: "
         "anyone could do anything)"},
        {"db", 0, ARB_OPT_STR, &settings.db, 0, 0, "PATH",
         "the journal file (default " ARB_BROKER_DB ")"},
        {"sync", 0, ARB_OPT_CHOICE, &settings.sync, 0, 0, "full|normal",
         "fsync every commit (full, the default), or survive crashes only"},
        {"task-log", 0, ARB_OPT_CHOICE, &settings.task_log, 0, 0, "on|off",
         "commit turns that only add plain tasks and remove finished ones to DB-tasklog, which "
         "the tables take at checkpoints (on, the default), or every turn to the tables (off)"},
        {"transport", 0, ARB_OPT_CHOICE, &settings.transport, 0, 0, "auto|zeromq",
         "who answers a tcp:// endpoint without curve: the broker's own loop, speaking ZMTP "
         "as a ZeroMQ ROUTER socket would (auto, the default), or a ROUTER socket (zeromq); "
         "other endpoints and curve always use the socket"},
        {"max-payload", 0, ARB_OPT_BYTES, &settings.max_payload, 1024, 1ull << 30, "BYTES",
         "largest payload or result (default 16M); a bigger result fails its task"},
        {"heartbeat-ms", 0, ARB_OPT_UINT, &settings.heartbeat_ms, 10, 3600000, "MS",
         "heartbeat interval told to workers (default 1000)"},
        {"liveness-ms", 0, ARB_OPT_UINT, &settings.liveness_ms, 10, 3600000, "MS",
         "a worker silent this long is dead (default 5000)"},
        {"aging", 0, ARB_OPT_SECONDS, &settings.aging_ms, 0, S_RETENTION_MAX, "SECONDS",
         "waiting this long is worth one priority level (default 0: strict priorities)"},
        {"cache-mb", 0, ARB_OPT_UINT, &settings.cache_mb, 0, 1024 * 1024, "MB",
         "payloads kept in memory for dispatch (default 16)"},
        {"hot-tasks", 0, ARB_OPT_UINT, &settings.hot_tasks, 1, 100 * 1000 * 1000, "N",
         "ready tasks a queue keeps in memory; the rest wait in the journal (default 4096)"},
        {"max-lost", 0, ARB_OPT_UINT, &settings.max_lost, 1, 1000, "N",
         "lost leases before a task is quarantined (default 3)"},
        {"max-head-failures", 0, ARB_OPT_UINT, &settings.max_head_failures, 1, 1000, "N",
         "failures in a row before a task without retries in a head queue is "
         "quarantined (default 10)"},
        {"retention", 0, ARB_OPT_SECONDS, &settings.retention_ms, 0, S_RETENTION_MAX, "SECONDS",
         "finished tasks are kept this long (default 86400; 0: a watched task that succeeded "
         "at its first handout, outside any workflow, leaves the journal at its end)"},
        {"dead-retention", 0, ARB_OPT_SECONDS, &settings.dead_retention_ms, 0, S_RETENTION_MAX,
         "SECONDS", "dead tasks are kept this long (default 604800)"},
        {"recovery-ms", 0, ARB_OPT_UINT, &settings.recovery_ms, 0, 600000, "MS",
         "after a start, tasks found ready wait this long for the workers still running them "
         "to claim them back (default heartbeat-ms + 2500; 0: run them again at once)"},
        ARB_LOG_OPTION (&settings.log_level),
    };
    arb_options_t *options =
        arb_options_new ("arbiterd", table, sizeof (table) / sizeof (table[0]), ARB_BROKER_CONFIG);
    arb_options_set_about (options, "[OPTIONS]", s_about);
    arb_options_set_check (options, s_check, NULL);
    arb_options_rc_t rc = arb_options_parse (options, argc, argv, NULL);
    int status = rc == ARB_OPTIONS_BAD ? 2 : 0;
    if ((rc == ARB_OPTIONS_RUN || rc == ARB_OPTIONS_CHECK)
        && settings.liveness_ms <= settings.heartbeat_ms) {
        arb_options_refuse (options,
                            "liveness-ms (%" PRIu64 ") must be longer than heartbeat-ms "
                            "(%" PRIu64 ")",
                            settings.liveness_ms, settings.heartbeat_ms);
        status = 2;
    }
    if (status || rc == ARB_OPTIONS_EXIT || rc == ARB_OPTIONS_BAD) {
        arb_options_destroy (&options);
        return status;
    }
    //  what "auto" comes to, so that --check-config shows what will be used
    if (settings.recovery_ms == UINT64_MAX)
        settings.recovery_ms = settings.heartbeat_ms + 2500;
    config.endpoint = settings.bind;
    config.curve_dir = settings.curve;
    config.insecure = settings.insecure;
    config.db_path = settings.db;
    config.sync = settings.sync == 0 ? ARB_SYNC_FULL : ARB_SYNC_NORMAL;
    config.task_log = settings.task_log == 0;
    config.transport = settings.transport == 0 ? ARB_WIRE_AUTO : ARB_WIRE_ZEROMQ;
    config.max_payload = (size_t) settings.max_payload;
    config.heartbeat_ms = (uint32_t) settings.heartbeat_ms;
    config.liveness_ms = (uint32_t) settings.liveness_ms;
    config.aging_ms = settings.aging_ms;
    config.cache_bytes = settings.cache_mb << 20;
    config.hot_max = (size_t) settings.hot_tasks;
    config.max_lost = (uint32_t) settings.max_lost;
    config.max_head_failures = (uint32_t) settings.max_head_failures;
    config.retention_ms = settings.retention_ms;
    config.dead_retention_ms = settings.dead_retention_ms;
    config.recovery_ms = (uint32_t) settings.recovery_ms;

    arb_log_t *log = arb_log_new ("arbiterd");
    arb_log_set_level (log, settings.log_level);
    //  a closed terminal stops it cleanly, as SIGTERM does
    arb_hangup_catch ();
    //  what a start would refuse before it opens or binds anything: under
    //  --check-config and at a start alike, exit status 2 (as its man page
    //  says), so that a unit does not restart for it
    //  (RestartPreventExitStatus=2): the next start would meet it again
    if (arb_broker_config_check (&config))
        status = 2;
    else if (rc == ARB_OPTIONS_CHECK)
        arb_options_print (options, stdout);
    else {
        if (arb_options_config_path (options))
            zsys_info ("broker: settings read path=%s", arb_options_config_path (options));
        //  every connection of its own wire is a descriptor
        uint64_t files = arb_fdlimit_raise ();
        if (files < 4096)
            zsys_notice ("broker: open files limit %" PRIu64 " (the hard limit): about as many "
                         "clients and workers at once; raise it (ulimit -Hn, LimitNOFILE)",
                         files);
        arb_broker_t *broker = arb_broker_new (&config);
        status = 1;
        if (broker) {
            status = arb_broker_run (broker) == 0 ? 0 : 1;
            arb_broker_destroy (&broker);
        }
    }
    arb_log_destroy (&log);
    arb_options_destroy (&options);
    return status;
}
