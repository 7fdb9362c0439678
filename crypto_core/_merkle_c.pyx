# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython accelerator of the RFC 9162 Merkle tree: same functions, arguments, results and errors
as ``crypto_core._merkle_py`` (the reference). See that module for the contract.

Leaf hashes are copied into one C buffer first, then every hash runs with the GIL released on
the SHA-256 path chosen at run time (AVX-512 16-lane multi-buffer, SHA extensions or portable
C; see sha256_kernels.h).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.list cimport PyList_Check, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_Check
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

from crypto_core._contract import (
    MAX_PROOF_HASHES,
    check_batch_item,
    check_bytes,
    check_hash_arg,
    check_inclusion_args,
    check_size,
    consistency_precheck,
)


cdef extern from "Python.h":
    # Declared here without an exception clause: an overflow is a malformed item, handled
    # by checking PyErr_Occurred, not an exception to raise.
    unsigned long long PyLong_AsUnsignedLongLong(object value)
    # Borrowed references (no reference-count traffic), unlike Cython's own declarations.
    PyObject *PyList_GET_ITEM(object seq, Py_ssize_t index)
    PyObject *PyTuple_GET_ITEM(object seq, Py_ssize_t index)
    bint PyBytes_Check_borrowed "PyBytes_Check"(PyObject *value)
    Py_ssize_t PyBytes_GET_SIZE_borrowed "PyBytes_GET_SIZE"(PyObject *value)
    char *PyBytes_AS_STRING_borrowed "PyBytes_AS_STRING"(PyObject *value)


cdef extern from "sha256_kernels.h" nogil:
    int bh_sha256_supported_paths()
    int bh_sha256_select(int wanted)
    int bh_sha256_current_path()
    void bh_sha256(const uint8_t *data, size_t length, uint8_t *out)
    void bh_hash_nodes_ptr(const uint8_t **lefts, const uint8_t **rights, uint8_t **outs,
                           size_t count)
    void bh_hash_level(const uint8_t *pairs, size_t count, uint8_t *out)
    uint8_t *bh_alloc_buffer(size_t size)
    void bh_free_buffer(uint8_t *buffer)


DEF DIGEST = 32
DEF BATCH_WIDTH = 64
DEF MAX_PATH = 128

PATH_NAMES = ("portable", "shani", "avx512")


# ----------------------------------------------------------------------------- path control

def supported_sha256_paths():
    """Names of the SHA-256 paths this CPU can run, slowest first."""
    cdef int mask = bh_sha256_supported_paths()
    return [name for i, name in enumerate(PATH_NAMES) if mask & (1 << i)]


def select_sha256_path(name=None):
    """Select a SHA-256 path by name (``None``: the fastest supported); returns its name."""
    cdef int wanted = -1
    if name is not None:
        if name not in PATH_NAMES:
            raise ValueError(f"unknown SHA-256 path {name!r}; known: {', '.join(PATH_NAMES)}")
        wanted = PATH_NAMES.index(name)
    cdef int chosen = bh_sha256_select(wanted)
    if chosen < 0:
        raise ValueError(f"this CPU does not support the {name!r} SHA-256 path")
    return PATH_NAMES[chosen]


def current_sha256_path():
    """The name of the selected SHA-256 path."""
    return PATH_NAMES[bh_sha256_current_path()]


# ----------------------------------------------------------------------------- helpers

cdef bytes _digest_bytes(const uint8_t *p):
    return PyBytes_FromStringAndSize(<const char *>p, DIGEST)


cdef uint8_t *_pack_leaves(object leaf_hashes, Py_ssize_t *count) except NULL:
    """Copy a list/tuple of 32-byte ``bytes`` into a new C buffer (at least 32 bytes long)."""
    if not (PyList_Check(leaf_hashes) or PyTuple_Check(leaf_hashes)):
        raise TypeError(
            f"leaf_hashes must be a list or tuple of bytes, not {type(leaf_hashes).__name__}")
    # A typed list makes each item access a plain array read.
    cdef list items = leaf_hashes if PyList_Check(leaf_hashes) else list(leaf_hashes)
    cdef Py_ssize_t n = len(items)
    cdef uint8_t *buf = bh_alloc_buffer(DIGEST * (n if n > 0 else 1))
    if buf == NULL:
        raise MemoryError()
    cdef Py_ssize_t i
    cdef object h
    try:
        for i in range(n):
            h = items[i]
            if not PyBytes_Check(h):
                raise TypeError(f"leaf_hashes[{i}] must be bytes, not {type(h).__name__}")
            if PyBytes_GET_SIZE(h) != DIGEST:
                raise ValueError(
                    f"leaf_hashes[{i}] must be a {DIGEST}-byte hash, got {len(h)} bytes")
            memcpy(buf + DIGEST * i, PyBytes_AS_STRING(h), DIGEST)
    except BaseException:
        bh_free_buffer(buf)
        raise
    count[0] = n
    return buf


cdef void _reduce_to_root(uint8_t *buf, size_t n) noexcept nogil:
    """Reduce ``n`` >= 1 hashes in ``buf`` to their tree hash in ``buf[0:32]`` (destroys buf).

    Pairs are hashed level by level and an odd last node is promoted unchanged, which equals
    RFC 9162's split at the largest power of two.
    """
    cdef size_t pairs
    while n > 1:
        pairs = n // 2
        bh_hash_level(buf, pairs, buf)
        if n & 1:
            memcpy(buf + DIGEST * pairs, buf + DIGEST * (n - 1), DIGEST)
        n = pairs + (n & 1)


cdef void _range_root(const uint8_t *leaves, size_t lo, size_t hi, uint8_t *scratch,
                      uint8_t *out) noexcept nogil:
    """The tree hash of leaves[lo:hi] (hi > lo) into ``out``, using ``scratch`` (>= hi-lo hashes)."""
    memcpy(scratch, leaves + DIGEST * lo, DIGEST * (hi - lo))
    _reduce_to_root(scratch, hi - lo)
    memcpy(out, scratch, DIGEST)


cdef inline size_t _split(size_t n) noexcept nogil:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    cdef size_t k = 1
    while k << 1 < n:
        k <<= 1
    return k


# ----------------------------------------------------------------------------- builders

def hash_leaf(data):
    """``SHA-256(0x00 || data)`` for bytes-like ``data`` of any length."""
    check_bytes("data", data)
    cdef bytes message = b"\x00" + bytes(data)
    cdef uint8_t out[DIGEST]
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(message)
    cdef size_t length = PyBytes_GET_SIZE(message)
    with nogil:
        bh_sha256(p, length, out)
    return _digest_bytes(out)


def hash_children(left, right):
    """``SHA-256(0x01 || left || right)``; both must be 32-byte hashes (ValueError otherwise)."""
    check_hash_arg("left", left)
    check_hash_arg("right", right)
    cdef bytes l = bytes(left)
    cdef bytes r = bytes(right)
    cdef const uint8_t *lp = <const uint8_t *>PyBytes_AS_STRING(l)
    cdef const uint8_t *rp = <const uint8_t *>PyBytes_AS_STRING(r)
    cdef uint8_t out[DIGEST]
    cdef uint8_t *op = out
    bh_hash_nodes_ptr(&lp, &rp, &op, 1)
    return _digest_bytes(out)


def merkle_root(leaf_hashes):
    """The tree hash over already-hashed leaves; ``SHA-256(b"")`` for the empty tree."""
    cdef Py_ssize_t n
    cdef uint8_t *buf = _pack_leaves(leaf_hashes, &n)
    try:
        if n == 0:
            with nogil:
                bh_sha256(buf, 0, buf)
        else:
            with nogil:
                _reduce_to_root(buf, n)
        return _digest_bytes(buf)
    finally:
        bh_free_buffer(buf)


def inclusion_proof(leaf_hashes, index):
    """RFC 9162 §2.1.3.1 PATH(index, D[n]): sibling hashes from the leaf up to the root."""
    check_size("index", index)
    cdef Py_ssize_t n
    cdef uint8_t *buf = _pack_leaves(leaf_hashes, &n)
    cdef uint8_t path[MAX_PATH * DIGEST]
    cdef int path_len = 0
    cdef size_t i, size, sibling, pairs
    try:
        if not 0 <= index < n:
            raise IndexError(f"leaf index {index} is outside a tree of {n} leaves")
        i = index
        size = n
        with nogil:
            while size > 1:
                sibling = i ^ 1
                if sibling < size:  # else the node is promoted: no sibling at this level
                    memcpy(path + DIGEST * path_len, buf + DIGEST * sibling, DIGEST)
                    path_len += 1
                pairs = size // 2
                bh_hash_level(buf, pairs, buf)
                if size & 1:
                    memcpy(buf + DIGEST * pairs, buf + DIGEST * (size - 1), DIGEST)
                size = pairs + (size & 1)
                i >>= 1
        return [_digest_bytes(path + DIGEST * k) for k in range(path_len)]
    finally:
        bh_free_buffer(buf)


def consistency_proof(leaf_hashes, old_size):
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[n]) for ``1 <= old_size <= n`` (ValueError otherwise)."""
    check_size("old_size", old_size)
    cdef Py_ssize_t n
    cdef uint8_t *buf = _pack_leaves(leaf_hashes, &n)
    cdef uint8_t *scratch = NULL
    cdef uint8_t path[MAX_PATH * DIGEST]
    cdef int path_len
    cdef size_t m
    try:
        if not 1 <= old_size <= n:
            raise ValueError(f"old_size must be within 1..{n} for this tree, got {old_size}")
        scratch = bh_alloc_buffer(DIGEST * n)
        if scratch == NULL:
            raise MemoryError()
        m = old_size
        with nogil:
            path_len = _consistency_path(buf, n, m, scratch, path)
        return [_digest_bytes(path + DIGEST * k) for k in range(path_len)]
    finally:
        bh_free_buffer(scratch)
        bh_free_buffer(buf)


cdef int _consistency_path(const uint8_t *leaves, size_t n, size_t m, uint8_t *scratch,
                           uint8_t *path) noexcept nogil:
    """SUBPROOF(m, D[0:n], true) written innermost-first into ``path``; returns its length.

    The recursion descends into one side only, so it is a loop; the subtree hashes of the
    other sides are collected outermost-first and reversed at the end.
    """
    cdef uint8_t outer[MAX_PATH * DIGEST]
    cdef int outer_len = 0, path_len = 0, k_out
    cdef size_t lo = 0, hi = n, k
    cdef bint complete = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            _range_root(leaves, lo + k, hi, scratch, outer + DIGEST * outer_len)
            hi = lo + k
        else:
            _range_root(leaves, lo, lo + k, scratch, outer + DIGEST * outer_len)
            lo += k
            m -= k
            complete = False
        outer_len += 1
    if not complete:
        _range_root(leaves, lo, hi, scratch, path)
        path_len = 1
    for k_out in range(outer_len - 1, -1, -1):
        memcpy(path + DIGEST * path_len, outer + DIGEST * k_out, DIGEST)
        path_len += 1
    return path_len


# ----------------------------------------------------------------------------- verifiers

cdef struct InclusionJob:
    size_t offset      # of the leaf hash in the job buffer; the root follows, then the proof
    int proof_len
    uint64_t index
    uint64_t tree_size
    bint well_formed


cdef struct JobBuffer:
    uint8_t *data
    size_t used
    size_t capacity


cdef struct Lane:
    size_t job
    int pos
    uint64_t fn
    uint64_t sn
    uint8_t r[DIGEST]


cdef bint _is_digest(object value):
    return PyBytes_Check(value) and PyBytes_GET_SIZE(value) == DIGEST


cdef bint _as_u64(object value, uint64_t *out):
    """``value`` (an int) as a u64; False when it is negative or does not fit."""
    cdef unsigned long long converted = PyLong_AsUnsignedLongLong(value)
    if converted == <unsigned long long>-1 and PyErr_Occurred():
        PyErr_Clear()
        return False
    out[0] = converted
    return True


cdef int _reserve(JobBuffer *buf, size_t extra) except -1:
    """Make room for ``extra`` more bytes (doubling, so appends are amortized O(1))."""
    cdef size_t wanted = buf.used + extra, capacity = buf.capacity or 4096
    cdef uint8_t *grown
    if wanted <= buf.capacity:
        return 0
    while capacity < wanted:
        capacity *= 2
    grown = <uint8_t *>realloc(buf.data, capacity)
    if grown == NULL:
        raise MemoryError()
    buf.data = grown
    buf.capacity = capacity
    return 0


cdef bint _fast_shape(object item):
    """A tuple (bytes, int, int, list, bytes): fields usable without conversion."""
    if not (PyTuple_Check(item) and PyTuple_GET_SIZE(item) == 5):
        return False
    return (PyBytes_Check(<object>PyTuple_GET_ITEM(item, 0))
            and PyBytes_Check(<object>PyTuple_GET_ITEM(item, 4))
            and type(<object>PyTuple_GET_ITEM(item, 1)) is int
            and type(<object>PyTuple_GET_ITEM(item, 2)) is int
            and PyList_Check(<object>PyTuple_GET_ITEM(item, 3)))


cdef tuple _normalized_item(Py_ssize_t position, object item):
    """The reference's type checks (TypeError), then the item in the fast shape, all bytes."""
    leaf, index, tree_size, proof, root = check_batch_item(position, item)
    return (bytes(leaf), index, tree_size, [bytes(p) for p in proof], bytes(root))


cdef int _add_item(object item, Py_ssize_t position, InclusionJob *job,
                   JobBuffer *buf) except -1:
    """Type-check one item and copy its hashes into ``buf`` in one pass over its objects.

    Objects are read through borrowed references (no reference-count writes): a batch touches
    every proof hash once, and those touches are most of its cost outside the hashing.
    Malformed values make the job fail (``well_formed`` false); wrong types raise TypeError.
    """
    if not _fast_shape(item):
        item = _normalized_item(position, item)
    cdef object proof = <object>PyTuple_GET_ITEM(item, 3)
    cdef Py_ssize_t k, n = PyList_GET_SIZE(proof)
    cdef PyObject *element
    cdef bint sizes_ok = True
    _reserve(buf, DIGEST * (2 + <size_t>n))
    cdef uint8_t *cursor = buf.data + buf.used + 2 * DIGEST
    for k in range(n):
        element = PyList_GET_ITEM(proof, k)
        if not PyBytes_Check_borrowed(element):
            return _add_item(_normalized_item(position, item), position, job, buf)
        if PyBytes_GET_SIZE_borrowed(element) == DIGEST:
            memcpy(cursor + DIGEST * k, PyBytes_AS_STRING_borrowed(element), DIGEST)
        else:
            sizes_ok = False
    job.well_formed = (
        sizes_ok and n <= MAX_PROOF_HASHES
        and _as_u64(<object>PyTuple_GET_ITEM(item, 1), &job.index)
        and _as_u64(<object>PyTuple_GET_ITEM(item, 2), &job.tree_size)
        and job.index < job.tree_size
        and _is_digest(<object>PyTuple_GET_ITEM(item, 0))
        and _is_digest(<object>PyTuple_GET_ITEM(item, 4)))
    if job.well_formed:
        job.offset = buf.used
        job.proof_len = <int>n
        memcpy(buf.data + buf.used, PyBytes_AS_STRING(<object>PyTuple_GET_ITEM(item, 0)), DIGEST)
        memcpy(buf.data + buf.used + DIGEST,
               PyBytes_AS_STRING(<object>PyTuple_GET_ITEM(item, 4)), DIGEST)
        buf.used += DIGEST * (2 + <size_t>n)
    return 0


cdef bint _load_lane(Lane *lane, const InclusionJob *jobs, size_t njobs, const uint8_t *data,
                     size_t *next_job, uint8_t *results) noexcept nogil:
    """Put the next well-formed job into ``lane`` (malformed ones fail at once)."""
    cdef size_t j
    while next_job[0] < njobs:
        j = next_job[0]
        next_job[0] += 1
        if not jobs[j].well_formed:
            results[j] = 0
            continue
        lane.job = j
        lane.pos = 0
        lane.fn = jobs[j].index
        lane.sn = jobs[j].tree_size - 1
        memcpy(lane.r, data + jobs[j].offset, DIGEST)
        return True
    return False


cdef int _schedule_step(Lane *lane, const uint8_t *proof, const uint8_t **lefts,
                        const uint8_t **rights, uint8_t **outs) noexcept nogil:
    """One RFC 9162 §2.1.3.2 step: queue the node hash of the lane (returns 1)."""
    cdef const uint8_t *p = proof + DIGEST * lane.pos
    if lane.fn & 1 or lane.fn == lane.sn:
        lefts[0] = p
        rights[0] = lane.r
        while not lane.fn & 1 and lane.fn != 0:
            lane.fn >>= 1
            lane.sn >>= 1
    else:
        lefts[0] = lane.r
        rights[0] = p
    outs[0] = lane.r
    lane.fn >>= 1
    lane.sn >>= 1
    lane.pos += 1
    return 1


cdef void _verify_jobs(const InclusionJob *jobs, size_t njobs, const uint8_t *data,
                       uint8_t *results) noexcept nogil:
    """Verify every job, up to BATCH_WIDTH proofs advancing together one hash per step."""
    cdef Lane lanes[BATCH_WIDTH]
    cdef const uint8_t *lefts[BATCH_WIDTH]
    cdef const uint8_t *rights[BATCH_WIDTH]
    cdef uint8_t *outs[BATCH_WIDTH]
    cdef size_t next_job = 0
    cdef int nlanes = 0, s, count
    cdef Lane *lane
    cdef const InclusionJob *job
    while nlanes < BATCH_WIDTH and _load_lane(&lanes[nlanes], jobs, njobs, data, &next_job,
                                              results):
        nlanes += 1
    while nlanes > 0:
        count = 0
        s = 0
        while s < nlanes:
            lane = &lanes[s]
            job = &jobs[lane.job]
            if lane.pos == job.proof_len or lane.sn == 0:
                results[lane.job] = (lane.pos == job.proof_len and lane.sn == 0
                                     and memcmp(lane.r, data + job.offset + DIGEST, DIGEST) == 0)
                if not _load_lane(lane, jobs, njobs, data, &next_job, results):
                    nlanes -= 1  # the last lane (not yet visited this step) takes this slot
                    lanes[s] = lanes[nlanes]
                continue
            count += _schedule_step(lane, data + job.offset + 2 * DIGEST, &lefts[count],
                                    &rights[count], &outs[count])
            s += 1
        if count:
            bh_hash_nodes_ptr(lefts, rights, outs, count)


cdef list _verify_sequence(list items):
    """Check and copy the items (with the GIL), then hash them all without it."""
    cdef Py_ssize_t njobs = len(items), j
    cdef InclusionJob *jobs = <InclusionJob *>malloc(sizeof(InclusionJob) * (njobs or 1))
    cdef uint8_t *results = <uint8_t *>malloc(njobs or 1)
    cdef JobBuffer buf
    buf.data = NULL
    buf.used = buf.capacity = 0
    try:
        if jobs == NULL or results == NULL:
            raise MemoryError()
        for j in range(njobs):
            _add_item(<object>PyList_GET_ITEM(items, j), j, &jobs[j], &buf)
        with nogil:
            _verify_jobs(jobs, njobs, buf.data, results)
        verdicts = PyList_New(njobs)
        for j in range(njobs):
            verdict = True if results[j] else False
            Py_INCREF(verdict)
            PyList_SET_ITEM(verdicts, j, verdict)
        return verdicts
    finally:
        free(jobs)
        free(buf.data)
        free(results)


def verify_inclusion(leaf_hash, index, tree_size, proof, root):
    """RFC 9162 §2.1.3.2: does ``proof`` show ``leaf_hash`` at ``index`` in the tree ``root``?"""
    check_inclusion_args(leaf_hash, index, tree_size, proof, root)
    item = (bytes(leaf_hash), index, tree_size, [bytes(p) for p in proof], bytes(root))
    return _verify_sequence([item])[0]


def verify_inclusion_batch(items):
    """``verify_inclusion`` over many ``(leaf_hash, index, tree_size, proof, root)`` items.

    All hashing runs with the GIL released, many proofs at once on the multi-buffer path.
    """
    if isinstance(items, (bytes, bytearray, str)) or not hasattr(items, "__iter__"):
        raise TypeError(f"items must be an iterable of tuples, not {type(items).__name__}")
    # A private list: the caller's list cannot change under us while items are read.
    return _verify_sequence(list(items))


def verify_consistency(old_size, new_size, old_root, new_root, proof):
    """RFC 9162 §2.1.4.2: is the tree ``new_root`` an append-only extension of ``old_root``?

    The cases decided without hashing are ``_contract.consistency_precheck``'s.
    """
    verdict = consistency_precheck(old_size, new_size, old_root, new_root, proof)
    if verdict is not None:
        return verdict
    old_b, new_b = bytes(old_root), bytes(new_root)
    path = [bytes(p) for p in proof]
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a tree node
        path.insert(0, old_b)
    return _verify_consistency_path(old_size, new_size, old_b, new_b, path)


cdef bint _verify_consistency_path(uint64_t old_size, uint64_t new_size, bytes old_root,
                                   bytes new_root, list path):
    cdef uint64_t fn = old_size - 1, sn = new_size - 1
    cdef uint8_t fr[DIGEST]
    cdef uint8_t sr[DIGEST]
    cdef const uint8_t *lefts[2]
    cdef const uint8_t *rights[2]
    cdef uint8_t *outs[2]
    while fn & 1:
        fn >>= 1
        sn >>= 1
    memcpy(fr, PyBytes_AS_STRING(path[0]), DIGEST)
    memcpy(sr, PyBytes_AS_STRING(path[0]), DIGEST)
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            lefts[0] = lefts[1] = <const uint8_t *>PyBytes_AS_STRING(c)
            rights[0] = fr; outs[0] = fr
            rights[1] = sr; outs[1] = sr
            bh_hash_nodes_ptr(lefts, rights, outs, 2)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            lefts[0] = sr
            rights[0] = <const uint8_t *>PyBytes_AS_STRING(c)
            outs[0] = sr
            bh_hash_nodes_ptr(lefts, rights, outs, 1)
        fn >>= 1
        sn >>= 1
    return (sn == 0 and memcmp(fr, PyBytes_AS_STRING(old_root), DIGEST) == 0
            and memcmp(sr, PyBytes_AS_STRING(new_root), DIGEST) == 0)
