/* api._relay: the invocation path's common case in one C call per message.
 *
 * Most invocations are one small request that arrives whole in one read, answered by one
 * small Content-Length response that arrives whole in one read. For those, the Python relay
 * (api/fastpath.py) spent ~10 µs per request running parser callbacks and rebuilding header
 * lines; here one call checks the whole message and returns its rewritten header lines.
 *
 * The grammar accepted is a strict subset of HTTP/1.1 (RFC 9112): anything outside it, or
 * anything the relay treats specially (a method an invocation may not use, Transfer-Encoding,
 * Expect, Upgrade, Proxy-Connection, a Connection header other than close/keep-alive, a
 * repeated Content-Length, Host or X-Call-Id, obs-fold,
 * obs-text, a bare LF, a partial or pipelined message, a head over the size limit, 1xx, 204,
 * 304), returns None and the caller hands the same bytes to llhttp (httptools), which decides.
 * So this code never accepts what llhttp would refuse; tests/unit/test_relay.py checks that
 * property against httptools on generated and hand-written messages.
 *
 * parse_request(data: bytes, max_head: int) -> None | (method, target, minor, keep_alive,
 *     lines, body, content_length, call_id, host, flags)
 * relay_request(...), relay_response(...): the same, plus the request to send on and the
 *     answer to give back, assembled here (see their comments below); what the relay calls
 * parse_response(data: bytes) -> None | (status, keep_alive, lines, body)
 *
 * `lines` are the headers to pass on, hop-by-hop ones left out, each as
 * "lowercased-name: value\r\n"; `content_length` is -1 when absent; `call_id` and `host` are
 * None when absent; flags: 1 X-Forwarded-For present, 2 X-Forwarded-Host present,
 * 4 an idempotency key present.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

#define TOKEN 1  /* tchar (RFC 9110 5.6.2) */
#define VCHAR 2  /* field-value octet we accept: VCHAR, SP, HTAB (no obs-text) */
#define TCHAR 4  /* request-target octet: VCHAR except '#' */
static unsigned char cls[256];

static void init_classes(void) {
    const char *special = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++) cls[c] |= TOKEN;
    for (int c = 'a'; c <= 'z'; c++) cls[c] |= TOKEN;
    for (int c = 'A'; c <= 'Z'; c++) cls[c] |= TOKEN;
    for (const char *p = special; *p; p++) cls[(unsigned char)*p] |= TOKEN;
    for (int c = 0x20; c <= 0x7e; c++) cls[c] |= VCHAR;
    cls['\t'] |= VCHAR;
    for (int c = 0x21; c <= 0x7e; c++) cls[c] |= TCHAR;
    cls['#'] &= (unsigned char)~TCHAR;
}

/* What a header name means to the relay. */
enum kind {
    K_PLAIN, K_HOP, K_CONNECTION, K_CONTENT_LENGTH, K_BAIL, K_CALL_ID, K_HOST,
    K_FORWARDED_FOR, K_FORWARDED_HOST, K_IDEMPOTENCY,
};

static int eq(const char *lower, size_t n, const char *name) {
    return strlen(name) == n && memcmp(lower, name, n) == 0;
}

/* `lower` is the name already lowercased, `n` its length. */
static enum kind classify(const char *lower, size_t n, int request) {
    switch (n) {
    case 2: if (eq(lower, n, "te")) return K_HOP; break;
    case 4: if (request && eq(lower, n, "host")) return K_HOST; break;
    case 6: if (eq(lower, n, "expect")) return K_BAIL; break;
    case 7:
        if (eq(lower, n, "upgrade")) return K_BAIL;
        if (eq(lower, n, "trailer")) return K_HOP;
        break;
    case 9: if (request && eq(lower, n, "x-call-id")) return K_CALL_ID; break;
    case 10:
        if (eq(lower, n, "connection")) return K_CONNECTION;
        if (eq(lower, n, "keep-alive")) return K_HOP;
        break;
    case 14: if (eq(lower, n, "content-length")) return K_CONTENT_LENGTH; break;
    case 15:
        if (request && eq(lower, n, "x-forwarded-for")) return K_FORWARDED_FOR;
        if (request && eq(lower, n, "idempotency-key")) return K_IDEMPOTENCY;
        break;
    case 16:
        /* llhttp reads it like Connection for keep-alive: its business */
        if (eq(lower, n, "proxy-connection")) return K_BAIL;
        if (request && eq(lower, n, "x-forwarded-host")) return K_FORWARDED_HOST;
        break;
    case 17:
        if (eq(lower, n, "transfer-encoding")) return K_BAIL;
        if (request && eq(lower, n, "x-idempotency-key")) return K_IDEMPOTENCY;
        break;
    case 18: if (eq(lower, n, "proxy-authenticate")) return K_HOP; break;
    case 19: if (eq(lower, n, "proxy-authorization")) return K_HOP; break;
    }
    return K_PLAIN;
}

static int ieq(const char *p, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/* The parsed head of one message. */
struct head {
    const char *data;
    size_t len;            /* bytes in data */
    size_t end;            /* offset just past the blank line */
    long long content_length;  /* -1: absent */
    int connection;        /* 0 absent, 1 close, 2 keep-alive */
    const char *call_id, *host;
    size_t call_id_len, host_len;
    int flags;
    char *out;             /* rewritten header lines */
    size_t out_len;
};

/* Parses the header block starting at `p`; fills `h`. Returns 0, or -1 to hand over.
 * `counted` starts at the target's length and adds name + value + 4 per header, the way the
 * general path counts a head against its limit; either measure over `max_head` hands over. */
static int parse_fields(struct head *h, const char *p, int request, size_t max_head,
                        size_t counted) {
    const char *end = h->data + (h->len < max_head ? h->len : max_head);
    char *o = h->out;
    for (;;) {
        if (end - p < 2) return -1;
        if (p[0] == '\r') {
            if (p[1] != '\n') return -1;
            h->end = (size_t)(p + 2 - h->data);
            h->out_len = (size_t)(o - h->out);
            return 0;
        }
        const char *name = p;
        while (p < end && (cls[(unsigned char)*p] & TOKEN)) p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || name_len > 64 || p >= end || *p != ':') return -1;
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *value = p;
        while (p < end && (cls[(unsigned char)*p] & VCHAR)) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return -1;
        size_t value_len = (size_t)(p - value);
        if (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
            return -1;  /* trailing whitespace: llhttp's business */
        p += 2;
        if (p < end && (*p == ' ' || *p == '\t')) return -1;  /* obs-fold */
        counted += name_len + value_len + 4;
        if (counted > max_head) return -1;

        char lower[64];
        for (size_t i = 0; i < name_len; i++) {
            char c = name[i];
            lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        enum kind kind = classify(lower, name_len, request);
        switch (kind) {
        case K_BAIL:
            return -1;
        case K_HOP:
            continue;
        case K_CONNECTION:
            if (h->connection) return -1;
            if (ieq(value, value_len, "close")) h->connection = 1;
            else if (ieq(value, value_len, "keep-alive")) h->connection = 2;
            else return -1;
            continue;
        case K_CONTENT_LENGTH: {
            if (h->content_length >= 0 || value_len == 0 || value_len > 15) return -1;
            long long n = 0;
            for (size_t i = 0; i < value_len; i++) {
                if (value[i] < '0' || value[i] > '9') return -1;
                n = n * 10 + (value[i] - '0');
            }
            h->content_length = n;
            break;
        }
        case K_CALL_ID:
            if (h->call_id) return -1;
            h->call_id = value;
            h->call_id_len = value_len;
            break;
        case K_HOST:
            if (h->host) return -1;
            h->host = value;
            h->host_len = value_len;
            break;
        case K_FORWARDED_FOR: h->flags |= 1; break;
        case K_FORWARDED_HOST: h->flags |= 2; break;
        case K_IDEMPOTENCY: h->flags |= 4; break;
        case K_PLAIN: break;
        }
        memcpy(o, lower, name_len);
        o += name_len;
        *o++ = ':';
        *o++ = ' ';
        memcpy(o, value, value_len);
        o += value_len;
        *o++ = '\r';
        *o++ = '\n';
    }
}

/* `stack` holds the rewritten lines of a small head; a larger one gets a buffer of its own
 * (each line "name:value\r\n" becomes at most one byte longer: "name: value\r\n"). */
#define STACK_OUT 8192
static int begin(struct head *h, Py_buffer *buf, char *stack) {
    memset(h, 0, sizeof *h);
    h->data = buf->buf;
    h->len = (size_t)buf->len;
    h->content_length = -1;
    h->out = h->len * 2 + 16 <= STACK_OUT ? stack : PyMem_Malloc(h->len * 2 + 16);
    return h->out ? 0 : -1;
}

static void end(struct head *h, Py_buffer *buf, char *stack) {
    if (h->out != stack) PyMem_Free(h->out);
    PyBuffer_Release(buf);
}

/* One positional bytes-like argument (and an optional integer) without PyArg_ParseTuple. */
static int arguments(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
                     Py_buffer *buf, Py_ssize_t *number) {
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments, got %zd", want, nargs);
        return -1;
    }
    if (want == 2) {
        *number = PyLong_AsSsize_t(args[1]);
        if (*number == -1 && PyErr_Occurred()) return -1;
    }
    return PyObject_GetBuffer(args[0], buf, PyBUF_SIMPLE);
}

/* A tuple from new references; NULL (and all released) if any is NULL. */
static PyObject *pack(Py_ssize_t n, PyObject **items) {
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL) goto fail;
    tuple = PyTuple_New(n);
    if (tuple == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(items[i]);
    return NULL;
}

static PyObject *bytes_or_none(const char *p, size_t n) {
    return p ? PyBytes_FromStringAndSize(p, (Py_ssize_t)n) : Py_NewRef(Py_None);
}

/* The methods an invocation may use; others (405, or llhttp's 400) take the general path. */
#define METHODS 7
static const char *const method_names[METHODS] = {"GET", "POST", "PUT", "PATCH", "DELETE",
                                                  "OPTIONS", "HEAD"};
static PyObject *method_objects[METHODS];  /* the same bytes object every time */

static int forwarded_method(const char *m, size_t n) {
    for (int i = 0; i < METHODS; i++)
        if (strlen(method_names[i]) == n && memcmp(m, method_names[i], n) == 0) return i;
    return -1;
}

/* The request line and header block of one whole request; 0, or -1 to hand over. */
struct request {
    int method;            /* index into method_names */
    const char *target;
    size_t target_len;
    int minor;
    int keep_alive;
    size_t body_len;
};

static int parse_request_head(struct head *h, Py_ssize_t max_head, struct request *r) {
    const char *p = h->data, *end_ = h->data + h->len;
    const char *method = p;
    while (p < end_ && *p >= 'A' && *p <= 'Z') p++;
    r->method = forwarded_method(method, (size_t)(p - method));
    if (r->method < 0 || p >= end_ || *p != ' ') return -1;
    p++;
    r->target = p;
    while (p < end_ && (cls[(unsigned char)*p] & TCHAR)) p++;
    r->target_len = (size_t)(p - r->target);
    if (r->target_len == 0 || *r->target != '/' || end_ - p < 11) return -1;
    if (memcmp(p, " HTTP/1.", 8) != 0 || (p[8] != '0' && p[8] != '1') || p[9] != '\r' ||
        p[10] != '\n')
        return -1;
    r->minor = p[8] - '0';
    p += 11;
    if (max_head < 0 || parse_fields(h, p, 1, (size_t)max_head, r->target_len) < 0) return -1;
    r->body_len = h->content_length < 0 ? 0 : (size_t)h->content_length;
    if (h->len - h->end != r->body_len) return -1;  /* partial, or more after it */
    r->keep_alive = r->minor == 1 ? h->connection != 1 : h->connection == 2;
    return 0;
}

static PyObject *parse_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_buffer buf;
    Py_ssize_t max_head = 0;
    char stack[STACK_OUT];
    if (arguments(args, nargs, 2, &buf, &max_head) < 0) return NULL;
    struct head h;
    struct request r;
    if (begin(&h, &buf, stack) < 0) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    if (parse_request_head(&h, max_head, &r) < 0) {
        end(&h, &buf, stack);
        Py_RETURN_NONE;
    }
    PyObject *items[10] = {
        Py_NewRef(method_objects[r.method]),
        PyBytes_FromStringAndSize(r.target, (Py_ssize_t)r.target_len),
        PyLong_FromLong(r.minor),
        Py_NewRef(r.keep_alive ? Py_True : Py_False),
        PyBytes_FromStringAndSize(h.out, (Py_ssize_t)h.out_len),
        PyBytes_FromStringAndSize(h.data + h.end, (Py_ssize_t)r.body_len),
        PyLong_FromLongLong(h.content_length),
        bytes_or_none(h.call_id, h.call_id_len),
        bytes_or_none(h.host, h.host_len),
        PyLong_FromLong(h.flags),
    };
    end(&h, &buf, stack);
    return pack(10, items);
}

#define PREFIX "/function/"
#define PREFIX_LEN 10

static char *put(char *o, const char *p, size_t n) {
    memcpy(o, p, n);
    return o + n;
}

/* "x-start-time: <ns>\r\n" into `o` (48 bytes), its length returned. */
static int start_line(char *o, unsigned long long ns) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + ns % 10);
        ns /= 10;
    } while (ns);
    char *p = put(o, "x-start-time: ", 14);
    while (n) *p++ = digits[--n];
    p = put(p, "\r\n", 2);
    return (int)(p - o);
}

/* relay_request(data, max_head, forwarded_for, call_id, served_by) -> None | (method,
 *     segment, minor, keep_alive, upstream, extra, content_length, flags)
 *
 * parse_request for a /function/ target, and the request to send on assembled here:
 * "METHOD /rest[?query] HTTP/1.1", its headers to pass on, then ours — x-call-id (`call_id`,
 * when the client sent none), x-start-time (now, ns), `forwarded_for` (a whole
 * "x-forwarded-for: …\r\n" line, unless the client sent one), host (the function's name,
 * when the client sent none) or else x-forwarded-host (unless sent) — and the body.
 * `segment` is what follows /function/ up to the next '/' (the name, maybe with .namespace),
 * `extra` the lines for the answer: x-start-time, `served_by`, and x-call-id if ours. The
 * caller decides what the segment means (404 when it names no function). */
static PyObject *relay_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyBytes_Check(args[2]) || !PyBytes_Check(args[3]) ||
        !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "relay_request(data, max_head, forwarded_for, call_id, served_by)");
        return NULL;
    }
    Py_buffer buf;
    Py_ssize_t max_head = 0;
    char stack[STACK_OUT];
    if (arguments(args, 2, 2, &buf, &max_head) < 0) return NULL;
    struct head h;
    struct request r;
    if (begin(&h, &buf, stack) < 0) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    if (parse_request_head(&h, max_head, &r) < 0 || r.target_len < PREFIX_LEN ||
        memcmp(r.target, PREFIX, PREFIX_LEN) != 0) {
        end(&h, &buf, stack);
        Py_RETURN_NONE;
    }
    /* /function/<segment>[/<suffix>][?<query>] */
    const char *t = r.target + PREFIX_LEN, *t_end = r.target + r.target_len;
    const char *q = memchr(t, '?', (size_t)(t_end - t));
    const char *path_end = q ? q : t_end;
    const char *slash = memchr(t, '/', (size_t)(path_end - t));
    const char *segment = t;
    size_t segment_len = (size_t)((slash ? slash : path_end) - t);
    const char *suffix = slash ? slash + 1 : path_end;
    size_t suffix_len = (size_t)(path_end - suffix);
    size_t query_len = q ? (size_t)(t_end - q - 1) : 0;  /* an empty query is dropped */
    /* the function's name: the segment up to its last '.', if any */
    size_t name_len = segment_len;
    for (size_t i = segment_len; i > 0; i--)
        if (segment[i - 1] == '.') {
            name_len = i - 1;
            break;
        }

    const char *method = method_names[r.method];
    size_t method_len = strlen(method);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char start[48];
    int start_len = start_line(start, (unsigned long long)now.tv_sec * 1000000000ULL +
                                          (unsigned long long)now.tv_nsec);
    const char *ff = PyBytes_AS_STRING(args[2]), *cid = PyBytes_AS_STRING(args[3]);
    const char *served = PyBytes_AS_STRING(args[4]);
    size_t ff_len = (h.flags & 1) ? 0 : (size_t)PyBytes_GET_SIZE(args[2]);
    size_t cid_len = h.call_id ? 0 : (size_t)PyBytes_GET_SIZE(args[3]);
    size_t served_len = (size_t)PyBytes_GET_SIZE(args[4]);
    size_t call_line = cid_len ? 11 + cid_len + 2 : 0;  /* "x-call-id: " … "\r\n" */
    size_t host_line = !h.host ? 6 + name_len + 2
                               : (h.flags & 2) ? 0 : 18 + h.host_len + 2;

    size_t size = method_len + 2 + suffix_len + (query_len ? 1 + query_len : 0) + 11 +
                  h.out_len + call_line + (size_t)start_len + ff_len + host_line + 2 +
                  r.body_len;
    PyObject *upstream = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    PyObject *extra = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(start_len + served_len +
                                                                   call_line));
    if (upstream && extra) {
        char *o = PyBytes_AS_STRING(upstream);
        o = put(o, method, method_len);
        o = put(o, " /", 2);
        o = put(o, suffix, suffix_len);
        if (query_len) {
            *o++ = '?';
            o = put(o, q + 1, query_len);
        }
        o = put(o, " HTTP/1.1\r\n", 11);
        o = put(o, h.out, h.out_len);
        if (cid_len) {
            o = put(o, "x-call-id: ", 11);
            o = put(o, cid, cid_len);
            o = put(o, "\r\n", 2);
        }
        o = put(o, start, (size_t)start_len);
        o = put(o, ff, ff_len);
        if (!h.host) {
            o = put(o, "host: ", 6);
            o = put(o, segment, name_len);
            o = put(o, "\r\n", 2);
        } else if (!(h.flags & 2)) {
            o = put(o, "x-forwarded-host: ", 18);
            o = put(o, h.host, h.host_len);
            o = put(o, "\r\n", 2);
        }
        o = put(o, "\r\n", 2);
        put(o, h.data + h.end, r.body_len);
        char *e = PyBytes_AS_STRING(extra);
        e = put(e, start, (size_t)start_len);
        e = put(e, served, served_len);
        if (cid_len) {
            e = put(e, "x-call-id: ", 11);
            e = put(e, cid, cid_len);
            put(e, "\r\n", 2);
        }
    }
    PyObject *items[8] = {
        Py_NewRef(method_objects[r.method]),
        PyBytes_FromStringAndSize(segment, (Py_ssize_t)segment_len),
        PyLong_FromLong(r.minor),
        Py_NewRef(r.keep_alive ? Py_True : Py_False),
        upstream,
        extra,
        PyLong_FromLongLong(h.content_length),
        PyLong_FromLong(h.flags),
    };
    end(&h, &buf, stack);
    return pack(8, items);
}

static PyObject *parse_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_buffer buf;
    char stack[STACK_OUT];
    if (arguments(args, nargs, 1, &buf, NULL) < 0) return NULL;
    struct head h;
    if (begin(&h, &buf, stack) < 0) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    const char *p = h.data, *end_ = h.data + h.len;
    if (end_ - p < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        goto hand_over;
    int minor = p[7] - '0';
    p += 9;
    int status = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i] < '0' || p[i] > '9') goto hand_over;
        status = status * 10 + (p[i] - '0');
    }
    /* 1xx and bodiless answers keep to the general path, as does anything odd */
    if (status < 200 || status > 599 || status == 204 || status == 304 || p[3] != ' ')
        goto hand_over;
    p += 4;
    while (p < end_ && (cls[(unsigned char)*p] & VCHAR)) p++;
    if (end_ - p < 2 || p[0] != '\r' || p[1] != '\n') goto hand_over;
    p += 2;
    if (parse_fields(&h, p, 0, (size_t)-1, 0) < 0 || h.content_length < 0) goto hand_over;
    if (h.len - h.end != (size_t)h.content_length) goto hand_over;
    int keep_alive = minor == 1 ? h.connection != 1 : h.connection == 2;
    PyObject *items[4] = {
        PyLong_FromLong(status),
        Py_NewRef(keep_alive ? Py_True : Py_False),
        PyBytes_FromStringAndSize(h.out, (Py_ssize_t)h.out_len),
        PyBytes_FromStringAndSize(h.data + h.end, (Py_ssize_t)h.content_length),
    };
    end(&h, &buf, stack);
    return pack(4, items);
hand_over:
    end(&h, &buf, stack);
    Py_RETURN_NONE;
}

/* relay_response(data, status_lines, connection, extra) -> None | (status,
 *     upstream_keep_alive, answer)
 *
 * parse_response, and the answer for the client assembled here: status_lines[status] (a
 * list indexed by status code, in the client's HTTP version), the headers passed on,
 * `extra` (our lines: x-start-time, x-served-by, x-call-id), then per `connection`
 * 0: "connection: close", 1: "connection: keep-alive" (HTTP/1.0 kept alive), 2: nothing
 * (HTTP/1.1 kept alive), the blank line and the body. */
static PyObject *relay_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 || !PyList_Check(args[1]) || !PyLong_Check(args[2]) ||
        !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "relay_response(data, status_lines, connection, extra)");
        return NULL;
    }
    long keep = PyLong_AsLong(args[2]);  /* 0 close, 1 say keep-alive, 2 say nothing */
    PyObject *got = parse_response(self, args, 1);
    if (got == NULL || got == Py_None) return got;
    long status = PyLong_AsLong(PyTuple_GET_ITEM(got, 0));
    PyObject *lines = PyTuple_GET_ITEM(got, 2), *body = PyTuple_GET_ITEM(got, 3);
    if (status >= PyList_GET_SIZE(args[1]) || !PyBytes_Check(PyList_GET_ITEM(args[1], status))) {
        Py_DECREF(got);
        PyErr_SetString(PyExc_ValueError, "status_lines has no line for this status");
        return NULL;
    }
    PyObject *line = PyList_GET_ITEM(args[1], status);
    const char *tail = keep == 0 ? "connection: close\r\n\r\n"
                     : keep == 1 ? "connection: keep-alive\r\n\r\n" : "\r\n";
    size_t tail_len = strlen(tail);
    Py_ssize_t size = PyBytes_GET_SIZE(line) + PyBytes_GET_SIZE(lines) +
                      PyBytes_GET_SIZE(args[3]) + (Py_ssize_t)tail_len + PyBytes_GET_SIZE(body);
    PyObject *answer = PyBytes_FromStringAndSize(NULL, size);
    if (answer == NULL) {
        Py_DECREF(got);
        return NULL;
    }
    char *o = PyBytes_AS_STRING(answer);
    o = put(o, PyBytes_AS_STRING(line), (size_t)PyBytes_GET_SIZE(line));
    o = put(o, PyBytes_AS_STRING(lines), (size_t)PyBytes_GET_SIZE(lines));
    o = put(o, PyBytes_AS_STRING(args[3]), (size_t)PyBytes_GET_SIZE(args[3]));
    o = put(o, tail, tail_len);
    put(o, PyBytes_AS_STRING(body), (size_t)PyBytes_GET_SIZE(body));
    PyObject *items[3] = {
        Py_NewRef(PyTuple_GET_ITEM(got, 0)), Py_NewRef(PyTuple_GET_ITEM(got, 1)), answer,
    };
    Py_DECREF(got);
    return pack(3, items);
}

static PyMethodDef methods[] = {
    {"parse_request", (PyCFunction)(void (*)(void))parse_request, METH_FASTCALL,
     "parse_request(data, max_head) -> tuple or None: one whole, plain request."},
    {"relay_request", (PyCFunction)(void (*)(void))relay_request, METH_FASTCALL,
     "relay_request(data, max_head, forwarded_for, call_id, served_by) -> tuple or None: "
     "one whole, plain /function/ request, and the request to send on."},
    {"relay_response", (PyCFunction)(void (*)(void))relay_response, METH_FASTCALL,
     "relay_response(data, status_lines, connection, extra) -> tuple or None: one whole "
     "Content-Length response, and the answer to send on."},
    {"parse_response", (PyCFunction)(void (*)(void))parse_response, METH_FASTCALL,
     "parse_response(data) -> tuple or None: one whole Content-Length response."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "api._relay",
    "The invocation path's common case in C; see api/fastpath.py.", -1, methods,
};

PyMODINIT_FUNC PyInit__relay(void) {
    init_classes();
    for (int i = 0; i < METHODS; i++)
        if (method_objects[i] == NULL &&
            (method_objects[i] = PyBytes_FromString(method_names[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
