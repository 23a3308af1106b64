/*  arb_schema.h — the description of every message body, for the codec.

    Internal to proto/ and its tests: each body and record struct in
    arb_proto.h has a schema here, a table of (key, type, offset) that both
    the encoder and the strict decoder walk. Adding an optional field to a
    record is one line in arb_schema.c and stays wire-compatible with peers
    that never send it; peers that receive an unknown key refuse it.
*/

#ifndef ARB_SCHEMA_H
#define ARB_SCHEMA_H

#include "arb_proto.h"

typedef enum {
    ARB_F_U64 = 1,  //  uint64_t
    ARB_F_U32,      //  uint32_t
    ARB_F_I32,      //  int32_t
    ARB_F_BOOL,     //  bool
    ARB_F_STR,      //  const char *, at most max bytes, no NUL inside
    ARB_F_NAME,     //  ARB_F_STR that is also a name: printable UTF-8 (arb_name_check)
    ARB_F_BIN,      //  arb_bin_t, at most max bytes
    ARB_F_STRS,     //  arb_strs_t, at most max names of ARB_NAME_MAX bytes each
    ARB_F_IDS,      //  arb_ids_t, at most max numbers
    ARB_F_LIST,     //  {T *v; size_t n}, at most max records of schema sub
    ARB_F_FRAME,    //  zframe_t *: not in the map, the record's own frame
} arb_ftype_t;

typedef struct _arb_schema_t arb_schema_t;

typedef struct {
    const char *key;
    size_t key_len;  //  strlen (key), known when the table is compiled
    arb_ftype_t type;
    bool required;
    size_t offset;
    size_t max;
    const arb_schema_t *sub;  //  ARB_F_LIST only
} arb_field_t;

struct _arb_schema_t {
    const char *name;
    size_t size;  //  sizeof the struct
    const arb_field_t *fields;
    size_t nfields;
    //  Where its frames are, if it holds any: its own frame (the FRAME
    //  field at offset frame_at - 1), or the records of one list (the LIST
    //  field at offset list_at - 1, of schema list_sub); 0 for none. No
    //  schema has both, or two of either (test_proto checks every one).
    size_t frame_at;
    size_t list_at;
    const arb_schema_t *list_sub;
};

//  Schema of a message type's body, or NULL for an unknown type.
const arb_schema_t *arb_schema_of (int type);

#endif
