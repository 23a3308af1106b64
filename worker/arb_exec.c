/*  arb_exec.c — runs a shell command as a task's handler (see arb_exec.h).

    Runs on the handler's thread (light) or in the slot's process (heavy);
    everything a run needs lives on that call's stack and heap, so calls on
    several threads at once share nothing but the read-only arb_exec_t.

    posix_spawn rather than fork: a light worker is multithreaded, and
    between fork and exec only async-signal-safe calls are allowed; glibc's
    posix_spawn does exactly the dup2s, process group and signal resets we
    need, and does them fast (vfork-style). A light command's keeper is
    a plain fork, which makes only async-signal-safe calls (arb_keeper.c).
    Every descriptor we create is close-on-exec, so a command started by
    another slot at the same moment never inherits our pipes (and so never
    holds our stdout open).

    The payload goes through a socketpair rather than a pipe: send() with
    MSG_NOSIGNAL reports a command that closed its stdin as EPIPE instead
    of raising SIGPIPE in the whole worker.

    One poll loop moves stdin, stdout and stderr and watches a pidfd for the
    command's exit; without pidfds (old kernels) it checks waitpid every
    ARB_EXEC_CHECK_MS.
*/

#include "arb_exec.h"
#include "arb_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_CHUNK (64u << 10)  //  bytes moved per read or send

struct _arb_exec_t {
    bool route;         //  stdout lines are routed items, not the result
    char *command;      //  owned
    int grace_ms;       //  SIGTERM -> SIGKILL
    size_t max_output;  //  bytes of stdout
};

//  One run of the command.
typedef struct {
    pid_t pid;
    bool own_group;  //  light: the command has a process group of its own ...
    pid_t keeper;    //  ... led by this keeper (arb_keeper.h), its id; 0 none
    int in_fd;       //  our end of its stdin; -1 once all is written
    int out_fd;      //  -1 at end of file
    int err_fd;
    int pidfd;       //  -1 if unavailable
    int parents_fd;  //  temporary file for ARBITER_PARENTS; owned
    int args_fd;     //  temporary file for ARBITER_ARGS; owned
    const uint8_t *payload;
    size_t payload_size;
    size_t written;
    uint8_t *out;  //  owned: stdout so far
    size_t out_size;
    size_t out_cap;
    size_t max_output;         //  bytes: the smaller of the runner's and the job's limits
    size_t out_total;          //  bytes of stdout seen, kept or not
    bool too_large;            //  stdout passed max_output: only counted from then on
    bool overrun;              //  ... and passed it by ARB_EXEC_OVERRUN: the command was killed
    char tail[ARB_EXEC_TAIL];  //  ring of the last stderr bytes
    size_t tail_total;         //  stderr bytes seen
    arb_job_t *job;            //  borrowed: the job being run (routing emits to it)
    bool route;                //  stdout lines are routed items
    size_t lines;              //  routed lines so far
    char route_error[160];     //  why routing failed; empty if it did not
    bool exited;
    int status;
    int64_t kill_at;  //  ms: SIGKILL then; 0 none
    bool cancelled;
    int64_t warn_at;  //  ms (zclock_mono): SIGUSR1 then, the soft timeout; 0 none or sent
    bool warned;      //  SIGUSR1 went out
} s_run_t;

arb_exec_t *
arb_exec_new (const char *command)
{
    assert (command);
    arb_exec_t *self = (arb_exec_t *) zmalloc (sizeof (arb_exec_t));
    self->command = strdup (command);
    self->grace_ms = 5000;
    self->max_output = ARB_PAYLOAD_DEFAULT_MAX;
    return self;
}

void
arb_exec_destroy (arb_exec_t **self_p)
{
    assert (self_p);
    arb_exec_t *self = *self_p;
    if (!self)
        return;
    free (self->command);
    free (self);
    *self_p = NULL;
}

void
arb_exec_set_grace (arb_exec_t *self, int grace_ms)
{
    assert (self);
    self->grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

void
arb_exec_set_route (arb_exec_t *self, bool route)
{
    assert (self);
    self->route = route;
}

void
arb_exec_set_max_output (arb_exec_t *self, size_t max_output)
{
    assert (self);
    self->max_output = max_output;
}

//  ---------------------------------------------------------------------
//  ARBITER_PARENTS.

//  Bytes as a JSON string: as they are if UTF-8, else one character per
//  byte (Latin-1), so that no byte is lost.
static json_t *
s_string_value (const uint8_t *data, size_t size)
{
    json_t *value = json_stringn ((const char *) data, size);
    if (value)
        return value;
    char *latin1 = (char *) malloc (2 * size + 1);
    assert (latin1);
    size_t len = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] < 0x80)
            latin1[len++] = (char) data[i];
        else {
            latin1[len++] = (char) (0xc0 | (data[i] >> 6));
            latin1[len++] = (char) (0x80 | (data[i] & 0x3f));
        }
    }
    value = json_stringn (latin1, len);
    free (latin1);
    return value;
}

//  A result as a JSON value: parsed if it is JSON, else a string.
static json_t *
s_parent_value (const uint8_t *data, size_t size)
{
    json_t *value = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
    return value ? value : s_string_value (data, size);
}

//  A new temporary file for the command to read, named after what it
//  holds, and already unlinked: nothing is left behind however the command
//  or this process ends (a heavy slot's process is killed on a stop). The
//  descriptor is close-on-exec and at 10 or above, so that the command's
//  copies at ARB_EXEC_PARENTS_FD and ARB_EXEC_ARGS_FD cannot land on one
//  another. Returns it, or -1 with errno set.
static int
s_temp_file (const char *what)
{
    char path[PATH_MAX];
    const char *dir = getenv ("TMPDIR");
    snprintf (path, sizeof (path), "%s/arbiter-%s-XXXXXX", dir && *dir ? dir : "/tmp", what);
    int fd = mkostemp (path, O_CLOEXEC);
    if (fd < 0)
        return -1;
    unlink (path);
    int high = fcntl (fd, F_DUPFD_CLOEXEC, 10);
    int saved = errno;
    close (fd);
    errno = saved;
    return high;
}

//  Rewinds a temporary file once written (rc: how the writing went), so
//  that a command reading the descriptor itself starts at the beginning.
//  Returns fd, or -1 with errno set (and fd closed).
static int
s_temp_ready (int fd, int rc)
{
    if (rc == 0 && lseek (fd, 0, SEEK_SET) == 0)
        return fd;
    int saved = errno ? errno : EIO;
    close (fd);
    errno = saved;
    return -1;
}

//  One parent's outcome, as the C API tells it (arb_job_parent_*): {"id",
//  "state", "result" (null unless it succeeded), "error" (null if none)}.
static json_t *
s_parent_json (arb_job_t *job, size_t i)
{
    uint32_t state = arb_job_parent_state (job, i);
    const char *error = arb_job_parent_error (job, i);
    size_t size;
    const uint8_t *result = arb_job_parent_result (job, i, &size);
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) arb_job_parent_id (job, i)));
    json_object_set_new (obj, "state", json_string (arb_state_name ((int) state)));
    json_object_set_new (
        obj, "result", state == ARB_STATE_SUCCEEDED ? s_parent_value (result, size) : json_null ());
    json_object_set_new (obj, "error",
                         error && *error ? s_string_value ((const uint8_t *) error, strlen (error))
                                         : json_null ());
    return obj;
}

//  The parents' outcomes as JSON, in a new temporary file: its descriptor.
static int
s_write_parents (arb_job_t *job)
{
    int fd = s_temp_file ("parents");
    if (fd < 0)
        return -1;
    json_t *parents = json_object ();
    for (size_t i = 0; i < arb_job_parent_count (job); i++) {
        char key[32];
        const char *name = arb_job_parent_name (job, i);
        if (!*name) {
            snprintf (key, sizeof (key), "%" PRIu64, arb_job_parent_id (job, i));
            name = key;
        }
        json_object_set_new (parents, name, s_parent_json (job, i));
    }
    errno = 0;
    int rc = json_dumpfd (parents, fd, JSON_COMPACT);
    json_decref (parents);
    return s_temp_ready (fd, rc);
}

//  The task's arguments, as they are, in a new temporary file: its
//  descriptor.
static int
s_write_args (arb_job_t *job)
{
    int fd = s_temp_file ("args");
    if (fd < 0)
        return -1;
    size_t size;
    const uint8_t *args = arb_job_args (job, &size);
    int rc = 0;
    errno = 0;
    while (size > 0 && rc == 0) {
        ssize_t n = write (fd, args, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = -1;
        else {
            args += n;
            size -= (size_t) n;
        }
    }
    return s_temp_ready (fd, rc);
}

//  ---------------------------------------------------------------------
//  The command's environment: ours, with the task's variables replacing
//  any of the same name.

#define S_ENV_VARS 6

typedef struct {
    char *vars[S_ENV_VARS];  //  owned
    char **envp;             //  owned array; strings borrowed
} s_env_t;

static void
s_env_build (s_env_t *env, arb_job_t *job)
{
    static const char *names[S_ENV_VARS] = {
        "ARBITER_TASK_ID=", "ARBITER_ATTEMPT=", "ARBITER_TASK_NAME=",
        "ARBITER_QUEUE=",   "ARBITER_PARENTS=", "ARBITER_ARGS="};
    int rc = asprintf (&env->vars[0], "%s%" PRIu64, names[0], arb_job_id (job));
    rc |= asprintf (&env->vars[1], "%s%" PRIu32, names[1], arb_job_attempt (job));
    rc |= asprintf (&env->vars[2], "%s%s", names[2], arb_job_name (job));
    rc |= asprintf (&env->vars[3], "%s%s", names[3], arb_job_queue (job));
    rc |= asprintf (&env->vars[4], "%s/dev/fd/%d", names[4], ARB_EXEC_PARENTS_FD);
    rc |= asprintf (&env->vars[5], "%s/dev/fd/%d", names[5], ARB_EXEC_ARGS_FD);
    assert (rc >= 0);  //  out of memory
    size_t count = 0;
    while (environ && environ[count])
        count++;
    env->envp = (char **) malloc ((count + S_ENV_VARS + 1) * sizeof (char *));
    assert (env->envp);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        bool ours = false;
        for (int k = 0; k < S_ENV_VARS && !ours; k++)
            ours = strncmp (environ[i], names[k], strlen (names[k])) == 0;
        if (!ours)
            env->envp[n++] = environ[i];
    }
    for (int k = 0; k < S_ENV_VARS; k++)
        env->envp[n++] = env->vars[k];
    env->envp[n] = NULL;
}

static void
s_env_free (s_env_t *env)
{
    for (int k = 0; k < S_ENV_VARS; k++)
        free (env->vars[k]);
    free (env->envp);
}

//  ---------------------------------------------------------------------
//  Starting the command.

static void
s_close (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

static void
s_nonblock (int fd)
{
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

//  Spawns the command with its three streams. Returns 0, or -1 with errno.
static int
s_spawn (arb_exec_t *self, s_run_t *run, char **envp)
{
    //  first the keeper, so that the command is in a guarded group from
    //  its first instruction: the worker's death takes it down
    if (run->own_group) {
        run->keeper = arb_keeper_new ();
        if (run->keeper < 0) {
            run->keeper = 0;
            return -1;
        }
    }
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2 (out, O_CLOEXEC) != 0
        || pipe2 (err, O_CLOEXEC) != 0) {
        int saved = errno;
        for (int i = 0; i < 2; i++) {
            s_close (&in[i]);
            s_close (&out[i]);
            s_close (&err[i]);
        }
        arb_keeper_destroy (&run->keeper);
        errno = saved;
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2 (&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2 (&actions, err[1], STDERR_FILENO);
    posix_spawn_file_actions_adddup2 (&actions, run->parents_fd, ARB_EXEC_PARENTS_FD);
    posix_spawn_file_actions_adddup2 (&actions, run->args_fd, ARB_EXEC_ARGS_FD);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none, defaults;
    sigemptyset (&none);
    sigemptyset (&defaults);
    //  a light slot's thread blocks SIGINT/SIGTERM, the worker may ignore
    //  SIGPIPE, and a heavy slot's process ignores SIGUSR1 (arb_exec_run):
    //  the command must start with none of that
    int signals[] = {SIGINT, SIGTERM, SIGPIPE, SIGQUIT, SIGCHLD, SIGUSR1};
    for (size_t i = 0; i < sizeof (signals) / sizeof (signals[0]); i++)
        sigaddset (&defaults, signals[i]);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (run->own_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup (&attr, run->keeper);
    }
    posix_spawnattr_setflags (&attr, flags);
    char *argv[] = {"/bin/sh", "-c", self->command, NULL};
    int rc = posix_spawn (&run->pid, "/bin/sh", &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (in[0]);
    close (out[1]);
    close (err[1]);
    run->in_fd = in[1];
    run->out_fd = out[0];
    run->err_fd = err[0];
    if (rc != 0) {
        s_close (&run->in_fd);
        s_close (&run->out_fd);
        s_close (&run->err_fd);
        arb_keeper_destroy (&run->keeper);
        errno = rc;
        return -1;
    }
    s_nonblock (run->in_fd);
    s_nonblock (run->out_fd);
    s_nonblock (run->err_fd);
    run->pidfd = pidfd_open (run->pid, 0);
    if (run->payload_size == 0)
        s_close (&run->in_fd);
    return 0;
}

//  ---------------------------------------------------------------------
//  Moving the streams.

static void
s_signal (s_run_t *run, int sig)
{
    kill (run->own_group ? -run->keeper : run->pid, sig);
}

static void
s_write_stdin (s_run_t *run)
{
    while (run->written < run->payload_size) {
        size_t left = run->payload_size - run->written;
        ssize_t n = send (run->in_fd, run->payload + run->written, left < S_CHUNK ? left : S_CHUNK,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;  //  EPIPE and friends: the command does not want the rest
        run->written += (size_t) n;
    }
    s_close (&run->in_fd);  //  end of input
}

static void s_route_lines (s_run_t *run, bool last);

static void
s_append (s_run_t *run, const uint8_t *data, size_t size)
{
    if (run->out_size + size > run->out_cap) {
        size_t cap = run->out_cap ? run->out_cap : S_CHUNK;
        while (cap < run->out_size + size)
            cap *= 2;
        run->out = (uint8_t *) realloc (run->out, cap);
        assert (run->out);  //  out of memory
        run->out_cap = cap;
    }
    memcpy (run->out + run->out_size, data, size);
    run->out_size += size;
}

static void
s_keep_stdout (s_run_t *run, const uint8_t *data, size_t size)
{
    run->out_total += size;
    if (run->route && !run->too_large) {
        //  the complete lines of this read go out first: only the line
        //  still open counts against the limit (a short line and a long
        //  one read at once: the first is an item, the second too long)
        s_append (run, data, size);
        s_route_lines (run, false);
        if (run->out_size > run->max_output) {
            run->too_large = run->overrun = true;
            s_signal (run, SIGKILL);
        }
        return;
    }
    if (!run->too_large && run->out_size + size > run->max_output)
        run->too_large = true;  //  the task has failed; what follows is only counted
    if (run->too_large) {
        //  A result a little too large is read to its end, so that the
        //  error can say its size; one that goes on is stopped. A routed
        //  line that long cannot be an item at all.
        if (!run->overrun && (run->route || run->out_total - run->max_output > ARB_EXEC_OVERRUN)) {
            run->overrun = true;
            s_signal (run, SIGKILL);
        }
        return;
    }
    s_append (run, data, size);
}

//  Emits one routed line "QUEUE<TAB>DATA". Returns 0, or -1 (and stops
//  the command) if the line is not one.
static int
s_route_line (s_run_t *run, const uint8_t *line, size_t size)
{
    run->lines++;
    const uint8_t *tab = (const uint8_t *) memchr (line, '\t', size);
    if (!tab || tab == line) {
        snprintf (run->route_error, sizeof (run->route_error),
                  "route: line %zu is not QUEUE<TAB>DATA", run->lines);
        s_signal (run, SIGKILL);
        return -1;
    }
    char queue[ARB_NAME_MAX + 1];
    size_t queue_size = (size_t) (tab - line);
    if (queue_size > ARB_NAME_MAX) {
        snprintf (run->route_error, sizeof (run->route_error),
                  "route: line %zu names a queue over %d bytes", run->lines, ARB_NAME_MAX);
        s_signal (run, SIGKILL);
        return -1;
    }
    memcpy (queue, line, queue_size);
    queue[queue_size] = 0;
    if (arb_job_emit (run->job, queue, tab + 1, size - queue_size - 1)) {
        snprintf (run->route_error, sizeof (run->route_error),
                  "route: line %zu could not be emitted to '%.64s'", run->lines, queue);
        s_signal (run, SIGKILL);
        return -1;
    }
    return 0;
}

//  Emits every complete line held; keeps the unfinished rest. With last,
//  the rest is a line too.
static void
s_route_lines (s_run_t *run, bool last)
{
    size_t start = 0;
    while (!*run->route_error && start < run->out_size) {
        uint8_t *end = (uint8_t *) memchr (run->out + start, '\n', run->out_size - start);
        if (!end && !last)
            break;
        size_t size = end ? (size_t) (end - (run->out + start)) : run->out_size - start;
        if (s_route_line (run, run->out + start, size))
            break;
        start += size + (end ? 1 : 0);
    }
    memmove (run->out, run->out + start, run->out_size - start);
    run->out_size -= start;
}

static void
s_keep_stderr (s_run_t *run, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        run->tail[(run->tail_total + i) % ARB_EXEC_TAIL] = (char) data[i];
    run->tail_total += size;
}

//  Reads what a stream has; closes it at its end.
static void
s_read_stream (s_run_t *run, int *fd, bool is_stdout)
{
    uint8_t buffer[S_CHUNK];
    while (*fd >= 0) {
        ssize_t n = read (*fd, buffer, sizeof (buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            s_close (fd);
            return;
        }
        if (is_stdout)
            s_keep_stdout (run, buffer, (size_t) n);
        else
            s_keep_stderr (run, buffer, (size_t) n);
    }
}

//  Notes that the command has exited, without reaping it: s_pump kills
//  what it left in its group first.
static void
s_check_exit (s_run_t *run)
{
    siginfo_t info;
    memset (&info, 0, sizeof (info));
    if (waitid (P_PID, (id_t) run->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
        && info.si_pid == run->pid)
        run->exited = true;
}

//  A cancelled task: SIGTERM to the group at once, SIGKILL after the grace.
static void
s_check_cancel (arb_exec_t *self, s_run_t *run, arb_job_t *job)
{
    if (!run->own_group)
        return;  //  a heavy slot is stopped by the worker, not by a flag
    if (!run->cancelled && arb_job_is_cancelled (job)) {
        run->cancelled = true;
        s_signal (run, SIGTERM);
        run->kill_at = zclock_mono () + self->grace_ms;
    }
    else if (run->kill_at && zclock_mono () >= run->kill_at) {
        s_signal (run, SIGKILL);
        run->kill_at = 0;
    }
}

//  The soft timeout has passed: SIGUSR1 to the command's process group (a
//  light slot's command leads its own; a heavy slot's is the slot's, whose
//  process ignores it meanwhile).
static void
s_check_soft_timeout (s_run_t *run)
{
    if (!run->warn_at || zclock_mono () < run->warn_at)
        return;
    kill (run->own_group ? -run->keeper : 0, SIGUSR1);
    run->warn_at = 0;
    run->warned = true;
}

//  ms until the next check: a kill, the soft timeout, or (light) a cancel.
static int
s_poll_timeout (s_run_t *run)
{
    //  heavy with a pidfd: only time wakes us, the pidfd or a stream does
    int timeout = !run->own_group && run->pidfd >= 0 ? -1 : ARB_EXEC_CHECK_MS;
    int64_t deadlines[] = {run->kill_at, run->warn_at};
    for (size_t i = 0; i < sizeof (deadlines) / sizeof (deadlines[0]); i++) {
        if (!deadlines[i])
            continue;
        int64_t left = deadlines[i] - zclock_mono ();
        left = left < 0 ? 0 : left;
        if (timeout < 0 || left < timeout)
            timeout = (int) (left > INT_MAX ? INT_MAX : left);
    }
    return timeout;
}

//  Moves the streams until the command has exited.
static void
s_pump (arb_exec_t *self, s_run_t *run, arb_job_t *job)
{
    while (!run->exited) {
        struct pollfd fds[4];
        int n = 0;
        int fd_of[4];
        if (run->in_fd >= 0)
            fds[n++] = (struct pollfd){run->in_fd, POLLOUT, 0};
        if (run->out_fd >= 0)
            fds[n++] = (struct pollfd){run->out_fd, POLLIN, 0};
        if (run->err_fd >= 0)
            fds[n++] = (struct pollfd){run->err_fd, POLLIN, 0};
        if (run->pidfd >= 0)
            fds[n++] = (struct pollfd){run->pidfd, POLLIN, 0};
        for (int i = 0; i < n; i++)
            fd_of[i] = fds[i].fd;
        int rc = poll (fds, (nfds_t) n, s_poll_timeout (run));
        bool exit_seen = run->pidfd < 0;
        for (int i = 0; rc > 0 && i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (fd_of[i] == run->in_fd)
                s_write_stdin (run);
            else if (fd_of[i] == run->out_fd)
                s_read_stream (run, &run->out_fd, true);
            else if (fd_of[i] == run->err_fd)
                s_read_stream (run, &run->err_fd, false);
            else
                exit_seen = true;
        }
        if (exit_seen)
            s_check_exit (run);
        s_check_cancel (self, run, job);
        if (!run->exited)
            s_check_soft_timeout (run);
    }
    //  whatever the command left behind in its group goes with it, and
    //  the group's keeper too
    if (run->own_group)
        kill (-run->keeper, SIGKILL);
    while (waitpid (run->pid, &run->status, 0) < 0 && errno == EINTR)
        ;
    arb_keeper_destroy (&run->keeper);
    //  what it wrote before exiting is in the pipes; later writers are gone
    s_read_stream (run, &run->out_fd, true);
    s_read_stream (run, &run->err_fd, false);
}

//  ---------------------------------------------------------------------
//  Outcome.

//  The end of stderr as an error text: the ring in order, NULs made
//  visible, trailing blank lines dropped.
static void
s_stderr_tail (s_run_t *run, char *text, size_t size)
{
    size_t len = run->tail_total < ARB_EXEC_TAIL ? run->tail_total : ARB_EXEC_TAIL;
    if (len >= size)
        len = size - 1;
    size_t start = run->tail_total - len;
    for (size_t i = 0; i < len; i++) {
        char c = run->tail[(start + i) % ARB_EXEC_TAIL];
        text[i] = c ? c : '.';
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    text[len] = '\0';
}

static int
s_outcome (s_run_t *run, arb_job_t *job)
{
    if (run->cancelled)
        return arb_job_fail (job, "cancelled");
    if (run->route && !*run->route_error && !run->too_large && WIFEXITED (run->status)
        && WEXITSTATUS (run->status) == 0)
        s_route_lines (run, true);
    if (*run->route_error)
        return arb_job_fail (job, "%s", run->route_error);
    if (run->too_large && run->route)
        return arb_job_fail (job, "route: line %zu is over the %zu-byte limit", run->lines + 1,
                             run->max_output);
    if (run->too_large)
        return arb_job_fail (job, "result of %s%zu bytes is over the %zu-byte limit",
                             run->overrun ? "more than " : "", run->out_total, run->max_output);
    if (WIFSIGNALED (run->status) && WTERMSIG (run->status) == SIGUSR1 && run->warned)
        return arb_job_fail (job, "ended by its soft timeout (SIGUSR1 after %.3g s)",
                             (double) arb_job_soft_timeout_ms (job) / 1000.0);
    if (WIFSIGNALED (run->status))
        return arb_job_fail (job, "killed by signal %d", WTERMSIG (run->status));
    int code = WEXITSTATUS (run->status);
    if (code == 0)
        return arb_job_set_result (job, run->out, run->route ? 0 : run->out_size);
    char tail[ARB_EXEC_TAIL + 1];
    s_stderr_tail (run, tail, sizeof (tail));
    if (*tail)
        return arb_job_fail (job, "%s", tail);
    return arb_job_fail (job, "exit status %d", code);
}

int
arb_exec_run (arb_exec_t *self, arb_job_t *job)
{
    assert (self && job);
    s_run_t *run = (s_run_t *) zmalloc (sizeof (s_run_t));
    run->args_fd = -1;
    run->parents_fd = s_write_parents (job);
    if (run->parents_fd < 0) {
        free (run);
        return arb_job_fail (job, "cannot write ARBITER_PARENTS: %s", strerror (errno));
    }
    run->args_fd = s_write_args (job);
    if (run->args_fd < 0) {
        int saved = errno;
        s_close (&run->parents_fd);
        free (run);
        return arb_job_fail (job, "cannot write ARBITER_ARGS: %s", strerror (saved));
    }
    s_env_t env = {{NULL}, NULL};
    s_env_build (&env, job);
    run->own_group = !arb_job_is_heavy (job);
    run->payload = arb_job_payload (job);
    run->payload_size = arb_job_payload_size (job);
    run->max_output = self->max_output;
    if (arb_job_max_payload (job) < run->max_output)
        run->max_output = arb_job_max_payload (job);
    run->job = job;
    run->route = self->route;
    run->pidfd = -1;
    run->warn_at = arb_job_soft_at (job);
    //  A heavy slot's command is warned through the slot's process group,
    //  which holds this process too: it ignores the warning meanwhile.
    struct sigaction ignore = {.sa_handler = SIG_IGN}, before;
    if (!run->own_group)
        sigaction (SIGUSR1, &ignore, &before);
    int rc;
    if (s_spawn (self, run, env.envp) != 0)
        rc = arb_job_fail (job, "cannot start /bin/sh: %s", strerror (errno));
    else {
        s_pump (self, run, job);
        rc = s_outcome (run, job);
    }
    if (!run->own_group)
        sigaction (SIGUSR1, &before, NULL);
    s_close (&run->in_fd);
    s_close (&run->out_fd);
    s_close (&run->err_fd);
    s_close (&run->pidfd);
    s_close (&run->parents_fd);
    s_close (&run->args_fd);
    free (run->out);
    free (run);
    s_env_free (&env);
    return rc;
}

int
arb_exec_handler (arb_job_t *job, void *arg)
{
    return arb_exec_run ((arb_exec_t *) arg, job);
}
