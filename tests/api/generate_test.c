/* Plain C against the public header: convert a fixture, load it, generate, and check that
 * failures come back as statuses with messages. argv[1] is tests/data. */
#include <moevk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_check.h"

typedef struct {
  int32_t tokens[64];
  int n;
  size_t text_bytes;
} collected;

static int collect(const char* text, size_t len, int32_t token, void* user) {
  collected* c = (collected*)user;
  (void)text;
  c->text_bytes += len;
  if (token >= 0 && c->n < 64) c->tokens[c->n++] = token;
  return 0;
}

static int stop_after_three(const char* text, size_t len, int32_t token, void* user) {
  (void)text; (void)len; (void)token;
  return ++*(int*)user >= 3;
}

int main(int argc, char** argv) {
  char hf_dir[1024], gguf[1024];
  const char* data = argc > 1 ? argv[1] : "tests/data";
  snprintf(hf_dir, sizeof hf_dir, "%s/hf/qwen2moe-tiny", data);
  snprintf(gguf, sizeof gguf, "%s/moevk-c-api-test-%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());

  CHECK(strlen(moevk_version()) > 0, "no version");
  CHECK(MOEVK_VERSION_NUMBER == 100, "version number");

  /* Failures without a handle: status + per-thread message. */
  moevk_model* model = NULL;
  moevk_status st = moevk_model_load("/nonexistent/model.gguf", NULL, &model);
  CHECK(st == MOEVK_ERROR_IO, "load of a missing file gave %s", moevk_status_name(st));
  CHECK(model == NULL, "model set on failure");
  CHECK(strstr(moevk_last_error(), "/nonexistent/model.gguf") != NULL, "message: %s", moevk_last_error());
  CHECK(moevk_model_load(NULL, NULL, &model) == MOEVK_ERROR_INVALID_ARGUMENT, "NULL path");

  moevk_convert_params cp = moevk_convert_default_params();
  cp.hf_dir = hf_dir;
  cp.output_path = gguf;
  cp.type = "f16";
  st = moevk_convert(&cp);
  CHECK(st == MOEVK_OK, "convert: %s", moevk_last_error());
  if (st != MOEVK_OK) return 1;

  moevk_model_params mp = moevk_model_default_params();
  mp.validation = 1;
  st = moevk_model_load(gguf, &mp, &model);
  CHECK(st == MOEVK_OK, "load: %s", moevk_last_error());
  if (st != MOEVK_OK) return 1;
  CHECK(moevk_model_n_vocab(model) == 384, "n_vocab %d", moevk_model_n_vocab(model));

  moevk_context_params xp = moevk_context_default_params();
  xp.n_ctx = 64;
  xp.n_batch = 8;
  moevk_context *a = NULL, *b = NULL;
  CHECK(moevk_context_create(model, &xp, &a) == MOEVK_OK, "context a: %s", moevk_model_last_error(model));
  CHECK(moevk_context_create(model, &xp, &b) == MOEVK_OK, "context b: %s", moevk_model_last_error(model));
  if (!a || !b) return 1;

  /* A batch no step can take on this device fails at creation, naming n_batch and the limit;
   * the model and its other contexts stay usable (a and b are used below). */
  moevk_context_params huge = xp;
  huge.n_ctx = 65536;
  huge.n_batch = 65536;
  moevk_context* too_big = NULL;
  st = moevk_context_create(model, &huge, &too_big);
  CHECK(st == MOEVK_ERROR_UNSUPPORTED, "n_batch 65536 gave %s", moevk_status_name(st));
  CHECK(too_big == NULL, "context set on failure");
  CHECK(strstr(moevk_model_last_error(model), "n_batch 65536") != NULL, "message: %s", moevk_model_last_error(model));
  CHECK(strstr(moevk_model_last_error(model), "at most 65535") != NULL, "message: %s", moevk_model_last_error(model));

  /* Greedy generation through moevk_generate ... */
  const int32_t prompt[5] = {5, 17, 42, 99, 250};
  moevk_generate_params gp = moevk_generate_default_params();
  gp.prompt_tokens = prompt;
  gp.n_prompt_tokens = 5;
  gp.max_tokens = 8;
  gp.ignore_eos = 1;
  gp.sampling.temperature = 0;
  collected got = {{0}, 0, 0};
  gp.on_token = collect;
  gp.user_data = &got;
  moevk_generate_result res;
  memset(&res, 0, sizeof res);
  res.struct_size = sizeof res;
  st = moevk_generate(a, &gp, &res);
  CHECK(st == MOEVK_OK, "generate: %s", moevk_context_last_error(a));
  CHECK(res.n_generated == 8 && got.n == 8, "generated %d, streamed %d", res.n_generated, got.n);
  CHECK(res.n_prompt_tokens == 5, "prompt tokens %d", res.n_prompt_tokens);
  CHECK(got.text_bytes > 0, "no text streamed");
  /* Of the generation's time, some was spent blocked on the GPU's 7 steps (lavapipe runs them
   * on the CPU: milliseconds), never more than the whole. */
  CHECK(res.generate_wait_ms > 0 && res.generate_wait_ms <= res.generate_ms, "waited %.3f of %.3f ms",
        res.generate_wait_ms, res.generate_ms);

  /* ... equals decode + argmax one token at a time on an independent context. */
  CHECK(moevk_decode(b, prompt, 5, 0) == MOEVK_OK, "decode: %s", moevk_context_last_error(b));
  for (int i = 0; i < 8; ++i) {
    const float* logits = NULL;
    CHECK(moevk_get_logits(b, -1, &logits) == MOEVK_OK && logits, "logits: %s", moevk_context_last_error(b));
    if (!logits) break;
    int32_t best = 0;
    for (int32_t v = 1; v < 384; ++v)
      if (logits[v] > logits[best]) best = v;
    CHECK(best == got.tokens[i], "token %d: decode/argmax %d, generate %d", i, best, got.tokens[i]);
    CHECK(moevk_decode(b, &best, 1, 0) == MOEVK_OK, "decode step");
  }

  /* The last streamed token is pending, not in the KV cache: 5 prompt + 7 decoded. */
  CHECK(moevk_context_n_past(a) == 12, "n_past after generate %u", moevk_context_n_past(a));
  CHECK(moevk_context_pending_token(a) == got.tokens[7], "pending %d, last streamed %d",
        moevk_context_pending_token(a), got.tokens[7]);
  /* Greedy generation copied no logits, and the message says why. */
  const float* none = NULL;
  st = moevk_get_logits(a, -1, &none);
  CHECK(st == MOEVK_ERROR_INVALID_ARGUMENT && strstr(moevk_context_last_error(a), "greedy") != NULL,
        "logits after greedy generate: %s %s", moevk_status_name(st), moevk_context_last_error(a));
  /* The next decode runs the pending token first: the same as decoding it in the same batch. */
  moevk_context_reset(b);
  CHECK(moevk_decode(b, prompt, 5, 0) == MOEVK_OK, "decode");
  for (int i = 0; i < 7; ++i) CHECK(moevk_decode(b, &got.tokens[i], 1, 0) == MOEVK_OK, "decode step");
  const int32_t pending_and_next[2] = {got.tokens[7], 77};
  CHECK(moevk_decode(b, pending_and_next, 2, 1) == MOEVK_OK, "decode: %s", moevk_context_last_error(b));
  const int32_t next_only = 77;
  CHECK(moevk_decode(a, &next_only, 1, 1) == MOEVK_OK, "decode after generate: %s", moevk_context_last_error(a));
  CHECK(moevk_context_n_past(a) == 14 && moevk_context_pending_token(a) == -1, "n_past %u, pending %d",
        moevk_context_n_past(a), moevk_context_pending_token(a));
  const float *la = NULL, *lb = NULL;
  CHECK(moevk_get_logits(a, 0, &la) == MOEVK_OK && la, "logits of the caller's token: %s", moevk_context_last_error(a));
  CHECK(moevk_get_logits(a, 1, &la) != MOEVK_OK, "index 1 must be out of range (one token passed)");
  CHECK(moevk_get_logits(a, 0, &la) == MOEVK_OK && moevk_get_logits(b, 1, &lb) == MOEVK_OK && la && lb, "logits");
  if (la && lb) CHECK(memcmp(la, lb, 384 * sizeof(float)) == 0, "logits differ from decoding the pending token in line");

  /* Generation in two calls, the second with an empty prompt, continues the same text. */
  moevk_context_reset(a);
  collected split = {{0}, 0, 0};
  gp.user_data = &split;
  gp.max_tokens = 4;
  CHECK(moevk_generate(a, &gp, &res) == MOEVK_OK, "generate: %s", moevk_context_last_error(a));
  moevk_generate_params more = gp;
  more.prompt_tokens = NULL;
  more.n_prompt_tokens = 0;
  more.prompt = "";
  CHECK(moevk_generate(a, &more, &res) == MOEVK_OK, "continue: %s", moevk_context_last_error(a));
  CHECK(res.n_prompt_tokens == 0 && split.n == 8, "continued with %d prompt tokens, %d streamed", res.n_prompt_tokens,
        split.n);
  for (int i = 0; i < split.n && i < 8; ++i)
    CHECK(split.tokens[i] == got.tokens[i], "token %d: %d in two calls, %d in one", i, split.tokens[i], got.tokens[i]);
  moevk_context_reset(a);
  CHECK(moevk_context_pending_token(a) == -1, "reset keeps a pending token");
  moevk_generate_params no_tokens = more;
  no_tokens.prompt = NULL;
  no_tokens.prompt_tokens = prompt;
  CHECK(moevk_generate(a, &no_tokens, &res) == MOEVK_ERROR_INVALID_ARGUMENT,
        "zero prompt tokens with nothing pending must fail");
  gp.user_data = &got;

  /* Parameter structs without a valid struct_size are refused, not misread. */
  moevk_generate_params unsized = gp;
  unsized.struct_size = 0;
  CHECK(moevk_generate(a, &unsized, &res) == MOEVK_ERROR_INVALID_ARGUMENT, "generate with struct_size 0");
  unsized = gp;
  unsized.sampling.struct_size = 4;
  CHECK(moevk_generate(a, &unsized, &res) == MOEVK_ERROR_INVALID_ARGUMENT, "generate with sampling.struct_size 4");
  moevk_sampler_params bad_sampler = moevk_sampler_default_params();
  bad_sampler.struct_size = 0;
  int32_t unused = -1;
  CHECK(moevk_sample(b, &bad_sampler, &unused) == MOEVK_ERROR_INVALID_ARGUMENT, "sample with struct_size 0");

  /* Errors on a context leave it usable. */
  const int32_t bad = 100000;
  st = moevk_decode(b, &bad, 1, 0);
  CHECK(st == MOEVK_ERROR_INVALID_ARGUMENT, "bad token gave %s", moevk_status_name(st));
  CHECK(strlen(moevk_context_last_error(b)) > 0, "no message for the bad token");
  int32_t many[80];
  for (int i = 0; i < 80; ++i) many[i] = 7 + i;
  uint32_t before = moevk_context_n_past(b);
  st = moevk_decode(b, many, 80, 0);
  CHECK(st == MOEVK_ERROR_CONTEXT_FULL, "overlong prompt gave %s", moevk_status_name(st));
  CHECK(moevk_context_n_past(b) == before, "a failed decode appended tokens");
  CHECK(moevk_context_reset(b) == MOEVK_OK, "reset");
  CHECK(moevk_decode(b, prompt, 5, 1) == MOEVK_OK, "decode after errors: %s", moevk_context_last_error(b));
  const float* first = NULL;
  CHECK(moevk_get_logits(b, 0, &first) == MOEVK_OK && first, "all logits");

  /* The callback stops generation. */
  int calls = 0;
  moevk_context_reset(a);
  gp.on_token = stop_after_three;
  gp.user_data = &calls;
  gp.max_tokens = 20;
  CHECK(moevk_generate(a, &gp, &res) == MOEVK_OK, "generate with stop");
  CHECK(res.stop_reason == MOEVK_STOP_CALLBACK && calls == 3, "stop reason %d after %d calls", res.stop_reason, calls);

  /* Sampling with a seed is repeatable. */
  moevk_sampler_params sp = moevk_sampler_default_params();
  sp.temperature = 1.0f;
  sp.seed = 7;
  int32_t t1 = -1, t2 = -2;
  moevk_context_reset(a);
  moevk_decode(a, prompt, 5, 0);
  CHECK(moevk_sample(a, &sp, &t1) == MOEVK_OK, "sample");
  moevk_context_reset(b);
  moevk_decode(b, prompt, 5, 0);
  CHECK(moevk_sample(b, &sp, &t2) == MOEVK_OK, "sample");
  CHECK(t1 == t2 && t1 >= 0 && t1 < 384, "seeded samples %d vs %d", t1, t2);

  char* stats = NULL;
  CHECK(moevk_context_stats_json(a, &stats) == MOEVK_OK && stats, "stats");
  moevk_free_string(stats);

  moevk_context_free(a);
  moevk_context_free(b);
  moevk_model_free(model);
  remove(gguf);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("C API test passed\n");
  return failures ? 1 : 0;
}
