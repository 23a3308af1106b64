/*  arb_defaults.c — queue and task-type settings from the config file;
    see arb_defaults.h.
*/

#include "arb_defaults.h"
#include "arb_options.h"
#include "arb_tasker_body.h"

//  One section's settings; a flag per key says it was given.
typedef struct {
    int32_t priority;
    uint64_t retries;
    uint64_t timeout_ms;
    uint64_t retention_ms;
    uint32_t backoff;
    uint64_t backoff_ms;
    uint64_t backoff_cap_ms;
    uint64_t endpoint_timeout_ms;
    bool broadcast;  //  [type.NAME] only: a POST without endpoints goes to every worker
    bool wait;       //  [type.NAME] only: a POST's answer waits for its endpoints
    bool has_priority, has_retries, has_timeout, has_retention, has_backoff, has_backoff_ms,
        has_backoff_cap, has_endpoint_timeout;
} s_settings_t;

struct _arb_defaults_t {
    zhashx_t *queues;  //  name -> owned s_settings_t
    zhashx_t *types;   //  name -> owned s_settings_t
};

arb_defaults_t *
arb_defaults_new (void)
{
    arb_defaults_t *self = (arb_defaults_t *) zmalloc (sizeof (arb_defaults_t));
    self->queues = zhashx_new ();
    self->types = zhashx_new ();
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_destructor (self->types, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
arb_defaults_destroy (arb_defaults_t **self_p)
{
    arb_defaults_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->types);
    free (self);
    *self_p = NULL;
}

static int
s_refuse (char *why, size_t size, const char *text)
{
    snprintf (why, size, "%s", text);
    return -1;
}

static int
s_priority (const char *text, s_settings_t *settings, char *why, size_t size)
{
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < INT32_MIN / 2 || value > INT32_MAX / 2)
        return s_refuse (why, size, "expected a whole number, like 5 or -2");
    settings->priority = (int32_t) value;
    settings->has_priority = true;
    return 0;
}

static int
s_backoff (const char *text, s_settings_t *settings, char *why, size_t size)
{
    const char *names[] = {"none", "fixed", "exponential"};
    for (uint32_t i = 0; i < 3; i++)
        if (streq (text, names[i])) {
            settings->backoff = i;
            settings->has_backoff = true;
            return 0;
        }
    return s_refuse (why, size, "expected none, fixed or exponential");
}

int
arb_defaults_section (
    void *arg, const char *section, const char *key, const char *value, char *why, size_t size)
{
    arb_defaults_t *self = (arb_defaults_t *) arg;
    bool type = strncmp (section, "type.", 5) == 0;
    if (!type && strncmp (section, "queue.", 6) != 0)
        return s_refuse (why, size, "unknown section (expected [queue.NAME] or [type.NAME])");
    const char *name = section + (type ? 5 : 6);
    size_t len = strlen (name);
    if (len == 0 || len > ARB_NAME_MAX || strchr (name, '@') || strchr (name, '/'))
        return s_refuse (why, size, "a queue or type name is 1 to 200 bytes, without '@' or '/'");
    //  POST /NAME could never reach such a type: the router keeps the name
    if (type && !arb_tasker_is_type_name (name))
        return s_refuse (why, size,
                         "not a type name: api, metrics, static and index.html are the HTTP "
                         "server's own paths");
    zhashx_t *table = type ? self->types : self->queues;
    s_settings_t *settings = (s_settings_t *) zhashx_lookup (table, name);
    if (!settings) {
        settings = (s_settings_t *) zmalloc (sizeof (s_settings_t));
        zhashx_insert (table, name, settings);
    }
    if (!key)
        return 0;  //  a section without keys: the type (or queue) with the defaults
    if (streq (key, "priority"))
        return s_priority (value, settings, why, size);
    if (streq (key, "backoff"))
        return s_backoff (value, settings, why, size);
    if (streq (key, "broadcast") || streq (key, "wait-for-endpoints")) {
        if (!type)
            return s_refuse (why, size,
                             "only in a [type.NAME] section (how a POST is delivered and "
                             "answered)");
        arb_option_t option = {.type = ARB_OPT_BOOL};
        return arb_options_value (&option, value,
                                  streq (key, "broadcast") ? &settings->broadcast : &settings->wait,
                                  why, size);
    }
    //  the numbers: a count or seconds each, and the flag that says it was given
    const struct {
        const char *key;
        arb_opt_type_t type;
        uint64_t max;
        uint64_t *value;
        bool *given;
    } numbers[] = {
        {"retries", ARB_OPT_UINT, ARB_RETRIES_MAX, &settings->retries, &settings->has_retries},
        {"timeout", ARB_OPT_SECONDS, ARB_TIMEOUT_MAX_MS, &settings->timeout_ms,
         &settings->has_timeout},
        {"retention", ARB_OPT_SECONDS, ARB_RETENTION_MAX_MS, &settings->retention_ms,
         &settings->has_retention},
        {"backoff-delay", ARB_OPT_SECONDS, ARB_BACKOFF_MAX_MS, &settings->backoff_ms,
         &settings->has_backoff_ms},
        {"backoff-cap", ARB_OPT_SECONDS, ARB_BACKOFF_MAX_MS, &settings->backoff_cap_ms,
         &settings->has_backoff_cap},
        {"wait-for-endpoints-timeout", ARB_OPT_SECONDS, ARB_TIMEOUT_MAX_MS,
         &settings->endpoint_timeout_ms, &settings->has_endpoint_timeout},
    };
    for (size_t i = 0; i < sizeof (numbers) / sizeof (numbers[0]); i++) {
        if (!streq (key, numbers[i].key))
            continue;
        arb_option_t option = {.type = numbers[i].type, .max = numbers[i].max};
        if (arb_options_value (&option, value, numbers[i].value, why, size))
            return -1;
        *numbers[i].given = true;
        return 0;
    }
    return s_refuse (why, size,
                     "unknown key (priority, retries, timeout, retention, backoff, "
                     "backoff-delay, backoff-cap, wait-for-endpoints-timeout, broadcast, "
                     "wait-for-endpoints)");
}

//  A type's own settings, or NULL if it has no section.
static const s_settings_t *
s_type (arb_defaults_t *self, const char *type)
{
    return (const s_settings_t *) zhashx_lookup (self->types, type);
}

bool
arb_defaults_broadcast (arb_defaults_t *self, const char *type)
{
    const s_settings_t *settings = s_type (self, type);
    return settings && settings->broadcast;
}

bool
arb_defaults_wait (arb_defaults_t *self, const char *type)
{
    const s_settings_t *settings = s_type (self, type);
    return settings && settings->wait;
}

bool
arb_defaults_has_type (arb_defaults_t *self, const char *name)
{
    return zhashx_size (self->types) == 0 || s_type (self, name) != NULL;
}

size_t
arb_defaults_types (arb_defaults_t *self)
{
    return zhashx_size (self->types);
}

//  Applies the settings a section gives.
static void
s_apply (const s_settings_t *settings, arb_task_spec_t *spec)
{
    if (!settings)
        return;
    if (settings->has_priority)
        spec->priority = settings->priority;
    if (settings->has_retries)
        spec->retries = (uint32_t) settings->retries;
    if (settings->has_timeout)
        spec->timeout_ms = settings->timeout_ms;
    if (settings->has_retention)
        spec->retention_ms = settings->retention_ms;
    if (settings->has_backoff)
        spec->backoff = settings->backoff;
    if (settings->has_backoff_ms)
        spec->backoff_ms = settings->backoff_ms;
    if (settings->has_backoff_cap)
        spec->backoff_cap_ms = settings->backoff_cap_ms;
    if (settings->has_endpoint_timeout)
        spec->endpoint_timeout_ms = settings->endpoint_timeout_ms;
}

void
arb_defaults_apply (arb_defaults_t *self,
                    const char *queue,
                    const char *type,
                    arb_task_spec_t *spec)
{
    s_apply ((const s_settings_t *) zhashx_lookup (self->queues, queue), spec);
    if (type)
        s_apply (s_type (self, type), spec);
}

void
arb_defaults_apply_message (arb_defaults_t *self,
                            const char *queue,
                            uint64_t retention_ms,
                            arb_task_spec_t *spec)
{
    spec->retention_ms = retention_ms;
    if (self)
        arb_defaults_apply (self, queue, NULL, spec);
    spec->unwatched = spec->retention_ms == 0;
}
