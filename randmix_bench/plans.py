"""The tiers of ``randmix reproduce``, written once as data: what is trained, attacked and published.

A tier is a list of studies. A :class:`Study` is one architecture on one dataset: every variant trained
with one recipe (no tuning per variant) for a list of seeds, each run attacked at one headline setting
(AutoAttack standard or a custom set), with optional extras fixed by the study: an eps sweep (first seed or
every seed), an L2 evaluation, AutoAttack standard on fewer points, clean-only variants and the
gradient-masking controls (transfer from ``full``, Square alone). A :class:`ShuffleStudy` is the
pixel-shuffle track's counterpart. :mod:`randmix_bench.jobs` turns a tier's studies into jobs.

The time estimates are per job on the tier's reference machine (``small``: a 2-core CPU; ``paper``: one
H100/H200); they feed ``--dry-run`` and the progress overview, never a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from randmix_bench.threat import Eps, parse_eps_list
from randmix_bench.vocab import AAAttack, Mixing, Norm, Tier

__all__ = ["Tier", "Study", "ShuffleStudy", "TIERS", "parse_tier"]


def parse_tier(value: str | Tier) -> Tier:
    return Tier.parse(value)


@dataclass(frozen=True)
class Study:
    """One architecture on one dataset, every variant with the same recipe."""

    key: str  # short, unique in the tier: names runs and results, e.g. "convmixer-fmnist"
    recipe: str  # a classification recipe from randmix_bench.recipes.RECIPES
    dataset: str
    variants: tuple[Mixing, ...]
    seeds: tuple[int, ...]  # training seeds of every variant (the mixer seed stays 0: same frozen filters)
    eps: Eps  # Linf eps of the headline AutoAttack evaluation, fixed before any result was seen
    n_examples: int  # the first n test points, RobustBench's protocol
    seeds_by_variant: dict[Mixing, tuple[int, ...]] = field(default_factory=dict)  # overrides ``seeds``
    sweep: tuple[Eps, ...] = ()  # Linf eps values for the first seed of each variant (a robustness curve)
    l2_eps: Eps | None = None  # also evaluate under L2 at this eps (first seed of each variant)
    square_queries: int | None = None  # the sanity check's Square budget (None: AutoAttack's 5000)
    train_s: float = 0.0  # estimated seconds per training run
    eval_s: float = 0.0  # estimated seconds per evaluation (AutoAttack + sanity)
    sweep_s: float = 0.0  # estimated extra seconds for the sweep's other eps values
    epochs: int | None = None  # the recipe's epochs unless given
    attacks: tuple[AAAttack, ...] = ()  # the headline's AutoAttack custom set; (): AutoAttack standard
    sweep_attacks: tuple[AAAttack, ...] = ()  # the sweep's own cheaper set; (): the headline's
    sweep_every_seed: bool = False  # sweep every seed (seed bands on the curve), not only the first
    standard_n: int | None = None  # also AutoAttack standard on the first standard_n points, first seed of each variant
    standard_s: float = 0.0  # estimated seconds of that evaluation
    clean_only: tuple[Mixing, ...] = ()  # variants evaluated for clean accuracy only (no attack), e.g. for claim 1
    # gradient-masking controls at the headline eps: APGD-CE examples made on the seed-matched `full` run, judged on
    # every other attacked variant's run (transfer), and Square alone on the first square_n points (first seed)
    transfer: bool = False
    square_n: int | None = None
    square_control_queries: int = 5000
    control_s: float = 0.0  # estimated seconds of each control
    attack_batch: int | None = None  # points per attack batch (outcomes depend on it: fixed per tier); None: all n

    def seeds_of(self, variant: Mixing) -> tuple[int, ...]:
        return self.seeds_by_variant.get(variant, self.seeds)


@dataclass(frozen=True)
class ShuffleStudy:
    """Pixel un-shuffling on one dataset: every variant with the same recipe and permutation."""

    key: str
    recipe: str  # a shuffle recipe (task "shuffle") from randmix_bench.recipes.RECIPES
    dataset: str
    variants: tuple[Mixing, ...]
    seeds: tuple[int, ...]
    permutation_seed: int = 0
    epochs: int | None = None  # the recipe's epochs unless given
    train_s: float = 0.0
    eval_s: float = 0.0


FMNIST, CIFAR = "fashion-mnist", "cifar10-jpeg"
ALL_VARIANTS = tuple(Mixing)  # full, chans, space, chans-smooth
FULL, CHANS, SPACE, CHANS_SMOOTH = ALL_VARIANTS
APGD_CE, APGD_T = AAAttack.APGD_CE, AAAttack.APGD_T


def _sweep(text: str) -> tuple[Eps, ...]:
    return parse_eps_list(text, Norm.LINF)


# The small tier. Each dataset's eps was fixed from `full` alone (seed 0, this tier's recipe, the first 500 test
# points, AutoAttack standard, 2-core CPU, 2026-11-26), before any other variant was attacked at it. cifar10-jpeg
# (ConvMixer): clean 58.2%, robust 38.2% at 1/255; 3/255 chosen (fewer points survive: cheaper, still informative).
# Fashion-MNIST serves two models, so its eps is the one on the grid 0.01/0.015/0.02/0.03 that keeps both models'
# `full` furthest from 0 and from clean (the largest min(robust, clean - robust) over the two): ConvMixer
# (clean 88.4%) 77.4/66.6/53.8/33.0%, ResNet (clean 90.2%) 55.2/30.6/10.2/0.0%, so 0.015. (A first run had used
# 0.03, fixed from the ConvMixer alone: it left the ResNet's `full` at 0-3%, uninformative.) Sweeps go upwards
# from the headline eps: each step attacks only the points the smaller eps left, so the curve (from the clean
# accuracy at 0) costs little more than the headline; cifar10-jpeg's starts below its headline (at 3/255 and above
# nearly every point is broken), at the cost of one more full attack. Estimates are measured seconds on that machine.
SMALL: list[Study | ShuffleStudy] = [
    Study("convmixer-fmnist", "convmixer-small-fmnist", FMNIST, ALL_VARIANTS, (0, 1, 2), eps=Eps.parse("0.015"),
          n_examples=500, sweep=_sweep("0.015,0.02,0.03,0.05"), square_queries=1000, train_s=36, eval_s=200,
          sweep_s=60),
    Study("convmixer-cifar", "convmixer-small-cifar10-jpeg", CIFAR, ALL_VARIANTS, (0, 1, 2), eps=Eps.parse("3/255"),
          n_examples=500, sweep=_sweep("1/255,2/255,3/255,6/255"), square_queries=1000, train_s=40, eval_s=110,
          sweep_s=150),
    Study("resnet-fmnist", "resnet-small-fmnist", FMNIST, ALL_VARIANTS, (0, 1, 2), eps=Eps.parse("0.015"),
          n_examples=500, sweep=_sweep("0.015,0.02,0.03,0.05"), square_queries=1000, train_s=40, eval_s=130,
          sweep_s=30),
    ShuffleStudy("unshuffle-fmnist", "unshuffle-fashion-mnist-small", FMNIST, (FULL, CHANS, SPACE), (0, 1, 2),
                 train_s=130, eval_s=60),
]

# The paper tier (issue #13's priorities, in order): ConvMixer-256/8 on both datasets, RobustBench's Linf
# 8/255 on 1000 points with a 1/255-4/255 sweep and L2 0.5; then the separable ResNet-18; then the paper's
# 512/16/7 unshuffler, 3 seeds (claim 3's own check needs 3 `chans` runs). Estimates are for one H100-class GPU.
PAPER: list[Study | ShuffleStudy] = [
    Study(f"convmixer256-{short}", f"convmixer-{dataset}", dataset, ALL_VARIANTS, (0, 1, 2), eps=Eps.parse("8/255"),
          n_examples=1000, seeds_by_variant={SPACE: (0,)}, sweep=_sweep("1/255,2/255,4/255,8/255"),
          l2_eps=Eps.parse("0.5"), train_s=30, eval_s=240)
    for short, dataset in (("cifar", CIFAR), ("fmnist", FMNIST))
] + [
    Study(f"resnet18-{short}", f"resnet18-{dataset}", dataset, ALL_VARIANTS, (0,), eps=Eps.parse("8/255"),
          n_examples=1000, sweep=_sweep("1/255,2/255,4/255,8/255"), train_s=60, eval_s=300)
    for short, dataset in (("cifar", CIFAR), ("fmnist", FMNIST))
] + [
    ShuffleStudy(f"unshuffle512-{short}", f"unshuffle-{dataset}", dataset, (FULL, CHANS, SPACE), (0, 1, 2),
                 train_s=600, eval_s=30)
    for short, dataset in (("fmnist", FMNIST), ("cifar", CIFAR))
]

# The medium tier (issue #21): the study that can test the claims on a 2-core CPU, run over several sittings.
# ConvMixer-64/8 (kernel 5, patch 2) on Fashion-MNIST with the convmixer recipe for 10 epochs; Linf 2/255 with
# APGD-CE + APGD-T on the first 1000 test points, an APGD-CE sweep at 1/255 and 4/255 on every seed (seed bands),
# AutoAttack standard on the first 500 for seed 0 of each variant (does the cheaper set agree?); `space` for clean
# accuracy only (claim 1). A width-64, depth-8 unshuffler for claim 3. Estimates: seconds per job measured on the
# 2-core CPU with 2 jobs at 1 thread each while other processes ran (load 5-9, 2026-12-04): a training 217-265 s
# per epoch; the headline evaluation APGD-CE 545-562 s + APGD-T 1497-1560 s + sanity (APGD-CE at eps 0.5 and
# Square 1000 queries) ~800 s; the sweep 1/255 821-922 s + 4/255 267-303 s (2/255 is replayed from the headline).
# AutoAttack standard and the controls are extrapolated from those attacks' per-point costs; an unshuffler 2,448 s
# for 2 epochs (2026-12-05), so about 4,900 s for the recipe's 4. Together about 31 h of one core, 16 h of the two:
# over the 6 h the issue aimed at (its estimate predates these measurements). Then the same unshufflers for 5x the
# epochs, since their loss still fell after 4 (the issue asks for training until it flattens): 20 epochs at the
# 1,400-1,700 s an epoch the 4-epoch runs took (2 one-thread jobs, 2026-12-05), about 30,000 s a run, 50 h of one
# core for the 6; over many sittings with reproduce's resume, or minutes on a GPU by estimate, not run on one yet
# (`python3 tools/gpu_run.py run --tier medium --only 'medium-unshuffle64-fmnist-long-*' --shard i/3`, one seed a
# run).
MEDIUM: list[Study | ShuffleStudy] = [
    Study("convmixer64-fmnist", "convmixer64-fashion-mnist", FMNIST, (FULL, CHANS, CHANS_SMOOTH, SPACE),
          (0, 1, 2), eps=Eps.parse("2/255"), n_examples=1000, attacks=(APGD_CE, APGD_T),
          sweep=_sweep("1/255,2/255,4/255"), sweep_attacks=(APGD_CE,), sweep_every_seed=True, standard_n=500,
          clean_only=(SPACE,), transfer=True, square_n=200, attack_batch=250, square_queries=1000, train_s=2300,
          eval_s=2900, sweep_s=1200, standard_s=3600, control_s=600),
    ShuffleStudy("unshuffle64-fmnist", "unshuffle-fashion-mnist-medium", FMNIST, (FULL, CHANS), (0, 1, 2),
                 train_s=4900, eval_s=60),
    ShuffleStudy("unshuffle64-fmnist-long", "unshuffle-fashion-mnist-medium-long", FMNIST, (FULL, CHANS), (0, 1, 2),
                 train_s=30000, eval_s=300),
]

# The paper-scale slice (issue #25): ConvMixer-256/8 on Fashion-MNIST at the medium tier's protocol (10 epochs,
# Linf 2/255, APGD-CE + APGD-T, per-point outcomes) on the first 500 points, in two shards (`--shard 1/2`, `2/2`)
# that each fit one short GPU run (tools/gpu_run.py). Estimates: one H100/H200, measured 2026-12-04.
PAPER_SLICE: list[Study | ShuffleStudy] = [
    Study("convmixer256-fmnist", "convmixer-fashion-mnist", FMNIST, (FULL, CHANS, CHANS_SMOOTH), (0, 1, 2),
          eps=Eps.parse("2/255"), n_examples=500, epochs=10, attacks=(APGD_CE, APGD_T), square_queries=1000, train_s=30,
          eval_s=40),
]

# Seconds on any machine: the whole pipeline (train, attack with per-point outcomes, sanity) on synthetic data.
SMOKE: list[Study | ShuffleStudy] = [
    Study("tiny-synthetic", "quick", "synthetic", (FULL, CHANS), (0,), eps=Eps.parse("8/255"), n_examples=32,
          attacks=(APGD_CE,), square_queries=20, train_s=5, eval_s=10),
]

TIERS: dict[Tier, list[Study | ShuffleStudy]] = {
    Tier.SMOKE: SMOKE, Tier.SMALL: SMALL, Tier.MEDIUM: MEDIUM, Tier.PAPER_SLICE: PAPER_SLICE, Tier.PAPER: PAPER,
}
