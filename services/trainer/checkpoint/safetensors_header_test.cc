#include "services/trainer/checkpoint/safetensors_header.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/sha256.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::SafetensorsBytes;
using testing::ScratchDir;
using testing::WriteBytes;

TEST(DTypeTest, NamesAndSizesFollowTheFormat) {
  const struct {
    const char* name;
    size_t size;
  } cases[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
               {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
               {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (const auto& c : cases) {
    const auto dtype = DTypeFromName(c.name);
    ASSERT_TRUE(dtype.has_value()) << c.name;
    EXPECT_STREQ(DTypeName(*dtype), c.name);
    EXPECT_EQ(DTypeSize(*dtype), c.size) << c.name;
  }
  EXPECT_FALSE(DTypeFromName("f32").has_value());
  EXPECT_FALSE(DTypeFromName("F128").has_value());
}

TEST(SafetensorsHeaderTest, SerializesCompactPaddedJsonWithMetadataFirst) {
  std::vector<TensorInfo> tensors = {{"w", DType::kF32, {2, 3}, 0, 24},
                                     {"s", DType::kI64, {}, 24, 32}};
  auto json = SerializeSafetensorsHeader(tensors, {{"k", "vv"}});
  ASSERT_TRUE(json.ok()) << json.status();
  const std::string expected =
      "{\"__metadata__\":{\"k\":\"vv\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]}}";
  ASSERT_EQ(expected.size(), 137u);
  EXPECT_EQ(*json, expected + std::string(7, ' '));

  auto header = ParseSafetensorsHeader(*json, 32, "mem");
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 2u);
  EXPECT_EQ(header->tensors[0].name, "w");
  EXPECT_EQ(header->tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(header->tensors[1].dtype, DType::kI64);
  EXPECT_TRUE(header->tensors[1].shape.empty());
  EXPECT_EQ(header->metadata.at("k"), "vv");
}

TEST(SafetensorsHeaderTest, SerializeRefusesDuplicateAndReservedNames) {
  auto dup =
      SerializeSafetensorsHeader({{"a", DType::kU8, {1}, 0, 1}, {"a", DType::kU8, {1}, 1, 2}}, {});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), core::Code::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("duplicate tensor name \"a\""));
  auto reserved = SerializeSafetensorsHeader({{"__metadata__", DType::kU8, {1}, 0, 1}}, {});
  ASSERT_FALSE(reserved.ok());
  EXPECT_THAT(reserved.status().message(), HasSubstr("reserved"));
}

TEST(SafetensorsHeaderTest, AcceptsEmptyAndZeroSizedTensors) {
  const std::string json =
      "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[4,4]},"
      "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"z\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]}}";
  auto header = ParseSafetensorsHeader(json, 4, "mem");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->tensors.size(), 3u);
  auto empty = ParseSafetensorsHeader("{}", 0, "mem");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->tensors.empty());
}

TEST(SafetensorsHeaderTest, RefusesInconsistentHeadersAsDataLoss) {
  auto t = [](const std::string& name, const std::string& dtype, const std::string& shape,
              const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  const struct {
    std::string json;
    uint64_t data_size;
    std::string reason;
  } cases[] = {
      {"[]", 0, "does not start with '{'"},
      {" {}", 0, "does not start with '{'"},
      {"{\"a\":", 0, "bad header"},
      {"{" + t("a", "F32", "[2]", "[0,8]") + "," + t("a", "F32", "[2]", "[8,16]") + "}", 16,
       "duplicate key \"a\""},
      {"{" + t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[2]", "[12,20]") + "}", 20,
       "tensor \"b\" begins at 12 but tensor \"a\" ends at 8 (gap)"},
      {"{" + t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[2]", "[4,12]") + "}", 12,
       "tensor \"b\" begins at 4 but tensor \"a\" ends at 8 (overlap)"},
      {"{" + t("a", "F32", "[2]", "[4,12]") + "}", 12, "begins at 4 but the start of the data"},
      {"{" + t("a", "F32", "[2]", "[0,8]") + "}", 10, "(trailing bytes)"},
      {"{" + t("a", "F32", "[2]", "[0,8]") + "}", 6, "(file truncated)"},
      {"{" + t("a", "F32", "[3]", "[0,8]") + "}", 8,
       "F32 [3] (12 bytes) but data_offsets [0,8] span 8 bytes"},
      {"{" + t("a", "F64", "[2]", "[0,8]") + "}", 8, "(16 bytes)"},
      {"{" + t("a", "F33", "[2]", "[0,8]") + "}", 8, "unknown dtype \"F33\""},
      {"{" + t("a", "F32", "[-2]", "[0,8]") + "}", 8, "bad dimension -2"},
      {"{" + t("a", "F32", "[2.0]", "[0,8]") + "}", 8, "bad dimension 2.0"},
      {"{" + t("a", "F32", "2", "[0,8]") + "}", 8, "shape that is not an array"},
      {"{" + t("a", "F32", "[2]", "[8,0]") + "}", 8, "bad data_offsets [8,0]"},
      {"{" + t("a", "F32", "[2]", "[0]") + "}", 8, "not [begin, end]"},
      {"{" + t("a", "F32", "[4294967296,4294967296]", "[0,8]") + "}", 8, "overflows"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks dtype, shape or data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
       "keys besides"},
      {"{\"a\":[]}", 0, "tensor \"a\" is not an object"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "metadata \"k\" is not a string"},
      {"{\"__metadata__\":[]}", 0, "__metadata__ is not an object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[[2]]],\"data_offsets\":[0,8]}}", 8, "nesting"},
  };
  for (const auto& c : cases) {
    auto header = ParseSafetensorsHeader(c.json, c.data_size, "/some/file");
    ASSERT_FALSE(header.ok()) << c.json;
    EXPECT_EQ(header.status().code(), core::Code::kDataLoss) << c.json;
    EXPECT_THAT(header.status().message(), HasSubstr("safetensors file /some/file: ")) << c.json;
    EXPECT_THAT(header.status().message(), HasSubstr(c.reason)) << c.json;
  }
}

TEST(SafetensorsHeaderTest, EveryCorruptionOfAHeaderIsRefusedOrConsistent) {
  const std::string good =
      "{\"__metadata__\":{\"k\":\"v\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}";
  ASSERT_TRUE(ParseSafetensorsHeader(good, 9, "mem").ok());
  auto check = [](const std::string& json) {
    auto header = ParseSafetensorsHeader(json, 9, "mem");
    if (!header.ok()) {
      EXPECT_EQ(header.status().code(), core::Code::kDataLoss) << json;
      return;
    }
    // Whatever still parses must tile the 9 data bytes.
    uint64_t covered = 0;
    for (const TensorInfo& t : header->tensors) covered += t.end - t.begin;
    EXPECT_EQ(covered, 9u) << json;
  };
  const std::string replacements("\0\"{}[],:09-\\e \xff", 15);
  for (size_t i = 0; i < good.size(); ++i) {
    check(good.substr(0, i));
    for (const char c : replacements) {
      std::string changed = good;
      changed[i] = c;
      check(changed);
    }
  }
}

TEST(SafetensorsHeaderTest, ReadsTheHeaderOfAFileAndChecksItsLength) {
  ScratchDir dir;
  const std::string header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
  WriteBytes(dir.File("ok"), SafetensorsBytes(header, "xy"));
  auto read = ReadSafetensorsHeader(dir.File("ok"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data_start, 8 + header.size());
  EXPECT_EQ(read->data_size, 2u);

  const struct {
    std::string bytes;
    std::string reason;
  } cases[] = {
      {"", "0 bytes, too short for the 8-byte header length"},
      {std::string("\x05\0\0\0", 4), "4 bytes, too short"},
      {SafetensorsBytes(header, "xy").substr(0, 40), "is larger than the 32 bytes"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8) + "{}", "exceeds the limit"},
      {SafetensorsBytes(header, "x"), "(file truncated)"},
      {SafetensorsBytes(header, "xyz"), "(trailing bytes)"},
  };
  for (const auto& c : cases) {
    WriteBytes(dir.File("bad"), c.bytes);
    auto bad = ReadSafetensorsHeader(dir.File("bad"));
    ASSERT_FALSE(bad.ok()) << c.reason;
    EXPECT_EQ(bad.status().code(), core::Code::kDataLoss) << bad.status();
    EXPECT_THAT(bad.status().message(), HasSubstr(dir.File("bad"))) << c.reason;
    EXPECT_THAT(bad.status().message(), HasSubstr(c.reason)) << bad.status();
  }
  auto missing = ReadSafetensorsHeader(dir.File("missing"));
  EXPECT_EQ(missing.status().code(), core::Code::kNotFound) << missing.status();
}

TEST(SafetensorsHeaderTest, VerifiesTheDataDigestWithoutTensors) {
  ScratchDir dir;
  const std::string good = Sha256Hex("xy");
  auto header = [](const std::string& digest) {
    return "{\"__metadata__\":{\"tensor_sha256\":\"" + digest +
           "\"},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
  };
  WriteBytes(dir.File("f"), SafetensorsBytes(header(good), "xy"));
  EXPECT_TRUE(VerifySafetensorsFile(dir.File("f")).ok());

  WriteBytes(dir.File("f"), SafetensorsBytes(header(good), "xz"));
  auto altered = VerifySafetensorsFile(dir.File("f"));
  EXPECT_EQ(altered.code(), core::Code::kDataLoss);
  EXPECT_THAT(altered.message(), HasSubstr("does not match its SHA-256 (header says " + good));

  WriteBytes(dir.File("f"), SafetensorsBytes(header("ABC"), "xy"));
  auto bad_text = VerifySafetensorsFile(dir.File("f"));
  EXPECT_EQ(bad_text.code(), core::Code::kDataLoss);
  EXPECT_THAT(bad_text.message(), HasSubstr("is not 64 lower-case hex digits"));
}

TEST(FileSha256Test, DigestsTheWholeFile) {
  ScratchDir dir;
  WriteBytes(dir.File("abc"), "abc");
  EXPECT_EQ(*FileSha256(dir.File("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string big(3 << 20, 'q');  // several read chunks
  WriteBytes(dir.File("big"), big);
  EXPECT_EQ(*FileSha256(dir.File("big")), Sha256Hex(big));
  EXPECT_EQ(FileSha256(dir.File("none")).status().code(), core::Code::kNotFound);
  EXPECT_EQ(FileSha256(dir.path()).status().code(), core::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace vjepa::checkpoint
