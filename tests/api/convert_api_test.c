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

  /* moevk_split: a make-model file into a set of three (10 tensors per file, as in
   * tests/tools/cli_test.sh), progress monotonic, the paths listed; the set inspects with its
   * files; merged back it is the same file byte for byte; cancelled, nothing is left. */
  {
    char prefix[256], first[300], merged[300], cmd[8800];
    snprintf(prefix, sizeof prefix, "/tmp/moevk_split_api_%d", (int)getpid());
    snprintf(first, sizeof first, "%s-00001-of-00003.gguf", prefix);
    snprintf(merged, sizeof merged, "%s-merged.gguf", prefix);
    mp = moevk_make_model_default_params();
    mp.preset = "tiny";
    mp.type = "q8_0";
    mp.output_path = out;
    CHECK(moevk_make_model(&mp, NULL) == MOEVK_OK, "make_model: %s", moevk_last_error());
    moevk_split_params sp = moevk_split_default_params();
    CHECK(sp.max_tensors == 128 && sp.max_file_bytes == 0 && !sp.merge, "split defaults");
    progress_seen seen = {0, 0.0f, 1};
    char* paths = NULL;
    sp.input_path = out;
    sp.output_path = prefix;
    sp.max_tensors = 10;
    sp.progress = record_progress;
    sp.progress_user_data = &seen;
    sp.paths_json_out = &paths;
    st = moevk_split(&sp);
    CHECK(st == MOEVK_OK, "split: %s", moevk_last_error());
    CHECK(seen.calls > 3 && seen.monotonic && seen.last == 1.0f, "split progress: %d calls, last %g", seen.calls,
          seen.last);
    CHECK(paths && strstr(paths, first) && strstr(paths, "-00003-of-00003.gguf"), "paths: %s", paths ? paths : "NULL");
    moevk_free_string(paths);
    char* json = NULL;
    CHECK(moevk_inspect_json(first, &json) == MOEVK_OK, "inspect the set: %s", moevk_last_error());
    CHECK(json && strstr(json, "-00002-of-00003.gguf"), "the set's JSON names its files");
    moevk_free_string(json);
    sp = moevk_split_default_params();
    sp.input_path = first;
    sp.output_path = merged;
    sp.merge = 1;
    CHECK(moevk_split(&sp) == MOEVK_OK, "merge: %s", moevk_last_error());
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, merged);
    CHECK(system(cmd) == 0, "merged file differs from %s", out);
    remove(merged);
    for (int i = 1; i <= 3; ++i) {
      snprintf(cmd, sizeof cmd, "%s-%05d-of-00003.gguf", prefix, i);
      remove(cmd);
    }
    sp = moevk_split_default_params();
    sp.input_path = out;
    sp.output_path = prefix;
    sp.max_tensors = 10;
    sp.progress = cancel_at_once;
    st = moevk_split(&sp);
    CHECK(st == MOEVK_ERROR_CANCELLED, "cancelled split gave %s", moevk_status_name(st));
    CHECK(access(first, F_OK) != 0, "cancelled split left %s", first);
    sp.progress = NULL;
    sp.input_path = "/nonexistent/model.gguf";
    CHECK(moevk_split(&sp) == MOEVK_ERROR_IO, "missing input accepted");
    CHECK(strstr(moevk_last_error(), "/nonexistent/model.gguf") != NULL, "message: %s", moevk_last_error());
    sp.input_path = NULL;
    CHECK(moevk_split(&sp) == MOEVK_ERROR_INVALID_ARGUMENT, "NULL input accepted");
    CHECK(moevk_split(NULL) == MOEVK_ERROR_INVALID_ARGUMENT, "NULL params accepted");
    remove(out);
  }

  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("PASS\n");
  return failures ? 1 : 0;
}
