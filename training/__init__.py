"""emolive.training: data -> features -> model -> train -> export -> evaluate (needs torch)."""
