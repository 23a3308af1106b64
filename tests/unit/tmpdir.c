/*  tmpdir.c — a test's own directory under /tmp; see tmpdir.h. */

#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

void
tmpdir_make (char *dir, size_t size, const char *name)
{
    int length = snprintf (dir, size, "/tmp/arb-%s-XXXXXX", name);
    assert_true (length > 0 && (size_t) length < size);
    assert_non_null (mkdtemp (dir));
}

void
tmpdir_remove (const char *dir)
{
    char cmd[256];
    int length = snprintf (cmd, sizeof (cmd), "rm -rf '%s'", dir);
    assert_true (length > 0 && (size_t) length < sizeof (cmd));
    assert_int_equal (system (cmd), 0);
}

int
tmpdir_fixture (void **state, const char *name, const char *file)
{
    tmpdir_fixture_t *fx = (tmpdir_fixture_t *) calloc (1, sizeof (tmpdir_fixture_t));
    assert_non_null (fx);
    tmpdir_make (fx->dir, sizeof (fx->dir), name);
    int length = snprintf (fx->path, sizeof (fx->path), "%s/%s", fx->dir, file);
    assert_true (length > 0 && (size_t) length < sizeof (fx->path));
    *state = fx;
    return 0;
}

int
tmpdir_fixture_end (void **state)
{
    tmpdir_fixture_t *fx = (tmpdir_fixture_t *) *state;
    tmpdir_remove (fx->dir);
    free (fx);
    return 0;
}
