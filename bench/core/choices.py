"""The values an option may take, shared by the run description and the command line (imports nothing)."""

PRECISIONS = ("float32", "tf32", "mixed_bfloat16")  # strict fp32, TF32 matmuls, bf16 mixed (bench.runner.precision)
JIT = (True, False, "auto")  # jit_compile: "auto" lets the harness pick per backend and device
