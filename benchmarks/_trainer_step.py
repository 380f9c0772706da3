"""What ``randmix train`` runs for a step, as source for a benchmark's fresh process (``python -c``): the recipe's
model channels-last, the trainer's optimizer, loader and ``train_step``. It expects ``recipe``, ``mixing`` and
``threads`` and defines ``cfg`` and ``step()`` (one optimizer step; returns the loss). It also runs in a checkout
from before issue #20 (``trainer_versions.py``), so what differs between checkouts is looked up, not assumed.
Imported by the scripts beside it (run by path, their folder is on ``sys.path``)."""

TRAINER_STEP = """
import torch
from randmix_bench.data import load_split
from randmix_bench.loader import Augment, DeviceLoader
from randmix_bench.recipes import get_recipe
from randmix_bench.tasks import task_for
from randmix_bench.train import make_optimizer, train_step
from randmix_bench.vocab import Mixing
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = get_recipe(recipe).override(mixing=Mixing.parse(mixing))
split = load_split(cfg.dataset, True, None)
task = task_for(cfg)
if hasattr(cfg, "build_model"):
    model, _ = cfg.build_model(task, split.info)
else:  # before the model's builder moved onto the config
    from randmix_bench.tasks import build_model
    model, _ = build_model(cfg, task, split.info)
model = model.to(memory_format=torch.channels_last)
optimizer = make_optimizer(model, cfg, fused=False)
params = [p for p in model.parameters() if p.requires_grad]
loader = DeviceLoader(split.images, split.labels, cfg.batch_size,
                      Augment(cfg.crop_padding, cfg.flip, cfg.randaugment_n, cfg.randaugment_m), cfg.seed, "cpu",
                      channels_last=True)
def epochs():
    epoch = 0
    while True:  # as many steps as asked, over epochs as the trainer does
        yield from loader.epoch(epoch)
        epoch += 1
batches = epochs()
def step():
    x, y = next(batches)
    return train_step(model, task, optimizer, params, x, y, cfg.lr, cfg.grad_clip, False)
"""
