#!/usr/bin/env python3
"""GPU pods start: every process a GPU overlay runs, with exactly the overlay's arguments, gets
as far as opening its device on this GPU-less machine.

For each k8s/overlays/gpu-* overlay (rendered with kubectl kustomize) the vision and worker
containers are run with their rendered args (the worker through deploy/docker/glm4v-tp-group, as
in the pod, so every TP rank runs) and must exit with the device-missing error: FAILED_PRECONDITION
naming the device. A flag error, an unknown backend (a binary built without the CUDA backend) or
any other error fails the test. The gateway (no device) must start and stay up. Only the checkpoint
path (the pod's volume) and the ports (the pod's own network) are replaced.

Usage: gpu_startup_test.py --root REPO --worker BIN --vision BIN --gateway BIN
"""
import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_deploy  # noqa: E402  (rendering helpers)

# What each overlay's /models/... path becomes here: a test checkpoint of the same kind.
TINY_VISION = "tests/data/tiny-glm4v/model"
TINY_TEXT = "tests/data/long-glm4/model"
TOKENIZER = "tests/data/tiny-glm4v/tokenizer/tokenizer.model"
DEVICE_ERROR = "FAILED_PRECONDITION"
FORBIDDEN = ["Unknown command line flag", "unknown backend", "NOT_FOUND", "INVALID_ARGUMENT"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The Secrets' files (/etc/glm4v/...) become certificates and keys made here.
SECRET_FILES = {}


def make_secret_files(root):
    tmp = os.environ.get("TEST_TMPDIR") or "/tmp"
    certs = os.path.join(tmp, "gpu-startup-certs")
    subprocess.run(["bash", os.path.join(root, "tests/tls/make_test_certs.sh"), certs], check=True)
    keys = os.path.join(tmp, "gpu-startup-api-keys")
    with open(keys, "w") as f:
        f.write("sk-gpu-startup-test-key id=test\n")
    SECRET_FILES.update({
        "/etc/glm4v/public-tls/tls.crt": os.path.join(certs, "server.pem"),
        "/etc/glm4v/public-tls/tls.key": os.path.join(certs, "server.key"),
        "/etc/glm4v/internal-tls/tls.crt": os.path.join(certs, "server.pem"),
        "/etc/glm4v/internal-tls/tls.key": os.path.join(certs, "server.key"),
        "/etc/glm4v/internal-tls/ca.crt": os.path.join(certs, "ca.pem"),
        "/etc/glm4v/api-keys/api_keys": keys,
    })


def local_args(args, root):
    """The container's args with the checkpoint, the Secrets' files and the ports made local."""
    out = []
    for a in args:
        name, _, value = a[2:].partition("=")
        if value.startswith("/etc/glm4v/"):
            if value not in SECRET_FILES:
                raise SystemExit("gpu_startup_test: no local stand-in for %s" % value)
            value = SECRET_FILES[value]
        if name == "model_dir":
            value = os.path.join(root, TINY_TEXT if "chat" in value else TINY_VISION)
        elif name == "tokenizer_path":
            value = os.path.join(root, TOKENIZER)
        elif name in ("grpc_port", "http_port"):
            value = "0"
        elif name == "metrics_port":
            value = "-1"
        out.append("--%s=%s" % (name, value) if _ else a)
    # Ports the overlay leaves at their defaults too (absl keeps the last occurrence).
    return out + ["--grpc_port=0", "--metrics_port=-1"]


def expect_device_error(label, argv, env, failures):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    log = p.stdout + p.stderr
    ok = p.returncode != 0 and DEVICE_ERROR in log and "device" in log and \
        not any(f in log for f in FORBIDDEN)
    print("%s %s: exit %d" % ("OK  " if ok else "FAIL", label, p.returncode))
    if not ok:
        failures.append("%s: expected the device-missing error (%s naming the device), got exit "
                        "%d:\n%s" % (label, DEVICE_ERROR, p.returncode, log[-3000:]))


def expect_running(label, argv, env, failures):
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
    time.sleep(3)
    alive = child.poll() is None
    child.kill()
    log = child.communicate()[0]
    print("%s %s: %s" % ("OK  " if alive else "FAIL", label, "up" if alive else "exited"))
    if not alive:
        failures.append("%s: exited at startup:\n%s" % (label, log[-3000:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--vision", required=True)
    ap.add_argument("--gateway", required=True)
    opts = ap.parse_args()
    root = os.path.abspath(opts.root)
    if glob.glob("/dev/nvidia[0-9]*"):
        # With a GPU the processes would start for real; this test is about GPU-less machines.
        print("gpu_startup_test: a GPU is present; skipped (it checks the device-missing path)")
        return 0
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("gpu_startup_test: kubectl not found (Debian: kubernetes-client)")
        return 1
    import yaml
    binaries = {"worker_server": os.path.abspath(opts.worker),
                "vision_server": os.path.abspath(opts.vision),
                "gateway": os.path.abspath(opts.gateway)}
    make_secret_files(root)
    tp_group = os.path.join(root, "deploy", "docker", "glm4v-tp-group")
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    failures = []
    overlays = sorted(os.path.basename(d) for d in glob.glob(os.path.join(root, "k8s/overlays/gpu-*")))
    if not overlays:
        failures.append("no k8s/overlays/gpu-* overlay")
    for overlay in overlays:
        p = subprocess.run([kubectl, "kustomize", os.path.join(root, "k8s/overlays", overlay)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            failures.append("%s: kubectl kustomize failed:\n%s" % (overlay, p.stderr))
            continue
        docs = [d for d in yaml.safe_load_all(p.stdout) if d]
        for w in check_deploy.workloads(docs):
            comp = check_deploy.pod_labels(w).get("app.kubernetes.io/component")
            container = w["spec"]["template"]["spec"]["containers"][0]
            command = os.path.basename((container.get("command") or [""])[0])
            args = local_args([str(a) for a in container.get("args", [])], root)
            label = "%s %s" % (overlay, comp)
            if comp == "worker":
                wenv = dict(env, GLM4V_WORKER_BIN=binaries["worker_server"],
                            GLM4V_TP_PORT=str(free_port()))
                # The pod's entry point: the TP group script when the image runs it.
                argv = ([tp_group] if command == "glm4v-tp-group" else [binaries["worker_server"]])
                expect_device_error(label, argv + args, wenv, failures)
            elif comp == "vision":
                expect_device_error(label, [binaries["vision_server"]] + args, env, failures)
            elif comp == "gateway":
                expect_running(label, [binaries["gateway"]] + args, env, failures)
    for f in failures:
        print("\n" + f)
    print("gpu_startup_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
