#!/usr/bin/env bash
# Image bytes -> normalized 1120x1120 tensor: this project next to libjpeg-turbo's djpeg (the
# decode alone, the floor) and Pillow + numpy (the peer), same machine, same run.
#   tools/bench/preprocess_bench.sh [RUNS]
# Needs python3-pil, python3-numpy and libjpeg-turbo-progs (Debian).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-15}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/preprocess-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
/usr/bin/python3 tools/bench/make_bench_images.py "$DIR"
bazel build -c opt //services/vision/image:preprocess_bench >/dev/null 2>&1
echo "## djpeg (decode alone, median of $RUNS process runs, startup included)"
for f in "$DIR"/*.jpg; do
  /usr/bin/python3 - "$f" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
path, runs = sys.argv[1], int(sys.argv[2])
t = []
for _ in range(runs):
    s = time.perf_counter()
    subprocess.run(["djpeg", "-outfile", "/dev/null", path], check=True)
    t.append((time.perf_counter() - s) * 1e3)
print(f"{path.split('/')[-1]}: {statistics.median(t):.1f} ms")
PY
done
echo "## Pillow + numpy (median of $RUNS)"
/usr/bin/python3 tools/bench/pillow_preprocess.py 1120 "$RUNS" "$DIR"/phone_12mp.jpg \
  "$DIR"/frame_1080p.png "$DIR"/square_1120.jpg | sed "s|$DIR/||"
echo "## this project (median of $RUNS)"
./bazel-bin/services/vision/image/preprocess_bench --iters="$RUNS" "$DIR"/phone_12mp.jpg \
  "$DIR"/frame_1080p.png "$DIR"/square_1120.jpg | sed "s|$DIR/||"
