"""benchmarks/bench_functions.py at a tiny size, so the script that sizes template.yml cannot rot (no timed
asserts: the figures are reported, not judged), and its sizing rule."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_functions as bench


def test_every_function_runs_measured_on_a_tiny_file(db_url: str, tmp_path: Path) -> None:
    results = bench.main(["--rows", "2000", "--data", str(tmp_path), "--no-glue", "--database-url", db_url])
    kept = tmp_path / "transactions-2000" / "transactions_20240301.dat"  # generated once, reused by path
    assert [m.state for m in results] == [s.state for s in bench.STEPS if s.module != "glue"]
    for m in results:
        assert (m.rows, m.file_bytes) == (2000, kept.stat().st_size)
        assert 50 < m.peak_mib < 1024, m  # a Python process with its imports, not the forked caller's size
        assert m.wall_s > 0 and m.cpu_s > 0


def test_sizing_rule_headroom_vcpu_share_tmp_and_lambda_limit() -> None:
    def measured(peak: float, wall: float, cpu: float, tmp: float = 0, io: float = 0) -> bench.Measurement:
        return bench.Measurement("S", "m", 1, 1, peak, wall, cpu, tmp, io)

    small = bench.size_lambda(measured(100, 2, 1))
    assert (small.memory_mb, small.timeout_s, small.fits, small.tmp_mb) == (256, 60, True, 512)  # floors
    light = bench.size_lambda(measured(1000, 30, 8))  # 1536 MB: 0.87 vCPU, the wall time still dominates
    assert (light.memory_mb, round(light.lambda_s), light.timeout_s) == (1536, 30, 90)
    heavy = bench.size_lambda(measured(300, 20, 40, tmp=729))  # CPU-bound: one full vCPU, 40 s of CPU
    assert (heavy.memory_mb, round(heavy.lambda_s), heavy.timeout_s, heavy.tmp_mb) == (1769, 40, 120, 1536)
    streaming = bench.size_lambda(measured(300, 10, 5, io=4000))  # 4,000 MiB through S3 at 40 MiB/s: 100 s
    assert (streaming.memory_mb, round(streaming.lambda_s), streaming.timeout_s) == (512, 100, 300)
    too_long = bench.size_lambda(measured(400, 400, 400))
    assert too_long.timeout_s == 900 and not too_long.fits
