# The scaled-down demo that bench/probe/margin.sh measures: the environment for
# deploy/local/demo.sh (400 pretraining steps instead of 800; everything else as the demo).
# Change it only together with a new measurement (docs/probing.md).
probe_margin_env=(
  VJEPA_DEMO_DATA_SEED=0
  VJEPA_DEMO_SET="optim.steps=400"
)
