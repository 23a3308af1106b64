/*  arb_sql.c — reading SQLite columns; see arb_sql.h. */

#include "arb_sql.h"

const char *
arb_sql_text (sqlite3_stmt *stmt, int column, size_t max, arb_msg_t *msg)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    if (!text)
        return NULL;
    size_t len = strnlen (text, max);
    char *copy = (char *) arb_msg_alloc (msg, len + 1);
    memcpy (copy, text, len);
    return copy;
}

bool
arb_sql_is_name (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    int len = sqlite3_column_bytes (stmt, column);
    return text && arb_name_is_valid (text, (size_t) len);
}

zframe_t *
arb_sql_frame (sqlite3_stmt *stmt, int column)
{
    if (sqlite3_column_type (stmt, column) == SQLITE_NULL)
        return NULL;
    const void *data = sqlite3_column_blob (stmt, column);
    int size = sqlite3_column_bytes (stmt, column);
    return zframe_new (data, (size_t) size);
}
