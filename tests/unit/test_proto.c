/*  test_proto.c — the codec: every message type round-trips, every kind of
    malformed input is refused with a reason, and nothing leaks.

    The round trip is generic: it fills every field of every body (and of
    every nested record) with values chosen to hit the encoding edges
    (zero-width strings are absent, so non-empty ones; the largest
    integers; a NUL inside binary data), encodes, decodes and compares
    field by field through the same schema the codec uses.
*/

#include "arb_bytes.h"
#include "arb_proto.h"
#include "arb_schema.h"

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sys/socket.h>

//  ---------------------------------------------------------------------
//  Generic filling and comparison.

static void s_fill (arb_msg_t *msg, const arb_schema_t *schema, void *rec, int seed, int depth);

static void
s_fill_field (arb_msg_t *msg, const arb_field_t *f, char *at, int seed, int depth)
{
    char text[64];
    switch (f->type) {
        case ARB_F_U64:
            *(uint64_t *) at = UINT64_MAX - (uint64_t) seed;
            break;
        case ARB_F_U32:
            *(uint32_t *) at = UINT32_MAX - (uint32_t) seed;
            break;
        case ARB_F_I32:
            *(int32_t *) at = INT32_MIN + seed;
            break;
        case ARB_F_BOOL:
            *(bool *) at = true;
            break;
        case ARB_F_STR:
        case ARB_F_NAME:
            snprintf (text, sizeof (text), "%s-%d-\xc3\xa9", f->key, seed);
            *(const char **) at = arb_msg_strdup (msg, text);
            break;
        case ARB_F_BIN: {
            arb_bin_t *bin = (arb_bin_t *) at;
            uint8_t *data = (uint8_t *) arb_msg_alloc (msg, 5);
            data[0] = 0;
            data[1] = (uint8_t) seed;
            data[2] = 0xff;
            data[3] = 0xc1;  //  never a valid msgpack byte: binary is opaque
            data[4] = 0;
            bin->data = data;
            bin->size = 5;
            break;
        }
        case ARB_F_STRS: {
            arb_strs_t *strs = (arb_strs_t *) at;
            strs->v = (const char **) arb_msg_alloc (msg, 3 * sizeof (char *));
            strs->n = 3;
            strs->v[0] = "a";
            strs->v[1] = arb_msg_strdup (msg, f->key);
            strs->v[2] = "";
            break;
        }
        case ARB_F_IDS: {
            arb_ids_t *ids = (arb_ids_t *) at;
            ids->n = f->max < 3 ? f->max : 3;
            ids->v = (uint64_t *) arb_msg_alloc (msg, 3 * sizeof (uint64_t));
            uint64_t values[3] = {0, 127, UINT64_MAX};
            memcpy (ids->v, values, ids->n * sizeof (uint64_t));
            break;
        }
        case ARB_F_LIST: {
            size_t n = depth < 2 ? 2 : 0;
            char *items = (char *) arb_msg_alloc (msg, n * f->sub->size);
            for (size_t k = 0; k < n; k++)
                s_fill (msg, f->sub, items + k * f->sub->size, seed * 10 + (int) k + 1, depth + 1);
            memcpy (at, &items, sizeof (items));
            memcpy (at + sizeof (items), &n, sizeof (n));
            break;
        }
        case ARB_F_FRAME:
            //  odd seeds get an empty frame, which must stay a (0-byte) frame
            snprintf (text, sizeof (text), "payload-%d", seed);
            *(zframe_t **) at = seed % 2 ? zframe_new_empty () : zframe_new (text, strlen (text));
            break;
    }
}

static void
s_fill (arb_msg_t *msg, const arb_schema_t *schema, void *rec, int seed, int depth)
{
    for (size_t i = 0; i < schema->nfields; i++)
        s_fill_field (msg, &schema->fields[i], (char *) rec + schema->fields[i].offset,
                      seed + (int) i, depth);
}

static void
s_compare (const arb_schema_t *schema, void *a, void *b)
{
    for (size_t i = 0; i < schema->nfields; i++) {
        const arb_field_t *f = &schema->fields[i];
        char *x = (char *) a + f->offset;
        char *y = (char *) b + f->offset;
        switch (f->type) {
            case ARB_F_U64:
                assert_true (*(uint64_t *) x == *(uint64_t *) y);
                break;
            case ARB_F_U32:
                assert_int_equal (*(uint32_t *) x, *(uint32_t *) y);
                break;
            case ARB_F_I32:
                assert_int_equal (*(int32_t *) x, *(int32_t *) y);
                break;
            case ARB_F_BOOL:
                assert_int_equal (*(bool *) x, *(bool *) y);
                break;
            case ARB_F_STR:
            case ARB_F_NAME:
                assert_string_equal (*(const char **) x, *(const char **) y);
                break;
            case ARB_F_BIN:
                assert_int_equal (((arb_bin_t *) x)->size, ((arb_bin_t *) y)->size);
                assert_memory_equal (((arb_bin_t *) x)->data, ((arb_bin_t *) y)->data,
                                     ((arb_bin_t *) x)->size);
                break;
            case ARB_F_STRS: {
                arb_strs_t *sx = (arb_strs_t *) x, *sy = (arb_strs_t *) y;
                assert_int_equal (sx->n, sy->n);
                for (size_t k = 0; k < sx->n; k++)
                    assert_string_equal (sx->v[k], sy->v[k]);
                break;
            }
            case ARB_F_IDS: {
                arb_ids_t *ix = (arb_ids_t *) x, *iy = (arb_ids_t *) y;
                assert_int_equal (ix->n, iy->n);
                for (size_t k = 0; k < ix->n; k++)
                    assert_true (ix->v[k] == iy->v[k]);
                break;
            }
            case ARB_F_LIST: {
                char *ix, *iy;
                size_t nx, ny;
                memcpy (&ix, x, sizeof (ix));
                memcpy (&iy, y, sizeof (iy));
                memcpy (&nx, x + sizeof (ix), sizeof (nx));
                memcpy (&ny, y + sizeof (iy), sizeof (ny));
                assert_int_equal (nx, ny);
                for (size_t k = 0; k < nx; k++)
                    s_compare (f->sub, ix + k * f->sub->size, iy + k * f->sub->size);
                break;
            }
            case ARB_F_FRAME: {
                zframe_t *fx = *(zframe_t **) x, *fy = *(zframe_t **) y;
                assert_non_null (fx);
                assert_non_null (fy);
                assert_true (zframe_eq (fx, fy));
                break;
            }
        }
    }
}

static void
test_round_trip_every_type (void **state)
{
    (void) state;
    int types = 0;
    for (int type = 1; type < ARB_MSG_TYPE_MAX; type++) {
        const arb_schema_t *schema = arb_schema_of (type);
        if (!schema)
            continue;
        types++;
        for (int routed = 0; routed < 2; routed++) {
            arb_msg_t *msg = arb_msg_new ((arb_msg_type_t) type, 0xdeadbeef);
            s_fill (msg, schema, arb_msg_body (msg), type, 0);
            if (routed) {
                zframe_t *rid = zframe_new ("\x00peer", 5);
                arb_msg_set_routing_id (msg, rid);
                zframe_destroy (&rid);
            }
            //  the same filling again, to compare with (encoding consumes msg)
            arb_msg_t *expect = arb_msg_new ((arb_msg_type_t) type, 0);
            s_fill (expect, schema, arb_msg_body (expect), type, 0);

            zmsg_t *zmsg = arb_msg_encode (&msg);
            assert_null (msg);
            arb_msg_t *back = NULL;
            int rc = arb_msg_decode (&zmsg, routed, NULL, &back);
            if (rc != 0)
                fail_msg ("%s: %s", arb_msg_type_name (type), arb_msg_decode_error (back));
            assert_null (zmsg);
            assert_int_equal (arb_msg_type (back), type);
            assert_int_equal (arb_msg_reqid (back), 0xdeadbeef);
            if (routed) {
                assert_non_null (arb_msg_routing_id (back));
                assert_int_equal (zframe_size (arb_msg_routing_id (back)), 5);
            }
            s_compare (schema, arb_msg_body (expect), arb_msg_body (back));
            arb_msg_destroy (&expect);
            arb_msg_destroy (&back);
        }
    }
    assert_true (types >= 36);
}

//  An empty body and the zero defaults survive too: absent fields decode as zero.
static void
test_defaults_are_absent (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 7);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *task = (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*task), 1);
    task->name = "add";
    task->payload = zframe_new ("x", 1);
    zmsg_t *zmsg = arb_msg_encode (&msg);
    //  header, body, one payload
    assert_int_equal (zmsg_size (zmsg), 3);
    zmsg_first (zmsg);
    zframe_t *body_frame = zmsg_next (zmsg);
    //  {"tasks": [{"name": "add"}]}: nothing else on the wire
    assert_int_equal (zframe_size (body_frame), 1 + 6 + 1 + 1 + 5 + 4);
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
    arb_task_spec_t *got = &arb_msg_submit (back)->tasks.v[0];
    assert_string_equal (got->name, "add");
    assert_null (got->queue);
    assert_int_equal (got->priority, 0);
    assert_int_equal (got->after.n, 0);
    assert_int_equal (zframe_size (got->payload), 1);
    arb_msg_destroy (&back);
}

//  A record's keys go on the wire in its schema's order, the fields that
//  are absent left out: set fields far apart in a task spec, and read the
//  body back with msgpack-c itself (the decoders accept any order).
static void
test_keys_go_in_schema_order (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 7);
    arb_submit_body_t *body = arb_msg_submit (msg);
    body->watch = true;
    arb_task_spec_t *task = (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*task), 1);
    task->unwatched = true;
    task->args = (arb_bin_t){(const uint8_t *) "a", 1};
    task->delay_ms = 5;
    task->name = "add";
    task->queue = "q";
    task->ref = "r";
    task->payload = zframe_new ("x", 1);
    zmsg_t *zmsg = arb_msg_encode (&msg);
    zmsg_first (zmsg);
    zframe_t *body_frame = zmsg_next (zmsg);

    msgpack_unpacked top;
    msgpack_unpacked_init (&top);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&top, (const char *) zframe_data (body_frame),
                                           zframe_size (body_frame), &off),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object_map outer = top.data.via.map;
    assert_int_equal (outer.size, 2);  //  watch, then tasks
    assert_memory_equal (outer.ptr[0].key.via.str.ptr, "watch", 5);
    assert_memory_equal (outer.ptr[1].key.via.str.ptr, "tasks", 5);
    msgpack_object_map spec = outer.ptr[1].val.via.array.ptr[0].via.map;
    const char *want[] = {"queue", "name", "delay_ms", "ref", "args", "unwatched"};
    assert_int_equal (spec.size, 6);
    for (uint32_t i = 0; i < spec.size; i++) {
        assert_int_equal (spec.ptr[i].key.via.str.size, strlen (want[i]));
        assert_memory_equal (spec.ptr[i].key.via.str.ptr, want[i], strlen (want[i]));
    }
    msgpack_unpacked_destroy (&top);
    zmsg_destroy (&zmsg);
}

//  A bin copied into a message is the message's: the source may change or
//  go; nothing is copied for none.
static void
test_bindup_copies (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_PING, 1);
    char source[] = "headers";
    arb_bin_t bin = arb_msg_bindup (msg, source, 7);
    memset (source, 'x', sizeof (source));
    assert_int_equal (bin.size, 7);
    assert_memory_equal (bin.data, "headers", 7);
    arb_bin_t none = arb_msg_bindup (msg, source, 0);
    assert_null (none.data);
    assert_int_equal (none.size, 0);
    arb_msg_destroy (&msg);
}

static void
test_grow_keeps_records (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMITTED, 1);
    arb_submitted_body_t *body = arb_msg_submitted (msg);
    for (uint64_t i = 1; i <= 1000; i++) {
        arb_submitted_task_t *t =
            (arb_submitted_task_t *) arb_msg_grow (msg, &body->tasks, sizeof (*t), 1);
        assert_int_equal (t->id, 0);
        t->id = i;
    }
    assert_int_equal (body->tasks.n, 1000);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal (body->tasks.v[i].id, i + 1);
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
    assert_int_equal (arb_msg_submitted (back)->tasks.n, 1000);
    assert_int_equal (arb_msg_submitted (back)->tasks.v[999].id, 1000);
    arb_msg_destroy (&back);
}

//  The message's arena: its first bytes, then chunks, one bigger than a
//  chunk too; each allocation zeroed, aligned, and left alone by the rest.
static void
test_arena_keeps_what_it_gave (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMITTED, 1);
    const size_t sizes[] = {0, 1, 7, 100, 300, 600, 5000, 33, 960, 961, 2, 4096};
    const size_t count = sizeof (sizes) / sizeof (sizes[0]);
    uint8_t *given[sizeof (sizes) / sizeof (sizes[0])];
    for (size_t i = 0; i < count; i++) {
        given[i] = (uint8_t *) arb_msg_alloc (msg, sizes[i]);
        assert_non_null (given[i]);
        assert_int_equal ((uintptr_t) given[i] % _Alignof(max_align_t), 0);
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal (given[i][k], 0);
        memset (given[i], (int) (i + 1), sizes[i]);
    }
    for (size_t i = 0; i < count; i++)
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal (given[i][k], i + 1);
    arb_msg_destroy (&msg);
    assert_null (msg);
}

//  A DISPATCH of nine tasks, each with its payload frame: more frames
//  than the decoder keeps without an allocation, each task its own.
static void
test_many_frames_decode_in_order (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_DISPATCH, 0);
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    for (uint64_t i = 1; i <= 9; i++) {
        arb_dispatch_task_t *t =
            (arb_dispatch_task_t *) arb_msg_grow (msg, &body->tasks, sizeof (*t), 1);
        t->id = i;
        t->queue = "q";
        t->name = "n";
        char text[8];
        snprintf (text, sizeof (text), "p%" PRIu64, i);
        t->payload = zframe_new (text, strlen (text));
    }
    zmsg_t *zmsg = arb_msg_encode (&msg);
    assert_int_equal (zmsg_size (zmsg), 2 + 9);
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
    arb_dispatch_body_t *got = arb_msg_dispatch (back);
    assert_int_equal (got->tasks.n, 9);
    for (uint64_t i = 1; i <= 9; i++) {
        char text[8];
        snprintf (text, sizeof (text), "p%" PRIu64, i);
        assert_int_equal (got->tasks.v[i - 1].id, i);
        assert_true (zframe_streq (got->tasks.v[i - 1].payload, text));
    }
    arb_msg_destroy (&back);
}

//  ---------------------------------------------------------------------
//  Malformed input. Each case builds raw frames by hand.

static zframe_t *
s_header (uint8_t version, uint8_t type, uint32_t reqid)
{
    uint8_t h[8] = {'A',
                    'R',
                    version,
                    type,
                    (uint8_t) (reqid >> 24),
                    (uint8_t) (reqid >> 16),
                    (uint8_t) (reqid >> 8),
                    (uint8_t) reqid};
    return zframe_new (h, 8);
}

//  A msgpack body written with the packer through a callback.
typedef void (s_pack_fn) (msgpack_packer *pk);

static zframe_t *
s_body (s_pack_fn *fn)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    fn (&pk);
    zframe_t *frame = zframe_new (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    return frame;
}

static void
s_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str (pk, strlen (key));
    msgpack_pack_str_body (pk, key, strlen (key));
}

//  Decodes [header, body, frames...] and expects refusal with a reason
//  containing `want` and the given code. Returns nothing; asserts.
static void
s_expect_refused (zframe_t *header, zframe_t *body, int nframes, arb_err_t code, const char *want)
{
    zmsg_t *zmsg = zmsg_new ();
    if (header)
        zmsg_append (zmsg, &header);
    if (body)
        zmsg_append (zmsg, &body);
    for (int i = 0; i < nframes; i++)
        zmsg_addstr (zmsg, "p");
    arb_msg_t *msg = NULL;
    int rc = arb_msg_decode (&zmsg, false, NULL, &msg);
    assert_int_equal (rc, -2);
    assert_non_null (msg);
    const char *reason = arb_msg_decode_error (msg);
    assert_non_null (reason);
    if (!strstr (reason, want))
        fail_msg ("reason '%s' does not contain '%s'", reason, want);
    assert_int_equal (arb_msg_decode_code (msg), code);
    arb_msg_destroy (&msg);
}

static void
s_one_task (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 1);
    s_key (pk, "name");
    s_key (pk, "add");
}

static void
test_refuses_bad_headers (void **state)
{
    (void) state;
    s_expect_refused (NULL, NULL, 0, ARB_ERR_BAD_REQUEST, "bad header");
    s_expect_refused (zframe_new ("ARxx", 4), s_body (s_one_task), 1, ARB_ERR_BAD_REQUEST,
                      "bad header");
    s_expect_refused (zframe_new ("XR\x01\x04\0\0\0\x01", 8), s_body (s_one_task), 1,
                      ARB_ERR_BAD_REQUEST, "bad header");
    s_expect_refused (s_header (2, ARB_MSG_SUBMIT, 1), s_body (s_one_task), 1, ARB_ERR_VERSION,
                      "version 2");
    s_expect_refused (s_header (1, 99, 1), s_body (s_one_task), 1, ARB_ERR_BAD_REQUEST,
                      "unknown message type 99");
    s_expect_refused (s_header (1, 0, 1), s_body (s_one_task), 1, ARB_ERR_BAD_REQUEST,
                      "unknown message type 0");
    s_expect_refused (s_header (1, ARB_MSG_SUBMIT, 1), NULL, 0, ARB_ERR_BAD_REQUEST,
                      "without a body");
}

//  Whether a record, or one in its lists, has a frame field; and that its
//  schema says where (frame_at, or list_at and list_sub: the codec walks
//  only those to free and send frames). Checks every schema on the way.
static bool
s_holds_frames (const arb_schema_t *schema)
{
    //  the fields that hold frames: FRAME ones, and lists of records that do
    size_t frames = 0, lists = 0, frame_at = 0, list_at = 0;
    const arb_schema_t *list_sub = NULL;
    for (size_t i = 0; i < schema->nfields; i++) {
        const arb_field_t *f = &schema->fields[i];
        if (f->type == ARB_F_FRAME) {
            frames++;
            frame_at = f->offset + 1;
        }
        else if (f->type == ARB_F_LIST && s_holds_frames (f->sub)) {
            lists++;
            list_at = f->offset + 1;
            list_sub = f->sub;
        }
    }
    if (frames + lists > 1)
        fail_msg ("schema %s has %zu fields with frames: the walk finds one", schema->name,
                  frames + lists);
    if (schema->frame_at != frame_at || schema->list_at != list_at || schema->list_sub != list_sub)
        fail_msg ("schema %s says frames at %zu, in list at %zu; they are at %zu, in %zu",
                  schema->name, schema->frame_at, schema->list_at, frame_at, list_at);
    return frames + lists > 0;
}

static void
test_schemas_say_which_hold_frames (void **state)
{
    (void) state;
    size_t framed = 0;
    for (int type = 1; type < ARB_MSG_TYPE_MAX; type++) {
        const arb_schema_t *schema = arb_schema_of (type);
        if (schema && s_holds_frames (schema))
            framed++;
    }
    //  SUBMIT, DONE, DISPATCH, PEEK's reply, SCHEDULE and its reply,
    //  RESULT, EMIT
    assert_int_equal (framed, 8);
    //  and a message of one frees its frames: the sanitized build finds a
    //  leak if the walk skipped them
    arb_msg_t *msg = arb_msg_new (ARB_MSG_RESULT, 1);
    arb_result_body_t *body = arb_msg_result (msg);
    arb_result_item_t *item =
        (arb_result_item_t *) arb_msg_grow (msg, &body->results, sizeof (*item), 1);
    item->result = zframe_new ("kept", 4);
    arb_msg_destroy (&msg);
}

//  The routing id lives in the message as bytes; the frame the older
//  accessor gives is made from them, and setting a message's own frame
//  back keeps the same bytes.
static void
test_routing_id_bytes_and_frame_agree (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_PING, 7);
    size_t size = 99;
    assert_null (arb_msg_peer (msg, &size));
    assert_int_equal (size, 0);
    assert_null (arb_msg_routing_id (msg));

    arb_msg_set_peer (msg, (const uint8_t *) "\x00peer", 5);
    const uint8_t *peer = arb_msg_peer (msg, &size);
    assert_int_equal (size, 5);
    assert_memory_equal (peer, "\x00peer", 5);
    zframe_t *frame = arb_msg_routing_id (msg);
    assert_int_equal (zframe_size (frame), 5);
    assert_memory_equal (zframe_data (frame), "\x00peer", 5);
    assert_ptr_equal (arb_msg_routing_id (msg), frame);  //  made once

    arb_msg_set_routing_id (msg, frame);  //  its own: the bytes stay
    peer = arb_msg_peer (msg, &size);
    assert_int_equal (size, 5);
    assert_memory_equal (peer, "\x00peer", 5);

    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    const uint8_t *back = arb_msg_peer (reply, &size);
    assert_int_equal (size, 5);
    assert_ptr_not_equal (back, peer);  //  a copy in the reply
    assert_memory_equal (back, "\x00peer", 5);
    zmsg_t *zmsg = arb_msg_encode (&reply);
    assert_true (zframe_size (zmsg_first (zmsg)) == 5);
    assert_memory_equal (zframe_data (zmsg_first (zmsg)), "\x00peer", 5);
    zmsg_destroy (&zmsg);

    arb_msg_set_peer (msg, NULL, 0);
    assert_null (arb_msg_peer (msg, &size));
    assert_null (arb_msg_routing_id (msg));
    arb_msg_destroy (&msg);
}

static void
test_refused_reply_keeps_request_id (void **state)
{
    (void) state;
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addmem (zmsg, "peer", 4);
    zframe_t *h = s_header (1, ARB_MSG_SUBMIT, 4242);
    zmsg_append (zmsg, &h);
    zmsg_addmem (zmsg, "\xc1", 1);
    arb_msg_t *msg;
    assert_int_equal (arb_msg_decode (&zmsg, true, NULL, &msg), -2);
    arb_msg_t *reply =
        arb_msg_new_error (msg, arb_msg_decode_code (msg), "%s", arb_msg_decode_error (msg));
    assert_int_equal (arb_msg_reqid (reply), 4242);
    assert_true (zframe_streq (arb_msg_routing_id (reply), "peer"));
    arb_msg_destroy (&reply);

    //  a reason quoting bytes that are not UTF-8, or cut in the middle of
    //  a character at the limit, still goes out as UTF-8
    reply = arb_msg_new_error (msg, ARB_ERR_INVALID, "op: '%s' is not",
                               "\xff\xfe"
                               "ab");
    assert_string_equal (arb_msg_error (reply)->reason, "op: '??ab' is not");
    arb_msg_destroy (&reply);
    char euros[ARB_TEXT_MAX + 8] = "";
    for (size_t i = 0; i + 3 < sizeof (euros); i += 3)
        strcat (euros, "\xe2\x82\xac");
    reply = arb_msg_new_error (msg, ARB_ERR_INVALID, "x%s", euros);
    const char *reason = arb_msg_error (reply)->reason;
    size_t len = strlen (reason);
    assert_true (len < ARB_TEXT_MAX && len % 3 == 1);  //  "x", then whole euros only
    char why[64];
    assert_int_equal (arb_name_check (reason, len, why, sizeof (why)), 0);
    arb_msg_destroy (&reply);
    arb_msg_destroy (&msg);

    //  no routing id at all: nothing to answer
    zmsg = zmsg_new ();
    zmsg_addmem (zmsg, "", 0);
    assert_int_equal (arb_msg_decode (&zmsg, true, NULL, &msg), -2);
    assert_null (msg);
}

static void
s_array_body (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 0);
}
static void
s_trailing (msgpack_packer *pk)
{
    s_one_task (pk);
    msgpack_pack_nil (pk);
}
static void
s_unknown_key (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks\x01zz");
    msgpack_pack_array (pk, 0);
}
static void
s_dup_key (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_key (pk, "watch");
    msgpack_pack_true (pk);
    s_key (pk, "watch");
    msgpack_pack_true (pk);
}
static void
s_missing_tasks (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "watch");
    msgpack_pack_true (pk);
}
static void
s_missing_name (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 2);
    msgpack_pack_map (pk, 1);
    s_key (pk, "name");
    s_key (pk, "a");
    msgpack_pack_map (pk, 1);
    s_key (pk, "queue");
    s_key (pk, "q");
}
static void
s_wrong_type (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_key (pk, "name");
    s_key (pk, "a");
    s_key (pk, "priority");
    s_key (pk, "high");
}
static void
s_u32_overflow (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_key (pk, "name");
    s_key (pk, "a");
    s_key (pk, "retries");
    msgpack_pack_uint64 (pk, (uint64_t) UINT32_MAX + 1);
}
static void
s_negative_unsigned (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_key (pk, "name");
    s_key (pk, "a");
    s_key (pk, "delay_ms");
    msgpack_pack_int64 (pk, -5);
}
static void
s_i32_overflow (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_key (pk, "name");
    s_key (pk, "a");
    s_key (pk, "priority");
    msgpack_pack_int64 (pk, (int64_t) INT32_MIN - 1);
}
static void
s_long_name (msgpack_packer *pk)
{
    char name[ARB_NAME_MAX + 1];
    memset (name, 'n', sizeof (name));
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 1);
    s_key (pk, "name");
    msgpack_pack_str (pk, sizeof (name));
    msgpack_pack_str_body (pk, name, sizeof (name));
}
static void
s_nul_name (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 1);
    s_key (pk, "name");
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "a\0b", 3);
}
//  {"tasks": [{"name": name, "endpoints": ["ok", endpoint]}]}
static void
s_named_task (msgpack_packer *pk, const char *name, const char *endpoint)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_key (pk, "name");
    s_key (pk, name);
    s_key (pk, "endpoints");
    msgpack_pack_array (pk, 2);
    s_key (pk, "ok");
    s_key (pk, endpoint);
}
static void
s_newline_name (msgpack_packer *pk)
{
    s_named_task (pk, "a\nb", "w1");
}
static void
s_c1_name (msgpack_packer *pk)
{
    s_named_task (pk, "a\xc2\x85", "w1");
}
static void
s_bad_utf8_name (msgpack_packer *pk)
{
    s_named_task (pk, "caf\xe9", "w1");
}
static void
s_del_endpoint (msgpack_packer *pk)
{
    s_named_task (pk, "a", "w\x7f");
}
static void
s_nil_value (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "tasks");
    msgpack_pack_nil (pk);
}
static void
s_too_many_ids (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "ids");
    msgpack_pack_array (pk, ARB_IDS_MAX + 1);
    for (int i = 0; i <= ARB_IDS_MAX; i++)
        msgpack_pack_uint64 (pk, 1);
}

static void
test_refuses_bad_bodies (void **state)
{
    (void) state;
#define REFUSE(fn, nframes, code, want) \
    s_expect_refused (s_header (1, ARB_MSG_SUBMIT, 1), s_body (fn), nframes, code, want)
    REFUSE (s_array_body, 0, ARB_ERR_BAD_REQUEST, "expected map, got array");
    REFUSE (s_trailing, 1, ARB_ERR_BAD_REQUEST, "1 bytes after the body");
    REFUSE (s_unknown_key, 0, ARB_ERR_BAD_REQUEST, "unknown key 'tasks.zz'");
    REFUSE (s_dup_key, 0, ARB_ERR_BAD_REQUEST, "watch: key given twice");
    REFUSE (s_missing_tasks, 0, ARB_ERR_BAD_REQUEST, "missing required key 'tasks'");
    REFUSE (s_missing_name, 2, ARB_ERR_BAD_REQUEST, "tasks[1]: missing required key 'name'");
    REFUSE (s_wrong_type, 1, ARB_ERR_BAD_REQUEST,
            "tasks[0].priority: expected integer, got string");
    REFUSE (s_u32_overflow, 1, ARB_ERR_BAD_REQUEST, "tasks[0].retries: number out of range");
    REFUSE (s_negative_unsigned, 1, ARB_ERR_BAD_REQUEST, "tasks[0].delay_ms: number out of range");
    REFUSE (s_i32_overflow, 1, ARB_ERR_BAD_REQUEST, "tasks[0].priority: number out of range");
    REFUSE (s_long_name, 1, ARB_ERR_TOO_LARGE, "tasks[0].name: string of 201 bytes");
    REFUSE (s_nul_name, 1, ARB_ERR_BAD_REQUEST, "tasks[0].name: string holds a NUL byte");
    REFUSE (s_nil_value, 0, ARB_ERR_BAD_REQUEST, "tasks: expected array, got nil");
    //  names are printable UTF-8
    REFUSE (s_newline_name, 1, ARB_ERR_BAD_REQUEST,
            "tasks[0].name: control character 0x0a at byte 2 (names are printable UTF-8)");
    REFUSE (s_c1_name, 1, ARB_ERR_BAD_REQUEST, "tasks[0].name: control character U+0085 at byte 2");
    REFUSE (s_bad_utf8_name, 1, ARB_ERR_BAD_REQUEST, "tasks[0].name: invalid UTF-8 at byte 4");
    REFUSE (s_del_endpoint, 1, ARB_ERR_BAD_REQUEST,
            "tasks[0].endpoints[1]: control character 0x7f at byte 2");
    //  frames: one task owns exactly one frame
    REFUSE (s_one_task, 0, ARB_ERR_BAD_REQUEST, "tasks[0]: its frame is missing");
    REFUSE (s_one_task, 2, ARB_ERR_BAD_REQUEST, "1 frames more than");
#undef REFUSE
    s_expect_refused (s_header (1, ARB_MSG_STATUS, 1), s_body (s_too_many_ids), 0,
                      ARB_ERR_TOO_LARGE, "ids: 100001 elements, over the limit");
}

static void
s_status_payload_text (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_key (pk, "ids");
    msgpack_pack_array (pk, 1);
    msgpack_pack_uint64 (pk, 1);
    s_key (pk, "with_payload");
    s_key (pk, "yes");
}

//  A STATUS asks for payloads with with_payload, and the reply's task_info
//  carries one in payload; a STATUS that does not ask is on the wire what
//  it was before the field ({"ids": [7]}), so an old client's bytes and
//  its reply do not change.
static void
test_status_payload_round_trip (void **state)
{
    (void) state;
    for (int ask = 0; ask < 2; ask++) {
        arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS, 3);
        arb_status_body_t *body = arb_msg_status (msg);
        body->ids.v = (uint64_t *) arb_msg_alloc (msg, sizeof (uint64_t));
        body->ids.v[0] = 7;
        body->ids.n = 1;
        body->with_payload = ask;
        zmsg_t *zmsg = arb_msg_encode (&msg);
        assert_int_equal (zmsg_size (zmsg), 2);
        zmsg_first (zmsg);
        zframe_t *body_frame = zmsg_next (zmsg);
        //  {"ids": [7]}, then "with_payload": true
        assert_int_equal (zframe_size (body_frame), 1 + 4 + 2 + (ask ? 13 + 1 : 0));
        arb_msg_t *back;
        assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
        assert_int_equal (arb_msg_status (back)->ids.n, 1);
        assert_int_equal (arb_msg_status (back)->ids.v[0], 7);
        assert_int_equal (arb_msg_status (back)->with_payload, ask);
        arb_msg_destroy (&back);
    }

    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 3);
    arb_status_reply_body_t *body = arb_msg_status_reply (msg);
    arb_task_info_t *infos =
        (arb_task_info_t *) arb_msg_grow (msg, &body->tasks, sizeof (*infos), 2);
    infos[0].id = 7;
    infos[0].found = true;
    infos[0].result = arb_msg_bindup (msg, "out", 3);
    infos[0].payload = arb_msg_bindup (msg, "{\"k\":[1,\"\u00e9\"]}\0x", 16);
    infos[1].id = 8;
    infos[1].found = true;
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
    arb_status_reply_body_t *got = arb_msg_status_reply (back);
    assert_int_equal (got->tasks.n, 2);
    assert_int_equal (got->tasks.v[0].payload.size, 16);
    assert_memory_equal (got->tasks.v[0].payload.data, "{\"k\":[1,\"\u00e9\"]}\0x", 16);
    assert_int_equal (got->tasks.v[0].result.size, 3);
    //  a task without a payload carries none
    assert_int_equal (got->tasks.v[1].payload.size, 0);
    arb_msg_destroy (&back);

    //  the field is typed as the others are
    s_expect_refused (s_header (1, ARB_MSG_STATUS, 1), s_body (s_status_payload_text), 0,
                      ARB_ERR_BAD_REQUEST, "with_payload: expected boolean, got string");
}

//  Counts that claim more elements than there are bytes are refused
//  before anything is allocated for them.
static void
test_refuses_lying_counts (void **state)
{
    (void) state;
    //  {"tasks": array32 with 2^31 elements}, and nothing after it
    const uint8_t lie[] = {0x81, 0xa5, 't', 'a', 's', 'k', 's', 0xdd, 0x80, 0, 0, 0};
    s_expect_refused (s_header (1, ARB_MSG_SUBMIT, 1), zframe_new (lie, sizeof (lie)), 0,
                      ARB_ERR_BAD_REQUEST, "array of 2147483648 elements in 0 bytes");
    const uint8_t map_lie[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    s_expect_refused (s_header (1, ARB_MSG_SUBMIT, 1), zframe_new (map_lie, sizeof (map_lie)), 0,
                      ARB_ERR_BAD_REQUEST, "map of 4294967295 elements");
    const uint8_t str_lie[] = {0x81, 0xdb, 0x7f, 0xff, 0xff, 0xff};
    s_expect_refused (s_header (1, ARB_MSG_SUBMIT, 1), zframe_new (str_lie, sizeof (str_lie)), 0,
                      ARB_ERR_BAD_REQUEST, "string truncated");
}

//  Every prefix of a valid message is refused cleanly, never read past.
static void
test_refuses_every_truncation (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_STATUS_REPLY, 3);
    s_fill (msg, arb_schema_of (ARB_MSG_STATUS_REPLY), arb_msg_body (msg), 5, 0);
    zmsg_t *zmsg = arb_msg_encode (&msg);
    zframe_t *header = zmsg_pop (zmsg);
    zframe_t *body = zmsg_pop (zmsg);
    for (size_t cut = 0; cut < zframe_size (body); cut++) {
        zmsg_t *part = zmsg_new ();
        zmsg_addmem (part, zframe_data (header), zframe_size (header));
        zmsg_addmem (part, zframe_data (body), cut);
        arb_msg_t *back = NULL;
        assert_int_equal (arb_msg_decode (&part, false, NULL, &back), -2);
        assert_non_null (arb_msg_decode_error (back));
        arb_msg_destroy (&back);
    }
    zframe_destroy (&header);
    zframe_destroy (&body);
    zmsg_destroy (&zmsg);
}

static void
test_refuses_oversized_payload (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, 9);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *tasks =
        (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*tasks), 2);
    tasks[0].name = "small";
    tasks[0].payload = zframe_new ("0123456789", 10);
    tasks[1].name = "big";
    char big[1001];
    memset (big, 'x', sizeof (big));
    tasks[1].payload = zframe_new (big, sizeof (big));
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_limits_t limits = {.max_frame = 1000};
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, &limits, &back), -2);
    assert_int_equal (arb_msg_decode_code (back), ARB_ERR_TOO_LARGE);
    assert_non_null (strstr (arb_msg_decode_error (back),
                             "tasks[1]: frame of 1001 bytes, over the 1000-byte limit"));
    arb_msg_destroy (&back);
}

//  A RESULT's frames have a limit of their own (the broker takes results
//  beyond its payload limit and fails their tasks, not the whole batch);
//  every other message keeps max_frame.
static void
test_result_frames_have_their_own_limit (void **state)
{
    (void) state;
    char big[1500];
    memset (big, 'x', sizeof (big));
    arb_limits_t limits = {.max_frame = 1000, .max_result = 2000};
    for (int type = 0; type < 2; type++) {
        arb_msg_t *msg;
        if (type == 0) {
            msg = arb_msg_new (ARB_MSG_RESULT, 4);
            arb_result_body_t *body = arb_msg_result (msg);
            arb_result_item_t *item =
                (arb_result_item_t *) arb_msg_grow (msg, &body->results, sizeof (*item), 1);
            item->id = 1;
            item->lease = 2;
            item->result = zframe_new (big, sizeof (big));
        }
        else {
            msg = arb_msg_new (ARB_MSG_SUBMIT, 4);
            arb_submit_body_t *body = arb_msg_submit (msg);
            arb_task_spec_t *task =
                (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*task), 1);
            task->name = "t";
            task->payload = zframe_new (big, sizeof (big));
        }
        zmsg_t *zmsg = arb_msg_encode (&msg);
        arb_msg_t *back;
        assert_int_equal (arb_msg_decode (&zmsg, false, &limits, &back), type == 0 ? 0 : -2);
        if (type == 0)
            assert_int_equal (zframe_size (arb_msg_result (back)->results.v[0].result), 1500);
        arb_msg_destroy (&back);
    }
}

static void
test_name_rule (void **state)
{
    (void) state;
    char why[80];
    const char *good[] = {"default",  "caf\xc3\xa9 au lait", "a b", "\xe2\x82\xac",
                          "\xc2\xa0", "\xf0\x9f\x98\x80",    ""};
    for (size_t i = 0; i < sizeof (good) / sizeof (good[0]); i++)
        assert_int_equal (arb_name_check (good[i], strlen (good[i]), why, sizeof (why)), 0);
    struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"a\tb", "control character 0x09 at byte 2"},
        {"\r", "control character 0x0d at byte 1"},
        {"x\x7f", "control character 0x7f at byte 2"},
        {"\xc2\x9f", "control character U+009F at byte 1"},
        {"ab\xff", "invalid UTF-8 at byte 3"},
        {"\xc0\xaf", "invalid UTF-8 at byte 1"},          //  overlong '/'
        {"\xed\xa0\x80", "invalid UTF-8 at byte 1"},      //  a surrogate
        {"\xe2\x82", "invalid UTF-8 at byte 1"},          //  cut short
        {"\xf4\x90\x80\x80", "invalid UTF-8 at byte 1"},  //  beyond U+10FFFF
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        assert_int_equal (arb_name_check (bad[i].text, strlen (bad[i].text), why, sizeof (why)),
                          -1);
        assert_string_equal (why, bad[i].why);
    }
    //  a NUL counts as a control character when it is within len
    assert_int_equal (arb_name_check ("a\0b", 3, why, sizeof (why)), -1);
}

//  The broker's own records may carry names from a journal older than the
//  rule: a reader takes them (to show them escaped), never refuses them.
static void
test_replies_keep_old_names (void **state)
{
    (void) state;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_LIST_REPLY, 5);
    arb_list_reply_body_t *body = arb_msg_list_reply (msg);
    arb_task_info_t *task = (arb_task_info_t *) arb_msg_grow (msg, &body->tasks, sizeof (*task), 1);
    task->id = 1;
    task->name = "two\nlines";
    zmsg_t *zmsg = arb_msg_encode (&msg);
    arb_msg_t *back;
    assert_int_equal (arb_msg_decode (&zmsg, false, NULL, &back), 0);
    assert_string_equal (arb_msg_list_reply (back)->tasks.v[0].name, "two\nlines");
    arb_msg_destroy (&back);
}

static void
test_names (void **state)
{
    (void) state;
    assert_string_equal (arb_msg_type_name (ARB_MSG_SUBMIT), "SUBMIT");
    assert_null (arb_msg_type_name (77));
    assert_string_equal (arb_state_name (ARB_STATE_READY), "ready");
    assert_int_equal (arb_state_parse ("cancelled"), ARB_STATE_CANCELLED);
    assert_int_equal (arb_state_parse ("nope"), -1);
    assert_true (arb_state_is_final (ARB_STATE_DEAD));
    assert_false (arb_state_is_final (ARB_STATE_RUNNING));
    assert_true (arb_state_is_resting (ARB_STATE_SKIPPED));
    assert_false (arb_state_is_resting (ARB_STATE_FAILED));
    assert_false (arb_state_is_resting (0));
    assert_false (arb_state_is_resting (ARB_STATE_MAX + 1));
}

//  arb_bytes_recv says whether a read drained the socket (less than its
//  room came: 2) or may have left more (the room filled: 1), so that the
//  loops that poll need not spend a receive to learn that nothing is left.
static void
test_bytes_recv_says_when_it_drained (void **state)
{
    (void) state;
    int fds[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    arb_bytes_t bytes = {0};
    assert_int_equal (arb_bytes_recv (&bytes, fds[0], 64), 0);
    assert_int_equal (write (fds[1], "0123456789", 10), 10);
    assert_int_equal (arb_bytes_recv (&bytes, fds[0], 64), 2);
    assert_int_equal (arb_bytes_size (&bytes), 10);
    //  more than the room: the first read fills it, the next drains it
    size_t room = bytes.cap - bytes.end;
    char *data = (char *) calloc (1, room + 5);
    assert_int_equal (write (fds[1], data, room + 5), (ssize_t) (room + 5));
    assert_int_equal (arb_bytes_recv (&bytes, fds[0], 1), 1);
    assert_int_equal (arb_bytes_size (&bytes), 10 + room);
    assert_int_equal (arb_bytes_recv (&bytes, fds[0], 1), 2);
    assert_int_equal (arb_bytes_size (&bytes), 10 + room + 5);
    //  the peer gone: -1 with errno 0
    close (fds[1]);
    assert_int_equal (arb_bytes_recv (&bytes, fds[0], 1), -1);
    assert_int_equal (errno, 0);
    close (fds[0]);
    free (data);
    arb_bytes_free (&bytes);
}

//  arb_msg_send_when: a socket that cannot take the message (a DEALER
//  with no peer at all) has the wait called instead of blocking, the
//  message offered again after each wait that says so, and given up, with
//  EAGAIN, when one does not; once the socket can take it, it goes whole.
static int
s_wait_thrice (void *arg)
{
    int *calls = (int *) arg;
    return ++*calls < 3 ? 0 : -1;
}

static int
s_wait_then_peer (void *arg)
{
    zsock_t **pair = (zsock_t **) arg;  //  {dealer, router}
    zsock_t *router = pair[1];
    if (!router) {
        router = zsock_new (ZMQ_ROUTER);
        assert_int_equal (zsock_bind (router, "inproc://test-send-when"), 0);
        assert_int_equal (zsock_connect (pair[0], "inproc://test-send-when"), 0);
        pair[1] = router;
    }
    return 0;
}

static void
test_send_when_waits_instead_of_blocking (void **state)
{
    (void) state;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (dealer, -1);  //  a plain send would block for ever
    int calls = 0;
    arb_msg_t *msg = arb_msg_new (ARB_MSG_PING, 1);
    assert_int_equal (arb_msg_send_when (&msg, dealer, s_wait_thrice, &calls), -1);
    assert_int_equal (errno, EAGAIN);
    assert_int_equal (calls, 3);
    assert_null (msg);
    //  a peer comes while it waits: the message goes, and arrives whole
    zsock_t *pair[2] = {dealer, NULL};
    msg = arb_msg_new (ARB_MSG_PING, 2);
    assert_int_equal (arb_msg_send_when (&msg, dealer, s_wait_then_peer, pair), 0);
    assert_non_null (pair[1]);
    zsock_set_rcvtimeo (pair[1], 2000);
    arb_msg_t *got = NULL;
    assert_int_equal (arb_msg_recv (zsock_resolve (pair[1]), NULL, &got), 0);
    assert_non_null (got);
    assert_int_equal (arb_msg_type (got), ARB_MSG_PING);
    assert_int_equal (arb_msg_reqid (got), 2);
    arb_msg_destroy (&got);
    zsock_destroy (&pair[1]);
    zsock_destroy (&dealer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trip_every_type),
        cmocka_unit_test (test_defaults_are_absent),
        cmocka_unit_test (test_status_payload_round_trip),
        cmocka_unit_test (test_keys_go_in_schema_order),
        cmocka_unit_test (test_bindup_copies),
        cmocka_unit_test (test_grow_keeps_records),
        cmocka_unit_test (test_arena_keeps_what_it_gave),
        cmocka_unit_test (test_routing_id_bytes_and_frame_agree),
        cmocka_unit_test (test_schemas_say_which_hold_frames),
        cmocka_unit_test (test_many_frames_decode_in_order),
        cmocka_unit_test (test_refuses_bad_headers),
        cmocka_unit_test (test_refused_reply_keeps_request_id),
        cmocka_unit_test (test_refuses_bad_bodies),
        cmocka_unit_test (test_refuses_lying_counts),
        cmocka_unit_test (test_refuses_every_truncation),
        cmocka_unit_test (test_refuses_oversized_payload),
        cmocka_unit_test (test_result_frames_have_their_own_limit),
        cmocka_unit_test (test_name_rule),
        cmocka_unit_test (test_replies_keep_old_names),
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_bytes_recv_says_when_it_drained),
        cmocka_unit_test (test_send_when_waits_instead_of_blocking),
    };
    return cmocka_run_group_tests_name ("proto", tests, NULL, NULL);
}
