/*  fuzz_tasklog.c — libFuzzer target for the replay of the journal's task
    log at open (broker/arb_tasklog.c, arb_journal_batch.c).

    For each input a journal is made anew under /dev/shm (else /tmp), then
    its -tasklog file is written from the input, and the journal opened
    again over it: the replay reads the file, applies the records of the
    tables' generation and checkpoints them. The input is chunks, each a
    kind byte and what follows it:

      0  a record of the tables' generation whose body is the next bytes
         (a u16 length, then as many): a sound checksum around a body that
         is anything
      1  the same, of another generation (the replay must stop there)
      2  raw bytes (a u16 length, then as many): a torn or foreign tail
      3  a record with a body built to be sound from the next bytes: up
         to four rows (any id and priority; mostly a state a broker writes
         and names of letters, else any state and name bytes; headers or
         none; a payload) and four drops

    The open may refuse the log (a record it cannot use: the broker then
    will not start) but never crash, assert or leak; when it opens, every
    open task it hands the broker at start has a usable id, queue and
    name, and every payload asked for by id is read or refused cleanly.
    Seeds: tests/fuzz/corpus/tasklog.

        scons fuzz && build/fuzz/fuzz_tasklog -max_total_time=60 tests/fuzz/corpus/tasklog
*/

#include "arb_journal.h"
#include "arb_tasklog.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define CHUNKS_MAX 32

static struct {
    char dir[64];
    char path[96];
    char log[128];
    char template[96];  //  a new journal, closed: each input's starts as a copy
} s_fx;

static void
s_fail (const char *what)
{
    fprintf (stderr, "fuzz_tasklog: %s\n", what);
    abort ();
}

typedef struct {
    const uint8_t *at, *end;
} s_in_t;

static uint8_t
s_byte (s_in_t *in)
{
    return in->at < in->end ? *in->at++ : 0;
}

static uint16_t
s_u16 (s_in_t *in)
{
    uint16_t high = s_byte (in);
    return (uint16_t) (high << 8 | s_byte (in));
}

//  Copies up to size bytes of the input into out (zeros past its end).
static void
s_bytes (s_in_t *in, uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++)
        out[i] = s_byte (in);
}

static uint32_t
s_crc (uint32_t crc, const void *data, size_t size)
{
    const uint8_t *p = (const uint8_t *) data;
    crc = ~crc;
    while (size--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

//  A record as arb_tasklog.h lays it out, with a sound checksum.
static void
s_record (FILE *file, uint64_t gen, const uint8_t *body, uint32_t size)
{
    uint32_t crc = s_crc (s_crc (s_crc (0, &gen, 8), &size, 4), body, size);
    uint32_t magic = ARB_TASKLOG_MAGIC, pad = 0;
    fwrite (&magic, 4, 1, file);
    fwrite (&size, 4, 1, file);
    fwrite (&gen, 8, 1, file);
    fwrite (&crc, 4, 1, file);
    fwrite (&pad, 4, 1, file);
    fwrite (body, 1, size, file);
}

//  A body sound by arb_journal_batch.c's format: counts, rows (a 56-byte
//  head, then queue, name, headers, payload, padded to 8), drops.
static size_t
s_sound_body (s_in_t *in, uint8_t *body)
{
    uint32_t rows = s_byte (in) % 5, drops = s_byte (in) % 5;
    memcpy (body, &rows, 4);
    memcpy (body + 4, &drops, 4);
    size_t at = 8;
    for (uint32_t r = 0; r < rows; r++) {
        uint64_t id = (uint64_t) s_u16 (in) + 1, created = s_u16 (in);
        int64_t max_attempts = (int8_t) s_byte (in);
        //  mostly what a broker writes (a state from waiting to ready, names
        //  of letters), so that the replay goes on past the row; the rest
        //  anything
        uint8_t kind = s_byte (in);
        int32_t state = kind & 0x80 ? (int8_t) s_byte (in) : 1 + s_byte (in) % 3;
        int32_t priority = (int8_t) s_byte (in);
        uint32_t queue = s_byte (in) % 8 + 1, name = s_byte (in) % 8 + 1;
        uint8_t h = s_byte (in);
        uint32_t headers = h % 4 == 0 ? UINT32_MAX : h % 16;
        uint32_t payload = s_byte (in) % 32, unwatched = s_byte (in) & 1, pad = 0;
        uint8_t *head = body + at;
        memcpy (head, &id, 8);
        memcpy (head + 8, &created, 8);
        memcpy (head + 16, &max_attempts, 8);
        memcpy (head + 24, &state, 4);
        memcpy (head + 28, &priority, 4);
        memcpy (head + 32, &queue, 4);
        memcpy (head + 36, &name, 4);
        memcpy (head + 40, &headers, 4);
        memcpy (head + 44, &payload, 4);
        memcpy (head + 48, &unwatched, 4);
        memcpy (head + 52, &pad, 4);
        size_t bytes = queue + name + (headers == UINT32_MAX ? 0 : headers) + payload;
        s_bytes (in, body + at + 56, bytes);
        if (!(kind & 0x40))
            for (size_t c = 0; c < queue + name; c++)
                body[at + 56 + c] = (uint8_t) ('a' + body[at + 56 + c] % 26);
        size_t padded = (bytes + 7) & ~(size_t) 7;
        memset (body + at + 56 + bytes, 0, padded - bytes);
        at += 56 + padded;
    }
    for (uint32_t d = 0; d < drops; d++) {
        uint64_t id = (uint64_t) s_u16 (in) + 1;
        memcpy (body + at, &id, 8);
        at += 8;
    }
    return at;
}

static void
s_write_log (s_in_t *in)
{
    FILE *file = fopen (s_fx.log, "wb");
    if (!file)
        s_fail ("cannot write the log");
    static uint8_t body[70000];  //  4 rows of at most 56 + 64 bytes, or a u16's worth
    for (int chunk = 0; chunk < CHUNKS_MAX && in->at < in->end; chunk++) {
        uint8_t kind = s_byte (in) % 4;
        if (kind == 3) {
            size_t size = s_sound_body (in, body);
            s_record (file, 0, body, (uint32_t) size);
            continue;
        }
        uint16_t size = s_u16 (in);
        s_bytes (in, body, size);
        if (kind == 2)
            fwrite (body, 1, size, file);
        else
            s_record (file, kind == 0 ? 0 : 7, body, size);
    }
    fclose (file);
}

//  Removes a journal's files, the task log's among them.
static void
s_remove (const char *journal)
{
    const char *suffixes[] = {"", "-wal", "-shm", ".lock", ARB_JOURNAL_LOG_SUFFIX};
    for (size_t i = 0; i < sizeof (suffixes) / sizeof (suffixes[0]); i++) {
        char path[160];
        snprintf (path, sizeof (path), "%s%s", journal, suffixes[i]);
        unlink (path);
    }
}

static void
s_cleanup (void)
{
    s_remove (s_fx.path);
    s_remove (s_fx.template);
    rmdir (s_fx.dir);
}

static void
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    if (!in || !out)
        s_fail ("cannot copy the journal");
    char buffer[65536];
    size_t n;
    while ((n = fread (buffer, 1, sizeof (buffer), in)) > 0)
        if (fwrite (buffer, 1, n, out) != n)
            s_fail ("cannot copy the journal");
    fclose (in);
    fclose (out);
}

static int
s_check_task (void *arg, arb_task_t *task, const char *queue, const char *name)
{
    (void) arg;
    if (task->id == 0 || !queue || !*queue || !name || !*name)
        s_fail ("the journal handed an unusable task");
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_fx.dir[0]) {
        snprintf (s_fx.dir, sizeof (s_fx.dir), "%s/arb-fuzz-tasklog-XXXXXX",
                  access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp (s_fx.dir))
            s_fail ("no directory");
        snprintf (s_fx.path, sizeof (s_fx.path), "%s/j.db", s_fx.dir);
        snprintf (s_fx.log, sizeof (s_fx.log), "%s" ARB_JOURNAL_LOG_SUFFIX, s_fx.path);
        snprintf (s_fx.template, sizeof (s_fx.template), "%s/template.db", s_fx.dir);
        atexit (s_cleanup);
        zsys_init ();
        zsys_set_logstream (NULL);  //  the journal's log lines are not the finding
        zsys_set_logsystem (false);
        arb_journal_t *made = arb_journal_new (s_fx.template, ARB_SYNC_NORMAL);
        if (!made)
            s_fail ("no journal");
        arb_journal_destroy (&made);
    }
    //  a journal whose tables expect generation 0 (none written yet): a
    //  copy of the one made at the first input (making one costs more)
    s_remove (s_fx.path);
    s_copy (s_fx.template, s_fx.path);
    s_in_t in = {data, data + size};
    s_write_log (&in);
    arb_journal_t *journal = arb_journal_new (s_fx.path, ARB_SYNC_NORMAL);
    if (!journal)
        return 0;  //  refused, naming why: the broker would not start
    if (arb_journal_load_open (journal, s_check_task, NULL))
        s_fail ("the open tasks are unreadable after a replay");
    for (uint64_t id = 1; id < 8; id++) {
        zframe_t *payload = NULL, *headers = NULL;
        arb_journal_load_payload (journal, id, &payload, &headers, NULL);
        zframe_destroy (&payload);
        zframe_destroy (&headers);
    }
    arb_journal_destroy (&journal);
    return 0;
}
