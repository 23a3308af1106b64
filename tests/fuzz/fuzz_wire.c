/*  fuzz_wire.c — libFuzzer target for the broker's own ZMTP reader
    (broker/arb_wire.c over proto/arb_zmtp.c and the codec).

    Each input is what a peer sends on one connection, then its end of
    the stream: the wire takes it through a socket pair, answers each
    message it decodes (an ERROR reply, so that output is written too),
    and must end with the connection closed, never crashing, hanging or
    leaking. A valid peer's bytes are in the seed corpus (greeting, READY,
    a PING command, a PING message).

        scons fuzz && build/fuzz/fuzz_wire -max_total_time=60 tests/fuzz/corpus/wire
*/

#include "arb_wire.h"

#include "fuzz_pair.h"

#include <assert.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zsys_set_logstream (NULL);
    arb_wire_config_t config = {
        .endpoint = "tcp://127.0.0.1:1",  //  never bound: the socket pair comes in by adopt
        .mode = ARB_WIRE_AUTO,
        .max_message = 4096,
        .peer_rcvhwm = 1000,
        .peer_sndhwm = 100,
    };
    arb_wire_t *wire = arb_wire_new (&config);
    assert (wire && arb_wire_is_own (wire));
    int pair[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair)) {
        arb_wire_destroy (&wire);
        return 0;
    }
    assert (arb_wire_adopt (wire, pair[0]) == 0);
    fuzz_pair_feed (pair[1], data, size);
    arb_limits_t limits = {.max_frame = 4096};
    for (int turn = 0; turn < 1000 && arb_wire_connections (wire) > 0; turn++) {
        arb_wire_poll (wire, 0);
        arb_msg_t *msg = NULL;
        int rc;
        while ((rc = arb_wire_recv (wire, &limits, &msg, NULL, 0)) != -1) {
            if (msg) {
                arb_msg_t *reply = arb_msg_new_error (msg, ARB_ERR_BAD_REQUEST, "fuzzed");
                arb_wire_send (wire, &reply);
            }
            arb_msg_destroy (&msg);
        }
        fuzz_pair_drain (pair[1]);
    }
    //  the stream ended: the connection must have closed
    assert (arb_wire_connections (wire) == 0);
    close (pair[1]);
    arb_wire_destroy (&wire);
    return 0;
}
