/*  arbiterd — the arbiter broker.

    Parses the command line into an arb_broker_config_t, then runs the
    broker until SIGINT or SIGTERM. Exit status: 0 after a clean stop, 1 if
    the broker could not start or its journal failed, 2 for bad arguments.
*/

#include "arb_broker.h"

#include <getopt.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: arbiterd [options]\n"
             "\n"
             "The arbiter broker: owns every task's state in a SQLite journal and\n"
             "serves clients and workers over ZeroMQ.\n"
             "\n"
             "  --bind ENDPOINT        ZeroMQ endpoint to bind (default tcp://127.0.0.1:7700)\n"
             "  --curve DIR            CURVE encryption and authentication: DIR/broker.cert is\n"
             "                         the broker's certificate (made at the first start; peers\n"
             "                         need it, or its key: --broker-key), DIR/allowed/ holds the\n"
             "                         certificates of the peers it admits (arbiter keygen), each\n"
             "                         with its role (client, worker or admin); read again when\n"
             "                         it changes\n"
             "  --insecure             without --curve, bind an address other hosts can reach\n"
             "                         anyway (refused otherwise: anyone could do anything)\n"
             "  --db PATH              journal file (default ./var/arbiter.db)\n"
             "  --sync full|normal     full (default): every acknowledged task survives a power\n"
             "                         cut; normal: survives a crash of arbiterd, but a power cut\n"
             "                         may lose the last transactions (the journal stays\n"
             "                         consistent)\n"
             "  --max-payload BYTES    largest payload or result (default 16M; K, M, G suffixes);\n"
             "                         a bigger result fails its task\n"
             "  --heartbeat-ms MS      heartbeat interval told to workers (default 1000)\n"
             "  --liveness-ms MS       a worker silent this long is dead (default 5000)\n"
             "  --aging SECONDS        waiting this long is worth one priority level\n"
             "                         (default 0: strict priorities)\n"
             "  --cache-mb MB          payloads kept in memory for dispatch (default 16)\n"
             "  --max-lost N           lost leases before a task is quarantined (default 3)\n"
             "  --max-head-failures N  failures in a row before a task without retries in a\n"
             "                         queue whose policy is head is quarantined (default 10)\n"
             "  --retention SECONDS    finished tasks are kept this long (default 86400)\n"
             "  --dead-retention SECONDS  dead tasks are kept this long (default 604800)\n"
             "  --recovery-ms MS       after a start, tasks found ready wait this long for the\n"
             "                         workers still running them to claim them back\n"
             "                         (default: heartbeat + 2500; 0: run them again at once)\n"
             "  -h, --help             this text\n"
             "  --version              the version\n");
}

//  Parses a non-negative number with an optional K/M/G suffix (x1024).
static int
s_parse_size (const char *text, uint64_t *value)
{
    char *end;
    errno = 0;
    double number = strtod (text, &end);
    if (errno || end == text || number < 0)
        return -1;
    double scale = 1;
    if (*end == 'K' || *end == 'k')
        scale = 1024.0, end++;
    else if (*end == 'M' || *end == 'm')
        scale = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        scale = 1024.0 * 1024 * 1024, end++;
    if (*end)
        return -1;
    *value = (uint64_t) (number * scale);
    return 0;
}

static int
s_parse_seconds (const char *text, uint64_t *ms)
{
    char *end;
    errno = 0;
    double seconds = strtod (text, &end);
    if (errno || end == text || *end || seconds < 0 || seconds > 3660.0 * 86400)
        return -1;
    *ms = (uint64_t) (seconds * 1000.0 + 0.5);
    return 0;
}

static int
s_bad (const char *option, const char *value)
{
    fprintf (stderr, "arbiterd: %s: bad value '%s'\n", option, value);
    s_usage (stderr);
    return 2;
}

int
main (int argc, char *argv[])
{
    arb_broker_config_t config;
    arb_broker_config_defaults (&config);
    static struct option options[] = {
        {"bind", required_argument, 0, 'b'},
        {"db", required_argument, 0, 'd'},
        {"sync", required_argument, 0, 's'},
        {"max-payload", required_argument, 0, 'p'},
        {"heartbeat-ms", required_argument, 0, 'H'},
        {"liveness-ms", required_argument, 0, 'L'},
        {"aging", required_argument, 0, 'a'},
        {"cache-mb", required_argument, 0, 'c'},
        {"max-lost", required_argument, 0, 'l'},
        {"max-head-failures", required_argument, 0, 'f'},
        {"retention", required_argument, 0, 'r'},
        {"dead-retention", required_argument, 0, 'R'},
        {"recovery-ms", required_argument, 0, 'C'},
        {"curve", required_argument, 0, 'K'},
        {"insecure", no_argument, 0, 'I'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (opt) {
            case 'b':
                config.endpoint = optarg;
                break;
            case 'd':
                config.db_path = optarg;
                break;
            case 's':
                if (streq (optarg, "full"))
                    config.sync = ARB_SYNC_FULL;
                else if (streq (optarg, "normal"))
                    config.sync = ARB_SYNC_NORMAL;
                else
                    return s_bad ("--sync", optarg);
                break;
            case 'p':
                if (s_parse_size (optarg, &value) || value < 1024 || value > (1ull << 30))
                    return s_bad ("--max-payload", optarg);
                config.max_payload = value;
                break;
            case 'H':
            case 'L':
                if (s_parse_size (optarg, &value) || value < 10 || value > 3600000)
                    return s_bad (name, optarg);
                if (opt == 'H')
                    config.heartbeat_ms = (uint32_t) value;
                else
                    config.liveness_ms = (uint32_t) value;
                break;
            case 'a':
                if (s_parse_seconds (optarg, &config.aging_ms))
                    return s_bad ("--aging", optarg);
                break;
            case 'c':
                if (s_parse_size (optarg, &value) || value > 1024 * 1024)
                    return s_bad ("--cache-mb", optarg);
                config.cache_bytes = value << 20;
                break;
            case 'l':
            case 'f':
                if (s_parse_size (optarg, &value) || value < 1 || value > 1000)
                    return s_bad (opt == 'l' ? "--max-lost" : "--max-head-failures", optarg);
                if (opt == 'l')
                    config.max_lost = (uint32_t) value;
                else
                    config.max_head_failures = (uint32_t) value;
                break;
            case 'r':
                if (s_parse_seconds (optarg, &config.retention_ms))
                    return s_bad ("--retention", optarg);
                break;
            case 'R':
                if (s_parse_seconds (optarg, &config.dead_retention_ms))
                    return s_bad ("--dead-retention", optarg);
                break;
            case 'C':
                if (s_parse_size (optarg, &value) || value > 600000)
                    return s_bad ("--recovery-ms", optarg);
                config.recovery_ms = (uint32_t) value;
                break;
            case 'K':
                if (!*optarg)
                    return s_bad ("--curve", optarg);
                config.curve_dir = optarg;
                break;
            case 'I':
                config.insecure = true;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf ("arbiterd %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                return 0;
            default:
                s_usage (stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "arbiterd: unexpected argument '%s'\n", argv[optind]);
        s_usage (stderr);
        return 2;
    }
    if (config.liveness_ms <= config.heartbeat_ms) {
        fprintf (stderr, "arbiterd: --liveness-ms must be longer than --heartbeat-ms\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logident ("arbiterd");
    zsys_set_logstream (stderr);
    arb_broker_t *broker = arb_broker_new (&config);
    if (!broker)
        return 1;
    int rc = arb_broker_run (broker);
    arb_broker_destroy (&broker);
    return rc == 0 ? 0 : 1;
}
