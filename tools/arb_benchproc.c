/*  arb_benchproc.c — processes for the benchmarks; see arb_benchproc.h. */

#include "arb_benchproc.h"
#include "arb_client.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  In a child just forked: it gets SIGTERM when the benchmark dies, however
//  it dies (a closed pipe on its output, kill -9), so that no broker or
//  consumer is left running on its own. Exits if the parent is gone already.
static void
s_die_with_parent (pid_t parent)
{
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid () != parent)
        _exit (127);
}

//  fork () for a child that execs: SIGTERM and SIGINT are blocked across
//  the fork, and the child sets them back to their default before it lets
//  them in, so that a stop sent before its exec ends it. (Until its exec the
//  child has the parent's czmq handler, which would take the signal into a
//  flag the exec then wipes: a worker spawned by B2 and stopped before its
//  exec ran on for ever, once, in CI.)
static pid_t
s_fork (void)
{
    sigset_t stops, old;
    sigemptyset (&stops);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGINT);
    pthread_sigmask (SIG_BLOCK, &stops, &old);
    pid_t pid = fork ();
    if (pid == 0) {
        signal (SIGTERM, SIG_DFL);
        signal (SIGINT, SIG_DFL);
    }
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    return pid;
}

int
arb_benchproc_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof (addr);
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, len) == 0
        && getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs (addr.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

int
arb_benchproc_find (const char *path, const char *option, char *out, size_t size)
{
    snprintf (out, size, "%s", path);
    if (access (out, X_OK) == 0)
        return 0;
    char self[PATH_MAX];
    if (path[0] != '/' && realpath ("/proc/self/exe", self)) {
        //  <root>/build/tools/<it>: the root is three names up
        char *root = dirname (dirname (dirname (self)));
        snprintf (out, size, "%s/%s", root, path);
        if (access (out, X_OK) == 0)
            return 0;
    }
    const char *name = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
    const char *dirs = getenv ("PATH");
    char *copy = strdup (dirs ? dirs : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
        snprintf (out, size, "%s/%s", dir, name);
        if (access (out, X_OK) == 0) {
            free (copy);
            return 0;
        }
    }
    free (copy);
    fprintf (stderr,
             "benchmark: no %s to run at %s, from the project's root or on $PATH: build it "
             "(scons), run from the project's root, or give %s PATH\n",
             name, path, option);
    return -1;
}

pid_t
arb_benchproc_spawn (char *const argv[])
{
    return arb_benchproc_spawn_log (argv, NULL);
}

pid_t
arb_benchproc_spawn_log (char *const argv[], const char *log)
{
    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = s_fork ();
    if (pid == 0) {
        s_die_with_parent (parent);
        int fd = log ? open (log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        execv (argv[0], argv);
        fprintf (stderr, "benchmark: cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    return pid;
}

int
arb_benchproc_stop (pid_t pid)
{
    if (pid <= 0)
        return 0;
    kill (pid, SIGTERM);
    //  bounded: a process that does not stop is a finding, not a hang
    int64_t deadline = zclock_mono () + ARB_BENCHPROC_STOP_MS;
    while (zclock_mono () < deadline) {
        pid_t gone = waitpid (pid, NULL, WNOHANG);
        if (gone == pid || (gone < 0 && errno == ECHILD))
            return 0;  //  (ECHILD: reaped already)
        usleep (10000);
    }
    char path[64], name[64] = "?";
    snprintf (path, sizeof (path), "/proc/%d/comm", (int) pid);
    FILE *file = fopen (path, "r");
    if (file && fgets (name, sizeof (name), file))
        name[strcspn (name, "\n")] = 0;
    if (file)
        fclose (file);
    fprintf (stderr, "benchmark: %s (pid %d) did not stop within %d s of SIGTERM: killed\n", name,
             (int) pid, ARB_BENCHPROC_STOP_MS / 1000);
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    return -1;
}

int
arb_benchproc_start_broker (arb_benchproc_broker_t *broker, const char *path, const char *sync)
{
    return arb_benchproc_start_broker_with (broker, path, sync, NULL, false, 20000);
}

//  Whether a TCP connection to 127.0.0.1:port is taken.
static bool
s_port_open (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                               .sin_port = htons ((uint16_t) port)};
    bool open = fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0;
    if (fd >= 0)
        close (fd);
    return open;
}

int
arb_benchproc_start_broker_with (arb_benchproc_broker_t *broker,
                                 const char *path,
                                 const char *sync,
                                 char *const *extra,
                                 bool reuse,
                                 int timeout_ms)
{
    if (!reuse) {
        memset (broker, 0, sizeof (*broker));
        snprintf (broker->dir, sizeof (broker->dir), "/tmp/arbiter-bench-XXXXXX");
        if (!mkdtemp (broker->dir))
            return -1;
    }
    int port = arb_benchproc_free_port ();
    snprintf (broker->endpoint, sizeof (broker->endpoint), "tcp://127.0.0.1:%d", port);
    char db[128];
    snprintf (db, sizeof (db), "%s/bench.db", broker->dir);
    char *argv[32] = {(char *) path, "--bind",     broker->endpoint, "--db", db,
                      "--sync",      (char *) sync};
    int argc = 7;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    char log[128];
    snprintf (log, sizeof (log), "%s/arbiterd.log", broker->dir);
    broker->pid = arb_benchproc_spawn_log (argv, log);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (!s_port_open (port) && zclock_mono () < deadline
           && waitpid (broker->pid, NULL, WNOHANG) == 0)
        usleep (1000);
    //  ready when it answers a ping
    arb_client_t *client = arb_client_new (broker->endpoint);
    arb_client_set_timeout (client, 200);
    int rc = -1;
    while (rc != 0 && zclock_mono () < deadline)
        rc = arb_client_ping (client, NULL);
    arb_client_destroy (&client);
    if (rc) {
        if (reuse) {
            arb_benchproc_stop (broker->pid);
            broker->pid = 0;
        }
        else
            arb_benchproc_stop_broker (broker);
    }
    return rc;
}

int
arb_benchproc_stop_broker (arb_benchproc_broker_t *broker)
{
    int rc = arb_benchproc_stop (broker->pid);
    broker->pid = 0;
    char cmd[256];
    if (rc && broker->dir[0]) {
        //  its log says where it was: shown, and kept
        fprintf (stderr, "benchmark: the broker's log, kept in %s:\n", broker->dir);
        snprintf (cmd, sizeof (cmd), "tail -n 30 %s/arbiterd.log >&2", broker->dir);
        if (system (cmd) != 0)
            fprintf (stderr, "benchmark: (no log)\n");
    }
    else if (broker->dir[0]) {
        snprintf (cmd, sizeof (cmd), "rm -rf %s", broker->dir);
        if (system (cmd) != 0)
            fprintf (stderr, "benchmark: could not remove %s\n", broker->dir);
    }
    broker->dir[0] = 0;
    return rc;
}

long
arb_benchproc_kb (pid_t pid, const char *field)
{
    char path[64], line[256], format[64];
    snprintf (path, sizeof (path), "/proc/%d/status", (int) pid);
    snprintf (format, sizeof (format), "%s %%ld kB", field);
    FILE *file = fopen (path, "r");
    long kb = -1;
    while (file && fgets (line, sizeof (line), file))
        if (sscanf (line, format, &kb) == 1)
            break;
    if (file)
        fclose (file);
    return kb;
}

char *
arb_benchproc_payload (int size)
{
    char *payload = (char *) malloc ((size_t) size + 1);
    assert (payload);
    for (int i = 0; i < size; i++)
        payload[i] = (char) ('a' + i % 26);
    payload[size] = 0;
    return payload;
}

//  ---------------------------------------------------------------------
//  A rabbitmq-server of its own

#define S_RABBIT_SERVER "/usr/lib/rabbitmq/bin/rabbitmq-server"
#define S_EPMD          "/usr/bin/epmd"
#define S_RABBIT_WAIT_S 120

pid_t
arb_benchproc_spawn_logged (char *const argv[], const char *dir, const char *log, char *const env[])
{
    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = s_fork ();
    if (pid == 0) {
        s_die_with_parent (parent);
        setsid ();
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        if (!dir || chdir (dir) == 0) {
            if (env)
                execve (argv[0], argv, env);
            else
                execv (argv[0], argv);
        }
        fprintf (stderr, "benchmark: cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    return pid;
}

static void
s_write_file (const char *dir, const char *name, const char *text)
{
    char path[160];
    snprintf (path, sizeof (path), "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    if (file) {
        fputs (text, file);
        fclose (file);
    }
}

//  One try: 0, 1 if it did not start (the log shown if last), -1 if it
//  could not be tried.
static int
s_try_rabbit (arb_benchproc_rabbit_t *rabbit,
              const char *prefix,
              bool (*ready) (int port, void *arg),
              void *arg,
              bool last)
{
    static int serial;
    memset (rabbit, 0, sizeof (*rabbit));
    snprintf (rabbit->dir, sizeof (rabbit->dir), "/tmp/arbiter-rabbit-XXXXXX");
    if (!mkdtemp (rabbit->dir))
        return -1;
    snprintf (rabbit->log, sizeof (rabbit->log), "%s/server.log", rabbit->dir);
    rabbit->port = arb_benchproc_free_port ();
    const char *subs[] = {"home", "mnesia", "log"};
    for (int i = 0; i < 3; i++) {
        char path[160];
        snprintf (path, sizeof (path), "%s/%s", rabbit->dir, subs[i]);
        mkdir (path, 0755);
    }
    char listener[64];
    snprintf (listener, sizeof (listener), "listeners.tcp.1 = 127.0.0.1:%d\n", rabbit->port);
    s_write_file (rabbit->dir, "enabled_plugins", "[].\n");
    s_write_file (rabbit->dir, "rabbitmq-env.conf", "");
    s_write_file (rabbit->dir, "rabbitmq.conf", listener);
    int epmd_port = arb_benchproc_free_port (), dist_port = arb_benchproc_free_port ();
    char vars[16][256];
    int n = 0;
    const char *dir = rabbit->dir;
    snprintf (vars[n++], 256, "HOME=%s/home", dir);
    snprintf (vars[n++], 256, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    snprintf (vars[n++], 256, "ERL_EPMD_PORT=%d", epmd_port);
    snprintf (vars[n++], 256, "ERL_EPMD_ADDRESS=127.0.0.1");
    snprintf (vars[n++], 256, "RABBITMQ_NODENAME=%s%d_%d@localhost", prefix, (int) getpid (),
              serial++);
    snprintf (vars[n++], 256, "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1");
    snprintf (vars[n++], 256, "RABBITMQ_NODE_PORT=%d", rabbit->port);
    snprintf (vars[n++], 256, "RABBITMQ_DIST_PORT=%d", dist_port);
    snprintf (vars[n++], 256, "RABBITMQ_MNESIA_BASE=%s/mnesia", dir);
    snprintf (vars[n++], 256, "RABBITMQ_LOG_BASE=%s/log", dir);
    snprintf (vars[n++], 256, "RABBITMQ_LOGS=-");
    snprintf (vars[n++], 256, "RABBITMQ_ENABLED_PLUGINS_FILE=%s/enabled_plugins", dir);
    snprintf (vars[n++], 256, "RABBITMQ_CONF_ENV_FILE=%s/rabbitmq-env.conf", dir);
    snprintf (vars[n++], 256, "RABBITMQ_CONFIG_FILE=%s/rabbitmq", dir);
    snprintf (vars[n++], 256, "RABBITMQ_PID_FILE=%s/rabbitmq.pid", dir);
    char *env[17];
    for (int i = 0; i < n; i++)
        env[i] = vars[i];
    env[n] = NULL;
    //  epmd first, in the foreground: our child, stopped by its PID
    char epmd_text[16];
    snprintf (epmd_text, sizeof (epmd_text), "%d", epmd_port);
    char *epmd_argv[] = {S_EPMD, "-port", epmd_text, "-address", "127.0.0.1", NULL};
    rabbit->epmd = arb_benchproc_spawn_logged (epmd_argv, dir, rabbit->log, env);
    char *argv[] = {S_RABBIT_SERVER, NULL};
    rabbit->pid = arb_benchproc_spawn_logged (argv, dir, rabbit->log, env);
    for (int i = 0; i < S_RABBIT_WAIT_S * 50 && !zsys_interrupted; i++) {
        if (waitpid (rabbit->pid, NULL, WNOHANG) != 0) {
            rabbit->pid = 0;
            break;
        }
        if (ready (rabbit->port, arg))
            return 0;
        usleep (20000);
    }
    if (last) {
        fprintf (stderr, "benchmark: rabbitmq-server did not start; its log:\n");
        char cmd[256];
        snprintf (cmd, sizeof (cmd), "tail -n 20 %s >&2", rabbit->log);
        if (system (cmd) != 0)
            fprintf (stderr, "benchmark: no log\n");
    }
    arb_benchproc_stop_rabbit (rabbit);
    return 1;
}

int
arb_benchproc_start_rabbit (arb_benchproc_rabbit_t *rabbit,
                            const char *prefix,
                            bool (*ready) (int port, void *arg),
                            void *arg)
{
    //  a free port can be taken by another program before the node binds
    //  it (its AMQP, distribution or epmd port): then once more, on others
    int rc = 1;
    for (int attempt = 0; attempt < 3 && rc == 1 && !zsys_interrupted; attempt++)
        rc = s_try_rabbit (rabbit, prefix, ready, arg, attempt == 2);
    return rc ? -1 : 0;
}

void
arb_benchproc_stop_rabbit (arb_benchproc_rabbit_t *rabbit)
{
    if (rabbit->pid > 0) {
        //  the node itself stops cleanly on SIGTERM; the script then ends
        char path[160];
        snprintf (path, sizeof (path), "%s/rabbitmq.pid", rabbit->dir);
        FILE *file = fopen (path, "r");
        int node = 0;
        if (file) {
            if (fscanf (file, "%d", &node) != 1)
                node = 0;
            fclose (file);
        }
        kill (node > 0 ? (pid_t) node : rabbit->pid, SIGTERM);
        for (int i = 0; i < 6000 && waitpid (rabbit->pid, NULL, WNOHANG) == 0; i++)
            usleep (10000);
        if (kill (rabbit->pid, 0) == 0) {
            kill (-rabbit->pid, SIGKILL);  //  its session: the script and the node
            waitpid (rabbit->pid, NULL, 0);
        }
    }
    arb_benchproc_stop (rabbit->epmd);
    rabbit->pid = rabbit->epmd = 0;
    char cmd[128];
    snprintf (cmd, sizeof (cmd), "rm -rf %s", rabbit->dir);
    if (rabbit->dir[0] && system (cmd) != 0)
        fprintf (stderr, "benchmark: could not remove %s\n", rabbit->dir);
    rabbit->dir[0] = 0;
}
