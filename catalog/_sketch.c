/* The overlap sketch's inner loops, compiled: the same integers as catalog/overlap.py's numpy
 * code (_group_shingles, _levels, _signatures), computed in one pass per text instead of one
 * numpy pass per step. catalog/overlap.py uses this module when it was built and falls back to
 * numpy otherwise; tests/unit/catalog/test_overlap_native.py checks that both give the same
 * values.
 *
 * Every function takes its inputs and its output arrays as buffers (numpy arrays made by the
 * caller), checks their sizes, and works without the GIL. All arithmetic is on uint64_t, i.e.
 * mod 2^64, as numpy's uint64 is.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512 1
#endif

#define SHINGLE_TOKENS 5
#define NOT_WORD 0
#define SPACED 1
#define UNSPACED 2

static inline uint64_t fmix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
}

/* Whether the AVX-512 paths are used (signature_row_avx512, least_shingle_avx512,
 * ascii_word_tokens_avx512): where the CPU has AVX-512F, DQ and BW, unless use_vectors(False) turned them off (the tests compare both
 * ways on one machine). */
static int vectors_wanted = 1, vectors_available = 0;

static void find_vectors(void) {
#ifdef HAVE_AVX512
    __builtin_cpu_init(); /* libgcc's CPUID check also asks the OS (XGETBV) for AVX-512 state */
    vectors_available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw");
#endif
}

static int too_small(const Py_buffer *view, Py_ssize_t needed, const char *what) {
    if (view->len < needed) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, %zd needed", what, view->len, needed);
        return 1;
    }
    return 0;
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++) {
        if (views[i].obj != NULL) PyBuffer_Release(&views[i]);
    }
}

/* The shingle window over a text's tokens: the last SHINGLE_TOKENS tokens (the newest last),
 * how many tokens and shingles there were, and the least fmix(hash ^ seed) so far. Each token
 * read is pushed; a shingle's hash is written to out, or (out NULL) only counts towards least.
 * Both ways of reading a text (by characters, text_shingles; ASCII by words,
 * ascii_word_shingles) share it, so their shingles cannot drift apart. */
typedef struct {
    uint64_t ring[SHINGLE_TOKENS];
    Py_ssize_t tokens, written;
    uint64_t least;
} Window;

static inline void window_emit(Window *w, uint64_t sum, uint64_t *out, uint64_t seed) {
    uint64_t h = fmix(sum);
    if (out != NULL) {
        out[w->written] = h;
    } else {
        uint64_t v = fmix(h ^ seed);
        w->least = v < w->least ? v : w->least;
    }
    w->written++;
}

static inline void window_push(Window *w, uint64_t token, const uint64_t *weights,
                               uint64_t *out, uint64_t seed) {
    for (int m = 0; m < SHINGLE_TOKENS - 1; m++) w->ring[m] = w->ring[m + 1];
    w->ring[SHINGLE_TOKENS - 1] = token;
    if (++w->tokens >= SHINGLE_TOKENS) {
        uint64_t sum = 0;
        for (int m = 0; m < SHINGLE_TOKENS; m++) sum += w->ring[m] * weights[m];
        window_emit(w, sum, out, seed);
    }
}

/* The end of the text: a text of 1 to SHINGLE_TOKENS - 1 tokens has one shingle of them all.
 * Returns the number of shingles, and sets *anchor to least (out NULL). */
static inline Py_ssize_t window_finish(Window *w, const uint64_t *weights, uint64_t *out,
                                       uint64_t seed, uint64_t *anchor) {
    if (w->tokens > 0 && w->tokens < SHINGLE_TOKENS) {
        uint64_t sum = 0;
        for (Py_ssize_t m = 0; m < w->tokens; m++)
            sum += w->ring[SHINGLE_TOKENS - w->tokens + m] * weights[m];
        window_emit(w, sum, out, seed);
    }
    if (out == NULL) *anchor = w->least;
    return w->written;
}

#ifdef HAVE_AVX512
/* fmix on 8 lanes. */
__attribute__((target("avx512f,avx512dq")))
static inline __m512i fmix8(__m512i x) {
    x = _mm512_xor_si512(x, _mm512_srli_epi64(x, 33));
    x = _mm512_mullo_epi64(x, _mm512_set1_epi64((long long)0xFF51AFD7ED558CCDULL));
    x = _mm512_xor_si512(x, _mm512_srli_epi64(x, 33));
    x = _mm512_mullo_epi64(x, _mm512_set1_epi64((long long)0xC4CEB9FE1A85EC53ULL));
    return _mm512_xor_si512(x, _mm512_srli_epi64(x, 33));
}

/* min(least, the least fmix(fmix(sum) ^ seed) over the shingles of n >= SHINGLE_TOKENS tokens),
 * the sums taken 8 shingles at a time (the last group masked): what window_push computes
 * token by token without out, where each shingle waits for the one before. */
__attribute__((target("avx512f,avx512dq")))
static uint64_t least_shingle_avx512(const uint64_t *tokens, Py_ssize_t n, const uint64_t *weights,
                                     uint64_t seed, uint64_t least) {
    const Py_ssize_t shingles = n - (SHINGLE_TOKENS - 1);
    __m512i w[SHINGLE_TOKENS];
    for (int m = 0; m < SHINGLE_TOKENS; m++) w[m] = _mm512_set1_epi64((long long)weights[m]);
    const __m512i salt = _mm512_set1_epi64((long long)seed);
    __m512i acc = _mm512_set1_epi64(-1);
    for (Py_ssize_t i = 0; i < shingles; i += 8) {
        const __mmask8 lanes = shingles - i >= 8 ? 0xFF : (__mmask8)((1u << (shingles - i)) - 1);
        __m512i sum = _mm512_mullo_epi64(_mm512_maskz_loadu_epi64(lanes, tokens + i), w[0]);
        for (int m = 1; m < SHINGLE_TOKENS; m++) {
            __m512i t = _mm512_maskz_loadu_epi64(lanes, tokens + i + m);
            sum = _mm512_add_epi64(sum, _mm512_mullo_epi64(t, w[m]));
        }
        __m512i v = fmix8(_mm512_xor_si512(fmix8(sum), salt));
        acc = _mm512_mask_min_epu64(acc, lanes, acc, v);
    }
    uint64_t found = _mm512_reduce_min_epu64(acc);
    return found < least ? found : least;
}
#endif

/* The shingles of n tokens, counted, and their least fmix(hash ^ seed) folded into *anchor:
 * window_push for each token then window_finish (out NULL), with the vector path for texts of
 * a whole shingle or more. Only called where the vector path is in use. */
static inline Py_ssize_t tokens_least(const uint64_t *tokens, Py_ssize_t n,
                                      const uint64_t *weights, uint64_t seed, uint64_t *anchor) {
    if (n == 0) return 0;
    if (n < SHINGLE_TOKENS) {
        uint64_t sum = 0;
        for (Py_ssize_t m = 0; m < n; m++) sum += tokens[m] * weights[m];
        uint64_t v = fmix(fmix(sum) ^ seed);
        if (v < *anchor) *anchor = v;
        return 1;
    }
#ifdef HAVE_AVX512
    *anchor = least_shingle_avx512(tokens, n, weights, seed, *anchor);
#endif
    return n - (SHINGLE_TOKENS - 1);
}

/* The shingles of one text (see shingles below), or only their sample anchor; returns how many.
 * With lower, the text is ASCII bytes to be lower-cased first (as catalog.overlap._normalised
 * does). With out, each shingle's hash is written there; without (NULL), *anchor becomes the
 * least fmix(hash ^ seed) over them, as levels below computes it from the written hashes: from
 * the tokens kept in `tokens` (room for one per code point) by tokens_least if that is given. */
static inline Py_ssize_t text_shingles(const void *text, int width, Py_ssize_t length,
                                       const uint8_t *classes, Py_ssize_t n_classes,
                                       const uint64_t *weights, uint64_t base, int lower,
                                       uint64_t *tokens, uint64_t *out, uint64_t seed,
                                       uint64_t *anchor) {
    Py_ssize_t count = 0;
    const uint8_t *bytes = text;
    const uint32_t *wide = text;
    Window window = {.least = out == NULL ? *anchor : 0};
    Py_ssize_t i = 0;
#define CODE(i) (width == 1 ? (uint32_t)bytes[i] : wide[i])
#define LOWER(c) (lower && (c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))
    while (i < length) {
        uint32_t c = CODE(i);
        uint8_t kind = (Py_ssize_t)c < n_classes ? classes[c] : NOT_WORD;
        uint64_t token;
        if (kind == SPACED) {
            token = 0;
            do {
                token = token * base + LOWER(c);
                if (++i == length) break;
                c = CODE(i);
            } while ((Py_ssize_t)c < n_classes && classes[c] == SPACED);
        } else if (kind == UNSPACED) {
            token = c;
            i++;
        } else {
            i++;
            continue;
        }
        if (tokens != NULL) {
            tokens[count++] = token;
        } else {
            window_push(&window, token, weights, out, seed);
        }
    }
#undef CODE
#undef LOWER
    if (tokens != NULL) return tokens_least(tokens, count, weights, seed, anchor);
    return window_finish(&window, weights, out, seed, anchor);
}

/* shingles(codes, width, lengths, classes, weights, base, out, counts) -> written
 *
 * codes: the texts joined by one separator code point, width 1 (uint8) or 4 (uint32) bytes each;
 * lengths: intp, each text's length in code points (without the separator); classes: uint8, the
 * word class of each code point (a code point beyond the table is not a word character);
 * weights: SHINGLE_TOKENS uint64; out: uint64, room for one hash per code point; counts: intp,
 * one per text. A token is a run of SPACED code points, hashed sum(c_i * base^(end-1-i)), or
 * one UNSPACED code point, hashed as its value. A text's shingles are fmix(sum_m t_(j+m) * w_m)
 * over its windows of SHINGLE_TOKENS tokens, or one over all its tokens if it has fewer. */
static PyObject *shingles(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer v[6] = {{0}};
    int width;
    unsigned long long base;
    if (!PyArg_ParseTuple(args, "y*iy*y*y*Kw*w*", &v[0], &width, &v[1], &v[2], &v[3], &base,
                          &v[4], &v[5])) {
        release(v, 6);
        return NULL;
    }
    PyObject *result = NULL;
    if (width != 1 && width != 4) {
        PyErr_SetString(PyExc_ValueError, "width must be 1 or 4");
        goto done;
    }
    Py_ssize_t n_codes = v[0].len / width;
    Py_ssize_t n_texts = v[1].len / (Py_ssize_t)sizeof(Py_ssize_t);
    if (too_small(&v[3], SHINGLE_TOKENS * 8, "weights") ||
        too_small(&v[4], n_codes * 8, "out") ||
        too_small(&v[5], n_texts * (Py_ssize_t)sizeof(Py_ssize_t), "counts")) {
        goto done;
    }
    const Py_ssize_t *lengths = v[1].buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        if (lengths[t] < 0) {
            PyErr_SetString(PyExc_ValueError, "negative text length");
            goto done;
        }
        total += lengths[t] + (t > 0);
    }
    if (total > n_codes) {
        PyErr_SetString(PyExc_ValueError, "lengths exceed the codes");
        goto done;
    }
    Py_ssize_t written = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *bytes = v[0].buf;
    const uint32_t *wide = v[0].buf;
    Py_ssize_t *counts = v[5].buf;
    Py_ssize_t pos = 0;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        uint64_t *out = (uint64_t *)v[4].buf + written;
        Py_ssize_t n = width == 1
            ? text_shingles(bytes + pos, 1, lengths[t], v[2].buf, v[2].len, v[3].buf, base, 0, NULL, out,
                            0, NULL)
            : text_shingles(wide + pos, 4, lengths[t], v[2].buf, v[2].len, v[3].buf, base, 0, NULL, out,
                            0, NULL);
        written += n;
        counts[t] = n;
        pos += lengths[t] + 1;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(written);
done:
    release(v, 6);
    return result;
}

#define UNFOLDED 0xFFFFFFFFu
#define FOLD_ENTRIES 0x10000

/* The code point of well-formed UTF-8 of the BMP at s[i], folded into *folded: the index after
 * it, or -1 (invalid, cut at length, beyond the BMP, or UNFOLDED). What fold_text and
 * folded_run_tokens both decode with, so that they decline alike. */
static inline Py_ssize_t fold_next(const uint8_t *s, Py_ssize_t i, Py_ssize_t length,
                                   const uint32_t *fold, uint32_t *folded) {
    uint32_t c = s[i], code;
    if (c < 0x80) {
        code = c;
        i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        if (i + 1 >= length || (s[i + 1] & 0xC0) != 0x80) return -1;
        code = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
        i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        if (i + 2 >= length || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
            return -1;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0))
            return -1; /* overlong, or a surrogate */
        code = ((c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
        i += 3;
    } else {
        return -1;
    }
    *folded = fold[code];
    return *folded == UNFOLDED ? -1 : i;
}

/* A document's first `length` bytes, well-formed UTF-8 of the BMP, as code points mapped
 * through fold (FOLD_ENTRIES entries: the lower-case form of each code point that NFKC leaves
 * as it is in any text of such code points, UNFOLDED for the others), into out. Returns how
 * many, or -1 to decline: a code point fold does not map, one beyond the BMP, or bytes that are
 * not well-formed UTF-8, including a sequence cut at the end (the caller normalises those). */
static Py_ssize_t fold_text(const uint8_t *s, Py_ssize_t length, const uint32_t *fold,
                            uint32_t *out) {
    Py_ssize_t i = 0, n = 0;
    while (i < length) {
        i = fold_next(s, i, length, fold, &out[n++]);
        if (i < 0) return -1;
    }
    return n;
}

static int is_ascii(const uint8_t *s, Py_ssize_t length) {
    Py_ssize_t i = 0;
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, s + i, 8);
        if (word & 0x8080808080808080ULL) return 0;
    }
    for (; i < length; i++) {
        if (s[i] & 0x80) return 0;
    }
    return 1;
}

/* Bytes of scratch per byte of the longest head (and 16 more): what mixed_tokens_avx512 needs,
 * the most of the ways to read a text (14.25 per byte and 36). */
#define SCRATCH_PER_BYTE 24

/* The documents of a sequence of buffers, each read up to max_bytes, with what a pass over them
 * needs: room for the code points of the longest head, and which documents were declined. */
typedef struct {
    PyObject *sequence;
    Py_buffer *views;
    Py_ssize_t *lengths; /* of each head: at most max_bytes */
    Py_ssize_t count, taken, longest;
    uint32_t *scratch;
    uint8_t *declined;
} Documents;

static int open_documents(Documents *d, PyObject *documents, Py_ssize_t max_bytes) {
    d->sequence = PySequence_Fast(documents, "documents must be a sequence");
    if (d->sequence == NULL) return -1;
    d->count = PySequence_Fast_GET_SIZE(d->sequence);
    d->views = PyMem_Calloc(d->count > 0 ? d->count : 1, sizeof(Py_buffer));
    d->lengths = PyMem_Calloc(d->count > 0 ? d->count : 1, sizeof(Py_ssize_t));
    if (d->views == NULL || d->lengths == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (; d->taken < d->count; d->taken++) {
        Py_buffer *view = &d->views[d->taken];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(d->sequence, d->taken), view,
                               PyBUF_SIMPLE) < 0)
            return -1;
        d->lengths[d->taken] = view->len < max_bytes ? view->len : max_bytes;
        if (d->lengths[d->taken] > d->longest) d->longest = d->lengths[d->taken];
    }
    /* The longest head's code points followed by its tokens (at most one per code point, after
     * longest/2 + 1 words); or, ASCII read by words, its bitmap of word characters followed by
     * its tokens (at most longest/64 + 2 and longest/2 + 1 words); or, any text read by runs
     * (mixed_tokens_avx512), two bitmaps, its runs, its tokens and where its ASCII runs' go. */
    d->scratch = PyMem_Malloc((size_t)(d->longest + 16) * SCRATCH_PER_BYTE);
    d->declined = PyMem_Calloc(d->count > 0 ? d->count : 1, 1);
    if (d->scratch == NULL || d->declined == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void close_documents(Documents *d) {
    if (d->views != NULL) {
        for (Py_ssize_t i = 0; i < d->taken; i++) PyBuffer_Release(&d->views[i]);
        PyMem_Free(d->views);
    }
    PyMem_Free(d->lengths);
    PyMem_Free(d->scratch);
    PyMem_Free(d->declined);
    Py_XDECREF(d->sequence);
}

typedef struct {
    uint64_t chunk[9][8]; /* chunk[m][j] = base^(m-1-j) for j < m, else 0 */
    uint64_t power[9];    /* base^m */
} Powers;

static void make_powers(Powers *p, uint64_t base) {
    p->power[0] = 1;
    for (int m = 1; m <= 8; m++) p->power[m] = p->power[m - 1] * base;
    for (int m = 0; m <= 8; m++)
        for (int j = 0; j < 8; j++) p->chunk[m][j] = j < m ? p->power[m - 1 - j] : 0;
}

static int ascii_words_are_alnum(const uint8_t *classes, Py_ssize_t n_classes) {
    if (n_classes < 128) return 0;
    for (int c = 0; c < 128; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (classes[c] != (alnum ? SPACED : NOT_WORD)) return 0;
    }
    return 1;
}

#if defined(__SSE2__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <emmintrin.h>
#define WORD_BITS 1

/* ASCII text whose word characters are exactly [0-9A-Za-z] (what the classes table says of
 * ASCII; ascii_words_are_alnum checks it) is read a word at a time instead of a character at a
 * time: a bitmap of its word characters (SSE2, 16 bytes a step), the words found in it with
 * count-trailing-zeros, and each word's hash sum(c_i * base^(n-1-i)) from 8 of its bytes at a
 * time as 8 independent products (lower-casing an ASCII letter or digit is OR 0x20). The hashes
 * are the same integers as text_shingles gives; what this saves is the branch mispredicted at
 * the end of every word and the chain of one multiplication per character. */
static inline __m128i in_range(__m128i v, char low, char high) {
    __m128i shifted = _mm_sub_epi8(v, _mm_set1_epi8(low));
    __m128i width = _mm_set1_epi8((char)(high - low));
    return _mm_cmpeq_epi8(_mm_min_epu8(shifted, width), shifted); /* unsigned shifted <= width */
}

/* Bit i of bits is set when text[i] is a letter or digit; bits beyond length are clear. */
static void word_bitmap(const uint8_t *text, Py_ssize_t length, uint64_t *bits) {
    Py_ssize_t words = (length + 63) / 64;
    memset(bits, 0, (size_t)(words > 0 ? words : 1) * 8);
    Py_ssize_t i = 0;
    for (; i + 16 <= length; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(text + i));
        __m128i hit = _mm_or_si128(in_range(v, '0', '9'),
                                   _mm_or_si128(in_range(v, 'A', 'Z'), in_range(v, 'a', 'z')));
        bits[i >> 6] |= (uint64_t)(unsigned)_mm_movemask_epi8(hit) << (i & 63);
    }
    for (; i < length; i++) {
        uint8_t c = text[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        bits[i >> 6] |= (uint64_t)alnum << (i & 63);
    }
}

/* The first position from pos on whose bit is `set` (1 or 0), or length. */
static inline Py_ssize_t next_bit(const uint64_t *bits, Py_ssize_t length, Py_ssize_t pos,
                                  int set) {
    if (pos >= length) return length;
    Py_ssize_t w = pos >> 6, words = (length + 63) / 64;
    uint64_t x = (set ? bits[w] : ~bits[w]) & (~0ULL << (pos & 63));
    while (x == 0) {
        if (++w == words) return length;
        x = set ? bits[w] : ~bits[w];
    }
    Py_ssize_t found = (w << 6) + __builtin_ctzll(x);
    return found < length ? found : length;
}

/* hash * base^n + sum(lower(c_i) * base^(n-1-i)) over the word text[0:n] (letters and digits,
 * n >= 1), where text[0:room] may be read (room >= n): with hash 0, the word's token. */
static inline uint64_t word_hash_from(uint64_t hash, const uint8_t *text, Py_ssize_t n,
                                      Py_ssize_t room, const Powers *p) {
    for (;;) {
        int m = n < 8 ? (int)n : 8;
        uint64_t x = 0;
        if (room >= 8) {
            memcpy(&x, text, 8); /* one load; the bytes past the word are multiplied by 0 */
        } else {
            memcpy(&x, text, (size_t)m);
        }
        x |= 0x2020202020202020ULL;
        const uint64_t *q = p->chunk[m];
        uint64_t h = 0;
        for (int j = 0; j < 8; j++) h += ((x >> (8 * j)) & 0xFF) * q[j];
        hash = hash * p->power[m] + h;
        if (n <= 8) return hash;
        text += 8;
        n -= 8;
        room -= 8;
    }
}

static inline uint64_t word_hash(const uint8_t *text, Py_ssize_t n, Py_ssize_t room,
                                 const Powers *p) {
    return word_hash_from(0, text, n, room, p);
}

#ifdef HAVE_AVX512
#define WORD_VECTORS 1
/* What hashing 8 ASCII words at a time needs: the text, and rows[j][m - 1], the power of base
 * that byte j of an m-byte word has (0 past the word). */
typedef struct {
    const uint8_t *text;
    Py_ssize_t length;
    const Powers *p;
    __m512i row[8];
} WordHasher;

__attribute__((target("avx512f,avx512dq,avx512bw")))
static inline void word_hasher(WordHasher *h, const uint8_t *text, Py_ssize_t length,
                               const Powers *p) {
    uint64_t rows[8][8];
    for (int j = 0; j < 8; j++)
        for (int m = 1; m <= 8; m++) rows[j][m - 1] = p->chunk[m][j];
    for (int j = 0; j < 8; j++) h->row[j] = _mm512_loadu_si512(rows[j]);
    h->text = text;
    h->length = length;
    h->p = p;
}

/* The tokens of the words packed (start | length << 32) in the lanes: from the first 8 bytes
 * of each (one gather) times the powers of base its length gives each byte. *rest: the lanes
 * still to finish with word_rest, the words within 8 bytes of the text's end (the gather
 * would read past it; their lane is 0) and those longer than 8 bytes (their first 8 bytes'). */
__attribute__((target("avx512f,avx512dq,avx512bw")))
static inline __m512i hash_words8(const WordHasher *h, __m512i packed, __mmask8 lanes,
                                  __mmask8 *rest) {
    const __m512i eight = _mm512_set1_epi64(8), byte = _mm512_set1_epi64(0xFF);
    __m512i start = _mm512_and_si512(packed, _mm512_set1_epi64(0xFFFFFFFF));
    __m512i size = _mm512_srli_epi64(packed, 32);
    __mmask8 safe = h->length >= 8
        ? _mm512_mask_cmple_epi64_mask(lanes, start, _mm512_set1_epi64(h->length - 8))
        : 0;
    __m512i x = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), safe, start, h->text, 1);
    x = _mm512_or_si512(x, _mm512_set1_epi64(0x2020202020202020LL));
    __m512i index = _mm512_sub_epi64(_mm512_min_epu64(size, eight), _mm512_set1_epi64(1));
    __m512i hash = _mm512_mullo_epi64(_mm512_and_si512(x, byte),
                                      _mm512_permutexvar_epi64(index, h->row[0]));
    for (int j = 1; j < 8; j++) {
        __m512i c = _mm512_and_si512(_mm512_srli_epi64(x, 8 * j), byte);
        hash = _mm512_add_epi64(hash,
                                _mm512_mullo_epi64(c, _mm512_permutexvar_epi64(index, h->row[j])));
    }
    *rest = (__mmask8)((lanes & ~safe) | _mm512_mask_cmpgt_epu64_mask(lanes, size, eight));
    return _mm512_mask_mov_epi64(_mm512_setzero_si512(), safe, hash);
}

/* A word of *rest finished: the whole word where the gather did not read it (first 0), else
 * the bytes after its first 8 folded into first. */
static inline uint64_t word_rest(const WordHasher *h, uint64_t packed, uint64_t first) {
    Py_ssize_t at = (Py_ssize_t)(packed & 0xFFFFFFFF), n = (Py_ssize_t)(packed >> 32);
    if (at + 8 <= h->length && n > 8)
        return word_hash_from(first, h->text + at + 8, n - 8, h->length - at - 8, h->p);
    return word_hash(h->text + at, n, h->length - at, h->p);
}
/* The bitmap of a text's ASCII letters and digits, 64 bytes a step: bits[k] for bytes
 * 64k .. 64k + 63 (bits beyond length clear). With high, also the bytes of 0x80 and above, set
 * in both bits and high. */
__attribute__((target("avx512f,avx512dq,avx512bw")))
static inline void word_bitmaps(const uint8_t *text, Py_ssize_t length, uint64_t *bits,
                                uint64_t *high) {
    const Py_ssize_t blocks = (length + 63) / 64;
    const __m512i zero_char = _mm512_set1_epi8('0'), a_char = _mm512_set1_epi8('a');
    const __m512i nine = _mm512_set1_epi8(9), twenty_five = _mm512_set1_epi8(25);
    const __m512i case_bit = _mm512_set1_epi8(0x20);
    for (Py_ssize_t k = 0; k < blocks; k++) {
        Py_ssize_t left = length - 64 * k;
        __mmask64 load = left >= 64 ? ~0ULL : (1ULL << left) - 1; /* masked bytes are not read */
        __m512i v = _mm512_maskz_loadu_epi8(load, text + 64 * k);
        __mmask64 digit = _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, zero_char), nine);
        __mmask64 letter = _mm512_cmple_epu8_mask(
            _mm512_sub_epi8(_mm512_or_si512(v, case_bit), a_char), twenty_five);
        bits[k] = (digit | letter) & load;
        if (high != NULL) {
            high[k] = _mm512_movepi8_mask(v) & load;
            bits[k] |= high[k];
        }
    }
}

/* The runs of set bits, packed (start | length << 32) into runs, in order; returns how many.
 * Each run's start and end come from the start and end masks of its bitmap word
 * (count-trailing-zeros, no search for each run's end). */
static inline Py_ssize_t bit_runs(const uint64_t *bits, Py_ssize_t blocks, uint64_t *runs) {
    Py_ssize_t count = 0;
    uint64_t carry = 0;
    for (Py_ssize_t k = 0; k < blocks; k++) { /* starts: a set bit after a clear one */
        uint64_t x = bits[k];
        uint64_t starts = x & ~((x << 1) | carry);
        carry = x >> 63;
        while (starts != 0) {
            runs[count++] = (uint64_t)((k << 6) + __builtin_ctzll(starts));
            starts &= starts - 1;
        }
    }
    Py_ssize_t run = 0;
    for (Py_ssize_t k = 0; k < blocks; k++) { /* ends: a set bit before a clear one */
        uint64_t x = bits[k];
        uint64_t next = k + 1 < blocks ? bits[k + 1] & 1 : 0;
        uint64_t ends = x & ~((x >> 1) | (next << 63));
        while (ends != 0) {
            uint64_t last = (uint64_t)((k << 6) + __builtin_ctzll(ends));
            runs[run] |= (last + 1 - runs[run]) << 32;
            run++;
            ends &= ends - 1;
        }
    }
    return count;
}

/* The tokens of such ASCII text (lower-cased) into tokens, 8 words at a time; returns how many.
 * What ascii_word_shingles reads word by word: the bitmap of word characters (AVX-512BW), the
 * words packed from it (bit_runs), then their hashes 8 at a time (hash_words8), in place.
 * bits: length/64 + 1 words of scratch. */
__attribute__((target("avx512f,avx512dq,avx512bw")))
static Py_ssize_t ascii_word_tokens_avx512(const uint8_t *text, Py_ssize_t length,
                                           const Powers *p, uint64_t *bits, uint64_t *tokens) {
    word_bitmaps(text, length, bits, NULL);
    Py_ssize_t count = bit_runs(bits, (length + 63) / 64, tokens);
    WordHasher hasher;
    word_hasher(&hasher, text, length, p);
    for (Py_ssize_t i = 0; i < count; i += 8) {
        const __mmask8 lanes = count - i >= 8 ? 0xFF : (__mmask8)((1u << (count - i)) - 1);
        __m512i packed = _mm512_maskz_loadu_epi64(lanes, tokens + i);
        __mmask8 rest;
        __m512i hash = hash_words8(&hasher, packed, lanes, &rest);
        uint64_t words[8];
        _mm512_storeu_si512(words, packed);
        _mm512_mask_storeu_epi64(tokens + i, lanes, hash);
        while (rest != 0) {
            int lane = __builtin_ctz(rest);
            rest &= (__mmask8)(rest - 1);
            tokens[i + lane] = word_rest(&hasher, words[lane], tokens[i + lane]);
        }
    }
    return count;
}

/* The tokens of a run of bytes, letters and digits and bytes of 0x80 and above, that holds
 * some of the latter: its code points decoded and folded as fold_text does (-1 to decline where
 * fold_text declines), then split into tokens as text_shingles does. */
static Py_ssize_t folded_run_tokens(const uint8_t *s, Py_ssize_t n, const uint8_t *classes,
                                    Py_ssize_t n_classes, const uint32_t *fold, uint64_t base,
                                    uint64_t *out) {
    Py_ssize_t i = 0, count = 0;
    int open = 0;
    uint64_t token = 0;
    while (i < n) {
        uint32_t folded;
        i = fold_next(s, i, n, fold, &folded);
        if (i < 0) return -1;
        uint8_t kind = (Py_ssize_t)folded < n_classes ? classes[folded] : NOT_WORD;
        if (kind == SPACED) {
            token = open ? token * base + folded : folded;
            open = 1;
            continue;
        }
        if (open) out[count++] = token;
        open = 0;
        if (kind == UNSPACED) out[count++] = folded;
    }
    if (open) out[count++] = token;
    return count;
}

/* Whether fold maps each ASCII code point to itself lower-cased, as reading ASCII runs by
 * words assumes. */
static int ascii_folds_to_lower(const uint32_t *fold) {
    for (uint32_t c = 0; c < 128; c++) {
        if (fold[c] != (c >= 'A' && c <= 'Z' ? c + 32 : c)) return 0;
    }
    return 1;
}

/* The tokens of a text of any UTF-8 (fold_text's, then text_shingles's), into tokens; returns
 * how many, or -1 where fold_text declines. Its runs of letters, digits and non-ASCII bytes
 * are found as ASCII words are (word_bitmaps with high, bit_runs): the runs of ASCII alone, most
 * words of most texts, are hashed 8 at a time (hash_words8, gathered and scattered by their
 * place among the tokens), and only the others decoded code point by code point
 * (folded_run_tokens). The ASCII bytes between runs are not word characters, so no token
 * crosses from one run to another. scratch: (length + 16) * SCRATCH_PER_BYTE bytes. */
__attribute__((target("avx512f,avx512dq,avx512bw")))
static Py_ssize_t mixed_tokens_avx512(const uint8_t *text, Py_ssize_t length,
                                      const uint8_t *classes, Py_ssize_t n_classes,
                                      const uint32_t *fold, uint64_t base, const Powers *p,
                                      void *scratch, uint64_t **tokens_out) {
    const Py_ssize_t blocks = (length + 63) / 64;
    const Py_ssize_t room = length / 2 + 1; /* runs: one per 2 bytes at most */
    uint64_t *bits = scratch, *high = bits + blocks;
    uint64_t *runs = high + blocks, *tokens = runs + room; /* tokens: one per byte at most */
    int32_t *ascii = (int32_t *)(tokens + length + 1);      /* where the ASCII runs' tokens go */
    word_bitmaps(text, length, bits, high);
    Py_ssize_t n_runs = bit_runs(bits, blocks, runs);
    Py_ssize_t count = 0, n_ascii = 0;
    for (Py_ssize_t r = 0; r < n_runs; r++) {
        Py_ssize_t at = (Py_ssize_t)(runs[r] & 0xFFFFFFFF), n = (Py_ssize_t)(runs[r] >> 32);
        Py_ssize_t k = at >> 6, last = (at + n - 1) >> 6;
        uint64_t any = 0;
        for (Py_ssize_t w = k; w <= last && !any; w++) {
            uint64_t mask = ~0ULL;
            if (w == k) mask &= ~0ULL << (at & 63);
            if (w == last && ((at + n) & 63)) mask &= (1ULL << ((at + n) & 63)) - 1;
            any = high[w] & mask;
        }
        if (!any) {
            ascii[n_ascii++] = (int32_t)count;
            tokens[count++] = runs[r];
            continue;
        }
        Py_ssize_t made = folded_run_tokens(text + at, n, classes, n_classes, fold, base,
                                            tokens + count);
        if (made < 0) return -1;
        count += made;
    }
    WordHasher hasher;
    word_hasher(&hasher, text, length, p);
    for (Py_ssize_t i = 0; i < n_ascii; i += 8) {
        const __mmask8 lanes = n_ascii - i >= 8 ? 0xFF : (__mmask8)((1u << (n_ascii - i)) - 1);
        int32_t place[8] = {0};
        memcpy(place, ascii + i, (size_t)(n_ascii - i >= 8 ? 8 : n_ascii - i) * sizeof(int32_t));
        __m256i where = _mm256_loadu_si256((const __m256i *)place);
        __m512i packed =
            _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), lanes, where, tokens, 8);
        __mmask8 rest;
        __m512i hash = hash_words8(&hasher, packed, lanes, &rest);
        uint64_t words[8];
        _mm512_storeu_si512(words, packed);
        _mm512_mask_i32scatter_epi64(tokens, lanes, where, hash, 8);
        while (rest != 0) {
            int lane = __builtin_ctz(rest);
            rest &= (__mmask8)(rest - 1);
            uint64_t *token = tokens + place[lane];
            *token = word_rest(&hasher, words[lane], *token);
        }
    }
    *tokens_out = tokens;
    return count;
}
#endif

/* text_shingles for such ASCII text (lower-cased), with bits as scratch (length/64 + 1 words).
 * Inlined into each caller with out either NULL or not, so each is compiled for one case. */
static inline Py_ssize_t ascii_word_shingles(const uint8_t *text, Py_ssize_t length,
                                             const uint64_t *weights, const Powers *powers,
                                             uint64_t *bits, uint64_t *tokens, uint64_t *out,
                                             uint64_t seed, uint64_t *anchor) {
#ifdef WORD_VECTORS
    if (tokens != NULL && length < ((Py_ssize_t)1 << 31)) { /* the vector path is in use */
        Py_ssize_t count = ascii_word_tokens_avx512(text, length, powers, bits, tokens);
        return tokens_least(tokens, count, weights, seed, anchor);
    }
#endif
    word_bitmap(text, length, bits);
    Py_ssize_t count = 0; /* with tokens (and out NULL): the tokens are kept, then tokens_least */
    Window window = {.least = out == NULL ? *anchor : 0};
    /* A word starts at a set bit whose predecessor is clear: all of a block's starts at once,
     * taken lowest first (the last bit of the block before carried into bit 0's predecessor). */
    Py_ssize_t blocks = (length + 63) / 64;
    uint64_t carry = 0;
    for (Py_ssize_t k = 0; k < blocks; k++) {
        uint64_t x = bits[k];
        uint64_t starts = x & ~((x << 1) | carry);
        carry = x >> 63;
        while (starts != 0) {
            Py_ssize_t pos = (k << 6) + __builtin_ctzll(starts);
            starts &= starts - 1;
            Py_ssize_t stop = next_bit(bits, length, pos, 0);
            uint64_t token = word_hash(text + pos, stop - pos, length - pos, powers);
            if (tokens != NULL) {
                tokens[count++] = token;
            } else {
                window_push(&window, token, weights, out, seed);
            }
        }
    }
    if (tokens != NULL) return tokens_least(tokens, count, weights, seed, anchor);
    return window_finish(&window, weights, out, seed, anchor);
}
#endif

/* The shingles (out) or anchor (out NULL) of one document's head: ASCII bytes lower-cased, or
 * code points through fold (using scratch); -1 if fold_text declines it. */
static Py_ssize_t document_shingles(const uint8_t *text, Py_ssize_t length,
                                    const uint8_t *classes,
                                    Py_ssize_t n_classes, const uint32_t *fold,
                                    const uint64_t *weights, uint64_t base, const Powers *powers,
                                    void *scratch, int vectors, int mixed, uint64_t *out,
                                    uint64_t seed, uint64_t *anchor) {
    if (is_ascii(text, length)) {
#ifdef WORD_BITS
        if (powers != NULL) {
            uint64_t *bits = scratch;
            if (out != NULL)
                return ascii_word_shingles(text, length, weights, powers, bits, NULL, out, 0, NULL);
            uint64_t *tokens = vectors ? bits + length / 64 + 2 : NULL;
            return ascii_word_shingles(text, length, weights, powers, bits, tokens, NULL, seed,
                                       anchor);
        }
#else
        (void)powers;
#endif
        return out != NULL
            ? text_shingles(text, 1, length, classes, 128, weights, base, 1, NULL, out, 0, NULL)
            : text_shingles(text, 1, length, classes, 128, weights, base, 1, NULL, NULL, seed,
                            anchor);
    }
#ifdef WORD_VECTORS
    if (mixed && vectors && out == NULL && length < ((Py_ssize_t)1 << 31)) {
        uint64_t *tokens;
        Py_ssize_t count = mixed_tokens_avx512(text, length, classes, n_classes, fold, base,
                                               powers, scratch, &tokens);
        if (count < 0) return -1;
        return tokens_least(tokens, count, weights, seed, anchor);
    }
#endif
    Py_ssize_t n = fold_text(text, length, fold, scratch);
    if (n < 0) return -1;
    return out != NULL
        ? text_shingles(scratch, 4, n, classes, n_classes, weights, base, 0, NULL, out, 0, NULL)
        : text_shingles(scratch, 4, n, classes, n_classes, weights, base, 0,
                        vectors ? (uint64_t *)scratch + n / 2 + 1 : NULL, NULL, seed, anchor);
}

/* The powers for reading ASCII by words, or NULL where that is not compiled in or the classes
 * table is not [0-9A-Za-z] on ASCII (then ASCII is read by characters, as other text is). */
static const Powers *ascii_powers(Powers *powers, const Py_buffer *classes, uint64_t base) {
#ifdef WORD_BITS
    if (!ascii_words_are_alnum(classes->buf, classes->len)) return NULL;
    make_powers(powers, base);
    return powers;
#else
    (void)powers;
    (void)classes;
    (void)base;
    return NULL;
#endif
}

/* The indexes of the declined documents, as a list. */
static PyObject *declined_list(const Documents *docs) {
    PyObject *others = PyList_New(0);
    for (Py_ssize_t d = 0; others != NULL && d < docs->count; d++) {
        if (!docs->declined[d]) continue;
        PyObject *index = PyLong_FromSsize_t(d);
        if (index == NULL || PyList_Append(others, index) < 0) Py_CLEAR(others);
        Py_XDECREF(index);
    }
    return others;
}

static int check_tables(const Py_buffer *classes, const Py_buffer *fold, const Py_buffer *weights) {
    return too_small(classes, 128, "classes") ||
           too_small(fold, FOLD_ENTRIES * (Py_ssize_t)sizeof(uint32_t), "fold") ||
           too_small(weights, SHINGLE_TOKENS * 8, "weights");
}

/* folded_shingles(documents, max_bytes, classes, fold, weights, base) -> (hashes, counts, others)
 *
 * The shingles of each document's first max_bytes bytes where fold_text can read them (what
 * catalog.overlap.normalise then _group_shingles give for them): hashes (uint64, concatenated)
 * and counts (intp, one per document, 0 for the others) as bytes, and `others`, the indexes of
 * the documents declined, which the caller normalises itself. classes: uint8, the word class of
 * each code point (those beyond it are not word characters), at least 128 entries. */
static PyObject *folded_shingles(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *documents;
    Py_ssize_t max_bytes;
    Py_buffer v[3] = {{0}};
    unsigned long long base;
    if (!PyArg_ParseTuple(args, "Ony*y*y*K", &documents, &max_bytes, &v[0], &v[1], &v[2],
                          &base)) {
        release(v, 3);
        return NULL;
    }
    Documents docs = {0};
    PyObject *hashes = NULL, *counts = NULL, *others = NULL, *result = NULL;
    if (check_tables(&v[0], &v[1], &v[2]) || open_documents(&docs, documents, max_bytes) < 0)
        goto done;
    Py_ssize_t room = 0;
    for (Py_ssize_t d = 0; d < docs.count; d++) room += docs.lengths[d];
    hashes = PyBytes_FromStringAndSize(NULL, (room > 0 ? room : 1) * 8);
    counts = PyBytes_FromStringAndSize(NULL, (docs.count > 0 ? docs.count : 1) * sizeof(Py_ssize_t));
    if (hashes == NULL || counts == NULL) goto done;
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(hashes);
    Py_ssize_t *per_text = (Py_ssize_t *)PyBytes_AS_STRING(counts);
    Py_ssize_t written = 0;
    Powers table;
    const Powers *powers = ascii_powers(&table, &v[0], base);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < docs.count; d++) {
        Py_ssize_t n = document_shingles(docs.views[d].buf, docs.lengths[d], v[0].buf,
                                         v[0].len, v[1].buf, v[2].buf, base, powers,
                                         docs.scratch, 0, 0, out + written, 0, NULL);
        docs.declined[d] = n < 0;
        per_text[d] = n < 0 ? 0 : n;
        written += n < 0 ? 0 : n;
    }
    Py_END_ALLOW_THREADS
    others = declined_list(&docs);
    if (others == NULL || _PyBytes_Resize(&hashes, written * 8) < 0) goto done;
    if (docs.count == 0 && _PyBytes_Resize(&counts, 0) < 0) goto done;
    result = PyTuple_Pack(3, hashes, counts, others);
done:
    close_documents(&docs);
    Py_XDECREF(hashes);
    Py_XDECREF(counts);
    Py_XDECREF(others);
    release(v, 3);
    return result;
}

/* folded_levels(documents, max_bytes, classes, fold, weights, base, sample_seed, level_seed,
 *               mask, table) -> (levels, others)
 *
 * What folded_shingles then levels below give, in one pass that keeps no hashes: levels (int8
 * per document, as bytes; 0 for the declined ones) and `others`, the declined documents. */
static PyObject *folded_levels(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *documents;
    Py_ssize_t max_bytes;
    Py_buffer v[4] = {{0}};
    unsigned long long base, sample_seed, level_seed, mask;
    if (!PyArg_ParseTuple(args, "Ony*y*y*KKKKy*", &documents, &max_bytes, &v[0], &v[1], &v[2],
                          &base, &sample_seed, &level_seed, &mask, &v[3])) {
        release(v, 4);
        return NULL;
    }
    Documents docs = {0};
    PyObject *levels = NULL, *others = NULL, *result = NULL;
    if (check_tables(&v[0], &v[1], &v[2]) || too_small(&v[3], (Py_ssize_t)mask + 1, "table") ||
        open_documents(&docs, documents, max_bytes) < 0)
        goto done;
    levels = PyBytes_FromStringAndSize(NULL, docs.count);
    if (levels == NULL) goto done;
    int8_t *out = (int8_t *)PyBytes_AS_STRING(levels);
    const int8_t *table = v[3].buf;
    Powers word_powers;
    const Powers *powers = ascii_powers(&word_powers, &v[0], base);
    const int mixed = powers != NULL && ascii_folds_to_lower(v[1].buf);
    const int vectors = vectors_wanted && vectors_available;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < docs.count; d++) {
        uint64_t anchor = UINT64_MAX;
        Py_ssize_t n = document_shingles(docs.views[d].buf, docs.lengths[d], v[0].buf,
                                         v[0].len, v[1].buf, v[2].buf, base, powers,
                                         docs.scratch, vectors, mixed, NULL, sample_seed,
                                         &anchor);
        docs.declined[d] = n < 0;
        out[d] = n < 0 ? 0 : n == 0 ? -1 : table[fmix(anchor ^ level_seed) & mask];
    }
    Py_END_ALLOW_THREADS
    others = declined_list(&docs);
    if (others == NULL) goto done;
    result = PyTuple_Pack(2, levels, others);
done:
    close_documents(&docs);
    Py_XDECREF(levels);
    Py_XDECREF(others);
    release(v, 4);
    return result;
}

/* levels(hashes, bounds, sample_seed, level_seed, mask, table, out)
 *
 * hashes: uint64 shingle hashes; bounds: intp, text i has hashes[bounds[i]:bounds[i+1]];
 * table: int8, the level of each value of the masked bits; out: int8, one per text: -1 without
 * shingles, else table[fmix(min_j fmix(h_j ^ sample_seed) ^ level_seed) & mask]. */
static PyObject *levels(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer v[4] = {{0}};
    unsigned long long sample_seed, level_seed, mask;
    if (!PyArg_ParseTuple(args, "y*y*KKKy*w*", &v[0], &v[1], &sample_seed, &level_seed, &mask,
                          &v[2], &v[3])) {
        release(v, 4);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n_hashes = v[0].len / 8;
    Py_ssize_t n_texts = v[1].len / (Py_ssize_t)sizeof(Py_ssize_t) - 1;
    if (n_texts < 0 || too_small(&v[2], (Py_ssize_t)mask + 1, "table") ||
        too_small(&v[3], n_texts, "out")) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bounds must not be empty");
        goto done;
    }
    const Py_ssize_t *bounds = v[1].buf;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        if (bounds[t] < 0 || bounds[t] > bounds[t + 1] || bounds[t + 1] > n_hashes) {
            PyErr_SetString(PyExc_ValueError, "bounds out of order or beyond the hashes");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    const uint64_t *hashes = v[0].buf;
    const int8_t *table = v[2].buf;
    int8_t *out = v[3].buf;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        if (bounds[t] == bounds[t + 1]) {
            out[t] = -1;
            continue;
        }
        uint64_t anchor = UINT64_MAX;
        for (Py_ssize_t j = bounds[t]; j < bounds[t + 1]; j++) {
            uint64_t value = fmix(hashes[j] ^ sample_seed);
            if (value < anchor) anchor = value;
        }
        out[t] = table[fmix(anchor ^ level_seed) & mask];
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(v, 4);
    return result;
}

/* One text's MinHash row: row[p] = min over hashes[lo..hi) of h * a[p] + b[p] (mod 2^64). */
static void signature_row(const uint64_t *hashes, Py_ssize_t lo, Py_ssize_t hi,
                          const uint64_t *a, const uint64_t *b, Py_ssize_t perms, uint64_t *row) {
    for (Py_ssize_t p = 0; p < perms; p++) row[p] = UINT64_MAX;
    for (Py_ssize_t j = lo; j < hi; j++) {
        const uint64_t h = hashes[j];
        for (Py_ssize_t p = 0; p < perms; p++) {
            uint64_t value = h * a[p] + b[p];
            row[p] = value < row[p] ? value : row[p];
        }
    }
}

#ifdef HAVE_AVX512
/* The same row, 8 permutations at a time (AVX-512DQ has a 64-bit multiply, vpmullq, that
 * SSE2 and AVX2 lack): each group of 8 is kept in a register over all the text's shingles, and
 * the last group is masked. The same integers as signature_row, so the same sketch. */
__attribute__((target("avx512f,avx512dq")))
static void signature_row_avx512(const uint64_t *hashes, Py_ssize_t lo, Py_ssize_t hi,
                                 const uint64_t *a, const uint64_t *b, Py_ssize_t perms,
                                 uint64_t *row) {
    for (Py_ssize_t p = 0; p < perms; p += 8) {
        const __mmask8 lanes = perms - p >= 8 ? 0xFF : (__mmask8)((1u << (perms - p)) - 1);
        const __m512i va = _mm512_maskz_loadu_epi64(lanes, a + p);
        const __m512i vb = _mm512_maskz_loadu_epi64(lanes, b + p);
        __m512i least = _mm512_set1_epi64(-1);
        for (Py_ssize_t j = lo; j < hi; j++) {
            const __m512i h = _mm512_set1_epi64((long long)hashes[j]);
            least = _mm512_min_epu64(least, _mm512_add_epi64(_mm512_mullo_epi64(h, va), vb));
        }
        _mm512_mask_storeu_epi64(row + p, lanes, least);
    }
}
#endif

/* use_vectors(flag) -> bool: ask for the vector path or not; whether it is now in use. */
static PyObject *use_vectors(PyObject *self, PyObject *flag) {
    (void)self;
    int wanted = PyObject_IsTrue(flag);
    if (wanted < 0) return NULL;
    vectors_wanted = wanted;
    return PyBool_FromLong(vectors_wanted && vectors_available);
}

/* signatures(hashes, bounds, chosen, perm_a, perm_b, out)
 *
 * chosen: intp text indexes; perm_a, perm_b: uint64, one per permutation; out: uint64,
 * len(chosen) x permutations, row r = min over text chosen[r]'s shingles h of h * a_p + b_p
 * (UINT64_MAX for a text without shingles). */
static PyObject *signatures(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer v[6] = {{0}};
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5])) {
        release(v, 6);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n_hashes = v[0].len / 8;
    Py_ssize_t n_texts = v[1].len / (Py_ssize_t)sizeof(Py_ssize_t) - 1;
    Py_ssize_t n_chosen = v[2].len / (Py_ssize_t)sizeof(Py_ssize_t);
    Py_ssize_t perms = v[3].len / 8;
    if (n_texts < 0 || v[4].len != v[3].len || too_small(&v[5], n_chosen * perms * 8, "out")) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad bounds or permutations");
        goto done;
    }
    const Py_ssize_t *bounds = v[1].buf;
    const Py_ssize_t *chosen = v[2].buf;
    for (Py_ssize_t r = 0; r < n_chosen; r++) {
        Py_ssize_t t = chosen[r];
        if (t < 0 || t >= n_texts || bounds[t] < 0 || bounds[t] > bounds[t + 1] ||
            bounds[t + 1] > n_hashes) {
            PyErr_SetString(PyExc_ValueError, "chosen text or its bounds out of range");
            goto done;
        }
    }
    const int vectors = vectors_wanted && vectors_available;
    Py_BEGIN_ALLOW_THREADS
    const uint64_t *hashes = v[0].buf;
    const uint64_t *a = v[3].buf;
    const uint64_t *b = v[4].buf;
    uint64_t *out = v[5].buf;
    for (Py_ssize_t r = 0; r < n_chosen; r++) {
        const Py_ssize_t t = chosen[r];
#ifdef HAVE_AVX512
        if (vectors) {
            signature_row_avx512(hashes, bounds[t], bounds[t + 1], a, b, perms, out + r * perms);
            continue;
        }
#endif
        signature_row(hashes, bounds[t], bounds[t + 1], a, b, perms, out + r * perms);
    }
    Py_END_ALLOW_THREADS
    (void)vectors;
    result = Py_NewRef(Py_None);
done:
    release(v, 6);
    return result;
}

static PyMethodDef methods[] = {
    {"shingles", shingles, METH_VARARGS, "Shingle hashes of joined texts (see the source)."},
    {"folded_shingles", folded_shingles, METH_VARARGS, "Shingles of documents (see the source)."},
    {"folded_levels", folded_levels, METH_VARARGS, "Sample levels of documents (see the source)."},
    {"levels", levels, METH_VARARGS, "Sample level of each text (see the source)."},
    {"signatures", signatures, METH_VARARGS, "MinHash signatures of chosen texts."},
    {"use_vectors", use_vectors, METH_O, "Use AVX-512 for signatures where the CPU has it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "catalog._sketch",
    "Compiled inner loops of catalog.overlap (same results as its numpy code).", -1, methods,
};

PyMODINIT_FUNC PyInit__sketch(void) {
    find_vectors();
    return PyModule_Create(&module);
}
