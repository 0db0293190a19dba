#include "bench/common/bench_util.h"

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace vjepa::bench {

namespace fs = std::filesystem;

bool ArgReader::Next() {
  if (++i_ >= argc_) return false;
  arg_ = argv_[i_];
  return true;
}

const char* ArgReader::Value(const char* flag) {
  const size_t n = std::strlen(flag);
  if (arg_ == flag && i_ + 1 < argc_) return argv_[++i_];
  if (arg_.size() > n && arg_.compare(0, n, flag) == 0 && arg_[n] == '=') {
    return argv_[i_] + n + 1;
  }
  return nullptr;
}

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::string DefaultVideoCache() {
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "/tmp", "/.cache/vjepa-train/bench-videos");
}

std::vector<std::string> FilesIn(const std::string& dir, std::error_code* ec) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, *ec)) {
    if (e.is_regular_file()) files.push_back(fs::absolute(e.path()).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status WriteManifest(const std::string& path, const std::vector<std::string>& files,
                           size_t rows) {
  std::ofstream out(path);
  for (size_t i = 0; i < rows; ++i) {
    out << fs::path(files[i % files.size()]).filename().string() << " 0\n";
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

}  // namespace vjepa::bench
