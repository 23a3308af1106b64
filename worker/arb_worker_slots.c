/*  arb_worker_slots.c — the worker runtime's slots (see arb_worker.h and
    arb_worker_priv.h): where a dispatched task runs, and how its end comes
    back to the run thread.

    A slot runs one task at a time, in one of two modes. Light: a pool of
    slot_count threads (arb_pool.h) takes the jobs the run thread queued
    and leaves notes for it ("done, rc", "here are staged items", "not
    started: too late"), which arb_worker_recv_notes reads. Heavy: one
    forked child per task, in a process group of its own led by a keeper
    (arb_keeper.h: the worker's death kills the group), whose report pipe
    and pidfd the loop watches (arb_worker_heavy_read, arb_worker_heavy_reap).

    Threads. Everything here runs on the run thread, except s_job_run and
    arb_worker_pool_run (a pool thread, or the heavy child) and
    arb_worker_slot_flush (a pool thread). A task's end frees its slot and
    keeps its outcome to report under the slot's lease, unless that lease
    is over (quiet) or waits for the broker's answer to a new session's
    claim (orphan, held).
*/

#include "arb_worker_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Running one job, on a light slot's thread or in a heavy child.

static int
s_job_run (arb_worker_t *self, arb_job_t *job)
{
    const char *name = arb_job_name (job);
    const arb_worker_handler_t *handler = NULL;
    for (size_t i = 0; i < self->handler_count && !handler; i++)
        if (streq (self->handlers[i].name, name))
            handler = &self->handlers[i];
    if (!handler && self->fallback.fn)
        handler = &self->fallback;
    if (!handler)
        return arb_job_fail (job, "no handler for task '%s'", name);
    return handler->fn (job, handler->arg) == 0 ? 0 : -1;
}

//  ---------------------------------------------------------------------
//  Light slots: a pool of slot_count threads (arb_pool.h).

//  Runs a light slot's job on a pool thread (arb_pool_fn).
int
arb_worker_pool_run (void *job, void *arg)
{
    return s_job_run ((arb_worker_t *) arg, ((arb_worker_slot_t *) job)->job);
}

//  Streams a handler's staged items to the run thread (arb_job_flush_fn).
void
arb_worker_slot_flush (arb_msg_t **emit_p, void *arg)
{
    arb_worker_slot_t *slot = (arb_worker_slot_t *) arg;
    arb_pool_note_emits (slot->pool, slot, emit_p);
}

//  ---------------------------------------------------------------------
//  Heavy slots: one forked child per task.

//  The child: in its keeper's process group (the unit a stop kills, and
//  the worker's death), default signal actions, the handler, the report,
//  _exit. It never touches the parent's ZeroMQ sockets or runs the
//  parent's atexit handlers.
static void s_heavy_child (arb_worker_t *self, arb_worker_slot_t *slot, int report_fd)
    __attribute__ ((noreturn));

static void
s_heavy_child (arb_worker_t *self, arb_worker_slot_t *slot, int report_fd)
{
    setpgid (0, slot->keeper);
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGPIPE, SIG_DFL);
    //  the worker's SIGHUP handler (arb_hangup_catch) is not the child's;
    //  nohup's SIG_IGN stays, as it would for a command
    struct sigaction hup;
    if (sigaction (SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        signal (SIGHUP, SIG_DFL);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    arb_job_set_report_fd (slot->job, report_fd);
    int rc = s_job_run (self, slot->job);
    _exit (arb_job_write_outcome (slot->job, rc) == 0 ? 0 : 3);
}

void
arb_worker_heavy_launch (arb_worker_t *self, arb_worker_slot_t *slot)
{
    //  first the keeper, so that the child is in a guarded group from its
    //  first instruction: the worker's death takes the group down
    slot->keeper = arb_keeper_new ();
    if (slot->keeper < 0) {
        slot->keeper = 0;
        arb_job_fail (slot->job, "worker could not start the task: fork: %s", strerror (errno));
        arb_worker_slot_done (self, slot, -1);
        return;
    }
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC) != 0) {
        arb_job_fail (slot->job, "worker could not start the task: pipe: %s", strerror (errno));
        arb_keeper_destroy (&slot->keeper);
        arb_worker_slot_done (self, slot, -1);
        return;
    }
    pid_t pid = fork ();
    if (pid == 0) {
        close (fds[0]);
        s_heavy_child (self, slot, fds[1]);
    }
    close (fds[1]);
    if (pid < 0) {
        close (fds[0]);
        arb_job_fail (slot->job, "worker could not start the task: fork: %s", strerror (errno));
        arb_keeper_destroy (&slot->keeper);
        arb_worker_slot_done (self, slot, -1);
        return;
    }
    //  the child does the same; doing it here too means it is in the group
    //  before any STOP can try to kill it
    setpgid (pid, slot->keeper);
    fcntl (fds[0], F_SETFL, fcntl (fds[0], F_GETFL) | O_NONBLOCK);
    slot->pid = pid;
    slot->report_fd = fds[0];
    slot->pidfd = pidfd_open (pid, 0);
    slot->kill_at = 0;
    slot->bad_report = false;
}

void
arb_worker_heavy_kill (arb_worker_t *self, arb_worker_slot_t *slot, int sig)
{
    if (slot->pid <= 0)
        return;
    kill (-slot->keeper, sig);
    slot->kill_at = sig == SIGKILL ? 0 : arb_worker_now () + self->grace_ms;
}

//  Reads what the child reported so far; staged items go out at once.
static void s_slot_emits (arb_worker_t *self, arb_worker_slot_t *slot, arb_msg_t **emits_p);

void
arb_worker_heavy_read (arb_worker_t *self, arb_worker_slot_t *slot)
{
    if (slot->report_fd < 0)
        return;
    int rc = arb_job_read_report (slot->job, slot->report_fd);
    arb_msg_t *emits = arb_job_take_emits (slot->job);
    s_slot_emits (self, slot, &emits);
    if (rc == 0)
        return;
    if (rc < 0) {
        ARB_WORKER_WARNING (self, "worker: bad report from child pid=%d id=%" PRIu64,
                            (int) slot->pid, arb_job_id (slot->job));
        slot->bad_report = true;
        kill (-slot->keeper, SIGKILL);
    }
    close (slot->report_fd);
    slot->report_fd = -1;
}

//  Whether the child has exited, without reaping it: for kernels without
//  pidfds, where the loop checks this every S_REAP_POLL_MS (arb_worker.c).
bool
arb_worker_heavy_exited (arb_worker_slot_t *slot)
{
    siginfo_t info;
    memset (&info, 0, sizeof (info));
    return waitid (P_PID, (id_t) slot->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
           && info.si_pid != 0;
}

//  The child has exited: kill what it left in its group while the group id
//  is still reserved by the keeper, reap them, read the rest of its report
//  and finish the task.
void
arb_worker_heavy_reap (arb_worker_t *self, arb_worker_slot_t *slot)
{
    kill (-slot->keeper, SIGKILL);
    int status = 0;
    while (waitpid (slot->pid, &status, 0) < 0 && errno == EINTR)
        ;
    arb_keeper_destroy (&slot->keeper);
    arb_worker_heavy_read (self, slot);
    if (slot->report_fd >= 0)
        close (slot->report_fd);
    if (slot->pidfd >= 0)
        close (slot->pidfd);
    slot->report_fd = -1;
    slot->pidfd = -1;
    slot->pid = 0;
    slot->kill_at = 0;

    arb_job_t *job = slot->job;
    int rc = -1;
    if (slot->bad_report)
        arb_job_fail (job, "bad report from the task's process");
    else if (arb_job_has_outcome (job))
        rc = arb_job_outcome (job);
    else if (WIFSIGNALED (status))
        arb_job_fail (job, "killed by signal %d", WTERMSIG (status));
    else
        arb_job_fail (job, "exited with status %d without a result", WEXITSTATUS (status));
    arb_worker_slot_done (self, slot, rc);
}

//  ---------------------------------------------------------------------
//  Slots.

//  Items a running task staged: they go out under the slot's current lease
//  (a WELCOME may have given it a new one). An orphan's items have no lease
//  the broker knows: they are dropped, and the task, no longer complete,
//  is not the broker's to take back any more.
static void
s_slot_emits (arb_worker_t *self, arb_worker_slot_t *slot, arb_msg_t **emits_p)
{
    if (!*emits_p)
        return;
    if (slot->quiet || slot->orphan || self->session != ARB_WORKER_SESSION_READY) {
        if (slot->orphan) {
            slot->orphan = false;
            slot->quiet = true;
        }
        arb_msg_destroy (emits_p);
        return;
    }
    arb_emit_body_t *body = arb_msg_emit (*emits_p);
    for (size_t i = 0; i < body->items.n; i++)
        body->items.v[i].lease = slot->lease;
    slot->emitted = true;
    arb_worker_out_emit (self, emits_p);
}

void
arb_worker_batch_release (arb_worker_batch_t **batch_p)
{
    arb_worker_batch_t *batch = *batch_p;
    *batch_p = NULL;
    if (batch && --batch->refs == 0) {
        arb_msg_destroy (&batch->msg);
        free (batch);
    }
}

//  A task has ended in its slot: report it unless its lease is over, and
//  free the slot (its credit goes back with the turn's CREDIT).
void
arb_worker_slot_done (arb_worker_t *self, arb_worker_slot_t *slot, int rc)
{
    if (slot->orphan) {
        slot->held = true;  //  reported, or not, once the broker has answered
        slot->held_rc = rc;
        return;
    }
    arb_job_t *job = slot->job;
    bool report = !slot->quiet && self->session == ARB_WORKER_SESSION_READY;
    arb_msg_t *emits = arb_job_take_emits (job);
    if (report && rc == 0) {
        s_slot_emits (self, slot, &emits);
        zframe_t *result = arb_job_take_result (job);
        arb_worker_keep_result (self, arb_job_id (job), slot->lease, ARB_OUTCOME_OK, NULL,
                                slot->emitted, &result);
    }
    else if (report) {
        const char *error = *arb_job_error (job) ? arb_job_error (job) : "handler failed";
        arb_worker_keep_result (self, arb_job_id (job), slot->lease, ARB_OUTCOME_FAIL, error,
                                slot->emitted, NULL);
    }
    ARB_WORKER_DEBUG (self, "worker: task done id=%" PRIu64 " rc=%d quiet=%d", arb_job_id (job), rc,
                      slot->quiet);
    arb_msg_destroy (&emits);
    arb_job_finish (job);
    arb_worker_batch_release (&slot->batch);
    slot->busy = false;
    slot->quiet = false;
    slot->held = false;
    slot->emitted = false;
    self->free[self->free_count++] = slot->index;
    self->busy--;
    if (self->session == ARB_WORKER_SESSION_READY && self->phase == ARB_WORKER_PHASE_RUN)
        self->credit_owed++;
}

arb_worker_slot_t *
arb_worker_slot_find (arb_worker_t *self, uint64_t id, uint64_t lease)
{
    for (int i = 0; i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (slot->busy && arb_job_id (slot->job) == id && slot->lease == lease)
            return slot;
    }
    return NULL;
}

//  Ends a running task's lease on this side: nothing will be reported for
//  it, and it is asked to stop (light: flag; heavy: signal to its group).
void
arb_worker_slot_stop (arb_worker_t *self, arb_worker_slot_t *slot, int sig)
{
    slot->quiet = true;
    slot->orphan = false;
    if (slot->held || slot->unstarted) {
        //  it has finished, or will never start: free the slot
        int rc = slot->held ? slot->held_rc : 0;
        slot->unstarted = false;
        arb_worker_slot_done (self, slot, rc);
        return;
    }
    if (self->mode == ARB_WORKER_LIGHT)
        arb_job_cancel (slot->job);
    else if (sig == SIGKILL || slot->kill_at == 0)
        arb_worker_heavy_kill (self, slot, sig);
}

//  A light job its thread did not start: it waited past its start_by,
//  so the process was stopped between the DISPATCH and the thread, and
//  the broker may have given the task to another worker since. It starts
//  only if the broker gives it back: a WELCOME since it was queued did
//  (adopted), or the claim of a new session will say (s_on_adopted,
//  arb_worker_session.c).
static void
s_slot_unstarted (arb_worker_t *self, arb_worker_slot_t *slot)
{
    ARB_WORKER_WARNING (self, "worker: task not started after a stall id=%" PRIu64,
                        arb_job_id (slot->job));
    if (slot->quiet) {
        arb_worker_slot_done (self, slot, 0);  //  its lease is over: nothing to report
        return;
    }
    if (slot->adopted && !slot->orphan && self->session == ARB_WORKER_SESSION_READY) {
        self->launch[self->launch_count++] = slot;
        return;
    }
    slot->unstarted = true;
    if (!slot->orphan && self->session == ARB_WORKER_SESSION_READY)
        arb_worker_register (self, true);  //  claims it, with the other running tasks
}

void
arb_worker_recv_notes (arb_worker_t *self)
{
    size_t count = arb_pool_take_notes (self->pool, &self->notes, &self->note_cap);
    for (size_t i = 0; i < count; i++) {
        arb_pool_note_t *note = &self->notes[i];
        arb_worker_slot_t *slot = (arb_worker_slot_t *) note->job;
        if (note->late)
            s_slot_unstarted (self, slot);
        else if (!note->emits)
            arb_worker_slot_done (self, slot, note->rc);
        else
            s_slot_emits (self, slot, &note->emits);
    }
}
