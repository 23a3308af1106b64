/*  arb_spare.h — how many freed records a module keeps for its next ones.

    A record made and freed for every task or request costs the
    allocator's round trip each time, and a batch of them outruns glibc's
    per-thread cache; a module keeps up to ARB_SPARES (n) freed records on
    a list of its own instead. None are kept under AddressSanitizer, whose
    use-after-free checks would not see a record kept so. Compare counts
    with it as "count + 1 <= ARB_SPARES (n)": "count < 0" is a warning.

    The list is an arb_chain_t of the records' own links (the member that
    links them in their other chains while in use): ARB_SPARE_TAKE makes a
    record, ARB_SPARE_KEEP ends one, ARB_SPARE_FREE frees those kept.
*/

#ifndef ARB_SPARE_H
#define ARB_SPARE_H

#include "arb_chain.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARB_SPARE_NONE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARB_SPARE_NONE 1
#endif
#endif

#ifdef ARB_SPARE_NONE
#define ARB_SPARES(n) 0
#else
#define ARB_SPARES(n) (n)
#endif

//  A zeroed record of size bytes: the one kept last (the likeliest still
//  in the cache), or a new one. Its link is at offset.
static inline void *
arb_spare_take (arb_chain_t *spare, size_t size, size_t offset)
{
    arb_chain_link_t *link = arb_chain_last (spare);
    if (!link) {
        void *record = calloc (1, size);
        assert (record);
        return record;
    }
    arb_chain_remove (spare, link);
    void *record = arb_chain_item (link, offset);
    memset (record, 0, size);
    return record;
}

//  Keeps a record that is in no chain for the next take, if fewer than max
//  are kept; else frees it.
static inline void
arb_spare_keep (arb_chain_t *spare, void *record, arb_chain_link_t *link, size_t max)
{
    if (spare->size + 1 <= max)
        arb_chain_add_end (spare, link);
    else
        free (record);
}

//  Frees every record kept.
static inline void
arb_spare_free (arb_chain_t *spare, size_t offset)
{
    arb_chain_link_t *link;
    while ((link = arb_chain_first (spare))) {
        arb_chain_remove (spare, link);
        free (arb_chain_item (link, offset));
    }
}

#define ARB_SPARE_TAKE(spare, type, member) \
    ((type *) arb_spare_take ((spare), sizeof (type), offsetof (type, member)))
#define ARB_SPARE_KEEP(spare, record, member, max) \
    arb_spare_keep ((spare), (record), &(record)->member, (max))
#define ARB_SPARE_FREE(spare, type, member) arb_spare_free ((spare), offsetof (type, member))

#endif
