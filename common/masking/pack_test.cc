#include "common/masking/pack.h"

#include <string>
#include <vector>

#include "common/masking/mask.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::masking {
namespace {

using ::testing::ElementsAre;

TEST(PackTest, ElementBytesFollowTheLargestIndex) {
  EXPECT_EQ(IndexElementBytes({}), 2);
  EXPECT_EQ(IndexElementBytes({0, 1567, 32767}), 2);
  EXPECT_EQ(IndexElementBytes({0, 32768}), 4);
  EXPECT_EQ(IndexElementBytes({0, 5}, {40000}), 4);
  EXPECT_EQ(IndexElementBytes({-1}), 4);
}

TEST(PackTest, LittleEndianBytes) {
  auto two = PackIndices({1, 258, 32767}, 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, std::string("\x01\x00\x02\x01\xff\x7f", 6));
  auto four = PackIndices({1, 0x01020304}, 4);
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(*four, std::string("\x01\x00\x00\x00\x04\x03\x02\x01", 8));
}

TEST(PackTest, RoundTrip) {
  const std::vector<int32_t> small = {0, 7, 1567, 32767};
  const std::vector<int32_t> large = {0, 32768, 65535, 4607, 1 << 20};
  for (int bytes : {2, 4}) {
    auto packed = PackIndices(small, bytes);
    ASSERT_TRUE(packed.ok());
    EXPECT_EQ(packed->size(), small.size() * bytes);
    auto back = UnpackIndices(*packed, bytes, 32768);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, small);
  }
  auto packed = PackIndices(large, 4);
  ASSERT_TRUE(packed.ok());
  auto back = UnpackIndices(*packed, 4, (1 << 20) + 1);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, large);
}

TEST(PackTest, Errors) {
  EXPECT_EQ(PackIndices({1}, 3).status().message(),
            "mask indices: element_bytes must be 2 or 4, got 3");
  EXPECT_EQ(PackIndices({40000}, 2).status().message(),
            "mask indices: an index outside [0, 32767] does not fit in 2 bytes");
  EXPECT_EQ(UnpackIndices(std::string(3, '\0'), 2, 10).status().message(),
            "mask indices: 3 bytes are not a whole number of 2-byte elements");
  EXPECT_EQ(UnpackIndices(std::string("\x00\x00\x0a\x00", 4), 2, 10).status().message(),
            "mask indices: element 1 is 10, outside [0, 10)");
  EXPECT_EQ(UnpackIndices(std::string("\xff\xff", 2), 2, 10).status().message(),
            "mask indices: element 0 is -1, outside [0, 10)");
  EXPECT_EQ(UnpackIndices(std::string(4, '\0'), 1, 10).status().message(),
            "mask indices: element_bytes must be 2 or 4, got 1");
}

BatchMasks Generated(Grid grid, MaskType type, int batch) {
  MaskConfig c;
  c.type = type;
  if (type == MaskType::kMultiblock3d) c.num_blocks = 2, c.spatial_scale = {0.7, 0.7};
  auto g = MakeMaskGenerator(c, grid);
  EXPECT_TRUE(g.ok()) << g.status();
  auto m = (*g)->Generate({1, 2, 3}, 0, batch);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

TEST(PackTest, BatchMasksRoundTripInt16At224) {
  const BatchMasks m = Generated({8, 14, 14}, MaskType::kMultiblock3d, 24);
  const PackedMasks p = PackMasks(m);
  EXPECT_EQ(p.element_bytes, 2);
  EXPECT_EQ(p.context.size(), 24u * m.context_length * 2);
  EXPECT_EQ(p.target.size(), 24u * m.target_length * 2);
  auto back = UnpackMasks(p, 24, 1568);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->context, m.context);
  EXPECT_EQ(back->target, m.target);
  EXPECT_EQ(back->context_length, m.context_length);
  EXPECT_EQ(back->target_length, m.target_length);
}

TEST(PackTest, BatchMasksRoundTripInt32AboveInt16) {
  // 16 × 48 × 48 = 36,864 tokens: the last indices need 4 bytes.
  const BatchMasks m = Generated({16, 48, 48}, MaskType::kRandomTube, 2);
  const PackedMasks p = PackMasks(m);
  EXPECT_EQ(p.element_bytes, 4);
  auto back = UnpackMasks(p, 2, 36864);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->context, m.context);
  EXPECT_EQ(back->target, m.target);
}

TEST(PackTest, UnpackMasksChecksWhatCameFromOutside) {
  PackedMasks p;
  p.batch = 2;
  p.context_length = 2;
  p.target_length = 1;
  p.element_bytes = 2;
  p.context = *PackIndices({1, 2, 3, 4}, 2);
  p.target = *PackIndices({0, 0}, 2);
  ASSERT_TRUE(UnpackMasks(p, 2, 10).ok());
  EXPECT_EQ(UnpackMasks(p, 3, 10).status().message(), "mask indices: batch 2, expected 3");
  PackedMasks short_bytes = p;
  short_bytes.context.pop_back();
  EXPECT_EQ(UnpackMasks(short_bytes, 2, 10).status().message(),
            "mask indices: context has 7 bytes, expected 8 (2 × 2 × 2)");
  PackedMasks descending = p;
  descending.context = *PackIndices({1, 2, 4, 3}, 2);
  EXPECT_EQ(UnpackMasks(descending, 2, 10).status().message(),
            "mask indices: context row 1 is not strictly ascending at 1 (4 then 3)");
  PackedMasks long_rows = p;
  long_rows.target_length = 11;
  EXPECT_EQ(UnpackMasks(long_rows, 2, 10).status().message(),
            "mask indices: target length 11 is outside [0, 10]");
  PackedMasks out_of_range = p;
  out_of_range.context = *PackIndices({1, 2, 3, 12}, 2);
  EXPECT_EQ(UnpackMasks(out_of_range, 2, 10).status().message(),
            "mask indices: element 3 is 12, outside [0, 10)");
  EXPECT_THAT(UnpackMasks(p, 2, 10)->context, ElementsAre(1, 2, 3, 4));
}

}  // namespace
}  // namespace vjepa::masking
