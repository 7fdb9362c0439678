/*
 * SHA-256 (FIPS 180-4) kernels: portable C, SHA extensions, and 16-lane AVX-512 multi-buffer.
 * See sha256_kernels.h for the contract. Every path is checked against hashlib by the tests.
 */
#include "sha256_kernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define BH_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* A node message 0x01||l||r is 65 bytes: two blocks after padding, bit length 520. */
#define NODE_MSG_BYTES 65
#define NODE_MSG_BITS 520u

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void store_digest(uint8_t out[32], const uint32_t state[8]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, state[i]);
}

/* Fill the two padded blocks of the node message 0x01||l||r. */
static inline void node_blocks(uint8_t blocks[128], const uint8_t *left, const uint8_t *right) {
    blocks[0] = 0x01;
    memcpy(blocks + 1, left, 32);
    memcpy(blocks + 33, right, 32);
    blocks[65] = 0x80;
    memset(blocks + 66, 0, 128 - 66 - 4);
    store_be32(blocks + 124, NODE_MSG_BITS);
}

/* ---------------------------------------------------------------- portable ---------------- */

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    for (size_t b = 0; b < nblocks; b++, blocks += 64) {
        uint32_t w[64];
        for (int t = 0; t < 16; t++) w[t] = load_be32(blocks + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], bb = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K256[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = bb;
            bb = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += bb;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

/* ---------------------------------------------------------------- SHA extensions ---------- */

#ifdef BH_X86
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t state[8],
                                                                       const uint8_t *blocks,
                                                                       size_t nblocks) {
    const __m128i bswap_mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);    /* DCBA */
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]); /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                           /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B);                     /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);             /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                  /* CDGH */

    for (size_t b = 0; b < nblocks; b++, blocks += 64) {
        const __m128i abef_save = state0;
        const __m128i cdgh_save = state1;
        __m128i m[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            /* Rounds 4g..4g+3; m[g%4] holds the schedule words W[4g..4g+3]. */
            if (g < 4) {
                m[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 16 * g)),
                                        bswap_mask);
            }
            __m128i msg = _mm_add_epi32(m[g & 3], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (g >= 3 && g <= 14) {
                /* Finish W for group g+1 from the words of groups g-1 and g. */
                __m128i carry = _mm_alignr_epi8(m[g & 3], m[(g + 3) & 3], 4);
                m[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(g + 1) & 3], carry),
                                                      m[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (g >= 1 && g <= 12) {
                /* Start W for group g+3. */
                m[(g + 3) & 3] = _mm_sha256msg1_epu32(m[(g + 3) & 3], m[g & 3]);
            }
        }
        state0 = _mm_add_epi32(state0, abef_save);
        state1 = _mm_add_epi32(state1, cdgh_save);
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);       /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);    /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

/* ---------------------------------------------------------------- AVX-512 x16 ------------- */

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw")))
#define LANES 16
#define X16_MIN_JOBS 6

AVX512_TARGET static inline __m512i xor3(__m512i a, __m512i b, __m512i c) {
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}

/* One SHA-256 compression of 16 lanes; w[16] holds the block's words, one lane per message. */
AVX512_TARGET static void compress_x16(__m512i st[8], __m512i w[16]) {
    __m512i a = st[0], b = st[1], c = st[2], d = st[3];
    __m512i e = st[4], f = st[5], g = st[6], h = st[7];
#pragma GCC unroll 64
    for (int t = 0; t < 64; t++) {
        __m512i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            __m512i s0 = xor3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18),
                              _mm512_srli_epi32(w15, 3));
            __m512i s1 = xor3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19),
                              _mm512_srli_epi32(w2, 10));
            wt = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0),
                                  _mm512_add_epi32(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        __m512i big_s1 = xor3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25));
        __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
        __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, big_s1),
                                      _mm512_add_epi32(ch, _mm512_add_epi32(wt, _mm512_set1_epi32((int)K256[t]))));
        __m512i big_s0 = xor3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22));
        __m512i maj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);
        h = g;
        g = f;
        f = e;
        e = _mm512_add_epi32(d, t1);
        d = c;
        c = b;
        b = a;
        a = _mm512_add_epi32(t1, _mm512_add_epi32(big_s0, maj));
    }
    st[0] = _mm512_add_epi32(st[0], a);
    st[1] = _mm512_add_epi32(st[1], b);
    st[2] = _mm512_add_epi32(st[2], c);
    st[3] = _mm512_add_epi32(st[3], d);
    st[4] = _mm512_add_epi32(st[4], e);
    st[5] = _mm512_add_epi32(st[5], f);
    st[6] = _mm512_add_epi32(st[6], g);
    st[7] = _mm512_add_epi32(st[7], h);
}

/* Load the big-endian word at `offset` of each lane (lanes at `base` + lane_offsets). */
AVX512_TARGET static inline __m512i gather_word(const uint8_t *base, int offset, __m512i lane_offsets,
                                                __m512i bswap) {
    __m512i v = _mm512_i32gather_epi32(lane_offsets, (const void *)(base + offset), 1);
    return _mm512_shuffle_epi8(v, bswap);
}

/* 16 node hashes of contiguous pairs: lane j hashes 0x01 || pairs[64j .. 64j+64) into
 * out[32j .. 32j+32). The message words are gathered straight from the pairs (the 0x01 prefix
 * shifts them by one byte), so nothing is copied. All loads happen before any store, so `out`
 * may equal `pairs`. */
AVX512_TARGET static void hash_level_x16(const uint8_t *pairs, uint8_t *out) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i in_offsets = _mm512_slli_epi32(lane, 6);  /* 64 bytes per pair */
    const __m512i out_offsets = _mm512_slli_epi32(lane, 5); /* 32 bytes per digest */
    const __m512i bswap = _mm512_broadcast_i32x4(
        _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3));
    __m512i w[16];
    /* Block 1: bytes 0x01, p[0..62]. Word 0 = 0x01 p0 p1 p2; word t = p[4t-1 .. 4t+2]. */
    __m512i first = gather_word(pairs, 0, in_offsets, bswap);
    w[0] = _mm512_or_si512(_mm512_srli_epi32(first, 8), _mm512_set1_epi32(0x01000000));
    for (int t = 1; t < 16; t++) w[t] = gather_word(pairs, 4 * t - 1, in_offsets, bswap);
    __m512i last = gather_word(pairs, 60, in_offsets, bswap); /* p60..p63, read before stores */
    __m512i st[8];
    for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi32((int)H0[i]);
    compress_x16(st, w);
    /* Block 2: p63, 0x80, zeros, then the bit length 520. */
    w[0] = _mm512_or_si512(_mm512_slli_epi32(last, 24), _mm512_set1_epi32(0x00800000));
    for (int t = 1; t < 15; t++) w[t] = _mm512_setzero_si512();
    w[15] = _mm512_set1_epi32((int)NODE_MSG_BITS);
    compress_x16(st, w);
    for (int i = 0; i < 8; i++)
        _mm512_i32scatter_epi32((void *)(out + 4 * i), out_offsets, _mm512_shuffle_epi8(st[i], bswap), 1);
}

/* 16 node hashes given by pointers: the pairs are copied side by side (64 bytes a lane, hot in
 * L1) and hashed by the contiguous kernel, which builds the message words from constants and
 * 17 gathers. Jobs beyond `count` (< 16) hash zeros and are not written. */
AVX512_TARGET static void hash_nodes_x16(const uint8_t *const *lefts, const uint8_t *const *rights,
                                         uint8_t *const *outs, int count) {
    uint8_t pairs[LANES * 64] __attribute__((aligned(64)));
    uint8_t digests[LANES * 32] __attribute__((aligned(64)));
    for (int lane = 0; lane < count; lane++) {
        memcpy(pairs + 64 * lane, lefts[lane], 32);
        memcpy(pairs + 64 * lane + 32, rights[lane], 32);
    }
    if (count < LANES) memset(pairs + 64 * count, 0, (size_t)(LANES - count) * 64);
    hash_level_x16(pairs, digests);
    for (int lane = 0; lane < count; lane++) memcpy(outs[lane], digests + 32 * lane, 32);
}
#endif /* BH_X86 */

/* ---------------------------------------------------------------- dispatch ---------------- */

typedef void (*compress_fn)(uint32_t state[8], const uint8_t *blocks, size_t nblocks);

static int g_path = -1;
static compress_fn g_compress = compress_portable;

int bh_sha256_supported_paths(void) {
    int mask = 1 << BH_PATH_PORTABLE;
#ifdef BH_X86
    __builtin_cpu_init();
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        int sha = (ebx >> 29) & 1;
        if (sha && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3"))
            mask |= 1 << BH_PATH_SHANI;
    }
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        mask |= 1 << BH_PATH_AVX512;
#endif
    return mask;
}

int bh_sha256_select(int wanted) {
    int mask = bh_sha256_supported_paths();
    if (wanted < 0) {
        wanted = (mask & (1 << BH_PATH_AVX512)) ? BH_PATH_AVX512
                 : (mask & (1 << BH_PATH_SHANI)) ? BH_PATH_SHANI
                                                 : BH_PATH_PORTABLE;
    }
    if (wanted > BH_PATH_AVX512 || !(mask & (1 << wanted))) return -1;
    g_path = wanted;
    g_compress = compress_portable;
#ifdef BH_X86
    /* Single messages use the SHA extensions whenever the CPU has them, on every path but the
     * portable one, because they are the fastest one-message kernel. */
    if (wanted != BH_PATH_PORTABLE && (mask & (1 << BH_PATH_SHANI))) g_compress = compress_shani;
#endif
    return wanted;
}

int bh_sha256_current_path(void) {
    if (g_path < 0) bh_sha256_select(-1);
    return g_path;
}

void bh_sha256(const uint8_t *data, size_t len, uint8_t out[BH_DIGEST_SIZE]) {
    uint32_t state[8];
    memcpy(state, H0, sizeof state);
    size_t full = len / 64;
    bh_sha256_current_path();
    if (full) g_compress(state, data, full);
    uint8_t tail[128];
    size_t rest = len - 64 * full;
    memcpy(tail, data + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, tail_len - rest - 1);
    uint64_t bits = (uint64_t)len * 8u;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    g_compress(state, tail, tail_len / 64);
    store_digest(out, state);
}

static void hash_node_single(const uint8_t *left, const uint8_t *right, uint8_t *out) {
    uint8_t blocks[128];
    uint32_t state[8];
    node_blocks(blocks, left, right);
    memcpy(state, H0, sizeof state);
    g_compress(state, blocks, 2);
    store_digest(out, state);
}

void bh_hash_nodes_ptr(const uint8_t *const *lefts, const uint8_t *const *rights,
                       uint8_t *const *outs, size_t count) {
    size_t i = 0;
#ifdef BH_X86
    if (bh_sha256_current_path() == BH_PATH_AVX512) {
        /* A part-filled group still costs a whole 16-lane pass: below X16_MIN_JOBS jobs the
         * one-message kernel is faster. */
        while (count - i >= X16_MIN_JOBS) {
            size_t n = count - i < LANES ? count - i : LANES;
            hash_nodes_x16(lefts + i, rights + i, outs + i, (int)n);
            i += n;
        }
    }
#endif
    bh_sha256_current_path();
    for (; i < count; i++) hash_node_single(lefts[i], rights[i], outs[i]);
}

void bh_hash_level(const uint8_t *pairs, size_t count, uint8_t *out) {
#ifdef BH_X86
    if (bh_sha256_current_path() == BH_PATH_AVX512) {
        /* Groups of 16 pairs: each group reads its 1024 bytes before writing 512, at or below
         * them, so in-place reduction is safe. */
        size_t full = count / LANES * LANES;
        for (size_t i = 0; i < full; i += LANES) hash_level_x16(pairs + 64 * i, out + 32 * i);
        pairs += 64 * full;
        out += 32 * full;
        count -= full;
    }
#endif
    const uint8_t *lefts[64];
    const uint8_t *rights[64];
    uint8_t *outs[64];
    /* Chunks of 64 jobs: every chunk reads pairs at or after the bytes it writes, so in-place
     * reduction (out == pairs) never overwrites an unread pair. */
    for (size_t base = 0; base < count; base += 64) {
        size_t n = count - base < 64 ? count - base : 64;
        for (size_t j = 0; j < n; j++) {
            lefts[j] = pairs + 64 * (base + j);
            rights[j] = lefts[j] + 32;
            outs[j] = out + 32 * (base + j);
        }
        bh_hash_nodes_ptr(lefts, rights, outs, n);
    }
}

#define HUGE_PAGE_BYTES ((size_t)2 << 20)

uint8_t *bh_alloc_buffer(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes < HUGE_PAGE_BYTES) return (uint8_t *)malloc(bytes);
    void *p = NULL;
    size_t rounded = (bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    if (posix_memalign(&p, HUGE_PAGE_BYTES, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure just means small pages */
#endif
    return (uint8_t *)p;
}

void bh_free_buffer(uint8_t *buffer) { free(buffer); }
