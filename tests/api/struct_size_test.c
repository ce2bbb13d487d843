/* Plain C: every call that takes a struct with a struct_size refuses one smaller than the
 * struct's first layout (moevk 0.1), 0 included, with MOEVK_ERROR_INVALID_ARGUMENT and a message
 * naming the struct, before doing anything else; the sizes the default functions set work.
 * argv[1] is tests/data. */
#include <moevk.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_check.h"

/* The end of a struct's last field of 0.1: the smallest struct_size a caller can have. */
#define FIRST_LAYOUT(T, last_field) (offsetof(T, last_field) + sizeof(((T*)0)->last_field))

/* The thread's message names the struct and the field. */
#define CHECK_MESSAGE(message, struct_name, field)                                                 \
  CHECK(strstr((message), (struct_name)) != NULL && strstr((message), (field)) != NULL,            \
        "message does not name " struct_name " and " field ": '%s'", (message))

int main(int argc, char** argv) {
  char hf_dir[1024], gguf[1024];
  const char* data = argc > 1 ? argv[1] : "tests/data";
  snprintf(hf_dir, sizeof hf_dir, "%s/hf/qwen2moe-tiny", data);
  snprintf(gguf, sizeof gguf, "%s/moevk-struct-size-%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid());

  /* moevk_convert and moevk_make_model: refused before any file is read or written. */
  const size_t convert_sizes[3] = {0, sizeof(size_t), FIRST_LAYOUT(moevk_convert_params, log_user_data) - 1};
  for (int i = 0; i < 3; ++i) {
    moevk_convert_params cp = moevk_convert_default_params();
    cp.hf_dir = hf_dir;
    cp.output_path = gguf;
    cp.struct_size = convert_sizes[i];
    CHECK(moevk_convert(&cp) == MOEVK_ERROR_INVALID_ARGUMENT, "convert with struct_size %zu", convert_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_convert_params", "params->struct_size");
    CHECK(access(gguf, F_OK) != 0, "convert with struct_size %zu wrote %s", convert_sizes[i], gguf);
  }
  const size_t make_sizes[3] = {0, offsetof(moevk_make_model_params, arch),
                                FIRST_LAYOUT(moevk_make_model_params, log_user_data) - 1};
  for (int i = 0; i < 3; ++i) {
    moevk_make_model_params mp = moevk_make_model_default_params();
    mp.output_path = gguf;
    mp.struct_size = make_sizes[i];
    char* json = (char*)"unchanged";
    CHECK(moevk_make_model(&mp, &json) == MOEVK_ERROR_INVALID_ARGUMENT, "make_model with struct_size %zu", make_sizes[i]);
    CHECK(json == NULL, "make_model with struct_size %zu returned a summary", make_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_make_model_params", "params->struct_size");
    CHECK(access(gguf, F_OK) != 0, "make_model with struct_size %zu wrote %s", make_sizes[i], gguf);
  }

  /* moevk_split: likewise. */
  const size_t split_sizes[2] = {0, FIRST_LAYOUT(moevk_split_params, paths_json_out) - 1};
  for (int i = 0; i < 2; ++i) {
    moevk_split_params sp = moevk_split_default_params();
    sp.struct_size = split_sizes[i];
    sp.input_path = "/nonexistent/model.gguf";
    sp.output_path = "/nonexistent/out";
    CHECK(moevk_split(&sp) == MOEVK_ERROR_INVALID_ARGUMENT, "split with struct_size %zu", split_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_split_params", "params->struct_size");
  }

  /* moevk_model_load: refused before the file is opened (a missing file would be an IO error). */
  const size_t load_sizes[3] = {0, sizeof(size_t), FIRST_LAYOUT(moevk_model_params, progress_user_data) - 1};
  for (int i = 0; i < 3; ++i) {
    moevk_model_params mp = moevk_model_default_params();
    mp.struct_size = load_sizes[i];
    moevk_model* model = (moevk_model*)&mp; /* must come back NULL */
    moevk_status st = moevk_model_load("/nonexistent/model.gguf", &mp, &model);
    CHECK(st == MOEVK_ERROR_INVALID_ARGUMENT, "load with struct_size %zu gave %s", load_sizes[i], moevk_status_name(st));
    CHECK(model == NULL, "load with struct_size %zu left a model", load_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_model_params", "params->struct_size");
  }

  moevk_convert_params cp = moevk_convert_default_params();
  cp.hf_dir = hf_dir;
  cp.output_path = gguf;
  moevk_status st = moevk_convert(&cp);
  CHECK(st == MOEVK_OK, "convert: %s", moevk_last_error());
  if (st != MOEVK_OK) return 1;
  moevk_model_params mp = moevk_model_default_params();
  mp.validation = 1;
  moevk_model* model = NULL;
  st = moevk_model_load(gguf, &mp, &model);
  CHECK(st == MOEVK_OK, "load: %s", moevk_last_error());
  if (st != MOEVK_OK) return 1;

  /* moevk_chat_apply_template_with and _json: refused before rendering, nothing returned. */
  const size_t chat_sizes[2] = {0, FIRST_LAYOUT(moevk_chat_params, enable_thinking) - 1};
  const moevk_chat_message hello = {"user", "hello"};
  for (int i = 0; i < 2; ++i) {
    moevk_chat_params chp = moevk_chat_default_params();
    chp.template_name = "chatml";
    chp.struct_size = chat_sizes[i];
    char* prompt_text = NULL;
    CHECK(moevk_chat_apply_template_with(model, &hello, 1, &chp, &prompt_text) == MOEVK_ERROR_INVALID_ARGUMENT,
          "chat template with struct_size %zu", chat_sizes[i]);
    CHECK(prompt_text == NULL, "chat template with struct_size %zu returned a prompt", chat_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_chat_params", "params->struct_size");
    CHECK(moevk_chat_apply_template_json(model, "[{\"role\": \"user\", \"content\": \"hello\"}]", &chp,
                                         &prompt_text) == MOEVK_ERROR_INVALID_ARGUMENT,
          "chat template (JSON) with struct_size %zu", chat_sizes[i]);
    CHECK(prompt_text == NULL, "chat template (JSON) with struct_size %zu returned a prompt", chat_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_chat_apply_template_json", "params->struct_size");
  }
  {
    moevk_chat_params chp = moevk_chat_default_params();
    chp.template_name = "chatml";
    chp.enable_thinking = 0;
    char* prompt_text = NULL;
    CHECK(moevk_chat_apply_template_with(model, &hello, 1, &chp, &prompt_text) == MOEVK_OK, "chat template: %s",
          moevk_last_error());
    CHECK(prompt_text && strcmp(prompt_text,
                                "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n") == 0,
          "chat template with enable_thinking 0 gave '%s'", prompt_text ? prompt_text : "(null)");
    moevk_free_string(prompt_text);
  }

  /* moevk_context_create: 0 and one byte short of 0.1's {struct_size, n_ctx, n_batch, expert_stats}. */
  const size_t context_sizes[2] = {0, FIRST_LAYOUT(moevk_context_params, expert_stats) - 1};
  for (int i = 0; i < 2; ++i) {
    moevk_context_params xp = moevk_context_default_params();
    xp.struct_size = context_sizes[i];
    moevk_context* ctx = (moevk_context*)&xp;
    CHECK(moevk_context_create(model, &xp, &ctx) == MOEVK_ERROR_INVALID_ARGUMENT, "context with struct_size %zu",
          context_sizes[i]);
    CHECK(ctx == NULL, "context with struct_size %zu was created", context_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_context_params", "params->struct_size");
    CHECK_MESSAGE(moevk_model_last_error(model), "moevk_context_params", "params->struct_size");
  }
  moevk_context_params xp = moevk_context_default_params();
  xp.n_ctx = 32;
  moevk_context* ctx = NULL;
  CHECK(moevk_context_create(model, &xp, &ctx) == MOEVK_OK, "context: %s", moevk_last_error());
  if (!ctx) return 1;

  /* moevk_sample. */
  const int32_t prompt[3] = {5, 17, 42};
  CHECK(moevk_decode(ctx, prompt, 3, 0) == MOEVK_OK, "decode: %s", moevk_context_last_error(ctx));
  const size_t sampler_sizes[2] = {0, FIRST_LAYOUT(moevk_sampler_params, seed) - 1};
  for (int i = 0; i < 2; ++i) {
    moevk_sampler_params sp = moevk_sampler_default_params();
    sp.struct_size = sampler_sizes[i];
    int32_t token = -7;
    CHECK(moevk_sample(ctx, &sp, &token) == MOEVK_ERROR_INVALID_ARGUMENT, "sample with struct_size %zu",
          sampler_sizes[i]);
    CHECK(token == -7, "sample with struct_size %zu wrote a token", sampler_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_sampler_params", "params->struct_size");
  }
  CHECK(moevk_context_reset(ctx) == MOEVK_OK, "reset");

  /* moevk_generate: its params, their sampling and the result; nothing is decoded. */
  moevk_generate_params gp = moevk_generate_default_params();
  gp.prompt_tokens = prompt;
  gp.n_prompt_tokens = 3;
  gp.max_tokens = 2;
  moevk_generate_result res;
  const size_t generate_sizes[2] = {0, FIRST_LAYOUT(moevk_generate_params, user_data) - 1};
  for (int i = 0; i < 2; ++i) {
    moevk_generate_params bad = gp;
    bad.struct_size = generate_sizes[i];
    memset(&res, 0, sizeof res);
    res.struct_size = sizeof res;
    CHECK(moevk_generate(ctx, &bad, &res) == MOEVK_ERROR_INVALID_ARGUMENT, "generate with struct_size %zu",
          generate_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_generate_params", "params->struct_size");
    CHECK(moevk_context_n_past(ctx) == 0 && res.n_generated == 0, "generate with struct_size %zu ran",
          generate_sizes[i]);
    bad = gp;
    bad.sampling.struct_size = sampler_sizes[i];
    CHECK(moevk_generate(ctx, &bad, &res) == MOEVK_ERROR_INVALID_ARGUMENT, "generate with sampling.struct_size %zu",
          sampler_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_sampler_params", "params->sampling.struct_size");
    CHECK(moevk_context_n_past(ctx) == 0, "generate with sampling.struct_size %zu ran", sampler_sizes[i]);
  }
  /* A result without its size was once taken as full size; now it is refused, before any work. */
  const size_t result_sizes[3] = {0, sizeof(size_t), FIRST_LAYOUT(moevk_generate_result, stop_reason) - 1};
  for (int i = 0; i < 3; ++i) {
    memset(&res, 0, sizeof res);
    res.struct_size = result_sizes[i];
    CHECK(moevk_generate(ctx, &gp, &res) == MOEVK_ERROR_INVALID_ARGUMENT, "generate with result->struct_size %zu",
          result_sizes[i]);
    CHECK_MESSAGE(moevk_last_error(), "moevk_generate_result", "result->struct_size");
    CHECK(moevk_context_n_past(ctx) == 0 && moevk_context_pending_token(ctx) == -1 && res.n_generated == 0 &&
              res.struct_size == result_sizes[i],
          "generate with result->struct_size %zu ran or wrote the result", result_sizes[i]);
  }
  /* The sizes the header gives work, and the result says how much of it was written. */
  memset(&res, 0, sizeof res);
  res.struct_size = sizeof res;
  CHECK(moevk_generate(ctx, &gp, &res) == MOEVK_OK, "generate: %s", moevk_context_last_error(ctx));
  CHECK(res.struct_size == sizeof res && res.n_prompt_tokens == 3 && res.n_generated >= 1,
        "result: size %zu, %d prompt tokens, %d generated", res.struct_size, res.n_prompt_tokens, res.n_generated);
  CHECK(moevk_generate(ctx, &gp, NULL) == MOEVK_OK, "generate without a result: %s", moevk_context_last_error(ctx));

  moevk_context_free(ctx);
  moevk_model_free(model);
  remove(gguf);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("struct size test passed\n");
  return failures ? 1 : 0;
}
