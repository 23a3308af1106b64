/*  arb_benchfloor.c — see arb_benchfloor.h.

    The server is a child forked before it makes any ZeroMQ context (a
    context does not survive a fork), and it dies with the bench
    (PR_SET_PDEATHSIG). Its file is written in place, 4 MB long, as a WAL
    that checkpoints reuses: a write that grew the file would cost an
    extra metadata write per fdatasync that a journal in steady state does
    not pay.
*/

#include "arb_benchfloor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define ARB_FLOOR_REQUEST 100
#define ARB_FLOOR_REPLY   30
#define ARB_FLOOR_WRITE   8240     //  two WAL frames: 2 x (24 + 4,096)
#define ARB_FLOOR_FILE    4194304  //  written in place, from the start again
#define ARB_FLOOR_WAIT_MS 5000     //  a round trip longer than this failed

//  The server's durable write: in place, then fdatasync; none without a file.
typedef struct {
    int fd;  //  -1: no sync
    off_t at;
    char block[ARB_FLOOR_WRITE];
} s_disk_t;

static int
s_disk_open (s_disk_t *disk, const char *dir, bool sync)
{
    memset (disk, 0, sizeof (*disk));
    disk->fd = -1;
    if (!sync)
        return 0;
    char path[4096];
    snprintf (path, sizeof (path), "%s/floor-probe-%d", dir, (int) getpid ());
    disk->fd = open (path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (disk->fd < 0)
        return -1;
    unlink (path);  //  the open descriptor keeps it until the server ends
    //  allocated and on disk before the first request, as a reused WAL is
    char *zeros = (char *) calloc (1, ARB_FLOOR_FILE);
    bool ok = zeros && pwrite (disk->fd, zeros, ARB_FLOOR_FILE, 0) == ARB_FLOOR_FILE
              && fsync (disk->fd) == 0;
    free (zeros);
    return ok ? 0 : -1;
}

static int
s_disk_write (s_disk_t *disk)
{
    if (disk->fd < 0)
        return 0;
    if (pwrite (disk->fd, disk->block, sizeof (disk->block), disk->at)
            != (ssize_t) sizeof (disk->block)
        || fdatasync (disk->fd))
        return -1;
    disk->at += ARB_FLOOR_WRITE;
    if (disk->at + ARB_FLOOR_WRITE > ARB_FLOOR_FILE)
        disk->at = 0;
    return 0;
}

static int
s_read_all (int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read (fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t) n;
    }
    return 0;
}

static int
s_write_all (int fd, const char *buf, size_t size)
{
    size_t put = 0;
    while (put < size) {
        ssize_t n = write (fd, buf + put, size - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        put += (size_t) n;
    }
    return 0;
}

static void
s_nodelay (int fd)
{
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
}

//  The child's loop over a plain socket: one request, the write, one reply.
static void
s_serve_tcp (int listener, s_disk_t *disk)
{
    int fd = accept (listener, NULL, NULL);
    if (fd < 0)
        return;
    s_nodelay (fd);
    char buf[ARB_FLOOR_REQUEST];
    while (s_read_all (fd, buf, sizeof (buf)) == 0 && s_disk_write (disk) == 0
           && s_write_all (fd, buf, ARB_FLOOR_REPLY) == 0)
        ;
    close (fd);
}

//  The child's loop over ZeroMQ; it binds, then tells the parent where.
static void
s_serve_zmq (int tell, s_disk_t *disk)
{
    void *ctx = zmq_ctx_new ();
    void *router = ctx ? zmq_socket (ctx, ZMQ_ROUTER) : NULL;
    char endpoint[256] = "";
    size_t size = sizeof (endpoint);
    if (router && zmq_bind (router, "tcp://127.0.0.1:*") == 0)
        zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &size);
    if (s_write_all (tell, endpoint, sizeof (endpoint)) == 0 && *endpoint) {
        char id[256], buf[ARB_FLOOR_REQUEST];
        for (;;) {
            int id_size = zmq_recv (router, id, sizeof (id), 0);
            if (id_size < 0 || zmq_recv (router, buf, sizeof (buf), 0) < 0 || s_disk_write (disk))
                break;
            if (zmq_send (router, id, (size_t) id_size, ZMQ_SNDMORE) < 0
                || zmq_send (router, buf, ARB_FLOOR_REPLY, 0) < 0)
                break;
        }
    }
    if (router)
        zmq_close (router);
    if (ctx)
        zmq_ctx_term (ctx);
}

//  Forks the server. listener (TCP) or tell (ZeroMQ: the write end of a
//  pipe) is the child's; the parent closes its own copies.
static pid_t
s_fork_server (const char *dir, bool sync, int listener, int tell)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (1);
    static s_disk_t disk;  //  the child's own: 8 KiB is much for a stack
    if (s_disk_open (&disk, dir, sync) == 0) {
        if (listener >= 0)
            s_serve_tcp (listener, &disk);
        else
            s_serve_zmq (tell, &disk);
    }
    _exit (0);
}

static void
s_reap (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGKILL);
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

//  A listening socket on a free loopback port; its port in *port.
static int
s_listen (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof (addr);
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof (addr)) || listen (fd, 1)
        || getsockname (fd, (struct sockaddr *) &addr, &len)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    *port = ntohs (addr.sin_port);
    return fd;
}

static int
s_measure_tcp (int port, int count, int64_t *times)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct timeval wait = {.tv_sec = ARB_FLOOR_WAIT_MS / 1000};
    if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof (addr))) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    s_nodelay (fd);
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof (wait));
    char buf[ARB_FLOOR_REQUEST] = {0};
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        int64_t t0 = arb_benchkit_now_us ();
        rc = s_write_all (fd, buf, sizeof (buf)) || s_read_all (fd, buf, ARB_FLOOR_REPLY) ? -1 : 0;
        times[i] = arb_benchkit_now_us () - t0;
    }
    close (fd);
    return rc;
}

static int
s_measure_zmq (const char *endpoint, int count, int64_t *times)
{
    void *ctx = zmq_ctx_new ();
    void *dealer = ctx ? zmq_socket (ctx, ZMQ_DEALER) : NULL;
    int wait = ARB_FLOOR_WAIT_MS, linger = 0;
    int rc = dealer && zmq_connect (dealer, endpoint) == 0 ? 0 : -1;
    if (dealer) {
        zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &wait, sizeof (wait));
        zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof (linger));
    }
    char buf[ARB_FLOOR_REQUEST] = {0};
    for (int i = 0; i < count && rc == 0; i++) {
        int64_t t0 = arb_benchkit_now_us ();
        rc = zmq_send (dealer, buf, sizeof (buf), 0) < 0
                     || zmq_recv (dealer, buf, sizeof (buf), 0) < 0
                 ? -1
                 : 0;
        times[i] = arb_benchkit_now_us () - t0;
    }
    if (dealer)
        zmq_close (dealer);
    if (ctx)
        zmq_ctx_term (ctx);
    return rc;
}

//  Starts the server and runs the round trips against it.
static int
s_run (const char *dir, arb_benchfloor_transport_t transport, int count, bool sync, int64_t *times)
{
    int rc = -1;
    if (transport == ARB_BENCHFLOOR_TCP) {
        int port;
        int listener = s_listen (&port);
        if (listener < 0)
            return -1;
        pid_t pid = s_fork_server (dir, sync, listener, -1);
        close (listener);
        if (pid > 0)
            rc = s_measure_tcp (port, count, times);
        s_reap (pid);
        return rc;
    }
    int tell[2];
    if (pipe (tell))
        return -1;
    pid_t pid = s_fork_server (dir, sync, -1, tell[1]);
    close (tell[1]);
    char endpoint[256];
    if (pid > 0 && s_read_all (tell[0], endpoint, sizeof (endpoint)) == 0 && *endpoint) {
        endpoint[sizeof (endpoint) - 1] = '\0';
        rc = s_measure_zmq (endpoint, count, times);
    }
    close (tell[0]);
    s_reap (pid);
    return rc;
}

int
arb_benchfloor_roundtrip (const char *dir,
                          arb_benchfloor_transport_t transport,
                          int count,
                          bool sync,
                          arb_benchkit_sync_t *out)
{
    memset (out, 0, sizeof (*out));
    if (count < 1)
        return -1;
    int64_t *times = (int64_t *) calloc ((size_t) count, sizeof (int64_t));
    if (!times)
        return -1;
    int rc = s_run (dir, transport, count, sync, times);
    if (rc == 0) {
        //  the round trips' own time: not the server's start, nor its file
        arb_benchkit_lat_t lat = arb_benchkit_latency (times, (size_t) count);
        out->count = count;
        out->seconds = lat.mean * count / 1000.0;
        out->per_s = out->seconds > 0 ? count / out->seconds : 0;
        out->p50_us = lat.p50 * 1000.0;
        out->p99_us = lat.p99 * 1000.0;
    }
    free (times);
    return rc;
}
