/*  arb_curve_options.c — a program's CURVE setup from its settings
    (arb_curve_resolve_options); see arb_curve_options.h.

    Its own object file: only the programs that read settings with
    arb_options (the gateway, arbiter-worker) link the settings reader
    through it, not the CLI or a program on libarbiter alone.
*/

#include "arb_curve_options.h"

arb_curve_t *
arb_curve_resolve_options (
    arb_options_t *options, const char *cert_path, const char *broker_key, char *why, size_t size)
{
    char cert_where[1024], key_where[1024];
    arb_options_origin (options, "cert", "$" ARB_CURVE_ENV_CERT, cert_where, sizeof (cert_where));
    arb_options_origin (options, "broker-key", "$" ARB_CURVE_ENV_KEY, key_where,
                        sizeof (key_where));
    return arb_curve_resolve_named (cert_path, cert_where, broker_key, key_where, why, size);
}
