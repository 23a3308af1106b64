/*  arb_stream.h — one client's TCP byte stream in the gateway: a
    non-blocking socket in the reactor, its input buffered and bounded, its
    output queued and written with one sendmsg per turn. Both byte-stream
    servers (AMQP, Kestrel) sit on it.

    The protocol connection on top reads what came in with
    arb_stream_input and says how much it took with arb_stream_consume;
    it writes with arb_stream_write (small pieces, copied into a shared
    chunk) and arb_stream_write_frame (a payload frame, written from where
    it is, never copied). What is written during a turn leaves in one
    sendmsg before the loop sleeps (a zero-delay timer), so the answers to
    many frames read together go out together.

    Buffers. A read goes first to the scratch buffer that every stream of
    a server shares (arb_stream_io_t, one per thread); only what the
    connection leaves there (a partial frame or line, input it cannot take
    yet) is copied to a buffer of its own, freed once it is taken, so an
    idle connection holds no input buffer. A large item can be read
    straight into its own memory (arb_stream_sink), never through a buffer.

    Bounds. Input is read only while less than the input limit (set by the
    owner: the protocol's largest frame) waits, and only while the output
    not yet written is below the high-water mark (ARB_STREAM_HWM, or the
    owner's): a client that does not
    read stops being read, and what it sent waits in its kernel buffer
    (TCP back-pressure). The owner can also stop reading
    (arb_stream_hold), e.g. while it waits for the broker.

    Life. The handler's closed runs once, when the stream ends (the peer
    closed, an error, arb_stream_close, or arb_stream_close_after's end:
    the peer's close or the linger); the stream is freed once no handler call of it
    is on the stack, so a handler may close it from anywhere. The end of
    the peer's side (a read finds EOF) ends the stream too, at once (AMQP),
    unless the handler has ended: a client that half-closes (shutdown
    SHUT_WR, `nc -q`, socat) still reads, so the stream stops reading,
    the input before the end is handed over as usual, ended runs, and the
    owner writes its answers and closes (arb_stream_close_after) when it
    is done; a reset, or an error writing, ends it at once all the same.
    Runs in the reactor's thread.
*/

#ifndef ARB_STREAM_H
#define ARB_STREAM_H

#include "arb_reactor.h"

#define ARB_STREAM_READ      65536   //  bytes read at once at most
#define ARB_STREAM_HWM       262144  //  output bytes pending before reading stops
#define ARB_STREAM_CHUNK     16384   //  size of an output chunk for small writes
#define ARB_STREAM_LINGER_MS 2000    //  arb_stream_close_after: the output's time to leave

typedef struct _arb_stream_t arb_stream_t;

//  What every stream of a server (one thread) shares: byte counts, and
//  the buffer a read goes to first.
typedef struct {
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint8_t scratch[ARB_STREAM_READ];
} arb_stream_io_t;

typedef struct {
    //  Input came (arb_stream_input). Take what can be taken.
    void (*input) (void *arg, arb_stream_t *stream);
    //  The output fell below the high-water mark after being above it
    //  (may be NULL).
    void (*drained) (void *arg, arb_stream_t *stream);
    //  The stream ends; it is freed after this returns.
    void (*closed) (void *arg, arb_stream_t *stream);
    //  The peer ended its side (EOF) while this side can still be written
    //  (may be NULL: then the stream ends at once, as on an error). Runs
    //  once the end is known, after input got what was read before it,
    //  and once more if the input is read to the end later
    //  (arb_stream_at_end: a held stream learns of the end with input
    //  still in the socket, read once the owner takes input again);
    //  nothing is read after the end, and the input left stays
    //  (arb_stream_hold still hands it over again). The owner closes the
    //  stream when its answers are out.
    void (*ended) (void *arg, arb_stream_t *stream);
} arb_stream_handler_t;

//  Takes a connected socket fd (made non-blocking here) and starts reading
//  it, at most input_max bytes buffered. handler is copied; reactor, io
//  (the server's shared buffer and counts) and arg are borrowed. Returns
//  NULL (fd closed) if the reactor refuses it.
arb_stream_t *arb_stream_new (arb_reactor_t *reactor,
                              int fd,
                              size_t input_max,
                              arb_stream_io_t *io,
                              const arb_stream_handler_t *handler,
                              void *arg);

//  Changes the input bound (a protocol's frame size after negotiation).
void arb_stream_set_input_max (arb_stream_t *self, size_t input_max);

//  Changes the output's high-water mark (default ARB_STREAM_HWM).
void arb_stream_set_output_max (arb_stream_t *self, size_t output_max);

//  The input not yet consumed (borrowed, valid until the next call of the
//  stream); *size its length.
const uint8_t *arb_stream_input (arb_stream_t *self, size_t *size);

//  Drops the first n bytes of the input.
void arb_stream_consume (arb_stream_t *self, size_t n);

//  While no input is buffered, the next reads go straight to dest (size
//  bytes at most, borrowed: it must live until the sink is full, set
//  again, or cleared with dest NULL), and the handler's input runs after
//  each; arb_stream_sunk says how many came. For an item whose size is
//  known, so that its bytes are never copied.
void arb_stream_sink (arb_stream_t *self, uint8_t *dest, size_t size);

//  Bytes put in the sink since the last call (the sink's dest moves on
//  past each read's bytes by itself).
size_t arb_stream_sunk (arb_stream_t *self);

//  Stops (true) or resumes (false) reading. Resuming hands the input
//  already buffered to the handler again (from a timer, not inside this
//  call).
void arb_stream_hold (arb_stream_t *self, bool hold);

//  Queues size bytes for the peer (copied).
void arb_stream_write (arb_stream_t *self, const void *data, size_t size);

//  Reserves size bytes of output to fill in place (valid until the next
//  call of the stream).
uint8_t *arb_stream_reserve (arb_stream_t *self, size_t size);

//  Queues size bytes at data that lie inside *frame_p, written without a
//  copy; takes the frame if frame_p is not NULL (it is freed once written:
//  give it with the last slice of it). Slices written before it may point
//  into it too.
void
arb_stream_write_slice (arb_stream_t *self, const uint8_t *data, size_t size, zframe_t **frame_p);

//  Output bytes not yet written.
size_t arb_stream_pending (arb_stream_t *self);

//  Whether the output is past the high-water mark. A caller told so gets
//  the drained callback once it falls below half of it, even if the
//  turn's write takes it all at once.
bool arb_stream_is_full (arb_stream_t *self);

//  Writes what is queued now, without waiting for the turn's end.
void arb_stream_flush (arb_stream_t *self);

//  Stops taking input. Once the output is written, ends this side of the
//  connection (the peer reads its end after the last answer), drops what
//  the peer still sends, and closes when the peer closes too; at most
//  ARB_STREAM_LINGER_MS for the output, then as long again for the peer.
//  (Closing with input unread would make the kernel send a reset, which
//  can overtake the last answer.)
void arb_stream_close_after (arb_stream_t *self);

//  Closes now (output not yet written is dropped).
void arb_stream_close (arb_stream_t *self);

//  Whether the input is read to the peer's end (after handler.ended), or
//  the stream failed: nothing more will come.
bool arb_stream_at_end (arb_stream_t *self);

//  Whether the connection is on its way out: closing, or the peer ended
//  its side or failed, told by the stream or seen now on the socket (a
//  peek) though no event has said it yet. For a limit on connections, so
//  that one the peer closed just before it connected again is not counted.
bool arb_stream_is_gone (arb_stream_t *self);

//  Totals of bytes read and written by this stream.
uint64_t arb_stream_bytes_read (arb_stream_t *self);
uint64_t arb_stream_bytes_written (arb_stream_t *self);

#endif
