"""cc_grpc_proto: protoc + grpc_cpp_plugin from Debian, as a genrule (no rules_proto needed offline)."""

def cc_grpc_proto(name, srcs, deps = [], grpc = True, visibility = None):
    """Generates C++ messages (and gRPC stubs when grpc=True) for srcs; srcs are paths under protos/.

    Import paths are relative to the workspace root, e.g. `import "protos/common.proto";`.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    dep_srcs = []
    for d in deps:
        dep_srcs.append(d + "_srcs")
    native.filegroup(name = name + "_srcs", srcs = srcs + dep_srcs)
    grpc_flags = "--grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " if grpc else ""
    native.genrule(
        name = name + "_gen",
        srcs = srcs + dep_srcs,
        outs = outs,
        # Run protoc from the workspace root so import paths are "protos/x.proto".
        cmd = "protoc -I. --cpp_out=$(GENDIR) " + grpc_flags + " ".join(["$(location " + s + ")" for s in srcs]),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@system//:grpcpp" if grpc else "@system//:protobuf"],
        visibility = visibility,
    )
