#include "common/rpc/token.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace vjepa::rpc {

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file,
                                         const char* env) {
  if (!token_file.empty() && !token.empty()) {
    return absl::InvalidArgumentError("give --token or --token_file, not both");
  }
  std::string resolved;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> text = ReadTextFile(token_file);
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--token_file ", text.status().message()));
    }
    resolved = std::string(absl::StripAsciiWhitespace(text->substr(0, text->find('\n'))));
  } else if (!token.empty()) {
    resolved = token;
  } else if (const char* value = env != nullptr ? std::getenv(env) : nullptr) {
    resolved = value;
  }
  if (resolved.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no token: give --token, --token_file",
                                                   env != nullptr ? absl::StrCat(" or $", env) : "",
                                                   " (a token of role worker)"));
  }
  return resolved;
}

}  // namespace vjepa::rpc
