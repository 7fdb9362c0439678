/*
 * SHA-256 kernels for RFC 9162 Merkle trees.
 *
 * Three interchangeable paths compute identical digests:
 *   - "avx512": 16 independent messages hashed at once, one per 32-bit lane of a ZMM
 *     register (multi-buffer). Used for the node hashes of a tree level and for batches of
 *     proof verifications, where many independent hashes are available.
 *   - "shani":  the SHA extensions (one message at a time).
 *   - "portable": plain C, for any CPU.
 * The path is chosen once at run time from CPUID (bh_sha256_select) and can be forced, so tests
 * exercise every path the machine supports.
 *
 * All functions are pure and thread-safe after selection; none of them touches Python, so the
 * Cython layer calls them with the GIL released.
 */
#ifndef BH_SHA256_KERNELS_H
#define BH_SHA256_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define BH_DIGEST_SIZE 32

enum bh_sha256_path {
    BH_PATH_PORTABLE = 0,
    BH_PATH_SHANI = 1,
    BH_PATH_AVX512 = 2,
};

/* Bitmask of the paths this CPU supports (bit i set = path i usable). Portable is always set. */
int bh_sha256_supported_paths(void);

/* Select `wanted` if supported (returns it), or the fastest supported path when wanted < 0.
 * Returns -1 if `wanted` is not supported (the selection is then left unchanged). */
int bh_sha256_select(int wanted);

/* The selected path. */
int bh_sha256_current_path(void);

/* SHA-256 of one message of any length. */
void bh_sha256(const uint8_t *data, size_t len, uint8_t out[BH_DIGEST_SIZE]);

/* Node hashes H(0x01 || left || right) of `count` independent jobs given by pointers. An output
 * may alias an input of the same job (all inputs of a group are read before it is written). */
void bh_hash_nodes_ptr(const uint8_t *const *lefts, const uint8_t *const *rights,
                       uint8_t *const *outs, size_t count);

/* One tree level: `pairs` holds 2*count contiguous 32-byte hashes; out[i] = H(0x01||p[2i]||p[2i+1]).
 * `out` may be `pairs` itself (in-place reduction). */
void bh_hash_level(const uint8_t *pairs, size_t count, uint8_t *out);

/* A buffer for `bytes` bytes of hashes (free with bh_free_buffer). Large buffers are aligned to
 * 2 MiB and marked for transparent huge pages: filling a 32 MiB tree level otherwise costs
 * thousands of page faults, a third of the time of a whole 2^20-leaf root. NULL when out of
 * memory. */
uint8_t *bh_alloc_buffer(size_t bytes);
void bh_free_buffer(uint8_t *buffer);

#endif
