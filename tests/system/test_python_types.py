"""The Python package type-checks under mypy --strict (its annotations are
its API documentation, and py.typed tells users' checkers to read them),
and it packages: setuptools finds the modules and py.typed without a
network."""

import os
import subprocess
import sys

import pytest

from python_support import PYTHON


def test_mypy_strict():
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip('python3-mypy is not installed (tools/arbiter-dev installs it)')
    proc = subprocess.run([sys.executable, '-m', 'mypy', '--cache-dir=/dev/null', 'arbiter'],
                          cwd=PYTHON, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout


def test_the_package_lists_its_files():
    files = sorted(os.listdir(os.path.join(PYTHON, 'arbiter')))
    assert 'py.typed' in files and '__init__.py' in files
    import tomllib
    with open(os.path.join(PYTHON, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)
    assert project['tool']['setuptools']['packages'] == ['arbiter']
    assert project['build-system']['requires'] == ['setuptools>=61']
    import arbiter
    assert arbiter.__version__ == project['project']['version']
