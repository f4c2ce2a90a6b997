#include "worker/tp/step_message.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v::worker::tp {
namespace {

constexpr uint32_t kMagic = 0x31505447;  // "GTP1"

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void PutInts(const std::vector<int32_t>& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.size()));
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  }
  void PutBytes(const void* data, size_t n) { out_.append(static_cast<const char*>(data), n); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  template <typename T>
  absl::Status Get(T* value) {
    if (in_.size() < sizeof(T)) return Truncated();
    std::memcpy(value, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return absl::OkStatus();
  }
  absl::Status GetInts(std::vector<int32_t>* v) {
    uint32_t n = 0;
    RETURN_IF_ERROR(Get(&n));
    if (in_.size() / sizeof(int32_t) < n) return Truncated();
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), in_.data(), n * sizeof(int32_t));  // data() may be null
    in_.remove_prefix(n * sizeof(int32_t));
    return absl::OkStatus();
  }
  absl::Status GetBytes(void* data, size_t n) {
    if (in_.size() < n) return Truncated();
    if (n > 0) std::memcpy(data, in_.data(), n);
    in_.remove_prefix(n);
    return absl::OkStatus();
  }
  bool done() const { return in_.empty(); }

 private:
  static absl::Status Truncated() {
    return absl::InvalidArgumentError("step message truncated");
  }
  absl::string_view in_;
};

absl::Status PutEmbeddings(const Tensor& t, Writer* w) {
  if (!t.defined()) {
    w->Put<uint8_t>(0);
    return absl::OkStatus();
  }
  if (t.device() != Device::kCpu || t.ndim() != 2 ||
      (t.dtype() != DType::kF32 && t.dtype() != DType::kBF16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("step embeddings must be host f32/bf16 [rows, hidden], got ",
                     t.DebugString()));
  }
  const Tensor c = t.is_contiguous() ? t : t.Clone();
  w->Put<uint8_t>(1);
  w->Put<uint8_t>(static_cast<uint8_t>(c.dtype()));
  w->Put<int64_t>(c.dim(0));
  w->Put<int64_t>(c.dim(1));
  w->PutBytes(c.raw_data(), c.nbytes());
  return absl::OkStatus();
}

absl::Status GetEmbeddings(Reader* r, Tensor* t) {
  uint8_t defined = 0;
  RETURN_IF_ERROR(r->Get(&defined));
  if (defined == 0) return absl::OkStatus();
  uint8_t dtype = 0;
  int64_t rows = 0, cols = 0;
  RETURN_IF_ERROR(r->Get(&dtype));
  RETURN_IF_ERROR(r->Get(&rows));
  RETURN_IF_ERROR(r->Get(&cols));
  const DType d = static_cast<DType>(dtype);
  if ((d != DType::kF32 && d != DType::kBF16) || rows < 0 || cols < 0 ||
      (cols > 0 && rows > (int64_t{1} << 40) / cols)) {
    return absl::InvalidArgumentError("step message: bad embeddings header");
  }
  Tensor out = Tensor::Empty(d, {rows, cols});
  RETURN_IF_ERROR(r->GetBytes(out.raw_data(), out.nbytes()));
  *t = std::move(out);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeStepMessage(const StepMessage& message) {
  Writer w;
  w.Put<uint32_t>(kMagic);
  w.Put<uint8_t>(static_cast<uint8_t>(message.kind));
  switch (message.kind) {
    case StepMessage::Kind::kStep:
      w.Put<uint32_t>(static_cast<uint32_t>(message.batch.sequences.size()));
      for (const SequenceChunk& s : message.batch.sequences) {
        w.PutInts(s.token_ids);
        w.PutInts(s.positions);
        w.PutInts(s.embedding_rows);
        RETURN_IF_ERROR(PutEmbeddings(s.embeddings, &w));
        w.Put<int32_t>(s.num_cached);
        w.PutInts(s.block_table);
        w.Put<uint8_t>(static_cast<uint8_t>(s.logits));
      }
      break;
    case StepMessage::Kind::kAllocateKvCache:
      w.Put<int32_t>(message.num_blocks);
      w.Put<int32_t>(message.block_size);
      break;
    case StepMessage::Kind::kHeartbeat:
    case StepMessage::Kind::kStop:
    case StepMessage::Kind::kReportStats:
      break;
  }
  return w.Take();
}

absl::StatusOr<StepMessage> DecodeStepMessage(absl::string_view bytes) {
  Reader r(bytes);
  uint32_t magic = 0;
  uint8_t kind = 0;
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kMagic) return absl::InvalidArgumentError("step message: bad magic");
  RETURN_IF_ERROR(r.Get(&kind));
  StepMessage m;
  m.kind = static_cast<StepMessage::Kind>(kind);
  switch (m.kind) {
    case StepMessage::Kind::kStep: {
      uint32_t n = 0;
      RETURN_IF_ERROR(r.Get(&n));
      if (n > bytes.size()) return absl::InvalidArgumentError("step message: bad batch size");
      m.batch.sequences.resize(n);
      for (SequenceChunk& s : m.batch.sequences) {
        RETURN_IF_ERROR(r.GetInts(&s.token_ids));
        RETURN_IF_ERROR(r.GetInts(&s.positions));
        RETURN_IF_ERROR(r.GetInts(&s.embedding_rows));
        RETURN_IF_ERROR(GetEmbeddings(&r, &s.embeddings));
        RETURN_IF_ERROR(r.Get(&s.num_cached));
        RETURN_IF_ERROR(r.GetInts(&s.block_table));
        uint8_t logits = 0;
        RETURN_IF_ERROR(r.Get(&logits));
        if (logits > static_cast<uint8_t>(SequenceChunk::Logits::kAll)) {
          return absl::InvalidArgumentError("step message: bad logits mode");
        }
        s.logits = static_cast<SequenceChunk::Logits>(logits);
      }
      break;
    }
    case StepMessage::Kind::kAllocateKvCache:
      RETURN_IF_ERROR(r.Get(&m.num_blocks));
      RETURN_IF_ERROR(r.Get(&m.block_size));
      break;
    case StepMessage::Kind::kHeartbeat:
    case StepMessage::Kind::kStop:
    case StepMessage::Kind::kReportStats:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("step message: unknown kind ", kind));
  }
  if (!r.done()) return absl::InvalidArgumentError("step message: trailing bytes");
  return m;
}

}  // namespace glm4v::worker::tp
