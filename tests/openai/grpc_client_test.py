#!/usr/bin/python3
"""Black-box test of the gateway's public gRPC API with a second, independent gRPC stack
(Debian's python3-grpcio), over TLS and with an API key: the bearer token is required (and
health is not), a wrong key or a client that does not trust the server's CA gets nothing.

  grpc_client_test.py --target=127.0.0.1:PORT --ca=ca.pem --other_ca=other_ca.pem \
      --key=sk-... --descriptor=glm4v.desc

The messages come from the API's own .proto (a FileDescriptorSet made by protoc), not from
generated code.
"""
import argparse
import sys

import grpc
from google.protobuf import descriptor_pb2, message_factory


def main():
    p = argparse.ArgumentParser()
    for name in ("target", "ca", "other_ca", "key", "descriptor"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()

    files = descriptor_pb2.FileDescriptorSet()
    with open(a.descriptor, "rb") as f:
        files.ParseFromString(f.read())
    classes = message_factory.GetMessages(list(files.file))
    ModelInfoRequest = classes["glm4v.v1.GetModelInfoRequest"]
    ModelInfo = classes["glm4v.v1.ModelInfo"]
    GenerateRequest = classes["glm4v.v1.GenerateRequest"]
    GenerateStreamResponse = classes["glm4v.v1.GenerateStreamResponse"]

    with open(a.ca, "rb") as f:
        trusted = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(a.target, trusted)
    get_info = channel.unary_unary(
        "/glm4v.v1.Glm4vService/GetModelInfo",
        request_serializer=ModelInfoRequest.SerializeToString,
        response_deserializer=ModelInfo.FromString)
    generate_stream = channel.unary_stream(
        "/glm4v.v1.Glm4vService/GenerateStream",
        request_serializer=GenerateRequest.SerializeToString,
        response_deserializer=GenerateStreamResponse.FromString)
    # grpc.health.v1.Health/Check by hand: request {} -> response {status: SERVING = 1}.
    health = channel.unary_unary("/grpc.health.v1.Health/Check",
                                 request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    bearer = [("authorization", "Bearer " + a.key)]

    def expect_code(code, fn):
        try:
            fn()
        except grpc.RpcError as e:
            assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
            return e
        raise AssertionError(f"expected {code}, the call succeeded")

    assert health(b"", timeout=10) == b"\x08\x01", "health is open and SERVING"
    print("ok  health without a key")

    e = expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: get_info(ModelInfoRequest(), timeout=10))
    assert "Bearer" in e.details(), e.details()
    expect_code(grpc.StatusCode.UNAUTHENTICATED,
                lambda: get_info(ModelInfoRequest(), timeout=10,
                                 metadata=[("authorization", "Bearer sk-not-a-key-0000")]))
    print("ok  no key / wrong key -> UNAUTHENTICATED")

    info = get_info(ModelInfoRequest(), timeout=10, metadata=bearer)
    assert info.model and info.context_length > 0, info
    print(f"ok  GetModelInfo with the key: {info.model}, context {info.context_length}")

    request = GenerateRequest()
    message = request.messages.add()
    message.role = 2  # ROLE_USER
    message.content.add().text = "Describe the weather in one sentence."
    request.sampling.max_tokens = 5
    request.sampling.temperature = 0
    request.sampling.ignore_eos = True
    tokens, finish = 0, 0
    for chunk in generate_stream(request, timeout=60, metadata=bearer):
        tokens += len(chunk.token_ids)
        finish = chunk.finish_reason or finish
    assert tokens == 5 and finish == 2, (tokens, finish)  # FINISH_REASON_LENGTH
    print("ok  GenerateStream over TLS with the key: 5 tokens")
    bad = GenerateRequest()
    bad.CopyFrom(request)
    bad.sampling.frequency_penalty = 7
    expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: list(generate_stream(bad, timeout=30, metadata=bearer)))
    print("ok  a bad frequency_penalty -> INVALID_ARGUMENT")

    # A client that does not trust the gateway's CA, and a plaintext client, get nothing.
    with open(a.other_ca, "rb") as f:
        untrusted = grpc.secure_channel(a.target, grpc.ssl_channel_credentials(f.read()))
    expect_code(grpc.StatusCode.UNAVAILABLE, lambda: untrusted.unary_unary(
        "/glm4v.v1.Glm4vService/GetModelInfo",
        request_serializer=ModelInfoRequest.SerializeToString,
        response_deserializer=ModelInfo.FromString)(ModelInfoRequest(), timeout=5, metadata=bearer))
    plain = grpc.insecure_channel(a.target)
    expect_code(grpc.StatusCode.UNAVAILABLE, lambda: plain.unary_unary(
        "/glm4v.v1.Glm4vService/GetModelInfo",
        request_serializer=ModelInfoRequest.SerializeToString,
        response_deserializer=ModelInfo.FromString)(ModelInfoRequest(), timeout=5, metadata=bearer))
    print("ok  untrusted CA / plaintext -> UNAVAILABLE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
