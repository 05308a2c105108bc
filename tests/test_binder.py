"""binder/ validated without Docker: what mybinder.org (repo2docker) would build.

- `repo2docker --no-build --debug .` (run from the repository root) succeeds, builds for the
  Python in binder/runtime.txt, installs binder/requirements.txt after the whole repository is
  in the image (its `-r ../requirements.txt` needs the root file) and runs binder/postBuild.
- binder/requirements.txt resolves in a fresh virtual environment (pip --dry-run; this asks
  the package registry) to exactly the root pins.
- postBuild installs bnlib and puts the JupyterLab overrides (no "Jupyter news" prompt) where
  JupyterLab reads them; the browser tests use the same overrides.json.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
BIN = pathlib.Path(sys.executable).parent


def pins(path: pathlib.Path) -> dict[str, str]:
    """name -> version for every `name==version` line, following `-r` includes."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            out.update(pins(path.parent / line[2:].strip()))
        elif "==" in line:
            name, version = (s.strip() for s in line.split("==", 1))
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def runtime_python() -> str:
    text = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(3\.\d+)", text)
    assert m, f"binder/runtime.txt should read like 'python-3.11', not {text!r}"
    return m.group(1)


def test_runtime_matches_the_project():
    version = runtime_python()
    requires = re.search(r'requires-python\s*=\s*">=\s*([\d.]+)"',
                         (ROOT / "pyproject.toml").read_text()).group(1)
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))      # noqa: E731
    assert as_tuple(version) >= as_tuple(requires), (
        f"binder/runtime.txt asks for Python {version}; pyproject.toml requires >= {requires}")


def test_binder_requirements_reuse_the_root_pins():
    lines = [l.split("#", 1)[0].strip() for l in
             (BINDER / "requirements.txt").read_text().splitlines()]
    assert "-r ../requirements.txt" in lines, "binder/requirements.txt includes the root pins"
    root, binder = pins(ROOT / "requirements.txt"), pins(BINDER / "requirements.txt")
    assert all(binder[name] == version for name, version in root.items())
    extra = set(binder) - set(root)
    assert extra <= {"notebook"}, f"binder adds pins beyond the root list: {sorted(extra)}"


def test_postbuild_installs_bnlib_and_the_lab_settings():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert re.search(r"pip install .*--no-deps -e \.", text), "installs bnlib from the checkout"
    assert "share/jupyter/lab/settings" in text and "overrides.json" in text
    overrides = json.loads((BINDER / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false", "the 'Jupyter news' prompt is switched off"
    # the value must be one the installed JupyterLab accepts
    schema = json.loads((BIN.parent / "share/jupyter/lab/schemas/@jupyterlab/apputils-extension"
                         / "notification.json").read_text())
    allowed = [o["const"] for o in schema["properties"]["fetchNews"]["oneOf"]]
    assert notification["fetchNews"] in allowed


def test_repo2docker_dry_run_names_the_python_and_installs_in_order():
    exe = BIN / "repo2docker"
    if not exe.exists():
        pytest.fail("repo2docker is missing: pip install -r requirements-test.txt")
    run = subprocess.run([str(exe), "--no-build", "--debug", "."], cwd=ROOT, text=True,
                         capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"repo2docker --no-build failed:\n{log[-4000:]}"
    version = runtime_python()
    assert f"Building conda environment for python={version}" in log, log[-3000:]
    copy_repo = log.find("COPY --chown=0:0 src/ ${REPO_DIR}/")
    pip_line = log.find('pip install --no-cache-dir -r "binder/requirements.txt"')
    assert pip_line > copy_repo > 0, (
        "binder/requirements.txt must be installed after the whole repository is copied "
        "(its -r ../requirements.txt needs the root file)")
    assert "./binder/postBuild" in log


def test_binder_requirements_resolve_in_a_fresh_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    report = tmp_path / "report.json"
    cmd = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--disable-pip-version-check", "--quiet", "--report", str(report),
           "-r", "requirements.txt"]
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DEFAULT_TIMEOUT="60", PIP_RETRIES="5")
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    try:
        run = subprocess.run(cmd, cwd=BINDER, env=env, text=True, capture_output=True,
                             timeout=900, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("pip could not resolve binder/requirements.txt within 15 minutes")
    assert run.returncode == 0, f"binder/requirements.txt does not resolve:\n{run.stderr[-4000:]}"
    resolved = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
                for i in json.loads(report.read_text())["install"]}
    wanted = pins(BINDER / "requirements.txt")
    wrong = {n: (v, resolved.get(n)) for n, v in wanted.items() if resolved.get(n) != v}
    assert not wrong, f"resolved versions differ from the pins (pin, resolved): {wrong}"
    shutil.rmtree(env_dir, ignore_errors=True)
