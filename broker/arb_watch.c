/*  arb_watch.c — who waits for which task's end; see arb_watch.h. */

#include "arb_watch.h"
#include "arb_bigmem.h"
#include "arb_bytes.h"
#include "arb_probe.h"
#include "arb_vec.h"

#define ARB_WATCH_MIN 64  //  slots, at least (a power of two)

typedef struct {
    uint64_t id;    //  0: empty slot (task ids start at 1)
    uint32_t peer;  //  index in peers
    uint32_t spare;
} s_entry_t;

typedef struct {
    zframe_t *identity;  //  owned; NULL: a free index
    char *key;           //  owned: its hex, the key in by_key
    size_t refs;         //  its entries
} s_peer_t;

struct _arb_watch_t {
    s_entry_t *slots;  //  owned, capacity of them
    size_t capacity;   //  a power of two, or 0 before the first watch
    size_t count;      //  entries held
    s_peer_t *peers;   //  owned, peer_cap of them
    size_t peer_cap;
    size_t peer_count;  //  peers in use
    arb_vec_t free;     //  indices of free peers
    zhashx_t *by_key;   //  identity hex -> index + 1 (not owned values)
    uint32_t last;      //  the peer looked up last: most watches come from it again
    arb_vec_t taken;    //  arb_watch_take's scratch: the peers of one task
    size_t cursor;      //  arb_watch_pop's next slot
};

arb_watch_t *
arb_watch_new (void)
{
    arb_watch_t *self = (arb_watch_t *) zmalloc (sizeof (arb_watch_t));
    self->by_key = zhashx_new ();
    return self;
}

void
arb_watch_destroy (arb_watch_t **self_p)
{
    assert (self_p);
    arb_watch_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->peer_cap; i++) {
        zframe_destroy (&self->peers[i].identity);
        free (self->peers[i].key);
    }
    free (self->peers);
    arb_bigmem_free (self->slots, self->capacity, sizeof (s_entry_t));
    arb_vec_free (&self->free);
    arb_vec_free (&self->taken);
    zhashx_destroy (&self->by_key);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Peers

//  Whether the peer at index is the routing id data.
static bool
s_is_peer (const arb_watch_t *self, uint32_t index, const uint8_t *data, size_t size)
{
    zframe_t *identity = index < self->peer_cap ? self->peers[index].identity : NULL;
    return identity && zframe_size (identity) == size
           && memcmp (zframe_data (identity), data, size) == 0;
}

//  The index of a routing id's peer, made if new (with no references yet).
static uint32_t
s_intern (arb_watch_t *self, const uint8_t *data, size_t size)
{
    if (s_is_peer (self, self->last, data, size))
        return self->last;
    char hex[ARB_HEX_ID_SIZE];
    arb_bytes_hex_id (data, size, hex);
    uintptr_t found = (uintptr_t) zhashx_lookup (self->by_key, hex);
    if (found) {
        self->last = (uint32_t) (found - 1);
        return self->last;
    }
    uint64_t index;
    if (!arb_vec_shift (&self->free, &index)) {
        size_t cap = self->peer_cap ? self->peer_cap * 2 : 8;
        self->peers = (s_peer_t *) realloc (self->peers, cap * sizeof (s_peer_t));
        assert (self->peers);
        for (size_t i = self->peer_cap; i < cap; i++) {
            self->peers[i] = (s_peer_t){0};
            if (i > self->peer_cap)
                arb_vec_push (&self->free, i);
        }
        index = self->peer_cap;
        self->peer_cap = cap;
    }
    s_peer_t *peer = &self->peers[index];
    peer->identity = zframe_new (data, size);
    peer->key = strdup (hex);
    peer->refs = 0;
    zhashx_insert (self->by_key, peer->key, (void *) (uintptr_t) (index + 1));
    self->peer_count++;
    self->last = (uint32_t) index;
    return self->last;
}

static void
s_unref (arb_watch_t *self, uint32_t index)
{
    s_peer_t *peer = &self->peers[index];
    assert (peer->refs > 0);
    if (--peer->refs)
        return;
    zhashx_delete (self->by_key, peer->key);
    zframe_destroy (&peer->identity);
    free (peer->key);
    *peer = (s_peer_t){0};
    arb_vec_push (&self->free, index);
    self->peer_count--;
}

//  ---------------------------------------------------------------------
//  The table

static void
s_resize (arb_watch_t *self, size_t capacity)
{
    s_entry_t *old = self->slots;
    size_t old_capacity = self->capacity;
    self->slots = (s_entry_t *) arb_bigmem_calloc (capacity, sizeof (s_entry_t));
    assert (self->slots);  //  out of memory
    self->capacity = capacity;
    size_t mask = capacity - 1;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].id) {
            size_t j = arb_probe_hash (old[i].id) & mask;
            while (self->slots[j].id)
                j = (j + 1) & mask;
            self->slots[j] = old[i];
        }
    arb_bigmem_free (old, old_capacity, sizeof (s_entry_t));
}

//  The first slot at or after from (in id's probe run) holding id, or the
//  empty slot that ends the run.
static size_t
s_find (const arb_watch_t *self, uint64_t id, size_t from)
{
    size_t mask = self->capacity - 1;
    size_t i = from;
    while (self->slots[i].id && self->slots[i].id != id)
        i = (i + 1) & mask;
    return i;
}

static size_t
s_home (const arb_watch_t *self, uint64_t id)
{
    return arb_probe_hash (id) & (self->capacity - 1);
}

//  Empties slot hole (backward shift, arb_probe.h).
static void
s_remove_at (arb_watch_t *self, size_t hole)
{
    size_t mask = self->capacity - 1;
    for (size_t j = (hole + 1) & mask; self->slots[j].id; j = (j + 1) & mask)
        if (!arb_probe_stays (hole, s_home (self, self->slots[j].id), j)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    self->slots[hole] = (s_entry_t){0};
    self->count--;
}

//  After removals: a table under an eighth full halves (memory follows
//  the watched backlog down again), not below its minimum.
static void
s_maybe_shrink (arb_watch_t *self)
{
    if (self->capacity > ARB_WATCH_MIN && self->count * 8 < self->capacity)
        s_resize (self, self->capacity / 2);
}

void
arb_watch_add (arb_watch_t *self, uint64_t id, const uint8_t *peer_id, size_t peer_size)
{
    assert (id && peer_id && peer_size);
    if ((self->count + 1) * 2 > self->capacity)
        s_resize (self, self->capacity ? self->capacity * 2 : ARB_WATCH_MIN);
    uint32_t peer = s_intern (self, peer_id, peer_size);
    size_t mask = self->capacity - 1;
    size_t i = s_find (self, id, s_home (self, id));
    for (; self->slots[i].id; i = s_find (self, id, (i + 1) & mask))
        if (self->slots[i].peer == peer)
            return;  //  watched already
    self->slots[i] = (s_entry_t){.id = id, .peer = peer};
    self->count++;
    self->peers[peer].refs++;
}

bool
arb_watch_has (const arb_watch_t *self, uint64_t id)
{
    return self->count && self->slots[s_find (self, id, s_home (self, id))].id;
}

size_t
arb_watch_take (arb_watch_t *self, uint64_t id, arb_watch_fn *fn, void *arg)
{
    if (!self->count)
        return 0;
    size_t i;
    while (self->slots[i = s_find (self, id, s_home (self, id))].id) {
        arb_vec_push (&self->taken, self->slots[i].peer);
        s_remove_at (self, i);
    }
    size_t n = arb_vec_size (&self->taken);
    for (size_t k = 0; k < n; k++)
        fn (arg, self->peers[self->taken.v[self->taken.head + k]].identity, k + 1 == n);
    uint64_t peer;
    while (arb_vec_shift (&self->taken, &peer))
        s_unref (self, (uint32_t) peer);
    if (n)
        s_maybe_shrink (self);
    return n;
}

bool
arb_watch_pop (arb_watch_t *self, uint64_t *id, zframe_t **identity)
{
    for (; self->count; self->cursor = (self->cursor + 1) & (self->capacity - 1)) {
        s_entry_t entry = self->slots[self->cursor];
        if (!entry.id)
            continue;
        *id = entry.id;
        *identity = zframe_dup (self->peers[entry.peer].identity);
        s_remove_at (self, self->cursor);
        s_unref (self, entry.peer);
        //  (no shrink here: the cursor walks this table to its end)
        return true;
    }
    return false;
}

//  The index + 1 of identity's peer; 0 if it watches nothing.
static uintptr_t
s_peer_of (const arb_watch_t *self, zframe_t *identity)
{
    char hex[ARB_HEX_ID_SIZE];
    arb_bytes_hex_id (zframe_data (identity), zframe_size (identity), hex);
    return (uintptr_t) zhashx_lookup (self->by_key, hex);
}

bool
arb_watch_has_peer (const arb_watch_t *self, zframe_t *identity)
{
    return s_peer_of (self, identity) != 0;
}

size_t
arb_watch_drop_peer (arb_watch_t *self, zframe_t *identity)
{
    return arb_watch_drop_peers (self, &identity, 1);
}

size_t
arb_watch_drop_peers (arb_watch_t *self, zframe_t **identities, size_t count)
{
    //  the peers marked (refs of their own: a watch walks no list), then
    //  one walk of the table for all of them: peers that go together (a
    //  turn's closed connections) cost one walk, not one each
    uint8_t *marked = NULL;
    size_t wanted = 0;
    for (size_t k = 0; k < count; k++) {
        uintptr_t found = s_peer_of (self, identities[k]);
        if (!found)
            continue;
        if (!marked)
            marked = (uint8_t *) zmalloc (self->peer_cap);
        if (!marked[found - 1])
            wanted += self->peers[found - 1].refs;
        marked[found - 1] = 1;
    }
    if (!marked)
        return 0;
    //  the entries first: a removal shifts entries back, under a walk's
    //  feet; the walk ends once it has them all
    for (size_t i = 0; i < self->capacity && arb_vec_size (&self->taken) < 2 * wanted; i++)
        if (self->slots[i].id && marked[self->slots[i].peer]) {
            arb_vec_push (&self->taken, self->slots[i].id);
            arb_vec_push (&self->taken, self->slots[i].peer);
        }
    size_t n = arb_vec_size (&self->taken) / 2;
    uint64_t id, peer;
    size_t mask = self->capacity - 1;
    while (arb_vec_shift (&self->taken, &id) && arb_vec_shift (&self->taken, &peer)) {
        size_t i = s_find (self, id, s_home (self, id));
        while (self->slots[i].peer != peer)
            i = s_find (self, id, (i + 1) & mask);
        s_remove_at (self, i);
        s_unref (self, (uint32_t) peer);  //  the last frees the peer
    }
    free (marked);
    if (n)
        s_maybe_shrink (self);
    return n;
}

size_t
arb_watch_size (const arb_watch_t *self)
{
    return self->count;
}

size_t
arb_watch_peers (const arb_watch_t *self)
{
    return self->peer_count;
}
