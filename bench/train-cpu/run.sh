#!/bin/bash
# Same-run comparison with the PyTorch CPU peer. Usage: run.sh <train-cpu-bench binary> <torch_cpu_lora.py> [threads]
# Prints JSON lines: ours per shape, the peer per shape, and the peer process's peak RSS.
set -eu
BENCH=$1; PEER=$2; THREADS=${3:-$(nproc)}; PY=${PYTHON:-python3}  # PYTHON=/usr/bin/python3 for Debian python3-torch
for shape in tiny-llama3vocab smollm2-135m; do "$BENCH" $shape $THREADS; done
"$PY" -c "import resource,subprocess,sys,json; subprocess.run(sys.argv[1:],check=True); print(json.dumps(dict(peer_peak_rss_bytes=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024)))" "$PY" "$PEER" $THREADS
