/*  arb_watch.h — who waits for which task's end: the broker's watches.

    A watch is a pair (task id, peer): the peer (a client's routing id)
    hears of the task's end in a DONE. Watches live here, not in the task
    record, so that a watched task needs no record of its own while it
    waits: it can be cold (arb_queue.h), and a producer that watches every
    task it submits (the common case) does not keep its backlog in memory
    (issue 11: RSS after P2).

    An open-addressing table of (id, peer) entries, 16 bytes each, linear
    probing and deletion by backward shift (arb_probe.h); a task watched by
    several peers has one entry per peer. Peers are interned: each routing
    id is kept once, with a count of its watches, and freed with its last.

    Owned by the lifecycle (arb_life), in the broker's one thread.
*/

#ifndef ARB_WATCH_H
#define ARB_WATCH_H

#include <czmq.h>

typedef struct _arb_watch_t arb_watch_t;

//  Called once per watcher of a task taken (arb_watch_take): identity is
//  borrowed for the call; last is true for the task's last watcher.
typedef void (arb_watch_fn) (void *arg, zframe_t *identity, bool last);

arb_watch_t *arb_watch_new (void);
void arb_watch_destroy (arb_watch_t **self_p);

//  Makes peer (a routing id of peer_size bytes, copied) watch task id;
//  once per peer.
void arb_watch_add (arb_watch_t *self, uint64_t id, const uint8_t *peer, size_t peer_size);

//  Whether task id has a watcher.
bool arb_watch_has (const arb_watch_t *self, uint64_t id);

//  Forgets the watches of task id, calling fn for each of them first.
//  Returns how many there were.
size_t arb_watch_take (arb_watch_t *self, uint64_t id, arb_watch_fn *fn, void *arg);

//  Takes any one watch: its task id and its identity (a copy, the
//  caller's). false when there is none left.
bool arb_watch_pop (arb_watch_t *self, uint64_t *id, zframe_t **identity);

//  Whether identity (borrowed) watches any task.
bool arb_watch_has_peer (const arb_watch_t *self, zframe_t *identity);

//  Forgets every watch of identity (borrowed): it hears of no task's end.
//  O(the table). Returns how many there were.
size_t arb_watch_drop_peer (arb_watch_t *self, zframe_t *identity);
//  The same for count identities (borrowed) at once, in one walk of the
//  table. Returns how many watches there were.
size_t arb_watch_drop_peers (arb_watch_t *self, zframe_t **identities, size_t count);

//  Watches held; distinct peers among them.
size_t arb_watch_size (const arb_watch_t *self);
size_t arb_watch_peers (const arb_watch_t *self);

#endif
