/*  arb_kestrel_conn.c — one Kestrel client connection; see
    arb_kestrel_conn.h.

    Answers wait in slots, a FIFO in command order. The slot at the head
    writes its answer to the stream at once; a later one keeps it as
    frames (a VALUE's item is the task's payload frame, written as it is)
    until every slot before it is answered.

    Re-entry. The handler may answer from inside its command callback
    (the processing loop goes on) or later, from the broker's reply (then
    the connection only writes or keeps the answer and, if it had stopped
    taking commands, lets the stream hand it its input again from the
    stream's kick timer, later in the same turn): so no handler code ever
    runs inside another handler call, and a connection is freed only when
    none of its input handlers is on the stack.

    Half-close. A client that ends its side (shutdown SHUT_WR, as `nc -q`
    and socat do after the last command) still reads, as memcached
    assumes: every whole command read before the end is taken in order,
    as ever, and once none is left and every slot is answered and
    written, the connection closes (s_check_end); a partial command left
    at the end is dropped.
*/

#include "arb_kestrel_conn.h"

#include <inttypes.h>
#include <stdarg.h>

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
    s_piece_t *head;   //  owned answer frames kept until the slot is at the head
    s_piece_t *tail;
} s_slot_t;

struct _arb_kestrel_conn_t {
    arb_reactor_t *reactor;       //  borrowed
    arb_stream_t *stream;         //  owned (frees itself once closed); NULL once closed
    size_t max_item;              //  bytes
    uint64_t request_timeout_ms;  //  a command arrives within this of its first byte; 0: any
    bool arriving;                //  a command has begun and is not in yet
    uint64_t arriving_ms;         //  reactor time its first byte was seen
    arb_timer_t deadline;         //  armed while one arrives (moved on when it fires early)
    uint64_t idle_timeout_ms;     //  an idle connection is closed after this long; 0: never
    uint64_t active_ms;           //  reactor time of its last input or answer
    uint64_t written_mark;        //  stream bytes written when the idle timer last looked
    arb_timer_t idle;             //  armed for the idle timeout (moved on while it is not idle)
    arb_kestrel_conn_handler_t handler;
    void *arg;   //  borrowed, for the handler
    void *user;  //  borrowed, the handler's record

    s_state_t state;
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

    bool closing;  //  an answer that closes went out, or the last after the end: no more commands
    bool ended;    //  the client ended its side (half-close): close after the last answer
    bool held;     //  stopped taking commands (the stream holds its input)
    bool dead;     //  closed: free when none of its handlers is on the stack
    int depth;     //  input handlers on the stack
};

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

//  One piece of a slot's answer: size bytes at data, inside *frame_p if
//  frame_p is not NULL (taken). Written at once by the slot at the head,
//  kept by any other.
static void
s_put (arb_kestrel_conn_t *self, s_slot_t *slot, const void *data, size_t size, zframe_t **frame_p)
{
    if (slot->noreply || !self->stream) {
        if (frame_p)
            zframe_destroy (frame_p);
        return;
    }
    if (slot == self->slots) {
        if (frame_p)
            arb_stream_write_slice (self->stream, (const uint8_t *) data, size, frame_p);
        else
            arb_stream_write (self->stream, data, size);
        return;
    }
    s_piece_t *piece = (s_piece_t *) zmalloc (sizeof (s_piece_t));
    if (frame_p) {
        piece->frame = *frame_p;
        *frame_p = NULL;
    }
    else
        piece->frame = zframe_new (data, size);
    if (slot->tail)
        slot->tail->next = piece;
    else
        slot->head = piece;
    slot->tail = piece;
}

//  Writes the answered slots at the head of the FIFO.
static void
s_drain_slots (arb_kestrel_conn_t *self)
{
    while (self->slots && self->slots->done) {
        s_slot_t *slot = self->slots;
        self->slots = slot->next;
        if (!self->slots)
            self->slots_tail = NULL;
        for (s_piece_t *p = slot->head; p; p = p->next) {
            zframe_t *frame = p->frame;
            p->frame = NULL;
            if (self->stream)
                arb_stream_write_slice (self->stream, zframe_data (frame), zframe_size (frame),
                                        &frame);
            zframe_destroy (&frame);
        }
        s_pieces_free (slot->head);
        if (slot->close_after && !self->closing && self->stream) {
            self->closing = true;
            arb_stream_close_after (self->stream);
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

//  Whether the input holds a whole command line not taken yet.
static bool
s_has_command (arb_kestrel_conn_t *self)
{
    if (self->state != S_LINE || !self->stream)
        return false;
    size_t avail;
    const uint8_t *p = arb_stream_input (self->stream, &avail);
    return avail && memchr (p, '\n', avail);
}

//  After the client's end: closes once its last command is answered (the
//  stream writes what is queued first), the input read to the end and
//  nothing whole left to take.
static void
s_check_end (arb_kestrel_conn_t *self)
{
    if (self->ended && !self->closing && !self->dead && self->stream && !self->slots
        && arb_stream_at_end (self->stream) && !s_has_command (self)) {
        self->closing = true;
        arb_stream_close_after (self->stream);
    }
}

//  A slot's pieces are in: it is answered.
static void
s_answered (arb_kestrel_conn_t *self, s_slot_t *slot, bool close_after)
{
    assert (!slot->done);
    slot->done = true;
    slot->close_after = close_after;
    self->active_ms = arb_reactor_now (self->reactor);
    if (slot->set) {
        self->sets--;
        self->set_bytes -= slot->set_bytes;
    }
    s_drain_slots (self);
    //  an answer from the broker's reply: the commands that waited for it
    //  are taken from the stream's kick, once this turn's answers are in
    if (self->depth == 0 && self->held && self->stream) {
        self->held = false;
        arb_stream_hold (self->stream, false);
    }
    s_check_end (self);
}

//  Answers a new slot with one line: a refusal.
static void
s_refuse (arb_kestrel_conn_t *self, const char *why, bool noreply, bool fatal)
{
    char line[300];
    int len = snprintf (line, sizeof (line), "CLIENT_ERROR %s\r\n", why);
    size_t size = (size_t) len < sizeof (line) ? (size_t) len : sizeof (line) - 1;
    s_slot_t *slot = s_slot_new (self, noreply && !fatal);
    s_put (self, slot, line, size, NULL);
    s_answered (self, slot, fatal);
}

//  ---------------------------------------------------------------------
//  Input

//  Whether a command may be taken now (a set: sets; anything else: not
//  while any answer is pending).
static bool
s_can_take (arb_kestrel_conn_t *self, bool set)
{
    if (self->closing || self->dead || arb_stream_is_full (self->stream))
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
    self->arriving = false;
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
    //  a block longer than any item would be swallowed for as long as the
    //  client does not send it, the commands it sends meanwhile unanswered
    size_t skip_max =
        self->max_item > ARB_KESTREL_CONN_SKIP_MAX ? self->max_item : ARB_KESTREL_CONN_SKIP_MAX;
    if (rc == ARB_KESTREL_BAD && cmd.skip && cmd.bytes > skip_max) {
        size_t used = strlen (why);
        snprintf (why + used, sizeof (why) - used,
                  "; a data block over %zu bytes is not skipped: closing", skip_max);
        rc = ARB_KESTREL_FATAL;
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
//  because it may not take the next one (not for want of input).
static bool
s_process (arb_kestrel_conn_t *self)
{
    while (!self->closing && !self->dead) {
        size_t avail;
        const char *p = (const char *) arb_stream_input (self->stream, &avail);
        if (self->state == S_LINE) {
            if (arb_stream_is_full (self->stream))
                return true;  //  until the client reads
            if (avail && (uint8_t) p[0] == 0x80) {
                //  memcached's binary protocol (its requests' magic byte):
                //  no text command starts so, and its requests have no
                //  line end to wait for (the client would wait for ever)
                if (!s_can_take (self, false))
                    return true;
                s_refuse (self, "the binary protocol is not supported, only the text one", false,
                          true);
                return false;
            }
            const char *nl = avail ? (const char *) memchr (p, '\n', avail) : NULL;
            if (!nl) {
                if (avail <= ARB_KESTREL_LINE_MAX + 1)
                    return false;
                //  a refusal, which waits as any: refused once, then closing
                if (!s_can_take (self, false))
                    return true;
                s_refuse (self, "line too long", false, true);
                return false;
            }
            size_t len = (size_t) (nl - p);
            size_t line_len = len && p[len - 1] == '\r' ? len - 1 : len;
            if (!s_take_line (self, p, line_len))
                return true;
            if (!self->dead)
                arb_stream_consume (self->stream, len + 1);
            if (self->state == S_LINE)
                self->arriving = false;  //  the command is in (a set's block is next)
        }
        else if (self->state == S_DATA) {
            size_t want = zframe_size (self->item) - self->item_got;
            size_t n = avail < want ? avail : want;
            if (n) {
                memcpy (zframe_data (self->item) + self->item_got, p, n);
                self->item_got += n;
                p += n;
                avail -= n;
                arb_stream_consume (self->stream, n);
            }
            bool ok = true;
            size_t crlf = 0;
            while (self->item_got == zframe_size (self->item) && self->crlf_got < 2
                   && crlf < avail) {
                ok = p[crlf] == "\r\n"[self->crlf_got];
                self->crlf_got++;
                crlf++;
                if (!ok)
                    break;
            }
            if (crlf)
                arb_stream_consume (self->stream, crlf);
            if (!ok || self->crlf_got == 2)
                s_end_item (self, ok);
            else {
                //  the rest of the item comes straight from the socket
                if (self->item_got < zframe_size (self->item))
                    arb_stream_sink (self->stream, zframe_data (self->item) + self->item_got,
                                     zframe_size (self->item) - self->item_got);
                return false;
            }
        }
        else {
            size_t n = avail < self->skip_left ? avail : (size_t) self->skip_left;
            arb_stream_consume (self->stream, n);
            self->skip_left -= n;
            if (self->skip_left == 0) {
                self->state = S_LINE;
                self->arriving = false;
            }
            else
                return false;
        }
    }
    return false;
}

//  Whether a timer of the connection is due (its time, from_ms + after_ms,
//  has come); if not (what it times began again since it was armed), it
//  is armed again for then.
static bool
s_due (arb_kestrel_conn_t *self,
       arb_timer_t *timer,
       arb_reactor_timer_fn *fn,
       uint64_t from_ms,
       uint64_t after_ms)
{
    uint64_t now = arb_reactor_now (self->reactor);
    if (now >= from_ms + after_ms)
        return true;
    arb_reactor_arm (self->reactor, timer, from_ms + after_ms - now, fn, self);
    return false;
}

static void
s_on_deadline (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    if (!self->arriving || self->closing || !self->stream
        || !s_due (self, &self->deadline, s_on_deadline, self->arriving_ms,
                   self->request_timeout_ms))
        return;
    zsys_debug ("kestrel: command not in within the request timeout: closing timeout_ms=%" PRIu64,
                self->request_timeout_ms);
    arb_kestrel_conn_close (self);  //  frees self (no handler of it is on the stack)
}

//  The idle timeout. A connection is idle while no command of its is
//  answered nor in progress (a get waiting for an item with t=, any
//  command waiting for the broker), no byte comes from the client, and
//  none of its answers is written (a client reading a large answer slowly
//  is busy; one that stops reading is as idle as one that stops writing).
//  Items it holds open do not keep it: its end gives them back to the
//  head of their queues, as any end does (docs/gateway.md).
static void
s_on_idle (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    if (self->closing || !self->stream)
        return;  //  its end is on its way (bounded by the stream's linger)
    uint64_t now = arb_reactor_now (reactor);
    //  answers left to write that the client took some of since the last
    //  look: it reads (an answer's own time is in active_ms already)
    uint64_t written = arb_stream_bytes_written (self->stream);
    bool reading = arb_stream_pending (self->stream) && written != self->written_mark;
    self->written_mark = written;
    if (self->slots || reading)
        self->active_ms = now;
    if (!s_due (self, &self->idle, s_on_idle, self->active_ms, self->idle_timeout_ms))
        return;
    zsys_debug ("kestrel: idle for the idle timeout: closing timeout_ms=%" PRIu64,
                self->idle_timeout_ms);
    arb_kestrel_conn_close (self);  //  frees self (no handler of it is on the stack)
}

//  After the input was taken: whether a command is arriving, and since
//  when. Not while the connection cannot take it (blocked: it waits for
//  the answers before it, or for the client to read), nor while nothing
//  of one is in.
static void
s_arrival (arb_kestrel_conn_t *self, bool blocked)
{
    size_t avail = 0;
    if (self->stream)
        arb_stream_input (self->stream, &avail);
    if (blocked || self->closing || self->dead || !self->stream
        || (self->state == S_LINE && !avail)) {
        self->arriving = false;  //  the timer, if armed, finds nothing
        return;
    }
    if (self->arriving)
        return;
    self->arriving = true;
    self->arriving_ms = arb_reactor_now (self->reactor);
    if (self->request_timeout_ms && !self->deadline.armed)
        arb_reactor_arm (self->reactor, &self->deadline, self->request_timeout_ms, s_on_deadline,
                         self);
}

static void
s_free (arb_kestrel_conn_t *self)
{
    arb_reactor_disarm (self->reactor, &self->deadline);
    arb_reactor_disarm (self->reactor, &self->idle);
    while (self->slots) {
        s_slot_t *slot = self->slots;
        self->slots = slot->next;
        s_pieces_free (slot->head);
        free (slot);
    }
    zframe_destroy (&self->item);
    zstr_free (&self->item_key);
    free (self);
}

static void
s_on_input (void *arg, arb_stream_t *stream)
{
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    self->depth++;
    self->active_ms = arb_reactor_now (self->reactor);
    //  what a read put straight into the item, and no sink while the
    //  buffered input is taken (s_process sets it again)
    if (self->state == S_DATA)
        self->item_got += arb_stream_sunk (stream);
    arb_stream_sink (stream, NULL, 0);
    bool blocked = s_process (self);
    if (!self->dead && blocked && !self->held) {
        self->held = true;
        arb_stream_hold (stream, true);
    }
    s_arrival (self, blocked);
    s_check_end (self);
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

static void
s_on_drained (void *arg, arb_stream_t *stream)
{
    //  the client reads again: the input handler looks once more
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    if (self->held) {
        self->held = false;
        arb_stream_hold (stream, false);
    }
    //  held with no whole command (the output was full): nothing more
    s_check_end (self);
}

static void
s_on_ended (void *arg, arb_stream_t *stream)
{
    (void) stream;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    self->ended = true;
    self->depth++;
    if (self->handler.ended)
        self->handler.ended (self->arg, self);
    //  a wait the end cut short (the stream tells of the end while it
    //  holds the commands behind it) was answered within this call: they
    //  are taken from the stream's kick, as after a broker's reply
    if (!self->dead && self->held && self->stream) {
        self->held = false;
        arb_stream_hold (self->stream, false);
    }
    s_check_end (self);
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

bool
arb_kestrel_conn_is_gone (arb_kestrel_conn_t *self)
{
    return self->closing || self->ended || self->dead || !self->stream
           || arb_stream_is_gone (self->stream);
}

bool
arb_kestrel_conn_ended (arb_kestrel_conn_t *self)
{
    return self->ended;
}

static void
s_on_closed (void *arg, arb_stream_t *stream)
{
    (void) stream;
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) arg;
    self->dead = true;
    self->stream = NULL;
    self->handler.closed (self->arg, self);
    if (self->depth == 0)
        s_free (self);
}

void
arb_kestrel_conn_close (arb_kestrel_conn_t *self)
{
    if (self->stream)
        arb_stream_close (self->stream);
}

arb_kestrel_conn_t *
arb_kestrel_conn_new (arb_reactor_t *reactor,
                      int fd,
                      size_t max_item,
                      uint64_t request_timeout_ms,
                      uint64_t idle_timeout_ms,
                      arb_stream_io_t *io,
                      const arb_kestrel_conn_handler_t *handler,
                      void *arg)
{
    arb_kestrel_conn_t *self = (arb_kestrel_conn_t *) zmalloc (sizeof (arb_kestrel_conn_t));
    self->reactor = reactor;
    self->max_item = max_item;
    self->request_timeout_ms = request_timeout_ms;
    self->idle_timeout_ms = idle_timeout_ms;
    self->active_ms = arb_reactor_now (reactor);
    self->handler = *handler;
    self->arg = arg;
    self->state = S_LINE;
    arb_stream_handler_t on = {s_on_input, s_on_drained, s_on_closed, s_on_ended};
    //  a line too long is seen once more than its limit waits
    self->stream =
        arb_stream_new (reactor, fd, ARB_STREAM_READ + ARB_KESTREL_LINE_MAX + 2, io, &on, self);
    if (!self->stream) {
        free (self);
        return NULL;
    }
    arb_stream_set_output_max (self->stream, ARB_KESTREL_CONN_HWM);
    if (idle_timeout_ms)
        arb_reactor_arm (reactor, &self->idle, idle_timeout_ms, s_on_idle, self);
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
    if (text)
        s_put (self, slot, text, len, NULL);
    s_answered (self, slot, close_after);
}

void
arb_kestrel_conn_add_frame (arb_kestrel_conn_t *self, uint64_t slot_seq, zframe_t **frame_p)
{
    s_slot_t *slot = s_slot_find (self, slot_seq);
    assert (slot && !slot->done);
    zframe_t *frame = *frame_p;
    s_put (self, slot, zframe_data (frame), zframe_size (frame), frame_p);
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
    size_t size = zframe_size (item);
    char line[ARB_KESTREL_KEY_MAX + 64];
    int len = snprintf (line, sizeof (line), "VALUE %.*s %u %zu", (int) key_len, key, flags, size);
    if (cas)
        len += snprintf (line + len, sizeof (line) - (size_t) len, " %" PRIu64, cas);
    len += snprintf (line + len, sizeof (line) - (size_t) len, "\r\n");
    s_put (self, slot, line, (size_t) len, NULL);
    if (size)
        s_put (self, slot, zframe_data (item), size, &item);
    zframe_destroy (&item);
    s_put (self, slot, "\r\nEND\r\n", 7, NULL);
    s_answered (self, slot, false);
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
