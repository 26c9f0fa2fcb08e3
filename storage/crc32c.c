/* SPDX-License-Identifier: BSD-3-Clause
 * storage/crc32c.c - CRC32C (Castagnoli, reflected polynomial 0x82F63B78)
 * in software, slicing by 8.
 *
 * Why it is shaped this way: LMDB has no checksums, so every log entry
 * and job record carries a CRC32C checked on read (DESIGN.md "Storage").
 * Slicing by 8 handles eight bytes per step with eight 256-entry tables,
 * several times faster than one table, which matters for large payloads.
 * The tables are computed once, on first use.
 *
 * Not here: where the CRC sits in each record (log.c, jobs.c).
 */
#include "storage/internal.h"

static uint32_t table[8][256];
static bool table_ready;

static void table_init(void)
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
    table_ready = true;
}

/* Continues crc over buf; start with crc = 0. */
uint32_t store__crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    if (!table_ready) {
        table_init();
    }
    crc = ~crc;
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
    return ~crc;
}
