"""Claims on local zone files (flock, dropped by the kernel when the process dies) and the sweep of temp
files left by dead writers: a dead run's leftovers are taken over or removed, a live run's never."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from etl.io import claims
from etl.io.zones import LocalZone, sweep_dead_temps, temp_path

REPO = Path(__file__).resolve().parents[2]


def holder(zone: LocalZone, key: str) -> subprocess.Popen[str]:
    """Another process that claims ``key`` and then waits (a live run)."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from etl.io import claims
        from etl.io.zones import LocalZone
        held = claims.claim(LocalZone({str(zone.root)!r}), {key!r})
        print("held" if held else "refused", flush=True)
        time.sleep(600)
        """
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None and run.stdout.readline().strip() == "held"
    return run


def test_a_claim_is_exclusive_and_dies_with_its_process(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path)
    first = claims.claim(zone, "feed/a.dat")
    assert first is not None and claims.claim(zone, "feed/a.dat") is None
    first.release()
    assert not claims.lock_path(zone, "feed/a.dat").exists()  # no lock file left behind
    other = holder(zone, "feed/a.dat")
    try:
        assert claims.claim(zone, "feed/a.dat") is None  # a live run holds it
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    again = claims.claim(zone, "feed/a.dat")  # kill -9 released it
    assert again is not None
    again.release()


def test_place_takes_over_a_dead_runs_copy_and_passes_a_live_ones(tmp_path: Path) -> None:
    src, dst = LocalZone(tmp_path / "landing"), LocalZone(tmp_path / "raw")
    (tmp_path / "landing").mkdir()
    content = b"H|...\n" * 100
    (src.root / "x.dat").write_bytes(content)
    (dst.root / "feed").mkdir(parents=True)
    (dst.root / "feed" / "x.dat").write_bytes(content)  # a dead run's copy ...
    (dst.root / "feed" / "x.dat.report.json").write_text("{}")  # ... and its stale report

    key, held = claims.place(src, "x.dat", dst, "feed/x.dat", sidecars=(".report.json",))
    assert key == "feed/x.dat" and held is not None
    assert not (src.root / "x.dat").exists()  # our copy went, the dead run's is used
    assert sorted(p.name for p in (dst.root / "feed").iterdir()) == [".x.dat.lock", "x.dat"]

    (src.root / "x.dat").write_bytes(content)  # the same file again while the first run lives
    second, held2 = claims.place(src, "x.dat", dst, "feed/x.dat")
    assert second == "feed/1/x.dat" and held2 is not None
    (src.root / "x.dat").write_bytes(b"other content\n")  # different content under a free, unclaimed name
    held2.release()
    third, held3 = claims.place(src, "x.dat", dst, "feed/x.dat")
    assert third == "feed/2/x.dat"  # neither the live run's nor a different file's slot is taken
    for claim in (held, held3):
        assert claim is not None
        claim.release()


def test_sweep_removes_dead_writers_temps_only(tmp_path: Path) -> None:
    target = tmp_path / "stage" / "x.parquet"
    target.parent.mkdir()
    live = temp_path(target)  # this process: alive
    live.write_bytes(b"live")
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = live.name.split(".tmp-", 1)[1].rsplit("-", 2)[0]
    dead = target.with_name(f".x.parquet.tmp-{host}-{int(dead_pid.stdout)}-0123456789ab")
    dead.write_bytes(b"dead")
    elsewhere = target.with_name(".x.parquet.tmp-otherhost-1-0123456789ab")  # another host's: not ours to judge
    elsewhere.write_bytes(b"?")
    sibling = target.with_name(".y.parquet.tmp-" + dead.name.split(".tmp-", 1)[1])  # another file's
    sibling.write_bytes(b"y")
    time.sleep(0.1)
    assert sweep_dead_temps(target) == [dead]
    assert live.exists() and elsewhere.exists() and sibling.exists() and not dead.exists()
