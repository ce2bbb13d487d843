// Shared by `moevk info`, `moevk convert` and `moevk make-model`: the human-readable summary of
// a model (from moevk_inspect_json's JSON), and the progress bar / log lines of file writing.
#pragma once
#include <string>

namespace moevk_cli {

// Prints the summary table of a model to stdout. Returns false when the JSON is malformed.
bool print_model_summary(const std::string& info_json, const std::string& title);

// moevk_progress_fn: a one-line bar on stderr (user_data unused). Never cancels.
int file_progress_bar(float fraction, const char* stage, void* user_data);
// moevk_log_fn: prints "note: <line>" on stderr (after ending a progress line in flight).
void file_log_line(const char* line, void* user_data);
// Ends the progress line, if one is showing.
void file_progress_done();

}  // namespace moevk_cli
