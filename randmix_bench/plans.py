"""The tiers of ``randmix reproduce``, written once as data: what is trained, attacked and published.

A tier is a list of studies. A :class:`Study` is one architecture on one dataset: every variant trained
with one recipe (no tuning per variant) for a list of seeds, each run attacked with one AutoAttack
setting, the first seed of each variant also swept over eps. A :class:`ShuffleStudy` is the pixel-shuffle
track's counterpart. :func:`expand` turns a tier into the jobs :mod:`randmix_bench.reproduce` runs.

The time estimates are per job on the tier's reference machine (``small``: a 2-core CPU; ``paper``: one
H100/H200); they feed ``--dry-run`` and the progress overview, never a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from randmix_bench.vocab import Tier

__all__ = ["Tier", "Study", "ShuffleStudy", "TIERS", "parse_tier"]


def parse_tier(value: str | Tier) -> Tier:
    return Tier.parse(value)


@dataclass(frozen=True)
class Study:
    """One architecture on one dataset, every variant with the same recipe."""

    key: str  # short, unique in the tier: names runs and results, e.g. "convmixer-fmnist"
    recipe: str  # a classification recipe from randmix_bench.recipes.RECIPES
    dataset: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]  # training seeds of every variant (the mixer seed stays 0: same frozen filters)
    eps: str  # Linf eps of the headline AutoAttack evaluation, fixed before any result was seen
    n_examples: int  # the first n test points, RobustBench's protocol
    seeds_by_variant: dict[str, tuple[int, ...]] = field(default_factory=dict)  # overrides ``seeds``
    sweep: tuple[str, ...] = ()  # eps values for the first seed of each variant (a robustness curve)
    l2_eps: str | None = None  # also evaluate under L2 at this eps (first seed of each variant)
    square_queries: int | None = None  # the sanity check's Square budget (None: AutoAttack's 5000)
    train_s: float = 0.0  # estimated seconds per training run
    eval_s: float = 0.0  # estimated seconds per evaluation (AutoAttack + sanity)
    sweep_s: float = 0.0  # estimated extra seconds for the sweep's other eps values

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        return self.seeds_by_variant.get(variant, self.seeds)


@dataclass(frozen=True)
class ShuffleStudy:
    """Pixel un-shuffling on one dataset: every variant with the same recipe and permutation."""

    key: str
    recipe: str  # a shuffle recipe (task "shuffle") from randmix_bench.recipes.RECIPES
    dataset: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    permutation_seed: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0


FMNIST, CIFAR = "fashion-mnist", "cifar10-jpeg"
ALL_VARIANTS = ("full", "chans", "space", "chans-smooth")

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
    Study("convmixer-fmnist", "convmixer-small-fmnist", FMNIST, ALL_VARIANTS, (0, 1, 2), eps="0.015",
          n_examples=500, sweep=("0.015", "0.02", "0.03", "0.05"), square_queries=1000, train_s=36, eval_s=200,
          sweep_s=60),
    Study("convmixer-cifar", "convmixer-small-cifar10-jpeg", CIFAR, ALL_VARIANTS, (0, 1, 2), eps="3/255",
          n_examples=500, sweep=("1/255", "2/255", "3/255", "6/255"), square_queries=1000, train_s=40, eval_s=110,
          sweep_s=150),
    Study("resnet-fmnist", "resnet-small-fmnist", FMNIST, ALL_VARIANTS, (0, 1, 2), eps="0.015",
          n_examples=500, sweep=("0.015", "0.02", "0.03", "0.05"), square_queries=1000, train_s=40, eval_s=130,
          sweep_s=30),
    ShuffleStudy("unshuffle-fmnist", "unshuffle-fashion-mnist-small", FMNIST, ("full", "chans", "space"), (0, 1, 2),
                 train_s=130, eval_s=60),
]

# The paper tier (issue #13's priorities, in order): ConvMixer-256/8 on both datasets, RobustBench's Linf
# 8/255 on 1000 points with a 1/255-4/255 sweep and L2 0.5; then the separable ResNet-18; then the paper's
# 512/16/7 unshuffler. Estimates are for one H100-class GPU.
PAPER: list[Study | ShuffleStudy] = [
    Study(f"convmixer256-{short}", f"convmixer-{dataset}", dataset, ALL_VARIANTS, (0, 1, 2), eps="8/255",
          n_examples=1000, seeds_by_variant={"space": (0,)}, sweep=("1/255", "2/255", "4/255", "8/255"),
          l2_eps="0.5", train_s=30, eval_s=240)
    for short, dataset in (("cifar", CIFAR), ("fmnist", FMNIST))
] + [
    Study(f"resnet18-{short}", f"resnet18-{dataset}", dataset, ALL_VARIANTS, (0,), eps="8/255", n_examples=1000,
          sweep=("1/255", "2/255", "4/255", "8/255"), train_s=60, eval_s=300)
    for short, dataset in (("cifar", CIFAR), ("fmnist", FMNIST))
] + [
    ShuffleStudy(f"unshuffle512-{short}", f"unshuffle-{dataset}", dataset, ("full", "chans", "space"), (0,),
                 train_s=600, eval_s=30)
    for short, dataset in (("fmnist", FMNIST), ("cifar", CIFAR))
]

TIERS: dict[Tier, list[Study | ShuffleStudy]] = {Tier.SMALL: SMALL, Tier.PAPER: PAPER}
