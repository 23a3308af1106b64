/*  arb_turns.h — turns for the gateway's questions to the broker: at most
    a number of them asking at once, the others waiting in the order they
    came. The HTTP server's reads and Kestrel's listings (stats,
    flush_all) take turns: a few hundred clients asking at once made the
    broker give up the gateway's session (each answer a turn of its own,
    a listing of 10,000 queues several of them), and a listing held in
    memory for every client at once would have no bound.

    An item (a request, a client) holds an arb_turn_t of its own, zeroed
    before its first turn; arb_turns_take starts it at once (the start
    function runs) if there is room and no one waits, else it waits and
    starts when an earlier one leaves. It leaves with arb_turns_leave,
    answered or gone, whether it waited or asked; leaving twice, or
    without a turn taken, does nothing. A start may leave at once (it
    answered without asking): the next one starts then, in the same loop.
    Runs in the reactor's thread.
*/

#ifndef ARB_TURNS_H
#define ARB_TURNS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _arb_turns_t arb_turns_t;

//  An item's turn: where it waits, or whether it asks now.
typedef struct {
    void *item;    //  the one the start function gets
    void *handle;  //  its place among those waiting, or NULL
    bool asking;   //  started and not left: counted among those asking
} arb_turn_t;

//  Starts an item whose turn it is (it asks the broker, or answers).
typedef void (arb_turns_start_fn) (void *item);

//  Turns of at most max asking at once.
arb_turns_t *arb_turns_new (size_t max, arb_turns_start_fn *start);
void arb_turns_destroy (arb_turns_t **self_p);

//  The item takes its turn: starts now, or waits.
void arb_turns_take (arb_turns_t *self, arb_turn_t *turn, void *item);

//  The item leaves: out of the waiting, or no longer asking (the next
//  one starts).
void arb_turns_leave (arb_turns_t *self, arb_turn_t *turn);

//  Whether the item waits its turn.
bool arb_turns_waiting (const arb_turn_t *turn);

//  No turn starts any more (the server stops): those waiting are taken
//  off, not started; those asking still leave as before.
void arb_turns_stop (arb_turns_t *self);

//  How many ask now.
size_t arb_turns_asking (const arb_turns_t *self);

#endif
