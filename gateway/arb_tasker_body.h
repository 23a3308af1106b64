/*  arb_tasker_body.h — tasker's POST body, parsed and checked:
    {"identifier": a string of 1 to 200 bytes (required), "payload": any
    JSON, "endpoints": a list of distinct worker names}; any other field,
    a repeated key or a wrong type is refused with a reason that names it.

    Pure (jansson only; fuzzed by tests/fuzz/fuzz_http.c).
*/

#ifndef ARB_TASKER_BODY_H
#define ARB_TASKER_BODY_H

#include "arb_proto.h"

#include <jansson.h>

//  A POST body, checked.
typedef struct {
    json_t *root;            //  owned: the parsed body
    const char *identifier;  //  borrowed from root
    json_t *payload;         //  borrowed from root, or NULL
    arb_strs_t endpoints;    //  owned array of names borrowed from root
    bool broadcast;          //  "broadcast" given true
    bool has_broadcast;      //  "broadcast" given at all
} arb_tasker_post_t;

//  Parses and checks a POST body (size bytes). Returns a new post, or
//  NULL with why filled (a message for a 400 answer).
arb_tasker_post_t *arb_tasker_parse (const char *body, size_t size, char *why, size_t why_size);
void arb_tasker_post_destroy (arb_tasker_post_t **post_p);

//  Whether name is a usable type name before the config is asked: 1 to
//  ARB_NAME_MAX bytes, no '@' (the broker's endpoint queues), not a name
//  another route uses.
bool arb_tasker_is_type_name (const char *name);

#endif
