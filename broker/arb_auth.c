/*  arb_auth.c — CURVE on the broker's socket and the role of each
    message's peer; see arb_auth.h.
*/

#include "arb_auth.h"
#include "arb_bytes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/stat.h>

#define S_REFRESH_MS  1000   //  the folder is looked at this often
#define S_UNKNOWN_MAX 10000  //  keys remembered as not in the folder, at most
#define S_NOTED_MIN   1024   //  peers noted before the first prune (arb_auth_prune)

//  One allowed certificate, in the broker's copy of the folder.
typedef struct {
    arb_role_t role;
    char *file;  //  owned: where it was read, for the log
    char *name;  //  owned: its "name" metadata, else the file's
} s_peer_t;

//  A peer heard from (arb_auth_note): its connection's routing id, the
//  key it speaks with, and the role its certificate had when last looked.
typedef struct {
    zframe_t *identity;  //  owned: the routing id
    char key[64];        //  its User-Id (Z85 public key: 40 characters)
    char name[64];       //  its certificate's name, kept after the file goes
    arb_role_t role;     //  as of the last note or read of the folder
} s_noted_t;

struct _arb_auth_t {
    zactor_t *zauth;        //  owned: czmq's ZAP handler
    zcert_t *cert;          //  owned: the broker's key pair
    char *allowed;          //  owned: the folder of allowed certificates
    zhashx_t *peers;        //  owned: Z85 public key -> s_peer_t (owned)
    zhashx_t *unknown;      //  owned: keys looked for and not found since peers was read
    uint64_t signature;     //  of the folder's files when peers was read
    uint64_t next_scan_ms;  //  monotonic: the next periodic look
    zhashx_t *noted;        //  owned: routing id hex -> s_noted_t (owned)
    size_t prune_at;        //  noted peers beyond which arb_auth_prune looks
    bool changed;           //  the folder was read again since arb_auth_refresh last said
};

static void
s_peer_destroy (void **item)
{
    s_peer_t *peer = (s_peer_t *) *item;
    if (peer) {
        free (peer->file);
        free (peer->name);
        free (peer);
        *item = NULL;
    }
}

static void
s_noted_destroy (void **item)
{
    s_noted_t *noted = (s_noted_t *) *item;
    if (noted) {
        zframe_destroy (&noted->identity);
        free (noted);
        *item = NULL;
    }
}

//  ---------------------------------------------------------------------
//  The broker's key pair.

//  Writes a new key pair to path (public, as the umask makes it: peers
//  copy it, as --broker-key) and path_secret (secret, mode 0600). 0, or -1
//  after logging why.
static int
s_make_cert (const char *path)
{
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "name", "%s", "arbiterd");
    char secret[PATH_MAX + 8];
    snprintf (secret, sizeof (secret), "%s_secret", path);
    mode_t mask = umask (077);  //  the secret is never readable by others, not even a moment
    int rc = zcert_save_secret (cert, secret);
    umask (mask);
    if (rc == 0)
        rc = zcert_save_public (cert, path);
    if (rc == 0)
        zsys_notice ("auth: made the broker's certificate file=%s public_key=%s (give it, or the "
                     "key, to peers: --broker-key)",
                     path, zcert_public_txt (cert));
    else
        zsys_error ("auth: cannot write the broker's certificate file=%s: %s", path,
                    strerror (errno));
    zcert_destroy (&cert);
    return rc == 0 ? 0 : -1;
}

//  Loads the key pair in dir, making it first if it is missing.
static zcert_t *
s_load_cert (const char *dir)
{
    char path[PATH_MAX], secret[PATH_MAX + 8];
    snprintf (path, sizeof (path), "%s/%s", dir, ARB_AUTH_CERT);
    snprintf (secret, sizeof (secret), "%s_secret", path);
    struct stat st;
    if (stat (secret, &st) != 0) {
        if (errno != ENOENT) {
            zsys_error ("auth: cannot read %s: %s", secret, strerror (errno));
            return NULL;
        }
        if (s_make_cert (path))
            return NULL;
    }
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        zsys_warning ("auth: the broker's secret certificate is open to others file=%s mode=%o "
                      "(chmod 600 it)",
                      secret, (unsigned) (st.st_mode & 0777));
    zcert_t *cert = zcert_load (path);
    const byte *key = cert ? zcert_secret_key (cert) : NULL;
    bool has_secret = false;
    for (int i = 0; key && i < 32; i++)
        has_secret |= key[i] != 0;
    if (!has_secret) {
        zsys_error ("auth: %s holds no CURVE secret key", secret);
        zcert_destroy (&cert);
    }
    return cert;
}

//  ---------------------------------------------------------------------
//  The broker's copy of the allowed folder.

//  The folder's files, as zcertstore reads them (regular files, sub-folders
//  too), and a signature of what they are now: names, sizes, times to the
//  nanosecond and inodes, so that a file replaced within a second counts.
static zfile_t **
s_files (arb_auth_t *self, zdir_t **dir_p, uint64_t *signature)
{
    *signature = ARB_FNV_BASIS;
    *dir_p = zdir_new (self->allowed, NULL);
    if (!*dir_p)
        return NULL;
    zfile_t **files = zdir_flatten (*dir_p);
    for (size_t i = 0; files && files[i]; i++) {
        const char *name = zfile_filename (files[i], NULL);
        struct stat st;
        if (stat (name, &st) != 0 || !S_ISREG (st.st_mode))
            continue;
        uint64_t facts[] = {(uint64_t) st.st_size, (uint64_t) st.st_mtim.tv_sec,
                            (uint64_t) st.st_mtim.tv_nsec, (uint64_t) st.st_ino,
                            (uint64_t) st.st_ctim.tv_nsec};
        *signature = arb_bytes_fnv (*signature, name, strlen (name) + 1);
        *signature = arb_bytes_fnv (*signature, facts, sizeof (facts));
    }
    return files;
}

//  Looks at the folder, and reads every certificate again if it changed.
static void
s_scan (arb_auth_t *self, bool first)
{
    zdir_t *dir = NULL;
    uint64_t signature;
    zfile_t **files = s_files (self, &dir, &signature);
    if (signature == self->signature && !first) {
        zdir_flatten_free (&files);
        zdir_destroy (&dir);
        return;
    }
    zhashx_t *peers = zhashx_new ();
    zhashx_set_destructor (peers, s_peer_destroy);
    size_t counts[4] = {0};  //  none, client, worker, admin
    for (size_t i = 0; files && files[i]; i++) {
        if (!zfile_is_regular (files[i]))
            continue;
        const char *name = zfile_filename (files[i], NULL);
        zcert_t *cert = zcert_load (name);
        if (!cert)
            continue;
        const char *text = zcert_meta (cert, ARB_ROLE_META);
        s_peer_t *peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
        peer->role = arb_role_parse (text);
        peer->file = strdup (name);
        const char *own = zcert_meta (cert, "name");
        const char *base = strrchr (name, '/');
        peer->name = strdup (own && *own ? own : base ? base + 1 : name);
        counts[peer->role == ARB_ROLE_ADMIN ? 3 : (int) peer->role]++;
        if (peer->role == ARB_ROLE_NONE)
            zsys_warning ("auth: certificate without a role the broker knows: its peer may do "
                          "nothing file=%s role=\"%.32s\" (want client, worker or admin)",
                          name, text ? text : "");
        if (zhashx_insert (peers, zcert_public_txt (cert), peer) != 0)
            s_peer_destroy ((void **) &peer);  //  the same key twice: the first counts
        zcert_destroy (&cert);
    }
    zdir_flatten_free (&files);
    zdir_destroy (&dir);
    zhashx_destroy (&self->peers);
    self->peers = peers;
    zhashx_purge (self->unknown);
    self->signature = signature;
    self->changed = !first;
    zsys_info ("auth: allowed certificates %s dir=%s client=%zu worker=%zu admin=%zu "
               "without_role=%zu",
               first ? "read" : "read again", self->allowed, counts[1], counts[2], counts[3],
               counts[0]);
}

//  ---------------------------------------------------------------------

arb_auth_t *
arb_auth_new (const char *dir, zsock_t *router)
{
    assert (dir && router);
    char allowed[PATH_MAX];
    snprintf (allowed, sizeof (allowed), "%s/%s", dir, ARB_AUTH_ALLOWED);
    if (zsys_dir_create ("%s", allowed) != 0) {
        zsys_error ("auth: cannot make the folder %s: %s", allowed, strerror (errno));
        return NULL;
    }
    zcert_t *cert = s_load_cert (dir);
    if (!cert)
        return NULL;
    arb_auth_t *self = (arb_auth_t *) zmalloc (sizeof (arb_auth_t));
    self->cert = cert;
    self->allowed = strdup (allowed);
    self->unknown = zhashx_new ();
    self->noted = zhashx_new ();
    zhashx_set_destructor (self->noted, s_noted_destroy);
    self->prune_at = S_NOTED_MIN;
    s_scan (self, true);
    self->zauth = zactor_new (zauth, NULL);
    if (!self->zauth) {
        zsys_error ("auth: cannot start zauth");
        arb_auth_destroy (&self);
        return NULL;
    }
    zstr_sendx (self->zauth, "CURVE", allowed, NULL);
    zsock_wait (self->zauth);
    zcert_apply (cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, ARB_AUTH_DOMAIN);
    return self;
}

void
arb_auth_destroy (arb_auth_t **self_p)
{
    assert (self_p);
    arb_auth_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->zauth);
    zcert_destroy (&self->cert);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->unknown);
    zhashx_destroy (&self->noted);
    free (self->allowed);
    free (self);
    *self_p = NULL;
}

const char *
arb_auth_public_key (arb_auth_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}

arb_role_t
arb_auth_role (arb_auth_t *self, const char *key)
{
    assert (self);
    if (!key || !*key)
        return ARB_ROLE_NONE;
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
    //  a key zauth let in and the copy does not hold: added a moment ago
    //  (a look finds it), or removed while its peer stays connected (the
    //  look is not made again for it before the folder changes)
    if (!peer && !zhashx_lookup (self->unknown, key)) {
        s_scan (self, false);
        peer = (s_peer_t *) zhashx_lookup (self->peers, key);
        if (!peer) {
            if (zhashx_size (self->unknown) >= S_UNKNOWN_MAX)
                zhashx_purge (self->unknown);
            zhashx_insert (self->unknown, key, (void *) self);
        }
    }
    return peer ? peer->role : ARB_ROLE_NONE;
}

bool
arb_auth_refresh (arb_auth_t *self, uint64_t mono_ms)
{
    assert (self);
    if (mono_ms >= self->next_scan_ms) {
        self->next_scan_ms = mono_ms + S_REFRESH_MS;
        s_scan (self, false);
    }
    //  a read made by arb_auth_role counts too (a new key's look)
    bool changed = self->changed;
    self->changed = false;
    return changed;
}

void
arb_auth_note (arb_auth_t *self, const uint8_t *id, size_t id_size, const char *key)
{
    assert (self);
    if (!id || !id_size || !key || !*key)
        return;
    char hex[ARB_HEX_ID_SIZE];
    arb_bytes_hex_id (id, id_size, hex);
    s_noted_t *noted = (s_noted_t *) zhashx_lookup (self->noted, hex);
    //  the common case: known. Its role is left as it was noted, for
    //  arb_auth_changed_roles to compare, even if a read since changed it.
    if (noted && streq (noted->key, key))
        return;
    if (!noted) {
        noted = (s_noted_t *) zmalloc (sizeof (s_noted_t));
        noted->identity = zframe_new (id, id_size);
        zhashx_insert (self->noted, hex, noted);
    }
    snprintf (noted->key, sizeof (noted->key), "%s", key);
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
    snprintf (noted->name, sizeof (noted->name), "%s", peer ? peer->name : "?");
    noted->role = peer ? peer->role : ARB_ROLE_NONE;
}

void
arb_auth_changed_roles (arb_auth_t *self, arb_auth_fn *fn, void *arg)
{
    assert (self && fn);
    for (s_noted_t *noted = (s_noted_t *) zhashx_first (self->noted); noted;
         noted = (s_noted_t *) zhashx_next (self->noted)) {
        s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, noted->key);
        arb_role_t role = peer ? peer->role : ARB_ROLE_NONE;
        if (role == noted->role)
            continue;
        noted->role = role;
        fn (arg, noted->identity, role, noted->name);
    }
}

void
arb_auth_prune (arb_auth_t *self, arb_auth_holds_fn *holds, void *arg)
{
    assert (self && holds);
    if (zhashx_size (self->noted) < self->prune_at)
        return;
    zlistx_t *gone = zlistx_new ();
    for (s_noted_t *noted = (s_noted_t *) zhashx_first (self->noted); noted;
         noted = (s_noted_t *) zhashx_next (self->noted))
        if (!holds (arg, noted->identity))
            zlistx_add_end (gone, strdup ((const char *) zhashx_cursor (self->noted)));
    char *hex;
    while ((hex = (char *) zlistx_detach (gone, NULL))) {
        zhashx_delete (self->noted, hex);
        free (hex);
    }
    zlistx_destroy (&gone);
    //  the next prune when as many again were heard from: amortized O(1)
    size_t kept = zhashx_size (self->noted);
    self->prune_at = kept * 2 > S_NOTED_MIN ? kept * 2 : S_NOTED_MIN;
}

bool
arb_auth_endpoint_is_local (const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    //  the host is what comes before the last ':' (the port)
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || colon == host)
        return false;
    char name[256];
    size_t len = (size_t) (colon - host);
    if (host[0] == '[' && len >= 2 && host[len - 1] == ']')
        host++, len -= 2;  //  [::1]
    if (len >= sizeof (name))
        return false;
    memcpy (name, host, len);
    name[len] = '\0';
    if (streq (name, "localhost") || streq (name, "lo"))
        return true;
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton (AF_INET, name, &v4) == 1)
        return (ntohl (v4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, name, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK (&v6);
    return false;
}
