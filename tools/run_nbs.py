#!/usr/bin/env python
"""Run the notebooks as `nbdev_test` does, once each, and fail where a saved output is stale; or re-render outputs.

Usage (from the repository root; `make test` runs the first):
  python tools/run_nbs.py [PATH ...] [--n_workers 2] [--timing] [--flags 'slow'] [--file_re RE]
  python tools/run_nbs.py --write NB [NB ...]        re-render NB's outputs (the fix this check asks for)

Checking (the default) executes each notebook in nbs/ (or PATH: notebooks or folders) the way `nbdev_test` does:
nbdev's notebook selection (`skip_file_re`, `.notest`), each notebook in a worker process (`--n_workers`, like
nbdev's `parallel`) with the notebook's folder as working directory and `IN_TEST=1`, cells with a flag of
settings.ini's `tst_flags` (`slow`, `cuda`) skipped unless given in `--flags`, likewise `#| eval: false` and
`nbdev_export()` cells, `skip_exec` front matter honoured, the first exception ends the notebook. While running, it
compares what a cell renders now with its saved outputs, and fails (one line per stale cell) where:
  * a `show_doc(...)` cell has no saved output, or its markdown (`text/markdown`) or `text/plain` differs;
  * a cell that opts in with the directive `#| check_output` prints other text: its stdout stream, its
    `text/plain` and its `text/markdown` outputs (stderr, HTML and images are not compared).
Texts are compared as `nbdev_clean` saves them (object addresses ` at 0x...` removed), without trailing whitespace.
Cells are numbered as in the notebook file: cell[i] is the i-th entry of its `cells` list, from 0.

--write NB re-executes NB the same way, with every executed cell's outputs replaced (a cell that prints nothing now
keeps nothing: execnb alone would keep its old outputs); skipped cells (`slow`, `cuda`, `eval: false`) keep theirs.
It then saves NB and runs `nbdev_clean` on it. Nothing is written if a cell fails.
SPARSE_MAML_DATA defaults to data/ in the repository and OMP_NUM_THREADS to 1, as in `make test`."""
import argparse, os, re, sys, time, traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CWD = Path.cwd()   # paths in messages are relative to where the tool was started (workers change directory)
CLIP = 40   # characters of context either side of the first difference in a reported line
SHOW_DOC_KEYS = ('text/markdown', 'text/plain')
CHECK_OUTPUT_KEYS = ('stdout', 'text/plain', 'text/markdown')
_re_show_doc = re.compile(r'(?<![\w.])show_doc\(')
_re_addr = re.compile('(<.*?)( at 0x[0-9a-fA-F]+)(>)')   # what nbdev_clean removes from text outputs (clean_ids)


# --------------------------------------------------------------------------------------------------------
# Which cells, which texts

def is_show_doc(cell) -> bool:
    "Does code cell `cell` (directives removed) call `show_doc`?"
    return cell.cell_type == 'code' and bool(_re_show_doc.search(cell.source))


def compared_keys(cell) -> tuple:
    "The kinds of output of `cell` (a processed cell, with `directives_`) compared with the saved ones."
    keys = list(SHOW_DOC_KEYS) if is_show_doc(cell) else []
    opt = (getattr(cell, 'directives_', None) or {}).get('check_output')
    if opt is not None and [a.lower() for a in opt] != ['false']:
        keys += [k for k in CHECK_OUTPUT_KEYS if k not in keys]
    return tuple(keys)


def _text(v) -> str:
    v = ''.join(v) if isinstance(v, list) else str(v)
    return _re_addr.sub(r'\1\3', v) if ' at 0x' in v else v


def texts(outputs, keys) -> dict:
    "{key: text} of `outputs` for each of `keys` (a stream name or a mime type); images and their outputs skipped."
    res = {}
    for o in outputs or []:
        if o.get('output_type') == 'stream':
            if o.get('name') in keys: res[o['name']] = res.get(o['name'], '') + _text(o.get('text', ''))
            continue
        data = o.get('data') or {}
        if any(k.startswith('image/') for k in data): continue
        for k in keys:
            if k in data: res[k] = res[k] + '\n' + _text(data[k]) if k in res else _text(data[k])
    return {k: v.rstrip() for k, v in res.items()}


def has_show_doc_output(cell) -> bool:
    return any('text/markdown' in (o.get('data') or {}) for o in cell.get('outputs') or [])


# --------------------------------------------------------------------------------------------------------
# Reporting a difference

def _clip(line: str, col: int) -> str:
    "`line` cut to CLIP characters either side of column `col`, with '...' where cut."
    a, b = max(col - CLIP, 0), col + CLIP
    return ('...' if a else '') + line[a:b] + ('...' if len(line) > b else '')


def first_difference(saved: str, now: str) -> str:
    "The first line where `saved` and `now` differ, as `line N: saved '...' now '...'`."
    s, n = saved.splitlines(), now.splitlines()
    i = next((i for i, (a, b) in enumerate(zip(s, n)) if a != b), min(len(s), len(n)))
    a, b = (s[i] if i < len(s) else None), (n[i] if i < len(n) else None)
    col = next((j for j, (x, y) in enumerate(zip(a or '', b or '')) if x != y), min(len(a or ''), len(b or '')))
    show = lambda t: '(no line)' if t is None else repr(_clip(t, col))
    return f'line {i + 1}: saved {show(a)} now {show(b)}'


def difference(saved_outputs, now_outputs, keys) -> str | None:
    "Why the saved outputs are stale (the first differing kind and line), or None if they are not."
    saved, now = texts(saved_outputs, keys), texts(now_outputs, keys)
    for k in keys:
        if saved.get(k, '') != now.get(k, ''):
            if k not in saved: return f'{k}: no saved output, now {len(now[k].splitlines())} lines'
            return f'{k} {first_difference(saved[k], now.get(k, ""))}'
    return None


def _rel(fn: Path) -> str:
    try: return str(Path(fn).resolve().relative_to(CWD))
    except ValueError: return str(fn)


def rerender_command(fn) -> str:
    exe = Path(sys.executable)
    py = os.path.relpath(exe, CWD) if exe.is_relative_to(CWD) else 'python'
    return f'{py} {_rel(REPO / "tools" / "run_nbs.py")} --write {_rel(fn)}'


def stale_line(fn, idx: int, cell, why: str) -> str:
    "One line for a stale cell: notebook, cell index, what the cell is, why, and the command that fixes it."
    what = next((l.strip() for l in cell.source.splitlines() if l.strip()), '')
    what = what if len(what) <= 50 else what[:47] + '...'
    return f'stale output: {_rel(fn)} cell[{idx}] `{what}`: {why}; re-render: {rerender_command(fn)}'


# --------------------------------------------------------------------------------------------------------
# Executing one notebook

def load(fn: Path):
    "(notebook as saved, notebook processed as nbdev_test does: front matter, directives); cells know `file_idx_`."
    from execnb.nbio import read_nb
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    raw, nb = read_nb(fn), read_nb(fn)
    for i, c in enumerate(nb.cells): c.file_idx_ = i
    nb = NBProcessor(fn, procs=FrontmatterProc, nb=nb, process=True).nb
    return raw, nb


def skipped(cell, skip_flags: set) -> bool:
    "Is `cell` left out of the run? nbdev_test's `_no_eval`."
    if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
    direc = getattr(cell, 'directives_', {}) or {}
    if direc.get('eval:', [''])[0].lower() == 'false': return True
    return bool(skip_flags & direc.keys())


def _runs(nb) -> bool:
    from fastcore.basics import str2bool
    from nbdev.process import nb_lang
    return not str2bool(getattr(nb, 'frontmatter_', {}).get('skip_exec', False)) and nb_lang(nb) == 'python'


def execute(fn: Path, nb, skip_flags: set, on_cell):
    "Run the cells of processed notebook `nb` that nbdev_test runs; `on_cell(cell, outputs)` after each. Error text."
    from execnb.shell import CaptureShell, format_exc
    from fastcore.xtras import working_directory
    shell = CaptureShell(fn)
    with working_directory(fn.parent):
        for cell in nb.cells:
            if skipped(cell, skip_flags): continue
            outputs = clean_outputs(shell.run(cell.source))
            if shell.exc:
                tb = ''.join(format_exc(shell.exc))
                return f"{type(shell.exc).__name__} in {fn}:\n{'=' * 75}\nWhile executing cell[{cell.file_idx_}]:\n{tb}"
            on_cell(cell, outputs)
    return None


def clean_outputs(outputs) -> list:
    "`outputs` (a cell's, as execnb makes them) as `nbdev_clean` saves them."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cell = {'cell_type': 'code', 'id': '0', 'metadata': {}, 'source': [], 'outputs': [dict(o) for o in outputs]}
    clean_nb({'cells': [cell], 'metadata': {}}, clean_ids=get_config().clean_ids)
    return cell['outputs']


# --------------------------------------------------------------------------------------------------------
# Check, or re-render, one notebook (in a worker process)

def missing_show_doc(fn, nb) -> dict:
    "{index: stale line} of the show_doc cells of processed notebook `nb` that have no saved output."
    return {c.file_idx_: stale_line(fn, c.file_idx_, c, 'show_doc cell has no saved output') for c in nb.cells
            if is_show_doc(c) and not has_show_doc_output(c)}


def check_nb(fn: Path, skip_flags=(), basepath=None, write=False) -> dict:
    "Run `fn`; {'error': text or None, 'stale': [lines], 'secs': s}. With `write`, save its new outputs instead."
    if basepath: sys.path.insert(0, str(basepath))
    os.environ['IN_TEST'] = '1'
    start, stale, new = time.time(), {}, {}
    def on_cell(cell, outputs):
        i, keys = cell.file_idx_, compared_keys(cell)
        new[i] = outputs
        why = None if write or i in stale or not keys else difference(raw.cells[i].get('outputs'), outputs, keys)
        if why: stale[i] = stale_line(fn, i, cell, why)
    try:
        raw, nb = load(fn)
        if not write: stale.update(missing_show_doc(fn, nb))
        error = execute(fn, nb, set(skip_flags), on_cell) if _runs(nb) else None
        if write and not error: save_outputs(fn, raw, new)
    except Exception: error = f'{fn}: {traceback.format_exc()}'
    if error: sys.stderr.write(error + '\n')
    return {'error': error, 'stale': [stale[i] for i in sorted(stale)], 'secs': time.time() - start}


def save_outputs(fn: Path, raw, new: dict):
    "Write notebook `raw` to `fn` with the outputs of cells `new` ({index: outputs}) replaced; then nbdev_clean it."
    from execnb.nbio import write_nb
    from nbdev.clean import nbdev_clean
    for i, outputs in new.items(): raw.cells[i]['outputs'] = outputs
    write_nb(raw, fn)
    nbdev_clean(fname=str(fn))


# --------------------------------------------------------------------------------------------------------
# All notebooks

def notebooks(paths, **kw) -> list[Path]:
    "The notebooks nbdev_test would test for `paths` (default: nbs/), absolute and sorted."
    from nbdev.doclinks import nbglob
    files = [f for p in (paths or [None]) for f in (nbglob(p, as_path=True, **kw) if p is None or Path(p).is_dir()
                                                   else [Path(p)])]
    return sorted({f.absolute() for f in files if not (f.parent / '.notest').exists()})   # nbdev's ignore_fname


def run_all(files, skip_flags, n_workers, write=False) -> list[dict]:
    "check_nb on every one of `files` (`n_workers` processes; 0: in this one), from the notebooks' folder like nbdev."
    from fastcore.parallel import parallel
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    cfg = get_config()
    wd = cfg.nbs_path if cfg.nbs_path and cfg.nbs_path.exists() else os.getcwd()
    with working_directory(wd):
        return list(parallel(check_nb, files, skip_flags=skip_flags, basepath=cfg.config_path, write=write,
                             n_workers=n_workers, pause=0.01))


def report(files, results, timing: bool) -> int:
    "Print stale cells and failed notebooks (nbdev_test's summary); the exit code."
    stale = [l for r in results for l in r['stale']]
    failed = [f.name for f, r in zip(files, results) if r['error']]
    for l in stale: print(l, file=sys.stderr)
    if stale:
        print(f'{len(stale)} stale saved output(s) in {sum(bool(r["stale"]) for r in results)} notebook(s): '
              're-render each notebook with the command given (then review and commit the diff)', file=sys.stderr)
    if failed: sys.stderr.write('\nnbdev Tests Failed On The Following Notebooks:\n' + '=' * 50 + '\n\t'
                                + '\n\t'.join(failed) + '\n')
    if not stale and not failed: print('Success.')
    if timing:
        for f, r in sorted(zip(files, results), key=lambda t: -t[1]['secs']): print(f'{f.name}: {int(r["secs"])} secs')
    return 1 if stale or failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', help='notebooks or folders (default: nbs/)')
    p.add_argument('--write', action='store_true', help='re-render the outputs of the notebooks given')
    p.add_argument('--flags', default='', help='space-separated tst_flags to run anyway (e.g. "slow")')
    p.add_argument('--n_workers', type=int, default=None, help='processes (default: as nbdev_test)')
    p.add_argument('--timing', action='store_true', help='print the time of each notebook')
    p.add_argument('--file_re', default=None, help='only notebooks whose name matches this regex')
    a = p.parse_args(argv)
    if a.write and not a.paths: p.error('--write needs the notebooks to re-render')
    if missing := [x for x in a.paths if not Path(x).exists()]: p.error(f'no such notebook or folder: {missing}')
    os.environ.setdefault('SPARSE_MAML_DATA', str(REPO / 'data'))
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    from fastcore.parallel import num_cpus
    from nbdev.config import get_config
    files = notebooks(a.paths, file_re=a.file_re)
    if not files: print('No files were eligible for testing'); return 0
    skip = sorted(set(get_config().tst_flags.split()) - set(a.flags.split()))
    n = a.n_workers if a.n_workers is not None else 0 if len(files) == 1 else min(num_cpus(), 8)
    results = run_all(files, skip, n, write=a.write)
    if a.write:
        for f, r in zip(files, results): print(f'{"FAILED, not written" if r["error"] else "re-rendered"}: {_rel(f)}')
        return 1 if any(r['error'] for r in results) else 0
    return report(files, results, a.timing)


if __name__ == '__main__':
    # Workers look `check_nb` up by module name, and IPython's shell replaces `__main__` in them: run from the module.
    import run_nbs
    sys.exit(run_nbs.main())
