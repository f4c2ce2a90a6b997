#include "kernels/cpu/onednn_matmul.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {

using Dims = dnnl::memory::dims;
using DataType = dnnl::memory::data_type;

// Shape of one product: m, k, n, ldy, accumulate.
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool>;

// Primitives are built once per shape (a few hundred microseconds each) and kept: prefill
// chunks and the vision tower repeat a handful of shapes. Bounded so a stream of distinct
// prompt lengths cannot grow it without limit; oneDNN's own primitive cache backs it.
constexpr size_t kMaxCachedShapes = 64;

struct CachedProduct {
  dnnl::matmul primitive;
  size_t scratchpad_bytes = 0;
};

struct Library {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  std::map<Key, CachedProduct> primitives;  // guarded by mu
};

Library& Lib() {
  static Library* lib = new Library();
  return *lib;
}

struct Operands {
  dnnl::memory::desc x, w, y;
};

Operands Describe(const Key& key) {
  const auto [m, k, n, ldy, accumulate] = key;
  return Operands{dnnl::memory::desc(Dims{m, k}, DataType::bf16, Dims{k, 1}),
                  dnnl::memory::desc(Dims{k, n}, DataType::bf16, Dims{1, k}),  // [n, k] rows
                  dnnl::memory::desc(Dims{m, n}, DataType::f32, Dims{ldy, 1})};
}

dnnl::matmul::primitive_desc DescribeProduct(const Library& lib, const Key& key) {
  const bool accumulate = std::get<4>(key);
  const Operands md = Describe(key);
  dnnl::primitive_attr attr;
  // Our own scratchpad per calling thread: products may run on several threads at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(md.x, md.w, md.y), attr, lib.engine);
}

bool HasJitKernel() {
  try {
    const auto pd = DescribeProduct(Lib(), Key{64, 256, 256, 256, false});
    const char* impl = pd.impl_info_str();
    return impl != nullptr && std::strncmp(impl, "ref", 3) != 0;
  } catch (const dnnl::error&) {
    return false;
  }
}

std::atomic<bool>& Switch() {
  static std::atomic<bool> enabled{[] {
    const char* env = std::getenv("GLM4V_ONEDNN");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }()};
  return enabled;
}

}  // namespace

bool OneDnnMatmulEnabled() {
  static const bool available = HasJitKernel();
  return available && Switch().load(std::memory_order_relaxed);
}

void SetOneDnnMatmul(bool enabled) { Switch().store(enabled); }

bool OneDnnMatmulBf16(const uint16_t* x, int64_t m, const uint16_t* w, int64_t k, int64_t n,
                      bool accumulate, float* y, int64_t ldy) {
  if (!OneDnnMatmulEnabled() || m <= 0 || n <= 0 || k <= 0) return false;
  Library& lib = Lib();
  const Key key{m, k, n, ldy, accumulate};
  try {
    CachedProduct product;
    {
      std::lock_guard<std::mutex> lock(lib.mu);
      auto it = lib.primitives.find(key);
      if (it == lib.primitives.end()) {
        if (lib.primitives.size() >= kMaxCachedShapes) lib.primitives.clear();
        const auto pd = DescribeProduct(lib, key);
        it = lib.primitives.emplace(key, CachedProduct{dnnl::matmul(pd),
                                                       pd.scratchpad_desc().get_size()})
                 .first;
      }
      product = it->second;
    }
    const Operands md = Describe(key);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(md.x, lib.engine, const_cast<uint16_t*>(x))},
        {DNNL_ARG_WEIGHTS, dnnl::memory(md.w, lib.engine, const_cast<uint16_t*>(w))},
        {DNNL_ARG_DST, dnnl::memory(md.y, lib.engine, y)}};
    thread_local std::vector<unsigned char> scratch;
    if (product.scratchpad_bytes > 0) {
      if (scratch.size() < product.scratchpad_bytes) scratch.resize(product.scratchpad_bytes);
      const dnnl::memory::desc scratch_md(
          Dims{static_cast<int64_t>(product.scratchpad_bytes)}, DataType::u8, Dims{1});
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratch_md, lib.engine, scratch.data()));
    }
    // The library's OpenMP team is as wide as our pool (GLM4V_CPU_THREADS); the setting is
    // per calling thread.
    omp_set_num_threads(NumThreads());
    dnnl::stream stream(lib.engine);
    product.primitive.execute(stream, args);
    stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace cpu
}  // namespace glm4v
