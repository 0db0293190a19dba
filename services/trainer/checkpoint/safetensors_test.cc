#include "services/trainer/checkpoint/safetensors.h"

#include <torch/torch.h>

#include <cstring>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/sha256.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::ReadBytes;
using testing::SafetensorsBytes;
using testing::ScratchDir;
using testing::WriteBytes;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    torch::manual_seed(11);
  }
  ScratchDir dir_;
};

// Bytes of a CPU tensor, for bit-exact comparison (NaN payloads included).
std::string Bytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

// Random bit patterns of the given type and shape (any float bits: NaNs, infinities, subnormals).
torch::Tensor RandomBits(torch::ScalarType type, std::vector<int64_t> shape) {
  if (type == torch::kBool) return torch::randint(0, 2, shape).to(torch::kBool);
  int64_t numel = 1;
  for (const int64_t d : shape) numel *= d;
  const int64_t size = c10::elementSize(type);
  return torch::randint(0, 256, {numel * size}, torch::kUInt8).view(type).reshape(shape);
}

void ExpectSameTensors(const std::vector<NamedTensor>& expected,
                       const std::vector<NamedTensor>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(actual[i].name, expected[i].name);
    EXPECT_EQ(actual[i].tensor.scalar_type(), expected[i].tensor.scalar_type());
    EXPECT_EQ(actual[i].tensor.sizes(), expected[i].tensor.sizes());
    EXPECT_TRUE(actual[i].tensor.device().is_cpu());
    EXPECT_EQ(Bytes(actual[i].tensor), Bytes(expected[i].tensor.to(torch::kCPU)));
  }
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeBitExactly) {
  TensorFile file;
  const torch::ScalarType types[] = {
      torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
      torch::kInt32,   torch::kInt16,   torch::kInt8,    torch::kUInt8,    torch::kBool};
  for (const auto type : types) {
    const std::string name = std::string("t.") + c10::toString(type);
    file.tensors.push_back({name, RandomBits(type, {3, 5})});
    file.tensors.push_back({name + ".scalar", RandomBits(type, {})});
    file.tensors.push_back({name + ".empty", RandomBits(type, {2, 0, 3})});
  }
  file.metadata = {{"step", "12"}, {"text", "spec:\n  \"quoted\" \\ tab\t é"}};
  const std::string path = dir_.File("all.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  auto read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSameTensors(file.tensors, read->tensors);
  EXPECT_EQ(read->metadata.at("step"), "12");
  EXPECT_EQ(read->metadata.at("text"), file.metadata.at("text"));
  EXPECT_EQ(read->metadata.size(), 3u);  // plus tensor_sha256

  // Data laid out largest element first: every tensor is aligned to its element size.
  auto header = ReadSafetensorsHeader(path);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->data_start % 8, 0u);
  for (const TensorInfo& t : header->tensors) {
    EXPECT_EQ(t.begin % DTypeSize(t.dtype), 0u) << t.name;
  }
  // The digest covers the whole data section.
  const std::string bytes = ReadBytes(path);
  EXPECT_EQ(read->metadata.at(kTensorSha256Key), Sha256Hex(bytes.substr(header->data_start)));
}

TEST_F(SafetensorsTest, WritesTheExactByteLayout) {
  TensorFile file;
  file.tensors.push_back({"a", torch::tensor({1, 2, 3}, torch::kUInt8)});
  file.tensors.push_back({"b", torch::tensor({1.0f, 2.0f})});
  file.metadata = {{"k", "v"}};
  const std::string path = dir_.File("tiny.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  // 216 = 0xd8 header bytes: 215 of JSON and one space of padding. "b" (F32) comes first in the
  // data, "a" (U8) after it; the header keeps the given order.
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40\x01\x02\x03", 11);
  const std::string expected =
      std::string("\xd8\x00\x00\x00\x00\x00\x00\x00", 8) +
      "{\"__metadata__\":{\"k\":\"v\",\"tensor_sha256\":"
      "\"4816211622ee6c4f5be9353585bb1a5e028ab3edcbf8194f2cd053fd349bde5f\"},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} " +
      data;
  EXPECT_EQ(ReadBytes(path), expected);
}

TEST_F(SafetensorsTest, WritesNonContiguousAndGradTensorsByValue) {
  const torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  const torch::Tensor param = torch::ones({2}, torch::requires_grad());
  TensorFile file;
  file.tensors = {{"transposed", base.t()}, {"slice", base.select(1, 2)}, {"param", param}};
  ASSERT_TRUE(WriteSafetensors(dir_.File("v"), file).ok());
  auto read = ReadSafetensors(dir_.File("v"));
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(torch::equal(read->tensors[0].tensor, base.t()));
  EXPECT_TRUE(torch::equal(read->tensors[1].tensor, torch::tensor({2.0f, 6.0f, 10.0f})));
  EXPECT_FALSE(read->tensors[2].tensor.requires_grad());
}

TEST_F(SafetensorsTest, ReadsOnlySelectedTensorsButChecksTheWholeDigest) {
  TensorFile file;
  file.tensors = {{"keep", torch::arange(4)}, {"skip", torch::arange(6)}};
  const std::string path = dir_.File("sel");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  ReadOptions options;
  options.select = [](const std::string& name) { return name == "keep"; };
  auto read = ReadSafetensors(path, options);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->tensors.size(), 1u);
  EXPECT_EQ(read->tensors[0].name, "keep");

  std::string bytes = ReadBytes(path);
  bytes[bytes.size() - 1] ^= 0x01;  // inside "skip"
  WriteBytes(path, bytes);
  EXPECT_EQ(ReadSafetensors(path, options).status().code(), core::Code::kDataLoss);
}

TEST_F(SafetensorsTest, RefusesTruncatedFiles) {
  TensorFile file;
  file.tensors = {{"w", torch::randn({4, 4})}, {"b", torch::randn({4})}};
  const std::string path = dir_.File("full");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  const std::string bytes = ReadBytes(path);
  const size_t header_end = ReadSafetensorsHeader(path)->data_start;
  for (const size_t cut : {size_t{0}, size_t{5}, size_t{8}, size_t{40}, header_end - 1, header_end,
                           header_end + 10, bytes.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string truncated = dir_.File("cut");
    WriteBytes(truncated, bytes.substr(0, cut));
    auto read = ReadSafetensors(truncated);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), core::Code::kDataLoss) << read.status();
    EXPECT_THAT(read.status().message(), HasSubstr(truncated));
  }
}

TEST_F(SafetensorsTest, RefusesAlteredTensorData) {
  TensorFile file;
  file.tensors = {{"w", torch::randn({8})}};
  const std::string path = dir_.File("f");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  std::string bytes = ReadBytes(path);
  bytes[bytes.size() - 5] ^= 0x10;
  WriteBytes(path, bytes);
  auto read = ReadSafetensors(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), core::Code::kDataLoss);
  EXPECT_THAT(read.status().message(),
              HasSubstr("safetensors file " + path + ": tensor data does not match its SHA-256"));
}

TEST_F(SafetensorsTest, RefusesMalformedFilesWithClearMessages) {
  const std::string f32x2 = std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  const struct {
    std::string bytes;
    core::Code code;
    std::string reason;
  } cases[] = {
      {std::string("\x00\x10\x00\x00\x00\x00\x00\x00{}", 10), core::Code::kDataLoss,
       "header length 4096 is larger than the 2 bytes"},
      {SafetensorsBytes("{\"a\":{\"dtype\":\"F32\",", f32x2), core::Code::kDataLoss,
       "bad header: invalid JSON"},
      {SafetensorsBytes(
           "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[1]", "[4,8]") + "}",
           f32x2),
       core::Code::kDataLoss, "(overlap)"},
      {SafetensorsBytes(
           "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "U8", "[2]", "[6,8]") + "}",
           f32x2),
       core::Code::kDataLoss, "(gap)"},
      {SafetensorsBytes("{" + entry("a", "F32", "[3]", "[0,8]") + "}", f32x2),
       core::Code::kDataLoss, "(12 bytes) but data_offsets [0,8] span 8 bytes"},
      {SafetensorsBytes(
           "{" + entry("a", "I16", "[4]", "[0,8]") + "," + entry("a", "I16", "[4]", "[0,8]") + "}",
           f32x2),
       core::Code::kDataLoss, "duplicate key \"a\""},
      {SafetensorsBytes("{" + entry("a", "BOOL", "[8]", "[0,8]") + "}", f32x2),
       core::Code::kDataLoss, "BOOL tensor \"a\" holds the byte 128"},
      {SafetensorsBytes("{" + entry("a", "U16", "[4]", "[0,8]") + "}", f32x2),
       core::Code::kInvalidArgument, "dtype U16 has no LibTorch equivalent"},
  };
  const std::string path = dir_.File("bad");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    WriteBytes(path, c.bytes);
    auto read = ReadSafetensors(path);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), c.code) << read.status();
    EXPECT_THAT(read.status().message(), HasSubstr(path));
    EXPECT_THAT(read.status().message(), HasSubstr(c.reason));
  }
  EXPECT_EQ(ReadSafetensors(dir_.File("missing")).status().code(), core::Code::kNotFound);
}

TEST_F(SafetensorsTest, ReadsFilesWithoutADigest) {
  // Files from other writers need not carry tensor_sha256.
  const std::string path = dir_.File("plain");
  WriteBytes(path,
             SafetensorsBytes("{\"x\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}",
                              std::string("\x07\x00\x00\x00", 4)));
  auto read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->tensors[0].tensor.item<int32_t>(), 7);
  EXPECT_TRUE(read->metadata.empty());
}

TEST_F(SafetensorsTest, RefusesBadInputToWriteAndLeavesTheOldFile) {
  const std::string path = dir_.File("keep.safetensors");
  TensorFile good;
  good.tensors = {{"x", torch::ones({2})}};
  ASSERT_TRUE(WriteSafetensors(path, good).ok());
  const std::string before = ReadBytes(path);

  const struct {
    TensorFile file;
    std::string reason;
  } cases[] = {
      {{{{"x", torch::ones({1})}, {"x", torch::ones({1})}}, {}}, "duplicate tensor name \"x\""},
      {{{{"__metadata__", torch::ones({1})}}, {}}, "reserved"},
      {{{{"c", torch::ones({1}, torch::kComplexFloat)}}, {}}, "no safetensors dtype"},
      {{{{"u", torch::Tensor()}}, {}}, "tensor \"u\" is undefined"},
      {{{{"s", torch::eye(2).to_sparse()}}, {}}, "not a dense tensor"},
  };
  for (const auto& c : cases) {
    const core::Status status = WriteSafetensors(path, c.file);
    EXPECT_EQ(status.code(), core::Code::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(c.reason));
  }
  EXPECT_EQ(ReadBytes(path), before);
  EXPECT_EQ(dir_.List(), (std::set<std::string>{"keep.safetensors"}));

  // A successful write replaces the file whole.
  TensorFile next;
  next.tensors = {{"y", torch::zeros({3}, torch::kInt64)}};
  ASSERT_TRUE(WriteSafetensors(path, next).ok());
  auto read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok());
  ExpectSameTensors(next.tensors, read->tensors);
  EXPECT_EQ(dir_.List(), (std::set<std::string>{"keep.safetensors"}));
}

TEST_F(SafetensorsTest, ReplacesAGivenDigestWithTheRealOne) {
  TensorFile file;
  file.tensors = {{"x", torch::ones({2})}};
  file.metadata[kTensorSha256Key] = "stale";
  ASSERT_TRUE(WriteSafetensors(dir_.File("f"), file).ok());
  auto read = ReadSafetensors(dir_.File("f"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->metadata.at(kTensorSha256Key).size(), 64u);
}

}  // namespace
}  // namespace vjepa::checkpoint
