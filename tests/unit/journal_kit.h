/*  journal_kit.h — what the journal's unit tests share (test_journal.c,
    test_journal_log.c): their fixture, the tasks and rows they store,
    counts read from the file behind the journal's back, the test VFS's
    faults (arb_journal_faults.h), and the log caught while a call runs. */

#ifndef JOURNAL_KIT_H
#define JOURNAL_KIT_H

#include "arb_journal.h"
#include "arb_queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//  The cmocka setup and teardown: a directory of the test's own, and the
//  journal's path in it (tmpdir_fixture_t), "sub/j.db" (sub not made).
int journal_kit_setup (void **state);
int journal_kit_teardown (void **state);

//  For main: czmq set up, its log to stderr, and the test VFS's control
//  file, of this process, named in the environment (control: its path, of
//  size bytes); then its removal.
void journal_kit_faults_begin (char *control, size_t size);
void journal_kit_faults_end (const char *control);

//  Tells the test VFS how writes go from now on (arb_journal_faults.h).
void journal_kit_disk (const char *mode);

//  A task of queue, id and state, named "job", priority id, created at
//  1000 + id, three attempts; destroyed by journal_kit_task_destroy.
arb_task_t *journal_kit_task_new (arb_queue_t *queue, uint64_t id, int state);
void journal_kit_task_destroy (arb_task_t **task_p);

//  Inserts a ready task of id into the turn, a payload of size bytes of
//  fill: a plain row, which the batch holds.
void journal_kit_held (arb_journal_t *j, arb_queue_t *q, uint64_t id, size_t size, char fill);

//  The number the first column of sql's first row holds, read from the
//  file at path by a connection of its own.
int journal_kit_count_rows (const char *path, const char *sql);

//  Whether task id is in the journal; if so, it is asserted to be of
//  queue "q" and named "job", as the tests store theirs.
bool journal_kit_has_task (arb_journal_t *j, uint64_t id);

//  The id floor the journal holds (broker.id_floor).
uint64_t journal_kit_id_floor (arb_journal_t *j);

//  An arb_journal_purge callback: counts into the int at arg, keeps none.
bool
journal_kit_count_purged (void *arg, uint64_t id, const char *queue, int state, bool has_children);

//  The log, caught while a call runs (journal_kit_log_start ...
//  journal_kit_log_end).
typedef struct {
    char *text;    //  what was logged: the caller's from journal_kit_log_end
    size_t size;   //  its bytes
    FILE *stream;  //  owned: open from journal_kit_log_start to _end
} journal_kit_log_t;

void journal_kit_log_start (journal_kit_log_t *log);

//  The text logged since journal_kit_log_start (caller frees); it goes to
//  stderr too.
char *journal_kit_log_end (journal_kit_log_t *log);

#endif
