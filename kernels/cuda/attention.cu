#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/device_utils.cuh"

namespace glm4v::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerCta = 16 * kWarps;  // each warp owns 16 rows (one m16 MMA tile)
constexpr int kKeysPerTile = 64;
constexpr int kPad = 8;                   // bf16 per smem row: keeps 16 B alignment, spreads banks
constexpr float kLog2e = 1.4426950408889634f;

// D[16x8] += A[16x16] * B[16x8], bf16 in, fp32 accumulate. Fragment layout (g = lane / 4,
// t = lane % 4): A regs {(g, 2t..), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..)}; B regs
// {(k = 2t.., n = g), (k = 2t+8.., n = g)}; C {(g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)}.
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t PackBF16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t PackBF16Bits(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

__device__ __forceinline__ uint32_t LoadU32(const bf16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// Keys among the first `n` global tokens of a sequence that this rank's share holds.
__device__ __forceinline__ int SharedKeys(const AttnParams& p, int n) {
  if (p.cp_size == 1) return n;
  return n > p.cp_rank ? (n - p.cp_rank - 1) / p.cp_size + 1 : 0;
}

constexpr float kLn2 = 0.6931471805599453f;

// Grid: x = row tiles, y = sequence, z = kv_head * num_splits + split.
template <int D>
__global__ void __launch_bounds__(kThreads)
    FlashAttentionKernel(const AttnParams p) {
  constexpr int kStride = D + kPad;
  constexpr int kChunks = D / 8;  // 16-byte chunks per K/V row
  __shared__ __align__(16) bf16 k_s[kKeysPerTile * kStride];
  __shared__ __align__(16) bf16 v_s[kKeysPerTile * kStride];
  __shared__ int64_t slot_s[kKeysPerTile];

  const AttnSequence seq = p.seqs[blockIdx.y];
  const int group = p.num_heads / p.num_kv_heads;
  const int kv_head = blockIdx.z / p.num_splits;
  const int split = blockIdx.z % p.num_splits;
  const int rows_total = seq.num_q * group;
  const int cta_row0 = blockIdx.x * kRowsPerCta;
  if (cta_row0 >= rows_total) return;  // uniform over the CTA

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int causal_shift = seq.kv_len - seq.num_q;
  const int kv_len = SharedKeys(p, seq.kv_len);  // keys held here

  // This thread's two rows (g and g + 8 of its warp's 16).
  int row_token[2], row_head[2], row_limit[2];
  bool row_valid[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = cta_row0 + warp * 16 + g + 8 * r;
    row_valid[r] = row < rows_total;
    row_token[r] = row_valid[r] ? row / group : 0;
    row_head[r] = kv_head * group + (row_valid[r] ? row % group : 0);
    // Last key index the row may see (-1: none).
    row_limit[r] = !row_valid[r] ? -1
                                 : (p.causal ? SharedKeys(p, row_token[r] + causal_shift + 1) - 1
                                             : kv_len - 1);
  }
  const bool warp_active = cta_row0 + warp * 16 < rows_total;

  // Key range of this split, trimmed to what the CTA's last row can see.
  const int tiles_total = (kv_len + kKeysPerTile - 1) / kKeysPerTile;
  const int tiles_per_split = (tiles_total + p.num_splits - 1) / p.num_splits;
  const int key_begin = split * tiles_per_split * kKeysPerTile;
  int key_end = min(kv_len, key_begin + tiles_per_split * kKeysPerTile);
  if (p.causal) {
    const int last_row = min(rows_total, cta_row0 + kRowsPerCta) - 1;
    key_end = min(key_end, SharedKeys(p, last_row / group + causal_shift + 1));
  }

  // Q fragments straight from global memory into registers (A operand, rows g / g+8).
  uint32_t qa[D / 16][4];
  {
    const bf16* q0 = p.q + (static_cast<int64_t>(seq.q_begin) + row_token[0]) * p.q_stride +
                     static_cast<int64_t>(row_head[0]) * D;
    const bf16* q1 = p.q + (static_cast<int64_t>(seq.q_begin) + row_token[1]) * p.q_stride +
                     static_cast<int64_t>(row_head[1]) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = kk * 16 + 2 * t;
      qa[kk][0] = row_valid[0] ? LoadU32(q0 + c) : 0u;
      qa[kk][1] = row_valid[1] ? LoadU32(q1 + c) : 0u;
      qa[kk][2] = row_valid[0] ? LoadU32(q0 + c + 8) : 0u;
      qa[kk][3] = row_valid[1] ? LoadU32(q1 + c + 8) : 0u;
    }
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY};  // running max, log2 units
  float l[2] = {0.f, 0.f};              // this thread's partial row sums
  const float scale_log2 = p.scale * kLog2e;
  const int64_t head_off = static_cast<int64_t>(kv_head) * D;

  for (int tile0 = key_begin; tile0 < key_end; tile0 += kKeysPerTile) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < kKeysPerTile; i += kThreads) {
      const int key = tile0 + i;
      int64_t slot = -1;
      if (key < key_end) {
        slot = p.block_tables == nullptr
                   ? static_cast<int64_t>(seq.kv_begin) + key
                   : static_cast<int64_t>(p.block_tables[seq.kv_begin + key / p.block_size]) *
                             p.block_size +
                         key % p.block_size;
      }
      slot_s[i] = slot;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kKeysPerTile * kChunks; i += kThreads) {
      const int key = i / kChunks, chunk = i % kChunks;
      const int64_t slot = slot_s[key];
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (slot >= 0) {
        const int64_t off = slot * p.kv_stride + head_off + chunk * 8;
        kv = *reinterpret_cast<const uint4*>(p.k + off);
        vv = *reinterpret_cast<const uint4*>(p.v + off);
      }
      *reinterpret_cast<uint4*>(&k_s[key * kStride + chunk * 8]) = kv;
      *reinterpret_cast<uint4*>(&v_s[key * kStride + chunk * 8]) = vv;
    }
    __syncthreads();
    if (!warp_active) continue;

    // S = Q K^T for 64 keys: 8 n-tiles of 8 keys.
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const bf16* kr = &k_s[(nt * 8 + g) * kStride + kk * 16 + 2 * t];
        Mma16816(s[nt], qa[kk], LoadU32(kr), LoadU32(kr + 8));
      }
    }

    // Mask, scale, online softmax (rows r = 0: regs 0,1; r = 1: regs 2,3).
    float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = tile0 + nt * 8 + 2 * t + (e & 1);
        const int r = e >> 1;
        const bool ok = key < key_end && key <= row_limit[r];
        s[nt][e] = ok ? s[nt][e] * scale_log2 : -INFINITY;
        row_max[r] = fmaxf(row_max[r], s[nt][e]);
      }
    }
    float alpha[2], m_use[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 1));
      row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 2));
      const float m_new = fmaxf(m[r], row_max[r]);
      // A row with nothing visible yet keeps m = -inf; use 0 so exp2 gives 0, not NaN.
      m_use[r] = m_new == -INFINITY ? 0.f : m_new;
      alpha[r] = exp2f(m[r] - m_use[r]);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = exp2f(s[nt][e] - m_use[e >> 1]);
        l[e >> 1] += s[nt][e];
      }
    }

    // O += P V: the C fragments of two adjacent key n-tiles form one A fragment (k16).
    const uint16_t* v_bits = reinterpret_cast<const uint16_t*>(v_s);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const uint32_t pa[4] = {PackBF16(s[2 * c][0], s[2 * c][1]),
                              PackBF16(s[2 * c][2], s[2 * c][3]),
                              PackBF16(s[2 * c + 1][0], s[2 * c + 1][1]),
                              PackBF16(s[2 * c + 1][2], s[2 * c + 1][3])};
      const int k0 = c * 16 + 2 * t;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        const int col = nd * 8 + g;
        const uint32_t b0 = PackBF16Bits(v_bits[k0 * kStride + col], v_bits[(k0 + 1) * kStride + col]);
        const uint32_t b1 =
            PackBF16Bits(v_bits[(k0 + 8) * kStride + col], v_bits[(k0 + 9) * kStride + col]);
        Mma16816(o[nd], pa, b0, b1);
      }
    }
  }

  // Row sums across the quad that shares each row.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  if (!warp_active) return;

  if (p.num_splits == 1) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (!row_valid[r]) continue;
      const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
      bf16* out = p.out + (static_cast<int64_t>(seq.q_begin) + row_token[r]) * p.out_stride +
                  static_cast<int64_t>(row_head[r]) * D;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        *reinterpret_cast<__nv_bfloat162*>(out + nd * 8 + 2 * t) =
            __floats2bfloat162_rn(o[nd][2 * r] * inv, o[nd][2 * r + 1] * inv);
      }
      if (p.lse != nullptr && t == 0) {
        p.lse[(static_cast<int64_t>(seq.q_begin) + row_token[r]) * p.num_heads + row_head[r]] =
            l[r] > 0.f ? m[r] * kLn2 + logf(l[r]) : -INFINITY;
      }
    }
    return;
  }
  // Partial results: unnormalized O, and (m, l) per (split, row, head).
  const int64_t parts = static_cast<int64_t>(p.num_splits) * p.total_q_rows * p.num_heads;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!row_valid[r]) continue;
    const int64_t idx =
        (static_cast<int64_t>(split) * p.total_q_rows + seq.q_begin + row_token[r]) * p.num_heads +
        row_head[r];
    float* wo = p.workspace + idx * D;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      *reinterpret_cast<float2*>(wo + nd * 8 + 2 * t) = make_float2(o[nd][2 * r], o[nd][2 * r + 1]);
    }
    if (t == 0) {
      float* ml = p.workspace + parts * D + idx * 2;
      ml[0] = m[r];
      ml[1] = l[r];
    }
  }
}

constexpr int kMaxSplits = 64;

__global__ void ContiguousSequencesKernel(AttnSequence* seqs, int batch, int len) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < batch) seqs[b] = AttnSequence{b * len, len, len, b * len};
}

// Grid: x = query token, y = sequence, z = head. Every split of every valid row wrote its
// partial (empty splits wrote m = -inf, l = 0, O = 0), so all splits can be read.
__global__ void CombineSplitsKernel(const AttnParams p) {
  __shared__ float weight_s[kMaxSplits];
  __shared__ float inv_total_s;
  const AttnSequence seq = p.seqs[blockIdx.y];
  const int token = blockIdx.x;
  if (token >= seq.num_q) return;
  const int head = blockIdx.z;
  const int64_t row = static_cast<int64_t>(seq.q_begin) + token;
  const int D = p.head_dim;
  const int64_t parts = static_cast<int64_t>(p.num_splits) * p.total_q_rows * p.num_heads;
  auto index = [&](int s) {
    return (static_cast<int64_t>(s) * p.total_q_rows + row) * p.num_heads + head;
  };
  if (threadIdx.x == 0) {
    const float* ml = p.workspace + parts * D;
    float m_max = -INFINITY;
    for (int s = 0; s < p.num_splits; ++s) m_max = fmaxf(m_max, ml[index(s) * 2]);
    float total = 0.f;
    for (int s = 0; s < p.num_splits; ++s) {
      const float w = m_max == -INFINITY ? 0.f : exp2f(ml[index(s) * 2] - m_max);
      weight_s[s] = w;
      total += w * ml[index(s) * 2 + 1];
    }
    inv_total_s = total > 0.f ? 1.f / total : 0.f;
    if (p.lse != nullptr) {
      p.lse[row * p.num_heads + head] = total > 0.f ? (m_max + log2f(total)) * kLn2 : -INFINITY;
    }
  }
  __syncthreads();
  bf16* out = p.out + row * p.out_stride + static_cast<int64_t>(head) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < p.num_splits; ++s) {
      if (weight_s[s] != 0.f) acc += weight_s[s] * p.workspace[index(s) * D + d];
    }
    out[d] = __float2bfloat16_rn(acc * inv_total_s);
  }
}

template <int D>
cudaError_t Launch(const AttnParams& p, cudaStream_t stream) {
  const int group = p.num_heads / p.num_kv_heads;
  const int64_t row_tiles = (static_cast<int64_t>(p.max_num_q) * group + kRowsPerCta - 1) /
                            kRowsPerCta;
  if (row_tiles > 0x7fffffff || p.num_seqs > 65535 ||
      static_cast<int64_t>(p.num_kv_heads) * p.num_splits > 65535) {
    return cudaErrorInvalidValue;
  }
  const dim3 grid(static_cast<unsigned>(row_tiles), p.num_seqs, p.num_kv_heads * p.num_splits);
  FlashAttentionKernel<D><<<grid, kThreads, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || p.num_splits == 1) return err;
  const dim3 combine_grid(p.max_num_q, p.num_seqs, p.num_heads);
  CombineSplitsKernel<<<combine_grid, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t MakeContiguousSequences(AttnSequence* seqs, int batch, int len,
                                    cudaStream_t stream) {
  if (batch < 0 || len < 0 || static_cast<int64_t>(batch) * len > 0x7fffffff) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  ContiguousSequencesKernel<<<CeilDiv(batch, 128), 128, 0, stream>>>(seqs, batch, len);
  return cudaGetLastError();
}

bool AttentionHeadDimSupported(int head_dim) {
  return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 112 ||
         head_dim == 128;
}

size_t AttentionWorkspaceBytes(int num_splits, int total_q_rows, int num_heads, int head_dim) {
  if (num_splits <= 1) return 0;
  return static_cast<size_t>(num_splits) * total_q_rows * num_heads * (head_dim + 2) *
         sizeof(float);
}

int SuggestAttentionSplits(const AttnParams& p, int num_sms, int max_splits) {
  if (p.num_kv_heads <= 0 || p.num_heads <= 0) return 1;
  const int group = p.num_heads / p.num_kv_heads;
  const int64_t row_tiles =
      (static_cast<int64_t>(p.max_num_q) * group + kRowsPerCta - 1) / kRowsPerCta;
  const int64_t ctas = row_tiles * p.num_seqs * p.num_kv_heads;
  const int64_t tiles = (p.max_kv_len + kKeysPerTile - 1) / kKeysPerTile;
  int64_t splits = 1;
  // Split only while the grid is below two waves and every split keeps at least two tiles.
  while (splits * 2 <= max_splits && splits * 2 <= kMaxSplits && ctas * splits < 2 * num_sms &&
         tiles >= splits * 4) {
    splits *= 2;
  }
  return static_cast<int>(splits);
}

bool FlashAttentionSupports(const AttnParams& p) {
  return AttentionHeadDimSupported(p.head_dim) && p.num_kv_heads > 0 && p.num_heads > 0 &&
         p.num_heads % p.num_kv_heads == 0 && p.num_splits >= 1 && p.num_splits <= kMaxSplits &&
         (p.num_splits == 1 || p.workspace != nullptr) &&
         (p.block_tables == nullptr || p.block_size > 0) &&
         (p.cp_size == 1 || (p.block_tables != nullptr && p.cp_size > 1 && p.cp_rank >= 0 &&
                             p.cp_rank < p.cp_size)) &&
         IsAligned16(p.q) &&
         IsAligned16(p.k) && IsAligned16(p.v) && IsAligned16(p.out) && p.q_stride % 8 == 0 &&
         p.kv_stride % 8 == 0 && p.out_stride % 8 == 0;
}

cudaError_t FlashAttention(const AttnParams& p, cudaStream_t stream) {
  if (!FlashAttentionSupports(p) || p.num_seqs < 0 || p.max_num_q < 0) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0 || p.max_num_q == 0) return cudaSuccess;
  switch (p.head_dim) {
    case 64:
      return Launch<64>(p, stream);
    case 80:
      return Launch<80>(p, stream);
    case 96:
      return Launch<96>(p, stream);
    case 112:
      return Launch<112>(p, stream);
    default:
      return Launch<128>(p, stream);
  }
}

}  // namespace glm4v::cuda
