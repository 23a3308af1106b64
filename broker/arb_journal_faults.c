/*  arb_journal_faults.c — a test build's SQLite VFS that fails the
    journal's writes when told to; see arb_journal_faults.h.

    It wraps SQLite's default VFS: each file it opens is the default's
    file, placed right after this VFS's own record of it, and every method
    goes through to it. Only xWrite and xSync look at the control file
    first, and only for a database or WAL file, so the failures land where
    a full disk makes them land: in the WAL append of a commit, in a
    checkpoint, in a cache spill during a statement.
*/

#include "arb_journal_faults.h"
#include "arb_proto.h"

#include <sqlite3.h>

#define S_NAME "arbiter-faults"

//  What the VFS knows: the default VFS and the control file.
typedef struct {
    sqlite3_vfs *real;  //  borrowed: SQLite's default VFS
    char *control;      //  owned: the control file's path; NULL: nothing fails
} s_faults_t;

//  One open file: SQLite's view first, the default VFS's file after it.
typedef struct {
    sqlite3_file base;         //  pMethods: s_methods
    sqlite3_file *real;        //  the default VFS's file (right after this struct)
    const s_faults_t *faults;  //  borrowed from the VFS
    bool failable;             //  a database or WAL file: its writes may be failed
} s_file_t;

typedef enum {
    S_NONE,
    S_FULL,
    S_IOERR,
    S_FSYNC,
    S_UNMAKE
} s_mode_t;

//  What the control file says now.
static s_mode_t
s_mode (const s_faults_t *faults)
{
    if (!faults->control)
        return S_NONE;
    int fd = open (faults->control, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return S_NONE;
    char word[16] = "";
    ssize_t got = read (fd, word, sizeof (word) - 1);
    close (fd);
    if (got <= 0)
        return S_NONE;
    word[got] = 0;
    if (strncmp (word, "full", 4) == 0)
        return S_FULL;
    if (strncmp (word, "ioerr", 5) == 0)
        return S_IOERR;
    if (strncmp (word, "fsync", 5) == 0)
        return S_FSYNC;
    if (strncmp (word, "unmake", 6) == 0)
        return S_UNMAKE;
    return S_NONE;
}

static sqlite3_file *
s_real (sqlite3_file *file)
{
    return ((s_file_t *) file)->real;
}

//  ---------------------------------------------------------------------
//  The file's methods: the two that fail, and the rest passed through

static int
s_write (sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset)
{
    s_file_t *self = (s_file_t *) file;
    if (self->failable) {
        s_mode_t mode = s_mode (self->faults);
        if (mode == S_FULL)
            return SQLITE_FULL;
        if (mode == S_IOERR)
            return SQLITE_IOERR_WRITE;
    }
    return self->real->pMethods->xWrite (self->real, data, amount, offset);
}

static int
s_sync (sqlite3_file *file, int flags)
{
    s_file_t *self = (s_file_t *) file;
    if (self->failable && s_mode (self->faults) == S_FSYNC)
        return SQLITE_IOERR_FSYNC;
    return self->real->pMethods->xSync (self->real, flags);
}

static int
s_close (sqlite3_file *file)
{
    return s_real (file)->pMethods->xClose (s_real (file));
}

static int
s_read (sqlite3_file *file, void *data, int amount, sqlite3_int64 offset)
{
    return s_real (file)->pMethods->xRead (s_real (file), data, amount, offset);
}

static int
s_truncate (sqlite3_file *file, sqlite3_int64 size)
{
    return s_real (file)->pMethods->xTruncate (s_real (file), size);
}

static int
s_file_size (sqlite3_file *file, sqlite3_int64 *size)
{
    return s_real (file)->pMethods->xFileSize (s_real (file), size);
}

static int
s_lock (sqlite3_file *file, int level)
{
    return s_real (file)->pMethods->xLock (s_real (file), level);
}

static int
s_unlock (sqlite3_file *file, int level)
{
    return s_real (file)->pMethods->xUnlock (s_real (file), level);
}

static int
s_check_reserved (sqlite3_file *file, int *reserved)
{
    return s_real (file)->pMethods->xCheckReservedLock (s_real (file), reserved);
}

static int
s_file_control (sqlite3_file *file, int op, void *arg)
{
    return s_real (file)->pMethods->xFileControl (s_real (file), op, arg);
}

static int
s_sector_size (sqlite3_file *file)
{
    return s_real (file)->pMethods->xSectorSize (s_real (file));
}

static int
s_device (sqlite3_file *file)
{
    return s_real (file)->pMethods->xDeviceCharacteristics (s_real (file));
}

static int
s_shm_map (sqlite3_file *file, int region, int size, int extend, void volatile **map)
{
    return s_real (file)->pMethods->xShmMap (s_real (file), region, size, extend, map);
}

static int
s_shm_lock (sqlite3_file *file, int offset, int n, int flags)
{
    return s_real (file)->pMethods->xShmLock (s_real (file), offset, n, flags);
}

static void
s_shm_barrier (sqlite3_file *file)
{
    s_real (file)->pMethods->xShmBarrier (s_real (file));
}

static int
s_shm_unmap (sqlite3_file *file, int delete_flag)
{
    return s_real (file)->pMethods->xShmUnmap (s_real (file), delete_flag);
}

static int
s_fetch (sqlite3_file *file, sqlite3_int64 offset, int amount, void **page)
{
    return s_real (file)->pMethods->xFetch (s_real (file), offset, amount, page);
}

static int
s_unfetch (sqlite3_file *file, sqlite3_int64 offset, void *page)
{
    return s_real (file)->pMethods->xUnfetch (s_real (file), offset, page);
}

//  Version 3, as the default VFS's (unix): WAL needs the shm methods.
static const sqlite3_io_methods s_methods = {
    .iVersion = 3,
    .xClose = s_close,
    .xRead = s_read,
    .xWrite = s_write,
    .xTruncate = s_truncate,
    .xSync = s_sync,
    .xFileSize = s_file_size,
    .xLock = s_lock,
    .xUnlock = s_unlock,
    .xCheckReservedLock = s_check_reserved,
    .xFileControl = s_file_control,
    .xSectorSize = s_sector_size,
    .xDeviceCharacteristics = s_device,
    .xShmMap = s_shm_map,
    .xShmLock = s_shm_lock,
    .xShmBarrier = s_shm_barrier,
    .xShmUnmap = s_shm_unmap,
    .xFetch = s_fetch,
    .xUnfetch = s_unfetch,
};

//  ---------------------------------------------------------------------
//  The VFS's methods: open wraps, the rest are the default VFS's

static sqlite3_vfs *
s_default (sqlite3_vfs *vfs)
{
    return ((s_faults_t *) vfs->pAppData)->real;
}

static int
s_open (sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    s_faults_t *faults = (s_faults_t *) vfs->pAppData;
    s_file_t *self = (s_file_t *) file;
    memset (self, 0, sizeof (*self));
    self->real = (sqlite3_file *) (self + 1);
    self->faults = faults;
    self->failable = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
    int rc = faults->real->xOpen (faults->real, name, self->real, flags, out_flags);
    //  SQLite closes a file whose pMethods is set, opened or not
    self->base.pMethods = self->real->pMethods ? &s_methods : NULL;
    return rc;
}

static int
s_delete (sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return s_default (vfs)->xDelete (s_default (vfs), name, sync_dir);
}

static int
s_access (sqlite3_vfs *vfs, const char *name, int flags, int *result)
{
    return s_default (vfs)->xAccess (s_default (vfs), name, flags, result);
}

static int
s_full_pathname (sqlite3_vfs *vfs, const char *name, int size, char *out)
{
    return s_default (vfs)->xFullPathname (s_default (vfs), name, size, out);
}

static void *
s_dl_open (sqlite3_vfs *vfs, const char *name)
{
    return s_default (vfs)->xDlOpen (s_default (vfs), name);
}

static void
s_dl_error (sqlite3_vfs *vfs, int size, char *out)
{
    s_default (vfs)->xDlError (s_default (vfs), size, out);
}

static void (*s_dl_sym (sqlite3_vfs *vfs, void *handle, const char *symbol)) (void)
{
    return s_default (vfs)->xDlSym (s_default (vfs), handle, symbol);
}

static void
s_dl_close (sqlite3_vfs *vfs, void *handle)
{
    s_default (vfs)->xDlClose (s_default (vfs), handle);
}

static int
s_randomness (sqlite3_vfs *vfs, int size, char *out)
{
    return s_default (vfs)->xRandomness (s_default (vfs), size, out);
}

static int
s_sleep (sqlite3_vfs *vfs, int us)
{
    return s_default (vfs)->xSleep (s_default (vfs), us);
}

static int
s_current_time (sqlite3_vfs *vfs, double *now)
{
    return s_default (vfs)->xCurrentTime (s_default (vfs), now);
}

static int
s_last_error (sqlite3_vfs *vfs, int size, char *out)
{
    return s_default (vfs)->xGetLastError (s_default (vfs), size, out);
}

static int
s_current_time_64 (sqlite3_vfs *vfs, sqlite3_int64 *now)
{
    return s_default (vfs)->xCurrentTimeInt64 (s_default (vfs), now);
}

const char *
arb_journal_faults_vfs (void)
{
    if (sqlite3_vfs_find (S_NAME))
        return S_NAME;
    sqlite3_vfs *real = sqlite3_vfs_find (NULL);
    if (!real || real->iVersion < 2)
        return NULL;
    //  Both live as long as the process: SQLite's registry holds them.
    s_faults_t *faults = (s_faults_t *) zmalloc (sizeof (s_faults_t));
    faults->real = real;
    const char *control = getenv (ARB_JOURNAL_FAULTS_ENV);
    faults->control = control && *control ? strdup (control) : NULL;
    sqlite3_vfs *vfs = (sqlite3_vfs *) zmalloc (sizeof (sqlite3_vfs));
    *vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int) sizeof (s_file_t) + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = S_NAME,
        .pAppData = faults,
        .xOpen = s_open,
        .xDelete = s_delete,
        .xAccess = s_access,
        .xFullPathname = s_full_pathname,
        .xDlOpen = s_dl_open,
        .xDlError = s_dl_error,
        .xDlSym = s_dl_sym,
        .xDlClose = s_dl_close,
        .xRandomness = s_randomness,
        .xSleep = s_sleep,
        .xCurrentTime = s_current_time,
        .xGetLastError = s_last_error,
        .xCurrentTimeInt64 = s_current_time_64,
    };
    if (sqlite3_vfs_register (vfs, 0) != SQLITE_OK) {
        free (faults->control);
        free (faults);
        free (vfs);
        return NULL;
    }
    if (faults->control)
        zsys_notice ("journal: test build: writes fail as %s says", faults->control);
    return S_NAME;
}

int
arb_journal_faults_errno (arb_tasklog_step_t step)
{
    sqlite3_vfs *vfs = sqlite3_vfs_find (S_NAME);
    if (!vfs)
        return 0;
    s_mode_t mode = s_mode ((const s_faults_t *) vfs->pAppData);
    if (mode == S_FULL && step == ARB_TASKLOG_WRITE)
        return ENOSPC;
    if (mode == S_IOERR && step == ARB_TASKLOG_WRITE)
        return EIO;
    if (mode == S_FSYNC && step == ARB_TASKLOG_SYNC)
        return EIO;
    if (mode == S_UNMAKE && step != ARB_TASKLOG_WRITE)
        return EIO;
    return 0;
}
