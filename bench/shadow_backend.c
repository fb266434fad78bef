/* A misbehaving mirror backend for the benchmarks, in C so that it costs the shared CPU (wrk's)
 * next to nothing: "slow" answers every request after DELAY_MS milliseconds, "blackhole" reads
 * and never answers. Keep-alive, Content-Length bodies, any number of connections (epoll).
 * Prints "requests=N" on SIGTERM/SIGINT. bench/vs_nginx.py compiles it with the system's cc and
 * falls back to bench/shadow_backends.py (Python) when there is none.
 *
 * usage: shadow_backend slow|blackhole PORT [DELAY_MS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define BUF 65536
static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";

struct conn {
    unsigned gen;      /* bumped when the fd is closed: pending replies for an old gen are dropped */
    size_t len;        /* bytes buffered */
    long body_left;    /* body bytes of the current request still to skip */
    char *buf;
};
struct pending { int fd; unsigned gen; long long due; };

static struct conn conns[MAX_FDS];
static struct pending *queue;  /* FIFO: with one delay for all, arrival order is due order */
static size_t q_head, q_tail, q_cap;
static volatile sig_atomic_t stop;
static long long requests;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

static void push(int fd, unsigned gen, long long due) {
    if (q_tail == q_cap) {
        if (q_head > 0) {
            memmove(queue, queue + q_head, (q_tail - q_head) * sizeof *queue);
            q_tail -= q_head;
            q_head = 0;
        } else {
            q_cap = q_cap ? 2 * q_cap : 4096;
            queue = realloc(queue, q_cap * sizeof *queue);
            if (!queue) { perror("realloc"); exit(1); }
        }
    }
    queue[q_tail++] = (struct pending){fd, gen, due};
}

static void close_conn(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    conns[fd].gen++;
    conns[fd].len = 0;
    conns[fd].body_left = 0;
}

/* Consume complete requests from the buffer; returns how many were complete. */
static int consume(struct conn *c) {
    int n = 0;
    for (;;) {
        if (c->body_left > 0) {
            long take = (long)c->len < c->body_left ? (long)c->len : c->body_left;
            memmove(c->buf, c->buf + take, c->len - take);
            c->len -= take;
            c->body_left -= take;
            if (c->body_left > 0) return n;
            n++;
            continue;
        }
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return n;
        size_t head = (size_t)(end - c->buf) + 4;
        long length = 0;
        for (char *p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                length = strtol(p + 15, NULL, 10);
                break;
            }
        }
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        if (length > 0) {
            c->body_left = length;
            continue;
        }
        n++;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s slow|blackhole PORT [DELAY_MS]\n", argv[0]);
        return 2;
    }
    int blackhole = strcmp(argv[1], "blackhole") == 0;
    int port = atoi(argv[2]);
    long long delay = argc > 3 ? atoll(argv[3]) : 200;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 4096)) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event events[512];

    while (!stop) {
        int timeout = -1;
        if (q_head < q_tail) {
            long long wait = queue[q_head].due - now_ms();
            timeout = wait > 0 ? (int)wait : 0;
        }
        int n = epoll_wait(ep, events, 512, timeout);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FDS) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!conns[c].buf) conns[c].buf = malloc(BUF);
                    conns[c].len = 0;
                    conns[c].body_left = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            struct conn *c = &conns[fd];
            ssize_t got = read(fd, c->buf + c->len, BUF - c->len);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close_conn(ep, fd);
                continue;
            }
            c->len += (size_t)got;
            int done = consume(c);
            if (c->len == BUF) c->len = 0; /* a head larger than the buffer: drop it */
            requests += done;
            if (!blackhole)
                for (int k = 0; k < done; k++) push(fd, c->gen, now_ms() + delay);
        }
        long long t = now_ms();
        while (q_head < q_tail && queue[q_head].due <= t) {
            struct pending p = queue[q_head++];
            if (conns[p.fd].gen == p.gen) {
                if (write(p.fd, RESPONSE, sizeof RESPONSE - 1) < 0 && errno != EAGAIN) close_conn(ep, p.fd);
            }
        }
    }
    printf("requests=%lld\n", requests);
    return 0;
}
