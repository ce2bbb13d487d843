// Writer <-> reader round trips with every value type and nested arrays, exact byte layout of a
// small file against a hand-built one, partial-file cleanup and write errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "gguf/gguf_builder.hpp"

namespace moevk::gguf {
namespace {

std::string temp_path(const char* stem) {
  return ::testing::TempDir() + "/" + stem + "_" + std::to_string(getpid()) + ".gguf";
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Value scalar(ValueType t) {
  Value v;
  v.type = t;
  return v;
}

// Every scalar type with a value that uses its full width.
std::vector<std::pair<std::string, Value>> every_scalar() {
  std::vector<std::pair<std::string, Value>> out;
  auto add = [&](const char* key, Value v) { out.emplace_back(key, std::move(v)); };
  Value v;
  v = scalar(ValueType::UINT8); v.u = 0xfe; add("t.u8", v);
  v = scalar(ValueType::INT8); v.i = -128; add("t.i8", v);
  v = scalar(ValueType::UINT16); v.u = 0xfedc; add("t.u16", v);
  v = scalar(ValueType::INT16); v.i = -32768; add("t.i16", v);
  v = scalar(ValueType::UINT32); v.u = 0xfedcba98u; add("t.u32", v);
  v = scalar(ValueType::INT32); v.i = -2147483647 - 1; add("t.i32", v);
  v = scalar(ValueType::UINT64); v.u = 0xfedcba9876543210ull; add("t.u64", v);
  v = scalar(ValueType::INT64); v.i = -1234567890123456789ll; add("t.i64", v);
  v = scalar(ValueType::FLOAT32); v.f = -0.15625; add("t.f32", v);
  v = scalar(ValueType::FLOAT64); v.f = 3.141592653589793; add("t.f64", v);
  v = scalar(ValueType::BOOL); v.u = 1; add("t.bool", v);
  v = scalar(ValueType::STRING); v.s = std::string("with\0nul and \xe2\x82\xac", 17); add("t.string", v);
  v = scalar(ValueType::STRING); v.s = ""; add("t.empty_string", v);
  return out;
}

void expect_same_value(const Value& want, const Value& got, const std::string& key) {
  ASSERT_EQ(got.type, want.type) << key;
  switch (want.type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
    case ValueType::BOOL:
      EXPECT_EQ(got.u, want.u) << key;
      break;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      EXPECT_EQ(got.i, want.i) << key;
      break;
    case ValueType::FLOAT32: case ValueType::FLOAT64: EXPECT_EQ(got.f, want.f) << key; break;
    case ValueType::STRING: EXPECT_EQ(got.s, want.s) << key; break;
    case ValueType::ARRAY:
      EXPECT_EQ(got.element_type, want.element_type) << key;
      ASSERT_EQ(got.array_size(), want.array_size()) << key;
      for (uint64_t k = 0; k < want.array_size(); ++k) expect_same_value(want.element(k), got.element(k), key);
      break;
  }
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensorData) {
  const std::string path = temp_path("writer_roundtrip");
  const auto scalars = every_scalar();
  // Nested: an array of arrays of uint16, plus arrays of each scalar type.
  Value nested = Value::array_of(ValueType::ARRAY);
  for (int row = 0; row < 3; ++row) {
    Value inner = Value::array_of(ValueType::UINT16);
    for (int k = 0; k < row; ++k) {
      Value e = scalar(ValueType::UINT16);
      e.u = uint64_t(1000 * row + k);
      inner.append(e);
    }
    nested.append(inner);
  }
  std::vector<float> data_f32(48);
  for (size_t k = 0; k < data_f32.size(); ++k) data_f32[k] = float(k) * 0.5f - 3.0f;
  std::vector<uint8_t> data_q4_0(18 * 2 * 3);
  for (size_t k = 0; k < data_q4_0.size(); ++k) data_q4_0[k] = uint8_t(k * 13 + 1);
  {
    Writer writer(path);
    for (const auto& [key, v] : scalars) writer.set_value(key, v);
    for (const auto& [key, v] : scalars) {
      Value array = Value::array_of(v.type);
      array.append(v);
      array.append(v);
      writer.set_array(key + "_array", array);
    }
    writer.set_array("t.nested", nested);
    writer.set_uint32("w.u32", 7);
    writer.set_int32("w.i32", -7);
    writer.set_uint64("w.u64", 1ull << 50);
    writer.set_float32("w.f32", 0.25f);
    writer.set_bool("w.bool", false);
    writer.set_string("w.string", "first");
    writer.set_string("w.string", "replaced");  // a second set replaces
    writer.set_string_array("w.strings", {"a", "", "ccc"});
    writer.set_float32_array("w.floats", {1.5f, -2.0f});
    writer.set_int32_array("w.ints", {-1, 0, 1});
    writer.add_tensor("a.f32", {16, 3}, quant::Type::F32);       // 192 bytes
    writer.add_tensor("b.q4_0", {64, 3}, quant::Type::Q4_0);     // 108 bytes, padded to 128
    writer.add_tensor("c.f32", {48}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(data_f32.data(), 100);  // chunks that straddle tensor boundaries
    writer.write_data(reinterpret_cast<uint8_t*>(data_f32.data()) + 100, 92);
    writer.write_data(data_q4_0.data(), data_q4_0.size());
    writer.write_data(data_f32.data(), 192);
    writer.finish();
  }
  auto file = File::open(path);
  EXPECT_EQ(file->version(), 3u);
  for (const auto& [key, v] : scalars) {
    const Value* got = file->find(key);
    ASSERT_NE(got, nullptr) << key;
    expect_same_value(v, *got, key);
    const Value* got_array = file->find(key + "_array");
    ASSERT_NE(got_array, nullptr) << key;
    ASSERT_EQ(got_array->array_size(), 2u);
    expect_same_value(v, got_array->element(1), key + "_array");
  }
  const Value* got_nested = file->find("t.nested");
  ASSERT_NE(got_nested, nullptr);
  expect_same_value(nested, *got_nested, "t.nested");
  EXPECT_EQ(file->get_uint("w.u32"), 7u);
  EXPECT_EQ(file->find("w.i32")->i, -7);
  EXPECT_EQ(file->get_uint("w.u64"), 1ull << 50);
  EXPECT_EQ(file->get_float("w.f32"), 0.25);
  EXPECT_EQ(file->get_bool("w.bool"), false);
  EXPECT_EQ(file->get_string("w.string"), "replaced");
  EXPECT_EQ(file->find("w.strings")->strings[2], "ccc");
  EXPECT_EQ(file->find("w.floats")->element(1).f, -2.0);
  EXPECT_EQ(file->find("w.ints")->element(0).i, -1);

  ASSERT_EQ(file->tensors().size(), 3u);
  const TensorInfo* a = file->find_tensor("a.f32");
  const TensorInfo* b = file->find_tensor("b.q4_0");
  const TensorInfo* c = file->find_tensor("c.f32");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(b->dims, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(b->size, 108u);
  EXPECT_EQ(a->offset, file->data_offset());
  EXPECT_EQ(b->offset, file->data_offset() + 192);
  EXPECT_EQ(c->offset, file->data_offset() + 192 + 128);
  auto span_a = file->tensor_data(*a);
  EXPECT_EQ(std::memcmp(span_a.data(), data_f32.data(), 192), 0);
  auto span_b = file->tensor_data(*b);
  EXPECT_TRUE(std::equal(span_b.begin(), span_b.end(), data_q4_0.begin()));
  auto span_c = file->tensor_data(*c);
  EXPECT_EQ(std::memcmp(span_c.data(), data_f32.data(), 192), 0);
  EXPECT_EQ(file->file_size(), c->offset + 192);
  file.reset();
  std::remove(path.c_str());
}

TEST(GgufWriter, BytesMatchTheFormatLayout) {
  const std::string path = temp_path("writer_layout");
  const std::vector<float> values = {1, 2, 3, 4, 5, 6, 7, 8};
  {
    Writer writer(path, 64);
    writer.set_string("general.architecture", "llama");
    writer.add_tensor("output_norm.weight", {8}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(values.data(), 32);
    writer.finish();
  }
  test::GgufBuilder want;
  want.header(1, 2).kv_u32("general.alignment", 64).kv_string("general.architecture", "llama");
  want.tensor("output_norm.weight", {8}, 0, 0).pad(64).raw(values.data(), 32).pad(64);
  EXPECT_EQ(read_all(path), want.bytes);
  std::remove(path.c_str());
}

// Names in `dir` that contain `stem`: the target and any temporary the writer made beside it.
std::vector<std::string> entries_like(const std::filesystem::path& dir, const std::string& stem) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(stem) != std::string::npos) out.push_back(e.path().filename().string());
  return out;
}

TEST(GgufWriter, UnfinishedFileIsRemoved) {
  const std::filesystem::path dir = std::filesystem::path(temp_path("writer_partial_dir"));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "partial.gguf").string();
  {
    Writer writer(path);
    writer.add_tensor("w", {32}, quant::Type::F32);
    writer.begin_data();
    const float half[16] = {};
    writer.write_data(half, sizeof half);
    // The bytes go to a temporary beside the target; the target appears only when complete.
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_EQ(entries_like(dir, "partial.gguf").size(), 1u);
    try {
      writer.finish();  // the tensor is incomplete
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos);
    }
  }
  EXPECT_TRUE(entries_like(dir, "partial.gguf").empty());
  std::filesystem::remove_all(dir);
}

TEST(GgufWriter, ExistingFileSurvivesAFailedWrite) {
  const std::filesystem::path dir = std::filesystem::path(temp_path("writer_replace_dir"));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.gguf").string();
  const std::string old_bytes = "the previous model";
  std::ofstream(path, std::ios::binary) << old_bytes;
  const float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  {
    Writer writer(path);
    writer.add_tensor("w", {8}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(values, 16);  // half the tensor, then the writer is abandoned (an error upstream)
    const std::vector<uint8_t> still = read_all(path);
    EXPECT_EQ(std::string(still.begin(), still.end()), old_bytes);
  }
  std::vector<uint8_t> after = read_all(path);
  EXPECT_EQ(std::string(after.begin(), after.end()), old_bytes);
  EXPECT_EQ(entries_like(dir, "model.gguf"), std::vector<std::string>{"model.gguf"});  // no temporary left
  // A complete write replaces it.
  {
    Writer writer(path);
    writer.add_tensor("w", {8}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(values, sizeof values);
    writer.finish();
  }
  auto file = File::open(path);
  ASSERT_NE(file->find_tensor("w"), nullptr);
  EXPECT_EQ(entries_like(dir, "model.gguf"), std::vector<std::string>{"model.gguf"});
  // The replacement keeps the replaced file's permission bits.
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::group_read);
  {
    Writer writer(path);
    writer.add_tensor("w", {8}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(values, sizeof values);
    writer.finish();
  }
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read);
  // Through a symlink: the file it names is replaced, the link stays a link.
  const std::string link = (dir / "link.gguf").string();
  std::filesystem::create_symlink(path, link);
  {
    Writer writer(link);
    writer.set_string("general.name", "via link");
    writer.finish();
  }
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(File::open(path)->get_string("general.name"), "via link");
  file.reset();
  std::filesystem::remove_all(dir);
}

TEST(GgufWriter, TensorNamesLongerThanLlamaCppReadsAreRejected) {
  const std::string path = temp_path("writer_names");
  Writer writer(path);
  const std::string longest(kMaxTensorNameLength, 'n');
  writer.add_tensor(longest, {8}, quant::Type::F32);  // 63 characters: llama.cpp's limit
  try {
    writer.add_tensor(longest + "x", {8}, quant::Type::F32);
    ADD_FAILURE() << "a 64-character tensor name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("name is 64 characters, llama.cpp reads at most 63"), std::string::npos)
        << e.what();
  }
}

TEST(GgufWriter, MisuseIsRejected) {
  const std::string path = temp_path("writer_misuse");
  Writer writer(path);
  writer.add_tensor("w", {32}, quant::Type::Q8_0);
  auto expect_invalid = [](auto&& call) {
    try {
      call();
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
    }
  };
  expect_invalid([&] { writer.add_tensor("w", {32}, quant::Type::F32); });
  expect_invalid([&] { writer.add_tensor("x", {33}, quant::Type::Q8_0); });
  expect_invalid([&] { writer.add_tensor("x", {32, 0}, quant::Type::F32); });
  expect_invalid([&] { writer.add_tensor("x", {1, 1, 1, 1, 1}, quant::Type::F32); });
  Value mixed = Value::array_of(ValueType::UINT8);
  expect_invalid([&] { mixed.append(scalar(ValueType::STRING)); });
  mixed.strings = {"not a uint8"};  // elements in the storage of another type
  expect_invalid([&] { writer.set_array("mixed", mixed); });
  Value ragged = Value::array_of(ValueType::UINT32);
  ragged.packed = {1, 2, 3};  // not a whole uint32
  expect_invalid([&] { writer.set_array("ragged", ragged); });
  Value not_nested = Value::array_of(ValueType::ARRAY);
  not_nested.arrays = {scalar(ValueType::UINT8)};
  expect_invalid([&] { writer.set_array("not_nested", not_nested); });
  expect_invalid([&] { writer.write_data("x", 1); });  // before begin_data
  writer.set_uint32("general.alignment", 64);  // the writer pads to 32
  expect_invalid([&] { writer.begin_data(); });
  writer.set_uint32("general.alignment", 32);
  writer.begin_data();
  expect_invalid([&] { writer.set_uint32("late", 1); });
  const std::vector<uint8_t> block(35);
  expect_invalid([&] { writer.write_data(block.data(), block.size()); });  // one byte too many
}

TEST(GgufWriter, DiskFullIsIo) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::vector<uint8_t> data(4 << 20);
  try {
    Writer writer("/dev/full");
    writer.add_tensor("big", {uint64_t(data.size())}, quant::Type::F32);
    writer.begin_data();
    writer.write_data(data.data(), data.size());
    writer.write_data(data.data(), data.size());
    writer.write_data(data.data(), data.size());
    writer.write_data(data.data(), data.size());
    writer.finish();
    ADD_FAILURE() << "writing to /dev/full succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_IO) << e.what();
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos);
  }
  EXPECT_TRUE(std::filesystem::exists("/dev/full"));  // the device node is never removed
}

}  // namespace
}  // namespace moevk::gguf
