/*  tmpdir.h — for the unit tests that write files: a directory of their
    own under /tmp, and its removal with everything in it. */

#ifndef TMPDIR_H
#define TMPDIR_H

#include <stddef.h>

//  Makes /tmp/arb-NAME-XXXXXX (mkdtemp) into dir, of size bytes; fails
//  the test if it cannot.
void tmpdir_make (char *dir, size_t size, const char *name);

//  Removes dir and everything in it; fails the test if it cannot.
void tmpdir_remove (const char *dir);

//  A test's directory and the path of the file it writes there.
typedef struct {
    char dir[64];
    char path[96];
} tmpdir_fixture_t;

//  For a cmocka setup: *state becomes a fixture whose directory is new
//  (tmpdir_make, NAME) and whose path is dir/file (file not made). 0.
int tmpdir_fixture (void **state, const char *name, const char *file);

//  The cmocka teardown of it: the directory removed, the fixture freed.
int tmpdir_fixture_end (void **state);

#endif
