"""``python -m randmix_bench.cli`` (and ``torchrun -m randmix_bench.cli``): the ``randmix`` command."""

from randmix_bench.cli import app

app()
