/*  arb_amqp_conn.c — one AMQP connection: the state machine of channel 0
    and the routing of frames to channels.

        HEADER   --protocol header-->     START_OK  (Start sent)
        HEADER   --anything else-->       our header back, socket closed
        START_OK --start-ok, login ok-->  TUNE_OK   (Tune sent)
        START_OK --login refused-->       CLOSING (403) or closed
        TUNE_OK  --tune-ok-->             OPEN
        OPEN     --open, model loaded-->  RUNNING   (Open-Ok sent)
        OPEN     --open, not loaded-->    OPENING   (Open-Ok once loaded)
        OPEN     --open, over the limit-> CLOSING   (530 NOT_ALLOWED)
        RUNNING  --close-->               CLOSED    (Close-Ok sent)
        RUNNING  --start-ok, tune-ok      CLOSING   (504 CHANNEL_ERROR, as
                   or open again-->                  RabbitMQ)
        START_OK, TUNE_OK, OPEN           CLOSING   (503 COMMAND_INVALID)
                 --another method-->
        any      --hard error-->          CLOSING   (Close sent; only Close
                                                     and Close-Ok count)
        CLOSING  --close-ok or close-->   CLOSED

    A method that needs the broker (declares, deletes, basic.get) holds
    the input until its answers come (arb_amqp_conn_wait), so every method
    of a connection is handled in order; publishes and acks never wait.

    The limit: a connection is counted against --amqp-max-connections
    from its connection.open on (arb_amqp_admit) until it is on its way
    out (arb_amqp_conn_is_gone: a Close sent or received, its socket
    ended), whichever way it ends; one that opens past it gets 530, as
    from RabbitMQ (s_refuse_over).

    Heartbeats: with hb > 0 negotiated, a tick every hb/4 s sends a
    heartbeat if nothing was written since the last tick, so the client
    hears from the gateway at least every hb/2 s: a write just after a tick
    is followed by a tick that sees it and one that sends.
    @cloudamqp/amqp-client gives up after one interval without a byte; with
    ticks every hb/2, the open-ok (written as the timer was armed) was
    followed by the first heartbeat a whole interval later, and the client
    closed about half of the connections left idle after their open. The
    connection is closed after 3 intervals (12 ticks) without a byte from
    the client (RabbitMQ waits 2 to 3; pika's BlockingConnection may be
    late). hb 0 (amqp-tools) never times out.
*/

#include "arb_amqp_priv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

//  A heartbeat tick: a quarter of the interval, in ms for each second of
//  it; and the ticks without a byte from the client that close its
//  connection (3 intervals)
#define S_TICK_MS      250u
#define S_SILENT_TICKS 12

static void s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);
static void s_free (arb_amqp_conn_t *self);

//  ---------------------------------------------------------------------
//  Output

void
arb_amqp_conn_send (arb_amqp_conn_t *self, uint16_t channel, amqp_method_number_t id, void *m)
{
    uint8_t buf[ARB_AMQP_METHOD_MAX];
    int n = arb_amqp_frame_write_method (buf, sizeof (buf), channel, id, m);
    if (n < 0) {
        zsys_error ("amqp: cannot encode method=%s conn=%" PRIu64,
                    arb_amqp_frame_method_name (id).text, self->number);
        return;
    }
    arb_stream_write (self->stream, buf, (size_t) n);
}

//  A Basic.Cancel held for the Delete-Ok.
typedef struct {
    uint16_t channel;
    char tag[];
} s_held_cancel_t;

static void
s_held_cancel_free (void **item)
{
    free (*item);
    *item = NULL;
}

void
arb_amqp_conn_hold_cancel (arb_amqp_conn_t *self, uint16_t channel, const char *tag)
{
    if (!self->held_cancels) {
        self->held_cancels = zlistx_new ();
        zlistx_set_destructor (self->held_cancels, s_held_cancel_free);
    }
    size_t len = strlen (tag);
    s_held_cancel_t *held = (s_held_cancel_t *) malloc (sizeof (s_held_cancel_t) + len + 1);
    assert (held);
    held->channel = channel;
    memcpy (held->tag, tag, len + 1);
    zlistx_add_end (self->held_cancels, held);
}

void
arb_amqp_conn_send_held_cancels (arb_amqp_conn_t *self)
{
    if (!self->held_cancels)
        return;
    for (s_held_cancel_t *held = (s_held_cancel_t *) zlistx_first (self->held_cancels); held;
         held = (s_held_cancel_t *) zlistx_next (self->held_cancels)) {
        arb_amqp_channel_t *open = self->channels[held->channel];
        if (open && !arb_amqp_channel_is_closing (open)) {
            //  nowait, as RabbitMQ sends it (arb_amqp_channel_queue_gone says why)
            amqp_basic_cancel_t cancel = {.consumer_tag = amqp_cstring_bytes (held->tag),
                                          .nowait = 1};
            arb_amqp_conn_send (self, held->channel, AMQP_BASIC_CANCEL_METHOD, &cancel);
        }
    }
    zlistx_destroy (&self->held_cancels);
}

void
arb_amqp_conn_send_content (arb_amqp_conn_t *self,
                            uint16_t channel,
                            amqp_method_number_t id,
                            void *method,
                            const uint8_t *raw,
                            size_t raw_size,
                            zframe_t **payload_p)
{
    arb_amqp_conn_send (self, channel, id, method);
    zframe_t *payload = *payload_p;
    *payload_p = NULL;
    size_t size = payload ? zframe_size (payload) : 0;
    uint8_t *at = arb_stream_reserve (self->stream, ARB_AMQP_OVERHEAD + 12 + raw_size);
    arb_amqp_frame_write_content (at, channel, size, raw, raw_size);
    //  no body frame for an empty body: pika and amqplib break on one
    size_t chunk = self->frame_max - ARB_AMQP_OVERHEAD;
    const uint8_t *data = payload ? zframe_data (payload) : NULL;
    bool sliced = false;  //  a slice points into payload: the stream must own it
    for (size_t off = 0; off < size; off += chunk) {
        size_t len = size - off < chunk ? size - off : chunk;
        bool last = off + len == size;
        uint8_t *head = arb_stream_reserve (self->stream, 7);
        arb_amqp_frame_write_head (head, AMQP_FRAME_BODY, channel, (uint32_t) len);
        //  small pieces are copied, larger ones written from the frame;
        //  the last piece hands the frame over if any slice needs it
        if (len <= 2048 && !(last && sliced))
            arb_stream_write (self->stream, data + off, len);
        else {
            arb_stream_write_slice (self->stream, data + off, len, last ? &payload : NULL);
            sliced = true;
        }
        uint8_t end = AMQP_FRAME_END;
        arb_stream_write (self->stream, &end, 1);
    }
    zframe_destroy (&payload);
}

static void
s_send_close (arb_amqp_conn_t *self, int code, const char *text, uint32_t method)
{
    char cut[256];
    amqp_connection_close_t close = {
        .reply_code = (uint16_t) code,
        .reply_text = amqp_cstring_bytes (arb_amqp_frame_short (cut, text)),
        .class_id = (uint16_t) (method >> 16),
        .method_id = (uint16_t) (method & 0xffff),
    };
    arb_amqp_conn_send (self, 0, AMQP_CONNECTION_CLOSE_METHOD, &close);
}

//  Sends Connection.Close and waits for its Close-Ok (arb_amqp_conn_fail,
//  which logs it first; a refusal at the limit logs its own way).
static void
s_fail (arb_amqp_conn_t *self, int code, const char *text, uint32_t method)
{
    char cut[256];
    snprintf (cut, sizeof (cut), "%s", text);
    s_send_close (self, code, cut, method);
    self->state = ARB_AMQP_S_CLOSING;
    //  the channels end now: their deliveries go back, nothing more goes out
    for (size_t i = 0; self->channels && i <= self->channel_max; i++)
        arb_amqp_channel_destroy (&self->channels[i]);
    self->open_channels = 0;
    arb_reactor_arm (self->server->reactor, &self->timer, ARB_AMQP_CLOSE_MS, s_on_timer, self);
}

void
arb_amqp_conn_fail (arb_amqp_conn_t *self, int code, const char *text, uint32_t method)
{
    if (self->state == ARB_AMQP_S_CLOSING || self->state == ARB_AMQP_S_CLOSED || self->dead)
        return;
    //  the clients decide how often: a flood of them does not fill the log
    if (arb_loglimit_take (&self->server->failures, arb_reactor_now (self->server->reactor)))
        zsys_info ("amqp: connection error conn=%" PRIu64 " peer=%s code=%d text=\"%.200s\"",
                   self->number, self->peer, code, text);
    s_fail (self, code, text, method);
}

//  ---------------------------------------------------------------------
//  Waiting for the broker

uint32_t
arb_amqp_conn_wait (arb_amqp_conn_t *self, uint32_t reqid)
{
    if (!reqid)
        return 0;
    if (self->npending == self->pending_max) {
        self->pending_max = self->pending_max ? 2 * self->pending_max : 8;
        self->pending = (uint32_t *) realloc (self->pending, self->pending_max * sizeof (uint32_t));
        assert (self->pending);
    }
    self->pending[self->npending++] = reqid;
    if (!self->waiting) {
        self->waiting = true;
        arb_stream_hold (self->stream, true);
    }
    return reqid;
}

//  Whether the connection may read its socket: no method waits for the
//  broker, the claim is fresh, the link has room, fewer publishes than
//  the most await the broker, and the connection is not waiting at open.
static bool
s_may_read (arb_amqp_conn_t *self)
{
    return self->stream && !self->dead && !self->waiting && !self->fenced && !self->flow_held
           && self->inflight < ARB_AMQP_INFLIGHT_MAX && self->state != ARB_AMQP_S_OPENING;
}

void
arb_amqp_conn_read_on (arb_amqp_conn_t *self)
{
    if (s_may_read (self))
        arb_stream_hold (self->stream, false);
}

void
arb_amqp_conn_resume (arb_amqp_conn_t *self)
{
    if (self->npending == 0 && self->holds == 0 && self->waiting) {
        self->waiting = false;
        arb_amqp_conn_read_on (self);
    }
}

//  Sends the -Ok a close or a cancel of consumers answers with: a
//  Connection.Close-Ok ends the connection; the others go only to a
//  connection, and a channel, still open.
static void
s_send_ok (arb_amqp_conn_t *self, uint16_t channel, amqp_method_number_t ok, const char *tag)
{
    if (ok == AMQP_CONNECTION_CLOSE_OK_METHOD) {
        amqp_connection_close_ok_t close_ok = {0};
        arb_amqp_conn_send (self, 0, ok, &close_ok);
        arb_stream_close_after (self->stream);
    }
    else if (self->state == ARB_AMQP_S_CLOSING)
        ;  //  the connection failed meanwhile: its Close says all
    else if (ok == AMQP_CHANNEL_CLOSE_OK_METHOD) {
        amqp_channel_close_ok_t close_ok = {0};
        arb_amqp_conn_send (self, channel, ok, &close_ok);
    }
    else if (self->channels[channel] && !arb_amqp_channel_is_closing (self->channels[channel])) {
        amqp_basic_cancel_ok_t cancel_ok = {.consumer_tag = amqp_cstring_bytes (tag)};
        arb_amqp_conn_send (self, channel, ok, &cancel_ok);
    }
}

static void
s_on_settled (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_amqp_conn_t *self = (arb_amqp_conn_t *) arg;
    zsys_debug ("amqp: settled conn=%" PRIu64 " channel=%u", self->number, self->settling);
    s_send_ok (self, self->settling, self->settle, self->settle_tag);
    self->settle = 0;
    free (self->settle_tag);
    self->settle_tag = NULL;
    arb_amqp_conn_answered (self, arb_msg_reqid (*reply_p));
}

void
arb_amqp_conn_settle (arb_amqp_conn_t *self,
                      uint16_t channel,
                      amqp_method_number_t ok,
                      const char *tag,
                      bool consumed)
{
    arb_gateway_t *gateway = self->server->gateway;
    uint32_t reqid = 0;
    if (consumed && arb_gateway_is_open (gateway)) {
        arb_link_t *link = arb_gateway_link (gateway);
        arb_link_flush (link);  //  the cancels and what was given back, before the PING
        arb_msg_t *ping = arb_link_request_new (link, ARB_MSG_PING);
        reqid = arb_gateway_send (gateway, &ping, s_on_settled, self);
    }
    if (!reqid) {
        s_send_ok (self, channel, ok, tag);
        return;
    }
    self->settling = channel;
    self->settle = ok;
    self->settle_tag = tag ? strdup (tag) : NULL;
    zsys_debug ("amqp: settling conn=%" PRIu64 " channel=%u reqid=%u", self->number, channel,
                reqid);
    arb_amqp_conn_wait (self, reqid);
    if (ok == AMQP_CONNECTION_CLOSE_OK_METHOD)
        //  the heartbeat's timer would take the state for a close timed
        //  out: the wait has a close's bound instead
        arb_reactor_arm (self->server->reactor, &self->timer, ARB_AMQP_CLOSE_MS, s_on_timer, self);
}

void
arb_amqp_conn_answered (arb_amqp_conn_t *self, uint32_t reqid)
{
    for (size_t i = 0; i < self->npending; i++)
        if (self->pending[i] == reqid) {
            self->pending[i] = self->pending[--self->npending];
            break;
        }
    arb_amqp_conn_resume (self);
}

void
arb_amqp_conn_hold (arb_amqp_conn_t *self)
{
    self->holds++;
    if (!self->waiting) {
        self->waiting = true;
        arb_stream_hold (self->stream, true);
    }
}

void
arb_amqp_conn_unhold (arb_amqp_conn_t *self)
{
    assert (self->holds > 0);
    self->holds--;
    arb_amqp_conn_resume (self);
}

//  ---------------------------------------------------------------------
//  The handshake

static void
s_send_start (arb_amqp_conn_t *self)
{
    amqp_table_entry_t caps[] = {
        {amqp_cstring_bytes ("publisher_confirms"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("exchange_exchange_bindings"),
         {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("basic.nack"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("consumer_cancel_notify"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("authentication_failure_close"),
         {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("per_consumer_qos"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("consumer_priorities"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("direct_reply_to"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes ("connection.blocked"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
    };
    amqp_table_entry_t props[] = {
        {amqp_cstring_bytes ("capabilities"),
         {AMQP_FIELD_KIND_TABLE, {.table = {(int) (sizeof (caps) / sizeof (caps[0])), caps}}}},
        {amqp_cstring_bytes ("product"),
         {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes ("arbiter-gateway")}}},
        {amqp_cstring_bytes ("version"),
         {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes (ARB_VERSION)}}},
        {amqp_cstring_bytes ("platform"),
         {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes ("C")}}},
        {amqp_cstring_bytes ("information"),
         {AMQP_FIELD_KIND_UTF8,
          {.bytes = amqp_cstring_bytes ("arbiter: every message is a durable broker task")}}},
    };
    amqp_connection_start_t start = {
        .version_major = 0,
        .version_minor = 9,
        .server_properties = {(int) (sizeof (props) / sizeof (props[0])), props},
        .mechanisms = amqp_cstring_bytes ("PLAIN AMQPLAIN"),
        .locales = amqp_cstring_bytes ("en_US"),
    };
    arb_amqp_conn_send (self, 0, AMQP_CONNECTION_START_METHOD, &start);
}

static bool
s_cap (amqp_table_t *client, const char *name)
{
    const amqp_field_value_t *caps = arb_amqp_table_get (client, "capabilities");
    if (!caps || caps->kind != AMQP_FIELD_KIND_TABLE)
        return false;
    const amqp_field_value_t *v = arb_amqp_table_get (&caps->value.table, name);
    return v && v->kind == AMQP_FIELD_KIND_BOOLEAN && v->value.boolean;
}

//  A login refused: 403 if the client takes it, else just the close.
static void
s_refuse_login (arb_amqp_conn_t *self, const char *mechanism)
{
    char text[256];
    snprintf (text, sizeof (text),
              "ACCESS_REFUSED - Login was refused using authentication mechanism %s. For details "
              "see the gateway's log.",
              mechanism);
    if (arb_loglimit_take (&self->server->failures, arb_reactor_now (self->server->reactor)))
        zsys_notice ("amqp: login refused conn=%" PRIu64 " peer=%s user=\"%.64s\"", self->number,
                     self->peer, self->user ? self->user : "");
    if (self->failure_close)
        arb_amqp_conn_fail (self, AMQP_ACCESS_REFUSED, text, 0);
    else
        arb_amqp_conn_close (self);
}

static void
s_on_start_ok (arb_amqp_conn_t *self, amqp_connection_start_ok_t *ok)
{
    self->cancel_notify = s_cap (&ok->client_properties, "consumer_cancel_notify");
    self->failure_close = s_cap (&ok->client_properties, "authentication_failure_close");
    self->blocked_notify = s_cap (&ok->client_properties, "connection.blocked");
    char *mechanism = arb_amqp_frame_str (ok->mechanism);
    char *user = NULL, *password = NULL;
    const uint8_t *resp = (const uint8_t *) ok->response.bytes;
    size_t len = ok->response.len;
    if (streq (mechanism, "PLAIN")) {
        //  authzid NUL user NUL password
        const uint8_t *first = len ? (const uint8_t *) memchr (resp, 0, len) : NULL;
        const uint8_t *second =
            first ? (const uint8_t *) memchr (first + 1, 0, len - (size_t) (first + 1 - resp))
                  : NULL;
        if (second) {
            user = strndup ((const char *) first + 1, (size_t) (second - first - 1));
            password = strndup ((const char *) second + 1, len - (size_t) (second + 1 - resp));
        }
    }
    else if (streq (mechanism, "AMQPLAIN")) {
        amqp_table_t table;
        if (arb_amqp_frame_table (resp, len, &self->pool, &table) == 0) {
            const amqp_field_value_t *login = arb_amqp_table_get (&table, "LOGIN");
            const amqp_field_value_t *pass = arb_amqp_table_get (&table, "PASSWORD");
            if (login && pass && login->kind == AMQP_FIELD_KIND_UTF8
                && pass->kind == AMQP_FIELD_KIND_UTF8) {
                user = arb_amqp_frame_str (login->value.bytes);
                password = arb_amqp_frame_str (pass->value.bytes);
            }
        }
    }
    else {
        //  the spec: a mechanism not offered closes the socket
        zsys_notice ("amqp: unknown mechanism conn=%" PRIu64 " mechanism=\"%.32s\"", self->number,
                     mechanism);
        free (mechanism);
        arb_amqp_conn_close (self);
        return;
    }
    self->user = user ? user : strdup ("");
    if (!user || arb_amqp_login (self->server, self, user, password) != 0)
        s_refuse_login (self, mechanism);
    else {
        amqp_connection_tune_t tune = {
            .channel_max = self->server->config.channel_max,
            .frame_max = self->server->config.frame_max,
            .heartbeat = self->server->config.heartbeat,
        };
        arb_amqp_conn_send (self, 0, AMQP_CONNECTION_TUNE_METHOD, &tune);
        self->state = ARB_AMQP_S_TUNE_OK;
    }
    free (password);
    free (mechanism);
}

static void
s_on_tune_ok (arb_amqp_conn_t *self, amqp_connection_tune_ok_t *ok)
{
    const arb_amqp_config_t *config = &self->server->config;
    //  lenient, as the notes advise: clamp to what was offered
    self->channel_max = ok->channel_max && ok->channel_max < config->channel_max
                            ? ok->channel_max
                            : config->channel_max;
    self->frame_max =
        ok->frame_max && ok->frame_max < config->frame_max ? ok->frame_max : config->frame_max;
    if (self->frame_max < ARB_AMQP_FRAME_MIN)
        self->frame_max = ARB_AMQP_FRAME_MIN;
    self->heartbeat = ok->heartbeat;
    self->channels =
        (arb_amqp_channel_t **) zmalloc ((self->channel_max + 1u) * sizeof (arb_amqp_channel_t *));
    arb_stream_set_input_max (self->stream, self->frame_max + ARB_AMQP_FRAME_FUDGE);
    self->state = ARB_AMQP_S_OPEN;
}

static void
s_open_ok (arb_amqp_conn_t *self)
{
    amqp_connection_open_ok_t ok = {.known_hosts = amqp_empty_bytes};
    arb_amqp_conn_send (self, 0, AMQP_CONNECTION_OPEN_OK_METHOD, &ok);
    self->state = ARB_AMQP_S_RUNNING;
    arb_reactor_disarm (self->server->reactor, &self->timer);
    if (self->heartbeat)
        arb_reactor_arm (self->server->reactor, &self->timer, self->heartbeat * S_TICK_MS,
                         s_on_timer, self);
    zsys_debug ("amqp: open conn=%" PRIu64 " peer=%s user=%s vhost=%s", self->number, self->peer,
                self->user, arb_amqp_vhost_name (self->vhost));
}

//  --amqp-max-connections open already: 530, in RabbitMQ's words for its
//  connection_max (checked at connection.open there too, before the
//  vhost). pika raises it (ProbableAccessDeniedError, with the code and
//  text) and amqp-tools print it ("server connection error 530, message:
//  NOT_ALLOWED - ..."); refused earlier in the handshake, both would see
//  only the socket close, or a method they did not wait for. Logged at
//  most ARB_AMQP_REFUSALS_LOGGED times a second: the clients decide how
//  often.
static void
s_refuse_over (arb_amqp_conn_t *self)
{
    arb_amqp_t *server = self->server;
    char text[128];
    snprintf (text, sizeof (text),
              "NOT_ALLOWED - connection refused: node connection limit (%zu) is reached",
              server->config.max_connections);
    if (arb_loglimit_take (&server->refusals, arb_reactor_now (server->reactor)))
        zsys_warning ("amqp: connection refused: %zu connections open (amqp-max-connections) "
                      "conn=%" PRIu64 " peer=%s user=\"%.64s\"",
                      server->config.max_connections, self->number, self->peer,
                      self->user ? self->user : "");
    s_fail (self, AMQP_NOT_ALLOWED, text, AMQP_CONNECTION_OPEN_METHOD);
}

static void
s_on_open (arb_amqp_conn_t *self, amqp_connection_open_t *open)
{
    if (arb_amqp_is_full (self->server)) {
        s_refuse_over (self);
        return;
    }
    char *name = arb_amqp_frame_str (open->virtual_host);
    self->vhost = arb_amqp_model_vhost (self->server->model, name);
    if (!self->vhost || !arb_amqp_user_may (self->server, self->user, name)) {
        char text[400];
        //  as RabbitMQ words them
        if (self->vhost)
            snprintf (text, sizeof (text),
                      "NOT_ALLOWED - access to vhost '%.200s' refused for user '%.100s'", name,
                      self->user ? self->user : "");
        else
            snprintf (text, sizeof (text), "NOT_ALLOWED - vhost %.200s not found", name);
        free (name);
        arb_amqp_conn_fail (self, AMQP_NOT_ALLOWED, text, AMQP_CONNECTION_OPEN_METHOD);
        return;
    }
    free (name);
    arb_amqp_admit (self->server, self);
    if (self->server->loaded)
        s_open_ok (self);
    else {
        self->state = ARB_AMQP_S_OPENING;
        if (self->server->standby)
            arb_amqp_conn_standby (self);
        else  //  said, since the client sees only a wait (pika: "probable access denied")
            zsys_info ("amqp: connection.open waits for the broker session conn=%" PRIu64
                       " peer=%s",
                       self->number, self->peer);
    }
}

void
arb_amqp_conn_standby (arb_amqp_conn_t *self)
{
    if (self->state != ARB_AMQP_S_OPENING)
        return;
    char text[400];
    snprintf (text, sizeof (text),
              "NOT_ALLOWED - this arbiter-gateway stands by: another serves AMQP for this broker "
              "(%.300s)",
              self->server->holder);
    arb_amqp_conn_fail (self, AMQP_NOT_ALLOWED, text, AMQP_CONNECTION_OPEN_METHOD);
    arb_stream_hold (self->stream, false);
}

//  Tells a client that takes it that its publishes are held
//  (connection.blocked, as RabbitMQ's alarms do), once until unblocked.
static void
s_tell_blocked (arb_amqp_conn_t *self, const char *reason)
{
    if (self->blocked_notify && !self->blocked_sent && self->state == ARB_AMQP_S_RUNNING) {
        amqp_connection_blocked_t blocked = {.reason = amqp_cstring_bytes (reason)};
        arb_amqp_conn_send (self, 0, AMQP_CONNECTION_BLOCKED_METHOD, &blocked);
        self->blocked_sent = true;
    }
}

void
arb_amqp_conn_unfence (arb_amqp_conn_t *self)
{
    if (!self->fenced)
        return;
    self->fenced = false;
    if (self->blocked_sent && !self->flow_held)
        arb_amqp_conn_unblock (self);  //  the Blocked the fence said
    arb_amqp_conn_read_on (self);
}

//  Whether frame is a basic.publish (class 60, method 40: the first four
//  bytes of a method frame's payload).
static bool
s_is_publish (const arb_amqp_frame_t *frame)
{
    static const uint8_t publish[4] = {0, 60, 0, 40};
    return frame->type == AMQP_FRAME_METHOD && frame->size >= 4
           && memcmp (frame->payload, publish, 4) == 0;
}

//  The link to the broker is full: the connection reads nothing more from
//  its basic.publish on (TCP pushes back on the client), and a client
//  that takes it is told connection.blocked, as RabbitMQ does.
static void
s_flow_hold (arb_amqp_conn_t *self)
{
    if (!self->flow_held)
        zsys_debug ("amqp: publisher held, the link to the broker is full conn=%" PRIu64,
                    self->number);
    self->flow_held = true;
    s_tell_blocked (self, "the broker is not taking messages now");
}

void
arb_amqp_conn_unblock (arb_amqp_conn_t *self)
{
    if (self->dead)
        return;
    if (self->blocked_sent && self->state == ARB_AMQP_S_RUNNING) {
        amqp_connection_unblocked_t unblocked = {0};
        arb_amqp_conn_send (self, 0, AMQP_CONNECTION_UNBLOCKED_METHOD, &unblocked);
    }
    self->blocked_sent = false;
    if (!self->flow_held)
        return;
    self->flow_held = false;
    arb_amqp_conn_read_on (self);
}

void
arb_amqp_conn_loaded (arb_amqp_conn_t *self)
{
    if (self->state == ARB_AMQP_S_OPENING) {
        s_open_ok (self);
        arb_amqp_conn_read_on (self);
    }
}

//  update-secret renews the secret of a login that is already in: with a
//  password user there is no token to renew, and as RabbitMQ's own user
//  database (whose backend keeps the user as it is) the gateway answers
//  Update-Secret-Ok and changes nothing. The user stays the one that
//  logged in, with its vhosts.
static void
s_on_update_secret (arb_amqp_conn_t *self, arb_amqp_update_secret_t *update)
{
    //  the reason is the peer's text
    char reason[ARB_AMQP_QUOTE_MAX + 1];
    arb_amqp_frame_quote (reason, update->reason);
    zsys_info ("amqp: update-secret answered, nothing to renew conn=%" PRIu64
               " user=%s reason=\"%s\"",
               self->number, self->user ? self->user : "", reason);
    amqp_connection_close_ok_t ok = {0};  //  no arguments, as Update-Secret-Ok
    arb_amqp_conn_send (self, 0, ARB_AMQP_UPDATE_SECRET_OK_METHOD, &ok);
}

//  ---------------------------------------------------------------------
//  Frames

//  A method on channel 0. Returns -1 if the connection ended.
static int
s_connection_method (arb_amqp_conn_t *self, amqp_method_number_t id, void *method)
{
    arb_amqp_state_t state = self->state;
    if (state == ARB_AMQP_S_CLOSING) {
        if (id == AMQP_CONNECTION_CLOSE_OK_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
            if (id == AMQP_CONNECTION_CLOSE_METHOD)
                arb_amqp_conn_send (self, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, method);
            self->state = ARB_AMQP_S_CLOSED;
            arb_stream_close_after (self->stream);
        }
        return 0;  //  anything else is dropped while closing
    }
    amqp_method_number_t expected = state == ARB_AMQP_S_START_OK  ? AMQP_CONNECTION_START_OK_METHOD
                                    : state == ARB_AMQP_S_TUNE_OK ? AMQP_CONNECTION_TUNE_OK_METHOD
                                    : state == ARB_AMQP_S_OPEN    ? AMQP_CONNECTION_OPEN_METHOD
                                                                  : 0;
    if (expected && id != expected) {
        char text[200];
        snprintf (text, sizeof (text), "COMMAND_INVALID - expected %s, got %s",
                  arb_amqp_frame_method_name (expected).text, arb_amqp_frame_method_name (id).text);
        arb_amqp_conn_fail (self, AMQP_COMMAND_INVALID, text, id);
        return -1;
    }
    //  the handshake is done once: taken again, a tune-ok would orphan the
    //  channels with their consumers and unacked deliveries, a start-ok
    //  log in again and an open switch the vhost (RabbitMQ's words)
    if (!expected
        && (id == AMQP_CONNECTION_START_OK_METHOD || id == AMQP_CONNECTION_TUNE_OK_METHOD
            || id == AMQP_CONNECTION_OPEN_METHOD)) {
        arb_amqp_conn_fail (self, AMQP_CHANNEL_ERROR,
                            "CHANNEL_ERROR - unexpected method in connection state running", id);
        return -1;
    }
    switch (id) {
        case AMQP_CONNECTION_START_OK_METHOD:
            s_on_start_ok (self, (amqp_connection_start_ok_t *) method);
            break;
        case AMQP_CONNECTION_TUNE_OK_METHOD:
            s_on_tune_ok (self, (amqp_connection_tune_ok_t *) method);
            break;
        case AMQP_CONNECTION_OPEN_METHOD:
            s_on_open (self, (amqp_connection_open_t *) method);
            break;
        case AMQP_CONNECTION_CLOSE_METHOD: {
            self->state = ARB_AMQP_S_CLOSED;
            bool consumed = false;
            for (size_t i = 0; self->channels && i <= self->channel_max; i++) {
                consumed = consumed || arb_amqp_channel_has_consumers (self->channels[i]);
                arb_amqp_channel_destroy (&self->channels[i]);
            }
            arb_amqp_conn_settle (self, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, NULL, consumed);
            break;
        }
        case ARB_AMQP_UPDATE_SECRET_METHOD:
            s_on_update_secret (self, (arb_amqp_update_secret_t *) method);
            break;
        case AMQP_CONNECTION_CLOSE_OK_METHOD:
            //  a Close-Ok we did not ask for
            arb_amqp_conn_fail (self, AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - unexpected close-ok",
                                id);
            return -1;
        default: {
            char text[200];
            //  RabbitMQ's words: a connection method it has not, or a
            //  channel's method on channel 0
            bool connection = id >> 16 == 10;
            snprintf (text, sizeof (text), "%s - %s on channel 0",
                      connection ? "NOT_IMPLEMENTED" : "CHANNEL_ERROR",
                      arb_amqp_frame_method_name (id).text);
            arb_amqp_conn_fail (self, connection ? AMQP_NOT_IMPLEMENTED : AMQP_CHANNEL_ERROR, text,
                                id);
            return -1;
        }
    }
    return self->dead || self->state == ARB_AMQP_S_CLOSING ? -1 : 0;
}

//  A frame on a channel other than 0.
static int
s_channel_frame (arb_amqp_conn_t *self, const arb_amqp_frame_t *frame)
{
    if (self->state != ARB_AMQP_S_RUNNING) {
        if (self->state != ARB_AMQP_S_CLOSING && self->state != ARB_AMQP_S_CLOSED)
            arb_amqp_conn_fail (self, AMQP_UNEXPECTED_FRAME,
                                "UNEXPECTED_FRAME - a channel frame before connection.open-ok", 0);
        return self->state == ARB_AMQP_S_CLOSED ? 0 : -1;
    }
    if (frame->channel > self->channel_max) {
        char text[200];
        snprintf (text, sizeof (text), "NOT_ALLOWED - channel %u is over the channel_max %u",
                  frame->channel, self->channel_max);
        arb_amqp_conn_fail (self, AMQP_NOT_ALLOWED, text, 0);
        return -1;
    }
    arb_amqp_channel_t *channel = self->channels[frame->channel];
    if (!channel) {
        amqp_method_number_t id = 0;
        void *method = NULL;
        char why[256];
        if (frame->type != AMQP_FRAME_METHOD) {
            arb_amqp_conn_fail (self, AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - expected 'channel.open'",
                                0);
            return -1;
        }
        int code = arb_amqp_frame_method (frame, &self->pool, &id, &method, why, sizeof (why));
        if (code) {
            arb_amqp_conn_fail (self, code, why, id);
            return -1;
        }
        if (id != AMQP_CHANNEL_OPEN_METHOD) {
            arb_amqp_conn_fail (self, AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - expected 'channel.open'",
                                id);
            return -1;
        }
        self->channels[frame->channel] = arb_amqp_channel_new (self, frame->channel);
        self->open_channels++;
        amqp_channel_open_ok_t ok = {.channel_id = amqp_empty_bytes};
        arb_amqp_conn_send (self, frame->channel, AMQP_CHANNEL_OPEN_OK_METHOD, &ok);
        return 0;
    }
    return arb_amqp_channel_frame (channel, frame);
}

//  Handles one frame. Returns -1 if the connection ends or fails.
static int
s_frame (arb_amqp_conn_t *self, const arb_amqp_frame_t *frame)
{
    if (frame->type == AMQP_FRAME_HEARTBEAT)
        return 0;
    if (frame->channel != 0)
        return s_channel_frame (self, frame);
    if (frame->type != AMQP_FRAME_METHOD) {
        if (self->state != ARB_AMQP_S_CLOSING)
            arb_amqp_conn_fail (self, AMQP_UNEXPECTED_FRAME,
                                "UNEXPECTED_FRAME - content frame on channel 0", 0);
        return -1;
    }
    amqp_method_number_t id = 0;
    void *method = NULL;
    char why[256];
    int code = arb_amqp_frame_method (frame, &self->pool, &id, &method, why, sizeof (why));
    if (code) {
        if (self->state == ARB_AMQP_S_CLOSING)
            return 0;
        arb_amqp_conn_fail (self, code, why, id);
        return -1;
    }
    return s_connection_method (self, id, method);
}

//  Takes the frames that came in, while it may.
static void
s_on_input (void *arg, arb_stream_t *stream)
{
    arb_amqp_conn_t *self = (arb_amqp_conn_t *) arg;
    self->depth++;
    size_t size;
    const uint8_t *data = arb_stream_input (stream, &size);
    if (self->state == ARB_AMQP_S_HEADER) {
        if (size < ARB_AMQP_HEADER_SIZE) {
            self->depth--;
            return;
        }
        //  (nothing can close it before this point)
        if (!arb_amqp_frame_is_protocol_header (data)) {
            //  the spec: answer with the header we speak, then close
            arb_stream_write (stream, arb_amqp_protocol_header, ARB_AMQP_HEADER_SIZE);
            self->state = ARB_AMQP_S_CLOSED;
            arb_stream_close_after (stream);
            self->depth--;
            return;
        }
        arb_stream_consume (stream, ARB_AMQP_HEADER_SIZE);
        s_send_start (self);
        self->state = ARB_AMQP_S_START_OK;
    }
    //  looked at again: the link may have room by now
    self->flow_held = false;
    while (!self->dead && !self->waiting && self->state != ARB_AMQP_S_CLOSED
           && self->state != ARB_AMQP_S_OPENING && self->inflight < ARB_AMQP_INFLIGHT_MAX) {
        //  a gateway whose claim may have passed to another reads no
        //  method that could reach the broker until it is renewed
        if (self->state == ARB_AMQP_S_RUNNING && !arb_amqp_claim_fresh (self->server)) {
            self->fenced = true;
            //  what it sends waits, unread: a client that takes it is told
            s_tell_blocked (self, "the broker is away: the gateway reads nothing until it is "
                                  "back");
            break;
        }
        data = arb_stream_input (stream, &size);
        arb_amqp_frame_t frame;
        size_t used = 0;
        int code = 0;
        char why[256];
        uint32_t limit = self->channels ? self->frame_max : ARB_AMQP_FRAME_MIN;
        arb_amqp_frame_rc_t rc =
            arb_amqp_frame_read (data, size, limit, &frame, &used, &code, why, sizeof (why));
        if (rc == ARB_AMQP_FRAME_MORE)
            break;
        if (rc == ARB_AMQP_FRAME_ERROR) {
            arb_amqp_conn_fail (self, code, why, 0);
            //  what follows a broken frame cannot be read
            arb_stream_consume (stream, size);
            break;
        }
        //  a publish waits, in the socket, for the link to have room
        if (s_is_publish (&frame) && arb_gateway_is_full (self->server->gateway)) {
            s_flow_hold (self);
            break;
        }
        recycle_amqp_pool (&self->pool);
        s_frame (self, &frame);
        if (!self->dead)
            arb_stream_consume (stream, used);
    }
    if (!self->dead && !s_may_read (self))
        arb_stream_hold (stream, true);
    if (--self->depth == 0 && self->dead)
        s_free (self);
}

static void
s_on_drained (void *arg, arb_stream_t *stream)
{
    (void) stream;
    arb_amqp_conn_drained ((arb_amqp_conn_t *) arg);
}

void
arb_amqp_conn_drained (arb_amqp_conn_t *self)
{
    if (!self->channels)
        return;
    for (size_t i = 1; i <= self->channel_max; i++)
        if (self->channels[i])
            arb_amqp_channel_drained (self->channels[i]);
}

//  ---------------------------------------------------------------------
//  Life

static void
s_free (arb_amqp_conn_t *self)
{
    empty_amqp_pool (&self->pool);
    free (self->pending);
    free (self->channels);
    free (self->user);
    free (self->settle_tag);
    zlistx_destroy (&self->held_cancels);
    free (self);
}

static void
s_on_closed (void *arg, arb_stream_t *stream)
{
    (void) stream;
    arb_amqp_conn_t *self = (arb_amqp_conn_t *) arg;
    self->dead = true;
    arb_reactor_disarm (self->server->reactor, &self->timer);
    arb_reactor_disarm (self->server->reactor, &self->doubt_timer);
    if (self->channels)
        for (size_t i = 0; i <= self->channel_max; i++)
            arb_amqp_channel_destroy (&self->channels[i]);
    for (size_t i = 0; i < self->npending; i++)
        arb_gateway_forget (self->server->gateway, self->pending[i]);
    self->npending = 0;
    arb_amqp_admin_forget (self);
    zsys_debug ("amqp: closed conn=%" PRIu64 " peer=%s", self->number, self->peer);
    arb_amqp_conn_gone (self->server, self);
    self->stream = NULL;
    //  an input handler of it on the stack frees it when it leaves
    if (self->depth == 0)
        s_free (self);
}

void
arb_amqp_conn_close (arb_amqp_conn_t *self)
{
    if (self->stream)
        arb_stream_close (self->stream);
}

static void
s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_amqp_conn_t *self = (arb_amqp_conn_t *) arg;
    if (self->state != ARB_AMQP_S_RUNNING || !self->heartbeat) {
        //  the handshake or a close took too long
        zsys_debug ("amqp: timed out conn=%" PRIu64 " state=%d", self->number, self->state);
        arb_amqp_conn_close (self);
        return;
    }
    uint64_t read = arb_stream_bytes_read (self->stream);
    uint64_t written = arb_stream_bytes_written (self->stream) + arb_stream_pending (self->stream);
    //  a connection held at a publish reads nothing: its client is not
    //  silent (RabbitMQ, too, stops watching a blocked one's heartbeats)
    self->silent_ticks = read == self->read_mark && !self->flow_held ? self->silent_ticks + 1 : 0;
    self->read_mark = read;
    if (self->silent_ticks >= S_SILENT_TICKS) {
        zsys_info ("amqp: missed heartbeats conn=%" PRIu64 " peer=%s", self->number, self->peer);
        arb_amqp_conn_close (self);
        return;
    }
    if (written == self->written_mark) {
        static const uint8_t heartbeat[8] = {AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0,
                                             AMQP_FRAME_END};
        arb_stream_write (self->stream, heartbeat, sizeof (heartbeat));
        written += sizeof (heartbeat);
    }
    self->written_mark = written;
    arb_reactor_arm (reactor, &self->timer, self->heartbeat * S_TICK_MS, s_on_timer, self);
}

void
arb_amqp_peer_name (int fd, char *peer, size_t size, bool *loopback)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof (addr);
    snprintf (peer, size, "?");
    *loopback = false;
    if (getpeername (fd, (struct sockaddr *) &addr, &len) == 0) {
        char host[INET6_ADDRSTRLEN] = "";
        int port = 0;
        if (addr.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *) &addr;
            inet_ntop (AF_INET, &in->sin_addr, host, sizeof (host));
            port = ntohs (in->sin_port);
            *loopback = (ntohl (in->sin_addr.s_addr) >> 24) == 127;
        }
        else if (addr.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &addr;
            inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof (host));
            port = ntohs (in6->sin6_port);
            *loopback = IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr);
        }
        snprintf (peer, size, "%s:%d", host, port);
    }
}

bool
arb_amqp_conn_is_gone (arb_amqp_conn_t *self)
{
    return self->dead || !self->stream || self->state == ARB_AMQP_S_CLOSING
           || self->state == ARB_AMQP_S_CLOSED || arb_stream_is_gone (self->stream);
}

arb_amqp_conn_t *
arb_amqp_conn_new (arb_amqp_t *server, int fd)
{
    arb_amqp_conn_t *self = (arb_amqp_conn_t *) zmalloc (sizeof (arb_amqp_conn_t));
    self->server = server;
    self->number = ++server->next_conn;
    self->frame_max = ARB_AMQP_FRAME_MIN;
    arb_amqp_peer_name (fd, self->peer, sizeof (self->peer), &self->loopback);
    init_amqp_pool (&self->pool, 4096);
    //  no ended: the peer's end of its side closes the connection at once
    //  (the frames before it are taken first), as RabbitMQ does
    arb_stream_handler_t handler = {s_on_input, s_on_drained, s_on_closed, NULL};
    self->stream = arb_stream_new (server->reactor, fd, ARB_AMQP_FRAME_MIN + ARB_AMQP_FRAME_FUDGE,
                                   &server->io, &handler, self);
    if (!self->stream) {
        empty_amqp_pool (&self->pool);
        free (self);
        return NULL;
    }
    arb_reactor_arm (server->reactor, &self->timer, ARB_AMQP_HANDSHAKE_MS, s_on_timer, self);
    return self;
}
