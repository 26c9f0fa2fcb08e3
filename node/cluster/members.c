/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/members.c - member names, ids and peer addresses, and the
 * --initial-cluster list (members.h says why ids are hashes of names).
 *
 * Addresses are checked as text only: a host name is resolved when a
 * peer dials it, since the address behind it may change between runs.
 * IPv6 addresses go in brackets, so the last ':' always starts the port.
 *
 * Not here: the member table on disk (storage/members.c).
 */
#include "node/cluster/members.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "node/gr.h"

#define LABEL_MAX_LEN 63 /* bytes of a label of a DNS name */

uint64_t gr_member_id(const char *name)
{
    uint64_t id = store_fnv1a64(name, strlen(name));

    return id != 0 ? id : store_fnv1a64(NULL, 0);
}

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool gr_name_is_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == STORE_NODE_NAME_MAX || !is_name_char(s[i])) {
            return false;
        }
    }
    return i > 0;
}

/* A host name: dot-separated labels of letters, digits, '_' and '-', no
 * label empty, over 63 bytes or with a '-' at either end (the address's
 * limit keeps the whole within a DNS name's 253 bytes). All digits and
 * dots is an IPv4 address, which must then be a valid one. */
static const char *host_name_why(const char *h, size_t len)
{
    struct in_addr a4;
    bool numeric = true;
    size_t label = 0;
    size_t i;

    for (i = 0; i <= len; i++) {
        char c = i < len ? h[i] : '.';

        if (c == '.') {
            if (label == 0 || h[i - 1] == '-' || h[i - label] == '-') {
                return "bad host name";
            }
            label = 0;
            continue;
        }
        if (!is_name_char(c) || label == LABEL_MAX_LEN) {
            return "bad host name";
        }
        numeric &= c >= '0' && c <= '9';
        label++;
    }
    if (numeric && inet_pton(AF_INET, h, &a4) != 1) {
        return "bad IPv4 address";
    }
    return NULL;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i == 5) {
            return GR_EINVAL;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (i == 0 || v == 0 || v > 65535) {
        return GR_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int gr_peer_addr_parse(const char *s, char *host, uint16_t *port,
                       const char **why)
{
    char h[STORE_HOST_MAX + 1];
    struct in6_addr a6;
    const char *colon;
    const char *end;
    size_t len;

    if (strnlen(s, GR_PEER_ADDR_MAX + 1) > GR_PEER_ADDR_MAX) {
        *why = "address over 255 bytes";
        return GR_EINVAL;
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            *why = "expected [IPV6]:PORT";
            return GR_EINVAL;
        }
        s++;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected HOST:PORT (the port is required)";
            return GR_EINVAL;
        }
        end = colon;
    }
    len = (size_t)(end - s);
    if (len == 0) {
        *why = "no host";
        return GR_EINVAL;
    }
    memcpy(h, s, len);
    h[len] = '\0';
    if (end != colon) {
        if (inet_pton(AF_INET6, h, &a6) != 1) {
            *why = "bad IPv6 address";
            return GR_EINVAL;
        }
    } else if (memchr(h, ':', len) != NULL) {
        *why = "an IPv6 address goes in brackets: [IPV6]:PORT";
        return GR_EINVAL;
    } else if ((*why = host_name_why(h, len)) != NULL) {
        return GR_EINVAL;
    }
    if (parse_port(colon + 1, port) != 0) {
        *why = "expected a port 1-65535";
        return GR_EINVAL;
    }
    memcpy(host, h, len + 1);
    return 0;
}

size_t gr_peer_addr_format(const char *host, uint16_t port, char *out,
                           size_t out_len)
{
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, out_len, "%s%s%s:%u", v6 ? "[" : "", host,
                     v6 ? "]" : "", (unsigned)port);

    return n < 0 ? 0 : (size_t)n;
}

/* One "NAME=HOST:PORT" of the list, at most len bytes of item. */
static int parse_one(const char *item, size_t len, struct store_member *m,
                     char *errmsg, size_t errmsg_len)
{
    char buf[STORE_NODE_NAME_MAX + 1 + GR_PEER_ADDR_MAX + 1];
    const char *why = NULL;
    char *eq;

    if (len >= sizeof(buf)) {
        snprintf(errmsg, errmsg_len, "member '%.40s...': too long", item);
        return GR_EINVAL;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    eq = strchr(buf, '=');
    if (eq == NULL) {
        snprintf(errmsg, errmsg_len, "member '%s': expected NAME=HOST:PORT",
                 buf);
        return GR_EINVAL;
    }
    *eq = '\0';
    if (!gr_name_is_valid(buf)) {
        snprintf(errmsg, errmsg_len,
                 "member name '%s': expected 1-%d bytes of A-Z a-z 0-9 . _ -",
                 buf, STORE_NODE_NAME_MAX);
        return GR_EINVAL;
    }
    memset(m, 0, sizeof(*m));
    if (gr_peer_addr_parse(eq + 1, m->host, &m->port, &why) != 0) {
        snprintf(errmsg, errmsg_len, "member %s's address '%s': %s", buf,
                 eq + 1, why);
        return GR_EINVAL;
    }
    memcpy(m->name, buf, (size_t)(eq - buf) + 1);
    m->id = gr_member_id(m->name);
    return 0;
}

int gr_members_parse(const char *list, struct store_member *v, size_t *n,
                     char *errmsg, size_t errmsg_len)
{
    const char *p = list;
    size_t count = 0;
    int rv;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (len == 0) {
            snprintf(errmsg, errmsg_len,
                     "empty member: expected NAME=HOST:PORT,...");
            return GR_EINVAL;
        }
        if (count == STORE_MEMBERS_MAX) {
            snprintf(errmsg, errmsg_len, "more than %d members",
                     STORE_MEMBERS_MAX);
            return GR_EINVAL;
        }
        rv = parse_one(p, len, &v[count], errmsg, errmsg_len);
        if (rv != 0) {
            return rv;
        }
        count++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    *n = count;
    return gr_members_check(v, count, errmsg, errmsg_len);
}

int gr_members_check(const struct store_member *v, size_t n, char *errmsg,
                     size_t errmsg_len)
{
    size_t i;
    size_t j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(v[i].name, v[j].name) == 0) {
                snprintf(errmsg, errmsg_len, "member '%s' named twice",
                         v[i].name);
                return GR_EINVAL;
            }
            if (v[i].id == v[j].id) {
                snprintf(errmsg, errmsg_len,
                         "members '%s' and '%s' have the same id (%llu): "
                         "rename one",
                         v[j].name, v[i].name, (unsigned long long)v[i].id);
                return GR_EINVAL;
            }
        }
    }
    return 0;
}

size_t gr_members_format(const struct store_member *v, size_t n, char *out,
                         size_t out_len)
{
    size_t used = 0;
    size_t i;

    if (out_len > 0) {
        out[0] = '\0';
    }
    for (i = 0; i < n; i++) {
        size_t room = used < out_len ? out_len - used : 0;
        int k = snprintf(room > 0 ? out + used : NULL, room,
                         "%s%s=", i > 0 ? "," : "", v[i].name);

        used += k < 0 ? 0 : (size_t)k;
        room = used < out_len ? out_len - used : 0;
        used += gr_peer_addr_format(v[i].host, v[i].port,
                                    room > 0 ? out + used : NULL, room);
    }
    return used;
}

const struct store_member *gr_members_find(const struct store_member *v,
                                           size_t n, uint64_t id)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i].id == id) {
            return &v[i];
        }
    }
    return NULL;
}
