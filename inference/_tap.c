/*
 * The edge router's state tap: llama.cpp's eval callback, in C.
 *
 * The router's second look reads the prompt's hidden state at its last token
 * (inference/state_tap.py). llama.cpp hands out hidden states only for tokens
 * marked as outputs, and marks every token of a batch once embeddings are on,
 * so reading the state through its public API costs one extra decode. Its
 * scheduler can instead call a function on each tensor of the graph as it is
 * computed (llama_context_params.cb_eval). This is that function: it asks for
 * one named tensor and copies its last row, during the prefill a local answer
 * does anyway. It runs for every node of every decode once installed, so it
 * is C: a Python callback would take the GIL at each node.
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

/* Mirrored by _TapState in inference/state_tap.py: keep the two in step. */
struct tandem_tap {
    char name[TAP_NAME]; /* the tensor to read, e.g. "l_out-20" or "result_norm" */
    int64_t armed;       /* read only while nonzero: the prefill, not generation */
    int64_t captured;    /* rows copied since armed */
    int64_t error;       /* nonzero: the tensor was not what the mirror expects */
    int64_t width;       /* floats per row (n_embd) */
    int64_t off_type, off_ne, off_nb, off_data, off_name;
    float *dest;         /* width floats */
};

enum { TAP_OK = 0, TAP_NOT_F32 = 1, TAP_WIDTH = 2, TAP_STRIDE = 3 };

bool tandem_tap_eval(void *tensor, bool ask, void *user)
{
    struct tandem_tap *tap = (struct tandem_tap *)user;
    const char *t = (const char *)tensor;
    if (!tap->armed || strncmp(t + tap->off_name, tap->name, TAP_NAME) != 0) {
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
        memcpy(tap->dest, data + (size_t)(ne[1] - 1) * nb[1], (size_t)ne[0] * sizeof(float));
        tap->captured += 1;
    }
    return true;
}
