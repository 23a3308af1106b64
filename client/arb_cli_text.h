/*  arb_cli_text.h — how the arbiter CLI writes values for people and for
    JSON: times, durations, task results and errors on one line.

    Pure functions (no I/O), unit-tested in tests/unit/test_cli_text.c.
    Functions that return char * hand the caller a malloc'd string.
*/

#ifndef ARB_CLI_TEXT_H
#define ARB_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Unix ms as RFC 3339 in UTC with ms: "2026-11-23T10:00:00.123Z".
void arb_cli_format_time (uint64_t ms, char *buf, size_t size);

//  A duration for people: "350 ms", "12.3 s", "4 min 05 s", "3 h 04 min",
//  "2 d 03 h".
void arb_cli_format_duration (uint64_t ms, char *buf, size_t size);

//  A task's attempts against its bound: "2/3"; only the count ("9") once
//  past the bound, as a queue whose failures go back to the head (its real
//  bound is the broker's --max-head-failures) runs a task beyond it, and
//  "9/1" would read as a count gone wrong.
void arb_cli_format_attempts (uint32_t attempts, uint32_t max_attempts, char *buf, size_t size);

//  Whether the bytes are valid UTF-8 (no overlong forms, no surrogates).
bool arb_cli_is_utf8 (const uint8_t *data, size_t size);

//  The bytes as one line of text: valid UTF-8 and printable characters as
//  they are; \n \r \t \\ escaped; any other byte as \xNN. Caller frees.
char *arb_cli_escape (const uint8_t *data, size_t size);

//  The columns text takes on a terminal: a character one, an East Asian
//  wide one (CJK, Hangul, full-width forms, most emoji) two, a combining
//  mark none; a byte that is not UTF-8 one.
size_t arb_cli_columns (const char *text);

//  The printf field width ("%-*s") that pads text to columns on a
//  terminal: columns plus its bytes beyond the columns it takes.
int arb_cli_pad (const char *text, int columns);

//  Cuts text in place to at most columns (at least 4), ending in "..." if
//  cut, never inside a character.
void arb_cli_clip (char *text, size_t columns);

//  Name of an attempt's outcome (ARB_OUTCOME_* then ARB_ATTEMPT_*: "ok",
//  "failed", "released", "lease lost", "timed out", "cancelled",
//  "running"), or "?".
const char *arb_cli_outcome_name (uint32_t outcome);

//  arb_cli_escape of a C string; NULL is the empty string. Caller frees.
char *arb_cli_escape_str (const char *text);

//  Standard base64 (RFC 4648, with padding). Caller frees.
char *arb_cli_base64 (const uint8_t *data, size_t size);

#endif
