/*  arb_curve.h — what a peer needs to reach a broker that runs with
    --curve (ZeroMQ CURVE, czmq's zcert), and the roles certificates carry.

    A broker started with --curve admits only peers whose public key is
    among its allowed certificates, and lets each do what the role in its
    certificate's metadata (`role = client | worker | admin`) permits
    (proto/PROTOCOL.md, "Authentication and roles"). A peer connects with
    its own secret certificate (`arbiter keygen` writes NAME.cert, the
    public half that goes into the broker's allowed folder, and
    NAME.cert_secret) and the broker's public key.

    An arb_curve_t holds those two: it is loaded once (from the options a
    program was given, else from ARBITER_CERT and ARBITER_BROKER_KEY) and
    applied to every socket the program opens towards the broker before
    that socket connects. The crypto is libzmq's (libsodium); this module
    only reads czmq certificate files.

    Pure functions and a small immutable value: any thread may use its own
    or share one for reading.
*/

#ifndef ARB_CURVE_H
#define ARB_CURVE_H

#include <czmq.h>
#include <stdbool.h>

//  The roles a certificate may carry, as bits so that a verb can name
//  the roles it takes (broker/arb_verbs.c). admin may do everything.
typedef enum {
    ARB_ROLE_NONE = 0,    //  no role, or one the broker does not know: it may do nothing
    ARB_ROLE_CLIENT = 1,  //  submit, wait, status, list, stats, events, cancel by id
    ARB_ROLE_WORKER = 2,  //  register, take tasks, send results
    ARB_ROLE_ADMIN = 4,   //  everything
} arb_role_t;

#define ARB_ROLE_ANY  (ARB_ROLE_CLIENT | ARB_ROLE_WORKER | ARB_ROLE_ADMIN)
#define ARB_ROLE_META "role"  //  the certificate's metadata key that names its role

#define ARB_CURVE_ENV_CERT "ARBITER_CERT"        //  a secret certificate file
#define ARB_CURVE_ENV_KEY  "ARBITER_BROKER_KEY"  //  the broker's public key, or its .cert file
#define ARB_CURVE_KEY_LEN  40                    //  a Z85 public key's length

//  The name of one role ("client", "worker", "admin"; "none" for
//  ARB_ROLE_NONE or a mix of bits). Static.
const char *arb_role_name (arb_role_t role);

//  The role a name spells (exactly), or ARB_ROLE_NONE.
arb_role_t arb_role_parse (const char *name);

typedef struct _arb_curve_t arb_curve_t;

//  Loads a peer's CURVE setup: cert_path is its secret certificate
//  (NAME.cert_secret; NAME.cert also works when NAME.cert_secret is
//  beside it), broker_key the broker's public key: its 40 Z85 characters,
//  or a certificate file holding it (the broker's broker.cert). Returns
//  NULL with a sentence in why that names what is wrong.
arb_curve_t *arb_curve_new (const char *cert_path, const char *broker_key, char *why, size_t size);

//  The setup a program was told of: cert_path, else $ARBITER_CERT, and
//  broker_key, else $ARBITER_BROKER_KEY (NULL or empty: not given).
//  Neither given: NULL with why empty (no CURVE: the broker must run
//  without --curve). Only one of them given, or they cannot be loaded:
//  NULL with the reason in why, which names the option or variable.
arb_curve_t *
arb_curve_resolve (const char *cert_path, const char *broker_key, char *why, size_t size);

//  arb_curve_resolve, with cert_where and key_where saying where the two
//  given came from, as messages name them ("--cert", "FILE:LINE: cert",
//  or "$ARBITER_CERT" for a value the variable gave; NULL: "--cert" and
//  "--broker-key").
arb_curve_t *arb_curve_resolve_named (const char *cert_path,
                                      const char *cert_where,
                                      const char *broker_key,
                                      const char *key_where,
                                      char *why,
                                      size_t size);

//  A copy (the caller owns it).
arb_curve_t *arb_curve_dup (const arb_curve_t *self);

//  Frees it. Accepts NULL; nulls *self_p.
void arb_curve_destroy (arb_curve_t **self_p);

//  Makes sock a CURVE client of the broker with this certificate; only
//  the connections it makes after this use it.
void arb_curve_apply (const arb_curve_t *self, zsock_t *sock);

//  The peer's own public key, Z85 (borrowed), for logs.
const char *arb_curve_public_key (const arb_curve_t *self);

//  Whether text is a Z85 CURVE public key: ARB_CURVE_KEY_LEN characters
//  of the Z85 alphabet.
bool arb_curve_is_key (const char *text);

#endif
