// Shared pieces of the coordinator's unit tests.
#ifndef VJEPA_SERVICES_COORDINATOR_TEST_UTIL_H_
#define VJEPA_SERVICES_COORDINATOR_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("vjepa-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_TEST_UTIL_H_
