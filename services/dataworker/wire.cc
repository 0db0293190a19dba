#include "services/dataworker/wire.h"

#include <string>
#include <utility>

#include "grpcpp/support/slice.h"

namespace vjepa::dataworker {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Field tags: (number << 3) | wire type.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kLengthDelimited = 2;
constexpr char Tag(int field, uint8_t type) { return static_cast<char>((field << 3) | type); }

// A slice over a std::string that it owns.
grpc::Slice OwnedSlice(std::string text) {
  auto* owned = new std::string(std::move(text));
  return grpc::Slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
}

}  // namespace

grpc::ByteBuffer HeaderMessage(const v1::BatchHeader& header) {
  std::string bytes;
  bytes.push_back(Tag(v1::BatchMessage::kHeaderFieldNumber, kLengthDelimited));
  const size_t size = header.ByteSizeLong();
  PutVarint(size, &bytes);
  const size_t prefix = bytes.size();
  bytes.resize(prefix + size);
  header.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&bytes[prefix]));
  grpc::Slice slice = OwnedSlice(std::move(bytes));
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer ClipMessage(int32_t sample, const ClipBuffer& clip) {
  const size_t tokens = clip ? clip->size() : 0;
  // ClipTokens: sample (omitted when 0, as proto3 does), tokens (omitted when empty).
  const uint64_t sample_varint = static_cast<uint64_t>(static_cast<int64_t>(sample));
  size_t inner = 0;
  if (sample != 0) inner += 1 + VarintSize(sample_varint);
  if (tokens > 0) inner += 1 + VarintSize(tokens) + tokens;
  std::string prefix;
  prefix.push_back(Tag(v1::BatchMessage::kClipFieldNumber, kLengthDelimited));
  PutVarint(inner, &prefix);
  if (sample != 0) {
    prefix.push_back(Tag(v1::ClipTokens::kSampleFieldNumber, kVarint));
    PutVarint(sample_varint, &prefix);
  }
  if (tokens == 0) {
    grpc::Slice only(prefix);
    return grpc::ByteBuffer(&only, 1);
  }
  prefix.push_back(Tag(v1::ClipTokens::kTokensFieldNumber, kLengthDelimited));
  PutVarint(tokens, &prefix);
  grpc::Slice slices[2] = {
      grpc::Slice(prefix),
      grpc::Slice(
          const_cast<char*>(clip->data()), tokens,
          [](void* p) { delete static_cast<ClipBuffer*>(p); }, new ClipBuffer(clip)),
  };
  return grpc::ByteBuffer(slices, 2);
}

}  // namespace vjepa::dataworker
