/* rtp-endpoint: the two media endpoints of bridge-bench.sh's calls, in one process.
 *
 * SIPp handles the signalling; this program owns the RTP ports the SIPp SDPs advertise
 * (side A = caller, ADDR_A:PORT_A + STEP*i; side B = contact center, ADDR_B:PORT_B + STEP*i,
 * i < N, which is what SIPp's [auto_media_port] hands out) on ordinary UDP sockets.
 * When a socket gets its first packet of a call (a one-packet pcap "kick" SIPp plays after
 * the ACK, or the other side's stream relayed by holdless) it answers with a G.711 stream
 * to the packet's source, symmetric RTP: COUNT packets of 240 bytes PCMA (12-byte header),
 * one every PTIME ms, like g711a.pcap (236 packets, 30 ms). So every call carries RTP both
 * ways on both legs, and no packet ever comes back to SIPp's raw pcap sockets (see the
 * README: returning RTP to a SIPp pcap player's address costs O(calls^2) kernel work).
 *
 * Sends are timed with epoll_pwait2 (ns timeouts), so streams go out spread in time as
 * SIPp's per-call pcap players send them, not in 1-ms bursts.
 * Each payload starts with the send time (CLOCK_REALTIME ns) and a magic; the receiver takes
 * the kernel's receive timestamp (SO_TIMESTAMPNS), so latency = kernel rx - user send, of
 * the whole path (both loopback hops and the relay), in 1 us buckets.
 *
 * usage: rtp-endpoint -a ADDR_A -A PORT_A -b ADDR_B -B PORT_B [-n N=2500] [-s STEP=4]
 *                     [-c COUNT=236] [-p PTIME_MS=30] -t SECONDS [-k KICK]
 *   -k KICK: probe mode, no relay: the first KICK side-A sockets start streaming straight to
 *            their side-B twin (spread over the first second); gives the no-relay latency.
 * Prints one line a second (t, packets received/sent per side, active streams) and a final
 * "summary:" line. Stops by itself after SECONDS (or on SIGINT/SIGTERM).
 * Build: gcc -O2 -o rtp-endpoint rtp-endpoint.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x484c424eu /* "HLBN" */
#define PAYLOAD 240
#define HBUCKETS 200000 /* 1 us buckets up to 200 ms */

struct stream {
    int fd;
    int side;
    int active;
    int done;
    struct sockaddr_in peer;     /* where the stream goes (the source of the first packet) */
    uint64_t next_ns;            /* next send (CLOCK_MONOTONIC) */
    uint64_t last_rx_ns;
    uint64_t done_ns;            /* when the last stream ended */
    int sent;
    uint16_t seq;
    uint32_t ts, ssrc;
    int heap_pos;
};

static struct stream *S;
static int NS;
static struct stream **heap;
static int heap_n;
static volatile sig_atomic_t stop;
static uint32_t hist[HBUCKETS + 1];
static uint64_t lat_n, lat_sum_us;
static uint64_t rx[2], tx[2], rx_kick[2], rx_foreign[2], started[2], completed[2], send_err;
static int count = 236, ptime_ms = 30;

static uint64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}
static uint64_t real_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static void hswap(int a, int b) {
    struct stream *t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_pos = a;
    heap[b]->heap_pos = b;
}
static void hup(int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (heap[p]->next_ns <= heap[i]->next_ns) break;
        hswap(p, i);
        i = p;
    }
}
static void hdown(int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && heap[l]->next_ns < heap[m]->next_ns) m = l;
        if (r < heap_n && heap[r]->next_ns < heap[m]->next_ns) m = r;
        if (m == i) break;
        hswap(i, m);
        i = m;
    }
}
static void hpush(struct stream *s) {
    heap[heap_n] = s;
    s->heap_pos = heap_n++;
    hup(s->heap_pos);
}
static void hpop(void) {
    heap[0]->heap_pos = -1;
    heap_n--;
    if (heap_n > 0) {
        heap[0] = heap[heap_n];
        heap[0]->heap_pos = 0;
        hdown(0);
    }
}

static void start_stream(struct stream *s, const struct sockaddr_in *to, uint64_t now) {
    s->peer = *to;
    s->active = 1;
    s->done = 0;
    s->sent = 0;
    s->seq = (uint16_t)rand();
    s->ts = (uint32_t)rand();
    s->ssrc = (uint32_t)rand() ^ (uint32_t)(s - S);
    s->next_ns = now;
    started[s->side]++;
    hpush(s);
}

static void send_one(struct stream *s) {
    unsigned char b[12 + PAYLOAD];
    b[0] = 0x80;
    b[1] = (s->sent == 0 ? 0x80 : 0) | 8; /* PCMA, marker on the first */
    b[2] = s->seq >> 8;
    b[3] = s->seq & 0xff;
    b[4] = s->ts >> 24; b[5] = s->ts >> 16; b[6] = s->ts >> 8; b[7] = s->ts;
    b[8] = s->ssrc >> 24; b[9] = s->ssrc >> 16; b[10] = s->ssrc >> 8; b[11] = s->ssrc;
    memset(b + 12, 0xd5, PAYLOAD);
    uint32_t magic = MAGIC;
    uint64_t now = real_ns();
    memcpy(b + 12, &now, 8);
    memcpy(b + 20, &magic, 4);
    if (sendto(s->fd, b, sizeof b, 0, (struct sockaddr *)&s->peer, sizeof s->peer) < 0)
        send_err++;
    else
        tx[s->side]++;
    s->seq++;
    s->ts += PAYLOAD;
    s->sent++;
}

static void on_packet(struct stream *s, const unsigned char *b, ssize_t n, const struct sockaddr_in *src,
                      uint64_t rx_real, uint64_t now) {
    uint32_t magic = 0;
    if (n >= 24) memcpy(&magic, b + 20, 4);
    if (n >= 24 && magic == MAGIC) {
        uint64_t t;
        memcpy(&t, b + 12, 8);
        if (rx_real >= t) {
            uint64_t us = (rx_real - t) / 1000;
            hist[us < HBUCKETS ? us : HBUCKETS]++;
            lat_n++;
            lat_sum_us += us;
        }
        rx[s->side]++;
    } else {
        rx_kick[s->side]++;
    }
    int same = s->peer.sin_port == src->sin_port && s->peer.sin_addr.s_addr == src->sin_addr.s_addr;
    /* A new call on this port: first packet ever, or from a new source once the old stream
     * is finished, or from the same source 2 s after our stream ended (SIPp reuses a port
     * 2500 calls later; the peer's tail packets of the old call, even late ones from an
     * overloaded box, must not restart it). */
    if (!s->active && (!s->done || !same || now - s->done_ns > 2000000000ull))
        start_stream(s, src, now);
    else if (!same)
        rx_foreign[s->side]++;
    s->last_rx_ns = now;
}

static int open_sock(const char *ip, int port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "bind %s:%d: %s\n", ip, port, strerror(errno));
        exit(1);
    }
    return fd;
}

static void on_sig(int sig) { (void)sig; stop = 1; }

static uint64_t pct(double p) {
    if (!lat_n) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)(lat_n - 1)) + 1, acc = 0;
    for (int i = 0; i <= HBUCKETS; i++) {
        acc += hist[i];
        if (acc >= want) return i;
    }
    return HBUCKETS;
}

int main(int argc, char **argv) {
    const char *ia = "127.0.0.2", *ib = "127.0.0.3";
    int pa = 10000, pb = 20000, n = 2500, step = 4, secs = 0, kick = 0, o;
    while ((o = getopt(argc, argv, "a:A:b:B:n:s:c:p:t:k:")) != -1) {
        switch (o) {
        case 'a': ia = optarg; break;
        case 'A': pa = atoi(optarg); break;
        case 'b': ib = optarg; break;
        case 'B': pb = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 's': step = atoi(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'p': ptime_ms = atoi(optarg); break;
        case 't': secs = atoi(optarg); break;
        case 'k': kick = atoi(optarg); break;
        default: fprintf(stderr, "see the comment at the top of rtp-endpoint.c\n"); return 2;
        }
    }
    if (secs <= 0 || n <= 0 || count <= 0 || ptime_ms <= 0) {
        fprintf(stderr, "usage: rtp-endpoint -a IP -A PORT -b IP -B PORT [-n N] [-s STEP] [-c COUNT] [-p MS] -t SECS [-k KICK]\n");
        return 2;
    }
    srand((unsigned)getpid());
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    NS = 2 * n;
    S = calloc(NS, sizeof *S);
    heap = calloc(NS, sizeof *heap);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < NS; i++) {
        int side = i >= n;
        int k = side ? i - n : i;
        S[i].side = side;
        S[i].heap_pos = -1;
        S[i].fd = open_sock(side ? ib : ia, (side ? pb : pa) + step * k);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, S[i].fd, &ev);
    }
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)secs * 1000000000ull, next_report = t0 + 1000000000ull;
    uint64_t period = (uint64_t)ptime_ms * 1000000ull;
    int kicked = 0;
    printf("# t rx_a rx_b tx_a tx_b active kick_rx_a kick_rx_b\n");
    fflush(stdout);
    struct epoll_event evs[256];
    unsigned char buf[2048];
    char ctl[256];
    while (!stop) {
        uint64_t now = mono_ns();
        if (now >= end) break;
        /* probe mode: start side-A -> side-B streams directly, spread over the first second */
        while (kicked < kick && kicked < n && now >= t0 + (uint64_t)kicked * 1000000000ull / kick) {
            struct sockaddr_in to = {0};
            to.sin_family = AF_INET;
            to.sin_port = htons(pb + step * kicked);
            inet_pton(AF_INET, ib, &to.sin_addr);
            start_stream(&S[kicked], &to, now);
            kicked++;
        }
        /* due sends */
        while (heap_n > 0 && heap[0]->next_ns <= now) {
            struct stream *s = heap[0];
            send_one(s);
            if (s->sent >= count) {
                hpop();
                s->active = 0;
                s->done = 1;
                s->done_ns = now;
                completed[s->side]++;
            } else {
                s->next_ns += period;
                hdown(0);
            }
        }
        if (now >= next_report) {
            printf("%.0f %lu %lu %lu %lu %d %lu %lu\n", (double)(now - t0) / 1e9, rx[0], rx[1], tx[0], tx[1],
                   heap_n, rx_kick[0], rx_kick[1]);
            fflush(stdout);
            next_report += 1000000000ull;
        }
        uint64_t wake = next_report < end ? next_report : end;
        if (heap_n > 0 && heap[0]->next_ns < wake) wake = heap[0]->next_ns;
        if (kicked < kick) wake = now + 1000000;
        /* ns-precision sleep (epoll_pwait2), so streams are not sent in 1-ms bursts */
        uint64_t dn = wake > now ? wake - now : 0;
        struct timespec tmo = {(time_t)(dn / 1000000000ull), (long)(dn % 1000000000ull)};
        int ne = epoll_pwait2(ep, evs, 256, &tmo, NULL);
        now = mono_ns();
        for (int e = 0; e < ne; e++) {
            struct stream *s = &S[evs[e].data.u32];
            for (;;) {
                struct sockaddr_in src;
                struct iovec iov = {buf, sizeof buf};
                struct msghdr m = {.msg_name = &src, .msg_namelen = sizeof src, .msg_iov = &iov,
                                   .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
                ssize_t r = recvmsg(s->fd, &m, 0);
                if (r < 0) break;
                uint64_t rts = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec ts;
                        memcpy(&ts, CMSG_DATA(c), sizeof ts);
                        rts = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
                    }
                if (!rts) rts = real_ns();
                on_packet(s, buf, r, &src, rts, now);
            }
        }
    }
    printf("summary: rx_a=%lu rx_b=%lu tx_a=%lu tx_b=%lu kick_rx_a=%lu kick_rx_b=%lu started_a=%lu started_b=%lu "
           "completed_a=%lu completed_b=%lu foreign_a=%lu foreign_b=%lu send_err=%lu still_active=%d "
           "lat_n=%lu lat_mean_us=%.1f lat_p50_us=%lu lat_p90_us=%lu lat_p99_us=%lu lat_p999_us=%lu lat_max_us=%lu\n",
           rx[0], rx[1], tx[0], tx[1], rx_kick[0], rx_kick[1], started[0], started[1], completed[0],
           completed[1], rx_foreign[0], rx_foreign[1], send_err, heap_n, lat_n,
           lat_n ? (double)lat_sum_us / lat_n : 0.0, pct(50), pct(90), pct(99), pct(99.9), pct(100));
    return 0;
}
