// What a file is now, for noticing that it changed: inode, size and modification time of each
// path ("" for one that cannot be stat'ed). A Kubernetes Secret update swaps the file behind a
// symlink (a new inode); an edit in place changes size or mtime.
#pragma once

#include <initializer_list>
#include <string>

namespace glm4v {

std::string FileIdentity(std::initializer_list<std::string> paths);

}  // namespace glm4v
