/*  arb_stream.c — one client's TCP byte stream; see arb_stream.h.

    Output is a list of pieces: a chunk (owned bytes that small writes
    fill) or a slice of a frame (the frame is freed with the piece that
    owns it, the last of its slices). The list is written with sendmsg
    (MSG_NOSIGNAL: a peer gone is an error to handle, not a signal).

    Input lives in the server's scratch buffer while the handler runs
    after a read into it, else in the stream's own buffer (which holds only
    what the handler left); s_keep moves what is left from the one to the
    other before the entry point returns, so nothing stays in the scratch
    buffer between two events.

    Re-entry: the entry points (socket events, timers) count themselves on
    the stack (depth); arb_stream_close inside a handler only marks the
    stream dead, and the last entry point to leave frees it.
*/

#include "arb_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ARB_IOV_MAX 64  //  pieces written by one sendmsg

typedef struct _s_piece_t {
    struct _s_piece_t *next;
    uint8_t *data;    //  the bytes: the chunk's, or into frame's
    size_t size;      //  bytes filled
    size_t cap;       //  a chunk's capacity (0: a slice)
    zframe_t *frame;  //  owned frame a slice frees, or NULL
    uint8_t *chunk;   //  owned chunk, or NULL
} s_piece_t;

struct _arb_stream_t {
    arb_reactor_t *reactor;  //  borrowed
    int fd;                  //  owned
    arb_stream_io_t *io;     //  borrowed: the server's scratch buffer and counts
    arb_stream_handler_t handler;
    void *arg;  //  borrowed, for the handler

    uint8_t *in;        //  the input: own (owned), or io->scratch (borrowed), or NULL
    bool in_scratch;    //  in is io->scratch
    size_t in_off;      //  bytes consumed
    size_t in_len;      //  bytes filled
    size_t in_cap;      //  bytes allocated (own buffer)
    size_t input_max;   //  bytes waiting at most before reading stops
    size_t output_max;  //  output bytes pending before reading stops
    uint8_t *sink;      //  borrowed: where reads go while no input is buffered, or NULL
    size_t sink_left;   //  bytes the sink still takes
    size_t sunk;        //  bytes put in it since arb_stream_sunk

    s_piece_t *out;  //  owned output, oldest first
    s_piece_t *out_tail;
    size_t out_off;    //  bytes of the first piece written
    size_t out_bytes;  //  bytes not yet written
    bool was_full;     //  past the high-water mark since the last drained

    uint64_t bytes_read;
    uint64_t bytes_written;
    bool held;      //  the owner stopped reading
    bool closing;   //  close once the output is written
    bool draining;  //  closing, the output written and our side shut: reading to the peer's end
    bool broken;    //  the socket failed or ended: close at the next chance
    bool ended;     //  the peer ended its side (handler.ended told)
    bool eof;       //  the input is read to that end: no more reading
    bool dead;      //  closed: free when nothing of it is on the stack
    int depth;      //  entry points on the stack
    unsigned watching;
    arb_timer_t kick;    //  write the turn's output, hand buffered input again
    arb_timer_t linger;  //  closing: close anyway by then
    bool rerun;          //  the kick must hand the input to the handler
};

static void s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);
static void s_update (arb_stream_t *self);

//  ---------------------------------------------------------------------
//  Output

static void
s_piece_free (s_piece_t *piece)
{
    zframe_destroy (&piece->frame);
    free (piece->chunk);
    free (piece);
}

static void
s_append (arb_stream_t *self, s_piece_t *piece)
{
    if (self->out_tail)
        self->out_tail->next = piece;
    else
        self->out = piece;
    self->out_tail = piece;
}

//  Arms the kick: the output leaves before the loop sleeps.
static void
s_kick (arb_stream_t *self)
{
    if (!self->dead && !self->kick.armed)
        arb_reactor_arm (self->reactor, &self->kick, 0, s_on_timer, self);
}

uint8_t *
arb_stream_reserve (arb_stream_t *self, size_t size)
{
    s_piece_t *tail = self->out_tail;
    if (!tail || !tail->cap || tail->cap - tail->size < size) {
        size_t cap = size > ARB_STREAM_CHUNK ? size : ARB_STREAM_CHUNK;
        tail = (s_piece_t *) zmalloc (sizeof (s_piece_t));
        tail->chunk = (uint8_t *) malloc (cap);
        assert (tail->chunk);
        tail->data = tail->chunk;
        tail->cap = cap;
        s_append (self, tail);
    }
    uint8_t *at = tail->data + tail->size;
    tail->size += size;
    self->out_bytes += size;
    s_kick (self);
    return at;
}

void
arb_stream_write (arb_stream_t *self, const void *data, size_t size)
{
    if (size)
        memcpy (arb_stream_reserve (self, size), data, size);
}

void
arb_stream_write_slice (arb_stream_t *self, const uint8_t *data, size_t size, zframe_t **frame_p)
{
    s_piece_t *piece = (s_piece_t *) zmalloc (sizeof (s_piece_t));
    piece->data = (uint8_t *) data;
    piece->size = size;
    if (frame_p) {
        piece->frame = *frame_p;
        *frame_p = NULL;
    }
    s_append (self, piece);
    self->out_bytes += size;
    s_kick (self);
}

size_t
arb_stream_pending (arb_stream_t *self)
{
    return self->out_bytes;
}

bool
arb_stream_is_full (arb_stream_t *self)
{
    //  whoever held back for it is told when it drains: the flush that
    //  follows may empty it before s_update looks
    bool full = self->out_bytes >= self->output_max;
    if (full)
        self->was_full = true;
    return full;
}

//  Writes what the socket takes now.
static void
s_flush (arb_stream_t *self)
{
    while (self->out && !self->broken && !self->dead) {
        struct iovec iov[ARB_IOV_MAX];
        int n = 0;
        size_t off = self->out_off;
        for (s_piece_t *p = self->out; p && n < ARB_IOV_MAX; p = p->next) {
            if (p->size - off == 0) {
                off = 0;
                continue;
            }
            iov[n].iov_base = p->data + off;
            iov[n].iov_len = p->size - off;
            off = 0;
            n++;
        }
        ssize_t sent = 0;
        if (n) {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t) n};
            sent = sendmsg (self->fd, &msg, MSG_NOSIGNAL);
            if (sent < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    self->broken = true;
                return;
            }
        }
        self->bytes_written += (uint64_t) sent;
        self->io->bytes_written += (uint64_t) sent;
        self->out_bytes -= (size_t) sent;
        size_t left = (size_t) sent;
        while (self->out && left >= self->out->size - self->out_off) {
            left -= self->out->size - self->out_off;
            s_piece_t *done = self->out;
            self->out = done->next;
            s_piece_free (done);
            self->out_off = 0;
        }
        if (!self->out) {
            self->out_tail = NULL;
            return;
        }
        self->out_off += left;
        if (left || n < ARB_IOV_MAX)
            return;  //  the kernel took what it could
        //  more pieces than one call takes: go on
    }
}

void
arb_stream_flush (arb_stream_t *self)
{
    s_flush (self);
}

//  ---------------------------------------------------------------------
//  Input

const uint8_t *
arb_stream_input (arb_stream_t *self, size_t *size)
{
    *size = self->in_len - self->in_off;
    return self->in ? self->in + self->in_off : NULL;
}

void
arb_stream_consume (arb_stream_t *self, size_t n)
{
    assert (n <= self->in_len - self->in_off);
    self->in_off += n;
    if (self->in_off == self->in_len)
        self->in_off = self->in_len = 0;
}

void
arb_stream_set_input_max (arb_stream_t *self, size_t input_max)
{
    self->input_max = input_max;
}

void
arb_stream_set_output_max (arb_stream_t *self, size_t output_max)
{
    self->output_max = output_max;
}

void
arb_stream_sink (arb_stream_t *self, uint8_t *dest, size_t size)
{
    self->sink = size ? dest : NULL;
    self->sink_left = dest ? size : 0;
}

size_t
arb_stream_sunk (arb_stream_t *self)
{
    size_t sunk = self->sunk;
    self->sunk = 0;
    return sunk;
}

void
arb_stream_hold (arb_stream_t *self, bool hold)
{
    if (self->held == hold)
        return;
    self->held = hold;
    if (!hold) {
        self->rerun = true;
        s_kick (self);
    }
    else
        s_update (self);
}

//  Whether reading makes sense now.
static bool
s_wants_input (arb_stream_t *self)
{
    return !self->held && !self->closing && !self->broken && !self->eof && !self->dead
           && self->in_len - self->in_off < self->input_max && self->out_bytes < self->output_max;
}

//  Reads once: into the sink, the scratch buffer (nothing is buffered) or
//  after what the own buffer holds. Returns 0, 1 at the peer's end of its
//  side, or -1 if the socket failed.
static int
s_read (arb_stream_t *self)
{
    ssize_t n;
    size_t buffered = self->in_len - self->in_off;
    if (self->sink && !buffered) {
        n = read (self->fd, self->sink, self->sink_left);
        if (n > 0) {
            self->sink += n;
            self->sink_left -= (size_t) n;
            self->sunk += (size_t) n;
            if (!self->sink_left)
                self->sink = NULL;
        }
    }
    else if (!buffered) {
        self->in_scratch = true;
        self->in = self->io->scratch;
        self->in_off = self->in_len = 0;
        size_t room = self->input_max < ARB_STREAM_READ ? self->input_max : ARB_STREAM_READ;
        n = read (self->fd, self->in, room);
        if (n > 0)
            self->in_len = (size_t) n;
    }
    else {
        if (self->in_off) {
            memmove (self->in, self->in + self->in_off, buffered);
            self->in_len = buffered;
            self->in_off = 0;
        }
        size_t room = self->input_max - buffered;
        if (room > ARB_STREAM_READ)
            room = ARB_STREAM_READ;
        if (self->in_cap < self->in_len + room) {
            self->in_cap = self->in_len + room;
            self->in = (uint8_t *) realloc (self->in, self->in_cap);
            assert (self->in);
        }
        n = read (self->fd, self->in + self->in_len, room);
        if (n > 0)
            self->in_len += (size_t) n;
    }
    if (n == 0)
        return 1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    self->bytes_read += (uint64_t) n;
    self->io->bytes_read += (uint64_t) n;
    return 0;
}

//  Keeps what the handler left of the input in the stream's own buffer
//  (the scratch buffer is the next stream's), and frees that buffer once
//  it is empty: an idle connection holds none.
static void
s_keep (arb_stream_t *self)
{
    size_t left = self->in_len - self->in_off;
    if (self->in_scratch) {
        self->in_scratch = false;
        self->in = NULL;
        self->in_cap = 0;
        if (left) {
            self->in_cap = left + ARB_STREAM_READ;
            self->in = (uint8_t *) malloc (self->in_cap);
            assert (self->in);
            memcpy (self->in, self->io->scratch + self->in_off, left);
        }
        self->in_off = 0;
        self->in_len = left;
    }
    else if (!left && self->in) {
        free (self->in);
        self->in = NULL;
        self->in_cap = self->in_off = self->in_len = 0;
    }
}

//  ---------------------------------------------------------------------
//  Life

static void
s_free (arb_stream_t *self)
{
    while (self->out) {
        s_piece_t *next = self->out->next;
        s_piece_free (self->out);
        self->out = next;
    }
    if (!self->in_scratch)
        free (self->in);
    free (self);
}

void
arb_stream_close (arb_stream_t *self)
{
    if (self->dead)
        return;
    self->dead = true;
    arb_reactor_disarm (self->reactor, &self->kick);
    arb_reactor_disarm (self->reactor, &self->linger);
    arb_reactor_remove_fd (self->reactor, self->fd);
    close (self->fd);
    self->depth++;
    self->handler.closed (self->arg, self);
    if (--self->depth == 0)
        s_free (self);
}

void
arb_stream_close_after (arb_stream_t *self)
{
    if (self->closing || self->dead)
        return;
    self->closing = true;
    arb_reactor_arm (self->reactor, &self->linger, ARB_STREAM_LINGER_MS, s_on_timer, self);
    s_kick (self);
}

//  The output all written, our side of the connection ends (a FIN behind
//  the last answer), and what the peer still sends is read and dropped
//  until it closes too, or the linger ends. Closing at once would have
//  the kernel answer input never read (a client's publishes queued
//  behind its Connection.Close) with a reset, which can reach the client
//  before the answer it waits for (Close-Ok) and lose it.
static int
s_start_drain (arb_stream_t *self)
{
    if (shutdown (self->fd, SHUT_WR))
        return -1;
    self->draining = true;
    arb_reactor_disarm (self->reactor, &self->kick);
    arb_reactor_arm (self->reactor, &self->linger, ARB_STREAM_LINGER_MS, s_on_timer, self);
    return 0;
}

//  Reads and drops what the peer sent, a bounded number of reads a turn;
//  its end (or an error) breaks the stream.
static void
s_drain (arb_stream_t *self)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = read (self->fd, self->io->scratch, sizeof (self->io->scratch));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        self->broken = true;
        return;
    }
}

//  Whether the stream looks for the peer's end while its owner holds the
//  input: an owner that takes a half-close (handler.ended) is told of it
//  then too, so that a command that waits (a Kestrel get with t=) ends at
//  once rather than at its time, with what came before the end read into
//  the buffer for later, or left in the socket when the buffer is full
//  (read once the owner takes input again: the peer can send nothing
//  after its end, so what is left is bounded by the socket's buffer).
static bool
s_looks_for_end (arb_stream_t *self)
{
    return self->handler.ended && self->held && !self->ended && !self->sink && !self->closing
           && !self->broken && !self->dead;
}

//  What the stream watches for the peer's end of its side: a stream whose
//  owner takes a half-close finds it by reading, in turn with the input,
//  or while it holds as above; any other stream closes at once, reading
//  or not.
static unsigned
s_rdhup (arb_stream_t *self)
{
    if (!self->handler.ended)
        return ARB_REACTOR_RDHUP;
    return s_looks_for_end (self) ? ARB_REACTOR_RDHUP : 0;
}

//  Held, and the peer ended its side: the end is known (ended) and what
//  the peer sent before it is read into the buffer, unhandled, up to the
//  end (eof), a failure (broken), or a full buffer (the rest is read when
//  the owner takes input again).
static void
s_read_to_end (arb_stream_t *self)
{
    self->ended = true;
    while (self->in_len - self->in_off < self->input_max) {
        uint64_t read_before = self->bytes_read;
        int rc = s_read (self);
        if (rc > 0) {
            self->eof = true;
            return;
        }
        if (rc < 0) {
            self->broken = true;
            return;
        }
        if (self->bytes_read == read_before)
            return;     //  nothing more yet
        s_keep (self);  //  out of the scratch buffer: the next read goes after it
    }
}

//  Watches for what is needed next, or closes.
static void
s_update (arb_stream_t *self)
{
    if (self->dead)
        return;
    if (self->closing && !self->out && !self->draining && s_start_drain (self))
        self->broken = true;
    if (self->broken) {
        arb_stream_close (self);
        return;
    }
    if (!self->draining && self->was_full && self->out_bytes < self->output_max / 2) {
        self->was_full = false;
        if (self->handler.drained)
            self->handler.drained (self->arg, self);
        if (self->dead)
            return;
    }
    if (self->out_bytes >= self->output_max)
        self->was_full = true;
    unsigned events = ARB_REACTOR_READ | s_rdhup (self);  //  draining: to the peer's end
    if (!self->draining)
        events = (s_wants_input (self) ? ARB_REACTOR_READ : 0) | (self->out ? ARB_REACTOR_WRITE : 0)
                 | s_rdhup (self);
    if (events != self->watching && arb_reactor_watch_fd (self->reactor, self->fd, events) == 0)
        self->watching = events;
}

static void
s_handle_input (arb_stream_t *self)
{
    if ((self->in_len > self->in_off || self->sunk) && !self->held && !self->dead && !self->closing)
        self->handler.input (self->arg, self);
}

//  After a read: the owner told of the peer's end when it became known,
//  and again when the input was read to it, if that came later (ended
//  and eof before the read: was_ended, was_eof); then the answers to what
//  was read written.
static void
s_after_read (arb_stream_t *self, bool was_ended, bool was_eof)
{
    if ((self->ended != was_ended || self->eof != was_eof) && !self->dead)
        self->handler.ended (self->arg, self);
    if (!self->dead)
        s_flush (self);
}

//  Readiness while the stream is open: the output leaves, the input is
//  read and handed to the handler.
static void
s_on_ready (arb_stream_t *self, unsigned events)
{
    if (events & ARB_REACTOR_WRITE)
        s_flush (self);
    bool was_ended = self->ended, was_eof = self->eof;
    if ((events & ARB_REACTOR_READ) && s_wants_input (self)) {
        int rc = s_read (self);
        //  the peer's end of its side, while ours can still be written (a
        //  client that half-closes reads its answers): an owner that
        //  takes it answers what came and then closes; a reset, or both
        //  sides shut, ends the stream at once
        if (rc > 0 && self->handler.ended && !(events & ARB_REACTOR_HUP))
            self->ended = self->eof = true;
        else if (rc != 0)
            self->broken = true;
        //  what came before the end is taken all the same (a publish
        //  followed by a close)
        s_handle_input (self);
        s_after_read (self, was_ended, was_eof);
    }
    else if ((events & ARB_REACTOR_RDHUP) && !(events & ARB_REACTOR_HUP)
             && s_looks_for_end (self)) {
        s_read_to_end (self);
        s_after_read (self, was_ended, was_eof);
    }
    else if (events & (ARB_REACTOR_HUP | ARB_REACTOR_RDHUP))
        self->broken = true;
    if (!self->dead)
        s_keep (self);
}

static void
s_on_io (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    arb_stream_t *self = (arb_stream_t *) arg;
    self->depth++;
    if (!self->draining)
        s_on_ready (self, events);
    else if (events & (ARB_REACTOR_READ | ARB_REACTOR_HUP | ARB_REACTOR_RDHUP))
        s_drain (self);
    s_update (self);
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

static void
s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    arb_stream_t *self = (arb_stream_t *) arg;
    self->depth++;
    if (timer == &self->linger)
        arb_stream_close (self);
    else {
        if (self->rerun) {
            self->rerun = false;
            s_handle_input (self);
        }
        if (!self->dead) {
            s_keep (self);
            s_flush (self);
        }
        s_update (self);
    }
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

arb_stream_t *
arb_stream_new (arb_reactor_t *reactor,
                int fd,
                size_t input_max,
                arb_stream_io_t *io,
                const arb_stream_handler_t *handler,
                void *arg)
{
    int flags = fcntl (fd, F_GETFL, 0);
    if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close (fd);
        return NULL;
    }
    arb_stream_t *self = (arb_stream_t *) zmalloc (sizeof (arb_stream_t));
    self->reactor = reactor;
    self->fd = fd;
    self->handler = *handler;
    self->arg = arg;
    self->input_max = input_max;
    self->output_max = ARB_STREAM_HWM;
    self->io = io;
    self->watching = ARB_REACTOR_READ | s_rdhup (self);
    if (arb_reactor_add_fd (reactor, fd, self->watching, s_on_io, self)) {
        close (fd);
        free (self);
        return NULL;
    }
    return self;
}

bool
arb_stream_at_end (arb_stream_t *self)
{
    return self->eof || self->broken || self->dead;
}

bool
arb_stream_is_gone (arb_stream_t *self)
{
    if (self->dead || self->closing || self->draining || self->broken || self->ended)
        return true;
    //  the peer's end (or a reset) may wait in the socket behind events
    //  this turn has not handled yet
    uint8_t byte;
    ssize_t n = recv (self->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

uint64_t
arb_stream_bytes_read (arb_stream_t *self)
{
    return self->bytes_read;
}

uint64_t
arb_stream_bytes_written (arb_stream_t *self)
{
    return self->bytes_written;
}
