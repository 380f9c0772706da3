#!/usr/bin/env python3
"""One prepared GPU run of a ``randmix reproduce`` shard: stage here, run there, bring the results back.

The GPU machine lent to this project starts bare and cannot reach a package registry: its image has torch,
timm, typer, rich, safetensors, matplotlib and scipy, not pyautoattack or pydantic, and no Fashion-MNIST. So:

``python tools/gpu_run.py stage`` (here, online or from pip's cache) fills ``.carry/`` (git-ignored): x86-64
wheels of what the image lacks, pyautoattack's ``.py`` files, the four Fashion-MNIST ``.gz`` files.

``python tools/gpu_run.py revision`` (here, after the last commit) records the tree's revision for the copy.

``python3 tools/gpu_run.py run --tier paper-slice --shard 1/2 --device cuda`` (there, ``.carry`` carried; ``--tier
medium --only 'medium-unshuffle64-fmnist-long-*' --shard 1/3`` for one seed of the long unshuffling study)
installs the wheels into a scratch folder, runs the shard under a time budget (a shard cut short
keeps every finished job: each one writes its outputs atomically), then packs everything the shard wrote
under ``leaderboards/`` and the runs' training records into at most 8 files under ``$OUT`` (``--out``) and
prints a short table last. ``--dry-run`` checks the staging and prints the plan without running it; with
``--tier smoke`` the whole path runs on a CPU in a minute (``tests/test_gpu_run.py``).

Back here: ``tar -xzf <files_at>/results-*.tar.gz`` in the repository root, then ``randmix verify`` and
``randmix leaderboard`` before committing (a tier with transfer attacks, which no shard runs, needs an unsharded
``randmix reproduce`` first).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CARRY = Path(".carry")
REPO = Path(__file__).resolve().parents[1]  # the package this script runs, wherever the results go
WHEELS = ["pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5"]
"""What the GPU image lacks besides pyautoattack (pure Python, copied as files): pinned to what was tested here."""
FMNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz")
FMNIST_SOURCE = Path("/usr/share/datasets/fashion-mnist")
MAX_FILE = 15 * 2**20  # the device tool brings back files of at most 16 MiB
MAX_FILES = 8


def stage(carry: Path) -> None:
    """Fill ``carry`` with what the GPU machine needs (run here, where pip reaches a registry)."""
    import pyautoattack

    whl = carry / "whl"
    whl.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "-d", str(whl), *WHEELS], check=True)
    site = carry / "site"
    shutil.rmtree(site / "pyautoattack", ignore_errors=True)
    shutil.copytree(Path(pyautoattack.__file__).parent, site / "pyautoattack",
                    ignore=shutil.ignore_patterns("*.pt", "*.pth", "__pycache__", "*.pyc"))
    data = carry / "data"
    data.mkdir(exist_ok=True)
    for name in FMNIST_FILES:
        shutil.copyfile(FMNIST_SOURCE / name, data / name)
    revision(carry)
    size = sum(f.stat().st_size for f in carry.rglob("*") if f.is_file())
    print(f"staged {carry}: {size / 2**20:.1f} MiB (the device tool carries at most 64 MiB a call)")


def revision(carry: Path) -> str:
    """Record the tree's git revision in ``carry`` (the copy sent to the GPU machine travels without .git);
    call it again after each commit, just before the run."""
    from randmix_bench.provenance import git_revision

    rev = git_revision()
    (carry / "REVISION").write_text(rev + "\n")
    print(f"revision {rev}")
    return rev


def install(carry: Path, target: Path) -> dict[str, str]:
    """Install the carried wheels into ``target`` and return the environment that sees them and the data."""
    wheels = sorted(str(p) for p in (carry / "whl").glob("*.whl"))
    missing = [name for name in ("pydantic", "pyautoattack") if not _importable(name, carry, target)]
    if missing and wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(target), *wheels], check=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(carry / "site"), str(target),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if (carry / "data" / FMNIST_FILES[0]).is_file():
        env["RANDMIX_DATA"] = str((carry / "data").resolve())
    env["RANDMIX_OFFLINE"] = "1"
    if (carry / "REVISION").is_file():
        env["RANDMIX_GIT_REVISION"] = (carry / "REVISION").read_text().strip()
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _importable(name: str, carry: Path, target: Path) -> bool:
    paths = os.pathsep.join([str(carry / "site"), str(target)])
    code = f"import sys; sys.path[:0] = {paths.split(os.pathsep)!r}; import {name}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root/leaderboards`` (to find what the shard wrote)."""
    board = root / "leaderboards"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(board.rglob("*")) if p.is_file()} if board.is_dir() else {}


def pack(root: Path, written: list[str], tier: str, tag: str, out: Path) -> list[Path]:
    """The written files plus the runs' records, as tar.gz parts of at most MAX_FILE bytes under ``out``."""
    records = sorted(str(p.relative_to(root)) for p in (root / "runs" / tier).glob("*/run.json"))
    archive = out / f"results-{tag}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in written + records:
            tar.add(root / name, arcname=name)
    if archive.stat().st_size <= MAX_FILE:
        return [archive]
    data, parts = archive.read_bytes(), []
    archive.unlink()
    for i in range(0, len(data), MAX_FILE):
        part = out / f"results-{tag}.tar.gz.part{i // MAX_FILE:02d}"
        part.write_bytes(data[i : i + MAX_FILE])
        parts.append(part)
    return parts


def table(root: Path, written: list[str]) -> list[str]:
    """One line per result the shard wrote: clean and robust accuracy, attack and wall time."""
    lines = [f"{'entry':58} {'clean%':>7} {'full%':>7} {'robust%':>8} {'attack s':>9} {'wall s':>7}"]
    for name in written:
        if not name.endswith(".json"):
            continue
        rb = json.loads((root / name).read_text()).get("randmix", {})
        full = rb.get("clean_acc_full_test")
        lines.append(f"{Path(name).stem[:58]:58} {100 * rb.get('clean_acc', 0):7.2f} "
                     f"{'' if full is None else f'{100 * full:.2f}':>7} {100 * rb.get('robust_acc', 0):8.2f} "
                     f"{sum(rb.get('attack_time_s', {}).values()):9.1f} "
                     f"{rb.get('provenance', {}).get('wall_time_s', 0):7.1f}")
    return lines


def run(args: argparse.Namespace) -> int:
    root, carry, out = Path(args.root).resolve(), Path(args.carry).resolve(), Path(args.out).resolve()
    env = install(carry, Path(args.site))
    command = [sys.executable, "-m", "randmix_bench.cli", "reproduce", "--tier", args.tier, "--shard", args.shard]
    for pattern in args.only:
        command += ["--only", pattern]
    if args.device:
        command += ["--device", args.device]
    if args.dry_run:
        return subprocess.run(command + ["--dry-run"], cwd=root, env=env).returncode
    out.mkdir(parents=True, exist_ok=True)
    print(f"revision {env.get('RANDMIX_GIT_REVISION') or 'unknown: run `gpu_run.py revision` before sending'}")
    before = snapshot(root)
    began = time.perf_counter()
    log = out / f"log-{args.tag}.txt"
    with open(log, "w") as f:
        try:
            code = subprocess.run(command, cwd=root, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=args.budget).returncode
        except subprocess.TimeoutExpired:
            code = 124
    after = snapshot(root)
    written = sorted(name for name, digest in after.items() if before.get(name) != digest)
    parts = pack(root, written, args.tier, args.tag, out) if written else []
    assert len(parts) + 1 <= MAX_FILES, "too many files for the device tool to bring back"
    print(log.read_text()[-3000:])
    print("\n".join(table(root, written)))
    print(f"shard {args.shard} of {args.tier}: exit {code}, {time.perf_counter() - began:.0f} s, "
          f"{len(written)} file(s) written, packed into {', '.join(p.name for p in parts) or 'nothing'}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p_stage = sub.add_parser("stage", help="fill .carry/ here (wheels, pyautoattack, Fashion-MNIST)")
    p_stage.add_argument("--carry", default=str(CARRY))
    p_rev = sub.add_parser("revision", help="record the tree's git revision in .carry/REVISION (after each commit)")
    p_rev.add_argument("--carry", default=str(CARRY))
    p_run = sub.add_parser("run", help="run one shard there and pack its results under --out")
    p_run.add_argument("--tier", default="paper-slice")
    p_run.add_argument("--shard", default="1/2")
    p_run.add_argument("--only", action="append", default=[], help="reproduce's --only: a glob of jobs (repeatable)")
    p_run.add_argument("--device", default=None, help="cuda, cpu (default: reproduce's: cuda when available)")
    p_run.add_argument("--budget", type=float, default=480.0, help="seconds before the shard is stopped and packed")
    p_run.add_argument("--root", default=".", help="the repository root (where leaderboards/ and runs/ are)")
    p_run.add_argument("--carry", default=str(CARRY))
    p_run.add_argument("--site", default="/tmp/randmix-site", help="where the carried wheels are installed")
    p_run.add_argument("--out", default=os.environ.get("OUT", "gpu-out"), help="folder to pack into (default: $OUT)")
    p_run.add_argument("--tag", default=None, help="names the packed files (default: the shard, e.g. 1of2)")
    p_run.add_argument("--dry-run", action="store_true", help="check the staging and print the plan only")
    args = parser.parse_args()
    if args.verb == "stage":
        stage(Path(args.carry))
        return 0
    if args.verb == "revision":
        revision(Path(args.carry))
        return 0
    args.tag = args.tag or args.shard.replace("/", "of")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
