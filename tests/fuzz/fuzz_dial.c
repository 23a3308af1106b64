/*  fuzz_dial.c — libFuzzer target for the client's own ZMTP reader
    (client/arb_dial.c over proto/arb_zmtp.c, arb_gather.c and the codec).

    Each input is what a broker sends on one connection, then its end of
    the stream: the dial takes it through a socket pair (arb_dial_adopt),
    sends a message of its own each turn (so that its output is written
    too) and must end with the connection dropped, never crashing, hanging
    or leaking. A valid broker's bytes are in the seed corpus (greeting,
    READY, a HEARTBEAT, a PING command).

        scons fuzz && build/fuzz/fuzz_dial -max_total_time=60 tests/fuzz/corpus/dial
*/

#include "arb_dial.h"

#include "fuzz_pair.h"

#include <assert.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zsys_set_logstream (NULL);
    //  never listened on: after the stream ends, its attempts are refused
    arb_dial_t *dial = arb_dial_new ("tcp://127.0.0.1:1");
    assert (dial);
    int pair[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair)) {
        arb_dial_destroy (&dial, 0);
        return 0;
    }
    arb_dial_adopt (dial, pair[0]);
    fuzz_pair_feed (pair[1], data, size);
    for (int turn = 0; turn < 1000 && arb_dial_is_connected (dial); turn++) {
        arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, (uint32_t) turn + 1);
        arb_dial_send (dial, &beat);
        arb_dial_flush (dial);
        arb_msg_t *msg = NULL;
        while (arb_dial_recv (dial, NULL, &msg) != -1)
            arb_msg_destroy (&msg);
        fuzz_pair_drain (pair[1]);
    }
    //  the stream ended: the connection must have dropped
    assert (!arb_dial_is_connected (dial));
    close (pair[1]);
    arb_dial_destroy (&dial, 0);
    return 0;
}
