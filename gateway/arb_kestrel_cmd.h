/*  arb_kestrel_cmd.h — one Kestrel (memcache text protocol) command line,
    parsed: the command, its queue and get options, a set's flags, expiry
    and length, noreply.

    Pure functions over bytes, no I/O, no allocation: the connection hands
    in one line (without its line end) and gets a filled record back, or a
    reason for CLIENT_ERROR and whether the stream can go on. The record
    points into the caller's line, which must outlive it.

    What a line may be (../shared/protocols/amqp-kestrel-server-notes.md
    part C, with the deviations real memcache clients need):

        get <key> ... | gets <key> ...  key = queue[/option]...; the first
                                        key only, as Kestrel serves them
        set <queue> <flags> <exptime> <bytes> [noreply]
        delete <queue> [...] [noreply]  fields between ignored, as Kestrel
        flush <queue> [...] [noreply]
        flush_all [0] [noreply]
        stats | version | shutdown | quit

    The command word is case-insensitive; tokens are separated by spaces.
    Get options are t=<ms>, open, close, abort and peek in any order; as
    Kestrel reads them, a repeated one counts once, the last t= counts and
    an unknown or empty one is ignored (one with a control byte is
    refused: the key goes back in the VALUE line). Kestrel's rule that
    peek and abort go with neither open nor close (nor with each other) is
    checked here. Storage commands that
    Kestrel lacks (add, replace, append, prepend, cas) are recognised only
    so that their data block can be skipped.

    Queue names follow Kestrel and arbiter both: 1 to ARB_NAME_MAX bytes of
    printable UTF-8, no space or control character, none of '/' (the
    option separator), '~' and '.' (Kestrel reserves them) and '@' (the
    broker's mark of endpoint queues and queue metadata), and '+' only as
    the fan-out mark: `parent+child` with both parts non-empty. A key with
    its options has at most ARB_KESTREL_KEY_MAX bytes.

    A command without a key (`get`), with an empty queue name before its
    options (`get /t=10`), or with its key left empty between two spaces
    where the line is a field short (`set  0 0 1`, `delete  noreply`) is
    refused the same way for every command: `empty queue name (<its
    form>)`; a set's block is then skipped by its length, as for any bad
    key. `noreply` is one only after a key: `delete noreply` deletes the
    queue noreply, as in Kestrel.
*/

#ifndef ARB_KESTREL_CMD_H
#define ARB_KESTREL_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_KESTREL_KEY_MAX  250          //  a memcache key, options included
#define ARB_KESTREL_LINE_MAX 2048         //  a command line, without its line end
#define ARB_KESTREL_WAIT_MAX 2147483647u  //  t=<ms> at most (Kestrel's Int)

typedef enum {
    ARB_KESTREL_GET = 1,  //  get and gets
    ARB_KESTREL_SET,      //  set: a data block of `bytes` follows
    ARB_KESTREL_DELETE,
    ARB_KESTREL_FLUSH,
    ARB_KESTREL_FLUSH_ALL,
    ARB_KESTREL_STATS,
    ARB_KESTREL_VERSION,
    ARB_KESTREL_SHUTDOWN,
    ARB_KESTREL_QUIT,
} arb_kestrel_verb_t;

//  What a parse found.
typedef enum {
    ARB_KESTREL_OK = 0,      //  a command
    ARB_KESTREL_BAD = -1,    //  refused: answer CLIENT_ERROR why; skip `bytes` + 2 if skip
    ARB_KESTREL_FATAL = -2,  //  refused and the stream cannot resync: answer, then close
} arb_kestrel_rc_t;

typedef struct {
    arb_kestrel_verb_t verb;
    const char *key;  //  the key as sent (options included): borrowed from the line
    size_t key_len;
    const char *queue;  //  the queue name (the key before its first '/'): borrowed
    size_t queue_len;
    size_t parent_len;  //  a fan-out child `parent+child`: the parent's length; else 0
    //  get
    bool gets;         //  asked as gets (the reply is the same)
    bool open;         //  lease the item to this connection
    bool close;        //  complete the item this connection holds on the queue
    bool abort;        //  give it back to the head of the queue
    bool peek;         //  look without taking
    bool wait;         //  t= was given
    uint32_t wait_ms;  //  t=<ms>
    //  set
    uint32_t flags;
    int64_t exptime;  //  as sent: 0 never, < 1,000,000 seconds from now, else Unix seconds
    uint64_t bytes;   //  the data block's length (also for a refused storage command)
    bool skip;        //  BAD with a data block to skip (bytes + 2)
    bool noreply;
} arb_kestrel_cmd_t;

//  Parses one line of len bytes (no CR LF). Fills cmd and returns
//  ARB_KESTREL_OK, or returns ARB_KESTREL_BAD / _FATAL with a reason for
//  CLIENT_ERROR in why (size bytes, never empty). On BAD, cmd->skip says
//  whether a data block of cmd->bytes (+ CR LF) follows and must be
//  skipped, and cmd->noreply whether the reply is to be left out.
arb_kestrel_rc_t arb_kestrel_cmd_parse (
    const char *line, size_t len, arb_kestrel_cmd_t *cmd, char *why, size_t size);

//  Checks a queue name of len bytes by the rules above. Returns 0, or -1
//  with why filled. *parent_len gets the parent's length of a fan-out
//  child, else 0.
int arb_kestrel_cmd_check_queue (
    const char *name, size_t len, size_t *parent_len, char *why, size_t size);

//  A set's exptime as a Unix time in ms (0: never), now_ms being the Unix
//  time in ms: 0 is never; below 1,000,000 it is seconds from now;
//  otherwise a Unix time in seconds. A negative one has passed already:
//  the item expires at once (1, the earliest time there is).
uint64_t arb_kestrel_cmd_expires_ms (int64_t exptime, uint64_t now_ms);

#endif
