/* Ingestion's per-document hashing, compiled: the same bytes as catalog/documents.py's
 * document_digests, digest_leaves and _perfect_root, without a Python object per hash step.
 * SHA-256 is OpenSSL's (the library Python's hashlib uses), so it runs on the CPU's SHA
 * instructions where there are some. catalog/documents.py falls back to hashlib when this
 * module was not built; tests/unit/catalog/test_documents_native.py compares both.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_*: the one-call-per-block API, no EVP context */
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define HASH 32

/* SHA-256 through the low-level calls. OpenSSL 3's one-call SHA256() goes through
 * EVP_Q_digest, which looks the algorithm up by name every time: ~1 us more per call, ten
 * times the cost of hashing a leaf (measured, OpenSSL 3.0 on an x86 CPU with SHA
 * instructions). */
static inline void sha256(const void *data, size_t size, unsigned char *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, size);
    SHA256_Final(out, &context);
}

static int hash_of(PyObject *item, unsigned char *out, const char *what) {
    if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != HASH) {
        PyErr_Format(PyExc_ValueError, "a %s is %d bytes", what, HASH);
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(item), HASH);
    return 0;
}

/* A list of 32-byte digests, one per item of a sequence: SHA-256 of the item's bytes (any
 * buffer), or with leaf, SHA-256(0x00 || item) of a 32-byte hash. */
static PyObject *hash_each(PyObject *given, int leaf) {
    PyObject *sequence = PySequence_Fast(given, "expected a sequence");
    if (sequence == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    PyObject *result = PyList_New(count);
    if (result == NULL) goto fail;
    unsigned char input[1 + HASH];
    input[0] = 0x00;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *digest = PyBytes_FromStringAndSize(NULL, HASH);
        if (digest == NULL) goto fail;
        PyList_SET_ITEM(result, i, digest);
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(digest);
        if (leaf) {
            if (hash_of(items[i], input + 1, "document hash") < 0) goto fail;
            sha256(input, sizeof input, out);
            continue;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) goto fail;
        sha256(view.buf, (size_t)view.len, out);
        PyBuffer_Release(&view);
    }
    Py_DECREF(sequence);
    return result;
fail:
    Py_XDECREF(result);
    Py_DECREF(sequence);
    return NULL;
}

static PyObject *digests(PyObject *self, PyObject *documents) {
    (void)self;
    return hash_each(documents, 0);
}

static PyObject *leaves(PyObject *self, PyObject *hashes) {
    (void)self;
    return hash_each(hashes, 1);
}

/* The RFC 6962 root of a perfect tree (a power of two of leaf hashes): each level's nodes are
 * SHA-256(0x01 || left || right), computed in place in one buffer. */
static PyObject *perfect_root(PyObject *self, PyObject *hashes) {
    (void)self;
    PyObject *sequence = PySequence_Fast(hashes, "leaves must be a sequence");
    if (sequence == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    unsigned char *level = NULL;
    PyObject *result = NULL;
    if (count == 0 || (count & (count - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "a perfect tree has a power of two of leaves");
        goto done;
    }
    level = PyMem_Malloc((size_t)count * HASH);
    if (level == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (hash_of(items[i], level + i * HASH, "leaf hash") < 0) goto done;
    }
    unsigned char input[1 + 2 * HASH];
    input[0] = 0x01;
    for (Py_ssize_t width = count; width > 1; width /= 2) {
        for (Py_ssize_t i = 0; i < width / 2; i++) {
            memcpy(input + 1, level + 2 * i * HASH, 2 * HASH);
            sha256(input, sizeof input, level + i * HASH);
        }
    }
    result = PyBytes_FromStringAndSize((const char *)level, HASH);
done:
    PyMem_Free(level);
    Py_DECREF(sequence);
    return result;
}

static PyMethodDef methods[] = {
    {"digests", digests, METH_O, "SHA-256 of each buffer, as a list of bytes."},
    {"leaves", leaves, METH_O, "SHA-256(0x00 || h) of each 32-byte hash."},
    {"perfect_root", perfect_root, METH_O, "RFC 6962 root of a power of two of leaf hashes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "catalog._digests",
    "Compiled per-document hashing of catalog.documents (same bytes as its hashlib code).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__digests(void) { return PyModule_Create(&module); }
