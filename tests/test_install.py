"""The installed package is complete: build the wheel, install it into a fresh virtual environment, prepare Omniglot
and run a tiny training there, from a folder outside the clone so that nothing is imported from the source tree.

Offline and without reinstalling torch: the wheel is built without build isolation (the project's setuptools) and
installed with `--no-deps --no-index`; the fresh environment sees the project's torch, torchvision, fastcore, ...
through a `.pth` file naming the project environment's site-packages. Paths named by a `.pth` file are appended to
`sys.path` after the environment's own site-packages, and the `.pth` files inside them (such as the editable
install's finder, which would import the source tree) are not run, so `sparse_maml` comes from the wheel.
"""
import os, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = next((p for p in (REPO.parent / 'shared/data/omniglot', Path('/work/shared/data/omniglot'))
                 if (p / 'images_background_small1.zip').exists()), None)
BUILD_INPUTS = ['setup.py', 'settings.ini', 'pyproject.toml', 'README.md', 'MANIFEST.in', 'sparse_maml']
TINY = ['hidden=8', 'n_inner_steps=1', 'epochs=1', 'iters_per_epoch=2', 'n_val_episodes=5', 'n_test_episodes=5',
        'eval_batch=5']


def run(*cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f'{" ".join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}'
    return out


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    "(venv folder, environment variables, wheel path): the wheel of this working tree installed into a fresh venv."
    tmp = tmp_path_factory.mktemp('install')
    src = tmp / 'src'  # a copy of the build inputs, so the build leaves nothing in the clone
    src.mkdir()
    for name in BUILD_INPUTS:
        p = REPO / name
        if p.is_dir(): shutil.copytree(p, src / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        elif p.exists(): shutil.copy(p, src / name)
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index', '.',
        '-w', tmp / 'wheels', cwd=src)
    wheel = next((tmp / 'wheels').glob('sparse_maml-*.whl'))
    venv = tmp / 'venv'
    run(sys.executable, '-m', 'venv', '--without-pip', venv, cwd=tmp)
    py = venv / 'bin' / 'python'
    purelib = run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])', cwd=tmp).stdout.strip()
    deps = sysconfig.get_paths()['purelib']  # this (the project's) environment: torch, torchvision, fastcore, ...
    Path(purelib, 'project_deps.pth').write_text(deps + '\n')
    run(sys.executable, '-m', 'pip', '--python', py, 'install', '-q', '--no-deps', '--no-index', wheel, cwd=tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PYTHON', 'SPARSE_MAML', 'VIRTUAL_ENV'))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", OMP_NUM_THREADS='1', PYTHONNOUSERSITE='1',
               SPARSE_MAML_DATA=str(tmp / 'default-data'))
    (tmp / 'work').mkdir()
    return venv, env, wheel


def test_wheel_contents(installed):
    "The wheel holds the preparation modules and the quickstart's baseline, not the clone's scripts or notebooks."
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for m in ('data', 'prepare', 'omniglot', 'miniimagenet', 'prepare_cli', 'cli'):
        assert f'sparse_maml/{m}.py' in names, m
    assert 'sparse_maml/results/quickstart_baseline.json' in names
    assert not [n for n in names if n.startswith(('data_scripts/', 'nbs/', 'tests/'))]


def test_imports_come_from_the_wheel(installed):
    venv, env, _ = installed
    code = ('import sparse_maml, torch; from importlib.resources import files; print(sparse_maml.__file__); '
            "print(files('sparse_maml').joinpath('results/quickstart_baseline.json').is_file())")
    out = run(venv / 'bin' / 'python', '-c', code, cwd=venv.parent / 'work', env=env).stdout.split()
    assert Path(out[0]).is_relative_to(venv) and out[1] == 'True', out


@pytest.mark.skipif(OMNIGLOT is None, reason='the Omniglot minimal zips (../shared/data/omniglot) are not here')
def test_prepare_and_train_in_a_fresh_venv(installed):
    "`sparse-maml prepare omniglot` and a tiny `sparse-maml train` with only the installed package."
    venv, env, _ = installed
    work, data = venv.parent / 'work', venv.parent / 'data'
    cli = venv / 'bin' / 'sparse-maml'
    out = run(cli, 'prepare', 'omniglot', '--source', OMNIGLOT, '--data-dir', data, cwd=work, env=env)
    assert f'cache written: {data / "omniglot"}' in out.stdout, out.stdout
    out = run(cli, 'prepare', 'omniglot', '--source', OMNIGLOT, '--data-dir', data, cwd=work, env=env)
    assert f'cache up to date: {data / "omniglot"}' in out.stdout, out.stdout
    out = run(cli, 'train', '--device', 'cpu', '--quiet', *sum((['--set', s] for s in TINY), []),
              '--set', f'data_dir={data}', '--run-dir', work / 'run', cwd=work, env=env)
    assert 'test accuracy' in out.stdout and (work / 'run' / 'best.pt').is_file(), out.stdout + out.stderr
