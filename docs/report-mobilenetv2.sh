#!/usr/bin/env sh
# The MobileNetV2 HTML report shown in the README, and its screenshot: KL blob scales and ADMM
# weights calibrated on the 14 tensors of ../shared/models/mobilenetv2/calib, evaluated on the
# 20 labelled photos of ../shared/data/imagenet20. Needs ../shared beside the clone, tnnquant
# installed with the report extra, and Chromium. Usage: docs/report-mobilenetv2.sh [OUT_DIR]
set -eu
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
shared=../shared
tnnquant quantize -p $shared/models/mobilenetv2/mobilenetv2.tnnproto \
    -m $shared/models/mobilenetv2/mobilenetv2.tnnmodel -i $shared/models/mobilenetv2/calib \
    -b 2 -w 1 -n 123.675,116.28,103.53 -s 0.0171247538,0.0175070028,0.0174291939 \
    --eval $shared/data/imagenet20 --labels $shared/data/imagenet20/labels.txt \
    --class-names $shared/data/imagenet20/classes.txt \
    -o "$out/mobilenetv2" --html "$out/report.html"
python docs/screenshot.py "$out/report.html" docs/report-mobilenetv2.png
