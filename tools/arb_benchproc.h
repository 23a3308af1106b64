/*  arb_benchproc.h — the processes a benchmark of tools/ starts and
    looks at (arbiter-bench, arbiter-kestrel-bench): a broker on a fresh
    journal in a temporary directory, other programs, their memory.
*/

#ifndef ARB_BENCHPROC_H
#define ARB_BENCHPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

//  A broker started on a fresh journal.
typedef struct {
    pid_t pid;
    char endpoint[64];  //  tcp://127.0.0.1:PORT
    char dir[64];       //  its temporary directory (the journal)
} arb_benchproc_broker_t;

//  Finds a program of the project the benchmark runs (option names it
//  for the message): path if it can be run from here; else, a relative
//  path, from the project's root the benchmark's own binary was built in
//  (<root>/build/tools/<it>); else its file name on $PATH (an installed
//  copy). Writes what it found to out (size bytes): 0, or -1 after
//  saying on stderr what is missing, so that a benchmark stops at once
//  rather than wait for a program that cannot start.
int arb_benchproc_find (const char *path, const char *option, char *out, size_t size);

//  A free loopback port, or -1.
int arb_benchproc_free_port (void);

//  Runs argv (argv[0] a path) in a child process. Returns its pid. Every
//  child of these spawns gets SIGTERM when the benchmark dies, however it
//  dies (a pipe closed on its output, kill -9): none is left running.
pid_t arb_benchproc_spawn (char *const argv[]);

//  The same with its output (stdout and stderr) appended to the file log
//  (NULL: inherited).
pid_t arb_benchproc_spawn_log (char *const argv[], const char *log);

//  Runs argv (argv[0] a path) in a session of its own, in dir (NULL: this
//  one), with env (NULL: ours), its output appended to log. Returns its pid.
pid_t arb_benchproc_spawn_logged (char *const argv[],
                                  const char *dir,
                                  const char *log,
                                  char *const env[]);

#define ARB_BENCHPROC_STOP_MS 30000  //  a process stops this soon after SIGTERM, or is killed

//  SIGTERM, then waits for the process, ARB_BENCHPROC_STOP_MS at most:
//  0, or -1 when it had to be killed (said on stderr). Accepts pid <= 0.
int arb_benchproc_stop (pid_t pid);

//  Starts arbiterd (path) with --sync sync on a journal of its own, and
//  waits until it answers a ping; its output goes to arbiterd.log in its
//  directory. Returns 0, or -1 (then stopped and
//  cleaned up).
int arb_benchproc_start_broker (arb_benchproc_broker_t *broker, const char *path, const char *sync);

//  The same with more arguments for arbiterd (extra: NULL-terminated, or
//  NULL). With reuse, broker->dir (set by an earlier start) is kept and its
//  journal opened again, on a new port. The broker counts as ready when its
//  port takes a TCP connection and it then answers a ping (checked every
//  millisecond, so that a start-up can be timed); waits at most
//  timeout_ms. Returns 0, or -1 (then stopped; the directory is removed
//  unless reuse).
int arb_benchproc_start_broker_with (arb_benchproc_broker_t *broker,
                                     const char *path,
                                     const char *sync,
                                     char *const *extra,
                                     bool reuse,
                                     int timeout_ms);

//  Stops the broker and removes its directory: 0, or -1 when it did not
//  stop on SIGTERM (killed; its directory kept and its log's end shown).
int arb_benchproc_stop_broker (arb_benchproc_broker_t *broker);

//  A rabbitmq-server of its own (Debian's package, for arbiter-peers and
//  arbiter-amqp-bench): a temporary directory for its data, logs and HOME,
//  node name PREFIX<pid>_<n>@localhost, its own epmd (a child of ours, so
//  that it stops by PID), AMQP and distribution ports on 127.0.0.1, no
//  plugins, a clean environment.
typedef struct {
    pid_t pid;      //  the rabbitmq-server script
    pid_t epmd;     //  its epmd
    int port;       //  AMQP
    char dir[64];   //  its temporary directory
    char log[128];  //  the output of both, in dir
} arb_benchproc_rabbit_t;

//  Starts one and waits until ready (port, arg) says yes (two minutes at
//  most), copying the end of its log to stderr if it does not start.
//  Returns 0, or -1 (stopped and cleaned up).
int arb_benchproc_start_rabbit (arb_benchproc_rabbit_t *rabbit,
                                const char *prefix,
                                bool (*ready) (int port, void *arg),
                                void *arg);

//  Stops it (the node by the PID in its pid file, then the script and
//  epmd) and removes its directory. Accepts one never started.
void arb_benchproc_stop_rabbit (arb_benchproc_rabbit_t *rabbit);

//  A /proc/PID/status figure in KiB ("VmHWM:", "VmRSS:"), or -1.
long arb_benchproc_kb (pid_t pid, const char *field);

//  A payload of size bytes (letters; NUL after them), to free.
char *arb_benchproc_payload (int size);

#endif
