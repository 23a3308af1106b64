/*  arb_static.c — the embedded files; see arb_static.h.
*/

#include "arb_static.h"

#include <microhttpd.h>

const arb_static_file_t *
arb_static_find (const char *path)
{
    for (size_t i = 0; i < arb_static_count; i++)
        if (streq (arb_static_files[i].path, path))
            return &arb_static_files[i];
    return NULL;
}

static void
s_reply (arb_http_req_t *req, const char *path)
{
    const arb_static_file_t *file = arb_static_find (path);
    if (!file) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no file '%.128s'", path);
        return;
    }
    arb_http_reply_static (req, MHD_HTTP_OK, file->type, file->data, file->size);
}

static void
s_index (arb_http_req_t *req, void *arg)
{
    (void) arg;
    s_reply (req, "index.html");
}

static void
s_file (arb_http_req_t *req, void *arg)
{
    (void) arg;
    char path[ARB_NAME_MAX + 1] = "";
    for (size_t i = 1; i < arb_http_req_segments (req); i++) {
        size_t used = strlen (path);
        snprintf (path + used, sizeof (path) - used, "%s%s", i > 1 ? "/" : "",
                  arb_http_req_segment (req, i));
    }
    s_reply (req, path);
}

int
arb_static_serve (arb_http_t *http)
{
    //  GET routes serve HEAD too (arb_route.h)
    int rc = arb_http_route (http, "GET", "/", 0, s_index, NULL);
    rc |= arb_http_route (http, "GET", "/index.html", 0, s_index, NULL);
    rc |= arb_http_route (http, "GET", "/static/**", 0, s_file, NULL);
    return rc ? -1 : 0;
}
