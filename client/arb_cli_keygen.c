/*  arb_cli_keygen.c — `arbiter keygen`: a certificate for a peer of a
    broker that runs with --curve.

    It writes a czmq key pair (zcert: the keys are libsodium's, made by
    libzmq) with the peer's role in its metadata: NAME.cert, the public
    half, goes into the broker's allowed folder; NAME.cert_secret stays
    with the peer (--cert). The secret file is made readable by its owner
    only, and nothing that exists is overwritten. No broker is involved.
*/

#include "arb_cli.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_NAME_MAX 100  //  bytes of a certificate's name (a file name)

enum {
    S_OPT_ROLE = 0x2001,
    S_OPT_DIR,
};

static const struct option s_keygen_options[] = {
    {"role", required_argument, NULL, S_OPT_ROLE},
    {"dir", required_argument, NULL, S_OPT_DIR},
    {NULL, 0, NULL, 0},
};

//  A name that is a plain file name: letters, digits, '.', '_', '-', not
//  starting with '.'.
static bool
s_is_file_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > S_NAME_MAX || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && !strchr ("._-", *c))
            return false;
    return true;
}

//  Writes the pair; the secret under umask 077, so that it is never
//  readable by others, not even a moment. 0, or -1 with errno.
static int
s_save (zcert_t *cert, const char *public_path, const char *secret_path)
{
    mode_t mask = umask (077);
    int rc = zcert_save_secret (cert, secret_path);
    umask (mask);
    if (rc == 0)
        rc = zcert_save_public (cert, public_path);
    return rc;
}

static int
s_keygen_run (arb_cli_t *cli, int argc, char **argv)
{
    const arb_cli_cmd_t *cmd = &arb_cli_cmd_keygen;
    const char *role_name = NULL, *dir = ".";
    int c;
    while ((c = arb_cli_getopt (cli, cmd, argc, argv)) != ARB_CLI_END) {
        if (c < 0)
            return arb_cli_getopt_exit (c);
        if (c == S_OPT_ROLE)
            role_name = optarg;
        else if (c == S_OPT_DIR)
            dir = optarg;
    }
    if (optind >= argc)
        return arb_cli_usage (cli, cmd, "which name?");
    if (optind + 1 < argc)
        return arb_cli_usage (cli, cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *name = argv[optind];
    if (!s_is_file_name (name))
        return arb_cli_usage (cli, cmd,
                              "'%.64s' is not a certificate name (1..%d letters, digits, '.', "
                              "'_' or '-', not starting with '.')",
                              name, S_NAME_MAX);
    if (!role_name)
        return arb_cli_usage (cli, cmd, "--role is required: client, worker or admin");
    arb_role_t role = arb_role_parse (role_name);
    if (role == ARB_ROLE_NONE)
        return arb_cli_say (cli, ARB_EXIT_USAGE, "--role: '%.64s' is not client, worker or admin",
                            role_name);
    char public_path[PATH_MAX], secret_path[PATH_MAX + 8];
    snprintf (public_path, sizeof (public_path), "%s/%s.cert", dir, name);
    snprintf (secret_path, sizeof (secret_path), "%s_secret", public_path);
    if (access (public_path, F_OK) == 0 || access (secret_path, F_OK) == 0)
        return arb_cli_say (cli, ARB_EXIT_FAILED,
                            "keygen: %s or its _secret exists already; nothing was written (remove "
                            "them first to make a new pair)",
                            public_path);
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, ARB_ROLE_META, "%s", arb_role_name (role));
    int status = ARB_EXIT_OK;
    if (s_save (cert, public_path, secret_path) != 0) {
        status = arb_cli_say (cli, ARB_EXIT_FAILED, "keygen: cannot write %s: %s", secret_path,
                              strerror (errno));
        unlink (secret_path);
    }
    else if (cli->json) {
        json_t *obj = json_object ();
        arb_json_str (obj, "name", name);
        arb_json_str (obj, "role", arb_role_name (role));
        arb_json_str (obj, "public_key", zcert_public_txt (cert));
        arb_json_str (obj, "cert", public_path);
        arb_json_str (obj, "secret", secret_path);
        arb_cli_json_print (obj);
    }
    else
        printf ("%s\n"
                "wrote %s (public: copy it into the broker's --curve DIR/allowed/)\n"
                "  and %s (secret: this peer's --cert)\n",
                zcert_public_txt (cert), public_path, secret_path);
    zcert_destroy (&cert);
    return status;
}

const arb_cli_cmd_t arb_cli_cmd_keygen = {
    .name = "keygen",
    .summary = "make a certificate for a broker that runs with --curve",
    .usage = "usage: arbiter keygen NAME --role client|worker|admin [--dir DIR] [--json]\n"
             "\n"
             "Writes a CURVE key pair for one peer of a broker that runs with --curve:\n"
             "DIR/NAME.cert, the public certificate, goes into the broker's DIR/allowed/\n"
             "(the broker reads the folder again when it changes), and DIR/NAME.cert_secret,\n"
             "readable by its owner only, is the peer's --cert (or ARBITER_CERT). Prints the\n"
             "public key. The role in the certificate says what the broker lets the peer do:\n"
             "\n"
             "  client   submit, wait, status, list, stats, events, cancel tasks by id\n"
             "  worker   register, take tasks, send their results (arbiter-worker, C and\n"
             "           Python workers)\n"
             "  admin    everything, also retry, delete, purge, pause, queue settings,\n"
             "           limits, schedules, peek, metadata, cancel by queue or group\n"
             "           (arbiter-gateway needs admin)\n"
             "\n"
             "A peer also needs the broker's public key: --broker-key KEY or the broker's\n"
             "broker.cert file (or ARBITER_BROKER_KEY).\n"
             "\n"
             "  --role ROLE  client, worker or admin (required)\n"
             "  --dir DIR    where to write the two files (default: the current folder)\n"
             "  --json       print {\"name\", \"role\", \"public_key\", \"cert\", \"secret\"}\n"
             "\n"
             "Exit: 0; 1 if a file exists already or cannot be written; 2 for bad arguments.\n",
    .options = s_keygen_options,
    .run = s_keygen_run,
};
