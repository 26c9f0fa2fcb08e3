/* SPDX-License-Identifier: BSD-3-Clause
 * storage/crc32c.c - CRC32C (Castagnoli, reflected polynomial 0x82F63B78),
 * and the one 64-bit hash of the project (FNV-1a, at the end).
 *
 * Why it is shaped this way: LMDB has no checksums, so every log entry
 * and job record carries a CRC32C checked on read (docs/DESIGN.md, "Storage"),
 * and a 64 MiB payload is checksummed several times on its way through
 * the node. x86-64 processors since 2008 compute CRC32C in one
 * instruction (SSE4.2 `crc32`, 8 bytes a step); store__crc32c uses it when
 * the CPU has it, checked once at run time, and otherwise software
 * slicing by 8 (eight 256-entry tables, 8 bytes a step). Both give the
 * same value; the unit test compares them at every alignment.
 *
 * The choice and the tables are made once, under pthread_once: the loop
 * and the committer thread may both be first.
 *
 * store_crc32c is the same function for node/ (store.h), which may not
 * include storage internals; store_fnv1a64 too is one function for both.
 *
 * Not here: where the CRC sits in each record (log.c, jobs.c).
 */
#include <pthread.h>

#include "storage/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#endif

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static uint32_t (*impl)(uint32_t crc, const uint8_t *p, size_t len);

/* Software: crc is the running (inverted) register. */
static uint32_t sw_update(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xffu];
        len--;
    }
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                             ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
        uint32_t hi = (uint32_t)p[4] | ((uint32_t)p[5] << 8) |
                      ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
        crc = table[7][lo & 0xffu] ^ table[6][(lo >> 8) & 0xffu] ^
              table[5][(lo >> 16) & 0xffu] ^ table[4][lo >> 24] ^
              table[3][hi & 0xffu] ^ table[2][(hi >> 8) & 0xffu] ^
              table[1][(hi >> 16) & 0xffu] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xffu];
        len--;
    }
    return crc;
}

#ifdef HAVE_X86_CRC
/* SSE4.2: the instruction takes the same reflected register. */
__attribute__((target("sse4.2"))) static uint32_t
hw_update(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;

        memcpy(&w, p, sizeof(w));
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return (uint32_t)c;
}
#endif

static void init(void)
{
    uint32_t i;
    int k;

    for (i = 0; i < 256; i++) {
        uint32_t c = i;
        for (k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        table[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        for (k = 1; k < 8; k++) {
            uint32_t prev = table[k - 1][i];
            table[k][i] = (prev >> 8) ^ table[0][prev & 0xffu];
        }
    }
    impl = sw_update;
#ifdef HAVE_X86_CRC
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        impl = hw_update;
    }
#endif
}

/* Continues crc over buf; start with crc = 0. */
uint32_t store__crc32c(uint32_t crc, const void *buf, size_t len)
{
    (void)pthread_once(&once, init);
    return ~impl(~crc, buf, len);
}

uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return store__crc32c(crc, buf, len);
}

uint32_t store__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    (void)pthread_once(&once, init);
    return ~sw_update(~crc, buf, len);
}

bool store__crc32c_hw(void)
{
    (void)pthread_once(&once, init);
    return impl != sw_update;
}

/* FNV-1a: one multiply per byte, no tables; good enough to spread short
 * keys (payloads of a unique "-", member names), and fixed for good. */
uint64_t store_fnv1a64(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    return h;
}
