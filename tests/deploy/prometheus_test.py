#!/usr/bin/env python3
"""The monitoring contract with Debian's real Prometheus tools (package `prometheus`).

1. `promtool check rules` and `promtool test rules` on deploy/prometheus: alerts.yml parses and
   every alert passes its unit tests (alerts_test.yml: firing and quiet cases).
2. The whole stack (tools/launcher: gateway, vision, worker) on the binaries' default metrics
   ports answers a request; every process's /metrics passes `promtool check metrics` (naming and
   type conventions, e.g. no gauge named *_total).
3. The real Prometheus server with the project's one-machine config
   (deploy/prometheus/prometheus-local.yml, unmodified when the default ports are free) scrapes
   all three targets as up, evaluates every alert rule healthy, and answers a query for one
   metric of each service.

Usage: prometheus_test.py --root REPO --launcher BIN --bin_dir DIR
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

DEFAULT_METRICS_PORTS = {"gateway": 9480, "vision": 9481, "worker": 9482}


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Failures:
    def __init__(self):
        self.items = []

    def check(self, ok, what):
        print("%s %s" % ("OK  " if ok else "FAIL", what.splitlines()[0] if what else ""))
        if not ok:
            self.items.append(what)
        return ok


def promtool_rules(root, f):
    rules = os.path.join(root, "deploy", "prometheus")
    p = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=rules,
                       capture_output=True, text=True)
    f.check(p.returncode == 0, "promtool check rules alerts.yml\n" + p.stdout + p.stderr)
    p = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=rules,
                       capture_output=True, text=True)
    f.check(p.returncode == 0, "promtool test rules alerts_test.yml\n" + p.stdout + p.stderr)
    # Every alert of alerts.yml has a unit test.
    alerts = [l.split(":", 1)[1].strip() for l in open(os.path.join(rules, "alerts.yml"))
              if l.strip().startswith("- alert:")]
    tests = open(os.path.join(rules, "alerts_test.yml")).read()
    untested = [a for a in alerts if "alertname: %s\n" % a not in tests]
    f.check(not untested and len(alerts) >= 12, "every alert has a unit test (%d alerts; untested: %s)"
            % (len(alerts), untested))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--bin_dir", required=True)
    opts = ap.parse_args()
    root = os.path.abspath(opts.root)
    for tool in ("promtool", "prometheus"):
        if not shutil.which(tool):
            print("prometheus_test: %s not found (Debian package prometheus; tools/install_deps.sh)"
                  % tool)
            return 1
    f = Failures()
    promtool_rules(root, f)

    # The stack on the default metrics ports when they are free (the documented setup).
    defaults = all(port_free(p) for p in DEFAULT_METRICS_PORTS.values())
    metrics = dict(DEFAULT_METRICS_PORTS) if defaults else {k: free_port() for k in DEFAULT_METRICS_PORTS}
    gateway_port = free_port()
    tmp = tempfile.mkdtemp(prefix="prometheus_test.")
    log_path = os.path.join(tmp, "launcher.log")
    launcher = subprocess.Popen(
        [os.path.abspath(opts.launcher), "--bin_dir=" + os.path.abspath(opts.bin_dir),
         "--model_dir=" + os.path.join(root, "tests/data/tiny-glm4v/model"),
         "--tokenizer_path=" + os.path.join(root, "tests/data/tiny-glm4v/tokenizer/tokenizer.model"),
         "--gateway_port=%d" % gateway_port, "--vision_port=%d" % free_port(),
         "--worker_port=%d" % free_port(),
         "--gateway_metrics_port=%d" % metrics["gateway"],
         "--vision_metrics_port=%d" % metrics["vision"],
         "--worker_metrics_port=%d" % metrics["worker"],
         "--gateway_flags=--http_port=%d" % free_port(),
         "--drain_grace_seconds=2", "--startup_timeout_seconds=60"],
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    prometheus = None
    try:
        deadline = time.time() + 90
        while time.time() < deadline and "READY" not in open(log_path).read():
            if launcher.poll() is not None:
                break
            time.sleep(0.2)
        if not f.check("READY" in open(log_path).read(), "stack started\n" + open(log_path).read()[-3000:]):
            return 1
        # One request, so the request and latency families have samples.
        http_port = [a for a in launcher.args if a.startswith("--gateway_flags=--http_port=")][0]
        http_port = int(http_port.rsplit("=", 1)[1])
        body = json.dumps({"model": "glm-4v-9b", "max_tokens": 4,
                           "messages": [{"role": "user", "content": "Hello"}]}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % http_port, body,
                                     {"Content-Type": "application/json"})
        f.check(urllib.request.urlopen(req, timeout=30).status == 200, "a chat request")

        for name, port in metrics.items():
            text = get("http://127.0.0.1:%d/metrics" % port)
            p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True)
            f.check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
                    "promtool check metrics: %s\n%s%s" % (name, p.stdout, p.stderr))

        # The real server with the project's config (ports rewritten only if they were taken).
        config = open(os.path.join(root, "deploy/prometheus/prometheus-local.yml")).read()
        for name, port in DEFAULT_METRICS_PORTS.items():
            config = config.replace("127.0.0.1:%d" % port, "127.0.0.1:%d" % metrics[name])
        shutil.copy(os.path.join(root, "deploy/prometheus/alerts.yml"), tmp)
        with open(os.path.join(tmp, "prometheus.yml"), "w") as out:
            out.write(config)
        p = subprocess.run(["promtool", "check", "config", os.path.join(tmp, "prometheus.yml")],
                           capture_output=True, text=True)
        f.check(p.returncode == 0, "promtool check config prometheus-local.yml\n" + p.stdout + p.stderr)
        web = 9090 if port_free(9090) else free_port()
        prometheus = subprocess.Popen(
            ["prometheus", "--config.file=" + os.path.join(tmp, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % web],
            stdout=open(os.path.join(tmp, "prometheus.log"), "w"), stderr=subprocess.STDOUT)
        api = "http://127.0.0.1:%d/api/v1/" % web
        targets, rules = {}, []
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                active = json.loads(get(api + "targets"))["data"]["activeTargets"]
                targets = {t["labels"]["job"]: t["health"] for t in active}
                groups = json.loads(get(api + "rules"))["data"]["groups"]
                rules = [(r["name"], r["health"], r.get("lastError", "")) for g in groups
                         for r in g["rules"]]
                if (len(targets) == 3 and all(h == "up" for h in targets.values()) and
                        len(rules) >= 12 and all(h == "ok" for _, h, _ in rules)):
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(1)
        f.check(len(targets) == 3 and all(h == "up" for h in targets.values()),
                "Prometheus scrapes gateway, vision and worker: %s\n%s" % (
                    targets, open(os.path.join(tmp, "prometheus.log")).read()[-2000:]))
        f.check(len(rules) >= 12 and all(h == "ok" for _, h, _ in rules),
                "Prometheus evaluates every alert rule healthy: %s" % rules)
        # One metric of each service through the query API.
        for job, metric in (("glm4v-gateway", "glm4v_gateway_inflight_requests"),
                            ("glm4v-vision", "glm4v_vision_queue_depth"),
                            ("glm4v-worker", "glm4v_worker_kv_blocks_capacity")):
            result = []
            for _ in range(30):
                try:
                    result = json.loads(get(api + "query?query=%s" % metric))["data"]["result"]
                except (OSError, ValueError, KeyError):
                    result = []
                if result:
                    break
                time.sleep(1)
            f.check(len(result) == 1 and result[0]["metric"].get("job") == job,
                    "Prometheus answers %s from %s: %s" % (metric, job, result))
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    for item in f.items:
        print("\n" + item)
    print("prometheus_test: %d failure(s)%s" % (len(f.items), "" if defaults else
          " (default metrics ports were taken: ran on free ones)"))
    return 1 if f.items else 0


if __name__ == "__main__":
    sys.exit(main())
