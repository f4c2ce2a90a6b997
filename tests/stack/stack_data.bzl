"""What a test using //tests/stack:service_stack needs at run time."""

STACK_DATA = [
    "//services/gateway:gateway",
    "//services/vision:vision_server",
    "//worker/server:worker_server",
    "//tests/data:tiny_glm4v",
]
