/*  arb_cli_text.c — formatting of times, durations and task bytes for the
    arbiter CLI. Results are opaque bytes: the CLI shows them as text when
    they are text, escaped when they are not, base64 in JSON when they are
    not UTF-8, and never lets them break a line-per-task output.
*/

#include "arb_cli_text.h"
#include "arb_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *
s_alloc (size_t size)
{
    void *mem = malloc (size);
    if (!mem)
        abort ();  //  out of memory
    return mem;
}

void
arb_cli_format_time (uint64_t ms, char *buf, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    if (!gmtime_r (&seconds, &tm)) {
        snprintf (buf, size, "?");
        return;
    }
    char date[32];
    strftime (date, sizeof (date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%03uZ", date, (unsigned) (ms % 1000));
}

//  Indexed by outcome: ARB_OUTCOME_* then ARB_ATTEMPT_*.
static const char *s_outcomes[] = {"ok",        "failed",    "released", "lease lost",
                                   "timed out", "cancelled", "running"};

const char *
arb_cli_outcome_name (uint32_t outcome)
{
    return outcome < sizeof (s_outcomes) / sizeof (s_outcomes[0]) ? s_outcomes[outcome] : "?";
}

void
arb_cli_format_duration (uint64_t ms, char *buf, size_t size)
{
    unsigned long long s = ms / 1000;
    if (ms < 1000)
        snprintf (buf, size, "%llu ms", (unsigned long long) ms);
    else if (ms < 60000)
        snprintf (buf, size, "%.1f s", ms / 1000.0);
    else if (s < 3600)
        snprintf (buf, size, "%llu min %02llu s", s / 60, s % 60);
    else if (s < 86400)
        snprintf (buf, size, "%llu h %02llu min", s / 3600, s % 3600 / 60);
    else
        snprintf (buf, size, "%llu d %02llu h", s / 86400, s % 86400 / 3600);
}

bool
arb_cli_is_utf8 (const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size;) {
        size_t len = arb_utf8_len (data + i, size - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

//  The code point of the valid UTF-8 sequence p of len bytes.
static uint32_t
s_code_point (const uint8_t *p, size_t len)
{
    static const uint8_t lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = p[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3f);
    return cp;
}

//  The columns a code point takes (a short table, not the whole of
//  Unicode's East Asian Width: the blocks names are written in).
static size_t
s_cp_columns (uint32_t cp)
{
    if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x200b && cp <= 0x200f)
        || (cp >= 0xfe00 && cp <= 0xfe0f))
        return 0;  //  combining marks, zero-width spaces and joiners, selectors
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e)
        || (cp >= 0x3041 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3)
        || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f)
        || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6)
        || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f900 && cp <= 0x1f9ff)
        || (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

//  The bytes and columns of the character at text (a byte that is not
//  UTF-8: one and one).
static size_t
s_char (const char *text, size_t *columns)
{
    const uint8_t *p = (const uint8_t *) text;
    size_t len = arb_utf8_len (p, strnlen (text, 4));
    if (len <= 1) {
        *columns = 1;
        return 1;
    }
    *columns = s_cp_columns (s_code_point (p, len));
    return len;
}

size_t
arb_cli_columns (const char *text)
{
    size_t total = 0;
    while (*text) {
        size_t columns;
        text += s_char (text, &columns);
        total += columns;
    }
    return total;
}

int
arb_cli_pad (const char *text, int columns)
{
    size_t taken = arb_cli_columns (text);
    return columns + (int) (strlen (text) - taken);
}

void
arb_cli_format_attempts (uint32_t attempts, uint32_t max_attempts, char *buf, size_t size)
{
    if (attempts <= max_attempts)
        snprintf (buf, size, "%u/%u", attempts, max_attempts);
    else
        snprintf (buf, size, "%u", attempts);
}

void
arb_cli_clip (char *text, size_t columns)
{
    if (columns < 4 || arb_cli_columns (text) <= columns)
        return;
    size_t used = 0, at = 0, width;
    while (text[at]) {
        size_t len = s_char (text + at, &width);
        if (used + width > columns - 3)
            break;
        used += width;
        at += len;
    }
    strcpy (text + at, "...");
}

//  C1 control characters (U+0080..U+009F) are valid UTF-8 but terminal
//  commands: escape them like ASCII controls.
static bool
s_is_c1 (const uint8_t *p, size_t len)
{
    return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

char *
arb_cli_escape (const uint8_t *data, size_t size)
{
    char *out = (char *) s_alloc (size * 4 + 1);  //  \xNN is the longest form of a byte
    size_t used = 0;
    for (size_t i = 0; i < size;) {
        uint8_t b = data[i];
        size_t len = arb_utf8_len (data + i, size - i);
        const char *named = b == '\n'   ? "\\n"
                            : b == '\r' ? "\\r"
                            : b == '\t' ? "\\t"
                            : b == '\\' ? "\\\\"
                                        : NULL;
        if (named) {
            memcpy (out + used, named, 2);
            used += 2;
            i++;
        }
        else if ((len > 1 && !s_is_c1 (data + i, len)) || (len == 1 && b >= 0x20 && b != 0x7f)) {
            memcpy (out + used, data + i, len);
            used += len;
            i += len;
        }
        else {
            used += (size_t) sprintf (out + used, "\\x%02x", b);
            i++;
        }
    }
    out[used] = 0;
    return out;
}

char *
arb_cli_escape_str (const char *text)
{
    return arb_cli_escape ((const uint8_t *) (text ? text : ""), text ? strlen (text) : 0);
}

char *
arb_cli_base64 (const uint8_t *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = (char *) s_alloc ((size + 2) / 3 * 4 + 1);
    size_t used = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t chunk = (uint32_t) data[i] << 16;
        if (i + 1 < size)
            chunk |= (uint32_t) data[i + 1] << 8;
        if (i + 2 < size)
            chunk |= data[i + 2];
        out[used++] = alphabet[(chunk >> 18) & 63];
        out[used++] = alphabet[(chunk >> 12) & 63];
        out[used++] = i + 1 < size ? alphabet[(chunk >> 6) & 63] : '=';
        out[used++] = i + 2 < size ? alphabet[chunk & 63] : '=';
    }
    out[used] = 0;
    return out;
}
