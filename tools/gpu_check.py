#!/usr/bin/env python
"""`make gpu-check`: the course's GPU measurements in one go, every output under gpu-check/<device>-<date>/.

On one CUDA GPU (budget 8 minutes, sized for an H200): episodes on the GPU equal the CPU's; the benchmark (chapter 09)
in fp32, tf32 and bf16 and with CUDA graphs (every row's float64 meta-gradients against the reference's, the graphed
rows through their graph); a short real training run through the CLI (Omniglot, stopped after one epoch and resumed:
its metrics must equal those of an uninterrupted run); a short quickstart on the GPU. With --dry-run, or where there is
no CUDA, the same steps run on the CPU at tiny sizes (TF32 and CUDA graphs skipped), so that the script cannot rot
(`make test` runs it).

    python tools/gpu_check.py                 # on a GPU machine
    python tools/gpu_check.py --dry-run       # anywhere, about a minute on 2 CPU cores
"""
import argparse, json, os, re, subprocess, sys, time
from pathlib import Path
from sparse_maml.bench import bf16_support

ROOT = Path(__file__).resolve().parents[1]
# The CLI with deterministic cuDNN (the resumed run must match the uninterrupted one exactly).
CLI = "import sys, torch; torch.backends.cudnn.deterministic = True; torch.backends.cudnn.benchmark = False; " \
      "from sparse_maml.cli import main; sys.exit(main(sys.argv[1:]))"


def device_name(cuda: bool) -> str:
    "The GPU's name, or 'cpu-dry-run'."
    if not cuda: return 'cpu-dry-run'
    import torch
    return torch.cuda.get_device_name(0)


def out_dir(base: Path, name: str) -> Path:
    "base/<device name as a slug>-<UTC date and time>, created."
    slug = re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()
    d = base / f"{slug}-{time.strftime('%Y%m%d-%H%M', time.gmtime())}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def omniglot_dir(out: Path, dry: bool) -> tuple[str, str]:
    "(data_dir, what): the real Omniglot cache where there is one (and not --dry-run), else a tiny synthetic one."
    real = Path(os.environ.get('SPARSE_MAML_DATA', ROOT / 'data'))
    if not dry and (real / 'omniglot' / 'manifest.json').exists(): return str(real), 'Omniglot cache'
    from sparse_maml.data import tiny_cache
    tiny_cache(out / 'data')
    return str(out / 'data'), 'tiny synthetic Omniglot-shaped cache'


def bench_steps(dry: bool, device: str) -> list[tuple[str, list[str], int]]:
    "The benchmark in each precision and with CUDA graphs: (name, argv, timeout seconds)."
    sizes = 'tiny' if dry else 'omniglot-5w1s-k5,omniglot-5w1s-k25,mini-5w1s,mini-5w5s'
    fast = 'tiny' if dry else 'omniglot-5w1s-k25,mini-5w1s,mini-5w5s'
    reps = "repeats=1, warmup=0, threads=1" if dry else "repeats=10, warmup=3"
    runs = [('bench-fp32', f"precision='fp32', sizes='{sizes}', impls='reference,engine'"),
            ('bench-tf32', f"precision='tf32', sizes='{fast}'"), ('bench-bf16', f"precision='bf16', sizes='{fast}'"),
            ('bench-tf32-graphs', f"precision='tf32', sizes='{fast}', cuda_graphs=True")]
    code = "from sparse_maml.bench import bench_cmd; bench_cmd(device='{d}', {a}, {r})"
    def argv(a):   # on a CPU: TF32 and CUDA graphs have nothing to run, and emulated bf16 takes minutes even when tiny
        if dry and ("'tf32'" in a or 'cuda_graphs' in a): return 'CUDA only'
        if dry and "'bf16'" in a and not bf16_support().startswith('native'): return 'bf16 emulated on this CPU'
        return [sys.executable, '-c', code.format(d=device, a=a, r=reps)]
    return [(n, argv(a), 120 if dry else 150) for n, a in runs]


def train_steps(dry: bool, device: str, data_dir: str, out: Path) -> list[tuple[str, list[str], int]]:
    "An uninterrupted 2-epoch run, and the same run stopped after epoch 1 and resumed."
    sets = ['epochs=2', f'data_dir={data_dir}', 'tensorboard=false']
    if dry: sets += ['hidden=8', 'iters_per_epoch=3', 'n_val_episodes=4', 'n_test_episodes=4', 'eval_batch=4']
    else: sets += ['iters_per_epoch=50', 'n_val_episodes=100', 'n_test_episodes=200']
    base = [sys.executable, '-c', CLI, 'train', '--preset', 'omniglot-5w1s', '--device', device, '--quiet',
            *[x for s in sets for x in ('--set', s)]]
    full, part = out / 'train' / 'full', out / 'train' / 'resumed'
    t = 120 if dry else 100
    return [('train-full', [*base, '--run-dir', str(full)], t),
            ('train-stopped', [*base, '--run-dir', str(part), '--stop-after-epochs', '1'], t),
            ('train-resumed', [sys.executable, '-c', CLI, 'train', '--resume', str(part), '--quiet'], t)]


def quickstart_step(dry: bool, device: str, data_dir: str, out: Path) -> tuple[str, list[str], int]:
    "A short quickstart (no baseline) on `device`: the budget is sized and the run trained there."
    kw = dict(minutes=0.2, max_iters=4, hidden=8, n_val_episodes=4, n_test_episodes=4, eval_batch=4) if dry \
        else dict(minutes=1.0)
    kw['device'] = device
    code = (f"from sparse_maml.quickstart import quickstart; quickstart(run_dir={str(out / 'quickstart')!r}, "
            f"baseline='none', progress=False, data_dir={data_dir!r}, **{kw!r})")
    return 'quickstart', [sys.executable, '-c', code], 120 if dry else 150


EPISODES = """
import torch
from sparse_maml.data import EpisodeSampler, fixed_episodes, synthetic_dataset
ds = synthetic_dataset(1, 28)
a, b = EpisodeSampler(ds.to('{d}'), 5, 1, 5, seed=3), EpisodeSampler(ds, 5, 1, 5, seed=3)
for _ in range(3):
    x, y = a.sample(4), b.sample(4)
    assert torch.equal(x.ys.cpu(), y.ys) and torch.allclose(x.xs.cpu(), y.xs) and torch.allclose(x.xq.cpu(), y.xq)
assert torch.equal(fixed_episodes(ds.to('{d}'), 10, 5, 1, 5).idx.cpu(), fixed_episodes(ds, 10, 5, 1, 5).idx)
print('training and evaluation episodes on {d} are those of the CPU')
"""


def episodes_step(device: str) -> tuple[str, list[str], int]:
    "Episodes drawn for data on `device` equal those drawn on the CPU (the same seed, the same tasks)."
    return 'episodes-same', [sys.executable, '-c', EPISODES.format(d=device)], 60


def run_step(name: str, argv: list[str] | str, timeout: int, out: Path, deadline: float) -> dict:
    "Run one step with its output in out/<name>.log (`argv` a string: why it is skipped); its record and status."
    left = deadline - time.time()
    if isinstance(argv, str): return dict(step=name, status=f'skipped ({argv})', seconds=0)   # why it does not run
    if left < 20: return dict(step=name, status='skipped (time budget spent)', seconds=0)
    t0, log = time.time(), out / f'{name}.log'
    with open(log, 'w') as f:
        f.write('$ ' + ' '.join(argv) + '\n\n'); f.flush()
        try:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                                timeout=min(timeout, left)).returncode
            status = 'ok' if rc == 0 else f'failed (exit code {rc})'
        except subprocess.TimeoutExpired: status = f'timeout ({min(timeout, left):.0f} s)'
    return dict(step=name, status=status, seconds=round(time.time() - t0, 1), log=log.name)


def _metrics(run_dir: Path) -> list[dict]:
    "metrics.jsonl of a run, without the wall-clock fields."
    recs = [json.loads(l) for l in (run_dir / 'metrics.jsonl').read_text().splitlines() if l.strip()]
    return [{k: v for k, v in r.items() if 'time' not in k} for r in recs]


def compare_resume(out: Path) -> dict:
    "Did the stopped-and-resumed run log exactly what the uninterrupted one logged?"
    try: a, b = _metrics(out / 'train' / 'full'), _metrics(out / 'train' / 'resumed')
    except OSError as e: return dict(step='resume-identical', status=f'failed ({e})', seconds=0)
    same = a == b and any(r.get('split') == 'test' for r in a)
    return dict(step='resume-identical', status='ok' if same else 'failed (metrics differ)', seconds=0,
                records=len(a), full_last=a[-1] if a else None, resumed_last=b[-1] if b else None)


def write_summary(out: Path, head: dict, records: list[dict]) -> bool:
    "summary.json and summary.md in `out`; True when no step failed (a step skipped for the time budget is not run)."
    ok = all(r['status'] == 'ok' or r['status'].startswith('skipped') for r in records)
    (out / 'summary.json').write_text(json.dumps(dict(head, ok=ok, steps=records), indent=1) + '\n')
    lines = [f"# gpu-check {head['device']} {head['date']}", '', f"torch {head['torch']}, {head['mode']}, "
             f"data: {head['data']}", '', '| step | status | seconds | log |', '|---|---|---|---|']
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']} | {r.get('log', '')} |" for r in records]
    (out / 'summary.md').write_text('\n'.join(lines) + '\n')
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dry-run', action='store_true', help='the same steps on the CPU at tiny sizes')
    p.add_argument('--out', default=str(ROOT / 'gpu-check'), help='folder under which the dated output folder goes')
    p.add_argument('--budget-min', type=float, default=8.0, help='wall-clock budget; later steps are skipped beyond it')
    args = p.parse_args(argv)
    import torch
    cuda = torch.cuda.is_available() and not args.dry_run
    dry, device, t0 = not cuda, 'cuda' if cuda else 'cpu', time.time()
    name = device_name(cuda)
    out = out_dir(Path(args.out), name)
    data_dir, what = omniglot_dir(out, dry)
    bench = bench_steps(dry, device)   # fp32 first, then the short runs, then the other precisions (the budget's last)
    steps = [episodes_step(device), bench[0], *train_steps(dry, device, data_dir, out),
             quickstart_step(dry, device, data_dir, out), *bench[1:]]
    deadline, records = t0 + 60 * args.budget_min, []
    for step in steps:
        records.append(run_step(*step, out, deadline))
        if step[0] == 'train-resumed': records.append(compare_resume(out))
        for r in records[-2 if step[0] == 'train-resumed' else -1:]:
            print(f"{r['step']:18s} {r['status']} ({r['seconds']} s)", flush=True)
    head = dict(device=name, date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), torch=torch.__version__,
                mode='dry run on the CPU' if dry else 'CUDA', data=what, seconds=round(time.time() - t0))
    ok = write_summary(out, head, records)
    skipped = sum(r['status'].startswith('skipped') for r in records)
    verdict = ('all steps passed' if not skipped else f'no step failed, {skipped} skipped') if ok \
        else 'some steps FAILED'
    print(f"{verdict} in {head['seconds']} s; outputs in {out}")
    return 0 if ok else 1


if __name__ == '__main__': sys.exit(main())
