/*  arb_benchproc.c — processes for the benchmarks; see arb_benchproc.h. */

#include "arb_benchproc.h"
#include "arb_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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
    pid_t pid = fork ();
    if (pid == 0) {
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

void
arb_benchproc_stop (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
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

void
arb_benchproc_stop_broker (arb_benchproc_broker_t *broker)
{
    arb_benchproc_stop (broker->pid);
    broker->pid = 0;
    char cmd[128];
    snprintf (cmd, sizeof (cmd), "rm -rf %s", broker->dir);
    if (broker->dir[0] && system (cmd) != 0)
        fprintf (stderr, "benchmark: could not remove %s\n", broker->dir);
    broker->dir[0] = 0;
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
