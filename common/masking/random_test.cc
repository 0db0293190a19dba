#include "common/masking/random.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::masking {
namespace {

using ::testing::ElementsAre;

struct Kat {
  std::array<uint32_t, 4> counter;
  std::array<uint32_t, 2> key;
  std::array<uint32_t, 4> want;
};

// Random123's known-answer vectors for Philox4x32-10 (its tests/kat_vectors).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) EXPECT_EQ(Philox4x32_10(k.counter, k.key), k.want);
}

// Root(seed) draws Philox(seed, counter n) block by block, words in order.
TEST(RandomStreamTest, RootIsPhiloxKeyedBySeed) {
  RandomStream zero = RandomStream::Root(0);
  EXPECT_THAT(
      (std::vector<uint32_t>{zero.NextU32(), zero.NextU32(), zero.NextU32(), zero.NextU32()}),
      ElementsAre(0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8));
  const uint64_t seed = 0x299f31d0a4093822ULL;
  RandomStream s = RandomStream::Root(seed);
  std::vector<uint32_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(s.NextU32());
  const auto b0 = Philox4x32_10({0, 0, 0, 0}, {0xa4093822, 0x299f31d0});
  const auto b1 = Philox4x32_10({1, 0, 0, 0}, {0xa4093822, 0x299f31d0});
  EXPECT_THAT(got, ElementsAre(b0[0], b0[1], b0[2], b0[3], b1[0], b1[1], b1[2], b1[3]));
}

// Fixed outputs of the derivation chain and of each distribution: a change of the algorithm
// changes every batch's bytes and must be deliberate.
TEST(RandomStreamTest, KnownValues) {
  RandomStream s = RandomStream::ForBatch(234, DrawKind::kMaskPosition, 3, 17).Derive(5);
  EXPECT_EQ(s.key(), 0xd5a4d5bb69a13073ULL);
  EXPECT_EQ(s.NextU32(), 0x6f002d29u);
  EXPECT_EQ(s.NextU64(), 0x2770992b0a5ef497ULL);
  EXPECT_DOUBLE_EQ(s.Uniform(), 0.86730752717035531);
  EXPECT_EQ(s.UniformInt(-10, 10), 0);
  EXPECT_THAT(s.SampleWithoutReplacement(10, 4), ElementsAre(4, 7, 5, 8));
  EXPECT_EQ(RandomStream::ForEpoch(234, DrawKind::kEpochPermutation, 0).key(),
            0x4512bba82a7b62c7ULL);
}

TEST(RandomStreamTest, UnitIntervalUses53BitsAndStaysBelowOne) {
  EXPECT_EQ(UnitInterval(0), 0.0);
  EXPECT_EQ(UnitInterval(uint64_t{1} << 11), std::ldexp(1.0, -53));
  EXPECT_EQ(UnitInterval(uint64_t{1} << 10), 0.0);  // below the 53 kept bits
  EXPECT_EQ(UnitInterval(std::numeric_limits<uint64_t>::max()), 1.0 - std::ldexp(1.0, -53));
  EXPECT_LT(UnitInterval(std::numeric_limits<uint64_t>::max()), 1.0);
  // The lowest of the 53 bits varies in real draws.
  RandomStream s = RandomStream::Root(7);
  int odd = 0;
  for (int i = 0; i < 1000; ++i) {
    const double u = s.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    odd += static_cast<int64_t>(std::ldexp(u, 53)) % 2;
  }
  EXPECT_GT(odd, 400);
  EXPECT_LT(odd, 600);
}

// Pearson chi-square of `counts` against equal expected counts.
double ChiSquare(const std::vector<int>& counts) {
  double total = 0;
  for (int c : counts) total += c;
  const double expected = total / static_cast<double>(counts.size());
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  return chi2;
}

TEST(RandomStreamTest, UniformIsUniform) {
  RandomStream s = RandomStream::Root(1);
  std::vector<int> bins(20);
  double sum = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const double u = s.Uniform();
    sum += u;
    ++bins[static_cast<int>(u * 20)];
  }
  // 19 degrees of freedom: mean 19, P(chi2 > 50) ≈ 1e-4.
  EXPECT_LT(ChiSquare(bins), 50.0);
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

TEST(RandomStreamTest, UniformIntIsInclusiveAndUniform) {
  RandomStream s = RandomStream::Root(2);
  std::vector<int> counts(7);
  for (int i = 0; i < 14000; ++i) {
    const int64_t x = s.UniformInt(-3, 3);
    ASSERT_GE(x, -3);
    ASSERT_LE(x, 3);
    ++counts[x + 3];
  }
  // 6 degrees of freedom: P(chi2 > 30) ≈ 4e-5.
  EXPECT_LT(ChiSquare(counts), 30.0);
  for (int c : counts) EXPECT_GT(c, 1700);
}

TEST(RandomStreamTest, UniformIntHasNoModuloBias) {
  // [lo, lo + 3·2^62): x mod 3·2^62 would put half of all values in the first third.
  RandomStream s = RandomStream::Root(3);
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t third = int64_t{1} << 62;
  const int64_t hi = third - 1;  // lo + 3·2^62 − 1
  int first_third = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int64_t x = s.UniformInt(lo, hi);
    ASSERT_LE(x, hi);
    first_third += x < lo + third;
  }
  EXPECT_NEAR(static_cast<double>(first_third) / n, 1.0 / 3.0, 0.015);
}

TEST(RandomStreamTest, UniformIntEdgeCases) {
  RandomStream s = RandomStream::Root(4);
  RandomStream copy = s;
  EXPECT_EQ(s.UniformInt(5, 5), 5);
  EXPECT_EQ(s.UniformInt(5, 4), 5);
  EXPECT_EQ(s.NextU32(), copy.NextU32());  // neither drew anything
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t hi = std::numeric_limits<int64_t>::max();
  int negative = 0;
  for (int i = 0; i < 1000; ++i) negative += s.UniformInt(lo, hi) < 0;
  EXPECT_GT(negative, 400);
  EXPECT_LT(negative, 600);
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(s.UniformInt(hi - 1, hi));
  EXPECT_EQ(seen, (std::set<int64_t>{hi - 1, hi}));
}

TEST(RandomStreamTest, BernoulliMatchesProbability) {
  RandomStream s = RandomStream::Root(5);
  int heads = 0, never = 0, always = 0;
  for (int i = 0; i < 10000; ++i) {
    heads += s.Bernoulli(0.25);
    never += s.Bernoulli(0.0);
    always += s.Bernoulli(1.0);
  }
  EXPECT_NEAR(heads / 10000.0, 0.25, 0.015);
  EXPECT_EQ(never, 0);
  EXPECT_EQ(always, 10000);
}

TEST(RandomStreamTest, SampleWithoutReplacementIsDistinctAndUniform) {
  RandomStream s = RandomStream::Root(6);
  std::vector<int> counts(10);
  for (int i = 0; i < 10000; ++i) {
    const std::vector<int32_t> pick = s.SampleWithoutReplacement(10, 3);
    ASSERT_EQ(pick.size(), 3u);
    ASSERT_EQ(std::set<int32_t>(pick.begin(), pick.end()).size(), 3u);
    for (int32_t p : pick) {
      ASSERT_GE(p, 0);
      ASSERT_LT(p, 10);
      ++counts[p];
    }
  }
  EXPECT_LT(ChiSquare(counts), 35.0);  // 9 dof
  EXPECT_EQ(s.SampleWithoutReplacement(4, 9).size(), 4u);
  EXPECT_TRUE(s.SampleWithoutReplacement(4, -1).empty());
  EXPECT_TRUE(s.SampleWithoutReplacement(0, 3).empty());
}

// Sample correlation of the Uniform() sequences of two streams.
double Correlation(RandomStream a, RandomStream b, int n) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (int i = 0; i < n; ++i) {
    const double x = a.Uniform(), y = b.Uniform();
    sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
  }
  const double cov = sab / n - (sa / n) * (sb / n);
  return cov / std::sqrt((saa / n - sa * sa / n / n) * (sbb / n - sb * sb / n / n));
}

TEST(RandomStreamTest, NeighbouringKeysAreIndependent) {
  const RandomStream base = RandomStream::ForBatch(234, DrawKind::kCrop, 0, 0);
  const RandomStream neighbours[] = {
      RandomStream::ForBatch(235, DrawKind::kCrop, 0, 0),
      RandomStream::ForBatch(234, DrawKind::kFlip, 0, 0),
      RandomStream::ForBatch(234, DrawKind::kCrop, 1, 0),
      RandomStream::ForBatch(234, DrawKind::kCrop, 0, 1),
      base.Derive(0),
      RandomStream::ForEpoch(234, DrawKind::kCrop, 0),
  };
  // 4000 pairs: the correlation of independent streams has standard deviation ≈ 0.016.
  for (const RandomStream& other : neighbours) {
    EXPECT_NE(other.key(), base.key());
    EXPECT_LT(std::abs(Correlation(base, other, 4000)), 0.06);
  }
}

TEST(RandomStreamTest, KeysOfABatchGridAreDistinct) {
  std::set<uint64_t> keys, firsts;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    for (int64_t batch = 0; batch < 250; ++batch) {
      for (uint64_t sample = 0; sample < 4; ++sample) {
        RandomStream s =
            RandomStream::ForBatch(1, DrawKind::kMaskPosition, epoch, batch).Derive(sample);
        keys.insert(s.key());
        firsts.insert(s.NextU64());
      }
    }
  }
  EXPECT_EQ(keys.size(), 4000u);
  EXPECT_EQ(firsts.size(), 4000u);
}

TEST(RandomStreamTest, DeriveIgnoresWhatTheParentDrew) {
  RandomStream parent = RandomStream::ForBatch(9, DrawKind::kClipStart, 2, 3);
  const uint64_t fresh = parent.Derive(11).NextU64();
  for (int i = 0; i < 5; ++i) parent.NextU32();
  EXPECT_EQ(parent.Derive(11).NextU64(), fresh);
  // A copy continues from the same point, independently of the original.
  RandomStream copy = parent;
  EXPECT_EQ(copy.NextU64(), parent.NextU64());
}

}  // namespace
}  // namespace vjepa::masking
