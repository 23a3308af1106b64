/*  arb_settings.c — queue settings, name limits and the metadata store's
    writes; see arb_settings.h for the stored format. */

#include "arb_settings.h"

static void
s_load_setting (void *arg, const char *key, const void *data, size_t size)
{
    arb_sched_t *sched = (arb_sched_t *) arg;
    char text[256];
    size = size < sizeof (text) - 1 ? size : sizeof (text) - 1;
    memcpy (text, data, size);
    text[size] = 0;
    unsigned paused = 0, max_running = 0, rate = 0, declared = 0, reject = 0;
    unsigned long long retention = 0, max_ready = 0, max_ready_bytes = 0;
    if (strncmp (key, "queue.", 6) == 0) {
        arb_queue_t *queue = arb_sched_queue (sched, key + 6);
        int on_failure = 0;
        //  settings stored before the bounds existed end at declared
        sscanf (text,
                "paused=%u max_running=%u rate=%u retention_ms=%llu on_failure=%d declared=%u "
                "max_ready=%llu max_ready_bytes=%llu reject=%u",
                &paused, &max_running, &rate, &retention, &on_failure, &declared, &max_ready,
                &max_ready_bytes, &reject);
        arb_queue_settings (queue)->on_failure = on_failure;
        arb_queue_settings (queue)->paused = paused != 0;
        arb_queue_settings (queue)->declared = declared != 0;
        arb_queue_settings (queue)->retention_ms = retention;
        arb_queue_settings (queue)->max_ready = max_ready;
        arb_queue_settings (queue)->max_ready_bytes = max_ready_bytes;
        arb_queue_settings (queue)->reject = reject != 0;
        arb_queue_limit (queue)->max_running = max_running;
        arb_queue_limit (queue)->rate_per_sec = rate;
    }
    else if (strncmp (key, "limit.", 6) == 0) {
        sscanf (text, "max_running=%u rate=%u", &max_running, &rate);
        arb_limit_t *limit = arb_sched_name_limit (sched, key + 6);
        limit->max_running = max_running;
        limit->rate_per_sec = rate;
        arb_sched_touch_name (sched, key + 6);
    }
}

int
arb_settings_load (arb_sched_t *sched, arb_journal_t *journal)
{
    if (arb_journal_meta_list (journal, "queue.", s_load_setting, sched)
        || arb_journal_meta_list (journal, "limit.", s_load_setting, sched))
        return -1;
    return 0;
}

static int
s_store_queue (arb_journal_t *journal, arb_queue_t *queue)
{
    arb_queue_settings_t *settings = arb_queue_settings (queue);
    arb_limit_t *limit = arb_queue_limit (queue);
    char key[ARB_NAME_MAX + 16];
    snprintf (key, sizeof (key), "queue.%s", arb_queue_name (queue));
    char value[256];
    snprintf (value, sizeof (value),
              "paused=%u max_running=%u rate=%u retention_ms=%" PRIu64
              " on_failure=%d declared=%u max_ready=%" PRIu64 " max_ready_bytes=%" PRIu64
              " reject=%u",
              settings->paused, limit->max_running, limit->rate_per_sec, settings->retention_ms,
              settings->on_failure, settings->declared, settings->max_ready,
              settings->max_ready_bytes, settings->reject);
    return arb_settings_set_key (journal, key, value, strlen (value));
}

int
arb_settings_change_queue (arb_sched_t *sched,
                           arb_journal_t *journal,
                           const char *name,
                           const arb_queue_change_t *change)
{
    arb_queue_t *queue = arb_sched_queue (sched, name);
    arb_queue_settings_t *settings = arb_queue_settings (queue);
    arb_limit_t *limit = arb_queue_limit (queue);
    if (change->paused >= 0)
        settings->paused = change->paused != 0;
    if (change->declare)
        settings->declared = true;
    if (change->max_running)
        limit->max_running = change->max_running;
    if (change->rate_per_sec)
        limit->rate_per_sec = change->rate_per_sec;
    if (change->retention_ms)
        settings->retention_ms = change->retention_ms;
    if (change->on_failure >= 0)
        settings->on_failure = change->on_failure;
    if (change->max_ready)
        settings->max_ready = change->max_ready;
    if (change->max_ready_bytes)
        settings->max_ready_bytes = change->max_ready_bytes;
    if (change->overflow)
        settings->reject = change->overflow == ARB_OVERFLOW_REJECT;
    if (change->clear_max_running)
        limit->max_running = 0;
    if (change->clear_rate_per_sec)
        limit->rate_per_sec = 0;
    if (change->clear_retention_ms)
        settings->retention_ms = 0;
    if (change->clear_on_failure)
        settings->on_failure = ARB_ON_FAILURE_RETRY;
    if (change->clear_max_ready)
        settings->max_ready = 0;
    if (change->clear_max_ready_bytes)
        settings->max_ready_bytes = 0;
    if (change->clear_overflow)
        settings->reject = false;
    if (s_store_queue (journal, queue))
        return -1;
    arb_sched_touch_queue (sched, queue);
    return 0;
}

int
arb_settings_change_limit (arb_sched_t *sched,
                           arb_journal_t *journal,
                           const char *name,
                           uint32_t max_running,
                           uint32_t rate_per_sec,
                           bool clear_max_running,
                           bool clear_rate_per_sec)
{
    arb_limit_t *limit = arb_sched_name_limit (sched, name);
    if (max_running)
        limit->max_running = max_running;
    if (rate_per_sec)
        limit->rate_per_sec = rate_per_sec;
    if (clear_max_running)
        limit->max_running = 0;
    if (clear_rate_per_sec)
        limit->rate_per_sec = 0;
    max_running = limit->max_running;
    rate_per_sec = limit->rate_per_sec;
    arb_sched_touch_name (sched, name);  //  may free the limit if unset
    char key[ARB_NAME_MAX + 16];
    snprintf (key, sizeof (key), "limit.%s", name);
    char value[64];
    snprintf (value, sizeof (value), "max_running=%u rate=%u", max_running, rate_per_sec);
    if (max_running || rate_per_sec)
        return arb_settings_set_key (journal, key, value, strlen (value));
    return arb_settings_del_key (journal, key);
}

int
arb_settings_set_key (arb_journal_t *journal, const char *key, const void *data, size_t size)
{
    if (arb_journal_begin (journal) || arb_journal_meta_set (journal, key, data, size))
        return -1;
    return 0;
}

int
arb_settings_del_key (arb_journal_t *journal, const char *key)
{
    if (arb_journal_begin (journal) || arb_journal_meta_del (journal, key))
        return -1;
    return 0;
}

int
arb_settings_forget_queue (arb_journal_t *journal, const char *queue)
{
    char key[ARB_NAME_MAX + 16];
    snprintf (key, sizeof (key), "queue.%s", queue);
    char prefix[ARB_NAME_MAX + 16];
    snprintf (prefix, sizeof (prefix), "queue@%s@", queue);
    if (arb_settings_del_key (journal, key) || arb_journal_meta_del_prefix (journal, prefix))
        return -1;
    return 0;
}

bool
arb_settings_key_is_reserved (const char *key)
{
    return strncmp (key, "broker.", 7) == 0 || strncmp (key, "queue.", 6) == 0
           || strncmp (key, "limit.", 6) == 0;
}

int
arb_settings_cas_key (arb_journal_t *journal,
                      const char *key,
                      bool absent,
                      const void *expect,
                      size_t expect_size,
                      bool remove,
                      const void *value,
                      size_t value_size,
                      bool *matched,
                      zchunk_t **now)
{
    *matched = false;
    if (arb_journal_meta_get (journal, key, now))
        return -1;
    if (absent)
        *matched = *now == NULL;
    else
        *matched = *now && zchunk_size (*now) == expect_size
                   && (expect_size == 0 || memcmp (zchunk_data (*now), expect, expect_size) == 0);
    if (!*matched)
        return 0;
    zchunk_destroy (now);
    if (remove)
        return arb_settings_del_key (journal, key);
    *now = zchunk_new (value, value_size);
    return arb_settings_set_key (journal, key, value, value_size);
}
