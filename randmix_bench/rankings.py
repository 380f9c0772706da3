"""``leaderboards/README.md``: RobustBench-style ranked tables per dataset, threat model and eps (entries not
ranked listed apart, with the reason), the eps charts, the pixel-shuffle table, training-loss charts and grids, the
claims section.

The page is a pure function of the entries (no dates, fixed ordering and number formats), which is what lets
CI run ``randmix leaderboard --check`` and fail when someone forgot to regenerate it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from randmix_bench import figures
from randmix_bench.claims import attack_label, variant_label, why_untrusted
from randmix_bench.entries import Entry
from randmix_bench.findings import FINDINGS_NAME, NO_RESULTS, claims_section, counts
from randmix_bench.markdown import Markdown, escape, heading, relpath, table
from randmix_bench.vocab import Norm

__all__ = ["THREAT_MODELS", "NOT_RANKED", "render_leaderboard"]

THREAT_MODELS = tuple(Norm)  # RobustBench's, in its order
NOT_RANKED = "Not ranked: unreliable or unchecked"


def _params(trainable: int, frozen: int) -> str:
    return f"{trainable:,} / {frozen:,}"


def _link(entry: Entry, base: Path) -> Markdown:
    """The checkpoint as a link whose target is percent-encoded: a path from a file cannot break out."""
    target = quote(relpath(entry.checkpoint, base), safe="/")
    return Markdown(f"[{escape(entry.checkpoint_ref.sha256[:12])}]({target})")


def _attack_order(entry: Entry) -> tuple[bool, str]:
    """``AA standard`` (RobustBench's ranking, as :func:`attack_label` names it) first, then the others by label."""
    attack = entry.randmix.attack
    return not attack.is_aa_standard, attack_label(attack)


def _robustness_tables(entries: list[Entry], base: Path) -> list[str]:
    groups: dict[tuple[str, int, float], list[Entry]] = defaultdict(list)
    for e in entries:
        if e.is_robustness:
            groups[(e.randmix.dataset, THREAT_MODELS.index(e.randmix.threat_model), e.randmix.eps_value)].append(e)
    if not groups:
        return ["No robustness results yet."]
    columns = ["Entry", "Model", "Mixing", "Clean %", "AutoAttack %", "eps", "Params trainable / frozen", "n",
               "Attack", "Checkpoint"]

    def cells(e: Entry) -> list[str]:
        r, rb = e.robustness, e.randmix
        return [r.name, rb.model, variant_label(rb.mixing, rb.smooth_sigma), r.clean_acc, r.autoattack_acc, r.eps,
                _params(rb.params_trainable, rb.params_frozen), str(rb.n_examples), attack_label(rb.attack),
                _link(e, base)]

    out: list[str] = []
    for key in sorted(groups):
        # RobustBench's order: robust accuracy, then clean accuracy, both descending; the file breaks ties.
        group = sorted(groups[key], key=lambda e: (-float(e.robustness.autoattack_acc), -float(e.robustness.clean_acc),
                                                   e.rel))
        where = (key[0], THREAT_MODELS[key[1]], f"eps {group[0].robustness.eps}")
        # One ranking per attack set: a cheaper set's robust accuracy is an upper bound, not a rival of AA standard's.
        judged = [(e, why_untrusted(e.robustness)) for e in group]
        by_attack: dict[str, list[Entry]] = defaultdict(list)
        for e, why in judged:
            if why is None:
                by_attack[attack_label(e.randmix.attack)].append(e)
        if not by_attack:
            out += [heading("###", *where), "", "No ranked entries: none has a passed sanity report without flags.", ""]
        for label, ranked in sorted(by_attack.items(), key=lambda item: _attack_order(item[1][0])):
            rows = [[str(rank)] + cells(e) for rank, e in enumerate(ranked, 1)]
            out += [heading("###", *where, label), ""] + table(["Rank"] + columns, rows, right={0, 4, 5, 7, 8}) + [""]
        unranked = [cells(e) + [why] for e, why in judged if why is not None]
        if unranked:
            out += [heading("###", *where, "not ranked"), ""]
            out += [f"**{NOT_RANKED}** (their numbers may come from masked gradients or an unchecked run, or measure "
                    "clean accuracy only; they feed no robust-accuracy verdict, and only a clean-only one counts for "
                    "claim 1):", ""]
            out += table(columns + ["Why not ranked"], unranked, right={3, 4, 6, 7}) + [""]
    return out[:-1]


def _shuffletable(entries: list[Entry], base: Path) -> list[str]:
    shuffles = sorted((e for e in entries if not e.is_robustness),
                      key=lambda e: (e.shuffle.dataset, -e.shuffle.psnr, -e.shuffle.ssim, e.rel))
    if not shuffles:
        return ["No pixel-shuffle results yet."]
    header = ["Dataset", "Entry", "Model", "Mixing", "PSNR dB", "SSIM", "Scrambled input PSNR / SSIM",
              "Mean image PSNR / SSIM", "n", "Epochs", "Params trainable / frozen", "Checkpoint"]
    rows = []
    for e in shuffles:
        r = e.shuffle
        mean_image = ("—" if r.mean_image_psnr is None or r.mean_image_ssim is None
                      else f"{r.mean_image_psnr:.2f} / {r.mean_image_ssim:.4f}")
        rows.append([r.dataset, r.name, r.model, variant_label(r.mixing, r.smooth_sigma), f"{r.psnr:.2f}",
                     f"{r.ssim:.4f}", f"{r.identity_psnr:.2f} / {r.identity_ssim:.4f}", mean_image, str(r.n_examples),
                     f"{r.epochs:g}", _params(r.params_trainable, r.params_frozen), _link(e, base)])
    return table(header, rows, right={4, 5, 8, 9})


def render_leaderboard(entries: list[Entry], base: Path, grids: Sequence[Path] = ()) -> str:
    """``leaderboards/README.md``; links are relative to ``base`` (the folder it lives in); ``grids`` are the
    pixel-shuffle pictures to show."""
    lines = [
        "# randmix-bench leaderboards",
        "",
        "<!-- Generated by `randmix leaderboard` from the JSON files in this folder; do not edit by hand. -->",
        "",
        f"{counts(entries)}. Each entry is a JSON file beside the small checkpoint that produced it; "
        "`randmix verify` re-checks each checkpoint's sha256 and recomputes its clean accuracy (or reconstruction "
        "PSNR) on a few hundred test points on a CPU.",
        "",
    ]
    if not entries:
        lines += [NO_RESULTS, ""]
    lines += [f"What the results say about the paper's claims, in plain words: [{FINDINGS_NAME}]({FINDINGS_NAME}).", ""]
    lines += ["## Adversarial robustness", "",
              "RobustBench's protocol: the first n test points, AutoAttack at the stated eps, models take [0, 1] "
              "inputs. Ranked by AutoAttack accuracy, ties by clean accuracy. Only entries whose gradient-masking "
              "sanity checks (`randmix eval --sanity`) passed, with no AutoAttack flag and not marked unreliable, are "
              f"ranked; the others are listed apart under each dataset, threat model and eps (*{NOT_RANKED}*), with "
              "the reason. Each attack set is ranked in a table of its own, `AA standard` first: a cheaper custom "
              "set's robust accuracy is an upper bound that does not compare with `AA standard`'s.", ""]
    lines += _robustness_tables(entries, base) + [""]
    charts = figures.curves(e.robustness for e in entries if e.is_robustness)
    if charts:
        lines += ["### Robust accuracy against eps", "",
                  "Ranked entries only; eps 0 is the clean accuracy. Each point is the mean over the training seeds "
                  "that measured it (the headline eps: every seed; the sweep's other values: the seeds that swept "
                  "them), with bars for their standard deviation.", ""]
        lines += [figures.markdown_image(c) for c in charts] + [""]
    lines += ["## Pixel un-shuffling", "",
              "A network learns to undo one fixed random permutation of pixel positions; PSNR/SSIM of its "
              "reconstruction vs the original test image, next to those of the scrambled input itself.", ""]
    lines += _shuffletable(entries, base) + [""]
    losses = figures.loss_charts(e.shuffle for e in entries if not e.is_robustness)
    if losses:
        lines += ["### Training loss", "",
                  "Each run's training loss against epochs, one line per run, a colour per variant; each point is the "
                  "mean loss over a tenth of an epoch (over a whole epoch for runs trained before the finer trace was "
                  f"recorded). Whether it had flattened: [{FINDINGS_NAME}]({FINDINGS_NAME}), claim 3.", ""]
        lines += [figures.markdown_image(c) for c in losses] + [""]
    if grids:
        lines += ["Ground truth, scrambled input, then one reconstruction row per variant "
                  "(`randmix shuffle eval`'s grids):", ""]
        lines += [f"![{escape(g.stem)}]({quote(relpath(g, base))})" for g in grids] + [""]
    lines += claims_section(entries, "##")
    return "\n".join(lines) + "\n"
