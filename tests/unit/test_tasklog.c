/*  test_tasklog.c — the task log's file on its own (broker/arb_tasklog.c):
    records of every size read back whole after a reopen, in both ways of
    writing (direct, and through the page cache), across blocks, past the
    direct writes' block copy, and after a reopen at an end that is not a
    block's; a failed sync leaves no record; a cleared log starts again; a
    direct log grows ahead of its records on its own thread, and a growth
    that fails there loses nothing; a record's bytes are the format
    documented; each synced append is synced (the calls counted, wrapped:
    tests/SConscript); a short direct write fails its append; a record
    waits for a growth under way.
    The journal's use of it is test_journal_log.c's. */

#include "arb_tasklog.h"
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <czmq.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/vfs.h>

typedef tmpdir_fixture_t s_fixture_t;

static int
s_setup (void **state)
{
    return tmpdir_fixture (state, "tasklog", "log");
}

static int
s_teardown (void **state)
{
    return tmpdir_fixture_end (state);
}

//  The log's calls of the kernel, wrapped (tests/SConscript links this
//  test with --wrap for each): the syncs counted, which a sync gone
//  missing would not show short of a power cut; a direct write cut
//  short, or the grower's writes held back, when a test asks.
int __real_fdatasync (int fd);
int __wrap_fdatasync (int fd);
int __real_fsync (int fd);
int __wrap_fsync (int fd);
ssize_t __real_pwritev (int fd, const struct iovec *iov, int count, off_t at);
ssize_t __wrap_pwritev (int fd, const struct iovec *iov, int count, off_t at);
ssize_t __real_pwritev2 (int fd, const struct iovec *iov, int count, off_t at, int flags);
ssize_t __wrap_pwritev2 (int fd, const struct iovec *iov, int count, off_t at, int flags);

static int s_syncs;          //  fdatasync calls (the grower's too)
static int s_fsyncs;         //  fsync calls (a new file's directory)
static int s_dsyncs;         //  direct writes with RWF_DSYNC
static bool s_short_direct;  //  the next direct write goes one block only
static int s_grower_delay;   //  ms the grower's next write waits

int
__wrap_fdatasync (int fd)
{
    __atomic_add_fetch (&s_syncs, 1, __ATOMIC_SEQ_CST);
    return __real_fdatasync (fd);
}

int
__wrap_fsync (int fd)
{
    __atomic_add_fetch (&s_fsyncs, 1, __ATOMIC_SEQ_CST);
    return __real_fsync (fd);
}

ssize_t
__wrap_pwritev (int fd, const struct iovec *iov, int count, off_t at)
{
    int delay = s_grower_delay;
    if (delay && gettid () != getpid ()) {  //  the grower's thread
        s_grower_delay = 0;
        zclock_sleep (delay);
    }
    return __real_pwritev (fd, iov, count, at);
}

ssize_t
__wrap_pwritev2 (int fd, const struct iovec *iov, int count, off_t at, int flags)
{
    if (flags & RWF_DSYNC)
        __atomic_add_fetch (&s_dsyncs, 1, __ATOMIC_SEQ_CST);
    if (s_short_direct && count == 1 && iov[0].iov_len > 4096) {
        s_short_direct = false;
        struct iovec first = {iov[0].iov_base, 4096};
        return __real_pwritev2 (fd, &first, 1, at, flags);
    }
    return __real_pwritev2 (fd, iov, count, at, flags);
}

//  A counter's value, and it set back to 0.
static int
s_take (int *counter)
{
    return __atomic_exchange_n (counter, 0, __ATOMIC_SEQ_CST);
}

//  Whether the directory's file system writes O_DIRECT past its page
//  cache: not tmpfs (whose pages are its storage; since Linux 6.6 it
//  takes O_DIRECT all the same).
static bool
s_has_direct (const char *dir)
{
    struct statfs fs;
    if (statfs (dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC)
        return false;
    char path[128];
    snprintf (path, sizeof (path), "%s/probe", dir);
    int fd = open (path, O_CREAT | O_RDWR | O_DIRECT, 0600);
    if (fd >= 0)
        close (fd);
    unlink (path);
    return fd >= 0;
}

//  The body of record i: its size, then bytes that say which record.
static size_t
s_body_size (size_t i)
{
    static const size_t sizes[] = {0, 1, 200, 4072, 4096, 5000, 100, 9000, 3 * 1024 * 1024, 7, 333};
    return sizes[i % (sizeof (sizes) / sizeof (sizes[0]))];
}

static uint8_t *
s_body (size_t i)
{
    size_t size = s_body_size (i);
    uint8_t *body = (uint8_t *) malloc (size + 1);
    for (size_t k = 0; k < size; k++)
        body[k] = (uint8_t) (i * 31 + k * 7 + 1);
    return body;
}

static void
s_append (arb_tasklog_t *log, uint64_t gen, size_t i)
{
    uint8_t *body = s_body (i);
    size_t size = s_body_size (i), half = size / 2;
    //  in two parts, as the journal gives them
    arb_tasklog_part_t parts[] = {{body, half}, {body + half, size - half}};
    assert_int_equal (arb_tasklog_append (log, gen, parts, 2, true), 0);
    free (body);
}

typedef struct {
    uint64_t gen;  //  the generation read; another ends the records
    size_t count;  //  records read
    size_t first;  //  the index of the first record expected
} s_reader_t;

static int
s_check (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    s_reader_t *reader = (s_reader_t *) arg;
    if (gen != reader->gen)
        return 1;
    size_t i = reader->first + reader->count;
    uint8_t *expected = s_body (i);
    assert_int_equal (size, s_body_size (i));
    assert_memory_equal (body, expected, size);
    free (expected);
    reader->count++;
    return 0;
}

//  Opens the log, reads it from its start: the records of gen it holds.
static size_t
s_read (const char *path, bool synced, uint64_t gen, arb_tasklog_t **log_p)
{
    arb_tasklog_t *log = arb_tasklog_new (path, synced);
    assert_non_null (log);
    s_reader_t reader = {gen, 0, 0};
    assert_true (arb_tasklog_read (log, s_check, &reader) >= 0);
    if (log_p)
        *log_p = log;
    else
        arb_tasklog_destroy (&log);
    return reader.count;
}

static void
s_records_read_back (const char *path, bool synced)
{
    arb_tasklog_t *log;
    assert_int_equal (s_read (path, synced, 5, &log), 0);
    for (size_t i = 0; i < 25; i++)
        s_append (log, 5, i);
    uint64_t size = arb_tasklog_size (log);
    arb_tasklog_destroy (&log);

    //  a reopen at that end (not a block's), and more records after it
    assert_int_equal (s_read (path, synced, 5, &log), 25);
    assert_int_equal (arb_tasklog_size (log), size);
    assert_true (size % 4096 != 0);
    for (size_t i = 25; i < 40; i++)
        s_append (log, 5, i);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (path, synced, 5, NULL), 40);
}

static void
test_records_read_back_written_directly (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_records_read_back (fx->path, true);
}

static void
test_records_read_back_written_through_the_page_cache (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_records_read_back (fx->path, false);
}

//  A log written both ways, in turns (a broker restarted with another
//  --sync), reads back whole.
static void
test_the_two_ways_mix (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    size_t next = 0;
    for (int round = 0; round < 4; round++) {
        assert_int_equal (s_read (fx->path, round % 2 == 0, 9, &log), next);
        for (size_t i = 0; i < 6; i++)
            s_append (log, 9, next++);
        arb_tasklog_destroy (&log);
    }
    assert_int_equal (s_read (fx->path, true, 9, NULL), next);
}

//  Synced appends go to the disk directly where the file system allows:
//  the pages of the records are not left in the page cache.
static void
test_synced_appends_bypass_the_page_cache (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (!s_has_direct (fx->dir))
        skip ();
    arb_tasklog_t *log;
    s_read (fx->path, true, 1, &log);
    assert_true (arb_tasklog_direct (log));
    for (size_t i = 0; i < 8; i++)  //  records up to 9,000 bytes
        s_append (log, 1, i);
    size_t size = (size_t) arb_tasklog_size (log);
    int fd = open (fx->path, O_RDONLY);
    assert_true (fd >= 0);
    void *map = mmap (NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true (map != MAP_FAILED);
    unsigned char resident[16];
    size_t pages = (size + 4095) / 4096;
    assert_true (pages <= sizeof (resident));
    assert_int_equal (mincore (map, size, resident), 0);
    for (size_t p = 0; p < pages; p++)
        assert_int_equal (resident[p] & 1, 0);
    munmap (map, size);
    close (fd);
    arb_tasklog_destroy (&log);

    //  a log whose appends are not synced writes through the page cache
    s_read (fx->path, false, 1, &log);
    assert_false (arb_tasklog_direct (log));
    arb_tasklog_destroy (&log);
}

static int s_write_errno;   //  what the fault hook fails a write with
static int s_sync_errno;    //  a sync
static int s_unmake_errno;  //  and the unmaking of the record that failed

static int
s_fault (arb_tasklog_step_t step)
{
    return step == ARB_TASKLOG_WRITE  ? s_write_errno
           : step == ARB_TASKLOG_SYNC ? s_sync_errno
                                      : s_unmake_errno;
}

static void
s_failed_sync (const char *path, bool synced)
{
    arb_tasklog_t *log;
    s_read (path, synced, 3, &log);
    arb_tasklog_set_fault (log, s_fault);
    s_append (log, 3, 0);
    s_append (log, 3, 1);
    uint64_t size = arb_tasklog_size (log);
    s_sync_errno = EIO;
    uint8_t body[300] = {0};
    arb_tasklog_part_t part = {body, sizeof (body)};
    assert_int_equal (arb_tasklog_append (log, 3, &part, 1, true), -1);
    assert_int_equal (errno, EIO);
    assert_false (arb_tasklog_is_doubtful (log));
    assert_int_equal (arb_tasklog_size (log), size);
    s_sync_errno = 0;
    arb_tasklog_destroy (&log);
    //  the failed record is not read back; the next append takes its place
    assert_int_equal (s_read (path, synced, 3, &log), 2);
    s_append (log, 3, 2);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (path, synced, 3, NULL), 3);
}

static void
test_a_failed_sync_leaves_no_record (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_failed_sync (fx->path, true);
    unlink (fx->path);
    s_failed_sync (fx->path, false);
}

//  A failed sync whose record cannot be unmade either: the log says its
//  outcome is not known, for the record may be read back, and it is.
static void
s_failed_unmake (const char *path, bool synced)
{
    arb_tasklog_t *log;
    s_read (path, synced, 3, &log);
    arb_tasklog_set_fault (log, s_fault);
    s_append (log, 3, 0);
    s_sync_errno = EIO;
    s_unmake_errno = ENOSPC;
    uint8_t *body = s_body (1);
    arb_tasklog_part_t part = {body, s_body_size (1)};
    assert_int_equal (arb_tasklog_append (log, 3, &part, 1, true), -1);
    assert_int_equal (errno, EIO);  //  the append's failure, not the unmaking's
    assert_true (arb_tasklog_is_doubtful (log));
    free (body);
    s_sync_errno = s_unmake_errno = 0;
    //  the next append that works goes over it, and ends the doubt
    s_append (log, 3, 1);
    assert_false (arb_tasklog_is_doubtful (log));
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (path, synced, 3, NULL), 2);
}

//  A write that fails before any byte of its record reached the file (a
//  full disk, on an empty log): nothing to unmake, and nothing doubtful,
//  though zeroing a header there would fail the same way.
static void
test_a_write_that_failed_first_leaves_nothing_to_unmake (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    s_read (fx->path, true, 3, &log);
    arb_tasklog_set_fault (log, s_fault);
    s_write_errno = s_unmake_errno = ENOSPC;
    uint8_t *body = s_body (0);
    arb_tasklog_part_t part = {body, s_body_size (0)};
    assert_int_equal (arb_tasklog_append (log, 3, &part, 1, true), -1);
    assert_int_equal (errno, ENOSPC);
    assert_false (arb_tasklog_is_doubtful (log));
    free (body);
    s_write_errno = s_unmake_errno = 0;
    s_append (log, 3, 0);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 3, NULL), 1);
}

static void
test_a_record_that_cannot_be_unmade_is_said_unknown (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_failed_unmake (fx->path, true);
    unlink (fx->path);
    s_failed_unmake (fx->path, false);
}

//  After a clear, the next generation's records start at the file's
//  start, over the old ones, which the reader stops at.
static void
test_a_cleared_log_starts_again (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    s_read (fx->path, true, 1, &log);
    for (size_t i = 0; i < 8; i++)
        s_append (log, 1, i);
    assert_int_equal (arb_tasklog_clear (log), 0);
    assert_int_equal (arb_tasklog_size (log), 0);
    s_append (log, 2, 0);
    s_append (log, 2, 1);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 2, &log), 2);
    assert_int_equal (arb_tasklog_size (log), 2 * 24 + s_body_size (0) + s_body_size (1));
    arb_tasklog_destroy (&log);
}

//  A failed sync of a record that crosses a block boundary, then
//  more appends on the same object (no reopen): the records acknowledged
//  before must still read back.
static void
s_failed_sync_across_a_block (const char *path, bool synced, size_t big)
{
    arb_tasklog_t *log;
    s_read (path, synced, 3, &log);
    arb_tasklog_set_fault (log, s_fault);
    s_append (log, 3, 0);  //  24 bytes
    s_append (log, 3, 1);  //  25 bytes
    s_append (log, 3, 2);  //  224 bytes: size 273, in block 0
    uint64_t size = arb_tasklog_size (log);
    s_sync_errno = EIO;
    uint8_t *body = (uint8_t *) malloc (big);
    memset (body, 0xab, big);
    arb_tasklog_part_t part = {body, big};
    assert_int_equal (arb_tasklog_append (log, 3, &part, 1, true), -1);
    free (body);
    assert_int_equal (arb_tasklog_size (log), size);
    s_sync_errno = 0;
    s_append (log, 3, 3);  //  acknowledged, in the same block as 0..2
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (path, synced, 3, NULL), 4);
}

static void
test_a_failed_sync_across_a_block_keeps_the_records_before (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_failed_sync_across_a_block (fx->path, true, 6000);
}

static void
test_a_failed_sync_of_a_large_record_keeps_the_records_before (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    s_failed_sync_across_a_block (fx->path, true, 2 * 1024 * 1024 + 100);
}

//  A clear that cuts a file over ARB_TASKLOG_KEEP_BYTES, then
//  direct appends.
static void
test_a_clear_cuts_a_large_file (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    s_read (fx->path, true, 1, &log);
    for (int k = 0; k < 23; k++)
        s_append (log, 1, 8);  //  3 MiB each, > 64 MiB in all
    s_append (log, 1, 9);
    assert_int_equal (arb_tasklog_clear (log), 0);
    struct stat info;
    assert_int_equal (stat (fx->path, &info), 0);
    assert_int_equal (info.st_size, 0);
    for (size_t i = 0; i < 12; i++)
        s_append (log, 2, i);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 2, NULL), 12);
}

//  A torn tail (garbage after the last record, in its block and
//  the next), a reopen, appends over it.
static void
test_appends_go_over_a_torn_tail (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    s_read (fx->path, true, 4, &log);
    for (size_t i = 0; i < 3; i++)
        s_append (log, 4, i);
    uint64_t size = arb_tasklog_size (log);
    arb_tasklog_destroy (&log);
    int fd = open (fx->path, O_WRONLY);
    uint8_t junk[5000];
    memset (junk, 0x5a, sizeof (junk));
    memcpy (junk, "ARBL", 4);
    assert_int_equal (pwrite (fd, junk, sizeof (junk), (off_t) size), (ssize_t) sizeof (junk));
    close (fd);
    assert_int_equal (s_read (fx->path, true, 4, &log), 3);
    for (size_t i = 3; i < 12; i++)
        s_append (log, 4, i);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 4, NULL), 12);
}

//  A file cut at its last record's end (size not a block's
//  multiple, no zeros after), reopened and appended to directly.
static void
test_appends_after_a_file_cut_at_its_last_record (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    arb_tasklog_t *log;
    s_read (fx->path, true, 6, &log);
    for (size_t i = 0; i < 6; i++)
        s_append (log, 6, i);
    uint64_t size = arb_tasklog_size (log);
    arb_tasklog_destroy (&log);
    //  cut inside the last record's last bytes first: a torn record,
    //  which the reader checks within the file (then its bytes put back)
    uint8_t tail[10];
    int fd = open (fx->path, O_RDWR);
    assert_int_equal (pread (fd, tail, sizeof (tail), (off_t) size - 10), 10);
    assert_int_equal (ftruncate (fd, (off_t) size - 10), 0);
    assert_int_equal (s_read (fx->path, true, 6, NULL), 5);
    assert_int_equal (pwrite (fd, tail, sizeof (tail), (off_t) size - 10), 10);
    close (fd);
    assert_int_equal (truncate (fx->path, (off_t) size), 0);
    assert_int_equal (s_read (fx->path, true, 6, &log), 6);
    for (size_t i = 6; i < 20; i++)
        s_append (log, 6, i);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 6, NULL), 20);
}

static off_t
s_file_size (const char *path)
{
    struct stat info;
    assert_int_equal (stat (path, &info), 0);
    return info.st_size;
}

//  Counts the records of record 5's body (test_a_direct_log_grows_ahead's).
static int
s_count_fives (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    (void) gen;
    uint8_t *expected = s_body (5);
    assert_int_equal (size, s_body_size (5));
    assert_memory_equal (body, expected, size);
    free (expected);
    (*(size_t *) arg)++;
    return 0;
}

//  Opens the log at path: how many records of record 5's body it holds.
static size_t
s_read_fives (const char *path)
{
    size_t read = 0;
    arb_tasklog_t *log = arb_tasklog_new (path, true);
    assert_non_null (log);
    assert_int_equal (arb_tasklog_read (log, s_count_fives, &read), 0);
    arb_tasklog_destroy (&log);
    return read;
}

static int
s_count_records (void *arg, uint64_t gen, const uint8_t *body, size_t size)
{
    (void) gen;
    (void) body;
    (void) size;
    (*(size_t *) arg)++;
    return 0;
}

//  Opens the log at path: how many records it holds, of any gen.
static size_t
s_count_all (const char *path)
{
    size_t read = 0;
    arb_tasklog_t *log = arb_tasklog_new (path, false);
    assert_non_null (log);
    assert_int_equal (arb_tasklog_read (log, s_count_records, &read), 0);
    arb_tasklog_destroy (&log);
    return read;
}

//  A record's header is the file's format, which the next broker reads
//  (after an upgrade, too): magic, size, gen and the CRC-32C of gen, size
//  and body, here as an independent CRC-32C gives it. A new file's name is
//  synced with its directory. An empty record may end the file; a header
//  whose magic is not the log's is no record, its checksum sound or not.
static void
test_a_record_has_the_format_documented (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
        skip ();  //  the bytes below are a little-endian machine's
    arb_tasklog_t *log;
    s_take (&s_fsyncs);
    s_read (fx->path, false, 1, &log);
    assert_true (s_take (&s_fsyncs) >= 1);
    const uint8_t body[] = "arbiter";
    arb_tasklog_part_t part = {body, 7};
    assert_int_equal (arb_tasklog_append (log, 0x0102030405060708u, &part, 1, true), 0);
    assert_int_equal (arb_tasklog_append (log, 0x0102030405060708u, NULL, 0, true), 0);
    arb_tasklog_destroy (&log);
    const uint8_t expected[] = {
        0x41, 0x52, 0x42, 0x4c,                    //  magic: "ARBL"
        7,    0,    0,    0,                       //  size
        8,    7,    6,    5,    4,   3,   2,   1,  //  gen
        0x3b, 0x9d, 0x53, 0x5f,                    //  crc: 0x5f539d3b
        0,    0,    0,    0,                       //  pad
        'a',  'r',  'b',  'i',  't', 'e', 'r',     //  body
    };
    uint8_t got[sizeof (expected)];
    int fd = open (fx->path, O_RDWR);
    assert_true (fd >= 0);
    assert_int_equal (pread (fd, got, sizeof (got), 0), (ssize_t) sizeof (got));
    assert_memory_equal (got, expected, sizeof (expected));
    //  the file cut at the empty record's end (no zeros grown after it)
    assert_int_equal (ftruncate (fd, 2 * 24 + 7), 0);
    assert_int_equal (s_count_all (fx->path), 2);
    assert_int_equal (pwrite (fd, "X", 1, 0), 1);
    close (fd);
    assert_int_equal (s_count_all (fx->path), 0);
}

//  Each synced append is on the disk when it returns: written directly
//  with RWF_DSYNC, or through the page cache and then synced; an unsynced
//  append is synced by the next synced one, and a failed append's
//  unmaking is synced too.
static void
test_a_synced_append_is_synced (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    bool direct = s_has_direct (fx->dir);
    arb_tasklog_t *log;
    s_read (fx->path, true, 1, &log);
    assert_true (arb_tasklog_direct (log) == direct);
    s_append (log, 1, 2);  //  the first grows the file, and syncs that
    s_take (&s_syncs);
    s_take (&s_dsyncs);
    s_append (log, 1, 3);
    if (direct) {
        assert_int_equal (s_take (&s_dsyncs), 1);
        assert_int_equal (s_take (&s_syncs), 0);
    }
    else
        assert_int_equal (s_take (&s_syncs), 1);
    uint8_t body[100] = {0};
    arb_tasklog_part_t part = {body, sizeof (body)};
    assert_int_equal (arb_tasklog_append (log, 1, &part, 1, false), 0);
    assert_int_equal (s_take (&s_syncs) + s_take (&s_dsyncs), 0);
    assert_int_equal (arb_tasklog_append (log, 1, &part, 1, true), 0);
    assert_true (s_take (&s_syncs) >= 1);
    arb_tasklog_set_fault (log, s_fault);
    s_sync_errno = EIO;
    assert_int_equal (arb_tasklog_append (log, 1, &part, 1, true), -1);
    s_sync_errno = 0;
    assert_false (arb_tasklog_is_doubtful (log));
    assert_int_equal (s_take (&s_syncs), 1);
    arb_tasklog_destroy (&log);
    //  a log not synced at each append writes through the page cache; an
    //  append synced all the same is synced
    log = arb_tasklog_new (fx->path, false);
    assert_non_null (log);
    size_t read = 0;
    assert_int_equal (arb_tasklog_read (log, s_count_records, &read), 0);
    assert_int_equal (read, 4);
    s_take (&s_syncs);
    assert_int_equal (arb_tasklog_append (log, 1, &part, 1, true), 0);
    assert_int_equal (s_take (&s_syncs), 1);
    arb_tasklog_destroy (&log);
}

//  A direct write the kernel cuts short fails the append, which leaves
//  no record, and the next one takes its place.
static void
test_a_short_direct_write_fails (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (!s_has_direct (fx->dir))
        skip ();
    arb_tasklog_t *log;
    s_read (fx->path, true, 3, &log);
    s_append (log, 3, 0);
    uint64_t size = arb_tasklog_size (log);
    s_short_direct = true;  //  record 5, 5,000 bytes: two blocks
    uint8_t *body = s_body (5);
    arb_tasklog_part_t part = {body, s_body_size (5)};
    assert_int_equal (arb_tasklog_append (log, 3, &part, 1, true), -1);
    free (body);
    assert_false (s_short_direct);
    assert_int_equal (errno, EIO);
    assert_false (arb_tasklog_is_doubtful (log));
    assert_int_equal (arb_tasklog_size (log), size);
    s_append (log, 3, 1);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read (fx->path, true, 3, NULL), 2);
}

//  A direct log grows ahead of its records on its own thread: once they
//  are within ARB_TASKLOG_GROW_AHEAD of the file's end, the file takes
//  the next ARB_TASKLOG_GROW_BYTES of zeros before any record needs them;
//  records written into those read back whole.
static void
test_a_direct_log_grows_ahead (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (!s_has_direct (fx->dir))
        skip ();
    arb_tasklog_t *log = arb_tasklog_new (fx->path, true);
    assert_non_null (log);
    size_t appended = 0;
    s_append (log, 3, 5);  //  5,000 bytes
    appended++;
    assert_true (arb_tasklog_direct (log));
    assert_int_equal (s_file_size (fx->path), ARB_TASKLOG_GROW_BYTES);
    s_take (&s_syncs);  //  the loop's growth: the grower's syncs from here
    //  up to the mark, then one past it: the next mebibyte is not needed
    while (arb_tasklog_size (log) <= ARB_TASKLOG_GROW_BYTES - ARB_TASKLOG_GROW_AHEAD) {
        s_append (log, 3, 5);
        appended++;
    }
    assert_true (arb_tasklog_size (log) < ARB_TASKLOG_GROW_BYTES - 4096);
    int64_t deadline = zclock_mono () + 5000;
    while (s_file_size (fx->path) < 2 * ARB_TASKLOG_GROW_BYTES && zclock_mono () < deadline)
        zclock_sleep (1);
    assert_int_equal (s_file_size (fx->path), 2 * ARB_TASKLOG_GROW_BYTES);
    //  records across the first mebibyte's end, into the zeros grown ahead
    while (arb_tasklog_size (log) < ARB_TASKLOG_GROW_BYTES + 100000) {
        s_append (log, 3, 5);
        appended++;
    }
    //  the grower synced its zeros, once, and the loop grew nothing itself
    //  (the direct writes sync none)
    assert_int_equal (s_take (&s_syncs), 1);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read_fives (fx->path), appended);
}

//  A record that needs the blocks of a growth under way waits for it: a
//  growth of the loop's own meanwhile would have the grower's zeros land
//  on records written after them (here the grower is held back 500 ms).
static void
test_a_record_waits_for_the_growth_under_way (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (!s_has_direct (fx->dir))
        skip ();
    arb_tasklog_t *log = arb_tasklog_new (fx->path, true);
    assert_non_null (log);
    s_grower_delay = 500;
    uint8_t *body = s_body (5);
    arb_tasklog_part_t part = {body, s_body_size (5)};
    size_t appended = 0;
    while (arb_tasklog_size (log) < ARB_TASKLOG_GROW_BYTES + 100000) {
        assert_int_equal (arb_tasklog_append (log, 3, &part, 1, false), 0);
        appended++;
    }
    free (body);
    assert_int_equal (s_grower_delay, 0);
    arb_tasklog_destroy (&log);
    assert_int_equal (s_read_fives (fx->path), appended);
}

//  Appends record 5's body: 0, or -1 with errno set.
static int
s_try_five (arb_tasklog_t *log)
{
    uint8_t *body = s_body (5);
    arb_tasklog_part_t part = {body, s_body_size (5)};
    int rc = arb_tasklog_append (log, 3, &part, 1, true);
    free (body);
    return rc;
}

//  A growth that fails on the thread (the file size limit here, as a full
//  disk would) loses nothing: records go on below the size the loop
//  knows, the one that needs the space fails with the growth's error,
//  and once the space is there again the records go on.
static void
test_a_growth_that_fails_ahead (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    if (!s_has_direct (fx->dir))
        skip ();
    struct rlimit was;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &was), 0);
    void (*xfsz) (int) = signal (SIGXFSZ, SIG_IGN);
    arb_tasklog_t *log = arb_tasklog_new (fx->path, true);
    assert_non_null (log);
    size_t appended = 0;
    assert_int_equal (s_try_five (log), 0);
    appended++;
    assert_true (arb_tasklog_direct (log));
    //  the file may not pass 1.5 MiB: the growth to 2 MiB fails part way
    struct rlimit limit = {ARB_TASKLOG_GROW_BYTES * 3 / 2, was.rlim_max};
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &limit), 0);
    while (s_try_five (log) == 0)
        appended++;
    assert_int_equal (errno, EFBIG);
    assert_false (arb_tasklog_is_doubtful (log));
    //  it failed where a record first needed the second mebibyte
    assert_true (arb_tasklog_size (log) + 5000 + 24 > ARB_TASKLOG_GROW_BYTES);
    assert_true (arb_tasklog_size (log) <= ARB_TASKLOG_GROW_BYTES);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &was), 0);
    //  the loop's growth that works (to 2 MiB) lets the grower go on: the
    //  records past the mark again, the file takes the third mebibyte
    while (arb_tasklog_size (log) <= 2 * ARB_TASKLOG_GROW_BYTES - ARB_TASKLOG_GROW_AHEAD) {
        assert_int_equal (s_try_five (log), 0);
        appended++;
    }
    int64_t deadline = zclock_mono () + 5000;
    while (s_file_size (fx->path) < 3 * ARB_TASKLOG_GROW_BYTES && zclock_mono () < deadline)
        zclock_sleep (1);
    assert_int_equal (s_file_size (fx->path), 3 * ARB_TASKLOG_GROW_BYTES);
    while (arb_tasklog_size (log) < 2 * ARB_TASKLOG_GROW_BYTES) {
        assert_int_equal (s_try_five (log), 0);
        appended++;
    }
    arb_tasklog_destroy (&log);
    signal (SIGXFSZ, xfsz);
    assert_int_equal (s_read_fives (fx->path), appended);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_records_read_back_written_directly, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_records_read_back_written_through_the_page_cache,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_two_ways_mix, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_synced_appends_bypass_the_page_cache, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_sync_leaves_no_record, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_record_that_cannot_be_unmade_is_said_unknown,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_write_that_failed_first_leaves_nothing_to_unmake,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_cleared_log_starts_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_sync_across_a_block_keeps_the_records_before,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_failed_sync_of_a_large_record_keeps_the_records_before, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_clear_cuts_a_large_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_appends_go_over_a_torn_tail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_appends_after_a_file_cut_at_its_last_record, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_direct_log_grows_ahead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_growth_that_fails_ahead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_record_has_the_format_documented, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_synced_append_is_synced, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_short_direct_write_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_record_waits_for_the_growth_under_way, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
