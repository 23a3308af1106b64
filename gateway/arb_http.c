/*  arb_http.c — the gateway's HTTP server; see arb_http.h.

    A request's record (arb_http_req_t) is made at libmicrohttpd's first
    call for it and freed by its completion callback. Its states:

        reading     the body arrives (bounded by max_body)
        handling    the handler runs; it may answer at once
        waiting     suspended: a question is out to the broker
        answered    a response is ready: queued on the next call

    A request answered while waiting is resumed; libmicrohttpd then calls
    the access handler again, which queues the response. Every live
    request is on a list, so that stopping the server can answer and
    resume the waiting ones (libmicrohttpd refuses to stop with suspended
    connections).

    At most ARB_HTTP_ASKING reads (GET, HEAD) wait for the broker at once;
    the handlers of the others wait their turn, in order, suspended (the
    changes, POSTs and DELETEs with small answers, go at once: a burst of
    submits is one SUBMIT a turn). An answer is built in the loop (a page of 1,000 tasks is about 0.5 MB of JSON,
    ~9 ms), so without a bound a few hundred clients asking at once made
    one turn of several seconds, past the link's liveness window: the
    broker gave the gateway's session up, and the Kestrel and AMQP clients
    that share it lost their requests.

    Each connection has a record of its own (arb_http_conn.c), which
    holds the request begun on it and the deadline of its arrival.
*/

#include "arb_http.h"
#include "arb_http_conn.h"
#include "arb_listener.h"
#include "arb_route.h"
#include "arb_tcp.h"
#include "arb_turns.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define ARB_HTTP_ROUTE_TEXT 128  //  an Allow header
#define ARB_HTTP_ASKING     16   //  requests waiting for the broker at once, at most

typedef struct {
    unsigned flags;
    const char *args;  //  borrowed: the query arguments taken, space-separated; NULL: any
    arb_http_handler_fn *fn;
    void *arg;
} s_handler_t;

struct _arb_http_t {
    arb_gateway_t *gateway;  //  borrowed
    arb_reactor_t *reactor;  //  borrowed: the gateway's
    struct MHD_Daemon *daemon;
    int epoll_fd;               //  the daemon's, watched by the reactor
    arb_route_table_t *routes;  //  owned
    s_handler_t handlers[ARB_ROUTE_MAX];
    char *token;      //  owned, or NULL
    size_t max_body;  //  bytes
    uint16_t port;
    zlistx_t *live;           //  borrowed arb_http_req_t: every request not yet complete
    arb_http_conns_t *conns;  //  owned: every connection
    arb_turns_t *turns;       //  owned: the reads' turns to ask the broker
    bool stopping;            //  in arb_http_destroy: no request is handled
    bool resumed;             //  a request was resumed since the last MHD_run
    bool closed;              //  a connection closed since the last MHD_run
};

struct _arb_http_req_t {
    arb_http_t *server;  //  borrowed
    struct MHD_Connection *connection;
    arb_http_conn_t *conn;  //  borrowed: its connection's record, or NULL
    void *handle;           //  its place on server->live
    arb_route_path_t path;  //  owned segments
    const s_handler_t *handler;
    char *body;   //  owned, NUL-terminated
    size_t size;  //  body bytes
    size_t capacity;
    bool admitted;        //  the first call of s_access came
    const char *refusal;  //  static: why the raw URI is refused, or NULL
    bool handled;         //  the handler ran
    bool read;            //  a GET or a HEAD: takes its turn to ask the broker
    arb_turn_t turn;      //  a read's: waiting, or asking
    bool suspended;
    struct MHD_Response *response;  //  owned until queued
    size_t response_size;           //  its body's bytes
    unsigned status;
    //  the one question out to the broker
    uint32_t reqid;   //  a request's id, or 0
    uint64_t ticket;  //  a submit's ticket, or 0
    arb_http_answer_fn *answer_fn;
    arb_http_submitted_fn *submitted_fn;
    arb_http_stats_fn *stats_fn;
    void *answer_arg;
    arb_stats_pages_t *stats;  //  owned: the pages of STATS so far, or NULL
    void *data;                //  the handler's, owned through destructor
    void (*destructor) (void *);
};

//  ---------------------------------------------------------------------
//  Answers

//  Sets the response and, if the request waits, resumes it.
static void
s_set_response (arb_http_req_t *req, unsigned status, struct MHD_Response *response, size_t size)
{
    assert (!req->response);  //  one answer per request
    req->response_size = size;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    req->response = response;
    req->status = status;
    if (req->suspended) {
        req->suspended = false;
        MHD_resume_connection (req->connection);
        req->server->resumed = true;
    }
    //  it waits for the broker no more: the next in turn may ask
    arb_turns_leave (req->server->turns, &req->turn);
}

void
arb_http_reply_json (arb_http_req_t *req, unsigned status, json_t **body_p)
{
    //  any value: guillotina's routes answer a bare true or false
    char *text = *body_p ? json_dumps (*body_p, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref (*body_p);
    *body_p = NULL;
    arb_http_reply_json_text (req, status, text, text ? strlen (text) : 0);
}

void
arb_http_reply_json_text (arb_http_req_t *req, unsigned status, char *text, size_t size)
{
    struct MHD_Response *response;
    if (text)
        response = MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE);
    else {
        //  a value left unbuilt (json_pack refused a member): ours, not the
        //  client's, and no reason to stop serving
        static const char unbuilt[] = "{\"error\":\"the gateway could not encode its answer\"}";
        zsys_error ("http: an answer could not be encoded (its status would have been %u); "
                    "500 sent",
                    status);
        response = MHD_create_response_from_buffer (sizeof (unbuilt) - 1, (void *) unbuilt,
                                                    MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    s_set_response (req, status, response, size);
}

void
arb_http_reply_error (arb_http_req_t *req, unsigned status, const char *fmt, ...)
{
    char why[ARB_TEXT_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, sizeof (why), fmt, args);
    va_end (args);
    arb_text_clean (why);
    json_t *body = json_object ();
    json_object_set_new (body, "error", json_string (why));
    json_object_set_new (body, "status", json_integer (status));
    arb_http_reply_json (req, status, &body);
}

static void
s_reply_bytes (arb_http_req_t *req,
               unsigned status,
               const char *content_type,
               const void *data,
               size_t size,
               enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, (void *) data, mode);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    s_set_response (req, status, response, size);
}

void
arb_http_reply_static (
    arb_http_req_t *req, unsigned status, const char *content_type, const void *data, size_t size)
{
    s_reply_bytes (req, status, content_type, data, size, MHD_RESPMEM_PERSISTENT);
}

void
arb_http_reply_text (
    arb_http_req_t *req, unsigned status, const char *content_type, const char *text, size_t size)
{
    s_reply_bytes (req, status, content_type, text, size, MHD_RESPMEM_MUST_COPY);
}

void
arb_http_reply_refusal (arb_http_req_t *req, int code, const char *reason, const char *what)
{
    //  the broker's codes are HTTP's; what it means by the others:
    //  410 (it forgot our session) and a local error (it did not
    //  answer) both say the broker cannot be reached now
    unsigned status = (unsigned) code;
    if (code == 0 || code == ARB_ERR_UNKNOWN_WORKER || code == ARB_ERR_UNAVAILABLE)
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
    else if (code < 400 || code > 599)
        status = MHD_HTTP_BAD_GATEWAY;
    if (code == 0)
        arb_http_reply_error (req, status, "%s: the broker is unreachable (%s)", what,
                              reason ? reason : "no answer");
    else
        arb_http_reply_error (req, status, "%s: %s", what, reason ? reason : "refused");
}

//  ---------------------------------------------------------------------
//  Asking the broker

static void
s_on_answer (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_http_req_t *req = (arb_http_req_t *) arg;
    req->reqid = 0;
    req->answer_fn (req, *reply_p, req->answer_arg);
}

int
arb_http_send (arb_http_req_t *req, arb_msg_t **request_p, arb_http_answer_fn *fn, void *arg)
{
    assert (!req->reqid && !req->ticket);
    req->answer_fn = fn;
    req->answer_arg = arg;
    req->reqid = arb_gateway_send (req->server->gateway, request_p, s_on_answer, req);
    if (req->reqid)
        return 0;
    arb_http_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "the broker is unreachable (%s)",
                          arb_gateway_error (req->server->gateway));
    return -1;
}

int
arb_http_send_one (
    arb_http_req_t *req, uint64_t id, arb_msg_type_t type, arb_http_answer_fn *fn, void *arg)
{
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (req->server->gateway), type);
    arb_ids_t *ids = type == ARB_MSG_STATUS   ? &arb_msg_status (request)->ids
                     : type == ARB_MSG_CANCEL ? &arb_msg_cancel (request)->ids
                                              : &arb_msg_retry (request)->ids;
    ids->v = (uint64_t *) arb_msg_alloc (request, sizeof (uint64_t));
    ids->v[0] = id;
    ids->n = 1;
    return arb_http_send (req, &request, fn, arg);
}

arb_task_info_t *
arb_http_found_task (arb_msg_t *reply)
{
    if (arb_msg_type (reply) != ARB_MSG_STATUS_REPLY)
        return NULL;
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    return body->tasks.n && body->tasks.v[0].found ? &body->tasks.v[0] : NULL;
}

static void s_stats_page (arb_http_req_t *req);

static void
s_on_stats_page (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_http_req_t *req = (arb_http_req_t *) arg;
    req->reqid = 0;
    if (arb_msg_type (*reply_p) == ARB_MSG_ERROR) {
        arb_error_body_t *error = arb_msg_error (*reply_p);
        req->stats_fn (req, NULL, (int) error->code, error->reason, req->answer_arg);
        return;
    }
    int more = arb_stats_pages_add (req->stats, reply_p);
    if (more > 0)
        s_stats_page (req);
    else if (more < 0)
        req->stats_fn (req, NULL, ARB_ERR_TOO_LARGE, "more queues or workers than STATS pages",
                       req->answer_arg);
    else
        req->stats_fn (req, arb_stats_pages_reply (req->stats), 0, NULL, req->answer_arg);
}

static void
s_stats_page (arb_http_req_t *req)
{
    arb_gateway_t *gateway = req->server->gateway;
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (gateway), ARB_MSG_STATS);
    arb_stats_pages_request (req->stats, request);
    req->reqid = arb_gateway_send (gateway, &request, s_on_stats_page, req);
    if (!req->reqid)
        req->stats_fn (req, NULL, 0, arb_gateway_error (gateway), req->answer_arg);
}

void
arb_http_stats (arb_http_req_t *req, const char *queue, arb_http_stats_fn *fn, void *arg)
{
    assert (!req->reqid && !req->ticket && !req->stats);
    req->stats_fn = fn;
    req->answer_arg = arg;
    req->stats = arb_stats_pages_new (queue);
    s_stats_page (req);
}

static void
s_on_submitted (arb_gateway_t *gateway,
                const arb_submitted_task_t *task,
                int code,
                const char *error,
                void *arg)
{
    (void) gateway;
    arb_http_req_t *req = (arb_http_req_t *) arg;
    req->ticket = 0;
    req->submitted_fn (req, task, code, error, req->answer_arg);
}

int
arb_http_submit (arb_http_req_t *req, arb_task_spec_t *spec, arb_http_submitted_fn *fn, void *arg)
{
    assert (!req->reqid && !req->ticket);
    req->submitted_fn = fn;
    req->answer_arg = arg;
    req->ticket = arb_gateway_submit_one (req->server->gateway, spec, s_on_submitted, req);
    if (req->ticket)
        return 0;
    const char *why = arb_gateway_error (req->server->gateway);
    bool large = why && strstr (why, ".payload:") && strstr (why, "limit");
    arb_http_reply_error (req, large ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s",
                          why ? why : "refused");
    return -1;
}

//  ---------------------------------------------------------------------
//  A request

size_t
arb_http_req_segments (arb_http_req_t *req)
{
    return req->path.n;
}

const char *
arb_http_req_segment (arb_http_req_t *req, size_t i)
{
    return i < req->path.n ? req->path.v[i] : NULL;
}

const char *
arb_http_req_query (arb_http_req_t *req, const char *key)
{
    return MHD_lookup_connection_value (req->connection, MHD_GET_ARGUMENT_KIND, key);
}

const char *
arb_http_req_body (arb_http_req_t *req, size_t *size)
{
    *size = req->size;
    return req->body ? req->body : "";
}

arb_gateway_t *
arb_http_req_gateway (arb_http_req_t *req)
{
    return req->server->gateway;
}

void
arb_http_req_set_data (arb_http_req_t *req, void *data, void (*destructor) (void *))
{
    if (req->data && req->destructor)
        req->destructor (req->data);
    req->data = data;
    req->destructor = destructor;
}

void *
arb_http_req_data (arb_http_req_t *req)
{
    return req->data;
}

static void
s_req_destroy (arb_http_req_t **req_p)
{
    arb_http_req_t *req = *req_p;
    if (!req)
        return;
    //  the client is gone before the broker answered: drop the answer
    if (req->reqid)
        arb_gateway_forget (req->server->gateway, req->reqid);
    if (req->ticket)
        arb_gateway_forget_submit (req->server->gateway, req->ticket);
    arb_http_req_set_data (req, NULL, NULL);
    arb_stats_pages_destroy (&req->stats);
    arb_turns_leave (req->server->turns, &req->turn);
    zlistx_delete (req->server->live, req->handle);
    if (req->response)
        MHD_destroy_response (req->response);
    arb_route_path_clear (&req->path);
    if (req->conn && arb_http_conn_req (req->conn) == req)
        arb_http_conn_set_req (req->conn, NULL);
    free (req->body);
    free (req);
    *req_p = NULL;
}

//  Constant-time comparison, so the token cannot be guessed byte by byte
//  from answer times.
static bool
s_same_token (const char *given, size_t a, const char *token)
{
    size_t b = strlen (token);
    unsigned char diff = a != b;
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char) (given[i < a ? i : 0] ^ token[i]);
    return diff == 0;
}

//  The index of word among the space-separated words of list, or -1.
static int
s_word_index (const char *word, const char *list)
{
    size_t len = strlen (word);
    int index = 0;
    for (const char *p = list; *p; index++) {
        size_t n = strcspn (p, " ");
        if (n > 0 && n == len && memcmp (p, word, n) == 0)
            return index;
        p += n + (p[n] == ' ');
    }
    return -1;
}

typedef struct {
    const char *args;  //  those taken
    uint64_t seen;     //  bit i: the i-th of args was given
    const char *bad;   //  the first argument refused, or NULL
    const char *why;   //  static: why
} s_query_check_t;

static enum MHD_Result
s_query_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_query_check_t *check = (s_query_check_t *) cls;
    int index = s_word_index (key, check->args);
    check->bad = key;
    if (index < 0 || index >= 64)
        check->why = "is not a query argument of this route";
    else if (!value)
        check->why = "has no value (expected NAME=VALUE)";
    else if (check->seen & (1ull << index))
        check->why = "is repeated (give each argument once)";
    else {
        check->seen |= 1ull << index;
        check->bad = NULL;
        return MHD_YES;
    }
    return MHD_NO;
}

//  A route that names its query arguments: answers 400 for another one,
//  one without a value ("?limit") or one given twice. Returns whether it
//  did.
static bool
s_refuse_query (arb_http_req_t *req)
{
    const char *args = req->handler->args;
    if (!args)
        return false;
    s_query_check_t check = {args, 0, NULL, NULL};
    MHD_get_connection_values (req->connection, MHD_GET_ARGUMENT_KIND, s_query_arg, &check);
    if (!check.bad)
        return false;
    arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "'%.64s' %s (%s)", check.bad, check.why,
                          *args ? args : "it takes none");
    return true;
}

//  Checks what can be checked before the body: route, method, token,
//  query arguments, broker, declared length. Answers the request if it
//  fails.
static void
s_admit (arb_http_t *self, arb_http_req_t *req, const char *url, const char *method)
{
    char allow[ARB_HTTP_ROUTE_TEXT];
    int route = -1;
    if (arb_route_split (url, &req->path)
        || arb_route_find (self->routes, method, &req->path, &route, allow, sizeof (allow))
               == ARB_ROUTE_NOT_FOUND) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no such path '%.64s'", url);
        return;
    }
    if (route < 0) {
        arb_http_reply_error (req, MHD_HTTP_METHOD_NOT_ALLOWED, "%.32s is not allowed here (%s)",
                              method, allow);
        MHD_add_response_header (req->response, MHD_HTTP_HEADER_ALLOW, allow);
        return;
    }
    req->handler = &self->handlers[route];
    //  (the static files, which ask nothing, answer without waiting their
    //  turn)
    req->read = (streq (method, "GET") || streq (method, "HEAD"))
                && (req->handler->flags & (ARB_HTTP_BROKER | ARB_HTTP_ASKS));
    if (self->token && (req->handler->flags & ARB_HTTP_AUTH)) {
        const char *auth = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION);
        //  RFC 9110: optional whitespace around a field's value is not
        //  part of it, and the scheme is followed by one or more spaces
        if (auth)
            auth += strspn (auth, " \t");
        if (!auth || strncasecmp (auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t')) {
            arb_http_reply_error (req, MHD_HTTP_UNAUTHORIZED,
                                  "this route needs an \"Authorization: Bearer TOKEN\" header");
            MHD_add_response_header (req->response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                     "Bearer realm=\"arbiter\"");
            return;
        }
        const char *given = auth + 6 + strspn (auth + 6, " \t");
        size_t len = strlen (given);
        while (len && (given[len - 1] == ' ' || given[len - 1] == '\t'))
            len--;
        if (!s_same_token (given, len, self->token)) {
            arb_http_reply_error (req, MHD_HTTP_FORBIDDEN, "wrong token");
            return;
        }
    }
    if (s_refuse_query (req))
        return;
    if ((req->handler->flags & ARB_HTTP_BROKER) && !arb_gateway_is_open (self->gateway)) {
        arb_http_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "the broker is unreachable; try again later");
        return;
    }
    const char *length = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared = 0;
    if (length && arb_route_number (length, UINT64_MAX, &declared) == 0
        && declared > self->max_body)
        arb_http_reply_error (req, MHD_HTTP_CONTENT_TOO_LARGE,
                              "body of %" PRIu64 " bytes, over the %zu-byte limit", declared,
                              self->max_body);
}

//  Appends body bytes. 0, or -1 past max_body (then answered 413, and
//  the body is not kept).
static int
s_read (arb_http_req_t *req, const char *data, size_t size)
{
    size_t max = req->server->max_body;
    if (size > max - req->size) {
        arb_http_reply_error (req, MHD_HTTP_CONTENT_TOO_LARGE, "body over the %zu-byte limit", max);
        return -1;
    }
    if (req->size + size + 1 > req->capacity) {
        size_t capacity = req->capacity ? req->capacity : 1024;
        while (capacity < req->size + size + 1)
            capacity *= 2;
        req->body = (char *) realloc (req->body, capacity);
        assert (req->body);
        req->capacity = capacity;
    }
    memcpy (req->body + req->size, data, size);
    req->size += size;
    req->body[req->size] = '\0';
    return 0;
}

static enum MHD_Result
s_queue (arb_http_req_t *req)
{
    struct MHD_Response *response = req->response;
    req->response = NULL;
    if (req->conn)  //  its time to be read starts
        arb_http_conn_answered (req->conn, arb_reactor_now (req->server->reactor),
                                req->response_size);
    enum MHD_Result rc = MHD_queue_response (req->connection, req->status, response);
    MHD_destroy_response (response);
    return rc;
}

//  True if text (len bytes) holds the escape %HL, either case.
static bool
s_has_escape (const char *text, size_t len, char high, char low)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (text[i] == '%' && tolower ((unsigned char) text[i + 1]) == high
            && tolower ((unsigned char) text[i + 2]) == low)
            return true;
    return false;
}

static arb_http_req_t *
s_req_new (arb_http_t *self, struct MHD_Connection *connection)
{
    arb_http_req_t *req = (arb_http_req_t *) zmalloc (sizeof (arb_http_req_t));
    req->server = self;
    req->connection = connection;
    req->handle = zlistx_add_end (self->live, req);
    req->conn = arb_http_conn_of (connection);
    if (req->conn) {
        //  one left by a request given up before its completion
        arb_http_req_t *left = (arb_http_req_t *) arb_http_conn_req (req->conn);
        s_req_destroy (&left);
        arb_http_conn_set_req (req->conn, req);
    }
    return req;
}

//  libmicrohttpd's URI log callback: the raw URI, before it is decoded.
//  Its decoding ends a string at a %00 (so /wo%00rk would route as /wo,
//  and ?queue=wo%00rk filter as wo) and makes a %2F a separator to the
//  router: both are seen, and refused, only here. The request is made
//  here; s_completed frees it.
static void *
s_uri (void *cls, const char *uri, struct MHD_Connection *connection)
{
    arb_http_req_t *req = s_req_new ((arb_http_t *) cls, connection);
    size_t path = strcspn (uri, "?");
    if (s_has_escape (uri, path, '0', '0'))
        req->refusal = "the path contains a NUL byte (%00)";
    else if (s_has_escape (uri, path, '2', 'f'))
        req->refusal = "the path contains an encoded slash (%2F)";
    else if (s_has_escape (uri + path, strlen (uri + path), '0', '0'))
        req->refusal = "the query contains a NUL byte (%00)";
    return req;
}

typedef struct {
    int lengths;    //  Content-Length fields
    int encodings;  //  Transfer-Encoding fields
    bool chunked;   //  the last one's value is "chunked", alone
    bool blank;     //  a field name holds a space or a tab
} s_framing_t;

static enum MHD_Result
s_framing_field (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_framing_t *framing = (s_framing_t *) cls;
    if (strpbrk (key, " \t"))
        framing->blank = true;
    else if (strcasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        framing->lengths++;
    else if (strcasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        framing->encodings++;
        framing->chunked = value && strcasecmp (value, "chunked") == 0;
    }
    return MHD_YES;
}

//  Why where the request ends is in doubt (RFC 9112 6.1, 6.3, 5.1), or
//  NULL: a proxy in front could read its framing otherwise, and take what
//  follows the body here for a request of its own, or the other way round.
//  Sets *status to the answer's (400, or 501 for a coding not taken).
static const char *
s_framing_doubt (struct MHD_Connection *connection, unsigned *status)
{
    s_framing_t framing = {0, 0, false, false};
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_framing_field, &framing);
    *status = MHD_HTTP_BAD_REQUEST;
    if (framing.blank)
        return "a header field name with a space or a tab (before its colon?)";
    if (framing.lengths && framing.encodings)
        return "both Content-Length and Transfer-Encoding";
    if (framing.lengths > 1)
        return "Content-Length given more than once";
    if (framing.encodings > 1)
        return "Transfer-Encoding given more than once";
    if (framing.encodings && !framing.chunked) {
        *status = MHD_HTTP_NOT_IMPLEMENTED;
        return "a Transfer-Encoding other than chunked";
    }
    return NULL;
}

static bool
s_blank (char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

//  Whether a request's body says nothing: none, blanks, or a JSON object
//  without members ({}), which clients send for "no parameters" (http.md:
//  a route refuses a body that is not JSON or holds fields it does not
//  take).
static bool
s_body_is_empty (const arb_http_req_t *req)
{
    const char *at = req->body ? req->body : "", *end = at + (req->body ? req->size : 0);
    while (at < end && s_blank (*at))
        at++;
    if (at < end && *at == '{') {
        for (at++; at < end && s_blank (*at); at++)
            ;
        if (at == end || *at != '}')
            return false;
        for (at++; at < end && s_blank (*at); at++)
            ;
    }
    return at == end;
}

//  Runs a request's handler (a read's when its turn comes: those waiting
//  are suspended, an answer resumes them); one that did not answer at once
//  asks the broker.
static void
s_handle (void *item)
{
    arb_http_req_t *req = (arb_http_req_t *) item;
    req->handled = true;
    req->handler->fn (req, req->handler->arg);
}

//  A request is in (or refused before its body): its deadline is met.
static void
s_received (arb_http_req_t *req)
{
    if (req->conn)
        arb_http_conn_received (req->conn);
}

static enum MHD_Result
s_access (void *cls,
          struct MHD_Connection *connection,
          const char *url,
          const char *method,
          const char *version,
          const char *upload_data,
          size_t *upload_data_size,
          void **con_cls)
{
    (void) version;
    arb_http_t *self = (arb_http_t *) cls;
    arb_http_req_t *req = (arb_http_req_t *) *con_cls;
    if (!req) {
        req = s_req_new (self, connection);
        *con_cls = req;
    }
    if (!req->admitted) {
        req->admitted = true;
        unsigned status;
        const char *doubt;
        if (req->refusal)
            arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "%s", req->refusal);
        else if ((doubt = s_framing_doubt (connection, &status))) {
            //  where this request ends is not known: answered, and closed
            arb_http_reply_error (req, status, "%s", doubt);
            MHD_add_response_header (req->response, MHD_HTTP_HEADER_CONNECTION, "close");
        }
        else
            s_admit (self, req, url, method);
        //  an early refusal goes out without reading the body
        if (req->response) {
            s_received (req);
            return s_queue (req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        //  past the limit the rest is read and dropped: libmicrohttpd
        //  takes a response only once the body is in
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (!req->response)
            s_read (req, upload_data, size);
        return MHD_YES;
    }
    s_received (req);
    if (req->response)
        return s_queue (req);
    if (!req->handled && !arb_turns_waiting (&req->turn)) {
        if (self->stopping) {
            //  in arb_http_destroy's last run: answered, not handled (a
            //  question to the broker would leave it suspended, and
            //  libmicrohttpd refuses to stop then)
            req->handled = true;
            arb_http_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "the gateway is stopping");
        }
        else if (!(req->handler->flags & ARB_HTTP_BODY) && !s_body_is_empty (req)) {
            //  refused, not ignored: a body sent here means something the
            //  route would not do
            req->handled = true;
            arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST,
                                  "this route takes no body (%zu bytes sent)", req->size);
        }
        else if (req->read)
            arb_turns_take (self->turns, &req->turn, req);
        else
            s_handle (req);
    }
    if (req->response)
        return s_queue (req);
    //  waiting for the broker: no thread waits, the connection sleeps
    req->suspended = true;
    MHD_suspend_connection (connection);
    return MHD_YES;
}

static void
s_completed (void *cls,
             struct MHD_Connection *connection,
             void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) toe;
    arb_http_req_t *req = (arb_http_req_t *) *con_cls;
    (void) connection;
    arb_http_conn_t *conn = req ? req->conn : NULL;
    s_req_destroy (&req);
    *con_cls = NULL;
    if (conn)
        arb_http_conn_ended (conn);
}

static void
s_connection (void *cls,
              struct MHD_Connection *connection,
              void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    arb_http_t *self = (arb_http_t *) cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        //  options only: a connection works without them
        if (info)
            (void) arb_tcp_keepalive (info->connect_fd);
        *socket_context = arb_http_conns_open (self->conns, connection);
    }
    else if (*socket_context) {
        arb_http_conn_t *conn = (arb_http_conn_t *) *socket_context;
        arb_http_req_t *req = (arb_http_req_t *) arb_http_conn_req (conn);
        s_req_destroy (&req);
        arb_http_conns_close (self->conns, &conn);
        *socket_context = NULL;
    }
    arb_gateway_connected (self->gateway, ARB_GATEWAY_HTTP,
                           toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        self->closed = true;
}

//  ---------------------------------------------------------------------
//  The server in the loop

static void
s_on_epoll (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    (void) events;
    arb_http_t *self = (arb_http_t *) arg;
    self->resumed = false;
    self->closed = false;
    MHD_run (self->daemon);
}

static int
s_prepare (arb_reactor_t *reactor, void *arg)
{
    (void) reactor;
    arb_http_t *self = (arb_http_t *) arg;
    //  In this mode libmicrohttpd neither signals resumed connections
    //  nor counts them in its timeout, and data it left to read does not
    //  show on its descriptor: run it for them now. What it produces
    //  (submits) leaves with the next turn, at once.
    //  A connection closed in the last run is another such case: at its
    //  --http-connections limit libmicrohttpd takes the listen socket out
    //  of its epoll set, and puts it back only at the start of a later
    //  run, once it counts fewer connections. Nothing would call that run
    //  (the listen socket is not in the set to wake us, and with no
    //  connection left there is no timeout), so the listener would stay
    //  deaf for good and its backlog fill.
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    bool timed = MHD_get_timeout (self->daemon, &timeout) == MHD_YES;
    if (self->resumed || self->closed || (timed && timeout == 0)) {
        self->resumed = false;
        self->closed = false;
        MHD_run (self->daemon);
        return 0;
    }
    if (!timed)
        return -1;
    return timeout > INT_MAX ? INT_MAX : (int) timeout;
}

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char text[512];
    vsnprintf (text, sizeof (text), fmt, ap);
    text[strcspn (text, "\n")] = '\0';
    zsys_warning ("http: %s", text);
}

//  Parses "HOST:PORT" (IPv4, [IPv6] or localhost) into addr. 0, or -1.
static int
s_address (const char *text, struct sockaddr_storage *addr, bool *loopback)
{
    //  localhost: one address, whatever the resolver's order
    char local[32];
    if (strncmp (text, "localhost:", 10) == 0 && strlen (text + 10) < 8) {
        snprintf (local, sizeof (local), "127.0.0.1:%s", text + 10);
        text = local;
    }
    //  a name as Kestrel's and AMQP's addresses take it: the server binds
    //  its first address; without a token, every one must be loopback
    struct addrinfo *found = NULL;
    if (arb_listener_resolve ("http", text, &found, loopback))
        return -1;
    memset (addr, 0, sizeof (*addr));
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    freeaddrinfo (found);
    return 0;
}

//  The address parsed into addr, and the rule that without a token only
//  loopback is served. 0, or -1 after logging why.
static int
s_check (const arb_http_config_t *config, struct sockaddr_storage *addr)
{
    bool loopback = false;
    if (s_address (config->address, addr, &loopback))
        return -1;  //  arb_listener_resolve said why
    if (!(config->token && *config->token) && !loopback) {
        zsys_error ("http: no token is configured, so the server listens on loopback only, not "
                    "on %s: set http-token in the config file, or use 127.0.0.1",
                    config->address);
        return -1;
    }
    return 0;
}

int
arb_http_config_check (const arb_http_config_t *config)
{
    struct sockaddr_storage addr;
    return s_check (config, &addr);
}

arb_http_t *
arb_http_new (arb_gateway_t *gateway, const arb_http_config_t *config)
{
    struct sockaddr_storage addr;
    if (s_check (config, &addr))
        return NULL;
    bool token = config->token && *config->token;
    arb_http_t *self = (arb_http_t *) zmalloc (sizeof (arb_http_t));
    self->gateway = gateway;
    self->reactor = arb_gateway_reactor (gateway);
    self->routes = arb_route_table_new ();
    self->live = zlistx_new ();
    self->turns = arb_turns_new (ARB_HTTP_ASKING, s_handle);
    self->conns = arb_http_conns_new (self->reactor, config->request_timeout_ms);
    self->token = token ? strdup (config->token) : NULL;
    self->max_body = config->max_body;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG
                     | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    //  no MHD_OPTION_LISTENING_ADDRESS_REUSE: its SO_REUSEPORT let a second
    //  gateway bind the same port and take half the requests. The default,
    //  SO_REUSEADDR, still lets a restart bind over TIME_WAIT connections.
    //  the port, which MHD_OPTION_SOCK_ADDR overrides, for its messages
    //  ("Failed to bind to port 0" named no port)
    uint16_t port = ntohs (addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                                                      : ((struct sockaddr_in *) &addr)->sin_port);
    self->daemon = MHD_start_daemon (
        flags, port, NULL, NULL, s_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
        self, MHD_OPTION_NOTIFY_CONNECTION, s_connection, self, MHD_OPTION_URI_LOG_CALLBACK, s_uri,
        self, MHD_OPTION_CONNECTION_LIMIT, config->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        config->idle_timeout_s, MHD_OPTION_END);
    if (!self->daemon) {
        zsys_error ("http: cannot listen on %s: %s", config->address, strerror (errno));
        arb_http_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info->epoll_fd;
    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    arb_reactor_add_fd (self->reactor, self->epoll_fd, ARB_REACTOR_READ, s_on_epoll, self);
    arb_reactor_add_prepare (self->reactor, s_prepare, self);
    zsys_info ("http: listening address=%s port=%u auth=%s", config->address, self->port,
               token ? "token" : "none");
    if (!token)
        zsys_notice ("http: no http-token configured: every route is open, so the server "
                     "listens on loopback only");
    return self;
}

void
arb_http_destroy (arb_http_t **self_p)
{
    arb_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        //  libmicrohttpd stops only with no connection suspended; those
        //  waiting their turn are answered as the others, not handled
        self->stopping = true;
        arb_turns_stop (self->turns);
        for (arb_http_req_t *req = (arb_http_req_t *) zlistx_first (self->live); req;
             req = (arb_http_req_t *) zlistx_next (self->live))
            if (req->suspended)
                arb_http_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "the gateway is stopping");
        MHD_run (self->daemon);
        arb_reactor_remove_fd (self->reactor, self->epoll_fd);
        MHD_stop_daemon (self->daemon);
    }
    arb_route_table_destroy (&self->routes);
    zlistx_destroy (&self->live);
    arb_turns_destroy (&self->turns);
    arb_http_conns_destroy (&self->conns);
    free (self->token);
    free (self);
    *self_p = NULL;
}

uint16_t
arb_http_port (arb_http_t *self)
{
    return self->port;
}

int
arb_http_route_query (arb_http_t *self,
                      const char *method,
                      const char *pattern,
                      unsigned flags,
                      const char *args,
                      arb_http_handler_fn *fn,
                      arb_route_claims_fn *claims,
                      void *arg)
{
    int route = arb_route_add (self->routes, method, pattern);
    if (route < 0)
        return -1;
    if (claims)
        arb_route_set_claims (self->routes, route, claims, arg);
    self->handlers[route] = (s_handler_t){flags, args, fn, arg};
    return 0;
}

int
arb_http_route (arb_http_t *self,
                const char *method,
                const char *pattern,
                unsigned flags,
                arb_http_handler_fn *fn,
                void *arg)
{
    return arb_http_route_query (self, method, pattern, flags, NULL, fn, NULL, arg);
}
