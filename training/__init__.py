"""emolive.training: data -> features -> model -> train -> export -> evaluate (needs torch)."""

from emolive._startup import refuse_a_training_command_without_torch

refuse_a_training_command_without_torch()  # `python -m emolive.training.X` without torch: one line
