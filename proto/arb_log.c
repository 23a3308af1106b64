/*  arb_log.c — czmq's log on stderr, or in the journal; see arb_log.h. */

#include "arb_log.h"

#include <czmq.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARB_LOG_LINE_MAX 8192  //  czmq's lines are at most 1 KiB

struct _arb_log_t {
    FILE *stream;                 //  owned: the filtering stream (or NULL: czmq writes stderr)
    bool journal;                 //  stderr is the journal's: lines go with priorities
    int max_priority;             //  lines of a greater priority (less said) are dropped
    char line[ARB_LOG_LINE_MAX];  //  the line being written (a write may bring part of one)
    size_t used;                  //  bytes of line
};

//  Whether stderr is the stream JOURNAL_STREAM ("DEV:INODE") names: a
//  program started by systemd may hand its stderr to another, whose
//  stderr is then something else while the variable stays.
static bool
s_stderr_is_journal (void)
{
    const char *value = getenv ("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!value || sscanf (value, "%llu:%llu", &dev, &ino) != 2 || fstat (STDERR_FILENO, &st))
        return false;
    return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

//  The journal's priority for czmq's level letter, or -1 if the line is
//  not one of czmq's.
static int
s_priority (char letter)
{
    switch (letter) {
        case 'E':
            return 3;
        case 'W':
            return 4;
        case 'N':
            return 5;
        case 'I':
            return 6;
        case 'D':
            return 7;
        default:
            return -1;
    }
}

static void
s_write_all (const char *data, size_t size)
{
    while (size > 0) {
        ssize_t rc = write (STDERR_FILENO, data, size);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return;  //  nowhere to report it
        data += rc;
        size -= (size_t) rc;
    }
}

//  One of czmq's lines, "L: (ident) yy-mm-dd HH:MM:SS text", dropped below
//  the level, else as it is, or as "<N>text" to the journal; anything else
//  as it is.
static void
s_emit (arb_log_t *self, const char *line, size_t len)
{
    int priority = len > 3 && line[1] == ':' && line[2] == ' ' ? s_priority (line[0]) : -1;
    if (priority > self->max_priority)
        return;
    if (priority < 0 || !self->journal) {
        s_write_all (line, len);
        s_write_all ("\n", 1);
        return;
    }
    const char *text = line + 3, *end = line + len;
    if (text < end && *text == '(') {
        const char *close = memchr (text, ')', (size_t) (end - text));
        if (close && close + 1 < end && close[1] == ' ')
            text = close + 2;
    }
    //  the date and time: 17 characters and a space
    if (end - text > 18 && text[2] == '-' && text[5] == '-' && text[8] == ' ' && text[11] == ':'
        && text[17] == ' ')
        text += 18;
    char prefix[4] = {'<', (char) ('0' + priority), '>', 0};
    char out[ARB_LOG_LINE_MAX + 8];
    size_t size = (size_t) (end - text);
    memcpy (out, prefix, 3);
    memcpy (out + 3, text, size);
    out[3 + size] = '\n';
    s_write_all (out, size + 4);
}

static ssize_t
s_stream_write (void *cookie, const char *data, size_t size)
{
    arb_log_t *self = (arb_log_t *) cookie;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n' || self->used == sizeof (self->line)) {
            s_emit (self, self->line, self->used);
            self->used = 0;
            if (data[i] == '\n')
                continue;
        }
        self->line[self->used++] = data[i];
    }
    return (ssize_t) size;
}

static int
s_stream_close (void *cookie)
{
    arb_log_t *self = (arb_log_t *) cookie;
    if (self->used)
        s_emit (self, self->line, self->used);
    self->used = 0;
    return 0;
}

arb_log_t *
arb_log_new (const char *ident)
{
    arb_log_t *self = (arb_log_t *) zmalloc (sizeof (arb_log_t));
    zsys_init ();
    zsys_set_logident (ident);
    self->journal = s_stderr_is_journal ();
    self->max_priority = s_priority ('I');
    cookie_io_functions_t io = {.write = s_stream_write, .close = s_stream_close};
    self->stream = fopencookie (self, "w", io);
    //  unbuffered: each line goes out when czmq writes it, as on stderr
    if (self->stream)
        setvbuf (self->stream, NULL, _IONBF, 0);
    zsys_set_logstream (self->stream ? self->stream : stderr);
    return self;
}

void
arb_log_set_level (arb_log_t *self, int level)
{
    static const char letters[] = "EWNID";
    if (level >= 0 && level < (int) sizeof (letters) - 1)
        self->max_priority = s_priority (letters[level]);
}

void
arb_log_destroy (arb_log_t **self_p)
{
    assert (self_p);
    arb_log_t *self = *self_p;
    if (!self)
        return;
    zsys_set_logstream (stderr);
    if (self->stream)
        fclose (self->stream);
    free (self);
    *self_p = NULL;
}

bool
arb_log_is_journal (arb_log_t *self)
{
    return self->journal;
}
