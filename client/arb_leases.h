/*  arb_leases.h — the tasks a worker session holds, by task id: the lease
    each one runs under, and the outcome its holder gave it until the
    broker acknowledges it.

    A task comes in with its dispatch (add) and leaves when the broker
    acknowledges its outcome after its commit (acked: RESULT_OK, stored or
    refused), when the broker ends its lease (drop, on STOP), or when a new
    session does not get it back (adopt). The holder settles a task by its
    id alone (settle); the leases quote the lease, so the holder never sees
    one. An outcome taken for a RESULT (results) stays until acknowledged;
    one not acknowledged in time goes out again (resend): a lease ends with
    the outcome it takes, so the broker never takes one twice.

    Across sessions. A REGISTER claims every task held (claim fills its
    `held`), settled or not; claimed tasks keep their outcome until the
    WELCOME of that REGISTER answers (adopt): each task it lists under
    `adopted` carries on under its new lease, and its outcome, if it has
    one, goes out then; every other claimed task is no longer ours and is
    named to the holder. A task that comes in after the REGISTER (a
    dispatch that was on its way) belongs to the session that REGISTER
    renews and is not claimed. Claiming takes back every outcome sent and
    not acknowledged, to go out again under the lease the WELCOME gives.
    A task whose outcome is routed (EMIT items went out under its lease,
    arb_worker) is never claimed: those items died with the lease.

    Bounds: at most ARB_LEASES_MAX tasks (what one REGISTER can claim);
    memory is the tasks' records and the results settled and not
    acknowledged yet (arb_leases_bytes). Not thread-safe: one owner
    (arb_link, arb_worker), on its thread.
*/

#ifndef ARB_LEASES_H
#define ARB_LEASES_H

#include "arb_proto.h"

#define ARB_LEASES_MAX          ARB_LIST_MAX  //  tasks held at most
#define ARB_LEASES_RESULT_ITEMS 1000          //  a RESULT message carries at most this many
#define ARB_LEASES_RESULT_BYTES (32u << 20)   //  ... and stops growing past this many result bytes

typedef struct _arb_leases_t arb_leases_t;

//  Called with each claimed task the broker did not give back (adopt).
typedef void (arb_leases_lost_fn) (void *arg, uint64_t id);

//  Creates an empty table.
arb_leases_t *arb_leases_new (void);

//  Destroys the table, with the outcomes it still holds. Accepts NULL;
//  nulls the caller's pointer.
void arb_leases_destroy (arb_leases_t **self_p);

//  Holds a dispatched task under its lease, from subscription sub (0 for a
//  TAKE). A task held settled under another lease (its outcome sent, not
//  acknowledged yet) is replaced: the broker is done with that lease.
//  Returns 0, or -1 if the task is held otherwise or the table is full
//  (ARB_LEASES_MAX).
int arb_leases_add (arb_leases_t *self, uint64_t id, uint64_t lease, uint32_t sub);

//  Number of tasks held, settled or not.
size_t arb_leases_size (arb_leases_t *self);

//  Whether the task is held and not settled yet.
bool arb_leases_is_open (arb_leases_t *self, uint64_t id);

//  Gives a held task its outcome: ARB_OUTCOME_OK with result (taken, even
//  on failure; NULL: empty), _FAIL with error (copied as a wire string;
//  NULL: "failed"), or _RELEASE. Returns 0, or -1 if the task is not held
//  or was settled already.
int arb_leases_settle (
    arb_leases_t *self, uint64_t id, arb_outcome_t outcome, const char *error, zframe_t **result_p);

//  Settles a task that was never the holder's to see as a release, under
//  the lease given (a dispatch nobody takes). Returns 0, or -1 if the id
//  is held already or the table is full.
int arb_leases_release (arb_leases_t *self, uint64_t id, uint64_t lease);

//  Forgets a task whose lease the broker ended (STOP), if it is held under
//  that lease. Returns whether it was; its outcome, if any, is dropped.
bool arb_leases_drop (arb_leases_t *self, uint64_t id, uint64_t lease);

//  Forgets a task held under any lease (the broker dispatched it again: it
//  is done with the lease held). Returns whether it was held.
bool arb_leases_forget (arb_leases_t *self, uint64_t id);

//  Marks a settled task's outcome as routed: EMIT items went out under
//  its lease, so it goes out with `routed` and is never claimed.
void arb_leases_set_routed (arb_leases_t *self, uint64_t id);

//  Whether outcomes of unclaimed tasks wait to go out.
bool arb_leases_has_results (arb_leases_t *self);

//  Builds one RESULT (with request id reqid) of waiting outcomes, oldest
//  first, at most ARB_LEASES_RESULT_ITEMS of them and not much more than
//  ARB_LEASES_RESULT_BYTES (copies: the tasks keep theirs until
//  acknowledged), sent at now_ms (monotonic). The caller owns it. Returns
//  NULL if no outcome waits.
arb_msg_t *arb_leases_results (arb_leases_t *self, uint32_t reqid, int64_t now_ms);

//  The broker's answer to RESULT reqid: a RESULT_OK (after its commit),
//  or an ERROR other than 410 (it refused the message whole): the
//  outcomes that message carried are done with, and their tasks
//  forgotten. Returns how many.
size_t arb_leases_acked (arb_leases_t *self, uint32_t reqid);

//  Outcomes sent at least after_ms before now_ms and not acknowledged
//  (their RESULT or its answer was lost with a connection) wait to go out
//  again. Returns how many.
size_t arb_leases_resend (arb_leases_t *self, int64_t now_ms, int64_t after_ms);

//  Monotonic ms at which the oldest outcome not acknowledged is due again
//  (arb_leases_resend with the same after_ms), or INT64_MAX.
int64_t arb_leases_resend_at (arb_leases_t *self, int64_t after_ms);

//  Bytes of results held (settled, not acknowledged yet).
size_t arb_leases_bytes (arb_leases_t *self);

//  Claims every task held in a REGISTER being built (appended to its
//  `held` list), but those routed, which are forgotten.
void arb_leases_claim (arb_leases_t *self, arb_msg_t *reg);

//  Applies the WELCOME of the claiming REGISTER: adopted tasks carry on
//  under their new lease (their outcomes wait to go out); a task adopted
//  but no longer held goes back to its queue (a release); every other
//  claimed task is forgotten and given to lost (called with arg).
void arb_leases_adopt (arb_leases_t *self,
                       arb_welcome_body_t *welcome,
                       arb_leases_lost_fn *lost,
                       void *arg);

#endif
