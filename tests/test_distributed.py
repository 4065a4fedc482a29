"""Data parallelism over tasks (sparse_maml.distributed): two gloo processes on the CPU reproduce the single-process
meta-gradients (float64 to rounding, float32 to 1e-6), evaluation split unevenly over ranks gathers to the same per-task
results, and `torchrun -m sparse_maml.distributed` runs the same check through torchrun's environment."""
import os, subprocess, sys
import pytest, torch
import sparse_maml.distributed as D
from sparse_maml.backbone import init_conv4
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
    assert D.rel_diff(r0, single) < (1e-12 if s['dtype'] == 'float64' else 1e-6)
    for k in single:                                                    # and close tensor by tensor
        torch.testing.assert_close(r0[k], single[k], rtol=1e-6 if s['dtype'] == 'float32' else 1e-10,
                                   atol=1e-6 * single[k].abs().max().item() + 1e-12)


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
