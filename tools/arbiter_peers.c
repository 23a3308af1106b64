/*  arbiter-peers — the shapes of arbiter-bench (W1, W2, P1, P2; see
    arb_benchkit.h) against other queues, with clients in C, on the same
    machine, so that arbiter and its peers are measured alike:

      beanstalkd-fsync  beanstalkd -b DIR -f0: every write to its binlog
                        fsynced before the reply (put, delete)
      beanstalkd        beanstalkd -b DIR: fsync at most every 50 ms
      redis-always      redis-server, AOF with appendfsync always
      redis-everysec    redis-server, AOF with appendfsync everysec
      rabbitmq          rabbitmq-server, a durable classic queue, persistent
                        messages, publisher confirms, manual acks

    Each shape gets a fresh server on a free loopback port with a
    temporary directory of its own under /tmp; the tool stops it by its
    PID. How each queue takes a task (the producer side counts a task at
    its acknowledgement: beanstalkd INSERTED, redis's XADD reply, a
    RabbitMQ confirm; with fsync each write, or AOF always, or confirms,
    each comes after an fsync):

      beanstalkd  put; consumers reserve-with-timeout (W2: one at a time;
                  P2: up to --prefetch pipelined with timeout 0), then
                  delete each job (counted at DELETED)
      redis       a stream with one consumer group: XADD; consumers
                  XREADGROUP COUNT 1 (W2) or --prefetch (P2) BLOCK, then
                  XACK + XDEL each entry (counted at their replies)
      rabbitmq    basic.publish (delivery mode 2) under confirm.select;
                  consumers basic.consume with basic.qos prefetch 1 (W2) or
                  --prefetch (P2), basic.ack each (counted when the ack is
                  sent: AMQP 0-9-1 does not answer acks)

    Latency comes from the timestamp in the payload, taken by the consumer
    when the task's ack is done (arbiter-bench's W2/P2 take it when the
    result reaches the producer). One JSON line per shape, as
    arbiter-bench prints.
*/

#include "arb_beanstalk.h"
#include "arb_benchkit.h"
#include "arb_benchproc.h"
#include "arb_proto.h"

#include <amqp.h>
#include <czmq.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_CONSUMERS_MAX 16
#define S_RING          65536
#define S_STALL_MS      15000
#define S_EPMD          "/usr/bin/epmd"

typedef struct {
    const char *systems;
    const char *workloads;
    int tasks, payload, window, consumers, prefetch;
} s_opts_t;

//  A server started for one shape.
typedef struct {
    pid_t pid;
    pid_t epmd;  //  rabbitmq: its own epmd
    int port;
    char dir[64];
    char log[128];
} s_server_t;

//  A producer's connection and a consumer's loop, per kind of queue.
typedef struct {
    const char *name;
    const char *what;
    const char *program;  //  the server's program, from a Debian package
    const char *package;  //  that package
    int (*start) (s_server_t *server);
    void *(*open) (s_server_t *server);
    void (*close) (void *conn);
    void (*send) (void *conn, const char *payload, size_t size);
    //  Sends what was buffered and waits for at least one acknowledgement
    //  (and takes every other one already there). Acks counted, or -1.
    int (*acks) (void *conn);
    int (*consume) (s_server_t *server, int credit, arb_benchkit_shared_t *shared);
} s_system_t;

//  ---------------------------------------------------------------------
//  Servers

static bool
s_port_open (int port)
{
    arb_beanstalk_t *probe = arb_beanstalk_connect (port);
    bool open = probe != NULL;
    arb_beanstalk_destroy (&probe);
    return open;
}

static int
s_new_dir (s_server_t *server)
{
    memset (server, 0, sizeof (*server));
    snprintf (server->dir, sizeof (server->dir), "/tmp/arbiter-peers-XXXXXX");
    if (!mkdtemp (server->dir))
        return -1;
    snprintf (server->log, sizeof (server->log), "%s/server.log", server->dir);
    server->port = arb_benchproc_free_port ();
    return 0;
}

//  Copies the end of the server's log to stderr.
static void
s_show_log (s_server_t *server)
{
    char cmd[256];
    snprintf (cmd, sizeof (cmd), "tail -n 20 %s >&2", server->log);
    if (system (cmd) != 0)
        fprintf (stderr, "arbiter-peers: no log\n");
}

//  Waits until ready (server) says yes, the process is gone, or timeout.
static int
s_wait_ready (s_server_t *server, bool (*ready) (s_server_t *), int timeout_ms)
{
    int64_t deadline = arb_benchkit_now_us () + (int64_t) timeout_ms * 1000;
    while (arb_benchkit_now_us () < deadline) {
        if (waitpid (server->pid, NULL, WNOHANG) != 0) {
            fprintf (stderr, "arbiter-peers: the server exited; its log:\n");
            s_show_log (server);
            server->pid = 0;
            return -1;
        }
        if (ready (server))
            return 0;
        usleep (20000);
    }
    fprintf (stderr, "arbiter-peers: the server did not start; its log:\n");
    s_show_log (server);
    return -1;
}

static void
s_stop_server (s_server_t *server)
{
    if (server->pid > 0) {
        kill (server->pid, SIGTERM);
        int64_t deadline = arb_benchkit_now_us () + 60000000;
        while (waitpid (server->pid, NULL, WNOHANG) == 0) {
            if (arb_benchkit_now_us () > deadline) {
                kill (server->pid, SIGKILL);
                waitpid (server->pid, NULL, 0);
                break;
            }
            usleep (10000);
        }
    }
    if (server->epmd > 0) {
        kill (server->epmd, SIGTERM);
        waitpid (server->epmd, NULL, 0);
    }
    server->pid = server->epmd = 0;
    char cmd[128];
    snprintf (cmd, sizeof (cmd), "rm -rf %s", server->dir);
    if (server->dir[0] && system (cmd) != 0)
        fprintf (stderr, "arbiter-peers: could not remove %s\n", server->dir);
}

//  ---------------------------------------------------------------------
//  beanstalkd

static bool
s_port_ready (s_server_t *server)
{
    return s_port_open (server->port);
}

static int
s_beanstalkd_start_with (s_server_t *server, bool fsync_each)
{
    if (s_new_dir (server))
        return -1;
    char port[16], binlog[96];
    snprintf (port, sizeof (port), "%d", server->port);
    snprintf (binlog, sizeof (binlog), "%s/binlog", server->dir);
    mkdir (binlog, 0755);
    char *fsync_argv[] = {
        "/usr/bin/beanstalkd", "-l", "127.0.0.1", "-p", port, "-b", binlog, "-f0", NULL};
    char *default_argv[] = {
        "/usr/bin/beanstalkd", "-l", "127.0.0.1", "-p", port, "-b", binlog, NULL};
    server->pid = arb_benchproc_spawn_logged (fsync_each ? fsync_argv : default_argv, NULL,
                                              server->log, NULL);
    return s_wait_ready (server, s_port_ready, 10000);
}

static int
s_beanstalkd_fsync_start (s_server_t *server)
{
    return s_beanstalkd_start_with (server, true);
}

static int
s_beanstalkd_start (s_server_t *server)
{
    return s_beanstalkd_start_with (server, false);
}

static void *
s_beanstalkd_open (s_server_t *server)
{
    return arb_beanstalk_connect (server->port);
}

static void
s_beanstalkd_close (void *conn)
{
    arb_beanstalk_t *self = (arb_beanstalk_t *) conn;
    arb_beanstalk_destroy (&self);
}

static void
s_beanstalkd_send (void *conn, const char *payload, size_t size)
{
    arb_beanstalk_put ((arb_beanstalk_t *) conn, payload, size);
}

static int
s_beanstalkd_acks (void *conn)
{
    arb_beanstalk_t *self = (arb_beanstalk_t *) conn;
    if (arb_beanstalk_flush (self))
        return -1;
    int count = 0;
    do {
        const char *line, *body;
        uint64_t id;
        size_t size;
        if (arb_beanstalk_reply (self, &line, &id, &body, &size) || strncmp (line, "INSERTED", 8)) {
            fprintf (stderr, "arbiter-peers: beanstalkd: put failed\n");
            return -1;
        }
        count++;
    } while (arb_beanstalk_ready (self));
    return count;
}

static int
s_beanstalkd_consume (s_server_t *server, int credit, arb_benchkit_shared_t *shared)
{
    arb_beanstalk_t *self = arb_beanstalk_connect (server->port);
    if (!self)
        return -1;
    uint64_t *ids = (uint64_t *) calloc ((size_t) credit + 1, sizeof (uint64_t));
    char **bodies = (char **) calloc ((size_t) credit + 1, sizeof (char *));
    for (int i = 0; i <= credit; i++)
        bodies[i] = (char *) malloc (ARB_BENCHKIT_STAMP);
    int rc = 0;
    while (rc == 0 && !atomic_load (&shared->stop)) {
        //  one slot: a blocking reserve; more: up to credit at once,
        //  without waiting, then a blocking one if none came
        int held = 0;
        int asks = credit == 1 ? 1 : credit;
        for (int i = 0; i < asks; i++)
            arb_beanstalk_reserve (self, credit == 1 ? 1 : 0);
        for (int round = 0; round < 2 && held == 0 && rc == 0; round++) {
            if (round == 1) {
                if (credit == 1)
                    break;
                arb_beanstalk_reserve (self, 1);
                asks = 1;
            }
            rc = arb_beanstalk_flush (self);
            for (int i = 0; i < asks && rc == 0; i++) {
                const char *line, *body;
                uint64_t id;
                size_t size;
                rc = arb_beanstalk_reply (self, &line, &id, &body, &size);
                if (rc == 0 && body) {
                    ids[held] = id;
                    memcpy (bodies[held++], body,
                            size < ARB_BENCHKIT_STAMP ? size : ARB_BENCHKIT_STAMP);
                }
            }
        }
        for (int i = 0; i < held; i++)
            arb_beanstalk_delete (self, ids[i]);
        if (held && rc == 0)
            rc = arb_beanstalk_flush (self);
        for (int i = 0; i < held && rc == 0; i++) {
            const char *line, *body;
            uint64_t id;
            size_t size;
            rc = arb_beanstalk_reply (self, &line, &id, &body, &size);
            if (rc == 0 && strcmp (line, "DELETED"))
                rc = -1;
        }
        for (int i = 0; i < held && rc == 0; i++)
            arb_benchkit_shared_done (shared, bodies[i], ARB_BENCHKIT_STAMP);
    }
    for (int i = 0; i <= credit; i++)
        free (bodies[i]);
    free (bodies);
    free (ids);
    arb_beanstalk_destroy (&self);
    return rc;
}

//  ---------------------------------------------------------------------
//  redis: a stream "q" with the consumer group "g"

static bool
s_redis_ready (s_server_t *server)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", server->port, tv);
    bool ok = false;
    if (c && !c->err) {
        redisReply *reply = (redisReply *) redisCommand (c, "PING");
        ok = reply && reply->type == REDIS_REPLY_STATUS;
        if (reply)
            freeReplyObject (reply);
    }
    if (c)
        redisFree (c);
    return ok;
}

static int
s_redis_start_with (s_server_t *server, const char *fsync)
{
    if (s_new_dir (server))
        return -1;
    char port[16];
    snprintf (port, sizeof (port), "%d", server->port);
    char *argv[] = {"/usr/bin/redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    server->dir,
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    (char *) fsync,
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                    NULL};
    server->pid = arb_benchproc_spawn_logged (argv, NULL, server->log, NULL);
    if (s_wait_ready (server, s_redis_ready, 20000))
        return -1;
    redisContext *c = redisConnect ("127.0.0.1", server->port);
    redisReply *reply =
        c && !c->err ? (redisReply *) redisCommand (c, "XGROUP CREATE q g $ MKSTREAM") : NULL;
    int rc = reply && reply->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (reply)
        freeReplyObject (reply);
    if (c)
        redisFree (c);
    return rc;
}

static int
s_redis_always_start (s_server_t *server)
{
    return s_redis_start_with (server, "always");
}

static int
s_redis_everysec_start (s_server_t *server)
{
    return s_redis_start_with (server, "everysec");
}

static void *
s_redis_open (s_server_t *server)
{
    redisContext *c = redisConnect ("127.0.0.1", server->port);
    if (c && c->err) {
        redisFree (c);
        return NULL;
    }
    return c;
}

static void
s_redis_close (void *conn)
{
    redisFree ((redisContext *) conn);
}

static void
s_redis_send (void *conn, const char *payload, size_t size)
{
    redisAppendCommand ((redisContext *) conn, "XADD q * p %b", payload, size);
}

static int
s_redis_acks (void *conn)
{
    redisContext *c = (redisContext *) conn;
    int count = 0;
    void *reply = NULL;
    if (redisGetReply (c, &reply) != REDIS_OK)
        return -1;
    do {
        bool ok = ((redisReply *) reply)->type == REDIS_REPLY_STRING;
        freeReplyObject (reply);
        if (!ok) {
            fprintf (stderr, "arbiter-peers: redis: XADD failed\n");
            return -1;
        }
        count++;
        reply = NULL;
        if (redisReaderGetReply (c->reader, &reply) != REDIS_OK)
            return -1;
    } while (reply);
    return count;
}

static int
s_redis_consume (s_server_t *server, int credit, arb_benchkit_shared_t *shared)
{
    redisContext *c = redisConnect ("127.0.0.1", server->port);
    if (!c || c->err)
        return -1;
    char name[32];
    snprintf (name, sizeof (name), "c%d", (int) getpid ());
    char (*ids)[64] = calloc ((size_t) credit, 64);
    char (*stamps)[ARB_BENCHKIT_STAMP] = calloc ((size_t) credit, ARB_BENCHKIT_STAMP);
    int rc = 0;
    while (rc == 0 && !atomic_load (&shared->stop)) {
        redisReply *reply = (redisReply *) redisCommand (
            c, "XREADGROUP GROUP g %s COUNT %d BLOCK 1000 STREAMS q >", name, credit);
        if (!reply) {
            rc = -1;
            break;
        }
        int held = 0;
        //  [[ "q", [[id, ["p", payload]], ...] ]] or nil on timeout
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
            redisReply *entries = reply->element[0]->element[1];
            for (size_t i = 0; i < entries->elements && held < credit; i++) {
                redisReply *entry = entries->element[i];
                redisReply *fields = entry->element[1];
                snprintf (ids[held], 64, "%s", entry->element[0]->str);
                if (fields->type == REDIS_REPLY_ARRAY && fields->elements == 2
                    && fields->element[1]->len >= ARB_BENCHKIT_STAMP)
                    memcpy (stamps[held], fields->element[1]->str, ARB_BENCHKIT_STAMP);
                held++;
            }
        }
        freeReplyObject (reply);
        for (int i = 0; i < held; i++) {
            redisAppendCommand (c, "XACK q g %s", ids[i]);
            redisAppendCommand (c, "XDEL q %s", ids[i]);
        }
        for (int i = 0; i < held * 2 && rc == 0; i++) {
            void *answer = NULL;
            if (redisGetReply (c, &answer) != REDIS_OK
                || ((redisReply *) answer)->type != REDIS_REPLY_INTEGER)
                rc = -1;
            if (answer)
                freeReplyObject (answer);
        }
        for (int i = 0; i < held && rc == 0; i++)
            arb_benchkit_shared_done (shared, stamps[i], ARB_BENCHKIT_STAMP);
    }
    free (ids);
    free (stamps);
    redisFree (c);
    return rc;
}

//  ---------------------------------------------------------------------
//  rabbitmq: a durable classic queue "bench" on the default exchange

typedef struct {
    amqp_connection_state_t conn;
    uint64_t published, confirmed;
} s_rabbit_t;

static amqp_connection_state_t
s_rabbit_connect (int port)
{
    amqp_connection_state_t conn = amqp_new_connection ();
    amqp_socket_t *socket = amqp_tcp_socket_new (conn);
    if (!socket || amqp_socket_open (socket, "127.0.0.1", port) != AMQP_STATUS_OK) {
        amqp_destroy_connection (conn);
        return NULL;
    }
    amqp_rpc_reply_t login =
        amqp_login (conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection (conn);
        return NULL;
    }
    amqp_channel_open (conn, 1);
    if (amqp_get_rpc_reply (conn).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection (conn);
        return NULL;
    }
    return conn;
}

static void
s_rabbit_disconnect (amqp_connection_state_t conn)
{
    amqp_channel_close (conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
}

static bool
s_rabbit_ready (int port, void *arg)
{
    (void) arg;
    amqp_connection_state_t conn = s_rabbit_connect (port);
    if (!conn)
        return false;
    amqp_queue_declare (conn, 1, amqp_cstring_bytes ("bench"), 0, 1, 0, 0, amqp_empty_table);
    bool ok = amqp_get_rpc_reply (conn).reply_type == AMQP_RESPONSE_NORMAL;
    s_rabbit_disconnect (conn);
    return ok;
}

static int
s_rabbit_start (s_server_t *server)
{
    memset (server, 0, sizeof (*server));
    arb_benchproc_rabbit_t rabbit;
    int rc = arb_benchproc_start_rabbit (&rabbit, "arbpeers", s_rabbit_ready, NULL);
    server->pid = rabbit.pid;
    server->epmd = rabbit.epmd;
    server->port = rabbit.port;
    memcpy (server->dir, rabbit.dir, sizeof (server->dir));
    memcpy (server->log, rabbit.log, sizeof (server->log));
    return rc;
}

static void *
s_rabbit_open (s_server_t *server)
{
    amqp_connection_state_t conn = s_rabbit_connect (server->port);
    if (!conn)
        return NULL;
    amqp_confirm_select (conn, 1);
    if (amqp_get_rpc_reply (conn).reply_type != AMQP_RESPONSE_NORMAL) {
        s_rabbit_disconnect (conn);
        return NULL;
    }
    s_rabbit_t *self = (s_rabbit_t *) calloc (1, sizeof (s_rabbit_t));
    self->conn = conn;
    return self;
}

static void
s_rabbit_close (void *conn)
{
    s_rabbit_t *self = (s_rabbit_t *) conn;
    s_rabbit_disconnect (self->conn);
    free (self);
}

static void
s_rabbit_send (void *conn, const char *payload, size_t size)
{
    s_rabbit_t *self = (s_rabbit_t *) conn;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    amqp_bytes_t body = {.len = size, .bytes = (void *) payload};
    if (amqp_basic_publish (self->conn, 1, amqp_empty_bytes, amqp_cstring_bytes ("bench"), 0, 0,
                            &props, body)
        == AMQP_STATUS_OK)
        self->published++;
}

//  Confirms: basic.ack with delivery tags 1, 2, ... in publishing order,
//  "multiple" covering every tag up to its own.
static int
s_rabbit_acks (void *conn)
{
    s_rabbit_t *self = (s_rabbit_t *) conn;
    uint64_t before = self->confirmed;
    bool block = true;
    while (block || amqp_frames_enqueued (self->conn) || amqp_data_in_buffer (self->conn)) {
        amqp_frame_t frame;
        struct timeval zero = {0, 0};
        int status = block ? amqp_simple_wait_frame (self->conn, &frame)
                           : amqp_simple_wait_frame_noblock (self->conn, &frame, &zero);
        if (status == AMQP_STATUS_TIMEOUT)
            break;
        if (status != AMQP_STATUS_OK)
            return -1;
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = (amqp_basic_ack_t *) frame.payload.method.decoded;
            if (ack->multiple)
                self->confirmed =
                    ack->delivery_tag > self->confirmed ? ack->delivery_tag : self->confirmed;
            else
                self->confirmed++;
            block = self->confirmed == before;
        }
        else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf (stderr, "arbiter-peers: rabbitmq: a publish was nacked\n");
            return -1;
        }
    }
    return (int) (self->confirmed - before);
}

static int
s_rabbit_consume (s_server_t *server, int credit, arb_benchkit_shared_t *shared)
{
    amqp_connection_state_t conn = s_rabbit_connect (server->port);
    if (!conn)
        return -1;
    amqp_basic_qos (conn, 1, 0, (uint16_t) credit, 0);
    amqp_basic_consume (conn, 1, amqp_cstring_bytes ("bench"), amqp_empty_bytes, 0, 0, 0,
                        amqp_empty_table);
    if (amqp_get_rpc_reply (conn).reply_type != AMQP_RESPONSE_NORMAL) {
        s_rabbit_disconnect (conn);
        return -1;
    }
    int rc = 0;
    while (rc == 0 && !atomic_load (&shared->stop)) {
        amqp_envelope_t envelope;
        struct timeval timeout = {1, 0};
        amqp_maybe_release_buffers (conn);
        amqp_rpc_reply_t res = amqp_consume_message (conn, &envelope, &timeout, 0);
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
            && res.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (res.reply_type != AMQP_RESPONSE_NORMAL) {
            rc = -1;
            break;
        }
        if (amqp_basic_ack (conn, 1, envelope.delivery_tag, 0) != AMQP_STATUS_OK)
            rc = -1;
        else
            arb_benchkit_shared_done (shared, envelope.message.body.bytes,
                                      envelope.message.body.len);
        amqp_destroy_envelope (&envelope);
    }
    s_rabbit_disconnect (conn);
    return rc;
}

//  ---------------------------------------------------------------------
//  The shapes

static const s_system_t s_systems[] = {
    {"beanstalkd-fsync", "beanstalkd 1.12 -f0: fsync each write", "/usr/bin/beanstalkd",
     "beanstalkd", s_beanstalkd_fsync_start, s_beanstalkd_open, s_beanstalkd_close,
     s_beanstalkd_send, s_beanstalkd_acks, s_beanstalkd_consume},
    {"redis-always", "redis 7.0 streams, AOF appendfsync always", "/usr/bin/redis-server",
     "redis-server", s_redis_always_start, s_redis_open, s_redis_close, s_redis_send, s_redis_acks,
     s_redis_consume},
    {"rabbitmq", "RabbitMQ 3.10 durable classic queue, persistent, confirms",
     "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server", s_rabbit_start, s_rabbit_open,
     s_rabbit_close, s_rabbit_send, s_rabbit_acks, s_rabbit_consume},
    {"redis-everysec", "redis 7.0 streams, AOF appendfsync everysec", "/usr/bin/redis-server",
     "redis-server", s_redis_everysec_start, s_redis_open, s_redis_close, s_redis_send,
     s_redis_acks, s_redis_consume},
    {"beanstalkd", "beanstalkd 1.12 -b: fsync at most every 50 ms", "/usr/bin/beanstalkd",
     "beanstalkd", s_beanstalkd_start, s_beanstalkd_open, s_beanstalkd_close, s_beanstalkd_send,
     s_beanstalkd_acks, s_beanstalkd_consume},
};

static int s_failures;

//  What the system's server lacks here (its program; rabbitmq's epmd), or
//  NULL: a shape of a system not installed is not tried.
static const char *
s_missing (const s_system_t *sys)
{
    if (access (sys->program, X_OK))
        return sys->program;
    if (streq (sys->name, "rabbitmq") && access (S_EPMD, X_OK))
        return S_EPMD;
    return NULL;
}

static void
s_print_lat (const char *name, arb_benchkit_lat_t lat)
{
    printf (", \"%s_ms\": {\"n\": %zu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
            "\"mean\": %.3f}",
            name, lat.n, lat.p50, lat.p90, lat.p99, lat.max, lat.mean);
}

//  Runs one shape on a fresh server: consumers (0: W1, P1) of credit
//  each, the producer with window requests in flight.
static void
s_shape (const s_system_t *sys,
         s_opts_t *opts,
         arb_benchkit_shared_t *shared,
         const char *workload,
         const char *what,
         int window,
         int consumers,
         int credit)
{
    s_server_t server;
    if (zsys_interrupted)
        return;
    if (s_missing (sys)) {
        arb_benchkit_json_head (stdout, sys->name, workload, what);
        printf (", \"error\": \"not installed\", \"ok\": false}\n");
        s_failures++;
        return;
    }
    if (sys->start (&server)) {
        s_stop_server (&server);
        arb_benchkit_json_head (stdout, sys->name, workload, what);
        printf (", \"ok\": false}\n");
        s_failures++;
        return;
    }
    arb_benchkit_shared_reset (shared, opts->tasks);
    pid_t pids[S_CONSUMERS_MAX] = {0};
    for (int i = 0; i < consumers; i++) {
        fflush (stdout);
        pids[i] = fork ();
        if (pids[i] == 0)
            _exit (sys->consume (&server, credit, shared) == 0 ? 0 : 1);
    }
    void *conn = sys->open (&server);
    int64_t *ack_lat = (int64_t *) calloc ((size_t) opts->tasks, sizeof (int64_t));
    int64_t *sent_at = (int64_t *) calloc (S_RING, sizeof (int64_t));
    char *payload = (char *) malloc ((size_t) opts->payload);
    int sent = 0, acked = 0;
    bool ok = conn != NULL;
    int64_t started = arb_benchkit_now_us (), last_ack = started;
    while (ok && acked < opts->tasks && !zsys_interrupted) {
        while (sent < opts->tasks && sent - acked < window) {
            sent_at[sent % S_RING] = arb_benchkit_stamp (payload, (size_t) opts->payload);
            sys->send (conn, payload, (size_t) opts->payload);
            sent++;
        }
        int got = sys->acks (conn);
        if (got < 0) {
            ok = false;
            break;
        }
        last_ack = arb_benchkit_now_us ();
        for (int i = 0; i < got && acked < opts->tasks; i++, acked++)
            ack_lat[acked] = last_ack - sent_at[acked % S_RING];
    }
    ok = ok && !zsys_interrupted;
    if (consumers && ok)
        ok = arb_benchkit_shared_wait (shared, S_STALL_MS);
    int64_t ended = consumers ? atomic_load (&shared->end_us) : last_ack;
    int count = consumers ? (int) atomic_load (&shared->done) : acked;
    if (count > opts->tasks)
        count = opts->tasks;
    double seconds = (double) (ended - started) / 1e6;
    long rss = arb_benchkit_tree_rss_kb (server.pid);
    arb_benchkit_json_head (stdout, sys->name, workload, what);
    printf (", \"server\": \"%s\", \"tasks\": %d, \"payload_bytes\": %d, \"batch\": 1, "
            "\"window\": %d, \"consumers\": %d, \"credit\": %d, \"seconds\": %.3f, "
            "\"tasks_per_s\": %.0f",
            sys->what, count, opts->payload, window, consumers, credit, seconds,
            ok && seconds > 0 ? count / seconds : 0.0);
    s_print_lat ("ack_latency", arb_benchkit_latency (ack_lat, (size_t) acked));
    if (consumers)
        s_print_lat (
            "result_latency",
            arb_benchkit_latency (shared->lat,
                                  (size_t) (count < shared->capacity ? count : shared->capacity)));
    printf (", \"server_rss_kb\": %ld, \"ok\": %s}\n", rss, ok ? "true" : "false");
    if (streq (workload, "P2"))
        arb_benchkit_json_head (stdout, sys->name, "M1", "server RSS after P2"),
            printf (", \"rss_kb\": %ld, \"ok\": %s}\n", rss, ok ? "true" : "false");
    fflush (stdout);
    if (!ok)
        s_failures++;
    if (!ok && !zsys_interrupted) {
        fprintf (stderr, "arbiter-peers: %s %s failed (%d of %d); see %s\n", sys->name, workload,
                 count, opts->tasks, server.log);
    }
    atomic_store (&shared->stop, 1);
    for (int i = 0; i < consumers; i++) {
        int64_t deadline = arb_benchkit_now_us () + 5000000;
        while (waitpid (pids[i], NULL, WNOHANG) == 0) {
            if (arb_benchkit_now_us () > deadline) {
                kill (pids[i], SIGKILL);
                waitpid (pids[i], NULL, 0);
                break;
            }
            usleep (5000);
        }
    }
    if (conn)
        sys->close (conn);
    s_stop_server (&server);
    free (payload);
    free (sent_at);
    free (ack_lat);
}

//  ---------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: arbiter-peers [options]\n"
             "\n"
             "Measures arbiter-bench's shapes W1, W2, P1, P2 (+ M1, the server's RSS after\n"
             "P2) against other queues, each shape on a fresh server it starts on a free\n"
             "loopback port and stops by PID; one JSON line per shape.\n"
             "\n"
             "  --systems LIST    comma list or all (default): beanstalkd-fsync, redis-always,\n"
             "                    rabbitmq, redis-everysec, beanstalkd\n"
             "  --workloads LIST  W1,W2,P1,P2 or all (default); M1 runs P2\n"
             "  --tasks N         tasks per shape (default 100000)\n"
             "  --payload BYTES   payload size (default 100, at least 16)\n"
             "  --window N        P1, P2: requests awaiting their ack, at most (default 256)\n"
             "  --consumers N     W2, P2: consumer processes (default 2)\n"
             "  --prefetch N      P2: tasks per consumer (default 50)\n"
             "  -h, --help        this text\n"
             "  --version         the version\n");
}

//  The value of the long option name, refused unless a whole number from
//  min to max (arb_benchkit.h): 0 or -1.
static int
s_whole (const char *name, const char *text, int min, int max, int *value)
{
    return arb_benchkit_whole ("arbiter-peers", name, text, min, max, value);
}

static bool
s_listed (const char *list, const char *name)
{
    if (streq (list, "all"))
        return true;
    size_t len = strlen (name);
    for (const char *at = list; (at = strstr (at, name)); at += len)
        if ((at == list || at[-1] == ',') && (at[len] == 0 || at[len] == ','))
            return true;
    return false;
}

int
main (int argc, char *argv[])
{
    s_opts_t opts = {.systems = "all",
                     .workloads = "all",
                     .tasks = 100000,
                     .payload = 100,
                     .window = 256,
                     .consumers = 2,
                     .prefetch = 50};
    static struct option options[] = {
        {"systems", required_argument, 0, 's'},  {"workloads", required_argument, 0, 'w'},
        {"tasks", required_argument, 0, 't'},    {"payload", required_argument, 0, 'p'},
        {"window", required_argument, 0, 'W'},   {"consumers", required_argument, 0, 'c'},
        {"prefetch", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {0, 0, 0, 0},
    };
    int opt, index;
    while ((index = -1, opt = getopt_long (argc, argv, "h", options, &index)) != -1) {
        //  a number's option by its long name, for the refusal
        const char *name = index >= 0 ? options[index].name : "";
        int rc = 0;
        switch (opt) {
            case 's':
                opts.systems = optarg;
                break;
            case 'w':
                opts.workloads = optarg;
                break;
            case 't':
                rc = s_whole (name, optarg, 1, INT_MAX, &opts.tasks);
                break;
            case 'p':
                rc = s_whole (name, optarg, ARB_BENCHKIT_STAMP, INT_MAX, &opts.payload);
                break;
            case 'W':
                rc = s_whole (name, optarg, 1, 10000, &opts.window);
                break;
            case 'c':
                rc = s_whole (name, optarg, 1, S_CONSUMERS_MAX, &opts.consumers);
                break;
            case 'f':
                rc = s_whole (name, optarg, 1, 10000, &opts.prefetch);
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf ("arbiter-peers %s (protocol %d)\n", ARB_VERSION, ARB_PROTO_VERSION);
                return 0;
            default:
                s_usage (stderr);
                return 2;
        }
        if (rc)
            return 2;
    }
    bool known = true;
    char *names = strdup (opts.systems);
    for (char *name = strtok (names, ","); name; name = strtok (NULL, ",")) {
        bool found = streq (name, "all");
        for (size_t i = 0; i < sizeof (s_systems) / sizeof (s_systems[0]); i++)
            found = found || streq (name, s_systems[i].name);
        if (!found)
            fprintf (stderr, "arbiter-peers: unknown system %s\n", name);
        known = known && found;
    }
    free (names);
    known = arb_benchkit_workloads_known ("arbiter-peers", opts.workloads, "W1,W2,P1,P2,M1", true)
            && known;
    if (!known)
        return 2;
    if (optind < argc) {
        arb_benchkit_refuse ("arbiter-peers", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    //  SIGINT and SIGTERM (czmq's handler) end the shape under way and the
    //  run, so that its server is stopped and its directory removed
    zsys_init ();
    signal (SIGPIPE, SIG_IGN);
    arb_benchkit_shared_t *shared = arb_benchkit_shared_new (opts.tasks);
    if (!shared)
        return 1;
    for (size_t i = 0; i < sizeof (s_systems) / sizeof (s_systems[0]); i++) {
        const s_system_t *sys = &s_systems[i];
        if (!s_listed (opts.systems, sys->name) || zsys_interrupted)
            continue;
        const char *missing = s_missing (sys);
        if (missing)
            fprintf (stderr,
                     "arbiter-peers: %s is not installed: no %s (Debian's %s package; "
                     "tools/arbiter-dev installs it); its shapes are not measured\n",
                     sys->name, missing, streq (missing, S_EPMD) ? "erlang-base" : sys->package);
        if (s_listed (opts.workloads, "W1"))
            s_shape (sys, &opts, shared, "W1", "submit one at a time, each acknowledged", 1, 0, 0);
        if (s_listed (opts.workloads, "W2"))
            s_shape (sys, &opts, shared, "W2", "W1's producer + consumers of one slot, end to end",
                     1, opts.consumers, 1);
        if (s_listed (opts.workloads, "P1"))
            s_shape (sys, &opts, shared, "P1", "one task per request, a window, counted at the ack",
                     opts.window, 0, 0);
        if (s_listed (opts.workloads, "P2") || s_listed (opts.workloads, "M1"))
            s_shape (sys, &opts, shared, "P2",
                     "P1's producer + consumers with prefetch, end to end", opts.window,
                     opts.consumers, opts.prefetch);
    }
    arb_benchkit_shared_free (&shared);
    if (zsys_interrupted)
        fprintf (stderr, "arbiter-peers: interrupted: the server stopped\n");
    return s_failures || zsys_interrupted ? 1 : 0;
}
