/*  arb_bytes.c — a byte buffer for our own ZMTP transports; see
    arb_bytes.h.
*/

#include "arb_bytes.h"
#include "arb_zmtp.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int
arb_bytes_reserve (arb_bytes_t *self, size_t more)
{
    if (self->start == self->end)
        self->start = self->end = 0;
    if (self->cap - self->end >= more)
        return 0;
    //  moved down only when what was taken is at least what is left: a
    //  big buffer written out slowly was copied whole for every message
    //  put behind it (seconds of the loop's time for 100 MB waiting)
    if (self->start >= self->end - self->start && self->cap - (self->end - self->start) >= more) {
        memmove (self->data, self->data + self->start, self->end - self->start);
        self->end -= self->start;
        self->start = 0;
        return 0;
    }
    size_t used = self->end - self->start;
    if (more > SIZE_MAX / 4 - used)
        return -1;  //  no buffer that big: the doubling below would wrap
    size_t cap = self->cap ? self->cap : 4096;
    while (cap - used < more)
        cap *= 2;
    uint8_t *data = (uint8_t *) malloc (cap);
    if (!data)
        return -1;
    if (self->end > self->start)
        memcpy (data, self->data + self->start, self->end - self->start);
    free (self->data);
    self->end -= self->start;
    self->start = 0;
    self->data = data;
    self->cap = cap;
    return 0;
}

int
arb_bytes_append (arb_bytes_t *self, const void *data, size_t size)
{
    if (arb_bytes_reserve (self, size))
        return -1;
    if (size)
        memcpy (self->data + self->end, data, size);
    self->end += size;
    return 0;
}

void
arb_bytes_reset (arb_bytes_t *self, size_t keep_max)
{
    self->start = self->end = 0;
    if (self->cap > keep_max)
        arb_bytes_free (self);
}

void
arb_bytes_free (arb_bytes_t *self)
{
    free (self->data);
    *self = (arb_bytes_t){0};
}

int
arb_bytes_recv (arb_bytes_t *self, int fd, size_t chunk)
{
    if (arb_bytes_reserve (self, chunk)) {
        errno = ENOMEM;
        return -1;
    }
    while (true) {
        size_t room = self->cap - self->end;
        ssize_t n = recv (fd, self->data + self->end, room, 0);
        if (n > 0) {
            self->end += (size_t) n;
            return (size_t) n < room ? 2 : 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            errno = 0;
        return -1;
    }
}

int
arb_bytes_send (arb_bytes_t *self, int fd, uint64_t *written)
{
    while (self->end > self->start) {
        ssize_t n = send (fd, self->data + self->start, self->end - self->start, MSG_NOSIGNAL);
        if (n > 0) {
            self->start += (size_t) n;
            if (written)
                *written += (uint64_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            errno = EIO;
        return -1;
    }
    return 1;
}

int
arb_bytes_put_frame (void *arg, const void *data, size_t size, bool more)
{
    arb_bytes_t *self = (arb_bytes_t *) arg;
    uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
    size_t head_size = arb_zmtp_frame_head (head, more ? ARB_ZMTP_MORE : 0, size);
    if (arb_bytes_reserve (self, head_size + size))
        return -1;
    memcpy (self->data + self->end, head, head_size);
    if (size)
        memcpy (self->data + self->end + head_size, data, size);
    self->end += head_size + size;
    return 0;
}

char *
arb_bytes_hex_id (const uint8_t *data, size_t size, char buf[ARB_HEX_ID_SIZE])
{
    static const char digits[] = "0123456789ABCDEF";
    if (size > (ARB_HEX_ID_SIZE - 1) / 2)
        size = (ARB_HEX_ID_SIZE - 1) / 2;  //  no routing id is longer: never cut
    for (size_t i = 0; i < size; i++) {
        buf[2 * i] = digits[data[i] >> 4];
        buf[2 * i + 1] = digits[data[i] & 15];
    }
    buf[2 * size] = '\0';
    return buf;
}
