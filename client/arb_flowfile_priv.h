/*  arb_flowfile_priv.h — what the two halves of the workflow file reader
    share: arb_flowfile.c reads the whole flow (its kinds, names and
    dependencies), arb_flowfile_task.c one task object. Internal to them.
*/

#ifndef ARB_FLOWFILE_PRIV_H
#define ARB_FLOWFILE_PRIV_H

#include "arb_client.h"
#include "arb_flowfile.h"

#include <jansson.h>

#define ARB_FLOWFILE_QUOTE_MAX 64  //  bytes of a name quoted in a message

struct _arb_flowfile_t {
    arb_flow_kind_t kind;
    json_t *json;            //  owned: the document the specs' strings borrow from; NULL if none
    const char *name;        //  the flow's name, borrowed from json or a block; NULL none
    arb_task_spec_t *specs;  //  owned array of count
    size_t count;
    zlistx_t *blocks;  //  owned malloc'd memory the specs point into
};

//  Kinds of task, for the fields each may have.
typedef enum {
    ARB_FLOWFILE_ROLE_NODE = 1,    //  a DAG's task
    ARB_FLOWFILE_ROLE_MEMBER = 2,  //  a group's member
    ARB_FLOWFILE_ROLE_HOOK = 4,    //  a group's callback or finalizer
    ARB_FLOWFILE_ROLE_STEP = 8,    //  a pipe's step
} arb_flowfile_role_t;

//  What reading one task has met so far, for the rules between fields.
typedef struct {
    bool named;  //  "name" was given
    bool payload;
    bool delay;
    bool at;
    bool fan_out_options;  //  allow_unknown_endpoints or endpoint_timeout
} arb_flowfile_seen_t;

//  The state of one read.
typedef struct {
    arb_flowfile_t *self;
    const char *label;  //  the file, as messages name it (borrowed)
    arb_flowfile_err_t *err;
    char where[128];           //  the task being read, "tasks[2] ('c')"; empty at the top
    arb_flowfile_role_t role;  //  ARB_FLOWFILE_ROLE_* of the task being read
    arb_flowfile_seen_t seen;
    uint64_t now_ms;  //  for "at"
} arb_flowfile_ctx_t;

//  Zeroed memory the flow owns (freed with it).
void *arb_flowfile_alloc (arb_flowfile_t *self, size_t size);

//  A copy of text the flow owns.
const char *arb_flowfile_strdup (arb_flowfile_t *self, const char *text);

//  A name as messages quote it: at most ARB_FLOWFILE_QUOTE_MAX bytes, '.'
//  for what would not print, "..." when cut.
void arb_flowfile_quote (const char *text, char *buf, size_t size);

//  Writes "<file>: <where>.<field>: <reason>" into ctx->err, leaving out
//  where and field when empty. Returns -1.
int arb_flowfile_fail (arb_flowfile_ctx_t *ctx, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Names the task being read in ctx->where: "list[index] ('name')", or
//  just the name when list is NULL (a group's callback).
void arb_flowfile_where (arb_flowfile_ctx_t *ctx, const char *list, size_t index, const char *name);

//  A JSON string that is a valid name (1..ARB_NAME_MAX bytes, no NUL),
//  borrowed from the document.
int arb_flowfile_name_value (arb_flowfile_ctx_t *ctx,
                             const char *field,
                             json_t *value,
                             const char **out);

//  The payload (a frame) and the args of a spec from any JSON value: a
//  string's bytes, or any other value's compact JSON text.
int arb_flowfile_payload (arb_flowfile_ctx_t *ctx,
                          const char *key,
                          json_t *value,
                          arb_task_spec_t *spec);
int
arb_flowfile_args (arb_flowfile_ctx_t *ctx, const char *key, json_t *value, arb_task_spec_t *spec);

//  Reads a task object of the role in ctx->role into spec. name_default
//  (NULL: none) names a task without "name". Returns 0 or -1.
int arb_flowfile_read_task (arb_flowfile_ctx_t *ctx,
                            json_t *obj,
                            const char *list,
                            size_t index,
                            const char *name_default,
                            arb_task_spec_t *spec);

//  Reads the list of task objects of a role into specs[0..]; members and
//  steps without a name are named by their place ("member1", "step1").
int arb_flowfile_read_tasks (arb_flowfile_ctx_t *ctx,
                             json_t *list,
                             const char *key,
                             arb_flowfile_role_t role,
                             arb_task_spec_t *specs);

#endif
