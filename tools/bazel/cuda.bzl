"""cuda_library: compiles .cu files with /usr/local/cuda/bin/nvcc in a genrule, one object per file.

Targets Hopper natively (sm_90a) and embeds compute_80 PTX so Ampere and newer can JIT it.
The objects are wrapped in a cc_library that links cudart (and whatever `deps` add, e.g. cuBLASLt).
"""

NVCC = "/usr/local/cuda/bin/nvcc"
NVCC_FLAGS = " ".join([
    "-std=c++17",
    "-O3",
    "-Xcompiler -fPIC",
    "--expt-relaxed-constexpr",
    "-gencode arch=compute_90a,code=sm_90a",
    "-gencode arch=compute_80,code=compute_80",
])

def cuda_library(name, srcs, hdrs = [], deps = [], visibility = None, cu_hdrs = []):
    """srcs: .cu files; hdrs: C++ headers exported to users; cu_hdrs: headers only the .cu files include."""
    objs = []
    for src in srcs:
        obj = src + ".o"
        objs.append(obj)
        native.genrule(
            name = name + "_" + src.replace("/", "_").replace(".", "_"),
            srcs = [src] + hdrs + cu_hdrs,
            outs = [obj],
            cmd = NVCC + " " + NVCC_FLAGS + " -I. -I$(GENDIR) -c $(location " + src + ") -o $@",
        )
    native.cc_library(
        name = name,
        srcs = objs,
        hdrs = hdrs,
        deps = deps + ["@cuda//:cudart"],
        visibility = visibility,
        alwayslink = True,
    )
