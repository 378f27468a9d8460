#!/usr/bin/env bash
# The reference environment of the goldens (tests/test_corruption_goldens.py, tests/test_testbed_goldens.py):
# .venv-ref with imagecorruptions 1.1.2 and what the imagenet-testbed's 2020 code needs (numpy < 2 for
# np.float_, scipy < 1.13 for scipy.signal.gaussian, OpenCV 4 for warpAffine's 1/32 px grid). torch is
# not installed again: a .pth line puts the project's venv (default .venv) after these packages.
set -euo pipefail
cd "$(dirname "$0")/.."
MAIN_VENV="${1:-.venv}"
python3 -m venv .venv-ref
.venv-ref/bin/pip install -q "setuptools<80" "numpy<2" "scipy<1.13" "opencv-python-headless<5" "scikit-image<0.25" \
    imagecorruptions==1.1.2
site=$(.venv-ref/bin/python -c "import site; print(site.getsitepackages()[0])")
main_site=$("$MAIN_VENV/bin/python" -c "import site; print(site.getsitepackages()[0])")
echo "$main_site" > "$site/zz_project_torch.pth"
.venv-ref/bin/python -c "import numpy, scipy, cv2, torch, imagecorruptions; print('reference env:', numpy.__version__, scipy.__version__, cv2.__version__, torch.__version__)"
