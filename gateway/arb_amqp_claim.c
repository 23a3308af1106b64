/*  arb_amqp_claim.c — one gateway serves AMQP for a broker: the claim.

    The AMQP server keeps its exchanges, queues and bindings in the
    broker's metadata store, and reads them once, when it starts; at that
    load it deletes the exclusive and non-durable queues it finds, whose
    connections (of an earlier gateway) are gone. A second gateway serving
    AMQP for the same broker would delete the first one's live queues with
    their messages, and route by records it read before the first changed
    them. So the AMQP server holds a claim before it loads: the META key
    "gw.claim.amqp", whose value names its holder and how long the claim
    lasts ("name=N host=H pid=P until=MS", MS in Unix ms).

    - No claim, or one that has run out, or one whose holder is a process
      of this host that is gone (a gateway killed and started again): it
      is taken (META cas), and the model loads.
    - A live claim of another gateway: this one stands by. Its AMQP
      listener takes connections, and refuses their connection.open with
      530 NOT_ALLOWED, naming the holder; it tries again every second, and
      takes over once the holder's claim runs out (about 10 s after the
      holder stopped renewing it) or its process is gone.
    - The holder renews its claim every 2 s (cas on the value it wrote),
      and again as soon as its broker session is back after a restart of
      either. A renewal that finds another gateway's value there (this one
      was frozen, or cut off from the broker, for longer than the claim
      lasts, and a standby took over) stops the gateway: two servers must
      not serve from two models, and a supervisor starts it again, as a
      standby (arb_amqp_stepped_down).
    - A gateway that stops releases its claim (cas remove), so that a
      standby takes over at its next try.

    Standing by costs one META get a second; holding, one cas every 2 s.
    Runs on the gateway's one thread; see arb_amqp_priv.h.
*/

#include "arb_amqp_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>

#define S_KEY      "gw.claim.amqp"
#define S_LEASE_MS 10000  //  a claim not renewed for this long runs out
#define S_RENEW_MS 2000   //  the holder renews it this often
#define S_RETRY_MS 1000   //  a standby, or a failed request, tries again after this
#define S_FRESH_MS 7000   //  AMQP input is read while the last renewal is younger than this

static void s_request (arb_amqp_t *self, const char *op, const char *expect, bool remove);

//  Who holds a claim: its value up to its end ("name=N host=H pid=P").
static void
s_holder (const char *value, char *buf, size_t size)
{
    const char *until = strstr (value, " until=");
    snprintf (buf, size, "%.*s", until ? (int) (until - value) : (int) strlen (value), value);
}

//  This boot of this machine, and this pid namespace: a pid is checked
//  only by a gateway that shares both with the holder (a hostname alone
//  is shared by cloned machines and by containers).
static void
s_place (char *boot, size_t boot_size, char *ns, size_t ns_size)
{
    snprintf (boot, boot_size, "?");
    FILE *file = fopen ("/proc/sys/kernel/random/boot_id", "r");
    if (file) {
        if (fgets (boot, (int) boot_size, file))
            boot[strcspn (boot, "\n ")] = 0;
        fclose (file);
    }
    ssize_t n = readlink ("/proc/self/ns/pid", ns, ns_size - 1);
    ns[n > 0 ? n : 0] = 0;
    //  "pid:[4026531836]": the inode
    char *open = strchr (ns, '['), *close = strchr (ns, ']');
    if (open && close && close > open) {
        memmove (ns, open + 1, (size_t) (close - open - 1));
        ns[close - open - 1] = 0;
    }
    if (!*boot || !*ns || strpbrk (boot, " =") || strpbrk (ns, " ="))
        snprintf (ns, ns_size, "?");
}

//  Our value, with a fresh end.
static void
s_value (arb_amqp_t *self, char *buf, size_t size)
{
    char boot[64], ns[64];
    s_place (boot, sizeof (boot), ns, sizeof (ns));
    snprintf (buf, size, "name=%s host=%s boot=%s ns=%s pid=%d until=%" PRIu64,
              arb_link_name (self->link), arb_link_host (self->link), boot, ns, (int) getpid (),
              (uint64_t) zclock_time () + S_LEASE_MS);
}

//  Whether a claim is ours, whatever its end: one we wrote whose answer
//  was lost (the session went down before it came) counts too.
static bool
s_mine (arb_amqp_t *self, const char *value)
{
    char ours[ARB_AMQP_CLAIM_MAX], mine[ARB_AMQP_CLAIM_MAX], theirs[ARB_AMQP_CLAIM_MAX];
    s_value (self, ours, sizeof (ours));
    s_holder (ours, mine, sizeof (mine));
    s_holder (value, theirs, sizeof (theirs));
    return streq (mine, theirs);
}

//  A field of a claim's value ("key=" included in key), copied into out
//  (empty if it is not there).
static void
s_field (const char *value, const char *key, char *out, size_t size)
{
    out[0] = 0;
    for (const char *p = value; p && *p;) {
        const char *end = strchr (p, ' ');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len > strlen (key) && strncmp (p, key, strlen (key)) == 0) {
            len -= strlen (key);
            snprintf (out, size, "%.*s", (int) (len < size ? len : size - 1), p + strlen (key));
            return;
        }
        p = end ? end + 1 : NULL;
    }
}

//  Whether a process of this host is gone (a zombie, killed and not yet
//  reaped, is gone too).
static bool
s_gone (long pid)
{
    if (kill ((pid_t) pid, 0) < 0 && errno == ESRCH)
        return true;
    char path[64], stat[256];
    snprintf (path, sizeof (path), "/proc/%ld/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t n = fread (stat, 1, sizeof (stat) - 1, file);
    fclose (file);
    stat[n] = 0;
    const char *state = strrchr (stat, ')');  //  after the command's name
    return state && state[1] == ' ' && state[2] == 'Z';
}

//  Whether another gateway's claim still stands: it has not run out, and
//  its holder is not a process of this machine and pid namespace that is
//  gone.
static bool
s_live (const char *value)
{
    char until[32], boot[64], ns[64], pid[16], my_boot[64], my_ns[64];
    s_field (value, "until=", until, sizeof (until));
    s_field (value, "boot=", boot, sizeof (boot));
    s_field (value, "ns=", ns, sizeof (ns));
    s_field (value, "pid=", pid, sizeof (pid));
    s_place (my_boot, sizeof (my_boot), my_ns, sizeof (my_ns));
    char *end;
    uint64_t at = strtoull (until, &end, 10);
    if (!*until || *end || at <= (uint64_t) zclock_time ())
        return false;
    long holder = strtol (pid, &end, 10);
    bool here = streq (boot, my_boot) && streq (ns, my_ns) && !streq (my_ns, "?");
    if (here && *pid && !*end && holder > 0 && holder != (long) getpid () && s_gone (holder))
        return false;
    return true;
}

static void
s_on_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_claim ((arb_amqp_t *) arg);
}

static void
s_retry (arb_amqp_t *self, uint64_t ms)
{
    arb_reactor_arm (self->reactor, &self->claim_timer, ms, s_on_timer, self);
}

//  Another gateway holds the claim: connections waiting at open are
//  refused, as later ones will be, while this one stands by.
static void
s_stand_by (arb_amqp_t *self, const char *value)
{
    //  the holder is its name, host and pid: its end moves at each renewal
    char holder[sizeof (self->holder)];
    s_holder (value, holder, sizeof (holder));
    if (!self->standby || !streq (self->holder, holder))
        zsys_warning ("amqp: another arbiter-gateway serves AMQP for this broker; standing by "
                      "(holder: %s)",
                      holder);
    self->standby = true;
    snprintf (self->holder, sizeof (self->holder), "%s", holder);
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        arb_amqp_conn_standby (c);
    s_retry (self, S_RETRY_MS);
}

//  The claim is ours (taken or renewed): the model loads, if it has not,
//  and connections held for want of a fresh claim read again.
static void
s_held (arb_amqp_t *self, const char *value)
{
    if (!self->claim[0])
        zsys_info ("amqp: this gateway serves AMQP for this broker (%s)", value);
    snprintf (self->claim, sizeof (self->claim), "%s", value);
    self->renewed_ms = self->asked_ms;
    self->standby = false;
    self->holder[0] = 0;
    s_retry (self, S_RENEW_MS);
    arb_amqp_load (self);
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        arb_amqp_conn_unfence (c);
}

//  A renewal found another gateway's value: this one stops.
static void
s_lost (arb_amqp_t *self, const char *holder)
{
    zsys_error ("amqp: another arbiter-gateway took over AMQP for this broker while this one "
                "could not renew its claim (holder: %s); stopping",
                holder);
    self->claim[0] = 0;
    self->stepped_down = true;
    arb_reactor_stop (self->reactor);
}

//  The broker's journal is full (507): the holder's renewal cannot be
//  written, and neither can another gateway's take-over, so the claim
//  stands as it is and the holder serves on (its publishes are nacked by
//  the broker's own 507, its consumers and gets go on), rather than stop
//  reading every AMQP client until the disk has room. Said once a spell.
static void
s_kept_while_full (arb_amqp_t *self)
{
    if (!self->full)
        zsys_warning ("amqp: the broker's journal is full: the AMQP claim cannot be renewed; "
                      "serving on, as no other gateway can take it meanwhile");
    self->full = true;
    self->renewed_ms = self->asked_ms;
    s_retry (self, S_RETRY_MS);
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        arb_amqp_conn_unfence (c);
}

//  Whether a take-over met a full journal less than a claim's lease ago:
//  the holder may have served on through it without renewing (its claim
//  looks run out), and is given that long to renew once there is room.
static bool
s_full_lately (arb_amqp_t *self)
{
    return self->full_seen_ms && (uint64_t) zclock_mono () - self->full_seen_ms < S_LEASE_MS;
}

static void
s_on_reply (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    arb_msg_t *reply = *reply_p;
    bool was_cas = self->claim_cas;
    self->claiming = false;
    self->claim_req = 0;
    if (self->stepped_down)
        return;
    bool full = arb_msg_type (reply) == ARB_MSG_ERROR
                && arb_msg_error (reply)->code == ARB_ERR_JOURNAL_FULL;
    if (full && was_cas && self->claim[0]) {
        s_kept_while_full (self);
        return;
    }
    if (full) {
        //  a take-over refused for a full journal: the holder serves on
        //  (s_kept_while_full), and renews first once there is room
        if (!self->full)
            zsys_warning ("amqp: the broker's journal is full: the AMQP claim cannot be taken "
                          "now; trying again");
        self->full = true;
        self->full_seen_ms = (uint64_t) zclock_mono ();
        s_retry (self, S_RETRY_MS);
        return;
    }
    self->full = false;
    if (arb_msg_type (reply) != ARB_MSG_META_REPLY) {
        zsys_warning ("amqp: the AMQP claim's request failed reason=\"%s\"",
                      arb_msg_type (reply) == ARB_MSG_ERROR ? arb_msg_error (reply)->reason : "?");
        s_retry (self, S_RETRY_MS);
        return;
    }
    arb_meta_reply_body_t *body = arb_msg_meta_reply (reply);
    if (body->matched) {
        s_held (self, self->wanted);
        return;
    }
    char current[ARB_AMQP_CLAIM_MAX] = "";
    bool fits = true;
    if (body->items.n) {
        arb_bin_t value = body->items.v[0].value;
        fits = value.size < sizeof (current) && !memchr (value.data, 0, value.size);
        snprintf (current, sizeof (current), "%.*s", (int) value.size, (const char *) value.data);
    }
    bool ours = body->items.n && fits && s_mine (self, current);
    if (ours)
        s_request (self, "cas", current, false);  //  ours: a write whose answer was lost
    else if (self->claim[0])
        //  we held it, and another took it since: our model may be stale
        s_lost (self, body->items.n ? current : "none: released by a later holder");
    else if (was_cas || !fits)
        s_retry (self, S_RETRY_MS);  //  another was quicker: look again in a while
    else if (!body->items.n)
        s_request (self, "cas", NULL, false);  //  nobody's: take it
    else if (!s_live (current) && !s_full_lately (self))
        s_request (self, "cas", current, false);  //  a gone holder's: take it
    else
        s_stand_by (self, current);
}

//  Sends a claim request: get, or cas (expect NULL: the key must be
//  absent) with a fresh value of ours, or its removal.
static void
s_request (arb_amqp_t *self, const char *op, const char *expect, bool remove)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_meta_body_t *body = arb_msg_meta (request);
    body->op = op;
    body->key = S_KEY;
    bool cas = streq (op, "cas");
    if (cas) {
        char value[ARB_AMQP_CLAIM_MAX];
        s_value (self, value, sizeof (value));
        body->value =
            (arb_bin_t){(const uint8_t *) arb_msg_strdup (request, value), strlen (value)};
        body->absent = expect == NULL;
        if (expect)
            body->expect =
                (arb_bin_t){(const uint8_t *) arb_msg_strdup (request, expect), strlen (expect)};
        body->remove = remove;
        if (!remove)
            snprintf (self->wanted, sizeof (self->wanted), "%s", value);
    }
    if (remove) {
        //  at stop: nothing waits for the answer
        arb_gateway_send (self->gateway, &request, NULL, NULL);
        return;
    }
    self->asked_ms = (uint64_t) zclock_mono ();
    self->claim_cas = cas;
    self->claim_req = arb_gateway_send (self->gateway, &request, s_on_reply, self);
    if (self->claim_req)
        self->claiming = true;
    else
        s_retry (self, S_RETRY_MS);
}

void
arb_amqp_claim (arb_amqp_t *self)
{
    if (self->stepped_down || !arb_gateway_is_up (self->gateway))
        return;
    if (self->claiming) {
        //  the session came back with a request out: its answer may never
        //  come (a new session does not fail the old one's requests)
        arb_gateway_forget (self->gateway, self->claim_req);
        self->claiming = false;
        self->claim_req = 0;
    }
    arb_reactor_disarm (self->reactor, &self->claim_timer);
    if (self->claim[0])
        s_request (self, "cas", self->claim, false);  //  a renewal
    else
        s_request (self, "get", NULL, false);
}

bool
arb_amqp_claim_fresh (arb_amqp_t *self)
{
    return self->claim[0] && (uint64_t) zclock_mono () - self->renewed_ms < S_FRESH_MS;
}

void
arb_amqp_claim_release (arb_amqp_t *self)
{
    arb_reactor_disarm (self->reactor, &self->claim_timer);
    if (arb_gateway_is_up (self->gateway)) {
        //  the value we hold, and the one a request still out may have
        //  written: the broker takes them in order, so one of them matches
        if (self->claim[0])
            s_request (self, "cas", self->claim, true);
        if (self->claiming && self->claim_cas && self->wanted[0])
            s_request (self, "cas", self->wanted, true);
    }
    self->claim[0] = 0;
}

bool
arb_amqp_stepped_down (arb_amqp_t *self)
{
    return self && self->stepped_down;
}
