/*  arb_journal_faults.h — for test builds only: an SQLite VFS that fails
    the journal's writes when a test says so, as a full or failing disk
    would (beanstalkd's binlog tests swap a function, SQLite's own tests a
    VFS; this is the latter).

    Part of the journal module (it includes sqlite3.h), compiled only into
    test binaries: the journal opens through it when it is built with
    ARB_JOURNAL_FAULTS (build/tests/arbiterd-faults and the unit tests
    that link libarbbroker_faults.a). arbiterd, and everything scons
    installs, is built without it: nothing in it reads the variable below,
    so no setting can turn faults on in production.

    What fails is read from a control file, named by the environment
    variable ARBITER_JOURNAL_FAULTS when the VFS is first registered, at
    every write and sync of a journal's database or WAL file, so that a
    test can change it while the broker runs (absent variable or file:
    nothing fails). Its first word:

      full    every write fails with SQLITE_FULL, as on a disk without space
      ioerr   every write fails with SQLITE_IOERR_WRITE, as on a disk that errs
      fsync   every sync fails with SQLITE_IOERR_FSYNC
      unmake  the task log's syncs fail, and so does zeroing the header of
              the record that failed (SQLite's files are not failed)
      (else)  nothing fails

    Reads, the -shm file and temporary files are never failed.

    The VFS is registered once per process (SQLite's registry of VFSes is
    the process's) and lives as long as it. Runs in the journal's thread.
*/

#ifndef ARB_JOURNAL_FAULTS_H
#define ARB_JOURNAL_FAULTS_H

#include "arb_tasklog.h"

#include <stdbool.h>

#define ARB_JOURNAL_FAULTS_ENV "ARBITER_JOURNAL_FAULTS"

//  Registers the VFS on first use and returns its name, for
//  sqlite3_open_v2; NULL (SQLite's default VFS) if it could not be made.
const char *arb_journal_faults_vfs (void);

//  For the task log (arb_tasklog.h): the errno a step of its append fails
//  with now, by the same control file: at the write ENOSPC for full and
//  EIO for ioerr; at the sync EIO for fsync; at the sync and the unmaking
//  EIO for unmake; 0: none.
int arb_journal_faults_errno (arb_tasklog_step_t step);

#endif
