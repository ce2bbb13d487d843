/* Plain C against the public header: the file calls (convert, make-model, inspect), their
 * progress/log callbacks, cancellation and error statuses. argv[1] is tests/data. */
#include <moevk.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_check.h"

typedef struct {
  int calls;
  float last;
  int monotonic;
} progress_seen;

static int record_progress(float fraction, const char* stage, void* user) {
  progress_seen* p = (progress_seen*)user;
  if (fraction < p->last || !stage) p->monotonic = 0;
  p->last = fraction;
  p->calls++;
  return 0;
}

static int cancel_at_once(float fraction, const char* stage, void* user) {
  (void)fraction; (void)stage; (void)user;
  return 1;
}

static void count_lines(const char* line, void* user) {
  if (line && *line) ++*(int*)user;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TESTS_DATA_DIR\n", argv[0]);
    return 2;
  }
  char hf_dir[4096], out[4096];
  snprintf(hf_dir, sizeof hf_dir, "%s/hf/qwen3moe-tiny", argv[1]);
  snprintf(out, sizeof out, "/tmp/moevk_convert_api_%d.gguf", (int)getpid());

  /* convert with progress and log */
  moevk_convert_params cp = moevk_convert_default_params();
  progress_seen seen = {0, -1.0f, 1};
  int log_lines = 0;
  cp.hf_dir = hf_dir;
  cp.output_path = out;
  cp.type = "q8_0";
  cp.progress = record_progress;
  cp.progress_user_data = &seen;
  cp.log = count_lines;
  cp.log_user_data = &log_lines;
  moevk_status st = moevk_convert(&cp);
  CHECK(st == MOEVK_OK, "convert: %s", moevk_last_error());
  CHECK(seen.calls > 0 && seen.monotonic && seen.last == 1.0f, "progress calls %d last %f", seen.calls, seen.last);
  CHECK(log_lines == 1, "expected the placeholder-vocabulary note, got %d lines", log_lines);

  char* json = NULL;
  st = moevk_inspect_json(out, &json);
  CHECK(st == MOEVK_OK && json, "inspect: %s", moevk_last_error());
  if (json) {
    CHECK(strstr(json, "\"architecture\": \"qwen3moe\"") != NULL, "%s", json);
    CHECK(strstr(json, "\"head_dim\": 32") != NULL, "%s", json);
    moevk_free_string(json);
  }
  remove(out);

  /* cancelled conversion: status CANCELLED, no file */
  cp.progress = cancel_at_once;
  st = moevk_convert(&cp);
  CHECK(st == MOEVK_ERROR_CANCELLED, "cancel gave %s", moevk_status_name(st));
  CHECK(access(out, F_OK) != 0, "cancelled convert left %s", out);

  /* errors: NULL params, unset struct_size, bad type, missing folder */
  CHECK(moevk_convert(NULL) == MOEVK_ERROR_INVALID_ARGUMENT, "NULL params");
  CHECK(strlen(moevk_last_error()) > 0, "no message for NULL params");
  moevk_convert_params zero;
  memset(&zero, 0, sizeof zero);
  CHECK(moevk_convert(&zero) == MOEVK_ERROR_INVALID_ARGUMENT, "struct_size 0");
  cp = moevk_convert_default_params();
  cp.hf_dir = hf_dir;
  cp.output_path = out;
  cp.type = "q3_x";
  CHECK(moevk_convert(&cp) == MOEVK_ERROR_INVALID_ARGUMENT, "bad type");
  CHECK(strstr(moevk_last_error(), "q3_x") != NULL, "message names the type: %s", moevk_last_error());
  cp.type = "f16";
  cp.hf_dir = "/nonexistent/moevk";
  CHECK(moevk_convert(&cp) == MOEVK_ERROR_IO, "missing folder: %s", moevk_last_error());
  CHECK(moevk_inspect_json("/nonexistent/x.gguf", &json) == MOEVK_ERROR_IO && json == NULL, "inspect missing file");

  /* make-model: dry run returns the summary and writes nothing */
  moevk_make_model_params mp = moevk_make_model_default_params();
  mp.preset = "mixtral-8x7b";
  mp.dry_run = 1;
  json = NULL;
  st = moevk_make_model(&mp, &json);
  CHECK(st == MOEVK_OK && json, "dry run: %s", moevk_last_error());
  if (json) {
    CHECK(strstr(json, "\"total_params\": 46702792704") != NULL, "%s", json);
    moevk_free_string(json);
  }
  /* per-tensor type rules: the dry run's summary counts the rule's type; a NULL list with a
   * count, or a rule naming no tensor, fails with a message */
  {
    const char* rules[] = {"ffn_down_exps=q8_0"};
    mp = moevk_make_model_default_params();
    mp.preset = "tiny";
    mp.type = "q4_0";
    mp.dry_run = 1;
    mp.tensor_types = rules;
    mp.n_tensor_types = 1;
    json = NULL;
    st = moevk_make_model(&mp, &json);
    CHECK(st == MOEVK_OK && json, "dry run with a rule: %s", moevk_last_error());
    if (json) {
      CHECK(strstr(json, "\"type\": \"q8_0\"") != NULL, "no q8_0 tensors: %s", json);
      moevk_free_string(json);
    }
    mp.tensor_types = NULL;
    CHECK(moevk_make_model(&mp, NULL) == MOEVK_ERROR_INVALID_ARGUMENT, "NULL tensor_types with a count");
    CHECK(strstr(moevk_last_error(), "tensor_types") != NULL, "message: %s", moevk_last_error());
    rules[0] = "ffn_dwn=q8_0";
    mp.tensor_types = rules;
    CHECK(moevk_make_model(&mp, NULL) == MOEVK_ERROR_INVALID_ARGUMENT, "a rule matching nothing");
    CHECK(strstr(moevk_last_error(), "ffn_dwn=q8_0") != NULL, "message: %s", moevk_last_error());
  }
  /* a struct shorter than moevk 0.1's (which had the overrides already) comes from no header:
   * refused, not read in part (tests/api/struct_size_test.c covers every call) */
  mp = moevk_make_model_default_params();
  mp.struct_size = offsetof(moevk_make_model_params, arch);
  mp.output_path = out;
  st = moevk_make_model(&mp, NULL);
  CHECK(st == MOEVK_ERROR_INVALID_ARGUMENT, "short struct gave %s", moevk_status_name(st));
  CHECK(strstr(moevk_last_error(), "moevk_make_model_params") != NULL, "message: %s", moevk_last_error());
  CHECK(access(out, F_OK) != 0, "short struct wrote %s", out);
  mp = moevk_make_model_default_params();
  mp.preset = "tiny";
  mp.output_path = out;
  mp.n_head = 3; /* does not divide the kv heads */
  CHECK(moevk_make_model(&mp, NULL) == MOEVK_ERROR_INVALID_ARGUMENT, "bad shape accepted");
  CHECK(access(out, F_OK) != 0, "bad shape left a file");

  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("PASS\n");
  return failures ? 1 : 0;
}
