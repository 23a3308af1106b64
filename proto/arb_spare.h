/*  arb_spare.h — how many freed records a module keeps for its next ones.

    A record made and freed for every task or request costs the
    allocator's round trip each time, and a batch of them outruns glibc's
    per-thread cache; a module keeps up to ARB_SPARES (n) freed records on
    a list of its own instead. None are kept under AddressSanitizer, whose
    use-after-free checks would not see a record kept so. Compare counts
    with it as "count + 1 <= ARB_SPARES (n)": "count < 0" is a warning.
*/

#ifndef ARB_SPARE_H
#define ARB_SPARE_H

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

#endif
