// File: opening (mmap) or wrapping memory, split sets, and the lookups over the parsed header.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.hpp"
#include "gguf/file_impl.hpp"

namespace moevk::gguf {

struct File::Impl : FileData {
  void* mapping = nullptr;  // owned read-only mapping when opened from a path
  size_t mapping_size = 0;
  std::vector<Shard> shards;                 // this file first
  std::vector<std::unique_ptr<File>> others;  // the other files of a split set, shards[1...]
  uint64_t total_size = 0;
  ~Impl() {
    if (mapping) munmap(mapping, mapping_size);
  }
  void describe_self() {
    shards = {Shard{path, version, alignment, size, data_offset, tensors.size()}};
    total_size = size;
  }
};

File::File() : impl_(std::make_unique<Impl>()) {}
File::~File() = default;

std::string split_path(const std::string& prefix, uint32_t index, uint32_t count) {
  char tail[48];
  std::snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", index + 1, count);
  return prefix + tail;
}

namespace {

// The prefix of `path` when it ends in the gguf-split name of shard `index` of `count`.
std::optional<std::string> split_prefix(const std::string& path, uint32_t index, uint32_t count) {
  const std::string tail = split_path("", index, count);
  if (path.size() <= tail.size() || path.compare(path.size() - tail.size(), tail.size(), tail) != 0)
    return std::nullopt;
  return path.substr(0, path.size() - tail.size());
}

struct SplitKeys {
  uint32_t no = 0, count = 1;
};

// A file's split.no and split.count, checked against each other (a plain file has neither).
SplitKeys split_keys(const File& f) {
  const std::optional<uint64_t> count = f.get_uint(kSplitCount);
  const std::optional<uint64_t> no = f.get_uint(kSplitNo);
  if (!count && !no) return {};
  if (!count) fail(MOEVK_ERROR_INVALID_FILE, f.path() + ": has split.no but no split.count");
  // gguf-split numbers files with five digits.
  if (*count == 0 || *count > 99999)
    fail(MOEVK_ERROR_INVALID_FILE, f.path() + ": split.count " + std::to_string(*count) + " is not in 1..99999");
  if (!no && *count > 1)
    fail(MOEVK_ERROR_INVALID_FILE,
         f.path() + ": split.count is " + std::to_string(*count) + " but split.no is missing");
  if (no && *no >= *count)
    fail(MOEVK_ERROR_INVALID_FILE, f.path() + ": split.no " + std::to_string(*no) + " is not below split.count " +
                                       std::to_string(*count));
  return {uint32_t(no.value_or(0)), uint32_t(*count)};
}

std::string shard_name(uint32_t index, uint32_t count) {
  return "file " + std::to_string(index + 1) + " of " + std::to_string(count);
}

}  // namespace

std::unique_ptr<File> File::open(const std::string& path, const ReadLimits& limits) {
  std::unique_ptr<File> file = open_one(path, limits);
  const SplitKeys keys = split_keys(*file);
  if (keys.count == 1) return file;
  Impl& d = *file->impl_;
  const std::string set = "a split GGUF set of " + std::to_string(keys.count) + " files";
  if (keys.no != 0) {
    std::string message = path + ": this is " + shard_name(keys.no, keys.count) + " of a split GGUF set (split.no = " +
                          std::to_string(keys.no) + "); open the first file";
    if (std::optional<std::string> prefix = split_prefix(path, keys.no, keys.count))
      message += ", " + split_path(*prefix, 0, keys.count);
    fail(MOEVK_ERROR_INVALID_ARGUMENT, message);
  }
  const std::optional<std::string> prefix = split_prefix(path, 0, keys.count);
  if (!prefix)
    fail(MOEVK_ERROR_IO, path + ": this is the first file of " + set + ", but its name does not end in " +
                             split_path("", 0, keys.count) +
                             ", so the other files cannot be found; keep the names gguf-split gave them");

  // Which file each tensor name came from, for duplicates across files.
  std::unordered_map<std::string, uint32_t> owner;
  for (const TensorInfo& t : d.tensors) owner.emplace(t.name, 0);
  for (uint32_t i = 1; i < keys.count; ++i) {
    const std::string other_path = split_path(*prefix, i, keys.count);
    std::unique_ptr<File> other;
    try {
      other = open_one(other_path, limits);
    } catch (const Error& e) {
      fail(e.status(), path + ": split GGUF set, " + shard_name(i, keys.count) + ": " + e.what());
    }
    const SplitKeys other_keys = split_keys(*other);
    if (other_keys.count != keys.count || other_keys.no != i)
      fail(MOEVK_ERROR_INVALID_FILE,
           other_path + ": has split.no " + std::to_string(other_keys.no) + " and split.count " +
               std::to_string(other_keys.count) + ", but its name makes it split.no " + std::to_string(i) +
               " of the " + std::to_string(keys.count) + " files " + path + " begins");
    Impl& o = *other->impl_;
    d.header_bytes += o.header_bytes;
    d.shards.push_back(o.shards[0]);
    d.total_size += o.size;
    for (TensorInfo& t : o.tensors) {
      auto [it, fresh] = owner.emplace(t.name, i);
      if (!fresh)
        fail(MOEVK_ERROR_INVALID_FILE, other_path + ": tensor '" + t.name + "' is also in " +
                                           d.shards[it->second].path);
      t.shard = i;
      d.tensors.push_back(t);
    }
    d.others.push_back(std::move(other));
  }
  if (const std::optional<uint64_t> expected = file->get_uint(kSplitTensorsCount); expected && *expected != d.tensors.size())
    fail(MOEVK_ERROR_INVALID_FILE, path + ": split.tensors.count is " + std::to_string(*expected) + " but the " +
                                       std::to_string(keys.count) + " files hold " + std::to_string(d.tensors.size()) +
                                       " tensors");
  // The index holds views of the names: rebuilt now that the vector has grown.
  d.tensor_index.clear();
  for (size_t k = 0; k < d.tensors.size(); ++k) d.tensor_index.emplace(d.tensors[k].name, k);
  return file;
}

std::unique_ptr<File> File::open_one(const std::string& path, const ReadLimits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(MOEVK_ERROR_IO, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(MOEVK_ERROR_IO, path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(MOEVK_ERROR_IO, path + ": not a regular file");
  }
  std::unique_ptr<File> file(new File());
  file->impl_->path = path;
  file->impl_->limits = limits;
  file->impl_->size = uint64_t(st.st_size);
  if (st.st_size > 0) {
    void* mapping = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(MOEVK_ERROR_IO, path + ": cannot mmap " + std::to_string(st.st_size) +
                               " bytes: " + std::strerror(err));
    }
    file->impl_->mapping = mapping;
    file->impl_->mapping_size = size_t(st.st_size);
    file->impl_->bytes = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  file->impl_->parse();
  file->impl_->describe_self();
  return file;
}

std::unique_ptr<File> File::from_memory(std::span<const uint8_t> bytes, std::string name,
                                        const ReadLimits& limits) {
  std::unique_ptr<File> file(new File());
  file->impl_->path = std::move(name);
  file->impl_->limits = limits;
  file->impl_->bytes = bytes.data();
  file->impl_->size = bytes.size();
  file->impl_->parse();
  file->impl_->describe_self();
  const SplitKeys keys = split_keys(*file);
  if (keys.count > 1)
    fail(MOEVK_ERROR_UNSUPPORTED, file->impl_->path + ": " + shard_name(keys.no, keys.count) +
                                      " of a split GGUF set; a split set opens from the path of its first file");
  return file;
}

const std::string& File::path() const { return impl_->path; }
uint32_t File::version() const { return impl_->version; }
uint64_t File::alignment() const { return impl_->alignment; }
uint64_t File::file_size() const { return impl_->total_size; }
const std::vector<Shard>& File::shards() const { return impl_->shards; }
uint64_t File::data_offset() const { return impl_->data_offset; }
uint64_t File::header_bytes() const { return impl_->header_bytes; }
const std::vector<KeyValue>& File::metadata() const { return impl_->metadata; }
const std::vector<TensorInfo>& File::tensors() const { return impl_->tensors; }

const Value* File::find(std::string_view key) const {
  auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

namespace {
[[noreturn]] void wrong_type(const FileData& file, std::string_view key, const Value& v,
                             const char* expected) {
  const size_t index = file.key_index.at(key);
  fail(MOEVK_ERROR_INVALID_FILE, file.path + ": metadata key '" + std::string(key) + "' at byte " +
                                     std::to_string(file.metadata_offsets[index]) + ": has type " +
                                     value_type_name(v.type) + ", expected " + expected);
}
}  // namespace

std::optional<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto u = v->as_uint()) return u;
  wrong_type(*impl_, key, *v, "a non-negative integer");
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto f = v->as_float()) return f;
  wrong_type(*impl_, key, *v, "a number");
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::STRING) return v->s;
  wrong_type(*impl_, key, *v, "a string");
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::BOOL) return v->u != 0;
  wrong_type(*impl_, key, *v, "a bool");
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& t) const {
  // Only infos of this file are valid here; re-check so a stray TensorInfo cannot read outside.
  require(t.shard < impl_->shards.size(), MOEVK_ERROR_INVALID_ARGUMENT,
          impl_->path + ": tensor '" + t.name + "' names file " + std::to_string(t.shard) + " of a set of " +
              std::to_string(impl_->shards.size()));
  const FileData& f = t.shard == 0 ? *impl_ : *impl_->others[t.shard - 1]->impl_;
  require(t.offset <= f.size && t.size <= f.size - t.offset, MOEVK_ERROR_INVALID_ARGUMENT,
          f.path + ": tensor '" + t.name + "' is not inside this file");
  return {f.bytes + t.offset, size_t(t.size)};
}

}  // namespace moevk::gguf
