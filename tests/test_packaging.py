"""What the sdist and the wheel carry: the license, and a test suite that runs from the sdist."""

import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from conftest import tf_only

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy: setuptools writes its egg-info and build folders beside the sources,
    # and the checkout may be installed from (pip install -e) while this test runs.
    source = tmp_path_factory.mktemp("source") / "kreg"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "site", "report", ".whl", "*.egg-info", "__pycache__"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--sdist",
            "--wheel",
            "-o",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return out


@tf_only  # the same files whatever the backend: built once in CI
def test_license_is_the_apache_text_in_the_repository_sdist_and_wheel(dist):
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    with tarfile.open(sdist) as archive:
        name = next(n for n in archive.getnames() if n.endswith("/LICENSE"))
        assert archive.extractfile(name).read().decode() == text
    with zipfile.ZipFile(wheel) as archive:
        # .dist-info/licenses/LICENSE from setuptools 77 (PEP 639), .dist-info/LICENSE before
        name = next(n for n in archive.namelist() if ".dist-info/" in n and n.endswith("/LICENSE"))
        assert archive.read(name).decode() == text


@tf_only
def test_every_test_module_collects_from_the_unpacked_sdist(dist, tmp_path):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (source,) = tmp_path.iterdir()
    shipped = sorted(p.name for p in (source / "tests").glob("*.py"))
    assert shipped == sorted(p.name for p in (ROOT / "tests").glob("*.py"))
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stdout[-2000:]
    assert "error" not in collected.stdout.splitlines()[-1], collected.stdout[-2000:]
