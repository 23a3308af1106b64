/*  arb_curve.c — a peer's CURVE setup and the roles of certificates; see
    arb_curve.h.
*/

#include "arb_curve.h"

#include <errno.h>
#include <unistd.h>

struct _arb_curve_t {
    zcert_t *cert;                           //  owned: the peer's key pair
    char broker_key[ARB_CURVE_KEY_LEN + 1];  //  the broker's public key, Z85
};

static const char *s_roles[] = {"client", "worker", "admin"};

const char *
arb_role_name (arb_role_t role)
{
    switch (role) {
        case ARB_ROLE_CLIENT:
            return s_roles[0];
        case ARB_ROLE_WORKER:
            return s_roles[1];
        case ARB_ROLE_ADMIN:
            return s_roles[2];
        default:
            return "none";
    }
}

arb_role_t
arb_role_parse (const char *name)
{
    if (!name)
        return ARB_ROLE_NONE;
    for (int i = 0; i < 3; i++)
        if (streq (name, s_roles[i]))
            return (arb_role_t) (1 << i);
    return ARB_ROLE_NONE;
}

bool
arb_curve_is_key (const char *text)
{
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (!text || strlen (text) != ARB_CURVE_KEY_LEN)
        return false;
    for (const char *c = text; *c; c++)
        if (!strchr (z85, *c))
            return false;
    return true;
}

//  Whether the certificate holds a secret key (a public certificate
//  loads with an all-zero one).
static bool
s_has_secret (zcert_t *cert)
{
    const byte *key = zcert_secret_key (cert);
    for (int i = 0; i < 32; i++)
        if (key[i])
            return true;
    return false;
}

//  Loads the two halves; cert_what and key_what name where each came from
//  in messages ("--cert", "$ARBITER_CERT").
static arb_curve_t *
s_load (const char *cert_path,
        const char *cert_what,
        const char *broker_key,
        const char *key_what,
        char *why,
        size_t size)
{
    //  the file's own error first: zcert_load's errno, for a file there
    //  that is not a certificate, came from something else it tried
    if (access (cert_path, R_OK) != 0) {
        snprintf (why, size, "%s: cannot read a certificate from '%s': %s", cert_what, cert_path,
                  strerror (errno));
        return NULL;
    }
    zcert_t *cert = zcert_load (cert_path);
    if (!cert) {
        snprintf (why, size,
                  "%s: '%s' is not a certificate (give the NAME.cert_secret file that `arbiter "
                  "keygen` wrote)",
                  cert_what, cert_path);
        return NULL;
    }
    if (!s_has_secret (cert)) {
        snprintf (why, size,
                  "%s: '%s' holds no secret key (give the NAME.cert_secret file that `arbiter "
                  "keygen` wrote)",
                  cert_what, cert_path);
        zcert_destroy (&cert);
        return NULL;
    }
    arb_curve_t *self = (arb_curve_t *) zmalloc (sizeof (arb_curve_t));
    self->cert = cert;
    if (arb_curve_is_key (broker_key)) {
        snprintf (self->broker_key, sizeof (self->broker_key), "%s", broker_key);
        return self;
    }
    zcert_t *broker = zcert_load (broker_key);
    if (broker) {
        snprintf (self->broker_key, sizeof (self->broker_key), "%s", zcert_public_txt (broker));
        zcert_destroy (&broker);
        return self;
    }
    //  the file's own error, as for the certificate: for a file there that
    //  is not one, zcert_load's errno came from something else it tried
    int error = access (broker_key, R_OK) == 0 ? 0 : errno;
    snprintf (why, size,
              "%s: '%.256s' is neither the broker's public key (%d Z85 characters) nor a "
              "certificate file holding it%s%s",
              key_what, broker_key, ARB_CURVE_KEY_LEN, error ? ": " : "",
              error ? strerror (error) : "");
    arb_curve_destroy (&self);
    return NULL;
}

arb_curve_t *
arb_curve_new (const char *cert_path, const char *broker_key, char *why, size_t size)
{
    assert (cert_path && broker_key);
    errno = 0;
    return s_load (cert_path, "cert", broker_key, "broker key", why, size);
}

arb_curve_t *
arb_curve_resolve (const char *cert_path, const char *broker_key, char *why, size_t size)
{
    return arb_curve_resolve_named (cert_path, NULL, broker_key, NULL, why, size);
}

arb_curve_t *
arb_curve_resolve_named (const char *cert_path,
                         const char *cert_where,
                         const char *broker_key,
                         const char *key_where,
                         char *why,
                         size_t size)
{
    assert (why && size);
    why[0] = '\0';
    const char *cert_what = cert_where ? cert_where : "--cert";
    const char *key_what = key_where ? key_where : "--broker-key";
    if (!cert_path || !*cert_path) {
        cert_path = getenv (ARB_CURVE_ENV_CERT);
        cert_what = "$" ARB_CURVE_ENV_CERT;
    }
    if (!broker_key || !*broker_key) {
        broker_key = getenv (ARB_CURVE_ENV_KEY);
        key_what = "$" ARB_CURVE_ENV_KEY;
    }
    bool cert = cert_path && *cert_path, key = broker_key && *broker_key;
    if (!cert && !key)
        return NULL;
    if (!cert || !key) {
        snprintf (why, size, "%s is given but not the %s (--%s or $%s): CURVE needs both",
                  cert ? cert_what : key_what, cert ? "broker's key" : "certificate",
                  cert ? "broker-key" : "cert", cert ? ARB_CURVE_ENV_KEY : ARB_CURVE_ENV_CERT);
        return NULL;
    }
    errno = 0;
    return s_load (cert_path, cert_what, broker_key, key_what, why, size);
}

arb_curve_t *
arb_curve_dup (const arb_curve_t *self)
{
    assert (self);
    arb_curve_t *copy = (arb_curve_t *) zmalloc (sizeof (arb_curve_t));
    copy->cert = zcert_dup (self->cert);
    memcpy (copy->broker_key, self->broker_key, sizeof (copy->broker_key));
    return copy;
}

void
arb_curve_destroy (arb_curve_t **self_p)
{
    assert (self_p);
    arb_curve_t *self = *self_p;
    if (!self)
        return;
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

void
arb_curve_apply (const arb_curve_t *self, zsock_t *sock)
{
    assert (self && sock);
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, self->broker_key);
}

const char *
arb_curve_public_key (const arb_curve_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}
