/*  arb_bridges.c — the [bridge.NAME] sections and their bridges; see
    arb_bridges.h.
*/

#include "arb_bridges.h"
#include "arb_bridge.h"
#include "arb_defaults.h"
#include "arb_envelope.h"
#include "arb_options.h"

#define S_PREFETCH    100
#define S_MAX_PENDING 10000

//  One section: its settings (strings owned) and its bridge once started.
typedef struct {
    char *name;            //  the section's NAME
    char *url;             //  NULL: the gateway's --upstream
    char *upstream_queue;  //  NULL: name
    char *queue;           //  NULL: name
    char *task_name;       //  NULL: name
    uint64_t prefetch;     //  unacked upstream messages at once
    uint64_t max_pending;  //  replies owed (one a task and reply address), at most
    arb_bridge_t *bridge;  //  owned, once started
} s_section_t;

struct _arb_bridges_t {
    zlistx_t *sections;       //  owned list of owned s_section_t, in file order
    arb_defaults_t *options;  //  owned: the tasks' options of each section, as [queue.NAME]
};

static void
s_section_destroy (s_section_t **section_p)
{
    s_section_t *section = *section_p;
    if (!section)
        return;
    arb_bridge_destroy (&section->bridge);
    free (section->name);
    free (section->url);
    free (section->upstream_queue);
    free (section->queue);
    free (section->task_name);
    free (section);
    *section_p = NULL;
}

arb_bridges_t *
arb_bridges_new (void)
{
    arb_bridges_t *self = (arb_bridges_t *) zmalloc (sizeof (arb_bridges_t));
    self->sections = zlistx_new ();
    zlistx_set_destructor (self->sections, (zlistx_destructor_fn *) s_section_destroy);
    self->options = arb_defaults_new ();
    return self;
}

void
arb_bridges_destroy (arb_bridges_t **self_p)
{
    assert (self_p);
    arb_bridges_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->sections);
    arb_defaults_destroy (&self->options);
    free (self);
    *self_p = NULL;
}

size_t
arb_bridges_size (arb_bridges_t *self)
{
    return zlistx_size (self->sections);
}

static int
s_refuse (char *why, size_t size, const char *text)
{
    snprintf (why, size, "%s", text);
    return -1;
}

//  The section of name, made if new; NULL past ARB_BRIDGES_MAX.
static s_section_t *
s_section (arb_bridges_t *self, const char *name)
{
    for (s_section_t *section = (s_section_t *) zlistx_first (self->sections); section;
         section = (s_section_t *) zlistx_next (self->sections))
        if (streq (section->name, name))
            return section;
    if (zlistx_size (self->sections) == ARB_BRIDGES_MAX)
        return NULL;
    s_section_t *section = (s_section_t *) zmalloc (sizeof (s_section_t));
    section->name = strdup (name);
    section->prefetch = S_PREFETCH;
    section->max_pending = S_MAX_PENDING;
    zlistx_add_end (self->sections, section);
    return section;
}

static bool
s_is_bridge_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > ARB_ENVELOPE_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '-' && *p != '_')
            return false;
    return true;
}

//  A string key: an arbiter name (arbiter is true: printable UTF-8, within
//  ARB_NAME_MAX, no '@' in a queue) or an AMQP queue name (1 to 255
//  bytes).
static int
s_name (const char *key, const char *value, bool arbiter, char **out, char *why, size_t size)
{
    size_t len = strlen (value);
    char reason[80];
    if (len == 0)
        return s_refuse (why, size, "must not be empty");
    if (arbiter && arb_name_check (value, len, reason, sizeof (reason)) != 0) {
        snprintf (why, size, "%s (names are printable UTF-8)", reason);
        return -1;
    }
    if (len > (arbiter ? ARB_NAME_MAX : 255)) {
        snprintf (why, size, "%zu bytes, over the %d-byte limit", len,
                  arbiter ? ARB_NAME_MAX : 255);
        return -1;
    }
    if (arbiter && streq (key, "queue") && strchr (value, '@'))
        return s_refuse (why, size, "'@' is reserved for endpoint queues");
    free (*out);
    *out = strdup (value);
    return 0;
}

int
arb_bridges_section (
    void *arg, const char *section_name, const char *key, const char *value, char *why, size_t size)
{
    arb_bridges_t *self = (arb_bridges_t *) arg;
    if (strncmp (section_name, "bridge.", 7) != 0)
        return s_refuse (why, size, "unknown section (expected [bridge.NAME])");
    const char *name = section_name + 7;
    if (!s_is_bridge_name (name))
        return s_refuse (why, size,
                         "a bridge's name is 1 to 64 letters, digits, '-' or '_' "
                         "([bridge.NAME])");
    s_section_t *section = s_section (self, name);
    if (!section) {
        snprintf (why, size, "more than %d bridges", ARB_BRIDGES_MAX);
        return -1;
    }
    if (!key)
        return 0;  //  a section without keys: what it lacks is said when bridges start
    if (streq (key, "upstream")) {
        //  read when the bridge starts: a bad one stops only this bridge
        //  (--check-config reads it as it is given: arbiter_gateway.c)
        free (section->url);
        section->url = strdup (value);
        return 0;
    }
    if (streq (key, "upstream-queue"))
        return s_name (key, value, false, &section->upstream_queue, why, size);
    if (streq (key, "queue"))
        return s_name (key, value, true, &section->queue, why, size);
    if (streq (key, "task"))
        return s_name (key, value, true, &section->task_name, why, size);
    //  the numbers of the bridge's own
    const struct {
        const char *key;
        uint64_t max;
        uint64_t *value;
    } numbers[] = {
        {"prefetch", 65535, &section->prefetch},
        {"max-pending", 100000, &section->max_pending},
    };
    for (size_t i = 0; i < sizeof (numbers) / sizeof (numbers[0]); i++)
        if (streq (key, numbers[i].key)) {
            arb_option_t option = {.type = ARB_OPT_UINT, .min = 1, .max = numbers[i].max};
            return arb_options_value (&option, value, numbers[i].value, why, size);
        }
    //  the tasks' options: the keys of a [queue.NAME] section
    char queue_section[16 + ARB_ENVELOPE_NAME_MAX];
    snprintf (queue_section, sizeof (queue_section), "queue.%s", name);
    if (arb_defaults_section (self->options, queue_section, key, value, why, size) == 0)
        return 0;
    if (strncmp (why, "unknown key", 11) == 0)
        return s_refuse (why, size,
                         "unknown key (upstream, upstream-queue, queue, task, prefetch, "
                         "max-pending, and the tasks' priority, retries, timeout, retention, "
                         "backoff, backoff-delay, backoff-cap, wait-for-endpoints-timeout)");
    return -1;
}

zlist_t *
arb_bridges_without_url (arb_bridges_t *self)
{
    zlist_t *names = zlist_new ();
    for (s_section_t *section = (s_section_t *) zlistx_first (self->sections); section;
         section = (s_section_t *) zlistx_next (self->sections))
        if (!section->url)
            zlist_append (names, section->name);
    return names;
}

size_t
arb_bridges_start (arb_bridges_t *self,
                   arb_gateway_t *gateway,
                   const arb_bridges_settings_t *settings)
{
    size_t started = 0;
    for (s_section_t *section = (s_section_t *) zlistx_first (self->sections); section;
         section = (s_section_t *) zlistx_next (self->sections)) {
        const char *url = section->url ? section->url : settings->upstream;
        if (!url) {
            zsys_error ("bridge: no upstream URL, not started bridge=%s (give --upstream, or "
                        "upstream in [bridge.%s])",
                        section->name, section->name);
            continue;
        }
        arb_bridge_config_t config = {
            .name = section->name,
            .url = url,
            .upstream_queue = section->upstream_queue ? section->upstream_queue : section->name,
            .prefetch = (uint16_t) section->prefetch,
            .max_pending = (uint32_t) section->max_pending,
            .reconnect_max_ms = settings->reconnect_max_ms,
            .max_payload = settings->max_payload,
        };
        config.task.queue = section->queue ? section->queue : section->name;
        config.task.name = section->task_name ? section->task_name : section->name;
        //  the [queue.NAME] of its queue, then its own
        if (settings->defaults)
            arb_defaults_apply (settings->defaults, config.task.queue, NULL, &config.task);
        arb_defaults_apply (self->options, section->name, NULL, &config.task);
        section->bridge = arb_bridge_new (gateway, &config);
        if (section->bridge)
            started++;
        else
            zsys_error ("bridge: not started bridge=%s; the gateway serves its other protocols",
                        section->name);
    }
    return started;
}
