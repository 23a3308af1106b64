/*  fuzz_http.c — libFuzzer target for what the HTTP server parses itself
    (libmicrohttpd parses HTTP): request paths against the gateway's route
    table, tasker's JSON bodies, numbers from paths and query strings, and
    config-file section keys. The first byte picks which; the rest is the
    input (for routes: a method byte, then the path; for sections: section,
    key and value separated by NULs). Each must be accepted or refused with
    a reason; a crash, a sanitizer report or a leak is a finding.

        scons fuzz && build/fuzz/fuzz_http -max_total_time=60 tests/fuzz/corpus
*/

#include "arb_defaults.h"
#include "arb_route.h"
#include "arb_tasker_body.h"

#include <assert.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_route (const char *text)
{
    static const char *methods[] = {"GET", "POST", "DELETE", "PUT"};
    arb_route_table_t *table = arb_route_table_new ();
    arb_route_add (table, "GET", "/metrics");
    arb_route_add (table, "POST", "/{}");
    arb_route_add (table, "GET", "/{}/{}");
    arb_route_add (table, "GET", "/api/v1/tasks/{}");
    arb_route_add (table, "POST", "/api/v1/tasks/{}/retry");
    arb_route_add (table, "GET", "/static/**");
    arb_route_path_t path;
    if (*text && arb_route_split (text + 1, &path) == 0) {
        char allow[128];
        int route = -1;
        arb_route_rc_t rc = arb_route_find (table, methods[(unsigned char) text[0] % 4], &path,
                                            &route, allow, sizeof (allow));
        assert (rc != ARB_ROUTE_FOUND || route >= 0);
        arb_route_path_clear (&path);
    }
    arb_route_table_destroy (&table);
}

static void
s_section (const char *text, size_t size)
{
    const char *section = text;
    const char *key = memchr (text, '\0', size) ? text + strlen (text) + 1 : NULL;
    if (!key || key >= text + size)
        return;
    const char *value = key + strlen (key) + 1;
    if (value >= text + size)
        return;
    arb_defaults_t *defaults = arb_defaults_new ();
    char why[256];
    if (arb_defaults_section (defaults, section, key, value, why, sizeof (why)) == 0) {
        arb_task_spec_t spec = {0};
        arb_defaults_apply (defaults, section + 6, section + 5, &spec);
    }
    else
        assert (*why);
    arb_defaults_destroy (&defaults);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    //  a NUL-terminated copy of the input after the selector
    char *text = (char *) malloc (size);
    memcpy (text, data + 1, size - 1);
    text[size - 1] = '\0';
    char why[ARB_TEXT_MAX];
    uint64_t number;
    switch (data[0] % 4) {
        case 0:
            s_route (text);
            break;
        case 1: {
            arb_tasker_post_t *post = arb_tasker_parse (text, size - 1, why, sizeof (why));
            assert (post || *why);
            assert (!post || post->identifier);
            arb_tasker_post_destroy (&post);
            break;
        }
        case 2:
            if (arb_route_number (text, UINT64_MAX, &number) == 0)
                assert (strlen (text) <= 20);
            break;
        default:
            s_section (text, size - 1);
    }
    free (text);
    return 0;
}
