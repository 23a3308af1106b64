/*  arb_sql.h — binding a SQLite statement's parameters and reading its
    columns, as the journal does everywhere: the small helpers are inline,
    because the hot path binds some thirty values a task.

    Reading what a row holds for the broker to use: the journal is only
    ever written by the broker, but a damaged or hand-edited one can hold
    anything a column can (the schema's types are not enforced). A row the
    broker cannot use is skipped, or read as absent, with a log line, never
    handed on to index an array or be sent where a peer refuses it:
    arb_sql_is_name, arb_sql_small and arb_sql_text (cut to a limit) say
    so or make it so.
*/

#ifndef ARB_SQL_H
#define ARB_SQL_H

#include "arb_proto.h"

#include <sqlite3.h>

//  Resets a statement and clears its bindings, for its next use.
static inline void
arb_sql_done (sqlite3_stmt *stmt)
{
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
}

//  Binds text (not copied: it must outlive the statement's run); NULL
//  binds SQL NULL.
static inline void
arb_sql_bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

static inline void
arb_sql_bind_u64 (sqlite3_stmt *stmt, int index, uint64_t value)
{
    sqlite3_bind_int64 (stmt, index, (sqlite3_int64) value);
}

//  Binds a bound of a range of ids (after_id, before_id) a peer gave: one
//  past the largest id SQLite holds is that largest id, not a negative
//  number that every id is past.
static inline void
arb_sql_bind_id_bound (sqlite3_stmt *stmt, int index, uint64_t value)
{
    sqlite3_bind_int64 (stmt, index, value > INT64_MAX ? INT64_MAX : (sqlite3_int64) value);
}

//  Binds a frame's bytes (not copied); NULL binds SQL NULL, an empty frame
//  an empty blob.
static inline void
arb_sql_bind_frame (sqlite3_stmt *stmt, int index, zframe_t *frame)
{
    if (frame)
        sqlite3_bind_blob (stmt, index, zframe_data (frame), (int) zframe_size (frame),
                           SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

//  Binds a bin's bytes (not copied); data NULL binds SQL NULL, size 0 with
//  data an empty blob.
static inline void
arb_sql_bind_bin (sqlite3_stmt *stmt, int index, arb_bin_t bin)
{
    if (bin.data)
        sqlite3_bind_blob (stmt, index, bin.size ? (const void *) bin.data : "", (int) bin.size,
                           SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

static inline uint64_t
arb_sql_u64 (sqlite3_stmt *stmt, int column)
{
    return (uint64_t) sqlite3_column_int64 (stmt, column);
}

//  A column's value if it is an integer in [low, high]; else -1.
static inline int
arb_sql_small (sqlite3_stmt *stmt, int column, int low, int high)
{
    if (sqlite3_column_type (stmt, column) != SQLITE_INTEGER)
        return -1;
    sqlite3_int64 value = sqlite3_column_int64 (stmt, column);
    return value >= low && value <= high ? (int) value : -1;
}

//  A copy of a text column in the message's arena, cut to max bytes (the
//  field's limit on the wire: a longer text, which only a damaged journal
//  holds, would make the whole reply one no client decodes), or NULL.
const char *arb_sql_text (sqlite3_stmt *stmt, int column, size_t max, arb_msg_t *msg);

//  Whether a column holds a name (arb_name_check): text, 1 to ARB_NAME_MAX
//  bytes, no NUL.
bool arb_sql_is_name (sqlite3_stmt *stmt, int column);

//  A new frame with a blob column's bytes, or NULL for SQL NULL.
zframe_t *arb_sql_frame (sqlite3_stmt *stmt, int column);

#endif
