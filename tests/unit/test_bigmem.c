/*  test_bigmem.c — zeroed memory for big tables (arb_bigmem): small ones
    from calloc, big ones a mapping of their own, aligned to 2 MiB and
    advised to use huge pages. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arb_bigmem.h"

//  Whether every byte of mem is zero.
static bool
s_zero (const uint8_t *mem, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        if (mem[i])
            return false;
    return true;
}

//  The mapping that holds mem in /proc/self/smaps (whole or merged with a
//  neighbour of the same flags): its start (0: none holds it), and its
//  VmFlags line in flags (empty if none).
static uintptr_t
s_mapping_of (const void *mem, char *flags, size_t size)
{
    flags[0] = 0;
    FILE *smaps = fopen ("/proc/self/smaps", "r");
    assert_non_null (smaps);
    char line[512];
    uintptr_t found = 0;
    bool done = false;
    while (!done && fgets (line, sizeof (line), smaps)) {
        unsigned long start, end;
        if (sscanf (line, "%lx-%lx ", &start, &end) == 2) {
            done = found != 0;  //  the next mapping: ours had no VmFlags line
            if (!done && start <= (uintptr_t) mem && (uintptr_t) mem < end)
                found = start;
        }
        else if (found && strncmp (line, "VmFlags:", 8) == 0) {
            snprintf (flags, size, "%s", line + 8);
            done = true;
        }
    }
    fclose (smaps);
    return found;
}

//  The VmFlags line of the mapping that holds mem; false if none holds it.
static bool
s_flags_of (const void *mem, char *flags, size_t size)
{
    return s_mapping_of (mem, flags, size) && flags[0];
}

static void
test_small_tables_are_zeroed_heap_memory (void **state)
{
    (void) state;
    uint64_t *table = (uint64_t *) arb_bigmem_calloc (1000, sizeof (uint64_t));
    assert_non_null (table);
    assert_true (s_zero ((const uint8_t *) table, 1000 * sizeof (uint64_t)));
    table[999] = 7;
    arb_bigmem_free (table, 1000, sizeof (uint64_t));
    arb_bigmem_free (NULL, 1000, sizeof (uint64_t));
}

//  A table of 512 KiB and more, even one not a whole number of huge pages:
//  zeroed, writable to its last byte, aligned to 2 MiB, its own mapping
//  marked for huge pages (VmFlags "hg") where the kernel has them.
static void
test_big_tables_are_aligned_huge_page_mappings (void **state)
{
    (void) state;
    size_t counts[] = {ARB_BIGMEM_MIN / 16, ARB_BIGMEM_HUGE / 16, 262145};
    for (size_t k = 0; k < 3; k++) {
        size_t bytes = counts[k] * 16;
        uint8_t *table = (uint8_t *) arb_bigmem_calloc (counts[k], 16);
        assert_non_null (table);
        assert_int_equal ((uintptr_t) table % ARB_BIGMEM_HUGE, 0);
        assert_true (s_zero (table, bytes));
        memset (table, 0xab, bytes);
        assert_int_equal (table[bytes - 1], 0xab);
        char flags[512];
        assert_true (s_flags_of (table, flags, sizeof (flags)));
        if (access ("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
            assert_non_null (strstr (flags, " hg"));
        arb_bigmem_free (table, counts[k], 16);
        //  unmapped whole: nothing of this thread maps there again between
        assert_false (s_flags_of (table, flags, sizeof (flags)));
        assert_false (s_flags_of (table + bytes - 1, flags, sizeof (flags)));
    }
}

//  A size whose product overflows is refused, not wrapped.
static void
test_an_overflowing_size_is_refused (void **state)
{
    (void) state;
    assert_null (arb_bigmem_calloc (SIZE_MAX / 8, 16));
}

//  Whether mem's bytes are 0, 1, 2, ... (mod 251) up to bytes.
static bool
s_counted (const uint8_t *mem, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        if (mem[i] != (uint8_t) (i % 251))
            return false;
    return true;
}

//  A buffer that grows by doubling from the heap into mappings of its own
//  and shrinks back: its bytes kept at each step (the first of the two
//  sizes'), the new ones zero, a mapping aligned to 2 MiB.
static void
test_a_buffer_grows_and_shrinks_across_the_threshold (void **state)
{
    (void) state;
    //  grown from the heap, across, then by moving its pages; shrunk in
    //  place (what stays of a huge page past the new end is zeroed, and
    //  seen as zeros when it grows again), then back to the heap
    size_t sizes[] = {4096,           256 << 10, ARB_BIGMEM_MIN, 4u << 20, 16u << 20,
                      (3u << 20) + 1, 8u << 20,  2u << 20,       64 << 10};
    size_t old = 0;
    uint8_t *mem = NULL;
    for (size_t k = 0; k < sizeof (sizes) / sizeof (sizes[0]); k++) {
        uint8_t *grown = (uint8_t *) arb_bigmem_realloc (mem, old, sizes[k]);
        assert_non_null (grown);
        size_t kept = old < sizes[k] ? old : sizes[k];
        assert_true (s_counted (grown, kept));
        if (sizes[k] > old)
            assert_true (s_zero (grown + old, sizes[k] - old));
        if (sizes[k] >= ARB_BIGMEM_MIN) {
            assert_int_equal ((uintptr_t) grown % ARB_BIGMEM_HUGE, 0);
            //  one mapping from its first byte to its last: a growth that
            //  left two would make the next one's mremap span both, which
            //  kernels before 6.17 refuse
            char flags[512];
            assert_int_not_equal (s_mapping_of (grown, flags, sizeof (flags)), 0);
            assert_int_equal (s_mapping_of (grown, flags, sizeof (flags)),
                              s_mapping_of (grown + sizes[k] - 1, flags, sizeof (flags)));
            assert_true (s_flags_of (grown + sizes[k] - 1, flags, sizeof (flags)));
            if (access ("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
                assert_non_null (strstr (flags, " hg"));
        }
        for (size_t i = 0; i < sizes[k]; i++)
            grown[i] = (uint8_t) (i % 251);
        mem = grown;
        old = sizes[k];
    }
    arb_bigmem_free (mem, old, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_small_tables_are_zeroed_heap_memory),
        cmocka_unit_test (test_big_tables_are_aligned_huge_page_mappings),
        cmocka_unit_test (test_an_overflowing_size_is_refused),
        cmocka_unit_test (test_a_buffer_grows_and_shrinks_across_the_threshold),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
