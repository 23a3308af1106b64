/*  arb_verbs.c — the table from message type to handler, and the gate
    before a worker's verbs; see arb_verbs.h.
*/

#include "arb_verbs_priv.h"

typedef void (s_request_fn) (const arb_verbs_t *verbs, arb_msg_t *msg);
typedef void (s_worker_fn) (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);

//  One row per request the broker takes: a worker's verbs (worker set)
//  run only for a registered session; the others (request set) for any
//  peer.
typedef struct {
    arb_msg_type_t type;
    s_request_fn *request;
    s_worker_fn *worker;
} s_verb_t;

static const s_verb_t s_verbs[] = {
    //  clients
    {ARB_MSG_SUBMIT, arb_verbs_submit, NULL},
    {ARB_MSG_STATUS, arb_verbs_status, NULL},
    {ARB_MSG_LIST, arb_verbs_list, NULL},
    {ARB_MSG_WATCH, arb_verbs_watch, NULL},
    {ARB_MSG_CANCEL, arb_verbs_cancel, NULL},
    {ARB_MSG_RETRY, arb_verbs_retry, NULL},
    {ARB_MSG_DELETE, arb_verbs_delete, NULL},
    //  admin
    {ARB_MSG_STATS, arb_verbs_stats, NULL},
    {ARB_MSG_QUEUE, arb_verbs_queue, NULL},
    {ARB_MSG_LIMIT, arb_verbs_limit, NULL},
    {ARB_MSG_EVENTS, arb_verbs_events, NULL},
    {ARB_MSG_PEEK, arb_verbs_peek, NULL},
    {ARB_MSG_META, arb_verbs_meta, NULL},
    {ARB_MSG_PING, arb_verbs_ping, NULL},
    {ARB_MSG_SCHEDULE, arb_verbs_schedule, NULL},
    //  workers
    {ARB_MSG_REGISTER, arb_verbs_register, NULL},
    {ARB_MSG_CREDIT, NULL, arb_verbs_credit},
    {ARB_MSG_TAKE, NULL, arb_verbs_take},
    {ARB_MSG_RESULT, NULL, arb_verbs_result},
    {ARB_MSG_EMIT, NULL, arb_verbs_emit},
    {ARB_MSG_HEARTBEAT, NULL, arb_verbs_heartbeat},
    {ARB_MSG_BYE, NULL, arb_verbs_bye},
};

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
    arb_session_t *session = arb_sched_session (sched, arb_msg_routing_id (msg));
    if (!session || !arb_session_registered (session)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_UNKNOWN_WORKER,
                           "unknown worker: send REGISTER again");
        return NULL;
    }
    arb_session_touch (session, verbs->clock->mono_ms);
    return session;
}

void
arb_verbs_handle (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    const s_verb_t *verb = NULL;
    for (size_t i = 0; i < sizeof (s_verbs) / sizeof (s_verbs[0]) && !verb; i++)
        if (s_verbs[i].type == arb_msg_type (msg))
            verb = &s_verbs[i];
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
