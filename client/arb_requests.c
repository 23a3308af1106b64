/*  arb_requests.c — a link's pending requests (see arb_requests.h).

    Each request is one record in `table` (by id) and in `order` (oldest
    first), which holds the record's handle so that ending any request is
    O(1).
*/

#include "arb_requests.h"
#include "arb_idmap.h"

#define ARB_REQUESTS_TAG  0x0c1e0006u  //  a live arb_requests_t
#define ARB_REQUESTS_DEAD 0xdeadc1e6u  //  written on destroy, to catch use after it

typedef struct {
    uint32_t reqid;
    arb_msg_type_t type;
    int64_t sent_at;    //  ms, zclock_mono
    uint32_t reserved;  //  TAKE: the tasks it may bring
    void *handle;       //  in order
} s_request_t;

struct _arb_requests_t {
    uint32_t tag;        //  ARB_REQUESTS_TAG
    arb_idmap_t *table;  //  owned: reqid -> owned s_request_t
    zlistx_t *order;     //  owned list of borrowed s_request_t, oldest first
    int64_t reserved;    //  sum of the records' reserved
};

arb_requests_t *
arb_requests_new (void)
{
    arb_requests_t *self = (arb_requests_t *) zmalloc (sizeof (arb_requests_t));
    self->tag = ARB_REQUESTS_TAG;
    self->table = arb_idmap_new ();
    self->order = zlistx_new ();
    return self;
}

void
arb_requests_destroy (arb_requests_t **self_p)
{
    assert (self_p);
    arb_requests_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_REQUESTS_TAG);
    s_request_t *request;
    while ((request = (s_request_t *) zlistx_detach (self->order, NULL)))
        free (request);
    arb_idmap_destroy (&self->table);
    zlistx_destroy (&self->order);
    self->tag = ARB_REQUESTS_DEAD;
    free (self);
    *self_p = NULL;
}

int
arb_requests_add (
    arb_requests_t *self, uint32_t reqid, arb_msg_type_t type, uint32_t reserved, int64_t sent_at)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    if (arb_idmap_contains (self->table, reqid))
        return -1;
    s_request_t *request = (s_request_t *) zmalloc (sizeof (s_request_t));
    request->reqid = reqid;
    request->type = type;
    request->sent_at = sent_at;
    request->reserved = reserved;
    request->handle = zlistx_add_end (self->order, request);
    arb_idmap_insert (self->table, reqid, request);
    self->reserved += reserved;
    return 0;
}

bool
arb_requests_contains (arb_requests_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return arb_idmap_contains (self->table, reqid);
}

size_t
arb_requests_size (arb_requests_t *self)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return arb_idmap_size (self->table);
}

int64_t
arb_requests_reserved (arb_requests_t *self)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return self->reserved;
}

arb_msg_type_t
arb_requests_end (arb_requests_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    s_request_t *request = (s_request_t *) arb_idmap_lookup (self->table, reqid);
    if (!request)
        return (arb_msg_type_t) 0;
    arb_msg_type_t type = request->type;
    self->reserved -= request->reserved;
    zlistx_delete (self->order, request->handle);
    arb_idmap_remove (self->table, reqid);
    free (request);
    return type;
}

uint32_t
arb_requests_oldest (arb_requests_t *self, int64_t *sent_at)
{
    assert (self && self->tag == ARB_REQUESTS_TAG && sent_at);
    s_request_t *request = (s_request_t *) zlistx_first (self->order);
    if (!request)
        return 0;
    *sent_at = request->sent_at;
    return request->reqid;
}

uint32_t *
arb_requests_ids (arb_requests_t *self, size_t *count)
{
    assert (self && self->tag == ARB_REQUESTS_TAG && count);
    uint32_t *ids = (uint32_t *) zmalloc ((zlistx_size (self->order) + 1) * sizeof (uint32_t));
    *count = 0;
    for (s_request_t *request = (s_request_t *) zlistx_first (self->order); request;
         request = (s_request_t *) zlistx_next (self->order))
        ids[(*count)++] = request->reqid;
    return ids;
}
