/*  journal_files.c — see journal_files.h. */

#include "journal_files.h"
#include "arb_journal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

void
journal_files_copy (const char *from, const char *to)
{
    unlink (to);
    FILE *in = fopen (from, "rb");
    if (!in)
        return;
    FILE *out = fopen (to, "wb");
    assert_non_null (out);
    char buffer[65536];
    size_t n;
    while ((n = fread (buffer, 1, sizeof (buffer), in)) > 0)
        assert_int_equal (fwrite (buffer, 1, n, out), n);
    fclose (in);
    fclose (out);
}

void
journal_files_copy_journal (const char *path, const char *copy)
{
    const char *suffixes[] = {"", "-wal", "-shm", ARB_JOURNAL_LOG_SUFFIX, ARB_JOURNAL_LOG2_SUFFIX};
    for (size_t i = 0; i < sizeof (suffixes) / sizeof (suffixes[0]); i++) {
        char from[320], to[320];
        snprintf (from, sizeof (from), "%s%s", path, suffixes[i]);
        snprintf (to, sizeof (to), "%s%s", copy, suffixes[i]);
        journal_files_copy (i == 2 ? "" : from, to);
    }
}
