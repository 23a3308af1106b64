/*  test_exec.c — arb_exec with real /bin/sh commands: payload in, result
    out, failures and their error texts, big streams both ways, the task's
    environment and parents file, limits, and cancellation that leaves no
    process behind.

    Jobs are made with arb_job_new, as a tool would run a handler without a
    broker. Waiting is done by polling for an event with a deadline, never
    by a fixed sleep.
*/

#include "arb_exec.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

//  Runs command on payload; returns the handler's rc, the job in *job_p.
static int
s_run (const char *command, const void *payload, size_t size, arb_job_t **job_p)
{
    arb_exec_t *exec = arb_exec_new (command);
    *job_p = arb_job_new (42, "resize", "images", payload, size);
    int rc = arb_exec_handler (*job_p, exec);
    arb_exec_destroy (&exec);
    return rc;
}

//  What a job brings beyond its command.
typedef struct {
    bool route;                //  the runner routes
    size_t max_payload;        //  the job's limit (the broker's, in a worker); 0: default
    uint64_t soft_timeout_ms;  //  0: none
} s_job_opts_t;

//  Runs command for a job with an empty payload and these options; returns
//  the handler's rc, the job in *job_p.
static int
s_run_opts (const char *command, s_job_opts_t opts, arb_job_t **job_p)
{
    arb_exec_t *exec = arb_exec_new (command);
    arb_exec_set_route (exec, opts.route);
    *job_p = arb_job_new (7, "t", NULL, "", 0);
    if (opts.max_payload)
        arb_job_set_max_payload (*job_p, opts.max_payload);
    arb_job_set_soft_timeout (*job_p, opts.soft_timeout_ms);
    int rc = arb_exec_run (exec, *job_p);
    arb_exec_destroy (&exec);
    return rc;
}

static void
s_assert_result (arb_job_t *job, const char *expected)
{
    size_t size;
    const uint8_t *data = arb_job_result (job, &size);
    assert_int_equal (size, strlen (expected));
    assert_memory_equal (data, expected, size);
}

//  Polls until a process is gone: no such pid, or a zombie nobody of ours
//  will reap (an orphan waiting for init). Returns true if so within ms.
static bool
s_process_gone (pid_t pid, int ms)
{
    for (int64_t end = zclock_mono () + ms; zclock_mono () < end; zclock_sleep (10)) {
        if (kill (pid, 0) != 0 && errno == ESRCH)
            return true;
        char path[64], stat[256] = "";
        snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
        FILE *file = fopen (path, "r");
        if (file) {
            size_t n = fread (stat, 1, sizeof (stat) - 1, file);
            stat[n] = '\0';
            fclose (file);
        }
        char *state = strrchr (stat, ')');
        if (state && state[1] == ' ' && state[2] == 'Z')
            return true;
    }
    return false;
}

//  Files in the test's $TMPDIR (set in main), where arb_exec makes its
//  temporary files.
static int
s_tmpdir_files (void)
{
    DIR *dir = opendir (getenv ("TMPDIR"));
    assert_non_null (dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            count++;
    closedir (dir);
    return count;
}

//  Reads a number a command wrote to a file, waiting for it up to ms.
static long
s_read_number (const char *path, int ms)
{
    for (int64_t end = zclock_mono () + ms; zclock_mono () < end; zclock_sleep (10)) {
        FILE *file = fopen (path, "r");
        long n = 0;
        int got = file ? fscanf (file, "%ld", &n) : 0;
        if (file)
            fclose (file);
        if (got == 1 && n > 0)
            return n;
    }
    return -1;
}

static void
test_payload_in_result_out (void **state)
{
    (void) state;
    arb_job_t *job;
    assert_int_equal (s_run ("tr a-z A-Z", "hello world", 11, &job), 0);
    s_assert_result (job, "HELLO WORLD");
    assert_string_equal (arb_job_error (job), "");
    arb_job_destroy (&job);

    //  an empty payload is an empty stdin
    assert_int_equal (s_run ("wc -c", "", 0, &job), 0);
    s_assert_result (job, "0\n");
    arb_job_destroy (&job);
}

static void
test_failure_has_stderr_tail (void **state)
{
    (void) state;
    arb_job_t *job;
    assert_int_equal (s_run ("echo out; echo first >&2; echo 'it broke' >&2; exit 3", "", 0, &job),
                      -1);
    assert_string_equal (arb_job_error (job), "first\nit broke");
    arb_job_destroy (&job);

    assert_int_equal (s_run ("exit 4", "", 0, &job), -1);
    assert_string_equal (arb_job_error (job), "exit status 4");
    arb_job_destroy (&job);

    assert_int_equal (s_run ("kill -9 $$", "", 0, &job), -1);
    assert_string_equal (arb_job_error (job), "killed by signal 9");
    arb_job_destroy (&job);
}

static void
test_stderr_tail_is_bounded (void **state)
{
    (void) state;
    arb_job_t *job;
    //  10,000 bytes of stderr with a NUL and a final marker
    const char *command = "head -c 10000 /dev/zero | tr '\\0' a >&2; printf 'x\\000y END\\n' >&2; "
                          "exit 1";
    assert_int_equal (s_run (command, "", 0, &job), -1);
    const char *error = arb_job_error (job);
    assert_true (strlen (error) <= ARB_EXEC_TAIL);
    assert_true (strlen (error) > 4000);
    assert_string_equal (error + strlen (error) - 8, "ax.y END");
    arb_job_destroy (&job);
}

static void
test_big_payload_through_cat (void **state)
{
    (void) state;
    size_t size = 5 * 1000 * 1000;
    uint8_t *payload = (uint8_t *) malloc (size);
    for (size_t i = 0; i < size; i++)
        payload[i] = (uint8_t) (i * 7 + (i >> 13));
    arb_job_t *job;
    assert_int_equal (s_run ("cat", payload, size, &job), 0);
    size_t got;
    const uint8_t *result = arb_job_result (job, &got);
    assert_int_equal (got, size);
    assert_memory_equal (result, payload, size);
    arb_job_destroy (&job);

    //  a command that never reads its stdin must not hurt the worker
    assert_int_equal (s_run ("echo done", payload, size, &job), 0);
    s_assert_result (job, "done\n");
    arb_job_destroy (&job);
    free (payload);
}

static void
test_result_too_large (void **state)
{
    (void) state;
    arb_exec_t *exec = arb_exec_new ("yes");  //  endless output: stopped
    arb_exec_set_max_output (exec, 100000);
    arb_job_t *job = arb_job_new (1, "t", NULL, "", 0);
    assert_int_equal (arb_exec_run (exec, job), -1);
    assert_non_null (strstr (arb_job_error (job), "result of more than "));
    assert_non_null (strstr (arb_job_error (job), " bytes is over the 100000-byte limit"));
    arb_job_destroy (&job);
    arb_exec_destroy (&exec);
    //  a little too much is counted to its end; the job's smaller limit (the
    //  broker's, in a worker) wins over the runner's
    assert_int_equal (s_run_opts ("head -c 5000 /dev/zero; echo done >&2",
                                  (s_job_opts_t){.max_payload = 1024}, &job),
                      -1);
    assert_string_equal (arb_job_error (job), "result of 5000 bytes is over the 1024-byte limit");
    arb_job_destroy (&job);
    //  routing: a line that long cannot be an item
    assert_int_equal (
        s_run_opts ("printf 'q\\tok\\n'; head -c 3000 /dev/zero | tr '\\0' x; sleep 30",
                    (s_job_opts_t){.route = true, .max_payload = 1024}, &job),
        -1);
    assert_string_equal (arb_job_error (job), "route: line 2 is over the 1024-byte limit");
    assert_int_equal (arb_job_emitted (job), 1);
    arb_job_destroy (&job);
    //  the same two lines in one write, so in one read: the first is still
    //  an item (it was counted with the second against the limit, so that
    //  line 1 was too long, seen once under load)
    assert_int_equal (
        s_run_opts ("printf 'q\\tok\\n%s' \"$(head -c 3000 /dev/zero | tr '\\0' x)\"; "
                    "sleep 30",
                    (s_job_opts_t){.route = true, .max_payload = 1024}, &job),
        -1);
    assert_string_equal (arb_job_error (job), "route: line 2 is over the 1024-byte limit");
    assert_int_equal (arb_job_emitted (job), 1);
    arb_job_destroy (&job);
}

//  The soft timeout: SIGUSR1 to the command's group, which a command may
//  trap to wrap up; without a trap it ends the command.
static void
test_soft_timeout_warns_the_command (void **state)
{
    (void) state;
    arb_job_t *job = arb_job_new (1, "t", NULL, "", 0);
    arb_job_set_soft_timeout (job, 60000);
    assert_false (arb_job_is_soft_timed_out (job));
    arb_job_set_soft_timeout (job, 0);
    assert_false (arb_job_is_soft_timed_out (job));
    arb_job_destroy (&job);
    s_job_opts_t soft = {.soft_timeout_ms = 200};
    assert_int_equal (s_run_opts ("trap 'echo warned; exit 0' USR1; sleep 30 & wait", soft, &job),
                      0);
    s_assert_result (job, "warned\n");
    assert_true (arb_job_is_soft_timed_out (job));
    arb_job_destroy (&job);
    assert_int_equal (s_run_opts ("sleep 30", soft, &job), -1);
    assert_string_equal (arb_job_error (job), "ended by its soft timeout (SIGUSR1 after 0.2 s)");
    arb_job_destroy (&job);
}

static void
test_environment (void **state)
{
    (void) state;
    setenv ("ARBITER_QUEUE", "stale", 1);  //  the task's value must win
    setenv ("TEST_EXEC_KEPT", "kept", 1);
    arb_exec_t *exec =
        arb_exec_new ("printf '%s|%s|%s|%s|%s' \"$ARBITER_TASK_ID\" \"$ARBITER_ATTEMPT\" "
                      "\"$ARBITER_TASK_NAME\" \"$ARBITER_QUEUE\" \"$TEST_EXEC_KEPT\"");
    arb_job_t *job = arb_job_new (18446744073709551615ull, "resize", "images", "", 0);
    arb_job_set_attempt (job, 2);
    assert_int_equal (arb_exec_run (exec, job), 0);
    s_assert_result (job, "18446744073709551615|2|resize|images|kept");
    arb_job_destroy (&job);
    arb_exec_destroy (&exec);
    unsetenv ("ARBITER_QUEUE");
    unsetenv ("TEST_EXEC_KEPT");
}

static void
test_parents_file (void **state)
{
    (void) state;
    //  read twice, once from a nested shell: each open starts afresh
    arb_exec_t *exec = arb_exec_new ("cat \"$ARBITER_PARENTS\" >/dev/null; "
                                     "sh -c 'cat \"$ARBITER_PARENTS\"'; "
                                     "printf '\\n%s' \"$ARBITER_PARENTS\"");
    arb_job_t *job = arb_job_new (9, "join", NULL, "", 0);
    arb_job_add_parent (job, "a", 1, "{\"x\": 1}", 8);
    arb_job_add_parent (job, "b", 2, "plain text", 10);
    arb_job_add_parent (job, NULL, 77, "\xff\x00", 2);
    arb_job_add_parent (job, "n", 3, "42", 2);
    assert_int_equal (arb_exec_run (exec, job), 0);

    size_t size;
    const char *out = (const char *) arb_job_result (job, &size);
    char *text = strndup (out, size);
    char *newline = strchr (text, '\n');
    assert_non_null (newline);
    *newline = '\0';
    json_error_t error;
    json_t *parents = json_loads (text, JSON_ALLOW_NUL, &error);
    if (!parents)
        fprintf (stderr, "json: %s in %s\n", error.text, text);
    assert_non_null (parents);
    assert_int_equal (json_object_size (parents), 4);
    json_t *a = json_object_get (parents, "a");
    assert_int_equal (json_integer_value (json_object_get (a, "id")), 1);
    assert_string_equal (json_string_value (json_object_get (a, "state")), "succeeded");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (a, "result"), "x")), 1);
    assert_true (json_is_null (json_object_get (a, "error")));
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (parents, "b"), "result")),
        "plain text");
    json_t *bytes = json_object_get (json_object_get (parents, "77"), "result");
    assert_int_equal (json_string_length (bytes), 3);  //  U+00FF (2 bytes) and U+0000
    assert_memory_equal (json_string_value (bytes), "\xc3\xbf\x00", 3);
    assert_int_equal (
        json_integer_value (json_object_get (json_object_get (parents, "n"), "result")), 42);
    json_decref (parents);

    //  a descriptor of a file that is already deleted
    assert_string_equal (newline + 1, "/dev/fd/3");
    assert_int_equal (s_tmpdir_files (), 0);
    free (text);
    arb_job_destroy (&job);
    arb_exec_destroy (&exec);

    //  a task without parents gets an empty object
    assert_int_equal (s_run ("cat \"$ARBITER_PARENTS\"", "", 0, &job), 0);
    s_assert_result (job, "{}");
    arb_job_destroy (&job);
}

//  A parent that did not succeed, as a task that runs on its failure sees
//  it: its state and error, and no result.
static void
test_parents_file_tells_failure (void **state)
{
    (void) state;
    arb_msg_t *dispatch = arb_msg_new (ARB_MSG_DISPATCH, 0);
    arb_dispatch_body_t *body = arb_msg_dispatch (dispatch);
    arb_dispatch_task_t *task =
        (arb_dispatch_task_t *) arb_msg_grow (dispatch, &body->tasks, sizeof (*task), 1);
    task->id = 30;
    task->name = "alert";
    task->payload = zframe_new_empty ();
    arb_parent_info_t *parents =
        (arb_parent_info_t *) arb_msg_grow (dispatch, &task->parents, sizeof (*parents), 2);
    parents[0] = (arb_parent_info_t){
        .name = "load", .id = 28, .state = ARB_STATE_DEAD, .error = "disk full\nat row 7"};
    parents[1] = (arb_parent_info_t){.name = "gone", .id = 29, .state = ARB_STATE_CANCELLED};
    arb_job_t *job = arb_job_new_idle ();
    arb_job_start (job, task);  //  borrows the parents: dispatch stays until the job is done
    arb_exec_t *exec = arb_exec_new ("cat \"$ARBITER_PARENTS\"");
    assert_int_equal (arb_exec_run (exec, job), 0);
    size_t size;
    const char *out = (const char *) arb_job_result (job, &size);
    json_t *got = json_loadb (out, size, 0, NULL);
    assert_non_null (got);
    json_t *load = json_object_get (got, "load");
    assert_int_equal (json_integer_value (json_object_get (load, "id")), 28);
    assert_string_equal (json_string_value (json_object_get (load, "state")), "dead");
    assert_string_equal (json_string_value (json_object_get (load, "error")),
                         "disk full\nat row 7");
    assert_true (json_is_null (json_object_get (load, "result")));
    json_t *gone = json_object_get (got, "gone");
    assert_string_equal (json_string_value (json_object_get (gone, "state")), "cancelled");
    assert_true (json_is_null (json_object_get (gone, "error")));
    json_decref (got);
    arb_job_destroy (&job);
    arb_msg_destroy (&dispatch);
    arb_exec_destroy (&exec);
}

static void
test_args_file (void **state)
{
    (void) state;
    arb_exec_t *exec = arb_exec_new ("od -An -tx1 \"$ARBITER_ARGS\" | tr -d ' \\n'; "
                                     "printf '|%s' \"$ARBITER_ARGS\"");
    arb_job_t *job = arb_job_new (3, "step", NULL, "input", 5);
    arb_job_set_args (job, "a\0\xff", 3);
    assert_int_equal (arb_exec_run (exec, job), 0);
    size_t size;
    const char *out = (const char *) arb_job_result (job, &size);
    char *text = strndup (out, size);
    assert_string_equal (text, "6100ff|/dev/fd/4");
    free (text);
    arb_job_destroy (&job);
    arb_exec_destroy (&exec);

    //  no args: an empty file
    assert_int_equal (s_run ("wc -c < \"$ARBITER_ARGS\"", "", 0, &job), 0);
    s_assert_result (job, "0\n");
    arb_job_destroy (&job);
}

static void
test_leftovers_are_killed (void **state)
{
    (void) state;
    //  the background sleep holds stdout open; the run must still end
    //  when the shell exits, and take the sleep with it
    arb_job_t *job;
    int64_t started = zclock_mono ();
    assert_int_equal (s_run ("sleep 30 & echo $!", "", 0, &job), 0);
    assert_true (zclock_mono () - started < 5000);
    size_t size;
    const char *out = (const char *) arb_job_result (job, &size);
    long pid = strtol (out, NULL, 10);
    assert_true (pid > 0);
    assert_true (s_process_gone ((pid_t) pid, 3000));
    arb_job_destroy (&job);
}

typedef struct {
    arb_exec_t *exec;
    arb_job_t *job;
    int rc;
} s_bg_t;

static void *
s_bg_run (void *arg)
{
    s_bg_t *bg = (s_bg_t *) arg;
    bg->rc = arb_exec_run (bg->exec, bg->job);
    return NULL;
}

//  Starts command in a thread, waits for the pid it writes to a file,
//  cancels the job and checks the run ends within the grace (plus slack).
static void
s_cancel_case (const char *script, int grace_ms, long *pid_out)
{
    char dir[] = "/tmp/test-exec-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char pidfile[128], command[512];
    snprintf (pidfile, sizeof (pidfile), "%s/pid", dir);
    snprintf (command, sizeof (command), script, pidfile);
    s_bg_t bg = {arb_exec_new (command), arb_job_new (5, "slow", NULL, "", 0), 0};
    arb_exec_set_grace (bg.exec, grace_ms);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_bg_run, &bg), 0);
    long pid = s_read_number (pidfile, 5000);
    assert_true (pid > 0);
    //  while the command runs, its temporary files are already deleted: a
    //  kill of this process (a heavy slot's stop) could leave nothing behind
    assert_int_equal (s_tmpdir_files (), 0);
    int64_t cancelled_at = zclock_mono ();
    arb_job_cancel (bg.job);
    pthread_join (thread, NULL);
    int64_t took = zclock_mono () - cancelled_at;
    assert_true (took < grace_ms + ARB_EXEC_CHECK_MS + 500);
    assert_int_equal (bg.rc, -1);
    assert_string_equal (arb_job_error (bg.job), "cancelled");
    *pid_out = pid;
    arb_job_destroy (&bg.job);
    arb_exec_destroy (&bg.exec);
    unlink (pidfile);
    rmdir (dir);
}

static void
test_cancel_kills_process_group (void **state)
{
    (void) state;
    //  the shell's process group (field 5 of its stat): its keeper's
    long pgid;
    s_cancel_case ("cut -d' ' -f5 /proc/$$/stat > %s; exec sleep 30", 2000, &pgid);
    //  the command had a group of its own, and nothing of it is left
    assert_int_equal (kill ((pid_t) -pgid, 0), -1);
    assert_int_equal (errno, ESRCH);
}

static void
test_cancel_escalates_to_sigkill (void **state)
{
    (void) state;
    //  a command that ignores SIGTERM is killed after the grace
    long pid;
    int64_t started = zclock_mono ();
    s_cancel_case ("trap '' TERM; echo $$ > %s; while :; do sleep 1; done", 300, &pid);
    assert_true (zclock_mono () - started >= 300);
    assert_true (s_process_gone ((pid_t) pid, 1000));
}

int
main (void)
{
    char tmpdir[] = "/tmp/test-exec-tmp-XXXXXX";
    assert (mkdtemp (tmpdir));
    setenv ("TMPDIR", tmpdir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_payload_in_result_out),
        cmocka_unit_test (test_failure_has_stderr_tail),
        cmocka_unit_test (test_stderr_tail_is_bounded),
        cmocka_unit_test (test_big_payload_through_cat),
        cmocka_unit_test (test_result_too_large),
        cmocka_unit_test (test_soft_timeout_warns_the_command),
        cmocka_unit_test (test_environment),
        cmocka_unit_test (test_parents_file),
        cmocka_unit_test (test_parents_file_tells_failure),
        cmocka_unit_test (test_args_file),
        cmocka_unit_test (test_leftovers_are_killed),
        cmocka_unit_test (test_cancel_kills_process_group),
        cmocka_unit_test (test_cancel_escalates_to_sigkill),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    if (rmdir (tmpdir) != 0) {
        fprintf (stderr, "test_exec: files left in %s\n", tmpdir);
        failed++;
    }
    return failed;
}
