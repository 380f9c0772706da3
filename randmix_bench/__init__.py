"""randmix-bench: random fixed spatial mixing in vision networks (arXiv 2503.16760)."""

import warnings

from randmix_bench.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch is imported: libgomp reads OMP_WAIT_POLICY when torch loads it

__version__ = "0.1.0"

# timm 1.0.9 calls torch.jit.interface at import, which torch >= 2.10 deprecates: noise for our users.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.interface.*", category=FutureWarning)

from randmix_bench import models  # noqa: E402,F401  (registers the randmix_* models in timm)
from randmix_bench.mixing import Mixing, freeze_mixing  # noqa: E402

__all__ = ["__version__", "Mixing", "freeze_mixing", "models"]
