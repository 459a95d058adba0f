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

/* The shingles of one text (see shingles below) into out; returns how many. With lower, the
 * text is ASCII bytes to be lower-cased first (as catalog.overlap._normalised does). */
static inline Py_ssize_t text_shingles(const void *text, int width, Py_ssize_t length,
                                       const uint8_t *classes, Py_ssize_t n_classes,
                                       const uint64_t *weights, uint64_t base, int lower,
                                       uint64_t *out) {
    const uint8_t *bytes = text;
    const uint32_t *wide = text;
    uint64_t ring[SHINGLE_TOKENS];
    Py_ssize_t tokens = 0, written = 0, i = 0;
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
        ring[tokens % SHINGLE_TOKENS] = token;
        tokens++;
        if (tokens >= SHINGLE_TOKENS) {
            uint64_t sum = 0;
            for (Py_ssize_t m = 0; m < SHINGLE_TOKENS; m++) {
                sum += ring[(tokens - SHINGLE_TOKENS + m) % SHINGLE_TOKENS] * weights[m];
            }
            out[written++] = fmix(sum);
        }
    }
#undef CODE
#undef LOWER
    if (tokens > 0 && tokens < SHINGLE_TOKENS) {
        uint64_t sum = 0;
        for (Py_ssize_t m = 0; m < tokens; m++) sum += ring[m] * weights[m];
        out[written++] = fmix(sum);
    }
    return written;
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
            ? text_shingles(bytes + pos, 1, lengths[t], v[2].buf, v[2].len, v[3].buf, base, 0, out)
            : text_shingles(wide + pos, 4, lengths[t], v[2].buf, v[2].len, v[3].buf, base, 0, out);
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

/* ascii_shingles(documents, max_bytes, classes, weights, base) -> (hashes, counts, others)
 *
 * The shingles of each document's first max_bytes bytes where those are ASCII, lower-cased
 * (what _normalised then _group_shingles give for them): hashes (uint64, concatenated) and
 * counts (intp, one per document, 0 for the others) as bytes, and `others`, the indexes of the
 * documents whose first max_bytes bytes are not all ASCII, which the caller normalises itself.
 * classes must have at least 128 entries. */
static PyObject *ascii_shingles(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *documents;
    Py_ssize_t max_bytes;
    Py_buffer v[2] = {{0}};
    unsigned long long base;
    if (!PyArg_ParseTuple(args, "Ony*y*K", &documents, &max_bytes, &v[0], &v[1], &base)) {
        release(v, 2);
        return NULL;
    }
    PyObject *sequence = NULL, *hashes = NULL, *counts = NULL, *others = NULL, *result = NULL;
    Py_buffer *views = NULL;
    Py_ssize_t count = 0, taken = 0;
    if (too_small(&v[0], 128, "classes") || too_small(&v[1], SHINGLE_TOKENS * 8, "weights"))
        goto done;
    sequence = PySequence_Fast(documents, "documents must be a sequence");
    if (sequence == NULL) goto done;
    count = PySequence_Fast_GET_SIZE(sequence);
    views = PyMem_Calloc(count > 0 ? count : 1, sizeof(Py_buffer));
    if (views == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t room = 0;
    for (; taken < count; taken++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(sequence, taken), &views[taken],
                               PyBUF_SIMPLE) < 0)
            goto done;
        room += views[taken].len < max_bytes ? views[taken].len : max_bytes;
    }
    hashes = PyBytes_FromStringAndSize(NULL, (room > 0 ? room : 1) * 8);
    counts = PyBytes_FromStringAndSize(NULL, (count > 0 ? count : 1) * sizeof(Py_ssize_t));
    others = PyList_New(0);
    if (hashes == NULL || counts == NULL || others == NULL) goto done;
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(hashes);
    Py_ssize_t *per_text = (Py_ssize_t *)PyBytes_AS_STRING(counts);
    Py_ssize_t written = 0;
    for (Py_ssize_t d = 0; d < count; d++) {
        const uint8_t *text = views[d].buf;
        Py_ssize_t length = views[d].len < max_bytes ? views[d].len : max_bytes;
        int ascii = 1;
        for (Py_ssize_t i = 0; i < length; i++) {
            if (text[i] & 0x80) {
                ascii = 0;
                break;
            }
        }
        if (!ascii) {
            per_text[d] = 0;
            PyObject *index = PyLong_FromSsize_t(d);
            if (index == NULL || PyList_Append(others, index) < 0) {
                Py_XDECREF(index);
                goto done;
            }
            Py_DECREF(index);
            continue;
        }
        Py_ssize_t n = text_shingles(text, 1, length, v[0].buf, 128, v[1].buf, base, 1,
                                     out + written);
        per_text[d] = n;
        written += n;
    }
    if (_PyBytes_Resize(&hashes, written * 8) < 0) goto done;
    if (count == 0 && _PyBytes_Resize(&counts, 0) < 0) goto done;
    result = PyTuple_Pack(3, hashes, counts, others);
done:
    if (views != NULL) {
        for (Py_ssize_t i = 0; i < taken; i++) PyBuffer_Release(&views[i]);
        PyMem_Free(views);
    }
    Py_XDECREF(sequence);
    Py_XDECREF(hashes);
    Py_XDECREF(counts);
    Py_XDECREF(others);
    release(v, 2);
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
    Py_BEGIN_ALLOW_THREADS
    const uint64_t *hashes = v[0].buf;
    const uint64_t *a = v[3].buf;
    const uint64_t *b = v[4].buf;
    uint64_t *out = v[5].buf;
    for (Py_ssize_t r = 0; r < n_chosen; r++) {
        uint64_t *row = out + r * perms;
        for (Py_ssize_t p = 0; p < perms; p++) row[p] = UINT64_MAX;
        const Py_ssize_t t = chosen[r];
        for (Py_ssize_t j = bounds[t]; j < bounds[t + 1]; j++) {
            const uint64_t h = hashes[j];
            for (Py_ssize_t p = 0; p < perms; p++) {
                uint64_t value = h * a[p] + b[p];
                row[p] = value < row[p] ? value : row[p];
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(v, 6);
    return result;
}

static PyMethodDef methods[] = {
    {"shingles", shingles, METH_VARARGS, "Shingle hashes of joined texts (see the source)."},
    {"ascii_shingles", ascii_shingles, METH_VARARGS, "Shingles of ASCII documents."},
    {"levels", levels, METH_VARARGS, "Sample level of each text (see the source)."},
    {"signatures", signatures, METH_VARARGS, "MinHash signatures of chosen texts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "catalog._sketch",
    "Compiled inner loops of catalog.overlap (same results as its numpy code).", -1, methods,
};

PyMODINIT_FUNC PyInit__sketch(void) { return PyModule_Create(&module); }
