#!/bin/sh
# Measures one pass of Inception, DINOv2 and CLIP over the same images against the
# extractors' bare forwards (README: "Performance"). Random-weight exports of the real
# architectures' layouts (Inception-v3, DINOv2 ViT-S/14 by default, a CLIP tower), so no
# weights are downloaded.
#   scripts/bench_extractors.sh [IMAGES] [THREADS] [DINOV2_ARCH]
set -eu
images=${1:-200}
threads=${2:-2}
arch=${3:-vits14}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$root/tools/export_inception.py" --random-weights 0 --out "$work/inception.pt" >/dev/null
/usr/bin/python3 "$root/tools/export_dinov2.py" --arch "$arch" --random-weights 0 --out "$work/dinov2.pt" >/dev/null
/usr/bin/python3 "$root/tools/export_clip.py" --random-weights 0 --width 256 --layers 4 \
  --output-dim 128 --out "$work/clip.pt" >/dev/null 2>&1
"$root/build/bench/bench_extractors" --inception "$work/inception.pt" --dinov2 "$work/dinov2.pt" \
  --clip "$work/clip.pt" --images "$images" --threads "$threads"
