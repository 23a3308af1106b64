/*  arb_verbs.h — the broker's verbs: one handler per request type.

    The broker's third layer (docs/broker.md, "Layers"). The loop hands
    every decoded request to arb_verbs_handle with the role of the peer
    that sent it (arb_auth.h), which finds its handler in one table
    (arb_verbs.c) by message type. The same table says which roles may
    send each request (PROTOCOL.md, "Authentication and roles"); a peer
    without one of them gets 403 and its request changes nothing. A
    handler parses and checks
    its whole request first, refusing it with a reason naming the field,
    so a refused request changes nothing; then it acts through the layers
    below: the task lifecycle (arb_life) for every change of a task, a
    lease or a session, the settings (arb_settings) for queue settings,
    name limits and metadata, the outbox for its reply. It may read the
    scheduler (arb_life_sched) and query the journal, and note a worker
    session's traffic (arb_session_touch, _sent, _set_busy). Handlers
    never call each other.

    The handlers are grouped by caller:
      arb_verbs_client.c  SUBMIT, STATUS, LIST, WATCH, CANCEL, RETRY, DELETE
      arb_verbs_admin.c   STATS, QUEUE, LIMIT, EVENTS, PEEK, META, PING,
                          SCHEDULE
      arb_verbs_worker.c  REGISTER, CREDIT, TAKE, RESULT, EMIT, HEARTBEAT, BYE
    A new verb is a handler in the file of its caller, declared in
    arb_verbs_priv.h, and a row in the table, with the roles that may
    send it.

    Runs in the loop thread.
*/

#ifndef ARB_VERBS_H
#define ARB_VERBS_H

#include "arb_curve.h"
#include "arb_life.h"

//  What the handlers work with; made by the loop, all borrowed.
typedef struct {
    arb_life_t *life;          //  every change of a task, lease or session
    arb_outbox_t *outbox;      //  replies, refusals, event subscriptions
    arb_journal_t *journal;    //  read-only queries; writes go through arb_life, arb_settings
    const arb_clock_t *clock;  //  the turn's time
    uint32_t heartbeat_ms;     //  told to workers in WELCOME
    uint32_t liveness_ms;      //  told to workers in WELCOME
    size_t max_payload;        //  told to workers in WELCOME; a larger result fails its task
    uint64_t started_ms;       //  Unix ms the broker started (STATS)
    bool journal_full;         //  the journal takes no writes: requests that write get 507
} arb_verbs_t;

//  The reason of a 507: what a client sees of a full disk.
#define ARB_JOURNAL_FULL_REASON                                                         \
    "journal: disk full; the broker takes no writes until space is freed (nothing was " \
    "changed: send it again later)"

//  Handles one decoded request (borrowed) from a peer of the given role
//  (ARB_ROLE_ADMIN for every peer of a broker without --curve): a request
//  its role may not send is refused (403); while the journal is full, one
//  that writes is refused (507); a worker's verbs need its registered
//  session (else 410, unknown worker); a type the broker does not take is
//  refused.
void arb_verbs_handle (const arb_verbs_t *verbs, arb_msg_t *msg, arb_role_t role);

//  The peer of routing id identity (borrowed) now has role (its
//  certificate was removed from allowed/, or given another role): ends
//  what the broker holds for it that the role may no longer ask for, by
//  the table's rows: its worker session (REGISTER; its leases go back to
//  their queues, no attempt counted and none lost: ARB_END_SHUT_OUT), its
//  watches (WATCH), its event subscription (EVENTS). The broker then
//  sends it nothing unasked; its next request is refused (403). Logs one
//  line, naming the certificate (name), if it ended anything.
void arb_verbs_role_changed (const arb_verbs_t *verbs,
                             zframe_t *identity,
                             arb_role_t role,
                             const char *name);

//  Whether the broker holds anything for the peer of identity (borrowed):
//  a worker session, a watch or an event subscription.
bool arb_verbs_peer_holds (const arb_verbs_t *verbs, zframe_t *identity);

#endif
