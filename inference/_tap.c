/*
 * The edge router's state tap: llama.cpp's eval callback, in C.
 *
 * The router's second look reads the prompt's hidden state at its last token
 * (inference/state_tap.py). llama.cpp hands out hidden states only for tokens
 * marked as outputs, and marks every token of a batch once embeddings are on,
 * so reading the state through its public API costs one extra decode. Its
 * scheduler can instead call a function on each tensor of the graph as it is
 * computed (llama_context_params.cb_eval). This is that function: it asks for
 * a few named tensors (up to TAP_MAX) and copies each one's last row, during
 * the prefill a local answer does anyway. It runs for every node of every
 * decode once installed, so it is C: a Python callback would take the GIL at
 * each node.
 *
 * It is built as an extension module (setup.py) only to be compiled and
 * installed beside the package; it needs no Python header and has no
 * PyInit: inference/state_tap.py loads it with ctypes.
 *
 * It knows struct ggml_tensor only through the byte offsets Python gives it
 * (from the ctypes mirror that inference/state_tap.py checks against the
 * runner's own state), so no ggml header is needed to build it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define TAP_NAME 64 /* GGML_MAX_NAME */
#define TAP_MAX 4   /* tensors read at once */

/* Mirrored by _TapState in inference/state_tap.py: keep the two in step. */
struct tandem_tap {
    char names[TAP_MAX][TAP_NAME]; /* the tensors to read, e.g. "l_out-20", "result_norm" */
    int64_t count;       /* how many of names are in use */
    int64_t armed;       /* read only while nonzero: the prefill, not generation */
    int64_t captured;    /* bit i set: tensor i's row was copied since armed */
    int64_t error;       /* nonzero: a tensor was not what the mirror expects */
    int64_t width;       /* floats per row (n_embd) */
    int64_t off_type, off_ne, off_nb, off_data, off_name;
    float *dest;         /* count * width floats: tensor i's row at dest + i * width */
};

enum { TAP_OK = 0, TAP_NOT_F32 = 1, TAP_WIDTH = 2, TAP_STRIDE = 3 };

bool tandem_tap_eval(void *tensor, bool ask, void *user)
{
    struct tandem_tap *tap = (struct tandem_tap *)user;
    const char *t = (const char *)tensor;
    int64_t i = 0;
    if (tap->armed) {
        while (i < tap->count && strncmp(t + tap->off_name, tap->names[i], TAP_NAME) != 0) {
            i++;
        }
    }
    if (!tap->armed || i == tap->count) {
        return !ask; /* asked: not needed; told: carry on */
    }
    if (ask) {
        return true;
    }
    const int64_t *ne = (const int64_t *)(t + tap->off_ne);
    const size_t *nb = (const size_t *)(t + tap->off_nb);
    if (*(const int32_t *)(t + tap->off_type) != 0 /* GGML_TYPE_F32 */) {
        tap->error = TAP_NOT_F32;
    } else if (ne[0] != tap->width) {
        tap->error = TAP_WIDTH;
    } else if (nb[0] != sizeof(float)) {
        tap->error = TAP_STRIDE;
    } else {
        /* each batch of the prefill overwrites the row: the last holds the last token */
        const char *data = *(char *const *)(t + tap->off_data);
        memcpy(tap->dest + i * tap->width, data + (size_t)(ne[1] - 1) * nb[1],
               (size_t)ne[0] * sizeof(float));
        tap->captured |= (int64_t)1 << i;
    }
    return true;
}
