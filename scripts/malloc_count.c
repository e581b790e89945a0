/* malloc_count.c: LD_PRELOAD shim counting heap allocations, for `tded bench --check-alloc`.
 *   cc -O2 -shared -fPIC -o /tmp/libmalloc_count.so scripts/malloc_count.c -ldl
 *   LD_PRELOAD=/tmp/libmalloc_count.so .build/release/tded bench --check-alloc
 * Counts calls to malloc/calloc/realloc/posix_memalign/aligned_alloc/memalign in this process
 * (all threads); tded reads the counter through tded_malloc_count(). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong count;

unsigned long tded_malloc_count(void) { return atomic_load(&count); }

void *malloc(size_t n) { atomic_fetch_add(&count, 1); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add(&count, 1); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&count, 1); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    atomic_fetch_add(&count, 1);
    void *p = __libc_memalign(a, n);
    if (!p) return 12; *out = p; return 0;
}
