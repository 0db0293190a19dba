// Test support shared by unit and multi-process tests: scratch directories, whole-file reads and
// writes, and a throwaway certificate authority.
#ifndef VJEPA_COMMON_TESTING_TESTING_H_
#define VJEPA_COMMON_TESTING_TESTING_H_

#include <string>

namespace vjepa::testing {

// The bytes of the file at `path` ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Replaces the file at `path` with `data`.
void WriteFile(const std::string& path, const std::string& data);

// A fresh temporary directory, removed by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// Makes, with the openssl CLI, in `dir`: ca.pem/ca.key (a CA), server.pem/server.key (for
// 127.0.0.1 and localhost, signed by the CA) and client.pem/client.key (CN `client_name`, signed
// by the CA). Returns false (details in dir/openssl.log) when openssl fails.
bool MakeTestCertificates(const std::string& dir, const std::string& client_name = "client");

}  // namespace vjepa::testing

#endif  // VJEPA_COMMON_TESTING_TESTING_H_
