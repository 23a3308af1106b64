/*  arb_kestrel_cmd.c — Kestrel command lines; see arb_kestrel_cmd.h.

    The line is cut into at most ARB_TOKENS_MAX tokens; a line with more
    is refused. Numbers are plain decimal digits (no sign but exptime's,
    no spaces, no leading '+'), checked for overflow, because a memcache
    client never sends anything else and anything else is a mistake.
*/

#include "arb_kestrel_cmd.h"
#include "arb_proto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ARB_TOKENS_MAX 8

typedef struct {
    const char *p;
    size_t len;
} s_token_t;

static arb_kestrel_rc_t
s_refuse (arb_kestrel_rc_t rc, char *why, size_t size, const char *text)
{
    snprintf (why, size, "%s", text);
    return rc;
}

static bool
s_is (s_token_t token, const char *word)
{
    return token.len == strlen (word) && strncasecmp (token.p, word, token.len) == 0;
}

//  Unsigned decimal of at most max; 0 or -1.
static int
s_unsigned (s_token_t token, uint64_t max, uint64_t *value)
{
    if (token.len == 0 || token.len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < token.len; i++) {
        char c = token.p[i];
        if (c < '0' || c > '9')
            return -1;
        uint64_t digit = (uint64_t) (c - '0');
        if (v > (max - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *value = v;
    return 0;
}

//  Signed 32-bit decimal (memcache's exptime is a 32-bit number).
static int
s_signed (s_token_t token, int64_t *value)
{
    bool negative = token.len > 0 && token.p[0] == '-';
    s_token_t digits = {token.p + negative, token.len - negative};
    uint64_t v;
    if (s_unsigned (digits, negative ? 2147483648ull : 2147483647ull, &v))
        return -1;
    *value = negative ? -(int64_t) v : (int64_t) v;
    return 0;
}

//  Length of the well-formed UTF-8 character at p (1 to 4), or 0.
static size_t
s_utf8_char (const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1fu : n == 3 ? c & 0x0fu : c & 0x07u;
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (p[i] & 0x3fu);
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;  //  overlong, beyond Unicode, or a surrogate
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
        return 0;  //  control characters are not printable
    return n;
}

int
arb_kestrel_cmd_check_queue (
    const char *name, size_t len, size_t *parent_len, char *why, size_t size)
{
    *parent_len = 0;
    if (len == 0) {
        snprintf (why, size, "empty queue name");
        return -1;
    }
    if (len > ARB_NAME_MAX) {
        snprintf (why, size, "queue name of %zu bytes, over %d", len, ARB_NAME_MAX);
        return -1;
    }
    const uint8_t *p = (const uint8_t *) name;
    for (size_t i = 0; i < len;) {
        size_t n = s_utf8_char (p + i, len - i);
        if (n == 0 || p[i] == ' ') {
            snprintf (why, size, "queue name is not printable UTF-8 at byte %zu", i);
            return -1;
        }
        if (p[i] == '/' || p[i] == '~' || p[i] == '.' || p[i] == '@') {
            //  / ~ . are Kestrel's; @ the broker's mark of a worker's
            //  endpoint queue and of queue metadata keys
            snprintf (why, size, "queue name has '%c' (one of / ~ . @ is reserved)", p[i]);
            return -1;
        }
        if (p[i] == '+' && *parent_len == 0)
            *parent_len = i;
        i += n;
    }
    const char *plus = memchr (name, '+', len);
    if (plus && (plus == name || plus == name + len - 1)) {
        snprintf (why, size, "fan-out queue name needs a parent and a child: parent+child");
        return -1;
    }
    return 0;
}

//  The key: queue name and, for get, options. usage is the command's
//  form, for the refusals that a client is most likely to make by
//  sending no key at all.
static arb_kestrel_rc_t
s_parse_key (
    s_token_t key, bool options, const char *usage, arb_kestrel_cmd_t *cmd, char *why, size_t size)
{
    if (key.len > ARB_KESTREL_KEY_MAX) {
        snprintf (why, size, "key of %zu bytes, over %d (%s)", key.len, ARB_KESTREL_KEY_MAX, usage);
        return ARB_KESTREL_BAD;
    }
    cmd->key = key.p;
    cmd->key_len = key.len;
    const char *slash = memchr (key.p, '/', key.len);
    cmd->queue = key.p;
    cmd->queue_len = slash ? (size_t) (slash - key.p) : key.len;
    if (cmd->queue_len == 0) {
        snprintf (why, size, "empty queue name (%s)", usage);
        return ARB_KESTREL_BAD;
    }
    if (slash && !options)
        return s_refuse (ARB_KESTREL_BAD, why, size, "queue name has '/' (options are for get)");
    if (arb_kestrel_cmd_check_queue (cmd->queue, cmd->queue_len, &cmd->parent_len, why, size))
        return ARB_KESTREL_BAD;
    const char *p = slash, *end = key.p + key.len;
    while (p && p < end) {
        const char *start = p + 1;
        const char *next = memchr (start, '/', (size_t) (end - start));
        s_token_t opt = {start, (size_t) ((next ? next : end) - start)};
        //  As Kestrel reads them: each option it knows sets its flag (once
        //  or again), the last t= counts, and any other one is ignored
        //  (an empty one too: `q//open`). Only a control byte is refused:
        //  the key goes back in the VALUE line, which it must not break.
        for (size_t i = 0; i < opt.len; i++)
            if ((unsigned char) opt.p[i] < 0x21 || opt.p[i] == 0x7f) {
                //  quoted in the answer line: at most 32 bytes, non-printables as '.'
                char quoted[33];
                size_t n = opt.len < 32 ? opt.len : 32;
                for (size_t j = 0; j < n; j++)
                    quoted[j] = opt.p[j] > 0x20 && opt.p[j] < 0x7f ? opt.p[j] : '.';
                quoted[n] = 0;
                snprintf (why, size, "control character in get option '%s%s'", quoted,
                          opt.len > 32 ? "..." : "");
                return ARB_KESTREL_BAD;
            }
        if (opt.len >= 2 && strncmp (opt.p, "t=", 2) == 0) {
            uint64_t ms;
            if (s_unsigned ((s_token_t){opt.p + 2, opt.len - 2}, ARB_KESTREL_WAIT_MAX, &ms))
                return s_refuse (ARB_KESTREL_BAD, why, size,
                                 "bad get option t=: a wait in ms, at most 2147483647");
            cmd->wait = true;
            cmd->wait_ms = (uint32_t) ms;
        }
        else if (opt.len == 4 && memcmp (opt.p, "open", 4) == 0)
            cmd->open = true;
        else if (opt.len == 5 && memcmp (opt.p, "close", 5) == 0)
            cmd->close = true;
        else if (opt.len == 5 && memcmp (opt.p, "abort", 5) == 0)
            cmd->abort = true;
        else if (opt.len == 4 && memcmp (opt.p, "peek", 4) == 0)
            cmd->peek = true;
        p = next;
    }
    if ((cmd->peek || cmd->abort) && (cmd->open || cmd->close || (cmd->peek && cmd->abort)))
        return s_refuse (ARB_KESTREL_BAD, why, size,
                         "peek and abort go with neither open nor close, nor with each other");
    return ARB_KESTREL_OK;
}

//  A storage command: <key> <flags> <exptime> <bytes> [cas] [noreply]. The
//  length comes first, so that a refused command's block can be skipped.
#define S_SET_USAGE "set <queue> <flags> <exptime> <bytes> [noreply]"

static arb_kestrel_rc_t
s_parse_storage (
    s_token_t *tokens, size_t n, bool cas, arb_kestrel_cmd_t *cmd, char *why, size_t size)
{
    size_t fixed = cas ? 6 : 5;
    if (n < 5)
        //  which one is missing cannot be told, nor so the block's length
        return s_refuse (ARB_KESTREL_FATAL, why, size, "missing fields (" S_SET_USAGE ")");
    if (s_unsigned (tokens[4], UINT64_MAX, &cmd->bytes))
        return s_refuse (ARB_KESTREL_FATAL, why, size, "bad data chunk length (" S_SET_USAGE ")");
    cmd->noreply = n == fixed + 1 && s_is (tokens[fixed], "noreply");
    cmd->skip = true;
    if (n != fixed && !cmd->noreply)
        return s_refuse (ARB_KESTREL_BAD, why, size, "too many fields (" S_SET_USAGE ")");
    if (cas || !s_is (tokens[0], "set")) {
        snprintf (why, size, "%.*s is not supported: queues take set", (int) tokens[0].len,
                  tokens[0].p);
        return ARB_KESTREL_BAD;
    }
    uint64_t flags;
    if (s_unsigned (tokens[2], UINT32_MAX, &flags))
        return s_refuse (ARB_KESTREL_BAD, why, size, "bad flags: a number of 0 to 4294967295");
    cmd->flags = (uint32_t) flags;
    if (s_signed (tokens[3], &cmd->exptime))
        return s_refuse (ARB_KESTREL_BAD, why, size, "bad exptime: a 32-bit number of seconds");
    arb_kestrel_rc_t rc = s_parse_key (tokens[1], false, S_SET_USAGE, cmd, why, size);
    if (rc == ARB_KESTREL_OK)
        cmd->skip = false;
    return rc;
}

arb_kestrel_rc_t
arb_kestrel_cmd_parse (const char *line, size_t len, arb_kestrel_cmd_t *cmd, char *why, size_t size)
{
    memset (cmd, 0, sizeof (*cmd));
    if (len > ARB_KESTREL_LINE_MAX)
        return s_refuse (ARB_KESTREL_FATAL, why, size, "line too long");
    s_token_t tokens[ARB_TOKENS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        if (n == ARB_TOKENS_MAX && (s_is (tokens[0], "get") || s_is (tokens[0], "gets")))
            break;  //  a get's keys past its first are ignored, however many
        if (n == ARB_TOKENS_MAX)
            return s_refuse (ARB_KESTREL_FATAL, why, size, "too many tokens");
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        tokens[n++] = (s_token_t){line + start, i - start};
    }
    if (n == 0)
        return s_refuse (ARB_KESTREL_BAD, why, size, "empty command line");
    s_token_t word = tokens[0];
    //  Fields are separated by one space: two after the command word
    //  leave its key empty (as Kestrel splits the line). Tokens are cut at
    //  any number of spaces, so that is looked at only when a line of a
    //  command with a key and [noreply] is a field short (`set  0 0 1`,
    //  `delete  noreply`): an empty key goes in, and the command is
    //  refused for it by name (a set's block skipped by its length).
    const char *after = word.p + word.len;
    bool key_gap = after + 1 < line + len && after[0] == ' ' && after[1] == ' ';
    bool storage = s_is (word, "set") || s_is (word, "add") || s_is (word, "replace")
                   || s_is (word, "append") || s_is (word, "prepend") || s_is (word, "cas");
    bool with_noreply = n > 1 && s_is (tokens[n - 1], "noreply");
    size_t short_by_key = storage ? (s_is (word, "cas") ? 5 : 4)
                          : s_is (word, "delete") || s_is (word, "flush") ? 1
                                                                          : 0;
    if (key_gap && short_by_key && n - (size_t) with_noreply == short_by_key
        && n < ARB_TOKENS_MAX) {
        memmove (tokens + 2, tokens + 1, (n - 1) * sizeof (s_token_t));
        tokens[1] = (s_token_t){after + 1, 0};
        n++;
    }
    //  storage commands first: a refused one still says how much to skip
    if (storage) {
        cmd->verb = ARB_KESTREL_SET;
        return s_parse_storage (tokens, n, s_is (word, "cas"), cmd, why, size);
    }
    //  a missing key is an empty one
    s_token_t key = n > 1 ? tokens[1] : (s_token_t){after, 0};
    if (s_is (word, "get") || s_is (word, "gets")) {
        cmd->verb = ARB_KESTREL_GET;
        cmd->gets = s_is (word, "gets");
        const char *usage = cmd->gets ? "gets <queue>[/options]" : "get <queue>[/options]";
        //  `get a b`: the first key, the others ignored, as Kestrel does
        //  (a memcache client's multi-get gets what the first queue has)
        return s_parse_key (key, true, usage, cmd, why, size);
    }
    if (s_is (word, "delete") || s_is (word, "flush")) {
        cmd->verb = s_is (word, "delete") ? ARB_KESTREL_DELETE : ARB_KESTREL_FLUSH;
        const char *usage = cmd->verb == ARB_KESTREL_DELETE ? "delete <queue> [noreply]"
                                                            : "flush <queue> [noreply]";
        //  noreply after the queue: `delete noreply` names the queue
        //  noreply, as in Kestrel (`delete  noreply`, with its key left
        //  empty, is refused in silence). Fields between are ignored, as
        //  Kestrel does: memcached's `delete <key> 0 [noreply]`, which
        //  older memcache clients send
        cmd->noreply = n >= 3 && with_noreply;
        return s_parse_key (key, false, usage, cmd, why, size);
    }
    if (s_is (word, "flush_all")) {
        cmd->verb = ARB_KESTREL_FLUSH_ALL;
        cmd->noreply = with_noreply;
        uint64_t delay = 0;
        if (n > 3 || (n == 3 && !with_noreply)
            || (n == 2 + (size_t) with_noreply && s_unsigned (tokens[1], UINT32_MAX, &delay)))
            return s_refuse (ARB_KESTREL_BAD, why, size, "flush_all takes [0] [noreply]");
        if (delay)
            return s_refuse (ARB_KESTREL_BAD, why, size, "flush_all with a delay is not supported");
        return ARB_KESTREL_OK;
    }
    struct {
        const char *word;
        arb_kestrel_verb_t verb;
    } plain[] = {
        {"stats", ARB_KESTREL_STATS},
        {"version", ARB_KESTREL_VERSION},
        {"shutdown", ARB_KESTREL_SHUTDOWN},
        {"quit", ARB_KESTREL_QUIT},
    };
    //  arguments are ignored, as Kestrel does: a memcache client's
    //  `stats items` or `stats slabs` gets the one list there is
    for (size_t i = 0; i < sizeof (plain) / sizeof (plain[0]); i++)
        if (s_is (word, plain[i].word)) {
            cmd->verb = plain[i].verb;
            return ARB_KESTREL_OK;
        }
    //  Whether a data block follows is unknown: reading on could take an
    //  item's bytes for commands.
    return s_refuse (ARB_KESTREL_FATAL, why, size, "unknown command");
}

uint64_t
arb_kestrel_cmd_expires_ms (int64_t exptime, uint64_t now_ms)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    if (exptime < 1000000)
        return now_ms + (uint64_t) exptime * 1000;
    return (uint64_t) exptime * 1000;
}
