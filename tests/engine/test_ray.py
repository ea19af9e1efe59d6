"""The Ray executor on a real two-node Ray cluster on this machine (`ray start --head` and a
second `ray start --address` with its own resources, temp dir and node cache), started and
stopped by the tests: the same seeded search gives the same store as the local executor, and
a node killed mid-run costs retries, never a lost or duplicated result."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is installed by scripts/install-deps.sh (the ray extra)")

PF = [sys.executable, "-m", "policyforge"]
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked(marker: str) -> list[int]:
    """Processes carrying `marker` in their environment (every process a node started)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "environ").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Cluster:
    def __init__(self):
        # short paths: Ray's Unix sockets live under the temp dir (108-byte limit)
        self.root = Path(tempfile.mkdtemp(prefix="pfray", dir="/tmp"))
        self.home = self.root / "home"          # Ray keeps an auth token under $HOME/.ray
        self.home.mkdir()
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.markers = {"head": f"PF_RAY_TEST_HEAD={uuid.uuid4().hex}", "node2": f"PF_RAY_TEST_NODE2={uuid.uuid4().hex}"}

    def env(self, node: str) -> dict:
        k, v = self.markers[node].split("=")
        return dict(os.environ, HOME=str(self.home), RAY_USAGE_STATS_ENABLED="0", **{k: v},
                    POLICYFORGE_RAY_CACHE=str(self.root / f"cache-{node}"))

    def start(self) -> "Cluster":
        common = ["--num-cpus", "1", "--object-store-memory", str(100 << 20), "--disable-usage-stats"]
        subprocess.run([RAY, "start", "--head", "--port", str(self.port), "--temp-dir", str(self.root / "h"),
                        "--include-dashboard=false", *common], env=self.env("head"), check=True,
                       capture_output=True, timeout=120)
        subprocess.run([RAY, "start", "--address", self.address, "--temp-dir", str(self.root / "w"),
                        "--resources", '{"node2": 1}', *common], env=self.env("node2"), check=True,
                       capture_output=True, timeout=120)
        return self

    def kill(self, node: str) -> None:
        for pid in _marked(self.markers[node]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.kill("node2")
        self.kill("head")
        subprocess.run(["rm", "-rf", str(self.root)], check=False)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster().start()
    try:
        yield c
    finally:
        c.stop()


def _rows(run: Path) -> list[tuple]:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return [tuple(r) for r in con.execute("SELECT id, round, source_hash, status, score FROM candidates ORDER BY id")]
    finally:
        con.close()


def _baselines(run: Path) -> list[tuple]:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return [tuple(r) for r in con.execute("SELECT name, score FROM baselines ORDER BY name")]
    finally:
        con.close()


SEARCH = ["run", "cache", "--generator", "offline", "--seed", "5", "--workers", "2", "-q"]


def _run(args, env, timeout=600):
    return subprocess.run(PF + args, capture_output=True, text=True, env=env, timeout=timeout)


def test_same_seeded_search_gives_the_same_store_with_ray_and_local(cluster, tmp_path):
    local = _run([*SEARCH, "--rounds", "2", "--candidates-per-round", "4", "--out", str(tmp_path / "local")],
                 cluster.env("head"))
    assert local.returncode == 0, local.stderr
    remote = _run([*SEARCH, "--rounds", "2", "--candidates-per-round", "4", "--out", str(tmp_path / "ray"),
                   "--executor", "ray", "--ray-address", cluster.address], cluster.env("head"))
    assert remote.returncode == 0, remote.stderr
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    assert _baselines(tmp_path / "ray") == _baselines(tmp_path / "local")
    # both nodes prepared the workload in their own cache: nothing went through a shared path
    assert any((cluster.root / "cache-node2" / "prepared").iterdir())


def test_a_suite_with_held_out_workloads_gives_the_same_results_on_ray(cluster, tmp_path):
    suite = ["--rounds", "1", "--candidates-per-round", "4", "-o", "trace=demo", "-o", "trace=zipf",
             "-o", "heldout.trace=scan-loop", "-o", "suite.finalists=2"]
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--ray-address", cluster.address])):
        r = _run([*SEARCH, *suite, "--out", str(tmp_path / name), *extra], cluster.env("head"))
        assert r.returncode == 0, r.stderr
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    held = [json.loads((tmp_path / n / "best.json").read_text())["suite"]["heldout"] for n in ("local", "ray")]
    assert held[0] == held[1] and held[0][0]["workload"] == "trace=scan-loop"


def test_a_node_killed_mid_run_costs_retries_not_results(cluster, tmp_path):
    ref = _run([*SEARCH, "--rounds", "3", "--candidates-per-round", "6", "--out", str(tmp_path / "local"),
                "-o", "trace=zipf"], cluster.env("head"))
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "ray"
    proc = subprocess.Popen(PF + [*SEARCH, "--rounds", "3", "--candidates-per-round", "6", "--out", str(run),
                                  "-o", "trace=zipf", "--executor", "ray", "--ray-address", cluster.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env("head"))
    # wait until node2 is running a unit of work (its worker's title names the function), then
    # kill the whole node: raylet, object store, workers and the sandboxed children
    deadline, killed = time.time() + 300, False
    while time.time() < deadline and proc.poll() is None:
        busy = [p for p in _marked(cluster.markers["node2"]) if _cmdline(p).startswith("ray::_remote_job")]
        log = (run / "run.log").read_text() if (run / "run.log").exists() else ""
        if busy and "round 0 done" in log:
            cluster.kill("node2")
            killed = True
            break
        time.sleep(0.02)
    assert killed, "node2 never ran a unit of work"
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    rows = _rows(run)
    assert rows == _rows(tmp_path / "local")               # every candidate once, the same results
    assert all(status != "pending" for *_, status, _ in rows)
    log = (run / "run.log").read_text()
    assert "lost (" in log and "retrying on another worker" in log, log[-2000:]


def test_an_unreachable_cluster_is_one_line_and_creates_nothing(tmp_path):
    r = _run([*SEARCH, "--rounds", "0", "--out", str(tmp_path / "run"), "--executor", "ray",
              "--ray-address", f"127.0.0.1:{_free_port()}"], dict(os.environ), timeout=60)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "cannot reach the Ray cluster" in r.stderr and not (tmp_path / "run").exists()


def test_a_task_no_node_can_run_is_one_line_not_a_hang(cluster, tmp_path):
    """The cc task needs a node that declares netns_struct_ops; this cluster has none."""
    r = _run(["run", "cc", "--rounds", "0", "-q", "--out", str(tmp_path / "run"), "--executor", "ray",
              "--ray-address", cluster.address, "-o", "duration_s=1"], cluster.env("head"), timeout=300)
    assert r.returncode == 1 and "no node of the Ray cluster offers netns_struct_ops" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0
