/*  arb_verbs_priv.h — the verb handlers, for the table in arb_verbs.c.

    Each takes a decoded request (borrowed) and answers it through the
    outbox; a worker's verb also gets the worker's registered session.
    Nothing but the table calls them. Not for use outside arb_verbs*.c.
*/

#ifndef ARB_VERBS_PRIV_H
#define ARB_VERBS_PRIV_H

#include "arb_verbs.h"

//  arb_verbs_client.c
void arb_verbs_submit (const arb_verbs_t *verbs, arb_msg_t *msg);

//  Checks the options of a task spec against their bounds (SUBMIT, and a
//  schedule's template). Returns 0, or -1 with the reason in why: the
//  field and what is wrong with it ("retries: 5000 is over the limit of
//  1000"); a caller with many specs puts the spec's place in front.
int arb_verbs_check_spec (const arb_verbs_t *verbs,
                          const arb_task_spec_t *spec,
                          char *why,
                          size_t size);
void arb_verbs_status (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_list (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_watch (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_cancel (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_retry (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_delete (const arb_verbs_t *verbs, arb_msg_t *msg);

//  arb_verbs_admin.c
void arb_verbs_stats (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_queue (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_limit (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_limits (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_events (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_peek (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_meta (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_ping (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_schedule (const arb_verbs_t *verbs, arb_msg_t *msg);

//  arb_verbs_worker.c (REGISTER opens the session the others need)
void arb_verbs_register (const arb_verbs_t *verbs, arb_msg_t *msg);
void arb_verbs_credit (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);
void arb_verbs_take (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);
void arb_verbs_result (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);
void arb_verbs_emit (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);
void arb_verbs_heartbeat (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);
void arb_verbs_bye (const arb_verbs_t *verbs, arb_session_t *session, arb_msg_t *msg);

#endif
