#include "tests/tls/test_certificates.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace glm4v::testing {

absl::StatusOr<std::string> MakeTestCertificates(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/certs-", name);
  const std::string command =
      absl::StrCat("bash tests/tls/make_test_certs.sh '", dir, "' 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed (is openssl installed?)"));
  }
  return dir;
}

}  // namespace glm4v::testing
