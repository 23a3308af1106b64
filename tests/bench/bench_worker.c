/*  bench_worker.c — how much a task costs the worker runtime.

        build/tests/bench/bench_worker [TASKS [WORKERS [SLOTS [BATCH]]]]

    Forks WORKERS processes, each an arb_worker with SLOTS light slots and
    a trivial handler (echo of a 16-byte payload), before this process
    touches ZeroMQ. Then plays the smallest broker that keeps them busy: a
    ROUTER socket that answers REGISTER with WELCOME, and sends DISPATCH
    messages of at most BATCH tasks within each worker's credit until TASKS
    results have come back.

    Prints the end-to-end rate (which on a small machine also pays for this
    fake broker, sharing the CPUs), and the workers' own CPU time per task
    from wait4(): the runtime's per-task overhead, including the codec and
    ZeroMQ but not the broker.
*/

#include "bench_proc.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_WORKERS_MAX 16

typedef struct {
    zframe_t *id;  //  routing id
    int credit;    //  tasks the worker may still take
} s_peer_t;

static s_peer_t *
s_peer_of (s_peer_t *peers, int *count, zframe_t *id)
{
    for (int i = 0; i < *count; i++)
        if (zframe_eq (peers[i].id, id))
            return &peers[i];
    assert (*count < S_WORKERS_MAX);
    peers[*count].id = zframe_dup (id);
    peers[*count].credit = 0;
    return &peers[(*count)++];
}

static void
s_dispatch (void *router, s_peer_t *peer, int count, uint64_t *next_id)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_DISPATCH, 0);
    arb_msg_set_routing_id (msg, peer->id);
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    arb_dispatch_task_t *tasks = (arb_dispatch_task_t *) arb_msg_grow (
        msg, &body->tasks, sizeof (arb_dispatch_task_t), (size_t) count);
    for (int i = 0; i < count; i++) {
        uint64_t id = (*next_id)++;
        tasks[i].id = id;
        tasks[i].lease = id;
        tasks[i].attempt = 1;
        tasks[i].queue = "default";
        tasks[i].name = "echo";
        tasks[i].payload = zframe_new ("0123456789abcdef", 16);
    }
    peer->credit -= count;
    arb_msg_send (&msg, router);
}

int
main (int argc, char **argv)
{
    long total = argc > 1 ? atol (argv[1]) : 200000;
    int workers = argc > 2 ? atoi (argv[2]) : 2;
    int slots = argc > 3 ? atoi (argv[3]) : 8;
    int batch = argc > 4 ? atoi (argv[4]) : 64;
    assert (workers >= 1 && workers <= S_WORKERS_MAX && slots >= 1 && batch >= 1);
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", arb_benchproc_free_port ());
    pid_t pids[S_WORKERS_MAX];
    for (int i = 0; i < workers; i++)
        pids[i] = bench_spawn_echo_worker (endpoint, slots, -1);

    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (zsock_bind (router, "%s", endpoint) < 0) {
        fprintf (stderr, "bench: cannot bind %s\n", endpoint);
        return 1;
    }
    void *sock = zsock_resolve (router);
    s_peer_t peers[S_WORKERS_MAX];
    int peer_count = 0;
    uint64_t next_id = 1;
    long done = 0;
    long messages[3] = {0, 0, 0};  //  DISPATCH sent, RESULT and CREDIT received
    int64_t started = 0;
    while (done < total) {
        arb_msg_t *msg;
        if (arb_msg_recv (sock, NULL, &msg) != 0) {
            arb_msg_destroy (&msg);
            continue;
        }
        s_peer_t *peer = s_peer_of (peers, &peer_count, arb_msg_routing_id (msg));
        if (arb_msg_type (msg) == ARB_MSG_REGISTER) {
            arb_msg_t *welcome = arb_msg_new_reply (msg, ARB_MSG_WELCOME);
            arb_msg_welcome (welcome)->heartbeat_ms = 1000;
            arb_msg_welcome (welcome)->liveness_ms = 60000;
            arb_msg_send (&welcome, sock);
        }
        else if (arb_msg_type (msg) == ARB_MSG_CREDIT) {
            peer->credit += arb_msg_credit (msg)->credit;
            messages[2]++;
        }
        else if (arb_msg_type (msg) == ARB_MSG_RESULT) {
            done += (long) arb_msg_result (msg)->results.n;
            messages[1]++;
        }
        arb_msg_destroy (&msg);
        if (!started && peer_count == workers)
            started = zclock_usecs ();
        while (started && peer->credit > 0 && (long) next_id <= total) {
            long left = total - (long) next_id + 1;
            int count = peer->credit < batch ? peer->credit : batch;
            s_dispatch (sock, peer, count < left ? count : (int) left, &next_id);
            messages[0]++;
        }
    }
    double seconds = (double) (zclock_usecs () - started) / 1e6;
    struct rusage self_usage;
    getrusage (RUSAGE_SELF, &self_usage);

    double worker_cpu = 0;
    for (int i = 0; i < workers; i++) {
        kill (pids[i], SIGTERM);
        int status;
        struct rusage usage;
        wait4 (pids[i], &status, 0, &usage);
        worker_cpu += (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
                      + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
    }
    double broker_cpu =
        (double) self_usage.ru_utime.tv_sec + (double) self_usage.ru_utime.tv_usec / 1e6
        + (double) self_usage.ru_stime.tv_sec + (double) self_usage.ru_stime.tv_usec / 1e6;
    printf ("bench: tasks=%ld workers=%d slots=%d batch=%d cpus=%ld\n", total, workers, slots,
            batch, sysconf (_SC_NPROCESSORS_ONLN));
    printf ("bench: %.0f tasks/s end to end (%.2f s)\n", (double) total / seconds, seconds);
    printf ("bench: worker cpu %.2f us/task (all worker processes), fake broker cpu %.2f us/task\n",
            worker_cpu * 1e6 / (double) total, broker_cpu * 1e6 / (double) total);
    printf ("bench: tasks per message: DISPATCH %.1f, RESULT %.1f, CREDIT %.1f\n",
            (double) total / (double) messages[0], (double) total / (double) messages[1],
            (double) total / (double) messages[2]);
    for (int i = 0; i < peer_count; i++)
        zframe_destroy (&peers[i].id);
    zsock_destroy (&router);
    return 0;
}
