// File: opening (mmap) or wrapping memory, and the lookups over the parsed header.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "gguf/file_impl.hpp"

namespace moevk::gguf {

struct File::Impl : FileData {
  void* mapping = nullptr;  // owned read-only mapping when opened from a path
  size_t mapping_size = 0;
  ~Impl() {
    if (mapping) munmap(mapping, mapping_size);
  }
};

File::File() : impl_(std::make_unique<Impl>()) {}
File::~File() = default;

std::unique_ptr<File> File::open(const std::string& path, const ReadLimits& limits) {
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
  return file;
}

const std::string& File::path() const { return impl_->path; }
uint32_t File::version() const { return impl_->version; }
uint64_t File::alignment() const { return impl_->alignment; }
uint64_t File::file_size() const { return impl_->size; }
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
  require(t.offset <= impl_->size && t.size <= impl_->size - t.offset, MOEVK_ERROR_INVALID_ARGUMENT,
          impl_->path + ": tensor '" + t.name + "' is not inside this file");
  return {impl_->bytes + t.offset, size_t(t.size)};
}

}  // namespace moevk::gguf
