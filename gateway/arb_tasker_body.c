/*  arb_tasker_body.c — tasker's POST body; see arb_tasker_body.h.
*/

#include "arb_tasker_body.h"

void
arb_tasker_post_destroy (arb_tasker_post_t **post_p)
{
    arb_tasker_post_t *post = *post_p;
    if (!post)
        return;
    json_decref (post->root);
    free (post->endpoints.v);
    free (post);
    *post_p = NULL;
}

static arb_tasker_post_t *
s_refuse (arb_tasker_post_t **post_p, char *why, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, size, fmt, args);
    va_end (args);
    arb_tasker_post_destroy (post_p);
    return NULL;
}

//  A name (identifier, endpoint): a string of 1..ARB_NAME_MAX bytes
//  without a NUL (JSON's \u0000, which the body may hold: s_has_nul).
static const char *
s_name (json_t *value)
{
    if (!json_is_string (value))
        return NULL;
    size_t len = json_string_length (value);
    const char *text = json_string_value (value);
    if (len == 0 || len > ARB_NAME_MAX || strlen (text) != len)
        return NULL;
    return text;
}

//  Whether a string holds a NUL byte (\u0000): JSON allows it, a payload
//  carries it (written again as \u0000), a name cannot hold one.
static bool
s_has_nul (json_t *value)
{
    return json_is_string (value)
           && strlen (json_string_value (value)) != json_string_length (value);
}

static arb_tasker_post_t *
s_endpoints (arb_tasker_post_t *post, json_t *list, char *why, size_t size)
{
    if (!json_is_array (list))
        return s_refuse (&post, why, size, "endpoints: expected a list of worker names");
    size_t n = json_array_size (list);
    if (n > ARB_ENDPOINTS_MAX)
        return s_refuse (&post, why, size, "endpoints: %zu names, over the limit of %d", n,
                         ARB_ENDPOINTS_MAX);
    post->endpoints.v = (const char **) calloc (n ? n : 1, sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get (list, i);
        if (s_has_nul (item))
            return s_refuse (&post, why, size,
                             "endpoints[%zu]: a worker name cannot hold a NUL (\\u0000)", i);
        const char *name = s_name (item);
        if (!name)
            return s_refuse (&post, why, size,
                             "endpoints[%zu]: expected a worker name of 1 to %d bytes", i,
                             ARB_NAME_MAX);
        //  the broker's check (arb_verbs_client), made here so that a bad
        //  name is a 400 like the other fields', not the broker's 422
        if (strchr (name, '@') || !arb_name_is_valid (name, strlen (name)))
            return s_refuse (&post, why, size,
                             "endpoints[%zu]: '%.64s' is not a worker name (no '@', no control "
                             "character, UTF-8)",
                             i, name);
        for (size_t k = 0; k < i; k++)
            if (streq (post->endpoints.v[k], name))
                return s_refuse (&post, why, size, "endpoints[%zu]: '%.64s' is named twice", i,
                                 name);
        post->endpoints.v[post->endpoints.n++] = name;
    }
    return post;
}

arb_tasker_post_t *
arb_tasker_parse (const char *body, size_t size, char *why, size_t why_size)
{
    json_error_t error;
    arb_tasker_post_t *post = (arb_tasker_post_t *) zmalloc (sizeof (arb_tasker_post_t));
    //  JSON_ALLOW_NUL: a string with \u0000 is JSON (RFC 8259), so a
    //  payload may hold one; the names refuse it themselves (s_has_nul)
    post->root =
        json_loadb (body, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!post->root)
        return s_refuse (&post, why, why_size, "the body is not JSON: %s (line %d, column %d)",
                         error.text, error.line, error.column);
    if (!json_is_object (post->root))
        return s_refuse (&post, why, why_size,
                         "the body must be a JSON object: {\"identifier\", \"payload\", "
                         "\"endpoints\", \"broadcast\"}");
    const char *key;
    json_t *value;
    json_object_foreach (post->root, key, value)
    {
        if (streq (key, "identifier")) {
            if (s_has_nul (value))
                return s_refuse (&post, why, why_size, "identifier: cannot hold a NUL (\\u0000)");
            post->identifier = s_name (value);
            if (!post->identifier)
                return s_refuse (&post, why, why_size,
                                 "identifier: expected a string of 1 to %d bytes, less its "
                                 "type's name and one (the task's key is TYPE@IDENTIFIER)",
                                 ARB_NAME_MAX - 1);
        }
        else if (streq (key, "payload"))
            post->payload = value;
        else if (streq (key, "endpoints")) {
            if (!s_endpoints (post, value, why, why_size))
                return NULL;
        }
        else if (streq (key, "broadcast")) {
            if (!json_is_boolean (value))
                return s_refuse (&post, why, why_size, "broadcast: expected true or false");
            post->broadcast = json_is_true (value);
            post->has_broadcast = true;
        }
        else
            return s_refuse (&post, why, why_size,
                             "'%.64s' is not a field (identifier, payload, endpoints, broadcast)",
                             key);
    }
    if (!post->identifier)
        return s_refuse (&post, why, why_size, "identifier: required");
    if (post->broadcast && post->endpoints.n)
        return s_refuse (&post, why, why_size,
                         "endpoints and broadcast both say where the task goes: give one");
    return post;
}

//  The first segments of the HTTP server's own routes (arb_admin.c,
//  arb_metrics.c, arb_static.c), which the router keeps from tasker's
//  "/{}" (arb_route.h): a type of one of these names could not be reached.
static const char *s_reserved[] = {"api", "metrics", "static", "index.html"};

bool
arb_tasker_is_type_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > ARB_NAME_MAX || strchr (name, '@'))
        return false;
    for (size_t i = 0; i < sizeof (s_reserved) / sizeof (s_reserved[0]); i++)
        if (streq (name, s_reserved[i]))
            return false;
    return true;
}
