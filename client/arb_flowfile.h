/*  arb_flowfile.h — workflow files: a DAG, a group or a pipe described in
    JSON, read into the task specs of one SUBMIT.

    docs/workflows.md describes the format in full. In short:

        DAG    {"name": N, "tasks": [TASK...]}
        group  {"name": N, "tasks": [TASK...], "callback": TASK, "finalizer": TASK}
        pipe   {"name": N, "input": V, "args": V, "steps": [TASK...]}

    where a TASK is {"name", "task", "queue", "payload", "args", "after",
    "input", "key", "priority", "retries", "backoff", "no_jitter",
    "timeout", "soft_timeout", "delay", "at", "retention", "endpoints", "broadcast",
    "allow_unknown_endpoints", "endpoint_timeout"}, each allowed where it
    makes sense (no "after" in a group member or a pipe step). What this
    module adds to the file: a group's callback waits on_success for every
    member, its finalizer always for every member and the callback; a
    pipe's step k + 1 waits on_success for step k and takes its result as
    input (input "parent"), the first step takes the pipe's input as its
    payload, and each step gets the pipe's args unless it has its own.

    Errors name the file, the task and the field, in one line:

        dag.json: tasks[2] ('c').after[0]: 'when' must be on_success, on_failure or always

    Option values are checked by the CLI's parsers (arb_cli_args.h), with
    the bounds of arb_proto.h: the same value means the same in a file as
    on the command line. What the broker checks across the whole batch (a
    dependency cycle, an unknown task id, an endpoint not connected) it
    still checks. No network here: unit-tested in tests/unit/test_flowfile.c.
*/

#ifndef ARB_FLOWFILE_H
#define ARB_FLOWFILE_H

#include "arb_proto.h"

typedef struct _arb_flowfile_t arb_flowfile_t;

//  Why a file was refused: one line naming the file, the task and the field.
typedef struct {
    char text[1024];
} arb_flowfile_err_t;

//  The names of a group's callback and finalizer in the flow (members may
//  not take them), and the names of members and steps the file does not
//  name: "member1", "member2", ...; "step1", ...
#define ARB_FLOWFILE_CALLBACK  "callback"
#define ARB_FLOWFILE_FINALIZER "finalizer"
#define ARB_FLOWFILE_MEMBER    "member"
#define ARB_FLOWFILE_STEP      "step"

//  Reads the workflow file at path ("-": stdin) as a flow of the given kind
//  (ARB_FLOW_DAG, _GROUP or _PIPE). Returns the flow, or NULL with why in err.
arb_flowfile_t *arb_flowfile_read (const char *path, arb_flow_kind_t kind, arb_flowfile_err_t *err);

//  The same from size bytes of text; label names it in messages.
arb_flowfile_t *arb_flowfile_parse (const char *label,
                                    const char *text,
                                    size_t size,
                                    arb_flow_kind_t kind,
                                    arb_flowfile_err_t *err);

//  A pipe from the command line: one step per handler name, each in queue
//  (NULL: the default queue) with the given args, the first with input as
//  its payload; chained as a pipe file is. Takes the input frame (nulls
//  *input_p, even on failure; NULL: empty). Copies what it needs of the
//  rest. Returns the flow, or NULL with why in err.
arb_flowfile_t *arb_flowfile_new_pipe (const char *const *handlers,
                                       size_t n,
                                       const char *queue,
                                       zframe_t **input_p,
                                       const uint8_t *args,
                                       size_t args_size,
                                       arb_flowfile_err_t *err);

//  Destroys the flow, with the payload frames its specs still hold.
//  Accepts NULL; nulls the caller's pointer.
void arb_flowfile_destroy (arb_flowfile_t **self_p);

//  The kind given when it was read.
arb_flow_kind_t arb_flowfile_kind (arb_flowfile_t *self);

//  The flow's name (borrowed), or NULL when the file gives none.
const char *arb_flowfile_name (arb_flowfile_t *self);

//  The task specs, in the order of the file (a group's callback and
//  finalizer last), ready for arb_client_submit_flow: everything they point
//  to is owned by the flow and lives as long as it does; the payload frames
//  are the flow's until a submit takes them.
arb_task_spec_t *arb_flowfile_specs (arb_flowfile_t *self);

//  The number of task specs.
size_t arb_flowfile_size (arb_flowfile_t *self);

#endif
