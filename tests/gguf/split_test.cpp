// Split sets as llama.cpp's gguf-split writes them: NAME-00001-of-0000N.gguf with the metadata in
// the first file and split.no (uint16), split.count (uint16), split.tensors.count (int32) in every
// file. Read from sets laid out byte by byte (GgufBuilder, independent of our writer), written by
// write_split and compared byte for byte with such a set, and every way a set can be broken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
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

using test::GgufBuilder;

// A scratch folder per test.
class SplitDir {
 public:
  SplitDir() : dir_(::testing::TempDir() + "/split_" + std::to_string(getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~SplitDir() { std::filesystem::remove_all(dir_); }
  std::string prefix() const { return dir_ + "/model"; }
  std::string file(uint32_t index, uint32_t count) const { return split_path(prefix(), index, count); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The split keys as gguf-split writes them (type ids: uint16 2, int32 5).
GgufBuilder& split_keys(GgufBuilder& b, uint16_t no, uint16_t count, int32_t tensors) {
  b.str("split.no").u32(2).put<uint16_t>(no);
  b.str("split.count").u32(2).put<uint16_t>(count);
  b.str("split.tensors.count").u32(5).put<int32_t>(tensors);
  return b;
}

// A set of two files of three f32 tensors: a [4] and b [8] in the first, c [2, 3] in the second.
// Values: tensor t, element k holds 100 t + k. The fields break one thing at a time.
struct SetSpec {
  uint16_t first_no = 0, first_count = 2;
  uint16_t second_no = 1, second_count = 2;
  int32_t tensors = 3;
  const char* second_name = "c";
  bool first_has_no = true;
};

struct HandSet {
  std::vector<uint8_t> first, second;
};

void tensor_values(GgufBuilder& b, int t, int n) {
  for (int k = 0; k < n; ++k) b.put<float>(float(100 * t + k));
}

HandSet hand_set(const SetSpec& spec = {}) {
  HandSet s;
  GgufBuilder a;
  a.header(2, spec.first_has_no ? 5 : 4);
  a.kv_string("general.architecture", "llama");
  a.kv_u32("llama.block_count", 7);
  if (spec.first_has_no) {
    split_keys(a, spec.first_no, spec.first_count, spec.tensors);
  } else {
    a.str("split.count").u32(2).put<uint16_t>(spec.first_count);
    a.str("split.tensors.count").u32(5).put<int32_t>(spec.tensors);
  }
  a.tensor("a", {4}, 0, 0).tensor("b", {8}, 0, 32);
  a.pad();
  tensor_values(a, 0, 4);
  a.pad();
  tensor_values(a, 1, 8);
  s.first = a.bytes;
  GgufBuilder b;
  b.header(1, 3);
  split_keys(b, spec.second_no, spec.second_count, spec.tensors);
  b.tensor(spec.second_name, {2, 3}, 0, 0);
  b.pad();
  tensor_values(b, 2, 6);
  b.pad();  // ggml pads every tensor's data, the last one too
  s.second = b.bytes;
  return s;
}

void write_set(const SplitDir& dir, const HandSet& s) {
  write_bytes(dir.file(0, 2), s.first);
  write_bytes(dir.file(1, 2), s.second);
}

// Opening `path` fails with `status` and a message holding every one of `parts`.
void expect_open_error(const std::string& path, moevk_status status, const std::vector<std::string>& parts) {
  try {
    File::open(path);
    ADD_FAILURE() << path << " opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(GgufSplit, NamesAreGgufSplits) {
  EXPECT_EQ(split_path("dir/m", 0, 3), "dir/m-00001-of-00003.gguf");
  EXPECT_EQ(split_path("m", 11, 12), "m-00012-of-00012.gguf");
}

TEST(GgufSplit, OpensAHandBuiltSetAsOneFile) {
  SplitDir dir;
  const HandSet s = hand_set();
  write_set(dir, s);
  auto file = File::open(dir.file(0, 2));
  EXPECT_EQ(file->path(), dir.file(0, 2));
  EXPECT_EQ(file->get_string("general.architecture"), "llama");
  EXPECT_EQ(file->get_uint("llama.block_count"), 7u);
  EXPECT_EQ(file->file_size(), s.first.size() + s.second.size());
  ASSERT_EQ(file->shards().size(), 2u);
  EXPECT_EQ(file->shards()[0].path, dir.file(0, 2));
  EXPECT_EQ(file->shards()[1].path, dir.file(1, 2));
  EXPECT_EQ(file->shards()[0].n_tensors, 2u);
  EXPECT_EQ(file->shards()[1].n_tensors, 1u);
  EXPECT_EQ(file->shards()[0].file_size, s.first.size());
  EXPECT_EQ(file->shards()[1].file_size, s.second.size());
  ASSERT_EQ(file->tensors().size(), 3u);
  const char* names[] = {"a", "b", "c"};
  const int sizes[] = {4, 8, 6};
  for (int t = 0; t < 3; ++t) {
    SCOPED_TRACE(names[t]);
    const TensorInfo* info = file->find_tensor(names[t]);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info, &file->tensors()[size_t(t)]);
    EXPECT_EQ(info->shard, t < 2 ? 0u : 1u);
    const std::span<const uint8_t> data = file->tensor_data(*info);
    ASSERT_EQ(data.size(), size_t(sizes[t]) * 4);
    for (int k = 0; k < sizes[t]; ++k) {
      float v;
      std::memcpy(&v, data.data() + 4 * k, 4);
      EXPECT_EQ(v, float(100 * t + k)) << k;
    }
  }
  EXPECT_EQ(file->find_tensor("c")->dims, (std::vector<uint64_t>{2, 3}));
  // A TensorInfo naming a file the set does not have is refused, not read out of bounds.
  TensorInfo stray = *file->find_tensor("c");
  stray.shard = 2;
  EXPECT_THROW(file->tensor_data(stray), Error);
}

// A file with split.count 1 (gguf-split --split-max-tensors larger than the model) is a plain file.
TEST(GgufSplit, ASetOfOneIsAPlainFile) {
  SplitDir dir;
  GgufBuilder b;
  b.header(1, 3);
  split_keys(b, 0, 1, 1);
  b.tensor("a", {4}, 0, 0).pad();
  tensor_values(b, 0, 4);
  write_bytes(dir.dir() + "/one.gguf", b.bytes);
  auto file = File::open(dir.dir() + "/one.gguf");
  EXPECT_EQ(file->shards().size(), 1u);
  EXPECT_EQ(file->tensors().size(), 1u);
}

TEST(GgufSplit, WriteSplitLaysFilesOutAsGgufSplit) {
  SplitDir dir;
  const HandSet s = hand_set();
  write_set(dir, s);
  auto in = File::open(dir.file(0, 2));
  SplitDir out;
  // Two tensors per file: the same two files, byte for byte (metadata in the same order).
  const std::vector<std::string> paths = write_split(*in, out.prefix(), {0, 2});
  ASSERT_EQ(paths, (std::vector<std::string>{out.file(0, 2), out.file(1, 2)}));
  EXPECT_EQ(read_bytes(paths[0]), s.first);
  EXPECT_EQ(read_bytes(paths[1]), s.second);
}

TEST(GgufSplit, WriteSplitByBytesAndTensorsRoundTrips) {
  SplitDir dir;
  const HandSet s = hand_set();
  write_set(dir, s);
  auto in = File::open(dir.file(0, 2));
  // The limits as plain numbers, SplitOptions built per case: GCC 12 warned (falsely) that the
  // std::function of SplitOptions temporaries in an initializer list may be used uninitialized.
  struct Case {
    uint64_t max_file_bytes, max_tensors;
    std::vector<uint64_t> per_file;
  };
  // Padded sizes 32, 32, 32: a limit of 64 bytes takes two, 40 one; a tensor above the limit
  // (16 bytes) still gets a file of its own; no limit, one file.
  const std::vector<Case> cases = {{64, 0, {2, 1}}, {40, 0, {1, 1, 1}}, {16, 0, {1, 1, 1}},
                                   {0, 1, {1, 1, 1}}, {64, 1, {1, 1, 1}}, {0, 0, {3}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.max_file_bytes) + " bytes, " + std::to_string(c.max_tensors) + " tensors");
    SplitOptions options;
    options.max_file_bytes = c.max_file_bytes;
    options.max_tensors = c.max_tensors;
    SplitDir out;
    const uint32_t n = uint32_t(c.per_file.size());
    const std::vector<std::string> paths = write_split(*in, out.prefix(), options);
    ASSERT_EQ(paths.size(), n);
    auto back = File::open(paths[0]);
    ASSERT_EQ(back->shards().size(), n);
    for (uint32_t f = 0; f < n; ++f) {
      EXPECT_EQ(back->shards()[f].path, out.file(f, n));
      EXPECT_EQ(back->shards()[f].n_tensors, c.per_file[f]);
    }
    EXPECT_EQ(back->get_uint("llama.block_count"), 7u);
    EXPECT_EQ(back->get_uint("split.count"), n);
    ASSERT_EQ(back->tensors().size(), in->tensors().size());
    for (size_t k = 0; k < in->tensors().size(); ++k) {
      const TensorInfo& a = in->tensors()[k];
      const TensorInfo& b = back->tensors()[k];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.dims, b.dims);
      const auto da = in->tensor_data(a), db = back->tensor_data(b);
      EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end())) << a.name;
    }
  }
}

TEST(GgufSplit, OpeningALaterFileNamesTheFirst) {
  SplitDir dir;
  write_set(dir, hand_set());
  expect_open_error(dir.file(1, 2), MOEVK_ERROR_INVALID_ARGUMENT,
                    {dir.file(1, 2) + ": this is file 2 of 2", "open the first file, " + dir.file(0, 2)});
  // Nor from memory, where the other files cannot be found.
  const std::vector<uint8_t> first = read_bytes(dir.file(0, 2));
  try {
    File::from_memory(first, "first.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("split GGUF set"), std::string::npos) << e.what();
  }
}

TEST(GgufSplit, AMissingFileIsNamed) {
  SplitDir dir;
  write_bytes(dir.file(0, 2), hand_set().first);
  expect_open_error(dir.file(0, 2), MOEVK_ERROR_IO,
                    {dir.file(0, 2) + ": split GGUF set, file 2 of 2: " + dir.file(1, 2) + ": cannot open"});
}

TEST(GgufSplit, ARenamedFirstFileSaysWhy) {
  SplitDir dir;
  const HandSet s = hand_set();
  write_set(dir, s);
  write_bytes(dir.dir() + "/renamed.gguf", s.first);
  expect_open_error(dir.dir() + "/renamed.gguf", MOEVK_ERROR_IO,
                    {"renamed.gguf: this is the first file of a split GGUF set of 2 files", "-00001-of-00002.gguf"});
}

TEST(GgufSplit, InconsistentFilesAreInvalid) {
  const SplitDir names;  // the paths each case's folder has (same names, new folder per case)
  const std::string first = names.file(0, 2), second = names.file(1, 2);
  auto spec = [](auto edit) {
    SetSpec s;
    edit(s);
    return s;
  };
  struct Case {
    const char* what;
    SetSpec spec;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"second file says split.no 0", spec([](SetSpec& s) { s.second_no = 0; }),
       second + ": has split.no 0 and split.count 2, but its name makes it split.no 1 of the 2 files " + first},
      {"second file says split.count 3", spec([](SetSpec& s) { s.second_count = 3; }),
       second + ": has split.no 1 and split.count 3"},
      {"second file says split.no 5 of 2", spec([](SetSpec& s) { s.second_no = 5; }),
       second + ": split.no 5 is not below split.count 2"},
      {"a tensor in both files", spec([](SetSpec& s) { s.second_name = "a"; }),
       second + ": tensor 'a' is also in " + first},
      {"split.tensors.count says 4", spec([](SetSpec& s) { s.tensors = 4; }),
       first + ": split.tensors.count is 4 but the 2 files hold 3 tensors"},
      {"first file says split.no 2 of 2", spec([](SetSpec& s) { s.first_no = 2; }),
       first + ": split.no 2 is not below split.count 2"},
      {"first file says split.count 0", spec([](SetSpec& s) { s.first_count = 0; }),
       first + ": split.count 0 is not in 1..99999"},
      {"first file has no split.no", spec([](SetSpec& s) { s.first_has_no = false; }),
       first + ": split.count is 2 but split.no is missing"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::filesystem::create_directories(names.dir());
    write_set(names, hand_set(c.spec));
    expect_open_error(first, MOEVK_ERROR_INVALID_FILE, {c.message});
  }
}

// A broken later file is rejected as any file is, with the first file's name in front.
TEST(GgufSplit, AMalformedLaterFileIsNamed) {
  SplitDir dir;
  HandSet s = hand_set();
  s.second.resize(s.second.size() - 12);  // the padding and 4 bytes of c's data
  write_set(dir, s);
  expect_open_error(dir.file(0, 2), MOEVK_ERROR_INVALID_FILE,
                    {dir.file(0, 2) + ": split GGUF set, file 2 of 2: " + dir.file(1, 2) + ": tensor 'c'",
                     "extends past end of file"});
}

}  // namespace
}  // namespace moevk::gguf
