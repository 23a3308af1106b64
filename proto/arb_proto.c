/*  arb_proto.c — the arbiter codec.

    Encoding walks a body's schema and packs a msgpack map with msgpack-c,
    leaving out absent (zero) optional fields; frames follow the body in
    the order their records were packed.

    Decoding does not use msgpack-c's unpacker: that unpacker allocates
    whatever an array or map header claims before it has seen the bytes,
    so a 5-byte body could ask for gigabytes. Instead a small reader walks
    the bytes with the schema in hand: every value must have the type the
    field wants, every count must fit in the bytes left and under the
    field's limit, and strings are copied into the message's arena with a
    terminating NUL. What the reader refuses it explains with the field's
    path ("tasks[3].name: ..."), which goes back to the sender verbatim.

    A message owns an arena holding its body, lists and strings, so
    destroying a message is one free plus its frames: the arena's first
    ARB_ARENA_FIRST bytes are in the message's own allocation (a SUBMIT of
    one task and its reply fit there), and more come in chunks of at least
    ARB_ARENA_CHUNK. A msgpack zone cost two more allocations a message,
    about a tenth of a one-task SUBMIT's in the broker (BENCHMARKS.md).
*/

#include "arb_proto.h"
#include "arb_schema.h"

#include <msgpack.h>
#include <stdarg.h>

#define ARB_HEADER_SIZE 8
#define ARB_ARENA_FIRST 512  //  the message with it stays under glibc's tcache limit (1,032 bytes)
#define ARB_ARENA_CHUNK 960
#define ARB_PATH_DEPTH  8

//  A chunk of a message's arena past its first bytes.
typedef struct s_chunk_t {
    struct s_chunk_t *next;
    max_align_t data[];
} s_chunk_t;

struct _arb_msg_t {
    arb_msg_type_t type;   //  0 when the header could not be read
    uint32_t reqid;        //  request id; 0 for streamed messages
    zframe_t *routing_id;  //  owned; ROUTER side only
    void *body;            //  in the arena; NULL for an undecodable message
    const char *error;     //  in the arena: why decoding failed
    arb_err_t error_code;  //  what to answer with when error is set
    char *free_at;         //  the arena's free bytes: in first or the newest chunk
    size_t free_size;
    s_chunk_t *chunks;  //  owned, the newest first
    max_align_t first[ARB_ARENA_FIRST / sizeof (max_align_t)];
};

//  A byte that does not start a well-formed character (overlong,
//  surrogate, beyond U+10FFFF) becomes '?', and a character cut short at
//  the end (by truncation) is dropped. Errors go to the journal, logs and
//  JSON; a stray byte must not break them.
void
arb_text_clean (char *text)
{
    uint8_t *p = (uint8_t *) text;
    while (*p) {
        size_t need = *p < 0x80   ? 0
                      : *p < 0xc2 ? 4
                      : *p < 0xe0 ? 1
                      : *p < 0xf0 ? 2
                      : *p < 0xf5 ? 3
                                  : 4;
        size_t k = 1;
        while (need < 4 && k <= need && (p[k] & 0xc0) == 0x80)
            k++;
        bool bad = need == 4 || k <= need || (p[0] == 0xe0 && p[1] < 0xa0)
                   || (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf0 && p[1] < 0x90)
                   || (p[0] == 0xf4 && p[1] >= 0x90);
        if (bad && need < 4 && k <= need && p[k] == 0) {
            *p = 0;  //  cut short at the end
            return;
        }
        if (bad) {
            *p++ = '?';
            continue;
        }
        p += need + 1;
    }
}

void
arb_text_copy (char *dest, const char *text, size_t len)
{
    if (len > ARB_TEXT_MAX)
        len = ARB_TEXT_MAX;
    //  an error is a wire string: no NUL inside
    for (size_t i = 0; i < len; i++)
        dest[i] = text[i] ? text[i] : '.';
    dest[len] = '\0';
    arb_text_clean (dest);
}

arb_msg_type_t
arb_msg_reply_type (arb_msg_type_t request)
{
    switch (request) {
        case ARB_MSG_PING:
            return ARB_MSG_PONG;
        case ARB_MSG_SUBMIT:
            return ARB_MSG_SUBMITTED;
        case ARB_MSG_STATUS:
            return ARB_MSG_STATUS_REPLY;
        case ARB_MSG_LIST:
            return ARB_MSG_LIST_REPLY;
        case ARB_MSG_WATCH:
            return ARB_MSG_WATCHING;
        case ARB_MSG_CANCEL:
            return ARB_MSG_CANCEL_REPLY;
        case ARB_MSG_RETRY:
            return ARB_MSG_RETRY_REPLY;
        case ARB_MSG_STATS:
            return ARB_MSG_STATS_REPLY;
        case ARB_MSG_QUEUE:
        case ARB_MSG_LIMIT:
        case ARB_MSG_EVENTS:
            return ARB_MSG_OK;
        case ARB_MSG_PEEK:
            return ARB_MSG_PEEK_REPLY;
        case ARB_MSG_META:
            return ARB_MSG_META_REPLY;
        case ARB_MSG_SCHEDULE:
            return ARB_MSG_SCHEDULE_REPLY;
        case ARB_MSG_REGISTER:
            return ARB_MSG_WELCOME;
        case ARB_MSG_TAKE:
            return ARB_MSG_DISPATCH;
        default:
            return (arb_msg_type_t) 0;
    }
}

static const char *s_state_names[ARB_STATE_MAX + 1] = {
    NULL,        "waiting", "scheduled", "ready",     "running",
    "succeeded", "failed",  "dead",      "cancelled", "skipped",
};

const char *
arb_state_name (int state)
{
    if (state <= 0 || state > ARB_STATE_MAX)
        return "?";
    return s_state_names[state];
}

int
arb_state_parse (const char *name)
{
    for (int state = 1; name && state <= ARB_STATE_MAX; state++)
        if (streq (name, s_state_names[state]))
            return state;
    return -1;
}

uint64_t
arb_commit_bound_us (size_t bucket)
{
    static const uint64_t bounds[ARB_COMMIT_BUCKETS - 1] = {
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
    return bucket < ARB_COMMIT_BUCKETS - 1 ? bounds[bucket] : UINT64_MAX;
}

bool
arb_state_is_final (int state)
{
    return state == ARB_STATE_SUCCEEDED || state == ARB_STATE_DEAD || state == ARB_STATE_CANCELLED
           || state == ARB_STATE_SKIPPED;
}

void
arb_schedule_info_to_spec (const arb_schedule_info_t *info, arb_task_spec_t *spec)
{
    spec->queue = info->queue;
    spec->name = info->task;
    spec->priority = info->priority;
    spec->retries = info->retries;
    spec->backoff = info->backoff;
    spec->backoff_ms = info->backoff_ms;
    spec->backoff_cap_ms = info->backoff_cap_ms;
    spec->no_jitter = info->no_jitter;
    spec->timeout_ms = info->timeout_ms;
    spec->soft_timeout_ms = info->soft_timeout_ms;
    spec->retention_ms = info->retention_ms;
}

void
arb_schedule_info_from_spec (arb_schedule_info_t *info, const arb_task_spec_t *spec)
{
    info->queue = spec->queue;
    info->task = spec->name;
    info->priority = spec->priority;
    info->retries = spec->retries;
    info->backoff = spec->backoff;
    info->backoff_ms = spec->backoff_ms;
    info->backoff_cap_ms = spec->backoff_cap_ms;
    info->no_jitter = spec->no_jitter;
    info->timeout_ms = spec->timeout_ms;
    info->soft_timeout_ms = spec->soft_timeout_ms;
    info->retention_ms = spec->retention_ms;
}

bool
arb_state_is_resting (int state)
{
    return state > 0 && state <= ARB_STATE_MAX && state != ARB_STATE_FAILED;
}

//  ---------------------------------------------------------------------
//  Names.

size_t
arb_utf8_len (const uint8_t *p, size_t left)
{
    uint8_t b = p[0];
    if (b < 0x80)
        return 1;
    //  lead byte ranges exclude overlong 2-byte forms and code points past U+10FFFF
    size_t len = b >= 0xc2 && b <= 0xdf   ? 2
                 : b >= 0xe0 && b <= 0xef ? 3
                 : b >= 0xf0 && b <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || left < len)
        return 0;
    uint32_t cp = b & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int
arb_name_check (const char *text, size_t len, char *why, size_t size)
{
    const uint8_t *p = (const uint8_t *) text;
    for (size_t i = 0; i < len;) {
        size_t n = arb_utf8_len (p + i, len - i);
        if (n == 0) {
            snprintf (why, size, "invalid UTF-8 at byte %zu", i + 1);
            return -1;
        }
        //  C1 controls (U+0080..U+009F) are \xc2\x80..\xc2\x9f
        if (p[i] < 0x20 || p[i] == 0x7f || (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
            if (n == 2)
                snprintf (why, size, "control character U+%04X at byte %zu", p[i + 1], i + 1);
            else
                snprintf (why, size, "control character 0x%02x at byte %zu", p[i], i + 1);
            return -1;
        }
        i += n;
    }
    return 0;
}

bool
arb_name_is_valid (const char *text, size_t len)
{
    char why[80];
    return len > 0 && len <= ARB_NAME_MAX && arb_name_check (text, len, why, sizeof (why)) == 0;
}

//  ---------------------------------------------------------------------
//  Messages and their arena.

//  A message with an empty arena (its first bytes not cleared: each
//  allocation clears its own).
static arb_msg_t *
s_msg_alloc (void)
{
    arb_msg_t *self = (arb_msg_t *) malloc (sizeof (arb_msg_t));
    assert (self);  //  out of memory
    memset (self, 0, offsetof (arb_msg_t, first));
    self->free_at = (char *) self->first;
    self->free_size = sizeof (self->first);
    return self;
}

void *
arb_msg_alloc (arb_msg_t *self, size_t size)
{
    assert (self);
    const size_t align = _Alignof(max_align_t);
    size_t need = size ? (size + align - 1) / align * align : align;
    assert (need >= size);  //  no overflow
    if (need > self->free_size) {
        size_t room = need > ARB_ARENA_CHUNK ? need : ARB_ARENA_CHUNK;
        s_chunk_t *chunk = (s_chunk_t *) malloc (sizeof (s_chunk_t) + room);
        assert (chunk);  //  out of memory
        chunk->next = self->chunks;
        self->chunks = chunk;
        self->free_at = (char *) chunk->data;
        self->free_size = room;
    }
    void *mem = self->free_at;
    self->free_at += need;
    self->free_size -= need;
    memset (mem, 0, size);
    return mem;
}

const char *
arb_msg_strdup (arb_msg_t *self, const char *str)
{
    if (!str)
        return NULL;
    size_t len = strlen (str);
    char *copy = (char *) arb_msg_alloc (self, len + 1);
    memcpy (copy, str, len);
    return copy;
}

arb_msg_t *
arb_msg_new (arb_msg_type_t type, uint32_t reqid)
{
    const arb_schema_t *schema = arb_schema_of (type);
    assert (schema);
    arb_msg_t *self = s_msg_alloc ();
    self->type = type;
    self->reqid = reqid;
    self->body = arb_msg_alloc (self, schema->size);
    return self;
}

//  Calls fn on every frame slot of a record (and its nested records).
typedef void (s_frame_fn) (zframe_t **slot, void *arg);

static void
s_each_frame (const arb_schema_t *schema, void *rec, s_frame_fn *fn, void *arg)
{
    for (size_t i = 0; i < schema->nfields; i++) {
        const arb_field_t *f = &schema->fields[i];
        char *at = (char *) rec + f->offset;
        if (f->type == ARB_F_FRAME)
            fn ((zframe_t **) at, arg);
        else if (f->type == ARB_F_LIST) {
            char *items;
            size_t n;
            memcpy (&items, at, sizeof (items));
            memcpy (&n, at + sizeof (items), sizeof (n));
            for (size_t k = 0; k < n; k++)
                s_each_frame (f->sub, items + k * f->sub->size, fn, arg);
        }
    }
}

static void
s_frame_destroy (zframe_t **slot, void *arg)
{
    (void) arg;
    zframe_destroy (slot);
}

void
arb_msg_destroy (arb_msg_t **self_p)
{
    assert (self_p);
    arb_msg_t *self = *self_p;
    if (!self)
        return;
    if (self->body)
        s_each_frame (arb_schema_of (self->type), self->body, s_frame_destroy, NULL);
    zframe_destroy (&self->routing_id);
    while (self->chunks) {
        s_chunk_t *next = self->chunks->next;
        free (self->chunks);
        self->chunks = next;
    }
    free (self);
    *self_p = NULL;
}

arb_msg_type_t
arb_msg_type (arb_msg_t *self)
{
    assert (self);
    return self->type;
}

uint32_t
arb_msg_reqid (arb_msg_t *self)
{
    assert (self);
    return self->reqid;
}

void
arb_msg_set_reqid (arb_msg_t *self, uint32_t reqid)
{
    assert (self);
    self->reqid = reqid;
}

void *
arb_msg_body (arb_msg_t *self)
{
    assert (self);
    return self->body;
}

zframe_t *
arb_msg_routing_id (arb_msg_t *self)
{
    assert (self);
    return self->routing_id;
}

void
arb_msg_set_routing_id (arb_msg_t *self, zframe_t *routing_id)
{
    assert (self);
    zframe_destroy (&self->routing_id);
    if (routing_id)
        self->routing_id = zframe_dup (routing_id);
}

const char *
arb_msg_decode_error (arb_msg_t *self)
{
    assert (self);
    return self->error;
}

arb_err_t
arb_msg_decode_code (arb_msg_t *self)
{
    assert (self);
    return self->error_code;
}

#define ARB_X(NAME, NUM, lower)                             \
    arb_##lower##_body_t *arb_msg_##lower (arb_msg_t *self) \
    {                                                       \
        assert (self && self->type == ARB_MSG_##NAME);      \
        return (arb_##lower##_body_t *) self->body;         \
    }
ARB_MSG_LIST (ARB_X)
#undef ARB_X

//  Lists grown through here always have room for the next power of two
//  of their length, so appending is amortised O(1).
static size_t
s_capacity (size_t n)
{
    if (n == 0)
        return 0;
    size_t cap = 4;
    while (cap < n)
        cap *= 2;
    return cap;
}

void *
arb_msg_grow (arb_msg_t *self, void *list, size_t size, size_t n)
{
    char *items;
    size_t count;
    memcpy (&items, list, sizeof (items));
    memcpy (&count, (char *) list + sizeof (items), sizeof (count));
    if (count + n > s_capacity (count)) {
        char *bigger = (char *) arb_msg_alloc (self, s_capacity (count + n) * size);
        if (count)
            memcpy (bigger, items, count * size);
        items = bigger;
        memcpy (list, &items, sizeof (items));
    }
    else
        memset (items + count * size, 0, n * size);
    char *first = items + count * size;
    count += n;
    memcpy ((char *) list + sizeof (items), &count, sizeof (count));
    return first;
}

arb_msg_t *
arb_msg_new_reply (arb_msg_t *request, arb_msg_type_t type)
{
    arb_msg_t *reply = arb_msg_new (type, request->reqid);
    arb_msg_set_routing_id (reply, request->routing_id);
    return reply;
}

arb_msg_t *
arb_msg_new_error (arb_msg_t *request, arb_err_t code, const char *fmt, ...)
{
    arb_msg_t *reply = arb_msg_new_reply (request, ARB_MSG_ERROR);
    char reason[ARB_TEXT_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (reason, sizeof (reason), fmt, args);
    va_end (args);
    //  a reason may quote what the peer sent, and be cut at the limit in
    //  the middle of a character: it still goes out as UTF-8
    arb_text_clean (reason);
    arb_error_body_t *body = (arb_error_body_t *) reply->body;
    body->code = code;
    body->reason = arb_msg_strdup (reply, reason);
    return reply;
}

//  ---------------------------------------------------------------------
//  Encoding.

static bool
s_present (const arb_field_t *f, const char *at)
{
    if (f->type == ARB_F_FRAME)
        return false;  //  frames travel beside the body
    if (f->required)
        return true;
    switch (f->type) {
        case ARB_F_U64:
            return *(const uint64_t *) at != 0;
        case ARB_F_U32:
            return *(const uint32_t *) at != 0;
        case ARB_F_I32:
            return *(const int32_t *) at != 0;
        case ARB_F_BOOL:
            return *(const bool *) at;
        case ARB_F_STR:
        case ARB_F_NAME:
            return *(const char *const *) at != NULL;
        case ARB_F_BIN:
            return ((const arb_bin_t *) at)->size > 0;
        case ARB_F_STRS:
        case ARB_F_IDS:
        case ARB_F_LIST: {
            size_t n;
            memcpy (&n, at + sizeof (void *), sizeof (n));
            return n > 0;
        }
        case ARB_F_FRAME:
            return false;
    }
    return false;
}

static void
s_pack_str (msgpack_packer *pk, const char *str)
{
    size_t len = str ? strlen (str) : 0;
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, str ? str : "", len);
}

static void
s_pack_key (msgpack_packer *pk, const arb_field_t *f)
{
    msgpack_pack_str (pk, f->key_len);
    msgpack_pack_str_body (pk, f->key, f->key_len);
}

static void
s_encode_record (msgpack_packer *pk, const arb_schema_t *schema, void *rec, zmsg_t **out)
{
    //  which fields go in the map (a schema has at most 64, as the decoder's
    //  own bit set assumes): looked at once
    assert (schema->nfields <= 64);
    uint64_t present = 0;
    size_t count = 0;
    for (size_t i = 0; i < schema->nfields; i++)
        if (s_present (&schema->fields[i], (const char *) rec + schema->fields[i].offset)) {
            present |= (uint64_t) 1 << i;
            count++;
        }
    msgpack_pack_map (pk, count);

    zframe_t *frame = NULL;
    bool has_frame = false;
    for (size_t i = 0; i < schema->nfields; i++) {
        const arb_field_t *f = &schema->fields[i];
        char *at = (char *) rec + f->offset;
        if (f->type == ARB_F_FRAME) {
            has_frame = true;
            frame = *(zframe_t **) at;
            *(zframe_t **) at = NULL;  //  the zmsg owns it now
            continue;
        }
        if (!(present & ((uint64_t) 1 << i)))
            continue;
        s_pack_key (pk, f);
        switch (f->type) {
            case ARB_F_U64:
                msgpack_pack_uint64 (pk, *(uint64_t *) at);
                break;
            case ARB_F_U32:
                msgpack_pack_uint32 (pk, *(uint32_t *) at);
                break;
            case ARB_F_I32:
                msgpack_pack_int32 (pk, *(int32_t *) at);
                break;
            case ARB_F_BOOL:
                if (*(bool *) at)
                    msgpack_pack_true (pk);
                else
                    msgpack_pack_false (pk);
                break;
            case ARB_F_STR:
            case ARB_F_NAME:
                s_pack_str (pk, *(const char **) at);
                break;
            case ARB_F_BIN: {
                arb_bin_t *bin = (arb_bin_t *) at;
                msgpack_pack_bin (pk, bin->size);
                msgpack_pack_bin_body (pk, bin->data, bin->size);
                break;
            }
            case ARB_F_STRS: {
                arb_strs_t *strs = (arb_strs_t *) at;
                msgpack_pack_array (pk, strs->n);
                for (size_t k = 0; k < strs->n; k++)
                    s_pack_str (pk, strs->v[k]);
                break;
            }
            case ARB_F_IDS: {
                arb_ids_t *ids = (arb_ids_t *) at;
                msgpack_pack_array (pk, ids->n);
                for (size_t k = 0; k < ids->n; k++)
                    msgpack_pack_uint64 (pk, ids->v[k]);
                break;
            }
            case ARB_F_LIST: {
                char *items;
                size_t n;
                memcpy (&items, at, sizeof (items));
                memcpy (&n, at + sizeof (items), sizeof (n));
                msgpack_pack_array (pk, n);
                for (size_t k = 0; k < n; k++)
                    s_encode_record (pk, f->sub, items + k * f->sub->size, out);
                break;
            }
            case ARB_F_FRAME:
                break;
        }
    }
    //  A record's own frame follows the frames of its nested records, the
    //  same order in which the decoder will claim them.
    if (has_frame) {
        if (!frame)
            frame = zframe_new_empty ();
        if (!*out)
            *out = zmsg_new ();
        zmsg_append (*out, &frame);
    }
}

//  Where a message's body is packed: a buffer on the caller's stack for
//  the usual small body, on the heap beyond it (msgpack's sbuffer took a
//  fresh 8 KiB from malloc for every message).
typedef struct {
    uint8_t *data;    //  stack or owned
    size_t size;      //  bytes packed
    size_t capacity;  //  bytes at data
    uint8_t stack[1024];
} s_buf_t;

static int
s_buf_write (void *data, const char *bytes, size_t len)
{
    s_buf_t *buf = (s_buf_t *) data;
    if (buf->size + len > buf->capacity) {
        size_t capacity = buf->capacity * 2;
        while (capacity < buf->size + len)
            capacity *= 2;
        uint8_t *bigger = (uint8_t *) malloc (capacity);
        assert (bigger);
        memcpy (bigger, buf->data, buf->size);
        if (buf->data != buf->stack)
            free (buf->data);
        buf->data = bigger;
        buf->capacity = capacity;
    }
    memcpy (buf->data + buf->size, bytes, len);
    buf->size += len;
    return 0;
}

//  Packs the message's header and body; *payloads gets the payload
//  frames, in order (NULL: none). Takes the frames out of its body.
//  Returns the message (still the caller's).
static arb_msg_t *
s_encode (arb_msg_t **self_p, uint8_t *header, s_buf_t *buf, zmsg_t **payloads)
{
    assert (self_p && *self_p);
    arb_msg_t *self = *self_p;
    const arb_schema_t *schema = arb_schema_of (self->type);
    assert (schema && self->body);
    header[0] = 'A';
    header[1] = 'R';
    header[2] = ARB_PROTO_VERSION;
    header[3] = (uint8_t) self->type;
    header[4] = (uint8_t) (self->reqid >> 24);
    header[5] = (uint8_t) (self->reqid >> 16);
    header[6] = (uint8_t) (self->reqid >> 8);
    header[7] = (uint8_t) self->reqid;
    buf->data = buf->stack;
    buf->size = 0;
    buf->capacity = sizeof (buf->stack);
    *payloads = NULL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, s_buf_write);
    s_encode_record (&pk, schema, self->body, payloads);
    return self;
}

static void
s_buf_free (s_buf_t *buf)
{
    if (buf->data != buf->stack)
        free (buf->data);
    buf->data = NULL;
}

zmsg_t *
arb_msg_encode (arb_msg_t **self_p)
{
    uint8_t header[ARB_HEADER_SIZE];
    s_buf_t buf;
    zmsg_t *payloads;
    arb_msg_t *self = s_encode (self_p, header, &buf, &payloads);
    zmsg_t *zmsg = zmsg_new ();
    if (self->routing_id)
        zmsg_append (zmsg, &self->routing_id);
    zmsg_addmem (zmsg, header, sizeof (header));
    zmsg_addmem (zmsg, buf.data, buf.size);
    s_buf_free (&buf);
    zframe_t *frame;
    while (payloads && (frame = zmsg_pop (payloads)))
        zmsg_append (zmsg, &frame);
    zmsg_destroy (&payloads);
    arb_msg_destroy (self_p);
    return zmsg;
}

int
arb_msg_put (arb_msg_t **self_p, arb_part_fn *put, void *arg)
{
    uint8_t header[ARB_HEADER_SIZE];
    s_buf_t buf;
    zmsg_t *payloads;
    s_encode (self_p, header, &buf, &payloads);
    bool more = payloads && zmsg_size (payloads);
    int rc = put (arg, header, sizeof (header), true);
    if (rc == 0)
        rc = put (arg, buf.data, buf.size, more);
    for (zframe_t *frame = payloads ? zmsg_first (payloads) : NULL; rc == 0 && frame;) {
        zframe_t *next = zmsg_next (payloads);
        rc = put (arg, zframe_data (frame), zframe_size (frame), next != NULL);
        frame = next;
    }
    s_buf_free (&buf);
    zmsg_destroy (&payloads);
    arb_msg_destroy (self_p);
    return rc;
}

//  Sends the frames straight from the packed buffer, without a zmsg and
//  the zframes it would copy them into: a small frame goes inside
//  libzmq's message, with no allocation at all. A ROUTER refuses a message
//  (EHOSTUNREACH, EAGAIN) at its first frame, before any of it is queued.
int
arb_msg_send (arb_msg_t **self_p, void *sock)
{
    uint8_t header[ARB_HEADER_SIZE];
    s_buf_t buf;
    zmsg_t *payloads;
    arb_msg_t *self = s_encode (self_p, header, &buf, &payloads);
    void *handle = zsock_resolve (sock);
    int more = payloads && zmsg_size (payloads) ? ZMQ_SNDMORE : 0;
    int rc = 0;
    if (self->routing_id)
        rc = zmq_send (handle, zframe_data (self->routing_id), zframe_size (self->routing_id),
                       ZMQ_SNDMORE);
    if (rc >= 0)
        rc = zmq_send (handle, header, sizeof (header), ZMQ_SNDMORE);
    if (rc >= 0)
        rc = zmq_send (handle, buf.data, buf.size, more);
    zframe_t *frame;
    while (rc >= 0 && payloads && (frame = zmsg_pop (payloads))) {
        rc = zframe_send (&frame, sock, zmsg_size (payloads) ? ZFRAME_MORE : 0);
        zframe_destroy (&frame);  //  left to us when the send failed
    }
    int error = errno;
    s_buf_free (&buf);
    zmsg_destroy (&payloads);
    arb_msg_destroy (self_p);
    errno = error;  //  the caller may want to know why
    return rc >= 0 ? 0 : -1;
}

//  ---------------------------------------------------------------------
//  Decoding.

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
    zframe_t *routing_id;   //  owned, or NULL
    const uint8_t *header;  //  borrowed, or NULL if missing
    size_t header_size;
    const uint8_t *body;  //  borrowed, or NULL if missing
    size_t body_size;
    s_frames_t frames;  //  the payload frames
} s_parts_t;

static void
s_parts_free (s_parts_t *parts)
{
    zframe_destroy (&parts->routing_id);
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
    if (routed && (!parts->routing_id || zframe_size (parts->routing_id) == 0))
        return -2;
    arb_msg_t *self = s_msg_alloc ();
    self->routing_id = parts->routing_id;
    parts->routing_id = NULL;
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
    if (routed)
        parts.routing_id = zmsg_pop (zmsg);
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
    zframe_destroy (&header);
    zframe_destroy (&body);
    zmsg_destroy (&zmsg);
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
    s_parts_t parts = {
        .routing_id = routing_id_p ? *routing_id_p : NULL,
        .header = header,
        .header_size = header_size,
        .body = body,
        .body_size = body_size,
    };
    if (routing_id_p)
        *routing_id_p = NULL;
    for (size_t i = 0; i < n; i++) {
        s_parts_add_frame (&parts, frames[i]);
        frames[i] = NULL;
    }
    int rc = s_decode_parts (&parts, routing_id_p != NULL, limits, msg_p);
    s_parts_free (&parts);
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
    //  zframe but for the routing id and the payloads the message keeps.
    *msg_p = NULL;
    void *handle = zsock_resolve (sock);
    zmq_msg_t header, body;
    zmq_msg_init (&header);
    zmq_msg_init (&body);
    s_parts_t parts = {0};
    bool more = true;
    if (routed && !(parts.routing_id = zframe_recv (handle)))
        more = false;
    else if (routed)
        more = zframe_more (parts.routing_id);
    //  the header: the first part (DEALER), the one after the routing id
    //  (ROUTER); parts of a message arrive together, so one that began is
    //  all there
    bool have_header = more && s_recv_part (handle, &header);
    if (!have_header && (!routed || !parts.routing_id)) {
        int error = zmq_errno ();
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
