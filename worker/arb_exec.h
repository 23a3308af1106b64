/*  arb_exec.h — runs a shell command as a task's handler, so that tasks can
    be written in any language.

    For each task, `/bin/sh -c COMMAND` runs with:

      stdin    the task's payload (written while the output is read, so any
               size goes through without a deadlock; a command that does not
               read it is fine)
      stdout   the task's result. More than the output limit (the smaller
               of arb_exec_set_max_output's, default ARB_PAYLOAD_DEFAULT_MAX,
               and the job's arb_job_max_payload) fails the task with
               "result of N bytes is over the M-byte limit"; stdout is read
               on (and dropped) to count N, up to ARB_EXEC_OVERRUN bytes
               past the limit, where the command is killed ("result of more
               than N bytes ...")
      stderr   its last ARB_EXEC_TAIL bytes are the error text of a failure
      env      the worker's environment plus ARBITER_TASK_ID,
               ARBITER_ATTEMPT, ARBITER_TASK_NAME, ARBITER_QUEUE, and two
               paths to read from:
               ARBITER_PARENTS (/dev/fd/3): a JSON object with each
               parent's outcome, as the C API gives it (arb_job_parent_*),
               by its name: {"id", "state" (succeeded; or dead, cancelled,
               skipped for a task that runs on its parents' failure),
               "result", "error"}. A result that is valid JSON appears
               parsed, any other valid UTF-8 as a string, and other bytes
               as a string of one character per byte (U+0000..U+00FF:
               Latin-1); it is null unless the parent succeeded. The error
               (why it did not succeed) is a string, or null. A parent
               without a name is keyed by its decimal id.
               ARBITER_ARGS (/dev/fd/4): the task's persistent arguments as
               bytes (empty if none; pipe steps get theirs here, their input
               on stdin).
               Both are temporary files deleted before the command starts
               and open on descriptors 3 and 4, so nothing is ever left
               behind in $TMPDIR, however the command or the worker ends;
               opening the path reads from the start, as often as wanted, in
               the command and in any process it starts that keeps those
               descriptors.

    Soft timeout: when the task's soft timeout passes (arb_job_soft_at: a
    task submitted with --soft-timeout), the command's process group gets
    SIGUSR1, once. Its default action ends the command, and the task fails
    with "ended by its soft timeout (SIGUSR1 after N s)"; a command that
    traps it (`trap 'cleanup; exit 1' USR1`) can wrap up before the hard
    timeout. In a heavy slot the group is the slot process's, which ignores
    SIGUSR1 while the command runs.

    Exit status 0 succeeds. Another status fails with the end of stderr, or
    "exit status N" if stderr was empty; death by a signal fails with
    "killed by signal N".

    Process groups. In a light slot the command gets a process group of
    its own, led by a keeper (arb_keeper.h) forked just before it, so that
    the worker's death, kill -9 included, kills the command and whatever it
    started in the group (`$$` is not the group's id; `kill 0` reaches the
    group). When the task is cancelled (arb_job_is_cancelled, checked every
    ARB_EXEC_CHECK_MS) the group gets SIGTERM, and SIGKILL after the grace.
    In a heavy slot the command stays in the slot process's group (which
    has its own keeper), which the worker itself signals on a stop. Either
    way, whatever the command leaves running in that group when it exits
    is killed with it.

    An arb_exec_t is read-only while tasks run, so one serves every slot.
*/

#ifndef ARB_EXEC_H
#define ARB_EXEC_H

#include "arb_job.h"

#define ARB_EXEC_TAIL       4096        //  bytes of stderr kept for the error text
#define ARB_EXEC_OVERRUN    (1u << 20)  //  stdout bytes counted past the limit before a kill
#define ARB_EXEC_CHECK_MS   100         //  how often a running command checks for a cancel
#define ARB_EXEC_PARENTS_FD 3           //  ARBITER_PARENTS is /dev/fd/3
#define ARB_EXEC_ARGS_FD    4           //  ARBITER_ARGS is /dev/fd/4

typedef struct _arb_exec_t arb_exec_t;

//  Creates a runner for command (copied).
arb_exec_t *arb_exec_new (const char *command);

//  Destroys it. Accepts NULL; nulls *self_p.
void arb_exec_destroy (arb_exec_t **self_p);

//  Time between SIGTERM and SIGKILL of a cancelled command (default 5000).
void arb_exec_set_grace (arb_exec_t *self, int grace_ms);

//  Largest stdout accepted as a result (default ARB_PAYLOAD_DEFAULT_MAX;
//  a job's smaller arb_job_max_payload wins).
void arb_exec_set_max_output (arb_exec_t *self, size_t max_output);

//  Routing mode (Arbeiter): every stdout line "QUEUE<TAB>DATA" is emitted
//  to QUEUE as soon as it is complete (arb_job_emit), and the task's result
//  is empty; no output makes the command a sink. A line without a TAB, a
//  line over the output limit, or an emit the job refuses, fails the task.
void arb_exec_set_route (arb_exec_t *self, bool route);

//  Runs the command for job and sets its result or error. Returns 0 on
//  success, -1 on failure (also when the command could not be started).
int arb_exec_run (arb_exec_t *self, arb_job_t *job);

//  The same as an arb_handler_fn: arg is the arb_exec_t.
int arb_exec_handler (arb_job_t *job, void *arg);

#endif
