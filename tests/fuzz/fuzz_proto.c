/*  fuzz_proto.c — libFuzzer target for the codec's decoder.

    The input is cut into frames: the first byte says how many (1..8),
    then each frame is a 2-byte big-endian length and its bytes (the last
    frame takes what is left). Every input must either decode, and then
    survive an encode/decode round trip unchanged in type and request id,
    or be refused with a reason; anything else (a crash, a sanitizer
    report, a leak) is a finding.

        scons fuzz && build/fuzz/fuzz_proto -max_total_time=60 tests/fuzz/corpus/proto
*/

#include "arb_proto.h"

#include <assert.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t frames = (size_t) (data[0] % 8) + 1;
    const uint8_t *p = data + 1, *end = data + size;
    zmsg_t *zmsg = zmsg_new ();
    for (size_t i = 0; i < frames && p <= end; i++) {
        size_t len = (size_t) (end - p);
        if (i + 1 < frames && end - p >= 2) {
            len = ((size_t) p[0] << 8) | p[1];
            p += 2;
            if (len > (size_t) (end - p))
                len = (size_t) (end - p);
        }
        zmsg_addmem (zmsg, p, len);
        p += len;
    }
    arb_limits_t limits = {.max_frame = 4096};
    arb_msg_t *msg = NULL;
    int rc = arb_msg_decode (&zmsg, false, &limits, &msg);
    if (rc == 0) {
        arb_msg_type_t type = arb_msg_type (msg);
        uint32_t reqid = arb_msg_reqid (msg);
        zmsg_t *again = arb_msg_encode (&msg);
        arb_msg_t *back = NULL;
        int rc2 = arb_msg_decode (&again, false, &limits, &back);
        assert (rc2 == 0);
        assert (arb_msg_type (back) == type && arb_msg_reqid (back) == reqid);
        arb_msg_destroy (&back);
    }
    else
        assert (msg == NULL || arb_msg_decode_error (msg) != NULL);
    arb_msg_destroy (&msg);
    return 0;
}
