/*  arb_http.h — the gateway's HTTP server: libmicrohttpd inside the
    gateway's one loop, a route table, JSON answers, a bearer token, and
    requests that wait for the broker without a thread waiting.

    libmicrohttpd runs without a thread of its own (MHD_USE_EPOLL): its
    epoll descriptor is one more descriptor of the reactor, MHD_run is
    called when it is readable, and a prepare hook lets the loop sleep no
    longer than MHD_get_timeout allows. A handler runs once the request's
    whole body is read. It answers at once (arb_http_reply_*) or asks the
    broker (arb_http_send, arb_http_submit): the connection is then
    suspended (MHD_ALLOW_SUSPEND_RESUME) until the broker's answer comes
    through the gateway's callback, and resumed with the reply. Submits of
    many clients in one turn leave as one SUBMIT (arb_gateway_submit_one).
    If a request ends before its answer (the server stops), its broker
    request is forgotten (arb_gateway_forget).

    Every answer is JSON, errors too: {"error": "why", "status": N}. The
    server itself answers 404 (no route), 405 (route, other method; with
    Allow), 401 (no bearer token where one is needed), 403 (wrong token),
    400 (a query argument the route does not take, a body where it
    takes none), 413 (body over max_body), 503 (the broker is down or did not answer).

    Auth: with a token, routes marked ARB_HTTP_AUTH need "Authorization:
    Bearer TOKEN". Without one, the server refuses to listen on anything
    but a loopback address, so that open routes stay local.

    Runs in the reactor's thread; not thread-safe.
*/

#ifndef ARB_HTTP_H
#define ARB_HTTP_H

#include "arb_gateway.h"
#include "arb_route.h"
#include "arb_stats_pages.h"

#include <jansson.h>

typedef struct _arb_http_t arb_http_t;
typedef struct _arb_http_req_t arb_http_req_t;

typedef struct {
    const char *address;          //  "HOST:PORT" (IPv4, [IPv6] or localhost; port 0: any)
    const char *token;            //  bearer token; NULL or "": none (loopback only)
    size_t max_body;              //  bytes of a request body at most
    unsigned max_connections;     //  connections at once
    unsigned idle_timeout_s;      //  an idle connection is closed after this long
    uint64_t request_timeout_ms;  //  a request arrives within this long of its first byte (0: any)
} arb_http_config_t;

#define ARB_HTTP_AUTH   1u  //  the route needs the token (when one is configured)
#define ARB_HTTP_BROKER 2u  //  the route needs the broker: 503 at once while it is down
#define ARB_HTTP_BODY   4u  //  the route takes a body: without it, one is answered 400
#define ARB_HTTP_ASKS   8u  //  the route asks the broker (a GET takes its turn), up or not

//  Serves one request (borrowed until it is answered). Must answer it,
//  now or later, exactly once.
typedef void (arb_http_handler_fn) (arb_http_req_t *req, void *arg);

//  The checks of config that arb_http_new makes before it listens (the
//  address's syntax; no token on a non-loopback address), for
//  --check-config. 0, or -1 after logging why. Binds nothing.
int arb_http_config_check (const arb_http_config_t *config);

//  Starts listening (on the gateway's reactor). NULL after logging why
//  (bad or busy address, no token on a non-loopback address).
arb_http_t *arb_http_new (arb_gateway_t *gateway, const arb_http_config_t *config);

//  Answers the requests still waiting with 503, stops the server, frees
//  everything. Call it after the loop stopped, before the gateway goes.
//  Accepts NULL; nulls *self_p.
void arb_http_destroy (arb_http_t **self_p);

//  The port it listens on.
uint16_t arb_http_port (arb_http_t *self);

//  Adds a route (arb_route.h patterns: "/api/v1/tasks/{}", "/static/**")
//  with ARB_HTTP_* flags; it takes any query argument (the handler reads
//  those it knows). 0, or -1 for a bad pattern or a full table.
int arb_http_route (arb_http_t *self,
                    const char *method,
                    const char *pattern,
                    unsigned flags,
                    arb_http_handler_fn *fn,
                    void *arg);

//  As arb_http_route, for a route that takes only the query arguments
//  named in args (space-separated, "" for none, 64 at most; static:
//  borrowed for the server's life): a request with another, or with one
//  of them without a value or twice, is answered 400 naming it, before
//  the handler runs, so that a misspelt filter never passes. claims (or
//  NULL: every path it matches) says which paths the route serves
//  (arb_route.h), given arg too: a request of another method is answered
//  405 offering this route's method only for those, else 404.
int arb_http_route_query (arb_http_t *self,
                          const char *method,
                          const char *pattern,
                          unsigned flags,
                          const char *args,
                          arb_http_handler_fn *fn,
                          arb_route_claims_fn *claims,
                          void *arg);

//  ---------------------------------------------------------------------
//  A request

//  The path's segments (percent-decoded): count, and segment i (borrowed).
size_t arb_http_req_segments (arb_http_req_t *req);
const char *arb_http_req_segment (arb_http_req_t *req, size_t i);

//  A query-string argument (decoded; borrowed), or NULL.
const char *arb_http_req_query (arb_http_req_t *req, const char *key);

//  The body (borrowed; NUL-terminated after size bytes) and its size.
const char *arb_http_req_body (arb_http_req_t *req, size_t *size);

arb_gateway_t *arb_http_req_gateway (arb_http_req_t *req);

//  What a handler keeps with its request until the callback that answers
//  it: data (taken), freed by destructor (may be NULL) when the request
//  ends. One value per request; setting it again frees the last.
void arb_http_req_set_data (arb_http_req_t *req, void *data, void (*destructor) (void *));
void *arb_http_req_data (arb_http_req_t *req);

//  ---------------------------------------------------------------------
//  Answers: exactly one per request, from the handler or a callback.

//  body as JSON (takes the reference; nulls *body_p).
void arb_http_reply_json (arb_http_req_t *req, unsigned status, json_t **body_p);

//  JSON text already encoded (malloc'd, taken; NULL: it could not be
//  encoded, a 500).
void arb_http_reply_json_text (arb_http_req_t *req, unsigned status, char *text, size_t size);

//  {"error": message, "status": status}.
void arb_http_reply_error (arb_http_req_t *req, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Bytes of a content type (data static: lives as long as the program).
void arb_http_reply_static (
    arb_http_req_t *req, unsigned status, const char *content_type, const void *data, size_t size);

//  Text (copied) of a content type.
void arb_http_reply_text (
    arb_http_req_t *req, unsigned status, const char *content_type, const char *text, size_t size);

//  The broker's ERROR (or a local one, code 0: 503) as an HTTP error with
//  its reason; what names the request ("status of task 3").
void arb_http_reply_refusal (arb_http_req_t *req, int code, const char *reason, const char *what);

//  ---------------------------------------------------------------------
//  Asking the broker. A request has at most one question out at a time.

//  The broker's answer (borrowed; an ERROR possibly, code 0 local).
typedef void (arb_http_answer_fn) (arb_http_req_t *req, arb_msg_t *reply, void *arg);

//  Sends a request made with arb_link_request_new (takes it); fn gets the
//  answer. 0, or -1 if the link refused it: req is then answered 503.
int arb_http_send (arb_http_req_t *req, arb_msg_t **request_p, arb_http_answer_fn *fn, void *arg);

//  Sends a request about one task of that id (type: STATUS, CANCEL or
//  RETRY), as arb_http_send.
int arb_http_send_one (
    arb_http_req_t *req, uint64_t id, arb_msg_type_t type, arb_http_answer_fn *fn, void *arg);

//  The task a STATUS of one id answered (borrowed from reply), or NULL if
//  reply is not a STATUS_REPLY or the broker has no such task.
arb_task_info_t *arb_http_found_task (arb_msg_t *reply);

//  The broker's STATS, every page of it (arb_stats_pages): stats is the
//  merged reply (borrowed for the call); NULL if it could not be had,
//  with the broker's code (0: it did not answer) and reason.
typedef void (arb_http_stats_fn) (
    arb_http_req_t *req, arb_stats_reply_body_t *stats, int code, const char *reason, void *arg);

//  Asks for STATS page after page (queue: that queue alone; NULL: every
//  queue and worker) and calls fn once with them all, or with the first
//  failure.
void arb_http_stats (arb_http_req_t *req, const char *queue, arb_http_stats_fn *fn, void *arg);

//  The outcome of one submitted task (task NULL: code and error say why).
typedef void (arb_http_submitted_fn) (
    arb_http_req_t *req, const arb_submitted_task_t *task, int code, const char *error, void *arg);

//  Adds one task to the turn's SUBMIT (arb_gateway_submit_one: takes the
//  payload frame). 0, or -1 if it was refused alone: req is then answered
//  (400 or 413 with the reason).
int
arb_http_submit (arb_http_req_t *req, arb_task_spec_t *spec, arb_http_submitted_fn *fn, void *arg);

#endif
