"""The Python environment Triton's python-backend stub runs models in.

The stub in the nvidia-pytriton wheel is built with a numpy-1 pybind11: under numpy 2 it reads every
dtype's item size as 0, so input tensors arrive as copies of their first byte and outputs come back
empty. The project itself needs numpy 2 (feast), so the stub gets a small overlay venv: numpy<2 in its
own site-packages, then everything else from the project venv (added with `site.addsitedir`, so the
venv's own .pth files, the editable install of this project included, still apply).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

NUMPY_REQUIREMENT = "numpy<2"
PTH_NAME = "clickcast-project-venv.pth"
COMPLETE_MARKER = ".complete"


def pth_line(project_site_packages: Path) -> str:
    return f"import site; site.addsitedir({str(project_site_packages)!r})\n"


def ensure_stub_python(cache_dir: Path) -> Path:
    """Return the overlay venv's `bin` (put first on the stub's PATH), creating it once."""
    env_dir = cache_dir / "triton-python"
    project_site = Path(sysconfig.get_paths()["purelib"])
    site_packages = Path(sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})["purelib"])
    marker = env_dir / COMPLETE_MARKER
    pth = site_packages / PTH_NAME
    if marker.exists() and pth.is_file() and pth.read_text() == pth_line(project_site):
        return env_dir / "bin"
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    made = subprocess.run([str(base_python), "-m", "venv", "--clear", str(env_dir)], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"could not create the Triton stub's venv in {env_dir}: {made.stderr.strip()[-500:]}")
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, NUMPY_REQUIREMENT],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not install {NUMPY_REQUIREMENT} for the Triton stub: {result.stderr.strip()[-500:]}")
    pth.write_text(pth_line(project_site))
    marker.touch()
    return env_dir / "bin"
