/*  arb_chain.h — an intrusive doubly linked list.

    The links live in the items (an arb_chain_link_t member), so adding and
    removing allocate nothing: a czmq zlistx takes a node from malloc for
    each item it holds, one or more a message on the gateway's and the
    workers' hot paths. An item is in one chain per link it has; a chain
    holds no pointer to anything it does not link, and owns nothing.

    A chain's head links to itself when the chain is empty, so a chain must
    not be copied or moved once initialised (keep it inside its owner).
*/

#ifndef ARB_CHAIN_H
#define ARB_CHAIN_H

#include <stddef.h>

typedef struct _arb_chain_link_t {
    struct _arb_chain_link_t *prev, *next;  //  NULL both when not in a chain
} arb_chain_link_t;

typedef struct {
    arb_chain_link_t head;
    size_t size;
} arb_chain_t;

//  The item a link is the member of (NULL for NULL: the end of a chain).
#define ARB_CHAIN_ITEM(link, type, member) \
    ((type *) arb_chain_item ((link), offsetof (type, member)))

static inline void *
arb_chain_item (arb_chain_link_t *link, size_t offset)
{
    return link ? (char *) link - offset : NULL;
}

static inline void
arb_chain_init (arb_chain_t *self)
{
    self->head.prev = self->head.next = &self->head;
    self->size = 0;
}

static inline void
arb_chain_add_end (arb_chain_t *self, arb_chain_link_t *link)
{
    link->prev = self->head.prev;
    link->next = &self->head;
    self->head.prev->next = link;
    self->head.prev = link;
    self->size++;
}

//  Takes a link out of the chain it is in (which must be self).
static inline void
arb_chain_remove (arb_chain_t *self, arb_chain_link_t *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = NULL;
    self->size--;
}

//  The first link, or NULL when the chain is empty.
static inline arb_chain_link_t *
arb_chain_first (const arb_chain_t *self)
{
    return self->head.next == &self->head ? NULL : self->head.next;
}

//  The last link, or NULL when the chain is empty.
static inline arb_chain_link_t *
arb_chain_last (const arb_chain_t *self)
{
    return self->head.prev == &self->head ? NULL : self->head.prev;
}

//  The link after link, or NULL at the end.
static inline arb_chain_link_t *
arb_chain_next (const arb_chain_t *self, const arb_chain_link_t *link)
{
    return link->next == &self->head ? NULL : link->next;
}

#endif
