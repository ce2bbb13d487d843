// Writing split sets (gguf-split's layout) and merging them; reading them is File::open's
// (file.cpp).
#include <cstdio>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::gguf {

namespace {

Value scalar_u16(uint64_t v) {
  Value value;
  value.type = ValueType::UINT16;
  value.u = v;
  return value;
}

bool is_split_key(const std::string& key) { return key.rfind("split.", 0) == 0; }

// Writes tensors [begin, end) of `in` to `w`: in's metadata (less the split keys) when `metadata`,
// then what `extra_keys` sets; reports progress over all of in's tensor bytes.
class Copier {
 public:
  Copier(const File& in, const WriteProgress& progress) : in_(in), progress_(progress) {
    for (const TensorInfo& t : in.tensors()) total_ += t.size;
  }

  void copy(Writer& w, const std::string& path, bool metadata, size_t begin, size_t end,
            const std::function<void(Writer&)>& extra_keys) {
    const std::vector<TensorInfo>& tensors = in_.tensors();
    if (metadata)
      for (const KeyValue& kv : in_.metadata())
        if (!is_split_key(kv.key) && kv.key != "general.alignment") w.set_value(kv.key, kv.value);
    extra_keys(w);
    for (size_t k = begin; k < end; ++k) w.add_tensor(tensors[k].name, tensors[k].dims, tensors[k].type);
    w.begin_data();
    for (size_t k = begin; k < end; ++k) {
      if (progress_ && !progress_(total_ ? float(double(done_) / double(total_)) : 0.0f, path))
        fail(MOEVK_ERROR_CANCELLED, path + ": writing cancelled");
      const std::span<const uint8_t> data = in_.tensor_data(tensors[k]);
      w.write_data(data.data(), data.size());
      done_ += data.size();
    }
    w.finish();
  }

  // Everything is written: too late to cancel.
  void finished() {
    if (progress_) (void)progress_(1.0f, "done");
  }

 private:
  const File& in_;
  const WriteProgress& progress_;
  uint64_t total_ = 0, done_ = 0;
};

}  // namespace

std::vector<std::string> write_split(const File& in, const std::string& prefix, const SplitOptions& options) {
  const std::vector<TensorInfo>& tensors = in.tensors();
  require(!tensors.empty(), MOEVK_ERROR_INVALID_ARGUMENT, in.path() + ": no tensors to split");
  require(tensors.size() <= uint64_t(INT32_MAX), MOEVK_ERROR_INVALID_ARGUMENT,
          in.path() + ": too many tensors for split.tensors.count (int32)");
  const uint64_t a = in.alignment();
  // The limit counts tensor data with its padding, not the headers (as gguf-split's does).
  std::vector<size_t> first_of;  // index of each file's first tensor
  uint64_t bytes = 0, count = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const uint64_t padded = (tensors[k].size + a - 1) / a * a;
    const bool full = (options.max_file_bytes && bytes + padded > options.max_file_bytes) ||
                      (options.max_tensors && count == options.max_tensors);
    if (first_of.empty() || (count > 0 && full)) {
      first_of.push_back(k);
      bytes = count = 0;
    }
    bytes += padded;
    ++count;
  }
  const size_t n_files = first_of.size();
  require(n_files <= 99999, MOEVK_ERROR_INVALID_ARGUMENT,
          in.path() + ": " + std::to_string(n_files) + " files; gguf-split names at most 99999");
  first_of.push_back(tensors.size());

  std::vector<std::string> paths;
  Copier copier(in, options.progress);
  try {
    for (size_t f = 0; f < n_files; ++f) {
      const std::string path = split_path(prefix, uint32_t(f), uint32_t(n_files));
      Writer w(path, a);
      copier.copy(w, path, f == 0, first_of[f], first_of[f + 1], [&](Writer& out) {
        out.set_value(kSplitNo, scalar_u16(f));
        out.set_value(kSplitCount, scalar_u16(n_files));
        out.set_int32(kSplitTensorsCount, int32_t(tensors.size()));
      });
      paths.push_back(path);
    }
    copier.finished();
  } catch (...) {
    for (const std::string& path : paths) std::remove(path.c_str());
    throw;
  }
  return paths;
}

void write_merged(const File& in, const std::string& path, const WriteProgress& progress) {
  Copier copier(in, progress);
  Writer w(path, in.alignment());  // removes its temporary if anything fails
  copier.copy(w, path, true, 0, in.tensors().size(), [](Writer&) {});
  copier.finished();
}

}  // namespace moevk::gguf
