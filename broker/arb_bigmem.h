/*  arb_bigmem.h — zeroed memory for the broker's big tables, in huge pages
    when a table is big enough for them.

    The id map and the table of watches grow by doubling: each growth
    allocates a new table, rehashes into it and frees the old one, so every
    byte of the new table is a fresh page to fault in, and in random order.
    On the VMs measured a page fault costs 16 to 35 µs: one growth of the
    watches to 262,144 slots (4 MiB) held the loop 40 ms, and a producer's
    100,000 watched tasks cost 89 ms of resizes (BENCHMARKS.md, "Batched
    P2, looked at again"). A table of 512 KiB or more is mapped on its own,
    in whole 2 MiB pages aligned to 2 MiB and marked MADV_HUGEPAGE, so it
    faults in by huge pages where the kernel allows transparent huge pages
    ("madvise" or "always"): that growth took 1 to 7 ms so, and the
    resizes of the run 20 to 31 ms. A table of 512 KiB to 2 MiB costs up to
    1.5 MiB more memory so; the id map and the watches are the only users,
    and shrink back to the heap below it. Smaller tables are calloc'd; where
    the kernel has no huge pages the mapping keeps 4 KiB ones and works
    the same. With the kernel's default THP "defrag" setting a fault in
    such a mapping may compact memory to find a huge page: rare on a
    machine with memory free, and the price of one fault, not a thousand.

    Memory is given back at arb_bigmem_free, as with free: nothing is kept.
*/

#ifndef ARB_BIGMEM_H
#define ARB_BIGMEM_H

#include <stddef.h>

//  A huge page, and the size from which a table gets a mapping of them.
#define ARB_BIGMEM_HUGE ((size_t) 2 << 20)
#define ARB_BIGMEM_MIN  ((size_t) 512 << 10)

//  count * size bytes of zeros, or NULL (out of memory, or count * size
//  overflows).
void *arb_bigmem_calloc (size_t count, size_t size);

//  Frees what arb_bigmem_calloc gave for the same count and size; NULL is
//  nothing.
void arb_bigmem_free (void *mem, size_t count, size_t size);

#endif
