/* callback-party: the media of dialler-bench.sh's callbacks, both parties, many calls in one
 * process (after menu-caller.c and rtp-endpoint.c).
 *
 * SIPp does the signalling (dialler-customer.xml answers holdless's customer leg,
 * dialler-agent.xml its contact-center leg); this program owns the RTP ports their SDPs
 * advertise on ordinary UDP sockets: side C (customers) ADDR_C:PORT_C + STEP*i, side A
 * (agents) ADDR_A:PORT_A + STEP*i, i < N, which is what SIPp's [auto_media_port+4] hands out.
 *
 * Customer (side C): a call starts when holdless's first prompt frame arrives (payload type
 * 0 or 8: holdless sends to the SDP address from the 200 OK on). From then on the customer
 * sends its own G.711 stream back to the packet's source (symmetric RTP, the law holdless
 * sends), one 20 ms frame every 20 ms. KEY_MS after the first prompt frame it presses 1:
 * RFC 4733 event 1 on payload type EVENT_PT (8 packets 20 ms apart, durations 160..1280,
 * marker on the first, then the end packet three times) in place of audio; audio goes on
 * after. holdless then dials the agent and, when the agent answers, relays the legs. The
 * customer stops when holdless has been quiet QUIET_MS after the bridge (the agent hung up,
 * holdless sent BYE), 3 s before it (something is wrong), or MAX_S after the start.
 * Agent (side A): a call starts on the first packet that reaches the socket (the customer's
 * audio relayed by holdless once the agent leg answered); the agent answers the packet's
 * source with frames 20 ms apart until the customer's audio has stopped for 200 ms (the
 * agent's BYE ended the call) or AGENT_FRAMES were sent, then waits for 1 s of quiet.
 *
 * Every audio frame is PCMA/PCMU-sized (160 bytes) and starts with a magic ("HLCU" from a
 * customer, "HLAG" from an agent), the frame's index in its stream and the send time
 * (CLOCK_REALTIME ns); the rest is noise at about -20 dBm0 in the law of the call. The
 * receiver takes the kernel receive timestamp (SO_TIMESTAMPNS): one-way time through
 * holdless's relay = kernel rx - user send (two loopback hops + the relay), in 1 us buckets,
 * per direction. Audio delivered, per call and direction: frames received with the other
 * party's magic / (last index - first index + 1) seen (frames lost inside the relayed span).
 * Also: prompt frames received by customers, and key -> first agent frame (how long the
 * dialler takes from the key to a talking agent: the agent INVITE, its answer, the join).
 *
 * usage: callback-party -a ADDR_C -A PORT_C -b ADDR_A -B PORT_A [-n N=2500] [-s STEP=4]
 *                       [-d KEY_MS=300] [-e EVENT_PT=101] [-f AGENT_FRAMES=3000]
 *                       [-q QUIET_MS=600] [-m MAX_S=60] -t SECONDS [-o CALLS.csv]
 * Prints one line a second and a final "summary:" line of key=value pairs; -o writes one
 * line per ended call (both sides). Stops after SECONDS or on SIGINT/SIGTERM.
 * Build: gcc -O2 -o callback-party callback-party.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
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

#define FRAME 160
#define PERIOD_NS 20000000ull
#define NOISE_FRAMES 50
#define EV_PKTS 8
#define MAGIC_C 0x484c4355u /* "HLCU" */
#define MAGIC_A 0x484c4147u /* "HLAG" */
#define HBUCKETS 200000     /* 1 us buckets up to 200 ms */
#define KBUCKETS 10000      /* key -> agent audio, 1 ms buckets up to 10 s */

enum { IDLE, ACTIVE, COOLDOWN };
enum { CUST, AGENT };

struct call {
    int fd, side, state, heap_pos, sending;
    struct sockaddr_in peer;
    int pt;
    uint64_t start_mono, last_rx_mono, end_mono, key_mono, next_ns;
    uint16_t seq;
    uint32_t ts, ssrc, ev_ts;
    int ev_sent, key_done, bridged;
    uint32_t idx;            /* next audio frame index sent */
    uint64_t tx;
    /* received from the other party (relayed) */
    uint64_t rx_rel, rx_prompt;
    int64_t first_idx, last_idx;
    double k2a_ms;           /* customer: key -> first agent frame */
};

static struct call *C;
static int NC;
static struct call **heap;
static int heap_n;
static volatile sig_atomic_t stop;
static unsigned char noise[2][NOISE_FRAMES][FRAME];
static int key_ms = 300, event_pt = 101, agent_frames = 3000, quiet_ms = 600, max_s = 60;
static uint32_t hist[2][HBUCKETS + 1]; /* [0] customer -> agent, [1] agent -> customer */
static uint32_t khist[KBUCKETS + 1];
static uint64_t started[2], ended[2], bridged[2], keys, tx_all[2], rx_all[2], strays, send_err,
    foreign, rel_rx[2], rel_exp[2], prompt_rx, no_audio[2], ended_early, ended_max;
static FILE *callf;

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

static unsigned char lin2ulaw(int x) {
    int sign = x < 0 ? 0x80 : 0;
    if (x < 0) x = -x;
    if (x > 32635) x = 32635;
    x += 0x84;
    int seg = 7;
    for (int m = 0x4000; seg > 0 && !(x & m); m >>= 1) seg--;
    int mant = (x >> (seg + 3)) & 0x0f;
    return (unsigned char)~(sign | (seg << 4) | mant);
}
static unsigned char lin2alaw(int x) {
    int sign = x >= 0 ? 0x80 : 0;
    if (x < 0) x = -x - 1;
    if (x > 32767) x = 32767;
    int seg = 0;
    for (int v = x >> 8; v > 0 && seg < 7; v >>= 1) seg++;
    int mant = seg == 0 ? (x >> 4) & 0x0f : (x >> (seg + 3)) & 0x0f;
    return (unsigned char)((sign | (seg << 4) | mant) ^ 0x55);
}
static void make_noise(void) {
    for (int f = 0; f < NOISE_FRAMES; f++)
        for (int i = 0; i < FRAME; i++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += (double)rand() / RAND_MAX - 0.5;
            int x = (int)(s * 2300.0 / 0.577);
            noise[0][f][i] = lin2ulaw(x);
            noise[1][f][i] = lin2alaw(x);
        }
}

static void hswap(int a, int b) {
    struct call *t = heap[a];
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
static void hremove(struct call *c) {
    int i = c->heap_pos;
    if (i < 0) return;
    heap_n--;
    if (i != heap_n) {
        heap[i] = heap[heap_n];
        heap[i]->heap_pos = i;
        hdown(i);
        hup(heap[i]->heap_pos);
    }
    c->heap_pos = -1;
}

static void put_be16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put_be32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get_be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Sends the call's next packet; returns 0 when the call's stream is over. */
static int send_next(struct call *c, uint64_t now) {
    unsigned char b[12 + FRAME];
    size_t len;
    int pt, marker = 0;
    uint32_t ts = c->ts;
    if (c->side == CUST && !c->key_done && now - c->start_mono >= (uint64_t)key_ms * 1000000ull) {
        if (c->ev_sent == 0) { c->ev_ts = c->ts; marker = 1; }
        int end = c->ev_sent >= EV_PKTS;
        uint16_t dur = (uint16_t)(FRAME * (end ? EV_PKTS : c->ev_sent + 1));
        b[12] = 1;
        b[13] = (unsigned char)((end ? 0x80 : 0) | 10);
        put_be16(b + 14, dur);
        len = 16;
        pt = event_pt;
        ts = c->ev_ts;
        if (++c->ev_sent >= EV_PKTS + 3) { c->key_done = 1; c->key_mono = now; keys++; }
    } else {
        if (c->side == AGENT && (c->idx >= (uint32_t)agent_frames || now - c->last_rx_mono > 200000000ull))
            return 0; /* the customer's audio stopped (the agent's BYE ended the call) */
        memcpy(b + 12, noise[c->pt == 8][c->tx % NOISE_FRAMES], FRAME);
        put_be32(b + 12, c->side == CUST ? MAGIC_C : MAGIC_A);
        put_be32(b + 16, c->idx++);
        uint64_t t = real_ns();
        put_be32(b + 20, (uint32_t)(t >> 32));
        put_be32(b + 24, (uint32_t)t);
        len = 12 + FRAME;
        pt = c->pt;
        if (c->tx == 0) marker = 1;
    }
    b[0] = 0x80;
    b[1] = (unsigned char)((marker ? 0x80 : 0) | pt);
    put_be16(b + 2, c->seq);
    put_be32(b + 4, ts);
    put_be32(b + 8, c->ssrc);
    if (sendto(c->fd, b, len, 0, (struct sockaddr *)&c->peer, sizeof c->peer) < 0)
        send_err++;
    else
        tx_all[c->side]++;
    c->seq++;
    c->ts += FRAME;
    c->tx++;
    return 1;
}

static void start_call(struct call *c, const struct sockaddr_in *src, int pt, uint64_t now) {
    c->state = ACTIVE;
    c->sending = 1;
    c->peer = *src;
    c->pt = pt;
    c->start_mono = c->last_rx_mono = now;
    c->ev_sent = c->key_done = c->bridged = 0;
    c->idx = 0;
    c->tx = c->rx_rel = c->rx_prompt = 0;
    c->first_idx = c->last_idx = -1;
    c->key_mono = 0;
    c->k2a_ms = 0;
    c->seq = (uint16_t)rand();
    c->ts = (uint32_t)rand();
    c->ssrc = (uint32_t)rand() ^ (uint32_t)(c - C);
    c->next_ns = now;
    started[c->side]++;
    heap[heap_n] = c;
    c->heap_pos = heap_n++;
    hup(c->heap_pos);
}

static void end_call(struct call *c, uint64_t now, const char *why) {
    hremove(c);
    c->state = COOLDOWN;
    c->sending = 0;
    c->end_mono = now;
    ended[c->side]++;
    if (why[0] == 'e') ended_early++;
    if (why[0] == 'm') ended_max++;
    int64_t exp = c->first_idx >= 0 ? c->last_idx - c->first_idx + 1 : 0;
    rel_rx[c->side] += c->rx_rel;
    rel_exp[c->side] += (uint64_t)exp;
    if (!c->rx_rel) no_audio[c->side]++;
    if (callf)
        fprintf(callf, "%s,%ld,%s,%.3f,%d,%lu,%ld,%lu,%lu,%.1f\n", c->side == CUST ? "customer" : "agent",
                (long)(c - C) % NC, why, (now - c->start_mono) / 1e9, c->key_done, c->rx_rel, (long)exp,
                c->rx_prompt, c->tx, c->k2a_ms);
}

static void on_packet(struct call *c, const unsigned char *b, ssize_t n, const struct sockaddr_in *src,
                      uint64_t arr_real, uint64_t now) {
    if (n < 12 || (b[0] & 0xc0) != 0x80) { strays++; return; }
    int pt = b[1] & 0x7f;
    rx_all[c->side]++;
    if (c->state == COOLDOWN && now - c->end_mono < 1000000000ull) { strays++; return; }
    uint32_t magic = n >= 12 + 16 ? get_be32(b + 12) : 0;
    uint32_t want = c->side == CUST ? MAGIC_A : MAGIC_C;
    if (c->state != ACTIVE) {
        if (pt != 0 && pt != 8) { strays++; return; }
        if (c->side == CUST && magic == MAGIC_A) { strays++; return; } /* an old call's agent */
        start_call(c, src, pt, now);
    }
    c->last_rx_mono = now;
    if (magic == want) {
        int64_t idx = get_be32(b + 16);
        uint64_t sent = (uint64_t)get_be32(b + 20) << 32 | get_be32(b + 24);
        int64_t lat = (int64_t)(arr_real - sent) / 1000;
        hist[c->side == CUST ? 1 : 0][lat < 0 ? 0 : lat > HBUCKETS ? HBUCKETS : lat]++;
        if (c->first_idx < 0) {
            c->first_idx = idx;
            if (c->side == CUST) {
                bridged[CUST]++;
                if (c->key_mono) {
                    uint64_t ms = (now - c->key_mono) / 1000000ull;
                    c->k2a_ms = (now - c->key_mono) / 1e6;
                    khist[ms > KBUCKETS ? KBUCKETS : ms]++;
                }
            } else {
                bridged[AGENT]++;
            }
            c->bridged = 1;
        }
        if (idx > c->last_idx) c->last_idx = idx;
        c->rx_rel++;
    } else if (magic == MAGIC_A || magic == MAGIC_C) {
        foreign++; /* our own side's magic: a stray of another call */
    } else if (c->side == CUST) {
        c->rx_prompt++;
        prompt_rx++;
    } else {
        foreign++;
    }
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

static double pct(const uint32_t *h, int nb, double p) {
    uint64_t n = 0, acc = 0;
    for (int i = 0; i <= nb; i++) n += h[i];
    if (!n) return -1;
    uint64_t want = (uint64_t)(p / 100.0 * (double)(n - 1)) + 1;
    for (int i = 0; i <= nb; i++) {
        acc += h[i];
        if (acc >= want) return i;
    }
    return nb;
}
static uint64_t hcount(const uint32_t *h, int nb) {
    uint64_t n = 0;
    for (int i = 0; i <= nb; i++) n += h[i];
    return n;
}

int main(int argc, char **argv) {
    const char *ipc = "127.0.0.2", *ipa = "127.0.0.3", *out = NULL;
    int portc = 10004, porta = 30004, n = 2500, step = 4, secs = 0, o;
    while ((o = getopt(argc, argv, "a:A:b:B:n:s:d:e:f:q:m:t:o:")) != -1) {
        switch (o) {
        case 'a': ipc = optarg; break;
        case 'A': portc = atoi(optarg); break;
        case 'b': ipa = optarg; break;
        case 'B': porta = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 's': step = atoi(optarg); break;
        case 'd': key_ms = atoi(optarg); break;
        case 'e': event_pt = atoi(optarg); break;
        case 'f': agent_frames = atoi(optarg); break;
        case 'q': quiet_ms = atoi(optarg); break;
        case 'm': max_s = atoi(optarg); break;
        case 't': secs = atoi(optarg); break;
        case 'o': out = optarg; break;
        default: fprintf(stderr, "see the comment at the top of callback-party.c\n"); return 2;
        }
    }
    if (secs <= 0 || n <= 0 || step <= 0 || key_ms < 0 || agent_frames <= 0 || quiet_ms <= 0) {
        fprintf(stderr, "usage: callback-party -a IP -A PORT -b IP -B PORT [-n N] [-s STEP] [-d KEY_MS] [-f FRAMES] -t SECS\n");
        return 2;
    }
    srand((unsigned)getpid());
    make_noise();
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    if (out) {
        callf = fopen(out, "w");
        if (!callf) { perror(out); return 1; }
        fprintf(callf, "side,socket,end,secs,key_sent,relayed_rx,relayed_expected,prompt_rx,tx,key_to_agent_ms\n");
    }
    NC = n;
    C = calloc(2 * NC, sizeof *C);
    heap = calloc(2 * NC, sizeof *heap);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < 2 * NC; i++) {
        C[i].heap_pos = -1;
        C[i].side = i < NC ? CUST : AGENT;
        C[i].fd = i < NC ? open_sock(ipc, portc + step * i) : open_sock(ipa, porta + step * (i - NC));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, C[i].fd, &ev);
    }
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)secs * 1000000000ull, next_report = t0 + 1000000000ull,
             next_sweep = t0 + 50000000ull;
    printf("# t active_cust active_agent started_cust keys bridged_cust ended_cust started_agent ended_agent tx_cust tx_agent\n");
    fflush(stdout);
    struct epoll_event evs[256];
    unsigned char buf[2048];
    char ctl[256];
    while (!stop) {
        uint64_t now = mono_ns();
        if (now >= end) break;
        while (heap_n > 0 && heap[0]->next_ns <= now) {
            struct call *c = heap[0];
            if (!send_next(c, now)) { /* the agent's stream is over: wait for quiet */
                c->sending = 0;
                hremove(c);
                continue;
            }
            c->next_ns += PERIOD_NS;
            if (c->next_ns + PERIOD_NS < now) c->next_ns = now; /* never burst to catch up */
            hdown(0);
        }
        if (now >= next_sweep) {
            for (int i = 0; i < 2 * NC; i++) {
                struct call *c = &C[i];
                if (c->state != ACTIVE) continue;
                uint64_t quiet = now - c->last_rx_mono;
                if (c->bridged && quiet > (uint64_t)quiet_ms * 1000000ull) end_call(c, now, "quiet");
                else if (c->side == AGENT && quiet > 1000000000ull) end_call(c, now, "quiet");
                else if (!c->bridged && quiet > 3000000000ull) end_call(c, now, "early");
                else if (now - c->start_mono > (uint64_t)max_s * 1000000000ull) end_call(c, now, "max");
            }
            next_sweep += 50000000ull;
        }
        if (now >= next_report) {
            int ac = 0, aa = 0;
            for (int i = 0; i < 2 * NC; i++)
                if (C[i].state == ACTIVE) { if (C[i].side == CUST) ac++; else aa++; }
            printf("%.0f %d %d %lu %lu %lu %lu %lu %lu %lu %lu\n", (double)(now - t0) / 1e9, ac, aa, started[CUST], keys,
                   bridged[CUST], ended[CUST], started[AGENT], ended[AGENT], tx_all[CUST], tx_all[AGENT]);
            fflush(stdout);
            next_report += 1000000000ull;
        }
        uint64_t wake = next_report < end ? next_report : end;
        if (next_sweep < wake) wake = next_sweep;
        if (heap_n > 0 && heap[0]->next_ns < wake) wake = heap[0]->next_ns;
        uint64_t dn = wake > now ? wake - now : 0;
        struct timespec tmo = {(time_t)(dn / 1000000000ull), (long)(dn % 1000000000ull)};
        int ne = epoll_pwait2(ep, evs, 256, &tmo, NULL);
        now = mono_ns();
        for (int e = 0; e < ne; e++) {
            struct call *c = &C[evs[e].data.u32];
            for (;;) {
                struct sockaddr_in src;
                struct iovec iov = {buf, sizeof buf};
                struct msghdr m = {.msg_name = &src, .msg_namelen = sizeof src, .msg_iov = &iov,
                                   .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
                ssize_t r = recvmsg(c->fd, &m, 0);
                if (r < 0) break;
                uint64_t rts = 0;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
                    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec ts;
                        memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                        rts = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
                    }
                if (!rts) rts = real_ns();
                on_packet(c, buf, r, &src, rts, now);
            }
        }
    }
    int still = 0;
    uint64_t now = mono_ns();
    for (int i = 0; i < 2 * NC; i++)
        if (C[i].state == ACTIVE) { end_call(&C[i], now, "stopped"); still++; }
    if (callf) fclose(callf);
    printf("summary: cust_started=%lu keys=%lu cust_bridged=%lu cust_ended=%lu agent_started=%lu agent_ended=%lu "
           "still_active=%d ended_early=%lu ended_max=%lu prompt_rx=%lu "
           "c2a_rx=%lu c2a_expected=%lu a2c_rx=%lu a2c_expected=%lu cust_no_agent_audio=%lu agent_no_cust_audio=%lu "
           "tx_cust=%lu tx_agent=%lu rx_cust=%lu rx_agent=%lu "
           "c2a_n=%lu c2a_p50_us=%.0f c2a_p99_us=%.0f c2a_max_us=%.0f a2c_n=%lu a2c_p50_us=%.0f a2c_p99_us=%.0f a2c_max_us=%.0f "
           "key_to_agent_n=%lu key_to_agent_p50_ms=%.0f key_to_agent_p99_ms=%.0f key_to_agent_max_ms=%.0f "
           "strays=%lu foreign=%lu send_err=%lu\n",
           started[CUST], keys, bridged[CUST], ended[CUST], started[AGENT], ended[AGENT], still, ended_early, ended_max,
           prompt_rx, rel_rx[AGENT], rel_exp[AGENT], rel_rx[CUST], rel_exp[CUST], no_audio[CUST], no_audio[AGENT],
           tx_all[CUST], tx_all[AGENT], rx_all[CUST], rx_all[AGENT],
           hcount(hist[0], HBUCKETS), pct(hist[0], HBUCKETS, 50), pct(hist[0], HBUCKETS, 99), pct(hist[0], HBUCKETS, 100),
           hcount(hist[1], HBUCKETS), pct(hist[1], HBUCKETS, 50), pct(hist[1], HBUCKETS, 99), pct(hist[1], HBUCKETS, 100),
           hcount(khist, KBUCKETS), pct(khist, KBUCKETS, 50), pct(khist, KBUCKETS, 99), pct(khist, KBUCKETS, 100),
           strays, foreign, send_err);
    return 0;
}
