"""What an entry says about the run behind it, re-derived from its checkpoint by ``randmix verify``: its labels
(model, mixing, seeds, sigma, recipe, epochs), parameter counts, the attacks its AutoAttack version runs, a transfer
attack's source checkpoint, a shuffle entry's loss trace, and one run per checkpoint's weights. A result relabelled
by hand would otherwise count as another variant or run.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from randmix_bench.checkpoint import digests, run_labels
from randmix_bench.entries import Entry
from randmix_bench.errors import RandmixError
from randmix_bench.files import sha256
from randmix_bench.freezing import count_parameters
from randmix_bench.results import RandmixBlock
from randmix_bench.robustness import make_attack_config
from randmix_bench.threat import Eps, ThreatModel
from randmix_bench.vocab import AAVersion, Attack

__all__ = ["label_problem", "attack_problem", "source_problem", "trace_problem", "relabelled_weights"]


def label_problem(entry: Entry, net: nn.Module, meta: dict[str, Any]) -> str | None:
    """Which label of the entry (model, mixing, seeds, sigma, recipe, epochs) its checkpoint's own record
    contradicts: a relabelled copy of a result would otherwise count as another variant or run."""
    held = run_labels(net, meta)
    if entry.is_robustness:
        rb = entry.randmix
        said: dict[str, Any] = {"model": rb.model, "mixing": str(rb.mixing), "mixer_seed": rb.mixer_seed,
                                "smooth_sigma": rb.smooth_sigma, "train_seed": rb.train_seed,
                                "train_recipe": rb.train_recipe, "train_epochs": rb.train_epochs}
    else:
        r = entry.shuffle
        said = {"model": r.model, "mixing": str(r.mixing), "mixer_seed": r.mixer_seed, "smooth_sigma": r.smooth_sigma,
                "train_seed": r.train_seed, "train_epochs": r.epochs}
    wrong = [f"{k} {said[k]!r} (the checkpoint says {held[k]!r})" for k in said
             if said[k] != held[k] and not (k != "model" and k != "mixing" and said[k] is None)]
    recorded = entry.randmix if entry.is_robustness else entry.shuffle
    counted = dict(zip(("params_trainable", "params_frozen"), count_parameters(net), strict=True))
    wrong += [f"{k} {getattr(recorded, k)!r} (the checkpoint holds {v!r})" for k, v in counted.items()
              if getattr(recorded, k) != v]
    return f"the entry's {', '.join(wrong)}" if wrong else None


def attack_problem(rb: RandmixBlock) -> str | None:
    """The attacks an entry lists must be the ones its attack and AutoAttack version run: tables label an entry by
    its version ("AA standard"), so a list edited under that label would pass for what was not run."""
    c = rb.attack
    custom = c.attack is Attack.AUTOATTACK and c.version is AAVersion.CUSTOM
    try:
        expected = make_attack_config(c.attack, threat=ThreatModel(c.norm, Eps.parse(c.eps)), version=c.version,
                                      attacks=c.attacks if custom else (), seed=c.seed, batch_size=c.batch_size,
                                      n_iter=c.n_iter, n_queries=c.n_queries).attacks
    except RandmixError as e:
        return f"attack: {e}"
    if expected != c.attacks:
        return (f"attack: {c.attack} {c.version} runs {', '.join(expected) or 'no attack'}, not the recorded "
                f"{', '.join(c.attacks) or 'no attack'}")
    return None


def source_problem(entry: Entry) -> str | None:
    """A transfer attack's source checkpoint must be the one recorded: its examples decide the entry's number."""
    if entry.source is None:
        return None
    ref = entry.randmix.attack.source
    assert ref is not None  # an entry has a source path only when its attack records one
    if sha256(entry.source) != ref.sha256:
        return f"sha256 of the transfer source {entry.source} is not the recorded {ref.sha256[:12]}…"
    return None


def trace_problem(entry: Entry, meta: dict[str, Any]) -> str | None:
    """A pixel-shuffle entry's training-loss trace must be the one its checkpoint recorded, when both exist: the
    curve says whether training had flattened."""
    if entry.is_robustness or entry.shuffle.train_loss is None or "loss_trace" not in meta["extra"]:
        return None
    if [list(p) for p in entry.shuffle.train_loss] != meta["extra"]["loss_trace"]:
        return "train_loss is not the training-loss trace its checkpoint recorded"
    return None


def relabelled_weights(entries: list[Entry]) -> dict[str, str]:
    """Entries whose checkpoint holds the same weights as an earlier entry's under other labels (seed, mixing...),
    by entry: one run counted twice. The leaderboard keys runs by the weights digest a result records, and by the
    file's sha256 when it records none (results written before it was); a copy of a checkpoint re-saved with other
    metadata has another file sha256, so the weights themselves are hashed here."""
    first: dict[str, Entry] = {}
    copies = {}
    for entry in entries:
        try:
            digest = digests(entry.checkpoint)[1]
        except (RandmixError, OSError):
            continue  # verify_entry says what is wrong with the file
        earlier = first.setdefault(f"{entry.is_robustness}:{digest}", entry)
        differ = sorted(k for k, v in entry.labels.items() if earlier.labels[k] != v)
        if differ:
            copies[entry.rel] = (f"its checkpoint holds the weights of {earlier.rel}'s (sha256 {digest[:12]}…) under "
                                 f"another {', '.join(differ)}; one checkpoint is one run: remove the relabelled copy")
    return copies
