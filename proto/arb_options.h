/*  arb_options.h — a program's settings from one table: its command-line
    options, its config file's keys, its --help text and the effective
    settings --check-config prints.

    Each setting has one name, used as `--name VALUE` on the command line
    and as `name = value` in the config file, so that every option has a
    key and every key an option by construction. Settings are applied in
    this order: the defaults already in the variables, the config file
    (`--config FILE`, else the program's default path if that file
    exists), then the command line: a flag overrides the file.

    The file is INI, read by inih (Debian's libinih): `name = value` lines,
    `#` or `;` comments (at the start of a line, or after whitespace in a
    value: "name = w1 # note" is w1), and `[section]` headers. The program's own
    settings stand before any section; a section (`[queue.images]`, ...)
    goes to the caller's section callback, so a program can take settings
    per queue or per user without this module knowing them. A bad key or
    value stops the load with "FILE:LINE: KEY: reason".

    Values: strings; unsigned integers within bounds; seconds with an
    optional fraction ("30", "0.25"), stored as ms; sizes ("512", "64K",
    "16M", "1G"), stored as bytes; booleans (true/false, yes/no, on/off,
    1/0; on the command line a flag without a value sets true); one word
    of a fixed few ("full|normal"), stored as its index; lists of strings
    (an option given again, a key written again), where the command line's
    list replaces the file's rather than adding to it. A program that
    knows more about a value (a queue name's rules) checks it in a check
    callback, so that its refusal names the file, line and key too.

    Messages: a bad command line is one line and a hint, as the arbiter
    CLI's ("arbiterd: --sync: expected full or normal, not 'fast'" then
    "see arbiterd --help"); a bad file is "PROG: FILE:LINE: KEY: reason".

    Pure C, no global state; strings it stores are owned by the option
    set and freed by arb_options_destroy.
*/

#ifndef ARB_OPTIONS_H
#define ARB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    ARB_OPT_STR,      //  const char *: a copy owned by the option set
    ARB_OPT_UINT,     //  uint64_t in [min, max]
    ARB_OPT_SECONDS,  //  uint64_t ms in [min, max] (ms), written in seconds
    ARB_OPT_BYTES,    //  uint64_t bytes in [min, max]
    ARB_OPT_BOOL,     //  bool
    ARB_OPT_CHOICE,   //  int: the index of the value among meta's words ("full|normal")
    ARB_OPT_LIST,     //  arb_opt_list_t: strings, at most max of them (0: no limit)
} arb_opt_type_t;

//  The value of an ARB_OPT_LIST option: the array and its strings are
//  owned by the option set (freed by arb_options_destroy). Start it empty.
typedef struct {
    const char **items;
    size_t count;
} arb_opt_list_t;

typedef struct {
    const char *name;  //  --name and the file's key
    char short_name;   //  a one-letter option, or 0
    arb_opt_type_t type;
    void *value;       //  where the value goes (its type's C type); holds the default
    uint64_t min;      //  bounds of numbers (ms for SECONDS)
    uint64_t max;      //  and the most items of a LIST
    const char *meta;  //  the value's name in --help ("ADDR"), a CHOICE's words; NULL for a bool
    const char *help;  //  one line
} arb_option_t;

//  A [section] key: store it or refuse it (why filled, the load stops).
//  A section without any key comes once, with key and value NULL, after
//  the file's keys: it is there all the same ([type.NAME] declares a type
//  with the defaults). Returns 0 or -1.
typedef int (arb_options_section_fn) (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size);

typedef struct _arb_options_t arb_options_t;

//  An option set over a table of n options (borrowed: it must outlive the
//  set). program names the program in messages; default_config is the
//  file read when --config is not given and it exists (NULL: none).
arb_options_t *arb_options_new (const char *program,
                                const arb_option_t *table,
                                size_t n,
                                const char *default_config);

//  Frees the set and the strings it stored. Accepts NULL; nulls *self_p.
void arb_options_destroy (arb_options_t **self_p);

//  Sends config file sections to fn (without it a section is refused).
void arb_options_set_sections (arb_options_t *self, arb_options_section_fn *fn, void *arg);

//  A value the table's type took (the text as given): refuse it (why
//  filled) or let it be stored. Returns 0 or -1.
typedef int (arb_options_check_fn) (
    void *arg, const arb_option_t *option, const char *text, char *why, size_t size);

//  Calls fn for every value of a setting, from the file or the command
//  line, before it is stored.
void arb_options_set_check (arb_options_t *self, arb_options_check_fn *fn, void *arg);

//  A string setting as --check-config prints it: fn writes what to print
//  into buf (size bytes) and returns true, or returns false to print the
//  value as it is. For values that hold a secret (a URL's password). An
//  empty list comes with value NULL: what fn writes is printed as its one
//  value (the default the program applies), else "# NAME = (none)".
typedef bool (arb_options_show_fn) (
    void *arg, const arb_option_t *option, const char *value, char *buf, size_t size);

//  Calls fn for every string setting and empty list arb_options_print
//  prints.
void arb_options_set_show (arb_options_t *self, arb_options_show_fn *fn, void *arg);

//  A paragraph printed by --help between the usage line and the options.
void arb_options_set_about (arb_options_t *self, const char *usage, const char *about);

//  What arb_options_parse found.
typedef enum {
    ARB_OPTIONS_RUN = 0,    //  settings applied: run the program
    ARB_OPTIONS_EXIT = 1,   //  --help or --version printed: exit 0
    ARB_OPTIONS_CHECK = 2,  //  --check-config: the settings were checked; print them and exit 0
    ARB_OPTIONS_BAD = -1,   //  a message was printed on stderr: exit 2
} arb_options_rc_t;

//  Applies the config file, then argv (besides the table's options it
//  takes --config FILE, --check-config, -h/--help and --version). The
//  positional arguments left start at *first (argc if none); with first
//  NULL the program takes none, and one left over is refused as a bad
//  option is. Messages go to stderr, --help and --version to stdout.
arb_options_rc_t arb_options_parse (arb_options_t *self, int argc, char **argv, int *first);

//  Prints a usage error found after arb_options_parse (a setting that
//  needs another, an argument left over) as parse does: one line and a
//  hint. The caller exits with status 2.
void arb_options_refuse (arb_options_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Whether --check-config is on the command line (known before the file
//  is read: a callback may check more, or otherwise, than for a start).
bool arb_options_is_checking (arb_options_t *self);

//  For a check or section callback: where the value it is given comes
//  from, as a message names it ("FILE:LINE: section.key", or "--name"
//  on the command line), into buf.
void arb_options_where (arb_options_t *self, char *buf, size_t size);

//  After arb_options_parse: where the setting name (one of the table's)
//  was given, as arb_options_where names it ("FILE:LINE: name", or
//  "--name" when the command line gave it, over the file), into buf;
//  otherwise if it holds its default (where the default came from: an
//  environment variable's "$NAME"). Returns buf.
const char *arb_options_origin (
    arb_options_t *self, const char *name, const char *otherwise, char *buf, size_t size);

//  For a section callback: where the header of the section it is given
//  a key of stands ("FILE:LINE"), into buf; for a check that a section
//  lacks a key, said once the file is read.
void arb_options_section_where (arb_options_t *self, char *buf, size_t size);

//  The config file that was read, or NULL if none.
const char *arb_options_config_path (arb_options_t *self);

//  Prints every setting as `name = value` in the file's format (the
//  effective settings, for --check-config).
void arb_options_print (arb_options_t *self, FILE *out);

//  Parses a value of the given type for name (used for section keys too;
//  not for a LIST, whose items are strings). Returns 0, or -1 with why
//  filled.
int arb_options_value (
    const arb_option_t *option, const char *text, void *value, char *why, size_t size);

#endif
