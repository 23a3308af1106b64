/*  arb_wire_priv.h — what arb_wire.c and arb_wire_conn.c share: the
    wire's state and one connection of the loop's own. Not for other
    modules: they use arb_wire.h.
*/

#ifndef ARB_WIRE_PRIV_H
#define ARB_WIRE_PRIV_H

#include "arb_loglimit.h"
#include "arb_bytes.h"
#include "arb_gather.h"
#include "arb_wire.h"
#include "arb_zmtp.h"

#include <netinet/in.h>
#include <poll.h>

typedef enum {
    ARB_WIRE_GREETING,
    ARB_WIRE_HANDSHAKE,
    ARB_WIRE_OPEN
} arb_wire_state_t;

typedef struct {
    size_t size;
    const uint8_t *data;
} arb_wire_key_t;

typedef struct {
    int fd;
    arb_wire_state_t state;
    uint64_t opened_ms;   //  monotonic: when it was accepted
    bool readable;        //  the kernel may hold input for it
    bool buffered;        //  whole frames may wait in its input
    bool writing;         //  output waits for the socket to take it
    uint64_t drained_ms;  //  monotonic: when the socket last took the rest of output
                          //  that had waited for it; 0 never (arb_wire_unwritten)
    bool closed;          //  to be reaped
    bool draining;        //  unmapped (its id taken over, or its output failed): input
                          //  still read to its end, then closed
    bool mute;            //  its output failed: nothing more is written
    bool worker;          //  sent a message of the worker's protocol: never held (s_held)
    uint64_t ttl_at;      //  monotonic ms: closed if nothing comes by then (its PING's
                          //  TTL); 0 none
    arb_bytes_t in, out;
    //  where each message waiting in out ends, counted from the first byte
    //  ever queued, so that the messages still to write are counted as a
    //  ROUTER's high-water mark counts them
    uint64_t *ends;
    size_t ends_first, ends_count, ends_cap;
    uint64_t queued;   //  bytes queued in all
    uint64_t written;  //  bytes written in all
    //  arb_wire_await's: the turn a message was last queued for it; sent
    //  something since its last message came in; waits it let pass in
    //  vain in a row (at most S_AWAIT_MISSES), and the turn before which
    //  it is not waited for again after such a wait
    uint64_t sent_turn;
    bool owed;
    unsigned misses;
    uint64_t skip_until;
    uint8_t id[ARB_ZMTP_ID_MAX];
    arb_wire_key_t key;  //  over id, while mapped
    bool mapped;
    char peer[INET6_ADDRSTRLEN + 8];
    arb_gather_t gather;  //  the message being read
    uint64_t partial_ms;  //  monotonic: when part of a message was first seen waiting for
                          //  the rest; 0 none (arb_wire_conn_overdue)
    uint64_t heard_ms;    //  monotonic: the last bytes read while a message was partly in
                          //  (arb_wire_unread); 0 none
} arb_wire_conn_t;

struct _arb_wire_t {
    arb_loglimit_t closes;  //  the connections closed for what their peers did, logged
    arb_wire_config_t config;
    char *endpoint;           //  owned copy
    zsock_t *router;          //  owned, in the ROUTER's way; NULL in the loop's own
    int listen_fd;            //  the loop's own, or -1
    arb_wire_conn_t **conns;  //  owned
    size_t n_conns, cap_conns;
    zhashx_t *by_id;  //  arb_wire_key_t * (the connection's) -> arb_wire_conn_t *
    size_t cursor;    //  the connection to read from first
    uint64_t next_id;
    uint64_t accept_paused_until;  //  monotonic ms
    struct pollfd *fds;
    size_t cap_fds;
    uint64_t message_max;  //  one message's frames together: S_MESSAGE_BYTES, or two of
                           //  the largest frames if more
    uint64_t turn;         //  counted by arb_wire_next_turn
    zlist_t *gone;         //  owned zframe_t *: routing ids whose connection closed, not
                           //  yet asked for (arb_wire_next_gone)
};


//  A new connection over a connected socket, our greeting on its way;
//  NULL (the socket closed) if out of memory.
arb_wire_conn_t *arb_wire_conn_new (arb_wire_t *wire, int fd, uint64_t now);
//  Closes its socket and frees its buffers (reason: the log's; NULL says
//  nothing); it stays in the wire's list until reaped.
void arb_wire_conn_close (arb_wire_t *wire, arb_wire_conn_t *conn, bool loud, const char *reason);
void arb_wire_conn_free (arb_wire_conn_t **conn_p);
//  Writes what waits, as far as the socket takes it.
void arb_wire_conn_write (arb_wire_t *wire, arb_wire_conn_t *conn);
//  The connection's next message: as arb_wire_recv (-1: none now).
int arb_wire_conn_next (arb_wire_t *wire,
                        arb_wire_conn_t *conn,
                        const arb_limits_t *limits,
                        arb_msg_t **msg_p);
//  Messages queued for the connection and not wholly written yet.
size_t arb_wire_conn_waiting (arb_wire_conn_t *conn);

//  Whether part of a message has waited for the rest past its time
//  (limit_ms from its first byte seen, a second more for each MiB in so
//  far): a peer that stops in the middle of a message, or trickles it,
//  would hold what it sent (up to a message's 1 GiB) for ever.
bool arb_wire_conn_overdue (arb_wire_conn_t *conn, uint64_t now, uint64_t limit_ms);
//  Queues a message (taken): 0, or -1 out of memory (it is lost, as a
//  full ROUTER queue would lose it).
int arb_wire_conn_put (arb_wire_conn_t *conn, arb_msg_t **msg_p);

#endif
