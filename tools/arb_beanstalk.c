/*  arb_beanstalk.c — see arb_beanstalk.h. */

#include "arb_beanstalk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _arb_beanstalk_t {
    int fd;
    char *out;  //  commands not sent yet
    size_t out_len, out_cap;
    char *in;  //  bytes received: [in_at, in_len) not read yet
    size_t in_at, in_len, in_cap;
};

arb_beanstalk_t *
arb_beanstalk_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                               .sin_port = htons ((uint16_t) port)};
    if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof (addr))) {
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    arb_beanstalk_t *self = (arb_beanstalk_t *) calloc (1, sizeof (arb_beanstalk_t));
    self->fd = fd;
    self->out_cap = self->in_cap = 65536;
    self->out = (char *) malloc (self->out_cap);
    self->in = (char *) malloc (self->in_cap);
    return self;
}

void
arb_beanstalk_destroy (arb_beanstalk_t **self_p)
{
    arb_beanstalk_t *self = *self_p;
    if (!self)
        return;
    close (self->fd);
    free (self->out);
    free (self->in);
    free (self);
    *self_p = NULL;
}

static void
s_append (arb_beanstalk_t *self, const void *data, size_t size)
{
    if (self->out_len + size > self->out_cap) {
        while (self->out_len + size > self->out_cap)
            self->out_cap *= 2;
        self->out = (char *) realloc (self->out, self->out_cap);
    }
    memcpy (self->out + self->out_len, data, size);
    self->out_len += size;
}

void
arb_beanstalk_put (arb_beanstalk_t *self, const void *data, size_t size)
{
    char head[64];
    int len = snprintf (head, sizeof (head), "put 0 0 60 %zu\r\n", size);
    s_append (self, head, (size_t) len);
    s_append (self, data, size);
    s_append (self, "\r\n", 2);
}

void
arb_beanstalk_reserve (arb_beanstalk_t *self, int seconds)
{
    char text[64];
    int len = snprintf (text, sizeof (text), "reserve-with-timeout %d\r\n", seconds);
    s_append (self, text, (size_t) len);
}

void
arb_beanstalk_delete (arb_beanstalk_t *self, uint64_t id)
{
    char text[64];
    int len = snprintf (text, sizeof (text), "delete %" PRIu64 "\r\n", id);
    s_append (self, text, (size_t) len);
}

int
arb_beanstalk_flush (arb_beanstalk_t *self)
{
    size_t at = 0;
    while (at < self->out_len) {
        ssize_t sent = send (self->fd, self->out + at, self->out_len - at, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        at += (size_t) sent;
    }
    self->out_len = 0;
    return 0;
}

//  Reads more bytes (blocking). 0 or -1.
static int
s_fill (arb_beanstalk_t *self)
{
    if (self->in_at > 0) {
        memmove (self->in, self->in + self->in_at, self->in_len - self->in_at);
        self->in_len -= self->in_at;
        self->in_at = 0;
    }
    if (self->in_len == self->in_cap) {
        self->in_cap *= 2;
        self->in = (char *) realloc (self->in, self->in_cap);
    }
    ssize_t got;
    do
        got = recv (self->fd, self->in + self->in_len, self->in_cap - self->in_len, 0);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return -1;
    self->in_len += (size_t) got;
    return 0;
}

//  The end of the line that starts at in_at (its CR), or NULL.
static char *
s_line_end (arb_beanstalk_t *self)
{
    char *start = self->in + self->in_at;
    size_t len = self->in_len - self->in_at;
    char *cr = (char *) memchr (start, '\r', len);
    return cr && cr + 1 < self->in + self->in_len && cr[1] == '\n' ? cr : NULL;
}

bool
arb_beanstalk_ready (arb_beanstalk_t *self)
{
    return s_line_end (self) != NULL;
}

int
arb_beanstalk_reply (
    arb_beanstalk_t *self, const char **line, uint64_t *id, const char **body, size_t *size)
{
    char *cr;
    while (!(cr = s_line_end (self)))
        if (s_fill (self))
            return -1;
    *cr = 0;
    size_t line_at = self->in_at;
    self->in_at = (size_t) (cr + 2 - self->in);
    *body = NULL;
    *size = 0;
    *id = 0;
    unsigned long long job = 0, bytes = 0;
    if (sscanf (self->in + line_at, "RESERVED %llu %llu", &job, &bytes) == 2) {
        while (self->in_len - self->in_at < bytes + 2) {
            //  keep the line: s_fill moves the buffer, so remember offsets
            size_t line_off = self->in_at - line_at;
            self->in_at = line_at;
            if (s_fill (self))
                return -1;
            line_at = self->in_at;
            self->in_at = line_at + line_off;
        }
        *id = job;
        *body = self->in + self->in_at;
        *size = bytes;
        self->in_at += bytes + 2;
    }
    else if (sscanf (self->in + line_at, "INSERTED %llu", &job) == 1)
        *id = job;
    *line = self->in + line_at;
    return 0;
}
