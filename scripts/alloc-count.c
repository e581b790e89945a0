// LD_PRELOAD allocation counter: the one used to check that tded's real-time path allocates
// nothing. Counts malloc/calloc/realloc/posix_memalign/aligned_alloc/memalign calls
//  - in every thread of the process, readable at run time through tded_malloc_count()
//    (what `tded bench --check-alloc` reads), and
//  - per daemon thread ("tded-capture", "tded-file", "tded-engine"), printed to stderr at exit.
// Build: cc -O2 -shared -fPIC -o /tmp/alloc-count.so scripts/alloc-count.c -ldl
// Use:   LD_PRELOAD=/tmp/alloc-count.so .build/release/tded bench --check-alloc
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

static atomic_long n_capture, n_engine, n_file;
static atomic_ulong n_total;

/// Allocations counted so far in all threads (looked up by tded with dlsym).
unsigned long tded_malloc_count(void) { return atomic_load(&n_total); }
static void *(*real_malloc)(size_t), *(*real_calloc)(size_t, size_t), *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t), *(*real_memalign)(size_t, size_t);
static char bootstrap[65536];
static size_t boot_used;

static void count(void) {
    atomic_fetch_add(&n_total, 1);
    char name[17] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (strncmp(name, "tded-", 5) != 0) return;
    if (!strcmp(name, "tded-capture")) atomic_fetch_add(&n_capture, 1);
    else if (!strcmp(name, "tded-engine")) atomic_fetch_add(&n_engine, 1);
    else if (!strcmp(name, "tded-file")) atomic_fetch_add(&n_file, 1);
}

static void init(void) {
    if (real_malloc) return;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
}

void *malloc(size_t n) { init(); count(); return real_malloc(n); }
void *calloc(size_t a, size_t b) {
    if (!real_calloc) { // dlsym itself may calloc before we are initialised
        void *p = bootstrap + boot_used; boot_used += (a * b + 15) & ~15UL; memset(p, 0, a * b); return p;
    }
    count(); return real_calloc(a, b);
}
void *realloc(void *p, size_t n) { init(); count(); return real_realloc(p, n); }
int posix_memalign(void **p, size_t a, size_t n) { init(); count(); return real_posix_memalign(p, a, n); }
void *aligned_alloc(size_t a, size_t n) { init(); count(); return real_aligned_alloc(a, n); }
void *memalign(size_t a, size_t n) { init(); count(); return real_memalign(a, n); }
void free(void *p) {
    static void (*real_free)(void *);
    if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "alloc-count: tded-capture %ld, tded-file %ld, tded-engine %ld\n",
            atomic_load(&n_capture), atomic_load(&n_file), atomic_load(&n_engine));
}
