/*  arb_proto.c — the arbiter codec: messages and their encoding.

    Encoding walks a body's schema and packs a msgpack map with msgpack-c,
    leaving out absent (zero) optional fields; frames follow the body in
    the order their records were packed.

    Decoding is arb_proto_decode.c's; the two share the message's record
    (arb_proto_priv.h).

    A message owns an arena holding its body, lists and strings, so
    destroying a message is one free plus its frames: the arena's first
    ARB_ARENA_FIRST bytes are in the message's own allocation (a SUBMIT of
    one task and its reply fit there), and more come in chunks of at least
    ARB_ARENA_CHUNK. A msgpack zone cost two more allocations a message,
    about a tenth of a one-task SUBMIT's in the broker (BENCHMARKS.md).
*/

#include "arb_proto_priv.h"
#include "arb_schema.h"

#include <msgpack.h>
#include <stdarg.h>

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
        case ARB_MSG_DELETE:
            return ARB_MSG_DELETE_REPLY;
        case ARB_MSG_LIMITS:
            return ARB_MSG_LIMITS_REPLY;
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
arb_utf8_cut (const char *text, size_t max)
{
    size_t n = strlen (text);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char) text[max] & 0xc0) == 0x80)
        max--;  //  text[max], the first byte dropped, continues a character
    return max;
}

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

arb_msg_t *
arb_msg_alloc_empty (void)
{
    arb_msg_t *self = (arb_msg_t *) malloc (sizeof (arb_msg_t));
    assert (self);  //  out of memory
    memset (self, 0, offsetof (arb_msg_t, first));
    self->free_at = (char *) self->first;
    self->free_size = sizeof (self->first);
    return self;
}

//  As arb_msg_alloc, its bytes not cleared: for a caller that writes
//  them all (a copy), or clears only what it uses.
static void *
s_alloc_raw (arb_msg_t *self, size_t size)
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
    return mem;
}

void *
arb_msg_alloc (arb_msg_t *self, size_t size)
{
    void *mem = s_alloc_raw (self, size);
    memset (mem, 0, size);
    return mem;
}

const char *
arb_msg_strdup (arb_msg_t *self, const char *str)
{
    if (!str)
        return NULL;
    size_t len = strlen (str);
    char *copy = (char *) s_alloc_raw (self, len + 1);
    memcpy (copy, str, len + 1);
    return copy;
}

arb_bin_t
arb_msg_bindup (arb_msg_t *self, const void *data, size_t size)
{
    if (size == 0)
        return (arb_bin_t){NULL, 0};
    uint8_t *copy = (uint8_t *) s_alloc_raw (self, size);
    memcpy (copy, data, size);
    return (arb_bin_t){copy, size};
}

arb_msg_t *
arb_msg_new (arb_msg_type_t type, uint32_t reqid)
{
    const arb_schema_t *schema = arb_schema_of (type);
    assert (schema);
    arb_msg_t *self = arb_msg_alloc_empty ();
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
    if (schema->frame_at)
        fn ((zframe_t **) ((char *) rec + schema->frame_at - 1), arg);
    else if (schema->list_at) {
        const char *at = (const char *) rec + schema->list_at - 1;
        char *items;
        size_t n;
        memcpy (&items, at, sizeof (items));
        memcpy (&n, at + sizeof (items), sizeof (n));
        for (size_t k = 0; k < n; k++)
            s_each_frame (schema->list_sub, items + k * schema->list_sub->size, fn, arg);
    }
}

static void
s_frame_destroy (zframe_t **slot, void *arg)
{
    (void) arg;
    zframe_destroy (slot);
}

//  Frees a message whose body holds no frames (or whose frames are freed):
//  its arena, and the routing id frame arb_msg_routing_id made.
static void
s_msg_free (arb_msg_t **self_p)
{
    arb_msg_t *self = *self_p;
    zframe_destroy (&self->routing_id);
    while (self->chunks) {
        s_chunk_t *next = self->chunks->next;
        free (self->chunks);
        self->chunks = next;
    }
    free (self);
    *self_p = NULL;
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
    s_msg_free (self_p);
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

const uint8_t *
arb_msg_peer (arb_msg_t *self, size_t *size)
{
    assert (self && size);
    *size = self->peer_size;
    return self->peer;
}

void
arb_msg_set_peer (arb_msg_t *self, const uint8_t *data, size_t size)
{
    assert (self && (data || !size));
    //  copied before the frame goes: data may be its bytes
    uint8_t *copy = size ? (uint8_t *) s_alloc_raw (self, size) : NULL;
    if (size)
        memcpy (copy, data, size);
    zframe_destroy (&self->routing_id);
    self->peer = copy;
    self->peer_size = size;
}

zframe_t *
arb_msg_routing_id (arb_msg_t *self)
{
    assert (self);
    if (!self->routing_id && self->peer)
        self->routing_id = zframe_new (self->peer, self->peer_size);
    return self->routing_id;
}

void
arb_msg_set_routing_id (arb_msg_t *self, zframe_t *routing_id)
{
    assert (self);
    if (routing_id)
        arb_msg_set_peer (self, zframe_data (routing_id), zframe_size (routing_id));
    else
        arb_msg_set_peer (self, NULL, 0);
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
    if (n == 0)  //  an empty list in a request (tasks: []) may have no items at all
        return items ? items + count * size : NULL;
    //  the room past count + n is cleared when it is taken, here
    if (count + n > s_capacity (count)) {
        char *bigger = (char *) s_alloc_raw (self, s_capacity (count + n) * size);
        if (count)
            memcpy (bigger, items, count * size);
        items = bigger;
        memcpy (list, &items, sizeof (items));
    }
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
    arb_msg_set_peer (reply, request->peer, request->peer_size);
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

//  Where a message's body is packed: a buffer on the caller's stack for
//  the usual small body, on the heap beyond it (msgpack's sbuffer took a
//  fresh 8 KiB from malloc for every message).
typedef struct {
    uint8_t *data;    //  stack or owned
    size_t size;      //  bytes packed
    size_t capacity;  //  bytes at data
    uint8_t stack[1024];
} s_buf_t;

//  Makes room for len more bytes: the buffer doubles, onto the heap.
static void
s_buf_grow (s_buf_t *buf, size_t len)
{
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

static inline int
s_buf_write (s_buf_t *buf, const void *bytes, size_t len)
{
    if (buf->size + len > buf->capacity)
        s_buf_grow (buf, len);
    memcpy (buf->data + buf->size, bytes, len);
    buf->size += len;
    return 0;
}

//  msgpack-c's packer, made from its own template as its pack.h makes
//  msgpack_pack_*, but writing into the buffer above in line: the stock
//  packer calls its writer through a pointer for every piece (a key's
//  header, its bytes, each value: 46 calls a task in P2's broker).
#define msgpack_pack_inline_func(name)             static inline int s_mp##name
#define msgpack_pack_user                          s_buf_t *
#define msgpack_pack_append_buffer(user, buf, len) return s_buf_write (user, buf, len)
#include <msgpack/pack_template.h>

static void
s_pack_str (s_buf_t *pk, const char *str)
{
    size_t len = str ? strlen (str) : 0;
    s_mp_str (pk, len);
    s_mp_str_body (pk, str ? str : "", len);
}

//  A key is a field's C name, under 32 bytes: a fixstr, its header and
//  bytes written at once (the same bytes as s_mp_str and s_mp_str_body).
static void
s_pack_key (s_buf_t *pk, const arb_field_t *f)
{
    assert (f->key_len < 32);
    if (pk->size + 1 + f->key_len > pk->capacity)
        s_buf_grow (pk, 1 + f->key_len);
    pk->data[pk->size] = (uint8_t) (0xa0 | f->key_len);
    memcpy (pk->data + pk->size + 1, f->key, f->key_len);
    pk->size += 1 + f->key_len;
}

//  The payload frames an encoding takes out of a body, in order: the first
//  few inline (most messages have one or two), more in an owned array. A
//  zmsg of them cost two allocations a message and one a frame. NULL is
//  an empty frame (a record without one: a result with no value), sent as
//  an empty part without a zframe made for it.
typedef struct {
    zframe_t **v;  //  first, or owned
    size_t n, capacity;
    zframe_t *first[8];
} s_out_t;

static void
s_out_init (s_out_t *out)
{
    out->v = out->first;
    out->n = 0;
    out->capacity = sizeof (out->first) / sizeof (out->first[0]);
}

static void
s_out_push (s_out_t *out, zframe_t *frame)
{
    if (out->n == out->capacity) {
        size_t capacity = out->capacity * 2;
        zframe_t **v = (zframe_t **) malloc (capacity * sizeof (zframe_t *));
        assert (v);  //  out of memory
        memcpy (v, out->v, out->n * sizeof (zframe_t *));
        if (out->v != out->first)
            free (out->v);
        out->v = v;
        out->capacity = capacity;
    }
    out->v[out->n++] = frame;
}

//  Destroys the frames not taken (NULL slots were) and the array.
static void
s_out_free (s_out_t *out)
{
    for (size_t i = 0; i < out->n; i++)
        zframe_destroy (&out->v[i]);
    if (out->v != out->first)
        free (out->v);
    s_out_init (out);
}

static void
s_encode_record (s_buf_t *pk, const arb_schema_t *schema, void *rec, s_out_t *out)
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
    s_mp_map (pk, count);

    //  then only the fields present, in the schema's order: a record has
    //  a few of its optional fields set (a task spec, 25 fields: 2 or 3)
    for (uint64_t left = present; left; left &= left - 1) {
        const arb_field_t *f = &schema->fields[__builtin_ctzll (left)];
        char *at = (char *) rec + f->offset;
        s_pack_key (pk, f);
        switch (f->type) {
            case ARB_F_U64:
                s_mp_uint64 (pk, *(uint64_t *) at);
                break;
            case ARB_F_U32:
                s_mp_uint32 (pk, *(uint32_t *) at);
                break;
            case ARB_F_I32:
                s_mp_int32 (pk, *(int32_t *) at);
                break;
            case ARB_F_BOOL:
                if (*(bool *) at)
                    s_mp_true (pk);
                else
                    s_mp_false (pk);
                break;
            case ARB_F_STR:
            case ARB_F_NAME:
                s_pack_str (pk, *(const char **) at);
                break;
            case ARB_F_BIN: {
                arb_bin_t *bin = (arb_bin_t *) at;
                s_mp_bin (pk, bin->size);
                s_mp_bin_body (pk, bin->data, bin->size);
                break;
            }
            case ARB_F_STRS: {
                arb_strs_t *strs = (arb_strs_t *) at;
                s_mp_array (pk, strs->n);
                for (size_t k = 0; k < strs->n; k++)
                    s_pack_str (pk, strs->v[k]);
                break;
            }
            case ARB_F_IDS: {
                arb_ids_t *ids = (arb_ids_t *) at;
                s_mp_array (pk, ids->n);
                for (size_t k = 0; k < ids->n; k++)
                    s_mp_uint64 (pk, ids->v[k]);
                break;
            }
            case ARB_F_LIST: {
                char *items;
                size_t n;
                memcpy (&items, at, sizeof (items));
                memcpy (&n, at + sizeof (items), sizeof (n));
                s_mp_array (pk, n);
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
    if (schema->frame_at) {
        zframe_t **slot = (zframe_t **) ((char *) rec + schema->frame_at - 1);
        s_out_push (out, *slot);
        *slot = NULL;  //  out owns it now
    }
}

//  Packs the message's header and body; payloads (initialised here) gets
//  the payload frames, in order. Takes the frames out of its body.
//  Returns the message (still the caller's).
static arb_msg_t *
s_encode (arb_msg_t **self_p, uint8_t *header, s_buf_t *buf, s_out_t *payloads)
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
    s_out_init (payloads);
    s_encode_record (buf, schema, self->body, payloads);
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
    s_out_t payloads;
    arb_msg_t *self = s_encode (self_p, header, &buf, &payloads);
    zmsg_t *zmsg = zmsg_new ();
    if (self->peer)
        zmsg_addmem (zmsg, self->peer, self->peer_size);
    zmsg_addmem (zmsg, header, sizeof (header));
    zmsg_addmem (zmsg, buf.data, buf.size);
    s_buf_free (&buf);
    for (size_t i = 0; i < payloads.n; i++)
        if (payloads.v[i])
            zmsg_append (zmsg, &payloads.v[i]);
        else
            zmsg_addmem (zmsg, NULL, 0);
    s_out_free (&payloads);
    s_msg_free (self_p);  //  s_encode emptied every frame slot
    return zmsg;
}

int
arb_msg_put (arb_msg_t **self_p, arb_part_fn *put, void *arg)
{
    uint8_t header[ARB_HEADER_SIZE];
    s_buf_t buf;
    s_out_t payloads;
    s_encode (self_p, header, &buf, &payloads);
    int rc = put (arg, header, sizeof (header), true);
    if (rc == 0)
        rc = put (arg, buf.data, buf.size, payloads.n > 0);
    for (size_t i = 0; rc == 0 && i < payloads.n; i++)
        rc = put (arg, payloads.v[i] ? zframe_data (payloads.v[i]) : (const void *) "",
                  payloads.v[i] ? zframe_size (payloads.v[i]) : 0, i + 1 < payloads.n);
    s_buf_free (&buf);
    s_out_free (&payloads);
    s_msg_free (self_p);  //  s_encode emptied every frame slot
    return rc;
}

//  Sends the frames straight from the packed buffer, without a zmsg and
//  the zframes it would copy them into: a small frame goes inside
//  libzmq's message, with no allocation at all. A ROUTER refuses a message
//  (EHOSTUNREACH, EAGAIN) at its first frame, before any of it is queued.
int
arb_msg_send (arb_msg_t **self_p, void *sock)
{
    return arb_msg_send_when (self_p, sock, NULL, NULL);
}

//  The first frame: the peer's routing id, or the header. With wait, it
//  is offered without blocking until the socket takes it or wait gives up.
static int
s_send_first (void *handle, const void *data, size_t size, int (*wait) (void *arg), void *arg)
{
    int rc;
    while ((rc = zmq_send (handle, data, size, ZMQ_SNDMORE | (wait ? ZMQ_DONTWAIT : 0))) < 0
           && zmq_errno () == EAGAIN && wait)
        if (wait (arg) != 0) {
            errno = EAGAIN;
            return -1;
        }
    return rc;
}

int
arb_msg_send_when (arb_msg_t **self_p, void *sock, int (*wait) (void *arg), void *arg)
{
    uint8_t header[ARB_HEADER_SIZE];
    s_buf_t buf;
    s_out_t payloads;
    arb_msg_t *self = s_encode (self_p, header, &buf, &payloads);
    void *handle = zsock_resolve (sock);
    int more = payloads.n ? ZMQ_SNDMORE : 0;
    int rc = 0;
    if (self->peer)
        rc = s_send_first (handle, self->peer, self->peer_size, wait, arg);
    else
        rc = s_send_first (handle, header, sizeof (header), wait, arg);
    if (rc >= 0 && self->peer)
        rc = zmq_send (handle, header, sizeof (header), ZMQ_SNDMORE);
    if (rc >= 0)
        rc = zmq_send (handle, buf.data, buf.size, more);
    for (size_t i = 0; rc >= 0 && i < payloads.n; i++)
        rc = payloads.v[i]
                 ? zframe_send (&payloads.v[i], sock, i + 1 < payloads.n ? ZFRAME_MORE : 0)
                 : zmq_send (handle, "", 0, i + 1 < payloads.n ? ZMQ_SNDMORE : 0);
    int error = errno;
    s_buf_free (&buf);
    s_out_free (&payloads);  //  a frame the failed send left is ours
    s_msg_free (self_p);     //  s_encode emptied every frame slot
    errno = error;           //  the caller may want to know why
    return rc >= 0 ? 0 : -1;
}
