// Streamed GGUF v3 writer. The header is written once all metadata and tensor infos are known
// (begin_data); tensor data then streams through a buffered FILE in declaration order, so
// memory use does not depend on the model size. A regular output file is written under a
// temporary name beside it and renamed over the target only by finish(): an existing file at the
// path stays intact until the new one is complete, and a failed write leaves nothing behind.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::gguf {

struct Writer::Impl {
  std::string path;          // the target, as the caller named it (used in messages)
  std::string written_path;  // where the bytes go: a temporary beside the target, or the target
  std::string final_path;    // what finish() renames the temporary to (a symlink's target)
  bool rename_on_finish = false;  // written_path is our temporary (never a device node or FIFO)
  uint64_t alignment = 32;
  std::FILE* out = nullptr;
  bool data_started = false;
  bool finished = false;
  std::vector<KeyValue> metadata;
  std::vector<TensorInfo> tensors;  // offsets relative to the data section
  uint64_t data_bytes = 0;          // size of the data section, padding included
  size_t current = 0;               // tensor being filled
  uint64_t current_written = 0;
  uint64_t position = 0;            // bytes written to the file

  [[noreturn]] void io_failure(const std::string& what) {
    fail(MOEVK_ERROR_IO, path + ": " + what + ": " + std::strerror(errno));
  }

  void write(const void* bytes, uint64_t size) {
    if (size == 0) return;
    if (std::fwrite(bytes, 1, size_t(size), out) != size) io_failure("write failed");
    position += size;
  }
  template <typename T>
  void write_scalar(T v) { write(&v, sizeof v); }
  void write_string(const std::string& s) {
    write_scalar<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void pad_to_alignment() {
    static const uint8_t zeros[256] = {};
    uint64_t padding = (alignment - position % alignment) % alignment;
    while (padding > 0) {
      const uint64_t chunk = padding < sizeof zeros ? padding : sizeof zeros;
      write(zeros, chunk);
      padding -= chunk;
    }
  }

  void write_value(const Value& v) {
    switch (v.type) {
      case ValueType::UINT8: write_scalar<uint8_t>(uint8_t(v.u)); break;
      case ValueType::INT8: write_scalar<int8_t>(int8_t(v.i)); break;
      case ValueType::UINT16: write_scalar<uint16_t>(uint16_t(v.u)); break;
      case ValueType::INT16: write_scalar<int16_t>(int16_t(v.i)); break;
      case ValueType::UINT32: write_scalar<uint32_t>(uint32_t(v.u)); break;
      case ValueType::INT32: write_scalar<int32_t>(int32_t(v.i)); break;
      case ValueType::UINT64: write_scalar<uint64_t>(v.u); break;
      case ValueType::INT64: write_scalar<int64_t>(v.i); break;
      case ValueType::FLOAT32: write_scalar<float>(float(v.f)); break;
      case ValueType::FLOAT64: write_scalar<double>(v.f); break;
      case ValueType::BOOL: write_scalar<uint8_t>(v.u != 0 ? 1 : 0); break;
      case ValueType::STRING: write_string(v.s); break;
      case ValueType::ARRAY:
        write_scalar<uint32_t>(uint32_t(v.element_type));
        write_scalar<uint64_t>(v.array_size());
        if (v.element_type == ValueType::STRING) {
          for (const std::string& element : v.strings) write_string(element);
        } else if (v.element_type == ValueType::ARRAY) {
          for (const Value& element : v.arrays) write_value(element);
        } else {
          write(v.packed.data(), v.packed.size());  // already in the file's encoding
        }
        break;
    }
  }

  void require_declaring(const char* call) {
    require(!data_started, MOEVK_ERROR_INVALID_ARGUMENT,
            path + ": " + call + " after begin_data()");
  }

  void set(const std::string& key, Value v) {
    require_declaring("setting metadata");
    for (KeyValue& kv : metadata) {
      if (kv.key == key) {  // like llama.cpp's gguf_set_*: a second set replaces the value
        kv.value = std::move(v);
        return;
      }
    }
    metadata.push_back({key, std::move(v)});
  }
};

namespace {
// An array must keep its elements in the storage its element type implies (gguf.hpp), so that
// what is written is what array_size() and element() describe.
void check_array(const std::string& key, const Value& v, uint32_t depth) {
  const std::string where = "gguf writer: key '" + key + "': ";
  require(depth <= kMaxArrayDepth, MOEVK_ERROR_INVALID_ARGUMENT, where + "arrays nested too deep");
  require(uint32_t(v.element_type) <= uint32_t(ValueType::FLOAT64), MOEVK_ERROR_INVALID_ARGUMENT,
          where + "unknown array element type " + std::to_string(uint32_t(v.element_type)));
  const char* element = value_type_name(v.element_type);
  if (v.element_type == ValueType::STRING) {
    require(v.packed.empty() && v.arrays.empty(), MOEVK_ERROR_INVALID_ARGUMENT,
            where + "an array of string holds elements outside Value::strings");
  } else if (v.element_type == ValueType::ARRAY) {
    require(v.packed.empty() && v.strings.empty(), MOEVK_ERROR_INVALID_ARGUMENT,
            where + "an array of array holds elements outside Value::arrays");
    for (const Value& nested : v.arrays) {
      require(nested.type == ValueType::ARRAY, MOEVK_ERROR_INVALID_ARGUMENT,
              where + "array element of type " + value_type_name(nested.type) + " in an array of array");
      check_array(key, nested, depth + 1);
    }
  } else {
    require(v.strings.empty() && v.arrays.empty(), MOEVK_ERROR_INVALID_ARGUMENT,
            where + "an array of " + element + " holds elements outside Value::packed");
    require(v.packed.size() % value_type_size(v.element_type) == 0, MOEVK_ERROR_INVALID_ARGUMENT,
            where + std::to_string(v.packed.size()) + " packed bytes are not whole " + element + " elements");
  }
}
}  // namespace

namespace {
// A name of our own in the target's folder (rename() does not cross file systems), hidden, and
// unique per process and writer so concurrent writers of one target do not collide.
std::string temporary_beside(const std::filesystem::path& target) {
  static std::atomic<uint64_t> serial{0};
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "." + std::string here.
  std::string name(".");
  name += target.filename().string();
  name += ".tmp-";
  name += std::to_string(::getpid());
  name += '-';
  name += std::to_string(serial++);
  std::filesystem::path tmp = target;
  tmp.replace_filename(name);
  return tmp.string();
}
}  // namespace

Writer::Writer(const std::string& path, uint64_t alignment) : impl_(std::make_unique<Impl>()) {
  require(alignment != 0 && (alignment & (alignment - 1)) == 0 && alignment <= (1u << 30),
          MOEVK_ERROR_INVALID_ARGUMENT,
          "gguf writer: alignment " + std::to_string(alignment) + " is not a power of two");
  Impl& w = *impl_;
  w.path = path;
  w.alignment = alignment;
  // Devices and FIFOs (/dev/null, a pipe) are written in place: they cannot be replaced by a
  // rename, and there is no partial file to protect. A symlink is followed so that the file it
  // names is replaced, not the link.
  std::error_code ec;
  std::filesystem::path target(path);
  if (std::filesystem::is_symlink(target, ec)) {
    std::filesystem::path resolved = std::filesystem::weakly_canonical(target, ec);
    if (!ec) target = std::move(resolved);
  }
  const auto status = std::filesystem::status(target, ec);
  w.rename_on_finish = !std::filesystem::exists(status) || std::filesystem::is_regular_file(status);
  if (w.rename_on_finish) {
    w.final_path = target.string();
    w.written_path = temporary_beside(target);
    // O_EXCL: never write through a name someone else created meanwhile.
    const int fd = ::open(w.written_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) w.io_failure("cannot create a temporary file beside it");
    // The file that replaces an existing one keeps its permission bits (the owner is whoever
    // writes; only a privileged process could keep another's). A new file gets 0666 & ~umask.
    struct stat old_stat;
    if (::stat(w.final_path.c_str(), &old_stat) == 0) (void)::fchmod(fd, old_stat.st_mode & 07777);
    w.out = fdopen(fd, "wb");
    if (!w.out) {
      const int err = errno;
      ::close(fd);
      std::remove(w.written_path.c_str());
      errno = err;
      w.io_failure("cannot open");
    }
  } else {
    w.written_path = path;
    w.out = std::fopen(path.c_str(), "wb");
    if (!w.out) w.io_failure("cannot create");
  }
  std::setvbuf(w.out, nullptr, _IOFBF, 1 << 20);
  if (alignment != 32) set_uint32("general.alignment", uint32_t(alignment));
}

Writer::~Writer() {
  if (impl_->out) std::fclose(impl_->out);
  if (!impl_->finished && impl_->rename_on_finish) std::remove(impl_->written_path.c_str());
}

void Writer::set_uint32(const std::string& key, uint32_t v) {
  Value value;
  value.type = ValueType::UINT32;
  value.u = v;
  impl_->set(key, std::move(value));
}
void Writer::set_int32(const std::string& key, int32_t v) {
  Value value;
  value.type = ValueType::INT32;
  value.i = v;
  impl_->set(key, std::move(value));
}
void Writer::set_uint64(const std::string& key, uint64_t v) {
  Value value;
  value.type = ValueType::UINT64;
  value.u = v;
  impl_->set(key, std::move(value));
}
void Writer::set_float32(const std::string& key, float v) {
  Value value;
  value.type = ValueType::FLOAT32;
  value.f = v;
  impl_->set(key, std::move(value));
}
void Writer::set_bool(const std::string& key, bool v) {
  Value value;
  value.type = ValueType::BOOL;
  value.u = v ? 1 : 0;
  impl_->set(key, std::move(value));
}
void Writer::set_string(const std::string& key, const std::string& v) {
  Value value;
  value.type = ValueType::STRING;
  value.s = v;
  impl_->set(key, std::move(value));
}
void Writer::set_value(const std::string& key, const Value& v) {
  if (v.type == ValueType::ARRAY) check_array(key, v, 1);
  impl_->set(key, v);
}
void Writer::set_array(const std::string& key, const Value& array_value) {
  require(array_value.type == ValueType::ARRAY, MOEVK_ERROR_INVALID_ARGUMENT,
          "gguf writer: set_array('" + key + "') with a value that is not an array");
  set_value(key, array_value);
}
void Writer::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  Value value = Value::array_of(ValueType::STRING);
  value.strings = v;
  impl_->set(key, std::move(value));
}
namespace {
template <typename T>
Value packed_array(ValueType element_type, const std::vector<T>& v) {
  Value value = Value::array_of(element_type);
  value.packed.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(value.packed.data(), v.data(), value.packed.size());  // little-endian host
  return value;
}
}  // namespace
void Writer::set_float32_array(const std::string& key, const std::vector<float>& v) {
  impl_->set(key, packed_array(ValueType::FLOAT32, v));
}
void Writer::set_int32_array(const std::string& key, const std::vector<int32_t>& v) {
  impl_->set(key, packed_array(ValueType::INT32, v));
}

void Writer::add_tensor(const std::string& name, std::vector<uint64_t> dims, quant::Type type) {
  impl_->require_declaring("add_tensor");
  const std::string where = "gguf writer: tensor '" + name + "': ";
  // ggml keeps names in char[GGML_MAX_NAME = 64] and llama.cpp's reader rejects longer ones.
  require(name.size() <= kMaxTensorNameLength, MOEVK_ERROR_INVALID_ARGUMENT,
          where + "name is " + std::to_string(name.size()) + " characters, llama.cpp reads at most " +
              std::to_string(kMaxTensorNameLength));
  for (const TensorInfo& t : impl_->tensors) {
    require(t.name != name, MOEVK_ERROR_INVALID_ARGUMENT, where + "declared twice");
  }
  require(!dims.empty() && dims.size() <= kMaxDims, MOEVK_ERROR_INVALID_ARGUMENT,
          where + std::to_string(dims.size()) + " dimensions (1..4 allowed)");
  const quant::TypeInfo& info = quant::type_info(type);
  uint64_t elements = 1;
  for (uint64_t d : dims) {
    require(d >= 1, MOEVK_ERROR_INVALID_ARGUMENT, where + "a dimension is 0");
    require(!__builtin_mul_overflow(elements, d, &elements), MOEVK_ERROR_INVALID_ARGUMENT,
            where + "element count overflows");
  }
  require(dims[0] % info.block_size == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          where + "ne[0] = " + std::to_string(dims[0]) + " is not a multiple of the " + info.name +
              " block size " + std::to_string(info.block_size));
  TensorInfo t;
  t.name = name;
  t.type = type;
  require(!__builtin_mul_overflow(quant::row_bytes(type, dims[0]), elements / dims[0], &t.size),
          MOEVK_ERROR_INVALID_ARGUMENT, where + "data size overflows");
  t.dims = std::move(dims);
  t.offset = impl_->data_bytes;
  const uint64_t a = impl_->alignment;
  impl_->data_bytes += (t.size + a - 1) / a * a;
  impl_->tensors.push_back(std::move(t));
}

void Writer::begin_data() {
  Impl& w = *impl_;
  w.require_declaring("begin_data");
  // The reader places data by general.alignment: a value set by hand must match the padding.
  for (const KeyValue& kv : w.metadata) {
    if (kv.key != "general.alignment") continue;
    require(kv.value.as_uint() == w.alignment, MOEVK_ERROR_INVALID_ARGUMENT,
            w.path + ": general.alignment does not match the writer's alignment " +
                std::to_string(w.alignment));
  }
  w.data_started = true;
  w.write_scalar<uint32_t>(0x46554747);  // "GGUF"
  w.write_scalar<uint32_t>(3);
  w.write_scalar<uint64_t>(w.tensors.size());
  w.write_scalar<uint64_t>(w.metadata.size());
  for (const KeyValue& kv : w.metadata) {
    w.write_string(kv.key);
    w.write_scalar<uint32_t>(uint32_t(kv.value.type));
    w.write_value(kv.value);
  }
  for (const TensorInfo& t : w.tensors) {
    w.write_string(t.name);
    w.write_scalar<uint32_t>(uint32_t(t.dims.size()));
    for (uint64_t d : t.dims) w.write_scalar<uint64_t>(d);
    w.write_scalar<uint32_t>(uint32_t(t.type));
    w.write_scalar<uint64_t>(t.offset);
  }
  w.pad_to_alignment();
}

void Writer::write_data(const void* bytes, uint64_t size) {
  Impl& w = *impl_;
  require(w.data_started && !w.finished, MOEVK_ERROR_INVALID_ARGUMENT,
          w.path + ": write_data outside begin_data() .. finish()");
  const auto* src = static_cast<const uint8_t*>(bytes);
  while (size > 0) {
    require(w.current < w.tensors.size(), MOEVK_ERROR_INVALID_ARGUMENT,
            w.path + ": write_data past the last tensor's data");
    const TensorInfo& t = w.tensors[w.current];
    const uint64_t chunk = std::min(size, t.size - w.current_written);
    w.write(src, chunk);
    src += chunk;
    size -= chunk;
    w.current_written += chunk;
    if (w.current_written == t.size) {
      w.pad_to_alignment();
      ++w.current;
      w.current_written = 0;
    }
  }
}

void Writer::finish() {
  Impl& w = *impl_;
  if (!w.data_started) begin_data();
  require(w.current == w.tensors.size(), MOEVK_ERROR_INVALID_ARGUMENT,
          w.path + ": finish() before the data of tensor '" +
              (w.current < w.tensors.size() ? w.tensors[w.current].name : std::string()) +
              "' was complete");
  if (std::fflush(w.out) != 0) w.io_failure("write failed");
  const int closed = std::fclose(w.out);
  w.out = nullptr;
  if (closed != 0) w.io_failure("close failed");
  if (w.rename_on_finish && std::rename(w.written_path.c_str(), w.final_path.c_str()) != 0)
    w.io_failure("cannot rename " + w.written_path + " to it");
  w.finished = true;
}

}  // namespace moevk::gguf
