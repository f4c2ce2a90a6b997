#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace glm4v {
namespace {

using json = nlohmann::json;

// A header this large is certainly corrupt (real checkpoints use a few hundred KiB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status TensorError(const std::string& path, const std::string& name,
                         const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\": ", what));
}

// Reads a non-negative JSON integer into uint64 (rejects floats, negatives, booleans).
bool AsUnsigned(const json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

absl::StatusOr<TensorInfo> ParseEntry(const std::string& path, const std::string& name,
                                      const json& entry, uint64_t data_start, uint64_t file_size) {
  if (!entry.is_object()) return TensorError(path, name, "header entry is not an object");
  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return TensorError(path, name, "missing or non-string \"dtype\"");
  }
  absl::StatusOr<DType> dtype = DTypeFromSafetensorsName(dtype_it->get<std::string>());
  if (!dtype.ok()) return TensorError(path, name, std::string(dtype.status().message()));

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return TensorError(path, name, "missing or non-array \"shape\"");
  }
  Shape shape;
  uint64_t numel = 1;
  for (const json& d : *shape_it) {
    uint64_t dim;
    if (!AsUnsigned(d, &dim)) {
      return TensorError(path, name, absl::StrCat("bad dimension ", d.dump(), " in shape"));
    }
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / dim)) {
      return TensorError(path, name, "shape overflows");
    }
    numel *= dim;
    shape.push_back(static_cast<int64_t>(dim));
  }

  auto off_it = entry.find("data_offsets");
  uint64_t begin = 0, end = 0;
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
      !AsUnsigned((*off_it)[0], &begin) || !AsUnsigned((*off_it)[1], &end)) {
    return TensorError(path, name, "\"data_offsets\" must be [begin, end] non-negative integers");
  }
  if (end < begin) {
    return TensorError(path, name, absl::StrCat("data_offsets end ", end, " < begin ", begin));
  }
  if (end > file_size - data_start) {
    return TensorError(path, name,
                       absl::StrCat("data_offsets [", begin, ",", end, "] beyond the ",
                                    file_size - data_start, "-byte data section"));
  }
  const uint64_t expected = numel * DTypeSize(*dtype);
  if (end - begin != expected) {
    return TensorError(path, name,
                       absl::StrCat("byte span ", end - begin, " != ", expected, " for ",
                                    std::string(DTypeName(*dtype)), ShapeToString(shape)));
  }
  TensorInfo info;
  info.name = name;
  info.dtype = *dtype;
  info.shape = std::move(shape);
  info.data_offset = static_cast<size_t>(data_start + begin);
  info.nbytes = static_cast<size_t>(expected);
  return info;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

absl::StatusOr<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": fstat: ", std::strerror(err)));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return Invalid(
        path, absl::StrCat("file is ", file_size, " bytes, shorter than the 8-byte header length"));
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);  // the mapping stays valid after close
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap: ", std::strerror(map_err)));
  }
  // Own the mapping from here so every error path unmaps it.
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_ = map;
  file->map_size_ = file_size;
  file->self_ = file;

  const auto* bytes = static_cast<const unsigned char*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxHeaderBytes) {
    return Invalid(path, absl::StrCat("header length ", header_len, " exceeds the ",
                                      kMaxHeaderBytes, "-byte cap"));
  }
  if (header_len > file_size - 8) {
    return Invalid(
        path, absl::StrCat("header length ", header_len, " exceeds the file size ", file_size));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header = json::parse(header_begin, header_begin + header_len, nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded()) return Invalid(path, "header is not valid JSON");
  if (!header.is_object()) return Invalid(path, "header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Invalid(path, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          return Invalid(path,
                         absl::StrCat("__metadata__ value for \"", m.key(), "\" is not a string"));
        }
        file->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(TensorInfo info, ParseEntry(path, it.key(), *it, data_start, file_size));
    file->tensors_.emplace(it.key(), std::move(info));
  }

  // Non-overlap: sort spans by start and compare neighbours (empty spans cannot overlap).
  std::vector<const TensorInfo*> spans;
  for (const auto& [name, info] : file->tensors_) {
    if (info.nbytes > 0) spans.push_back(&info);
  }
  std::sort(spans.begin(), spans.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->data_offset < b->data_offset;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i]->data_offset < spans[i - 1]->data_offset + spans[i - 1]->nbytes) {
      return TensorError(path, spans[i]->name,
                         absl::StrCat("data overlaps tensor \"", spans[i - 1]->name, "\""));
    }
  }
  return file;
}

absl::StatusOr<Tensor> SafetensorsFile::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor \"", name, "\""));
  }
  const TensorInfo& info = it->second;
  std::shared_ptr<const SafetensorsFile> self = self_.lock();
  // The mapping is PROT_READ: writing through the returned tensor faults; Clone() to modify.
  void* data = static_cast<char*>(map_) + info.data_offset;
  return Tensor::Borrow(info.dtype, info.shape, data, std::move(self));
}

void SafetensorsFile::ReleasePages(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end() || map_ == nullptr) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(map_) + it->second.data_offset;
  const uintptr_t end = begin + it->second.nbytes;
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  // A read-only private file mapping: MADV_DONTNEED unmaps the pages; the file backs them.
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  Checkpoint ckpt;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (!FileExists(index_path)) {
    const std::string single = dir + "/model.safetensors";
    if (!FileExists(single)) {
      return absl::NotFoundError(absl::StrCat(dir, ": neither model.safetensors.index.json nor ",
                                              "model.safetensors exists"));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::Open(single));
    for (const auto& [name, info] : file->tensors()) ckpt.by_tensor_[name] = file;
    return ckpt;
  }

  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(index_path));
  json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) return Invalid(index_path, "not valid JSON");
  if (!index.is_object()) return Invalid(index_path, "not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) {
    return Invalid(index_path, "missing or non-object \"weight_map\"");
  }
  if (wm->empty()) return Invalid(index_path, "\"weight_map\" is empty");

  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;  // opened once each
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) {
      return Invalid(index_path,
                     absl::StrCat("weight_map entry for \"", it.key(), "\" is not a string"));
    }
    const std::string shard = it->get<std::string>();
    // Shards are siblings of the index; refuse paths that would escape the directory.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return Invalid(index_path,
                     absl::StrCat("tensor \"", it.key(), "\": bad shard name \"", shard, "\""));
    }
    auto sit = shards.find(shard);
    if (sit == shards.end()) {
      const std::string shard_path = dir + "/" + shard;
      if (!FileExists(shard_path)) {
        return absl::NotFoundError(absl::StrCat(index_path, ": shard ", shard_path,
                                                " (for tensor \"", it.key(), "\") does not exist"));
      }
      ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::Open(shard_path));
      sit = shards.emplace(shard, std::move(file)).first;
    }
    if (!sit->second->Has(it.key())) {
      return absl::NotFoundError(absl::StrCat(index_path, ": tensor \"", it.key(),
                                              "\" is mapped to ", sit->second->path(),
                                              " but that shard lacks it"));
    }
    ckpt.by_tensor_[it.key()] = sit->second;
  }
  return ckpt;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(by_tensor_.size());
  for (const auto& [name, file] : by_tensor_) names.push_back(name);
  return names;
}

bool Checkpoint::Has(const std::string& name) const { return by_tensor_.count(name) > 0; }

absl::StatusOr<TensorInfo> Checkpoint::Info(const std::string& name) const {
  auto it = by_tensor_.find(name);
  if (it == by_tensor_.end()) {
    return absl::NotFoundError(absl::StrCat("checkpoint has no tensor \"", name, "\""));
  }
  return it->second->tensors().at(name);
}

void Checkpoint::ReleasePages(const std::string& name) const {
  auto it = by_tensor_.find(name);
  if (it != by_tensor_.end()) it->second->ReleasePages(name);
}

absl::StatusOr<Tensor> Checkpoint::Get(const std::string& name) const {
  auto it = by_tensor_.find(name);
  if (it == by_tensor_.end()) {
    return absl::NotFoundError(absl::StrCat("checkpoint has no tensor \"", name, "\""));
  }
  return it->second->Get(name);
}

absl::StatusOr<Tensor> Checkpoint::GetF32(const std::string& name,
                                          const Shape& expected_shape) const {
  ASSIGN_OR_RETURN(Tensor t, Get(name));
  const std::string& path = by_tensor_.at(name)->path();
  if (t.shape() != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\": expected shape ",
                                                   ShapeToString(expected_shape), ", got ",
                                                   ShapeToString(t.shape())));
  }
  if (t.dtype() != DType::kF32 && t.dtype() != DType::kBF16 && t.dtype() != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name,
                                                   "\": expected a float dtype, got ",
                                                   std::string(DTypeName(t.dtype()))));
  }
  return t.ToF32();
}

absl::StatusOr<Tensor> Checkpoint::GetRows(const std::string& name, int64_t begin,
                                           int64_t end) const {
  ASSIGN_OR_RETURN(Tensor t, Get(name));
  if (t.ndim() == 0 || begin < 0 || end < begin || end > t.dim(0)) {
    return absl::OutOfRangeError(absl::StrCat(by_tensor_.at(name)->path(), ": tensor \"", name,
                                              "\": rows [", begin, ",", end, ") out of range for ",
                                              t.DebugString()));
  }
  return t.SliceRows(begin, end);
}

}  // namespace glm4v
