#include "services/common/file_identity.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace glm4v {

std::string FileIdentity(std::initializer_list<std::string> paths) {
  std::string identity;
  for (const std::string& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      absl::StrAppend(&identity, st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
    }
    identity += ";";
  }
  return identity;
}

}  // namespace glm4v
