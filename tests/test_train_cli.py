"""Command-line tests of `sparse-maml` (sparse_maml.cli): a run killed mid-way resumes to the same numbers, and every
bad input ends with one line `error: ...` on stderr and exit code 2. Tiny configs on a synthetic cache: seconds each."""
import os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from sparse_maml.cli import main
from sparse_maml.data import tiny_cache
from sparse_maml.train import load_checkpoint, read_metrics

EPOCHS = 8  # long enough that a kill right after the first checkpoint lands mid-run


def tiny(data_dir, epochs=2, *extra):
    "Options of a tiny CPU run: hidden 8, 1 inner step, `epochs` x 3 meta-batches, 20 val/test episodes."
    sets = ['hidden=8', 'n_inner_steps=1', f'epochs={epochs}', 'iters_per_epoch=3', 'n_val_episodes=20',
            'n_test_episodes=20', 'eval_batch=10', 'rotations=false', f'data_dir={data_dir}', *extra]
    return ['--device', 'cpu', '--quiet'] + [a for s in sets for a in ('--set', s)]


def run(capsys, *argv):
    "`main(argv)` in this process: (exit code, stdout, stderr)."
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def numbers(run_dir):
    "Every record of metrics.jsonl without the wall time (the only field allowed to differ between identical runs)."
    return [{k: v for k, v in r.items() if k != 'wall_time'} for r in read_metrics(run_dir)]


def same_weights(a, b):
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    return all(torch.equal(ca[part][k], cb[part][k]) for part in ('theta', 'meta') for k in ca[part])


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    "Run every test in its own directory, so the default run directory (runs/...) never lands in the repository."
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    return tiny_cache(tmp_path_factory.mktemp('data')).parent


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
    "An uninterrupted run of EPOCHS epochs."
    run_dir = tmp_path_factory.mktemp('ref') / 'run'
    assert main(['train', '--run-dir', str(run_dir), *tiny(data_dir, EPOCHS)]) == 0
    return run_dir


def test_train_evaluate_info(reference, capsys):
    ms = read_metrics(reference)
    assert [r['split'] for r in ms] == ['val'] * EPOCHS + ['test']
    fields = {'train_acc', 'train_loss', 'val_acc', 'val_loss', 'sparsity', 'outer_lr', 'mask_lr', 'wall_time'}
    assert fields <= set(ms[0])
    assert {p.name for p in reference.iterdir()} >= {'config.json', 'metrics.jsonl', 'last.pt', 'best.pt'}
    rc, out, err = run(capsys, 'evaluate', reference, '--json', '--quiet')
    assert rc == 0 and err == ''
    assert f'"test_acc": {ms[-1]["test_acc"]}' in out  # same checkpoint, same fixed episodes, same number
    rc, out, err = run(capsys, 'info', reference)
    assert rc == 0 and 'update sparsity of best.pt' in out and 'overall' in out
    assert 'omniglot      train 12 classes' in out


def test_stop_and_resume_is_exact(data_dir, reference, tmp_path, capsys):
    run_dir = tmp_path / 'stopped'
    rc, out, _ = run(capsys, 'train', '--run-dir', run_dir, *tiny(data_dir, EPOCHS), '--stop-after-epochs', 3)
    assert rc == 0 and 'continue with: sparse-maml train --resume' in out
    assert load_checkpoint(run_dir / 'last.pt')['epoch'] == 3
    rc, out, err = run(capsys, 'train', '--resume', run_dir, '--quiet')
    assert rc == 0, err
    assert numbers(run_dir) == numbers(reference)
    assert same_weights(run_dir / 'best.pt', reference / 'best.pt')


def test_kill_and_resume_is_exact(data_dir, reference, tmp_path, capsys):
    "SIGKILL a real training process right after its first checkpoint, resume it, compare with the uninterrupted run."
    run_dir = tmp_path / 'killed'
    env = {**os.environ, 'OMP_NUM_THREADS': str(torch.get_num_threads())}  # same arithmetic as this process
    argv = [sys.executable, '-m', 'sparse_maml.cli', 'train', '--run-dir', str(run_dir), *tiny(data_dir, EPOCHS)]
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run_dir / 'last.pt').exists():
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline, 'no checkpoint after 120 s'
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL); p.wait()
    killed_at = load_checkpoint(run_dir / 'last.pt')['epoch']
    assert killed_at < EPOCHS, 'the run finished before the kill'
    assert not any(r['split'] == 'test' for r in read_metrics(run_dir))
    rc, out, err = run(capsys, 'train', '--resume', run_dir, '--quiet')
    assert rc == 0, err
    assert numbers(run_dir) == numbers(reference)
    assert same_weights(run_dir / 'best.pt', reference / 'best.pt')


def bad_inputs(data_dir, tmp):
    "name -> (argv, a piece of the expected message)."
    t = tiny(data_dir)
    return {
        'unknown preset': (['train', '--preset', 'omniglot-1w1s'], "unknown preset 'omniglot-1w1s'"),
        'unknown algo': (['train', '--algo', 'reptile'], "invalid choice: 'reptile'"),
        'unknown field': (['train', '--set', 'inner_Lr=0.1'], "unknown config field 'inner_Lr'"),
        'unknown option': (['train', '--epochs', '3'], 'unrecognized arguments: --epochs'),
        'unknown command': (['fly'], "unknown command 'fly'"),
        'bad value': (['train', '--set', 'epochs=two'], "bad value 'two' for epochs"),
        'zero steps': (['train', *t, '--set', 'n_inner_steps=0'], 'n_inner_steps must be positive, got 0'),
        'negative lr': (['train', *t, '--set', 'inner_lr=-0.5'], 'inner_lr must be positive, got -0.5'),
        'zero outer lr': (['train', *t, '--set', 'outer_lr=0'], 'outer_lr must be positive, got 0.0'),
        'zero epochs': (['train', *t, '--set', 'epochs=0'], 'epochs must be positive, got 0'),
        'missing cache': (['train', '--run-dir', tmp / 'a', *t, '--set', f'data_dir={tmp / "nowhere"}'],
                          f'no omniglot cache in {tmp / "nowhere" / "omniglot"}; '
                          'build it with: sparse-maml prepare omniglot'),
        'n-way > classes': (['train', '--run-dir', tmp / 'b', *t, '--set', 'n_way=7'],
                            'n_way=7 but the omniglot val split has only 6 classes'),
        'shots + queries > images': (['train', '--run-dir', tmp / 'c', *t, '--set', 'k_shot=5', '--set', 'n_query=16'],
                                     'k_shot + n_query = 21 but the omniglot train split has only 20 images per class'),
        'not a run directory': (['evaluate', tmp / 'nowhere'], 'is not a run directory (no config.json)'),
        'bad evaluate option': (['evaluate', tmp / 'nowhere', '--checkpoint', 'first'], "invalid choice: 'first'"),
        'no CUDA': (['train', *t, '--device', 'cuda'], "device 'cuda' requested but CUDA is not available"),
        'diverging loss': (['train', '--run-dir', tmp / 'd', *t, '--set', 'inner_lr=1e38'],
                           'non-finite training loss (nan) at step 1 (epoch 1, meta-batch 1); '
                           'stopped, last good checkpoint: none yet'),
    }


@pytest.mark.parametrize('case', list(bad_inputs('D', Path('T'))))
def test_bad_input(case, data_dir, tmp_path, capsys, monkeypatch):
    if case == 'no CUDA' and torch.cuda.is_available(): pytest.skip('CUDA is available here')
    argv, msg = bad_inputs(data_dir, tmp_path)[case]
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert err.startswith('error: ') and err.count('\n') == 1, err
    assert msg in err, err


def test_resume_with_other_config_lists_the_keys(reference, tmp_path, capsys):
    run_dir = tmp_path / 'copy'; shutil.copytree(reference, run_dir)
    rc, out, err = run(capsys, 'train', '--resume', run_dir, '--set', 'inner_lr=0.3', '--set', 'n_query=4',
                       '--set', 'epochs=9')   # epochs may rise; the other two are listed
    assert rc == 2 and 'only epochs (upwards) and device may change, and the config differs from the saved one in ' \
        'inner_lr: 0.4 -> 0.3; n_query: 5 -> 4' in err, err
    rc, out, err = run(capsys, 'train', '--resume', run_dir, '--set', 'epochs=7')
    assert rc == 2 and 'with fewer epochs (8 -> 7); epochs may only rise' in err, err
    rc, out, err = run(capsys, 'train', '--resume', run_dir, '--set', 'epochs=9', '--quiet')   # a finished run, longer
    assert rc == 0 and 'test accuracy' in out, err
    assert [r['split'] for r in read_metrics(run_dir)] == ['val'] * 9 + ['test']
    rc, out, err = run(capsys, 'train', '--run-dir', run_dir, '--quiet')
    assert rc == 2 and 'already holds a run' in err


def test_corrupt_checkpoint_is_named_and_kept(reference, tmp_path, capsys):
    run_dir = tmp_path / 'copy'; shutil.copytree(reference, run_dir)
    cases = (('last.pt', ['train', '--resume', run_dir]), ('best.pt', ['evaluate', run_dir]),
             ('best.pt', ['info', run_dir]))
    for name, argv in cases:
        f = run_dir / name
        damaged = f.read_bytes()[:len(f.read_bytes()) // 3]
        f.write_bytes(damaged)
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and f'corrupt or truncated checkpoint {f}' in err, err
        assert f.read_bytes() == damaged  # never overwritten


def test_console_script_one_line_error(tmp_path):
    "The installed `sparse-maml` script in a real process: one line on stderr, exit code 2, no traceback."
    script = Path(sys.executable).parent / 'sparse-maml'
    argv = [str(script)] if script.exists() else [sys.executable, '-m', 'sparse_maml.cli']
    r = subprocess.run([*argv, 'train', '--device', 'cpu', '--set', f'data_dir={tmp_path}'], capture_output=True,
                       text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith('error: no omniglot cache') and r.stderr.count('\n') == 1, r.stderr
    assert 'Traceback' not in r.stderr and f'sparse-maml prepare omniglot --data-dir {tmp_path}' in r.stderr


def test_damaged_cache_names_the_file_and_the_fix(data_dir, tmp_path, capsys):
    "A truncated cache file: one line naming it and the exact rebuild command; the cache is left as it was."
    root = tmp_path / 'data'; shutil.copytree(data_dir, root)
    f = root / 'omniglot' / 'test.pt'
    f.write_bytes(f.read_bytes()[:10_000])
    rc, out, err = run(capsys, 'train', '--run-dir', tmp_path / 'run', *tiny(root))
    assert rc == 2 and err.count('\n') == 1, err
    assert f'damaged omniglot cache: {f} has 10000 bytes' in err
    assert f'rebuild it with: sparse-maml prepare omniglot --data-dir {root} --force' in err
    assert len(f.read_bytes()) == 10_000 and not (tmp_path / 'run' / 'config.json').exists()


def test_progress_in_a_pipe_is_a_few_lines(data_dir, tmp_path):
    "Progress written to a pipe (CI, `make quickstart > log`): plain lines, no carriage-return frame per iteration."
    argv = [sys.executable, '-m', 'sparse_maml.cli', 'train', '--run-dir', str(tmp_path / 'run'),
            *[a for a in tiny(data_dir, 3) if a != '--quiet']]
    r = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '\r' not in r.stderr and len(r.stderr.splitlines()) <= 2, r.stderr   # 9 iterations: only the last line
    assert 'sparse-maml omniglot: 9/9 meta-iterations' in r.stderr, r.stderr
