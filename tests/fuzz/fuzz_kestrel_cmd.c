/*  fuzz_kestrel_cmd.c — libFuzzer target for the Kestrel command parser.

    The input is one command line. Every input must parse or be refused
    with a reason; a parsed command's key, queue and parent must lie
    inside the line and pass the queue-name check again; a refused set
    that asks for a skip must name a length. Anything else (a crash, a
    sanitizer report) is a finding.

        scons fuzz && build/fuzz/fuzz_kestrel_cmd -max_total_time=60 tests/fuzz/corpus/kestrel_cmd
*/

#include "arb_kestrel_cmd.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *line = (const char *) data;
    arb_kestrel_cmd_t cmd;
    char why[256];
    arb_kestrel_rc_t rc = arb_kestrel_cmd_parse (line, size, &cmd, why, sizeof (why));
    if (rc != ARB_KESTREL_OK) {
        assert (why[0] != 0);
        assert (rc == ARB_KESTREL_BAD || rc == ARB_KESTREL_FATAL);
        return 0;
    }
    if (cmd.key) {
        assert (cmd.key >= line && cmd.key + cmd.key_len <= line + size);
        assert (cmd.queue == cmd.key && cmd.queue_len <= cmd.key_len);
        assert (cmd.key_len <= ARB_KESTREL_KEY_MAX);
        size_t parent = 0;
        assert (arb_kestrel_cmd_check_queue (cmd.queue, cmd.queue_len, &parent, why, sizeof (why))
                == 0);
        assert (parent == cmd.parent_len && parent < cmd.queue_len);
        assert (!(cmd.peek && (cmd.open || cmd.close || cmd.abort)));
    }
    if (cmd.verb == ARB_KESTREL_SET)
        assert (cmd.key && memchr (cmd.key, '/', cmd.key_len) == NULL);
    return 0;
}
