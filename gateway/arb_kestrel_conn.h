/*  arb_kestrel_conn.h — one Kestrel client connection: the memcache byte
    stream cut into commands, and the answers put back in order, with
    bounded buffers.

    A connection is a state machine over its input:

        LINE  --set line-->            DATA   (the item's bytes, then CR LF)
        LINE  --refused storage line--> SKIP  (a block to throw away)
        LINE  --refused storage line, a block too long to skip-->
                                       CLOSING
        LINE  --other command-->       LINE   (the command is handed over)
        DATA  --bytes and CR LF-->     LINE   (the set is handed over)
        SKIP  --bytes and CR LF-->     LINE
        any   --fatal error, quit-->   CLOSING (the answers go out, then close)
        any   --the client's end, no whole command left, every slot
                answered-->            CLOSING

    The client's end of its side (a half-close: `printf ... | nc -q1`,
    socat) does not drop the commands before it, as memcached does not:
    whole commands still waiting are taken in order, their answers go
    out, and then the connection closes; a partial command at the end is
    dropped. A reset, or an error writing, closes at once (every slot
    dropped).

    Each command goes to the handler with a slot number, and the handler
    answers that slot when it can (at once, or when the broker replied):
    answers leave in the order of their commands. Sets may overlap (up to
    ARB_KESTREL_CONN_SETS, or ARB_KESTREL_CONN_SET_BYTES of items, in
    flight): a client that sends many without waiting has them all in the
    turn's SUBMIT. Any other command waits until every earlier one is
    answered, and runs alone, so that a `get` sees the items its own
    earlier `set`s stored.

    Bytes. The socket is an arb_stream (arb_stream.h), shared with the AMQP
    server: input bounded and read first into the server's scratch buffer,
    so an idle connection holds no buffer; output written with one sendmsg
    per turn, a VALUE's item from the task's own frame.

    Bounds. Input is read only while the connection can take a command;
    what is read and not yet taken is at most ARB_STREAM_READ +
    ARB_KESTREL_LINE_MAX bytes. An item is read into its own frame of its
    announced size (at most the configured item size), straight from the
    socket once the buffered bytes are in (the stream's sink). Past
    ARB_KESTREL_CONN_HWM bytes of answers not yet written, the connection
    stops reading and taking commands until the client reads: a slow or
    stuck client holds back only itself. A connection told to close after
    its last answer is closed anyway ARB_STREAM_LINGER_MS later.

    Skipping. A refused storage command's block is thrown away by its
    announced length, as memcached swallows it, so that a client that
    pipelines stays in step; skipping costs no memory, but a length of
    gigabytes would hold the connection for as long as the client cares
    not to send them, its later commands swallowed unanswered. So a block
    is skipped only up to the larger of max_item and
    ARB_KESTREL_CONN_SKIP_MAX bytes: a longer one is refused and the
    connection closed.

    Deadline. A command must arrive, from its first byte to its last (a
    set's line and data block), within the request timeout
    (--kestrel-request-timeout), else the connection is closed: without
    one, a client that sent a set's line and part of its block held the
    item's frame for ever, and one that sent a byte now and then its
    connection. The clock runs while the connection waits for the rest of
    a command it could take; a command that waits for the answers before
    it, or a get waiting for an item (t=), is not arriving.

    Idle. A connection that is idle for the idle timeout
    (--kestrel-idle-timeout) is closed: without one, connections that a
    client leaked or whose host vanished (no FIN) held their places under
    --kestrel-max-connections, and the items they had open, for ever. It
    is idle while no command of its is in progress or answered (a get
    waiting for an item with t= is in progress, however long its wait), no
    byte comes from the client and none of its answers is written; items
    it holds open do not keep it (they go back, as at any end).

    The handler learns of the end of a connection (closed) before it is
    freed, and must then forget it. Runs in the reactor's thread.
*/

#ifndef ARB_KESTREL_CONN_H
#define ARB_KESTREL_CONN_H

#include "arb_kestrel_cmd.h"
#include "arb_stream.h"

#define ARB_KESTREL_CONN_HWM       65536       //  answer bytes pending before reading stops
#define ARB_KESTREL_CONN_SETS      256         //  sets in flight at most
#define ARB_KESTREL_CONN_SET_BYTES (4u << 20)  //  item bytes in flight at most (one more may start)
#define ARB_KESTREL_CONN_SKIP_MAX  (16u << 20)  //  a refused block skipped at most (or max_item)

typedef struct _arb_kestrel_conn_t arb_kestrel_conn_t;

typedef struct {
    //  A command, with its answer's slot. A set's item comes in *item_p
    //  (take it and null the pointer; else it is destroyed after).
    void (*command) (void *arg,
                     arb_kestrel_conn_t *conn,
                     const arb_kestrel_cmd_t *cmd,
                     zframe_t **item_p,
                     uint64_t slot);
    //  The connection ends; it is freed after this returns. Every slot
    //  not yet answered is dropped.
    void (*closed) (void *arg, arb_kestrel_conn_t *conn);
    //  The client ended its side (EOF): the commands already read still
    //  run and are answered, then the connection closes. May be NULL.
    void (*ended) (void *arg, arb_kestrel_conn_t *conn);
} arb_kestrel_conn_handler_t;

//  Takes a connected, non-blocking socket fd and starts reading it. Items
//  over max_item bytes are refused (their block skipped, or the connection
//  closed if it is over ARB_KESTREL_CONN_SKIP_MAX bytes too); a command
//  not in within request_timeout_ms of its first byte closes it (0: no
//  deadline), and so does idle_timeout_ms idle (0: never). handler is
//  copied; arg, io and reactor are borrowed.
//  Returns NULL (fd closed) if the reactor refuses it.
arb_kestrel_conn_t *arb_kestrel_conn_new (arb_reactor_t *reactor,
                                          int fd,
                                          size_t max_item,
                                          uint64_t request_timeout_ms,
                                          uint64_t idle_timeout_ms,
                                          arb_stream_io_t *io,
                                          const arb_kestrel_conn_handler_t *handler,
                                          void *arg);

//  Closes at once: the handler's closed runs, then the connection is
//  freed (at once, or when the handler that is running returns).
void arb_kestrel_conn_close (arb_kestrel_conn_t *self);

//  Answers a slot with text (len bytes, line ends included), or with
//  nothing (text NULL: a noreply). close_after: the connection closes
//  once this answer is written. Answering a slot twice is a programming
//  error.
void arb_kestrel_conn_answer (
    arb_kestrel_conn_t *self, uint64_t slot, const char *text, size_t len, bool close_after);

//  Adds a piece to a slot's answer: the frame (taken), written as it is,
//  without a copy (a stats answer's lines); arb_kestrel_conn_answer then
//  ends the answer.
void arb_kestrel_conn_add_frame (arb_kestrel_conn_t *self, uint64_t slot, zframe_t **frame_p);

//  Answers a slot with one line (CR LF added), printf-style.
void arb_kestrel_conn_answerf (arb_kestrel_conn_t *self, uint64_t slot, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Answers a slot with `VALUE <key> <flags> <bytes>` (and ` <cas>` if cas
//  is not 0: a gets), the item (taken) and END.
void arb_kestrel_conn_answer_value (arb_kestrel_conn_t *self,
                                    uint64_t slot,
                                    const char *key,
                                    size_t key_len,
                                    uint32_t flags,
                                    uint64_t cas,
                                    zframe_t **item_p);

//  The handler's record of this connection (borrowed), as set.
void *arb_kestrel_conn_user (arb_kestrel_conn_t *self);

//  Whether the connection is on its way out (closing, or the client ended
//  its side, told or seen now on the socket): not counted against
//  --kestrel-max-connections.
bool arb_kestrel_conn_is_gone (arb_kestrel_conn_t *self);

//  Whether the client ended its side (handler's ended has run).
bool arb_kestrel_conn_ended (arb_kestrel_conn_t *self);
void arb_kestrel_conn_set_user (arb_kestrel_conn_t *self, void *user);

#endif
