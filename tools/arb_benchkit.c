/*  arb_benchkit.c — shared by the benchmarks; see arb_benchkit.h. */

#include "arb_benchkit.h"
#include "arb_options.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int64_t
arb_benchkit_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
arb_benchkit_stamp (char *payload, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    int64_t now = arb_benchkit_now_us ();
    char head[ARB_BENCHKIT_STAMP];
    for (int i = 0; i < ARB_BENCHKIT_STAMP; i++)
        head[i] = digits[((uint64_t) now >> (4 * (ARB_BENCHKIT_STAMP - 1 - i))) & 15];
    memcpy (payload, head, size < ARB_BENCHKIT_STAMP ? size : ARB_BENCHKIT_STAMP);
    //  the letters after it, 'a' + i % 26 at offset i, a run at a time: the
    //  stamp is on every producer's path, beside the system measured
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    for (size_t at = ARB_BENCHKIT_STAMP; at < size;) {
        size_t from = at % 26, n = 26 - from;
        if (n > size - at)
            n = size - at;
        memcpy (payload + at, letters + from, n);
        at += n;
    }
    return now;
}

int64_t
arb_benchkit_stamp_of (const void *payload, size_t size)
{
    if (!payload || size < ARB_BENCHKIT_STAMP)
        return -1;
    const uint8_t *p = (const uint8_t *) payload;
    uint64_t at = 0;
    for (int i = 0; i < ARB_BENCHKIT_STAMP; i++) {
        uint8_t c = p[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        at = at << 4 | (uint64_t) digit;
    }
    return (int64_t) at;  //  a monotonic time in µs: under 2^63, so never negative
}

void
arb_benchkit_sleep_until (int64_t at_us)
{
    struct timespec ts = {.tv_sec = at_us / 1000000, .tv_nsec = (at_us % 1000000) * 1000};
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  The p-th percentile of n sorted values (nearest rank).
static double
s_rank (const int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t at = (size_t) (p / 100.0 * (double) n + 0.999999);
    at = at ? at - 1 : 0;
    return (double) sorted[at < n ? at : n - 1];
}

arb_benchkit_lat_t
arb_benchkit_latency (int64_t *values, size_t n)
{
    arb_benchkit_lat_t lat = {.n = n};
    if (n == 0)
        return lat;
    qsort (values, n, sizeof (int64_t), s_compare_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double) values[i];
    lat.p50 = s_rank (values, n, 50) / 1000.0;
    lat.p90 = s_rank (values, n, 90) / 1000.0;
    lat.p99 = s_rank (values, n, 99) / 1000.0;
    lat.max = (double) values[n - 1] / 1000.0;
    lat.mean = sum / (double) n / 1000.0;
    return lat;
}

//  One durable write of the probe's i-th record: 0 or -1.
static int
s_probe_write (
    int fd, int direct_fd, uint8_t *block, size_t bytes, int i, arb_benchkit_sync_how_t how)
{
    if (how == ARB_BENCHKIT_DIRECT) {
        //  block is the whole file's image: the record at its offset, and
        //  the 4 KiB blocks it lies in written from there
        size_t at = bytes * (size_t) i;
        size_t from = at / 4096 * 4096, end = at + bytes;
        size_t span = (end - from + 4095) / 4096 * 4096;
        memset (block + at, 'x', bytes);
        if (direct_fd >= 0) {
            struct iovec iov = {block + from, span};
            return pwritev2 (direct_fd, &iov, 1, (off_t) from, RWF_DSYNC) == (ssize_t) span ? 0
                                                                                            : -1;
        }
        return pwrite (fd, block + at, bytes, (off_t) at) == (ssize_t) bytes && fdatasync (fd) == 0
                   ? 0
                   : -1;
    }
    off_t at = how == ARB_BENCHKIT_OVERWRITE ? 0 : (off_t) bytes * (i + 1);
    return pwrite (fd, block, bytes, at) == (ssize_t) bytes && fdatasync (fd) == 0 ? 0 : -1;
}

int
arb_benchkit_fsync_probe (
    const char *dir, int count, size_t bytes, arb_benchkit_sync_how_t how, arb_benchkit_sync_t *out)
{
    memset (out, 0, sizeof (*out));
    char path[4096];
    snprintf (path, sizeof (path), "%s/fsync-probe-%d", dir, (int) getpid ());
    int fd = open (path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0)
        return -1;
    //  the direct records' file: zeros for all of them, on the disk first
    size_t room = (bytes * (size_t) count + 8192) / 4096 * 4096;
    size_t block_size = how == ARB_BENCHKIT_DIRECT ? room : (bytes ? bytes : 1);
    uint8_t *block = NULL;
    if (posix_memalign ((void **) &block, 4096, block_size)) {
        close (fd);
        unlink (path);
        return -1;
    }
    memset (block, how == ARB_BENCHKIT_DIRECT ? 0 : 'x', block_size);
    int64_t *times = (int64_t *) calloc ((size_t) count, sizeof (int64_t));
    int rc = 0;
    //  one write + sync first, so that the file exists on disk
    if (how == ARB_BENCHKIT_DIRECT)
        rc = pwrite (fd, block, room, 0) == (ssize_t) room && fsync (fd) == 0 ? 0 : -1;
    else if (pwrite (fd, block, bytes, 0) != (ssize_t) bytes || fsync (fd))
        rc = -1;
    int direct_fd = how == ARB_BENCHKIT_DIRECT ? open (path, O_RDWR | O_DIRECT) : -1;
    int64_t started = arb_benchkit_now_us ();
    for (int i = 0; i < count && rc == 0; i++) {
        int64_t t0 = arb_benchkit_now_us ();
        rc = s_probe_write (fd, direct_fd, block, bytes, i, how);
        times[i] = arb_benchkit_now_us () - t0;
    }
    if (rc == 0) {
        out->count = count;
        out->seconds = (double) (arb_benchkit_now_us () - started) / 1e6;
        out->per_s = count / out->seconds;
        arb_benchkit_lat_t lat = arb_benchkit_latency (times, (size_t) count);
        out->p50_us = lat.p50 * 1000.0;
        out->p99_us = lat.p99 * 1000.0;
        out->max_us = lat.max * 1000.0;
        for (int i = 0; i < count; i++)
            out->stalls += times[i] > ARB_BENCHKIT_STALL_US;
    }
    if (direct_fd >= 0)
        close (direct_fd);
    close (fd);
    unlink (path);
    free (times);
    free (block);
    return rc;
}

//  The parent of pid, from /proc/PID/stat, or -1.
static pid_t
s_parent (pid_t pid)
{
    char path[64], line[512];
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    pid_t parent = -1;
    if (fgets (line, sizeof (line), file)) {
        char *close = strrchr (line, ')');  //  the name may hold spaces
        int ppid;
        if (close && sscanf (close + 1, " %*c %d", &ppid) == 1)
            parent = ppid;
    }
    fclose (file);
    return parent;
}

static long
s_rss_kb (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof (path), "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long kb = -1;
    while (file && fgets (line, sizeof (line), file))
        if (sscanf (line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (file)
        fclose (file);
    return kb;
}

//  Whether pid descends from root.
static bool
s_descends (pid_t pid, pid_t root)
{
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        pid = s_parent (pid);
        if (pid == root)
            return true;
    }
    return false;
}

long
arb_benchkit_tree_rss_kb (pid_t pid)
{
    long total = s_rss_kb (pid);
    if (total < 0)
        return -1;
    DIR *proc = opendir ("/proc");
    struct dirent *entry;
    while (proc && (entry = readdir (proc))) {
        pid_t other = (pid_t) atoi (entry->d_name);
        if (other > 0 && other != pid && s_descends (other, pid)) {
            long kb = s_rss_kb (other);
            if (kb > 0)
                total += kb;
        }
    }
    if (proc)
        closedir (proc);
    return total;
}

//  From /proc/PID/stat: its minor faults and its user and system ticks;
//  false if pid is gone.
static bool
s_stat_of (pid_t pid, unsigned long *minflt, unsigned long *utime, unsigned long *stime)
{
    char path[64], line[1024];
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    bool ok = false;
    if (file && fgets (line, sizeof (line), file)) {
        char *close = strrchr (line, ')');
        ok = close
             && sscanf (close + 1, " %*c %*d %*d %*d %*d %*d %*u %lu %*u %*u %*u %lu %lu", minflt,
                        utime, stime)
                    == 3;
    }
    if (file)
        fclose (file);
    return ok;
}

double
arb_benchkit_cpu_s (pid_t pid)
{
    unsigned long minflt, utime, stime;
    if (!s_stat_of (pid, &minflt, &utime, &stime))
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

long
arb_benchkit_minflt (pid_t pid)
{
    unsigned long minflt, utime, stime;
    return s_stat_of (pid, &minflt, &utime, &stime) ? (long) minflt : -1;
}

double
arb_benchkit_load (void)
{
    double load = -1;
    FILE *file = fopen ("/proc/loadavg", "r");
    if (file && fscanf (file, "%lf", &load) != 1)
        load = -1;
    if (file)
        fclose (file);
    return load;
}

arb_benchkit_shared_t *
arb_benchkit_shared_new (int64_t capacity)
{
    size_t size = sizeof (arb_benchkit_shared_t) + (size_t) capacity * sizeof (int64_t);
    void *block = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED)
        return NULL;
    arb_benchkit_shared_t *shared = (arb_benchkit_shared_t *) block;
    shared->capacity = capacity;
    return shared;
}

void
arb_benchkit_shared_reset (arb_benchkit_shared_t *shared, int64_t expect)
{
    atomic_store (&shared->done, 0);
    atomic_store (&shared->end_us, 0);
    atomic_store (&shared->stop, 0);
    shared->expect = expect;
}

void
arb_benchkit_shared_free (arb_benchkit_shared_t **shared_p)
{
    arb_benchkit_shared_t *shared = *shared_p;
    if (!shared)
        return;
    munmap (shared, sizeof (arb_benchkit_shared_t) + (size_t) shared->capacity * sizeof (int64_t));
    *shared_p = NULL;
}

void
arb_benchkit_shared_done (arb_benchkit_shared_t *shared, const void *payload, size_t size)
{
    int64_t now = arb_benchkit_now_us ();
    int64_t at = arb_benchkit_stamp_of (payload, size);
    int64_t slot = atomic_fetch_add (&shared->done, 1);
    if (slot < shared->capacity)
        shared->lat[slot] = at >= 0 ? now - at : 0;
    if (slot + 1 == shared->expect)
        atomic_store (&shared->end_us, now);
}

bool
arb_benchkit_shared_wait (arb_benchkit_shared_t *shared, int stall_ms)
{
    int64_t last = atomic_load (&shared->done), since = arb_benchkit_now_us ();
    while (last < shared->expect) {
        usleep (500);
        int64_t now_done = atomic_load (&shared->done);
        if (now_done != last) {
            last = now_done;
            since = arb_benchkit_now_us ();
        }
        else if (arb_benchkit_now_us () - since > (int64_t) stall_ms * 1000)
            return false;
    }
    return true;
}

void
arb_benchkit_json_head (FILE *out, const char *system, const char *workload, const char *what)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    char at[32];
    strftime (at, sizeof (at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf (out,
             "{\"system\": \"%s\", \"workload\": \"%s\", \"what\": \"%s\", \"at\": \"%s\", "
             "\"load\": %.2f",
             system, workload, what, at, arb_benchkit_load ());
}

void
arb_benchkit_refuse (const char *program, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    fprintf (stderr, "%s: %s\nsee %s --help\n", program, text, program);
}

//  One value through arb_options_value, refused as arb_benchkit_whole says.
static int
s_value (const char *program,
         const char *name,
         const char *text,
         arb_opt_type_t type,
         uint64_t min,
         uint64_t max,
         uint64_t *value)
{
    arb_option_t option = {.name = name, .type = type, .min = min, .max = max};
    char why[256];
    if (arb_options_value (&option, text, value, why, sizeof (why)) == 0)
        return 0;
    arb_benchkit_refuse (program, "--%s: %s", name, why);
    return -1;
}

int
arb_benchkit_whole (
    const char *program, const char *name, const char *text, int min, int max, int *value)
{
    uint64_t number;
    assert (min >= 0 && min <= max);
    if (s_value (program, name, text, ARB_OPT_UINT, (uint64_t) min, (uint64_t) max, &number))
        return -1;
    *value = (int) number;
    return 0;
}

int
arb_benchkit_seconds (const char *program, const char *name, const char *text, uint64_t max_ms)
{
    uint64_t ms;
    return s_value (program, name, text, ARB_OPT_SECONDS, 0, max_ms, &ms);
}

//  Whether name is one of the comma-separated words of words.
static bool
s_word_of (const char *name, const char *words)
{
    size_t len = strlen (name);
    for (const char *word = words; *word;) {
        size_t word_len = strcspn (word, ",");
        if (len > 0 && word_len == len && memcmp (word, name, len) == 0)
            return true;
        word += word_len + (word[word_len] == ',');
    }
    return false;
}

bool
arb_benchkit_workloads_known (const char *program, const char *list, const char *known, bool all)
{
    char shown[256];  //  known, as the message lists it
    size_t at = 0;
    for (const char *c = known; *c && at + 3 < sizeof (shown); c++) {
        shown[at++] = *c;
        if (*c == ',')
            shown[at++] = ' ';
    }
    shown[at] = '\0';
    bool ok = true;
    char *names = strdup (list);
    for (char *name = strtok (names, ","); name; name = strtok (NULL, ","))
        if (!(all && strcmp (name, "all") == 0) && !s_word_of (name, known)) {
            fprintf (stderr, "%s: unknown workload %s (%s)\n", program, name, shown);
            ok = false;
        }
    free (names);
    return ok;
}
