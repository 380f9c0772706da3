"""Suite-wide settings: tiny models on a small CPU run fastest, and most predictably, on one thread."""

import torch

torch.set_num_threads(1)
