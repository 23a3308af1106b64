/*  arb_auth.h — who may talk to the broker, and in which role.

    Without --curve the broker authenticates nobody: every peer may do
    everything, so the broker binds only addresses this host alone can
    reach (loopback tcp, ipc, inproc) unless told --insecure
    (arb_auth_endpoint_is_local).

    With --curve DIR its ROUTER socket is a ZeroMQ CURVE server. DIR holds

        broker.cert, broker.cert_secret   its key pair, made at its first
                                          start (peers need broker.cert,
                                          or the key in it: --broker-key)
        allowed/                          the public certificates of the
                                          peers it admits (`arbiter keygen`
                                          writes them), each with its role
                                          in its metadata: role = client,
                                          worker or admin

    Admission is czmq's zauth (the ZAP handler, an actor thread of its
    own): a connection whose key is not in allowed/ never gets through
    its handshake. zauth's certificate store reads the folder again at a
    new connection whenever its files changed.

    The role is decided per message, since one ROUTER serves many peers:
    the message's User-Id, which only the ZAP handler sets (zauth sets the
    peer's public key, Z85), is looked up in the broker's own copy of
    allowed/: key -> the role in that certificate's metadata. The loop
    calls arb_auth_refresh every turn; it looks at the folder once a
    second and reads it again when a file was added, removed or changed,
    and a message from a key the copy does not hold (a certificate added
    a moment ago) makes it look at once (once per key until the folder
    changes: a removed certificate's peer that stays connected costs no
    more looks). So a
    certificate removed from allowed/, or given another role, counts
    within a second, for peers already connected too, and no signal is
    needed. (Why not the role zauth copies into the connection's metadata:
    a peer may send properties of its own in its handshake, and its own
    "role" would stand in for a certificate that has none. The User-Id is
    ZAP's alone.)

    A role is checked when a message comes, but a peer also holds what
    the broker keeps for it between messages: a worker session (and its
    leases), watches, an event subscription. So the broker notes which
    key each routing id speaks with (arb_auth_note), and after a read
    of the folder asks which noted peers' roles changed
    (arb_auth_changed_roles), to end what the new role may no longer
    hold. The noted peers are pruned of those that hold nothing
    (arb_auth_prune), so that their count follows the peers that hold
    something, not every connection ever made.

    Runs in the loop thread; zauth runs in its own. Only one broker with
    --curve per process (ZAP has one handler per ZeroMQ context).
*/

#ifndef ARB_AUTH_H
#define ARB_AUTH_H

#include "arb_curve.h"

#define ARB_AUTH_CERT    "broker.cert"  //  in DIR: the broker's public certificate
#define ARB_AUTH_ALLOWED "allowed"      //  in DIR: the peers' public certificates
#define ARB_AUTH_DOMAIN  "arbiter"      //  the router's ZAP domain

typedef struct _arb_auth_t arb_auth_t;

//  Makes router (borrowed; not bound yet) a CURVE server with the key
//  pair in dir (made, with dir and dir/allowed, if missing) and starts
//  zauth over dir/allowed. Returns NULL after logging why.
arb_auth_t *arb_auth_new (const char *dir, zsock_t *router);

//  Stops zauth. Destroy it after the router. Accepts NULL; nulls *self_p.
void arb_auth_destroy (arb_auth_t **self_p);

//  The broker's public key, Z85 (borrowed).
const char *arb_auth_public_key (arb_auth_t *self);

//  The role of the peer a message came from, by the User-Id of its
//  connection (its public key, Z85, from the message's metadata:
//  arb_msg_recv_from): the role of its certificate, or ARB_ROLE_NONE if
//  its certificate has no role the broker knows or is no longer in
//  allowed/ (or user_id is empty).
arb_role_t arb_auth_role (arb_auth_t *self, const char *user_id);

//  Reads allowed/ again if it changed; looks at most once a second.
//  Returns whether the folder was read again since the last call (here,
//  or by arb_auth_role looking for a new key): roles may have changed.
bool arb_auth_refresh (arb_auth_t *self, uint64_t mono_ms);

//  Notes that the peer of routing id peer (peer_size bytes, borrowed)
//  speaks with key (its User-Id, as for arb_auth_role), with the role its
//  certificate has now, if it is not noted yet. Call it for every message
//  received.
void arb_auth_note (arb_auth_t *self, const uint8_t *peer, size_t peer_size, const char *key);

//  Called for a noted peer whose role changed: its routing id (borrowed
//  for the call), its new role (ARB_ROLE_NONE: its certificate is gone
//  or has no role) and its certificate's name (its "name" metadata, else
//  its file name; kept from when it was noted, so a removed one's too).
typedef void (arb_auth_fn) (void *arg, zframe_t *identity, arb_role_t role, const char *name);

//  Calls fn for every noted peer whose certificate's role is not the one
//  it had when noted or at the last call, and notes the new one.
void arb_auth_changed_roles (arb_auth_t *self, arb_auth_fn *fn, void *arg);

//  Whether the broker holds anything for the peer of identity (borrowed).
typedef bool (arb_auth_holds_fn) (void *arg, zframe_t *identity);

//  Forgets the noted peers for which holds says false, once their count
//  has doubled since the last prune (at first: 1,024), so that a call
//  every turn costs O(1) amortized.
void arb_auth_prune (arb_auth_t *self, arb_auth_holds_fn *holds, void *arg);

//  Whether a bind endpoint can be reached from this host only: tcp on a
//  loopback address (127.0.0.0/8, ::1, localhost, the interface lo),
//  ipc or inproc.
bool arb_auth_endpoint_is_local (const char *endpoint);

#endif
