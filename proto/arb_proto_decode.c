/*  arb_proto_decode.c — the arbiter codec's decoding; see arb_proto.h
    (and arb_proto.c for encoding and messages).

    Decoding does not use msgpack-c's unpacker: that unpacker allocates
    whatever an array or map header claims before it has seen the bytes,
    so a 5-byte body could ask for gigabytes. Instead a small reader walks
    the bytes with the schema in hand: every value must have the type the
    field wants, every count must fit in the bytes left and under the
    field's limit, and strings are copied into the message's arena with a
    terminating NUL. What the reader refuses it explains with the field's
    path ("tasks[3].name: ..."), which goes back to the sender verbatim.
*/

#include "arb_proto_priv.h"
#include "arb_schema.h"

#include <stdarg.h>

#define ARB_PATH_DEPTH 8

//  The payload frames after a body, claimed in order by its records.
typedef struct {
    zframe_t **v;  //  owned frames (those claimed: NULL), in first or owned
    size_t n;
    size_t next;         //  the first not claimed yet
    zframe_t *first[4];  //  most messages have a frame or two: no allocation
} s_frames_t;

typedef struct {
    const uint8_t *p;    //  next byte
    const uint8_t *end;  //  one past the body
    arb_msg_t *msg;      //  where strings and lists go
    s_frames_t *frames;  //  frames not yet claimed by a record
    size_t max_frame;    //  bytes
    struct {
        const char *key;
        long index;  //  -1 when not in a list
    } path[ARB_PATH_DEPTH];
    int depth;
    bool failed;
} s_dec_t;

//  Records why decoding failed, prefixed with the field path.
static int s_fail (s_dec_t *dec, arb_err_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_dec_t *dec, arb_err_t code, const char *fmt, ...)
{
    if (dec->failed)
        return -1;
    dec->failed = true;
    char where[256] = "";
    size_t used = 0;
    for (int i = 0; i < dec->depth && used < sizeof (where); i++) {
        int n;
        if (dec->path[i].index >= 0)
            n = snprintf (where + used, sizeof (where) - used, "%s%s[%ld]", i ? "." : "",
                          dec->path[i].key, dec->path[i].index);
        else
            n = snprintf (where + used, sizeof (where) - used, "%s%s", i ? "." : "",
                          dec->path[i].key);
        if (n < 0)
            break;
        used += (size_t) n;
    }
    char what[512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof (what), fmt, args);
    va_end (args);
    char reason[800];
    snprintf (reason, sizeof (reason), "%s%s%s", where, *where ? ": " : "", what);
    dec->msg->error = arb_msg_strdup (dec->msg, reason);
    dec->msg->error_code = code;
    return -1;
}

//  Writes at most 64 bytes of peer input, non-printables as '.'.
static void
s_quote (char *out, size_t outsize, const uint8_t *data, size_t size)
{
    size_t n = size < 64 ? size : 64;
    if (n >= outsize)
        n = outsize - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char) data[i] : '.';
    out[n] = 0;
}

static size_t
s_left (s_dec_t *dec)
{
    return (size_t) (dec->end - dec->p);
}

static int
s_need (s_dec_t *dec, size_t n)
{
    if (s_left (dec) < n)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "body truncated");
    return 0;
}

static uint64_t
s_be (const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  Reads a big-endian length of n bytes after the type byte.
static int
s_read_len (s_dec_t *dec, size_t n, size_t *len)
{
    if (s_need (dec, n))
        return -1;
    *len = (size_t) s_be (dec->p, n);
    dec->p += n;
    return 0;
}

static const char *
s_type_word (uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return "integer";
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))
        return "string";
    if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd)
        return "array";
    if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)
        return "map";
    if (b >= 0xc4 && b <= 0xc6)
        return "binary";
    if (b == 0xc2 || b == 0xc3)
        return "boolean";
    if (b == 0xc0)
        return "nil";
    return "unsupported type";
}

static int
s_wrong (s_dec_t *dec, const char *want)
{
    return s_fail (dec, ARB_ERR_BAD_REQUEST, "expected %s, got %s", want, s_type_word (*dec->p));
}

//  Reads any msgpack integer; *negative tells its sign.
static int
s_read_int (s_dec_t *dec, uint64_t *mag, bool *negative)
{
    if (s_need (dec, 1))
        return -1;
    uint8_t b = *dec->p;
    *negative = false;
    if (b <= 0x7f) {
        *mag = b;
        dec->p++;
        return 0;
    }
    if (b >= 0xe0) {
        *mag = (uint64_t) (-(int64_t) (int8_t) b);
        *negative = true;
        dec->p++;
        return 0;
    }
    //  0xcc..0xcf: uint 8..64; 0xd0..0xd3: int 8..64
    if (b < 0xcc || b > 0xd3)
        return s_wrong (dec, "integer");
    bool is_signed = b >= 0xd0;
    size_t size = (size_t) 1 << (b - (is_signed ? 0xd0 : 0xcc));
    if (s_need (dec, 1 + size))
        return -1;
    uint64_t raw = s_be (dec->p + 1, size);
    dec->p += 1 + size;
    if (is_signed) {
        int64_t value;
        switch (size) {
            case 1:
                value = (int8_t) raw;
                break;
            case 2:
                value = (int16_t) raw;
                break;
            case 4:
                value = (int32_t) raw;
                break;
            default:
                value = (int64_t) raw;
                break;
        }
        *negative = value < 0;
        *mag = value < 0 ? (uint64_t) 0 - (uint64_t) value : (uint64_t) value;
    }
    else
        *mag = raw;
    return 0;
}

static int
s_read_uint (s_dec_t *dec, uint64_t max, uint64_t *value)
{
    bool negative;
    if (s_read_int (dec, value, &negative))
        return -1;
    if (negative || *value > max)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "number out of range");
    return 0;
}

static int
s_read_i32 (s_dec_t *dec, int32_t *value)
{
    uint64_t mag;
    bool negative;
    if (s_read_int (dec, &mag, &negative))
        return -1;
    if ((!negative && mag > INT32_MAX) || (negative && mag > (uint64_t) INT32_MAX + 1))
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "number out of range");
    *value = negative ? (int32_t) (-(int64_t) mag) : (int32_t) mag;
    return 0;
}

static int
s_read_bool (s_dec_t *dec, bool *value)
{
    if (s_need (dec, 1))
        return -1;
    if (*dec->p != 0xc2 && *dec->p != 0xc3)
        return s_wrong (dec, "boolean");
    *value = *dec->p++ == 0xc3;
    return 0;
}

//  Reads a string header and checks its bytes are there; leaves p at them.
static int
s_read_str_head (s_dec_t *dec, size_t *len)
{
    if (s_need (dec, 1))
        return -1;
    uint8_t b = *dec->p;
    int rc;
    if (b >= 0xa0 && b <= 0xbf) {
        *len = b & 0x1f;
        dec->p++;
        rc = 0;
    }
    else if (b >= 0xd9 && b <= 0xdb) {
        dec->p++;
        rc = s_read_len (dec, (size_t) 1 << (b - 0xd9), len);
    }
    else
        return s_wrong (dec, "string");
    if (rc == 0 && s_left (dec) < *len)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "string truncated");
    return rc;
}

static int
s_read_str (s_dec_t *dec, size_t max, const char **str)
{
    size_t len;
    if (s_read_str_head (dec, &len))
        return -1;
    if (len > max)
        return s_fail (dec, ARB_ERR_TOO_LARGE, "string of %zu bytes, over the %zu-byte limit", len,
                       max);
    if (memchr (dec->p, 0, len))
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "string holds a NUL byte");
    char *copy = (char *) arb_msg_alloc (dec->msg, len + 1);
    memcpy (copy, dec->p, len);
    dec->p += len;
    *str = copy;
    return 0;
}

//  A string that is a name: refused, naming the field, unless printable
//  UTF-8 (arb_name_check).
static int
s_read_name (s_dec_t *dec, size_t max, const char **str)
{
    if (s_read_str (dec, max, str))
        return -1;
    char why[80];
    if (arb_name_check (*str, strlen (*str), why, sizeof (why)))
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "%s (names are printable UTF-8)", why);
    return 0;
}

static int
s_read_bin (s_dec_t *dec, size_t max, arb_bin_t *bin)
{
    if (s_need (dec, 1))
        return -1;
    uint8_t b = *dec->p;
    if (b < 0xc4 || b > 0xc6)
        return s_wrong (dec, "binary");
    dec->p++;
    size_t len;
    if (s_read_len (dec, (size_t) 1 << (b - 0xc4), &len))
        return -1;
    if (s_left (dec) < len)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "binary truncated");
    if (len > max)
        return s_fail (dec, ARB_ERR_TOO_LARGE, "%zu bytes, over the %zu-byte limit", len, max);
    uint8_t *copy = (uint8_t *) arb_msg_alloc (dec->msg, len);
    memcpy (copy, dec->p, len);
    dec->p += len;
    bin->data = copy;
    bin->size = len;
    return 0;
}

//  Reads an array or map header. Every element takes at least one byte
//  (two for a map entry), so a count larger than what is left is a lie,
//  refused before anything is allocated for it.
static int
s_read_container (s_dec_t *dec, bool map, size_t *n)
{
    if (s_need (dec, 1))
        return -1;
    uint8_t b = *dec->p;
    uint8_t fix = map ? 0x80 : 0x90;
    uint8_t wide = map ? 0xde : 0xdc;
    int rc;
    if (b >= fix && b <= fix + 0x0f) {
        *n = b & 0x0f;
        dec->p++;
        rc = 0;
    }
    else if (b == wide || b == wide + 1) {
        dec->p++;
        rc = s_read_len (dec, b == wide ? 2 : 4, n);
    }
    else
        return s_wrong (dec, map ? "map" : "array");
    if (rc == 0 && *n > s_left (dec) / (map ? 2 : 1))
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "%s of %zu elements in %zu bytes",
                       map ? "map" : "array", *n, s_left (dec));
    return rc;
}

static int
s_read_list_head (s_dec_t *dec, size_t max, size_t *n)
{
    if (s_read_container (dec, false, n))
        return -1;
    if (*n > max)
        return s_fail (dec, ARB_ERR_TOO_LARGE, "%zu elements, over the limit of %zu", *n, max);
    return 0;
}

static int s_decode_record (s_dec_t *dec, const arb_schema_t *schema, void *rec);

static int
s_decode_value (s_dec_t *dec, const arb_field_t *f, char *at)
{
    uint64_t value;
    switch (f->type) {
        case ARB_F_U64:
            return s_read_uint (dec, UINT64_MAX, (uint64_t *) at);
        case ARB_F_U32:
            if (s_read_uint (dec, UINT32_MAX, &value))
                return -1;
            *(uint32_t *) at = (uint32_t) value;
            return 0;
        case ARB_F_I32:
            return s_read_i32 (dec, (int32_t *) at);
        case ARB_F_BOOL:
            return s_read_bool (dec, (bool *) at);
        case ARB_F_STR:
            return s_read_str (dec, f->max, (const char **) at);
        case ARB_F_NAME:
            return s_read_name (dec, f->max, (const char **) at);
        case ARB_F_BIN:
            return s_read_bin (dec, f->max ? f->max : dec->max_frame, (arb_bin_t *) at);
        case ARB_F_STRS: {
            arb_strs_t *strs = (arb_strs_t *) at;
            size_t n;
            if (s_read_list_head (dec, f->max, &n))
                return -1;
            strs->v = (const char **) arb_msg_alloc (dec->msg, n * sizeof (char *));
            strs->n = n;
            for (size_t k = 0; k < n; k++) {
                dec->path[dec->depth - 1].index = (long) k;
                if (s_read_name (dec, ARB_NAME_MAX, &strs->v[k]))
                    return -1;
            }
            dec->path[dec->depth - 1].index = -1;
            return 0;
        }
        case ARB_F_IDS: {
            arb_ids_t *ids = (arb_ids_t *) at;
            size_t n;
            if (s_read_list_head (dec, f->max, &n))
                return -1;
            ids->v = (uint64_t *) arb_msg_alloc (dec->msg, n * sizeof (uint64_t));
            ids->n = n;
            for (size_t k = 0; k < n; k++)
                if (s_read_uint (dec, UINT64_MAX, &ids->v[k]))
                    return -1;
            return 0;
        }
        case ARB_F_LIST: {
            size_t n;
            if (s_read_list_head (dec, f->max, &n))
                return -1;
            char *items = (char *) arb_msg_alloc (dec->msg, n * f->sub->size);
            memcpy (at, &items, sizeof (items));
            memcpy (at + sizeof (items), &n, sizeof (n));
            for (size_t k = 0; k < n; k++) {
                dec->path[dec->depth - 1].index = (long) k;
                if (s_decode_record (dec, f->sub, items + k * f->sub->size))
                    return -1;
            }
            dec->path[dec->depth - 1].index = -1;
            return 0;
        }
        case ARB_F_FRAME:
            break;
    }
    return s_fail (dec, ARB_ERR_BAD_REQUEST, "field cannot be sent in the body");
}

//  The field named key, searched from *index on, then from the start:
//  encoders (ours) write a record's keys in the schema's order, so the
//  next key is most often the next field. *index becomes its position.
static const arb_field_t *
s_find_field (const arb_schema_t *schema, const uint8_t *key, size_t len, size_t *index)
{
    size_t n = schema->nfields, from = *index < n ? *index : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = from + k < n ? from + k : from + k - n;
        const arb_field_t *f = &schema->fields[i];
        if (f->type != ARB_F_FRAME && f->key_len == len && memcmp (f->key, key, len) == 0) {
            *index = i;
            return f;
        }
    }
    return NULL;
}

static int
s_claim_frame (s_dec_t *dec, zframe_t **slot)
{
    s_frames_t *frames = dec->frames;
    zframe_t *frame = frames->next < frames->n ? frames->v[frames->next] : NULL;
    if (!frame)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "its frame is missing");
    frames->v[frames->next++] = NULL;
    size_t size = zframe_size (frame);
    *slot = frame;  //  owned by the message even if refused below
    if (size > dec->max_frame)
        return s_fail (dec, ARB_ERR_TOO_LARGE, "frame of %zu bytes, over the %zu-byte limit", size,
                       dec->max_frame);
    return 0;
}

static int
s_decode_record (s_dec_t *dec, const arb_schema_t *schema, void *rec)
{
    if (dec->depth >= ARB_PATH_DEPTH)
        return s_fail (dec, ARB_ERR_BAD_REQUEST, "nested too deep");
    size_t n;
    if (s_read_container (dec, true, &n))
        return -1;
    uint64_t seen = 0;
    assert (schema->nfields <= 64);
    int depth = dec->depth++;
    size_t next = 0;  //  where the search for the next key starts
    for (size_t k = 0; k < n; k++) {
        dec->path[depth].key = "?";
        dec->path[depth].index = -1;
        size_t len;
        if (s_read_str_head (dec, &len))
            goto fail;
        size_t index = next;
        const arb_field_t *f = s_find_field (schema, dec->p, len, &index);
        if (!f) {
            char quoted[65];
            s_quote (quoted, sizeof (quoted), dec->p, len);
            dec->depth = depth;
            s_fail (dec, ARB_ERR_BAD_REQUEST, "unknown key '%s'", quoted);
            goto fail;
        }
        dec->p += len;
        dec->path[depth].key = f->key;
        if (seen & ((uint64_t) 1 << index)) {
            s_fail (dec, ARB_ERR_BAD_REQUEST, "key given twice");
            goto fail;
        }
        seen |= (uint64_t) 1 << index;
        next = index + 1;
        if (s_decode_value (dec, f, (char *) rec + f->offset))
            goto fail;
    }
    dec->depth = depth;
    for (size_t i = 0; i < schema->nfields; i++) {
        const arb_field_t *f = &schema->fields[i];
        if (f->type == ARB_F_FRAME) {
            if (s_claim_frame (dec, (zframe_t **) ((char *) rec + f->offset)))
                return -1;
        }
        else if (f->required && !(seen & ((uint64_t) 1 << i)))
            return s_fail (dec, ARB_ERR_BAD_REQUEST, "missing required key '%s'", f->key);
    }
    return 0;
fail:
    //  s_fail already recorded the path; keep the depth as it was for it
    dec->depth = depth;
    return -1;
}

//  Fills the message's body from the body frame and the payload frames.
static int
s_decode_body (
    arb_msg_t *self, const uint8_t *body, size_t size, s_frames_t *frames, size_t max_frame)
{
    const arb_schema_t *schema = arb_schema_of (self->type);
    s_dec_t dec = {
        .p = body,
        .end = body + size,
        .msg = self,
        .frames = frames,
        .max_frame = max_frame,
    };
    self->body = arb_msg_alloc (self, schema->size);
    int rc = s_decode_record (&dec, schema, self->body);
    if (rc == 0 && dec.p != dec.end)
        rc = s_fail (&dec, ARB_ERR_BAD_REQUEST, "%zu bytes after the body", s_left (&dec));
    if (rc == 0 && frames->next < frames->n)
        rc = s_fail (&dec, ARB_ERR_BAD_REQUEST, "%zu frames more than the body's records own",
                     frames->n - frames->next);
    return rc;
}

static void s_set_error (arb_msg_t *self, arb_err_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_set_error (arb_msg_t *self, arb_err_t code, const char *fmt, ...)
{
    char reason[512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (reason, sizeof (reason), fmt, args);
    va_end (args);
    self->error = arb_msg_strdup (self, reason);
    self->error_code = code;
}

//  Frames as they come off the socket, before they are a message: the
//  routing id (on a ROUTER), the header, the body, the payload frames.
typedef struct {
    const uint8_t *peer;  //  the routing id, borrowed, or NULL
    size_t peer_size;
    const uint8_t *header;  //  borrowed, or NULL if missing
    size_t header_size;
    const uint8_t *body;  //  borrowed, or NULL if missing
    size_t body_size;
    s_frames_t frames;  //  the payload frames
} s_parts_t;

static void
s_parts_free (s_parts_t *parts)
{
    for (size_t i = 0; i < parts->frames.n; i++)
        zframe_destroy (&parts->frames.v[i]);
    if (parts->frames.v != parts->frames.first)
        free (parts->frames.v);
    parts->frames = (s_frames_t){0};
}

static void
s_parts_add_frame (s_parts_t *parts, zframe_t *frame)
{
    s_frames_t *frames = &parts->frames;
    size_t room = sizeof (frames->first) / sizeof (frames->first[0]);
    if (!frames->v)
        frames->v = frames->first;
    //  a power of two from room on: it is full
    else if (frames->n >= room && (frames->n & (frames->n - 1)) == 0) {
        zframe_t **bigger = (zframe_t **) malloc (2 * frames->n * sizeof (zframe_t *));
        assert (bigger);
        memcpy (bigger, frames->v, frames->n * sizeof (zframe_t *));
        if (frames->v != frames->first)
            free (frames->v);
        frames->v = bigger;
    }
    frames->v[frames->n++] = frame;
}

//  Decodes the parts into a message (its own copies: the parts stay the
//  caller's, but their routing id and frames are taken). As arb_msg_decode.
static int
s_decode_parts (s_parts_t *parts, bool routed, const arb_limits_t *limits, arb_msg_t **msg_p)
{
    *msg_p = NULL;
    size_t max_frame = limits && limits->max_frame ? limits->max_frame : ARB_PAYLOAD_DEFAULT_MAX;
    if (routed && (!parts->peer || parts->peer_size == 0))
        return -2;
    arb_msg_t *self = arb_msg_alloc_empty ();
    arb_msg_set_peer (self, parts->peer, parts->peer_size);
    *msg_p = self;
    const uint8_t *h = parts->header;
    if (!h || parts->header_size != ARB_HEADER_SIZE || h[0] != 'A' || h[1] != 'R') {
        s_set_error (self, ARB_ERR_BAD_REQUEST, "not an arbiter message (bad header frame)");
        return -2;
    }
    self->reqid = (uint32_t) s_be (h + 4, 4);
    if (h[2] != ARB_PROTO_VERSION) {
        s_set_error (self, ARB_ERR_VERSION, "protocol version %u not spoken (this is version %u)",
                     h[2], ARB_PROTO_VERSION);
        return -2;
    }
    if (!arb_schema_of (h[3])) {
        s_set_error (self, ARB_ERR_BAD_REQUEST, "unknown message type %u", h[3]);
        return -2;
    }
    self->type = (arb_msg_type_t) h[3];
    if (!parts->body) {
        s_set_error (self, ARB_ERR_BAD_REQUEST, "%s without a body frame",
                     arb_msg_type_name (self->type));
        return -2;
    }
    if (self->type == ARB_MSG_RESULT && limits && limits->max_result)
        max_frame = limits->max_result;
    return s_decode_body (self, parts->body, parts->body_size, &parts->frames, max_frame) == 0 ? 0
                                                                                               : -2;
}

int
arb_msg_decode (zmsg_t **zmsg_p, bool routed, const arb_limits_t *limits, arb_msg_t **msg_p)
{
    assert (zmsg_p && *zmsg_p && msg_p);
    zmsg_t *zmsg = *zmsg_p;
    *zmsg_p = NULL;
    s_parts_t parts = {0};
    zframe_t *routing_id = routed ? zmsg_pop (zmsg) : NULL;
    if (routing_id) {
        parts.peer = zframe_data (routing_id);
        parts.peer_size = zframe_size (routing_id);
    }
    zframe_t *header = zmsg_pop (zmsg);
    zframe_t *body = zmsg_pop (zmsg);
    if (header) {
        parts.header = zframe_data (header);
        parts.header_size = zframe_size (header);
    }
    if (body) {
        parts.body = zframe_data (body);
        parts.body_size = zframe_size (body);
    }
    zframe_t *frame;
    while ((frame = zmsg_pop (zmsg)))
        s_parts_add_frame (&parts, frame);
    int rc = s_decode_parts (&parts, routed, limits, msg_p);
    s_parts_free (&parts);
    zframe_destroy (&routing_id);
    zframe_destroy (&header);
    zframe_destroy (&body);
    zmsg_destroy (&zmsg);
    return rc;
}

int
arb_msg_decode_gathered (const uint8_t *peer,
                         size_t peer_size,
                         const uint8_t *header,
                         size_t header_size,
                         const uint8_t *body,
                         size_t body_size,
                         zframe_t **frames,
                         size_t n,
                         const arb_limits_t *limits,
                         arb_msg_t **msg_p)
{
    s_parts_t parts = {
        .peer = peer,
        .peer_size = peer_size,
        .header = header,
        .header_size = header_size,
        .body = body,
        .body_size = body_size,
    };
    for (size_t i = 0; i < n; i++) {
        s_parts_add_frame (&parts, frames[i]);
        frames[i] = NULL;
    }
    int rc = s_decode_parts (&parts, peer != NULL, limits, msg_p);
    s_parts_free (&parts);
    return rc;
}

int
arb_msg_decode_from (zframe_t **routing_id_p,
                     const uint8_t *header,
                     size_t header_size,
                     const uint8_t *body,
                     size_t body_size,
                     zframe_t **frames,
                     size_t n,
                     const arb_limits_t *limits,
                     arb_msg_t **msg_p)
{
    //  routed without an id: refused, as one of no bytes is
    static const uint8_t none[1] = {0};
    zframe_t *routing_id = routing_id_p ? *routing_id_p : NULL;
    if (routing_id_p)
        *routing_id_p = NULL;
    const uint8_t *peer = !routing_id_p ? NULL : routing_id ? zframe_data (routing_id) : none;
    int rc = arb_msg_decode_gathered (peer, routing_id ? zframe_size (routing_id) : 0, header,
                                      header_size, body, body_size, frames, n, limits, msg_p);
    zframe_destroy (&routing_id);
    return rc;
}

//  Receives the next part into msg (initialised by the caller); false if
//  none came (nothing waiting, or interrupted).
static bool
s_recv_part (void *handle, zmq_msg_t *msg)
{
    return zmq_msg_recv (msg, handle, 0) >= 0;
}

int
arb_msg_recv_from (void *sock,
                   bool routed,
                   const arb_limits_t *limits,
                   arb_msg_t **msg_p,
                   char *user_id,
                   size_t user_id_size)
{
    //  The parts go straight from libzmq's messages: no zmsg, and no
    //  zframe but for the payloads the message keeps.
    *msg_p = NULL;
    void *handle = zsock_resolve (sock);
    zmq_msg_t routing_id, header, body;
    zmq_msg_init (&routing_id);
    zmq_msg_init (&header);
    zmq_msg_init (&body);
    s_parts_t parts = {0};
    bool more = true;
    bool have_id = routed && s_recv_part (handle, &routing_id);
    if (routed && !have_id)
        more = false;
    else if (routed) {
        parts.peer = (const uint8_t *) zmq_msg_data (&routing_id);
        parts.peer_size = zmq_msg_size (&routing_id);
        more = zmq_msg_more (&routing_id);
    }
    //  the header: the first part (DEALER), the one after the routing id
    //  (ROUTER); parts of a message arrive together, so one that began is
    //  all there
    bool have_header = more && s_recv_part (handle, &header);
    if (!have_header && (!routed || !have_id)) {
        int error = zmq_errno ();
        zmq_msg_close (&routing_id);
        zmq_msg_close (&header);
        zmq_msg_close (&body);
        errno = error;
        return -1;  //  nothing waiting (EAGAIN), or interrupted
    }
    if (have_header) {
        parts.header = (const uint8_t *) zmq_msg_data (&header);
        parts.header_size = zmq_msg_size (&header);
        more = zmq_msg_more (&header);
    }
    if (user_id && user_id_size) {
        //  (the routing id part has no metadata when the ROUTER read ahead
        //  for a poll: the header part has)
        const char *key = have_header ? zmq_msg_gets (&header, "User-Id") : NULL;
        snprintf (user_id, user_id_size, "%s", key ? key : "");
    }
    if (more && s_recv_part (handle, &body)) {
        parts.body = (const uint8_t *) zmq_msg_data (&body);
        parts.body_size = zmq_msg_size (&body);
        more = zmq_msg_more (&body);
    }
    //  every part of the message is read, whatever it is, so that the next
    //  read begins at the next message
    while (more) {
        zframe_t *frame = zframe_recv (handle);
        if (!frame)
            break;
        more = zframe_more (frame);
        s_parts_add_frame (&parts, frame);
    }
    int rc = s_decode_parts (&parts, routed, limits, msg_p);
    s_parts_free (&parts);
    zmq_msg_close (&routing_id);
    zmq_msg_close (&header);
    zmq_msg_close (&body);
    return rc;
}

int
arb_msg_recv (void *sock, const arb_limits_t *limits, arb_msg_t **msg_p)
{
    int type = 0;
    size_t size = sizeof (type);
    zmq_getsockopt (zsock_resolve (sock), ZMQ_TYPE, &type, &size);
    return arb_msg_recv_from (sock, type == ZMQ_ROUTER, limits, msg_p, NULL, 0);
}
