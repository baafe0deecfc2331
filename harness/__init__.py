"""tea-harness: crash-test machine-learning force fields in molecular dynamics.

The package reproduces, as reusable software, the molecular-dynamics protocol of the
TEA Challenge 2023 (Poltavsky et al., Chem. Sci. 16, 3738, 2025).
"""

from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
