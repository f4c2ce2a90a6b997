// Runs make_test_certs.sh (a test's data) into a fresh directory under the test's temp dir.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace glm4v::testing {

// The directory holding ca.pem, server.pem/key, client.pem/key, other_ca.pem,
// other_client.pem/key, other_server.pem/key and expired_server.pem/key.
absl::StatusOr<std::string> MakeTestCertificates(const std::string& name);

}  // namespace glm4v::testing
