/*  arb_dag.h — validation of a batch of tasks with dependencies, before
    anything of it is stored.

    A batch names its tasks (ref) and their dependencies (after: a ref in
    the batch, or the id of an existing task). It is refused as a whole,
    with a reason naming the tasks involved, when two tasks share a name,
    when a dependency names nothing, or when dependencies form a cycle (the
    cycle is given in order). Everything is linear in the size of the
    batch and iterative, so a 10,000-node chain is as cheap as a wide one.

    A short-lived object, made and destroyed within one SUBMIT.
*/

#ifndef ARB_DAG_H
#define ARB_DAG_H

#include "arb_proto.h"

typedef struct _arb_dag_t arb_dag_t;

//  Whether an id names an existing task.
typedef bool (arb_dag_exists_fn) (void *arg, uint64_t id);

//  Indexes the refs of a batch (borrowed: the batch must outlive the dag).
arb_dag_t *arb_dag_new (const arb_task_spec_t *tasks, size_t count);
void arb_dag_destroy (arb_dag_t **self_p);

//  Checks names, dependencies and cycles. Returns 0, or -1 with why set.
int arb_dag_check (arb_dag_t *self, arb_dag_exists_fn *exists, void *arg, char *why, size_t size);

//  The index in the batch of the task named ref, or -1.
long arb_dag_index (arb_dag_t *self, const char *ref);

#endif
