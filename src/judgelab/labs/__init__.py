"""The metric lab: agreement with human labels, finding misaligned metrics, improving them."""
