/* SPDX-License-Identifier: BSD-3-Clause
 * node/main.c - gearraftd: parse the flags, daemonise if asked, write the
 * pid file, open the log, and run the server loop until a signal or an
 * admin shutdown.
 *
 * Exit codes: 0 clean shutdown, 1 start-up failure (message on stderr or
 * in the log), 2 bad command line (usage error on stderr), or a data
 * directory the flags do not match (message on stderr too).
 *
 * Not here: everything the server does (loop.c and the parts it owns).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "node/config.h"
#include "node/gr.h"
#include "node/loop.h"

#ifndef GR_VERSION
#define GR_VERSION "0.0.0"
#endif

static int write_pid_file(const char *path)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL) {
        GR_LOG(GR_LOG_ERROR, "main", "writing pid file %s: %s", path,
               strerror(errno));
        return GR_EIO;
    }
    fprintf(fp, "%ld\n", (long)getpid());
    if (fclose(fp) != 0) {
        return GR_EIO;
    }
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid == -1) {
        return GR_EIO;
    }
    if (pid > 0) {
        _exit(0);
    }
    if (setsid() == -1) {
        return GR_EIO;
    }
    pid = fork();
    if (pid == -1) {
        return GR_EIO;
    }
    if (pid > 0) {
        _exit(0);
    }
    fd = open("/dev/null", O_RDWR);
    if (fd != -1) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct gr_config cfg;
    struct gr_server srv;
    struct event_base *base;
    char errmsg[512];
    int rv;

    gr_config_defaults(&cfg);
    errmsg[0] = '\0';
    if (gr_config_parse(&cfg, argc, argv, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n",
                argv[0], errmsg, argv[0]);
        return 2;
    }
    if (cfg.show_help) {
        gr_config_help(stdout, argv[0]);
        return 0;
    }
    if (cfg.show_version) {
        printf("gearraftd %s\n", GR_VERSION);
        return 0;
    }
    gr_log_threshold = cfg.verbose;
    gr_log_set_node(cfg.cluster.self_name);
    if (gr_log_open(cfg.log_file[0] != '\0' ? cfg.log_file : NULL, errmsg,
                    sizeof(errmsg)) != 0) {
        fprintf(stderr, "%s: %s\n", argv[0], errmsg);
        return 1;
    }
    if (cfg.daemon && daemonize() != 0) {
        fprintf(stderr, "%s: cannot daemonize: %s\n", argv[0], strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.pid_file[0] != '\0' && write_pid_file(cfg.pid_file) != 0) {
        fprintf(stderr, "%s: cannot write pid file %s\n", argv[0],
                cfg.pid_file);
        return 1;
    }
    /* The committer thread wakes the loop (event_active): the base must
     * be thread-aware. */
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "%s: libevent without thread support\n", argv[0]);
        return 1;
    }
    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "%s: cannot create the event loop\n", argv[0]);
        return 1;
    }
    rv = gr_server_init(&srv, &cfg, base);
    if (rv != 0) {
        GR_LOG(GR_LOG_FATAL, "main", "cannot start: %s", srv.errmsg);
        if (cfg.log_file[0] != '\0' && strcmp(cfg.log_file, "stderr") != 0) {
            fprintf(stderr, "%s: cannot start: %s\n", argv[0], srv.errmsg);
        }
        event_base_free(base);
        return rv == GR_EUSAGE ? 2 : 1;
    }
    rv = gr_server_run(&srv);
    gr_server_close(&srv);
    event_base_free(base);
    if (cfg.pid_file[0] != '\0') {
        unlink(cfg.pid_file);
    }
    GR_LOG(GR_LOG_NOTICE, "main", "stopped");
    gr_log_close();
    return rv == 0 ? 0 : 1;
}
