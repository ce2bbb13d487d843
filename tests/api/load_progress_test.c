/* Plain C: the load progress callback reports the stages moevk.h documents, and returning
 * nonzero from it cancels the load cleanly (status, message, no model). argv[1] is tests/data. */
#include <moevk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_check.h"

typedef struct {
  int calls;
  int cancel_at;  /* the call (1-based) that asks to cancel; 0: never */
  float last_fraction;
  int fraction_went_back;
  char first_stage[64], second_stage[64], third_stage[64], last_stage[64];
} progress_log;

static int record(float fraction, const char* stage, void* user) {
  progress_log* log = (progress_log*)user;
  ++log->calls;
  if (fraction < log->last_fraction) log->fraction_went_back = 1;
  log->last_fraction = fraction;
  char* slot = log->calls == 1 ? log->first_stage : log->calls == 2 ? log->second_stage
               : log->calls == 3 ? log->third_stage : NULL;
  if (slot) snprintf(slot, 64, "%s", stage ? stage : "(null)");
  snprintf(log->last_stage, sizeof log->last_stage, "%s", stage ? stage : "(null)");
  return log->cancel_at && log->calls >= log->cancel_at;
}

static moevk_status load(const char* path, progress_log* log, moevk_model** model) {
  moevk_model_params mp = moevk_model_default_params();
  mp.progress = record;
  mp.progress_user_data = log;
  return moevk_model_load(path, &mp, model);
}

int main(int argc, char** argv) {
  char hf_dir[1024], gguf[1024];
  const char* data = argc > 1 ? argv[1] : "tests/data";
  snprintf(hf_dir, sizeof hf_dir, "%s/hf/qwen2moe-tiny", data);
  snprintf(gguf, sizeof gguf, "%s/moevk-load-progress-%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid());
  moevk_convert_params cp = moevk_convert_default_params();
  cp.hf_dir = hf_dir;
  cp.output_path = gguf;
  if (moevk_convert(&cp) != MOEVK_OK) {
    fprintf(stderr, "convert: %s\n", moevk_last_error());
    return 1;
  }

  /* A full load: the documented stages in order, fractions never going back, 1 at the end. */
  progress_log full;
  memset(&full, 0, sizeof full);
  moevk_model* model = NULL;
  moevk_status st = load(gguf, &full, &model);
  CHECK(st == MOEVK_OK && model, "load: %s", moevk_last_error());
  CHECK(!strcmp(full.first_stage, "reading file"), "first stage '%s'", full.first_stage);
  CHECK(!strcmp(full.second_stage, "opening device"), "second stage '%s'", full.second_stage);
  CHECK(strstr(full.third_stage, ".weight") != NULL, "third stage '%s' is not a tensor name", full.third_stage);
  CHECK(!strcmp(full.last_stage, "weights uploaded") && full.last_fraction == 1.0f, "last stage '%s' at %g",
        full.last_stage, full.last_fraction);
  CHECK(!full.fraction_went_back, "the fraction went back");
  CHECK(full.calls > 4, "only %d progress calls", full.calls);
  moevk_model_free(model);

  /* Cancelling at any point (before reading, before the device, during the upload, at the very
   * end) fails the load with MOEVK_ERROR_CANCELLED and no model. */
  const int cancel_points[4] = {1, 2, 3, full.calls};
  for (int i = 0; i < 4; ++i) {
    progress_log log;
    memset(&log, 0, sizeof log);
    log.cancel_at = cancel_points[i];
    model = (moevk_model*)&log; /* must be reset to NULL on failure */
    st = load(gguf, &log, &model);
    CHECK(st == MOEVK_ERROR_CANCELLED, "cancel at call %d gave %s", cancel_points[i], moevk_status_name(st));
    CHECK(model == NULL, "cancel at call %d left a model", cancel_points[i]);
    CHECK(log.calls == cancel_points[i], "cancel at call %d: %d calls (no call after cancelling)", cancel_points[i],
          log.calls);
    CHECK(strstr(moevk_last_error(), "cancel") != NULL, "message: %s", moevk_last_error());
  }

  /* The model still loads after cancelled attempts. */
  st = moevk_model_load(gguf, NULL, &model);
  CHECK(st == MOEVK_OK, "load after cancelling: %s", moevk_last_error());
  moevk_model_free(model);

  remove(gguf);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("load progress test passed\n");
  return failures ? 1 : 0;
}
