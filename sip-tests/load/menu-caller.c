/* menu-caller: the callers' media of inbound-bench.sh, many calls in one process.
 *
 * SIPp does the signalling (inbound-uac.xml); this program owns the RTP ports the callers'
 * SDPs advertise (ADDR:PORT + STEP*i, i < N; the port of each call comes from the SIPp
 * injection CSV) on ordinary UDP sockets, and plays the caller of each call:
 *
 * - A call starts on a socket when holdless's first prompt packet arrives (holdless sends
 *   to the SDP address from the 200 OK on). From then on the caller sends its own G.711
 *   stream back to the packet's source (symmetric RTP), one 20 ms frame of white noise at
 *   about -20 dBm0 every 20 ms, in the law holdless sends (its payload type 0 or 8): enough
 *   energy that holdless's in-band DTMF detector runs its Goertzel filters on every frame,
 *   as it would on speech or line noise.
 * - DELAY_MS after the call's first packet it presses 1: RFC 4733 telephone-event packets on
 *   payload type EVENT_PT (one every 20 ms, durations 160..1120, marker on the first, then
 *   the end packet three times), in place of audio for those 160 ms; audio goes on after.
 * - After the key, the caller stops sending once holdless has been quiet for 200 ms (holdless
 *   stops its stream when it sends its BYE). The call's statistics end when holdless has
 *   been quiet for 2 s after the key (a stall inside holdless shorter than that does not
 *   split the call), 3 s before it (something is wrong), or MAX_S seconds after its start.
 *   The socket then waits 1 s before a new call may start on it (late packets of the old
 *   one are counted as strays).
 *
 * At the caller it measures holdless's prompt stream (packets of the first packet's
 * payload type and SSRC), per call:
 *   received frames, expected frames (the RTP timestamp span / 160 + 1: the 20 ms pacing),
 *   lost frames (sequence-number gaps: sent and not received), missing frames (timestamps
 *   skipped with no sequence gap: frames holdless never sent, e.g. skipped to catch up after
 *   falling behind), duplicates/reordered;
 *   stalls: gaps of more than 100 ms between two arrivals, and the longest gap;
 *   lateness of each frame = kernel arrival time (SO_TIMESTAMPNS) - (first frame's arrival +
 *   (ts - ts0) / 8 ms), and how many frames are late by more than LATE_MS (20) ms; also
 *   against the call's earliest frame instead of its first (in case the first was late).
 *
 * usage: menu-caller -a ADDR -A PORT -n N [-s STEP=2] -d DELAY_MS [-e EVENT_PT=101]
 *                    [-m MAX_S=60] -t SECONDS [-l LATE_MS=20] [-o CALLS.csv]
 * Prints one line a second ("t active started ended rx tx keys strays late missing", the last
 * two for that second only) and a final
 * "summary:" line of key=value pairs; -o writes one line per ended call.
 * Stops after SECONDS or on SIGINT/SIGTERM (calls still running are counted then).
 * Build: gcc -O2 -o menu-caller menu-caller.c -lm
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

#define FRAME 160            /* samples per 20 ms frame at 8 kHz */
#define PERIOD_NS 20000000ull
#define NOISE_FRAMES 50
#define HMIN (-64)           /* per-call lateness histogram: 1 ms buckets, -64..+191 ms */
#define HN 256
#define GMIN (-200)          /* global lateness histogram: 1 ms buckets, -200..+1799 ms */
#define GN 2000
#define EV_PKTS 8            /* event packets before the end packets (160 ms) */

enum { IDLE, ACTIVE, COOLDOWN };

struct call {
    int fd, state, heap_pos;
    struct sockaddr_in peer;
    /* receive side (holdless's prompt stream) */
    uint32_t rx_ssrc;
    int rx_pt;
    uint64_t arr0_ns, start_mono, last_rx_mono, end_mono;
    uint32_t ts0, ts_prev;
    int64_t ts_ext, ts_max;      /* extended timestamp relative to ts0 */
    uint16_t seq_prev;
    int64_t seq_ext, seq_max;    /* extended sequence number relative to the first */
    uint64_t rx, dup, late, late_best, stalls;
    uint64_t arr_prev_ns, gap_max_ns;
    int64_t off_max_us, off_min_us;
    uint16_t hist[HN];
    /* send side */
    uint64_t next_ns;
    uint16_t seq;
    uint32_t ts, ssrc, ev_ts;
    int ev_sent;                 /* telephone-event packets sent (0..EV_PKTS+3) */
    int key_done;
    uint64_t tx;
    int call_no;
};

static struct call *C;
static int NC;
static struct call **heap;
static int heap_n;
static volatile sig_atomic_t stop;
static unsigned char noise[2][NOISE_FRAMES][FRAME]; /* [0] = µ-law, [1] = A-law */
static int delay_ms = 500, event_pt = 101, max_s = 60, late_ms = 20;
static uint64_t g_hist[GN];
static uint64_t late_now, missing_now, started, ended, ended_early, ended_max, keys, rx_all, tx_all, strays, send_err, other_pt;
static uint64_t tot_rx, tot_exp, tot_lost, tot_dup, tot_late, tot_late_best, calls_lost, calls_late,
    calls_late_best, tot_missing, calls_missing, tot_stalls, calls_stalled, gap_max_all_ns;
static int64_t worst_late_us = INT64_MIN, worst_late_best_us = INT64_MIN;
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

/* G.711 encoders (ITU-T G.711, from 16-bit linear) */
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
    /* white noise, roughly Gaussian (sum of 4 uniforms), rms ~2300 (about -20 dBm0) */
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

static void send_frame(struct call *c, uint64_t now) {
    unsigned char b[12 + FRAME];
    if (c->key_done && now - c->last_rx_mono > 200000000ull) return; /* holdless hung up */
    size_t len;
    int pt, marker = 0;
    uint32_t ts = c->ts;
    if (!c->key_done && now - c->start_mono >= (uint64_t)delay_ms * 1000000ull) {
        /* RFC 4733: event 1, volume 10; all packets carry the event's start timestamp */
        if (c->ev_sent == 0) { c->ev_ts = c->ts; marker = 1; }
        int end = c->ev_sent >= EV_PKTS;
        uint16_t dur = (uint16_t)(FRAME * (end ? EV_PKTS : c->ev_sent + 1));
        b[12] = 1;
        b[13] = (unsigned char)((end ? 0x80 : 0) | 10);
        put_be16(b + 14, dur);
        len = 16;
        pt = event_pt;
        ts = c->ev_ts;
        if (++c->ev_sent >= EV_PKTS + 3) { c->key_done = 1; keys++; }
    } else {
        memcpy(b + 12, noise[c->rx_pt == 8][c->tx % NOISE_FRAMES], FRAME);
        len = 12 + FRAME;
        pt = c->rx_pt;
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
        tx_all++;
    c->seq++;
    c->ts += FRAME;
    c->tx++;
}

static void start_call(struct call *c, const struct sockaddr_in *src, uint32_t ssrc, int pt, uint64_t now) {
    memset(c->hist, 0, sizeof c->hist);
    c->state = ACTIVE;
    c->peer = *src;
    c->rx_ssrc = ssrc;
    c->rx_pt = pt;
    c->start_mono = now;
    c->last_rx_mono = now;
    c->rx = c->dup = c->late = c->late_best = c->stalls = 0;
    c->gap_max_ns = 0;
    c->off_max_us = INT64_MIN;
    c->off_min_us = INT64_MAX;
    c->seq_ext = c->seq_max = 0;
    c->ts_ext = c->ts_max = 0;
    c->ev_sent = 0;
    c->key_done = 0;
    c->tx = 0;
    c->seq = (uint16_t)rand();
    c->ts = (uint32_t)rand();
    c->ssrc = (uint32_t)rand() ^ (uint32_t)(c - C);
    c->next_ns = now;
    c->call_no = (int)++started;
    heap[heap_n] = c;
    c->heap_pos = heap_n++;
    hup(c->heap_pos);
}

static void end_call(struct call *c, uint64_t now, const char *why) {
    hremove(c);
    c->state = COOLDOWN;
    c->end_mono = now;
    ended++;
    if (!c->key_done) ended_early++;
    if (why[0] == 'm') ended_max++;
    /* what the call received */
    int64_t expected = c->rx ? c->ts_max / FRAME + 1 : 0;
    int64_t by_seq = c->rx ? c->seq_max + 1 : 0;
    int64_t lost = by_seq - (int64_t)(c->rx - c->dup);
    if (lost < 0) lost = 0;
    /* frames whose timestamps were skipped (never sent): the span minus what was numbered */
    int64_t missing = expected - by_seq;
    if (missing < 0) missing = 0;
    tot_missing += (uint64_t)missing;
    if (missing) calls_missing++;
    tot_stalls += c->stalls;
    if (c->stalls) calls_stalled++;
    if (c->gap_max_ns > gap_max_all_ns) gap_max_all_ns = c->gap_max_ns;
    /* lateness against the earliest frame of the call: frames more than late_ms after it */
    int minb = 0;
    while (minb < HN && !c->hist[minb]) minb++;
    uint64_t late_best = 0;
    for (int i = minb + late_ms + 1; i < HN; i++) late_best += c->hist[i];
    int64_t worst_best = c->rx ? c->off_max_us - c->off_min_us : 0;
    tot_rx += c->rx;
    tot_exp += (uint64_t)expected;
    tot_lost += (uint64_t)lost;
    tot_dup += c->dup;
    tot_late += c->late;
    tot_late_best += late_best;
    if (lost) calls_lost++;
    if (c->late) calls_late++;
    if (late_best) calls_late_best++;
    if (c->rx && c->off_max_us > worst_late_us) worst_late_us = c->off_max_us;
    if (c->rx && worst_best > worst_late_best_us) worst_late_best_us = worst_best;
    if (callf)
        fprintf(callf, "%d,%ld,%s,%.3f,%d,%lu,%ld,%ld,%ld,%ld,%lu,%lu,%.3f,%.3f,%.1f,%lu,%lu\n", c->call_no,
                (long)(c - C), why, (double)(now - c->start_mono) / 1e9, c->key_done, c->rx, (long)expected,
                (long)by_seq, (long)lost, (long)missing, c->late, late_best, c->rx ? c->off_max_us / 1000.0 : 0.0,
                c->rx ? c->off_min_us / 1000.0 : 0.0, c->gap_max_ns / 1e6, c->stalls, c->tx);
}

static void on_packet(struct call *c, const unsigned char *b, ssize_t n, const struct sockaddr_in *src,
                      uint64_t arr_real, uint64_t now) {
    if (n < 12 || (b[0] & 0xc0) != 0x80) { strays++; return; }
    int pt = b[1] & 0x7f;
    uint16_t seq = (uint16_t)(b[2] << 8 | b[3]);
    uint32_t ts = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
    uint32_t ssrc = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
    rx_all++;
    if (c->state == COOLDOWN && now - c->end_mono < 1000000000ull) { strays++; return; }
    if (c->state != ACTIVE) {
        if (pt != 0 && pt != 8) { strays++; return; }
        start_call(c, src, ssrc, pt, now);
        c->arr0_ns = arr_real;
        c->ts0 = c->ts_prev = ts;
        c->seq_prev = seq;
        c->rx = 1;
        c->arr_prev_ns = arr_real;
        c->off_max_us = c->off_min_us = 0;
        c->hist[-HMIN]++;
        g_hist[-GMIN]++;
        return;
    }
    if (ssrc != c->rx_ssrc || pt != c->rx_pt) { other_pt++; return; }
    c->last_rx_mono = now;
    c->rx++;
    uint64_t gap = arr_real > c->arr_prev_ns ? arr_real - c->arr_prev_ns : 0;
    c->arr_prev_ns = arr_real;
    if (gap > c->gap_max_ns) c->gap_max_ns = gap;
    if (gap > 100000000ull) c->stalls++; /* 100 ms without a frame: 5 frames */
    int16_t ds = (int16_t)(seq - c->seq_prev);
    c->seq_prev = seq;
    c->seq_ext += ds;
    if (c->seq_ext > c->seq_max) c->seq_max = c->seq_ext;
    else if (ds <= 0) c->dup++; /* a repeat or a late reordered one (not counted as lost) */
    int32_t dt = (int32_t)(ts - c->ts_prev);
    c->ts_prev = ts;
    c->ts_ext += dt;
    if (c->ts_ext > c->ts_max) c->ts_max = c->ts_ext;
    /* lateness: arrival - (first arrival + (ts - ts0) / 8 ms) */
    int64_t off_ns = (int64_t)(arr_real - c->arr0_ns) - c->ts_ext * 125000;
    int64_t off_us = off_ns / 1000;
    if (off_us > c->off_max_us) c->off_max_us = off_us;
    if (off_us < c->off_min_us) c->off_min_us = off_us;
    if (off_us > (int64_t)late_ms * 1000) { c->late++; late_now++; }
    if (dt > FRAME) missing_now += (uint64_t)(dt / FRAME - 1);
    int64_t ms = off_ns >= 0 ? off_ns / 1000000 : -((-off_ns + 999999) / 1000000);
    int hb = (int)(ms - HMIN);
    c->hist[hb < 0 ? 0 : hb >= HN ? HN - 1 : hb]++;
    int gb = (int)(ms - GMIN);
    g_hist[gb < 0 ? 0 : gb >= GN ? GN - 1 : gb]++;
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

static double gpct(double p) {
    uint64_t n = 0, acc = 0;
    for (int i = 0; i < GN; i++) n += g_hist[i];
    if (!n) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)(n - 1)) + 1;
    for (int i = 0; i < GN; i++) {
        acc += g_hist[i];
        if (acc >= want) return i + GMIN;
    }
    return GN - 1 + GMIN;
}

int main(int argc, char **argv) {
    const char *ip = "127.0.0.2", *out = NULL;
    int port = 10000, n = 0, step = 2, secs = 0, o;
    while ((o = getopt(argc, argv, "a:A:n:s:d:e:m:t:l:o:")) != -1) {
        switch (o) {
        case 'a': ip = optarg; break;
        case 'A': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 's': step = atoi(optarg); break;
        case 'd': delay_ms = atoi(optarg); break;
        case 'e': event_pt = atoi(optarg); break;
        case 'm': max_s = atoi(optarg); break;
        case 't': secs = atoi(optarg); break;
        case 'l': late_ms = atoi(optarg); break;
        case 'o': out = optarg; break;
        default: fprintf(stderr, "see the comment at the top of menu-caller.c\n"); return 2;
        }
    }
    if (secs <= 0 || n <= 0 || step <= 0 || delay_ms < 0 || max_s <= 0 || late_ms < 0 || late_ms >= HN + HMIN) {
        fprintf(stderr, "usage: menu-caller -a IP -A PORT -n N [-s STEP] -d DELAY_MS [-e PT] [-m MAX_S] -t SECS [-l MS] [-o FILE]\n");
        return 2;
    }
    srand((unsigned)getpid());
    make_noise();
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    if (out) {
        callf = fopen(out, "w");
        if (!callf) { perror(out); return 1; }
        fprintf(callf, "call,socket,end,secs,key_sent,rx,expected,by_seq,lost,missing,late,late_vs_earliest,max_late_ms,min_offset_ms,max_gap_ms,stalls,tx\n");
    }
    NC = n;
    C = calloc(NC, sizeof *C);
    heap = calloc(NC, sizeof *heap);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < NC; i++) {
        C[i].heap_pos = -1;
        C[i].fd = open_sock(ip, port + step * i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, C[i].fd, &ev);
    }
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)secs * 1000000000ull, next_report = t0 + 1000000000ull,
             next_sweep = t0 + 100000000ull;
    printf("# t active started ended rx tx keys strays late missing (late, missing: frames late > LATE_MS, and skipped, in that second)\n");
    fflush(stdout);
    struct epoll_event evs[256];
    unsigned char buf[2048];
    char ctl[256];
    while (!stop) {
        uint64_t now = mono_ns();
        if (now >= end) break;
        while (heap_n > 0 && heap[0]->next_ns <= now) {
            struct call *c = heap[0];
            send_frame(c, now);
            c->next_ns += PERIOD_NS;
            if (c->next_ns + PERIOD_NS < now) c->next_ns = now; /* never burst to catch up */
            hdown(0);
        }
        if (now >= next_sweep) { /* end calls whose prompt stream stopped */
            for (int i = 0; i < NC; i++) {
                struct call *c = &C[i];
                if (c->state != ACTIVE) continue;
                uint64_t quiet = now - c->last_rx_mono;
                if (c->key_done && quiet > 2000000000ull) end_call(c, now, "quiet");
                else if (!c->key_done && quiet > 3000000000ull) end_call(c, now, "early");
                else if (now - c->start_mono > (uint64_t)max_s * 1000000000ull) end_call(c, now, "max");
            }
            next_sweep += 100000000ull;
        }
        if (now >= next_report) {
            printf("%.0f %d %lu %lu %lu %lu %lu %lu %lu %lu\n", (double)(now - t0) / 1e9, heap_n, started, ended, rx_all,
                   tx_all, keys, strays, late_now, missing_now);
            late_now = missing_now = 0;
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
    for (int i = 0; i < NC; i++)
        if (C[i].state == ACTIVE) { end_call(&C[i], now, "stopped"); still++; }
    if (callf) fclose(callf);
    printf("summary: started=%lu ended=%lu still_active=%d ended_before_key=%lu ended_at_max=%lu keys=%lu "
           "frames_rx=%lu frames_expected=%lu frames_lost=%lu frames_dup=%lu late=%lu late_vs_earliest=%lu "
           "calls_lost=%lu calls_late=%lu calls_late_vs_earliest=%lu worst_late_ms=%.1f worst_late_vs_earliest_ms=%.1f "
           "off_p50_ms=%.0f off_p99_ms=%.0f off_p999_ms=%.0f off_max_ms=%.0f tx=%lu send_err=%lu strays=%lu "
           "other_pt=%lu late_ms=%d frames_missing=%lu calls_missing=%lu stalls=%lu calls_stalled=%lu max_gap_ms=%.1f\n",
           started, ended, still, ended_early, ended_max, keys, tot_rx, tot_exp, tot_lost, tot_dup, tot_late,
           tot_late_best, calls_lost, calls_late, calls_late_best,
           worst_late_us == INT64_MIN ? 0.0 : worst_late_us / 1000.0,
           worst_late_best_us == INT64_MIN ? 0.0 : worst_late_best_us / 1000.0, gpct(50), gpct(99), gpct(99.9),
           gpct(100), tx_all, send_err, strays, other_pt, late_ms, tot_missing, calls_missing, tot_stalls,
           calls_stalled, gap_max_all_ns / 1e6);
    return 0;
}
