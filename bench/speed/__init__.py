"""``bench speed``: forward and forward+backward timings per model, width, batch and length; where a step goes."""
