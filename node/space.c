/* SPDX-License-Identifier: BSD-3-Clause
 * node/space.c - looking at the storage headroom (space.h says why).
 *
 * A look is store_stat(): the map's size and use, and the file system's
 * free bytes. It is cheap but not free, so it is rate-limited.
 *
 * Not here: what is refused (node/gearman/request.c).
 */
#include "node/space.h"

#include <string.h>

#include "node/gr.h"
#include "storage/store.h"

static void look(struct gr_space *sp, bool force)
{
    struct store_stat st;
    uint64_t now = gr_now_ms();
    uint64_t map_need;
    bool ok;

    if (!force && now - sp->checked_ms < GR_SPACE_CHECK_MS) {
        return;
    }
    sp->checked_ms = now;
    sp->admitted = 0;
    if (store_stat(sp->store, &st) != 0) {
        return;
    }
    /* A map smaller than 8x the threshold (tests) keeps 1/8 free. */
    map_need = sp->min_free;
    if (map_need > st.map_size / 8) {
        map_need = st.map_size / 8;
    }
    /* Look again before a quarter of the headroom can have been
     * admitted since this look, however fast submissions come. */
    sp->recheck = map_need / 4;
    ok =
        st.map_size - (st.map_used < st.map_size ? st.map_used : st.map_size) >=
            map_need &&
        st.disk_free >= sp->min_free;
    if (ok != sp->ok) {
        if (ok) {
            GR_LOG(GR_LOG_WARN, "loop",
                   "storage headroom is back: accepting submissions");
        } else {
            GR_LOG(GR_LOG_ERROR, "loop",
                   "storage nearly full (map %llu of %llu bytes used, disk "
                   "%llu bytes free): refusing submissions",
                   (unsigned long long)st.map_used,
                   (unsigned long long)st.map_size,
                   (unsigned long long)st.disk_free);
        }
    }
    sp->ok = ok;
}

void gr_space_init(struct gr_space *sp, struct store *store, uint64_t min_free)
{
    memset(sp, 0, sizeof(*sp));
    sp->store = store;
    sp->min_free = min_free;
    sp->ok = true;
}

bool gr_space_admit(struct gr_space *sp, size_t bytes)
{
    look(sp, sp->admitted >= sp->recheck);
    sp->admitted += bytes;
    return sp->ok && !sp->peers_low;
}

void gr_space_check(struct gr_space *sp, bool force)
{
    look(sp, force);
}

void gr_space_exhausted(struct gr_space *sp)
{
    sp->ok = false;
    sp->checked_ms = gr_now_ms();
}
