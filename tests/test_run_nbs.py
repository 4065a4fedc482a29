"""tools/run_nbs.py: `make test`'s notebook runner fails on stale `show_doc` and `#| check_output` outputs, and
`--write` re-renders them (outputs cleared first; skipped cells keep theirs)."""
import json, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO/'tools'))
import run_nbs as rn


def _cell(source, outputs=(), idx=0):
    return {'cell_type': 'code', 'execution_count': None, 'id': f'c{idx:07d}', 'metadata': {},
            'outputs': list(outputs), 'source': source}

def _stream(text): return {'name': 'stdout', 'output_type': 'stream', 'text': text}

def _md(md, plain):
    return {'data': {'text/markdown': md, 'text/plain': plain}, 'execution_count': None, 'metadata': {},
            'output_type': 'execute_result'}


def test_which_cells_are_compared():
    sd = SimpleNamespace(cell_type='code', source='show_doc(Foo.bar)', directives_={})
    assert rn.compared_keys(sd) == rn.SHOW_DOC_KEYS
    for src in ('from nbdev.showdoc import show_doc', 'my_show_doc(x)', 'x.show_doc(y)'):
        assert rn.compared_keys(SimpleNamespace(cell_type='code', source=src, directives_={})) == ()
    opt = SimpleNamespace(cell_type='code', source='print(1)', directives_={'check_output': []})
    assert rn.compared_keys(opt) == rn.CHECK_OUTPUT_KEYS
    off = SimpleNamespace(cell_type='code', source='1', directives_={'check_output': ['false']})
    assert rn.compared_keys(off) == ()


def test_texts_normalised_images_and_stderr_ignored():
    outs = [_stream(['a\n', 'b  \n']), {'name': 'stderr', 'output_type': 'stream', 'text': 'warn\n'},
            {'data': {'image/png': 'xx', 'text/plain': ['<Figure size 10x10 with 1 Axes>']}, 'metadata': {},
             'output_type': 'display_data'},
            _md('---\n### f\n\n', '<Foo object at 0x7f3a2b>')]
    assert rn.texts(outs, rn.CHECK_OUTPUT_KEYS) == {'stdout': 'a\nb', 'text/markdown': '---\n### f',
                                                    'text/plain': '<Foo object>'}


def test_first_difference():
    assert rn.first_difference('a\nb\nc', 'a\nB\nc') == "line 2: saved 'b' now 'B'"
    assert rn.first_difference('a', 'a\nnew') == "line 2: saved (no line) now 'new'"
    long_saved, long_now = 'x' * 100 + '#L22' + 'y' * 100, 'x' * 100 + '#L23' + 'y' * 100
    d = rn.first_difference(long_saved, long_now)
    assert "#L22" in d and "#L23" in d and d.count('...') == 4 and len(d) < 2 * (2 * rn.CLIP + 10) + 30
    assert rn.difference([], [_stream('1\n')], ('stdout',)) == 'stdout: no saved output, now 1 lines'
    assert rn.difference([_stream('1\n')], [_stream('1')], ('stdout',)) is None


# show_doc(f)'s markdown (nbdev 2.4.14, pinned in settings.ini)
SHOW_DOC_F = '---\n\n### f\n\n```python\n\ndef f(\n    x\n):\n\n\n```\n\n*Doc of f.*'

def _notebook(path: Path):
    "A tiny notebook whose saved outputs are stale in every way the runner checks (and some it must not)."
    cells = [
        _cell('#| hide\nfrom nbdev.showdoc import show_doc', idx=0),
        _cell('def f(x):\n    "Doc of f."\n    return x', idx=1),
        _cell('show_doc(f)', [_md(SHOW_DOC_F.replace('Doc', 'Old doc'), 'def f(\n    x\n):\n"""Doc of f."""')],
              idx=2),                                                                                 # stale
        _cell('show_doc(f)', idx=3),                                                          # no output
        _cell('#| check_output\nprint(f(2) + 1)', [_stream('2\n')], idx=4),                  # stale
        _cell('#| check_output\ny = 1', [_stream('old\n')], idx=5),                          # prints nothing now
        _cell('print("not checked")', [_stream('anything\n')], idx=6),
        _cell('#| slow\n#| check_output\nprint("fast")', [_stream('slow\n')], idx=7),       # not run: kept
    ]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python',
                                                      'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb, indent=1))


def _run(*args):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, 'tools/run_nbs.py', *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stale_outputs_fail_and_write_fixes_them(tmp_path):
    nb = tmp_path/'t.ipynb'
    _notebook(nb)
    r = _run(nb)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith('stale output:')]
    assert [l.split('`')[0].split()[-1] for l in lines] == ['cell[2]', 'cell[3]', 'cell[4]', 'cell[5]'], r.stderr
    assert "text/markdown line 14: saved '*Old doc of f.*' now '*Doc of f.*'" in lines[0]
    assert 'no saved output' in lines[1] and "stdout line 1: saved '2' now '3'" in lines[2]
    assert all(l.endswith(f'--write {nb}') for l in lines)
    w = _run('--write', nb)
    assert w.returncode == 0, w.stdout + w.stderr
    assert _run(nb).returncode == 0
    cells = json.loads(nb.read_text())['cells']
    assert cells[0]['source'] == ['#| hide\n', 'from nbdev.showdoc import show_doc']    # directives kept
    assert [c['outputs'] for c in cells[5:]] == [[], [_stream(['not checked\n'])], [_stream('slow\n')]]
