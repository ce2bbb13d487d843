/*
 * moevk: quantized Mixture-of-Experts inference on Vulkan compute.
 *
 * The only public header. Plain C (C99 and later, C++ too).
 *
 * Conventions
 * - Every call returns a moevk_status. MOEVK_OK is 0.
 * - Handles are opaque and come in create/destroy pairs. Destroy functions accept NULL.
 * - The message of the last failure is readable per context (moevk_context_last_error) and per
 *   thread (moevk_last_error, which every failing call sets; moevk_model_last_error is the same,
 *   since a model may be used by several threads at once). Messages stay valid until the next
 *   failing call on the same context/thread.
 * - Parameter structs come from moevk_*_default_params() and carry their own size in
 *   `struct_size`, so fields can be added without breaking callers built against an older header.
 *   A struct_size smaller than the struct's first layout (as moevk 0.1 declared it), 0 included,
 *   is refused with MOEVK_ERROR_INVALID_ARGUMENT and a message naming the struct. The caller sets
 *   the size of moevk_generate_result itself (sizeof(moevk_generate_result)).
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
/* Frees a string the library allocated; NULL is ignored. Thread-safe. */
MOEVK_API void moevk_free_string(char* s);

/* ------------------------------------------------------------------------------------------ */
/* Callbacks                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Progress of a long call, `fraction` in [0, 1]. Return nonzero to cancel the call, which then
 * returns MOEVK_ERROR_CANCELLED. Called on the calling thread. */
typedef int (*moevk_progress_fn)(float fraction, const char* stage, void* user_data);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct moevk_model moevk_model;
typedef struct moevk_context moevk_context;

typedef struct moevk_model_params {
  size_t struct_size;          /* sizeof(moevk_model_params), set by the default function */
  const char* device;          /* index or name substring; NULL: MOEVK_DEVICE, else the best GPU */
  int validation;              /* nonzero: enable the Khronos validation layer */
  moevk_progress_fn progress;  /* load progress; may cancel. Stages, in order: "reading file" and
                                  "opening device" (fraction 0), then the name of each tensor as it
                                  is uploaded (fraction = bytes uploaded before it / all bytes),
                                  then "weights uploaded" (fraction 1). */
  void* progress_user_data;
} moevk_model_params;

/* Thread-safe. */
MOEVK_API moevk_model_params moevk_model_default_params(void);
/* Loads a GGUF file onto the device. On failure *model_out is NULL and moevk_last_error() says
 * what was wrong (file, tensor, device memory...). Thread-safe. */
MOEVK_API moevk_status moevk_model_load(const char* path, const moevk_model_params* params,
                                        moevk_model** model_out);
/* Frees the model; every context made from it must be freed first. Not concurrent with other
 * calls on the model or its contexts. */
MOEVK_API void moevk_model_free(moevk_model* model);
/* The last failure of a call on this model made by the calling thread (a model shared by
 * threads keeps one message per thread, so concurrent failures do not overwrite each other).
 * Thread-safe. */
MOEVK_API const char* moevk_model_last_error(const moevk_model* model);
/* Architecture, hyperparameters, device and memory as JSON (free with moevk_free_string).
 * Read-only on the model: thread-safe. */
MOEVK_API moevk_status moevk_model_info_json(const moevk_model* model, char** json_out);
/* The following read fixed properties of the model: thread-safe. */
MOEVK_API int32_t moevk_model_n_vocab(const moevk_model* model);
MOEVK_API int32_t moevk_model_n_ctx_train(const moevk_model* model);
MOEVK_API int32_t moevk_model_bos(const moevk_model* model); /* -1 when none */
MOEVK_API int32_t moevk_model_eos(const moevk_model* model); /* -1 when none */
MOEVK_API int moevk_model_is_eog(const moevk_model* model, int32_t token); /* end of generation */

/* ------------------------------------------------------------------------------------------ */
/* Text: tokenize, detokenize, chat templates. All read-only on the model: thread-safe.        */
/* ------------------------------------------------------------------------------------------ */

/* Writes up to `capacity` token ids; *n_tokens_out receives the full count (call again with a
 * larger buffer when it exceeds capacity: the status is then MOEVK_ERROR_INVALID_ARGUMENT).
 * add_special: BOS (and EOS) as the vocabulary asks, except that no BOS is added in front of a
 * text whose first parsed token is already BOS (a chat template that writes "<s>" itself). */
MOEVK_API moevk_status moevk_tokenize(const moevk_model* model, const char* text, size_t text_len,
                                      int add_special, int parse_special, int32_t* tokens,
                                      size_t capacity, size_t* n_tokens_out);
/* Text of tokens as one string (free with moevk_free_string). */
MOEVK_API moevk_status moevk_detokenize(const moevk_model* model, const int32_t* tokens, size_t n_tokens,
                                        char** text_out);
/* The raw piece of one token (bytes, may be part of a UTF-8 character); free with moevk_free_string. */
MOEVK_API moevk_status moevk_token_to_piece(const moevk_model* model, int32_t token, char** piece_out,
                                            size_t* len_out);

typedef struct moevk_chat_message {
  const char* role;    /* "system", "user", "assistant", "tool": what the template knows */
  const char* content;
} moevk_chat_message;

/* Renders messages with the model's chat template (tokenizer.chat_template), run as Hugging
 * Face's apply_chat_template runs it (moevk's Jinja interpreter: Qwen, Mixtral, Mistral v3 and
 * Llama-3 templates render byte for byte as transformers renders them), or with `template_name`
 * ("chatml": Qwen's form, tools and tool calls included; "mistral"; "llama3") when not NULL.
 * MOEVK_ERROR_TOKENIZER when the template does not parse (the message names its line and lists
 * the accepted names) or rejects the conversation (its raise_exception message). Result freed
 * with moevk_free_string.
 * A message's content is rendered as given: store an assistant answer the way the template
 * renders it back (the spaced Mistral format writes " " + content, so an answer streamed as
 * " Hello" is stored as "Hello"), or the rendering of the next turn will not extend this one. */
MOEVK_API moevk_status moevk_chat_apply_template(const moevk_model* model, const char* template_name,
                                                 const moevk_chat_message* messages, size_t n_messages,
                                                 int add_generation_prompt, char** prompt_out);

/* moevk_chat_apply_template with the template variables beyond the conversation. */
typedef struct moevk_chat_params {
  size_t struct_size;          /* sizeof(moevk_chat_params), set by the default function */
  const char* template_name;   /* NULL (default): the model's template; else "chatml", "mistral", "llama3" */
  int add_generation_prompt;   /* default 1: end with the assistant's header */
  int enable_thinking;         /* -1 (default): not passed, the template's own default; 0 or 1: passed as
                                  false or true. Qwen3's templates (and "chatml") read it: false writes an
                                  empty <think></think> block after the generation prompt, so the model
                                  answers without reasoning first */
  /* Added after the first moevk_chat_params (older, smaller structs take the defaults): */
  const char* tools_json;      /* NULL (default): tools=None; else a JSON array of tool definitions in
                                  OpenAI's form, [{"type": "function", "function": {"name", "description",
                                  "parameters": a JSON schema}}], which templates with tool support (Qwen3,
                                  Qwen3-Coder, Mistral v3, Llama-3.1) write into the prompt */
  const char* variables_json;  /* NULL (default): none; else a JSON object whose members become template
                                  variables, as vLLM's chat_template_kwargs ({"date_string": "07 Dec 2026"}
                                  for Llama-3.1). It may not set messages, tools, add_generation_prompt,
                                  bos_token or eos_token, nor enable_thinking when that field is set */
  const char* tool_choice;     /* for moevk_chat_tool_call_grammar, as OpenAI's: NULL or "auto" (default):
                                  the model may call a tool or answer; "required": it calls one; "none":
                                  it calls none; a tool's name (or {"type": "function", "function":
                                  {"name": ...}}): it calls that one. Added after moevk 0.1 */
} moevk_chat_params;
/* Thread-safe. */
MOEVK_API moevk_chat_params moevk_chat_default_params(void);
/* `params` NULL: the defaults. */
MOEVK_API moevk_status moevk_chat_apply_template_with(const moevk_model* model, const moevk_chat_message* messages,
                                                      size_t n_messages, const moevk_chat_params* params,
                                                      char** prompt_out);
/* The same for a conversation given as JSON text, the messages of transformers' apply_chat_template
 * and OpenAI's chat API: an array of objects, each with a string "role" and what the template reads
 * of the rest: "content" (a string, null, or a list of parts), "tool_calls" ([{"id", "type":
 * "function", "function": {"name", "arguments": an object or a JSON string}}]), "tool_call_id" and
 * "name" on tool results, "reasoning_content" (Qwen3). Objects keep their key order, so tojson in a
 * template writes arguments and schemas back as given. MOEVK_ERROR_INVALID_ARGUMENT for JSON that
 * does not parse (the message says which argument and where), is not of that shape, or nests deeper
 * than 64 levels; MOEVK_ERROR_TOKENIZER as moevk_chat_apply_template. Result freed with
 * moevk_free_string. */
MOEVK_API moevk_status moevk_chat_apply_template_json(const moevk_model* model, const char* messages_json,
                                                      const moevk_chat_params* params, char** prompt_out);

/* The lazy grammar that holds a tool call to the tools' schemas (params->tools_json, required)
 * in the call form of the template (the file's, or params->template_name): GBNF in
 * *grammar_out and the text that begins a call in *trigger_out (free both with
 * moevk_free_string), for moevk_generate_params.grammar and grammar_trigger. The model stays
 * free to answer in prose; once it begins a call, the call names a declared tool and its
 * arguments meet that tool's parameter schema (as moevk_json_schema_to_grammar reads schemas).
 * Forms: hermes (Qwen's <tool_call> with JSON), qwen3_coder (<tool_call><function=NAME> with a
 * <parameter=P> block per argument, string values raw, the others JSON), mistral ([TOOL_CALLS])
 * and llama3_json (Llama-3.1: the whole answer is one {"name", "parameters"} object or prose
 * that does not begin with "{"; no trigger, *trigger_out NULL). A template without tool calls is
 * MOEVK_ERROR_UNSUPPORTED; a schema the form cannot hold (qwen3_coder: a string "format" or
 * length, since raw text has no quotes to bound) MOEVK_ERROR_INVALID_ARGUMENT, naming the tool
 * and the keyword. params->tool_choice other than "auto" gives a grammar that holds the answer
 * from its first token (*trigger_out NULL): "required" and a name make it a call, "none" any text
 * but one; a name not among the tools is MOEVK_ERROR_INVALID_ARGUMENT, and "required" or a name
 * in the mistral form MOEVK_ERROR_UNSUPPORTED (its calls begin with the [TOOL_CALLS] control
 * token, which a grammar cannot write). Added after moevk 0.1. */
MOEVK_API moevk_status moevk_chat_tool_call_grammar(const moevk_model* model, const moevk_chat_params* params,
                                                    char** grammar_out, char** trigger_out);

/* Splits what the model generated for an assistant turn (the text up to its end-of-turn token) into
 * the message the chat template renders, as JSON: {"role": "assistant", "content": "...",
 * "reasoning_content": "..." (Qwen3's <think> block, when the template has one and the text holds
 * it), "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": an object}}]
 * (when the model called tools)}. Appended to the conversation it renders back to the same text, so
 * a client stores it, runs the calls, adds {"role": "tool", "tool_call_id", "name", "content"}
 * results and asks again. The form of the calls follows the template (params->template_name, else
 * the model's): Qwen's <tool_call> JSON blocks, Qwen3-Coder's <function=...> blocks (typed by
 * params->tools_json's schemas), Mistral v3's [TOOL_CALLS] list, Llama-3.1's JSON object;
 * moevk_inspect_json names it ("chat_template": {"tool_calls"}). Text that does not parse as a call
 * stays in the content. OpenAI's API carries arguments as a JSON string: dump the object for it.
 * MOEVK_ERROR_INVALID_ARGUMENT for NULL arguments or a tools_json that is not a JSON array. Result
 * freed with moevk_free_string. */
MOEVK_API moevk_status moevk_chat_parse_response(const moevk_model* model, const char* text,
                                                 const moevk_chat_params* params, char** message_json_out);

/* The same, read as the answer streams, so that a client can show the reasoning and the content
 * as they grow and keep tool calls' text out of the content: create a stream with the rendered
 * prompt (NULL: none; when it ends inside an open <think>, as Qwen3-2507 thinking's does, the
 * answer begins as reasoning), push each piece moevk_generate streams, and finish at the end.
 * Each push gives a delta as JSON, {"reasoning_content": "...", "content": "..."} (a key only
 * when it has new text; {} when nothing is certain yet): only what the whole answer's message is
 * sure to begin with, so text that may become a call (<tool_call> to its </tool_call>,
 * [TOOL_CALLS] to the end, a Llama-3.1 answer that begins with "{"), part of a marker, and
 * spaces the message may trim wait. finish gives the last delta, with "tool_calls" (whole, with
 * the message's ids) when there are calls, and the message as moevk_chat_parse_response gives
 * it (after a prompt that opened <think>, as it gives it for "<think>\n" and the answer, so an
 * answer cut off while reasoning is reasoning); the deltas add up to its content and
 * reasoning_content. Where the message does not
 * begin with what was streamed (a reply that opens with spaces and then calls a tool, whose
 * content the message trims; a </think> never opened), the last delta holds both fields whole
 * and "replace": true. Strings freed with moevk_free_string. MOEVK_ERROR_INVALID_ARGUMENT for
 * NULL arguments, a tools_json that is not a JSON array, a push after finish or a second
 * finish (moevk_chat_stream_last_error says which). Added after moevk 0.1. */
typedef struct moevk_chat_stream moevk_chat_stream;
MOEVK_API moevk_status moevk_chat_stream_create(const moevk_model* model, const moevk_chat_params* params,
                                                const char* prompt, moevk_chat_stream** stream_out);
MOEVK_API moevk_status moevk_chat_stream_push(moevk_chat_stream* stream, const char* text, size_t text_len,
                                              char** delta_json_out);
MOEVK_API moevk_status moevk_chat_stream_finish(moevk_chat_stream* stream, char** delta_json_out,
                                                char** message_json_out);
MOEVK_API const char* moevk_chat_stream_last_error(const moevk_chat_stream* stream);
MOEVK_API void moevk_chat_stream_free(moevk_chat_stream* stream);

/* ------------------------------------------------------------------------------------------ */
/* Contexts: a KV cache and the recorded forward steps. Every call on a context is one thread  */
/* at a time per context; distinct contexts (of the same or different models) may run on      */
/* distinct threads. moevk_context_default_params and moevk_sampler_default_params /           */
/* moevk_generate_default_params are thread-safe.                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct moevk_context_params {
  size_t struct_size;
  uint32_t n_ctx;       /* 0: the model's training context (capped at 4096 by default) */
  uint32_t n_batch;     /* prompt tokens per forward step (prefill chunk), default 512 */
  int expert_stats;     /* nonzero: count expert choices per layer (moevk_context_stats_json) */
  int reserved;         /* unused, keep 0: where the 0.1 struct had its tail padding (its sizeof
                           covered it), so no later field lies in bytes a 0.1 caller leaves unset */
  /* Added after 0.1 (struct_size tells which fields a caller has; older, smaller structs are
   * accepted and the missing fields take their defaults): */
  int profile;          /* nonzero: GPU time per stage (attention, router, experts, other) from
                           timestamps, in moevk_context_stats_json "profile"; costs a little time */
} moevk_context_params;

MOEVK_API moevk_context_params moevk_context_default_params(void);
/* Thread-safe for distinct contexts of one model (the model is only read). Allocates the KV
 * cache and activations and records the n_batch step, so an n_batch this model cannot run in one
 * step on the device fails here with MOEVK_ERROR_UNSUPPORTED naming the limit (the model's last
 * error); MOEVK_DISABLE's fusion names and MOEVK_DECODE_CONFIG's kernel shapes (see README) are
 * read here, per context (a shape the device cannot run: MOEVK_ERROR_INVALID_ARGUMENT). */
MOEVK_API moevk_status moevk_context_create(moevk_model* model, const moevk_context_params* params,
                                            moevk_context** ctx_out);
MOEVK_API void moevk_context_free(moevk_context* ctx);
MOEVK_API const char* moevk_context_last_error(const moevk_context* ctx);
MOEVK_API uint32_t moevk_context_n_ctx(const moevk_context* ctx);
/* Tokens in the KV cache. A pending token (below) is not among them. */
MOEVK_API uint32_t moevk_context_n_past(const moevk_context* ctx);
/* The last token moevk_generate streamed, when it is not yet in the KV cache, else -1.
 * Generation stops right after streaming a token (max_tokens, a stop string, the callback, a
 * full context) without running the model over it: that forward step is only useful if the
 * text goes on. The token is kept pending instead, and the next moevk_decode or moevk_generate
 * on the context runs it first, in front of its own tokens; so the context always continues
 * from exactly the text that was streamed. moevk_context_reset drops it. An end-of-generation
 * token that stopped generating is neither streamed nor pending. */
MOEVK_API int32_t moevk_context_pending_token(const moevk_context* ctx);
/* Forgets every token (the KV cache is reused), the pending one too, and starts the sampler's
 * seeded stream again: a reset context generates as a new one would, draw for draw. */
MOEVK_API moevk_status moevk_context_reset(moevk_context* ctx);
/* Keeps the first n_keep tokens of the KV cache and forgets the rest, the pending token and the
 * last call's logits (n_keep <= moevk_context_n_past, else MOEVK_ERROR_INVALID_ARGUMENT and
 * nothing changes): the next moevk_decode or moevk_generate continues at position n_keep, as if
 * the forgotten tokens had never been decoded. Rewinds a conversation to a shared prefix (a
 * stop string's tokens, a regenerated answer) without reading the prefix again. Added after 0.1. */
MOEVK_API moevk_status moevk_context_truncate(moevk_context* ctx, uint32_t n_keep);

/* Appends tokens at the current position and runs the model over them (in chunks of n_batch),
 * after the pending token of the last moevk_generate when there is one (n_tokens may then be 0
 * to decode just that). Afterwards the logits of the last token are available (of every token
 * of this call when all_logits is nonzero). MOEVK_ERROR_CONTEXT_FULL, with nothing appended,
 * when n_past + n_tokens (+ 1 pending) exceeds n_ctx; MOEVK_ERROR_INVALID_ARGUMENT for a token
 * id outside the vocabulary. */
MOEVK_API moevk_status moevk_decode(moevk_context* ctx, const int32_t* tokens, size_t n_tokens,
                                    int all_logits);
/* Logits (n_vocab floats) of token `index` of the last moevk_decode call (-1: its last token).
 * After moevk_generate they are those of its last decoded token (the one that gave the pending
 * token), except where generation chose its tokens on the GPU and copied no logits (this call
 * says so): greedy without penalties (the argmax), and the sampling moevk_sampler_params says the
 * GPU does (a draw from the 64 best logits; MOEVK_DISABLE=gpu_sampling samples on the host
 * instead). The pointer stays valid until the next call on the context. */
MOEVK_API moevk_status moevk_get_logits(moevk_context* ctx, int32_t index, const float** logits_out);

typedef struct moevk_sampler_params {
  size_t struct_size;
  float temperature;         /* <= 0: greedy (argmax on the GPU, no logits copy) */
  /* moevk_generate chooses on the GPU (no logits copy), at any top_k (or temperature <= 0 with
   * penalties), penalties over any window included: the same rule and the same seeded stream as on the host, so the tokens are the host
   * sampler's but where float rounding falls on the edge of a probability interval. */
  int32_t top_k;             /* <= 0: off */
  float top_p;               /* >= 1: off */
  float min_p;               /* <= 0: off */
  float repeat_penalty;      /* 1: off */
  int32_t repeat_last_n;     /* tokens considered by the penalties; < 0: all of them */
  float presence_penalty;    /* 0: off */
  float frequency_penalty;   /* 0: off */
  /* The sampler's stream goes on across the calls on a context while the parameters stay the
   * same; new parameters, or moevk_context_reset, start it again from the seed. */
  uint64_t seed;
} moevk_sampler_params;

MOEVK_API moevk_sampler_params moevk_sampler_default_params(void);
/* Picks the next token from the logits of the last decoded token (NULL params: the defaults).
 * A sampled token is not decoded: pass it to moevk_decode to go on. */
MOEVK_API moevk_status moevk_sample(moevk_context* ctx, const moevk_sampler_params* params,
                                    int32_t* token_out);

/* Streams decoded text; return nonzero to stop generating (the call then returns MOEVK_OK with
 * stop reason MOEVK_STOP_CALLBACK). `text` holds only whole UTF-8 characters. */
typedef int (*moevk_token_fn)(const char* text, size_t text_len, int32_t token, void* user_data);

typedef enum moevk_stop_reason {
  MOEVK_STOP_MAX_TOKENS = 0,
  MOEVK_STOP_EOG = 1,
  MOEVK_STOP_STRING = 2,
  MOEVK_STOP_CALLBACK = 3,
  MOEVK_STOP_CONTEXT_FULL = 4,
  /* The text is a whole sentence of the grammar (moevk_generate_params.grammar / json_schema)
   * and nothing can follow it. Added after moevk 0.1. */
  MOEVK_STOP_GRAMMAR = 5
} moevk_stop_reason;

typedef struct moevk_generate_params {
  size_t struct_size;
  const char* prompt;             /* text, or NULL when prompt_tokens is given */
  const int32_t* prompt_tokens;
  size_t n_prompt_tokens;
  int add_special;                /* add BOS as the vocabulary asks (default 1) */
  int parse_special;              /* recognise special tokens written in the prompt (default 1) */
  int32_t max_tokens;             /* default 128 */
  int ignore_eos;
  const char* const* stop_strings;
  size_t n_stop_strings;
  moevk_sampler_params sampling;
  moevk_token_fn on_token;
  void* user_data;
  /* Added after moevk 0.1 (read where struct_size covers them; NULL: unconstrained).
   * Constrained generation: every generated token keeps the text a prefix of a sentence of the
   * grammar, and the end of generation comes only where the text is a whole one (generation
   * stops by itself, MOEVK_STOP_GRAMMAR, where nothing can follow). `grammar` is GBNF as
   * llama.cpp writes it (start rule "root"); `json_schema` a JSON Schema the output must meet,
   * turned into such a grammar (moevk_json_schema_to_grammar says which keywords are read).
   * At most one of them. A grammar or schema that does not parse is MOEVK_ERROR_INVALID_ARGUMENT
   * before anything is decoded. Tokens are then chosen on the host from copied logits (no
   * chained steps): the sampler draws as usual, and only a draw the grammar refuses is drawn
   * again from the allowed tokens. */
  const char* grammar;
  const char* json_schema;
  /* With grammar or json_schema: a lazy grammar (llama.cpp's grammar triggers). Tokens are free
   * until the generated text contains this text; the grammar then holds what follows its first
   * occurrence ("<tool_call>" before a call's JSON, "</think>" after reasoning). An end of
   * generation before it ends as usual. NULL: the grammar holds the text from its start. */
  const char* grammar_trigger;
} moevk_generate_params;

typedef struct moevk_generate_result {
  size_t struct_size;
  int32_t n_prompt_tokens;
  int32_t n_generated;
  double prompt_ms;     /* wall time of the prompt (prefill) */
  double generate_ms;   /* wall time of generation after the first token */
  moevk_stop_reason stop_reason;
  /* Of generate_ms, the time the calling thread was blocked waiting for the GPU's steps; the
   * rest (generate_ms - generate_wait_ms) is the host's own work: submits, detokenizing, stop
   * strings, on_token. Per token, that rest bounds tokens/s however fast the GPU is (moevk
   * bench reports it). Added after moevk 0.1: present where struct_size covers it. */
  double generate_wait_ms;
} moevk_generate_result;

MOEVK_API moevk_generate_params moevk_generate_default_params(void);
/* Decodes the prompt after what the context holds (the pending token first, if any), then
 * samples up to max_tokens tokens, streaming text through on_token. The last streamed token is
 * left pending (see moevk_context_pending_token). With a pending token the prompt may be empty
 * ("" or n_prompt_tokens 0) to continue the text. BOS is added (add_special) only when the
 * context is empty. `result` may be NULL; else its struct_size must be set, and on return it
 * holds the bytes written (at most sizeof(moevk_generate_result) of this header). */
MOEVK_API moevk_status moevk_generate(moevk_context* ctx, const moevk_generate_params* params,
                                      moevk_generate_result* result);

/* Expert choice counts per layer (when expert_stats was set), "n_past", "pending_token" and
 * timings (moevk_generate's totals: "prompt_tokens", "prompt_ms", "generated_tokens",
 * "generate_ms", "generate_wait_ms"), as JSON. Its "profile" object: {"enabled", "stages":
 * [names], "decode": {...}, "prefill": {...}} where decode covers 1-token steps and prefill the steps of more tokens, each
 * with "steps", "tokens", "gpu_ms", "stage_ms" {stage: total ms}, "stage_ms_per_token"
 * {stage: ms}, "dispatches_per_step" and "barriers_per_step" (counts are there even without
 * profiling). Its "memory" object, in bytes of device-local memory: "weights_bytes" (the
 * model's), "kv_cache_bytes" and "activations_bytes" (this context's caches and other
 * buffers), and "device_peak_bytes" (the highest total of the model's device so far, every
 * context of the model included). "decode_kernels": the one-token products' workgroup shapes
 * the context runs, "experts=64x2,mv=128x4" (MOEVK_DECODE_CONFIG's form). "features": the
 * device features the model's kernels use, as `moevk devices` lists them ("fp16,int8,dot,...",
 * with MOEVK_DISABLE's taken out and MOEVK_ENABLE's opt-in kernels, e.g. "dot_decode", added). */
/* The GBNF grammar (start rule "root") moevk_generate uses for a JSON Schema, in *grammar_out
 * (free with moevk_free_string), to read or edit. Read: type (one or a list), enum, const,
 * properties / required / additionalProperties (absent with properties given: no other keys, as
 * OpenAI's strict structured outputs), items, prefixItems, minItems / maxItems (up to 1000),
 * minLength / maxLength (up to 10000), format (date, time, date-time, uuid), minimum 0 (and 1
 * for integers: the bounds a sign decides), anyOf / oneOf, allOf of one schema, $ref within the
 * document (#, #/$defs/..., #/definitions/...; recursion included), nullable; annotations (title,
 * description, default, examples, ...) are ignored. Any other keyword or value (pattern, maximum,
 * format "email", a typo such as "propertys") is refused with MOEVK_ERROR_INVALID_ARGUMENT
 * naming it and where it is ("json_schema: /properties/age: ..."), rather than ignored: text
 * the grammar allows would then not meet the schema. Numbers have at most 16 integer digits, 20
 * fraction digits and a 3-digit exponent, and whitespace between tokens is bounded, so a model
 * cannot write forever inside one. Thread-safe. */
MOEVK_API moevk_status moevk_json_schema_to_grammar(const char* schema_json, char** grammar_out);

/* A grammar for a generation loop of the caller's own (moevk_decode, then moevk_sample_grammar
 * and moevk_grammar_accept per token), held as moevk_generate_params.grammar / json_schema hold
 * moevk_generate. Added after moevk 0.1. Made from GBNF (`grammar`) or a JSON Schema: exactly
 * one of them, else MOEVK_ERROR_INVALID_ARGUMENT (the message is the model's last error);
 * `trigger` (NULL: none) makes it lazy, as moevk_generate_params.grammar_trigger. It
 * belongs to `model`'s vocabulary and must be freed before the model. A grammar is used by one
 * thread at a time; several may be made from one model on several threads. */
typedef struct moevk_grammar moevk_grammar;
MOEVK_API moevk_status moevk_grammar_create(const moevk_model* model, const char* grammar, const char* json_schema,
                                            const char* trigger, moevk_grammar** grammar_out);
MOEVK_API void moevk_grammar_free(moevk_grammar* grammar);
MOEVK_API const char* moevk_grammar_last_error(const moevk_grammar* grammar);
/* 1 when `token` may come next: its text keeps the text a prefix of a sentence; an
 * end-of-generation token only where the text is a whole sentence; control tokens never. */
MOEVK_API int moevk_grammar_allows(const moevk_grammar* grammar, int32_t token);
/* Appends `token` to the grammar's text; MOEVK_ERROR_INVALID_ARGUMENT (nothing changes, the
 * message says what the grammar expects) when it is not allowed. */
MOEVK_API moevk_status moevk_grammar_accept(moevk_grammar* grammar, int32_t token);
/* 1 when the text is a whole sentence and nothing can follow it: the loop is done. */
MOEVK_API int moevk_grammar_is_complete(const moevk_grammar* grammar);
/* moevk_sample among the tokens the grammar allows: the sampler's own choice where allowed, else
 * its choice among the allowed ones (the token is not accepted: call moevk_grammar_accept). Needs
 * the logits of a moevk_decode; MOEVK_ERROR_INVALID_ARGUMENT where no token can follow. */
MOEVK_API moevk_status moevk_sample_grammar(moevk_context* ctx, const moevk_sampler_params* params,
                                            const moevk_grammar* grammar, int32_t* token_out);

MOEVK_API moevk_status moevk_context_stats_json(moevk_context* ctx, char** json_out);
/* (Like every call on a context: one thread at a time per context.) */

/* ------------------------------------------------------------------------------------------ */
/* Files: convert, make-model, inspect                                                         */
/* ------------------------------------------------------------------------------------------ */

/* One line of information from a long call (e.g. "blk.0.ffn_down_exps.weight: row length 96
 * is not a multiple of q4_K's block of 256, stored as q8_0"). Called on the calling thread. */
typedef void (*moevk_log_fn)(const char* line, void* user_data);

/* The *_default_params functions below are thread-safe. */

/* Stored types (convert and make-model): norms, biases, routers and the shared-expert gate stay
 * F32; every matrix (token_embd and output included) takes `type`, or the type of the first of
 * `tensor_types` whose pattern its name matches, except one whose row length is not a multiple
 * of the type's block: K-quants fall back to q8_0 (row a multiple of 32), otherwise f16; each
 * fallback is reported through `log`. `type` may also name one of llama-quantize's K-quant mixes,
 * "q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q3_k_m", "q3_k_s", "q3_k_l" (case-insensitive): each
 * matrix then takes the type llama-quantize gives it in that file type (the output head q6_k;
 * attn_v and ffn_down wider in some layers; 8-expert models' attn_v and attn_k q8_0), with
 * llama-quantize's fallbacks for short rows (q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0,
 * q3_k -> iq4_nl, then f16), and general.file_type says so (Q4_K_M = 15).
 * tensor_types (may be NULL when n_tensor_types is 0): rules "PATTERN=TYPE" as llama-quantize's
 * --tensor-type, PATTERN an ECMAScript regular expression searched in each matrix's GGUF name,
 * e.g. "ffn_down_exps=q6_k", "^output\\.weight$=q6_k", "blk\\.(0|1|2)\\.attn_v=q8_0" (a
 * rule wins over a mix's choice). A malformed rule, or one that matches no
 * matrix, fails the call (MOEVK_ERROR_INVALID_ARGUMENT) before anything is written. Added after
 * moevk 0.1's first layout: a caller built without these fields gets none. */
typedef struct moevk_convert_params {
  size_t struct_size;
  const char* hf_dir;       /* config.json + *.safetensors (+ tokenizer.json, optional) */
  const char* output_path;  /* the GGUF file to write (replaced; removed again on failure) */
  const char* type;         /* f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k,
                                q5_k, q6_k, iq4_nl, iq4_xs, the iq1..iq3 types, or a mix
                                (q4_k_m, ...: above); default "f16" */
  moevk_progress_fn progress;
  void* progress_user_data;
  moevk_log_fn log;
  void* log_user_data;
  const char* const* tensor_types; /* per-tensor type rules (above); default none */
  size_t n_tensor_types;
} moevk_convert_params;

MOEVK_API moevk_convert_params moevk_convert_default_params(void);
/* Converts a Hugging Face checkpoint (MixtralForCausalLM, Qwen2MoeForCausalLM,
 * Qwen3MoeForCausalLM; dense Llama/Mistral/Qwen2/Qwen3) into GGUF with llama.cpp's tensor
 * names and metadata. Without tokenizer.json a placeholder vocabulary is written.
 * Thread-safe (distinct output paths). */
MOEVK_API moevk_status moevk_convert(const moevk_convert_params* params);

typedef struct moevk_make_model_params {
  size_t struct_size;
  const char* preset;       /* tiny (default), tiny-qwen2moe, tiny-qwen3moe, mixtral-8x7b,
                               mixtral-8x22b, qwen1.5-moe-a2.7b, qwen3-30b-a3b */
  const char* output_path;  /* may be NULL with dry_run */
  const char* type;         /* default "q4_0" */
  uint64_t seed;
  int dry_run;              /* nonzero: write nothing, only describe the file */
  /* Shape overrides; 0 (or NULL) keeps the preset's value. n_ff is the expert FFN width for
   * MoE models (the dense width for dense ones). */
  const char* arch;         /* llama, qwen2moe, qwen3moe */
  uint32_t n_layer, n_embd, n_ff, n_ff_shexp, n_expert, n_expert_used;
  uint32_t n_head, n_head_kv, head_dim, n_vocab, n_ctx;
  moevk_progress_fn progress;
  void* progress_user_data;
  moevk_log_fn log;
  void* log_user_data;
  const char* const* tensor_types; /* per-tensor type rules (see moevk_convert_params) */
  size_t n_tensor_types;
} moevk_make_model_params;

MOEVK_API moevk_make_model_params moevk_make_model_default_params(void);
/* Writes a model with random weights of realistic scale (streamed: memory stays small whatever
 * the model size; Q4_K, Q5_K and Q6_K without moevk_convert's scale search). info_json_out (may be NULL) receives the file's summary as
 * moevk_inspect_json gives it; free with moevk_free_string. Thread-safe (distinct paths). */
MOEVK_API moevk_status moevk_make_model(const moevk_make_model_params* params, char** info_json_out);

/* Summary of a GGUF model as JSON: {"hparams": {...}, "n_tensors", "total_params",
 * "expert_params", "active_params", "weight_bytes", "active_bytes_per_token" (weights read to
 * decode one token: attention, router, shared expert, the k chosen experts, norms, output, one
 * embedding row), "kv_bytes_per_token" (F16 K and V, all layers), "kv_bytes_full_context" (at
 * the training context), "types": [{"type", "tensors", "elements", "bytes"}], "gguf":
 * {"version", "alignment", "data_offset", "file_size" (all files of a split set together),
 * "files": [{"path", "version", "alignment", "data_offset", "file_size", "n_tensors"}] (one entry
 * for a plain file)}, "file_type": {"id" (general.file_type), "name" ("Q4_K_M", null for an id
 * this build does not know)} (absent without the key), "tensors": [{"name", "type", "type_id" (ggml's type id), "dims" (ne[0]
 * first), "file" (index into "files"), "offset" (absolute in its file, bytes), "bytes"}] in file
 * order, "chat_template": {"bytes" (0: none), "renders" (a system + user conversation, or a user
 * message alone, renders), "system_message" (the template takes one), "tools" (a tool list reaches
 * the prompt), "tool_calls" (how moevk_chat_parse_response reads the model's calls: "hermes",
 * "qwen3_coder", "mistral", "llama3_json" or "none"), "reasoning" (it knows <think> blocks),
 * "error" (why it does not parse or render; null)}}. Reads only the headers. A split set (llama.cpp's gguf-split files
 * NAME-00001-of-0000N.gguf) is given by its first file, here and in moevk_model_load. Free with
 * moevk_free_string. Thread-safe. */
MOEVK_API moevk_status moevk_inspect_json(const char* gguf_path, char** json_out);

typedef struct moevk_split_params {
  size_t struct_size;
  const char* input_path;    /* a GGUF file, or the first file of a split set */
  const char* output_path;   /* split: the prefix of PREFIX-00001-of-0000N.gguf ...; merge: the file */
  int merge;                 /* nonzero: write the input as one file, without the split keys */
  uint64_t max_file_bytes;   /* split: a new file before a tensor that would take the current one
                                past this many bytes of tensor data; 0: no limit */
  uint64_t max_tensors;      /* split: at most this many tensors per file; 0: no limit (default
                                128, as gguf-split) */
  moevk_progress_fn progress; /* fraction of tensor bytes written, stage: the file being written */
  void* progress_user_data;
  char** paths_json_out;     /* optional: the files written as a JSON array of strings (free with
                                moevk_free_string) */
} moevk_split_params;

MOEVK_API moevk_split_params moevk_split_default_params(void);
/* Splits a GGUF file into a set llama.cpp loads (gguf-split --split: the metadata in the first
 * file, split.no / split.count / split.tensors.count in each, a tensor larger than the limit in a
 * file of its own), or merges a set into one file (gguf-split --merge). Files are written under
 * temporary names and renamed when complete; on failure none is left behind. Thread-safe
 * (distinct output paths). */
MOEVK_API moevk_status moevk_split(const moevk_split_params* params);

/* ------------------------------------------------------------------------------------------ */
/* Benchmarks                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Measures the device's copy bandwidth (GB/s, bytes read + written) and fp32 FMA throughput:
 * {"device": {...}, "copy_gbps": ..., "fma_gflops": ...}. `device` may be NULL. Thread-safe. */
MOEVK_API moevk_status moevk_device_rates_json(const char* device, char** json_out);

/* Times every kernel family on realistic layer shapes. `options_json` (may be NULL):
 * {"device": "...", "shapes": ["mixtral-8x7b", "qwen3-30b-a3b", "tiny", ...],
 *  "types": ["q4_0", "q4_k"], "tokens": [1, 8, 32, 128, 512], "kernels": [...], "repeats": 10,
 *  "decode_configs": [[64, 2], [128, 4]]} (the last: the one-token moe_experts, attn_qkv and
 *  output products again per workgroup size and rows per workgroup of their kernels).
 * The result is JSON, or a Markdown table when `markdown` is nonzero. Thread-safe. */
MOEVK_API moevk_status moevk_bench_ops(const char* options_json, int markdown, char** result_out);

#ifdef __cplusplus
}
#endif

#endif /* MOEVK_H */
