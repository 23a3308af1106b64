/*  arb_log.h — where a program's log goes: czmq's zsys_* log, on stderr,
    and in systemd's journal with each line's priority when the program
    runs as a service.

    czmq writes a line as "I: (arbiterd) 26-05-01 10:00:00 text". When
    stderr is the journal's stream (JOURNAL_STREAM names its device and
    inode, as systemd sets it for a service whose output goes to the
    journal), each line goes out as "<6>text" instead: journald takes the
    "<N>" prefix for the line's priority (SyslogLevelPrefix=, on by
    default) and keeps its own timestamp and the unit's identifier, so
    `journalctl -u arbiterd -p warning` shows the warnings and errors. The
    journal's stream rather than syslog(3) because it needs no /dev/log in
    the service's sandbox and keeps what the program writes to stderr
    itself in the same place, in order.

    The journal stream is a stdio stream of its own (fopencookie) that
    turns czmq's lines into the journal's; its state lives in that stream,
    owned by the arb_log_t. Call arb_log_new in main before any thread
    starts, and destroy it last.

    A level (the daemons' --log-level, ARB_LOG_OPTION) drops the lines
    below it: czmq writes every line, debug ones too (a line per client
    connection), so the stream filters them, on stderr as in the journal.
    The default is info.
*/

#ifndef ARB_LOG_H
#define ARB_LOG_H

#include <stdbool.h>

typedef struct _arb_log_t arb_log_t;

//  The levels, least to most said: a CHOICE option's words, whose index
//  arb_log_set_level takes.
#define ARB_LOG_LEVELS "error|warning|notice|info|debug"
#define ARB_LOG_INFO   3  //  the default: the index of info

//  The daemons' option (an entry of an arb_option_t table) over an int
//  that holds the level's index (ARB_LOG_INFO by default).
#define ARB_LOG_OPTION(level_p)                                                              \
    {                                                                                        \
        "log-level", 0, ARB_OPT_CHOICE, (level_p), 0, 0, ARB_LOG_LEVELS,                     \
            "the least a log line must be to be written: error, warning, notice, info (the " \
            "default) or debug (a line per connection or task, and more)"                    \
    }

//  Starts czmq (zsys_init) and sends its log to stderr, or to the journal
//  as above, under ident (the program's name, borrowed: a literal).
arb_log_t *arb_log_new (const char *ident);

//  Sends the log back to plain stderr and frees the journal stream. Accepts
//  NULL; nulls *self_p.
void arb_log_destroy (arb_log_t **self_p);

//  Writes only lines at level (an index of ARB_LOG_LEVELS) or above.
void arb_log_set_level (arb_log_t *self, int level);

//  Whether lines go to the journal with priorities.
bool arb_log_is_journal (arb_log_t *self);

#endif
