"""Write README.md from nbs/index.ipynb: what `nbdev_readme` does, without Quarto.

The index notebook goes through nbdev's own processors (front matter, hidden cells, doc links), then the
same adapter as the docs (`tools/build_docs.py`), then a small markdown writer: markdown cells verbatim,
code cells as ```python fences, text outputs as plain fences, markdown outputs verbatim, images left out.
Links to other notebooks (`01_maml.ipynb`) become `nbs/01_maml.ipynb`; nbdev's links into the (unhosted)
doc site keep their text only.

Usage: `python tools/make_readme.py` (writes README.md) or `python tools/make_readme.py --check`
(exit 1 when README.md is not what index.ipynb gives).
"""
from __future__ import annotations
import argparse, re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_docs as bd

REPO = bd.REPO
README = REPO/'README.md'
INDEX = bd.NBS/'index.ipynb'
_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')

def _text(x) -> str: return ''.join(x) if isinstance(x, list) else (x or '')

def _fence(text: str) -> str:
    text = _re_ansi.sub('', text).rstrip('\n')
    return f'```\n{text}\n```' if text.strip() else ''

def output_markdown(o: dict) -> str:
    "One cell output as markdown: markdown verbatim, text fenced, images and widgets left out."
    t = o.get('output_type')
    if t == 'stream': return _fence(_text(o.get('text')))
    if t == 'error': return _fence('\n'.join(o.get('traceback', [])))
    data = o.get('data', {})
    if 'text/markdown' in data: return _text(data['text/markdown']).strip()
    if any(k.startswith('image/') for k in data): return ''
    return _fence(_text(data.get('text/plain', '')))

def _nb_links(md: str, prefix: str) -> str:
    "Point relative links to notebooks (`01_maml.ipynb#x`) into `prefix` (`nbs/01_maml.ipynb#x`)."
    return re.sub(r'\]\((?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)([^)\s]+\.ipynb(?:#[^)\s]*)?)\)', rf']({prefix}\1)', md)

def notebook_markdown(nb: dict, nb_prefix: str = 'nbs/') -> str:
    "An adapted notebook (see `build_docs.adapt_notebook`) as GitHub markdown."
    parts = []
    for c in nb['cells']:
        src, tags = _text(c.get('source')), c.get('metadata', {}).get('tags', [])
        if c['cell_type'] == 'markdown': parts.append(_nb_links(src.strip(), nb_prefix))
        elif c['cell_type'] == 'code':
            if 'remove-input' not in tags and src.strip(): parts.append(f'```python\n{src.strip()}\n```')
            if 'remove-output' not in tags: parts += [output_markdown(o) for o in c.get('outputs', [])]
    return '\n\n'.join(p for p in parts if p) + '\n'

def readme_text(index: Path = INDEX) -> str:
    "What README.md should contain, made from the index notebook."
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        processed = bd.nbdev_process(Path(index))
    nb = bd.adapt_notebook(processed, 'index', bd.doc_base_url(bd._settings()), pages={})
    return notebook_markdown(nb)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='only check that README.md is up to date')
    a = ap.parse_args(argv)
    text = readme_text()
    if a.check:
        if README.exists() and README.read_text(encoding='utf-8') == text: return
        sys.exit('README.md is not up to date with nbs/index.ipynb: run `python tools/make_readme.py`')
    if not README.exists() or README.read_text(encoding='utf-8') != text:
        README.write_text(text, encoding='utf-8')
        print('wrote README.md')

if __name__ == '__main__': main()
