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
    ("madvise" or "always"): the resizes of that run took 9 ms in all, the
    longest 1.9 ms. Smaller tables are calloc'd; where the kernel has no
    huge pages the mapping keeps 4 KiB ones and works the same.

    What it costs: with huge pages on, a table of 512 KiB to 2 MiB holds a
    whole 2 MiB page, up to 1.5 MiB more than its size (the id map from
    about 24,600 tasks in memory, which it keeps once grown; the watches
    from about 8,200, which shrink back to the heap under 4,096). Larger
    tables are whole pages already. And with the kernel's THP "defrag" at
    its default ("madvise"), a fault in such a mapping may reclaim and
    compact memory to find a huge page, synchronously, in the loop: on a
    machine short of free memory, or fragmented after a long uptime, that
    fault waits for it (not measured here: the machines measured had
    memory free). Where that matters, THP "enabled" or "defrag" set to
    "never" turns it off (/sys/kernel/mm/transparent_hugepage/).

    The task log's buffers (the rows kept, their index, the drops, and a
    checkpoint's copy for the saver) are made the same way
    (arb_bigmem_realloc): they grow by doubling to tens of MiB, and their
    4 KiB faults were most of the loop's page faults in a P1 of 100,000
    tasks (BENCHMARKS.md, "A STATUS from the row the log holds, and the
    log's buffers in huge pages").

    2 MiB is the huge page of x86-64 and of arm64 with 4 KiB pages; with
    64 KiB base pages arm64's is 512 MiB, and these mappings simply stay
    small-paged. No state: callable from any thread (the loop, and the
    saver's thread, which frees a checkpoint's copy).

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

//  What arb_bigmem_calloc (old_bytes, 1) gave (or NULL), as new_bytes:
//  the first of the two sizes' bytes copied, the rest zeros, the old one
//  freed. NULL (the old one left as it was) if out of memory. For the
//  buffers that grow by doubling (the task log's rows and their index): a
//  realloc past the heap's mapping threshold gets 4 KiB pages, each a
//  fault when first written, and the rows of a checkpoint's worth
//  (16 MiB) were thousands of them.
void *arb_bigmem_realloc (void *mem, size_t old_bytes, size_t new_bytes);

#endif
