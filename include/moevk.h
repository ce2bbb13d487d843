/*
 * moevk: quantized Mixture-of-Experts inference on Vulkan compute.
 *
 * The only public header. Plain C (C99 and later, C++ too).
 *
 * Conventions
 * - Every call returns a moevk_status. MOEVK_OK is 0.
 * - Handles are opaque and come in create/destroy pairs. Destroy functions accept NULL.
 * - The message of the last failure is readable per handle (moevk_model_last_error,
 *   moevk_context_last_error) and, for calls that fail without a handle, per thread
 *   (moevk_last_error). Messages stay valid until the next failing call on the same
 *   handle/thread.
 * - Parameter structs come from moevk_*_default_params() and carry their own size in
 *   `struct_size`, so fields can be added without breaking callers built against an older header.
 * - Thread safety is stated per function. In short: distinct handles may be used from distinct
 *   threads at the same time; one handle must not be used by two threads at once, except where
 *   stated. A model may be shared by contexts on several threads.
 * - The library never calls exit() or abort(), and no C++ exception crosses this interface.
 */
#ifndef MOEVK_H
#define MOEVK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MOEVK_API __declspec(dllexport)
#else
#define MOEVK_API __attribute__((visibility("default")))
#endif

#define MOEVK_VERSION_MAJOR 0
#define MOEVK_VERSION_MINOR 1
#define MOEVK_VERSION_PATCH 0
#define MOEVK_VERSION_NUMBER (MOEVK_VERSION_MAJOR * 10000 + MOEVK_VERSION_MINOR * 100 + MOEVK_VERSION_PATCH)

typedef enum moevk_status {
  MOEVK_OK = 0,
  MOEVK_ERROR_INVALID_ARGUMENT = 1,     /* a NULL handle, a bad parameter value */
  MOEVK_ERROR_IO = 2,                   /* a file could not be opened, read or written */
  MOEVK_ERROR_INVALID_FILE = 3,         /* malformed GGUF / safetensors / config */
  MOEVK_ERROR_MISSING_TENSOR = 4,       /* a tensor the architecture needs is absent */
  MOEVK_ERROR_UNSUPPORTED = 5,          /* architecture, quant type or feature not supported */
  MOEVK_ERROR_NO_DEVICE = 6,            /* no Vulkan device, or none matching the selector */
  MOEVK_ERROR_OUT_OF_DEVICE_MEMORY = 7, /* the model or context does not fit the device */
  MOEVK_ERROR_OUT_OF_HOST_MEMORY = 8,
  MOEVK_ERROR_DEVICE_LOST = 9,          /* the GPU was lost; the context must be recreated */
  MOEVK_ERROR_VULKAN = 10,              /* any other Vulkan failure */
  MOEVK_ERROR_CONTEXT_FULL = 11,        /* the prompt or generation exceeds n_ctx */
  MOEVK_ERROR_CANCELLED = 12,           /* a callback asked to stop */
  MOEVK_ERROR_TOKENIZER = 13,           /* text that cannot be tokenized, an unknown template */
  MOEVK_ERROR_INTERNAL = 14
} moevk_status;

/* "0.1.0". Thread-safe. */
MOEVK_API const char* moevk_version(void);
/* A stable name for a status ("MOEVK_ERROR_IO"). Thread-safe. */
MOEVK_API const char* moevk_status_name(moevk_status status);
/* The message of the last failure on this thread of a call that has no handle to hold it
 * (or that failed before the handle existed). Thread-safe (thread-local). */
MOEVK_API const char* moevk_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Devices                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Describes every Vulkan device as one JSON document (array of objects with the capability
 * report: vendor, driver, api version, subgroup sizes and operations, fp16/int8, 8/16-bit
 * storage, integer dot product, cooperative matrix, limits, memory heaps and budget).
 * *json_out is allocated by the library; free it with moevk_free_string. Thread-safe. */
MOEVK_API moevk_status moevk_devices_json(char** json_out);
MOEVK_API void moevk_free_string(char* s);

/* ------------------------------------------------------------------------------------------ */
/* Callbacks                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Progress of a long call, `fraction` in [0, 1]. Return nonzero to cancel the call, which then
 * returns MOEVK_ERROR_CANCELLED. Called on the calling thread. */
typedef int (*moevk_progress_fn)(float fraction, const char* stage, void* user_data);

#ifdef __cplusplus
}
#endif

#endif /* MOEVK_H */
