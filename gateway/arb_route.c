/*  arb_route.c — the HTTP server's route table; see arb_route.h.
*/

#include "arb_route.h"

#include <czmq.h>

typedef struct {
    char *method;                 //  owned
    arb_route_path_t parts;       //  owned: the pattern's segments
    size_t literals;              //  segments that are not "{}" or "**"
    bool tail;                    //  ends in "**"
    arb_route_claims_fn *claims;  //  or NULL: it claims every path it matches
    void *claims_arg;             //  borrowed
} s_route_t;

struct _arb_route_table_t {
    s_route_t routes[ARB_ROUTE_MAX];
    size_t n;
};

arb_route_table_t *
arb_route_table_new (void)
{
    return (arb_route_table_t *) zmalloc (sizeof (arb_route_table_t));
}

void
arb_route_table_destroy (arb_route_table_t **self_p)
{
    arb_route_table_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        free (self->routes[i].method);
        arb_route_path_clear (&self->routes[i].parts);
    }
    free (self);
    *self_p = NULL;
}

void
arb_route_path_clear (arb_route_path_t *path)
{
    for (size_t i = 0; i < path->n; i++)
        free (path->v[i]);
    path->n = 0;
}

int
arb_route_split (const char *path, arb_route_path_t *out)
{
    out->n = 0;
    //  "/" is the root, no segment; after it every '/' ends one, empty
    //  ones too: "/a//b" is a, "", b, and matches no route with two
    const char *at = path + (*path == '/');
    if (!*at)
        return 0;
    while (true) {
        size_t len = strcspn (at, "/");
        if (out->n == ARB_ROUTE_SEGMENTS || len > ARB_ROUTE_SEGMENT_MAX) {
            arb_route_path_clear (out);
            return -1;
        }
        out->v[out->n++] = strndup (at, len);
        if (!at[len])
            return 0;
        at += len + 1;
    }
}

int
arb_route_add (arb_route_table_t *self, const char *method, const char *pattern)
{
    if (self->n == ARB_ROUTE_MAX)
        return -1;
    s_route_t *route = &self->routes[self->n];
    if (arb_route_split (pattern, &route->parts))
        return -1;
    route->literals = 0;
    route->tail = false;
    route->claims = NULL;
    route->claims_arg = NULL;
    for (size_t i = 0; i < route->parts.n; i++) {
        const char *part = route->parts.v[i];
        if (streq (part, "**") && i + 1 == route->parts.n)
            route->tail = true;
        else if (streq (part, "**") || !*part) {
            arb_route_path_clear (&route->parts);
            return -1;
        }
        else if (!streq (part, "{}"))
            route->literals++;
    }
    route->method = strdup (method);
    return (int) self->n++;
}

void
arb_route_set_claims (arb_route_table_t *self, int route, arb_route_claims_fn *fn, void *arg)
{
    assert (route >= 0 && (size_t) route < self->n);
    self->routes[route].claims = fn;
    self->routes[route].claims_arg = arg;
}

//  Whether text is the first segment of a pattern: a name the table
//  keeps for its own routes ("api", "metrics", "static").
static bool
s_is_reserved (arb_route_table_t *self, const char *text)
{
    for (size_t i = 0; i < self->n; i++) {
        const arb_route_path_t *parts = &self->routes[i].parts;
        if (parts->n && streq (parts->v[0], text) && !streq (text, "{}") && !streq (text, "**"))
            return true;
    }
    return false;
}

//  Whether route matches path; reserved: the path's first segment is a
//  reserved name, which only a literal matches.
static bool
s_matches (const s_route_t *route, const arb_route_path_t *path, bool reserved)
{
    size_t fixed = route->parts.n - (route->tail ? 1 : 0);
    if (route->tail ? path->n <= fixed : path->n != fixed)
        return false;
    if (reserved && (streq (route->parts.v[0], "{}") || streq (route->parts.v[0], "**")))
        return false;
    //  an empty segment ("/a//b", "/a/") is nothing a pattern names
    for (size_t i = 0; i < path->n; i++)
        if (!*path->v[i])
            return false;
    for (size_t i = 0; i < fixed; i++) {
        const char *part = route->parts.v[i];
        if (!streq (part, "{}") && !streq (part, path->v[i]))
            return false;
    }
    return true;
}

arb_route_rc_t
arb_route_find (arb_route_table_t *self,
                const char *method,
                const arb_route_path_t *path,
                int *route,
                char *allow,
                size_t size)
{
    bool reserved = path->n && s_is_reserved (self, path->v[0]);
    size_t best = 0;
    bool any = false;
    for (size_t i = 0; i < self->n; i++)
        if (s_matches (&self->routes[i], path, reserved)
            && (!any || self->routes[i].literals > best)) {
            best = self->routes[i].literals;
            any = true;
        }
    if (!any)
        return ARB_ROUTE_NOT_FOUND;
    if (size)
        *allow = '\0';
    bool offered = false;
    for (size_t i = 0; i < self->n; i++) {
        s_route_t *candidate = &self->routes[i];
        if (candidate->literals != best || !s_matches (candidate, path, reserved))
            continue;
        //  HEAD is GET without the body (libmicrohttpd leaves it out)
        if (streq (candidate->method, method)
            || (streq (method, "HEAD") && streq (candidate->method, "GET"))) {
            *route = (int) i;
            return ARB_ROUTE_FOUND;
        }
        //  a method offered must serve the path: a route that does not
        //  claim it would only refuse it
        if (candidate->claims && !candidate->claims (path, candidate->claims_arg))
            continue;
        offered = true;
        size_t used = strlen (allow);
        if (!strstr (allow, candidate->method))
            snprintf (allow + used, size - used, "%s%s%s", used ? ", " : "", candidate->method,
                      streq (candidate->method, "GET") ? ", HEAD" : "");
    }
    return offered ? ARB_ROUTE_METHOD : ARB_ROUTE_NOT_FOUND;
}

int
arb_route_number (const char *text, uint64_t max, uint64_t *value)
{
    size_t len = text ? strlen (text) : 0;
    if (len == 0 || len > 20 || strspn (text, "0123456789") != len)
        return -1;
    errno = 0;
    unsigned long long parsed = strtoull (text, NULL, 10);
    if (errno || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

int
arb_route_id (const char *text, uint64_t *value)
{
    uint64_t id;
    if (!text || text[0] == '0' || arb_route_number (text, INT64_MAX, &id))
        return -1;
    *value = id;
    return 0;
}
