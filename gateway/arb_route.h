/*  arb_route.h — the HTTP server's route table: which handler serves a
    request's method and path, and the path's parts it gets.

    A pattern is a path of segments: a literal ("api"), "{}" (any one
    segment, given to the handler) or, last, "**" (one or more segments,
    the rest of the path). A path matches a pattern when every segment
    does; among the patterns a path matches, those with the most literal
    segments win (so "GET /metrics" beats "POST /{}"), and among them the
    first with the request's method serves it (a GET route serves HEAD
    too, and a 405 offers both). A path that the winners
    match only under other methods is answered 405 with those methods,
    but only with those whose routes claim the path (arb_route_set_claims:
    tasker's "/{}" claims its task types only), so that the method a 405
    offers serves it; with none, the path is not found.

    The first segments of literal patterns ("api", "metrics", "static")
    are reserved: a path that starts with one is matched by those patterns
    only, never by a "{}" or "**" in the first place (so "GET /api/v1" is
    not found, rather than tasker's "GET /{}/{}" for a type "api").

    Paths come as libmicrohttpd gives them (percent-decoded); they are
    split on '/' after the leading one, empty segments kept ("/a//b/" is
    a, "", b, ""; "/" is none): no pattern matches a path with an empty
    segment, so "/api/v1/queues//pause" is not a queue named "pause".
    Segments are copied, at most ARB_ROUTE_SEGMENTS of at most
    ARB_ROUTE_SEGMENT_MAX bytes: a longer path matches nothing.

    Pure; parsing only, no I/O (fuzzed by tests/fuzz/fuzz_http.c).
*/

#ifndef ARB_ROUTE_H
#define ARB_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_ROUTE_MAX         64    //  routes in a table
#define ARB_ROUTE_SEGMENTS    16    //  segments of a path
#define ARB_ROUTE_SEGMENT_MAX 1024  //  bytes of one segment

typedef struct _arb_route_table_t arb_route_table_t;

//  A path split into its segments (owned copies).
typedef struct {
    char *v[ARB_ROUTE_SEGMENTS];
    size_t n;
} arb_route_path_t;

//  What a lookup found.
typedef enum {
    ARB_ROUTE_FOUND = 0,      //  *route is the index of the route
    ARB_ROUTE_NOT_FOUND = 1,  //  no pattern matches the path
    ARB_ROUTE_METHOD = 2,     //  matched under other methods only (allow says which)
} arb_route_rc_t;

arb_route_table_t *arb_route_table_new (void);
void arb_route_table_destroy (arb_route_table_t **self_p);

//  Adds a route (method and pattern are copied). Returns its index, or -1
//  for a malformed pattern (an empty segment, "**" not last) or a full
//  table.
int arb_route_add (arb_route_table_t *self, const char *method, const char *pattern);

//  Whether a route serves a path its pattern matches (arg: what
//  arb_route_set_claims was given).
typedef bool (arb_route_claims_fn) (const arb_route_path_t *path, void *arg);

//  Gives route (an index arb_route_add returned) a claim: it is offered
//  in a 405's methods only for the paths fn says it serves. It still
//  serves, under its own method, every path it matches.
void arb_route_set_claims (arb_route_table_t *self, int route, arb_route_claims_fn *fn, void *arg);

//  Splits path into out (free with arb_route_path_clear). Returns 0, or -1
//  if it has too many or too long segments (out is then empty).
int arb_route_split (const char *path, arb_route_path_t *out);
void arb_route_path_clear (arb_route_path_t *path);

//  Finds the route of method and a split path. On ARB_ROUTE_METHOD, allow
//  (size bytes) lists the methods that would match ("GET, POST").
arb_route_rc_t arb_route_find (arb_route_table_t *self,
                               const char *method,
                               const arb_route_path_t *path,
                               int *route,
                               char *allow,
                               size_t size);

//  Parses a decimal number of 1..20 digits, no sign, no spaces, at most
//  max. Returns 0, or -1.
int arb_route_number (const char *text, uint64_t max, uint64_t *value);

//  Parses an id of a path (a task's, a flow's): a number of 1 to
//  INT64_MAX in canonical decimal, no leading zero, so that an id has one
//  spelling ("0012" is not 12). Returns 0, or -1.
int arb_route_id (const char *text, uint64_t *value);

#endif
