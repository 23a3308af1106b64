/*  arb_tasklog.c — the journal's append-only log of plain task writes;
    see arb_tasklog.h for the format and arb_journal_batch.c for its use.

    One file descriptor, written with pwritev at the offset this object
    keeps (not O_APPEND: a failed append is cut back to that offset, and
    a cut that fails leaves the next append there, over the bad bytes).

    The file grows ARB_TASKLOG_GROW_BYTES of zeros at a time, ahead of the
    records: a record then goes into blocks the file has already, and its
    sync writes no metadata (the file's size), as an append's must; that
    costs a small write's sync about a third more on the disks measured
    (BENCHMARKS.md, F1). The zeros end the records for a reader, as a
    torn header does. A log written directly grows on a thread of its own
    (a chore), once its records are within ARB_TASKLOG_GROW_AHEAD of the
    file's end: the zeros' write and their sync took a commit 1.6 to 2.1
    ms each time, every 17 to 28 ms in P1 and 73 to 91 ms in L1 ("The task
    log grows on a thread", BENCHMARKS.md). The loop writes only below the
    size it knows, and takes a growth's new size once the chore has ended
    it and synced the zeros; a record that needs blocks past that size
    waits for a growth under way, and the loop grows the file itself, as
    before, if it still must, or when the thread cannot start.

    A log whose appends are all synced (--sync full) writes them with
    O_DIRECT and RWF_DSYNC: the blocks a record touches, from a copy of
    the last block kept here, go to the disk in one call that returns
    after the disk's cache flush, with no page cache to write back first.
    On the disk measured, that was 5 to 40 % more synced writes a second
    than pwrite and fdatasync while the disk was slow, and even while it
    was fast (BENCHMARKS.md, "Direct writes and the wait for workers").
    The last block's earlier records are written again with
    the same bytes, which a torn write cannot change; a page cache's
    writeback rewrites the same whole block. Where the file system takes
    no O_DIRECT, or a record is larger than the copy, the log writes
    through the page cache as before.
*/

#include "arb_tasklog.h"

#include "arb_chore.h"

#include <czmq.h>
#include <libgen.h>
#include <sys/uio.h>

#define S_HEAD_SIZE 24
#define S_BLOCK     4096u                     //  O_DIRECT's alignment, of memory, offsets and sizes
#define S_STAGE     (1024u * 1024 + S_BLOCK)  //  direct writes: a record of up to 1 MiB, and a block
#define S_MAX_BODY  (256u * 1024 * 1024)      //  no record is bigger: a size above is a torn header

struct _arb_tasklog_t {
    int fd;                       //  owned: reads, growth, large records
    int direct_fd;                //  owned: O_DIRECT, the same file; -1: none
    uint8_t *stage;               //  owned, S_BLOCK-aligned: the file's bytes from the
                                  //  block that holds size up to size, then the record
    char *path;                   //  owned
    uint64_t size;                //  bytes of whole records: the next append's offset
    uint64_t file_size;           //  bytes the file has (grown ahead): the loop writes below
                                  //  it; the grower reads it, so while growing it stays
    arb_chore_t *grower;          //  owned: direct logs grow ahead on it; NULL: not yet
    int grow_fd;                  //  owned: the grower's descriptor of the file; -1: none
    bool grower_failed;           //  the grower could not start: the loop grows the file
    bool grow_paused;             //  a growth failed on the grower: none asked until one
                                  //  of the loop's succeeds
    bool growing;                 //  a growth asked and not yet taken in; while so,
                                  //  grow_to and grow_errno are the grower's
    uint64_t grow_to;             //  the file's size asked, in bytes
    int grow_errno;               //  the growth's result: 0, or its errno
    bool unsynced;                //  an append went without a sync since the last sync
    uint32_t crc_table[256];      //  CRC-32C, byte at a time
    bool has_crc32;               //  the CPU has the crc32 instruction (x86-64, SSE 4.2)
    arb_tasklog_fault_fn *fault;  //  test builds: when to fail; NULL: never
    bool doubtful;                //  the last append failed, and its unmaking too
};

static void
s_crc_init (uint32_t *table)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        table[i] = c;
    }
}

static uint32_t
s_crc_bytes (const uint32_t *table, uint32_t crc, const uint8_t *p, size_t size)
{
    while (size--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
//  The same CRC by the CPU's crc32 instruction (SSE 4.2), 8 bytes at a
//  time: a byte at a time by the table was 5 % of the broker's time with
//  every task's row checksummed (P1).
__attribute__ ((target ("sse4.2"))) static uint32_t
s_crc_words (uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = crc;
    for (; size >= 8; p += 8, size -= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        c = __builtin_ia32_crc32di (c, word);
    }
    uint32_t c32 = (uint32_t) c;
    for (; size; p++, size--)
        c32 = __builtin_ia32_crc32qi (c32, *p);
    return c32;
}
#endif

static uint32_t
s_crc (const arb_tasklog_t *self, uint32_t crc, const void *data, size_t size)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (self->has_crc32)
        return ~s_crc_words (crc, (const uint8_t *) data, size);
#endif
    return ~s_crc_bytes (self->crc_table, crc, (const uint8_t *) data, size);
}

//  The checksum of a record: its gen and size, then its body's parts.
static uint32_t
s_record_crc (const arb_tasklog_t *self,
              uint64_t gen,
              uint32_t size,
              const arb_tasklog_part_t *parts,
              size_t count)
{
    uint32_t crc = s_crc (self, 0, &gen, sizeof (gen));
    crc = s_crc (self, crc, &size, sizeof (size));
    for (size_t i = 0; i < count; i++)
        crc = s_crc (self, crc, parts[i].data, parts[i].size);
    return crc;
}

//  Syncs the directory that holds path, so that a new file's name is as
//  durable as its data. 0 or -1.
static int
s_sync_dir (const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    int fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free (copy);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  Opens the second descriptor, for direct writes, and its block copy.
//  Where the file system refuses O_DIRECT, the log goes on without it.
static void
s_open_direct (arb_tasklog_t *self)
{
    self->direct_fd = open (self->path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (self->direct_fd < 0) {
        zsys_info ("tasklog: no direct writes here, the page cache serves path=%s error=\"%s\"",
                   self->path, strerror (errno));
        return;
    }
    if (posix_memalign ((void **) &self->stage, S_BLOCK, S_STAGE)) {
        close (self->direct_fd);
        self->direct_fd = -1;
        self->stage = NULL;
    }
}

//  Stops writing directly (after the file system refused a direct write).
static void
s_close_direct (arb_tasklog_t *self)
{
    if (self->direct_fd >= 0)
        close (self->direct_fd);
    self->direct_fd = -1;
    free (self->stage);
    self->stage = NULL;
}

arb_tasklog_t *
arb_tasklog_new (const char *path, bool synced)
{
    bool existed = access (path, F_OK) == 0;
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        zsys_error ("tasklog: cannot open path=%s error=\"%s\"", path, strerror (errno));
        return NULL;
    }
    if (!existed && s_sync_dir (path)) {
        zsys_error ("tasklog: cannot sync the directory of path=%s error=\"%s\"", path,
                    strerror (errno));
        close (fd);
        return NULL;
    }
    arb_tasklog_t *self = (arb_tasklog_t *) zmalloc (sizeof (arb_tasklog_t));
    self->fd = fd;
    self->direct_fd = -1;
    self->grow_fd = -1;
    self->path = strdup (path);
    assert (self->path);
    s_crc_init (self->crc_table);
#if defined(__x86_64__)
    self->has_crc32 = __builtin_cpu_supports ("sse4.2");
#endif
    if (synced)
        s_open_direct (self);
    return self;
}

void
arb_tasklog_destroy (arb_tasklog_t **self_p)
{
    assert (self_p);
    arb_tasklog_t *self = *self_p;
    if (!self)
        return;
    arb_chore_destroy (&self->grower);
    if (self->grow_fd >= 0)
        close (self->grow_fd);
    s_close_direct (self);
    close (self->fd);
    free (self->path);
    free (self);
    *self_p = NULL;
}

//  Reads the whole file into *data (the caller frees it). 0 or -1.
static int
s_read_all (arb_tasklog_t *self, uint8_t **data, size_t *size)
{
    struct stat info;
    if (fstat (self->fd, &info))
        return -1;
    *size = (size_t) info.st_size;
    *data = (uint8_t *) malloc (*size ? *size : 1);
    assert (*data);
    size_t got = 0;
    while (got < *size) {
        ssize_t n = pread (self->fd, *data + got, *size - got, (off_t) got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free (*data);
            *data = NULL;
            return -1;
        }
        got += (size_t) n;
    }
    return 0;
}

static bool
s_all_zero (const uint8_t *p, size_t size)
{
    return size == 0 || (p[0] == 0 && memcmp (p, p + 1, size - 1) == 0);
}

int
arb_tasklog_read (arb_tasklog_t *self, arb_tasklog_record_fn *fn, void *arg)
{
    assert (!self->growing);  //  read before any append: it sets the sizes
    uint8_t *data;
    size_t size;
    if (s_read_all (self, &data, &size)) {
        zsys_error ("tasklog: cannot read path=%s error=\"%s\"", self->path, strerror (errno));
        return -1;
    }
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && size - at >= S_HEAD_SIZE) {
        uint32_t magic, body_size, crc;
        uint64_t gen;
        memcpy (&magic, data + at, 4);
        memcpy (&body_size, data + at + 4, 4);
        memcpy (&gen, data + at + 8, 8);
        memcpy (&crc, data + at + 16, 4);
        if (magic != ARB_TASKLOG_MAGIC || body_size > S_MAX_BODY
            || body_size > size - at - S_HEAD_SIZE)
            break;
        arb_tasklog_part_t body = {data + at + S_HEAD_SIZE, body_size};
        if (s_record_crc (self, gen, body_size, &body, 1) != crc)
            break;
        rc = fn (arg, gen, data + at + S_HEAD_SIZE, body_size);
        if (rc)
            break;  //  appends go over it
        at += S_HEAD_SIZE + body_size;
    }
    //  past the records: the zeros the file grew by, the records of an
    //  older generation that the current one's were written over (after a
    //  checkpoint), or a write a crash cut short
    if (rc == 0 && at < size && !s_all_zero (data + at, size - at))
        zsys_notice ("tasklog: %zu bytes after the last whole record ignored (records made "
                     "obsolete by a checkpoint, or a write a crash cut short) path=%s",
                     size - at, self->path);
    if (self->stage)
        memcpy (self->stage, data + at - at % S_BLOCK, at % S_BLOCK);
    free (data);
    self->size = at;
    self->file_size = size;
    return rc;
}

//  The fault a test asks for now, as errno; 0: none.
static int
s_fault (arb_tasklog_t *self, arb_tasklog_step_t step)
{
    return self->fault ? self->fault (step) : 0;
}

//  Unmakes a failed append: its header is zeroed, so that no reader takes
//  what it wrote (a write that went whole before its sync failed may be
//  on the disk all the same). A file that ends before a whole header there
//  holds nothing to unmake (a write that failed first, as on a full disk:
//  zeroing would grow the file, and fail the same way). 0, or -1 if it may
//  still be read (errno left as the append's failure set it).
static int
s_unmake (arb_tasklog_t *self)
{
    int saved = errno;
    struct stat file;
    if (fstat (self->fd, &file) == 0 && (uint64_t) file.st_size < self->size + S_HEAD_SIZE) {
        errno = saved;
        return 0;
    }
    uint8_t zeros[S_HEAD_SIZE] = {0};
    int failure = s_fault (self, ARB_TASKLOG_UNMAKE);
    if (failure)
        errno = failure;
    if (failure
        || pwrite (self->fd, zeros, sizeof (zeros), (off_t) self->size) != (ssize_t) sizeof (zeros)
        || fdatasync (self->fd)) {
        zsys_error ("tasklog: cannot unmake a failed record path=%s error=\"%s\"", self->path,
                    strerror (errno));
        errno = saved;
        return -1;
    }
    errno = saved;
    return 0;
}

//  Writes the iovecs whole at offset at. 0, or -1 with errno set.
static int
s_write_at (int fd, struct iovec *iov, int count, size_t total, uint64_t at)
{
    size_t done = 0;
    while (done < total) {
        ssize_t n = pwritev (fd, iov, count, (off_t) (at + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t) n;
        //  a short write: skip what went, and write the rest
        while (count > 0 && (size_t) n >= iov->iov_len) {
            n -= (ssize_t) iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (char *) iov->iov_base + n;
            iov->iov_len -= (size_t) n;
        }
    }
    return 0;
}

//  Writes zeros to the file by fd from *size to to, *size following what
//  went; with sync, then syncs them: a direct write into blocks still
//  waiting in the page cache would write them back first, and its sync
//  would then commit their allocation. 0, or -1 with errno set.
static int
s_write_zeros (int fd, uint64_t *size, uint64_t to, bool sync)
{
    static const uint8_t zeros[64 * 1024];
    while (*size < to) {
        uint64_t n = to - *size < sizeof (zeros) ? to - *size : sizeof (zeros);
        struct iovec iov = {(void *) zeros, (size_t) n};
        if (s_write_at (fd, &iov, 1, (size_t) n, *size))
            return -1;
        *size += n;
    }
    return sync ? fdatasync (fd) : 0;
}

//  The grower's run: the growth asked, from the size the loop knows (the
//  loop writes nothing from there on until it takes the growth in). By a
//  descriptor of its own: the kernel reports a writeback error once to
//  each open file, so the grower's sync never takes one of the loop's.
static void
s_grow_run (void *arg)
{
    arb_tasklog_t *self = (arb_tasklog_t *) arg;
    uint64_t size = self->file_size;
    self->grow_errno = s_write_zeros (self->grow_fd, &size, self->grow_to, true) ? errno : 0;
}

//  Takes in the growth asked, when the grower has ended it (wait: waits
//  for that). A growth that failed changes nothing but the asking, which
//  pauses: the loop grows the file itself when a record needs it, and
//  meets the failure then (a full disk: "Disk full", docs/broker.md).
static void
s_take_growth (arb_tasklog_t *self, bool wait)
{
    if (!self->growing || (!wait && !arb_chore_idle (self->grower)))
        return;
    arb_chore_wait (self->grower);
    self->growing = false;
    if (self->grow_errno == 0) {
        self->file_size = self->grow_to;
        return;
    }
    zsys_warning ("tasklog: the file could not grow ahead of its records; records grow it "
                  "when they need it path=%s error=\"%s\"",
                  self->path, strerror (self->grow_errno));
    self->grow_paused = true;
}

//  Starts the grower, with its own descriptor of the file: 0 or -1
//  (logged; the loop then grows the file itself).
static int
s_start_grower (arb_tasklog_t *self)
{
    self->grow_fd = open (self->path, O_RDWR | O_CLOEXEC);
    if (self->grow_fd < 0)
        zsys_warning ("tasklog: no growth ahead, cannot open path=%s error=\"%s\"", self->path,
                      strerror (errno));
    else
        self->grower = arb_chore_new ("task log growth", s_grow_run, self);
    return self->grower ? 0 : -1;
}

//  Asks the grower for the next ARB_TASKLOG_GROW_BYTES when the records
//  have come within ARB_TASKLOG_GROW_AHEAD of the file's end.
static void
s_grow_ahead (arb_tasklog_t *self)
{
    if (self->direct_fd < 0 || self->growing || self->grow_paused || self->grower_failed
        || self->file_size - self->size >= ARB_TASKLOG_GROW_AHEAD)
        return;
    if (!self->grower && s_start_grower (self)) {
        self->grower_failed = true;
        return;
    }
    self->grow_to = self->file_size + ARB_TASKLOG_GROW_BYTES;
    self->growing = true;
    arb_chore_ask (self->grower);
}

//  Grows the file with zeros to past end, ARB_TASKLOG_GROW_BYTES at a
//  time (above), synced with direct writes. 0, or -1 with errno set.
static int
s_grow (arb_tasklog_t *self, uint64_t end)
{
    uint64_t to = (end / ARB_TASKLOG_GROW_BYTES + 1) * ARB_TASKLOG_GROW_BYTES;
    if (s_write_zeros (self->fd, &self->file_size, to, self->direct_fd >= 0))
        return -1;
    self->grow_paused = false;
    return 0;
}

static uint64_t
s_block_up (uint64_t at)
{
    return (at + S_BLOCK - 1) / S_BLOCK * S_BLOCK;
}

//  Writes the block copy's first span bytes at offset at, directly, and
//  synced if sync: the bytes written, or -1 with errno set.
static ssize_t
s_write_stage (arb_tasklog_t *self, size_t span, uint64_t at, bool sync)
{
    struct iovec whole = {self->stage, span};
    ssize_t n = pwritev2 (self->direct_fd, &whole, 1, (off_t) at, sync ? RWF_DSYNC : 0);
    if (n >= 0 || !sync || errno != EOPNOTSUPP)
        return n;
    //  a kernel without RWF_DSYNC: the write, then its sync
    n = pwritev2 (self->direct_fd, &whole, 1, (off_t) at, 0);
    return n >= 0 && fdatasync (self->direct_fd) ? -1 : n;
}

//  Writes a record of total bytes from iov at size, whole blocks from the
//  one that holds size, through the direct descriptor; synced if sync.
//  0; 1 if the record does not fit the block copy, or the file system
//  refused the write (the caller writes through the page cache); -1 with
//  errno set.
static int
s_write_direct (arb_tasklog_t *self, const struct iovec *iov, int count, size_t total, bool sync)
{
    size_t from = (size_t) (self->size % S_BLOCK);
    if (self->direct_fd < 0 || total > S_STAGE - S_BLOCK)
        return 1;
    size_t end = from;
    for (int i = 0; i < count; i++) {
        if (iov[i].iov_len)  //  an empty part may have no data
            memcpy (self->stage + end, iov[i].iov_base, iov[i].iov_len);
        end += iov[i].iov_len;
    }
    size_t span = (size_t) s_block_up (end);
    memset (self->stage + end, 0, span - end);  //  past the record: no stale bytes
    ssize_t n = s_write_stage (self, span, self->size - from, sync);
    if (n < 0 && errno == EINVAL) {
        zsys_notice ("tasklog: the file system refused a direct write; the page cache serves "
                     "path=%s",
                     self->path);
        s_close_direct (self);
        return 1;
    }
    if (n != (ssize_t) span) {
        if (n >= 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

//  After a record kept: the last block, partly written, is the next
//  record's first.
static void
s_advance_stage (arb_tasklog_t *self, size_t total)
{
    size_t end = (size_t) (self->size % S_BLOCK) + total;
    memmove (self->stage, self->stage + end - end % S_BLOCK, end % S_BLOCK);
}

//  After a record written through the page cache: the copy of the last
//  block comes from the file. Without it, direct writes stop.
static void
s_reload_stage (arb_tasklog_t *self, uint64_t size)
{
    if (self->direct_fd < 0)
        return;
    size_t want = (size_t) (size % S_BLOCK);
    if (pread (self->fd, self->stage, want, (off_t) (size - want)) != (ssize_t) want)
        s_close_direct (self);
}

//  Writes a record of total bytes at size, and syncs it if sync: directly
//  if it can, else through the page cache. 0, or -1 with errno set.
static int
s_write_record (arb_tasklog_t *self, struct iovec *iov, int count, size_t total, bool sync)
{
    int failure = s_fault (self, ARB_TASKLOG_WRITE);
    if (failure) {
        errno = failure;
        return -1;
    }
    uint64_t end = self->direct_fd >= 0 ? s_block_up (self->size + total) : self->size + total;
    s_take_growth (self, end > self->file_size);
    if (end > self->file_size && s_grow (self, end))
        return -1;
    //  a test's failed sync: the record is written, not synced, and fails
    int sync_failure = sync ? s_fault (self, ARB_TASKLOG_SYNC) : 0;
    int rc = s_write_direct (self, iov, count, total, sync && !sync_failure);
    if (rc == 0 && !sync_failure)
        s_advance_stage (self, total);
    else if (rc == 1) {
        rc = s_write_at (self->fd, iov, count, total, self->size);
        if (rc == 0 && sync && !sync_failure)
            rc = fdatasync (self->fd);
        if (rc == 0 && !sync_failure)
            s_reload_stage (self, self->size + total);
    }
    if (rc == 0 && sync_failure) {
        errno = sync_failure;
        rc = -1;
    }
    //  RWF_DSYNC may make durable that write alone (a disk with FUA): the
    //  records appended without a sync before it are synced with it here
    if (rc == 0 && sync && self->unsynced)
        rc = fdatasync (self->fd);
    if (rc == 0)
        self->unsynced = !sync;
    return rc;
}

int
arb_tasklog_append (
    arb_tasklog_t *self, uint64_t gen, const arb_tasklog_part_t *parts, size_t count, bool sync)
{
    assert (count < 8);
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += parts[i].size;
    assert (total <= S_MAX_BODY);
    uint32_t body_size = (uint32_t) total;
    uint8_t head[S_HEAD_SIZE] = {0};
    uint32_t magic = ARB_TASKLOG_MAGIC;
    uint32_t crc = s_record_crc (self, gen, body_size, parts, count);
    memcpy (head, &magic, 4);
    memcpy (head + 4, &body_size, 4);
    memcpy (head + 8, &gen, 8);
    memcpy (head + 16, &crc, 4);
    struct iovec iov[8];
    iov[0] = (struct iovec){head, S_HEAD_SIZE};
    for (size_t i = 0; i < count; i++)
        iov[i + 1] = (struct iovec){(void *) parts[i].data, parts[i].size};
    size_t record = S_HEAD_SIZE + total;
    self->doubtful = false;
    if (s_write_record (self, iov, (int) count + 1, record, sync)) {
        int failure = errno;
        s_take_growth (self, true);  //  the file's size, for the unmaking, settled
        errno = failure;
        self->doubtful = s_unmake (self) != 0;
        return -1;
    }
    self->size += record;
    s_grow_ahead (self);
    return 0;
}

bool
arb_tasklog_is_doubtful (arb_tasklog_t *self)
{
    return self->doubtful;
}

int
arb_tasklog_clear (arb_tasklog_t *self)
{
    //  The next records overwrite these, in blocks the file has already
    //  (above, on growing it). Past the current end the old records stay, of
    //  an older generation, or cut by a new one: the reader skips them, or
    //  stops there. A file grown past ARB_TASKLOG_KEEP_BYTES is cut.
    self->size = 0;
    s_take_growth (self, true);  //  before a cut
    if (self->file_size <= ARB_TASKLOG_KEEP_BYTES)
        return 0;
    if (ftruncate (self->fd, 0))
        return -1;
    self->file_size = 0;
    return 0;
}

uint64_t
arb_tasklog_size (arb_tasklog_t *self)
{
    return self->size;
}

bool
arb_tasklog_direct (arb_tasklog_t *self)
{
    return self->direct_fd >= 0;
}

void
arb_tasklog_set_fault (arb_tasklog_t *self, arb_tasklog_fault_fn *fault)
{
    self->fault = fault;
}
