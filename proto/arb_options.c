/*  arb_options.c — settings from one table; see arb_options.h. */

#include "arb_options.h"
#include "arb_proto.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <ini.h>
#include <unistd.h>

#define ARB_OPTION_TEXT  256   //  longest reason
#define ARB_OPTION_SHOWN 2048  //  longest value a show callback writes

struct _arb_options_t {
    const char *program;
    const arb_option_t *table;  //  borrowed
    size_t n;
    const char *default_config;
    char *config_path;  //  owned: the file read, or NULL
    zlist_t *strings;   //  owned copies of string values
    arb_options_section_fn *section_fn;
    void *section_arg;
    arb_options_check_fn *check_fn;  //  the program's own rules for values, or NULL
    void *check_arg;                 //  borrowed: check_fn's argument
    arb_options_show_fn *show_fn;    //  how --check-config prints a string, or NULL
    void *show_arg;                  //  borrowed: show_fn's argument
    bool *replaced;  //  owned, one per option: a LIST the command line has started anew
    int *set_at;     //  owned, one per option: the config file's line that set it, or 0
    bool *on_argv;   //  owned, one per option: the command line set it (after the file)
    const char *usage;
    const char *about;
    bool checking;  //  --check-config is on the command line
    //  while a file loads
    char why[ARB_OPTION_TEXT];
    char key[2 * ARB_NAME_MAX + 16];  //  section.name, for messages
    const char *path;                 //  borrowed: the file, or NULL once it is read
    int lineno;                       //  the line read last, from 1
    int section_lineno;               //  the line of the last [section] header read, from 1
    FILE *file;
    int read_errno;  //  why the file's last read failed (a directory), or 0
    char *line;      //  the line being read (getline's buffer), from off to len
    size_t line_cap;
    size_t line_len;
    size_t line_off;
    zlistx_t *long_sections;  //  the names of sections too long for inih, in order
    zlistx_t *bare;           //  s_header_t: the sections read, until one of their keys comes
};

//  A [section] header read (s_ini_read) that no key has followed yet.
typedef struct {
    int lineno;
    char name[];
} s_header_t;

arb_options_t *
arb_options_new (const char *program,
                 const arb_option_t *table,
                 size_t n,
                 const char *default_config)
{
    arb_options_t *self = (arb_options_t *) zmalloc (sizeof (arb_options_t));
    self->program = program;
    self->table = table;
    self->n = n;
    self->default_config = default_config;
    self->strings = zlist_new ();
    zlist_autofree (self->strings);
    self->replaced = (bool *) zmalloc ((n ? n : 1) * sizeof (bool));
    self->set_at = (int *) zmalloc ((n ? n : 1) * sizeof (int));
    self->on_argv = (bool *) zmalloc ((n ? n : 1) * sizeof (bool));
    return self;
}

void
arb_options_destroy (arb_options_t **self_p)
{
    assert (self_p);
    arb_options_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        if (self->table[i].type == ARB_OPT_LIST) {
            arb_opt_list_t *list = (arb_opt_list_t *) self->table[i].value;
            free (list->items);
            *list = (arb_opt_list_t){NULL, 0};
        }
    zlist_destroy (&self->strings);
    free (self->replaced);
    free (self->set_at);
    free (self->on_argv);
    free (self->config_path);
    free (self);
    *self_p = NULL;
}

void
arb_options_set_sections (arb_options_t *self, arb_options_section_fn *fn, void *arg)
{
    self->section_fn = fn;
    self->section_arg = arg;
}

void
arb_options_set_check (arb_options_t *self, arb_options_check_fn *fn, void *arg)
{
    self->check_fn = fn;
    self->check_arg = arg;
}

void
arb_options_set_show (arb_options_t *self, arb_options_show_fn *fn, void *arg)
{
    self->show_fn = fn;
    self->show_arg = arg;
}

void
arb_options_set_about (arb_options_t *self, const char *usage, const char *about)
{
    self->usage = usage;
    self->about = about;
}

const char *
arb_options_config_path (arb_options_t *self)
{
    return self->config_path;
}

//  ---------------------------------------------------------------------
//  Values

static int
s_refuse (char *why, size_t size, const char *fmt, const char *text)
{
    snprintf (why, size, fmt, text);
    return -1;
}

//  A decimal number with an optional fraction of up to 3 digits, times
//  unit (1000 for seconds into ms). -1 if malformed, 1 if well formed but
//  too large for 64 bits (a message then says out of range, as for a
//  number past an option's maximum).
static int
s_decimal (const char *text, uint64_t unit, uint64_t *out)
{
    const char *p = text;
    uint64_t whole = 0, frac = 0, scale = 1;
    bool above_zero = false;  //  a digit other than 0 anywhere
    bool too_big = false;
    //  the largest whole part whose product with unit, plus a fraction
    //  below unit, fits in 64 bits
    uint64_t limit = unit > 1 ? UINT64_MAX / unit - 1 : UINT64_MAX;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t) (*p - '0');
        if (too_big || whole > (limit - digit) / 10)
            too_big = true;
        else
            whole = whole * 10 + digit;
        above_zero |= *p != '0';
    }
    if (*p == '.' && unit > 1) {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            above_zero |= *p != '0';
            if (scale < unit) {
                frac = frac * 10 + (uint64_t) (*p - '0');
                scale *= 10;
            }
        }
    }
    if (*p)
        return -1;
    if (too_big)
        return 1;
    *out = whole * unit + frac * (unit / scale);
    //  what is finer than the unit is cut, but a value above 0 never
    //  becomes 0 (a timeout of 0 is none): 0.0004 s is 1 ms
    if (*out == 0 && above_zero)
        *out = 1;
    return 0;
}

//  A size: a number with an optional K, M or G. -1 if malformed, 1 if too
//  large for 64 bits.
static int
s_bytes (const char *text, uint64_t *out)
{
    size_t len = strlen (text);
    uint64_t unit = 1;
    char number[32];
    if (len == 0 || len >= sizeof (number))
        return -1;
    memcpy (number, text, len + 1);
    char last = number[len - 1];
    if (last == 'K' || last == 'k')
        unit = 1ull << 10;
    else if (last == 'M' || last == 'm')
        unit = 1ull << 20;
    else if (last == 'G' || last == 'g')
        unit = 1ull << 30;
    if (unit > 1)
        number[len - 1] = 0;
    uint64_t value;
    int rc = s_decimal (number, 1, &value);
    if (rc == 0 && value > UINT64_MAX / unit)
        rc = 1;
    if (rc == 0)
        *out = value * unit;
    return rc;
}

static int
s_bool (const char *text, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp (text, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp (text, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

//  The index of text among a CHOICE's words ("full|normal"), or -1.
static int
s_choice (const char *words, const char *text)
{
    size_t len = strlen (text);
    int index = 0;
    for (const char *word = words; word; index++) {
        const char *bar = strchr (word, '|');
        size_t word_len = bar ? (size_t) (bar - word) : strlen (word);
        if (len > 0 && word_len == len && memcmp (word, text, len) == 0)
            return index;
        word = bar ? bar + 1 : NULL;
    }
    return -1;
}

//  A CHOICE's word by index, into buffer.
static const char *
s_choice_word (const char *words, int index, char *buffer, size_t size)
{
    const char *word = words;
    for (int i = 0; i < index && word; i++) {
        word = strchr (word, '|');
        word = word ? word + 1 : NULL;
    }
    if (!word || index < 0)
        return "?";
    const char *bar = strchr (word, '|');
    snprintf (buffer, size, "%.*s", (int) (bar ? (size_t) (bar - word) : strlen (word)), word);
    return buffer;
}

//  At most 64 bytes of text for a message, control characters as '.'.
static const char *
s_quote (const char *text, char *buffer, size_t size)
{
    size_t i = 0;
    for (; text[i] && i < 64 && i + 1 < size; i++)
        buffer[i] = (unsigned char) text[i] < 0x20 || text[i] == 0x7f ? '.' : text[i];
    buffer[i] = 0;
    return buffer;
}

int
arb_options_value (
    const arb_option_t *option, const char *value_text, void *value, char *why, size_t size)
{
    uint64_t number = 0;
    int too_big = 0;  //  well formed, past 64 bits: out of range
    char quoted[72];
    //  what the messages quote; the value itself is parsed from value_text
    const char *text = s_quote (value_text, quoted, sizeof (quoted));
    switch (option->type) {
        case ARB_OPT_STR:
        case ARB_OPT_LIST:
            *(const char **) value = value_text;
            return 0;
        case ARB_OPT_CHOICE: {
            int index = s_choice (option->meta ? option->meta : "", value_text);
            if (index < 0) {
                //  "a|b|c" reads "a, b or c"
                char words[ARB_OPTION_TEXT] = "", word[ARB_OPTION_TEXT];
                size_t count = 1;
                for (const char *p = option->meta ? option->meta : ""; *p; p++)
                    count += *p == '|';
                for (size_t i = 0; i < count; i++) {
                    size_t used = strlen (words);
                    snprintf (words + used, sizeof (words) - used, "%s%s",
                              i == 0           ? ""
                              : i == count - 1 ? " or "
                                               : ", ",
                              s_choice_word (option->meta ? option->meta : "", (int) i, word,
                                             sizeof (word)));
                }
                snprintf (why, size, "expected %.160s, not '%.64s'", words, text);
                return -1;
            }
            *(int *) value = index;
            return 0;
        }
        case ARB_OPT_BOOL:
            if (s_bool (value_text, (bool *) value))
                return s_refuse (why, size, "expected true or false, not '%.64s'", text);
            return 0;
        case ARB_OPT_UINT:
            if ((too_big = s_decimal (value_text, 1, &number)) < 0)
                return s_refuse (why, size, "expected a whole number, not '%.64s'", text);
            break;
        case ARB_OPT_SECONDS:
            if ((too_big = s_decimal (value_text, 1000, &number)) < 0)
                return s_refuse (why, size, "expected seconds, like 30 or 0.25, not '%.64s'", text);
            break;
        case ARB_OPT_BYTES:
            if ((too_big = s_bytes (value_text, &number)) < 0)
                return s_refuse (why, size, "expected a size, like 512, 64K or 16M, not '%.64s'",
                                 text);
            break;
    }
    if (too_big || number < option->min || number > option->max) {
        if (option->type == ARB_OPT_SECONDS)
            snprintf (why, size, "%.64s is out of range (%g to %g seconds)", text,
                      (double) option->min / 1000.0, (double) option->max / 1000.0);
        else
            snprintf (why, size, "%.64s is out of range (%" PRIu64 " to %" PRIu64 ")", text,
                      option->min, option->max);
        return -1;
    }
    *(uint64_t *) value = number;
    return 0;
}

static const arb_option_t *
s_find (arb_options_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (streq (self->table[i].name, name))
            return &self->table[i];
    return NULL;
}

//  Stores text into an option, keeping a copy of a string. A list given on
//  the command line (from_argv) replaces the file's: its first item there
//  empties it.
static int
s_apply (arb_options_t *self, const arb_option_t *option, const char *text, bool from_argv)
{
    union {
        uint64_t number;
        bool flag;
        int index;
        const char *string;
    } parsed;
    if (arb_options_value (option, text, &parsed, self->why, sizeof (self->why)))
        return -1;
    if (self->check_fn
        && self->check_fn (self->check_arg, option, text, self->why, sizeof (self->why)))
        return -1;
    if (from_argv)
        self->on_argv[option - self->table] = true;
    switch (option->type) {
        case ARB_OPT_STR:
            zlist_append (self->strings, (void *) text);  //  autofree: the list keeps a copy
            *(const char **) option->value = (const char *) zlist_last (self->strings);
            break;
        case ARB_OPT_LIST: {
            arb_opt_list_t *list = (arb_opt_list_t *) option->value;
            size_t index = (size_t) (option - self->table);
            if (from_argv && !self->replaced[index]) {
                self->replaced[index] = true;
                list->count = 0;
            }
            if (option->max && list->count >= option->max) {
                snprintf (self->why, sizeof (self->why), "more than %" PRIu64 " values",
                          option->max);
                return -1;
            }
            zlist_append (self->strings, (void *) text);
            list->items =
                (const char **) realloc ((void *) list->items, (list->count + 1) * sizeof (char *));
            assert (list->items);
            list->items[list->count++] = (const char *) zlist_last (self->strings);
            break;
        }
        case ARB_OPT_BOOL:
            *(bool *) option->value = parsed.flag;
            break;
        case ARB_OPT_CHOICE:
            *(int *) option->value = parsed.index;
            break;
        default:
            *(uint64_t *) option->value = parsed.number;
            break;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  The config file

//  inih keeps a section's name in 50 bytes and cuts a longer one short,
//  silently, so that two long names could become one section. The reader
//  gives inih a header that fits in their place, "[\x01N]", N the index
//  of the whole name, which s_ini_key takes back. As fgets, for inih
//  (ini_parse_stream): a line in parts of at most num - 1 bytes. It
//  counts the lines, so that a callback can say where its key is
//  (arb_options_where: Debian's inih is built without line numbers).
#define S_INI_SECTION_MAX 49
#define S_INI_ALIAS       '\x01'

static char *
s_ini_read (char *str, int num, void *stream)
{
    arb_options_t *self = (arb_options_t *) stream;
    if (self->line_off == self->line_len) {
        errno = 0;
        ssize_t len = getline (&self->line, &self->line_cap, self->file);
        if (len < 0 && ferror (self->file))
            self->read_errno = errno ? errno : EIO;
        if (len <= 0)
            return NULL;
        self->lineno++;  //  for arb_options_where
        self->line_len = (size_t) len;
        self->line_off = 0;
        char *start = self->line;
        if (strncmp (start, "\xEF\xBB\xBF", 3) == 0)  //  a byte order mark
            start += 3;
        start += strspn (start, " \t");
        char *end = *start == '[' ? strchr (start, ']') : NULL;
        if (end) {
            self->section_lineno = self->lineno;  //  for arb_options_section_where
            size_t name_len = (size_t) (end - start - 1);
            s_header_t *header = (s_header_t *) malloc (sizeof (s_header_t) + name_len + 1);
            assert (header);
            header->lineno = self->lineno;
            memcpy (header->name, start + 1, name_len);
            header->name[name_len] = 0;
            zlistx_add_end (self->bare, header);
        }
        if (end && end - start - 1 > S_INI_SECTION_MAX) {
            zlistx_add_end (self->long_sections, strndup (start + 1, (size_t) (end - start - 1)));
            self->line_len = (size_t) snprintf (self->line, self->line_cap, "[%c%zu]\n",
                                                S_INI_ALIAS, zlistx_size (self->long_sections) - 1);
        }
    }
    size_t part = self->line_len - self->line_off;
    if (part > (size_t) num - 1)
        part = (size_t) num - 1;
    memcpy (str, self->line + self->line_off, part);
    str[part] = 0;
    self->line_off += part;
    return str;
}

static void
s_string_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  A section's whole name (see s_ini_read).
static const char *
s_ini_section (arb_options_t *self, const char *section)
{
    if (*section != S_INI_ALIAS)
        return section;
    size_t index = strtoul (section + 1, NULL, 10);
    const char *name = (const char *) zlistx_first (self->long_sections);
    for (size_t i = 0; name && i < index; i++)
        name = (const char *) zlistx_next (self->long_sections);
    return name ? name : section;
}

static int
s_ini_key (void *user, const char *section, const char *name, const char *value)
{
    arb_options_t *self = (arb_options_t *) user;
    if (self->why[0])
        return 0;  //  inih reads on after an error; the first one is reported
    section = s_ini_section (self, section);
    snprintf (self->key, sizeof (self->key), "%s%s%s", *section ? section : "", *section ? "." : "",
              name);
    if (*section) {
        //  the section read last has a key: it is not bare
        s_header_t *last = (s_header_t *) zlistx_last (self->bare);
        if (last && streq (last->name, section))
            zlistx_delete (self->bare, zlistx_cursor (self->bare));
        if (!self->section_fn) {
            snprintf (self->why, sizeof (self->why), "no sections are known here");
            return 0;
        }
        return self->section_fn (self->section_arg, section, name, value, self->why,
                                 sizeof (self->why))
                   ? 0
                   : 1;
    }
    const arb_option_t *option = s_find (self, name);
    if (!option) {
        snprintf (self->why, sizeof (self->why), "not a setting of %s", self->program);
        return 0;
    }
    //  a setting of one value given twice: which one meant the file? (a
    //  list's key repeats on purpose)
    size_t index = (size_t) (option - self->table);
    if (option->type != ARB_OPT_LIST && self->set_at[index]) {
        snprintf (self->why, sizeof (self->why), "given twice (first at line %d)",
                  self->set_at[index]);
        return 0;
    }
    self->set_at[index] = self->lineno;
    return s_apply (self, option, value, false) ? 0 : 1;
}

//  The sections without a key, given to the program's section function
//  (arb_options_section_fn): 0, or the line of the first it refuses.
static int
s_bare_sections (arb_options_t *self)
{
    for (s_header_t *header = (s_header_t *) zlistx_first (self->bare); header;
         header = (s_header_t *) zlistx_next (self->bare)) {
        if (!*header->name)
            continue;  //  "[]": inih's top level again
        self->section_lineno = header->lineno;
        snprintf (self->key, sizeof (self->key), "[%s]", header->name);
        if (!self->section_fn)
            snprintf (self->why, sizeof (self->why), "no sections are known here");
        else
            self->section_fn (self->section_arg, header->name, NULL, NULL, self->why,
                              sizeof (self->why));
        if (self->why[0])
            return header->lineno;
    }
    return 0;
}

static int
s_load (arb_options_t *self, const char *path)
{
    self->why[0] = 0;
    //  Debian's inih takes its build options at run time (library-wide
    //  settings, the same for every caller): report the first error only,
    //  and allow lines longer than its 200-byte default (lists of users,
    //  tokens).
    ini_stop_on_first_error = true;
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 16384;
    //  "# comment" and "; comment" alike, at the start of a line or after
    //  whitespace in any value (inih's default takes ';' only there, so
    //  that "token = abc # note" kept "abc # note" as the token)
    ini_start_comment_prefixes = ";#";
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = ";#";
    self->file = fopen (path, "r");
    if (!self->file) {
        fprintf (stderr, "%s: %s: cannot read: %s\n", self->program, path, strerror (errno));
        return -1;
    }
    self->long_sections = zlistx_new ();
    zlistx_set_destructor (self->long_sections, s_string_free);
    self->bare = zlistx_new ();
    zlistx_set_destructor (self->bare, s_string_free);
    self->path = path;
    self->lineno = 0;
    self->read_errno = 0;
    int rc = ini_parse_stream (s_ini_read, self, s_ini_key, self);
    //  fopen opens a directory, whose read then fails: it is no empty file
    int read_errno = self->read_errno;
    if (rc == 0 && !read_errno)
        rc = s_bare_sections (self);
    self->path = NULL;
    fclose (self->file);
    self->file = NULL;
    free (self->line);
    self->line = NULL;
    self->line_cap = self->line_len = self->line_off = 0;
    zlistx_destroy (&self->long_sections);
    zlistx_destroy (&self->bare);
    if (rc == -2) {
        fprintf (stderr, "%s: %s: out of memory\n", self->program, path);
        return -1;
    }
    if (rc == 0 && read_errno) {
        fprintf (stderr, "%s: %s: cannot read: %s\n", self->program, path, strerror (read_errno));
        return -1;
    }
    if (rc > 0) {
        if (self->why[0])
            fprintf (stderr, "%s: %s:%d: %s: %s\n", self->program, path, rc, self->key, self->why);
        else
            fprintf (stderr, "%s: %s:%d: not a `name = value` line or a [section]\n", self->program,
                     path, rc);
        return -1;
    }
    self->config_path = strdup (path);
    return 0;
}

//  --config FILE (or --config=FILE) on the command line, else the default
//  file if it exists, else none.
static int
s_load_config (arb_options_t *self, int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (streq (argv[i], "--"))
            break;
        if (streq (argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --config needs a file\n", self->program);
                return -1;
            }
            path = argv[i + 1];
        }
        else if (strncmp (argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    if (!path && self->default_config && access (self->default_config, F_OK) == 0)
        path = self->default_config;
    return path ? s_load (self, path) : 0;
}

//  ---------------------------------------------------------------------
//  The command line

//  One option's line of --help: its names, then its help wrapped to 79
//  columns under itself.
static void
s_help_line (const char *left, const char *help)
{
    const size_t indent = 31, width = 79;
    printf ("  %-28s", left);
    size_t column = 30;
    //  names that reach the help's column end the line: the help after a
    //  single space would read as the option's argument
    if (strlen (left) >= 28) {
        printf ("\n%*s", (int) indent - 1, "");
        column = indent - 1;
    }
    const char *word = help;
    while (*word) {
        size_t len = strcspn (word, " ");
        if (column + 1 + len > width && column > indent) {
            printf ("\n%*s", (int) indent - 1, "");
            column = indent - 1;
        }
        printf (" %.*s", (int) len, word);
        column += 1 + len;
        word += len;
        while (*word == ' ')
            word++;
    }
    printf ("\n");
}

static void
s_help (arb_options_t *self)
{
    printf ("usage: %s %s\n\n", self->program, self->usage ? self->usage : "[OPTIONS]");
    if (self->about)
        printf ("%s\n\n", self->about);
    printf ("Options (each is also a key of the config file: `name = value`):\n");
    for (size_t i = 0; i < self->n; i++) {
        const arb_option_t *o = &self->table[i];
        char left[64];
        if (o->short_name)
            snprintf (left, sizeof (left), "-%c, --%s%s%s", o->short_name, o->name,
                      o->meta ? " " : "", o->meta ? o->meta : "");
        else
            snprintf (left, sizeof (left), "    --%s%s%s", o->name, o->meta ? " " : "",
                      o->meta ? o->meta : "");
        if (o->type == ARB_OPT_BOOL) {
            //  its negation, which turns off what a config file set
            char help[ARB_OPTION_TEXT + 64];
            snprintf (help, sizeof (help), "%s; --no-%s turns it off", o->help, o->name);
            s_help_line (left, help);
            continue;
        }
        s_help_line (left, o->help);
    }
    char config_help[ARB_OPTION_TEXT];
    if (self->default_config)
        snprintf (config_help, sizeof (config_help),
                  "read settings from FILE first (flags override it; default: %s, if it "
                  "exists)",
                  self->default_config);
    else
        snprintf (config_help, sizeof (config_help),
                  "read settings from FILE first (flags override it)");
    printf ("\nOn the command line only:\n");
    s_help_line ("    --config FILE", config_help);
    s_help_line ("    --check-config", "check the settings, print them, and exit");
    s_help_line ("-h, --help", "print this help and exit");
    s_help_line ("    --version", "print the version and exit");
}

#define ARB_OPT_CONFIG  1000
#define ARB_OPT_CHECK   1001
#define ARB_OPT_VERSION 1002
#define ARB_OPT_HELP    'h'

arb_options_rc_t
arb_options_parse (arb_options_t *self, int argc, char **argv, int *first)
{
    struct option *longs = (struct option *) zmalloc ((2 * self->n + 5) * sizeof (struct option));
    //  a flag set in the config file is turned off on the command line
    //  with --no-NAME (the file's "NAME = false")
    char **negated = (char **) zmalloc ((self->n + 1) * sizeof (char *));
    char shorts[128] = "+:h";
    size_t k = 0;
    for (size_t i = 0; i < self->n; i++) {
        const arb_option_t *o = &self->table[i];
        int has_arg = o->type == ARB_OPT_BOOL ? no_argument : required_argument;
        longs[k++] = (struct option){o->name, has_arg, NULL, (int) (2000 + i)};
        if (o->type == ARB_OPT_BOOL) {
            negated[i] = zsys_sprintf ("no-%s", o->name);
            longs[k++] = (struct option){negated[i], no_argument, NULL, (int) (4000 + i)};
        }
        if (o->short_name && strlen (shorts) + 3 < sizeof (shorts)) {
            size_t len = strlen (shorts);
            shorts[len] = o->short_name;
            shorts[len + 1] = has_arg == no_argument ? 0 : ':';
            shorts[len + 2] = 0;
        }
    }
    longs[k++] = (struct option){"config", required_argument, NULL, ARB_OPT_CONFIG};
    longs[k++] = (struct option){"check-config", no_argument, NULL, ARB_OPT_CHECK};
    longs[k++] = (struct option){"help", no_argument, NULL, ARB_OPT_HELP};
    longs[k++] = (struct option){"version", no_argument, NULL, ARB_OPT_VERSION};

    arb_options_rc_t rc = ARB_OPTIONS_RUN;
    //  --help and --version answer even when the file is bad
    for (int i = 1; i < argc && !streq (argv[i], "--"); i++)
        if (streq (argv[i], "--help") || streq (argv[i], "-h")) {
            s_help (self);
            rc = ARB_OPTIONS_EXIT;
            goto done;
        }
        else if (streq (argv[i], "--version")) {
            printf ("%s %s (protocol %d)\n", self->program, ARB_VERSION, ARB_PROTO_VERSION);
            rc = ARB_OPTIONS_EXIT;
            goto done;
        }
    for (int i = 1; i < argc && !streq (argv[i], "--"); i++)
        if (streq (argv[i], "--check-config"))
            self->checking = true;
    if (s_load_config (self, argc, argv)) {
        rc = ARB_OPTIONS_BAD;
        goto done;
    }
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long (argc, argv, shorts, longs, NULL)) != -1) {
        if (c == ARB_OPT_CONFIG)
            continue;  //  read above
        if (c == ARB_OPT_CHECK) {
            rc = ARB_OPTIONS_CHECK;
            continue;
        }
        if (c == ':' || c == '?') {
            arb_options_refuse (self, "%s %s", argv[optind - 1],
                                c == ':' ? "needs a value" : "is not an option");
            rc = ARB_OPTIONS_BAD;
            goto done;
        }
        if (c >= 4000 && (size_t) (c - 4000) < self->n) {
            const arb_option_t *flag = &self->table[c - 4000];
            snprintf (self->key, sizeof (self->key), "%s", flag->name);
            *(bool *) flag->value = false;
            continue;
        }
        const arb_option_t *o = NULL;
        if (c >= 2000 && (size_t) (c - 2000) < self->n)
            o = &self->table[c - 2000];
        for (size_t i = 0; !o && i < self->n; i++)
            if (self->table[i].short_name == c)
                o = &self->table[i];
        assert (o);
        snprintf (self->key, sizeof (self->key), "%s", o->name);
        if (o->type == ARB_OPT_BOOL && !optarg)
            *(bool *) o->value = true;
        else if (s_apply (self, o, optarg, true)) {
            arb_options_refuse (self, "--%s: %s", o->name, self->why);
            rc = ARB_OPTIONS_BAD;
            goto done;
        }
    }
    if (first)
        *first = optind;
    else if (optind < argc) {
        arb_options_refuse (self, "unexpected argument '%s'", argv[optind]);
        rc = ARB_OPTIONS_BAD;
    }
done:
    for (size_t i = 0; i < self->n; i++)
        zstr_free (&negated[i]);
    free (negated);
    free (longs);
    return rc;
}

void
arb_options_refuse (arb_options_t *self, const char *format, ...)
{
    char text[ARB_OPTION_TEXT * 2];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    fprintf (stderr, "%s: %s\nsee %s --help\n", self->program, text, self->program);
}

void
arb_options_print (arb_options_t *self, FILE *out)
{
    //  an installed daemon's default file that is not there says where it
    //  looked: a file put in another prefix's directory shows here
    if (self->config_path)
        fprintf (out, "# %s settings from %s\n", self->program, self->config_path);
    else if (self->default_config)
        fprintf (out, "# %s settings (no config file: %s does not exist)\n", self->program,
                 self->default_config);
    else
        fprintf (out, "# %s settings (no config file)\n", self->program);
    for (size_t i = 0; i < self->n; i++) {
        const arb_option_t *o = &self->table[i];
        switch (o->type) {
            case ARB_OPT_STR: {
                const char *s = *(const char **) o->value;
                char shown[ARB_OPTION_SHOWN];
                if (s && self->show_fn
                    && self->show_fn (self->show_arg, o, s, shown, sizeof (shown)))
                    fprintf (out, "%s = %s\n", o->name, shown);
                else if (s)
                    fprintf (out, "%s = %s\n", o->name, s);
                else
                    fprintf (out, "# %s = (not set)\n", o->name);
                break;
            }
            case ARB_OPT_BOOL:
                fprintf (out, "%s = %s\n", o->name, *(bool *) o->value ? "true" : "false");
                break;
            case ARB_OPT_CHOICE: {
                char word[ARB_OPTION_TEXT];
                fprintf (
                    out, "%s = %s\n", o->name,
                    s_choice_word (o->meta ? o->meta : "", *(int *) o->value, word, sizeof (word)));
                break;
            }
            case ARB_OPT_LIST: {
                const arb_opt_list_t *list = (const arb_opt_list_t *) o->value;
                char shown[ARB_OPTION_SHOWN];
                //  an empty list may stand for a default the program applies
                if (list->count == 0 && self->show_fn
                    && self->show_fn (self->show_arg, o, NULL, shown, sizeof (shown)))
                    fprintf (out, "%s = %s\n", o->name, shown);
                else if (list->count == 0)
                    fprintf (out, "# %s = (none)\n", o->name);
                for (size_t k = 0; k < list->count; k++)
                    fprintf (out, "%s = %s\n", o->name, list->items[k]);
                break;
            }
            case ARB_OPT_SECONDS: {
                uint64_t ms = *(uint64_t *) o->value;
                fprintf (out, "%s = %" PRIu64 ".%03" PRIu64 "\n", o->name, ms / 1000, ms % 1000);
                break;
            }
            default:
                fprintf (out, "%s = %" PRIu64 "\n", o->name, *(uint64_t *) o->value);
                break;
        }
    }
}

bool
arb_options_is_checking (arb_options_t *self)
{
    return self->checking;
}

void
arb_options_section_where (arb_options_t *self, char *buf, size_t size)
{
    if (self->path)
        snprintf (buf, size, "%s:%d", self->path, self->section_lineno);
    else
        snprintf (buf, size, "the command line");
}

void
arb_options_where (arb_options_t *self, char *buf, size_t size)
{
    if (self->path)
        snprintf (buf, size, "%s:%d: %s", self->path, self->lineno, self->key);
    else
        snprintf (buf, size, "--%s", self->key);
}

const char *
arb_options_origin (
    arb_options_t *self, const char *name, const char *otherwise, char *buf, size_t size)
{
    const arb_option_t *option = s_find (self, name);
    assert (option);
    size_t index = (size_t) (option - self->table);
    if (self->on_argv[index])
        snprintf (buf, size, "--%s", name);
    else if (self->set_at[index] && self->config_path)
        snprintf (buf, size, "%s:%d: %s", self->config_path, self->set_at[index], name);
    else
        snprintf (buf, size, "%s", otherwise);
    return buf;
}
