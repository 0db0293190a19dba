#include "services/dataworker/batch/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/masking/random.h"
#include "openssl/evp.h"

namespace vjepa::dataworker {
namespace {

constexpr size_t kCachedPermutations = 4;

std::string ErrnoText(int err) { return std::strerror(err); }

// realpath(3) as a string, or the errno.
bool RealPath(const std::string& path, std::string* out, int* err) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    *err = errno;
    return false;
  }
  *out = buf;
  return true;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status ReadBounded(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", ErrnoText(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > kMaxManifestBytes) {
    ::close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": ", st.st_size, " bytes, over the limit of ", kMaxManifestBytes));
  }
  out->clear();
  out->reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": read: ", ErrnoText(err)));
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > static_cast<size_t>(kMaxManifestBytes)) {
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": over the limit of ", kMaxManifestBytes, " bytes"));
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return absl::OkStatus();
}

bool IsSeparator(char c) { return c == ' ' || c == '\t' || c == ','; }

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

absl::StatusOr<std::vector<ManifestEntry>> ParseManifest(std::string_view text_in,
                                                         std::string_view name_in) {
  const absl::string_view text = Av(text_in);
  const absl::string_view name = Av(name_in);
  std::vector<ManifestEntry> entries;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    const absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line_number > kMaxManifestLines) {
      return absl::ResourceExhaustedError(
          absl::StrCat(name, ": more than ", kMaxManifestLines, " lines"));
    }
    if (line.size() > kMaxManifestLineBytes) {
      return absl::InvalidArgumentError(absl::StrCat(name, " line ", line_number, ": ", line.size(),
                                                     " bytes, over the limit of ",
                                                     kMaxManifestLineBytes));
    }
    if (line.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " line ", line_number, ": contains a NUL byte"));
    }
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty()) continue;
    // The label is the last field; the path is everything before it (it may contain spaces).
    size_t cut = trimmed.size();
    while (cut > 0 && !IsSeparator(trimmed[cut - 1])) --cut;
    if (cut == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " line ", line_number, ": expected \"path label\", got \"", trimmed, "\""));
    }
    const absl::string_view label_text = trimmed.substr(cut);
    size_t path_end = cut;
    while (path_end > 0 && IsSeparator(trimmed[path_end - 1])) --path_end;
    const absl::string_view path = trimmed.substr(0, path_end);
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, " line ", line_number, ": empty path"));
    }
    ManifestEntry entry;
    if (!absl::SimpleAtoi(label_text, &entry.label)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " line ", line_number, ": label \"",
                                                     label_text, "\" is not an integer"));
    }
    entry.path = std::string(path);
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no entries"));
  }
  return entries;
}

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots) {
  if (roots.empty()) return absl::InvalidArgumentError("data roots: none given");
  DataRoots out;
  for (const std::string& root : roots) {
    std::string canonical;
    int err = 0;
    if (root.empty() || !RealPath(root, &canonical, &err)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data root \"", root, "\": ", root.empty() ? "empty" : ErrnoText(err)));
    }
    if (!IsDirectory(canonical)) {
      return absl::InvalidArgumentError(absl::StrCat("data root \"", root, "\": not a directory"));
    }
    if (std::find(out.roots_.begin(), out.roots_.end(), canonical) == out.roots_.end()) {
      out.roots_.push_back(canonical);
    }
  }
  return out;
}

bool DataRoots::Contains(const std::string& canonical) const {
  for (const std::string& root : roots_) {
    if (root == "/") return true;
    if (canonical == root) return true;
    if (canonical.size() > root.size() && canonical.compare(0, root.size(), root) == 0 &&
        canonical[root.size()] == '/') {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> DataRoots::Resolve(const std::string& path,
                                               const std::string& base) const {
  if (path.empty()) return BadVideo(BadVideoReason::kPathRefused, path, "empty path");
  if (path.find('\0') != std::string::npos) {
    return BadVideo(BadVideoReason::kPathRefused, path, "NUL byte in the path");
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return BadVideo(BadVideoReason::kPathRefused, path, "\"..\" component");
    }
  }
  std::string joined;
  if (path[0] == '/') {
    joined = path;
  } else {
    std::string base_canonical;
    int err = 0;
    if (base.empty() || !RealPath(base, &base_canonical, &err) || !Contains(base_canonical)) {
      return BadVideo(BadVideoReason::kPathRefused, path,
                      absl::StrCat("base directory \"", base, "\" is not inside a data root"));
    }
    joined = base_canonical + "/" + path;
  }
  std::string canonical;
  int err = 0;
  if (RealPath(joined, &canonical, &err)) {
    if (!Contains(canonical)) {
      return BadVideo(BadVideoReason::kPathRefused, path,
                      absl::StrCat("resolves to \"", canonical, "\", outside every data root"));
    }
    return canonical;
  }
  if (err == ELOOP) return BadVideo(BadVideoReason::kPathRefused, path, "symlink loop");
  if (err != ENOENT && err != ENOTDIR) {
    return BadVideo(BadVideoReason::kMissing, path, ErrnoText(err));
  }
  // Missing: canonicalise the longest existing prefix, so that a missing file behind a symlink
  // that leads outside is still refused (and its absence not revealed).
  std::string prefix = joined;
  std::string rest;
  while (prefix.size() > 1) {
    const size_t slash = prefix.rfind('/');
    if (slash == std::string::npos) break;
    const std::string name = prefix.substr(slash + 1);
    rest = rest.empty() ? name : name + "/" + rest;
    prefix = slash == 0 ? "/" : prefix.substr(0, slash);
    std::string resolved;
    int prefix_err = 0;
    if (RealPath(prefix, &resolved, &prefix_err)) {
      const std::string lexical = (resolved == "/" ? "" : resolved) + "/" + rest;
      if (Contains(lexical)) return BadVideo(BadVideoReason::kMissing, path, "no such file");
      break;
    }
    if (prefix_err == ELOOP) break;
  }
  return BadVideo(BadVideoReason::kPathRefused, path, "outside every data root");
}

absl::StatusOr<std::shared_ptr<Dataset>> Dataset::Load(const DataRoots& roots,
                                                       const std::string& manifest,
                                                       const std::string& root) {
  if (roots.roots().empty()) return absl::InvalidArgumentError("dataset: no data roots");
  absl::StatusOr<std::string> manifest_path = roots.Resolve(manifest, roots.roots()[0]);
  if (!manifest_path.ok()) {
    return absl::Status(manifest_path.status().code(),
                        absl::StrCat("manifest: ", manifest_path.status().message()));
  }
  std::string text;
  if (absl::Status s = ReadBounded(*manifest_path, &text); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("manifest ", s.message()));
  }
  absl::StatusOr<std::vector<ManifestEntry>> entries =
      ParseManifest(text, absl::StrCat("manifest ", manifest));
  if (!entries.ok()) return entries.status();

  std::string base;
  if (root.empty()) {
    base = DirName(*manifest_path);
  } else {
    absl::StatusOr<std::string> resolved = roots.Resolve(root, roots.roots()[0]);
    if (!resolved.ok()) {
      return absl::Status(resolved.status().code(),
                          absl::StrCat("dataset.root: ", resolved.status().message()));
    }
    if (!IsDirectory(*resolved)) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset.root \"", root, "\": not a directory"));
    }
    base = *resolved;
  }

  std::shared_ptr<Dataset> dataset(new Dataset());
  dataset->roots_ = roots;
  dataset->base_ = std::move(base);
  dataset->entries_ = std::move(entries).value();
  dataset->identity_.size = static_cast<int64_t>(dataset->entries_.size());
  dataset->identity_.manifest_sha256 = Sha256Hex(text);
  dataset->identity_.recipe_version = kRecipeVersion;
  return dataset;
}

absl::StatusOr<std::string> Dataset::ResolvedPath(int64_t sample) const {
  if (sample < 0 || sample >= size()) {
    return absl::OutOfRangeError(
        absl::StrCat("sample ", sample, " outside the manifest of ", size(), " entries"));
  }
  return roots_.Resolve(entries_[sample].path, base_);
}

std::vector<int64_t> EpochPermutation(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> perm(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  masking::RandomStream rng =
      masking::RandomStream::ForEpoch(seed, masking::DrawKind::kEpochPermutation, epoch);
  // Fisher-Yates from the front: slot i takes a uniform element of [i, n).
  for (int64_t i = 0; i + 1 < n; ++i) {
    const int64_t j = rng.UniformInt(i, n - 1);
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

std::shared_ptr<const std::vector<int64_t>> Dataset::Permutation(uint64_t seed,
                                                                 int64_t epoch) const {
  const std::pair<uint64_t, int64_t> key{seed, epoch};
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [k, perm] : permutations_) {
      if (k == key) return perm;
    }
  }
  // Computed outside the lock: two threads may both compute it, with identical results.
  auto perm = std::make_shared<const std::vector<int64_t>>(EpochPermutation(seed, epoch, size()));
  absl::MutexLock lock(&mu_);
  for (const auto& [k, existing] : permutations_) {
    if (k == key) return existing;
  }
  permutations_.emplace_back(key, perm);
  if (permutations_.size() > kCachedPermutations) permutations_.erase(permutations_.begin());
  return perm;
}

void Dataset::Quarantine(QuarantinedVideo video) {
  QuarantineListener listener;
  QuarantinedVideo reported;
  {
    absl::MutexLock lock(&mu_);
    if (quarantine_.contains(video.sample)) return;
    reported = video;
    quarantine_.emplace(video.sample, std::move(video));
    listener = listener_;
  }
  if (listener) listener(reported);
}

bool Dataset::IsQuarantined(int64_t sample) const {
  absl::MutexLock lock(&mu_);
  return quarantine_.contains(sample);
}

bool Dataset::IsQuarantinedWholeFile(int64_t sample) const {
  absl::MutexLock lock(&mu_);
  auto it = quarantine_.find(sample);
  return it != quarantine_.end() && it->second.whole_file;
}

std::vector<QuarantinedVideo> Dataset::Quarantined() const {
  std::vector<QuarantinedVideo> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(quarantine_.size());
    for (const auto& [sample, video] : quarantine_) out.push_back(video);
  }
  std::sort(out.begin(), out.end(), [](const QuarantinedVideo& a, const QuarantinedVideo& b) {
    return a.sample < b.sample;
  });
  return out;
}

int64_t Dataset::quarantine_version() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(quarantine_.size());
}

void Dataset::SetQuarantineListener(QuarantineListener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

}  // namespace vjepa::dataworker
