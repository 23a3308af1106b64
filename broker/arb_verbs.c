/*  arb_verbs.c — the table from message type to handler and to the roles
    that may send it, and the gates before a handler: the peer's role,
    the journal's room for a write, then a worker's session; see
    arb_verbs.h.
*/

#include "arb_verbs_priv.h"

typedef void (s_request_fn) (const arb_verbs_t *verbs, arb_msg_t *msg);
typedef void (s_worker_fn) (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);

//  One row per request the broker takes: a worker's verbs (worker set)
//  run only for a registered session; the others (request set) for any
//  peer. roles: the roles whose peers may send it (PROTOCOL.md,
//  "Authentication and roles"); admin may send everything. Without
//  --curve every peer counts as admin.
typedef struct {
    arb_msg_type_t type;
    s_request_fn *request;
    s_worker_fn *worker;
    unsigned roles;  //  arb_role_t bits
} s_verb_t;

#define S_CLIENT ARB_ROLE_CLIENT
#define S_WORKER ARB_ROLE_WORKER
#define S_ADMIN  ARB_ROLE_ADMIN

static const s_verb_t s_verbs[] = {
    //  clients
    {ARB_MSG_SUBMIT, arb_verbs_submit, NULL, S_CLIENT},
    {ARB_MSG_STATUS, arb_verbs_status, NULL, S_CLIENT},
    {ARB_MSG_LIST, arb_verbs_list, NULL, S_CLIENT},
    {ARB_MSG_WATCH, arb_verbs_watch, NULL, S_CLIENT},
    {ARB_MSG_CANCEL, arb_verbs_cancel, NULL, S_CLIENT},  //  by ids; by queue or group: admin
    {ARB_MSG_RETRY, arb_verbs_retry, NULL, S_ADMIN},
    {ARB_MSG_DELETE, arb_verbs_delete, NULL, S_ADMIN},
    //  admin
    {ARB_MSG_STATS, arb_verbs_stats, NULL, S_CLIENT},
    {ARB_MSG_QUEUE, arb_verbs_queue, NULL, S_ADMIN},
    {ARB_MSG_LIMIT, arb_verbs_limit, NULL, S_ADMIN},
    {ARB_MSG_LIMITS, arb_verbs_limits, NULL, S_CLIENT},
    {ARB_MSG_EVENTS, arb_verbs_events, NULL, S_CLIENT},
    {ARB_MSG_PEEK, arb_verbs_peek, NULL, S_ADMIN},
    {ARB_MSG_META, arb_verbs_meta, NULL, S_ADMIN},
    {ARB_MSG_PING, arb_verbs_ping, NULL, S_CLIENT | S_WORKER},
    {ARB_MSG_SCHEDULE, arb_verbs_schedule, NULL, S_ADMIN},
    //  workers
    {ARB_MSG_REGISTER, arb_verbs_register, NULL, S_WORKER},
    {ARB_MSG_CREDIT, NULL, arb_verbs_credit, S_WORKER},
    {ARB_MSG_TAKE, NULL, arb_verbs_take, S_WORKER},
    {ARB_MSG_RESULT, NULL, arb_verbs_result, S_WORKER},
    {ARB_MSG_EMIT, NULL, arb_verbs_emit, S_WORKER},
    {ARB_MSG_HEARTBEAT, NULL, arb_verbs_heartbeat, S_WORKER},
    {ARB_MSG_BYE, NULL, arb_verbs_bye, S_WORKER},
};

//  The roles that may send this request: its row's, narrowed by what it
//  asks (a CANCEL of a whole queue or group is the admin's, as a purge
//  is); what names the request in a refusal.
static unsigned
s_roles (const s_verb_t *verb, arb_msg_t *msg, const char **what)
{
    *what = arb_msg_type_name (verb->type);
    if (verb->type == ARB_MSG_CANCEL) {
        arb_cancel_body_t *body = arb_msg_cancel (msg);
        if ((body->queue && *body->queue) || (body->group && *body->group)) {
            *what = "CANCEL by queue or group";
            return S_ADMIN;
        }
    }
    return verb->roles;
}

//  Whether role may send requests of this type at all (by its row).
static bool
s_may (arb_msg_type_t type, arb_role_t role)
{
    for (size_t i = 0; i < sizeof (s_verbs) / sizeof (s_verbs[0]); i++)
        if (s_verbs[i].type == type)
            return ((s_verbs[i].roles | S_ADMIN) & (unsigned) role) != 0;
    return false;
}

//  Whether role may send msg; if not, refuses it (403) with a reason that
//  says what it needs and what the peer has.
static bool
s_permitted (const arb_verbs_t *verbs, const s_verb_t *verb, arb_msg_t *msg, arb_role_t role)
{
    const char *what;
    unsigned roles = s_roles (verb, msg, &what) | S_ADMIN;
    if (roles & (unsigned) role)
        return true;
    const char *need = (roles & S_CLIENT) && (roles & S_WORKER) ? "a client, worker or admin"
                       : roles & S_CLIENT                       ? "a client or admin"
                       : roles & S_WORKER                       ? "a worker or admin"
                                                                : "an admin";
    if (role == ARB_ROLE_NONE)
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_FORBIDDEN,
                           "%s needs %s certificate; this peer's certificate has no role the "
                           "broker knows (role = client, worker or admin in its metadata), or "
                           "is no longer among the broker's allowed certificates",
                           what, need);
    else
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_FORBIDDEN,
                           "%s needs %s certificate; this peer's certificate has the role %s", what,
                           need, arb_role_name (role));
    return false;
}

//  Whether a request needs the journal to take a write: while the disk is
//  full such a request is refused (507) before anything changes. The
//  others are served from memory and reads; RESULT and BYE change memory
//  only then (arb_verbs_result, arb_life_set_journal_full), and TAKE
//  waits with dispatch, since the end of any lease it made would need a
//  write.
static bool
s_writes (arb_msg_t *msg)
{
    switch (arb_msg_type (msg)) {
        case ARB_MSG_SUBMIT:
        case ARB_MSG_CANCEL:
        case ARB_MSG_RETRY:
        case ARB_MSG_DELETE:
        case ARB_MSG_QUEUE:
        case ARB_MSG_LIMIT:
        case ARB_MSG_TAKE:
            return true;
        case ARB_MSG_META:
            return !streq (arb_msg_meta (msg)->op, "get")
                   && !streq (arb_msg_meta (msg)->op, "list");
        case ARB_MSG_SCHEDULE:
            return !streq (arb_msg_schedule (msg)->op, "list");
        default:
            return false;
    }
}

//  The registered session a worker's verb comes from, renewed; or NULL
//  after refusing the request (410: the worker must REGISTER again). A
//  RESULT from a peer that has not registered is refused like any other
//  verb, whatever lease it names: a worker that kept the result of a task
//  it ran before the broker restarted claims the task in its REGISTER
//  (arb_sched_can_adopt) and sends the result again.
static arb_session_t *
s_session (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_sched_t *sched = arb_life_sched (verbs->life);
    size_t peer_size;
    const uint8_t *peer = arb_msg_peer (msg, &peer_size);
    arb_session_t *session = arb_sched_session (sched, peer, peer_size);
    if (!session || !arb_session_registered (session)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_UNKNOWN_WORKER,
                           "unknown worker: send REGISTER again");
        return NULL;
    }
    //  the clock now, not the turn's: read late in a long turn, a message
    //  came late in it (the broker judges silence on this)
    arb_session_touch (session, (uint64_t) zclock_mono ());
    return session;
}

void
arb_verbs_handle (const arb_verbs_t *verbs, arb_msg_t *msg, arb_role_t role)
{
    const s_verb_t *verb = NULL;
    for (size_t i = 0; i < sizeof (s_verbs) / sizeof (s_verbs[0]) && !verb; i++)
        if (s_verbs[i].type == arb_msg_type (msg))
            verb = &s_verbs[i];
    if (verb && !s_permitted (verbs, verb, msg, role))
        return;
    if (verb && verbs->journal_full && s_writes (msg)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_JOURNAL_FULL, ARB_JOURNAL_FULL_REASON);
        return;
    }
    if (verb && verb->request)
        verb->request (verbs, msg);
    else if (verb) {
        arb_session_t *session = s_session (verbs, msg);
        if (session)
            verb->worker (verbs, session, msg);
    }
    else
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "%s is not a request the broker takes",
                           arb_msg_type_name (arb_msg_type (msg)));
}

void
arb_verbs_role_changed (const arb_verbs_t *verbs,
                        zframe_t *identity,
                        arb_role_t role,
                        const char *name)
{
    //  What it holds, by the request that made it: a session (REGISTER),
    //  watches (WATCH, or SUBMIT's watch), an event subscription (EVENTS).
    arb_session_t *session =
        s_may (ARB_MSG_REGISTER, role)
            ? NULL
            : arb_sched_session (arb_life_sched (verbs->life), zframe_data (identity),
                                 zframe_size (identity));
    size_t watches = s_may (ARB_MSG_WATCH, role) ? 0 : arb_life_unwatch (verbs->life, identity);
    bool events =
        !s_may (ARB_MSG_EVENTS, role) && arb_outbox_is_subscribed (verbs->outbox, identity);
    if (events)
        arb_outbox_subscribe (verbs->outbox, identity, NULL, false);
    if (!session && !watches && !events)
        return;
    zsys_notice ("broker: peer shut out, its certificate no longer allows what it held "
                 "name=%s role=%s worker=%s leases=%zu watches=%zu events=%s",
                 name, arb_role_name (role), session ? arb_session_name (session) : "-",
                 session ? arb_session_lease_count (session) : 0, watches, events ? "yes" : "no");
    if (session)
        arb_life_shut_out (verbs->life, session);
}

bool
arb_verbs_peer_holds (const arb_verbs_t *verbs, zframe_t *identity)
{
    return arb_sched_session (arb_life_sched (verbs->life), zframe_data (identity),
                              zframe_size (identity))
           || arb_life_is_watching (verbs->life, identity)
           || arb_outbox_is_subscribed (verbs->outbox, identity);
}
