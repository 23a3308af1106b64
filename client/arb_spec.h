/*  arb_spec.h — what a client can check of a SUBMIT batch before it sends
    it, so that a mistake costs no round trip and the error names the task
    and the field (the broker would refuse the whole batch with a 400, 413
    or 422). arb_client and arb_link check every batch with it.
*/

#ifndef ARB_SPEC_H
#define ARB_SPEC_H

#include "arb_proto.h"

//  Checks n task specs submitted as one flow of the given kind
//  (ARB_FLOW_NONE: a plain batch) named flow_name (NULL: none): 1 to
//  ARB_LIST_MAX tasks, each with a name, names within ARB_NAME_MAX, each
//  payload within max_payload bytes, and lists and arguments within the
//  codec's limits. Returns 0, or -1 with a sentence in error (size bytes).
int arb_spec_check (const arb_task_spec_t *specs,
                    size_t n,
                    arb_flow_kind_t kind,
                    const char *flow_name,
                    size_t max_payload,
                    char *error,
                    size_t size);

#endif
