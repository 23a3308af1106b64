/*  arb_cli_args.h — parsing of the arbiter CLI's option values.

    Pure functions, no I/O, so that every rule is unit-tested
    (tests/unit/test_cli_args.c). Each parser returns 0 and the value, or -1
    and a short reason in err ("expected seconds, like 30 or 0.25, not
    'abc'") that the caller prefixes with the option's name:

        arbiter: --delay: expected seconds, like 30 or 0.25, not 'abc'

    Values are strict: no sign where none belongs, no trailing garbage,
    no exponent or hex, no silent clamping; a value beyond its bound is
    refused, naming the bound.
*/

#ifndef ARB_CLI_ARGS_H
#define ARB_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A parser's reason for refusing a value.
typedef struct {
    char text[160];
} arb_cli_err_t;

//  Seconds with an optional fraction ("30", "0.25", "1.5") into ms, rounded
//  to the nearest ms, but a value above 0 below 1 ms is 1 ms (0 is none:
//  "0.0004" is never that); at most max_ms.
int arb_cli_parse_seconds (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err);

//  A duration: seconds as arb_cli_parse_seconds takes them, or a number
//  of them with a unit, s, m, h or d ("90", "1.5h", "7d"), into ms: the
//  exact value rounded to the nearest ms ("0.0001d" is 8640), a value
//  above 0 at least 1 ms; at most max_ms.
int arb_cli_parse_duration (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err);

//  A decimal integer in [0, max].
int arb_cli_parse_uint (const char *text, uint64_t max, uint64_t *value, arb_cli_err_t *err);

//  A decimal integer in [min, max], with an optional '+', or a '-' when
//  min is below 0.
int
arb_cli_parse_int (const char *text, int64_t min, int64_t max, int64_t *value, arb_cli_err_t *err);

//  An absolute time: RFC 3339 ("2026-11-23T10:00:00Z", fraction and
//  "+02:00"-style offsets allowed, 't'/'z'/space accepted as RFC 3339
//  allows) or Unix seconds ("1795000000", "1795000000.5"), into Unix ms.
//  The time may lie in the past (the task is then due at once) but not more
//  than ARB_DELAY_MAX_MS after now_ms.
int arb_cli_parse_time (const char *text, uint64_t now_ms, uint64_t *at_ms, arb_cli_err_t *err);

//  A backoff policy: "none", "fixed:SECONDS" or "exp:BASE,CAP" (seconds;
//  0 < BASE <= CAP). Stores the arb_backoff_t in *kind and the delays in ms;
//  each at most ARB_BACKOFF_MAX_MS.
int arb_cli_parse_backoff (
    const char *text, uint32_t *kind, uint64_t *ms, uint64_t *cap_ms, arb_cli_err_t *err);

//  A name (queue, key, task, worker): 1 to ARB_NAME_MAX bytes of printable
//  UTF-8 (arb_name_check).
int arb_cli_parse_name (const char *text, arb_cli_err_t *err);

#endif
