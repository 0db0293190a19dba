#include "services/trainer/checkpoint/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace vjepa::checkpoint {
namespace {

struct Vector {
  std::string message;
  const char* digest;
};

// FIPS 180-2 appendix B and the NIST example values, plus lengths around the padding boundary.
const Vector kVectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlm"
     "nopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {std::string(55, 'a'), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {std::string(56, 'a'), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {std::string(63, 'a'), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
    {std::string(64, 'a'), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    {std::string(65, 'a'), "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
};

TEST(Sha256Test, MatchesTestVectorsInOneUpdate) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(Sha256Hex(v.message), v.digest) << "message of " << v.message.size() << " bytes";
  }
}

TEST(Sha256Test, ChunkingDoesNotChangeTheDigest) {
  for (const Vector& v : kVectors) {
    for (const size_t chunk :
         {size_t{1}, size_t{3}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}}) {
      Sha256 sha;
      for (size_t at = 0; at < v.message.size(); at += chunk) {
        sha.Update(std::string_view(v.message).substr(at, chunk));
      }
      EXPECT_EQ(ToHex(sha.Finish()), v.digest)
          << "message of " << v.message.size() << " bytes in chunks of " << chunk;
    }
  }
}

TEST(Sha256Test, FinishResetsForTheNextMessage) {
  Sha256 sha;
  sha.Update("some other message");
  sha.Finish();
  sha.Update("abc");
  EXPECT_EQ(ToHex(sha.Finish()), kVectors[1].digest);
  EXPECT_EQ(ToHex(sha.Finish()), kVectors[0].digest);
}

}  // namespace
}  // namespace vjepa::checkpoint
