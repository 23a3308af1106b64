/*  arb_limit.c — see arb_limit.h. */

#include "arb_limit.h"

static void
s_refill (arb_limit_t *self, uint64_t mono_ms)
{
    uint32_t rate = self->rate_per_sec;
    if (self->tokens_at_ms == 0)
        self->tokens = 1;  //  the first dispatch goes at once
    else
        self->tokens += (double) (mono_ms - self->tokens_at_ms) * rate / 1000.0;
    if (self->tokens > rate)
        self->tokens = rate;
    self->tokens_at_ms = mono_ms;
}

bool
arb_limit_check (arb_limit_t *self, uint64_t mono_ms, uint64_t *retry_ms)
{
    if (self->max_running && self->running >= self->max_running)
        return false;
    if (self->rate_per_sec == 0)
        return true;
    s_refill (self, mono_ms);
    if (self->tokens >= 1)
        return true;
    *retry_ms = (uint64_t) ((1 - self->tokens) * 1000.0 / self->rate_per_sec) + 1;
    return false;
}

void
arb_limit_take (arb_limit_t *self)
{
    if (self->rate_per_sec)
        self->tokens -= 1;
}

bool
arb_limit_is_set (const arb_limit_t *self)
{
    return self->max_running || self->rate_per_sec;
}
