#!/usr/bin/env python3
"""Checks the Kubernetes/Prometheus/Docker deployment against the code it deploys.

Renders every Kustomize overlay (kubectl kustomize), lints sources and rendered output with
yamllint (tests/deploy/yamllint.yaml), and checks invariants against the C++ sources:

  * ports and probes match the ports the binaries listen on (ABSL_FLAG defaults, or the value an
    explicit --flag sets), probes are native gRPC probes on the gRPC port, health service names
    are the ones the binary registers;
  * every --flag in a manifest (and in deploy/docker/glm4v-tp-group) is an ABSL_FLAG of the
    binary it is passed to;
  * every glm4v_* metric used by an HPA, alert, prometheus-adapter rule or the Grafana dashboard
    is a metric name the services export (string literals in services/ and worker/ sources);
  * the cpu-demo overlay passes the same flags as tools/launcher passes to each process;
  * shutdown: terminationGracePeriodSeconds >= preStop sleep + --drain_grace_seconds + 5;
  * security contexts, read-only weights PVC, resources, GPU counts == --tp_size, images,
    Services/ServiceMonitors/PDBs/HPAs/NetworkPolicies pointing at things that exist;
  * the PrometheusRule in k8s/base equals deploy/prometheus/alerts.yml.

A check whose inputs are not written yet (e.g. the gateway's main .cc, tools/launcher) is
reported as PENDING and does not fail, unless --strict; contradictions always fail.
Needs python3 with PyYAML (Debian: python3-yaml), kubectl (kubernetes-client) and yamllint.

Usage: check_deploy.py [--root REPO] [--strict] [--junit FILE]   (default --junit: $XML_OUTPUT_FILE)
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

# ----------------------------------------------------------------------------------------------
# What the deployment is made of (docs/SERVICES.md).

BINARIES = {
    # name: (process, source globs of its main, globs of libraries whose flags it also accepts)
    "gateway": ("gateway", ["services/gateway/*.cc"]),
    "vision_server": ("vision", ["services/vision/*.cc"]),
    "worker_server": ("worker", ["worker/server/*.cc"]),
    "launch": ("launcher", ["tools/launcher/*.cc", "tools/launcher/*.py", "tools/launcher/*.sh"]),
}
# Flags defined in libraries every binary links (e.g. --log_level in common/logging.cc).
SHARED_FLAG_SOURCES = ["common/*.cc", "common/**/*.cc", "services/common/*.cc"]
# Container command basename -> binary it runs.
COMMANDS = {
    "gateway": "gateway",
    "vision_server": "vision_server",
    "worker_server": "worker_server",
    "glm4v-tp-group": "worker_server",  # deploy/docker/glm4v-tp-group runs worker_server ranks
}
PROCESS_OF_COMPONENT = {"gateway": "gateway", "vision": "vision_server", "worker": "worker_server"}
# Named container port -> flag giving its number.
PORT_FLAGS = {"grpc": "grpc_port", "metrics": "metrics_port", "http": "http_port"}
# Flags that place a process rather than configure it: the launcher picks free ports and TP
# ranks on one machine, Kubernetes uses the defaults / glm4v-tp-group. --drain_grace_seconds is
# tied to terminationGracePeriodSeconds in Kubernetes and may differ from the launcher's.
PLACEMENT_FLAGS = {"grpc_port", "metrics_port", "http_port", "host", "tp_rank", "tp_rendezvous",
                   "drain_grace_seconds", "log_level",
                   # Kubernetes finds workers through their headless Service; the launcher
                   # knows the ones it started.
                   "worker_discovery"}
REQUIRED_OVERLAYS = ["cpu-demo", "gpu-tp1", "gpu-tp2"]
IMAGES = {"glm4v/serving-cpu": "Dockerfile.cpu", "glm4v/serving-cuda": "Dockerfile.cuda"}
REQUIRED_ALERT_TOPICS = {
    "error rate": r"requests_total\{code=~",
    "TTFT p95": r"histogram_quantile\(0\.95,[^;]*?time_to_first_token_seconds_bucket",
    "queue growth": r"deriv\(sum\(glm4v_gateway_queue_depth\)",
    "KV cache saturation": r"glm4v_worker_kv_blocks_used\s*/\s*glm4v_worker_kv_blocks_capacity",
    "service down": r"\bup\{job=~",
}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_RE = re.compile(r"\bglm4v_[a-z0-9_]+")

# ----------------------------------------------------------------------------------------------
# Result bookkeeping.


class Report:
    def __init__(self):
        self.cases = []  # (name, status, [messages]) status in pass/fail/pending
        self._cur = None

    def case(self, name):
        self._cur = [name, "pass", []]
        self.cases.append(self._cur)
        return self

    def fail(self, msg):
        self._cur[1] = "fail"
        self._cur[2].append("FAIL: " + msg)

    def pending(self, msg):
        if self._cur[1] == "pass":
            self._cur[1] = "pending"
        self._cur[2].append("PENDING: " + msg)

    def note(self, msg):
        self._cur[2].append("note: " + msg)

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond

    def write_junit(self, path):
        suite = ET.Element("testsuite", name="deploy_test", tests=str(len(self.cases)),
                           failures=str(sum(c[1] == "fail" for c in self.cases)),
                           skipped=str(sum(c[1] == "pending" for c in self.cases)))
        for name, status, msgs in self.cases:
            tc = ET.SubElement(suite, "testcase", classname="deploy", name=name)
            if status == "fail":
                ET.SubElement(tc, "failure", message=msgs[0] if msgs else "").text = "\n".join(msgs)
            elif status == "pending":
                ET.SubElement(tc, "skipped", message="\n".join(msgs))
        root = ET.Element("testsuites")
        root.append(suite)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def die(msg):
    print("deploy_test: " + msg, file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------------------------
# Facts from the sources.


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        return f.read()


def source_files(root, patterns, tests=False):
    out = set()
    for pat in patterns:
        for p in glob.glob(os.path.join(root, pat), recursive=True):
            if os.path.isfile(p) and (tests or not re.search(r"_test\.(cc|py|sh)$", p)):
                out.add(os.path.relpath(p, root))
    return sorted(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


FLAG_DEF_RE = re.compile(r"ABSL_FLAG\(\s*([\w:<>\s]+?)\s*,\s*(\w+)\s*,\s*(.*?)\s*,\s*\"", re.S)


def parse_flags(root, files):
    """name -> (type, default expression, file) for every ABSL_FLAG in files."""
    flags = {}
    for rel in files:
        if not rel.endswith((".cc", ".h")):
            continue
        for m in FLAG_DEF_RE.finditer(strip_comments(read(root, rel))):
            flags[m.group(2)] = (m.group(1).strip(), m.group(3).strip(), rel)
    return flags


def int_default(expr):
    expr = expr.replace("'", "")
    if re.fullmatch(r"-?\d+", expr):
        return int(expr)
    m = re.fullmatch(r"(\d+)\s*<<\s*(\d+)", expr)
    if m:
        return int(m.group(1)) << int(m.group(2))
    return None


class Sources:
    def __init__(self, root):
        self.root = root
        self.shared_flags = parse_flags(root, source_files(root, SHARED_FLAG_SOURCES))
        self.bins = {}
        for name, (process, pats) in BINARIES.items():
            files = source_files(root, pats)
            flags = parse_flags(root, files)
            text = "\n".join(strip_comments(read(root, f)) for f in files)
            main = [f for f in files if re.search(r"\bint\s+main\s*\(", read(root, f))]
            self.bins[name] = {"process": process, "files": files, "flags": flags, "text": text,
                               "present": bool(main) or (name == "launch" and bool(files))}
        # Metric names: every "glm4v_..." string literal in service/worker sources.
        self.metric_files = source_files(root, ["services/**/*.cc", "services/**/*.h",
                                                "worker/**/*.cc", "worker/**/*.h"])
        self.metrics = set()
        for rel in self.metric_files:
            for m in re.finditer(r"\"(glm4v_[a-z0-9_]+)\"", read(root, rel)):
                self.metrics.add(m.group(1))

    def present(self, binary):
        return self.bins[binary]["present"]

    def flags(self, binary):
        out = dict(self.shared_flags)
        out.update(self.bins[binary]["flags"])
        return out

    def health_services(self, binary):
        m = re.search(r"health_services\s*=\s*\{([^}]*)\}", self.bins[binary]["text"])
        if not m:
            return None
        return set(re.findall(r"\"([^\"]+)\"", m.group(1)))

    def metric_known(self, name):
        """True/False, or None when the exporting component has no metrics in the code yet."""
        cands = {name} | {name[: -len(s)] for s in HIST_SUFFIXES if name.endswith(s)}
        if cands & self.metrics:
            return True
        comp = re.match(r"glm4v_([a-z]+)_", name)
        prefix = "glm4v_%s_" % comp.group(1) if comp else "glm4v_"
        if not any(m.startswith(prefix) for m in self.metrics):
            return None
        return False

    def launcher_flags(self):
        """--flag names the launcher passes to child processes (string literals "--name...")."""
        names = set()
        for rel in self.bins["launch"]["files"]:
            for m in re.finditer(r"[\"']--([a-z][a-z0-9_]*)", read(self.root, rel)):
                names.add(m.group(1))
        return names


# ----------------------------------------------------------------------------------------------
# Manifests.


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def parse_args_list(args):
    """['--a=1', '--b'] -> ({'a': '1', 'b': None}, [malformed])."""
    out, bad = {}, []
    for a in args or []:
        m = re.fullmatch(r"--([A-Za-z0-9_]+)(?:=(.*))?", str(a))
        if not m:
            bad.append(a)
            continue
        out[m.group(1)] = m.group(2)
    return out, bad


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def workloads(docs):
    return [d for d in docs if d.get("kind") in ("Deployment", "StatefulSet")]


def pod_labels(w):
    return w["spec"]["template"].get("metadata", {}).get("labels", {}) or {}


def matches(selector, labels):
    sel = selector or {}
    ml = sel.get("matchLabels", sel if "matchLabels" not in sel and "matchExpressions" not in sel
                 else {})
    return all(labels.get(k) == v for k, v in (ml or {}).items())


def gpu_count(res, which):
    v = (res or {}).get(which, {}).get("nvidia.com/gpu")
    return int(v) if v is not None else 0


def memory_bytes(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?)?", str(q))
    if not m:
        return None
    mult = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return float(m.group(1)) * mult


def container_binary(c):
    cmd = c.get("command") or []
    if not cmd:
        return None
    return COMMANDS.get(os.path.basename(cmd[0]))


def overlay_components(root, overlay):
    """The Kustomize components an overlay lists."""
    import yaml  # PyYAML is checked for in main()
    path = os.path.join(root, "k8s", "overlays", overlay, "kustomization.yaml")
    with open(path) as f:
        return list((yaml.safe_load(f) or {}).get("components") or [])


def check_overlay(rep, src, name, docs, ctx):
    """Invariants of one rendered overlay."""
    ws = workloads(docs)
    services = by_kind(docs, "Service")
    comps = {}
    for w in ws:
        comp = pod_labels(w).get("app.kubernetes.io/component")
        comps[comp] = w

    # A text-only model (components/text-only: GLM-4-9B-chat, -1M) has no vision tier at all;
    # then nothing may point at one.
    text_only = "vision" not in comps and any(
        "components/text-only" in c for c in ctx.get("components", {}).get(name, []))
    rep.case("%s: three tiers present" % name)
    for comp in PROCESS_OF_COMPONENT:
        if comp == "vision" and text_only:
            continue
        rep.check(comp in comps, "no Deployment/StatefulSet with app.kubernetes.io/component=%s" % comp)
    if text_only:
        rep.check(not [s for s in services if "vision" in s["metadata"]["name"]] and
                  not [h for h in by_kind(docs, "HorizontalPodAutoscaler") if "vision" in h["metadata"]["name"]] and
                  not [m for m in by_kind(docs, "ServiceMonitor") if "vision" in m["metadata"]["name"]] and
                  not [n for n in by_kind(docs, "NetworkPolicy") if "vision" in n["metadata"]["name"]],
                  "text-only overlay still renders vision Services/HPAs/ServiceMonitors/NetworkPolicies")
    rep.check(comps.get("worker", {}).get("kind") == "StatefulSet", "the decoder worker must be a StatefulSet")

    effective = {}  # comp -> {flag: value} (explicit or default)
    for w in ws:
        comp = pod_labels(w).get("app.kubernetes.io/component", w["metadata"]["name"])
        spec = w["spec"]["template"]["spec"]
        wname = "%s: %s/%s" % (name, w["kind"], w["metadata"]["name"])
        containers = spec.get("containers", [])

        rep.case(wname + ": security context")
        psc = spec.get("securityContext", {}) or {}
        rep.check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
        rep.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                  "pod seccompProfile must be RuntimeDefault")
        rep.check(spec.get("automountServiceAccountToken") is False, "automountServiceAccountToken must be false")
        for c in containers + spec.get("initContainers", []):
            sc = c.get("securityContext", {}) or {}
            rep.check(sc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem must be true" % c["name"])
            rep.check(sc.get("allowPrivilegeEscalation") is False, "%s: allowPrivilegeEscalation must be false" % c["name"])
            rep.check((sc.get("capabilities") or {}).get("drop") == ["ALL"], "%s: capabilities.drop must be [ALL]" % c["name"])
            for k in ("runAsUser", "runAsNonRoot"):
                if k in sc:
                    rep.check(sc[k] not in (0, False), "%s: %s overrides non-root" % (c["name"], k))
        rep.check(psc.get("runAsUser", 1) != 0, "pod runs as uid 0")

        rep.case(wname + ": weights volume read-only")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        pvc_mounts = []
        for c in containers:
            for vm in c.get("volumeMounts", []):
                v = vols.get(vm["name"], {})
                if "persistentVolumeClaim" in v:
                    rep.check(vm.get("readOnly") is True, "%s mounts PVC volume %s writable" % (c["name"], vm["name"]))
                    rep.check(v["persistentVolumeClaim"].get("readOnly") is True,
                              "volume %s: persistentVolumeClaim.readOnly must be true" % vm["name"])
                    pvc_mounts.append(vm["mountPath"].rstrip("/") + "/")
        rep.check(pvc_mounts, "no weights PVC mounted")

        for c in containers:
            cname = "%s/%s" % (wname, c["name"])
            binary = container_binary(c)
            rep.case(cname + ": command is a bundled binary")
            if not rep.check(binary is not None, "command %s is not one of %s" % (c.get("command"), sorted(COMMANDS))):
                continue
            image = c.get("image", "")
            repo, _, tag = image.partition(":")
            rep.check(repo in IMAGES, "image %s is none of the images built in deploy/docker (%s)" % (image, sorted(IMAGES)))
            rep.check(tag not in ("", "latest"), "image %s has no pinned tag" % image)
            if repo in IMAGES:
                cmd_name = os.path.basename(c["command"][0])
                rep.check(cmd_name in ctx["image_bins"].get(repo, set()),
                          "%s does not bundle %s (deploy/docker/%s)" % (repo, cmd_name, IMAGES[repo]))

            args, bad = parse_args_list(c.get("args"))
            rep.case(cname + ": flags are ABSL_FLAGs of " + binary)
            rep.check(not bad, "arguments not in --name=value form: %s" % bad)
            if src.present(binary):
                known = src.flags(binary)
                for flag in args:
                    base = flag[2:] if flag.startswith("no") and flag[2:] in known else flag
                    rep.check(base in known, "--%s is not an ABSL_FLAG of %s (%s)" % (
                        flag, binary, ", ".join(src.bins[binary]["files"]) or "no sources"))
            else:
                rep.pending("%s sources (%s) not written yet: cannot check flags %s" % (
                    binary, BINARIES[binary][1], sorted(args)))
            flags = src.flags(binary)
            eff = {}
            for f, (_, dflt, _) in flags.items():
                eff[f] = dflt
            eff.update({k: v for k, v in args.items()})
            effective[comp] = {"args": args, "eff": eff, "binary": binary, "container": c, "workload": w}

            # Ports: named container ports == what the binary listens on.
            rep.case(cname + ": ports match the binary's flags")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for pname, flag in PORT_FLAGS.items():
                if pname not in ports:
                    continue
                if flag in args:
                    want = int(args[flag])
                elif flag in flags:
                    want = int_default(flags[flag][1])
                else:
                    want = None
                if want is None:
                    if src.present(binary):
                        rep.fail("port %s: %s defines no --%s with an integer default" % (pname, binary, flag))
                    else:
                        rep.pending("port %s=%d: --%s of %s not in the code yet" % (pname, ports[pname], flag, binary))
                    continue
                rep.check(ports[pname] == want, "containerPort %s=%d but %s listens on --%s=%d" % (
                    pname, ports[pname], binary, flag, want))
            rep.check("grpc" in ports and "metrics" in ports, "container needs ports named grpc and metrics")

            # Probes: native gRPC probes on the gRPC port, health names the binary registers;
            # with TLS on the gRPC port (the kubelet's gRPC probes cannot speak TLS) HTTP probes
            # on the plaintext metrics port: /readyz (follows gRPC health) and /healthz.
            tls = "tls_cert" in args
            rep.case(cname + (": HTTP probes on the metrics port (TLS)" if tls else ": gRPC health probes"))
            hs = src.health_services(binary) if src.present(binary) else None
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if tls:
                    get = (p or {}).get("httpGet")
                    if not rep.check(get and "grpc" not in p, "%s must be an httpGet probe (TLS gRPC port)" % probe):
                        continue
                    rep.check(get.get("port") in ("metrics", ports.get("metrics")),
                              "%s must probe the metrics port, not %s" % (probe, get.get("port")))
                    want_path = "/readyz" if probe == "readinessProbe" else "/healthz"
                    rep.check(get.get("path") == want_path, "%s path %s != %s" % (probe, get.get("path"), want_path))
                    continue
                if not rep.check(p and "grpc" in p, "%s must be a native grpc: probe" % probe):
                    continue
                rep.check(p["grpc"].get("port") == ports.get("grpc"), "%s port %s != gRPC containerPort %s" % (
                    probe, p["grpc"].get("port"), ports.get("grpc")))
                svc = p["grpc"].get("service", "")
                if svc:
                    if hs is None:
                        rep.pending("%s service %r: %s health services not in the code yet" % (probe, svc, binary))
                    else:
                        rep.check(svc in hs, "%s service %r is not registered by %s (health_services = %s)" % (
                            probe, svc, binary, sorted(hs)))
            if not tls:
                rep.check((c.get("readinessProbe") or {}).get("grpc", {}).get("service"),
                          "readinessProbe should name the binary's own gRPC service")

            # Files the flags name under /etc/glm4v come from a mounted Secret that the overlay
            # renders (keys, certificates), mounted as a directory so rotations reach the pod.
            rep.case(cname + ": key and certificate files come from Secrets")
            secret_names = {d["metadata"]["name"] for d in docs if d.get("kind") == "Secret"}
            volumes = {v["name"]: v for v in (w["spec"]["template"]["spec"].get("volumes") or [])}
            for flag, value in sorted(args.items()):
                if not str(value).startswith("/etc/glm4v/"):
                    continue
                mount = None
                for m in c.get("volumeMounts") or []:
                    if str(value).startswith(m["mountPath"].rstrip("/") + "/"):
                        mount = m
                if not rep.check(mount is not None, "--%s=%s is under no volumeMount" % (flag, value)):
                    continue
                rep.check("subPath" not in mount, "--%s: the mount of %s uses subPath (no updates)" % (
                    flag, mount["mountPath"]))
                secret = (volumes.get(mount["name"]) or {}).get("secret", {}).get("secretName")
                rep.check(secret in secret_names, "--%s: volume %s is not a Secret of this overlay (%s)" % (
                    flag, mount["name"], secret))
                if secret in secret_names:
                    data = next(d for d in docs if d.get("kind") == "Secret" and d["metadata"]["name"] == secret)
                    keys = set((data.get("data") or {})) | set((data.get("stringData") or {}))
                    key = str(value)[len(mount["mountPath"].rstrip("/")) + 1:]
                    rep.check(key in keys, "--%s: Secret %s has no key %s" % (flag, secret, key))
            # The GPU (production) overlays serve the public edge locked down.
            if name.startswith("gpu-"):
                rep.case(cname + ": production overlay: API keys, TLS, mutual TLS inside")
                need = {"gateway": ["api_keys_file", "tls_cert", "tls_key", "backend_tls_ca",
                                    "backend_tls_cert", "backend_tls_key"],
                        "vision_server": ["tls_cert", "tls_key", "tls_ca"],
                        "worker_server": ["tls_cert", "tls_key", "tls_ca"]}.get(binary, [])
                for flag in need:
                    rep.check(flag in args, "--%s missing" % flag)
            live = c.get("livenessProbe") or {}
            drain = int_default(str(eff.get("drain_grace_seconds", "")))
            if drain is not None and live:
                rep.check(live.get("periodSeconds", 10) * live.get("failureThreshold", 3) > drain,
                          "liveness would kill a draining pod (health is NOT_SERVING for --drain_grace_seconds=%d)" % drain)

            # Graceful shutdown.
            rep.case(cname + ": preStop + drain fit terminationGracePeriodSeconds")
            pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
            pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" and str(pre[1]).isdigit() else None
            rep.check(pre_s is not None, "preStop must be exec [sleep, N] (endpoints drop the pod before SIGTERM)")
            tgps = spec.get("terminationGracePeriodSeconds", 30)
            if drain is None:
                rep.pending("--drain_grace_seconds of %s unknown (not in args, no default in code yet)" % binary)
            elif pre_s is not None:
                rep.check(tgps >= pre_s + drain + 5, "terminationGracePeriodSeconds=%d < preStop %d + drain %d + 5" % (
                    tgps, pre_s, drain))

            # Resources.
            rep.case(cname + ": resources")
            res = c.get("resources") or {}
            for k in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    rep.check(r in (res.get(k) or {}), "resources.%s.%s missing" % (k, r))
            gl, gr = gpu_count(res, "limits"), gpu_count(res, "requests")
            rep.check(gl == gr, "nvidia.com/gpu requests %d != limits %d" % (gr, gl))
            backend = args.get("backend", eff.get("backend", "").strip('"'))
            if binary == "worker_server":
                tp = int(args.get("tp_size", 1))
                if backend == "cuda":
                    rep.check(gl == tp, "worker --tp_size=%d but nvidia.com/gpu=%d (one pod = one TP group)" % (tp, gl))
                shm = next((v for v in spec.get("volumes", []) if v.get("emptyDir", {}).get("medium") == "Memory"), None)
                if tp > 1:
                    rep.check(os.path.basename(c["command"][0]) == "glm4v-tp-group",
                              "--tp_size=%d needs glm4v-tp-group to start the ranks" % tp)
                    rep.check(shm is not None and any(m["mountPath"] == "/dev/shm" for m in c.get("volumeMounts", [])),
                              "TP group needs a memory-backed /dev/shm")
            if backend == "cuda":
                rep.check(gl >= 1, "--backend=cuda without nvidia.com/gpu")
                rep.check(repo == "glm4v/serving-cuda", "--backend=cuda on image %s" % image)
            else:
                rep.check(gl == 0, "GPU requested but --backend=%s" % backend)
            if ctx["cpu_only"]:
                rep.check(gl == 0 and repo == "glm4v/serving-cpu", "cpu overlay uses GPU or CUDA image")
                rep.check(backend in ("cpu", ""), "cpu overlay with --backend=%s" % backend)
            for l, q in (res.get("limits") or {}).items():
                rq = (res.get("requests") or {}).get(l)
                if l == "memory" and rq is not None and memory_bytes(q) and memory_bytes(rq):
                    rep.check(memory_bytes(rq) <= memory_bytes(q), "memory request %s > limit %s" % (rq, q))

            # --model_dir / --tokenizer_path inside the read-only weights mount.
            rep.case(cname + ": model paths on the weights volume")
            for f in ("model_dir", "tokenizer_path"):
                if f in args:
                    rep.check(any((args[f].rstrip("/") + "/").startswith(m) for m in pvc_mounts),
                              "--%s=%s is not under a weights mount %s" % (f, args[f], pvc_mounts))

    # Services, discovery and addresses.
    rep.case("%s: Services select pods and target named ports" % name)
    svc_by_name = {s["metadata"]["name"]: s for s in services}
    for s in services:
        sel = s["spec"].get("selector", {})
        targets = [w for w in ws if matches(sel, pod_labels(w))]
        if not rep.check(len(targets) == 1, "Service %s selects %d workloads" % (s["metadata"]["name"], len(targets))):
            continue
        cports = {p.get("name"): p["containerPort"] for c in targets[0]["spec"]["template"]["spec"]["containers"]
                  for p in c.get("ports", [])}
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            ok = tp in cports if isinstance(tp, str) else tp in cports.values()
            rep.check(ok, "Service %s port %s targets %s, not a container port %s" % (
                s["metadata"]["name"], p.get("name"), tp, cports))
            if isinstance(tp, str) and tp in cports:
                rep.check(p["port"] == cports[tp], "Service %s port %s=%d differs from containerPort %d" % (
                    s["metadata"]["name"], tp, p["port"], cports[tp]))
    for comp in ("worker",) if text_only else ("vision", "worker"):
        s = next((s for s in services if matches(s["spec"].get("selector"), pod_labels(comps.get(comp, {"spec": {"template": {}}})))), None)
        rep.check(s is not None and s["spec"].get("clusterIP") == "None", "%s needs a headless Service" % comp)
    sts = comps.get("worker")
    if sts:
        rep.check(sts["spec"].get("serviceName") in svc_by_name and
                  svc_by_name[sts["spec"]["serviceName"]]["spec"].get("clusterIP") == "None",
                  "StatefulSet serviceName must be a headless Service")

    rep.case("%s: gateway addresses match vision Service and worker StatefulSet" % name)
    g = effective.get("gateway")
    if g and sts and "worker" in effective and ("vision" in effective or text_only):
        want = ["%s-%d.%s:%s" % (sts["metadata"]["name"], i, sts["spec"]["serviceName"],
                                 effective["worker"]["container"]["ports"][0]["containerPort"])
                for i in range(sts["spec"].get("replicas", 1))]
        wport = {p["name"]: p["containerPort"] for p in effective["worker"]["container"]["ports"]}["grpc"]
        want = ["%s-%d.%s:%d" % (sts["metadata"]["name"], i, sts["spec"]["serviceName"], wport)
                for i in range(sts["spec"].get("replicas", 1))]
        got = (g["args"].get("worker_addresses") or "").split(",")
        rep.check(got == want, "--worker_addresses=%s but the StatefulSet has %s" % (",".join(got), ",".join(want)))
        if text_only:
            rep.check("vision_address" not in g["args"],
                      "text-only overlay: the gateway's --vision_address points at no vision tier")
    if g and sts and "worker" in effective and "vision" in effective:
        vport = {p["name"]: p["containerPort"] for p in effective["vision"]["container"]["ports"]}["grpc"]
        vs = [s["metadata"]["name"] for s in services if matches(s["spec"].get("selector"), pod_labels(effective["vision"]["workload"]))]
        va = g["args"].get("vision_address", "")
        rep.check(va in ["%s:%d" % (n, vport) for n in vs], "--vision_address=%s is not a vision Service:%d (%s)" % (va, vport, vs))
    elif not (g and sts and "worker" in effective and text_only):
        rep.fail("missing gateway/vision/worker containers")

    # PDBs.
    rep.case("%s: PodDisruptionBudgets" % name)
    for comp, w in comps.items():
        pdbs = [p for p in by_kind(docs, "PodDisruptionBudget") if matches(p["spec"].get("selector"), pod_labels(w))]
        rep.check(len(pdbs) == 1, "%s: %d PodDisruptionBudgets" % (comp, len(pdbs)))
        for p in pdbs:
            if w["spec"].get("replicas", 1) <= 1:
                rep.check(p["spec"].get("minAvailable") in (None, 0),
                          "%s: single replica with minAvailable blocks node drains" % comp)

    # HPAs.
    rep.case("%s: HorizontalPodAutoscalers" % name)
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    # The gateway scales on CPU (its queue means the workers are short); vision on its queue;
    # the decoder workers on "decode capacity is short": waiting sequences and KV usage.
    required = {"gateway": ("Resource",), "vision": ("Pods",), "worker": ("Pods",)}
    for comp in ("gateway", "worker") if text_only else ("gateway", "vision", "worker"):
        w = comps.get(comp)
        hs = [h for h in hpas if w and h["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]
              and h["spec"]["scaleTargetRef"]["kind"] == w["kind"]]
        if not rep.check(len(hs) == 1, "%s needs exactly one HPA" % comp):
            continue
        h = hs[0]
        rep.check(h["spec"].get("minReplicas", 1) <= h["spec"]["maxReplicas"], "%s HPA min > max" % comp)
        types = [m["type"] for m in h["spec"].get("metrics", [])]
        for t in required[comp]:
            rep.check(t in types, "%s HPA needs a %s metric" % (comp, t))
        if comp == "gateway":
            rep.check(types == ["Resource"], "gateway HPA must scale on CPU only: more gateways add "
                      "no decode capacity")
        names = []
        for m in h["spec"].get("metrics", []):
            if m["type"] in ("Pods", "Object", "External"):
                mname = m[m["type"].lower()]["metric"]["name"]
                names.append(mname)
                ctx["metric_refs"].append(("%s HPA %s" % (name, h["metadata"]["name"]), mname))
                rep.check(mname in ctx["adapter_metrics"], "HPA metric %s is not served by a prometheus-adapter rule (%s)" % (
                    mname, sorted(ctx["adapter_metrics"])))
        if comp == "worker":
            rep.check("glm4v_worker_waiting_sequences" in names and
                      "glm4v_worker_kv_cache_usage_ratio" in names,
                      "worker HPA needs waiting sequences and KV usage: %s" % names)

    # ServiceMonitors.
    rep.case("%s: ServiceMonitors scrape the metrics ports" % name)
    sms = by_kind(docs, "ServiceMonitor")
    for comp, w in comps.items():
        svcs = [s for s in services if matches(s["spec"].get("selector"), pod_labels(w))]
        ok = False
        for sm in sms:
            for s in svcs:
                if matches(sm["spec"].get("selector"), s["metadata"].get("labels", {})):
                    names = {p.get("name") for p in s["spec"]["ports"]}
                    for ep in sm["spec"].get("endpoints", []):
                        rep.check(ep.get("port") in names, "ServiceMonitor %s port %s not in Service %s" % (
                            sm["metadata"]["name"], ep.get("port"), s["metadata"]["name"]))
                        rep.check(ep.get("path", "/metrics") == "/metrics", "ServiceMonitor path must be /metrics")
                        ok = ok or ep.get("port") == "metrics"
        rep.check(ok, "%s: no ServiceMonitor scrapes port 'metrics'" % comp)
    for sm in sms:
        rep.check(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")

    # NetworkPolicies: only the gateway reaches internal services; Prometheus reaches metrics.
    rep.case("%s: NetworkPolicies" % name)
    nps = by_kind(docs, "NetworkPolicy")
    all_pods = [pod_labels(w) for w in ws]
    deny = [n for n in nps if "Ingress" in n["spec"].get("policyTypes", []) and not n["spec"].get("ingress")
            and all(matches(n["spec"].get("podSelector"), l) for l in all_pods)]
    rep.check(deny, "no default-deny ingress NetworkPolicy covering every pod")
    gw_labels = pod_labels(comps["gateway"]) if "gateway" in comps else {}
    for comp in ("vision", "worker"):
        if comp not in comps:
            continue
        labels = pod_labels(comps[comp])
        cports = {p["name"]: p["containerPort"] for p in effective[comp]["container"]["ports"]}
        grpc_open = False
        for n in nps:
            if not matches(n["spec"].get("podSelector"), labels):
                continue
            for rule in n["spec"].get("ingress", []) or []:
                peers = rule.get("from")
                ports = [p.get("port") for p in rule.get("ports", [])]
                rep.check(peers, "%s: NetworkPolicy %s admits any source" % (comp, n["metadata"]["name"]))
                for p in ports:
                    rep.check(p in cports or p in cports.values(), "%s: NetworkPolicy port %s is not a container port" % (comp, p))
                for peer in peers or []:
                    is_gateway = "namespaceSelector" not in peer and "ipBlock" not in peer and \
                        matches(peer.get("podSelector"), gw_labels) and peer.get("podSelector")
                    is_prom = "namespaceSelector" in peer and "ipBlock" not in peer
                    rep.check(is_gateway or is_prom, "%s: NetworkPolicy peer %s is neither the gateway nor Prometheus" % (comp, peer))
                    if is_prom:
                        rep.check(ports and all(p in ("metrics", cports["metrics"]) for p in ports),
                                  "%s: Prometheus may only reach the metrics port, got %s" % (comp, ports))
                    if is_gateway and any(p in ("grpc", cports["grpc"]) for p in ports):
                        grpc_open = True
        rep.check(grpc_open, "%s: gateway pods cannot reach the gRPC port" % comp)

    rep.case("%s: images" % name)
    for w in ws:
        for c in w["spec"]["template"]["spec"]["containers"]:
            rep.check(c["image"].split(":")[0] != "glm4v/serving-model",
                      "%s: logical image glm4v/serving-model not mapped by the overlay" % c["name"])
    return effective


def flag_value(comp_eff, flag, fallback):
    """An effective flag of a container: explicit arg, else the code's default, else fallback."""
    args, eff = comp_eff["args"], comp_eff["eff"]
    if flag in args:
        return str(args[flag])
    v = str(eff.get(flag, "")).strip('"')
    return v if v not in ("", "None") else fallback


def check_gpu_budget(rep, name, effective, sizing):
    """GPU overlays: the worker's (and a GPU-sharing vision service's) memory plan, from the
    project's own sizing code (tools/sizing), must fit the GPU the pod annotation names."""
    rep.case("%s: GPU memory plan fits (tools/sizing)" % name)
    w = effective.get("worker")
    if not w or flag_value(w, "backend", "cpu") != "cuda":
        return
    if not sizing:
        rep.pending("no --sizing binary given (bazel test passes //tools/sizing)")
        return
    ann = ((w["workload"]["spec"]["template"].get("metadata") or {}).get("annotations") or {})
    gib = ann.get("glm4v.io/gpu-memory-gib", "79.65")  # H100 80 GB unless the overlay says
    dtype = flag_value(w, "weight_dtype", "auto")
    cmd = [sizing, "--gpu_gib=" + gib, "--tp_size=" + flag_value(w, "tp_size", "1"),
           "--weight_dtype=" + ("bf16" if dtype == "auto" else dtype),
           "--kv_cache_dtype=" + ("bf16" if flag_value(w, "kv_cache_dtype", "auto") == "auto"
                                  else flag_value(w, "kv_cache_dtype", "bf16")),
           "--max_num_batched_tokens=" + flag_value(w, "max_num_batched_tokens", "2048"),
           "--max_num_seqs=" + flag_value(w, "max_num_seqs", "64"),
           "--decode_context_parallel=" + flag_value(w, "decode_context_parallel", "0")]
    # A fraction of free memory adapts to what is left; a fixed budget must fit.
    if "kv_cache_fraction" not in w["args"]:
        cmd.append("--kv_cache_bytes=" + flag_value(w, "kv_cache_bytes", "0"))
    shares = ann.get("glm4v.io/vision-shares-gpu") == "true"
    v = effective.get("vision")
    if shares:
        if not rep.check(v is not None and flag_value(v, "backend", "cpu") == "cuda",
                         "glm4v.io/vision-shares-gpu but the vision service is not on CUDA"):
            return
        vd = flag_value(v, "weight_dtype", "auto")
        cmd += ["--vision_weight_dtype=" + ("bf16" if vd == "auto" else vd),
                "--cache_entries=" + flag_value(v, "cache_entries", "256"),
                "--vision_max_batch=" + flag_value(v, "max_batch", "8"),
                "--feature_dtype=" + flag_value(v, "feature_cache_dtype", "f32")]
        aff = (w["workload"]["spec"]["template"]["spec"].get("affinity") or {}).get("podAffinity") or {}
        req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        rep.check(any(t.get("topologyKey") == "kubernetes.io/hostname" and
                      matches((t.get("labelSelector") or {}).get("matchLabels"), pod_labels(v["workload"]))
                      for t in req),
                  "vision shares the worker's GPU but no required podAffinity puts them on one node")
    out = subprocess.run(cmd, capture_output=True, text=True)
    rep.note(out.stdout.strip())
    rep.check(out.returncode == 0, "GPU plan of %s does not fit: %s%s" % (
        name, out.stdout.strip(), out.stderr.strip()))


def parse_quantity(q):
    """Kubernetes memory quantity -> bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?", str(q))
    if not m:
        return None
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12}[m.group(2)]
    return float(m.group(1)) * mult


# Every container's memory limit must cover the host budget the sizing code
# computes for its flags, plus this margin (allocator slack, libraries, the gRPC/HTTP stack).
MEMORY_MARGIN_FRACTION = 0.10
MEMORY_MARGIN_BYTES = 256 << 20


def int_flag(comp_eff, flag, fallback):
    """An integer flag whose C++ default may be an expression like `256 << 20`."""
    v = flag_value(comp_eff, flag, fallback).replace("int64_t{", "").replace("}", "")
    m = re.fullmatch(r"\s*(\d+)\s*<<\s*(\d+)\s*", v)
    return str(int(m.group(1)) << int(m.group(2))) if m else v.strip()


def check_memory_budget(rep, name, effective, sizing, root):
    """Worker and vision containers: memory limit >= the host budget from tools/sizing
    (--host_budget) for the container's own flags, + margin."""
    for comp in ("worker", "vision"):
        e = effective.get(comp)
        if not e:
            continue
        rep.case("%s: %s memory limit covers its budget (tools/sizing)" % (name, comp))
        if not sizing:
            rep.pending("no --sizing binary given (bazel test passes //tools/sizing)")
            continue
        dtype = flag_value(e, "weight_dtype", "auto")
        cmd = [sizing, "--host_budget=" + comp, "--backend=" + flag_value(e, "backend", "cpu"),
               "--weight_dtype=" + ("auto" if dtype == "auto" else dtype)]
        # The test checkpoints are sized from their own config; real ones from GLM-4V-9B's.
        if "tiny-glm4v" in flag_value(e, "model_dir", ""):
            cmd.append("--model_dir=" + os.path.join(root, "tests/data/tiny-glm4v/model"))
        if comp == "worker":
            kv = int_flag(e, "kv_cache_bytes", "0")
            cmd += ["--tp_size=" + flag_value(e, "tp_size", "1"), "--kv_cache_bytes=" + kv,
                    "--max_num_batched_tokens=" + flag_value(e, "max_num_batched_tokens", "2048"),
                    "--max_num_seqs=" + flag_value(e, "max_num_seqs", "64")]
        else:
            cmd += ["--cache_entries=" + flag_value(e, "cache_entries", "256"),
                    "--feature_dtype=" + flag_value(e, "feature_cache_dtype", "f32"),
                    "--vision_max_batch=" + flag_value(e, "max_batch", "8")]
        out = run(cmd)
        m = re.search(r"budget_bytes=(\d+)", out.stdout)
        if not rep.check(out.returncode == 0 and m, "tools/sizing failed: %s%s" % (out.stdout, out.stderr)):
            continue
        budget = int(m.group(1))
        rep.note(out.stdout.strip())
        need = budget * (1 + MEMORY_MARGIN_FRACTION) + MEMORY_MARGIN_BYTES
        res = e["container"].get("resources") or {}
        q = (res.get("limits") or {}).get("memory")
        got = parse_quantity(q) if q is not None else None
        rep.check(got is not None and got >= need,
                  "%s memory limit %s is below its budget %.2f GiB + 10 %% + 256 MiB (tools/sizing: %s)" % (
                      comp, q, budget / 2 ** 30, out.stdout.strip()))


def check_launcher(rep, src, effective):
    rep.case("cpu-demo: same process flags as tools/launcher")
    if not src.bins["launch"]["files"]:
        rep.pending("tools/launcher sources not written yet: cannot compare the cpu-demo args with the launcher")
        return
    passed = src.launcher_flags()
    child_flags = {}
    for b in ("gateway", "vision_server", "worker_server"):
        child_flags[b] = set(src.flags(b)) if src.present(b) else None
    for comp, e in effective.items():
        binary = e["binary"]
        for f in e["args"]:
            if f in PLACEMENT_FLAGS:
                continue
            rep.check(f in passed, "cpu-demo %s passes --%s, which tools/launcher never passes (%s)" % (
                comp, f, ", ".join(src.bins["launch"]["files"])))
    known_any = set().union(*[s for s in child_flags.values() if s is not None]) if any(
        s is not None for s in child_flags.values()) else set()
    for f in sorted(passed - PLACEMENT_FLAGS):
        owners = [b for b, s in child_flags.items() if s is not None and f in s]
        if not owners:
            if f not in known_any and f not in src.bins["launch"]["flags"]:
                rep.note("launcher literal --%s is no flag of a written child binary" % f)
            continue
        used = [comp for comp, e in effective.items() if e["binary"] in owners and f in e["args"]]
        rep.check(used, "tools/launcher passes --%s (to %s) but the cpu-demo overlay does not" % (f, "/".join(owners)))
    for b, s in child_flags.items():
        if s is None:
            rep.pending("%s not written yet: launcher flags for it not compared" % b)


def check_tp_group(rep, src, root):
    rep.case("deploy/docker/glm4v-tp-group: flags are worker_server flags")
    text = read(root, "deploy/docker/glm4v-tp-group")
    used = set(re.findall(r"--([a-z][a-z0-9_]*)=", text))
    if not src.present("worker_server"):
        rep.pending("worker_server sources not written: flags %s unchecked" % sorted(used))
        return
    for f in used:
        rep.check(f in src.flags("worker_server"), "glm4v-tp-group uses --%s, not a worker_server flag" % f)
    rep.check(re.search(r"glm4v-tp-group\b|worker_server", text), "script does not run worker_server")


def check_docker(rep, src, root):
    """Images: which binaries each Dockerfile bundles; every Bazel label resolves."""
    image_bins = {}
    for repo, df in IMAGES.items():
        rep.case("deploy/docker/%s: Bazel targets exist" % df)
        text = read(root, "deploy/docker/" + df)
        m = re.search(r'ARG BAZEL_TARGETS="([^"]+)"', text)
        if not rep.check(m, "no ARG BAZEL_TARGETS=\"...\""):
            continue
        bins = set()
        for label in m.group(1).split():
            pkg, _, tname = label[2:].partition(":")
            bins.add(tname)
            build = os.path.join(root, pkg, "BUILD.bazel")
            if not os.path.exists(build):
                rep.pending("%s: %s/BUILD.bazel not written yet" % (label, pkg))
                continue
            rep.check(re.search(r'name\s*=\s*"%s"' % re.escape(tname), read(root, pkg + "/BUILD.bazel")),
                      "%s: no target %s in %s/BUILD.bazel" % (label, tname, pkg))
        rep.check("tools/install_deps.sh" in text, "build stage must install the packages of tools/install_deps.sh")
        rep.check("tools/bundle.sh" in text, "binaries must be bundled with tools/bundle.sh")
        rep.check(re.search(r"^USER\s+10001", text, re.M), "runtime stage must run as uid 10001")
        rep.check("glm4v-tp-group" in text, "image must carry glm4v-tp-group")
        bins.add("glm4v-tp-group")
        image_bins[repo] = bins
    return image_bins


def check_monitoring(rep, src, root, base_docs, metric_refs):
    rep.case("alerts: deploy/prometheus/alerts.yml == k8s PrometheusRule")
    import yaml
    alerts = yaml.safe_load(read(root, "deploy/prometheus/alerts.yml"))
    rules = [d for d in base_docs if d.get("kind") == "PrometheusRule"]
    rep.check(len(rules) == 1, "k8s/base must render exactly one PrometheusRule")
    if rules:
        rep.check(rules[0]["spec"]["groups"] == alerts["groups"],
                  "PrometheusRule groups differ from deploy/prometheus/alerts.yml (regenerate k8s/base/prometheus-rule.yaml)")
    exprs = []
    for g in alerts["groups"]:
        for r in g["rules"]:
            rep.check(r.get("alert") and r.get("expr") and r.get("labels", {}).get("severity"),
                      "rule %s needs alert, expr and severity" % r.get("alert"))
            exprs.append(r["expr"])
            metric_refs += [("alert %s" % r.get("alert"), n) for n in METRIC_RE.findall(r["expr"])]
    rep.case("alerts: cover error rate, TTFT p95, queue growth, KV saturation, service down")
    alltext = "\n".join(exprs)
    for topic, pat in REQUIRED_ALERT_TOPICS.items():
        rep.check(re.search(pat, alltext), "no alert for %s (/%s/)" % (topic, pat))
    if shutil.which("promtool"):
        p = run(["promtool", "check", "rules", os.path.join(root, "deploy/prometheus/alerts.yml")])
        rep.check(p.returncode == 0, "promtool check rules: " + p.stdout + p.stderr)
    else:
        rep.note("promtool not installed: PromQL syntax not checked")

    rep.case("prometheus: scrape configs")
    prom = yaml.safe_load(read(root, "deploy/prometheus/prometheus.yml"))
    rep.check("alerts.yml" in prom.get("rule_files", []), "prometheus.yml must load alerts.yml")
    local = yaml.safe_load(read(root, "deploy/prometheus/prometheus-local.yml"))
    for job in local["scrape_configs"]:
        comp = job["job_name"].replace("glm4v-", "")
        b = PROCESS_OF_COMPONENT.get(comp)
        if not rep.check(b, "unknown local job %s" % job["job_name"]):
            continue
        port = int(job["static_configs"][0]["targets"][0].rsplit(":", 1)[1])
        if src.present(b) and "metrics_port" in src.flags(b):
            rep.check(port == int_default(src.flags(b)["metrics_port"][1]),
                      "%s local target port %d != --metrics_port default of %s" % (job["job_name"], port, b))
        else:
            rep.pending("%s: --metrics_port default not in the code yet" % b)

    rep.case("prometheus-adapter: rules")
    adapter_docs = ctx_adapter_docs(root)
    cfg = None
    for d in adapter_docs:
        if d.get("kind") == "ConfigMap" and "config.yaml" in d.get("data", {}):
            cfg = yaml.safe_load(d["data"]["config.yaml"])
    names = set()
    if rep.check(cfg and cfg.get("rules"), "k8s/monitoring must render the adapter ConfigMap with rules"):
        for r in cfg["rules"]:
            for k in ("seriesQuery", "metricsQuery"):
                metric_refs += [("adapter rule", n) for n in METRIC_RE.findall(r.get(k, ""))]
            ov = r.get("resources", {}).get("overrides", {})
            rep.check("namespace" in ov and "pod" in ov, "adapter rule must map namespace and pod")
            name = r.get("name", {}).get("as") or METRIC_RE.findall(r["seriesQuery"])[0]
            names.add(name)
            metric_refs.append(("adapter rule name", name))

    rep.case("grafana: dashboard")
    dash = json.loads(read(root, "deploy/grafana/glm4v-dashboard.json"))
    n = 0
    def walk(o):
        nonlocal n
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "expr" and isinstance(v, str):
                    n += 1
                    metric_refs.extend(("dashboard", m) for m in METRIC_RE.findall(v))
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    rep.check(n >= 10, "dashboard has only %d queries" % n)
    rep.check(dash.get("uid") and dash.get("title"), "dashboard needs uid and title")
    return names


_ADAPTER = {}


def ctx_adapter_docs(root):
    return _ADAPTER.get("docs", [])


def check_metric_refs(rep, src, metric_refs):
    rep.case("metrics: every referenced glm4v_* metric is exported by the code")
    rep.check(src.metrics, "no glm4v_* metric literals found in services/ or worker/ sources")
    seen = set()
    for where, name in metric_refs:
        if (where, name) in seen:
            continue
        seen.add((where, name))
        known = src.metric_known(name)
        if known is None:
            rep.pending("%s uses %s: its service exports no glm4v_* metric in the code yet" % (where, name))
        else:
            rep.check(known, "%s uses %s, which no service exports (see %s)" % (
                where, name, ", ".join(sorted(m for m in src.metrics if m.split("_")[1] == name.split("_")[1]))))


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=None)
    ap.add_argument("--strict", action="store_true", help="PENDING checks fail too")
    ap.add_argument("--junit", default=os.environ.get("XML_OUTPUT_FILE"))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--sizing", default=None, help="tools/sizing binary (GPU memory plans)")
    opts = ap.parse_args()
    root = os.path.abspath(opts.root or os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".."))
    if not os.path.isdir(os.path.join(root, "k8s")):
        die("no k8s/ under %s (pass --root)" % root)

    try:
        import yaml
    except ImportError:
        die("python3 module 'yaml' missing: install Debian's python3-yaml (tools/install_deps.sh)")
    kubectl = shutil.which("kubectl")
    if not kubectl:
        die("kubectl not found on PATH: install Debian's kubernetes-client (tools/install_deps.sh); "
            "the overlays cannot be rendered without it")
    yamllint = shutil.which("yamllint")
    if not yamllint:
        die("yamllint not found on PATH: install Debian's yamllint (tools/install_deps.sh)")
    lint_cfg = os.path.join(root, "tests/deploy/yamllint.yaml")

    rep = Report()
    src = Sources(root)

    rep.case("sources: binaries found")
    for b, info in src.bins.items():
        if info["present"]:
            rep.note("%s: %d flags from %s" % (b, len(info["flags"]), ", ".join(info["files"])))
        else:
            rep.pending("%s: no main() in %s yet" % (b, " ".join(BINARIES[b][1])))

    rep.case("yamllint: sources")
    srcs = sorted(set(glob.glob(os.path.join(root, "k8s/**/*.yaml"), recursive=True) +
                      glob.glob(os.path.join(root, "deploy/**/*.y*ml"), recursive=True)))
    p = run([yamllint, "--strict", "-c", lint_cfg] + srcs)
    rep.check(p.returncode == 0, "yamllint failed:\n" + p.stdout + p.stderr)

    overlays = sorted(os.path.basename(os.path.dirname(k)) for k in
                      glob.glob(os.path.join(root, "k8s/overlays/*/kustomization.yaml")))
    rep.case("overlays: required ones exist")
    for o in REQUIRED_OVERLAYS:
        rep.check(o in overlays, "k8s/overlays/%s missing" % o)
    rep.check(any(re.fullmatch(r"gpu-tp[48]", o) for o in overlays), "no gpu-tp4/gpu-tp8 overlay")

    rendered = {}
    tmp = tempfile.mkdtemp(prefix="deploy_test.")
    for target in ["base", "monitoring"] + ["overlays/" + o for o in overlays]:
        rep.case("render: k8s/%s" % target)
        p = run([kubectl, "kustomize", os.path.join(root, "k8s", target)])
        if not rep.check(p.returncode == 0, "kubectl kustomize k8s/%s failed:\n%s" % (target, p.stderr)):
            continue
        out = os.path.join(tmp, target.replace("/", "_") + ".yaml")
        with open(out, "w") as f:
            f.write(p.stdout)
        lp = run([yamllint, "--strict", "-c", lint_cfg, out])
        rep.check(lp.returncode == 0, "yamllint of rendered k8s/%s:\n%s" % (target, lp.stdout + lp.stderr))
        try:
            rendered[target] = [d for d in yaml.safe_load_all(p.stdout) if d]
        except yaml.YAMLError as e:
            rep.fail("rendered k8s/%s is not YAML: %s" % (target, e))
    _ADAPTER["docs"] = rendered.get("monitoring", [])

    metric_refs = []
    image_bins = check_docker(rep, src, root)
    adapter_metrics = check_monitoring(rep, src, root, rendered.get("base", []), metric_refs)
    check_tp_group(rep, src, root)
    for o in overlays:
        docs = rendered.get("overlays/" + o)
        if docs is None:
            continue
        ctx = {"cpu_only": o.startswith("cpu"), "image_bins": image_bins, "metric_refs": metric_refs,
               "adapter_metrics": adapter_metrics, "components": {o: overlay_components(root, o)}}
        eff = check_overlay(rep, src, o, docs, ctx)
        rep.case("%s: namespace set" % o)
        rep.check(all(d["metadata"].get("namespace") for d in docs), "every object needs a namespace")
        if o == "cpu-demo":
            check_launcher(rep, src, eff)
        check_gpu_budget(rep, o, eff, opts.sizing and os.path.abspath(opts.sizing))
        check_memory_budget(rep, o, eff, opts.sizing and os.path.abspath(opts.sizing), root)
        m = re.fullmatch(r"gpu-tp(\d+)", o)
        if m:
            rep.case("%s: worker --tp_size matches the overlay name" % o)
            rep.check(eff.get("worker", {}).get("args", {}).get("tp_size") == m.group(1),
                      "%s runs --tp_size=%s" % (o, eff.get("worker", {}).get("args", {}).get("tp_size")))
    check_metric_refs(rep, src, metric_refs)
    shutil.rmtree(tmp, ignore_errors=True)

    # Report.
    counts = {"pass": 0, "fail": 0, "pending": 0}
    for name, status, msgs in rep.cases:
        if opts.strict and status == "pending":
            status = "fail"
        counts[status] += 1
        if status != "pass" or opts.verbose:
            print("[%s] %s" % (status.upper(), name))
            for m in msgs:
                print("    " + m)
    if opts.junit:
        rep.write_junit(opts.junit)
    print("deploy_test: %d passed, %d failed, %d pending (inputs not written yet%s)" % (
        counts["pass"], counts["fail"], counts["pending"], "; --strict: pending fails" if opts.strict else ""))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
