/*  arb_turns.c — turns for the gateway's questions to the broker (see
    arb_turns.h).
*/

#include "arb_turns.h"

#include <czmq.h>

struct _arb_turns_t {
    size_t max;         //  asking at once, at most
    size_t asking;      //  started and not left
    zlistx_t *waiting;  //  borrowed arb_turn_t, in the order they came
    arb_turns_start_fn *start;
    bool starting;  //  in s_next: a start that leaves does not enter it again
    bool stopped;   //  arb_turns_stop: nothing starts
};

arb_turns_t *
arb_turns_new (size_t max, arb_turns_start_fn *start)
{
    arb_turns_t *self = (arb_turns_t *) calloc (1, sizeof (arb_turns_t));
    if (!self)
        return NULL;
    self->max = max;
    self->start = start;
    self->waiting = zlistx_new ();
    if (!self->waiting) {
        free (self);
        return NULL;
    }
    return self;
}

void
arb_turns_destroy (arb_turns_t **self_p)
{
    arb_turns_t *self = *self_p;
    if (!self)
        return;
    arb_turns_stop (self);
    zlistx_destroy (&self->waiting);
    free (self);
    *self_p = NULL;
}

//  Starts those waiting, in order, while there is room. A start that
//  leaves at once makes room again: the loop goes on.
static void
s_next (arb_turns_t *self)
{
    if (self->starting || self->stopped)
        return;
    self->starting = true;
    arb_turn_t *turn;
    while (self->asking < self->max && (turn = (arb_turn_t *) zlistx_first (self->waiting))) {
        zlistx_delete (self->waiting, turn->handle);
        turn->handle = NULL;
        turn->asking = true;
        self->asking++;
        self->start (turn->item);
    }
    self->starting = false;
}

void
arb_turns_take (arb_turns_t *self, arb_turn_t *turn, void *item)
{
    turn->item = item;
    if (self->stopped || turn->handle || turn->asking)
        return;
    //  in line behind any who wait; it starts now if there is room
    turn->handle = zlistx_add_end (self->waiting, turn);
    s_next (self);
}

void
arb_turns_leave (arb_turns_t *self, arb_turn_t *turn)
{
    if (turn->handle) {
        zlistx_delete (self->waiting, turn->handle);
        turn->handle = NULL;
    }
    if (turn->asking) {
        turn->asking = false;
        self->asking--;
        s_next (self);
    }
}

bool
arb_turns_waiting (const arb_turn_t *turn)
{
    return turn->handle != NULL;
}

void
arb_turns_stop (arb_turns_t *self)
{
    self->stopped = true;
    arb_turn_t *turn;
    while ((turn = (arb_turn_t *) zlistx_first (self->waiting))) {
        zlistx_delete (self->waiting, turn->handle);
        turn->handle = NULL;
    }
}

size_t
arb_turns_asking (const arb_turns_t *self)
{
    return self->asking;
}
