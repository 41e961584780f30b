"""`faceprior --help` must stay instant: building the parser may not import torch or cv2."""

from __future__ import annotations

import subprocess
import sys


def test_building_every_command_parser_imports_no_heavy_library():
    code = (
        "import sys; from faceprior.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'cv2', 'av', 'fastapi', 'ray') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
