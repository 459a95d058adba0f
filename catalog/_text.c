/* Document bytes in bulk, compiled: checking a block of text is UTF-8 (and counting its code
 * points) without decoding it into a str, and cutting a column of documents into bytes objects
 * at its offsets without a Python slice per document. catalog/readers.py uses this module when
 * it was built and the standard library's decoder and slicing otherwise;
 * tests/unit/catalog/test_text_native.py compares both.
 *
 * utf8_length(data) -> int | None
 *     The number of code points in data if it is UTF-8 as Python's strict decoder defines it
 *     (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF, no sequence cut off
 *     at the end), else None. Python's bytes.decode builds the whole str first (for text with
 *     one accent in it, a UCS-2 copy of the block); this only reads, 16 bytes at a time while
 *     they are ASCII.
 *
 * split(data, offsets, width) -> list[bytes]
 *     offsets: n + 1 little-endian integers of width 4 or 8 bytes (an Arrow string or large
 *     string array's offsets); document i is data[offsets[i] - offsets[0] : offsets[i + 1] -
 *     offsets[0]]. ValueError if the offsets decrease or reach past data.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef const unsigned char *cursor;

static inline int continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* The length of the well-formed sequence at p (1-4 bytes), or 0 if there is none: RFC 3629's
 * table of well-formed byte sequences, which is what CPython's strict decoder accepts. */
static inline int sequence_length(cursor p, cursor end) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* a continuation byte, or an overlong two-byte form */
    if (c < 0xE0) return end - p >= 2 && continuation(p[1]) ? 2 : 0;
    if (c < 0xF0) {
        if (end - p < 3) return 0;
        unsigned char low = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F: overlong */
        unsigned char high = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF: surrogates */
        return p[1] >= low && p[1] <= high && continuation(p[2]) ? 3 : 0;
    }
    if (c < 0xF5) {
        if (end - p < 4) return 0;
        unsigned char low = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F: overlong */
        unsigned char high = c == 0xF4 ? 0x8F : 0xBF; /* F4 90..: above U+10FFFF */
        return p[1] >= low && p[1] <= high && continuation(p[2]) && continuation(p[3]) ? 4 : 0;
    }
    return 0;
}

/* Code points in [p, end), or -1 if those bytes are not UTF-8. */
static Py_ssize_t code_points(cursor p, cursor end) {
    Py_ssize_t count = 0;
    while (p < end) {
#ifdef __SSE2__
        while (end - p >= 16 && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)p)) == 0) {
            p += 16;
            count += 16;
        }
        if (p == end) break;
#endif
        int length = sequence_length(p, end);
        if (length == 0) return -1;
        p += length;
        count += 1;
    }
    return count;
}

static PyObject *utf8_length(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    cursor start = data.buf;
    count = code_points(start, start + data.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (count < 0) Py_RETURN_NONE;
    return PyLong_FromSsize_t(count);
}

static inline int64_t offset_at(const unsigned char *offsets, Py_ssize_t i, int width) {
    if (width == 4) {
        int32_t value;
        memcpy(&value, offsets + i * 4, 4);
        return value;
    }
    int64_t value;
    memcpy(&value, offsets + i * 8, 8);
    return value;
}

static PyObject *split(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, offsets;
    int width;
    if (!PyArg_ParseTuple(args, "y*y*i", &data, &offsets, &width)) return NULL;
    PyObject *result = NULL;
    if ((width != 4 && width != 8) || offsets.len % width != 0 || offsets.len < width) {
        PyErr_SetString(PyExc_ValueError, "offsets: at least one integer of 4 or 8 bytes");
        goto done;
    }
    const unsigned char *at = offsets.buf;
    Py_ssize_t count = offsets.len / width - 1;
    int64_t base = offset_at(at, 0, width), previous = base;
    for (Py_ssize_t i = 1; i <= count; i++) {
        int64_t next = offset_at(at, i, width);
        if (next < previous || next - base > data.len) {
            PyErr_Format(PyExc_ValueError, "offset %zd out of order or past the data", i);
            goto done;
        }
        previous = next;
    }
    result = PyList_New(count);
    if (result == NULL) goto done;
    const char *bytes = data.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t begin = offset_at(at, i, width) - base, end = offset_at(at, i + 1, width) - base;
        PyObject *document = PyBytes_FromStringAndSize(bytes + begin, (Py_ssize_t)(end - begin));
        if (document == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, document);
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    return result;
}

static PyMethodDef methods[] = {
    {"utf8_length", utf8_length, METH_O, "Code points of UTF-8 bytes, or None if they are not."},
    {"split", split, METH_VARARGS, "Documents of a buffer, cut at Arrow-style offsets."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "catalog._text",
    "Document bytes in bulk: UTF-8 checks and counts, and splitting at offsets.", -1, methods,
};

PyMODINIT_FUNC PyInit__text(void) { return PyModule_Create(&module); }
