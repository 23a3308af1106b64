/*  arb_verbs_worker.c — the worker verbs: REGISTER, CREDIT, TAKE, RESULT,
    EMIT, HEARTBEAT, BYE. See arb_verbs.h for what a handler may do, and
    arb_life.h for what becomes of a task's attempt.

    Every verb but REGISTER comes from a registered session; the table in
    arb_verbs.c finds it (and renews its leases) before the handler runs.
*/

#include "arb_verbs_priv.h"

void
arb_verbs_register (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_register_body_t *body = arb_msg_register (msg);
    for (size_t i = 0; i < body->handles.n; i++)
        if (!*body->handles.v[i]) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "handles[%zu]: must not be empty", i);
            return;
        }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_WELCOME);
    arb_welcome_body_t *out = arb_msg_welcome (reply);
    out->heartbeat_ms = verbs->heartbeat_ms;
    out->liveness_ms = verbs->liveness_ms;
    out->epoch = arb_life_epoch (verbs->life);
    out->max_payload = verbs->max_payload;
    arb_session_t *session =
        arb_life_register (verbs->life, arb_msg_routing_id (msg), arb_msg_reqid (msg), body, reply);
    arb_outbox_reply (verbs->outbox, &reply);
    arb_session_sent (session, verbs->clock->mono_ms);
}

//  Whether a session may open one more subscription naming count queues:
//  one peer holds at most ARB_SESSION_SUBS_MAX subscriptions naming
//  ARB_SESSION_QUEUES_MAX queues in all. 0, or -1 after refusing msg.
static int
s_check_new_sub (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg, size_t count)
{
    size_t subs = arb_session_sub_count (session), names = count;
    for (size_t i = 0; i < subs; i++)
        names += arb_session_sub_at (session, i)->queue_count;
    if (subs >= ARB_SESSION_SUBS_MAX) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_TOO_LARGE,
                           "sub: this session holds %zu subscriptions, the limit", subs);
        return -1;
    }
    if (names > ARB_SESSION_QUEUES_MAX) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_TOO_LARGE,
                           "queues: this session's subscriptions would name %zu queues, over the "
                           "limit of %d",
                           names, ARB_SESSION_QUEUES_MAX);
        return -1;
    }
    return 0;
}

void
arb_verbs_credit (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    arb_credit_body_t *body = arb_msg_credit (msg);
    for (size_t i = 0; i < body->queues.n; i++)
        if (!*body->queues.v[i]) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "queues[%zu]: must not be empty", i);
            return;
        }
    arb_sub_t *sub = arb_session_sub (session, body->sub);
    if (!sub && !body->cancel && body->queues.n
        && s_check_new_sub (verbs, session, msg, body->queues.n))
        return;
    //  credit past the cap is not counted: it would only let one peer
    //  take the whole backlog into its socket at once
    int64_t credit = sub ? sub->credit : 0;
    if (credit + body->credit > ARB_CREDIT_MAX)
        body->credit =
            (int32_t) (ARB_CREDIT_MAX - (credit < ARB_CREDIT_MAX ? credit : ARB_CREDIT_MAX));
    if (arb_life_credit (verbs->life, session, body))
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "queues: subscription %u is new and names no queue", body->sub);
}

void
arb_verbs_take (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    arb_take_body_t *body = arb_msg_take (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_DISPATCH);
    uint32_t max = body->max ? body->max : 1;
    arb_life_take (verbs->life, session, body->queue, max < ARB_TAKE_MAX ? max : ARB_TAKE_MAX,
                   reply);
    arb_outbox_reply (verbs->outbox, &reply);
}

//  The journal is full: no outcome can be stored. A worker registered
//  with acks keeps its results until a RESULT_OK and sends them again:
//  its tasks stay leased to it, and no answer goes. One that forgets its
//  results once sent has each task go back to the head of its queue, no
//  attempt counted, to run again once space returns (at least once).
static void
s_result_unstored (const arb_verbs_t *verbs, arb_session_t *session, arb_result_body_t *body)
{
    if (arb_session_acks (session))
        return;
    size_t given_back = 0;
    for (size_t i = 0; i < body->results.n; i++) {
        arb_task_t *task = arb_life_leased (verbs->life, session, &body->results.v[i]);
        if (task) {
            arb_life_release (verbs->life, task);
            given_back++;
        }
    }
    if (given_back)
        zsys_notice ("broker: results not stored (journal full); their tasks run again later "
                     "worker=%s tasks=%zu",
                     arb_session_name (session), given_back);
}

//  Adds an id to a RESULT_OK's list (NULL: the worker asked for none).
static void
s_ack (arb_msg_t *ack, arb_ids_t *list, uint64_t id)
{
    if (ack)
        *(uint64_t *) arb_msg_grow (ack, list, sizeof (uint64_t), 1) = id;
}

//  A worker registered with acks keeps each result until the RESULT_OK
//  that answers its RESULT, which goes out after the turn's commit: the
//  outcomes it names as stored are in the journal, and those refused
//  (their lease had ended) will never be taken, so the worker forgets
//  both. One it does not get (the broker died before its commit, the
//  connection broke) it sends again, claiming its task first if it
//  registers again; the lease makes that safe, since a lease ends with
//  the outcome it took.
void
arb_verbs_result (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    arb_result_body_t *body = arb_msg_result (msg);
    if (verbs->journal_full) {
        s_result_unstored (verbs, session, body);
        return;
    }
    arb_msg_t *ack = arb_session_acks (session) ? arb_msg_new_reply (msg, ARB_MSG_RESULT_OK) : NULL;
    arb_result_ok_body_t *acked = ack ? arb_msg_result_ok (ack) : NULL;
    for (size_t i = 0; i < body->results.n && !arb_life_is_halted (verbs->life); i++) {
        arb_result_item_t *item = &body->results.v[i];
        arb_task_t *task = arb_life_leased (verbs->life, session, item);
        if (!task) {
            //  late: its lease had ended
            s_ack (ack, acked ? &acked->refused : NULL, item->id);
            continue;
        }
        s_ack (ack, acked ? &acked->stored : NULL, item->id);
        size_t size = item->result ? zframe_size (item->result) : 0;
        if (item->outcome == ARB_OUTCOME_OK && size > verbs->max_payload) {
            //  read past the payload limit (the codec's max_result) so that
            //  only this task fails, not the whole RESULT
            char why[128];
            snprintf (why, sizeof (why), "result of %zu bytes is over the %zu-byte limit", size,
                      verbs->max_payload);
            arb_life_attempt_failed (verbs->life, &task, why);
        }
        else if (item->outcome == ARB_OUTCOME_OK)
            arb_life_succeed (verbs->life, &task, &item->result);
        else if (item->outcome == ARB_OUTCOME_RELEASE)
            arb_life_release (verbs->life, task);
        else {
            //  the error goes to the journal and to every client that asks:
            //  a stray byte in it must not make their replies unreadable
            char error[ARB_TEXT_MAX + 1];
            const char *text = item->error && *item->error ? item->error : "failed";
            if (item->outcome != ARB_OUTCOME_FAIL)
                text = "worker sent an unknown outcome";
            arb_text_copy (error, text, strlen (text));
            arb_life_attempt_failed (verbs->life, &task, error);
        }
    }
    if (ack)
        arb_outbox_reply (verbs->outbox, &ack);
}

void
arb_verbs_emit (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    arb_life_emit (verbs->life, session, arb_msg_emit (msg));
}

void
arb_verbs_heartbeat (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    arb_heartbeat_body_t *body = arb_msg_heartbeat (msg);
    arb_session_set_busy (session, body->busy);
    if (arb_life_check_busy (verbs->life, session, body->busy, body->mark))
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_UNKNOWN_WORKER,
                           "your leases are out of step with the broker's: send REGISTER again");
}

void
arb_verbs_bye (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg)
{
    (void) msg;
    arb_life_end_session (verbs->life, session, ARB_END_BYE);
}
