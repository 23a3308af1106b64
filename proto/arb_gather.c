/*  arb_gather.c — a message's frames gathered and decoded; see
    arb_gather.h.
*/

#include "arb_gather.h"
#include "arb_proto_priv.h"

#define S_KEEP_MAX    (256u * 1024)  //  a header or body buffer over this is freed after use
#define S_KEEP_FRAMES 64             //  a frame array over this is freed after use

int
arb_gather_part (arb_gather_t *self, const uint8_t *data, size_t size, uint64_t max_bytes)
{
    if (self->parts + 1 > ARB_GATHER_PARTS_MAX || self->bytes + size > max_bytes)
        return -2;
    if (self->parts == 0 && arb_bytes_append (&self->head, data, size))
        return -1;
    if (self->parts == 1 && arb_bytes_append (&self->body, data, size))
        return -1;
    if (self->parts >= 2) {
        if (self->n_frames == self->cap_frames) {
            size_t cap = self->cap_frames ? self->cap_frames * 2 : 8;
            zframe_t **frames = (zframe_t **) realloc (self->frames, cap * sizeof (zframe_t *));
            if (!frames)
                return -1;
            self->frames = frames;
            self->cap_frames = cap;
        }
        self->frames[self->n_frames++] = zframe_new (data, size);
    }
    self->parts++;
    self->bytes += size;
    return 0;
}

int
arb_gather_decode (arb_gather_t *self,
                   const uint8_t *peer,
                   size_t peer_size,
                   const arb_limits_t *limits,
                   arb_msg_t **msg_p)
{
    static const uint8_t none[1] = {0};
    const uint8_t *head = self->head.data ? self->head.data : none;
    const uint8_t *body = self->parts > 1 ? (self->body.data ? self->body.data : none) : NULL;
    int rc = arb_msg_decode_gathered (peer, peer_size, head, self->head.end, body, self->body.end,
                                      self->frames, self->n_frames, limits, msg_p);
    self->n_frames = 0;  //  the message took them
    arb_gather_reset (self);
    return rc;
}

void
arb_gather_reset (arb_gather_t *self)
{
    for (size_t i = 0; i < self->n_frames; i++)
        zframe_destroy (&self->frames[i]);
    self->n_frames = 0;
    self->parts = 0;
    self->bytes = 0;
    arb_bytes_reset (&self->head, S_KEEP_MAX);
    arb_bytes_reset (&self->body, S_KEEP_MAX);
    if (self->cap_frames > S_KEEP_FRAMES) {
        free (self->frames);
        self->frames = NULL;
        self->cap_frames = 0;
    }
}

void
arb_gather_free (arb_gather_t *self)
{
    arb_gather_reset (self);
    arb_bytes_free (&self->head);
    arb_bytes_free (&self->body);
    free (self->frames);
    *self = (arb_gather_t){0};
}
