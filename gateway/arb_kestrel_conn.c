/*  arb_kestrel_conn.c — one Kestrel client connection; see
    arb_kestrel_conn.h.

    Answers wait in slots, a FIFO in command order; a slot's answer is a
    list of frames (a VALUE's item is the task's payload frame, written
    as it is). Answered slots at the head move to the output list, which
    is written with sendmsg (MSG_NOSIGNAL: a client gone is an error to
    handle, not a signal).

    Re-entry. The handler may answer from inside its command callback
    (the processing loop goes on) or later, from the broker's reply
    (then the connection only queues the answer and arms its kick timer,
    which writes every answer of the turn at once and takes the next
    commands, later in the same turn): so no handler code ever
    runs inside another handler call, and a connection is freed only by
    its own entry points (events, timers) once nothing of it is on the
    stack.
*/

#include "arb_kestrel_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ARB_IOV_MAX 64  //  frames written by one sendmsg

typedef enum {
    S_LINE,  //  reading a command line
    S_DATA,  //  reading a set's item, then CR LF
    S_SKIP,  //  throwing away a refused storage command's block
} s_state_t;

typedef struct _s_piece_t {
    struct _s_piece_t *next;
    zframe_t *frame;  //  owned
} s_piece_t;

typedef struct _s_slot_t {
    struct _s_slot_t *next;
    uint64_t seq;
    bool done;
    bool noreply;      //  the answer is dropped
    bool close_after;  //  close once this answer is out
    bool set;          //  a set in flight
    size_t set_bytes;  //  its item's size
    s_piece_t *head;   //  owned answer frames
    s_piece_t *tail;
} s_slot_t;

struct _arb_kestrel_conn_t {
    arb_reactor_t *reactor;  //  borrowed
    int fd;                  //  owned
    size_t max_item;         //  bytes
    arb_kestrel_io_t *io;    //  borrowed counters
    arb_kestrel_conn_handler_t handler;
    void *arg;   //  borrowed, for the handler
    void *user;  //  borrowed, the handler's record

    s_state_t state;
    char *in;         //  input not yet taken: owned, or the shared scratch, or NULL
    bool in_scratch;  //  in is io->scratch (during one read's processing)
    size_t in_off;    //  bytes of in taken
    size_t in_len;    //  bytes of in filled
    size_t in_cap;
    zframe_t *item;              //  owned: the set being read
    size_t item_got;             //  bytes of it read
    size_t crlf_got;             //  bytes of its CR LF read
    arb_kestrel_cmd_t item_cmd;  //  its command; key and queue point to item_key
    char *item_key;              //  owned copy of its key
    uint64_t skip_left;          //  S_SKIP: bytes to throw away

    uint64_t next_seq;
    s_slot_t *slots;  //  owned FIFO, oldest first
    s_slot_t *slots_tail;
    size_t sets;       //  sets in flight
    size_t set_bytes;  //  their items' bytes

    s_piece_t *out;  //  owned output, oldest first
    s_piece_t *out_tail;
    size_t out_off;    //  bytes of the first piece written
    size_t out_bytes;  //  bytes not yet written

    bool closing;  //  no more commands: close once the output is written
    bool broken;   //  the socket failed: close at the next entry
    bool dead;     //  closed: free when nothing of it is on the stack
    int depth;     //  entry points on the stack
    unsigned watching;
    arb_timer_t kick;    //  take the next commands (after a late answer)
    arb_timer_t linger;  //  closing: close anyway by then
};

static void s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);

//  ---------------------------------------------------------------------
//  Output

static void
s_pieces_free (s_piece_t *piece)
{
    while (piece) {
        s_piece_t *next = piece->next;
        zframe_destroy (&piece->frame);
        free (piece);
        piece = next;
    }
}

static void
s_slot_add (s_slot_t *slot, zframe_t **frame_p)
{
    s_piece_t *piece = (s_piece_t *) zmalloc (sizeof (s_piece_t));
    piece->frame = *frame_p;
    *frame_p = NULL;
    if (slot->tail)
        slot->tail->next = piece;
    else
        slot->head = piece;
    slot->tail = piece;
}

//  Writes what the socket takes now.
static void
s_flush (arb_kestrel_conn_t *self)
{
    while (self->out && !self->broken) {
        struct iovec iov[ARB_IOV_MAX];
        int n = 0;
        size_t off = self->out_off;
        for (s_piece_t *p = self->out; p && n < ARB_IOV_MAX; p = p->next) {
            iov[n].iov_base = (char *) zframe_data (p->frame) + off;
            iov[n].iov_len = zframe_size (p->frame) - off;
            off = 0;
            n++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t) n};
        ssize_t sent = sendmsg (self->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                self->broken = true;
            return;
        }
        self->io->bytes_written += (uint64_t) sent;
        self->out_bytes -= (size_t) sent;
        size_t left = (size_t) sent;
        while (self->out && left >= zframe_size (self->out->frame) - self->out_off) {
            left -= zframe_size (self->out->frame) - self->out_off;
            s_piece_t *done = self->out;
            self->out = done->next;
            done->next = NULL;
            s_pieces_free (done);
            self->out_off = 0;
        }
        if (!self->out)
            self->out_tail = NULL;
        else
            self->out_off += left;
    }
}

//  Moves the answered slots at the head of the FIFO to the output.
static void
s_drain_slots (arb_kestrel_conn_t *self)
{
    while (self->slots && self->slots->done) {
        s_slot_t *slot = self->slots;
        self->slots = slot->next;
        if (!self->slots)
            self->slots_tail = NULL;
        for (s_piece_t *p = slot->head; p; p = p->next)
            self->out_bytes += zframe_size (p->frame);
        if (slot->head) {
            if (self->out_tail)
                self->out_tail->next = slot->head;
            else
                self->out = slot->head;
            self->out_tail = slot->tail;
        }
        if (slot->close_after && !self->closing) {
            self->closing = true;
            arb_reactor_arm (self->reactor, &self->linger, ARB_KESTREL_CONN_LINGER_MS, s_on_timer,
                             self);
        }
        free (slot);
    }
}

static s_slot_t *
s_slot_new (arb_kestrel_conn_t *self, bool noreply)
{
    s_slot_t *slot = (s_slot_t *) zmalloc (sizeof (s_slot_t));
    slot->seq = ++self->next_seq;
    slot->noreply = noreply;
    if (self->slots_tail)
        self->slots_tail->next = slot;
    else
        self->slots = slot;
    self->slots_tail = slot;
    return slot;
}

static s_slot_t *
s_slot_find (arb_kestrel_conn_t *self, uint64_t seq)
{
    for (s_slot_t *slot = self->slots; slot; slot = slot->next)
        if (slot->seq == seq)
            return slot;
    return NULL;
}

//  Answers a slot: frames kept unless it is a noreply one.
static void
s_answer (arb_kestrel_conn_t *self, s_slot_t *slot, zframe_t **frames, size_t n, bool close_after)
{
    assert (!slot->done);
    for (size_t i = 0; i < n; i++) {
        if (slot->noreply)
            zframe_destroy (&frames[i]);
        else
            s_slot_add (slot, &frames[i]);
    }
    slot->done = true;
    slot->close_after = close_after;
    if (slot->set) {
        self->sets--;
        self->set_bytes -= slot->set_bytes;
    }
    s_drain_slots (self);
    //  written (and the next commands taken) once this turn's answers are
    //  all in: one write for many
    if (self->depth == 0 && !self->dead && !self->kick.armed)
        arb_reactor_arm (self->reactor, &self->kick, 0, s_on_timer, self);
}

//  ---------------------------------------------------------------------
//  Input

static void
s_refuse (arb_kestrel_conn_t *self, const char *why, bool noreply, bool fatal)
{
    char line[300];
    int len = snprintf (line, sizeof (line), "CLIENT_ERROR %s\r\n", why);
    zframe_t *frame =
        zframe_new (line, (size_t) len < sizeof (line) ? (size_t) len : sizeof (line) - 1);
    s_answer (self, s_slot_new (self, noreply && !fatal), &frame, 1, fatal);
}

//  Whether a command may be taken now (a set: sets; anything else: not
//  while any answer is pending).
static bool
s_can_take (arb_kestrel_conn_t *self, bool set)
{
    if (self->closing || self->broken || self->out_bytes >= ARB_KESTREL_CONN_HWM)
        return false;
    if (set)
        return !self->slots
               || (self->slots_tail->set && self->sets < ARB_KESTREL_CONN_SETS
                   && self->set_bytes < ARB_KESTREL_CONN_SET_BYTES);
    return !self->slots;
}

static void
s_hand_over (arb_kestrel_conn_t *self, const arb_kestrel_cmd_t *cmd, zframe_t **item_p)
{
    s_slot_t *slot = s_slot_new (self, cmd->noreply);
    if (cmd->verb == ARB_KESTREL_SET) {
        slot->set = true;
        slot->set_bytes = (size_t) cmd->bytes;
        self->sets++;
        self->set_bytes += slot->set_bytes;
    }
    self->handler.command (self->arg, self, cmd, item_p, slot->seq);
}

//  A set line was taken: its item comes next.
static void
s_start_item (arb_kestrel_conn_t *self, const arb_kestrel_cmd_t *cmd)
{
    self->item_cmd = *cmd;
    self->item_key = (char *) malloc (cmd->key_len + 1);
    assert (self->item_key);
    memcpy (self->item_key, cmd->key, cmd->key_len);
    self->item_key[cmd->key_len] = 0;
    self->item_cmd.key = self->item_key;
    self->item_cmd.queue = self->item_key;
    self->item = zframe_new (NULL, (size_t) cmd->bytes);
    self->item_got = 0;
    self->crlf_got = 0;
    self->state = S_DATA;
}

//  The item and its CR LF are in: hand the set over.
static void
s_end_item (arb_kestrel_conn_t *self, bool crlf_ok)
{
    self->state = S_LINE;
    if (!crlf_ok)
        //  the block was not the announced length: what follows cannot
        //  be told apart from the item
        s_refuse (self, "bad data chunk", false, true);
    else
        s_hand_over (self, &self->item_cmd, &self->item);
    zframe_destroy (&self->item);
    zstr_free (&self->item_key);
}

//  One line (without its line end). Returns false if it was left for
//  later (the command must wait).
static bool
s_take_line (arb_kestrel_conn_t *self, const char *line, size_t len)
{
    arb_kestrel_cmd_t cmd;
    char why[256];
    arb_kestrel_rc_t rc = arb_kestrel_cmd_parse (line, len, &cmd, why, sizeof (why));
    bool set = rc == ARB_KESTREL_OK && cmd.verb == ARB_KESTREL_SET;
    //  a refusal waits like any command but a set: refusals never pile up
    if (!s_can_take (self, set))
        return false;
    if (rc == ARB_KESTREL_OK && set && cmd.bytes > self->max_item) {
        snprintf (why, sizeof (why), "item of %" PRIu64 " bytes, over the limit of %zu bytes",
                  cmd.bytes, self->max_item);
        rc = ARB_KESTREL_BAD;
        cmd.skip = true;
    }
    if (rc != ARB_KESTREL_OK) {
        char quoted[65];  //  at most 64 bytes of a peer's input, non-printables as '.'
        size_t n = len < 64 ? len : 64;
        for (size_t k = 0; k < n; k++)
            quoted[k] = line[k] >= 0x20 && line[k] < 0x7f ? line[k] : '.';
        quoted[n] = 0;
        zsys_debug ("kestrel: refused line=\"%s\" reason=\"%s\"", quoted, why);
        s_refuse (self, why, cmd.noreply, rc == ARB_KESTREL_FATAL);
        if (rc == ARB_KESTREL_BAD && cmd.skip) {
            self->state = S_SKIP;
            self->skip_left = cmd.bytes + 2;
        }
    }
    else if (set)
        s_start_item (self, &cmd);
    else
        s_hand_over (self, &cmd, NULL);
    return true;
}

//  Takes commands from the input while it can. Returns true if it stopped
//  for want of input (reading more makes sense).
static bool
s_process (arb_kestrel_conn_t *self)
{
    while (!self->closing && !self->dead && !self->broken) {
        //  no buffer at all while an item is read into directly
        char *p = self->in ? self->in + self->in_off : NULL;
        size_t avail = self->in_len - self->in_off;
        if (self->state == S_LINE) {
            if (self->out_bytes >= ARB_KESTREL_CONN_HWM)
                return false;  //  until the client reads
            char *nl = avail ? (char *) memchr (p, '\n', avail) : NULL;
            if (!nl) {
                if (avail > ARB_KESTREL_LINE_MAX + 1) {
                    s_refuse (self, "line too long", false, true);
                    return false;
                }
                return true;
            }
            size_t len = (size_t) (nl - p);
            size_t line_len = len && p[len - 1] == '\r' ? len - 1 : len;
            if (!s_take_line (self, p, line_len))
                return false;
            self->in_off += len + 1;
        }
        else if (self->state == S_DATA) {
            size_t want = zframe_size (self->item) - self->item_got;
            size_t n = avail < want ? avail : want;
            if (n) {
                memcpy (zframe_data (self->item) + self->item_got, p, n);
                self->item_got += n;
                p += n;
                avail -= n;
                self->in_off += n;
            }
            bool ok = true;
            while (self->item_got == zframe_size (self->item) && self->crlf_got < 2 && avail) {
                ok = ok && *p == "\r\n"[self->crlf_got];
                self->crlf_got++;
                p++;
                avail--;
                self->in_off++;
                if (!ok)
                    break;
            }
            if (!ok || self->crlf_got == 2)
                s_end_item (self, ok);
            else if (!avail)
                return true;
        }
        else {
            size_t n = avail < self->skip_left ? avail : (size_t) self->skip_left;
            self->in_off += n;
            self->skip_left -= n;
            if (self->skip_left == 0)
                self->state = S_LINE;
            else
                return true;
        }
    }
    return false;
}

//  Keeps what is left of the input at the start of the buffer, or frees it.
static void
s_compact (arb_kestrel_conn_t *self)
{
    size_t left = self->in_len - self->in_off;
    if (left == 0) {
        if (!self->in_scratch)
            free (self->in);
        self->in = NULL;
        self->in_cap = 0;
    }
    else if (self->in_scratch) {
        //  what this connection cannot take yet leaves the shared buffer
        char *own = (char *) malloc (left + ARB_KESTREL_CONN_READ);
        assert (own);
        memcpy (own, self->in + self->in_off, left);
        self->in = own;
        self->in_cap = left + ARB_KESTREL_CONN_READ;
    }
    else if (self->in_off)
        memmove (self->in, self->in + self->in_off, left);
    self->in_scratch = false;
    self->in_off = 0;
    self->in_len = left;
}

//  Reads once. Returns -1 if the connection ended.
static int
s_read (arb_kestrel_conn_t *self)
{
    ssize_t n;
    if (self->state == S_DATA && self->in_len == self->in_off
        && self->item_got < zframe_size (self->item)) {
        //  straight into the item
        n = read (self->fd, zframe_data (self->item) + self->item_got,
                  zframe_size (self->item) - self->item_got);
        if (n > 0)
            self->item_got += (size_t) n;
    }
    else {
        if (!self->in) {
            self->in = self->io->scratch;
            self->in_scratch = true;
            self->in_cap = ARB_KESTREL_CONN_READ;
            self->in_len = self->in_off = 0;
        }
        size_t need = self->in_len + ARB_KESTREL_CONN_READ;
        if (self->in_cap < need) {
            self->in = (char *) realloc (self->in, need);
            assert (self->in);
            self->in_cap = need;
        }
        n = read (self->fd, self->in + self->in_len, ARB_KESTREL_CONN_READ);
        if (n > 0)
            self->in_len += (size_t) n;
    }
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    self->io->bytes_read += (uint64_t) n;
    return 0;
}

//  ---------------------------------------------------------------------
//  Life

static void
s_free (arb_kestrel_conn_t *self)
{
    while (self->slots) {
        s_slot_t *slot = self->slots;
        self->slots = slot->next;
        s_pieces_free (slot->head);
        free (slot);
    }
    s_pieces_free (self->out);
    zframe_destroy (&self->item);
    zstr_free (&self->item_key);
    if (!self->in_scratch)
        free (self->in);
    free (self);
}

void
arb_kestrel_conn_close (arb_kestrel_conn_t *self)
{
    if (self->dead)
        return;
    self->dead = true;
    self->handler.closed (self->arg, self);
    arb_reactor_disarm (self->reactor, &self->kick);
    arb_reactor_disarm (self->reactor, &self->linger);
    arb_reactor_remove_fd (self->reactor, self->fd);
    close (self->fd);
    if (self->depth == 0)
        s_free (self);
}

//  Runs the input as far as it goes and watches for what is needed next.
static void
s_run (arb_kestrel_conn_t *self)
{
    bool hungry = s_process (self);
    s_flush (self);
    if (self->broken || (self->closing && !self->out)) {
        arb_kestrel_conn_close (self);
        return;
    }
    if (!self->dead) {
        s_compact (self);
        unsigned events =
            (hungry && !self->closing ? ARB_REACTOR_READ : 0) | (self->out ? ARB_REACTOR_WRITE : 0);
        if (events != self->watching && arb_reactor_watch_fd (self->reactor, self->fd, events) == 0)
            self->watching = events;
    }
}

static void
s_enter (arb_kestrel_conn_t *self)
{
    self->depth++;
}

static void
s_leave (arb_kestrel_conn_t *self)
{
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

static void
s_on_io (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    s_enter (self);
    if (events & ARB_REACTOR_WRITE)
        s_flush (self);
    bool ended = false;
    if ((events & ARB_REACTOR_READ) && (self->watching & ARB_REACTOR_READ))
        ended = s_read (self) != 0;
    else if (events & ARB_REACTOR_HUP)
        ended = true;  //  gone while we did not read: nothing more will come
    if (ended) {
        //  take what came before the end, then close: the client cannot
        //  read answers any more, and its open items go back
        s_process (self);
        s_compact (self);  //  nothing may stay in the shared buffer
        arb_kestrel_conn_close (self);
    }
    else
        s_run (self);
    s_leave (self);
}

static void
s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    s_enter (self);
    if (timer == &self->linger)
        arb_kestrel_conn_close (self);
    else
        s_run (self);
    s_leave (self);
}

arb_kestrel_conn_t *
arb_kestrel_conn_new (arb_reactor_t *reactor,
                      int fd,
                      size_t max_item,
                      arb_kestrel_io_t *io,
                      const arb_kestrel_conn_handler_t *handler,
                      void *arg)
{
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) zmalloc (sizeof (arb_kestrel_conn_t));
    self->reactor = reactor;
    self->fd = fd;
    self->max_item = max_item;
    self->io = io;
    self->handler = *handler;
    self->arg = arg;
    self->state = S_LINE;
    self->watching = ARB_REACTOR_READ;
    if (arb_reactor_add_fd (reactor, fd, ARB_REACTOR_READ, s_on_io, self)) {
        close (fd);
        free (self);
        return NULL;
    }
    return self;
}

//  ---------------------------------------------------------------------
//  Answers

void
arb_kestrel_conn_answer (
    arb_kestrel_conn_t *self, uint64_t slot_seq, const char *text, size_t len, bool close_after)
{
    s_slot_t *slot = s_slot_find (self, slot_seq);
    assert (slot);
    zframe_t *frame = text ? zframe_new (text, len) : NULL;
    s_answer (self, slot, &frame, frame ? 1 : 0, close_after);
}

void
arb_kestrel_conn_answerf (arb_kestrel_conn_t *self, uint64_t slot, const char *fmt, ...)
{
    char line[512];
    va_list args;
    va_start (args, fmt);
    int len = vsnprintf (line, sizeof (line) - 2, fmt, args);
    va_end (args);
    if (len < 0)
        len = 0;
    if ((size_t) len > sizeof (line) - 3)
        len = (int) sizeof (line) - 3;
    memcpy (line + len, "\r\n", 2);
    arb_kestrel_conn_answer (self, slot, line, (size_t) len + 2, false);
}

void
arb_kestrel_conn_answer_value (arb_kestrel_conn_t *self,
                               uint64_t slot_seq,
                               const char *key,
                               size_t key_len,
                               uint32_t flags,
                               uint64_t cas,
                               zframe_t **item_p)
{
    s_slot_t *slot = s_slot_find (self, slot_seq);
    assert (slot);
    zframe_t *item = *item_p ? *item_p : zframe_new_empty ();
    *item_p = NULL;
    char line[ARB_KESTREL_KEY_MAX + 64];
    int len = snprintf (line, sizeof (line), "VALUE %.*s %u %zu", (int) key_len, key, flags,
                        zframe_size (item));
    if (cas)
        len += snprintf (line + len, sizeof (line) - (size_t) len, " %" PRIu64, cas);
    len += snprintf (line + len, sizeof (line) - (size_t) len, "\r\n");
    zframe_t *frames[3] = {zframe_new (line, (size_t) len), item, zframe_new ("\r\nEND\r\n", 7)};
    s_answer (self, slot, frames, 3, false);
}

void *
arb_kestrel_conn_user (arb_kestrel_conn_t *self)
{
    return self->user;
}

void
arb_kestrel_conn_set_user (arb_kestrel_conn_t *self, void *user)
{
    self->user = user;
}
