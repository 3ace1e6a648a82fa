# The SM clock and board power during a run, from NVML every ~2 ms until SIGTERM; then one JSON line:
# the clock's distribution over busy samples (power above 250 W). Whether a step is held by the power
# cap, which a profiler running one kernel at a time never shows. On the GPU machine (stage-train-cuda.sh
# copies it):  python3 clocks.py > clocks.json & P=$!; dotnet bench/train-cuda.dll --bench-only --steps 30 --shapes ...; kill $P
import json, signal, statistics, sys, time
try:
    import pynvml as nvml
except ImportError:
    from nvidia_ml_py import pynvml as nvml

nvml.nvmlInit()
handle = nvml.nvmlDeviceGetHandleByIndex(0)
samples = []


def report(*_):
    busy = [s for s in samples if s[1] > 250]
    clocks = sorted(c for c, _ in busy)
    out = {"samples": len(samples), "busy": len(busy)}
    if busy:
        out.update({
            "sm_mhz_median": statistics.median(clocks), "sm_mhz_p5": clocks[len(clocks) // 20], "sm_mhz_min": clocks[0],
            "sm_mhz_mean": round(statistics.mean(clocks)), "max_sm_mhz": nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
            "power_w_median": round(statistics.median(p for _, p in busy)), "power_w_max": round(max(p for _, p in busy)),
            "power_limit_w": nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
            "share_below_1800_mhz": round(sum(c < 1800 for c in clocks) / len(clocks), 3),
        })
    print(json.dumps(out), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
while True:
    samples.append((nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM), nvml.nvmlDeviceGetPowerUsage(handle) / 1000))
    time.sleep(0.002)
