/*  arb_broker.h — arbiterd's engine: one event loop, one ROUTER socket,
    the journal and the scheduler.

    The loop runs in turns. A turn reads every message waiting on the
    socket (up to a budget), applies each one to the scheduler and the
    journal inside one transaction, fires due timers, checks worker
    liveness, then commits once (group commit) and only then sends the
    turn's replies, results and events: no reply that promises durability
    leaves before its data is on disk. Last comes dispatch: ready tasks are
    matched with worker credit and sent, one DISPATCH per worker per pass;
    tasks that were ready at the last commit go before the commit too (a
    hand-out writes nothing), so that a worker's next tasks do not wait
    for the fsync (docs/broker.md, "The loop and group commit").

    If a commit fails its memory may say more than the journal does, and
    the only safe state to go on from is the journal's. When the disk is
    at fault (no space, an I/O error writing) the broker rebuilds its
    memory from the journal as a restart would, without exiting, answers
    the turn's requests 507, and serves what needs no write until a test
    write works again (docs/broker.md, "Disk full"); any other failure
    stops it (arb_broker_run returns -1), and a restart rebuilds. Either
    way nothing that was acknowledged is lost, and nothing that was not
    stays half done; what was not acknowledged, callers send again.

    The code is four layers that call only downward: this loop
    (arb_broker.c), the verbs (arb_verbs.h), the task lifecycle
    (arb_life.h, with arb_settings.h) and the outbox (arb_outbox.h); see
    docs/broker.md, "Layers".

    Everything runs in the thread that calls arb_broker_run.
*/

#ifndef ARB_BROKER_H
#define ARB_BROKER_H

#include "arb_journal.h"
#include "arb_wire.h"

typedef struct _arb_broker_t arb_broker_t;

typedef struct {
    const char *endpoint;  //  ZeroMQ endpoint to bind
    const char *db_path;   //  SQLite journal
    arb_sync_t sync;
    bool task_log;               //  plain turns commit to the task log (arb_journal_set_log)
    size_t max_payload;          //  bytes per payload or result frame
    uint32_t heartbeat_ms;       //  workers and broker send this often
    uint32_t liveness_ms;        //  a worker silent this long is dead
    uint64_t aging_ms;           //  ms of waiting worth one priority level; 0 strict
    uint64_t cache_bytes;        //  payloads kept in memory for dispatch
    size_t hot_max;              //  ready tasks a queue keeps in memory; 0: ARB_HOT_MAX
    uint32_t max_lost;           //  leases lost before a task is quarantined
    uint32_t max_head_failures;  //  failures under the head policy before quarantine
    uint64_t retention_ms;       //  finished tasks kept this long by default
    uint64_t dead_retention_ms;  //  dead tasks kept this long by default
    uint32_t recovery_ms;        //  after start, workers have this long to claim running tasks
    const char *curve_dir;       //  CURVE and roles (arb_auth.h): key pair and allowed/; NULL: off
    bool insecure;               //  without curve_dir, bind an endpoint others can reach anyway
    arb_wire_mode_t transport;   //  who answers a tcp:// endpoint: the loop (auto) or a ROUTER
} arb_broker_config_t;

#define ARB_RECOVERY_AUTO UINT32_MAX  //  recovery_ms: heartbeat_ms + 2.5 s

//  Fills config with the defaults.
void arb_broker_config_defaults (arb_broker_config_t *config);

//  The checks of config to make before arb_broker_new, which does not make
//  them: arbiterd makes them for --check-config and a start alike, so that
//  both refuse the same settings with the same exit status (2). Without
//  curve_dir, an endpoint that other hosts can reach is refused unless
//  config->insecure (which is warned about). 0, or -1 after logging why.
//  Binds, opens and connects nothing.
int arb_broker_config_check (const arb_broker_config_t *config);

//  Opens the journal, rebuilds the scheduler from it, binds the socket
//  (with CURVE and roles when config->curve_dir is set); config is one
//  arb_broker_config_check passed. Returns NULL after logging why.
arb_broker_t *arb_broker_new (const arb_broker_config_t *config);

void arb_broker_destroy (arb_broker_t **self_p);

//  Runs until SIGINT/SIGTERM (zsys_interrupted). Returns 0 after a clean
//  stop (the journal full: its stop record may be missing), -1 if the
//  journal failed other than by a full disk.
int arb_broker_run (arb_broker_t *self);

//  One turn of the loop, after waiting up to timeout_ms for a message or a
//  timer: for tests, which drive the broker themselves. Returns 0, or -1
//  once the journal failed and the broker must stop.
int arb_broker_step (arb_broker_t *self, int timeout_ms);

//  Whether the journal takes no writes now (the disk was full or failed,
//  and no test write has worked since).
bool arb_broker_is_journal_full (arb_broker_t *self);

#endif
