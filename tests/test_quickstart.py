"""``randmix quickstart``: the offline main job in a reduced configuration.

Its dataset fallback is tested in test_fashion_mnist_mini.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from randmix_bench import leaderboard, quickstart
from randmix_bench.cli import app
from randmix_bench.entries import load_entries
from randmix_bench.errors import RandmixError
from randmix_bench.run_folder import RUN_FORMAT
from randmix_bench.verify import verify

runner = CliRunner()


def test_only_a_quickstart_folder_is_overwritten(tmp_path: Path) -> None:
    """A folder a quickstart wrote (its run folders and leaderboards/) is fine; anything else is refused."""
    out = tmp_path / "qs"
    quickstart.check_out_dir(out, ("full", "chans"))  # missing: fine
    (out / "full").mkdir(parents=True)
    (out / "full" / "run.json").write_text(json.dumps({"format": RUN_FORMAT, "status": "finished"}))
    (out / "leaderboards").mkdir()
    quickstart.check_out_dir(out, ("full", "chans"))
    (out / "chans").mkdir()
    (out / "chans" / "run.json").write_text("{}")
    with pytest.raises(RandmixError, match="not a randmix run folder"):
        quickstart.check_out_dir(out, ("full", "chans"))
    (out / "chans" / "run.json").unlink()
    (out / "README.md").write_text("mine")
    with pytest.raises(RandmixError, match=r"holds files quickstart did not write \(README.md\)"):
        quickstart.check_out_dir(out, ("full", "chans"))


@pytest.mark.slow
def test_quickstart_trains_attacks_and_ranks_both_variants(tmp_path: Path) -> None:
    """The whole job on the synthetic dataset with a 3-iteration APGD-CE on 24 points (~30 s on 2 cores)."""
    out = tmp_path / "quickstart"
    args = ["quickstart", "--out", str(out), "--dataset", "synthetic", "-n", "24", "--n-iter", "3", "--eps", "0.1,0.05"]
    result = runner.invoke(app, args, terminal_width=250)
    assert result.exit_code == 0, result.output

    entries = load_entries(out / "leaderboards")
    assert sorted(e.randmix.mixing for e in entries) == ["chans", "full"]
    for e in entries:
        rb = e.randmix
        run = json.loads((out / rb.mixing / "run.json").read_text())
        assert run["status"] == "finished" and run["epochs_done"] == 1 and run["config"]["recipe"] == "quick"
        assert rb.attack.attacks == ["apgd-ce"] and rb.attack.n_iter == 3 and rb.n_examples == 24
        assert [p.eps for p in rb.sweep] == ["0.05", "0.1"] and rb.eps_value == 0.1
        row = next(line for line in result.output.splitlines() if line.split()[:1] == [rb.mixing])
        cells = row.split()
        assert cells[1:4] == [f"{rb.params_trainable:,}", f"{rb.params_frozen:,}", f"{run['train_time_s']:.0f}"]
        accuracies = (run["test"]["test_acc"], rb.clean_acc, *(p.robust_acc for p in rb.sweep))
        assert cells[4:] == [f"{100 * a:.1f}" for a in accuracies]
    assert "APGD-CE alone (3 iterations, 5 restarts)" in result.output and "What this shows:" in result.output
    assert leaderboard.stale(out / "leaderboards") == []
    assert all(c.ok for c in verify(entries))
