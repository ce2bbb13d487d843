// One regression test per class of malformed GGUF file: each must be rejected with
// MOEVK_ERROR_INVALID_FILE and a message naming the field and the byte offset where it was read.
// Byte offsets below are computed from the layout: header 24 bytes (magic 4, version 4, tensor
// count 8, metadata count 8), a string is an 8-byte length plus its bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "gguf/gguf_builder.hpp"

namespace moevk::gguf {
namespace {

using test::GgufBuilder;
constexpr uint32_t kF32 = 0, kQ4_0 = 2;
constexpr uint32_t kTypeUint8 = 0, kTypeUint32 = 4, kTypeString = 8, kTypeArray = 9;

void expect_rejected(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
  try {
    File::from_memory(bytes, "bad.gguf");
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE) << e.what();
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("bad.gguf: ", 0), 0u) << message;
    for (const std::string& f : fragments) {
      EXPECT_NE(message.find(f), std::string::npos) << "missing '" << f << "' in: " << message;
    }
  }
}

// A file with one tensor info at byte 24 and enough trailing bytes that only the info is wrong.
std::vector<uint8_t> one_tensor(const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset,
                                size_t data_bytes = 256) {
  GgufBuilder b;
  b.header(1, 0).tensor("w", dims, type, offset).pad().fill(data_bytes);
  return b.bytes;
}

TEST(GgufMalformed, EmptyFile) { expect_rejected({}, {"header at byte 0", "magic", "truncated"}); }

TEST(GgufMalformed, TruncatedHeader) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u32(0);  // tensor count cut after 4 of its 8 bytes
  expect_rejected(b.bytes, {"at byte 8", "tensor count", "truncated"});
}

TEST(GgufMalformed, BadMagic) {
  GgufBuilder b;
  b.raw("GGML", 4).u32(3).u64(0).u64(0);
  expect_rejected(b.bytes, {"header at byte 0", "bad magic"});
}

TEST(GgufMalformed, BadVersion) {
  GgufBuilder b;
  b.header(0, 0, 7);
  expect_rejected(b.bytes, {"header at byte 0", "version 7"});
}

TEST(GgufMalformed, VersionOne) {
  GgufBuilder b;
  b.header(0, 0, 1);
  expect_rejected(b.bytes, {"version 1 is not supported"});
}

TEST(GgufMalformed, BigEndian) {
  GgufBuilder b;
  b.header(0, 0, 0x03000000u);  // version 3 written big-endian
  expect_rejected(b.bytes, {"big-endian"});
}

TEST(GgufMalformed, HugeMetadataCount) {
  GgufBuilder b;
  b.header(0, 1ull << 60).fill(64);
  expect_rejected(b.bytes, {"at byte 16", "metadata count 1152921504606846976"});
}

TEST(GgufMalformed, HugeTensorCount) {
  GgufBuilder b;
  b.header(1ull << 40, 0).fill(64);
  expect_rejected(b.bytes, {"at byte 8", "tensor count 1099511627776"});
}

TEST(GgufMalformed, HugeKeyLength) {
  GgufBuilder b;
  b.header(0, 1).u64(1ull << 60).fill(32);
  expect_rejected(b.bytes, {"metadata entry #0 key at byte 24", "key length 1152921504606846976"});
}

TEST(GgufMalformed, HugeStringValueLength) {
  GgufBuilder b;
  // key at 24 (8 + 12 bytes), type at 44, string length at 48
  b.header(0, 1).str("general.name").u32(kTypeString).u64(1ull << 60).fill(32);
  expect_rejected(b.bytes, {"metadata key 'general.name' at byte 48", "string length"});
}

TEST(GgufMalformed, HugeArrayCount) {
  GgufBuilder b;
  // key at 24 (8 + 21 bytes), type at 53, element type at 57, count at 61
  b.header(0, 1).str("tokenizer.ggml.tokens").u32(kTypeArray).u32(kTypeString).u64(1ull << 60);
  b.fill(1000);
  expect_rejected(b.bytes, {"metadata key 'tokenizer.ggml.tokens' at byte 61",
                            "array length 1152921504606846976"});
}

TEST(GgufMalformed, ByteArrayLongerThanFile) {
  GgufBuilder b;
  b.header(0, 1).str("a").u32(kTypeArray).u32(kTypeUint8).u64(101).fill(100);
  // key at 24 (9 bytes), type at 33, element type at 37, count at 41
  expect_rejected(b.bytes, {"metadata key 'a' at byte 41", "array length 101 of uint8"});
}

void expect_rejected_under(const std::vector<uint8_t>& bytes, uint64_t max_header_bytes,
                           const std::vector<std::string>& fragments) {
  ReadLimits limits;
  limits.max_header_bytes = max_header_bytes;
  try {
    File::from_memory(bytes, "bad.gguf", limits);
    ADD_FAILURE() << "accepted a file over the header budget of " << max_header_bytes;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE) << e.what();
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "missing '" << f << "' in: " << e.what();
  }
}

TEST(GgufMalformed, ByteArrayIsStoredPacked) {
  // 8M uint8 values: once ~800 MB of Values, now their 8 MB as in the file.
  const uint64_t n = 8ull << 20;
  GgufBuilder b;
  b.header(0, 1).str("a").u32(kTypeArray).u32(kTypeUint8).u64(n).fill(size_t(n), 7);
  auto file = File::from_memory(b.bytes);
  const Value* a = file->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->array_size(), n);
  EXPECT_EQ(a->packed.size(), n);
  EXPECT_EQ(a->element(n - 1).u, 7u);
  EXPECT_LT(file->header_bytes(), n + 4096);
}

TEST(GgufMalformed, ArrayOfArraysBeyondHeaderBudget) {
  // The audit's file in miniature: many empty arrays, 12 bytes each in the file but a whole
  // Value each in memory. (Its 9M arrays in 108 MB would need more than the default budget.)
  static_assert(9'000'000 * sizeof(Value) > kMaxHeaderBytes);
  const uint64_t n = 10000;
  GgufBuilder b;
  b.header(0, 1).str("a").u32(kTypeArray).u32(kTypeArray).u64(n);  // count at 41
  for (uint64_t k = 0; k < n; ++k) b.u32(kTypeUint8).u64(0);
  expect_rejected_under(b.bytes, 1 << 20,
                        {"metadata key 'a' at byte 41", "array length 10000 of array needs " +
                                                            std::to_string(n * sizeof(Value)) + " bytes",
                         "header budget is 1048576 bytes"});
  // Under the default budget the same file opens, and every nested Value was counted.
  auto file = File::from_memory(b.bytes);
  EXPECT_EQ(file->find("a")->array_size(), n);
  EXPECT_GE(file->header_bytes(), n * sizeof(Value));
}

TEST(GgufMalformed, NestedElementsCountAgainstHeaderBudget) {
  // Four arrays of 4096 uint8 inside one array: key at 24, outer count at 41, inner array k at
  // 49 + 4108k (type 4, count 8, data 4096), its count 4 bytes later.
  GgufBuilder b;
  b.header(0, 1).str("a").u32(kTypeArray).u32(kTypeArray).u64(4);
  for (int k = 0; k < 4; ++k) b.u32(kTypeUint8).u64(4096).fill(4096, uint8_t(k));
  const uint64_t total = File::from_memory(b.bytes)->header_bytes();
  EXPECT_LT(total, 4 * 4096 + 4096);  // packed: a byte per element, not a Value
  ReadLimits exact;
  exact.max_header_bytes = total;
  EXPECT_EQ(File::from_memory(b.bytes, "exact.gguf", exact)->find("a")->arrays[3].element(0).u, 3u);
  // One byte less: the last inner array's elements no longer fit.
  expect_rejected_under(b.bytes, total - 1,
                        {"metadata key 'a' at byte " + std::to_string(49 + 3 * 4108 + 4),
                         "array length 4096 of uint8 needs 4096 bytes", "already used"});
}

TEST(GgufMalformed, TensorInfosCountAgainstHeaderBudget) {
  expect_rejected_under(one_tensor({32}, kF32, 0), 64, {"tensor #0 name at byte 24", "the tensor info needs"});
}

TEST(GgufMalformed, UnknownArrayElementType) {
  GgufBuilder b;
  // key at 24 (9 bytes), type at 33, element type at 37
  b.header(0, 1).str("a").u32(kTypeArray).u32(13).u64(0).fill(16);
  expect_rejected(b.bytes, {"metadata key 'a' at byte 37", "unknown array element type 13"});
}

TEST(GgufMalformed, TruncatedScalarValue) {
  GgufBuilder b;
  // key at 24, type at 33, the uint32 at 37 with only 2 of its 4 bytes present
  b.header(0, 1).str("a").u32(kTypeUint32).put<uint16_t>(7);
  expect_rejected(b.bytes, {"metadata key 'a' at byte 37", "truncated: uint32 value needs 4 bytes, 2 left"});
  // Inside an array: count at 41, the first string at 49 (8 + 8 bytes), the second string's
  // length at 65 cut after 3 bytes.
  GgufBuilder in_array;
  in_array.header(0, 1).str("a").u32(kTypeArray).u32(kTypeString).u64(2).str("xxxxxxxx").u8(1).u8(0).u8(0);
  expect_rejected(in_array.bytes, {"metadata key 'a' at byte 65", "truncated: string needs 8 bytes, 3 left"});
}

TEST(GgufMalformed, UnknownValueType) {
  GgufBuilder b;
  b.header(0, 1).str("a").u32(13).fill(16);
  expect_rejected(b.bytes, {"metadata key 'a' at byte 33", "unknown value type 13"});
}

TEST(GgufMalformed, TooManyDims) {
  expect_rejected(one_tensor({32, 1, 1, 1, 1}, kF32, 0), {"tensor 'w' at byte 24", "n_dims 5"});
}

TEST(GgufMalformed, ZeroDims) {
  expect_rejected(one_tensor({}, kF32, 0), {"tensor 'w' at byte 24", "n_dims 0"});
}

TEST(GgufMalformed, ZeroDimension) {
  expect_rejected(one_tensor({32, 0}, kF32, 0), {"tensor 'w' at byte 24", "ne[1] is 0"});
}

TEST(GgufMalformed, DimensionProductOverflow) {
  expect_rejected(one_tensor({1ull << 32, 1ull << 32}, kF32, 0),
                  {"tensor 'w' at byte 24", "element count overflows at ne[1]"});
  // 2^63 elements fits uint64 but not ggml's int64 element count.
  expect_rejected(one_tensor({1ull << 32, 1ull << 31}, kF32, 0),
                  {"tensor 'w' at byte 24", "element count overflows"});
}

TEST(GgufMalformed, DataSizeOverflow) {
  // 2^62 f32 elements: the element count fits, the byte size (2^64) does not.
  expect_rejected(one_tensor({1ull << 31, 1ull << 31}, kF32, 0),
                  {"tensor 'w' at byte 24", "data size overflows"});
}

TEST(GgufMalformed, UnknownTensorType) {
  expect_rejected(one_tensor({32}, 99, 0), {"tensor 'w' at byte 24", "unknown tensor type id 99"});
}

TEST(GgufMalformed, RowNotMultipleOfBlock) {
  expect_rejected(one_tensor({33, 2}, kQ4_0, 0),
                  {"tensor 'w' at byte 24", "ne[0] = 33", "q4_0 block size 32"});
}

TEST(GgufMalformed, MisalignedOffset) {
  expect_rejected(one_tensor({8}, kF32, 4),
                  {"tensor 'w' at byte 24", "data offset 4 is not a multiple of the alignment 32"});
}

TEST(GgufMalformed, DataPastEndOfFile) {
  // Info: 24 + (8+1) + 4 + 8 + 4 + 8 = 57, data section at 64; 16 of the 32 data bytes present.
  expect_rejected(one_tensor({8}, kF32, 0, 16),
                  {"tensor 'w' at byte 24", "data [offset 0, size 32] extends past end of file (size 80"});
  // An offset far past the end must not wrap around when added to the size.
  expect_rejected(one_tensor({8}, kF32, ~uint64_t(31)), {"tensor 'w' at byte 24", "extends past end"});
}

TEST(GgufMalformed, DuplicateKey) {
  GgufBuilder b;
  b.header(0, 2).kv_u32("a", 1).kv_u32("a", 2);  // entries at 24 and 24 + 9 + 4 + 4 = 41
  expect_rejected(b.bytes, {"metadata key 'a' at byte 41", "duplicate key (first at byte 24)"});
}

TEST(GgufMalformed, DuplicateTensor) {
  GgufBuilder b;
  // infos at 24 and 24 + 33 = 57
  b.header(2, 0).tensor("t", {32}, kF32, 0).tensor("t", {32}, kF32, 128).pad().fill(256);
  expect_rejected(b.bytes, {"tensor 't' at byte 57", "duplicate tensor name (first at byte 24)"});
}

TEST(GgufMalformed, NestedArrayDepth) {
  // key "deep" at 24, type at 36, array level k starts at 40 + 12k; level 8 is one too deep.
  GgufBuilder b;
  b.header(0, 1).str("deep").u32(kTypeArray);
  for (int level = 0; level < 8; ++level) b.u32(kTypeArray).u64(1);
  b.u32(kTypeUint8).u64(0).fill(32);
  expect_rejected(b.bytes, {"metadata key 'deep' at byte 136", "nested deeper than 8"});
}

TEST(GgufMalformed, NestedArrayAtLimitIsAccepted) {
  GgufBuilder b;
  b.header(0, 1).str("deep").u32(kTypeArray);
  for (int level = 0; level < 7; ++level) b.u32(kTypeArray).u64(1);
  b.u32(kTypeUint8).u64(1).u8(42);
  auto file = File::from_memory(b.bytes);
  const Value* v = file->find("deep");
  ASSERT_NE(v, nullptr);
  for (int level = 0; level < 7; ++level) {
    ASSERT_EQ(v->type, ValueType::ARRAY);
    ASSERT_EQ(v->arrays.size(), 1u);
    v = &v->arrays[0];
  }
  ASSERT_EQ(v->element_type, ValueType::UINT8);
  ASSERT_EQ(v->array_size(), 1u);
  EXPECT_EQ(v->element(0).u, 42u);
}

TEST(GgufMalformed, BadAlignmentValue) {
  for (uint32_t alignment : {0u, 3u, 48u}) {
    GgufBuilder b;
    b.header(0, 1).kv_u32("general.alignment", alignment);
    expect_rejected(b.bytes, {"metadata key 'general.alignment' at byte 24",
                              "alignment " + std::to_string(alignment) + " is not a nonzero power of two"});
  }
  GgufBuilder b;
  b.header(0, 1).kv_string("general.alignment", "32");
  expect_rejected(b.bytes, {"metadata key 'general.alignment' at byte 24", "has type string"});
}

TEST(GgufMalformed, TruncatedTensorInfo) {
  // info at 24: name 9 bytes, n_dims at 33, ne[0] at 37, ne[1] at 45, type at 53 (cut to 3 bytes)
  GgufBuilder b;
  b.header(1, 0).str("w").u32(2).u64(32).u64(4).u32(kF32);
  b.bytes.resize(b.bytes.size() - 1);
  expect_rejected(b.bytes, {"tensor 'w' at byte 53", "truncated: tensor type needs 4 bytes, 3 left"});
}

TEST(GgufMalformed, WrongTypeForTypedGetter) {
  GgufBuilder b;
  b.header(0, 1).kv_string("qwen3moe.block_count", "many");
  auto file = File::from_memory(b.bytes, "typed.gguf");
  try {
    file->get_uint("qwen3moe.block_count");
    ADD_FAILURE() << "get_uint accepted a string";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
    EXPECT_NE(std::string(e.what()).find("'qwen3moe.block_count' at byte 24"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(file->get_uint("absent").has_value());
}

}  // namespace
}  // namespace moevk::gguf
