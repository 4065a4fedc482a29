"""Data parallelism over tasks (sparse_maml.distributed): two gloo processes on the CPU reproduce the single-process
meta-gradients (float64 to rounding; float32 as close to the float64 truth as one process is), evaluation split
unevenly over ranks gathers to the same per-task results, `torchrun -m sparse_maml.distributed` runs the same check
through torchrun's environment, and `torchrun -m sparse_maml.cli train` follows the single-process training run
with rank 0 alone writing."""
import os, subprocess, sys
import pytest, torch
import sparse_maml.distributed as D
from sparse_maml.backbone import float32_error, init_conv4
from sparse_maml.data import Episodes
from sparse_maml.learners import make_learner

SETTINGS = [dict(dtype='float64'), dict(dtype='float32'), dict(dtype='float64', reduction='sum'),
            dict(algo='maml', dtype='float64'), dict(algo='metasgd', dtype='float64', n_tasks=6)]


def episodes(T, seed=1):
    g, N, K, Q = torch.Generator().manual_seed(seed), 5, 1, 3
    return Episodes(torch.randn(T, N * K, 1, 28, 28, generator=g), torch.arange(N).repeat_interleave(K).repeat(T, 1),
                    torch.randn(T, N * Q, 1, 28, 28, generator=g), torch.arange(N).repeat_interleave(Q).repeat(T, 1))


def learner():
    return make_learner('sparse-maml', init_conv4(1, 8, 5, 28), 0.4, 2)


def _worker(rank, world, path):
    "Everything the tests compare, computed in each of the `world` gloo processes."
    torch.set_num_threads(1)
    out = {'grads': [D.meta_gradients(rank, world, **s) for s in SETTINGS]}
    ev = D.DistributedEval(learner(), rank, world)
    out['eval3'] = ev.evaluate(episodes(3))        # uneven blocks: 1 and 2 tasks
    out['eval1'] = ev.evaluate(episodes(1))        # rank 0 has no task
    out['gather'] = D.gather_tasks(torch.arange(rank + 2) * 10 + rank, world)
    out['loss'] = (D.all_reduce_loss(torch.tensor(float(rank + 1)), world, 'mean'),
                   D.all_reduce_loss(torch.tensor(float(rank + 1)), world, 'sum'))
    out['is_main'] = D.is_main()
    torch.save(out, f'{path}.{rank}')


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('dist') / 'out')
    D.launch(_worker, 2, path)
    return [torch.load(f'{path}.{r}') for r in range(2)]


@pytest.mark.parametrize('i', range(len(SETTINGS)))
def test_gradients_equal_single_process(ranks, i):
    s, single = SETTINGS[i], D.meta_gradients(0, 1, **SETTINGS[i])
    r0, r1 = ranks[0]['grads'][i], ranks[1]['grads'][i]
    assert all(torch.equal(r0[k], r1[k]) for k in single)              # identical on every rank
    if s['dtype'] == 'float64':           # the exactness check: the same sums in another order, to rounding
        assert D.rel_diff(r0, single) < 1e-12
        for k in single: torch.testing.assert_close(r0[k], single[k], rtol=1e-10, atol=1e-12 * _scale(single))
        return
    # float32: two processes compute the tasks in other batches (the CPU engine batches a process's first inner step)
    # and sum them in another order, so they round differently. The bound comes from the float64 truth of the same
    # inputs (the float64 setting draws the same numbers): two processes are as close to it as one process is, within
    # a factor 4 and 64 unit roundoffs (the course's rule for float32, chapter 04). Measured with `float32_error` (units
    # of u = 2^-24), one process and two: 36u and 36u on AVX-512, 32u and 32u under ATEN_CPU_CAPABILITY=avx2
    # (2026-12-03, Intel Xeon).
    truth = D.meta_gradients(0, 1, **dict(s, dtype='float64'))
    one, two = float32_error(single, truth), float32_error(r0, truth)
    assert two <= 4 * one + 64, (one, two)


def _scale(g):   # a conv bias before BatchNorm has meta-gradient 0 up to rounding: compare on the whole's scale
    return max(v.abs().max().item() for v in g.values())


def test_distributed_eval_matches_learner(ranks):
    L = learner()
    for key, T in (('eval3', 3), ('eval1', 1)):
        loss, acc = L.evaluate(episodes(T))
        for r in ranks:
            torch.testing.assert_close(r[key][0], loss, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(r[key][1], acc)


def test_collectives(ranks):
    for r in ranks:
        assert r['gather'].tolist() == [0, 10, 1, 11, 21]                 # rank 0: [0, 10]; rank 1: [1, 11, 21]
        assert r['loss'][0].item() == 1.5 and r['loss'][1].item() == 3.0
    assert [r['is_main'] for r in ranks] == [True, False]


def test_single_process_is_a_no_op():
    assert D.init_distributed() == (0, 1) and D.is_main()
    w = torch.zeros(2, requires_grad=True); w.grad = torch.ones(2)
    D.all_reduce_grads([w], 1); assert w.grad.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match='cannot be split evenly'): D.shard(episodes(3), 0, 2)


def test_torchrun():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m',
                        'sparse_maml.distributed'], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '2 processes: meta-gradients equal the single-process ones' in r.stdout


def _train(launcher, run_dir, data_dir, *extra):
    "`sparse-maml train` on the tiny synthetic cache of test_train_cli, single-threaded: (returncode, stdout, stderr)."
    from test_train_cli import tiny
    cmd = [*launcher, '-m', 'sparse_maml.cli', 'train', '--run-dir', str(run_dir),
           *tiny(data_dir, 2, 'meta_batch=4', *extra)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=600)
    return r.returncode, r.stdout, r.stderr


TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']


def test_torchrun_train(tmp_path):
    "`torchrun --nproc_per_node=2 ... train` follows the single-process run; only rank 0 writes and reports."
    from sparse_maml.data import tiny_cache
    from sparse_maml.runs import load_checkpoint, read_metrics
    data_dir = tiny_cache(tmp_path / 'data').parent
    rc1, out1, err1 = _train([sys.executable], tmp_path / 'one', data_dir)
    rc2, out2, err2 = _train(TORCHRUN, tmp_path / 'two', data_dir)
    assert rc1 == 0, err1[-3000:]
    assert rc2 == 0, err2[-3000:]
    assert out2.count('test accuracy') == 1                                  # one report, from rank 0
    assert sorted(p.name for p in (tmp_path / 'two').iterdir()) == sorted(p.name for p in (tmp_path / 'one').iterdir())
    m1, m2 = read_metrics(tmp_path / 'one'), read_metrics(tmp_path / 'two')
    # one line per validation and test
    assert [(r['split'], r['step']) for r in m2] == [(r['split'], r['step']) for r in m1]
    for a, b in zip(m1, m2):
        for k in ('train_loss', 'val_loss', 'test_loss'):
            if k in a: assert b[k] == pytest.approx(a[k], rel=1e-4), k
        for k in ('train_acc', 'val_acc', 'test_acc', 'sparsity'):
            if k in a: assert b[k] == pytest.approx(a[k], abs=1e-3), k
    c1, c2 = load_checkpoint(tmp_path / 'one' / 'last.pt'), load_checkpoint(tmp_path / 'two' / 'last.pt')
    for part in ('theta', 'meta'):
        for k in c1[part]:
            # a conv bias before BatchNorm has meta-gradient 0 up to rounding, and Adam scales that rounding noise up to
            # full-size steps, so those biases wander differently in any two summation orders (they change no output)
            if part == 'theta' and k.startswith('conv') and k.endswith('.bias'): continue
            torch.testing.assert_close(c2[part][k], c1[part][k], rtol=1e-4, atol=1e-5)


def test_torchrun_train_uneven_meta_batch(tmp_path):
    from sparse_maml.data import tiny_cache
    data_dir = tiny_cache(tmp_path / 'data').parent
    rc, out, err = _train(TORCHRUN, tmp_path / 'odd', data_dir, 'meta_batch=3')
    assert rc != 0
    assert 'error: meta_batch=3 cannot be split evenly over 2 processes; use a multiple of 2' in err
    assert not (tmp_path / 'odd').exists()                                   # nothing written
