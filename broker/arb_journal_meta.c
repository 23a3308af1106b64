/*  arb_journal_meta.c — the journal's metadata (key/value records, the
    broker's epoch) and periodic schedules; see arb_journal.h and, for the
    schema, arb_journal.c.
*/

#include "arb_journal_priv.h"

//  ---------------------------------------------------------------------
//  Metadata

int
arb_journal_meta_get (arb_journal_t *self, const char *key, zchunk_t **value)
{
    sqlite3_stmt *stmt = self->meta_get;
    arb_sql_bind_text (stmt, 1, key);
    int rc = arb_journal_step (self, stmt);
    *value = NULL;
    if (rc == SQLITE_ROW)
        *value =
            zchunk_new (sqlite3_column_blob (stmt, 0), (size_t) sqlite3_column_bytes (stmt, 0));
    return arb_journal_read_end (self, stmt, rc, "meta", 0);
}

int
arb_journal_meta_set (arb_journal_t *self, const char *key, const void *data, size_t size)
{
    sqlite3_stmt *stmt = self->meta_set;
    arb_sql_bind_text (stmt, 1, key);
    sqlite3_bind_blob (stmt, 2, data, (int) size, SQLITE_STATIC);
    return arb_journal_run (self, stmt, "meta set");
}

int
arb_journal_meta_del (arb_journal_t *self, const char *key)
{
    sqlite3_stmt *stmt = self->meta_del;
    arb_sql_bind_text (stmt, 1, key);
    return arb_journal_run (self, stmt, "meta del");
}

int
arb_journal_meta_list (arb_journal_t *self, const char *prefix, arb_journal_meta_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->meta_list;
    arb_sql_bind_text (stmt, 1, prefix ? prefix : "");
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        //  an empty or NULL value's blob pointer is NULL: fn gets "" instead
        const void *data = sqlite3_column_blob (stmt, 1);
        fn (arg, (const char *) sqlite3_column_text (stmt, 0), data ? data : "",
            (size_t) sqlite3_column_bytes (stmt, 1));
    }
    arb_sql_done (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Binds the range of keys that begin with prefix to ?1 and ?2: from the
//  prefix itself to the first string after every key that begins with it
//  (the prefix with its last byte raised; a byte 0xff is dropped and the
//  one before raised). end is scratch of strlen (prefix) + 1 bytes.
static void
s_bind_prefix (sqlite3_stmt *stmt, const char *prefix, char *end)
{
    size_t len = strlen (prefix);
    memcpy (end, prefix, len + 1);
    while (len > 0 && (uint8_t) end[len - 1] == 0xff)
        len--;
    sqlite3_bind_text (stmt, 1, prefix, -1, SQLITE_STATIC);
    if (len == 0) {
        sqlite3_bind_null (stmt, 2);  //  every key
        return;
    }
    end[len - 1] = (char) ((uint8_t) end[len - 1] + 1);
    sqlite3_bind_text (stmt, 2, end, (int) len, SQLITE_STATIC);
}

int
arb_journal_meta_page (arb_journal_t *self,
                       const char *prefix,
                       const char *after,
                       uint32_t limit,
                       arb_journal_meta_take_fn *fn,
                       void *arg,
                       bool *more)
{
    sqlite3_stmt *stmt = self->meta_page;
    char *end = strdup (prefix);
    s_bind_prefix (stmt, prefix, end);
    arb_sql_bind_text (stmt, 3, after ? after : "");
    //  no LIMIT: a row too long for a reply is skipped, and must not take
    //  the place of one after it (*more would be wrong)
    sqlite3_bind_int64 (stmt, 4, -1);
    *more = false;
    uint32_t count = 0;
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text (stmt, 0);
        size_t key_size = (size_t) sqlite3_column_bytes (stmt, 0);
        const void *data = sqlite3_column_blob (stmt, 1);
        size_t size = (size_t) sqlite3_column_bytes (stmt, 1);
        if (!key || key_size > ARB_TEXT_MAX || size > ARB_META_VALUE_MAX) {
            zsys_error ("journal: meta key of %zu bytes skipped: key or value of %zu bytes over "
                        "its limit",
                        key_size, size);
            continue;
        }
        if (count++ == limit || fn (arg, key, data ? data : "", size)) {
            *more = true;
            break;
        }
    }
    rc = arb_journal_read_end (self, stmt, rc, "meta page", 0);
    free (end);
    return rc;
}

int
arb_journal_meta_del_prefix (arb_journal_t *self, const char *prefix)
{
    sqlite3_stmt *stmt = self->meta_del_range;
    char *end = strdup (prefix);
    s_bind_prefix (stmt, prefix, end);
    int rc = arb_journal_run (self, stmt, "meta delete prefix");
    free (end);
    return rc;
}

int
arb_journal_meta_number (arb_journal_t *self, const char *key, uint64_t *number)
{
    zchunk_t *value;
    if (arb_journal_meta_get (self, key, &value))
        return -1;
    *number = 0;
    if (value) {
        char text[32] = "";
        size_t size =
            zchunk_size (value) < sizeof (text) - 1 ? zchunk_size (value) : sizeof (text) - 1;
        memcpy (text, zchunk_data (value), size);
        *number = strtoull (text, NULL, 10);
        zchunk_destroy (&value);
    }
    return 0;
}

int
arb_journal_set_number (arb_journal_t *self, const char *key, uint64_t number)
{
    char text[32];
    snprintf (text, sizeof (text), "%" PRIu64, number);
    return arb_journal_meta_set (self, key, text, strlen (text));
}

int
arb_journal_next_epoch (arb_journal_t *self, uint64_t *epoch)
{
    if (arb_journal_meta_number (self, ARB_EPOCH_KEY, epoch))
        return -1;
    ++*epoch;
    if (arb_journal_begin (self) || arb_journal_set_number (self, ARB_EPOCH_KEY, *epoch)
        || arb_journal_commit (self))
        return -1;
    return 0;
}

int
arb_journal_epoch (arb_journal_t *self, uint64_t *epoch)
{
    return arb_journal_meta_number (self, ARB_EPOCH_KEY, epoch);
}

int
arb_journal_set_epoch (arb_journal_t *self, uint64_t epoch)
{
    return arb_journal_begin (self) || arb_journal_set_number (self, ARB_EPOCH_KEY, epoch) ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  Schedules

int
arb_journal_schedule_add (arb_journal_t *self,
                          const arb_schedule_info_t *schedule,
                          uint64_t cursor_ms)
{
    sqlite3_stmt *stmt = self->schedule_add;
    arb_sql_bind_text (stmt, 1, schedule->name);
    arb_sql_bind_text (stmt, 2, schedule->cron);
    arb_sql_bind_text (stmt, 3, schedule->zone ? schedule->zone : "UTC");
    arb_sql_bind_text (stmt, 4, schedule->catch_up ? schedule->catch_up : "one");
    sqlite3_bind_int (stmt, 5, schedule->paused);
    arb_sql_bind_u64 (stmt, 6, schedule->created_ms);
    arb_sql_bind_u64 (stmt, 7, cursor_ms);
    arb_sql_bind_u64 (stmt, 8, schedule->last_slot_ms);
    arb_sql_bind_u64 (stmt, 9, schedule->last_id);
    arb_sql_bind_text (stmt, 10, schedule->queue ? schedule->queue : "default");
    arb_sql_bind_text (stmt, 11, schedule->task);
    sqlite3_bind_int (stmt, 12, schedule->priority);
    sqlite3_bind_int64 (stmt, 13, schedule->retries);
    sqlite3_bind_int64 (stmt, 14, schedule->backoff);
    arb_sql_bind_u64 (stmt, 15, schedule->backoff_ms);
    arb_sql_bind_u64 (stmt, 16, schedule->backoff_cap_ms);
    sqlite3_bind_int (stmt, 17, schedule->no_jitter);
    arb_sql_bind_u64 (stmt, 18, schedule->timeout_ms);
    arb_sql_bind_u64 (stmt, 19, schedule->retention_ms);
    if (schedule->payload)
        arb_sql_bind_frame (stmt, 20, schedule->payload);
    else
        sqlite3_bind_zeroblob (stmt, 20, 0);
    arb_sql_bind_u64 (stmt, 21, schedule->soft_timeout_ms);
    return arb_journal_run (self, stmt, "add schedule");
}

int
arb_journal_schedule_remove (arb_journal_t *self, const char *name)
{
    sqlite3_stmt *stmt = self->schedule_remove;
    arb_sql_bind_text (stmt, 1, name);
    return arb_journal_run (self, stmt, "remove schedule");
}

int
arb_journal_schedule_state (arb_journal_t *self, const char *name, bool paused, uint64_t cursor_ms)
{
    sqlite3_stmt *stmt = self->schedule_state;
    arb_sql_bind_text (stmt, 1, name);
    sqlite3_bind_int (stmt, 2, paused);
    arb_sql_bind_u64 (stmt, 3, cursor_ms);
    return arb_journal_run (self, stmt, "schedule state");
}

int
arb_journal_schedule_fired (arb_journal_t *self, const char *name, uint64_t slot_ms, uint64_t id)
{
    sqlite3_stmt *stmt = self->schedule_fired;
    arb_sql_bind_text (stmt, 1, name);
    arb_sql_bind_u64 (stmt, 2, slot_ms);
    arb_sql_bind_u64 (stmt, 3, id);
    return arb_journal_run (self, stmt, "schedule fired");
}

int
arb_journal_schedules (arb_journal_t *self, arb_journal_schedule_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = self->schedules;
    int rc;
    while ((rc = arb_journal_step (self, stmt)) == SQLITE_ROW) {
        arb_schedule_info_t schedule = {
            .name = (const char *) sqlite3_column_text (stmt, 0),
            .cron = (const char *) sqlite3_column_text (stmt, 1),
            .zone = (const char *) sqlite3_column_text (stmt, 2),
            .catch_up = (const char *) sqlite3_column_text (stmt, 3),
            .paused = sqlite3_column_int (stmt, 4) != 0,
            .created_ms = arb_sql_u64 (stmt, 5),
            .last_slot_ms = arb_sql_u64 (stmt, 7),
            .last_id = arb_sql_u64 (stmt, 8),
            .queue = (const char *) sqlite3_column_text (stmt, 9),
            .task = (const char *) sqlite3_column_text (stmt, 10),
            .priority = sqlite3_column_int (stmt, 11),
            .retries = (uint32_t) sqlite3_column_int64 (stmt, 12),
            .backoff = (uint32_t) sqlite3_column_int64 (stmt, 13),
            .backoff_ms = arb_sql_u64 (stmt, 14),
            .backoff_cap_ms = arb_sql_u64 (stmt, 15),
            .no_jitter = sqlite3_column_int (stmt, 16) != 0,
            .timeout_ms = arb_sql_u64 (stmt, 17),
            .retention_ms = arb_sql_u64 (stmt, 18),
            .payload = arb_sql_frame (stmt, 19),
            .soft_timeout_ms = arb_sql_u64 (stmt, 20),
        };
        if (!schedule.payload)
            schedule.payload = zframe_new_empty ();  //  never NULL, as promised
        int stop = fn (arg, &schedule, arb_sql_u64 (stmt, 6));
        zframe_destroy (&schedule.payload);
        if (stop)
            break;
    }
    return arb_journal_read_end (self, stmt, rc, "schedules", 0);
}
