/*  arb_watchlist.h — the tasks one connection watches: each reported once,
    and the watches kept alive across broker restarts.

    Watches live in the broker's memory only. While ids are watched and not
    reported yet, the watchlist keeps them alive on its own, every interval
    (default ARB_WATCHLIST_INTERVAL_MS) from arb_watchlist_tick: it pings
    the broker and sends WATCH again for every outstanding id when the
    broker's epoch changes (it restarted: PONG and WELCOME tell the epoch)
    or when nothing at all has arrived for a whole interval (a DONE may
    have been lost: a "probe"). The broker treats a repeated WATCH as
    idempotent and reports finished tasks again; the watchlist drops the
    duplicates, so each task is reported exactly once.

    A SUBMIT with watch names its ids only in its SUBMITTED, and the broker
    may report an already finished task (a re-submitted key) before that
    reply: while such a submit is pending, reports of ids not watched yet
    wait ("limbo"); SUBMITTED adds its ids and runs the limbo through the
    filter again; once no such submit is pending, the rest of the limbo was
    duplicates and goes.

    The owner (arb_client, arb_link) owns the socket: it tells the
    watchlist about every request before it goes out (track) and every
    message that arrives (learn, settle), runs its timer (tick), and gives
    it two functions: one that sends the watchlist's own requests (PING,
    WATCH; built with request id 0, which the owner replaces with one of
    its own) and one that takes the reports, as DONE messages holding only
    the records to report. Not thread-safe: the owner's thread only.
*/

#ifndef ARB_WATCHLIST_H
#define ARB_WATCHLIST_H

#include "arb_proto.h"

#define ARB_WATCHLIST_INTERVAL_MS 2000  //  default keep-alive interval

//  arb_done_task_t.state of a watched id the broker knows nothing about (it
//  never existed, or its retention ran out): reported so that a waiter
//  never waits for it forever.
#define ARB_DONE_UNKNOWN 0

typedef struct _arb_watchlist_t arb_watchlist_t;

//  Sends a request the watchlist makes (PING, WATCH) with a request id of
//  the owner's; takes the request. Returns 0, or -1 if it was not sent.
typedef int (arb_watchlist_send_fn) (void *arg, arb_msg_t **request_p);

//  Takes a DONE message whose every record is a report to hand out.
typedef void (arb_watchlist_report_fn) (void *arg, arb_msg_t **done_p);

//  Creates an empty watchlist that sends through send and reports through
//  report, both called with arg.
arb_watchlist_t *
arb_watchlist_new (arb_watchlist_send_fn *send, arb_watchlist_report_fn *report, void *arg);

//  Destroys the watchlist. Accepts NULL; nulls the caller's pointer.
void arb_watchlist_destroy (arb_watchlist_t **self_p);

//  Keep-alive interval, in ms (> 0).
void arb_watchlist_set_interval (arb_watchlist_t *self, int interval_ms);

//  Number of watched ids not reported yet.
size_t arb_watchlist_size (arb_watchlist_t *self);

//  Whether anything is still to be reported: watched ids, or a SUBMIT with
//  watch whose SUBMITTED has not come.
bool arb_watchlist_is_outstanding (arb_watchlist_t *self);

//  Notes what a request means before it goes out: the ids of a WATCH are
//  watched from now on, and a SUBMIT with watch will name ids in its
//  reply. Pings the broker if its epoch is not known yet. Returns whether
//  the request starts watches.
bool arb_watchlist_track (arb_watchlist_t *self, arb_msg_t *request);

//  A request that will never be answered (not sent, timed out, malformed
//  reply, lost with its connection): a SUBMIT with watch names no ids.
//  Reports waiting for it may come out at once.
void arb_watchlist_untrack (arb_watchlist_t *self, uint32_t reqid);

//  Applies what a message from the broker tells (call for every message
//  received; msg_p NULL, or *msg_p NULL, for one that could not be
//  decoded: it still shows the broker is there). ours: it answers one of
//  the owner's own requests (the watchlist's among them), so it is no news
//  from the broker. Takes a DONE (nulls *msg_p): the records of watched
//  ids are reported, the rest parked or dropped. Leaves any other message
//  to the owner, who then files it and calls arb_watchlist_settle.
void arb_watchlist_learn (arb_watchlist_t *self, arb_msg_t **msg_p, bool ours);

//  Reports what the message just learnt made reportable (the parked
//  reports of a SUBMITTED's ids), so that they follow the reply that
//  named their ids.
void arb_watchlist_settle (arb_watchlist_t *self);

//  When arb_watchlist_tick is due next (ms, zclock_mono), or INT64_MAX
//  while nothing is watched.
int64_t arb_watchlist_tick_at (arb_watchlist_t *self);

//  The keep-alive, when due: a PING (again, if the last one is older than
//  timeout_ms), and a WATCH of everything if nothing but answers to the
//  owner's own requests arrived for a whole interval.
void arb_watchlist_tick (arb_watchlist_t *self, int64_t now, int timeout_ms);

//  When the probe (a silent interval's WATCH) went out, if nothing has
//  arrived since (ms, zclock_mono), else 0.
int64_t arb_watchlist_probe_at (arb_watchlist_t *self);

//  Forgets the unanswered probe, so that the next silent interval probes
//  again.
void arb_watchlist_forget_probe (arb_watchlist_t *self);

//  Sends WATCH again for every watched id now (the owner's connection was
//  replaced: the reports would go to the old one).
void arb_watchlist_rewatch (arb_watchlist_t *self);

#endif
