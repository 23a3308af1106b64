/*  journal_files.h — for the unit tests that look at a journal's files:
    copies of them as a crash would leave them. */

#ifndef JOURNAL_FILES_H
#define JOURNAL_FILES_H

//  Copies the file at from to to; removes to if from does not exist.
void journal_files_copy (const char *from, const char *to);

//  Copies the journal at path to copy as a crash of its broker would
//  leave it: its file, WAL and task log (SQLite rebuilds the -shm, which
//  is removed). The journal at path may stay open: its process is the
//  caller's, so nothing writes it meanwhile.
void journal_files_copy_journal (const char *path, const char *copy);

#endif
