/* JSON Lines records, scanned in C: the fast path of catalog/readers.py's JsonLinesReader.
 *
 * scan(data, field, seen) takes a block of whole lines (UTF-8, already validated by the caller)
 * and returns (documents, nbytes, characters, records, shapes, newlines): the text member `field`
 * of every record as UTF-8 bytes, their total length and number of code points, the number of
 * records, the record shapes not in `seen` (a dict this call adds them to), each shaped as the
 * reader keeps them: (*member names, *value types), and the number of line feeds in the block. Or it returns None, having added nothing, and the
 * caller parses the block with the standard library's decoder, which gives the same records or
 * the exact error.
 *
 * None is the answer to anything this scanner does not handle itself, valid or not: a record
 * that is not strict JSON (RFC 8259), a member name with an escape, more than MAX_MEMBERS members
 * in one object, nesting deeper than MAX_DEPTH, a duplicate member name, a missing or non-string
 * text member, a lone surrogate escape in the text member. So every record this returns is one
 * the decoder accepts with the same value, and every error is the decoder's.
 * tests/unit/catalog/test_jsonl_native.py compares both on generated and hostile lines.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_DEPTH 64
#define MAX_MEMBERS 64
#define FAIL NULL

typedef const unsigned char *cursor;

static inline cursor skip_blank(cursor p, cursor end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

static inline int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The first byte from p on that is '"', '\\' or a control character (< 0x20), or end: 16 bytes
 * at a time where SSE2 is (every x86-64), then one at a time. Text is almost all such runs. */
static inline cursor next_special(cursor p, cursor end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        /* unsigned v <= 0x1F exactly when max(v, 0x1F) is 0x1F */
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
        int mask = _mm_movemask_epi8(hit);
        if (mask != 0) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
    return p;
}

/* After the opening quote: the closing quote's position, or FAIL. */
static cursor string_end(cursor p, cursor end, int *escaped) {
    for (;;) {
        p = next_special(p, end);
        if (p == end) return FAIL;
        unsigned char c = *p;
        if (c == '"') return p;
        if (c < 0x20) return FAIL;
        *escaped = 1; /* c is a backslash */
        if (++p == end) return FAIL;
        c = *p;
        if (c == 'u') {
            if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) ||
                !is_hex(p[4])) {
                return FAIL;
            }
            p += 4;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return FAIL;
        }
        p++;
    }
}

static cursor number_end(cursor p, cursor end) {
    if (p < end && *p == '-') p++;
    if (p == end) return FAIL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return FAIL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9') return FAIL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || *p < '0' || *p > '9') return FAIL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

typedef struct {
    cursor start;
    Py_ssize_t length;
} span;

static cursor value_end(cursor p, cursor end, int depth, char *kind);

/* After '{': members until '}', names unescaped and distinct. Fills names (if given). */
static cursor object_end(cursor p, cursor end, int depth, span *names, char *kinds,
                         cursor *values, int *count) {
    span local[MAX_MEMBERS];
    span *seen = names != NULL ? names : local;
    int members = 0;
    p = skip_blank(p, end);
    if (p < end && *p == '}') {
        *count = 0;
        return p + 1;
    }
    for (;;) {
        if (p == end || *p != '"' || members == MAX_MEMBERS) return FAIL;
        int escaped = 0;
        cursor name_end = string_end(p + 1, end, &escaped);
        if (name_end == FAIL || escaped) return FAIL;
        span name = {p + 1, name_end - (p + 1)};
        for (int i = 0; i < members; i++) {
            if (seen[i].length == name.length && !memcmp(seen[i].start, name.start, name.length))
                return FAIL; /* duplicate: the decoder words that error */
        }
        seen[members] = name;
        p = skip_blank(name_end + 1, end);
        if (p == end || *p != ':') return FAIL;
        p = skip_blank(p + 1, end);
        char kind;
        if (values != NULL) values[members] = p;
        p = value_end(p, end, depth + 1, &kind);
        if (p == FAIL) return FAIL;
        if (kinds != NULL) kinds[members] = kind;
        members++;
        p = skip_blank(p, end);
        if (p == end) return FAIL;
        if (*p == '}') {
            *count = members;
            return p + 1;
        }
        if (*p != ',') return FAIL;
        p = skip_blank(p + 1, end);
    }
}

static cursor array_end(cursor p, cursor end, int depth) {
    p = skip_blank(p, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        char kind;
        p = value_end(p, end, depth + 1, &kind);
        if (p == FAIL) return FAIL;
        p = skip_blank(p, end);
        if (p == end) return FAIL;
        if (*p == ']') return p + 1;
        if (*p != ',') return FAIL;
        p = skip_blank(p + 1, end);
    }
}

/* kind: s(tring) n(umber) b(oolean) z (null) o(bject) a(rray), the reader's JSON kinds. */
static cursor value_end(cursor p, cursor end, int depth, char *kind) {
    if (p == end || depth > MAX_DEPTH) return FAIL;
    int escaped = 0, count;
    switch (*p) {
    case '"': {
        *kind = 's';
        cursor close = string_end(p + 1, end, &escaped);
        return close == FAIL ? FAIL : close + 1;
    }
    case '{':
        *kind = 'o';
        return object_end(p + 1, end, depth, NULL, NULL, NULL, &count);
    case '[':
        *kind = 'a';
        return array_end(p + 1, end, depth);
    case 't':
        *kind = 'b';
        return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : FAIL;
    case 'f':
        *kind = 'b';
        return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : FAIL;
    case 'n':
        *kind = 'z';
        return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : FAIL;
    default:
        *kind = 'n';
        return number_end(p, end);
    }
}

static unsigned hex4(cursor p) {
    unsigned value = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        value = value * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return value;
}

/* The text of a string with escapes, as UTF-8, into out (room for length bytes: an escape
 * never decodes to more bytes than it takes). -1 for a lone surrogate. */
static Py_ssize_t unescape(cursor p, cursor end, unsigned char *out) {
    unsigned char *o = out;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        unsigned char c = p[1];
        p += 2;
        unsigned code;
        switch (c) {
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default: *o++ = c; continue; /* " \ / */
        }
        code = hex4(p);
        p += 4;
        if (code >= 0xD800 && code <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
            unsigned low = hex4(p + 2);
            if (low < 0xDC00 || low > 0xDFFF) return -1;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return -1;
        }
        if (code < 0x80) {
            *o++ = (unsigned char)code;
        } else if (code < 0x800) {
            *o++ = (unsigned char)(0xC0 | (code >> 6));
            *o++ = (unsigned char)(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            *o++ = (unsigned char)(0xE0 | (code >> 12));
            *o++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
            *o++ = (unsigned char)(0x80 | (code & 0x3F));
        } else {
            *o++ = (unsigned char)(0xF0 | (code >> 18));
            *o++ = (unsigned char)(0x80 | ((code >> 12) & 0x3F));
            *o++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
            *o++ = (unsigned char)(0x80 | (code & 0x3F));
        }
    }
    return o - out;
}

/* The bytes that are not UTF-8 continuation bytes (10xxxxxx): as signed bytes, those above
 * -65 (0xBF). 16 at a time where SSE2 is: each comparison gives -1 in the lanes that count,
 * subtracted into 16 byte counters that are added up (_mm_sad_epu8) before any can reach 256
 * (without a POPCNT instruction in the baseline x86-64, __builtin_popcount is a call). */
static Py_ssize_t code_points(const unsigned char *p, Py_ssize_t length) {
    Py_ssize_t count = 0, i = 0;
#ifdef __SSE2__
    const __m128i last_continuation = _mm_set1_epi8((char)0xBF);
    while (i + 16 <= length) {
        Py_ssize_t steps = (length - i) / 16;
        if (steps > 255) steps = 255;
        __m128i counters = _mm_setzero_si128();
        for (Py_ssize_t s = 0; s < steps; s++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
            counters = _mm_sub_epi8(counters, _mm_cmpgt_epi8(v, last_continuation));
        }
        __m128i sums = _mm_sad_epu8(counters, _mm_setzero_si128());
        count += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
#endif
    for (; i < length; i++) count += (p[i] & 0xC0) != 0x80;
    return count;
}

/* The record shape (*names, *types) for a record's members. */
static PyObject *shape_tuple(const span *names, const char *kinds, int members) {
    PyObject *shape = PyTuple_New(2 * members);
    if (shape == NULL) return NULL;
    for (int i = 0; i < members; i++) {
        PyObject *name = PyUnicode_DecodeUTF8((const char *)names[i].start, names[i].length,
                                              "strict");
        if (name == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTypeObject *type;
        switch (kinds[i]) {
        case 's': type = &PyUnicode_Type; break;
        case 'n': type = &PyFloat_Type; break;
        case 'b': type = &PyBool_Type; break;
        case 'z': type = Py_TYPE(Py_None); break;
        case 'o': type = &PyDict_Type; break;
        default: type = &PyList_Type; break;
        }
        PyTuple_SET_ITEM(shape, i, name);
        PyTuple_SET_ITEM(shape, members + i, Py_NewRef((PyObject *)type));
    }
    return shape;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, field;
    PyObject *seen;
    if (!PyArg_ParseTuple(args, "y*y*O!", &data, &field, &PyDict_Type, &seen)) return NULL;
    PyObject *documents = PyList_New(0), *shapes = PyList_New(0), *key = NULL, *result = NULL;
    unsigned char *scratch = NULL;
    Py_ssize_t scratch_size = 0, nbytes = 0, characters = 0, records = 0, lines = 0;
    if (documents == NULL || shapes == NULL) goto done;
    cursor p = data.buf, stop = p + data.len;
    span names[MAX_MEMBERS];
    char kinds[MAX_MEMBERS];
    cursor values[MAX_MEMBERS];
    int fallback = 0;
    while (p <= stop && !fallback) {
        cursor line_end = memchr(p, '\n', stop - p);
        if (line_end == NULL) line_end = stop;
        cursor q = skip_blank(p, line_end);
        cursor next = line_end + 1;
        lines++;
        if (q == line_end) { /* a blank line */
            p = next;
            continue;
        }
        int members = 0;
        fallback = 1;
        if (*q != '{') break;
        q = object_end(q + 1, line_end, 1, names, kinds, values, &members);
        if (q == FAIL || skip_blank(q, line_end) != line_end) break;
        int text = -1;
        for (int i = 0; i < members; i++) {
            if (names[i].length == field.len && !memcmp(names[i].start, field.buf, field.len)) {
                text = i;
                break;
            }
        }
        if (text < 0 || kinds[text] != 's') break;
        int escaped = 0;
        cursor start = values[text] + 1;
        cursor close = string_end(start, line_end, &escaped);
        Py_ssize_t length = close - start;
        PyObject *document;
        if (!escaped) {
            document = PyBytes_FromStringAndSize((const char *)start, length);
        } else {
            if (length > scratch_size) {
                PyMem_Free(scratch);
                scratch = PyMem_Malloc(length);
                scratch_size = scratch == NULL ? 0 : length;
                if (scratch == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
            }
            Py_ssize_t decoded = unescape(start, close, scratch);
            if (decoded < 0) break; /* a lone surrogate: the reader's error */
            document = PyBytes_FromStringAndSize((const char *)scratch, decoded);
        }
        if (document == NULL) goto done;
        Py_ssize_t size = PyBytes_GET_SIZE(document);
        nbytes += size;
        characters += code_points((const unsigned char *)PyBytes_AS_STRING(document), size);
        int appended = PyList_Append(documents, document);
        Py_DECREF(document);
        if (appended < 0) goto done;
        records++;
        /* The shape's key: the names (no NUL can be in them: control characters are refused)
         * and one letter per kind. */
        Py_ssize_t key_length = 0;
        for (int i = 0; i < members; i++) key_length += names[i].length + 1;
        key = PyBytes_FromStringAndSize(NULL, key_length + members);
        if (key == NULL) goto done;
        char *k = PyBytes_AS_STRING(key);
        for (int i = 0; i < members; i++) {
            memcpy(k, names[i].start, names[i].length);
            k += names[i].length;
            *k++ = '\0';
        }
        memcpy(k, kinds, members);
        int known = PyDict_Contains(seen, key);
        if (known < 0) goto done;
        if (!known) {
            PyObject *shape = shape_tuple(names, kinds, members);
            if (shape == NULL) goto done;
            int stored = PyDict_SetItem(seen, key, shape) < 0 || PyList_Append(shapes, key) < 0;
            Py_DECREF(shape);
            if (stored) goto done;
        }
        Py_CLEAR(key);
        fallback = 0;
        p = next;
    }
    if (fallback) {
        /* Forget the shapes this call added: the caller's decoder adds what it finds. */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(shapes); i++) {
            if (PyDict_DelItem(seen, PyList_GET_ITEM(shapes, i)) < 0) goto done;
        }
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *found = PyList_New(PyList_GET_SIZE(shapes));
    if (found == NULL) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(shapes); i++) {
        PyObject *shape = PyDict_GetItem(seen, PyList_GET_ITEM(shapes, i));
        PyList_SET_ITEM(found, i, Py_NewRef(shape));
    }
    /* Each line ends with a line feed, except the last (empty if the block ends with one). */
    result = Py_BuildValue("(OnnnNn)", documents, nbytes, characters, records, found, lines - 1);
done:
    Py_XDECREF(key);
    Py_XDECREF(documents);
    Py_XDECREF(shapes);
    PyMem_Free(scratch);
    PyBuffer_Release(&data);
    PyBuffer_Release(&field);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Text members, sizes and record shapes of a block of lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "catalog._jsonl",
    "The fast path of catalog.readers.JsonLinesReader (see the source for what it declines).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__jsonl(void) { return PyModule_Create(&module); }
