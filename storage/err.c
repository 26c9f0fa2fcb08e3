/* SPDX-License-Identifier: BSD-3-Clause
 * storage/err.c - error codes: the X-macro table of store.h turned into
 * messages, and LMDB/errno codes mapped onto it.
 *
 * Why it is shaped this way: codes are for control flow, messages for
 * people (docs/DESIGN.md, "Conventions"). LMDB codes never leave storage/:
 * MDB_MAP_FULL is STORE_ENOSPC (refuse new work, stay up), MDB_CORRUPTED and
 * MDB_PANIC are STORE_ECORRUPT (fatal).
 *
 * Not here: the per-store errmsg text of a particular failure (callers
 * fill it with store__errmsgf).
 */
#include <errno.h>
#include <stdarg.h>

#include "storage/internal.h"

const char *store_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define STORE__ERR_CASE(name, value, text)                                     \
    case (value):                                                              \
        return (text);
        STORE_ERRORS(STORE__ERR_CASE)
#undef STORE__ERR_CASE
    default:
        return "unknown storage error";
    }
}

int store__mdb_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return STORE_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_PAGE_FULL:
    case ENOSPC:
    case EDQUOT:
        return STORE_ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PANIC:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return STORE_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return STORE_EVERSION;
    case ENOMEM:
        return STORE_ENOMEM;
    case EINVAL:
    case MDB_BAD_VALSIZE:
        return STORE_EINVAL;
    default:
        return STORE_EIO;
    }
}

void store__errmsgf(struct store *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
}

const char *store_errmsg(const struct store *s)
{
    return s->errmsg;
}
