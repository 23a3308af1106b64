/*  arb_zmtp.c — ZMTP 3 greeting, READY, frames and commands; see
    arb_zmtp.h.
*/

#include "arb_zmtp.h"

#include <string.h>

void
arb_zmtp_greeting (uint8_t out[ARB_ZMTP_GREETING])
{
    memset (out, 0, ARB_ZMTP_GREETING);
    out[0] = 0xFF;  //  signature: 0xFF, 8 bytes of padding, 0x7F
    out[9] = 0x7F;
    out[10] = 3;  //  version 3.1
    out[11] = 1;
    memcpy (out + 12, "NULL", 4);  //  mechanism, 20 bytes padded with zeros
    //  as-server (byte 32) and the filler stay zero
}

int
arb_zmtp_check_greeting (const uint8_t *in, size_t size, const char **reason)
{
    //  A ZMTP 1.0 peer's first byte is a length, and its tenth not 0x7F.
    if (size >= 1 && in[0] != 0xFF) {
        *reason = "not a ZMTP 3 greeting (no signature)";
        return -1;
    }
    if (size >= ARB_ZMTP_SIGNATURE && !(in[9] & 0x01)) {
        *reason = "not a ZMTP 3 greeting (a ZMTP 1.0 peer)";
        return -1;
    }
    if (size >= ARB_ZMTP_SIGNATURE + 1 && in[10] < 3) {
        *reason = "ZMTP version before 3.0";
        return -1;
    }
    if (size < ARB_ZMTP_GREETING)
        return 0;
    static const uint8_t null[20] = "NULL";
    if (memcmp (in + 12, null, sizeof (null)) != 0) {
        *reason = "mechanism other than NULL (CURVE needs the broker's --curve)";
        return -1;
    }
    return 1;
}

int
arb_zmtp_frame_parse (const uint8_t *p, size_t avail, arb_zmtp_frame_t *frame)
{
    if (avail < 1)
        return 0;
    uint8_t flags = p[0];
    if (flags & ~(ARB_ZMTP_MORE | ARB_ZMTP_LONG | ARB_ZMTP_COMMAND))
        return -1;
    if ((flags & ARB_ZMTP_COMMAND) && (flags & ARB_ZMTP_MORE))
        return -1;
    if (!(flags & ARB_ZMTP_LONG)) {
        if (avail < 2)
            return 0;
        *frame = (arb_zmtp_frame_t){flags & ~ARB_ZMTP_LONG, p[1], 2};
        return 1;
    }
    if (avail < 9)
        return 0;
    uint64_t size = 0;
    for (int i = 1; i < 9; i++)
        size = size << 8 | p[i];
    *frame = (arb_zmtp_frame_t){flags & ~ARB_ZMTP_LONG, size, 9};
    return 1;
}

size_t
arb_zmtp_frame_head (uint8_t out[ARB_ZMTP_FRAME_HEADER_MAX], uint8_t flags, uint64_t size)
{
    if (size < 256) {
        out[0] = flags;
        out[1] = (uint8_t) size;
        return 2;
    }
    out[0] = flags | ARB_ZMTP_LONG;
    for (int i = 8; i >= 1; i--, size >>= 8)
        out[i] = (uint8_t) size;
    return 9;
}

int
arb_zmtp_command (const uint8_t *body,
                  size_t size,
                  const uint8_t **name,
                  size_t *name_size,
                  const uint8_t **data,
                  size_t *data_size)
{
    if (size < 1 || (size_t) body[0] + 1 > size)
        return -1;
    *name = body + 1;
    *name_size = body[0];
    *data = body + 1 + body[0];
    *data_size = size - 1 - body[0];
    return 0;
}

bool
arb_zmtp_is (const uint8_t *name, size_t name_size, const char *expected)
{
    return name_size == strlen (expected) && memcmp (name, expected, name_size) == 0;
}

static uint8_t
s_lower (uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t) (c + 32) : c;
}

//  Property names compare without regard to case (rfc 23).
static bool
s_same_name (const uint8_t *name, size_t size, const char *key)
{
    if (size != strlen (key))
        return false;
    for (size_t i = 0; i < size; i++)
        if (s_lower (name[i]) != s_lower ((uint8_t) key[i]))
            return false;
    return true;
}

int
arb_zmtp_property (
    const uint8_t *data, size_t size, const char *key, const uint8_t **value, size_t *value_size)
{
    size_t at = 0;
    int found = 0;
    while (at < size) {
        size_t name_size = data[at];
        if (name_size == 0 || at + 1 + name_size + 4 > size)
            return -1;
        const uint8_t *name = data + at + 1;
        const uint8_t *v = name + name_size;
        uint64_t vsize =
            (uint64_t) v[0] << 24 | (uint64_t) v[1] << 16 | (uint64_t) v[2] << 8 | v[3];
        at += 1 + name_size + 4;
        if (vsize > size - at)
            return -1;
        if (!found && s_same_name (name, name_size, key)) {
            *value = data + at;
            *value_size = (size_t) vsize;
            found = 1;
        }
        at += (size_t) vsize;
    }
    return found;
}

size_t
arb_zmtp_command_frame (
    uint8_t *out, size_t cap, const char *name, const uint8_t *data, size_t data_size)
{
    size_t name_size = strlen (name);
    size_t body = 1 + name_size + data_size;
    uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
    size_t head_size = arb_zmtp_frame_head (head, ARB_ZMTP_COMMAND, body);
    if (name_size > 255 || head_size + body > cap)
        return 0;
    memcpy (out, head, head_size);
    out[head_size] = (uint8_t) name_size;
    memcpy (out + head_size + 1, name, name_size);
    if (data_size)
        memcpy (out + head_size + 1 + name_size, data, data_size);
    return head_size + body;
}

//  Appends one property (a short name, a value of up to 255 bytes).
static size_t
s_property (uint8_t *props, const char *key, const uint8_t *value, size_t value_size)
{
    size_t n = 0, key_size = strlen (key);
    props[n++] = (uint8_t) key_size;
    memcpy (props + n, key, key_size);
    n += key_size;
    props[n++] = 0;
    props[n++] = 0;
    props[n++] = 0;
    props[n++] = (uint8_t) value_size;
    memcpy (props + n, value, value_size);
    return n + value_size;
}

size_t
arb_zmtp_ready (uint8_t *out, size_t cap, const char *socket_type)
{
    return arb_zmtp_ready_id (out, cap, socket_type, NULL, 0);
}

size_t
arb_zmtp_ready_id (
    uint8_t *out, size_t cap, const char *socket_type, const uint8_t *id, size_t id_size)
{
    uint8_t props[2 * (1 + 16 + 4) + 64 + ARB_ZMTP_ID_MAX];
    size_t type_size = strlen (socket_type);
    if (type_size > 64 || id_size > ARB_ZMTP_ID_MAX)
        return 0;
    size_t n = s_property (props, "Socket-Type", (const uint8_t *) socket_type, type_size);
    if (id_size)
        n += s_property (props + n, "Identity", id, id_size);
    return arb_zmtp_command_frame (out, cap, "READY", props, n);
}

bool
arb_zmtp_router_peer (const uint8_t *type, size_t size)
{
    //  rfc 28: a ROUTER talks to DEALER, REQ and ROUTER peers
    return arb_zmtp_is (type, size, "DEALER") || arb_zmtp_is (type, size, "REQ")
           || arb_zmtp_is (type, size, "ROUTER");
}
