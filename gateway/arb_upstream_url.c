/*  arb_upstream_url.c — an upstream RabbitMQ's URL; see arb_upstream_url.h.

    rabbitmq-c parses the URL (amqp_parse_url: user, password, host, port,
    vhost, and amqps:// with its port) but not a query, so the query is cut
    off first and read here. Its TLS socket trusts no CA until told:
    without a cacertfile the system's CAs are loaded into its OpenSSL
    context, as any TLS client does.

    The checks are OpenSSL's own, in the handshake (the chain, and the
    host name or address the URL names), not rabbitmq-c's after it (its
    own are turned off):
    rabbitmq-c 0.11 keeps a reference to the server's certificate when its
    own check fails, some 3 KB lost at each refused attempt, and a bridge
    tries again for ever. A failed check is recorded by the verify
    callback, so that the log says which (X509_verify_cert_error_string).

    A keyfile's password (password=, as RabbitMQ's Erlang client takes it)
    is a secret as the login password is: never in a log or a reason
    (the URL shown writes password=***), wiped when the URL is destroyed.
    The key is read here when the URL is read, with a password callback
    of ours, so that a wrong or missing password is found by
    --check-config and said the same way at each connection. OpenSSL is
    never left to its default callback without a password: that one
    prompts on the terminal, and a bridge's thread would wait there.
*/

#include "arb_upstream_url.h"
#include "arb_endpoint.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <ctype.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <czmq.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

//  A key's password, at most: OpenSSL hands its callbacks a buffer of
//  PEM_BUFSIZE (1024) bytes
#define S_PASSWORD_MAX      1023
#define S_PASSWORD_MAX_TEXT "1023"

struct _arb_upstream_url_t {
    char *text;                        //  owned: the URL before its query, parsed in place
    struct amqp_connection_info info;  //  points into text
    char *shown;                       //  owned
    bool verify;                       //  verify_peer
    char *cacertfile;                  //  owned, or NULL
    char *certfile;                    //  owned, or NULL
    char *keyfile;                     //  owned, or NULL
    char *password;                    //  owned, or NULL: keyfile's (secret: never logged)
    char refused[128];                 //  why the last handshake's check failed, or ""
};

void
arb_upstream_url_destroy (arb_upstream_url_t **self_p)
{
    assert (self_p);
    arb_upstream_url_t *self = *self_p;
    if (!self)
        return;
    free (self->text);
    free (self->shown);
    free (self->cacertfile);
    free (self->certfile);
    free (self->keyfile);
    if (self->password) {
        explicit_bzero (self->password, strlen (self->password));
        free (self->password);
    }
    free (self);
    *self_p = NULL;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char) tolower ((unsigned char) c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

//  Decodes %XX in place (a + stays itself: paths hold them). 0, or -1
//  for a bad escape or a NUL.
static int
s_unescape (char *text)
{
    char *to = text;
    for (const char *p = text; *p; p++) {
        if (*p == '%') {
            int high = s_hex (p[1]), low = high < 0 ? -1 : s_hex (p[2]);
            if (low < 0 || (high == 0 && low == 0))
                return -1;
            *to++ = (char) (high * 16 + low);
            p += 2;
        }
        else
            *to++ = *p;
    }
    *to = 0;
    return 0;
}

//  The parameters, each taken once.
static const char *s_params[] = {"cacertfile", "certfile", "keyfile", "password", "verify"};
#define S_PARAMS (sizeof (s_params) / sizeof (s_params[0]))

//  The reason for a pair right after password= that is not a parameter,
//  or a bad one: it may be the password's tail (an & in it not written
//  %26), so nothing of it is quoted.
#define S_AFTER_PASSWORD                                                                          \
    "a URL parameter after password= is not one, or not a good one: write an & in a password as " \
    "%%26"

//  The reason for a pair that holds an @ and is not a parameter.
#define S_AFTER_QUERY "a URL parameter that is not one: write a ? in a user or password as %%3F"

//  Takes one key=value of the query; after_password: the pair before it
//  was password=, so that this one may be the password's tail and is
//  never quoted. seen: the parameters taken so far. 0, or -1 with why.
static int
s_param (arb_upstream_url_t *self,
         char *pair,
         bool after_password,
         bool seen[S_PARAMS],
         char *why,
         size_t size)
{
    char *value = strchr (pair, '=');
    //  the tail of a user or password with a ? in it (cut there as the
    //  URL's query) holds the host's @
    bool at = strchr (pair, '@') != NULL;
    if (!value) {
        if (at)
            snprintf (why, size, S_AFTER_QUERY);
        else if (after_password)
            snprintf (why, size, S_AFTER_PASSWORD);
        else
            snprintf (why, size, "URL parameter '%.64s' without a value", pair);
        return -1;
    }
    *value++ = 0;
    if (s_unescape (pair) || s_unescape (value)) {
        snprintf (why, size, "a bad %%-escape in the URL's parameters");
        return -1;
    }
    size_t known = 0;
    while (known < S_PARAMS && !streq (pair, s_params[known]))
        known++;
    if (known == S_PARAMS
        || (after_password && streq (pair, "verify") && !streq (value, "verify_peer")
            && !streq (value, "verify_none"))) {
        if (at && known == S_PARAMS)
            snprintf (why, size, S_AFTER_QUERY);
        else if (after_password)
            snprintf (why, size, S_AFTER_PASSWORD);
        else if (known == S_PARAMS)
            snprintf (why, size,
                      "unknown URL parameter '%.64s' (cacertfile, certfile, keyfile, password, "
                      "verify)",
                      pair);
        else
            snprintf (why, size, "verify: '%.64s' is neither verify_peer nor verify_none", value);
        return -1;
    }
    if (seen[known]) {
        //  the last one would win, silently: a mistake either way
        snprintf (why, size, "%s given twice", pair);
        return -1;
    }
    seen[known] = true;
    char **path = streq (pair, "cacertfile") ? &self->cacertfile
                  : streq (pair, "certfile") ? &self->certfile
                  : streq (pair, "keyfile")  ? &self->keyfile
                                             : NULL;
    if (streq (pair, "password")) {
        //  never quoted, in no reason: it is a secret
        if (!*value || strlen (value) > S_PASSWORD_MAX) {
            snprintf (why, size, "password: %s",
                      *value ? "over " S_PASSWORD_MAX_TEXT " bytes"
                             : "empty (a key that is not encrypted takes none)");
            return -1;
        }
        self->password = strdup (value);
        return 0;
    }
    if (path) {
        struct stat st;
        int error = !*value                ? 0
                    : access (value, R_OK) ? errno
                    : stat (value, &st)    ? errno
                    : S_ISDIR (st.st_mode) ? EISDIR
                                           : 0;
        if (!*value)
            snprintf (why, size, "%s: empty", pair);
        else if (error && after_password)
            //  the path may be the password's tail
            snprintf (why, size,
                      "%s: cannot read the file given (%s); if it is part of the password= "
                      "before it, write the password's & as %%26",
                      pair, strerror (error));
        else if (error == EISDIR)
            snprintf (why, size, "%s: %.200s is a directory, not a file", pair, value);
        else if (error)
            snprintf (why, size, "%s: cannot read %.200s: %s", pair, value, strerror (error));
        if (!*value || error)
            return -1;
        *path = strdup (value);
        return 0;
    }
    self->verify = streq (value, "verify_peer");
    if (!self->verify && !streq (value, "verify_none")) {
        snprintf (why, size, "verify: '%.64s' is neither verify_peer nor verify_none", value);
        return -1;
    }
    return 0;
}

//  Reads the query's parameters (query: its copy, cut in place). 0 or -1.
static int
s_query (arb_upstream_url_t *self, char *query, char *why, size_t size)
{
    bool seen[S_PARAMS] = {false}, after_password = false;
    for (char *pair = query, *next; pair && *pair; pair = next) {
        next = strchr (pair, '&');
        if (next)
            *next++ = 0;
        if (!*pair)
            continue;
        if (s_param (self, pair, after_password, seen, why, size))
            return -1;
        after_password = streq (pair, "password");  //  cut at its =, decoded
    }
    if (!self->info.ssl
        && (self->cacertfile || self->certfile || self->keyfile || self->password
            || !self->verify)) {
        snprintf (why, size, "TLS parameters need an amqps:// URL");
        return -1;
    }
    if (!self->certfile != !self->keyfile) {
        snprintf (why, size, "certfile and keyfile go together");
        return -1;
    }
    if (self->password && !self->keyfile) {
        snprintf (why, size, "password is the keyfile's: it needs keyfile");
        return -1;
    }
    return 0;
}

//  What the key's reading asked of its password callback.
typedef struct {
    const char *password;  //  borrowed, or NULL: none given
    bool asked;            //  the key is encrypted
} s_key_read_t;

//  OpenSSL's password callback for the key: the password given, or none
//  (-1: no prompt on a terminal, the read fails).
static int
s_key_password (char *buf, int size, int rwflag, void *arg)
{
    (void) rwflag;
    s_key_read_t *asked = (s_key_read_t *) arg;
    asked->asked = true;
    size_t len = asked->password ? strlen (asked->password) : 0;
    if (!asked->password || len > (size_t) size)
        return -1;
    memcpy (buf, asked->password, len);
    return (int) len;
}

//  Reads the keyfile with the password given: the key (the caller owns
//  it), or NULL with why: not a key, encrypted without a password, or
//  not this password. Clears the thread's OpenSSL errors.
static EVP_PKEY *
s_key_read (arb_upstream_url_t *self, char *why, size_t size)
{
    FILE *file = fopen (self->keyfile, "r");
    if (!file) {
        snprintf (why, size, "keyfile: cannot read %.200s: %s", self->keyfile, strerror (errno));
        return NULL;
    }
    s_key_read_t asked = {self->password, false};
    EVP_PKEY *key = PEM_read_PrivateKey (file, NULL, s_key_password, &asked);
    fclose (file);
    ERR_clear_error ();
    if (key)
        return key;
    if (asked.asked && !self->password)
        snprintf (why, size, "keyfile: %.200s is encrypted: give its password (password=...)",
                  self->keyfile);
    else if (asked.asked)
        snprintf (why, size,
                  "keyfile: cannot decrypt %.200s with the password given (wrong password)",
                  self->keyfile);
    else
        snprintf (why, size, "keyfile: no PEM private key in %.200s", self->keyfile);
    return NULL;
}

//  s_key_read, the key dropped. 0, or -1 with why.
static int
s_key_check (arb_upstream_url_t *self, char *why, size_t size)
{
    EVP_PKEY *key = s_key_read (self, why, size);
    EVP_PKEY_free (key);
    return key ? 0 : -1;
}

//  OpenSSL's reason for the last error of the thread's queue, which it
//  then clears, into text.
static void
s_openssl_reason (char *text, size_t size)
{
    const char *reason = ERR_reason_error_string (ERR_peek_last_error ());
    snprintf (text, size, "%s", reason ? reason : "unknown error");
    ERR_clear_error ();
}

//  The files as a connection loads them, into a context of its own
//  thrown away after: the CAs (at least one certificate), the client's
//  certificate (at least one) and its key, which must be the
//  certificate's. Else every connection would fail, and --check-config
//  would not have said so. 0, or -1 with why.
static int
s_files_check (arb_upstream_url_t *self, char *why, size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
    EVP_PKEY *key = NULL;
    char reason[128];
    int rc = -1;
    if (!ctx) {
        snprintf (why, size, "cannot make a TLS context");
        goto cleanup;
    }
    if (self->cacertfile && SSL_CTX_load_verify_locations (ctx, self->cacertfile, NULL) != 1) {
        snprintf (why, size, "cacertfile: no certificate in %.200s", self->cacertfile);
        goto cleanup;
    }
    if (self->certfile && SSL_CTX_use_certificate_chain_file (ctx, self->certfile) != 1) {
        snprintf (why, size, "certfile: no certificate in %.200s", self->certfile);
        goto cleanup;
    }
    if (self->keyfile) {
        //  read with our password callback (s_key_read), never OpenSSL's
        //  prompt
        key = s_key_read (self, why, size);
        if (!key)
            goto cleanup;
        if (SSL_CTX_use_PrivateKey (ctx, key) != 1 || SSL_CTX_check_private_key (ctx) != 1) {
            s_openssl_reason (reason, sizeof (reason));
            snprintf (why, size,
                      "certfile and keyfile do not match: %.200s is not the key of %.200s (%s)",
                      self->keyfile, self->certfile, reason);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    ERR_clear_error ();
    EVP_PKEY_free (key);
    SSL_CTX_free (ctx);
    return rc;
}

//  The query as given (paths and checks), but the value of password,
//  written ***. The caller owns it.
static char *
s_shown_query (const char *query)
{
    //  a pair becomes 2 bytes longer at most ("password=X" is 10)
    char *shown = (char *) zmalloc (3 * strlen (query) + 4);
    char *to = shown;
    for (const char *pair = query;;) {
        const char *end = strchr (pair, '&');
        size_t len = end ? (size_t) (end - pair) : strlen (pair);
        const char *equals = (const char *) memchr (pair, '=', len);
        char *key = equals ? strndup (pair, (size_t) (equals - pair)) : NULL;
        if (key && s_unescape (key) == 0 && streq (key, "password"))
            to = stpcpy (to, "password=***");
        else
            to = (char *) memcpy (to, pair, len) + len;
        free (key);
        if (!end)
            break;
        *to++ = '&';
        pair = end + 1;
    }
    *to = 0;
    return shown;
}

//  text %-encoded as a URL writes it (all but letters, digits and
//  -._~). The caller owns it.
static char *
s_encoded (const char *text)
{
    char *encoded = (char *) zmalloc (3 * strlen (text) + 1);
    size_t len = 0;
    for (const char *p = text; *p; p++) {
        if (isalnum ((unsigned char) *p) || strchr ("-._~", *p))
            encoded[len++] = *p;
        else
            len += (size_t) sprintf (encoded + len, "%%%02x", (unsigned char) *p);
    }
    return encoded;
}

//  The URL for logs, a URL itself: no password (nor the key's); the user
//  and vhost %-encoded ("/" is %2f, an @ %40), an IPv6 address in
//  brackets; the query as given.
static char *
s_shown (arb_upstream_url_t *self, const char *query)
{
    char *user = s_encoded (self->info.user);
    char *vhost = s_encoded (self->info.vhost);
    bool ipv6 = strchr (self->info.host, ':') != NULL;
    char *shown_query = query ? s_shown_query (query) : NULL;
    char *shown = zsys_sprintf ("%s://%s@%s%s%s:%d/%s%s%s", self->info.ssl ? "amqps" : "amqp", user,
                                ipv6 ? "[" : "", self->info.host, ipv6 ? "]" : "", self->info.port,
                                vhost, query ? "?" : "", query ? shown_query : "");
    free (shown_query);
    free (user);
    free (vhost);
    return shown;
}

//  The port of url as written (amqp_parse_url cuts its copy up), checked as every
//  program's ports are (arb_endpoint.h): rabbitmq-c takes 0, which no
//  server listens on. No port written: the default. 0, or -1 with why.
static int
s_port_check (const char *url, char *why, size_t size)
{
    const char *authority = strstr (url, "://") + 3;
    size_t len = strcspn (authority, "/?");
    //  the host follows the user's part, if any (its last '@')
    const char *host = authority;
    for (const char *p = authority; p < authority + len; p++)
        if (*p == '@')
            host = p + 1;
    const char *end = authority + len;
    const char *bracket = host[0] == '[' ? memchr (host, ']', (size_t) (end - host)) : NULL;
    const char *colon =
        memchr (bracket ? bracket : host, ':', (size_t) (end - (bracket ? bracket : host)));
    if (!colon)
        return 0;
    char port[16], reason[128];
    snprintf (port, sizeof (port), "%.*s", (int) (end - colon - 1), colon + 1);
    if (arb_endpoint_port_check (port, false, reason, sizeof (reason)) == 0)
        return 0;
    snprintf (why, size, "%s", reason);
    return -1;
}

arb_upstream_url_t *
arb_upstream_url_new (const char *text, char *why, size_t size)
{
    if (strncmp (text, "amqp://", 7) != 0 && strncmp (text, "amqps://", 8) != 0) {
        snprintf (why, size, "not an amqp:// or amqps:// URL");
        return NULL;
    }
    arb_upstream_url_t *self = (arb_upstream_url_t *) zmalloc (sizeof (arb_upstream_url_t));
    self->text = strdup (text);
    self->verify = true;
    char *mark = strchr (self->text, '?');
    char *query = mark ? strdup (mark + 1) : NULL;
    if (mark)
        *mark = 0;
    amqp_default_connection_info (&self->info);
    //  the port first: rabbitmq-c refuses one over 65535 as it refuses a
    //  malformed URL, without a word of why
    int rc = s_port_check (text, why, size);
    if (rc == 0 && amqp_parse_url (self->text, &self->info) != AMQP_STATUS_OK) {
        //  an '@' in a password is the usual cause, and rabbitmq-c says no more
        snprintf (why, size,
                  "malformed URL (expected amqp://user:password@host:port/vhost, or amqps://; "
                  "write a reserved character of the user or password percent-encoded: "
                  "@ as %%40, : as %%3A, / as %%2F)");
        rc = -1;
    }
    if (rc == 0 && query) {
        char *copy = strdup (query);
        rc = s_query (self, copy, why, size);
        free (copy);
    }
    //  the files are read now, so that --check-config finds a wrong
    //  password, or a file a connection would not take
    if (rc == 0 && self->info.ssl)
        rc = s_files_check (self, why, size);
    if (rc == 0)
        self->shown = s_shown (self, query);
    free (query);
    if (rc)
        arb_upstream_url_destroy (&self);
    return self;
}

const struct amqp_connection_info *
arb_upstream_url_info (arb_upstream_url_t *self)
{
    return &self->info;
}

const char *
arb_upstream_url_shown (arb_upstream_url_t *self)
{
    return self->shown;
}

bool
arb_upstream_url_tls (arb_upstream_url_t *self)
{
    return self->info.ssl;
}

//  OpenSSL's verify callback: records the first check that failed, in
//  the URL the context's app data names.
static int
s_verified (int ok, X509_STORE_CTX *store)
{
    SSL *ssl = (SSL *) X509_STORE_CTX_get_ex_data (store, SSL_get_ex_data_X509_STORE_CTX_idx ());
    arb_upstream_url_t *self =
        ssl ? (arb_upstream_url_t *) SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl)) : NULL;
    if (!ok && self && !*self->refused)
        snprintf (self->refused, sizeof (self->refused), "%s",
                  X509_verify_cert_error_string (X509_STORE_CTX_get_error (store)));
    return ok;
}

//  The checks of the server's certificate, made by OpenSSL in the
//  handshake (above). 0, or -1 with why.
static int
s_checks (arb_upstream_url_t *self, SSL_CTX *ctx, char *why, size_t size)
{
    SSL_CTX_set_app_data (ctx, self);
    SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, s_verified);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param (ctx);
    unsigned char address[16];
    bool is_address = inet_pton (AF_INET, self->info.host, address) == 1
                      || inet_pton (AF_INET6, self->info.host, address) == 1;
    X509_VERIFY_PARAM_set_hostflags (param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if ((is_address ? X509_VERIFY_PARAM_set1_ip_asc (param, self->info.host)
                    : X509_VERIFY_PARAM_set1_host (param, self->info.host, 0))
        != 1) {
        snprintf (why, size, "cannot check certificates for the name %.200s", self->info.host);
        return -1;
    }
    return 0;
}

//  OpenSSL's password callback when none was given: the read fails.
static int
s_no_password (char *buf, int size, int rwflag, void *arg)
{
    (void) buf, (void) size, (void) rwflag, (void) arg;
    return -1;
}

//  The TLS settings of a new TLS socket. 0, or -1 with why.
static int
s_tls (arb_upstream_url_t *self, amqp_socket_t *socket, char *why, size_t size)
{
    SSL_CTX *ctx = (SSL_CTX *) amqp_ssl_socket_get_context (socket);
    amqp_ssl_socket_set_verify_peer (socket, false);
    amqp_ssl_socket_set_verify_hostname (socket, false);
    if (self->verify && s_checks (self, ctx, why, size))
        return -1;
    if (amqp_ssl_socket_set_ssl_versions (socket, AMQP_TLSv1_2, AMQP_TLSvLATEST)
        != AMQP_STATUS_OK) {
        snprintf (why, size, "TLS 1.2 is not available");
        return -1;
    }
    if (self->cacertfile ? amqp_ssl_socket_set_cacert (socket, self->cacertfile) != AMQP_STATUS_OK
                         : SSL_CTX_set_default_verify_paths (ctx) != 1) {
        snprintf (why, size, "cannot load the CA certificates of %.200s",
                  self->cacertfile ? self->cacertfile : "the system");
        return -1;
    }
    if (!self->certfile)
        return 0;
    //  rabbitmq-c hands the password to OpenSSL's default callback, which
    //  reads it when the key is loaded: set first. Without one, a callback
    //  that has none, not OpenSSL's prompt on the terminal
    if (self->password)
        amqp_ssl_socket_set_key_passwd (socket, self->password);
    else
        SSL_CTX_set_default_passwd_cb (ctx, s_no_password);
    if (amqp_ssl_socket_set_key (socket, self->certfile, self->keyfile) != AMQP_STATUS_OK) {
        //  the key's own reason if it is the key (changed since the URL
        //  was read), else OpenSSL's (a certificate that is not the key's)
        const char *reason = ERR_reason_error_string (ERR_peek_last_error ());
        if (s_key_check (self, why, size) == 0)
            snprintf (why, size, "cannot load the certificate %.200s with the key %.200s: %s",
                      self->certfile, self->keyfile, reason ? reason : "unknown error");
        return -1;
    }
    return 0;
}

const char *
arb_upstream_url_refused (arb_upstream_url_t *self)
{
    //  the thread's OpenSSL errors of that handshake go with it
    ERR_clear_error ();
    return *self->refused ? self->refused : NULL;
}

amqp_socket_t *
arb_upstream_url_socket (arb_upstream_url_t *self,
                         amqp_connection_state_t conn,
                         char *why,
                         size_t size)
{
    amqp_socket_t *socket =
        self->info.ssl ? amqp_ssl_socket_new (conn) : amqp_tcp_socket_new (conn);
    if (!socket) {
        snprintf (why, size, "cannot make a %s socket", self->info.ssl ? "TLS" : "TCP");
        return NULL;
    }
    //  the connection owns the socket (amqp_destroy_connection frees it)
    self->refused[0] = 0;
    if (self->info.ssl && s_tls (self, socket, why, size))
        return NULL;
    return socket;
}
