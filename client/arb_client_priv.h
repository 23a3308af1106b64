/*  arb_client_priv.h — what arb_client.c lends the other files of the
    client library (arb_client_calls.c), which are otherwise built on the
    public calls of arb_client.h. Internal to client/.
*/

#ifndef ARB_CLIENT_PRIV_H
#define ARB_CLIENT_PRIV_H

#include "arb_client.h"

//  Makes the current call fail: arb_client_error says why (fmt),
//  arb_client_error_code gives code (0 for a local failure).
void arb_client_fail (arb_client_t *self, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
