/*  arb_curve_options.h — a program's CURVE setup from its settings.

    Apart from arb_curve.h, which is installed for libarbiter's users:
    this one needs arb_options.h, which is not.
*/

#ifndef ARB_CURVE_OPTIONS_H
#define ARB_CURVE_OPTIONS_H

#include "arb_curve.h"
#include "arb_options.h"

//  arb_curve_resolve for a program whose settings (arb_options.h) have
//  `cert` and `broker-key`, their defaults $ARBITER_CERT's and
//  $ARBITER_BROKER_KEY's values: each is named where it was given
//  (arb_options_origin), else as the variable.
arb_curve_t *arb_curve_resolve_options (
    arb_options_t *options, const char *cert_path, const char *broker_key, char *why, size_t size);

#endif
