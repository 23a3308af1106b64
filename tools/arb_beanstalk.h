/*  arb_beanstalk.h — a small blocking beanstalkd client for arbiter-peers:
    commands are buffered and go out with arb_beanstalk_flush (so that a
    caller can pipeline them), replies are read in order.
*/

#ifndef ARB_BEANSTALK_H
#define ARB_BEANSTALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _arb_beanstalk_t arb_beanstalk_t;

//  Connects to 127.0.0.1:port. NULL on failure.
arb_beanstalk_t *arb_beanstalk_connect (int port);
void arb_beanstalk_destroy (arb_beanstalk_t **self_p);

//  Buffers a put (priority 0, no delay, ttr 60 s) of data.
void arb_beanstalk_put (arb_beanstalk_t *self, const void *data, size_t size);
//  Buffers "reserve-with-timeout SECONDS".
void arb_beanstalk_reserve (arb_beanstalk_t *self, int seconds);
//  Buffers "delete ID".
void arb_beanstalk_delete (arb_beanstalk_t *self, uint64_t id);

//  Sends what is buffered. 0 or -1.
int arb_beanstalk_flush (arb_beanstalk_t *self);

//  Reads the next reply (blocking): its first line (without CRLF) in
//  *line and, for RESERVED, the job's id and body (borrowed until the next
//  call). Returns 0, or -1 if the connection failed.
int arb_beanstalk_reply (
    arb_beanstalk_t *self, const char **line, uint64_t *id, const char **body, size_t *size);

//  Whether a whole reply line is already buffered (reading it won't block).
bool arb_beanstalk_ready (arb_beanstalk_t *self);

#endif
