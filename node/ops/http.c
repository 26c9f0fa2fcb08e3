/* SPDX-License-Identifier: BSD-3-Clause
 * node/ops/http.c - see http.h. libevent's evhttp does the protocol.
 */
#include "node/ops/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "node/gr.h"

struct ops_http {
    struct evhttp *http;
    const struct ops_sources *src;
};

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct ops_http *o = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *q = uri != NULL ? strchr(uri, '?') : NULL;
    size_t len = uri == NULL ? 0 : q != NULL ? (size_t)(q - uri) : strlen(uri);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *body = evbuffer_new();
    const char *why;

    if (body == NULL) {
        evhttp_send_error(req, 500, "Out of memory");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evbuffer_add_printf(body, "only GET and HEAD\n");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        reply(req, 405, "Method Not Allowed", "text/plain", body);
    } else if (len == 8 && memcmp(uri, "/metrics", 8) == 0) {
        int rv = ops_metrics_format(o->src, body);

        if (rv != 0) {
            evbuffer_drain(body, evbuffer_get_length(body));
            evbuffer_add_printf(body, "metrics unavailable: %s\n",
                                rv == GR_ENOMEM ? "out of memory"
                                                : "the store cannot be read");
            reply(req, 500, "Internal Server Error", "text/plain", body);
        } else {
            reply(req, 200, "OK", "text/plain; version=0.0.4", body);
        }
    } else if (len == 7 && memcmp(uri, "/health", 7) == 0) {
        bool ok = ops_healthy(o->src, &why);

        evbuffer_add_printf(body, "%s\n", why);
        reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
              "text/plain", body);
    } else {
        evbuffer_add_printf(body, "not found: /metrics and /health are\n");
        reply(req, 404, "Not Found", "text/plain", body);
    }
    evbuffer_free(body);
}

struct ops_http *ops_http_start(struct event_base *base, const char *host,
                                uint16_t port, const struct ops_sources *src,
                                char *errmsg, size_t errmsg_len)
{
    struct ops_http *o = gr_calloc(1, sizeof(*o));

    if (o == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return NULL;
    }
    o->src = src;
    o->http = evhttp_new(base);
    if (o->http == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        gr_free(o);
        return NULL;
    }
    evhttp_set_allowed_methods(o->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(o->http, 8192);
    evhttp_set_max_body_size(o->http, 4096);
    evhttp_set_timeout(o->http, 10);
    evhttp_set_gencb(o->http, on_request, o);
    if (evhttp_bind_socket_with_handle(o->http, host, port) == NULL) {
        snprintf(errmsg, errmsg_len, "cannot listen for HTTP on %s:%u: %s",
                 host, (unsigned)port, strerror(errno));
        evhttp_free(o->http);
        gr_free(o);
        return NULL;
    }
    return o;
}

void ops_http_stop(struct ops_http *o)
{
    if (o == NULL) {
        return;
    }
    evhttp_free(o->http);
    gr_free(o);
}
