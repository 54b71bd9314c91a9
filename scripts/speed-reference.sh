#!/usr/bin/env bash
# The reference speed measurements of README's "Speed on this machine": records in results/<sweep>/, reports in
# reports/<sweep>/. Run on a quiet machine (nothing else busy): every configuration is timed in a fresh process.
#   speed-cpu     rnn/lstm/gru/transformer at H=256, N=64, T=64 and 256 (achieved vs roofline, matmul floor),
#                 lstm at N=128 (batch size);
#                 lstm vs transformer at H=64, N=8, T=64…4096 (where the Transformer's memory overtakes)
#   xla-cpu       the same layer with and without XLA: the evidence behind jit_compile "auto"
#   deepbench-cpu DeepBench's LSTM training configurations (its GRU ones take hours on 2 cores)
#   speed-zoo     the sequential, parallel-scan, matrix-memory, convolutional and attention models at H=64, N=8,
#                 T=256…4096: where each rises above or falls below the LSTM's step time and memory
# They are TensorFlow's (KERAS_BACKEND, else tensorflow); `bench speed --preset backends` compares the backends.
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}"
bench speed --models rnn,lstm,gru,transformer --units 256 --batch 64 --lengths 64,256 --breakdown --sweep speed-cpu
bench speed --models lstm --units 256 --batch 128 --lengths 256 --breakdown --sweep speed-cpu
bench speed --models lstm,transformer --units 64 --batch 8 --lengths 64,256,1024,4096 --sweep speed-cpu
bench speed --models rnn,lstm,gru,bilstm --units 256 --batch 64 --lengths 256 --jit false --sweep xla-cpu
bench speed --models rnn,lstm,gru,bilstm --units 256 --batch 64 --lengths 256 --jit true --sweep xla-cpu
bench speed --preset deepbench --models lstm --sweep deepbench-cpu
bench speed --models lstm,lstm_cell,gru,slstm,mlstm,mingru,minlstm,tcn,transformer --units 64 --batch 8 \
  --lengths 256,512,1024,2048,4096 --timeout 400 --sweep speed-zoo
for sweep in speed-cpu xla-cpu deepbench-cpu speed-zoo; do bench report "$sweep" > /dev/null; done
