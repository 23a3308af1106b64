/*  arb_stats_pages.h — the broker's STATS, gathered from every page.

    The broker answers STATS in pages: at most ARB_STATS_PAGE queues (by
    name) and workers (by identity) a reply, `more` and `more_workers`
    saying that more follow (proto/PROTOCOL.md, "The queue listing"). A
    program that shows the whole listing asks page after page; this is the
    one piece of code that knows how, for the synchronous client
    (arb_client_stats, and through it the CLI) and for the gateway, which
    asks without waiting. The caller sends the requests and hands in the
    replies:

        arb_stats_pages_t *pages = arb_stats_pages_new (NULL);
        do {
            request = ... new STATS request ...;
            arb_stats_pages_request (pages, request);
            reply = ... send it, its STATS_REPLY ...;
        } while (arb_stats_pages_add (pages, &reply) == 1);
        arb_stats_reply_body_t *stats = arb_stats_pages_reply (pages);

    The pages are kept, so the merged reply's records (and their strings)
    live until the object is destroyed, or until arb_stats_pages_drop: a
    caller that uses each page as it comes drops it before asking for the
    next, and so holds one page, not the whole listing (a listing of
    40,000 queues is some 30 MB of records). Pure: no I/O, not
    thread-safe.
*/

#ifndef ARB_STATS_PAGES_H
#define ARB_STATS_PAGES_H

#include "arb_proto.h"

#define ARB_STATS_PAGES_MAX 1000  //  pages read at most (a million queues)

typedef struct _arb_stats_pages_t arb_stats_pages_t;

//  Starts gathering. queue (copied; NULL: every queue) asks for that
//  queue alone, which is one page without workers.
arb_stats_pages_t *arb_stats_pages_new (const char *queue);

//  Frees the pages and the merged reply. Accepts NULL; nulls *self_p.
void arb_stats_pages_destroy (arb_stats_pages_t **self_p);

//  Fills the body of a STATS request for the next page (its strings are
//  copied into the request).
void arb_stats_pages_request (arb_stats_pages_t *self, arb_msg_t *request);

//  Takes a STATS_REPLY (nulls *reply_p). Returns 1 if another page is
//  needed (send the next request), 0 once every page is in, or -1 past
//  ARB_STATS_PAGES_MAX pages or for a reply that is not a STATS_REPLY.
int arb_stats_pages_add (arb_stats_pages_t *self, arb_msg_t **reply_p);

//  Frees the pages taken so far (their records and strings, which the
//  merged reply borrowed), keeping the place: the next request asks for
//  what follows them. The merged reply then holds the pages taken after
//  this call, with the times and counters of the first of them.
void arb_stats_pages_drop (arb_stats_pages_t *self);

//  Every page's queues and workers in the broker's order, with the times
//  and counters of the first page (`more` and `more_workers` false).
//  Borrowed: valid until the object is destroyed or takes another page.
//  Before any page, an empty reply.
arb_stats_reply_body_t *arb_stats_pages_reply (arb_stats_pages_t *self);

//  Pages taken so far (those dropped too).
size_t arb_stats_pages_count (arb_stats_pages_t *self);

#endif
